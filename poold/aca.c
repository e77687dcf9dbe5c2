/* aca.c — the Azure dynamic sessions routes (see aca.h).
 *
 * Theory of operation. A request is checked completely before anything is
 * leased: route and method, api-version, identifier, rate limit, body
 * (JSON fields, or the multipart form of an upload). Then it becomes a lease
 * operation (struct aca_op, the same machinery as ops.c): the session's slot
 * is leased on first use, operations of one identifier run one at a time,
 * and each calls sandboxd once — `exec` in the slot's interpreter, or its
 * files API — and translates the answer into Azure's shape.
 *
 * Two generations of shapes exist, chosen by api-version as Azure does:
 * up to 2024-08-02-preview files are listed as
 * {"value": [{"properties": {"filename", "size", "lastModifiedTime"}}]};
 * from 2024-10-02-preview on as {"value": [{"name", "type", "sizeInBytes",
 * "lastModifiedAt", "contentType"}]} and an upload answers one such object
 * (Semantic Kernel .NET and LangChain's bash tool read exactly these).
 * code/execute answers {"properties": {...}} in every version; executions
 * exists from 2024-10-02-preview. */
#include "aca.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "aca_exec.h"
#include "api.h"
#include "cleanup.h"
#include "clock.h"
#include "http_path.h"
#include "json.h"
#include "lease.h"
#include "log.h"
#include "multipart.h"
#include "node.h"
#include "ops.h"
#include "pool.h"
#include "telemetry.h"

#define MAX_JSON_DEPTH	    32
#define AZURE_MAX_TIMEOUT_S 220 /* Azure's own bound of timeoutInSeconds, and our default */
/* node call timeout beyond the execution's own: after a timeout sandboxd
 * kills (<= 10 s) and restarts (<= 20 s) the interpreter before it answers */
#define EXEC_SLACK_S	    60.0
#define FILE_CALL_TIMEOUT_S 300.0
#define MNT_DATA	    "/mnt/data/"
#define PATH_DIR_MAX	    1024 /* `path` below /mnt/data: sandboxd's FILES_DIR_MAX */

static const char *const api_versions[] = {"2024-02-02-preview", "2024-08-02-preview", "2024-10-02-preview",
					   "2025-02-02-preview", "2025-10-02-preview", NULL};
#define API_VERSION_LIST                                                                                               \
	"2024-02-02-preview, 2024-08-02-preview, 2024-10-02-preview, 2025-02-02-preview, 2025-10-02-preview"
#define NEWER_SHAPES_FROM "2024-10-02-preview"
#define SESSIONS_FROM	  "2025-02-02-preview" /* session, listSessions, metadata, .management */
#define RECURSIVE_FROM	  "2025-10-02-preview" /* files: recursive, entries' `directory` */

enum aca_kind {
	ACA_EXECUTE,
	ACA_EXECUTIONS,
	ACA_UPLOAD,
	ACA_LIST,
	ACA_META,
	ACA_CONTENT,
	ACA_DELETE_FILE,
	ACA_PACKAGES /* GET metadata: the packages of the pool's slots, read in one */
};

/* Shell pools (language `shell`): Azure's bound of timeoutInSeconds in
 * their examples, and the default of outputStreamsMaxLength. */
#define SHELL_MAX_TIMEOUT_S  600
#define SHELL_DEFAULT_OUTPUT 4096
#define SHELL_MAX_OUTPUT     (16u << 20)
#define SHELL_MAX_ARGS	     4096
/* a run refused by the node's admission (503 NodeBusy) is sent again after
 * this, doubling up to the cap */
#define BUSY_RETRY_FIRST_S 0.001
#define BUSY_RETRY_MAX_S   0.05

/* One route: path segments after the optional /pools/{name} prefix. */
enum aca_route_id {
	R_CODE_EXECUTE,	 /* POST code/execute */
	R_EXECUTIONS,	 /* POST executions */
	R_EXECUTION,	 /* GET executions/{id} */
	R_SESSION,	 /* GET, DELETE session */
	R_LIST_SESSIONS, /* GET listSessions */
	R_METADATA,	 /* GET metadata */
	R_STOP_SESSION,	 /* POST .management/stopSession */
	R_FILES,	 /* GET files (list), POST files (upload, newer) */
	R_FILES_UPLOAD,	 /* POST files/upload */
	R_FILE,		 /* GET files/{name} (metadata), DELETE files/{name} */
	R_CONTENT,	 /* GET files/content/{name} */
	R_CONTENT_NEWER, /* GET files/{name}/content */
	R_COUNT
};

static const char *const labels[R_COUNT][2] = {
    [R_CODE_EXECUTE] = {"/code/execute", "/pools/{name}/code/execute"},
    [R_EXECUTIONS] = {"/executions", "/pools/{name}/executions"},
    [R_EXECUTION] = {"/executions/{id}", "/pools/{name}/executions/{id}"},
    [R_SESSION] = {"/session", "/pools/{name}/session"},
    [R_LIST_SESSIONS] = {"/listSessions", "/pools/{name}/listSessions"},
    [R_METADATA] = {"/metadata", "/pools/{name}/metadata"},
    [R_STOP_SESSION] = {"/.management/stopSession", "/pools/{name}/.management/stopSession"},
    [R_FILES] = {"/files", "/pools/{name}/files"},
    [R_FILES_UPLOAD] = {"/files/upload", "/pools/{name}/files/upload"},
    [R_FILE] = {"/files/{file}", "/pools/{name}/files/{file}"},
    [R_CONTENT] = {"/files/content/{file}", "/pools/{name}/files/content/{file}"},
    [R_CONTENT_NEWER] = {"/files/{file}/content", "/pools/{name}/files/{file}/content"},
};

struct aca_op {
	struct lease_op op; /* first: the lease module sees only this */
	enum aca_kind kind;
	bool newer; /* api-version with the newer shapes */
	struct pool *pool;
	struct lease *lease;
	json_t *exec;	    /* body of sandboxd's exec, without timeout_ms */
	uint64_t timeout_s; /* asked for, within 1..AZURE_MAX_TIMEOUT_S */
	bool jupyter;	    /* returnJupyterFormatExecutionResult: the result as text */
	char *name;	    /* file name: decoded, validated */
	char *dir;	    /* files: `path` below /mnt/data ("a/b"), validated, or NULL */
	bool recursive;	    /* files list: the whole tree below (2025-10-02-preview on) */
	bool dir_field;	    /* files list: entries carry `directory` (2025-10-02-preview on) */
	const char *data;   /* upload content, inside op.req->body */
	size_t len;
	char content_type[128];
	double t0;
	bool shell;		/* a run in a shell pool's slot, not an interpreter exec */
	uint64_t max_output;	/* shell: outputStreamsMaxLength */
	struct aca_exec *async; /* executionType Asynchronous: the answer goes there */
	double busy_delay;
	char op_id[ACA_EXEC_ID_MAX + 1]; /* executions: the id of a synchronous one */
	char headers[1024];		 /* executions: operation-id, Operation-Location */
	ev_timer busy_retry;
};

static const struct psettings *cfg;
static struct ev_loop *loop;
static double started_at; /* the pools' createdAt in metadata */
/* The Python packages importable in a pool's slots (GET metadata), read
 * once per pool in one of them, by a session of this identifier, and kept:
 * {pool name: [{"name", "version"}]}. */
static json_t *packages_cache;
static char packages_ident[64];
static bool (*session_rate_ok)(struct http_request *req, const char *ident);

/* Kept results past their time go even when no request comes. */
#define PRUNE_INTERVAL_S 10.0
static ev_timer prune_timer;

static void prune_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	aca_exec_prune(poold_now(loop));
}

void aca_init(struct ev_loop *l, const struct psettings *st,
	      bool (*rate_ok)(struct http_request *req, const char *ident))
{
	loop = l;
	cfg = st;
	session_rate_ok = rate_ok;
	started_at = ev_time();
	char rnd[37];
	ops_uuid4(rnd);
	snprintf(packages_ident, sizeof(packages_ident), "warmpool-metadata-%s", rnd);
	packages_cache = json_object();
	aca_exec_setup((double)st->async_result_ttl_ms / 1000.0, st->async_results_per_session);
	if (st->async_results_dir) {
		struct wp_error err = {0};
		int n = aca_exec_store(st->async_results_dir, poold_now(loop), &err);
		if (n < 0)
			log_error("async results: %s: they are kept in memory only (lost at a restart)", err.msg);
		else
			log_info("async results: kept in %s (%d found)", st->async_results_dir, n);
	}
	ev_timer_init(&prune_timer, prune_cb, PRUNE_INTERVAL_S, PRUNE_INTERVAL_S);
	ev_timer_start(loop, &prune_timer);
}

/* ---- small helpers ---- */

static void op_free(struct aca_op *c)
{
	if (ev_is_active(&c->busy_retry))
		ev_timer_stop(loop, &c->busy_retry);
	json_decref(c->exec);
	free(c->name);
	free(c->dir);
	free(c);
}

/* An execution's answer: to its request, or (asynchronous) into its
 * record, where GET executions/{id} finds it. Steals body. */
static void op_answer(struct aca_op *c, int status, json_t *body, const char *headers)
{
	if (c->async) {
		if (status >= 400)
			json_object_set_new(body, "status", json_string("Failed"));
		aca_exec_finish(c->async, body, poold_now(loop));
		return;
	}
	cleanup_free char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text) {
		http_respond_error(c->op.req, 500, "InternalError", "out of memory");
		return;
	}
	http_respond(c->op.req, status, "application/json", headers, text, strlen(text));
}

/* An error in Azure's shape; an asynchronous execution records it as its
 * failure ({"id", "status": "Failed", "error": {...}}). */
