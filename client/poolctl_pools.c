/* poolctl_pools.c — the admin's commands: pools (ls, show, resize with a
 * progress bar while the pool fills, set, drain, undrain), nodes, langs, and
 * top, the live view for contest day. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "poolctl.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps up to s seconds; false when interrupted by Ctrl-C. */
static bool pause_s(double s)
{
	double end = now_s() + s;
	while (!interrupted && now_s() < end) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return !interrupted;
}

static int columns(FILE *f)
{
	struct winsize ws;
	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* ---- pools ------------------------------------------------------------ */

static const char pools_help[] =
    "Usage: poolctl pools ls\n"
    "       poolctl pools show NAME\n"
    "       poolctl pools resize NAME --warm N [--max M] [--wait [--wait-timeout SECS]]\n"
    "       poolctl pools set NAME [--idle-timeout DUR] [--max-lifetime DUR]\n"
    "       poolctl pools drain NAME\n"
    "       poolctl pools undrain NAME\n"
    "\n"
    "A pool keeps `warm` sandboxes of one language ready, and leases at most `max`.\n"
    "`resize` takes effect at once: growing creates sandboxes in the background,\n"
    "shrinking destroys ready ones above `warm` (never a leased one). With --wait it\n"
    "follows the pool until it has its ready sandboxes, on a terminal with a\n"
    "progress bar, then says how long it took. `drain` stops new leases (sessions\n"
    "already leased carry on); `undrain` opens the pool again. Changes need an\n"
    "admin token.\n"
    "\n"
    "  -w, --warm N             ready sandboxes to keep\n"
    "  -m, --max M              most sandboxes at once, leased or not\n"
    "      --wait               wait until N sandboxes are ready (or as many as max allows)\n"
    "      --wait-timeout SECS  give up waiting after SECS (default 600; exit 3)\n"
    "      --idle-timeout DUR   end a session idle that long (90, 30s, 5m, 1h)\n"
    "      --max-lifetime DUR   end a session that old\n"
    "\n"
    "Examples:\n"
    "  poolctl pools ls\n"
    "  poolctl pools resize python --warm 200 --max 1000 --wait     # before the contest\n"
    "  poolctl pools set python --idle-timeout 10m --max-lifetime 3h\n"
    "  poolctl pools drain python                                   # after it\n";

static void pools_table(const struct wp_pools *l, const char *indent)
{
	struct ctl_table t;
	char a[32], b[32];

	ctl_table_init(&t, "llrrrrrrrrl", "POOL", "LANGUAGE", "READY", "WARM", "LEASED", "MAX", "CREATING", "QUEUED",
		       "IDLE", "LIFETIME", "STATE", NULL);
	for (size_t i = 0; i < wp_pools_count(l); i++) {
		const struct wp_pool *p = wp_pools_at(l, i);
		ctl_table_cell(&t, "%s", wp_pool_name(p));
		ctl_table_cell(&t, "%s", wp_pool_language(p));
		ctl_table_cell(&t, "%lld", wp_pool_ready(p));
		ctl_table_cell(&t, "%lld", wp_pool_warm(p));
		ctl_table_cell(&t, "%lld", wp_pool_leased(p));
		ctl_table_cell(&t, "%lld", wp_pool_max(p));
		ctl_table_cell(&t, "%lld", wp_pool_creating(p));
		ctl_table_cell(&t, "%lld", wp_pool_queued(p));
		ctl_table_cell(&t, "%s", ctl_span((double)wp_pool_idle_timeout_s(p), a, sizeof(a)));
		ctl_table_cell(&t, "%s", ctl_span((double)wp_pool_max_lifetime_s(p), b, sizeof(b)));
		ctl_table_cell(&t, "%s", wp_pool_draining(p) ? "draining" : "open");
	}
	ctl_table_print(&t, stdout, indent);
	ctl_table_free(&t);
	for (size_t i = 0; i < wp_pools_count(l); i++) {
		const struct wp_pool *p = wp_pools_at(l, i);
		if (wp_pool_last_error(p))
			printf("%s%s: %lld slot creations failed; last: %s\n", indent ? indent : "", wp_pool_name(p),
			       wp_pool_create_failures(p), wp_pool_last_error(p));
	}
}

static void print_pool(const struct wp_pool *p)
{
	char a[32], b[32];

	printf("pool             %s\n", wp_pool_name(p));
	printf("language         %s\n", wp_pool_language(p));
	printf("state            %s\n", wp_pool_draining(p) ? "draining (no new leases)" : "open");
	printf("ready            %lld of warm %lld\n", wp_pool_ready(p), wp_pool_warm(p));
	printf("leased           %lld of max %lld\n", wp_pool_leased(p), wp_pool_max(p));
	printf("creating         %lld\n", wp_pool_creating(p));
	printf("queued           %lld\n", wp_pool_queued(p));
	printf("idle timeout     %s\n", ctl_span((double)wp_pool_idle_timeout_s(p), a, sizeof(a)));
	printf("max lifetime     %s\n", ctl_span((double)wp_pool_max_lifetime_s(p), b, sizeof(b)));
	printf("create failures  %lld%s%s\n", wp_pool_create_failures(p), wp_pool_last_error(p) ? "; last: " : "",
	       wp_pool_last_error(p) ? wp_pool_last_error(p) : "");
}

/* Ready sandboxes the pool can reach now: warm, unless max minus the leased
 * ones leaves less room. */
static long long ready_target(const struct wp_pool *p)
{
	long long room = wp_pool_max(p) - wp_pool_leased(p);
	long long t = wp_pool_warm(p) < room ? wp_pool_warm(p) : room;
	return t > 0 ? t : 0;
}

static void draw_bar(FILE *f, const struct wp_pool *p, long long target, double elapsed)
{
	char info[160];
	int cols = columns(f), bar;
	long long ready = wp_pool_ready(p);

	/* numbers padded to the target's width and the time to 6 columns, so
	 * the bar keeps its length while the counts and the clock grow */
	int digits = snprintf(NULL, 0, "%lld", target > 0 ? target : 1);
	snprintf(info, sizeof(info), " %*lld/%lld ready, %*lld creating  %6.1f s", digits, ready, target, digits,
		 wp_pool_creating(p), elapsed);
	bar = cols - (int)strlen(wp_pool_name(p)) - (int)strlen(info) - 5;
	if (bar > 50)
		bar = 50;
	if (bar < 10)
		bar = 10;
	int fill = target > 0 ? (int)((ready > target ? target : ready) * bar / target) : bar;
	fprintf(f, "\r\033[K%s [", wp_pool_name(p));
	for (int i = 0; i < bar; i++)
		fputc(i < fill ? '#' : i == fill ? '>' : '.', f);
	fprintf(f, "]%s", info);
	fflush(f);
}

/* Follows the pool until it has its ready sandboxes; the exit status. */
static int wait_ready(const struct ctl_cmd *cmd, struct wp_client *c, const char *name, double timeout)
{
	FILE *f = ctl_opt.json ? stderr : stdout;
	bool tty = isatty(fileno(f));
	double t0 = now_s(), el;
	long long last_ready = -1, target = 0;
	struct wp_pool *p = NULL;
	char span[32];

	signal(SIGINT, on_interrupt);
	for (;;) {
		wp_free(p);
		if (wp_pool_get(c, name, &p) < 0) {
			if (tty)
				fputc('\n', f);
			return ctl_fail(cmd->name);
		}
		el = now_s() - t0;
		target = ready_target(p);
		bool done = wp_pool_ready(p) >= target && wp_pool_ready(p) <= wp_pool_warm(p);
		if (tty) {
			draw_bar(f, p, target, el);
		} else if (wp_pool_ready(p) != last_ready || done) {
			fprintf(f, "%s: %lld/%lld ready, %lld creating (%.1f s)\n", name, wp_pool_ready(p), target,
				wp_pool_creating(p), el);
			fflush(f);
		}
		last_ready = wp_pool_ready(p);
		if (done)
			break;
		if (wp_pool_draining(p) && wp_pool_ready(p) < target) {
			if (tty)
				fputc('\n', f);
			wp_free(p);
			return ctl_error(
			    CTL_SERVER, "PoolDraining",
			    "poolctl %s: pool %s is draining and creates nothing; `poolctl pools undrain %s`",
			    cmd->name, name, name);
		}
		if (el > timeout) {
			if (tty)
				fputc('\n', f);
			int st = ctl_error(CTL_SERVER, "WaitTimeout",
					   "poolctl %s: pool %s has %lld/%lld ready sandboxes after %s%s%s", cmd->name,
					   name, wp_pool_ready(p), target, ctl_span(el, span, sizeof(span)),
					   wp_pool_last_error(p) ? "; last error: " : "",
					   wp_pool_last_error(p) ? wp_pool_last_error(p) : "");
			wp_free(p);
			return st;
		}
		if (!pause_s(tty ? 0.1 : 0.25)) {
			if (tty)
				fputc('\n', f);
			wp_free(p);
			return ctl_error(CTL_SERVER, "Interrupted", "poolctl %s: interrupted; the pool keeps filling",
					 cmd->name);
		}
	}
	el = now_s() - t0;
	if (tty)
		fputc('\n', f);
	fprintf(f, "pool %s: %lld ready sandbox%s in %.1f s\n", name, wp_pool_ready(p),
		wp_pool_ready(p) == 1 ? "" : "es", el);
	if (ctl_opt.json)
		ctl_print_json(p);
	wp_free(p);
	return CTL_OK;
}

int cmd_pools(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS,
					     {"warm", required_argument, NULL, 'w'},
					     {"max", required_argument, NULL, 'm'},
					     {"wait", no_argument, NULL, 'W'},
					     {"wait-timeout", required_argument, NULL, 'T'},
					     {"idle-timeout", required_argument, NULL, 'I'},
					     {"max-lifetime", required_argument, NULL, 'L'},
					     {0}};
	static const char *const subs[] = {"ls", "show", "resize", "set", "drain", "undrain", NULL};
	static struct ctl_cmd cmd = {"pools", pools_help, "w:m:", opts};
	long long warm = -1, max = -1;
	double wait_timeout = 600, idle = -1, life = -1;
	const char *sub = "ls";
	struct wp_client *c;
	struct wp_pool *p = NULL;
	bool wait = false;
	char name[64];
	int o, r;

	if (argc >= 2 && argv[1][0] != '-') {
		sub = argv[1];
		for (size_t i = 0;; i++) {
			if (!subs[i])
				return ctl_usage(
				    &cmd, "unknown subcommand `%s`: ls, show, resize, set, drain or undrain", sub);
			if (strcmp(sub, subs[i]) == 0)
				break;
		}
		argc--;
		argv++;
	}
	snprintf(name, sizeof(name), "pools %s", sub);
	cmd.name = name;
	while ((o = ctl_getopt(&cmd, argc, argv)) != -1) {
		switch (o) {
		case 'w':
			if (ctl_parse_count(optarg, &warm) < 0)
				return ctl_usage(&cmd, "--warm wants a number, not `%s`", optarg);
			break;
		case 'm':
			if (ctl_parse_count(optarg, &max) < 0 || max < 1)
				return ctl_usage(&cmd, "--max wants a number of at least 1, not `%s`", optarg);
			break;
		case 'W': wait = true; break;
		case 'T':
			if (ctl_parse_duration(optarg, &wait_timeout) < 0)
				return ctl_usage(&cmd, "--wait-timeout wants a duration, not `%s`", optarg);
			break;
		case 'I':
			if (ctl_parse_duration(optarg, &idle) < 0 || idle < 1)
				return ctl_usage(&cmd, "--idle-timeout wants a duration of 1 s or more, not `%s`",
						 optarg);
			break;
		case 'L':
			if (ctl_parse_duration(optarg, &life) < 0 || life < 1)
				return ctl_usage(&cmd, "--max-lifetime wants a duration of 1 s or more, not `%s`",
						 optarg);
			break;
		default: return ctl_opt_status(o);
		}
	}
	bool is_ls = strcmp(sub, "ls") == 0;
	if (is_ls ? optind != argc : optind != argc - 1)
		return ctl_usage(&cmd, is_ls ? "no argument expected" : "give one pool NAME");
	if ((warm >= 0 || max >= 0 || wait) && strcmp(sub, "resize") != 0)
		return ctl_usage(&cmd, "--warm, --max and --wait go with `pools resize`");
	if ((idle >= 0 || life >= 0) && strcmp(sub, "set") != 0)
		return ctl_usage(&cmd, "--idle-timeout and --max-lifetime go with `pools set`");
	if (strcmp(sub, "resize") == 0 && warm < 0 && max < 0)
		return ctl_usage(&cmd, "give --warm N, --max M or both");
	if (strcmp(sub, "set") == 0 && idle < 0 && life < 0)
		return ctl_usage(&cmd, "give --idle-timeout, --max-lifetime or both");
	if (!(c = ctl_client()))
		return CTL_USAGE;
	const char *pool = is_ls ? NULL : argv[optind];

	if (is_ls) {
		struct wp_pools *l;
		if (wp_pools_list(c, &l) < 0)
			return ctl_fail(cmd.name);
		if (ctl_opt.json)
			ctl_print_json(l);
		else
			pools_table(l, NULL);
		wp_free(l);
		return CTL_OK;
	}
	if (strcmp(sub, "show") == 0)
		r = wp_pool_get(c, pool, &p);
	else if (strcmp(sub, "resize") == 0)
		r = wp_pool_resize(c, pool, warm, max, &p);
	else if (strcmp(sub, "set") == 0)
		r = wp_pool_set_timeouts(c, pool, idle < 0 ? -1 : (long long)(idle + 0.5),
					 life < 0 ? -1 : (long long)(life + 0.5), &p);
	else
		r = wp_pool_drain(c, pool, strcmp(sub, "drain") == 0, &p);
	if (r < 0)
		return ctl_fail(cmd.name);

	if (strcmp(sub, "resize") == 0 && wait) {
		if (!ctl_opt.json)
			printf("pool %s: warm %lld, max %lld\n", pool, wp_pool_warm(p), wp_pool_max(p));
		wp_free(p);
		return wait_ready(&cmd, c, pool, wait_timeout);
	}
	if (ctl_opt.json)
		ctl_print_json(p);
	else if (strcmp(sub, "show") == 0)
		print_pool(p);
	else if (strcmp(sub, "resize") == 0)
		printf("pool %s: warm %lld, max %lld (%lld ready, %lld creating)\n", pool, wp_pool_warm(p),
		       wp_pool_max(p), wp_pool_ready(p), wp_pool_creating(p));
	else if (strcmp(sub, "set") == 0)
		printf("pool %s: idle timeout %lld s, max lifetime %lld s\n", pool, wp_pool_idle_timeout_s(p),
		       wp_pool_max_lifetime_s(p));
	else if (wp_pool_draining(p))
		printf("pool %s: draining, no new leases (%lld leased sessions carry on)\n", pool, wp_pool_leased(p));
	else
		printf("pool %s: open for leases\n", pool);
	wp_free(p);
	return CTL_OK;
}

