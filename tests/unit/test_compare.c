/* test_compare.c — does a program's output count as the expected one, in
 * each mode of the API, including outputs with NUL bytes and of megabytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare.h"
#include "cleanup.h" /* after jansson.h: cleanup_json */

static bool cmp_mode(enum compare_mode m, const char *out, const char *exp)
{
	struct compare_spec c;

	compare_spec_default(&c);
	c.mode = m;
	return compare_output(&c, out, strlen(out), exp, strlen(exp));
}

/* Both directions: "equal" must not depend on which side is the expected
 * output (only the float mode's rel_tol looks at which one). */
static void assert_same(enum compare_mode m, const char *a, const char *b)
{
	if (!cmp_mode(m, a, b) || !cmp_mode(m, b, a))
		fail_msg("%s: \"%s\" and \"%s\" should match", compare_mode_name(m), a, b);
}

static void assert_differ(enum compare_mode m, const char *a, const char *b)
{
	if (cmp_mode(m, a, b) || cmp_mode(m, b, a))
		fail_msg("%s: \"%s\" and \"%s\" should differ", compare_mode_name(m), a, b);
}

static int spec_from(const char *text, struct compare_spec *c, struct wp_error *err)
{
	json_error_t jerr;
	cleanup_json json_t *obj = json_loads(text, JSON_DECODE_ANY, &jerr);

	assert_non_null(obj);
	return compare_spec_from_json(c, obj, err);
}

static void test_spec_default(void **state)
{
	struct compare_spec c;

	compare_spec_default(&c);
	assert_int_equal(c.mode, COMPARE_TRAILING);
	assert_true(c.abs_tol == 1e-6);
	assert_true(c.rel_tol == 1e-6);
	c.mode = COMPARE_EXACT;
	assert_int_equal(compare_spec_from_json(&c, NULL, NULL), 0);
	assert_int_equal(c.mode, COMPARE_TRAILING);
}

static void test_spec_from_json(void **state)
{
	struct compare_spec c;
	struct wp_error err = {0};

	assert_int_equal(spec_from("{\"mode\": \"float\", \"abs_tol\": 0.01, \"rel_tol\": 0}", &c, &err), 0);
	assert_int_equal(c.mode, COMPARE_FLOAT);
	assert_true(c.abs_tol == 0.01);
	assert_true(c.rel_tol == 0);
	/* integers are numbers too; unnamed fields keep their default */
	assert_int_equal(spec_from("{\"abs_tol\": 1}", &c, &err), 0);
	assert_int_equal(c.mode, COMPARE_TRAILING);
	assert_true(c.abs_tol == 1);
	assert_true(c.rel_tol == 1e-6);

	for (int m = COMPARE_TRAILING; m <= COMPARE_CHECKER; m++) {
		char text[64];

		snprintf(text, sizeof(text), "{\"mode\": \"%s\"}", compare_mode_name(m));
		assert_int_equal(spec_from(text, &c, &err), 0);
		assert_int_equal(c.mode, m);
	}
}

static void test_spec_refusals(void **state)
{
	struct compare_spec c, before;
	struct wp_error err = {0};

	compare_spec_default(&c);
	c.mode = COMPARE_TOKENS;
	before = c;
	assert_int_equal(spec_from("{\"mode\": \"fuzzy\"}", &c, &err), -EINVAL);
	assert_string_equal(err.msg, "compare.mode: `fuzzy` is not one of trailing, exact, tokens, float, checker");
	assert_int_equal(spec_from("{\"mode\": 3}", &c, &err), -EINVAL);
	assert_string_equal(err.msg, "compare.mode: must be a string");
	assert_int_equal(spec_from("{\"abs_tol\": -0.5}", &c, &err), -EINVAL);
	assert_string_equal(err.msg, "compare.abs_tol: -0.5 must be finite and >= 0");
	assert_int_equal(spec_from("{\"rel_tol\": \"1e-6\"}", &c, &err), -EINVAL);
	assert_string_equal(err.msg, "compare.rel_tol: must be a number");
	assert_int_equal(spec_from("{\"mode\": \"float\", \"tolerance\": 1}", &c, &err), -EINVAL);
	assert_string_equal(err.msg, "compare: unknown field `tolerance`");
	assert_int_equal(spec_from("\"float\"", &c, &err), -EINVAL);
	assert_string_equal(err.msg, "compare: must be an object");
	/* a refused spec leaves the caller's as it was */
	assert_int_equal(spec_from("{\"mode\": \"exact\", \"abs_tol\": -1}", &c, &err), -EINVAL);
	assert_int_equal(c.mode, before.mode);
	assert_true(c.abs_tol == before.abs_tol && c.rel_tol == before.rel_tol);
}

