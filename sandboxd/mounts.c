/* mounts.c — the slot's filesystem, built inside its own mount namespace:
 *
 *   /                 tmpfs, read-only once built
 *   /usr /lib* /bin…  read-only, nosuid, nodev binds of the host's runtimes
 *   /etc              generated passwd, group, hosts, nsswitch.conf; the
 *                     host's ld.so.cache; nothing else of the host's /etc
 *   <language paths>  read-only binds the language file lists
 *   /opt/warmpool     read-only bind of the tmpfs copy of sandboxd's runtimes
 *                     dir (the interpreter drivers, sandboxd/runtimes/) made
 *                     at start (mounts_runtimes_copy): a bind of the dir
 *                     itself would name the host's path in
 *                     /proc/self/mountinfo; one copy per host shares its
 *                     pages (the JVM's class archive) between slots
 *   /tmp              private tmpfs (tmp_size), /dev/shm private tmpfs (shm_size)
 *   /mnt/data         the work dir: a tmpfs sandboxd made as a detached mount
 *                     (it keeps a dir fd on it for the files API), attached
 *                     here only
 *   /dev              null zero full random urandom, fd/std* symlinks
 *   /proc             this pid namespace's own; /proc/cmdline, kcore, keys,
 *                     timer_list… masked with /dev/null, /proc/scsi, acpi…
 *                     with an empty read-only tmpfs (runc's list)
 *
 * Every mount is nosuid and nodev; only /mnt/data and /tmp allow exec of
 * files the program wrote (compiled binaries run from /mnt/data). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "slot_init.h"

/* The host paths every slot sees, before the language's own. */
static const char *const base_paths[] = {
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/localtime"};
/* The runtimes dir: small scripts and the compile server's class archive
 * (~11 MB); its tmpfs copy holds at most this. */
#define RUNTIMES_MAX (64 << 20)
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom"};

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int write_file(const char *path, const char *content, struct wp_error *err)
{
	cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	size_t len = strlen(content);

	if (fd < 0 || write(fd, content, len) != (ssize_t)len)
		return wp_error_errno(err, "write `%s`", path);
	return 0;
}

/* Bind host path `src` at root/at read-only. A symlink is recreated as a
 * symlink (Debian's /bin → usr/bin); a missing path is skipped. */
static int bind_ro_at(const char *root, const char *src, const char *at, struct wp_error *err)
{
	char dst[4096], target[4096];
	struct stat st;
	ssize_t n;
	int r;

	if (lstat(src, &st) < 0)
		return 0;
	if (snprintf(dst, sizeof(dst), "%s%s", root, at) >= (int)sizeof(dst))
		return wp_error_set(err, ENAMETOOLONG, "path too long: `%s`", at);
	if (S_ISLNK(st.st_mode)) {
		n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			return wp_error_errno(err, "readlink `%s`", src);
		target[n] = '\0';
		char *slash = strrchr(dst, '/');
		*slash = '\0';
		r = mkdir_p(dst, 0755);
		*slash = '/';
		if (r < 0 || (symlink(target, dst) < 0 && errno != EEXIST))
			return wp_error_errno(err, "symlink `%s`", dst);
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if ((r = mkdir_p(dst, 0755)) < 0)
			return wp_error_set(err, -r, "mkdir `%s`: %s", dst, strerror(-r));
	} else {
		char *slash = strrchr(dst, '/');
		*slash = '\0';
		r = mkdir_p(dst, 0755);
		*slash = '/';
		cleanup_close int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (r < 0 || fd < 0)
			return wp_error_errno(err, "create `%s`", dst);
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return wp_error_errno(err, "bind `%s`", src);
	if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return wp_error_errno(err, "remount read-only `%s`", dst);
	return 0;
}

static int bind_ro(const char *root, const char *src, struct wp_error *err)
{
	return bind_ro_at(root, src, src, err);
}

static int mount_tmpfs(const char *dst, uint64_t size, const char *mode, unsigned long flags, struct wp_error *err)
{
	char opts[128];
	snprintf(opts, sizeof(opts), "size=%llu,mode=%s", (unsigned long long)size, mode);
	if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV | flags, opts) < 0)
		return wp_error_errno(err, "mount tmpfs on `%s`", dst);
	return 0;
}

