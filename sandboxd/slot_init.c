/* slot_init.c — inside a slot.
 *
 * Theory of operation. sandboxd clone()s us into a new pid namespace only
 * (the other namespaces cost sandboxd's loop nothing when we make them). As
 * root, still, we move ourselves into the slot's init cgroup (through
 * cgroup.procs fds sandboxd opened), unshare new mount, network, ipc, uts and
 * cgroup namespaces, then set the slot up in this order (slot_init_main):
 * root filesystem (the /mnt/data tmpfs sandboxd made detached is attached
 * here only), hostname, fds (only the control socket and the cgroup.procs
 * fds kept), credentials (bounding set emptied, uid/gid, then no_new_privs
 * and not dumpable), seccomp; then we say READY and pre-fork the first run's
 * stub. From then on we are pid 1 of the slot, running
 * as the slot's uid with no capabilities, and serve sandboxd over a
 * SOCK_SEQPACKET pair: PROTO_RUN → a child in one of the two run cgroups
 * (moved there through cgroup.procs fds opened by root, and pre-forked
 * between runs: see stub_spawn) sets its rlimits and stdio and execs; runs
 * alternate between the two groups, and PROTO_GROUP hands us the fds of a
 * fresh group replacing a used one (take_group). We reap everything
 * (orphans included) and report the run's child with its wait status and
 * rusage.
 *
 * A slot with an interpreter (or a language's pre-started helper) has a
 * third group, the kernel's: PROTO_RUN with
 * group 2 starts the slot's long-lived interpreter there (a plain fork, no
 * stub: it starts once per slot, again only after a timeout or a crash), with
 * two more fds (its request and reply pipes, fds 3 and 4). It runs beside the
 * judged runs, and its exit is reported like a run's, tagged with group 2.
 *
 * Killing a run's processes is sandboxd's job, through the run cgroup; we
 * are not in it and survive. Being pid 1, we ignore every signal sent from
 * inside the slot (no handlers), and we are not dumpable, so the program
 * cannot ptrace us or read our fds through /proc. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "proto.h"
#include "slot_init.h"

/* How long a run's process may take from fork (or the stub's wake-up) to its
 * exec: a few ms normally; far longer only when something stopped it. */
#define START_TIMEOUT_MS 5000

#ifndef CAP_LAST_CAP
#define CAP_LAST_CAP 40
#endif

static int ctl = -1;
char *slot_init_argv_area;
size_t slot_init_argv_len;

static void send_failed(int group, int err, const char *where)
{
	struct proto_failed m = {.hdr.type = PROTO_FAILED, .group = group, .err = err};
	snprintf(m.where, sizeof(m.where), "%s", where);
	send(ctl, &m, sizeof(m), MSG_NOSIGNAL);
}

static _Noreturn void die(const struct wp_error *e)
{
	send_failed(PROTO_GROUP_NONE, e->code, e->msg);
	_exit(1);
}

static int setup_credentials(const struct slot_init_args *a, struct wp_error *err)
{
	/* empty the bounding set while we still hold CAP_SETPCAP, so nothing
	 * exec'd later can regain a capability (no_new_privs covers setuid) */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return wp_error_errno(err, "drop capability %d", cap);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (setgroups(0, NULL) < 0 || setresgid(a->gid, a->gid, a->gid) < 0 || setresuid(a->uid, a->uid, a->uid) < 0)
		return wp_error_errno(err, "drop to uid %u", (unsigned)a->uid);
	/* a uid change clears these: set them after it */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return wp_error_errno(err, "prctl");
	return 0;
}

