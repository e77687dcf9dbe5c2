"""Issue 14, items 3 and 4: checkers and interpreters a submission cannot
steer (docs/security.md, "Checkers and interpreters").

The red team's attacks, run against a real sandboxd:

* a submission plants Python start-up hooks (usercustomize.py,
  sitecustomize.py, a .pth file) in HOME=/tmp: a Python checker still judges
  right and never prints the hidden expected output;
* a process left in an interpreter slot's session rewrites the checker's
  files (output, answer, its code) and reads the answer while the checker
  runs: it cannot;
* a judged run plants hooks, SIGKILLs the slot's interpreter so that sandboxd
  restarts it: no daemon comes out of the restart, and a program that needs
  more CPU than its limit stays time_limit_exceeded;
* a judged run opens /proc/<interpreter>/mem for writing: refused, for the
  Python and the JavaScript interpreter.

This module starts a sandboxd of its own (uid_base 356000, its own cgroup,
state dir and socket). Run as root:
    /usr/bin/python3 -m pytest -q tests/system/test_attacks_hooks.py
"""

import fcntl
import json
import os
import time

import pytest

import wpdaemons as wp
from conftest import own_sandboxd

UID_BASE = 356000
CAPACITY = 8
RUNTIMES = os.path.join(wp.REPO, "sandboxd", "runtimes")
SECRET = "hidden-answer-7f3a91c2"


