/* verdict.h — what happened to one run, in docs/api.md's words, and the rule
 * that decides it. "The sandbox failed" (internal_error) is never confused
 * with "the program failed". */
#ifndef SANDBOXD_VERDICT_H
#define SANDBOXD_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "limits.h"

enum verdict {
	VERDICT_ACCEPTED,
	VERDICT_WRONG_ANSWER,
	VERDICT_TIME_LIMIT,
	VERDICT_MEMORY_LIMIT,
	VERDICT_RUNTIME_ERROR,
	VERDICT_OUTPUT_LIMIT,
	VERDICT_COMPILATION_ERROR,
	VERDICT_INTERNAL_ERROR,
};

const char *verdict_name(enum verdict v); /* "accepted", "time_limit_exceeded", … */

/* Facts measured about a finished run. */
struct run_outcome {
	bool exited; /* normal exit: exit_code valid */
	int exit_code;
	int signal;	 /* terminating signal when !exited */
	uint64_t cpu_ms; /* from the cgroup */
	uint64_t wall_ms;
	uint64_t wall_waited_ms; /* of wall_ms, waiting for a CPU: not held against the limit */
	uint64_t memory_kb;	 /* peak RSS */
	bool oom_killed;	 /* the cgroup's OOM killer fired during the run */
	bool killed_cpu;	 /* we killed it for CPU time */
	bool killed_wall;	 /* we killed it for wall time */
	bool output_exceeded;	 /* stdout or stderr passed output_bytes */
	bool internal_error;	 /* the sandbox failed */
};

/* Verdict of the run before comparing its output: precedence is
 * internal_error > output limit > memory (OOM kill) > time (our kill, SIGXCPU,
 * or cpu/wall over the limit) > SIGXFSZ (output limit: it wrote too much) >
 * runtime error (non-zero exit or any other signal) > accepted. */
enum verdict verdict_of_run(const struct run_outcome *o, const struct limits *l);

/* What happened and what to change, for whoever wrote the program, in `buf`
 * (always NUL-terminated; "" for VERDICT_ACCEPTED). `o` and `l` are the
 * run's facts and limits, named in the text ("its CPU time limit of 2 s"). */
void verdict_explain(enum verdict v, const struct run_outcome *o, const struct limits *l, char *buf, size_t len);

/* The same for a compile step that did not succeed (v != ACCEPTED). A
 * compile stopped by one of its limits is the judge's limit, not an error
 * in the code, and says so. */
void verdict_explain_compile(enum verdict v, const struct run_outcome *o, const struct limits *l, char *buf,
			     size_t len);

/* compile.reason of a failed compile: "compiler_error" (the compiler
 * rejected the code), "time_limit_exceeded", "memory_limit_exceeded",
 * "output_limit_exceeded", "internal_error". */
const char *verdict_compile_reason(enum verdict v);

/* Advice for a compiler message the student may not read as a rename:
 * javac's "class X is public, should be declared in a file named X.java"
 * when the judge saves the code as `source` (Main.java). Appends to `buf`
 * (NUL-terminated, of size len) and returns true when it recognised one. */
bool verdict_compile_hint(const char *compiler_out, const char *source, char *buf, size_t len);

/* The stream `name` ("stdout") returned cut: `kept` of `total` bytes,
 * `max` the most a request may ask for with max_output. */
void verdict_explain_truncation(const char *name, uint64_t kept, uint64_t total, uint64_t max, char *buf, size_t len);

#endif
