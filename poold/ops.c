/* ops.c — see ops.h. */
#include "ops.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api.h"
#include "cleanup.h"
#include "clock.h"
#include "http_path.h"
#include "json.h"
#include "lease.h"
#include "log.h"
#include "node.h"
#include "pool.h"
#include "queue.h"
#include "settings.h"
#include "telemetry.h"

enum op_kind { OP_EXECUTE, OP_RUN, OP_FILES, OP_RELEASE };

struct op_ctx {
	struct lease_op op; /* first: the lease module sees only this */
	enum op_kind kind;
	struct pool *pool;
	json_t *run;	 /* body for sandboxd's run */
	json_t *request; /* /execute: the original, for expected outputs */
	char *name;	 /* files: the file's name (decoded, checked), NULL: the list */
	char *query;	 /* files: the list's page query ("limit=…&after=…"), or NULL */
	double t0;
	struct lease *lease;
	/* judged runs (POST /execute) only */
	struct queue_item qi;
	char user[129];
	uint64_t need_kb;      /* memory counted on the node while it runs */
	struct judge_node *jn; /* the node budget it holds, or NULL */
	struct node *node;     /* its slot, once taken */
	char slot_id[17];
	char label[200];
	unsigned refusals;    /* times a node answered NodeBusy */
	double t_take;	      /* when it asked its pool for a slot */
	double t_run;	      /* when its run was sent to the node */
	struct op_ctx *wnext; /* a session run waiting for its node's run budget */
	double waiting_since;
	struct op_ctx *hnext; /* in `holding` while it has a slot */
};

/* poold's view of a node's run budget (admission; sandboxd has the last
 * word and answers NodeBusy past it). */
struct judge_node {
	struct node *node;
	size_t active;	   /* judged runs of ours holding its budget */
	uint64_t mem_kb;   /* their memory limits */
	double busy_until; /* it refused a run: leave it until a run ends or then */
	/* session runs (their slot is on this node) waiting for its budget,
	 * served before the judged queue */
	struct op_ctx *waiters, **waiters_tail;
	struct judge_node *next;
};

#define JUDGE_TICK	  0.25
#define JUDGE_DEFAULT_KB  (256u << 10) /* a run that names no memory limit: sandboxd's default */
#define NODE_BUSY_BACKOFF 1.0

static struct ev_loop *loop;
static const struct psettings *cfg;
static struct queue *jq;
static struct judge_node *jnodes;
static ev_timer judge_timer;
static bool judge_stopping;

/* Judged runs holding a slot (labelled "<pool>/judged-…", unknown to the
 * lease table): a node read-back must not take them for orphans. */
static struct op_ctx *holding;

static void judge_take_slot(struct op_ctx *c, struct node *n, const char *slot_id)
{
	c->node = n;
	snprintf(c->slot_id, sizeof(c->slot_id), "%s", slot_id);
	c->hnext = holding;
	holding = c;
}

/* Its slot given back: out of `holding`, no node, no slot. */
static void judge_drop_slot(struct op_ctx *c)
{
	for (struct op_ctx **pp = &holding; *pp; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	}
	c->hnext = NULL;
	c->node = NULL;
	c->slot_id[0] = '\0';
}

bool ops_judged_holds(const struct node *n, const char *slot_id)
{
	for (struct op_ctx *c = holding; c; c = c->hnext)
		if (c->node == n && strcmp(c->slot_id, slot_id) == 0)
			return true;
	return false;
}

static void judge_dispatch(void);
static void judge_tick(struct ev_loop *lp, ev_timer *w, int revents);
static struct judge_node *judge_node(struct node *n);
static void judge_release(struct op_ctx *c);
static void session_wait(struct op_ctx *c, bool front);

static double loop_now(void *data)
{
	return poold_now(loop);
}

static void ctx_free(struct op_ctx *c)
{
	judge_drop_slot(c); /* a judged run freed with its slot still noted */
	json_decref(c->run);
	json_decref(c->request);
	free(c->name);
	free(c->query);
	free(c);
}

static void op_fail(struct lease_op *op, int status, const char *code, const char *message, double retry_after)
{
	struct op_ctx *c = (struct op_ctx *)op;
	if (status == 429 || status == 503)
		telemetry_refused(c->pool ? c->pool->name : "", code);
	http_respond_error_retry(op->req, status, retry_after, code, "%s", message);
	ctx_free((struct op_ctx *)op);
}

static struct op_ctx *ctx_new(struct http_request *req, enum op_kind kind, struct pool *p, bool create)
{
	struct op_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		return NULL;
	}
	c->op.req = req;
	c->op.fail = op_fail;
	c->op.create = create;
	c->kind = kind;
	c->pool = p;
	c->t0 = ev_time();
	return c;
}

void ops_init(struct ev_loop *l, const struct psettings *st, struct metrics *m)
{
	loop = l;
	cfg = st;
	jq = queue_new(st->execute_max_queue, st->execute_user_queue, loop_now, NULL);
	ev_timer_init(&judge_timer, judge_tick, JUDGE_TICK, JUDGE_TICK);
	ev_timer_start(loop, &judge_timer);
}

void ops_uuid4(char out[37])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		memset(b, 0, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* What a student reads of a failed compile: the compiler's own messages,
 * then the judge's line saying what happened (never empty: a compile the
 * judge stopped at one of its limits has no message of the compiler). */
