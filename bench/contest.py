"""bench/contest.py — the contest on the shipped config (issue 11).

    /usr/bin/python3 bench/contest.py [--quick] [--no-create | --create-only] [--json FILE]

Root only (sandboxd makes namespaces, cgroups and mounts). Starts its own
daemons through tests/system/wpdaemons.py: sandboxd from config/sandboxd.conf
and poold from config/poold.conf as shipped (only the listen address, socket,
state dir, cgroup name and uid_base rewritten: slot uids 412000-414047,
cgroup wp-bench-contest-<pid>), then, for the creation rates, a sandboxd and a
poold of their own (uids 416000-418047).

What it measures, every figure in the same run:

1. The work floor: after the host's warm-up of the contest runbook
   (docs/operations.md: one C++ submission, so that the precompiled headers
   are built, then a quiet host), each distinct program of the burst
   (Python, C++, Java, JavaScript; right and wrong answer) submitted alone
   through POST /execute, one after another (5 times each, the median
   kept). floor = sum over all submissions of the burst of their program's
   solo time / the node's CPUs.
   Then (an info row) the same with each solo run on a settled node (pools
   refilled, helpers warmed up): the floor without any slot making.
2. The seed's contest: 200 students x 2 questions at once, half of the second
   answers wrong (the mix and programs of tests/system/test_contest.py): wall
   time, ratio to the floor (target <= 1.25), p50/p95 latency, wrong verdicts
   and refusals (target 0). Info rows split the ratio: the node's CPU over
   its CPUs against the floor (the burst's work), the wall time against that
   (how well the burst packs it), and per language the runs' own CPU in the
   burst (compiles and test cases, sandboxd's time_ms) against the solo time
   the floor counts (a JVM, whose JIT threads run beside its main thread,
   uses more CPU than its wall time). Then (an info row) the same burst
   without its Java submissions against their floor: alone, a Java
   submission finds its slot's compile server warmed up on idle CPU; in a
   burst, with no idle CPU, it compiles cold, and this row shows the rest
   without that.
3. Outside --quick: the same with 1 000 students x 2 (wall, ratio, refusals),
   and the 200 x 2 burst's floor measured again on a copy of the language
   files without level-2 pre-warming (no pch, prestart): both floors and
   their ratio (issue 12: the floor drops by what pre-warming saves), and
   the burst against that floor (info: pre-warming done on idle CPU makes
   a solo run faster than it makes a burst, which has none).
4. Slot creation through poold: a pool of warm 0 is PATCHed to warm 1 000;
   the time until poold reports 1 000 ready (C: target <= 5 s; Python, each
   slot with its pre-started fork-server ready: target <= 20 s). The CPU time
   the creation used (sandboxd, poold and the slots' cgroups, before any
   slot is destroyed) is printed per slot, by slot group, and as a floor
   (that CPU over the host's CPUs) beside the wall time: it does not depend
   on what else the host runs, the wall time does.

section(quick) returns {"rows": [(what, baseline, subject, ratio, target,
result)], "raw": {...}} like bench.py's build_table."""

import json
import os
import re
import resource
import statistics
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "system"))

import wpdaemons as wp  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "bench"))
from bench import cpu_busy, pct  # noqa: E402  (bench.py's helpers)
from conftest import DOUBLE, WRONG_DOUBLE, burst  # noqa: E402 — the programs of tests/system/test_contest.py

CONTEST_UID_BASE = 412000  # capacity = auto is at most 1 024 slots (+ as many checker uids)
RATE_UID_BASE = 416000
PLAIN_UID_BASE = 420000  # the floor without level-2 pre-warming (outside --quick)
MIX = {"python": 80, "javascript": 60, "cpp": 40, "java": 20}  # per 200 students
FLOOR_TARGET = 1.25
SOLO_REPS = 5  # solo runs per distinct program: the median (Java's varies with its server's warm-up)
RATE_TARGET_S = {"c": 5.0, "python": 20.0}
SKIP_CREATE = False  # --no-create: the contest only
ONLY_CREATE = False  # --create-only: the creation rates only


