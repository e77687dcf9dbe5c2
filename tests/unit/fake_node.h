/* fake_node.h — what test_lease.c and test_pool.c share: poold's own lease,
 * pool and node modules over a fake node and a fake clock.
 *
 * The fake node takes the place of HTTP (node_set_transport): every call
 * poold makes is recorded and stays in flight until the test answers it
 * (fake_answer), as sandboxd would. The clock is `now_s` (poold_clock_set):
 * a test sets it and calls the pass that a timer would run (pool_kick,
 * leases_reap, nodes_check_all); libev only delivers the deferred handoffs
 * of pool_take (zero-delay timers, settle()). The modules keep their state
 * in statics, so every test runs in a child process of its own (run_each).
 * One node ("n1", http://fake:1) unless a test sets two_nodes before
 * start_poold ("n2", http://fake:2, after it); the *_at helpers tell their
 * calls apart by the node's URL. */
#ifndef FAKE_NODE_H
#define FAKE_NODE_H

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "lease.h"
#include "log.h"
#include "node.h"
#include "pool.h"

static double now_s = 1000.0;

static inline double fake_now(void)
{
	return now_s;
}

/* ---- the fake node: recorded calls ---- */
#define MAX_CALLS 512

struct fcall {
	char base[32]; /* the node's URL */
	char method[8];
	char path[96];
	char label[160]; /* X-Warmpool-Label, "" when none */
	char *body;
	http_call_done_fn done;
	void *data;
	bool answered;
};

static struct fcall calls[MAX_CALLS];
static size_t n_calls;

static inline struct http_call *fake_transport(struct http_client *c, const struct http_call_opts *o,
					       http_call_done_fn done, void *data)
{
	struct fcall *f;

	assert_true(n_calls < MAX_CALLS);
	f = &calls[n_calls++];
	snprintf(f->base, sizeof(f->base), "%s", o->base);
	snprintf(f->method, sizeof(f->method), "%s", o->method);
	snprintf(f->path, sizeof(f->path), "%s", o->path);
	snprintf(f->label, sizeof(f->label), "%s", o->header_value ? o->header_value : "");
	f->body = o->body ? strndup(o->body, o->body_len) : NULL;
	f->done = done;
	f->data = data;
	return (struct http_call *)f;
}

/* Calls not answered yet with this method and path prefix. */
static inline size_t pending(const char *method, const char *path_prefix)
{
	size_t k = 0;
	for (size_t i = 0; i < n_calls; i++)
		if (!calls[i].answered && strcmp(calls[i].method, method) == 0 &&
		    strncmp(calls[i].path, path_prefix, strlen(path_prefix)) == 0)
			k++;
	return k;
}

/* The oldest unanswered call with this method and path prefix. */
static inline struct fcall *next_call(const char *method, const char *path_prefix)
{
	for (size_t i = 0; i < n_calls; i++)
		if (!calls[i].answered && strcmp(calls[i].method, method) == 0 &&
		    strncmp(calls[i].path, path_prefix, strlen(path_prefix)) == 0)
			return &calls[i];
	return NULL;
}

/* The same, to the node at this URL only. */
static inline struct fcall *next_call_at(const char *base, const char *method, const char *path_prefix)
{
	for (size_t i = 0; i < n_calls; i++)
		if (!calls[i].answered && strcmp(calls[i].base, base) == 0 && strcmp(calls[i].method, method) == 0 &&
		    strncmp(calls[i].path, path_prefix, strlen(path_prefix)) == 0)
			return &calls[i];
	return NULL;
}

static inline size_t pending_at(const char *base, const char *method, const char *path_prefix)
{
	size_t k = 0;
	for (size_t i = 0; i < n_calls; i++)
		if (!calls[i].answered && strcmp(calls[i].base, base) == 0 && strcmp(calls[i].method, method) == 0 &&
		    strncmp(calls[i].path, path_prefix, strlen(path_prefix)) == 0)
			k++;
	return k;
}

/* Answer a call: status 0 is a transport failure (timed_out: the call's
 * own timeout ran out). */
