/* test_language.c — the language files: the real config/languages/ loads
 * with the commands and limits this host needs, and every kind of broken
 * file is refused with "file:line: why". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "language.h"

/* The repository root, from this file's path as the compiler saw it. */
static char *repo_path(const char *rel)
{
	const char *self = __FILE__, *cut = strstr(self, "tests/unit/test_language.c");
	char *p;

	assert_non_null(cut);
	assert_true(asprintf(&p, "%.*s%s", (int)(cut - self), self, rel) > 0);
	return p;
}

struct tmp {
	char dir[64];
};

static int setup_tmp(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	strcpy(t->dir, "/tmp/test_language.XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	*state = t;
	return 0;
}

static int teardown_tmp(void **state)
{
	struct tmp *t = *state;
	cleanup_free char *cmd = NULL;

	if (asprintf(&cmd, "rm -rf '%s'", t->dir) > 0 && system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static char *write_file(struct tmp *t, const char *name, const char *text)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", t->dir, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static const char *const minimal = "[language]\nname = sh\nsource = main.sh\nrun = /bin/sh main.sh\n";

/* Load `text` as x.conf; on error, check the code and that the message is
 * "<path>:<line>: …" (line 0: "<path>: …") and contains `want`. */
static struct language *load_text(struct tmp *t, const char *text, int expect, int line, const char *want)
{
	cleanup_free char *path = write_file(t, "x.conf", text);
	cleanup_free char *prefix = NULL;
	struct language *l = NULL;
	struct wp_error err = {0};
	int r = language_load(path, &l, &err);

	if (r != expect)
		fail_msg("load gave %d, want %d: %s", r, expect, err.msg);
	if (expect == 0) {
		assert_non_null(l);
		return l;
	}
	assert_null(l);
	assert_int_equal(err.code, -expect);
	if (line)
		assert_true(asprintf(&prefix, "%s:%d: ", path, line) > 0);
	else
		assert_true(asprintf(&prefix, "%s: ", path) > 0);
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, want))
		fail_msg("message \"%s\" is not \"%s…%s…\"", err.msg, prefix, want);
	return NULL;
}

static void assert_argv(char **argv, const char *joined)
{
	char buf[512] = "";

	assert_non_null(argv);
	for (char **a = argv; *a; a++) {
		if (a != argv)
			strcat(buf, "|");
		strcat(buf, *a);
	}
	assert_string_equal(buf, joined);
}

static void test_real_languages_load(void **state)
{
	cleanup_free char *dir = repo_path("config/languages");
	struct language **ls = NULL, *l;
	struct wp_error err = {0};
	size_t n = 0;

	if (language_load_dir(dir, &ls, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(n, 7);
	/* sorted by file name */
	assert_string_equal(ls[0]->name, "c");
	assert_string_equal(ls[1]->name, "cpp");
	assert_string_equal(ls[2]->name, "java");
	assert_string_equal(ls[3]->name, "javascript");
	assert_string_equal(ls[4]->name, "python-ds");
	assert_string_equal(ls[5]->name, "python");
	assert_string_equal(ls[6]->name, "shell");

	/* shell: the command comes framed on stdin (no file, no interpreter) */
	l = language_find(ls, n, "shell");
	assert_non_null(l);
	assert_string_equal(l->run_argv[0], "/bin/bash");
	assert_null(l->compile_argv);
	assert_null(l->interpreter_argv);

	l = language_find(ls, n, "python");
	assert_non_null(l);
	assert_string_equal(l->source, "main.py");
	assert_null(l->compile_argv);
	assert_argv(l->run_argv, "/usr/bin/python3|-B|main.py");
	assert_argv(l->version_argv, "/usr/bin/python3|--version");
	assert_argv(l->env,
		    "LANG=C.UTF-8|MPLBACKEND=Agg|MPLCONFIGDIR=/tmp/.matplotlib|PIP_CONFIG_FILE=/opt/warmpool/pip.conf");
	assert_argv(l->interpreter_argv, "/usr/bin/python3|-I|-u|-B|/opt/warmpool/pykernel.py");
	assert_non_null(strstr(l->file, "config/languages/python.conf"));
	assert_null(l->version); /* only language_probe_version() fills it */

	l = language_find(ls, n, "javascript");
	assert_string_equal(l->source, "main.js");
	assert_null(l->compile_argv);
	assert_argv(l->run_argv, "/usr/bin/node|--require|/opt/warmpool/blocking-stdio.js|main.js");
	assert_argv(l->interpreter_argv, "/usr/bin/node|/opt/warmpool/jskernel.js");
	assert_null(l->paths[0]);

	l = language_find(ls, n, "java");
	assert_string_equal(l->source, "Main.java");
	assert_argv(l->compile_argv,
		    "/usr/lib/jvm/java-17-openjdk-amd64/bin/"
		    "java|-XX:+UseSerialGC|-XX:TieredStopAtLevel=1|-XX:-UsePerfData|"
		    "-XX:SharedArchiveFile=/opt/warmpool/javacserver.jsa|com.sun.tools.javac.Main|-encoding|UTF-8|Main.java");
	assert_string_equal(l->run_argv[0], "/usr/lib/jvm/java-17-openjdk-amd64/bin/java");
	/* both lines go on over a second, indented line */
	assert_string_equal(l->run_argv[7], "-cp");
	assert_argv(l->paths, "/etc/java-17-openjdk");
	assert_int_equal(l->limits.memory_kb, 512 * 1024);
	assert_int_equal(l->limits.pids, 128);
	assert_int_equal(l->limits.cpu_ms, 5000); /* not named: the default */
	assert_int_equal(l->compile_limits.cpu_ms, 20000);
	assert_int_equal(l->compile_limits.wall_ms, 30000);
	assert_int_equal(l->compile_limits.memory_kb, 1024 * 1024);

	l = language_find(ls, n, "c");
	assert_argv(l->compile_argv, "/usr/bin/gcc|-O2|-std=gnu17|-fuse-ld=gold|-o|main|main.c|-lm");
	assert_argv(l->run_argv, "./main");
	assert_int_equal(l->compile_limits.pids, 64);
	assert_int_equal(l->limits.memory_kb, 256 * 1024);

	l = language_find(ls, n, "cpp");
	assert_argv(l->compile_argv, "/usr/bin/g++|-O2|-std=gnu++17|-I/opt/warmpool-pch|-fuse-ld=gold|-o|main|main.cpp");
	assert_argv(l->pch, "bits/stdc++.h|iostream");
	assert_string_equal(l->source, "main.cpp");
	assert_null(l->interpreter_argv);
	assert_false(l->interpreter_ok);

	/* available = every absolute argv[0] is an executable file here */
	for (size_t i = 0; i < n; i++) {
		bool want = true;
		char **cmds[] = {ls[i]->version_argv, ls[i]->compile_argv, ls[i]->run_argv};

		for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
			if (cmds[k] && cmds[k][0][0] == '/' && access(cmds[k][0], X_OK) != 0)
				want = false;
		assert_int_equal(ls[i]->available, want);
		if (!want)
			print_message("note: %s is not installed on this host\n", ls[i]->name);
	}

	assert_null(language_find(ls, n, "cobol"));
	assert_null(language_find(ls, n, "Python"));
	language_free_all(ls, n);
}

static void test_minimal_file_gets_defaults(void **state)
{
	struct language *l = load_text(*state, minimal, 0, 0, NULL);
	struct limits d;

	limits_default(&d);
	assert_string_equal(l->name, "sh");
	assert_null(l->version_argv);
	assert_null(l->compile_argv);
	assert_non_null(l->paths);
	assert_null(l->paths[0]);
	assert_non_null(l->env);
	assert_null(l->env[0]);
	assert_memory_equal(&l->limits, &d, sizeof(d));
	assert_memory_equal(&l->compile_limits, &d, sizeof(d));
	assert_true(l->available);
	language_free(l);
}

static void test_quotes_comments_and_repeated_lists(void **state)
{
	struct language *l = load_text(*state,
				       "; a comment\n"
				       "# another\n"
				       "[language]\n"
				       "name = sh+x_1-2\n"
				       "source = main.sh   ; inline comment\n"
				       "run = /bin/sh -c \"echo hi there\" 'a b'\n"
				       "paths = /etc/a /opt/b\n"
				       "paths = /srv/c\n"
				       "env = LANG=C.UTF-8 \"GREETING=hello world\"\n"
				       "env = _X1=\n"
				       "\n"
				       "[limits]\n"
				       "memory = 512M ; for the JIT\n"
				       "[compile_limits]\n"
				       "cpu = 1500ms\n"
				       "[limits]\n"
				       "wall = 2s\n",
				       0, 0, NULL);

	assert_string_equal(l->name, "sh+x_1-2");
	assert_string_equal(l->source, "main.sh");
	assert_argv(l->run_argv, "/bin/sh|-c|echo hi there|a b");
	assert_argv(l->paths, "/etc/a|/opt/b|/srv/c");
	assert_argv(l->env, "LANG=C.UTF-8|GREETING=hello world|_X1=");
	assert_int_equal(l->limits.memory_kb, 524288);
	assert_int_equal(l->limits.wall_ms, 2000);
	assert_int_equal(l->compile_limits.cpu_ms, 1500);
	assert_int_equal(l->compile_limits.memory_kb, 262144);
	language_free(l);
}

static void test_available_follows_the_host(void **state)
{
	struct language *l;

	/* relative commands are the submission's own: not checked */
	l = load_text(*state, "[language]\nname = c\nsource = main.c\ncompile = /bin/sh -c true\nrun = ./main\n", 0, 0,
		      NULL);
	assert_true(l->available);
	language_free(l);
	l = load_text(*state, "[language]\nname = x\nsource = m\nrun = /nonexistent/bin/x main\n", 0, 0, NULL);
	assert_false(l->available);
	assert_non_null(strstr(l->unavailable, "its run command /nonexistent/bin/x is not an executable file"));
	language_free(l);
	/* a linker the compile line asks for must be there: without it every
	 * compile would fail ("collect2: fatal error: cannot find 'ld'") */
	l = load_text(*state, "[language]\nname = c\nsource = m.c\ncompile = /bin/sh -fuse-ld=nosuchlinker m.c\nrun = ./m\n",
		      0, 0, NULL);
	assert_false(l->available);
	assert_non_null(strstr(l->unavailable, "-fuse-ld=nosuchlinker needs ld.nosuchlinker"));
	language_free(l);
	l = load_text(*state, "[language]\nname = c\nsource = m.c\ncompile = /bin/sh -fuse-ld=bfd m.c\nrun = ./m\n", 0, 0,
		      NULL);
	assert_true(l->available); /* /usr/bin/ld.bfd, binutils' default linker */
	assert_string_equal(l->unavailable, "");
	language_free(l);
	/* a missing compiler or version command counts too */
	l = load_text(*state, "[language]\nname = x\nsource = m\ncompile = /nonexistent/cc m\nrun = ./m\n", 0, 0, NULL);
	assert_false(l->available);
	language_free(l);
	l = load_text(*state, "[language]\nname = x\nsource = m\nversion = /nonexistent/x -v\nrun = ./m\n", 0, 0, NULL);
	assert_false(l->available);
	language_free(l);
	/* not executable, or not a file */
	{
		struct tmp *t = *state;
		cleanup_free char *plain = write_file(t, "plain", "#!/bin/sh\n");
		cleanup_free char *text = NULL;

		assert_int_equal(chmod(plain, 0644), 0);
		assert_true(asprintf(&text, "[language]\nname = x\nsource = m\nrun = %s\n", plain) > 0);
		l = load_text(t, text, 0, 0, NULL);
		assert_false(l->available);
		language_free(l);
		assert_int_equal(chmod(plain, 0755), 0);
		l = load_text(t, text, 0, 0, NULL);
		assert_true(l->available);
		language_free(l);
	}
	l = load_text(*state, "[language]\nname = x\nsource = m\nrun = /usr/bin\n", 0, 0, NULL);
	assert_false(l->available);
	language_free(l);
	/* an interpreter is optional: missing, it only makes interpreter_ok false */
	l = load_text(*state,
		      "[language]\nname = x\nsource = m\nrun = /bin/sh m\ninterpreter = /bin/sh /opt/warmpool/k\n", 0,
		      0, NULL);
	assert_true(l->available);
	assert_true(l->interpreter_ok);
	assert_argv(l->interpreter_argv, "/bin/sh|/opt/warmpool/k");
	language_free(l);
	l = load_text(*state, "[language]\nname = x\nsource = m\nrun = /bin/sh m\ninterpreter = /nonexistent/py k\n", 0,
		      0, NULL);
	assert_true(l->available);
	assert_false(l->interpreter_ok);
	language_free(l);
}

/* sessions_only: a language served by sessions (poold's Azure routes),
 * never judged by /execute; the shipped shell says so, the others not. */
static void test_sessions_only(void **state)
{
	struct language *l =
	    load_text(*state, "[language]\nname = sh\nsource = m\nrun = ./m\nsessions_only = yes\n", 0, 0, NULL);
	cleanup_free char *dir = repo_path("config/languages");
	struct language **ls = NULL;
	struct wp_error err = {0};
	size_t n = 0;

	assert_true(l->sessions_only);
	language_free(l);
	l = load_text(*state, "[language]\nname = sh\nsource = m\nrun = ./m\nsessions_only = no\n", 0, 0, NULL);
	assert_false(l->sessions_only);
	language_free(l);
	l = load_text(*state, minimal, 0, 0, NULL);
	assert_false(l->sessions_only);
	language_free(l);
	load_text(*state, "[language]\nname = sh\nsource = m\nrun = ./m\nsessions_only = maybe\n", -EINVAL, 5,
		  "sessions_only: `maybe` is not `yes` or `no`");
	load_text(*state, "[language]\nname = sh\nsessions_only = yes\nsource = m\nrun = ./m\nsessions_only = no\n",
		  -EINVAL, 6, "`sessions_only` set twice");

	assert_int_equal(language_load_dir(dir, &ls, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ls[i]->sessions_only, strcmp(ls[i]->name, "shell") == 0);
	assert_non_null(language_find(ls, n, "shell"));
	language_free_all(ls, n);
}

static void test_missing_required_keys(void **state)
{
	load_text(*state, "[language]\nsource = m\nrun = ./m\n", -EINVAL, 0, "[language] needs `name`");
	load_text(*state, "[language]\nname = x\nrun = ./m\n", -EINVAL, 0, "[language] needs `source`");
	load_text(*state, "[language]\nname = x\nsource = m\n", -EINVAL, 0, "[language] needs `run`");
	load_text(*state, "", -EINVAL, 0, "[language] needs `name`");
	load_text(*state, "[limits]\ncpu = 1s\n", -EINVAL, 0, "[language] needs `name`");
}

static void test_unknown_keys_and_sections(void **state)
{
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\ncompiler = /bin/cc\n", -EINVAL, 5,
		  "unknown key `compiler` in [language]");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n\n[limits]\ncpus = 2s\n", -EINVAL, 7,
		  "unknown key `cpus` in [limits]");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[compile_limits]\nmem = 1G\n", -EINVAL, 6,
		  "unknown key `mem` in [compile_limits]");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[limit]\nmemory = 1G\n", -EINVAL, 5,
		  "unknown section [limit]");
	/* even with no key under it */
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[runtime]\n", -EINVAL, 5,
		  "unknown section [runtime]");
	load_text(*state, "name = x\n[language]\nsource = m\nrun = ./m\n", -EINVAL, 1, "`name` before any section");
}