/* ---- nodes and languages ---------------------------------------------- */

static const char nodes_help[] = "Usage: poolctl nodes\n"
				 "\n"
				 "The sandboxd nodes poold uses: up or not, sandboxes held of their capacity,\n"
				 "and when poold last heard from each.\n"
				 "\n"
				 "Examples:\n"
				 "  poolctl nodes\n"
				 "  poolctl nodes --json | jq '.nodes[] | select(.up | not) | .name'\n";

static void nodes_table(const struct wp_nodes *l, const char *indent)
{
	struct ctl_table t;
	char ago[48];

	ctl_table_init(&t, "llrrll", "NODE", "UP", "SLOTS", "CAPACITY", "LAST OK", "URL", NULL);
	for (size_t i = 0; i < wp_nodes_count(l); i++) {
		const struct wp_node *n = wp_nodes_at(l, i);
		ctl_table_cell(&t, "%s", wp_node_name(n));
		ctl_table_cell(&t, "%s", wp_node_up(n) ? "up" : "DOWN");
		ctl_table_cell(&t, "%lld", wp_node_slots(n));
		ctl_table_cell(&t, "%lld", wp_node_capacity(n));
		ctl_table_cell(&t, "%s", ctl_ago(wp_node_last_ok(n), ago, sizeof(ago)));
		ctl_table_cell(&t, "%s", wp_node_url(n));
	}
	ctl_table_print(&t, stdout, indent);
	ctl_table_free(&t);
}

