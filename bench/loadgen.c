/*
 * loadgen — the bench's load generator for its concurrent rows.
 *
 * The Python client of bench.py costs 300–600 µs of CPU per request and
 * serialises 50 threads on one interpreter lock; on 2 cores that is more CPU
 * than poold or sandboxd spend, and it shows up as latency of the thing being
 * measured. This program does the same job on one thread with epoll: one
 * keep-alive connection per client and target, the requests pre-built by
 * bench.py, the clock read just before write() and just after the last byte
 * of the answer. Responses are parsed with http-parser.
 *
 * Spec (JSON on stdin):
 *   {"clients": [{"targets": [{"addr": "unix:/path" | "tcp:127.0.0.1:8080",
 *                              "request": "raw HTTP/1.1 request",
 *                              "expect": ["substrings the 200 body must hold"],
 *                              "report": "\"wall_ms\":"}]}],   (optional)
 *    "rounds": 20,        per client; a round sends every target once, in turn
 *    "warmup": 2,         rounds not recorded
 *    "period_ms": 0,      0: back to back; P: a client starts a round every P ms,
 *                         the clients' ticks spread evenly over the period
 *    "timeout_s": 120}
 * A client's round r starts at target (client + r) % ntargets, so every path
 * goes first as often as the others.
 *
 * Result (JSON on stdout): {"latency_us": [[...path 0...], [...path 1...]],
 *   "sent_at_us": [[...], [...]] (when each sample was sent, from the start),
 *   "reported": [[...], [...]] (the number after each answer's "report" key),
 *   "errors": n, "first_error": "...", "late_ticks": n, "wall_s": x,
 *   "cpu_s": user+system of this process, "requests": n recorded,
 *   "sent": n including the warm-up rounds}
 * Exit status: 0, 1 when any request failed (the result still says which), 2
 * on a bad spec.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (1 << 20)

struct target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *request;
	size_t request_len;
	const char **expect; /* NULL-terminated */
	const char *report;
};

struct conn {
	int fd;
	struct client *client;
	unsigned path;	  /* index among the client's targets: latencies are kept by path */
	struct target *t; /* this client's own request on that path */
	bool want_out;	  /* EPOLLOUT watched: a request is partly written */
};

struct client {
	unsigned index;
	struct conn *conns;   /* one per target */
	unsigned round, step; /* step: how many targets of this round are done */
	bool busy;
	size_t sent;
	int64_t started_ns;
	int64_t next_tick_ns;
	http_parser parser;
	char *body;
	size_t body_len;
	bool complete;
};

static struct target *targets;
static unsigned ntargets;
static struct client *clients;
static unsigned nclients;
static unsigned rounds, warmup;
static int64_t period_ns;
static int epfd;
static int64_t **lat;	  /* [path][sample] in µs */
static int64_t **sent_at; /* [path][sample]: when it was sent, µs since the start */
static int64_t t_start;
static double **rep; /* [path][sample]: the reported numbers */
static size_t *nlat, *nrep;
static unsigned long sent;
static unsigned errors, late_ticks, clients_done;
static char first_error[512];

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fail(struct client *c, const char *what)
{
	errors++;
	if (!first_error[0])
		snprintf(first_error, sizeof(first_error), "client %u path %u round %u: %s", c->index,
			 (c->index + c->round + c->step) % ntargets, c->round, what);
}

static int parse_addr(const char *s, struct target *t)
{
	memset(&t->addr, 0, sizeof(t->addr));
	if (!strncmp(s, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
		if (strlen(s + 5) >= sizeof(un->sun_path))
			return -1;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, s + 5);
		t->addrlen = sizeof(*un);
		return 0;
	}
	if (!strncmp(s, "tcp:", 4)) {
		struct sockaddr_in *in = (struct sockaddr_in *)&t->addr;
		char host[64];
		const char *colon = strrchr(s + 4, ':');
		if (!colon || (size_t)(colon - (s + 4)) >= sizeof(host))
			return -1;
		memcpy(host, s + 4, colon - (s + 4));
		host[colon - (s + 4)] = 0;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -1;
		t->addrlen = sizeof(*in);
		return 0;
	}
	return -1;
}

