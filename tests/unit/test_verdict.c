/* test_verdict.c — what a contestant is told about a run: the verdict names
 * of the API, each cause, and the precedence when several apply. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "verdict.h"

static struct limits lim(void)
{
	struct limits l;

	limits_default(&l); /* 5 s CPU, 10 s wall, 262144 KiB */
	return l;
}

/* A run that exited 0 well inside every limit. */
static struct run_outcome clean(void)
{
	return (struct run_outcome){.exited = true, .exit_code = 0, .cpu_ms = 40, .wall_ms = 60, .memory_kb = 9000};
}

static struct run_outcome signalled(int sig)
{
	struct run_outcome o = clean();

	o.exited = false;
	o.signal = sig;
	return o;
}

static enum verdict of(struct run_outcome o)
{
	struct limits l = lim();

	return verdict_of_run(&o, &l);
}

static void test_names_are_the_api(void **state)
{
	assert_string_equal(verdict_name(VERDICT_ACCEPTED), "accepted");
	assert_string_equal(verdict_name(VERDICT_WRONG_ANSWER), "wrong_answer");
	assert_string_equal(verdict_name(VERDICT_TIME_LIMIT), "time_limit_exceeded");
	assert_string_equal(verdict_name(VERDICT_MEMORY_LIMIT), "memory_limit_exceeded");
	assert_string_equal(verdict_name(VERDICT_RUNTIME_ERROR), "runtime_error");
	assert_string_equal(verdict_name(VERDICT_OUTPUT_LIMIT), "output_limit_exceeded");
	assert_string_equal(verdict_name(VERDICT_COMPILATION_ERROR), "compilation_error");
	assert_string_equal(verdict_name(VERDICT_INTERNAL_ERROR), "internal_error");
	/* A value we never defined is our bug, not the program's. */
	assert_string_equal(verdict_name((enum verdict)99), "internal_error");
	assert_string_equal(verdict_name((enum verdict) - 1), "internal_error");
}

static void test_clean_exit_is_accepted(void **state)
{
	struct run_outcome o = clean();

	assert_int_equal(of(o), VERDICT_ACCEPTED);
	/* signal is meaningless after a normal exit */
	o.signal = SIGKILL;
	assert_int_equal(of(o), VERDICT_ACCEPTED);
	/* exactly at the limits is still inside them */
	o = clean();
	o.cpu_ms = 5000;
	o.wall_ms = 10000;
	o.memory_kb = 262144;
	assert_int_equal(of(o), VERDICT_ACCEPTED);
}

static void test_runtime_errors(void **state)
{
	struct run_outcome o = clean();

	o.exit_code = 1;
	assert_int_equal(of(o), VERDICT_RUNTIME_ERROR);
	o.exit_code = 255;
	assert_int_equal(of(o), VERDICT_RUNTIME_ERROR);
	assert_int_equal(of(signalled(SIGSEGV)), VERDICT_RUNTIME_ERROR);
	assert_int_equal(of(signalled(SIGABRT)), VERDICT_RUNTIME_ERROR);
	assert_int_equal(of(signalled(SIGFPE)), VERDICT_RUNTIME_ERROR);
	assert_int_equal(of(signalled(SIGSYS)), VERDICT_RUNTIME_ERROR); /* seccomp */
	/* a SIGKILL far below the memory limit: not the OOM killer */
	assert_int_equal(of(signalled(SIGKILL)), VERDICT_RUNTIME_ERROR);
}

static void test_time_limit_causes(void **state)
{
	struct run_outcome o;

	o = signalled(SIGKILL);
	o.killed_cpu = true;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);

	o = signalled(SIGKILL);
	o.killed_wall = true;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);

	assert_int_equal(of(signalled(SIGXCPU)), VERDICT_TIME_LIMIT);

	/* finished, and even exited 0, but used more CPU than allowed */
	o = clean();
	o.cpu_ms = 5001;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);

	o = clean();
	o.wall_ms = 10001;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);

	o = clean();
	o.exit_code = 1;
	o.cpu_ms = 6000;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);
}

