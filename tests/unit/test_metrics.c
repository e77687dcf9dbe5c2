/* test_metrics.c — the Prometheus registry: the exact text of counters,
 * gauges and histograms with and without labels, escaping, numbers, reset,
 * collectors, thousands of series, aborts on bad names, and promtool's
 * verdict on a rendered registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "metrics.h"

#ifndef PROMTOOL
#define PROMTOOL "/usr/bin/promtool"
#endif

static void render_is(struct metrics *m, const char *want)
{
	size_t len = 0;
	cleanup_free char *got = metrics_render(m, &len);

	assert_non_null(got);
	assert_int_equal(len, strlen(got));
	assert_string_equal(got, want);
}

static void test_counter_gauge(void **state)
{
	struct metrics *m = metrics_new();
	struct metric *c = metrics_counter(m, "wp_requests_total", "Requests served.", NULL);
	struct metric *cl = metrics_counter(m, "wp_executions_total", "Executions by pool and verdict.",
					    (const char *const[]){"pool", "verdict", NULL});
	struct metric *g = metrics_gauge(m, "wp_slots_warm", "Warm slots.", (const char *const[]){"pool", NULL});
	struct metric *gu = metrics_gauge(m, "wp_up", "Always 1.", NULL);

	render_is(m, "# HELP wp_requests_total Requests served.\n"
		     "# TYPE wp_requests_total counter\n"
		     "wp_requests_total 0\n"
		     "# HELP wp_executions_total Executions by pool and verdict.\n"
		     "# TYPE wp_executions_total counter\n"
		     "# HELP wp_slots_warm Warm slots.\n"
		     "# TYPE wp_slots_warm gauge\n"
		     "# HELP wp_up Always 1.\n"
		     "# TYPE wp_up gauge\n"
		     "wp_up 0\n");

	metric_inc(c, NULL, 1);
	metric_inc(c, NULL, 2);
	metric_inc(cl, (const char *const[]){"python", "accepted"}, 1);
	metric_inc(cl, (const char *const[]){"cpp", "wrong_answer"}, 1);
	metric_inc(cl, (const char *const[]){"python", "accepted"}, 1);
	metric_inc(cl, (const char *const[]){"python", "time_limit_exceeded"}, 0.5);
	metric_set(g, (const char *const[]){"python"}, 4);
	metric_inc(g, (const char *const[]){"python"}, -1); /* gauges go down */
	metric_set(g, (const char *const[]){"cpp"}, 2);
	metric_set(gu, NULL, 1);
	render_is(m, "# HELP wp_requests_total Requests served.\n"
		     "# TYPE wp_requests_total counter\n"
		     "wp_requests_total 3\n"
		     "# HELP wp_executions_total Executions by pool and verdict.\n"
		     "# TYPE wp_executions_total counter\n"
		     "wp_executions_total{pool=\"python\",verdict=\"accepted\"} 2\n"
		     "wp_executions_total{pool=\"cpp\",verdict=\"wrong_answer\"} 1\n"
		     "wp_executions_total{pool=\"python\",verdict=\"time_limit_exceeded\"} 0.5\n"
		     "# HELP wp_slots_warm Warm slots.\n"
		     "# TYPE wp_slots_warm gauge\n"
		     "wp_slots_warm{pool=\"python\"} 3\n"
		     "wp_slots_warm{pool=\"cpp\"} 2\n"
		     "# HELP wp_up Always 1.\n"
		     "# TYPE wp_up gauge\n"
		     "wp_up 1\n");
	metrics_free(m);
}

static void test_histogram(void **state)
{
	struct metrics *m = metrics_new();
	static const double b[] = {0.5, 1, 2.5};
	struct metric *h = metrics_histogram(m, "wp_run_seconds", "Run time.", NULL, b, 3);
	struct metric *hl = metrics_histogram(m, "wp_http_request_duration_seconds", "Latency.",
					      (const char *const[]){"route", NULL}, b, 3);

	metric_observe(h, NULL, 0.25);
	metric_observe(h, NULL, 0.5); /* upper bounds are inclusive */
	metric_observe(h, NULL, 2);
	metric_observe(h, NULL, 100);
	metric_observe(hl, (const char *const[]){"/execute"}, 0.75);
	render_is(m, "# HELP wp_run_seconds Run time.\n"
		     "# TYPE wp_run_seconds histogram\n"
		     "wp_run_seconds_bucket{le=\"0.5\"} 2\n"
		     "wp_run_seconds_bucket{le=\"1\"} 2\n"
		     "wp_run_seconds_bucket{le=\"2.5\"} 3\n"
		     "wp_run_seconds_bucket{le=\"+Inf\"} 4\n"
		     "wp_run_seconds_sum 102.75\n"
		     "wp_run_seconds_count 4\n"
		     "# HELP wp_http_request_duration_seconds Latency.\n"
		     "# TYPE wp_http_request_duration_seconds histogram\n"
		     "wp_http_request_duration_seconds_bucket{route=\"/execute\",le=\"0.5\"} 0\n"
		     "wp_http_request_duration_seconds_bucket{route=\"/execute\",le=\"1\"} 1\n"
		     "wp_http_request_duration_seconds_bucket{route=\"/execute\",le=\"2.5\"} 1\n"
		     "wp_http_request_duration_seconds_bucket{route=\"/execute\",le=\"+Inf\"} 1\n"
		     "wp_http_request_duration_seconds_sum{route=\"/execute\"} 0.75\n"
		     "wp_http_request_duration_seconds_count{route=\"/execute\"} 1\n");
	metrics_free(m);
}

