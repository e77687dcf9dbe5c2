/* verdict.c — from the measured facts of a run to its verdict (see
 * verdict.h). The order of the checks is the precedence: a run that both
 * overran its output and was killed for time reports the output limit, and
 * nothing the program does can turn "the sandbox failed" into its own fault. */
#include "verdict.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"

static const char *const names[] = {
    [VERDICT_ACCEPTED] = "accepted",
    [VERDICT_WRONG_ANSWER] = "wrong_answer",
    [VERDICT_TIME_LIMIT] = "time_limit_exceeded",
    [VERDICT_MEMORY_LIMIT] = "memory_limit_exceeded",
    [VERDICT_RUNTIME_ERROR] = "runtime_error",
    [VERDICT_OUTPUT_LIMIT] = "output_limit_exceeded",
    [VERDICT_COMPILATION_ERROR] = "compilation_error",
    [VERDICT_INTERNAL_ERROR] = "internal_error",
};

const char *verdict_name(enum verdict v)
{
	/* An out-of-range value is our bug, never the program's. */
	if ((unsigned)v >= ARRAY_SIZE(names))
		return names[VERDICT_INTERNAL_ERROR];
	return names[v];
}

static bool killed_by(const struct run_outcome *o, int sig)
{
	return !o->exited && o->signal == sig;
}

static bool over_time(const struct run_outcome *o, const struct limits *l)
{
	if (o->killed_cpu || o->killed_wall || killed_by(o, SIGXCPU))
		return true;
	return l && (o->cpu_ms > l->cpu_ms || o->wall_ms > l->wall_ms + o->wall_waited_ms);
}

/* A SIGKILL we did not send, with the measured peak already at the memory
 * limit, is taken for the OOM killer even when the oom_kill counter we read
 * does not show it: the counter is read once, as the run is collected, and
 * can lag the kill; and a kill charged to an ancestor group (the slot's own
 * memory bound) is counted there, not in the run's group. 5% slack because
 * the peak resident set leaves out kernel memory the cgroup also charges. A
 * program that SIGKILLs itself at that size is the price of this rule. */
static bool probably_oom(const struct run_outcome *o, const struct limits *l)
{
	if (!l || !l->memory_kb || !killed_by(o, SIGKILL))
		return false;
	return o->memory_kb >= l->memory_kb - l->memory_kb / 20;
}

enum verdict verdict_of_run(const struct run_outcome *o, const struct limits *l)
{
	if (o->internal_error)
		return VERDICT_INTERNAL_ERROR;
	if (o->output_exceeded)
		return VERDICT_OUTPUT_LIMIT;
	if (o->oom_killed)
		return VERDICT_MEMORY_LIMIT;
	if (over_time(o, l))
		return VERDICT_TIME_LIMIT;
	/* RLIMIT_FSIZE: it tried to write a file larger than allowed. */
	if (killed_by(o, SIGXFSZ))
		return VERDICT_OUTPUT_LIMIT;
	if (probably_oom(o, l))
		return VERDICT_MEMORY_LIMIT;
	if (!o->exited || o->exit_code != 0)
		return VERDICT_RUNTIME_ERROR;
	return VERDICT_ACCEPTED;
}

/* "16 MiB", "64 KiB", "1000 bytes": the unit a limit was most likely set in. */
static void fmt_size(uint64_t b, char *buf, size_t len)
{
	if (b >= 1ull << 30 && b % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 " GiB", b >> 30);
	else if (b >= 1ull << 20 && b % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 " MiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 " KiB", b >> 10);
	else
		snprintf(buf, len, "%" PRIu64 " bytes", b);
}

/* "2 s", "1.5 s", "250 ms" */
static void fmt_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 " ms", ms);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 " s", ms / 1000);
	else
		snprintf(buf, len, "%.2f s", (double)ms / 1000.0);
}

/* Killed for its wall clock rather than its CPU time: it waited. */
static bool over_wall_only(const struct run_outcome *o, const struct limits *l)
{
	if (o->killed_cpu || killed_by(o, SIGXCPU))
		return false;
	return o->killed_wall || (l && o->cpu_ms <= l->cpu_ms);
}

