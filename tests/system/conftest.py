"""System tests: start the real bin/sandboxd with a temporary config and drive
it over its unix socket as poold would (docs/sandboxd-api.md).

The session fixture `sandboxd` starts one daemon for the whole run and, at
the end, stops it with SIGTERM and checks it left nothing behind: no process
with a slot uid, no cgroup, no mount under its state dir. Its stderr goes to a
file; the part written during a failing test is attached to the report.

Standard library only. Run as root: /usr/bin/python3 -m pytest tests/system
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOXD = os.path.join(REPO, "bin", "sandboxd")
LANG_DIR = os.path.join(REPO, "config", "languages")

UID_BASE = 310000
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
        section, vals = None, {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in ";#":
                    continue
                if line.startswith("["):
                    section = line.strip("[]").strip()
                    continue
                if section == "language" and "=" in line:
                    k, v = line.split("=", 1)
                    v = re.split(r"\s;", v, maxsplit=1)[0]
                    vals[k.strip()] = v.strip()
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
# HTTP over a unix socket


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=HTTP_TIMEOUT):
        super().__init__("sandboxd", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except BaseException:
            s.close()
            raise
        self.sock = s


class Resp(tuple):
    """(status, body) — body is the parsed JSON when the answer is JSON, else
    bytes. Also .headers (lower-case names) and .raw (bytes)."""

    def __new__(cls, method, path, status, body, headers, raw):
        self = super().__new__(cls, (status, body))
        self.method, self.path, self.headers, self.raw = method, path, headers, raw
        return self

    @property
    def status(self):
        return self[0]

    @property
    def body(self):
        return self[1]

    def __repr__(self):
        raw = self.raw
        text = raw[:2000].decode("utf-8", "replace") + ("…(%d bytes)" % len(raw) if len(raw) > 2000 else "")
        return "<%s %s → %s %s>" % (self.method, self.path, self.status, text)

    def describe(self):
        return repr(self)


class Client:
    def __init__(self, sock_path):
        self.sock_path = sock_path

    def request(self, method, path, body=None, raw=None, headers=None, timeout=HTTP_TIMEOUT):
        """body: JSON-encoded if not None; raw: bytes sent as is."""
        hdrs = dict(headers or {})
        data = None
        if raw is not None:
            data = raw
            hdrs.setdefault("Content-Type", "application/octet-stream")
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = UnixHTTPConnection(self.sock_path, timeout=timeout)
        try:
            try:
                conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError) as e:
                # the server may answer (413) and close before reading the body;
                # its answer is still there to read
                send_error = e
            else:
                send_error = None
            try:
                r = conn.getresponse()
            except (ConnectionError, http.client.HTTPException) as e:
                if send_error is not None:
                    raise ConnectionError("%s %s: sending the request failed (%s) and no answer came (%s)" % (
                        method, path, send_error, e)) from e
                raise
            payload = r.read()
            rh = {k.lower(): v for k, v in r.getheaders()}
            status = r.status
        finally:
            conn.close()
        ctype = rh.get("content-type", "")
        parsed = payload
        if "json" in ctype or (not ctype and payload[:1] in (b"{", b"[")):
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = payload
        return Resp(method, path, status, parsed, rh, payload)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def put(self, path, raw=b"", **kw):
        return self.request("PUT", path, raw=raw, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


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


def proc_status(pid):
    """Parsed /proc/pid/status, or None if gone."""
    try:
        with open("/proc/%s/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    st = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            st[k] = v.strip()
    return st


def proc_cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def host_processes(uid_lo, uid_hi):
    """Processes on the host whose real, effective, saved or fs uid is in
    [uid_lo, uid_hi): list of dicts (pid, uids, nspid, state, cmdline)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_status(d)
        if not st or "Uid" not in st:
            continue
        uids = [int(x) for x in st["Uid"].split()]
        if any(uid_lo <= u < uid_hi for u in uids):
            out.append(
                {
                    "pid": int(d),
                    "uids": uids,
                    "nspid": [int(x) for x in st.get("NSpid", d).split()],
                    "state": st.get("State", "?"),
                    "cmdline": proc_cmdline(d),
                    "exe": proc_exe(d),
                }
            )
    return out


def proc_exe(pid):
    try:
        return os.readlink("/proc/%s/exe" % pid)
    except OSError:
        return None


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


def host_mounts_under(prefix):
    out = []
    prefix = os.path.realpath(prefix)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


def cgroup_dirs_named(name, extra_pids=()):
    """Every directory named `name` in the cgroup hierarchies: directly under
    each hierarchy root, under our (and the daemon's) cgroup paths, and a
    shallow walk for good measure."""
    found = set()
    base = "/sys/fs/cgroup"
    roots = []
    for pid in ("self",) + tuple(str(p) for p in extra_pids):
        try:
            with open("/proc/%s/cgroup" % pid) as f:
                for line in f:
                    _, ctrls, path = line.rstrip("\n").split(":", 2)
                    for c in ctrls.split(",") if ctrls else [""]:
                        c = c.replace("name=", "")
                        hier = os.path.join(base, c) if c else os.path.join(base, "unified")
                        roots.append(os.path.join(hier, path.lstrip("/")))
                        if not c:
                            roots.append(os.path.join(base, path.lstrip("/")))
        except OSError:
            pass
    try:
        for h in os.listdir(base):
            roots.append(os.path.join(base, h))
    except OSError:
        pass
    for r in set(roots):
        cand = os.path.join(r, name)
        if os.path.isdir(cand):
            found.add(os.path.normpath(cand))
    # shallow walk (depth ≤ 4) below every hierarchy
    try:
        hiers = [os.path.join(base, h) for h in os.listdir(base)]
    except OSError:
        hiers = []
    for h in hiers:
        start_depth = h.rstrip("/").count("/")
        for dirpath, dirnames, _ in os.walk(h):
            if name in dirnames:
                found.add(os.path.normpath(os.path.join(dirpath, name)))
            if dirpath.count("/") - start_depth >= 4:
                dirnames[:] = []
    return sorted(found)


