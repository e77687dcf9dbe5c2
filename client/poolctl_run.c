/* poolctl_run.c — the commands that run code in a session: run (a judged
 * submission, with the contest's NAME.in / NAME.out test directories) and
 * exec (the stateful interpreter). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "poolctl.h"

/* ---- run -------------------------------------------------------------- */

static const char run_help[] =
    "Usage: poolctl run --session ID [--lang LANG | --pool POOL] FILE [--tests DIR | --stdin FILE]\n"
    "\n"
    "Runs the program FILE (\"-\": standard input) in the session's sandbox, as a judge.\n"
    "\n"
    "With --tests DIR, every DIR/NAME.in is a test case and DIR/NAME.out (or NAME.ans)\n"
    "its expected output: one line per test with verdict, CPU time and peak memory,\n"
    "then the summary. Without, the program runs once on --stdin FILE (or no input):\n"
    "its output goes to stdout and stderr, its verdict to stderr.\n"
    "\n"
    "  -s, --session ID       the session: the same ID reaches the same sandbox (required)\n"
    "  -l, --lang LANG        the language, whose pool is looked up (default: from FILE's\n"
    "                         extension: .py .js .mjs .java .c .cc .cpp .cxx; another\n"
    "                         extension is refused; none, or stdin: the default pool)\n"
    "  -p, --pool POOL        the pool, instead of --lang\n"
    "  -t, --tests DIR        test cases: each NAME.in needs its NAME.out or NAME.ans (at\n"
    "                         most the server's max_tests, 100 by default)\n"
    "  -i, --stdin FILE       the input of a single run (\"-\": standard input)\n"
    "      --limit KEY=VALUE  cpu_ms, wall_ms, memory_kb, pids, output_bytes or fsize_bytes\n"
    "                         (repeatable; up to the server's maxima)\n"
    "      --compare MODE     trailing (default), exact, tokens, float[:TOLERANCE]\n"
    "      --stop-on-failure  no more tests after the first that fails\n"
    "\n"
    "Exit status: 0 every test passed; 1 a test failed, or the compilation;\n"
    "2 usage; 3 poold failed (an internal_error verdict included).\n"
    "\n"
    "Examples:\n"
    "  poolctl run --session alice sol.py --tests contest/q1/tests\n"
    "  poolctl run -s alice --lang cpp sol.cc -t tests/ --limit cpu_ms=2000 --limit memory_kb=262144\n"
    "  echo '1 2' | poolctl run -s alice sum.py --stdin -\n"
    "  poolctl run -s alice sol.py -t tests/ --json | jq -r .verdict\n";

struct test_case {
	char *name;
	char *in, *expected; /* expected NULL: none */
	size_t in_len, expected_len;
};

static void tests_free(struct test_case *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].name);
		free(t[i].in);
		free(t[i].expected);
	}
	free(t);
}

static int is_input(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 3 && strcmp(d->d_name + n - 3, ".in") == 0;
}

