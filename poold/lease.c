/* lease.c — see lease.h. */
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "clock.h"
#include "log.h"
#include "node.h"
#include "ops.h"
#include "pool.h"
#include "telemetry.h"

#define BUCKETS 4096

static struct ev_loop *loop;
static const struct psettings *cfg;
static struct lease *table[BUCKETS];
static struct lease *all;
static size_t n_leases;
static ev_timer reaper;

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

const char *lease_state_name(enum lease_state st)
{
	static const char *const names[] = {"acquiring", "active", "ending", "lost"};
	return names[st];
}

bool lease_ident_valid(const char *ident)
{
	size_t n = strlen(ident);
	if (n < 1 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)ident[i] < 0x21 || (unsigned char)ident[i] > 0x7e)
			return false;
	return true;
}

static char *make_key(const struct pool *p, const char *ident)
{
	char *k = NULL;
	return asprintf(&k, "%s/%s", p->name, ident) < 0 ? NULL : k;
}

static struct lease *find_key(const char *key)
{
	for (struct lease *l = table[hash(key)]; l; l = l->hnext)
		if (strcmp(l->key, key) == 0)
			return l;
	return NULL;
}

struct lease *lease_find(struct pool *p, const char *ident)
{
	cleanup_free char *key = make_key(p, ident);
	return key ? find_key(key) : NULL;
}

struct lease *lease_first(void)
{
	return all;
}

size_t lease_count(void)
{
	return n_leases;
}

static struct lease *lease_new(struct pool *p, const char *key)
{
	struct lease *l = calloc(1, sizeof(*l));
	if (!l || !(l->key = strdup(key))) {
		free(l);
		return NULL;
	}
	l->ident = strchr(l->key, '/') + 1;
	l->pool = p;
	l->created = l->last_used = poold_now(loop);
	unsigned h = hash(key);
	l->hnext = table[h];
	table[h] = l;
	l->next = all;
	all = l;
	n_leases++;
	return l;
}

/* A lease counts in its node's `running` while one of its operations is in
 * flight (and during the label PATCH of a lease whose request went away);
 * at zero, pools may refill (pool.c waits for a quiet node). */
static void running_on(struct lease *l, struct node *n)
{
	if (!l->busy_on && n) {
		l->busy_on = n;
		node_running_add(n);
	}
}

static void not_running(struct lease *l)
{
	struct node *n = l->busy_on;

	if (!n)
		return;
	l->busy_on = NULL;
	if (node_running_sub(n))
		pools_kick_all();
}

static void lease_free(struct lease *l)
{
	not_running(l);
	for (struct lease **pp = &table[hash(l->key)]; *pp; pp = &(*pp)->hnext)
		if (*pp == l) {
			*pp = l->hnext;
			break;
		}
	for (struct lease **pp = &all; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	n_leases--;
	free(l->key);
	free(l);
}

/* Pool accounting: a lease counts in its pool's n_leased from the moment it
 * holds a slot until it ends or is lost, exactly once. */
static void count_in(struct lease *l)
{
	if (!l->counted) {
		l->counted = true;
		pool_leased_add(l->pool);
	}
}

static void count_out(struct lease *l)
{
	if (l->counted) {
		l->counted = false;
		pool_leased_sub(l->pool);
	}
}

static void fail_queue(struct lease *l, int status, const char *code, const char *msg, double retry_after)
{
	while (l->head) {
		struct lease_op *op = l->head;
		l->head = op->next;
		l->queued--;
		op->fail(op, status, code, msg, retry_after);
	}
	l->tail = NULL;
}

json_t *lease_to_json(const struct lease *l)
{
	double now = poold_now(loop);
	double idle_left = (double)l->pool->idle_timeout_ms / 1000.0 - (now - l->last_used);
	return json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:f, s:f, s:f, s:I, s:I, s:b}", "identifier", l->ident, "pool",
			 l->pool->name, "node", l->node ? l->node->name : NULL, "slot",
			 l->slot_id[0] ? l->slot_id : NULL, "state", lease_state_name(l->state), "created", l->created,
			 "last_used", l->last_used, "expires_in_s", idle_left > 0 ? idle_left : 0.0, "executions",
			 (json_int_t)l->runs, "queued", (json_int_t)l->queued, "busy", l->busy);
}

static void run_next(struct lease *l)
{
	if (l->busy || !l->head || l->state != LEASE_ACTIVE)
		return;
	struct lease_op *op = l->head;
	l->head = op->next;
	if (!l->head)
		l->tail = NULL;
	l->queued--;
	l->busy = true;
	l->last_used = poold_now(loop);
	running_on(l, l->node); /* already counted when it comes from label_done */
	op->start(l, op);
}

