/* http_server.c — the HTTP/1.1 server every daemon speaks (see http_server.h).
 *
 * Theory of operation. Each accepted socket is a struct http_conn driven by a
 * read watcher, a write watcher and one timer whose meaning follows the state
 * (idle, receiving a request, writing an answer, lingering). Bytes are read
 * into conn->in and fed to http-parser; when a message is complete the parser
 * is paused and the request goes to the handler. While the request is with
 * the handler the connection only reads ahead (to notice the client leaving);
 * once the answer has been written out the parser is resumed on whatever was
 * pipelined behind it. A closed connection is unlinked at once but freed by
 * an ev_prepare reaper, never inside its own callbacks; a request still with
 * its handler is detached (conn_ = NULL), so it can be answered, and the
 * answer dropped, later. After an error answer we shut down our side and
 * drain the client for a moment so the answer is not lost to a TCP reset. */
#include "http_server.h"
#include "cleanup.h"
#include "http_message.h"
#include "log.h"
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#define IN_BUF_SIZE	 (32 * 1024)
#define LINGER_TIMEOUT	 2.0
#define LINGER_MAX_BYTES (1024 * 1024)
#define ACCEPT_BACKOFF	 0.1
#define ACCEPT_BATCH	 64
#define MAX_OUT_SEGS	 3
#define CLIENT_BUCKETS	 256
#define TLS_WARN_PER_SEC 20    /* refused handshakes logged per second, per server */
#define TLS_GATHER	 16384 /* one TLS record: an answer's head and body go out together */

/* Connections open per client address (TCP peers only: a unix socket's
 * peers count toward the total alone). */
struct client_count {
	struct client_count *next;
	size_t n;
	char addr[INET6_ADDRSTRLEN];
};

/* Connections turned away by every server of the process (for metrics). */
static struct http_server_refusals refusals_all;

struct listener {
	struct listener *next;
	struct http_server *srv;
	ev_io io;
	char *unix_path; /* owned; unlinked when the listener closes */
	int port;	 /* TCP port, -1 for a unix socket */
};

struct out_seg {
	char *mem; /* freed once sent; NULL for static data */
	const char *data;
	size_t len;
};

struct http_conn {
	struct http_server *srv;
	struct http_conn *prev, *next; /* live list; dead list uses next only */
	int fd;
	ev_io rio, wio;
	ev_timer timer;
	struct http_parse parse;
	char peer[64];
	bool peer_loopback;
	struct client_count *client; /* NULL for a unix socket peer */
	bool started;		     /* bytes of the next request have been parsed */
	double started_at, idle_since, write_progress, linger_until;
	struct http_request *req; /* with the handler, not answered yet */
	bool head;		  /* of the request being answered */

	struct out_seg out[MAX_OUT_SEGS];
	size_t n_out, out_off; /* out_off: bytes of out[0] already sent */
	bool resp_pending;     /* a final answer is (partly) in out[] */

	bool close_after, linger, lingering, read_eof, closed, processing;
	size_t lingered;

	/* TLS (NULL on a plain listener): the handshake runs first, driven by
	 * the same watchers; then every read and write goes through ssl */
	SSL *ssl;
	bool tls_hs;		/* handshake not finished */
	bool tls_peeked;	/* the first bytes were checked for plain HTTP */
	bool tls_wr_wants_read; /* SSL_write waits for the socket to be readable */
	bool tls_ok;		/* handshake done: close_notify on close */
	size_t tls_retry_len;	/* an SSL_write to repeat with the same length */

	size_t in_off, in_len;
	char in[IN_BUF_SIZE];
};

struct http_server {
	struct ev_loop *loop;
	struct http_limits lim;
	http_handler_fn handler;
	void *data;
	struct listener *listeners;
	struct http_conn *conns, *dead;
	size_t n_conns;
	ev_prepare reaper;
	ev_timer backoff;
	double last_cap_warn;
	struct client_count *clients[CLIENT_BUCKETS];
	struct http_server_refusals refusals;
	bool stopping;
	void (*done)(void *data);
	void *done_data;
	SSL_CTX *tls; /* a reference: new connections speak TLS with it */
	unsigned long long tls_refused;
	double tls_warn_second;
	unsigned tls_warn_n;
};

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

void http_limits_default(struct http_limits *l)
{
	*l = (struct http_limits){
	    .max_header_bytes = 16 * 1024,
	    .max_headers = 64,
	    .max_body_bytes = 1024 * 1024,
	    .idle_timeout = 30,
	    .request_timeout = 30,
	    .write_timeout = 30,
	    .max_connections = 1024,
	    .max_connections_per_client = 0,
	    .tls_handshake_timeout = 10,
	};
}