/* Keep only the control socket and the cgroup.procs fds, renumbered low. */
static int setup_fds(struct slot_init_args *a, struct wp_error *err)
{
	int keep[1 + 3 * 8], n = 0, next = 3;

	keep[n++] = a->ctl_fd;
	for (int g = 0; g < 3; g++)
		for (int i = 0; i < 8 && a->procs_fds[g][i] >= 0; i++)
			keep[n++] = a->procs_fds[g][i];
	/* move each kept fd above every other kept one, then down to 3… */
	for (int i = 0; i < n; i++) {
		int fd = fcntl(keep[i], F_DUPFD_CLOEXEC, 64);
		if (fd < 0)
			return wp_error_errno(err, "dup fd %d", keep[i]);
		keep[i] = fd;
	}
	for (int fd = 0; fd < 64; fd++)
		close(fd);
	for (int i = 0; i < n; i++) {
		if (dup3(keep[i], next, O_CLOEXEC) < 0)
			return wp_error_errno(err, "dup3");
		keep[i] = next++;
	}
	syscall(SYS_close_range, (unsigned)next, ~0u, 0);
	a->ctl_fd = keep[0];
	for (int g = 0, k = 1; g < 3; g++)
		for (int i = 0; i < 8 && a->procs_fds[g][i] >= 0; i++)
			a->procs_fds[g][i] = keep[k++];
	/* stdin/stdout/stderr of init: /dev/null */
	int nul = open("/dev/null", O_RDWR);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0)
		return wp_error_errno(err, "/dev/null");
	if (nul > 2)
		close(nul);
	return 0;
}

/* Move the calling process into the run cgroup (every hierarchy). */
static int join_run_cgroup(const int *procs)
{
	for (int i = 0; procs[i] >= 0; i++)
		if (write(procs[i], "0", 1) != 1)
			return -1;
	return 0;
}

/* The run child, already in its cgroup: limits, fds, exec. fds[i] becomes
 * fd i (0, 1, 2 and, for a kernel, 3 and 4). On failure the errno goes to
 * errfd and the child exits 127. */
static _Noreturn void exec_child(char *buf, size_t len, const int *fds, int nfds, int errfd)
{
	const struct proto_run *m = (const struct proto_run *)buf;
	char *argv[PROTO_MAX_ARGS + 1], *envp[PROTO_MAX_ARGS + 1];
	const char *cwd;
	sigset_t none;
	struct rlimit rl;
	int high[PROTO_MAX_FDS], e = EINVAL;

	if (proto_run_parse(buf, len, argv, envp, &cwd) < 0 || nfds > PROTO_MAX_FDS)
		goto fail;
	/* first above every target, so that no dup2 below lands on a source
	 * not yet moved (received fds can have any number) */
	for (int i = 0; i < nfds; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 16)) < 0)
			goto fail_errno;
	for (int i = 0; i < nfds; i++)
		if (dup2(high[i], i) < 0)
			goto fail_errno;
	rl.rlim_cur = m->rlim_cpu_s;
	rl.rlim_max = m->rlim_cpu_s == RLIM_INFINITY ? RLIM_INFINITY : m->rlim_cpu_s + 1;
	if (setrlimit(RLIMIT_CPU, &rl) < 0)
		goto fail_errno;
	rl.rlim_cur = rl.rlim_max = m->rlim_fsize;
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		goto fail_errno;
	rl.rlim_cur = rl.rlim_max = m->rlim_stack;
	if (setrlimit(RLIMIT_STACK, &rl) < 0)
		goto fail_errno;
	rl.rlim_cur = rl.rlim_max = m->rlim_nofile;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		goto fail_errno;
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		goto fail_errno;
	/* its own session and process group: a terminal-less world */
	setsid();
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir(cwd) < 0)
		goto fail_errno;
	execve(argv[0], argv, envp);
fail_errno:
	e = errno;
