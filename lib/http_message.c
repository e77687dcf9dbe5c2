/* http_message.c — see http_message.h. http-parser calls us back with pieces
 * of the request line, headers and body, possibly split across reads; we
 * append them to the request under construction and check the bounds as the
 * bytes arrive, so an oversized request is refused before it is stored. */
#include "http_message.h"
#include "cleanup.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BODY_PREALLOC (64 * 1024)

enum { H_NONE, H_FIELD, H_VALUE };

const char *http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	default:
		return status < 200   ? "Informational"
		       : status < 300 ? "Success"
		       : status < 400 ? "Redirection"
		       : status < 500 ? "Client Error"
				      : "Server Error";
	}
}

bool http_status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

void http_request_free(struct http_request *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->raw_path);
	free(r->query);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
	free(r);
}

/* Percent-decode s[0..n) into a new string; '+' is a space when `plus`.
 * NULL with errno EINVAL on a bad escape or a decoded NUL. */
static char *percent_decode(const char *s, size_t n, bool plus)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			char hex[3] = {0};
			if (n - i < 3 || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
				goto bad;
			memcpy(hex, s + i + 1, 2);
			*o = (char)strtoul(hex, NULL, 16);
			if (*o++ == '\0')
				goto bad;
			i += 2;
		} else {
			*o++ = plus && s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	errno = EINVAL;
	return NULL;
}

/* ---- http-parser callbacks ---- */

static int refuse(struct http_parse *p, int status)
{
	p->err_status = status;
	return -1;
}

static int append(char **s, size_t *len, const char *at, size_t n)
{
	char *nb = realloc(*s, *len + n + 1);

	if (!nb)
		return -1;
	memcpy(nb + *len, at, n);
	*len += n;
	nb[*len] = '\0';
	*s = nb;
	return 0;
}

static int count_header_bytes(struct http_parse *p, size_t n)
{
	p->hdr_bytes += n;
	return p->hdr_bytes > p->lim->max_header_bytes ? refuse(p, 431) : 0;
}

static int on_message_begin(http_parser *hp)
{
	struct http_parse *p = hp->data;

	http_request_free(p->cur);
	free(p->url);
	p->url = NULL;
	p->url_len = p->hdr_bytes = p->headers_cap = p->body_cap = 0;
	p->hstate = H_NONE;
	p->cur = calloc(1, sizeof(*p->cur));
	return p->cur ? 0 : refuse(p, 500);
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;

	if (count_header_bytes(p, n) < 0)
		return -1;
	return append(&p->url, &p->url_len, at, n) < 0 ? refuse(p, 500) : 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;
	struct http_request *r = p->cur;
	struct http_header *h;
	size_t old;

	/* 4 for ": " and CRLF, so the bound is close to the bytes on the wire */
	if (count_header_bytes(p, n + (p->hstate != H_FIELD ? 4 : 0)) < 0)
		return -1;
	if (p->hstate != H_FIELD) {
		if (r->n_headers >= p->lim->max_headers)
			return refuse(p, 431);
		if (r->n_headers == p->headers_cap) {
			size_t cap = p->headers_cap ? 2 * p->headers_cap : 16;
			struct http_header *nh = realloc(r->headers, cap * sizeof(*nh));
			if (!nh)
				return refuse(p, 500);
			r->headers = nh;
			p->headers_cap = cap;
		}
		r->headers[r->n_headers++] = (struct http_header){NULL, NULL};
		p->name_len = p->value_len = 0;
		p->hstate = H_FIELD;
	}
	h = &r->headers[r->n_headers - 1];
	old = p->name_len;
	if (append(&h->name, &p->name_len, at, n) < 0)
		return refuse(p, 500);
	for (size_t i = old; i < p->name_len; i++)
		h->name[i] = (char)tolower((unsigned char)h->name[i]);
	return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;
	struct http_request *r = p->cur;

	if (count_header_bytes(p, n) < 0)
		return -1;
	p->hstate = H_VALUE;
	return append(&r->headers[r->n_headers - 1].value, &p->value_len, at, n) < 0 ? refuse(p, 500) : 0;
}

static int on_headers_complete(http_parser *hp)
{
	struct http_parse *p = hp->data;
	bool chunked = hp->flags & F_CHUNKED;
	bool has_length = !chunked && hp->content_length != ULLONG_MAX;
	const char *expect;

	if (has_length && hp->content_length > p->lim->max_body_bytes)
		return refuse(p, 413);
	if (has_length && hp->content_length > 0) {
		/* a claimed length is not a reason to commit memory: grow past 64 KiB */
		p->body_cap = hp->content_length < BODY_PREALLOC ? (size_t)hp->content_length + 1 : BODY_PREALLOC;
		if (!(p->cur->body = malloc(p->body_cap)))
			return refuse(p, 500);
	}
	/* libcurl waits a second for "100 Continue" before sending a large body */
	expect = http_request_header(p->cur, "expect");
	if (expect && strcasecmp(expect, "100-continue") == 0 && hp->http_major == 1 && hp->http_minor >= 1 &&
	    (chunked || (has_length && hp->content_length > 0)))
		p->send_continue = true;
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;
	struct http_request *r = p->cur;
	size_t max = p->lim->max_body_bytes;

	if (n > max || r->body_len > max - n)
		return refuse(p, 413);
	if (r->body_len + n + 1 > p->body_cap) {
		size_t cap = p->body_cap ? 2 * p->body_cap : 4096;
		char *nb;
		if (cap < r->body_len + n + 1)
			cap = r->body_len + n + 1;
		if (cap > max + 1)
			cap = max + 1;
		if (!(nb = realloc(r->body, cap)))
			return refuse(p, 500);
		r->body = nb;
		p->body_cap = cap;
	}
	memcpy(r->body + r->body_len, at, n);
	r->body_len += n;
	return 0;
}

