/* test_lease.c — poold's lease table (lease.c) over a fake node and a fake
 * clock (fake_node.h): a lease from a ready slot, the idle timeout (reset by
 * every call, never while busy), max_lifetime, the session queue bound,
 * release while acquiring, a lost node (tombstones, told once, reaped), the
 * three ways a node's slot list is read back (first, return, periodic every
 * 30 s) and the pool and node counts every transition leaves behind. */
#include "fake_node.h"

#define IDLE_S 10.0
#define LIFE_S 60.0

static struct pool *P;

static void setup_pool(size_t warm, size_t max)
{
	add_pool("p", warm, max, (uint64_t)(IDLE_S * 1000), (uint64_t)(LIFE_S * 1000), false);
	start_poold();
	P = pool_find("p");
	assert_non_null(P);
}

/* A session of P on a warm pool: its first operation started. */
static struct top *lease_one(const char *ident)
{
	struct top *t = submit(P, ident, true);
	settle();
	assert_int_equal(t->started, 1);
	assert_int_equal(t->lease->state, LEASE_ACTIVE);
	return t;
}

static void test_lease_from_ready_slot(void **state)
{
	setup_pool(2, 4);
	warm_up(8);
	assert_int_equal(P->n_ready, 2);

	struct top *t = submit(P, "a", true);
	assert_int_equal(t->started, 0); /* pool_take answers later, never at once */
	settle();
	assert_int_equal(t->started, 1);
	struct lease *l = t->lease;
	assert_string_equal(l->key, "p/a");
	assert_int_equal(P->n_leased, 1);
	assert_int_equal(P->n_ready, 1);
	assert_int_equal(P->n_handoff, 0);
	assert_int_equal(node_first()->running, 1); /* its op is in flight on the node */
	/* the first operation labels the slot, once */
	assert_string_equal(lease_label_once(l), "p/a");
	assert_null(lease_label_once(l));
	finish(t);
	assert_int_equal(node_first()->running, 0);
	assert_int_equal(l->executions, 1);
	assert_ptr_equal(lease_find(P, "a"), l);
	assert_int_equal(lease_count(), 1);
}

/* Idle: ended when idle for more than idle_timeout, not at it. */
static void test_idle_timeout(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	double t0 = now_s;
	struct top *t = lease_one("a");
	struct lease *l = t->lease;
	char path[64];
	snprintf(path, sizeof(path), "/v1/slots/%s", l->slot_id);
	size_t slots = node_first()->slots;
	finish(t);

	now_s = t0 + IDLE_S;
	leases_reap();
	assert_ptr_equal(lease_find(P, "a"), l);
	assert_int_equal(pending("DELETE", path), 0);

	now_s = t0 + IDLE_S + 0.01;
	leases_reap();
	assert_null(lease_find(P, "a"));
	assert_int_equal(lease_count(), 0);
	assert_int_equal(pending("DELETE", path), 1); /* its slot is destroyed */
	assert_int_equal(P->n_leased, 0);
	assert_int_equal(node_first()->slots, slots - 1 + creating());
}

/* Every call resets the idle clock; a busy session is never idle. */
static void test_idle_reset_and_busy(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	double t0 = now_s;
	finish(lease_one("a"));

	now_s = t0 + 8;
	struct top *t = submit(P, "a", true);
	assert_int_equal(t->started, 1); /* the lease exists: runs at once */
	finish(t);
	now_s = t0 + 8 + IDLE_S - 0.01;
	leases_reap();
	assert_non_null(lease_find(P, "a"));

	/* busy for longer than the idle timeout */
	t = submit(P, "a", true);
	now_s += 3 * IDLE_S;
	leases_reap();
	assert_int_equal(lease_find(P, "a")->state, LEASE_ACTIVE);
	finish(t);
	now_s += IDLE_S + 0.01;
	leases_reap();
	assert_null(lease_find(P, "a"));
}