/* ---- connection life ---- */

static void conn_process(struct http_conn *c);
static void conn_flush(struct http_conn *c);
static void conn_linger(struct http_conn *c);
static void conn_tls_kick(struct http_conn *c);
static void conn_tls_handshake(struct http_conn *c);
static void conn_tls_refused(struct http_conn *c, const char *why);
static ssize_t conn_tls_recv(struct http_conn *c, char *buf, size_t len);
static ssize_t conn_tls_send(struct http_conn *c, const struct iovec *iov, size_t n_iov);

static void conn_arm(struct http_conn *c)
{
	struct http_server *s = c->srv;
	double now = ev_now(s->loop), at;

	if (c->closed)
		return;
	ev_timer_stop(s->loop, &c->timer);
	if (c->tls_hs)
		at = c->idle_since + s->lim.tls_handshake_timeout;
	else if (c->n_out)
		at = c->write_progress + s->lim.write_timeout;
	else if (c->lingering)
		at = c->linger_until;
	else if (c->req || c->resp_pending)
		return; /* the handler's business */
	else if (c->started)
		at = c->started_at + s->lim.request_timeout;
	else
		at = c->idle_since + s->lim.idle_timeout;
	ev_timer_set(&c->timer, at > now ? at - now : 0., 0.);
	ev_timer_start(s->loop, &c->timer);
}

/* ---- connections per client ---- */

static unsigned client_hash(const char *addr)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (; *addr; addr++)
		h = (h ^ (unsigned char)*addr) * 16777619u;
	return h % CLIENT_BUCKETS;
}

static struct client_count *client_find(struct http_server *s, const char *addr)
{
	for (struct client_count *cc = s->clients[client_hash(addr)]; cc; cc = cc->next)
		if (strcmp(cc->addr, addr) == 0)
			return cc;
	return NULL;
}

/* One more connection of addr: its count (created at 0 when new), or NULL
 * without memory. */
static struct client_count *client_get(struct http_server *s, const char *addr)
{
	struct client_count *cc = client_find(s, addr);
	unsigned h = client_hash(addr);

	if (cc)
		return cc;
	if (!(cc = calloc(1, sizeof(*cc))))
		return NULL;
	snprintf(cc->addr, sizeof(cc->addr), "%s", addr);
	cc->next = s->clients[h];
	s->clients[h] = cc;
	return cc;
}

/* Drop the count of a client holding nothing. */
static void client_forget(struct http_server *s, struct client_count *cc)
{
	struct client_count **pp;

	if (!cc || cc->n > 0)
		return;
	for (pp = &s->clients[client_hash(cc->addr)]; *pp; pp = &(*pp)->next) {
		if (*pp == cc) {
			*pp = cc->next;
			free(cc);
			return;
		}
	}
}

static void client_release(struct http_server *s, struct client_count *cc)
{
	if (cc && cc->n > 0)
		cc->n--;
	client_forget(s, cc);
}

static struct client_count *client_biggest(struct http_server *s)
{
	struct client_count *big = NULL;
	for (size_t i = 0; i < CLIENT_BUCKETS; i++)
		for (struct client_count *cc = s->clients[i]; cc; cc = cc->next)
			if (!big || cc->n > big->n)
				big = cc;
	return big;
}