static void test_bad_names_and_sources(void **state)
{
	load_text(*state, "[language]\nname = Python\nsource = m\nrun = ./m\n", -EINVAL, 2, "name: `Python`");
	load_text(*state, "[language]\nname = py thon\nsource = m\nrun = ./m\n", -EINVAL, 2, "name: `py thon`");
	load_text(*state, "[language]\nname = c#\nsource = m\nrun = ./m\n", -EINVAL, 2, "name: `c#`");
	load_text(*state, "[language]\nname = abcdefghijklmnopqrstuvwxyz0123456\nsource = m\nrun = ./m\n", -EINVAL, 2,
		  "is not 1-32 characters");
	load_text(*state, "[language]\nname =\nsource = m\nrun = ./m\n", -EINVAL, 2, "name: ``");
	load_text(*state, "[language]\nname = x\nsource = src/main.c\nrun = ./m\n", -EINVAL, 3,
		  "source: `src/main.c` is not a plain file name");
	load_text(*state, "[language]\nname = x\nsource = ..\nrun = ./m\n", -EINVAL, 3, "source: `..`");
	load_text(*state, "[language]\nname = x\nsource = /etc/passwd\nrun = ./m\n", -EINVAL, 3,
		  "source: `/etc/passwd`");
	load_text(*state, "[language]\nname = x\nsource = main file.c\nrun = ./m\n", -EINVAL, 3,
		  "source: `main file.c`");
	load_text(*state, "[language]\nname = x\nsource =\nrun = ./m\n", -EINVAL, 3, "source: ``");
}