static void test_histogram_bounds(void **state)
{
	struct metrics *m = metrics_new();
	static const double b[] = {1, INFINITY}; /* a trailing +Inf is not doubled */
	struct metric *h = metrics_histogram(m, "a_seconds", "", NULL, b, 2);
	struct metric *none = metrics_histogram(m, "b_seconds", "", NULL, NULL, 0);

	metric_observe(h, NULL, NAN); /* as client_golang: +Inf bucket, sum NaN */
	metric_observe(none, NULL, 3);
	render_is(m, "# HELP a_seconds \n# TYPE a_seconds histogram\n"
		     "a_seconds_bucket{le=\"1\"} 0\n"
		     "a_seconds_bucket{le=\"+Inf\"} 1\n"
		     "a_seconds_sum NaN\n"
		     "a_seconds_count 1\n"
		     "# HELP b_seconds \n# TYPE b_seconds histogram\n"
		     "b_seconds_bucket{le=\"+Inf\"} 1\n"
		     "b_seconds_sum 3\n"
		     "b_seconds_count 1\n");
	assert_int_equal(metrics_latency_buckets_n, 15);
	assert_true(metrics_latency_buckets[0] == 0.0005);
	assert_true(metrics_latency_buckets[14] == 30);
	metrics_free(m);
}

static void test_escaping(void **state)
{
	struct metrics *m = metrics_new();
	struct metric *g =
	    metrics_gauge(m, "x", "Help with \\ and\nnewline, \"quotes\" kept.", (const char *const[]){"a", "b", NULL});

	metric_set(g, (const char *const[]){"back\\slash \"q\"\nnl", ""}, 1);
	metric_set(g, (const char *const[]){"z", NULL}, 2); /* NULL is "" */
	render_is(m, "# HELP x Help with \\\\ and\\nnewline, \"quotes\" kept.\n"
		     "# TYPE x gauge\n"
		     "x{a=\"back\\\\slash \\\"q\\\"\\nnl\",b=\"\"} 1\n"
		     "x{a=\"z\",b=\"\"} 2\n");
	metrics_free(m);
}

