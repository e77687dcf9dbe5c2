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
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* The files of dir, but "." and "..". */
static int files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* A restart is aca_exec_close then aca_exec_store on the same dir, at the
 * clock's time: kept results come back as they were, a running one as
 * Failed (PooldRestarted) from the restart on, and each goes when its time
 * is up, at the restart too. */
static void test_kept_across_restarts(void **state)
{
	char top[] = "/tmp/test_aca_exec.XXXXXX", dir[64], cmd[128];
	struct wp_error err = {0};
	struct aca_exec *e;
	struct stat st;

	assert_non_null(mkdtemp(top));
	snprintf(dir, sizeof(dir), "%s/r", top);
	assert_int_equal(aca_exec_store(dir, 1000.0, &err), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	e = aca_exec_add("py", "a", "done", 1000.0);
	aca_exec_finish(e, json_pack("{s:s, s:i}", "status", "Succeeded", "x", 42), 1001.0);
	assert_non_null(aca_exec_add("py", "a", "running", 1002.0));
	e = aca_exec_add("py", "b", "deleted", 1000.0);
	aca_exec_finish(e, json_pack("{s:s}", "status", "Succeeded"), 1001.0);
	assert_int_equal(files_in(dir), 3);
	aca_exec_forget("py/b"); /* DELETE session: gone from the dir at once */
	assert_int_equal(files_in(dir), 2);
	put(dir, "notes.txt", "not ours");		  /* left alone */
	put(dir, "0123456789abcdef.json", "{broken");	  /* removed */
	put(dir, "0123456789abcdef.json.tmp", "{\"half"); /* removed */

	aca_exec_close();
	assert_null(aca_exec_find("py/a", "done", 1003.0));
	assert_int_equal(aca_exec_store(dir, 1005.0, &err), 2);
	assert_int_equal(files_in(dir), 3);
	assert_non_null(e = aca_exec_find("py/a", "done", 1005.0));
	assert_true(e->done);
	assert_int_equal(json_integer_value(json_object_get(e->answer, "x")), 42);
	assert_non_null(e = aca_exec_find("py/a", "running", 1005.0));
	assert_true(e->done);
	assert_string_equal(json_string_value(json_object_get(e->answer, "status")), "Failed");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e->answer, "error"), "code")),
			    "PooldRestarted");
	assert_string_equal(json_string_value(json_object_get(e->answer, "identifier")), "a");
	assert_null(aca_exec_find("py/b", "deleted", 1005.0));
	/* they count against the session as before */
	assert_int_equal(aca_exec_count("py/a", 1005.0), 2);

	/* "done" finished at 1001: its time is up at 1001 + TTL, restart or not */
	aca_exec_close();
	assert_int_equal(aca_exec_store(dir, 1001.0 + TTL, &err), 1);
	assert_null(aca_exec_find("py/a", "done", 1001.0 + TTL));
	assert_non_null(aca_exec_find("py/a", "running", 1001.0 + TTL));
	assert_int_equal(files_in(dir), 2);
	/* "running" became Failed at the restart, 1005: kept from then */
	aca_exec_prune(1005.0 + TTL);
	assert_int_equal(files_in(dir), 1);

	aca_exec_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kept_its_time_then_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounded_per_session, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forget_waits_for_running, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kept_across_restarts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
