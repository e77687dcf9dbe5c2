/* warmpool.c — libwarmpool's handle and its calls to poold (docs/api.md).
 *
 * Theory of operation: one CURL easy handle per wp_client, reused for every
 * call so the connection stays alive between calls; it is reset before each
 * request, so no option of an earlier call leaks into the next. Every call
 * goes through call(): it sends, collects the answer, and turns whatever
 * went wrong into the handle's last error — kind, HTTP status, the server's
 * code and message, and one line for a human that names the server, so that
 * a caller only has to print wp_error_text(). The objects built from the
 * answers live in results.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, explicit_bzero */
#endif
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wp_internal.h"

#define CONNECT_TIMEOUT_S 5.0
#define TOTAL_TIMEOUT_S	  600.0
#define MAX_ANSWER	  (512u << 20) /* a run answer holds every test's output */
#define MAX_ERROR_BODY	  (64u << 10)

struct wp_client {
	struct wp_obj o; /* so that wp_free() takes it too */
	CURL *curl;
	char *url;			   /* without a trailing '/' */
	char *auth;			   /* "Authorization: Bearer …", NULL without a token */
	char *tls_ca, *tls_cert, *tls_key; /* HTTPS: PEM files, NULL: none */
	double connect_s, total_s;

	/* the last error */
	enum wp_err kind;
	int status;
	double retry_after;
	char code[64];
	char message[512];
	char text[1024];
	char curl_error[CURL_ERROR_SIZE];
};

/* What one call brought back. */
struct answer {
	CURL *curl;
	long status;
	char *body;
	size_t len, cap;
	FILE *sink; /* a 2xx body goes here instead (file downloads) */
	size_t sunk;
	bool sink_failed, too_big;
	double retry_after;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *wp_version(void)
{
	return WP_VERSION;
}

/* ---- the handle ------------------------------------------------------- */

struct wp_client *wp_client_new(const char *url, const char *token)
{
	struct wp_client *c;
	size_t len;

	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return NULL;
	if (!url)
		url = getenv("WARMPOOL_URL");
	if (!url || !*url)
		url = WP_DEFAULT_URL;
	if (!token)
		token = getenv("WARMPOOL_TOKEN");
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
		return NULL;
	if (token && strpbrk(token, "\r\n"))
		return NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->o.magic = WP_MAGIC;
	c->o.type = WP_OBJ_CLIENT;
	c->connect_s = CONNECT_TIMEOUT_S;
	c->total_s = TOTAL_TIMEOUT_S;
	if (!(c->url = strdup(url)) || !(c->curl = curl_easy_init()) ||
	    (token && *token && asprintf(&c->auth, "Authorization: Bearer %s", token) < 0)) {
		c->auth = NULL;
		wp_client_destroy(c);
		return NULL;
	}
	len = strlen(c->url);
	while (len > 0 && c->url[len - 1] == '/')
		c->url[--len] = '\0';
	if (wp_client_set_tls(c, getenv("WARMPOOL_CACERT"), getenv("WARMPOOL_CERT"), getenv("WARMPOOL_KEY")) < 0) {
		wp_client_destroy(c);
		return NULL;
	}
	return c;
}

static char *tls_dup(const char *s, bool *oom)
{
	char *d = s && *s ? strdup(s) : NULL;
	if (s && *s && !d)
		*oom = true;
	return d;
}

int wp_client_set_tls(struct wp_client *c, const char *ca_file, const char *cert_file, const char *key_file)
{
	bool oom = false;
	char *ca, *cert, *key;

	if (!c || (cert_file && *cert_file) != (key_file && *key_file))
		return -1;
	ca = tls_dup(ca_file, &oom);
	cert = tls_dup(cert_file, &oom);
	key = tls_dup(key_file, &oom);
	if (oom) {
		free(ca);
		free(cert);
		free(key);
		return -1;
	}
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	c->tls_ca = ca;
	c->tls_cert = cert;
	c->tls_key = key;
	return 0;
}

/* After curl_easy_reset: verification on (curl's default, said again), the
 * CA and client certificate of the handle. */
static void set_tls(struct wp_client *c)
{
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->tls_ca)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->tls_ca);
	if (c->tls_cert)
		curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->tls_cert);
	if (c->tls_key)
		curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->tls_key);
}

