/* poolctl_session.c — a session's files (put, get, ls, rm) and the
 * sessions themselves (ls, show, release). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "poolctl.h"

/* ---- files ------------------------------------------------------------ */

static const char files_help[] = "Usage: poolctl files ls  --session ID [--lang LANG | --pool POOL]\n"
				 "       poolctl files put --session ID LOCAL [NAME]\n"
				 "       poolctl files get --session ID NAME [-o LOCAL]\n"
				 "       poolctl files rm  --session ID NAME…\n"
				 "\n"
				 "The files of the session's sandbox (its /mnt/data): what a program reads and\n"
				 "writes. `put` leases a sandbox when the session has none; the others need one.\n"
				 "NAME is one path component (no `/`). LOCAL \"-\" is standard input or output.\n"
				 "\n"
				 "  -s, --session ID     the session (required)\n"
				 "  -l, --lang LANG      the language, whose pool is looked up\n"
				 "  -p, --pool POOL      the pool (default: the server's default pool)\n"
				 "  -o, --output LOCAL   where `get` writes (default: standard output)\n"
				 "\n"
				 "Examples:\n"
				 "  poolctl files put -s alice data.csv\n"
				 "  poolctl files put -s alice - input.txt < local.txt\n"
				 "  poolctl files ls -s alice\n"
				 "  poolctl files get -s alice result.png -o result.png\n"
				 "  poolctl files rm -s alice data.csv result.png\n";

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

int cmd_files(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS,
					     {"session", required_argument, NULL, 's'},
					     {"lang", required_argument, NULL, 'l'},
					     {"pool", required_argument, NULL, 'p'},
					     {"output", required_argument, NULL, 'o'},
					     {0}};
	static const char *const subs[] = {"ls", "put", "get", "rm", NULL};
	static struct ctl_cmd cmd = {"files", files_help, "s:l:p:o:", opts};
	const char *session = NULL, *lang = NULL, *pool = NULL, *output = NULL, *sub;
	char name[64];
	struct wp_client *c;
	int o, status = CTL_OK;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			o = ctl_getopt(&cmd, argc, argv);
			return ctl_opt_status(o);
		}
		return ctl_usage(&cmd, "which one: ls, put, get or rm?");
	}
	sub = argv[1];
	for (size_t i = 0;; i++) {
		if (!subs[i])
			return ctl_usage(&cmd, "unknown subcommand `%s`: ls, put, get or rm", sub);
		if (strcmp(sub, subs[i]) == 0)
			break;
	}
	snprintf(name, sizeof(name), "files %s", sub);
	cmd.name = name;
	argc--;
	argv++;
	while ((o = ctl_getopt(&cmd, argc, argv)) != -1) {
		switch (o) {
		case 's': session = optarg; break;
		case 'l': lang = optarg; break;
		case 'p': pool = optarg; break;
		case 'o': output = optarg; break;
		default: return ctl_opt_status(o);
		}
	}
	if (!session)
		return ctl_usage(&cmd, "--session ID is required");
	if (lang && pool)
		return ctl_usage(&cmd, "--lang and --pool exclude each other");
	int nargs = argc - optind;
	if ((strcmp(sub, "ls") == 0 && nargs != 0) || (strcmp(sub, "put") == 0 && (nargs < 1 || nargs > 2)) ||
	    (strcmp(sub, "get") == 0 && nargs != 1) || (strcmp(sub, "rm") == 0 && nargs < 1))
		return ctl_usage(&cmd, "wrong number of arguments");
	if ((status = ctl_pick_pool(&cmd, lang, pool, NULL, false, &pool)) != CTL_OK)
		return status;
	if (!(c = ctl_client()))
		return CTL_USAGE;

	if (strcmp(sub, "ls") == 0) {
		struct wp_files *f;
		struct ctl_table t;
		char sz[32], ago[48];
		if (wp_files_list(c, pool, session, &f) < 0)
			return ctl_fail(cmd.name);
		if (ctl_opt.json) {
			ctl_print_json(f);
		} else {
			ctl_table_init(&t, "lrll", "NAME", "SIZE", "MODIFIED", "TYPE", NULL);
			for (size_t i = 0; i < wp_files_count(f); i++) {
				ctl_table_cell(&t, "%s", wp_files_name(f, i));
				ctl_table_cell(&t, "%s", ctl_size(wp_files_size(f, i), sz, sizeof(sz)));
				ctl_table_cell(&t, "%s", ctl_ago(wp_files_mtime(f, i), ago, sizeof(ago)));
				ctl_table_cell(&t, "%s", wp_files_type(f, i));
			}
			ctl_table_print(&t, stdout, NULL);
			ctl_table_free(&t);
		}
		wp_free(f);
	} else if (strcmp(sub, "put") == 0) {
		const char *local = argv[optind], *dest = nargs == 2 ? argv[optind + 1] : basename_of(local);
		size_t len;
		char *data;
		if (strcmp(local, "-") == 0 && nargs != 2)
			return ctl_usage(&cmd, "give the NAME to store standard input as");
		if (!(data = ctl_slurp(local, &len)))
			return ctl_usage(&cmd, "cannot read `%s`: %s", local, strerror(errno));
		if (wp_file_put(c, pool, session, dest, data, len) < 0)
			status = ctl_fail(cmd.name);
		else if (ctl_opt.json)
			ctl_print_json_pack(json_pack("{s:s, s:I}", "name", dest, "size", (json_int_t)len));
		else
			printf("%s → %s (%zu bytes)\n", local, dest, len);
		free(data);
	} else if (strcmp(sub, "get") == 0) {
		FILE *out = !output || strcmp(output, "-") == 0 ? stdout : fopen(output, "wbx");
		size_t len = 0;
		if (!out)
			return ctl_usage(&cmd, "cannot create `%s`: %s%s", output, strerror(errno),
					 errno == EEXIST ? " (remove it first)" : "");
		if (wp_file_get(c, pool, session, argv[optind], out, &len) < 0) {
			status = ctl_fail(cmd.name);
			if (out != stdout)
				unlink(output); /* nothing half-written is left */
		} else if (out != stdout) {
			fprintf(stderr, "%s → %s (%zu bytes)\n", argv[optind], output, len);
		}
		if (out != stdout && fclose(out) != 0 && status == CTL_OK)
			status = ctl_usage(&cmd, "writing `%s`: %s", output, strerror(errno));
	} else {
		json_t *removed = json_array();
		for (int i = optind; i < argc; i++) {
			if (wp_file_delete(c, pool, session, argv[i]) < 0) {
				status = ctl_fail(cmd.name);
				break;
			}
			json_array_append_new(removed, json_string(argv[i]));
			if (!ctl_opt.json)
				printf("removed %s\n", argv[i]);
		}
		if (ctl_opt.json && status == CTL_OK)
			ctl_print_json_pack(json_pack("{s:O}", "removed", removed));
		json_decref(removed);
	}
	return status;
}

