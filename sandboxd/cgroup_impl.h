/* cgroup_impl.h — what cgroup.c (common code, dispatch) shares with
 * cgroup_v1.c and cgroup_v2.c. Not for other modules. */
#ifndef SANDBOXD_CGROUP_IMPL_H
#define SANDBOXD_CGROUP_IMPL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "cgroup.h"

/* v1: at most one hierarchy per controller we use; v2: one. */
#define CGROUP_MAX_HIER 5

/* The controllers sandboxd uses, in v1 each possibly its own hierarchy. */
enum cgroup_ctl { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_FREEZER, CG_NCTL };
extern const char *const cgroup_ctl_names[CG_NCTL];

struct cgroup_root {
	enum cgroup_mode mode;
	char *name;
	int nh;			     /* hierarchies in use: v2 1, v1 1..5 */
	char *base[CGROUP_MAX_HIER]; /* the cgroup sandboxd was started in */
	char *dir[CGROUP_MAX_HIER];  /* the root group, base/name */
	int hier[CG_NCTL];	     /* index into dir[] holding the controller, -1 if none */
	char controllers[64];	     /* "memory pids cpu…", for node info */
	int memsw;		     /* v1: 0 not tried, 1 memory.memsw writable, -1 refused */
	char *daemon_dir;	     /* v2: <root>/sandboxd when we moved ourselves there */
	char base_enabled[64];	     /* v2: controllers we enabled in base's subtree_control */
};

struct cgroup {
	struct cgroup_root *r;	    /* not owned; outlives the group */
	char *dir[CGROUP_MAX_HIER]; /* parallel to r->dir[] */
	bool subtree_on;	    /* v2: controllers enabled for children */
	int cpu_fd;		    /* cached for cgroup_read_cpu_ns, -1 */
	int peak_fd;		    /* v2: memory.peak fd that carries the reset, -1 */
	struct cgroup *parent;	    /* as created: destroying a group frees its children */
	struct cgroup *child, *next;
	bool known;		    /* made by cgroup_create: its children are child… */
};

/* Small-file I/O on cgroupfs: one open/read/write per call, O_CLOEXEC, and an
 * error message that names the file. */
int cgroup_join(char *buf, size_t size, const char *dir, const char *file);
bool cgroup_exists(const char *dir, const char *file);
int cgroup_write(const char *dir, const char *file, const char *val, struct wp_error *err);
int cgroup_read(const char *dir, const char *file, char *buf, size_t size, struct wp_error *err);
/* A number file, or with key the N of its "key N" line; "max" = UINT64_MAX. */
int cgroup_read_u64(const char *dir, const char *file, const char *key, uint64_t *v);
int cgroup_pread_u64(int fd, const char *key, uint64_t *v);
bool cgroup_has_word(const char *list, const char *word);

/* Where this process is: /proc/self/cgroup and /proc/self/mountinfo. */
int cgroup_self_path(const char *controller, char **out);
int cgroup_find_mount(const char *fstype, const char *controller, const char *prefix, char **mnt, char **root);
int cgroup_base_dir(const char *mnt, const char *mroot, const char *self, char **out);

/* Process trees: SIGKILL / count every pid in dir and its subgroups. */
int cgroup_walk_tree(const char *dir, bool kill_them, int depth);
int cgroup_rmdir_tree(const char *dir);
/* The same for hierarchy h of g and the groups made under it (no listing). */
int cgroup_group_walk(struct cgroup *g, int h, bool kill_them);

static inline int cgroup_kill_tree(const char *dir)
{
	return cgroup_walk_tree(dir, true, 0);
}

static inline int cgroup_count_tree(const char *dir)
{
	return cgroup_walk_tree(dir, false, 0);
}

static inline void cgroup_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline uint64_t cgroup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cgroup_v1_root_open(struct cgroup_root *r, const char *prefix, struct wp_error *err);
int cgroup_v1_kill_all(struct cgroup *g);
bool cgroup_v1_is_empty(struct cgroup *g);
int cgroup_v1_set_memory(struct cgroup *g, uint64_t bytes, struct wp_error *err);
int cgroup_v1_set_pids(struct cgroup *g, uint64_t max, struct wp_error *err);
int cgroup_v1_set_cpu_weight(struct cgroup *g, uint64_t weight, struct wp_error *err);
int cgroup_v1_read_stats(struct cgroup *g, struct cgroup_stats *st);
int cgroup_v1_open_cpu(struct cgroup *g);
void cgroup_v1_reset_peak(struct cgroup *g);

int cgroup_v2_root_open(struct cgroup_root *r, const char *prefix, struct wp_error *err);
int cgroup_v2_root_leave(struct cgroup_root *r, struct wp_error *err);
int cgroup_v2_prepare_parent(struct cgroup *parent, struct wp_error *err);
int cgroup_v2_kill_all(struct cgroup *g);
bool cgroup_v2_is_empty(struct cgroup *g);
int cgroup_v2_set_memory(struct cgroup *g, uint64_t bytes, struct wp_error *err);
int cgroup_v2_set_pids(struct cgroup *g, uint64_t max, struct wp_error *err);
int cgroup_v2_set_cpu_weight(struct cgroup *g, uint64_t weight, struct wp_error *err);
int cgroup_v2_read_stats(struct cgroup *g, struct cgroup_stats *st);
int cgroup_v2_open_cpu(struct cgroup *g);
void cgroup_v2_reset_peak(struct cgroup *g);

#endif