static int conn_open(struct conn *k)
{
	struct target *t = k->t;
	int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&t->addr, t->addrlen) < 0) {
		close(fd);
		return -1;
	}
	if (t->addr.ss_family == AF_INET) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return -1;
	}
	k->fd = fd;
	k->want_out = false;
	return 0;
}

static struct conn *current(struct client *c)
{
	return &c->conns[(c->index + c->round + c->step) % ntargets];
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct client *c = p->data;
	if (c->body_len + len > MAX_BODY)
		return 1;
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int on_complete(http_parser *p)
{
	((struct client *)p->data)->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void finish_request(struct client *c, bool answered);

static void drop_conn(struct conn *k)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, k->fd, NULL);
	close(k->fd);
	k->fd = -1;
}

/* Writes what is left of the request; watches for room (EPOLLOUT) only
 * while some is left. */
static void send_more(struct conn *k)
{
	struct client *c = k->client;
	struct target *t = k->t;
	while (c->sent < t->request_len) {
		ssize_t n = write(k->fd, t->request + c->sent, t->request_len - c->sent);
		if (n < 0 && errno == EAGAIN) {
			if (!k->want_out) {
				struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = k};
				epoll_ctl(epfd, EPOLL_CTL_MOD, k->fd, &ev);
				k->want_out = true;
			}
			return;
		}
		if (n <= 0) {
			fail(c, "write failed");
			drop_conn(k);
			finish_request(c, false);
			return;
		}
		c->sent += (size_t)n;
	}
	if (k->want_out) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
		epoll_ctl(epfd, EPOLL_CTL_MOD, k->fd, &ev);
		k->want_out = false;
	}
}

static void start_request(struct client *c)
{
	struct conn *k = current(c);
	c->busy = true;
	c->sent = 0;
	c->body_len = 0;
	c->complete = false;
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	c->started_ns = now_ns();
	sent++;
	if (k->fd < 0 && conn_open(k) < 0) {
		fail(c, strerror(errno));
		finish_request(c, false);
		return;
	}
	send_more(k);
}

static void start_round_if_due(struct client *c, int64_t now)
{
	if (c->busy || c->round >= rounds + warmup)
		return;
	if (period_ns && now < c->next_tick_ns)
		return;
	if (period_ns) {
		if (c->round >= warmup && now - c->next_tick_ns > period_ns / 2)
			late_ticks++;
		c->next_tick_ns += period_ns;
	}
	c->step = 0;
	start_request(c);
}

/* The first expected substring the answer lacks, or NULL. */
static const char *missing(const struct client *c, const struct target *t)
{
	for (const char **e = t->expect; e && *e; e++)
		if (!memmem(c->body, c->body_len, *e, strlen(*e)))
			return *e;
	return NULL;
}

static void reported(struct client *c, unsigned path, const char *key)
{
	if (!key)
		return;
	c->body[c->body_len < MAX_BODY ? c->body_len : MAX_BODY - 1] = 0;
	const char *at = strstr(c->body, key);
	if (at)
		rep[path][nrep[path]++] = strtod(at + strlen(key), NULL);
}

/* answered: false when the request already failed (counted) without an answer */
static void finish_request(struct client *c, bool answered)
{
	struct conn *k = current(c);
	int64_t dt = now_ns() - c->started_ns;
	struct target *t = k->t;
	if (!answered) {
		/* counted by the caller */
	} else if (c->parser.status_code != 200) {
		char msg[300];
		snprintf(msg, sizeof(msg), "status %u: %.*s", c->parser.status_code,
			 (int)(c->body_len > 200 ? 200 : c->body_len), c->body);
		fail(c, msg);
	} else if (missing(c, t)) {
		char msg[300];
		snprintf(msg, sizeof(msg), "expected %s in: %.*s", missing(c, t),
			 (int)(c->body_len > 200 ? 200 : c->body_len), c->body);
		fail(c, msg);
	} else if (c->round >= warmup) {
		sent_at[k->path][nlat[k->path]] = (c->started_ns - t_start) / 1000;
		lat[k->path][nlat[k->path]++] = dt / 1000;
		reported(c, k->path, t->report);
	}
	if (k->fd >= 0 && !http_should_keep_alive(&c->parser))
		drop_conn(k);
	c->busy = false;
	if (++c->step < ntargets) {
		start_request(c);
		return;
	}
	if (++c->round >= rounds + warmup) {
		clients_done++;
		return;
	}
	start_round_if_due(c, now_ns());
}

