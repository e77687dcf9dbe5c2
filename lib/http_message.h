/* http_message.h — HTTP/1.1 messages for http_server.c (private to lib/):
 * requests assembled by http-parser within struct http_limits, answer heads
 * and error bodies formatted. No sockets here; the server feeds bytes. */
#ifndef WARMPOOL_HTTP_MESSAGE_H
#define WARMPOOL_HTTP_MESSAGE_H

#include "http_server.h"

#include <http_parser.h>

struct http_parse {
	http_parser parser;
	const struct http_limits *lim;
	struct http_request *cur;  /* being parsed (owned) */
	struct http_request *done; /* complete; the caller takes it */
	char *url;
	size_t url_len;
	int hstate;
	size_t name_len, value_len, headers_cap, body_cap, hdr_bytes;
	int err_status;	    /* a limit or an allocation refused the request */
	bool send_continue; /* the client waits for "100 Continue" */
	/* of the last complete request */
	bool keep_alive, head, http10;
};

void http_parse_init(struct http_parse *p, const struct http_limits *lim);
void http_parse_free(struct http_parse *p);
/* Parse up to len bytes; returns the bytes consumed. It stops after a
 * complete request (p->done set, the parser paused until the next call).
 * Returns with *status > 0 (and a message in msg) when the request must be
 * refused: 400, 413, 431 or 500; the parser is then unusable. */
size_t http_parse_feed(struct http_parse *p, const char *buf, size_t len, int *status, char *msg, size_t msg_size);

void http_request_free(struct http_request *r);

/* Status line and headers of an answer, "\r\n\r\n" included (malloc'd, length
 * in *n). Content-Length is left out for statuses that have no body. */
char *http_response_head(int status, const char *content_type, size_t len, const char *connection, const char *headers,
			 double now, size_t *n);
/* {"error":{"code":…,"message":…}} (malloc'd, length in *len) or NULL. */
char *http_error_body(const char *code, const char *message, size_t *len);
bool http_status_has_body(int status);

#endif
