#!/usr/bin/python3
"""Level-2 pre-warming benchmark (issue 12): a judged submission with one test
case through poold's POST /execute on the shipped config (a fresh user_id
each, so a fresh slot of the language's judged pool each), against the same
work bare on the host (the same binaries and flags, from the language files),
measured interleaved in one run:

- Python `a+b`: target <= 0.35x bare `python3 -B main.py`;
- C++ `a+b` with <bits/stdc++.h>: <= 0.4x bare `g++ -O2 -std=gnu++17` + run;
- Java `Scanner` `a+b`: <= 0.35x bare `javac` + `java` with java.conf's flags.

Then the memory of a warm slot per language (PSS of the slot's processes and
what /proc/meminfo counts as used: anon, shmem, slab, kernel stacks, page
tables), judged (plain) slots and stateful (interpreter) slots: `info` rows.

    /usr/bin/python3 bench/prewarm.py [--quick]

Its own sandboxd and poold through tests/system/wpdaemons.py (uid range
362000+, cgroup wp-prewarm-bench-<pid>). section(quick) returns the rows in
bench.py's build_table shape. Standard library only; needs root.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
sys.path.insert(0, os.path.join(REPO, "bench"))
import wpdaemons as wp  # noqa: E402
import bench as B  # noqa: E402  (its helpers; bench.py is not changed)

UID_BASE = 362000  # shipped capacity = auto: at most 1024 slots
MEM_UID_BASE = 364000
MEM_SLOTS = 4

SOURCES = {
    "python": ("main.py", "a, b = map(int, input().split())\nprint(a + b)\n"),
    "cpp": (
        "main.cpp",
        "#include <bits/stdc++.h>\nusing namespace std;\n"
        "int main() { long long a, b; cin >> a >> b; cout << a + b << endl; }\n",
    ),
    "java": (
        "Main.java",
        "import java.util.*;\npublic class Main {\n  public static void main(String[] args) {\n"
        "    Scanner in = new Scanner(System.in);\n    long a = in.nextLong(), b = in.nextLong();\n"
        "    System.out.println(a + b);\n  }\n}\n",
    ),
}
TARGETS = {"python": 0.35, "cpp": 0.4, "java": 0.35}
BREAKDOWN = {}  # lang: [(total ms, compile wall, compile cpu, the run's wall in sandboxd, test cpu)]
BARE_WHAT = {
    "python": "bare python3 main.py",
    "cpp": "bare g++ -O2 -std=gnu++17 + run",
    "java": "bare javac + java",
}


def lang_conf(lang):
    """{key: value} of config/languages/<lang>.conf's [language] and [limits]."""
    conf = wp.language_file(os.path.join(REPO, "config", "languages", "%s.conf" % lang))
    out = dict(conf.get("limits", {}))
    out.update(conf.get("language", {}))
    return out


def size_kb(text):
    m = re.match(r"(\d+)([kKmMgG]?)$", text)
    mult = {"": 1 / 1024, "k": 1, "m": 1024, "g": 1024 * 1024}[m.group(2).lower()]
    return int(int(m.group(1)) * mult)


def bare_cmds(lang):
    """(compile argv or None, run argv) as the language file has them."""
    c = lang_conf(lang)
    run = c["run"].replace("{memory_kb}", str(size_kb(c.get("memory", "512M"))))
    comp = shlex.split(c["compile"]) if "compile" in c else None
    return comp, shlex.split(run)


