/* test_ops_sync.c — a node's slot list read back while judged runs (POST
 * /execute) hold slots on it: lease.c asks ops_judged_holds() which slots
 * are poold's own judged runs, and leaves them alone. Over the fake node and
 * the fake clock (fake_node.h) and lib's real HTTP server for /execute
 * (local_http.h): the submission goes through ops.c's fair queue and
 * admission as in poold, its run call waits on the fake node until the test
 * answers it.
 *
 * A held slot is neither destroyed nor adopted by the periodic read-back
 * (every 30 s) or by the one when the node returns, whether the node lists
 * it labelled or not yet; the hold ends with the run (the next read-back
 * destroys a slot still listed). Hostile lists: a judged label poold has no
 * run for, the held run's label on another slot, the held slot's id on
 * another node, the held slot listed twice, or again and again; a poold
 * restarted while a judged run ran (the slot is recovered as a lease that
 * idles out, never a ready slot); a node restarted under a run (the run
 * fails, the hold ends); a run refused NodeBusy (the slot goes back ready,
 * not held, and the run takes a slot again). */
#include "fake_node.h"
#include "local_http.h"
#include "ops.h"

#define IDLE_S 10.0
#define N1     "http://fake:1"
#define N2     "http://fake:2"

static struct pool *P;

static void handler(struct http_request *req, void *data)
{
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
	assert_non_null(body);
	assert_string_equal(req->path, "/execute");
	ops_execute(req, body); /* takes body */
}

static void setup_judged(size_t warm, size_t max)
{
	add_pool("py", warm, max, (uint64_t)(IDLE_S * 1000), 3600 * 1000, false);
	cfg.max_tests = 16;
	cfg.execute_max_queue = 16;
	cfg.execute_user_queue = 4;
	cfg.execute_queue_timeout_ms = 60 * 1000;
	start_poold();
	ops_init(EV_DEFAULT, &cfg, NULL);
	P = pool_find("py");
	assert_non_null(P);
	lh_listen(handler, NULL);
}

static int teardown(void **state)
{
	lh_unlink();
	return 0;
}

/* ---- judged runs ---- */
struct judged {
	struct lh_conn *conn;
	struct fcall *run; /* its POST /v1/slots/<id>/run on the fake node */
	char slot[17];
};

/* The newest run call not answered yet. */
static struct fcall *newest_run(void)
{
	for (size_t i = n_calls; i-- > 0;)
		if (!calls[i].answered && strcmp(calls[i].method, "POST") == 0 &&
		    strncmp(calls[i].path, "/v1/slots/", 10) == 0 && strstr(calls[i].path, "/run"))
			return &calls[i];
	return NULL;
}

/* Runs already sent, so that the next one is told apart. */
static size_t runs_sent(void)
{
	size_t k = 0;
	for (size_t i = 0; i < n_calls; i++)
		if (strcmp(calls[i].method, "POST") == 0 && strncmp(calls[i].path, "/v1/slots/", 10) == 0 &&
		    strstr(calls[i].path, "/run"))
			k++;
	return k;
}

/* The run call a judged submission made: its slot, labelled as judged. */
static void judged_sent(struct judged *j)
{
	j->run = newest_run();
	assert_non_null(j->run);
	assert_int_equal(sscanf(j->run->path, "/v1/slots/%16[0-9a-f]/run", j->slot), 1);
	assert_int_equal(strncmp(j->run->label, "py/judged-", 10), 0);
}

static struct judged judged_start(const char *user)
{
	struct judged j = {0};
	char body[512];
	size_t before = runs_sent();

	snprintf(body, sizeof(body),
		 "{\"language\": \"python\", \"code\": \"print(1)\", \"user_id\": \"%s\", "
		 "\"test_cases\": [{\"input\": \"\", \"expected_output\": \"1\\n\"}]}",
		 user);
	j.conn = lh_send("POST", "/execute", body);
	settle();
	assert_int_equal(runs_sent(), before + 1);
	judged_sent(&j);
	assert_true(lh_unanswered(j.conn));
	return j;
}

#define RUN_OK                                                                                                         \
	"{\"verdict\": \"accepted\", \"tests\": [{\"verdict\": \"accepted\", \"stdout\": \"1\\n\", \"stderr\": \"\", " \
	"\"exit_code\": 0, \"time_ms\": 3, \"memory_kb\": 9000}]}"

