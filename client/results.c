/* results.c — the objects libwarmpool hands out: answers of poold turned
 * into C structs with accessors (docs/api.md has the shapes).
 *
 * Each object keeps the parsed answer (o.json) and points its string fields
 * into it, so a string lives exactly as long as its object. A list is one
 * allocation of items whose o.item is set: they borrow the list's JSON and
 * wp_free() leaves them alone. Fields the server left out read as 0, "" or
 * NULL (documented per accessor in warmpool.h) rather than failing: a newer
 * poold may add fields, an older one may lack some. */
#include <string.h>

#include "wp_internal.h"

struct test_result {
	const char *verdict, *out, *err;
	size_t out_len, err_len;
	bool truncated;
	int exit_code, signal;
	long long time_ms, wall_ms, memory_kb;
};

struct wp_run_result {
	struct wp_obj o;
	const char *verdict;
	int passed, total;
	long long wall_ms;
	const char *compile_status, *compile_stdout, *compile_stderr;
	long long compile_time_ms;
	const char *session_id, *session_pool, *session_node;
	size_t n_tests;
	struct test_result *tests;
};

struct wp_exec_result {
	struct wp_obj o;
	const char *status, *out, *err;
	char *result; /* JSON text, owned */
	long long time_ms;
};

struct wp_session {
	struct wp_obj o;
	const char *identifier, *pool, *node, *slot, *state;
	double created, last_used, expires_in;
	long long executions, queued;
	bool busy;
};

struct wp_pool {
	struct wp_obj o;
	const char *name, *language, *last_error;
	long long warm, max, idle_timeout_s, max_lifetime_s, ready, creating, leased, queued, create_failures;
	bool draining, stateful;
};

struct wp_node {
	struct wp_obj o;
	const char *name, *url;
	bool up;
	long long capacity, slots;
	double last_ok;
};

struct wp_language {
	struct wp_obj o;
	const char *name, *pool, *version;
	bool available;
};

struct file_entry {
	const char *name, *type;
	long long size;
	double mtime;
};

/* Every list: the items of one type, contiguous. */
struct list {
	struct wp_obj o;
	size_t n;
	void *items;
	size_t item_size;
};

struct wp_sessions {
	struct list l;
};
struct wp_pools {
	struct list l;
};
struct wp_nodes {
	struct list l;
};
struct wp_languages {
	struct list l;
};

struct wp_files {
	struct wp_obj o;
	size_t n;
	struct file_entry *files;
};

/* ---- reading JSON leniently ------------------------------------------- */

static const char *jstr(const json_t *j, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(j, key));
	return s ? s : dflt;
}

static long long jint(const json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return 0;
}

static double jnum(const json_t *j, const char *key)
{
	return json_number_value(json_object_get(j, key));
}

static bool jbool(const json_t *j, const char *key)
{
	return json_is_true(json_object_get(j, key));
}

static void *obj_new(size_t size, enum wp_obj_type type, json_t *j)
{
	struct wp_obj *o = calloc(1, size);
	if (!o) {
		json_decref(j);
		return NULL;
	}
	o->magic = WP_MAGIC;
	o->type = type;
	o->json = j;
	return o;
}

static void item_init(struct wp_obj *o, enum wp_obj_type type, json_t *j)
{
	o->magic = WP_MAGIC;
	o->type = type;
	o->item = true;
	o->json = j;
}

/* ---- objects: construction -------------------------------------------- */

struct wp_run_result *wp_run_result_from_json(json_t *j)
{
	struct wp_run_result *r = obj_new(sizeof(*r), WP_OBJ_RUN, j);
	json_t *t, *comp, *sess;
	size_t i;

	if (!r)
		return NULL;
	r->verdict = jstr(j, "verdict", "internal_error");
	r->passed = (int)jint(j, "passed");
	r->total = (int)jint(j, "total");
	r->wall_ms = jint(j, "wall_ms");
	comp = json_object_get(j, "compile");
	if (json_is_object(comp)) {
		r->compile_status = jstr(comp, "status", "ok");
		r->compile_stdout = jstr(comp, "stdout", "");
		r->compile_stderr = jstr(comp, "stderr", "");
		r->compile_time_ms = jint(comp, "time_ms");
	}
	sess = json_object_get(j, "session");
	r->session_id = jstr(sess, "identifier", NULL);
	r->session_pool = jstr(sess, "pool", NULL);
	r->session_node = jstr(sess, "node", NULL);

