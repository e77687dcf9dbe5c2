/* config.c — see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

static int parse_scaled(const char *s, const char *const *units, const uint64_t *mult, size_t n_units, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	while (isspace((unsigned char)*end))
		end++;
	size_t len = strlen(end);
	while (len && isspace((unsigned char)end[len - 1]))
		len--;
	for (size_t i = 0; i < n_units; i++) {
		if (strlen(units[i]) == len && strncasecmp(end, units[i], len) == 0) {
			if (mult[i] && v > UINT64_MAX / mult[i])
				return -ERANGE;
			*out = v * mult[i];
			return 0;
		}
	}
	return -EINVAL;
}

int config_parse_size(const char *s, uint64_t *out)
{
	static const char *const units[] = {"", "b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib"};
	static const uint64_t mult[] = {1,	    1,		1ull << 10, 1ull << 10, 1ull << 10, 1ull << 20,
					1ull << 20, 1ull << 20, 1ull << 30, 1ull << 30, 1ull << 30};
	return parse_scaled(s, units, mult, sizeof(mult) / sizeof(mult[0]), out);
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
	static const char *const units[] = {"", "ms", "s", "m", "min", "h"};
	static const uint64_t mult[] = {1000, 1, 1000, 60000, 60000, 3600000};
	return parse_scaled(s, units, mult, sizeof(mult) / sizeof(mult[0]), out);
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "yes", "true", "on"};
	static const char *const no[] = {"0", "no", "false", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return errno ? -ERANGE : -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

void config_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

int config_split_argv(const char *s, char ***argv_out)
{
	size_t n = 0, cap = 8;
	char **argv = calloc(cap, sizeof(*argv));
	size_t slen = strlen(s);
	char *word = malloc(slen + 1);

	if (!argv || !word)
		goto nomem;
	while (*s) {
		size_t w = 0;
		bool any = false;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		while (*s && !isspace((unsigned char)*s)) {
			if (*s == '\'' || *s == '"') {
				char q = *s++;
				while (*s && *s != q)
					word[w++] = *s++;
				if (*s != q) {
					free(word);
					config_argv_free(argv);
					return -EINVAL;
				}
				s++;
			} else {
				word[w++] = *s++;
			}
			any = true;
		}
		if (!any)
			continue;
		word[w] = '\0';
		if (n + 2 > cap) {
			char **na = realloc(argv, (cap *= 2) * sizeof(*argv));
			if (!na)
				goto nomem;
			argv = na;
		}
		if (!(argv[n++] = strdup(word)))
			goto nomem;
		argv[n] = NULL;
	}
	free(word);
	if (n == 0) {
		config_argv_free(argv);
		return -EINVAL;
	}
	*argv_out = argv;
	return 0;
nomem:
	free(word);
	config_argv_free(argv);
	return -ENOMEM;
}

int config_set_str(char **dst, const char *v)
{
	char *n = strdup(v);
	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

struct ini_ctx {
	config_key_fn fn;
	void *ctx;
	struct wp_error *err;
	const char *path;
	bool failed;
};

static int config_ini_cb(void *user, const char *section, const char *key, const char *value)
{
	struct ini_ctx *c = user;
	struct wp_error mine = {0};
	int r;

	if (c->failed)
		return 0;
	r = c->fn(c->ctx, section, key, value, &mine);
	if (r == 0)
		return 1;
	c->failed = true;
	if (mine.msg[0])
		wp_error_set(c->err, EINVAL, "%s: %s", c->path, mine.msg);
	else if (r == -ENOENT)
		wp_error_set(c->err, EINVAL, "%s: unknown key `%s` in [%s]", c->path, key, section);
	else
		wp_error_set(c->err, EINVAL, "%s: [%s] %s: bad value `%s`", c->path, section, key, value);
	return 0;
}

int config_load_ini(const char *path, config_key_fn fn, void *ctx, struct wp_error *err)
{
	struct ini_ctx c = {.fn = fn, .ctx = ctx, .err = err, .path = path};
	int r = ini_parse(path, config_ini_cb, &c);

	if (r < 0)
		return wp_error_set(err, ENOENT, "cannot open config `%s`", path);
	if (c.failed)
		return -EINVAL;
	if (r > 0)
		return wp_error_set(err, EINVAL, "%s:%d: syntax error", path, r);
	return 0;
}