void wp_client_destroy(struct wp_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->url);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	if (c->auth) {
		explicit_bzero(c->auth, strlen(c->auth));
		free(c->auth);
	}
	c->o.magic = 0;
	free(c);
}

void wp_client_free(struct wp_client *c)
{
	wp_client_destroy(c);
}

int wp_client_set_timeout(struct wp_client *c, double connect_s, double total_s)
{
	if (!c || !(connect_s >= 0) || !(total_s >= 0) || connect_s > 86400 * 365 || total_s > 86400 * 365)
		return -WP_ERR_USAGE;
	c->connect_s = connect_s;
	c->total_s = total_s;
	return 0;
}

const char *wp_client_url(const struct wp_client *c)
{
	return c->url;
}

/* ---- the last error --------------------------------------------------- */

enum wp_err wp_error_kind(const struct wp_client *c)
{
	return c->kind;
}

int wp_error_status(const struct wp_client *c)
{
	return c->status;
}

const char *wp_error_code(const struct wp_client *c)
{
	return c->code;
}

const char *wp_error_message(const struct wp_client *c)
{
	return c->message;
}

const char *wp_error_text(const struct wp_client *c)
{
	return c->text;
}

double wp_error_retry_after(const struct wp_client *c)
{
	return c->retry_after;
}

static void error_clear(struct wp_client *c)
{
	c->kind = WP_OK;
	c->status = 0;
	c->retry_after = 0;
	c->code[0] = c->message[0] = c->text[0] = '\0';
}

/* Sets the handle's error; the text is message unless given. Returns -kind. */
__attribute__((format(printf, 3, 4))) static int fail(struct wp_client *c, enum wp_err kind, const char *fmt, ...)
{
	va_list ap;

	c->kind = kind;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	snprintf(c->text, sizeof(c->text), "%s", c->message);
	return -(int)kind;
}

static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r' || *s == '\t')
			*s = ' ';
}

