/* test_pool.c — poold's warm pools (pool.c) over a fake node and a fake
 * clock (fake_node.h): warming up to `warm`, the refill held after a burst
 * of leases (REFILL_GAP 0.25 s without a new lease and a quiet node, at most
 * REFILL_HOLD 1 s), the timer that looks again, create back-off (1 s,
 * doubling, 60 s at most), max (never exceeded, also when lowered below
 * ready + leased), judged holds and the node's slot count. */
#include <math.h>

#include "fake_node.h"

#define GAP  0.25
#define HOLD 1.0

static struct pool *P;

static void setup_pool(size_t warm, size_t max)
{
	add_pool("p", warm, max, 60000, 3600000, false);
	start_poold();
	P = pool_find("p");
	assert_non_null(P);
}

static void test_warm_up(void **state)
{
	setup_pool(3, 8);
	node_up(8, "[]");
	assert_int_equal(creating(), 3);
	assert_int_equal(P->n_creating, 3);
	assert_int_equal(node_first()->slots, 3); /* counted until the next check says */
	assert_int_equal(pool_total(P), 3);
	answer_creates();
	assert_int_equal(P->n_ready, 3);
	assert_int_equal(P->n_creating, 0);
	pool_kick(P);
	assert_int_equal(creating(), 0); /* warm: nothing more */
	assert_int_equal(P->created, 3);
}

/* A lease takes a ready slot: no refill while leases keep coming (less than
 * REFILL_GAP apart) or the node runs a session's operation; the refill goes
 * once the gap passed and the node is quiet. */
static void test_refill_waits_for_gap_and_quiet_node(void **state)
{
	setup_pool(2, 8);
	warm_up(8);
	double t0 = now_s;
	struct top *t = submit(P, "a", true);
	settle();
	assert_int_equal(t->started, 1); /* its first op runs on the node */
	assert_int_equal(P->n_ready, 1);
	assert_int_equal(creating(), 0);
	now_s = t0 + GAP - 0.01;
	pool_kick(P);
	assert_int_equal(creating(), 0);
	now_s = t0 + GAP;
	pool_kick(P);
	assert_int_equal(creating(), 0); /* gap over, but the node runs its op */
	finish(t);			 /* node quiet: refills at once */
	assert_int_equal(creating(), 1);
}

/* A node that stays busy holds the refill at most REFILL_HOLD after the
 * burst's first lease. */
static void test_refill_hold_ends(void **state)
{
	setup_pool(2, 8);
	warm_up(8);
	double t0 = now_s;
	struct top *t = submit(P, "a", true);
	settle();
	assert_non_null(t->lease);
	now_s = t0 + HOLD - 0.01;
	pool_kick(P);
	assert_int_equal(creating(), 0);
	now_s = t0 + HOLD;
	pool_kick(P);
	assert_int_equal(creating(), 1);
	finish(t);
}

/* Leases less than REFILL_GAP apart are one burst: the hold runs from its
 * first lease, not the last; a lease after a gap starts a new hold. */
static void test_burst_hold_from_first_lease(void **state)
{
	setup_pool(6, 16);
	warm_up(16);
	double t0 = now_s;
	struct top *t[5];
	for (int i = 0; i < 5; i++) {
		char id[8];
		snprintf(id, sizeof(id), "s%d", i);
		now_s = t0 + 0.2 * i;
		t[i] = submit(P, id, true);
		settle();
		assert_int_equal(t[i]->started, 1);
		assert_int_equal(creating(), 0);
		assert_true(fabs(P->refill_due - (t0 + HOLD)) < 1e-9);
	}
	now_s = t0 + HOLD;
	pool_kick(P);
	assert_int_equal(creating(), 5);
	answer_creates();
	for (int i = 0; i < 5; i++)
		finish(t[i]);
	/* a lease GAP after the last one starts a new hold */
	now_s = t0 + 0.8 + GAP;
	struct top *u = submit(P, "late", true);
	settle();
	assert_true(fabs(P->refill_due - (now_s + HOLD)) < 1e-9);
	finish(u);
}

/* Leases every 0.1 s for 3 s (a contest start spread out): the hold keeps
 * the first second's refill back; after it, each take is refilled at once
 * (no batch per hold), so from then on no lease finds the pool empty. */
