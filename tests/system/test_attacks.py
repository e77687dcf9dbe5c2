"""Hostile programs (docs/security.md): one test per attack. Each
checks the attack's outcome inside the slot AND, through the `guard`
fixture, that the host and a sibling slot were not affected: a host marker
file and host files unchanged, the test's TCP/UDP/abstract-unix listeners got
nothing, the test's own sleeping child is alive, sandboxd is alive and
answers, the sibling slot's init is alive, its file unchanged, and it still
runs a hello program with `accepted`.

Attack programs are Python (ctypes for raw syscalls) or C, whichever is
natural; the C "kit" picks its attack from stdin. Syscall numbers are
x86_64's."""

import errno
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import (
    cgroup_dirs_named,
    host_mounts_under,
    host_processes,
    is_sandboxd_process,
    is_slot_init,
    processes_matching,
    qname,
    run_raw,
    show,
    source_name,
    wait_gone,
)

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="ATTACK TESTS USE x86_64 SYSCALL NUMBERS")

HELLO = 'print("hello")\n'
EPERM_ENOSYS = (errno.EPERM, errno.ENOSYS)

# ---------------------------------------------------------------- helpers

PY_HARNESS = r'''
import ctypes, errno, json, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_long

def attempt(name, fn):
    """Run fn() in a child process; print one line RESULT {name, rc, errno} or {name, killed}."""
    sys.stdout.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            ctypes.set_errno(0)
            rc = fn()
            rc = 0 if rc is None else int(rc)
            res = {"rc": rc, "errno": ctypes.get_errno() if rc < 0 else 0}
        except OSError as e:
            res = {"rc": -1, "errno": e.errno, "exc": str(e)}
        except BaseException as e:
            res = {"rc": None, "exc": repr(e)}
        try:
            os.write(w, json.dumps(res).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, st = os.waitpid(pid, 0)
    res = json.loads(data) if data else {}
    res["name"] = name
    if os.WIFSIGNALED(st):
        res["killed"] = os.WTERMSIG(st)
    print("RESULT " + json.dumps(res), flush=True)
'''

C_KIT = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

typedef long (*fn_t)(void);
static char buf[512];
static long g_flags;

/* fn() in a child: one line RESULT {...} with rc and errno, or killed. */
static void attempt(const char *name, fn_t fn)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("RESULT {\"name\": \"%s\", \"forkerr\": %d}\n", name, errno);
		return;
	}
	if (pid == 0) {
		errno = 0;
		long rc = fn();
		int e = errno;
		printf("RESULT {\"name\": \"%s\", \"rc\": %ld, \"errno\": %d}\n", name, rc, rc < 0 ? e : 0);
		fflush(stdout);
		_exit(0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st))
		printf("RESULT {\"name\": \"%s\", \"killed\": %d}\n", name, WTERMSIG(st));
	fflush(stdout);
}

static long t_keyctl(void) { return syscall(SYS_keyctl, 1L /* KEYCTL_JOIN_SESSION_KEYRING */, 0L, 0L, 0L, 0L); }
static long t_add_key(void) { return syscall(SYS_add_key, "user", "warmpool-test", "x", 1L, -3L /* session keyring */); }
static long t_bpf(void)
{
	memset(buf, 0, sizeof buf);
	uint32_t *a = (uint32_t *)buf;
	a[0] = 2; /* BPF_MAP_TYPE_ARRAY */
	a[1] = 4;
	a[2] = 4;
	a[3] = 1;
	return syscall(SYS_bpf, 0L /* BPF_MAP_CREATE */, buf, 128L);
}
static long t_perf(void)
{
	memset(buf, 0, sizeof buf);
	*(uint32_t *)buf = 1;          /* PERF_TYPE_SOFTWARE */
	*(uint32_t *)(buf + 4) = 128;  /* size */
	*(uint64_t *)(buf + 8) = 0;    /* PERF_COUNT_SW_CPU_CLOCK */
	*(uint64_t *)(buf + 40) = 1 | (1 << 5) | (1 << 6); /* disabled, exclude_kernel, exclude_hv */
	return syscall(SYS_perf_event_open, buf, 0L, -1L, -1L, 0L);
}
static long t_io_uring(void)
{
	memset(buf, 0, sizeof buf);
	return syscall(SYS_io_uring_setup, 4L, buf);
}
static long t_reboot(void) { return syscall(SYS_reboot, 0xfee1deadL, 672274793L, 0L /* CAD_OFF */, NULL); }
static long t_init_module(void)
{
	memset(buf, 0, sizeof buf);
	return syscall(SYS_init_module, buf, 64L, "");
}
static long t_finit_module(void) { return syscall(SYS_finit_module, 0L, "", 0L); }
static long t_delete_module(void) { return syscall(SYS_delete_module, "warmpool_none", 0L); }
static long t_kexec_load(void) { return syscall(SYS_kexec_load, 0L, 0L, NULL, 0L); }
static long t_userfaultfd(void) { return syscall(SYS_userfaultfd, 1L /* UFFD_USER_MODE_ONLY */); }
static long t_sock_inet(void) { return socket(AF_INET, SOCK_STREAM, 0); }
static long t_sock_inet_udp(void) { return socket(AF_INET, SOCK_DGRAM, 0); }
static long t_sock_inet6(void) { return socket(AF_INET6, SOCK_STREAM, 0); }
static long t_sock_netlink(void) { return socket(AF_NETLINK, SOCK_RAW, 0); }
static long t_sock_packet(void) { return socket(AF_PACKET, SOCK_RAW, 0); }
static long t_sock_unix(void) { return socket(AF_UNIX, SOCK_STREAM, 0); }

static long t_unshare(void) { return unshare((int)g_flags); }
static long t_clone(void)
{
	long r = syscall(SYS_clone, g_flags | SIGCHLD, 0L, NULL, NULL, 0L);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return r;
}
struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};
static long t_clone3(void)
{
	struct clone_args_v0 a;
	memset(&a, 0, sizeof a);
	a.flags = (uint64_t)g_flags;
	a.exit_signal = SIGCHLD;
	long r = syscall(SYS_clone3, &a, sizeof a);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return r;
}

static void do_seccomp(void)
{
	attempt("keyctl", t_keyctl);
	attempt("add_key", t_add_key);
	attempt("bpf", t_bpf);
	attempt("perf_event_open", t_perf);
	attempt("io_uring_setup", t_io_uring);
	attempt("reboot", t_reboot);
	attempt("init_module", t_init_module);
	attempt("finit_module", t_finit_module);
	attempt("delete_module", t_delete_module);
	attempt("kexec_load", t_kexec_load);
	attempt("userfaultfd", t_userfaultfd);
	attempt("socket_inet", t_sock_inet);
	attempt("socket_inet_udp", t_sock_inet_udp);
	attempt("socket_inet6", t_sock_inet6);
	attempt("socket_netlink", t_sock_netlink);
	attempt("socket_packet", t_sock_packet);
	attempt("socket_unix", t_sock_unix);
}