static void conn_close(struct http_conn *c)
{
	struct http_server *s = c->srv;

	if (c->closed)
		return;
	c->closed = true;
	if (c->ssl && c->tls_ok && !c->lingering)
		SSL_shutdown(c->ssl); /* close_notify, once, never waited for */
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	ev_timer_stop(s->loop, &c->timer);
	close(c->fd);
	c->fd = -1;
	if (c->req) {
		c->req->conn_ = NULL; /* the handler still owns it */
		c->req = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	client_release(s, c->client);
	c->client = NULL;
	c->next = s->dead;
	s->dead = c;
	ev_prepare_start(s->loop, &s->reaper);
}

static void conn_free(struct http_conn *c)
{
	for (size_t i = 0; i < c->n_out; i++)
		free(c->out[i].mem);
	http_parse_free(&c->parse);
	SSL_free(c->ssl);
	free(c);
}

/* Shut our side and drain what the client still sends, so that it reads our
 * answer instead of a reset. */
static void conn_linger(struct http_conn *c)
{
	if (c->srv->stopping) {
		conn_close(c);
		return;
	}
	c->lingering = true;
	shutdown(c->fd, SHUT_WR);
	c->in_off = c->in_len = 0;
	c->linger_until = ev_now(c->srv->loop) + LINGER_TIMEOUT;
	ev_io_start(c->srv->loop, &c->rio);
	conn_arm(c);
}

static void response_done(struct http_conn *c)
{
	if (c->close_after || c->read_eof) {
		if (c->linger || c->in_off < c->in_len)
			conn_linger(c);
		else
			conn_close(c);
		return;
	}
	c->started = false;
	c->idle_since = ev_now(c->srv->loop);
	ev_io_start(c->srv->loop, &c->rio);
	conn_process(c);
	conn_tls_kick(c);
}

static void conn_flush(struct http_conn *c)
{
	struct ev_loop *loop = c->srv->loop;

	while (c->n_out && !c->closed) {
		struct iovec iov[MAX_OUT_SEGS];
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = c->n_out};
		size_t left;
		ssize_t n;

		for (size_t i = 0; i < c->n_out; i++) {
			size_t skip = i == 0 ? c->out_off : 0;
			iov[i] = (struct iovec){(char *)c->out[i].data + skip, c->out[i].len - skip};
		}
		n = c->ssl ? conn_tls_send(c, iov, c->n_out) : sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (c->tls_wr_wants_read)
					ev_io_start(loop, &c->rio);
				else
					ev_io_start(loop, &c->wio);
				conn_arm(c);
				return;
			}
			log_debug("%s: send: %m", c->peer);
			conn_close(c);
			return;
		}
		c->write_progress = ev_now(loop);
		for (left = (size_t)n; left && c->n_out;) {
			size_t rest = c->out[0].len - c->out_off;
			if (left < rest) {
				c->out_off += left;
				break;
			}
			left -= rest;
			free(c->out[0].mem);
			memmove(&c->out[0], &c->out[1], (--c->n_out) * sizeof(c->out[0]));
			c->out_off = 0;
		}
	}
	if (c->closed)
		return;
	ev_io_stop(loop, &c->wio);
	if (c->resp_pending) {
		c->resp_pending = false;
		response_done(c);
	} else {
		conn_arm(c);
	}
}

static void out_push(struct http_conn *c, char *mem, const char *data, size_t len)
{
	if (!len || c->n_out == MAX_OUT_SEGS) {
		free(mem);
		return;
	}
	c->out[c->n_out++] = (struct out_seg){mem, data, len};
}

/* Queue the answer to the current request (body owned, may be NULL) and send
 * what the socket takes now. */
static int conn_respond(struct http_conn *c, int status, const char *ctype, const char *headers, char *body, size_t len)
{
	const char *connection = NULL;
	size_t n;
	char *head;

	ev_now_update(c->srv->loop); /* the handler may have taken a while */
	if (!c->parse.keep_alive || c->srv->stopping || (headers && strcasestr(headers, "connection: close")))
		c->close_after = true;
	if (c->close_after)
		connection = "Connection: close\r\n";
	else if (c->parse.http10)
		connection = "Connection: keep-alive\r\n";
	head = http_response_head(status, ctype, len, connection, headers, ev_now(c->srv->loop), &n);
	if (!head) {
		free(body);
		conn_close(c);
		return -ENOMEM;
	}
	out_push(c, head, head, n);
	if (!http_status_has_body(status) || c->head)
		free(body);
	else
		out_push(c, body, body, len);
	c->resp_pending = true;
	c->write_progress = ev_now(c->srv->loop);
	conn_flush(c);
	return 0;
}

/* Refuse what the client sent: answer, then close (after lingering). */
static void conn_fail(struct http_conn *c, int status, const char *message)
{
	const char *code = status == 408   ? "RequestTimeout"
			   : status == 413 ? "PayloadTooLarge"
			   : status == 431 ? "HeadersTooLarge"
			   : status == 500 ? "InternalError"
					   : "BadRequest";
	size_t len;
	char *body = http_error_body(code, message, &len);

	log_debug("%s: %d %s", c->peer, status, message);
	c->close_after = c->linger = true;
	c->head = false;
	ev_io_stop(c->srv->loop, &c->rio);
	conn_respond(c, status, "application/json", NULL, body, len);
}

/* Parse what was read and hand complete requests to the handler, one at a
 * time; re-entered from response_done() when an answer is out. */
