#!/usr/bin/python3
"""bench/javawarm.py — what a Java submission costs with the compile server
(config/languages/java.conf `prestart`, sandboxd/runtimes/JavacServer.java),
on an idle node and on a busy one (issues 11 and 12).

    /usr/bin/python3 bench/javawarm.py [--quick]

Root only. Its own sandboxd (tests/system/wpdaemons.py, slot uids
440000+, cgroup wp-javawarm-<pid>) with the shipped language files. Per
round, N Java slots are made and each judges one `Scanner` a+b through
sandboxd's API (POST /v1/slots/{id}/run):

- "warm": the submissions come after the slots' warm-up ended (an idle
  node: the server warmed javac up in the background);
- "cold": each submission comes right after its slot said ready. A Java
  slot is ready before its server, which starts beside it (and, on a node
  whose run slots are all busy, not at all until they are not): the
  submission finds it not ready, stops it and compiles with a plain javac,
  as every Java submission of a contest burst does.

It prints, per kind, the CPU sandboxd's cgroup used per slot while the
slots were made (up to the end of their warm-up, for "warm") and per
submission (compile, run, the slot's teardown), and the submissions'
median latency. CPU does not depend much on what else the host runs; the
latency does. section(quick) returns bench.py's build_table rows."""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "system"))
sys.path.insert(0, HERE)

import wpdaemons as wp  # noqa: E402
import bench as B  # noqa: E402  (its SB helper)

SRC = ("import java.util.*;\npublic class Main { public static void main(String[] a) {"
       " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }\n")
UID_BASE = 440000


def measure(rounds, n):
    sb = wp.Sandboxd(wp.make_tmpdir("wp-javawarm-"), uid_base=UID_BASE, capacity=64,
                     cgroup_name="wp-javawarm-%d" % os.getpid())
    out = {"warm": [], "cold": []}
    sb.start()
    try:
        s = B.SB(sb.sock)
        named = wp.cgroup_dirs_named(sb.cgroup_name, extra_pids=(sb.pid,))
        # v1: cpuacct.usage; v2: cpu.stat's usage_usec (v1's cpu.stat has none)
        dirs = [d for d in named if os.path.exists(os.path.join(d, "cpuacct.usage"))] or [
            d for d in named if os.path.exists(os.path.join(d, "cpu.stat")) and "usage_usec" in open(
                os.path.join(d, "cpu.stat")).read()]
        if not dirs:
            raise B.BenchError("no cpu accounting group named %s" % sb.cgroup_name)

        def cpu():
            f = os.path.join(dirs[0], "cpuacct.usage")
            if os.path.exists(f):
                with open(f) as fh:
                    return int(fh.read()) / 1e9
            with open(os.path.join(dirs[0], "cpu.stat")) as fh:
                return int(dict(line.split() for line in fh)["usage_usec"]) / 1e6

        def idle():
            last = -1.0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                c = cpu()
                if c - last < 0.005:
                    return
                last = c
                time.sleep(0.7)

        def judge(slot):
            t0 = time.monotonic()
            b = s.call("POST", "/v1/slots/%s/run" % slot,
                       {"source": SRC, "tests": [{"stdin": "1 2\n", "expected": "3\n"}]})
            if b.get("verdict") != "accepted":
                raise B.BenchError("java a+b: %r" % b)
            return time.monotonic() - t0

        for r in range(rounds):
            for kind in ("warm", "cold"):
                B.progress("javawarm: round %d/%d, %s" % (r + 1, rounds, kind))
                idle()
                c0 = cpu()
                ids = s.create("java", n)
                if kind == "warm":
                    idle()
                c1 = cpu()
                lat = [judge(i) for i in ids]
                s.destroy(ids)
                s.wait_quiet(total=0)
                idle()
                c2 = cpu()
                out[kind].append({"made_s": (c1 - c0) / n, "submission_s": (c2 - c1) / n,
                                  "latency_s": statistics.median(lat)})
    finally:
        sb.stop()
        sb.cleanup()
    return out


def section(quick):
    raw = measure(1 if quick else 3, 4)
    rows = []
    for kind, what in (("warm", "after the warm-up (idle node)"), ("cold", "right after its slot is ready (a plain javac)")):
        made = statistics.median(x["made_s"] for x in raw[kind])
        sub = statistics.median(x["submission_s"] for x in raw[kind])
        lat = statistics.median(x["latency_s"] for x in raw[kind])
        rows.append(("java submission %s: CPU per slot made + per submission; latency" % what, "",
                     "%.2f + %.2f = %.2f s; %.0f ms" % (made, sub, made + sub, lat * 1000), "", "-", "info"))
    return {"rows": rows, "raw": raw}


def main():
    if os.geteuid() != 0:
        sys.exit("bench/javawarm.py: needs root (sandboxd)")
    res = section("--quick" in sys.argv)
    for row in res["rows"]:
        print("%-90s %s" % (row[0], row[2]))


if __name__ == "__main__":
    main()
