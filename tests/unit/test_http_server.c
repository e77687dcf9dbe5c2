/* test_http_server.c — the HTTP server driven over real sockets, as a client
 * would: a server runs its own libev loop in a thread, listening on
 * 127.0.0.1 (ephemeral port) and on a unix socket; the test talks to it with
 * blocking sockets (3 s receive timeout, so nothing hangs) and parses the
 * answers with http-parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http_server.h"
#include "cleanup.h"
#include "log.h"

/* ---- the server, in its own thread ---- */

enum { CMD_NONE, CMD_STOP, CMD_QUIT };

struct pending {
	struct pending *next;
	ev_timer timer;
	struct http_request *req;
	bool probe_gone;
};

static struct server {
	struct ev_loop *loop;
	struct http_server *http;
	pthread_t thread;
	ev_async wake;
	int port;
	char sock_path[64];
	struct pending *pending; /* server thread only */
	atomic_int cmd;
	atomic_int done_called;
	atomic_int gone_seen; /* -1 until the probe ran, then http_request_gone() */
	atomic_int gone_ret;
} S;

static struct http_limits test_limits(void)
{
	struct http_limits l;

	http_limits_default(&l);
	l.max_header_bytes = 2048;
	l.max_headers = 10;
	l.max_body_bytes = 4096;
	l.idle_timeout = l.request_timeout = l.write_timeout = 3;
	l.max_connections = 16;
	return l;
}

static void pending_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pending *p = w->data, **pp;

	for (pp = &S.pending; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	if (p->probe_gone) {
		atomic_store(&S.gone_seen, http_request_gone(p->req));
		atomic_store(&S.gone_ret, http_respond(p->req, 200, "text/plain", NULL, "late", 4));
	} else {
		http_respond(p->req, 200, "text/plain", NULL, "async", 5);
	}
	free(p);
}

static void answer_later(struct http_request *req, bool probe_gone)
{
	cleanup_free char *ms = http_request_query(req, "ms");
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		abort(); /* no cmocka assertions in the server thread */
	p->req = req;
	p->probe_gone = probe_gone;
	ev_timer_init(&p->timer, pending_cb, (ms ? atoi(ms) : 100) / 1000.0, 0.);
	p->timer.data = p;
	ev_timer_start(S.loop, &p->timer);
	p->next = S.pending;
	S.pending = p;
}

static void handler(struct http_request *req, void *data)
{
	if (strcmp(req->path, "/hello") == 0) {
		http_respond(req, 200, "text/plain", "X-Extra: 1\r\n", "hello", 5);
	} else if (strcmp(req->path, "/echo") == 0) {
		http_respond(req, 200, "application/octet-stream", NULL, req->body, req->body_len);
	} else if (strncmp(req->path, "/info", 5) == 0) {
		char *q[5];
		json_t *h = json_object();
		for (size_t i = 0; i < req->n_headers; i++)
			json_object_set_new(h, req->headers[i].name, json_string(req->headers[i].value));
		for (int i = 0; i < 5; i++)
			q[i] = http_request_query(req, (const char *[]){"a", "b", "c", "d", "e"}[i]);
		http_respond_json(req, 200,
				  json_pack("{s:s,s:s,s:s,s:s,s:s*,s:s*,s:s*,s:s*,s:s*,s:b,s:s,s:I,s:s*,s:o}", "method",
					    req->method, "path", req->path, "raw_path", req->raw_path, "query",
					    req->query, "a", q[0], "b", q[1], "c", q[2], "d", q[3], "e", q[4],
					    "loopback", req->peer_loopback, "peer", req->peer, "body_len",
					    (json_int_t)req->body_len, "x-test", http_request_header(req, "x-test"),
					    "headers", h));
		for (int i = 0; i < 5; i++)
			free(q[i]);
	} else if (strcmp(req->path, "/async") == 0) {
		answer_later(req, false);
	} else if (strcmp(req->path, "/gone") == 0) {
		answer_later(req, true);
	} else if (strcmp(req->path, "/big") == 0) {
		cleanup_free char *mb = http_request_query(req, "mb");
		size_t n = (size_t)(mb ? atoi(mb) : 8) << 20;
		char *b = malloc(n);
		if (!b)
			abort();
		for (size_t i = 0; i < n; i++)
			b[i] = (char)(i % 251);
		http_respond_owned(req, 200, "application/octet-stream", NULL, b, n);
	} else if (strcmp(req->path, "/count") == 0) {
		char n[32];
		snprintf(n, sizeof(n), "%zu", http_server_connections(S.http));
		http_respond(req, 200, "text/plain", NULL, n, strlen(n));
	} else if (strcmp(req->path, "/error") == 0) {
		http_respond_error(req, 409, "conflict", "slot %d busy", 3);
	} else {
		http_respond_error(req, 404, "not_found", "no route for %s", req->path);
	}
}

