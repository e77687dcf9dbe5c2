"""Every verdict right under load, and every answer explains itself (issue 11,
item 5), through poold's /execute against a real sandboxd:

- an output flood is `output_limit_exceeded` within a few seconds in every
  language, JavaScript included (node queued its writes in memory when the
  pipe was full and died of a full heap after 12.8 s: `memory_limit_exceeded`);
- a compile that runs out of its limits is `compilation_error` with
  `compile.reason` and a `compile_output` that says which limit, never an
  empty message;
- stdout cut at `max_output` is flagged (`stdout_truncated`, a message naming
  the size), and the request can ask for more up to the node's maximum;
- a Java submission whose public class is not `Main` is told what to rename;
- every test that did not pass carries a `message`.

Run as root: /usr/bin/python3 -m pytest tests/system/test_verdicts_explained.py
"""

import os
import re
import time
import uuid

import pytest

import wpdaemons
from conftest import assert_error, execute

POOL = {"warm": 1, "max": 4, "idle_timeout": "5m"}
LANGS = ("python", "javascript", "c", "cpp", "java")


def uid():
    return "v-" + uuid.uuid4().hex[:12]


def pools(*langs):
    return {lang: dict(POOL, language=lang) for lang in langs}


def ok(r):
    assert r.status == 200, r
    return r.body


# An endless stream of 64 KiB writes to stdout; the language's default
# output limit (16 MiB) must stop it.
FLOOD = {
    "javascript": "for(;;)process.stdout.write('x'.repeat(65536))\n",
    "python": "import sys\ns = 'x' * 65536\nwhile True:\n    sys.stdout.write(s)\n",
    "c": '#include <stdio.h>\n#include <string.h>\nint main(void){static char b[65536];'
    ' memset(b, 120, sizeof b); for(;;) fwrite(b, 1, sizeof b, stdout);}\n',
    "java": "public class Main { public static void main(String[] a) {"
    " String s = \"x\".repeat(65536); for (;;) System.out.print(s); } }\n",
}


HELLO = {
    "javascript": "console.log(1)\n",
    "python": "print(1)\n",
    "c": "int main(void){return 0;}\n",
    "java": "public class Main { public static void main(String[] a) {} }\n",
}


@pytest.mark.parametrize("lang", sorted(FLOOD))
def test_output_flood_is_output_limit_quickly(make_poold, lang):
    pd = make_poold(pools=pools(lang))
    c = pd.client()
    # a first submission: the pool is warm and the runtime's files cached
    ok(execute(c, lang, HELLO[lang], uid(), [("", None)]))
    t0 = time.monotonic()
    b = ok(execute(c, lang, FLOOD[lang], uid(), [("", None)]))
    took = time.monotonic() - t0
    t = b["test_results"][0]
    assert t["verdict"] == "output_limit_exceeded", "flood judged %s after %.1f s: %r" % (
        t["verdict"], took, {k: v for k, v in t.items() if k not in ("stdout", "stderr")})
    assert took < 6.0, "flood stopped only after %.1f s" % took
    assert "output limit" in (t.get("message") or ""), t.get("message")
    assert "16 MiB" in t["message"], t["message"]
    assert t["stdout_truncated"] is True, {k: v for k, v in t.items() if k != "stdout"}


def test_javascript_writes_are_not_queued_in_memory(make_poold):
    """node wrote to its stdout pipe asynchronously: what the pipe did not
    take at once was queued in node's heap, and a program that kept busy never
    let the queue drain. Under load (sandboxd reading slowly) a flood filled
    the heap instead of the output limit: memory_limit_exceeded after 12.8 s.
    The same queue loses output at process.exit(). Deterministic here: one
    write larger than the output limit, then a busy loop, must be judged
    output_limit_exceeded (it was time_limit_exceeded), and 3 MiB written
    before process.exit(0) must all arrive (64 KiB did)."""
    pd = make_poold(pools=pools("javascript"))
    c = pd.client()
    t0 = time.monotonic()
    b = ok(execute(c, "javascript", "process.stdout.write('x'.repeat(17 << 20)); for(;;){}\n", uid(), [("", None)],
                   limits={"cpu_ms": 4000, "wall_ms": 8000}))
    took = time.monotonic() - t0
    t = b["test_results"][0]
    assert t["verdict"] == "output_limit_exceeded", {k: v for k, v in t.items() if k not in ("stdout", "stderr")}
    assert took < 4.0, "took %.1f s" % took
    b = ok(execute(c, "javascript", "process.stdout.write('z'.repeat(3 << 20)); process.exit(0)\n", uid(),
                   [("", None)], max_output=4 << 20))
    t = b["test_results"][0]
    assert t["verdict"] == "accepted" and len(t["stdout"]) == 3 << 20, (t["verdict"], len(t["stdout"]))


# Nested constant-evaluated loops: g++ compiles it (given minutes), far over 1 s.
CONSTEXPR_BOMB = r"""
constexpr unsigned long f() {
    unsigned long s = 0;
    for (unsigned long i = 0; i < 200000; i++)
        for (unsigned long j = 0; j < 200000; j++)
            s += (i * j) ^ s;
    return s;
}
constexpr unsigned long v = f();
int main() { return (int)(v & 1); }
"""