static void test_bad_commands(void **state)
{
	load_text(*state, "[language]\nname = x\nsource = m\nrun =\n", -EINVAL, 4, "run: `` is empty");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = /bin/sh -c 'echo\n", -EINVAL, 4, "unbalanced quote");
	load_text(*state, "[language]\nname = x\nsource = m\ncompile = \"\nrun = ./m\n", -EINVAL, 4, "compile: `\"`");
	load_text(*state, "[language]\nname = x\nsource = m\nversion =\nrun = ./m\n", -EINVAL, 4, "version: ``");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\ninterpreter =\n", -EINVAL, 5,
		  "interpreter: ``");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\ninterpreter = a\ninterpreter = b\n", -EINVAL, 6,
		  "`interpreter` set twice");
}

static void test_bad_paths_and_env(void **state)
{
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\npaths = usr/lib\n", -EINVAL, 5,
		  "paths: `usr/lib` is not an absolute path");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\npaths = /usr/../etc\n", -EINVAL, 5,
		  "paths: `/usr/../etc`");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\npaths = /etc/./x\n", -EINVAL, 5,
		  "paths: `/etc/./x`");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\npaths = /opt /\n", -EINVAL, 5, "paths: `/`");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\nenv = FOO\n", -EINVAL, 5,
		  "env: `FOO` is not NAME=value");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\nenv = A=1 =2\n", -EINVAL, 5, "env: `=2`");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\nenv = 1X=2\n", -EINVAL, 5, "env: `1X=2`");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\nenv = A-B=2\n", -EINVAL, 5, "env: `A-B=2`");
}

