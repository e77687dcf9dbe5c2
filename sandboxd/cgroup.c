/* cgroup.c — the mode-independent half of the cgroup module: detection,
 * group life cycle (create, attach, destroy), small-file I/O on cgroupfs,
 * process-tree walks, and dispatch to cgroup_v1.c / cgroup_v2.c.
 *
 * Theory of operation
 *
 * A group is a set of directories, one per hierarchy: v2 has one unified
 * hierarchy, v1 one per controller (memory, pids, cpu, cpuacct, freezer;
 * cpu and cpuacct are often co-mounted as "cpu,cpuacct" and then count
 * once). struct cgroup holds the directories side by side, so creating,
 * attaching, opening cgroup.procs and removing are the same loop in both
 * modes; only limits, accounting and killing differ:
 *
 *             v1                                v2
 *   memory    memory.limit_in_bytes             memory.max, memory.swap.max
 *   pids      pids.max                          pids.max
 *   cpu       cpu.shares, cpuacct.usage         cpu.weight, cpu.stat usage_usec
 *   OOM kills memory.oom_control "oom_kill"     memory.events "oom_kill"
 *   peak      memory.max_usage_in_bytes (0      memory.peak (a write resets it
 *             written to it resets it)          for that open file only)
 *   kill      freezer FROZEN, SIGKILL, THAWED   cgroup.kill (atomic vs fork)
 *   children  anything goes                     no processes in inner groups;
 *                                               subtree_control enables children
 *
 * Each hierarchy's root group is created under the cgroup sandboxd runs in
 * there (/proc/self/cgroup, resolved to a directory through the matching
 * /proc/self/mountinfo entry). The v2 layout and why sandboxd moves itself
 * into <root>/sandboxd is explained at the top of cgroup_v2.c.
 *
 * Killing is never a plain loop of kill(2) over cgroup.procs: a fork bomb
 * outruns it. v2 has cgroup.kill; v1 freezes the group first so nothing can
 * fork between reading cgroup.procs and the SIGKILL. Zombies are not listed
 * in cgroup.procs, so a group is empty once its tasks have exited, whether
 * or not anybody reaped them (pids.current still counts them until they are
 * reaped; rmdir does not mind).
 *
 * One sandboxd per root name: opening the root sweeps (kills and removes)
 * every slot-* group in it, left over from an earlier instance. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h> /* not <limits.h>: -Isandboxd makes that sandboxd/limits.h */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cleanup.h"
#include "cgroup_impl.h"

const char *const cgroup_ctl_names[CG_NCTL] = {"memory", "pids", "cpu", "cpuacct", "freezer"};

/* ---- small files ------------------------------------------------------- */

/* Like wp_error_errno, for a path in a PATH_MAX buffer (the macro's bounded
 * snprintf would warn about truncation). */
static int path_error(struct wp_error *err, const char *op, const char *path, const char *val)
{
	int e = errno ? errno : EIO;

	if (val)
		return wp_error_set(err, e, "%s `%s` = %s: %s", op, path, val, strerror(e));
	return wp_error_set(err, e, "%s `%s`: %s", op, path, strerror(e));
}