static void op_error(struct aca_op *c, int status, const char *code, const char *message, double retry_after)
{
	char hdr[64] = "";
	if (c->async) {
		op_answer(c, status,
			  json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", c->async->id, "identifier",
				    c->async->ident, "executionType", "Asynchronous", "status", "Failed", "error",
				    "code", code, "message", message),
			  NULL);
		return;
	}
	if (retry_after > 0)
		snprintf(hdr, sizeof(hdr), "Retry-After: %.0f\r\n", retry_after < 1 ? 1 : retry_after);
	op_answer(c, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message),
		  hdr[0] ? hdr : NULL);
}

static void aca_fail(struct lease_op *op, int status, const char *code, const char *message, double retry_after)
{
	op_error((struct aca_op *)op, status, code, message, retry_after);
	op_free((struct aca_op *)op);
}

static struct aca_op *op_new(struct http_request *req, enum aca_kind kind, struct pool *p, bool create, bool newer,
			     void (*start)(struct lease *, struct lease_op *))
{
	struct aca_op *c = calloc(1, sizeof(*c));
	if (!c) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		return NULL;
	}
	c->op.req = req;
	c->op.fail = aca_fail;
	c->op.start = start;
	c->op.create = create;
	c->kind = kind;
	c->pool = p;
	c->newer = newer;
	c->t0 = ev_time();
	return c;
}

/* ISO 8601 in UTC with milliseconds: "2025-01-31T12:34:56.789Z". */
static void iso8601(double t, char out[32])
{
	time_t s = (time_t)t;
	struct tm tm;
	int ms = (int)((t - (double)s) * 1000.0);
	if (ms < 0 || ms > 999)
		ms = 0;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", ms);
}

/* A file name as clients send it ("x.csv", or "/mnt/data/x.csv" as
 * Semantic Kernel's Python plugin does) → the name in /mnt/data, or NULL
 * with why: sandboxd's rule (http_path_name_invalid), one path component of
 * 1 to 255 bytes, not `.` or `..`, no control character. The node's path
 * is then built from the slot id and this name, percent-encoded. */
static const char *file_name(const char *given, const char **why)
{
	const char *n = strncmp(given, MNT_DATA, strlen(MNT_DATA)) == 0 ? given + strlen(MNT_DATA) : given;

	*why = http_path_name_invalid(n);
	return *why ? NULL : n;
}

/* The value of `key` in obj, compared case-insensitively (Semantic Kernel
 * .NET and older clients differ in case); -EINVAL when given twice in
 * different cases. */
static int ci_get(json_t *obj, const char *key, json_t **out, struct wp_error *err)
{
	const char *k;
	json_t *v;
	*out = NULL;
	json_object_foreach (obj, k, v) {
		if (strcasecmp(k, key) != 0)
			continue;
		if (*out)
			return wp_error_set(err, EINVAL, "`%s` is given twice (in different cases)", key);
		*out = v;
	}
	if (json_is_null(*out))
		*out = NULL;
	return 0;
}

static int ci_string(json_t *obj, const char *key, const char **out, struct wp_error *err)
{
	json_t *v;
	if (ci_get(obj, key, &v, err) < 0)
		return -EINVAL;
	if (v && !json_is_string(v))
		return wp_error_set(err, EINVAL, "`%s` must be a string", key);
	*out = v ? json_string_value(v) : NULL;
	return 0;
}

/* ---- code execution ---- */

static bool ends_with_newline(const char *s)
{
	size_t n = strlen(s);
	return n == 0 || s[n - 1] == '\n';
}

/* sandboxd's stderr plus what the client must know: the state is gone
 * (sandboxd says so itself, in a line starting with "[warmpool]"; this is
 * for a node that did not), the output was cut. */
static json_t *stderr_text(json_t *r, const char *status, double timeout_s)
{
	const char *err = json_string_value(json_object_get(r, "stderr")) ?: "";
	bool said = strstr(err, "[warmpool]") != NULL;
	bool lost = strcmp(status, "crashed") == 0 || json_is_true(json_object_get(r, "state_lost"));
	const char *sep = ends_with_newline(err) ? "" : "\n";
	cleanup_free char *note = NULL;
	int n = 0;

	if (!said && strcmp(status, "timeout") == 0)
		n = asprintf(&note,
			     "%sThe execution did not finish within %.0f seconds and was stopped. The session's state "
			     "(variables, imports, functions) was lost; the next execution starts a fresh interpreter. "
			     "Files in /mnt/data are kept.\n",
			     sep, timeout_s);
	else if (!said && lost)
		n = asprintf(&note,
			     "%sThe interpreter stopped unexpectedly. The session's state (variables, imports, "
			     "functions) was lost; the next execution starts a fresh interpreter. Files in /mnt/data "
			     "are kept.\n",
			     sep);
	if (n < 0)
		note = NULL;
	bool cut_out = json_is_true(json_object_get(r, "stdout_truncated"));
	bool cut_err = json_is_true(json_object_get(r, "stderr_truncated"));
	cleanup_free char *all = NULL;
	if (asprintf(&all, "%s%s%s%s", err, note ? note : "",
		     cut_out ? "(stdout was too long and was truncated)\n" : "",
		     cut_err ? "(stderr was too long and was truncated)\n" : "") < 0)
		return json_string(err);
	return json_string(all);
}

/* The execution resource of `executions` (2024-10-02-preview on): id,
 * identifier, executionType, status, result. */
static json_t *execution_json(struct aca_op *c, struct lease *l, const char *id, json_t *status, json_t *result)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", id, "identifier", l->ident, "executionType",
			 c->async ? "Asynchronous" : "Synchronous", "status", status, "result", result);
}

/* operation-id and Operation-Location (where GET executions/{id} is) */
static void operation_headers(struct http_request *req, const char *pool, bool prefixed, const char *id,
			      const char *ident, const char *version, char *out, size_t size)
{
	char enc[400], host[256] = "";
	const char *h = http_request_header(req, "host");

	if (http_path_encode(ident, enc, sizeof(enc)) < 0)
		enc[0] = '\0';
	/* a Host a client sent that is not a plain host[:port] is left out: the location is then relative */
	if (h && strlen(h) < sizeof(host) &&
	    strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == strlen(h))
		snprintf(host, sizeof(host), "http://%s", h);
	snprintf(out, size,
		 "operation-id: %s\r\nOperation-Location: %s%s%s/executions/%s?api-version=%s&identifier=%s\r\n", id,
		 host, prefixed ? "/pools/" : "", prefixed ? pool : "", id, version, enc);
}

static void respond_exec(struct aca_op *c, struct lease *l, json_t *r, double timeout_s)
{
	const char *status = json_string_value(json_object_get(r, "status")) ?: "crashed";
	bool ok = strcmp(status, "ok") == 0;
	json_t *out = json_object_get(r, "stdout");
	json_t *res = json_object_get(r, "result");
	json_int_t ms = json_is_integer(json_object_get(r, "wall_ms"))
			    ? json_integer_value(json_object_get(r, "wall_ms"))
			    : (json_int_t)((ev_time() - c->t0) * 1000.0);
	json_t *err = stderr_text(r, status, timeout_s);
	/* the node's "value": the value itself as JSON (NaN as null), an image
	 * object, or "" for no value (a statement, a failure) as Azure answers;
	 * returnJupyterFormatExecutionResult: its text (repr), null for none */
	json_t *val = json_object_get(r, "value");
	json_t *result;
	if (c->jupyter && !json_is_object(val))
		result = json_is_string(res) ? json_incref(res) : json_null();
	else if (val)
		result = json_incref(val);
	else
		result = json_is_string(res) ? json_incref(res) : json_string("");

	if (!json_is_string(out))
		out = json_string("");
	else
		json_incref(out);
	telemetry_interpreter(c->pool->language, status, ev_time() - c->t0);
	l->runs++;
	if (c->kind == ACA_EXECUTE) {
		op_answer(c, 200,
			  json_pack("{s:{s:s, s:o, s:o, s:O, s:o, s:I}}", "properties", "status",
				    ok ? "Success" : "Failure", "stdout", out, "stderr", err, "result", result,
				    "executionResult", result, "executionTimeInMilliseconds", ms),
			  NULL);
	} else {
		const char *id = c->async ? c->async->id : c->op_id;
		op_answer(c, 200,
			  execution_json(c, l, id, json_string(ok ? "Succeeded" : "Failed"),
					 json_pack("{s:o, s:o, s:o, s:I}", "stdout", out, "stderr", err,
						   "executionResult", result, "executionTimeInMilliseconds", ms)),
			  c->headers);
	}
}

/* A non-2xx answer of the node in our error shape (5xx → 502). */
static void relay_error(struct aca_op *c, struct http_result *res, const char *default_code)
{
	cleanup_json json_t *j = json_parse_reply(res->body, res->body_len);
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	op_error(c, res->status >= 500 ? 502 : res->status, code ? code : default_code, msg ? msg : "the node refused",
		 0);
}

/* Bad input changes nothing: a session leased by a request the node then
 * refused is released again (as ops.c does). */
static void end_if_refused_first(struct lease *l, int status)
{
	if (!l->recovered && l->executions == 0 && status >= 400 && status < 500 && status != 404 && status != 410)
		lease_end(l, "its first request was refused");
}

/* Common answers of a node call: transport failure and vanished slot.
 * True when handled (op answered and freed, lease_op_done called). */
static bool node_error_is(const struct http_result *res, const char *code)
{
	cleanup_json json_t *j = res->body ? json_parse_reply(res->body, res->body_len) : NULL;
	const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	return c && strcmp(c, code) == 0;
}

