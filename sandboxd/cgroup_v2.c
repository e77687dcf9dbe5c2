/* cgroup_v2.c — cgroup v2: one unified hierarchy.
 *
 * Layout. sandboxd starts in some cgroup B (a systemd service with
 * Delegate=yes, a container's cgroup namespace root, or the real root):
 *
 *   B/                         cgroup.subtree_control: +memory +pids +cpu
 *   B/<name>/                  the root group; subtree_control as above
 *   B/<name>/sandboxd          leaf holding sandboxd itself (not for the real root)
 *   B/<name>/slot-<id>/        slot limits; subtree_control as above
 *   B/<name>/slot-<id>/init    the slot's init
 *   B/<name>/slot-<id>/run     the current run
 *
 * v2 allows processes only in leaves once a group hands controllers to its
 * children ("no internal processes"; only the real root is exempt). B holds
 * sandboxd, so controllers cannot be enabled in B while sandboxd is in it.
 * Like crun and systemd do for delegated trees, sandboxd therefore moves
 * itself into the leaf B/<name>/sandboxd first, leaving B empty, then
 * enables the controllers in B and in B/<name>. The leaf is a sibling of
 * the slots, not their parent, so it never blocks enabling controllers for
 * them, and the stale sweep (slot-* only) leaves it alone. A restarted
 * sandboxd that finds itself already in B/<name>/sandboxd steps out of it
 * to find B again. When B is the real root (no cgroup.type file) there is
 * no rule to satisfy and sandboxd stays where it is.
 *
 * B must hold nothing but sandboxd: any other process in it makes the
 * subtree_control write fail with EBUSY, reported with that advice
 * (systemd: Delegate=yes gives the service a cgroup of its own).
 *
 * Whichever of memory, pids, cpu the parent offers (cgroup.controllers) is
 * enabled; a hierarchy without controllers (the cgroup2 mount of a hybrid
 * host, /sys/fs/cgroup/unified) still creates, attaches, kills (cgroup.kill,
 * 5.14+) and removes groups, and the limit setters say -EOPNOTSUPP. */
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h> /* not <limits.h>: -Isandboxd makes that sandboxd/limits.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cleanup.h"
#include "cgroup_impl.h"

#define KILL_ROUNDS    2 /* see cgroup_v1.c: the caller retries, the loop must not stall */
#define EXIT_WAIT_MS   3
#define FREEZE_WAIT_MS 50
#define DAEMON_LEAF    "sandboxd"

static const char *const wanted[] = {"memory", "pids", "cpu"};

/* Enable each wanted controller the group is offered and does not pass on
 * yet. Appends what it enabled to `done` (size 64) when not NULL. A
 * controller the kernel refuses for another reason than EBUSY (cpu with
 * realtime tasks around) is skipped and simply not reported. */
static int enable_controllers(const char *dir, char *done, struct wp_error *err)
{
	char avail[256], on[256], val[16];
	int ret;

	ret = cgroup_read(dir, "cgroup.controllers", avail, sizeof(avail), err);
	if (ret < 0)
		return ret;
	ret = cgroup_read(dir, "cgroup.subtree_control", on, sizeof(on), err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
		if (!cgroup_has_word(avail, wanted[i]) || cgroup_has_word(on, wanted[i]))
			continue;
		snprintf(val, sizeof(val), "+%s", wanted[i]);
		ret = cgroup_write(dir, "cgroup.subtree_control", val, NULL);
		if (ret == -EBUSY)
			return wp_error_set(err, EBUSY,
					    "write `%s/cgroup.subtree_control` = %s: %s: the group holds "
					    "processes, and v2 allows them only in leaves; run sandboxd in a "
					    "cgroup of its own (systemd: Delegate=yes)",
					    dir, val, strerror(EBUSY));
		if (ret == 0 && done) {
			if (*done)
				strcat(done, " ");
			strcat(done, wanted[i]);
		}
	}
	return 0;
}