/* max_lifetime ends a session in use; one busy ends when its op is done. */
static void test_max_lifetime(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	double t0 = now_s;
	finish(lease_one("a"));
	struct lease *l = lease_find(P, "a");
	for (now_s = t0 + 5; now_s <= t0 + LIFE_S; now_s += 5) {
		finish(submit(P, "a", true));
		leases_reap();
		assert_int_equal(l->state, LEASE_ACTIVE);
	}
	struct top *t = submit(P, "a", true); /* in flight */
	submit(P, "a", true);		      /* queued behind it */
	now_s = t0 + LIFE_S + 0.01;
	leases_reap();
	assert_int_equal(l->state, LEASE_ENDING);
	assert_string_equal(last_fail(), "SessionEnded"); /* what queued behind */
	assert_int_equal(pending("DELETE", "/v1/slots/"), 0);
	/* a new request on it while it ends: retry in a moment */
	submit(P, "a", true);
	assert_string_equal(last_fail(), "SessionEnding");
	finish(t);
	assert_int_equal(pending("DELETE", "/v1/slots/"), 1);
	assert_null(lease_find(P, "a"));
	assert_int_equal(P->n_leased, 0);
	assert_int_equal(node_first()->running, 0);
}

static void test_session_queue_bound(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	struct top *t = lease_one("a");
	struct top *q[4];
	for (int i = 0; i < 4; i++)
		q[i] = submit(P, "a", true);
	assert_int_equal(t->lease->queued, 4);
	assert_int_equal(n_fails, 0);
	submit(P, "a", true);
	assert_int_equal(fails[0].status, 429);
	assert_string_equal(fails[0].code, "SessionQueueFull");
	/* in arrival order, one at a time */
	finish(t);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(q[i]->started, 1);
		if (i < 3)
			assert_int_equal(q[i + 1]->started, 0);
		finish(q[i]);
	}
	assert_int_equal(n_fails, 1);
}

static void test_not_found_without_create(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	submit(P, "nobody", false);
	assert_int_equal(fails[0].status, 404);
	assert_string_equal(fails[0].code, "SessionNotFound");
	assert_int_equal(lease_count(), 0);
	assert_int_equal(P->n_ready, 1);
}

/* Released while its slot is being created: the slot is destroyed when it
 * comes, nothing stays counted. */
static void test_release_while_acquiring(void **state)
{
	setup_pool(0, 2);
	warm_up(8);
	struct top *t = submit(P, "a", true);
	settle();
	assert_int_equal(P->n_waiting, 1);
	assert_int_equal(creating(), 1); /* created on demand */
	struct lease *l = lease_find(P, "a");
	assert_int_equal(l->state, LEASE_ACQUIRING);
	lease_end(l, "released");
	assert_string_equal(last_fail(), "SessionEnded");
	(void)t;
	answer_creates();
	settle();
	assert_null(lease_find(P, "a"));
	assert_int_equal(pending("DELETE", "/v1/slots/"), 1);
	assert_int_equal(P->n_leased, 0);
	assert_int_equal(pool_total(P), 0);
	assert_int_equal(node_first()->running, 0);
}

/* A pool at max: the lease waits its queue_timeout, then PoolExhausted. */
static void test_exhausted_after_queue_timeout(void **state)
{
	setup_pool(1, 1);
	warm_up(8);
	double t0 = now_s;
	struct top *t = lease_one("a");
	submit(P, "b", true);
	settle();
	assert_int_equal(P->n_waiting, 1);
	assert_int_equal(pending("POST", "/v1/slots"), 0); /* at max: nothing created */
	now_s = t0 + 4.99;
	pool_kick(P);
	settle();
	assert_int_equal(n_fails, 0);
	now_s = t0 + 5.0;
	pool_kick(P);
	settle();
	assert_int_equal(fails[0].status, 503);
	assert_string_equal(fails[0].code, "PoolExhausted");
	assert_null(lease_find(P, "b"));
	assert_int_equal(lease_count(), 1);
	finish(t);
}

/* A refused call marks the node down: its idle session becomes a
 * tombstone, answers SessionLost once, then the identifier starts afresh. */
