/* test_cgroup.c — the cgroup module against the real cgroups of this host.
 *
 * Needs root. v1 tests use the hierarchies under /sys/fs/cgroup (detected),
 * v2 tests force the cgroup2 mount at /sys/fs/cgroup/unified, which on a
 * hybrid host has no controllers: groups, attach, kill and remove work there,
 * limits say -EOPNOTSUPP. Every test gets its own root group wp-unit-<pid>-<n>,
 * removed in the teardown whatever happened; the test process is a child
 * subreaper so that fork-bomb orphans are reaped here. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "cgroup.h"

#define MiB (1024ULL * 1024)

static struct cgroup_root *root;
static char root_name[64];
static int test_no;
static pid_t kids[64];
static int nkids;
static int child_fds[8]; /* for child_join */
static int ready_fd = -1;

/* ---- children ---------------------------------------------------------- */

static void track(pid_t pid)
{
	if (nkids < (int)(sizeof(kids) / sizeof(kids[0])))
		kids[nkids++] = pid;
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] == pid)
			kids[i] = kids[--nkids];
}

/* Fork a child that runs fn once the parent says go (after attaching it). */
static pid_t spawn(void (*fn)(void), int *go_fd)
{
	int p[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(100);
		fn();
		_exit(0);
	}
	close(p[0]);
	track(pid);
	*go_fd = p[1];
	return pid;
}

static void go(int fd)
{
	assert_int_equal(write(fd, "g", 1), 1);
	close(fd);
}

static int wait_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	untrack(pid);
	return st;
}

/* Reap orphans handed to us as subreaper (fork bomb leftovers). */
static void reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void sleeper(void)
{
	for (;;)
		pause();
}

static void fork_bomb(void)
{
	for (;;)
		fork();
}

static void hog_64m(void)
{
	size_t len = 64 * MiB;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(2);
	memset(p, 1, len);
	_exit(3); /* survived: the limit did not hold */
}

static void busy_300ms(void)
{
	struct timespec ts;

	do
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	while (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 < 300);
}

static void ten_sleepers(void)
{
	for (int i = 0; i < 10; i++)
		if (fork() == 0)
			sleeper();
	sleeper();
}

/* Moves itself in with the inherited cgroup.procs fds, then tells the parent. */
static void child_join(void)
{
	for (int i = 0; child_fds[i] >= 0; i++)
		if (write(child_fds[i], "0", 1) != 1)
			_exit(4);
	if (write(ready_fd, "r", 1) != 1)
		_exit(5);
	sleeper();
}

/* ---- helpers ----------------------------------------------------------- */

static void read_text(const char *dir, const char *file, char *buf, size_t size)
{
	char p[4096];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, size - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}

