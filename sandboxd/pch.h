/* pch.h — precompiled headers per host for the languages that ask for them
 * (`pch = bits/stdc++.h iostream` in their file), built with exactly the
 * flags of the language's compile line and shared read-only by every slot of
 * the language at /opt/warmpool-pch. A submission whose first #include is
 * one of them (<bits/stdc++.h>, <iostream>) compiles against it when its
 * compile line has -I/opt/warmpool-pch (GCC uses one precompiled header per
 * compile, and only for the first include); any other program, or any
 * program before the header is built, compiles as before (GCC skips a
 * missing or unusable .gch and reads the real header).
 *
 * Each header is built on first use (the first compile of the language),
 * never on the event loop: a child process, as nobody, niced, with rlimits,
 * in a build dir of its own; root then checks the result and moves it into
 * place owned by root, mode 0444. A stamp keyed by a hash of the compiler
 * (path, size, mtime, inode, version) and the flags decides when it is stale:
 * a new compiler binary or other flags mean a rebuild. */
#ifndef SANDBOXD_PCH_H
#define SANDBOXD_PCH_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "error.h"
#include "language.h"

#define PCH_SLOT_DIR "/opt/warmpool-pch"

/* Mount the PCH tmpfs under state_dir and give each language with `pch` its
 * directory (lang->pch_dir, bound read-only into its slots): one for all of
 * its headers. */
int pch_init(const char *state_dir, struct language **ls, size_t n, struct wp_error *err);
/* Before a compile: start a build of each header that is missing or stale
 * and not building. Never blocks (a stat of the compiler, at most a fork
 * per header). */
void pch_prepare(struct language *l);

/* The flags the header is built with: the compile line without argv[0], the
 * source, -o FILE, -I/-L/-l options and linker-only options. malloc'd,
 * NULL-terminated; NULL on ENOMEM. */
char **pch_build_flags(char *const *compile_argv, const char *source);
/* The stamp: a hash of the compiler binary (path, st: size, mtime, inode),
 * its version line, the header and the flags. */
uint64_t pch_key(const char *compiler, const struct stat *st, const char *version, const char *header,
		 char *const *flags);

#endif