/* Parses the command line of a command without options or operands of its
 * own (`ls` accepted for symmetry). False when poolctl stops with *status. */
static bool simple_args(const struct ctl_cmd *cmd, int argc, char **argv, int *status)
{
	int o;

	if (argc >= 2 && strcmp(argv[1], "ls") == 0) {
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	if ((o = ctl_getopt(cmd, argc, argv)) != -1) {
		*status = ctl_opt_status(o);
		return false;
	}
	if (optind != argc) {
		*status = ctl_usage(cmd, "no argument expected");
		return false;
	}
	return true;
}

int cmd_nodes(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {0}};
	static const struct ctl_cmd cmd = {"nodes", nodes_help, "", opts};
	struct wp_nodes *l;
	struct wp_client *c;
	int status;

	if (!simple_args(&cmd, argc, argv, &status))
		return status;
	if (!(c = ctl_client()))
		return CTL_USAGE;
	if (wp_nodes_list(c, &l) < 0)
		return ctl_fail(cmd.name);
	if (ctl_opt.json)
		ctl_print_json(l);
	else
		nodes_table(l, NULL);
	wp_free(l);
	return CTL_OK;
}

static const char langs_help[] = "Usage: poolctl langs\n"
				 "\n"
				 "The languages poold serves, the pool of each (what --lang looks up), and the\n"
				 "runtime's version on the nodes.\n"
				 "\n"
				 "Examples:\n"
				 "  poolctl langs\n"
				 "  poolctl langs --json\n";