static bool node_failed(struct aca_op *c, struct lease *l, struct http_result *res, bool file_404)
{
	/* `path` names no directory of the slot's /mnt/data: the slot is there */
	if (res->status == 404 && c->dir && node_error_is(res, "DirectoryNotFound")) {
		char m[1200];
		snprintf(m, sizeof(m), "no directory /mnt/data/%s (or a part of it is a link, never followed)", c->dir);
		aca_fail(&c->op, 404, "DirectoryNotFound", m, 0);
		lease_op_done(l);
		return true;
	}
	if (res->status == 0) {
		lease_fail_transport(l, &c->op, res->error);
		lease_op_done(l);
		return true;
	}
	if (res->status == 410 || (res->status == 404 && !file_404)) {
		aca_fail(&c->op, 410, "SessionLost", "the session's sandbox no longer exists; its state is gone", 0);
		lease_end(l, "slot vanished");
		lease_op_done(l);
		return true;
	}
	return false;
}

/* The node's JSON answer to an exec or a run; NULL when the node failed,
 * refused or answered something else: then the client has its error and
 * the op is over (freed, the lease's op done). */
static json_t *node_answer(struct aca_op *c, struct lease *l, struct http_result *res, const char *what)
{
	json_t *r = NULL;
	char m[64];

	if (node_failed(c, l, res, false))
		return NULL;
	if (res->status == 200 && (r = json_parse_reply(res->body, res->body_len)) && json_is_object(r))
		return r;
	json_decref(r);
	if (res->status == 200) {
		snprintf(m, sizeof(m), "the node's answer to %s is not JSON", what);
		op_error(c, 502, "NodeError", m, 0);
	} else {
		relay_error(c, res, "NodeError");
	}
	end_if_refused_first(l, res->status);
	op_free(c);
	lease_op_done(l);
	return NULL;
}

static void packages_done(struct aca_op *c, struct lease *l, json_t *r);
static void packages_shell_done(struct aca_op *c, struct lease *l, json_t *r);

static void exec_done(struct node *n, struct http_result *res, void *data)
{
	struct aca_op *c = data;
	struct lease *l = c->lease;
	cleanup_json json_t *r = NULL;

	if (c->kind == ACA_PACKAGES) {
		r = res->status == 200 ? json_parse_reply(res->body, res->body_len) : NULL;
		packages_done(c, l, r);
		return;
	}
	if (!(r = node_answer(c, l, res, "exec")))
		return;
	respond_exec(c, l, r, (double)json_integer_value(json_object_get(c->exec, "timeout_ms")) / 1000.0);
	op_free(c);
	lease_op_done(l);
}

/* The execution's bound: what was asked, within the pool's `wall` limit and
 * the node's maximum (so Semantic Kernel's default of 100 s works on a node
 * that allows 60). */
static uint64_t exec_timeout_ms(const struct aca_op *c, const struct node *n)
{
	uint64_t ms = c->timeout_s * 1000;
	json_t *pw = json_object_get(c->pool->limits, "wall_ms");
	json_t *nw = json_object_get(json_object_get(n->info, "limits_max"), "wall_ms");
	if (json_is_integer(pw) && json_integer_value(pw) > 0 && (uint64_t)json_integer_value(pw) < ms)
		ms = (uint64_t)json_integer_value(pw);
	if (json_is_integer(nw) && json_integer_value(nw) > 0 && (uint64_t)json_integer_value(nw) < ms)
		ms = (uint64_t)json_integer_value(nw);
	return ms;
}

static void exec_start(struct lease *l, struct lease_op *op)
{
	struct aca_op *c = (struct aca_op *)op;
	char path[64];
	uint64_t ms = exec_timeout_ms(c, l->node);

	c->lease = l;
	c->t0 = ev_time();
	json_object_set_new(c->exec, "timeout_ms", json_integer((json_int_t)ms));
	snprintf(path, sizeof(path), "/v1/slots/%s/exec", l->slot_id);
	if (!node_call_label(l->node, lease_label_once(l), "POST", path, json_incref(c->exec),
			     (double)ms / 1000.0 + EXEC_SLACK_S, exec_done, c)) {
		aca_fail(op, 500, "InternalError", "could not call the node", 0);
		lease_op_done(l);
	}
}

/* ---- shell executions: one run each in the session's slot ---- */

static void shell_send(struct aca_op *c);

static void busy_retry_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct aca_op *c = (struct aca_op *)((char *)w - offsetof(struct aca_op, busy_retry));
	shell_send(c);
}

/* The exit status a shell reports: the code, 128 + a signal, 124 for a
 * command stopped at its timeout (as coreutils' timeout(1)). */
static int shell_exit_status(json_t *t, const char *verdict)
{
	if (strcmp(verdict, "time_limit_exceeded") == 0)
		return 124;
	if (json_is_integer(json_object_get(t, "exit_code")))
		return (int)json_integer_value(json_object_get(t, "exit_code"));
	if (json_is_integer(json_object_get(t, "signal")))
		return 128 + (int)json_integer_value(json_object_get(t, "signal"));
	return 1;
}

static void shell_answer(struct aca_op *c, struct lease *l, json_t *r)
{
	json_t *t = json_array_get(json_object_get(r, "tests"), 0);
	const char *verdict = json_string_value(json_object_get(t, "verdict")) ?: "internal_error";
	const char *msg = json_string_value(json_object_get(t, "message"));
	const char *err = json_string_value(json_object_get(t, "stderr")) ?: "";
	bool clean = strcmp(verdict, "accepted") == 0 || strcmp(verdict, "runtime_error") == 0;
	int code = shell_exit_status(t, verdict);
	json_int_t ms = json_integer_value(json_object_get(t, "wall_ms"));
	cleanup_free char *err_all = NULL;
	char status[16];

	/* what stopped it, in sandboxd's words (the limit and its size) */
	if (asprintf(&err_all, "%s%s%s%s%s%s", err, !clean && msg && *err && err[strlen(err) - 1] != '\n' ? "\n" : "",
		     !clean && msg ? "[warmpool] " : "", !clean && msg ? msg : "", !clean && msg ? "\n" : "",
		     json_is_true(json_object_get(t, "stdout_truncated"))
			 ? "(stdout was longer than outputStreamsMaxLength and was truncated)\n"
			 : "") < 0)
		err_all = NULL;
	telemetry_execution(c->pool->language, verdict, ev_time() - c->t0);
	if (strcmp(verdict, "internal_error") == 0) {
		op_error(c, 502, "NodeError", msg ? msg : "the node failed to run the command", 0);
		return;
	}
	json_t *out = json_object_get(t, "stdout");
	json_t *e = json_string(err_all ? err_all : err);
	snprintf(status, sizeof(status), "%d", code);
	if (c->kind == ACA_EXECUTE) {
		op_answer(c, 200,
			  json_pack("{s:{s:s, s:O, s:o, s:s, s:s, s:i, s:I}}", "properties", "status",
				    code == 0 ? "Success" : "Failure", "stdout", out ? out : json_string(""), "stderr",
				    e, "result", "", "executionResult", "", "exitCode", code,
				    "executionTimeInMilliseconds", ms),
			  NULL);
		return;
	}
	/* synchronous: the exit status as the status, a string (Azure's shell
	 * pools); asynchronous: Succeeded or Failed, so that a client polling
	 * for those stops, with the exit status in result.exitCode */
	json_t *st = c->async ? json_string(code == 0 ? "Succeeded" : "Failed") : json_string(status);
	op_answer(c, 200,
		  execution_json(c, l, c->async ? c->async->id : c->op_id, st,
				 json_pack("{s:O, s:o, s:i, s:I}", "stdout", out ? out : json_string(""), "stderr", e,
					   "exitCode", code, "executionTimeInMilliseconds", ms)),
		  c->headers);
}

static void shell_done(struct node *n, struct http_result *res, void *data)
{
	struct aca_op *c = data;
	struct lease *l = c->lease;
	cleanup_json json_t *r = NULL;

	/* the node's run admission is full: again shortly, backing off */
	if (node_busy(res) && (c->async || !http_request_gone(c->op.req)) && ev_time() - c->t0 < (double)c->timeout_s) {
		lease_run_refused(l);
		c->busy_delay = c->busy_delay ? c->busy_delay * 2 : BUSY_RETRY_FIRST_S;
		if (c->busy_delay > BUSY_RETRY_MAX_S)
			c->busy_delay = BUSY_RETRY_MAX_S;
		ev_timer_init(&c->busy_retry, busy_retry_cb, c->busy_delay, 0);
		ev_timer_start(loop, &c->busy_retry);
		return;
	}
	if (c->kind == ACA_PACKAGES) {
		r = res->status == 200 ? json_parse_reply(res->body, res->body_len) : NULL;
		packages_shell_done(c, l, r);
		return;
	}
	if (!(r = node_answer(c, l, res, "run")))
		return;
	shell_answer(c, l, r);
	op_free(c);
	lease_op_done(l);
}

static void shell_send(struct aca_op *c)
{
	struct lease *l = c->lease;

	if (!lease_run(l, json_incref(c->exec), (double)c->timeout_s + EXEC_SLACK_S, shell_done, c)) {
		aca_fail(&c->op, 500, "InternalError", "could not call the node", 0);
		lease_op_done(l);
	}
}

static void shell_start(struct lease *l, struct lease_op *op)
{
	struct aca_op *c = (struct aca_op *)op;
	uint64_t ms = exec_timeout_ms(c, l->node);
	json_t *ncpu = json_object_get(json_object_get(l->node->info, "limits_max"), "cpu_ms");
	uint64_t cpu = ms;

	if (json_is_integer(ncpu) && json_integer_value(ncpu) > 0 && (uint64_t)json_integer_value(ncpu) < cpu)
		cpu = (uint64_t)json_integer_value(ncpu);
	c->lease = l;
	c->t0 = ev_time();
	json_object_set_new(c->exec, "limits",
			    json_pack("{s:I, s:I}", "wall_ms", (json_int_t)ms, "cpu_ms", (json_int_t)cpu));
	shell_send(c);
}