static void on_readable(struct conn *k)
{
	struct client *c = k->client;
	char buf[65536];
	for (;;) {
		ssize_t n = read(k->fd, buf, sizeof(buf));
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || !c->busy || current(c) != k) {
			/* EOF or an answer nobody asked for */
			drop_conn(k);
			if (c->busy && current(c) == k) {
				fail(c, n == 0 ? "connection closed before the answer" : "read failed");
				finish_request(c, false);
			}
			return;
		}
		size_t used = http_parser_execute(&c->parser, &parser_settings, buf, (size_t)n);
		if (c->complete) {
			finish_request(c, true);
			return;
		}
		if (used != (size_t)n || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
			fail(c, http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
			drop_conn(k);
			finish_request(c, false);
			return;
		}
	}
}

static int load_spec(json_t *spec)
{
	json_t *jc = json_object_get(spec, "clients");
	rounds = (unsigned)json_integer_value(json_object_get(spec, "rounds"));
	warmup = (unsigned)json_integer_value(json_object_get(spec, "warmup"));
	period_ns = (int64_t)(json_number_value(json_object_get(spec, "period_ms")) * 1e6);
	if (!json_is_array(jc) || !json_array_size(jc) || !rounds || period_ns < 0)
		return -1;
	nclients = (unsigned)json_array_size(jc);
	clients = calloc(nclients, sizeof(*clients));
	for (unsigned i = 0; i < nclients; i++) {
		json_t *jt = json_object_get(json_array_get(jc, i), "targets");
		if (!json_is_array(jt) || !json_array_size(jt))
			return -1;
		if (i == 0) {
			ntargets = (unsigned)json_array_size(jt);
			lat = calloc(ntargets, sizeof(*lat));
			sent_at = calloc(ntargets, sizeof(*sent_at));
			rep = calloc(ntargets, sizeof(*rep));
			nlat = calloc(ntargets, sizeof(*nlat));
			nrep = calloc(ntargets, sizeof(*nrep));
			for (unsigned t = 0; t < ntargets; t++) {
				lat[t] = calloc((size_t)nclients * rounds, sizeof(**lat));
				sent_at[t] = calloc((size_t)nclients * rounds, sizeof(**sent_at));
				rep[t] = calloc((size_t)nclients * rounds, sizeof(**rep));
			}
			targets = calloc((size_t)nclients * ntargets, sizeof(*targets));
		} else if (json_array_size(jt) != ntargets) {
			return -1; /* every client has the same paths */
		}
		struct client *c = &clients[i];
		c->index = i;
		c->body = malloc(MAX_BODY);
		c->conns = calloc(ntargets, sizeof(*c->conns));
		for (unsigned t = 0; t < ntargets; t++) {
			json_t *o = json_array_get(jt, t);
			struct target *tg = &targets[i * ntargets + t];
			const char *addr = json_string_value(json_object_get(o, "addr"));
			json_t *req = json_object_get(o, "request");
			if (!addr || !json_is_string(req) || parse_addr(addr, tg) < 0)
				return -1;
			tg->request = json_string_value(req);
			tg->request_len = json_string_length(req);
			json_t *ex = json_object_get(o, "expect");
			tg->expect = calloc(json_array_size(ex) + 1, sizeof(*tg->expect));
			for (size_t e = 0; e < json_array_size(ex); e++)
				tg->expect[e] = json_string_value(json_array_get(ex, e));
			if (ex && (!json_is_array(ex) || json_array_size(ex) > 16))
				return -1;
			tg->report = json_string_value(json_object_get(o, "report"));
			c->conns[t] = (struct conn){.fd = -1, .client = c, .path = t, .t = tg};
		}
	}
	return 0;
}

