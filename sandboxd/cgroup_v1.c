/* cgroup_v1.c — cgroup v1: one hierarchy per controller.
 *
 * sandboxd uses five controllers, each in its own hierarchy unless
 * co-mounted (the usual "cpu,cpuacct"; then one directory serves both):
 *
 *   memory   limit (memory.limit_in_bytes), OOM-kill count, peak
 *   pids     pids.max, pids.peak
 *   cpu      cpu.shares (relative weight)
 *   cpuacct  cpuacct.usage (CPU time in ns)
 *   freezer  to stop every process of a group before killing it
 *
 * In each hierarchy the root group is <where sandboxd is>/<name>, found
 * through /proc/self/cgroup and /proc/self/mountinfo; a group is the same
 * relative path in every hierarchy, and a process is attached by writing
 * its pid to cgroup.procs in all of them. v1 has no no-internal-process rule,
 * so no directory plays a special role.
 *
 * Pitfalls: memory.use_hierarchy must be 1 for a slot's limit to cover its
 * init and run children (kernels ≥ 6.x force it, older ones need the write);
 * memory.memsw.* may exist and still refuse writes (no swap accounting), so
 * it is tried once and then left alone; the page cache stays charged to the
 * group that first read a file (see NOTES.md), so peaks include it. */
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

/* Freezing a busy fork bomb of a few hundred tasks takes well under this. */
/* Bounds on how long one cgroup_kill_all may block sandboxd's loop (~16 ms
 * at worst): what is still alive after that is retried by the caller's
 * timer (run.c), so a slow death never stalls other slots' runs. */
#define FREEZE_WAIT_MS 10
#define KILL_ROUNDS    2
#define EXIT_WAIT_MS   3

static char *find_dir(const char *prefix, const char *ctl, char **mroot)
{
	char p[PATH_MAX], *mnt = NULL, *real;
	struct stat st;

	if (cgroup_find_mount("cgroup", ctl, prefix, &mnt, mroot) == 0)
		return mnt;
	/* Not in mountinfo (unusual: a test tree, a chroot): take <prefix>/<ctl>,
	 * symlinks resolved so "cpu" and "cpuacct" → "cpu,cpuacct" count once. */
	snprintf(p, sizeof(p), "%s/%s", prefix, ctl);
	real = realpath(p, NULL);
	if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode) || !cgroup_exists(real, "cgroup.procs")) {
		free(real);
		return NULL;
	}
	*mroot = strdup("/");
	if (!*mroot) {
		free(real);
		return NULL;
	}
	return real;
}