static void test_steady_stream_refilled_after_hold(void **state)
{
	setup_pool(6, 64);
	warm_up(64);
	double t0 = now_s;
	for (int k = 0; k < 30; k++) {
		char id[8];
		snprintf(id, sizeof(id), "s%d", k);
		now_s = t0 + 0.1 * k;
		pool_kick(P); /* the refill timer's or the tick's look */
		if (now_s < t0 + HOLD)
			assert_int_equal(creating(), 0); /* held */
		answer_creates();			 /* the node makes them at once */
		if (now_s >= t0 + HOLD + 0.1)
			assert_true(P->n_ready > 0); /* never dry after the hold */
		struct top *t = submit(P, id, true);
		settle();
		if (!t->started) { /* the pool ran dry in the hold: made on demand */
			assert_true(now_s < t0 + HOLD + 0.1);
			answer_creates();
			settle();
		}
		assert_int_equal(t->started, 1);
		finish(t);
	}
	assert_true(P->refill_due <= t0 + HOLD); /* one burst, one hold: none started since */
}

/* Beyond max_queue lease requests waiting for a slot, the next is refused
 * at once (PoolExhausted), not after queue_timeout. */
static void test_max_queue_refuses_at_once(void **state)
{
	setup_pool(0, 1);
	cfg.max_queue = 2;
	warm_up(8);
	struct top *a = submit(P, "a", true);
	settle();
	answer_creates();
	settle();
	assert_int_equal(a->started, 1);
	submit(P, "b", true);
	submit(P, "c", true);
	settle();
	assert_int_equal(P->n_waiting, 2);
	assert_int_equal(n_fails, 0);
	submit(P, "d", true);
	settle(); /* the same instant */
	assert_int_equal(n_fails, 1);
	assert_string_equal(fails[0].code, "PoolExhausted");
	assert_int_equal(P->n_waiting, 2);
	finish(a);
}

/* After a take, the refill timer looks again when the gap ends. */
static void test_refill_timer_armed(void **state)
{
	setup_pool(2, 8);
	warm_up(8);
	struct top *t = submit(P, "a", true);
	settle();
	assert_true(ev_is_active(&P->refill));
	double left = ev_timer_remaining(EV_DEFAULT, &P->refill);
	assert_true(left > GAP - 0.1 && left <= GAP + 0.001);
	finish(t);
}

/* A lease that finds no ready slot never waits for the hold: it creates
 * on demand at once. */
static void test_on_demand_not_held(void **state)
{
	setup_pool(0, 4);
	warm_up(8);
	struct top *t = submit(P, "a", true);
	settle();
	assert_int_equal(P->n_creating_direct, 1);
	assert_int_equal(creating(), 1);
	answer_creates();
	settle();
	assert_int_equal(t->started, 1);
	assert_int_equal(P->n_leased, 1);
	assert_int_equal(pool_total(P), 1);
	finish(t);
}

/* Failed creates back off 1 s, 2 s, 4 s … 60 s; a success resets. */
static void test_create_backoff(void **state)
{
	setup_pool(1, 4);
	node_up(8, "[]");
	double expect = 1;
	for (int i = 0; i < 8; i++) {
		fake_answer(next_call("POST", "/v1/slots"), 500,
			    "{\"error\": {\"code\": \"X\", \"message\": \"no runtime\"}}");
		double t = now_s;
		assert_true(fabs(P->backoff - expect) < 1e-9);
		assert_string_equal(P->last_error, "node n1: no runtime");
		assert_int_equal(node_first()->slots, 0); /* what it did not make is not counted */
		now_s = t + expect - 0.01;
		pool_kick(P);
		assert_int_equal(creating(), 0);
		now_s = t + expect;
		pool_kick(P);
		assert_int_equal(creating(), 1);
		expect = fmin(expect * 2, 60);
	}
	assert_int_equal(P->create_failures, 8);
	answer_creates();
	assert_true(P->backoff == 0);
	assert_string_equal(P->last_error, "");
	assert_int_equal(P->n_ready, 1);
}

