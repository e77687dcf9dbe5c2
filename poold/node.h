/* node.h — the sandboxd instances poold drives. Each is health-checked on a
 * timer (GET /v1/info); a node that fails twice in a row, or refuses a
 * connection, is down: its sessions are lost (lease.c answers 410) and no
 * lease goes there until it answers again. When a node comes up (at start
 * too) its slot list is read back, and again every 30 s while it is up: the
 * first time, labelled slots become leases again (a restarted poold keeps
 * its sessions); after the node was down, the labelled slots of the lost
 * sessions are destroyed; fresh unlabelled slots go back to their pools,
 * used ones are destroyed (lease.h, enum lease_sync). */
#ifndef POOLD_NODE_H
#define POOLD_NODE_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>

#include "http_client.h"
#include "settings.h"

struct node {
	char *name;
	char *url;
	bool up;
	bool synced;  /* its slot list was read since it came up */
	int failures; /* consecutive failed checks */
	double last_ok;
	json_t *info; /* last GET /v1/info */
	size_t capacity;
	size_t slots; /* total slots it holds (from info, adjusted as we go: node_slots_*) */
	bool checking;
	size_t running; /* session operations poold has in flight on it (node_running_*) */
	struct node *next;
};

typedef void (*node_done_fn)(struct node *n, struct http_result *res, void *data);

int nodes_init(struct ev_loop *loop, struct http_client *hc, const struct psettings *st, struct wp_error *err);
void nodes_stop(void);
struct node *node_first(void);
struct node *node_find(const char *name);
size_t nodes_up(void);
bool node_has_language(const struct node *n, const char *language);
/* "no node that is up can host language L", and the reason of the first
 * node that is up and has L configured but cannot run it, from its
 * /v1/info: " (node NAME: its compile line's -fuse-ld=gold needs ld.gold,
 * …)". Written into buf, which it returns: the NoCapacity answers and the
 * warm warning. */
const char *node_no_host(const char *language, char *buf, size_t len);
/* A call to the node. `body` is stolen (may be NULL). timeout 0 = the
 * configured node timeout. A transport failure counts against the node. */
struct http_call *node_call(struct node *n, const char *method, const char *path, json_t *body, double timeout,
			    node_done_fn done, void *data);
/* The same, labelling the slot on the way (X-Warmpool-Label; NULL: none):
 * a lease's first operation labels its slot without a PATCH of its own. */
struct http_call *node_call_label(struct node *n, const char *label, const char *method, const char *path, json_t *body,
				  double timeout, node_done_fn done, void *data);
/* The node refused a run because its run admission is full (503 with
 * error code NodeBusy): the caller may try again shortly. */
bool node_busy(const struct http_result *res);
/* Like node_call_label with a raw body that must outlive the call. */
struct http_call *node_call_raw(struct node *n, const char *label, const char *method, const char *path,
				const char *ctype, const void *body, size_t len, double timeout, node_done_fn done,
				void *data);
/* What carries node calls: http_call_start, unless a unit test puts a fake
 * node in its place (it answers through `done` later, as HTTP would). */
typedef struct http_call *(*node_transport_fn)(struct http_client *c, const struct http_call_opts *o,
					       http_call_done_fn done, void *data);
void node_set_transport(node_transport_fn fn);
/* Slots the node holds as poold counts them between health checks (each
 * check sets the node's own figure): up by the slots a create asks for,
 * down by those it did not make and by every slot destroyed. */
void node_slots_add(struct node *n, size_t k);
void node_slots_sub(struct node *n, size_t k);
/* DELETE /v1/slots/<id> (the answer is only logged) and one slot less. */
void node_destroy_slot(struct node *n, const char *slot_id);
/* Session operations in flight on the node (lease.c: one per busy lease).
 * Pools refill a node once it is quiet: node_running_sub returns true when
 * the count reached zero. */
void node_running_add(struct node *n);
bool node_running_sub(struct node *n);
/* For discovery.c. node_discovered: the node named name (owned by the DNS
 * group `owner`), added and checked at once, or the one retired under that
 * name back (*back true); NULL when out of memory. node_retire: down (its
 * sessions are lost) and forgotten: unlisted, unchecked, kept in memory
 * for what still points at it. */
struct node *node_discovered(const char *name, const char *url, const struct http_tls_opts *tls, const void *owner,
			     bool *back);
void node_retire(struct node *n, const char *why);
const void *node_owner(const struct node *n);
/* The health timer's pass: GET /v1/info of every node not being checked
 * (and the slot list read back when due). */
void nodes_check_all(void);
/* Mark down now (a call saw it fail). */
void node_mark_down(struct node *n, const char *why);

#endif