def test_compile_out_of_time_is_explained(make_poold, tmp_path):
    """A compile killed at its CPU limit: compilation_error, compile.reason
    time_limit_exceeded, and a compile_output that says it was the limit."""
    langs = tmp_path / "languages"
    langs.mkdir()
    with open(os.path.join(wpdaemons.LANG_DIR, "cpp.conf")) as f:
        text = f.read()
    # the file's [compile_limits], with a 1 s CPU limit
    head, sep, tail = text.partition("[compile_limits]")
    assert sep, "cpp.conf has no [compile_limits]"
    tail = re.sub(r"(?m)^cpu\s*=.*$", "cpu = 1s", tail)
    assert "cpu = 1s" in tail, tail
    (langs / "cpp.conf").write_text(head + sep + tail)
    os.chmod(tmp_path, 0o755)
    os.chmod(langs, 0o755)
    sb = make_poold.sandboxd(331700, capacity=4, languages=str(langs))
    sb.start()
    pd = make_poold(pools=pools("cpp"), nodes={"n": sb.url})
    c = pd.client()
    b = ok(execute(c, "cpp", CONSTEXPR_BOMB, uid(), [("", None)]))
    assert b["verdict"] == "compilation_error", b
    comp = b.get("compile") or {}
    assert comp.get("reason") == "time_limit_exceeded", b
    out = b.get("compile_output") or ""
    assert "time limit" in out and "1 s" in out, "compile_output does not explain the limit: %r" % out
    assert "not an error in your code" in out, out
    assert b.get("message") and "time limit" in b["message"], b
    # a real compile error stays the compiler's own message
    b = ok(execute(c, "cpp", "int main() { this is not C++ }\n", uid(), [("", None)]))
    assert b["verdict"] == "compilation_error" and b["compile"].get("reason") == "compiler_error", b
    assert "error" in b["compile_output"], b


def test_truncated_stdout_is_flagged_and_more_can_be_asked(make_poold):
    pd = make_poold(pools=pools("python"))
    c = pd.client()
    code = "import sys\nsys.stdout.write('y' * 200000)\n"
    b = ok(execute(c, "python", code, uid(), [("", None)]))
    t = b["test_results"][0]
    assert t["verdict"] == "accepted", t["verdict"]
    assert len(t["stdout"]) == 65536, len(t["stdout"])
    assert t["stdout_truncated"] is True and t["stderr_truncated"] is False, {k: v for k, v in t.items() if k != "stdout"}
    msg = t.get("message") or ""
    assert "65536" in msg and "200000" in msg and "max_output" in msg, msg

    # ask for all of it
    b = ok(execute(c, "python", code, uid(), [("", None)], max_output=300000))
    t = b["test_results"][0]
    assert t["stdout"] == "y" * 200000 and t["stdout_truncated"] is False, len(t["stdout"])
    assert t.get("message") is None, t.get("message")

    # above the node's maximum (the output limit's maximum, 64 MiB in tests): refused, saying so
    r = execute(c, "python", code, uid(), [("", None)], max_output=1 << 30)
    assert_error(r, 400, "BadRequest")
    assert "max_output" in r.body["error"]["message"] and str(64 << 20) in r.body["error"]["message"], r


def test_java_public_class_not_main(make_poold):
    pd = make_poold(pools=pools("java"))
    c = pd.client()
    src = "public class Solution { public static void main(String[] a) { System.out.println(\"hi\"); } }\n"
    b = ok(execute(c, "java", src, uid(), [("", "hi\n")]))
    if b["verdict"] == "accepted":
        return
    assert b["verdict"] == "compilation_error", b
    out = b.get("compile_output") or ""
    assert "Solution" in out and "rename" in out and "Main" in out, "no advice to rename the class: %r" % out


VERDICT_CASES = [
    ("wrong_answer", "print('nope')\n", {}, "expected"),
    ("time_limit_exceeded", "while True:\n    pass\n", {"limits": {"cpu_ms": 500, "wall_ms": 3000}}, "CPU time"),
    ("time_limit_exceeded", "import time\ntime.sleep(30)\n", {"limits": {"wall_ms": 1000}}, "wall"),
    ("memory_limit_exceeded", "x = bytearray(400 << 20)\nprint(len(x))\n", {"limits": {"memory_kb": 65536}},
     "64 MiB"),
    ("runtime_error", "raise SystemExit(3)\n", {}, "exit code 3"),
    ("runtime_error", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", {}, "signal 11"),
]


@pytest.mark.parametrize("verdict,code,extra,says", VERDICT_CASES,
                         ids=["%s-%d" % (v[0], i) for i, v in enumerate(VERDICT_CASES)])
def test_every_failed_test_has_a_message(make_poold, verdict, code, extra, says):
    pd = make_poold(pools=pools("python"))
    c = pd.client()
    b = ok(execute(c, "python", code, uid(), [("hello\n", "hello\n")], **extra))
    t = b["test_results"][0]
    assert t["verdict"] == verdict, t
    assert says in (t.get("message") or ""), "message %r lacks %r" % (t.get("message"), says)
    assert b.get("message") == "test 1: " + t["message"], b.get("message")


def test_accepted_has_no_message(make_poold):
    pd = make_poold(pools=pools("python"))
    c = pd.client()
    b = ok(execute(c, "python", "print(input())\n", uid(), [("hello\n", "hello\n")]))
    t = b["test_results"][0]
    assert t["verdict"] == "accepted" and t["message"] is None and b["message"] is None, b
    assert t["stdout_truncated"] is False and t["stderr_truncated"] is False, t