static inline void fake_answer_full(struct fcall *f, int status, bool timed_out, const char *body)
{
	struct http_result res = {.status = status, .timed_out = timed_out};

	assert_non_null(f);
	assert_false(f->answered);
	f->answered = true;
	res.body = strdup(body ? body : "");
	res.body_len = strlen(res.body);
	res.error = status ? NULL : (timed_out ? "Timeout was reached" : "Connection refused");
	f->done(&res, f->data);
	free(res.body);
}

static inline void fake_answer(struct fcall *f, int status, const char *body)
{
	fake_answer_full(f, status, false, body);
}

/* Answer every unanswered DELETE (sandboxd: 202). */
static inline size_t answer_deletes(void)
{
	size_t k = 0;
	struct fcall *f;
	while ((f = next_call("DELETE", "/v1/slots/"))) {
		fake_answer(f, 202, "{}");
		k++;
	}
	return k;
}

/* ---- slots the fake node creates ---- */
static unsigned next_slot = 1;

static inline void slot_name(char out[17], unsigned k)
{
	snprintf(out, 17, "%016x", k);
}

/* Answer a POST /v1/slots with as many slots as it asked for. */
static inline size_t answer_create(struct fcall *f)
{
	json_t *req = json_loads(f->body, 0, NULL), *slots = json_array();
	size_t count = (size_t)json_integer_value(json_object_get(req, "count"));
	char id[17];

	for (size_t i = 0; i < count; i++) {
		slot_name(id, next_slot++);
		json_array_append_new(slots, json_pack("{s:s}", "id", id));
	}
	json_t *ans = json_pack("{s:o}", "slots", slots);
	char *text = json_dumps(ans, JSON_COMPACT);
	fake_answer(f, 201, text);
	free(text);
	json_decref(ans);
	json_decref(req);
	return count;
}

/* Answer every POST /v1/slots in flight; the number of slots made. */
static inline size_t answer_creates(void)
{
	size_t k = 0;
	struct fcall *f;
	while ((f = next_call("POST", "/v1/slots")))
		k += answer_create(f);
	return k;
}

/* Slots asked for by the POSTs in flight. */
static inline size_t creating(void)
{
	size_t k = 0;
	for (size_t i = 0; i < n_calls; i++)
		if (!calls[i].answered && strcmp(calls[i].method, "POST") == 0 &&
		    strcmp(calls[i].path, "/v1/slots") == 0) {
			json_t *req = json_loads(calls[i].body, 0, NULL);
			k += (size_t)json_integer_value(json_object_get(req, "count"));
			json_decref(req);
		}
	return k;
}

/* Run the zero-delay timers (pool_take's handoffs). */
static inline void settle(void)
{
	for (int i = 0; i < 3; i++)
		ev_run(EV_DEFAULT, EVRUN_NOWAIT);
}

/* ---- set-up: one node, the pools a test asks for ---- */
static struct psettings cfg;
static struct node_conf node_conf2 = {.name = "n2", .url = "http://fake:2"};
static struct node_conf node_conf = {.name = "n1", .url = "http://fake:1"};
static bool two_nodes;

static inline void add_pool(const char *name, uint64_t warm, uint64_t max, uint64_t idle_ms, uint64_t life_ms,
			    bool stateful)
{
	struct pool_conf *pc = calloc(1, sizeof(*pc)), **tail = &cfg.pools;
	pc->name = strdup(name);
	pc->language = strdup("python");
	pc->warm = warm;
	pc->max = max;
	pc->idle_timeout_ms = idle_ms;
	pc->max_lifetime_ms = life_ms;
	pc->limits = json_object();
	pc->stateful = stateful;
	while (*tail)
		tail = &(*tail)->next;
	*tail = pc;
	cfg.n_pools++;
}

static inline void start_poold(void)
{
	struct wp_error err = {0};

	log_init("test", LOG_ERROR);
	cfg.max_queue = 64;
	cfg.queue_timeout_ms = 5000;
	cfg.session_queue = 4;
	cfg.node_timeout_ms = 1000;
	cfg.health_interval_ms = 3600 * 1000; /* the test runs the checks (nodes_check_all) */
	cfg.nodes = &node_conf;
	node_conf.next = two_nodes ? &node_conf2 : NULL;
	poold_clock_set(fake_now);
	node_set_transport(fake_transport);
	assert_int_equal(nodes_init(EV_DEFAULT, NULL, &cfg, &err), 0);
	assert_int_equal(pools_init(EV_DEFAULT, &cfg, &err), 0);
	assert_int_equal(leases_init(EV_DEFAULT, &cfg), 0);
}