static void test_lost_told_once(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	finish(lease_one("a"));
	struct lease *l = lease_find(P, "a");
	nodes_check_all();
	fake_answer(next_call("GET", "/v1/info"), 0, NULL); /* refused */
	assert_false(node_first()->up);
	assert_int_equal(l->state, LEASE_LOST);
	assert_int_equal(P->n_leased, 0);
	assert_int_equal(P->n_ready, 0); /* its ready slots are forgotten */
	submit(P, "a", true);
	assert_int_equal(fails[0].status, 410);
	assert_string_equal(fails[0].code, "SessionLost");
	assert_null(lease_find(P, "a"));
	assert_int_equal(lease_count(), 0);
}

/* Lost while an op runs and another waits: the waiting one hears
 * SessionLost (told), the tombstone goes when the running one ends. */
static void test_lost_while_busy(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	struct top *t = lease_one("a");
	struct lease *l = t->lease;
	submit(P, "a", true);
	node_mark_down(node_first(), "test");
	assert_int_equal(l->state, LEASE_LOST);
	assert_string_equal(fails[0].code, "SessionLost");
	assert_non_null(lease_find(P, "a"));
	finish(t);
	assert_null(lease_find(P, "a"));
	assert_int_equal(node_first()->running, 0);
}

/* Lost while busy and nobody told: the tombstone stays for the next
 * request, and is forgotten after idle_timeout. */
static void test_tombstone_reaped(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	struct top *t = lease_one("a");
	node_mark_down(node_first(), "test");
	finish(t);
	double lost_at = now_s;
	assert_non_null(lease_find(P, "a"));
	now_s = lost_at + IDLE_S;
	leases_reap();
	assert_non_null(lease_find(P, "a"));
	now_s = lost_at + IDLE_S + 0.01;
	leases_reap();
	assert_null(lease_find(P, "a"));
}

/* A health check that times out is not a refusal: down after two in a row. */
static void test_node_down_after_two_timeouts(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	nodes_check_all();
	fake_answer_full(next_call("GET", "/v1/info"), 0, true, NULL);
	assert_true(node_first()->up);
	nodes_check_all();
	fake_answer_full(next_call("GET", "/v1/info"), 0, true, NULL);
	assert_false(node_first()->up);
	/* it answers again: up, and read back (a return) */
	set_info(8, 1);
	health_check(); /* up again: a sync is asked for */
	fake_answer(next_call("GET", "/v1/slots"), 200, "{\"slots\": []}");
	assert_true(node_first()->up);
}

static int call_answers;

static void count_answer(struct node *n, struct http_result *res, void *data)
{
	call_answers++;
}

/* A node call that times out says the node is slow, not gone; one that is
 * refused marks it down at once (its sessions are lost). */
static void test_call_timeout_vs_refused(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	finish(lease_one("a"));
	assert_non_null(node_call(node_first(), "GET", "/v1/slots/x", NULL, 0, count_answer, NULL));
	fake_answer_full(next_call("GET", "/v1/slots/x"), 0, true, NULL);
	assert_int_equal(call_answers, 1);
	assert_true(node_first()->up);
	assert_int_equal(lease_find(P, "a")->state, LEASE_ACTIVE);
	node_call(node_first(), "GET", "/v1/slots/y", NULL, 0, count_answer, NULL);
	fake_answer(next_call("GET", "/v1/slots/y"), 0, NULL);
	assert_int_equal(call_answers, 2);
	assert_false(node_first()->up);
	assert_int_equal(lease_find(P, "a")->state, LEASE_LOST);
}

/* Releasing a tombstone forgets it at once. */
static void test_release_tombstone(void **state)
{
	setup_pool(1, 4);
	warm_up(8);
	struct top *t = lease_one("a");
	node_mark_down(node_first(), "test");
	finish(t); /* nobody told: the tombstone stays */
	struct lease *l = lease_find(P, "a");
	assert_int_equal(l->state, LEASE_LOST);
	lease_end(l, "released after loss");
	assert_null(lease_find(P, "a"));
	assert_int_equal(lease_count(), 0);
}

/* A lease whose request is gone when its slot comes (here: refused by a
 * session queue of 0) labels the slot with a PATCH of its own, counted as
 * running on the node meanwhile; then it is an idle session. */