static void test_numbers(void **state)
{
	struct metrics *m = metrics_new();
	struct metric *g = metrics_gauge(m, "n", "", (const char *const[]){"k", NULL});
	static const struct {
		const char *k;
		double v;
	} cases[] = {
	    {"a", 0.1},
	    {"b", 1e20},
	    {"c", -3},
	    {"d", -0.0},
	    {"e", 1.5e-7},
	    {"f", NAN},
	    {"g", INFINITY},
	    {"h", -INFINITY},
	    {"i", 9007199254740991.0},
	    {"j", 9007199254740992.0},
	    {"k", 1.0 / 3},
	    {"l", 123456.5},
	    {"m", 1e16},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		metric_set(g, (const char *const[]){cases[i].k}, cases[i].v);
	render_is(m, "# HELP n \n# TYPE n gauge\n"
		     "n{k=\"a\"} 0.1\n"
		     "n{k=\"b\"} 1e+20\n"
		     "n{k=\"c\"} -3\n"
		     "n{k=\"d\"} 0\n"
		     "n{k=\"e\"} 1.5e-07\n"
		     "n{k=\"f\"} NaN\n"
		     "n{k=\"g\"} +Inf\n"
		     "n{k=\"h\"} -Inf\n"
		     "n{k=\"i\"} 9007199254740991\n"
		     "n{k=\"j\"} 9007199254740992\n"
		     "n{k=\"k\"} 0.3333333333333333\n"
		     "n{k=\"l\"} 123456.5\n"
		     "n{k=\"m\"} 1e+16\n");
	metrics_free(m);
}

static void test_reset_and_kinds(void **state)
{
	struct metrics *m = metrics_new();
	struct metric *g = metrics_gauge(m, "g", "", (const char *const[]){"pool", NULL});
	struct metric *u = metrics_gauge(m, "u", "", NULL);
	struct metric *c = metrics_counter(m, "c_total", "", NULL);
	struct metric *h = metrics_histogram(m, "h", "", NULL, (const double[]){1}, 1);

	metric_set(g, (const char *const[]){"a"}, 1);
	metric_set(g, (const char *const[]){"b"}, 2);
	metric_reset(g);
	metric_set(g, (const char *const[]){"b"}, 3);
	metric_reset(u);
	metric_inc(c, NULL, -1);  /* counters never go down */
	metric_inc(c, NULL, NAN); /* nor turn NaN */
	metric_inc(c, NULL, 2);
	metric_observe(c, NULL, 5); /* wrong kind: nothing */
	metric_inc(h, NULL, 1);
	metric_set(h, NULL, 1);
	metric_inc(NULL, NULL, 1);
	metric_observe(NULL, NULL, 1);
	metric_reset(NULL);
	render_is(m, "# HELP g \n# TYPE g gauge\n"
		     "g{pool=\"b\"} 3\n"
		     "# HELP u \n# TYPE u gauge\n"
		     "# HELP c_total \n# TYPE c_total counter\n"
		     "c_total 2\n"
		     "# HELP h \n# TYPE h histogram\n"
		     "h_bucket{le=\"1\"} 0\n"
		     "h_bucket{le=\"+Inf\"} 0\n"
		     "h_sum 0\n"
		     "h_count 0\n");
	metric_set(c, NULL, 7); /* set mirrors a count kept elsewhere */
	metric_set(u, NULL, 1);
	render_is(m, "# HELP g \n# TYPE g gauge\n"
		     "g{pool=\"b\"} 3\n"
		     "# HELP u \n# TYPE u gauge\n"
		     "u 1\n"
		     "# HELP c_total \n# TYPE c_total counter\n"
		     "c_total 7\n"
		     "# HELP h \n# TYPE h histogram\n"
		     "h_bucket{le=\"1\"} 0\n"
		     "h_bucket{le=\"+Inf\"} 0\n"
		     "h_sum 0\n"
		     "h_count 0\n");
	metrics_free(m);
	metrics_free(NULL);
}

struct collect_state {
	struct metric *g;
	int calls;
};

static void collect(void *data)
{
	struct collect_state *cs = data;

	cs->calls++;
	metric_reset(cs->g);
	metric_set(cs->g, (const char *const[]){"python"}, cs->calls * 10);
}

static void test_on_collect(void **state)
{
	struct metrics *m = metrics_new();
	struct collect_state cs = {metrics_gauge(m, "leases", "Leases.", (const char *const[]){"pool", NULL}), 0};

	metrics_on_collect(m, collect, &cs);
	render_is(m, "# HELP leases Leases.\n# TYPE leases gauge\nleases{pool=\"python\"} 10\n");
	render_is(m, "# HELP leases Leases.\n# TYPE leases gauge\nleases{pool=\"python\"} 20\n");
	assert_int_equal(cs.calls, 2);
	metrics_free(m);
}

/* pools × verdicts × routes: thousands of series, found again, in order. */
static void test_many_series(void **state)
{
	struct metrics *m = metrics_new();
	struct metric *c =
	    metrics_counter(m, "many_total", "", (const char *const[]){"pool", "verdict", "route", NULL});
	char pool[16], verdict[16], route[16];
	cleanup_free char *text = NULL;
	size_t lines = 0;
	const char *p;

	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < 5000; i++) {
			snprintf(pool, sizeof(pool), "p%d", i / 100);
			snprintf(verdict, sizeof(verdict), "v%d", i / 10 % 10);
			snprintf(route, sizeof(route), "r%d", i % 10);
			metric_inc(c, (const char *const[]){pool, verdict, route}, i);
		}
	text = metrics_render(m, NULL);
	assert_non_null(text);
	for (p = text; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2 + 5000);
	assert_non_null(strstr(text, "# TYPE many_total counter\n"
				     "many_total{pool=\"p0\",verdict=\"v0\",route=\"r0\"} 0\n"
				     "many_total{pool=\"p0\",verdict=\"v0\",route=\"r1\"} 3\n"));
	assert_non_null(strstr(text, "many_total{pool=\"p49\",verdict=\"v9\",route=\"r9\"} 14997\n"));
	metrics_free(m);
}

