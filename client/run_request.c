/* run_request.c — the body of a judged run (POST /v1/sessions/{id}/run),
 * built up by the caller before wp_session_run() sends it: the source, the
 * test cases, and the optional limits, comparison and flags, kept as the
 * JSON object the server reads (docs/api.md, docs/sandboxd-api.md). */
#include <stdint.h>

#include "wp_internal.h"

struct wp_run_request *wp_run_request_new(const char *source)
{
	struct wp_run_request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->o.magic = WP_MAGIC;
	r->o.type = WP_OBJ_RUN_REQUEST;
	r->o.json = json_pack("{s:[]}", "tests");
	if (!r->o.json || (source && json_object_set_new(r->o.json, "source", json_string(source)) < 0)) {
		wp_free(r);
		return NULL;
	}
	return r;
}

int wp_run_request_add_test(struct wp_run_request *r, const char *stdin_data, size_t stdin_len, const char *expected,
			    size_t expected_len)
{
	json_t *t, *in;

	if (!r || (!stdin_data && stdin_len))
		return -WP_ERR_USAGE;
	if (!(in = json_stringn(stdin_data ? stdin_data : "", stdin_len)))
		return -WP_ERR_USAGE; /* not UTF-8, or out of memory */
	if (!(t = json_pack("{s:o}", "stdin", in)))
		return -WP_ERR_NOMEM;
	if (expected) {
		json_t *e = json_stringn(expected, expected_len);
		if (!e) {
			json_decref(t);
			return -WP_ERR_USAGE;
		}
		json_object_set_new(t, "expected", e);
	}
	if (json_array_append_new(json_object_get(r->o.json, "tests"), t) < 0)
		return -WP_ERR_NOMEM;
	return 0;
}

int wp_run_request_set_limit(struct wp_run_request *r, enum wp_limit limit, long long value)
{
	static const char *const keys[] = {
	    [WP_LIMIT_CPU_MS] = "cpu_ms",
	    [WP_LIMIT_WALL_MS] = "wall_ms",
	    [WP_LIMIT_MEMORY_KB] = "memory_kb",
	    [WP_LIMIT_PIDS] = "pids",
	    [WP_LIMIT_OUTPUT_BYTES] = "output_bytes",
	    [WP_LIMIT_FSIZE_BYTES] = "fsize_bytes",
	};
	json_t *lim;

	if (!r || (unsigned)limit >= sizeof(keys) / sizeof(keys[0]) || value < 0)
		return -WP_ERR_USAGE;
	lim = json_object_get(r->o.json, "limits");
	if (!lim && (json_object_set_new(r->o.json, "limits", json_object()) < 0 ||
		     !(lim = json_object_get(r->o.json, "limits"))))
		return -WP_ERR_NOMEM;
	return json_object_set_new(lim, keys[limit], json_integer(value)) < 0 ? -WP_ERR_NOMEM : 0;
}

int wp_run_request_set_compare(struct wp_run_request *r, enum wp_compare mode, double abs_tol, double rel_tol)
{
	static const char *const modes[] = {
	    [WP_COMPARE_TRAILING] = "trailing",
	    [WP_COMPARE_EXACT] = "exact",
	    [WP_COMPARE_TOKENS] = "tokens",
	    [WP_COMPARE_FLOAT] = "float",
	};
	json_t *cmp;

	if (!r || (unsigned)mode >= sizeof(modes) / sizeof(modes[0]) || abs_tol < 0 || rel_tol < 0)
		return -WP_ERR_USAGE;
	if (!(cmp = json_pack("{s:s}", "mode", modes[mode])))
		return -WP_ERR_NOMEM;
	if (mode == WP_COMPARE_FLOAT) {
		if (abs_tol > 0)
			json_object_set_new(cmp, "abs_tol", json_real(abs_tol));
		if (rel_tol > 0)
			json_object_set_new(cmp, "rel_tol", json_real(rel_tol));
	}
	return json_object_set_new(r->o.json, "compare", cmp) < 0 ? -WP_ERR_NOMEM : 0;
}

int wp_run_request_set_compile(struct wp_run_request *r, bool compile)
{
	if (!r)
		return -WP_ERR_USAGE;
	return json_object_set_new(r->o.json, "compile", json_boolean(compile)) < 0 ? -WP_ERR_NOMEM : 0;
}

int wp_run_request_set_stop_on_failure(struct wp_run_request *r, bool stop)
{
	if (!r)
		return -WP_ERR_USAGE;
	return json_object_set_new(r->o.json, "stop_on_failure", json_boolean(stop)) < 0 ? -WP_ERR_NOMEM : 0;
}

int wp_run_request_set_max_output(struct wp_run_request *r, size_t bytes)
{
	if (!r || bytes > INT64_MAX)
		return -WP_ERR_USAGE;
	return json_object_set_new(r->o.json, "max_output", json_integer((json_int_t)bytes)) < 0 ? -WP_ERR_NOMEM : 0;
}

size_t wp_run_request_test_count(const struct wp_run_request *r)
{
	return r ? json_array_size(json_object_get(r->o.json, "tests")) : 0;
}