int cmd_langs(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {0}};
	static const struct ctl_cmd cmd = {"langs", langs_help, "", opts};
	struct wp_languages *l;
	struct wp_client *c;
	struct ctl_table t;
	int status;

	if (!simple_args(&cmd, argc, argv, &status))
		return status;
	if (!(c = ctl_client()))
		return CTL_USAGE;
	if (wp_languages_list(c, &l) < 0)
		return ctl_fail(cmd.name);
	if (ctl_opt.json) {
		ctl_print_json(l);
	} else {
		ctl_table_init(&t, "llll", "LANGUAGE", "POOL", "AVAILABLE", "VERSION", NULL);
		for (size_t i = 0; i < wp_languages_count(l); i++) {
			const struct wp_language *g = wp_languages_at(l, i);
			ctl_table_cell(&t, "%s", wp_language_name(g));
			ctl_table_cell(&t, "%s", wp_language_pool(g));
			ctl_table_cell(&t, "%s", wp_language_available(g) ? "yes" : "no");
			ctl_table_cell(&t, "%s", wp_language_version(g) ? wp_language_version(g) : "-");
		}
		ctl_table_print(&t, stdout, NULL);
		ctl_table_free(&t);
	}
	wp_free(l);
	return CTL_OK;
}

/* ---- top -------------------------------------------------------------- */