/* The runtimes dir (sandboxd's interpreter drivers) lives in the checkout
 * or install tree: a bind of it would show that host path in the slot's
 * /proc/self/mountinfo. sandboxd copies its regular files, once, into a
 * tmpfs of its own (<state_dir>/runtimes, read-only), and slots bind that:
 * their mountinfo shows "/" of a tmpfs, and every slot maps the same pages. */
int mounts_runtimes_copy(const char *state_dir, const char *src, char **out, struct wp_error *err)
{
	cleanup_free char *dst = NULL;
	cleanup_dir DIR *d = opendir(src);
	struct dirent *de;
	int r;

	*out = NULL;
	if (!d)
		return wp_error_errno(err, "open the runtimes dir `%s`", src);
	if (asprintf(&dst, "%s/runtimes", state_dir) < 0) {
		dst = NULL;
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		return wp_error_errno(err, "mkdir `%s`", dst);
	if ((r = mount_tmpfs(dst, RUNTIMES_MAX, "0755", 0, err)) < 0)
		return r;
	cleanup_close int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return wp_error_errno(err, "open `%s`", dst);
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		cleanup_close int in = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
			continue; /* only regular files: the drivers are flat */
		cleanup_close int fd =
		    openat(dfd, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0755);
		if (fd < 0)
			return wp_error_errno(err, "create `%s/%s`", dst, de->d_name);
		for (off_t left = st.st_size; left > 0;) {
			ssize_t n = sendfile(fd, in, NULL, (size_t)left);
			if (n <= 0)
				return wp_error_errno(err, "copy `%s/%s` (is the dir over %d bytes?)", src, de->d_name,
						      RUNTIMES_MAX);
			left -= n;
		}
	}
	if (mount(NULL, dst, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return wp_error_errno(err, "remount `%s` read-only", dst);
	*out = dst;
	dst = NULL;
	return 0;
}

/* What runc masks: files that tell about the host (its boot command line,
 * kernel memory, keys, timers, scheduler) read as empty, directories of host
 * devices as empty read-only tmpfs. Only what exists is masked. */
static int mask_proc(struct wp_error *err)
{
	static const char *const files[] = {
	    "/proc/cmdline",	 "/proc/kcore",	      "/proc/keys",	     "/proc/latency_stats", "/proc/timer_list",
	    "/proc/timer_stats", "/proc/sched_debug", "/proc/sysrq-trigger", "/proc/kallsyms",	    "/proc/config.gz"};
	static const char *const dirs[] = {"/proc/acpi", "/proc/asound", "/proc/scsi"};
	struct stat st;

	/* not nodev: /dev/null is a device node; read-only, so it opens for
	 * reading only */
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (lstat(files[i], &st) < 0)
			continue;
		if (mount("/dev/null", files[i], NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, files[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
			return wp_error_errno(err, "mask `%s`", files[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (lstat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (mount("tmpfs", dirs[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=4k,mode=0555") < 0)
			return wp_error_errno(err, "mask `%s`", dirs[i]);
	}
	return 0;
}

static int setup_etc(const char *root, const struct slot_init_args *a, struct wp_error *err)
{
	char path[4096], buf[512];
	int r;

	snprintf(path, sizeof(path), "%s/etc", root);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return wp_error_errno(err, "mkdir `%s`", path);
	snprintf(buf, sizeof(buf),
		 "root:x:0:0:root:/:/usr/sbin/nologin\nrunner:x:%u:%u:warmpool:/tmp:/usr/sbin/nologin\n"
		 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		 (unsigned)a->uid, (unsigned)a->gid);
	snprintf(path, sizeof(path), "%s/etc/passwd", root);
	if ((r = write_file(path, buf, err)) < 0)
		return r;
	snprintf(buf, sizeof(buf), "root:x:0:\nrunner:x:%u:\nnogroup:x:65534:\n", (unsigned)a->gid);
	snprintf(path, sizeof(path), "%s/etc/group", root);
	if ((r = write_file(path, buf, err)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/etc/hosts", root);
	if ((r = write_file(path, "127.0.0.1 localhost\n::1 localhost\n", err)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/etc/nsswitch.conf", root);
	return write_file(path, "passwd: files\ngroup: files\nhosts: files\n", err);
}

static int setup_dev(const char *root, const struct slot_init_args *a, struct wp_error *err)
{
	char dev[4096], node[4096], src[64];
	int r;

	snprintf(dev, sizeof(dev), "%s/dev", root);
	if (mkdir(dev, 0755) < 0 || (r = mount_tmpfs(dev, 64 << 10, "0755", MS_NOEXEC, err)) < 0)
		return errno ? wp_error_errno(err, "/dev") : -EIO;
	for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
		snprintf(node, sizeof(node), "%s/%s", dev, dev_nodes[i]);
		snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
		cleanup_close int fd = open(node, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0 || mount(src, node, NULL, MS_BIND, NULL) < 0)
			return wp_error_errno(err, "bind `%s`", src);
	}
	static const char *const links[][2] = {{"/proc/self/fd", "fd"},
					       {"/proc/self/fd/0", "stdin"},
					       {"/proc/self/fd/1", "stdout"},
					       {"/proc/self/fd/2", "stderr"}};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		snprintf(node, sizeof(node), "%s/%s", dev, links[i][1]);
		if (symlink(links[i][0], node) < 0)
			return wp_error_errno(err, "symlink `%s`", node);
	}
	snprintf(node, sizeof(node), "%s/shm", dev);
	if (mkdir(node, 01777) < 0)
		return wp_error_errno(err, "mkdir `%s`", node);
	if ((r = mount_tmpfs(node, a->shm_size, "1777", MS_NOEXEC, err)) < 0)
		return r;
	/* /dev itself read-only: nothing can be created next to the nodes */
	if (mount(NULL, dev, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=65536,mode=0755") <
	    0)
		return wp_error_errno(err, "remount `%s` read-only", dev);
	return 0;
}

int mounts_setup_root(const struct slot_init_args *a, struct wp_error *err)
{
	char root[4096], path[4096];
	int r;

	/* nothing we mount may propagate back to sandboxd's namespace */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return wp_error_errno(err, "make / private");
	snprintf(root, sizeof(root), "%s/root", a->slot_dir);
	if ((r = mount_tmpfs(root, 4 << 20, "0755", 0, err)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(base_paths); i++)
		if ((r = bind_ro(root, base_paths[i], err)) < 0)
			return r;
	for (char *const *p = a->paths; p && *p; p++)
		if ((r = bind_ro(root, *p, err)) < 0)
			return r;
	if (a->runtimes && (r = bind_ro_at(root, a->runtimes, "/opt/warmpool", err)) < 0)
		return r;
	if (a->pch_dir && (r = bind_ro_at(root, a->pch_dir, "/opt/warmpool-pch", err)) < 0)
		return r;
	if ((r = setup_etc(root, a, err)) < 0 || (r = setup_dev(root, a, err)) < 0)
		return r;

	snprintf(path, sizeof(path), "%s/tmp", root);
	if (mkdir(path, 01777) < 0 || (r = mount_tmpfs(path, a->tmp_size, "1777", 0, err)) < 0)
		return errno ? wp_error_errno(err, "/tmp") : r;
	snprintf(path, sizeof(path), "%s/mnt/data", root);
	if ((r = mkdir_p(path, 0755)) < 0)
		return wp_error_set(err, -r, "mkdir `%s`", path);
	/* the work dir: sandboxd's detached tmpfs (slot.c), nosuid and nodev */
	if (move_mount(a->data_mnt_fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return wp_error_errno(err, "attach the work dir on `%s`", path);
	snprintf(path, sizeof(path), "%s/proc", root);
	if (mkdir(path, 0555) < 0)
		return wp_error_errno(err, "mkdir `%s`", path);

	/* pivot_root(".", "."): the old root ends up stacked under the new
	 * one and is detached right away (runc's trick, no temp dir needed). */
	if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		return wp_error_errno(err, "pivot_root into `%s`", root);
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return wp_error_errno(err, "detach the old root");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return wp_error_errno(err, "mount /proc");
	if ((r = mask_proc(err)) < 0)
		return r;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4194304,mode=0755") < 0)
		return wp_error_errno(err, "remount / read-only");
	return 0;
}
