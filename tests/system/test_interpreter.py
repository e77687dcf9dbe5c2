"""Stateful interpreter slots (issue 4, sandboxd side): POST /v1/slots with
"interpreter": true, POST /v1/slots/{id}/exec (docs/sandboxd-api.md).

This module starts a sandboxd of its own (uid_base 340000, its own cgroup,
state dir and socket), so that it can run beside the main suite's daemon,
and checks at the end that it left nothing behind. Each test asserts what a
code-interpreter user would check: state persists, the last expression is
shown, errors keep the state, timeouts and crashes restart a fresh
interpreter with the files kept, output is captured (child processes too),
bounded and sanitised, and the slot's isolation holds inside the
interpreter.

Standard library only. Run as root: /usr/bin/python3 -m pytest tests/system -k interpreter
"""

import fcntl
import os
import statistics
import threading
import time

import pytest

import wpdaemons as wp
from conftest import missing_runtime, own_sandboxd

UID_BASE = 340000
CAPACITY = 16
RUNTIMES = os.path.join(wp.REPO, "sandboxd", "runtimes")
STATE_LOST = "state (variables, functions, imports, working directory) was lost"


# --------------------------------------------------------------------------
# fixtures: one daemon for the module, slots per test


@pytest.fixture(scope="module")
def uid_range_lock():
    """Two runs of this module on one host (two checkouts, two engineers)
    would share the uid range: the second would kill the first's slots when
    it cleans up. They take turns."""
    with open("/tmp/warmpool-test-uids-%d.lock" % UID_BASE, "w") as f:
        deadline = time.monotonic() + 900
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail("uids %d+ stay taken by another run of this module" % UID_BASE, pytrace=False)
                time.sleep(0.5)
        yield
        fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def kd(uid_range_lock):
    yield from own_sandboxd("INTERPRETER TESTS", "warmpool-kernel-", UID_BASE, CAPACITY,
                            cgroup_name="warmpool-kernel-test-%d" % os.getpid(), log_level="debug",
                            extra="runtimes_dir = %s" % RUNTIMES)


@pytest.fixture(scope="module")
def kc(kd):
    return kd.client()


@pytest.fixture(scope="module")
def langs(kc):
    r = kc.get("/v1/languages")
    assert r.status == 200, r
    return {l["name"]: l for l in r.body["languages"]}


def need(langs, lang):
    """A broken interpreter fails the tests (conftest.missing_runtime: skipped
    only for a language listed in WARMPOOL_SKIP_LANGUAGES)."""
    l = langs.get(lang)
    if not l or not l.get("available"):
        missing_runtime(lang, "sandboxd says it is not available: %r" % (l,))
    if not l.get("interpreter"):
        missing_runtime(lang, "sandboxd says it has no usable interpreter: %r" % (l,))