static void test_label_without_request(void **state)
{
	setup_pool(1, 4);
	cfg.session_queue = 0;
	warm_up(8);
	submit(P, "a", true);
	assert_string_equal(last_fail(), "SessionQueueFull");
	settle();
	struct lease *l = lease_find(P, "a");
	struct fcall *f = next_call("PATCH", "/v1/slots/");
	assert_non_null(f);
	assert_string_equal(f->body, "{\"label\":\"p/a\"}");
	assert_int_equal(node_first()->running, 1);
	assert_int_equal(l->state, LEASE_ACQUIRING);
	fake_answer(f, 200, "{}");
	assert_int_equal(l->state, LEASE_ACTIVE);
	assert_int_equal(node_first()->running, 0);
	assert_int_equal(P->n_leased, 1);
}

/* The label PATCH refused: the session ends, its slot is destroyed. */
static void test_label_refused(void **state)
{
	setup_pool(1, 4);
	cfg.session_queue = 0;
	warm_up(8);
	submit(P, "a", true);
	settle();
	fake_answer(next_call("PATCH", "/v1/slots/"), 500, "{}");
	assert_null(lease_find(P, "a"));
	assert_int_equal(pending("DELETE", "/v1/slots/"), 1);
	assert_int_equal(P->n_leased, 0);
	assert_int_equal(node_first()->running, 0);
}

/* The node goes down while the PATCH is in flight: lost, and forgotten
 * when the PATCH fails (nobody is waiting to be told). */
static void test_label_node_down(void **state)
{
	setup_pool(1, 4);
	cfg.session_queue = 0;
	warm_up(8);
	submit(P, "a", true);
	settle();
	struct fcall *f = next_call("PATCH", "/v1/slots/");
	node_mark_down(node_first(), "test");
	assert_int_equal(lease_find(P, "a")->state, LEASE_LOST);
	fake_answer(f, 0, NULL);
	assert_int_equal(node_first()->running, 0);
	assert_int_equal(P->n_leased, 0);
	/* a tombstone nobody was told about stays for the next request */
	submit(P, "a", true);
	assert_string_equal(last_fail(), "SessionLost");
	assert_null(lease_find(P, "a"));
}

#define SLOT(id, label, state, fresh)                                                                                  \
	"{\"id\": \"" id "\", \"language\": \"python\", \"state\": \"" state "\", \"fresh\": " fresh label "}"
#define LABEL(l) ", \"label\": \"" l "\""

/* First sync (poold restarted): labelled slots of our pools are sessions
 * again, fresh unlabelled ones ready slots, used unlabelled ones go. */
static void test_sync_first(void **state)
{
	setup_pool(1, 8);
	node_up(8, "[" SLOT("00000000000000a1", LABEL("p/kept"), "ready", "false") "," SLOT(
		       "00000000000000a2", "", "ready",
		       "true") "," SLOT("00000000000000a3", "", "ready",
					"false") "," SLOT("00000000000000a4", LABEL("other/x"), "ready",
							  "false") "," SLOT("00000000000000a5", "", "creating",
									    "true") "]");
	struct lease *l = lease_find(P, "kept");
	assert_non_null(l);
	assert_true(l->recovered);
	assert_int_equal(l->state, LEASE_ACTIVE);
	assert_string_equal(l->slot_id, "00000000000000a1");
	assert_int_equal(P->n_leased, 1);
	assert_int_equal(P->n_ready, 1);
	assert_string_equal(P->ready->id, "00000000000000a2");
	assert_int_equal(pending("DELETE", "/v1/slots/00000000000000a3"), 1);
	assert_int_equal(pending("DELETE", "/v1/slots/"), 1); /* a4 (not ours) and a5 (creating) stay */
	/* the recovered session serves its next call without a new slot */
	struct top *t = submit(P, "kept", true);
	assert_int_equal(t->started, 1);
	assert_null(lease_label_once(t->lease)); /* labelled already */
	finish(t);
}

/* Back after being down: the lost sessions' slots are destroyed, fresh
 * unlabelled slots adopted. */
