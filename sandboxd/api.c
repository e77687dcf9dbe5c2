/* api.c — sandboxd's HTTP routes (docs/sandboxd-api.md is the reference).
 * Parsing and validation here; the work in slot.c, run.c, kernel.c and
 * files.c. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "files.h"
#include "http_path.h"
#include "json.h"
#include "kernel.h"
#include "log.h"
#include "admit.h"
#include "run.h"
#include "slot.h"

#define MAX_JSON_DEPTH 32
#define MAX_CREATE     64

static struct api_ctx *api;

void api_init(struct api_ctx *ctx)
{
	api = ctx;
}

static json_t *language_json(const struct language *l, bool with_limits)
{
	json_t *j = json_pack("{s:s, s:s?, s:b, s:b, s:s, s:b}", "name", l->name, "version", l->version, "compiled",
			      l->compile_argv != NULL, "available", l->available, "source", l->source, "interpreter",
			      l->available && l->interpreter_ok);
	if (j)
		json_object_set_new(j, "sessions_only", json_boolean(l->sessions_only));
	if (j && !l->available)
		json_object_set_new(j, "unavailable", json_string(l->unavailable));
	if (with_limits) {
		json_object_set_new(j, "limits", limits_to_json(&l->limits));
		json_object_set_new(j, "compile_limits", limits_to_json(&l->compile_limits));
	}
	return j;
}

static json_t *languages_json(bool with_limits)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < api->n_languages; i++)
		json_array_append_new(arr, language_json(api->languages[i], with_limits));
	return arr;
}

static void get_info(struct http_request *req)
{
	json_t *slots = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)slot_total(), "creating",
				  (json_int_t)slot_count(SLOT_CREATING), "ready", (json_int_t)slot_count(SLOT_READY),
				  "busy", (json_int_t)slot_count(SLOT_BUSY), "destroying",
				  (json_int_t)slot_count(SLOT_DESTROYING), "leased", (json_int_t)slot_labelled());
	json_t *info =
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o}", "node", api->node_name, "version",
		      WARMPOOL_VERSION, "cgroup", cgroup_mode_name(cgroup_root_mode(api->cgroot)), "controllers",
		      cgroup_root_controllers(api->cgroot), "capacity", (json_int_t)sandboxd_settings->capacity, "cpus",
		      (json_int_t)sandboxd_settings->cpus, "runs", admit_info(), "slots", slots, "languages",
		      languages_json(false), "limits_max", limits_to_json(&sandboxd_settings->max));
	/* the TLS certificate's end, for poold's expiry gauge */
	if (info && sandboxd_settings->tls_not_after)
		json_object_set_new(info, "tls_not_after", json_integer((json_int_t)sandboxd_settings->tls_not_after));
	http_respond_json(req, 200, info);
}

/* POST /v1/slots with "wait": the answer waits for every slot of the batch. */
struct create_batch {
	struct http_request *req;
	json_t *slots;
	size_t pending;
	size_t failed;
	char first_error[256];
};

static void batch_step(struct create_batch *b)
{
	if (--b->pending > 0)
		return;
	if (b->failed)
		http_respond_error(b->req, 500, "InternalError", "%zu of %zu slots failed: %s", b->failed,
				   b->failed + json_array_size(b->slots), b->first_error);
	else
		http_respond_json(b->req, 201, json_pack("{s:O}", "slots", b->slots));
	json_decref(b->slots);
	free(b);
}

static void batch_fail(struct create_batch *b, const char *msg)
{
	if (!b->failed++)
		snprintf(b->first_error, sizeof(b->first_error), "%s", msg);
}

static void batch_slot_ready(struct slot *s, const struct wp_error *err, void *data)
{
	struct create_batch *b = data;
	if (err)
		batch_fail(b, err->msg);
	else
		json_array_append_new(b->slots, slot_to_json(s));
	batch_step(b);
}