int cgroup_v1_root_open(struct cgroup_root *r, const char *prefix, struct wp_error *err)
{
	cleanup_free char *rprefix = realpath(prefix, NULL);
	char *mnts[CGROUP_MAX_HIER] = {0};
	char buf[32];
	int ret = 0, c, i;

	if (!rprefix && !(rprefix = strdup(prefix)))
		return wp_error_set(err, ENOMEM, "out of memory");
	for (c = 0; c < CG_NCTL && ret == 0; c++) {
		cleanup_free char *mnt = NULL, *mroot = NULL, *self = NULL;
		const char *name = cgroup_ctl_names[c];

		mnt = find_dir(rprefix, name, &mroot);
		if (!mnt)
			continue;
		for (i = 0; i < r->nh && strcmp(mnts[i], mnt) != 0; i++)
			;
		if (i < r->nh) { /* co-mounted with an earlier controller */
			r->hier[c] = i;
			continue;
		}
		ret = cgroup_self_path(name, &self);
		if (ret < 0) {
			ret = wp_error_set(err, -ret, "find our `%s` cgroup in /proc/self/cgroup: %s", name,
					   strerror(-ret));
			break;
		}
		if (cgroup_base_dir(mnt, mroot, self, &r->base[i]) < 0 ||
		    asprintf(&r->dir[i], "%s/%s", r->base[i], r->name) < 0) {
			r->dir[i] = NULL;
			ret = wp_error_set(err, ENOMEM, "out of memory");
			break;
		}
		mnts[i] = steal_pointer(&mnt);
		r->hier[c] = i;
		r->nh++;
	}
	for (i = 0; i < CGROUP_MAX_HIER; i++)
		free(mnts[i]);
	if (ret < 0)
		return ret;
	if (r->hier[CG_MEMORY] < 0)
		return wp_error_set(err, ENOENT, "no cgroup v1 memory hierarchy under `%s`", rprefix);

	for (i = 0; i < r->nh; i++)
		if (mkdir(r->dir[i], 0755) < 0 && errno != EEXIST)
			return wp_error_errno(err, "mkdir `%s`", r->dir[i]);

	/* Without it a slot's memory limit would not cover its children.
	 * Writable only while the group has no children: do it before any. */
	const char *mdir = r->dir[r->hier[CG_MEMORY]];
	if (cgroup_read(mdir, "memory.use_hierarchy", buf, sizeof(buf), NULL) > 0 && buf[0] == '0') {
		ret = cgroup_write(mdir, "memory.use_hierarchy", "1", err);
		if (ret < 0)
			return ret;
	}

	for (c = 0; c < CG_NCTL; c++) {
		if (r->hier[c] < 0)
			continue;
		if (r->controllers[0])
			strcat(r->controllers, " ");
		strcat(r->controllers, cgroup_ctl_names[c]);
	}
	return 0;
}

static const char *dir_of(struct cgroup *g, enum cgroup_ctl c)
{
	int h = g->r->hier[c];
	return h >= 0 ? g->dir[h] : NULL;
}

bool cgroup_v1_is_empty(struct cgroup *g)
{
	for (int i = 0; i < g->r->nh; i++)
		if (cgroup_group_walk(g, i, false) != 0)
			return false;
	return true;
}

/* Freeze the group (and its children: the v1 freezer is hierarchical) and
 * wait, bounded, for FROZEN. A task in uninterruptible sleep can keep it
 * FREEZING; we kill what we can anyway and come back next round. */
static bool freeze(const char *fdir)
{
	char state[32];
	uint64_t start = cgroup_now_ms();

	if (cgroup_write(fdir, "freezer.state", "FROZEN", NULL) < 0)
		return false;
	while (cgroup_read(fdir, "freezer.state", state, sizeof(state), NULL) > 0 && strncmp(state, "FROZEN", 6) != 0 &&
	       cgroup_now_ms() - start < FREEZE_WAIT_MS)
		cgroup_sleep_ms(1);
	return true;
}

int cgroup_v1_kill_all(struct cgroup *g)
{
	const char *fdir = dir_of(g, CG_FREEZER);

	for (int round = 0; round < KILL_ROUNDS; round++) {
		bool frozen;

		if (cgroup_v1_is_empty(g))
			return 0;
		frozen = fdir && freeze(fdir);
		/* Every hierarchy, not just the freezer: a process attached to
		 * only some of them (a failed attach) must die too. */
		for (int i = 0; i < g->r->nh; i++)
			cgroup_group_walk(g, i, true);
		/* Frozen tasks act on the SIGKILL once thawed. */
		if (frozen)
			cgroup_write(fdir, "freezer.state", "THAWED", NULL);
		for (int t = 0; t < EXIT_WAIT_MS; t++) {
			if (cgroup_v1_is_empty(g))
				return 0;
			cgroup_sleep_ms(1);
		}
	}
	return cgroup_v1_is_empty(g) ? 0 : -EAGAIN;
}

static int unsupported(struct cgroup *g, const char *ctl, struct wp_error *err)
{
	return wp_error_set(err, EOPNOTSUPP, "no cgroup v1 %s hierarchy for `%s`", ctl, g->dir[0]);
}

