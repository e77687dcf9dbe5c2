/* poold — the pool manager and public API of warmpool (docs/architecture.md).
 *
 * Start-up: config, then nodes are checked and their slot lists read back
 * (the lease table is rebuilt from the slots' labels) before poold listens:
 * a request that arrived earlier could lease a fresh slot for an identifier
 * whose old slot simply was not known yet. SIGTERM/SIGINT: stop accepting,
 * let running executions finish, leave every session leased on its node
 * (the next poold finds them), exit 0. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "certs.h"
#include "cleanup.h"
#include "http_client.h"
#include "http_server.h"
#include "lease.h"
#include "log.h"
#include "node.h"
#include "ops.h"
#include "pool.h"
#include "sdnotify.h"
#include "settings.h"
#include "telemetry.h"
#include "tls.h"

#define STARTUP_SYNC_LIMIT 10.0

static struct psettings cfg;
static struct http_server *servers[16];
static size_t n_servers;
static struct http_server *tls_servers[8]; /* listen_tls: also in servers[] */
static size_t n_tls_servers;
static ev_signal sig_term, sig_int, sig_hup;
static const char *config_file;
static ev_timer wait_timer;
static double started;
static bool stopping;
static double idle_since; /* stopping: when the last execution and connection ended */
static struct http_client *client;

/* After the last execution, node calls still in flight (a released
 * session's DELETE, a refill's create) may finish this long: a release
 * answered 204 must not leave its slot labelled for the next start. */
#define STOP_CALLS_WAIT 5.0

static void usage(FILE *f)
{
	fprintf(f, "Usage: poold --config FILE [--check-config] [--log-level LEVEL]\n"
		   "       poold --hash-token < token-file\n"
		   "\n"
		   "Keeps warm pools of sandbox slots on sandboxd nodes, leases one per session\n"
		   "identifier, and serves /execute, the Azure dynamic sessions API, /v1 and /metrics.\n"
		   "\n"
		   "  -c, --config FILE   poold.conf (default /etc/warmpool/poold.conf)\n"
		   "      --check-config  validate the config, explain it, exit (0 = valid)\n"
		   "      --hash-token    read a token on stdin, print the SHA-256 to put in [auth]\n"
		   "  -l, --log-level L   debug, info, warn or error (overrides the config)\n"
		   "  -h, --help          this text\n"
		   "  -V, --version       print the version\n"
		   "\n"
		   "SIGHUP re-reads the config: pool sizes, timeouts, limits, tokens and rate limits\n"
		   "change at once, sessions stay; nodes, listen addresses and new pools need a restart.\n"
		   "\n"
		   "Examples:\n"
		   "  poold --config config/poold.conf\n"
		   "  head -c 32 /dev/urandom | base64 > token; poold --hash-token < token\n"
		   "  curl -s localhost:8080/execute -d '{\"language\":\"python\",\"code\":\"print(1)\",\n"
		   "       \"user_id\":\"u1\",\"test_cases\":[{\"input\":\"\",\"expected_output\":\"1\"}]}'\n");
}

static int hash_token(void)
{
	char buf[4097], out[65];
	size_t n = fread(buf, 1, sizeof(buf) - 1, stdin);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0 || n >= sizeof(buf) - 1) {
		fprintf(stderr, "poold: give a token of 1 to 4095 bytes on stdin\n");
		return 2;
	}
	auth_hash_token(buf, n, out);
	printf("%s\n", out);
	return 0;
}

static void explain(const char *path)
{
	printf("%s: valid\n", path);
	for (size_t i = 0; i < cfg.n_listen; i++)
		printf("  listen      %s%s\n", cfg.listen[i],
		       tls_address_is_loopback(cfg.listen[i]) ? " (loopback)" : "");
	for (size_t i = 0; i < cfg.n_listen_tls; i++)
		printf("  listen_tls  %s (TLS, certificate %s)\n", cfg.listen_tls[i], cfg.tls_cert);
	printf("  auth        %zu token(s)%s\n", auth_count(cfg.auth),
	       auth_count(cfg.auth) ? "" : " — no authentication (loopback only)");
	for (struct node_conf *n = cfg.nodes; n; n = n->next)
		printf("  node        %-12s %s%s\n", n->name, n->url, n->tls_ca ? " (mutual TLS)" : "");
	for (struct pool_conf *p = cfg.pools; p; p = p->next) {
		cleanup_free char *lim = json_dumps(p->limits, JSON_COMPACT);
		char warm[32], max[24];
		if (p->warm_pct)
			snprintf(warm, sizeof(warm), "%u%% of capacity", p->warm_pct);
		else
			snprintf(warm, sizeof(warm), p->warm_auto ? "auto" : "%llu", (unsigned long long)p->warm);
		snprintf(max, sizeof(max), p->max_auto ? "auto" : "%llu", (unsigned long long)p->max);
		printf("  pool        %-12s %s%s, warm %s, max %s, idle %llus, lifetime %llus%s, limits %s\n", p->name,
		       p->language, p->stateful ? " (stateful)" : "", warm, max,
		       (unsigned long long)(p->idle_timeout_ms / 1000), (unsigned long long)(p->max_lifetime_ms / 1000),
		       strcmp(p->name, cfg.default_pool) == 0 ? " (default_pool)" : "", lim ? lim : "{}");
	}
	printf("  queue       %llu waiting per pool for up to %llus; %llu per session\n",
	       (unsigned long long)cfg.max_queue, (unsigned long long)(cfg.queue_timeout_ms / 1000),
	       (unsigned long long)cfg.session_queue);
	printf("  /execute    fair queue of %llu (%llu per user_id), each waits up to %llus\n",
	       (unsigned long long)cfg.execute_max_queue, (unsigned long long)cfg.execute_user_queue,
	       (unsigned long long)(cfg.execute_queue_timeout_ms / 1000));
	printf("  rate limit  %g/s (burst %g) per session, %s per client\n", cfg.session_rate, cfg.session_burst,
	       cfg.client_rate > 0 ? "set" : "none");
}

