/* node.c — see node.h. */
#include "node.h"

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "lease.h"
#include "log.h"
#include "pool.h"

#define DOWN_AFTER 2

static struct ev_loop *loop;
static struct http_client *client;
static const struct psettings *cfg;
static struct node *nodes;
static ev_timer health_timer;

struct node *node_first(void)
{
	return nodes;
}

struct node *node_find(const char *name)
{
	for (struct node *n = nodes; n; n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

size_t nodes_up(void)
{
	size_t k = 0;
	for (struct node *n = nodes; n; n = n->next)
		k += n->up;
	return k;
}

bool node_has_language(const struct node *n, const char *language)
{
	json_t *langs = json_object_get(n->info, "languages"), *l;
	size_t i;
	json_array_foreach(langs, i, l)
	{
		if (json_is_true(json_object_get(l, "available")) &&
		    strcmp(json_string_value(json_object_get(l, "name")) ?: "", language) == 0)
			return true;
	}
	return false;
}

void node_mark_down(struct node *n, const char *why)
{
	if (!n->up)
		return;
	n->up = false;
	n->synced = false;
	log_error("node %s (%s) is down: %s", n->name, n->url, why);
	leases_node_down(n);
	pools_node_down(n);
}

struct node_ctx {
	struct node *node;
	node_done_fn done;
	void *data;
	json_t *body; /* kept alive for the transfer */
};

static void node_call_done(struct http_result *res, void *data)
{
	struct node_ctx *c = data;
	if (res->status == 0)
		node_mark_down(c->node, res->error ? res->error : "transport error");
	c->done(c->node, res, c->data);
	json_decref(c->body);
	free(c);
}

static struct http_call *call_start(struct node *n, const char *method, const char *path, const char *ctype,
				    const void *body, size_t len, double timeout, json_t *owned, node_done_fn done,
				    void *data)
{
	struct node_ctx *c = calloc(1, sizeof(*c));
	struct http_call *call;

	if (!c) {
		json_decref(owned);
		return NULL;
	}
	*c = (struct node_ctx){.node = n, .done = done, .data = data, .body = owned};
	struct http_call_opts o = {
		.method = method,
		.base = n->url,
		.path = path,
		.content_type = ctype,
		.body = body,
		.body_len = len,
		.timeout = timeout > 0 ? timeout : (double)cfg->node_timeout_ms / 1000.0,
		.max_response = 256u << 20,
	};
	call = http_call_start(client, &o, node_call_done, c);
	if (!call) {
		json_decref(owned);
		free(c);
	}
	return call;
}

struct http_call *node_call(struct node *n, const char *method, const char *path, json_t *body, double timeout,
			    node_done_fn done, void *data)
{
	char *text = NULL;
	json_t *holder = NULL;

	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (!text)
			return NULL;
		/* the text lives in a JSON string the context owns */
		holder = json_string_nocheck(text);
		free(text);
		if (!holder)
			return NULL;
	}
	return call_start(n, method, path, NULL, holder ? json_string_value(holder) : NULL,
			  holder ? json_string_length(holder) : 0, timeout, holder, done, data);
}

struct http_call *node_call_raw(struct node *n, const char *method, const char *path, const char *ctype,
				const void *body, size_t len, double timeout, node_done_fn done, void *data)
{
	return call_start(n, method, path, ctype, body, len, timeout, NULL, done, data);
}

static void sync_done(struct node *n, struct http_result *res, void *data)
{
	json_t *j;
	if (res->status != 200 || !(j = json_loads(res->body, 0, NULL))) {
		if (res->status)
			log_warn("node %s: slot list: HTTP %d", n->name, res->status);
		return;
	}
	if (n->up) {
		n->synced = true;
		leases_node_sync(n, json_object_get(j, "slots"));
		pools_kick_all();
	}
	json_decref(j);
}

static void info_done(struct node *n, struct http_result *res, void *data)
{
	json_t *j = NULL;

	n->checking = false;
	if (res->status == 200)
		j = json_loads(res->body, 0, NULL);
	if (!j) {
		if (res->status != 0 && ++n->failures >= DOWN_AFTER)
			node_mark_down(n, "bad answer to GET /v1/info");
		return;
	}
	n->failures = 0;
	n->last_ok = ev_now(loop);
	json_decref(n->info);
	n->info = j;
	n->capacity = (size_t)json_integer_value(json_object_get(j, "capacity"));
	n->slots = (size_t)json_integer_value(json_object_get(json_object_get(j, "slots"), "total"));
	if (!n->up) {
		n->up = true;
		log_info("node %s (%s) is up: cgroup %s, capacity %zu, %zu slots", n->name, n->url,
			 json_string_value(json_object_get(j, "cgroup")) ?: "?", n->capacity, n->slots);
		node_call(n, "GET", "/v1/slots", NULL, 0, sync_done, NULL);
	}
}

static void health_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	for (struct node *n = nodes; n; n = n->next) {
		if (n->checking)
			continue;
		n->checking = true;
		if (!node_call(n, "GET", "/v1/info", NULL, 2.0, info_done, NULL))
			n->checking = false;
	}
}

int nodes_init(struct ev_loop *l, struct http_client *hc, const struct psettings *st, struct wp_error *err)
{
	struct node **tail = &nodes;

	loop = l;
	client = hc;
	cfg = st;
	for (const struct node_conf *nc = st->nodes; nc; nc = nc->next) {
		struct node *n = calloc(1, sizeof(*n));
		if (!n || !(n->name = strdup(nc->name)) || !(n->url = strdup(nc->url)))
			return wp_error_set(err, ENOMEM, "out of memory");
		*tail = n;
		tail = &n->next;
	}
	ev_timer_init(&health_timer, health_cb, 0.0, (double)st->health_interval_ms / 1000.0);
	ev_timer_start(loop, &health_timer);
	return 0;
}

void nodes_stop(void)
{
	ev_timer_stop(loop, &health_timer);
}
