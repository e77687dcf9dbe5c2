/* test_queue.c — the fair queue of judged submissions over an injected
 * clock: round-robin across users and FIFO within one, a flood that does
 * not delay others, the bounds (total, per user) and their errors, a
 * refused run going back first in line, removal of a client that left,
 * deadlines, and the drain rate behind Retry-After. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#define assert_near(a, b) assert_true((a) - (b) < 1e-6 && (b) - (a) < 1e-6)

static double now_s;

static double fake_clock(void *data)
{
	return now_s;
}

struct sub {
	struct queue_item qi; /* first */
	const char *user;
	int n;
};

static struct sub *sub_new(const char *user, int n)
{
	struct sub *s = calloc(1, sizeof(*s));
	s->user = user;
	s->n = n;
	return s;
}

static struct sub *pop(struct queue *q)
{
	return (struct sub *)queue_pop(q, NULL, NULL);
}

static void test_round_robin_fifo(void **state)
{
	struct queue *q = queue_new(100, 100, fake_clock, NULL);
	struct sub *s[6] = {sub_new("a", 1), sub_new("a", 2), sub_new("a", 3),
			    sub_new("b", 1), sub_new("b", 2), sub_new("c", 1)};

	now_s = 0;
	for (int i = 0; i < 6; i++)
		assert_int_equal(queue_push(q, &s[i]->qi, s[i]->user, 10, false), 0);
	assert_int_equal(queue_length(q), 6);
	assert_int_equal(queue_users(q), 3);
	assert_int_equal(queue_user_length(q, "a"), 3);
	const char *want[] = {"a1", "b1", "c1", "a2", "b2", "a3"};
	for (int i = 0; i < 6; i++) {
		struct sub *x = pop(q);
		char got[8];
		assert_non_null(x);
		snprintf(got, sizeof(got), "%s%d", x->user, x->n);
		assert_string_equal(got, want[i]);
		assert_null(x->qi.user);
	}
	assert_null(pop(q));
	assert_int_equal(queue_length(q), 0);
	assert_int_equal(queue_users(q), 0);
	for (int i = 0; i < 6; i++)
		free(s[i]);
	queue_free(q);
}

/* One user floods 30; another arrives after: served within one round. */
static void test_flood_does_not_delay_others(void **state)
{
	struct queue *q = queue_new(1000, 100, fake_clock, NULL);
	struct sub *flood[30], *late = sub_new("late", 1);

	now_s = 0;
	for (int i = 0; i < 30; i++) {
		flood[i] = sub_new("flood", i);
		assert_int_equal(queue_push(q, &flood[i]->qi, "flood", 600, false), 0);
	}
	/* two of the flood already started */
	assert_ptr_equal(pop(q), flood[0]);
	assert_ptr_equal(pop(q), flood[1]);
	now_s = 0.1;
	assert_int_equal(queue_push(q, &late->qi, "late", 600, false), 0);
	/* at most one more of the flood before it */
	struct sub *x = pop(q);
	if (x != late)
		assert_ptr_equal(pop(q), late);
	for (int i = 0; i < 30; i++)
		free(flood[i]);
	free(late);
	queue_free(q);
}

static void test_bounds(void **state)
{
	struct queue *q = queue_new(3, 2, fake_clock, NULL);
	struct sub *s[5];

	for (int i = 0; i < 5; i++)
		s[i] = sub_new("u", i);
	assert_int_equal(queue_push(q, &s[0]->qi, "u", 10, false), 0);
	assert_int_equal(queue_push(q, &s[1]->qi, "u", 10, false), 0);
	assert_int_equal(queue_push(q, &s[2]->qi, "u", 10, false), -EDQUOT); /* per user */
	assert_int_equal(queue_push(q, &s[2]->qi, "v", 10, false), 0);
	assert_int_equal(queue_push(q, &s[3]->qi, "w", 10, false), -ENOBUFS); /* total */
	queue_set_limits(q, 4, 2);
	assert_int_equal(queue_push(q, &s[3]->qi, "w", 10, false), 0);
	assert_int_equal(queue_length(q), 4);
	for (int i = 0; i < 5; i++)
		free(s[i]);
	queue_free(q);
}

/* A run the node refused goes back ahead of its user's others, with its
 * first enqueue time and deadline. */
