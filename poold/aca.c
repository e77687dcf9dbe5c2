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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "cleanup.h"
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

static const char *const api_versions[] = {"2024-02-02-preview", "2024-08-02-preview", "2024-10-02-preview",
					   "2025-02-02-preview", "2025-10-02-preview", NULL};
#define API_VERSION_LIST                                                                                               \
	"2024-02-02-preview, 2024-08-02-preview, 2024-10-02-preview, 2025-02-02-preview, 2025-10-02-preview"
#define NEWER_SHAPES_FROM "2024-10-02-preview"

enum aca_kind { ACA_EXECUTE, ACA_EXECUTIONS, ACA_UPLOAD, ACA_LIST, ACA_META, ACA_CONTENT, ACA_DELETE_FILE };

/* One route: path segments after the optional /pools/{name} prefix. */
enum aca_route_id {
	R_CODE_EXECUTE,	 /* POST code/execute */
	R_EXECUTIONS,	 /* POST executions */
	R_SESSION,	 /* DELETE session */
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
    [R_SESSION] = {"/session", "/pools/{name}/session"},
    [R_FILES] = {"/files", "/pools/{name}/files"},
    [R_FILES_UPLOAD] = {"/files/upload", "/pools/{name}/files/upload"},
    [R_FILE] = {"/files/{name}", "/pools/{name}/files/{name}"},
    [R_CONTENT] = {"/files/content/{name}", "/pools/{name}/files/content/{name}"},
    [R_CONTENT_NEWER] = {"/files/{name}/content", "/pools/{name}/files/{name}/content"},
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
	const char *data;   /* upload content, inside op.req->body */
	size_t len;
	char content_type[128];
	double t0;
};

static const struct psettings *cfg;
static bool (*session_rate_ok)(struct http_request *req, const char *ident);

void aca_init(const struct psettings *st, bool (*rate_ok)(struct http_request *req, const char *ident))
{
	cfg = st;
	session_rate_ok = rate_ok;
}

/* ---- small helpers ---- */

static void op_free(struct aca_op *c)
{
	json_decref(c->exec);
	free(c->name);
	free(c);
}

static void aca_fail(struct lease_op *op, int status, const char *code, const char *message, double retry_after)
{
	char hdr[64] = "";
	if (retry_after > 0)
		snprintf(hdr, sizeof(hdr), "Retry-After: %.0f\r\n", retry_after < 1 ? 1 : retry_after);
	cleanup_json json_t *b = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
	cleanup_free char *text = json_dumps(b, JSON_COMPACT);
	http_respond(op->req, status, "application/json", hdr[0] ? hdr : NULL, text, text ? strlen(text) : 0);
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
	telemetry_execution(c->pool->language, status, ev_time() - c->t0);
	if (c->kind == ACA_EXECUTE) {
		http_respond_json(c->op.req, 200,
				  json_pack("{s:{s:s, s:o, s:o, s:O, s:o, s:I}}", "properties", "status",
					    ok ? "Success" : "Failure", "stdout", out, "stderr", err, "result", result,
					    "executionResult", result, "executionTimeInMilliseconds", ms));
	} else {
		char id[37];
		ops_uuid4(id);
		http_respond_json(c->op.req, 200,
				  json_pack("{s:s, s:s, s:s, s:s, s:{s:o, s:o, s:o, s:I}}", "id", id, "identifier",
					    l->ident, "executionType", "Synchronous", "status",
					    ok ? "Succeeded" : "Failed", "result", "stdout", out, "stderr", err,
					    "executionResult", result, "executionTimeInMilliseconds", ms));
	}
}