def bare_once(lang, stdin="1 2\n"):
    """Compile (if any) and run in a fresh temp dir; wall seconds."""
    fname, src = SOURCES[lang]
    comp, run = bare_cmds(lang)
    d = tempfile.mkdtemp(prefix="wp-prewarm-bare-")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": d, "LANG": "C.UTF-8"}
    try:
        with open(os.path.join(d, fname), "w") as f:
            f.write(src)
        t0 = time.monotonic()
        if comp:
            subprocess.run(comp, cwd=d, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p = subprocess.run(run, cwd=d, env=env, input=stdin.encode(), capture_output=True, check=True)
        dt = time.monotonic() - t0
        if p.stdout.decode().strip() != "3":
            raise B.BenchError("bare %s printed %r" % (lang, p.stdout))
        return dt
    finally:
        shutil.rmtree(d, ignore_errors=True)


def judged_once(c, lang):
    """POST /execute, one test case, a fresh user; wall seconds."""
    body = {"language": lang, "code": SOURCES[lang][1], "user_id": "bench-%s" % uuid.uuid4().hex,
            "question_id": "q1", "test_cases": [{"input": "1 2\n", "expected_output": "3\n"}]}
    t0 = time.monotonic()
    r = c.post("/execute", body, timeout=120)
    dt = time.monotonic() - t0
    if r.status != 200 or [t["verdict"] for t in r.body.get("test_results", [])] != ["accepted"]:
        raise B.BenchError("judged %s: %r" % (lang, r))
    # where the time went: the compile's and the test case's wall time in the slot
    comp = r.body.get("compile") or {}
    test = r.body["test_results"][0]
    meta = r.body.get("metadata") or {}
    BREAKDOWN.setdefault(lang, []).append((round(dt * 1000, 1), comp.get("wall_ms"), comp.get("time_ms"),
                                           meta.get("execution_time_ms"), test.get("time_ms")))
    return dt


# --------------------------------------------------------------------------
# the shipped config (wpdaemons.ShippedSandboxd / ShippedPoold), rewritten
# only where it listens, its state dir, cgroup name and uid range


def slots_cpu_ticks(sb):
    total = 0
    for p in sb.slot_processes():
        try:
            with open("/proc/%d/stat" % p["pid"]) as f:
                x = f.read().rsplit(")", 1)[1].split()
            total += int(x[11]) + int(x[12])
        except OSError:
            pass
    return total


def wait_idle(sb, timeout=60):
    """Until the slots' processes stop using CPU (pre-started helpers ready)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        cur = slots_cpu_ticks(sb)
        if cur == last:
            return
        last = cur
        time.sleep(0.7)


def bench_latency(reps, langs=None):
    langs = list(langs or SOURCES)
    sb = wp.ShippedSandboxd(wp.make_tmpdir("wp-prewarm-node-"), UID_BASE, "prewarm-bench")
    pd = wp.ShippedPoold(wp.make_tmpdir("wp-prewarm-poold-"), sb.url)
    raw = {lang: {"bare": [], "judged": []} for lang in langs}
    try:
        sb.start()
        pd.start(timeout=30)
        c = pd.client(timeout=120)
        if not wp.wait_for(lambda: c.get("/readyz").status == 200, 60):
            raise B.BenchError("poold not ready: %r" % (c.get("/readyz"),))
        wait_idle(sb)
        for lang in langs:  # one untimed of each: page cache, the C++ PCH build
            bare_once(lang)
            judged_once(c, lang)
        wait_idle(sb)
        for i in range(reps):
            B.progress("prewarm: round %d/%d" % (i + 1, reps))
            for lang in langs:
                # the order flips every round: drift hits both alike
                pair = [("bare", lambda: bare_once(lang)), ("judged", lambda: judged_once(c, lang))]
                for kind, f in pair if i % 2 == 0 else pair[::-1]:
                    raw[lang][kind].append(f())
                    # a judged submission's slot is destroyed and the pool
                    # refills (a Java slot's JVM warms up: ~1 s of CPU): wait
                    # for it, so that neither measurement runs beside it
                    wait_idle(sb, timeout=20)
    finally:
        pd.stop(timeout=30)
        pd.cleanup()
        sb.stop()
        sb.cleanup()
    return raw


def cgroup_memory_kb(sb):
    """memory.usage_in_bytes of sandboxd's group (every slot's, v1: user and
    kernel memory, the slots' tmpfs pages too), in kB."""
    for d in wp.cgroup_dirs_named(sb.cgroup_name, extra_pids=(sb.pid,)):
        f = os.path.join(d, "memory.usage_in_bytes")
        if "/memory" in d and os.path.exists(f):
            with open(f) as fh:
                return int(fh.read()) // 1024
    f = None
    for d in wp.cgroup_dirs_named(sb.cgroup_name, extra_pids=(sb.pid,)):
        if os.path.exists(os.path.join(d, "memory.current")):
            with open(os.path.join(d, "memory.current")) as fh:
                return int(fh.read()) // 1024
    return 0


def bench_slot_memory(n):
    """PSS and used-memory delta per warm slot, per language and kind."""
    sb = wp.Sandboxd(wp.make_tmpdir("wp-prewarm-mem-"), uid_base=MEM_UID_BASE, capacity=64,
                     cgroup_name="wp-prewarm-mem-%d" % os.getpid())
    out = {}
    try:
        sb.start()
        s = B.SB(sb.sock)
        for lang, interp in (("python", False), ("python", True), ("javascript", False), ("javascript", True),
                             ("c", False), ("cpp", False), ("java", False)):
            key = "%s %s" % (lang, "stateful" if interp else "judged")
            s.wait_quiet(total=0)
            B.settle_memory()
            m0 = B.meminfo()
            cg0 = cgroup_memory_kb(sb)
            ids = s.create(lang, n, interpreter=interp)
            s.wait_quiet()
            wait_idle(sb)
            B.settle_memory()
            m1 = B.meminfo()
            cg = cgroup_memory_kb(sb)
            pss = sum((B.smaps_rollup(p["pid"]) or {}).get("Pss", 0) for p in sb.slot_processes())
            nproc = len(sb.slot_processes())
            out[key] = {
                "pss_kb_per_slot": pss / n,
                "cgroup_kb_per_slot": (cg - cg0) / n,
                "used_kb_per_slot": sum(m1.get(k, 0) - m0.get(k, 0) for k in B.USED_KEYS) / n,
                "processes_per_slot": nproc / n,
            }
            B.progress("prewarm: memory %s: %r" % (key, out[key]))
            s.destroy(ids)
        s.wait_quiet(total=0)
    finally:
        sb.stop()
        sb.cleanup()
    return out


def section(quick, langs=None, memory=True, reps=None):
    """bench.py's section; langs (default: all three), memory (the memory
    rows) and reps (rounds) narrow it for a quicker loop."""
    langs = list(langs or SOURCES)
    reps = reps or (5 if quick else 15)
    load0 = os.getloadavg()
    raw = bench_latency(reps, langs)
    mem = bench_slot_memory(2 if quick else MEM_SLOTS) if memory else {}
    rows = []
    for lang in langs:
        b, j = raw[lang]["bare"], raw[lang]["judged"]
        bm, jm = B.pct(b, 50), B.pct(j, 50)
        ratio = jm / bm
        rows.append((
            "prewarm: %s a+b judged /execute (median; p95 %.0f ms vs %.0f ms)" % (lang, B.pct(j, 95) * 1000,
                                                                                    B.pct(b, 95) * 1000),
            "%s %.1f ms" % (BARE_WHAT[lang], bm * 1000),
            "%.1f ms" % (jm * 1000),
            "%.2fx" % ratio,
            "<= %.2fx" % TARGETS[lang],
            "PASS" if ratio <= TARGETS[lang] else "FAIL",
        ))
    for key, m in mem.items():
        per_gib = 1024 * 1024 / max(m["cgroup_kb_per_slot"], m["pss_kb_per_slot"], 1)
        rows.append((
            "prewarm: memory per warm %s slot (PSS; memory cgroup; meminfo used)" % key,
            "",
            "%.1f; %.1f; %.1f MiB" % (m["pss_kb_per_slot"] / 1024, m["cgroup_kb_per_slot"] / 1024,
                                     m["used_kb_per_slot"] / 1024),
            "%.0f slots/GiB" % per_gib,
            "",
            "info",
        ))
    raw_out = {lang: {k: [round(x * 1000, 1) for x in v] for k, v in raw[lang].items()} for lang in langs}
    return {"rows": rows, "raw": {"ms": raw_out, "memory": mem, "judged_breakdown_ms": BREAKDOWN, "loadavg_before": load0,
                                  "loadavg_after": os.getloadavg(), "reps": reps}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--python-only", action="store_true",
                    help="only the Python rows (no C++, Java or memory rows): the quick loop for Python latency")
    ap.add_argument("--reps", type=int, help="rounds (default 5 with --quick, else 15)")
    ap.add_argument("--out", help="write the raw results (JSON) here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/prewarm.py: needs root (sandboxd does)")
    if a.python_only:
        res = section(a.quick, langs=["python"], memory=False, reps=a.reps)
    else:
        res = section(a.quick, reps=a.reps)
    w = [max(len(str(r[i])) for r in res["rows"]) for i in range(6)]
    for r in res["rows"]:
        print("  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)))
    for lang, xs in res["raw"]["judged_breakdown_ms"].items():
        med = [B.pct([x[i] for x in xs if x[i] is not None] or [0], 50) for i in range(5)]
        print("judged %s, median ms: total %.0f; the run in sandboxd (execution_time_ms) %.0f, of which the compile "
              "%.0f wall (%.0f CPU), test case CPU %.0f; the rest (HTTP, poold's queue, slot take) %.0f"
              % (lang, med[0], med[3], med[1], med[2], med[4], med[0] - med[3]))
    print("load average before %r, after %r" % (res["raw"]["loadavg_before"], res["raw"]["loadavg_after"]))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if all(r[5] != "FAIL" for r in res["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