static void conn_process(struct http_conn *c)
{
	struct http_server *s = c->srv;

	if (c->processing)
		return;
	c->processing = true;
	while (!c->closed && !c->req && !c->resp_pending && !c->lingering && c->in_off < c->in_len) {
		char msg[160];
		int status;

		if (!c->started) {
			c->started = true;
			c->started_at = ev_now(s->loop);
		}
		c->in_off +=
		    http_parse_feed(&c->parse, c->in + c->in_off, c->in_len - c->in_off, &status, msg, sizeof(msg));
		if (c->in_off == c->in_len)
			c->in_off = c->in_len = 0;
		if (status) {
			conn_fail(c, status, msg);
			break;
		}
		if (c->parse.send_continue) {
			c->parse.send_continue = false;
			out_push(c, NULL, continue_100, sizeof(continue_100) - 1);
			c->write_progress = ev_now(s->loop);
			conn_flush(c);
			if (c->closed)
				break;
		}
		if (c->parse.done) {
			struct http_request *r = c->req = steal_pointer(&c->parse.done);
			memcpy(r->peer, c->peer, sizeof(r->peer));
			r->peer_loopback = c->peer_loopback;
			r->received_at = ev_now(s->loop);
			r->conn_ = c;
			c->head = c->parse.head;
			s->handler(r, s->data); /* may answer (and close) at once */
		}
	}
	c->processing = false;
	conn_arm(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *c = w->data;
	ssize_t n;

	if (c->lingering) {
		char sink[4096];
		n = recv(c->fd, sink, sizeof(sink), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n > 0 && (c->lingered += (size_t)n) <= LINGER_MAX_BYTES)
			return;
		conn_close(c);
		return;
	}
	if (c->in_len == IN_BUF_SIZE && c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->tls_hs) {
		conn_tls_handshake(c);
		return;
	}
	if (c->tls_wr_wants_read) {
		c->tls_wr_wants_read = false;
		conn_flush(c);
		return;
	}
	if (c->in_len == IN_BUF_SIZE) { /* reading ahead, full: wait for the answer */
		ev_io_stop(loop, w);
		return;
	}
	n = c->ssl ? conn_tls_recv(c, c->in + c->in_len, IN_BUF_SIZE - c->in_len)
		   : recv(c->fd, c->in + c->in_len, IN_BUF_SIZE - c->in_len, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("%s: recv: %m", c->peer);
		conn_close(c);
		return;
	}
	if (n == 0) {
		if (c->resp_pending) { /* half-closed: finish the answer, then close */
			c->read_eof = true;
			ev_io_stop(loop, w);
			return;
		}
		if (c->req)
			log_debug("%s: client gone before its answer to %s %s", c->peer, c->req->method,
				  c->req->raw_path);
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	conn_process(c);
	conn_tls_kick(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *c = w->data;

	if (c->tls_hs)
		conn_tls_handshake(c);
	else
		conn_flush(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_conn *c = w->data;

	if (c->tls_hs) {
		conn_tls_refused(c, "handshake not finished in time");
		conn_close(c);
	} else if (c->n_out) {
		log_debug("%s: write timeout", c->peer);
		conn_close(c);
	} else if (c->lingering) {
		conn_close(c);
	} else if (c->started) {
		conn_fail(c, 408, "request not received in time");
	} else {
		log_debug("%s: idle timeout", c->peer);
		conn_close(c);
	}
}

/* ---- TLS on a connection ----
 *
 * The handshake runs from the connection's own watchers: SSL_do_handshake
 * says which of read or write it waits for, and the timer bounds it
 * (tls_handshake_timeout). Afterwards SSL_read and SSL_write take the place
 * of recv and sendmsg; OpenSSL may hold decrypted bytes the socket will not
 * signal again, so a read is re-fed from the loop while some are pending. */

static int conn_tls_start(struct http_conn *c)
{
	if (!(c->ssl = SSL_new(c->srv->tls)))
		return -ENOMEM;
	if (SSL_set_fd(c->ssl, c->fd) != 1)
		return -ENOMEM;
	SSL_set_accept_state(c->ssl);
	c->tls_hs = true;
	return 0;
}

/* Handshakes refused are logged (a flood: TLS_WARN_PER_SEC lines a second)
 * and counted. */
static void conn_tls_refused(struct http_conn *c, const char *why)
{
	struct http_server *s = c->srv;
	double sec = (double)(long long)ev_now(s->loop);

	s->tls_refused++;
	if (sec != s->tls_warn_second) {
		s->tls_warn_second = sec;
		s->tls_warn_n = 0;
	}
	if (s->tls_warn_n++ < TLS_WARN_PER_SEC)
		log_warn("%s: TLS connection refused: %s (%llu refused so far)", c->peer, why, s->tls_refused);
}

/* Plain HTTP on a TLS port: a readable answer, then close. */
static void conn_tls_refuse_plain(struct http_conn *c)
{
	size_t blen, hlen;
	cleanup_free char *body =
	    http_error_body("TlsRequired",
			    "this port speaks HTTPS only: use an https:// URL (and the CA certificate the "
			    "server's certificate is signed by)",
			    &blen);
	cleanup_free char *head = body ? http_response_head(400, "application/json", blen, "Connection: close\r\n",
							    NULL, ev_now(c->srv->loop), &hlen)
				       : NULL;

	conn_tls_refused(c, "plain HTTP on a TLS port");
	c->tls_hs = false;
	if (head) {
		struct iovec iov[2] = {{head, hlen}, {body, blen}};
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
		(void)!sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	ev_io_stop(c->srv->loop, &c->wio);
	conn_linger(c);
}

static void conn_tls_handshake(struct http_conn *c)
{
	struct ev_loop *loop = c->srv->loop;
	char why[256];
	int r, e;

	if (!c->tls_peeked) {
		unsigned char first[8];
		ssize_t n = recv(c->fd, first, sizeof(first), MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			log_debug("%s: gone before the TLS handshake", c->peer);
			conn_close(c);
			return;
		}
		c->tls_peeked = true;
		if (tls_looks_like_plain_http(first, (size_t)n)) {
			conn_tls_refuse_plain(c);
			return;
		}
	}
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->tls_hs = false;
		c->tls_ok = true;
		c->idle_since = ev_now(loop);
		ev_io_stop(loop, &c->wio);
		ev_io_start(loop, &c->rio);
		log_debug("%s: %s %s", c->peer, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
		conn_arm(c);
		ev_feed_event(loop, &c->rio, EV_READ); /* a request may have come with the handshake */
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ev_io_stop(loop, &c->wio);
		ev_io_start(loop, &c->rio);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		ev_io_start(loop, &c->wio);
		return;
	}
	tls_last_error(why, sizeof(why));
	if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		size_t l = strlen(why);
		snprintf(why + l, sizeof(why) - l, " (%s)",
			 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	} else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
		snprintf(why, sizeof(why), "the client closed the connection during the handshake");
	}
	conn_tls_refused(c, why);
	conn_close(c);
}

/* recv()'s contract: bytes, 0 at the end, -1 with errno (EAGAIN: later). */
static ssize_t conn_tls_recv(struct http_conn *c, char *buf, size_t len)
{
	int r, e;

	ERR_clear_error();
	r = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0))
		return 0;
	if (e == SSL_ERROR_SYSCALL && errno)
		return -1;
	c->tls_ok = false; /* broken: no close_notify on a failed stream */
	errno = EPROTO;
	return -1;
}

/* sendmsg()'s contract over SSL_write; small segments are gathered into one
 * record (an answer's head and body in one packet). A write OpenSSL could
 * not finish is repeated with the same length. */
static ssize_t conn_tls_send(struct http_conn *c, const struct iovec *iov, size_t n_iov)
{
	static char gather[TLS_GATHER];
	const char *data = iov[0].iov_base;
	size_t len = iov[0].iov_len;
	int r, e;

	if (n_iov > 1 && len < TLS_GATHER) {
		len = 0;
		for (size_t i = 0; i < n_iov && len < TLS_GATHER; i++) {
			size_t take = iov[i].iov_len < TLS_GATHER - len ? iov[i].iov_len : TLS_GATHER - len;
			memcpy(gather + len, iov[i].iov_base, take);
			len += take;
		}
		data = gather;
	}
	if (c->tls_retry_len && c->tls_retry_len <= len)
		len = c->tls_retry_len;
	ERR_clear_error();
	r = SSL_write(c->ssl, data, len > INT_MAX ? INT_MAX : (int)len);
	if (r > 0) {
		c->tls_retry_len = 0;
		return r;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		c->tls_retry_len = len;
		c->tls_wr_wants_read = e == SSL_ERROR_WANT_READ;
		errno = EAGAIN;
		return -1;
	}
	c->tls_ok = false;
	if (e != SSL_ERROR_SYSCALL || !errno)
		errno = EPROTO;
	return -1;
}

/* Decrypted bytes OpenSSL holds: read them from the loop. */
static void conn_tls_kick(struct http_conn *c)
{
	if (c->ssl && !c->closed && !c->tls_hs && ev_is_active(&c->rio) && SSL_pending(c->ssl) > 0)
		ev_feed_event(c->srv->loop, &c->rio, EV_READ);
}

int http_server_set_tls(struct http_server *s, SSL_CTX *ctx)
{
	if (ctx && SSL_CTX_up_ref(ctx) != 1)
		return -ENOMEM;
	SSL_CTX_free(s->tls);
	s->tls = ctx;
	return 0;
}

unsigned long long http_server_tls_refused(const struct http_server *s)
{
	return s->tls_refused;
}

/* "addr:port" into buf, the bare address (IPv4-mapped IPv6 as IPv4) into
 * host ("" for a unix socket). */
static void format_peer(const struct sockaddr_storage *ss, char *buf, size_t len, bool *loopback,
			char host[INET6_ADDRSTRLEN])
{
	strcpy(host, "?");
	*loopback = false;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, INET6_ADDRSTRLEN);
		snprintf(buf, len, "%s:%u", host, ntohs(a->sin_port));
		*loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, INET6_ADDRSTRLEN);
		snprintf(buf, len, "[%s]:%u", host, ntohs(a->sin6_port));
		*loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
			    (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) /* one client, whichever family it came in by */
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, INET6_ADDRSTRLEN);
	} else {
		host[0] = '\0';
		snprintf(buf, len, "unix");
		*loopback = ss->ss_family == AF_UNIX;
	}
}

