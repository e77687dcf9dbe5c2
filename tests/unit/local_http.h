/* local_http.h — a unit test's own client of lib's real HTTP server, in the
 * test's thread and on its loop (libev's default): the server listens on a
 * unix socket of the test process; each request goes on a connection of its
 * own, written at once; the loop runs (EVRUN_NOWAIT) until the server has
 * handed the request to the handler, and again while the test waits for an
 * answer (at most LH_WAIT_S, so nothing hangs). What a client sees is
 * checked: the status, Retry-After and the JSON body. */
#ifndef LOCAL_HTTP_H
#define LOCAL_HTTP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http_server.h"

#define LH_WAIT_S 2.0

static struct http_server *lh_server;
static char lh_sock[108];
static http_handler_fn lh_fn;
static unsigned lh_handled; /* requests handed to the handler so far */

struct lh_conn {
	int fd;
	char buf[1 << 16];
	size_t len;
	/* once complete (lh_wait): */
	int status;
	double retry_after; /* 0 when the answer has no Retry-After */
	json_t *body;	    /* NULL when the body is not JSON */
};

static inline double lh_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void lh_handler(struct http_request *req, void *data)
{
	lh_handled++;
	lh_fn(req, data);
}

static inline void lh_listen(http_handler_fn fn, void *data)
{
	struct http_limits lim;
	char addr[128];

	http_limits_default(&lim);
	lh_fn = fn;
	lh_server = http_server_new(EV_DEFAULT, &lim, lh_handler, data);
	assert_non_null(lh_server);
	snprintf(lh_sock, sizeof(lh_sock), "/tmp/wp-unit-%d.sock", (int)getpid());
	snprintf(addr, sizeof(addr), "unix:%s", lh_sock);
	assert_int_equal(http_server_listen(lh_server, addr), 0);
}

static inline void lh_unlink(void)
{
	if (lh_sock[0])
		unlink(lh_sock);
}

/* Send a request (body: JSON text or NULL) and run the loop until the
 * server has handed it to the handler. */
static inline struct lh_conn *lh_send(const char *method, const char *path, const char *body)
{
	struct lh_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char head[512];
	size_t blen = body ? strlen(body) : 0;
	unsigned before = lh_handled;

	assert_non_null(c);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", lh_sock);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	int n =
	    snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: unit\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		     method, path, blen);
	assert_int_equal(write(c->fd, head, (size_t)n), n);
	if (blen)
		assert_int_equal(write(c->fd, body, blen), (ssize_t)blen);
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	for (double t0 = lh_clock(); lh_handled == before; usleep(100)) {
		assert_true(lh_clock() - t0 < LH_WAIT_S);
		ev_run(EV_DEFAULT, EVRUN_NOWAIT);
	}
	return c;
}

/* Read what has come; true once the whole answer is there. */
static inline bool lh_complete(struct lh_conn *c)
{
	ssize_t r;
	while (c->len < sizeof(c->buf) - 1 && (r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len)) > 0)
		c->len += (size_t)r;
	c->buf[c->len] = '\0';
	char *end = strstr(c->buf, "\r\n\r\n");
	if (!end)
		return false;
	size_t clen = 0;
	for (char *h = strstr(c->buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
		if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
			clen = strtoul(h + 17, NULL, 10);
		else if (strncasecmp(h + 2, "Retry-After:", 12) == 0)
			c->retry_after = strtod(h + 14, NULL);
	}
	return c->len >= (size_t)(end + 4 - c->buf) + clen;
}

/* No answer yet, with the loop run a few times. */
static inline bool lh_unanswered(struct lh_conn *c)
{
	for (int i = 0; i < 5; i++)
		ev_run(EV_DEFAULT, EVRUN_NOWAIT);
	return !lh_complete(c);
}

/* Run the loop until the answer is complete; parse it. */
static inline struct lh_conn *lh_wait(struct lh_conn *c)
{
	for (double t0 = lh_clock(); !lh_complete(c); usleep(100)) {
		assert_true(lh_clock() - t0 < LH_WAIT_S);
		ev_run(EV_DEFAULT, EVRUN_NOWAIT);
	}
	assert_int_equal(strncmp(c->buf, "HTTP/1.1 ", 9), 0);
	c->status = atoi(c->buf + 9);
	c->body = json_loads(strstr(c->buf, "\r\n\r\n") + 4, 0, NULL);
	return c;
}

/* The error code of a {"error": {"code", "message"}} answer, or "". */
static inline const char *lh_code(const struct lh_conn *c)
{
	const char *code = json_string_value(json_object_get(json_object_get(c->body, "error"), "code"));
	return code ? code : "";
}

static inline const char *lh_message(const struct lh_conn *c)
{
	const char *m = json_string_value(json_object_get(json_object_get(c->body, "error"), "message"));
	return m ? m : "";
}

static inline void lh_close(struct lh_conn *c)
{
	close(c->fd);
	json_decref(c->body);
	free(c);
}

#endif
