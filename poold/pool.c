/* pool.c — see pool.h. All sizing decisions happen in pool_kick(), called
 * from a 1 s timer and whenever something changes; request paths only take
 * what is there or queue. */
#include "pool.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "clock.h"
#include "json.h"
#include "lease.h"
#include "log.h"
#include "node.h"

#define BACKOFF_MIN    1.0
#define BACKOFF_MAX    60.0
#define CREATE_BATCH   8
#define CREATE_PER_CPU 16
#define CREATE_TIMEOUT 60.0
#define REFILL_HOLD    1.0
#define REFILL_GAP     0.25

static struct ev_loop *loop;
static const struct psettings *cfg;
static struct pool *pools;
static ev_timer tick;
static bool stopping;

/* A slot being created for a pool: for warmth, or for one waiting lease. */
struct create_ctx {
	struct pool *pool;
	size_t count;
	bool direct;
};

/* A deferred answer to pool_take (never called synchronously). */
struct handoff {
	struct pool *pool;
	pool_take_fn fn;
	void *data;
	int err;
	struct node *node;
	char id[17];
	ev_timer t;
};

struct pool *pool_first(void)
{
	return pools;
}

struct pool *pool_find(const char *name)
{
	for (struct pool *p = pools; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

struct pool *pool_for_language(const char *language)
{
	for (struct pool *p = pools; p; p = p->next)
		if (strcmp(p->language, language) == 0)
			return p;
	return NULL;
}

struct pool *pool_for_slot(const char *language, bool interpreter)
{
	for (struct pool *p = pools; p; p = p->next)
		if (strcmp(p->language, language) == 0 && p->stateful == interpreter)
			return p;
	return NULL;
}

struct pool *pool_for_judged(const char *language)
{
	for (struct pool *p = pools; p; p = p->next)
		if (strcmp(p->language, language) == 0 && !p->stateful)
			return p;
	return pool_for_language(language);
}

bool pool_is_shell(const struct pool *p)
{
	return strcmp(p->language, "shell") == 0;
}

size_t pool_total(const struct pool *p)
{
	return p->n_ready + p->n_creating + p->n_creating_direct + p->n_leased + p->n_handoff + p->n_running;
}

bool pool_language_up(const struct pool *p)
{
	for (struct node *n = node_first(); n; n = n->next)
		if (n->up && n->synced && node_has_language(n, p->language))
			return true;
	return false;
}

size_t pool_node_run_slots(const struct node *n)
{
	json_t *runs = json_object_get(n->info, "runs");
	json_int_t k = json_integer_value(json_object_get(runs, "slots"));
	return k > 0 ? (size_t)k : 1; /* a node of before run admission: one at a time is safe */
}

/* The warm slots other pools of the node still miss: reserved for them. */
static size_t reserved_by_others(const struct pool *p, const struct node *n)
{
	size_t reserved = 0;
	for (struct pool *q = pools; q; q = q->next) {
		size_t have = q->n_ready + q->n_creating;
		if (q != p && !q->draining && q->warm > have && node_has_language(n, q->language))
			reserved += q->warm - have;
	}
	return reserved;
}

/* Free slots of n that p may take. Within its warm, a pool takes any free
 * slot (that is its reservation); beyond (slots for waiting leases or runs),
 * not those other pools' warm still needs: one pool cannot starve the
 * others' warm slots. */
static size_t room(const struct pool *p, const struct node *n, bool beyond_warm)
{
	size_t free_slots = n->slots < n->capacity ? n->capacity - n->slots : 0;
	size_t reserved = beyond_warm ? reserved_by_others(p, n) : 0;
	return free_slots > reserved ? free_slots - reserved : 0;
}

/* A reason poold cannot reach warm or serve a waiter, once per cause: in
 * last_error (GET /v1/pools, /readyz), the log and the short_events count. */
static void note_short(struct pool *p, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note_short(struct pool *p, int kind, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (p->last_error[0] && !p->short_error)
		return; /* a create failure says more */
	snprintf(p->last_error, sizeof(p->last_error), "%s", why);
	if (p->short_error && p->short_kind == kind)
		return; /* the same cause (its numbers change): logged once */
	p->short_error = true;
	p->short_kind = kind;
	p->short_events++;
	log_warn("pool %s: %s", p->name, why);
}

static void clear_short(struct pool *p)
{
	if (!p->short_error)
		return;
	log_info("pool %s: has room again (was: %s)", p->name, p->last_error);
	p->short_error = false;
	p->last_error[0] = '\0';
}

/* Why place() finds no node, for note_short. */
static void describe_full(const struct pool *p, bool beyond_warm, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (struct node *n = node_first(); n && off < len; n = n->next) {
		if (!n->up || !node_has_language(n, p->language))
			continue;
		size_t reserved = beyond_warm ? reserved_by_others(p, n) : 0;
		int k = snprintf(buf + off, len - off, "%snode %s holds %zu of its %zu slots%s", off ? "; " : "",
				 n->name, n->slots, n->capacity, reserved ? "" : " (capacity)");
		if (k > 0)
			off += (size_t)k;
		if (reserved && off < len) {
			k = snprintf(buf + off, len - off, ", %zu of the rest reserved for other pools' warm",
				     reserved);
			if (k > 0)
				off += (size_t)k;
		}
	}
}

/* The judged runs the nodes with the pool's language start at once (their
 * run_slots): of those up, or of those up and synced. */
static size_t pool_run_slots(const struct pool *p, bool synced)
{
	size_t runs = 0;
	for (struct node *n = node_first(); n; n = n->next)
		if (n->up && (n->synced || !synced) && node_has_language(n, p->language))
			runs += pool_node_run_slots(n);
	return runs;
}

static void auto_size(struct pool *p)
{
	size_t cap = 0;

	if (!p->warm_auto && !p->max_auto)
		return;
	for (struct node *n = node_first(); n; n = n->next)
		if (n->up && node_has_language(n, p->language))
			cap += n->capacity;
	if (!cap)
		return; /* no node yet: keep the last sizes */
	if (p->max_auto)
		p->max = cap;
	if (p->warm_auto) {
		size_t runs = pool_run_slots(p, false), share = cap * p->warm_pct / 100;
		size_t want = share > runs ? share : runs;
		p->warm = want < p->max ? want : p->max;
	}
}

/* Judged submissions waiting in any pool's fair queue: a burst is being
 * worked off (every run the nodes can start is going). */
static bool judged_backlog(void)
{
	for (const struct pool *q = pools; q; q = q->next)
		if (q->n_judge_queued)
			return true;
	return false;
}

/* The ready slots the pool makes up to now. A warm = N% pool keeps its
 * share beyond auto (its reserve) for a burst: the burst's submissions
 * take the slots made before it, on idle CPU. While judged submissions
 * wait in the queue it makes only its auto part (one per run its nodes
 * start at once), and the rest once none waits: made during the burst,
 * the reserve's slots would take CPU from its runs (a Python slot's
 * fork-server is ~20 ms of CPU) and serve nobody sooner. Submissions one
 * after another (none waiting) are refilled as they come. */
static uint64_t warm_now(const struct pool *p)
{
	if (p->warm_pct && judged_backlog()) {
		size_t runs = pool_run_slots(p, false);
		return runs < p->warm ? runs : p->warm;
	}
	return p->warm;
}

static void handoff_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct handoff *h = w->data;
	if (!h->err)
		h->pool->n_handoff--; /* the lease counts it from now on (or frees it) */
	h->fn(h->pool, h->err, h->node, h->err ? NULL : h->id, h->data);
	free(h);
}

static void handoff(struct pool *p, pool_take_fn fn, void *data, int err, struct node *n, const char *id)
{
	struct handoff *h = calloc(1, sizeof(*h));
	if (!h) {
		fn(p, -ENOMEM, NULL, NULL, data); /* out of memory: synchronous is the lesser evil */
		return;
	}
	*h = (struct handoff){.pool = p, .fn = fn, .data = data, .err = err, .node = n};
	if (id)
		snprintf(h->id, sizeof(h->id), "%s", id);
	if (!err)
		p->n_handoff++; /* in pool_total until the lease counts it */
	ev_timer_init(&h->t, handoff_cb, 0, 0);
	h->t.data = h;
	ev_timer_start(loop, &h->t);
}

/* The least loaded node that is up, synced, has the language and room. */
static struct node *place(const struct pool *p, bool beyond_warm)
{
	struct node *best = NULL;
	double best_load = 2;
	for (struct node *n = node_first(); n; n = n->next) {
		if (!n->up || !n->synced || !node_has_language(n, p->language) || !room(p, n, beyond_warm))
			continue;
		double load = n->capacity ? (double)n->slots / (double)n->capacity : 1;
		if (load < best_load) {
			best = n;
			best_load = load;
		}
	}
	return best;
}

static void ready_push(struct pool *p, struct node *n, const char *id)
{
	struct ready_slot *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->node = n;
	r->since = poold_now(loop);
	r->next = p->ready;
	p->ready = r;
	p->n_ready++;
}

enum ready_end { READY_OLDEST, READY_NEWEST };

/* A ready slot on the least loaded node (spreads sessions): to be used, the
 * one ready the longest (READY_OLDEST: its pre-started helpers had the most
 * idle CPU to warm up, e.g. a Java compile server; a slot made in a burst
 * has not), to be destroyed above `warm`, the newest. */
static struct ready_slot *ready_pop(struct pool *p, enum ready_end end)
{
	struct ready_slot **best = NULL;
	double best_load = 2;
	for (struct ready_slot **rp = &p->ready; *rp; rp = &(*rp)->next) {
		struct node *n = (*rp)->node;
		double load = n->capacity ? (double)n->slots / (double)n->capacity : 1;
		if (!n->up || load > best_load)
			continue;
		if (load < best_load || (best && (end == READY_OLDEST ? (*rp)->since <= (*best)->since
								      : (*rp)->since > (*best)->since))) {
			best = rp;
			best_load = load;
		}
	}
	if (!best)
		return NULL;
	struct ready_slot *r = *best;
	*best = r->next;
	p->n_ready--;
	return r;
}

static void create_failed(struct pool *p, const char *why)
{
	p->create_failures++;
	p->backoff = p->backoff ? fmin(p->backoff * 2, BACKOFF_MAX) : BACKOFF_MIN;
	p->retry_at = poold_now(loop) + p->backoff;
	p->short_error = false;
	if (strcmp(p->last_error, why) != 0) {
		log_error("pool %s: cannot create %s slots: %s (retrying with back-off)", p->name, p->language, why);
		snprintf(p->last_error, sizeof(p->last_error), "%s", why);
	}
}

static void waiter_serve(struct pool *p, struct node *n, const char *id);

static void create_done(struct node *n, struct http_result *res, void *data)
{
	struct create_ctx *c = data;
	struct pool *p = c->pool;
	json_t *j = NULL, *slots, *s;
	size_t i, got = 0;

	if (c->direct)
		p->n_creating_direct -= c->count;
	else
		p->n_creating -= c->count;
	/* parsed whatever the status: a refusal's error message says why */
	if ((j = json_parse_reply(res->body, res->body_len)) && res->status == 201 &&
	    json_is_array(slots = json_object_get(j, "slots"))) {
		json_array_foreach (slots, i, s) {
			const char *id = json_string_value(json_object_get(s, "id"));
			if (!id || strlen(id) != 16)
				continue;
			got++;
			p->created++;
			if (stopping)
				continue;
			if (p->waiters)
				waiter_serve(p, n, id);
			else
				pool_adopt(p, n, id); /* a sync may have seen it first */
		}
	}
	if (got == c->count) {
		if (p->backoff)
			log_info("pool %s: slot creation works again", p->name);
		p->backoff = 0;
		if (!p->short_error)
			p->last_error[0] = '\0';
	} else {
		char why[200];
		/* the slots it did not make are no longer counted on the node
		 * (else each failure takes room until the next health check) */
		node_slots_sub(n, got < c->count ? c->count - got : 0);
		json_t *e = j ? json_object_get(json_object_get(j, "error"), "message") : NULL;
		snprintf(why, sizeof(why), "node %s: %s", n->name,
			 res->status == 0 ? (res->error ?: "unreachable")
			 : e		  ? json_string_value(e)
					  : "unexpected answer");
		create_failed(p, why);
	}
	json_decref(j);
	free(c);
	if (!stopping)
		pool_kick(p);
}

static bool create(struct pool *p, size_t count, bool direct)
{
	struct node *n = place(p, direct);
	struct create_ctx *c;

	if (!n)
		return false;
	if (count > room(p, n, direct))
		count = room(p, n, direct);
	if (!(c = calloc(1, sizeof(*c))))
		return false;
	*c = (struct create_ctx){.pool = p, .count = count, .direct = direct};
	json_t *body = json_pack("{s:s, s:I, s:b}", "language", p->language, "count", (json_int_t)count, "wait", 1);
	if (p->stateful)
		json_object_set_new(body, "interpreter", json_true());
	if (!node_call(n, "POST", "/v1/slots", body, CREATE_TIMEOUT, create_done, c)) {
		free(c);
		return false;
	}
	node_slots_add(n, count); /* until the next health check says otherwise */
	if (direct)
		p->n_creating_direct += count;
	else
		p->n_creating += count;
	return true;
}

static void waiter_serve(struct pool *p, struct node *n, const char *id)
{
	struct pool_waiter *w = p->waiters;
	/* the lease got its slot now: the gap to the next (refill_now,
	 * pool_take) counts from here, so that a lease slowed by an on-demand
	 * creation (a Python slot is ready once its fork-server is) does not
	 * start a new hold in the middle of a stream of leases */
	p->last_take = ev_now(loop);
	p->waiters = w->next;
	if (!p->waiters)
		p->waiters_tail = &p->waiters;
	p->n_waiting--;
	handoff(p, w->fn, w->data, 0, n, id);
	free(w);
}

/* Slots a pool creates for warmth at once: CREATE_PER_CPU per
 * judged run the nodes with its language start at once (their run_slots:
 * their CPUs by default). A slot's set-up is CPU work in the slot's own
 * processes (namespaces, mounts, a pre-started interpreter): more in flight
 * than that only queues on the CPUs. */
static size_t create_inflight_max(const struct pool *p)
{
	size_t cpus = pool_run_slots(p, true);
	return CREATE_PER_CPU * (cpus ? cpus : 1);
}

/* Warmth is background work. After a burst of leases starts (pool_take),
 * the refill waits while leases keep arriving (less than REFILL_GAP since
 * the last) or the node has a session of poold's acquiring a slot or
 * running an operation (lease.c counts them in node->running), and at most
 * REFILL_HOLD after the burst's first lease: neither a new lease's first
 * run nor a burst of first runs (agents starting sessions) share the node
 * with slot creations for the next burst. A lease that finds no ready slot
 * never waits for this: it creates on demand (above). A judged run
 * (pool_take_judged) with more of the pool's submissions queued behind it
 * starts no hold: each takes a fresh slot, so the slots of the next ones
 * are made while it runs; a lone one holds the refill until it gives its
 * slot back (lone_until), so that it does not share the node with its own
 * refill. */
static bool refill_now(const struct pool *p, double now)
{
	if (p->lone_until > now)
		return false; /* a lone judged run goes on (pool_take_judged) */
	if (!p->refill_due || now >= p->refill_due)
		return true;
	if (now - p->last_take < REFILL_GAP)
		return false;
	struct node *n = place(p, false);
	return n && !n->running;
}

/* When a held refill must be looked at again without a kick: the end of
 * the lease gap (a quiet node then kicks nobody), else the hold's end. */
static void refill_arm(struct pool *p, double now)
{
	double gap_end = p->last_take + REFILL_GAP;
	double at = gap_end > now ? fmin(gap_end, p->refill_due) : p->refill_due;
	/* a one-shot timer that fired once must be re-armed, or it fires
	 * again at once */
	ev_timer_stop(loop, &p->refill);
	ev_timer_set(&p->refill, at > now ? at - now : 0, 0);
	ev_timer_start(loop, &p->refill);
}

void pool_kick(struct pool *p)
{
	double now = poold_now(loop);

	if (stopping)
		return;
	auto_size(p);
	/* expired waiters: exhausted */
	for (struct pool_waiter **wp = &p->waiters; *wp;) {
		struct pool_waiter *w = *wp;
		if (w->deadline > now) {
			wp = &w->next;
			continue;
		}
		*wp = w->next;
		p->n_waiting--;
		handoff(p, w->fn, w->data, -ETIMEDOUT, NULL, NULL);
		free(w);
	}
	p->waiters_tail = &p->waiters;
	while (*p->waiters_tail)
		p->waiters_tail = &(*p->waiters_tail)->next;

	/* ready slots to waiters */
	struct ready_slot *r;
	while (p->waiters && (r = ready_pop(p, READY_OLDEST))) {
		waiter_serve(p, r->node, r->id);
		free(r);
	}
	/* shrink: ready slots above warm go, and those beyond max (max lowered
	 * below ready + leased); leased ones never */
	while ((p->n_ready > p->warm || pool_total(p) > p->max) && !p->waiters && (r = ready_pop(p, READY_NEWEST))) {
		node_destroy_slot(r->node, r->id);
		free(r);
	}
	if (p->draining || now < p->retry_at)
		return;
	/* waiters with nothing on its way: create for them (under max) */
	char why[200];
	bool short_now = false;
	size_t pending = p->n_creating + p->n_creating_direct;
	if (p->n_waiting > pending && pool_total(p) < p->max) {
		size_t want = p->n_waiting - pending;
		if (want > p->max - pool_total(p))
			want = p->max - pool_total(p);
		if (want > CREATE_BATCH)
			want = CREATE_BATCH;
		if (!create(p, want, true) && pool_language_up(p)) {
			describe_full(p, true, why, sizeof(why));
			note_short(p, 1, "%zu waiting for a slot, no room on a node: %s (they wait in the queue)",
				   p->n_waiting, why);
			short_now = true;
		}
	}
	/* warmth */
	uint64_t warm = warm_now(p);
	size_t have = p->n_ready + p->n_creating;
	if (have >= warm)
		p->refill_due = 0;
	if (have < warm && pool_total(p) >= p->max && !p->n_waiting) {
		note_short(p, 2, "warm %llu not reached (%zu ready or coming): the pool is at its max of %llu slots",
			   (unsigned long long)warm, have, (unsigned long long)p->max);
		short_now = true;
	} else if (have < warm && pool_total(p) < p->max && refill_now(p, now)) {
		/* as many batches as the nodes' CPUs keep busy, not one per
		 * kick: one batch at a time (wait = true answers with its
		 * slowest slot) made a pool of Python slots warm at ~30/s */
		size_t cap = create_inflight_max(p);
		while (have < warm && pool_total(p) < p->max && p->n_creating < cap) {
			size_t want = warm - have;
			if (want > p->max - pool_total(p))
				want = p->max - pool_total(p);
			if (want > cap - p->n_creating)
				want = cap - p->n_creating;
			if (want > CREATE_BATCH)
				want = CREATE_BATCH;
			if (!create(p, want, false)) {
				if (pool_language_up(p)) {
					describe_full(p, false, why, sizeof(why));
					note_short(p, 3,
						   "warm %llu not reached (%zu ready or coming): no room on a node: %s",
						   (unsigned long long)warm, have, why);
					short_now = true;
				}
				break;
			}
			have = p->n_ready + p->n_creating;
		}
	}
	if (!short_now && (have >= warm || p->n_creating) && p->n_waiting <= pending)
		clear_short(p);
}

void pools_kick_all(void)
{
	for (struct pool *p = pools; p; p = p->next)
		pool_kick(p);
}

static void refill_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct pool *p = w->data;
	double now = poold_now(loop);

	pool_kick(p);
	if (p->refill_due > now) /* still held */
		refill_arm(p, now);
}

static void tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	pools_kick_all();
}