/* The node answers the run: the submission's answer is 200 accepted. */
static void judged_finish(struct judged *j)
{
	fake_answer(j->run, 200, RUN_OK);
	lh_wait(j->conn);
	assert_int_equal(j->conn->status, 200);
	assert_string_equal(json_string_value(json_object_get(j->conn->body, "verdict")), "accepted");
	lh_close(j->conn);
}

/* ---- the node's slot list ---- */
static char list[4096];

static void list_clear(void)
{
	snprintf(list, sizeof(list), "[");
}

/* One slot: label NULL for none. */
static void list_add(const char *id, const char *label, const char *state, bool fresh)
{
	size_t o = strlen(list);
	char lab[200] = "";
	if (label)
		snprintf(lab, sizeof(lab), ", \"label\": \"%s\"", label);
	snprintf(list + o, sizeof(list) - o,
		 "%s{\"id\": \"%s\", \"language\": \"python\", \"state\": \"%s\", \"fresh\": %s, \"created\": %.3f, "
		 "\"last_used\": %.3f%s}",
		 o > 1 ? ", " : "", id, state, fresh ? "true" : "false", now_s - 5, now_s - 1, lab);
}

/* The list as a JSON array, and as GET /v1/slots's answer. */
static const char *list_json(void)
{
	static char json[4200];
	snprintf(json, sizeof(json), "%s]", list);
	return json;
}

static const char *list_body(void)
{
	static char body[4300];
	snprintf(body, sizeof(body), "{\"slots\": %s}", list_json());
	return body;
}

/* The periodic read-back (30 s after the last), the node listing `list`. */
static void periodic_sync(void)
{
	now_s += 30;
	assert_true(health_check());
	fake_answer(next_call("GET", "/v1/slots"), 200, list_body());
}

/* Down, then back: the return read-back, the node listing `list`. */
static void down_and_back(void)
{
	node_mark_down(node_first(), "test");
	assert_false(node_first()->up);
	now_s += 5;
	assert_true(health_check());
	fake_answer(next_call("GET", "/v1/slots"), 200, list_body());
	assert_true(node_first()->synced);
}

static size_t deletes_of(const char *base, const char *id)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/slots/%s", id);
	return pending_at(base, "DELETE", path);
}

static bool is_ready(const char *id)
{
	for (struct ready_slot *r = P->ready; r; r = r->next)
		if (strcmp(r->id, id) == 0)
			return true;
	return false;
}

/* ---- the cases ---- */

/* While the run holds its slot, the 30 s read-back leaves it alone; once
 * the run is answered the slot is destroyed, and a read-back that lists it
 * still (its DELETE not done yet) destroys it: nothing holds it any more. */
static void test_periodic_sync_leaves_held_slot(void **state)
{
	setup_judged(2, 4);
	warm_up(8);
	struct judged j = judged_start("u1");
	assert_true(ops_judged_holds(node_first(), j.slot));
	size_t ready = P->n_ready;

	list_clear();
	list_add(j.slot, j.run->label, "busy", false);
	periodic_sync();
	assert_int_equal(deletes_of(N1, j.slot), 0);
	assert_int_equal(lease_count(), 0); /* not taken for a session */
	assert_int_equal(P->n_ready, ready);
	assert_true(lh_unanswered(j.conn));

	judged_finish(&j);
	assert_false(ops_judged_holds(node_first(), j.slot));
	assert_int_equal(deletes_of(N1, j.slot), 1); /* used: destroyed */
	answer_deletes();
	periodic_sync(); /* the same list: the slot is no run's now */
	assert_int_equal(deletes_of(N1, j.slot), 1);
	assert_int_equal(lease_count(), 0);
	answer_deletes();

	/* the next run holds its own slot, and only that one */
	struct judged j2 = judged_start("u1");
	list_add(j2.slot, j2.run->label, "busy", false);
	list_add("00000000000000e1", NULL, "ready", false);
	periodic_sync();
	assert_int_equal(deletes_of(N1, j.slot), 1);
	assert_int_equal(deletes_of(N1, j2.slot), 0);
	assert_int_equal(deletes_of(N1, "00000000000000e1"), 1);
	judged_finish(&j2);
}

/* The node was down and is back while the run's call is still out: the
 * return read-back neither adopts the held slot as ready (listed fresh and
 * unlabelled: the run carrying the label has not reached it yet) nor
 * destroys it (listed labelled). */
