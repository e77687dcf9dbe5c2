/* verdict.c — from the measured facts of a run to its verdict (see
 * verdict.h). The order of the checks is the precedence: a run that both
 * overran its output and was killed for time reports the output limit, and
 * nothing the program does can turn "the sandbox failed" into its own fault. */
#include "verdict.h"

#include <signal.h>

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