int cgroup_v1_set_memory(struct cgroup *g, uint64_t bytes, struct wp_error *err)
{
	const char *dir = dir_of(g, CG_MEMORY);
	struct cgroup_root *r = g->r;
	char val[24] = "-1";
	bool memsw;
	int ret;

	if (!dir)
		return unsupported(g, "memory", err);
	if (bytes)
		snprintf(val, sizeof(val), "%llu", (unsigned long long)bytes);
	/* memory+swap must stay >= memory: lift it first, lower it after. Hosts
	 * without swap accounting have the file but refuse values: stop trying. */
	memsw = r->memsw >= 0 && cgroup_exists(dir, "memory.memsw.limit_in_bytes");
	if (memsw)
		cgroup_write(dir, "memory.memsw.limit_in_bytes", "-1", NULL);
	ret = cgroup_write(dir, "memory.limit_in_bytes", val, err);
	if (ret < 0)
		return ret;
	if (memsw && bytes)
		r->memsw = cgroup_write(dir, "memory.memsw.limit_in_bytes", val, NULL) == 0 ? 1 : -1;
	return 0;
}

int cgroup_v1_set_pids(struct cgroup *g, uint64_t max, struct wp_error *err)
{
	const char *dir = dir_of(g, CG_PIDS);
	char val[24] = "max";

	if (!dir)
		return unsupported(g, "pids", err);
	if (max)
		snprintf(val, sizeof(val), "%llu", (unsigned long long)max);
	return cgroup_write(dir, "pids.max", val, err);
}

/* cpu.shares = weight * 1024 / 100, as systemd maps CPUWeight: the default
 * weight 100 is the default 1024 shares. */
int cgroup_v1_set_cpu_weight(struct cgroup *g, uint64_t weight, struct wp_error *err)
{
	const char *dir = dir_of(g, CG_CPU);
	uint64_t shares;
	char val[24];

	if (!dir)
		return unsupported(g, "cpu", err);
	if (!weight)
		weight = 100;
	if (weight > 10000)
		weight = 10000;
	shares = weight * 1024 / 100;
	snprintf(val, sizeof(val), "%llu", (unsigned long long)(shares < 2 ? 2 : shares));
	return cgroup_write(dir, "cpu.shares", val, err);
}

int cgroup_v1_read_stats(struct cgroup *g, struct cgroup_stats *st)
{
	const char *mem = dir_of(g, CG_MEMORY), *acct = dir_of(g, CG_CPUACCT), *pids = dir_of(g, CG_PIDS);
	int ret = 0, r;

	if (acct && (r = cgroup_read_u64(acct, "cpuacct.usage", NULL, &st->cpu_ns)) < 0)
		ret = r;
	if (mem) {
		if ((r = cgroup_read_u64(mem, "memory.oom_control", "oom_kill", &st->oom_kills)) < 0 && !ret)
			ret = r;
		if ((r = cgroup_read_u64(mem, "memory.max_usage_in_bytes", NULL, &st->mem_peak)) < 0 && !ret)
			ret = r;
		if ((r = cgroup_read_u64(mem, "memory.usage_in_bytes", NULL, &st->mem_current)) < 0 && !ret)
			ret = r;
	}
	if (pids && cgroup_read_u64(pids, "pids.peak", NULL, &st->pids_peak) < 0)
		st->pids_peak = 0; /* pids.peak is recent (6.13); optional */
	return ret;
}

int cgroup_v1_open_cpu(struct cgroup *g)
{
	const char *acct = dir_of(g, CG_CPUACCT);
	char p[PATH_MAX];
	int fd;

	if (!acct)
		return -EOPNOTSUPP;
	if (cgroup_join(p, sizeof(p), acct, "cpuacct.usage") < 0)
		return -ENAMETOOLONG;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void cgroup_v1_reset_peak(struct cgroup *g)
{
	const char *mem = dir_of(g, CG_MEMORY);

	if (mem)
		cgroup_write(mem, "memory.max_usage_in_bytes", "0", NULL);
}