static json_t *compile_output(json_t *comp)
{
	const char *err = json_string_value(json_object_get(comp, "stderr"));
	const char *msg = json_string_value(json_object_get(comp, "message"));
	size_t n = err ? strlen(err) : 0;
	cleanup_free char *text = NULL;

	if (!msg)
		return json_incref(json_object_get(comp, "stderr"));
	if (asprintf(&text, "%s%s[judge] %s\n", err ? err : "", n && err[n - 1] != '\n' ? "\n" : "", msg) < 0)
		return json_string("");
	return json_string(text);
}

/* sandboxd's run answer → the /execute answer (docs/api.md). */
static json_t *execute_answer(struct op_ctx *c, json_t *r, double wall)
{
	json_t *tests = json_object_get(r, "tests"), *cases = json_object_get(c->request, "test_cases");
	json_t *results = json_array(), *t;
	size_t i, passed = 0, total = json_array_size(cases);
	json_int_t cpu_ms = 0, mem_kb = 0;
	char exec_id[37], sub_id[37];

	json_array_foreach (tests, i, t) {
		const char *v = json_string_value(json_object_get(t, "verdict"));
		json_t *tc = json_array_get(cases, i);
		bool ok = v && strcmp(v, "accepted") == 0;
		passed += ok;
		cpu_ms += json_integer_value(json_object_get(t, "time_ms"));
		if (json_integer_value(json_object_get(t, "memory_kb")) > mem_kb)
			mem_kb = json_integer_value(json_object_get(t, "memory_kb"));
		json_array_append_new(
		    results,
		    json_pack("{s:I, s:b, s:s, s:O, s:O, s:O?, s:O, s:O, s:O}", "test_case", (json_int_t)i + 1,
			      "passed", ok, "verdict", v ? v : "internal_error", "stdout", json_object_get(t, "stdout"),
			      "stderr", json_object_get(t, "stderr"), "expected_output",
			      json_object_get(tc, "expected_output"), "exit_code", json_object_get(t, "exit_code"),
			      "time_ms", json_object_get(t, "time_ms"), "memory_kb", json_object_get(t, "memory_kb")));
		/* beyond the original contract: output cut at max_output, and
		 * what the verdict means (null for a clean accepted) */
		json_t *res = json_array_get(results, json_array_size(results) - 1);
		json_object_set_new(res, "stdout_truncated",
				    json_boolean(json_is_true(json_object_get(t, "stdout_truncated"))));
		json_object_set_new(res, "stderr_truncated",
				    json_boolean(json_is_true(json_object_get(t, "stderr_truncated"))));
		json_object_set(res, "message", json_object_get(t, "message") ?: json_null());
		/* output that is not UTF-8: its exact bytes, as the node gave them */
		for (const char *const *k = (const char *const[]){"stdout_base64", "stderr_base64", NULL}; *k; k++)
			if (json_object_get(t, *k))
				json_object_set(res, *k, json_object_get(t, *k));
	}
	ops_uuid4(exec_id);
	ops_uuid4(sub_id);
	/* cpu_usage_percent: the CPU time of the whole run, the compile's too,
	 * over its wall time (execution_time_ms, which has the compile in it),
	 * in tenths of a percent; above 100 when several cores were busy */
	cpu_ms += json_integer_value(json_object_get(json_object_get(r, "compile"), "time_ms"));
	double wall_ms = wall * 1000.0;
	double cpu_pct = wall_ms > 0 ? round(1000.0 * (double)cpu_ms / wall_ms) / 10.0 : 0.0;
	double mem_mb = round((double)mem_kb / 102.4) / 10.0;
	json_t *ans = json_pack("{s:s, s:s, s:O, s:{s:I, s:I, s:I, s:b, s:f}, s:o, s:{s:I, s:f, s:f}}", "execution_id",
				exec_id, "submission_id", sub_id, "verdict", json_object_get(r, "verdict"), "summary",
				"total_tests", (json_int_t)total, "passed", (json_int_t)passed, "failed",
				(json_int_t)(total - passed), "all_passed", total > 0 && passed == total,
				"pass_percentage", total ? 100.0 * (double)passed / (double)total : 0.0, "test_results",
				results, "metadata", "execution_time_ms", (json_int_t)wall_ms, "cpu_usage_percent",
				cpu_pct, "memory_usage_mb", mem_mb);
	json_object_set(ans, "message", json_object_get(r, "message") ?: json_null());
	json_t *comp = json_object_get(r, "compile");
	if (json_is_object(comp)) {
		json_object_set(ans, "compile", comp);
		if (json_string_value(json_object_get(comp, "status")) &&
		    strcmp(json_string_value(json_object_get(comp, "status")), "error") == 0)
			json_object_set_new(ans, "compile_output", compile_output(comp));
	}
	return ans;
}

/* A non-2xx answer of the node, relayed in our error shape. */
static void relay_error(struct op_ctx *c, struct http_result *res)
{
	cleanup_json json_t *j = json_parse_reply(res->body, res->body_len);
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	int status = res->status;

	/* a 2xx whose body is not JSON is the node's failure too: never a 200 */
	if (status < 300) {
		http_respond_error(c->op.req, 502, "NodeError",
				   "the node answered %d with %zu bytes that are not JSON (see the node's log)", status,
				   res->body_len);
		return;
	}
	if (status >= 500)
		status = 502;
	http_respond_error(c->op.req, status, code ? code : "NodeError", "%s", msg ? msg : "the node refused");
}

