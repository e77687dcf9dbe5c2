"""Every language end to end: a real program, each verdict, compile errors,
the compare modes, and plausible measurements. Java always runs under its
language defaults except for the one limit a test is about (memory for MLE,
output for OLE) — it must work under the defaults."""

import os
import re

import pytest

import wpdaemons as wp
from conftest import changed_language, execute, show, verdicts_of

NO_LINKER_UID_BASE = 384000  # the node whose cpp.conf names a linker the host lacks: capacity 4

LANGS = ("python", "javascript", "java", "c", "cpp")
COMPILED = ("java", "c", "cpp")

SUM = {
    "python": "a, b = map(int, input().split())\nprint(a + b)\n",
    "javascript": (
        "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(BigInt);\n"
        "console.log((a + b).toString());\n"
    ),
    "java": (
        "import java.util.Scanner;\n"
        "public class Main {\n"
        "    public static void main(String[] args) {\n"
        "        Scanner s = new Scanner(System.in);\n"
        "        long a = s.nextLong(), b = s.nextLong();\n"
        "        System.out.println(a + b);\n"
        "    }\n"
        "}\n"
    ),
    "c": (
        "#include <stdio.h>\n"
        "int main(void) {\n"
        "    long long a, b;\n"
        "    if (scanf(\"%lld %lld\", &a, &b) != 2) return 1;\n"
        "    printf(\"%lld\\n\", a + b);\n"
        "    return 0;\n"
        "}\n"
    ),
    "cpp": (
        "#include <iostream>\n"
        "int main() {\n"
        "    long long a, b;\n"
        "    std::cin >> a >> b;\n"
        "    std::cout << a + b << std::endl;\n"
        "}\n"
    ),
}

SUM_TESTS = [("1 2\n", "3\n"), ("-5 7\n", "2\n"), ("1000000000 2000000000\n", "3000000000\n")]

WRONG = {
    "python": "a, b = map(int, input().split())\nprint(a + b + 1)\n",
    "javascript": (
        "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n"
        "console.log(a + b + 1);\n"
    ),
    "java": SUM["java"].replace("a + b", "a + b + 1"),
    "c": SUM["c"].replace("a + b", "a + b + 1"),
    "cpp": SUM["cpp"].replace("a + b", "a + b + 1"),
}

SPIN = {
    "python": "while True:\n    pass\n",
    "javascript": "for (;;) {}\n",
    "java": "public class Main {\n    public static void main(String[] a) {\n        for (;;) {}\n    }\n}\n",
    "c": "int main(void) {\n    volatile unsigned long x = 0;\n    for (;;) x++;\n}\n",
    "cpp": "int main() {\n    volatile unsigned long x = 0;\n    for (;;) x++;\n}\n",
}

SLEEP = {
    "python": "import time\ntime.sleep(120)\n",
    "javascript": "setTimeout(() => {}, 120000);\n",
    "java": (
        "public class Main {\n"
        "    public static void main(String[] a) throws Exception {\n"
        "        Thread.sleep(120000);\n"
        "    }\n"
        "}\n"
    ),
    "c": "#include <unistd.h>\nint main(void) {\n    sleep(120);\n    return 0;\n}\n",
    "cpp": "#include <unistd.h>\nint main() {\n    sleep(120);\n}\n",
}

