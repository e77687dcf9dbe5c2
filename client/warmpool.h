/* warmpool.h — libwarmpool, the C client of warmpool's poold (docs/api.md).
 *
 * A blocking library on libcurl's easy API. One handle (struct wp_client)
 * holds the base URL, the token, the timeouts, one keep-alive connection and
 * the last error. Use one handle per thread: a handle is not safe to share
 * between threads without a lock; any number of handles may live in as many
 * threads at once.
 *
 *   struct wp_client *c = wp_client_new("http://127.0.0.1:8080", NULL);
 *   struct wp_run_request *req = wp_run_request_new("print(input())");
 *   wp_run_request_add_test(req, "hi\n", 3, "hi\n", 3);
 *   struct wp_run_result *res;
 *   if (wp_session_run(c, "python", "student_123", req, &res) < 0)
 *           fprintf(stderr, "%s\n", wp_error_text(c));
 *   else
 *           printf("%s: %d/%d\n", wp_run_verdict(res), wp_run_passed(res), wp_run_total(res));
 *   wp_free(res);
 *   wp_free(req);
 *   wp_client_free(c);
 *
 * Conventions:
 * - A function that can fail returns 0 or a negative enum wp_err value; the
 *   details stay in the handle until its next call (wp_error_*()).
 * - Results are opaque objects read through accessors. Every object the
 *   library hands out (results, lists, run requests) is freed with wp_free();
 *   an item of a list (wp_pools_at() …) belongs to the list and lives as long
 *   as it. Strings returned by accessors belong to their object.
 * - `pool` arguments may be NULL: the server's default pool.
 * - Link with `pkg-config --cflags --libs warmpool`. */
#ifndef WARMPOOL_H
#define WARMPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WP_PUBLIC __attribute__((visibility("default")))

/* The library's version: the build passes -DWP_VERSION (VERSION in the
 * Makefile) and make install-client writes it into the installed header. */
#ifndef WP_VERSION
#define WP_VERSION "@VERSION@"
#endif
#define WP_DEFAULT_URL "http://127.0.0.1:8080"

/* What went wrong; functions return the negated value. */
enum wp_err {
	WP_OK = 0,
	WP_ERR_USAGE,	 /* a bad argument, refused before any request */
	WP_ERR_NOMEM,	 /* out of memory */
	WP_ERR_CONNECT,	 /* poold not reachable (refused, no route, DNS, TLS, connection cut) */
	WP_ERR_TIMEOUT,	 /* no complete answer within the handle's timeout */
	WP_ERR_HTTP,	 /* poold answered an error status: wp_error_status(), _code(), _message() */
	WP_ERR_PROTOCOL, /* an answer that is not what the API documents */
	WP_ERR_IO,	 /* reading or writing a local stream */
};

struct wp_client;
struct wp_run_request;
struct wp_run_result;
struct wp_exec_result;
struct wp_session;
struct wp_sessions;
struct wp_pool;
struct wp_pools;
struct wp_node;
struct wp_nodes;
struct wp_language;
struct wp_languages;
struct wp_files;

WP_PUBLIC const char *wp_version(void);

/* ---- the handle ------------------------------------------------------- */

/* url: poold's base URL ("http://host:port"); NULL reads WARMPOOL_URL, then
 * WP_DEFAULT_URL. token: the bearer token; NULL reads WARMPOOL_TOKEN, "" means
 * none. NULL when out of memory or when the URL is not http(s)://. */
WP_PUBLIC struct wp_client *wp_client_new(const char *url, const char *token);
WP_PUBLIC void wp_client_free(struct wp_client *c);
/* Seconds; 0 = libcurl's default (connect) or no limit (total). Defaults:
 * connect 5 s, total 600 s (a judged run may compile, then run every test). */
WP_PUBLIC int wp_client_set_timeout(struct wp_client *c, double connect_s, double total_s);
WP_PUBLIC const char *wp_client_url(const struct wp_client *c);
/* HTTPS: ca_file (PEM) is the CA poold's certificate must be signed by (NULL:
 * the system's CAs); cert_file and key_file (PEM, both or neither) a client
 * certificate. The server's certificate and name are always verified.
 * wp_client_new reads WARMPOOL_CACERT, WARMPOOL_CERT and WARMPOOL_KEY;
 * this call replaces them (NULL: none). Files are read at each connection.
 * 0, or -1 (out of memory, a certificate without its key). */
WP_PUBLIC int wp_client_set_tls(struct wp_client *c, const char *ca_file, const char *cert_file, const char *key_file);