/* Reads DIR/NAME.in and NAME.out or NAME.ans, in version order (2 before 10). */
static int load_tests(const struct ctl_cmd *cmd, const char *dir, struct test_case **out, size_t *count)
{
	struct dirent **ents = NULL;
	struct test_case *t = NULL;
	int n = scandir(dir, &ents, is_input, versionsort), status = CTL_OK;
	size_t k = 0;

	if (n < 0)
		return ctl_usage(cmd, "cannot read the test directory `%s`: %s", dir, strerror(errno));
	if (n == 0) {
		free(ents);
		return ctl_usage(cmd, "no test case in `%s`: want NAME.in with NAME.out or NAME.ans", dir);
	}
	if (!(t = calloc((size_t)n, sizeof(*t)))) {
		status = ctl_usage(cmd, "out of memory");
		goto out;
	}
	for (k = 0; k < (size_t)n; k++) {
		const char *fn = ents[k]->d_name;
		char *path;
		struct stat st;

		t[k].name = strndup(fn, strlen(fn) - 3);
		if (!t[k].name || asprintf(&path, "%s/%s", dir, fn) < 0) {
			status = ctl_usage(cmd, "out of memory");
			goto out;
		}
		t[k].in = ctl_slurp(path, &t[k].in_len);
		if (!t[k].in) {
			status = ctl_usage(cmd, "cannot read `%s`: %s", path, strerror(errno));
			free(path);
			goto out;
		}
		free(path);
		for (const char *ext = ".out"; ext; ext = strcmp(ext, ".out") == 0 ? ".ans" : NULL) {
			if (asprintf(&path, "%s/%s%s", dir, t[k].name, ext) < 0) {
				status = ctl_usage(cmd, "out of memory");
				goto out;
			}
			if (stat(path, &st) == 0) {
				t[k].expected = ctl_slurp(path, &t[k].expected_len);
				if (!t[k].expected) {
					status = ctl_usage(cmd, "cannot read `%s`: %s", path, strerror(errno));
					free(path);
					goto out;
				}
				free(path);
				break;
			}
			free(path);
		}
		if (!t[k].expected) {
			/* a test without an expected output would pass whatever the
			 * program prints: almost always a file left out by mistake */
			status = ctl_usage(cmd, "test `%s`: `%s/%s.in` has no `%s.out` or `%s.ans` next to it",
					   t[k].name, dir, t[k].name, t[k].name, t[k].name);
			goto out;
		}
	}
out:
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	if (status != CTL_OK) {
		tests_free(t, k + 1 <= (size_t)n ? k + 1 : (size_t)n);
		return status;
	}
	*out = t;
	*count = (size_t)n;
	return CTL_OK;
}

static int parse_limit(struct wp_run_request *req, const char *kv)
{
	static const struct {
		const char *key;
		enum wp_limit limit;
	} keys[] = {{"cpu_ms", WP_LIMIT_CPU_MS},
		    {"wall_ms", WP_LIMIT_WALL_MS},
		    {"memory_kb", WP_LIMIT_MEMORY_KB},
		    {"pids", WP_LIMIT_PIDS},
		    {"output_bytes", WP_LIMIT_OUTPUT_BYTES},
		    {"fsize_bytes", WP_LIMIT_FSIZE_BYTES}};
	const char *eq = strchr(kv, '=');
	long long v;

	if (!eq || ctl_parse_count(eq + 1, &v) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].key) == (size_t)(eq - kv) && strncmp(kv, keys[i].key, (size_t)(eq - kv)) == 0)
			return wp_run_request_set_limit(req, keys[i].limit, v) < 0 ? -EINVAL : 0;
	return -EINVAL;
}

static int parse_compare(struct wp_run_request *req, const char *s)
{
	static const char *const modes[] = {"trailing", "exact", "tokens", "float"};
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);
	double tol = 0;
	char *end;

	if (colon) {
		tol = strtod(colon + 1, &end);
		if (*end || !(tol > 0) || len != 5 || strncmp(s, "float", 5) != 0)
			return -EINVAL;
	}
	for (size_t i = 0; i < 4; i++)
		if (strlen(modes[i]) == len && strncmp(s, modes[i], len) == 0)
			return wp_run_request_set_compare(req, (enum wp_compare)i, tol, tol) < 0 ? -EINVAL : 0;
	return -EINVAL;
}