static bool dir_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Is ctl one of the comma-separated controllers of list ("" matches "")? */
static bool has_ctl(const char *list, const char *ctl)
{
	size_t len = strlen(ctl);

	if (!*ctl)
		return !*list;
	for (const char *p = list; p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (strncmp(p, ctl, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

/* Does /proc/<pid>/cgroup put pid in <...>/<root_name>/<rel> for controller
 * ctl ("" = the v2 line)? */
static bool in_group(pid_t pid, const char *ctl, const char *rel)
{
	char p[64], line[1024], want[256];
	FILE *f;
	bool found = false;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
	snprintf(want, sizeof(want), "/%s/%s\n", root_name, rel);
	f = fopen(p, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':'), *path;
		if (!c || !(path = strchr(c + 1, ':')))
			continue;
		*path++ = '\0';
		c++;
		if (!has_ctl(c, ctl))
			continue;
		size_t lp = strlen(path), lw = strlen(want);
		found = lp >= lw && strcmp(path + lp - lw, want) == 0;
		break;
	}
	fclose(f);
	return found;
}

static struct cgroup *create(struct cgroup *parent, const char *name)
{
	struct wp_error err = {0};
	struct cgroup *g = NULL;
	int ret = cgroup_create(root, parent, name, &g, &err);

	if (ret < 0)
		fail_msg("cgroup_create %s: %s", name, err.msg);
	return g;
}

static void destroy_ok(struct cgroup *g)
{
	struct wp_error err = {0};

	if (cgroup_destroy(g, &err) < 0)
		fail_msg("cgroup_destroy: %s", err.msg);
}

static void attach(struct cgroup *g, pid_t pid)
{
	struct wp_error err = {0};

	if (cgroup_attach(g, pid, &err) < 0)
		fail_msg("cgroup_attach: %s", err.msg);
}

/* ---- fixtures ---------------------------------------------------------- */

static int open_root(const char *prefix, const char *mode)
{
	struct wp_error err = {0};

	snprintf(root_name, sizeof(root_name), "wp-unit-%d-%d", (int)getpid(), ++test_no);
	if (cgroup_root_open(prefix, root_name, mode, &root, &err) < 0) {
		fprintf(stderr, "cgroup_root_open: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int setup_v1(void **state)
{
	return open_root("/sys/fs/cgroup", NULL);
}

static int setup_v2(void **state)
{
	return open_root("/sys/fs/cgroup/unified", "v2");
}

static int teardown(void **state)
{
	struct wp_error err = {0};
	int ret;

	for (int i = 0; i < nkids; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	nkids = 0;
	ret = cgroup_root_remove(root, &err);
	root = NULL;
	reap_orphans();
	if (ret < 0)
		fprintf(stderr, "cgroup_root_remove: %s\n", err.msg);
	return ret < 0 ? -1 : 0;
}

/* ---- v1 ---------------------------------------------------------------- */

static void test_v1_detect_and_sweep(void **state)
{
	struct wp_error err = {0};
	struct cgroup_root *again = NULL;
	struct cgroup *stale;
	char mem[4096];
	pid_t pid;
	int go_fd;

	assert_int_equal(cgroup_root_mode(root), CGROUP_V1);
	assert_string_equal(cgroup_mode_name(cgroup_root_mode(root)), "v1");
	assert_non_null(strstr(cgroup_root_controllers(root), "memory"));
	assert_non_null(strstr(cgroup_root_controllers(root), "pids"));
	assert_non_null(strstr(cgroup_root_controllers(root), "cpuacct"));
	assert_non_null(strstr(cgroup_root_controllers(root), "freezer"));

	/* A stale slot with a live process in it, left by a "crashed" sandboxd. */
	stale = create(NULL, "slot-stale");
	snprintf(mem, sizeof(mem), "%s", cgroup_controller_path(stale, "memory"));
	assert_non_null(strstr(mem, "/sys/fs/cgroup/memory/"));
	pid = spawn(sleeper, &go_fd);
	attach(stale, pid);
	go(go_fd);
	assert_true(in_group(pid, "memory", "slot-stale"));
	assert_true(in_group(pid, "freezer", "slot-stale"));
	/* A second open of the same root, as a restarted sandboxd would do:
	 * the sweep kills and removes the stale slot. */
	assert_int_equal(cgroup_root_open("/sys/fs/cgroup", root_name, "v1", &again, &err), 0);
	assert_true(WIFSIGNALED(wait_child(pid)));
	assert_false(dir_exists(mem));
	destroy_ok(stale); /* directories gone already: just frees */
	cgroup_root_close(root);
	root = again;
}

static void test_v1_limits(void **state)
{
	struct wp_error err = {0};
	struct cgroup *slot = create(NULL, "slot-1");
	struct cgroup *run = create(slot, "run");
	struct cgroup *init = create(slot, "init");
	char buf[128], p[4096];

	assert_int_equal(cgroup_set_memory(slot, 256 * MiB, &err), 0);
	read_text(cgroup_controller_path(slot, "memory"), "memory.limit_in_bytes", buf, sizeof(buf));
	assert_string_equal(buf, "268435456");
	assert_int_equal(cgroup_set_memory(run, 64 * MiB, &err), 0);
	read_text(cgroup_path(run), "memory.limit_in_bytes", buf, sizeof(buf));
	assert_string_equal(buf, "67108864");
	assert_int_equal(cgroup_set_memory(run, 0, &err), 0); /* unlimited again */
	read_text(cgroup_path(run), "memory.limit_in_bytes", buf, sizeof(buf));
	assert_true(strtoull(buf, NULL, 10) > (1ULL << 60));

	assert_int_equal(cgroup_set_pids(slot, 64, &err), 0);
	read_text(cgroup_controller_path(slot, "pids"), "pids.max", buf, sizeof(buf));
	assert_string_equal(buf, "64");
	assert_int_equal(cgroup_set_pids(run, 32, &err), 0);
	read_text(cgroup_controller_path(run, "pids"), "pids.max", buf, sizeof(buf));
	assert_string_equal(buf, "32");
	assert_int_equal(cgroup_set_pids(run, 0, &err), 0);
	read_text(cgroup_controller_path(run, "pids"), "pids.max", buf, sizeof(buf));
	assert_string_equal(buf, "max");

	assert_int_equal(cgroup_set_cpu_weight(run, 200, &err), 0);
	read_text(cgroup_controller_path(run, "cpu"), "cpu.shares", buf, sizeof(buf));
	assert_string_equal(buf, "2048");

	/* Errors name the file and the value. */
	assert_int_equal(rmdir(cgroup_path(init)), 0);
	assert_int_equal(cgroup_set_memory(init, 1 * MiB, &err), -ENOENT);
	snprintf(p, sizeof(p), "write `%s/memory.limit_in_bytes` = 1048576: ", cgroup_path(init));
	assert_non_null(strstr(err.msg, p));

	destroy_ok(init);
	destroy_ok(run);
	destroy_ok(slot);
}

/* One cgroup_kill_all blocks sandboxd's loop a few ms at most and says
 * -EAGAIN when processes remain; its callers retry from a timer: so do we. */
static int kill_all(struct cgroup *g)
{
	int r, tries = 0;
	while ((r = cgroup_kill_all(g)) == -EAGAIN && tries++ < 200)
		usleep(10 * 1000);
	return r;
}

static void test_v1_kill_sleeper(void **state)
{
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	int go_fd, st;
	pid_t pid = spawn(sleeper, &go_fd);

	attach(run, pid);
	go(go_fd);
	assert_true(in_group(pid, "memory", "slot-1/run"));
	assert_true(in_group(pid, "pids", "slot-1/run"));
	assert_false(cgroup_is_empty(run));
	assert_false(cgroup_is_empty(slot)); /* counts child groups */
	assert_int_equal(kill_all(slot), 0);
	st = wait_child(pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_true(cgroup_is_empty(run));
	destroy_ok(run);
	destroy_ok(slot);
}

/* cgroup_signal_all: one SIGKILL to every process of the tree (child
 * groups too), no freeze, no wait: what slot_destroy sends beside killing
 * init. */
static void signal_all_kills_the_tree(void)
{
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	int go_fd[2], st;
	pid_t pid[2] = {spawn(sleeper, &go_fd[0]), spawn(sleeper, &go_fd[1])};

	attach(run, pid[0]);
	attach(slot, pid[1]);
	go(go_fd[0]);
	go(go_fd[1]);
	cgroup_signal_all(slot);
	for (int i = 0; i < 2; i++) {
		int t = 0; /* bounded: a sleeper that was not killed fails, not hangs */
		while (waitpid(pid[i], &st, WNOHANG) == 0 && t++ < 500)
			usleep(10 * 1000);
		assert_true(t <= 500);
		untrack(pid[i]);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	assert_true(cgroup_is_empty(slot));
	destroy_ok(run);
	destroy_ok(slot);
}

static void test_v1_signal_all(void **state)
{
	char buf[64];

	signal_all_kills_the_tree();
	/* nothing was frozen on the way */
	struct cgroup *g = create(NULL, "slot-2");
	cgroup_signal_all(g); /* an empty group: nothing to do, no error */
	read_text(cgroup_controller_path(g, "freezer"), "freezer.state", buf, sizeof(buf));
	assert_string_equal(buf, "THAWED");
	destroy_ok(g);
}

static void test_v2_signal_all(void **state)
{
	signal_all_kills_the_tree();
}

static void test_v1_fork_bomb(void **state)
{
	struct wp_error err = {0};
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	struct cgroup_stats st;
	char buf[64];
	int go_fd;
	pid_t pid;

	assert_int_equal(cgroup_set_pids(run, 32, &err), 0);
	pid = spawn(fork_bomb, &go_fd);
	attach(run, pid);
	go(go_fd);
	usleep(300 * 1000);
	read_text(cgroup_controller_path(run, "pids"), "pids.current", buf, sizeof(buf));
	assert_true(atoi(buf) >= 16);
	assert_int_equal(kill_all(run), 0);
	assert_true(cgroup_is_empty(run));
	/* Zombies stay charged to pids.current until reaped (by us, the
	 * subreaper, here): the group is empty, the counter drains as we reap. */
	wait_child(pid);
	for (int i = 0; i < 200; i++) {
		reap_orphans();
		read_text(cgroup_controller_path(run, "pids"), "pids.current", buf, sizeof(buf));
		if (strcmp(buf, "0") == 0)
			break;
		usleep(5000);
	}
	assert_string_equal(buf, "0");
	assert_int_equal(cgroup_read_stats(run, &st), 0);
	assert_int_equal(st.pids_peak, 32);
	read_text(cgroup_controller_path(run, "freezer"), "freezer.state", buf, sizeof(buf));
	assert_string_equal(buf, "THAWED");
	destroy_ok(run);
	destroy_ok(slot);
}

static void test_v1_oom(void **state)
{
	struct wp_error err = {0};
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	struct cgroup_stats before, after;
	int go_fd, st;
	pid_t pid;

	assert_int_equal(cgroup_set_memory(run, 32 * MiB, &err), 0);
	assert_int_equal(cgroup_read_stats(run, &before), 0);
	cgroup_reset_peak(run);
	pid = spawn(hog_64m, &go_fd);
	attach(run, pid);
	go(go_fd);
	st = wait_child(pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(cgroup_read_stats(run, &after), 0);
	assert_true(after.oom_kills >= before.oom_kills + 1);
	assert_true(after.mem_peak > 16 * MiB && after.mem_peak <= 32 * MiB);
	destroy_ok(run);
	destroy_ok(slot);
}

static void test_v1_cpu(void **state)
{
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	struct cgroup_stats st;
	uint64_t ns = 1;
	int go_fd;
	pid_t pid;

	assert_int_equal(cgroup_read_cpu_ns(run, &ns), 0);
	assert_true(ns < 10 * 1000 * 1000);
	pid = spawn(busy_300ms, &go_fd);
	attach(run, pid);
	go(go_fd);
	assert_true(WIFEXITED(wait_child(pid)));
	assert_int_equal(cgroup_read_cpu_ns(run, &ns), 0); /* the cached fd, re-read */
	assert_true(ns >= 290ULL * 1000 * 1000);
	assert_int_equal(cgroup_read_stats(run, &st), 0);
	assert_true(st.cpu_ns >= ns);
	destroy_ok(run);
	destroy_ok(slot);
}

/* A child that is handed the fds joins the group itself, in every
 * hierarchy: through cgroup.procs (cgroup_open_procs) or, single-threaded,
 * through v1's tasks (cgroup_open_join). */
static void open_and_join(int (*open_fds)(struct cgroup *, int[8], struct wp_error *))
{
	struct wp_error err = {0};
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	const char *ctls[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};
	int p[2], go_fd, n = 0;
	pid_t pid;
	char c;

	assert_int_equal(open_fds(run, child_fds, &err), 0);
	while (child_fds[n] >= 0)
		n++;
	assert_true(n >= 3 && n <= 5);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	ready_fd = p[1];
	pid = spawn(child_join, &go_fd); /* not attached by us: it joins itself */
	go(go_fd);
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	for (int i = 0; child_fds[i] >= 0; i++)
		close(child_fds[i]);
	for (size_t i = 0; i < sizeof(ctls) / sizeof(ctls[0]); i++)
		assert_true(in_group(pid, ctls[i], "slot-1/run"));
	destroy_ok(run); /* kills the child */
	assert_true(WIFSIGNALED(wait_child(pid)));
	destroy_ok(slot);
}

static void test_v1_open_procs(void **state)
{
	open_and_join(cgroup_open_procs);
}

static void test_v1_open_join(void **state)
{
	open_and_join(cgroup_open_join);
}

static void test_v1_destroy_removes_all(void **state)
{
	struct cgroup *slot = create(NULL, "slot-1");
	struct cgroup *init = create(slot, "init"), *run = create(slot, "run");
	const char *ctls[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};
	char dirs[5][4096], sub[4200];
	pid_t a, b;
	int ga, gb;

	for (int i = 0; i < 5; i++) {
		assert_non_null(cgroup_controller_path(slot, ctls[i]));
		snprintf(dirs[i], sizeof(dirs[i]), "%s", cgroup_controller_path(slot, ctls[i]));
		assert_true(dir_exists(dirs[i]));
	}
	a = spawn(sleeper, &ga);
	b = spawn(fork_bomb, &gb);
	attach(init, a);
	assert_int_equal(cgroup_set_pids(run, 16, NULL), 0);
	attach(run, b);
	go(ga);
	go(gb);
	usleep(50 * 1000);
	/* The slot directly, with processes and subgroups in it. */
	destroy_ok(slot);
	for (int i = 0; i < 5; i++) {
		assert_false(dir_exists(dirs[i]));
		snprintf(sub, sizeof(sub), "%s/run", dirs[i]);
		assert_false(dir_exists(sub));
	}
	assert_true(WIFSIGNALED(wait_child(a)));
	assert_true(WIFSIGNALED(wait_child(b)));
	/* init and run were freed with the slot. */
}

/* Destroying walks the groups it made without listing directories; a
 * directory it did not make (here mkdir'd beside it, with a process in it)
 * makes the rmdir fail busy, and then the listing walk kills and removes
 * what is there: nothing is left either way. dirs: the slot's directory in
 * each hierarchy (co-mounted ones repeated). */
static void destroy_unknown_child(struct cgroup *slot, char dirs[][4096], int n)
{
	struct cgroup *run = create(slot, "run");
	char path[4300], val[24];
	int go_fd, fd;
	pid_t pid = spawn(sleeper, &go_fd);

	snprintf(val, sizeof(val), "%d", (int)pid);
	for (int i = 0; i < n; i++) {
		if (i > 0 && strcmp(dirs[i], dirs[i - 1]) == 0)
			continue; /* co-mounted: one directory */
		snprintf(path, sizeof(path), "%s/other", dirs[i]);
		assert_int_equal(mkdir(path, 0755), 0);
		snprintf(path, sizeof(path), "%s/other/cgroup.procs", dirs[i]);
		assert_true((fd = open(path, O_WRONLY | O_CLOEXEC)) >= 0);
		assert_true(write(fd, val, strlen(val)) > 0);
		close(fd);
	}
	go(go_fd);
	assert_true(cgroup_is_empty(run));
	destroy_ok(slot);
	for (int i = 0; i < n; i++)
		assert_false(dir_exists(dirs[i]));
	assert_true(WIFSIGNALED(wait_child(pid)));
}

static void test_v1_destroy_unknown_child(void **state)
{
	struct cgroup *slot = create(NULL, "slot-1");
	const char *ctls[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};
	char dirs[5][4096];

	for (int i = 0; i < 5; i++)
		snprintf(dirs[i], sizeof(dirs[i]), "%s", cgroup_controller_path(slot, ctls[i]));
	destroy_unknown_child(slot, dirs, 5);
}

static void test_v2_destroy_unknown_child(void **state)
{
	struct cgroup *slot = create(NULL, "slot-1");
	char dirs[1][4096];

	snprintf(dirs[0], sizeof(dirs[0]), "%s", cgroup_path(slot));
	destroy_unknown_child(slot, dirs, 1);
}

/* ---- detection --------------------------------------------------------- */

static void test_detect_errors(void **state)
{
	struct wp_error err = {0};
	struct cgroup_root *r = NULL;

	assert_int_equal(cgroup_root_open("/sys/fs/cgroup", "x", "v3", &r, &err), -EINVAL);
	assert_int_equal(cgroup_root_open("/nonexistent", "x", NULL, &r, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent"));
	assert_int_equal(cgroup_root_open("/sys/fs/cgroup", "a/b", NULL, &r, &err), -EINVAL);
	assert_int_equal(cgroup_root_open("/sys/fs/cgroup/unified", "x", "v1", &r, &err), -ENOENT);
	assert_null(r);
}

/* ---- v2 ---------------------------------------------------------------- */

static void test_v2_basic(void **state)
{
	struct wp_error err = {0};
	struct cgroup *slot, *run;
	char dir[4096], kill_file[4200];
	int go_fd, st;
	pid_t pid;

	assert_int_equal(cgroup_root_mode(root), CGROUP_V2);
	slot = create(NULL, "slot-1");
	run = create(slot, "run");
	snprintf(dir, sizeof(dir), "%s", cgroup_path(slot));
	assert_non_null(strstr(dir, "/sys/fs/cgroup/unified/"));
	assert_int_equal(cgroup_set_memory(run, 32 * MiB, &err), -EOPNOTSUPP);
	assert_int_equal(cgroup_set_pids(run, 32, &err), -EOPNOTSUPP);

	pid = spawn(sleeper, &go_fd);
	attach(run, pid);
	go(go_fd);
	assert_true(in_group(pid, "", "slot-1/run"));
	assert_false(cgroup_is_empty(slot));
	snprintf(kill_file, sizeof(kill_file), "%s/cgroup.kill", cgroup_path(run));
	assert_int_equal(access(kill_file, F_OK), 0); /* so cgroup.kill is what kills */
	assert_int_equal(kill_all(slot), 0);
	st = wait_child(pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_true(cgroup_is_empty(slot));
	destroy_ok(run);
	destroy_ok(slot);
	assert_false(dir_exists(dir));
}

/* v2 has no tasks file for domain groups: cgroup_open_join is cgroup.procs,
 * and a child handed the fd joins with it. */
static void test_v2_open_join(void **state)
{
	struct wp_error err = {0};
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	int p[2], go_fd;
	pid_t pid;
	char c;

	assert_int_equal(cgroup_open_join(run, child_fds, &err), 0);
	assert_true(child_fds[0] >= 0 && child_fds[1] == -1);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	ready_fd = p[1];
	pid = spawn(child_join, &go_fd);
	go(go_fd);
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	close(child_fds[0]);
	assert_true(in_group(pid, "", "slot-1/run"));
	destroy_ok(run); /* kills the child */
	assert_true(WIFSIGNALED(wait_child(pid)));
	destroy_ok(slot);
}

static void test_v2_kill_tree_and_cpu(void **state)
{
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	struct cgroup_stats st;
	uint64_t ns;
	int go_fd;
	pid_t pid;

	pid = spawn(ten_sleepers, &go_fd);
	attach(run, pid);
	go(go_fd);
	usleep(50 * 1000);
	assert_false(cgroup_is_empty(run));
	destroy_ok(run); /* kills all eleven, removes */
	assert_true(WIFSIGNALED(wait_child(pid)));

	run = create(slot, "run");
	pid = spawn(busy_300ms, &go_fd);
	attach(run, pid);
	go(go_fd);
	assert_true(WIFEXITED(wait_child(pid)));
	assert_int_equal(cgroup_read_cpu_ns(run, &ns), 0);
	assert_true(ns >= 290ULL * 1000 * 1000);
	assert_int_equal(cgroup_read_stats(run, &st), 0);
	assert_true(st.cpu_ns >= ns);
	assert_int_equal(st.oom_kills, 0);
	destroy_ok(run);
	destroy_ok(slot);
}

/* cgroup_cpu_wait_ns: a counter that grows while the group's processes
 * wait for a CPU. Three busy processes on at most two CPUs wait. On v2 it
 * is the group's own cpu.pressure; on v1 the host's /proc/pressure/cpu. */
static void cpu_wait_grows(void)
{
	struct cgroup *slot = create(NULL, "slot-1"), *run = create(slot, "run");
	uint64_t before, after;
	int go_fd[3];
	pid_t pid[3];

	assert_int_equal(cgroup_cpu_wait_ns(run, &before), 0);
	for (int i = 0; i < 3; i++) {
		pid[i] = spawn(busy_300ms, &go_fd[i]);
		attach(run, pid[i]);
	}
	for (int i = 0; i < 3; i++)
		go(go_fd[i]);
	for (int i = 0; i < 3; i++)
		assert_true(WIFEXITED(wait_child(pid[i])));
	assert_int_equal(cgroup_cpu_wait_ns(run, &after), 0);
	/* 900 ms of CPU on <= 2 CPUs: someone waited >= 150 ms; 10 ms is sure */
	assert_true(after >= before + 10ull * 1000 * 1000);
	destroy_ok(run);
	destroy_ok(slot);
}

static void test_v1_cpu_wait(void **state)
{
	cpu_wait_grows();
}

static void test_v2_cpu_wait(void **state)
{
	cpu_wait_grows();
}

/* Started in a non-root cgroup, sandboxd moves itself into <root>/sandboxd
 * and back out on removal. In a child: it moves the calling process. */
static int leaf_child(const char *outer_rel)
{
	struct wp_error err = {0};
	struct cgroup_root *r = NULL;
	char want[512], line[512];
	FILE *f;

	if (open_root("/sys/fs/cgroup/unified", "v2") < 0)
		return 10;
	r = root;
	snprintf(want, sizeof(want), "0::/%s/%s/sandboxd\n", outer_rel, root_name);
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f) && strncmp(line, "0::", 3) != 0)
		;
	if (f)
		fclose(f);
	if (strcmp(line, want) != 0) {
		fprintf(stderr, "in %s, want %s", line, want);
		return 11;
	}
	if (cgroup_root_remove(r, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 12;
	}
	snprintf(want, sizeof(want), "0::/%s\n", outer_rel);
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f) && strncmp(line, "0::", 3) != 0)
		;
	if (f)
		fclose(f);
	return strcmp(line, want) == 0 ? 0 : 13;
}

static void test_v2_daemon_leaf(void **state)
{
	char outer[256], rel[64], procs[300];
	pid_t pid;
	int st, fd;

	snprintf(rel, sizeof(rel), "wp-unit-%d-outer", (int)getpid());
	snprintf(outer, sizeof(outer), "/sys/fs/cgroup/unified/%s", rel);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", outer);
	assert_int_equal(mkdir(outer, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(9);
		close(fd);
		_exit(leaf_child(rel));
	}
	st = wait_child(pid);
	assert_int_equal(rmdir(outer), 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_detect_errors),
	    cmocka_unit_test_setup_teardown(test_v1_detect_and_sweep, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_limits, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_kill_sleeper, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_signal_all, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_fork_bomb, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_oom, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_cpu, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_open_procs, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_open_join, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_cpu_wait, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_destroy_removes_all, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v1_destroy_unknown_child, setup_v1, teardown),
	    cmocka_unit_test_setup_teardown(test_v2_basic, setup_v2, teardown),
	    cmocka_unit_test_setup_teardown(test_v2_open_join, setup_v2, teardown),
	    cmocka_unit_test_setup_teardown(test_v2_signal_all, setup_v2, teardown),
	    cmocka_unit_test_setup_teardown(test_v2_kill_tree_and_cpu, setup_v2, teardown),
	    cmocka_unit_test_setup_teardown(test_v2_cpu_wait, setup_v2, teardown),
	    cmocka_unit_test_setup_teardown(test_v2_destroy_unknown_child, setup_v2, teardown),
	    cmocka_unit_test(test_v2_daemon_leaf),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_cgroup: SKIPPED: needs root to create cgroups\n");
		return 0;
	}
	if (access("/sys/fs/cgroup/memory/cgroup.procs", F_OK) != 0 ||
	    access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) != 0) {
		fprintf(stderr, "test_cgroup: SKIPPED: needs the v1 hybrid layout "
				"(/sys/fs/cgroup/memory and /sys/fs/cgroup/unified)\n");
		return 0;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
