/* http_server.h — HTTP/1.1 server on a libev loop, requests parsed by
 * http-parser (never by hand).
 *
 * Each listener (TCP or unix socket) hands complete requests to one handler.
 * A request is answered exactly once with http_respond*(), either from inside
 * the handler or later (after a child exits, a curl transfer completes…), from
 * any callback of the same loop. The request object stays valid until it is
 * answered, even when the client has gone (http_request_gone() tells); the
 * answer is then dropped. Keep-alive is on; pipelined requests on one
 * connection are handled one at a time, in order.
 *
 * Bounds (all in struct http_limits): header count and total header bytes
 * (431), body bytes (413), malformed requests (400), an idle timeout between
 * requests and a timeout for receiving a whole request (slow clients), a
 * cap on open connections and one per client address. */
#ifndef WARMPOOL_HTTP_SERVER_H
#define WARMPOOL_HTTP_SERVER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct http_server;
struct http_conn;

struct http_header {
	char *name; /* lower-cased */
	char *value;
};

struct http_request {
	const char *method; /* "GET", "POST", … */
	char *path;	    /* percent-decoded path, no query; never contains NUL */
	char *raw_path;	    /* as received (for routes that decode themselves) */
	char *query;	    /* raw query string without '?', "" when absent */
	struct http_header *headers;
	size_t n_headers;
	char *body; /* NUL-terminated for convenience; body_len is exact */
	size_t body_len;
	char peer[64];	    /* "127.0.0.1:53422", "[::1]:1234" or "unix" */
	bool peer_loopback; /* TCP from 127.0.0.0/8 or ::1, or a unix socket */
	double received_at; /* ev_now() when the request was complete */
	void *user;	    /* free for the handler's use */
	/* Optional: called once with the status when the request is answered
	 * (or the answer dropped because the client left), before it is freed.
	 * For access metrics; must not answer or free anything. */
	void (*on_answer)(struct http_request *req, int status);
	/* private */
	struct http_conn *conn_;
};

typedef void (*http_handler_fn)(struct http_request *req, void *data);

struct http_limits {
	size_t max_header_bytes; /* default 16 KiB  → 431 */
	size_t max_headers;	 /* default 64      → 431 */
	size_t max_body_bytes;	 /* default 1 MiB   → 413 */
	double idle_timeout;	 /* s between requests on a keep-alive connection, default 30 */
	double request_timeout;	 /* s to receive one whole request, default 30 */
	double write_timeout;	 /* s without progress sending an answer, default 30 */
	/* default 1024 in all: past it the idle connection held longest by the
	 * client (TCP peer address) holding the most is closed for the new one,
	 * or, when that client is the newcomer or holds nothing idle, the new
	 * connection is closed at once */
	size_t max_connections;
	/* 0 (the default) = no cap; else the most one TCP peer address may hold
	 * (unix socket peers count toward max_connections only) */
	size_t max_connections_per_client;
	double tls_handshake_timeout; /* s from accept to a finished TLS handshake, default 10 */
};

/* Connections turned away, counted since start. */
struct http_server_refusals {
	unsigned long long client_cap; /* refused: the client had max_connections_per_client */
	unsigned long long total_cap;  /* refused: max_connections open and none idle to close */
	unsigned long long evicted;    /* idle connections closed to admit another client's */
};

void http_limits_default(struct http_limits *l);

struct http_server *http_server_new(struct ev_loop *loop, const struct http_limits *limits, http_handler_fn handler,
				    void *data);
/* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8080" or "unix:/path/to.sock" (an
 * existing socket file is replaced; mode 0660). Returns 0 or -errno. */
int http_server_listen(struct http_server *s, const char *address);
/* Stop accepting; connections finish the request in progress (answered by
 * their handler) and close. `done` is called once no connection remains. */
void http_server_stop(struct http_server *s, void (*done)(void *data), void *data);
void http_server_free(struct http_server *s);
size_t http_server_connections(const struct http_server *s);
/* The counts of one server, or of every server of the process (s NULL). */
void http_server_refusals(const struct http_server *s, struct http_server_refusals *out);
/* TCP port of the listener added last (to learn the port picked for ":0"),
 * or -1 when there is none. */
int http_server_port(const struct http_server *s);

/* TLS on every listener of the server (tls.h makes the context): the
 * server takes a reference to ctx, drops the one it held; ctx NULL: plain.
 * Only connections accepted from now on use it (a reload on SIGHUP leaves
 * the open ones with the context they started with). A plain-HTTP request
 * on a TLS server gets a 400 in clear (TlsRequired) and is logged; so is
 * every refused handshake (no client certificate, another CA, expired, a
 * name not pinned, a handshake past tls_handshake_timeout). Returns 0 or
 * -ENOMEM. */
struct ssl_ctx_st;
int http_server_set_tls(struct http_server *s, struct ssl_ctx_st *ctx);
/* TLS connections refused so far (handshakes failed, plain HTTP). */
unsigned long long http_server_tls_refused(const struct http_server *s);

/* Look-ups on a request. */
const char *http_request_header(const struct http_request *req, const char *lower_name);
/* Value of a query parameter, percent-decoded into a new string (caller frees),
 * or NULL when absent. */
char *http_request_query(const struct http_request *req, const char *name);
bool http_request_gone(const struct http_request *req);

/* Answers. `headers` may be NULL or "Name: value\r\n…" extra header lines.
 * Each returns 0 or -errno; the request is released in every case. */
int http_respond(struct http_request *req, int status, const char *content_type, const char *headers, const void *body,
		 size_t len);
/* Like http_respond but takes ownership of `body` (malloc'd, freed in every
 * case, never copied): for large answers such as file downloads. */
int http_respond_owned(struct http_request *req, int status, const char *content_type, const char *headers, char *body,
		       size_t len);
/* Steals the reference to `body`. */
int http_respond_json(struct http_request *req, int status, json_t *body);
/* {"error": {"code": code, "message": message}} */
int http_respond_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The same with "Retry-After: <seconds>" when retry_after > 0 (429, 503). */
int http_respond_error_retry(struct http_request *req, int status, double retry_after, const char *code,
			     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

const char *http_status_text(int status);

#endif
