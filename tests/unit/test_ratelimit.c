/* test_ratelimit.c — token buckets over simulated time: a burst then
 * refusal, refill, the retry_after a 429 would carry, the bound on keys and
 * which keys go first, rate changes, and rate 0 as no limit at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "ratelimit.h"

#define assert_near(a, b) assert_true((a) - (b) < 1e-9 && (b) - (a) < 1e-9)

static void test_burst_then_refusal(void **state)
{
	struct ratelimit *r = ratelimit_new(1, 3, 100);
	double retry = -1;

	assert_non_null(r);
	for (int i = 0; i < 3; i++) {
		assert_true(ratelimit_take(r, "alice", 0, &retry));
		assert_near(retry, 0);
	}
	assert_false(ratelimit_take(r, "alice", 0, &retry));
	assert_near(retry, 1);
	assert_false(ratelimit_take(r, "alice", 0, NULL)); /* retry_after may be NULL */
	/* another key has its own bucket */
	assert_true(ratelimit_take(r, "bob", 0, &retry));
	assert_int_equal(ratelimit_keys(r), 2);
	ratelimit_free(r);
	ratelimit_free(NULL);
}

static void test_refill(void **state)
{
	struct ratelimit *r = ratelimit_new(2, 4, 100); /* 2 per second, 4 at once */
	double retry = -1;

	for (int i = 0; i < 4; i++)
		assert_true(ratelimit_take(r, "k", 10, &retry));
	assert_false(ratelimit_take(r, "k", 10, &retry));
	assert_near(retry, 0.5);
	/* 0.2 s later: 0.4 token, 0.3 s still to wait, and waiting that is enough */
	assert_false(ratelimit_take(r, "k", 10.2, &retry));
	assert_near(retry, 0.3);
	assert_true(ratelimit_take(r, "k", 10.2 + retry, &retry));
	assert_false(ratelimit_take(r, "k", 10.2 + 0.3, &retry));
	assert_near(retry, 0.5);
	/* 1 s: two tokens back, not more */
	assert_true(ratelimit_take(r, "k", 11.5, NULL));
	assert_true(ratelimit_take(r, "k", 11.5, NULL));
	assert_false(ratelimit_take(r, "k", 11.5, NULL));
	/* a long idle refills to the burst, never past it */
	for (int i = 0; i < 4; i++)
		assert_true(ratelimit_take(r, "k", 1000, NULL));
	assert_false(ratelimit_take(r, "k", 1000, &retry));
	assert_near(retry, 0.5);
	/* a clock that steps back refills nothing */
	assert_false(ratelimit_take(r, "k", 999, &retry));
	assert_near(retry, 0.5);
	ratelimit_free(r);
}

static void test_slow_rate(void **state)
{
	struct ratelimit *r = ratelimit_new(1.0 / 60, 1, 10); /* one a minute */
	double retry = -1;

	assert_true(ratelimit_take(r, "k", 0, &retry));
	assert_false(ratelimit_take(r, "k", 15, &retry));
	assert_near(retry, 45);
	assert_true(ratelimit_take(r, "k", 15 + retry, &retry));
	assert_false(ratelimit_take(r, "k", 60, &retry));
	assert_near(retry, 60);
	ratelimit_free(r);
}

static void test_eviction_bound(void **state)
{
	struct ratelimit *r = ratelimit_new(1, 5, 10);
	char key[32];

	for (int i = 0; i < 5; i++)
		assert_true(ratelimit_take(r, "drained", 0, NULL));
	assert_false(ratelimit_take(r, "drained", 0, NULL));
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "client-%d", i);
		assert_true(ratelimit_take(r, key, 0, NULL));
		assert_true(ratelimit_keys(r) <= 10);
	}
	assert_int_equal(ratelimit_keys(r), 10);
	/* past the bound the oldest went: "drained" starts afresh */
	assert_true(ratelimit_take(r, "drained", 0, NULL));
	ratelimit_free(r);

	/* many keys through a large table */
	r = ratelimit_new(100, 1, 5000);
	for (int i = 0; i < 50000; i++) {
		snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
		assert_true(ratelimit_take(r, key, 0, NULL));
	}
	assert_int_equal(ratelimit_keys(r), 5000);
	/* the last 5000 are all there, and refused at once */
	for (int i = 45000; i < 50000; i++) {
		snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
		assert_false(ratelimit_take(r, key, 0, NULL));
	}
	ratelimit_free(r);
}

