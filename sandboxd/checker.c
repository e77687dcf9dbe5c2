/* checker.c — see checker.h.
 *
 * Theory of operation. A checker never runs as one of the slot's processes:
 * sandboxd forks a launcher (root, outside the slot) for each checker
 * process, the checker's build or one check. The launcher
 *
 *   1. joins the slot's mount namespace and at once leaves it for a private
 *      copy (and a new IPC namespace), where it mounts a fresh tmpfs on /tmp
 *      (the checker's HOME and TMPDIR) and another on /mnt/data (the
 *      checker's working directory): none of the submission's files, and
 *      nothing the checker has is visible to the slot;
 *   2. writes the checker's files there — for a build its source, in a
 *      directory the checker's uid owns (the compiler writes beside it), and
 *      hands sandboxd a descriptor of it to read the artifacts back; for a
 *      check the artifacts and `input`, `output`, `answer`, all owned by root
 *      and read-only to the checker;
 *   3. joins the slot's pid, network, UTS and cgroup namespaces and forks the
 *      checker, which moves itself into the run cgroup it is given, becomes
 *      the slot's *checker uid* (uid_base + capacity + the slot's index, never
 *      a slot's uid), takes no_new_privs and the slot's seccomp filter, and
 *      execs with a clean environment (launch.c);
 *   4. tells sandboxd over a SOCK_SEQPACKET pair what init tells it about a
 *      run (PROTO_STARTED, PROTO_FAILED, PROTO_EXITED with the wait status
 *      and rusage), so run.c measures and judges the checker as any run.
 *
 * A process the slot left behind (an interpreter session's background job)
 * has another uid than the checker: it cannot signal it, ptrace it (seccomp
 * forbids it anyway), open its /proc/<pid>/mem, cwd, root or fds, nor reach
 * its files, which live in a mount namespace of its own. */
#include "checker.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "files.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "run.h"
#include "settings.h"
#include "slot_init.h"

#define MAX_ARTIFACTS	   32
#define MAX_ARTIFACT_BYTES (64u << 20)
#define MAX_SOURCE	   (1u << 20)
#define CHECKER_DIR	   "/mnt/data"

struct artifact {
	char *name;
	char *data;
	size_t len;
};

enum checker_mode { CK_NONE, CK_BUILD, CK_CHECK };

struct checker {
	const struct language *lang;
	char *source;
	size_t source_len;
	struct artifact files[MAX_ARTIFACTS];
	size_t n_files;
	enum checker_mode mode;
	struct artifact stage[3]; /* input, output, answer of the check being staged */
	struct slot *slot;	  /* of the launcher in flight */
	int pidfd;		  /* of the launcher: signals it without the risk of a reused pid */
	int sock;		  /* our end of the launcher's socket, -1 when none */
	int build_dfd;		  /* the build's directory, handed over by the launcher */
	ev_io io;
};

static struct language **langs;
static size_t n_langs;

void checker_set_languages(struct language **ls, size_t n)
{
	langs = ls;
	n_langs = n;
}

