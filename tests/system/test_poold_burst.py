"""A burst through poold: 200 distinct sessions × 2 runs at once, in mixed
languages, correct and wrong solutions; every verdict must be right, every
session in a slot of its own, no pool above its max. (Sessions, through
/v1/sessions/{id}/run: since issue 11, /execute is a judged submission in a
fresh slot, no longer a session; its contest burst is in test_contest.py.)

Issue 3, Tests section. Run as root: /usr/bin/python3 -m pytest -s tests/system/test_poold_burst.py
(-s shows the timing line).
"""

import os

import pytest
import collections
import threading
import time
import uuid

import wpdaemons
from conftest import DOUBLE, WRONG_DOUBLE, metrics_text, node_slots, session_run

# sessions per language (200 in all); java is slow to compile, so few
MIX = {"python": 80, "javascript": 60, "c": 36, "cpp": 18, "java": 6}
POOLS = {
    "python": {"language": "python", "warm": 40, "max": 100, "idle_timeout": "10m"},
    "javascript": {"language": "javascript", "warm": 30, "max": 80, "idle_timeout": "10m"},
    "c": {"language": "c", "warm": 15, "max": 40, "idle_timeout": "10m"},
    "cpp": {"language": "cpp", "warm": 8, "max": 25, "idle_timeout": "10m"},
    "java": {"language": "java", "warm": 3, "max": 10, "idle_timeout": "10m"},
}
BURST_LIMIT_S = 240  # the whole burst, on 2 cores


@pytest.mark.skipif(bool(os.environ.get("WARMPOOL_SANITIZE")),
                    reason="SKIPPED UNDER SANITIZE: the burst judges wall-clock limits under 2-core load; ASan slows every daemon 2-3x")