/* Bad input changes nothing: a session leased for a request the node then
 * refused (400, 413, 422: a value only the node checks) is released again. */
static void end_if_refused_first(struct lease *l, int status)
{
	if (!l->recovered && l->executions == 0 && status >= 400 && status < 500 && status != 404 && status != 410)
		lease_end(l, "its first request was refused");
}

/* A 503 NodeBusy of sandboxd's run admission (the node is the arbiter). */
static void run_done(struct node *n, struct http_result *res, void *data)
{
	struct op_ctx *c = data;
	struct lease *l = c->lease;
	cleanup_json json_t *r = NULL;
	struct judge_node *j = c->jn;

	judge_release(c);
	/* refused by the node's own admission (a run of another poold, or
	 * poold's view behind): wait again, first in line, the node resting */
	if (node_busy(res) && !http_request_gone(c->op.req)) {
		lease_run_refused(l);
		if (j)
			j->busy_until = poold_now(loop) + NODE_BUSY_BACKOFF;
		session_wait(c, true);
		judge_dispatch();
		return;
	}
	judge_dispatch();
	if (res->status == 0) {
		lease_fail_transport(l, &c->op, res->error);
		lease_op_done(l);
		return;
	}
	if (res->status == 404 || res->status == 410) {
		/* the slot is gone under us: say so, and let the next call start afresh */
		op_fail(&c->op, 410, "SessionLost", "the session's sandbox no longer exists; its state is gone", 0);
		lease_end(l, "slot vanished"); /* fails what queued behind; finishes once done */
		lease_op_done(l);
		return;
	}
	if (res->status != 200 || !(r = json_parse_reply(res->body, res->body_len))) {
		relay_error(c, res);
		ctx_free(c);
		end_if_refused_first(l, res->status);
		lease_op_done(l);
		return;
	}
	double wall = ev_time() - c->t0;
	l->runs++;
	telemetry_execution(c->pool->language, json_string_value(json_object_get(r, "verdict")) ?: "internal_error",
			    wall);
	if (c->kind == OP_EXECUTE) {
		http_respond_json(c->op.req, 200, execute_answer(c, r, wall));
	} else {
		json_object_set_new(
		    r, "session",
		    json_pack("{s:s, s:s, s:s}", "identifier", l->ident, "pool", l->pool->name, "node", n->name));
		http_respond_json(c->op.req, 200, json_incref(r));
	}
	ctx_free(c);
	lease_op_done(l);
}

/* The whole run's bound: compile, then every test's wall limit, plus slack. */
static double run_timeout(const struct op_ctx *c)
{
	json_t *lim = json_object_get(c->run, "limits");
	double wall = json_is_integer(json_object_get(lim, "wall_ms"))
			  ? (double)json_integer_value(json_object_get(lim, "wall_ms")) / 1000.0
			  : 60.0;
	return 90.0 + wall * (double)json_array_size(json_object_get(c->run, "tests"));
}

/* A session's run holds its node's run budget (see judge_node). */
static void session_send(struct op_ctx *c)
{
	struct lease *l = c->lease;

	if (!lease_run(l, json_incref(c->run), run_timeout(c), run_done, c)) {
		judge_release(c);
		op_fail(&c->op, 500, "InternalError", "could not call the node", 0);
		lease_op_done(l);
	}
}

static void run_start(struct lease *l, struct lease_op *op)
{
	struct op_ctx *c = (struct op_ctx *)op;

	c->lease = l;
	c->waiting_since = poold_now(loop);
	session_wait(c, false);
}

/* Pool limits first, the request's on top (sandboxd checks the maxima). */
static json_t *merged_limits(struct pool *p, json_t *req_limits)
{
	json_t *lim = json_deep_copy(p->limits);
	if (json_is_object(req_limits))
		json_object_update(lim, req_limits);
	return lim;
}

/* ---- judged runs: the fair queue, admission, a fresh slot each ----
 *
 * POST /execute is one submission, not a session: it waits its turn in the
 * fair queue (queue.h: round-robin across user_ids), starts when a node has
 * run budget (its run_slots and run_memory, from GET /v1/info), takes a
 * warm slot of the language's judged pool (pool_for_judged), runs compile
 * and tests, answers, and the slot is destroyed: the pool refills. Nothing
 * of a submission is left for the next, the same user's included. The slot
 * carries the label "<pool>/judged-<uuid>" while it runs, so that a poold
 * restarted meanwhile recovers it as a lease that idles out and is
 * destroyed, never as a ready slot. */

static inline struct op_ctx *ctx_of_item(struct queue_item *it)
{
	return (struct op_ctx *)((char *)it - offsetof(struct op_ctx, qi));
}

static struct judge_node *judge_node(struct node *n)
{
	struct judge_node *j;
	for (j = jnodes; j; j = j->next)
		if (j->node == n)
			return j;
	if (!(j = calloc(1, sizeof(*j))))
		return NULL;
	j->node = n;
	j->waiters_tail = &j->waiters;
	j->next = jnodes;
	jnodes = j;
	return j;
}