static void post_slots(struct http_request *req, json_t *body)
{
	static const char *const keys[] = {"language", "count", "label", "wait", "interpreter", NULL};
	struct wp_error err = {0};
	const char *lang_name = NULL, *label = NULL;
	uint64_t count = 1;
	bool wait = false, interpreter = false;
	struct language *lang;

	if (json_check_keys(body, keys, &err) < 0 || json_get_string(body, "language", true, &lang_name, &err) < 0 ||
	    json_get_uint(body, "count", false, 1, MAX_CREATE, &count, &err) < 0 ||
	    json_get_bool(body, "wait", false, &wait, &err) < 0 ||
	    json_get_bool(body, "interpreter", false, &interpreter, &err) < 0 ||
	    (!json_is_null(json_object_get(body, "label")) &&
	     json_get_string(body, "label", false, &label, &err) < 0)) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	if (label && !slot_label_valid(label)) {
		http_respond_error(req, 400, "BadRequest", "label: 1 to 255 visible ASCII characters");
		return;
	}
	lang = language_find(api->languages, api->n_languages, lang_name);
	if (!lang) {
		http_respond_error(req, 422, "UnknownLanguage", "language `%s` is not configured on this node",
				   lang_name);
		return;
	}
	if (!lang->available) {
		http_respond_error(req, 422, "UnknownLanguage", "language `%s` is not installed on this node: %s",
				   lang_name, lang->unavailable);
		return;
	}
	if (interpreter && !lang->interpreter_ok) {
		http_respond_error(req, 422, "NoInterpreter", "language `%s` has no %sinterpreter on this node",
				   lang_name, lang->interpreter_argv ? "usable " : "");
		return;
	}
	if (slot_total() + count > sandboxd_settings->capacity) {
		http_respond_error(req, 503, "AtCapacity", "node holds %zu of %llu slots; %llu more do not fit",
				   slot_total(), (unsigned long long)sandboxd_settings->capacity,
				   (unsigned long long)count);
		return;
	}
	struct create_batch *b = calloc(1, sizeof(*b));
	if (!b) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		return;
	}
	b->req = req;
	b->slots = json_array();
	b->pending = 1; /* held until the loop below is over */
	for (uint64_t i = 0; i < count; i++) {
		struct slot *s = NULL;
		if (slot_create(lang, label, interpreter, wait ? batch_slot_ready : NULL, b, &s, &err) < 0) {
			log_error("create %s slot: %s", lang->name, err.msg);
			batch_fail(b, err.msg);
			continue;
		}
		if (wait)
			b->pending++;
		else
			json_array_append_new(b->slots, slot_to_json(s));
	}
	if (!wait && !b->failed) {
		http_respond_json(req, 202, json_pack("{s:O}", "slots", b->slots));
		json_decref(b->slots);
		free(b);
		return;
	}
	batch_step(b);
}

static void get_slots(struct http_request *req)
{
	cleanup_free char *label = http_request_query(req, "label");
	json_t *arr = json_array();
	for (struct slot *s = slot_first(); s; s = s->next)
		if (!label || (s->label && strcmp(s->label, label) == 0))
			json_array_append_new(arr, slot_to_json(s));
	http_respond_json(req, 200, json_pack("{s:o}", "slots", arr));
}

static void patch_slot(struct http_request *req, struct slot *s, json_t *body)
{
	static const char *const keys[] = {"label", NULL};
	struct wp_error err = {0};
	json_t *jl = json_object_get(body, "label");

	if (json_check_keys(body, keys, &err) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		return;
	}
	if (!jl || !(json_is_null(jl) || (json_is_string(jl) && slot_label_valid(json_string_value(jl))))) {
		http_respond_error(req, 400, "BadRequest", "label: null or 1 to 255 visible ASCII characters");
		return;
	}
	if (s->state == SLOT_DESTROYING || s->state == SLOT_CREATING) {
		http_respond_error(req, 409, "SlotNotReady", "slot %s is %s", s->id, slot_state_name(s->state));
		return;
	}
	const char *label = json_is_null(jl) ? NULL : json_string_value(jl);
	/* A used slot holds someone's state: clearing its label would offer it
	 * as a fresh slot, changing it would hand it to another session. */
	if ((!label && !slot_fresh(s)) || (label && s->label && strcmp(label, s->label) != 0)) {
		http_respond_error(req, 409, "SlotUsed",
				   "slot %s has been used (labelled, ran code, or had files written): its label cannot "
				   "be %s; a used slot can only be destroyed (DELETE /v1/slots/%s)",
				   s->id, label ? "changed" : "cleared", s->id);
		return;
	}
	if (slot_set_label(s, label) < 0) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		return;
	}
	log_info("slot %s label %s", s->id, s->label ? s->label : "(cleared)");
	http_respond_json(req, 200, slot_to_json(s));
}