static void stop_wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	size_t conns = 0;
	for (size_t i = 0; i < n_servers; i++)
		conns += http_server_connections(servers[i]);
	if (!leases_idle() || conns) {
		idle_since = 0;
		return;
	}
	if (!idle_since)
		idle_since = ev_now(loop);
	size_t calls = http_client_inflight(client);
	if (calls && ev_now(loop) - idle_since < STOP_CALLS_WAIT)
		return;
	if (calls)
		log_warn("stopping with %zu node calls unanswered after %.0f s", calls, STOP_CALLS_WAIT);
	ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (stopping) {
		log_warn("second signal: exiting now");
		exit(1);
	}
	stopping = true;
	sd_notify_state("STOPPING=1");
	log_info("signal %d: stopping; running executions finish, sessions stay leased on their nodes", w->signum);
	api_stop();
	for (size_t i = 0; i < n_servers; i++)
		http_server_stop(servers[i], NULL, NULL);
	ops_stop();
	pools_stop();
	nodes_stop();
	ev_timer_stop(loop, &wait_timer);
	ev_timer_init(&wait_timer, stop_wait_cb, 0.05, 0.05);
	ev_timer_start(loop, &wait_timer);
}

/* SIGHUP (systemctl reload): re-read the file and apply what can change
 * without dropping a session: pool sizes, timeouts and limits, tokens,
 * rate limits. Listen addresses, nodes and the set of pools need a restart
 * (said in the log). A file that does not parse changes nothing. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct psettings fresh;
	struct wp_error err = {0};

	sd_notify_state("RELOADING=1");
	if (psettings_load(config_file, &fresh, &err) < 0) {
		log_error("reload: %s; keeping the running configuration", err.msg);
		psettings_free(&fresh);
		sd_notify_state("READY=1");
		return;
	}
	for (struct pool_conf *pc = fresh.pools; pc; pc = pc->next) {
		struct pool *p = pool_find(pc->name);
		if (!p) {
			log_warn("reload: pool %s is new: it needs a restart", pc->name);
			continue;
		}
		if (strcmp(p->language, pc->language) != 0 || p->stateful != pc->stateful)
			log_warn("reload: pool %s changed language or stateful: that needs a restart", pc->name);
		pool_reload(p, pc);
	}
	/* tokens and rate limits: swap in the new ones */
	struct auth *old = cfg.auth;
	cfg.auth = fresh.auth;
	fresh.auth = old;
	cfg.session_rate = fresh.session_rate;
	cfg.session_burst = fresh.session_burst;
	cfg.client_rate = fresh.client_rate;
	cfg.client_burst = fresh.client_burst;
	cfg.queue_timeout_ms = fresh.queue_timeout_ms;
	cfg.max_queue = fresh.max_queue;
	cfg.execute_max_queue = fresh.execute_max_queue;
	cfg.execute_user_queue = fresh.execute_user_queue;
	cfg.execute_queue_timeout_ms = fresh.execute_queue_timeout_ms;
	ops_reload();
	api_reload();
	certs_reload(tls_servers, n_tls_servers);
	log_info("reloaded %s: %zu pools, %zu tokens", config_file, fresh.n_pools, auth_count(cfg.auth));
	sd_notify_state("READY=1");
	psettings_free(&fresh);
}