static void conn_new(struct http_server *s, int fd, const struct sockaddr_storage *ss, const char *peer, bool loopback,
		     struct client_count *client)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		log_warn("out of memory accepting a connection");
		close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->peer_loopback = loopback;
	c->client = client;
	if (client)
		client->n++;
	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	http_parse_init(&c->parse, &s->lim);
	if (s->tls && conn_tls_start(c) < 0) {
		log_warn("%s: cannot start TLS: out of memory", peer);
		http_parse_free(&c->parse);
		close(fd);
		free(c);
		if (client)
			client_release(s, client);
		return;
	}
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	ev_init(&c->timer, conn_timer_cb);
	c->rio.data = c->wio.data = c->timer.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	c->idle_since = ev_now(s->loop);
	ev_io_start(s->loop, &c->rio);
	conn_arm(c);
}

/* ---- listeners ---- */

static void listeners_start(struct http_server *s, bool on)
{
	for (struct listener *l = s->listeners; l; l = l->next)
		if (on)
			ev_io_start(s->loop, &l->io);
		else
			ev_io_stop(s->loop, &l->io);
}

static void backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_server *s = w->data;

	if (!s->stopping)
		listeners_start(s, true);
}

static void refuse_warn(struct http_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse_warn(struct http_server *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (ev_now(s->loop) - s->last_cap_warn < 1.0)
		return; /* a flood makes one line a second */
	s->last_cap_warn = ev_now(s->loop);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("%s (turned away so far: %llu over a client's cap, %llu over the total, %llu idle closed)", msg,
		 (unsigned long long)s->refusals.client_cap, (unsigned long long)s->refusals.total_cap,
		 (unsigned long long)s->refusals.evicted);
}

/* The connection of `cc` idle longest (between requests, nothing pending). */
static struct http_conn *idle_of(struct http_server *s, struct client_count *cc)
{
	struct http_conn *best = NULL;
	for (struct http_conn *c = s->conns; c; c = c->next)
		if (c->client == cc && !c->started && !c->req && !c->resp_pending && !c->n_out && !c->lingering &&
		    (!best || c->idle_since < best->idle_since))
			best = c;
	return best;
}

/* Room for one more connection: a client (TCP peer address) gets at most
 * max_connections_per_client; past max_connections in all, the idle
 * connection held longest by the client holding the most goes, unless the
 * newcomer is that client itself, so that one client cannot keep everyone
 * else (a health check, another user) out. */
static void conn_admit(struct http_server *s, int fd, const struct sockaddr_storage *ss)
{
	char peer[64], addr[INET6_ADDRSTRLEN];
	struct client_count *cc = NULL;
	bool loopback;

	format_peer(ss, peer, sizeof(peer), &loopback, addr);
	if (addr[0] && !(cc = client_get(s, addr))) {
		close(fd);
		return;
	}
	if (cc && s->lim.max_connections_per_client && cc->n >= s->lim.max_connections_per_client) {
		s->refusals.client_cap++;
		refusals_all.client_cap++;
		refuse_warn(s,
			    "client %s holds %zu connections, its maximum (max_connections_per_client): refusing more",
			    addr, cc->n);
		close(fd);
		return;
	}
	if (s->n_conns >= s->lim.max_connections) {
		struct client_count *big = client_biggest(s);
		struct http_conn *victim = big && big != cc && big->n > (cc ? cc->n : 0) + 1 ? idle_of(s, big) : NULL;
		if (!victim) {
			s->refusals.total_cap++;
			refusals_all.total_cap++;
			refuse_warn(s, "%zu connections open, the maximum (max_connections): refusing %s", s->n_conns,
				    peer);
			close(fd);
			client_forget(s, cc);
			return;
		}
		s->refusals.evicted++;
		refusals_all.evicted++;
		refuse_warn(s,
			    "%zu connections open, the maximum (max_connections): closing an idle one of %s (%zu open)",
			    s->n_conns, big->addr, big->n);
		conn_close(victim);
	}
	conn_new(s, fd, ss, peer, loopback, cc);
}

static void listener_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	struct http_server *s = l->srv;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss = {0};
		socklen_t sl = sizeof(ss);
		int fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* out of fds or memory: retry soon instead of spinning on a ready socket */
			log_warn("accept: %m; pausing accepts for %.0f ms", ACCEPT_BACKOFF * 1000);
			listeners_start(s, false);
			ev_timer_set(&s->backoff, ACCEPT_BACKOFF, 0.);
			ev_timer_start(loop, &s->backoff);
			return;
		}
		conn_admit(s, fd, &ss);
	}
}

