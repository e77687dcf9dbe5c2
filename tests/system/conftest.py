"""System tests: start the real bin/sandboxd with a temporary config and drive
it over its unix socket as poold would (docs/sandboxd-api.md).

The daemons are started through wpdaemons.py (shared with the poold tests and
the benchmark). The session fixture `sandboxd` starts one daemon for the whole
run and, at the end, stops it with SIGTERM and checks it left nothing behind:
no process with a slot uid, no cgroup, no mount under its state dir. Its
stderr goes to a file; the part written during a failing test is attached to
the report.

Standard library only. Run as root: /usr/bin/python3 -m pytest tests/system
"""

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import urllib.parse

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wpdaemons  # noqa: E402
from wpdaemons import (  # noqa: E402,F401  (re-exported for the tests)
    LANG_DIR,
    REPO,
    SANDBOXD,
    Resp,
    UnixClient,
    cgroup_dirs_named,
    host_mounts_under,
    host_processes,
    proc_cmdline,
    proc_exe,
    proc_status,
    rmdir_cgroup_tree,
)

# WP_TEST_UID_BASE moves the suite's uid range (two runs at once on one host)
UID_BASE = int(os.environ.get("WP_TEST_UID_BASE", "310000"))
CAPACITY = 48
MAX_BODY = 16 * 1024 * 1024
# What the test config asks for; tests check the daemon reports these.
SLOT_LIMITS = {"memory": 1 << 30, "pids": 256, "data_size": 128 << 20, "tmp_size": 64 << 20, "shm_size": 16 << 20}
LIMITS_MAX = {
    "cpu_ms": 30000,
    "wall_ms": 60000,
    "memory_kb": 1048576,
    "pids": 256,
    "output_bytes": 64 << 20,
    "fsize_bytes": 128 << 20,
}
HTTP_TIMEOUT = 60.0
ALL_LANGS = ("python", "javascript", "java", "c", "cpp")

_DAEMON = None  # the running Daemon, for the report hook


# --------------------------------------------------------------------------
# Language files of the repo (to know each language's source file name)


def _parse_language_files():
    """{name: {"source": ..., "compile": bool, "file": path}} from config/languages/*.conf."""
    out = {}
    if not os.path.isdir(LANG_DIR):
        return out
    for fn in sorted(os.listdir(LANG_DIR)):
        if not fn.endswith(".conf"):
            continue
        path = os.path.join(LANG_DIR, fn)
        vals = wpdaemons.language_file(path).get("language", {})
        if "name" in vals:
            out[vals["name"]] = {"source": vals.get("source"), "compile": "compile" in vals, "file": path}
    return out


LANG_FILES = _parse_language_files()

DEFAULT_SOURCE_NAMES = {
    "python": "main.py",
    "javascript": "main.js",
    "java": "Main.java",
    "c": "main.c",
    "cpp": "main.cpp",
}


def source_name(lang):
    """File name the language saves its source as in /mnt/data."""
    conf = LANG_FILES.get(lang)
    if conf and conf.get("source"):
        return conf["source"]
    return DEFAULT_SOURCE_NAMES[lang]


# --------------------------------------------------------------------------
# HTTP over a unix socket (wpdaemons.UnixClient: request(method, path, body=,
# raw=, headers=, timeout=), get/post/put/patch/delete → Resp, which unpacks
# as (status, body) and has .headers and .raw)

Client = UnixClient


def pct(name):
    """Percent-encode every byte but [A-Za-z0-9_-] (so '.' and '/' too)."""
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if (chr(b).isalnum() and b < 128) or b in b"_-" else "%%%02X" % b for b in name)


def qname(name):
    """Ordinary URL quoting of a file name (dots kept)."""
    return urllib.parse.quote(name, safe="")


def assert_error(resp, status, code=None):
    """The answer is `status` with the documented error body."""
    assert resp.status == status, "expected %d %s, got %r" % (status, code or "", resp)
    body = resp.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), "error body not {'error': {...}}: %r" % (resp,)
    err = body["error"]
    assert isinstance(err.get("code"), str) and isinstance(err.get("message"), str), "error lacks code/message: %r" % (
        resp,
    )
    if code is not None:
        assert err["code"] == code, "expected error code %s, got %r" % (code, resp)