/* The lease is over and idle: destroy its slot, forget it, refill. */
static void lease_finish(struct lease *l)
{
	struct pool *p = l->pool;

	if (l->node && l->slot_id[0] && l->node->up)
		node_destroy_slot(l->node, l->slot_id);
	count_out(l);
	lease_free(l);
	pool_kick(p);
}

void lease_end(struct lease *l, const char *why)
{
	if (l->state == LEASE_ENDING)
		return;
	log_info("lease %s ended (%s, %lu executions, slot %s on %s)", l->key, why, l->executions,
		 l->slot_id[0] ? l->slot_id : "-", l->node ? l->node->name : "-");
	if (l->state == LEASE_LOST && !l->busy) {
		fail_queue(l, 410, "SessionEnded", "the session has ended", 0);
		lease_free(l);
		return;
	}
	bool acquiring = l->state == LEASE_ACQUIRING;
	l->state = LEASE_ENDING;
	fail_queue(l, 410, "SessionEnded", "the session has ended", 0);
	/* while acquiring, the pool or the label call still holds l: on_slot
	 * and label_done see ENDING and finish it */
	if (!l->busy && !acquiring)
		lease_finish(l);
}

void lease_op_done(struct lease *l)
{
	l->busy = false;
	not_running(l);
	l->last_used = poold_now(loop);
	l->executions++;
	if (l->state == LEASE_ENDING) {
		lease_finish(l);
		return;
	}
	if (l->state == LEASE_LOST && !l->head) {
		if (l->lost_told) /* this session was told: the next request starts afresh */
			lease_free(l);
		return; /* else the tombstone stays for the next request */
	}
	run_next(l);
}

void lease_fail_transport(struct lease *l, struct lease_op *op, const char *error)
{
	if (l->state == LEASE_LOST)
		l->lost_told = true;
	if (l->state == LEASE_LOST || (l->node && !l->node->up))
		op->fail(op, 410, "SessionLost",
			 "the node holding this session stopped answering; its state is gone. Release the "
			 "session or use a new identifier",
			 0);
	else
		op->fail(op, 502, "NodeError", error ? error : "the node failed", 0);
}

static void activate(struct lease *l)
{
	l->state = LEASE_ACTIVE;
	l->acquired_in = poold_now(loop) - l->created;
	telemetry_lease_wait(l->pool->name, l->acquired_in);
	l->last_used = poold_now(loop);
	log_info("lease %s → slot %s on %s (%.1f ms)", l->key, l->slot_id, l->node->name, l->acquired_in * 1000);
}

static void label_done(struct node *n, struct http_result *res, void *data)
{
	struct lease *l = data;

	if (l->state != LEASE_ACQUIRING || res->status != 200)
		not_running(l);
	if (l->state == LEASE_ENDING) { /* released while acquiring */
		lease_finish(l);
		return;
	}
	if (l->state == LEASE_LOST) {
		if (l->head)
			l->lost_told = true;
		fail_queue(l, 410, "SessionLost", "the node holding this session stopped answering", 0);
		if (l->lost_told && !l->busy)
			lease_free(l);
		return;
	}
	if (res->status != 200) {
		char msg[160];
		snprintf(msg, sizeof(msg), "could not label slot %s on node %s (HTTP %d)", l->slot_id, n->name,
			 res->status);
		log_error("lease %s: %s", l->key, msg);
		fail_queue(l, 502, "NodeError", msg, 0);
		l->state = LEASE_ENDING;
		lease_finish(l);
		return;
	}
	activate(l);
	run_next(l);
	if (!l->busy) /* its request went away meanwhile */
		not_running(l);
}

const char *lease_label_once(struct lease *l)
{
	if (!l->label_pending)
		return NULL;
	l->label_pending = false;
	return l->key;
}

struct http_call *lease_run(struct lease *l, json_t *body, double timeout, node_done_fn done, void *data)
{
	const char *label = lease_label_once(l);
	char path[64];

	l->label_in_run = label != NULL;
	snprintf(path, sizeof(path), "/v1/slots/%s/run", l->slot_id);
	return node_call_label(l->node, label, "POST", path, body, timeout, done, data);
}

void lease_run_refused(struct lease *l)
{
	if (l->label_in_run)
		l->label_pending = true;
	l->label_in_run = false;
}