static void test_return_sync_leaves_held_slot(void **state)
{
	setup_judged(1, 4);
	warm_up(8);
	struct judged j = judged_start("u1");

	list_clear();
	list_add(j.slot, NULL, "ready", true);
	down_and_back();
	assert_false(is_ready(j.slot));
	assert_int_equal(deletes_of(N1, j.slot), 0);

	list_clear();
	list_add(j.slot, j.run->label, "busy", false);
	down_and_back();
	assert_int_equal(deletes_of(N1, j.slot), 0);
	assert_false(is_ready(j.slot));
	assert_int_equal(lease_count(), 0);

	judged_finish(&j);
	assert_int_equal(deletes_of(N1, j.slot), 1);
	assert_false(is_ready(j.slot));
}

/* Holds poold does not know: a judged label no run of ours has, and the
 * held run's own label on another slot. Both are destroyed; only the slot
 * the run holds is left. */
static void test_unknown_judged_slots_destroyed(void **state)
{
	setup_judged(1, 4);
	warm_up(8);
	struct judged j = judged_start("u1");

	list_clear();
	list_add(j.slot, j.run->label, "busy", false);
	list_add("00000000000000e1", "py/judged-00000000-0000-4000-8000-000000000000", "busy", false);
	list_add("00000000000000e2", j.run->label, "ready", false);
	periodic_sync();
	assert_int_equal(deletes_of(N1, "00000000000000e1"), 1);
	assert_int_equal(deletes_of(N1, "00000000000000e2"), 1);
	assert_int_equal(deletes_of(N1, j.slot), 0);
	assert_int_equal(lease_count(), 0);
	assert_false(ops_judged_holds(node_first(), "00000000000000e1"));
	assert_false(ops_judged_holds(node_first(), "00000000000000e2"));
	judged_finish(&j);
}

/* The held slot listed twice in one list (once labelled, once fresh), and
 * read back again and again while the run lasts: never destroyed, adopted
 * or recovered. */
static void test_held_slot_listed_twice(void **state)
{
	setup_judged(1, 4);
	warm_up(8);
	struct judged j = judged_start("u1");

	list_clear();
	list_add(j.slot, j.run->label, "busy", false);
	list_add(j.slot, NULL, "ready", true);
	down_and_back();
	for (int i = 0; i < 3; i++) {
		periodic_sync();
		assert_int_equal(deletes_of(N1, j.slot), 0);
		assert_false(is_ready(j.slot));
		assert_int_equal(lease_count(), 0);
	}
	assert_true(ops_judged_holds(node_first(), j.slot));
	judged_finish(&j);
	assert_false(ops_judged_holds(node_first(), j.slot));
}

/* Two nodes: the held slot's id listed by the other node (with the run's
 * label) is not ours there: destroyed on that node only. */
static void test_held_id_on_other_node(void **state)
{
	two_nodes = true;
	setup_judged(1, 4);
	set_info(8, 0);
	nodes_check_all();
	fake_answer(next_call_at(N1, "GET", "/v1/info"), 200, info_body);
	fake_answer(next_call_at(N2, "GET", "/v1/info"), 200, info_body);
	fake_answer(next_call_at(N1, "GET", "/v1/slots"), 200, "{\"slots\": []}");
	fake_answer(next_call_at(N2, "GET", "/v1/slots"), 200, "{\"slots\": []}");
	while (answer_creates())
		;
	settle();
	struct judged j = judged_start("u1");
	const char *held_at = j.run->base, *other = strcmp(held_at, N1) == 0 ? N2 : N1;
	struct node *holder = node_first(), *elsewhere = holder->next;
	if (strcmp(holder->url, held_at) != 0) {
		elsewhere = holder;
		holder = holder->next;
	}
	assert_true(ops_judged_holds(holder, j.slot));
	assert_false(ops_judged_holds(elsewhere, j.slot));

	now_s += 30;
	nodes_check_all();
	fake_answer(next_call_at(N1, "GET", "/v1/info"), 200, info_body);
	fake_answer(next_call_at(N2, "GET", "/v1/info"), 200, info_body);
	list_clear();
	list_add(j.slot, j.run->label, "busy", false);
	fake_answer(next_call_at(held_at, "GET", "/v1/slots"), 200, list_body());
	fake_answer(next_call_at(other, "GET", "/v1/slots"), 200, list_body());
	assert_int_equal(deletes_of(held_at, j.slot), 0);
	assert_int_equal(deletes_of(other, j.slot), 1);
	judged_finish(&j);
	assert_int_equal(deletes_of(held_at, j.slot), 1);
}

/* poold restarted while a judged run of the poold before it ran: the first
 * read-back recovers the slot as a lease (it is labelled <pool>/…), never
 * as a ready slot; the next submission takes a fresh slot, and the
 * recovered one is destroyed once idle for the pool's idle_timeout. */