static void test_idle_full_first(void **state)
{
	struct ratelimit *r = ratelimit_new(1, 2, 3);

	assert_true(ratelimit_take(r, "a", 0, NULL)); /* 1 token left: full at t=1 */
	assert_true(ratelimit_take(r, "b", 0, NULL));
	assert_true(ratelimit_take(r, "b", 0, NULL)); /* 0 left: full at t=2 */
	assert_true(ratelimit_take(r, "c", 0, NULL));
	assert_true(ratelimit_take(r, "c", 0, NULL));
	assert_int_equal(ratelimit_keys(r), 3);
	/* at 1.5 "a" is full again and goes for "d"; "b" (1.5 tokens) stays */
	assert_true(ratelimit_take(r, "d", 1.5, NULL));
	assert_int_equal(ratelimit_keys(r), 3);
	assert_true(ratelimit_take(r, "b", 1.5, NULL));
	assert_false(ratelimit_take(r, "b", 1.5, NULL)); /* a fresh bucket would have said yes */
	ratelimit_free(r);

	/* idle full buckets also go on the way, a few per call */
	r = ratelimit_new(1, 1, 100);
	for (int i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		assert_true(ratelimit_take(r, key, 0, NULL));
	}
	assert_int_equal(ratelimit_keys(r), 5);
	assert_true(ratelimit_take(r, "new", 100, NULL));
	assert_true(ratelimit_keys(r) <= 4);
	ratelimit_free(r);
}

static void test_set(void **state)
{
	struct ratelimit *r = ratelimit_new(1, 10, 10);
	double retry = -1;

	assert_true(ratelimit_take(r, "k", 0, NULL));
	/* a smaller burst caps what a bucket holds */
	ratelimit_set(r, 1, 2);
	assert_true(ratelimit_take(r, "k", 0, NULL));
	assert_true(ratelimit_take(r, "k", 0, NULL));
	assert_false(ratelimit_take(r, "k", 0, &retry));
	assert_near(retry, 1);
	/* a faster rate shortens the wait */
	ratelimit_set(r, 4, 2);
	assert_false(ratelimit_take(r, "k", 0, &retry));
	assert_near(retry, 0.25);
	/* burst below one token is one token */
	ratelimit_set(r, 1, 0);
	assert_true(ratelimit_take(r, "other", 0, NULL));
	assert_false(ratelimit_take(r, "other", 0, &retry));
	assert_near(retry, 1);
	ratelimit_free(r);
}

static void test_unlimited(void **state)
{
	struct ratelimit *r = ratelimit_new(0, 0, 10);
	double retry = -1;

	for (int i = 0; i < 1000; i++) {
		assert_true(ratelimit_take(r, "k", 0, &retry));
		assert_near(retry, 0);
	}
	assert_int_equal(ratelimit_keys(r), 0); /* nothing stored */
	/* limited, then unlimited again: the buckets go */
	ratelimit_set(r, 1, 1);
	assert_true(ratelimit_take(r, "k", 0, NULL));
	assert_false(ratelimit_take(r, "k", 0, NULL));
	assert_int_equal(ratelimit_keys(r), 1);
	ratelimit_set(r, 0, 1);
	assert_int_equal(ratelimit_keys(r), 0);
	assert_true(ratelimit_take(r, "k", 0, NULL));
	ratelimit_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_refusal), cmocka_unit_test(test_refill),
	    cmocka_unit_test(test_slow_rate),	       cmocka_unit_test(test_eviction_bound),
	    cmocka_unit_test(test_idle_full_first),    cmocka_unit_test(test_set),
	    cmocka_unit_test(test_unlimited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
