/* node.c — see node.h.
 *
 * DNS discovery: a `[node:NAME] dns = HOST:PORT` section is a group, not a
 * node. HOST is resolved (every A and AAAA record) at start and then every
 * `dns_interval`; each address becomes a node named NAME-<address> with url
 * http://<address>:PORT. An address missing from a later successful answer
 * is marked down (its sessions are lost, as with any node that stops
 * answering) and forgotten: no longer listed, checked or counted. A failed
 * or empty answer changes nothing (a DNS outage must not drop every node;
 * the health checks still tell whether the nodes answer). The resolution
 * (getaddrinfo, which blocks) runs in a short-lived child process that
 * writes one address per line to a pipe read by an ev_io: the loop never
 * waits on DNS. Forgotten nodes are kept in memory (leases and calls in
 * flight may still point at them) and revived if their address comes back. */
#include "node.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "json.h"
#include "lease.h"
#include "log.h"
#include "pool.h"

#define DOWN_AFTER    2
#define RECONCILE_S   30.0  /* a node that is up is read back this often */
#define DNS_TIMEOUT   5.0   /* seconds one resolution may take */
#define DNS_MAX_OUT   65536 /* bytes of answer read from the resolver child */
#define DNS_MAX_ADDRS 1024  /* addresses taken from one answer */

struct dns_group;

/* What node.c keeps beside the public struct node (which comes first). */
struct node_priv {
	struct node pub;
	struct dns_group *group; /* NULL: a configured url */
	bool retired;		 /* vanished from its DNS answer: unlisted, unchecked */
	bool seen;		 /* in the answer being merged */
	bool ever_synced;	 /* read back once: later syncs recover no lease */
	bool syncing;		 /* GET /v1/slots in flight */
	double synced_at;	 /* last sync started (for the periodic one) */
	struct node_priv *next_retired;
	struct http_tls_opts tls; /* an https:// url: mutual TLS (strings of the running config) */
	bool has_tls;
	char unreachable[160]; /* the last reason logged while not up (a TLS refusal, a refused connection) */
};

struct dns_group {
	const struct node_conf *nc; /* of the running config */
	char *name;		    /* the [node:NAME] */
	char *host;
	char *port;
	ev_timer timer;	   /* every dns_interval */
	ev_timer deadline; /* DNS_TIMEOUT of the running resolution */
	ev_io io;
	ev_child child;
	pid_t pid; /* the resolver child, 0 when none runs */
	int fd;
	bool eof, exited, failing;
	int status;
	char *out;
	size_t out_len;
	struct dns_group *next;
};

static struct ev_loop *loop;
static struct http_client *client;
static const struct psettings *cfg;
static struct node *nodes;
static struct node_priv *retired;
static struct dns_group *groups;
static ev_timer health_timer;

static inline struct node_priv *priv(struct node *n)
{
	return (struct node_priv *)n;
}

struct node *node_first(void)
{
	return nodes;
}

