/* sandboxd — one per host, root: owns the slots (see docs/architecture.md, and
 * docs/sandboxd-api.md for its API).
 *
 * Start-up: config, languages (and their versions, asked once), a private
 * mount namespace so that every mount we make disappears with us, the state
 * dir on a tmpfs of its own, the cgroup root (v1 or v2, detected), then the
 * HTTP listeners. SIGTERM/SIGINT: stop accepting, destroy every slot, wait
 * until each is gone, remove what we created, exit 0. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cgroup.h"
#include "checker.h"
#include "cleanup.h"
#include "config.h"
#include "http_server.h"
#include "tls.h"

#include <openssl/ssl.h>
#include <time.h>
#include "language.h"
#include "log.h"
#include "pch.h"
#include "sdnotify.h"
#include "settings.h"
#include "slot.h"
#include "slot_init.h"

static struct settings cfg;
static struct http_server *servers[2];
static ev_signal sig_term, sig_int, sig_hup;
static int exit_code;
static bool stopping;

static void usage(FILE *f)
{
	fprintf(f, "Usage: sandboxd --config FILE [--check-config] [--log-level LEVEL]\n"
		   "\n"
		   "Keeps pre-isolated sandbox slots and runs code in them (runs as root).\n"
		   "\n"
		   "  -c, --config FILE     sandboxd.conf (default /etc/warmpool/sandboxd.conf)\n"
		   "      --check-config    validate the config and the language files, then exit\n"
		   "  -l, --log-level L     debug, info, warn or error (overrides the config)\n"
		   "  -h, --help            this text\n"
		   "  -V, --version         print the version\n"
		   "\n"
		   "Example: sandboxd --config config/sandboxd.conf\n"
		   "API: curl --unix-socket /run/warmpool/sandboxd.sock http://x/v1/info\n");
}

/* An interpreter is usable when its command exists and every file it names
 * under /opt/warmpool (the slot's view of runtimes_dir) is there, a regular
 * file the slot's uid can read. */
static void check_interpreter(struct language *l, const char *runtimes)
{
	static const char prefix[] = "/opt/warmpool/";

	if (!l->interpreter_ok)
		return;
	for (char **a = l->interpreter_argv; *a; a++) {
		char path[4096];
		struct stat st;

		if (strncmp(*a, prefix, sizeof(prefix) - 1) != 0)
			continue;
		if (!runtimes) {
			log_warn("language %s: interpreter needs `%s` but there is no runtimes_dir", l->name, *a);
			l->interpreter_ok = false;
			return;
		}
		snprintf(path, sizeof(path), "%s/%s", runtimes, *a + sizeof(prefix) - 1);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IROTH)) {
			log_warn("language %s: interpreter file `%s` is missing or not world-readable", l->name, path);
			l->interpreter_ok = false;
			return;
		}
	}
}