static int fail_http(struct wp_client *c, struct answer *a)
{
	cleanup_json json_t *j = a->body ? json_loadb(a->body, a->len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	c->kind = WP_ERR_HTTP;
	c->status = (int)a->status;
	c->retry_after = a->retry_after;
	snprintf(c->code, sizeof(c->code), "%s", code ? code : "");
	if (msg)
		snprintf(c->message, sizeof(c->message), "%s", msg);
	else if (a->body && a->len && !j)
		snprintf(c->message, sizeof(c->message), "%.*s", (int)(a->len < 200 ? a->len : 200), a->body);
	one_line(c->message);

	if (a->status == 401 && c->auth)
		snprintf(c->text, sizeof(c->text), "poold at %s refused the token (401)", c->url);
	else if (a->status == 401)
		snprintf(c->text, sizeof(c->text), "poold at %s wants a token and none was given (401)", c->url);
	else if (a->status == 403)
		snprintf(c->text, sizeof(c->text), "poold at %s refused the token for this request: %s (403)", c->url,
			 c->message);
	else if (c->code[0])
		snprintf(c->text, sizeof(c->text), "poold at %s: %s (%d %s)", c->url, c->message, c->status, c->code);
	else if (c->message[0])
		snprintf(c->text, sizeof(c->text), "poold at %s answered %d: %s (is it poold?)", c->url, c->status,
			 c->message);
	else
		snprintf(c->text, sizeof(c->text), "poold at %s answered %d without a body (is it poold?)", c->url,
			 c->status);
	if (!c->message[0])
		snprintf(c->message, sizeof(c->message), "HTTP %d", c->status);
	if (c->retry_after > 0) {
		size_t n = strlen(c->text);
		snprintf(c->text + n, sizeof(c->text) - n, "; retry after %.0f s", c->retry_after);
	}
	return -WP_ERR_HTTP;
}

static int fail_transport(struct wp_client *c, struct answer *a, CURLcode rc)
{
	const char *errbuf = c->curl_error;
	long os_errno = 0, sent = 0;
	char why[CURL_ERROR_SIZE + 64];

	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	/* connected (or reused a connection) and sent the request? */
	curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &sent);
	if (os_errno)
		snprintf(why, sizeof(why), "%s", strerror((int)os_errno));
	else
		snprintf(why, sizeof(why), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		if (sent <= 0)
			return fail(c, WP_ERR_TIMEOUT, "poold at %s is not reachable (no connection within %g s)",
				    c->url, c->connect_s);
		return fail(c, WP_ERR_TIMEOUT, "poold at %s did not answer within %g s", c->url, c->total_s);
	case CURLE_WRITE_ERROR:
		if (a->sink_failed)
			return fail(c, WP_ERR_IO, "writing the download: %s", strerror(errno ? errno : EIO));
		if (a->too_big)
			return fail(c, WP_ERR_PROTOCOL, "poold at %s: the answer is larger than %u MiB", c->url,
				    MAX_ANSWER >> 20);
		break;
	case CURLE_OUT_OF_MEMORY: return fail(c, WP_ERR_NOMEM, "out of memory");
	case CURLE_GOT_NOTHING:
		return fail(c, WP_ERR_CONNECT, "poold at %s closed the connection without answering", c->url);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR: return fail(c, WP_ERR_CONNECT, "the connection to poold at %s broke (%s)", c->url, why);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL: return fail(c, WP_ERR_USAGE, "`%s` is not a usable URL (%s)", c->url, why);
	default: break;
	}
	return fail(c, WP_ERR_CONNECT, "poold at %s is not reachable (%s)", c->url, why);
}

/* ---- HTTP ------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	struct answer *a = user;
	size_t len = size * n;
	long status = 0;

	if (a->sink) {
		curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			if (fwrite(data, 1, len, a->sink) != len) {
				a->sink_failed = true;
				return 0;
			}
			a->sunk += len;
			return len;
		}
	}
	if (a->len + len > (a->sink ? MAX_ERROR_BODY : MAX_ANSWER)) {
		a->too_big = true;
		return 0;
	}
	if (a->len + len + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 16384;
		while (cap < a->len + len + 1)
			cap *= 2;
		char *p = realloc(a->body, cap);
		if (!p)
			return 0;
		a->body = p;
		a->cap = cap;
	}
	memcpy(a->body + a->len, data, len);
	a->len += len;
	a->body[a->len] = '\0';
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	struct answer *a = user;
	size_t len = size * n;
	char buf[64];

	if (len > 12 && len < sizeof(buf) && strncasecmp(data, "Retry-After:", 12) == 0) {
		memcpy(buf, data + 12, len - 12);
		buf[len - 12] = '\0';
		a->retry_after = strtod(buf, NULL);
		if (!(a->retry_after > 0) || !isfinite(a->retry_after))
			a->retry_after = 0;
	}
	return len;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static char *escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static struct curl_slist *headers(const struct wp_client *c, const char *ctype)
{
	char type[96];
	/* "Expect:": poold answers at once, no need to wait for 100 Continue */
	const char *lines[] = {"Expect:", "Accept: application/json", type, c->auth};
	struct curl_slist *h = NULL, *t;

	snprintf(type, sizeof(type), "Content-Type: %s", ctype ? ctype : "application/json");
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (!lines[i])
			continue;
		if (!(t = curl_slist_append(h, lines[i]))) {
			curl_slist_free_all(h);
			return NULL;
		}
		h = t;
	}
	return h;
}

static void answer_free(struct answer *a)
{
	free(a->body);
	a->body = NULL;
}

/* One request. A 2xx answer returns 0 with the body in a; anything else sets
 * the handle's error and returns it. body NULL: no body. */