# allocate and touch 1 GiB
MEM = {
    "python": "data = b'x' * (1 << 30)\nprint(len(data))\n",
    "javascript": "const b = Buffer.alloc(1 << 30, 1);\nconsole.log(b.length);\n",
    "java": (
        "public class Main {\n"
        "    public static void main(String[] a) {\n"
        "        byte[] b = new byte[1 << 30];\n"
        "        for (int i = 0; i < b.length; i += 4096) b[i] = 1;\n"
        "        System.out.println(b.length);\n"
        "    }\n"
        "}\n"
    ),
    "c": (
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
        "int main(void) {\n"
        "    size_t n = (size_t)1 << 30;\n"
        "    volatile char *p = malloc(n);  /* volatile: the stores must happen */\n"
        "    if (!p) { fprintf(stderr, \"malloc failed\\n\"); return 2; }\n"
        "    for (size_t i = 0; i < n; i += 4096) p[i] = 1;\n"
        "    printf(\"%d\\n\", p[n - 1]);\n"
        "    return 0;\n"
        "}\n"
    ),
    "cpp": (
        "#include <iostream>\n#include <vector>\n"
        "int main() {\n"
        "    std::vector<char> v((size_t)1 << 30, 1);\n"
        "    std::cout << (int)v.back() << std::endl;\n"
        "}\n"
    ),
}

EXIT3 = {
    "python": "import sys\nprint('partial')\nsys.exit(3)\n",
    "javascript": "console.log('partial');\nprocess.exit(3);\n",
    "java": "public class Main {\n    public static void main(String[] a) {\n        System.out.println(\"partial\");\n        System.exit(3);\n    }\n}\n",
    "c": "#include <stdio.h>\nint main(void) {\n    puts(\"partial\");\n    return 3;\n}\n",
    "cpp": "#include <iostream>\nint main() {\n    std::cout << \"partial\" << std::endl;\n    return 3;\n}\n",
}

# (source, expected exit code or None, expected signal or None, text expected in stderr or None)
CRASH = {
    "python": ("raise ValueError('boom')\n", 1, None, "ValueError"),
    "javascript": ("throw new Error('boom');\n", 1, None, "boom"),
    "java": (
        "public class Main {\n    public static void main(String[] a) {\n        throw new RuntimeException(\"boom\");\n    }\n}\n",
        1,
        None,
        "RuntimeException",
    ),
    "c": ("int main(void) {\n    *(volatile int *)0 = 1;\n    return 0;\n}\n", None, 11, None),
    "cpp": ("#include <stdexcept>\nint main() {\n    throw std::runtime_error(\"boom\");\n}\n", None, 6, "boom"),
}

FLOOD = {
    "python": "import sys\ns = 'x' * 999 + '\\n'\nwhile True:\n    sys.stdout.write(s)\n",
    "javascript": "const s = 'x'.repeat(999) + '\\n';\nfor (;;) process.stdout.write(s);\n",
    "java": (
        "public class Main {\n"
        "    public static void main(String[] a) {\n"
        "        String s = \"x\".repeat(999);\n"
        "        for (;;) System.out.println(s);\n"
        "    }\n"
        "}\n"
    ),
    "c": "#include <stdio.h>\nint main(void) {\n    for (;;) puts(\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\");\n}\n",
    "cpp": "#include <iostream>\nint main() {\n    for (;;) std::cout << \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n\";\n}\n",
}

BROKEN = {
    "java": "public class Main {\n    public static void main(String[] a) {\n        int x = \n    }\n}\n",
    "c": "int main(void) {\n    return undefined_name;\n}\n",
    "cpp": "int main() {\n    std::vector<int> v\n}\n",
}

# limits for the fast languages; Java keeps its defaults for time (see module doc)
FAST_CPU = {"cpu_ms": 1000, "wall_ms": 5000}
FAST_WALL = {"cpu_ms": 1000, "wall_ms": 1500}


def defaults(languages, lang):
    return languages[lang]["limits"]


def _check_test_fields(b):
    for t in b["tests"]:
        for k in ("verdict", "stdout", "stderr", "exit_code", "signal", "time_ms", "wall_ms", "memory_kb"):
            assert k in t, "test result lacks %r: %s" % (k, show(b))