fail:
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* Receive one message and up to PROTO_MAX_FDS fds. */
static ssize_t recv_fds(int fd, char *buf, size_t size, int fds[PROTO_MAX_FDS], int *nfds)
{
	char cbuf[CMSG_SPACE(PROTO_MAX_FDS * sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

	*nfds = 0;
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
			if (*nfds < PROTO_MAX_FDS)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	return n;
}

static int send_fds(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(PROTO_MAX_FDS * sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int))};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* Pre-forked stubs. Moving a process between cgroups can wait for an RCU
 * grace period (~10 ms when the host is quiet), so it is done ahead of need:
 * a stub is a child that already sits in a run cgroup, waiting for its run.
 * There are two run cgroups that alternate; while a run goes on in one, the
 * stub for the next waits in the other (which the previous run left empty:
 * sandboxd sends a run only once the last one's group is dead and empty). */
static pid_t stub_pid[2] = {-1, -1};
static int stub_fd[2] = {-1, -1};

static void stub_spawn(const struct slot_init_args *a, int g)
{
	static _Alignas(8) char buf[PROTO_MAX]; /* read as struct proto_run */
	int sp[2], fds[PROTO_MAX_FDS], nfds;
	pid_t pid;

	if (stub_pid[g] > 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return;
	pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return;
	}
	if (pid == 0) {
		close(sp[0]);
		close(ctl);
		if (join_run_cgroup(a->procs_fds[g]) < 0)
			_exit(126);
		ssize_t n = recv_fds(sp[1], buf, sizeof(buf), fds, &nfds);
		if (n <= 0 || nfds != 3)
			_exit(0);
		exec_child(buf, (size_t)n, fds, 3, sp[1]);
	}
	close(sp[1]);
	stub_pid[g] = pid;
	stub_fd[g] = sp[0];
}

static void stub_forget(int g)
{
	if (stub_fd[g] >= 0)
		close(stub_fd[g]);
	stub_fd[g] = -1;
	stub_pid[g] = -1;
}

/* A stub runs as the slot's uid in the slot's pid namespace: a run can
 * SIGSTOP it, and a stopped stub would take the next run and never exec it.
 * A stopped (or traced) stub is killed and the run forked afresh; the run
 * that stopped it is dead by now (sandboxd sends a run once the last run's
 * group is empty). SIGKILL reaches a stopped process; it is reaped as an
 * orphan. */
static bool stub_usable(int g)
{
	char path[64], buf[512], *p;
	ssize_t n;

	if (stub_pid[g] <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)stub_pid[g]);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (n > 0) {
		buf[n] = '\0';
		/* "pid (comm) S ...": the state follows the last ')' */
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] != 'T' && p[2] != 't' && p[2] != 'Z' && p[2] != 'X')
			return true;
	}
	kill(stub_pid[g], SIGKILL);
	stub_forget(g);
	return false;
}

/* Wait for the child's exec (EOF: its end was close-on-exec) or its errno.
 * Bounded: a child stopped before its exec (the interpreter, same uid, can
 * SIGSTOP it) must not hold the slot's init. 1 when exec'd, 0 with *e set,
 * -1 on timeout. */