struct node *node_find(const char *name)
{
	for (struct node *n = nodes; n; n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

size_t nodes_up(void)
{
	size_t k = 0;
	for (struct node *n = nodes; n; n = n->next)
		k += n->up;
	return k;
}

bool node_has_language(const struct node *n, const char *language)
{
	json_t *langs = json_object_get(n->info, "languages"), *l;
	size_t i;
	json_array_foreach (langs, i, l) {
		if (json_is_true(json_object_get(l, "available")) &&
		    strcmp(json_string_value(json_object_get(l, "name")) ?: "", language) == 0)
			return true;
	}
	return false;
}

void node_mark_down(struct node *n, const char *why)
{
	if (!n->up)
		return;
	n->up = false;
	n->synced = false;
	log_error("node %s (%s) is down: %s", n->name, n->url, why);
	leases_node_down(n);
	pools_node_down(n);
}

/* A node not up yet says why, once per reason: a certificate refused
 * (wrong name, another CA, expired) must not look like silence. */
static void node_log_unreachable(struct node *n, const char *why)
{
	struct node_priv *p = priv(n);

	if (strncmp(p->unreachable, why, sizeof(p->unreachable) - 1) == 0)
		return;
	snprintf(p->unreachable, sizeof(p->unreachable), "%s", why);
	log_warn("node %s (%s) is down: %s", n->name, n->url, why);
}

struct node_ctx {
	struct node *node;
	node_done_fn done;
	void *data;
	char *body; /* owned, kept alive for the transfer (NULL for raw calls) */
};

static void node_call_done(struct http_result *res, void *data)
{
	struct node_ctx *c = data;
	/* A timeout says the node is slow (a busy sandboxd), not gone: only the
	 * health checks count those, DOWN_AFTER in a row. Any other transport
	 * failure (refused, no socket, reset) says it is gone. */
	if (res->status == 0 && !res->timed_out)
		node_mark_down(c->node, res->error ? res->error : "transport error");
	if (res->status == 0 && !c->node->up)
		node_log_unreachable(c->node, res->error ? res->error : "transport error");
	c->done(c->node, res, c->data);
	free(c->body);
	free(c);
}

static struct http_call *call_start(struct node *n, const char *label, const char *method, const char *path,
				    const char *ctype, const void *body, size_t len, double timeout, char *owned,
				    node_done_fn done, void *data)
{
	struct node_ctx *c = calloc(1, sizeof(*c));
	struct http_call *call;

	if (!c) {
		free(owned);
		return NULL;
	}
	*c = (struct node_ctx){.node = n, .done = done, .data = data, .body = owned};
	struct http_call_opts o = {
	    .method = method,
	    .base = n->url,
	    .path = path,
	    .content_type = ctype,
	    .body = body,
	    .body_len = len,
	    .timeout = timeout > 0 ? timeout : (double)cfg->node_timeout_ms / 1000.0,
	    .max_response = 256u << 20,
	    .header_name = label ? "X-Warmpool-Label" : NULL,
	    .header_value = label,
	    .tls = ((struct node_priv *)n)->has_tls ? &((struct node_priv *)n)->tls : NULL,
	};
	call = http_call_start(client, &o, node_call_done, c);
	if (!call) {
		free(owned);
		free(c);
	}
	return call;
}

struct http_call *node_call(struct node *n, const char *method, const char *path, json_t *body, double timeout,
			    node_done_fn done, void *data)
{
	return node_call_label(n, NULL, method, path, body, timeout, done, data);
}

struct http_call *node_call_label(struct node *n, const char *label, const char *method, const char *path, json_t *body,
				  double timeout, node_done_fn done, void *data)
{
	char *text = NULL;

	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (!text)
			return NULL;
	}
	return call_start(n, label, method, path, NULL, text, text ? strlen(text) : 0, timeout, text, done, data);
}

struct http_call *node_call_raw(struct node *n, const char *label, const char *method, const char *path,
				const char *ctype, const void *body, size_t len, double timeout, node_done_fn done,
				void *data)
{
	return call_start(n, label, method, path, ctype, body, len, timeout, NULL, done, data);
}

static void sync_done(struct node *n, struct http_result *res, void *data)
{
	enum lease_sync how = (enum lease_sync)(intptr_t)data;
	json_t *j;

	priv(n)->syncing = false;
	if (priv(n)->retired)
		return;
	if (res->status != 200 || !(j = json_parse_reply(res->body, res->body_len))) {
		if (res->status)
			log_warn("node %s: slot list: HTTP %d", n->name, res->status);
		return; /* not synced: the next health check tries again */
	}
	if (n->up) {
		if (how != LEASE_SYNC_PERIODIC) {
			n->synced = true;
			priv(n)->ever_synced = true;
		}
		leases_node_sync(n, json_object_get(j, "slots"), how);
		pools_kick_all();
	}
	json_decref(j);
}

/* Read the node's slots back: when it comes up (the first time, or back
 * after being down), until that worked, then every RECONCILE_S (lease.h
 * says what each does). One at a time. */
static void node_sync(struct node *n)
{
	struct node_priv *p = priv(n);
	enum lease_sync how = !p->ever_synced ? LEASE_SYNC_FIRST : !n->synced ? LEASE_SYNC_RETURN : LEASE_SYNC_PERIODIC;

	if (p->syncing)
		return;
	p->synced_at = ev_now(loop);
	p->syncing = node_call(n, "GET", "/v1/slots", NULL, 0, sync_done, (void *)(intptr_t)how) != NULL;
}

static void info_done(struct node *n, struct http_result *res, void *data)
{
	json_t *j = NULL;

	n->checking = false;
	if (priv(n)->retired)
		return;
	if (res->status == 200)
		j = json_parse_reply(res->body, res->body_len);
	if (!j) {
		if ((res->status != 0 || res->timed_out) && ++n->failures >= DOWN_AFTER)
			node_mark_down(n, res->status ? "bad answer to GET /v1/info" : "GET /v1/info timed out");
		return;
	}
	n->failures = 0;
	n->last_ok = ev_now(loop);
	json_decref(n->info);
	n->info = j;
	n->capacity = (size_t)json_integer_value(json_object_get(j, "capacity"));
	n->slots = (size_t)json_integer_value(json_object_get(json_object_get(j, "slots"), "total"));
	if (!n->up) {
		n->up = true;
		priv(n)->unreachable[0] = '\0';
		log_info("node %s (%s) is up: cgroup %s, capacity %zu, %zu slots", n->name, n->url,
			 json_string_value(json_object_get(j, "cgroup")) ?: "?", n->capacity, n->slots);
		node_sync(n);
	} else if (!n->synced || ev_now(loop) - priv(n)->synced_at >= RECONCILE_S) {
		node_sync(n);
	}
}

static void check_node(struct node *n)
{
	if (n->checking)
		return;
	n->checking = true;
	if (!node_call(n, "GET", "/v1/info", NULL, (double)cfg->node_timeout_ms / 1000.0, info_done, NULL))
		n->checking = false;
}

static void health_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	for (struct node *n = nodes; n; n = n->next)
		check_node(n);
}

