/* json.c — see json.h. jansson bounds its own recursion while parsing (2048
 * levels); our much smaller depth bound is checked on the parsed tree by a
 * walk that stops one level past the bound. */
#include "json.h"

#include <inttypes.h>
#include <string.h>

static size_t json_depth(const json_t *j, size_t limit)
{
	size_t max = 0, d;
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_object(j) && !json_is_array(j))
		return 0;
	if (limit == 0)
		return 1; /* already too deep: stop descending */
	if (json_is_object(j)) {
		json_object_foreach ((json_t *)j, key, v)
			if ((d = json_depth(v, limit - 1)) > max)
				max = d;
	} else {
		json_array_foreach (j, i, v)
			if ((d = json_depth(v, limit - 1)) > max)
				max = d;
	}
	return max + 1;
}

static const char *json_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

json_t *json_parse_body(const char *buf, size_t len, size_t max_depth, struct wp_error *err)
{
	json_error_t jerr;
	json_t *j;

	/* JSON_ALLOW_NUL: "\u0000" is a byte like any other of a program's
	 * stdin or expected output; json_get_string refuses it where a C string
	 * is read, json_get_bytes takes it where bytes are. */
	j = json_loadb(buf ? buf : "", buf ? len : 0, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!j) {
		wp_error_set(err, EINVAL, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		wp_error_set(err, EINVAL, "the body must be a JSON object, not %s", json_type_name(j));
		json_decref(j);
		return NULL;
	}
	if (json_depth(j, max_depth) > max_depth) {
		wp_error_set(err, EINVAL, "JSON nested deeper than %zu levels", max_depth);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The value of key, NULL when absent or null; -EINVAL when required and so. */
static int json_field(const json_t *obj, const char *key, bool required, json_t **v, struct wp_error *err)
{
	*v = json_object_get(obj, key);
	if (json_is_null(*v))
		*v = NULL;
	if (!*v && required)
		return wp_error_set(err, EINVAL, "missing `%s`", key);
	return 0;
}

int json_get_string(const json_t *obj, const char *key, bool required, const char **out, struct wp_error *err)
{
	const char *v = NULL;
	size_t len = 0;
	int r = json_get_bytes(obj, key, required, &v, &len, err);

	if (r < 0 || !v)
		return r;
	if (strlen(v) != len)
		return wp_error_set(err, EINVAL, "`%s` must not contain a NUL byte (\\u0000)", key);
	*out = v;
	return 0;
}

int json_get_bytes(const json_t *obj, const char *key, bool required, const char **out, size_t *len,
		   struct wp_error *err)
{
	json_t *v;
	int r = json_field(obj, key, required, &v, err);

	if (r < 0 || !v)
		return r;
	if (!json_is_string(v))
		return wp_error_set(err, EINVAL, "`%s` must be a string, not %s", key, json_type_name(v));
	*out = json_string_value(v);
	if (len)
		*len = json_string_length(v);
	return 0;
}

json_t *json_parse_reply(const char *buf, size_t len)
{
	return buf ? json_loadb(buf, len, JSON_ALLOW_NUL, NULL) : NULL;
}

int json_get_uint(const json_t *obj, const char *key, bool required, uint64_t min, uint64_t max, uint64_t *out,
		  struct wp_error *err)
{
	json_int_t n;
	json_t *v;
	int r = json_field(obj, key, required, &v, err);

	if (r < 0 || !v)
		return r;
	n = json_is_integer(v) ? json_integer_value(v) : -1;
	if (!json_is_integer(v) || n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return wp_error_set(err, EINVAL, "`%s` must be an integer between %" PRIu64 " and %" PRIu64, key, min,
				    max);
	*out = (uint64_t)n;
	return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool required, bool *out, struct wp_error *err)
{
	json_t *v;
	int r = json_field(obj, key, required, &v, err);

	if (r < 0 || !v)
		return r;
	if (!json_is_boolean(v))
		return wp_error_set(err, EINVAL, "`%s` must be true or false, not %s", key, json_type_name(v));
	*out = json_is_true(v);
	return 0;
}

int json_get_array(const json_t *obj, const char *key, bool required, json_t **out, struct wp_error *err)
{
	json_t *v;
	int r = json_field(obj, key, required, &v, err);

	if (r < 0 || !v)
		return r;
	if (!json_is_array(v))
		return wp_error_set(err, EINVAL, "`%s` must be an array, not %s", key, json_type_name(v));
	*out = v;
	return 0;
}

int json_get_object(const json_t *obj, const char *key, bool required, json_t **out, struct wp_error *err)
{
	json_t *v;
	int r = json_field(obj, key, required, &v, err);

	if (r < 0 || !v)
		return r;
	if (!json_is_object(v))
		return wp_error_set(err, EINVAL, "`%s` must be an object, not %s", key, json_type_name(v));
	*out = v;
	return 0;
}

int json_check_keys(const json_t *obj, const char *const *allowed, struct wp_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach ((json_t *)obj, key, v) {
		const char *const *a;
		for (a = allowed; *a && strcmp(*a, key) != 0; a++)
			;
		if (!*a)
			return wp_error_set(err, EINVAL, "unknown field `%.100s`", key);
	}
	return 0;
}
