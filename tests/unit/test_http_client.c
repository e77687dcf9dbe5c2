/* test_http_client.c — the libcurl/libev client against the project's own
 * HTTP server, both on one libev loop in this thread: each test starts calls,
 * runs the loop until they complete (a 5 s safety timer fails the test
 * otherwise) and checks what the callback saw and what the server received.
 * The server listens on 127.0.0.1 (ephemeral port) and on a unix socket in a
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "http_client.h"
#include "http_server.h"

#define MAX_PEERS 512

struct pending {
	struct pending *next;
	ev_timer timer;
	struct http_request *req;
};

static struct fixture {
	struct ev_loop *loop;
	struct http_server *srv;
	struct http_client *cli;
	char dir[64];
	char sock[128];
	char tcp_base[64];
	char unix_base[160];
	struct pending *pending;
	bool timed_out;
	int requests;
	int n_peers;
	char peers[MAX_PEERS][64];
	/* what the server saw last */
	char method[16];
	char content_type[64];
	char auth[128];
	char content_length[32];
	bool saw_expect;
} F;

/* ---- the server side ---- */

static void copy_header(struct http_request *req, const char *name, char *dst, size_t size)
{
	const char *v = http_request_header(req, name);
	snprintf(dst, size, "%s", v ? v : "");
}

static void note_peer(struct http_request *req)
{
	for (int i = 0; i < F.n_peers; i++)
		if (strcmp(F.peers[i], req->peer) == 0)
			return;
	if (F.n_peers < MAX_PEERS)
		snprintf(F.peers[F.n_peers++], sizeof(F.peers[0]), "%s", req->peer);
}

static void pending_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pending *p = w->data, **pp;

	for (pp = &F.pending; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	http_respond(p->req, 200, "text/plain", NULL, "late", 4);
	free(p);
}

static void handler(struct http_request *req, void *data)
{
	F.requests++;
	note_peer(req);
	snprintf(F.method, sizeof(F.method), "%s", req->method);
	copy_header(req, "content-type", F.content_type, sizeof(F.content_type));
	copy_header(req, "authorization", F.auth, sizeof(F.auth));
	copy_header(req, "content-length", F.content_length, sizeof(F.content_length));
	F.saw_expect = http_request_header(req, "expect") != NULL;

	if (strcmp(req->path, "/hello") == 0) {
		http_respond(req, 200, "text/plain", NULL, "hello", 5);
	} else if (strcmp(req->path, "/echo") == 0) {
		http_respond(req, 200, "application/octet-stream", NULL, req->body, req->body_len);
	} else if (strcmp(req->path, "/id") == 0) {
		cleanup_free char *i = http_request_query(req, "i");
		http_respond(req, 200, "text/plain", NULL, i ? i : "", i ? strlen(i) : 0);
	} else if (strcmp(req->path, "/big") == 0) {
		cleanup_free char *n = http_request_query(req, "n");
		size_t len = n ? strtoul(n, NULL, 10) : 1000;
		char *b = malloc(len + 1);
		assert_non_null(b);
		memset(b, 'x', len);
		http_respond_owned(req, 200, "application/octet-stream", NULL, b, len);
	} else if (strcmp(req->path, "/slow") == 0) {
		cleanup_free char *ms = http_request_query(req, "ms");
		struct pending *p = calloc(1, sizeof(*p));
		assert_non_null(p);
		p->req = req;
		ev_timer_init(&p->timer, pending_cb, (ms ? atoi(ms) : 100) / 1000.0, 0.);
		p->timer.data = p;
		ev_timer_start(F.loop, &p->timer);
		p->next = F.pending;
		F.pending = p;
	} else {
		http_respond_error(req, 404, "NotFound", "no route for %s", req->path);
	}
}

