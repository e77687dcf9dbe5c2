/* multipart.c — see multipart.h.
 *
 * The body is walked delimiter to delimiter: "--boundary" at the very start
 * or after CRLF, then either "--" (the end) or optional blanks and CRLF, the
 * part's header lines, an empty line, and the content up to the next
 * CRLF "--boundary". Every step checks it stays inside the body; anything
 * that does not fit the grammar is an error naming what was wrong, never a
 * guess. Header lines are CRLF-terminated, unfolded, without control bytes. */
#include "hex.h"
#include "multipart.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"

#define MAX_BOUNDARY 70
#define MAX_PARAMS   8

struct param {
	char name[32];
	char *value;
};

struct params {
	char type[64];
	struct param p[MAX_PARAMS];
	size_t n;
};

static void params_free(struct params *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->p[i].value);
	ps->n = 0;
}

static const char *param_get(const struct params *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcasecmp(ps->p[i].name, name) == 0)
			return ps->p[i].value;
	return NULL;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* `type *( ";" name "=" ( token | quoted-string ) )` of a header value of
 * n bytes (no NUL inside: checked by the caller). A trailing ";" is
 * tolerated; a parameter named twice is not. */
static int params_parse(const char *s, size_t n, struct params *ps, struct wp_error *err)
{
	size_t i = 0, t = 0;

	memset(ps, 0, sizeof(*ps));
	while (i < n && is_ows(s[i]))
		i++;
	while (i < n && s[i] != ';' && !is_ows(s[i])) {
		if (t + 1 >= sizeof(ps->type))
			return wp_error_set(err, EINVAL, "header value type too long");
		ps->type[t++] = s[i++];
	}
	ps->type[t] = '\0';
	for (;;) {
		while (i < n && is_ows(s[i]))
			i++;
		if (i == n)
			return 0;
		if (s[i] != ';')
			return wp_error_set(err, EINVAL, "expected `;` in header value at byte %zu", i);
		i++;
		while (i < n && is_ows(s[i]))
			i++;
		if (i == n)
			return 0;
		size_t k = 0;
		char name[32];
		while (i < n && is_token_char((unsigned char)s[i]) && s[i] != '=') {
			if (k + 1 >= sizeof(name))
				return wp_error_set(err, EINVAL, "header parameter name too long");
			name[k++] = s[i++];
		}
		name[k] = '\0';
		while (i < n && is_ows(s[i]))
			i++;
		if (k == 0 || i == n || s[i] != '=')
			return wp_error_set(err, EINVAL, "malformed header parameter at byte %zu", i);
		i++;
		while (i < n && is_ows(s[i]))
			i++;
		cleanup_free char *v = malloc(n - i + 1);
		size_t vl = 0;
		if (!v)
			return wp_error_set(err, ENOMEM, "out of memory");
		if (i < n && s[i] == '"') {
			for (i++;; i++) {
				if (i == n)
					return wp_error_set(err, EINVAL, "unterminated quoted string in parameter `%s`",
							    name);
				if (s[i] == '"')
					break;
				if (s[i] == '\\' && i + 1 < n)
					i++;
				v[vl++] = s[i];
			}
			i++;
		} else {
			while (i < n && s[i] != ';')
				v[vl++] = s[i++];
			while (vl && is_ows(v[vl - 1]))
				vl--;
		}
		v[vl] = '\0';
		if (param_get(ps, name))
			return wp_error_set(err, EINVAL, "header parameter `%s` given twice", name);
		if (ps->n == MAX_PARAMS)
			return wp_error_set(err, EINVAL, "more than %d header parameters", MAX_PARAMS);
		memcpy(ps->p[ps->n].name, name, k + 1);
		ps->p[ps->n++].value = steal_pointer(&v);
	}
}

static bool boundary_valid(const char *b)
{
	size_t n = strlen(b);
	if (n < 1 || n > MAX_BOUNDARY || b[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      strchr("'()+_,-./:=? ", c)))
			return false;
	}
	return true;
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return true;
	return false;
}

