"""Level-2 pre-warming (docs/languages.md "Pre-warming"):

- C++: a precompiled <bits/stdc++.h> and <iostream>, built by sandboxd on
  first use with the language file's exact flags, shared read-only by every
  cpp slot at /opt/warmpool-pch. Proved by compile time (the same program
  with and without the header usable, in one test), and the directory is
  read-only from a slot.
- Python: a fork-server started with the slot (sandboxd/runtimes/pyfork.py):
  each test case is a fresh child of an interpreter that has already started,
  moved into the run's cgroup with the run's limits. Same semantics as
  `python3 main.py`, nothing carried from one test case to the next, and a
  program that kills or stops the server changes no verdict.
- Java: a compile server started with the slot (sandboxd/runtimes/
  JavacServer.java): a JVM with javac loaded and warmed up, which does one
  compile itself, inside the compile's run group under the compile limits,
  with javac's own diagnostics, then exits.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import wpdaemons as wp

from conftest import LANG_DIR, changed_language, proc_cmdline, show, verdicts_of

BUSY_UID_BASE = 380000  # the busy node of the compile-server test: capacity 4
PCH_FAIL_UID_BASE = 382000  # the node whose first precompiled header cannot build: capacity 4
JAVAC_LINE_UID_BASE = 383000  # the node whose java.conf compiles with the javac launcher: capacity 4
WARM_UPS_UID_BASE = 388000  # the node whose Java slots warm up one at a time: capacity 6

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


IOSTREAM_SUM = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << std::endl; }\n"


def test_cpp_iostream_compiles_against_its_pch(cpp_pch, run):
    """<iostream> first: its own precompiled header (built with bits/stdc++.h's,
    by the same first compile). Measured: ~0.12 s of CPU against ~0.32 s."""
    slot = cpp_pch[0]
    # the same program with a header before <iostream>: no PCH can be used
    baseline = compile_cpu_ms(run, slot, "#include <cstdio>\n" + IOSTREAM_SUM)
    deadline, seen = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        seen.append(compile_cpu_ms(run, slot, IOSTREAM_SUM))
        if seen[-1] < baseline * 0.6:
            break
        time.sleep(1)
    assert seen[-1] < baseline * 0.6, "<iostream> compiles never used iostream.gch: %r ms vs %d ms without" % (
        seen, baseline)
    b = run(slot, IOSTREAM_SUM, [("1 2\n", "3\n"), ("5 5\n", "11\n")])
    assert verdicts_of(b) == ["accepted", "wrong_answer"], b


def test_cpp_without_bits_compiles_as_before(cpp_pch, run):
    slot = cpp_pch[0]
    src = "#include <vector>\n" + IOSTREAM_SUM
    b = run(slot, src, [("1 2\n", "3\n")])
    assert b["verdict"] == "accepted", b
    # a precompiled header after another one: GCC reads the real one
    b = run(slot, "#include <bits/stdc++.h>\n" + IOSTREAM_SUM, [("1 2\n", "3\n")])
    assert b["verdict"] == "accepted", b
    # a compile error is still one, with the compiler's message
    b = run(slot, "#include <bits/stdc++.h>\nint main() { undefined_thing(); }\n", [("", "")])
    assert b["verdict"] == "compilation_error", b
    assert "undefined_thing" in b["compile"]["stderr"], b


def test_a_header_that_cannot_build_leaves_the_others_and_says_why():
    """Each header of `pch` is a build of its own: one that fails (here a
    header that does not exist) is logged with g++'s message, and the
    others are built and used."""
    langs, _ = changed_language("pchfail", "cpp.conf", "\npch = bits/stdc++.h iostream\n",
                                "\npch = nothing/missing.h iostream\n")
    sb = wp.Sandboxd(wp.make_tmpdir("wp-prewarm-pchfail-"), PCH_FAIL_UID_BASE, capacity=4, languages=langs)
    sb.start()
    try:
        c = sb.client(timeout=60)
        r = c.post("/v1/slots", {"language": "cpp", "wait": True}, timeout=60)
        assert r.status == 201, r
        slot = r.body["slots"][0]["id"]

        def compile_ms(src):
            r = c.post("/v1/slots/%s/run" % slot, {"source": src, "tests": [{"stdin": "2 3\n", "expected": "5\n"}]})
            assert r.status == 200 and verdicts_of(r.body) == ["accepted"], r
            return r.body["compile"]["time_ms"]

        baseline = compile_ms("#include <cstdio>\n" + IOSTREAM_SUM)
        assert wp.wait_for(lambda: compile_ms(IOSTREAM_SUM) < baseline * 0.6, 60, 0.5), \
            "<iostream> was not precompiled beside a header that failed"
        log = sb.log_text()
        assert any("pch cpp <iostream>: " in l and " built in " in l for l in log.splitlines()), log
        failed = [l for l in log.splitlines() if "pch cpp <nothing/missing.h>: the build failed" in l]
        assert failed and "missing.h" in failed[0].split("the build failed", 1)[1] and "compiles go on" in failed[0], log
        # a program that includes it gets the compiler's own message
        r = c.post("/v1/slots/%s/run" % slot, {"source": "#include <nothing/missing.h>\nint main(){}\n",
                                                "tests": [{"stdin": ""}]})
        assert r.status == 200 and r.body["verdict"] == "compilation_error", r
        assert "nothing/missing.h" in r.body["compile"]["stderr"], r.body
    finally:
        sb.stop()
        sb.cleanup()


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
    if (stat("/opt/warmpool-pch/iostream.gch", &st) == 0)
        printf("iostream owner=%d mode=%o\n", (int)st.st_uid, (unsigned)(st.st_mode & 07777));
    printf("unlink2=%s\n", unlink("/opt/warmpool-pch/iostream.gch") < 0 ? strerror(errno) : "UNLINKED");
}
"""