static void do_unshare(void)
{
	static const struct { const char *name; long flags; } kinds[] = {
		{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
		{"net", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
		{"user+mnt", CLONE_NEWUSER | CLONE_NEWNS}, {"user+net", CLONE_NEWUSER | CLONE_NEWNET},
		{"user+pid", CLONE_NEWUSER | CLONE_NEWPID},
	};
	char name[64];
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		g_flags = kinds[i].flags;
		snprintf(name, sizeof name, "unshare_%s", kinds[i].name);
		attempt(name, t_unshare);
		snprintf(name, sizeof name, "clone_%s", kinds[i].name);
		attempt(name, t_clone);
		snprintf(name, sizeof name, "clone3_%s", kinds[i].name);
		attempt(name, t_clone3);
	}
}

static void do_setuid(char *self)
{
	printf("PARENT uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int out = open("suidcopy", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (in < 0 || out < 0) {
		printf("COPYFAIL %d\n", errno);
		return;
	}
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n) {
			printf("COPYFAIL %d\n", errno);
			return;
		}
	close(in);
	close(out);
	printf("CHMOD %d\n", chmod("suidcopy", 04755) == 0 ? 0 : errno);
	printf("CHOWN %d\n", chown("suidcopy", 0, 0) == 0 ? 0 : errno);
	struct stat st;
	stat("suidcopy", &st);
	printf("MODE %o OWNER %d\n", (unsigned)st.st_mode & 07777, (int)st.st_uid);
	fflush(stdout);
	execl("./suidcopy", "suidcopy", "child", (char *)NULL);
	printf("EXECFAIL %d\n", errno);
}