static const char top_help[] = "Usage: poolctl top [--interval SECS] [--once]\n"
			       "\n"
			       "A live view for contest day: readiness, the /execute queue (submissions\n"
			       "queued, runs in progress, drain rate: submissions/s started over poold's\n"
			       "last 64, and when the queue is worked off at that rate), every pool (ready,\n"
			       "leased, queued), every node, and the sessions (with an admin token),\n"
			       "refreshed every SECS.\n"
			       "Ctrl-C quits. Without a terminal, or with --once, frames are printed one\n"
			       "after the other instead of redrawn; --json prints each frame as one JSON\n"
			       "object {\"execute\", \"pools\", \"nodes\", \"sessions\", \"ready\"}.\n"
			       "\n"
			       "  -n, --interval SECS  between refreshes (default 2)\n"
			       "      --once           one frame, then exit (status 3 if poold failed)\n"
			       "\n"
			       "Examples:\n"
			       "  poolctl top\n"
			       "  poolctl top --once --json | jq '.pools[] | {name, ready, leased}'\n";

#define TOP_MAX_SESSIONS 25

/* The /execute queue (poold's pools answer, "execute"): how many wait, how
 * many run, how fast the queue drains and so when a burst is worked off. */
static void print_execute_queue(const struct wp_pools *pools)
{
	json_t *j = json_loads(wp_json(pools), 0, NULL);
	json_t *ex = json_object_get(j, "execute");

	printf("\nEXECUTE QUEUE\n");
	if (!json_is_object(ex)) {
		printf("  (this poold does not report its /execute queue)\n");
		json_decref(j);
		return;
	}
	json_int_t queued = json_integer_value(json_object_get(ex, "queued"));
	json_int_t running = json_integer_value(json_object_get(ex, "running"));
	double rate = json_number_value(json_object_get(ex, "drain_rate"));
	printf("  queued %lld   running %lld   drain rate %.1f/s", (long long)queued, (long long)running, rate);
	if (queued > 0 && rate > 0)
		printf("   worked off in ~%.0f s", (double)queued / rate);
	else if (queued > 0)
		printf("   (drain rate not measured yet)");
	printf("\n");
	json_decref(j);
}