	json_t *tests = json_object_get(j, "tests");
	r->n_tests = json_is_array(tests) ? json_array_size(tests) : 0;
	if (r->n_tests && !(r->tests = calloc(r->n_tests, sizeof(*r->tests)))) {
		wp_free(r);
		return NULL;
	}
	json_array_foreach (tests, i, t) {
		struct test_result *x = &r->tests[i];
		json_t *sig = json_object_get(t, "signal"), *ec = json_object_get(t, "exit_code");
		x->verdict = jstr(t, "verdict", "internal_error");
		x->out = jstr(t, "stdout", "");
		x->out_len = json_string_length(json_object_get(t, "stdout"));
		x->err = jstr(t, "stderr", "");
		x->err_len = json_string_length(json_object_get(t, "stderr"));
		x->truncated = jbool(t, "stdout_truncated") || jbool(t, "stderr_truncated");
		x->exit_code = json_is_integer(ec) ? (int)json_integer_value(ec) : -1;
		x->signal = json_is_integer(sig) ? (int)json_integer_value(sig) : 0;
		x->time_ms = jint(t, "time_ms");
		x->wall_ms = jint(t, "wall_ms");
		x->memory_kb = jint(t, "memory_kb");
	}
	if (!json_is_integer(json_object_get(j, "total")))
		r->total = (int)r->n_tests;
	return r;
}

struct wp_exec_result *wp_exec_result_from_json(json_t *j)
{
	struct wp_exec_result *r = obj_new(sizeof(*r), WP_OBJ_EXEC, j);
	json_t *p, *res;

	if (!r)
		return NULL;
	/* 2024-02-02-preview nests under "properties"; newer answers nest under "result" */
	p = json_object_get(j, "properties");
	if (!json_is_object(p))
		p = json_is_object(json_object_get(j, "result")) ? json_object_get(j, "result") : j;
	r->status = jstr(p, "status", jstr(j, "status", ""));
	r->out = jstr(p, "stdout", "");
	r->err = jstr(p, "stderr", "");
	r->time_ms = jint(p, "executionTimeInMilliseconds");
	/* the value as the interpreter shows it: a string ("" when there is
	 * none), or any JSON value from other servers, kept as JSON text */
	res = json_object_get(p, "result");
	if (!res || json_is_null(res) || (json_is_string(res) && !json_string_length(res)))
		res = json_object_get(p, "executionResult");
	if (json_is_string(res) && json_string_length(res))
		r->result = strdup(json_string_value(res));
	else if (res && !json_is_null(res) && !json_is_string(res))
		r->result = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	else
		return r;
	if (!r->result) {
		wp_free(r);
		return NULL;
	}
	return r;
}

static void session_fill(struct wp_session *s, json_t *j)
{
	s->identifier = jstr(j, "identifier", "");
	s->pool = jstr(j, "pool", "");
	s->node = jstr(j, "node", NULL);
	s->slot = jstr(j, "slot", NULL);
	s->state = jstr(j, "state", "");
	s->created = jnum(j, "created");
	s->last_used = jnum(j, "last_used");
	s->expires_in = jnum(j, "expires_in_s");
	s->executions = jint(j, "executions");
	s->queued = jint(j, "queued");
	s->busy = jbool(j, "busy");
}

static void pool_fill(struct wp_pool *p, json_t *j)
{
	p->name = jstr(j, "name", "");
	p->language = jstr(j, "language", "");
	p->last_error = jstr(j, "last_error", NULL);
	p->warm = jint(j, "warm");
	p->max = jint(j, "max");
	p->idle_timeout_s = jint(j, "idle_timeout_s");
	p->max_lifetime_s = jint(j, "max_lifetime_s");
	p->draining = jbool(j, "draining");
	p->stateful = jbool(j, "stateful");
	p->ready = jint(j, "ready");
	p->creating = jint(j, "creating");
	p->leased = jint(j, "leased");
	p->queued = jint(j, "queued");
	p->create_failures = jint(j, "create_failures");
}

static void node_fill(struct wp_node *n, json_t *j)
{
	n->name = jstr(j, "name", "");
	n->url = jstr(j, "url", "");
	n->up = jbool(j, "up");
	n->capacity = jint(j, "capacity");
	n->slots = jint(j, "slots");
	n->last_ok = jnum(j, "last_ok");
}

