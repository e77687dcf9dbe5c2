/* api.c — poold's routes: authentication and rate limits first, then
 * parsing and validation, then the work in ops.c, pool.c and lease.c. Every
 * answer is counted in warmpool_http_requests_total by route pattern. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aca.h"
#include "cleanup.h"
#include "http_message.h"
#include "http_path.h"
#include "json.h"
#include "lease.h"
#include "log.h"
#include "node.h"
#include "ops.h"
#include "pool.h"
#include "ratelimit.h"
#include "telemetry.h"

#define MAX_JSON_DEPTH 32

static struct ev_loop *loop;
static const struct psettings *cfg;
static struct metrics *reg;
static struct ratelimit *rl_session, *rl_client;
static bool stopping;

static bool session_rate(struct http_request *req, const char *ident);

void api_init(struct ev_loop *l, const struct psettings *st, struct metrics *m)
{
	loop = l;
	cfg = st;
	reg = m;
	rl_session = ratelimit_new(st->session_rate, st->session_burst, 100000);
	rl_client = ratelimit_new(st->client_rate, st->client_burst, 100000);
	aca_init(l, st, session_rate);
}

void api_reload(void)
{
	ratelimit_set(rl_session, cfg->session_rate, cfg->session_burst);
	ratelimit_set(rl_client, cfg->client_rate, cfg->client_burst);
}

void api_stop(void)
{
	stopping = true;
}

void api_echo(const char *in, char *out, size_t size)
{
	size_t o = 0, i = 0;

	if (!size)
		return;
	for (; in && in[i] && i < API_ECHO_MAX && o + 5 < size; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", ch);
	}
	if (in && in[i] && o + 4 < size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o < size ? o : size - 1] = '\0';
}

void api_not_allowed(struct http_request *req, const char *allow)
{
	char hdr[96], msg[200];
	size_t len = 0;

	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
	snprintf(msg, sizeof(msg), "%.16s is not allowed on %s; it takes %s", req->method,
		 req->user ? (const char *)req->user : "this route", allow);
	char *body = http_error_body("MethodNotAllowed", msg, &len);
	http_respond_owned(req, 405, "application/json", hdr, body, len);
}

void api_languages(char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (struct pool *p = pool_first(); p && o < size; p = p->next) {
		bool seen = false;
		for (struct pool *q = pool_first(); q != p; q = q->next)
			seen |= strcmp(q->language, p->language) == 0;
		if (!seen)
			o += (size_t)snprintf(out + o, size - o, "%s%s", o ? ", " : "", p->language);
	}
}

static json_t *pool_json_base(const struct pool *p);

static json_t *pool_json(const struct pool *p)
{
	json_t *j = pool_json_base(p);
	/* judged submissions (/execute) of the pool: in the fair queue, running */
	json_object_set_new(j, "execute_queued", json_integer((json_int_t)p->n_judge_queued));
	json_object_set_new(j, "execute_running", json_integer((json_int_t)p->n_judge_running));
	return j;
}

static json_t *pool_json_base(const struct pool *p)
{
	/* how warm follows the nodes: "auto", "N%" (of their capacity), or
	 * null for a number set in poold.conf or by PATCH */
	char rule[8] = "auto";
	if (p->warm_pct)
		snprintf(rule, sizeof(rule), "%u%%", p->warm_pct);
	return json_pack("{s:s, s:s, s:b, s:I, s:s?, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:s?}", "name",
			 p->name, "language", p->language, "stateful", p->stateful, "warm", (json_int_t)p->warm,
			 "warm_rule", p->warm_auto ? rule : NULL, "max", (json_int_t)p->max, "idle_timeout_s",
			 (json_int_t)(p->idle_timeout_ms / 1000), "max_lifetime_s",
			 (json_int_t)(p->max_lifetime_ms / 1000), "draining", p->draining, "ready",
			 (json_int_t)p->n_ready, "creating", (json_int_t)(p->n_creating + p->n_creating_direct),
			 "leased", (json_int_t)p->n_leased, "queued", (json_int_t)p->n_waiting, "create_failures",
			 (json_int_t)p->create_failures, "last_error", p->last_error[0] ? p->last_error : NULL);
}

