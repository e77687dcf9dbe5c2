#!/usr/bin/env python3
"""Measure what a slot costs on this host (docs/capacity.md).

Starts its own bin/sandboxd (temporary config, uid_base 376000, its own
cgroup name, socket and state dir), then for each language: creates N idle
slots and measures host MemAvailable before/after, the PSS of every process
in the slots' cgroups and the memory cgroup's usage; runs a hello program a
few times (CPU time, wall time, peak RSS, compile time); measures the CPU
the idle slots use; destroys the slots. Prints a table and writes JSON.

    sudo /usr/bin/python3 deploy/tools/measure_capacity.py [--slots 32] [--json out.json]
         [--sandboxd bin/sandboxd] [--languages config/languages] [--only python,java]

Root only (sandboxd is). Uses tests/system/wpdaemons.py to run the daemon.
MemAvailable is host-wide: other activity on the host shows up in it, so each
number is the median of --repeat rounds; PSS and the cgroup are per slot.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
import wpdaemons as wp  # noqa: E402

HELLO = {
    "python": "print('hello')",
    "javascript": "console.log('hello')",
    "java": 'public class Main { public static void main(String[] a) { System.out.println("hello"); } }',
    "c": '#include <stdio.h>\nint main(void){puts("hello");return 0;}',
    "cpp": '#include <iostream>\nint main(){std::cout<<"hello"<<std::endl;}',
}


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


def mem_available(samples=5):
    vals = []
    for _ in range(samples):
        vals.append(meminfo()["MemAvailable"])
        time.sleep(0.1)
    return statistics.median(vals)


def cgroup_path(pid, controller):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"))
    return None


def cgroup_v2_path(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            if line.startswith("0::"):
                return os.path.join("/sys/fs/cgroup", line.strip()[3:].lstrip("/"))
    return None


def tree_pids(path):
    pids = set()
    for d, _, files in os.walk(path):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    return pids


def pss(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slots", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sandboxd", default=wp.SANDBOXD)
    ap.add_argument("--languages", default=wp.LANG_DIR)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("measure_capacity: run as root (sandboxd needs it)")
    wp.SANDBOXD = os.path.abspath(args.sandboxd)
    sb = wp.Sandboxd(wp.make_tmpdir("wp-capacity-"), uid_base=376000, capacity=max(64, args.slots + 8),
                     cgroup_name="warmpool-capacity-%d" % os.getpid(), languages=os.path.abspath(args.languages))
    results = {"host": {"cpus": os.cpu_count(), "mem_total": meminfo()["MemTotal"], "kernel": os.uname().release},
               "slots_per_round": args.slots, "languages": {}}
    sb.start()
    try:
        c = sb.client(timeout=300)
        info = c.get("/v1/info").body
        results["host"]["cgroup"] = info.get("cgroup")
        langs = [l["name"] for l in info["languages"] if l.get("available")]
        if args.only:
            langs = [l for l in langs if l in args.only.split(",")]
        v1 = info.get("cgroup") == "v1"
        base = (cgroup_path(sb.pid, "memory") if v1 else cgroup_v2_path(sb.pid))
        group = os.path.join(os.path.dirname(base) if not v1 and base.endswith("/sandboxd") else base, sb.cgroup_name)
        cpu_group = os.path.join(cgroup_path(sb.pid, "cpuacct"), sb.cgroup_name) if v1 else group
        time.sleep(1)
        results["host"]["sandboxd_pss"] = pss(sb.pid)
        for lang in langs:
            rounds = []
            for _ in range(args.repeat):
                before = mem_available()
                t0 = time.monotonic()
                r = c.post("/v1/slots", {"language": lang, "count": args.slots, "wait": True})
                create_s = time.monotonic() - t0
                assert r.status == 201, "create %s: %r" % (lang, r)
                ids = [s["id"] for s in r.body["slots"]]
                time.sleep(2)
                after = mem_available()
                pids = tree_pids(group)
                total_pss = sum(pss(p) for p in pids)
                usage = read_int(os.path.join(group, "memory.usage_in_bytes" if v1 else "memory.current"))
                cpu0 = read_int(os.path.join(cpu_group, "cpuacct.usage")) if v1 else None
                time.sleep(5)
                cpu1 = read_int(os.path.join(cpu_group, "cpuacct.usage")) if v1 else None
                rounds.append({
                    "mem_available_delta_per_slot": (before - after) / args.slots,
                    "pss_per_slot": total_pss / args.slots,
                    "processes_per_slot": len(pids) / args.slots,
                    "cgroup_usage_per_slot": usage / args.slots if usage is not None else None,
                    "create_seconds": create_s,
                    "idle_cpu_percent_all_slots": ((cpu1 - cpu0) / 5e9 * 100) if cpu0 is not None and cpu1 is not None else None,
                })
                runs = []
                for i in range(args.runs):
                    sid = ids[i % len(ids)]
                    rr = c.post("/v1/slots/%s/run" % sid, {"source": HELLO[lang], "tests": [{"stdin": "", "expected": "hello\n"}]})
                    assert rr.status == 200 and rr.body["verdict"] == "accepted", "hello %s: %r" % (lang, rr)
                    t = rr.body["tests"][0]
                    comp = rr.body.get("compile") or {}
                    runs.append({"time_ms": t["time_ms"], "wall_ms": t["wall_ms"], "memory_kb": t["memory_kb"],
                                 "request_wall_ms": rr.body.get("wall_ms"),
                                 "compile_time_ms": comp.get("time_ms"), "compile_wall_ms": comp.get("wall_ms"),
                                 "compile_memory_kb": comp.get("memory_kb")})
                rounds[-1]["runs"] = runs
                for sid in ids:
                    c.delete("/v1/slots/%s" % sid)
                wp.wait_for(lambda: c.get("/v1/info").body["slots"]["total"] == 0, 120)
                time.sleep(2)

            def med(key, rs=rounds):
                vals = [x[key] for x in rs if x.get(key) is not None]
                return statistics.median(vals) if vals else None

            allruns = [x for r_ in rounds for x in r_["runs"]]
            results["languages"][lang] = {
                "rounds": rounds,
                "mem_available_delta_per_slot": med("mem_available_delta_per_slot"),
                "pss_per_slot": med("pss_per_slot"),
                "cgroup_usage_per_slot": med("cgroup_usage_per_slot"),
                "processes_per_slot": med("processes_per_slot"),
                "create_seconds_per_slot": med("create_seconds") / args.slots,
                "idle_cpu_percent_all_slots": med("idle_cpu_percent_all_slots"),
                "hello_time_ms": med("time_ms", allruns),
                "hello_wall_ms": med("wall_ms", allruns),
                "hello_memory_kb": med("memory_kb", allruns),
                "hello_request_wall_ms": med("request_wall_ms", allruns),
                "compile_time_ms": med("compile_time_ms", allruns),
                "compile_wall_ms": med("compile_wall_ms", allruns),
                "compile_memory_kb": med("compile_memory_kb", allruns),
            }
    finally:
        problems = sb.cleanup()
        if problems:
            print("cleanup problems: %r" % problems, file=sys.stderr)

    MiB = 1 << 20
    print("host: %d CPUs, %.1f GiB, kernel %s, cgroup %s; sandboxd PSS %.1f MiB; %d slots per round, %d rounds"
          % (results["host"]["cpus"], results["host"]["mem_total"] / (1 << 30), results["host"]["kernel"],
             results["host"].get("cgroup"), results["host"]["sandboxd_pss"] / MiB, args.slots, args.repeat))
    hdr = ("language", "MemAvail/slot", "PSS/slot", "cgroup/slot", "procs", "create/slot", "idle CPU",
           "hello CPU", "hello wall", "hello RSS", "compile CPU", "compile wall", "compile RSS")
    print(" | ".join(hdr))
    fmt_mib = lambda v: "%.2f MiB" % (v / MiB) if v is not None else "-"  # noqa: E731
    fmt_ms = lambda v: "%d ms" % v if v is not None else "-"  # noqa: E731
    fmt_kb = lambda v: "%.1f MiB" % (v / 1024) if v is not None else "-"  # noqa: E731
    for lang, m in results["languages"].items():
        print(" | ".join([lang, fmt_mib(m["mem_available_delta_per_slot"]), fmt_mib(m["pss_per_slot"]),
                          fmt_mib(m["cgroup_usage_per_slot"]), "%.1f" % m["processes_per_slot"],
                          "%.1f ms" % (m["create_seconds_per_slot"] * 1000),
                          "%.2f %%" % m["idle_cpu_percent_all_slots"] if m["idle_cpu_percent_all_slots"] is not None else "-",
                          fmt_ms(m["hello_time_ms"]), fmt_ms(m["hello_wall_ms"]), fmt_kb(m["hello_memory_kb"]),
                          fmt_ms(m["compile_time_ms"]), fmt_ms(m["compile_wall_ms"]), fmt_kb(m["compile_memory_kb"])]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