int cgroup_v2_root_open(struct cgroup_root *r, const char *prefix, struct wp_error *err)
{
	cleanup_free char *mnt = realpath(prefix, NULL), *m = NULL, *mroot = NULL, *self = NULL;
	cleanup_free char *self_dir = NULL, *leaf_suffix = NULL;
	char on[256];
	size_t len, slen;
	int ret;

	if (!mnt)
		return wp_error_errno(err, "resolve `%s`", prefix);
	if (cgroup_find_mount("cgroup2", NULL, mnt, &m, &mroot) < 0 && !(mroot = strdup("/")))
		return wp_error_set(err, ENOMEM, "out of memory");
	ret = cgroup_self_path("", &self);
	if (ret < 0)
		return wp_error_set(err, -ret, "find our cgroup2 path in /proc/self/cgroup: %s", strerror(-ret));
	if (cgroup_base_dir(mnt, mroot, self, &self_dir) < 0 || asprintf(&leaf_suffix, "/%s/" DAEMON_LEAF, r->name) < 0)
		return wp_error_set(err, ENOMEM, "out of memory");
	r->nh = 1;
	for (int c = 0; c < CG_NCTL; c++)
		r->hier[c] = 0;
	r->base[0] = strdup(self_dir);
	if (!r->base[0])
		return wp_error_set(err, ENOMEM, "out of memory");
	/* Restarted inside our own leaf: B is two levels up. */
	len = strlen(self_dir);
	slen = strlen(leaf_suffix);
	if (len > slen && strcmp(self_dir + len - slen, leaf_suffix) == 0)
		r->base[0][len - slen] = '\0';
	if (asprintf(&r->dir[0], "%s/%s", r->base[0], r->name) < 0) {
		r->dir[0] = NULL;
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	if (mkdir(r->dir[0], 0755) < 0 && errno != EEXIST)
		return wp_error_errno(err, "mkdir `%s`", r->dir[0]);

	if (cgroup_exists(r->base[0], "cgroup.type")) { /* not the real root */
		if (asprintf(&r->daemon_dir, "%s/" DAEMON_LEAF, r->dir[0]) < 0) {
			r->daemon_dir = NULL;
			return wp_error_set(err, ENOMEM, "out of memory");
		}
		if (mkdir(r->daemon_dir, 0755) < 0 && errno != EEXIST)
			return wp_error_errno(err, "mkdir `%s`", r->daemon_dir);
		if (strcmp(self_dir, r->daemon_dir) != 0) {
			ret = cgroup_write(r->daemon_dir, "cgroup.procs", "0", err);
			if (ret < 0) {
				wp_error_prefix(err, "move sandboxd into its leaf");
				return ret;
			}
		}
	}
	ret = enable_controllers(r->base[0], r->base_enabled, err);
	if (ret == 0)
		ret = enable_controllers(r->dir[0], NULL, err);
	if (ret < 0)
		return ret;

	ret = cgroup_read(r->dir[0], "cgroup.subtree_control", on, sizeof(on), err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
		if (!cgroup_has_word(on, wanted[i]))
			continue;
		if (r->controllers[0])
			strcat(r->controllers, " ");
		strcat(r->controllers, wanted[i]);
	}
	return 0;
}

/* Undo root_open's move: controllers off again where we turned them on
 * (B may not take processes back otherwise), sandboxd back into B. */
int cgroup_v2_root_leave(struct cgroup_root *r, struct wp_error *err)
{
	char val[16];
	int ret;

	if (!r->daemon_dir)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
		snprintf(val, sizeof(val), "-%s", wanted[i]);
		if (cgroup_has_word(r->controllers, wanted[i]))
			cgroup_write(r->dir[0], "cgroup.subtree_control", val, NULL);
		if (cgroup_has_word(r->base_enabled, wanted[i]))
			cgroup_write(r->base[0], "cgroup.subtree_control", val, NULL);
	}
	ret = cgroup_write(r->base[0], "cgroup.procs", "0", err);
	if (ret < 0) {
		wp_error_prefix(err, "move sandboxd back");
		return ret;
	}
	if (rmdir(r->daemon_dir) < 0 && errno != ENOENT)
		return wp_error_errno(err, "rmdir `%s`", r->daemon_dir);
	return 0;
}

/* A group about to get children hands its controllers down. It must hold
 * no processes by then: a slot's processes live in its init and run. */
int cgroup_v2_prepare_parent(struct cgroup *parent, struct wp_error *err)
{
	int ret;

	if (parent->subtree_on)
		return 0;
	ret = enable_controllers(parent->dir[0], NULL, err);
	if (ret < 0)
		return ret;
	parent->subtree_on = true;
	return 0;
}

bool cgroup_v2_is_empty(struct cgroup *g)
{
	uint64_t populated;
	int ret = cgroup_read_u64(g->dir[0], "cgroup.events", "populated", &populated);

	if (ret == -ENOENT)
		return true;
	if (ret < 0)
		return cgroup_count_tree(g->dir[0]) == 0;
	return populated == 0;
}

static bool wait_empty(struct cgroup *g)
{
	for (int t = 0; t < EXIT_WAIT_MS; t++) {
		if (cgroup_v2_is_empty(g))
			return true;
		cgroup_sleep_ms(1);
	}
	return cgroup_v2_is_empty(g);
}

/* Before 5.14 (no cgroup.kill): freeze (5.2+), SIGKILL each pid, thaw. */
static void kill_frozen(const char *dir)
{
	uint64_t frozen = 0, start = cgroup_now_ms();
	bool fz = cgroup_write(dir, "cgroup.freeze", "1", NULL) == 0;

	while (fz && cgroup_read_u64(dir, "cgroup.events", "frozen", &frozen) == 0 && !frozen &&
	       cgroup_now_ms() - start < FREEZE_WAIT_MS)
		cgroup_sleep_ms(1);
	cgroup_kill_tree(dir);
	if (fz)
		cgroup_write(dir, "cgroup.freeze", "0", NULL);
}

