/* discovery.c — see discovery.h.
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
#include "discovery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "node.h"

#define DNS_TIMEOUT   5.0   /* seconds one resolution may take */
#define DNS_MAX_OUT   65536 /* bytes of answer read from the resolver child */
#define DNS_MAX_ADDRS 1024  /* addresses taken from one answer */

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
static struct dns_group *groups;

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

static bool in_answer(const struct node *n, struct node *const *found, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (found[i] == n)
			return true;
	return false;
}

/* An address of the answer: its node, added (or back) when new. */
static struct node *dns_add(struct dns_group *g, const char *addr)
{
	char name[400], url[400];
	struct node *n;
	bool back = false;

	snprintf(name, sizeof(name), "%s-%s", g->name, addr);
	if ((n = node_find(name)))
		return n;
	if (g->nc->dns_tls) {
		/* dns = https://HOST:PORT: the URL names HOST (the name the node's
		 * certificate must carry); the connection goes to this address
		 * (curl's CONNECT_TO). The string stays with the node. */
		char *to = NULL;
		if (asprintf(&to, strchr(addr, ':') ? "%s:%s:[%s]:%s" : "%s:%s:%s:%s", g->host, g->port, addr,
			     g->port) < 0) {
			log_error("dns %s: out of memory adding node %s", g->host, name);
			return NULL;
		}
		struct http_tls_opts tls = {.ca = g->nc->tls_ca,
					    .cert = g->nc->tls_cert,
					    .key = g->nc->tls_key,
					    .connect_to = to,
					    .tls13_only = true};
		snprintf(url, sizeof(url), "https://%s:%s", g->host, g->port);
		n = node_discovered(name, url, &tls, g, &back);
		if (!n || back) /* a node back from retirement kept its own */
			free(to);
	} else {
		snprintf(url, sizeof(url), strchr(addr, ':') ? "http://[%s]:%s" : "http://%s:%s", addr, g->port);
		n = node_discovered(name, url, NULL, g, &back);
	}
	if (!n) {
		log_error("dns %s: out of memory adding node %s", g->host, name);
		return NULL;
	}
	if (back)
		log_info("node %s (%s) is back in the DNS answer for %s", name, n->url, g->host);
	else
		log_info("node %s (%s) discovered through DNS name %s", name, url, g->host);
	return n;
}

static void dns_retire(struct dns_group *g, struct node *n)
{
	node_retire(n, "vanished from DNS");
	log_info("node %s (%s) is no longer in the DNS answer for %s: down and forgotten", n->name, n->url, g->host);
}

/* A finished resolution: merge its addresses into the node list. */
static void dns_finish(struct dns_group *g)
{
	static struct node *found[DNS_MAX_ADDRS];
	char *line, *save = NULL, why[300] = "";
	size_t count = 0;
	bool ok = WIFEXITED(g->status) && WEXITSTATUS(g->status) == 0;

	g->out = g->out ? g->out : strdup("");
	if (!g->out)
		return;
	for (line = strtok_r(g->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'E' && line[1] == ' ')
			snprintf(why, sizeof(why), "%s", line + 2);
		else if (ok && line[0] == 'A' && line[1] == ' ' && count < DNS_MAX_ADDRS && strlen(line + 2) < 64) {
			struct node *n = dns_add(g, line + 2);
			if (n)
				found[count++] = n;
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
		for (struct node *n = node_first(), *next; n; n = next) {
			next = n->next;
			if (node_owner(n) == g && !in_answer(n, found, count))
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

int discovery_add(struct ev_loop *l, const struct node_conf *nc, struct wp_error *err)
{
	const char *target = nc->url + 4, *colon = strrchr(target, ':');
	struct dns_group *g = calloc(1, sizeof(*g));

	loop = l;
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

void discovery_stop(void)
{
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