@pytest.fixture(scope="module")
def hd():
    with open("/tmp/warmpool-test-uids-%d.lock" % UID_BASE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from own_sandboxd("HOOK ATTACK TESTS", "warmpool-hooks-", UID_BASE, CAPACITY,
                                cgroup_name="warmpool-hooks-test-%d" % os.getpid(), log_level="debug",
                                extra="runtimes_dir = %s" % RUNTIMES)


class Api:
    def __init__(self, d):
        self.d = d
        self.c = d.client()
        self.ids = []
        self.langs = {l["name"]: l for l in self.c.get("/v1/languages").body["languages"]}

    def slot(self, lang, interpreter=False):
        l = self.langs.get(lang)
        if not l or not l.get("available") or (interpreter and not l.get("interpreter")):
            pytest.skip("LANGUAGE %r (interpreter %s) NOT AVAILABLE on this host — test skipped" % (lang, interpreter))
        r = self.c.post("/v1/slots", {"language": lang, "wait": True, "interpreter": interpreter}, timeout=60)
        assert r.status == 201, "create a %s slot: %r" % (lang, r)
        sid = r.body["slots"][0]["id"]
        self.ids.append(sid)
        return sid

    def run(self, sid, source, tests, **kw):
        body = dict(kw, source=source, tests=tests)
        r = self.c.post("/v1/slots/%s/run" % sid, body, timeout=120)
        assert r.status == 200, "run: %r" % (r,)
        return r.body

    def exec(self, sid, code):
        r = self.c.post("/v1/slots/%s/exec" % sid, {"code": code}, timeout=60)
        assert r.status == 200, "exec %r: %r" % (code, r)
        return r.body

    def cleanup(self):
        for sid in self.ids:
            self.c.delete("/v1/slots/%s" % sid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(self.c.get("/v1/slots/%s" % i).status != 404 for i in self.ids):
            time.sleep(0.05)


@pytest.fixture
def api(hd):
    a = Api(hd)
    yield a
    a.cleanup()


def show(body):
    text = json.dumps(body)
    return text if len(text) < 5000 else text[:5000] + "…"


# A checker that compares tokens; what a forged start-up hook would do
# instead is print the answer file and accept.
PY_CHECKER = r"""
import sys
out, ans = (open(p).read().split() for p in sys.argv[2:4])
sys.exit(0 if out == ans else 1)
"""

# What the hooks run when Python imports them: print the hidden answer
# (argv[3] of a checker) and accept.
HOOK = r"""
import os, sys
try:
    if len(sys.argv) >= 4:
        sys.stdout.write("FORGED " + open(sys.argv[3]).read())
        sys.stdout.flush()
        os._exit(0)
except Exception:
    pass
"""

# A C submission that plants the hooks in every writable place Python might
# look at start-up (HOME is /tmp), then prints garbage.
C_PLANTER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}
int main(void) {
    const char *hook = HOOK_TEXT;
    const char *dirs[] = {"/tmp/.local", "/tmp/.local/lib", "/tmp/.local/lib/python3.11",
                          "/tmp/.local/lib/python3.11/site-packages"};
    for (int i = 0; i < 4; i++) mkdir(dirs[i], 0777);
    put("/tmp/.local/lib/python3.11/site-packages/usercustomize.py", hook);
    put("/tmp/.local/lib/python3.11/site-packages/sitecustomize.py", hook);
    put("/tmp/.local/lib/python3.11/site-packages/zz-evil.pth", "import usercustomize\n");
    put("/tmp/usercustomize.py", hook);
    put("/tmp/sitecustomize.py", hook);
    put("/mnt/data/usercustomize.py", hook);
    put("/mnt/data/sitecustomize.py", hook);
    put("/tmp/.pythonrc.py", hook);
    put("/tmp/.npmrc", "node-options=--require=/tmp/evil.js\n");
    puts("garbage");
    return 0;
}
"""


def c_planter():
    return C_PLANTER.replace("HOOK_TEXT", json.dumps(HOOK))


def test_planted_python_hooks_do_not_steer_a_checker(api):
    """The red team's attack: usercustomize.py in /tmp/.local made a Python
    checker accept garbage and print the expected output. Two tests: the
    second checker starts after the first test planted everything."""
    sid = api.slot("c")
    tests = [{"stdin": "", "expected": SECRET + "\n"}, {"stdin": "", "expected": SECRET + "\n"}]
    b = api.run(sid, c_planter(), tests, compare={"mode": "checker"},
                checker={"language": "python", "source": PY_CHECKER})
    assert [t["verdict"] for t in b["tests"]] == ["wrong_answer", "wrong_answer"], show(b)
    assert SECRET not in json.dumps(b["tests"]), "the hidden answer leaked: %s" % show(b)
    # and a checker still accepts a right answer in that slot
    ok = '#include <stdio.h>\nint main(void){puts("%s");return 0;}\n' % SECRET
    b = api.run(sid, ok, tests, compare={"mode": "checker"}, checker={"language": "python", "source": PY_CHECKER})
    assert b["verdict"] == "accepted", show(b)


def test_a_checker_has_its_own_tmp_and_home(api):
    """A checker sees a /tmp of its own (none of the submission's files), its
    HOME is in it, and it runs under a uid that is not the submission's."""
    sid = api.slot("python")
    planter = "import os\nopen('/tmp/planted-by-submission', 'w').write('x')\nprint(os.getuid())\n"
    spy = r"""
import os, sys
print(sorted(os.listdir('/tmp')), os.environ.get('HOME'), os.getuid(), sep='|')
sys.exit(0)
"""
    b = api.run(sid, planter, [{"stdin": "", "expected": "x\n"}], compare={"mode": "checker"},
                checker={"language": "python", "source": spy})
    t = b["tests"][0]
    listing, home, ck_uid = t["checker"]["stdout"].strip().split("|")
    assert "planted-by-submission" not in listing, "the checker sees the submission's /tmp: %s" % show(b)
    assert home.startswith("/tmp"), show(b)
    assert int(ck_uid) != int(t["stdout"]), "the checker runs as the submission's uid: %s" % show(b)


# The session leaves this running (in the interpreter's group): it rewrites
# every checker file it can find, through /mnt/data and through /proc, and
# copies any answer it can read.
SWAPPER = r"""
import os, subprocess, sys
code = r'''
import glob, os, shutil, signal, time
end = time.time() + 60
while time.time() < end:
    dirs = glob.glob("/mnt/data/.checker*")
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            dirs.append("/proc/%s/cwd" % p)
            dirs.append("/proc/%s/root/tmp" % p)
    for d in dirs:
        try:
            if not os.path.lexists(os.path.join(d, "answer")):
                continue
            a = open(os.path.join(d, "answer")).read()
            open("/mnt/data/leak", "w").write(a)
        except OSError:
            pass
        for n in ("output", "answer"):
            try:
                p = os.path.join(d, n)
                os.unlink(p)
                open(p, "w").write("same\n")
            except OSError:
                pass
        try:
            open(os.path.join(d, "main.py"), "w").write("import sys; sys.exit(0)\n")
        except OSError:
            pass
    time.sleep(0.002)
'''
subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""

SLOW_CHECKER = r"""
import sys, time
time.sleep(0.5)
out, ans = (open(p).read().split() for p in sys.argv[2:4])
sys.exit(0 if out == ans else 1)
"""


def test_leftover_session_process_cannot_swap_checker_files(api):
    sid = api.slot("python", interpreter=True)
    api.exec(sid, SWAPPER)
    time.sleep(0.3)
    tests = [{"stdin": "", "expected": SECRET + "\n"}] * 3
    b = api.run(sid, "print('garbage')\n", tests, compare={"mode": "checker"},
                checker={"language": "python", "source": SLOW_CHECKER})
    assert [t["verdict"] for t in b["tests"]] == ["wrong_answer"] * 3, show(b)
    leak = api.c.get("/v1/slots/%s/files/leak" % sid)
    assert leak.status == 404 or SECRET not in leak.body, "the session read the hidden answer: %r" % (leak,)
    # a right answer is still accepted with the swapper running
    b = api.run(sid, "print(%r)\n" % SECRET, tests[:1], compare={"mode": "checker"},
                checker={"language": "python", "source": SLOW_CHECKER})
    assert b["verdict"] == "accepted", show(b)


# Test 1 plants a usercustomize.py that forks a "worker" daemon, then kills
# the interpreter so that sandboxd restarts it (and Python would import the
# hook). Test 2 needs ~1.5 s of CPU under a 300 ms limit: it hands the work
# to the worker when one answers, else does it itself. (Test 2's own Python
# imports the hook too, HOME being /tmp: that worker is in the run's group,
# its CPU counts, and it dies with the run.)
PLANT_AND_KILL = r"""
import os, signal, sys, time
site = "/tmp/.local/lib/python3.11/site-packages"
os.makedirs(site, exist_ok=True)
hook = '''
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            open("/tmp/worker-alive", "w").write(str(time.time()))
            if os.path.exists("/tmp/job"):
                os.unlink("/tmp/job")
                x = 0
                for i in range(30_000_000):
                    x += i
                open("/tmp/result.tmp", "w").write("done\\n")
                os.rename("/tmp/result.tmp", "/tmp/result")
            time.sleep(0.01)
    os._exit(0)
'''
if sys.stdin.readline().strip() == "plant":
    for d in (site, "/tmp"):
        open(os.path.join(d, "usercustomize.py"), "w").write(hook)
        open(os.path.join(d, "sitecustomize.py"), "w").write(hook)
    killed = 0
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and b"kernel" in open("/proc/%s/cmdline" % p, "rb").read():
                os.kill(int(p), signal.SIGKILL)
                killed += 1
        except OSError:
            pass
    time.sleep(1.5)  # sandboxd restarts the interpreter at once
    print("killed", killed)
else:
    open("/tmp/job", "w").write("go")
    for _ in range(250):
        if os.path.exists("/tmp/result"):
            print(open("/tmp/result").read().strip())
            sys.exit(0)
        time.sleep(0.01)
    x = 0
    for i in range(30_000_000):
        x += i
    print("done")
"""


def test_planted_hook_and_interpreter_kill_leave_no_daemon(api, hd):
    sid = api.slot("python", interpreter=True)
    b = api.run(sid, PLANT_AND_KILL, [{"stdin": "plant\n"}, {"stdin": "work\n", "expected": "done\n"}],
                limits={"cpu_ms": 300, "wall_ms": 5000})
    t1, t2 = b["tests"]
    assert t1["verdict"] == "accepted" and t1["stdout"].startswith("killed") and t1["stdout"] != "killed 0\n", show(b)
    assert t2["verdict"] == "time_limit_exceeded", "the work was done outside the run's CPU limit: %s" % show(b)
    # the interpreter came back, fresh, and no worker runs anywhere in the slot
    time.sleep(0.3)
    r = api.exec(sid, "import os, time\nos.path.exists('/tmp/worker-alive') and "
                      "time.time() - float(open('/tmp/worker-alive').read()) < 0.2")
    assert r["status"] == "ok" and r["result"] in ("False", None), "a worker daemon survived: %r" % (r,)
    procs = [p for p in hd.slot_processes() if "worker" in p.get("cmdline", "")]
    assert not procs, procs


MEM_PY = r"""
import os
pid = [p for p in os.listdir("/proc") if p.isdigit() and b"kernel" in open("/proc/%s/cmdline" % p, "rb").read()]
assert pid, "no interpreter process found"
try:
    f = open("/proc/%s/mem" % pid[0], "r+b", buffering=0)
except OSError as e:
    print("refused", e.errno)
else:
    # opening it for writing is the permission check; where to write follows
    # from /proc/<pid>/maps, which an attacker can read then too
    print("opened for writing")
"""

MEM_JS = r"""
const fs = require('fs');
const pid = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && p !== String(process.pid)).filter((p) => {
    try { return fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').includes('kernel'); } catch (e) { return false; }
});
if (!pid.length) throw new Error('no interpreter process found');
try {
    fs.openSync('/proc/' + pid[0] + '/mem', 'r+');
    console.log('opened for writing');
} catch (e) {
    console.log('refused', e.code);
}
"""


@pytest.mark.parametrize("lang,src", [("python", MEM_PY), ("javascript", MEM_JS)], ids=["python", "javascript"])
def test_run_cannot_write_interpreter_memory(api, lang, src):
    sid = api.slot(lang, interpreter=True)
    b = api.run(sid, src, [{"stdin": ""}])
    out = b["tests"][0]["stdout"]
    assert out.startswith("refused"), "a run could write the interpreter's memory: %s" % show(b)
    # the interpreter is unharmed
    r = api.exec(sid, "6 * 7")
    assert r["status"] == "ok" and r["result"] == "42", r


def test_run_cannot_write_memory_of_session_processes(api):
    """A process a session's code left running (in the interpreter's group,
    beside judged runs) cannot be taken over by a run either."""
    sid = api.slot("python", interpreter=True)
    api.exec(sid, "import subprocess\np = subprocess.Popen(['/bin/sleep', '60'])\np.pid")
    src = MEM_PY.replace('b"kernel"', 'b"sleep"')
    b = api.run(sid, src, [{"stdin": ""}])
    assert b["tests"][0]["stdout"].startswith("refused"), "a run could write a session process's memory: %s" % show(b)


def test_interpreter_ignores_planted_startup_files_and_env_hooks(api):
    """After a restart (a timeout), the Python interpreter runs isolated: no
    user site, no PYTHON* variables, no cwd on sys.path at start-up."""
    sid = api.slot("python", interpreter=True)
    r = api.exec(sid, "import sys\n(sys.flags.isolated, sys.flags.no_user_site, sys.flags.ignore_environment)")
    assert r["result"] == "(1, 1, 1)", r