/* text's line k (0-based) without its end of line, into buf, made printable. */
static const char *line_at(const char *text, size_t len, size_t k, char *buf, size_t cap, bool *present)
{
	const char *p = text, *end = text + len, *nl;
	size_t o = 0;

	for (; k > 0 && p < end; k--) {
		nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	*present = p < end;
	nl = memchr(p, '\n', (size_t)(end - p));
	end = nl ? nl : end;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	for (; p < end && o + 5 < cap; p++) {
		if (o > 60) {
			memcpy(buf + o, "…", 3);
			o += 3;
			break;
		}
		buf[o++] = (unsigned char)*p < 0x20 ? '?' : *p;
	}
	buf[o] = '\0';
	return buf;
}

/* The first line where got differs from expected, trailing blanks ignored. */
static void explain_wrong(const char *got, size_t got_len, const char *exp, size_t exp_len)
{
	char a[80], b[80];
	bool ha, hb;

	for (size_t k = 0; k < 1000000; k++) {
		line_at(exp, exp_len, k, a, sizeof(a), &ha);
		line_at(got, got_len, k, b, sizeof(b), &hb);
		if (!ha && !hb)
			return;
		if (strcmp(a, b) != 0 || ha != hb) {
			if (!hb)
				printf("      line %zu: expected `%s`, got nothing more\n", k + 1, a);
			else if (!ha)
				printf("      line %zu: expected nothing more, got `%s`\n", k + 1, b);
			else
				printf("      line %zu: expected `%s`, got `%s`\n", k + 1, a, b);
			return;
		}
	}
}

/* Why a failing test failed, on its own indented line(s). */
static void explain_test(const struct wp_run_result *r, size_t i, const struct test_case *tc)
{
	const char *v = wp_run_test_verdict(r, i);
	size_t out_len, err_len;
	const char *out = wp_run_test_stdout(r, i, &out_len), *err = wp_run_test_stderr(r, i, &err_len);

	if (strcmp(v, "wrong_answer") == 0 && tc && tc->expected) {
		explain_wrong(out, out_len, tc->expected, tc->expected_len);
	} else if (strcmp(v, "runtime_error") == 0) {
		char last[100] = "";
		bool present;
		if (wp_run_test_signal(r, i))
			printf("      killed by signal %d (%s)", wp_run_test_signal(r, i),
			       strsignal(wp_run_test_signal(r, i)));
		else
			printf("      exit code %d", wp_run_test_exit_code(r, i));
		/* the last line of stderr: usually the exception */
		for (size_t k = 0;; k++) {
			char line[100];
			line_at(err, err_len, k, line, sizeof(line), &present);
			if (!present)
				break;
			if (*line)
				snprintf(last, sizeof(last), "%s", line);
		}
		printf("%s%s\n", *last ? ": " : "", last);
	}
}

static int verdict_status(const char *v)
{
	if (strcmp(v, "accepted") == 0)
		return CTL_OK;
	if (strcmp(v, "internal_error") == 0)
		return CTL_SERVER;
	return CTL_FAILED;
}

struct explain_ctx {
	const struct wp_run_result *r;
	const struct test_case *tests;
	size_t n_tests;
};

/* After row `row` of the table (row 0: the header). */
static void explain_row(size_t row, void *data)
{
	struct explain_ctx *x = data;
	size_t i = row - 1;

	if (row == 0 || strcmp(wp_run_test_verdict(x->r, i), "accepted") == 0)
		return;
	explain_test(x->r, i, i < x->n_tests ? &x->tests[i] : NULL);
}

static void print_run(const struct wp_run_result *r, const struct test_case *tests, size_t n_tests, const char *file)
{
	const char *cs = wp_run_compile_status(r);
	struct ctl_table t;
	char node[200] = "";

	if (cs && strcmp(cs, "error") == 0) {
		printf("compilation_error: %s does not compile\n", file);
		fputs(wp_run_compile_stderr(r), stdout);
		fputs(wp_run_compile_stdout(r), stdout);
		return;
	}
	ctl_table_init(&t, "rllrr", "#", "TEST", "VERDICT", "TIME", "MEMORY", NULL);
	for (size_t i = 0; i < wp_run_test_count(r); i++) {
		ctl_table_cell(&t, "%zu", i + 1);
		ctl_table_cell(&t, "%s", i < n_tests ? tests[i].name : "-");
		ctl_table_cell(&t, "%s%s", wp_run_test_verdict(r, i),
			       wp_run_test_truncated(r, i) ? " (output cut)" : "");
		ctl_table_cell(&t, "%lld ms", wp_run_test_time_ms(r, i));
		ctl_table_cell(&t, "%lld KB", wp_run_test_memory_kb(r, i));
	}
	/* one line per test, the reason under a failing one */
	struct explain_ctx x = {r, tests, n_tests};
	ctl_table_print_cb(&t, stdout, "  ", explain_row, &x);
	ctl_table_free(&t);
	if (wp_run_session_node(r))
		snprintf(node, sizeof(node), ", node %s", wp_run_session_node(r));
	if (cs)
		printf("compiled in %lld ms; ", wp_run_compile_time_ms(r));
	printf("%s: %d/%d passed (session %s, pool %s%s)\n", wp_run_verdict(r), wp_run_passed(r), wp_run_total(r),
	       wp_run_session_id(r) ? wp_run_session_id(r) : "?", wp_run_session_pool(r) ? wp_run_session_pool(r) : "?",
	       node);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS,
					     {"session", required_argument, NULL, 's'},
					     {"lang", required_argument, NULL, 'l'},
					     {"pool", required_argument, NULL, 'p'},
					     {"tests", required_argument, NULL, 't'},
					     {"stdin", required_argument, NULL, 'i'},
					     {"limit", required_argument, NULL, 'L'},
					     {"compare", required_argument, NULL, 'C'},
					     {"stop-on-failure", no_argument, NULL, 'F'},
					     {0}};
	static const struct ctl_cmd cmd = {"run", run_help, "s:l:p:t:i:", opts};
	const char *session = NULL, *lang = NULL, *pool = NULL, *dir = NULL, *input = NULL, *file, *limits[16];
	const char *compare = NULL;
	size_t n_limits = 0, n_tests = 0, src_len;
	struct test_case *tests = NULL;
	struct wp_run_request *req = NULL;
	struct wp_run_result *res = NULL;
	struct wp_client *c;
	bool stop = false;
	char *source = NULL;
	int o, status;

	while ((o = ctl_getopt(&cmd, argc, argv)) != -1) {
		switch (o) {
		case 's': session = optarg; break;
		case 'l': lang = optarg; break;
		case 'p': pool = optarg; break;
		case 't': dir = optarg; break;
		case 'i': input = optarg; break;
		case 'C': compare = optarg; break;
		case 'F': stop = true; break;
		case 'L':
			if (n_limits == sizeof(limits) / sizeof(limits[0]))
				return ctl_usage(&cmd, "too many --limit");
			limits[n_limits++] = optarg;
			break;
		default: return ctl_opt_status(o);
		}
	}
	if (optind != argc - 1)
		return ctl_usage(&cmd, optind >= argc ? "which program? give FILE" : "one FILE only");
	file = argv[optind];
	if (!session)
		return ctl_usage(&cmd, "--session ID is required");
	if (dir && input)
		return ctl_usage(&cmd, "--tests and --stdin exclude each other");
	if (lang && pool)
		return ctl_usage(&cmd, "--lang and --pool exclude each other");
	if (input && strcmp(input, "-") == 0 && strcmp(file, "-") == 0)
		return ctl_usage(&cmd, "the program and its input cannot both come from standard input");
	if (!(source = ctl_slurp(file, &src_len)))
		return ctl_usage(&cmd, "cannot read `%s`: %s", file, strerror(errno));
	if (strlen(source) != src_len || !(req = wp_run_request_new(source))) {
		free(source);
		return ctl_usage(&cmd, "`%s` is not UTF-8 text", file);
	}
	free(source);

	status = CTL_OK;
	for (size_t i = 0; i < n_limits && status == CTL_OK; i++)
		if (parse_limit(req, limits[i]) < 0)
			status = ctl_usage(&cmd,
					   "--limit wants KEY=NUMBER with KEY one of cpu_ms, wall_ms, memory_kb, "
					   "pids, output_bytes, fsize_bytes; not `%s`",
					   limits[i]);
	if (status == CTL_OK && compare && parse_compare(req, compare) < 0)
		status =
		    ctl_usage(&cmd, "--compare wants trailing, exact, tokens or float[:TOLERANCE], not `%s`", compare);
	if (status == CTL_OK && stop)
		wp_run_request_set_stop_on_failure(req, true);
	if (status == CTL_OK && dir) {
		status = load_tests(&cmd, dir, &tests, &n_tests);
		for (size_t i = 0; status == CTL_OK && i < n_tests; i++)
			if (wp_run_request_add_test(req, tests[i].in, tests[i].in_len, tests[i].expected,
						    tests[i].expected_len) < 0)
				status = ctl_usage(&cmd, "test `%s` in `%s` is not UTF-8 text", tests[i].name, dir);
	} else if (status == CTL_OK) {
		size_t len = 0;
		char *in = input ? ctl_slurp(input, &len) : strdup("");
		if (!in)
			status = ctl_usage(&cmd, "cannot read `%s`: %s", input, strerror(errno));
		else if (wp_run_request_add_test(req, in, len, NULL, 0) < 0)
			status = ctl_usage(&cmd, "the input `%s` is not UTF-8 text", input);
		free(in);
	}
	if (status == CTL_OK)
		status = ctl_pick_pool(&cmd, lang, pool, file, false, &pool);
	if (status == CTL_OK && !(c = ctl_client()))
		status = CTL_USAGE;
	if (status != CTL_OK)
		goto out;

	if (wp_session_run(c, pool, session, req, &res) < 0) {
		status = ctl_fail("run");
		goto out;
	}
	status = verdict_status(wp_run_verdict(res));
	if (ctl_opt.json) {
		ctl_print_json(res);
	} else if (dir) {
		print_run(res, tests, n_tests, file);
	} else {
		/* a single run: the program's own output, then its verdict */
		size_t len;
		const char *cs = wp_run_compile_status(res);
		if (cs && strcmp(cs, "error") == 0) {
			fputs(wp_run_compile_stderr(res), stderr);
			fprintf(stderr, "compilation_error: %s does not compile\n", file);
		} else if (wp_run_test_count(res) > 0) {
			const char *out = wp_run_test_stdout(res, 0, &len);
			fwrite(out, 1, len, stdout);
			fflush(stdout);
			const char *err = wp_run_test_stderr(res, 0, &len);
			fwrite(err, 1, len, stderr);
			fprintf(stderr, "%s: %lld ms CPU, %lld ms wall, %lld KB, exit code %d%s\n", wp_run_verdict(res),
				wp_run_test_time_ms(res, 0), wp_run_test_wall_ms(res, 0), wp_run_test_memory_kb(res, 0),
				wp_run_test_exit_code(res, 0), wp_run_test_truncated(res, 0) ? " (output cut)" : "");
		} else {
			fprintf(stderr, "%s\n", wp_run_verdict(res));
		}
	}
out:
	wp_free(res);
	wp_free(req);
	tests_free(tests, n_tests);
	return status;
}