/* ---- the last error of a handle --------------------------------------- */

WP_PUBLIC enum wp_err wp_error_kind(const struct wp_client *c);
/* The HTTP status of an error answer (WP_ERR_HTTP), else 0. */
WP_PUBLIC int wp_error_status(const struct wp_client *c);
/* The server's PascalCase code ("SessionNotFound"), else "". */
WP_PUBLIC const char *wp_error_code(const struct wp_client *c);
/* The server's message, or what failed locally. */
WP_PUBLIC const char *wp_error_message(const struct wp_client *c);
/* One line for a human: "poold at http://… refused the token (401)". */
WP_PUBLIC const char *wp_error_text(const struct wp_client *c);
/* Retry-After of a 429 or 503 answer in seconds, else 0. */
WP_PUBLIC double wp_error_retry_after(const struct wp_client *c);

/* ---- objects ---------------------------------------------------------- */

/* Frees any object the library returned (not list items). NULL is fine. */
WP_PUBLIC void wp_free(void *object);
/* The object as JSON text, as the server sent it (compact). */
WP_PUBLIC const char *wp_json(const void *object);

/* ---- health ----------------------------------------------------------- */

/* GET /healthz: 0 when poold is alive. */
WP_PUBLIC int wp_healthz(struct wp_client *c);
/* GET /readyz: 0 when poold can serve (a node up, warm slots ready); an error
 * (503 NotReady) says why not. */
WP_PUBLIC int wp_readyz(struct wp_client *c);

/* ---- judged runs ------------------------------------------------------ */

enum wp_limit {
	WP_LIMIT_CPU_MS,
	WP_LIMIT_WALL_MS,
	WP_LIMIT_MEMORY_KB,
	WP_LIMIT_PIDS,
	WP_LIMIT_OUTPUT_BYTES,
	WP_LIMIT_FSIZE_BYTES,
};

enum wp_compare {
	WP_COMPARE_TRAILING, /* default: trailing blanks and trailing blank lines ignored */
	WP_COMPARE_EXACT,
	WP_COMPARE_TOKENS,
	WP_COMPARE_FLOAT, /* tokens; numbers equal within abs_tol or rel_tol */
};

/* source: the program; NULL runs what the session's files already hold. */
WP_PUBLIC struct wp_run_request *wp_run_request_new(const char *source);
/* One test case. expected NULL: a clean run is accepted. Text must be UTF-8. */
WP_PUBLIC int wp_run_request_add_test(struct wp_run_request *r, const char *stdin_data, size_t stdin_len,
				      const char *expected, size_t expected_len);
WP_PUBLIC int wp_run_request_set_limit(struct wp_run_request *r, enum wp_limit limit, long long value);
WP_PUBLIC int wp_run_request_set_compare(struct wp_run_request *r, enum wp_compare mode, double abs_tol,
					 double rel_tol);
WP_PUBLIC int wp_run_request_set_compile(struct wp_run_request *r, bool compile);
WP_PUBLIC int wp_run_request_set_stop_on_failure(struct wp_run_request *r, bool stop);
/* Bytes of stdout/stderr returned per test (the server's default: 64 KiB). */
WP_PUBLIC int wp_run_request_set_max_output(struct wp_run_request *r, size_t bytes);
WP_PUBLIC size_t wp_run_request_test_count(const struct wp_run_request *r);

/* POST /v1/sessions/{id}/run: leases a slot on the session's first use. A
 * program that fails its tests is a successful call: look at the verdict. */
WP_PUBLIC int wp_session_run(struct wp_client *c, const char *pool, const char *id, const struct wp_run_request *r,
			     struct wp_run_result **out);

/* "accepted", "wrong_answer", "time_limit_exceeded", "memory_limit_exceeded",
 * "runtime_error", "output_limit_exceeded", "compilation_error", or
 * "internal_error" (warmpool failed, not the program). */