enum take_kind { TAKE_LEASE, TAKE_JUDGED_BUSY, TAKE_JUDGED_LONE };

static void take(struct pool *p, double timeout_s, enum take_kind kind, pool_take_fn fn, void *data)
{
	struct ready_slot *r;
	double now = poold_now(loop);

	if (stopping || p->draining) {
		handoff(p, fn, data, -ECANCELED, NULL, NULL);
		return;
	}
	/* Refill later (refill_now): a slot creation sent now would queue on
	 * the node ahead of this lease's label call and run. A hold starts
	 * with a burst's first lease (none for REFILL_GAP before it); leases
	 * within the burst, served ready or on demand, keep it: once it is
	 * over, a steady stream of leases is refilled as it takes, not one
	 * batch per hold. */
	if (kind == TAKE_LEASE) {
		if (now - p->last_take >= REFILL_GAP)
			p->refill_due = now + REFILL_HOLD;
		p->last_take = now;
		refill_arm(p, now);
	} else {
		/* a burst: refilled at once (a lone run's hold ends too) */
		p->lone_until = kind == TAKE_JUDGED_LONE ? now + REFILL_HOLD : 0;
	}
	if (!p->waiters && (r = ready_pop(p, READY_OLDEST))) {
		handoff(p, fn, data, 0, r->node, r->id);
		free(r);
		if (kind == TAKE_JUDGED_BUSY)
			pool_kick(p);
		return;
	}
	if (p->n_waiting >= cfg->max_queue) {
		handoff(p, fn, data, -ETIMEDOUT, NULL, NULL);
		return;
	}
	/* no node can host the language: say so now. A node that is full is
	 * no reason to refuse: the lease waits (up to its timeout) for room */
	if (!pool_language_up(p) && !p->n_creating && !p->n_creating_direct && !p->n_ready) {
		handoff(p, fn, data, -ENODEV, NULL, NULL);
		return;
	}
	struct pool_waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		handoff(p, fn, data, -ENOMEM, NULL, NULL);
		return;
	}
	*w = (struct pool_waiter){.fn = fn, .data = data, .deadline = poold_now(loop) + timeout_s};
	*p->waiters_tail = w;
	p->waiters_tail = &w->next;
	p->n_waiting++;
	pool_kick(p);
}

