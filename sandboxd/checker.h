/* checker.h — a checker program given with a run request decides whether a
 * test's output is right ("compare": {"mode": "checker"}, "checker":
 * {"language": "cpp", "source": "…"}). It follows testlib's convention:
 * `checker input output answer`, exit 0 = accepted, 1 (or 2, presentation)
 * = wrong answer, anything else = the checker failed (internal_error).
 *
 * It runs inside the same slot as the program it judges, never alongside
 * it: the checker is compiled in a private directory before the
 * submission's own files are touched, its artifacts are kept by sandboxd in
 * memory, and for each test they are written afresh, with the input, the
 * output and the expected answer, into a new directory with a random name
 * once every process of the program is dead. So the program can neither
 * tamper with the checker nor see the answers. */
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

/* A fresh directory in the work dir holding the checker's source; *cwd is
 * its path inside the slot ("/mnt/data/.checker-…"). */
int checker_build_dir(struct checker *c, struct slot *s, const char **cwd, struct wp_error *err);
/* After the build (or at once for interpreted checkers): read every regular
 * file of the build directory into memory (bounded), then remove it. */
int checker_collect(struct checker *c, struct slot *s, struct wp_error *err);
/* A new directory with the artifacts and `input`, `output`, `answer`. */
int checker_stage(struct checker *c, struct slot *s, const char *in, size_t in_len, const char *out, size_t out_len,
		  const char *ans, size_t ans_len, const char **cwd, struct wp_error *err);
/* Remove the directory of the last build or stage (idempotent). */
void checker_unstage(struct checker *c, struct slot *s);
/* The checker's own run, read the testlib way. */
enum verdict checker_verdict(const struct run_outcome *o);

#endif