/* execCommandAndArgs → one shell command: each word single-quoted. */
static char *shell_join(json_t *argv, struct wp_error *err)
{
	size_t i, n = 0;
	json_t *a;
	char *out, *o;

	if (!json_is_array(argv) || json_array_size(argv) < 1 || json_array_size(argv) > SHELL_MAX_ARGS) {
		wp_error_set(
		    err, EINVAL,
		    "`execCommandAndArgs` must be an array of 1 to %d strings (the program, then its arguments)",
		    SHELL_MAX_ARGS);
		return NULL;
	}
	json_array_foreach (argv, i, a) {
		if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
			wp_error_set(err, EINVAL, "`execCommandAndArgs[%zu]` must be a string without NUL", i);
			return NULL;
		}
		n += 4 * json_string_length(a) + 3;
	}
	if (!(out = o = malloc(n + 1))) {
		wp_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	json_array_foreach (argv, i, a) {
		*o++ = '\'';
		for (const char *s = json_string_value(a); *s; s++) {
			if (*s == '\'') {
				memcpy(o, "'\\''", 4);
				o += 4;
			} else {
				*o++ = *s;
			}
		}
		*o++ = '\'';
		*o++ = ' ';
	}
	o[-1] = '\0';
	return out;
}

/* The run of a shell execution: the command framed ahead of its stdin
 * (config/languages/shell.conf reads both). */
static json_t *shell_run(const char *cmd, json_t *stdin_j, uint64_t max_output)
{
	const char *in = stdin_j ? json_string_value(stdin_j) : "";
	size_t in_len = stdin_j ? json_string_length(stdin_j) : 0;
	size_t cmd_len = strlen(cmd);
	char head[32];
	int h = snprintf(head, sizeof(head), "%zu\n", cmd_len);
	cleanup_free char *buf = malloc((size_t)h + cmd_len + in_len + 1);

	if (!buf)
		return NULL;
	memcpy(buf, head, (size_t)h);
	memcpy(buf + h, cmd, cmd_len);
	memcpy(buf + h + cmd_len, in, in_len);
	return json_pack("{s:[{s:s%}], s:b, s:I}", "tests", "stdin", buf, (size_t)h + cmd_len + in_len, "compile", 0,
			 "max_output", (json_int_t)max_output);
}

struct exec_req {
	bool flat, newer, prefixed;
	const char *version;
};

/* code/execute ({"properties": {...}}) and executions (flat). Fields a
 * version does not know are ignored, as Azure does. */
static void execute(struct http_request *req, struct pool *p, const char *ident, const struct exec_req *x)
{
	struct wp_error err = {0};
	const char *input = NULL, *type = NULL, *code = NULL, *shell_cmd = NULL;
	json_t *props = NULL, *tmo = NULL, *argv = NULL, *in = NULL, *maxlen = NULL, *jup = NULL, *jup_old = NULL;
	bool shell = pool_is_shell(p), async = false;
	uint64_t max_s = shell ? SHELL_MAX_TIMEOUT_S : AZURE_MAX_TIMEOUT_S, timeout_s,
		 max_output = SHELL_DEFAULT_OUTPUT;
	cleanup_free char *joined = NULL;

	if (req->body_len > cfg->max_body) {
		http_respond_error(req, 413, "PayloadTooLarge", "JSON bodies are limited to %llu bytes",
				   (unsigned long long)cfg->max_body);
		return;
	}
	cleanup_json json_t *b = json_parse_body(req->body, req->body_len, MAX_JSON_DEPTH, &err);
	if (!b) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	if (x->flat) {
		props = b;
	} else if (ci_get(b, "properties", &props, &err) < 0 || !json_is_object(props)) {
		http_respond_error(req, 400, "BadRequest", "%s",
				   err.msg[0] ? err.msg : "`properties` (an object) is required");
		return;
	}
	if (ci_string(props, "codeInputType", &input, &err) < 0 || ci_string(props, "executionType", &type, &err) < 0 ||
	    ci_string(props, "code", &code, &err) < 0 || ci_get(props, "timeoutInSeconds", &tmo, &err) < 0 ||
	    ci_string(props, "shellCommand", &shell_cmd, &err) < 0 ||
	    ci_get(props, "execCommandAndArgs", &argv, &err) < 0 || ci_get(props, "stdin", &in, &err) < 0 ||
	    ci_get(props, "outputStreamsMaxLength", &maxlen, &err) < 0 ||
	    ci_get(props, "returnJupyterFormatExecutionResult", &jup, &err) < 0 ||
	    ci_get(props, "returnJupyterFormat", &jup_old, &err) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	if (input && strcasecmp(input, "inline") != 0 && strcasecmp(input, "inlinetext") != 0) {
		http_respond_error(req, 400, "BadRequest",
				   "codeInputType `%.40s` is not supported: only `Inline` (or `InlineText`)", input);
		return;
	}
	if (type && strcasecmp(type, "asynchronous") == 0 && x->flat) {
		async = true;
	} else if (type && strcasecmp(type, "synchronous") != 0) {
		http_respond_error(req, 400, "BadRequest", "executionType `%.40s` is not supported%s: `Synchronous`%s",
				   type, x->flat ? "" : " by code/execute",
				   x->flat ? " or `Asynchronous`" : " (POST executions also takes `Asynchronous`)");
		return;
	}
	if (!shell && (shell_cmd || argv)) {
		http_respond_error(req, 400, "BadRequest",
				   "`%s` runs in a shell pool (/pools/shell/executions); pool `%s` runs %s code: send "
				   "`code`",
				   shell_cmd ? "shellCommand" : "execCommandAndArgs", p->name, p->language);
		return;
	}
	if (shell) {
		int given = (code != NULL) + (shell_cmd != NULL) + (argv != NULL);
		if (given != 1) {
			http_respond_error(req, 400, "BadRequest",
					   "a shell pool runs one command: give exactly one of `shellCommand` (a bash "
					   "command line) and `execCommandAndArgs` (the program and its arguments)%s",
					   given ? "" : " (none was given)");
			return;
		}
		if (argv && !(shell_cmd = joined = shell_join(argv, &err))) {
			http_respond_error(req, err.code == ENOMEM ? 500 : 400, "BadRequest", "%s", err.msg);
			return;
		}
		if (!shell_cmd)
			shell_cmd = code;
		if (in && !json_is_string(in)) {
			http_respond_error(req, 400, "BadRequest", "`stdin` must be a string");
			return;
		}
		if (maxlen) {
			if (!json_is_integer(maxlen) || json_integer_value(maxlen) < 1 ||
			    json_integer_value(maxlen) > SHELL_MAX_OUTPUT) {
				http_respond_error(req, 400, "BadRequest",
						   "`outputStreamsMaxLength` must be an integer from 1 to %u (bytes of "
						   "stdout and of stderr returned)",
						   SHELL_MAX_OUTPUT);
				return;
			}
			max_output = (uint64_t)json_integer_value(maxlen);
		}
		/* the pool's `wall` limit, when set, is its maximum */
		json_t *pw = json_object_get(p->limits, "wall_ms");
		if (json_is_integer(pw) && json_integer_value(pw) >= 1000)
			max_s = (uint64_t)json_integer_value(pw) / 1000;
	} else if (!code) {
		http_respond_error(req, 400, "BadRequest", "`code` (a string) is required");
		return;
	}
	if (shell && !argv) {
		json_t *cj = NULL;
		if (ci_get(props, code ? "code" : "shellCommand", &cj, &err) < 0 || !cj ||
		    strlen(json_string_value(cj)) != json_string_length(cj)) {
			http_respond_error(req, 400, "BadRequest", "the command may not hold a NUL byte");
			return;
		}
	}
	timeout_s = shell ? max_s : AZURE_MAX_TIMEOUT_S;
	if (tmo) {
		if (!json_is_integer(tmo) || json_integer_value(tmo) < 1 || (uint64_t)json_integer_value(tmo) > max_s) {
			http_respond_error(
			    req, 400, "BadRequest", "`timeoutInSeconds` must be an integer from 1 to %llu%s",
			    (unsigned long long)max_s,
			    shell && max_s != SHELL_MAX_TIMEOUT_S ? " (this pool's `wall` limit in poold.conf)" : "");
			return;
		}
		timeout_s = (uint64_t)json_integer_value(tmo);
	}
	if (!shell && !p->stateful) {
		http_respond_error(req, 400, "BadRequest",
				   "pool `%s` (%s) has no stateful interpreter: code execution needs a pool with "
				   "`stateful = yes`",
				   p->name, p->language);
		return;
	}
	struct aca_op *c =
	    op_new(req, x->flat ? ACA_EXECUTIONS : ACA_EXECUTE, p, true, x->newer, shell ? shell_start : exec_start);
	if (!c)
		return;
	c->timeout_s = timeout_s;
	c->shell = shell;
	c->jupyter = json_is_true(jup) || json_is_true(jup_old); /* (the spec's examples spell it the latter way) */
	c->exec = shell ? shell_run(shell_cmd, in, max_output) : json_pack("{s:s}", "code", code);
	if (!c->exec) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	if (!x->flat) {
		lease_submit(p, ident, &c->op);
		return;
	}
	/* executions: an id (the client's operation-id, or ours) and where it is */
	const char *given_id = http_request_header(req, "operation-id");
	if (given_id && !aca_exec_id_valid(given_id)) {
		aca_fail(&c->op, 400, "InvalidOperationId",
			 "the operation-id header must be 1 to 64 characters of A-Z a-z 0-9 - _ . (or left out)", 0);
		return;
	}
	if (given_id)
		snprintf(c->op_id, sizeof(c->op_id), "%s", given_id);
	else
		ops_uuid4(c->op_id);
	operation_headers(req, p->name, x->prefixed, c->op_id, ident, x->version, c->headers, sizeof(c->headers));
	if (!async) {
		lease_submit(p, ident, &c->op);
		return;
	}
	cleanup_free char *session = NULL;
	double now = poold_now(loop);
	if (asprintf(&session, "%s/%s", p->name, ident) < 0) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	if (aca_exec_find(session, c->op_id, now)) {
		aca_fail(&c->op, 409, "ExecutionIdInUse",
			 "this session already has an execution with this operation-id: send another id, or none", 0);
		return;
	}
	if (aca_exec_full(session, now)) {
		char m[300];
		snprintf(m, sizeof(m),
			 "this session holds %llu asynchronous executions (running, or finished and kept %llu s): "
			 "wait for one to finish and expire, or run synchronously",
			 (unsigned long long)cfg->async_results_per_session,
			 (unsigned long long)(cfg->async_result_ttl_ms / 1000));
		aca_fail(&c->op, 429, "TooManyExecutions", m, 0);
		return;
	}
	if (aca_exec_memory_full(now)) {
		aca_fail(&c->op, 429, "TooManyExecutions",
			 "the results of asynchronous executions kept by this server fill its 256 MiB: retry once some "
			 "expire, or run synchronously",
			 60);
		return;
	}
	struct aca_exec *e = aca_exec_add(p->name, ident, c->op_id, now);
	if (!e) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	char headers[sizeof(c->headers)];
	snprintf(headers, sizeof(headers), "%s", c->headers);
	c->async = e;
	c->op.req = NULL; /* answered now; the execution's answer goes to its record */
	lease_submit(p, ident, &c->op);
	/* it may have failed already (the session's queue full): say so */
	json_t *body = e->done ? json_incref(e->answer)
			       : json_pack("{s:s, s:s, s:s, s:s}", "id", e->id, "identifier", e->ident, "executionType",
					   "Asynchronous", "status", "Running");
	cleanup_free char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	http_respond(req, 202, "application/json", headers, text, text ? strlen(text) : 0);
}

/* GET executions/{id}: an asynchronous execution, running or kept. */
static void execution_get(struct http_request *req, struct pool *p, const char *ident, const char *id)
{
	cleanup_free char *session = NULL;
	struct aca_exec *e;

	if (asprintf(&session, "%s/%s", p->name, ident) < 0) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		return;
	}
	if (!(e = aca_exec_find(session, id, poold_now(loop)))) {
		http_respond_error(req, 404, "ExecutionNotFound",
				   "no execution `%.64s` in session `%s`: asynchronous results are kept %llu s after "
				   "they finish (synchronous ones are not kept)",
				   id, ident, (unsigned long long)(cfg->async_result_ttl_ms / 1000));
		return;
	}
	if (!e->done)
		http_respond_json(req, 200,
				  json_pack("{s:s, s:s, s:s, s:s}", "id", e->id, "identifier", e->ident,
					    "executionType", "Asynchronous", "status", "Running"));
	else
		http_respond_json(req, 200, json_incref(e->answer));
}