static void *sleeper(void *arg)
{
	(void)arg;
	sleep(60);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "child") == 0) {
		printf("CHILD uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
		printf("SETUID0 %d\n", setuid(0) == 0 ? 0 : errno);
		printf("AFTER uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
		return 0;
	}
	char mode[64] = "";
	if (!fgets(mode, sizeof mode, stdin))
		return 100;
	mode[strcspn(mode, "\n")] = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "seccomp")) {
		do_seccomp();
	} else if (!strcmp(mode, "unshare")) {
		do_unshare();
	} else if (!strcmp(mode, "setuid")) {
		do_setuid(argv[0]);
	} else if (!strcmp(mode, "forkbomb")) {
		for (;;)
			fork();
	} else if (!strcmp(mode, "threadbomb")) {
		long n = 0;
		pthread_t t;
		while (n < 100000 && pthread_create(&t, NULL, sleeper, NULL) == 0)
			n++;
		printf("THREADS %ld\n", n);
	} else if (!strcmp(mode, "flood")) {
		static char line[4096];
		memset(line, 'z', sizeof line - 1);
		for (;;) {
			if (write(1, line, sizeof line - 1) < 0 && errno != EINTR)
				break;
			if (write(2, line, sizeof line - 1) < 0 && errno != EINTR)
				break;
		}
	} else {
		printf("unknown mode %s\n", mode);
		return 101;
	}
	return 0;
}
'''


def results_of(body):
    """RESULT lines of the first test's stdout, by name."""
    out = {}
    for line in body["tests"][0]["stdout"].splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            out[r["name"]] = r
    return out


def assert_refused(results, name, errnos=None, body=None):
    """The attempt failed (rc -1, errno in `errnos` when given) or was killed."""
    r = results.get(name)
    assert r is not None, "no result for %s (the program died early?): %s" % (name, show(body) if body else results)
    if "killed" in r:
        return
    assert r.get("rc") == -1, "%s SUCCEEDED inside the slot: %r" % (name, r)
    if errnos:
        assert r.get("errno") in errnos, "%s failed with errno %s, want one of %s (%r)" % (
            name,
            errno.errorcode.get(r.get("errno"), r.get("errno")),
            [errno.errorcode[e] for e in errnos],
            r,
        )


def snapshot(path):
    try:
        st = os.lstat(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None
    return (digest, st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def in_kernel_group(pid):
    """In the slot's `kernel` cgroup: its pre-started helper (the Python
    fork-server), started with the slot, not by a run. A run's processes
    are in its run group and cannot leave it (they may not write any
    cgroup.procs), so this hides nothing a run started."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            return any(line.rstrip("\n").endswith("/kernel") for line in f)
    except OSError:
        return False


def host_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def run_processes(uid):
    """Processes of a slot's uid on the host, but its init, the stubs init
    pre-forks for the next run (forks of sandboxd that have not exec'd), its
    pre-started helper and the helper's child forked ahead for the next run
    (a child of the helper once the run returned: the run's own process is
    dead then, and what it started is reparented to the slot's init)."""
    return [p for p in host_processes(uid, uid + 1)
            if not is_slot_init(p) and not is_sandboxd_process(p) and not in_kernel_group(p["pid"])
            and not in_kernel_group(host_ppid(p["pid"]))]


def assert_no_run_processes(uid, what="", grace=1.0):
    """'When a run returns, every process it started is dead': nothing alive
    at once, and nothing at all (zombies reaped) after `grace`."""
    alive = [p for p in run_processes(uid) if not p["state"].startswith("Z")]
    assert not alive, "processes of the run still alive after it returned%s: %r" % (what, alive)
    deadline = time.monotonic() + grace
    left = run_processes(uid)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = run_processes(uid)
    assert not left, "processes of the run not reaped %.1f s after it returned%s: %r" % (grace, what, left)


class Guard:
    """What an attack must not touch: host files, host listeners, a host
    process, sandboxd, and a sibling slot."""

    def __init__(self, client, daemon, slots, run):
        self.client, self.daemon, self.slots, self.run = client, daemon, slots, run
        self.dir = tempfile.mkdtemp(prefix="wp-host-")
        os.chmod(self.dir, 0o755)
        self.marker = os.path.join(self.dir, "marker.txt")
        with open(self.marker, "w") as f:
            f.write("host marker %s\n" % os.urandom(8).hex())
        self.watched = [self.marker, "/etc/passwd", "/etc/shadow", daemon.config, "/usr/bin/python3"]
        self.snap = {p: snapshot(p) for p in self.watched}
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.tcp.setblocking(False)
        self.tcp_port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.udp_port = self.udp.getsockname()[1]
        self.abstract = "\0warmpool-test-%s" % os.urandom(6).hex()
        self.abs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abs.bind(self.abstract)
        self.abs.listen(16)
        self.abs.setblocking(False)
        self.child = subprocess.Popen(["/usr/bin/sleep", "600"])
        self.daemon_pid = daemon.pid
        # the sibling slot
        self.sibling = slots("python")
        info = slots.info(self.sibling)
        self.sib_uid = info["uid"]
        self.sib_data = b"sibling data " + os.urandom(8).hex().encode()
        r = client.put("/v1/slots/%s/files/sib.txt" % self.sibling, self.sib_data)
        assert r.status == 201, r
        inits = [p for p in host_processes(self.sib_uid, self.sib_uid + 1) if is_slot_init(p)]
        self.sib_init = inits[0]["pid"] if inits else None

    def check(self, what="the attack"):
        problems = []
        for p in self.watched:
            now = snapshot(p)
            if now != self.snap[p]:
                problems.append("host file %s changed: %r → %r" % (p, self.snap[p], now))
        try:
            conn, addr = self.tcp.accept()
            problems.append("host TCP listener 127.0.0.1:%d got a connection from %r" % (self.tcp_port, addr))
            conn.close()
        except BlockingIOError:
            pass
        try:
            data, addr = self.udp.recvfrom(65536)
            problems.append("host UDP socket 127.0.0.1:%d received %r from %r" % (self.udp_port, data[:100], addr))
        except BlockingIOError:
            pass
        try:
            conn, _ = self.abs.accept()
            problems.append("host abstract unix socket %r got a connection" % self.abstract)
            conn.close()
        except BlockingIOError:
            pass
        if self.child.poll() is not None:
            problems.append("the test's own host process (pid %d) died: %r" % (self.child.pid, self.child.returncode))
        if not self.daemon.alive() or self.daemon.pid != self.daemon_pid:
            problems.append("sandboxd died")
        else:
            r = self.client.get("/healthz", timeout=10)
            if r.status != 200:
                problems.append("sandboxd /healthz: %r" % (r,))
        if self.sib_init is not None and not os.path.exists("/proc/%d" % self.sib_init):
            problems.append("the sibling slot's init (host pid %d) is gone" % self.sib_init)
        r = self.client.get("/v1/slots/%s/files/sib.txt" % self.sibling)
        if r.status != 200 or r.body != self.sib_data:
            problems.append("the sibling slot's file changed: %r" % (r,))
        r = run_raw(self.client, self.sibling, HELLO, [("", "hello\n")])
        if r.status != 200 or r.body.get("verdict") != "accepted":
            problems.append("the sibling slot no longer runs hello: %r" % (r,))
        assert not problems, "after %s:\n  - %s" % (what, "\n  - ".join(problems))

    def close(self):
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()
        for s in (self.tcp, self.udp, self.abs):
            s.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def guard(client, sandboxd, slots, run):
    g = Guard(client, sandboxd, slots, run)
    yield g
    g.close()


@pytest.fixture
def victim(slots):
    """A python slot to attack from: (id, uid)."""
    sid = slots("python")
    return sid, slots.info(sid)["uid"]


def hello_works(run, sid, what):
    b = run(sid, HELLO, [("", "hello\n")])
    assert b["verdict"] == "accepted", "the attacked slot no longer runs hello after %s: %s" % (what, show(b))


def c_kit(make_slot, run, mode, limits=None, timeout=90):
    sid = make_slot("c")
    kw = {"limits": limits} if limits else {}
    b = run(sid, C_KIT, [mode + "\n"], timeout=timeout, **kw)
    assert b["compile"] and b["compile"]["status"] == "ok", "the C attack kit did not compile: %s" % show(b)
    return sid, b


# ---------------------------------------------------------------- exhaustion


def test_fork_bomb(guard, make_slot, run, slots):
    t0 = time.monotonic()
    sid, b = c_kit(make_slot, run, "forkbomb", limits={"cpu_ms": 2000, "wall_ms": 3000})
    took = time.monotonic() - t0
    assert b["verdict"] in ("time_limit_exceeded", "runtime_error", "memory_limit_exceeded"), show(b)
    assert b["tests"][0]["wall_ms"] <= 5000, "fork bomb not stopped at its wall limit: %s" % show(b)
    assert took < 30, "a fork bomb run took %.1f s to answer" % took
    assert_no_run_processes(slots.info(sid)["uid"], " (fork bomb)")
    hello_works(run, guard.sibling, "a fork bomb")
    guard.check("a fork bomb")


def test_fork_count_bounded_by_pids(guard, victim, run):
    sid, uid = victim
    src = (
        "import os, time\n"
        "n = 0\n"
        "while n < 2000:\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    b = run(sid, src, [""], limits={"pids": 32, "wall_ms": 10000})
    assert b["verdict"] == "accepted", show(b)
    n = int(b["tests"][0]["stdout"])
    assert n < 32, "forked %d processes under a pids limit of 32: %s" % (n, show(b))
    assert b["tests"][0]["wall_ms"] < 8000, "the run waited for its sleeping children: %s" % show(b)
    assert_no_run_processes(uid, " (forked sleepers)")
    guard.check("a fork count")


def test_thread_bomb(guard, make_slot, run, slots):
    sid, b = c_kit(make_slot, run, "threadbomb", limits={"wall_ms": 10000})
    t = b["tests"][0]
    assert b["verdict"] == "accepted", show(b)
    n = int(t["stdout"].split()[1])
    assert n < 64, "created %d threads under the default pids limit of 64: %s" % (n, show(b))
    assert_no_run_processes(slots.info(sid)["uid"], " (thread bomb)")
    guard.check("a thread bomb")


def test_memory_bomb(guard, victim, run):
    """Many processes, together past the slot's memory (1 GiB), each under the run's limit."""
    sid, uid = victim
    src = (
        "import os, time\n"
        "kids = []\n"
        "for i in range(6):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        b = bytearray(b'x') * (300 << 20)\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "for k in kids:\n"
        "    os.waitpid(k, 0)\n"
        "print('survived')\n"
    )
    b = run(sid, src, [""], limits={"memory_kb": 1048576, "wall_ms": 15000})
    assert b["verdict"] == "memory_limit_exceeded", "1.8 GB across processes in a 1 GiB slot: %s" % show(b)
    assert_no_run_processes(uid, " (memory bomb)")
    # Given back means: the slot's cgroup holds no anonymous memory any more
    # (MemAvailable is host-wide and moves with the VM's balloon and caches).
    anon = _slot_anon_bytes(sid)
    assert anon is not None, "the slot's memory cgroup (slot-%s) was not found under /sys/fs/cgroup" % sid
    assert anon < (32 << 20), "the slot's cgroup still holds %d bytes of anonymous memory" % anon
    hello_works(run, sid, "a memory bomb")
    guard.check("a memory bomb")


def _slot_anon_bytes(sid):
    """Anonymous memory charged to the slot's cgroup (v1 total_rss, v2 anon),
    or None when its group is not found."""
    import glob
    for d in glob.glob("/sys/fs/cgroup/memory/**/slot-%s" % sid, recursive=True) + \
            glob.glob("/sys/fs/cgroup/**/slot-%s" % sid, recursive=True):
        try:
            with open(os.path.join(d, "memory.stat")) as f:
                stat = dict(line.split() for line in f if len(line.split()) == 2)
        except OSError:
            continue
        for key in ("total_rss", "anon"):
            if key in stat:
                return int(stat[key])
    return None


FILL = r'''
import json, os
res = {}
chunk = b"x" * (1 << 20)
for d in ("/mnt/data", "/tmp", "/dev/shm"):
    total, err, i = 0, None, 0
    while total < (1 << 30) and err is None:
        path = os.path.join(d, "fill-%d" % i)
        i += 1
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            err = e.errno
            break
        try:
            for _ in range(32):
                total += os.write(fd, chunk)
        except OSError as e:
            if e.errno != 27:  # EFBIG: the file size limit, go on with another file
                err = e.errno
        finally:
            os.close(fd)
    res[d] = {"bytes": total, "errno": err}
