/* ops.c — see ops.h. */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cleanup.h"
#include "json.h"
#include "lease.h"
#include "log.h"
#include "node.h"
#include "pool.h"
#include "settings.h"
#include "telemetry.h"

enum op_kind { OP_EXECUTE, OP_RUN, OP_FILES, OP_RELEASE };

struct op_ctx {
	struct lease_op op; /* first: the lease module sees only this */
	enum op_kind kind;
	struct pool *pool;
	json_t *run;	 /* body for sandboxd's run */
	json_t *request; /* /execute: the original, for expected outputs */
	char *sub;	 /* files: "files" or "files/<name>" */
	double t0;
	struct lease *lease;
};

static const struct psettings *cfg;

void ops_init(const struct psettings *st, struct metrics *m)
{
	cfg = st;
}

static void ctx_free(struct op_ctx *c)
{
	json_decref(c->run);
	json_decref(c->request);
	free(c->sub);
	free(c);
}

static void op_fail(struct lease_op *op, int status, const char *code, const char *message, double retry_after)
{
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

/* sandboxd's run answer → DESIGN.md's /execute answer. */
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
		/* output that is not UTF-8: its exact bytes, as the node gave them */
		for (const char *const *k = (const char *const[]){"stdout_base64", "stderr_base64", NULL}; *k; k++)
			if (json_object_get(t, *k))
				json_object_set(json_array_get(results, i), *k, json_object_get(t, *k));
	}
	ops_uuid4(exec_id);
	ops_uuid4(sub_id);
	double wall_ms = wall * 1000.0;
	json_t *ans = json_pack(
	    "{s:s, s:s, s:O, s:{s:I, s:I, s:I, s:b, s:f}, s:o, s:{s:I, s:f, s:f}}", "execution_id", exec_id,
	    "submission_id", sub_id, "verdict", json_object_get(r, "verdict"), "summary", "total_tests",
	    (json_int_t)total, "passed", (json_int_t)passed, "failed", (json_int_t)(total - passed), "all_passed",
	    total > 0 && passed == total, "pass_percentage", total ? 100.0 * (double)passed / (double)total : 0.0,
	    "test_results", results, "metadata", "execution_time_ms", (json_int_t)wall_ms, "cpu_usage_percent",
	    wall_ms > 0 ? 100.0 * (double)cpu_ms / wall_ms : 0.0, "memory_usage_mb", (double)mem_kb / 1024.0);
	json_t *comp = json_object_get(r, "compile");
	if (json_is_object(comp)) {
		json_object_set(ans, "compile", comp);
		if (json_string_value(json_object_get(comp, "status")) &&
		    strcmp(json_string_value(json_object_get(comp, "status")), "error") == 0)
			json_object_set(ans, "compile_output", json_object_get(comp, "stderr"));
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

static void run_done(struct node *n, struct http_result *res, void *data)
{
	struct op_ctx *c = data;
	struct lease *l = c->lease;
	cleanup_json json_t *r = NULL;

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

static void run_start(struct lease *l, struct lease_op *op)
{
	struct op_ctx *c = (struct op_ctx *)op;
	char path[64];

	c->lease = l;
	snprintf(path, sizeof(path), "/v1/slots/%s/run", l->slot_id);
	if (!node_call_label(l->node, lease_label_once(l), "POST", path, json_incref(c->run), run_timeout(c), run_done,
			     c)) {
		op_fail(op, 500, "InternalError", "could not call the node", 0);
		lease_op_done(l);
	}
}

/* Pool limits first, the request's on top (sandboxd checks the maxima). */
static json_t *merged_limits(struct pool *p, json_t *req_limits)
{
	json_t *lim = json_deep_copy(p->limits);
	if (json_is_object(req_limits))
		json_object_update(lim, req_limits);
	return lim;
}

void ops_execute(struct http_request *req, json_t *body)
{
	static const char *const keys[] = {"language", "code",	  "user_id",	     "question_id", "test_cases",
					   "limits",   "compare", "stop_on_failure", "checker",	    NULL};
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
		http_respond_error(req, 400, "InvalidIdentifier", "user_id: 1 to 128 visible ASCII characters");
		return;
	}
	if (!(p = pool_for_language(lang))) {
		http_respond_error(req, 400, "UnknownLanguage", "no pool serves language `%s`", lang);
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
	lease_submit(p, user, &c->op);
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
	lease_submit(p, ident, &c->op);
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
		relay_error(c, res);
		ctx_free(c);
		end_if_refused_first(l, res->status);
	}
	lease_op_done(l);
}

static void files_start(struct lease *l, struct lease_op *op)
{
	struct op_ctx *c = (struct op_ctx *)op;
	struct http_request *req = op->req;
	char path[600];

	c->lease = l;
	snprintf(path, sizeof(path), "/v1/slots/%s/%s", l->slot_id, c->sub);
	if (!node_call_raw(l->node, lease_label_once(l), req->method, path, "application/octet-stream",
			   req->body_len ? req->body : NULL, req->body_len, 300, files_done, c)) {
		op_fail(op, 500, "InternalError", "could not call the node", 0);
		lease_op_done(l);
	}
}

void ops_session_files(struct http_request *req, struct pool *p, const char *ident, const char *sub, bool create)
{
	struct op_ctx *c = ctx_new(req, OP_FILES, p, create);
	if (!c)
		return;
	if (!(c->sub = strdup(sub))) {
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