def test_burst_200_sessions_x2(make_poold, pool_node):
    assert sum(MIX.values()) == 200
    pd = make_poold(pools=POOLS, extra_poold="queue_timeout = 60s\nmax_queue = 1000")
    c = pd.client(timeout=BURST_LIMIT_S)
    # warm pools ready first (what an admin does before a contest)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pools = {p["name"]: p for p in c.get("/v1/pools").body["pools"]}
        if all(pools[n]["ready"] == POOLS[n]["warm"] for n in POOLS):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("pools not warm within 30 s: %r" % pools)

    run_id = uuid.uuid4().hex[:6]
    jobs = []  # (ident, lang, submission index, correct?, n)
    i = 0
    for lang, count in MIX.items():
        for k in range(count):
            ident = "burst-%s-%s-%03d" % (run_id, lang, k)
            for sub in range(2):
                correct = (k + sub) % 2 == 0  # each session: one correct, one wrong, in either order
                jobs.append((ident, lang, sub, correct, i))
            i += 1
    results = {}
    errors = []
    start = threading.Barrier(len(jobs) + 1)

    def worker(job):
        ident, lang, sub, correct, n = job
        x = 1000 + n * 7 + sub
        code = DOUBLE[lang] if correct else WRONG_DOUBLE[lang]
        tests = [("%d\n" % x, "%d\n" % (2 * x)), ("%d\n" % -x, "%d\n" % (-2 * x))]
        start.wait()
        t0 = time.monotonic()
        try:
            r = session_run(c, ident, code, tests, pool=lang, timeout=BURST_LIMIT_S)
        except Exception as e:  # noqa: BLE001 — reported below
            errors.append((job, repr(e)))
            return
        results[job] = (r, time.monotonic() - t0)

    threads = [threading.Thread(target=worker, args=(j,), daemon=True) for j in jobs]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(max(1, BURST_LIMIT_S - (time.monotonic() - t0)))
    burst = time.monotonic() - t0
    assert not errors, "requests failed: %r" % errors[:5]
    assert len(results) == len(jobs), "%d of %d answers within %d s" % (len(results), len(jobs), BURST_LIMIT_S)

    wrong, slow_start = [], []
    per_lang = collections.defaultdict(list)
    for job, (r, took) in results.items():
        ident, lang, sub, correct, n = job
        per_lang[lang].append(took)
        want = ["accepted", "accepted"] if correct else ["wrong_answer", "wrong_answer"]
        if r.status != 200:
            wrong.append("%s sub %d (%s): %r" % (ident, sub, lang, r))
            continue
        got = [t["verdict"] for t in r.body["tests"]]
        s = {"total": r.body["total"], "passed": r.body["passed"]}
        if s["total"] != 2 or s["passed"] != got.count("accepted"):
            wrong.append("%s sub %d: summary does not match the verdicts: %r" % (ident, sub, r.body))
            continue
        comp = r.body.get("compile") or {}
        if (r.body.get("verdict") == "compilation_error" and comp.get("reason") == "time_limit_exceeded"
                and comp.get("time_ms", 10 ** 9) < 5000):
            slow_start.append("%s sub %d (%s): compile killed by the wall clock: %r" % (
                ident, sub, lang, {k: v for k, v in comp.items() if k != "stdout"}))
            continue
        tle = [i for i, t in enumerate(r.body["tests"])
               if t["verdict"] == "time_limit_exceeded" and t["time_ms"] < 1000]
        if tle and all(got[i] == want[i] for i in range(2) if i not in tle):
            # a program of a few ms of CPU killed by the wall clock: see below
            slow_start.append("%s sub %d (%s): %r" % (ident, sub, lang, [r.body["tests"][i] for i in tle]))
            continue
        if got != want:
            wrong.append("%s sub %d (%s, %s): verdict %r, test verdicts %r, summary %r, results %r, compile %r" % (
                ident, sub, lang, "correct" if correct else "wrong", r.body.get("verdict"), got, s,
                r.body["tests"], {k: v for k, v in (r.body.get("compile") or {}).items() if k != "stdout"}))
    assert not wrong, "%d of %d answers wrong:\n%s" % (len(wrong), len(jobs), "\n".join(wrong[:10]))

    # one slot per session, both submissions in it, no pool above max
    sessions = [s for s in c.get("/v1/sessions").body["sessions"] if s["identifier"].startswith("burst-" + run_id)]
    assert len(sessions) == 200, len(sessions)
    assert all(s["executions"] == 2 for s in sessions), [s for s in sessions if s["executions"] != 2][:5]
    slots = [s["slot"] for s in sessions]
    assert len(set(slots)) == 200, "a slot was handed to two sessions"
    labels = {s["id"]: s["label"] for s in node_slots(pool_node)}
    for s in sessions:
        assert labels.get(s["slot"]) == "%s/%s" % (s["pool"], s["identifier"]), s
    for p in c.get("/v1/pools").body["pools"]:
        assert p["leased"] == MIX[p["name"]], p
        assert p["ready"] + p["leased"] + p["creating"] <= p["max"], p
        assert p["create_failures"] == 0, p
    text = metrics_text(c)
    total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("warmpool_execution_duration_seconds_count{"))
    assert total == 400, "executions counted in metrics: %r" % total
    slowest = {l: round(max(v), 2) for l, v in per_lang.items()}
    print("\nBURST: 200 sessions x 2 submissions (%s) in %.1f s; slowest answer per language: %s"
          % (", ".join("%s %d" % kv for kv in MIX.items()), burst, slowest))
    assert burst < BURST_LIMIT_S
    # Every verdict right includes these: programs (or compiles) of little
    # CPU must not be time_limit_exceeded because the host is busy. (Seen
    # with sandboxd as of this writing, also straight to sandboxd without
    # poold: the wall timer starts when the launch is sent to the slot, whose
    # pre-forked stub may still be joining its run cgroup — on 2 cores with
    # ~200 slots busy, 10-30 s of wall for 20 ms of CPU.)
    assert not slow_start, (
        "%d of 400 answers: a test (or compile) of little CPU judged time_limit_exceeded by the wall clock under the "
        "burst; "
        "every other verdict was right:\n%s" % (len(slow_start), "\n".join(slow_start[:6])))


def _pool(c, name):
    return {p["name"]: p for p in c.get("/v1/pools").body["pools"]}[name]