static int call(struct wp_client *c, const char *method, const char *path, const char *ctype, const void *body,
		size_t len, struct answer *a)
{
	struct curl_slist *h;
	cleanup_free char *url = NULL;
	CURLcode rc;

	a->curl = c->curl;
	if (asprintf(&url, "%s%s", c->url, path) < 0) {
		url = NULL;
		return fail(c, WP_ERR_NOMEM, "out of memory");
	}
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	set_tls(c);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	c->curl_error[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "libwarmpool/" WP_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_s * 1000));
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)(c->total_s * 1000));
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
			curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
			curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
		}
	}
	if (!(h = headers(c, ctype)))
		return fail(c, WP_ERR_NOMEM, "out of memory");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);

	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);

	/* a server that refuses a large body may answer and close before reading
	 * it all: the answer counts, not the broken send */
	if (rc != CURLE_OK && !(a->status >= 400 && (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR)))
		return fail_transport(c, a, rc);
	if (a->status < 200 || a->status >= 300)
		return fail_http(c, a);
	return 0;
}

/* A 2xx answer that must be a JSON object (taken from a). */
static json_t *answer_json(struct wp_client *c, struct answer *a)
{
	json_error_t je;
	json_t *j = a->body ? json_loadb(a->body, a->len, 0, &je) : NULL;

	if (!json_is_object(j)) {
		json_decref(j);
		fail(c, WP_ERR_PROTOCOL, "poold at %s sent an answer that is not a JSON object (HTTP %ld)", c->url,
		     a->status);
		j = NULL;
	}
	answer_free(a);
	return j;
}

/* call() with a JSON body (consumed) and a JSON object answer. */
static json_t *call_json(struct wp_client *c, const char *method, const char *path, json_t *body)
{
	cleanup_json json_t *b = body;
	cleanup_free char *text = NULL;
	struct answer a = {0};
	int r;

	if (b && !(text = json_dumps(b, JSON_COMPACT))) {
		fail(c, WP_ERR_NOMEM, "out of memory");
		return NULL;
	}
	r = call(c, method, path, NULL, text, text ? strlen(text) : 0, &a);
	if (r < 0) {
		answer_free(&a);
		return NULL;
	}
	return answer_json(c, &a);
}

/* "/v1/sessions/{id}<rest>?pool={pool}" with every part escaped. */
static char *session_path(struct wp_client *c, const char *pool, const char *id, const char *rest, const char *name)
{
	cleanup_free char *eid = NULL, *epool = NULL, *ename = NULL;
	char *path;

	if (!id || !*id) {
		fail(c, WP_ERR_USAGE, "a session identifier is required");
		return NULL;
	}
	if (name && !*name) {
		fail(c, WP_ERR_USAGE, "a file name must not be empty");
		return NULL;
	}
	if (pool && !*pool) {
		fail(c, WP_ERR_USAGE, "a pool name must not be empty");
		return NULL;
	}
	if (!(eid = escape(id)) || (pool && !(epool = escape(pool))) || (name && !(ename = escape(name))) ||
	    asprintf(&path, "/v1/sessions/%s%s%s%s%s%s", eid, rest, name ? "/" : "", name ? ename : "",
		     pool ? "?pool=" : "", pool ? epool : "") < 0) {
		fail(c, WP_ERR_NOMEM, "out of memory");
		return NULL;
	}
	return path;
}

/* "/v1/pools/{name}<rest>" */
static char *pool_path(struct wp_client *c, const char *name, const char *rest)
{
	cleanup_free char *e = NULL;
	char *path;

	if (!name || !*name) {
		fail(c, WP_ERR_USAGE, "a pool name is required");
		return NULL;
	}
	if (!(e = escape(name)) || asprintf(&path, "/v1/pools/%s%s", e, rest) < 0) {
		fail(c, WP_ERR_NOMEM, "out of memory");
		return NULL;
	}
	return path;
}

/* Hands a freshly built object to *out (or frees it when out is NULL); a
 * NULL object means it could not be built. */
