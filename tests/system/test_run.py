"""`make run`, the README's quick start, as a user runs it: in a terminal
(a real pty), the README's /execute example, then Ctrl-C; and the case of
one daemon dying under it. Either way nothing may be left behind: no
daemon, no slot process, no mount, no cgroup, no socket.

It uses the shipped configs as they are (poold on 127.0.0.1:8080, sandboxd
on /run/warmpool/sandboxd.sock, uids 300000+, cgroup `warmpool`), so it
skips, loudly, when something else already holds port 8080.
"""

import os
import pty
import re
import select
import signal
import socket
import time

import pytest

import wpdaemons

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
URL = "http://127.0.0.1:8080"
SOCK = "/run/warmpool/sandboxd.sock"
CONFIGS = ("config/sandboxd.conf", "config/poold.conf")


def _port_taken():
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", 8080)) == 0


CLIENT = wpdaemons.TCPClient(URL)


def _ready():
    try:
        return CLIENT.get("/readyz", timeout=1).status == 200
    except OSError:
        return False


def _daemons():
    """pid → command line of the daemons make run starts."""
    out = {}
    for d in os.listdir("/proc"):
        cmd = wpdaemons.proc_cmdline(d) if d.isdigit() else ""
        if any(c in cmd for c in CONFIGS) and ("bin/sandboxd" in cmd or "bin/poold" in cmd):
            out[int(d)] = cmd
    return out


def _slot_uid_processes():
    return [p["pid"] for p in wpdaemons.host_processes(300000, 300000 + 4096)]


def _leftovers():
    return {"daemons": _daemons(), "slot processes": _slot_uid_processes(),
            "cgroups": wpdaemons.cgroup_dirs_named("warmpool"), "mounts": wpdaemons.host_mounts_under("/run/warmpool"),
            "socket": os.path.exists(SOCK)}


def _nothing_left():
    left = _leftovers()
    return not any(left.values()), left


class _MakeRun:
    """`make run` on a pty, as in a terminal; its output kept."""

    def __init__(self):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(REPO)
            # the suite's own flags: under `make SANITIZE=… test`, a plain
            # `make run` would rebuild the daemons unsanitized mid-suite
            san = os.environ.get("WARMPOOL_SANITIZE")
            os.execvp("make", ["make", "--no-print-directory", "run"] + (["SANITIZE=" + san] if san else []))
        self.out = b""
        self.status = None

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    d = os.read(self.fd, 65536)
                except OSError:
                    return
                if not d:
                    return
                self.out += d

    def wait_ready(self, timeout=120):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.3)
            if _ready():
                return True
            if self.exited():
                return False
        return False

    def exited(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = st
        return self.status is not None

    def wait_exit(self, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.exited():
            self.pump(0.2)
        self.pump(0.2)
        return self.exited()

    def text(self):
        return self.out.decode(errors="replace")[-6000:]

    def processes(self):
        """For a failure message: make's session (make, deploy/run.sh, sleep)
        and the daemons, each with its state, what it waits in and its
        signal masks, so that a hang says where it is."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                with open("/proc/%s/wchan" % d) as f:
                    wchan = f.read()
                with open("/proc/%s/status" % d) as f:
                    sig = " ".join(l.split()[0] + l.split()[1] for l in f if l.startswith(("SigBlk", "SigIgn", "SigCgt")))
            except OSError:
                continue
            if int(st[3]) == self.pid or "bin/poold" in cmd or "bin/sandboxd" in cmd:
                out.append("pid %s ppid %s pgrp %s state %s wchan %s %s  %s" % (d, st[1], st[2], st[0], wchan, sig, cmd))
        return "\n".join(out)

    def kill(self):
        if not self.exited():
            os.killpg(self.pid, signal.SIGKILL)
            self.wait_exit(10)
        os.close(self.fd)


@pytest.fixture
def make_run():
    if _port_taken():
        pytest.skip("SKIPPED: something already listens on 127.0.0.1:8080, where make run puts poold")
    ok, left = _nothing_left()
    assert ok, "leftovers of an earlier make run before the test: %r" % left
    m = _MakeRun()
    yield m
    m.kill()
    for pid in _daemons():  # never leave a daemon of ours running
        os.kill(pid, signal.SIGTERM)
    wpdaemons.wait_for(lambda: not _daemons(), 30)


def test_make_run_quick_start_and_ctrl_c(make_run):
    """The README's two steps: `make run`, the /execute example answers
    accepted; Ctrl-C stops both daemons, each with one SIGTERM (a second
    signal makes them exit at once, and sandboxd would leave its cgroups),
    and nothing is left."""
    assert make_run.wait_ready(), "make run never became ready:\n" + make_run.text()
    r = CLIENT.post("/execute", {"language": "python", "user_id": "student_1",
                                 "code": "print(sum(map(int, input().split())))",
                                 "test_cases": [{"input": "1 2\n", "expected_output": "3\n"}]}, timeout=60)
    assert r.status == 200 and r.body["summary"]["all_passed"], r
    # an agent's session on the shipped default pool: state kept between calls
    q = "/code/execute?identifier=agent-1&api-version=2024-02-02-preview"
    for code, out in (("x = 41", ""), ("print(x + 1)", "42\n")):
        r = CLIENT.post(q, {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}},
                        timeout=60)
        assert r.status == 200 and r.body["properties"]["status"] == "Success", r
        assert r.body["properties"]["stdout"] == out, r
    r = CLIENT.delete("/session?identifier=agent-1&api-version=2024-02-02-preview")
    assert r.status in (200, 204), r
    # the shipped config starts clean on this machine: no error in the log
    # (e.g. a directory it names that it could not make)
    make_run.pump(0.3)
    errors = [l for l in make_run.text().splitlines() if re.search(r"Z error ", l)]
    assert not errors, "make run logged errors:\n" + "\n".join(errors)
    os.write(make_run.fd, b"\x03")  # Ctrl-C, as the terminal sends it
    assert make_run.wait_exit(60), "make run still runs 60 s after Ctrl-C:\n%s\n--- processes ---\n%s" % (
        make_run.text(), make_run.processes())
    text = make_run.text()
    assert "second signal" not in text, "a daemon got two signals from one Ctrl-C:\n" + text
    assert "poold: stopped" in text and "sandboxd: stopped" in text, text
    ok, left = _nothing_left()
    assert ok, "left behind after Ctrl-C: %r\n%s" % (left, text)


def test_make_run_stops_sandboxd_when_poold_dies(make_run):
    """kill -9 of poold: make run stops sandboxd too (which removes its
    slots) and exits non-zero, instead of leaving sandboxd running alone."""
    assert make_run.wait_ready(), "make run never became ready:\n" + make_run.text()
    pools = [pid for pid, cmd in _daemons().items() if "bin/poold" in cmd]
    assert len(pools) == 1, _daemons()
    os.kill(pools[0], signal.SIGKILL)
    assert make_run.wait_exit(60), "make run still runs 60 s after poold died:\n" + make_run.text()
    assert os.WIFEXITED(make_run.status) and os.WEXITSTATUS(make_run.status) != 0, make_run.status
    assert wpdaemons.wait_for(lambda: _nothing_left()[0], 10), \
        "left behind after poold died: %r\n%s" % (_leftovers(), make_run.text())