def test_pch_dir_not_writable_from_a_slot(cpp_pch, run):
    slot = cpp_pch[0]
    b = run(slot, PCH_PROBE, [""])
    assert b["verdict"] == "accepted", b
    out = b["tests"][0]["stdout"]
    assert "owner=0 mode=444" in out, out
    assert "iostream owner=0 mode=444" in out, out
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
    assert [t["stdout"] for t in b["tests"]] == ["/opt/warmpool/pyfork.pyc\n"] * 3, b


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
    # what the interpreter's exit does besides atexit: __del__ of the
    # script's objects, streams it left open flushed, a replaced sys.stdout
    "del_at_exit": (
        "import sys\nclass D:\n    def __del__(self):\n        print('del ran', flush=True)\nd = D()\nprint('main')\n",
        "",
    ),
    "unclosed_stream_at_exit": ("import os\nout = os.fdopen(os.dup(1), 'w')\nout.write('via fdopen\\n')\n", ""),
    "replaced_stdout_at_exit": (
        "import io, sys\nprint('to the original')\nsys.stdout = io.StringIO()\nprint('kept in memory')\n",
        "",
    ),
    "exit_code_big_and_negative": ("import sys\nsys.exit(257)\n", ""),
    "exit_with_object": ("import sys\nsys.exit(['a', 1])\n", ""),
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


def test_python_waiting_child_s_stand_in_program_leaves_nothing_behind(py_slot, run):
    """The child forked ahead runs a stand-in program of pyfork.py's own
    before its step comes (it copies the pages a test case writes first):
    the test case finds none of its objects, modules or names."""
    src = (
        "import gc, sys, types\n"
        "found = []\n"
        "for o in gc.get_objects():\n"
        "    if isinstance(o, types.FunctionType) and o.__code__.co_filename == '/nonexistent/main.py':\n"
        "        found.append('function ' + o.__name__)\n"
        "    elif isinstance(o, types.CodeType) and o.co_filename == '/nonexistent/main.py':\n"
        "        found.append('code ' + o.co_name)\n"
        "    elif isinstance(o, types.ModuleType) and o.__name__ == '__standin__':\n"
        "        found.append('module')\n"
        "print(found, [m for m in sys.modules if 'standin' in m], sorted(k for k in globals() if not k.startswith('__')))\n"
        "print(input.__module__, print.__module__, gc.garbage)\n"
    )
    b = run(py_slot, src, ["", ""])
    want = "[] [] ['found', 'gc', 'o', 'sys', 'types']\nbuiltins builtins []\n"
    assert [t["stdout"] for t in b["tests"]] == [want] * 2, b


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