static uint64_t node_run_memory_kb(const struct node *n)
{
	json_int_t kb = json_integer_value(json_object_get(json_object_get(n->info, "runs"), "memory_kb"));
	return kb > 0 ? (uint64_t)kb : UINT64_MAX;
}

static bool judge_fits(struct judge_node *j, uint64_t need_kb, double now)
{
	struct node *n = j->node;
	if (!n->up || !n->synced || now < j->busy_until || j->active >= pool_node_run_slots(n))
		return false;
	return j->active == 0 || j->mem_kb + need_kb <= node_run_memory_kb(n);
}

/* A language some node's language file marks `sessions_only` (GET
 * /v1/info): served by sessions, never judged. */
static bool ops_sessions_only(const char *language)
{
	for (struct node *n = node_first(); n; n = n->next) {
		size_t i;
		json_t *lang;
		json_array_foreach (json_object_get(n->info, "languages"), i, lang)
			if (strcmp(json_string_value(json_object_get(lang, "name")) ?: "", language) == 0 &&
			    json_is_true(json_object_get(lang, "sessions_only")))
				return true;
	}
	return false;
}

/* The node with the most run budget left that has the language, or NULL. */
static struct judge_node *judge_pick(const struct pool *p, uint64_t need_kb)
{
	struct judge_node *best = NULL;
	double now = poold_now(loop), best_free = 0;
	for (struct node *n = node_first(); n; n = n->next) {
		struct judge_node *j;
		if (!node_has_language(n, p->language) || !(j = judge_node(n)) || !judge_fits(j, need_kb, now))
			continue;
		double free_share = 1.0 - (double)j->active / (double)pool_node_run_slots(n);
		if (!best || free_share > best_free) {
			best = j;
			best_free = free_share;
		}
	}
	return best;
}

static void judge_hold(struct op_ctx *c, struct judge_node *j)
{
	c->jn = j;
	j->active++;
	j->mem_kb += c->need_kb;
	if (c->kind == OP_EXECUTE)
		c->pool->n_judge_running++;
}

/* Session runs waiting on j that fit now: start them. */
static void serve_waiters(struct judge_node *j)
{
	double now = poold_now(loop);
	while (j->waiters && judge_fits(j, j->waiters->need_kb, now)) {
		struct op_ctx *c = j->waiters;
		j->waiters = c->wnext;
		if (!j->waiters)
			j->waiters_tail = &j->waiters;
		c->wnext = NULL;
		judge_hold(c, j);
		session_send(c);
	}
}

static void judge_release(struct op_ctx *c)
{
	struct judge_node *j = c->jn;
	if (!j)
		return;
	c->jn = NULL;
	if (j->active)
		j->active--;
	j->mem_kb = j->mem_kb > c->need_kb ? j->mem_kb - c->need_kb : 0;
	j->busy_until = 0; /* a run ended there: worth a try again */
	if (c->kind == OP_EXECUTE && c->pool->n_judge_running)
		c->pool->n_judge_running--;
	serve_waiters(j);
}

/* A session's run waits for its node's budget (FIFO per node; a run the
 * node refused goes back first). */
static void session_wait(struct op_ctx *c, bool front)
{
	struct judge_node *j = judge_node(c->lease->node);
	if (!j) {
		op_fail(&c->op, 500, "InternalError", "out of memory", 0);
		lease_op_done(c->lease);
		return;
	}
	if (front) {
		c->wnext = j->waiters;
		j->waiters = c;
		if (j->waiters_tail == &j->waiters)
			j->waiters_tail = &c->wnext;
	} else {
		c->wnext = NULL;
		*j->waiters_tail = c;
		j->waiters_tail = &c->wnext;
	}
	serve_waiters(j);
}

/* Tick: session runs waiting on a node that went down, or for too long.
 * They are taken off the list first and answered after: answering ends
 * their operation, which may start the session's next one (and queue it
 * here again). */
static void sweep_waiters(struct judge_node *j)
{
	double now = poold_now(loop), limit = (double)cfg->execute_queue_timeout_ms / 1000.0;
	struct op_ctx *victims = NULL, **vtail = &victims;
	bool down = !j->node->up;

	for (struct op_ctx **cp = &j->waiters; *cp;) {
		struct op_ctx *c = *cp;
		if (!down && now - c->waiting_since < limit && !judge_stopping) {
			cp = &c->wnext;
			continue;
		}
		*cp = c->wnext;
		c->wnext = NULL;
		*vtail = c;
		vtail = &c->wnext;
	}
	j->waiters_tail = &j->waiters;
	while (*j->waiters_tail)
		j->waiters_tail = &(*j->waiters_tail)->wnext;
	while (victims) {
		struct op_ctx *c = victims;
		struct lease *l = c->lease;
		victims = c->wnext;
		c->wnext = NULL;
		if (down)
			lease_fail_transport(l, &c->op, "the node went down");
		else
			op_fail(&c->op, 503, "NodeBusy",
				judge_stopping
				    ? "poold is stopping"
				    : "the run waited its whole execute_queue_timeout for the node's run budget",
				5);
		lease_op_done(l);
	}
	serve_waiters(j);
}

static void judge_unqueue(struct op_ctx *c)
{
	if (c->qi.user) {
		queue_remove(jq, &c->qi);
		if (c->pool->n_judge_queued)
			c->pool->n_judge_queued--;
	}
}