/* ---- exec ------------------------------------------------------------- */

static const char exec_help[] =
    "Usage: poolctl exec --session ID [--lang LANG | --pool POOL] CODE|-\n"
    "\n"
    "Runs CODE (\"-\": standard input) in the session's stateful interpreter, the\n"
    "Azure dynamic sessions code/execute API: variables, imports and files live on\n"
    "between calls with the same session. Prints what the code wrote to stdout,\n"
    "its stderr (on stderr), then the value of the last expression.\n"
    "\n"
    "  -s, --session ID         the session (required)\n"
    "  -l, --lang LANG          python or javascript; its pool is looked up\n"
    "  -p, --pool POOL          the pool, one with `stateful = yes` (default: the server's\n"
    "                           default pool)\n"
    "      --exec-timeout SECS  the execution's own limit (timeoutInSeconds, 1 to 220)\n"
    "\n"
    "Exit status: 0 Success; 1 Failure (the code raised); 2 usage; 3 poold failed.\n"
    "\n"
    "Examples:\n"
    "  poolctl exec -s agent-7 'x = 41'\n"
    "  poolctl exec -s agent-7 'x + 1'              # 42\n"
    "  poolctl exec -s agent-7 --lang javascript - < step.js\n";

int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS,
					     {"session", required_argument, NULL, 's'},
					     {"lang", required_argument, NULL, 'l'},
					     {"pool", required_argument, NULL, 'p'},
					     {"exec-timeout", required_argument, NULL, 'E'},
					     {0}};
	static const struct ctl_cmd cmd = {"exec", exec_help, "s:l:p:", opts};
	const char *session = NULL, *lang = NULL, *pool = NULL;
	struct wp_exec_result *res = NULL;
	struct wp_client *c;
	double exec_timeout = 0;
	char *code = NULL;
	size_t len;
	int o, status;

	while ((o = ctl_getopt(&cmd, argc, argv)) != -1) {
		switch (o) {
		case 's': session = optarg; break;
		case 'l': lang = optarg; break;
		case 'p': pool = optarg; break;
		case 'E':
			if (ctl_parse_duration(optarg, &exec_timeout) < 0 || exec_timeout < 1 || exec_timeout > 86400)
				return ctl_usage(&cmd, "--exec-timeout wants 1 s to 1 day, not `%s`", optarg);
			break;
		default: return ctl_opt_status(o);
		}
	}
	if (optind != argc - 1)
		return ctl_usage(&cmd,
				 optind >= argc ? "what code? give CODE, or - to read it" : "one CODE only (quote it)");
	if (!session)
		return ctl_usage(&cmd, "--session ID is required");
	if (lang && pool)
		return ctl_usage(&cmd, "--lang and --pool exclude each other");
	if (strcmp(argv[optind], "-") == 0) {
		if (!(code = ctl_slurp("-", &len)))
			return ctl_usage(&cmd, "cannot read standard input: %s", strerror(errno));
	} else if (!(code = strdup(argv[optind]))) {
		return ctl_usage(&cmd, "out of memory");
	}
	status = ctl_pick_pool(&cmd, lang, pool, NULL, true, &pool);
	if (status == CTL_OK && !(c = ctl_client()))
		status = CTL_USAGE;
	if (status != CTL_OK)
		goto out;
	if (wp_session_exec(c, pool, session, code, (int)exec_timeout, &res) < 0) {
		if (wp_error_status(c) == 404 && strcmp(wp_error_code(c), "NotFound") == 0) {
			fprintf(
			    stderr,
			    "poolctl exec: poold at %s has no stateful interpreter: POST %s%s/code/execute answered "
			    "404 NotFound (%s)\n",
			    wp_client_url(c), pool ? "/pools/" : "", pool ? pool : "", wp_error_message(c));
			status = CTL_SERVER;
		} else {
			status = ctl_fail("exec");
		}
		goto out;
	}
	status = strcmp(wp_exec_status(res), "Success") == 0 ? CTL_OK : CTL_FAILED;
	if (ctl_opt.json) {
		ctl_print_json(res);
		goto out;
	}
	fputs(wp_exec_stdout(res), stdout);
	fflush(stdout);
	fputs(wp_exec_stderr(res), stderr);
	if (wp_exec_result(res))
		printf("%s\n", wp_exec_result(res));
	if (status != CTL_OK)
		fprintf(stderr, "%s\n", *wp_exec_status(res) ? wp_exec_status(res) : "Failure");
out:
	wp_free(res);
	free(code);
	return status;
}
