/* multipart.h — a strict, bounded multipart/form-data reader (RFC 7578 on
 * RFC 2046) for file uploads: find one named part in a body that is already
 * in memory, without copying its content.
 *
 * Debian 12 has no C library for this that fits: libmicrohttpd's post
 * processor is tied to its own server, GMime drags in GLib for a job of a
 * few hundred lines. So: this, with its own unit tests.
 *
 * What it accepts is what real clients send: Python requests, httpx and
 * aiohttp, .NET's MultipartFormDataContent (quoted boundary, unquoted
 * parameters, RFC 5987 `filename*=utf-8''…`), curl -F. Content is binary
 * safe (found with memmem, never as a C string). Bounds: boundary 1–70
 * characters, 64 parts, 8 KiB of headers per part, part size max_size. */
#ifndef WARMPOOL_MULTIPART_H
#define WARMPOOL_MULTIPART_H

#include <stddef.h>

#include "error.h"

#define MULTIPART_MAX_PARTS	   64
#define MULTIPART_MAX_HEADER_BYTES 8192

struct multipart_part {
	const char *data; /* the content, pointing into the body */
	size_t len;
	char *filename;		/* decoded (filename* preferred), malloc'd; NULL when the part has none */
	char content_type[128]; /* the part's Content-Type, "" when absent */
};

/* The boundary of a `multipart/form-data; boundary=…` Content-Type value,
 * unquoted, into out (at least 71 bytes). 0 or -EINVAL with err filled. */
int multipart_boundary(const char *content_type, char *out, size_t out_size, struct wp_error *err);

/* The one part named `field`. Returns 0 and fills *out (free it with
 * multipart_part_free), or: -EINVAL with err filled (not multipart/form-data,
 * malformed, truncated, the field twice), -ENOENT (no such field), -EFBIG
 * (its content is larger than max_size). */
int multipart_find(const char *content_type, const char *body, size_t len, const char *field, size_t max_size,
		   struct multipart_part *out, struct wp_error *err);
void multipart_part_free(struct multipart_part *p);

#endif
