/* test_config.c — the value parsers behind every INI file: sizes, durations,
 * booleans, bounded integers and command lines split with quotes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "config.h"

static uint64_t size_ok(const char *s)
{
	uint64_t v = 0;
	assert_int_equal(config_parse_size(s, &v), 0);
	return v;
}

static uint64_t ms_ok(const char *s)
{
	uint64_t v = 0;
	assert_int_equal(config_parse_duration_ms(s, &v), 0);
	return v;
}

static void test_size(void **state)
{
	uint64_t v = 123;

	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("12b"), 12);
	assert_int_equal(size_ok("64k"), 64 << 10);
	assert_int_equal(size_ok("64K"), 64 << 10);
	assert_int_equal(size_ok("64KiB"), 64 << 10);
	assert_int_equal(size_ok("64kb"), 64 << 10);
	assert_int_equal(size_ok("16M"), 16 << 20);
	assert_int_equal(size_ok("16MiB"), 16 << 20);
	assert_int_equal(size_ok("1G"), 1ull << 30);
	assert_int_equal(size_ok("3gib"), 3ull << 30);
	assert_int_equal(size_ok("  8k  "), 8 << 10);
	assert_int_equal(size_ok("8 M"), 8 << 20);
	assert_int_equal(size_ok("18446744073709551615"), UINT64_MAX);

	assert_int_equal(config_parse_size("", &v), -EINVAL);
	assert_int_equal(config_parse_size("k", &v), -EINVAL);
	assert_int_equal(config_parse_size("-1", &v), -EINVAL);
	assert_int_equal(config_parse_size("1.5k", &v), -EINVAL);
	assert_int_equal(config_parse_size("1x", &v), -EINVAL);
	assert_int_equal(config_parse_size("1T", &v), -EINVAL);
	assert_int_equal(config_parse_size("1 k b", &v), -EINVAL);
	assert_int_equal(config_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(config_parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(config_parse_size("17179869184G", &v), -ERANGE);
	assert_int_equal(v, 123); /* untouched on error */
}

static void test_duration(void **state)
{
	uint64_t v = 123;

	assert_int_equal(ms_ok("1500ms"), 1500);
	assert_int_equal(ms_ok("10s"), 10000);
	assert_int_equal(ms_ok("3"), 3000); /* a bare number is seconds */
	assert_int_equal(ms_ok("5m"), 5 * 60000);
	assert_int_equal(ms_ok("5min"), 5 * 60000);
	assert_int_equal(ms_ok("2h"), 2 * 3600000);
	assert_int_equal(ms_ok("2H"), 2 * 3600000);
	assert_int_equal(ms_ok("0ms"), 0);
	assert_int_equal(ms_ok(" 7 s "), 7000);

	assert_int_equal(config_parse_duration_ms("", &v), -EINVAL);
	assert_int_equal(config_parse_duration_ms("ms", &v), -EINVAL);
	assert_int_equal(config_parse_duration_ms("1d", &v), -EINVAL);
	assert_int_equal(config_parse_duration_ms("1.5s", &v), -EINVAL);
	assert_int_equal(config_parse_duration_ms("-5s", &v), -EINVAL);
	assert_int_equal(config_parse_duration_ms("18446744073709551615s", &v), -ERANGE);
	assert_int_equal(v, 123);
}

static void test_bool(void **state)
{
	static const char *const yes[] = {"1", "yes", "true", "on", "YES", "True", "ON"};
	static const char *const no[] = {"0", "no", "false", "off", "NO", "False", "Off"};
	static const char *const bad[] = {"", "2", "y", "n", "enabled", "yes ", " no"};
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_int_equal(config_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_int_equal(config_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(config_parse_bool(bad[i], &b), -EINVAL);
}

static void test_u64(void **state)
{
	uint64_t v = 0;

	assert_int_equal(config_parse_u64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(config_parse_u64("1", 1, 1, &v), 0);
	assert_int_equal(config_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(config_parse_u64("101", 0, 100, &v), -ERANGE);
	assert_int_equal(config_parse_u64("0", 1, 100, &v), -ERANGE);
	assert_int_equal(config_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(config_parse_u64("", 0, 100, &v), -EINVAL);
	assert_int_equal(config_parse_u64("-1", 0, 100, &v), -EINVAL);
	assert_int_equal(config_parse_u64(" 5", 0, 100, &v), -EINVAL);
	assert_int_equal(config_parse_u64("5 ", 0, 100, &v), -EINVAL);
	assert_int_equal(config_parse_u64("5k", 0, 100000, &v), -EINVAL);
	assert_int_equal(config_parse_u64(NULL, 0, 100, &v), -EINVAL);
}

/* Split s and compare with the expected words (NULL-terminated). */
static void split_is(const char *s, const char *const *want)
{
	char **argv = NULL;
	size_t n = 0;

	assert_int_equal(config_split_argv(s, &argv), 0);
	assert_non_null(argv);
	for (; want[n]; n++) {
		assert_non_null(argv[n]);
		assert_string_equal(argv[n], want[n]);
	}
	assert_null(argv[n]);
	config_argv_free(argv);
}

static void test_split_argv(void **state)
{
	char **argv = (char **)0x1;

	split_is("python3", (const char *const[]){"python3", NULL});
	split_is("  /usr/bin/java  -Xss64m\t-cp /box  Main ",
		 (const char *const[]){"/usr/bin/java", "-Xss64m", "-cp", "/box", "Main", NULL});
	split_is("python3 -c 'print(1 + 2)'", (const char *const[]){"python3", "-c", "print(1 + 2)", NULL});
	split_is("sh -c \"echo 'quoted' here\"", (const char *const[]){"sh", "-c", "echo 'quoted' here", NULL});
	split_is("a'b c'd \"e\"f", (const char *const[]){"ab cd", "ef", NULL});
	split_is("x '' y", (const char *const[]){"x", "", "y", NULL});
	split_is("a\tb\nc", (const char *const[]){"a", "b", "c", NULL});
	/* many words: the vector grows */
	split_is("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
		 (const char *const[]){"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
				       "16", "17", NULL});

	assert_int_equal(config_split_argv("", &argv), -EINVAL);
	assert_int_equal(config_split_argv("   \t ", &argv), -EINVAL);
	assert_int_equal(config_split_argv("echo 'unterminated", &argv), -EINVAL);
	assert_int_equal(config_split_argv("echo \"unterminated'", &argv), -EINVAL);
	assert_ptr_equal(argv, (char **)0x1); /* untouched on error */
	config_argv_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_size), cmocka_unit_test(test_duration),   cmocka_unit_test(test_bool),
	    cmocka_unit_test(test_u64),	 cmocka_unit_test(test_split_argv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