int multipart_boundary(const char *content_type, char *out, size_t out_size, struct wp_error *err)
{
	struct params ps;
	int r;

	if (!content_type)
		return wp_error_set(err, EINVAL, "no Content-Type: a multipart/form-data body is required");
	if (has_control(content_type, strlen(content_type)))
		return wp_error_set(err, EINVAL, "control character in Content-Type");
	if ((r = params_parse(content_type, strlen(content_type), &ps, err)) < 0) {
		params_free(&ps);
		return r;
	}
	const char *b = param_get(&ps, "boundary");
	if (strcasecmp(ps.type, "multipart/form-data") != 0)
		r = wp_error_set(err, EINVAL, "Content-Type `%.64s` is not multipart/form-data", ps.type);
	else if (!b)
		r = wp_error_set(err, EINVAL, "multipart/form-data without a boundary parameter");
	else if (!boundary_valid(b) || strlen(b) + 1 > out_size)
		r = wp_error_set(err, EINVAL, "invalid multipart boundary (1 to 70 characters of RFC 2046)");
	else
		memcpy(out, b, strlen(b) + 1);
	params_free(&ps);
	return r;
}

/* RFC 5987 ext-value `utf-8'lang'pct-encoded` → a new string; NULL when the
 * charset is not UTF-8 (or ASCII) or the encoding is malformed or has NUL. */
