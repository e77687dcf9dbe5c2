/* test_admit.c — sandboxd's run admission (admit.c) as poold meets it: POST
 * /v1/slots/{id}/run through lib's real HTTP server (local_http.h), with the
 * node's run_slots and run_memory, over slots of the test's own (no slot
 * is created: admit_set_find). The handler does what api.c does around a
 * run: admission first, the run started (here: s->run set, or left NULL for
 * a run refused as invalid), then counted. A run ends when s->run is no
 * longer that run; nothing else tells admit.c.
 *
 * The rules, each a case: at most run_slots at once; the sum of the memory
 * limits within run_memory (at the budget fits, past it does not); a run
 * alone is admitted whatever it asks; a run is counted with its compile's
 * memory when it compiles and that is larger, else its own (the language's
 * when the request names none); a refusal is 503 NodeBusy with Retry-After
 * and leaves the slot untouched; a run that ended, was replaced or whose
 * slot is gone frees its room at the next look; a run refused as invalid
 * is never counted, nor one refused because its slot is busy (the run
 * going on keeps its own count). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "language.h"
#include "local_http.h"
#include "log.h"
#include "settings.h"

#define MB 1024u /* kB */

static char *c_compile[] = {"/usr/bin/cc", "main.c", NULL};
/* a compiled language: runs of 256 MB, compiles of 512 MB by default */
static struct language lang_c = {.name = "c",
				 .compile_argv = c_compile,
				 .limits = {.memory_kb = 256 * MB},
				 .compile_limits = {.memory_kb = 512 * MB}};
/* an interpreted one: its compile_limits never count */
static struct language lang_py = {
    .name = "python", .limits = {.memory_kb = 256 * MB}, .compile_limits = {.memory_kb = 900 * MB}};

#define N_SLOTS 8
static struct slot slots[N_SLOTS];
static char run_tokens[64]; /* distinct addresses: a run's identity */
static unsigned next_token;
static struct settings st;

static struct slot *test_find(const char *id)
{
	for (size_t i = 0; i < N_SLOTS; i++)
		if (slots[i].id[0] && strcmp(slots[i].id, id) == 0)
			return &slots[i];
	return NULL;
}

/* api.c's order: admission, the run started, counted. ?invalid: the run
 * is refused after admission (run_start leaves s->run NULL). GET /info:
 * admit_info(). */
static void handler(struct http_request *req, void *data)
{
	char id[17] = "";
	uint64_t need_kb = 0;

	if (strcmp(req->path, "/info") == 0) {
		http_respond_json(req, 200, admit_info());
		return;
	}
	assert_int_equal(sscanf(req->path, "/v1/slots/%16[0-9a-f]/run", id), 1);
	struct slot *s = test_find(id);
	assert_non_null(s);
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
	assert_non_null(body);
	if (!admit_run(req, s, body, &need_kb)) {
		json_decref(body);
		return;
	}
	if (s->run) { /* run_start: the slot is busy; its run goes on */
		http_respond_error(req, 409, "SlotBusy", "slot %s is running something", s->id);
		admit_track(s, need_kb);
		json_decref(body);
		return;
	}
	bool invalid = strstr(req->query, "invalid") != NULL;
	if (!invalid) {
		assert_true(next_token < sizeof(run_tokens));
		s->run = (struct run *)&run_tokens[next_token++];
	}
	http_respond_json(req, invalid ? 400 : 200, json_pack("{s:I}", "need_kb", (json_int_t)need_kb));
	admit_track(s, need_kb);
	json_decref(body);
}

static double clock_s = 1000.0; /* admit_quiet_for's clock */

static double test_clock(void)
{
	return clock_s;
}

static int setup(void **state)
{
	log_init("test", LOG_ERROR);
	st.run_slots = 2;
	st.run_memory = 1024ull << 20; /* 1 GiB: 1024 MB of memory limits */
	sandboxd_settings = &st;
	memset(slots, 0, sizeof(slots));
	for (size_t i = 0; i < N_SLOTS; i++) {
		snprintf(slots[i].id, sizeof(slots[i].id), "%016zx", i + 1);
		slots[i].lang = i % 2 ? &lang_py : &lang_c; /* odd slots: python */
	}
	admit_set_find(test_find);
	admit_set_clock(test_clock);
	if (!lh_server)
		lh_listen(handler, NULL);
	return 0;
}

/* Every run ended: the table is empty again at the next look. */
static int teardown(void **state)
{
	for (size_t i = 0; i < N_SLOTS; i++)
		slots[i].run = NULL;
	json_decref(admit_info());
	return 0;
}

/* POST a run on slot k; its answer. */
static struct lh_conn *run_on(size_t k, const char *body)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/slots/%s/run", slots[k].id);
	return lh_wait(lh_send("POST", path, body));
}