static void node_append(struct node *n)
{
	struct node **tail = &nodes;
	while (*tail)
		tail = &(*tail)->next;
	n->next = NULL;
	*tail = n;
}

/* ---- DNS discovery (see the top of this file) ---- */

/* In the child: resolve, write "A <address>\n" lines or "E <why>\n", exit. */
static void __attribute__((noreturn)) dns_child(const struct dns_group *g, int fd)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	static char out[DNS_MAX_OUT];
	size_t len = 0;
	sigset_t none;
	int r;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL); /* not libev's handlers: their fds are closed below */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm((unsigned)DNS_TIMEOUT + 1);
	if (dup2(fd, 3) < 0)
		_exit(1);
	close_range(4, ~0u, 0); /* no listening socket of poold's lingers in here */
	r = getaddrinfo(g->host, NULL, &hints, &res);
	if (r != 0) {
		len = (size_t)snprintf(out, sizeof(out), "E %s\n", r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	} else {
		for (struct addrinfo *ai = res; ai && len + INET6_ADDRSTRLEN + 4 < sizeof(out); ai = ai->ai_next) {
			char a[INET6_ADDRSTRLEN];
			const void *src = ai->ai_family == AF_INET6
					      ? (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
					      : (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
			if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
			    inet_ntop(ai->ai_family, src, a, sizeof(a)))
				len += (size_t)snprintf(out + len, sizeof(out) - len, "A %s\n", a);
		}
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(3, out + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		off += (size_t)n;
	}
	_exit(r == 0 ? 0 : 1);
}

static struct node_priv *retired_take(const char *name)
{
	for (struct node_priv **pp = &retired; *pp; pp = &(*pp)->next_retired) {
		if (strcmp((*pp)->pub.name, name) == 0) {
			struct node_priv *p = *pp;
			*pp = p->next_retired;
			p->next_retired = NULL;
			return p;
		}
	}
	return NULL;
}

/* dns = https://HOST:PORT: the URL names HOST (the name its certificate
 * must carry), the connection goes to this address (curl's CONNECT_TO). */
static int dns_tls_setup(struct dns_group *g, struct node_priv *p, const char *addr, char *url, size_t len)
{
	char *to = NULL;

	snprintf(url, len, "https://%s:%s", g->host, g->port);
	if (asprintf(&to, strchr(addr, ':') ? "%s:%s:[%s]:%s" : "%s:%s:%s:%s", g->host, g->port, addr, g->port) < 0)
		return -ENOMEM;
	p->tls = (struct http_tls_opts){
	    .ca = g->nc->tls_ca, .cert = g->nc->tls_cert, .key = g->nc->tls_key, .connect_to = to, .tls13_only = true};
	p->has_tls = true;
	return 0;
}

static void dns_add(struct dns_group *g, const char *addr)
{
	char name[400], url[400];
	struct node_priv *p;
	struct node *n;

	snprintf(name, sizeof(name), "%s-%s", g->name, addr);
	if ((n = node_find(name))) {
		priv(n)->seen = true;
		return;
	}
	if ((p = retired_take(name))) {
		p->retired = false;
		p->pub.failures = 0;
		log_info("node %s (%s) is back in the DNS answer for %s", name, p->pub.url, g->host);
	} else {
		snprintf(url, sizeof(url), strchr(addr, ':') ? "http://[%s]:%s" : "http://%s:%s", addr, g->port);
		p = calloc(1, sizeof(*p));
		if (p && g->nc->dns_tls && dns_tls_setup(g, p, addr, url, sizeof(url)) < 0) {
			free(p);
			p = NULL;
		}
		if (!p || !(p->pub.name = strdup(name)) || !(p->pub.url = strdup(url))) {
			if (p)
				free(p->pub.name);
			free(p);
			log_error("dns %s: out of memory adding node %s", g->host, name);
			return;
		}
		p->group = g;
		log_info("node %s (%s) discovered through DNS name %s", name, url, g->host);
	}
	p->seen = true;
	node_append(&p->pub);
	check_node(&p->pub);
}

static void dns_retire(struct dns_group *g, struct node *n)
{
	struct node **pp = &nodes;
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	node_mark_down(n, "vanished from DNS");
	*pp = n->next;
	n->next = NULL;
	priv(n)->retired = true;
	priv(n)->next_retired = retired;
	retired = priv(n);
	json_decref(n->info);
	n->info = NULL;
	n->capacity = n->slots = 0;
	log_info("node %s (%s) is no longer in the DNS answer for %s: down and forgotten", n->name, n->url, g->host);
}

/* A finished resolution: merge its addresses into the node list. */
static void dns_finish(struct dns_group *g)
{
	char *line, *save = NULL, why[300] = "";
	size_t count = 0;
	bool ok = WIFEXITED(g->status) && WEXITSTATUS(g->status) == 0;

	g->out = g->out ? g->out : strdup("");
	if (!g->out)
		return;
	for (struct node *n = nodes; n; n = n->next)
		priv(n)->seen = false;
	for (line = strtok_r(g->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'E' && line[1] == ' ')
			snprintf(why, sizeof(why), "%s", line + 2);
		else if (ok && line[0] == 'A' && line[1] == ' ' && count < DNS_MAX_ADDRS && strlen(line + 2) < 64) {
			count++;
			dns_add(g, line + 2);
		}
	}
	if (!ok || count == 0) {
		if (!why[0])
			snprintf(why, sizeof(why), "%s",
				 !ok && WIFSIGNALED(g->status) ? "timed out"
				 : ok			       ? "no address"
							       : "resolver failed");
		if (!g->failing)
			log_warn("dns %s: %s; keeping the nodes known so far", g->host, why);
		g->failing = true;
	} else {
		if (g->failing)
			log_info("dns %s resolves again (%zu addresses)", g->host, count);
		g->failing = false;
		for (struct node *n = nodes, *next; n; n = next) {
			next = n->next;
			if (priv(n)->group == g && !priv(n)->seen)
				dns_retire(g, n);
		}
	}
	free(g->out);
	g->out = NULL;
	g->out_len = 0;
}

/* Read what the child wrote; true at end of file (or on an error). */
static bool dns_read(struct dns_group *g)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(g->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0)
			return true;
		if (g->out_len + (size_t)n >= DNS_MAX_OUT)
			continue; /* an absurd answer: keep the head, drain the rest */
		char *o = realloc(g->out, g->out_len + (size_t)n + 1);
		if (!o)
			continue;
		memcpy(o + g->out_len, buf, (size_t)n);
		g->out = o;
		g->out_len += (size_t)n;
		g->out[g->out_len] = '\0';
	}
}