/* ---- files ---- */

static bool file_listed(json_t *f)
{
	const char *t = json_string_value(json_object_get(f, "type"));
	return t && (strcmp(t, "file") == 0 || strcmp(t, "dir") == 0);
}

/* One entry of a list, in the shape of the api-version. */
static json_t *file_json(bool newer, const char *name, json_int_t size, double mtime, const char *type,
			 const char *ctype)
{
	char when[32];
	iso8601(mtime, when);
	if (newer)
		return json_pack("{s:s, s:s, s:I, s:s, s:s}", "name", name, "type", type, "sizeInBytes", size,
				 "lastModifiedAt", when, "contentType", ctype);
	return json_pack("{s:{s:s, s:I, s:s}}", "properties", "filename", name, "size", size, "lastModifiedTime", when);
}

static json_t *node_file_json(bool newer, json_t *f)
{
	const char *type =
	    strcmp(json_string_value(json_object_get(f, "type")) ?: "", "dir") == 0 ? "directory" : "file";
	return file_json(newer, json_string_value(json_object_get(f, "name")) ?: "",
			 json_integer_value(json_object_get(f, "size")), json_number_value(json_object_get(f, "mtime")),
			 type, strcmp(type, "file") == 0 ? "application/octet-stream" : "");
}

/* Lists come in pages of the node's size (docs/api.md): the answer carries
 * Azure's nextLink, this request's own path and query with $skipToken set
 * to the node's cursor (null on the last page; older shapes carry it only
 * when there is a next page, as their clients read only "value"). */
static json_t *list_answer(struct aca_op *c, json_t *value, const char *next)
{
	struct http_request *req = c->op.req;
	cleanup_free char *link = NULL;
	size_t size, o;
	const char *q = req->query;

	if (!next || strspn(next, "0123456789") != strlen(next) || !*next)
		return c->newer ? json_pack("{s:o, s:n}", "value", value, "nextLink")
				: json_pack("{s:o}", "value", value);
	size = strlen(req->raw_path) + strlen(q) + strlen(next) + 32;
	if (!(link = malloc(size)))
		return json_pack("{s:o}", "value", value);
	o = (size_t)snprintf(link, size, "%s?", req->raw_path);
	while (*q) { /* every parameter but a previous $skipToken */
		size_t n = strcspn(q, "&");
		if (n && strncmp(q, "$skipToken=", 11) != 0 && strncmp(q, "%24skipToken=", 13) != 0)
			o += (size_t)snprintf(link + o, size - o, "%.*s&", (int)n, q);
		q += n + (q[n] == '&');
	}
	snprintf(link + o, size - o, "$skipToken=%s", next);
	return json_pack("{s:o, s:s}", "value", value, "nextLink", link);
}

static void files_done(struct node *n, struct http_result *res, void *data)
{
	struct aca_op *c = data;
	struct lease *l = c->lease;
	struct http_request *req = c->op.req;
	bool file_404 = c->kind != ACA_LIST && c->kind != ACA_UPLOAD;

	if (node_failed(c, l, res, file_404))
		return;
	if (res->status == 404) {
		http_respond_error(req, 404, "FileNotFound", "no file `%s` in /mnt/data", c->name);
	} else if (res->status < 200 || res->status >= 300) {
		relay_error(c, res, "NodeError");
		end_if_refused_first(l, res->status);
	} else if (c->kind == ACA_CONTENT) {
		http_respond_owned(req, 200, "application/octet-stream", NULL, steal_pointer(&res->body),
				   res->body_len);
	} else if (c->kind == ACA_DELETE_FILE) {
		http_respond(req, 204, NULL, NULL, NULL, 0);
	} else if (c->kind == ACA_UPLOAD) {
		cleanup_json json_t *r = json_parse_reply(res->body, res->body_len);
		json_int_t size = json_is_integer(json_object_get(r, "size"))
				      ? json_integer_value(json_object_get(r, "size"))
				      : (json_int_t)c->len;
		const char *ctype = c->content_type[0] ? c->content_type : "application/octet-stream";
		json_t *f = file_json(c->newer, c->name, size, ev_time(), "file", ctype);
		http_respond_json(req, 200, c->newer ? f : json_pack("{s:[o]}", "value", f));
	} else {
		cleanup_json json_t *r = json_parse_reply(res->body, res->body_len);
		json_t *files = json_object_get(r, "files"), *f, *out = json_array();
		size_t i;
		json_array_foreach (files, i, f) {
			if (!file_listed(f))
				continue;
			if (c->kind == ACA_LIST) {
				json_t *e = node_file_json(c->newer, f);
				/* relative to `path`, as the spec's recursive example has it */
				if (c->dir_field && e)
					json_object_set_new(
					    e, "directory",
					    json_string(json_string_value(json_object_get(f, "dir")) ?: ""));
				json_array_append_new(out, e);
			} else if (strcmp(json_string_value(json_object_get(f, "name")) ?: "", c->name) == 0)
				json_array_append_new(out, node_file_json(c->newer, f));
		}
		if (c->kind == ACA_LIST)
			http_respond_json(req, 200, list_answer(c, out, json_string_value(json_object_get(r, "next"))));
		else if (json_array_size(out) == 0)
			http_respond_error(req, 404, "FileNotFound", "no file `%s` in /mnt/data", c->name);
		else
			http_respond_json(req, 200, json_incref(json_array_get(out, 0)));
		if (c->kind != ACA_LIST)
			json_decref(out);
	}
	op_free(c);
	lease_op_done(l);
}

static void files_start(struct lease *l, struct lease_op *op)
{
	struct aca_op *c = (struct aca_op *)op;
	char path[4096], enc[800], dir_enc[3 * PATH_DIR_MAX + 1];
	const char *method = "GET";
	struct http_call *call;

	c->lease = l;
	if (c->kind == ACA_LIST && c->recursive) { /* one bounded answer, no pages */
		snprintf(path, sizeof(path), "/v1/slots/%s/files?recursive=1", l->slot_id);
	} else if (c->kind == ACA_LIST) { /* c->name: the page's cursor, digits, or NULL */
		snprintf(path, sizeof(path), "/v1/slots/%s/files%s%s", l->slot_id, c->name ? "?after=" : "",
			 c->name ? c->name : "");
	} else if (c->kind == ACA_META) {			       /* the one entry, never the whole list */
		if (http_path_encode(c->name, enc, sizeof(enc)) < 0) { /* cannot be: names are <= 255 bytes */
			aca_fail(op, 400, "InvalidFileName", "file names are 1 to 255 bytes", 0);
			lease_op_done(l);
			return;
		}
		snprintf(path, sizeof(path), "/v1/slots/%s/files?name=%s", l->slot_id, enc);
	} else {
		if (http_path_encode(c->name, enc, sizeof(enc)) < 0) { /* cannot be: names are <= 255 bytes */
			aca_fail(op, 400, "InvalidFileName", "file names are 1 to 255 bytes", 0);
			lease_op_done(l);
			return;
		}
		snprintf(path, sizeof(path), "/v1/slots/%s/files/%s", l->slot_id, enc);
		method = c->kind == ACA_UPLOAD ? "PUT" : c->kind == ACA_DELETE_FILE ? "DELETE" : "GET";
	}
	if (c->dir && http_path_encode(c->dir, dir_enc, sizeof(dir_enc)) == 0) /* fits: checked at parse */
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "%cdir=%s", strchr(path, '?') ? '&' : '?',
			 dir_enc);
	if (c->kind == ACA_UPLOAD)
		call = node_call_raw(l->node, lease_label_once(l), method, path, "application/octet-stream", c->data,
				     c->len, FILE_CALL_TIMEOUT_S, files_done, c);
	else
		call = node_call_raw(l->node, lease_label_once(l), method, path, NULL, NULL, 0, FILE_CALL_TIMEOUT_S,
				     files_done, c);
	if (!call) {
		aca_fail(op, 500, "InternalError", "could not call the node", 0);
		lease_op_done(l);
	}
}

