"""libwarmpool and poolctl against real daemons (issue 5, Tests section).

One sandboxd (uid_base 360000) and one poold with tokens (admin, executor)
for the module. Every poolctl command runs as a user would run it, and the
test checks its exit status (0 success, 1 the program failed, 2 usage,
3 poold failed), its table or its --json. The library's error paths (server
down, 401, 403, 404, 413, timeouts) are driven through poolctl and through
the example program client/examples/run_submission.c. The progress bar of
`pools resize --wait` is checked on a pty.

Run as root: /usr/bin/python3 -m pytest tests/system/test_client.py
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

import wpdaemons
from conftest import missing_runtime

REPO = wpdaemons.REPO
POOLCTL = os.path.join(REPO, "bin", "poolctl")
EXAMPLE = os.path.join(REPO, "build", "examples", "run_submission")
LIBSO = os.path.join(REPO, "build", "libwarmpool.so")
LIBA = os.path.join(REPO, "build", "libwarmpool.a")

UID_BASE = 360000
CAPACITY = 56
ADMIN = "admin-" + uuid.uuid4().hex
EXECUTOR = "exec-" + uuid.uuid4().hex
POOLS = {
    "python": {"language": "python", "warm": 1, "max": 40, "idle_timeout": "5m"},
    "c": {"language": "c", "warm": 1, "max": 8, "idle_timeout": "5m"},
}
MAX_BODY = 1 << 20
INTERP = "interp"  # a stateful python pool

SUM_PY = "print(sum(map(int, input().split())))\n"


def sid():
    return "cli-" + uuid.uuid4().hex[:10]


# --------------------------------------------------------------------------
# the daemons


class Daemons:
    def __init__(self, sb, pd):
        self.sb, self.pd = sb, pd
        self.url = pd.url

    def http(self, token=ADMIN):
        return self.pd.client(token=token)


@pytest.fixture(scope="module")
def wp():
    if os.geteuid() != 0:
        pytest.skip("CLIENT TESTS SKIPPED: sandboxd must run as root (euid %d)" % os.geteuid())
    for b in (wpdaemons.SANDBOXD, wpdaemons.POOLD, POOLCTL):
        if not os.access(b, os.X_OK):
            pytest.skip("CLIENT TESTS SKIPPED: %s is not built — run `make`" % b)
    sb = wpdaemons.Sandboxd(wpdaemons.make_tmpdir("wpc-sb-"), uid_base=UID_BASE, capacity=CAPACITY,
                            cgroup_name="wpc-%d" % os.getpid())
    pools = dict(POOLS)
    pools[INTERP] = {"language": "python", "stateful": "yes", "warm": 1, "max": 4, "idle_timeout": "5m"}
    pd = wpdaemons.Poold(wpdaemons.make_tmpdir("wpc-pd-"), nodes={"local": sb.url}, pools=pools,
                         tokens=[(ADMIN, "admin", "admin"), (EXECUTOR, "executor", "backend")],
                         extra_poold="default_pool = python\nmax_body = 1M\nmax_upload = 1M")
    try:
        rc, out = pd.check_config()
        assert rc == 0, "poold refuses the suite's config (a pool with `stateful = yes` included):\n%s" % out
        sb.start()
        pd.start()
        for name in POOLS:
            ready = wpdaemons.wait_for(lambda: pd.client(token=ADMIN).get("/v1/pools/" + name).body.get("ready"), 60,
                                       0.1)
            assert ready, "pool %s has no ready slot within 60 s: %r\n%s" % (
                name, pd.client(token=ADMIN).get("/v1/pools/" + name), pd.log_text())
        yield Daemons(sb, pd)
    finally:
        pd.cleanup()
        problems = sb.cleanup()
        assert not problems, "sandboxd left problems: %r" % problems


def ctl(wp, *args, token=ADMIN, url=None, stdin=None, timeout=120, env=None):
    """Runs poolctl with WARMPOOL_URL/WARMPOOL_TOKEN set; CompletedProcess (text)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("WARMPOOL_")}
    e["WARMPOOL_URL"] = url or (wp.url if wp else "http://127.0.0.1:1")
    if token is not None:
        e["WARMPOOL_TOKEN"] = token
    e.update(env or {})
    return subprocess.run([POOLCTL, *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=e, timeout=timeout)


def show(r):
    return "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (r.returncode, r.stdout[-4000:], r.stderr[-4000:])


def ok(r, status=0):
    assert r.returncode == status, "want exit %d, got: %s" % (status, show(r))
    return r


def as_json(r):
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError("--json output does not parse (%s): %s" % (e, show(r)))


def one_line_error(r, *needles):
    """stderr is exactly one line holding every needle."""
    lines = r.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0], "want one error line: %s" % show(r)
    for n in needles:
        assert n in lines[0], "%r not in the error line: %s" % (n, show(r))
    return lines[0]


def free_port():
    return wpdaemons.free_port()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="wpc-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def pool_state(wp, name):
    r = wp.http().get("/v1/pools/%s" % name)
    assert r.status == 200, r
    return r.body


def resize(wp, name, warm):
    r = wp.http().patch("/v1/pools/%s" % name, {"warm": warm})
    assert r.status == 200, r


# --------------------------------------------------------------------------
# the build