static void dns_maybe_done(struct dns_group *g)
{
	if (!g->eof || !g->exited)
		return;
	ev_timer_stop(loop, &g->deadline);
	g->pid = 0;
	dns_finish(g);
}

static void dns_io_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct dns_group *g = w->data;
	if (!dns_read(g))
		return;
	ev_io_stop(loop, &g->io);
	close(g->fd);
	g->fd = -1;
	g->eof = true;
	dns_maybe_done(g);
}

static void dns_child_cb(struct ev_loop *l, ev_child *w, int revents)
{
	struct dns_group *g = w->data;
	ev_child_stop(loop, &g->child);
	g->status = w->rstatus;
	g->exited = true;
	dns_maybe_done(g);
}

static void dns_deadline_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct dns_group *g = w->data;
	if (g->pid > 0)
		kill(g->pid, SIGKILL); /* dns_child_cb follows */
}

/* Fork the resolver child; its answer comes back through the pipe. */
static int dns_spawn(struct dns_group *g)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	if (pid == 0)
		dns_child(g, fds[1]);
	close(fds[1]);
	g->pid = pid;
	g->fd = fds[0];
	g->eof = g->exited = false;
	g->status = 0;
	return 0;
}

static void dns_timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct dns_group *g = w->data;
	int r;

	if (g->pid > 0)
		return; /* the last one still runs (it has its deadline) */
	if ((r = dns_spawn(g)) < 0) {
		log_warn("dns %s: cannot start the resolver: %s", g->host, strerror(-r));
		return;
	}
	fcntl(g->fd, F_SETFL, fcntl(g->fd, F_GETFL) | O_NONBLOCK);
	ev_io_init(&g->io, dns_io_cb, g->fd, EV_READ);
	g->io.data = g;
	ev_io_start(loop, &g->io);
	ev_child_init(&g->child, dns_child_cb, g->pid, 0);
	g->child.data = g;
	ev_child_start(loop, &g->child);
	ev_timer_init(&g->deadline, dns_deadline_cb, DNS_TIMEOUT, 0.0);
	g->deadline.data = g;
	ev_timer_start(loop, &g->deadline);
}