def test_refill_waits_for_running_sessions(make_poold, pool_node):
    """Warm slots taken by a burst are replaced after the burst's runs, not
    during them (slot creation would take CPU from the users' code), and
    within about a second even when the node never goes quiet."""
    pd = make_poold(pools={"python": {"language": "python", "warm": 4, "max": 12, "idle_timeout": "10m"}})
    c = pd.client(timeout=60)
    assert wpdaemons.wait_for(lambda: _pool(c, "python")["ready"] == 4, 30)
    # 4 sessions at once, each running 0.8 s (sleep: no CPU, but running)
    idents = ["hold-%s-%d" % (uuid.uuid4().hex[:6], k) for k in range(4)]
    seen = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            p = _pool(c, "python")
            seen.append((time.monotonic(), p["ready"], p["creating"], p["leased"]))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    rs = [None] * 4

    def run(k):
        rs[k] = session_run(c, idents[k], "import time; time.sleep(0.8); print('ok')", [("", "ok")])

    ts = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    t_end = time.monotonic()
    assert all(r.status == 200 and r.body["verdict"] == "accepted" for r in rs), rs
    assert wpdaemons.wait_for(lambda: _pool(c, "python")["ready"] == 4, 30), _pool(c, "python")
    done.set()
    watcher.join()
    # within the hold (1 s after the first take; the runs may outlast it on
    # a slow machine, and then the refill may rightly start)
    during = [s for s in seen if t0 + 0.1 < s[0] < min(t_end - 0.1, t0 + 0.9) and s[3] == 4]
    assert during, "the watcher saw nothing while the 4 sessions ran: %r" % seen
    assert all(s[1] == 0 and s[2] == 0 for s in during), \
        "slots were created while the burst ran (ready, creating): %r" % [(s[1], s[2]) for s in during]

    # a session that keeps the node busy for 6 s: the refill still comes
    # while it runs (the hold ends 1 s after the lease: tests/unit/test_pool.c
    # checks that instant on a fake clock; here only that it is not the end
    # of the session, with room for a loaded machine)
    for i in idents:
        assert c.delete("/v1/sessions/%s?pool=python" % i).status in (200, 202, 204)
    assert wpdaemons.wait_for(lambda: _pool(c, "python")["ready"] == 4 and _pool(c, "python")["leased"] == 0, 30)
    busy = "hold-busy-%s" % uuid.uuid4().hex[:6]
    result = {}
    t = threading.Thread(target=lambda: result.update(r=session_run(
        c, busy, "import time; time.sleep(6); print('ok')", [("", "ok")])), daemon=True)
    t1 = time.monotonic()
    t.start()
    assert wpdaemons.wait_for(lambda: _pool(c, "python")["leased"] == 1, 10)
    assert wpdaemons.wait_for(lambda: _pool(c, "python")["ready"] + _pool(c, "python")["creating"] == 4, 5), \
        "no refill within the hold while the node stayed busy: %r" % _pool(c, "python")
    refilled_after = time.monotonic() - t1
    t.join()
    assert result["r"].status == 200 and result["r"].body["verdict"] == "accepted", result
    assert refilled_after < 5.5, "the refill waited for the busy session to end (%.2f s)" % refilled_after
    c.delete("/v1/sessions/%s?pool=python" % busy)


def _warm_pool_of_6(make_poold, max_slots):
    pd = make_poold(pools={"python": {"language": "python", "warm": 6, "max": max_slots, "idle_timeout": "10m"}})
    c = pd.client(timeout=60)
    assert wpdaemons.wait_for(lambda: _pool(c, "python")["ready"] == 6 and _pool(c, "python")["creating"] == 0, 30)
    return c


def _paced_leases(c, tag, n, period=0.1):
    """One new session every `period` s, each running print('ok'); after
    each answer, the pool as (t, ready, creating, leased)."""
    idents = ["%s-%s-%d" % (tag, uuid.uuid4().hex[:6], k) for k in range(n)]
    seen = []
    t0 = time.monotonic()
    for k, ident in enumerate(idents):
        time.sleep(max(0.0, t0 + period * k - time.monotonic()))
        r = session_run(c, ident, "print('ok')", [("", "ok")])
        assert r.status == 200 and r.body["verdict"] == "accepted", r
        p = _pool(c, "python")
        seen.append((round(time.monotonic() - t0, 3), p["ready"], p["creating"], p["leased"]))
    return idents, seen, t0


def test_refill_keeps_up_with_a_steady_stream(make_poold, pool_node):
    """New sessions every 100 ms for 3 s (a contest start spread out): the
    hold keeps the first second's refill back, but once it is over the
    pool refills as fast as it is taken instead of one batch a second."""
    c = _warm_pool_of_6(make_poold, 60)
    idents, seen, _ = _paced_leases(c, "stream", 30)
    # from 1.5 s on (the hold's second, its refill, a margin) a lease never
    # finds the pool empty: each take is replaced within ~100 ms
    late = [s for s in seen if s[0] >= 1.5]
    assert len(late) >= 10, "the stream ran too slowly to tell: %r" % seen
    assert all(s[1] > 0 for s in late), "the pool ran dry during the stream (t, ready, creating, leased): %r" % seen
    for i in idents:
        c.delete("/v1/sessions/%s?pool=python" % i)
