/* lease.h — session identifier → slot. The first operation with an
 * identifier leases a slot of the pool (labelled "<pool>/<identifier>" on
 * its node, so a restarted poold finds it again); every later one reaches
 * the same slot until the lease ends: idle timeout (reset by every call),
 * max lifetime, explicit release. Then the slot is destroyed and its pool
 * refills. Operations of one session run one at a time, in arrival order,
 * from a bounded queue; sessions run in parallel. */
#ifndef POOLD_LEASE_H
#define POOLD_LEASE_H

#include <jansson.h>
#include <stdbool.h>

#include "http_server.h"
#include "node.h"
#include "settings.h"

struct lease;
struct node;
struct pool;

/* One queued operation. `start` runs when the slot is leased and every
 * earlier operation of the session is done; it must end with
 * lease_op_done(). `fail` answers the request when the operation cannot
 * run (session lost, pool exhausted, poold stopping); it must free op. */
struct lease_op {
	void (*start)(struct lease *l, struct lease_op *op);
	void (*fail)(struct lease_op *op, int status, const char *code, const char *message, double retry_after);
	struct http_request *req;
	bool create; /* may create the lease (false: info/files on a session that must exist) */
	double enqueued;
	struct lease_op *next;
};

/* LOST: its node went down; the entry stays as a tombstone so the next
 * request with the identifier hears 410 SessionLost once, instead of a fresh
 * slot pretending to be the old one. */
enum lease_state { LEASE_ACQUIRING, LEASE_ACTIVE, LEASE_ENDING, LEASE_LOST };

struct lease {
	char *key;	   /* "<pool>/<identifier>": the node label */
	const char *ident; /* points into key */
	struct pool *pool;
	struct node *node;
	char slot_id[17];
	enum lease_state state;
	double created;
	double last_used;
	double acquired_in; /* seconds the first lease waited */
	bool busy;
	struct node *busy_on; /* the node counting this lease's operation as running */
	bool label_pending;   /* the slot is not labelled yet: the next node call does it */
	bool label_in_run;    /* the run call in flight carries the label (lease_run) */
	bool counted;	      /* in pool->n_leased */
	bool recovered;	      /* rebuilt from a node's label at start-up */
	bool lost_told;	      /* LOST and a request already answered SessionLost */
	struct lease_op *head, *tail;
	size_t queued;
	unsigned long executions;
	unsigned long runs;  /* executions only, not file operations: the session's "executions" */
	struct lease *hnext; /* hash chain */
	struct lease *next;  /* all leases */
};

int leases_init(struct ev_loop *loop, const struct psettings *st);
bool lease_ident_valid(const char *ident);
/* Queue op on the session (leasing a slot first when there is none and
 * op->create). Answers and frees op itself on refusal (via op->fail). */
void lease_submit(struct pool *p, const char *ident, struct lease_op *op);
void lease_op_done(struct lease *l);
/* For an operation's node call: the lease's label when the slot does not
 * carry it yet (the call labels it: X-Warmpool-Label), once; else NULL. */
const char *lease_label_once(struct lease *l);
/* POST /v1/slots/{id}/run on the lease's slot (labelling it on the way
 * when it is not yet); `body` is stolen. NULL when the call could not be
 * made. */
struct http_call *lease_run(struct lease *l, json_t *body, double timeout, node_done_fn done, void *data);
/* That run was refused before it started (node_busy): the label it
 * carried was not applied, the next call carries it. */
void lease_run_refused(struct lease *l);
struct lease *lease_find(struct pool *p, const char *ident);
struct lease *lease_first(void);
size_t lease_count(void);
/* End a lease now (release / admin); queued ops fail with 410. */
void lease_end(struct lease *l, const char *why);
/* How a node's slot list is read back (node.c):
 * FIRST: the first time this poold sees the node up. Labelled slots of our
 *   pools become leases again (poold restarted: its sessions survive);
 *   fresh unlabelled ones go back to their pools.
 * RETURN: the node is back after being down. Its leases were declared lost:
 *   labelled slots are destroyed, fresh unlabelled ones adopted.
 * PERIODIC: while up. Labelled slots no lease holds are destroyed (a
 *   DELETE that went astray); nothing is adopted.
 * In every case an unlabelled slot that is not fresh (it served someone)
 * is destroyed, never adopted. */
enum lease_sync { LEASE_SYNC_FIRST, LEASE_SYNC_RETURN, LEASE_SYNC_PERIODIC };

/* From node.c: a node went down (its leases are lost) or was synced. */
void leases_node_down(struct node *n);
void leases_node_sync(struct node *n, json_t *slots, enum lease_sync how);
json_t *lease_to_json(const struct lease *l);
/* For operations: a node call of theirs failed at the transport level;
 * answers 410 when the session is lost with its node, else 502. */
void lease_fail_transport(struct lease *l, struct lease_op *op, const char *error);
const char *lease_state_name(enum lease_state st);
/* The reaper's pass (every second): leases idle longer than their pool's
 * idle_timeout or older than its max_lifetime end; lost tombstones idle
 * that long are forgotten. */
void leases_reap(void);
/* Graceful stop: true once no operation is running. */
bool leases_idle(void);

#endif
