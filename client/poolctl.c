/* poolctl — warmpool's command line, for contest staff and admins.
 *
 * A thin shell over libwarmpool: each command parses its options, makes one
 * or a few library calls and prints either a table (for people) or the
 * server's JSON (--json, for scripts). This file holds main(), the options
 * every command shares, error reporting with the exit statuses, and the
 * output helpers; poolctl_run.c has run and exec, poolctl_session.c
 * files and sessions, poolctl_pools.c pools, nodes, langs and top. */
#include "poolctl.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct ctl_options ctl_opt;

static struct wp_client *client;

static const char main_help[] =
    "Usage: poolctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Drive warmpool's poold: judge submissions, use the stateful interpreter,\n"
    "manage a session's files, and size the warm pools.\n"
    "\n"
    "Commands:\n"
    "  run        run a program against test cases in a session\n"
    "  exec       run code in a session's stateful interpreter\n"
    "  files      put, get, ls, rm a session's files\n"
    "  sessions   ls, show, release sessions\n"
    "  pools      ls, show, resize, set, drain, undrain pools\n"
    "  nodes      list the sandboxd nodes\n"
    "  langs      list the languages and the pools serving them\n"
    "  top        a live view of pools, nodes and sessions\n"
    "\n"
    "Options (every command takes them, before or after its name):\n"
    "      --url URL       poold's address (WARMPOOL_URL; default " WP_DEFAULT_URL ")\n"
    "      --token TOKEN   bearer token (WARMPOOL_TOKEN)\n"
    "      --timeout SECS  give up on one request after SECS (default 600; 5m, 1h work)\n"
    "      --cacert FILE   https://: the CA poold's certificate is signed by (WARMPOOL_CACERT)\n"
    "      --cert FILE --key FILE  a client certificate and its key (WARMPOOL_CERT, WARMPOOL_KEY)\n"
    "      --json          print the server's JSON answer instead of a table; an\n"
    "                      error is then {\"error\": {\"code\", \"message\", \"exit_status\"}}\n"
    "                      on stdout too (with \"status\" when poold answered one)\n"
    "  -h, --help          this help; `poolctl COMMAND --help` for a command's\n"
    "  -V, --version       print the version\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the program failed a test (run) or raised an error (exec)\n"
    "  2  usage: bad options, an unreadable local file, or poold answered 400\n"
    "  3  poold failed: unreachable, timed out, refused the token, or answered an error\n"
    "\n"
    "Examples:\n"
    "  poolctl run --session alice --lang cpp sol.cpp --tests tests/\n"
    "  poolctl exec --session agent-7 'import math; math.pi'\n"
    "  poolctl pools resize python --warm 200 --max 1000 --wait\n"
    "  WARMPOOL_URL=http://judge:8080 WARMPOOL_TOKEN=$(cat token) poolctl top\n";

/* ---- options ---------------------------------------------------------- */

int ctl_parse_count(const char *s, long long *out)
{
	char *end;
	long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v > 1000000000LL)
		return -EINVAL;
	*out = v;
	return 0;
}

int ctl_parse_duration(const char *s, double *out)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {{"", 1}, {"s", 1}, {"ms", 0.001}, {"m", 60}, {"min", 60}, {"h", 3600}};
	char *end;
	double v;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || !isfinite(v) || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].unit) == 0) {
			*out = v * units[i].mult;
			return *out <= 86400.0 * 365 ? 0 : -ERANGE;
		}
	}
	return -EINVAL;
}

static void print_help(const struct ctl_cmd *cmd)
{
	fputs(cmd->help, stdout);
	printf(
	    "\nCommon options: --url URL, --token TOKEN, --timeout SECS, --json, -h/--help,\n"
	    "  --cacert FILE, --cert FILE --key FILE (https://: the CA of poold's certificate, a client certificate)\n"
	    "(see `poolctl --help`; WARMPOOL_URL, WARMPOOL_TOKEN, WARMPOOL_CACERT, WARMPOOL_CERT and WARMPOOL_KEY\n"
	    "are read when not given).\n");
}

/* With --json, an error is one JSON object on stdout, in poold's error shape
 * plus what poolctl adds: {"error": {"code", "message", "status"?, "exit_status"}}
 * (status: the HTTP status poold answered, when it did). Scripts read one
 * stream; the exit status is the same as without --json. */