/* A run on slot k is admitted: the memory it is counted with. */
static uint64_t admitted(size_t k, const char *body)
{
	struct lh_conn *c = run_on(k, body);
	assert_int_equal(c->status, 200);
	uint64_t need = (uint64_t)json_integer_value(json_object_get(c->body, "need_kb"));
	lh_close(c);
	assert_non_null(slots[k].run);
	return need;
}

/* A run on slot k is refused: 503 NodeBusy, Retry-After, the slot as it
 * was; the message says why (`why` is in it). */
static void refused(size_t k, const char *body, const char *why)
{
	struct run *before = slots[k].run;
	struct lh_conn *c = run_on(k, body);
	assert_int_equal(c->status, 503);
	assert_string_equal(lh_code(c), "NodeBusy");
	assert_true(c->retry_after >= 1);
	if (!strstr(lh_message(c), why))
		fail_msg("message `%s` does not say `%s`", lh_message(c), why);
	assert_non_null(strstr(lh_message(c), "retry"));
	lh_close(c);
	assert_ptr_equal(slots[k].run, before);
}

/* GET /v1/info's "runs": active and memory_in_use_kb. */
static void info_is(json_int_t active, json_int_t in_use_kb)
{
	struct lh_conn *c = lh_wait(lh_send("GET", "/info", NULL));
	assert_int_equal(c->status, 200);
	assert_int_equal(json_integer_value(json_object_get(c->body, "slots")), (json_int_t)st.run_slots);
	assert_int_equal(json_integer_value(json_object_get(c->body, "memory_kb")), (json_int_t)(st.run_memory / 1024));
	assert_int_equal(json_integer_value(json_object_get(c->body, "active")), active);
	assert_int_equal(json_integer_value(json_object_get(c->body, "memory_in_use_kb")), in_use_kb);
	lh_close(c);
}

/* 64 MB, its compile's too */
#define SMALL "{\"limits\": {\"memory_kb\": 65536}, \"compile_limits\": {\"memory_kb\": 65536}}"

/* run_slots runs at once, whatever memory is left; the next is refused. */
static void test_run_slots(void **state)
{
	st.run_slots = 3;
	admitted(1, SMALL);
	admitted(3, SMALL);
	admitted(5, SMALL);
	info_is(3, 3 * 64 * MB);
	refused(7, SMALL, "run_slots");
	info_is(3, 3 * 64 * MB); /* a refusal counts nothing */
}

/* The budget: memory limits add up to run_memory and no further. */
static void test_memory_budget(void **state)
{
	st.run_slots = 8;
	assert_int_equal(admitted(1, "{\"limits\": {\"memory_kb\": 614400}}"), 600 * MB);
	refused(3, "{\"limits\": {\"memory_kb\": 440320}}", "run_memory"); /* 600 + 430 > 1024 */
	/* exactly at the budget fits: 600 + 424 = 1024 */
	assert_int_equal(admitted(3, "{\"limits\": {\"memory_kb\": 434176}}"), 424 * MB);
	info_is(2, 1024 * MB);
	refused(5, "{\"limits\": {\"memory_kb\": 1}}", "run_memory");
}

/* Alone, a run is admitted whatever it asks; beside it nothing fits, and
 * once it ends all is free again. */
static void test_alone_always_admitted(void **state)
{
	assert_int_equal(admitted(1, "{\"limits\": {\"memory_kb\": 4194304}}"), 4096 * MB); /* 4 GB > 1 GB */
	info_is(1, 4096 * MB);
	refused(3, SMALL, "run_memory");
	slots[1].run = NULL; /* it ended */
	info_is(0, 0);
	admitted(3, SMALL);
}

/* Counted with the larger of the run's and its compile's memory when it
 * compiles; the language's defaults when the request names none. */
static void test_compile_vs_run_memory(void **state)
{
	st.run_slots = 8;
	st.run_memory = 64ull << 30; /* room for all */
	/* C: the default compile (512) is larger than the default run (256) */
	assert_int_equal(admitted(0, "{}"), 512 * MB);
	/* a larger run than the compile: the run's */
	assert_int_equal(admitted(2, "{\"limits\": {\"memory_kb\": 786432}}"), 768 * MB);
	/* the request's compile_limits count when larger */
	assert_int_equal(
	    admitted(4, "{\"limits\": {\"memory_kb\": 65536}, \"compile_limits\": {\"memory_kb\": 131072}}"), 128 * MB);
	/* no compile: the run's only */
	assert_int_equal(admitted(6, "{\"compile\": false, \"limits\": {\"memory_kb\": 65536}}"), 64 * MB);
	/* interpreted: compile_limits never count, the language's or the request's */
	assert_int_equal(admitted(1, "{}"), 256 * MB);
	assert_int_equal(admitted(3, "{\"compile_limits\": {\"memory_kb\": 2097152}}"), 256 * MB);
	/* values that are not positive integers: the language's */
	assert_int_equal(admitted(5, "{\"limits\": {\"memory_kb\": -5}, \"compile_limits\": {\"memory_kb\": \"9\"}}"),
			 256 * MB);
	assert_int_equal(admitted(7, "{\"limits\": {\"memory_kb\": 0}}"), 256 * MB);
	info_is(8, (512 + 768 + 128 + 64 + 256 + 256 + 256 + 256) * MB);
}