def test_python_first_run_in_a_fresh_slot_is_not_slower_than_its_second(make_slot, run):
    """A judged submission gets a fresh slot: its first run is the one a
    user waits for. The fork-server forks that child ahead, into its run
    cgroup, when the slot is made (a cgroup move can wait for an RCU grace
    period, ~10 ms; the fork faults pages in): so the first run in a fresh
    slot takes about as long as the second. Round trips of the sandboxd API,
    medians of fresh slots, first against second in the same test."""
    src = "a, b = map(int, input().split())\nprint(a + b)\n"
    first, second = [], []
    for _ in range(7):
        slot = make_slot("python")
        time.sleep(0.3)  # a pool makes its slots ahead of need
        for into in (first, second):
            t0 = time.monotonic()
            b = run(slot, src, [("1 2\n", "3\n")])
            into.append(time.monotonic() - t0)
            assert verdicts_of(b) == ["accepted"], b
    first.sort()
    second.sort()
    f, s = first[len(first) // 2], second[len(second) // 2]
    assert f <= s * 1.4 + 0.002, (
        "the first Python run in a fresh slot takes %.1f ms, the second %.1f ms (medians; firsts %s, seconds %s): "
        "the first run pays for work that could be done when the slot is made"
        % (f * 1000, s * 1000, [round(x * 1000, 1) for x in first], [round(x * 1000, 1) for x in second])
    )


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSTOP"])
def test_python_program_that_kills_or_stops_the_next_test_case_s_waiting_child(py_slot, run, sandboxd, sig):
    """The next test case's child is forked ahead and waits (same uid as the
    test case): a test case that finds it and kills or stops it changes no
    verdict, and the next test case runs as a child of the fork-server.
    The last test case finds none: no child is forked for a step that the
    request does not have (it would take CPU from the running one)."""
    src = (
        "import os, signal, time\n"
        "me, server, hit = os.getpid(), os.getppid(), []\n"
        "deadline = time.monotonic() + 2\n"
        "while not hit and time.monotonic() < deadline:\n"
        "    for p in os.listdir('/proc'):\n"
        "        if not p.isdigit() or int(p) == me:\n"
        "            continue\n"
        "        try:\n"
        "            ppid = int(open('/proc/%%s/stat' %% p).read().rsplit(')', 1)[1].split()[1])\n"
        "        except (OSError, ValueError, IndexError):\n"
        "            continue\n"
        "        if ppid == server:\n"
        "            os.kill(int(p), signal.%s)\n"
        "            hit.append(p)\n"
        "    time.sleep(0.01)\n"
        "a, b = map(int, input().split())\n"
        "print(a + b, len(hit) > 0)\n" % sig
    )
    log_at = sandboxd.log_size()
    b = run(py_slot, src, [("1 2\n", "3 True\n"), ("2 2\n", "4 True\n"), ("5 5\n", "10 False\n")])
    assert verdicts_of(b) == ["accepted"] * 3, b
    b = run(py_slot, WHO, [""])
    assert b["tests"][0]["stdout"] == "/opt/warmpool/pyfork.pyc\n", b
    log = sandboxd.log_text(log_at)
    assert "pre-started helper lost" not in log, "a killed or stopped waiting child cost the fork-server:\n" + log


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


# --------------------------------------------------------------------------
# Java: the compile server

JDK = "/usr/lib/jvm/java-17-openjdk-amd64/bin/"
JAVA_SUM = (
    "import java.util.*;\n"
    "public class Main {\n"
    "    public static void main(String[] args) {\n"
    "        Scanner in = new Scanner(System.in);\n"
    "        long a = in.nextLong(), b = in.nextLong();\n"
    "        System.out.println(a + b);\n"
    "    }\n"
    "}\n"
)


def java_compile_argv():
    """The compile line of the shipped java.conf."""
    conf = wp.language_file(os.path.join(LANG_DIR, "java.conf"))["language"]
    assert "compile" in conf, "java.conf has no compile line"
    return conf["compile"].split()


def slot_cgroups(pid):
    """{controller: path} of a host process."""
    out = {}
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(","):
                    out[c] = path
    except OSError:
        pass
    return out


def javac_servers(slot):
    """Host pids of the compile servers whose cgroups are the slot's."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and "JavacServer" in proc_cmdline(d):
            cg = slot_cgroups(int(d))
            if any(slot in path for path in cg.values()):
                pids.append(int(d))
    return pids


def wait_javac_server(slot, timeout=60, exclude=()):
    """Wait for a compile server of the slot that is ready: it has loaded
    javac and compiled its warm-up (its CPU time stops growing)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        pids = [p for p in javac_servers(slot) if p not in exclude]
        if pids:
            try:
                with open("/proc/%d/stat" % pids[0]) as f:
                    f_ = f.read().rsplit(")", 1)[1].split()
                cpu = int(f_[11]) + int(f_[12])
            except OSError:
                cpu = None
            if cpu is not None and cpu == last:
                return pids[0]
            last = cpu
        time.sleep(0.5)
    raise AssertionError("no ready compile server (JavacServer) in slot %s within %d s" % (slot, timeout))


def host_javac(source, extra=(), jvm_flags=()):
    """The shipped compile line on the host (jvm_flags added before javac's
    entry point): (stderr, exit code, CPU ms)."""
    d = tempfile.mkdtemp(prefix="wp-javac-")
    try:
        with open(os.path.join(d, "Main.java"), "w") as f:
            f.write(source)
        before = os.times()
        argv = java_compile_argv()
        main = argv.index("com.sun.tools.javac.Main")
        argv = argv[:main] + list(jvm_flags) + argv[main:] + list(extra)
        p = subprocess.run(argv, cwd=d, capture_output=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        after = os.times()
        cpu = (after.children_user - before.children_user + after.children_system - before.children_system) * 1000
        return p.stderr.decode("utf-8", "replace"), p.returncode, cpu
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def java_slot(make_slot):
    slot = make_slot("java")
    wait_javac_server(slot)
    return slot


def test_java_compile_runs_in_the_warm_server_and_pays_only_the_compile(java_slot, run):
    server = javac_servers(java_slot)
    assert len(server) == 1, "one compile server per slot: %r" % server
    _, _, bare_cpu = host_javac(JAVA_SUM)
    b = run(java_slot, JAVA_SUM, [("1 2\n", "3\n"), ("5 5\n", "11\n")])
    assert verdicts_of(b) == ["accepted", "wrong_answer"], b
    assert b["compile"]["status"] == "ok", b
    # javac was loaded and warmed before the submission came: the compile's
    # CPU is a fraction of a cold `javac` with the same flags
    assert b["compile"]["time_ms"] < bare_cpu * 0.5, (
        "compile took %d ms CPU in the slot, a cold javac %d ms on the host: the compile server was not used"
        % (b["compile"]["time_ms"], bare_cpu)
    )
    # one compile per JVM: the server that compiled is gone
    assert not [p for p in server if os.path.exists("/proc/%d" % p)], "the compile server outlived its compile"


DIAGNOSTICS = {
    "errors": "public class Main {\n  public static void main(String[] a) { int x = \"s\"; undefinedCall(); }\n}\n",
    "warning_note": (
        "import java.util.*;\npublic class Main {\n  public static void main(String[] a) {\n"
        "    List l = new ArrayList(); l.add(1); System.out.println(l);\n  }\n}\n"
    ),
    "deprecation_and_unicode": (
        "public class Main {\n  public static void main(String[] a) {\n    String é = \"✓\"; Integer i = new Integer(3);\n"
        "    System.out.println(é + i) }\n}\n"
    ),
    "wrong_public_class": "public class Other {}\n",
    "parse_error": "public class Main { void f( }\n",
}


@pytest.mark.parametrize("name", sorted(DIAGNOSTICS))
def test_java_compile_server_diagnostics_are_javac_s(make_slot, run, sandboxd, name):
    slot = make_slot("java")
    wait_javac_server(slot)
    source = DIAGNOSTICS[name]
    want_err, want_rc, _ = host_javac(source)
    log_at = sandboxd.log_size()
    b = run(slot, source, [""])
    c = b["compile"]
    assert (c["stderr"], c["exit_code"]) == (want_err, want_rc), (
        "compile server output differs from javac:\n got  %r\n want %r" % ((c["stderr"], c["exit_code"]), (want_err, want_rc))
    )
    assert b["verdict"] == ("accepted" if want_rc == 0 else "compilation_error"), b
    log = sandboxd.log_text(log_at)
    assert "started again without the pre-started helper" not in log, log


HELPER_MAIN = (
    "import java.util.*;\n"
    "public class Main { public static void main(String[] a) {\n"
    "    Scanner s = new Scanner(System.in); System.out.println(Helper.sum(s.nextLong(), s.nextLong())); } }\n"
)


def test_java_compile_server_finds_the_slot_s_other_sources_as_javac_does(client, java_slot, run):
    """A class in another file of the slot's directory (a session's upload)
    is found by the compile server's javac, as a plain javac finds it in
    its class path "." (the server's own JVM has its jar as class path)."""
    r = client.put("/v1/slots/%s/files/Helper.java" % java_slot,
                   b"public class Helper { static long sum(long a, long b) { return a + b; } }\n")
    assert r.status in (200, 201), r
    b = run(java_slot, HELPER_MAIN, [("1 2\n", "3\n")])
    assert b["compile"]["status"] == "ok" and b["verdict"] == "accepted", (
        "Main.java using Helper.java of the same directory: %s" % show(b))


def test_java_compile_server_takes_other_compile_lines():
    """java.conf's compile line runs javac's entry point in a plain JVM.
    Other lines work with the compile server as they do without it:
    - one written for javac's launcher (`javac -J<JVM flag>… <args>`):
      javac ignores the -J flags, its diagnostics are its own;
    - one whose JVM has a class path of its own (`java -cp DIR
      com.sun.tools.javac.Main …`): javac's default class path is that, not
      "." (a class beside Main.java is then not found, as without the
      server);
    - one with a JVM flag that the server's JVM (java.conf's prestart) was
      not started with (-Duser.language=ja: javac's messages in Japanese):
      the server refuses the step, sandboxd runs the line itself, and the
      diagnostics are the line's."""
    line = ("compile = /usr/lib/jvm/java-17-openjdk-amd64/bin/java -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
            " -XX:-UsePerfData\n"
            "    -XX:SharedArchiveFile=/opt/warmpool/javacserver.jsa com.sun.tools.javac.Main -encoding UTF-8 Main.java\n")
    launcher = ("compile = /usr/lib/jvm/java-17-openjdk-amd64/bin/javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1\n"
                "    -J-XX:-UsePerfData -J-XX:SharedArchiveFile=/opt/warmpool/javacserver.jsa -encoding UTF-8 Main.java\n")
    langs, _ = changed_language("javacline", "java.conf", line, launcher)
    _, cp = changed_language("javacline-cp", "java.conf", "com.sun.tools.javac.Main",
                             "-cp /nonexistent/lib com.sun.tools.javac.Main")
    with open(os.path.join(langs, "java-cp.conf"), "w") as f:
        f.write(cp.replace("name = java\n", "name = java-cp\n"))
    _, ja = changed_language("javacline-ja", "java.conf", " com.sun.tools.javac.Main",
                             " -Duser.language=ja com.sun.tools.javac.Main")
    with open(os.path.join(langs, "java-ja.conf"), "w") as f:
        f.write(ja.replace("name = java\n", "name = java-ja\n"))
    sb = wp.Sandboxd(wp.make_tmpdir("wp-prewarm-javacline-"), JAVAC_LINE_UID_BASE, capacity=4, languages=langs,
                     log_level="debug")
    sb.start()
    try:
        c = sb.client(timeout=60)

        def compile_in_server(lang, source, helper=None, server=True):
            r = c.post("/v1/slots", {"language": lang, "wait": True}, timeout=60)
            assert r.status == 201, r
            slot = r.body["slots"][0]["id"]
            if helper:
                assert c.put("/v1/slots/%s/files/Helper.java" % slot, helper).status in (200, 201)
            wait_javac_server(slot)
            r = c.post("/v1/slots/%s/run" % slot, {"source": source, "tests": [{"stdin": "1 2\n", "expected": "3\n"}]})
            assert r.status == 200, r
            did = "slot %s: pre-started helper did its step" % slot in sb.log_text()
            assert did == server, "the compile was%s the server's" % ("" if did else " not")
            return r.body

        b = compile_in_server("java", JAVA_SUM)
        assert b["verdict"] == "accepted", show(b)
        b = compile_in_server("java", DIAGNOSTICS["errors"])
        assert b["verdict"] == "compilation_error", show(b)
        assert "error:" in b["compile"]["stderr"] and "-J" not in b["compile"]["stderr"], show(b)
        b = compile_in_server("java-cp", HELPER_MAIN,
                              b"public class Helper { static long sum(long a, long b) { return a + b; } }\n")
        assert b["verdict"] == "compilation_error", show(b)
        assert "cannot find symbol" in b["compile"]["stderr"] and "Helper" in b["compile"]["stderr"], show(b)
        b = compile_in_server("java-ja", DIAGNOSTICS["errors"], server=False)
        want_err, want_rc, _ = host_javac(DIAGNOSTICS["errors"], jvm_flags=["-Duser.language=ja"])
        assert "エラー" in want_err, want_err
        assert (b["compile"]["stderr"], b["compile"]["exit_code"]) == (want_err, want_rc), show(b)
        assert "the compile line's JVM flag -Duser.language=ja is not the compile server's" in sb.log_text()
    finally:
        sb.stop()
        sb.cleanup()


# a compile that takes javac ~1-2 s of CPU (6 000 methods); it prints -1
HEAVY_JAVA = "public class Main {\n" + "".join(
    "  static int f%d(int x) { return x * %d + (x >> 3) - (x ^ %d); }\n" % (i, i, i) for i in range(6000)
) + "  public static void main(String[] a) { System.out.println(f1(2)); }\n}\n"


def test_java_compile_server_is_in_the_slot_cgroups_and_the_compile_in_its_run_group(java_slot, run):
    pid = javac_servers(java_slot)[0]
    cg = slot_cgroups(pid)
    for ctrl in ("memory", "pids", "cpuacct"):
        assert java_slot in cg.get(ctrl, ""), "compile server outside the slot's %s cgroup: %r" % (ctrl, cg)
    # a compile that takes CPU: accounted to (and limited in) the compile's
    # run group, not left in the server's group
    b = run(java_slot, HEAVY_JAVA, [("", "-1\n")], compile_limits={"cpu_ms": 300})
    assert b["verdict"] == "compilation_error", b
    assert b["compile"].get("reason") == "time_limit_exceeded", b
    assert "time" in b["compile"]["message"].lower(), b


def test_java_compile_server_joins_its_run_group_with_every_thread(java_slot, run):
    """The compile server (a JVM: the compiling thread, JIT compilers, GC)
    joins the compile's run group as a whole: a thread left in the server's
    group would compile and collect outside the compile's limits."""
    pid = javac_servers(java_slot)[0]
    got = {}
    t = threading.Thread(target=lambda: got.update(b=run(java_slot, HEAVY_JAVA, [("", "-1\n")])))
    t.start()
    seen = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and t.is_alive():
            groups = {}
            for tid in os.listdir("/proc/%d/task" % pid):
                groups[int(tid)] = slot_cgroups(int(tid)).get("pids", "")
            if any(g.split("/")[-1].startswith("run") for g in groups.values()):
                seen = groups
                break
            time.sleep(0.01)
    except FileNotFoundError:
        pass
    finally:
        t.join(60)
    assert got.get("b", {}).get("verdict") == "accepted", got
    assert seen, "never saw the compile server in its compile's run group"
    group = next(g for g in seen.values() if g.split("/")[-1].startswith("run"))
    outside = {tid: g for tid, g in seen.items() if g != group}
    assert not outside, "threads of the compile server outside its run group %r: %r" % (group, outside)


def test_java_huge_source_is_a_compile_limit_with_a_message(make_slot, run):
    slot = make_slot("java")
    wait_javac_server(slot)
    body = "".join("  static long f%d(long x) { return x * %d + (x >> 3) - (x ^ %d); }\n" % (i, i, i) for i in range(60000))
    huge = "public class Main {\n" + body + "  public static void main(String[] a) { System.out.println(f7(1)); }\n}\n"
    assert len(huge) > 4 << 20
    b = run(slot, huge, [("", "1\n")], compile_limits={"cpu_ms": 2000, "memory_kb": 262144}, timeout=120)
    assert b["verdict"] == "compilation_error", b
    assert b["compile"].get("reason") in ("memory_limit_exceeded", "time_limit_exceeded"), b
    assert b["compile"]["message"], b
    # the next submission compiles right, in a fresh server
    other = make_slot("java")
    wait_javac_server(other)
    b = run(other, JAVA_SUM, [("1 2\n", "3\n")])
    assert verdicts_of(b) == ["accepted"], b


JAVA_STATE = (
    "public class Main {\n"
    "    static int counter;\n"
    "    public static void main(String[] args) throws Exception {\n"
    "        System.out.println(++counter + \" \" + System.getProperty(\"left\") + \" \" + Main.class.getClassLoader().getClass().getName());\n"
    "        System.setProperty(\"left\", \"x\");\n"
    "    }\n"
    "}\n"
)


def test_java_compile_server_keeps_nothing_between_submissions(java_slot, run):
    first = javac_servers(java_slot)
    b = run(java_slot, JAVA_STATE, [("", "1 null jdk.internal.loader.ClassLoaders$AppClassLoader\n")])
    assert verdicts_of(b) == ["accepted"], b
    # the same slot again (sandboxd's own API allows it; poold's judged
    # slots are destroyed after one submission): the compile server that
    # compiled the first is gone; the next compile is another JVM's
    assert not [p for p in first if os.path.exists("/proc/%d" % p)], "the first compile server is still there"
    b = run(java_slot, JAVA_STATE.replace("counter;", "counter = 40;"), [("", "41 null jdk.internal.loader.ClassLoaders$AppClassLoader\n")])
    assert verdicts_of(b) == ["accepted"], b
    second = wait_javac_server(java_slot, exclude=first)
    assert second not in first
    # the class the first submission defined is not known to the next compile
    b = run(java_slot, "public class Main { public static void main(String[] a) { Gone.f(); } }\n", [""])
    assert b["compile"]["status"] == "error" and "Gone" in b["compile"]["stderr"], b


def slot_cpu_weight_file(slot):
    """("v1" | "v2", the file of the slot's cgroup CPU weight): v1
    cpu.shares (1024 = default), v2 cpu.weight (100 = default). The compile
    server sits in <root>/slot-<id>/kernel: the slot's group is its parent."""
    cg = slot_cgroups(javac_servers(slot)[0])
    if "cpu" in cg:
        for mnt in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):
            f = mnt + os.path.dirname(cg["cpu"]) + "/cpu.shares"
            if os.path.exists(f):
                return "v1", f
    return "v2", "/sys/fs/cgroup%s/cpu.weight" % os.path.dirname(cg[""])


def read_int(path):
    with open(path) as f:
        return int(f.read())


def test_java_slot_warms_up_at_the_lowest_cpu_weight_and_its_step_has_the_default(make_slot, run):
    slot = make_slot("java")
    # the slot is ready before its server; the server starts and warms up
    # on CPU no other slot wants
    assert wp.wait_for(lambda: javac_servers(slot), 10, 0.01), "no compile server started in slot %s" % slot
    mode, path = slot_cpu_weight_file(slot)
    lowest, default = (10, 1024) if mode == "v1" else (1, 100)
    assert read_int(path) == lowest, "a warming slot's %s weight is %d, want the lowest (%d)" % (
        mode, read_int(path), lowest)
    wait_javac_server(slot)
    assert read_int(path) == lowest, "the weight must stay the lowest until a step comes"
    # a step: the compile and the tests after it have the default weight
    sleeper = ("public class Main { public static void main(String[] a) throws Exception {"
               " Thread.sleep(2500); System.out.println(3); } }\n")
    seen = []

    def watch():
        end = time.monotonic() + 8
        while time.monotonic() < end and not done:
            try:
                seen.append(read_int(path))
            except OSError:
                return
            time.sleep(0.05)

    done = False
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    b = run(slot, sleeper, [("", "3\n")], limits={"wall_ms": 10000})
    done = True
    t.join()
    assert verdicts_of(b) == ["accepted"], b
    assert default in seen, "the slot's weight during its run: %r (want the default %d)" % (sorted(set(seen)), default)


def check_java_compiles_as_javac(make_slot, run, prepare, what):
    """Right verdicts, and javac's own diagnostics, for a compile on a Java
    slot of prepare(make_slot), which puts its server in some state."""
    for source, tests, want in ((JAVA_SUM, [("1 2\n", "3\n"), ("5 5\n", "11\n")], ["accepted", "wrong_answer"]),
                                (DIAGNOSTICS["errors"], [""], None)):
        slot = prepare(make_slot)
        b = run(slot, source, tests)
        if want:
            assert b["compile"]["status"] == "ok", b
            assert verdicts_of(b) == want, b
        else:
            want_err, want_rc, _ = host_javac(source)
            c = b["compile"]
            assert (c["stderr"], c["exit_code"]) == (want_err, want_rc), (
                "a compile %s differs from javac:\n got  %r\n want %r"
                % (what, (c["stderr"], c["exit_code"]), (want_err, want_rc)))


def test_java_step_while_the_server_warms_up_compiles_as_javac(make_slot, run, sandboxd):
    """A submission that comes before the warm-up is done stops it and
    compiles in the same JVM: javac's own diagnostics and verdicts."""
    def server_ready_and_warming(make_slot):
        slot = make_slot("java")
        assert wp.wait_for(lambda: "slot %s: pre-started helper ready, warming up" % slot in sandboxd.log_text(),
                           30, 0.005), "slot %s: no ready compile server" % slot
        return slot

    check_java_compiles_as_javac(make_slot, run, server_ready_and_warming, "during the warm-up")


def test_java_compile_before_its_server_is_ready_runs_the_usual_way(make_slot, run, sandboxd):
    """The slot is ready before its compile server (a JVM: ~0.08 s of CPU to
    start, more on a busy node): a submission that comes first does not
    wait for it. The server is stopped; the compile is a plain javac (with
    the server's class archive): javac's verdicts and diagnostics, no
    server left, the slot's default CPU weight again."""
    stopped = {}

    def server_not_ready(make_slot):
        # the JVM is caught (SIGSTOP) as soon as it exists (~50 ms before it
        # can have loaded javac); the log says it never reported ready; a
        # host too slow to catch it in time gets another slot, a few times
        for _ in range(5):
            slot = make_slot("java")
            pids = wp.wait_for(lambda: javac_servers(slot), 10, 0.001)
            assert pids, "no compile server started in slot %s" % slot
            os.kill(pids[0], signal.SIGSTOP)
            if "slot %s: pre-started helper ready" % slot not in sandboxd.log_text():
                stopped[slot] = (pids[0], slot_cpu_weight_file(slot))
                return slot
        raise AssertionError("the compile server was ready before it could be stopped, 5 times")

    log_at = sandboxd.log_size()
    check_java_compiles_as_javac(make_slot, run, server_not_ready, "before the server was ready")
    log = sandboxd.log_text(log_at)
    for slot, (pid, (mode, path)) in stopped.items():
        assert "slot %s: the compile helper was not ready: stopped; the compile runs the usual way" % slot in log, log
        assert wp.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 5), "the stopped server %d lives on" % pid
        assert read_int(path) == (1024 if mode == "v1" else 100), "the slot kept the lowest CPU weight"