static int request_set_target(struct http_request *r, const char *url, size_t len, bool connect)
{
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (!url || http_parser_parse_url(url, len, connect, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
		return -EINVAL;
	r->raw_path = strndup(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
	if (u.field_set & (1 << UF_QUERY))
		r->query = strndup(url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
	else
		r->query = strdup("");
	if (!r->raw_path || !r->query)
		return -ENOMEM;
	r->path = percent_decode(r->raw_path, strlen(r->raw_path), false);
	return r->path ? 0 : -errno;
}

static int on_message_complete(http_parser *hp)
{
	struct http_parse *p = hp->data;
	struct http_request *r = p->cur;
	int ret;

	for (size_t i = 0; i < r->n_headers; i++) {
		struct http_header *h = &r->headers[i];
		size_t n;
		if (!h->value && !(h->value = strdup("")))
			return refuse(p, 500);
		n = strlen(h->value);
		while (n && (h->value[n - 1] == ' ' || h->value[n - 1] == '\t'))
			h->value[--n] = '\0';
	}
	if (!r->body && !(r->body = calloc(1, 1)))
		return refuse(p, 500);
	r->body[r->body_len] = '\0';
	ret = request_set_target(r, p->url, p->url_len, hp->method == HTTP_CONNECT);
	if (ret < 0)
		return refuse(p, ret == -ENOMEM ? 500 : 400);
	r->method = http_method_str(hp->method);
	p->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
	p->head = hp->method == HTTP_HEAD;
	p->http10 = hp->http_major == 1 && hp->http_minor == 0;
	p->done = steal_pointer(&p->cur);
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_parse_init(struct http_parse *p, const struct http_limits *lim)
{
	*p = (struct http_parse){.lim = lim};
	http_parser_init(&p->parser, HTTP_REQUEST);
	p->parser.data = p;
}

void http_parse_free(struct http_parse *p)
{
	http_request_free(p->cur);
	http_request_free(p->done);
	free(p->url);
	p->cur = p->done = NULL;
	p->url = NULL;
}

size_t http_parse_feed(struct http_parse *p, const char *buf, size_t len, int *status, char *msg, size_t msg_size)
{
	enum http_errno e;
	size_t n;

	*status = 0;
	if (HTTP_PARSER_ERRNO(&p->parser) == HPE_PAUSED)
		http_parser_pause(&p->parser, 0);
	n = http_parser_execute(&p->parser, &parser_settings, buf, len);
	e = HTTP_PARSER_ERRNO(&p->parser);
	if ((e == HPE_OK && n == len) || (e == HPE_PAUSED && p->done))
		return n;
	*status = p->err_status ? p->err_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
	switch (*status) {
	case 413: snprintf(msg, msg_size, "request body larger than %zu bytes", p->lim->max_body_bytes); break;
	case 431:
		snprintf(msg, msg_size, "request headers exceed %zu headers or %zu bytes", p->lim->max_headers,
			 p->lim->max_header_bytes);
		break;
	case 500: snprintf(msg, msg_size, "out of memory"); break;
	default:
		snprintf(msg, msg_size, "malformed request: %s",
			 p->err_status ? "bad request target"
			 : e == HPE_OK ? "unexpected data"
				       : http_errno_description(e));
	}
	return n;
}

/* ---- look-ups ---- */

const char *http_request_header(const struct http_request *req, const char *lower_name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (req->headers[i].name && strcmp(req->headers[i].name, lower_name) == 0)
			return req->headers[i].value;
	return NULL;
}

char *http_request_query(const struct http_request *req, const char *name)
{
	const char *q = req->query;

	while (q && *q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		cleanup_free char *key = percent_decode(q, klen, true);

		if (key && strcmp(key, name) == 0)
			return eq ? percent_decode(eq + 1, len - klen - 1, true) : strdup("");
		q += len;
		if (*q == '&')
			q++;
	}
	return NULL;
}

/* ---- answers ---- */

char *http_response_head(int status, const char *content_type, size_t len, const char *connection, const char *headers,
			 double now, size_t *n)
{
	char date[64], length[48] = "", *head;
	time_t t = (time_t)now;
	const char *end = "";
	struct tm tm;
	int r;

	if (headers && *headers) {
		size_t hl = strlen(headers);
		if (hl < 2 || strcmp(headers + hl - 2, "\r\n") != 0)
			end = "\r\n";
	}
	if (http_status_has_body(status))
		snprintf(length, sizeof(length), "Content-Length: %zu\r\n", len);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	r = asprintf(&head, "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%s%s%s%s%s\r\n", status, http_status_text(status), date,
		     content_type ? "Content-Type: " : "", content_type ? content_type : "", content_type ? "\r\n" : "",
		     length, connection ? connection : "", headers ? headers : "", end);
	if (r < 0)
		return NULL;
	*n = (size_t)r;
	return head;
}

char *http_error_body(const char *code, const char *message, size_t *len)
{
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	char *s;

	if (!j) { /* not UTF-8: keep the ASCII */
		cleanup_free char *ascii = strdup(message);
		for (char *c = ascii; c && *c; c++)
			if ((unsigned char)*c >= 0x80)
				*c = '?';
		j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", ascii ? ascii : "");
	}
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	*len = s ? strlen(s) : 0;
	return s;
}