/* The compile's memory is what is refused: a C run of 64 MB that compiles
 * in 900 MB does not fit beside 200 MB; without its compile it does. */
static void test_compile_memory_refused(void **state)
{
	st.run_slots = 8;
	admitted(1, "{\"limits\": {\"memory_kb\": 204800}}");
	refused(0, "{\"limits\": {\"memory_kb\": 65536}, \"compile_limits\": {\"memory_kb\": 921600}}", "run_memory");
	admitted(0, "{\"compile\": false, \"limits\": {\"memory_kb\": 65536}, \"compile_limits\": {\"memory_kb\": "
		    "921600}}");
}

/* A run ends (its slot's run is another or none, or the slot is gone):
 * its room is free at the next look, without any call. */
static void test_release_on_end(void **state)
{
	admitted(0, SMALL);
	admitted(1, SMALL);
	refused(2, SMALL, "run_slots");
	slots[0].run = NULL; /* finished */
	admitted(2, SMALL);
	refused(3, SMALL, "run_slots");
	/* slot 1 destroyed (no longer found) */
	slots[1].id[0] = '\0';
	admitted(3, SMALL);
	info_is(2, 2 * 64 * MB);
	/* slot 2's run ended and another run started on it outside admission
	 * (an interpreter's exec): the run admitted is over all the same */
	slots[2].run = (struct run *)&run_tokens[sizeof(run_tokens) - 1];
	info_is(1, 64 * MB);
}

/* A slot is counted once: its next run replaces its entry. */
static void test_slot_counted_once(void **state)
{
	st.run_slots = 8;
	admitted(0, SMALL);
	slots[0].run = NULL;
	admitted(0, "{\"compile\": false, \"limits\": {\"memory_kb\": 131072}}");
	info_is(1, 128 * MB);
}

/* A second run sent to a slot still running one is admitted, then refused
 * by the slot (409 SlotBusy): the run going on stays counted with its own
 * memory, not the refused one's (else a tiny second request would hide a
 * big run from the budget). */
static void test_busy_slot_keeps_its_count(void **state)
{
	st.run_slots = 8;
	admitted(1, "{\"limits\": {\"memory_kb\": 614400}}"); /* 600 MB */
	struct lh_conn *c = run_on(1, "{\"limits\": {\"memory_kb\": 1024}}");
	assert_int_equal(c->status, 409);
	lh_close(c);
	info_is(1, 600 * MB);
	refused(3, "{\"limits\": {\"memory_kb\": 440320}}", "run_memory"); /* 600 + 430 > 1024 */
}

/* A run refused as invalid after admission (s->run stays NULL) is never
 * counted: two of them leave both run slots free. */
static void test_invalid_run_not_counted(void **state)
{
	struct lh_conn *c = lh_wait(lh_send("POST", "/v1/slots/0000000000000001/run?invalid=1", SMALL));
	assert_int_equal(c->status, 400);
	lh_close(c);
	c = lh_wait(lh_send("POST", "/v1/slots/0000000000000002/run?invalid=1", SMALL));
	assert_int_equal(c->status, 400);
	lh_close(c);
	info_is(0, 0);
	admitted(2, SMALL);
	admitted(3, SMALL);
}

/* admit_quiet_for: how long since every run slot was last in use. Never
 * full yet: quiet since ever. Full (run_slots runs): 0, however long it
 * lasts; the moment a run ends the quiet time counts from the last look
 * that found the node full, on the clock; filled again, 0 again. */
static void test_quiet_for(void **state)
{
	const char *b = "{\"limits\": {\"memory_kb\": 1024}}";

	assert_true(admit_quiet_for() > 1e9);
	admitted(0, b);
	clock_s += 5;
	assert_true(admit_quiet_for() > 1e9); /* one of two: not full */
	admitted(1, b);
	assert_true(admit_quiet_for() == 0);
	clock_s += 3;
	assert_true(admit_quiet_for() == 0); /* full for 3 s: still 0 */
	slots[0].run = NULL;		      /* a run ended */
	assert_true(admit_quiet_for() == 0.0); /* the last full look was just now */
	clock_s += 0.05;
	assert_true(fabs(admit_quiet_for() - 0.05) < 1e-9);
	clock_s += 0.2;
	assert_true(fabs(admit_quiet_for() - 0.25) < 1e-9);
	admitted(2, b); /* full again: counted at the run's admission */
	clock_s += 0.01;
	slots[2].run = NULL;
	assert_true(fabs(admit_quiet_for() - 0.01) < 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_run_slots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alone_always_admitted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compile_vs_run_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compile_memory_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_on_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slot_counted_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_busy_slot_keeps_its_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_run_not_counted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quiet_for, setup, teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	lh_unlink();
	return r;
}
