/* language.c — load the language files of config/languages/ (see
 * language.h). inih reads the INI syntax; this file checks every key and
 * value and reports the first problem as "file:line: why", so an operator
 * fixes a broken file from one log line. inih does not pass line numbers to
 * the handler in Debian's build, so the file is fed to it through a reader
 * that counts lines (and catches what inih lets through: over-long lines it
 * would split in two, sections with no keys). inih's global settings are
 * left alone: they are shared with every other INI file of the process. */
#include "language.h"

#include <ctype.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "config.h"

#define LANGUAGE_NAME_MAX      32
#define LANGUAGE_PCH_MAX       4 /* headers in `pch` */
#define LANGUAGE_FILE_NAME_MAX 255

enum lang_key {
	KEY_NAME,
	KEY_VERSION,
	KEY_SOURCE,
	KEY_COMPILE,
	KEY_RUN,
	KEY_PATHS,
	KEY_ENV,
	KEY_MEMORY_ERROR,
	KEY_INTERPRETER,
	KEY_PCH,
	KEY_PRESTART,
	KEY_PRESTART_FOR,
	KEY_SESSIONS_ONLY,
};

static const char *const lang_keys[] = {
    [KEY_NAME] = "name",
    [KEY_VERSION] = "version",
    [KEY_SOURCE] = "source",
    [KEY_COMPILE] = "compile",
    [KEY_RUN] = "run",
    [KEY_PATHS] = "paths",
    [KEY_ENV] = "env",
    [KEY_MEMORY_ERROR] = "memory_error",
    [KEY_INTERPRETER] = "interpreter",
    [KEY_PCH] = "pch",
    [KEY_PRESTART] = "prestart",
    [KEY_PRESTART_FOR] = "prestart_for",
    [KEY_SESSIONS_ONLY] = "sessions_only",
};

struct load_ctx {
	const char *path;
	FILE *f;
	int line;	/* line last handed to inih */
	bool continued; /* that line is indented: inih continues the last key with it */
	struct language *lang;
	unsigned seen;		  /* bit per enum lang_key */
	char seen_limits[2][128]; /* "|cpu|memory|" for [limits], [compile_limits] */
	int err_line;		  /* first error, 0 while none */
	int err_code;
	char err_msg[400];
};

__attribute__((format(printf, 2, 3))) static void fail(struct load_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err_line)
		return;
	c->err_line = c->line;
	c->err_code = EINVAL;
	va_start(ap, fmt);
	vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
	va_end(ap);
}

static void fail_nomem(struct load_ctx *c)
{
	fail(c, "out of memory");
	c->err_code = ENOMEM;
}

static bool known_section(const char *s, size_t len)
{
	static const char *const sections[] = {"language", "limits", "compile_limits"};

	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (strlen(sections[i]) == len && memcmp(sections[i], s, len) == 0)
			return true;
	return false;
}

/* fgets for inih, counting lines. */
static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	size_t len;

	if (!fgets(str, num, c->f))
		return NULL;
	c->line++;
	c->continued = str[0] == ' ' || str[0] == '\t';
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		int ch = getc(c->f);

		if (ch != EOF && ch != '\n') {
			/* inih would take the rest for a line of its own. */
			while ((ch = getc(c->f)) != EOF && ch != '\n')
				;
			fail(c, "line longer than %d characters", num - 3);
			str[0] = '\0';
			return str;
		}
	}
	/* inih calls the handler only for keys: an empty "[limit]" would pass
	 * unnoticed. Only a header at the start of the line is checked here; an
	 * indented one can be a continuation line to inih. */
	if (str[0] == '[') {
		const char *close = strchr(str, ']');

		if (close && !known_section(str + 1, (size_t)(close - str - 1)))
			fail(c, "unknown section [%.*s] (expected [language], [limits] or [compile_limits])",
			     (int)(close - str - 1), str + 1);
	}
	return str;
}

static bool valid_name(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > LANGUAGE_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || strchr("_+-", *s)))
			return false;
	return true;
}

/* A plain file name the submission is saved as in /mnt/data: it is also
 * written into commands split on blanks, so no blanks either. */
static bool valid_source(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > LANGUAGE_FILE_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
			return false;
	return true;
}

/* Absolute, not "/" itself, no "." or ".." component: what is bound into a
 * slot must be exactly what the file says. */