static void on_slot(struct pool *p, int err, struct node *n, const char *slot_id, void *data)
{
	struct lease *l = data;
	char path[64];

	if (err) {
		double retry = (double)cfg->queue_timeout_ms / 1000.0;
		if (err == -ETIMEDOUT)
			fail_queue(l, 503, "PoolExhausted", "every slot of the pool is leased; try again later", retry);
		else if (err == -ECANCELED)
			fail_queue(l, 503, "PoolUnavailable", "the pool is draining or poold is stopping", retry);
		else if (err == -ENODEV) {
			char msg[400];
			fail_queue(l, 503, "NoCapacity", node_no_host(p->language, msg, sizeof(msg)), retry);
		} else
			fail_queue(l, 503, "PoolUnavailable", "could not obtain a slot", retry);
		lease_free(l);
		return;
	}
	snprintf(l->slot_id, sizeof(l->slot_id), "%s", slot_id);
	l->node = n;
	count_in(l);
	if (l->state == LEASE_ENDING) {
		lease_finish(l);
		return;
	}
	if (l->head) {
		/* the first operation labels the slot itself (one round trip) */
		l->label_pending = true;
		activate(l);
		run_next(l);
		return;
	}
	/* its request went away while it waited for a slot: label it now, so
	 * that a poold restart finds the lease */
	snprintf(path, sizeof(path), "/v1/slots/%s", slot_id);
	running_on(l, n);
	node_call(n, "PATCH", path, json_pack("{s:s}", "label", l->key), 0, label_done, l);
}

void lease_submit(struct pool *p, const char *ident, struct lease_op *op)
{
	cleanup_free char *key = make_key(p, ident);
	struct lease *l = key ? find_key(key) : NULL;

	op->enqueued = poold_now(loop);
	op->next = NULL;
	if (l && l->state == LEASE_LOST) {
		op->fail(op, 410, "SessionLost",
			 "the node holding this session stopped answering; its state is gone (the next request "
			 "with this identifier starts a new session)",
			 0);
		if (!l->busy)
			lease_free(l);
		return;
	}
	if (l && l->state == LEASE_ENDING) {
		op->fail(op, 409, "SessionEnding", "the session is being released; retry in a moment", 1);
		return;
	}
	if (!l) {
		if (!op->create) {
			op->fail(op, 404, "SessionNotFound", "no session with this identifier in this pool", 0);
			return;
		}
		if (!key || !(l = lease_new(p, key))) {
			op->fail(op, 500, "InternalError", "out of memory", 0);
			return;
		}
		l->state = LEASE_ACQUIRING;
		pool_take(p, (double)cfg->queue_timeout_ms / 1000.0, on_slot, l);
	}
	if (l->queued >= cfg->session_queue) {
		op->fail(op, 429, "SessionQueueFull", "too many executions are waiting on this session", 1);
		return;
	}
	if (l->tail)
		l->tail->next = op;
	else
		l->head = op;
	l->tail = op;
	l->queued++;
	run_next(l);
}

void leases_node_down(struct node *n)
{
	for (struct lease *l = all, *next; l; l = next) {
		next = l->next;
		if (l->node != n || l->state == LEASE_LOST)
			continue;
		log_warn("lease %s lost with node %s", l->key, n->name);
		bool acquiring = l->state == LEASE_ACQUIRING; /* label_done still holds l */
		count_out(l);
		if (l->state == LEASE_ENDING && !l->busy) {
			lease_free(l);
			continue;
		}
		l->state = LEASE_LOST;
		l->last_used = poold_now(loop);
		if (l->head)
			l->lost_told = true;
		fail_queue(l, 410, "SessionLost", "the node holding this session stopped answering; its state is gone",
			   0);
		if (l->lost_told && !l->busy && !acquiring)
			lease_free(l); /* told once; the next request starts afresh */
	}
}

/* A lease that holds this slot now. A LOST lease does not: its entry is a
 * tombstone (the next request hears 410), its slot is to be destroyed. */
static bool slot_owned(struct node *n, const char *id)
{
	for (struct lease *l = all; l; l = l->next)
		if (l->node == n && l->state != LEASE_LOST && strcmp(l->slot_id, id) == 0)
			return true;
	return ops_judged_holds(n, id);
}

/* Never served anyone. sandboxd says so ("fresh"); one too old to say is
 * judged by its counters. */
static bool slot_json_fresh(json_t *s)
{
	json_t *f = json_object_get(s, "fresh");
	if (json_is_boolean(f))
		return json_is_true(f);
	return !json_is_string(json_object_get(s, "label")) && json_integer_value(json_object_get(s, "runs")) == 0 &&
	       json_integer_value(json_object_get(s, "execs")) == 0;
}