/* X-Warmpool-Label on run, exec and files requests: poold labels a freshly
 * leased slot with the session's first request instead of a PATCH of its
 * own (one round trip less per new session). Applied before the request
 * itself; a slot that carries another label is refused: never two sessions
 * in one slot. False when the request was answered. */
static bool label_from_header(struct http_request *req, struct slot *s)
{
	const char *label = http_request_header(req, "x-warmpool-label");

	if (!label || (s->label && strcmp(s->label, label) == 0))
		return true;
	if (!slot_label_valid(label)) {
		http_respond_error(req, 400, "BadRequest", "X-Warmpool-Label: 1 to 255 visible ASCII characters");
		return false;
	}
	if (s->label) {
		http_respond_error(req, 409, "SlotLabelled", "slot %s already carries another label", s->id);
		return false;
	}
	if (s->state == SLOT_DESTROYING || s->state == SLOT_CREATING) {
		http_respond_error(req, 409, "SlotNotReady", "slot %s is %s", s->id, slot_state_name(s->state));
		return false;
	}
	if (slot_set_label(s, label) < 0) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		return false;
	}
	log_info("slot %s label %s", s->id, s->label);
	return true;
}

/* A query number: digits only, from 1 to max. */
static bool query_number(const char *v, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
		return false;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return errno == 0 && *out >= 1 && *out <= max;
}

/* GET files: one page (?limit=, ?after= the previous page's `next`), or one
 * entry (?name=). Never the whole directory at once: see files.h. With
 * ?recursive=1 the whole tree below, bounded (files_list_tree_at). */
static void list_files(struct http_request *req, int dfd)
{
	cleanup_free char *limit_s = http_request_query(req, "limit");
	cleanup_free char *after_s = http_request_query(req, "after");
	cleanup_free char *name = http_request_query(req, "name");
	cleanup_free char *recursive = http_request_query(req, "recursive");
	unsigned long long limit = FILES_PAGE_DEFAULT, after = 0;
	struct files_page page;
	struct wp_error err = {0};
	char next[24];

	if (recursive && strcmp(recursive, "0") != 0) {
		json_t *tree = NULL;
		int r;
		if (strcmp(recursive, "1") != 0 || name || limit_s || after_s) {
			http_respond_error(
			    req, 400, "BadRequest",
			    "recursive: 1 or 0; a recursive list is one answer (no name, limit or after)");
			return;
		}
		if ((r = files_list_tree_at(dfd, &tree, &err)) < 0) {
			http_respond_error(req, r == -E2BIG ? 400 : 500,
					   r == -E2BIG ? "RecursiveListTooLarge" : "InternalError", "%s", err.msg);
			return;
		}
		http_respond_json(req, 200, json_pack("{s:o, s:n}", "files", tree, "next"));
		return;
	}
	if (name) {
		json_t *e;
		if (!files_name_valid(name, strlen(name))) {
			http_respond_error(req, 400, "BadRequest", "name: one file name of the work dir is required");
			return;
		}
		if (!(e = files_stat_at(dfd, name, &err))) {
			http_respond_error(req, 404, "NotFound", "%s", err.msg);
			return;
		}
		http_respond_json(req, 200, json_pack("{s:[o], s:n}", "files", e, "next"));
		return;
	}
	if (limit_s && !query_number(limit_s, FILES_PAGE_MAX, &limit)) {
		http_respond_error(req, 400, "BadRequest", "limit: entries per page, a whole number from 1 to %d",
				   FILES_PAGE_MAX);
		return;
	}
	if (after_s && !query_number(after_s, (unsigned long long)INT64_MAX, &after)) {
		http_respond_error(
		    req, 400, "BadRequest",
		    "after: pass the `next` value of the previous page as is (or leave it out for the first page)");
		return;
	}
	if (files_list_page_at(dfd, (long long)after, (size_t)limit, &page, &err) < 0) {
		http_respond_error(req, 500, "InternalError", "%s", err.msg);
		return;
	}
	snprintf(next, sizeof(next), "%lld", page.next);
	http_respond_json(req, 200, json_pack("{s:o, s:s?}", "files", page.files, "next", page.more ? next : NULL));
}

/* An upload in progress: written by a child in the slot's cgroup
 * (files_write_charged); answered when it is reaped. Holds no pointer to
 * the slot, which may go meanwhile (its cgroup kill ends the child). */
