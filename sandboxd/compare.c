/* compare.c — is a program's output the expected one (see compare.h)?
 *
 * Outputs are byte buffers with a length: they may hold NUL bytes and run to
 * megabytes, so every mode walks both buffers once, with memchr/memcmp and
 * no copies, except COMPARE_FLOAT, which copies a token that may be a number
 * once into a scratch buffer because strtod wants a terminated string. */
#include "compare.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

static const char *const mode_names[] = {
    [COMPARE_TRAILING] = "trailing", [COMPARE_EXACT] = "exact",	    [COMPARE_TOKENS] = "tokens",
    [COMPARE_FLOAT] = "float",	     [COMPARE_CHECKER] = "checker",
};

void compare_spec_default(struct compare_spec *c)
{
	*c = (struct compare_spec){.mode = COMPARE_TRAILING, .abs_tol = 1e-6, .rel_tol = 1e-6};
}

const char *compare_mode_name(enum compare_mode m)
{
	if ((unsigned)m >= ARRAY_SIZE(mode_names))
		return "unknown";
	return mode_names[m];
}

static int parse_tolerance(const json_t *obj, const char *key, double *out, struct wp_error *err)
{
	json_t *v = json_object_get(obj, key);
	double d;

	if (!v)
		return 0;
	if (!json_is_number(v))
		return wp_error_set(err, EINVAL, "compare.%s: must be a number", key);
	d = json_number_value(v);
	if (!isfinite(d) || d < 0)
		return wp_error_set(err, EINVAL, "compare.%s: %g must be finite and >= 0", key, d);
	*out = d;
	return 0;
}

int compare_spec_from_json(struct compare_spec *c, const json_t *obj, struct wp_error *err)
{
	struct compare_spec next;
	const char *key;
	json_t *v;
	int r;

	compare_spec_default(&next);
	if (obj) {
		if (!json_is_object(obj))
			return wp_error_set(err, EINVAL, "compare: must be an object");
		json_object_foreach ((json_t *)obj, key, v) {
			if (strcmp(key, "mode") && strcmp(key, "abs_tol") && strcmp(key, "rel_tol"))
				return wp_error_set(err, EINVAL, "compare: unknown field `%s`", key);
		}
		v = json_object_get(obj, "mode");
		if (v) {
			const char *name = json_string_value(v);
			size_t i;

			if (!name)
				return wp_error_set(err, EINVAL, "compare.mode: must be a string");
			for (i = 0; i < ARRAY_SIZE(mode_names); i++)
				if (strcmp(name, mode_names[i]) == 0)
					break;
			if (i == ARRAY_SIZE(mode_names))
				return wp_error_set(
				    err, EINVAL,
				    "compare.mode: `%s` is not one of trailing, exact, tokens, float, checker", name);
			next.mode = (enum compare_mode)i;
		}
		if ((r = parse_tolerance(obj, "abs_tol", &next.abs_tol, err)) < 0)
			return r;
		if ((r = parse_tolerance(obj, "rel_tol", &next.rel_tol, err)) < 0)
			return r;
	}
	*c = next;
	return 0;
}

/* A span of one buffer; never NUL-terminated. */
struct span {
	const char *p;
	size_t len;
};