def test_library_exports_only_wp_symbols():
    for f in (LIBSO, LIBA):
        assert os.path.exists(f), "%s is not built (make client)" % f
    out = subprocess.run(["nm", "-D", "--defined-only", LIBSO], stdout=subprocess.PIPE, text=True, check=True).stdout
    syms = [l.split()[-1] for l in out.splitlines() if l.strip()]
    assert len(syms) > 80, "too few exported symbols: %r" % syms
    bad = [s for s in syms if not s.startswith("wp_")]
    assert not bad, "libwarmpool.so exports symbols without the wp_ prefix: %r" % bad
    soname = subprocess.run(["objdump", "-p", LIBSO], stdout=subprocess.PIPE, text=True).stdout
    assert "SONAME" in soname and "libwarmpool.so.0" in soname, soname
    # the client stands alone: nothing of lib/ (libev, seccomp, …) is linked in
    deps = subprocess.run(["ldd", POOLCTL], stdout=subprocess.PIPE, text=True).stdout
    for lib in ("libev", "libseccomp", "libinih", "libhttp_parser"):
        assert lib not in deps, "poolctl links %s:\n%s" % (lib, deps)


def test_example_is_built():
    assert os.access(EXAMPLE, os.X_OK), "%s is not built (make client-examples; make test builds it)" % EXAMPLE


def _make(*targets, **kw):
    with open(os.path.join(REPO, "Makefile")) as f:
        included = "client/client.mk" in f.read()
    cmd = ["make", "--no-print-directory"] + ([] if included else ["-f", "Makefile", "-f", "client/client.mk"])
    return subprocess.run(cmd + list(targets), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300, **kw)


@pytest.mark.skipif(bool(os.environ.get("WARMPOOL_SANITIZE")),
                    reason="SKIPPED UNDER SANITIZE: an ASan-built library cannot be linked by a plain program (the runtime must come first)")