int cgroup_join(char *buf, size_t size, const char *dir, const char *file)
{
	int n = snprintf(buf, size, "%s/%s", dir, file);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

bool cgroup_exists(const char *dir, const char *file)
{
	char p[PATH_MAX];
	return cgroup_join(p, sizeof(p), dir, file) == 0 && access(p, F_OK) == 0;
}

int cgroup_write(const char *dir, const char *file, const char *val, struct wp_error *err)
{
	char p[PATH_MAX];
	cleanup_close int fd = -1;
	size_t len = strlen(val);
	ssize_t n;

	if (cgroup_join(p, sizeof(p), dir, file) < 0)
		return wp_error_set(err, ENAMETOOLONG, "path `%s/%s` too long", dir, file);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return path_error(err, "write", p, val);
	do
		n = write(fd, val, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return path_error(err, "write", p, val);
	if ((size_t)n != len)
		return wp_error_set(err, EIO, "write `%s` = %s: short write", p, val);
	return 0;
}

/* Reads a whole (small) file into buf, NUL-terminated; returns its length. */
int cgroup_read(const char *dir, const char *file, char *buf, size_t size, struct wp_error *err)
{
	char p[PATH_MAX];
	cleanup_close int fd = -1;
	size_t off = 0;

	if (cgroup_join(p, sizeof(p), dir, file) < 0)
		return wp_error_set(err, ENAMETOOLONG, "path `%s/%s` too long", dir, file);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return path_error(err, "read", p, NULL);
	while (off + 1 < size) {
		ssize_t n = read(fd, buf + off, size - 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return path_error(err, "read", p, NULL);
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	return (int)off;
}

/* "123\n" or "max\n" (= UINT64_MAX). */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	while (*s == ' ')
		s++;
	if (strncmp(s, "max", 3) == 0) {
		*v = UINT64_MAX;
		return 0;
	}
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || end == s || (*end && *end != '\n'))
		return -EINVAL;
	*v = x;
	return 0;
}

/* The whole buffer as a number or, with key, the value of its "key N" line
 * (cpu.stat, memory.events, memory.oom_control…). */
static int parse_value(const char *buf, const char *key, uint64_t *v)
{
	size_t klen = key ? strlen(key) : 0;

	if (!key)
		return parse_u64(buf, v);
	for (const char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, key, klen) == 0 && l[klen] == ' ')
			return parse_u64(l + klen + 1, v);
	return -ENODATA;
}

int cgroup_read_u64(const char *dir, const char *file, const char *key, uint64_t *v)
{
	char buf[4096];
	int ret = cgroup_read(dir, file, buf, sizeof(buf), NULL);

	return ret < 0 ? ret : parse_value(buf, key, v);
}

/* Re-reads an open cgroup file from offset 0: kernfs regenerates it. */
int cgroup_pread_u64(int fd, const char *key, uint64_t *v)
{
	char buf[4096];
	ssize_t n;

	do
		n = pread(fd, buf, sizeof(buf) - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return parse_value(buf, key, v);
}

/* Is `word` one of the space- or comma-separated words of list? */
bool cgroup_has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ' || p[-1] == ',') &&
		    (p[len] == '\0' || p[len] == ' ' || p[len] == ',' || p[len] == '\n'))
			return true;
	return false;
}

/* ---- where this process is -------------------------------------------- */

/* Path of this process's cgroup in the hierarchy holding `controller`
 * ("" = the v2 hierarchy, line "0::/path"). */
int cgroup_self_path(const char *controller, char **out)
{
	cleanup_fclose FILE *f = fopen("/proc/self/cgroup", "re");
	cleanup_free char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *ctl, *path;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		ctl = strchr(line, ':');
		if (!ctl)
			continue;
		ctl++;
		path = strchr(ctl, ':');
		if (!path)
			continue;
		*path++ = '\0';
		if (*controller ? cgroup_has_word(ctl, controller) : (*ctl == '\0' && line[0] == '0')) {
			*out = strdup(path);
			return *out ? 0 : -ENOMEM;
		}
	}
	return -ENOENT;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

static bool under(const char *path, const char *prefix)
{
	size_t len = strlen(prefix);
	return strncmp(path, prefix, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

/* Find the mount of a cgroup hierarchy in /proc/self/mountinfo.
 * cgroup2: the mount whose mount point is `prefix`. cgroup (v1): the mount
 * whose super options name `controller`, preferring one under `prefix`.
 * Returns the mount point and the mount's root inside the hierarchy (not
 * "/" for bind mounts of a subtree). The last match wins: an overmount
 * hides what was mounted there before. */
int cgroup_find_mount(const char *fstype, const char *controller, const char *prefix, char **mnt, char **root)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	cleanup_free char *line = NULL;
	cleanup_free char *best_mnt = NULL, *best_root = NULL;
	bool best_under = false;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *fields[6], *sep, *save = NULL, *type, *opts;
		int i;

		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		type = strtok_r(sep + 3, " ", &save);
		if (!type || strcmp(type, fstype) != 0)
			continue;
		if (!strtok_r(NULL, " ", &save)) /* source */
			continue;
		opts = strtok_r(NULL, " ", &save);
		if (controller && (!opts || !cgroup_has_word(opts, controller)))
			continue;
		save = NULL;
		for (i = 0; i < 6 && (fields[i] = strtok_r(i ? NULL : line, " ", &save)); i++)
			;
		if (i < 5)
			continue;
		unescape(fields[3]);
		unescape(fields[4]);
		if (controller ? (best_under && !under(fields[4], prefix)) : strcmp(fields[4], prefix) != 0)
			continue;
		free(best_mnt);
		free(best_root);
		best_mnt = strdup(fields[4]);
		best_root = strdup(fields[3]);
		if (!best_mnt || !best_root)
			return -ENOMEM;
		best_under = under(fields[4], prefix);
	}
	if (!best_mnt)
		return -ENOENT;
	*mnt = steal_pointer(&best_mnt);
	*root = steal_pointer(&best_root);
	return 0;
}