static void recover(struct pool *p, struct node *n, const char *id, const char *label, json_t *s)
{
	struct lease *l = lease_new(p, label);
	if (!l)
		return;
	snprintf(l->slot_id, sizeof(l->slot_id), "%s", id);
	l->node = n;
	l->state = LEASE_ACTIVE;
	l->recovered = true;
	l->created = json_real_value(json_object_get(s, "created"));
	l->last_used = json_real_value(json_object_get(s, "last_used"));
	if (l->last_used < l->created)
		l->last_used = poold_now(loop);
	l->runs = l->executions = (unsigned long)json_integer_value(json_object_get(s, "runs"));
	count_in(l);
}

void leases_node_sync(struct node *n, json_t *slots, enum lease_sync how)
{
	size_t i, adopted = 0, kept = 0, destroyed = 0;
	bool quiet = how == LEASE_SYNC_PERIODIC; /* says only what it changes */
	json_t *s;

	json_array_foreach (slots, i, s) {
		const char *id = json_string_value(json_object_get(s, "id"));
		const char *label = json_string_value(json_object_get(s, "label"));
		const char *state = json_string_value(json_object_get(s, "state"));
		const char *lang = json_string_value(json_object_get(s, "language"));
		if (!id || !state || !lang || strlen(id) != 16 || strcmp(state, "destroying") == 0 ||
		    strcmp(state, "creating") == 0 || slot_owned(n, id))
			continue;
		if (!label) {
			if (!slot_json_fresh(s)) {
				/* someone's state is in it: handing it out would put the
				 * next user in there */
				log_warn("node %s: slot %s is unlabelled but used (it ran code or held files); "
					 "destroying it instead of adopting it",
					 n->name, id);
				node_destroy_slot(n, id);
				destroyed++;
				continue;
			}
			if (how == LEASE_SYNC_PERIODIC) /* a pool's own, or being handed to a lease */
				continue;
			struct pool *p = pool_for_slot(lang, json_is_true(json_object_get(s, "interpreter")));
			if (p && !p->draining) {
				pool_adopt(p, n, id);
				adopted++;
			}
			continue;
		}
		const char *slash = strchr(label, '/');
		cleanup_free char *pname = slash ? strndup(label, (size_t)(slash - label)) : NULL;
		struct pool *p = pname ? pool_find(pname) : NULL;
		if (!p || !lease_ident_valid(slash + 1)) {
			if (!quiet)
				log_warn("node %s: slot %s has label `%s` of no pool of ours; left alone", n->name, id,
					 label);
			continue;
		}
		if (find_key(label)) {
			/* a tombstone (lost with the node), or a newer lease elsewhere */
			log_warn("node %s: slot %s (%s) superseded or lost; destroying it", n->name, id, label);
			node_destroy_slot(n, id);
			destroyed++;
			continue;
		}
		if (how != LEASE_SYNC_FIRST) {
			/* poold has known this node all along: a labelled slot it has no
			 * lease for was lost with the node (and maybe released or told
			 * since), or its DELETE went astray. Nobody will use it again. */
			log_warn("node %s: slot %s (%s) belongs to no session of ours (lost with the node, or "
				 "released); destroying it",
				 n->name, id, label);
			node_destroy_slot(n, id);
			destroyed++;
			continue;
		}
		recover(p, n, id, label, s);
		kept++;
	}
	if (!quiet || destroyed)
		log_info("node %s synced (%s): %zu leases recovered, %zu ready slots adopted, %zu slots destroyed",
			 n->name,
			 how == LEASE_SYNC_FIRST    ? "first"
			 : how == LEASE_SYNC_RETURN ? "back up"
						    : "periodic",
			 kept, adopted, destroyed);
}

void leases_reap(void)
{
	double now = poold_now(loop);
	for (struct lease *l = all, *next; l; l = next) {
		next = l->next;
		double idle = (double)l->pool->idle_timeout_ms / 1000.0;
		if (l->state == LEASE_LOST) {
			if (!l->busy && now - l->last_used > idle)
				lease_free(l);
			continue;
		}
		if (l->state != LEASE_ACTIVE)
			continue;
		if (!l->busy && !l->head && now - l->last_used > idle)
			lease_end(l, "idle timeout");
		else if (now - l->created > (double)l->pool->max_lifetime_ms / 1000.0)
			lease_end(l, "max lifetime");
	}
}

static void reap_cb(struct ev_loop *lp, ev_timer *w, int revents)
{
	leases_reap();
}

int leases_init(struct ev_loop *l, const struct psettings *st)
{
	loop = l;
	cfg = st;
	ev_timer_init(&reaper, reap_cb, 1.0, 1.0);
	ev_timer_start(loop, &reaper);
	return 0;
}

bool leases_idle(void)
{
	for (struct lease *l = all; l; l = l->next)
		if (l->busy)
			return false;
	return true;
}
