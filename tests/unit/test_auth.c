/* test_auth.c — bearer tokens: hashing, config lines, the 401/403 split,
 * admin over every role, and what a malformed Authorization header gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define HELLO_SHA256 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

static char *hash_of(const char *token)
{
	static char out[65];
	auth_hash_token(token, strlen(token), out);
	return out;
}

/* tokens "exec-token", "admin-token", "scrape-token", "hello" */
static int setup(void **state)
{
	struct auth *a = auth_new();
	char line[200];

	assert_non_null(a);
	snprintf(line, sizeof(line), "%s executor backend", hash_of("exec-token"));
	assert_int_equal(auth_add_line(a, line), 0);
	snprintf(line, sizeof(line), "  %s\tADMIN ops  \n", hash_of("admin-token"));
	assert_int_equal(auth_add_line(a, line), 0);
	assert_int_equal(auth_add(a, hash_of("scrape-token"), AUTH_METRICS, "prometheus"), 0);
	/* upper case hex is normalised, no name gets one from the digest */
	assert_int_equal(
	    auth_add(a, "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", AUTH_EXECUTOR, NULL), 0);
	assert_int_equal(auth_count(a), 4);
	*state = a;
	return 0;
}

static int teardown(void **state)
{
	auth_free(*state);
	return 0;
}

static void test_hash(void **state)
{
	char out[65];

	auth_hash_token("hello", 5, out);
	assert_string_equal(out, HELLO_SHA256);
	auth_hash_token("", 0, out);
	assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	auth_hash_token("hello world", 5, out); /* len, not strlen */
	assert_string_equal(out, HELLO_SHA256);
}

static void test_roles(void **state)
{
	enum auth_role r = 0;

	assert_int_equal(auth_parse_role("executor", &r), 0);
	assert_int_equal(r, AUTH_EXECUTOR);
	assert_int_equal(auth_parse_role("Admin", &r), 0);
	assert_int_equal(r, AUTH_ADMIN);
	assert_int_equal(auth_parse_role("metrics", &r), 0);
	assert_int_equal(r, AUTH_METRICS);
	assert_int_equal(auth_parse_role("root", &r), -EINVAL);
	assert_int_equal(auth_parse_role("", &r), -EINVAL);
	assert_string_equal(auth_role_name(AUTH_EXECUTOR), "executor");
	assert_string_equal(auth_role_name(AUTH_ADMIN), "admin");
	assert_string_equal(auth_role_name(AUTH_METRICS), "metrics");
	assert_string_equal(auth_role_name(3), "unknown");
}

static void test_right_token(void **state)
{
	struct auth *a = *state;
	const char *who = NULL;

	assert_int_equal(auth_check(a, "Bearer exec-token", AUTH_EXECUTOR, &who), 0);
	assert_string_equal(who, "backend");
	assert_int_equal(auth_check(a, "Bearer scrape-token", AUTH_METRICS, &who), 0);
	assert_string_equal(who, "prometheus");
	assert_int_equal(auth_check(a, "Bearer hello", AUTH_EXECUTOR, &who), 0);
	assert_string_equal(who, "sha256:2cf24dba");
	/* the scheme in any case, blanks around */
	assert_int_equal(auth_check(a, "bearer exec-token", AUTH_EXECUTOR, NULL), 0);
	assert_int_equal(auth_check(a, "BEARER  \texec-token \t", AUTH_EXECUTOR, NULL), 0);
	assert_int_equal(auth_check(a, " Bearer exec-token", AUTH_EXECUTOR, NULL), 0);
	/* any of several roles */
	assert_int_equal(auth_check(a, "Bearer scrape-token", AUTH_METRICS | AUTH_EXECUTOR, NULL), 0);
}

static void test_wrong_token(void **state)
{
	struct auth *a = *state;
	const char *who = "untouched";

	assert_int_equal(auth_check(a, "Bearer exec-tokenX", AUTH_EXECUTOR, &who), -EACCES);
	assert_null(who);
	assert_int_equal(auth_check(a, "Bearer Exec-token", AUTH_EXECUTOR, NULL), -EACCES);    /* token is exact */
	assert_int_equal(auth_check(a, "Bearer " HELLO_SHA256, AUTH_EXECUTOR, NULL), -EACCES); /* not the digest */
}

static void test_wrong_role(void **state)
{
	struct auth *a = *state;
	const char *who = NULL;

	/* an executor may not scrape, a scraper may not run code */
	assert_int_equal(auth_check(a, "Bearer exec-token", AUTH_METRICS, &who), -EPERM);
	assert_string_equal(who, "backend");
	assert_int_equal(auth_check(a, "Bearer scrape-token", AUTH_EXECUTOR, &who), -EPERM);
	assert_string_equal(who, "prometheus");
	assert_int_equal(auth_check(a, "Bearer scrape-token", AUTH_ADMIN, NULL), -EPERM);
	assert_int_equal(auth_check(a, "Bearer exec-token", AUTH_ADMIN, NULL), -EPERM);
}