static void language_fill(struct wp_language *l, json_t *j)
{
	l->name = jstr(j, "language", "");
	l->pool = jstr(j, "pool", "");
	l->version = jstr(j, "version", NULL);
	l->available = jbool(j, "available");
}

struct wp_session *wp_session_from_json(json_t *j)
{
	struct wp_session *s = obj_new(sizeof(*s), WP_OBJ_SESSION, j);
	if (s)
		session_fill(s, j);
	return s;
}

struct wp_pool *wp_pool_from_json(json_t *j)
{
	struct wp_pool *p = obj_new(sizeof(*p), WP_OBJ_POOL, j);
	if (p)
		pool_fill(p, j);
	return p;
}

/* {"<key>": [item…]} → a list; fill() reads one item. */
static void *list_from_json(size_t size, enum wp_obj_type type, json_t *j, const char *key, enum wp_obj_type item_type,
			    size_t item_size, void (*fill)(void *item, json_t *ij))
{
	struct list *l = obj_new(size, type, j);
	json_t *arr = json_object_get(j, key), *e;
	size_t i;

	if (!l)
		return NULL;
	size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
	l->item_size = item_size;
	if (n && !(l->items = calloc(n, item_size))) {
		wp_free(l);
		return NULL;
	}
	l->n = n;
	json_array_foreach (arr, i, e) {
		struct wp_obj *o = (struct wp_obj *)((char *)l->items + i * item_size);
		item_init(o, item_type, e);
		fill(o, e);
	}
	return l;
}

static void session_fill_v(void *item, json_t *j)
{
	session_fill(item, j);
}
static void pool_fill_v(void *item, json_t *j)
{
	pool_fill(item, j);
}
static void node_fill_v(void *item, json_t *j)
{
	node_fill(item, j);
}
static void language_fill_v(void *item, json_t *j)
{
	language_fill(item, j);
}

struct wp_sessions *wp_sessions_from_json(json_t *j)
{
	return list_from_json(sizeof(struct wp_sessions), WP_OBJ_SESSIONS, j, "sessions", WP_OBJ_SESSION,
			      sizeof(struct wp_session), session_fill_v);
}

struct wp_pools *wp_pools_from_json(json_t *j)
{
	return list_from_json(sizeof(struct wp_pools), WP_OBJ_POOLS, j, "pools", WP_OBJ_POOL, sizeof(struct wp_pool),
			      pool_fill_v);
}

struct wp_nodes *wp_nodes_from_json(json_t *j)
{
	return list_from_json(sizeof(struct wp_nodes), WP_OBJ_NODES, j, "nodes", WP_OBJ_NODE, sizeof(struct wp_node),
			      node_fill_v);
}

struct wp_languages *wp_languages_from_json(json_t *j)
{
	return list_from_json(sizeof(struct wp_languages), WP_OBJ_LANGUAGES, j, "languages", WP_OBJ_LANGUAGE,
			      sizeof(struct wp_language), language_fill_v);
}

struct wp_files *wp_files_from_json(json_t *j)
{
	struct wp_files *f = obj_new(sizeof(*f), WP_OBJ_FILES, j);
	json_t *arr = json_object_get(j, "files"), *e;
	size_t i;

	if (!f)
		return NULL;
	f->n = json_is_array(arr) ? json_array_size(arr) : 0;
	if (f->n && !(f->files = calloc(f->n, sizeof(*f->files)))) {
		wp_free(f);
		return NULL;
	}
	json_array_foreach (arr, i, e) {
		f->files[i].name = jstr(e, "name", "");
		f->files[i].type = jstr(e, "type", "file");
		f->files[i].size = jint(e, "size");
		f->files[i].mtime = jnum(e, "mtime");
	}
	return f;
}

/* ---- objects: life ---------------------------------------------------- */

static void list_free_items(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(((struct wp_obj *)((char *)l->items + i * l->item_size))->text);
	free(l->items);
}

void wp_free(void *object)
{
	struct wp_obj *o = object;

	if (!o || o->magic != WP_MAGIC || o->item)
		return;
	switch (o->type) {
	case WP_OBJ_CLIENT: wp_client_destroy(object); return;
	case WP_OBJ_RUN: free(((struct wp_run_result *)o)->tests); break;
	case WP_OBJ_EXEC: free(((struct wp_exec_result *)o)->result); break;
	case WP_OBJ_FILES: free(((struct wp_files *)o)->files); break;
	case WP_OBJ_SESSIONS:
	case WP_OBJ_POOLS:
	case WP_OBJ_NODES:
	case WP_OBJ_LANGUAGES: list_free_items((struct list *)o); break;
	default: break;
	}
	json_decref(o->json);
	free(o->text);
	o->magic = 0;
	free(o);
}