static int setup(void **state)
{
	struct http_limits l;
	char addr[160];

	memset(&F, 0, sizeof(F));
	F.loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(F.loop);
	http_limits_default(&l);
	l.max_body_bytes = 4 << 20;
	F.srv = http_server_new(F.loop, &l, handler, NULL);
	assert_non_null(F.srv);
	assert_int_equal(http_server_listen(F.srv, "127.0.0.1:0"), 0);
	snprintf(F.tcp_base, sizeof(F.tcp_base), "http://127.0.0.1:%d", http_server_port(F.srv));
	snprintf(F.dir, sizeof(F.dir), "/tmp/wp-test-http-client-XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.sock, sizeof(F.sock), "%s/s.sock", F.dir);
	snprintf(addr, sizeof(addr), "unix:%s", F.sock);
	assert_int_equal(http_server_listen(F.srv, addr), 0);
	snprintf(F.unix_base, sizeof(F.unix_base), "unix:%s", F.sock);
	F.cli = http_client_new(F.loop);
	assert_non_null(F.cli);
	return 0;
}

static int teardown(void **state)
{
	http_client_free(F.cli);
	while (F.pending) {
		struct pending *p = F.pending;
		F.pending = p->next;
		ev_timer_stop(F.loop, &p->timer);
		http_respond_error(p->req, 503, "ShuttingDown", "test over");
		free(p);
	}
	http_server_free(F.srv);
	ev_loop_destroy(F.loop);
	unlink(F.sock);
	rmdir(F.dir);
	return 0;
}

/* ---- the client side ---- */

struct res {
	int calls; /* how many times done ran: must end at 1 */
	int status;
	char *body;
	size_t body_len;
	char error[256];
	double elapsed;
	int *counter; /* shared completion counter, or NULL */
};

static int completed;

static void done(struct http_result *r, void *data)
{
	struct res *res = data;

	res->calls++;
	res->status = r->status;
	res->body_len = r->body_len;
	free(res->body);
	res->body = steal_pointer(&r->body);
	snprintf(res->error, sizeof(res->error), "%s", r->error ? r->error : "");
	res->elapsed = r->elapsed;
	completed++;
}

static void safety_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	F.timed_out = true;
}

/* Run the loop until `completed` reaches `want`, 5 s at most. */
static void run_until(int want)
{
	ev_timer safety;

	ev_timer_init(&safety, safety_cb, 5., 0.);
	ev_timer_start(F.loop, &safety);
	F.timed_out = false;
	while (completed < want && !F.timed_out)
		ev_run(F.loop, EVRUN_ONCE);
	ev_timer_stop(F.loop, &safety);
	assert_false(F.timed_out);
}

/* Run the loop for `s` seconds. */
static void run_for(double s)
{
	ev_timer t;

	ev_timer_init(&t, safety_cb, s, 0.);
	ev_timer_start(F.loop, &t);
	F.timed_out = false;
	while (!F.timed_out)
		ev_run(F.loop, EVRUN_ONCE);
	ev_timer_stop(F.loop, &t);
}

static struct http_call *start(const char *base, const char *method, const char *path, struct res *res)
{
	return http_call_start(F.cli, &(struct http_call_opts){.method = method, .base = base, .path = path}, done,
			       res);
}

static void res_clear(struct res *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void test_get(void **state)
{
	struct res r = {0};

	completed = 0;
	assert_non_null(start(F.tcp_base, "GET", "/hello", &r));
	assert_int_equal(r.calls, 0); /* never from inside http_call_start */
	assert_int_equal(http_client_inflight(F.cli), 1);
	run_until(1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 5);
	assert_string_equal(r.body, "hello");
	assert_string_equal(F.method, "GET");
	assert_string_equal(F.content_type, "");
	assert_true(r.elapsed >= 0 && r.elapsed < 5);
	assert_int_equal(http_client_inflight(F.cli), 0);
	res_clear(&r);
}

static void test_post_echo(void **state)
{
	static const char json[] = "{\"code\":\"print(1)\"}";
	struct res r = {0};
	size_t big_len = 2 << 20; /* curl would send Expect: 100-continue past 1 MiB */
	cleanup_free char *big = malloc(big_len);

	completed = 0;
	assert_non_null(http_call_start(F.cli,
					&(struct http_call_opts){.method = "POST",
								 .base = F.tcp_base,
								 .path = "/echo",
								 .body = json,
								 .body_len = strlen(json),
								 .bearer = "s3cret"},
					done, &r));
	run_until(1);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, strlen(json));
	assert_string_equal(r.body, json);
	assert_string_equal(F.method, "POST");
	assert_string_equal(F.content_type, "application/json");
	assert_string_equal(F.auth, "Bearer s3cret");
	assert_false(F.saw_expect);
	res_clear(&r);

	/* Binary body with NULs, explicit type, another method. */
	assert_non_null(big);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)(i % 251);
	assert_non_null(http_call_start(F.cli,
					&(struct http_call_opts){.method = "PUT",
								 .base = F.tcp_base,
								 .path = "/echo",
								 .body = big,
								 .body_len = big_len,
								 .content_type = "application/octet-stream"},
					done, &r));
	run_until(2);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, big_len);
	assert_memory_equal(r.body, big, big_len);
	assert_int_equal(r.body[big_len], '\0');
	assert_string_equal(F.method, "PUT");
	assert_string_equal(F.content_type, "application/octet-stream");
	assert_string_equal(F.auth, "");
	assert_false(F.saw_expect);
	res_clear(&r);

	/* POST without a body: Content-Length 0, no form content type. */
	assert_non_null(start(F.tcp_base, "POST", "/echo", &r));
	run_until(3);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	assert_string_equal(r.body, "");
	assert_string_equal(F.method, "POST");
	assert_string_equal(F.content_type, "");
	assert_string_equal(F.content_length, "0");
	res_clear(&r);

	assert_non_null(start(F.tcp_base, "DELETE", "/hello", &r));
	run_until(4);
	assert_int_equal(r.status, 200);
	assert_string_equal(F.method, "DELETE");
	res_clear(&r);
}