static const char *signal_advice(int sig)
{
	switch (sig) {
	case SIGSEGV:
	case SIGBUS:
		return "an invalid memory access: an index out of bounds, a null or dangling pointer, or a stack "
		       "overflow from too deep a recursion";
	case SIGFPE: return "an arithmetic error, most often an integer division by zero";
	case SIGABRT:
		return "the program aborted itself: a failed assertion, an uncaught C++ exception, or a "
		       "corrupted heap (see stderr)";
	case SIGKILL: return "killed from outside the program (a limit of the judge, or it killed itself)";
	case SIGPIPE: return "it wrote to a pipe nobody reads";
	default: return "see stderr";
	}
}

void verdict_explain(enum verdict v, const struct run_outcome *o, const struct limits *l, char *buf, size_t len)
{
	char a[32] = "", b[32] = "";

	buf[0] = '\0';
	switch (v) {
	case VERDICT_ACCEPTED: return;
	case VERDICT_WRONG_ANSWER:
		snprintf(buf, len,
			 "the program ran without error, but its output differs from the expected output: compare "
			 "stdout with expected_output (values, order, and the format of each line)");
		return;
	case VERDICT_TIME_LIMIT:
		if (l && over_wall_only(o, l)) {
			fmt_ms(l->wall_ms, a, sizeof(a));
			fmt_ms(o->cpu_ms, b, sizeof(b));
			snprintf(buf, len,
				 "the program ran longer than its wall-clock limit of %s while using only %s of CPU: "
				 "it was waiting (for input that never comes, a sleep, a lock); do not wait",
				 a, b);
		} else {
			fmt_ms(l ? l->cpu_ms : 0, a, sizeof(a));
			snprintf(buf, len,
				 "the program used more than its CPU time limit of %s (all its processes and "
				 "threads together) and was stopped: make it faster (a better algorithm), or look "
				 "for a loop that never ends",
				 a);
		}
		return;
	case VERDICT_MEMORY_LIMIT:
		fmt_size(l ? l->memory_kb * 1024 : 0, a, sizeof(a));
		snprintf(buf, len,
			 "the program used more than its memory limit of %s and was stopped: use less memory "
			 "(smaller arrays, fewer objects, no unbounded recursion or growing collections)",
			 a);
		return;
	case VERDICT_OUTPUT_LIMIT:
		if (killed_by(o, SIGXFSZ) && !o->output_exceeded) {
			fmt_size(l ? l->fsize_bytes : 0, a, sizeof(a));
			snprintf(buf, len,
				 "the program tried to write a file larger than its file size limit of %s: write "
				 "less",
				 a);
		} else {
			fmt_size(l ? l->output_bytes : 0, a, sizeof(a));
			snprintf(buf, len,
				 "the program wrote more than its output limit of %s on stdout or stderr and was "
				 "stopped: write less (a print in a loop that never ends?)",
				 a);
		}
		return;
	case VERDICT_RUNTIME_ERROR:
		if (o->exited)
			snprintf(buf, len,
				 "the program exited with exit code %d instead of 0: see stderr (an uncaught "
				 "exception, or main returning or exiting with a non-zero value)",
				 o->exit_code);
		else
			snprintf(buf, len, "the program was killed by signal %d (%s): %s", o->signal,
				 strsignal(o->signal), signal_advice(o->signal));
		return;
	case VERDICT_COMPILATION_ERROR: snprintf(buf, len, "the code did not compile: see compile_output"); return;
	case VERDICT_INTERNAL_ERROR:
	default:
		snprintf(buf, len,
			 "the judge failed while running this (not an error in your program): nothing to change, "
			 "submit again");
		return;
	}
}

const char *verdict_compile_reason(enum verdict v)
{
	switch (v) {
	case VERDICT_TIME_LIMIT:
	case VERDICT_MEMORY_LIMIT:
	case VERDICT_OUTPUT_LIMIT:
	case VERDICT_INTERNAL_ERROR: return verdict_name(v);
	default: return "compiler_error";
	}
}