@pytest.mark.parametrize("lang", LANGS)
def test_accepted(make_slot, run, languages, lang):
    sid = make_slot(lang)
    b = run(sid, SUM[lang], SUM_TESTS, timeout=120)
    _check_test_fields(b)
    assert b["verdict"] == "accepted", "%s sum program not accepted under default limits: %s" % (lang, show(b))
    assert b["passed"] == 3 and b["total"] == 3, show(b)
    assert verdicts_of(b) == ["accepted"] * 3, show(b)
    mem_limit = defaults(languages, lang)["memory_kb"]
    for t in b["tests"]:
        assert t["exit_code"] == 0 and t["signal"] is None, show(b)
        assert 100 < t["memory_kb"] < mem_limit, "%s memory_kb implausible: %s" % (lang, show(b))
        assert 0 <= t["wall_ms"] < 10000 and t["time_ms"] >= 0, show(b)
        if lang in ("javascript", "java"):
            # an interpreter / JVM start-up costs CPU time; a Python test case
            # is a child forked from the slot's pre-started interpreter and
            # may take less than a millisecond of CPU (reported as 0)
            assert t["time_ms"] > 0, "%s time_ms is 0: %s" % (lang, show(b))
            assert t["wall_ms"] > 0, show(b)
    if lang in COMPILED:
        c = b["compile"]
        assert isinstance(c, dict), "compiled language without compile result: %s" % show(b)
        assert c["status"] == "ok" and c["exit_code"] == 0, show(b)
        assert c["time_ms"] > 0 and c["wall_ms"] > 0 and c["memory_kb"] > 0, "compile measurements: %s" % show(b)
    else:
        assert b["compile"] is None, show(b)


@pytest.mark.parametrize("lang", COMPILED)
def test_compile_false_reuses_binary(make_slot, run, lang):
    sid = make_slot(lang)
    b = run(sid, SUM[lang], SUM_TESTS[:1], timeout=120)
    assert b["verdict"] == "accepted", show(b)
    b = run(sid, None, SUM_TESTS, compile=False, timeout=60)
    assert b["verdict"] == "accepted", "compile:false must run the binary already built: %s" % show(b)
    assert b["compile"] is None, show(b)


@pytest.mark.parametrize("lang", LANGS)
def test_wrong_answer(make_slot, run, lang):
    sid = make_slot(lang)
    b = run(sid, WRONG[lang], SUM_TESTS, timeout=120)
    assert b["verdict"] == "wrong_answer", show(b)
    assert verdicts_of(b) == ["wrong_answer"] * 3 and b["passed"] == 0, show(b)
    assert b["tests"][0]["stdout"].strip() == "4" and b["tests"][0]["exit_code"] == 0, show(b)


@pytest.mark.parametrize("lang", LANGS)
def test_tle_cpu_spin(make_slot, run, languages, lang):
    sid = make_slot(lang)
    lim = dict(defaults(languages, lang)) if lang == "java" else FAST_CPU
    kw = {} if lang == "java" else {"limits": FAST_CPU}
    b = run(sid, SPIN[lang], [""], timeout=90, **kw)
    t = b["tests"][0]
    assert b["verdict"] == "time_limit_exceeded", show(b)
    assert t["time_ms"] >= 0.8 * lim["cpu_ms"], "a CPU spin killed for CPU time should have used ~cpu_ms: %s" % show(b)
    assert t["wall_ms"] <= lim["wall_ms"] + 2000, "not stopped in time: %s" % show(b)


@pytest.mark.parametrize("lang", LANGS)
def test_tle_wall_sleep(make_slot, run, languages, lang):
    sid = make_slot(lang)
    lim = dict(defaults(languages, lang)) if lang == "java" else FAST_WALL
    kw = {} if lang == "java" else {"limits": FAST_WALL}
    b = run(sid, SLEEP[lang], [""], timeout=90, **kw)
    t = b["tests"][0]
    assert b["verdict"] == "time_limit_exceeded", show(b)
    assert t["wall_ms"] >= 0.95 * lim["wall_ms"], "killed before the wall limit: %s" % show(b)
    assert t["wall_ms"] <= lim["wall_ms"] + 2000, "a sleeper was not stopped at the wall limit: %s" % show(b)
    assert t["time_ms"] < lim["cpu_ms"], "a sleeper cannot have used its CPU limit: %s" % show(b)