def test_java_server_of_a_slot_made_on_a_busy_node_starts_once_it_is_quiet():
    """A compile server saves CPU only when it warms up on CPU nothing else
    wants. A Java slot made while every run slot of the node is busy (a
    contest burst) starts its server only once they have not all been busy
    for a moment (0.1 s); till then a compile there runs the usual way."""
    sb = wp.Sandboxd(wp.make_tmpdir("wp-prewarm-busy-"), BUSY_UID_BASE, capacity=4, log_level="debug",
                     extra="run_slots = 1")
    sb.start()
    try:
        c = sb.client(timeout=60)

        def new_slot(lang):
            r = c.post("/v1/slots", {"language": lang, "wait": True}, timeout=60)
            assert r.status == 201 and r.body["slots"][0]["state"] == "ready", r
            return r.body["slots"][0]["id"]

        busy, done = new_slot("python"), []
        t = threading.Thread(target=lambda: done.append(c.post(
            "/v1/slots/%s/run" % busy, {"source": "import time\ntime.sleep(3)\n", "tests": [{"stdin": ""}],
                                        "limits": {"wall_ms": 10000}}, timeout=60)), daemon=True)
        t.start()
        assert wp.wait_for(lambda: c.get("/v1/info").body["runs"]["active"] == 1, 10, 0.01), "the run did not start"
        java = new_slot("java")
        assert "slot %s: every run slot is busy: its compile helper starts when they are not" % java in sb.log_text()
        seen = wp.wait_for(lambda: javac_servers(java), 1.0, 0.05)
        assert not seen and not done, "a compile server started on a busy node (%r)" % (seen,)
        t.join(30)
        assert done and done[0].status == 200, done
        assert wp.wait_for(lambda: javac_servers(java), 10, 0.05), "no compile server once the node was quiet"
        wait_javac_server(java)
        r = c.post("/v1/slots/%s/run" % java, {"source": JAVA_SUM, "tests": [{"stdin": "1 2\n", "expected": "3\n"}]})
        assert r.status == 200 and verdicts_of(r.body) == ["accepted"], r
        assert "slot %s: pre-started helper did its step" % java in sb.log_text(), "the compile was not the server's"
    finally:
        sb.stop()
        sb.cleanup()


