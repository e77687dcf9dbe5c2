/* http_client.h — asynchronous HTTP client: libcurl's multi interface driven
 * by a libev loop (curl's socket and timer callbacks become ev_io/ev_timer
 * watchers). Nothing here blocks the loop. poold talks to every sandboxd
 * through it, over unix sockets or TCP.
 *
 *   http_call_start(c, &(struct http_call_opts){.method = "POST", .base =
 *                   "unix:/run/warmpool/sandboxd.sock", .path = "/v1/slots",
 *                   .body = json, .body_len = n, .timeout = 5}, done, data);
 *
 * `done` is called exactly once from the loop (never from inside
 * http_call_start), unless the call is cancelled first. */
#ifndef WARMPOOL_HTTP_CLIENT_H
#define WARMPOOL_HTTP_CLIENT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct http_client;
struct http_call;

/* TLS of an https:// call. The server's certificate is always verified: signed
 * by `ca` (only that file when given, not the system's CAs) and carrying the
 * URL's host name — or `connect_to`'s when the URL names the host to verify
 * and the connection goes to an address of it ("HOST:PORT:ADDRESS:PORT",
 * curl's CONNECT_TO). The files are read when a connection is made, so
 * rotated files apply to the next one. Strings borrowed for the call. */
struct http_tls_opts {
	const char *ca;		/* PEM CA file */
	const char *cert, *key; /* PEM client certificate and key (mutual TLS) */
	const char *connect_to;
	bool tls13_only;
};

struct http_call_opts {
	const char *method;	  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *base;	  /* "unix:/path/to.sock" or "http://host:port" (https too) */
	const char *path;	  /* "/v1/slots?label=x", already percent-encoded */
	const char *content_type; /* NULL: application/json when a body is given */
	const void *body;	  /* not copied: must stay valid until done/cancel */
	size_t body_len;
	double timeout;			 /* whole transfer, seconds; 0 = 30 */
	double connect_timeout;		 /* seconds; 0 = 2 */
	size_t max_response;		 /* bytes; 0 = 16 MiB; past it the call fails */
	const char *bearer;		 /* optional token for Authorization: Bearer */
	const char *header_name;	 /* optional extra header: name (no colon) */
	const char *header_value;	 /* and its value */
	const struct http_tls_opts *tls; /* https:// only; NULL: the system's CAs, no client certificate */
};

struct http_result {
	int status; /* HTTP status, or 0 when the transfer failed */
	char *body; /* NUL-terminated (body_len excludes it); owned by the result */
	size_t body_len;
	const char *error; /* transport error text when status == 0 ("Connection refused", "Timeout was reached") */
	double elapsed;	   /* seconds */
	bool timed_out;	   /* status 0 because the call's own timeout ran out (the peer may be fine, only slow) */
};

/* The result is only valid during the callback; steal body with
 * steal_pointer(&res->body) to keep it. */
typedef void (*http_call_done_fn)(struct http_result *res, void *data);

struct http_client *http_client_new(struct ev_loop *loop);
/* Cancels every call in flight (their callbacks are not called). Also allowed
 * from inside a done callback: the client goes once that callback returns. */
void http_client_free(struct http_client *c);
/* Returns the call handle, or NULL when the call could not even be set up
 * (out of memory, malformed base): then `done` is not called. */
struct http_call *http_call_start(struct http_client *c, const struct http_call_opts *o, http_call_done_fn done,
				  void *data);
/* The callback will not be called. Safe on a call whose callback is running? No: only before it. */
void http_call_cancel(struct http_call *call);
size_t http_client_inflight(const struct http_client *c);

#endif