void verdict_explain_compile(enum verdict v, const struct run_outcome *o, const struct limits *l, char *buf, size_t len)
{
	static const char judge[] = "this is the judge's limit, not an error in your code";
	char a[32] = "", b[32] = "";

	buf[0] = '\0';
	switch (v) {
	case VERDICT_ACCEPTED: return;
	case VERDICT_TIME_LIMIT:
		if (l && over_wall_only(o, l)) {
			fmt_ms(l->wall_ms, a, sizeof(a));
			fmt_ms(o->cpu_ms, b, sizeof(b));
			snprintf(buf, len,
				 "the compiler ran out of its wall-clock time limit (%s; it had used %s of CPU) "
				 "before it finished: %s; the judge was busy, submit again",
				 a, b, judge);
		} else {
			fmt_ms(l ? l->cpu_ms : 0, a, sizeof(a));
			snprintf(buf, len,
				 "the compiler ran out of its time limit (%s of CPU) before it finished: %s; if it "
				 "happens again, make the code lighter to compile (fewer template instantiations, "
				 "less compile-time computation)",
				 a, judge);
		}
		return;
	case VERDICT_MEMORY_LIMIT:
		fmt_size(l ? l->memory_kb * 1024 : 0, a, sizeof(a));
		snprintf(buf, len,
			 "the compiler ran out of its memory limit (%s) before it finished: %s; make the code "
			 "lighter to compile (fewer template instantiations, no huge constant tables)",
			 a, judge);
		return;
	case VERDICT_OUTPUT_LIMIT:
		fmt_size(l ? l->output_bytes : 0, a, sizeof(a));
		snprintf(buf, len,
			 "the compiler wrote more than its output limit (%s) of messages and was stopped: fix the "
			 "first errors shown",
			 a);
		return;
	case VERDICT_INTERNAL_ERROR:
		snprintf(buf, len, "the judge failed while compiling (not an error in your code): submit again");
		return;
	default:
		if (o->exited)
			snprintf(buf, len,
				 "the compiler rejected the code (exit code %d): fix the errors it reports in "
				 "compile_output",
				 o->exit_code);
		else
			snprintf(buf, len, "the compiler was killed by signal %d (%s): see compile_output", o->signal,
				 strsignal(o->signal));
		return;
	}
}

/* javac: "error: class Solution is public, should be declared in a file named Solution.java" */
static bool hint_java_public_class(const char *out, const char *source, char *buf, size_t len)
{
	static const char pre[] = "error: class ", post[] = " is public, should be declared in a file named ";
	const char *p = out, *dot;

	if (!source)
		source = "Main.java";
	dot = strrchr(source, '.');

	while ((p = strstr(p, pre))) {
		const char *name = p + sizeof(pre) - 1;
		size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$");
		p = name;
		if (n == 0 || n > 200 || strncmp(name + n, post, sizeof(post) - 1) != 0)
			continue;
		int cls = dot ? (int)(dot - source) : (int)strlen(source);
		size_t used = strlen(buf);
		snprintf(buf + used, len - used,
			 "%srename your public class %.*s to %.*s: the judge saves your code as %s and runs class "
			 "%.*s",
			 used ? "; " : "", (int)n, name, cls, source, source, cls, source);
		return true;
	}
	return false;
}

bool verdict_compile_hint(const char *compiler_out, const char *source, char *buf, size_t len)
{
	if (!compiler_out || !len)
		return false;
	return hint_java_public_class(compiler_out, source, buf, len);
}

void verdict_explain_truncation(const char *name, uint64_t kept, uint64_t total, uint64_t max, char *buf, size_t len)
{
	snprintf(buf, len,
		 "%s: %" PRIu64 " bytes written, only the first %" PRIu64 " returned; ask for more with max_output "
		 "(at most %" PRIu64 " bytes)",
		 name, total, kept, max);
}