WP_PUBLIC const char *wp_run_verdict(const struct wp_run_result *r);
WP_PUBLIC int wp_run_passed(const struct wp_run_result *r);
WP_PUBLIC int wp_run_total(const struct wp_run_result *r);
WP_PUBLIC long long wp_run_wall_ms(const struct wp_run_result *r);
/* The compile step: NULL status when the language compiles nothing. */
WP_PUBLIC const char *wp_run_compile_status(const struct wp_run_result *r); /* "ok" | "error" | NULL */
WP_PUBLIC const char *wp_run_compile_stdout(const struct wp_run_result *r);
WP_PUBLIC const char *wp_run_compile_stderr(const struct wp_run_result *r);
WP_PUBLIC long long wp_run_compile_time_ms(const struct wp_run_result *r);
/* The session that ran it: identifier, pool and node. */
WP_PUBLIC const char *wp_run_session_id(const struct wp_run_result *r);
WP_PUBLIC const char *wp_run_session_pool(const struct wp_run_result *r);
WP_PUBLIC const char *wp_run_session_node(const struct wp_run_result *r);
/* Tests, i from 0 (no test ran after a compilation error). */
WP_PUBLIC size_t wp_run_test_count(const struct wp_run_result *r);
WP_PUBLIC const char *wp_run_test_verdict(const struct wp_run_result *r, size_t i);
/* len (may be NULL) receives the length: output may hold NUL bytes. */
WP_PUBLIC const char *wp_run_test_stdout(const struct wp_run_result *r, size_t i, size_t *len);
WP_PUBLIC const char *wp_run_test_stderr(const struct wp_run_result *r, size_t i, size_t *len);
WP_PUBLIC bool wp_run_test_truncated(const struct wp_run_result *r, size_t i);	  /* stdout or stderr cut */
WP_PUBLIC int wp_run_test_exit_code(const struct wp_run_result *r, size_t i);	  /* -1 when killed */
WP_PUBLIC int wp_run_test_signal(const struct wp_run_result *r, size_t i);	  /* 0 when none */
WP_PUBLIC long long wp_run_test_time_ms(const struct wp_run_result *r, size_t i); /* CPU */
WP_PUBLIC long long wp_run_test_wall_ms(const struct wp_run_result *r, size_t i);
WP_PUBLIC long long wp_run_test_memory_kb(const struct wp_run_result *r, size_t i); /* peak RSS */

/* ---- the stateful interpreter (Azure dynamic sessions code/execute) ---- */

/* POST /pools/{pool}/code/execute?identifier=ID: variables, imports and files
 * live on between calls with the same id; the pool must be a stateful one.
 * timeout_s: the execution's limit (1–220), 0 for the server's default. Code
 * that raises is a successful call: its status is "Failure". */
WP_PUBLIC int wp_session_exec(struct wp_client *c, const char *pool, const char *id, const char *code, int timeout_s,
			      struct wp_exec_result **out);
WP_PUBLIC const char *wp_exec_status(const struct wp_exec_result *r); /* "Success" | "Failure" */
WP_PUBLIC const char *wp_exec_stdout(const struct wp_exec_result *r);
WP_PUBLIC const char *wp_exec_stderr(const struct wp_exec_result *r);
/* The value of the last expression as the interpreter shows it ("42",
 * "'text'"), NULL when there is none (a statement, or a failure). */
WP_PUBLIC const char *wp_exec_result(const struct wp_exec_result *r);
WP_PUBLIC long long wp_exec_time_ms(const struct wp_exec_result *r);

/* ---- sessions --------------------------------------------------------- */

WP_PUBLIC int wp_session_get(struct wp_client *c, const char *pool, const char *id, struct wp_session **out);
/* DELETE: the lease ends and the slot is destroyed. */
WP_PUBLIC int wp_session_release(struct wp_client *c, const char *pool, const char *id);
/* Every session (admin token); pool NULL: of every pool. */
WP_PUBLIC int wp_sessions_list(struct wp_client *c, const char *pool, struct wp_sessions **out);
WP_PUBLIC size_t wp_sessions_count(const struct wp_sessions *l);
WP_PUBLIC const struct wp_session *wp_sessions_at(const struct wp_sessions *l, size_t i);

WP_PUBLIC const char *wp_session_identifier(const struct wp_session *s);
WP_PUBLIC const char *wp_session_pool(const struct wp_session *s);
WP_PUBLIC const char *wp_session_node(const struct wp_session *s); /* NULL while acquiring */
WP_PUBLIC const char *wp_session_slot(const struct wp_session *s); /* NULL while acquiring */
WP_PUBLIC const char *wp_session_state(const struct wp_session *s);
WP_PUBLIC double wp_session_created(const struct wp_session *s);    /* unix time */
WP_PUBLIC double wp_session_last_used(const struct wp_session *s);  /* unix time */
WP_PUBLIC double wp_session_expires_in(const struct wp_session *s); /* seconds of idle left */
WP_PUBLIC long long wp_session_executions(const struct wp_session *s);
WP_PUBLIC long long wp_session_queued(const struct wp_session *s);
WP_PUBLIC bool wp_session_busy(const struct wp_session *s);

