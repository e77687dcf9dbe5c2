/* node.c — see node.h. Nodes come from the configuration ([node:NAME] url)
 * and from DNS discovery (discovery.c: node_discovered, node_retire).
 * Retired nodes (gone from their DNS answer) are kept in memory (leases
 * and calls in flight may still point at them) and revived if their
 * address comes back. */
#include "node.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "clock.h"
#include "discovery.h"
#include "json.h"
#include "lease.h"
#include "log.h"
#include "pool.h"

#define DOWN_AFTER  2
#define RECONCILE_S 30.0 /* a node that is up is read back this often */

/* What node.c keeps beside the public struct node (which comes first). */
struct node_priv {
	struct node pub;
	const void *owner; /* its DNS group (discovery.c); NULL: a configured url */
	bool retired;	   /* vanished from its DNS answer: unlisted, unchecked */
	bool ever_synced;  /* read back once: later syncs recover no lease */
	bool syncing;	   /* GET /v1/slots in flight */
	double synced_at;  /* last sync started (for the periodic one) */
	struct node_priv *next_retired;
	struct http_tls_opts tls; /* an https:// url: mutual TLS (strings of the running config) */
	bool has_tls;
	char unreachable[160]; /* the last reason logged while not up (a TLS refusal, a refused connection) */
};

static struct ev_loop *loop;
static struct http_client *client;
static const struct psettings *cfg;
static struct node *nodes;
static struct node_priv *retired;
static ev_timer health_timer;
static node_transport_fn transport = http_call_start;

static inline struct node_priv *priv(struct node *n)
{
	return (struct node_priv *)n;
}

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
	json_array_foreach (langs, i, l) {
		if (json_is_true(json_object_get(l, "available")) &&
		    strcmp(json_string_value(json_object_get(l, "name")) ?: "", language) == 0)
			return true;
	}
	return false;
}

const char *node_no_host(const char *language, char *buf, size_t len)
{
	snprintf(buf, len, "no node that is up can host language %s", language);
	for (struct node *n = nodes; n; n = n->next) {
		json_t *langs = json_object_get(n->info, "languages"), *l;
		size_t i;

		if (!n->up)
			continue;
		json_array_foreach (langs, i, l) {
			const char *why = json_string_value(json_object_get(l, "unavailable"));
			if (why && strcmp(json_string_value(json_object_get(l, "name")) ?: "", language) == 0) {
				size_t k = strlen(buf);
				snprintf(buf + k, len - k, " (node %s: %s)", n->name, why);
				return buf;
			}
		}
	}
	return buf;
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

/* A node not up yet says why, once per reason: a certificate refused
 * (wrong name, another CA, expired) must not look like silence. */
static void node_log_unreachable(struct node *n, const char *why)
{
	struct node_priv *p = priv(n);

	if (strncmp(p->unreachable, why, sizeof(p->unreachable) - 1) == 0)
		return;
	snprintf(p->unreachable, sizeof(p->unreachable), "%s", why);
	log_warn("node %s (%s) is down: %s", n->name, n->url, why);
}

struct node_ctx {
	struct node *node;
	node_done_fn done;
	void *data;
	char *body; /* owned, kept alive for the transfer (NULL for raw calls) */
};

static void node_call_done(struct http_result *res, void *data)
{
	struct node_ctx *c = data;
	/* A timeout says the node is slow (a busy sandboxd), not gone: only the
	 * health checks count those, DOWN_AFTER in a row. Any other transport
	 * failure (refused, no socket, reset) says it is gone. */
	if (res->status == 0 && !res->timed_out)
		node_mark_down(c->node, res->error ? res->error : "transport error");
	if (res->status == 0 && !c->node->up)
		node_log_unreachable(c->node, res->error ? res->error : "transport error");
	c->done(c->node, res, c->data);
	free(c->body);
	free(c);
}

static struct http_call *call_start(struct node *n, const char *label, const char *method, const char *path,
				    const char *ctype, const void *body, size_t len, double timeout, char *owned,
				    node_done_fn done, void *data)
{
	struct node_ctx *c = calloc(1, sizeof(*c));
	struct http_call *call;

	if (!c) {
		free(owned);
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
	    .header_name = label ? "X-Warmpool-Label" : NULL,
	    .header_value = label,
	    .tls = ((struct node_priv *)n)->has_tls ? &((struct node_priv *)n)->tls : NULL,
	};
	call = transport(client, &o, node_call_done, c);
	if (!call) {
		free(owned);
		free(c);
	}
	return call;
}

void node_set_transport(node_transport_fn fn)
{
	transport = fn ? fn : http_call_start;
}

struct http_call *node_call(struct node *n, const char *method, const char *path, json_t *body, double timeout,
			    node_done_fn done, void *data)
{
	return node_call_label(n, NULL, method, path, body, timeout, done, data);
}

struct http_call *node_call_label(struct node *n, const char *label, const char *method, const char *path, json_t *body,
				  double timeout, node_done_fn done, void *data)
{
	char *text = NULL;

	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (!text)
			return NULL;
	}
	return call_start(n, label, method, path, NULL, text, text ? strlen(text) : 0, timeout, text, done, data);
}

