#!/usr/bin/python3
"""bench/files_recursive.py — Azure files `recursive=true` and GET metadata (issue 13).

    /usr/bin/python3 bench/files_recursive.py [--quick]     (root; make all first)

One sandboxd and one poold (shell pool as shipped in config/poold.conf, a
stateful javascript pool), a shell session holding a tree made by a command:
D directories of F files each under /mnt/data/t.

- recursive list: `GET files?recursive=true&path=t` (api-version
  2025-10-02-preview), one request, against what a client without it does
  to see the same tree: list `t`, then each of its D directories (`path=t/dN`),
  D + 1 requests on one keep-alive connection. Interleaved, order flipped
  each repetition. Target: the one recursive request takes no longer than
  the walk (ratio <= 1).
- refusal: the same request on a directory of 100 000 files (over the 5 000
  entries a recursive list holds): `400 RecursiveListTooLarge` in bounded
  time whatever the directory holds. Target: p50 <= 250 ms (sandboxd stops
  reading at 5 001 entries or 0.1 s).
- metadata: the first `GET metadata` of a pool (its packages read in a slot
  of its own) against the next ones (kept). Info.

section(quick) returns rows in bench.py's shape; alone, the script prints
them. Daemons: uids 421000-421031, cgroups warmpool-bench-files-*."""

import http.client
import json
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "system"))

import wpdaemons as wp  # noqa: E402

sys.path.insert(0, HERE)
from bench import cpu_busy, pct, print_section  # noqa: E402  (bench.py's helpers)

UID_BASE = 421000
V = "2025-10-02-preview"
REFUSE_TARGET_MS = 250.0


def shipped_shell_pool():
    import configparser
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), strict=False, interpolation=None)
    cp.read(os.path.join(wp.REPO, "config", "poold.conf"))
    return dict(cp["pool:shell"])


class Conn:
    """One keep-alive connection to poold."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = self.c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None


def url(pool, path, ident, extra=""):
    q = "api-version=%s" % V + ("&identifier=%s" % urllib.parse.quote(ident) if ident else "")
    return "/pools/%s/%s?%s%s" % (pool, path, q, extra)


def shell(conn, ident, cmd):
    st, b = conn.req("POST", url("shell", "executions", ident), {"shellCommand": cmd, "timeoutInSeconds": 120})
    if st != 200 or b["status"] != "0":
        raise RuntimeError("shell command failed: %r %r" % (st, b))
    return b["result"]["stdout"]


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def section(quick):
    dirs, per_dir, reps = (10, 50, 10) if quick else (40, 120, 40)
    busy = cpu_busy()["busy"]
    sb = wp.Sandboxd(wp.make_tmpdir("wp-bench-files-sb-"), uid_base=UID_BASE, capacity=32,
                     cgroup_name="warmpool-bench-files-%d" % os.getpid())
    pd = None
    problems = []
    raw = {"cpu_busy_before": round(busy, 3), "tree": {"dirs": dirs, "files_per_dir": per_dir}}
    try:
        sb.start()
        pd = wp.Poold(wp.make_tmpdir("wp-bench-files-pd-"), nodes={"local": sb.url},
                      pools={"shell": shipped_shell_pool(),
                             "javascript": {"language": "javascript", "stateful": "yes", "warm": 1, "max": 4}})
        pd.start()
        if not wp.wait_for(lambda: pd.client().get("/readyz").status == 200, 60, 0.1):
            raise RuntimeError("poold not ready")
        conn = Conn(pd.port)
        ident = "bench-files-%d" % os.getpid()
        shell(conn, ident, "mkdir t big && cd t && for d in $(seq %d); do mkdir d$d && (cd d$d && seq %d | xargs touch); "
                           "done && cd ../big && seq 100000 | xargs touch" % (dirs, per_dir))

        def recursive():
            st, b = conn.req("GET", url("shell", "files", ident, "&path=t&recursive=true"))
            assert st == 200 and len(b["value"]) == dirs * (per_dir + 1), (st, b if st != 200 else len(b["value"]))

        def walk():
            st, b = conn.req("GET", url("shell", "files", ident, "&path=t"))
            assert st == 200, (st, b)
            n = 0
            for e in b["value"]:
                st, sub = conn.req("GET", url("shell", "files", ident, "&path=t/" + e["name"]))
                assert st == 200 and sub["nextLink"] is None, (st, sub)
                n += len(sub["value"])
            assert n == dirs * per_dir, n

        def refused():
            st, b = conn.req("GET", url("shell", "files", ident, "&path=big&recursive=true"))
            assert st == 400 and b["error"]["code"] == "RecursiveListTooLarge", (st, b)

        rec, wlk, ref = [], [], []
        for i in range(reps):
            pair = [(rec, recursive), (wlk, walk)]
            for xs, fn in (pair if i % 2 == 0 else pair[::-1]):
                xs.append(timed(fn))
            ref.append(timed(refused))

        meta = {}
        for pool in ("shell", "javascript"):
            first = timed(lambda: conn.req("GET", url(pool, "metadata", None)))
            st, b = conn.req("GET", url(pool, "metadata", None))
            meta[pool] = {"first_ms": round(first * 1000, 1), "packages": len(b["preInstalledPackages"]),
                          "kept_ms": round(timed(lambda: conn.req("GET", url(pool, "metadata", None))) * 1000, 2)}
        conn.req("DELETE", url("shell", "session", ident))
    finally:
        if pd:
            pd.cleanup()
        problems += sb.cleanup()
    ms = lambda xs, p: pct(xs, p) * 1000  # noqa: E731
    raw.update({"recursive_ms": {"p50": ms(rec, 50), "p99": ms(rec, 99)},
                "walk_ms": {"p50": ms(wlk, 50), "p99": ms(wlk, 99)},
                "refusal_ms": {"p50": ms(ref, 50), "p99": ms(ref, 99)}, "metadata": meta,
                "cleanup_problems": problems})
    n = dirs * (per_dir + 1)
    b, s = ms(wlk, 50), ms(rec, 50)
    rows = [("files list of a %d-entry tree p50: %d per-directory lists vs recursive=true" % (n, dirs + 1),
             "%.2f ms" % b, "%.2f ms" % s, "%.2fx" % (s / b), "<= 1x", "PASS" if s <= b else "FAIL"),
            ("  the same, p99", "%.2f ms" % ms(wlk, 99), "%.2f ms" % ms(rec, 99), "%.2fx" % (ms(rec, 99) / ms(wlk, 99)),
             "", "info"),
            ("recursive=true on 100 000 files: 400 RecursiveListTooLarge p50", "", "%.1f ms" % ms(ref, 50), "",
             "<= %.0f ms" % REFUSE_TARGET_MS, "PASS" if ms(ref, 50) <= REFUSE_TARGET_MS else "FAIL")]
    for pool, m in meta.items():
        rows.append(("GET metadata, %s pool (%d packages): first (read in a slot) vs kept" % (pool, m["packages"]),
                     "%.1f ms" % m["first_ms"], "%.2f ms" % m["kept_ms"], "", "", "info"))
    return {"rows": rows, "raw": raw}


def main():
    quick = "--quick" in sys.argv[1:]
    if os.geteuid() != 0:
        sys.exit("bench/files_recursive.py: run as root (sandboxd needs it)")
    print_section(section(quick))


if __name__ == "__main__":
    main()
