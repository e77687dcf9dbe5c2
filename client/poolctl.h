/* poolctl.h — what poolctl's command files share: the global options, exit
 * statuses, error reporting, option parsing and the table printer. */
#ifndef POOLCTL_H
#define POOLCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "warmpool.h"

/* Exit statuses (poolctl --help documents them). */
enum {
	CTL_OK = 0,
	CTL_FAILED = 1, /* the program failed a test, or the interpreter reported a failure */
	CTL_USAGE = 2,	/* bad command line, unreadable local file, or 400 from the server */
	CTL_SERVER = 3, /* poold unreachable, timed out, or refused/failed the request */
};

/* Options every command takes (before or after the command name). */
struct ctl_options {
	const char *url;   /* NULL: WARMPOOL_URL, then http://127.0.0.1:8080 */
	const char *token; /* NULL: WARMPOOL_TOKEN */
	double timeout_s;  /* 0: the library's default */
	bool json;
	const char *cacert, *cert, *key; /* HTTPS; NULL: WARMPOOL_CACERT, WARMPOOL_CERT, WARMPOOL_KEY */
};

extern struct ctl_options ctl_opt;

/* Long options of every command; their only short one is -h. */
enum { CTL_OPT_URL = 0x101, CTL_OPT_TOKEN, CTL_OPT_TIMEOUT, CTL_OPT_JSON, CTL_OPT_CACERT, CTL_OPT_CERT, CTL_OPT_KEY };
/* clang-format off */
#define CTL_COMMON_OPTIONS                                        \
	{"url", required_argument, NULL, CTL_OPT_URL},            \
	{"token", required_argument, NULL, CTL_OPT_TOKEN},        \
	{"timeout", required_argument, NULL, CTL_OPT_TIMEOUT},    \
	{"json", no_argument, NULL, CTL_OPT_JSON},                \
	{"cacert", required_argument, NULL, CTL_OPT_CACERT},      \
	{"cert", required_argument, NULL, CTL_OPT_CERT},          \
	{"key", required_argument, NULL, CTL_OPT_KEY},            \
	{"help", no_argument, NULL, 'h'}
/* clang-format on */

/* A command: its name ("pools resize"), help text and getopt tables. */
struct ctl_cmd {
	const char *name;
	const char *help;
	const char *shortopts; /* without the leading '+'/':' and without 'h' */
	const struct option *longopts;
};

/* getopt_long over argv (argv[0] is the command's name) for cmd, handling
 * the common options itself: returns an option of the command's own, -1 at
 * the end of the options, CTL_OPT_HELP once the help is printed, or
 * CTL_OPT_ERROR once a usage error is. Options may follow operands. */
int ctl_getopt(const struct ctl_cmd *cmd, int argc, char **argv);
#define CTL_OPT_HELP  (-100)
#define CTL_OPT_ERROR (-101)
/* Status for an option ctl_getopt returned that the command does not handle. */
int ctl_opt_status(int opt);

/* "poolctl CMD: <message>" and a hint to --help on stderr; returns CTL_USAGE. */
__attribute__((format(printf, 2, 3))) int ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...);
/* An error of poolctl's own: one line on stderr, or with --json one
 * {"error": {"code", "message", "exit_status"}} object on stdout; returns exit_status. */
__attribute__((format(printf, 3, 4))) int ctl_error(int exit_status, const char *code, const char *fmt, ...);
/* The client for the global options, made on first use; NULL after printing why. */
struct wp_client *ctl_client(void);
/* Prints the handle's last error as one line; returns the exit status it means. */
int ctl_fail(const char *what);

/* Numbers on the command line. */
int ctl_parse_count(const char *s, long long *out); /* 0 … 10^9 */
int ctl_parse_duration(const char *s, double *out); /* "90", "1.5s", "5m", "2h" → seconds */

/* Output helpers. */
void ctl_print_json(const void *obj);
void ctl_print_json_text(const char *text);
void ctl_print_json_pack(json_t *j);			      /* takes j (a json_pack() result; NULL prints null) */
const char *ctl_ago(double unix_time, char *buf, size_t len); /* "12 s ago" */
const char *ctl_span(double seconds, char *buf, size_t len);  /* "4 m 10 s" */
const char *ctl_size(long long bytes, char *buf, size_t len); /* "1.5 MiB" */
/* Reads a whole file ("-": stdin); NULL with errno set. */
char *ctl_slurp(const char *path, size_t *len);

/* A table printed with aligned columns; align holds 'l' or 'r' per column. */
struct ctl_table {
	size_t ncols, ncells, cap;
	const char *align;
	char **cells;
};
void ctl_table_init(struct ctl_table *t, const char *align, ...); /* headers, NULL-terminated */
__attribute__((format(printf, 2, 3))) void ctl_table_cell(struct ctl_table *t, const char *fmt, ...);
void ctl_table_print(struct ctl_table *t, FILE *f, const char *indent);
/* The same, calling after_row(row, data) after each row (0: the header). */
void ctl_table_print_cb(struct ctl_table *t, FILE *f, const char *indent, void (*after_row)(size_t row, void *data),
			void *data);
void ctl_table_free(struct ctl_table *t);

/* The commands. */
int cmd_run(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_files(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_pools(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_langs(int argc, char **argv);
int cmd_top(int argc, char **argv);

/* The sessions of l as a table (sessions ls, top). */
void ctl_sessions_table(const struct wp_sessions *l, const char *indent);

/* --lang/--pool/FILE → the pool to use (NULL: the server's default);
 * returns an exit status, CTL_OK when *pool is set. stateful: prefer a pool
 * of the language whose sandboxes run the interpreter (exec). */
int ctl_pick_pool(const struct ctl_cmd *cmd, const char *lang, const char *pool, const char *file, bool stateful,
		  const char **out);

#endif