static void listeners_close(struct http_server *s)
{
	while (s->listeners) {
		struct listener *l = s->listeners;
		s->listeners = l->next;
		ev_io_stop(s->loop, &l->io);
		close(l->io.fd);
		if (l->unix_path)
			unlink(l->unix_path);
		free(l->unix_path);
		free(l);
	}
}

static int parse_address(const char *address, struct sockaddr_storage *ss, socklen_t *sl)
{
	/* numeric only: no DNS look-up blocking the start */
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV},
			*res;
	char host[256];
	const char *port, *end;
	size_t n;
	int e;

	if (strncmp(address, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		const char *path = address + 5;
		if (!*path)
			return -EINVAL;
		if (strlen(path) >= sizeof(un->sun_path))
			return -ENAMETOOLONG;
		memset(ss, 0, sizeof(*ss));
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		*sl = sizeof(*un);
		return 0;
	}
	if (address[0] == '[') {
		if (!(end = strchr(address, ']')) || end[1] != ':')
			return -EINVAL;
		address++;
		port = end + 2;
	} else {
		if (!(end = strrchr(address, ':')) || memchr(address, ':', (size_t)(end - address)))
			return -EINVAL;
		port = end + 1;
	}
	n = (size_t)(end - address);
	if (n >= sizeof(host) || !*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
	    atoi(port) > 65535)
		return -EINVAL;
	memcpy(host, address, n);
	host[n] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	e = getaddrinfo(n ? host : NULL, port, &hints, &res);
	if (e)
		return e == EAI_MEMORY ? -ENOMEM : e == EAI_SYSTEM ? -errno : -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int http_server_listen(struct http_server *s, const char *address)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	cleanup_close int fd = -1;
	cleanup_free char *path = NULL;
	struct listener *l;
	int one = 1, r;

	if (s->stopping)
		return -ESHUTDOWN;
	r = parse_address(address, &ss, &sl);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (ss.ss_family == AF_UNIX) {
		struct stat st;
		if (!(path = strdup(((struct sockaddr_un *)&ss)->sun_path)))
			return -ENOMEM;
		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
			return -EEXIST; /* never remove what is not a socket */
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	} else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		return -errno;
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	if (path && chmod(path, 0660) < 0) {
		r = -errno;
		unlink(path);
		return r;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		if (path)
			unlink(path);
		return r;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	l->srv = s;
	l->port = ss.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
		  : ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					     : -1;
	l->unix_path = steal_pointer(&path);
	ev_io_init(&l->io, listener_cb, steal_fd(&fd), EV_READ);
	l->io.data = l;
	l->next = s->listeners;
	s->listeners = l;
	ev_io_start(s->loop, &l->io);
	log_debug("listening on %s", address);
	return 0;
}

/* ---- server ---- */

static void reaper_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct http_server *s = w->data;
	void (*done)(void *data) = NULL;

	while (s->dead) {
		struct http_conn *c = s->dead;
		s->dead = c->next;
		conn_free(c);
	}
	ev_prepare_stop(loop, w);
	if (s->stopping && s->done && s->n_conns == 0) {
		done = s->done;
		s->done = NULL;
		done(s->done_data); /* may free s */
	}
}