void pool_take(struct pool *p, double timeout_s, pool_take_fn fn, void *data)
{
	take(p, timeout_s, TAKE_LEASE, fn, data);
}

void pool_take_judged(struct pool *p, double timeout_s, pool_take_fn fn, void *data)
{
	take(p, timeout_s, p->n_judge_queued ? TAKE_JUDGED_BUSY : TAKE_JUDGED_LONE, fn, data);
}

bool pool_cancel(struct pool *p, pool_take_fn fn, void *data)
{
	for (struct pool_waiter **wp = &p->waiters; *wp; wp = &(*wp)->next) {
		struct pool_waiter *w = *wp;
		if (w->fn != fn || w->data != data)
			continue;
		*wp = w->next;
		if (p->waiters_tail == &w->next)
			p->waiters_tail = wp;
		p->n_waiting--;
		free(w);
		return true;
	}
	return false;
}

void pool_adopt(struct pool *p, struct node *n, const char *slot_id)
{
	for (struct ready_slot *r = p->ready; r; r = r->next)
		if (r->node == n && strcmp(r->id, slot_id) == 0)
			return;
	ready_push(p, n, slot_id);
}

void pools_node_down(struct node *n)
{
	for (struct pool *p = pools; p; p = p->next)
		for (struct ready_slot **rp = &p->ready; *rp;) {
			struct ready_slot *r = *rp;
			if (r->node != n) {
				rp = &r->next;
				continue;
			}
			*rp = r->next;
			p->n_ready--;
			free(r);
		}
}

