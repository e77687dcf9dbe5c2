/* test_proto.c — the messages over a slot's control socket (sandboxd/proto.c):
 * what sandboxd accepts from init (which it does not trust once the slot ran
 * code) and how init splits a PROTO_RUN. The fuzz target
 * tests/fuzz/fuzz_init_msg.c throws random bytes at the same two functions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"
#include "proto.h"
#include "settings.h"

/* ---- from init ---- */

static void test_init_messages_as_init_sends_them_pass(void **state)
{
	struct proto_hdr ready = {.type = PROTO_READY};
	struct proto_started st = {.hdr.type = PROTO_STARTED, .group = PROTO_GROUP_KERNEL, .pid = 2};
	struct proto_exited x = {.hdr.type = PROTO_EXITED,
				 .group = PROTO_GROUP_RUN1,
				 .status = 9,
				 .maxrss_kb = 10240,
				 .utime_us = 1500000,
				 .stime_us = 20000};
	struct proto_failed f = {.hdr.type = PROTO_FAILED, .group = PROTO_GROUP_NONE, .err = 2};

	snprintf(f.where, sizeof(f.where), "%s", "execve");
	assert_int_equal(proto_init_msg_check(&ready, sizeof(ready)), 0);
	assert_int_equal(proto_init_msg_check(&st, sizeof(st)), 0);
	assert_int_equal(proto_init_msg_check(&x, sizeof(x)), 0);
	assert_int_equal(proto_init_msg_check(&f, sizeof(f)), 0);
}

/* run.c adds utime_us and stime_us: two huge values overflowed an int64
 * (undefined behaviour; a negative CPU time in the verdict) */
static void test_exited_with_rusage_that_overflows_is_refused(void **state)
{
	struct proto_exited x = {.hdr.type = PROTO_EXITED, .group = PROTO_GROUP_RUN0};

	x.utime_us = x.stime_us = INT64_MAX;
	assert_int_equal(proto_init_msg_check(&x, sizeof(x)), -EINVAL);
	x.utime_us = x.stime_us = PROTO_MAX_RUSAGE_US;
	assert_int_equal(proto_init_msg_check(&x, sizeof(x)), 0);
	x.stime_us = -1;
	assert_int_equal(proto_init_msg_check(&x, sizeof(x)), -EINVAL);
	x.stime_us = 0;
	x.maxrss_kb = -5;
	assert_int_equal(proto_init_msg_check(&x, sizeof(x)), -EINVAL);
}

static void test_groups_out_of_range_are_refused(void **state)
{
	struct proto_started st = {.hdr.type = PROTO_STARTED, .pid = 2};

	for (int g = -1; g <= 2; g++) {
		st.group = g;
		assert_int_equal(proto_init_msg_check(&st, sizeof(st)), 0);
	}
	st.group = 3;
	assert_int_equal(proto_init_msg_check(&st, sizeof(st)), -EINVAL);
	st.group = INT32_MIN;
	assert_int_equal(proto_init_msg_check(&st, sizeof(st)), -EINVAL);
	st.group = 0;
	st.pid = 0;
	assert_int_equal(proto_init_msg_check(&st, sizeof(st)), -EINVAL);
}

static void test_failed_without_nul_in_where_is_refused(void **state)
{
	struct proto_failed f = {.hdr.type = PROTO_FAILED, .group = PROTO_GROUP_RUN0, .err = 13};

	memset(f.where, 'A', sizeof(f.where));
	assert_int_equal(proto_init_msg_check(&f, sizeof(f)), -EINVAL);
	f.where[sizeof(f.where) - 1] = '\0';
	assert_int_equal(proto_init_msg_check(&f, sizeof(f)), 0);
	f.err = -1;
	assert_int_equal(proto_init_msg_check(&f, sizeof(f)), -EINVAL);
}