/* First line of `argv --version` (stdout or stderr), bounded to 10 s. */
static char *probe_version(char **argv)
{
	int pfd[2];
	char buf[512];
	size_t len = 0;
	pid_t pid;

	if (!argv || pipe2(pfd, O_CLOEXEC) < 0)
		return NULL;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return NULL;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (double waited = 0; len < sizeof(buf) - 1 && waited < 10;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (poll(&p, 1, 200) == 0) {
			waited += 0.2;
			continue;
		}
		ssize_t n = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(pfd[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return len ? strdup(buf) : NULL;
}

/* Our own mount namespace: the state tmpfs and every work dir mount vanish
 * with the process, whatever way it ends. The listening socket is bound on
 * the host's filesystem all the same (same inodes, only mounts are private). */
static int setup_state(const struct settings *s, struct wp_error *err)
{
	char opts[64];

	if (unshare(CLONE_NEWNS) < 0)
		return wp_error_errno(err, "unshare mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return wp_error_errno(err, "make mounts private");
	/* parents too (/run/warmpool on a fresh boot) */
	for (char *p = s->state_dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		int r = mkdir(s->state_dir, c ? 0755 : 0711);
		*p = c;
		if (r < 0 && errno != EEXIST)
			return wp_error_errno(err, "mkdir `%s`", s->state_dir);
		if (!c)
			break;
	}
	snprintf(opts, sizeof(opts), "size=16M,mode=0711");
	if (mount("tmpfs", s->state_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return wp_error_errno(err, "mount tmpfs on `%s`", s->state_dir);
	return 0;
}

static void shutdown_done(void *data)
{
	ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (stopping) {
		log_warn("second signal: exiting now");
		exit(1);
	}
	stopping = true;
	sd_notify_state("STOPPING=1");
	log_info("signal %d: stopping (destroying %zu slots)", w->signum, slot_total());
	for (size_t i = 0; i < ARRAY_SIZE(servers); i++)
		if (servers[i])
			http_server_stop(servers[i], NULL, NULL);
	slots_shutdown(shutdown_done, NULL);
}

/* ---- TLS: contexts for the tls:// listeners, made again on SIGHUP ---- */

static SSL_CTX *tls_ctx_make(struct wp_error *err)
{
	const struct tls_server_conf tc = {.cert_file = cfg.tls_cert,
					   .key_file = cfg.tls_key,
					   .client_ca = cfg.tls_client_ca,
					   .client_name = cfg.tls_client_name,
					   .tls13_only = true};
	return tls_server_ctx_new(&tc, err);
}

static void tls_log_expiry(SSL_CTX *ctx)
{
	int64_t not_after;

	if (tls_ctx_not_after(ctx, &not_after) < 0)
		return;
	cfg.tls_not_after = not_after;
	log_info("TLS certificate %s: expires in %.1f days", cfg.tls_cert,
		 (double)(not_after - (int64_t)time(NULL)) / 86400);
}

/* The files are read again; connections open keep the context they began
 * with, new ones get the new one. A bad file keeps the old context. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct wp_error err = {0};
	SSL_CTX *ctx;
	bool any = cfg.listen_is_tls || cfg.listen_tcp_is_tls;

	if (!any) {
		log_info("SIGHUP: no TLS listener, nothing to reload");
		return;
	}
	if (!(ctx = tls_ctx_make(&err))) {
		log_error("SIGHUP: TLS certificates not reloaded, the old ones stay: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(servers); i++)
		if (servers[i] && (i == 0 ? cfg.listen_is_tls : cfg.listen_tcp_is_tls))
			http_server_set_tls(servers[i], ctx);
	log_info("SIGHUP: TLS certificates reloaded from %s", cfg.tls_cert);
	tls_log_expiry(ctx);
	tls_ctx_free(ctx); /* the servers hold their references */
}

static int ensure_parent_dir(const char *address)
{
	if (strncmp(address, "unix:", 5) != 0)
		return 0;
	cleanup_free char *dir = strdup(address + 5);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},	 {"check-config", no_argument, NULL, 'k'},
	    {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},	 {NULL, 0, NULL, 0}};
	const char *config_path = "/etc/warmpool/sandboxd.conf", *level_arg = NULL;
	bool check_only = false;
	struct wp_error err = {0};
	struct language **langs = NULL;
	size_t n_langs = 0;
	struct cgroup_root *cgroot = NULL;
	char host[256] = "localhost";
	int c;

	while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'k': check_only = true; break;
		case 'l': level_arg = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("sandboxd %s\n", WARMPOOL_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sandboxd: unexpected argument `%s`\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* argv strings are contiguous: remember the area for slot_init */
	slot_init_argv_area = argv[0];
	slot_init_argv_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
	log_init("sandboxd", LOG_INFO);
	if (settings_load(config_path, &cfg, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	if (level_arg && log_parse_level(level_arg, &cfg.log_level) < 0) {
		log_error("unknown log level `%s`", level_arg);
		return 2;
	}
	log_init("sandboxd", cfg.log_level);
	sandboxd_settings = &cfg;
	if (language_load_dir(cfg.languages_dir, &langs, &n_langs, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	for (size_t i = 0; i < n_langs; i++) {
		if (langs[i]->available)
			langs[i]->version = probe_version(langs[i]->version_argv);
		check_interpreter(langs[i], cfg.runtimes_dir);
		if (!langs[i]->available)
			log_warn("language %s: NOT AVAILABLE: %s (%s)", langs[i]->name, langs[i]->unavailable,
				 langs[i]->file);
		else
			log_info("language %s: %s%s", langs[i]->name,
				 langs[i]->version ? langs[i]->version : "(no version)",
				 langs[i]->interpreter_ok ? ", interpreter" : "");
	}
	if (!cfg.runtimes_dir)
		log_warn("no runtimes_dir (and no sandboxd/runtimes or share/warmpool/runtimes next to the binary): "
			 "slots get no /opt/warmpool and no interpreter");
	if (check_only) {
		printf("%s: ok (%zu languages, capacity %llu)\n", config_path, n_langs,
		       (unsigned long long)cfg.capacity);
		language_free_all(langs, n_langs);
		settings_free(&cfg);
		return 0;
	}
	if (geteuid() != 0) {
		log_error("sandboxd must run as root (it creates namespaces, mounts and cgroups)");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	gethostname(host, sizeof(host) - 1);

	if (cgroup_root_open("/sys/fs/cgroup", cfg.cgroup_name,
			     strcmp(cfg.cgroup_mode, "auto") == 0 ? NULL : cfg.cgroup_mode, &cgroot, &err) < 0) {
		log_error("cgroups: %s", err.msg);
		return 1;
	}
	log_info("cgroup %s (%s)", cgroup_mode_name(cgroup_root_mode(cgroot)), cgroup_root_controllers(cgroot));
	if (setup_state(&cfg, &err) < 0 ||
	    (cfg.runtimes_dir && mounts_runtimes_copy(cfg.state_dir, cfg.runtimes_dir, &cfg.runtimes_copy, &err) < 0)) {
		log_error("%s", err.msg);
		return 1;
	}

	/* one loop, libev's default: every module reaches it as EV_DEFAULT */
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	if (pch_init(cfg.state_dir, langs, n_langs, &err) < 0 || slots_init(cgroot, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	struct api_ctx ctx = {.languages = langs, .n_languages = n_langs, .cgroot = cgroot, .node_name = host};
	api_init(&ctx);
	checker_set_languages(langs, n_langs);

	struct http_limits hl;
	http_limits_default(&hl);
	hl.max_body_bytes = cfg.max_body;
	hl.request_timeout = 120; /* a large upload from poold over a slow link */
	const char *addrs[2] = {cfg.listen, cfg.listen_tcp};
	for (size_t i = 0; i < 2; i++) {
		int r = -ENOMEM;
		if (!addrs[i] || !addrs[i][0])
			continue;
		servers[i] = http_server_new(loop, &hl, api_handle, NULL);
		if (!servers[i] || (r = ensure_parent_dir(addrs[i])) < 0 ||
		    (r = http_server_listen(servers[i], addrs[i])) < 0) {
			log_error("listen on `%s`: %s", addrs[i], strerror(-r));
			return 1;
		}
		if (i == 0 ? cfg.listen_is_tls : cfg.listen_tcp_is_tls) {
			SSL_CTX *tctx = tls_ctx_make(&err);
			if (!tctx) {
				log_error("TLS on `%s`: %s", addrs[i], err.msg);
				return 1;
			}
			r = http_server_set_tls(servers[i], tctx);
			tls_log_expiry(tctx);
			tls_ctx_free(tctx);
			if (r < 0)
				return 1;
			log_info("listening on %s (mutual TLS 1.3, client certificates from %s%s%s)", addrs[i],
				 cfg.tls_client_ca, cfg.tls_client_name ? ", named " : "",
				 cfg.tls_client_name ? cfg.tls_client_name : "");
			continue;
		}
		log_info("listening on %s", addrs[i]);
	}

	ev_signal_init(&sig_term, on_signal, SIGTERM);
	ev_signal_start(loop, &sig_term);
	ev_signal_init(&sig_int, on_signal, SIGINT);
	ev_signal_start(loop, &sig_int);
	ev_signal_init(&sig_hup, on_hup, SIGHUP);
	ev_signal_start(loop, &sig_hup);
	if (cfg.runtimes_dir)
		log_info("runtimes %s (copied to %s, at /opt/warmpool in every slot)", cfg.runtimes_dir,
			 cfg.runtimes_copy);
	log_info("ready: capacity %llu slots, uids %llu-%llu, state in %s", (unsigned long long)cfg.capacity,
		 (unsigned long long)cfg.uid_base, (unsigned long long)(cfg.uid_base + cfg.capacity - 1),
		 cfg.state_dir);

	sd_notify_state("READY=1\nSTATUS=serving");
	ev_run(loop, 0);

	for (size_t i = 0; i < ARRAY_SIZE(servers); i++) {
		if (!servers[i])
			continue;
		http_server_free(servers[i]);
		if (addrs[i] && strncmp(addrs[i], "unix:", 5) == 0)
			unlink(addrs[i] + 5);
	}
	umount2(cfg.state_dir, MNT_DETACH);
	rmdir(cfg.state_dir);
	/* leave no trace: the root group goes too (the next start recreates it) */
	if (cgroup_root_remove(cgroot, &err) < 0)
		log_warn("%s", err.msg);
	language_free_all(langs, n_langs);
	log_info("stopped");
	settings_free(&cfg);
	return exit_code;
}
