"""Level-2 pre-warming (docs/languages.md "Pre-warming"):

- C++: a precompiled <bits/stdc++.h>, built by sandboxd on first use with the
  language file's exact flags, shared read-only by every cpp slot at
  /opt/warmpool-pch. Proved by compile time (the same program with and
  without the header usable, in one test), and the directory is read-only
  from a slot.
- Python: a fork-server started with the slot (sandboxd/runtimes/pyfork.py):
  each test case is a fresh child of an interpreter that has already started,
  moved into the run's cgroup with the run's limits. Same semantics as
  `python3 main.py`, nothing carried from one test case to the next, and a
  program that kills or stops the server changes no verdict.
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import verdicts_of

BITS_SUM = (
    "#include <bits/stdc++.h>\n"
    "using namespace std;\n"
    "int main() { long long a, b; cin >> a >> b; vector<long long> v{a, b};\n"
    "    cout << accumulate(v.begin(), v.end(), 0LL) << endl; }\n"
)
# the same program, but the PCH cannot be used: a header comes first
BITS_SUM_NO_PCH = "#include <cstdio>\n" + BITS_SUM


def compile_cpu_ms(run, slot, source):
    b = run(slot, source, [("2 3\n", "5\n")])
    assert b["verdict"] == "accepted", "C++ program not accepted: %r" % (b,)
    assert b["compile"]["status"] == "ok", b
    return b["compile"]["time_ms"]


def wait_pch(run, slot, baseline_ms, timeout=120):
    """Compile BITS_SUM until the compile is far faster than the no-PCH
    baseline (the first compile starts the build; it takes ~7 s)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ms = compile_cpu_ms(run, slot, BITS_SUM)
        seen.append(ms)
        if ms < baseline_ms * 0.5:
            return ms, seen
        time.sleep(1)
    raise AssertionError(
        "bits/stdc++.h compiles never got faster than half the no-PCH compile (%d ms CPU) within %d s: %r"
        % (baseline_ms, timeout, seen)
    )


@pytest.fixture
def cpp_pch(make_slot, run):
    """A cpp slot whose PCH is built: (slot, no-PCH compile ms, PCH compile ms)."""
    slot = make_slot("cpp")
    baseline = compile_cpu_ms(run, slot, BITS_SUM_NO_PCH)
    ms, _ = wait_pch(run, slot, baseline)
    return slot, baseline, ms


def test_cpp_bits_stdcpp_compiles_against_the_pch(cpp_pch, make_slot, run):
    slot, baseline, ms = cpp_pch
    assert ms < baseline * 0.5, (ms, baseline)
    # a new slot uses the same (shared) header at once
    other = make_slot("cpp")
    ms2 = compile_cpu_ms(run, other, BITS_SUM)
    base2 = compile_cpu_ms(run, other, BITS_SUM_NO_PCH)
    assert ms2 < base2 * 0.5, "a second cpp slot does not use the PCH: %d ms vs %d ms without" % (ms2, base2)
    # and the verdicts are the program's
    b = run(other, BITS_SUM, [("1 2\n", "3\n"), ("5 5\n", "11\n")])
    assert verdicts_of(b) == ["accepted", "wrong_answer"], b


def test_cpp_without_bits_compiles_as_before(cpp_pch, run):
    slot = cpp_pch[0]
    src = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << std::endl; }\n"
    b = run(slot, src, [("1 2\n", "3\n")])
    assert b["verdict"] == "accepted", b
    # a compile error is still one, with the compiler's message
    b = run(slot, "#include <bits/stdc++.h>\nint main() { undefined_thing(); }\n", [("", "")])
    assert b["verdict"] == "compilation_error", b
    assert "undefined_thing" in b["compile"]["stderr"], b


PCH_PROBE = r"""
#include <bits/stdc++.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
int main() {
    const char *gch = "/opt/warmpool-pch/bits/stdc++.h.gch";
    struct stat st;
    if (stat(gch, &st) != 0) { printf("nogch\n"); return 0; }
    printf("owner=%d mode=%o\n", (int)st.st_uid, (unsigned)(st.st_mode & 07777));
    int fd = open(gch, O_WRONLY);
    printf("open_w=%s\n", fd < 0 ? strerror(errno) : "OPENED");
    fd = open("/opt/warmpool-pch/bits/evil.h.gch", O_WRONLY | O_CREAT, 0644);
    printf("create=%s\n", fd < 0 ? strerror(errno) : "CREATED");
    printf("unlink=%s\n", unlink(gch) < 0 ? strerror(errno) : "UNLINKED");
    printf("chmod=%s\n", chmod(gch, 0666) < 0 ? strerror(errno) : "CHMODDED");
    printf("rename=%s\n", rename("/opt/warmpool-pch/bits", "/opt/warmpool-pch/x") < 0 ? strerror(errno) : "RENAMED");
}
"""