static void test_memory_limit_causes(void **state)
{
	struct run_outcome o;

	o = signalled(SIGKILL);
	o.oom_killed = true;
	assert_int_equal(of(o), VERDICT_MEMORY_LIMIT);

	/* a program that catches the failed allocation and exits 1 itself
	 * still hit the memory limit when the cgroup counted an OOM kill */
	o = clean();
	o.exit_code = 1;
	o.oom_killed = true;
	assert_int_equal(of(o), VERDICT_MEMORY_LIMIT);
}

static void test_sigkill_at_the_memory_limit_is_memory(void **state)
{
	struct run_outcome o = signalled(SIGKILL);

	/* the OOM counter has not moved yet, but the peak sits at the limit */
	o.memory_kb = 262144 - 262144 / 20; /* exactly 95% */
	assert_int_equal(of(o), VERDICT_MEMORY_LIMIT);
	o.memory_kb = 262000;
	assert_int_equal(of(o), VERDICT_MEMORY_LIMIT);
	o.memory_kb = 262144 * 90 / 100;
	assert_int_equal(of(o), VERDICT_RUNTIME_ERROR);

	/* only SIGKILL: a segfault near the limit is the program's crash */
	o = signalled(SIGSEGV);
	o.memory_kb = 262000;
	assert_int_equal(of(o), VERDICT_RUNTIME_ERROR);

	/* only when nothing else explains the kill: we killed it for time */
	o = signalled(SIGKILL);
	o.memory_kb = 262000;
	o.killed_wall = true;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);

	/* a normal exit near the limit is fine */
	o = clean();
	o.memory_kb = 262000;
	assert_int_equal(of(o), VERDICT_ACCEPTED);
}

static void test_file_too_large_is_output_limit(void **state)
{
	assert_int_equal(of(signalled(SIGXFSZ)), VERDICT_OUTPUT_LIMIT);
}

static void test_output_limit(void **state)
{
	struct run_outcome o = signalled(SIGPIPE);

	o.output_exceeded = true;
	assert_int_equal(of(o), VERDICT_OUTPUT_LIMIT);
	o = clean();
	o.output_exceeded = true;
	assert_int_equal(of(o), VERDICT_OUTPUT_LIMIT);
}

static void test_precedence(void **state)
{
	struct run_outcome o;

	/* internal_error beats everything the program did */
	o = signalled(SIGKILL);
	o.internal_error = o.output_exceeded = o.oom_killed = o.killed_cpu = true;
	assert_int_equal(of(o), VERDICT_INTERNAL_ERROR);
	o = clean();
	o.internal_error = true;
	assert_int_equal(of(o), VERDICT_INTERNAL_ERROR);

	/* output limit > memory > time */
	o = signalled(SIGKILL);
	o.output_exceeded = o.oom_killed = o.killed_wall = true;
	assert_int_equal(of(o), VERDICT_OUTPUT_LIMIT);
	o.output_exceeded = false;
	assert_int_equal(of(o), VERDICT_MEMORY_LIMIT);
	o.oom_killed = false;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);

	/* time > SIGXFSZ */
	o = signalled(SIGXFSZ);
	o.cpu_ms = 7000;
	assert_int_equal(of(o), VERDICT_TIME_LIMIT);
}

static void test_request_limits_are_used(void **state)
{
	struct run_outcome o = clean();
	struct limits l = lim();

	o.cpu_ms = 1500;
	assert_int_equal(verdict_of_run(&o, &l), VERDICT_ACCEPTED);
	l.cpu_ms = 1000;
	assert_int_equal(verdict_of_run(&o, &l), VERDICT_TIME_LIMIT);
	/* no limits at hand: only what was observed decides */
	assert_int_equal(verdict_of_run(&o, NULL), VERDICT_ACCEPTED);
}

static bool says(const char *text, const char *what)
{
	if (!strstr(text, what))
		print_error("`%s` lacks `%s`\n", text, what);
	return strstr(text, what) != NULL;
}