const char *wp_json(const void *object)
{
	struct wp_obj *o = (struct wp_obj *)object;

	if (!o || o->magic != WP_MAGIC || !o->json)
		return NULL;
	if (!o->text)
		o->text = json_dumps(o->json, JSON_COMPACT | JSON_ENCODE_ANY);
	return o->text;
}

/* ---- accessors -------------------------------------------------------- */

static const struct test_result *test_at(const struct wp_run_result *r, size_t i)
{
	static const struct test_result none = {.verdict = "", .out = "", .err = "", .exit_code = -1};
	return r && i < r->n_tests ? &r->tests[i] : &none;
}

const char *wp_run_verdict(const struct wp_run_result *r)
{
	return r->verdict;
}
int wp_run_passed(const struct wp_run_result *r)
{
	return r->passed;
}
int wp_run_total(const struct wp_run_result *r)
{
	return r->total;
}
long long wp_run_wall_ms(const struct wp_run_result *r)
{
	return r->wall_ms;
}
const char *wp_run_compile_status(const struct wp_run_result *r)
{
	return r->compile_status;
}
const char *wp_run_compile_stdout(const struct wp_run_result *r)
{
	return r->compile_stdout ? r->compile_stdout : "";
}
const char *wp_run_compile_stderr(const struct wp_run_result *r)
{
	return r->compile_stderr ? r->compile_stderr : "";
}
long long wp_run_compile_time_ms(const struct wp_run_result *r)
{
	return r->compile_time_ms;
}
const char *wp_run_session_id(const struct wp_run_result *r)
{
	return r->session_id;
}
const char *wp_run_session_pool(const struct wp_run_result *r)
{
	return r->session_pool;
}
const char *wp_run_session_node(const struct wp_run_result *r)
{
	return r->session_node;
}
size_t wp_run_test_count(const struct wp_run_result *r)
{
	return r->n_tests;
}
const char *wp_run_test_verdict(const struct wp_run_result *r, size_t i)
{
	return test_at(r, i)->verdict;
}
const char *wp_run_test_stdout(const struct wp_run_result *r, size_t i, size_t *len)
{
	if (len)
		*len = test_at(r, i)->out_len;
	return test_at(r, i)->out;
}
const char *wp_run_test_stderr(const struct wp_run_result *r, size_t i, size_t *len)
{
	if (len)
		*len = test_at(r, i)->err_len;
	return test_at(r, i)->err;
}
bool wp_run_test_truncated(const struct wp_run_result *r, size_t i)
{
	return test_at(r, i)->truncated;
}
int wp_run_test_exit_code(const struct wp_run_result *r, size_t i)
{
	return test_at(r, i)->exit_code;
}
int wp_run_test_signal(const struct wp_run_result *r, size_t i)
{
	return test_at(r, i)->signal;
}
long long wp_run_test_time_ms(const struct wp_run_result *r, size_t i)
{
	return test_at(r, i)->time_ms;
}
long long wp_run_test_wall_ms(const struct wp_run_result *r, size_t i)
{
	return test_at(r, i)->wall_ms;
}
long long wp_run_test_memory_kb(const struct wp_run_result *r, size_t i)
{
	return test_at(r, i)->memory_kb;
}

const char *wp_exec_status(const struct wp_exec_result *r)
{
	return r->status;
}
const char *wp_exec_stdout(const struct wp_exec_result *r)
{
	return r->out;
}
const char *wp_exec_stderr(const struct wp_exec_result *r)
{
	return r->err;
}
const char *wp_exec_result(const struct wp_exec_result *r)
{
	return r->result;
}
long long wp_exec_time_ms(const struct wp_exec_result *r)
{
	return r->time_ms;
}

