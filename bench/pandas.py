#!/usr/bin/python3
"""The first `import pandas, numpy` of a brand-new Python session (issue 13).

    /usr/bin/python3 bench/pandas.py [--quick]

Starts its own sandboxd (slot uids 368000-368015, cgroup
`wp-bench-pandas-<pid>`) and poold through tests/system/wpdaemons.py, with
two stateful pools: `python-ds` (config/languages/python-ds.conf: numpy,
pandas and matplotlib imported before the slot is ready) and the plain
`python`. Each repetition opens a new session (a new identifier), sends
`import pandas, numpy` as its first execution (POST executions, Azure's
API), times it end to end on the client, and ends the session; then waits
for the pool's warm slots to come back. Interleaved with it, the baseline:
`/usr/bin/python3 -c 'import pandas, numpy'` run bare on the host, in the
same run. Target: p50 <= 50 ms end to end.

section(quick) returns {"rows": [(what, baseline, subject, ratio, target,
result)], "raw": {...}} like bench.py's build_table.
"""

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))

import wpdaemons  # noqa: E402

UID_BASE = 368000
TARGET_MS = 50.0
API = "2025-10-02-preview"
CODE = "import pandas, numpy"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def bare_import():
    t0 = time.monotonic()
    subprocess.run(["/usr/bin/python3", "-c", CODE], check=True)
    return (time.monotonic() - t0) * 1000.0


def pool_ready(c, pool, warm):
    r = c.get("/v1/pools/%s" % pool)
    if r.status != 200 or not isinstance(r.body, dict):
        return False
    ready = r.body.get("ready")
    return isinstance(ready, int) and ready >= warm


def first_import(c, pool, warm):
    """ms end to end, and the interpreter's own executionTimeInMilliseconds."""
    wpdaemons.wait_for(lambda: pool_ready(c, pool, warm), 30, 0.05)
    time.sleep(0.2)  # the refilled slot's start-up is not on this request's clock
    sid = "bench-pandas-%s" % uuid.uuid4()
    q = "identifier=%s&api-version=%s" % (urllib.parse.quote(sid), API)
    body = {"codeInputType": "Inline", "executionType": "Synchronous", "code": CODE, "timeoutInSeconds": 60}
    t0 = time.monotonic()
    r = c.post("/pools/%s/executions?%s" % (pool, q), body)
    ms = (time.monotonic() - t0) * 1000.0
    if r.status != 200 or r.body.get("status") != "Succeeded":
        raise RuntimeError("first import in %s: %r" % (pool, r))
    inner = r.body["result"]["executionTimeInMilliseconds"]
    c.delete("/pools/%s/session?%s" % (pool, q))
    return ms, inner


def slot_memory(sb, cgroup_name):
    """{language: [MiB of each ready interpreter slot's memory cgroup]}."""
    out = {}
    r = sb.client().get("/v1/slots")
    slots = r.body.get("slots", []) if r.status == 200 and isinstance(r.body, dict) else []
    dirs = [d for d in wpdaemons.cgroup_dirs_named(cgroup_name) if "/memory/" in d]
    for s in slots:
        for d in dirs:
            path = os.path.join(d, "slot-%s" % s.get("id", "?"), "memory.usage_in_bytes")
            try:
                with open(path) as f:
                    out.setdefault(s.get("language"), []).append(int(f.read()) / 1048576.0)
            except OSError:
                continue
    return out


def load_note():
    with open("/proc/loadavg") as f:
        return "load average %s on %d CPUs" % (" ".join(f.read().split()[:3]), os.cpu_count())