class Kernels:
    def __init__(self, client, langs):
        self.c = client
        self.langs = langs
        self.ids = []

    def __call__(self, lang="python", interpreter=True):
        need(self.langs, lang)
        r = self.c.post("/v1/slots", {"language": lang, "wait": True, "interpreter": interpreter}, timeout=60)
        assert r.status == 201, "create %s interpreter slot: %r" % (lang, r)
        s = r.body["slots"][0]
        assert s["state"] == "ready" and s["interpreter"] is interpreter, r
        self.ids.append(s["id"])
        return s["id"]

    def exec_raw(self, sid, code, **kw):
        body = dict(kw, code=code)
        return self.c.post("/v1/slots/%s/exec" % sid, body, timeout=60)

    def exec(self, sid, code, status="ok", **kw):
        r = self.exec_raw(sid, code, **kw)
        assert r.status == 200, "exec %r: %r" % (code, r)
        b = r.body
        for k in ("status", "stdout", "stderr", "result", "wall_ms", "state_lost", "stdout_truncated",
                  "stderr_truncated"):
            assert k in b, "answer lacks %s: %r" % (k, r)
        if status is not None:
            assert b["status"] == status, "exec %r: want %s, got %r" % (code, status, r)
        return b

    def cleanup(self):
        for sid in self.ids:
            self.c.delete("/v1/slots/%s" % sid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(self.c.get("/v1/slots/%s" % i).status != 404 for i in self.ids):
            time.sleep(0.05)


@pytest.fixture
def k(kc, langs):
    ks = Kernels(kc, langs)
    yield ks
    ks.cleanup()


def host_procs_with(kd, text):
    return [p for p in kd.slot_processes() if text in p["cmdline"]]


# --------------------------------------------------------------------------
# the API


def test_languages_say_which_have_an_interpreter(langs):
    need(langs, "python")
    assert langs["python"]["interpreter"] is True
    for name in ("c", "cpp", "java"):
        if name in langs:
            assert langs[name]["interpreter"] is False, langs[name]


def test_create_refuses_a_language_without_interpreter(kc, langs):
    lang = next((n for n in ("c", "cpp", "java") if n in langs and langs[n]["available"]), None)
    if lang is None:
        missing_runtime("c", "no language without an interpreter (c, cpp, java) is available: %r" % (langs,))
    r = kc.post("/v1/slots", {"language": lang, "wait": True, "interpreter": True})
    assert r.status == 422 and r.error_code() == "NoInterpreter", r
    r = kc.post("/v1/slots", {"language": "python", "interpreter": "yes"})
    assert r.status == 400 and r.error_code() == "BadRequest", r


def test_exec_without_interpreter_and_bad_bodies(k):
    plain = k("python", interpreter=False)
    r = k.exec_raw(plain, "1")
    assert r.status == 409 and r.error_code() == "NoInterpreter", r
    sid = k()
    for body in ({}, {"code": 1}, {"code": "1", "timeout_ms": 0}, {"code": "1", "timeout_ms": 60001},
                 {"code": "1", "max_output": (16 << 20) + 1}, {"code": "1", "extra": True}):
        r = k.c.post("/v1/slots/%s/exec" % sid, body)
        assert r.status == 400 and r.error_code() == "BadRequest", (body, r)
    r = k.c.get("/v1/slots/%s/exec" % sid)
    assert r.status == 405, r
    r = k.c.post("/v1/slots/0000000000000000/exec", {"code": "1"})
    assert r.status == 404, r
    # the slot is still fine after all that
    assert k.exec(sid, "40 + 2")["result"] == "42"
    info = k.c.get("/v1/slots/%s" % sid).body
    assert info["interpreter"] is True and info["execs"] == 1, info


def test_one_thing_at_a_time(k):
    sid = k()
    out = {}

    def slow():
        out["r"] = k.exec_raw(sid, "import time; time.sleep(1.0); 'slow'")

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 5
    while k.c.get("/v1/slots/%s" % sid).body["state"] != "busy" and time.monotonic() < deadline:
        time.sleep(0.01)
    r = k.exec_raw(sid, "1")
    assert r.status == 409 and r.error_code() == "SlotBusy", r
    r = k.c.post("/v1/slots/%s/run" % sid, {"source": "print(1)", "tests": [{"stdin": ""}]})
    assert r.status == 409 and r.error_code() == "SlotBusy", r
    t.join()
    assert out["r"].status == 200 and out["r"].body["result"] == "'slow'", out["r"]


# --------------------------------------------------------------------------
# Python


def test_python_state_persists(k):
    sid = k()
    assert k.exec(sid, "x = 21\ndef double(v):\n    return v * 2\nimport json")["result"] is None
    assert k.exec(sid, "double(x)")["result"] == "42"
    assert k.exec(sid, "json.dumps({'a': [1, 2]})")["result"] == "'{\"a\": [1, 2]}'"
    b = k.exec(sid, "import os\nos.chdir('/tmp')\nopen('/mnt/data/f.txt', 'w').write('kept')\nprint('hi')")
    assert b["stdout"] == "hi\n" and b["result"] is None and b["stderr"] == "", b
    assert k.exec(sid, "os.getcwd()")["result"] == "'/tmp'"
    assert k.exec(sid, "open('/mnt/data/f.txt').read()")["result"] == "'kept'"
    # the files API sees what the interpreter wrote
    r = k.c.get("/v1/slots/%s/files/f.txt" % sid)
    assert r.status == 200 and r.raw == b"kept", r


def test_python_results_like_a_notebook(k):
    sid = k()
    assert k.exec(sid, "'a' + 'b'")["result"] == "'ab'"
    assert k.exec(sid, "[1, None, {'k': 2.5}]")["result"] == "[1, None, {'k': 2.5}]"
    assert k.exec(sid, "None")["result"] is None
    assert k.exec(sid, "y = 3")["result"] is None
    assert k.exec(sid, "print('p')")["result"] is None
    assert k.exec(sid, "for i in range(2):\n    pass")["result"] is None
    b = k.exec(sid, "print('out')\n7 * 6")
    assert b["stdout"] == "out\n" and b["result"] == "42", b
    # top-level await, as in a notebook
    assert k.exec(sid, "import asyncio\nawait asyncio.sleep(0.01)\n5")["result"] == "5"
    # a forked child that falls off the end of the cell ends there
    b = k.exec(sid, "import os\npid = os.fork()\nif pid == 0:\n    print('child')\nelse:\n    os.waitpid(pid, 0)\n"
                    "    print('parent')")
    assert sorted(b["stdout"].split()) == ["child", "parent"], b
    assert k.exec(sid, "'still one kernel'")["result"] == "'still one kernel'"


def test_python_exception_keeps_state(k):
    sid = k()
    k.exec(sid, "kept = 'yes'")
    b = k.exec(sid, "def f():\n    return 1 / 0\nprint('before')\nf()", status="error")
    assert b["stdout"] == "before\n" and b["result"] is None, b
    err = b["stderr"]
    assert err.startswith("Traceback (most recent call last):"), err
    assert "ZeroDivisionError: division by zero" in err and "return 1 / 0" in err, err
    assert "pykernel" not in err and "/opt/warmpool" not in err, "driver frames leaked: %r" % err
    assert b["state_lost"] is False
    b = k.exec(sid, "1 +", status="error")
    assert "SyntaxError" in b["stderr"] and "pykernel" not in b["stderr"], b
    assert k.exec(sid, "kept")["result"] == "'yes'"
    # sys.exit is an error unless it says success; the kernel lives on
    assert "SystemExit: 3" in k.exec(sid, "import sys; sys.exit(3)", status="error")["stderr"]
    k.exec(sid, "sys.exit(0)", status="ok")
    assert k.exec(sid, "kept")["result"] == "'yes'"


def test_python_timeout_restarts_fresh_and_keeps_files(k):
    sid = k()
    k.exec(sid, "v = 1\nopen('/mnt/data/keep.txt', 'w').write('x')")
    t = time.monotonic()
    b = k.exec(sid, "import time\nprint('started', flush=True)\ntime.sleep(30)", status="timeout", timeout_ms=300)
    took = time.monotonic() - t
    assert b["state_lost"] is True and b["result"] is None, b
    assert b["stdout"] == "started\n", "output printed before the timeout is kept: %r" % b
    assert "timed out after 300 ms" in b["stderr"] and STATE_LOST in b["stderr"], b
    assert 280 <= b["wall_ms"] < 2000 and took < 10, (b, took)
    b = k.exec(sid, "'v' in globals()")
    assert b["result"] == "False" and b["state_lost"] is False, b
    assert k.exec(sid, "open('/mnt/data/keep.txt').read()")["result"] == "'x'"


def test_python_crashes_restart_fresh(k):
    sid = k()
    k.exec(sid, "v = 1")
    b = k.exec(sid, "import os\nprint('bye', flush=True)\nos._exit(3)", status="crashed")
    assert b["state_lost"] and b["stdout"] == "bye\n" and "exited with status 3" in b["stderr"], b
    assert STATE_LOST in b["stderr"], b
    assert k.exec(sid, "'v' in globals()")["result"] == "False"
    b = k.exec(sid, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", status="crashed")
    assert "signal 11" in b["stderr"], b
    assert k.exec(sid, "1 + 1")["result"] == "2"


def test_python_memory_bomb_is_a_crash(k):
    sid = k()
    b = k.exec(sid, "a = []\nwhile True:\n    a.append(bytearray(16 << 20))", status=None, timeout_ms=20000)
    assert b["status"] in ("crashed", "error"), b
    if b["status"] == "crashed":
        assert "out of memory" in b["stderr"] and b["state_lost"], b
    else:  # the allocation failed before the OOM killer came
        assert "MemoryError" in b["stderr"], b
    assert k.exec(sid, "sum(range(10))")["result"] == "45"


def test_python_interpreter_death_between_execs_is_told(k):
    sid = k()
    k.exec(sid, "v = 1\nimport os, threading, time\n"
                "threading.Thread(target=lambda: (time.sleep(0.2), os._exit(5)), daemon=True).start()")
    time.sleep(0.8)
    b = k.exec(sid, "'v' in globals()")
    assert b["result"] == "False" and b["state_lost"] is True, b
    assert "exited with status 5 after the previous execution" in b["stderr"], b
    b = k.exec(sid, "2")
    assert b["state_lost"] is False and b["stderr"] == "", b


def test_python_output_of_child_processes_is_captured(k):
    sid = k()
    b = k.exec(sid, "import os, subprocess, sys\nos.system('echo from-shell')\n"
                    "subprocess.run(['/bin/sh', '-c', 'echo to-stderr >&2'])\nprint('end')")
    assert b["stdout"] == "from-shell\nend\n", b
    assert b["stderr"] == "to-stderr\n", b


def test_python_large_output_is_truncated(k):
    sid = k()
    b = k.exec(sid, "import sys\nsys.stdout.write('x' * (3 << 20))\nsys.stderr.write('e' * 5000)", max_output=1 << 20)
    assert len(b["stdout"]) == 1 << 20 and b["stdout_truncated"] is True, (len(b["stdout"]), b["stdout_truncated"])
    assert b["stderr"] == "e" * 5000 and b["stderr_truncated"] is False
    b = k.exec(sid, "'y' * 100", max_output=10)
    assert len(b["result"].encode()) <= 10, b
    b = k.exec(sid, "print('small')", max_output=0)
    assert b["stdout"] == "" and b["stdout_truncated"] is True, b


def test_python_binary_output_is_sanitised(k):
    sid = k()
    b = k.exec(sid, "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe\\x00 \\xe2\\x82 end')\n"
                    "sys.stdout.flush()\nclass R:\n    def __repr__(self):\n        return '\\udc80 lone'\nR()")
    assert b["stdout"] == "ok \ufffd\ufffd\x00 \ufffd\ufffd end", repr(b["stdout"])
    assert b["result"].endswith(" lone"), b


def test_two_slots_never_share(k):
    a, b = k(), k()
    k.exec(a, "secret = 'A'\nopen('/mnt/data/a.txt', 'w').write('A')")
    assert k.exec(b, "'secret' in globals()")["result"] == "False"
    assert k.exec(b, "import os; os.path.exists('/mnt/data/a.txt')")["result"] == "False"
    assert k.exec(b, "import os; len([p for p in os.listdir('/proc') if p.isdigit()]) < 10")["result"] == "True"
    assert k.exec(a, "secret")["result"] == "'A'"


def test_background_processes_are_bounded_and_die_with_the_kernel(kd, k):
    sid = k()
    marker = "1234.%d" % os.getpid()
    k.exec(sid, "import subprocess\np = subprocess.Popen(['/bin/sleep', '%s'], start_new_session=True)\n"
                "q = subprocess.Popen(['/bin/sh', '-c', '/bin/sleep %s & exit 0'])" % (marker, marker))
    # documented: they live on between executions, in the kernel group
    assert wp.wait_for(lambda: len(host_procs_with(kd, marker)) == 2, 3), kd.slot_processes()
    assert k.exec(sid, "p.poll() is None")["result"] == "True"
    b = k.exec(sid, "import time; time.sleep(10)", status="timeout", timeout_ms=200)
    assert b["state_lost"], b
    assert wp.wait_for(lambda: not host_procs_with(kd, marker), 3), host_procs_with(kd, marker)
    # a fork bomb in the background is held by the kernel group's pids limit
    k.exec(sid, "import os\nif os.fork() == 0:\n    while True:\n        try:\n            os.fork()\n"
                "        except OSError:\n            pass")
    time.sleep(0.5)
    n = len(kd.slot_processes())
    assert n <= 64 + 8, "the fork bomb passed the kernel group's pids limit: %d processes" % n
    # the slot still works: the interpreter, and a judged run beside it
    assert k.exec(sid, "6 * 7")["result"] == "42"
    r = k.c.post("/v1/slots/%s/run" % sid, {"source": "print('run ok')", "tests": [{"expected": "run ok\n"}]})
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    k.exec(sid, "import time; time.sleep(10)", status="timeout", timeout_ms=100)
    assert wp.wait_for(lambda: len(kd.slot_processes()) < 10, 5), kd.slot_processes()


def test_a_judged_run_does_not_touch_the_interpreter(k):
    sid = k()
    k.exec(sid, "state = 'alive'")
    src = "import subprocess\nsubprocess.Popen(['/bin/sleep', '30'])\nprint(input())"
    r = k.c.post("/v1/slots/%s/run" % sid, {"source": src, "tests": [{"stdin": "x\n", "expected": "x\n"}]})
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    b = k.exec(sid, "state")
    assert b["result"] == "'alive'" and b["state_lost"] is False, b


def test_python_sandbox_holds_inside_the_interpreter(k):
    sid = k()
    b = k.exec(sid, "import os\n(os.getuid(), open('/proc/self/status').read().count('NoNewPrivs:\\t1'),"
                    " 'Seccomp:\\t2' in open('/proc/self/status').read(), open('/proc/self/cgroup').read())")
    uid, nnp, seccomp, cg = eval(b["result"])
    assert UID_BASE <= uid < UID_BASE + CAPACITY and nnp == 1 and seccomp, b
    assert "kernel" in cg, "the interpreter is not in the kernel group: %r" % cg
    b = k.exec(sid, "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                    "s.settimeout(2)\ns.connect(('1.1.1.1', 53))", status="error")
    assert "Error" in b["stderr"], b
    b = k.exec(sid, "open('/etc/shadow').read()", status="error")
    assert "FileNotFoundError" in b["stderr"] or "PermissionError" in b["stderr"], b
    b = k.exec(sid, "open('/opt/warmpool/pykernel.py', 'a')", status="error")
    assert "Read-only file system" in b["stderr"] or "PermissionError" in b["stderr"], b
    b = k.exec(sid, "import os\nos.kill(1, 9)\nos.getppid()", status=None)
    assert k.exec(sid, "'alive'")["result"] == "'alive'"


def test_protocol_forgery_is_contained(k):
    """The code owns its interpreter, so it can write on the protocol pipe:
    at worst it lies about its own execution; anything malformed is a crash
    and a fresh start, never a confused sandboxd."""
    sid = k()
    b = k.exec(sid, "import os\nos.write(4, b'not json\\n')\nimport time; time.sleep(5)", status="crashed")
    assert "broke its protocol" in b["stderr"] and b["state_lost"], b
    b = k.exec(sid, "import os\nos.write(4, b'x' * (200 << 10))", status="crashed", max_output=0)
    assert "too long" in b["stderr"], b
    # a forged reply answers this execution; the real one, coming after it,
    # is a protocol error: the next execution is told the state was lost
    b = k.exec(sid, "v = 1\nimport os\nos.write(4, b'{\"status\": \"ok\", \"result\": \"forged\"}\\n')\n"
                    "import time; time.sleep(0.2)")
    assert b["result"] == "forged", b
    time.sleep(0.5)
    b = k.exec(sid, "'v' in globals()")
    assert b["result"] == "False" and b["state_lost"] is True, b
    assert k.exec(sid, "3 * 3")["result"] == "9"


def test_first_exec_is_as_fast_as_the_next(k):
    sid = k()
    t = time.monotonic()
    b = k.exec(sid, "1 + 1")
    first = (time.monotonic() - t) * 1000
    assert b["result"] == "2"
    assert first < 100, "first exec took %.1f ms: the interpreter was not pre-started" % first
    times = []
    for _ in range(50):
        t = time.monotonic()
        k.exec(sid, "print(1)")
        times.append((time.monotonic() - t) * 1000)
    p50 = statistics.median(times)
    print("\nfirst exec %.2f ms, print(1) round trip p50 %.2f ms, max %.2f ms" % (first, p50, max(times)))
    assert first < max(100, 20 * p50)


# --------------------------------------------------------------------------
# JavaScript


def test_js_state_results_and_errors(k):
    sid = k("javascript")
    t = time.monotonic()
    assert k.exec(sid, "1 + 1")["result"] == "2"
    assert (time.monotonic() - t) < 0.1, "first JS exec was slow: the interpreter was not pre-started"
    assert k.exec(sid, "let n = 20; const m = 2; var v = 'var'; function f(a) { return a + 1 }")["result"] is None
    assert k.exec(sid, "f(n * m)")["result"] == "41"
    assert k.exec(sid, "({a: [1, 'b'], v})")["result"] == "{ a: [ 1, 'b' ], v: 'var' }"
    assert k.exec(sid, "'str'")["result"] == "'str'"
    assert k.exec(sid, "undefined")["result"] is None
    assert k.exec(sid, "null")["result"] == "null"
    b = k.exec(sid, "console.log('hi'); console.error('err'); 5")
    assert (b["stdout"], b["stderr"], b["result"]) == ("hi\n", "err\n", "5"), b
    assert k.exec(sid, "Promise.resolve(7)")["result"] == "7"
    # a cell with top-level await answers its last value (issue 13)
    assert k.exec(sid, "await new Promise(r => setTimeout(r, 5)); globalThis.late = 9")["result"] == "9"
    assert k.exec(sid, "late")["result"] == "9"
    assert k.exec(sid, "const fs = require('fs'); fs.writeFileSync('/mnt/data/j.txt', 'js'); process.chdir('/tmp')"
                  )["result"] is None
    assert k.exec(sid, "[process.cwd(), fs.readFileSync('/mnt/data/j.txt', 'utf8')]")["result"] == "[ '/tmp', 'js' ]"
    b = k.exec(sid, "function g() { null.x }\ng()", status="error")
    assert b["stderr"].startswith("TypeError: Cannot read properties of null"), b
    assert "jskernel" not in b["stderr"] and "node:vm" not in b["stderr"], b
    assert "Uncaught 42" in k.exec(sid, "throw 42", status="error")["stderr"]
    assert "rejected" in k.exec(sid, "Promise.reject(new Error('rejected'))", status="error")["stderr"]
    assert k.exec(sid, "n + m")["result"] == "22"
    b = k.exec(sid, "require('child_process').execSync('echo sub', {stdio: 'inherit'}); 0")
    assert b["stdout"] == "sub\n", b


def test_js_timeout_and_crash_restart_fresh(k):
    sid = k("javascript")
    k.exec(sid, "globalThis.s = 1; require('fs').writeFileSync('/mnt/data/k.txt', 'k')")
    b = k.exec(sid, "console.log('spin'); while (true) {}", status="timeout", timeout_ms=300)
    assert b["state_lost"] and b["stdout"] == "spin\n" and STATE_LOST in b["stderr"], b
    assert k.exec(sid, "typeof s")["result"] == "'undefined'"
    assert k.exec(sid, "require('fs').readFileSync('/mnt/data/k.txt', 'utf8')")["result"] == "'k'"
    b = k.exec(sid, "process.exit(1)", status="crashed")
    assert "exited with status 1" in b["stderr"] and b["state_lost"], b
    b = k.exec(sid, "const a = []; while (true) a.push(new Array(1e6).fill(1.5))", status="crashed", timeout_ms=30000)
    assert b["state_lost"], b
    assert k.exec(sid, "[1, 2].map(x => x * 2)")["result"] == "[ 2, 4 ]"


def test_js_network_is_blocked(k):
    sid = k("javascript")
    b = k.exec(sid, "await new Promise((ok, ko) => { const s = require('net').connect(53, '1.1.1.1'); "
                    "s.on('connect', () => ok('connected')); s.on('error', ko); })", status="error")
    assert "Error" in b["stderr"], b
