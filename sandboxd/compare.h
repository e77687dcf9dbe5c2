/* compare.h — does a program's output match the expected output? Pure. */
#ifndef SANDBOXD_COMPARE_H
#define SANDBOXD_COMPARE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "error.h"

enum compare_mode {
	COMPARE_TRAILING, /* default: ignore trailing blanks per line and trailing blank lines */
	COMPARE_EXACT,	  /* byte for byte */
	COMPARE_TOKENS,	  /* same whitespace-separated tokens */
	COMPARE_FLOAT,	  /* tokens; numeric tokens equal within abs_tol or rel_tol */
	COMPARE_CHECKER,  /* a checker program decides (run.c runs it) */
};

struct compare_spec {
	enum compare_mode mode;
	double abs_tol; /* default 1e-6 */
	double rel_tol; /* default 1e-6 */
};

void compare_spec_default(struct compare_spec *c);
/* {"mode": "trailing"|"exact"|"tokens"|"float"|"checker", "abs_tol": x, "rel_tol": y};
 * NULL leaves the default. Tolerances must be finite and >= 0. */
int compare_spec_from_json(struct compare_spec *c, const json_t *obj, struct wp_error *err);
const char *compare_mode_name(enum compare_mode m);
/* For every mode but COMPARE_CHECKER. Output may contain NUL bytes. */
bool compare_output(const struct compare_spec *c, const char *out, size_t out_len, const char *exp, size_t exp_len);

#endif