# ru_maxrss counts the run's process from its fork, before exec: a fork of
# the slot's init, itself a fork of sandboxd. That is ~1 MiB normally, but an
# ASan-built sandboxd carries its shadow memory along (~180 MiB).
SANITIZER_RSS_KB = 256 * 1024 if os.environ.get("WARMPOOL_SANITIZE") else 0


@pytest.mark.parametrize("lang", LANGS)
def test_mle(make_slot, run, lang):
    sid = make_slot(lang)
    limit_kb = 128 * 1024
    b = run(sid, MEM[lang], [""], limits={"memory_kb": limit_kb}, timeout=90)
    t = b["tests"][0]
    assert b["verdict"] == "memory_limit_exceeded", "1 GiB touched under a 128 MiB limit: %s" % show(b)
    if lang == "java":
        # the JVM's heap (MaxRAM = the run's limit) refuses the array before the
        # cgroup is full: the language file maps OutOfMemoryError to the verdict
        assert "OutOfMemoryError" in t["stderr"], show(b)
        assert t["memory_kb"] <= limit_kb * 1.25 + SANITIZER_RSS_KB, "peak memory above the limit: %s" % show(b)
        return
    assert t["memory_kb"] >= limit_kb // 2, "peak memory of an OOM-killed run implausibly low: %s" % show(b)
    assert t["memory_kb"] <= limit_kb * 1.25 + SANITIZER_RSS_KB, "peak memory above the limit: %s" % show(b)


@pytest.mark.parametrize("lang", LANGS)
def test_runtime_error_exit_code(make_slot, run, lang):
    sid = make_slot(lang)
    b = run(sid, EXIT3[lang], [("", "partial\n")], timeout=120)
    t = b["tests"][0]
    assert b["verdict"] == "runtime_error", show(b)
    assert t["exit_code"] == 3 and t["signal"] is None, show(b)
    assert t["stdout"] == "partial\n", "output before the exit must be kept: %s" % show(b)


@pytest.mark.parametrize("lang", LANGS)
def test_runtime_error_crash(make_slot, run, lang):
    sid = make_slot(lang)
    src, code, sig, text = CRASH[lang]
    b = run(sid, src, [""], timeout=120)
    t = b["tests"][0]
    assert b["verdict"] == "runtime_error", show(b)
    if code is not None:
        assert t["exit_code"] == code and t["signal"] is None, show(b)
    if sig is not None:
        assert t["signal"] == sig, "expected signal %d: %s" % (sig, show(b))
    if text:
        assert text in t["stderr"], "stderr lacks %r: %s" % (text, show(b))


@pytest.mark.parametrize("lang", LANGS)
def test_output_limit(make_slot, run, lang):
    sid = make_slot(lang)
    b = run(sid, FLOOD[lang], [""], limits={"output_bytes": 1 << 20}, timeout=90)
    t = b["tests"][0]
    assert b["verdict"] == "output_limit_exceeded", show(b)
    assert t["stdout_truncated"] is True and 0 < len(t["stdout"]) <= 65536, show(b)
    assert t["wall_ms"] < 10000, "output flood not stopped promptly: %s" % show(b)


@pytest.mark.parametrize("lang", COMPILED)
def test_compilation_error(make_slot, run, lang):
    sid = make_slot(lang)
    b = run(sid, BROKEN[lang], SUM_TESTS, timeout=120)
    assert b["verdict"] == "compilation_error", show(b)
    c = b["compile"]
    assert isinstance(c, dict) and c["status"] == "error", show(b)
    assert c["exit_code"] != 0, show(b)
    assert "error" in (c["stderr"] + c["stdout"]).lower(), "compiler message missing: %s" % show(b)
    assert not b["tests"], "tests must not run after a failed compile: %s" % show(b)
    assert b["passed"] == 0, show(b)
    # the slot recovers: a good program compiles and runs
    b = run(sid, SUM[lang], SUM_TESTS, timeout=120)
    assert b["verdict"] == "accepted", show(b)