/* ---- sessions --------------------------------------------------------- */

static const char sessions_help[] =
    "Usage: poolctl sessions ls [--pool POOL]\n"
    "       poolctl sessions show ID [--lang LANG | --pool POOL]\n"
    "       poolctl sessions release ID [--lang LANG | --pool POOL]\n"
    "\n"
    "Sessions are leases: an identifier (a student, an agent's conversation) holding\n"
    "one sandbox of a pool until it is released, idle too long, or too old.\n"
    "`ls` lists them all (an admin token); `show` tells one; `release` ends it and\n"
    "destroys its sandbox (its files and state are gone).\n"
    "\n"
    "  -l, --lang LANG   the language, whose pool is looked up\n"
    "  -p, --pool POOL   the pool (ls: only this pool; else the server's default pool)\n"
    "\n"
    "Examples:\n"
    "  poolctl sessions ls\n"
    "  poolctl sessions ls --pool python --json | jq '.sessions | length'\n"
    "  poolctl sessions show alice --pool cpp\n"
    "  poolctl sessions release alice --pool cpp\n";

static void print_session(const struct wp_session *s)
{
	char a[48], b[48], e[32];

	printf("identifier  %s\n", wp_session_identifier(s));
	printf("pool        %s\n", wp_session_pool(s));
	printf("node        %s\n", wp_session_node(s) ? wp_session_node(s) : "-");
	printf("slot        %s\n", wp_session_slot(s) ? wp_session_slot(s) : "-");
	printf("state       %s%s\n", wp_session_state(s), wp_session_busy(s) ? " (running)" : "");
	printf("created     %s\n", ctl_ago(wp_session_created(s), a, sizeof(a)));
	printf("last used   %s\n", ctl_ago(wp_session_last_used(s), b, sizeof(b)));
	printf("idle left   %s\n", ctl_span(wp_session_expires_in(s), e, sizeof(e)));
	printf("executions  %lld (%lld queued)\n", wp_session_executions(s), wp_session_queued(s));
}