/* One frame; CTL_OK, or the status of the failure it shows. */
static int top_frame(struct wp_client *c, bool tty, double interval)
{
	struct wp_pools *pools = NULL;
	struct wp_nodes *nodes = NULL;
	struct wp_sessions *sessions = NULL;
	char when[32], why[600] = "", sess_err[600] = "";
	time_t t = time(NULL);
	int status = CTL_OK;
	bool ready;

	ready = wp_readyz(c) == 0;
	if (!ready)
		snprintf(why, sizeof(why), "%s", wp_error_text(c));
	if (wp_pools_list(c, &pools) < 0 || wp_nodes_list(c, &nodes) < 0) {
		status = ctl_fail("top");
		goto out;
	}
	if (wp_sessions_list(c, NULL, &sessions) < 0) {
		if (wp_error_kind(c) != WP_ERR_HTTP) {
			status = ctl_fail("top");
			goto out;
		}
		snprintf(sess_err, sizeof(sess_err), "%s",
			 wp_error_status(c) == 403 || wp_error_status(c) == 401
			     ? "(listing sessions needs an admin token)"
			     : wp_error_text(c));
	}
	if (ctl_opt.json) {
		json_t *frame =
		    json_pack("{s:b, s:o?, s:o?, s:o?}", "ready", ready, "pools", json_loads(wp_json(pools), 0, NULL),
			      "nodes", json_loads(wp_json(nodes), 0, NULL), "sessions",
			      json_loads(sessions ? wp_json(sessions) : "null", JSON_DECODE_ANY, NULL));
		json_t *arr = json_object_get(frame, "pools");
		json_object_set(frame, "execute", json_object_get(arr, "execute") ?: json_null());
		json_object_set(frame, "pools", json_object_get(arr, "pools"));
		arr = json_object_get(frame, "nodes");
		json_object_set(frame, "nodes", json_object_get(arr, "nodes"));
		arr = json_object_get(frame, "sessions");
		json_object_set(frame, "sessions",
				json_is_object(arr) ? json_object_get(arr, "sessions") : json_null());
		char *text = json_dumps(frame, JSON_COMPACT);
		printf("%s\n", text ? text : "null");
		free(text);
		json_decref(frame);
		fflush(stdout);
		goto out;
	}
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("warmpool top — %s — %s — %s\n", wp_client_url(c), when, ready ? "ready" : "NOT READY");
	if (!ready)
		printf("  %s\n", why);
	print_execute_queue(pools);
	printf("\nPOOLS\n");
	pools_table(pools, "  ");
	printf("\nNODES\n");
	nodes_table(nodes, "  ");
	printf("\nSESSIONS (%zu)\n", wp_sessions_count(sessions));
	if (*sess_err)
		printf("  %s\n", sess_err);
	else if (wp_sessions_count(sessions) == 0)
		printf("  none\n");
	else
		ctl_sessions_table(sessions, "  ");
	if (tty)
		printf("\nevery %g s — Ctrl-C quits\n", interval);
	else
		printf("\n");
	fflush(stdout);
out:
	wp_free(pools);
	wp_free(nodes);
	wp_free(sessions);
	return status;
}

int cmd_top(int argc, char **argv)
{
	static const struct option opts[] = {
	    CTL_COMMON_OPTIONS, {"interval", required_argument, NULL, 'n'}, {"once", no_argument, NULL, '1'}, {0}};
	static const struct ctl_cmd cmd = {"top", top_help, "n:", opts};
	double interval = 2;
	bool once = false, tty;
	struct wp_client *c;
	int o, status = CTL_OK;

	while ((o = ctl_getopt(&cmd, argc, argv)) != -1) {
		switch (o) {
		case 'n':
			if (ctl_parse_duration(optarg, &interval) < 0 || interval < 0.2)
				return ctl_usage(&cmd, "--interval wants 0.2 s or more, not `%s`", optarg);
			break;
		case '1': once = true; break;
		default: return ctl_opt_status(o);
		}
	}
	if (optind != argc)
		return ctl_usage(&cmd, "no argument expected");
	if (!(c = ctl_client()))
		return CTL_USAGE;
	tty = isatty(STDOUT_FILENO) && !once && !ctl_opt.json;
	if (!once) {
		signal(SIGINT, on_interrupt);
		signal(SIGTERM, on_interrupt);
	}
	if (tty)
		fputs("\033[?25l", stdout); /* no cursor blinking over the tables */
	do {
		status = top_frame(c, tty, interval);
		if (once)
			break;
	} while (pause_s(interval));
	if (tty)
		fputs("\033[?25h", stdout);
	return once ? status : CTL_OK;
}