@pytest.mark.parametrize("lang,source", [
    ("c", "int f(void);\nint main(void) { return f(); }\n"),
    ("cpp", "int f();\nint main() { return f(); }\n"),
])
def test_link_error_names_the_missing_function(make_slot, run, lang, source):
    """A program that compiles but does not link (the shipped configs link
    with gold) is a compilation_error whose message names what is missing."""
    sid = make_slot(lang)
    b = run(sid, source, [""], timeout=120)
    assert b["verdict"] == "compilation_error", show(b)
    err = b["compile"]["stderr"]
    assert re.search(r"undefined reference to [`']f\b", err) and "ld returned 1" in err, show(b)


def test_a_compile_line_whose_linker_is_missing_makes_the_language_unavailable_and_says_why():
    """The shipped c.conf and cpp.conf link with gold (-fuse-ld=gold). On a
    host without that linker every compile would fail with collect2's
    "cannot find 'ld'"; instead sandboxd shows the language unavailable,
    and its log, /v1/languages and a slot request say what is missing."""
    langs, _ = changed_language("nolinker", "cpp.conf", " -fuse-ld=gold ", " -fuse-ld=nosuchlinker ")
    sb = wp.Sandboxd(wp.make_tmpdir("wp-lang-nolinker-sb-"), NO_LINKER_UID_BASE, capacity=4, languages=langs)
    sb.start()
    try:
        c = sb.client(timeout=30)
        cpp = [l for l in c.get("/v1/languages").body["languages"] if l["name"] == "cpp"]
        assert cpp and cpp[0]["available"] is False, cpp
        why = "its compile line's -fuse-ld=nosuchlinker needs ld.nosuchlinker"
        assert why in cpp[0]["unavailable"], cpp
        assert "language cpp: NOT AVAILABLE: " + why in sb.log_text()
        r = c.post("/v1/slots", {"language": "cpp", "wait": True})
        assert r.status == 422 and why in r.body["error"]["message"], r
        # poold passes it on: a submission says why no node can take it
        pd = wp.Poold(wp.make_tmpdir("wp-lang-nolinker-pd-"), nodes={"local": sb.url},
                      pools={"cpp": {"language": "cpp", "warm": 1, "max": 4}})
        pd.start()
        try:
            pc = pd.client(timeout=30)
            assert wp.wait_for(lambda: any(n["up"] for n in pc.get("/v1/nodes").body["nodes"]), 30, 0.1)
            r = execute(pc, "cpp", "int main() {}\n", "u1", [("", None)])
            assert r.status == 503 and r.body["error"]["code"] == "NoCapacity", r
            assert "no node that is up can host language cpp (node local: " + why in r.body["error"]["message"], r
        finally:
            pd.stop()
            pd.cleanup()
    finally:
        sb.stop()
        sb.cleanup()


def test_compile_time_limit(make_slot, run):
    """A compile that takes too long answers compilation_error (or TLE), not a hang."""
    sid = make_slot("cpp")
    # constant evaluation that keeps g++ busy ~6 s of CPU before it gives up
    src = (
        "constexpr long f() {\n"
        "    long s = 0;\n"
        "    for (long i = 0; i < 200000; i++)\n"
        "        for (long j = 0; j < 200000; j++) s += i ^ j;\n"
        "    return s;\n"
        "}\n"
        "constexpr long v = f();\n"
        "int main() { return v == 0; }\n"
    )
    b = run(sid, src, [""], compile_limits={"cpu_ms": 1000, "wall_ms": 3000}, timeout=60)
    assert b["verdict"] in ("compilation_error", "time_limit_exceeded"), show(b)
    assert b["compile"]["status"] != "ok", show(b)
    assert b["compile"]["wall_ms"] < 6000, "compile not stopped at its limits: %s" % show(b)
    assert not b["tests"], show(b)


# ---------------------------------------------------------------- compare modes