struct http_server *http_server_new(struct ev_loop *loop, const struct http_limits *limits, http_handler_fn handler,
				    void *data)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->loop = loop;
	if (limits)
		s->lim = *limits;
	else
		http_limits_default(&s->lim);
	s->handler = handler;
	s->data = data;
	ev_prepare_init(&s->reaper, reaper_cb);
	ev_init(&s->backoff, backoff_cb);
	s->reaper.data = s->backoff.data = s;
	return s;
}

void http_server_stop(struct http_server *s, void (*done)(void *data), void *data)
{
	struct http_conn *c, *next;

	s->stopping = true;
	s->done = done;
	s->done_data = data;
	listeners_close(s);
	ev_timer_stop(s->loop, &s->backoff);
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->req || c->resp_pending || (c->started && !c->lingering))
			c->close_after = true; /* finish this request, then close */
		else
			conn_close(c);
	}
	ev_prepare_start(s->loop, &s->reaper); /* reports `done` from the loop */
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	listeners_close(s);
	while (s->conns)
		conn_close(s->conns);
	while (s->dead) {
		struct http_conn *c = s->dead;
		s->dead = c->next;
		conn_free(c);
	}
	ev_prepare_stop(s->loop, &s->reaper);
	ev_timer_stop(s->loop, &s->backoff);
	SSL_CTX_free(s->tls);
	free(s);
}

