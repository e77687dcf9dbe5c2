/* cgroup.h — one interface over cgroup v1 (per-controller hierarchies:
 * memory, pids, cpu, cpuacct, freezer) and v2 (unified), detected at start.
 *
 * sandboxd creates everything under a root group of its own, placed under
 * the cgroup sandboxd itself runs in (v1: per controller; /proc/self/cgroup):
 *
 *   <root>/slot-<id>/           whole-slot limits (memory, pids)
 *   <root>/slot-<id>/init       the slot's init process
 *   <root>/slot-<id>/run0, run1 runs, alternating: per-run limits and
 *                               accounting. After a run its group is
 *                               replaced by a fresh sibling (run<g>-<n>,
 *                               cgroup_create_sibling; run.c), so no page of
 *                               one run stays charged to the next
 *   <root>/slot-<id>/kernel     only in a slot with an interpreter or a
 *                               pre-started helper: that long-lived process,
 *                               bounded like one run
 *
 * In v2 the controllers memory, pids, cpu are enabled down the tree through
 * cgroup.subtree_control; in v1 they are separate hierarchies and freezer is
 * used to stop a run's processes before killing them (no cgroup.kill). */
#ifndef SANDBOXD_CGROUP_H
#define SANDBOXD_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"

enum cgroup_mode { CGROUP_V1, CGROUP_V2 };

struct cgroup_root; /* sandboxd's root group */
struct cgroup;	    /* one group (a slot, its init, its run) */

/* Detect the mode and create (or reuse) the root group `name` under the
 * cgroup this process is in. Removes stale slot-* groups left by an earlier
 * sandboxd (killing what they still hold). `force_mode` NULL = detect,
 * "v1"/"v2" to insist (error when unavailable). `mount_prefix` is normally
 * "/sys/fs/cgroup" (tests may point elsewhere). */
int cgroup_root_open(const char *mount_prefix, const char *name, const char *force_mode, struct cgroup_root **out,
		     struct wp_error *err);
void cgroup_root_close(struct cgroup_root *r); /* does not remove anything */
enum cgroup_mode cgroup_root_mode(const struct cgroup_root *r);
const char *cgroup_mode_name(enum cgroup_mode m); /* "v1" / "v2" */
/* Which controllers are usable ("memory pids cpu"…), for node info. */
const char *cgroup_root_controllers(const struct cgroup_root *r);

/* Create child `name` of parent (parent NULL = the root group). Enables the
 * controllers for children as v2 requires. */
int cgroup_create(struct cgroup_root *r, struct cgroup *parent, const char *name, struct cgroup **out,
		  struct wp_error *err);
/* Create `name` next to g (same parent, same root), as cgroup_create. */
int cgroup_create_sibling(struct cgroup *g, const char *name, struct cgroup **out, struct wp_error *err);
/* Kill every process inside (and in child groups), wait until empty (bounded,
 * ~1 s, never blocking longer), rmdir, free. Returns 0, or -EBUSY if it
 * could not be emptied (the struct is still freed; the leftover is logged by
 * the caller and swept by the next cgroup_root_open). The structs of child
 * groups created under g are freed with it. */
int cgroup_destroy(struct cgroup *g, struct wp_error *err);
/* Kill every process in the group (v2: cgroup.kill when present, else
 * SIGKILL each pid; v1: freeze, SIGKILL every pid in cgroup.procs, thaw,
 * repeat until empty). Non-blocking apart from the bounded retry loop: it
 * returns -EAGAIN if processes remain after a few rounds (caller retries
 * later). */
int cgroup_kill_all(struct cgroup *g);
/* SIGKILL every process of the group's tree once (v2: cgroup.kill when
 * present), without freezing it and without waiting for anything: for a
 * group whose processes die anyway, such as a slot's once its init is
 * killed (the pid namespace dies with init). */
void cgroup_signal_all(struct cgroup *g);
bool cgroup_is_empty(struct cgroup *g);

/* Move pid into the group (every hierarchy in v1). */
int cgroup_attach(struct cgroup *g, pid_t pid, struct wp_error *err);
/* Open cgroup.procs of the group for writing, one fd per hierarchy (v1: up to
 * 5, v2: 1), O_WRONLY|O_CLOEXEC; fds[] is filled, -1 terminated (cap 8).
 * A process holding these (opened by root) can move itself in by writing "0". */
int cgroup_open_procs(struct cgroup *g, int fds[8], struct wp_error *err);
/* The same for a single-threaded process that moves itself in (writes "0"):
 * v1's `tasks` (the thread, which is the whole process; no RCU grace
 * period under cgroup_mutex), v2's cgroup.procs. A multi-threaded process
 * (a JVM) needs cgroup_open_procs: "0" in `tasks` moves only the writer. */
int cgroup_open_join(struct cgroup *g, int fds[8], struct wp_error *err);

/* Limits. memory in bytes (v1 memory.limit_in_bytes, v2 memory.max and
 * memory.swap.max = 0 when present); pids (pids.max); cpu_weight 1..10000
 * (v1 cpu.shares scaled; v2 cpu.weight). 0 = unlimited/unchanged. */
int cgroup_set_memory(struct cgroup *g, uint64_t bytes, struct wp_error *err);
int cgroup_set_pids(struct cgroup *g, uint64_t max, struct wp_error *err);
int cgroup_set_cpu_weight(struct cgroup *g, uint64_t weight, struct wp_error *err);
/* The limit setters return -EOPNOTSUPP when the controller is not available
 * for the group (e.g. a v2 hierarchy without controllers). 0 = unlimited. */

/* Accounting, for one run: snapshot before, read after.
 * cpu_ns: v1 cpuacct.usage; v2 cpu.stat usage_usec * 1000.
 * oom_kills: v1 memory.oom_control "oom_kill"; v2 memory.events "oom_kill".
 * mem_peak: v1 memory.max_usage_in_bytes (reset by cgroup_reset_peak), v2
 * memory.peak when present (includes page cache: see NOTES.md).
 * pids_peak: pids.peak when present, else 0. */
struct cgroup_stats {
	uint64_t cpu_ns;
	uint64_t oom_kills;
	uint64_t mem_peak;
	uint64_t mem_current;
	uint64_t pids_peak;
};
int cgroup_read_stats(struct cgroup *g, struct cgroup_stats *st);
int cgroup_read_cpu_ns(struct cgroup *g, uint64_t *ns); /* fast path, called from a timer */
/* A counter of time (ns) the group's tasks were held back waiting for a
 * CPU; only differences mean anything. v2: the group's cpu.pressure "some"
 * total (exited processes included). v1: the host's /proc/pressure/cpu
 * (v1 has no pressure per group: the whole host's, which also counts
 * waits of other groups). Without PSI: the longest run_delay of a current
 * thread (/proc/<tid>/schedstat). */
int cgroup_cpu_wait_ns(struct cgroup *g, uint64_t *ns);
void cgroup_reset_peak(struct cgroup *g);
const char *cgroup_path(const struct cgroup *g); /* for logs: v2 path or v1 memory path */
/* The group's directory in the hierarchy holding `controller` ("memory",
 * "pids", "cpu", "cpuacct", "freezer"); v2: the one directory. NULL if none. */
const char *cgroup_controller_path(const struct cgroup *g, const char *controller);

/* Remove the root group itself: destroy every child group, on v2 move this
 * process back out of <root>/sandboxd, rmdir, free. For tests and for an
 * orderly uninstall; a daemon normally just closes. */
int cgroup_root_remove(struct cgroup_root *r, struct wp_error *err);

#endif