def test_pch_dir_not_writable_from_a_slot(cpp_pch, run):
    slot = cpp_pch[0]
    b = run(slot, PCH_PROBE, [""])
    assert b["verdict"] == "accepted", b
    out = b["tests"][0]["stdout"]
    assert "owner=0 mode=444" in out, out
    for word in ("OPENED", "CREATED", "UNLINKED", "CHMODDED", "RENAMED"):
        assert word not in out, "a slot changed the shared PCH: %s" % out
    assert "Read-only file system" in out, out
    # still used afterwards
    ms = compile_cpu_ms(run, slot, BITS_SUM)
    assert ms < cpp_pch[1] * 0.5, (ms, cpp_pch[1])


# --------------------------------------------------------------------------
# Python: the fork-server

WHO = "import os\nprint(open('/proc/%d/cmdline' % os.getppid(), 'rb').read().split(b'\\0')[-2].decode())\n"


def wait_fork_server(run, slot, timeout=20):
    """Run WHO until its parent is the fork-server (it starts with the slot)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        b = run(slot, WHO, [""])
        seen = b["tests"][0]["stdout"]
        if "pyfork.py" in seen:
            return
        time.sleep(0.2)
    raise AssertionError("test cases never ran as children of the fork-server (parent: %r)" % seen)


@pytest.fixture
def py_slot(make_slot, run):
    slot = make_slot("python")
    wait_fork_server(run, slot)
    return slot


def test_python_test_cases_are_children_of_the_fork_server(py_slot, run):
    b = run(py_slot, WHO, ["", "", ""])
    assert [t["stdout"] for t in b["tests"]] == ["/opt/warmpool/pyfork.py\n"] * 3, b


def host_run(source, stdin):
    """`python3 -B main.py` on the host, as a slot runs it (its dir in the
    output replaced by /mnt/data): (stdout, stderr, exit code)."""
    d = tempfile.mkdtemp(prefix="wp-prewarm-")
    try:
        with open(os.path.join(d, "main.py"), "w") as f:
            f.write(source)
        with open(os.path.join(d, "stdin"), "w") as f:
            f.write(stdin)
        # stdin from a file: a slot's stdin is a memfd, seekable too
        with open(os.path.join(d, "stdin"), "rb") as inp:
          p = subprocess.run(
            ["/usr/bin/python3", "-B", "main.py"],
            cwd=d,
            stdin=inp,
            capture_output=True,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"},
            timeout=60,
        )
        fix = lambda b: b.decode("utf-8", "replace").replace(d, "/mnt/data")  # noqa: E731
        return fix(p.stdout), fix(p.stderr), p.returncode
    finally:
        shutil.rmtree(d, ignore_errors=True)


SEMANTICS = {
    "argv_and_main": (
        "import sys\nprint(sys.argv, __name__, __file__, __package__, __spec__, sys.path[0])\n"
        "print(sys.stdin.seekable(), sys.stdout.seekable(), sys.stdout.line_buffering, sys.stderr.line_buffering)\n"
        "print(sys.stdout.encoding, sys.stdout.errors, sys.stderr.errors, sys.stdin.errors)\n"
        "import __main__\nprint(__main__.__dict__ is globals(), sorted(k for k in globals() if k != 'sys' and k != '__main__'))\n",
        "",
    ),
    "input_then_eof": ("a, b = map(int, input().split())\nprint(a + b)\nprint(input())\n", "1 2\n"),
    "exception_traceback": (
        "def f(x):\n    return 1 // x\n\ndef g():\n    try:\n        f(0)\n    except ZeroDivisionError as e:\n"
        "        raise ValueError('boom') from e\n\nprint('before', flush=True)\ng()\n",
        "",
    ),
    "sys_exit_code": ("import sys\nprint('x')\nsys.exit(3)\n", ""),
    "sys_exit_message": ("import sys\nsys.exit('bye now')\n", ""),
    "exit_zero_with_atexit": ("import atexit\natexit.register(lambda: print('atexit ran'))\nprint('main')\n", ""),
    "os_exit": ("import os\nprint('lost (buffered)')\nos._exit(5)\n", ""),
    "syntax_error": ("print('never'\nx = 1\n", ""),
    "stderr_and_stdout": ("import sys\nsys.stderr.write('to stderr\\n')\nprint('to stdout')\nprint('é ✓ 😀')\n", ""),
    "recursion_limit": ("import sys\nprint(sys.getrecursionlimit(), flush=True)\ndef f(n):\n    return f(n + 1)\nf(0)\n", ""),
    "deep_recursion_allowed": (
        "import sys\nsys.setrecursionlimit(200000)\ndef f(n):\n    return n if n == 0 else 1 + f(n - 1)\nprint(f(100000))\n",
        "",
    ),
    "thread_outlives_main": (
        "import threading, time\ndef t():\n    time.sleep(0.2)\n    print('thread done')\n"
        "threading.Thread(target=t).start()\nprint('main done')\n",
        "",
    ),
    "keyword_exit_and_none": ("raise SystemExit\n", ""),
    "uncaught_in_excepthook_user": (
        "import sys\nsys.excepthook = lambda t, v, tb: print('hook', t.__name__, v)\nraise KeyError('k')\n",
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(SEMANTICS))
def test_python_fork_server_semantics_match_python3_main_py(py_slot, run, sandboxd, name):
    source, stdin = SEMANTICS[name]
    log_at = sandboxd.log_size()
    want_out, want_err, want_code = host_run(source, stdin)
    b = run(py_slot, source, [stdin], limits={"memory_kb": 524288})
    t = b["tests"][0]
    got = (t["stdout"], t["stderr"], t["exit_code"])
    assert got == (want_out, want_err, want_code), "fork-server run differs from `python3 main.py`:\n got  %r\n want %r" % (
        got,
        (want_out, want_err, want_code),
    )
    log = sandboxd.log_text(log_at)
    assert "pre-started helper lost" not in log, "the fork-server did not run the test case:\n" + log


def test_python_state_does_not_carry_between_test_cases(py_slot, run):
    src = (
        "import builtins, sys, os\n"
        "seen = (getattr(builtins, 'LEFT', None), 'json' in sys.modules and sys.modules['json'] is None,\n"
        "        os.environ.get('LEFT'), sys.getrecursionlimit())\n"
        "print(seen)\n"
        "builtins.LEFT = 1\nsys.modules['json'] = None\nos.environ['LEFT'] = '1'\nsys.setrecursionlimit(50)\n"
        "builtins.print = None\n"
    )
    b = run(py_slot, src, ["", "", ""])
    assert [t["stdout"] for t in b["tests"]] == ["(None, False, None, 1000)\n"] * 3, b
    b = run(py_slot, src, [""])
    assert b["tests"][0]["stdout"] == "(None, False, None, 1000)\n", b


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSTOP"])
def test_python_program_that_kills_or_stops_the_fork_server(py_slot, run, sig):
    src = (
        "import os, signal\n"
        "try:\n    os.kill(os.getppid(), signal.%s)\nexcept OSError:\n    pass\n"
        "a, b = map(int, input().split())\nprint(a + b)\n" % sig
    )
    b = run(py_slot, src, [("1 2\n", "3\n"), ("2 2\n", "5\n"), ("5 5\n", "10\n")])
    assert verdicts_of(b) == ["accepted", "wrong_answer", "accepted"], b
    # the next submission still runs in a (restarted) fork-server
    wait_fork_server(run, py_slot)
    b = run(py_slot, "print(int(input()) * 2)\n", [("4\n", "8\n")])
    assert verdicts_of(b) == ["accepted"], b


def test_python_limits_apply_to_forked_test_cases(py_slot, run):
    b = run(py_slot, "while True:\n    pass\n", [""], limits={"cpu_ms": 1000})
    assert verdicts_of(b) == ["time_limit_exceeded"], b
    b = run(py_slot, "x = bytearray(300 << 20)\nx[::4096] = b'x' * len(x[::4096])\nprint(len(x))\n", [""],
            limits={"memory_kb": 65536})
    assert verdicts_of(b) == ["memory_limit_exceeded"], b
    # CPU time is the test case's own, not the server's
    b = run(py_slot, "print(1)\n", ["", ""])
    assert all(t["time_ms"] < 500 for t in b["tests"]), b
    wait_fork_server(run, py_slot)


def test_python_floods(py_slot, run):
    big = "7\n" * (4 << 20)
    b = run(py_slot, "import sys\nprint(sum(1 for _ in sys.stdin))\n", [(big, "%d\n" % (4 << 20))], timeout=120)
    assert verdicts_of(b) == ["accepted"], b
    b = run(py_slot, "while True:\n    print('x' * 1000)\n", [""], limits={"output_bytes": 1 << 20})
    assert verdicts_of(b) == ["output_limit_exceeded"], b
    b = run(py_slot, "print(int(input()) + 1)\n", [("1\n", "2\n")])
    assert verdicts_of(b) == ["accepted"], b
