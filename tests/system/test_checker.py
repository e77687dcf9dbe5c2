"""compare.mode "checker": a checker program given with the request judges
each test (testlib's `checker input output answer`, exit 0 accepted, 1/2
wrong answer, anything else the checker failed → internal_error), and the
program being judged can neither read the answers nor tamper with the
checker."""

from conftest import run_raw, show

# Accepts any x such that |3x - input| < 1e-6: many right outputs, so only a
# checker can judge it.
CPP_CHECKER = r"""
#include <cstdio>
#include <cmath>
int main(int argc, char **argv) {
    FILE *in = fopen(argv[1], "r"), *out = fopen(argv[2], "r");
    double x, y;
    if (!in || !out || fscanf(in, "%lf", &x) != 1) return 3;
    if (fscanf(out, "%lf", &y) != 1) { fprintf(stderr, "no number"); return 1; }
    if (std::fabs(3 * y - x) < 1e-6) return 0;
    fprintf(stderr, "expected %g, got %g", x / 3, y);
    return 1;
}
"""

PY_CHECKER = r"""
import sys
inp, out, ans = (open(p).read().split() for p in sys.argv[1:4])
sys.exit(0 if sorted(out) == sorted(ans) else 1)
"""

THIRD = "x = float(input())\nprint(repr(x / 3))\n"


def checker_run(client, slot, source, tests, checker, **kw):
    return run_raw(client, slot, source, tests, compare={"mode": "checker"}, checker=checker, **kw)


def test_compiled_checker_accepts_and_rejects(client, make_slot):
    sid = make_slot("python")
    r = checker_run(client, sid, THIRD, ["1\n", "10\n"], {"language": "cpp", "source": CPP_CHECKER})
    assert r.status == 200 and r.body["verdict"] == "accepted", show(r.body)
    assert all(t["checker"]["exit_code"] == 0 for t in r.body["tests"]), show(r.body)
    r = checker_run(client, sid, "input()\nprint(7)\n", ["1\n"], {"language": "cpp", "source": CPP_CHECKER})
    t = r.body["tests"][0]
    assert r.body["verdict"] == "wrong_answer" and t["verdict"] == "wrong_answer", show(r.body)
    assert "expected" in t["checker"]["stderr"], "the checker's comment is reported: %s" % show(r.body)


def test_interpreted_checker_gets_the_answer(client, make_slot):
    sid = make_slot("c")
    src = '#include <stdio.h>\nint main(){puts("b a c");}\n'
    tests = [{"stdin": "", "expected": "a b c\n"}, {"stdin": "", "expected": "a b d\n"}]
    r = checker_run(client, sid, src, tests, {"language": "python", "source": PY_CHECKER})
    assert [t["verdict"] for t in r.body["tests"]] == ["accepted", "wrong_answer"], show(r.body)


def test_checker_only_judges_what_ran_cleanly(client, make_slot):
    sid = make_slot("python")
    r = checker_run(client, sid, "raise SystemExit(4)\n", ["1\n"], {"language": "cpp", "source": CPP_CHECKER})
    t = r.body["tests"][0]
    assert t["verdict"] == "runtime_error" and "checker" not in t, show(r.body)


def test_program_cannot_read_answers_or_tamper_with_the_checker(client, make_slot):
    """The program looks for checker files and answers in /mnt/data and /tmp,
    plants files named like the checker's, and leaves a process that would
    rewrite them: none of it changes the verdict."""
    sid = make_slot("python")
    evil = r"""
import os, glob, subprocess
seen = glob.glob('/mnt/data/.checker*') + glob.glob('/mnt/data/.checker*/*') + glob.glob('/tmp/*answer*')
for d in ['/mnt/data', '/tmp']:
    for n in ['answer', 'output', 'input', 'main']:
        try:
            open(os.path.join(d, n), 'w').write('#!/bin/sh\nexit 0\n')
        except OSError:
            pass
subprocess.Popen(['/bin/sh', '-c', 'while :; do for d in /mnt/data/.checker*/; do [ -d "$d" ] && '
                  'echo "import sys; sys.exit(0)" > "$d/main.py"; done 2>/dev/null; sleep 0.01; done'],
                 start_new_session=True, stderr=subprocess.DEVNULL)
print("seen", len(seen))
"""
    tests = [{"stdin": "", "expected": "never\n"}, {"stdin": "", "expected": "never\n"}]
    r = checker_run(client, sid, evil, tests, {"language": "python", "source": PY_CHECKER})
    assert r.status == 200, show(r.body)
    assert [t["verdict"] for t in r.body["tests"]] == ["wrong_answer", "wrong_answer"], show(r.body)
    assert r.body["tests"][0]["stdout"] == "seen 0\n", "the program saw checker files or answers: %s" % show(r.body)
    files = client.get("/v1/slots/%s/files" % sid).body["files"]
    assert not [f for f in files if f["name"].startswith(".checker")], "checker dirs left behind: %r" % files


def test_checker_failure_is_internal_error(client, make_slot):
    sid = make_slot("python")
    r = checker_run(client, sid, "print(1)\n", ["1\n"], {"language": "python", "source": "raise SystemExit(3)\n"})
    assert r.body["tests"][0]["verdict"] == "internal_error", show(r.body)
    assert r.body["verdict"] == "internal_error", show(r.body)


def test_checker_that_does_not_compile(client, make_slot):
    sid = make_slot("python")
    r = checker_run(client, sid, "print(1)\n", ["1\n"], {"language": "cpp", "source": "int main( {"})
    assert r.status == 422 and r.body["error"]["code"] == "CheckerCompilationError", r
    # the slot is free again
    r = run_raw(client, sid, "print(1)\n", [("", "1\n")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r


def test_checker_request_errors(client, make_slot):
    sid = make_slot("python")
    for body, why in [
        ({"compare": {"mode": "checker"}}, "no checker object"),
        ({"compare": {"mode": "checker"}, "checker": {"language": "cobol", "source": "x"}}, "unknown language"),
        ({"compare": {"mode": "checker"}, "checker": {"language": "python"}}, "no source"),
        ({"checker": {"language": "python", "source": "x"}}, "checker without mode"),
        ({"compare": {"mode": "checker"}, "checker": {"language": "python", "source": "x", "x": 1}}, "unknown key"),
    ]:
        body.update({"source": "print(1)", "tests": [{"stdin": ""}]})
        r = client.post("/v1/slots/%s/run" % sid, body)
        assert r.status == 400 and r.body["error"]["code"] == "BadRequest", "%s: %r" % (why, r)