static void test_mode_names(void **state)
{
	assert_string_equal(compare_mode_name(COMPARE_TRAILING), "trailing");
	assert_string_equal(compare_mode_name(COMPARE_EXACT), "exact");
	assert_string_equal(compare_mode_name(COMPARE_TOKENS), "tokens");
	assert_string_equal(compare_mode_name(COMPARE_FLOAT), "float");
	assert_string_equal(compare_mode_name(COMPARE_CHECKER), "checker");
}

static void test_exact(void **state)
{
	struct compare_spec c = {.mode = COMPARE_EXACT};

	assert_same(COMPARE_EXACT, "3\n", "3\n");
	assert_same(COMPARE_EXACT, "", "");
	assert_differ(COMPARE_EXACT, "3\n", "3");
	assert_differ(COMPARE_EXACT, "3\r\n", "3\n");
	assert_differ(COMPARE_EXACT, "3 \n", "3\n");
	assert_true(compare_output(&c, "a\0b", 3, "a\0b", 3));
	assert_false(compare_output(&c, "a\0b", 3, "a\0c", 3));
	assert_false(compare_output(&c, "a\0", 2, "a", 1));
}

static void test_trailing_ignores_what_users_cannot_see(void **state)
{
	assert_same(COMPARE_TRAILING, "3\n", "3");
	assert_same(COMPARE_TRAILING, "3\n", "3  \n\n\n");
	assert_same(COMPARE_TRAILING, "3", "3  \n\n\n");
	assert_same(COMPARE_TRAILING, "1 2\n3 4\n", "1 2   \n3 4\t\n");
	assert_same(COMPARE_TRAILING, "1\r\n2\r\n", "1\n2\n");	/* Windows line ends */
	assert_same(COMPARE_TRAILING, "1\n\n2\n", "1\n   \n2"); /* a blank line is empty */
	assert_same(COMPARE_TRAILING, "", "\n\n \n");
	assert_same(COMPARE_TRAILING, "", "");
	assert_same(COMPARE_TRAILING, "\n\nx\n", "\n\nx");
}

static void test_trailing_keeps_what_matters(void **state)
{
	assert_differ(COMPARE_TRAILING, "3\n\n4", "3\n4");
	assert_differ(COMPARE_TRAILING, "\n3", "3");	/* leading blank line */
	assert_differ(COMPARE_TRAILING, "  3", "3");	/* leading blanks */
	assert_differ(COMPARE_TRAILING, "1  2", "1 2"); /* inner blanks */
	assert_differ(COMPARE_TRAILING, "1 2", "1\n2");
	assert_differ(COMPARE_TRAILING, "3", "");
	assert_differ(COMPARE_TRAILING, "3\n4\n", "3\n");
	assert_differ(COMPARE_TRAILING, "3\n4\n", "3\n5\n");
	assert_differ(COMPARE_TRAILING, "3\f", "3"); /* only blanks, tabs, \r */
}

