/* http_path.c — see http_path.h. */
#include "hex.h"
#include "http_path.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static char *segment_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
		int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = '\0';
	return out;
}

int http_path_split(const char *raw, struct http_path *out)
{
	const char *p = raw;
	out->n = 0;
	while (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (out->n == HTTP_PATH_MAX_SEGMENTS || !(out->seg[out->n] = segment_decode(p, len)))
			return -1;
		out->n++;
		p += len;
		if (*p == '/')
			p++;
	}
	return 0;
}

void http_path_free(struct http_path *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->seg[i]);
	p->n = 0;
}

bool http_path_is(const struct http_path *p, int i, const char *s)
{
	return i < p->n && strcmp(p->seg[i], s) == 0;
}