/* ready + creating + leased never exceeds max. */
static void test_max_never_exceeded(void **state)
{
	setup_pool(3, 4);
	warm_up(8);
	struct top *t[3];
	for (int i = 0; i < 3; i++) {
		char id[8];
		snprintf(id, sizeof(id), "s%d", i);
		t[i] = submit(P, id, true);
		settle();
		finish(t[i]);
	}
	now_s += 10;
	pool_kick(P);
	answer_creates();
	pool_kick(P);
	assert_int_equal(P->n_leased, 3);
	assert_int_equal(P->n_ready, 1);
	assert_int_equal(pool_total(P), 4);
	assert_int_equal(creating(), 0);
	assert_true(P->short_error); /* says why warm is not reached */
}

/* max lowered below ready + leased (issue 17: 29 + 24 > 50): ready slots
 * beyond max go, leased ones stay. */
static void test_max_lowered_below_ready_plus_leased(void **state)
{
	setup_pool(4, 8);
	warm_up(16);
	struct top *t[4];
	for (int i = 0; i < 4; i++) {
		char id[8];
		snprintf(id, sizeof(id), "s%d", i);
		t[i] = submit(P, id, true);
		settle();
		finish(t[i]);
	}
	now_s += 10;
	pool_kick(P);
	answer_creates();
	assert_int_equal(P->n_ready, 4);
	assert_int_equal(P->n_leased, 4);
	size_t deletes = pending("DELETE", "/v1/slots/");
	pool_resize(P, 4, 6);
	assert_int_equal(P->n_leased, 4);
	assert_int_equal(pool_total(P), 6);
	assert_int_equal(P->n_ready, 2);
	assert_int_equal(pending("DELETE", "/v1/slots/"), deletes + 2);
	/* below the leases alone: every ready slot goes, no lease is touched */
	pool_resize(P, 2, 2);
	assert_int_equal(P->n_ready, 0);
	assert_int_equal(P->n_leased, 4);
	assert_int_equal(creating(), 0);
}

static struct {
	int err;
	struct node *node;
	char id[17];
	int calls;
} took;

static void take_cb(struct pool *p, int err, struct node *n, const char *slot_id, void *data)
{
	took.err = err;
	took.node = n;
	snprintf(took.id, sizeof(took.id), "%s", slot_id ? slot_id : "");
	took.calls++;
}

/* A judged run holds its slot (counted toward max) and gives it back:
 * used → destroyed, unused → ready again. */
static void test_judged_hold_and_return(void **state)
{
	setup_pool(1, 2);
	warm_up(8);
	pool_take(P, 5, take_cb, NULL);
	assert_int_equal(took.calls, 0);    /* never synchronous */
	assert_int_equal(pool_total(P), 1); /* in hand-off: counted */
	settle();
	assert_int_equal(took.err, 0);
	pool_judged_hold(P);
	assert_int_equal(P->n_running, 1);
	assert_int_equal(pool_total(P), 1);
	now_s += HOLD;
	pool_kick(P);
	answer_creates(); /* refilled beside it, up to max */
	assert_int_equal(pool_total(P), 2);
	char path[64];
	snprintf(path, sizeof(path), "/v1/slots/%s", took.id);
	pool_judged_return(P, took.node, took.id, false); /* unused: ready again */
	assert_int_equal(P->n_running, 0);
	assert_int_equal(P->n_ready, 1); /* above warm 1: the other ready one goes */
	assert_int_equal(pending("DELETE", "/v1/slots/"), 1);

	pool_take(P, 5, take_cb, NULL);
	settle();
	pool_judged_hold(P);
	snprintf(path, sizeof(path), "/v1/slots/%s", took.id);
	size_t slots = node_first()->slots;
	pool_judged_return(P, took.node, took.id, true); /* used: destroyed */
	assert_int_equal(pending("DELETE", path), 1);
	assert_int_equal(node_first()->slots, slots - 1 + creating());
}

/* A judged run's take (pool_take_judged) with more of the pool's
 * submissions queued starts no hold: a burst of submissions, each taking a
 * fresh slot, has the next ones made while it runs. A lone one (none
 * queued behind it) holds the refill until it gives its slot back, at most
 * REFILL_HOLD. */