/* The first resolution, before the loop runs: main.c's start-up waits for
 * the nodes it finds to answer and be read back before poold listens. */
static void dns_first(struct dns_group *g)
{
	double left = DNS_TIMEOUT * 1000;
	int r;

	if ((r = dns_spawn(g)) < 0) {
		log_warn("dns %s: cannot start the resolver: %s", g->host, strerror(-r));
		return;
	}
	while (!g->eof && left > 0) {
		struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
		double t0 = ev_time();
		if (poll(&pfd, 1, (int)left) > 0)
			g->eof = dns_read(g);
		left -= (ev_time() - t0) * 1000;
	}
	if (!g->eof)
		kill(g->pid, SIGKILL);
	close(g->fd);
	g->fd = -1;
	while (waitpid(g->pid, &g->status, 0) < 0 && errno == EINTR)
		;
	g->pid = 0;
	dns_finish(g);
}

static int dns_group_new(const struct node_conf *nc, struct wp_error *err)
{
	const char *target = nc->url + 4, *colon = strrchr(target, ':');
	struct dns_group *g = calloc(1, sizeof(*g));

	if (!g || !colon || !(g->name = strdup(nc->name)) || !(g->host = strndup(target, (size_t)(colon - target))) ||
	    !(g->port = strdup(colon + 1)))
		return wp_error_set(err, ENOMEM, "out of memory");
	g->fd = -1;
	g->nc = nc;
	g->next = groups;
	groups = g;
	g->timer.data = g;
	ev_timer_init(&g->timer, dns_timer_cb, (double)nc->dns_interval_ms / 1000.0,
		      (double)nc->dns_interval_ms / 1000.0);
	ev_timer_start(loop, &g->timer);
	log_info("node group %s: resolving %s every %.0f s", g->name, target, (double)nc->dns_interval_ms / 1000.0);
	dns_first(g);
	return 0;
}

int nodes_init(struct ev_loop *l, struct http_client *hc, const struct psettings *st, struct wp_error *err)
{
	loop = l;
	client = hc;
	cfg = st;
	for (const struct node_conf *nc = st->nodes; nc; nc = nc->next) {
		if (strncmp(nc->url, "dns:", 4) == 0) {
			if (dns_group_new(nc, err) < 0)
				return -ENOMEM;
			continue;
		}
		struct node_priv *p = calloc(1, sizeof(*p));
		if (!p || !(p->pub.name = strdup(nc->name)) || !(p->pub.url = strdup(nc->url)))
			return wp_error_set(err, ENOMEM, "out of memory");
		if (nc->tls_ca) { /* settings.c: every https:// node has its CA, certificate and key */
			p->tls = (struct http_tls_opts){
			    .ca = nc->tls_ca, .cert = nc->tls_cert, .key = nc->tls_key, .tls13_only = true};
			p->has_tls = true;
		}
		node_append(&p->pub);
	}
	ev_timer_init(&health_timer, health_cb, 0.0, (double)st->health_interval_ms / 1000.0);
	ev_timer_start(loop, &health_timer);
	return 0;
}

void nodes_stop(void)
{
	ev_timer_stop(loop, &health_timer);
	for (struct dns_group *g = groups; g; g = g->next) {
		ev_timer_stop(loop, &g->timer);
		ev_timer_stop(loop, &g->deadline);
		if (g->pid > 0) {
			kill(g->pid, SIGKILL);
			ev_io_stop(loop, &g->io);
			ev_child_stop(loop, &g->child);
			close(g->fd);
			g->fd = -1;
			g->pid = 0;
		}
	}
}