void http_server_refusals(const struct http_server *s, struct http_server_refusals *out)
{
	*out = s ? s->refusals : refusals_all;
}

size_t http_server_connections(const struct http_server *s)
{
	return s->n_conns;
}

int http_server_port(const struct http_server *s)
{
	for (const struct listener *l = s->listeners; l; l = l->next)
		if (l->port >= 0)
			return l->port;
	return -1;
}

/* ---- requests ---- */

bool http_request_gone(const struct http_request *req)
{
	return !req->conn_ || req->conn_->closed;
}

int http_respond_owned(struct http_request *req, int status, const char *content_type, const char *headers, char *body,
		       size_t len)
{
	struct http_conn *c = req->conn_;

	if (req->on_answer)
		req->on_answer(req, status);
	if (!c || c->closed) {
		log_debug("%s %s %s: client gone, answer %d dropped", req->peer, req->method, req->raw_path, status);
		free(body);
		http_request_free(req);
		return -ECONNRESET;
	}
	log_debug("%s %s %s %d %zu bytes %.1f ms", req->peer, req->method, req->raw_path, status, len,
		  (ev_now(c->srv->loop) - req->received_at) * 1000);
	c->req = NULL;
	http_request_free(req);
	return conn_respond(c, status, content_type, headers, body, len);
}

int http_respond(struct http_request *req, int status, const char *content_type, const char *headers, const void *body,
		 size_t len)
{
	char *copy = NULL;

	if (len && !(copy = malloc(len))) {
		copy = strdup("{\"error\":{\"code\":\"InternalError\",\"message\":\"out of memory\"}}");
		return http_respond_owned(req, 500, "application/json", NULL, copy, copy ? strlen(copy) : 0);
	}
	if (len)
		memcpy(copy, body, len);
	return http_respond_owned(req, status, content_type, headers, copy, len);
}

int http_respond_json(struct http_request *req, int status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) : NULL;

	json_decref(body);
	if (!s)
		return http_respond_error(req, 500, "InternalError", "cannot encode the answer");
	return http_respond_owned(req, status, "application/json", NULL, s, strlen(s));
}

int http_respond_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	size_t len;
	char *body;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	body = http_error_body(code, msg, &len);
	return http_respond_owned(req, status, "application/json", NULL, body, len);
}

int http_respond_error_retry(struct http_request *req, int status, double retry_after, const char *code,
			     const char *fmt, ...)
{
	char msg[512], hdr[48] = "";
	size_t len;
	char *body;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (retry_after > 0)
		snprintf(hdr, sizeof(hdr), "Retry-After: %.0f\r\n", retry_after < 1 ? 1 : retry_after + 0.5);
	body = http_error_body(code, msg, &len);
	return http_respond_owned(req, status, "application/json", hdr[0] ? hdr : NULL, body, len);
}
