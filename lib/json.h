/* json.h — jansson helpers for request handlers: parse a body within bounds
 * and read typed fields with messages a client can act on. Each returns 0,
 * or -EINVAL with err filled ("`memory_mb` must be an integer between 1 and
 * 4096"). An absent optional field (or one set to null) leaves *out as it
 * was, so callers preset the default. Returned strings and values are
 * borrowed from the object. */
#ifndef WARMPOOL_JSON_H
#define WARMPOOL_JSON_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A JSON object of at most max_depth nested objects/arrays (the top object is
 * depth 1), UTF-8 ("\u0000" allowed in strings), no duplicate keys. New reference, or NULL with err filled
 * (jansson's line and column included). */
json_t *json_parse_body(const char *buf, size_t len, size_t max_depth, struct wp_error *err);

/* A C string: refused when it holds a NUL byte ("\u0000"), which would cut
 * it short. */
int json_get_string(const json_t *obj, const char *key, bool required, const char **out, struct wp_error *err);
/* Bytes (stdin, expected output): NUL bytes allowed; *len (when not NULL)
 * is the length, *out stays NUL-terminated after it. */
int json_get_bytes(const json_t *obj, const char *key, bool required, const char **out, size_t *len,
		   struct wp_error *err);
/* Another daemon's answer (sandboxd's to poold): an object or array, NUL
 * bytes in strings kept (a program's output may hold them), `len` bytes of
 * buf (which need not be NUL-terminated). New reference, or NULL when buf is
 * NULL or not JSON. */
json_t *json_parse_reply(const char *buf, size_t len);
/* A JSON integer (not a real, not a bool) within [min, max]. */
int json_get_uint(const json_t *obj, const char *key, bool required, uint64_t min, uint64_t max, uint64_t *out,
		  struct wp_error *err);
int json_get_bool(const json_t *obj, const char *key, bool required, bool *out, struct wp_error *err);
int json_get_array(const json_t *obj, const char *key, bool required, json_t **out, struct wp_error *err);
int json_get_object(const json_t *obj, const char *key, bool required, json_t **out, struct wp_error *err);
/* Refuse keys not in `allowed` (NULL-terminated). */
int json_check_keys(const json_t *obj, const char *const *allowed, struct wp_error *err);

#endif