static void test_bad_limit_values(void **state)
{
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[limits]\nmemory = lots\n", -EINVAL, 6,
		  "[limits] memory: `lots` is not a size");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[compile_limits]\ncpu = 10 parsecs\n", -EINVAL,
		  6, "[compile_limits] cpu: `10 parsecs` is not a duration");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[limits]\ncpu = 0\n", -EINVAL, 6,
		  "[limits] cpu: `0` is not a duration above zero");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[limits]\npids = 64k\n", -EINVAL, 6,
		  "[limits] pids: `64k` is not an integer");
}

static void test_keys_set_twice(void **state)
{
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\nrun = ./n\n", -EINVAL, 5, "`run` set twice");
	/* inih continues a value on an indented line: a command takes its
	 * words (below), any other key refuses it as a repeat */
	load_text(*state, "[language]\nname = x\n  y\nsource = m\nrun = ./m\n", -EINVAL, 3, "`name` set twice");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\nmemory_error = a\n\tb\n", -EINVAL, 6,
		  "`memory_error` set twice");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n[limits]\ncpu = 1s\nwall = 2s\ncpu = 2s\n",
		  -EINVAL, 8, "`cpu` set twice in [limits]");
	/* the same key in the other limits section is not a repeat */
	struct language *l = load_text(
	    *state, "[language]\nname = x\nsource = m\nrun = ./m\n[limits]\ncpu = 1s\n[compile_limits]\ncpu = 9s\n", 0,
	    0, NULL);
	assert_int_equal(l->limits.cpu_ms, 1000);
	assert_int_equal(l->compile_limits.cpu_ms, 9000);
	language_free(l);
}