def section(quick: bool) -> dict:
    reps = 5 if quick else 20
    sb = wpdaemons.Sandboxd(wpdaemons.make_tmpdir("wp-bench-pandas-node-"), uid_base=UID_BASE, capacity=16,
                            cgroup_name="wp-bench-pandas-%d" % os.getpid())
    pools = {
        "python-ds": {"language": "python-ds", "stateful": "yes", "warm": 2, "max": 6, "idle_timeout": "5m"},
        "python": {"language": "python", "stateful": "yes", "warm": 2, "max": 6, "idle_timeout": "5m"},
    }
    pd = wpdaemons.Poold(wpdaemons.make_tmpdir("wp-bench-pandas-poold-"), nodes={"local": sb.url}, pools=pools)
    raw = {"load_before": load_note()}
    try:
        sb.start()
        pd.start(timeout=30)
        c = pd.client(timeout=120)
        if not wpdaemons.wait_for(lambda: c.get("/readyz").status == 200, 120, 0.1):
            raise RuntimeError("poold not ready: %r" % (c.get("/readyz"),))
        bare_import()  # warm the page cache for both
        wpdaemons.wait_for(lambda: pool_ready(c, "python-ds", 2) and pool_ready(c, "python", 2), 60, 0.1)
        time.sleep(1)
        raw["slot_memory_mib"] = slot_memory(sb, sb.cgroup_name)
        first_import(c, "python-ds", 2)
        bare, ds, ds_inner, plain = [], [], [], []
        for i in range(reps):
            order = [0, 1] if i % 2 == 0 else [1, 0]
            for which in order:
                if which == 0:
                    bare.append(bare_import())
                else:
                    ms, inner = first_import(c, "python-ds", 2)
                    ds.append(ms)
                    ds_inner.append(inner)
            log("pandas: %d/%d bare %.0f ms, python-ds %.1f ms" % (i + 1, reps, bare[-1], ds[-1]))
        for _ in range(max(3, reps // 4)):
            plain.append(first_import(c, "python", 2)[0])
    finally:
        pd.stop()
        pd.cleanup()
        sb.stop()
        problems = sb.cleanup(remove=False)
    raw.update({"bare_ms": bare, "python_ds_ms": ds, "python_ds_exec_ms": ds_inner, "plain_python_ms": plain,
                "cleanup_problems": problems, "load_after": load_note()})
    b50, d50, p50 = statistics.median(bare), statistics.median(ds), statistics.median(plain)
    rows = [
        ("first `import pandas, numpy`, new python-ds session, end to end (p50)", "%.0f ms bare" % b50,
         "%.1f ms" % d50, "%.2fx of bare" % (d50 / b50), "<= %.0f ms" % TARGET_MS,
         "PASS" if d50 <= TARGET_MS else "FAIL"),
        ("  same, p90 / interpreter's own time (p50)", "%.0f ms bare p90" % pct(bare, 90),
         "%.1f ms p90 / %.0f ms" % (pct(ds, 90), statistics.median(ds_inner)), "", "", "info"),
        ("first `import pandas, numpy`, new plain python session (p50)", "%.0f ms bare" % b50, "%.0f ms" % p50,
         "%.2fx of bare" % (p50 / b50), "", "info"),
    ]
    mem = raw.get("slot_memory_mib", {})
    if mem.get("python-ds") and mem.get("python"):
        rows.append(("memory cgroup of a warm interpreter slot (python → python-ds)",
                     "%.1f MiB" % statistics.median(mem["python"]), "%.1f MiB" % statistics.median(mem["python-ds"]),
                     "+%.1f MiB" % (statistics.median(mem["python-ds"]) - statistics.median(mem["python"])), "",
                     "info"))
    return {"rows": rows, "raw": raw}


def main():
    quick = "--quick" in sys.argv[1:]
    if os.geteuid() != 0:
        sys.exit("bench/pandas.py: run as root (sandboxd makes namespaces, cgroups and mounts)")
    out = section(quick)
    head = ("what", "baseline", "subject", "ratio / overhead", "target", "result")
    rows = [head] + [tuple(str(x) for x in r) for r in out["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    print("(%s; %s after)" % (out["raw"]["load_before"], out["raw"]["load_after"]))
    print(json.dumps({k: v for k, v in out["raw"].items() if k.endswith("_ms")}))
    if out["raw"]["cleanup_problems"]:
        print("CLEANUP PROBLEMS: %r" % out["raw"]["cleanup_problems"])
        sys.exit(1)


if __name__ == "__main__":
    main()