/* The end of a judged run, answered or not: budget back, slot given back
 * (destroyed once used), next in line. */
static void judge_end(struct op_ctx *c, bool slot_used)
{
	if (c->node && c->slot_id[0])
		pool_judged_return(c->pool, c->node, c->slot_id, slot_used);
	judge_drop_slot(c);
	judge_release(c);
	ctx_free(c);
	judge_dispatch();
}

static void judge_fail(struct op_ctx *c, int status, const char *code, double retry, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void judge_fail(struct op_ctx *c, int status, const char *code, double retry, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (status == 429 || status == 503)
		telemetry_refused(c->pool ? c->pool->name : "", code);
	http_respond_error_retry(c->op.req, status, retry, code, "%s", msg);
}

static int judge_requeue(struct op_ctx *c)
{
	int r = queue_push(jq, &c->qi, c->user, 0, true);
	if (r == 0)
		c->pool->n_judge_queued++;
	return r;
}

static void judge_done(struct node *n, struct http_result *res, void *data)
{
	struct op_ctx *c = data;
	cleanup_json json_t *r = NULL;

	if (node_busy(res)) {
		/* refused before it touched the slot: the slot goes back ready,
		 * the run back first in its user's line; the node rests */
		struct judge_node *j = c->jn;
		pool_judged_return(c->pool, c->node, c->slot_id, false);
		judge_drop_slot(c);
		judge_release(c);
		if (j)
			j->busy_until = poold_now(loop) + NODE_BUSY_BACKOFF;
		c->refusals++;
		if (!http_request_gone(c->op.req) && judge_requeue(c) == 0) {
			judge_dispatch();
			return;
		}
		judge_fail(c, 503, "NodeBusy", 1, "the node refused the run as busy and it could not be queued again");
		judge_end(c, false);
		return;
	}
	if (res->status == 0) {
		judge_fail(c, 502, "NodeError", 0, "node %s: %s", n->name, res->error ? res->error : "transport error");
		judge_end(c, true);
		return;
	}
	if (res->status != 200 || !(r = json_parse_reply(res->body, res->body_len))) {
		relay_error(c, res);
		judge_end(c, true);
		return;
	}
	double wall = poold_now(loop) - c->t0;
	telemetry_execution(c->pool->language, json_string_value(json_object_get(r, "verdict")) ?: "internal_error",
			    wall);
	log_debug("execute %s user %s: %s in %.0f ms (slot %s on %s)", c->pool->language, c->user,
		  json_string_value(json_object_get(r, "verdict")) ?: "?", wall * 1000, c->slot_id, n->name);
	/* the answer's execution time is the run's, not the wait for a turn */
	http_respond_json(c->op.req, 200, execute_answer(c, r, poold_now(loop) - c->t_run));
	judge_end(c, true);
}

static void judge_slot(struct pool *p, int err, struct node *n, const char *slot_id, void *data)
{
	struct op_ctx *c = data;
	char uuid[37], path[64], msg[400];

	if (err) {
		double retry = queue_retry_after(jq, 5);
		if (err == -ENODEV)
			judge_fail(c, 503, "NoCapacity", retry, "%s", node_no_host(p->language, msg, sizeof(msg)));
		else if (err == -ECANCELED)
			judge_fail(c, 503, "PoolUnavailable", retry, "pool %s is draining or poold is stopping",
				   p->name);
		else
			judge_fail(c, 503, "PoolExhausted", retry, "no slot of pool %s became ready in time%s%s",
				   p->name, p->last_error[0] ? ": " : "", p->last_error);
		judge_end(c, false);
		return;
	}
	pool_judged_hold(p);
	telemetry_lease_wait(p->name, poold_now(loop) - c->t_take); /* its wait for a slot */
	judge_take_slot(c, n, slot_id);
	if (http_request_gone(c->op.req)) { /* nothing runs for nobody */
		judge_end(c, false);
		return;
	}
	if (c->jn && c->jn->node != n) { /* another node's slot: its budget */
		struct judge_node *j = judge_node(n);
		judge_release(c);
		if (j)
			judge_hold(c, j);
	}
	ops_uuid4(uuid);
	snprintf(c->label, sizeof(c->label), "%s/judged-%s", p->name, uuid);
	snprintf(path, sizeof(path), "/v1/slots/%s/run", slot_id);
	c->t_run = poold_now(loop);
	if (!node_call_label(n, c->label, "POST", path, json_incref(c->run), run_timeout(c), judge_done, c)) {
		judge_fail(c, 500, "InternalError", 0, "could not call the node");
		judge_end(c, false);
	}
}

static bool judge_can_start(struct queue_item *it, void *data)
{
	struct op_ctx *c = ctx_of_item(it);
	struct judge_node **out = data;

	if (http_request_gone(c->op.req)) {
		*out = NULL;
		return true; /* popped and dropped */
	}
	return (*out = judge_pick(c->pool, c->need_kb)) != NULL;
}

static void judge_dispatch(void)
{
	struct judge_node *j = NULL;
	struct queue_item *it;

	if (!jq || judge_stopping)
		return;
	while ((it = queue_pop(jq, judge_can_start, &j))) {
		struct op_ctx *c = ctx_of_item(it);
		double now = poold_now(loop);
		if (c->pool->n_judge_queued)
			c->pool->n_judge_queued--;
		if (!j) { /* its client left while it waited */
			log_debug("execute user %s: client gone after %.1f s in the queue; dropped", c->user,
				  now - it->enqueued);
			ctx_free(c);
			continue;
		}
		if (!c->refusals)
			telemetry_queue_wait(c->pool->name, now - it->enqueued);
		judge_hold(c, j);
		c->t_take = now;
		double left = it->deadline - now;
		pool_take_judged(c->pool, left > 30 ? left : 30, judge_slot, c);
	}
}

static void judge_sweep_one(struct queue_item *it, void *data)
{
	struct op_ctx *c = ctx_of_item(it);
	if (http_request_gone(c->op.req)) {
		judge_unqueue(c);
		ctx_free(c);
	}
}

/* Timer: drop who left, time out who waited too long, start what can. */
static void judge_tick(struct ev_loop *lp, ev_timer *w, int revents)
{
	struct queue_item *it;

	for (struct judge_node *j = jnodes; j; j = j->next)
		sweep_waiters(j);
	queue_each(jq, judge_sweep_one, NULL);
	while ((it = queue_expired(jq))) {
		struct op_ctx *c = ctx_of_item(it);
		if (c->pool->n_judge_queued)
			c->pool->n_judge_queued--;
		log_warn("execute %s user %s: waited %.0f s in the queue (execute_queue_timeout), answered 503",
			 c->pool->language, c->user, poold_now(loop) - it->enqueued);
		judge_fail(c, 503, "QueueTimeout", queue_retry_after(jq, 60),
			   "the submission waited %.0f s for its turn (execute_queue_timeout) with %zu others queued; "
			   "try again later",
			   poold_now(loop) - it->enqueued, queue_length(jq));
		ctx_free(c);
	}
	judge_dispatch();
}

static void judge_submit(struct op_ctx *c)
{
	struct pool *p = c->pool;
	int r;

	if (judge_stopping) {
		judge_fail(c, 503, "PoolUnavailable", 5, "poold is stopping");
		ctx_free(c);
		return;
	}
	if (!pool_language_up(p)) {
		char msg[400];
		judge_fail(c, 503, "NoCapacity", 5, "%s", node_no_host(p->language, msg, sizeof(msg)));
		ctx_free(c);
		return;
	}
	r = queue_push(jq, &c->qi, c->user, (double)cfg->execute_queue_timeout_ms / 1000.0, false);
	if (r == -EDQUOT) {
		judge_fail(c, 429, "TooManyQueued", queue_retry_after(jq, 5),
			   "user %s already has %llu submissions queued (execute_user_queue): wait for their answers",
			   c->user, (unsigned long long)cfg->execute_user_queue);
		ctx_free(c);
		return;
	}
	if (r < 0) {
		double retry = queue_retry_after(jq, 60);
		log_warn(
		    "execute: queue full (%zu submissions, execute_max_queue), refused user %s; retry after %.0f s",
		    queue_length(jq), c->user, retry);
		judge_fail(c, 503, "QueueFull", retry,
			   "%zu submissions are queued (execute_max_queue); at the measured rate of %.1f per "
			   "second they drain in about %.0f s: try again then",
			   queue_length(jq), queue_drain_rate(jq), retry);
		ctx_free(c);
		return;
	}
	p->n_judge_queued++;
	judge_dispatch();
}

size_t ops_node_runs(const struct node *n)
{
	for (struct judge_node *j = jnodes; j; j = j->next)
		if (j->node == n)
			return j->active;
	return 0;
}

size_t ops_queue_length(void)
{
	return jq ? queue_length(jq) : 0;
}

double ops_queue_drain_rate(void)
{
	return jq ? queue_drain_rate(jq) : 0;
}

void ops_reload(void)
{
	if (jq)
		queue_set_limits(jq, cfg->execute_max_queue, cfg->execute_user_queue);
}

/* Stopping: what waits is answered now; what runs finishes. */
static void judge_stop_one(struct queue_item *it, void *data)
{
	struct op_ctx *c = ctx_of_item(it);
	judge_unqueue(c);
	judge_fail(c, 503, "PoolUnavailable", 5, "poold is stopping");
	ctx_free(c);
}

void ops_stop(void)
{
	judge_stopping = true;
	ev_timer_stop(loop, &judge_timer);
	if (jq)
		queue_each(jq, judge_stop_one, NULL);
	for (struct judge_node *j = jnodes; j; j = j->next)
		sweep_waiters(j);
}

void ops_execute(struct http_request *req, json_t *body)
{
	static const char *const keys[] = {"language",	 "code",       "user_id", "question_id",
					   "test_cases", "limits",     "compare", "stop_on_failure",
					   "checker",	 "max_output", NULL};
	struct wp_error err = {0};
	const char *lang, *code, *user, *qid;
	cleanup_json json_t *b = body;
	struct pool *p;

	if (json_check_keys(b, keys, &err) < 0 || json_get_string(b, "language", true, &lang, &err) < 0 ||
	    json_get_string(b, "code", true, &code, &err) < 0 || json_get_string(b, "user_id", true, &user, &err) < 0 ||
	    json_get_string(b, "question_id", false, &qid, &err) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	if (json_object_get(b, "limits") && !json_is_object(json_object_get(b, "limits"))) {
		http_respond_error(req, 400, "BadRequest", "limits: an object is required");
		return;
	}
	if (!lease_ident_valid(user)) {
		char echo[API_ECHO_SIZE];
		api_echo(user, echo, sizeof(echo));
		http_respond_error(req, 400, "InvalidIdentifier", "user_id `%s`: 1 to 128 visible ASCII characters",
				   echo);
		return;
	}
	if (!(p = pool_for_judged(lang))) {
		char echo[API_ECHO_SIZE], langs[256];
		api_echo(lang, echo, sizeof(echo));
		api_languages(langs, sizeof(langs));
		http_respond_error(req, 400, "UnknownLanguage", "no pool serves language `%s`; languages: %s", echo,
				   langs);
		return;
	}
	if (ops_sessions_only(p->language)) {
		http_respond_error(req, 400, "NotSupported",
				   "language `%s` serves sessions only (its language file says `sessions_only`): run "
				   "its commands through POST /pools/%s/executions; /execute judges programs: send "
				   "one in another language",
				   p->language, p->name);
		return;
	}
	json_t *cases = json_object_get(b, "test_cases");
	if (!json_is_array(cases) || json_array_size(cases) < 1 || json_array_size(cases) > cfg->max_tests) {
		http_respond_error(req, 400, "BadRequest", "test_cases: an array of 1 to %llu test cases is required",
				   (unsigned long long)cfg->max_tests);
		return;
	}
	json_t *tests = json_array(), *tc;
	size_t i;
	json_array_foreach (cases, i, tc) {
		static const char *const tkeys[] = {"input", "expected_output", NULL};
		const char *in = "", *exp = NULL;
		if (!json_is_object(tc) || json_check_keys(tc, tkeys, &err) < 0 ||
		    json_get_bytes(tc, "input", false, &in, NULL, &err) < 0 ||
		    json_get_bytes(tc, "expected_output", false, &exp, NULL, &err) < 0) {
			json_decref(tests);
			http_respond_error(req, 400, "BadRequest", "test_cases[%zu]: %s", i,
					   err.msg[0] ? err.msg : "an object is required");
			return;
		}
		json_t *jin = json_object_get(tc, "input");
		json_t *t = json_pack("{s:o}", "stdin", jin ? json_incref(jin) : json_string(""));
		if (exp)
			json_object_set(t, "expected", json_object_get(tc, "expected_output"));
		json_array_append_new(tests, t);
	}
	struct op_ctx *c = ctx_new(req, OP_EXECUTE, p, true);
	if (!c) {
		json_decref(tests);
		return;
	}
	c->op.start = run_start;
	c->request = json_incref(b);
	c->run = json_pack("{s:O, s:o, s:o}", "source", json_object_get(b, "code"), "tests", tests, "limits",
			   merged_limits(p, json_object_get(b, "limits")));
	if (json_object_get(b, "compare"))
		json_object_set(c->run, "compare", json_object_get(b, "compare"));
	if (json_object_get(b, "stop_on_failure"))
		json_object_set(c->run, "stop_on_failure", json_object_get(b, "stop_on_failure"));
	if (json_object_get(b, "checker"))
		json_object_set(c->run, "checker", json_object_get(b, "checker"));
	if (json_object_get(b, "max_output")) /* sandboxd checks it against its maximum */
		json_object_set(c->run, "max_output", json_object_get(b, "max_output"));
	json_t *mem = json_object_get(json_object_get(c->run, "limits"), "memory_kb");
	c->need_kb =
	    json_is_integer(mem) && json_integer_value(mem) > 0 ? (uint64_t)json_integer_value(mem) : JUDGE_DEFAULT_KB;
	snprintf(c->user, sizeof(c->user), "%s", user);
	judge_submit(c);
}

void ops_session_run(struct http_request *req, struct pool *p, const char *ident, json_t *body)
{
	static const char *const keys[] = {"pool",    "language", "source",	    "tests",	       "limits",
					   "compare", "compile",  "compile_limits", "stop_on_failure", "max_output",
					   "checker", NULL};
	struct wp_error err = {0};
	cleanup_json json_t *b = body;

	if (json_check_keys(b, keys, &err) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	if (json_object_get(b, "limits") && !json_is_object(json_object_get(b, "limits"))) {
		http_respond_error(req, 400, "BadRequest", "limits: an object is required");
		return;
	}
	json_t *tests = json_object_get(b, "tests");
	if (!json_is_array(tests) || json_array_size(tests) < 1 || json_array_size(tests) > cfg->max_tests) {
		http_respond_error(req, 400, "BadRequest", "tests: an array of 1 to %llu tests is required",
				   (unsigned long long)cfg->max_tests);
		return;
	}
	struct op_ctx *c = ctx_new(req, OP_RUN, p, true);
	if (!c)
		return;
	c->op.start = run_start;
	c->run = json_deep_copy(b);
	json_object_del(c->run, "pool");
	json_object_del(c->run, "language");
	json_object_set_new(c->run, "limits", merged_limits(p, json_object_get(b, "limits")));
	json_t *mem = json_object_get(json_object_get(c->run, "limits"), "memory_kb");
	c->need_kb =
	    json_is_integer(mem) && json_integer_value(mem) > 0 ? (uint64_t)json_integer_value(mem) : JUDGE_DEFAULT_KB;
	lease_submit(p, ident, &c->op);
}

/* The node's refusal of a file operation, in the words of the Azure routes
 * (FileNotFound, InvalidFileName); anything else as the node said it. */
static void relay_file_error(struct op_ctx *c, struct http_result *res)
{
	cleanup_json json_t *j = json_parse_reply(res->body, res->body_len);
	const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message")) ?: "";
	char echo[API_ECHO_SIZE];

	api_echo(c->name, echo, sizeof(echo));
	if (c->name && res->status == 404 && strncmp(msg, "no slot", 7) != 0)
		http_respond_error(c->op.req, 404, "FileNotFound", "no file `%s` in the session's /mnt/data", echo);
	else if (c->name && res->status == 400 && strncmp(msg, "invalid file name", 17) == 0)
		http_respond_error(c->op.req, 400, "InvalidFileName", "%s", msg);
	else
		relay_error(c, res);
}

static void files_done(struct node *n, struct http_result *res, void *data)
{
	struct op_ctx *c = data;
	struct lease *l = c->lease;

	if (res->status == 0) {
		lease_fail_transport(l, &c->op, res->error);
	} else if (res->status >= 200 && res->status < 300) {
		bool json = res->body_len && res->body[0] == '{';
		if (res->status == 204)
			http_respond(c->op.req, 204, NULL, NULL, NULL, 0);
		else
			http_respond_owned(c->op.req, res->status,
					   json ? "application/json" : "application/octet-stream", NULL,
					   steal_pointer(&res->body), res->body_len);
		ctx_free(c);
	} else {
		relay_file_error(c, res);
		ctx_free(c);
		end_if_refused_first(l, res->status);
	}
	lease_op_done(l);
}

static void files_start(struct lease *l, struct lease_op *op)
{
	struct op_ctx *c = (struct op_ctx *)op;
	struct http_request *req = op->req;
	char path[64 + 3 * HTTP_PATH_NAME_MAX + 256], enc[3 * HTTP_PATH_NAME_MAX + 1];

	c->lease = l;
	/* only what poold owns and checked: its slot id, the encoded name */
	if (c->name && http_path_encode(c->name, enc, sizeof(enc)) < 0) {
		op_fail(op, 400, "InvalidFileName", "file names are 1 to 255 bytes", 0);
		lease_op_done(l);
		return;
	}
	snprintf(path, sizeof(path), "/v1/slots/%s/files%s%s%s%s", l->slot_id, c->name ? "/" : "", c->name ? enc : "",
		 c->query && *c->query ? "?" : "", c->query && *c->query ? c->query : "");
	if (!node_call_raw(l->node, lease_label_once(l), req->method, path, "application/octet-stream",
			   req->body_len ? req->body : NULL, req->body_len, 300, files_done, c)) {
		op_fail(op, 500, "InternalError", "could not call the node", 0);
		lease_op_done(l);
	}
}

/* "&name=value" percent-encoded onto q (never past size). */
static void query_add(char *q, size_t size, const char *name, const char *value)
{
	char enc[128];
	size_t o = strlen(q);

	if (!value)
		return;
	/* too long to be a number: sent as one, so the node says which is bad */
	if (http_path_encode(value, enc, sizeof(enc)) < 0)
		snprintf(enc, sizeof(enc), "too-long");
	snprintf(q + o, o < size ? size - o : 0, "%s%s=%s", o ? "&" : "", name, enc);
}

/* A list is one page of the node's (docs/api.md): ?limit= and ?after= go
 * through (re-encoded), the node checks them, and its answer (bounded by the
 * page) is relayed without being parsed. "" when neither is given. */
static char *files_query(struct http_request *req)
{
	cleanup_free char *limit = http_request_query(req, "limit");
	cleanup_free char *after = http_request_query(req, "after");
	char q[256] = "";

	query_add(q, sizeof(q), "limit", limit);
	query_add(q, sizeof(q), "after", after);
	return strdup(q);
}

void ops_session_files(struct http_request *req, struct pool *p, const char *ident, const char *name, bool create)
{
	struct op_ctx *c = ctx_new(req, OP_FILES, p, create);
	if (!c)
		return;
	if ((name && !(c->name = strdup(name))) ||
	    (!name && strcmp(req->method, "GET") == 0 && !(c->query = files_query(req)))) {
		op_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	c->op.start = files_start;
	lease_submit(p, ident, &c->op);
}

static void release_start(struct lease *l, struct lease_op *op)
{
	http_respond(op->req, 204, NULL, NULL, NULL, 0);
	ctx_free((struct op_ctx *)op);
	lease_end(l, "released");
	lease_op_done(l);
}

void ops_session_release(struct http_request *req, struct pool *p, const char *ident)
{
	struct lease *l = lease_find(p, ident);
	if (!l) {
		http_respond_error(req, 404, "SessionNotFound", "no session `%s` in pool %s", ident, p->name);
		return;
	}
	if (l->state == LEASE_LOST) {
		lease_end(l, "released after loss");
		http_respond(req, 204, NULL, NULL, NULL, 0);
		return;
	}
	struct op_ctx *c = ctx_new(req, OP_RELEASE, p, false);
	if (!c)
		return;
	c->op.start = release_start;
	lease_submit(p, ident, &c->op);
}