static void stopped(void *data)
{
	atomic_store(&S.done_called, 1);
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	if (atomic_load(&S.cmd) == CMD_STOP) {
		http_server_stop(S.http, stopped, NULL);
		return;
	}
	while (S.pending) { /* answer what a test left behind */
		struct pending *p = S.pending;
		S.pending = p->next;
		ev_timer_stop(loop, &p->timer);
		http_respond_error(p->req, 503, "shutting_down", "test over");
		free(p);
	}
	http_server_free(S.http);
	ev_async_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

static void *server_thread(void *arg)
{
	ev_run(S.loop, 0);
	return NULL;
}

static void command(int cmd)
{
	atomic_store(&S.cmd, cmd);
	ev_async_send(S.loop, &S.wake);
}

static int setup(void **state)
{
	struct http_limits l = *state ? *(struct http_limits *)*state : test_limits();
	char addr[80];

	memset(&S, 0, sizeof(S));
	atomic_store(&S.gone_seen, -1);
	S.loop = ev_loop_new(EVFLAG_AUTO);
	S.http = http_server_new(S.loop, &l, handler, NULL);
	assert_non_null(S.http);
	assert_int_equal(http_server_listen(S.http, "127.0.0.1:0"), 0);
	S.port = http_server_port(S.http);
	assert_true(S.port > 0);
	snprintf(S.sock_path, sizeof(S.sock_path), "/tmp/wp-test-http-%d.sock", (int)getpid());
	snprintf(addr, sizeof(addr), "unix:%s", S.sock_path);
	assert_int_equal(http_server_listen(S.http, addr), 0);
	ev_async_init(&S.wake, wake_cb);
	ev_async_start(S.loop, &S.wake);
	assert_int_equal(pthread_create(&S.thread, NULL, server_thread, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	command(CMD_QUIT);
	pthread_join(S.thread, NULL);
	ev_loop_destroy(S.loop);
	unlink(S.sock_path);
	return 0;
}

/* ---- the client side ---- */

struct resp {
	int status;
	char *body;
	size_t body_len;
	char connection[32], content_type[64], content_length[32], extra[16];
	char field[64];
	char *target; /* header value being filled, or NULL */
	size_t target_size;
};

struct client {
	int fd;
	http_parser p;
	struct resp *r;
	bool done, head;
	size_t off, len;
	char buf[65536];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int c_field(http_parser *p, const char *at, size_t n)
{
	struct client *c = p->data;
	size_t l = strlen(c->r->field);

	if (c->r->target) { /* a new header starts */
		c->r->target = NULL;
		l = 0;
	}
	for (size_t i = 0; i < n && l + 1 < sizeof(c->r->field); i++)
		c->r->field[l++] = (char)(at[i] | 0x20);
	c->r->field[l] = '\0';
	return 0;
}

static int c_value(http_parser *p, const char *at, size_t n)
{
	struct resp *r = ((struct client *)p->data)->r;
	size_t l;

	if (!r->target) {
		r->target = strcmp(r->field, "connection") == 0	      ? r->connection
			    : strcmp(r->field, "content-type") == 0   ? r->content_type
			    : strcmp(r->field, "content-length") == 0 ? r->content_length
			    : strcmp(r->field, "x-extra") == 0	      ? r->extra
								      : r->field;
		r->target_size = r->target == r->connection	  ? sizeof(r->connection)
				 : r->target == r->content_type	  ? sizeof(r->content_type)
				 : r->target == r->content_length ? sizeof(r->content_length)
				 : r->target == r->extra	  ? sizeof(r->extra)
								  : 0;
	}
	l = strlen(r->target);
	if (r->target_size && l + n < r->target_size) {
		memcpy(r->target + l, at, n);
		r->target[l + n] = '\0';
	}
	r->field[0] = '\0';
	return 0;
}

static int c_headers_complete(http_parser *p)
{
	struct client *c = p->data;
	return c->head && p->status_code >= 200 ? 1 : 0;
}

static int c_body(http_parser *p, const char *at, size_t n)
{
	struct resp *r = ((struct client *)p->data)->r;

	r->body = realloc(r->body, r->body_len + n + 1);
	memcpy(r->body + r->body_len, at, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return 0;
}

static int c_complete(http_parser *p)
{
	struct client *c = p->data;

	c->r->status = (int)p->status_code;
	c->done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings client_settings = {
    .on_header_field = c_field,
    .on_header_value = c_value,
    .on_headers_complete = c_headers_complete,
    .on_body = c_body,
    .on_message_complete = c_complete,
};

static struct client *client_open(int fd)
{
	struct client *c = calloc(1, sizeof(*c));
	struct timeval tv = {3, 0};

	assert_non_null(c);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->fd = fd;
	http_parser_init(&c->p, HTTP_RESPONSE);
	c->p.data = c;
	return c;
}

static int tcp_socket(int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static struct client *tcp_client(void)
{
	return client_open(tcp_socket(0));
}

static struct client *unix_client(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(a.sun_path, S.sock_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return client_open(fd);
}

static void client_close(struct client *c)
{
	if (c) {
		close(c->fd);
		free(c);
	}
}

static void resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void send_raw(struct client *c, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

static void send_str(struct client *c, const char *s)
{
	send_raw(c, s, strlen(s));
}

/* Read one whole answer; 0, or -1 on EOF, error or timeout before its end. */
static int read_response(struct client *c, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	c->r = r;
	c->done = false;
	for (;;) {
		if (c->off < c->len) {
			if (HTTP_PARSER_ERRNO(&c->p) == HPE_PAUSED)
				http_parser_pause(&c->p, 0);
			c->off += http_parser_execute(&c->p, &client_settings, c->buf + c->off, c->len - c->off);
			if (c->done)
				return 0;
			if (HTTP_PARSER_ERRNO(&c->p) != HPE_OK)
				return -1;
			continue;
		}
		ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (n <= 0)
			return -1;
		c->off = 0;
		c->len = (size_t)n;
	}
}

/* The server closed the connection (EOF or reset) without sending more. */
static bool closed_by_server(struct client *c)
{
	char b[256];
	ssize_t n;

	if (c->off < c->len)
		return false;
	n = recv(c->fd, b, sizeof(b), 0);
	return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
}

static void get_ok(struct client *c, const char *path, const char *body)
{
	char req[256];
	struct resp r;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
	send_str(c, req);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	if (body)
		assert_string_equal(r.body, body);
	resp_free(&r);
}

static json_t *resp_json(struct resp *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, &e);
	assert_non_null(j);
	return j;
}

static const char *jstr(const json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* ---- tests ---- */

static void test_get_tcp(void **state)
{
	struct client *c = tcp_client();
	struct resp r;

	send_str(c, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello");
	assert_string_equal(r.content_length, "5");
	assert_string_equal(r.content_type, "text/plain");
	assert_string_equal(r.extra, "1");
	assert_string_equal(r.connection, ""); /* keep-alive is the default */
	resp_free(&r);
	client_close(c);
}

static void test_unix_socket(void **state)
{
	struct client *c = unix_client();
	struct stat st;
	struct resp r;

	assert_int_equal(stat(S.sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	get_ok(c, "/hello", "hello");
	send_str(c, "GET /info HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	cleanup_json json_t *j = resp_json(&r);
	assert_string_equal(jstr(j, "peer"), "unix");
	assert_true(json_is_true(json_object_get(j, "loopback")));
	resp_free(&r);
	client_close(c);
}

static void test_request_fields(void **state)
{
	struct client *c = tcp_client();
	struct resp r;

	send_str(c, "GET /info/caf%C3%A9%20x?a=x%20y&b=1+2&c&e=%zz HTTP/1.1\r\nHost: test\r\n"
		    "X-Test:   Some Value  \r\nX-EMPTY:\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "application/json");
	cleanup_json json_t *j = resp_json(&r);
	assert_string_equal(jstr(j, "method"), "GET");
	assert_string_equal(jstr(j, "path"), "/info/caf\xc3\xa9 x");
	assert_string_equal(jstr(j, "raw_path"), "/info/caf%C3%A9%20x");
	assert_string_equal(jstr(j, "query"), "a=x%20y&b=1+2&c&e=%zz");
	assert_string_equal(jstr(j, "a"), "x y");
	assert_string_equal(jstr(j, "b"), "1 2");
	assert_string_equal(jstr(j, "c"), "");
	assert_null(json_object_get(j, "d")); /* absent */
	assert_null(json_object_get(j, "e")); /* bad escape */
	assert_string_equal(jstr(j, "x-test"), "Some Value");
	assert_string_equal(jstr(json_object_get(j, "headers"), "x-empty"), "");
	assert_string_equal(jstr(json_object_get(j, "headers"), "host"), "test");
	assert_true(json_is_true(json_object_get(j, "loopback")));
	assert_true(strncmp(jstr(j, "peer"), "127.0.0.1:", 10) == 0);
	resp_free(&r);

	/* no query at all */
	send_str(c, "GET /info HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	cleanup_json json_t *k = resp_json(&r);
	assert_string_equal(jstr(k, "query"), "");
	assert_null(json_object_get(k, "a"));
	resp_free(&r);
	client_close(c);
}

static void test_post_body(void **state)
{
	struct client *c = tcp_client();
	char body[1000], req[128];
	struct resp r;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %zu\r\n\r\n", sizeof(body));
	send_str(c, req);
	msleep(20); /* body in a second segment */
	send_raw(c, body, sizeof(body));
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, sizeof(body));
	assert_memory_equal(r.body, body, sizeof(body));
	resp_free(&r);

	/* chunked, with a binary NUL inside */
	send_str(c, "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "6\r\nhello \r\n");
	send_raw(c, "6\r\nwo\0rld\r\n0\r\n\r\n", 16);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 12);
	assert_memory_equal(r.body, "hello wo\0rld", 12);
	resp_free(&r);

	/* exactly max_body_bytes is fine */
	char big[4096 + 128];
	int n = snprintf(big, sizeof(big), "POST /info HTTP/1.1\r\nHost: test\r\nContent-Length: 4096\r\n\r\n");
	memset(big + n, 'x', 4096);
	send_raw(c, big, (size_t)n + 4096);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	cleanup_json json_t *j = resp_json(&r);
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 4096);
	resp_free(&r);
	client_close(c);
}

static struct http_limits big_bodies = {
    .max_header_bytes = 2048,
    .max_headers = 64,
    .max_body_bytes = 1 << 20,
    .idle_timeout = 3,
    .request_timeout = 3,
    .write_timeout = 3,
    .max_connections = 16,
};

static void test_large_body(void **state)
{
	struct client *c = tcp_client();
	size_t n = 300 * 1000;
	char *body = malloc(n), head[160];
	struct resp r;

	assert_non_null(body);
	for (size_t i = 0; i < n; i++)
		body[i] = (char)(i % 253);
	snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %zu\r\n\r\n", n);
	send_str(c, head);
	send_raw(c, body, n);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, n);
	assert_memory_equal(r.body, body, n);
	resp_free(&r);

	/* the same in 1000-byte chunks */
	send_str(c, "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (size_t off = 0; off < n; off += 1000) {
		send_str(c, "3e8\r\n");
		send_raw(c, body + off, 1000);
		send_str(c, "\r\n");
	}
	send_str(c, "0\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, n);
	assert_memory_equal(r.body, body, n);
	resp_free(&r);
	free(body);
	client_close(c);
}

static void test_expect_continue(void **state)
{
	struct client *c = tcp_client();
	struct resp r;

	send_str(c, "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 100);
	resp_free(&r);
	send_str(c, "abcde");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "abcde");
	resp_free(&r);
	client_close(c);
}

static void test_keep_alive(void **state)
{
	struct client *c = tcp_client();

	get_ok(c, "/hello", "hello");
	get_ok(c, "/hello", "hello");
	get_ok(c, "/count", "1");
	client_close(c);
}

static void test_pipelined(void **state)
{
	struct client *c = tcp_client();
	struct resp r;
	double t0 = now();

	/* the slow one first: the others must wait for it */
	send_str(c, "GET /async?ms=150 HTTP/1.1\r\nHost: test\r\n\r\n"
		    "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"
		    "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nxyz"
		    "GET /info?a=4 HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_string_equal(r.body, "async");
	assert_true(now() - t0 >= 0.14);
	resp_free(&r);
	assert_int_equal(read_response(c, &r), 0);
	assert_string_equal(r.body, "hello");
	resp_free(&r);
	assert_int_equal(read_response(c, &r), 0);
	assert_string_equal(r.body, "xyz");
	resp_free(&r);
	assert_int_equal(read_response(c, &r), 0);
	cleanup_json json_t *j = resp_json(&r);
	assert_string_equal(jstr(j, "a"), "4");
	resp_free(&r);
	get_ok(c, "/hello", "hello"); /* and the connection is still usable */
	client_close(c);
}

static void test_async(void **state)
{
	struct client *c = tcp_client(), *d = unix_client();
	struct resp r;
	double t0 = now();

	send_str(c, "GET /async?ms=300 HTTP/1.1\r\nHost: test\r\n\r\n");
	get_ok(d, "/hello", "hello"); /* the loop serves others meanwhile */
	assert_true(now() - t0 < 0.25);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "async");
	assert_true(now() - t0 >= 0.29);
	resp_free(&r);
	client_close(c);
	client_close(d);
}

static void test_client_gone(void **state)
{
	struct client *c = tcp_client();
	double t0 = now();

	send_str(c, "GET /gone?ms=200 HTTP/1.1\r\nHost: test\r\n\r\n");
	msleep(50);
	client_close(c);
	while (atomic_load(&S.gone_seen) < 0 && now() - t0 < 2)
		msleep(10);
	assert_int_equal(atomic_load(&S.gone_seen), 1);
	assert_true(atomic_load(&S.gone_ret) < 0);
	c = tcp_client();
	get_ok(c, "/count", "1");
	client_close(c);
}

static void test_http10(void **state)
{
	struct client *c = tcp_client();
	struct resp r;

	send_str(c, "GET /hello HTTP/1.0\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.connection, "close");
	assert_true(closed_by_server(c));
	resp_free(&r);
	client_close(c);

	c = tcp_client();
	send_str(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_string_equal(r.connection, "keep-alive");
	resp_free(&r);
	get_ok(c, "/hello", "hello");
	client_close(c);
}

static void test_connection_close(void **state)
{
	struct client *c = tcp_client();
	struct resp r;

	send_str(c, "GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.connection, "close");
	assert_true(closed_by_server(c));
	resp_free(&r);
	client_close(c);
}

static void test_head(void **state)
{
	struct client *c = tcp_client();
	struct resp r;

	c->head = true;
	send_str(c, "HEAD /big?mb=1 HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_length, "1048576");
	assert_int_equal(r.body_len, 0);
	resp_free(&r);
	c->head = false;
	get_ok(c, "/hello", "hello"); /* no body was sent after the head */
	client_close(c);
}

static void expect_refusal(const char *request, size_t len, int status, const char *code)
{
	struct client *c = tcp_client();
	struct resp r;

	send_raw(c, request, len);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, status);
	assert_string_equal(r.connection, "close");
	assert_string_equal(r.content_type, "application/json");
	cleanup_json json_t *j = resp_json(&r);
	assert_string_equal(jstr(json_object_get(j, "error"), "code"), code);
	assert_non_null(jstr(json_object_get(j, "error"), "message"));
	assert_true(closed_by_server(c));
	resp_free(&r);
	client_close(c);
}

#define REFUSE(req, status, code) expect_refusal(req, sizeof(req) - 1, status, code)

static void test_bad_requests(void **state)
{
	REFUSE("HELLO WORLD\r\n\r\n", 400, "BadRequest");
	REFUSE("GET /hello HTTP/1.1\r\nHost: test\r\nBad Header\r\n\r\n", 400, "BadRequest");
	REFUSE("GET /a%zz HTTP/1.1\r\nHost: test\r\n\r\n", 400, "BadRequest");
	REFUSE("GET /a%00b HTTP/1.1\r\nHost: test\r\n\r\n", 400, "BadRequest");
	REFUSE("GET /a%4 HTTP/1.1\r\nHost: test\r\n\r\n", 400, "BadRequest");
	REFUSE("CONNECT example.com:443 HTTP/1.1\r\nHost: test\r\n\r\n", 400, "BadRequest");
	/* smuggling: both lengths */
	REFUSE("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
	       "0\r\n\r\n",
	       400, "BadRequest");
	REFUSE("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
	       "BadRequest");
	REFUSE("POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "BadRequest");
	/* a good request, then garbage: the first is answered, the garbage refused */
	struct client *c = tcp_client();
	struct resp r;
	send_str(c, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n\x01\x02garbage\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_true(closed_by_server(c));
	client_close(c);
	/* errors from handlers keep the connection */
	c = tcp_client();
	send_str(c, "GET /error HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 409);
	assert_string_equal(r.body, "{\"error\":{\"code\":\"conflict\",\"message\":\"slot 3 busy\"}}");
	resp_free(&r);
	send_str(c, "GET /nowhere HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	get_ok(c, "/hello", "hello");
	client_close(c);
}

static void test_body_too_large(void **state)
{
	/* refused on the Content-Length, before the body is sent */
	REFUSE("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4097\r\n\r\n", 413, "PayloadTooLarge");
	REFUSE("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "BadRequest");

	/* chunked: refused once the running total passes the bound */
	char req[8192 + 256];
	int n = snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 2; i++) {
		n += snprintf(req + n, sizeof(req) - (size_t)n, "800\r\n");
		memset(req + n, 'y', 2048);
		n += 2048;
		n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	}
	n += snprintf(req + n, sizeof(req) - (size_t)n, "1\r\nz\r\n0\r\n\r\n");
	expect_refusal(req, (size_t)n, 413, "PayloadTooLarge");

	/* with the body actually sent, the client still reads the answer */
	char big[16384 + 128];
	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 16384\r\n\r\n");
	memset(big + n, 'q', 16384);
	expect_refusal(big, (size_t)n + 16384, 413, "PayloadTooLarge");
}

static void test_headers_too_large(void **state)
{
	char req[4096];
	int n;

	/* 10 headers is the bound: fine */
	n = snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: test\r\n");
	for (int i = 0; i < 9; i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: v\r\n", i);
	snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	struct client *c = tcp_client();
	struct resp r;
	send_str(c, req);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	client_close(c);

	/* 11 */
	n = snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: test\r\n");
	for (int i = 0; i < 10; i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: v\r\n", i);
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	expect_refusal(req, (size_t)n, 431, "HeadersTooLarge");

	/* one long header */
	n = snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: test\r\nX-Long: ");
	memset(req + n, 'l', 3000);
	n += 3000;
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n\r\n");
	expect_refusal(req, (size_t)n, 431, "HeadersTooLarge");

	/* a long URL counts too */
	n = snprintf(req, sizeof(req), "GET /hello?");
	memset(req + n, 'u', 3000);
	n += 3000;
	n += snprintf(req + n, sizeof(req) - (size_t)n, " HTTP/1.1\r\nHost: test\r\n\r\n");
	expect_refusal(req, (size_t)n, 431, "HeadersTooLarge");
}

static struct http_limits short_timeouts = {
    .max_header_bytes = 2048,
    .max_headers = 64,
    .max_body_bytes = 4096,
    .idle_timeout = 0.3,
    .request_timeout = 0.3,
    .write_timeout = 0.3,
    .max_connections = 16,
};

static void test_slow_client(void **state)
{
	struct client *c = tcp_client();
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	double t0 = now();
	struct resp r;

	/* slow loris: a header byte every 50 ms; the request bound is 0.3 s */
	send_str(c, "GET /hello HTTP/1.1\r\n");
	while (poll(&pfd, 1, 50) == 0 && now() - t0 < 3)
		send_str(c, "X");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 408);
	assert_string_equal(r.connection, "close");
	assert_true(closed_by_server(c));
	assert_true(now() - t0 >= 0.25);
	assert_true(now() - t0 < 1.5);
	resp_free(&r);
	client_close(c);
}

static void test_idle_timeout(void **state)
{
	struct client *c = tcp_client();
	double t0;

	get_ok(c, "/hello", "hello");
	t0 = now();
	assert_true(closed_by_server(c));
	assert_true(now() - t0 >= 0.25);
	assert_true(now() - t0 < 1.5);
	client_close(c);

	/* a connection that never sends */
	c = tcp_client();
	t0 = now();
	assert_true(closed_by_server(c));
	assert_true(now() - t0 < 1.5);
	client_close(c);
}

static void test_big_response(void **state)
{
	struct client *c = tcp_client();
	struct resp r;

	send_str(c, "GET /big?mb=8 HTTP/1.1\r\nHost: test\r\n\r\n");
	msleep(200); /* let the server fill the socket and wait on EV_WRITE */
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 8 << 20);
	for (size_t i = 0; i < r.body_len; i += 4093)
		assert_int_equal((unsigned char)r.body[i], i % 251);
	resp_free(&r);
	get_ok(c, "/hello", "hello");
	client_close(c);

	/* a client leaving mid-answer must not take the server down (SIGPIPE) */
	c = tcp_client();
	send_str(c, "GET /big?mb=16 HTTP/1.1\r\nHost: test\r\n\r\n");
	char buf[1000];
	assert_true(recv(c->fd, buf, sizeof(buf), 0) > 0);
	client_close(c);
	msleep(50);
	c = unix_client();
	get_ok(c, "/hello", "hello");
	client_close(c);
}

static void test_write_timeout(void **state)
{
	struct client *stuck = client_open(tcp_socket(4096)), *c;
	double t0 = now();
	struct resp r;
	bool dropped = false;

	send_str(stuck, "GET /big?mb=16 HTTP/1.1\r\nHost: test\r\n\r\n");
	msleep(100);
	c = unix_client();
	get_ok(c, "/count", "2");
	while (!dropped && now() - t0 < 3) {
		msleep(50);
		send_str(c, "GET /count HTTP/1.1\r\nHost: test\r\n\r\n");
		assert_int_equal(read_response(c, &r), 0);
		dropped = strcmp(r.body, "1") == 0;
		resp_free(&r);
	}
	assert_true(dropped);
	assert_true(now() - t0 < 2);
	client_close(c);
	client_close(stuck);
}

static struct http_limits three_connections = {
    .max_header_bytes = 2048,
    .max_headers = 64,
    .max_body_bytes = 4096,
    .idle_timeout = 5,
    .request_timeout = 5,
    .write_timeout = 5,
    .max_connections = 3,
};

static void test_max_connections(void **state)
{
	struct client *c[3], *extra;
	double t0;
	bool served = false;

	for (int i = 0; i < 3; i++) {
		c[i] = i == 1 ? unix_client() : tcp_client();
		get_ok(c[i], "/hello", "hello");
	}
	extra = tcp_client();
	send_str(extra, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_true(closed_by_server(extra));
	client_close(extra);
	get_ok(c[2], "/count", "3");

	client_close(c[0]);
	t0 = now();
	while (!served && now() - t0 < 2) {
		struct resp r;
		extra = tcp_client();
		send_str(extra, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
		served = read_response(extra, &r) == 0 && r.status == 200;
		resp_free(&r);
		client_close(extra);
		if (!served)
			msleep(20);
	}
	assert_true(served);
	client_close(c[1]);
	client_close(c[2]);
}

/* A TCP client from another loopback address: another client to the server. */
static struct client *tcp_client_from(const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
	struct sockaddr_in b = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(inet_pton(AF_INET, src, &b.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return client_open(fd);
}

static struct http_server_refusals refusals(void)
{
	struct http_server_refusals r;
	struct client *c = unix_client();

	get_ok(c, "/hello", "hello"); /* the server thread is past every accept before */
	client_close(c);
	http_server_refusals(S.http, &r);
	return r;
}

static struct http_limits three_per_client = {
    .max_header_bytes = 2048,
    .max_headers = 64,
    .max_body_bytes = 4096,
    .idle_timeout = 5,
    .request_timeout = 5,
    .write_timeout = 5,
    .max_connections = 16,
    .max_connections_per_client = 3,
};

static void test_max_connections_per_client(void **state)
{
	struct client *c[3], *extra, *other, *u[4];
	bool served = false;
	double t0;

	for (int i = 0; i < 3; i++) {
		c[i] = tcp_client();
		get_ok(c[i], "/hello", "hello");
	}
	/* a fourth from the same address is closed at once, counted */
	extra = tcp_client();
	send_str(extra, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_true(closed_by_server(extra));
	client_close(extra);
	assert_int_equal(refusals().client_cap, 1);
	/* another address is served meanwhile; unix socket peers are not one client */
	other = tcp_client_from("127.0.0.2");
	get_ok(other, "/hello", "hello");
	for (int i = 0; i < 4; i++) {
		u[i] = unix_client();
		get_ok(u[i], "/hello", "hello");
	}
	get_ok(c[0], "/count", "8");
	/* a connection closed gives its client room again */
	client_close(c[0]);
	t0 = now();
	while (!served && now() - t0 < 2) {
		struct resp r;
		extra = tcp_client();
		send_str(extra, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
		served = read_response(extra, &r) == 0 && r.status == 200;
		resp_free(&r);
		if (!served) {
			client_close(extra);
			msleep(20);
		}
	}
	assert_true(served);
	assert_int_equal(refusals().total_cap, 0);
	client_close(extra);
	client_close(c[1]);
	client_close(c[2]);
	client_close(other);
	for (int i = 0; i < 4; i++)
		client_close(u[i]);
}

static struct http_limits four_in_all = {
    .max_header_bytes = 2048,
    .max_headers = 64,
    .max_body_bytes = 4096,
    .idle_timeout = 5,
    .request_timeout = 5,
    .write_timeout = 5,
    .max_connections = 4,
};

/* Full: the client holding the most gives up its idle connection held
 * longest for another client's; never for its own, never a busy one. */
static void test_full_closes_biggest_holders_idle(void **state)
{
	struct client *c[4], *other, *mine, *third;
	struct http_server_refusals r;

	for (int i = 0; i < 4; i++) {
		c[i] = tcp_client();
		get_ok(c[i], "/hello", "hello");
		msleep(5); /* c[0] idle the longest */
	}
	other = tcp_client_from("127.0.0.2");
	get_ok(other, "/hello", "hello");
	assert_true(closed_by_server(c[0]));
	get_ok(c[1], "/hello", "hello"); /* the others stay */
	get_ok(c[3], "/count", "4");
	/* the biggest holder asking for more gets nothing of its own back */
	mine = tcp_client();
	send_str(mine, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_true(closed_by_server(mine));
	client_close(mine);
	/* a connection with a request in progress is not idle: with 127.0.0.1's
	 * three all busy, a third client is refused */
	for (int i = 1; i < 4; i++)
		send_str(c[i], "GET /async?ms=600 HTTP/1.1\r\nHost: test\r\n\r\n");
	msleep(100);
	third = tcp_client_from("127.0.0.3");
	send_str(third, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
	assert_true(closed_by_server(third));
	client_close(third);
	for (int i = 1; i < 4; i++) {
		struct resp rr;
		assert_int_equal(read_response(c[i], &rr), 0);
		assert_int_equal(rr.status, 200);
		resp_free(&rr);
	}
	http_server_refusals(S.http, &r);
	assert_int_equal(r.evicted, 1);
	assert_int_equal(r.total_cap, 2);
	assert_int_equal(r.client_cap, 0);
	for (int i = 0; i < 4; i++)
		client_close(c[i]);
	client_close(other);
}

static void test_stop(void **state)
{
	struct client *idle = tcp_client(), *busy = unix_client();
	struct stat st;
	struct resp r;
	double t0;

	get_ok(idle, "/hello", "hello");
	send_str(busy, "GET /async?ms=300 HTTP/1.1\r\nHost: test\r\n\r\n");
	msleep(50);
	command(CMD_STOP);
	t0 = now();
	assert_true(closed_by_server(idle));
	assert_true(now() - t0 < 1);
	assert_int_equal(tcp_socket(0), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(stat(S.sock_path, &st), -1);
	assert_int_equal(atomic_load(&S.done_called), 0);

	assert_int_equal(read_response(busy, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "async");
	assert_string_equal(r.connection, "close");
	assert_true(closed_by_server(busy));
	resp_free(&r);
	t0 = now();
	while (!atomic_load(&S.done_called) && now() - t0 < 1)
		msleep(10);
	assert_int_equal(atomic_load(&S.done_called), 1);
	client_close(idle);
	client_close(busy);
}

static void test_listen_addresses(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct http_server *s = http_server_new(loop, NULL, handler, NULL);
	char path[64], addr[200];
	int fd, r;

	assert_int_equal(http_server_port(s), -1);
	assert_int_equal(http_server_listen(s, "127.0.0.1:0"), 0);
	assert_true(http_server_port(s) > 0);
	r = http_server_listen(s, "[::1]:0");
	if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT)
		fprintf(stderr, "SKIPPED: [::1]:0 — no IPv6 loopback here (%s)\n", strerror(-r));
	else
		assert_int_equal(r, 0);
	assert_int_equal(http_server_listen(s, "nonsense"), -EINVAL);
	assert_int_equal(http_server_listen(s, "127.0.0.1:99999"), -EINVAL);
	assert_int_equal(http_server_listen(s, "127.0.0.1:"), -EINVAL);
	assert_int_equal(http_server_listen(s, "127.0.0.1:8x"), -EINVAL);
	assert_int_equal(http_server_listen(s, "::1:80"), -EINVAL);
	assert_int_equal(http_server_listen(s, "[::1:80"), -EINVAL);
	assert_int_equal(http_server_listen(s, "1.2.3.4.5:80"), -EINVAL);
	assert_int_equal(http_server_listen(s, "unix:"), -EINVAL);
	memset(addr, 'p', sizeof(addr) - 1);
	memcpy(addr, "unix:/tmp/", 10);
	addr[sizeof(addr) - 1] = '\0';
	assert_int_equal(http_server_listen(s, addr), -ENAMETOOLONG);

	/* a regular file is never removed */
	snprintf(path, sizeof(path), "/tmp/wp-test-http-file-%d", (int)getpid());
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	assert_int_equal(http_server_listen(s, addr), -EEXIST);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	/* a stale socket file (its server died) is replaced */
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
	close(fd);
	assert_int_equal(http_server_listen(s, addr), 0);
	http_server_free(s);
	assert_int_equal(access(path, F_OK), -1); /* removed with its server */
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_get_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_post_body, setup, teardown),
	    cmocka_unit_test_prestate_setup_teardown(test_large_body, setup, teardown, &big_bodies),
	    cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_async, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_head, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_headers_too_large, setup, teardown),
	    cmocka_unit_test_prestate_setup_teardown(test_slow_client, setup, teardown, &short_timeouts),
	    cmocka_unit_test_prestate_setup_teardown(test_idle_timeout, setup, teardown, &short_timeouts),
	    cmocka_unit_test_setup_teardown(test_big_response, setup, teardown),
	    cmocka_unit_test_prestate_setup_teardown(test_write_timeout, setup, teardown, &short_timeouts),
	    cmocka_unit_test_prestate_setup_teardown(test_max_connections, setup, teardown, &three_connections),
	    cmocka_unit_test_prestate_setup_teardown(test_max_connections_per_client, setup, teardown,
						     &three_per_client),
	    cmocka_unit_test_prestate_setup_teardown(test_full_closes_biggest_holders_idle, setup, teardown,
						     &four_in_all),
	    cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	    cmocka_unit_test(test_listen_addresses),
	};

	log_init("test_http_server", getenv("WP_TEST_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