/* The `path` query parameter of the file routes: /mnt/data or a directory
 * below it ("/mnt/data/a/b", or "a/b" relative to it) → "a/b" in *dir (NULL
 * for /mnt/data itself). Each component is a valid file name (no `..`, no
 * `/` doubled); sandboxd then opens them one by one without following a
 * link. 0, or -EINVAL with why. */
static int path_param(struct http_request *req, char **dir, const char **why)
{
	cleanup_free char *given = http_request_query(req, "path");
	const char *rel;
	char part[256];

	*dir = NULL;
	if (!given)
		return 0;
	rel = given;
	if (strncmp(rel, "/mnt/data", 9) == 0 && (rel[9] == '\0' || rel[9] == '/'))
		rel += 9;
	else if (rel[0] == '/') {
		*why = "path: /mnt/data or a directory below it (\"/mnt/data/reports\", or \"reports\")";
		return -EINVAL;
	}
	while (*rel == '/')
		rel++;
	size_t n = strlen(rel);
	while (n > 0 && rel[n - 1] == '/')
		n--;
	if (n == 0)
		return 0;
	if (n > PATH_DIR_MAX) {
		*why = "path: at most 1024 bytes below /mnt/data";
		return -EINVAL;
	}
	for (const char *s = rel; s < rel + n;) {
		size_t k = strcspn(s, "/");
		if (k > (size_t)(rel + n - s))
			k = (size_t)(rel + n - s);
		if (k == 0 || k >= sizeof(part)) {
			*why = "path: each directory name is 1 to 255 bytes (no empty `//`)";
			return -EINVAL;
		}
		memcpy(part, s, k);
		part[k] = '\0';
		if (http_path_name_invalid(part)) {
			*why = "path: directory names may not be `.` or `..` or hold a control character";
			return -EINVAL;
		}
		s += k + 1;
	}
	if (!(*dir = strndup(rel, n))) {
		*why = "out of memory";
		return -ENOMEM;
	}
	return 0;
}

/* `recursive` of a files list: "true"/"false" as Azure's boolean query
 * parameters (any case); from RECURSIVE_FROM only, since the entries'
 * `directory`, which says where each one is, came with it. 0 or 1, or -1
 * answered. */
static int recursive_param(struct http_request *req, const char *version)
{
	cleanup_free char *given = http_request_query(req, "recursive");

	if (!given || strcasecmp(given, "false") == 0)
		return 0;
	if (strcasecmp(given, "true") != 0) {
		http_respond_error(req, 400, "InvalidRecursive", "recursive: true or false");
		return -1;
	}
	if (strcmp(version, RECURSIVE_FROM) < 0) {
		http_respond_error(req, 400, "InvalidApiVersion",
				   "recursive=true needs api-version " RECURSIVE_FROM
				   " or later (got `%s`): its entries carry the `directory` they are in; or list "
				   "each directory with path=",
				   version);
		return -1;
	}
	return 1;
}

static void file_op(struct http_request *req, struct pool *p, const char *ident, enum aca_kind kind, bool newer,
		    const char *given_name, const char *version)
{
	const char *why = NULL, *name = NULL;
	cleanup_free char *dir = NULL;
	cleanup_free char *skip = kind == ACA_LIST ? http_request_query(req, "$skipToken") : NULL;
	int recursive = kind == ACA_LIST ? recursive_param(req, version) : 0;

	if (recursive < 0)
		return;
	if (path_param(req, &dir, &why) < 0) {
		http_respond_error(req, 400, "InvalidPath", "%s", why);
		return;
	}
	if (recursive && skip) {
		http_respond_error(req, 400, "InvalidSkipToken",
				   "$skipToken: a recursive list is one answer, never paged (leave $skipToken out)");
		return;
	}

	if (given_name && !(name = file_name(given_name, &why))) {
		http_respond_error(req, 400, "InvalidFileName", "%s", why);
		return;
	}
	if (skip && (!*skip || strlen(skip) > 19 || strspn(skip, "0123456789") != strlen(skip))) {
		http_respond_error(
		    req, 400, "InvalidSkipToken",
		    "$skipToken: pass the nextLink of the previous page as is (or leave it out for the first page)");
		return;
	}
	if (skip)
		name = skip; /* a list has no file name: its op carries the cursor there */
	if (!lease_find(p, ident)) {
		/* no session: nothing to list, nothing to read; do not lease a
		 * slot only to say so */
		if (kind == ACA_LIST)
			http_respond_json(req, 200, json_pack("{s:[]}", "value"));
		else
			http_respond_error(req, 404, "FileNotFound", "no file `%s` in /mnt/data (no session `%s`)",
					   name, ident);
		return;
	}
	struct aca_op *c = op_new(req, kind, p, false, newer, files_start);
	if (!c)
		return;
	if (name && !(c->name = strdup(name))) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	c->dir = steal_pointer(&dir);
	c->recursive = recursive == 1;
	c->dir_field = kind == ACA_LIST && strcmp(version, RECURSIVE_FROM) >= 0;
	lease_submit(p, ident, &c->op);
}

static void upload(struct http_request *req, struct pool *p, const char *ident, bool newer)
{
	struct multipart_part part;
	struct wp_error err = {0};
	const char *why = NULL, *name;
	cleanup_free char *dir = NULL;
	int r;

	if (path_param(req, &dir, &why) < 0) {
		http_respond_error(req, 400, "InvalidPath", "%s", why);
		return;
	}
	if (req->body_len > cfg->max_upload) {
		http_respond_error(req, 413, "PayloadTooLarge", "uploads are limited to %llu bytes",
				   (unsigned long long)cfg->max_upload);
		return;
	}
	r = multipart_find(http_request_header(req, "content-type"), req->body, req->body_len, "file", cfg->max_upload,
			   &part, &err);
	if (r == -EFBIG) {
		http_respond_error(req, 413, "PayloadTooLarge", "%s", err.msg);
		return;
	}
	if (r < 0) {
		http_respond_error(req, 400, "BadRequest",
				   "%s (a multipart/form-data body with a `file` field is required)", err.msg);
		return;
	}
	if (!part.filename) {
		multipart_part_free(&part);
		http_respond_error(req, 400, "InvalidFileName", "the `file` part has no filename");
		return;
	}
	if (!(name = file_name(part.filename, &why))) {
		http_respond_error(req, 400, "InvalidFileName", "%s", why);
		multipart_part_free(&part);
		return;
	}
	struct aca_op *c = op_new(req, ACA_UPLOAD, p, true, newer, files_start);
	if (!c) {
		multipart_part_free(&part);
		return;
	}
	c->data = part.data;
	c->len = part.len;
	snprintf(c->content_type, sizeof(c->content_type), "%s", part.content_type);
	c->name = strdup(name);
	c->dir = steal_pointer(&dir);
	multipart_part_free(&part);
	if (!c->name) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	lease_submit(p, ident, &c->op);
}

/* DELETE session: its asynchronous results go with it. */
static void forget_session(struct pool *p, const char *ident)
{
	cleanup_free char *session = NULL;
	if (asprintf(&session, "%s/%s", p->name, ident) >= 0)
		aca_exec_forget(session);
}

/* ---- session management (2025-02-02-preview on) ---- */

/* When the lease ends by itself: idle timeout from its last use, or its
 * maximum lifetime, whichever comes first (0: neither is set). */
static double lease_expiry(const struct lease *l)
{
	const struct pool *p = l->pool;
	double idle = p->idle_timeout_ms ? l->last_used + (double)p->idle_timeout_ms / 1000.0 : 0;
	double life = p->max_lifetime_ms ? l->created + (double)p->max_lifetime_ms / 1000.0 : 0;
	if (!idle || (life && life < idle))
		return life;
	return idle;
}

static json_t *session_json(const struct lease *l)
{
	char created[32], used[32], expire[32], etag[64];
	double exp = lease_expiry(l);

	iso8601(l->created, created);
	iso8601(l->last_used, used);
	if (exp)
		iso8601(exp, expire);
	/* the ETag names the sandbox under the session: its slot */
	snprintf(etag, sizeof(etag), "\"%s\"", l->slot_id[0] ? l->slot_id : "pending");
	return json_pack("{s:s, s:s, s:s, s:s?, s:s}", "identifier", l->ident, "createdAt", created, "lastAccessedAt",
			 used, "expireAt", exp ? expire : NULL, "etag", etag);
}

static bool lease_listed(const struct lease *l, const struct pool *p)
{
	return l->pool == p && (l->state == LEASE_ACTIVE || l->state == LEASE_ACQUIRING);
}

