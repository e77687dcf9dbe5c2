/* http_client.c — see http_client.h.
 *
 * Theory of operation. One CURLM per client. curl tells us which sockets it
 * wants watched (sock_cb: one struct http_sock with an ev_io per socket,
 * attached to curl's socket hash with curl_multi_assign and freed when curl
 * says CURL_POLL_REMOVE, which it does before it closes the socket) and when
 * it next needs to be woken (timer_cb: one ev_timer). On every event we call
 * curl_multi_socket_action, then collect_done() moves every finished
 * transfer out of the multi handle onto the client's `finished` list, and
 * client_process() calls the done callbacks one by one. Collecting first means a
 * callback may start or cancel any call (even one finished in the same
 * batch) without disturbing curl's message queue or our iteration.
 *
 * Connections are kept alive in the multi handle's cache (TCP and unix
 * sockets alike), so poold → sandboxd calls mostly skip the connect. Easy
 * handles are kept too (curl_easy_reset, up to HTTP_CLIENT_SPARE_EASY): a
 * fresh one costs an allocation of several KiB and its buffers per call,
 * which perf showed as a tenth of poold's CPU per request. Proxies are
 * never used (CURLOPT_PROXY ""): nodes are reached directly, and curl no
 * longer reads the *_proxy environment on every call. */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

#define HTTP_CLIENT_MAXCONNECTS		    64L /* idle connections kept for reuse */
#define HTTP_CLIENT_SPARE_EASY		    64	/* idle easy handles kept for reuse */
#define HTTP_CLIENT_DEFAULT_TIMEOUT	    30.0
#define HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT 2.0
#define HTTP_CLIENT_DEFAULT_MAX_RESPONSE    ((size_t)16 << 20)

struct call_list {
	struct http_call *head, *tail;
};

struct http_sock {
	ev_io io;
	struct http_client *c;
	struct http_sock *prev, *next;
};

struct http_client {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	struct call_list active;   /* in the multi handle */
	struct call_list finished; /* out of it, callback not called yet */
	struct http_sock *socks;
	CURL *spare[HTTP_CLIENT_SPARE_EASY];
	size_t n_spare;
	size_t inflight;
	bool dispatching, dying; /* dying: http_client_free() from a done callback */
};

struct http_call {
	struct http_client *c;
	struct call_list *list;
	struct http_call *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	char *url;
	char *target; /* base, for error messages */
	char *buf;    /* response body so far, room for a NUL */
	size_t len, cap, max;
	bool too_large, oom;
	CURLcode rc;
	double started;
	http_call_done_fn done;
	void *data;
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void list_append(struct call_list *l, struct http_call *call)
{
	call->list = l;
	call->next = NULL;
	call->prev = l->tail;
	if (l->tail)
		l->tail->next = call;
	else
		l->head = call;
	l->tail = call;
}

static void list_remove(struct http_call *call)
{
	struct call_list *l = call->list;

	if (call->prev)
		call->prev->next = call->next;
	else
		l->head = call->next;
	if (call->next)
		call->next->prev = call->prev;
	else
		l->tail = call->prev;
	call->list = NULL;
}

/* The call must already be out of the multi handle and off its list. */
static void call_free(struct http_call *call)
{
	if (!call)
		return;
	if (call->easy && call->c->n_spare < HTTP_CLIENT_SPARE_EASY) {
		curl_easy_reset(call->easy);
		call->c->spare[call->c->n_spare++] = call->easy;
	} else if (call->easy) {
		curl_easy_cleanup(call->easy);
	}
	curl_slist_free_all(call->headers);
	curl_slist_free_all(call->connect_to);
	free(call->url);
	free(call->target);
	free(call->buf);
	free(call);
}

static void sock_free(struct http_sock *s)
{
	ev_io_stop(s->c->loop, &s->io);
	if (s->prev)
		s->prev->next = s->next;
	else
		s->c->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

/* ---- completion ---- */

static void collect_done(struct http_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct http_call *call = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg is invalid after curl_multi_remove_handle. */
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
		curl_multi_remove_handle(c->multi, easy);
		call->rc = rc;
		list_remove(call);
		list_append(&c->finished, call);
	}
}

static void call_finish(struct http_call *call)
{
	struct http_result res = {0};
	long status = 0, os_errno = 0;

	curl_easy_getinfo(call->easy, CURLINFO_OS_ERRNO, &os_errno);
	if (call->rc == CURLE_OK) {
		curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
		res.status = (int)status;
	} else if (call->too_large || call->rc == CURLE_FILESIZE_EXCEEDED) {
		res.error = "response too large";
	} else if (call->oom) {
		res.error = "out of memory";
	} else if (call->rc == CURLE_COULDNT_CONNECT && os_errno) {
		/* Not curl's "Couldn't connect" ("localhost port 80" for unix). */
		snprintf(call->errbuf, sizeof(call->errbuf), "connect to %s: %s", call->target, strerror(os_errno));
		res.error = call->errbuf;
	} else {
		res.error = call->errbuf[0] ? call->errbuf : curl_easy_strerror(call->rc);
		res.timed_out = call->rc == CURLE_OPERATION_TIMEDOUT;
	}
	if (res.status && call->buf) {
		res.body = steal_pointer(&call->buf);
		res.body_len = call->len;
		res.body[res.body_len] = '\0';
	} else {
		res.body = calloc(1, 1); /* "", also when the transfer failed */
	}
	res.elapsed = ev_time() - call->started;
	call->done(&res, call->data);
	free(res.body);
}

static void client_destroy(struct http_client *c)
{
	/* Closing cached connections calls sock_cb(CURL_POLL_REMOVE). */
	curl_multi_cleanup(c->multi);
	while (c->n_spare)
		curl_easy_cleanup(c->spare[--c->n_spare]);
	ev_timer_stop(c->loop, &c->timer);
	while (c->socks)
		sock_free(c->socks);
	free(c);
}

/* After every curl_multi_socket_action. c may be gone when this returns. */
static void client_process(struct http_client *c)
{
	struct http_call *call;

	collect_done(c);
	if (c->dispatching)
		return;
	c->dispatching = true;
	while (!c->dying && (call = c->finished.head)) {
		list_remove(call);
		c->inflight--;
		call_finish(call);
		call_free(call);
	}
	c->dispatching = false;
	if (c->dying)
		client_destroy(c);
}

/* ---- curl → libev ---- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_client *c = ((struct http_sock *)w->data)->c;
	int running, action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0) |
			      (revents & EV_ERROR ? CURL_CSELECT_ERR : 0);

	/* w may be freed by sock_cb(CURL_POLL_REMOVE) from here on. */
	curl_multi_socket_action(c->multi, w->fd, action, &running);
	client_process(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_client *c = w->data;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	client_process(c);
}

/* CURLMOPT_SOCKETFUNCTION. Only watchers change here: curl forbids calling
 * back into the multi handle (but for curl_multi_assign) from its callbacks. */
static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct http_sock *s = socketp;
	int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