/* Every verdict but accepted says what happened, naming the limit. */
static void test_explanations_name_the_limit(void **state)
{
	struct limits l = lim();
	struct run_outcome o = clean();
	char m[1024];

	l.cpu_ms = 2000;
	l.wall_ms = 1500;
	l.memory_kb = 64 * 1024;
	l.output_bytes = 16 << 20;
	verdict_explain(VERDICT_ACCEPTED, &o, &l, m, sizeof(m));
	assert_string_equal(m, "");
	o.killed_cpu = true;
	verdict_explain(VERDICT_TIME_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "CPU time limit of 2 s"));
	o = clean();
	o.killed_wall = true;
	o.cpu_ms = 3;
	verdict_explain(VERDICT_TIME_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "wall-clock limit of 1.50 s") && says(m, "3 ms of CPU"));
	verdict_explain(VERDICT_MEMORY_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "memory limit of 64 MiB"));
	o = clean();
	o.output_exceeded = true;
	verdict_explain(VERDICT_OUTPUT_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "output limit of 16 MiB"));
	o = signalled(SIGXFSZ);
	verdict_explain(VERDICT_OUTPUT_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "file size limit"));
	o = clean();
	o.exit_code = 3;
	verdict_explain(VERDICT_RUNTIME_ERROR, &o, &l, m, sizeof(m));
	assert_true(says(m, "exit code 3"));
	o = signalled(SIGFPE);
	verdict_explain(VERDICT_RUNTIME_ERROR, &o, &l, m, sizeof(m));
	assert_true(says(m, "signal 8") && says(m, "division by zero"));
	verdict_explain(VERDICT_INTERNAL_ERROR, &o, &l, m, sizeof(m));
	assert_true(says(m, "not an error in your program"));
	/* a tiny buffer is cut, never overrun */
	verdict_explain(VERDICT_WRONG_ANSWER, &o, &l, m, 8);
	assert_int_equal(strlen(m), 7);
}

/* A compile stopped by a limit is the judge's limit, told apart from the
 * compiler rejecting the code. */
static void test_compile_explanations(void **state)
{
	struct limits l = lim();
	struct run_outcome o = clean();
	char m[1024];

	l.cpu_ms = 20000;
	l.wall_ms = 30000;
	o.killed_cpu = true;
	verdict_explain_compile(VERDICT_TIME_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "time limit (20 s of CPU)") && says(m, "not an error in your code"));
	assert_string_equal(verdict_compile_reason(VERDICT_TIME_LIMIT), "time_limit_exceeded");
	o = clean();
	o.killed_wall = true;
	o.cpu_ms = 1200;
	verdict_explain_compile(VERDICT_TIME_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "wall-clock time limit (30 s") && says(m, "1.20 s of CPU"));
	verdict_explain_compile(VERDICT_MEMORY_LIMIT, &o, &l, m, sizeof(m));
	assert_true(says(m, "memory limit") && says(m, "not an error in your code"));
	o = clean();
	o.exit_code = 1;
	verdict_explain_compile(VERDICT_RUNTIME_ERROR, &o, &l, m, sizeof(m));
	assert_true(says(m, "rejected the code (exit code 1)"));
	assert_string_equal(verdict_compile_reason(VERDICT_RUNTIME_ERROR), "compiler_error");
}

static void test_java_rename_hint(void **state)
{
	char m[512] = "";

	assert_false(verdict_compile_hint("main.c:1: error: expected ';'", "main.c", m, sizeof(m)));
	assert_string_equal(m, "");
	assert_true(verdict_compile_hint("Main.java:1: error: class Solution is public, should be declared in a "
					 "file named Solution.java\n",
					 "Main.java", m, sizeof(m)));
	assert_true(says(m, "rename your public class Solution to Main") && says(m, "Main.java"));
	/* hostile text: no name, or a name too long, gives no hint */
	m[0] = '\0';
	assert_false(verdict_compile_hint("error: class  is public, should be declared in a file named .java",
					  "Main.java", m, sizeof(m)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_are_the_api),
	    cmocka_unit_test(test_clean_exit_is_accepted),
	    cmocka_unit_test(test_runtime_errors),
	    cmocka_unit_test(test_time_limit_causes),
	    cmocka_unit_test(test_memory_limit_causes),
	    cmocka_unit_test(test_sigkill_at_the_memory_limit_is_memory),
	    cmocka_unit_test(test_file_too_large_is_output_limit),
	    cmocka_unit_test(test_output_limit),
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_request_limits_are_used),
	    cmocka_unit_test(test_explanations_name_the_limit),
	    cmocka_unit_test(test_compile_explanations),
	    cmocka_unit_test(test_java_rename_hint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