int checker_parse(const json_t *spec, struct checker **out, struct wp_error *err)
{
	static const char *const keys[] = {"language", "source", NULL};
	const char *lang = NULL, *src = NULL;
	struct checker *c;
	int r;

	if (!json_is_object(spec))
		return wp_error_set(err, EINVAL,
				    "checker: an object {\"language\", \"source\"} is required with "
				    "compare.mode checker");
	if ((r = json_check_keys(spec, keys, err)) < 0 ||
	    (r = json_get_string(spec, "language", true, &lang, err)) < 0 ||
	    (r = json_get_string(spec, "source", true, &src, err)) < 0) {
		wp_error_prefix(err, "checker");
		return r;
	}
	size_t len = json_string_length(json_object_get(spec, "source"));
	if (len > MAX_SOURCE)
		return wp_error_set(err, EINVAL, "checker.source: larger than %u bytes", MAX_SOURCE);
	struct language *l = language_find(langs, n_langs, lang);
	if (!l || !l->available)
		return wp_error_set(err, EINVAL, "checker.language: `%s` is not available on this node", lang);
	if (!(c = calloc(1, sizeof(*c))) || !(c->source = malloc(len + 1))) {
		free(c);
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	memcpy(c->source, src, len + 1);
	c->source_len = len;
	c->lang = l;
	c->sock = c->build_dfd = c->pidfd = -1;
	*out = c;
	return 0;
}

static void stage_free(struct checker *c)
{
	for (int i = 0; i < 3; i++) {
		free(c->stage[i].data);
		c->stage[i].data = NULL;
		c->stage[i].len = 0;
	}
}

/* Stop listening to the launcher and make sure it is gone. */
static void launcher_forget(struct checker *c)
{
	if (c->sock >= 0) {
		ev_io_stop(EV_DEFAULT, &c->io);
		close(c->sock);
		c->sock = -1;
	}
	if (c->pidfd >= 0) {
		/* still waiting for the checker: it goes (libev's SIGCHLD handler reaps it) */
		syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
		close(c->pidfd);
		c->pidfd = -1;
	}
}

void checker_free(struct checker *c)
{
	if (!c)
		return;
	launcher_forget(c);
	cleanup_closep(&c->build_dfd);
	for (size_t i = 0; i < c->n_files; i++) {
		free(c->files[i].name);
		free(c->files[i].data);
	}
	stage_free(c);
	free(c->source);
	free(c);
}

const struct language *checker_language(const struct checker *c)
{
	return c->lang;
}

uid_t checker_uid(const struct slot *s)
{
	return (uid_t)(sandboxd_settings->uid_base + sandboxd_settings->capacity + s->idx);
}

int checker_build_dir(struct checker *c, struct slot *s, const char **cwd, struct wp_error *err)
{
	(void)s;
	(void)err;
	c->mode = CK_BUILD;
	*cwd = CHECKER_DIR;
	return 0;
}

static int copy_in(struct artifact *a, const char *p, size_t n)
{
	if (!(a->data = malloc(n + 1)))
		return -ENOMEM;
	memcpy(a->data, p, n);
	a->data[n] = '\0';
	a->len = n;
	return 0;
}

int checker_collect(struct checker *c, struct slot *s, struct wp_error *err)
{
	int dfd = c->build_dfd >= 0 ? fcntl(c->build_dfd, F_DUPFD_CLOEXEC, 3) : -1;
	cleanup_dir DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	size_t total = 0;
	struct dirent *de;
	int r = 0;

	if (!d && c->build_dfd < 0 && !c->lang->compile_argv) {
		/* an interpreted checker: its source is all it needs */
		struct artifact *a = &c->files[0];
		checker_unstage(c, s);
		if (!(a->name = strdup(c->lang->source)) || copy_in(a, c->source, c->source_len) < 0) {
			free(a->name);
			a->name = NULL;
			return wp_error_set(err, ENOMEM, "out of memory");
		}
		c->n_files = 1;
		return 0;
	}
	if (!d) {
		cleanup_closep(&dfd);
		checker_unstage(c, s);
		return wp_error_set(err, EIO, "the checker's build directory is gone");
	}
	while ((de = readdir(d)) && r == 0) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (c->n_files == MAX_ARTIFACTS || total + (size_t)st.st_size > MAX_ARTIFACT_BYTES) {
			r = wp_error_set(err, EFBIG, "the checker's build left more than %d files or %u bytes",
					 MAX_ARTIFACTS, MAX_ARTIFACT_BYTES);
			break;
		}
		struct artifact *a = &c->files[c->n_files];
		if (files_read_at(s, dirfd(d), de->d_name, MAX_ARTIFACT_BYTES, &a->data, &a->len, err) < 0) {
			r = -EIO;
			break;
		}
		if (!(a->name = strdup(de->d_name))) {
			free(a->data);
			r = wp_error_set(err, ENOMEM, "out of memory");
			break;
		}
		total += a->len;
		c->n_files++;
	}
	checker_unstage(c, s);
	return r;
}

