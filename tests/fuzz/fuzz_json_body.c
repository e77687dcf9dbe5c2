/* fuzz_json_body.c — a JSON request body as poold and sandboxd read one:
 * lib/json.c (json_parse_body within a depth bound, the typed getters, the
 * key check) and sandboxd's per-run limits (sandboxd/limits.c
 * limits_apply_json), which validate what a client asks for. */
#include "fuzz.h"

#include "json.h"
#include "limits.h"

#include <string.h>

static const char *const keys[] = {"code", "language", "tests", "limits", "timeout", "stateful", "files", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_error err = {0};
	json_t *b = json_parse_body((const char *)data, size, 8, &err), *v;
	const char *s;
	uint64_t u;
	bool flag;

	if (!b) {
		assert(err.msg[0]);
		return 0;
	}
	assert(json_is_object(b));
	for (const char *const *k = keys; *k; k++) {
		(void)json_get_string(b, *k, false, &s, &err);
		(void)json_get_uint(b, *k, false, 1, 4096, &u, &err);
		(void)json_get_bool(b, *k, false, &flag, &err);
		(void)json_get_array(b, *k, false, &v, &err);
		(void)json_get_object(b, *k, false, &v, &err);
		(void)json_get_string(b, *k, true, &s, &err);
	}
	(void)json_check_keys(b, keys, &err);

	/* sandboxd: {"limits": {...}} of a run, bounded by the host's maximum */
	json_t *lj = NULL;
	if (json_get_object(b, "limits", false, &lj, &err) == 0 && lj) {
		struct limits l, max;
		limits_default(&l);
		limits_default(&max);
		max.cpu_ms = 30000;
		max.wall_ms = 60000;
		max.memory_kb = 1u << 20;
		max.pids = 256;
		if (limits_apply_json(&l, lj, &max, &err) == 0) {
			assert(l.cpu_ms <= max.cpu_ms && l.wall_ms <= max.wall_ms);
			assert(l.memory_kb <= max.memory_kb && l.pids <= max.pids);
			json_decref(limits_to_json(&l));
		}
	}
	json_decref(b);
	return 0;
}
