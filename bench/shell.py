#!/usr/bin/python3
"""Shell sessions benchmark: `echo hi` on a leased shell session through
poold (POST /pools/shell/executions {"shellCommand": "echo hi"}, the
request of LangChain's SessionsBashTool) against the same command run on a
shell slot straight through sandboxd (POST /v1/slots/{id}/run with the
framed stdin poold sends), interleaved, at 1 and 50 sessions, back to back
and at half load (bench.py's half_load_period: half the throughput the
back-to-back run achieved).

    /usr/bin/python3 bench/shell.py [--quick]

Starts its own sandboxd (slot uids 395000–395127, cgroup
warmpool-bench-shell-<pid>) and poold through tests/system/wpdaemons.py.
section(quick) returns the rows for bench.py's table.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (bench/bench.py: loadgen, bench_exec, half_load_period, …)

wp = B.wp
UID_BASE = 395000
CAPACITY = 128
CONC = 50
POOL = "shell"
API = "2025-02-02-preview"
CMD = "echo hi"
TARGET_P50_MS = 3.0


def framed(cmd, stdin=""):
    """The stdin poold sends a shell run (config/languages/shell.conf)."""
    return "%d\n%s%s" % (len(cmd.encode()), cmd, stdin)


def shell_spec(idents, slots):
    d_body = B.enc({"compile": False, "tests": [{"stdin": framed(CMD)}], "max_output": 4096})
    p_body = B.enc({"shellCommand": CMD})
    return {
        "d_path": lambda i: "/v1/slots/%s/run" % slots[i], "d_body": d_body,
        "p_path": lambda i: "/pools/%s/executions?identifier=%s&api-version=%s" % (POOL, idents[i], API),
        "p_body": p_body,
        "d_expect": ['"verdict":"accepted"', '"stdout":"hi\\n"'],
        "p_expect": ['"status":"0"', '"stdout":"hi\\n"'],
        "d_report": '"wall_ms":', "p_report": '"executionTimeInMilliseconds":',
    }


def setup(sb_client, pd_client, n):
    idents = ["bench-shell-%d-%d" % (os.getpid(), i) for i in range(n)]
    for i in idents:
        r = pd_client.post("/pools/%s/executions?identifier=%s&api-version=%s" % (POOL, i, API),
                           {"shellCommand": "true"}, timeout=120)
        if r.status != 200 or r.body.get("status") != "0":
            raise B.BenchError("leasing shell session %s: %r" % (i, r))
    r = sb_client.post("/v1/slots", {"language": "shell", "count": n, "wait": True}, timeout=120)
    if r.status != 201:
        raise B.BenchError("creating %d shell slots: %r" % (n, r))
    return idents, [s["id"] for s in r.body["slots"]]


def run(quick):
    reps1, reps50, paced = (30, 5, 5) if quick else (300, 40, 20)
    B.UID_BASE, B.CAPACITY = UID_BASE, CAPACITY  # bench_exec samples the slots of this uid range
    load = B.cpu_busy()
    sbd = wp.Sandboxd(wp.make_tmpdir("wpbench-shell-sb-"), uid_base=UID_BASE, capacity=CAPACITY,
                      cgroup_name="warmpool-bench-shell-%d" % os.getpid(), log_level="warn",
                      # the direct path has no queue of its own: sandboxd's run admission
                      # (run_slots = CPUs, run_memory = 3/4 of RAM for 512M each) would
                      # answer it 503 at 50 sessions; both paths run unqueued here
                      extra="run_slots = %d\nrun_memory = 64G" % (2 * CONC))
    pdd = None
    R = {"cpu_busy_before_start": load, "command": CMD}
    problems = []
    try:
        sbd.start()
        pdd = wp.Poold(wp.make_tmpdir("wpbench-shell-pd-"), nodes={"local": sbd.url},
                       pools={POOL: {"language": "shell", "warm": 2, "max": CONC + 4, "idle_timeout": "10m"}},
                       log_level="warn")
        pdd.start()
        if not wp.wait_for(lambda: pdd.client().get("/readyz").status == 200, 60, 0.1):
            raise B.BenchError("poold not ready: %r" % (pdd.client().get("/readyz"),))
        idents, slots = setup(sbd.client(), pdd.client(), CONC)
        pids = {"poold": pdd.pid, "sandboxd": sbd.pid}
        spec = shell_spec(idents, slots)
        B.progress("shell: echo hi, 1 session: %d reps" % reps1)
        R["exec_1"] = B.bench_exec(sbd.sock, pdd.url, spec, 1, reps1, pids)
        B.progress("shell: echo hi, %d sessions back to back: %d reps each" % (CONC, reps50))
        R["exec_%d" % CONC] = B.bench_exec(sbd.sock, pdd.url, spec, CONC, reps50, pids)
        period = B.half_load_period(R["exec_%d" % CONC])
        B.progress("shell: echo hi, %d sessions at half load (one pair every %g ms each): %d reps each" %
                   (CONC, period * 1000, paced))
        R["exec_%d_paced" % CONC] = B.bench_exec(sbd.sock, pdd.url, spec, CONC, paced, pids, period_s=period)
    finally:
        if pdd:
            pdd.stop()
            pdd.cleanup()
        sbd.stop()
        problems = sbd.cleanup(remove=True)
    R["cleanup_problems"] = problems
    return R


def rows(R):
    out = []

    def row(what, x, target=None):
        d, p = x["direct_ms"], x["poold_ms"]
        base = "%.2f / %.2f ms" % (d["p50"], d["p99"])
        subj = "%.2f / %.2f ms" % (p["p50"], p["p99"])
        ratio = "x%.2f p50, +%.2f ms" % (x["ratio_p50"], x["overhead_p50_ms"])
        if target is None:
            out.append((what, base, subj, ratio, "info", "info"))
        else:
            out.append((what, base, subj, ratio, "p50 <= %g ms" % target, "PASS" if p["p50"] <= target else "FAIL"))

    row("shell echo hi, 1 session (p50/p99; baseline: sandboxd run direct)", R["exec_1"])
    row("shell echo hi, %d sessions back to back" % CONC, R["exec_%d" % CONC])
    row("shell echo hi, %d sessions, half load (1 pair/%g ms each)" %
        (CONC, R["exec_%d_paced" % CONC]["period_s"] * 1000), R["exec_%d_paced" % CONC], TARGET_P50_MS)
    return out


def section(quick):
    R = run(quick)
    return {"rows": rows(R), "raw": R}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not for figures")
    a = ap.parse_args()
    s = section(a.quick)
    w = [max(len(str(r[i])) for r in s["rows"]) for i in range(6)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(("what", "baseline", "subject", "ratio", "target", "result"))))
    for r in s["rows"]:
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    print("machine CPU busy before start: %s" % (s["raw"]["cpu_busy_before_start"],))
    print(json.dumps({k: v for k, v in s["raw"].items() if k.startswith("exec")}, indent=1, default=str)[:200000],
          file=open(os.path.join(HERE, "shell-results.json"), "w"))
    return 1 if s["raw"]["cleanup_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