struct http_call *node_call_raw(struct node *n, const char *label, const char *method, const char *path,
				const char *ctype, const void *body, size_t len, double timeout, node_done_fn done,
				void *data)
{
	return call_start(n, label, method, path, ctype, body, len, timeout, NULL, done, data);
}

static void sync_done(struct node *n, struct http_result *res, void *data)
{
	enum lease_sync how = (enum lease_sync)(intptr_t)data;
	json_t *j;

	priv(n)->syncing = false;
	if (priv(n)->retired)
		return;
	if (res->status != 200 || !(j = json_parse_reply(res->body, res->body_len))) {
		if (res->status)
			log_warn("node %s: slot list: HTTP %d", n->name, res->status);
		return; /* not synced: the next health check tries again */
	}
	if (n->up) {
		if (how != LEASE_SYNC_PERIODIC) {
			n->synced = true;
			priv(n)->ever_synced = true;
		}
		leases_node_sync(n, json_object_get(j, "slots"), how);
		pools_kick_all();
	}
	json_decref(j);
}

/* Read the node's slots back: when it comes up (the first time, or back
 * after being down), until that worked, then every RECONCILE_S (lease.h
 * says what each does). One at a time. */
static void node_sync(struct node *n)
{
	struct node_priv *p = priv(n);
	enum lease_sync how = !p->ever_synced ? LEASE_SYNC_FIRST : !n->synced ? LEASE_SYNC_RETURN : LEASE_SYNC_PERIODIC;

	if (p->syncing)
		return;
	p->synced_at = poold_now(loop);
	p->syncing = node_call(n, "GET", "/v1/slots", NULL, 0, sync_done, (void *)(intptr_t)how) != NULL;
}

static void info_done(struct node *n, struct http_result *res, void *data)
{
	json_t *j = NULL;

	n->checking = false;
	if (priv(n)->retired)
		return;
	if (res->status == 200)
		j = json_parse_reply(res->body, res->body_len);
	if (!j) {
		if ((res->status != 0 || res->timed_out) && ++n->failures >= DOWN_AFTER)
			node_mark_down(n, res->status ? "bad answer to GET /v1/info" : "GET /v1/info timed out");
		return;
	}
	n->failures = 0;
	n->last_ok = poold_now(loop);
	json_decref(n->info);
	n->info = j;
	n->capacity = (size_t)json_integer_value(json_object_get(j, "capacity"));
	n->slots = (size_t)json_integer_value(json_object_get(json_object_get(j, "slots"), "total"));
	if (!n->up) {
		n->up = true;
		priv(n)->unreachable[0] = '\0';
		log_info("node %s (%s) is up: cgroup %s, capacity %zu, %zu slots", n->name, n->url,
			 json_string_value(json_object_get(j, "cgroup")) ?: "?", n->capacity, n->slots);
		node_sync(n);
	} else if (!n->synced || poold_now(loop) - priv(n)->synced_at >= RECONCILE_S) {
		node_sync(n);
	}
}

static void check_node(struct node *n)
{
	if (n->checking)
		return;
	n->checking = true;
	if (!node_call(n, "GET", "/v1/info", NULL, (double)cfg->node_timeout_ms / 1000.0, info_done, NULL))
		n->checking = false;
}

void node_slots_add(struct node *n, size_t k)
{
	n->slots += k;
}