static void test_sync_return(void **state)
{
	setup_pool(1, 8);
	warm_up(8);
	struct top *t = lease_one("a");
	char id[17];
	snprintf(id, sizeof(id), "%s", t->lease->slot_id);
	finish(t);
	node_mark_down(node_first(), "test");
	char slots[1024];
	snprintf(slots, sizeof(slots),
		 "[{\"id\": \"%s\", \"language\": \"python\", \"state\": \"ready\", \"fresh\": false, \"label\": "
		 "\"p/a\"}," SLOT("00000000000000b2", LABEL("p/gone"), "ready",
				  "false") "," SLOT("00000000000000b3", "", "ready", "true") "]",
		 id);
	size_t before = pending("DELETE", "/v1/slots/");
	node_up(8, slots);
	char path[64];
	snprintf(path, sizeof(path), "/v1/slots/%s", id);
	assert_int_equal(pending("DELETE", path), 1);			      /* the tombstone's slot */
	assert_int_equal(pending("DELETE", "/v1/slots/00000000000000b2"), 1); /* no session of ours */
	assert_int_equal(pending("DELETE", "/v1/slots/"), before + 2);
	assert_int_equal(P->n_leased, 0);
	assert_int_equal(P->n_ready, 1);
	assert_string_equal(P->ready->id, "00000000000000b3");
	/* the tombstone still answers SessionLost once */
	submit(P, "a", true);
	assert_string_equal(last_fail(), "SessionLost");
}

/* While up, the slot list is read back every 30 s: labelled slots no
 * session holds are destroyed, nothing is adopted, sessions kept. */
static void test_sync_periodic_30s(void **state)
{
	setup_pool(1, 8);
	warm_up(8);
	double synced = now_s;
	struct top *t = lease_one("a");
	char id[17];
	snprintf(id, sizeof(id), "%s", t->lease->slot_id);
	finish(t);
	now_s = synced + 29.99;
	assert_false(health_check());
	now_s = synced + 30.0;
	assert_true(health_check());
	char body[1024];
	snprintf(body, sizeof(body),
		 "{\"slots\": [{\"id\": \"%s\", \"language\": \"python\", \"state\": \"ready\", \"fresh\": false, "
		 "\"label\": \"p/a\"}," SLOT("00000000000000c2", LABEL("p/astray"), "ready",
					     "false") "," SLOT("00000000000000c3", "", "ready", "true") "]}",
		 id);
	size_t ready = P->n_ready;
	fake_answer(next_call("GET", "/v1/slots"), 200, body);
	assert_int_equal(pending("DELETE", "/v1/slots/00000000000000c2"), 1);
	assert_int_equal(pending("DELETE", "/v1/slots/"), 1);
	assert_int_equal(P->n_ready, ready); /* c3 not adopted */
	assert_int_equal(lease_find(P, "a")->state, LEASE_ACTIVE);
	/* the next one 30 s after this one */
	now_s = synced + 59.99;
	assert_false(health_check());
	now_s = synced + 60.0;
	assert_true(health_check());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lease_from_ready_slot),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_idle_reset_and_busy),
	    cmocka_unit_test(test_max_lifetime),
	    cmocka_unit_test(test_session_queue_bound),
	    cmocka_unit_test(test_not_found_without_create),
	    cmocka_unit_test(test_release_while_acquiring),
	    cmocka_unit_test(test_exhausted_after_queue_timeout),
	    cmocka_unit_test(test_lost_told_once),
	    cmocka_unit_test(test_lost_while_busy),
	    cmocka_unit_test(test_tombstone_reaped),
	    cmocka_unit_test(test_node_down_after_two_timeouts),
	    cmocka_unit_test(test_call_timeout_vs_refused),
	    cmocka_unit_test(test_release_tombstone),
	    cmocka_unit_test(test_label_without_request),
	    cmocka_unit_test(test_label_refused),
	    cmocka_unit_test(test_label_node_down),
	    cmocka_unit_test(test_sync_first),
	    cmocka_unit_test(test_sync_return),
	    cmocka_unit_test(test_sync_periodic_30s),
	};
	return run_each(tests, sizeof(tests) / sizeof(tests[0]));
}
