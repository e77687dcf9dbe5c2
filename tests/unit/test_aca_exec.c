/* test_aca_exec.c — the asynchronous executions' results of the Azure
 * routes (poold/aca_exec.h) over a clock of the test's own: a running
 * execution is never dropped, a finished one is kept its time and no
 * longer, the count per session bounds running and kept alike, sessions
 * do not count against each other, a deleted session's results go (a
 * running one once it finishes), ids clients may choose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "aca_exec.h"

#define TTL 10.0

static int setup(void **state)
{
	aca_exec_setup(TTL, 3);
	return 0;
}

static int teardown(void **state)
{
	aca_exec_forget("py/a");
	aca_exec_forget("py/b");
	aca_exec_prune(1e12);
	return 0;
}

static void test_kept_its_time_then_gone(void **state)
{
	struct aca_exec *e = aca_exec_add("py", "a", "e1", 100.0);
	assert_non_null(e);
	assert_string_equal(e->ident, "a");
	/* running: never expires, however long */
	assert_ptr_equal(aca_exec_find("py/a", "e1", 100.0 + 10 * TTL), e);
	aca_exec_finish(e, json_pack("{s:s}", "status", "Succeeded"), 200.0);
	assert_ptr_equal(aca_exec_find("py/a", "e1", 200.0 + TTL - 0.001), e);
	assert_null(aca_exec_find("py/a", "e1", 200.0 + TTL));
	assert_int_equal(aca_exec_count("py/a", 200.0 + TTL), 0);
}

static void test_bounded_per_session(void **state)
{
	struct aca_exec *e1 = aca_exec_add("py", "a", "e1", 0);
	aca_exec_add("py", "a", "e2", 0);
	assert_false(aca_exec_full("py/a", 1.0));
	aca_exec_add("py", "a", "e3", 0);
	assert_true(aca_exec_full("py/a", 1.0));
	/* another session, and the same identifier in another pool, are apart */
	assert_false(aca_exec_full("py/b", 1.0));
	assert_false(aca_exec_full("js/a", 1.0));
	/* a finished one still counts while it is kept, then frees its place */
	aca_exec_finish(e1, json_object(), 2.0);
	assert_true(aca_exec_full("py/a", 2.0 + TTL - 1));
	assert_false(aca_exec_full("py/a", 2.0 + TTL));
	/* ids are per session */
	assert_null(aca_exec_find("py/b", "e2", 3.0));
	assert_non_null(aca_exec_find("py/a", "e2", 3.0));
}

static void test_forget_waits_for_running(void **state)
{
	struct aca_exec *run = aca_exec_add("py", "a", "r", 0);
	struct aca_exec *done = aca_exec_add("py", "a", "d", 0);
	aca_exec_finish(done, json_object(), 1.0);
	aca_exec_forget("py/a");
	assert_null(aca_exec_find("py/a", "d", 1.0));
	assert_null(aca_exec_find("py/a", "r", 1.0));
	assert_int_equal(aca_exec_count("py/a", 1.0), 0);
	/* the running one is still the operation's to finish: not freed yet */
	assert_string_equal(run->id, "r");
	aca_exec_finish(run, json_object(), 2.0);
	aca_exec_prune(2.0); /* now it goes */
}

static void test_ids(void **state)
{
	assert_true(aca_exec_id_valid("testExecutionId"));
	assert_true(aca_exec_id_valid("a-b_c.1"));
	assert_false(aca_exec_id_valid(""));
	assert_false(aca_exec_id_valid("../x"));
	assert_false(aca_exec_id_valid("a b"));
	char long_id[66];
	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	assert_false(aca_exec_id_valid(long_id));
	long_id[64] = '\0';
	assert_true(aca_exec_id_valid(long_id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kept_its_time_then_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounded_per_session, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forget_waits_for_running, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
