/* queue.h — the fair queue of judged submissions (POST /execute).
 *
 * Round-robin across users, FIFO within a user: each user with something
 * queued has a place in a ring; a pop serves the head of the user under the
 * cursor and moves the cursor on, so a user who queued 30 submissions
 * delays each other user by at most one of them. A new user joins at the
 * end of the current round. The queue holds at most `max` items (and
 * `max_per_user` of one user); items carry a deadline. It measures its own
 * drain rate (pops per second over the last QUEUE_RATE_WINDOW pops) to say
 * when a refused client should come back.
 *
 * Pure data structure: no I/O, no libev; the clock is injected (unit tests
 * drive it by hand). Items are embedded in the caller's structs and never
 * freed here. */
#ifndef POOLD_QUEUE_H
#define POOLD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#define QUEUE_RATE_WINDOW 64

struct queue_user;

struct queue_item {
	double enqueued;
	double deadline;
	struct queue_user *user; /* set while queued; NULL once popped or removed */
	struct queue_item *next;
};

typedef double (*queue_clock_fn)(void *data);

struct queue;

/* NULL when out of memory. */
struct queue *queue_new(size_t max, size_t max_per_user, queue_clock_fn clock, void *clock_data);
void queue_free(struct queue *q); /* the items stay the caller's */
void queue_set_limits(struct queue *q, size_t max, size_t max_per_user);

/* 0; -ENOBUFS when the queue holds `max` items; -EDQUOT when the user holds
 * `max_per_user`; -ENOMEM. `front`: ahead of the user's other items, with
 * its first enqueue time and deadline, past the bounds (a run the node
 * refused goes back first in its user's line). */
int queue_push(struct queue *q, struct queue_item *it, const char *user, double timeout, bool front);
/* The next item in round-robin order whose `ok(item, data)` holds (NULL:
 * any). Users whose head is not ok keep their turn. NULL when none. */
struct queue_item *queue_pop(struct queue *q, bool (*ok)(struct queue_item *it, void *data), void *data);
/* Take an item out (its client left, or it expired). */
void queue_remove(struct queue *q, struct queue_item *it);
/* One item whose deadline passed (then call again), or NULL. */
struct queue_item *queue_expired(struct queue *q);
/* Call fn on every queued item (fn may queue_remove the item it is given). */
void queue_each(struct queue *q, void (*fn)(struct queue_item *it, void *data), void *data);

size_t queue_length(const struct queue *q);
size_t queue_user_length(const struct queue *q, const char *user);
size_t queue_users(const struct queue *q);
/* Pops per second over the recent window; 0 while unknown. */
double queue_drain_rate(const struct queue *q);
/* Seconds until the queue as it is now would have drained at the measured
 * rate, at least 1, at most 3600; `fallback` while the rate is unknown. */
double queue_retry_after(const struct queue *q, double fallback);

#endif