static void test_wrong_sizes_and_unknown_types_are_refused(void **state)
{
	_Alignas(8) char buf[256] = {0};
	struct proto_hdr h = {.type = PROTO_EXITED};

	memcpy(buf, &h, sizeof(h));
	assert_int_equal(proto_init_msg_check(buf, 0), -EINVAL);
	assert_int_equal(proto_init_msg_check(buf, 3), -EINVAL);
	assert_int_equal(proto_init_msg_check(buf, sizeof(struct proto_exited) - 1), -EINVAL);
	assert_int_equal(proto_init_msg_check(buf, sizeof(struct proto_exited) + 1), -EINVAL);
	h.type = PROTO_READY;
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(proto_init_msg_check(buf, sizeof(h) + 4), -EINVAL);
	for (uint32_t t = 0; t < 300; t++) {
		if (t >= PROTO_READY && t <= PROTO_FAILED && t != PROTO_RUN)
			continue;
		h.type = t;
		memcpy(buf, &h, sizeof(h));
		for (size_t n = 0; n <= sizeof(buf); n += 4)
			assert_int_equal(proto_init_msg_check(buf, n), -EINVAL);
	}
}

/* ---- to init ---- */

static void test_run_message_from_launch_parses_back(void **state)
{
	struct settings st = {.nofile = 64};
	struct language lang = {.name = "t"};
	char *env[] = {"LANG=C.UTF-8", NULL};
	char *const argv_in[] = {"/usr/bin/python3", "-X", "mem={memory_kb}", NULL};
	const char *const extra[] = {"main.py", NULL};
	struct limits lim = {.cpu_ms = 1000, .memory_kb = 65536, .fsize_bytes = 1024};
	char *argv[PROTO_MAX_ARGS + 1], *envp[PROTO_MAX_ARGS + 1], *msg = NULL;
	const char *cwd;
	size_t len;

	lang.env = env;
	sandboxd_settings = &st;
	assert_int_equal(launch_message(&lang, argv_in, extra, "/tmp/x", &lim, PROTO_GROUP_RUN1, false, &msg, &len), 0);
	assert_int_equal(proto_run_parse(msg, len, argv, envp, &cwd), 0);
	assert_string_equal(argv[0], "/usr/bin/python3");
	assert_string_equal(argv[2], "mem=65536");
	assert_string_equal(argv[3], "main.py");
	assert_null(argv[4]);
	assert_string_equal(cwd, "/tmp/x");
	for (size_t i = 0; envp[i]; i++)
		assert_true(envp[i] > msg && envp[i] < msg + len);
	assert_int_equal(((struct proto_run *)msg)->group, PROTO_GROUP_RUN1);

	/* every shorter message, and one whose last string loses its NUL, is refused */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(proto_run_parse(msg, n, argv, envp, &cwd), -EINVAL);
	msg[len - 1] = 'x';
	assert_int_equal(proto_run_parse(msg, len, argv, envp, &cwd), -EINVAL);
	free(msg);
	sandboxd_settings = NULL;
}

static void test_run_message_counts_past_its_strings_are_refused(void **state)
{
	_Alignas(8) char buf[sizeof(struct proto_run) + 16] = {0};
	struct proto_run *m = (struct proto_run *)buf;
	char *argv[PROTO_MAX_ARGS + 1], *envp[PROTO_MAX_ARGS + 1];
	const char *cwd;

	m->hdr.type = PROTO_RUN;
	m->strings_len = 16;
	memcpy(m->strings, "/bin/true\0/tmp", 15); /* one argv, one cwd */
	m->argc = 1;
	assert_int_equal(proto_run_parse(buf, sizeof(buf), argv, envp, &cwd), 0);
	assert_string_equal(cwd, "/tmp");
	m->envc = 10; /* more strings than the message holds (empty ones included) */
	assert_int_equal(proto_run_parse(buf, sizeof(buf), argv, envp, &cwd), -EINVAL);
	m->envc = 0;
	m->argc = PROTO_MAX_ARGS + 1;
	assert_int_equal(proto_run_parse(buf, sizeof(buf), argv, envp, &cwd), -EINVAL);
	m->argc = 0;
	assert_int_equal(proto_run_parse(buf, sizeof(buf), argv, envp, &cwd), -EINVAL);
	m->argc = 1;
	m->strings_len = 17;
	assert_int_equal(proto_run_parse(buf, sizeof(buf), argv, envp, &cwd), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_messages_as_init_sends_them_pass),
	    cmocka_unit_test(test_exited_with_rusage_that_overflows_is_refused),
	    cmocka_unit_test(test_groups_out_of_range_are_refused),
	    cmocka_unit_test(test_failed_without_nul_in_where_is_refused),
	    cmocka_unit_test(test_wrong_sizes_and_unknown_types_are_refused),
	    cmocka_unit_test(test_run_message_from_launch_parses_back),
	    cmocka_unit_test(test_run_message_counts_past_its_strings_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