#define HAND_OUT(c, obj, out)                                                                                          \
	({                                                                                                             \
		__typeof__(obj) obj_ = (obj);                                                                          \
		int r_ = obj_ ? 0 : fail((c), WP_ERR_NOMEM, "out of memory");                                          \
		if (obj_ && (out))                                                                                     \
			*(out) = obj_;                                                                                 \
		else                                                                                                   \
			wp_free(obj_);                                                                                 \
		r_;                                                                                                    \
	})

#define OUT_NULL(out)                                                                                                  \
	do {                                                                                                           \
		if (out)                                                                                               \
			*(out) = NULL;                                                                                 \
	} while (0)

#define CHECK_ARGS(c, cond)                                                                                            \
	do {                                                                                                           \
		if (!(c))                                                                                              \
			return -WP_ERR_USAGE;                                                                          \
		error_clear(c);                                                                                        \
		if (!(cond))                                                                                           \
			return fail((c), WP_ERR_USAGE, "%s: invalid argument (%s)", __func__, #cond);                  \
	} while (0)

/* ---- health ----------------------------------------------------------- */

static int health(struct wp_client *c, const char *path)
{
	struct answer a = {0};
	CHECK_ARGS(c, true);
	int r = call(c, "GET", path, NULL, NULL, 0, &a);
	answer_free(&a);
	return r;
}

int wp_healthz(struct wp_client *c)
{
	return health(c, "/healthz");
}

int wp_readyz(struct wp_client *c)
{
	return health(c, "/readyz");
}

/* ---- sessions --------------------------------------------------------- */

int wp_session_run(struct wp_client *c, const char *pool, const char *id, const struct wp_run_request *r,
		   struct wp_run_result **out)
{
	cleanup_free char *path = NULL;
	json_t *j;

	OUT_NULL(out);
	CHECK_ARGS(c, r && r->o.magic == WP_MAGIC && r->o.type == WP_OBJ_RUN_REQUEST);
	if (wp_run_request_test_count(r) == 0)
		return fail(c, WP_ERR_USAGE, "a run needs at least one test (wp_run_request_add_test)");
	if (!(path = session_path(c, pool, id, "/run", NULL)))
		return -(int)c->kind;
	if (!(j = call_json(c, "POST", path, json_incref(r->o.json))))
		return -(int)c->kind;
	return HAND_OUT(c, wp_run_result_from_json(j), out);
}

int wp_session_exec(struct wp_client *c, const char *pool, const char *id, const char *code, int timeout_s,
		    struct wp_exec_result **out)
{
	cleanup_free char *path = NULL, *eid = NULL, *epool = NULL;
	json_t *body, *j;

	OUT_NULL(out);
	CHECK_ARGS(c, code && timeout_s >= 0);
	if (!id || !*id)
		return fail(c, WP_ERR_USAGE, "a session identifier is required");
	if (pool && !*pool)
		return fail(c, WP_ERR_USAGE, "a pool name must not be empty");
	if (!(eid = escape(id)) || (pool && !(epool = escape(pool))) ||
	    asprintf(&path, "%s%s/code/execute?identifier=%s&api-version=2024-02-02-preview", pool ? "/pools/" : "",
		     pool ? epool : "", eid) < 0) {
		path = NULL;
		return fail(c, WP_ERR_NOMEM, "out of memory");
	}
	body = json_pack("{s:{s:s, s:s, s:s}}", "properties", "codeInputType", "inline", "executionType", "synchronous",
			 "code", code);
	if (!body)
		return fail(c, WP_ERR_USAGE, "the code is not valid UTF-8");
	if (timeout_s > 0)
		json_object_set_new(json_object_get(body, "properties"), "timeoutInSeconds", json_integer(timeout_s));
	if (!(j = call_json(c, "POST", path, body)))
		return -(int)c->kind;
	return HAND_OUT(c, wp_exec_result_from_json(j), out);
}

int wp_session_get(struct wp_client *c, const char *pool, const char *id, struct wp_session **out)
{
	cleanup_free char *path = NULL;
	json_t *j;

	OUT_NULL(out);
	CHECK_ARGS(c, true);
	if (!(path = session_path(c, pool, id, "", NULL)) || !(j = call_json(c, "GET", path, NULL)))
		return -(int)c->kind;
	return HAND_OUT(c, wp_session_from_json(j), out);
}

/* A call whose answer carries nothing we need (204, or JSON we drop). */
static int call_nobody(struct wp_client *c, const char *method, const char *path, const char *ctype, const void *body,
		       size_t len)
{
	struct answer a = {0};
	int r = call(c, method, path, ctype, body, len, &a);
	answer_free(&a);
	return r;
}

int wp_session_release(struct wp_client *c, const char *pool, const char *id)
{
	cleanup_free char *path = NULL;

	CHECK_ARGS(c, true);
	if (!(path = session_path(c, pool, id, "", NULL)))
		return -(int)c->kind;
	return call_nobody(c, "DELETE", path, NULL, NULL, 0);
}

int wp_sessions_list(struct wp_client *c, const char *pool, struct wp_sessions **out)
{
	cleanup_free char *path = NULL, *epool = NULL;
	json_t *j;

	OUT_NULL(out);
	CHECK_ARGS(c, !pool || *pool);
	if ((pool && !(epool = escape(pool))) ||
	    asprintf(&path, "/v1/sessions%s%s", pool ? "?pool=" : "", pool ? epool : "") < 0) {
		path = NULL;
		return fail(c, WP_ERR_NOMEM, "out of memory");
	}
	if (!(j = call_json(c, "GET", path, NULL)))
		return -(int)c->kind;
	return HAND_OUT(c, wp_sessions_from_json(j), out);
}

/* ---- files ------------------------------------------------------------ */

int wp_file_put(struct wp_client *c, const char *pool, const char *id, const char *name, const void *data, size_t len)
{
	cleanup_free char *path = NULL;

	CHECK_ARGS(c, name && (data || !len));
	if (!(path = session_path(c, pool, id, "/files", name)))
		return -(int)c->kind;
	return call_nobody(c, "PUT", path, "application/octet-stream", data ? data : "", len);
}

int wp_file_get(struct wp_client *c, const char *pool, const char *id, const char *name, FILE *out, size_t *len)
{
	cleanup_free char *path = NULL;
	struct answer a = {.sink = out};
	int r;

	CHECK_ARGS(c, name && out);
	if (!(path = session_path(c, pool, id, "/files", name)))
		return -(int)c->kind;
	r = call(c, "GET", path, NULL, NULL, 0, &a);
	answer_free(&a);
	if (r == 0 && fflush(out) != 0)
		r = fail(c, WP_ERR_IO, "writing the download: %s", strerror(errno));
	if (r == 0 && len)
		*len = a.sunk;
	return r;
}

int wp_file_delete(struct wp_client *c, const char *pool, const char *id, const char *name)
{
	cleanup_free char *path = NULL;

	CHECK_ARGS(c, name);
	if (!(path = session_path(c, pool, id, "/files", name)))
		return -(int)c->kind;
	return call_nobody(c, "DELETE", path, NULL, NULL, 0);
}

int wp_files_list(struct wp_client *c, const char *pool, const char *id, struct wp_files **out)
{
	cleanup_free char *path = NULL;
	json_t *j;

	OUT_NULL(out);
	CHECK_ARGS(c, true);
	if (!(path = session_path(c, pool, id, "/files", NULL)) || !(j = call_json(c, "GET", path, NULL)))
		return -(int)c->kind;
	/* the list comes in pages (docs/api.md): follow `next` to the end */
	for (const char *next; (next = json_string_value(json_object_get(j, "next")));) {
		cleanup_free char *page_path = NULL;
		json_t *page;
		if (!*next || strspn(next, "0123456789") != strlen(next)) {
			json_decref(j);
			return fail(c, WP_ERR_PROTOCOL, "the files list's `next` is not a cursor: `%.40s`", next);
		}
		if (asprintf(&page_path, "%s%cafter=%s", path, strchr(path, '?') ? '&' : '?', next) < 0) {
			json_decref(j);
			return fail(c, WP_ERR_NOMEM, "out of memory");
		}
		if (!(page = call_json(c, "GET", page_path, NULL))) {
			json_decref(j);
			return -(int)c->kind;
		}
		json_array_extend(json_object_get(j, "files"), json_object_get(page, "files"));
		json_object_set(j, "next", json_object_get(page, "next"));
		json_decref(page);
	}
	return HAND_OUT(c, wp_files_from_json(j), out);
}

/* ---- pools, nodes, languages ------------------------------------------ */

int wp_pools_list(struct wp_client *c, struct wp_pools **out)
{
	json_t *j;

	OUT_NULL(out);
	CHECK_ARGS(c, true);
	if (!(j = call_json(c, "GET", "/v1/pools", NULL)))
		return -(int)c->kind;
	return HAND_OUT(c, wp_pools_from_json(j), out);
}

/* method on /v1/pools/{name}<rest>, answering a pool. */
static int pool_call(struct wp_client *c, const char *method, const char *name, const char *rest, json_t *body,
		     struct wp_pool **out)
{
	cleanup_free char *path = pool_path(c, name, rest);
	json_t *j;

	if (!path) {
		json_decref(body);
		return -(int)c->kind;
	}
	if (!(j = call_json(c, method, path, body)))
		return -(int)c->kind;
	return HAND_OUT(c, wp_pool_from_json(j), out);
}

int wp_pool_get(struct wp_client *c, const char *name, struct wp_pool **out)
{
	OUT_NULL(out);
	CHECK_ARGS(c, true);
	return pool_call(c, "GET", name, "", NULL, out);
}

/* {"a": x, "b": y} with the negative ones left out. */
static json_t *patch_body(const char *ka, long long a, const char *kb, long long b)
{
	json_t *j = json_object();
	if (j && a >= 0)
		json_object_set_new(j, ka, json_integer(a));
	if (j && b >= 0)
		json_object_set_new(j, kb, json_integer(b));
	return j;
}

int wp_pool_resize(struct wp_client *c, const char *name, long long warm, long long max, struct wp_pool **out)
{
	OUT_NULL(out);
	CHECK_ARGS(c, warm >= 0 || max >= 0);
	return pool_call(c, "PATCH", name, "", patch_body("warm", warm, "max", max), out);
}

int wp_pool_set_timeouts(struct wp_client *c, const char *name, long long idle_timeout_s, long long max_lifetime_s,
			 struct wp_pool **out)
{
	OUT_NULL(out);
	CHECK_ARGS(c, idle_timeout_s >= 0 || max_lifetime_s >= 0);
	return pool_call(c, "PATCH", name, "",
			 patch_body("idle_timeout_s", idle_timeout_s, "max_lifetime_s", max_lifetime_s), out);
}

int wp_pool_drain(struct wp_client *c, const char *name, bool drain, struct wp_pool **out)
{
	OUT_NULL(out);
	CHECK_ARGS(c, true);
	return pool_call(c, "POST", name, drain ? "/drain" : "/undrain", NULL, out);
}

int wp_nodes_list(struct wp_client *c, struct wp_nodes **out)
{
	json_t *j;

	OUT_NULL(out);
	CHECK_ARGS(c, true);
	if (!(j = call_json(c, "GET", "/v1/nodes", NULL)))
		return -(int)c->kind;
	return HAND_OUT(c, wp_nodes_from_json(j), out);
}

int wp_languages_list(struct wp_client *c, struct wp_languages **out)
{
	json_t *j;

	OUT_NULL(out);
	CHECK_ARGS(c, true);
	if (!(j = call_json(c, "GET", "/v1/languages", NULL)))
		return -(int)c->kind;
	return HAND_OUT(c, wp_languages_from_json(j), out);
}