void pool_leased_add(struct pool *p)
{
	p->n_leased++;
}

void pool_leased_sub(struct pool *p)
{
	if (p->n_leased)
		p->n_leased--;
}

void pool_judged_hold(struct pool *p)
{
	p->n_running++;
}

void pool_judged_return(struct pool *p, struct node *n, const char *slot_id, bool used)
{
	if (p->n_running)
		p->n_running--;
	p->lone_until = 0; /* its refill may go now */
	if (used || stopping || !n->up || p->draining)
		node_destroy_slot(n, slot_id);
	else
		ready_push(p, n, slot_id);
	/* a slot freed on the node is room for any pool */
	pools_kick_all();
}

bool pool_warm_warning(const struct pool *p, char *buf, size_t len)
{
	size_t cap = 0, warm_all = 0;

	for (struct node *n = node_first(); n; n = n->next)
		if (n->up && node_has_language(n, p->language))
			cap += n->capacity;
	if (!cap) {
		char why[400];
		snprintf(buf, len, "%s: warm %llu waits for one", node_no_host(p->language, why, sizeof(why)),
			 (unsigned long long)p->warm);
		return true;
	}
	for (struct pool *q = pools; q; q = q->next)
		warm_all += q->warm;
	if (warm_all > cap) {
		snprintf(
		    buf, len,
		    "warm %llu does not fit: the pools' warm slots add up to %zu, the nodes with %s hold %zu slots "
		    "(their capacity); poold keeps what fits and says why in last_error. Lower some pool's warm or "
		    "add capacity",
		    (unsigned long long)p->warm, warm_all, p->language, cap);
		return true;
	}
	return false;
}

