/* launch.h — what run.c (judged runs) and kernel.c (the stateful
 * interpreter) share: the PROTO_RUN message that has the slot's init start a
 * process, and program output turned into JSON text. */
#ifndef SANDBOXD_LAUNCH_H
#define SANDBOXD_LAUNCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "language.h"
#include "limits.h"

/* A PROTO_RUN for `argv` then `extra` (NULL-terminated, may be NULL;
 * {memory_kb} replaced by lim->memory_kb) with the base environment plus the
 * language's, in `cwd` (NULL: /mnt/data), the rlimits of `lim`
 * (no RLIMIT_CPU when cpu_unlimited: a kernel lives for the whole session;
 * its executions are bounded by their wall timeout), in `group`. *out is
 * malloc'd. Returns 0, -E2BIG (too many or too long arguments) or -ENOMEM. */
int launch_message(const struct language *lang, char *const *argv, const char *const *extra, const char *cwd,
		   const struct limits *lim, unsigned group, bool cpu_unlimited, char **out, size_t *len);

/* The same with `env` (NULL-terminated, may be NULL) after the language's
 * variables: what sandboxd adds for a process it starts on its own behalf. */
int launch_message_env(const struct language *lang, char *const *argv, const char *const *extra, const char *const *env,
		       const char *cwd, const struct limits *lim, unsigned group, bool cpu_unlimited, char **out,
		       size_t *len);

/* JSON strings must be UTF-8: invalid bytes become U+FFFD, NULs stay. */
json_t *launch_json_text(const char *p, size_t n);

#endif
