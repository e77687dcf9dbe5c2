/* http_path.h — a request path as decoded segments, for routing. Each
 * segment is percent-decoded on its own, so "%2F" inside a file name stays
 * one segment; a segment that decodes to a NUL or a malformed escape makes
 * the whole path invalid. */
#ifndef WARMPOOL_HTTP_PATH_H
#define WARMPOOL_HTTP_PATH_H

#include <stdbool.h>

#define HTTP_PATH_MAX_SEGMENTS 8

struct http_path {
	char *seg[HTTP_PATH_MAX_SEGMENTS];
	int n;
};

/* raw: the undecoded path ("/v1/slots/ab%20c"). 0, or -1 when malformed or
 * deeper than HTTP_PATH_MAX_SEGMENTS. Always call http_path_free. */
int http_path_split(const char *raw, struct http_path *out);
void http_path_free(struct http_path *p);
/* Segment i equals s. */
bool http_path_is(const struct http_path *p, int i, const char *s);

#endif