/* ---- files in the session's /mnt/data --------------------------------- */

/* PUT: leases a slot when the session has none. */
WP_PUBLIC int wp_file_put(struct wp_client *c, const char *pool, const char *id, const char *name, const void *data,
			  size_t len);
/* GET: the content is written to out; *len (may be NULL) its size. */
WP_PUBLIC int wp_file_get(struct wp_client *c, const char *pool, const char *id, const char *name, FILE *out,
			  size_t *len);
WP_PUBLIC int wp_file_delete(struct wp_client *c, const char *pool, const char *id, const char *name);
WP_PUBLIC int wp_files_list(struct wp_client *c, const char *pool, const char *id, struct wp_files **out);
WP_PUBLIC size_t wp_files_count(const struct wp_files *f);
WP_PUBLIC const char *wp_files_name(const struct wp_files *f, size_t i);
WP_PUBLIC long long wp_files_size(const struct wp_files *f, size_t i);
WP_PUBLIC double wp_files_mtime(const struct wp_files *f, size_t i);	 /* unix time */
WP_PUBLIC const char *wp_files_type(const struct wp_files *f, size_t i); /* "file" | "dir" | "other" */

/* ---- pools ------------------------------------------------------------ */

WP_PUBLIC int wp_pools_list(struct wp_client *c, struct wp_pools **out);
WP_PUBLIC size_t wp_pools_count(const struct wp_pools *l);
WP_PUBLIC const struct wp_pool *wp_pools_at(const struct wp_pools *l, size_t i);
WP_PUBLIC int wp_pool_get(struct wp_client *c, const char *name, struct wp_pool **out);
/* PATCH (admin). A negative value leaves that setting alone. out may be NULL. */
WP_PUBLIC int wp_pool_resize(struct wp_client *c, const char *name, long long warm, long long max,
			     struct wp_pool **out);
WP_PUBLIC int wp_pool_set_timeouts(struct wp_client *c, const char *name, long long idle_timeout_s,
				   long long max_lifetime_s, struct wp_pool **out);
/* drain: no new leases; leased sessions carry on. false opens it again. */
WP_PUBLIC int wp_pool_drain(struct wp_client *c, const char *name, bool drain, struct wp_pool **out);

WP_PUBLIC const char *wp_pool_name(const struct wp_pool *p);
WP_PUBLIC const char *wp_pool_language(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_warm(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_max(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_idle_timeout_s(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_max_lifetime_s(const struct wp_pool *p);
WP_PUBLIC bool wp_pool_draining(const struct wp_pool *p);
/* Its sandboxes run the stateful interpreter (wp_session_exec); false when
 * the server does not say. */
WP_PUBLIC bool wp_pool_stateful(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_ready(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_creating(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_leased(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_queued(const struct wp_pool *p);
WP_PUBLIC long long wp_pool_create_failures(const struct wp_pool *p);
WP_PUBLIC const char *wp_pool_last_error(const struct wp_pool *p); /* NULL when none */

/* ---- nodes and languages ---------------------------------------------- */

WP_PUBLIC int wp_nodes_list(struct wp_client *c, struct wp_nodes **out);
WP_PUBLIC size_t wp_nodes_count(const struct wp_nodes *l);
WP_PUBLIC const struct wp_node *wp_nodes_at(const struct wp_nodes *l, size_t i);
WP_PUBLIC const char *wp_node_name(const struct wp_node *n);
WP_PUBLIC const char *wp_node_url(const struct wp_node *n);
WP_PUBLIC bool wp_node_up(const struct wp_node *n);
WP_PUBLIC long long wp_node_capacity(const struct wp_node *n);
WP_PUBLIC long long wp_node_slots(const struct wp_node *n);
WP_PUBLIC double wp_node_last_ok(const struct wp_node *n); /* unix time, 0 never */

WP_PUBLIC int wp_languages_list(struct wp_client *c, struct wp_languages **out);
WP_PUBLIC size_t wp_languages_count(const struct wp_languages *l);
WP_PUBLIC const struct wp_language *wp_languages_at(const struct wp_languages *l, size_t i);
WP_PUBLIC const char *wp_language_name(const struct wp_language *l);
WP_PUBLIC const char *wp_language_pool(const struct wp_language *l);
WP_PUBLIC const char *wp_language_version(const struct wp_language *l); /* NULL when unavailable */
WP_PUBLIC bool wp_language_available(const struct wp_language *l);

#ifdef __cplusplus
}
#endif

#endif
