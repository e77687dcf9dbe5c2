/* fuzz_http_request.c — the bytes of a TCP connection to poold or sandboxd:
 * lib/http_message.c (http-parser and our callbacks) fed in pieces as the
 * server's read loop does, then what handlers do with a request (headers,
 * query parameters, lib/http_path.c routing, an error answer that echoes the
 * path). Input: byte 0 picks the piece size (1 to 256), the rest is the
 * stream, pipelined requests included. */
#include "http_message.h"
#include "http_path.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_request(struct http_request *r)
{
	struct http_path path;
	size_t n;
	char *q, *head, *body;

	assert(r->method && r->path && r->raw_path && r->query && r->body);
	assert(strlen(r->path) <= strlen(r->raw_path));
	assert(r->body[r->body_len] == '\0');
	for (size_t i = 0; i < r->n_headers; i++)
		assert(r->headers[i].name && r->headers[i].value);
	(void)http_request_header(r, "content-type");
	(void)http_request_header(r, "authorization");
	free(http_request_query(r, "api-version"));
	if ((q = http_request_query(r, "identifier")))
		free(q);
	if (http_path_split(r->raw_path, &path) == 0) {
		for (int i = 0; i < path.n; i++)
			assert(path.seg[i] && !http_path_is(&path, i, "\x01unlikely"));
	}
	http_path_free(&path);
	head = http_response_head(404, "application/json", 10, "Connection: close\r\n", "X-A: b", 0, &n);
	free(head);
	body = http_error_body("NotFound", r->path, &n);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits lim;
	struct http_parse p;
	size_t piece, off = 0;

	if (size < 1)
		return 0;
	piece = (size_t)data[0] + 1;
	data++;
	size--;
	http_limits_default(&lim);
	lim.max_body_bytes = 64 * 1024; /* small bounds: reach them */
	lim.max_header_bytes = 2048;
	lim.max_headers = 16;
	http_parse_init(&p, &lim);
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece, used;
		char msg[256];
		int status;

		used = http_parse_feed(&p, (const char *)data + off, n, &status, msg, sizeof(msg));
		assert(used <= n);
		if (status) {
			assert(status == 400 || status == 413 || status == 431 || status == 500);
			assert(msg[0]);
			break;
		}
		off += used;
		if (p.done) {
			struct http_request *r = p.done;
			p.done = NULL;
			use_request(r);
			http_request_free(r);
			if (!p.keep_alive)
				break;
		} else {
			assert(used == n);
		}
	}
	http_parse_free(&p);
	return 0;
}