int checker_stage(struct checker *c, struct slot *s, const char *in, size_t in_len, const char *out, size_t out_len,
		  const char *ans, size_t ans_len, const char **cwd, struct wp_error *err)
{
	(void)s;
	stage_free(c);
	if (copy_in(&c->stage[0], in, in_len) < 0 || copy_in(&c->stage[1], out, out_len) < 0 ||
	    copy_in(&c->stage[2], ans, ans_len) < 0) {
		stage_free(c);
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	c->mode = CK_CHECK;
	*cwd = CHECKER_DIR;
	return 0;
}

void checker_unstage(struct checker *c, struct slot *s)
{
	(void)s;
	if (!c)
		return;
	launcher_forget(c);
	cleanup_closep(&c->build_dfd);
	c->build_dfd = -1;
	stage_free(c);
	c->mode = CK_NONE;
}

enum verdict checker_verdict(const struct run_outcome *o)
{
	if (o->internal_error)
		return VERDICT_INTERNAL_ERROR;
	if (o->exited && o->exit_code == 0)
		return VERDICT_ACCEPTED;
	if (o->exited && (o->exit_code == 1 || o->exit_code == 2))
		return VERDICT_WRONG_ANSWER;
	return VERDICT_INTERNAL_ERROR; /* the checker crashed, timed out or said "fail" */
}

/* ---- the launcher (a child of sandboxd; nothing here returns to the loop) ---- */

static int report(int sock, const void *m, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static _Noreturn void launcher_fail(int sock, int e, const char *where)
{
	struct proto_failed m = {.hdr.type = PROTO_FAILED, .group = PROTO_GROUP_NONE, .err = e};
	snprintf(m.where, sizeof(m.where), "checker: %s", where);
	report(sock, &m, sizeof(m), -1);
	_exit(1);
}

static int write_file(int dfd, const char *name, const struct artifact *a, mode_t mode, uid_t owner)
{
	cleanup_close int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < a->len;) {
		ssize_t n = write(fd, a->data + off, a->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fchown(fd, owner, owner) < 0)
		return -errno;
	return 0;
}

/* The checker's private world: the slot's mounts, a fresh /tmp and a fresh
 * /mnt/data holding its files. Returns an O_DIRECTORY fd on /mnt/data. */
static int launcher_mounts(struct checker *c, const struct settings *cfg, uid_t uid, const char **where)
{
	char opts[96];
	int dfd, r;

	*where = "private mount namespace";
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	*where = "mount /tmp";
	snprintf(opts, sizeof(opts), "size=%llu,mode=1777", (unsigned long long)cfg->tmp_size);
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	*where = "mount /mnt/data";
	snprintf(opts, sizeof(opts), "size=%llu,mode=%s", (unsigned long long)cfg->data_size,
		 c->mode == CK_BUILD ? "0700" : "0755");
	if (mount("tmpfs", CHECKER_DIR, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	if ((dfd = open(CHECKER_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	*where = "write the checker's files";
	if (c->mode == CK_BUILD) {
		struct artifact src = {.data = c->source, .len = c->source_len};
		if (fchown(dfd, uid, uid) < 0)
			return -errno;
		if ((r = write_file(dfd, c->lang->source, &src, 0644, uid)) < 0)
			return r;
		return dfd;
	}
	/* compiled artifacts run; sources are read: both fine as 0755 */
	for (size_t i = 0; i < c->n_files; i++)
		if ((r = write_file(dfd, c->files[i].name, &c->files[i], 0755, 0)) < 0)
			return r;
	static const char *const names[] = {"input", "output", "answer"};
	for (int i = 0; i < 3; i++)
		if ((r = write_file(dfd, names[i], &c->stage[i], 0644, 0)) < 0)
			return r;
	return dfd;
}

/* The checker itself, in the slot's pid namespace: its cgroup, uid,
 * filter, limits, fds; then exec. An errno goes to errfd on failure. */
static _Noreturn void checker_exec(char *msg, size_t len, const int *fds, const int *procs, uid_t uid, int errfd)
{
	struct proto_run *m = (struct proto_run *)msg;
	char *argv[257], *envp[257], *p = m->strings, *end = msg + len;
	struct wp_error err = {0};
	struct rlimit rl;
	sigset_t none;
	int high[3], e;

	for (uint32_t i = 0; i < m->argc; i++, p += strlen(p) + 1)
		argv[i] = p;
	argv[m->argc] = NULL;
	for (uint32_t i = 0; i < m->envc; i++, p += strlen(p) + 1)
		envp[i] = p;
	envp[m->envc] = NULL;
	if (p >= end) {
		errno = EINVAL;
		goto fail;
	}
	for (int i = 0; procs[i] >= 0; i++)
		if (write(procs[i], "0", 1) != 1)
			goto fail;
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		goto fail;
	if (seccomp_setup(&err) < 0) {
		errno = err.code ? err.code : EPERM;
		goto fail;
	}
	for (int i = 0; i < 3; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 16)) < 0)
			goto fail;
	for (int i = 0; i < 3; i++)
		if (dup2(high[i], i) < 0)
			goto fail;
	rl.rlim_cur = m->rlim_cpu_s;
	rl.rlim_max = m->rlim_cpu_s == RLIM_INFINITY ? RLIM_INFINITY : m->rlim_cpu_s + 1;
	if (setrlimit(RLIMIT_CPU, &rl) < 0)
		goto fail;
	rl.rlim_cur = rl.rlim_max = m->rlim_fsize;
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		goto fail;
	rl.rlim_cur = rl.rlim_max = m->rlim_stack;
	if (setrlimit(RLIMIT_STACK, &rl) < 0)
		goto fail;
	rl.rlim_cur = rl.rlim_max = m->rlim_nofile;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		goto fail;
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		goto fail;
	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir(p) < 0)
		goto fail;
	execve(argv[0], argv, envp);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static int int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Close every fd above 2 but those of keep[] (which it sorts). */
static void close_all_but(int *keep, int n)
{
	unsigned from = 3;
	qsort(keep, (size_t)n, sizeof(*keep), int_cmp);
	for (int i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned)keep[i] > from)
			syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0u, 0);
}

static const char *const ns_names[] = {"net", "uts", "cgroup", "pid"};
static const int ns_types[] = {CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWPID};

static _Noreturn void launcher_main(struct checker *c, struct slot *s, int sock, char *msg, size_t len, const int *fds,
				    const int *procs)
{
	const struct settings *cfg = sandboxd_settings;
	uid_t uid = checker_uid(s);
	int ns[4], mnt, errp[2], e = 0, dfd;
	const char *where;
	char path[64];
	struct rusage ru;
	pid_t pid;
	ssize_t n;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() == 1)
		_exit(1);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	/* nothing of sandboxd's (other slots' sockets and pipes, clients'
	 * connections) stays open here, nor reaches the checker */
	int keep[12], nk = 0;
	keep[nk++] = sock;
	for (int i = 0; i < 3; i++)
		keep[nk++] = fds[i];
	for (int i = 0; i < 8 && procs[i] >= 0; i++)
		keep[nk++] = procs[i];
	close_all_but(keep, nk);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)s->init_pid);
	if ((mnt = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		launcher_fail(sock, errno, "open the slot's namespaces");
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)s->init_pid, ns_names[i]);
		if ((ns[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			launcher_fail(sock, errno, "open the slot's namespaces");
	}
	if (setns(mnt, CLONE_NEWNS) < 0)
		launcher_fail(sock, errno, "join the slot's mount namespace");
	if ((dfd = launcher_mounts(c, cfg, uid, &where)) < 0)
		launcher_fail(sock, -dfd, where);
	for (int i = 0; i < 4; i++)
		if (setns(ns[i], ns_types[i]) < 0)
			launcher_fail(sock, errno, ns_names[i]);
	if (pipe2(errp, O_CLOEXEC) < 0)
		launcher_fail(sock, errno, "pipe");
	if ((pid = fork()) < 0)
		launcher_fail(sock, errno, "fork");
	if (pid == 0) {
		close(errp[0]);
		checker_exec(msg, len, fds, procs, uid, errp[1]);
	}
	close(errp[1]);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	do
		n = read(errp[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(e)) {
		waitpid(pid, NULL, 0);
		launcher_fail(sock, e, c->lang->name);
	}
	struct proto_started st = {.hdr.type = PROTO_STARTED, .group = PROTO_GROUP_NONE, .pid = pid};
	report(sock, &st, sizeof(st), c->mode == CK_BUILD ? dfd : -1);
	int status;
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			launcher_fail(sock, errno, "wait");
	struct proto_exited x = {
	    .hdr.type = PROTO_EXITED,
	    .group = PROTO_GROUP_NONE,
	    .status = status,
	    .maxrss_kb = ru.ru_maxrss,
	    .utime_us = ru.ru_utime.tv_sec * 1000000ll + ru.ru_utime.tv_usec,
	    .stime_us = ru.ru_stime.tv_sec * 1000000ll + ru.ru_stime.tv_usec,
	};
	report(sock, &x, sizeof(x), -1);
	_exit(0);
}

/* ---- sandboxd's side ---- */

static void launcher_gone(struct checker *c)
{
	ev_io_stop(EV_DEFAULT, &c->io);
	close(c->sock);
	c->sock = -1;
	cleanup_closep(&c->pidfd);
	c->pidfd = -1;
}

/* One message per call (the watcher is level-triggered): run_on_message may
 * end the run and free the checker, so nothing of it is touched after. */
static void launcher_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct checker *c = w->data;
	struct slot *s = c->slot;
	char buf[256], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(c->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int))) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
			cleanup_closep(&c->build_dfd);
			c->build_dfd = fd;
		}
	}
	uint32_t type = n >= (ssize_t)sizeof(struct proto_hdr) ? ((struct proto_hdr *)buf)->type : 0;
	if (n <= 0 || type == PROTO_EXITED || type == PROTO_FAILED) {
		/* the launcher is done (it exits now) or died without a word */
		bool said = n > 0;
		launcher_gone(c);
		if (!said) {
			struct proto_failed f = {.hdr.type = PROTO_FAILED, .group = PROTO_GROUP_NONE, .err = EIO};
			snprintf(f.where, sizeof(f.where), "checker: its launcher died");
			run_on_message(s, &f, sizeof(f));
			return;
		}
	}
	run_on_message(s, buf, (size_t)n);
}

int checker_launch(struct checker *c, struct slot *s, struct cgroup *cg, char *msg, size_t len, const int fds[3],
		   struct wp_error *err)
{
	int sp[2], procs[8];
	pid_t pid;
	int r;

	if (c->mode == CK_NONE)
		return wp_error_set(err, EINVAL, "checker: nothing staged");
	launcher_forget(c);
	if ((r = cgroup_open_join(cg, procs, err)) < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		r = wp_error_errno(err, "socketpair");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = wp_error_errno(err, "fork the checker's launcher");
		close(sp[0]);
		close(sp[1]);
		goto out;
	}
	if (pid == 0) {
		close(sp[0]);
		launcher_main(c, s, sp[1], msg, len, fds, procs);
	}
	close(sp[1]);
	c->slot = s;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	c->sock = sp[0];
	ev_io_init(&c->io, launcher_cb, c->sock, EV_READ);
	c->io.data = c;
	ev_io_start(EV_DEFAULT, &c->io);
	r = 0;
out:
	for (int i = 0; i < 8 && procs[i] >= 0; i++)
		close(procs[i]);
	return r;
}
