/* pool.h — warm pools. A pool keeps `warm` slots ready on its nodes
 * (placement: the least loaded node that is up and has the language),
 * refills in the background as leases take them, and never holds more than
 * `max` slots (ready + creating + leased). A lease that finds no ready slot
 * creates one when under max, else waits in a bounded queue until a slot is
 * ready or its deadline passes. Create failures back off exponentially
 * (1 s … 60 s), are logged once per distinct cause and counted. */
#ifndef POOLD_POOL_H
#define POOLD_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "settings.h"

struct node;
struct pool;

/* A slot handed to a lease: err 0 and node/slot_id, or err -ETIMEDOUT
 * (exhausted), -ENODEV (no node can host it), -ECANCELED (pool draining or
 * poold stopping), -EIO (creation failed). */
typedef void (*pool_take_fn)(struct pool *p, int err, struct node *n, const char *slot_id, void *data);

struct ready_slot {
	char id[17];
	struct node *node;
	double since;
	struct ready_slot *next;
};

struct pool_waiter {
	pool_take_fn fn;
	void *data;
	double deadline;
	struct pool_waiter *next;
};

struct pool {
	char *name;
	char *language;
	uint64_t warm; /* effective: with warm_auto, recomputed from the nodes */
	uint64_t max;
	bool warm_auto;	   /* warm = auto: the run_slots of the nodes with the language */
	unsigned warm_pct; /* warm = N%: N% of their capacity if more (with warm_auto) */
	bool max_auto;	   /* max = auto: the capacity of the nodes with the language */
	uint64_t idle_timeout_ms;
	uint64_t max_lifetime_ms;
	json_t *limits;
	bool stateful; /* slots are created with "interpreter": true */
	bool draining;

	struct ready_slot *ready;
	size_t n_ready;
	size_t n_creating;	  /* creates in flight for warmth */
	size_t n_creating_direct; /* creates in flight for a waiting lease */
	size_t n_leased;	  /* leases holding a slot (lease.c, through pool_leased_*) */
	size_t n_handoff;	  /* slots handed to a lease, not yet in n_leased */
	size_t n_running;	  /* slots held by judged runs (ops.c), destroyed after */
	size_t n_judge_queued;	  /* judged submissions of the pool in the fair queue (ops.c) */
	size_t n_judge_running;	  /* … holding a node's run budget (ops.c) */
	struct pool_waiter *waiters, **waiters_tail;
	size_t n_waiting;

	double backoff; /* seconds; 0 when the last create worked */
	double retry_at;
	char last_error[256];
	bool short_error;      /* last_error says why warm or a waiter cannot be served (not a create failure) */
	int short_kind;	       /* which cause, to log each once */
	uint64_t short_events; /* times it could not reach warm or serve a waiter for lack of room */
	uint64_t create_failures;
	uint64_t created;
	ev_timer refill;   /* looks again when a held refill must go */
	double refill_due; /* 0, or: refill by then even if the node is busy */
	double last_take;  /* when a lease last asked for a slot */
	double lone_until; /* 0, or: a lone judged run holds the refill until it ends (or then) */
	struct pool *next;
};

int pools_init(struct ev_loop *loop, const struct psettings *st, struct wp_error *err);
struct pool *pool_first(void);
struct pool *pool_find(const char *name);
struct pool *pool_for_language(const char *language); /* the first pool of a language */
/* The first pool that would have created this slot: same language, and
 * stateful exactly when the slot has an interpreter (sync adopts by it). */
struct pool *pool_for_slot(const char *language, bool interpreter);
size_t pool_total(const struct pool *p); /* ready + creating + leased + running */
/* The pool of judged runs (/execute) of a language: its first pool with
 * stateful = no (plain slots: no interpreter to start, nothing kept), else
 * its first pool. */
struct pool *pool_for_judged(const char *language);
/* A shell pool (language `shell`) serves sessions only: each execution is
 * a command framed on stdin (config/languages/shell.conf), not a program. */
bool pool_is_shell(const struct pool *p);
/* Some node that is up and synced has the language. */
bool pool_language_up(const struct pool *p);
/* Judged runs this node runs at once (its GET /v1/info "runs"."slots"). */
size_t pool_node_run_slots(const struct node *n);

/* A lease holds one of the pool's slots from now on / no longer (lease.c
 * counts each lease once). */
void pool_leased_add(struct pool *p);
void pool_leased_sub(struct pool *p);
/* Judged runs: a slot handed over by pool_take is held (counted in the pool
 * as running) until given back: used → destroyed (nothing of a submission
 * reaches the next), unused (the node refused the run before touching it)
 * → ready again. */
void pool_judged_hold(struct pool *p);
void pool_judged_return(struct pool *p, struct node *n, const char *slot_id, bool used);
/* PATCH of warm: a warning when warm does not fit the nodes (false: fits). */
bool pool_warm_warning(const struct pool *p, char *buf, size_t len);
/* warm/max = auto again (SIGHUP reload of a config that says so). */
void pool_set_auto(struct pool *p, bool warm_auto, unsigned warm_pct, bool max_auto);

/* Get a slot for a new lease (see pool_take_fn). Calls fn later, never
 * synchronously. A lease's take holds the pool's refill back while a burst
 * of leases goes on (pool.c, refill_now). */
void pool_take(struct pool *p, double timeout_s, pool_take_fn fn, void *data);
/* The same for a judged run (/execute), which destroys its slot after.
 * With more of the pool's submissions queued (n_judge_queued, after this
 * one's pop): no hold, the pool refills at once. Admission (ops.c) already
 * keeps runs to the node's run_slots; held back, the refill left each run
 * of a burst to wait for an on-demand creation, with the CPUs idle through
 * the slot's set-up latency. With none queued, the refill waits until the
 * run gives its slot back (pool_judged_return), at most REFILL_HOLD: a
 * lone submission does not share the node with its own refill (refilled
 * beside it, a judged Python a+b took 4.5 ms instead of 3.3 ms, a Java a+b
 * 176 ms instead of 145 ms: bench/prewarm.py). */
void pool_take_judged(struct pool *p, double timeout_s, pool_take_fn fn, void *data);
/* Remove a waiter that gave up (its client went away). */
bool pool_cancel(struct pool *p, pool_take_fn fn, void *data);
/* A ready slot found on a node at sync (unlabelled, ready state). */
void pool_adopt(struct pool *p, struct node *n, const char *slot_id);
/* A node went down: forget its ready slots. */
void pools_node_down(struct node *n);
/* Admin: change sizes and timeouts, effective at once (explicit numbers:
 * no longer auto). */
void pool_resize(struct pool *p, uint64_t warm, uint64_t max);
void pool_set_timeouts(struct pool *p, uint64_t idle_timeout_ms, uint64_t max_lifetime_ms);
/* SIGHUP: the pool's section of the re-read file (sizes, auto, timeouts,
 * limits; language and stateful need a restart). */
void pool_reload(struct pool *p, const struct pool_conf *pc);
void pool_set_draining(struct pool *p, bool draining);
/* Something changed (lease ended, node up): refill and serve waiters. */
void pool_kick(struct pool *p);
void pools_kick_all(void);
void pools_stop(void);

#endif