static void test_trailing_with_nul_bytes(void **state)
{
	struct compare_spec c = {.mode = COMPARE_TRAILING};

	assert_true(compare_output(&c, "a\0b \n\n", 6, "a\0b", 3));
	assert_false(compare_output(&c, "a\0b\n", 4, "a\0c\n", 4));
	/* a NUL byte is not a blank */
	assert_false(compare_output(&c, "3\0", 2, "3", 1));
	assert_false(compare_output(&c, "3\n\0", 3, "3\n", 2));
	/* NULL with length 0 is an empty output */
	assert_true(compare_output(&c, NULL, 0, "\n", 1));
	assert_false(compare_output(&c, NULL, 0, "x", 1));
}

static void test_tokens(void **state)
{
	assert_same(COMPARE_TOKENS, "1 2\n3", "1\n2   3  \n\n");
	assert_same(COMPARE_TOKENS, "  1\t2", "1 2");
	assert_same(COMPARE_TOKENS, "", " \n\t\r\n");
	assert_differ(COMPARE_TOKENS, "1 2", "1 2 3");
	assert_differ(COMPARE_TOKENS, "12", "1 2");
	assert_differ(COMPARE_TOKENS, "1.0", "1"); /* strings, not numbers */
	assert_differ(COMPARE_TOKENS, "YES", "yes");
	assert_differ(COMPARE_TOKENS, "", "0");
}

static void test_tokens_with_nul_bytes(void **state)
{
	struct compare_spec c = {.mode = COMPARE_TOKENS};

	assert_true(compare_output(&c, "a\0b c", 5, "a\0b\nc\n", 6));
	assert_false(compare_output(&c, "1\0", 2, "1", 1));
	assert_false(compare_output(&c, "1 \0", 3, "1", 1));
}

static void test_float_tolerance(void **state)
{
	assert_same(COMPARE_FLOAT, "0.1000001", "0.1");
	assert_same(COMPARE_FLOAT, "1e-3", "0.001");
	assert_same(COMPARE_FLOAT, "-0", "0");
	assert_same(COMPARE_FLOAT, "3.14159265 2", "3.141593\n2.0\n");
	assert_same(COMPARE_FLOAT, "+5", "5.0000000");
	assert_differ(COMPARE_FLOAT, "1.1", "1.0");
	assert_differ(COMPARE_FLOAT, "0.100002", "0.1");
	assert_differ(COMPARE_FLOAT, "1 2", "1 2 3");
	assert_differ(COMPARE_FLOAT, "1.0abc", "1.0"); /* not fully a number */
	assert_differ(COMPARE_FLOAT, "1.0", "1.0abc");
	/* relative: 0.5 off a million is within 1e-6 of it */
	assert_true(cmp_mode(COMPARE_FLOAT, "1000000.5", "1000000"));
	assert_false(cmp_mode(COMPARE_FLOAT, "1000002", "1000000"));
}

static void test_float_relative_is_against_the_expected(void **state)
{
	struct compare_spec c = {.mode = COMPARE_FLOAT, .abs_tol = 0, .rel_tol = 0.1};

	/* |a-b| = 10: within 10% of 100, not within 10% of 90 */
	assert_true(compare_output(&c, "90", 2, "100", 3));
	assert_false(compare_output(&c, "100", 3, "90", 2));
}

static void test_float_custom_tolerance(void **state)
{
	struct compare_spec c = {.mode = COMPARE_FLOAT, .abs_tol = 0.1, .rel_tol = 0};

	assert_true(compare_output(&c, "1.05", 4, "1", 1));
	assert_false(compare_output(&c, "1.2", 3, "1", 1));
	c.abs_tol = 0;
	assert_false(compare_output(&c, "1.0000001", 9, "1", 1));
	assert_true(compare_output(&c, "1.0", 3, "1", 1));
}

static void test_float_words_nan_and_inf_are_strings(void **state)
{
	assert_same(COMPARE_FLOAT, "answer: 0.5", "answer: 0.5000001");
	assert_differ(COMPARE_FLOAT, "Answer: 0.5", "answer: 0.5");
	assert_same(COMPARE_FLOAT, "nan", "nan");
	assert_differ(COMPARE_FLOAT, "nan", "NaN");
	assert_differ(COMPARE_FLOAT, "nan", "0");
	assert_same(COMPARE_FLOAT, "inf -inf", "inf -inf");
	assert_differ(COMPARE_FLOAT, "inf", "1e999"); /* 1e999 overflows: a string */
	assert_differ(COMPARE_FLOAT, "1e999", "1e998");
	assert_differ(COMPARE_FLOAT, "infinity", "inf");
}

