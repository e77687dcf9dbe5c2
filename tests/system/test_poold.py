"""poold through HTTP, against a real sandboxd and a real poold on loopback:
the /execute contract of docs/api.md, sessions (same identifier → same
slot, files, release, order of executions), bad input, auth, rate limits,
the pool at max, --check-config.

Issue 3, Tests section. Run as root: /usr/bin/python3 -m pytest tests/system/test_poold.py
"""

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import pytest

import wpdaemons
from conftest import (
    DOUBLE,
    WRONG_DOUBLE,
    assert_error,
    execute,
    metric_value,
    metrics_text,
    node_slots,
    pct,
    pool_info,
    session_info,
    session_run,
    wait_pool,
)

REPO = wpdaemons.REPO

EXEC_KEYS = {"execution_id", "submission_id", "summary", "test_results", "metadata"}
SUMMARY_KEYS = {"total_tests", "passed", "failed", "all_passed", "pass_percentage"}
RESULT_KEYS = {"test_case", "passed", "verdict", "stdout", "stderr", "expected_output", "exit_code", "time_ms", "memory_kb"}
# beyond the original contract (docs/api.md): output cut at max_output, what the verdict means
RESULT_EXTRA_KEYS = {"stdout_truncated", "stderr_truncated", "message"}
METADATA_KEYS = {"execution_time_ms", "cpu_usage_percent", "memory_usage_mb"}
VERDICTS = {"accepted", "wrong_answer", "time_limit_exceeded", "memory_limit_exceeded", "runtime_error",
            "output_limit_exceeded", "compilation_error", "internal_error"}

ALL_POOLS = {
    "python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"},
    "javascript": {"language": "javascript", "warm": 1, "max": 8, "idle_timeout": "5m"},
    "c": {"language": "c", "warm": 1, "max": 8, "idle_timeout": "5m"},
    "cpp": {"language": "cpp", "warm": 1, "max": 8, "idle_timeout": "5m"},
    "java": {"language": "java", "warm": 1, "max": 8, "idle_timeout": "5m"},
}


def uid():
    return "u-" + uuid.uuid4().hex[:12]


def check_execute_shape(resp, n_cases):
    """The answer has exactly the contract's keys (docs/api.md) and types."""
    assert resp.status == 200, resp
    b = resp.body
    assert isinstance(b, dict), resp
    missing = EXEC_KEYS - set(b)
    assert not missing, "answer lacks %s: %r" % (missing, resp)
    for k in ("execution_id", "submission_id"):
        assert isinstance(b[k], str) and b[k], "%s: %r" % (k, resp)
    s = b["summary"]
    assert set(s) == SUMMARY_KEYS, "summary keys %r != %r" % (sorted(s), sorted(SUMMARY_KEYS))
    for k in ("total_tests", "passed", "failed"):
        assert type(s[k]) is int, "summary.%s not an int: %r" % (k, s)
    assert type(s["all_passed"]) is bool and type(s["pass_percentage"]) is float, s
    assert s["total_tests"] == n_cases, s
    assert s["passed"] + s["failed"] == s["total_tests"], s
    assert s["all_passed"] == (s["passed"] == s["total_tests"] and s["total_tests"] > 0), s
    assert abs(s["pass_percentage"] - 100.0 * s["passed"] / s["total_tests"]) < 1e-9, s
    m = b["metadata"]
    assert set(m) == METADATA_KEYS, "metadata keys %r != %r" % (sorted(m), sorted(METADATA_KEYS))
    assert type(m["execution_time_ms"]) is int and m["execution_time_ms"] >= 0, m
    assert isinstance(m["cpu_usage_percent"], float) and m["cpu_usage_percent"] >= 0, m
    assert isinstance(m["memory_usage_mb"], float) and m["memory_usage_mb"] >= 0, m
    assert isinstance(b["test_results"], list), b
    for i, t in enumerate(b["test_results"]):
        assert RESULT_KEYS <= set(t) <= RESULT_KEYS | RESULT_EXTRA_KEYS, "test_results[%d] keys %r != %r" % (
            i, sorted(t), sorted(RESULT_KEYS))
        assert t["test_case"] == i + 1, t
        assert type(t["passed"]) is bool and t["passed"] == (t["verdict"] == "accepted"), t
        assert t["verdict"] in VERDICTS, t
        assert isinstance(t["stdout"], str) and isinstance(t["stderr"], str), t
        assert t["exit_code"] is None or type(t["exit_code"]) is int, t
        assert type(t["time_ms"]) is int and type(t["memory_kb"]) is int, t
    return b


# ---------------------------------------------------------------- /execute


def test_execute_design_example(make_poold):
    """The request and answer of the /execute contract (docs/api.md), to the letter."""
    pd = make_poold()
    c = pd.client()
    req = {"language": "python", "code": "print(sum(map(int, input().split())))", "user_id": "student_123",
           "question_id": "q1", "test_cases": [{"input": "1 2\n", "expected_output": "3\n"}]}
    r = c.post("/execute", req)
    b = check_execute_shape(r, 1)
    assert b["summary"] == {"total_tests": 1, "passed": 1, "failed": 0, "all_passed": True, "pass_percentage": 100.0}
    t = b["test_results"][0]
    assert (t["test_case"], t["passed"], t["verdict"], t["stdout"], t["stderr"], t["expected_output"], t["exit_code"]) == (
        1, True, "accepted", "3\n", "", "3\n", 0), t
    assert 0 <= t["time_ms"] < 5000 and 0 < t["memory_kb"] < 1 << 20, t
    assert b["metadata"]["memory_usage_mb"] > 0, b
    # ids: unique per answer
    r2 = c.post("/execute", req)
    b2 = check_execute_shape(r2, 1)
    ids = {b["execution_id"], b["submission_id"], b2["execution_id"], b2["submission_id"]}
    assert len(ids) == 4, "execution/submission ids repeat: %r %r" % (b, b2)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers


