/* test_tls.c — lib/tls.c and the TLS of lib/http_server.c over real sockets:
 * a server with its own libev loop in a thread, mutual TLS 1.3 with
 * certificates made by deploy/tools/make-certs.sh in a temp dir; the test
 * is the client (blocking OpenSSL, 3 s socket timeouts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http_server.h"
#include "log.h"
#include "tls.h"

static char dir[64];

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* ---- the server thread ---- */

enum { CMD_NONE, CMD_SWAP, CMD_QUIT };

static struct server {
	struct ev_loop *loop;
	struct http_server *http;
	pthread_t thread;
	ev_async wake;
	int port;
	atomic_int cmd;
	atomic_int done;
	atomic_ullong refused;
	SSL_CTX *next; /* CMD_SWAP: the context to switch to */
} S;

static void handler(struct http_request *req, void *data)
{
	if (strcmp(req->path, "/echo") == 0)
		http_respond(req, 200, "application/octet-stream", NULL, req->body, req->body_len);
	else
		http_respond(req, 200, "text/plain", NULL, "hello", 5);
	atomic_store(&S.refused, http_server_tls_refused(S.http));
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	int cmd = atomic_exchange(&S.cmd, CMD_NONE);

	atomic_store(&S.refused, http_server_tls_refused(S.http));
	if (cmd == CMD_SWAP) {
		http_server_set_tls(S.http, S.next);
		tls_ctx_free(S.next);
		S.next = NULL;
	} else if (cmd == CMD_QUIT) {
		ev_break(loop, EVBREAK_ALL);
	}
	atomic_store(&S.done, 1);
}

static void *server_thread(void *arg)
{
	ev_run(S.loop, 0);
	return NULL;
}

static void command(int cmd)
{
	atomic_store(&S.done, 0);
	atomic_store(&S.cmd, cmd);
	ev_async_send(S.loop, &S.wake);
	for (int i = 0; i < 300 && !atomic_load(&S.done); i++)
		usleep(10000);
}

static unsigned long long refused_now(void)
{
	command(CMD_NONE);
	return atomic_load(&S.refused);
}

static SSL_CTX *server_ctx(const char *name)
{
	char cert[128], key[128], ca[128], n1[64], n2[64];
	struct wp_error err = {0};

	snprintf(n1, sizeof(n1), "%s.crt", name);
	snprintf(n2, sizeof(n2), "%s.key", name);
	path(cert, sizeof(cert), n1);
	path(key, sizeof(key), n2);
	path(ca, sizeof(ca), "ca.crt");
	struct tls_server_conf tc = {
	    .cert_file = cert, .key_file = key, .client_ca = ca, .client_name = "poold", .tls13_only = true};
	SSL_CTX *ctx = tls_server_ctx_new(&tc, &err);
	if (!ctx)
		fprintf(stderr, "server_ctx: %s\n", err.msg);
	return ctx;
}