static void session_get(struct http_request *req, struct pool *p, const char *ident)
{
	struct lease *l = lease_find(p, ident);
	if (!l || !lease_listed(l, p)) {
		http_respond_error(req, 404, "SessionNotFound",
				   "no session `%s` in pool `%s`: a session starts with its first execution or upload",
				   ident, p->name);
		return;
	}
	http_respond_json(req, 200, session_json(l));
}

#define SESSIONS_PAGE 100

/* GET listSessions?skip=N: a page of the pool's sessions, nextLink to the
 * next one. */
static void sessions_list(struct http_request *req, struct pool *p)
{
	cleanup_free char *skip_s = http_request_query(req, "skip");
	unsigned long long skip = 0;
	size_t i = 0;
	json_t *arr = json_array();
	bool more = false;

	if (skip_s) {
		char *end = NULL;
		errno = 0;
		skip = strtoull(skip_s, &end, 10);
		if (!*skip_s || *end || errno || skip_s[0] == '-' || skip > 100000000ULL) {
			json_decref(arr);
			http_respond_error(req, 400, "InvalidSkip",
					   "skip: a count of sessions to pass over (0 to 100000000), as in nextLink");
			return;
		}
	}
	for (struct lease *l = lease_first(); l; l = l->next) {
		if (!lease_listed(l, p) || strcmp(l->ident, packages_ident) == 0)
			continue;
		if (i++ < skip)
			continue;
		if (json_array_size(arr) == SESSIONS_PAGE) {
			more = true;
			break;
		}
		json_array_append_new(arr, session_json(l));
	}
	json_t *ans = json_pack("{s:o}", "sessions", arr);
	if (more) {
		cleanup_free char *link = NULL;
		cleanup_free char *version = http_request_query(req, "api-version");
		if (asprintf(&link, "%s?api-version=%s&skip=%llu", req->path, version ? version : "",
			     skip + SESSIONS_PAGE) >= 0)
			json_object_set_new(ans, "nextLink", json_string(link));
	}
	http_respond_json(req, 200, ans);
}

static void stop_start(struct lease *l, struct lease_op *op)
{
	http_respond(op->req, 200, "application/json", NULL, "{}", 2);
	op_free((struct aca_op *)op);
	lease_end(l, "stopped (.management/stopSession)");
	lease_op_done(l);
}

/* DELETE session (204) and POST .management/stopSession (200 {}): the
 * session ends once its running operation is done; its asynchronous
 * results go with it. Idempotent: a session already gone answers the same. */
static void session_end(struct http_request *req, struct pool *p, const char *ident, bool stop)
{
	struct lease *l = lease_find(p, ident);

	forget_session(p, ident);
	if (!stop) {
		if (!l)
			http_respond(req, 204, NULL, NULL, NULL, 0);
		else
			ops_session_release(req, p, ident);
		return;
	}
	if (!l || l->state == LEASE_LOST) {
		if (l)
			lease_end(l, "stopped after loss");
		http_respond(req, 200, "application/json", NULL, "{}", 2);
		return;
	}
	struct aca_op *c = op_new(req, ACA_EXECUTE, p, false, true, stop_start);
	if (c)
		lease_submit(p, ident, &c->op);
}

/* GET metadata's preInstalledPackages: what a session of the pool can
 * use, read once per pool in one of its slots (a session of poold's own,
 * ended after) and kept: {pool name: [{"name", "version"}]}. Each kind of
 * pool reads its own: */
enum packages_kind {
	PACKAGES_NONE,	 /* no sessions (a judged pool): [] */
	PACKAGES_PYTHON, /* the distributions the interpreter can import */
	PACKAGES_NODE,	 /* node's own modules, and the packages it resolves */
	PACKAGES_SHELL,	 /* the commands on the slot's PATH */
};

#define PACKAGES_MAX 5000 /* entries kept per pool */

static enum packages_kind packages_kind(const struct pool *p)
{
	if (pool_is_shell(p))
		return PACKAGES_SHELL;
	if (!p->stateful)
		return PACKAGES_NONE;
	if (strcmp(p->language, "python") == 0 || strncmp(p->language, "python-", 7) == 0)
		return PACKAGES_PYTHON;
	if (strcmp(p->language, "javascript") == 0)
		return PACKAGES_NODE;
	return PACKAGES_NONE;
}

/* A version as a program prints it ("Python 3.11.2", "v18.19.0", "GNU
 * bash, version 5.2.15(1)-release"): its first dotted number. */
static void version_number(const char *line, char *out, size_t size)
{
	out[0] = '\0';
	for (const char *s = line; s && *s; s++) {
		if (*s < '0' || *s > '9' || (s > line && (s[-1] >= '0' && s[-1] <= '9')))
			continue;
		size_t n = strspn(s, "0123456789.");
		if (memchr(s, '.', n)) {
			snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), s);
			return;
		}
	}
}

static void runtime_add(json_t *arr, json_t *lang)
{
	const char *name = json_string_value(json_object_get(lang, "name"));
	const char *ver = json_string_value(json_object_get(lang, "version"));
	char num[64];
	size_t i;
	json_t *r;

	if (!name || !ver || !json_is_true(json_object_get(lang, "available")))
		return;
	json_array_foreach (arr, i, r)
		if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0)
			return;
	version_number(ver, num, sizeof(num));
	json_array_append_new(arr, json_pack("{s:s, s:s}", "name", name, "version", num[0] ? num : ver));
}

/* GET metadata: the pool's runtimes with the versions its nodes report
 * (each language's `version` command, run by sandboxd on its host at
 * start); a shell pool lists every runtime of its nodes, which its
 * commands can start. */
/* The Python packages importable in a pool's slots, read once per pool
 * in one of them (a session of poold's own, ended after) and kept:
 * {pool name: [{"name", "version"}]}. */

#define PACKAGES_CODE                                                                                                  \
	"import importlib.metadata as _m, json as _j\n"                                                                \
	"print(_j.dumps(sorted({(d.metadata['Name'], d.version) for d in _m.distributions() if d.metadata['Name']})))"

/* node's own modules (its version), then the packages in the directories
 * node resolves a bare name from (their package.json): what require()
 * finds in a session. The same [[name, version]] as Python's. */
#define PACKAGES_NODE_CODE                                                                                             \
	"(() => { const M = require('module'), fs = require('fs'), path = require('path'), out = new Map();\n"         \
	"for (const b of M.builtinModules) if (!b.startsWith('_') && !b.includes('/')) out.set(b, "                    \
	"process.versions.node);\n"                                                                                    \
	"const ls = d => { try { return fs.readdirSync(d); } catch (e) { return []; } };\n"                            \
	"for (const d of require.resolve.paths('x') || []) for (const n of ls(d))\n"                                   \
	"  for (const s of n.startsWith('@') ? ls(path.join(d, n)).map(x => n + '/' + x) : [n]) {\n"                   \
	"    if (out.size >= 5000) break;\n"                                                                           \
	"    try { const j = JSON.parse(fs.readFileSync(path.join(d, s, 'package.json'), 'utf8'));\n"                  \
	"      if (typeof j.name === 'string' && !out.has(j.name)) out.set(j.name, String(j.version || '')); }\n"      \
	"    catch (e) {} }\n"                                                                                         \
	"console.log(JSON.stringify([...out].sort((a, b) => a[0] < b[0] ? -1 : 1))); })(); undefined"

/* The executable files of the directories on the slot's PATH, once each,
 * in byte order: one name a line. */
#define PACKAGES_SHELL_CMD                                                                                             \
	"IFS=:; for d in $PATH; do case $d in /*) ;; *) continue ;; esac; for f in \"$d\"/*; do "                      \
	"[ -f \"$f\" ] && [ -x \"$f\" ] && printf '%s\\n' \"${f##*/}\"; done; done | LC_ALL=C sort -u | head -n 5000"

static void metadata_answer(struct http_request *req, struct pool *p, json_t *packages);

/* The read is over: pkgs (stolen) kept for the pool's life when read; a
 * failure (NULL) is tried again by the next request. */
static void packages_keep(struct aca_op *c, struct lease *l, json_t *pkgs)
{
	if (pkgs) {
		json_object_set(packages_cache, c->pool->name, pkgs);
	} else {
		log_warn("metadata: reading the packages of pool %s failed; answered without them", c->pool->name);
		pkgs = json_array();
	}
	metadata_answer(c->op.req, c->pool, pkgs);
	json_decref(pkgs);
	op_free(c);
	lease_end(l, "metadata read");
	lease_op_done(l);
}

/* An interpreter's answer: stdout [[name, version]…] (Python, node). */
static void packages_done(struct aca_op *c, struct lease *l, json_t *r)
{
	cleanup_json json_t *list = NULL;
	json_t *pkgs = json_array(), *pair;
	size_t i;

	if (r && strcmp(json_string_value(json_object_get(r, "status")) ?: "", "ok") == 0)
		list = json_loads(json_string_value(json_object_get(r, "stdout")) ?: "", 0, NULL);
	json_array_foreach (list, i, pair)
		if (json_array_size(pkgs) < PACKAGES_MAX && json_is_string(json_array_get(pair, 0)) &&
		    json_is_string(json_array_get(pair, 1)))
			json_array_append_new(pkgs, json_pack("{s:O, s:O}", "name", json_array_get(pair, 0), "version",
							      json_array_get(pair, 1)));
	if (!json_is_array(list) && pkgs) {
		json_decref(pkgs);
		pkgs = NULL;
	}
	packages_keep(c, l, pkgs);
}