static void test_concurrent(void **state)
{
	enum { N = 100 };
	static struct res r[N];
	char path[32];

	completed = 0;
	memset(r, 0, sizeof(r));
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			snprintf(path, sizeof(path), "/id?i=%d", i);
			assert_non_null(start(F.tcp_base, "GET", path, &r[i]));
		}
		assert_int_equal(http_client_inflight(F.cli), N);
		run_until(N * (round + 1));
		for (int i = 0; i < N; i++) {
			snprintf(path, sizeof(path), "%d", i);
			assert_int_equal(r[i].calls, 1);
			assert_int_equal(r[i].status, 200);
			assert_string_equal(r[i].body, path);
			res_clear(&r[i]);
		}
	}
	assert_int_equal(F.requests, 2 * N);
	/* The second round reuses the connections the first one left open. */
	assert_true(F.n_peers < 2 * N);
	assert_int_equal(http_client_inflight(F.cli), 0);
}

/* Each completion starts the next call, from inside the callback. */
struct chain {
	struct res r;
	int left;
	const char *base;
};

static void chain_done(struct http_result *r, void *data)
{
	struct chain *ch = data;

	done(r, &ch->r);
	assert_int_equal(r->status, 200);
	if (--ch->left > 0)
		assert_non_null(http_call_start(F.cli, &(struct http_call_opts){.base = ch->base, .path = "/hello"},
						chain_done, ch));
}

static void test_keep_alive(void **state)
{
	struct chain ch = {.left = 20, .base = F.tcp_base};

	completed = 0;
	assert_non_null(
	    http_call_start(F.cli, &(struct http_call_opts){.base = ch.base, .path = "/hello"}, chain_done, &ch));
	run_until(20);
	assert_int_equal(ch.r.calls, 20);
	assert_int_equal(F.requests, 20);
	assert_int_equal(F.n_peers, 1); /* one TCP connection for all of them */
	assert_int_equal(http_server_connections(F.srv), 1);
	res_clear(&ch.r);
}

static void test_unix_socket(void **state)
{
	struct chain ch = {.left = 10, .base = F.unix_base};
	struct res r = {0};

	completed = 0;
	assert_non_null(
	    http_call_start(F.cli,
			    &(struct http_call_opts){
				.method = "POST", .base = F.unix_base, .path = "/echo", .body = "abc", .body_len = 3},
			    done, &r));
	run_until(1);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "abc");
	assert_string_equal(F.peers[0], "unix");
	res_clear(&r);

	/* Kept alive as well. */
	assert_non_null(
	    http_call_start(F.cli, &(struct http_call_opts){.base = ch.base, .path = "/hello"}, chain_done, &ch));
	run_until(11);
	assert_int_equal(ch.r.calls, 10);
	assert_int_equal(http_server_connections(F.srv), 1);
	res_clear(&ch.r);
}

static void test_timeout(void **state)
{
	struct res r = {0};

	completed = 0;
	assert_non_null(http_call_start(
	    F.cli, &(struct http_call_opts){.base = F.tcp_base, .path = "/slow?ms=3000", .timeout = 0.3}, done, &r));
	run_until(1);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.body, "");
	assert_true(strcasestr(r.error, "timed out") || strcasestr(r.error, "timeout"));
	assert_true(r.elapsed >= 0.25 && r.elapsed < 1.5);
	res_clear(&r);
}

static void test_refused(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	cleanup_close int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char base[64], missing[160];
	struct res r = {0}, u = {0};

	/* A bound port nobody listens on refuses connections. */
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", ntohs(a.sin_port));
	snprintf(missing, sizeof(missing), "unix:%s/nobody.sock", F.dir);

	completed = 0;
	assert_non_null(start(base, "GET", "/hello", &r));
	assert_non_null(start(missing, "GET", "/hello", &u));
	run_until(2);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.body, "");
	assert_non_null(strstr(r.error, "Connection refused"));
	assert_non_null(strstr(r.error, base));
	assert_int_equal(u.calls, 1);
	assert_int_equal(u.status, 0);
	assert_non_null(strstr(u.error, "No such file or directory"));
	assert_non_null(strstr(u.error, missing));
	assert_true(r.elapsed < 1);
	res_clear(&r);
	res_clear(&u);
}

static void test_bad_base(void **state)
{
	struct res r = {0};

	assert_null(start("ftp://127.0.0.1", "GET", "/", &r));
	assert_null(start("127.0.0.1:80", "GET", "/", &r));
	assert_null(start("unix:", "GET", "/", &r));
	assert_null(start(NULL, "GET", "/", &r));
	assert_int_equal(http_client_inflight(F.cli), 0);
	assert_int_equal(r.calls, 0);
}

