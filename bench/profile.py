#!/usr/bin/python3
"""Where poold's and sandboxd's time goes, for one load: a profiling rig,
not a benchmark (no baseline, no table). Starts sandboxd and poold as
bench.py does, leases N sessions (stateful Python through the Azure route,
or C sessions through /v1/sessions/{id}/run), then sends ROUNDS executions
per session through bench/loadgen, through poold, straight to sandboxd, or
both, back to back or paced.

    /usr/bin/python3 bench/profile.py [--mode aca|c] [--sessions 50] [--rounds 200]
        [--period-ms 0] [--paths pd,sb] [--callgrind OUT] [--slowest]

Prints p50/p90/p99/max per path, requests/s, and the CPU per request of
poold, sandboxd and loadgen. --callgrind runs poold under
`valgrind --tool=callgrind` and keeps only the load in the profile (zeroed
before, dumped after): read it with `callgrind_annotate --inclusive=yes
OUT.*`. --slowest lists when the slowest 1% were sent (stalls shared by
both paths are the machine). Needs root, `make bench` first (loadgen).
"""

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

wp = B.wp


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("aca", "c"), default="aca")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--period-ms", type=float, default=0.0, help="0: back to back")
    ap.add_argument("--paths", default="pd,sb", help="pd (through poold), sb (straight to sandboxd), or both")
    ap.add_argument("--callgrind", metavar="OUT", help="profile poold with callgrind into OUT.<pid>")
    ap.add_argument("--slowest", action="store_true")
    a = ap.parse_args()
    paths = [p for p in a.paths.split(",") if p]
    wrapper = None
    if os.geteuid() != 0 or not os.access(B.LOADGEN, os.X_OK) or not set(paths) <= {"pd", "sb"}:
        sys.exit("profile: needs root, build/bench/loadgen (make bench) and --paths among pd,sb")
    if a.callgrind:
        wrapper = tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False)
        wrapper.write('#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s.%%p %s "$@"\n'
                      % (os.path.abspath(a.callgrind), wp.POOLD))
        wrapper.close()
        os.chmod(wrapper.name, stat.S_IRWXU)
        wp.POOLD = wrapper.name
    sbd = wp.Sandboxd(wp.make_tmpdir("wpprof-sb-"), uid_base=B.UID_BASE, capacity=B.CAPACITY,
                      cgroup_name="warmpool-prof-%d" % os.getpid(), log_level="warn")
    sbd.start()
    pdd = None
    try:
        sb = B.SB(sbd.sock)
        n = a.sessions
        pools = {"c": {"language": "c", "warm": 0, "max": n, "idle_timeout": "30m"},
                 B.SPOOL: {"language": "python", "stateful": "yes", "warm": 4, "max": max(8, 2 * n),
                           "idle_timeout": "30m"}}
        pdd = wp.Poold(wp.make_tmpdir("wpprof-pd-"), nodes={"local": "unix:" + sbd.sock}, pools=pools,
                       log_level="warn", extra_poold="session_queue = 64\nmax_queue = 1000\nnode_timeout = 60s")
        pdd.start()
        if a.mode == "aca":
            idents, slots = B.setup_exec_sessions(sb, sbd.sock, pdd.url, B.SPOOL, n)
            spec = B.exec_spec(B.SPOOL, idents, slots)
        else:
            idents, slots = B.setup_c_sessions(sb, sbd.sock, pdd.url, "c", n)
            spec = B.run_spec("c", idents, slots)
        port = pdd.url.rsplit(":", 1)[1]
        target = {"pd": lambda i: {"addr": "tcp:127.0.0.1:" + port, "request": B.raw_post(spec["p_path"](i),
                                   spec["p_body"]), "expect": spec["p_expect"]},
                  "sb": lambda i: {"addr": "unix:" + sbd.sock, "request": B.raw_post(spec["d_path"](i),
                                   spec["d_body"]), "expect": spec["d_expect"]}}
        lg = {"clients": [{"targets": [target[p](i) for p in paths]} for i in range(n)], "rounds": a.rounds,
              "warmup": 3, "period_ms": a.period_ms, "timeout_s": 600}
        pids = {"poold": pdd.pid, "sandboxd": sbd.pid}
        if a.callgrind:
            subprocess.run(["callgrind_control", "-z", str(pdd.pid)], capture_output=True)
        c0, m0 = {k: B.proc_cpu_s(v) for k, v in pids.items()}, B.cpu_snap()
        out = B.loadgen(lg)
        c1, m1 = {k: B.proc_cpu_s(v) for k, v in pids.items()}, B.cpu_snap()
        if a.callgrind:
            subprocess.run(["callgrind_control", "-d", "load", str(pdd.pid)], capture_output=True)
        sent = out["sent"]
        for k, name in enumerate(paths):
            lat = sorted(out["latency_us"][k])
            print("%s: n %d, p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f" % (
                name, len(lat), B.pct(lat, 50) / 1000, B.pct(lat, 90) / 1000, B.pct(lat, 99) / 1000, lat[-1] / 1000))
            if a.slowest:
                at = out["sent_at_us"][k]
                slow = sorted(range(len(lat)), key=lambda i: -out["latency_us"][k][i])[:max(1, len(lat) // 100)]
                print("  slowest 1% (sent at ms: latency ms): " + " ".join(
                    "%.0f:%.1f" % (at[i] / 1000, out["latency_us"][k][i] / 1000) for i in sorted(slow, key=lambda i: at[i])))
        print("%.0f requests/s; CPU per request (all paths): poold %.0f us, sandboxd %.0f us, loadgen %.0f us; "
              "machine %s" % (sent / out["wall_s"], (c1["poold"] - c0["poold"]) / sent * 1e6,
                              (c1["sandboxd"] - c0["sandboxd"]) / sent * 1e6, out["cpu_s"] / sent * 1e6,
                              json.dumps(B.cpu_share(m0, m1))))
    finally:
        if pdd is not None:
            pdd.stop()
            pdd.cleanup()
        sbd.stop(timeout=60)
        problems = sbd.leftovers()
        sbd.cleanup()
        if wrapper is not None:
            os.unlink(wrapper.name)
        if problems:
            print("CLEANUP PROBLEMS: %r" % problems)


if __name__ == "__main__":
    main()
