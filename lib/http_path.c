/* http_path.c — see http_path.h. */
#include "hex.h"
#include "http_path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* 0 and the decoded segment in *out, or HTTP_PATH_MALFORMED (NULL also
 * when out of memory: refused as well, never half-routed). */
static int segment_decode(const char *s, size_t len, char **out)
{
	char *d = malloc(len + 1), *o = d;

	*out = NULL;
	if (!d)
		return HTTP_PATH_MALFORMED;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
		int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(d);
			return HTTP_PATH_MALFORMED;
		}
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = '\0';
	*out = d;
	return 0;
}

static bool is_dot_segment(const char *s)
{
	return strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

int http_path_split(const char *raw, struct http_path *out)
{
	const char *p = raw;
	int r;

	out->n = 0;
	if (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0)
			return HTTP_PATH_EMPTY_SEGMENT;
		if (out->n == HTTP_PATH_MAX_SEGMENTS)
			return HTTP_PATH_TOO_DEEP;
		r = segment_decode(p, len, &out->seg[out->n]);
		if (r < 0)
			return r;
		out->n++;
		/* decoded first: "%2e%2E" and ".%2e" are ".." as much as ".." */
		if (is_dot_segment(out->seg[out->n - 1]))
			return HTTP_PATH_DOT_SEGMENT;
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

const char *http_path_strerror(int err)
{
	switch (err) {
	case HTTP_PATH_DOT_SEGMENT:
		return "the path has a `.` or `..` segment (also percent-encoded, as %2e): name the resource "
		       "directly, without dot segments";
	case HTTP_PATH_EMPTY_SEGMENT: return "the path has an empty segment (`//`): remove the doubled slash";
	case HTTP_PATH_TOO_DEEP: return "the path has too many segments: no route is that deep";
	default: return "malformed path: a percent escape is not %XX with two hex digits, or decodes to NUL";
	}
}

const char *http_path_name_invalid(const char *name)
{
	size_t len = strlen(name);

	if (len < 1 || len > HTTP_PATH_NAME_MAX)
		return "file names are 1 to 255 bytes";
	if (is_dot_segment(name))
		return "`.` and `..` are not file names";
	if (strchr(name, '/'))
		return "file names are one path component (no `/`, also not as %2F): files live directly in "
		       "/mnt/data";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return "file names must not contain control characters";
	return NULL;
}

int http_path_encode(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			     c == '.' || c == '_' || c == '~';
		if (o + (plain ? 1 : 3) >= size) {
			if (size)
				out[0] = '\0';
			return -ENAMETOOLONG;
		}
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= size)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return 0;
}