size_t wp_sessions_count(const struct wp_sessions *l)
{
	return l ? l->l.n : 0;
}
const struct wp_session *wp_sessions_at(const struct wp_sessions *l, size_t i)
{
	return l && i < l->l.n ? &((const struct wp_session *)l->l.items)[i] : NULL;
}
const char *wp_session_identifier(const struct wp_session *s)
{
	return s->identifier;
}
const char *wp_session_pool(const struct wp_session *s)
{
	return s->pool;
}
const char *wp_session_node(const struct wp_session *s)
{
	return s->node;
}
const char *wp_session_slot(const struct wp_session *s)
{
	return s->slot;
}
const char *wp_session_state(const struct wp_session *s)
{
	return s->state;
}
double wp_session_created(const struct wp_session *s)
{
	return s->created;
}
double wp_session_last_used(const struct wp_session *s)
{
	return s->last_used;
}
double wp_session_expires_in(const struct wp_session *s)
{
	return s->expires_in;
}
long long wp_session_executions(const struct wp_session *s)
{
	return s->executions;
}
long long wp_session_queued(const struct wp_session *s)
{
	return s->queued;
}
bool wp_session_busy(const struct wp_session *s)
{
	return s->busy;
}

size_t wp_files_count(const struct wp_files *f)
{
	return f ? f->n : 0;
}
const char *wp_files_name(const struct wp_files *f, size_t i)
{
	return f && i < f->n ? f->files[i].name : NULL;
}
long long wp_files_size(const struct wp_files *f, size_t i)
{
	return f && i < f->n ? f->files[i].size : 0;
}
double wp_files_mtime(const struct wp_files *f, size_t i)
{
	return f && i < f->n ? f->files[i].mtime : 0;
}
const char *wp_files_type(const struct wp_files *f, size_t i)
{
	return f && i < f->n ? f->files[i].type : NULL;
}

size_t wp_pools_count(const struct wp_pools *l)
{
	return l ? l->l.n : 0;
}
const struct wp_pool *wp_pools_at(const struct wp_pools *l, size_t i)
{
	return l && i < l->l.n ? &((const struct wp_pool *)l->l.items)[i] : NULL;
}
const char *wp_pool_name(const struct wp_pool *p)
{
	return p->name;
}
const char *wp_pool_language(const struct wp_pool *p)
{
	return p->language;
}
long long wp_pool_warm(const struct wp_pool *p)
{
	return p->warm;
}
long long wp_pool_max(const struct wp_pool *p)
{
	return p->max;
}
long long wp_pool_idle_timeout_s(const struct wp_pool *p)
{
	return p->idle_timeout_s;
}
long long wp_pool_max_lifetime_s(const struct wp_pool *p)
{
	return p->max_lifetime_s;
}
bool wp_pool_draining(const struct wp_pool *p)
{
	return p->draining;
}
bool wp_pool_stateful(const struct wp_pool *p)
{
	return p->stateful;
}
long long wp_pool_ready(const struct wp_pool *p)
{
	return p->ready;
}
long long wp_pool_creating(const struct wp_pool *p)
{
	return p->creating;
}
long long wp_pool_leased(const struct wp_pool *p)
{
	return p->leased;
}
long long wp_pool_queued(const struct wp_pool *p)
{
	return p->queued;
}
long long wp_pool_create_failures(const struct wp_pool *p)
{
	return p->create_failures;
}
const char *wp_pool_last_error(const struct wp_pool *p)
{
	return p->last_error;
}

size_t wp_nodes_count(const struct wp_nodes *l)
{
	return l ? l->l.n : 0;
}
const struct wp_node *wp_nodes_at(const struct wp_nodes *l, size_t i)
{
	return l && i < l->l.n ? &((const struct wp_node *)l->l.items)[i] : NULL;
}
const char *wp_node_name(const struct wp_node *n)
{
	return n->name;
}
const char *wp_node_url(const struct wp_node *n)
{
	return n->url;
}
bool wp_node_up(const struct wp_node *n)
{
	return n->up;
}
long long wp_node_capacity(const struct wp_node *n)
{
	return n->capacity;
}
long long wp_node_slots(const struct wp_node *n)
{
	return n->slots;
}
double wp_node_last_ok(const struct wp_node *n)
{
	return n->last_ok;
}

size_t wp_languages_count(const struct wp_languages *l)
{
	return l ? l->l.n : 0;
}
const struct wp_language *wp_languages_at(const struct wp_languages *l, size_t i)
{
	return l && i < l->l.n ? &((const struct wp_language *)l->l.items)[i] : NULL;
}
const char *wp_language_name(const struct wp_language *l)
{
	return l->name;
}
const char *wp_language_pool(const struct wp_language *l)
{
	return l->pool;
}
const char *wp_language_version(const struct wp_language *l)
{
	return l->version;
}
bool wp_language_available(const struct wp_language *l)
{
	return l->available;
}
