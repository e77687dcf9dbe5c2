/* prestart.h — a language's pre-started helper (`prestart = …` in its
 * file): a process started in the slot's "kernel" cgroup when the slot is
 * made, that has finished its own start-up before a submission arrives and
 * starts each run step (a test case, or the compile with `prestart_for =
 * compile`) as a fresh child of itself. For Python it is a fork-server
 * (sandboxd/runtimes/pyfork.py): each test case is a child forked from an
 * interpreter that already ran `site`.
 *
 * The child moves itself into the run's cgroup (through cgroup.procs fds
 * sandboxd hands over with the step) and takes the step's rlimits before it
 * runs anything of the submission; run.c watches it like any run (pipes,
 * wall and CPU timers, the run cgroup) and the helper reports its exit. When
 * the helper dies, stops answering or loses a step, the step is run again
 * the usual way (init's fork and exec), so the helper can never change a
 * verdict; it is restarted between runs. Protocol: docs/languages.md. */
#ifndef SANDBOXD_PRESTART_H
#define SANDBOXD_PRESTART_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "slot.h"

struct prestart;

/* The slot's init is ready: start the helper. slot.c waits for a run helper
 * to say ready before the slot is; a compile helper is not waited for, and
 * starts only once the node's run slots have not all been busy for
 * PRESTART_QUIET (admit_quiet_for); until it is ready, compiles are started
 * the usual way. */
int prestart_start(struct slot *s, struct wp_error *err);
/* The helper can take a step of this kind now. A compile helper that has
 * not started or is not ready yet is given up (stopped, its group killed):
 * the compile runs the usual way. Restarts a dead helper (for a later step)
 * when the slot is idle enough to. */
bool prestart_usable(struct slot *s, bool compile);
/* Hand a step to the helper: msg is init's PROTO_RUN message (launch.h),
 * fds its stdin, stdout, stderr. more: the request has a step after this
 * one (a forking helper forks its child ahead now). Returns 0 or -errno
 * (then start it the usual way). The helper's reports reach
 * run_on_message() as init's would. */
int prestart_send(struct slot *s, const void *msg, size_t len, const int fds[3], unsigned group, bool more);
/* A request on the slot was answered: a forking helper forks the next
 * request's child ahead after PRESTART_AHEAD_DELAY unless the slot is
 * destroyed by then (a judged slot is, right after its one request). */
void prestart_request_done(struct slot *s);
/* The helper cannot be trusted with the step in flight (it stopped
 * answering): kill it. */
void prestart_abandon(struct slot *s);
/* From slot.c: a message from init about the kernel group (the helper's). */
void prestart_on_message(struct slot *s, const void *msg, size_t len);
/* From slot.c: the slot is being destroyed: stop every watcher. */
void prestart_abort(struct slot *s);
/* From the slot reaper. Accepts NULL. */
void prestart_free(struct prestart *p);

#endif