int cgroup_v2_kill_all(struct cgroup *g)
{
	const char *dir = g->dir[0];

	for (int round = 0; round < KILL_ROUNDS; round++) {
		if (cgroup_v2_is_empty(g))
			return 0;
		/* cgroup.kill covers the subtree and races no fork; a kernel
		 * before 5.14 has none: the write fails */
		if (cgroup_write(dir, "cgroup.kill", "1", NULL) < 0)
			kill_frozen(dir);
		if (wait_empty(g))
			return 0;
	}
	return -EAGAIN;
}

static int need(struct cgroup *g, const char *file, const char *ctl, struct wp_error *err)
{
	if (cgroup_exists(g->dir[0], file))
		return 0;
	return wp_error_set(err, EOPNOTSUPP, "cgroup v2 controller %s not enabled for `%s`", ctl, g->dir[0]);
}

static void limit_val(char *val, size_t size, uint64_t v)
{
	if (v)
		snprintf(val, size, "%llu", (unsigned long long)v);
	else
		snprintf(val, size, "max");
}

int cgroup_v2_set_memory(struct cgroup *g, uint64_t bytes, struct wp_error *err)
{
	char val[24];
	int ret = need(g, "memory.max", "memory", err);

	if (ret < 0)
		return ret;
	limit_val(val, sizeof(val), bytes);
	ret = cgroup_write(g->dir[0], "memory.max", val, err);
	/* No swapping out of a limit: the limit is what the program gets. */
	if (ret == 0 && cgroup_exists(g->dir[0], "memory.swap.max"))
		ret = cgroup_write(g->dir[0], "memory.swap.max", "0", err);
	return ret;
}

int cgroup_v2_set_pids(struct cgroup *g, uint64_t max, struct wp_error *err)
{
	char val[24];
	int ret = need(g, "pids.max", "pids", err);

	if (ret < 0)
		return ret;
	limit_val(val, sizeof(val), max);
	return cgroup_write(g->dir[0], "pids.max", val, err);
}

int cgroup_v2_set_cpu_weight(struct cgroup *g, uint64_t weight, struct wp_error *err)
{
	char val[24];
	int ret = need(g, "cpu.weight", "cpu", err);

	if (ret < 0)
		return ret;
	if (!weight)
		weight = 100;
	snprintf(val, sizeof(val), "%llu", (unsigned long long)(weight > 10000 ? 10000 : weight));
	return cgroup_write(g->dir[0], "cpu.weight", val, err);
}

static int read_peak(struct cgroup *g, uint64_t *v)
{
	if (g->peak_fd >= 0)
		return cgroup_pread_u64(g->peak_fd, NULL, v);
	return cgroup_read_u64(g->dir[0], "memory.peak", NULL, v);
}

int cgroup_v2_read_stats(struct cgroup *g, struct cgroup_stats *st)
{
	const char *dir = g->dir[0];
	uint64_t usec = 0;
	int ret;

	/* cpu.stat usage_usec is there with or without the cpu controller. */
	ret = cgroup_read_u64(dir, "cpu.stat", "usage_usec", &usec);
	st->cpu_ns = usec * 1000;
	if (cgroup_exists(dir, "memory.events")) {
		cgroup_read_u64(dir, "memory.events", "oom_kill", &st->oom_kills);
		cgroup_read_u64(dir, "memory.current", NULL, &st->mem_current);
		read_peak(g, &st->mem_peak); /* memory.peak: 5.19+ */
	}
	if (cgroup_read_u64(dir, "pids.peak", NULL, &st->pids_peak) < 0)
		st->pids_peak = 0; /* pids.peak: 6.13+ */
	return ret;
}

int cgroup_v2_open_cpu(struct cgroup *g)
{
	char p[PATH_MAX];
	int fd;

	if (cgroup_join(p, sizeof(p), g->dir[0], "cpu.stat") < 0)
		return -ENAMETOOLONG;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Since 6.12 a write to memory.peak resets the peak as seen through that
 * file descriptor only: keep the fd and read the peak through it. Older
 * kernels refuse the write; then the peak is the group's lifetime peak. */
void cgroup_v2_reset_peak(struct cgroup *g)
{
	char p[PATH_MAX];
	int fd;

	if (g->peak_fd >= 0) {
		close(g->peak_fd);
		g->peak_fd = -1;
	}
	if (cgroup_join(p, sizeof(p), g->dir[0], "memory.peak") < 0)
		return;
	fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "reset\n", 6) != 6) {
		close(fd);
		return;
	}
	g->peak_fd = fd;
}