static bool valid_path(const char *p)
{
	const char *s = p;

	if (p[0] != '/' || p[1] == '\0')
		return false;
	while (*s) {
		size_t n;

		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
	}
	return true;
}

/* A header as written in #include <…>: relative, no "." or ".." component,
 * a few plain characters. */
static bool valid_pch(const char *p)
{
	size_t len = strlen(p);

	if (len < 1 || len > 200 || p[0] == '/' || p[len - 1] == '/')
		return false;
	for (const char *s = p; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("._+-/", *s)))
			return false;
	for (const char *s = p; *s;) {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
		if (*s == '/')
			s++;
	}
	return true;
}

static bool valid_env(const char *e)
{
	const char *eq = strchr(e, '=');

	if (!eq || eq == e || isdigit((unsigned char)e[0]))
		return false;
	for (const char *s = e; s < eq; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static size_t strv_len(char **v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

/* Move the strings of `add` to the end of *dst; frees `add`. */
static int strv_extend(char ***dst, char **add)
{
	size_t n = strv_len(*dst), m = strv_len(add);
	char **v = realloc(*dst, (n + m + 1) * sizeof(*v));

	if (!v) {
		config_argv_free(add);
		return -ENOMEM;
	}
	memcpy(v + n, add, (m + 1) * sizeof(*v));
	free(add);
	*dst = v;
	return 0;
}

static int set_argv(struct load_ctx *c, char ***dst, const char *key, const char *value)
{
	int r = config_split_argv(value, dst);

	if (r == -ENOMEM)
		fail_nomem(c);
	else if (r < 0)
		fail(c, "%s: `%s` is empty or has an unbalanced quote", key, value);
	return r;
}

/* paths and env may be given on several lines: they add up. */
static int add_list(struct load_ctx *c, enum lang_key k, const char *value)
{
	char ***dst = k == KEY_PATHS ? &c->lang->paths : &c->lang->env;
	char **items = NULL;
	int r;

	if (!*value)
		return 0;
	if ((r = set_argv(c, &items, lang_keys[k], value)) < 0)
		return r;
	for (char **i = items; *i; i++) {
		if (k == KEY_PATHS && !valid_path(*i)) {
			fail(c, "paths: `%s` is not an absolute path without . or .. (and not /)", *i);
			config_argv_free(items);
			return -EINVAL;
		}
		if (k == KEY_ENV && !valid_env(*i)) {
			fail(c, "env: `%s` is not NAME=value", *i);
			config_argv_free(items);
			return -EINVAL;
		}
	}
	if ((r = strv_extend(dst, items)) < 0)
		fail_nomem(c);
	return r;
}

/* The argv of a command key (compile, run, …), NULL for other keys. */
static char ***command_of(struct language *l, enum lang_key k)
{
	switch (k) {
	case KEY_VERSION: return &l->version_argv;
	case KEY_COMPILE: return &l->compile_argv;
	case KEY_RUN: return &l->run_argv;
	case KEY_INTERPRETER: return &l->interpreter_argv;
	case KEY_PRESTART: return &l->prestart_argv;
	default: return NULL;
	}
}

/* A command longer than a line (inih takes 200 characters) goes on over
 * indented lines: their words add to it. */
static int continue_argv(struct load_ctx *c, char ***argv, const char *key, const char *value)
{
	char **more = NULL;
	int r;

	if (!*argv)
		return 0; /* its first line failed: reported */
	if ((r = set_argv(c, &more, key, value)) < 0)
		return r;
	if ((r = strv_extend(argv, more)) < 0)
		fail_nomem(c);
	return r;
}

static int set_string(struct load_ctx *c, char **dst, const char *value)
{
	if (!(*dst = strdup(value))) {
		fail_nomem(c);
		return -ENOMEM;
	}
	return 0;
}

/* pch: one to LANGUAGE_PCH_MAX headers, each as written in #include <…>,
 * blank-separated, none twice. */
static int set_pch(struct load_ctx *c, char ***dst, const char *value)
{
	char **hs = NULL;
	size_t n = 0;
	int r = config_split_argv(value, &hs);

	if (r == -ENOMEM) {
		fail_nomem(c);
		return r;
	}
	if (r < 0) {
		fail(c, "pch: `%s` is empty or has an unbalanced quote; give 1 to %d headers, blank-separated", value,
		     LANGUAGE_PCH_MAX);
		return r;
	}
	for (; hs[n]; n++) {
		if (!valid_pch(hs[n])) {
			fail(c, "pch: `%s` is not a relative header path (a-z 0-9 . _ + - and /, no ..)", hs[n]);
			goto bad;
		}
		for (size_t k = 0; k < n; k++)
			if (strcmp(hs[k], hs[n]) == 0) {
				fail(c, "pch: `%s` is given twice", hs[n]);
				goto bad;
			}
	}
	if (n < 1 || n > LANGUAGE_PCH_MAX) {
		fail(c, "pch: %zu headers; give 1 to %d, blank-separated", n, LANGUAGE_PCH_MAX);
		goto bad;
	}
	*dst = hs;
	return 0;
bad:
	config_argv_free(hs);
	return -EINVAL;
}

static int handle_language(struct load_ctx *c, const char *name, const char *value)
{
	struct language *l = c->lang;
	size_t k;

	for (k = 0; k < ARRAY_SIZE(lang_keys); k++)
		if (strcmp(name, lang_keys[k]) == 0)
			break;
	if (k == ARRAY_SIZE(lang_keys)) {
		fail(c, "unknown key `%s` in [language]", name);
		return -EINVAL;
	}
	if (k == KEY_PATHS || k == KEY_ENV)
		return add_list(c, (enum lang_key)k, value);
	if (c->continued && (c->seen & (1u << k)) && command_of(l, (enum lang_key)k))
		return continue_argv(c, command_of(l, (enum lang_key)k), name, value);
	if (c->seen & (1u << k)) {
		fail(c, "`%s` set twice (or continued on an indented line)", name);
		return -EINVAL;
	}
	c->seen |= 1u << k;
	switch ((enum lang_key)k) {
	case KEY_NAME:
		if (!valid_name(value)) {
			fail(c, "name: `%s` is not 1-%d characters of a-z 0-9 _ + -", value, LANGUAGE_NAME_MAX);
			return -EINVAL;
		}
		return set_string(c, &l->name, value);
	case KEY_SOURCE:
		if (!valid_source(value)) {
			fail(c, "source: `%s` is not a plain file name (no /, blanks or control characters)", value);
			return -EINVAL;
		}
		return set_string(c, &l->source, value);
	case KEY_VERSION: return set_argv(c, &l->version_argv, name, value);
	case KEY_COMPILE: return set_argv(c, &l->compile_argv, name, value);
	case KEY_RUN: return set_argv(c, &l->run_argv, name, value);
	case KEY_INTERPRETER: return set_argv(c, &l->interpreter_argv, name, value);
	case KEY_MEMORY_ERROR: return set_string(c, &l->memory_error, value);
	case KEY_PCH: return set_pch(c, &l->pch, value);
	case KEY_PRESTART: return set_argv(c, &l->prestart_argv, name, value);
	case KEY_PRESTART_FOR:
		if (strcmp(value, "run") != 0 && strcmp(value, "compile") != 0) {
			fail(c, "prestart_for: `%s` is not `run` or `compile`", value);
			return -EINVAL;
		}
		l->prestart_compile = strcmp(value, "compile") == 0;
		return 0;
	case KEY_SESSIONS_ONLY:
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			fail(c, "sessions_only: `%s` is not `yes` or `no`", value);
			return -EINVAL;
		}
		l->sessions_only = strcmp(value, "yes") == 0;
		return 0;
	case KEY_PATHS:
	case KEY_ENV: break;
	}
	return 0;
}

static int handle_limits(struct load_ctx *c, const char *section, const char *name, const char *value)
{
	bool compile = strcmp(section, "compile_limits") == 0;
	struct limits *l = compile ? &c->lang->compile_limits : &c->lang->limits;
	char *seen = c->seen_limits[compile];
	char mark[64];
	int r;

	r = limits_set_ini(l, name, value);
	if (r == -ENOENT) {
		fail(c, "unknown key `%s` in [%s] (expected cpu, wall, memory, pids, output, fsize)", name, section);
		return r;
	}
	if (r < 0) {
		fail(c, "[%s] %s: `%s` is not %s", section, name, value, limits_ini_hint(name));
		return r;
	}
	/* Known keys are short; the mark always fits. */
	snprintf(mark, sizeof(mark), "|%s|", name);
	if (strstr(seen, mark)) {
		fail(c, "`%s` set twice in [%s]", name, section);
		return -EINVAL;
	}
	strncat(seen, mark + (*seen ? 1 : 0), sizeof(c->seen_limits[0]) - strlen(seen) - 1);
	return 0;
}

static int handle(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *c = user;
	int r;

	/* Only the first error is reported; the rest of the file is skipped. */
	if (c->err_line)
		return 1;
	if (strcmp(section, "language") == 0)
		r = handle_language(c, name, value);
	else if (strcmp(section, "limits") == 0 || strcmp(section, "compile_limits") == 0)
		r = handle_limits(c, section, name, value);
	else if (!*section) {
		fail(c, "`%s` before any section (expected [language], [limits] or [compile_limits])", name);
		r = -EINVAL;
	} else {
		fail(c, "unknown section [%s] (expected [language], [limits] or [compile_limits])", section);
		r = -EINVAL;
	}
	return r == 0;
}

static bool executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static bool runnable(char **argv)
{
	return !argv || argv[0][0] != '/' || executable(argv[0]);
}

/* The directories gcc's collect2 finds a -fuse-ld=NAME linker (ld.NAME) in
 * through the slot's PATH */
static const char *const linker_dirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};

/* available, or why not: a command that is not an executable file, or a
 * linker the compile line asks for (-fuse-ld=gold) that the host lacks, which
 * would fail every compile with "collect2: fatal error: cannot find 'ld'" */
static void check_available(struct language *l)
{
	const struct {
		const char *what;
		char **argv;
	} cmds[] = {{"version", l->version_argv}, {"compile", l->compile_argv}, {"run", l->run_argv}};

	l->available = true;
	l->unavailable[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!runnable(cmds[i].argv)) {
			snprintf(l->unavailable, sizeof(l->unavailable), "its %s command %s is not an executable file",
				 cmds[i].what, cmds[i].argv[0]);
			l->available = false;
			return;
		}
	for (char **a = l->compile_argv; a && *a; a++) {
		const char *name = strncmp(*a, "-fuse-ld=", 9) ? NULL : *a + 9;
		bool found = false;
		char path[PATH_MAX];

		if (!name || !*name || strchr(name, '/'))
			continue; /* none, or a path: gcc's own affair */
		for (size_t i = 0; i < ARRAY_SIZE(linker_dirs) && !found; i++)
			found = snprintf(path, sizeof(path), "%s/ld.%s", linker_dirs[i], name) < (int)sizeof(path) &&
				executable(path);
		if (!found) {
			snprintf(l->unavailable, sizeof(l->unavailable),
				 "its compile line's %s needs ld.%s, which is not in /usr/local/bin, /usr/bin or /bin "
				 "(install it, e.g. Debian's binutils or binutils-gold, or remove the flag)",
				 *a, name);
			l->available = false;
			return;
		}
	}
}

void language_free(struct language *l)
{
	if (!l)
		return;
	free(l->name);
	free(l->file);
	config_argv_free(l->version_argv);
	free(l->version);
	free(l->source);
	free(l->memory_error);
	config_argv_free(l->compile_argv);
	config_argv_free(l->run_argv);
	config_argv_free(l->interpreter_argv);
	config_argv_free(l->prestart_argv);
	config_argv_free(l->pch);
	free(l->pch_dir);
	config_argv_free(l->paths);
	config_argv_free(l->env);
	free(l);
}

static void language_freep(struct language **l)
{
	language_free(*l);
}
#define cleanup_language __attribute__((cleanup(language_freep)))

int language_load(const char *path, struct language **out, struct wp_error *err)
{
	cleanup_fclose FILE *f = fopen(path, "re");
	cleanup_language struct language *l = NULL;
	struct load_ctx c = {.path = path};
	struct stat st;
	int r;

	if (!f)
		return wp_error_errno(err, "open `%s`", path);
	if (fstat(fileno(f), &st) < 0)
		return wp_error_errno(err, "stat `%s`", path);
	if (!S_ISREG(st.st_mode))
		return wp_error_set(err, EINVAL, "%s: not a regular file", path);
	l = calloc(1, sizeof(*l));
	if (!l || !(l->file = strdup(path)))
		return wp_error_set(err, ENOMEM, "%s: out of memory", path);
	limits_default(&l->limits);
	limits_default(&l->compile_limits);
	c.f = f;
	c.lang = l;

	r = ini_parse_stream(read_line, &c, handle, &c);
	if (r == -2)
		return wp_error_set(err, ENOMEM, "%s: out of memory", path);
	if (ferror(f))
		return wp_error_set(err, EIO, "%s: read error", path);
	/* inih's own syntax errors come through r alone; keep the earlier. */
	if (r > 0 && (!c.err_line || r < c.err_line))
		return wp_error_set(err, EINVAL, "%s:%d: expected `key = value`, a [section] or a comment", path, r);
	if (c.err_line)
		return wp_error_set(err, c.err_code, "%s:%d: %s", path, c.err_line, c.err_msg);

	if (!l->name || !l->source || !l->run_argv)
		return wp_error_set(err, EINVAL, "%s: [language] needs `%s`", path,
				    !l->name	 ? "name"
				    : !l->source ? "source"
						 : "run");
	if (l->pch && !l->compile_argv)
		return wp_error_set(err, EINVAL, "%s: `pch` needs a `compile` line (its flags build the header)", path);
	if ((c.seen & (1u << KEY_PRESTART_FOR)) && !l->prestart_argv)
		return wp_error_set(err, EINVAL, "%s: `prestart_for` without a `prestart` command", path);
	if (l->prestart_compile && !l->compile_argv)
		return wp_error_set(err, EINVAL, "%s: `prestart_for = compile` but no `compile` line", path);
	if (!l->paths && !(l->paths = calloc(1, sizeof(char *))))
		return wp_error_set(err, ENOMEM, "%s: out of memory", path);
	if (!l->env && !(l->env = calloc(1, sizeof(char *))))
		return wp_error_set(err, ENOMEM, "%s: out of memory", path);
	check_available(l);
	/* main.c also checks the driver it names under /opt/warmpool */
	l->interpreter_ok = l->interpreter_argv && runnable(l->interpreter_argv);
	*out = steal_pointer(&l);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_conf_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".conf") == 0;
}