void node_slots_sub(struct node *n, size_t k)
{
	n->slots -= k < n->slots ? k : n->slots;
}

static void destroy_done(struct node *n, struct http_result *res, void *data)
{
	if (res->status != 202 && res->status != 404 && res->status != 0)
		log_warn("node %s: destroying a slot: HTTP %d", n->name, res->status);
}

void node_destroy_slot(struct node *n, const char *slot_id)
{
	char path[64];

	snprintf(path, sizeof(path), "/v1/slots/%s", slot_id);
	node_slots_sub(n, 1);
	node_call(n, "DELETE", path, NULL, 0, destroy_done, NULL);
}

void node_running_add(struct node *n)
{
	n->running++;
}

bool node_busy(const struct http_result *res)
{
	if (res->status != 503 || !res->body)
		return false;
	cleanup_json json_t *j = json_parse_reply(res->body, res->body_len);
	const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	return code && strcmp(code, "NodeBusy") == 0;
}

bool node_running_sub(struct node *n)
{
	return n->running && !--n->running;
}

void nodes_check_all(void)
{
	for (struct node *n = nodes; n; n = n->next)
		check_node(n);
}

static void health_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	nodes_check_all();
}

static void node_append(struct node *n)
{
	struct node **tail = &nodes;
	while (*tail)
		tail = &(*tail)->next;
	n->next = NULL;
	*tail = n;
}

static struct node_priv *retired_take(const char *name)
{
	for (struct node_priv **pp = &retired; *pp; pp = &(*pp)->next_retired) {
		if (strcmp((*pp)->pub.name, name) == 0) {
			struct node_priv *p = *pp;
			*pp = p->next_retired;
			p->next_retired = NULL;
			return p;
		}
	}
	return NULL;
}

struct node *node_discovered(const char *name, const char *url, const struct http_tls_opts *tls, const void *owner,
			     bool *back)
{
	struct node_priv *p;

	if ((p = retired_take(name))) {
		p->retired = false;
		p->pub.failures = 0;
		*back = true;
	} else {
		p = calloc(1, sizeof(*p));
		if (!p || !(p->pub.name = strdup(name)) || !(p->pub.url = strdup(url))) {
			if (p)
				free(p->pub.name);
			free(p);
			return NULL;
		}
		p->owner = owner;
		if (tls) {
			p->tls = *tls;
			p->has_tls = true;
		}
		*back = false;
	}
	node_append(&p->pub);
	check_node(&p->pub);
	return &p->pub;
}

void node_retire(struct node *n, const char *why)
{
	struct node **pp = &nodes;
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	node_mark_down(n, why);
	*pp = n->next;
	n->next = NULL;
	priv(n)->retired = true;
	priv(n)->next_retired = retired;
	retired = priv(n);
	json_decref(n->info);
	n->info = NULL;
	n->capacity = n->slots = 0;
}

const void *node_owner(const struct node *n)
{
	return ((const struct node_priv *)n)->owner;
}

int nodes_init(struct ev_loop *l, struct http_client *hc, const struct psettings *st, struct wp_error *err)
{
	loop = l;
	client = hc;
	cfg = st;
	for (const struct node_conf *nc = st->nodes; nc; nc = nc->next) {
		if (strncmp(nc->url, "dns:", 4) == 0) {
			if (discovery_add(loop, nc, err) < 0)
				return -ENOMEM;
			continue;
		}
		struct node_priv *p = calloc(1, sizeof(*p));
		if (!p || !(p->pub.name = strdup(nc->name)) || !(p->pub.url = strdup(nc->url)))
			return wp_error_set(err, ENOMEM, "out of memory");
		if (nc->tls_ca) { /* settings.c: every https:// node has its CA, certificate and key */
			p->tls = (struct http_tls_opts){
			    .ca = nc->tls_ca, .cert = nc->tls_cert, .key = nc->tls_key, .tls13_only = true};
			p->has_tls = true;
		}
		node_append(&p->pub);
	}
	ev_timer_init(&health_timer, health_cb, 0.0, (double)st->health_interval_ms / 1000.0);
	ev_timer_start(loop, &health_timer);
	return 0;
}

void nodes_stop(void)
{
	ev_timer_stop(loop, &health_timer);
	discovery_stop();
}