static void test_push_front_keeps_times(void **state)
{
	struct queue *q = queue_new(10, 10, fake_clock, NULL);
	struct sub *a = sub_new("u", 1), *b = sub_new("u", 2);

	now_s = 5;
	queue_push(q, &a->qi, "u", 10, false);
	queue_push(q, &b->qi, "u", 10, false);
	assert_ptr_equal(pop(q), a);
	now_s = 7;
	assert_int_equal(queue_push(q, &a->qi, "u", 10, true), 0);
	assert_near(a->qi.enqueued, 5);
	assert_near(a->qi.deadline, 15);
	assert_ptr_equal(pop(q), a);
	assert_ptr_equal(pop(q), b);
	free(a);
	free(b);
	queue_free(q);
}

static void test_remove_and_expire(void **state)
{
	struct queue *q = queue_new(10, 10, fake_clock, NULL);
	struct sub *a = sub_new("a", 1), *b = sub_new("b", 1), *c = sub_new("a", 2);

	now_s = 0;
	queue_push(q, &a->qi, "a", 5, false);
	queue_push(q, &b->qi, "b", 20, false);
	queue_push(q, &c->qi, "a", 20, false);
	queue_remove(q, &b->qi); /* its client left */
	assert_null(b->qi.user);
	queue_remove(q, &b->qi); /* twice is harmless */
	assert_int_equal(queue_length(q), 2);
	assert_int_equal(queue_users(q), 1);
	assert_null(queue_expired(q));
	now_s = 5;
	assert_ptr_equal(queue_expired(q), &a->qi);
	assert_null(queue_expired(q));
	assert_ptr_equal(pop(q), c);
	assert_null(pop(q));
	free(a);
	free(b);
	free(c);
	queue_free(q);
}

static bool only_b(struct queue_item *it, void *data)
{
	return strcmp(((struct sub *)it)->user, "b") == 0;
}

/* A user whose head cannot run now (no node for its language) keeps its turn. */
static void test_pop_predicate(void **state)
{
	struct queue *q = queue_new(10, 10, fake_clock, NULL);
	struct sub *a = sub_new("a", 1), *b = sub_new("b", 1);

	queue_push(q, &a->qi, "a", 5, false);
	queue_push(q, &b->qi, "b", 5, false);
	assert_ptr_equal(queue_pop(q, only_b, NULL), &b->qi);
	assert_null(queue_pop(q, only_b, NULL));
	assert_ptr_equal(pop(q), a);
	free(a);
	free(b);
	queue_free(q);
}

static void test_drain_rate_and_retry_after(void **state)
{
	struct queue *q = queue_new(1000, 1000, fake_clock, NULL);
	struct sub *s[200];

	now_s = 100;
	for (int i = 0; i < 200; i++) {
		s[i] = sub_new("u", i);
		queue_push(q, &s[i]->qi, i % 2 ? "odd" : "even", 600, false);
	}
	assert_near(queue_drain_rate(q), 0);
	assert_near(queue_retry_after(q, 30), 30); /* unknown rate: the fallback */
	/* 4 pops per second for 20 s */
	for (int i = 0; i < 80; i++) {
		now_s = 100 + i * 0.25;
		assert_non_null(pop(q));
	}
	now_s = 100 + 79 * 0.25;
	assert_near(queue_drain_rate(q), 63.0 / (63 * 0.25));
	/* 120 left at 4/s: 30 s */
	assert_near(queue_retry_after(q, 30), 30);
	/* nothing popped for a long while: the rate decays */
	now_s += 60;
	assert_true(queue_drain_rate(q) < 1.0);
	assert_true(queue_retry_after(q, 30) <= 3600);
	for (int i = 0; i < 200; i++)
		free(s[i]);
	queue_free(q);
}

static void each_count(struct queue_item *it, void *data)
{
	(*(int *)data)++;
}

static void each_remove(struct queue_item *it, void *data)
{
	queue_remove(data, it);
}

static void test_each(void **state)
{
	struct queue *q = queue_new(10, 10, fake_clock, NULL);
	struct sub *s[4] = {sub_new("a", 1), sub_new("b", 1), sub_new("a", 2), sub_new("c", 1)};
	int n = 0;

	for (int i = 0; i < 4; i++)
		queue_push(q, &s[i]->qi, s[i]->user, 5, false);
	queue_each(q, each_count, &n);
	assert_int_equal(n, 4);
	queue_each(q, each_remove, q);
	assert_int_equal(queue_length(q), 0);
	assert_int_equal(queue_users(q), 0);
	assert_null(pop(q));
	for (int i = 0; i < 4; i++)
		free(s[i]);
	queue_free(q);
	queue_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_robin_fifo),
	    cmocka_unit_test(test_flood_does_not_delay_others),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_push_front_keeps_times),
	    cmocka_unit_test(test_remove_and_expire),
	    cmocka_unit_test(test_pop_predicate),
	    cmocka_unit_test(test_drain_rate_and_retry_after),
	    cmocka_unit_test(test_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