/* The directory of cgroup `self` given the hierarchy's mount point and the
 * mount's root inside the hierarchy. */
int cgroup_base_dir(const char *mnt, const char *mroot, const char *self, char **out)
{
	const char *rel = self;

	if (strcmp(mroot, "/") != 0 && under(self, mroot))
		rel = self + strlen(mroot);
	if (*rel == '/' && rel[1] == '\0')
		rel = "";
	if (asprintf(out, "%s%s", mnt, rel) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- process trees ----------------------------------------------------- */

static int read_all(const char *path, char **out)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	cleanup_free char *buf = NULL;
	size_t len = 0, cap = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;
		if (cap - len < 1024) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 4096);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = steal_pointer(&buf);
	return 0;
}

/* Counts (and with kill_them, SIGKILLs) the processes of dir itself, not
 * of its subgroups. A vanished directory counts as empty. Never kills us. */
static int procs_walk(const char *dir, bool kill_them)
{
	char p[PATH_MAX];
	cleanup_free char *procs = NULL;
	int ret, count = 0;

	if (cgroup_join(p, sizeof(p), dir, "cgroup.procs") < 0)
		return -ENAMETOOLONG;
	ret = read_all(p, &procs);
	if (ret == -ENOENT || ret == -ENODEV)
		return 0;
	if (ret < 0)
		return ret;
	for (char *s = procs, *end; *s; s = end) {
		long pid = strtol(s, &end, 10);
		if (end == s)
			break;
		if (pid <= 0 || pid == getpid())
			continue;
		count++;
		if (kill_them)
			kill((pid_t)pid, SIGKILL);
	}
	return count;
}

/* The same for dir and every subgroup, found by listing the directories. */
int cgroup_walk_tree(const char *dir, bool kill_them, int depth)
{
	char p[PATH_MAX];
	cleanup_dir DIR *d = NULL;
	struct dirent *de;
	int ret, count;

	if (depth > 32)
		return -ELOOP;
	count = procs_walk(dir, kill_them);
	if (count < 0)
		return count;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? count : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (cgroup_join(p, sizeof(p), dir, de->d_name) < 0)
			continue;
		ret = cgroup_walk_tree(p, kill_them, depth + 1);
		if (ret < 0)
			return ret;
		count += ret;
	}
	return count;
}

/* The same for hierarchy h of g, through the groups made under it (g->known:
 * every group sandboxd makes; nothing in a slot can make one): one read of
 * cgroup.procs per group and no directory listing, which on a v1 host with
 * five hierarchies was most of the system calls of a judged submission (a
 * memory group's directory lists ~30 files). A group of unknown children (a
 * sweep's) is listed. */
int cgroup_group_walk(struct cgroup *g, int h, bool kill_them)
{
	int count;

	if (!g->known)
		return cgroup_walk_tree(g->dir[h], kill_them, 0);
	count = procs_walk(g->dir[h], kill_them);
	for (struct cgroup *c = g->child; c && count >= 0; c = c->next) {
		int n = cgroup_group_walk(c, h, kill_them);
		count = n < 0 ? n : count + n;
	}
	return count;
}

/* rmdir children deepest first, then dir itself. Missing is fine. */
int cgroup_rmdir_tree(const char *dir)
{
	cleanup_dir DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX];
	int ret, first = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (cgroup_join(p, sizeof(p), dir, de->d_name) < 0)
			return -ENAMETOOLONG;
		ret = cgroup_rmdir_tree(p);
		if (ret < 0 && !first)
			first = ret;
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		return -errno;
	return first;
}

/* rmdir hierarchy h of g: the groups made under it deepest first, then g,
 * without listing directories. A group that is still busy (an exiting task,
 * or a child we did not make) is listed: what it holds is killed and its
 * subgroups removed, as for a group of unknown children. Missing is fine. */