static char *ext_value_decode(const char *v)
{
	const char *q1 = strchr(v, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
	if (!q2 ||
	    !((q1 - v == 5 && strncasecmp(v, "utf-8", 5) == 0) || (q1 - v == 8 && strncasecmp(v, "us-ascii", 8) == 0)))
		return NULL;
	const char *s = q2 + 1;
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		int hi = hex_digit(s[1]), lo = hi >= 0 ? hex_digit(s[2]) : -1;
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*o = '\0';
	return out;
}

struct part_headers {
	bool form_data;
	char *name;	/* malloc'd */
	char *filename; /* malloc'd */
	char content_type[128];
};

static void part_headers_free(struct part_headers *h)
{
	free(h->name);
	free(h->filename);
	memset(h, 0, sizeof(*h));
}

static int disposition(const char *v, size_t n, struct part_headers *h, struct wp_error *err)
{
	struct params ps;
	int r = params_parse(v, n, &ps, err);

	if (r == 0 && strcasecmp(ps.type, "form-data") != 0)
		r = wp_error_set(err, EINVAL, "Content-Disposition `%.32s` is not form-data", ps.type);
	if (r == 0 && h->form_data)
		r = wp_error_set(err, EINVAL, "a part has two Content-Disposition headers");
	if (r == 0) {
		const char *name = param_get(&ps, "name"), *fn = param_get(&ps, "filename");
		const char *fnx = param_get(&ps, "filename*");
		h->form_data = true;
		if (!name)
			r = wp_error_set(err, EINVAL, "a form-data part without a name");
		else if (!(h->name = strdup(name)))
			r = wp_error_set(err, ENOMEM, "out of memory");
		if (r == 0 && fnx && !(h->filename = ext_value_decode(fnx)) && !fn)
			r = wp_error_set(err, EINVAL, "filename* is not valid UTF-8 percent-encoding (RFC 5987)");
		if (r == 0 && !h->filename && fn && !(h->filename = strdup(fn)))
			r = wp_error_set(err, ENOMEM, "out of memory");
	}
	params_free(&ps);
	return r;
}

/* Header lines from *pos up to and including the empty line. */
static int headers_parse(const char *body, size_t len, size_t *pos, struct part_headers *h, struct wp_error *err)
{
	size_t start = *pos, i = *pos;

	for (;;) {
		size_t avail = len - i;
		const char *eol = memmem(body + i, avail, "\r\n", 2);
		if (!eol)
			return wp_error_set(err, EINVAL, "truncated part headers");
		size_t n = (size_t)(eol - (body + i));
		if ((size_t)(eol + 2 - (body + start)) > MULTIPART_MAX_HEADER_BYTES)
			return wp_error_set(err, EINVAL, "part headers longer than %d bytes",
					    MULTIPART_MAX_HEADER_BYTES);
		const char *line = body + i;
		i += n + 2;
		if (n == 0)
			break;
		if (has_control(line, n) || memchr(line, '\0', n))
			return wp_error_set(err, EINVAL, "control character in a part header");
		if (is_ows(line[0]))
			return wp_error_set(err, EINVAL, "folded part header lines are not accepted");
		const char *colon = memchr(line, ':', n);
		if (!colon || colon == line)
			return wp_error_set(err, EINVAL, "malformed part header line");
		size_t nl = (size_t)(colon - line);
		const char *v = colon + 1;
		size_t vn = n - nl - 1;
		while (vn && is_ows(*v))
			v++, vn--;
		while (vn && is_ows(v[vn - 1]))
			vn--;
		if (nl == 19 && strncasecmp(line, "content-disposition", nl) == 0) {
			int r = disposition(v, vn, h, err);
			if (r < 0)
				return r;
		} else if (nl == 12 && strncasecmp(line, "content-type", nl) == 0) {
			size_t k = vn < sizeof(h->content_type) - 1 ? vn : sizeof(h->content_type) - 1;
			memcpy(h->content_type, v, k);
			h->content_type[k] = '\0';
		} else if (nl == 25 && strncasecmp(line, "content-transfer-encoding", nl) == 0) {
			if (!((vn == 6 && strncasecmp(v, "binary", 6) == 0) ||
			      (vn == 4 && strncasecmp(v, "8bit", 4) == 0) ||
			      (vn == 4 && strncasecmp(v, "7bit", 4) == 0)))
				return wp_error_set(err, EINVAL, "Content-Transfer-Encoding `%.*s` is not supported",
						    (int)(vn > 32 ? 32 : vn), v);
		}
	}
	if (!h->form_data)
		return wp_error_set(err, EINVAL, "a part without Content-Disposition: form-data");
	*pos = i;
	return 0;
}

int multipart_find(const char *content_type, const char *body, size_t len, const char *field, size_t max_size,
		   struct multipart_part *out, struct wp_error *err)
{
	char boundary[MAX_BOUNDARY + 1], delim[MAX_BOUNDARY + 5];
	size_t dlen, pos, parts = 0;
	bool found = false;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = multipart_boundary(content_type, boundary, sizeof(boundary), err)) < 0)
		return r;
	/* delim is CRLF "--" boundary; the first may come without the CRLF */
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	if (!body)
		len = 0;
	if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
		pos = 0;
	} else {
		const char *f = len ? memmem(body, len, delim, dlen) : NULL;
		if (!f)
			return wp_error_set(err, EINVAL, "the body has no multipart boundary `%s`", boundary);
		pos = (size_t)(f - body) + 2;
	}
	for (;;) {
		size_t i = pos + dlen - 2;
		if (len - i >= 2 && body[i] == '-' && body[i + 1] == '-')
			break; /* the close delimiter; an epilogue may follow */
		while (i < len && is_ows(body[i]) && i - pos < 256)
			i++;
		if (len - i < 2 || body[i] != '\r' || body[i + 1] != '\n') {
			r = wp_error_set(err, EINVAL, "malformed or truncated multipart body after a boundary");
			goto fail;
		}
		i += 2;
		if (++parts > MULTIPART_MAX_PARTS) {
			r = wp_error_set(err, EINVAL, "more than %d parts", MULTIPART_MAX_PARTS);
			goto fail;
		}
		struct part_headers h = {0};
		if ((r = headers_parse(body, len, &i, &h, err)) < 0) {
			part_headers_free(&h);
			goto fail;
		}
		const char *next = memmem(body + i, len - i, delim, dlen);
		if (!next) {
			part_headers_free(&h);
			r = wp_error_set(err, EINVAL, "truncated multipart body: no boundary after part %zu", parts);
			goto fail;
		}
		if (strcmp(h.name, field) == 0) {
			if (found) {
				part_headers_free(&h);
				r = wp_error_set(err, EINVAL, "the form has more than one `%s` part", field);
				goto fail;
			}
			found = true;
			out->data = body + i;
			out->len = (size_t)(next - (body + i));
			out->filename = steal_pointer(&h.filename);
			memcpy(out->content_type, h.content_type, sizeof(out->content_type));
		}
		part_headers_free(&h);
		pos = (size_t)(next - body) + 2;
	}
	if (!found)
		return wp_error_set(err, ENOENT, "the form has no `%s` part", field);
	if (out->len > max_size) {
		r = wp_error_set(err, EFBIG, "the `%s` part is %zu bytes, more than the limit of %zu", field, out->len,
				 max_size);
		goto fail;
	}
	return 0;
fail:
	multipart_part_free(out);
	return r;
}

void multipart_part_free(struct multipart_part *p)
{
	if (!p)
		return;
	free(p->filename);
	memset(p, 0, sizeof(*p));
}