static void test_commands_go_on_over_indented_lines(void **state)
{
	struct language *l = load_text(*state,
				       "[language]\nname = x\nsource = m\n"
				       "compile = /bin/sh -c\n    'exit 0'\n"
				       "run = ./m --a\n  --b \"c d\"\n; a comment between\n\t--e\n"
				       "prestart = /bin/sh\n -x\n",
				       0, 0, NULL);
	assert_argv(l->compile_argv, "/bin/sh|-c|exit 0");
	assert_argv(l->run_argv, "./m|--a|--b|c d|--e");
	assert_argv(l->prestart_argv, "/bin/sh|-x");
	language_free(l);
	/* an unbalanced quote on a continuation line names that line */
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\n  \"--b\n", -EINVAL, 5, "run: `\"--b`");
	/* a plain repeat is still one */
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\nrun = --b\n", -EINVAL, 5, "`run` set twice");
}

static void test_syntax_errors_name_their_line(void **state)
{
	load_text(*state, "[language]\nname = x\nthis is not ini\nsource = m\nrun = ./m\n", -EINVAL, 3,
		  "expected `key = value`");
	load_text(*state, "[language\nname = x\nsource = m\nrun = ./m\n", -EINVAL, 1, "expected `key = value`");
	/* the first problem is reported, whichever kind it is */
	load_text(*state, "[language]\nname = x\nnonsense\nsource = /m\nrun = ./m\n", -EINVAL, 3,
		  "expected `key = value`");
	load_text(*state, "[language]\nname = X\nnonsense\nsource = m\nrun = ./m\n", -EINVAL, 2, "name: `X`");
}