static void print_json_error(const char *code, const char *message, int http_status, int exit_status)
{
	json_t *e = json_pack("{s:s, s:s, s:i}", "code", code, "message", message, "exit_status", exit_status);
	if (e && http_status > 0)
		json_object_set_new(e, "status", json_integer(http_status));
	ctl_print_json_pack(e ? json_pack("{s:o}", "error", e) : NULL);
}

/* fmt with ap, or NULL without memory. */
static char *vformat(const char *fmt, va_list ap)
{
	char *msg;
	return vasprintf(&msg, fmt, ap) < 0 ? NULL : msg;
}

int ctl_error(int exit_status, const char *code, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = vformat(fmt, ap);
	va_end(ap);
	if (ctl_opt.json)
		print_json_error(code, msg ? msg : code, 0, exit_status);
	else
		fprintf(stderr, "%s\n", msg ? msg : code);
	free(msg);
	return exit_status;
}

int ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = vformat(fmt, ap);
	va_end(ap);
	if (ctl_opt.json) {
		char *full = NULL;
		if (asprintf(&full, "poolctl%s%s: %s (try `poolctl%s%s --help`)", *cmd->name ? " " : "", cmd->name,
			     msg ? msg : "usage error", *cmd->name ? " " : "", cmd->name) < 0)
			full = NULL;
		print_json_error("UsageError", full ? full : "usage error", 0, CTL_USAGE);
		free(full);
	} else {
		fprintf(stderr, "poolctl%s%s: %s\nTry `poolctl%s%s --help`.\n", *cmd->name ? " " : "", cmd->name,
			msg ? msg : "usage error", *cmd->name ? " " : "", cmd->name);
	}
	free(msg);
	return CTL_USAGE;
}

int ctl_opt_status(int opt)
{
	return opt == CTL_OPT_HELP ? CTL_OK : CTL_USAGE;
}

int ctl_getopt(const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *own = cmd->shortopts ? cmd->shortopts : "";
	char shortopts[64];
	double t;
	int o;

	/* '+' (stop at the first operand) must come first, then ':' */
	if (*own == '+')
		snprintf(shortopts, sizeof(shortopts), "+:h%s", own + 1);
	else
		snprintf(shortopts, sizeof(shortopts), ":h%s", own);
	opterr = 0;
	for (;;) {
		o = getopt_long(argc, argv, shortopts, cmd->longopts, NULL);
		switch (o) {
		case CTL_OPT_URL: ctl_opt.url = optarg; break;
		case CTL_OPT_TOKEN: ctl_opt.token = optarg; break;
		case CTL_OPT_JSON: ctl_opt.json = true; break;
		case CTL_OPT_CACERT: ctl_opt.cacert = optarg; break;
		case CTL_OPT_CERT: ctl_opt.cert = optarg; break;
		case CTL_OPT_KEY: ctl_opt.key = optarg; break;
		case CTL_OPT_TIMEOUT:
			if (ctl_parse_duration(optarg, &t) < 0 || t <= 0) {
				ctl_usage(cmd, "--timeout wants a duration such as 30, 2.5s or 5m, not `%s`", optarg);
				return CTL_OPT_ERROR;
			}
			ctl_opt.timeout_s = t;
			break;
		case 'h': print_help(cmd); return CTL_OPT_HELP;
		case ':': ctl_usage(cmd, "option `%s` needs a value", argv[optind - 1]); return CTL_OPT_ERROR;
		case '?':
			if (optopt)
				ctl_usage(cmd, "unknown option `-%c`", optopt);
			else
				ctl_usage(cmd, "unknown option `%s`", argv[optind - 1]);
			return CTL_OPT_ERROR;
		default: return o; /* the command's own, or -1 */
		}
	}
}

/* ---- the client and its errors ---------------------------------------- */

struct wp_client *ctl_client(void)
{
	const char *url = ctl_opt.url ? ctl_opt.url : getenv("WARMPOOL_URL");