def test_java_servers_warm_up_run_slots_at_a_time():
    """A node keeping many warm Java slots (the shipped java pool: 12 % of
    the capacity) starts their compile servers run_slots at a time: each
    warm-up only takes CPU no run wants, and more at once only share it. In
    a contest burst the slots are taken before their warm-ups are done, and
    the CPU those had was lost: 1 000 x 2 took 129 s instead of 108 s with
    45 servers warming at once. A server says when its warm-up is over."""
    sb = wp.Sandboxd(wp.make_tmpdir("wp-prewarm-warmups-"), WARM_UPS_UID_BASE, capacity=6, log_level="debug",
                     extra="run_slots = 1")
    sb.start()
    try:
        c = sb.client(timeout=60)
        r = c.post("/v1/slots", {"language": "java", "count": 4, "wait": True}, timeout=60)
        assert r.status == 201, r
        slots = [s["id"] for s in r.body["slots"]]
        most = 0
        end = time.monotonic() + 60
        while time.monotonic() < end:
            log = sb.log_text()
            warmed = [s for s in slots if "slot %s: pre-started helper warmed up" % s in log]
            started = [s for s in slots if javac_servers(s)]
            most = max(most, len(started) - len(warmed))
            if len(warmed) == len(slots):
                break
            time.sleep(0.02)
        assert len(warmed) == 4, "servers warmed up: %r of %r\n%s" % (warmed, slots, sb.log_text()[-3000:])
        assert most == 1, "%d servers warmed up at once on a node of run_slots 1" % most
        assert "compile helpers warm up (run_slots): its own starts after one of them" in sb.log_text()
        r = c.post("/v1/slots/%s/run" % slots[-1], {"source": JAVA_SUM,
                                                    "tests": [{"stdin": "1 2\n", "expected": "3\n"}]})
        assert r.status == 200 and verdicts_of(r.body) == ["accepted"], r
        assert "slot %s: pre-started helper did its step" % slots[-1] in sb.log_text(), "not the server's compile"
    finally:
        sb.stop()
        sb.cleanup()