static void test_max_response(void **state)
{
	struct res r = {0}, ok = {0};

	completed = 0;
	assert_non_null(http_call_start(
	    F.cli, &(struct http_call_opts){.base = F.tcp_base, .path = "/big?n=100000", .max_response = 1000}, done,
	    &r));
	assert_non_null(http_call_start(
	    F.cli, &(struct http_call_opts){.base = F.tcp_base, .path = "/big?n=100000", .max_response = 100000}, done,
	    &ok));
	run_until(2);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.error, "response too large");
	assert_int_equal(ok.status, 200);
	assert_int_equal(ok.body_len, 100000);
	res_clear(&r);
	res_clear(&ok);
}

static void test_not_found(void **state)
{
	struct res r = {0};

	completed = 0;
	assert_non_null(start(F.tcp_base, "GET", "/nope", &r));
	run_until(1);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "\"NotFound\""));
	assert_non_null(strstr(r.body, "no route for /nope"));
	res_clear(&r);
}

/* The path goes out as given: libcurl must not remove dot segments
 * ("/x/../hello" would become "/hello", another route). */
static void test_path_as_is(void **state)
{
	struct res r = {0};

	completed = 0;
	assert_non_null(start(F.tcp_base, "GET", "/x/../hello", &r));
	run_until(1);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "no route for /x/../hello"));
	res_clear(&r);
	assert_non_null(start(F.unix_base, "GET", "/./hello", &r));
	run_until(2);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "no route for /./hello"));
	res_clear(&r);
}

static void test_cancel(void **state)
{
	struct res a = {0}, b = {0}, c = {0};
	struct http_call *ca, *cb;

	completed = 0;
	ca = start(F.tcp_base, "GET", "/hello", &a); /* cancelled before the loop ever ran */
	cb = start(F.tcp_base, "GET", "/slow?ms=200", &b);
	assert_non_null(ca);
	assert_non_null(cb);
	assert_non_null(start(F.tcp_base, "GET", "/slow?ms=300", &c));
	http_call_cancel(ca);
	assert_int_equal(http_client_inflight(F.cli), 2);
	run_for(0.05); /* b is on the wire now */
	http_call_cancel(cb);
	run_until(1);
	run_for(0.1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.status, 200);
	assert_int_equal(http_client_inflight(F.cli), 0);
	res_clear(&c);

	/* Cancelling everything with calls in flight. */
	assert_non_null(start(F.tcp_base, "GET", "/slow?ms=100", &a));
	assert_non_null(start(F.unix_base, "GET", "/hello", &b));
	http_client_free(F.cli);
	F.cli = http_client_new(F.loop);
	run_for(0.2);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
}

/* A callback that cancels its siblings, possibly finished in the same batch. */
static struct http_call *victims[8];
static struct res victim_res[8];

static void cancel_done(struct http_result *r, void *data)
{
	done(r, data);
	for (size_t i = 0; i < ARRAY_SIZE(victims); i++) {
		if (victims[i] && data != &victim_res[i])
			http_call_cancel(victims[i]);
		victims[i] = NULL;
	}
}

static void test_cancel_from_callback(void **state)
{
	int called = 0;

	completed = 0;
	memset(victim_res, 0, sizeof(victim_res));
	for (size_t i = 0; i < ARRAY_SIZE(victims); i++) {
		victims[i] = http_call_start(F.cli, &(struct http_call_opts){.base = F.tcp_base, .path = "/hello"},
					     cancel_done, &victim_res[i]);
		assert_non_null(victims[i]);
	}
	run_until(1);
	run_for(0.1);
	for (size_t i = 0; i < ARRAY_SIZE(victims); i++) {
		called += victim_res[i].calls;
		res_clear(&victim_res[i]);
	}
	assert_int_equal(called, 1);
	assert_int_equal(http_client_inflight(F.cli), 0);
}

static void free_done(struct http_result *r, void *data)
{
	done(r, data);
	http_client_free(F.cli);
	F.cli = NULL;
}

static void test_free_from_callback(void **state)
{
	struct res r[4] = {0};
	int called = 0;

	completed = 0;
	for (int i = 0; i < 4; i++)
		assert_non_null(http_call_start(F.cli, &(struct http_call_opts){.base = F.unix_base, .path = "/hello"},
						free_done, &r[i]));
	run_until(1);
	run_for(0.1);
	for (int i = 0; i < 4; i++) {
		called += r[i].calls;
		res_clear(&r[i]);
	}
	assert_int_equal(called, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_post_echo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_base, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_response, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path_as_is, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_from_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
