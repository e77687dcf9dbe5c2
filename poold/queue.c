/* queue.c — see queue.h. Users live in a hash (only while they have items
 * queued) and in a circular ring; the cursor is the user served next. */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_BUCKETS 1024

struct queue_user {
	char *name;
	struct queue_item *head, *tail;
	size_t n;
	struct queue_user *prev, *next; /* the ring */
	struct queue_user *hnext;	/* hash chain */
};

struct queue {
	size_t max, max_per_user;
	queue_clock_fn clock;
	void *clock_data;
	struct queue_user *buckets[QUEUE_BUCKETS];
	struct queue_user *cursor; /* next user to serve; NULL when empty */
	size_t length, users;
	double pops[QUEUE_RATE_WINDOW]; /* times of the last pops, a ring */
	size_t n_pops, pop_i;
};

static unsigned user_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % QUEUE_BUCKETS;
}

struct queue *queue_new(size_t max, size_t max_per_user, queue_clock_fn clock, void *clock_data)
{
	struct queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->max = max;
	q->max_per_user = max_per_user;
	q->clock = clock;
	q->clock_data = clock_data;
	return q;
}

void queue_set_limits(struct queue *q, size_t max, size_t max_per_user)
{
	q->max = max;
	q->max_per_user = max_per_user;
}

static struct queue_user *user_find(const struct queue *q, const char *name)
{
	for (struct queue_user *u = q->buckets[user_hash(name)]; u; u = u->hnext)
		if (strcmp(u->name, name) == 0)
			return u;
	return NULL;
}

/* A new user joins the ring just before the cursor: last of this round. */
static struct queue_user *user_add(struct queue *q, const char *name)
{
	struct queue_user *u = calloc(1, sizeof(*u));
	if (!u || !(u->name = strdup(name))) {
		free(u);
		return NULL;
	}
	unsigned h = user_hash(name);
	u->hnext = q->buckets[h];
	q->buckets[h] = u;
	if (!q->cursor) {
		u->prev = u->next = u;
		q->cursor = u;
	} else {
		u->next = q->cursor;
		u->prev = q->cursor->prev;
		u->prev->next = u;
		q->cursor->prev = u;
	}
	q->users++;
	return u;
}

static void user_drop(struct queue *q, struct queue_user *u)
{
	for (struct queue_user **pp = &q->buckets[user_hash(u->name)]; *pp; pp = &(*pp)->hnext)
		if (*pp == u) {
			*pp = u->hnext;
			break;
		}
	if (u->next == u) {
		q->cursor = NULL;
	} else {
		u->prev->next = u->next;
		u->next->prev = u->prev;
		if (q->cursor == u)
			q->cursor = u->next;
	}
	q->users--;
	free(u->name);
	free(u);
}

void queue_free(struct queue *q)
{
	if (!q)
		return;
	while (q->cursor) {
		struct queue_user *u = q->cursor;
		for (struct queue_item *it = u->head; it; it = it->next)
			it->user = NULL;
		user_drop(q, u);
	}
	free(q);
}

int queue_push(struct queue *q, struct queue_item *it, const char *user, double timeout, bool front)
{
	struct queue_user *u = user_find(q, user);
	double now = q->clock(q->clock_data);

	/* a run going back (front) was admitted once: the bounds are for newcomers */
	if (!front && q->length >= q->max)
		return -ENOBUFS;
	if (!front && u && u->n >= q->max_per_user)
		return -EDQUOT;
	if (!u && !(u = user_add(q, user)))
		return -ENOMEM;
	if (!front || !it->enqueued)
		it->enqueued = now;
	if (!front || !it->deadline)
		it->deadline = now + timeout;
	it->user = u;
	if (front) {
		it->next = u->head;
		u->head = it;
		if (!u->tail)
			u->tail = it;
	} else {
		it->next = NULL;
		if (u->tail)
			u->tail->next = it;
		else
			u->head = it;
		u->tail = it;
	}
	u->n++;
	q->length++;
	return 0;
}

/* Unlink it from its user (which goes when empty). */
static void unlink_item(struct queue *q, struct queue_item *it)
{
	struct queue_user *u = it->user;
	struct queue_item *prev = NULL;

	for (struct queue_item *x = u->head; x && x != it; x = x->next)
		prev = x;
	if (prev)
		prev->next = it->next;
	else
		u->head = it->next;
	if (u->tail == it)
		u->tail = prev;
	it->next = NULL;
	it->user = NULL;
	u->n--;
	q->length--;
	if (!u->n)
		user_drop(q, u);
}

struct queue_item *queue_pop(struct queue *q, bool (*ok)(struct queue_item *it, void *data), void *data)
{
	struct queue_user *start = q->cursor, *u = start;

	if (!u)
		return NULL;
	do {
		struct queue_item *it = u->head;
		if (!ok || ok(it, data)) {
			/* the turn passes to the next user, whether or not u stays */
			q->cursor = u->next;
			unlink_item(q, it);
			q->pops[q->pop_i] = q->clock(q->clock_data);
			q->pop_i = (q->pop_i + 1) % QUEUE_RATE_WINDOW;
			if (q->n_pops < QUEUE_RATE_WINDOW)
				q->n_pops++;
			return it;
		}
		u = u->next;
	} while (u != start);
	return NULL;
}

void queue_remove(struct queue *q, struct queue_item *it)
{
	if (it->user)
		unlink_item(q, it);
}

struct queue_item *queue_expired(struct queue *q)
{
	double now = q->clock(q->clock_data);
	struct queue_user *start = q->cursor, *u = start;

	if (!u)
		return NULL;
	do {
		for (struct queue_item *it = u->head; it; it = it->next)
			if (it->deadline <= now) {
				unlink_item(q, it);
				return it;
			}
		u = u->next;
	} while (u != start);
	return NULL;
}

void queue_each(struct queue *q, void (*fn)(struct queue_item *it, void *data), void *data)
{
	/* collect first: fn may remove items, and with them users */
	size_t n = q->length, k = 0;
	struct queue_item **all;
	struct queue_user *u = q->cursor;

	if (!n || !(all = calloc(n, sizeof(*all))))
		return;
	for (size_t i = 0; i < q->users; i++, u = u->next)
		for (struct queue_item *it = u->head; it && k < n; it = it->next)
			all[k++] = it;
	for (size_t i = 0; i < k; i++)
		fn(all[i], data);
	free(all);
}

size_t queue_length(const struct queue *q)
{
	return q->length;
}

size_t queue_user_length(const struct queue *q, const char *user)
{
	const struct queue_user *u = user_find(q, user);
	return u ? u->n : 0;
}

size_t queue_users(const struct queue *q)
{
	return q->users;
}

double queue_drain_rate(const struct queue *q)
{
	if (q->n_pops < 2)
		return 0;
	size_t oldest = q->n_pops < QUEUE_RATE_WINDOW ? 0 : q->pop_i;
	/* a window that ended long ago says little about now: count up to now */
	double span = q->clock(q->clock_data) - q->pops[oldest];
	return span > 0 ? (double)(q->n_pops - 1) / span : 0;
}

double queue_retry_after(const struct queue *q, double fallback)
{
	double rate = queue_drain_rate(q);
	double s = rate > 0 ? (double)q->length / rate : fallback;
	return s < 1 ? 1 : s > 3600 ? 3600 : s;
}
