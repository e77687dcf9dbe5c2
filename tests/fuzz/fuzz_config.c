/* fuzz_config.c — the value parsers every INI file goes through
 * (lib/config.c: sizes, durations, booleans, integers, command lines) and
 * sandboxd's [limits] keys (sandboxd/limits.c). Input: byte 0 picks the
 * [limits] key, the rest (up to a NUL) is the value. */
#include "fuzz.h"

#include "config.h"
#include "limits.h"

#include <stdlib.h>
#include <string.h>

static const char *const limit_keys[] = {"cpu", "wall", "memory", "pids", "output", "fsize", "nofile", "stack"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, **argv = NULL;
	uint64_t u;
	bool b;
	struct limits l;

	if (size < 1)
		return 0;
	s = strndup((const char *)data + 1, size - 1);
	assert(s);
	(void)config_parse_size(s, &u);
	(void)config_parse_duration_ms(s, &u);
	(void)config_parse_bool(s, &b);
	(void)config_parse_u64(s, 1, 1000, &u);
	if (config_split_argv(s, &argv) == 0) {
		assert(argv[0]);
		for (char **a = argv; *a; a++)
			assert(strlen(*a) <= strlen(s));
		config_argv_free(argv);
	}
	limits_default(&l);
	(void)limits_set_ini(&l, limit_keys[data[0] % (sizeof(limit_keys) / sizeof(limit_keys[0]))], s);
	(void)limits_ini_hint(s);
	free(s);
	return 0;
}