static char info_body[512];

static inline void set_info(size_t capacity, size_t slots_total)
{
	snprintf(info_body, sizeof(info_body),
		 "{\"capacity\": %zu, \"slots\": {\"total\": %zu}, \"runs\": {\"slots\": 2},"
		 " \"languages\": [{\"name\": \"python\", \"available\": true}]}",
		 capacity, slots_total);
}

/* A health check answered with info_body; true when it asked for the
 * slot list (a sync) too. */
static inline bool health_check(void)
{
	nodes_check_all();
	fake_answer(next_call("GET", "/v1/info"), 200, info_body);
	return next_call("GET", "/v1/slots") != NULL;
}

/* The node comes up with capacity and these slots (a JSON array). */
static inline void node_up(size_t capacity, const char *slots_json)
{
	char body[4096];
	size_t total = 0;
	json_t *a = json_loads(slots_json, 0, NULL);
	total = json_array_size(a);
	json_decref(a);
	set_info(capacity, total);
	assert_true(health_check());
	snprintf(body, sizeof(body), "{\"slots\": %s}", slots_json);
	fake_answer(next_call("GET", "/v1/slots"), 200, body);
	assert_true(node_first()->up);
	assert_true(node_first()->synced);
}

/* Node up, the pools warm: every create answered. */
static inline void warm_up(size_t capacity)
{
	node_up(capacity, "[]");
	while (answer_creates())
		;
	settle();
}

/* ---- operations on sessions ---- */
struct top {
	struct lease_op op; /* first */
	struct lease *lease;
	int started;
};

#define MAX_FAILS 64
static struct {
	int status;
	char code[48];
} fails[MAX_FAILS];
static size_t n_fails;

static inline void top_start(struct lease *l, struct lease_op *op)
{
	struct top *t = (struct top *)op;
	t->lease = l;
	t->started++;
}

static inline void top_fail(struct lease_op *op, int status, const char *code, const char *message, double retry_after)
{
	assert_true(n_fails < MAX_FAILS);
	fails[n_fails].status = status;
	snprintf(fails[n_fails].code, sizeof(fails[n_fails].code), "%s", code);
	n_fails++;
	free(op);
}

/* Submit an operation on session ident (it may create the lease). The
 * returned op is freed by poold when it fails: look at fails[] then. */
static inline struct top *submit(struct pool *p, const char *ident, bool create)
{
	struct top *t = calloc(1, sizeof(*t));
	t->op.start = top_start;
	t->op.fail = top_fail;
	t->op.create = create;
	lease_submit(p, ident, &t->op);
	return t;
}

/* The operation ran: poold is told it is done (the op is the test's). */
static inline void finish(struct top *t)
{
	assert_int_equal(t->started, 1);
	lease_op_done(t->lease);
	free(t);
}

static inline const char *last_fail(void)
{
	return n_fails ? fails[n_fails - 1].code : "";
}

/* ---- one child process per test ---- */
#define RUN_ONE_S 10 /* a test that hangs (a loop in a broken list) fails after it */

static inline int run_one(const struct CMUnitTest *t)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		alarm(RUN_ONE_S);
		_exit(_cmocka_run_group_tests(t->name, t, 1, NULL, NULL) ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		fprintf(stderr, "[  FAILED  ] %s: still running after %d s (a hang)\n", t->name, RUN_ONE_S);
	else if (WIFSIGNALED(status))
		fprintf(stderr, "[  FAILED  ] %s: killed by signal %d\n", t->name, WTERMSIG(status));
	return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

static inline int run_each(const struct CMUnitTest *tests, size_t n)
{
	int failed = 0;
	for (size_t i = 0; i < n; i++)
		failed += run_one(&tests[i]);
	if (failed)
		fprintf(stderr, "%d of %zu tests failed\n", failed, n);
	return failed ? 1 : 0;
}

#endif