def log(msg):
    print("[contest] " + msg, file=sys.stderr, flush=True)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class NodeCpu:
    """CPU seconds the node used: poold and sandboxd themselves, and every
    slot's processes through the cpuacct (v1) or cpu.stat (v2) usage of
    sandboxd's cgroup (hierarchical: slots destroyed since still count,
    slots alive count so far)."""

    def __init__(self, sb, pd):
        self.pids = (sb.pid, pd.pid)
        self.files = []
        dirs = wp.cgroup_dirs_named(sb.cgroup_name, extra_pids=(sb.pid,))
        v1 = [d for d in dirs if os.path.exists(os.path.join(d, "cpuacct.usage"))]
        v2 = [d for d in dirs if "usage_usec" in _read(os.path.join(d, "cpu.stat"))]
        if v1:
            self.files.append(("v1", os.path.join(v1[0], "cpuacct.usage")))
        elif v2:
            self.files.append(("v2", os.path.join(v2[0], "cpu.stat")))

    def __call__(self):
        t = 0.0
        for pid in self.pids:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    v = f.read().rsplit(")", 1)[1].split()
                t += (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
        for kind, path in self.files:
            with open(path) as f:
                if kind == "v1":
                    t += int(f.read()) / 1e9
                else:
                    t += int(dict(l.split() for l in f)["usage_usec"]) / 1e6
        return t


def host_cpu():
    """(busy, total) jiffies of all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def submission(lang, user, x, correct=True, question="q1"):
    code = DOUBLE[lang] if correct else WRONG_DOUBLE[lang]
    return {"language": lang, "code": code, "user_id": user, "question_id": question,
            "test_cases": [{"input": "%d\n" % x, "expected_output": "%d\n" % (2 * x)},
                           {"input": "%d\n" % -x, "expected_output": "%d\n" % (-2 * x)}]}


def verdict_wrong(r, correct):
    if r.status != 200:
        return "HTTP %d" % r.status
    got = [t["verdict"] for t in r.body["test_results"]]
    want = ["accepted"] * 2 if correct else ["wrong_answer"] * 2
    return "" if got == want else "verdicts %r (want %r)" % (got, want)


def contest_jobs(students):
    """[(key, body, correct)]: `students` x 2 questions in MIX's proportions,
    half of the second answers wrong."""
    run = uuid.uuid4().hex[:6]
    jobs, i = [], 0
    for lang, per200 in MIX.items():
        for k in range(per200 * students // 200):
            user = "student-%s-%s-%04d" % (run, lang, k)
            jobs.append(((user, 1), submission(lang, user, 1000 + i, True, "q1"), True))
            wrong = k % 2 == 1
            jobs.append(((user, 2), submission(lang, user, 5000 + i, not wrong, "q2"), not wrong))
            i += 1
    return jobs


def settle(c, node_cpu, timeout=30):
    """Until every pool is refilled (nothing creating, `warm` ready) and
    the node has stopped using CPU (pre-started helpers warmed up)."""
    def full():
        return all(p["creating"] == 0 and p["ready"] >= p["warm"] for p in c.get("/v1/pools").body["pools"])

    wp.wait_for(full, timeout, 0.05)
    last, deadline = node_cpu(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = node_cpu()
        if now - last < 0.006:
            return
        last = now


def solo_times(c, reps=None, node_cpu=lambda: 0.0, settled=False):
    """{(lang, correct): median seconds} of each distinct program alone, and
    the daemons' CPU seconds for all of them. settled: each submission waits
    until the pools are refilled and the node is idle (its time is then the
    program's alone, no slot creation or warm-up beside or before it)."""
    reps = reps or SOLO_REPS
    out = {}
    # the pools' first warm-up is not the programs' work
    wp.wait_for(lambda: all(p["creating"] == 0 and p["ready"] >= p["warm"] for p in c.get("/v1/pools").body["pools"]),
                60, 0.2)
    cpu0 = node_cpu()
    for lang in MIX:
        for correct in (True, False):
            ts = []
            for k in range(reps):
                if settled:
                    settle(c, node_cpu)
                t0 = time.monotonic()
                r = c.post("/execute", submission(lang, "solo-%s" % uuid.uuid4().hex[:6], 7 + k, correct),
                           timeout=120)
                ts.append(time.monotonic() - t0)
                why = verdict_wrong(r, correct)
                if why:
                    raise RuntimeError("solo %s (%s): %s" % (lang, "right" if correct else "wrong", why))
            out[(lang, correct)] = statistics.median(ts)
    wp.wait_for(lambda: all(p["creating"] == 0 for p in c.get("/v1/pools").body["pools"]), 30, 0.2)
    return out, node_cpu() - cpu0


def host_warm_up(c, node_cpu, timeout=90):
    """What docs/operations.md's contest runbook has an operator do before
    the start: one C++ submission, whose compile has sandboxd build the
    precompiled headers (~3.5 s of CPU at nice 10, once per sandboxd start),
    then a quiet host. Otherwise that build runs beside the first solo runs
    and the floor counts it."""
    log("host warm-up: one C++ submission (the precompiled headers are built once per sandboxd start)")
    r = c.post("/execute", submission("cpp", "warm-up", 1), timeout=120)
    why = verdict_wrong(r, True)
    if why:
        raise RuntimeError("warm-up C++ submission: %s" % why)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cpu_busy()["busy"] >= 0.1:
        pass
    settle(c, node_cpu)


def run_contest(c, students, solo, ncpu, limit, node_cpu=lambda: 0.0, solo_cpu_per_run=None, without=()):
    jobs = [j for j in contest_jobs(students) if j[1]["language"] not in without]
    lang_of = {k: b["language"] for k, b, _ in jobs}
    correct = {k: ok for k, _, ok in jobs}
    floor = sum(solo[(b["language"], ok)] for _, b, ok in jobs) / ncpu
    log("%d students x 2%s: %d submissions at once (floor %.1f s)" % (
        students, " without %s" % "/".join(without) if without else "", len(jobs), floor))
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, (b0, t0) = node_cpu(), host_cpu()
    results, errors, wall = burst(c, jobs, limit)
    # the pools refill after the burst: their CPU belongs to it
    wp.wait_for(lambda: all(p["creating"] == 0 for p in c.get("/v1/pools").body["pools"]), 30, 0.2)
    cpu1, (b1, t1) = node_cpu(), host_cpu()
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    client = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    lat = [s for _, s in results.values()]
    refused = sum(1 for r, _ in results.values() if r.status != 200) + len(errors) + (len(jobs) - len(results) -
                                                                                     len(errors))
    wrong = sum(1 for k, (r, _) in results.items() if r.status == 200 and verdict_wrong(r, correct[k]))
    slowest = {}
    for k, (_, s) in results.items():
        slowest[lang_of[k]] = max(slowest.get(lang_of[k], 0), round(s, 1))
    # each language's runs' own CPU (compile and test cases, as sandboxd
    # reports them) against its submissions' share of the floor
    own = {}
    for k, (r, _) in results.items():
        if r.status != 200:
            continue
        b = r.body
        o = own.setdefault(lang_of[k], {"n": 0, "cpu_s": 0.0, "solo_s": 0.0})
        o["n"] += 1
        o["cpu_s"] += ((b.get("compile") or {}).get("time_ms", 0) +
                       sum(t.get("time_ms", 0) for t in b.get("test_results", []))) / 1000.0
        o["solo_s"] += solo[(lang_of[k], correct[k])]
    return {"students": students, "submissions": len(jobs), "wall_s": wall, "floor_s": floor,
            "ratio": wall / floor, 
            "p50_s": pct(lat, 50) if lat else float("nan"), "p95_s": pct(lat, 95) if lat else float("nan"),
            "max_s": max(lat or [0]),
            "refused": refused, "wrong": wrong, "errors": errors[:5], "slowest_by_language": slowest,
            "daemon_cpu_s": cpu1 - cpu0, "host_busy_pct": 100.0 * (b1 - b0) / max(1, t1 - t0),
            "client_cpu_s": client, "runs_own_cpu_by_language": own,
            "others_cpu_s": max(0.0, (b1 - b0) / os.sysconf("SC_CLK_TCK") - (cpu1 - cpu0) - client),
            "solo_daemon_cpu_s": (solo_cpu_per_run or 0) * len(jobs)}


def slot_group_cpu(node_cpu):
    """{group: CPU seconds} summed over the slots alive, by the slot's
    cgroup ("init": its init and set-up, "kernel": a pre-started helper
    such as the Python fork-server, "run0"/"run1": runs and the child
    forked ahead) from cpuacct (v1) or cpu.stat (v2)."""
    out = {}
    for kind, path in node_cpu.files:
        root = os.path.dirname(path)
        for dp, _, fn in os.walk(root):
            name = os.path.basename(dp)
            if dp == root or name.startswith("slot-"):
                continue
            if kind == "v1" and "cpuacct.usage" in fn:
                v = int(_read(os.path.join(dp, "cpuacct.usage")) or 0) / 1e9
            elif kind == "v2" and "cpu.stat" in fn:
                v = int(dict(l.split() for l in _read(os.path.join(dp, "cpu.stat")).splitlines())
                        .get("usage_usec", 0)) / 1e6
            else:
                continue
            out[name] = out.get(name, 0.0) + v
    return out


def creation_rate(lang, n, timeout=180):
    """A fresh sandboxd + poold; PATCH a pool from warm 0 to n; seconds until
    poold reports n ready. The CPU the creation took (sandboxd, poold and
    every slot's processes through sandboxd's cgroup, before any slot is
    destroyed) gives the CPU floor: n slots' CPU over the host's CPUs. A
    wall time near that floor is CPU-bound; far above it, the time went to
    waits (set-up latency, batching)."""
    sb = wp.Sandboxd(wp.make_tmpdir("wp-rate-sb-"), uid_base=RATE_UID_BASE, capacity=1024,
                     cgroup_name="wp-bench-rate-%d" % os.getpid(),
                     slot={"memory": "256M", "data_size": "16M", "tmp_size": "16M"})
    pd = wp.Poold(wp.make_tmpdir("wp-rate-pd-"), nodes={"local": sb.url},
                  pools={"p": {"language": lang, "warm": 0, "max": n}})
    cpu0 = children_cpu()
    problems = []
    made_cpu, groups, host = float("nan"), {}, 0.0
    try:
        sb.start()
        pd.start(timeout=30)
        c = pd.client()
        node_cpu = NodeCpu(sb, pd)
        made0 = node_cpu()
        b0, t0j = host_cpu()
        t0 = time.monotonic()
        r = c.patch("/v1/pools/p", {"warm": n})
        if r.status != 200:
            raise RuntimeError("PATCH warm: %r" % (r,))
        ready, half = 0, None
        while time.monotonic() - t0 < timeout:
            ready = c.get("/v1/pools/p").body["ready"]
            if half is None and ready >= n // 2:
                half = time.monotonic() - t0
            if ready >= n:
                break
            time.sleep(0.02)
        took = time.monotonic() - t0
        b1, t1j = host_cpu()
        made_cpu = node_cpu() - made0
        groups = slot_group_cpu(node_cpu)
        host = 100.0 * (b1 - b0) / max(1, t1j - t0j)
        lost = len(re.findall(r"pre-started helper lost", sb.log_text(limit=1 << 30)))
    finally:
        pd.stop()
        pd.cleanup()
        sb.stop()
        problems = sb.cleanup()
    cpu = children_cpu() - cpu0
    ncpu = os.cpu_count() or 1
    return {"language": lang, "slots": n, "ready": ready, "seconds": took, "half_s": half, "per_s": ready / took,
            "create_cpu_ms_per_slot": 1000.0 * made_cpu / n,
            "create_cpu_ms_per_slot_by_group": {k: round(1000.0 * v / n, 2) for k, v in sorted(groups.items())},
            "cpu_floor_s": made_cpu / ncpu, "host_busy_pct": host,
            "cpu_ms_per_slot": 1000.0 * cpu / n, "helpers_lost": lost, "cleanup_problems": problems}


def plain_languages():
    """A copy of config/languages without level-2 pre-warming: the keys
    pch, prestart and prestart_for (and their continuation lines) left out."""
    src = os.path.join(REPO, "config", "languages")
    dst = wp.make_tmpdir("wp-bench-plain-langs-")
    for name in os.listdir(src):
        keep, skipping = [], False
        with open(os.path.join(src, name)) as f:
            for line in f:
                if skipping and line[:1] in (" ", "\t") and line.strip():
                    continue
                skipping = re.match(r"(pch|prestart|prestart_for)\s*=", line) is not None
                if not skipping:
                    keep.append(line)
        with open(os.path.join(dst, name), "w") as f:
            f.writelines(keep)
    return dst


def plain_floor(ncpu, students=200):
    """The burst's work floor on the shipped config without level-2
    pre-warming, from solo runs on a settled node (seconds)."""
    langs = plain_languages()
    sb, pd = wp.start_shipped(PLAIN_UID_BASE, "bench-contest-plain", languages=langs)
    try:
        solo, _ = solo_times(pd.client(timeout=120), node_cpu=NodeCpu(sb, pd), settled=True)
    finally:
        wp.stop_both(sb, pd)
    return sum(solo[(b["language"], ok)] for _, b, ok in contest_jobs(students)) / ncpu, solo


def contest_rows(quick, ncpu, raw, rows):
    sb = wp.ShippedSandboxd(wp.make_tmpdir("wp-bench-contest-sb-"), CONTEST_UID_BASE, "bench-contest")
    pd = wp.ShippedPoold(wp.make_tmpdir("wp-bench-contest-pd-"), sb.url)
    try:
        sb.start()
        pd.start(timeout=30)
        c = pd.client(timeout=900)
        if not wp.wait_for(lambda: c.get("/readyz").status == 200, 120):
            raise RuntimeError("poold not ready: %r" % (c.get("/readyz"),))
        node = c.get("/v1/nodes").body if c.get("/v1/nodes").status == 200 else {}
        raw["node"] = node
        node_cpu = NodeCpu(sb, pd)
        raw["node_cpu_sources"] = node_cpu.files
        host_warm_up(c, node_cpu)
        log("solo runs (the floor)")
        solo, solo_cpu = solo_times(c, node_cpu=node_cpu)
        solo_cpu_per_run = solo_cpu / (len(solo) * SOLO_REPS)
        raw["solo_daemon_cpu_s_per_submission"] = solo_cpu_per_run
        raw["solo_s"] = {"%s/%s" % (lang, "right" if ok else "wrong"): s for (lang, ok), s in solo.items()}
        sizes = [200] if quick else [200, 1000]
        for students in sizes:
            r = run_contest(c, students, solo, ncpu, 900 if students <= 200 else 3600, node_cpu, solo_cpu_per_run)
            raw["contest_%d" % students] = r
            name = "contest %d students x 2 (shipped config)" % students
            ok = r["ratio"] <= FLOOR_TARGET
            rows.append(("%s: wall vs work floor" % name, "%.1f s" % r["floor_s"], "%.1f s" % r["wall_s"],
                         "%.2fx" % r["ratio"], "<= %.2fx" % FLOOR_TARGET, "PASS" if ok else "FAIL"))
            rows.append(("  latency p50 / p95 / max", "", "%.1f / %.1f / %.1f s" % (r["p50_s"], r["p95_s"],
                                                                                  r["max_s"]), "", "-", "info"))
            rows.append(("  node CPU: each alone x N vs the burst", "%.1f s" % r["solo_daemon_cpu_s"],
                         "%.1f s" % r["daemon_cpu_s"], "%.2fx" % (r["daemon_cpu_s"] / max(0.1, r["solo_daemon_cpu_s"])),
                         "-", "info"))
            rows.append(("  host CPU during the burst: busy; this client; other work", "",
                         "%.0f%%; %.1f s; %.1f s" % (r["host_busy_pct"], r["client_cpu_s"], r["others_cpu_s"]),
                         "%.2fx" % ((r["daemon_cpu_s"] / ncpu) / r["floor_s"]), "-",
                         "info (ratio: node CPU / CPUs vs floor)"))
            rows.append(("  packing: node CPU / CPUs vs the wall time", "%.1f s" % (r["daemon_cpu_s"] / ncpu),
                         "%.1f s" % r["wall_s"], "%.2fx" % (r["wall_s"] * ncpu / max(0.1, r["daemon_cpu_s"])), "-",
                         "info"))
            for lang, o in sorted(r["runs_own_cpu_by_language"].items()):
                rows.append(("  %s x %d: solo time vs runs' own CPU in the burst, each" % (lang, o["n"]),
                             "%.0f ms" % (1000 * o["solo_s"] / o["n"]), "%.0f ms" % (1000 * o["cpu_s"] / o["n"]),
                             "%.2fx" % (o["cpu_s"] / max(1e-6, o["solo_s"])), "-",
                             "info (compile + tests, sandboxd's time_ms)"))
            rows.append(("  refused / wrong verdicts of %d" % r["submissions"], "", "%d / %d" % (r["refused"],
                                                                                              r["wrong"]),
                         "", "0 / 0", "PASS" if r["refused"] == 0 and r["wrong"] == 0 else "FAIL"))
            log("%s: %.1f s, floor %.1f s, %.2fx, p50 %.1f p95 %.1f, refused %d, wrong %d; node CPU %.1f s "
                "(alone: %.1f s), host %.0f%% busy, other work %.1f CPU-s" % (
                    name, r["wall_s"], r["floor_s"], r["ratio"], r["p50_s"], r["p95_s"], r["refused"], r["wrong"],
                    r["daemon_cpu_s"], r["solo_daemon_cpu_s"], r["host_busy_pct"], r["others_cpu_s"]))
        # the same burst without its Java submissions: in a burst each
        # compiles cold where alone it finds a warm compile server, which
        # no scheduling can give a burst; what is left is the rest's
        settle(c, node_cpu)
        r = run_contest(c, 200, solo, ncpu, 900, node_cpu, solo_cpu_per_run, without=("java",))
        raw["contest_200_without_java"] = r
        rows.append(("  the same burst without its %d Java submissions: wall vs their floor" % (
            MIX["java"] * 2), "%.1f s" % r["floor_s"], "%.1f s" % r["wall_s"], "%.2fx" % r["ratio"], "-",
                     "info" if r["refused"] == 0 and r["wrong"] == 0 else
                     "FAIL: %d refused, %d wrong" % (r["refused"], r["wrong"])))
        # the floor again, each program on a settled node: what it costs
        # alone when no slot is made or warmed up beside it
        log("solo runs on a settled node (pools refilled, helpers warm)")
        strict, _ = solo_times(c, node_cpu=node_cpu, settled=True)
        raw["settled_solo_s"] = {"%s/%s" % (lang, "right" if ok else "wrong"): t for (lang, ok), t in strict.items()}
        for students in sizes:
            r = raw["contest_%d" % students]
            floor = sum(strict[(b["language"], ok)] for _, b, ok in contest_jobs(students)) / ncpu
            r["settled_floor_s"] = floor
            rows.append(("  contest %d x 2 vs the floor of solo runs on a settled node" % students, "%.1f s" % floor,
                         "%.1f s" % r["wall_s"], "%.2fx" % (r["wall_s"] / floor), "-", "info"))
    finally:
        pd.stop()
        pd.cleanup()
        sb.stop()
        raw["contest_cleanup_problems"] = sb.cleanup()
    if not quick and "contest_200" in raw:
        log("solo runs without level-2 pre-warming (the floor it saves)")
        floor, solo = plain_floor(ncpu)
        raw["plain_floor_s"] = floor
        raw["plain_solo_s"] = {"%s/%s" % (lang, "right" if ok else "wrong"): t for (lang, ok), t in solo.items()}
        with_ = raw["contest_200"]["settled_floor_s"]
        rows.append(("  floor of 200 x 2 on a settled node: without level-2 pre-warming vs with", "%.1f s" % floor,
                     "%.1f s" % with_, "%.2fx" % (with_ / floor), "-", "info"))
        # pre-warming lowers the solo runs far more than a burst, which has
        # no idle CPU to pre-warm with: the burst against the floor it had
        # before level-2 pre-warming existed
        wall = raw["contest_200"]["wall_s"]
        rows.append(("  contest 200 x 2 vs that floor without level-2 pre-warming", "%.1f s" % floor,
                     "%.1f s" % wall, "%.2fx" % (wall / floor), "-", "info"))


def section(quick):
    ncpu = os.cpu_count() or 1
    share = cpu_busy()
    busy, steal = 100.0 * share["busy"], 100.0 * share["steal"]
    log("host: %d CPUs, %.0f%% busy, %.0f%% steal before the start; load %s" % (
        ncpu, busy, steal, open("/proc/loadavg").read().split()[:3]))
    raw = {"cpus": ncpu, "busy_before_pct": busy, "steal_before_pct": steal}
    rows = []
    if not ONLY_CREATE:
        contest_rows(quick, ncpu, raw, rows)
    for lang in ("c", "python") if not SKIP_CREATE else ():
        log("slot creation through poold: %s, 1 000 warm" % lang)
        r = creation_rate(lang, 1000)
        raw["create_%s" % lang] = r
        what = "1 000 %s slots warm through poold%s" % (
            "C" if lang == "c" else "Python", "" if lang == "c" else " (fork-server ready)")
        ok = r["ready"] >= 1000 and r["seconds"] <= RATE_TARGET_S[lang]
        rows.append((what, "", "%.1f s (%.0f/s)" % (r["seconds"], r["per_s"]),
                     "%.1f ms CPU/slot" % r["create_cpu_ms_per_slot"], "<= %.0f s" % RATE_TARGET_S[lang],
                     "PASS" if ok else "FAIL"))
        rows.append(("  its CPU floor (creation CPU / CPUs) vs wall", "%.1f s" % r["cpu_floor_s"],
                     "%.1f s" % r["seconds"], "%.2fx" % (r["seconds"] / max(0.01, r["cpu_floor_s"])), "-",
                     "info (host %.0f%% busy)" % r["host_busy_pct"]))
        log("%s: %d ready in %.2f s (half in %.2f s), %.1f ms CPU per slot to create (by group: %s; made and "
            "destroyed, daemons' rusage: %.1f ms), CPU floor %.1f s, host %.0f%% busy, %d helpers lost" % (
                what, r["ready"], r["seconds"], r["half_s"] or float("nan"), r["create_cpu_ms_per_slot"],
                r["create_cpu_ms_per_slot_by_group"], r["cpu_ms_per_slot"], r["cpu_floor_s"],
                r["host_busy_pct"], r["helpers_lost"]))
    share = cpu_busy()
    busy, steal = 100.0 * share["busy"], 100.0 * share["steal"]
    raw["busy_after_pct"], raw["steal_after_pct"] = busy, steal
    return {"rows": rows, "raw": raw}


def main():
    global SKIP_CREATE, ONLY_CREATE
    quick = "--quick" in sys.argv
    SKIP_CREATE = "--no-create" in sys.argv
    ONLY_CREATE = "--create-only" in sys.argv
    out = None
    if "--json" in sys.argv:
        out = sys.argv[sys.argv.index("--json") + 1]
    if os.geteuid() != 0:
        sys.exit("bench/contest.py: run as root (sandboxd makes namespaces, cgroups and mounts)")
    s = section(quick)
    w = [max(len(str(r[i])) for r in s["rows"]) for i in range(6)]
    head = ("what", "baseline", "subject", "ratio", "target", "result")
    w = [max(a, len(b)) for a, b in zip(w, head)]
    for r in [head] + s["rows"]:
        print("  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)))
    raw = s["raw"]
    print("host: %d CPUs; %.0f%% busy / %.0f%% steal before, %.0f%% / %.0f%% after (other work on the host moves "
          "wall times, not the CPU per slot)" % (raw["cpus"], raw["busy_before_pct"], raw["steal_before_pct"],
                                                raw["busy_after_pct"], raw["steal_after_pct"]))
    if out:
        with open(out, "w") as f:
            json.dump(raw, f, indent=1, default=str)
    problems = [p for k, v in raw.items() if k.endswith("cleanup_problems") for p in v]
    problems += [p for k, v in raw.items() if k.startswith("create_") for p in v["cleanup_problems"]]
    if problems:
        print("CLEANUP PROBLEMS: %r" % problems)
        sys.exit(1)


if __name__ == "__main__":
    main()