/* Everything, for a clean exit under LeakSanitizer (make SANITIZE=…). */
static void free_all(json_t *spec)
{
	for (unsigned i = 0; clients && i < nclients; i++) {
		for (unsigned t = 0; clients[i].conns && t < ntargets; t++)
			if (clients[i].conns[t].fd > 0) /* calloc'd, never opened: 0 */
				close(clients[i].conns[t].fd);
		free(clients[i].conns);
		free(clients[i].body);
	}
	free(clients);
	for (unsigned i = 0; targets && i < nclients * ntargets; i++)
		free(targets[i].expect);
	free(targets);
	for (unsigned t = 0; lat && t < ntargets; t++) {
		free(lat[t]);
		free(sent_at[t]);
		free(rep[t]);
	}
	free(lat);
	free(sent_at);
	free(rep);
	free(nlat);
	free(nrep);
	json_decref(spec);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		(void)argv;
		fprintf(stderr,
			"usage: loadgen < spec.json > result.json (see the comment at the top of bench/loadgen.c)\n");
		return 2;
	}
	json_error_t jerr;
	json_t *spec = json_loadf(stdin, 0, &jerr);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!spec || epfd < 0 || load_spec(spec) < 0) {
		fprintf(stderr, "loadgen: bad spec%s%s\n", spec ? "" : ": ", spec ? "" : jerr.text);
		free_all(spec);
		return 2;
	}
	double timeout_s = json_number_value(json_object_get(spec, "timeout_s"));
	int64_t t0 = t_start = now_ns(), deadline = t0 + (int64_t)((timeout_s > 0 ? timeout_s : 120) * 1e9);
	for (unsigned i = 0; i < nclients; i++) {
		for (unsigned t = 0; t < ntargets; t++)
			if (conn_open(&clients[i].conns[t]) < 0) {
				fprintf(stderr, "loadgen: connect: %s\n", strerror(errno));
				free_all(spec);
				return 2;
			}
		clients[i].next_tick_ns = t0 + (period_ns * i) / nclients;
	}
	for (unsigned i = 0; i < nclients; i++)
		start_round_if_due(&clients[i], now_ns());
	struct epoll_event evs[64];
	while (clients_done < nclients) {
		int64_t now = now_ns();
		if (now > deadline) {
			fail(&clients[0], "timeout: the run did not finish in timeout_s");
			break;
		}
		int wait_ms = 100;
		if (period_ns)
			for (unsigned i = 0; i < nclients; i++) {
				struct client *c = &clients[i];
				if (c->busy || c->round >= rounds + warmup)
					continue;
				int64_t d = (c->next_tick_ns - now + 999999) / 1000000;
				if (d < wait_ms)
					wait_ms = d < 0 ? 0 : (int)d;
			}
		int n = epoll_wait(epfd, evs, 64, wait_ms);
		for (int e = 0; e < n; e++) {
			struct conn *k = evs[e].data.ptr;
			if (k->fd < 0)
				continue;
			if (evs[e].events & EPOLLOUT)
				send_more(k);
			if (k->fd >= 0 && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				on_readable(k);
		}
		if (period_ns) {
			now = now_ns();
			for (unsigned i = 0; i < nclients; i++)
				start_round_if_due(&clients[i], now);
		}
	}
	double wall = (double)(now_ns() - t0) / 1e9;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	json_t *out = json_object(), *jl = json_array(), *jr = json_array(), *jt = json_array();
	unsigned long total = 0;
	for (unsigned p = 0; p < ntargets; p++) {
		json_t *a = json_array(), *b = json_array(), *w = json_array();
		for (size_t s = 0; s < nlat[p]; s++)
			json_array_append_new(a, json_integer(lat[p][s]));
		for (size_t s = 0; s < nlat[p]; s++)
			json_array_append_new(w, json_integer(sent_at[p][s]));
		for (size_t s = 0; s < nrep[p]; s++)
			json_array_append_new(b, json_real(rep[p][s]));
		total += nlat[p];
		json_array_append_new(jl, a);
		json_array_append_new(jt, w);
		json_array_append_new(jr, b);
	}
	json_object_set_new(out, "latency_us", jl);
	json_object_set_new(out, "sent_at_us", jt);
	json_object_set_new(out, "reported", jr);
	json_object_set_new(out, "sent", json_integer((json_int_t)sent));
	json_object_set_new(out, "errors", json_integer(errors));
	json_object_set_new(out, "first_error", json_string(first_error));
	json_object_set_new(out, "late_ticks", json_integer(late_ticks));
	json_object_set_new(out, "wall_s", json_real(wall));
	json_object_set_new(out, "cpu_s",
			    json_real((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6));
	json_object_set_new(out, "requests", json_integer((json_int_t)total));
	json_dumpf(out, stdout, JSON_COMPACT);
	json_decref(out);
	free_all(spec);
	putchar('\n');
	return errors ? 1 : 0;
}
