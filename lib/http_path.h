/* http_path.h — a request path as decoded segments, for routing, and the
 * pieces poold needs to build a node's path back from validated parts.
 *
 * Each segment is percent-decoded on its own, so "%2F" inside a file name
 * stays one segment. A path is refused whole when a segment is malformed
 * (a bad escape, or one that decodes to NUL), is a dot segment (`.` or
 * `..`, in any spelling: "%2e%2E", ".%2e"...), or is empty between two
 * slashes ("a//b"). A dot segment means "the parent" to every URL library
 * (libcurl removes them before it sends): a path that carries one can
 * reach another route than the one it was checked for, so neither daemon
 * accepts one. A single trailing slash is allowed ("/v1/slots/"). */
#ifndef WARMPOOL_HTTP_PATH_H
#define WARMPOOL_HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_PATH_MAX_SEGMENTS 8
#define HTTP_PATH_NAME_MAX     255

/* Why http_path_split refused a path (negative return values). */
enum http_path_error {
	HTTP_PATH_MALFORMED = -1,     /* bad escape, or %00 */
	HTTP_PATH_DOT_SEGMENT = -2,   /* `.` or `..`, in any spelling */
	HTTP_PATH_EMPTY_SEGMENT = -3, /* "//" */
	HTTP_PATH_TOO_DEEP = -4,      /* more than HTTP_PATH_MAX_SEGMENTS */
};

struct http_path {
	char *seg[HTTP_PATH_MAX_SEGMENTS];
	int n;
};

/* raw: the undecoded path ("/v1/slots/ab%20c"), without the query. 0, or
 * an enum http_path_error. Always call http_path_free. */
int http_path_split(const char *raw, struct http_path *out);
void http_path_free(struct http_path *p);
/* Segment i equals s. */
bool http_path_is(const struct http_path *p, int i, const char *s);
/* What to tell the client about an http_path_split error (a static string). */
const char *http_path_strerror(int err);

/* A file name of a slot's /mnt/data (sandboxd's rule): 1 to 255 bytes, no
 * `/`, not `.` or `..`, no control character. NULL when valid, else why
 * not (a static string). */
const char *http_path_name_invalid(const char *name);
/* s with every byte but RFC 3986's unreserved ones as %XX, into out.
 * 0, or -ENAMETOOLONG when it does not fit (out is then ""). */
int http_path_encode(const char *s, char *out, size_t size);

#endif