void pool_set_auto(struct pool *p, bool warm_auto, unsigned warm_pct, bool max_auto)
{
	p->warm_auto = warm_auto;
	p->warm_pct = warm_auto ? warm_pct : 0;
	p->max_auto = max_auto;
	pool_kick(p);
}

void pool_resize(struct pool *p, uint64_t warm, uint64_t max)
{
	p->warm_auto = p->max_auto = false;
	p->warm_pct = 0;
	log_info("pool %s: warm %llu → %llu, max %llu → %llu", p->name, (unsigned long long)p->warm,
		 (unsigned long long)warm, (unsigned long long)p->max, (unsigned long long)max);
	p->warm = warm;
	p->max = max;
	p->retry_at = 0; /* an admin action deserves a fresh attempt */
	pool_kick(p);
}

void pool_set_timeouts(struct pool *p, uint64_t idle_timeout_ms, uint64_t max_lifetime_ms)
{
	p->idle_timeout_ms = idle_timeout_ms;
	p->max_lifetime_ms = max_lifetime_ms;
}

void pool_reload(struct pool *p, const struct pool_conf *pc)
{
	pool_set_timeouts(p, pc->idle_timeout_ms, pc->max_lifetime_ms);
	json_decref(p->limits);
	p->limits = json_incref(pc->limits);
	pool_resize(p, pc->warm, pc->max);
	if (pc->warm_auto || pc->max_auto)
		pool_set_auto(p, pc->warm_auto, pc->warm_pct, pc->max_auto);
}