/* A non-2xx answer of the node in our error shape (5xx → 502). */
static void relay_error(struct aca_op *c, struct http_result *res, const char *default_code)
{
	cleanup_json json_t *j = json_parse_reply(res->body, res->body_len);
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	http_respond_error(c->op.req, res->status >= 500 ? 502 : res->status, code ? code : default_code, "%s",
			   msg ? msg : "the node refused");
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
static bool node_failed(struct aca_op *c, struct lease *l, struct http_result *res, bool file_404)
{
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

static void exec_done(struct node *n, struct http_result *res, void *data)
{
	struct aca_op *c = data;
	struct lease *l = c->lease;
	cleanup_json json_t *r = NULL;

	if (node_failed(c, l, res, false))
		return;
	if (res->status != 200 || !(r = json_parse_reply(res->body, res->body_len)) || !json_is_object(r)) {
		if (res->status == 200)
			http_respond_error(c->op.req, 502, "NodeError", "the node's answer to exec is not JSON");
		else
			relay_error(c, res, "NodeError");
		end_if_refused_first(l, res->status);
		op_free(c);
		lease_op_done(l);
		return;
	}
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

/* code/execute ({"properties": {...}}) and executions (flat). */
static void execute(struct http_request *req, struct pool *p, const char *ident, bool flat, bool newer)
{
	struct wp_error err = {0};
	const char *input = NULL, *type = NULL, *code = NULL;
	json_t *props = NULL, *tmo = NULL, *jup = NULL, *jup_old = NULL;
	uint64_t timeout_s = AZURE_MAX_TIMEOUT_S;

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
	if (flat) {
		props = b;
	} else if (ci_get(b, "properties", &props, &err) < 0 || !json_is_object(props)) {
		http_respond_error(req, 400, "BadRequest", "%s",
				   err.msg[0] ? err.msg : "`properties` (an object) is required");
		return;
	}
	if (ci_string(props, "codeInputType", &input, &err) < 0 || ci_string(props, "executionType", &type, &err) < 0 ||
	    ci_string(props, "code", &code, &err) < 0 || ci_get(props, "timeoutInSeconds", &tmo, &err) < 0 ||
	    ci_get(props, "returnJupyterFormatExecutionResult", &jup, &err) < 0 ||
	    ci_get(props, "returnJupyterFormat", &jup_old, &err) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	if (input && strcasecmp(input, "inline") != 0) {
		http_respond_error(req, 400, "BadRequest", "codeInputType `%.40s` is not supported: only `inline`",
				   input);
		return;
	}
	if (type && strcasecmp(type, "synchronous") != 0) {
		http_respond_error(req, 400, "BadRequest", "executionType `%.40s` is not supported: only `synchronous`",
				   type);
		return;
	}
	if (!code) {
		http_respond_error(req, 400, "BadRequest", "`code` (a string) is required");
		return;
	}
	if (tmo) {
		if (!json_is_integer(tmo) || json_integer_value(tmo) < 1 ||
		    json_integer_value(tmo) > AZURE_MAX_TIMEOUT_S) {
			http_respond_error(req, 400, "BadRequest", "`timeoutInSeconds` must be an integer from 1 to %d",
					   AZURE_MAX_TIMEOUT_S);
			return;
		}
		timeout_s = (uint64_t)json_integer_value(tmo);
	}
	if (!p->stateful) {
		http_respond_error(req, 400, "BadRequest",
				   "pool `%s` (%s) has no stateful interpreter: code execution needs a pool with "
				   "`stateful = yes`",
				   p->name, p->language);
		return;
	}
	struct aca_op *c = op_new(req, flat ? ACA_EXECUTIONS : ACA_EXECUTE, p, true, newer, exec_start);
	if (!c)
		return;
	c->timeout_s = timeout_s;
	c->jupyter = json_is_true(jup) || json_is_true(jup_old); /* (the spec's examples spell it the latter way) */
	if (!(c->exec = json_pack("{s:s}", "code", code))) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	lease_submit(p, ident, &c->op);
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
			if (c->kind == ACA_LIST)
				json_array_append_new(out, node_file_json(c->newer, f));
			else if (strcmp(json_string_value(json_object_get(f, "name")) ?: "", c->name) == 0)
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
	char path[1024], enc[800];
	const char *method = "GET";
	struct http_call *call;

	c->lease = l;
	if (c->kind == ACA_LIST) { /* c->name: the page's cursor, digits, or NULL */
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

static void file_op(struct http_request *req, struct pool *p, const char *ident, enum aca_kind kind, bool newer,
		    const char *given_name)
{
	const char *why = NULL, *name = NULL;

	cleanup_free char *skip = kind == ACA_LIST ? http_request_query(req, "$skipToken") : NULL;

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
	lease_submit(p, ident, &c->op);
}

static void upload(struct http_request *req, struct pool *p, const char *ident, bool newer)
{
	struct multipart_part part;
	struct wp_error err = {0};
	const char *why = NULL, *name;
	int r;

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
	multipart_part_free(&part);
	if (!c->name) {
		aca_fail(&c->op, 500, "InternalError", "out of memory", 0);
		return;
	}
	lease_submit(p, ident, &c->op);
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
	if (n == 1 && strcmp(s[0], "session") == 0)
		return R_SESSION;
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
	bool allowed = false;
	switch (route) {
	case R_CODE_EXECUTE:
	case R_EXECUTIONS:
	case R_FILES_UPLOAD: allowed = method_is(req, "POST"); break;
	case R_SESSION: allowed = method_is(req, "DELETE"); break;
	case R_FILES: allowed = method_is(req, "GET") || method_is(req, "POST"); break;
	case R_FILE: allowed = method_is(req, "GET") || method_is(req, "DELETE"); break;
	default: allowed = method_is(req, "GET"); break;
	}
	if (!allowed) {
		/* `files/upload` with another method is the file named "upload" */
		if (route == R_FILES_UPLOAD && (method_is(req, "GET") || method_is(req, "DELETE"))) {
			route = R_FILE;
			req->user = (void *)labels[route][prefixed];
		} else {
			http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", req->method);
			return true;
		}
	}
	if (!(pool = pool_find(pname))) {
		http_respond_error(req, 404, "PoolNotFound", "no pool `%s`", pname);
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
	if (route == R_EXECUTIONS && !newer) {
		http_respond_error(req, 400, "InvalidApiVersion",
				   "POST executions needs api-version " NEWER_SHAPES_FROM " or later (got `%s`); "
				   "use POST code/execute with this one",
				   version);
		return true;
	}

	cleanup_free char *ident = http_request_query(req, "identifier");
	if (!ident || !lease_ident_valid(ident)) {
		http_respond_error(req, 400, "InvalidIdentifier",
				   "%s: identifiers are 1 to 128 visible ASCII characters",
				   ident ? "invalid identifier" : "the identifier query parameter is required");
		return true;
	}
	if (session_rate_ok && !session_rate_ok(req, ident))
		return true;

	switch (route) {
	case R_CODE_EXECUTE: execute(req, pool, ident, false, newer); break;
	case R_EXECUTIONS: execute(req, pool, ident, true, newer); break;
	case R_SESSION:
		if (!lease_find(pool, ident))
			http_respond(req, 204, NULL, NULL, NULL, 0); /* already gone: DELETE is idempotent */
		else
			ops_session_release(req, pool, ident);
		break;
	case R_FILES_UPLOAD: upload(req, pool, ident, newer); break;
	case R_FILES:
		if (method_is(req, "POST"))
			upload(req, pool, ident, newer);
		else
			file_op(req, pool, ident, ACA_LIST, newer, NULL);
		break;
	case R_FILE: file_op(req, pool, ident, method_is(req, "GET") ? ACA_META : ACA_DELETE_FILE, newer, name); break;
	default: file_op(req, pool, ident, ACA_CONTENT, newer, name); break;
	}
	return true;
}