/* Registration errors are bugs: the process aborts with a message. */
static void aborts(void (*fn)(struct metrics *))
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct metrics *m = metrics_new();
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		fn(m);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void bad_name(struct metrics *m)
{
	metrics_gauge(m, "1abc", "", NULL);
}
static void bad_char(struct metrics *m)
{
	metrics_gauge(m, "a-b", "", NULL);
}
static void bad_label(struct metrics *m)
{
	metrics_gauge(m, "a", "", (const char *const[]){"__x", NULL});
}
static void colon_label(struct metrics *m)
{
	metrics_gauge(m, "a", "", (const char *const[]){"a:b", NULL});
}
static void dup_label(struct metrics *m)
{
	metrics_gauge(m, "a", "", (const char *const[]){"x", "x", NULL});
}
static void no_total(struct metrics *m)
{
	metrics_counter(m, "requests", "", NULL);
}
static void le_label(struct metrics *m)
{
	metrics_histogram(m, "h", "", (const char *const[]){"le", NULL}, (const double[]){1}, 1);
}
static void unsorted(struct metrics *m)
{
	metrics_histogram(m, "h", "", NULL, (const double[]){1, 1}, 2);
}
static void twice(struct metrics *m)
{
	metrics_gauge(m, "a", "", NULL);
	metrics_counter(m, "b_total", "", NULL);
	metrics_gauge(m, "a", "", NULL);
}

static void test_bad_registration(void **state)
{
	struct metrics *m = metrics_new();

	aborts(bad_name);
	aborts(bad_char);
	aborts(bad_label);
	aborts(colon_label);
	aborts(dup_label);
	aborts(no_total);
	aborts(le_label);
	aborts(unsorted);
	aborts(twice);
	/* and what is valid passes */
	metrics_gauge(m, "ns:sub_metric_1", "", (const char *const[]){"_under", "Label9", NULL});
	metrics_counter(m, "_x_total", "", NULL);
	metrics_free(m);
}

static void test_promtool(void **state)
{
	struct metrics *m;
	char path[] = "/tmp/test_metrics_XXXXXX", cmd[128], out[4096];
	struct metric *req, *dur, *warm, *inflight;
	cleanup_free char *text = NULL;
	size_t len, got;
	FILE *f, *p;
	int fd, status;

	if (access(PROMTOOL, X_OK) != 0) {
		fprintf(stderr, "SKIPPED test_promtool: %s not found (Debian package prometheus)\n", PROMTOOL);
		skip();
	}
	m = metrics_new();
	req = metrics_counter(m, "warmpool_http_requests_total", "HTTP requests by route and status.",
			      (const char *const[]){"route", "code", NULL});
	dur =
	    metrics_histogram(m, "warmpool_http_request_duration_seconds", "Request latency.",
			      (const char *const[]){"route", NULL}, metrics_latency_buckets, metrics_latency_buckets_n);
	warm = metrics_gauge(m, "warmpool_slots_warm", "Warm slots by pool.", (const char *const[]){"pool", NULL});
	inflight = metrics_gauge(m, "warmpool_inflight_requests", "Requests in flight.", NULL);
	metrics_counter(m, "warmpool_restarts_total", "Never moved.", NULL);
	metric_inc(req, (const char *const[]){"/execute", "200"}, 12);
	metric_inc(req, (const char *const[]){"/pools/{pool}/code/execute", "429"}, 1);
	metric_inc(req, (const char *const[]){"odd \"route\"\\\nx", "500"}, 1);
	for (int i = 0; i < 40; i++)
		metric_observe(dur, (const char *const[]){i % 2 ? "/execute" : "/metrics"}, i * 0.013);
	metric_observe(dur, (const char *const[]){"/execute"}, 1e6);
	metric_set(warm, (const char *const[]){"python"}, 4);
	metric_set(warm, (const char *const[]){"c++"}, 0.5);
	metric_set(inflight, NULL, 3);
	text = metrics_render(m, &len);
	assert_non_null(text);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", PROMTOOL, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	got = fread(out, 1, sizeof(out) - 1, p);
	out[got] = '\0';
	status = pclose(p);
	unlink(path);
	if (got || status != 0)
		fprintf(stderr, "promtool (status %d) said:\n%s\non:\n%s", status, out, text);
	assert_int_equal(status, 0);
	assert_int_equal(got, 0);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counter_gauge),    cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_histogram_bounds), cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_numbers),	     cmocka_unit_test(test_reset_and_kinds),
	    cmocka_unit_test(test_on_collect),	     cmocka_unit_test(test_many_series),
	    cmocka_unit_test(test_bad_registration), cmocka_unit_test(test_promtool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