KILLER = (
    "import java.nio.file.*;\n"
    "public class Main {\n"
    "    public static void main(String[] args) throws Exception {\n"
    "        int found = 0;\n"
    "        long end = System.currentTimeMillis() + 8000;\n"
    "        while (found == 0 && System.currentTimeMillis() < end) {\n"
    "            for (ProcessHandle p : ProcessHandle.allProcesses().toList()) {\n"
    "                String cmd = p.info().commandLine().orElse(\"\");\n"
    "                if (cmd.contains(\"JavacServer\")) {\n"
    "                    new ProcessBuilder(\"/bin/kill\", \"-%s\", \"\" + p.pid()).inheritIO().start().waitFor();\n"
    "                    found++;\n"
    "                }\n"
    "            }\n"
    "            Thread.sleep(50);\n"
    "        }\n"
    "        java.util.Scanner in = new java.util.Scanner(System.in);\n"
    "        System.out.println(found > 0 ? in.nextLong() + in.nextLong() : -1);\n"
    "    }\n"
    "}\n"
)


@pytest.mark.parametrize("sig", ["KILL", "STOP"])
def test_java_test_case_that_kills_or_stops_the_compile_server(java_slot, run, sig):
    # the first submission's compile is the warm server's; the second's
    # starts a fresh server, which is up while the second's test cases run:
    # they find it and kill or stop it
    b = run(java_slot, JAVA_SUM, [("1 2\n", "3\n")])
    assert verdicts_of(b) == ["accepted"], b
    b = run(java_slot, KILLER % sig, [("1 2\n", "3\n")], limits={"wall_ms": 20000, "cpu_ms": 10000})
    assert verdicts_of(b) == ["accepted"], "the test case did not find the compile server: %r" % (b,)
    # the next compile and verdicts are right all the same
    b = run(java_slot, JAVA_SUM, [("1 2\n", "3\n"), ("2 2\n", "5\n")])
    assert verdicts_of(b) == ["accepted", "wrong_answer"], b
    assert b["compile"]["status"] == "ok", b
    # and a server comes back: sandboxd starts one again with a compile
    # after the lost one (the compile that starts it goes the usual way),
    # so at the latest once the next compile is done
    if not javac_servers(java_slot):
        b = run(java_slot, JAVA_SUM, [("4 4\n", "8\n")])
        assert verdicts_of(b) == ["accepted"], b
    wait_javac_server(java_slot)
    b = run(java_slot, JAVA_SUM, [("4 4\n", "8\n")])
    assert verdicts_of(b) == ["accepted"], b