	if (client)
		return client;
	client = wp_client_new(ctl_opt.url, ctl_opt.token);
	if (!client) {
		ctl_error(CTL_USAGE, "UsageError",
			  "poolctl: `%s` is not an http:// or https:// URL (from %s), or the token holds a line break",
			  url && *url ? url : WP_DEFAULT_URL, ctl_opt.url ? "--url" : "WARMPOOL_URL");
		return NULL;
	}
	if ((ctl_opt.cacert || ctl_opt.cert || ctl_opt.key) &&
	    wp_client_set_tls(client, ctl_opt.cacert ? ctl_opt.cacert : getenv("WARMPOOL_CACERT"),
			      ctl_opt.cert ? ctl_opt.cert : getenv("WARMPOOL_CERT"),
			      ctl_opt.key ? ctl_opt.key : getenv("WARMPOOL_KEY")) < 0) {
		ctl_error(CTL_USAGE, "UsageError",
			  "poolctl: --cert and --key go together (a client certificate and its key)");
		return NULL;
	}
	if (ctl_opt.timeout_s > 0)
		wp_client_set_timeout(client, 5.0 < ctl_opt.timeout_s ? 5.0 : ctl_opt.timeout_s, ctl_opt.timeout_s);
	return client;
}

static bool token_given(void)
{
	const char *t = ctl_opt.token ? ctl_opt.token : getenv("WARMPOOL_TOKEN");
	return t && *t;
}

/* The error code of a failure poold did not name. */
static const char *local_code(enum wp_err kind)
{
	switch (kind) {
	case WP_ERR_USAGE: return "UsageError";
	case WP_ERR_NOMEM: return "OutOfMemory";
	case WP_ERR_CONNECT: return "Unreachable";
	case WP_ERR_TIMEOUT: return "Timeout";
	case WP_ERR_PROTOCOL: return "ProtocolError";
	case WP_ERR_IO: return "LocalIOError";
	default: return "Error";
	}
}

int ctl_fail(const char *what)
{
	enum wp_err kind = wp_error_kind(client);
	int status = wp_error_status(client), exit_status = CTL_SERVER;
	const char *code = wp_error_code(client);
	bool hint = status == 401 && !token_given();
	char *msg = NULL;

	if (kind == WP_ERR_USAGE || kind == WP_ERR_IO || (kind == WP_ERR_HTTP && status == 400))
		exit_status = CTL_USAGE;
	if (asprintf(&msg, "poolctl%s%s: %s%s", what ? " " : "", what ? what : "", wp_error_text(client),
		     hint ? "; give one with --token or WARMPOOL_TOKEN" : "") < 0)
		msg = NULL;
	if (ctl_opt.json)
		print_json_error(code && *code ? code : local_code(kind), msg ? msg : wp_error_text(client), status,
				 exit_status);
	else
		fprintf(stderr, "%s\n", msg ? msg : wp_error_text(client));
	free(msg);
	return exit_status;
}

/* ---- pools for languages ---------------------------------------------- */

static const struct {
	const char *ext, *lang;
} extensions[] = {{".py", "python"}, {".js", "javascript"}, {".mjs", "javascript"}, {".java", "java"},
		  {".c", "c"},	     {".cc", "cpp"},	    {".cpp", "cpp"},	    {".cxx", "cpp"}};

/* The extension of FILE's last path component ("" when it has none). */
static const char *extension_of(const char *file)
{
	const char *base = strrchr(file, '/'), *dot;

	base = base ? base + 1 : file;
	dot = strrchr(base, '.');
	return dot && dot != base ? dot : "";
}

static const char *language_of_file(const char *file)
{
	const char *ext = file ? extension_of(file) : "";

	for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++)
		if (strcmp(ext, extensions[i].ext) == 0)
			return extensions[i].lang;
	return NULL;
}

/* The stateful pool of a language, from the pool list; CTL_OK with *found
 * empty when there is none (or the server does not say which are). */
static int stateful_pool(const struct ctl_cmd *cmd, struct wp_client *c, const char *lang, char *found, size_t len)
{
	struct wp_pools *pools = NULL;

	if (wp_pools_list(c, &pools) < 0)
		return ctl_fail(cmd->name);
	for (size_t i = 0; i < wp_pools_count(pools) && !*found; i++) {
		const struct wp_pool *p = wp_pools_at(pools, i);
		if (strcmp(wp_pool_language(p), lang) == 0 && wp_pool_stateful(p))
			snprintf(found, len, "%s", wp_pool_name(p));
	}
	wp_free(pools);
	return CTL_OK;
}