static int group_rmdir(struct cgroup *g, int h)
{
	int first = 0;

	if (!g->known)
		return cgroup_rmdir_tree(g->dir[h]);
	for (struct cgroup *c = g->child; c; c = c->next) {
		int ret = group_rmdir(c, h);
		if (ret < 0 && !first)
			first = ret;
	}
	if (rmdir(g->dir[h]) == 0 || errno == ENOENT)
		return first;
	if (errno != EBUSY)
		return -errno;
	cgroup_kill_tree(g->dir[h]);
	return cgroup_rmdir_tree(g->dir[h]);
}

/* ---- roots and groups -------------------------------------------------- */

static bool valid_name(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	       strlen(name) < NAME_MAX;
}

static bool is_dir(const char *dir, const char *file)
{
	char p[PATH_MAX];
	struct stat st;
	return cgroup_join(p, sizeof(p), dir, file) == 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Frees g and the structs of its child groups; unlinks it from its parent. */
static void group_free(struct cgroup *g)
{
	if (!g)
		return;
	while (g->child) {
		struct cgroup *c = g->child;
		g->child = c->next;
		c->parent = NULL;
		group_free(c);
	}
	if (g->parent) {
		struct cgroup **pp = &g->parent->child;
		while (*pp != g)
			pp = &(*pp)->next;
		*pp = g->next;
	}
	for (int i = 0; i < CGROUP_MAX_HIER; i++)
		free(g->dir[i]);
	if (g->cpu_fd >= 0)
		close(g->cpu_fd);
	if (g->peak_fd >= 0)
		close(g->peak_fd);
	free(g);
}

/* A struct for child `name` of parent (NULL = root) without creating it. */
static struct cgroup *group_at(struct cgroup_root *r, struct cgroup *parent, const char *name)
{
	struct cgroup *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->r = r;
	g->cpu_fd = g->peak_fd = -1;
	for (int i = 0; i < r->nh; i++) {
		if (asprintf(&g->dir[i], "%s/%s", parent ? parent->dir[i] : r->dir[i], name) < 0) {
			g->dir[i] = NULL;
			group_free(g);
			return NULL;
		}
	}
	return g;
}

/* Destroy the children of the root whose names start with `prefix`,
 * except `keep` (the v2 daemon leaf). Rescans after each removal rather
 * than removing entries under a live readdir. */
static int remove_children(struct cgroup_root *r, const char *prefix, const char *keep, struct wp_error *err)
{
	for (;;) {
		struct dirent *de = NULL;
		struct cgroup *g = NULL;

		for (int i = 0; i < r->nh && !g; i++) {
			cleanup_dir DIR *d = opendir(r->dir[i]);
			while (d && (de = readdir(d)))
				if (de->d_type == DT_DIR && de->d_name[0] != '.' &&
				    strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
				    !(keep && strcmp(de->d_name, keep) == 0))
					break;
			if (de && !(g = group_at(r, NULL, de->d_name)))
				return wp_error_set(err, ENOMEM, "out of memory");
		}
		if (!g)
			return 0;
		int ret = cgroup_destroy(g, err);
		if (ret < 0)
			return ret;
	}
}

int cgroup_root_open(const char *mount_prefix, const char *name, const char *force_mode, struct cgroup_root **out,
		     struct wp_error *err)
{
	struct cgroup_root *r;
	char v2_prefix[PATH_MAX];
	bool v2 = false;
	int ret;

	if (!valid_name(name))
		return wp_error_set(err, EINVAL, "invalid cgroup root name `%s`", name ? name : "");
	if (!mount_prefix)
		mount_prefix = "/sys/fs/cgroup";
	snprintf(v2_prefix, sizeof(v2_prefix), "%s", mount_prefix);
	if (!force_mode) {
		/* Pure unified: cgroup.controllers at the top. A hybrid host
		 * (cgroup2 at <prefix>/unified) runs v1, where the controllers are. */
		v2 = cgroup_exists(mount_prefix, "cgroup.controllers");
		if (!v2 && !is_dir(mount_prefix, "memory"))
			return wp_error_set(err, ENOENT, "no cgroup hierarchy at `%s` (neither %s nor %s)",
					    mount_prefix, "cgroup.controllers", "memory/");
	} else if (strcmp(force_mode, "v2") == 0) {
		v2 = true;
		/* Forcing v2 on a hybrid host finds the unified mount below. */
		if (!cgroup_exists(mount_prefix, "cgroup.controllers")) {
			snprintf(v2_prefix, sizeof(v2_prefix), "%s/unified", mount_prefix);
			if (!cgroup_exists(v2_prefix, "cgroup.controllers"))
				return wp_error_set(err, ENOENT, "cgroup v2 forced but no cgroup2 mount at `%s`",
						    mount_prefix);
		}
	} else if (strcmp(force_mode, "v1") == 0) {
		if (!is_dir(mount_prefix, "memory"))
			return wp_error_set(err, ENOENT, "cgroup v1 forced but no `%s/memory` hierarchy", mount_prefix);
	} else {
		return wp_error_set(err, EINVAL, "unknown cgroup mode `%s` (v1, v2)", force_mode);
	}

	r = calloc(1, sizeof(*r));
	if (!r || !(r->name = strdup(name))) {
		free(r);
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	r->mode = v2 ? CGROUP_V2 : CGROUP_V1;
	for (int c = 0; c < CG_NCTL; c++)
		r->hier[c] = -1;
	ret = v2 ? cgroup_v2_root_open(r, v2_prefix, err) : cgroup_v1_root_open(r, mount_prefix, err);
	if (ret == 0) {
		ret = remove_children(r, "slot-", NULL, err);
		if (ret < 0)
			wp_error_prefix(err, "sweep stale groups of `%s`", r->dir[0]);
	}
	if (ret < 0) {
		cgroup_root_close(r);
		return ret;
	}
	*out = r;
	return 0;
}

void cgroup_root_close(struct cgroup_root *r)
{
	if (!r)
		return;
	for (int i = 0; i < CGROUP_MAX_HIER; i++) {
		free(r->base[i]);
		free(r->dir[i]);
	}
	free(r->daemon_dir);
	free(r->name);
	free(r);
}

int cgroup_root_remove(struct cgroup_root *r, struct wp_error *err)
{
	int ret;

	if (!r)
		return 0;
	ret = remove_children(r, "", r->daemon_dir ? "sandboxd" : NULL, err);
	if (ret == 0 && r->mode == CGROUP_V2)
		ret = cgroup_v2_root_leave(r, err);
	for (int i = 0; ret == 0 && i < r->nh; i++)
		if (rmdir(r->dir[i]) < 0 && errno != ENOENT)
			ret = wp_error_errno(err, "rmdir `%s`", r->dir[i]);
	cgroup_root_close(r);
	return ret;
}

enum cgroup_mode cgroup_root_mode(const struct cgroup_root *r)
{
	return r->mode;
}

const char *cgroup_mode_name(enum cgroup_mode m)
{
	return m == CGROUP_V2 ? "v2" : "v1";
}

const char *cgroup_root_controllers(const struct cgroup_root *r)
{
	return r->controllers;
}

int cgroup_create(struct cgroup_root *r, struct cgroup *parent, const char *name, struct cgroup **out,
		  struct wp_error *err)
{
	struct cgroup *g;
	int ret, i;

	if (!valid_name(name))
		return wp_error_set(err, EINVAL, "invalid cgroup name `%s`", name ? name : "");
	if (r->mode == CGROUP_V2 && parent) {
		ret = cgroup_v2_prepare_parent(parent, err);
		if (ret < 0)
			return ret;
	}
	g = group_at(r, parent, name);
	if (!g)
		return wp_error_set(err, ENOMEM, "out of memory");
	for (i = 0; i < r->nh; i++) {
		if (mkdir(g->dir[i], 0755) < 0) {
			ret = wp_error_errno(err, "mkdir `%s`", g->dir[i]);
			while (--i >= 0)
				rmdir(g->dir[i]);
			group_free(g);
			return ret;
		}
	}
	g->known = true;
	if (parent) {
		g->parent = parent;
		g->next = parent->child;
		parent->child = g;
	}
	*out = g;
	return 0;
}

int cgroup_create_sibling(struct cgroup *g, const char *name, struct cgroup **out, struct wp_error *err)
{
	if (!g || !g->parent)
		return wp_error_set(err, EINVAL, "cgroup `%s` has no parent group", name ? name : "");
	return cgroup_create(g->r, g->parent, name, out, err);
}

/* The mode-specific operations: cgroup_v1_<op> or cgroup_v2_<op>. */
#define DISPATCH(g, op, ...) ((g)->r->mode == CGROUP_V2 ? cgroup_v2_##op(__VA_ARGS__) : cgroup_v1_##op(__VA_ARGS__))

int cgroup_kill_all(struct cgroup *g)
{
	return DISPATCH(g, kill_all, g);
}

void cgroup_signal_all(struct cgroup *g)
{
	/* v2 before 5.14 has no cgroup.kill: the write fails, the walk kills */
	if (g->r->mode == CGROUP_V2 && cgroup_write(g->dir[0], "cgroup.kill", "1", NULL) == 0)
		return;
	for (int i = 0; i < g->r->nh; i++)
		cgroup_group_walk(g, i, true);
}

bool cgroup_is_empty(struct cgroup *g)
{
	return DISPATCH(g, is_empty, g);
}

int cgroup_destroy(struct cgroup *g, struct wp_error *err)
{
	uint64_t start = cgroup_now_ms();
	int ret = 0, first[CGROUP_MAX_HIER];
	bool busy = false;

	if (!g)
		return 0;
	/* The usual case (a run group after its run, a slot whose init was
	 * reaped) is empty: the rmdirs go through with nothing read first. A
	 * group that still holds a task says EBUSY (group_rmdir has listed,
	 * killed and retried it once): then the whole tree is frozen and
	 * killed, waited for and removed as below. */
	for (int i = 0; i < g->r->nh; i++)
		busy |= (first[i] = group_rmdir(g, i)) == -EBUSY;
	if (busy && cgroup_kill_all(g) != 0) {
		uint64_t last_kill = cgroup_now_ms();
		while (!cgroup_is_empty(g) && cgroup_now_ms() - start < 1000) {
			cgroup_sleep_ms(5);
			if (cgroup_now_ms() - last_kill >= 100) {
				cgroup_kill_all(g);
				last_kill = cgroup_now_ms();
			}
		}
	}
	for (int i = 0; i < g->r->nh; i++) {
		int r = first[i];
		/* rmdir says EBUSY while exiting tasks still hold the group. */
		while (r == -EBUSY && (r = group_rmdir(g, i)) == -EBUSY && cgroup_now_ms() - start < 1000)
			cgroup_sleep_ms(5);
		if (r < 0 && ret == 0) {
			int left = cgroup_count_tree(g->dir[i]);
			ret = wp_error_set(err, -r, "rmdir `%s`: %s (%d processes left)", g->dir[i], strerror(-r),
					   left > 0 ? left : 0);
		}
	}
	group_free(g);
	return ret;
}

int cgroup_attach(struct cgroup *g, pid_t pid, struct wp_error *err)
{
	char val[24];

	snprintf(val, sizeof(val), "%d", (int)pid);
	for (int i = 0; i < g->r->nh; i++) {
		int ret = cgroup_write(g->dir[i], "cgroup.procs", val, err);
		if (ret < 0) {
			wp_error_prefix(err, "attach pid %d", (int)pid);
			return ret;
		}
	}
	return 0;
}

static int open_each(struct cgroup *g, const char *file, int fds[8], struct wp_error *err)
{
	char p[PATH_MAX];
	int i;

	for (i = 0; i < g->r->nh; i++) {
		if (cgroup_join(p, sizeof(p), g->dir[i], file) < 0 ||
		    (fds[i] = open(p, O_WRONLY | O_CLOEXEC)) < 0) {
			int ret = path_error(err, "open", p, NULL);
			while (--i >= 0)
				close(fds[i]);
			fds[0] = -1;
			return ret;
		}
	}
	fds[i] = -1;
	return 0;
}

int cgroup_open_procs(struct cgroup *g, int fds[8], struct wp_error *err)
{
	return open_each(g, "cgroup.procs", fds, err);
}

/* v1's `tasks` moves one thread. Written "0" by the thread itself, the
 * kernel moves it without cgroup_threadgroup_rwsem's write side, whose
 * rcu_sync_enter() waits for an RCU grace period (~7 ms on a quiet host)
 * while it holds cgroup_mutex: every mkdir and rmdir of a group waited
 * behind it, sandboxd's loop included. v2 has no such file for domain
 * groups: cgroup.procs there. */
int cgroup_open_join(struct cgroup *g, int fds[8], struct wp_error *err)
{
	return open_each(g, g->r->mode == CGROUP_V1 ? "tasks" : "cgroup.procs", fds, err);
}

int cgroup_set_memory(struct cgroup *g, uint64_t bytes, struct wp_error *err)
{
	return DISPATCH(g, set_memory, g, bytes, err);
}

int cgroup_set_pids(struct cgroup *g, uint64_t max, struct wp_error *err)
{
	return DISPATCH(g, set_pids, g, max, err);
}

int cgroup_set_cpu_weight(struct cgroup *g, uint64_t weight, struct wp_error *err)
{
	return DISPATCH(g, set_cpu_weight, g, weight, err);
}

int cgroup_read_stats(struct cgroup *g, struct cgroup_stats *st)
{
	memset(st, 0, sizeof(*st));
	return DISPATCH(g, read_stats, g, st);
}

/* "some ... total=<µs>" of a PSI file: -ENOENT without PSI. */
static int psi_some_us(const char *path, uint64_t *us)
{
	char buf[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT; /* psi=0: the file exists, reading fails */
	buf[n] = 0;
	const char *t = strncmp(buf, "some ", 5) == 0 ? strstr(buf, "total=") : NULL;
	if (!t)
		return -ENOENT;
	*us = strtoull(t + 6, NULL, 10);
	return 0;
}

/* The longest any current thread of the group has waited for a CPU. */
static int threads_max_wait_ns(struct cgroup *g, uint64_t *ns)
{
	char path[PATH_MAX], stat[64];
	unsigned long long run, wait;
	uint64_t most = 0;
	long tid;

	/* v1 lists a group's threads in `tasks`, v2 in `cgroup.threads` */
	if (cgroup_join(path, sizeof(path), g->dir[0], g->r->mode == CGROUP_V2 ? "cgroup.threads" : "tasks") < 0)
		return -ENAMETOOLONG;
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fscanf(f, "%ld", &tid) == 1) {
		snprintf(stat, sizeof(stat), "/proc/%ld/schedstat", tid);
		FILE *s = fopen(stat, "re");
		if (!s)
			continue; /* gone meanwhile */
		if (fscanf(s, "%llu %llu", &run, &wait) == 2 && wait > most)
			most = wait;
		fclose(s);
	}
	fclose(f);
	*ns = most;
	return 0;
}

int cgroup_cpu_wait_ns(struct cgroup *g, uint64_t *ns)
{
	char path[PATH_MAX];
	uint64_t us;

	/* v2: the group's own pressure, exited processes included */
	if (g->r->mode == CGROUP_V2 && cgroup_join(path, sizeof(path), g->dir[0], "cpu.pressure") == 0 &&
	    psi_some_us(path, &us) == 0) {
		*ns = us * 1000;
		return 0;
	}
	/* v1 has no pressure per group: the host's */
	if (g->r->mode == CGROUP_V1 && psi_some_us("/proc/pressure/cpu", &us) == 0) {
		*ns = us * 1000;
		return 0;
	}
	return threads_max_wait_ns(g, ns);
}

int cgroup_read_cpu_ns(struct cgroup *g, uint64_t *ns)
{
	uint64_t usec = 0;
	int ret;

	if (g->cpu_fd < 0) {
		int fd = DISPATCH(g, open_cpu, g);
		if (fd < 0)
			return fd;
		g->cpu_fd = fd;
	}
	if (g->r->mode == CGROUP_V1)
		return cgroup_pread_u64(g->cpu_fd, NULL, ns);
	ret = cgroup_pread_u64(g->cpu_fd, "usage_usec", &usec);
	*ns = usec * 1000;
	return ret;
}

void cgroup_reset_peak(struct cgroup *g)
{
	DISPATCH(g, reset_peak, g);
}

const char *cgroup_path(const struct cgroup *g)
{
	int m = g->r->hier[CG_MEMORY];
	return g->dir[m >= 0 ? m : 0];
}

const char *cgroup_controller_path(const struct cgroup *g, const char *controller)
{
	for (int c = 0; c < CG_NCTL; c++)
		if (strcmp(controller, cgroup_ctl_names[c]) == 0)
			return g->r->hier[c] >= 0 ? g->dir[g->r->hier[c]] : NULL;
	return NULL;
}
