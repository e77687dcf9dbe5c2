/* limits.c — per-run limits (see limits.h). One table maps each field to its
 * INI key, its JSON key and how its value is written, so the language files,
 * the daemon's [limits_max] and a request's "limits" object cannot drift
 * apart. A request's object is checked whole before any of it is applied:
 * a refused request leaves the limits as they were. */
#include "limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "cleanup.h"
#include "config.h"

enum limit_kind {
	LIMIT_DURATION, /* "10s", "1500ms": stored in ms */
	LIMIT_SIZE,	/* "16M": stored in bytes */
	LIMIT_SIZE_KB,	/* "256M": stored in KiB */
	LIMIT_COUNT,	/* "64" */
};

struct limit_field {
	const char *ini;
	const char *json;
	size_t off;
	enum limit_kind kind;
};

static const struct limit_field fields[] = {
    {"cpu", "cpu_ms", offsetof(struct limits, cpu_ms), LIMIT_DURATION},
    {"wall", "wall_ms", offsetof(struct limits, wall_ms), LIMIT_DURATION},
    {"memory", "memory_kb", offsetof(struct limits, memory_kb), LIMIT_SIZE_KB},
    {"pids", "pids", offsetof(struct limits, pids), LIMIT_COUNT},
    {"output", "output_bytes", offsetof(struct limits, output_bytes), LIMIT_SIZE},
    {"fsize", "fsize_bytes", offsetof(struct limits, fsize_bytes), LIMIT_SIZE},
};

/* The kernel's PID_MAX_LIMIT: no pids.max above it means anything. */
#define LIMITS_PIDS_MAX 4194304

static uint64_t *field_ptr(struct limits *l, const struct limit_field *f)
{
	return (uint64_t *)((char *)l + f->off);
}

static uint64_t field_get(const struct limits *l, const struct limit_field *f)
{
	return *(const uint64_t *)((const char *)l + f->off);
}

static const struct limit_field *field_by_ini(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (strcmp(fields[i].ini, key) == 0)
			return &fields[i];
	return NULL;
}

void limits_default(struct limits *l)
{
	*l = (struct limits){
	    .cpu_ms = 5000,
	    .wall_ms = 10000,
	    .memory_kb = 256 * 1024,
	    .pids = 64,
	    .output_bytes = 16ull << 20,
	    .fsize_bytes = 64ull << 20,
	};
}

const char *limits_ini_hint(const char *key)
{
	const struct limit_field *f = field_by_ini(key);

	if (!f)
		return NULL;
	switch (f->kind) {
	case LIMIT_DURATION: return "a duration above zero (1500ms, 10s, 5m; a bare number is seconds)";
	case LIMIT_SIZE:
	case LIMIT_SIZE_KB: return "a size above zero (4096, 64k, 16M, 1G)";
	case LIMIT_COUNT: return "an integer from 1 to 4194304";
	}
	return NULL;
}

int limits_set_ini(struct limits *l, const char *key, const char *value)
{
	const struct limit_field *f = field_by_ini(key);
	uint64_t v;
	int r;

	if (!f)
		return -ENOENT;
	switch (f->kind) {
	case LIMIT_DURATION: r = config_parse_duration_ms(value, &v); break;
	case LIMIT_SIZE: r = config_parse_size(value, &v); break;
	case LIMIT_SIZE_KB:
		r = config_parse_size(value, &v);
		/* Round up: "1000" bytes must not become a limit of 0 KiB. */
		if (r == 0)
			v = v / 1024 + (v % 1024 != 0);
		break;
	case LIMIT_COUNT: r = config_parse_u64(value, 1, LIMITS_PIDS_MAX, &v); break;
	default: return -EINVAL;
	}
	if (r < 0)
		return r;
	/* No limit of zero means anything useful (no CPU, no memory…). */
	if (v == 0)
		return -ERANGE;
	*field_ptr(l, f) = v;
	return 0;
}

int limits_apply_json(struct limits *l, const json_t *obj, const struct limits *max, struct wp_error *err)
{
	struct limits next = *l;
	const char *key;
	json_t *val;

	if (!obj)
		return 0;
	if (!json_is_object(obj))
		return wp_error_set(err, EINVAL, "limits: must be an object");
	/* json_object_foreach wants a non-const object; it only reads it. */
	json_object_foreach ((json_t *)obj, key, val) {
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
			known |= strcmp(fields[i].json, key) == 0;
		if (!known)
			return wp_error_set(err, EINVAL, "limits: unknown field `%s`", key);
	}
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const struct limit_field *f = &fields[i];
		json_int_t v;

		val = json_object_get(obj, f->json);
		if (!val)
			continue;
		if (!json_is_integer(val))
			return wp_error_set(err, EINVAL, "%s: must be an integer", f->json);
		v = json_integer_value(val);
		if (v < 1)
			return wp_error_set(err, EINVAL, "%s: %" JSON_INTEGER_FORMAT " is below the minimum 1", f->json,
					    v);
		if (max && (uint64_t)v > field_get(max, f))
			return wp_error_set(err, EINVAL, "%s: %" JSON_INTEGER_FORMAT " is above the maximum %" PRIu64,
					    f->json, v, field_get(max, f));
		*field_ptr(&next, f) = (uint64_t)v;
	}
	*l = next;
	return 0;
}

json_t *limits_to_json(const struct limits *l)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		uint64_t v = field_get(l, &fields[i]);
		/* JSON integers are signed 64-bit; no real limit comes near. */
		if (v > INT64_MAX)
			v = INT64_MAX;
		if (json_object_set_new(o, fields[i].json, json_integer((json_int_t)v)) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}
