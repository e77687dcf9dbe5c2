/* test_limits.c — the per-run limits: language-file keys with units, a
 * request's JSON override clamped by the node's maxima, and the JSON shown in
 * /v1/languages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "limits.h"
#include "cleanup.h" /* after jansson.h: cleanup_json */

static struct limits node_max(void)
{
	/* config/sandboxd.conf's [limits_max] */
	return (struct limits){.cpu_ms = 30000,
			       .wall_ms = 60000,
			       .memory_kb = 1048576,
			       .pids = 256,
			       .output_bytes = 64ull << 20,
			       .fsize_bytes = 128ull << 20};
}

static void apply_text(struct limits *l, const char *text, int expect, const char *msg)
{
	struct limits max = node_max();
	struct wp_error err = {0};
	json_error_t jerr;
	cleanup_json json_t *obj = json_loads(text, JSON_DECODE_ANY, &jerr);

	assert_non_null(obj);
	assert_int_equal(limits_apply_json(l, obj, &max, &err), expect);
	if (msg) {
		assert_string_equal(err.msg, msg);
		assert_int_equal(err.code, EINVAL);
	}
}

static void test_defaults_are_the_design(void **state)
{
	struct limits l;

	limits_default(&l);
	assert_int_equal(l.cpu_ms, 5000);
	assert_int_equal(l.wall_ms, 10000);
	assert_int_equal(l.memory_kb, 256 * 1024);
	assert_int_equal(l.pids, 64);
	assert_int_equal(l.output_bytes, 16 << 20);
	assert_int_equal(l.fsize_bytes, 64 << 20);
}

static void test_ini_keys_with_units(void **state)
{
	struct limits l;

	limits_default(&l);
	assert_int_equal(limits_set_ini(&l, "cpu", "2s"), 0);
	assert_int_equal(l.cpu_ms, 2000);
	assert_int_equal(limits_set_ini(&l, "wall", "1500ms"), 0);
	assert_int_equal(l.wall_ms, 1500);
	assert_int_equal(limits_set_ini(&l, "wall", "3"), 0); /* bare number: seconds */
	assert_int_equal(l.wall_ms, 3000);
	assert_int_equal(limits_set_ini(&l, "memory", "512M"), 0);
	assert_int_equal(l.memory_kb, 524288);
	assert_int_equal(limits_set_ini(&l, "memory", "1G"), 0);
	assert_int_equal(l.memory_kb, 1048576);
	assert_int_equal(limits_set_ini(&l, "pids", "128"), 0);
	assert_int_equal(l.pids, 128);
	assert_int_equal(limits_set_ini(&l, "output", "1M"), 0);
	assert_int_equal(l.output_bytes, 1 << 20);
	assert_int_equal(limits_set_ini(&l, "fsize", "64k"), 0);
	assert_int_equal(l.fsize_bytes, 65536);
}

static void test_ini_memory_rounds_up_to_kib(void **state)
{
	struct limits l;

	limits_default(&l);
	assert_int_equal(limits_set_ini(&l, "memory", "1000"), 0);
	assert_int_equal(l.memory_kb, 1);
	assert_int_equal(limits_set_ini(&l, "memory", "1025"), 0);
	assert_int_equal(l.memory_kb, 2);
}

static void test_ini_refuses_bad_values_and_keeps_the_old_one(void **state)
{
	struct limits l, before;

	limits_default(&l);
	before = l;
	assert_int_equal(limits_set_ini(&l, "cpus", "1s"), -ENOENT);
	assert_int_equal(limits_set_ini(&l, "memory", "lots"), -EINVAL);
	assert_int_equal(limits_set_ini(&l, "memory", ""), -EINVAL);
	assert_int_equal(limits_set_ini(&l, "memory", "-1M"), -EINVAL);
	assert_int_equal(limits_set_ini(&l, "cpu", "10 parsecs"), -EINVAL);
	assert_int_equal(limits_set_ini(&l, "pids", "12k"), -EINVAL);
	assert_int_equal(limits_set_ini(&l, "pids", "5000000"), -ERANGE);
	assert_int_equal(limits_set_ini(&l, "cpu", "0"), -ERANGE);
	assert_int_equal(limits_set_ini(&l, "memory", "0k"), -ERANGE);
	assert_int_equal(limits_set_ini(&l, "pids", "0"), -ERANGE);
	assert_int_equal(limits_set_ini(&l, "fsize", "99999999999999999999G"), -ERANGE);
	assert_memory_equal(&l, &before, sizeof(l));
}

static void test_ini_hint_names_the_unit(void **state)
{
	assert_non_null(strstr(limits_ini_hint("memory"), "size"));
	assert_non_null(strstr(limits_ini_hint("wall"), "duration"));
	assert_non_null(strstr(limits_ini_hint("pids"), "integer"));
	assert_null(limits_ini_hint("cpus"));
}