# --------------------------------------------------------------------------
# Host inspection


def is_sandboxd_process(p):
    """The slot's init or one of its pre-forked stubs: a fork of sandboxd that
    has not exec'd yet (its executable is bin/sandboxd, which no program in a
    slot can exec: it is not in the slot's view)."""
    exe = p.get("exe") or ""
    if exe.endswith(" (deleted)"):
        exe = exe[: -len(" (deleted)")]
    return exe == os.path.realpath(SANDBOXD)


def processes_matching(text):
    """Host pids whose command line contains `text`."""
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me and text in proc_cmdline(d):
            out.append((int(d), proc_cmdline(d), (proc_status(d) or {}).get("State")))
    return out


def is_slot_init(p):
    """The slot's own init: pid 1 in its pid namespace."""
    return len(p["nspid"]) > 1 and p["nspid"][-1] == 1


# --------------------------------------------------------------------------
# The daemon


class Daemon(wpdaemons.Sandboxd):
    """The suite's sandboxd: debug log, uid_base UID_BASE, CAPACITY slots,
    max_body MAX_BODY, the SLOT_LIMITS / LIMITS_MAX above."""

    def __init__(self):
        super().__init__(
            wpdaemons.make_tmpdir("warmpool-systest-"),
            uid_base=UID_BASE,
            capacity=CAPACITY,
            cgroup_name="warmpool-test-%d" % os.getpid(),
            log_level="debug",
            max_body=str(MAX_BODY),
            # the suite drives sandboxd directly with more runs at once than
            # CPUs (a busy host, on purpose); admission: test_contest.py
            extra="run_slots = 64",
        )
        self.client = self.client()  # the suite uses sandboxd.client as an attribute

    def stop_and_check(self):
        """SIGTERM, wait, then check nothing is left. Returns a list of problems."""
        problems = []
        if self.proc is None:
            return problems
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(30) is None:
                problems.append("sandboxd did not exit within 30 s of SIGTERM (killed)")
        else:
            problems.append("sandboxd was already dead before teardown (exit %s)" % self.proc.returncode)
        rc = self.stop()
        if rc != 0:
            problems.append("sandboxd exit status after SIGTERM: %s (want 0)" % rc)
        problems += self.leftovers()
        self.final_log = self.log_text(limit=15000)
        if problems:
            self.reap()  # ours to clean: this suite's uids, cgroup and mounts only
            problems.append("temp dir kept for inspection: %s" % self.tmp)
        elif not host_mounts_under(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


@pytest.fixture(scope="session")
def sandboxd():
    global _DAEMON
    if os.geteuid() != 0:
        pytest.skip("SYSTEM TESTS SKIPPED: sandboxd must run as root (euid %d)" % os.geteuid())
    if not os.access(SANDBOXD, os.X_OK):
        pytest.skip("SYSTEM TESTS SKIPPED: %s is not built — run `make bin/sandboxd`" % SANDBOXD)
    d = Daemon()
    _DAEMON = d
    try:
        d.start()
    except RuntimeError as e:
        problems = d.stop_and_check()
        pytest.fail("%s\n%s" % (e, "\n".join(problems)), pytrace=False)
    yield d
    problems = d.stop_and_check()
    _DAEMON = None
    if problems:
        pytest.fail(
            "sandboxd shutdown left problems:\n  - %s\n--- sandboxd stderr (tail) ---\n%s"
            % ("\n  - ".join(problems), d.final_log),
            pytrace=False,
        )


def burst(c, jobs, limit):
    """jobs: [(key, body, correct)] sent to POST /execute all at once, one
    thread each (test_contest.py, bench/contest.py); → ({key: (resp,
    seconds)}, errors, wall seconds)."""
    results, errors = {}, []
    start = threading.Barrier(len(jobs) + 1)

    def worker(key, body):
        start.wait()
        t0 = time.monotonic()
        try:
            r = c.post("/execute", body, timeout=limit)
        except Exception as e:  # noqa: BLE001 — reported by the caller
            errors.append((key, repr(e)))
            return
        results[key] = (r, time.monotonic() - t0)

    threading.stack_size(256 << 10)  # a thousand threads
    threads = [threading.Thread(target=worker, args=(k, b), daemon=True) for k, b, _ in jobs]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(max(1, limit - (time.monotonic() - t0)))
    return results, errors, time.monotonic() - t0


def own_sandboxd(what, tmp_prefix, uid_base, capacity, **kw):
    """A module's own sandboxd (a generator for a module fixture): started
    with the given uid range and options, stopped with SIGTERM at the end;
    the teardown fails on a bad exit status or anything left behind. `what`
    names the suite in the skip message when the suite cannot run at all."""
    if os.geteuid() != 0:
        pytest.skip("%s SKIPPED: sandboxd must run as root (euid %d)" % (what, os.geteuid()))
    if not os.access(SANDBOXD, os.X_OK):
        pytest.skip("%s SKIPPED: %s is not built — run `make`" % (what, SANDBOXD))
    d = wpdaemons.Sandboxd(wpdaemons.make_tmpdir(tmp_prefix), uid_base=uid_base, capacity=capacity, **kw)
    try:
        d.start()
    except RuntimeError as e:
        d.cleanup()
        pytest.fail(str(e), pytrace=False)
    yield d
    rc = d.stop()
    problems = d.leftovers()
    log = d.log_text(limit=8000)
    d.cleanup(remove=not problems)
    assert rc == 0, "sandboxd exit status after SIGTERM: %s\n%s" % (rc, log)
    assert not problems, "sandboxd left things behind: %r\n%s" % (problems, log)


def start_pair(what, tag, uid_base, capacity, pools, tokens=(), extra_poold="", **sb_kw):
    """A module's own sandboxd and a poold over it (pools, tokens, extra
    [poold] lines), poold ready; the module fails at once, with the reason,
    when they do not come up. `what` names the suite in a skip message.
    End them with stop_pair."""
    if os.geteuid() != 0:
        pytest.skip("%s SKIPPED: sandboxd must run as root (euid %d)" % (what, os.geteuid()))
    for b in (wpdaemons.SANDBOXD, wpdaemons.POOLD):
        if not os.access(b, os.X_OK):
            pytest.skip("%s SKIPPED: %s is not built — run `make`" % (what, b))
    sb = wpdaemons.Sandboxd(wpdaemons.make_tmpdir("wp-%s-node-" % tag), uid_base=uid_base, capacity=capacity,
                            cgroup_name="wp-%s-%d" % (tag, os.getpid()), **sb_kw)
    pd = None
    try:
        sb.start()
        pd = wpdaemons.Poold(wpdaemons.make_tmpdir("wp-%s-poold-" % tag), nodes={"local": sb.url}, pools=pools,
                             tokens=list(tokens), extra_poold=extra_poold)
        pd.start()
        ok = wpdaemons.wait_for(lambda: pd.client().get("/readyz").status == 200, 60, 0.1)
        assert ok, "poold not ready within 60 s: %r\n%s" % (pd.client().get("/readyz"), pd.log_text())
    except (RuntimeError, AssertionError) as e:
        if pd:
            pd.cleanup()
        sb.cleanup(remove=False)
        pytest.fail(str(e), pytrace=False)
    return sb, pd


def stop_pair(sb, pd, what):
    """The end of a module that ran its own sandboxd and poold: both get
    SIGTERM (poold first); a bad exit status or a leftover of sandboxd fails
    the teardown with poold's log attached."""
    problems, log = wpdaemons.stop_both(sb, pd)
    if problems:
        pytest.fail("%s teardown:\n  - %s\n%s" % (what, "\n  - ".join(problems), log), pytrace=False)


@pytest.fixture(scope="session")
def client(sandboxd):
    return sandboxd.client


@pytest.fixture(autouse=True)
def _daemon_watch(request):
    """Remember where the log was when the test started; fail loudly when
    the daemon died during the test."""
    if "sandboxd" not in request.fixturenames and "client" not in request.fixturenames:
        yield
        return
    d = request.getfixturevalue("sandboxd")
    request.node._sandboxd_log_offset = d.log_size()
    if not d.alive():
        pytest.fail("sandboxd is dead (exit %s)\n%s" % (d.proc.returncode, d.log_text()), pytrace=False)
    yield
    if not d.alive():
        pytest.fail(
            "sandboxd died during this test (exit %s)\n%s"
            % (d.proc.returncode, d.log_text(request.node._sandboxd_log_offset)),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _daemon_logs(request):
    """Remember where every daemon's log was when the test started (for the
    report of a failing test)."""
    request.node._wp_log_marks = {id(d): d.log_size() for d in wpdaemons.STARTED}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    d = _DAEMON
    if d is not None and ("sandboxd" in item.fixturenames or "client" in item.fixturenames):
        start = getattr(item, "_sandboxd_log_offset", 0)
        rep.sections.append(("sandboxd stderr during this test", d.log_text(start, limit=12000)))
    marks = getattr(item, "_wp_log_marks", {})
    for dm in wpdaemons.STARTED:
        if dm is d:
            continue
        if id(dm) not in marks and dm.starts == 0:
            continue
        start = marks.get(id(dm), 0)
        if dm.log_size() <= start:
            continue
        rep.sections.append(("%s log %s during this test" % (dm.name, dm.log_path), dm.log_text(start, limit=8000)))


# --------------------------------------------------------------------------
# Languages, slots and runs


@pytest.fixture(scope="session")
def languages(client):
    """{name: language object from GET /v1/languages}."""
    r = client.get("/v1/languages")
    assert r.status == 200, "GET /v1/languages: %r" % (r,)
    assert isinstance(r.body, dict) and isinstance(r.body.get("languages"), list), "bad /v1/languages answer: %r" % (r,)
    return {l.get("name"): l for l in r.body["languages"]}


SKIP_LANGUAGES_ENV = "WARMPOOL_SKIP_LANGUAGES"


def changed_language(tag, name, old, new):
    """A languages directory for a test's own sandboxd: the shipped language
    file `name` with `old` replaced by `new` (asserted present: a test of a
    shipped line fails when the line changes, instead of testing nothing).
    Returns (dir, the changed text); more files may be written into dir."""
    with open(os.path.join(LANG_DIR, name)) as f:
        text = f.read()
    assert old in text, "%s no longer has %r: update this test" % (name, old)
    d = wpdaemons.make_tmpdir("wp-%s-langs-" % tag)
    text = text.replace(old, new)
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
    return d, text


def missing_runtime(lang, why):
    """A test needs `lang` (its runtime, or its interpreter) and it is not
    usable. That FAILS the test: deploy/deps.sh installs every runtime, so a
    language that sandboxd finds missing is a regression (language detection,
    the interpreter, the slot's mounts), and a skip would leave `make test`
    green. A developer on a host without a runtime on purpose lists the
    language in WARMPOOL_SKIP_LANGUAGES (comma-separated, or `all`): then the
    test is skipped, loudly."""
    allowed = {x.strip() for x in os.environ.get(SKIP_LANGUAGES_ENV, "").split(",") if x.strip()}
    if lang in allowed or "all" in allowed:
        pytest.skip("LANGUAGE %r NOT USABLE (%s) — test skipped because %s=%s"
                    % (lang, why, SKIP_LANGUAGES_ENV, os.environ[SKIP_LANGUAGES_ENV]))
    pytest.fail("LANGUAGE %r NOT USABLE: %s. deploy/deps.sh installs every runtime; on a host without this one "
                "on purpose, run with %s=%s to skip the tests that need it" % (lang, why, SKIP_LANGUAGES_ENV, lang),
                pytrace=False)


def require_language(languages, lang):
    """Fail (or skip, see missing_runtime) when the language is not configured
    or its runtime is missing."""
    l = languages.get(lang)
    if l is None:
        missing_runtime(lang, "not configured in %s (configured: %s)"
                        % (LANG_DIR, ", ".join(sorted(k for k in languages if k)) or "none"))
    if not l.get("available", False):
        missing_runtime(lang, "sandboxd says available=false: %r" % (l,))


def normalize_tests(tests):
    out = []
    for t in tests:
        if isinstance(t, dict):
            out.append(t)
        elif isinstance(t, str):
            out.append({"stdin": t})
        else:
            stdin, expected = t
            d = {"stdin": stdin}
            if expected is not None:
                d["expected"] = expected
            out.append(d)
    return out


class Slots:
    """Creates slots for one test and destroys them at its end."""

    def __init__(self, client, languages):
        self.client = client
        self.languages = languages
        self.ids = []

    def create(self, lang="python", label=None, count=1):
        require_language(self.languages, lang)
        body = {"language": lang, "count": count, "wait": True}
        if label is not None:
            body["label"] = label
        r = self.client.post("/v1/slots", body, timeout=120)
        assert r.status == 201, "POST /v1/slots %r: %r" % (body, r)
        slots = r.body["slots"]
        assert len(slots) == count, "asked for %d slots, got %r" % (count, r)
        for s in slots:
            self.ids.append(s["id"])
            assert s["state"] == "ready", "slot not ready after wait:true: %r" % (r,)
        return slots

    def __call__(self, lang="python", label=None):
        return self.create(lang, label)[0]["id"]

    def info(self, slot):
        r = self.client.get("/v1/slots/%s" % slot)
        assert r.status == 200, "GET slot: %r" % (r,)
        return r.body

    def adopt(self, slot_id):
        self.ids.append(slot_id)

    def destroy(self, slot_id, wait=True):
        r = self.client.delete("/v1/slots/%s" % slot_id)
        if wait:
            wait_gone(self.client, [slot_id])
        return r

    def cleanup(self):
        errors = []
        for sid in self.ids:
            try:
                r = self.client.delete("/v1/slots/%s" % sid)
                if r.status not in (202, 404):
                    errors.append(r)
            except OSError as e:
                errors.append(e)
        try:
            wait_gone(self.client, self.ids, timeout=30)
        except AssertionError as e:
            errors.append(e)
        self.ids = []
        return errors


def wait_gone(client, ids, timeout=10):
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        pending = [i for i in pending if client.get("/v1/slots/%s" % i).status != 404]
        if pending:
            time.sleep(0.05)
    assert not pending, "slots still present %.0f s after DELETE: %r" % (
        timeout,
        [client.get("/v1/slots/%s" % i) for i in pending],
    )


def wait_state(client, slot_id, state, timeout=30):
    deadline = time.monotonic() + timeout
    r = None
    while time.monotonic() < deadline:
        r = client.get("/v1/slots/%s" % slot_id)
        if r.status == 200 and r.body.get("state") == state:
            return r.body
        time.sleep(0.05)
    raise AssertionError("slot %s not %s within %d s: %r" % (slot_id, state, timeout, r))


@pytest.fixture
def slots(client, languages):
    s = Slots(client, languages)
    yield s
    errors = s.cleanup()
    assert not errors, "destroying this test's slots failed: %r" % (errors,)


@pytest.fixture
def make_slot(slots):
    """make_slot(lang="python", label=None) -> slot id, destroyed at test end."""
    return slots


def run_raw(client, slot, source=None, tests=("",), timeout=HTTP_TIMEOUT, **kw):
    body = dict(kw)
    if source is not None:
        body["source"] = source
    if tests is not None:
        body["tests"] = normalize_tests(tests)
    return client.post("/v1/slots/%s/run" % slot, body, timeout=timeout)


@pytest.fixture
def run(client):
    """run(slot, source, tests, **kw) -> body of a 200 answer (asserted)."""

    def _run(slot, source=None, tests=("",), timeout=HTTP_TIMEOUT, **kw):
        r = run_raw(client, slot, source, tests, timeout=timeout, **kw)
        assert r.status == 200, "run failed: %r" % (r,)
        b = r.body
        assert isinstance(b, dict) and "verdict" in b and isinstance(b.get("tests"), list), "bad run answer: %r" % (r,)
        b["_resp"] = r
        return b

    return _run


def show(body):
    """A run answer, short, for assertion messages."""
    b = {k: v for k, v in body.items() if k != "_resp"}
    text = json.dumps(b, indent=None)
    return text if len(text) < 6000 else text[:6000] + "…"


def verdicts_of(body):
    return [t.get("verdict") for t in body.get("tests") or []]


# --------------------------------------------------------------------------
# poold (test_poold*.py): real sandboxd nodes and real poold on loopback

POOLD_UID_BASE = 330000  # the shared node; tests with their own nodes use 331000 +
POOLD_NODE_CAPACITY = 300

# One solution per language of "print twice the integer on stdin"; WRONG_*
# prints the integer plus one.

# A program that fills the slot's three tmpfs (/tmp, /dev/shm, /mnt/data: 124
# MiB) and prints "filled": pages a run leaves behind, charged to whom?
# (test_attacks_bytes.py, test_runfast.py)
FILL_TMPFS = r'''
chunk = b"x" * (1 << 20)
for path, mb in (("/tmp/fill", 56), ("/dev/shm/fill", 12), ("/mnt/data/fill", 56)):
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(chunk)
print("filled")
'''

DOUBLE = {
    "python": "print(int(input()) * 2)\n",
    "javascript": "const x = require('fs').readFileSync(0, 'utf8');\nconsole.log(2 * parseInt(x));\n",
    "c": '#include <stdio.h>\nint main(void){int x; if (scanf("%d", &x) != 1) return 1; printf("%d\\n", 2 * x); return 0;}\n',
    "cpp": "#include <iostream>\nint main(){long x; std::cin >> x; std::cout << 2 * x << std::endl;}\n",
    "java": "import java.util.*;\npublic class Main { public static void main(String[] a) {"
    " Scanner s = new Scanner(System.in); System.out.println(2 * s.nextLong()); } }\n",
}
WRONG_DOUBLE = {
    "python": "print(int(input()) + 1)\n",
    "javascript": "const x = require('fs').readFileSync(0, 'utf8');\nconsole.log(parseInt(x) + 1);\n",
    "c": '#include <stdio.h>\nint main(void){int x; if (scanf("%d", &x) != 1) return 1; printf("%d\\n", x + 1); return 0;}\n',
    "cpp": "#include <iostream>\nint main(){long x; std::cin >> x; std::cout << x + 1 << std::endl;}\n",
    "java": "import java.util.*;\npublic class Main { public static void main(String[] a) {"
    " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + 1); } }\n",
}

DEFAULT_POOLS = {"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"}}


@pytest.fixture(scope="session")
def pool_node():
    """A sandboxd shared by the poold tests (capacity POOLD_NODE_CAPACITY,
    uid_base POOLD_UID_BASE). Every test that uses it through make_poold
    leaves it empty."""
    if os.geteuid() != 0:
        pytest.skip("POOLD SYSTEM TESTS SKIPPED: sandboxd must run as root (euid %d)" % os.geteuid())
    for b in (wpdaemons.SANDBOXD, wpdaemons.POOLD):
        if not os.access(b, os.X_OK):
            pytest.skip("POOLD SYSTEM TESTS SKIPPED: %s is not built — run `make`" % b)
    sb = wpdaemons.Sandboxd(
        wpdaemons.make_tmpdir("wp-poold-node-"),
        uid_base=POOLD_UID_BASE,
        capacity=POOLD_NODE_CAPACITY,
        cgroup_name="wp-poold-node-%d" % os.getpid(),
    )
    try:
        sb.start()
    except RuntimeError as e:
        sb.cleanup(remove=False)
        pytest.fail(str(e), pytrace=False)
    yield sb
    rc = sb.stop()
    problems = sb.cleanup(remove=False)
    if rc != 0:
        problems.append("shared sandboxd exit status after SIGTERM: %s (want 0)" % rc)
    if problems:
        pytest.fail("shared sandboxd left problems:\n  - %s\n%s" % ("\n  - ".join(problems), sb.log_text(limit=8000)),
                    pytrace=False)
    shutil.rmtree(sb.tmp, ignore_errors=True)


def node_slots(sb, label=None):
    """Slots on a sandboxd: list of slot objects."""
    r = sb.client().get("/v1/slots" + ("?label=%s" % urllib.parse.quote(label, safe="") if label else ""))
    assert r.status == 200, r
    return r.body["slots"]


def empty_node(sb, timeout=30):
    """Destroy every slot on the node and wait until it holds none."""
    if not sb.alive():
        return
    c = sb.client()
    for s in node_slots(sb):
        if s["state"] != "destroying":
            c.delete("/v1/slots/%s" % s["id"])
    assert wpdaemons.wait_for(lambda: not node_slots(sb), timeout), "slots left on the node: %r" % node_slots(sb)


class PooldFactory:
    """make_poold(pools=..., nodes=..., **Poold kwargs) → started Poold; all
    are stopped at the end of the test and the shared node emptied."""

    def __init__(self, node):
        self.node = node
        self.started = []
        self.extra_nodes = []

    def __call__(self, pools=None, nodes=None, start=True, **kw):
        pd = wpdaemons.Poold(
            wpdaemons.make_tmpdir("wp-poold-"),
            nodes=nodes or {"local": self.node.url},
            pools=pools or DEFAULT_POOLS,
            **kw
        )
        self.started.append(pd)
        if start:
            pd.start()
        return pd

    def sandboxd(self, uid_base, capacity=16, **kw):
        """An extra sandboxd of this test (stopped and cleaned at its end)."""
        sb = wpdaemons.Sandboxd(
            wpdaemons.make_tmpdir("wp-node-"), uid_base=uid_base, capacity=capacity,
            cgroup_name="wp-node-%d-%d" % (os.getpid(), uid_base), **kw
        )
        self.extra_nodes.append(sb)
        return sb

    def cleanup(self):
        problems = []
        for pd in self.started:
            rc = pd.stop(timeout=20) if pd.alive() else None
            if rc not in (None, 0):
                problems.append("poold %s exit status after SIGTERM: %s\n--- its log, the end ---\n%s"
                                % (pd.url, rc, pd.log_text()[-4000:]))
            pd.cleanup()
        for sb in self.extra_nodes:
            rc = sb.stop() if sb.alive() else None
            if rc not in (None, 0):
                problems.append("sandboxd %s exit status after SIGTERM: %s" % (sb.sock, rc))
            left = sb.cleanup(remove=False)
            if left and rc is not None:
                problems += ["sandboxd %s: %s" % (sb.sock, x) for x in left]
            shutil.rmtree(sb.tmp, ignore_errors=True)
        return problems


@pytest.fixture
def make_poold(pool_node):
    f = PooldFactory(pool_node)
    yield f
    problems = f.cleanup()
    try:
        empty_node(pool_node)
    except AssertionError as e:
        problems.append(str(e))
    assert not problems, "teardown: %s" % "; ".join(problems)


def execute(c, language, code, user_id, cases, timeout=120, **extra):
    """POST /execute; cases: [(input, expected_output or None)]."""
    body = {"language": language, "code": code, "user_id": user_id, "question_id": "q1",
            "test_cases": [dict({"input": i}, **({"expected_output": e} if e is not None else {})) for i, e in cases]}
    body.update(extra)
    return c.post("/execute", body, timeout=timeout)


def session_run(c, ident, source, tests=(("", None),), pool="python", timeout=120, **extra):
    """POST /v1/sessions/{id}/run?pool=; tests: [(stdin, expected or None)]."""
    body = {"tests": [dict({"stdin": i}, **({"expected": e} if e is not None else {})) for i, e in tests]}
    if source is not None:
        body["source"] = source
    body.update(extra)
    return c.post("/v1/sessions/%s/run?pool=%s" % (pct(ident), pool), body, timeout=timeout)


def session_info(c, ident, pool="python"):
    return c.get("/v1/sessions/%s?pool=%s" % (pct(ident), pool))


def pool_info(c, pool="python"):
    r = c.get("/v1/pools/%s" % pool)
    assert r.status == 200, r
    return r.body


def wait_pool(c, pool, pred, timeout, what="condition"):
    """Wait until pred(pool object) holds; returns the pool object."""
    last = {}

    def check():
        last["p"] = pool_info(c, pool)
        return pred(last["p"])

    ok = wpdaemons.wait_for(check, timeout, 0.1)
    assert ok, "pool %s: %s not reached within %g s: %r" % (pool, what, timeout, last.get("p"))
    return last["p"]


def metrics_text(c):
    r = c.get("/metrics")
    assert r.status == 200, r
    return r.body.decode() if isinstance(r.body, bytes) else r.raw.decode()


def metric_value(text, name, **labels):
    """The value of one sample of the Prometheus text, or None."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == str(v) for k, v in labels.items()):
            return float(m.group(4))
    return None