def test_execute_summary_mixed(make_poold):
    """Several cases, some pass: summary, numbering, expected_output echoed,
    trailing white space ignored by default."""
    pd = make_poold()
    c = pd.client()
    code = "x = int(input())\nprint(x * 2 if x != 3 else 0, '  ')\nprint()\n"
    cases = [("1\n", "2\n"), ("2\n", "4"), ("3\n", "6\n"), ("4\n", None), ("5\n", "10\n\n\n")]
    b = check_execute_shape(execute(c, "python", code, uid(), cases), 5)
    assert [t["verdict"] for t in b["test_results"]] == ["accepted", "accepted", "wrong_answer", "accepted", "accepted"], b
    assert b["summary"] == {"total_tests": 5, "passed": 4, "failed": 1, "all_passed": False, "pass_percentage": 80.0}, b
    assert [t["expected_output"] for t in b["test_results"]] == ["2\n", "4", "6\n", None, "10\n\n\n"], b
    assert b["test_results"][2]["stdout"].startswith("0"), b
    # exact comparison on request
    b = check_execute_shape(execute(c, "python", "print(7, end='  \\n')\n", uid(), [("", "7\n")], compare={"mode": "exact"}), 1)
    assert b["test_results"][0]["verdict"] == "wrong_answer", b


VERDICT_CASES = [
    ("accepted", "python", "print(input())\n", {}),
    ("wrong_answer", "python", "print('nope')\n", {}),
    ("time_limit_exceeded", "python", "while True:\n    pass\n", {"limits": {"cpu_ms": 500, "wall_ms": 3000}}),
    ("memory_limit_exceeded", "python", "x = bytearray(400 << 20)\nprint(len(x))\n", {"limits": {"memory_kb": 65536}}),
    ("runtime_error", "python", "raise SystemExit(3)\n", {}),
    ("output_limit_exceeded", "python", "import sys\nsys.stdout.write('x' * (1 << 20))\n",
     {"limits": {"output_bytes": 4096}}),
    ("compilation_error", "c", "int main(void) { this is not C }\n", {}),
    ("accepted", "c", '#include <stdio.h>\nint main(void){char s[64]; scanf("%63s", s); puts(s); return 0;}\n', {}),
    ("runtime_error", "cpp", "#include <cstdlib>\nint main(){ std::abort(); }\n", {}),
    ("wrong_answer", "javascript", "console.log('nope')\n", {}),
]


@pytest.mark.parametrize("verdict,lang,code,extra", VERDICT_CASES,
                         ids=["%s-%s" % (v[1], v[0]) for v in VERDICT_CASES])
def test_execute_verdicts(make_poold, verdict, lang, code, extra):
    pd = make_poold(pools={lang: ALL_POOLS[lang]})
    c = pd.client()
    cases = [("hello\n", "hello\n"), ("again\n", "again\n")]
    r = execute(c, lang, code, uid(), cases, **extra)
    b = check_execute_shape(r, 2)
    if verdict == "compilation_error":
        # answered once for the whole submission: no test ran
        assert b.get("verdict") == "compilation_error", b
        assert all(t["verdict"] == "compilation_error" for t in b["test_results"]), b
        assert b["summary"]["passed"] == 0 and b["summary"]["all_passed"] is False, b
        assert "error" in json.dumps(b.get("compile_output") or b.get("compile") or ""), \
            "the compiler's message is not in the answer: %r" % b
        return
    vs = [t["verdict"] for t in b["test_results"]]
    assert vs == [verdict, verdict], "want %s twice, got %r: %r" % (verdict, vs, b)
    ok = verdict == "accepted"
    assert b["summary"]["all_passed"] is ok and b["summary"]["passed"] == (2 if ok else 0), b
    if verdict == "runtime_error" and lang == "python":
        assert b["test_results"][0]["exit_code"] == 3, b