static int wait_exec(int rfd, int *e)
{
	struct pollfd p = {.fd = rfd, .events = POLLIN};
	ssize_t n;
	int r;

	do
		r = poll(&p, 1, START_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -1;
	do
		n = read(rfd, e, sizeof(*e));
	while (n < 0 && errno == EINTR);
	return n == sizeof(*e) ? 0 : 1;
}

/* Start a run (or the kernel): through the stub when one waits, else a fresh
 * fork. Replies PROTO_STARTED or PROTO_FAILED; returns the child's pid or -1.
 * *group is the group of a well-formed request, else -1. */
static pid_t handle_run(const struct slot_init_args *a, char *buf, size_t len, int *fds, int nfds, int *group)
{
	char *argv[PROTO_MAX_ARGS + 1], *envp[PROTO_MAX_ARGS + 1];
	const char *cwd;
	int errp[2], e = 0, rfd;
	pid_t pid;

	*group = -1;
	if (proto_run_parse(buf, len, argv, envp, &cwd) < 0 || ((struct proto_run *)buf)->group > PROTO_GROUP_KERNEL) {
		send_failed(PROTO_GROUP_NONE, EINVAL, "malformed run request");
		return -1;
	}
	int g = (int)((struct proto_run *)buf)->group;
	if (nfds != (g == PROTO_GROUP_KERNEL ? 5 : 3) || a->procs_fds[g][0] < 0) {
		send_failed(g, EINVAL, "malformed run request");
		return -1;
	}
	*group = g;
	if (g != PROTO_GROUP_KERNEL && stub_usable(g) && send_fds(stub_fd[g], buf, len, fds, 3) == 0) {
		pid = stub_pid[g];
		rfd = stub_fd[g];
		stub_fd[g] = -1;
		stub_pid[g] = -1;
	} else {
		if (g != PROTO_GROUP_KERNEL)
			stub_forget(g);
		if (pipe2(errp, O_CLOEXEC) < 0) {
			send_failed(g, errno, "pipe");
			return -1;
		}
		pid = fork();
		if (pid < 0) {
			e = errno;
			close(errp[0]);
			close(errp[1]);
			send_failed(g, e, "fork");
			return -1;
		}
		if (pid == 0) {
			close(errp[0]);
			close(ctl);
			if (join_run_cgroup(a->procs_fds[g]) < 0) {
				e = errno;
				if (write(errp[1], &e, sizeof(e)) < 0)
					_exit(126);
				_exit(126);
			}
			exec_child(buf, len, fds, nfds, errp[1]);
		}
		close(errp[1]);
		rfd = errp[0];
	}
	/* exec either happens (EOF: the fd was close-on-exec) or reports errno */
	int started = wait_exec(rfd, &e);
	close(rfd);
	if (started < 0) {
		kill(pid, SIGKILL);
		send_failed(g, ETIMEDOUT, "the run's process did not start (stopped before its exec?)");
		return -1; /* reaped as an orphan */
	}
	if (started == 0) {
		send_failed(g, e, argv[0]);
		return -1; /* reaped as an orphan */
	}
	struct proto_started s = {.hdr.type = PROTO_STARTED, .group = g, .pid = pid};
	send(ctl, &s, sizeof(s), MSG_NOSIGNAL);
	return pid;
}

/* PROTO_GROUP: run group g was made afresh (run.c run_group_renew): take
 * its cgroup.procs fds in place of the old group's. A stub waiting in the
 * old group (there should be none: the last run there consumed it) goes. The
 * taken fds are set to -1 in fds[]. */
static void take_group(struct slot_init_args *a, const char *buf, size_t len, int *fds, int nfds)
{
	const struct proto_new_group *m = (const struct proto_new_group *)buf;

	if (len < sizeof(*m) || m->group > PROTO_GROUP_RUN1 || nfds < 1 || nfds > 7) {
		send_failed(PROTO_GROUP_NONE, EINVAL, "malformed group message");
		return;
	}
	int g = (int)m->group;
	if (stub_pid[g] > 0) {
		kill(stub_pid[g], SIGKILL);
		stub_forget(g);
	}
	for (int i = 0; i < 8 && a->procs_fds[g][i] >= 0; i++) {
		close(a->procs_fds[g][i]);
		a->procs_fds[g][i] = -1;
	}
	for (int i = 0; i < nfds; i++) {
		a->procs_fds[g][i] = fds[i];
		fds[i] = -1;
	}
	a->procs_fds[g][nfds] = -1;
}

static _Noreturn void serve(struct slot_init_args *a, int sigfd)
{
	static _Alignas(8) char buf[PROTO_MAX]; /* read as struct proto_run */
	pid_t child = -1, kernel = -1;
	int current_group = PROTO_GROUP_RUN0; /* of child */

	for (;;) {
		struct pollfd pfd[2] = {{.fd = ctl, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof(si)) > 0)
				;
			for (;;) {
				struct rusage ru;
				int status;
				pid_t p = wait4(-1, &status, WNOHANG, &ru);
				if (p <= 0)
					break;
				for (int g = 0; g < 2; g++)
					if (p == stub_pid[g])
						stub_forget(g); /* died waiting: a fresh fork replaces it */
				if (p != child && p != kernel)
					continue; /* an orphan of the run: reaped, not reported */
				struct proto_exited x = {
				    .hdr.type = PROTO_EXITED,
				    .group = p == kernel ? PROTO_GROUP_KERNEL : current_group,
				    .status = status,
				    .maxrss_kb = ru.ru_maxrss,
				    .utime_us = ru.ru_utime.tv_sec * 1000000ll + ru.ru_utime.tv_usec,
				    .stime_us = ru.ru_stime.tv_sec * 1000000ll + ru.ru_stime.tv_usec,
				};
				send(ctl, &x, sizeof(x), MSG_NOSIGNAL);
				if (p == kernel)
					kernel = -1;
				else
					child = -1;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			int fds[PROTO_MAX_FDS] = {-1, -1, -1, -1, -1}, nfds = 0;
			ssize_t n = recv_fds(ctl, buf, sizeof(buf), fds, &nfds);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				_exit(0); /* sandboxd is gone or done with us */
			uint32_t type = (size_t)n >= sizeof(struct proto_hdr) ? ((struct proto_hdr *)buf)->type : 0;
			int g = -1;
			if (type == PROTO_GROUP)
				take_group(a, buf, (size_t)n, fds, nfds);
			if (type == PROTO_RUN) {
				uint32_t want =
				    (size_t)n >= sizeof(struct proto_run) ? ((struct proto_run *)buf)->group : 0;
				pid_t *slotp = want == PROTO_GROUP_KERNEL ? &kernel : &child;
				if (*slotp > 0) {
					send_failed(want == PROTO_GROUP_KERNEL ? PROTO_GROUP_KERNEL : PROTO_GROUP_NONE,
						    EBUSY,
						    want == PROTO_GROUP_KERNEL ? "the kernel is running"
									       : "a run is in progress");
				} else {
					*slotp = handle_run(a, buf, (size_t)n, fds, nfds, &g);
					if (slotp == &child && g >= 0)
						current_group = g;
				}
			}
			for (int i = 0; i < nfds; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			/* The other group is empty now (sandboxd sends a run only
			 * once the last one's group is dead): its stub can move in
			 * during this run. Forked after closing the run's fds, so
			 * the stub holds no pipe of this run open. */
			if (g == PROTO_GROUP_RUN0 || g == PROTO_GROUP_RUN1)
				stub_spawn(a, 1 - g);
		}
	}
}

_Noreturn void slot_init_main(struct slot_init_args *a)
{
	struct wp_error err = {0};
	sigset_t mask;
	int r, sigfd;

	ctl = a->ctl_fd;
	if (slot_init_argv_area && slot_init_argv_len > 0) {
		memset(slot_init_argv_area, 0, slot_init_argv_len);
		snprintf(slot_init_argv_area, slot_init_argv_len, "slot-init");
	}
	/* sandboxd's handlers (libev's) came with the clone: drop them */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	/* Into the init cgroup first, through fds sandboxd opened: sandboxd
	 * itself never waits for a cgroup migration (they can take an RCU
	 * grace period on a quiet host). Our charges land in the slot's group. */
	for (int i = 0; i < 8 && a->init_procs_fds[i] >= 0; i++) {
		if (write(a->init_procs_fds[i], "0", 1) != 1) {
			wp_error_errno(&err, "join the init cgroup");
			die(&err);
		}
		close(a->init_procs_fds[i]);
	}

	/* checklist, in order; the namespaces sandboxd left to us (only the
	 * pid one is made by the clone) come first, the cgroup one once we are
	 * in the init group */
	if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP) < 0) {
		wp_error_errno(&err, "unshare mount, network, ipc, uts and cgroup namespaces");
		die(&err);
	}
	if ((r = mounts_setup_root(a, &err)) < 0)
		die(&err);
	if (sethostname("slot", 4) < 0 || setdomainname("warmpool", 8) < 0) {
		wp_error_errno(&err, "sethostname");
		die(&err);
	}
	if ((r = setup_fds(a, &err)) < 0)
		die(&err);
	ctl = a->ctl_fd;
	if ((r = setup_credentials(a, &err)) < 0)
		die(&err);
	if ((r = seccomp_setup(&err)) < 0)
		die(&err);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0) {
		wp_error_errno(&err, "signalfd");
		die(&err);
	}

	struct proto_hdr ready = {.type = PROTO_READY};
	if (send(ctl, &ready, sizeof(ready), MSG_NOSIGNAL) < 0)
		_exit(1);
	stub_spawn(a, 0);
	serve(a, sigfd);
}