def rmdir_cgroup_tree(path):
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


# --------------------------------------------------------------------------
# The daemon


def _die_with_parent():
    """In the child before exec: SIGTERM when pytest goes away, so that an
    interrupted test run does not leave a daemon behind."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Daemon:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="warmpool-systest-")
        os.chmod(self.tmp, 0o755)
        self.state_dir = os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "sandboxd.sock")
        self.config = os.path.join(self.tmp, "sandboxd.conf")
        self.log_path = os.path.join(self.tmp, "sandboxd.stderr")
        self.cgroup_name = "warmpool-test-%d" % os.getpid()
        self.secret = "config-secret-%s" % os.urandom(8).hex()
        self.proc = None
        self.client = Client(self.sock)
        with open(self.config, "w") as f:
            f.write(
                "; written by tests/system/conftest.py — %s\n"
                "[sandboxd]\n"
                "listen = unix:%s\n"
                "state_dir = %s\n"
                "languages = %s\n"
                "capacity = %d\n"
                "uid_base = %d\n"
                "cgroup = auto\n"
                "cgroup_name = %s\n"
                "max_body = %d\n"
                "log_level = debug\n"
                "\n[slot]\n"
                "memory = 1G\npids = 256\ndata_size = 128M\ntmp_size = 64M\nshm_size = 16M\n"
                "\n[limits_max]\n"
                "cpu = 30s\nwall = 60s\nmemory = 1G\npids = 256\noutput = 64M\nfsize = 128M\n"
                % (
                    self.secret,
                    self.sock,
                    self.state_dir,
                    LANG_DIR,
                    CAPACITY,
                    UID_BASE,
                    self.cgroup_name,
                    MAX_BODY,
                )
            )

    def start(self):
        stale = host_processes(UID_BASE, UID_BASE + CAPACITY)
        if stale:
            raise RuntimeError(
                "processes already run with uids in [%d, %d) — left by an earlier run? The slots would share "
                "their uids. Stop them first: %r" % (UID_BASE, UID_BASE + CAPACITY, stale)
            )
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [SANDBOXD, "--config", self.config],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            cwd=self.tmp,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "sandboxd exited with %s during start-up\n--- stderr ---\n%s" % (self.proc.returncode, self.log_text())
                )
            try:
                r = self.client.get("/healthz", timeout=2)
                if r.status == 200 and isinstance(r.body, dict) and r.body.get("status") == "ok":
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError("sandboxd did not answer GET /healthz within 10 s (last: %r)\n--- stderr ---\n%s" % (last, self.log_text()))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, start=0, limit=30000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                data = f.read()
        except OSError as e:
            return "(no log: %s)" % e
        if len(data) > limit:
            data = b"...(cut)...\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def stop_and_check(self):
        """SIGTERM, wait, then check nothing is left. Returns a list of problems."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                problems.append("sandboxd did not exit within 30 s of SIGTERM (killed)")
                self.proc.kill()
                self.proc.wait()
        else:
            problems.append("sandboxd was already dead before teardown (exit %s)" % self.proc.returncode)
        if self.proc.returncode != 0:
            problems.append("sandboxd exit status after SIGTERM: %s (want 0)" % self.proc.returncode)
        self.log.close()

        # processes of any slot uid (give the kernel a moment to reap)
        deadline = time.monotonic() + 3
        procs = host_processes(UID_BASE, UID_BASE + CAPACITY)
        while procs and time.monotonic() < deadline:
            time.sleep(0.1)
            procs = host_processes(UID_BASE, UID_BASE + CAPACITY)
        if procs:
            problems.append("processes with slot uids left behind: %r" % procs)
            for p in procs:  # ours to clean: uids of this test's range only
                try:
                    os.kill(p["pid"], signal.SIGKILL)
                except OSError:
                    pass
        cgs = cgroup_dirs_named(self.cgroup_name)
        if cgs:
            problems.append("cgroups left behind: %r" % cgs)
            for c in cgs:
                rmdir_cgroup_tree(c)
        mounts = host_mounts_under(self.tmp)
        if mounts:
            problems.append("mounts left under %s: %r" % (self.tmp, mounts))
            for m in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        self.final_log = self.log_text(limit=15000)
        if problems:
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    d = _DAEMON
    if rep.failed and d is not None:
        start = getattr(item, "_sandboxd_log_offset", 0)
        rep.sections.append(("sandboxd stderr during this test", d.log_text(start, limit=12000)))


# --------------------------------------------------------------------------
# Languages, slots and runs


@pytest.fixture(scope="session")
def languages(client):
    """{name: language object from GET /v1/languages}."""
    r = client.get("/v1/languages")
    assert r.status == 200, "GET /v1/languages: %r" % (r,)
    assert isinstance(r.body, dict) and isinstance(r.body.get("languages"), list), "bad /v1/languages answer: %r" % (r,)
    return {l.get("name"): l for l in r.body["languages"]}


def require_language(languages, lang):
    """Skip loudly when the language is not configured or its runtime is missing."""
    l = languages.get(lang)
    if l is None:
        pytest.skip(
            "LANGUAGE %r NOT CONFIGURED in %s (configured: %s) — test skipped"
            % (lang, LANG_DIR, ", ".join(sorted(k for k in languages if k)) or "none")
        )
    if not l.get("available", False):
        pytest.skip("RUNTIME FOR %r MISSING on this host (sandboxd says available=false: %r) — test skipped" % (lang, l))


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