static void test_overlong_line_is_refused(void **state)
{
	char text[1024];
	char arg[400];

	memset(arg, 'a', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	snprintf(text, sizeof(text), "[language]\nname = x\nsource = m\nrun = ./m %s\nfoo\n", arg);
	/* inih would have split it and parsed the tail as a line */
	load_text(*state, text, -EINVAL, 4, "line longer than");
}

static void test_unreadable_files(void **state)
{
	struct tmp *t = *state;
	struct language *l = NULL;
	struct wp_error err = {0};
	cleanup_free char *missing = NULL;

	assert_true(asprintf(&missing, "%s/nope.conf", t->dir) > 0);
	assert_int_equal(language_load(missing, &l, &err), -ENOENT);
	assert_non_null(strstr(err.msg, missing));
	assert_non_null(strstr(err.msg, "No such file"));
	assert_int_equal(language_load(t->dir, &l, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
	assert_null(l);
}

static void test_load_dir_sorted_and_filtered(void **state)
{
	struct tmp *t = *state;
	struct language **ls = NULL;
	struct wp_error err = {0};
	size_t n = 99;

	free(write_file(t, "b.conf", "[language]\nname = bee\nsource = m\nrun = ./m\n"));
	free(write_file(t, "a.conf", "[language]\nname = zed\nsource = m\nrun = ./m\n"));
	free(write_file(t, ".hidden.conf", "garbage"));
	free(write_file(t, "notes.txt", "garbage"));
	free(write_file(t, "a.conf~", "garbage"));
	assert_int_equal(language_load_dir(t->dir, &ls, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ls[0]->name, "zed"); /* a.conf first */
	assert_string_equal(ls[1]->name, "bee");
	assert_null(ls[2]);
	assert_ptr_equal(language_find(ls, n, "bee"), ls[1]);
	language_free_all(ls, n);
}

static void test_load_dir_errors(void **state)
{
	struct tmp *t = *state;
	struct language **ls = NULL;
	struct wp_error err = {0};
	size_t n = 0;
	cleanup_free char *sub = NULL;

	/* empty directory: no languages, not an error */
	assert_int_equal(language_load_dir(t->dir, &ls, &n, &err), 0);
	assert_int_equal(n, 0);
	language_free_all(ls, n);

	free(write_file(t, "a.conf", "[language]\nname = same\nsource = m\nrun = ./m\n"));
	free(write_file(t, "b.conf", "[language]\nname = same\nsource = m\nrun = ./n\n"));
	assert_int_equal(language_load_dir(t->dir, &ls, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "b.conf: language `same` is already defined in "));
	assert_non_null(strstr(err.msg, "/a.conf"));

	free(write_file(t, "b.conf", "[language]\nname = other\nsource = m\nrun = ./n\nbad line\n"));
	assert_int_equal(language_load_dir(t->dir, &ls, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/b.conf:5: expected"));

	assert_true(asprintf(&sub, "%s/none", t->dir) > 0);
	assert_int_equal(language_load_dir(sub, &ls, &n, &err), -ENOENT);
	assert_non_null(strstr(err.msg, sub));
}

static void test_pch_headers(void **state)
{
	struct language *l;
#define CC "[language]\nname = x\nsource = m.cpp\ncompile = /bin/sh -c true\nrun = ./m\n"
	l = load_text(*state, CC "pch = bits/stdc++.h  iostream\n", 0, 0, NULL);
	assert_argv(l->pch, "bits/stdc++.h|iostream");
	language_free(l);
	load_text(*state, CC "pch = iostream bits/../x\n", -EINVAL, 6, "pch: `bits/../x` is not a relative header path");
	load_text(*state, CC "pch = /usr/include/stdio.h\n", -EINVAL, 6, "pch: `/usr/include/stdio.h`");
	load_text(*state, CC "pch = iostream vector iostream\n", -EINVAL, 6, "pch: `iostream` is given twice");
	load_text(*state, CC "pch = a b c d e\n", -EINVAL, 6, "pch: 5 headers; give 1 to 4");
	load_text(*state, CC "pch =\n", -EINVAL, 6, "pch: `` is empty");
	load_text(*state, "[language]\nname = x\nsource = m\nrun = ./m\npch = iostream\n", -EINVAL, 0,
		  "`pch` needs a `compile` line");
#undef CC
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_tmp, teardown_tmp)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_real_languages_load),
	    T(test_minimal_file_gets_defaults),
	    T(test_quotes_comments_and_repeated_lists),
	    T(test_available_follows_the_host),
	    T(test_sessions_only),
	    T(test_missing_required_keys),
	    T(test_unknown_keys_and_sections),
	    T(test_bad_names_and_sources),
	    T(test_bad_commands),
	    T(test_pch_headers),
	    T(test_bad_paths_and_env),
	    T(test_bad_limit_values),
	    T(test_commands_go_on_over_indented_lines),
	    T(test_keys_set_twice),
	    T(test_syntax_errors_name_their_line),
	    T(test_overlong_line_is_refused),
	    T(test_unreadable_files),
	    T(test_load_dir_sorted_and_filtered),
	    T(test_load_dir_errors),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