static int setup(void **state)
{
	char cmd[512];
	struct http_limits l;

	strcpy(dir, "/tmp/wp-unit-tls-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "sh deploy/tools/make-certs.sh -d %s srv,localhost,127.0.0.1 srv2,localhost >/dev/null && "
		 "sh deploy/tools/make-certs.sh -d %s --client stranger >/dev/null && "
		 "mkdir %s/old && cp %s/ca.* %s/old/ && "
		 "sh deploy/tools/make-certs.sh -d %s/old --no-ca --days -1 >/dev/null",
		 dir, dir, dir, dir, dir, dir);
	if (system(cmd) != 0)
		return -1;
	log_init("test", LOG_ERROR);
	S.loop = ev_loop_new(EVFLAG_AUTO);
	http_limits_default(&l);
	l.tls_handshake_timeout = 0.3;
	S.http = http_server_new(S.loop, &l, handler, NULL);
	SSL_CTX *ctx = server_ctx("srv");
	if (!ctx || http_server_set_tls(S.http, ctx) < 0)
		return -1;
	tls_ctx_free(ctx);
	if (http_server_listen(S.http, "127.0.0.1:0") < 0)
		return -1;
	S.port = http_server_port(S.http);
	ev_async_init(&S.wake, wake_cb);
	ev_async_start(S.loop, &S.wake);
	pthread_create(&S.thread, NULL, server_thread, NULL);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	command(CMD_QUIT);
	pthread_join(S.thread, NULL);
	http_server_free(S.http);
	ev_loop_destroy(S.loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the client ---- */

static int tcp_connect(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
	struct timeval tv = {3, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

struct tclient {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

/* who: "poold", "stranger", "old/poold" (expired) or NULL (no certificate) */
static bool tclient_open(struct tclient *c, const char *who)
{
	char ca[128], cert[128], key[128], n[64];

	memset(c, 0, sizeof(*c));
	c->ctx = SSL_CTX_new(TLS_client_method());
	path(ca, sizeof(ca), "ca.crt");
	assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, ca, NULL), 1);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (who) {
		snprintf(n, sizeof(n), "%s.crt", who);
		path(cert, sizeof(cert), n);
		snprintf(n, sizeof(n), "%s.key", who);
		path(key, sizeof(key), n);
		assert_int_equal(SSL_CTX_use_certificate_file(c->ctx, cert, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM), 1);
	}
	c->fd = tcp_connect();
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	SSL_set1_host(c->ssl, "localhost");
	return SSL_connect(c->ssl) == 1;
}

static void tclient_close(struct tclient *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
}

/* Send a request, read until the whole answer (Content-Length) is in; the
 * bytes read, or -1 when the connection failed. */
static long exchange(struct tclient *c, const char *req, size_t req_len, char *out, size_t cap)
{
	size_t got = 0;

	ERR_clear_error();
	if (SSL_write(c->ssl, req, (int)req_len) != (int)req_len)
		return -1;
	for (;;) {
		int n = SSL_read(c->ssl, out + got, (int)(cap - 1 - got));
		if (n <= 0)
			return -1;
		got += (size_t)n;
		out[got] = '\0';
		char *end = strstr(out, "\r\n\r\n"), *cl = strcasestr(out, "content-length:");
		if (end && cl && got >= (size_t)(end + 4 - out) + strtoul(cl + 15, NULL, 10))
			return (long)got;
		if (got == cap - 1)
			return (long)got;
	}
}

static const char get_hello[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

/* ---- tests ---- */

static void test_plain_http_detection(void **state)
{
	assert_true(tls_looks_like_plain_http((const unsigned char *)"GET / HTTP/1.1", 14));
	assert_true(tls_looks_like_plain_http((const unsigned char *)"POST", 4));
	assert_false(tls_looks_like_plain_http((const unsigned char *)"\x16\x03\x01", 3));
	assert_false(tls_looks_like_plain_http((const unsigned char *)"", 0));
	assert_false(tls_looks_like_plain_http((const unsigned char *)"\x80\x01", 2)); /* SSLv2-style hello */
}

static void test_loopback_addresses(void **state)
{
	assert_true(tls_address_is_loopback("127.0.0.1:9091"));
	assert_true(tls_address_is_loopback("127.2.3.4:1"));
	assert_true(tls_address_is_loopback("[::1]:9091"));
	assert_true(tls_address_is_loopback("localhost:9091"));
	assert_true(tls_address_is_loopback("unix:/run/x.sock"));
	assert_false(tls_address_is_loopback("0.0.0.0:9091"));
	assert_false(tls_address_is_loopback("[::]:9091"));
	assert_false(tls_address_is_loopback("10.0.0.5:9091"));
	assert_false(tls_address_is_loopback("128.0.0.1:9091"));
	assert_false(tls_address_is_loopback("localhost.example.com:9091"));
}

static void test_context_errors_name_the_file(void **state)
{
	char cert[128], key[128], key2[128];
	struct wp_error err = {0};

	path(cert, sizeof(cert), "srv.crt");
	path(key, sizeof(key), "srv.key");
	path(key2, sizeof(key2), "srv2.key");
	struct tls_server_conf tc = {.cert_file = "/nonexistent/x.crt", .key_file = key};
	assert_null(tls_server_ctx_new(&tc, &err));
	assert_non_null(strstr(err.msg, "/nonexistent/x.crt"));
	tc = (struct tls_server_conf){.cert_file = cert, .key_file = key2};
	assert_null(tls_server_ctx_new(&tc, &err));
	assert_non_null(strstr(err.msg, "does not match"));
	tc = (struct tls_server_conf){.cert_file = cert, .key_file = key, .client_ca = "/nonexistent/ca.crt"};
	assert_null(tls_server_ctx_new(&tc, &err));
	assert_non_null(strstr(err.msg, "/nonexistent/ca.crt"));
}

static void test_not_after(void **state)
{
	char cert[128], old[128];
	int64_t from_file, from_ctx, expired;
	SSL_CTX *ctx = server_ctx("srv");

	path(cert, sizeof(cert), "srv.crt");
	path(old, sizeof(old), "old/poold.crt");
	assert_int_equal(tls_file_not_after(cert, &from_file, NULL), 0);
	assert_int_equal(tls_ctx_not_after(ctx, &from_ctx), 0);
	assert_true(from_file == from_ctx);
	/* make-certs.sh: 365 days from now */
	assert_true(llabs(from_file - (int64_t)time(NULL) - 365 * 86400LL) < 120);
	assert_int_equal(tls_file_not_after(old, &expired, NULL), 0);
	assert_true(expired < (int64_t)time(NULL));
	assert_true(tls_file_not_after("/nonexistent", &expired, NULL) < 0);
	tls_ctx_free(ctx);
}

static void test_mutual_tls_keep_alive_and_big_bodies(void **state)
{
	struct tclient c;
	char out[4096];
	size_t big_len = 300 * 1024;
	char *big = malloc(big_len + 200), *back = malloc(big_len + 1024);

	assert_true(tclient_open(&c, "poold"));
	assert_string_equal(SSL_get_version(c.ssl), "TLSv1.3");
	assert_true(exchange(&c, get_hello, strlen(get_hello), out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "HTTP/1.1 200"));
	assert_non_null(strstr(out, "\r\n\r\nhello"));
	/* the same connection: a body bigger than a TLS record and the input buffer */
	int h = snprintf(big, 200, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", big_len - 200);
	for (size_t i = (size_t)h; i < (size_t)h + big_len - 200; i++)
		big[i] = (char)('a' + i % 26);
	long n = exchange(&c, big, (size_t)h + big_len - 200, back, big_len + 1024);
	assert_true(n > 0);
	char *body = strstr(back, "\r\n\r\n");
	assert_non_null(body);
	assert_int_equal((size_t)n - (size_t)(body + 4 - back), big_len - 200);
	assert_memory_equal(body + 4, big + h, big_len - 200);
	assert_true(exchange(&c, get_hello, strlen(get_hello), out, sizeof(out)) > 0);
	tclient_close(&c);
	free(big);
	free(back);
}

/* The server refuses after the client's side of the handshake (TLS 1.3):
 * no answer comes, and the refusal is counted. */
static void expect_refused(const char *who)
{
	struct tclient c;
	char out[1024];
	unsigned long long before = refused_now();

	if (tclient_open(&c, who))
		assert_true(exchange(&c, get_hello, strlen(get_hello), out, sizeof(out)) < 0);
	tclient_close(&c);
	for (int i = 0; i < 100 && refused_now() == before; i++)
		usleep(10000);
	assert_true(refused_now() > before);
}

static void test_refusals(void **state)
{
	expect_refused(NULL);	     /* no certificate */
	expect_refused("stranger");  /* the CA's, not named poold */
	expect_refused("old/poold"); /* expired */
}

static void test_plain_http_refused(void **state)
{
	char out[1024] = "";
	int fd = tcp_connect();
	ssize_t n, got = 0;

	assert_true(write(fd, get_hello, strlen(get_hello)) == (ssize_t)strlen(get_hello));
	while ((n = read(fd, out + got, sizeof(out) - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = '\0';
	close(fd);
	assert_non_null(strstr(out, "HTTP/1.1 400"));
	assert_non_null(strstr(out, "TlsRequired"));
	assert_null(strstr(out, "hello"));
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_handshake_timeout(void **state)
{
	int fd = tcp_connect();
	char b;
	double t0 = now();
	unsigned long long before = refused_now();

	assert_int_equal(read(fd, &b, 1), 0); /* closed by the server, before our 3 s */
	assert_true(now() - t0 < 2.0);
	close(fd);
	assert_true(refused_now() > before);
}

static void test_reload_keeps_open_connections(void **state)
{
	struct tclient old, fresh;
	char out[1024];
	unsigned char md_old[EVP_MAX_MD_SIZE], md_new[EVP_MAX_MD_SIZE];
	unsigned len;

	assert_true(tclient_open(&old, "poold"));
	assert_true(exchange(&old, get_hello, strlen(get_hello), out, sizeof(out)) > 0);
	X509 *x = SSL_get1_peer_certificate(old.ssl);
	X509_digest(x, EVP_sha256(), md_old, &len);
	X509_free(x);
	S.next = server_ctx("srv2");
	assert_non_null(S.next);
	command(CMD_SWAP);
	/* the open connection goes on with its context */
	assert_true(exchange(&old, get_hello, strlen(get_hello), out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "hello"));
	/* a new one gets the new certificate */
	assert_true(tclient_open(&fresh, "poold"));
	x = SSL_get1_peer_certificate(fresh.ssl);
	X509_digest(x, EVP_sha256(), md_new, &len);
	assert_non_null(strstr(X509_NAME_oneline(X509_get_subject_name(x), out, sizeof(out)), "srv2"));
	X509_free(x);
	assert_memory_not_equal(md_old, md_new, len);
	assert_true(exchange(&fresh, get_hello, strlen(get_hello), out, sizeof(out)) > 0);
	tclient_close(&old);
	tclient_close(&fresh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_http_detection),
	    cmocka_unit_test(test_loopback_addresses),
	    cmocka_unit_test(test_context_errors_name_the_file),
	    cmocka_unit_test(test_not_after),
	    cmocka_unit_test(test_mutual_tls_keep_alive_and_big_bodies),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_plain_http_refused),
	    cmocka_unit_test(test_handshake_timeout),
	    cmocka_unit_test(test_reload_keeps_open_connections),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