/* A command name as the shell printed it: visible ASCII, 1 to 128 bytes. */
static bool command_name_ok(const char *s, size_t n)
{
	if (n < 1 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* A shell pool's run: one command name a line. The version is left empty:
 * the Debian packages behind the commands are not visible in a slot. */
static void packages_shell_done(struct aca_op *c, struct lease *l, json_t *r)
{
	json_t *t = json_array_get(json_object_get(r, "tests"), 0);
	const char *out = json_string_value(json_object_get(t, "stdout"));
	json_t *pkgs = NULL;

	if (out && strcmp(json_string_value(json_object_get(t, "verdict")) ?: "", "accepted") == 0 &&
	    (pkgs = json_array())) {
		for (const char *s = out; *s && json_array_size(pkgs) < PACKAGES_MAX;) {
			size_t n = strcspn(s, "\n");
			if (command_name_ok(s, n))
				json_array_append_new(pkgs, json_pack("{s:s%, s:s}", "name", s, n, "version", ""));
			s += n + (s[n] == '\n');
		}
	}
	packages_keep(c, l, pkgs);
}

static void metadata_get(struct http_request *req, struct pool *p)
{
	json_t *cached = json_object_get(packages_cache, p->name);
	enum packages_kind kind = packages_kind(p);

	/* not read yet for want of a slot, or being read: answered without them */
	if (cached || kind == PACKAGES_NONE || lease_find(p, packages_ident)) {
		metadata_answer(req, p, cached);
		return;
	}
	struct aca_op *c = op_new(req, ACA_PACKAGES, p, true, true, kind == PACKAGES_SHELL ? shell_start : exec_start);
	if (!c)
		return;
	c->timeout_s = 30;
	c->shell = kind == PACKAGES_SHELL;
	if (kind == PACKAGES_SHELL)
		c->exec = shell_run(PACKAGES_SHELL_CMD, NULL, 1 << 20);
	else
		c->exec = json_pack("{s:s}", "code", kind == PACKAGES_NODE ? PACKAGES_NODE_CODE : PACKAGES_CODE);
	if (!c->exec) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	lease_submit(p, packages_ident, &c->op);
}

static void metadata_answer(struct http_request *req, struct pool *p, json_t *packages)
{
	json_t *runtimes = json_array();
	char when[32];

	for (struct node *n = node_first(); n; n = n->next) {
		size_t i;
		json_t *lang;
		json_array_foreach (json_object_get(n->info, "languages"), i, lang) {
			const char *name = json_string_value(json_object_get(lang, "name"));
			if (name && (pool_is_shell(p) || strcmp(name, p->language) == 0))
				runtime_add(runtimes, lang);
		}
	}
	iso8601(started_at, when);
	http_respond_json(req, 200,
			  json_pack("{s:o, s:O, s:s, s:s}", "runtimes", runtimes, "preInstalledPackages",
				    packages ? packages : json_array(), "createdAt", when, "lastUpdatedAt", when));
}

/* ---- routing ---- */

static int route_of(const struct http_path *p, int base, const char **name)
{
	int n = p->n - base;
	char *const *s = p->seg + base;

	*name = NULL;
	if (n == 2 && strcmp(s[0], "code") == 0 && strcmp(s[1], "execute") == 0)
		return R_CODE_EXECUTE;
	if (n == 1 && strcmp(s[0], "executions") == 0)
		return R_EXECUTIONS;
	if (n == 2 && strcmp(s[0], "executions") == 0) {
		*name = s[1];
		return R_EXECUTION;
	}
	if (n == 1 && strcmp(s[0], "session") == 0)
		return R_SESSION;
	if (n == 1 && strcmp(s[0], "listSessions") == 0)
		return R_LIST_SESSIONS;
	if (n == 1 && strcmp(s[0], "metadata") == 0)
		return R_METADATA;
	if (n == 2 && strcmp(s[0], ".management") == 0 && strcmp(s[1], "stopSession") == 0)
		return R_STOP_SESSION;
	if (n < 1 || strcmp(s[0], "files") != 0)
		return -1;
	if (n == 1)
		return R_FILES;
	if (n == 2) {
		*name = s[1];
		return strcmp(s[1], "upload") == 0 ? R_FILES_UPLOAD : R_FILE;
	}
	if (n == 3 && strcmp(s[1], "content") == 0) {
		*name = s[2];
		return R_CONTENT;
	}
	if (n == 3 && strcmp(s[2], "content") == 0) {
		*name = s[1];
		return R_CONTENT_NEWER;
	}
	return -2; /* under files/ but no route: a name with `/` */
}

static bool method_is(const struct http_request *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

/* Is the method one of `allow` ("GET, DELETE")? */
static bool method_allowed(const struct http_request *req, const char *allow)
{
	size_t n = strlen(req->method);

	for (const char *a = allow; *a; a += strspn(a, ", "))
		if (strncmp(a, req->method, n) == 0 && (a[n] == ',' || a[n] == '\0'))
			return true;
		else
			a += strcspn(a, ",");
	return false;
}

bool aca_route(struct http_request *req, const struct http_path *p)
{
	bool prefixed = p->n >= 2 && http_path_is(p, 0, "pools");
	const char *pname = prefixed ? p->seg[1] : cfg->default_pool, *name;
	int route = route_of(p, prefixed ? 2 : 0, &name);
	struct pool *pool;

	if (route == -1 && !prefixed)
		return false;
	if (route < 0) {
		req->user = (void *)(prefixed ? "/pools/{name}/other" : "/files/other");
		if (route == -2)
			http_respond_error(
			    req, 400, "InvalidFileName",
			    "file names are one path component (no `/`): files live directly in /mnt/data");
		else
			http_respond_error(req, 404, "NotFound", "no route %s %s", req->method, req->path);
		return true;
	}
	req->user = (void *)labels[route][prefixed];

	/* the method, before anything else is looked at */
	const char *allow;
	switch (route) {
	case R_CODE_EXECUTE:
	case R_EXECUTIONS:
	case R_FILES_UPLOAD:
	case R_STOP_SESSION: allow = "POST"; break;
	case R_SESSION: allow = "GET, DELETE"; break;
	case R_FILES: allow = "GET, POST"; break;
	case R_FILE: allow = "GET, DELETE"; break;
	default: allow = "GET"; break;
	}
	if (!method_allowed(req, allow)) {
		/* `files/upload` with another method is the file named "upload" */
		if (route == R_FILES_UPLOAD && (method_is(req, "GET") || method_is(req, "DELETE"))) {
			route = R_FILE;
			req->user = (void *)labels[route][prefixed];
		} else {
			api_not_allowed(req, allow);
			return true;
		}
	}
	if (!(pool = pool_find(pname))) {
		char echo[API_ECHO_SIZE];
		api_echo(pname, echo, sizeof(echo));
		http_respond_error(req, 404, "PoolNotFound", "no pool `%s`", echo);
		return true;
	}

	cleanup_free char *version = http_request_query(req, "api-version");
	size_t v;
	for (v = 0; version && api_versions[v]; v++)
		if (strcmp(version, api_versions[v]) == 0)
			break;
	if (!version || !api_versions[v]) {
		http_respond_error(req, 400, "InvalidApiVersion", "%s%.40s%s; supported: " API_VERSION_LIST,
				   version ? "unsupported api-version `"
					   : "the api-version query parameter is required",
				   version ? version : "", version ? "`" : "");
		return true;
	}
	bool newer = strcmp(version, NEWER_SHAPES_FROM) >= 0;
	if ((route == R_EXECUTIONS || route == R_EXECUTION) && !newer) {
		http_respond_error(req, 400, "InvalidApiVersion",
				   "POST executions needs api-version " NEWER_SHAPES_FROM " or later (got `%s`); "
				   "use POST code/execute with this one",
				   version);
		return true;
	}

	bool mgmt = route == R_LIST_SESSIONS || route == R_METADATA || route == R_STOP_SESSION ||
		    (route == R_SESSION && method_is(req, "GET"));
	if (mgmt && strcmp(version, SESSIONS_FROM) < 0) {
		http_respond_error(req, 400, "InvalidApiVersion",
				   "%s %s needs api-version " SESSIONS_FROM " or later (got `%s`)", req->method,
				   labels[route][0] + 1, version);
		return true;
	}
	if (route == R_LIST_SESSIONS) {
		sessions_list(req, pool);
		return true;
	}
	if (route == R_METADATA) {
		metadata_get(req, pool);
		return true;
	}

	cleanup_free char *ident = http_request_query(req, "identifier");
	if (!ident || !lease_ident_valid(ident)) {
		char echo[API_ECHO_SIZE];
		api_echo(ident ? ident : "", echo, sizeof(echo));
		if (ident)
			http_respond_error(req, 400, "InvalidIdentifier",
					   "identifier `%s`: identifiers are 1 to 128 visible ASCII characters", echo);
		else
			http_respond_error(
			    req, 400, "InvalidIdentifier",
			    "the identifier query parameter is required (1 to 128 visible ASCII characters)");
		return true;
	}
	if (session_rate_ok && !session_rate_ok(req, ident))
		return true;

	switch (route) {
	case R_CODE_EXECUTE:
	case R_EXECUTIONS:
		execute(req, pool, ident,
			&(struct exec_req){
			    .flat = route == R_EXECUTIONS, .newer = newer, .prefixed = prefixed, .version = version});
		break;
	case R_EXECUTION: execution_get(req, pool, ident, name); break;
	case R_SESSION:
		if (method_is(req, "GET"))
			session_get(req, pool, ident);
		else
			session_end(req, pool, ident, false);
		break;
	case R_STOP_SESSION: session_end(req, pool, ident, true); break;
	case R_FILES_UPLOAD: upload(req, pool, ident, newer); break;
	case R_FILES:
		if (method_is(req, "POST"))
			upload(req, pool, ident, newer);
		else
			file_op(req, pool, ident, ACA_LIST, newer, NULL, version);
		break;
	case R_FILE:
		file_op(req, pool, ident, method_is(req, "GET") ? ACA_META : ACA_DELETE_FILE, newer, name, version);
		break;
	default: file_op(req, pool, ident, ACA_CONTENT, newer, name, version); break;
	}
	return true;
}