void pool_set_draining(struct pool *p, bool draining)
{
	p->draining = draining;
	log_info("pool %s: %s", p->name, draining ? "draining (no new leases)" : "open for leases again");
	while (draining && p->waiters) {
		struct pool_waiter *w = p->waiters;
		p->waiters = w->next;
		p->n_waiting--;
		handoff(p, w->fn, w->data, -ECANCELED, NULL, NULL);
		free(w);
	}
	p->waiters_tail = &p->waiters;
	while (*p->waiters_tail)
		p->waiters_tail = &(*p->waiters_tail)->next;
	pool_kick(p);
}

int pools_init(struct ev_loop *l, const struct psettings *st, struct wp_error *err)
{
	struct pool **tail = &pools;

	loop = l;
	cfg = st;
	for (const struct pool_conf *pc = st->pools; pc; pc = pc->next) {
		struct pool *p = calloc(1, sizeof(*p));
		if (!p || !(p->name = strdup(pc->name)) || !(p->language = strdup(pc->language)))
			return wp_error_set(err, ENOMEM, "out of memory");
		p->warm = pc->warm;
		p->max = pc->max;
		p->idle_timeout_ms = pc->idle_timeout_ms;
		p->max_lifetime_ms = pc->max_lifetime_ms;
		p->limits = json_incref(pc->limits);
		p->stateful = pc->stateful;
		p->warm_auto = pc->warm_auto;
		p->warm_pct = pc->warm_pct;
		p->max_auto = pc->max_auto;
		p->waiters_tail = &p->waiters;
		ev_timer_init(&p->refill, refill_cb, REFILL_HOLD, 0);
		p->refill.data = p;
		*tail = p;
		tail = &p->next;
	}
	ev_timer_init(&tick, tick_cb, 1.0, 1.0);
	ev_timer_start(loop, &tick);
	return 0;
}

void pools_stop(void)
{
	stopping = true;
	ev_timer_stop(loop, &tick);
	for (struct pool *p = pools; p; p = p->next)
		ev_timer_stop(loop, &p->refill);
	for (struct pool *p = pools; p; p = p->next)
		while (p->waiters) {
			struct pool_waiter *w = p->waiters;
			p->waiters = w->next;
			p->n_waiting--;
			w->fn(p, -ECANCELED, NULL, NULL, w->data);
			free(w);
		}
}