static bool span_eq(struct span a, struct span b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool is_line_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Same set as isspace() in the C locale; a NUL byte is not white space, so
 * "1\0" is not "1". */
static bool is_token_sep(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Drop the buffer's trailing blanks and newlines: that is every trailing
 * blank line and the trailing blanks of the last line at once. */
static size_t trailing_trimmed_len(const char *s, size_t len)
{
	while (len && (is_line_blank(s[len - 1]) || s[len - 1] == '\n'))
		len--;
	return len;
}

/* Take the next line of [*p, end), without its '\n' and trailing blanks. */
static struct span next_line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	struct span line = {*p, (size_t)((nl ? nl : end) - *p)};

	*p = nl ? nl + 1 : end;
	while (line.len && is_line_blank(line.p[line.len - 1]))
		line.len--;
	return line;
}

static bool compare_trailing(const char *a, size_t alen, const char *b, size_t blen)
{
	/* With the whole buffer trimmed first, the last line has no '\n': a
	 * cursor reaching the end means no line is left, and "3\n\n4" keeps
	 * its empty middle line. */
	const char *ea = a + trailing_trimmed_len(a, alen);
	const char *eb = b + trailing_trimmed_len(b, blen);

	while (a < ea && b < eb) {
		if (!span_eq(next_line(&a, ea), next_line(&b, eb)))
			return false;
	}
	return a >= ea && b >= eb;
}

/* Next whitespace-separated token of [*p, end); len 0 when none is left. */
static struct span next_token(const char **p, const char *end)
{
	const char *s = *p;
	struct span t;

	while (s < end && is_token_sep(*s))
		s++;
	t.p = s;
	while (s < end && !is_token_sep(*s))
		s++;
	t.len = (size_t)(s - t.p);
	*p = s;
	return t;
}

/* Scratch space for strtod; grows geometrically, so copying every token once
 * stays linear in the output. */
struct scratch {
	char small[128];
	char *heap;
	size_t cap;
};

static char *scratch_copy(struct scratch *s, struct span t)
{
	char *buf = s->small;

	if (t.len >= sizeof(s->small)) {
		if (t.len >= s->cap) {
			size_t cap = s->cap ? s->cap : 2 * sizeof(s->small);
			char *n;

			while (cap <= t.len)
				cap *= 2;
			n = realloc(s->heap, cap);
			if (!n)
				return NULL;
			s->heap = n;
			s->cap = cap;
		}
		buf = s->heap;
	}
	memcpy(buf, t.p, t.len);
	buf[t.len] = '\0';
	return buf;
}

static bool may_be_number(struct span t)
{
	char c = t.p[0];

	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.';
}

/* The whole token is a finite double (strtod: decimal or hex, in the C
 * locale, as sandboxd never calls setlocale). NaN and infinities are not
 * numbers here: they compare as strings, so "nan" matches only "nan". */
static bool token_number(struct scratch *s, struct span t, double *out)
{
	char *buf, *end;

	if (!may_be_number(t) || !(buf = scratch_copy(s, t)))
		return false;
	/* A NUL inside the token stops strtod early and fails the test below. */
	*out = strtod(buf, &end);
	return end == buf + t.len && isfinite(*out);
}

static bool float_eq(const struct compare_spec *c, struct scratch *s, struct span out, struct span exp)
{
	double a, b, diff;

	if (span_eq(out, exp))
		return true;
	if (!token_number(s, out, &a) || !token_number(s, exp, &b))
		return false;
	diff = fabs(a - b);
	return diff <= c->abs_tol || diff <= c->rel_tol * fabs(b);
}

static bool compare_tokens(const struct compare_spec *c, const char *a, size_t alen, const char *b, size_t blen)
{
	const char *ea = a + alen, *eb = b + blen;
	struct scratch s = {.heap = NULL, .cap = 0};
	bool eq = true;

	for (;;) {
		struct span ta = next_token(&a, ea), tb = next_token(&b, eb);

		if (!ta.len || !tb.len) {
			eq = !ta.len && !tb.len;
			break;
		}
		if (c->mode == COMPARE_FLOAT ? !float_eq(c, &s, ta, tb) : !span_eq(ta, tb)) {
			eq = false;
			break;
		}
	}
	free(s.heap);
	return eq;
}

bool compare_output(const struct compare_spec *c, const char *out, size_t out_len, const char *exp, size_t exp_len)
{
	/* memchr/memcmp must not see NULL, even with a length of 0. */
	if (!out) {
		out = "";
		out_len = 0;
	}
	if (!exp) {
		exp = "";
		exp_len = 0;
	}
	switch (c->mode) {
	case COMPARE_EXACT: return out_len == exp_len && memcmp(out, exp, out_len) == 0;
	case COMPARE_TRAILING: return compare_trailing(out, out_len, exp, exp_len);
	case COMPARE_TOKENS:
	case COMPARE_FLOAT: return compare_tokens(c, out, out_len, exp, exp_len);
	case COMPARE_CHECKER: break;
	}
	/* A checker decides elsewhere (run.c); reaching here is a caller bug. */
	return false;
}