int ctl_pick_pool(const struct ctl_cmd *cmd, const char *lang, const char *pool, const char *file, bool stateful,
		  const char **out)
{
	static char found[256];
	struct wp_languages *langs = NULL;
	struct wp_client *c;
	bool guessed = false;
	int status;

	*out = pool;
	if (pool)
		return CTL_OK;
	if (!lang && (lang = language_of_file(file)))
		guessed = true;
	if (!lang && file && *extension_of(file)) {
		/* a language we do not know: never run it in the default pool */
		char known[128] = "";
		for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++)
			snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? " " : "",
				 extensions[i].ext);
		return ctl_usage(cmd,
				 "cannot tell the language of `%s` from `%s` (known: %s); give --lang LANG or --pool "
				 "POOL (`poolctl langs` lists them)",
				 file, extension_of(file), known);
	}
	if (!lang)
		return CTL_OK; /* the server's default pool */
	if (!(c = ctl_client()))
		return CTL_USAGE;
	found[0] = '\0';
	if (stateful && (status = stateful_pool(cmd, c, lang, found, sizeof(found))) != CTL_OK)
		return status;
	if (!found[0]) {
		if (wp_languages_list(c, &langs) < 0)
			return ctl_fail(cmd->name);
		for (size_t i = 0; i < wp_languages_count(langs) && !found[0]; i++) {
			const struct wp_language *l = wp_languages_at(langs, i);
			if (strcmp(wp_language_name(l), lang) == 0)
				snprintf(found, sizeof(found), "%s", wp_language_pool(l));
		}
		wp_free(langs);
	}
	if (!found[0])
		return ctl_usage(cmd, "no pool serves language `%s`%s%s%s (`poolctl langs` lists them; or give --pool)",
				 lang, guessed ? " (guessed from " : "", guessed ? file : "", guessed ? ")" : "");
	*out = found;
	return CTL_OK;
}

/* ---- output ----------------------------------------------------------- */

void ctl_print_json_text(const char *text)
{
	json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	char *out = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;

	printf("%s\n", out ? out : text ? text : "null");
	free(out);
	json_decref(j);
}

void ctl_print_json_pack(json_t *j)
{
	char *out = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	printf("%s\n", out ? out : "null");
	free(out);
	json_decref(j);
}

void ctl_print_json(const void *obj)
{
	ctl_print_json_text(wp_json(obj));
}

const char *ctl_span(double s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 10)
		snprintf(buf, len, "%.1f s", s);
	else if (s < 60)
		snprintf(buf, len, "%.0f s", s);
	else if (s < 3600 && (int)s % 60 == 0)
		snprintf(buf, len, "%d min", (int)s / 60);
	else if (s < 3600)
		snprintf(buf, len, "%d min %02d s", (int)s / 60, (int)s % 60);
	else if (s < 86400 * 2 && (int)s % 3600 / 60 == 0)
		snprintf(buf, len, "%d h", (int)s / 3600);
	else if (s < 86400 * 2)
		snprintf(buf, len, "%d h %02d min", (int)s / 3600, (int)s % 3600 / 60);
	else
		snprintf(buf, len, "%d d", (int)(s / 86400));
	return buf;
}

const char *ctl_ago(double t, char *buf, size_t len)
{
	char span[32];
	struct timespec now;

	if (t <= 0)
		return snprintf(buf, len, "never"), buf;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(buf, len, "%s ago", ctl_span((double)now.tv_sec + (double)now.tv_nsec / 1e9 - t, span, sizeof(span)));
	return buf;
}

const char *ctl_size(long long b, char *buf, size_t len)
{
	if (b < 1024)
		snprintf(buf, len, "%lld B", b);
	else if (b < 1024 * 1024)
		snprintf(buf, len, "%.1f KiB", (double)b / 1024);
	else if (b < 1024LL * 1024 * 1024)
		snprintf(buf, len, "%.1f MiB", (double)b / (1024 * 1024));
	else
		snprintf(buf, len, "%.1f GiB", (double)b / (1024 * 1024 * 1024));
	return buf;
}

char *ctl_slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL, *p;
	size_t n = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			if (!(p = realloc(buf, cap + 1))) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = p;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (buf && ferror(f)) {
		free(buf);
		buf = NULL;
		errno = errno ? errno : EIO;
	}
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