static void test_float_with_nul_and_long_tokens(void **state)
{
	struct compare_spec c = {.mode = COMPARE_FLOAT, .abs_tol = 1e-6, .rel_tol = 1e-6};
	char longnum[400];

	assert_false(compare_output(&c, "1\0", 2, "1", 1));
	assert_false(compare_output(&c, "1.0\0001", 5, "1.0", 3));
	/* a number longer than any fixed buffer: 0.000…01 */
	memset(longnum, '0', sizeof(longnum));
	longnum[1] = '.';
	longnum[sizeof(longnum) - 2] = '1';
	longnum[sizeof(longnum) - 1] = '\0';
	assert_same(COMPARE_FLOAT, longnum, "0");
	longnum[2] = '5';
	assert_differ(COMPARE_FLOAT, longnum, "0");
	assert_same(COMPARE_FLOAT, longnum, "0.5");
}

static void test_checker_mode_never_matches_here(void **state)
{
	/* run.c asks the checker; comparing here would be a bug */
	assert_false(cmp_mode(COMPARE_CHECKER, "1", "1"));
}

/* Megabytes of output compare in linear time. */
static void test_large_outputs(void **state)
{
	const size_t n = 8u << 20;
	char *a = malloc(n), *b = malloc(n);
	struct compare_spec c;
	clock_t t0 = clock();

	assert_non_null(a);
	assert_non_null(b);
	for (size_t i = 0; i < n; i += 8)
		memcpy(a + i, "1.25 \0x\n", 8);
	memcpy(b, a, n);
	compare_spec_default(&c);
	for (int m = COMPARE_TRAILING; m < COMPARE_CHECKER; m++) {
		c.mode = (enum compare_mode)m;
		assert_true(compare_output(&c, a, n, b, n));
	}
	b[n - 3] = 'y';
	for (int m = COMPARE_TRAILING; m < COMPARE_CHECKER; m++) {
		c.mode = (enum compare_mode)m;
		assert_false(compare_output(&c, a, n, b, n));
	}
	/* one 8 MB line, and one 8 MB token */
	memset(a, 'z', n);
	memcpy(b, a, n);
	for (int m = COMPARE_TRAILING; m < COMPARE_CHECKER; m++) {
		c.mode = (enum compare_mode)m;
		assert_true(compare_output(&c, a, n, b, n));
	}
	memset(a, '7', n);
	memcpy(b, a, n);
	b[n - 1] = '8';
	c.mode = COMPARE_FLOAT;
	assert_false(compare_output(&c, a, n, b, n)); /* 7…7 vs 7…8: inf, strings */
	free(a);
	free(b);
	/* ~0.1 s natively, ~30 s under valgrind; quadratic would be hours */
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 120.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_default),
	    cmocka_unit_test(test_spec_from_json),
	    cmocka_unit_test(test_spec_refusals),
	    cmocka_unit_test(test_mode_names),
	    cmocka_unit_test(test_exact),
	    cmocka_unit_test(test_trailing_ignores_what_users_cannot_see),
	    cmocka_unit_test(test_trailing_keeps_what_matters),
	    cmocka_unit_test(test_trailing_with_nul_bytes),
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test(test_tokens_with_nul_bytes),
	    cmocka_unit_test(test_float_tolerance),
	    cmocka_unit_test(test_float_relative_is_against_the_expected),
	    cmocka_unit_test(test_float_custom_tolerance),
	    cmocka_unit_test(test_float_words_nan_and_inf_are_strings),
	    cmocka_unit_test(test_float_with_nul_and_long_tokens),
	    cmocka_unit_test(test_checker_mode_never_matches_here),
	    cmocka_unit_test(test_large_outputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