static void test_json_overrides_only_what_it_names(void **state)
{
	struct limits l;

	limits_default(&l);
	apply_text(&l, "{\"cpu_ms\": 2000, \"memory_kb\": 262144, \"output_bytes\": 1048576}", 0, NULL);
	assert_int_equal(l.cpu_ms, 2000);
	assert_int_equal(l.memory_kb, 262144);
	assert_int_equal(l.output_bytes, 1048576);
	assert_int_equal(l.wall_ms, 10000);
	assert_int_equal(l.pids, 64);
	assert_int_equal(l.fsize_bytes, 64 << 20);

	apply_text(&l, "{}", 0, NULL);
	assert_int_equal(l.cpu_ms, 2000);
	/* Exactly the maximum is allowed. */
	apply_text(&l, "{\"wall_ms\": 60000, \"pids\": 256}", 0, NULL);
	assert_int_equal(l.wall_ms, 60000);
	assert_int_equal(l.pids, 256);
}

static void test_json_null_object_changes_nothing(void **state)
{
	struct limits l, before, max = node_max();

	limits_default(&l);
	before = l;
	assert_int_equal(limits_apply_json(&l, NULL, &max, NULL), 0);
	assert_memory_equal(&l, &before, sizeof(l));
}

static void test_json_refusals_say_which_field_and_why(void **state)
{
	struct limits l;

	limits_default(&l);
	apply_text(&l, "{\"memory_kb\": 9999999}", -EINVAL, "memory_kb: 9999999 is above the maximum 1048576");
	apply_text(&l, "{\"cpu_ms\": 0}", -EINVAL, "cpu_ms: 0 is below the minimum 1");
	apply_text(&l, "{\"pids\": -5}", -EINVAL, "pids: -5 is below the minimum 1");
	apply_text(&l, "{\"wall_ms\": 2.5}", -EINVAL, "wall_ms: must be an integer");
	apply_text(&l, "{\"wall_ms\": \"5000\"}", -EINVAL, "wall_ms: must be an integer");
	apply_text(&l, "{\"fsize_bytes\": true}", -EINVAL, "fsize_bytes: must be an integer");
	apply_text(&l, "{\"fsize_bytes\": null}", -EINVAL, "fsize_bytes: must be an integer");
	apply_text(&l, "{\"memory\": 1024}", -EINVAL, "limits: unknown field `memory`");
	apply_text(&l, "[1, 2]", -EINVAL, "limits: must be an object");
	apply_text(&l, "{\"output_bytes\": 67108865}", -EINVAL, "output_bytes: 67108865 is above the maximum 67108864");
}

static void test_json_is_all_or_nothing(void **state)
{
	struct limits l, before;

	limits_default(&l);
	before = l;
	/* A valid cpu_ms next to a refused memory_kb must not be half applied. */
	apply_text(&l, "{\"cpu_ms\": 1000, \"memory_kb\": 2000000}", -EINVAL, NULL);
	assert_memory_equal(&l, &before, sizeof(l));
	apply_text(&l, "{\"cpu_ms\": 1000, \"bogus\": 1}", -EINVAL, NULL);
	assert_memory_equal(&l, &before, sizeof(l));
}

static void test_json_without_max_has_no_ceiling(void **state)
{
	struct limits l;
	cleanup_json json_t *obj = json_pack("{s:I}", "memory_kb", (json_int_t)9999999);

	limits_default(&l);
	assert_int_equal(limits_apply_json(&l, obj, NULL, NULL), 0);
	assert_int_equal(l.memory_kb, 9999999);
}

static void test_to_json_round_trips(void **state)
{
	struct limits l, back, max = node_max();
	cleanup_json json_t *j = NULL;

	limits_default(&l);
	assert_int_equal(limits_set_ini(&l, "memory", "512M"), 0);
	j = limits_to_json(&l);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 6);
	assert_int_equal(json_integer_value(json_object_get(j, "cpu_ms")), 5000);
	assert_int_equal(json_integer_value(json_object_get(j, "wall_ms")), 10000);
	assert_int_equal(json_integer_value(json_object_get(j, "memory_kb")), 524288);
	assert_int_equal(json_integer_value(json_object_get(j, "pids")), 64);
	assert_int_equal(json_integer_value(json_object_get(j, "output_bytes")), 16 << 20);
	assert_int_equal(json_integer_value(json_object_get(j, "fsize_bytes")), 64 << 20);

	/* What /v1/languages shows is accepted back as a request's limits. */
	back = (struct limits){1, 1, 1, 1, 1, 1};
	assert_int_equal(limits_apply_json(&back, j, &max, NULL), 0);
	assert_memory_equal(&back, &l, sizeof(l));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_are_the_design),
	    cmocka_unit_test(test_ini_keys_with_units),
	    cmocka_unit_test(test_ini_memory_rounds_up_to_kib),
	    cmocka_unit_test(test_ini_refuses_bad_values_and_keeps_the_old_one),
	    cmocka_unit_test(test_ini_hint_names_the_unit),
	    cmocka_unit_test(test_json_overrides_only_what_it_names),
	    cmocka_unit_test(test_json_null_object_changes_nothing),
	    cmocka_unit_test(test_json_refusals_say_which_field_and_why),
	    cmocka_unit_test(test_json_is_all_or_nothing),
	    cmocka_unit_test(test_json_without_max_has_no_ceiling),
	    cmocka_unit_test(test_to_json_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