struct upload {
	ev_child w;
	struct http_request *req;
	size_t len;
	char name[];
};

static void upload_done(struct ev_loop *loop, ev_child *w, int revents)
{
	struct upload *u = (struct upload *)w;
	int st = w->rstatus;

	ev_child_stop(loop, w);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		http_respond_json(u->req, 201, json_pack("{s:s, s:I}", "name", u->name, "size", (json_int_t)u->len));
	else if (WIFEXITED(st) && WEXITSTATUS(st) == ENOSPC)
		http_respond_error(u->req, 413, "PayloadTooLarge", "`%s`: the slot's work dir is full", u->name);
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		http_respond_error(u->req, 413, "PayloadTooLarge",
				   "writing `%s` was stopped: the slot's memory is full (or the slot was destroyed)",
				   u->name);
	else
		http_respond_error(u->req, 500, "InternalError", "writing `%s` failed (wait status %d)", u->name, st);
	free(u);
}

static void upload_start(struct http_request *req, struct slot *s, int dfd, const char *name)
{
	struct wp_error err = {0};
	size_t nlen = strlen(name);
	struct upload *u = malloc(sizeof(*u) + nlen + 1);
	pid_t pid;

	if (!u) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		return;
	}
	pid = files_write_charged_at(s, dfd, name, req->body, req->body_len, &err);
	if (pid < 0) {
		free(u);
		http_respond_error(req, pid == -ENOSPC ? 413 : 500,
				   pid == -ENOSPC ? "PayloadTooLarge" : "InternalError", "%s", err.msg);
		return;
	}
	u->req = req;
	u->len = req->body_len;
	memcpy(u->name, name, nlen + 1);
	ev_child_init(&u->w, upload_done, pid, 0);
	ev_child_start(EV_DEFAULT, &u->w);
}

/* ?dir=a/b: the files API in that subdirectory of the work dir (made by
 * an upload when missing), never through a link (files_open_dir). */
static void slot_files(struct http_request *req, struct slot *s, const char *name)
{
	struct wp_error err = {0};
	const char *m = req->method;
	cleanup_free char *dir = http_request_query(req, "dir");
	cleanup_close int dir_fd = -1;
	int dfd = s->data_fd;

	if (s->state == SLOT_DESTROYING || s->state == SLOT_CREATING) {
		http_respond_error(req, 409, "SlotNotReady", "slot %s is %s", s->id, slot_state_name(s->state));
		return;
	}
	if (dir && *dir) {
		bool create = name && strcmp(m, "PUT") == 0;
		if (create && s->state == SLOT_BUSY) {
			http_respond_error(req, 409, "SlotBusy", "slot %s is running something", s->id);
			return;
		}
		if (create)
			slot_mark_used(s);
		if ((dir_fd = files_open_dir(s, dir, create, &err)) < 0) {
			http_respond_error(req,
					   dir_fd == -ENOENT   ? 404
					   : dir_fd == -ENOSPC ? 413
							       : 400,
					   dir_fd == -ENOENT ? "DirectoryNotFound" : "BadRequest", "%s", err.msg);
			return;
		}
		dfd = dir_fd;
	}
	if (!name) {
		if (strcmp(m, "GET") != 0)
			http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
		else
			list_files(req, dfd);
		return;
	}
	if (!files_name_valid(name, strlen(name))) {
		http_respond_error(req, 400, "BadRequest", "invalid file name: %s",
				   http_path_name_invalid(name) ?: "not one path component");
		return;
	}
	if (strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0) {
		if (s->state == SLOT_BUSY) {
			http_respond_error(req, 409, "SlotBusy", "slot %s is running something", s->id);
			return;
		}
		slot_mark_used(s);
	}
	if (strcmp(m, "PUT") == 0) {
		upload_start(req, s, dfd, name);
	} else if (strcmp(m, "GET") == 0) {
		char *data = NULL;
		size_t len = 0;
		int r = files_read_at(s, dfd, name, sandboxd_settings->data_size, &data, &len, &err);
		if (r == -ENOENT || r == -ELOOP)
			http_respond_error(req, 404, "NotFound", "%s", err.msg);
		else if (r < 0)
			http_respond_error(req, 500, "InternalError", "%s", err.msg);
		else
			http_respond_owned(req, 200, "application/octet-stream", NULL, data, len);
	} else if (strcmp(m, "DELETE") == 0) {
		int r = files_delete_at(dfd, name, &err);
		if (r == -ENOENT)
			http_respond_error(req, 404, "NotFound", "%s", err.msg);
		else if (r < 0)
			http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		else
			http_respond(req, 204, NULL, NULL, NULL, 0);
	} else {
		http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
	}
}