/* A contest queues thousands of submissions, each on its connection: the
 * soft fd limit (often 1024) up to the hard one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("raising the open file limit to %llu: %m", (unsigned long long)rl.rlim_max);
}

/* listen_tls: the same servers, with TLS (certs.c holds the context). */
static int listen_tls_all(struct ev_loop *loop, const struct http_limits *hl)
{
	for (size_t i = 0; i < cfg.n_listen_tls; i++) {
		struct http_server *s = http_server_new(loop, hl, api_handle, NULL);
		int r = -ENOMEM;
		if (!s || (r = certs_apply(s)) < 0 || (r = http_server_listen(s, cfg.listen_tls[i])) < 0) {
			log_error("listen_tls on `%s`: %s", cfg.listen_tls[i], strerror(-r));
			http_server_free(s);
			return -1;
		}
		servers[n_servers++] = tls_servers[n_tls_servers++] = s;
		log_info("listening on https://%s (TLS 1.2+, certificate %s)", cfg.listen_tls[i], cfg.tls_cert);
	}
	return 0;
}

static int listen_all(struct ev_loop *loop)
{
	struct http_limits hl;
	http_limits_default(&hl);
	hl.max_body_bytes = cfg.max_upload > cfg.max_body ? cfg.max_upload : cfg.max_body;
	hl.max_connections = cfg.max_connections; /* default: the judged queue + 1024 */
	hl.max_connections_per_client = cfg.max_connections_per_client;
	for (size_t i = 0; i < cfg.n_listen; i++) {
		int r = -ENOMEM;
		servers[n_servers] = http_server_new(loop, &hl, api_handle, NULL);
		if (!servers[n_servers] || (r = http_server_listen(servers[n_servers], cfg.listen[i])) < 0) {
			log_error("listen on `%s`: %s", cfg.listen[i], strerror(-r));
			return -1;
		}
		n_servers++;
		log_info("listening on http://%s", cfg.listen[i]);
	}
	return listen_tls_all(loop, &hl);
}

/* Listen once every node answered (and was read back) or the limit passed. */
static void startup_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bool all = true;
	for (struct node *n = node_first(); n; n = n->next)
		all &= (n->up && n->synced) || (!n->up && n->failures > 0);
	if (!all && ev_now(loop) - started < STARTUP_SYNC_LIMIT)
		return;
	ev_timer_stop(loop, w);
	if (!all)
		log_warn("not every node answered within %.0f s; serving anyway", STARTUP_SYNC_LIMIT);
	if (listen_all(loop) < 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	size_t total = 0;
	for (struct node *n = node_first(); n; n = n->next)
		total++;
	log_info("ready: %zu of %zu nodes up, %zu sessions recovered", nodes_up(), total, lease_count());
	sd_notify_state("READY=1\nSTATUS=serving");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"check-config", no_argument, NULL, 'k'},
					     {"hash-token", no_argument, NULL, 't'},
					     {"log-level", required_argument, NULL, 'l'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *config_path = "/etc/warmpool/poold.conf", *level_arg = NULL;
	bool check_only = false;
	struct wp_error err = {0};
	int c;

	while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'k': check_only = true; break;
		case 't': return hash_token();
		case 'l': level_arg = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("poold %s\n", WARMPOOL_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "poold: unexpected argument `%s`\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_init("poold", LOG_INFO);
	if (psettings_load(config_path, &cfg, &err) < 0) {
		if (check_only)
			fprintf(stderr, "%s\n", err.msg);
		else
			log_error("%s", err.msg);
		return 1;
	}
	if (check_only) {
		explain(config_path);
		psettings_free(&cfg);
		return 0;
	}
	if (level_arg && log_parse_level(level_arg, &cfg.log_level) < 0) {
		log_error("unknown log level `%s`", level_arg);
		return 2;
	}
	log_init("poold", cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	client = http_client_new(loop);
	struct metrics *m = telemetry_init();
	if (!client || !m || nodes_init(loop, client, &cfg, &err) < 0 || pools_init(loop, &cfg, &err) < 0 ||
	    leases_init(loop, &cfg) < 0) {
		log_error("start-up: %s", err.msg[0] ? err.msg : "out of memory");
		return 1;
	}
	if (certs_init(&cfg, m, &err) < 0) {
		log_error("TLS: %s", err.msg);
		return 1;
	}
	ops_init(loop, &cfg, m);
	api_init(loop, &cfg, m);

	ev_signal_init(&sig_term, on_signal, SIGTERM);
	ev_signal_start(loop, &sig_term);
	ev_signal_init(&sig_int, on_signal, SIGINT);
	ev_signal_start(loop, &sig_int);
	ev_signal_init(&sig_hup, on_hup, SIGHUP);
	ev_signal_start(loop, &sig_hup);
	config_file = config_path;
	started = ev_now(loop);
	ev_timer_init(&wait_timer, startup_cb, 0.02, 0.02);
	ev_timer_start(loop, &wait_timer);

	ev_run(loop, 0);

	for (size_t i = 0; i < n_servers; i++)
		http_server_free(servers[i]);
	http_client_free(client);
	certs_free();
	metrics_free(m);
	log_info("stopped");
	psettings_free(&cfg);
	return 0;
}