static void test_admin_everything(void **state)
{
	struct auth *a = *state;
	const char *who = NULL;

	assert_int_equal(auth_check(a, "Bearer admin-token", AUTH_ADMIN, &who), 0);
	assert_string_equal(who, "ops");
	assert_int_equal(auth_check(a, "Bearer admin-token", AUTH_EXECUTOR, NULL), 0);
	assert_int_equal(auth_check(a, "Bearer admin-token", AUTH_METRICS, NULL), 0);
}

static void test_malformed_header(void **state)
{
	struct auth *a = *state;
	static const char *const bad[] = {
	    "",
	    "Bearer",
	    "Bearer ",
	    "Bearer    ",
	    "Bearerexec-token",
	    "Basic ZXhlYy10b2tlbg==",
	    "exec-token",
	    "Bearer exec-token extra",
	    "Bearer exec\x01token",
	    "Bearer exec-tok\xc3\xa9n",
	    "Token exec-token",
	};
	char *huge;

	assert_int_equal(auth_check(a, NULL, AUTH_EXECUTOR, NULL), -EACCES); /* missing */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(auth_check(a, bad[i], AUTH_EXECUTOR, NULL), -EACCES);

	/* length: AUTH_TOKEN_MAX is fine, one more is refused */
	huge = malloc(7 + AUTH_TOKEN_MAX + 2);
	assert_non_null(huge);
	memcpy(huge, "Bearer ", 7);
	memset(huge + 7, 'a', AUTH_TOKEN_MAX);
	huge[7 + AUTH_TOKEN_MAX] = '\0';
	assert_int_equal(auth_add(a, hash_of(huge + 7), AUTH_EXECUTOR, "long"), 0);
	assert_int_equal(auth_check(a, huge, AUTH_EXECUTOR, NULL), 0);
	huge[7 + AUTH_TOKEN_MAX] = 'a';
	huge[7 + AUTH_TOKEN_MAX + 1] = '\0';
	assert_int_equal(auth_check(a, huge, AUTH_EXECUTOR, NULL), -EACCES);
	free(huge);
}

static void test_no_tokens(void **state)
{
	struct auth *a = auth_new();

	assert_int_equal(auth_count(a), 0);
	assert_int_equal(auth_check(a, "Bearer hello", AUTH_EXECUTOR, NULL), -EACCES);
	auth_free(a);
	auth_free(NULL);
}

static void test_add_line_errors(void **state)
{
	struct auth *a = auth_new();
	char line[300];

	assert_int_equal(auth_add_line(a, ""), -EINVAL);
	assert_int_equal(auth_add_line(a, "   "), -EINVAL);
	assert_int_equal(auth_add_line(a, HELLO_SHA256), -EINVAL);		/* no role */
	assert_int_equal(auth_add_line(a, HELLO_SHA256 " root"), -EINVAL);	/* unknown role */
	assert_int_equal(auth_add_line(a, HELLO_SHA256 " admin a b"), -EINVAL); /* extra word */
	assert_int_equal(auth_add_line(a, HELLO_SHA256 "0 admin"), -EINVAL);	/* 65 digits */
	assert_int_equal(auth_add_line(a, "2cf24dba5fb0a30e admin"), -EINVAL);	/* short */
	assert_int_equal(auth_add_line(a, "admin " HELLO_SHA256), -EINVAL);	/* swapped */
	snprintf(line, sizeof(line), "%.63sg admin", HELLO_SHA256);		/* not hex */
	assert_int_equal(auth_add_line(a, line), -EINVAL);
	snprintf(line, sizeof(line), "%s admin %0*d", HELLO_SHA256, 65, 0); /* name too long */
	assert_int_equal(auth_add_line(a, line), -EINVAL);
	assert_int_equal(auth_add(a, HELLO_SHA256, 3, "x"), -EINVAL); /* not one role */
	assert_int_equal(auth_add(a, HELLO_SHA256, AUTH_ADMIN, "bad\x7fname"), -EINVAL);
	assert_int_equal(auth_add(a, NULL, AUTH_ADMIN, NULL), -EINVAL);
	assert_int_equal(auth_add_line(a, NULL), -EINVAL);
	assert_int_equal(auth_count(a), 0);

	snprintf(line, sizeof(line), "%s admin %0*d", HELLO_SHA256, 64, 0); /* 64 is fine */
	assert_int_equal(auth_add_line(a, line), 0);
	/* the same digest twice, in either case, is refused */
	assert_int_equal(auth_add_line(a, HELLO_SHA256 " executor other"), -EEXIST);
	assert_int_equal(
	    auth_add(a, "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", AUTH_METRICS, NULL),
	    -EEXIST);
	assert_int_equal(auth_count(a), 1);
	auth_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash),
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test_setup_teardown(test_right_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_role, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admin_everything, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_header, setup, teardown),
	    cmocka_unit_test(test_no_tokens),
	    cmocka_unit_test(test_add_line_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