print(json.dumps(res))
'''


def test_disk_fill(guard, victim, run, client, sandboxd):
    sid, uid = victim
    free_before = shutil.disk_usage("/").free
    state_free_before = shutil.disk_usage(sandboxd.state_dir).free
    b = run(sid, FILL, [""], limits={"memory_kb": 1048576, "wall_ms": 30000, "cpu_ms": 20000}, timeout=60)
    assert b["verdict"] in ("accepted", "output_limit_exceeded"), show(b)
    res = json.loads(b["tests"][0]["stdout"])
    bounds = {"/mnt/data": 128 << 20, "/tmp": 64 << 20, "/dev/shm": 16 << 20}
    for d, cap in bounds.items():
        assert res[d]["bytes"] <= cap + (1 << 20), "%s took %d bytes, more than its %d: %r" % (d, res[d]["bytes"], cap, res)
        assert res[d]["errno"] in (errno.ENOSPC, errno.EDQUOT), "%s did not end with ENOSPC: %r" % (d, res)
    free_after = shutil.disk_usage("/").free
    assert free_after > free_before - (100 << 20), "host disk filled: free %d → %d" % (free_before, free_after)
    assert shutil.disk_usage(sandboxd.state_dir).free > state_free_before - (100 << 20), "state dir's disk filled"
    guard.check("a disk fill (full slot)")
    # with /mnt/data full, a run with a source answers sanely (either way) and fast
    r = run_raw(client, sid, HELLO, [("", "hello\n")], timeout=30)
    assert r.status in (200, 400, 409, 500, 507), "run in a full slot: %r" % (r,)
    assert sandboxd.alive()
    # make room through the files API, then the slot works again
    files = client.get("/v1/slots/%s/files" % sid).body["files"]
    for f in files:
        if f["name"].startswith("fill-"):
            assert client.delete("/v1/slots/%s/files/%s" % (sid, qname(f["name"]))).status == 204
    b = run(
        sid,
        "import glob, os\nfor p in glob.glob('/tmp/fill-*') + glob.glob('/dev/shm/fill-*'):\n    os.unlink(p)\nprint('hello')\n",
        [("", "hello\n")],
    )
    assert b["verdict"] == "accepted", "the slot does not work after its disk was freed: %s" % show(b)
    guard.check("a disk fill")


def test_output_flood(guard, make_slot, run, sandboxd):
    rss_before = _rss_kb(sandboxd.pid)
    sid, b = c_kit(make_slot, run, "flood", limits={"output_bytes": 64 << 20, "wall_ms": 20000})
    t = b["tests"][0]
    assert b["verdict"] == "output_limit_exceeded", show(b)
    assert len(t["stdout"]) <= 65536 and len(t["stderr"]) <= 65536, "answer carries more than max_output"
    assert t["stdout_truncated"] and t["stderr_truncated"], show(b)
    assert len(b["_resp"].raw) < 1 << 20, "answer of %d bytes for a flood" % len(b["_resp"].raw)
    rss_after = _rss_kb(sandboxd.pid)
    assert rss_after < rss_before + 48 * 1024, "sandboxd grew from %d to %d kB during a 64 MB flood" % (rss_before, rss_after)
    guard.check("an output flood")


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- processes outliving a run

BG_VARIANTS = {
    "double_fork": (
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execv(sys.executable, [sys.executable, '-c', CODE, MARK])\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    ),
    "setsid": (
        "subprocess.Popen([sys.executable, '-c', CODE, MARK], start_new_session=True,\n"
        "                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    ),
    "nohup": (
        "nohup = shutil.which('nohup') or '/usr/bin/nohup'\n"
        "if not os.path.exists(nohup):\n"
        "    print('NO-NOHUP')\n"
        "    sys.exit(0)\n"
        "subprocess.Popen([nohup, sys.executable, '-c', CODE, MARK], start_new_session=True,\n"
        "                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    ),
    "keeps_stdout_open": "subprocess.Popen([sys.executable, '-c', CODE, MARK], start_new_session=True)\n",
    "ignores_signals": (
        "if os.fork() == 0:\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "    os.setsid()\n"
        "    os.execv(sys.executable, [sys.executable, '-c', CODE, MARK])\n"
    ),
}


@pytest.mark.parametrize("variant", sorted(BG_VARIANTS))
def test_background_process_killed(guard, victim, run, client, variant):
    sid, uid = victim
    mark = "wp-bg-%s" % os.urandom(6).hex()
    code = (
        "import time, signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "while True:\n"
        "    open('/mnt/data/bg-alive', 'a').write('x')\n"
        "    time.sleep(0.05)\n"
    )
    src = (
        "import os, shutil, signal, subprocess, sys, time\n"
        "CODE = %r\nMARK = %r\n" % (code, mark)
        + BG_VARIANTS[variant]
        + "time.sleep(0.5)\nprint('started', flush=True)\n"
    )
    b = run(sid, src, [("", "started\n")], limits={"wall_ms": 8000})
    # coreutils' nohup is in every slot's /usr: its absence is a broken slot, not a reason to skip
    assert "NO-NOHUP" not in b["tests"][0]["stdout"], "no nohup binary inside the slot: %s" % show(b)
    assert b["verdict"] == "accepted", "the main program exited cleanly; its background child must not change that: %s" % show(b)
    assert b["tests"][0]["wall_ms"] < 5000, "the run waited for its background process: %s" % show(b)
    # from the host
    leftover = [p for p in processes_matching(mark) if p[2] and not p[2].startswith("Z")]
    assert not leftover, "background process alive after the run returned: %r" % leftover
    assert_no_run_processes(uid, " (%s)" % variant)
    r1 = client.get("/v1/slots/%s/files/bg-alive" % sid)
    assert r1.status == 200 and len(r1.body) > 0, "the background process never ran (test bug?): %r" % (r1,)
    time.sleep(0.5)
    r2 = client.get("/v1/slots/%s/files/bg-alive" % sid)
    assert len(r2.body) == len(r1.body), "something still writes bg-alive after the run returned"
    # a later run in the same slot doesn't see it
    later = (
        "import os\n"
        "me = os.getpid()\n"
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit() and int(p) not in (1, me):\n"
        "        try:\n"
        "            print(p, open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\\0', b' ').decode())\n"
        "        except OSError:\n"
        "            pass\n"
    )
    b = run(sid, later, [""])
    assert mark not in b["tests"][0]["stdout"], "a later run sees the background process: %s" % show(b)
    guard.check("a background process (%s)" % variant)


# ---------------------------------------------------------------- network


def test_tcp_connect_to_host(guard, victim, run):
    sid, uid = victim
    src = PY_HARNESS + (
        "PORT = %d\n"
        "def tcp(addr, fam):\n"
        "    s = socket.socket(fam, socket.SOCK_STREAM)\n"
        "    s.settimeout(3)\n"
        "    s.connect(addr)\n"
        "    return 0\n"
        "attempt('tcp_127', lambda: tcp(('127.0.0.1', PORT), socket.AF_INET))\n"
        "attempt('tcp_v6', lambda: tcp(('::1', PORT), socket.AF_INET6))\n"
        "attempt('tcp_any', lambda: tcp(('0.0.0.0', PORT), socket.AF_INET))\n"
        "attempt('tcp_poold', lambda: tcp(('127.0.0.1', 8080), socket.AF_INET))\n"
        "print('IFACES', sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]))\n"
    ) % guard.tcp_port
    b = run(sid, src, [""], limits={"wall_ms": 20000})
    res = results_of(b)
    for name in ("tcp_127", "tcp_v6", "tcp_any", "tcp_poold"):
        assert_refused(res, name, body=b)
    out = b["tests"][0]["stdout"]
    ifaces = [l for l in out.splitlines() if l.startswith("IFACES")]
    if ifaces:
        assert ifaces[0] in ("IFACES ['lo']", "IFACES []"), "the slot sees network interfaces: %s" % ifaces[0]
    guard.check("TCP connects to the host")


def test_udp_sendto_host(guard, victim, run):
    sid, uid = victim
    src = PY_HARNESS + (
        "PORT = %d\n"
        "def udp():\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    for _ in range(20):\n"
        "        s.sendto(b'escaped', ('127.0.0.1', PORT))\n"
        "    return 0\n"
        "attempt('udp_127', udp)\n"
        "time.sleep(0.2)\n"
    ) % guard.udp_port
    b = run(sid, src, [""])
    assert "udp_127" in results_of(b), show(b)
    time.sleep(0.3)
    guard.check("UDP datagrams to the host")  # the host socket received nothing


def test_unix_sockets_of_host(guard, victim, run, sandboxd):
    """sandboxd's own socket and a host abstract socket are out of reach."""
    sid, uid = victim
    src = PY_HARNESS + (
        "def un(addr):\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    s.settimeout(3)\n"
        "    s.connect(addr)\n"
        "    return 0\n"
        "attempt('sandboxd_socket', lambda: un(%r))\n"
        "attempt('host_abstract', lambda: un(%r))\n"
        "attempt('run_sandboxd_sock', lambda: un('/run/warmpool/sandboxd.sock'))\n"
    ) % (sandboxd.sock, guard.abstract)
    b = run(sid, src, [""], limits={"wall_ms": 15000})
    res = results_of(b)
    for name in ("sandboxd_socket", "host_abstract", "run_sandboxd_sock"):
        assert_refused(res, name, body=b)
    guard.check("unix socket connects to the host")


# ---------------------------------------------------------------- the host's files and processes


def test_read_host_secrets(guard, victim, run, sandboxd):
    sid, uid = victim
    host_shadow = sha256_file("/etc/shadow")
    paths = [
        "/etc/shadow",
        sandboxd.config,
        sandboxd.log_path,
        sandboxd.state_dir,
        os.path.join(sandboxd.state_dir, "slots"),
        os.path.join(sandboxd.state_dir, "slots", guard.sibling),
        guard.marker,
        guard.dir,
        "/proc/%d/environ" % sandboxd.pid,
        "/proc/%d/cmdline" % sandboxd.pid,
        "/root",
    ]
    src = (
        "import hashlib, json, os\n"
        "for p in %r:\n"
        "    r = {'path': p}\n"
        "    try:\n"
        "        if os.path.isdir(p):\n"
        "            r['list'] = sorted(os.listdir(p))\n"
        "        else:\n"
        "            data = open(p, 'rb').read()\n"
        "            r['sha'] = hashlib.sha256(data).hexdigest()\n"
        "            r['head'] = data[:200].decode('latin-1')\n"
        "    except OSError as e:\n"
        "        r['errno'] = e.errno\n"
        "    print(json.dumps(r))\n"
    ) % (paths,)
    b = run(sid, src, [""])
    out = b["tests"][0]["stdout"]
    got = {}
    for line in out.splitlines():
        r = json.loads(line)
        got[r["path"]] = r
    assert set(got) == set(paths), show(b)
    assert got["/etc/shadow"].get("sha") != host_shadow, "the slot read the host's /etc/shadow"
    assert sandboxd.secret not in out, "the slot read sandboxd's config: %r" % got[sandboxd.config]
    with open(guard.marker) as f:
        assert f.read().strip() not in out, "the slot read a host temp file"
    for r in got.values():
        assert guard.sibling not in r.get("list", []), "the slot sees the sibling slot's dir: %r" % r
        assert "marker.txt" not in r.get("list", []), "the slot lists a host temp dir: %r" % r
    assert "sha" not in got[sandboxd.log_path], "the slot read sandboxd's log: %r" % got[sandboxd.log_path]
    for p in ("/proc/%d/environ" % sandboxd.pid, "/proc/%d/cmdline" % sandboxd.pid):
        r = got[p]
        assert "sandboxd" not in r.get("head", "") and "--config" not in r.get("head", ""), "the slot read %s: %r" % (p, r)
    guard.check("reads of host secrets")


def test_write_host_files(guard, victim, run):
    sid, uid = victim
    target_new = os.path.join("/usr/lib", "warmpool-test-%s" % os.urandom(4).hex())
    src = PY_HARNESS + (
        "def app(p, data=b'pwned'):\n"
        "    with open(p, 'ab') as f:\n"
        "        f.write(data)\n"
        "    return 0\n"
        "def mk(p):\n"
        "    os.mkdir(p)\n"
        "    return 0\n"
        "attempt('python3', lambda: app('/usr/bin/python3'))\n"
        "attempt('passwd', lambda: app('/etc/passwd'))\n"
        "attempt('marker', lambda: app(%r))\n"
        "attempt('new_usr_lib', lambda: app(%r))\n"
        "attempt('sysrq', lambda: app('/proc/sysrq-trigger', b'h'))\n"
        "attempt('hostname', lambda: app('/proc/sys/kernel/hostname', b'pwned'))\n"
        "attempt('core_pattern', lambda: app('/proc/sys/kernel/core_pattern', b'|/tmp/x'))\n"
        "attempt('cgroup_mkdir', lambda: mk('/sys/fs/cgroup/memory/warmpool-escape'))\n"
        "attempt('cgroup2_mkdir', lambda: mk('/sys/fs/cgroup/warmpool-escape'))\n"
        "attempt('root_mkdir', lambda: mk('/warmpool-escape'))\n"
        "import glob\n"
        "procs = glob.glob('/sys/fs/cgroup/*/cgroup.procs') + glob.glob('/sys/fs/cgroup/cgroup.procs')\n"
        "for i, p in enumerate(procs[:20]):\n"
        "    attempt('cgroup_procs_%%d' %% i, lambda p=p: app(p, b'0'))\n"
    ) % (guard.marker, target_new)
    b = run(sid, src, [""])
    res = results_of(b)
    for name in res:
        assert_refused(res, name, body=b)
    assert not os.path.exists(target_new), "the slot created %s on the host" % target_new
    for p in ("/sys/fs/cgroup/memory/warmpool-escape", "/sys/fs/cgroup/warmpool-escape", "/warmpool-escape"):
        assert not os.path.exists(p), "the slot created %s on the host" % p
    guard.check("writes to host files")


def test_process_listing(guard, victim, run, sandboxd):
    sid, uid = victim
    src = (
        "import json, os\n"
        "out = []\n"
        "for p in sorted(os.listdir('/proc')):\n"
        "    if p.isdigit():\n"
        "        try:\n"
        "            cmd = open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\\0', b' ').decode()\n"
        "            uid = [l for l in open('/proc/%s/status' % p) if l.startswith('Uid:')][0].split()[1]\n"
        "        except OSError:\n"
        "            continue\n"
        "        out.append([int(p), int(uid), cmd])\n"
        "print(json.dumps(out))\n"
    )
    b = run(sid, src, [""])
    procs = json.loads(b["tests"][0]["stdout"])
    assert 1 <= len(procs) <= 5, "the slot sees %d processes (want only its own): %r" % (len(procs), procs)
    init_cmd = [c for p, _, c in procs if p == 1]
    for pid, puid, cmd in procs:
        assert puid == uid, "the slot sees a process of uid %d: %r" % (puid, procs)
        for bad in ("pytest", "sleep 600", "systemd"):
            assert bad not in cmd, "the slot sees a host process %r" % cmd
        # the slot's init and its pre-forked stubs are sandboxd forks: allowed
        assert "sandboxd" not in cmd or [cmd] == init_cmd, "the slot sees a sandboxd process that is not its init: %r" % procs
    pids = [p[0] for p in procs]
    for host_pid in (guard.child.pid, sandboxd.pid):
        assert host_pid not in pids or host_pid < 10, "host pid %d visible in the slot: %r" % (host_pid, procs)
    guard.check("process listing")


def test_kill_host_and_sibling_pids(guard, victim, run, sandboxd):
    sid, uid = victim
    targets = {"host_child": guard.child.pid, "sandboxd": sandboxd.pid, "own_init": 1}
    if guard.sib_init:
        targets["sibling_init"] = guard.sib_init
    src = PY_HARNESS + (
        "import signal\n"
        "for name, pid in %r.items():\n"
        "    attempt('kill_' + name, lambda pid=pid: os.kill(pid, signal.SIGKILL))\n"
        "for p in range(2, 32769):\n"
        "    if p != os.getpid():\n"
        "        try:\n"
        "            os.kill(p, signal.SIGKILL)\n"
        "        except OSError:\n"
        "            pass\n"
        "print('swept', flush=True)\n"
        "os.kill(-1, signal.SIGKILL)\n"
    ) % (targets,)
    b = run(sid, src, [""])
    res = results_of(b)
    for name in ("kill_host_child", "kill_sandboxd") + (("kill_sibling_init",) if guard.sib_init else ()):
        r = res.get(name)
        assert r is not None, show(b)
        # ESRCH (not in our pid namespace) — or, rarely, the same number names one of our own processes
        assert r.get("rc") == -1 or targets[name[5:]] < 64, "kill of host pid succeeded: %r" % r
    assert guard.child.poll() is None, "the test's host process was killed from inside a slot"
    hello_works(run, sid, "kill(-1) inside the slot")
    guard.check("kills of host and sibling pids")


def test_ptrace(guard, victim, run):
    sid, uid = victim
    src = PY_HARNESS + (
        "libc.ptrace.restype = ctypes.c_long\n"
        "libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]\n"
        "def attach(req, pid):\n"
        "    return libc.ptrace(req, pid, None, None)\n"
        "def attach_child(req):\n"
        "    kid = os.fork()\n"
        "    if kid == 0:\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "    rc = libc.ptrace(req, kid, None, None)\n"
        "    e = ctypes.get_errno()\n"
        "    os.kill(kid, 9)\n"
        "    ctypes.set_errno(e)\n"
        "    return rc\n"
        "attempt('traceme', lambda: libc.ptrace(0, 0, None, None))\n"
        "attempt('attach_init', lambda: attach(16, 1))\n"
        "attempt('seize_init', lambda: attach(0x4206, 1))\n"
        "attempt('attach_child', lambda: attach_child(16))\n"
        "attempt('seize_child', lambda: attach_child(0x4206))\n"
        "attempt('attach_host_child', lambda: attach(16, %d))\n"
        "attempt('attach_sibling_init', lambda: attach(16, %d))\n"
    ) % (guard.child.pid, guard.sib_init or 999999)
    b = run(sid, src, [""])
    res = results_of(b)
    for name in ("traceme", "attach_init", "seize_init", "attach_child", "seize_child"):
        assert_refused(res, name, EPERM_ENOSYS, body=b)
    for name in ("attach_host_child", "attach_sibling_init"):
        assert_refused(res, name, body=b)
    guard.check("ptrace")


def test_mount(guard, victim, run):
    sid, uid = victim
    src = PY_HARNESS + (
        "libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]\n"
        "libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]\n"
        "libc.chroot.argtypes = [ctypes.c_char_p]\n"
        "os.makedirs('/mnt/data/m', exist_ok=True)\n"
        "attempt('mount_tmpfs', lambda: libc.mount(b'none', b'/mnt/data/m', b'tmpfs', 0, None))\n"
        "attempt('mount_proc', lambda: libc.mount(b'proc', b'/mnt/data/m', b'proc', 0, None))\n"
        "attempt('mount_bind_root', lambda: libc.mount(b'/', b'/mnt/data/m', None, 4096, None))\n"
        "attempt('remount_usr_rw', lambda: libc.mount(None, b'/usr', None, 32, None))\n"
        "attempt('umount_proc', lambda: libc.umount2(b'/proc', 2))\n"
        "attempt('umount_data', lambda: libc.umount2(b'/mnt/data', 2))\n"
        "attempt('chroot', lambda: libc.chroot(b'/mnt/data'))\n"
        "attempt('pivot_root', lambda: libc.syscall(L(155), b'/mnt/data', b'/mnt/data/m'))\n"
        "attempt('fsopen', lambda: libc.syscall(L(430), b'tmpfs', L(0)))\n"
        "attempt('open_tree', lambda: libc.syscall(L(428), L(-100), b'/', L(1)))\n"
    )
    b = run(sid, src, [""])
    res = results_of(b)
    for name in ("mount_tmpfs", "mount_proc", "mount_bind_root", "remount_usr_rw", "umount_proc", "umount_data",
                 "chroot", "pivot_root", "fsopen", "open_tree"):
        assert_refused(res, name, body=b)
    hello_works(run, sid, "mount attempts")
    guard.check("mount")


def test_unshare_all_namespaces(guard, make_slot, run):
    sid, b = c_kit(make_slot, run, "unshare")
    res = results_of(b)
    names = [n for n in res if n.startswith(("unshare_", "clone_", "clone3_"))]
    assert len(names) == 33, "missing results: %s" % show(b)
    for name in names:
        # clone3 may answer ENOSYS (seccomp cannot read its flags); anything else must be refused
        assert_refused(res, name, body=b)
    guard.check("unshare/clone with namespace flags")


def test_seccomp_blocked_syscalls(guard, make_slot, run):
    sid, b = c_kit(make_slot, run, "seccomp")
    res = results_of(b)
    for name in ("keyctl", "add_key", "bpf", "perf_event_open", "io_uring_setup", "reboot", "init_module",
                 "finit_module", "delete_module", "kexec_load", "userfaultfd"):
        assert_refused(res, name, EPERM_ENOSYS, body=b)
    for name in ("socket_inet", "socket_inet_udp", "socket_inet6", "socket_netlink", "socket_packet"):
        assert_refused(res, name, body=b)
    assert res.get("socket_unix", {}).get("rc", -1) >= 0, "AF_UNIX sockets should work (runtimes need them): %r" % res.get(
        "socket_unix"
    )
    guard.check("blocked syscalls")


def test_no_privileges(guard, victim, run):
    """No capabilities, no_new_privs, a seccomp filter, the slot's uid."""
    sid, uid = victim
    src = "print(open('/proc/self/status').read())\nimport os\nprint('IDS', os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
    b = run(sid, src, [""])
    out = b["tests"][0]["stdout"]
    st = dict(l.split(":", 1) for l in out.splitlines() if ":" in l and not l.startswith("IDS"))
    st = {k.strip(): v.strip() for k, v in st.items()}
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap], 16) == 0, "%s is %s inside the slot" % (cap, st[cap])
    assert int(st["CapBnd"], 16) == 0, "bounding set not empty: CapBnd %s" % st["CapBnd"]
    assert st["NoNewPrivs"] == "1", "no_new_privs not set"
    assert st["Seccomp"] == "2", "no seccomp filter (Seccomp: %s)" % st["Seccomp"]
    assert st["Uid"].split() == [str(uid)] * 4, "uids inside the slot %r, want the slot's %d" % (st["Uid"], uid)
    assert "0" not in st["Gid"].split(), "gid 0 inside the slot: %r" % st["Gid"]
    ids = [l for l in out.splitlines() if l.startswith("IDS")][0]
    assert ids == "IDS %d %d %s []" % (uid, uid, st["Gid"].split()[0]), "ids/groups inside the slot: %s" % ids
    guard.check("privilege inspection")


def test_setuid_binaries(guard, make_slot, run, slots):
    sid, b = c_kit(make_slot, run, "setuid")
    uid = slots.info(sid)["uid"]
    out = b["tests"][0]["stdout"]
    assert "PARENT uid=%d euid=%d" % (uid, uid) in out, show(b)
    assert "CHOWN 0" not in out, "chown to root succeeded inside the slot: %s" % out
    if "EXECFAIL" in out:  # exec refused on /mnt/data (noexec would break compiled languages, but still safe)
        pass
    else:
        assert "CHILD uid=%d euid=%d" % (uid, uid) in out, "setuid copy changed the euid: %s" % out
        assert "SETUID0 0" not in out and "AFTER uid=%d euid=%d" % (uid, uid) in out, "setuid(0) worked: %s" % out
    # the host's real setuid binaries do not give root either
    src = (
        "import os, subprocess\n"
        "for cmd in (['/usr/bin/su', '-c', 'id'], ['/usr/bin/su', 'root', '-c', 'id'], ['/usr/bin/passwd', '-S'],\n"
        "            ['/usr/bin/newgrp', 'root'], ['/usr/bin/sudo', 'id']):\n"
        "    if not os.path.exists(cmd[0]):\n"
        "        print('ABSENT', cmd[0])\n"
        "        continue\n"
        "    try:\n"
        "        p = subprocess.run(cmd, input=b'root\\nroot\\n', capture_output=True, timeout=5)\n"
        "        print('RAN', cmd[0], p.returncode, p.stdout, p.stderr)\n"
        "    except Exception as e:\n"
        "        print('ERR', cmd[0], repr(e))\n"
        "print('SELF', os.getuid(), os.geteuid())\n"
    )
    sid2 = make_slot("python")
    uid2 = slots.info(sid2)["uid"]
    b = run(sid2, src, [""], limits={"wall_ms": 30000})
    out = b["tests"][0]["stdout"]
    assert "uid=0(" not in out and "euid=0" not in out, "a setuid binary gave root: %s" % out
    assert "SELF %d %d" % (uid2, uid2) in out, show(b)
    assert_no_run_processes(uid2, " (setuid binaries)")
    guard.check("setuid binaries")


# ---------------------------------------------------------------- links planted for sandboxd


def test_planted_symlinks_and_hardlinks(guard, victim, run, client):
    sid, uid = victim
    src_name = source_name("python")
    t_src = os.path.join(guard.dir, "src-target.txt")
    t_put = os.path.join(guard.dir, "put-target.txt")
    t_new = os.path.join(guard.dir, "created-through-link.txt")
    t_secret = os.path.join(guard.dir, "secret.txt")
    secret = "HOST-SECRET-%s" % os.urandom(8).hex()
    for p, text in ((t_src, "HOST ORIGINAL 1\n"), (t_put, "HOST ORIGINAL 2\n"), (t_secret, secret)):
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o644)
    watched = [t_src, t_put, t_secret, "/etc/passwd"]
    before = {p: snapshot(p) for p in watched}
    plant = (
        "import os\n"
        "def plant(name, target):\n"
        "    try:\n"
        "        os.unlink(name)\n"
        "    except FileNotFoundError:\n"
        "        pass\n"
        "    os.symlink(target, name)\n"
        "plant(%r, %r)\n"
        "plant('put.txt', %r)\n"
        "plant('new.txt', %r)\n"
        "plant('get.txt', %r)\n"
        "plant('passwd', '/etc/passwd')\n"
        "plant('dirlink', %r)\n"
        "plant('rootlink', '/')\n"
        "open('keep.txt', 'w').write('KEEP')\n"
        "os.link('keep.txt', 'hl.txt')\n"
        "open('keep2.txt', 'w').write('KEEP2')\n"
        "try:\n"
        "    os.link('/etc/passwd', 'hl-passwd')\n"
        "    print('hardlinked /etc/passwd')\n"
        "except OSError as e:\n"
        "    print('hardlink /etc/passwd:', e)\n"
        "print('planted')\n"
    ) % (src_name, t_src, t_put, t_new, t_secret, guard.dir)
    b = run(sid, plant, [""])
    assert "planted" in b["tests"][0]["stdout"], show(b)
    base = "/v1/slots/%s/files/" % sid

    # 1. the listing does not follow links
    files = {f["name"]: f for f in client.get(base.rstrip("/")).body["files"]}
    for name in ("get.txt", "passwd", "dirlink", "rootlink", src_name):
        assert files[name]["type"] == "other", "a symlink listed as %r (followed?): %r" % (files[name]["type"], files[name])

    # 2. GET never returns what a link points at
    for name in ("get.txt", "passwd", "dirlink", "rootlink"):
        r = client.get(base + qname(name))
        assert r.status == 404, "GET of a planted symlink %s: %r" % (name, r)
        assert secret.encode() not in r.raw and b"root:x:0:0" not in r.raw, r

    # 3. sandboxd writing the source replaces the link
    b = run(sid, "print('NEW SOURCE')\n", [("", "NEW SOURCE\n")])
    assert b["verdict"] == "accepted", "the source must replace a planted symlink: %s" % show(b)

    # 4. PUT replaces links, never writes through them
    for name, content in (("put.txt", b"PUT 1"), ("new.txt", b"PUT 2"), ("passwd", b"PUT 3"), ("dirlink", b"PUT 4"),
                          ("hl.txt", b"PUT 5")):
        r = client.put(base + qname(name), content)
        assert r.status == 201, "PUT over a planted link %s: %r" % (name, r)
        g = client.get(base + qname(name))
        assert g.status == 200 and g.body == content, "after PUT %s: %r" % (name, g)
    assert client.get(base + "keep.txt").body == b"KEEP", "PUT wrote through a hard link into keep.txt"

    # 5. a hard link as the source name
    b = run(sid, "import os\nos.unlink(%r)\nos.link('keep2.txt', %r)\n" % (src_name, src_name))
    b = run(sid, "print('SOURCE 3')\n", [("", "SOURCE 3\n")])
    assert b["verdict"] == "accepted", show(b)
    assert client.get(base + "keep2.txt").body == b"KEEP2", "writing the source wrote through a hard link"

    # inside the slot, the names are regular files now
    b = run(
        sid,
        "import os\nfor n in ('put.txt', 'new.txt', 'passwd', 'dirlink', 'hl.txt', %r):\n"
        "    print(n, os.path.islink(n), os.stat(n).st_nlink, os.stat(n).st_uid == os.getuid())\n" % src_name,
    )
    for line in b["tests"][0]["stdout"].splitlines():
        name, islink, nlink, owned = line.split()
        assert islink == "False" and nlink == "1", "%s still a link after sandboxd wrote it: %s" % (name, line)
        assert owned == "True", "%s not owned by the slot's uid: %s" % (name, line)

    for p in watched:
        assert snapshot(p) == before[p], "host file %s changed through a planted link" % p
    assert not os.path.exists(t_new), "sandboxd created %s on the host through a dangling symlink" % t_new
    guard.check("planted links")


def test_planted_fifo(guard, victim, run, client):
    """A FIFO under a name sandboxd opens must not block the daemon."""
    sid, uid = victim
    src_name = source_name("python")
    run(sid, "import os\nfor n in (%r, 'put.txt', 'get.txt'):\n    os.unlink(n) if os.path.lexists(n) else None\n    os.mkfifo(n)\n" % src_name)
    base = "/v1/slots/%s/files/" % sid
    t0 = time.monotonic()
    r = client.get(base + "get.txt", timeout=15)
    assert r.status == 404, "GET of a FIFO: %r" % (r,)
    r = client.put(base + "put.txt", b"data", timeout=15)
    assert r.status == 201 and client.get(base + "put.txt").body == b"data", r
    b = run(sid, HELLO, [("", "hello\n")], timeout=15)
    assert b["verdict"] == "accepted", show(b)
    assert time.monotonic() - t0 < 15
    guard.check("planted FIFOs")


# ---------------------------------------------------------------- between slots


def test_ipc_between_slots(guard, make_slot, client, run):
    """Abstract unix sockets, /dev/shm files and sockets, SysV shared memory:
    slot A's are invisible to slot B."""
    a = make_slot("python")
    bslot = make_slot("python")
    tag = os.urandom(6).hex()
    key = int(tag[:6], 16)
    prog_a = PY_HARNESS + (
        "TAG = %r\nKEY = %d\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "s.bind(('\\0wp-cross-' + TAG))\n"
        "s.listen(5)\n"
        "s.settimeout(6)\n"
        "p = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "p.bind('/dev/shm/wp-sock-' + TAG)\n"
        "p.listen(5)\n"
        "p.setblocking(False)\n"
        "open('/dev/shm/wp-cross-' + TAG, 'w').write('A')\n"
        "open('/tmp/wp-cross-' + TAG, 'w').write('A')\n"
        "print('SHMID', libc.shmget(KEY, 4096, 0o1666))\n"
        "open('/mnt/data/ready', 'w').write('1')\n"
        "try:\n"
        "    c, _ = s.accept()\n"
        "    print('CONNECTED')\n"
        "except socket.timeout:\n"
        "    print('NOCONN')\n"
        "try:\n"
        "    p.accept()\n"
        "    print('PATH-CONNECTED')\n"
        "except BlockingIOError:\n"
        "    pass\n"
    ) % (tag, key)
    result = {}

    def go():
        result["r"] = run_raw(client, a, prog_a, limits={"wall_ms": 20000}, timeout=40)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    ready = False
    while time.monotonic() < deadline and not ready:
        r = client.get("/v1/slots/%s/files/ready" % a)
        if r.status == 200:
            ready = True
        elif r.status == 409:  # files API refused while running: fall back on time
            time.sleep(2)
            ready = True
        else:
            time.sleep(0.05)
    assert ready, "slot A never got ready"
    prog_b = PY_HARNESS + (
        "TAG = %r\nKEY = %d\n"
        "def un(addr):\n"
        "    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    c.settimeout(2)\n"
        "    c.connect(addr)\n"
        "    return 0\n"
        "attempt('abstract', lambda: un('\\0wp-cross-' + TAG))\n"
        "attempt('shm_socket', lambda: un('/dev/shm/wp-sock-' + TAG))\n"
        "attempt('shm_file', lambda: len(open('/dev/shm/wp-cross-' + TAG).read()) and 0)\n"
        "attempt('tmp_file', lambda: len(open('/tmp/wp-cross-' + TAG).read()) and 0)\n"
        "attempt('sysv_shm', lambda: libc.shmget(KEY, 0, 0))\n"
        "print('LISTS', os.listdir('/dev/shm'), os.listdir('/tmp'))\n"
    ) % (tag, key)
    b = run(bslot, prog_b, [""])
    res = results_of(b)
    for name in ("abstract", "shm_socket", "shm_file", "tmp_file", "sysv_shm"):
        assert_refused(res, name, body=b)
    assert tag not in b["tests"][0]["stdout"].split("LISTS", 1)[-1], "slot B sees slot A's files: %s" % show(b)
    t.join(40)
    assert not t.is_alive() and "r" in result, "slot A's run did not return"
    ra = result["r"]
    assert ra.status == 200, ra
    out_a = ra.body["tests"][0]["stdout"]
    assert "NOCONN" in out_a and "CONNECTED\n" not in out_a.replace("NOCONN", ""), "slot A got a connection: %r" % out_a
    assert "PATH-CONNECTED" not in out_a, out_a
    guard.check("IPC between slots")


def test_nothing_survives_into_next_slot(guard, client, slots, run, sandboxd):
    tag = "wp-left-%s" % os.urandom(6).hex()
    dirs = ["/mnt/data", "/tmp", "/dev/shm", "/var/tmp", "/run/lock", "/dev/mqueue", "/home", "/", "/run", "/var/lock"]
    first = slots("python")
    first_uid = slots.info(first)["uid"]
    prog = (
        "import os\n"
        "for d in %r:\n"
        "    try:\n"
        "        open(os.path.join(d, %r), 'w').write('secret')\n"
        "        print('WROTE', d)\n"
        "    except OSError as e:\n"
        "        print('NO', d, e.errno)\n"
    ) % (dirs, tag)
    b = run(first, prog, [""])
    wrote = [l.split()[1] for l in b["tests"][0]["stdout"].splitlines() if l.startswith("WROTE")]
    assert {"/mnt/data", "/tmp", "/dev/shm"} <= set(wrote), "the slot's own dirs should be writable: %s" % show(b)
    for d in wrote:  # none of it may land on the host
        if d != "/mnt/data":
            assert not os.path.exists(os.path.join(d, tag)), "the slot wrote %s/%s on the HOST" % (d, tag)
    # destroy, and check from the host that it is all gone
    r = client.delete("/v1/slots/%s" % first)
    assert r.status == 202, r
    wait_gone(client, [first])
    slots.ids.remove(first)
    assert not os.path.exists(os.path.join(sandboxd.state_dir, "slots", first)), "slot dir left in the state dir"
    assert not host_mounts_under(os.path.join(sandboxd.state_dir, "slots", first)), "mounts of a destroyed slot left"
    assert not cgroup_dirs_named("slot-%s" % first, (sandboxd.pid,)), "cgroup of a destroyed slot left"
    left = host_processes(first_uid, first_uid + 1)
    assert not left, "processes of a destroyed slot left: %r" % left
    # a new slot (most likely with the same uid) sees none of it
    second = slots("python")
    check = (
        "import os\n"
        "for d in %r:\n"
        "    print(d, os.path.exists(os.path.join(d, %r)))\n"
    ) % (dirs, tag)
    b = run(second, check, [""])
    leaked = [l for l in b["tests"][0]["stdout"].splitlines() if l.endswith("True")]
    assert not leaked, "files of a destroyed slot visible in the next (uid %d → %d): %r" % (
        first_uid,
        slots.info(second)["uid"],
        leaked,
    )
    guard.check("a slot following a destroyed one")
