/* limits.h — per-run limits: defaults from the language file, overridden per
 * request, clamped by the daemon's configured maxima. */
#ifndef SANDBOXD_LIMITS_H
#define SANDBOXD_LIMITS_H

#include <jansson.h>
#include <stdint.h>
#include "error.h"

struct limits {
	uint64_t cpu_ms;       /* CPU time of the whole run (all processes) */
	uint64_t wall_ms;      /* wall clock */
	uint64_t memory_kb;    /* cgroup memory limit of the run */
	uint64_t pids;	       /* processes + threads */
	uint64_t output_bytes; /* stdout + stderr each */
	uint64_t fsize_bytes;  /* RLIMIT_FSIZE: largest file the run may write */
};

/* The documented defaults (docs/api.md): 5 s CPU, 10 s wall, 256 MiB, 64 pids, 16 MiB output,
 * 64 MiB written. */
void limits_default(struct limits *l);
/* Parse one INI key of a [limits] section ("cpu", "wall", "memory", "pids",
 * "output", "fsize"; values with units as config_parse_size/_duration_ms).
 * Returns 0, -ENOENT for an unknown key, -EINVAL/-ERANGE for a bad value. */
int limits_set_ini(struct limits *l, const char *key, const char *value);
/* Apply a request's JSON object {"cpu_ms", "wall_ms", "memory_kb", "pids",
 * "output_bytes", "fsize_bytes"} (all optional, non-negative integers, unknown
 * keys refused) on top of `l`; each value must be >= 1 and <= the same field
 * in `max`. Returns 0 or -EINVAL with err saying which field and why. */
int limits_apply_json(struct limits *l, const json_t *obj, const struct limits *max, struct wp_error *err);
json_t *limits_to_json(const struct limits *l);
/* What an INI key of a [limits] section takes, for error messages: "a size
 * (4096, 64k, 16M, 1G)", …; NULL for an unknown key. */
const char *limits_ini_hint(const char *key);

#endif