/* Display width of UTF-8 text: one column per character. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void ctl_table_init(struct ctl_table *t, const char *align, ...)
{
	va_list ap;
	const char *h;

	*t = (struct ctl_table){.align = align, .ncols = strlen(align)};
	va_start(ap, align);
	while ((h = va_arg(ap, const char *)))
		ctl_table_cell(t, "%s", h);
	va_end(ap);
}

void ctl_table_cell(struct ctl_table *t, const char *fmt, ...)
{
	va_list ap;
	char *s, **p;

	if (t->ncells == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		if (!(p = realloc(t->cells, cap * sizeof(*p))))
			return;
		t->cells = p;
		t->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	t->cells[t->ncells++] = s;
}

void ctl_table_print_cb(struct ctl_table *t, FILE *f, const char *indent, void (*after_row)(size_t row, void *data),
			void *data)
{
	size_t w[32] = {0}, ncols = t->ncols < 32 ? t->ncols : 32;

	for (size_t i = 0; i < t->ncells; i++)
		if (i % t->ncols < ncols && t->cells[i] && width(t->cells[i]) > w[i % t->ncols])
			w[i % t->ncols] = width(t->cells[i]);
	for (size_t i = 0; i < t->ncells; i++) {
		size_t col = i % t->ncols, cw = col < ncols ? w[col] : 0;
		const char *s = t->cells[i] ? t->cells[i] : "?";
		size_t pad = cw > width(s) ? cw - width(s) : 0;
		bool last = col == t->ncols - 1 || i == t->ncells - 1;

		if (col == 0 && indent)
			fputs(indent, f);
		if (t->align[col] == 'r')
			fprintf(f, "%*s%s", (int)pad, "", s);
		else
			fprintf(f, "%s%*s", s, last ? 0 : (int)pad, "");
		if (!last) {
			fputs("  ", f);
			continue;
		}
		fputc('\n', f);
		if (after_row)
			after_row(i / t->ncols, data);
	}
}

void ctl_table_print(struct ctl_table *t, FILE *f, const char *indent)
{
	ctl_table_print_cb(t, f, indent, NULL, NULL);
}

void ctl_table_free(struct ctl_table *t)
{
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->ncells = t->cap = 0;
}

/* ---- main ------------------------------------------------------------- */

static const struct {
	const char *name, *alias;
	int (*fn)(int argc, char **argv);
} commands[] = {
    {"run", NULL, cmd_run},
    {"exec", NULL, cmd_exec},
    {"files", NULL, cmd_files},
    {"sessions", "session", cmd_sessions},
    {"pools", "pool", cmd_pools},
    {"nodes", "node", cmd_nodes},
    {"langs", "languages", cmd_langs},
    {"top", NULL, cmd_top},
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {"version", no_argument, NULL, 'V'}, {0}};
	static const struct ctl_cmd main_cmd = {"", main_help, "+V", opts};
	int o, r;

	/* --json anywhere makes every error JSON, even one found before it */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			ctl_opt.json = true;
	/* global options stop at the command's name ('+' in shortopts) */
	while ((o = ctl_getopt(&main_cmd, argc, argv)) != -1) {
		if (o == 'V') {
			printf("poolctl %s (libwarmpool %s)\n", WP_VERSION, wp_version());
			return CTL_OK;
		}
		if (o == CTL_OPT_HELP)
			return CTL_OK;
		if (o == CTL_OPT_ERROR)
			return CTL_USAGE;
	}
	if (optind >= argc) {
		fputs(main_help, stderr);
		return CTL_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		if (optind + 1 >= argc) {
			fputs(main_help, stdout);
			return CTL_OK;
		}
		name = argv[optind + 1];
		char *help_argv[] = {(char *)name, (char *)"--help", NULL};
		optind = 0;
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (strcmp(name, commands[i].name) == 0 ||
			    (commands[i].alias && strcmp(name, commands[i].alias) == 0))
				return commands[i].fn(2, help_argv);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) == 0 ||
		    (commands[i].alias && strcmp(name, commands[i].alias) == 0)) {
			int at = optind;
			optind = 0; /* the command parses its own argv afresh */
			r = commands[i].fn(argc - at, argv + at);
			wp_client_free(client);
			return r;
		}
	}
	return ctl_usage(&main_cmd, "unknown command `%s`", name);
}
