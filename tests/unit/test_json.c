/* test_json.c — request-body parsing within bounds and typed field access,
 * with the messages a client sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "json.h"
#include "cleanup.h" /* after jansson.h: cleanup_json */

static json_t *parse(const char *text, size_t depth, struct wp_error *err)
{
	return json_parse_body(text, strlen(text), depth, err);
}

static void test_parse_object(void **state)
{
	struct wp_error err = {0};
	cleanup_json json_t *j = parse("{\"a\": 1, \"b\": [1, {\"c\": \"d\"}]}", 3, &err);

	assert_non_null(j);
	assert_true(json_is_object(j));
}

static void test_parse_refuses_non_object(void **state)
{
	struct wp_error err = {0};

	assert_null(parse("[1, 2]", 8, &err));
	assert_int_equal(err.code, EINVAL);
	assert_string_equal(err.msg, "the body must be a JSON object, not an array");
	assert_null(parse("42", 8, &err));
	assert_string_equal(err.msg, "the body must be a JSON object, not an integer");
	assert_null(parse("\"x\"", 8, &err));
	assert_string_equal(err.msg, "the body must be a JSON object, not a string");
}

static void test_parse_depth(void **state)
{
	struct wp_error err = {0};
	cleanup_json json_t *ok = parse("{\"a\": {\"b\": [1]}}", 3, &err);
	cleanup_json json_t *flat = parse("{\"a\": 1}", 1, &err);

	assert_non_null(ok);
	assert_non_null(flat);
	assert_null(parse("{\"a\": {\"b\": [1]}}", 2, &err));
	assert_string_equal(err.msg, "JSON nested deeper than 2 levels");
	assert_null(parse("{\"a\": {}}", 1, &err));

	/* far deeper than the bound, still well within jansson's own */
	char deep[1200] = "{\"a\":";
	for (int i = 0; i < 500; i++)
		strcat(deep, "[");
	for (int i = 0; i < 500; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	assert_null(parse(deep, 32, &err));
	assert_string_equal(err.msg, "JSON nested deeper than 32 levels");
}

static void test_parse_invalid(void **state)
{
	struct wp_error err = {0};

	assert_null(parse("{\"a\": 1,\n \"b\": }", 8, &err));
	assert_int_equal(err.code, EINVAL);
	assert_non_null(strstr(err.msg, "invalid JSON at line 2, column "));

	assert_null(json_parse_body("", 0, 8, &err));
	assert_non_null(strstr(err.msg, "invalid JSON at line 1"));
	assert_null(json_parse_body(NULL, 0, 8, &err));

	/* invalid UTF-8 in a string */
	assert_null(parse("{\"a\": \"\xff\xfe\"}", 8, &err));
	assert_non_null(strstr(err.msg, "invalid JSON"));
	/* a raw NUL byte in the body (an escaped one in a string is a byte of
	 * the value: test_nul_bytes) */
	assert_null(json_parse_body("{\"a\": 1}\0{}", 11, 8, &err));
	/* duplicate keys are ambiguous: refused */
	assert_null(parse("{\"a\": 1, \"a\": 2}", 8, &err));
	assert_non_null(strstr(err.msg, "duplicate"));
	/* trailing garbage */
	assert_null(parse("{} x", 8, &err));
}

static void test_get_string(void **state)
{
	struct wp_error err = {0};
	cleanup_json json_t *j = parse("{\"s\": \"hi\", \"n\": 3, \"z\": null}", 4, &err);
	const char *s = "default";

	assert_int_equal(json_get_string(j, "s", true, &s, &err), 0);
	assert_string_equal(s, "hi");
	s = "default";
	assert_int_equal(json_get_string(j, "absent", false, &s, &err), 0);
	assert_string_equal(s, "default");
	assert_int_equal(json_get_string(j, "z", false, &s, &err), 0);
	assert_string_equal(s, "default");
	assert_int_equal(json_get_string(j, "absent", true, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "missing `absent`");
	assert_int_equal(json_get_string(j, "z", true, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "missing `z`");
	assert_int_equal(json_get_string(j, "n", true, &s, &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_string_equal(err.msg, "`n` must be a string, not an integer");
}

static void test_get_uint(void **state)
{
	struct wp_error err = {0};
	cleanup_json json_t *j = parse("{\"n\": 42, \"neg\": -1, \"real\": 4.0, \"b\": true, \"s\": \"5\","
				       " \"big\": 9223372036854775807}",
				       4, &err);
	uint64_t v = 7;

	assert_int_equal(json_get_uint(j, "n", true, 0, 100, &v, &err), 0);
	assert_int_equal(v, 42);
	assert_int_equal(json_get_uint(j, "n", true, 42, 42, &v, &err), 0);
	v = 7;
	assert_int_equal(json_get_uint(j, "absent", false, 0, 100, &v, &err), 0);
	assert_int_equal(v, 7);
	assert_int_equal(json_get_uint(j, "absent", true, 0, 100, &v, &err), -EINVAL);
	assert_string_equal(err.msg, "missing `absent`");
	assert_int_equal(json_get_uint(j, "n", true, 0, 41, &v, &err), -EINVAL);
	assert_string_equal(err.msg, "`n` must be an integer between 0 and 41");
	assert_int_equal(json_get_uint(j, "n", true, 43, 100, &v, &err), -EINVAL);
	assert_int_equal(json_get_uint(j, "neg", true, 0, 100, &v, &err), -EINVAL);
	assert_string_equal(err.msg, "`neg` must be an integer between 0 and 100");
	assert_int_equal(json_get_uint(j, "real", true, 0, 100, &v, &err), -EINVAL);
	assert_int_equal(json_get_uint(j, "b", true, 0, 100, &v, &err), -EINVAL);
	assert_int_equal(json_get_uint(j, "s", true, 0, 100, &v, &err), -EINVAL);
	assert_int_equal(v, 7);
	assert_int_equal(json_get_uint(j, "big", true, 0, UINT64_MAX, &v, &err), 0);
	assert_int_equal(v, 9223372036854775807ull);
}

static void test_get_bool(void **state)
{
	struct wp_error err = {0};
	cleanup_json json_t *j = parse("{\"t\": true, \"f\": false, \"one\": 1, \"s\": \"true\"}", 4, &err);
	bool b = false;

	assert_int_equal(json_get_bool(j, "t", true, &b, &err), 0);
	assert_true(b);
	assert_int_equal(json_get_bool(j, "f", true, &b, &err), 0);
	assert_false(b);
	b = true;
	assert_int_equal(json_get_bool(j, "absent", false, &b, &err), 0);
	assert_true(b);
	assert_int_equal(json_get_bool(j, "absent", true, &b, &err), -EINVAL);
	assert_int_equal(json_get_bool(j, "one", true, &b, &err), -EINVAL);
	assert_string_equal(err.msg, "`one` must be true or false, not an integer");
	assert_int_equal(json_get_bool(j, "s", false, &b, &err), -EINVAL);
	assert_string_equal(err.msg, "`s` must be true or false, not a string");
}

static void test_get_array_object(void **state)
{
	struct wp_error err = {0};
	cleanup_json json_t *j = parse("{\"a\": [1, 2], \"o\": {\"k\": 1}}", 4, &err);
	json_t *a = NULL, *o = NULL;

	assert_int_equal(json_get_array(j, "a", true, &a, &err), 0);
	assert_int_equal(json_array_size(a), 2);
	assert_int_equal(json_get_object(j, "o", true, &o, &err), 0);
	assert_non_null(json_object_get(o, "k"));
	assert_int_equal(json_get_array(j, "o", true, &a, &err), -EINVAL);
	assert_string_equal(err.msg, "`o` must be an array, not an object");
	assert_int_equal(json_get_object(j, "a", true, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "`a` must be an object, not an array");
}

static void test_check_keys(void **state)
{
	static const char *const allowed[] = {"language", "code", "stdin", NULL};
	static const char *const none[] = {NULL};
	struct wp_error err = {0};
	cleanup_json json_t *good = parse("{\"language\": \"c\", \"code\": \"x\"}", 4, &err);
	cleanup_json json_t *bad = parse("{\"language\": \"c\", \"cod\": \"x\"}", 4, &err);
	cleanup_json json_t *empty = parse("{}", 4, &err);

	assert_int_equal(json_check_keys(good, allowed, &err), 0);
	assert_int_equal(json_check_keys(empty, none, &err), 0);
	assert_int_equal(json_check_keys(bad, allowed, &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_string_equal(err.msg, "unknown field `cod`");
	assert_int_equal(json_check_keys(good, none, &err), -EINVAL);
	/* NULL err is allowed everywhere */
	assert_int_equal(json_check_keys(bad, allowed, NULL), -EINVAL);
	assert_null(parse("[]", 4, NULL));
}

static void test_nul_bytes(void **state)
{
	struct wp_error err = {0};
	cleanup_json json_t *j = parse("{\"in\": \"a\\u0000b\", \"name\": \"x\\u0000y\"}", 4, &err);
	const char *p = NULL;
	size_t len = 0;

	assert_non_null(j);
	/* bytes: all three, the NUL included */
	assert_int_equal(json_get_bytes(j, "in", true, &p, &len, &err), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "a\0b", 3);
	assert_int_equal(json_get_bytes(j, "absent", false, &p, NULL, &err), 0);
	/* a C string would be cut short at the NUL: refused */
	assert_int_equal(json_get_string(j, "name", true, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "`name` must not contain a NUL byte (\\u0000)");

	/* a daemon's answer with a NUL in a string, not NUL-terminated */
	static const char reply[] = "{\"stdout\": \"4\\u00002\"}trailing";
	cleanup_json json_t *r = json_parse_reply(reply, strlen(reply) - strlen("trailing"));
	assert_non_null(r);
	assert_int_equal(json_string_length(json_object_get(r, "stdout")), 3);
	assert_memory_equal(json_string_value(json_object_get(r, "stdout")), "4\0002", 3);
	assert_null(json_parse_reply(NULL, 0));
	assert_null(json_parse_reply("not json", 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_object), cmocka_unit_test(test_parse_refuses_non_object),
	    cmocka_unit_test(test_parse_depth),	 cmocka_unit_test(test_parse_invalid),
	    cmocka_unit_test(test_get_string),	 cmocka_unit_test(test_get_uint),
	    cmocka_unit_test(test_get_bool),	 cmocka_unit_test(test_get_array_object),
	    cmocka_unit_test(test_check_keys),	 cmocka_unit_test(test_nul_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