	if (what == CURL_POLL_REMOVE) {
		/* curl drops its hash entry (and our pointer) right after this. */
		if (s)
			sock_free(s);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->c = c;
		s->next = c->socks;
		if (c->socks)
			c->socks->prev = s;
		c->socks = s;
		ev_io_init(&s->io, io_cb, fd, events);
		s->io.data = s;
		curl_multi_assign(c->multi, fd, s);
	} else {
		ev_io_stop(c->loop, &s->io); /* ev_io_set on an active watcher is undefined */
		ev_io_set(&s->io, fd, events);
	}
	if (events)
		ev_io_start(c->loop, &s->io);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION. Never act from here: a 0 ms timeout fires on the
 * next loop iteration. */
static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;

	ev_timer_stop(c->loop, &c->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&c->timer, timeout_ms / 1000.0, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

/* ---- set-up ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_call *call = userdata;
	size_t n = size * nmemb;

	if (n > call->max - call->len) {
		call->too_large = true;
		return 0;
	}
	if (call->len + n + 1 > call->cap) {
		size_t cap = call->cap ? call->cap : 1024;
		while (cap < call->len + n + 1)
			cap *= 2;
		char *b = realloc(call->buf, cap);
		if (!b) {
			call->oom = true;
			return 0;
		}
		call->buf = b;
		call->cap = cap;
	}
	memcpy(call->buf + call->len, ptr, n);
	call->len += n;
	return n;
}

/* "Name: prefix value", or "Name:" (value NULL) to suppress a header curl adds. */
static int call_add_header(struct http_call *call, const char *name, const char *prefix, const char *value)
{
	cleanup_free char *line = NULL;
	struct curl_slist *l;

	if (asprintf(&line, "%s:%s%s%s", name, value ? " " : "", value ? prefix : "", value ? value : "") < 0)
		return -ENOMEM;
	l = curl_slist_append(call->headers, line);
	if (!l)
		return -ENOMEM;
	call->headers = l;
	return 0;
}

/* Fills call->url; a unix socket goes in *unix_path. */
static int call_set_url(struct http_call *call, const char *base, const char *path, const char **unix_path)
{
	if (!base)
		return -EINVAL;
	if (!path || !*path)
		path = "/";
	if (strncmp(base, "unix:", 5) == 0) {
		if (!base[5] || path[0] != '/')
			return -EINVAL;
		*unix_path = base + 5;
		return asprintf(&call->url, "http://localhost%s", path) < 0 ? -ENOMEM : 0;
	}
	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
		return -EINVAL;
	size_t blen = strlen(base);
	if (blen && base[blen - 1] == '/' && path[0] == '/')
		blen--;
	return asprintf(&call->url, "%.*s%s", (int)blen, base, path) < 0 ? -ENOMEM : 0;
}

/* https: verify the peer (always), against the given CA only, with the given
 * client certificate. */
static int call_setup_tls(struct http_call *call, CURL *e, const struct http_tls_opts *t)
{
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!t)
		return 0;
	if (t->tls13_only && curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3) != CURLE_OK)
		return -ENOTSUP;
	if (t->ca) {
		if (curl_easy_setopt(e, CURLOPT_CAINFO, t->ca) != CURLE_OK)
			return -ENOMEM;
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL); /* that CA, not the system's too */
#if LIBCURL_VERSION_NUM >= 0x075700
		curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 0L); /* a rotated CA file counts at once */