def test_execute_internal_error_is_not_the_programs(make_poold):
    """internal_error is ours, never the program's: a program that tries
    everything a program can do to look broken gets one of its own verdicts."""
    pd = make_poold()
    c = pd.client()
    code = ("import os, signal, sys\nsys.stdout.write('partial')\nsys.stdout.flush()\n"
            "os.close(1)\nos.close(2)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    b = check_execute_shape(execute(c, "python", code, uid(), [("", "partial")]), 1)
    assert b["test_results"][0]["verdict"] == "runtime_error", b


def test_execute_languages_double(make_poold):
    """Every language, a correct and a wrong solution, through /execute."""
    pd = make_poold(pools=ALL_POOLS)
    c = pd.client()
    for lang in ALL_POOLS:
        b = check_execute_shape(execute(c, lang, DOUBLE[lang], uid(), [("21\n", "42\n"), ("-4\n", "-8")]), 2)
        assert b["summary"]["all_passed"], (lang, b)
        b = check_execute_shape(execute(c, lang, WRONG_DOUBLE[lang], uid(), [("21\n", "42\n"), ("1\n", "2\n")]), 2)
        assert [t["verdict"] for t in b["test_results"]] == ["wrong_answer", "accepted"], (lang, b)
        assert b["summary"]["pass_percentage"] == 50.0, b


# ---------------------------------------------------------------- sessions


WRITE_NOTE = "import sys\nopen('/mnt/data/note.txt', 'w').write(sys.stdin.read())\nprint('written')\n"
READ_NOTE = "import os\nprint(open('/mnt/data/note.txt').read() if os.path.exists('/mnt/data/note.txt') else 'NONE')\n"


def test_same_identifier_same_slot(make_poold, pool_node):
    pd = make_poold(pools={"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"},
                           "javascript": ALL_POOLS["javascript"]})
    c = pd.client()
    alice, bob = uid(), uid()
    r = session_run(c, alice, WRITE_NOTE, [("secret of alice", "written")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    r = session_info(c, alice)
    assert r.status == 200, r
    slot = r.body["slot"]
    assert r.body["identifier"] == alice and r.body["pool"] == "python" and r.body["node"] == "local", r
    assert r.body["state"] == "active", r
    # the node knows the lease by its label
    labelled = node_slots(pool_node, label="python/" + alice)
    assert [s["id"] for s in labelled] == [slot], labelled
    # run 2 reads what run 1 wrote
    r = session_run(c, alice, READ_NOTE, [("", "secret of alice")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    assert session_info(c, alice).body["slot"] == slot
    # /execute with the same user_id is a judged submission in a fresh slot
    # (issue 11): nothing of the session's, and no session of its own
    b = check_execute_shape(execute(c, "python", READ_NOTE, alice, [("", "NONE")]), 1)
    assert b["summary"]["all_passed"], "a judged submission saw the session's file: %r" % b
    assert session_info(c, alice).body["slot"] == slot
    # the native route reaches the same slot, and says which session it ran in
    r = session_run(c, alice, READ_NOTE, [("", "secret of alice")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    assert r.body["session"] == {"identifier": alice, "pool": "python", "node": "local"}, r
    assert session_info(c, alice).body["executions"] >= 3
    # another identifier: another slot, nothing of alice's
    r = session_run(c, bob, READ_NOTE, [("", "NONE")])
    assert r.status == 200 and r.body["verdict"] == "accepted", "bob saw alice's file: %r" % (r,)
    assert session_info(c, bob).body["slot"] != slot
    # the same identifier in another pool is another session
    r = session_run(c, alice, "console.log(require('fs').existsSync('/mnt/data/note.txt'))", [("", "false")],
                    pool="javascript")
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    assert session_info(c, alice, pool="javascript").body["slot"] != slot
    # list (admin route)
    r = c.get("/v1/sessions")
    assert r.status == 200, r
    got = {(s["pool"], s["identifier"]) for s in r.body["sessions"]}
    assert got == {("python", alice), ("python", bob), ("javascript", alice)}, r
    r = c.get("/v1/sessions?pool=javascript")
    assert [s["identifier"] for s in r.body["sessions"]] == [alice], r


def test_session_files_and_release(make_poold, pool_node):
    pd = make_poold()
    c = pd.client()
    ident = uid()
    base = "/v1/sessions/%s/files" % ident
    # a PUT leases the session
    r = c.put(base + "/data.txt?pool=python", b"21\n")
    assert r.status == 201, r
    assert r.body.get("name") == "data.txt" and r.body.get("size") == 3, r
    slot = session_info(c, ident).body["slot"]
    r = session_run(c, ident, "print(int(open('/mnt/data/data.txt').read()) * 2)\n"
                              "open('/mnt/data/out.bin', 'wb').write(bytes(range(256)))\n", [("", "42\n")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    r = c.get(base + "?pool=python")
    assert r.status == 200, r
    names = {f["name"]: f for f in r.body["files"]}
    assert {"data.txt", "out.bin"} <= set(names), r
    assert names["out.bin"]["size"] == 256
    r = c.get(base + "/out.bin?pool=python")
    assert r.status == 200 and r.raw == bytes(range(256)), r
    assert r.headers.get("content-type") == "application/octet-stream", r.headers
    r = c.delete(base + "/data.txt?pool=python")
    assert r.status == 204, r
    assert_error(c.get(base + "/data.txt?pool=python"), 404)
    # names are checked by the node: a traversal never leaves /mnt/data
    r = c.get(base + "/%2E%2E%2Fetc%2Fpasswd?pool=python")
    assert r.status in (400, 404) and b"root:" not in r.raw, r
    assert session_info(c, ident).body["slot"] == slot
    # GET of files of an unknown session does not lease one
    other = uid()
    r = c.get("/v1/sessions/%s/files?pool=python" % other)
    assert_error(r, 404, "SessionNotFound")
    assert_error(session_info(c, other), 404, "SessionNotFound")
    # release: 204, gone here and on the node; a new request starts afresh
    r = c.delete("/v1/sessions/%s?pool=python" % ident)
    assert r.status == 204 and r.raw == b"", r
    assert_error(session_info(c, ident), 404, "SessionNotFound")
    assert wpdaemons.wait_for(lambda: pool_node.client().get("/v1/slots/%s" % slot).status == 404, 10), \
        "released slot %s still on the node" % slot
    assert_error(c.delete("/v1/sessions/%s?pool=python" % ident), 404, "SessionNotFound")
    r = session_run(c, ident, READ_NOTE.replace("note.txt", "out.bin"), [("", "NONE")])
    assert r.status == 200 and r.body["verdict"] == "accepted", "a released session's files came back: %r" % (r,)
    assert session_info(c, ident).body["slot"] != slot


def test_session_executions_in_order(make_poold):
    """Executions on one session run one at a time, in arrival order;
    another session runs meanwhile."""
    pd = make_poold()
    c = pd.client()
    ident, other = uid(), uid()
    prog = ("import sys, time\nt0 = time.time()\ni = sys.stdin.read().strip()\ntime.sleep(0.3)\n"
            "open('/mnt/data/log', 'a').write('%s %.4f %.4f\\n' % (i, t0, time.time()))\nprint(i)\n")
    assert session_run(c, ident, "print(1)", [("", "1")]).status == 200  # leased
    assert session_run(c, other, "print(1)", [("", "1")]).status == 200
    results = {}

    def go(i):
        results[i] = session_run(c, ident, prog, [("%d\n" % i, "%d\n" % i)])

    threads = []
    t0 = time.monotonic()
    for i in range(6):
        t = threading.Thread(target=go, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # arrival order is i
    # meanwhile another session is not held up by this one's queue
    t_other = time.monotonic()
    r = session_run(c, other, "print(2)", [("", "2")])
    other_took = time.monotonic() - t_other
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    assert r.status == 200 and other_took < 1.0, "another session waited %.2f s behind this one: %r" % (other_took, r)
    for i in range(6):
        assert results[i].status == 200 and results[i].body["verdict"] == "accepted", results[i]
    log = session_run(c, ident, "print(open('/mnt/data/log').read())", [("", None)]).body["tests"][0]["stdout"]
    rows = [line.split() for line in log.strip().splitlines()]
    assert [int(x[0]) for x in rows] == list(range(6)), "executions not in arrival order:\n%s" % log
    for a, b in zip(rows, rows[1:]):
        assert float(b[1]) >= float(a[2]) - 0.005, "executions overlapped:\n%s" % log
    assert elapsed >= 6 * 0.3, elapsed


def test_session_queue_bound(make_poold):
    """The per-session queue is bounded: beyond session_queue, 429."""
    pd = make_poold(extra_poold="session_queue = 2")
    c = pd.client()
    ident = uid()
    assert session_run(c, ident, "print(1)", [("", "1")]).status == 200
    results = []
    lock = threading.Lock()

    def go():
        r = session_run(c, ident, "import time\ntime.sleep(0.5)\nprint(1)", [("", "1")])
        with lock:
            results.append(r)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join(60)
    codes = sorted(r.status for r in results)
    assert codes.count(200) >= 3 and 429 in codes, [repr(r) for r in results]
    for r in results:
        if r.status == 429:
            assert_error(r, 429, "SessionQueueFull")
            assert "retry-after" in r.headers, r.headers


# ---------------------------------------------------------------- pools, nodes, ops routes


def test_ops_routes(make_poold, pool_node):
    pd = make_poold(pools={"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"},
                           "py2": {"language": "python", "warm": 0, "max": 3, "idle_timeout": "90s",
                                   "max_lifetime": "1h", "cpu": "2s"}})
    c = pd.client()
    r = c.get("/healthz")
    assert r.status == 200 and r.body == {"status": "ok"}, r
    wait_pool(c, "python", lambda p: p["ready"] == 2, 10, "2 ready")
    r = c.get("/readyz")
    assert r.status == 200, r
    r = c.get("/v1/pools")
    assert r.status == 200, r
    pools = {p["name"]: p for p in r.body["pools"]}
    assert set(pools) == {"python", "py2"}, r
    p = pools["py2"]
    assert (p["language"], p["warm"], p["max"], p["idle_timeout_s"], p["max_lifetime_s"], p["draining"]) == (
        "python", 0, 3, 90, 3600, False), p
    for k in ("ready", "creating", "leased", "queued", "create_failures"):
        assert type(p[k]) is int, p
    r = c.get("/v1/nodes")
    assert r.status == 200 and len(r.body["nodes"]) == 1, r
    n = r.body["nodes"][0]
    assert n["name"] == "local" and n["up"] is True and n["capacity"] == pool_node.capacity, n
    r = c.get("/v1/languages")
    assert r.status == 200, r
    langs = {(l["pool"], l["language"]): l for l in r.body["languages"]}
    assert langs[("python", "python")]["available"] is True and "Python" in langs[("python", "python")]["version"], r
    # the pool's limits reach the run: py2 has cpu = 2s
    r = session_run(c, uid(), "while True: pass", [("", None)], pool="py2")
    assert r.status == 200 and r.body["verdict"] == "time_limit_exceeded", r
    assert 1500 <= r.body["tests"][0]["time_ms"] <= 4000, "pool cpu limit 2s not applied: %r" % (r,)
    # unknown routes and methods
    assert_error(c.get("/nope"), 404, "NotFound")
    assert_error(c.get("/execute"), 405, "MethodNotAllowed")
    assert_error(c.put("/v1/sessions/x/run?pool=python", b"{}"), 405, "MethodNotAllowed")
    assert_error(c.post("/v1/sessions/x?pool=python", {}), 405, "MethodNotAllowed")
    assert_error(c.delete("/v1/pools/python"), 405, "MethodNotAllowed")


def test_metrics_content(make_poold):
    pd = make_poold()
    c = pd.client()
    ident = uid()
    check_execute_shape(execute(c, "python", "print(1)", ident, [("", "1")]), 1)
    check_execute_shape(execute(c, "python", "print(2)", ident, [("", "1")]), 1)
    wait_pool(c, "python", lambda p: p["ready"] == 2, 10, "2 ready")
    text = metrics_text(c)
    v = lambda name, **l: metric_value(text, name, **l)  # noqa: E731
    assert v("warmpool_pool_ready_slots", pool="python") == 2, text
    # judged submissions hold no slot once answered (issue 11), and wait in the fair queue
    assert v("warmpool_pool_leased_slots", pool="python") == 0, text
    assert v("warmpool_pool_max_slots", pool="python") == 8
    assert v("warmpool_pool_queued_requests", pool="python") == 0
    assert v("warmpool_node_up", node="local") == 1
    assert v("warmpool_slot_create_failures_total", pool="python") == 0
    assert v("warmpool_execution_duration_seconds_count", language="python", verdict="accepted") == 1, text
    assert v("warmpool_execution_duration_seconds_count", language="python", verdict="wrong_answer") == 1, text
    assert v("warmpool_execute_queue_wait_seconds_count", pool="python") == 2, text
    assert v("warmpool_execute_queued", pool="python") == 0, text
    assert v("warmpool_execute_running", pool="python") == 0, text
    assert v("warmpool_execute_queue_length") == 0, text
    assert v("warmpool_node_run_slots", node="local") >= 1, text
    assert v("warmpool_http_requests_total", route="/execute", status="200") == 2, text
    assert "# TYPE warmpool_execution_duration_seconds histogram" in text
    r = c.get("/metrics")
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers


# ---------------------------------------------------------------- at max


def test_pool_exhausted_then_served(make_poold):
    """At max, a new session waits queue_timeout, then 503 PoolExhausted with
    Retry-After; a slot freed while it waits serves it."""
    pd = make_poold(pools={"python": {"language": "python", "warm": 1, "max": 2, "idle_timeout": "5m"}},
                    extra_poold="queue_timeout = 1s")
    c = pd.client()
    a, b, x = uid(), uid(), uid()
    for s in (a, b):
        assert session_run(c, s, "print(1)", [("", "1")]).status == 200
    t0 = time.monotonic()
    r = session_run(c, x, "print(1)", [("", "1")])
    waited = time.monotonic() - t0
    assert_error(r, 503, "PoolExhausted")
    assert r.headers.get("retry-after", "").isdigit() and int(r.headers["retry-after"]) >= 1, r.headers
    assert 0.8 <= waited <= 4, "answered after %.2f s, queue_timeout is 1 s" % waited
    assert_error(session_info(c, x), 404, "SessionNotFound")
    # a judged submission at max waits for a slot (issue 11: queued, not
    # 503 after queue_timeout) and runs once one frees
    judged = {}
    tj = threading.Thread(target=lambda: judged.setdefault("r", execute(c, "python", "print(1)", x, [("", "1")])))
    tj.start()
    time.sleep(1.5)
    assert "r" not in judged, "answered while the pool was at max: %r" % (judged.get("r"),)
    # a waiting request is served when a lease ends meanwhile
    pd2 = None
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", session_run(c, x, "print(5)", [("", "5")])))
    th.start()
    time.sleep(0.3)
    assert c.delete("/v1/sessions/%s?pool=python" % a).status == 204
    th.join(30)
    assert out["r"].status == 200 and out["r"].body["verdict"] == "accepted", out["r"]
    p = pool_info(c)
    assert p["leased"] == 2 and p["ready"] + p["creating"] + p["leased"] <= 2, p
    assert c.delete("/v1/sessions/%s?pool=python" % b).status == 204
    tj.join(30)
    assert judged["r"].status == 200 and judged["r"].body["verdict"] == "accepted", judged
    del pd2


def test_pool_queue_limit(make_poold):
    """Beyond max_queue waiting lease requests, 503 at once."""
    pd = make_poold(pools={"python": {"language": "python", "warm": 0, "max": 1, "idle_timeout": "5m"}},
                    extra_poold="queue_timeout = 3s\nmax_queue = 2")
    c = pd.client()
    assert session_run(c, uid(), "print(1)", [("", "1")]).status == 200
    res = []
    lock = threading.Lock()

    def go():
        t0 = time.monotonic()
        r = session_run(c, uid(), "print(1)", [("", "1")])
        with lock:
            res.append((r, time.monotonic() - t0))

    ths = [threading.Thread(target=go) for _ in range(4)]
    for t in ths:
        t.start()
        time.sleep(0.05)
    for t in ths:
        t.join(20)
    assert all(r.status == 503 for r, _ in res), res
    # refused at once vs after queue_timeout (3 s); the exact rule is unit
    # tested (tests/unit/test_pool.c), here only the two kinds of answer
    fast = [w for r, w in res if w < 2.0]
    slow = [w for r, w in res if w >= 2.5]
    assert len(fast) == 2 and len(slow) == 2, "want 2 queued (≈3 s) and 2 refused at once: %r" % res


# ---------------------------------------------------------------- bad input


def state_of(pd, node):
    c = pd.client()
    sessions = sorted((s["pool"], s["identifier"], s["slot"]) for s in c.get("/v1/sessions").body["sessions"])
    pools = [(p["name"], p["warm"], p["max"], p["idle_timeout_s"], p["max_lifetime_s"], p["draining"], p["leased"])
             for p in c.get("/v1/pools").body["pools"]]
    labels = sorted((s["id"], s["label"]) for s in node_slots(node) if s["label"])
    return sessions, pools, labels


def test_bad_input(make_poold, pool_node):
    pd = make_poold(extra_poold="max_tests = 5\nmax_body = 64k\nmax_upload = 256k")
    c = pd.client()
    known = uid()
    assert session_run(c, known, "print(1)", [("", "1")]).status == 200
    wait_pool(c, "python", lambda p: p["ready"] == 2, 10)
    before = state_of(pd, pool_node)
    good = {"language": "python", "code": "print(1)", "user_id": "badinput-user", "question_id": "q",
            "test_cases": [{"input": "", "expected_output": "1"}]}

    def with_(**kw):
        b = dict(good)
        for k, v in kw.items():
            if v is KeyError:
                b.pop(k, None)
            else:
                b[k] = v
        return b

    deep = b"[" * 200 + b"]" * 200
    deep_obj = dict(good, question_id=None)
    nested = {}
    cur = nested
    for _ in range(100):
        cur["a"] = {}
        cur = cur["a"]
    bad_execute = [
        ("malformed", b'{"language": "python", "code": ', 400),
        ("not an object", b'["python"]', 400),
        ("empty body", b"", 400),
        ("not utf-8", b'{"language": "\xff\xfe"}', 400),
        ("deep array", deep, 400),
        ("deep object", json.dumps(dict(good, limits=nested)).encode(), 400),
        ("language number", with_(language=5), 400),
        ("code list", with_(code=["print(1)"]), 400),
        ("code missing", with_(code=KeyError), 400),
        ("user_id object", with_(user_id={"a": 1}), 400),
        ("user_id missing", with_(user_id=KeyError), 400),
        ("test_cases string", with_(test_cases="1"), 400),
        ("test_cases empty", with_(test_cases=[]), 400),
        ("test_case not object", with_(test_cases=["1"]), 400),
        ("input number", with_(test_cases=[{"input": 5}]), 400),
        ("expected number", with_(test_cases=[{"input": "", "expected_output": 1}]), 400),
        ("test case unknown key", with_(test_cases=[{"stdin": ""}]), 400),
        ("unknown key", with_(colour="red"), 400),
        ("too many test cases", with_(test_cases=[{"input": ""}] * 6), 400),
        ("unknown language", with_(language="cobol"), 400),
        ("empty identifier", with_(user_id=""), 400),
        ("129-char identifier", with_(user_id="a" * 129), 400),
        ("control char identifier", with_(user_id="ab\x01c"), 400),
        ("newline identifier", with_(user_id="ab\nc"), 400),
        ("space identifier", with_(user_id="a b"), 400),
        ("non-ascii identifier", with_(user_id="caf\u00e9"), 400),
        ("limits not an object", with_(limits="fast"), 400),
        ("limits wrong type", with_(limits={"cpu_ms": "1s"}), 400),
        ("limits above maximum", with_(limits={"cpu_ms": 10 ** 9}), 400),
        ("limits unknown key", with_(limits={"gpu": 1}), 400),
        ("compare mode unknown", with_(compare={"mode": "fuzzy"}), 400),
    ]
    failures = []
    for name, body, want in bad_execute:
        r = c.post("/execute", body)
        if not (400 <= r.status < 500) or r.status != want or not r.error_code():
            failures.append("%s: want %d with an error body, got %r" % (name, want, r))
    ok_id = "a" * 128
    for name, body, want, code in [
        ("unknown language code", with_(language="cobol"), 400, "UnknownLanguage"),
        ("identifier code", with_(user_id=""), 400, "InvalidIdentifier"),
    ]:
        r = c.post("/execute", body)
        if r.status != want or r.error_code() != code:
            failures.append("%s: want %d %s, got %r" % (name, want, code, r))
    # oversized: JSON over max_body, upload over max_upload
    r = c.post("/execute", with_(code="#" * (100 << 10)))
    if r.status != 413:
        failures.append("JSON body over max_body (64k): want 413, got %r" % (r,))
    r = c.put("/v1/sessions/%s/files/big?pool=python" % known, b"x" * (300 << 10))
    if r.status != 413:
        failures.append("upload over max_upload (256k): want 413, got %r" % (r,))
    # native routes
    runb = {"source": "print(1)", "tests": [{"stdin": "", "expected": "1"}]}
    for name, method, path, body, want in [
        ("run malformed", "POST", "/v1/sessions/x1/run?pool=python", b"{", 400),
        ("run tests missing", "POST", "/v1/sessions/x1/run?pool=python", {"source": "print(1)"}, 400),
        ("run tests not list", "POST", "/v1/sessions/x1/run?pool=python", dict(runb, tests={"stdin": ""}), 400),
        ("run too many tests", "POST", "/v1/sessions/x1/run?pool=python", dict(runb, tests=[{"stdin": ""}] * 6), 400),
        ("run unknown key", "POST", "/v1/sessions/x1/run?pool=python", dict(runb, colour=1), 400),
        ("run source number", "POST", "/v1/sessions/x1/run?pool=python", dict(runb, source=1), 400),
        ("run unknown pool", "POST", "/v1/sessions/x1/run?pool=nope", runb, 404),
        ("info unknown pool", "GET", "/v1/sessions/x1?pool=nope", None, 404),
        ("run 129-char id", "POST", "/v1/sessions/%s/run?pool=python" % ("b" * 129), runb, 400),
        ("run control id", "POST", "/v1/sessions/a%01b/run?pool=python", runb, 400),
        ("run space id", "POST", "/v1/sessions/a%20b/run?pool=python", runb, 400),
        ("run empty id", "POST", "/v1/sessions//run?pool=python", runb, 400),
        ("run non-ascii id", "POST", "/v1/sessions/caf%C3%A9/run?pool=python", runb, 400),
        ("files 129-char id", "GET", "/v1/sessions/%s/files?pool=python" % ("c" * 129), None, 400),
        ("pool unknown", "GET", "/v1/pools/nope", None, 404),
        ("patch unknown pool", "PATCH", "/v1/pools/nope", {"warm": 1}, 404),
        ("drain unknown pool", "POST", "/v1/pools/nope/drain", None, 404),
        ("patch malformed", "PATCH", "/v1/pools/python", b"{warm: 3}", 400),
        ("patch warm string", "PATCH", "/v1/pools/python", {"warm": "3"}, 400),
        ("patch warm negative", "PATCH", "/v1/pools/python", {"warm": -1}, 400),
        ("patch warm float", "PATCH", "/v1/pools/python", {"warm": 1.5}, 400),
        ("patch warm above max", "PATCH", "/v1/pools/python", {"warm": 9}, 400),
        ("patch max zero", "PATCH", "/v1/pools/python", {"max": 0}, 400),
        ("patch unknown key", "PATCH", "/v1/pools/python", {"warm": 1, "colour": 2}, 400),
        ("patch not object", "PATCH", "/v1/pools/python", [1], 400),
        ("patch idle zero", "PATCH", "/v1/pools/python", {"idle_timeout_s": 0}, 400),
        ("patch deep", "PATCH", "/v1/pools/python", deep, 400),
    ]:
        r = c.request(method, path, body=body)
        if r.status != want or not r.error_code():
            failures.append("%s (%s %s): want %d with an error body, got %r" % (name, method, path, want, r))
    # a valid 128-character identifier is fine (and then released)
    r = execute(c, "python", "print(1)", ok_id, [("", "1")])
    if r.status != 200:
        failures.append("128-char identifier refused: %r" % (r,))
    elif session_info(c, ok_id).status != 404:  # a judged submission leaves no session (issue 11)
        failures.append("/execute left a session: %r" % (session_info(c, ok_id),))
    wpdaemons.wait_for(lambda: pool_info(c)["ready"] == 2 and pool_info(c)["creating"] == 0, 10)
    after = state_of(pd, pool_node)
    assert not failures, "\n".join(failures)
    assert after == before, "bad requests changed the state:\nbefore %r\nafter  %r" % (before, after)
    assert pd.alive()


# ---------------------------------------------------------------- auth


TOKENS = [("exec-%s" % uuid.uuid4().hex, "executor", "backend"), ("admin-%s" % uuid.uuid4().hex, "admin", "ops"),
          ("metrics-%s" % uuid.uuid4().hex, "metrics", "prometheus")]


def test_auth_roles(make_poold):
    pd = make_poold(tokens=TOKENS)
    ex, ad, me = (pd.client(t[0]) for t in TOKENS)
    anon = pd.client()
    ident = uid()
    run = {"source": "print(1)", "tests": [{"stdin": "", "expected": "1"}]}
    exe = {"language": "python", "code": "print(1)", "user_id": ident, "test_cases": [{"input": "", "expected_output": "1"}]}
    routes = [
        # (method, path, body, roles allowed)
        ("POST", "/execute", exe, {"executor", "admin"}),
        ("POST", "/v1/sessions/%s/run?pool=python" % ident, run, {"executor", "admin"}),
        ("GET", "/v1/sessions/%s?pool=python" % ident, None, {"executor", "admin"}),
        ("GET", "/v1/sessions/%s/files?pool=python" % ident, None, {"executor", "admin"}),
        ("GET", "/v1/sessions", None, {"admin"}),
        ("GET", "/v1/pools", None, {"executor", "admin"}),
        ("GET", "/v1/pools/python", None, {"executor", "admin"}),
        ("PATCH", "/v1/pools/python", {"warm": 2}, {"admin"}),
        ("POST", "/v1/pools/python/undrain", None, {"admin"}),
        ("GET", "/v1/nodes", None, {"executor", "admin"}),
        ("GET", "/v1/languages", None, {"executor", "admin"}),
        ("GET", "/metrics", None, {"metrics", "admin"}),
    ]
    failures = []
    bad_headers = [None, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + TOKENS[1][0]},
                   {"Authorization": "Bearer " + TOKENS[1][0] + "x"}, {"Authorization": "Bearer " + TOKENS[1][0][:-1]},
                   {"Authorization": "Bearer"}, {"Authorization": "bearer  "},
                   {"Authorization": "Bearer " + wpdaemons.hash_token(TOKENS[1][0])}]
    for method, path, body, allowed in routes:
        for h in bad_headers:
            r = anon.request(method, path, body=body, headers=h)
            if r.status != 401 or r.error_code() != "Unauthorized" or "bearer" not in r.headers.get("www-authenticate", "").lower():
                failures.append("%s %s with %r: want 401 Unauthorized + WWW-Authenticate, got %r" % (method, path, h, r))
        for role, cl in (("executor", ex), ("admin", ad), ("metrics", me)):
            r = cl.request(method, path, body=body)
            if role in allowed:
                if r.status >= 400:
                    failures.append("%s %s as %s: allowed, got %r" % (method, path, role, r))
            elif r.status != 403 or r.error_code() != "Forbidden":
                failures.append("%s %s as %s: want 403 Forbidden, got %r" % (method, path, role, r))
    # release, admin too
    r = ex.delete("/v1/sessions/%s?pool=python" % ident)
    if r.status != 204:
        failures.append("DELETE session as executor: %r" % (r,))
    r = me.delete("/v1/sessions/%s?pool=python" % ident)
    if r.status != 403:
        failures.append("DELETE session as metrics: want 403, got %r" % (r,))
    for path in ("/healthz", "/readyz"):
        r = anon.get(path)
        if r.status not in (200, 503) or r.status == 401:
            failures.append("%s without a token: %r" % (path, r))
    assert not failures, "\n".join(failures)


def test_auth_token_file_hashing(tmp_path):
    """--hash-token prints the SHA-256 of the token (a trailing newline of
    the file is not part of it)."""
    import hashlib

    for tok in (b"abc", b"s3cret-token\n", b"x" * 100 + b"\r\n"):
        r = subprocess.run([wpdaemons.POOLD, "--hash-token"], input=tok, stdout=subprocess.PIPE, timeout=10)
        assert r.returncode == 0
        assert r.stdout.decode().strip() == hashlib.sha256(tok.rstrip(b"\r\n")).hexdigest(), tok
    r = subprocess.run([wpdaemons.POOLD, "--hash-token"], input=b"", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    assert r.returncode != 0


def test_refuses_non_loopback_without_tokens(pool_node):
    tmp = wpdaemons.make_tmpdir("wp-poold-")
    try:
        port = wpdaemons.free_port()
        pd = wpdaemons.Poold(tmp, nodes={"local": pool_node.url}, listen="0.0.0.0:%d" % port)
        rc, out = pd.check_config()
        assert rc == 1 and "listen" in out and "0.0.0.0" in out and "auth" in out, (rc, out)
        with pytest.raises(RuntimeError, match="exited with 1"):
            pd.start(timeout=5)
        assert "0.0.0.0" in pd.log_text()
        for addr in ("[::]:%d" % port, "10.1.2.3:%d" % port, "localhost.example.com:%d" % port):
            pd = wpdaemons.Poold(tmp, nodes={"local": pool_node.url}, listen=addr)
            rc, out = pd.check_config()
            assert rc == 1 and "auth" in out, (addr, rc, out)
        # with a token the same config still needs TLS (issue 16): listen_tls, or a
        # proxy in front that terminates it (not started: tests stay on loopback)
        pd = wpdaemons.Poold(tmp, nodes={"local": pool_node.url}, listen="0.0.0.0:%d" % port, tokens=TOKENS[:1])
        rc, out = pd.check_config()
        assert rc == 1 and "listen_tls" in out and "tls_terminated_by_proxy" in out, out
        pd = wpdaemons.Poold(tmp, nodes={"local": pool_node.url}, listen="0.0.0.0:%d" % port, tokens=TOKENS[:1],
                             extra_poold="tls_terminated_by_proxy = yes")
        rc, out = pd.check_config()
        assert rc == 0, out
        for addr in ("127.0.0.1:%d" % port, "[::1]:%d" % port, "localhost:%d" % port, "127.5.6.7:%d" % port):
            pd = wpdaemons.Poold(tmp, nodes={"local": pool_node.url}, listen=addr)
            rc, out = pd.check_config()
            assert rc == 0 and "loopback" in out, (addr, out)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- rate limits


def test_rate_limit_per_session(make_poold):
    pd = make_poold(rate_limit={"session_rate": 1, "session_burst": 3, "client_rate": 0})
    c = pd.client()
    a, b = uid(), uid()
    got = [execute(c, "python", "print(1)", a, [("", "1")]) for _ in range(5)]
    codes = [r.status for r in got]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:], [repr(r) for r in got]
    for r in got:
        if r.status == 429:
            assert_error(r, 429, "TooManyRequests")
            assert int(r.headers.get("retry-after", "0")) >= 1, r.headers
    # the native routes count for the same identifier
    assert_error(session_run(c, a, "print(1)", [("", "1")]), 429, "TooManyRequests")
    # another identifier is not limited by a's
    assert execute(c, "python", "print(1)", b, [("", "1")]).status == 200
    time.sleep(1.1)
    assert execute(c, "python", "print(1)", a, [("", "1")]).status == 200


def test_rate_limit_per_client(make_poold):
    pd = make_poold(rate_limit={"session_rate": 0, "client_rate": 2, "client_burst": 4})
    c = pd.client()
    codes = [c.get("/v1/pools").status for _ in range(8)]
    assert codes[:4] == [200] * 4 and 429 in codes[4:], codes
    r = c.get("/v1/nodes")
    assert_error(r, 429, "TooManyRequests")
    assert int(r.headers.get("retry-after", "0")) >= 1, r.headers
    assert c.get("/healthz").status == 200  # health checks are not limited
    time.sleep(1.1)
    assert c.get("/v1/pools").status == 200


# ---------------------------------------------------------------- --check-config


def test_check_config_shipped():
    path = os.path.join(REPO, "config", "poold.conf")
    rc, out = wpdaemons.check_config(path)
    assert rc == 0, out
    assert "valid" in out and "python" in out, out


BASE_CONF = """[poold]
listen = 127.0.0.1:18080
%s
[node:local]
url = unix:/run/warmpool/sandboxd.sock
%s
[pool:python]
language = python
warm = 2
max = 8
%s
"""

BROKEN = [
    # (poold part, node part, pool part, words the message must name)
    ("colour = blue", "", "", ["colour"]),
    ("max_tests = many", "", "", ["max_tests", "many"]),
    ("max_body = 12 parsecs", "", "", ["max_body"]),
    ("queue_timeout = soon", "", "", ["queue_timeout"]),
    ("log_level = chatty", "", "", ["log_level"]),
    ("", "", "warm = -1", ["warm"]),
    ("", "", "max = 0", ["max"]),
    ("", "", "warm = 9", ["warm", "max"]),
    ("", "", "idle_timeout = 500ms", ["idle_timeout"]),
    ("", "", "idle_timeout = forever", ["idle_timeout"]),
    ("", "", "flavour = mint", ["flavour"]),
    ("", "", "cpu = lots", ["cpu"]),
    ("", "url = ftp://node", "", ["url"]),
    ("listen = 0.0.0.0:18081", "", "", ["listen", "0.0.0.0"]),
    ("default_pool = ruby", "", "", ["default_pool", "ruby"]),
    ("[rate_limit]\nsession_rate = fast", "", "", ["session_rate"]),
    ("[auth]\ntoken = nothex executor", "", "", ["token"]),
    ("[auth]\ntoken = %s overlord" % ("a" * 64), "", "", ["token"]),
]


@pytest.mark.parametrize("poold_part,node_part,pool_part,words", BROKEN, ids=[b[3][0] + str(i) for i, b in enumerate(BROKEN)])
def test_check_config_broken(tmp_path, poold_part, node_part, pool_part, words):
    path = tmp_path / "poold.conf"
    path.write_text(BASE_CONF % (poold_part, node_part, pool_part))
    rc, out = wpdaemons.check_config(str(path))
    assert rc == 1, "want exit 1, got %d: %s" % (rc, out)
    for w in words:
        assert w in out, "message does not name %r: %s" % (w, out)
    assert "Traceback" not in out and len(out) < 2000


def test_check_config_structural(tmp_path):
    cases = [
        ("[poold]\nlisten = 127.0.0.1:1\n[pool:python]\nlanguage = python\n", ["node"]),
        ("[poold]\n[node:a]\nurl = unix:/x\n", ["pool"]),
        ("[node:a]\nurl = unix:/x\n[pool:python]\nwarm = 1\n", ["language", "python"]),
        ("[node:a]\n[pool:python]\nlanguage = python\n", ["node"]),
        ("[node:a]\nurl = unix:/x\n[pool:Bad Name]\nlanguage = python\n", ["Bad Name"]),
        ("[node:a]\nurl = unix:/x\n[pool:python\nlanguage = python\n", ["poold.conf"]),
    ]
    for text, words in cases:
        path = tmp_path / "poold.conf"
        path.write_text(text)
        rc, out = wpdaemons.check_config(str(path))
        assert rc == 1, (text, rc, out)
        for w in words:
            assert w in out, "message for %r does not name %r: %s" % (text, w, out)
    rc, out = wpdaemons.check_config(str(tmp_path / "missing.conf"))
    assert rc == 1 and "missing.conf" in out, out
