/* language.h — a language is a file in config/languages/ (INI), no code:
 *
 *   [language]
 *   name = cpp
 *   version = /usr/bin/g++ --version        ; first line of its output is shown
 *   source = main.cpp                       ; file name the submission is saved as
 *   compile = /usr/bin/g++ -O2 -std=gnu++17 -o main main.cpp   ; optional
 *   run = ./main
 *   paths = /usr/lib/gcc /etc/alternatives  ; extra read-only paths in the slot (optional)
 *   env = LANG=C.UTF-8 HOME=/tmp            ; optional, added to the base environment
 *   memory_error = java.lang.OutOfMemoryError ; optional: a failed run whose stderr
 *                                           ; holds this is memory_limit_exceeded
 *   interpreter = /usr/bin/python3 -u -B /opt/warmpool/pykernel.py
 *                                           ; optional: the stateful interpreter of
 *                                           ; slots created with "interpreter": true
 *                                           ; (kernel.c; /opt/warmpool is runtimes_dir)
 *   pch = bits/stdc++.h iostream            ; optional: headers precompiled per host
 *                                           ; with the compile line's flags (pch.c);
 *                                           ; slots see them at /opt/warmpool-pch
 *   prestart = /usr/bin/python3 -I -B /opt/warmpool/pyfork.pyc
 *                                           ; optional: a helper started when the slot
 *                                           ; is made, that starts the steps named by
 *   prestart_for = run                      ; `run` (each test case) or `compile`
 *                                           ; (prestart.c, docs/languages.md)
 *   sessions_only = yes                     ; optional (default no): served only by
 *                                           ; sessions (poold's Azure routes); poold
 *                                           ; refuses it on /execute (GET /v1/info says)
 *
 *   A command (version, compile, run, interpreter, prestart) longer than a
 *   line (200 characters) goes on over indented lines: their words add up.
 *
 *   [limits]          ; per-run defaults, see limits.h (optional keys)
 *   memory = 256M
 *   [compile_limits]  ; limits of the compile step (optional keys)
 *   cpu = 10s
 *
 * Commands are split on blanks (quotes allowed) and run in /mnt/data. In a
 * compile, run or interpreter argument, `{memory_kb}` stands for the step's
 * memory limit in KiB (the JVM sizes its heap from it; the interpreter's is
 * [limits] memory). */
#ifndef SANDBOXD_LANGUAGE_H
#define SANDBOXD_LANGUAGE_H

#include <stdbool.h>
#include "error.h"
#include "limits.h"

struct language {
	char *name;
	char *file;	     /* path it was loaded from */
	char **version_argv; /* may be NULL */
	char *version;	     /* filled by language_probe_version(), may be NULL */
	char *source;	     /* plain file name, no '/' */
	char **compile_argv; /* NULL when interpreted */
	char **run_argv;
	char **interpreter_argv; /* NULL when the language has no stateful interpreter */
	char **paths;		 /* NULL-terminated absolute paths, may be empty */
	char **env;		 /* NULL-terminated "K=V", may be empty */
	char *memory_error;	 /* stderr text meaning "out of memory" (a heap limit of the
				    runtime itself, as Java's OutOfMemoryError), or NULL */
	struct limits limits;
	struct limits compile_limits;
	char **pch;	       /* headers to precompile ("bits/stdc++.h", "iostream"), or NULL */
	char *pch_dir;	       /* host dir bound at /opt/warmpool-pch (pch.c), or NULL */
	char **prestart_argv;  /* the pre-started helper, or NULL */
	bool prestart_compile; /* the helper starts the compile, not the test runs */
	bool sessions_only;    /* sessions only, never judged (sessions_only = yes) */
	bool available;	       /* every argv[0] exists and is executable on this host, and the
				  linker a compile line names (-fuse-ld=) */
	char unavailable[256]; /* when not: what is missing, for the log and /v1/info */
	bool interpreter_ok;   /* interpreter_argv set, and its driver found (main.c) */
};

/* Load one file; fills err with "file:line: why" on error. */
int language_load(const char *path, struct language **out, struct wp_error *err);
/* Load every *.conf in dir (sorted by name); a broken file is an error, a
 * language whose runtime is missing is loaded with available = false. */
int language_load_dir(const char *dir, struct language ***out, size_t *n_out, struct wp_error *err);
void language_free(struct language *l);
void language_free_all(struct language **ls, size_t n);
struct language *language_find(struct language **ls, size_t n, const char *name);

#endif