static void test_restart_recovers_judged_slot_as_lease(void **state)
{
	const char *old = "py/judged-11111111-2222-4333-8444-555555555555";
	setup_judged(1, 4);
	list_clear();
	list_add("00000000000000f1", old, "busy", false);
	list_add("00000000000000f2", NULL, "ready", true);
	node_up(8, list_json());
	struct lease *l = lease_find(P, old + 3);
	assert_non_null(l);
	assert_true(l->recovered);
	assert_false(is_ready("00000000000000f1"));
	assert_true(is_ready("00000000000000f2"));
	assert_false(ops_judged_holds(node_first(), "00000000000000f1"));

	struct judged j = judged_start("u1");
	assert_string_equal(j.slot, "00000000000000f2");
	judged_finish(&j);

	double t = now_s;
	now_s = t - 1 + IDLE_S; /* last_used was 1 s before */
	leases_reap();
	assert_int_equal(deletes_of(N1, "00000000000000f1"), 0);
	now_s = t - 1 + IDLE_S + 0.01;
	leases_reap();
	assert_int_equal(deletes_of(N1, "00000000000000f1"), 1);
	assert_null(lease_find(P, old + 3));
}

/* The node restarted under a run: the run's call is refused, the
 * submission is answered 502 NodeError, the hold ends; when the node is
 * back, the slot listed with the run's label is destroyed. */
static void test_node_restart_ends_hold(void **state)
{
	setup_judged(1, 4);
	warm_up(8);
	struct judged j = judged_start("u1");
	char label[160];
	snprintf(label, sizeof(label), "%s", j.run->label);

	fake_answer(j.run, 0, NULL); /* connection refused */
	assert_false(node_first()->up);
	lh_wait(j.conn);
	assert_int_equal(j.conn->status, 502);
	assert_string_equal(lh_code(j.conn), "NodeError");
	lh_close(j.conn);
	assert_false(ops_judged_holds(node_first(), j.slot));

	answer_deletes();
	list_clear();
	list_add(j.slot, label, "ready", false);
	now_s += 5;
	assert_true(health_check());
	fake_answer(next_call("GET", "/v1/slots"), 200, list_body());
	assert_int_equal(deletes_of(N1, j.slot), 1);
	assert_int_equal(lease_count(), 0);
}

/* The node refuses the run NodeBusy: its slot goes back ready and is not
 * held any more (a read-back may adopt it); the run waits and takes a slot
 * again, held as before. */
static void test_node_busy_gives_slot_back(void **state)
{
	setup_judged(1, 4);
	warm_up(8);
	struct judged j = judged_start("u1");
	char first[17];
	snprintf(first, sizeof(first), "%s", j.slot);
	size_t before = runs_sent();

	fake_answer(j.run, 503, "{\"error\": {\"code\": \"NodeBusy\", \"message\": \"busy\"}}");
	assert_false(ops_judged_holds(node_first(), first));
	assert_true(is_ready(first));
	assert_true(lh_unanswered(j.conn));

	/* the node rests a second (poold's clock), then the queue's tick
	 * (every 0.25 s of the loop) sends the run again */
	now_s += 1.0;
	for (double t0 = lh_clock(); runs_sent() == before; usleep(1000)) {
		assert_true(lh_clock() - t0 < LH_WAIT_S);
		ev_run(EV_DEFAULT, EVRUN_NOWAIT);
	}
	judged_sent(&j);
	assert_true(ops_judged_holds(node_first(), j.slot));
	list_clear();
	list_add(j.slot, j.run->label, "busy", false);
	periodic_sync();
	assert_int_equal(deletes_of(N1, j.slot), 0);
	judged_finish(&j);
	assert_false(ops_judged_holds(node_first(), j.slot));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_periodic_sync_leaves_held_slot, teardown),
	    cmocka_unit_test_teardown(test_return_sync_leaves_held_slot, teardown),
	    cmocka_unit_test_teardown(test_unknown_judged_slots_destroyed, teardown),
	    cmocka_unit_test_teardown(test_held_slot_listed_twice, teardown),
	    cmocka_unit_test_teardown(test_held_id_on_other_node, teardown),
	    cmocka_unit_test_teardown(test_restart_recovers_judged_slot_as_lease, teardown),
	    cmocka_unit_test_teardown(test_node_restart_ends_hold, teardown),
	    cmocka_unit_test_teardown(test_node_busy_gives_slot_back, teardown),
	};
	return run_each(tests, sizeof(tests) / sizeof(tests[0]));
}