static json_t *node_json(const struct node *n)
{
	return json_pack("{s:s, s:s, s:b, s:I, s:I, s:f, s:O?}", "name", n->name, "url", n->url, "up", n->up,
			 "capacity", (json_int_t)n->capacity, "slots", (json_int_t)n->slots, "last_ok", n->last_ok,
			 "info", n->info);
}

static void patch_pool(struct http_request *req, struct pool *p, json_t *b)
{
	static const char *const keys[] = {"warm", "max", "idle_timeout_s", "max_lifetime_s", NULL};
	struct wp_error err = {0};
	uint64_t warm = p->warm, max = p->max, idle = p->idle_timeout_ms / 1000, life = p->max_lifetime_ms / 1000;

	if (json_check_keys(b, keys, &err) < 0 || json_get_uint(b, "warm", false, 0, 100000, &warm, &err) < 0 ||
	    json_get_uint(b, "max", false, 1, 100000, &max, &err) < 0 ||
	    json_get_uint(b, "idle_timeout_s", false, 1, 7 * 86400, &idle, &err) < 0 ||
	    json_get_uint(b, "max_lifetime_s", false, 1, 30 * 86400, &life, &err) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	/* a key given as a number replaces its auto (or N%); one not given
	 * keeps its rule (an auto warm stays within max by itself) */
	bool warm_auto = p->warm_auto && !json_object_get(b, "warm");
	bool max_auto = p->max_auto && !json_object_get(b, "max");
	unsigned warm_pct = p->warm_pct;
	if (!warm_auto && warm > max) {
		http_respond_error(req, 400, "BadRequest", "warm (%llu) must not exceed max (%llu)",
				   (unsigned long long)warm, (unsigned long long)max);
		return;
	}
	pool_set_timeouts(p, idle * 1000, life * 1000);
	pool_resize(p, warm, max);
	if (warm_auto || max_auto)
		pool_set_auto(p, warm_auto, warm_pct, max_auto);
	char warning[400];
	json_t *ans = pool_json(p);
	if (pool_warm_warning(p, warning, sizeof(warning)))
		json_object_set_new(ans, "warning", json_string(warning));
	http_respond_json(req, 200, ans);
}

static json_t *languages_json(void)
{
	json_t *out = json_array();
	for (struct pool *p = pool_first(); p; p = p->next) {
		json_t *version = NULL;
		for (struct node *n = node_first(); n && !version; n = n->next) {
			size_t i;
			json_t *l;
			json_array_foreach (json_object_get(n->info, "languages"), i, l)
				if (strcmp(json_string_value(json_object_get(l, "name")) ?: "", p->language) == 0)
					version = json_object_get(l, "version");
		}
		json_array_append_new(out, json_pack("{s:s, s:s, s:O?, s:b}", "language", p->language, "pool", p->name,
						     "version", version, "available", version != NULL));
	}
	return out;
}

static bool ready(char *why, size_t len)
{
	if (!nodes_up()) {
		snprintf(why, len, "no sandboxd node is up");
		return false;
	}
	for (struct pool *p = pool_first(); p; p = p->next)
		if (!p->draining && p->warm > 0 && p->n_ready == 0 && p->n_leased < p->max && !p->n_running) {
			snprintf(why, len, "pool %s has no ready slot yet%s%s", p->name, p->last_error[0] ? ": " : "",
				 p->last_error);
			return false;
		}
	return true;
}

/* Body → JSON object, or a 400 already answered. */
static json_t *body_json(struct http_request *req)
{
	struct wp_error err = {0};
	if (req->body_len > cfg->max_body) { /* the server's own bound is max(max_body, max_upload) */
		http_respond_error(req, 413, "PayloadTooLarge", "JSON bodies are limited to %llu bytes",
				   (unsigned long long)cfg->max_body);
		return NULL;
	}
	json_t *j = json_parse_body(req->body, req->body_len, MAX_JSON_DEPTH, &err);
	if (!j)
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
	return j;
}

/* ?pool=NAME, else the default pool; answers 404 itself. */
static struct pool *pool_of(struct http_request *req)
{
	cleanup_free char *name = http_request_query(req, "pool");
	struct pool *p = pool_find(name ? name : cfg->default_pool);
	char echo[API_ECHO_SIZE];
	if (!p) {
		api_echo(name ? name : cfg->default_pool, echo, sizeof(echo));
		http_respond_error(req, 404, "PoolNotFound", "no pool `%s`", echo);
	}
	return p;
}

static bool rate_ok(struct http_request *req, struct ratelimit *rl, const char *key)
{
	double retry = 0;
	if (ratelimit_take(rl, key, ev_now(loop), &retry))
		return true;
	telemetry_refused("", "TooManyRequests");
	http_respond_error_retry(req, 429, retry, "TooManyRequests", "rate limit for %s",
				 rl == rl_session ? "this session" : "this client");
	return false;
}

static bool session_rate(struct http_request *req, const char *ident)
{
	return rate_ok(req, rl_session, ident);
}

static void sessions_route(struct http_request *req, struct http_path *p)
{
	const char *m = req->method;
	struct pool *pool;
	json_t *b;

	if (p->n == 2) {
		req->user = (void *)("/v1/sessions");
		if (strcmp(m, "GET") != 0) {
			api_not_allowed(req, "GET");
			return;
		}
		cleanup_free char *pname = http_request_query(req, "pool");
		json_t *arr = json_array();
		for (struct lease *l = lease_first(); l; l = l->next)
			if (!pname || strcmp(pname, l->pool->name) == 0)
				json_array_append_new(arr, lease_to_json(l));
		http_respond_json(req, 200, json_pack("{s:o}", "sessions", arr));
		return;
	}
	const char *ident = p->seg[2];
	if (!lease_ident_valid(ident)) {
		char echo[API_ECHO_SIZE];
		req->user = (void *)("/v1/sessions/{id}");
		api_echo(ident, echo, sizeof(echo));
		http_respond_error(req, 400, "InvalidIdentifier",
				   "session identifier `%s`: identifiers are 1 to 128 visible ASCII characters", echo);
		return;
	}
	if (!(pool = pool_of(req)))
		return;
	if (!rate_ok(req, rl_session, ident))
		return;
	if (p->n == 3) {
		req->user = (void *)("/v1/sessions/{id}");
		if (strcmp(m, "GET") == 0) {
			struct lease *l = lease_find(pool, ident);
			if (!l)
				http_respond_error(req, 404, "SessionNotFound", "no session `%s` in pool %s", ident,
						   pool->name);
			else
				http_respond_json(req, 200, lease_to_json(l));
		} else if (strcmp(m, "DELETE") == 0) {
			ops_session_release(req, pool, ident);
		} else {
			api_not_allowed(req, "GET, DELETE");
		}
		return;
	}
	if (p->n == 4 && http_path_is(p, 3, "run")) {
		req->user = (void *)("/v1/sessions/{id}/run");
		if (strcmp(m, "POST") != 0)
			api_not_allowed(req, "POST");
		else if ((b = body_json(req)))
			ops_session_run(req, pool, ident, b);
		return;
	}
	if ((p->n == 4 || p->n == 5) && http_path_is(p, 3, "files")) {
		/* the node's path is built from the slot id and this decoded,
		 * checked name (ops.c), never from the client's path */
		const char *name = p->n == 5 ? p->seg[4] : NULL, *why;
		req->user = (void *)(name ? "/v1/sessions/{id}/files/{name}" : "/v1/sessions/{id}/files");
		if (name && (why = http_path_name_invalid(name))) {
			http_respond_error(req, 400, "InvalidFileName", "%s", why);
			return;
		}
		if (name ? strcmp(m, "GET") != 0 && strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0
			 : strcmp(m, "GET") != 0) {
			api_not_allowed(req, name ? "GET, PUT, DELETE" : "GET");
			return;
		}
		ops_session_files(req, pool, ident, name, strcmp(m, "PUT") == 0);
		return;
	}
	req->user = (void *)("other");
	http_respond_error(req, 404, "NotFound", "no route %s %s", m, req->path);
}

static void pools_route(struct http_request *req, struct http_path *p)
{
	const char *m = req->method;
	struct pool *pool;
	json_t *b;

	if (p->n == 2) {
		req->user = (void *)("/v1/pools");
		if (strcmp(m, "GET") != 0) {
			api_not_allowed(req, "GET");
			return;
		}
		json_t *arr = json_array();
		size_t running = 0;
		for (struct pool *q = pool_first(); q; q = q->next) {
			json_array_append_new(arr, pool_json(q));
			running += q->n_judge_running;
		}
		/* the /execute queue as a whole, for poolctl top: a burst being worked off */
		json_t *ex = json_pack("{s:I, s:I, s:f}", "queued", (json_int_t)ops_queue_length(), "running",
				       (json_int_t)running, "drain_rate", ops_queue_drain_rate());
		http_respond_json(req, 200, json_pack("{s:o, s:o}", "pools", arr, "execute", ex));
		return;
	}
	if (p->n == 3)
		req->user = (void *)("/v1/pools/{name}");
	else if (p->n == 4 && http_path_is(p, 3, "undrain"))
		req->user = (void *)("/v1/pools/{name}/undrain");
	else if (p->n == 4 && http_path_is(p, 3, "drain"))
		req->user = (void *)("/v1/pools/{name}/drain");
	else
		req->user = (void *)("other");
	if (p->n > 4 || (p->n == 4 && !http_path_is(p, 3, "drain") && !http_path_is(p, 3, "undrain"))) {
		http_respond_error(req, 404, "NotFound", "no route %.16s %s", m, req->path);
		return;
	}
	if (!(pool = pool_find(p->seg[2]))) {
		char echo[API_ECHO_SIZE];
		api_echo(p->seg[2], echo, sizeof(echo));
		http_respond_error(req, 404, "PoolNotFound", "no pool `%s`", echo);
		return;
	}
	if (p->n == 3 && strcmp(m, "GET") == 0) {
		http_respond_json(req, 200, pool_json(pool));
	} else if (p->n == 3 && strcmp(m, "PATCH") == 0) {
		if ((b = body_json(req))) {
			patch_pool(req, pool, b);
			json_decref(b);
		}
	} else if (p->n == 4 && strcmp(m, "POST") == 0 &&
		   (http_path_is(p, 3, "drain") || http_path_is(p, 3, "undrain"))) {
		pool_set_draining(pool, http_path_is(p, 3, "drain"));
		http_respond_json(req, 200, pool_json(pool));
	} else {
		api_not_allowed(req, p->n == 3 ? "GET, PATCH" : "POST");
	}
}

/* The role a route needs; 0 for none. */
static int role_for(const struct http_path *p, const char *method)
{
	if (p->n == 1 && (http_path_is(p, 0, "healthz") || http_path_is(p, 0, "readyz")))
		return 0;
	if (p->n == 1 && http_path_is(p, 0, "metrics"))
		return AUTH_METRICS;
	if (http_path_is(p, 0, "v1") && http_path_is(p, 1, "pools") && strcmp(method, "GET") != 0)
		return AUTH_ADMIN;
	if (http_path_is(p, 0, "v1") && p->n == 2 && http_path_is(p, 1, "sessions"))
		return AUTH_ADMIN;
	/* Azure's listSessions names every session of a pool (aca.c) */
	if ((p->n == 1 && http_path_is(p, 0, "listSessions")) ||
	    (p->n == 3 && http_path_is(p, 0, "pools") && http_path_is(p, 2, "listSessions")))
		return AUTH_ADMIN;
	return AUTH_EXECUTOR;
}

static void dispatch(struct http_request *req, struct http_path *p)
{
	const char *m = req->method;
	char why[400];
	json_t *b;

	if (p->n == 1 && http_path_is(p, 0, "healthz")) {
		req->user = (void *)("/healthz");
		http_respond_json(req, 200, json_pack("{s:s}", "status", stopping ? "stopping" : "ok"));
	} else if (p->n == 1 && http_path_is(p, 0, "readyz")) {
		req->user = (void *)("/readyz");
		if (!stopping && ready(why, sizeof(why)))
			http_respond_json(req, 200, json_pack("{s:s}", "status", "ready"));
		else
			http_respond_error(req, 503, "NotReady", "%s", stopping ? "stopping" : why);
	} else if (p->n == 1 && http_path_is(p, 0, "metrics")) {
		size_t len = 0;
		req->user = (void *)("/metrics");
		char *text = metrics_render(reg, &len);
		http_respond_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
	} else if (p->n == 1 && http_path_is(p, 0, "execute")) {
		req->user = (void *)("/execute");
		if (strcmp(m, "POST") != 0) {
			api_not_allowed(req, "POST");
		} else if ((b = body_json(req))) {
			const char *user = json_string_value(json_object_get(b, "user_id"));
			if (user && !rate_ok(req, rl_session, user))
				json_decref(b);
			else
				ops_execute(req, b);
		}
	} else if (p->n >= 2 && http_path_is(p, 0, "v1") && http_path_is(p, 1, "sessions")) {
		sessions_route(req, p);
	} else if (p->n >= 2 && http_path_is(p, 0, "v1") && http_path_is(p, 1, "pools")) {
		pools_route(req, p);
	} else if (p->n == 2 && http_path_is(p, 0, "v1") && http_path_is(p, 1, "nodes")) {
		req->user = (void *)("/v1/nodes");
		if (strcmp(m, "GET") != 0) {
			api_not_allowed(req, "GET");
			return;
		}
		json_t *arr = json_array();
		for (struct node *n = node_first(); n; n = n->next)
			json_array_append_new(arr, node_json(n));
		http_respond_json(req, 200, json_pack("{s:o}", "nodes", arr));
	} else if (p->n == 2 && http_path_is(p, 0, "v1") && http_path_is(p, 1, "languages")) {
		req->user = (void *)("/v1/languages");
		if (strcmp(m, "GET") != 0) {
			api_not_allowed(req, "GET");
			return;
		}
		http_respond_json(req, 200, json_pack("{s:o}", "languages", languages_json()));
	} else if (aca_route(req, p)) {
		/* the Azure dynamic sessions routes, at / and /pools/{name}/ (aca.c) */
	} else {
		req->user = (void *)("other");
		http_respond_error(req, 404, "NotFound", "no route %s %s", m, req->path);
	}
}

static void count_answer(struct http_request *req, int status)
{
	telemetry_http(req->user ? req->user : "other", status, ev_time() - req->received_at);
}

void api_handle(struct http_request *req, void *data)
{
	struct http_path p = {0};
	const char *who = NULL;
	char peer[64];

	req->on_answer = count_answer;

	int r = http_path_split(req->raw_path, &p);
	if (r < 0) {
		http_respond_error(req, 400, "InvalidPath", "%s", http_path_strerror(r));
		http_path_free(&p);
		return;
	}
	int role = role_for(&p, req->method);
	if (role && auth_count(cfg->auth) > 0) {
		r = auth_check(cfg->auth, http_request_header(req, "authorization"), (enum auth_role)role, &who);
		if (r == -EACCES) {
			static const char body401[] =
			    "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"a valid bearer token is required\"}}";
			http_respond(req, 401, "application/json", "WWW-Authenticate: Bearer\r\n", body401,
				     sizeof(body401) - 1);
			http_path_free(&p);
			return;
		}
		if (r < 0) {
			http_respond_error(req, 403, "Forbidden", "this token's role may not use this route");
			http_path_free(&p);
			return;
		}
	}
	/* per client address (without the port) */
	snprintf(peer, sizeof(peer), "%s", req->peer);
	char *colon = strrchr(peer, ':');
	if (colon && peer[0] != 'u')
		*colon = '\0';
	if (role && !rate_ok(req, rl_client, peer)) {
		http_path_free(&p);
		return;
	}
	dispatch(req, &p);
	http_path_free(&p);
}