ECHO = "import sys\nsys.stdout.write(sys.stdin.read())\n"

COMPARE_CASES = [
    (
        "default is trailing",
        None,
        [
            ("3  \n\n\n", "3\n", "accepted"),
            ("3\n", "3", "accepted"),
            ("1 2\n3\n", "1 2  \n3\n\n", "accepted"),
            (" 3\n", "3\n", "wrong_answer"),
            ("1  2\n", "1 2\n", "wrong_answer"),
            ("1\n\n2\n", "1\n2\n", "wrong_answer"),
            ("", "", "accepted"),
            ("", "x\n", "wrong_answer"),
        ],
    ),
    (
        "trailing",
        {"mode": "trailing"},
        [
            ("3  \n\n\n", "3\n", "accepted"),
            ("a\t\nb\n", "a\nb", "accepted"),
            ("3\n", "4\n", "wrong_answer"),
            ("3\n4\n", "3\n", "wrong_answer"),
        ],
    ),
    (
        "exact",
        {"mode": "exact"},
        [
            ("3\n", "3\n", "accepted"),
            ("3\n", "3", "wrong_answer"),
            ("3 \n", "3\n", "wrong_answer"),
            ("3\n\n", "3\n", "wrong_answer"),
            ("", "", "accepted"),
        ],
    ),
    (
        "tokens",
        {"mode": "tokens"},
        [
            ("1   2\n3\n", "1 2 3", "accepted"),
            ("\n\n 1\t2 3 \n", "1 2 3\n", "accepted"),
            ("1 2", "1 2 3", "wrong_answer"),
            ("1.0", "1", "wrong_answer"),
            ("12", "1 2", "wrong_answer"),
        ],
    ),
    (
        "float default tolerance",
        {"mode": "float"},
        [
            ("0.3333333\n", "0.333333333\n", "accepted"),
            ("0.334\n", "0.333\n", "wrong_answer"),
            ("1000000.5\n", "1000000\n", "accepted"),  # relative 5e-7
            ("1e3\n", "1000\n", "accepted"),
            ("abc 1.0000000001\n", "abc 1.0\n", "accepted"),
            ("abd 1.0\n", "abc 1.0\n", "wrong_answer"),
            ("1 2\n", "1 2 3\n", "wrong_answer"),
            ("1  2\n\n", "1 2", "accepted"),
            ("-0.0000001\n", "0\n", "accepted"),
        ],
    ),
    (
        "float abs_tol",
        {"mode": "float", "abs_tol": 0.01, "rel_tol": 0},
        [
            ("0.334\n", "0.333\n", "accepted"),
            ("0.35\n", "0.333\n", "wrong_answer"),
            ("1000000.5\n", "1000000\n", "wrong_answer"),
        ],
    ),
    (
        "float rel_tol",
        {"mode": "float", "abs_tol": 0, "rel_tol": 0.01},
        [
            ("1005\n", "1000\n", "accepted"),
            ("1020\n", "1000\n", "wrong_answer"),
            ("0.0001\n", "0\n", "wrong_answer"),
        ],
    ),
]


@pytest.mark.parametrize("why,compare,cases", COMPARE_CASES, ids=[c[0] for c in COMPARE_CASES])
def test_compare_modes(make_slot, run, why, compare, cases):
    sid = make_slot("python")
    kw = {} if compare is None else {"compare": compare}
    tests = [{"stdin": out, "expected": exp} for out, exp, _ in cases]
    b = run(sid, ECHO, tests, **kw)
    got = verdicts_of(b)
    want = [v for _, _, v in cases]
    wrong = [
        "output %r vs expected %r: got %s, want %s" % (o, e, g, w)
        for (o, e, w), g in zip(cases, got)
        if g != w
    ]
    assert len(got) == len(want) and not wrong, "compare %s:\n  %s\n%s" % (compare, "\n  ".join(wrong), show(b))
    assert b["passed"] == want.count("accepted"), show(b)