static void names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The *.conf names of dir, sorted. */
static int list_conf(const char *dir, char ***out, size_t *n_out, struct wp_error *err)
{
	cleanup_dir DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (!d)
		return wp_error_errno(err, "open `%s`", dir);
	for (errno = 0; (de = readdir(d)); errno = 0) {
		if (!is_conf_name(de->d_name))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof(*nn));
			if (!nn)
				goto nomem;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	if (errno) {
		int e = errno;
		names_free(names, n);
		errno = e;
		return wp_error_errno(err, "read `%s`", dir);
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	*n_out = n;
	return 0;
nomem:
	names_free(names, n);
	return wp_error_set(err, ENOMEM, "%s: out of memory", dir);
}

int language_load_dir(const char *dir, struct language ***out, size_t *n_out, struct wp_error *err)
{
	char **names = NULL;
	struct language **ls;
	size_t n_names = 0, n = 0;
	int r;

	if ((r = list_conf(dir, &names, &n_names, err)) < 0)
		return r;
	/* NULL-terminated as a courtesy; n is the count. */
	ls = calloc(n_names + 1, sizeof(*ls));
	if (!ls) {
		names_free(names, n_names);
		return wp_error_set(err, ENOMEM, "%s: out of memory", dir);
	}
	for (size_t i = 0; i < n_names; i++) {
		cleanup_free char *path = NULL;
		struct language *dup;

		if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
			path = NULL;
			r = wp_error_set(err, ENOMEM, "%s: out of memory", dir);
			goto fail;
		}
		if ((r = language_load(path, &ls[n], err)) < 0)
			goto fail;
		n++;
		dup = language_find(ls, n - 1, ls[n - 1]->name);
		if (dup) {
			r = wp_error_set(err, EINVAL, "%s: language `%s` is already defined in %s", path, dup->name,
					 dup->file);
			goto fail;
		}
	}
	names_free(names, n_names);
	*out = ls;
	*n_out = n;
	return 0;
fail:
	names_free(names, n_names);
	language_free_all(ls, n);
	return r;
}

void language_free_all(struct language **ls, size_t n)
{
	if (!ls)
		return;
	for (size_t i = 0; i < n; i++)
		language_free(ls[i]);
	free(ls);
}

struct language *language_find(struct language **ls, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (ls[i] && strcmp(ls[i]->name, name) == 0)
			return ls[i];
	return NULL;
}