static void test_judged_take_refills_at_once_in_a_burst(void **state)
{
	setup_pool(2, 8);
	warm_up(8);
	/* a lone submission: no refill while it runs */
	pool_take_judged(P, 5, take_cb, NULL);
	settle();
	assert_int_equal(took.err, 0);
	pool_judged_hold(P);
	now_s += 0.5; /* past the lease gap: still held, the run goes on */
	pool_kick(P);
	assert_int_equal(creating(), 0);
	pool_judged_return(P, took.node, took.id, true);
	assert_int_equal(creating(), 1); /* its run is over: refilled */
	answer_creates();
	assert_int_equal(P->n_ready, 2);
	/* a burst: the queue holds more of the pool's submissions */
	P->n_judge_queued = 5; /* ops.c's count, after this one's pop */
	for (int k = 0; k < 3; k++) {
		took.calls = 0;
		pool_take_judged(P, 5, take_cb, NULL);
		settle();
		assert_int_equal(took.calls, 1);
		assert_int_equal(took.err, 0);
		pool_judged_hold(P);
		assert_int_equal(creating(), 1); /* the taken one is made again now */
		answer_creates();
		assert_int_equal(P->n_ready, 2);
		pool_judged_return(P, took.node, took.id, true);
		now_s += 0.05;
	}
	/* a lone run that never ends holds the refill at most REFILL_HOLD */
	P->n_judge_queued = 0;
	pool_take_judged(P, 5, take_cb, NULL);
	settle();
	pool_judged_hold(P);
	now_s += HOLD - 0.01;
	pool_kick(P);
	assert_int_equal(creating(), 0);
	now_s += 0.02;
	pool_kick(P);
	assert_int_equal(creating(), 1);
}

/* A take gets the slot ready the longest: its pre-started helpers (a Java
 * compile server) had idle CPU to warm up, one made in a burst has not. A
 * shrink below `warm` destroys the newest. */
static void test_take_oldest_shrink_newest(void **state)
{
	char first[64], fresh[64];

	setup_pool(2, 8);
	warm_up(8); /* two ready, made at now_s */
	now_s += 10;
	P->n_judge_queued = 5; /* a burst: refilled at each take */
	pool_take_judged(P, 5, take_cb, NULL);
	settle();
	assert_int_equal(took.err, 0);
	snprintf(first, sizeof(first), "%s", took.id);
	pool_judged_hold(P);
	assert_int_equal(creating(), 1);
	answer_creates(); /* made now: the newest */
	assert_int_equal(P->n_ready, 2);
	snprintf(fresh, sizeof(fresh), "%s", P->ready->id);
	pool_take_judged(P, 5, take_cb, NULL);
	settle();
	assert_int_equal(took.err, 0);
	assert_string_not_equal(took.id, fresh);  /* the other warm one, not the one just made */
	assert_string_not_equal(took.id, first);
	pool_judged_hold(P);
	now_s += 1;
	answer_creates(); /* newer still than `fresh` */
	assert_int_equal(P->n_ready, 2);
	/* warm lowered to 1: of the two ready, the newest goes */
	P->warm = 1;
	pool_kick(P);
	assert_int_equal(P->n_ready, 1);
	assert_string_equal(P->ready->id, fresh);
	/* a node holding twice its capacity (restarted smaller) gives none of
	 * its ready slots to a take, as before: the take waits */
	node_first()->slots = 2 * node_first()->capacity;
	took.calls = 0;
	pool_take_judged(P, 5, take_cb, NULL);
	settle();
	assert_int_equal(took.calls, 0);
	assert_int_equal(P->n_ready, 1);
}

/* The node's slot count: the check's figure, plus creates, minus destroys. */
static void test_node_slot_count(void **state)
{
	setup_pool(2, 8);
	set_info(8, 5);
	node_up(8, "[]");
	assert_int_equal(node_first()->slots, 0 + 2); /* the sync's empty list counted 0: the info said 0 */
	answer_creates();
	set_info(8, 7);
	health_check();
	assert_int_equal(node_first()->slots, 7);
	pool_resize(P, 1, 8);
	assert_int_equal(node_first()->slots, 6);
	assert_int_equal(P->n_ready, 1);
}

/* A pool of warm = pct% (the share of the nodes' capacity) and max = auto. */
static void add_share_pool(const char *name, unsigned pct)
{
	struct pool_conf *pc;

	add_pool(name, 0, 100000, 60000, 3600000, false);
	for (pc = cfg.pools; pc->next; pc = pc->next)
		;
	pc->warm_auto = pc->max_auto = true;
	pc->warm_pct = pct;
}

