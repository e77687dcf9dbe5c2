/* checker.h — a checker program given with a run request decides whether a
 * test's output is right ("compare": {"mode": "checker"}, "checker":
 * {"language": "cpp", "source": "…"}). It follows testlib's convention:
 * `checker input output answer`, exit 0 = accepted, 1 (or 2, presentation)
 * = wrong answer, anything else = the checker failed (internal_error).
 *
 * It runs in the slot's namespaces and cgroups, but as a uid of its own (the
 * slot's checker uid) in a private mount namespace: a fresh /tmp (its HOME
 * and TMPDIR) and a fresh /mnt/data, root-owned, holding its files (see the
 * theory of operation in checker.c). It is built once per request, its
 * artifacts kept by sandboxd in memory, and for each test they are written
 * afresh with the input, the output and the expected answer once every
 * process of the program is dead. Neither the program nor anything the slot
 * left running can see the answers, change the checker's files, or reach
 * the checker's process (signals, /proc/<pid>/mem). */
#ifndef SANDBOXD_CHECKER_H
#define SANDBOXD_CHECKER_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"
#include "language.h"
#include "slot.h"
#include "verdict.h"

struct checker;

/* The languages a checker may be written in (main.c sets them once). */
void checker_set_languages(struct language **ls, size_t n);
/* {"language", "source"}: the language must be configured and available. */
int checker_parse(const json_t *spec, struct checker **out, struct wp_error *err);
void checker_free(struct checker *c);
const struct language *checker_language(const struct checker *c);

/* The slot's checker uid: uid_base + capacity + the slot's index. */
uid_t checker_uid(const struct slot *s);
/* Prepare the checker's build (its source); *cwd is where it runs. */
int checker_build_dir(struct checker *c, struct slot *s, const char **cwd, struct wp_error *err);
/* After the build (or at once for interpreted checkers): read every regular
 * file the build left into memory (bounded), then let it go. */
int checker_collect(struct checker *c, struct slot *s, struct wp_error *err);
/* Keep a copy of `input`, `output`, `answer` for the next checker_launch. */
int checker_stage(struct checker *c, struct slot *s, const char *in, size_t in_len, const char *out, size_t out_len,
		  const char *ans, size_t ans_len, const char **cwd, struct wp_error *err);
/* Forget the last build or stage, killing its launcher if it still runs
 * (idempotent). */
void checker_unstage(struct checker *c, struct slot *s);
/* Start the staged build or check: `msg` is a PROTO_RUN (launch.c) and fds
 * its stdin, stdout, stderr; the checker joins cgroup `cg`. What init would
 * say about a run (PROTO_STARTED, PROTO_EXITED, PROTO_FAILED) is given to
 * run_on_message(). */
struct cgroup;
int checker_launch(struct checker *c, struct slot *s, struct cgroup *cg, char *msg, size_t len, const int fds[3],
		   struct wp_error *err);
/* The checker's own run, read the testlib way. */
enum verdict checker_verdict(const struct run_outcome *o);

#endif