#endif
	}
	if (t->cert && curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert) != CURLE_OK)
		return -ENOMEM;
	if (t->key && curl_easy_setopt(e, CURLOPT_SSLKEY, t->key) != CURLE_OK)
		return -ENOMEM;
	if (t->connect_to) {
		struct curl_slist *l = curl_slist_append(NULL, t->connect_to);
		if (!l)
			return -ENOMEM;
		call->connect_to = l;
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, l);
	}
	return 0;
}

static int call_setup(struct http_call *call, const struct http_call_opts *o)
{
	const char *method = o->method ? o->method : "GET";
	const char *unix_path = NULL;
	bool head = strcmp(method, "HEAD") == 0;
	bool no_body = head || strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0;
	bool has_body = o->body && o->body_len;
	const char *ctype = o->content_type ? o->content_type : "application/json";
	double timeout = o->timeout > 0 ? o->timeout : HTTP_CLIENT_DEFAULT_TIMEOUT;
	double ctimeout = o->connect_timeout > 0 ? o->connect_timeout : HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT;
	CURL *e;
	int r;

	r = call_set_url(call, o->base, o->path, &unix_path);
	if (r < 0)
		return r;
	call->target = strdup(o->base);
	if (!call->target)
		return -ENOMEM;
	call->easy = e = call->c->n_spare ? call->c->spare[--call->c->n_spare] : curl_easy_init();
	if (!e)
		return -ENOMEM;
	/* Our own "Expect:" suppresses 100-continue round trips on big bodies. */
	if (call_add_header(call, "Expect", "", NULL) < 0)
		return -ENOMEM;
	/* Without a body, "Content-Type:" stops POSTFIELDS adding a form type. */
	if ((has_body || !no_body) && call_add_header(call, "Content-Type", "", has_body ? ctype : NULL) < 0)
		return -ENOMEM;
	if (o->bearer && call_add_header(call, "Authorization", "Bearer ", o->bearer) < 0)
		return -ENOMEM;
	if (o->header_name && o->header_value && call_add_header(call, o->header_name, "", o->header_value) < 0)
		return -ENOMEM;

	if (curl_easy_setopt(e, CURLOPT_URL, call->url) != CURLE_OK)
		return -EINVAL;
	if (unix_path && curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, unix_path) != CURLE_OK)
		return -ENOMEM;
	/* The path goes out exactly as given: libcurl would otherwise remove
	 * `.` and `..` segments, and a path checked for one route would reach
	 * another (a slot's files/.. became the slot itself). */
	if (curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L) != CURLE_OK)
		return -EINVAL;
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	if (strncmp(call->url, "https://", 8) == 0) {
		r = call_setup_tls(call, e, o->tls);
		if (r < 0)
			return r;
	}
	curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	/* Rounded up: 0 ms would mean no timeout at all. */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000 + 0.999));
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000 + 0.999));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	/* Refuses an announced Content-Length past the cap before reading it. */
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (head) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (!no_body || has_body) {
		/* Size first: POSTFIELDS alone would strlen() the body. */
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(o->body ? o->body_len : 0));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body ? o->body : "");
	}
	return 0;
}

/* ---- public ---- */

struct http_client *http_client_new(struct ev_loop *loop)
{
	struct http_client *c;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = loop;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		return NULL;
	}
	ev_timer_init(&c->timer, timer_cb, 0., 0.);
	c->timer.data = c;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, HTTP_CLIENT_MAXCONNECTS);
	return c;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	while (c->active.head)
		http_call_cancel(c->active.head);
	while (c->finished.head)
		http_call_cancel(c->finished.head);
	if (c->dispatching) { /* from a done callback: client_process() finishes the job */
		c->dying = true;
		return;
	}
	client_destroy(c);
}

struct http_call *http_call_start(struct http_client *c, const struct http_call_opts *o, http_call_done_fn done,
				  void *data)
{
	struct http_call *call;

	if (!c || !o || !done || c->dying)
		return NULL;
	call = calloc(1, sizeof(*call));
	if (!call)
		return NULL;
	call->c = c;
	call->done = done;
	call->data = data;
	call->max = o->max_response ? o->max_response : HTTP_CLIENT_DEFAULT_MAX_RESPONSE;
	call->started = ev_time();
	if (call_setup(call, o) < 0 || curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
		call_free(call);
		return NULL;
	}
	/* curl_multi_add_handle only arms the timer: done runs from the loop. */
	list_append(&c->active, call);
	c->inflight++;
	return call;
}

void http_call_cancel(struct http_call *call)
{
	struct http_client *c;

	if (!call)
		return;
	c = call->c;
	if (call->list == &c->active)
		curl_multi_remove_handle(c->multi, call->easy);
	list_remove(call);
	c->inflight--;
	call_free(call);
}

size_t http_client_inflight(const struct http_client *c)
{
	return c ? c->inflight : 0;
}