/* warm = N%: N% of the capacity of the nodes with the language, never less
 * than auto (their run_slots: 2 here), never more than max; it follows the
 * node's capacity; a number (PATCH, pool_resize) replaces it. */
static void test_warm_share_of_capacity(void **state)
{
	add_share_pool("p", 12);
	start_poold();
	P = pool_find("p");
	node_up(376, "[]");
	assert_int_equal(P->warm, 45); /* 12% of 376 */
	assert_int_equal(P->max, 376);
	assert_int_equal(P->warm_pct, 12);
	set_info(10, 0); /* a small node: 12% is 1, auto's 2 stands */
	health_check();
	pool_kick(P);
	assert_int_equal(P->warm, 2);
	set_info(1000, 0);
	health_check();
	pool_kick(P);
	assert_int_equal(P->warm, 120);
	pool_set_auto(P, true, 12, false);
	pool_resize(P, 3, 50);
	assert_int_equal(P->warm_pct, 0);
	assert_false(P->warm_auto);
	pool_kick(P);
	assert_int_equal(P->warm, 3);
	pool_set_auto(P, true, 100, false); /* a max given as a number caps it */
	assert_int_equal(P->warm, 50);
}

/* A warm = N% pool's reserve (its share beyond auto) serves a burst from
 * slots made before it: while judged submissions are queued (any pool's)
 * it is not made again, only the auto part (2); once none is queued (the
 * last runs may go on), it is. A pool with a number for warm refills as
 * before. */
static void test_reserve_made_again_after_the_burst(void **state)
{
	add_share_pool("p", 50);
	add_pool("q", 0, 8, 60000, 3600000, false);
	start_poold();
	P = pool_find("p");
	struct pool *q = pool_find("q");
	warm_up(20);
	assert_int_equal(P->warm, 10);
	assert_int_equal(P->n_ready, 10);
	q->n_judge_queued = 3; /* another pool's burst */
	for (int k = 0; k < 9; k++) {
		pool_take_judged(P, 5, take_cb, NULL);
		settle();
		assert_int_equal(took.err, 0);
		pool_judged_hold(P);
		answer_creates();
		pool_judged_return(P, took.node, took.id, true);
		now_s += 0.05;
	}
	pool_kick(P);
	assert_int_equal(P->n_ready + P->n_creating, 2); /* its auto part, not 10 */
	q->n_judge_queued = 0;
	q->n_judge_running = 1; /* the last run of the burst */
	pool_kick(P);
	assert_int_equal(P->n_ready + P->n_creating, 10); /* made again */
	/* a number: refilled at once, burst or not */
	pool_resize(P, 6, 20);
	P->n_judge_queued = 3; /* its own burst: a take is refilled at once */
	while (answer_creates())
		;
	pool_take_judged(P, 5, take_cb, NULL);
	settle();
	pool_judged_hold(P);
	pool_kick(P);
	assert_int_equal(P->n_ready + P->n_creating, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_warm_up),
	    cmocka_unit_test(test_refill_waits_for_gap_and_quiet_node),
	    cmocka_unit_test(test_refill_hold_ends),
	    cmocka_unit_test(test_burst_hold_from_first_lease),
	    cmocka_unit_test(test_steady_stream_refilled_after_hold),
	    cmocka_unit_test(test_max_queue_refuses_at_once),
	    cmocka_unit_test(test_refill_timer_armed),
	    cmocka_unit_test(test_on_demand_not_held),
	    cmocka_unit_test(test_create_backoff),
	    cmocka_unit_test(test_max_never_exceeded),
	    cmocka_unit_test(test_max_lowered_below_ready_plus_leased),
	    cmocka_unit_test(test_judged_hold_and_return),
	    cmocka_unit_test(test_judged_take_refills_at_once_in_a_burst),
	    cmocka_unit_test(test_take_oldest_shrink_newest),
	    cmocka_unit_test(test_node_slot_count),
	    cmocka_unit_test(test_warm_share_of_capacity),
	    cmocka_unit_test(test_reserve_made_again_after_the_burst),
	};
	return run_each(tests, sizeof(tests) / sizeof(tests[0]));
}