/* Parse the body as a JSON object; answers 400 itself and returns NULL. */
static json_t *body_json(struct http_request *req)
{
	struct wp_error err = {0};
	json_t *j = json_parse_body(req->body, req->body_len, MAX_JSON_DEPTH, &err);
	if (!j)
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
	return j;
}

static void route_slot(struct http_request *req, const struct http_path *p)
{
	struct slot *s = slot_find(p->seg[2]);
	const char *m = req->method;
	json_t *body;

	if (!s) {
		http_respond_error(req, 404, "NotFound", "no slot `%s`", p->seg[2]);
		return;
	}
	if (p->n == 3) {
		if (strcmp(m, "GET") == 0) {
			http_respond_json(req, 200, slot_to_json(s));
		} else if (strcmp(m, "DELETE") == 0) {
			slot_destroy(s);
			http_respond_json(req, 202, json_pack("{s:s, s:s}", "id", s->id, "state", "destroying"));
		} else if (strcmp(m, "PATCH") == 0) {
			if ((body = body_json(req))) {
				patch_slot(req, s, body);
				json_decref(body);
			}
		} else {
			http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
		}
		return;
	}
	if (p->n == 4 && http_path_is(p, 3, "run") && strcmp(m, "POST") == 0) {
		uint64_t need_kb = 0;
		/* admission first (admit.h): a refused run leaves the slot unlabelled */
		if (!(body = body_json(req)))
			return;
		if (!admit_run(req, s, body, &need_kb) || !label_from_header(req, s)) {
			json_decref(body);
			return;
		}
		slot_mark_used(s);
		run_start(s, req, body); /* takes body */
		admit_track(s, need_kb);
		return;
	}
	if (!label_from_header(req, s))
		return;
	if (p->n == 4 && http_path_is(p, 3, "run")) {
		http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
		return;
	}
	if (p->n == 4 && http_path_is(p, 3, "exec")) {
		if (strcmp(m, "POST") != 0)
			http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
		else if ((body = body_json(req))) {
			slot_mark_used(s);
			kernel_exec(s, req, body); /* takes body */
		}
		return;
	}
	if ((p->n == 4 || p->n == 5) && http_path_is(p, 3, "files")) {
		slot_files(req, s, p->n == 5 ? p->seg[4] : NULL);
		return;
	}
	http_respond_error(req, 404, "NotFound", "no route %s %s", m, req->path);
}

void api_handle(struct http_request *req, void *data)
{
	struct http_path p = {0};
	const char *m = req->method;
	json_t *body;

	int r = http_path_split(req->raw_path, &p);
	if (r < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", http_path_strerror(r));
		http_path_free(&p);
		return;
	}
	if (p.n == 1 && http_path_is(&p, 0, "healthz")) {
		if (strcmp(m, "GET") == 0)
			http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
		else
			http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
	} else if (p.n == 2 && http_path_is(&p, 0, "v1") &&
		   (http_path_is(&p, 1, "info") || http_path_is(&p, 1, "languages"))) {
		if (strcmp(m, "GET") != 0)
			http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
		else if (http_path_is(&p, 1, "info"))
			get_info(req);
		else
			http_respond_json(req, 200, json_pack("{s:o}", "languages", languages_json(true)));
	} else if (p.n == 2 && http_path_is(&p, 0, "v1") && http_path_is(&p, 1, "slots")) {
		if (strcmp(m, "GET") == 0) {
			get_slots(req);
		} else if (strcmp(m, "POST") == 0) {
			if ((body = body_json(req))) {
				post_slots(req, body);
				json_decref(body);
			}
		} else {
			http_respond_error(req, 405, "MethodNotAllowed", "%s not allowed here", m);
		}
	} else if (p.n >= 3 && http_path_is(&p, 0, "v1") && http_path_is(&p, 1, "slots")) {
		route_slot(req, &p);
	} else {
		http_respond_error(req, 404, "NotFound", "no route %s %s", m, req->path);
	}
	http_path_free(&p);
}