def test_install_client_and_pkg_config(wp, tmp):
    """make install-client DESTDIR=… PREFIX=/usr installs header, libraries,
    warmpool.pc and poolctl; the example builds from the installed files
    with pkg-config alone and runs."""
    dest = os.path.join(tmp, "root")
    r = _make("install-client", "DESTDIR=" + dest, "PREFIX=/usr")
    assert r.returncode == 0, r.stdout
    for f in ("usr/include/warmpool.h", "usr/lib/libwarmpool.so", "usr/lib/libwarmpool.so.0",
              "usr/lib/libwarmpool.a", "usr/lib/pkgconfig/warmpool.pc", "usr/bin/poolctl"):
        assert os.path.exists(os.path.join(dest, f)), "%s not installed:\n%s" % (f, r.stdout)
    pc = open(os.path.join(dest, "usr/lib/pkgconfig/warmpool.pc")).read()
    assert "prefix=/usr" in pc and "-lwarmpool" in pc, pc
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(dest, "usr/lib/pkgconfig"), PKG_CONFIG_SYSROOT_DIR=dest)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "warmpool"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    assert flags.returncode == 0, flags.stdout
    exe = os.path.join(tmp, "example")
    cc = subprocess.run(["cc", "-o", exe, os.path.join(REPO, "client/examples/run_submission.c")]
                        + flags.stdout.split(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert cc.returncode == 0, "the example does not build from the installed files with %s:\n%s" % (
        flags.stdout.strip(), cc.stdout)
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    run = subprocess.run([exe, "python", sid(), src, "1 2\n", "3\n"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=120,
                         env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(dest, "usr/lib"), WARMPOOL_URL=wp.url,
                                  WARMPOOL_TOKEN=EXECUTOR))
    assert run.returncode == 0 and "accepted: 1/1 passed" in run.stdout, run.stdout


# --------------------------------------------------------------------------
# help and usage


COMMANDS = [[], ["run"], ["exec"], ["files"], ["files", "put"], ["files", "get"], ["sessions"],
            ["sessions", "release"], ["pools"], ["pools", "resize"], ["nodes"], ["langs"], ["top"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "poolctl")
def test_help(cmd):
    r = ok(ctl(None, *cmd, "--help"))
    assert "Usage: poolctl" in r.stdout and "Examples:" in r.stdout, show(r)
    assert "poolctl " + (cmd[0] if cmd else "") in r.stdout.split("Examples:")[1], show(r)
    if cmd:
        h = ok(ctl(None, "help", cmd[0]))
        assert "Usage: poolctl %s" % cmd[0] in h.stdout, show(h)


def test_version_and_bare_usage():
    r = ok(ctl(None, "--version"))
    assert re.match(r"poolctl \d+\.\d+\.\d+", r.stdout), show(r)
    r = ok(ctl(None), 2)
    assert "Usage: poolctl" in r.stderr, show(r)


@pytest.mark.parametrize("args,needle", [
    (["frobnicate"], "unknown command"),
    (["pools", "ls", "--bogus"], "unknown option `--bogus`"),
    (["run", "x.py"], "--session ID is required"),
    (["run", "--session", "a"], "give FILE"),
    (["run", "--session", "a", "/nonexistent/x.py"], "cannot read `/nonexistent/x.py`"),
    (["run", "--session", "a", "--lang", "python", "--pool", "c", "/etc/hostname"], "exclude each other"),
    (["run", "--session", "a", "--limit", "cpu=1", "/etc/hostname"], "--limit wants KEY=NUMBER"),
    (["run", "--session", "a", "--compare", "fuzzy", "/etc/hostname"], "--compare wants"),
    (["run", "--session", "a", "--tests", "/nonexistent", "/etc/hostname"], "cannot read the test directory"),
    (["exec", "--session", "a"], "what code?"),
    (["files"], "which one"),
    (["files", "get", "--session", "a"], "wrong number of arguments"),
    (["sessions", "show"], "give one session ID"),
    (["pools", "resize", "python"], "give --warm N"),
    (["pools", "resize", "python", "--warm", "many"], "--warm wants a number"),
    (["pools", "ls", "--warm", "3"], "go with `pools resize`"),
    (["pools", "explode", "python"], "unknown subcommand"),
    (["top", "--interval", "0"], "--interval wants"),
    (["nodes", "--timeout", "soon"], "--timeout wants a duration"),
    (["--url", "ftp://x", "nodes"], "is not an http:// or https:// URL"),
])
def test_usage_errors_exit_2(args, needle):
    r = ctl(None, *args)
    assert r.returncode == 2, "want exit 2 for %r: %s" % (args, show(r))
    assert needle in r.stderr, "%r not in stderr: %s" % (needle, show(r))
    assert r.stdout == "", show(r)


# --------------------------------------------------------------------------
# pools, nodes, langs


def test_pools_ls_and_show(wp):
    r = ok(ctl(wp, "pools", "ls"))
    header = r.stdout.splitlines()[0].split()
    assert header[:4] == ["POOL", "LANGUAGE", "READY", "WARM"], show(r)
    rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:] if l.strip()}
    assert set(rows) >= {"python", "c"}, show(r)
    assert rows["python"][1] == "python" and rows["python"][3] == "1", show(r)
    j = as_json(ok(ctl(wp, "pools", "--json")))
    assert {p["name"] for p in j["pools"]} - {INTERP} == {"python", "c"}, j
    # --json before the command works as well
    j2 = as_json(ok(ctl(wp, "--json", "pools", "show", "c")))
    assert j2["name"] == "c" and j2["max"] == 8, j2
    r = ok(ctl(wp, "pools", "show", "python"))
    assert re.search(r"^language\s+python$", r.stdout, re.M) and "of warm 1" in r.stdout, show(r)
    # executors may read pools
    ok(ctl(wp, "pools", "ls", token=EXECUTOR))


def test_nodes_and_langs(wp):
    r = ok(ctl(wp, "nodes"))
    assert r.stdout.split()[:4] == ["NODE", "UP", "SLOTS", "CAPACITY"], show(r)
    assert re.search(r"^local\s+up\s+\d+\s+%d\s" % CAPACITY, r.stdout, re.M), show(r)
    j = as_json(ok(ctl(wp, "nodes", "--json")))
    assert j["nodes"][0]["name"] == "local" and j["nodes"][0]["up"] is True, j
    r = ok(ctl(wp, "langs"))
    assert re.search(r"^python\s+python\s+yes\s+Python 3", r.stdout, re.M), show(r)
    j = as_json(ok(ctl(wp, "langs", "--json")))
    assert {l["language"] for l in j["languages"]} == {"python", "c"}, j
    ok(ctl(wp, "nodes", "ls"))


def test_pools_resize_set_drain(wp):
    try:
        r = ok(ctl(wp, "pools", "resize", "c", "--warm", "2", "--max", "5"))
        assert "pool c: warm 2, max 5" in r.stdout, show(r)
        assert pool_state(wp, "c")["warm"] == 2
        j = as_json(ok(ctl(wp, "pools", "resize", "c", "--warm", "1", "--json")))
        assert j["warm"] == 1 and j["max"] == 5, j
        # the server refuses warm above max: its 400 is a usage error
        r = ok(ctl(wp, "pools", "resize", "c", "--warm", "9"), 2)
        one_line_error(r, "poold at %s" % wp.url, "(400 BadRequest)")
        j = as_json(ok(ctl(wp, "pools", "set", "c", "--idle-timeout", "10m", "--max-lifetime", "2h", "--json")))
        assert j["idle_timeout_s"] == 600 and j["max_lifetime_s"] == 7200, j
        r = ok(ctl(wp, "pools", "drain", "c"))
        assert "draining" in r.stdout and pool_state(wp, "c")["draining"] is True, show(r)
        r = ok(ctl(wp, "pools", "undrain", "c"))
        assert "open" in r.stdout and pool_state(wp, "c")["draining"] is False, show(r)
        # an executor may not
        r = ok(ctl(wp, "pools", "resize", "c", "--warm", "2", token=EXECUTOR), 3)
        one_line_error(r, "poold at %s refused the token for this request" % wp.url, "(403)")
        r = ok(ctl(wp, "pools", "resize", "nope", "--warm", "1"), 3)
        one_line_error(r, "(404 PoolNotFound)")
    finally:
        wp.http().patch("/v1/pools/c", {"warm": 1, "max": 8, "idle_timeout_s": 300, "max_lifetime_s": 14400})
        wp.http().post("/v1/pools/c/undrain", b"")


def test_resize_wait_plain_lines(wp):
    """Without a terminal: plain lines, then how long it took."""
    try:
        t0 = time.monotonic()
        r = ok(ctl(wp, "pools", "resize", "python", "--warm", "4", "--wait"))
        took = time.monotonic() - t0
        assert "\r" not in r.stdout and "\033" not in r.stdout, "terminal codes without a terminal: %r" % r.stdout
        lines = r.stdout.splitlines()
        assert lines[0] == "pool python: warm 4, max 40", show(r)
        assert all(re.match(r"python: \d+/4 ready, \d+ creating \(\d+\.\d s\)$", l) for l in lines[1:-1]), show(r)
        m = re.match(r"pool python: (\d+) ready sandboxes in (\d+\.\d) s$", lines[-1])
        assert m and int(m.group(1)) == 4 and float(m.group(2)) <= took + 0.1, show(r)
        assert pool_state(wp, "python")["ready"] >= 4
        # shrinking waits until the extra ready ones are gone
        r = ok(ctl(wp, "pools", "resize", "python", "--warm", "1", "--wait", "--json"))
        j = json.loads(r.stdout[r.stdout.index("{"):])
        assert j["warm"] == 1 and j["ready"] == 1, show(r)
    finally:
        resize(wp, "python", 1)


def _pty_run(args, env, timeout=120, interrupt_after=None):
    """Runs args on a pty; (exit status, output bytes). interrupt_after: a
    bytes marker after which Ctrl-C is typed."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(args[0], args, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            rd, _, _ = select.select([fd], [], [], 0.2)
            if rd:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if interrupt_after and not sent and interrupt_after in out:
                os.write(fd, b"\x03")
                sent = True
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, st = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(st), out


def test_resize_wait_progress_bar_on_a_pty(wp):
    env = dict(os.environ, WARMPOOL_URL=wp.url, WARMPOOL_TOKEN=ADMIN, TERM="xterm")
    try:
        st, out = _pty_run([POOLCTL, "pools", "resize", "python", "--warm", "5", "--wait"], env)
        text = out.decode("utf-8", "replace")
        assert st == 0, "exit %d:\n%r" % (st, text)
        assert "\r" in text and "\033[K" in text, "no redrawn line on a terminal: %r" % text
        bars = re.findall(r"python \[([#>.]+)\] (\d+)/5 ready, \d+ creating +(\d+\.\d) s", text)
        assert bars, "no progress bar: %r" % text
        assert bars[-1][0] == "#" * len(bars[-1][0]) and bars[-1][1] == "5", "the last bar is not full: %r" % text
        m = re.search(r"pool python: 5 ready sandboxes in (\d+\.\d) s", text)
        assert m, "the time it took is not shown: %r" % text
    finally:
        resize(wp, "python", 1)


# --------------------------------------------------------------------------
# run


def _tests_dir(tmp, cases):
    d = os.path.join(tmp, "tests")
    os.makedirs(d, exist_ok=True)
    for name, (inp, exp, ext) in cases.items():
        write(os.path.join(d, name + ".in"), inp)
        if exp is not None:
            write(os.path.join(d, name + "." + ext), exp)
    return d


def test_run_tests_dir_all_pass(wp, tmp):
    d = _tests_dir(tmp, {"1": ("1 2\n", "3\n", "out"), "2": ("2 2\n", "4\n", "ans"),
                         "10": ("10 5\n", "15\n", "out"), "check": ("0 0\n", "0\n", "out")})
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    s = sid()
    r = ok(ctl(wp, "run", "--session", s, src, "--tests", d, token=EXECUTOR))
    rows = [l.split() for l in r.stdout.splitlines() if re.match(r"\s+\d+\s", l)]
    assert [x[1] for x in rows] == ["1", "2", "10", "check"], "not one line per test in version order: %s" % show(r)
    for x in rows:
        assert x[2] == "accepted" and x[4] == "ms" and x[6] == "KB", show(r)
    assert re.search(r"^accepted: 4/4 passed \(session %s, pool python, node local\)$" % s, r.stdout, re.M), show(r)
    j = as_json(ok(ctl(wp, "run", "-s", s, src, "-t", d, "--json", token=EXECUTOR)))
    assert j["verdict"] == "accepted" and j["passed"] == 4 and len(j["tests"]) == 4, j
    assert j["session"]["identifier"] == s, j


def test_run_tests_dir_with_failures(wp, tmp):
    d = _tests_dir(tmp, {"a": ("1 2\n", "3\n", "out"), "b": ("2 2\n", "5\n", "ans"), "c": ("7 1\n", "8\n", "out")})
    src = write(os.path.join(tmp, "bad.py"),
                "x = input()\nif x == '7 1':\n    raise ValueError('boom')\nprint(sum(map(int, x.split())))\n")
    r = ok(ctl(wp, "run", "-s", sid(), src, "-t", d), 1)
    assert re.search(r"^\s+1\s+a\s+accepted\s", r.stdout, re.M), show(r)
    assert re.search(r"^\s+2\s+b\s+wrong_answer\s+\d+ ms\s+\d+ KB$", r.stdout, re.M), show(r)
    assert "line 1: expected `5`, got `4`" in r.stdout, show(r)
    assert re.search(r"^\s+3\s+c\s+runtime_error\s", r.stdout, re.M), show(r)
    assert "exit code 1: ValueError: boom" in r.stdout, show(r)
    assert "wrong_answer: 1/3 passed" in r.stdout, show(r)
    j = as_json(ok(ctl(wp, "run", "-s", sid(), src, "-t", d, "--json", "--stop-on-failure"), 1))
    assert j["verdict"] == "wrong_answer", j


def test_run_single_with_stdin(wp, tmp):
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    r = ok(ctl(wp, "run", "-s", sid(), src, "--stdin", "-", stdin="4 5\n"))
    assert r.stdout == "9\n", show(r)
    assert re.match(r"accepted: \d+ ms CPU, \d+ ms wall, \d+ KB, exit code 0$", r.stderr.strip()), show(r)
    inp = write(os.path.join(tmp, "in.txt"), "oops\n")
    r = ok(ctl(wp, "run", "-s", sid(), src, "-i", inp), 1)
    assert "ValueError" in r.stderr and "runtime_error" in r.stderr, show(r)
    r = ok(ctl(wp, "run", "-s", sid(), "-", "--lang", "python", stdin="print('from stdin')\n"))
    assert r.stdout == "from stdin\n", show(r)


def test_run_lang_lookup_and_compile_error(wp, tmp):
    good = write(os.path.join(tmp, "hi.c"), '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    j = as_json(ok(ctl(wp, "run", "-s", sid(), good, "--json")))  # pool c from the extension
    assert j["session"]["pool"] == "c" and j["tests"][0]["stdout"] == "hi\n", j
    prog = write(os.path.join(tmp, "prog"), 'int main(void){return 0}\n')
    r = ok(ctl(wp, "run", "-s", sid(), "--lang", "c", prog, "-t", _tests_dir(tmp, {"x": ("", "", "out")})), 1)
    assert "compilation_error" in r.stdout and "error:" in r.stdout, show(r)
    r = ok(ctl(wp, "run", "-s", sid(), "--lang", "cobol", prog), 2)
    assert "no pool serves language `cobol`" in r.stderr, show(r)
    r = ok(ctl(wp, "run", "-s", sid(), "--limit", "cpu_ms=999999999", good), 2)  # above limits_max: 400
    one_line_error(r, "poold at %s" % wp.url, "400")


def test_run_bad_identifier_is_usage(wp, tmp):
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    r = ok(ctl(wp, "run", "-s", "has space", src), 2)
    one_line_error(r, "(400 InvalidIdentifier)")


# --------------------------------------------------------------------------
# files and sessions


def test_files_commands(wp, tmp):
    s = sid()
    local = write(os.path.join(tmp, "data.csv"), "a,b\n1,2\n")
    r = ok(ctl(wp, "files", "put", "-s", s, local))
    assert "data.csv → data.csv (8 bytes)" in r.stdout, show(r)
    j = as_json(ok(ctl(wp, "files", "put", "-s", s, "-", "in.txt", "--json", stdin="hello\n")))
    assert j == {"name": "in.txt", "size": 6}, j
    r = ok(ctl(wp, "files", "ls", "-s", s))
    assert r.stdout.split()[:4] == ["NAME", "SIZE", "MODIFIED", "TYPE"], show(r)
    assert re.search(r"^data\.csv\s+8 B\s", r.stdout, re.M) and "in.txt" in r.stdout, show(r)
    j = as_json(ok(ctl(wp, "files", "ls", "-s", s, "--json")))
    assert {f["name"]: f["size"] for f in j["files"]} == {"data.csv": 8, "in.txt": 6}, j
    r = ok(ctl(wp, "files", "get", "-s", s, "data.csv"))
    assert r.stdout == "a,b\n1,2\n", show(r)
    out = os.path.join(tmp, "copy.csv")
    ok(ctl(wp, "files", "get", "-s", s, "data.csv", "-o", out))
    assert open(out).read() == "a,b\n1,2\n"
    r = ok(ctl(wp, "files", "get", "-s", s, "data.csv", "-o", out), 2)  # never overwrites
    assert "cannot create" in r.stderr, show(r)
    # the program sees the files
    prog = write(os.path.join(tmp, "cat.py"), "print(open('in.txt').read().strip())\n")
    r = ok(ctl(wp, "run", "-s", s, prog))
    assert r.stdout == "hello\n", show(r)
    r = ok(ctl(wp, "files", "rm", "-s", s, "data.csv", "in.txt"))
    assert "removed data.csv" in r.stdout and "removed in.txt" in r.stdout, show(r)
    missing = os.path.join(tmp, "missing")
    r = ok(ctl(wp, "files", "get", "-s", s, "data.csv", "-o", missing), 3)
    one_line_error(r, "poold at %s" % wp.url, "404")
    assert not os.path.exists(missing), "a failed download left a file"
    r = ok(ctl(wp, "files", "rm", "-s", s, "data.csv"), 3)
    one_line_error(r, "404")
    r = ok(ctl(wp, "files", "ls", "-s", sid()), 3)  # no such session
    one_line_error(r, "404")
    r = ok(ctl(wp, "files", "put", "-s", s, local, "../x"), 2)  # bad name: 400
    one_line_error(r, "400")


def test_sessions_commands(wp, tmp):
    s = sid()
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    ok(ctl(wp, "run", "-s", s, src, "--stdin", "-", stdin="1 1\n"))
    r = ok(ctl(wp, "sessions", "ls"))
    assert r.stdout.split()[:4] == ["SESSION", "POOL", "NODE", "STATE"], show(r)
    assert re.search(r"^%s\s+python\s+local\s+active\s+no\s+1\s" % s, r.stdout, re.M), show(r)
    j = as_json(ok(ctl(wp, "sessions", "--json", "--pool", "python")))
    assert s in [x["identifier"] for x in j["sessions"]], j
    j = as_json(ok(ctl(wp, "sessions", "ls", "--pool", "c", "--json")))
    assert s not in [x["identifier"] for x in j["sessions"]], j
    r = ok(ctl(wp, "sessions", "show", s))
    assert re.search(r"^identifier\s+%s$" % s, r.stdout, re.M) and re.search(r"^executions\s+1 ", r.stdout, re.M), \
        show(r)
    j = as_json(ok(ctl(wp, "sessions", "show", s, "--json", token=EXECUTOR)))
    assert j["identifier"] == s and j["pool"] == "python" and j["node"] == "local", j
    r = ok(ctl(wp, "sessions", "ls", token=EXECUTOR), 3)  # admin only
    one_line_error(r, "refused the token for this request", "(403)")
    r = ok(ctl(wp, "sessions", "release", s, token=EXECUTOR))
    assert r.stdout == "released %s\n" % s, show(r)
    r = ok(ctl(wp, "sessions", "show", s), 3)
    one_line_error(r, "poold at %s: no session `%s` in pool python (404 SessionNotFound)" % (wp.url, s))
    r = ok(ctl(wp, "sessions", "release", s), 3)
    one_line_error(r, "404 SessionNotFound")


# --------------------------------------------------------------------------
# the stateful interpreter


def test_exec(wp):
    """`poolctl exec` speaks POST /pools/{pool}/code/execute to a pool with
    `stateful = yes`; a pool without the interpreter refuses, in one line.
    A stateful pool that never gets ready fails the test (skipped only with
    WARMPOOL_SKIP_LANGUAGES=python: conftest.missing_runtime)."""
    ready = wpdaemons.wait_for(lambda: pool_state(wp, INTERP)["ready"], 60, 0.2)
    if not ready:
        missing_runtime("python", "the stateful pool has no ready slot within 60 s: %r\n%s"
                        % (pool_state(wp, INTERP), wp.pd.log_text(limit=3000)))
    # a pool without the interpreter refuses, and poolctl says it in one line
    r = ok(ctl(wp, "exec", "-s", sid(), "--pool", "python", "x = 1"), 2)
    one_line_error(r, "poold at %s" % wp.url, "has no stateful interpreter", "400")
    s = sid()
    r = ok(ctl(wp, "exec", "-s", s, "--pool", INTERP, "x = 41"))
    assert r.stdout == "" and r.stderr == "", show(r)
    r = ok(ctl(wp, "exec", "-s", s, "--pool", INTERP, "print('out')\nx + 1"))
    assert r.stdout == "out\n42\n", show(r)
    j = as_json(ok(ctl(wp, "exec", "-s", s, "--pool", INTERP, "x * 2", "--json")))
    assert j["properties"]["status"] == "Success" and j["properties"]["result"] == 82, j
    r = ok(ctl(wp, "exec", "-s", s, "--pool", INTERP, "-", stdin="import sys\nprint('e', file=sys.stderr)\n"
                                                                  "raise ValueError('nope')\n"), 1)
    assert "ValueError" in r.stderr and "e\n" in r.stderr and r.stderr.rstrip().endswith("Failure"), show(r)
    r = ok(ctl(wp, "exec", "-s", s, "--pool", INTERP, "x"))  # state survived the failure
    assert r.stdout == "41\n", show(r)
    j = as_json(ok(ctl(wp, "sessions", "show", s, "--pool", INTERP, "--json")))
    assert j["identifier"] == s and j["pool"] == INTERP, j
    ok(ctl(wp, "sessions", "release", s, "--pool", INTERP))


# --------------------------------------------------------------------------
# top


def test_top_once(wp):
    s = sid()
    ok(ctl(wp, "run", "-s", s, "-", "--lang", "python", stdin="print(1)\n"))
    r = ok(ctl(wp, "top", "--once"))
    assert "\033" not in r.stdout, "terminal codes with --once: %r" % r.stdout
    for section in ("POOLS", "NODES", "SESSIONS (") :
        assert section in r.stdout, show(r)
    assert re.search(r"^\s+python\s+python\s+\d+\s+1\s", r.stdout, re.M), show(r)
    assert re.search(r"^\s+local\s+up\s", r.stdout, re.M), show(r)
    assert re.search(r"^\s+%s\s+python\s" % s, r.stdout, re.M), show(r)
    j = as_json(ok(ctl(wp, "top", "--once", "--json")))
    assert {p["name"] for p in j["pools"]} - {INTERP} == {"python", "c"}, j
    assert s in [x["identifier"] for x in j["sessions"]] and j["nodes"][0]["name"] == "local", j
    r = ok(ctl(wp, "top", "--once", token=EXECUTOR))
    assert "(listing sessions needs an admin token)" in r.stdout and "POOLS" in r.stdout, show(r)
    r = ok(ctl(wp, "top", "--once", url="http://127.0.0.1:%d" % free_port()), 3)
    one_line_error(r, "is not reachable")


def test_top_live_on_a_pty_until_ctrl_c(wp):
    env = dict(os.environ, WARMPOOL_URL=wp.url, WARMPOOL_TOKEN=ADMIN, TERM="xterm")
    st, out = _pty_run([POOLCTL, "top", "--interval", "0.3"], env, timeout=30, interrupt_after=b"Ctrl-C quits")
    text = out.decode("utf-8", "replace")
    assert st == 0, "exit %d: %r" % (st, text[-2000:])
    assert "\033[H\033[2J" in text and "POOLS" in text and "NODES" in text, text[-2000:]
    assert text.rstrip().endswith("\033[?25h") or "\033[?25h" in text, "the cursor is not given back"


# --------------------------------------------------------------------------
# the library's error paths


def test_server_down(tmp):
    url = "http://127.0.0.1:%d" % free_port()
    for args in (["pools"], ["sessions", "show", "x"], ["run", "-s", "x", "-p", "python", "/etc/hostname"]):
        r = ok(ctl(None, *args, url=url), 3)
        one_line_error(r, "poold at %s is not reachable (Connection refused)" % url)
        assert r.stdout == "", show(r)
    r = ok(ctl(None, "nodes", "--json", url=url), 3)  # with --json, the error is JSON on stdout
    assert "poold at %s is not reachable (Connection refused)" % url in as_json(r)["error"]["message"], show(r)
    assert r.stderr == "", show(r)
    # --url wins over WARMPOOL_URL
    r = ok(ctl(None, "--url", url, "pools", url="http://127.0.0.1:1"), 3)
    one_line_error(r, "poold at %s is not reachable" % url)
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    r = subprocess.run([EXAMPLE, "python", "x", src, "1 2\n", "3\n"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=dict(os.environ, WARMPOOL_URL=url), timeout=60)
    assert r.returncode == 3 and "poold at %s is not reachable" % url in r.stderr, show(r)


def test_401_and_403(wp):
    r = ok(ctl(wp, "pools", token=None), 3)
    one_line_error(r, "poold at %s wants a token and none was given (401)" % wp.url, "--token or WARMPOOL_TOKEN")
    r = ok(ctl(wp, "pools", token="wrong-token"), 3)
    line = one_line_error(r, "poold at %s refused the token (401)" % wp.url)
    assert "wrong-token" not in line, "the token is printed: %s" % line
    r = ok(ctl(wp, "--token", ADMIN, "pools", token="wrong-token"))  # --token wins
    r = ok(ctl(wp, "pools", "drain", "python", token=EXECUTOR), 3)
    one_line_error(r, "refused the token for this request", "(403)")


def test_404(wp):
    r = ok(ctl(wp, "pools", "show", "nope"), 3)
    one_line_error(r, "poold at %s: no pool `nope` (404 PoolNotFound)" % wp.url)
    r = ok(ctl(wp, "sessions", "show", "nobody", "--pool", "nope"), 3)
    one_line_error(r, "404 PoolNotFound")


def test_413_payload_too_large(wp, tmp):
    big = write(os.path.join(tmp, "big.py"), "#" + "x" * (MAX_BODY + 1000) + "\n")
    r = ok(ctl(wp, "run", "-s", sid(), big), 3)
    one_line_error(r, "poold at %s" % wp.url, "(413 PayloadTooLarge)")
    r = ok(ctl(wp, "files", "put", "-s", sid(), big), 3)
    one_line_error(r, "(413 PayloadTooLarge)")


def test_timeout_of_a_silent_server():
    """A server that accepts and never answers: --timeout bounds the wait."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        t0 = time.monotonic()
        r = ok(ctl(None, "--timeout", "1", "pools", url=url), 3)
        took = time.monotonic() - t0
        one_line_error(r, "poold at %s did not answer within 1 s" % url)
        assert took < 5, "took %.1f s" % took


def test_timeout_of_a_long_run(wp, tmp):
    src = write(os.path.join(tmp, "slow.py"), "import time\ntime.sleep(4)\n")
    t0 = time.monotonic()
    r = ok(ctl(wp, "--timeout", "1.5", "run", "-s", sid(), src), 3)
    one_line_error(r, "poold at %s did not answer within 1.5 s" % wp.url)
    assert time.monotonic() - t0 < 4, "the timeout did not cut the wait"


def test_example_program(wp, tmp):
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    env = dict(os.environ, WARMPOOL_URL=wp.url, WARMPOOL_TOKEN=EXECUTOR)
    r = subprocess.run([EXAMPLE, "python", sid(), src, "1 2\n", "3\n", "2 2\n", "4\n"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "accepted: 2/2 passed" in r.stdout, show(r)
    r = subprocess.run([EXAMPLE, "python", sid(), src, "1 2\n", "4\n"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "wrong_answer: 0/1 passed" in r.stdout, show(r)
    r = subprocess.run([EXAMPLE, "python", sid(), src, "1 2\n", "3\n"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=dict(env, WARMPOOL_TOKEN="bad"), timeout=120)
    assert r.returncode == 3 and "poold at %s refused the token (401)" % wp.url in r.stderr, show(r)
    assert "HTTP status 401, code `Unauthorized`" in r.stderr, show(r)
    r = subprocess.run([EXAMPLE, "nopool", sid(), src, "1 2\n", "3\n"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert r.returncode == 3 and "HTTP status 404, code `PoolNotFound`" in r.stderr, show(r)


# --------------------------------------------------------------------------
# what tripped a newcomer: refused inputs, JSON errors, the help's examples


def test_run_refuses_a_test_without_its_expected_output(wp, tmp):
    """The help says each NAME.in needs its NAME.out or NAME.ans: a missing
    one would pass whatever the program prints, so poolctl refuses before
    sending anything."""
    d = _tests_dir(tmp, {"1": ("1 2\n", "3\n", "out"), "2": ("2 2\n", None, None)})
    src = write(os.path.join(tmp, "sum.py"), SUM_PY)
    s = sid()
    r = ok(ctl(wp, "run", "-s", s, src, "-t", d), 2)
    assert "test `2`" in r.stderr and "2.out" in r.stderr and "2.ans" in r.stderr, show(r)
    st, _ = wp.http().get("/v1/sessions/%s?pool=python" % s)
    assert st == 404, "poolctl leased a session for a refused run: %d" % st


@pytest.mark.parametrize("name", ["sol.rb", "main.go", "dir.v2/prog.rs"])
def test_run_refuses_an_unknown_extension(wp, tmp, name):
    """A .rb file used to run quietly in the default (Python) pool."""
    path = os.path.join(tmp, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write(path, "puts 1\n")
    r = ok(ctl(wp, "run", "-s", sid(), path), 2)
    ext = os.path.splitext(name)[1]
    assert "cannot tell the language of" in r.stderr and ext in r.stderr, show(r)
    assert ".py" in r.stderr and "--lang" in r.stderr, show(r)
    # with --lang it is the user's choice, and the program is judged in that pool
    r = ok(ctl(wp, "run", "-s", sid(), path, "--lang", "python"), 1)
    assert "runtime_error" in r.stderr, show(r)


def test_run_without_extension_uses_the_default_pool(wp, tmp):
    src = write(os.path.join(tmp, "sum"), SUM_PY)
    r = ok(ctl(wp, "run", "-s", sid(), src, "--stdin", "-", stdin="1 2\n"))
    assert r.stdout == "3\n", show(r)


@pytest.mark.parametrize("args,code,status", [
    (["frobnicate"], "UsageError", 2),
    (["pools", "ls", "--bogus"], "UsageError", 2),
    (["--url", "ftp://x", "nodes"], "UsageError", 2),
])
def test_json_usage_errors_are_json_on_stdout(args, code, status):
    for where in ("before", "after"):
        a = ["--json", *args] if where == "before" else [*args, "--json"]
        r = ctl(None, *a)
        assert r.returncode == status, show(r)
        j = as_json(r)
        assert j["error"]["code"] == code and j["error"]["exit_status"] == status, j
        assert j["error"]["message"].startswith("poolctl"), j
        assert r.stderr == "", "with --json nothing goes to stderr: %s" % show(r)


def test_json_server_errors_are_json_on_stdout(wp):
    r = ok(ctl(wp, "sessions", "show", "nobody-" + sid(), "--pool", "python", "--json"), 3)
    j = as_json(r)
    assert j["error"]["code"] == "SessionNotFound" and j["error"]["status"] == 404, j
    assert j["error"]["exit_status"] == 3 and "nobody-" in j["error"]["message"], j
    assert r.stderr == "", show(r)
    r = ok(ctl(wp, "pools", "show", "c", "--json", token="wrong-token"), 3)
    j = as_json(r)
    assert j["error"]["status"] == 401 and j["error"]["exit_status"] == 3, j
    r = ok(ctl(None, "nodes", "--json", url="http://127.0.0.1:1"), 3)
    j = as_json(r)
    assert j["error"]["code"] == "Unreachable" and "status" not in j["error"], j


def _help_examples():
    """Every `poolctl … --json | jq …` example of every command's --help."""
    out = []
    for cmd in ("run", "sessions", "nodes", "top", "pools", "langs", "files", "exec"):
        r = ctl(None, cmd, "--help")
        for line in r.stdout.split("Examples:")[-1].splitlines():
            line = line.strip()
            if line.startswith("poolctl") and "| jq" in line:
                out.append(line)
    return out


def test_help_jq_examples_answer_what_they_say(wp, tmp):
    """The help's jq examples, run as written (with the files they name made):
    `sessions ls … | jq '.sessions | length'` counts the sessions (it used to
    print 1 whatever the count), the others print what they select."""
    examples = _help_examples()
    assert len(examples) >= 4, examples
    pool_sessions = [sid() for _ in range(3)]
    prog = write(os.path.join(tmp, "p.py"), "print(1)\n")
    for s in pool_sessions:
        ok(ctl(wp, "run", "-s", s, prog))
    os.makedirs(os.path.join(tmp, "tests"), exist_ok=True)
    write(os.path.join(tmp, "tests", "1.in"), "")
    write(os.path.join(tmp, "tests", "1.out"), "1\n")
    write(os.path.join(tmp, "sol.py"), "print(1)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARMPOOL_")}
    env.update({"WARMPOOL_URL": wp.url, "WARMPOOL_TOKEN": ADMIN,
                "PATH": os.path.dirname(POOLCTL) + ":" + env.get("PATH", "")})
    for ex in examples:
        r = subprocess.run(["/bin/bash", "-o", "pipefail", "-c", ex],
                           cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        assert r.returncode in (0, 1), "example `%s` failed: %s" % (ex, show(r))
        assert "error" not in r.stderr.lower(), "example `%s`: %s" % (ex, show(r))
        if "sessions ls" in ex:
            n = len(wp.http().get("/v1/sessions?pool=python").body["sessions"])
            assert n >= 3 and r.stdout.strip() == str(n), "example `%s` printed %r, %d sessions" % (ex, r.stdout, n)
        elif "verdict" in ex:
            assert r.stdout.strip() == "accepted", "example `%s`: %s" % (ex, show(r))


def test_wait_progress_bar_keeps_its_width(wp):
    """`pools resize --wait` on a terminal redraws one line; its length must
    not change while the counts (9 → 10) and the clock grow (it jittered)."""
    env = dict(os.environ, WARMPOOL_URL=wp.url, WARMPOOL_TOKEN=ADMIN, TERM="xterm")
    try:
        st, out = _pty_run([POOLCTL, "pools", "resize", "python", "--warm", "14", "--wait", "--wait-timeout", "90"],
                           env)
        text = out.decode("utf-8", "replace")
        assert st == 0, "exit %d:\n%r" % (st, text)
        frames = [f.split("\r")[0] for f in text.split("\r\x1b[K")[1:]]
        frames = [f for f in frames if "ready" in f and " [" in f]
        assert len(frames) >= 2, "fewer than two frames: %r" % text
        assert len({len(f) for f in frames}) == 1, "the progress line changed width: %r" % frames
        # and it cannot: counts are padded to the target's width, the clock to 6 columns
        for f in frames:
            m = re.search(r"\] ( *\d+)/14 ready, ( *\d+) creating  ( *\d+\.\d) s$", f)
            assert m and len(m.group(1)) == 2 and len(m.group(2)) == 2 and len(m.group(3)) == 6, \
                "a field of the progress line is not padded: %r" % f
    finally:
        resize(wp, "python", 1)