void ctl_sessions_table(const struct wp_sessions *l, const char *indent)
{
	struct ctl_table t;
	char a[48], e[32];

	ctl_table_init(&t, "lllllrll", "SESSION", "POOL", "NODE", "STATE", "BUSY", "RUNS", "IDLE LEFT", "CREATED",
		       NULL);
	for (size_t i = 0; i < wp_sessions_count(l); i++) {
		const struct wp_session *s = wp_sessions_at(l, i);
		ctl_table_cell(&t, "%s", wp_session_identifier(s));
		ctl_table_cell(&t, "%s", wp_session_pool(s));
		ctl_table_cell(&t, "%s", wp_session_node(s) ? wp_session_node(s) : "-");
		ctl_table_cell(&t, "%s", wp_session_state(s));
		ctl_table_cell(&t, "%s", wp_session_busy(s) ? "yes" : "no");
		ctl_table_cell(&t, "%lld", wp_session_executions(s));
		ctl_table_cell(&t, "%s", ctl_span(wp_session_expires_in(s), e, sizeof(e)));
		ctl_table_cell(&t, "%s", ctl_ago(wp_session_created(s), a, sizeof(a)));
	}
	ctl_table_print(&t, stdout, indent);
	ctl_table_free(&t);
}

int cmd_sessions(int argc, char **argv)
{
	static const struct option opts[] = {
	    CTL_COMMON_OPTIONS, {"lang", required_argument, NULL, 'l'}, {"pool", required_argument, NULL, 'p'}, {0}};
	static struct ctl_cmd cmd = {"sessions", sessions_help, "l:p:", opts};
	const char *lang = NULL, *pool = NULL, *sub = "ls";
	struct wp_client *c;
	char name[64];
	int o, status;

	if (argc >= 2 && argv[1][0] != '-') {
		sub = argv[1];
		if (strcmp(sub, "ls") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "release") != 0)
			return ctl_usage(&cmd, "unknown subcommand `%s`: ls, show or release", sub);
		argc--;
		argv++;
	}
	snprintf(name, sizeof(name), "sessions %s", sub);
	cmd.name = name;
	while ((o = ctl_getopt(&cmd, argc, argv)) != -1) {
		switch (o) {
		case 'l': lang = optarg; break;
		case 'p': pool = optarg; break;
		default: return ctl_opt_status(o);
		}
	}
	if (lang && pool)
		return ctl_usage(&cmd, "--lang and --pool exclude each other");
	if (strcmp(sub, "ls") == 0 ? optind != argc : optind != argc - 1)
		return ctl_usage(&cmd, strcmp(sub, "ls") == 0 ? "no argument expected" : "give one session ID");
	if ((status = ctl_pick_pool(&cmd, lang, pool, NULL, false, &pool)) != CTL_OK)
		return status;
	if (!(c = ctl_client()))
		return CTL_USAGE;

	if (strcmp(sub, "ls") == 0) {
		struct wp_sessions *l;
		if (wp_sessions_list(c, pool, &l) < 0)
			return ctl_fail(cmd.name);
		if (ctl_opt.json)
			ctl_print_json(l);
		else if (wp_sessions_count(l) == 0)
			printf("no session%s%s\n", pool ? " in pool " : "", pool ? pool : "");
		else
			ctl_sessions_table(l, NULL);
		wp_free(l);
	} else if (strcmp(sub, "show") == 0) {
		struct wp_session *s;
		if (wp_session_get(c, pool, argv[optind], &s) < 0)
			return ctl_fail(cmd.name);
		if (ctl_opt.json)
			ctl_print_json(s);
		else
			print_session(s);
		wp_free(s);
	} else {
		if (wp_session_release(c, pool, argv[optind]) < 0)
			return ctl_fail(cmd.name);
		if (ctl_opt.json)
			ctl_print_json_pack(json_pack("{s:s}", "released", argv[optind]));
		else
			printf("released %s\n", argv[optind]);
	}
	return CTL_OK;
}
