#!/usr/bin/python3
"""warmpool benchmark (`make bench`): issue 2 (sandboxd), issue 3 (poold) and
issue 4 (stateful sessions through the Azure code/execute route).

Every figure is measured against a baseline taken in the same run, with the
subject and its baseline interleaved one repetition each (the order flipped
every repetition) so that drift of the machine hits both alike. See
bench/README.md for what is measured and how to read it.

Starts its own bin/sandboxd (uid range 380000+, its own cgroup name) and
bin/poold on loopback through tests/system/wpdaemons.py, and stops them at
the end (sandboxd removes its slots). Prints a table; writes
bench/results.json with every raw percentile.

    /usr/bin/python3 bench/bench.py [--quick] [--out FILE]

Standard library only. Needs root (sandboxd does).
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
import wpdaemons as wp  # noqa: E402

UID_BASE = 380000
CAPACITY = 256  # at most ~160 at once: python pool 50 (+50 refilling) + direct twins 50, or
# + c sessions 50 + c direct slots 50, or + stateful sessions 50 (+4 warm) + interpreter slots 50
CONC = 50  # concurrent sessions of the poold benchmark
SPOOL = "python-session"  # the stateful pool (Azure code/execute)
SPOOL_WARM = 4
HTTP_TIMEOUT = 120.0
LOADGEN = os.path.join(REPO, "build", "bench", "loadgen")

PY_HELLO = 'print("hello")\n'
C_HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'
PY_ONE = "print(1)\n"


# --------------------------------------------------------------------------
# statistics


def pct(xs, p):
    """Percentile p (0..100) of xs, linear interpolation between ranks."""
    s = sorted(xs)
    if not s:
        return None
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs):
    """Percentiles of a list of seconds (or plain numbers), in the same unit."""
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "min": min(xs),
        "p10": pct(xs, 10),
        "p50": pct(xs, 50),
        "p90": pct(xs, 90),
        "p99": pct(xs, 99),
        "max": max(xs),
        "mean": sum(xs) / len(xs),
    }


def ms_summary(secs):
    """summary() of seconds, in milliseconds, rounded to µs."""
    return {k: (round(v * 1000.0, 3) if k != "n" else v) for k, v in summary(secs).items()}


# --------------------------------------------------------------------------
# keep-alive HTTP, one connection per thread and per path


class _UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class _TCPConn(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class KeepAlive:
    """One persistent HTTP/1.1 connection. request() times only the exchange
    (send the request, read the whole answer): the connection is opened
    beforehand, the body is encoded beforehand, the answer parsed after."""

    def __init__(self, factory):
        self.factory = factory
        self.conn = None
        self.reconnects = 0

    def _open(self):
        self.conn = self.factory()
        self.conn.connect()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None):
        """→ (status, parsed JSON or bytes, seconds). body: bytes (JSON) or None."""
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            if self.conn is None:
                self._open()
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                t1 = time.perf_counter()
            except (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionError):
                # the server closed an idle keep-alive connection: once more
                # on a new one (the failed attempt is not counted)
                self.close()
                self.reconnects += 1
                if attempt:
                    raise
                continue
            if r.will_close:
                self.close()
            try:
                parsed = json.loads(data) if data[:1] in (b"{", b"[") else data
            except ValueError:
                parsed = data
            return r.status, parsed, t1 - t0
        raise AssertionError("unreachable")


def unix_ka(sock):
    return KeepAlive(lambda: _UnixConn(sock, HTTP_TIMEOUT))


def tcp_ka(url):
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return KeepAlive(lambda: _TCPConn(host, int(port), timeout=HTTP_TIMEOUT))


def enc(obj):
    return json.dumps(obj).encode()


class BenchError(RuntimeError):
    pass


def expect(status, body, want, what):
    if status not in (want if isinstance(want, tuple) else (want,)):
        raise BenchError("%s: HTTP %s %s" % (what, status, body if not isinstance(body, bytes) else body[:500]))
    return body


def check_accepted(body, what):
    if not isinstance(body, dict) or body.get("verdict") != "accepted":
        raise BenchError("%s: not accepted: %s" % (what, json.dumps(body)[:1500] if isinstance(body, dict) else body))


def run_threads(n, target):
    """Start n threads on target(i, barrier) at once; re-raise the first error."""
    barrier = threading.Barrier(n)
    errors = []

    def wrap(i):
        try:
            target(i, barrier)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()

    ts = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]


def progress(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# machine facts


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])  # kB
    return out


def settle_memory(limit=6.0, tol_kb=512):
    """Wait (up to `limit` s) until MemFree stops moving: the kernel frees a
    destroyed slot's namespaces, cgroups and slab lazily (RCU, workqueues),
    and this VM's free-page reporting lags too."""
    deadline = time.monotonic() + limit
    last = meminfo()["MemFree"]
    calm = 0
    while time.monotonic() < deadline and calm < 3:
        time.sleep(0.2)
        cur = meminfo()["MemFree"]
        calm = calm + 1 if abs(cur - last) <= tol_kb else 0
        last = cur


def mem_available_kb(samples=5, gap=0.1):
    """Median of a few MemAvailable readings (kB)."""
    vals = []
    for i in range(samples):
        if i:
            time.sleep(gap)
        vals.append(meminfo()["MemAvailable"])
    return pct(vals, 50)


def smaps_rollup(pid):
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[0].endswith(":") and parts[2] == "kB":
                    out[parts[0][:-1]] = int(parts[1])
    except OSError:
        return None
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def cpu_snap():
    """(total, idle, steal) CPU ticks of the machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    steal = v[7] if len(v) > 7 else 0
    return sum(v[:8]), idle, steal


def cpu_share(a, b):
    """Busy and stolen (by the hypervisor) shares of the CPUs between two
    cpu_snap()s."""
    tot = max(b[0] - a[0], 1)
    return {"busy": round(1.0 - (b[1] - a[1]) / tot, 3), "steal": round((b[2] - a[2]) / tot, 3)}


def print_section(r, ratio_head="ratio"):
    """What a section module prints when run alone: its rows as a table,
    how busy the CPU was before, the raw figures (JSON, on stderr); exits 1
    when its daemons left something behind."""
    w = max(len(x[0]) for x in r["rows"])
    print("%-*s  %12s  %12s  %10s  %10s  %s" % (w, "what", "baseline", "subject", ratio_head, "target", "result"))
    for row in r["rows"]:
        print("%-*s  %12s  %12s  %10s  %10s  %s" % ((w,) + tuple(row)))
    busy = r["raw"]["cpu_busy_before"]
    print("\nCPU busy before the run: %.0f%%%s" % (busy * 100, " (busy machine: figures are noisy)" if busy > 0.2 else ""))
    print(json.dumps(r["raw"], indent=1), file=sys.stderr)
    if r["raw"]["cleanup_problems"]:
        print("CLEANUP PROBLEMS: %r" % r["raw"]["cleanup_problems"])
        sys.exit(1)


def cpu_busy(seconds=1.0):
    """cpu_share over `seconds`: how much else runs on the machine before we
    start."""
    a = cpu_snap()
    time.sleep(seconds)
    return cpu_share(a, cpu_snap())


def proc_cpu_s(pid):
    """utime + stime of a process, in seconds (USER_HZ ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def git_commit():
    def git(*a):
        r = subprocess.run(["git", "-C", REPO] + list(a), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return r.stdout.decode().strip() if r.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head, "dirty": bool(dirty) if dirty is not None else None}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def language_compile_cmd(lang):
    """The compile command of config/languages/<lang>.conf (for the host-side
    baseline built with the same flags)."""
    path = os.path.join(REPO, "config", "languages", "%s.conf" % lang)
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*compile\s*=\s*(.*?)\s*(;.*)?$", line)
            if m:
                return shlex.split(m.group(1))
    raise BenchError("%s has no compile command" % path)


# --------------------------------------------------------------------------
# sandboxd helpers


class SB:
    """Setup calls to sandboxd (untimed), on one keep-alive connection."""

    def __init__(self, sock):
        self.ka = unix_ka(sock)

    def call(self, method, path, body=None, want=200):
        st, b, _ = self.ka.request(method, path, enc(body) if body is not None else None)
        return expect(st, b, want, "%s %s" % (method, path))

    def info(self):
        return self.call("GET", "/v1/info")

    def create(self, lang, n, interpreter=False):
        body = {"language": lang, "count": n, "wait": True}
        if interpreter:
            body["interpreter"] = True
        b = self.call("POST", "/v1/slots", body, want=201)
        return [s["id"] for s in b["slots"]]

    def destroy(self, ids):
        for i in ids:
            self.call("DELETE", "/v1/slots/%s" % i, want=(202, 404))

    def wait_quiet(self, total=None, timeout=60):
        """Until nothing is creating or being destroyed (and, if given, total slots == total)."""

        def ok():
            s = self.info()["slots"]
            return s["creating"] == 0 and s["destroying"] == 0 and (total is None or s["total"] == total)

        if not wp.wait_for(ok, timeout, 0.005):
            raise BenchError("sandboxd did not settle within %d s: %r" % (timeout, self.info()["slots"]))

    def destroy_all(self):
        self.destroy([s["id"] for s in self.call("GET", "/v1/slots")["slots"]])
        self.wait_quiet(total=0)


# --------------------------------------------------------------------------
# 1. sandboxd (issue 2)


def bench_hello(sb, sock, workdir, lang, reps, warmup):
    """A judged hello in a warm slot (round trip over the unix socket) versus
    the bare process run by us with subprocess. Interleaved."""
    if lang == "python":
        src, fname = PY_HELLO, "hello.py"
        with open(os.path.join(workdir, fname), "w") as f:
            f.write(src)
        bare_cmd = ["/usr/bin/python3", "-B", fname]
        run_body = enc({"source": src, "tests": [{"stdin": "", "expected": "hello\n"}]})
        compile_info = None
    else:
        src = C_HELLO
        with open(os.path.join(workdir, "main.c"), "w") as f:
            f.write(src)
        cc = language_compile_cmd("c")
        r = subprocess.run(cc, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise BenchError("host compile %s failed: %s" % (cc, r.stdout.decode("utf-8", "replace")))
        bare_cmd = ["./main"]
        run_body = enc({"compile": False, "tests": [{"stdin": "", "expected": "hello\n"}]})
        compile_info = " ".join(cc)

    (slot,) = sb.create(lang, 1)
    ka = unix_ka(sock)
    path = "/v1/slots/%s/run" % slot
    if lang == "c":
        st, b, t = ka.request("POST", path, enc({"source": src, "compile": True,
                                                  "tests": [{"stdin": "", "expected": "hello\n"}]}))
        expect(st, b, 200, "C compile run")
        check_accepted(b, "C compile run")
        compile_info = {"host_cmd": compile_info, "slot_compile_round_trip_ms": round(t * 1000, 3),
                        "slot_compile": b.get("compile")}

    def bare():
        t0 = time.perf_counter()
        p = subprocess.run(bare_cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        if p.returncode != 0 or p.stdout != b"hello\n":
            raise BenchError("bare %s: exit %d, %r %r" % (bare_cmd, p.returncode, p.stdout, p.stderr))
        return t1 - t0

    def boxed():
        st, b, t = ka.request("POST", path, run_body)
        expect(st, b, 200, "run")
        check_accepted(b, "%s hello in a slot" % lang)
        return t, b

    bare_t, box_t, wall, twall, tcpu, tmem = [], [], [], [], [], []
    for i in range(warmup + reps):
        if i % 2:
            a = bare()
            bt, b = boxed()
        else:
            bt, b = boxed()
            a = bare()
        if i < warmup:
            continue
        bare_t.append(a)
        box_t.append(bt)
        wall.append(b["wall_ms"])
        t0 = b["tests"][0]
        twall.append(t0["wall_ms"])
        tcpu.append(t0["time_ms"])
        tmem.append(t0["memory_kb"])
    ka.close()
    sb.destroy([slot])
    sb.wait_quiet(total=0)
    bare_s, box_s = ms_summary(bare_t), ms_summary(box_t)
    return {
        "reps": reps,
        "warmup": warmup,
        "bare_cmd": bare_cmd,
        "bare_ms": bare_s,
        "slot_round_trip_ms": box_s,
        "ratio_p50": box_s["p50"] / bare_s["p50"],
        "sandboxd_wall_ms": summary(wall),
        "test_wall_ms": summary(twall),
        "test_cpu_ms": summary(tcpu),
        "test_memory_kb": summary(tmem),
        "compile": compile_info,
    }


def bench_create(sb, sock, counts, rounds):
    """POST /v1/slots count=N wait=true, timed; destroyed (untimed) between
    rounds. Also, per N, the same without wait: how long the 202 takes, how
    long until all are ready, and how long a GET of another slot, sent 1 ms
    after the POST on a second connection, waits meanwhile (does creation
    hold sandboxd's event loop?)."""
    out = {}
    (probe,) = sb.create("python", 1)
    other = unix_ka(sock)
    other.request("GET", "/healthz")
    for n in counts:
        secs, accept, ready, probe_t = [], [], [], []
        post_body = enc({"language": "python", "count": n})
        for r in range(rounds):
            sb.wait_quiet(total=1)
            t0 = time.perf_counter()
            ids = sb.create("python", n)
            secs.append(time.perf_counter() - t0)
            sb.destroy(ids)
            sb.wait_quiet(total=1)
            # without wait, with a GET on another connection during the POST
            conn = _UnixConn(sock, HTTP_TIMEOUT)
            conn.connect()
            t0 = time.perf_counter()
            conn.request("POST", "/v1/slots", body=post_body, headers={"Content-Type": "application/json"})
            time.sleep(0.001)
            st, gb, tp = other.request("GET", "/v1/slots/%s" % probe)
            resp = conn.getresponse()
            data = resp.read()
            t1 = time.perf_counter()
            conn.close()
            expect(st, gb, 200, "GET during creation")
            b = expect(resp.status, json.loads(data), 202, "POST /v1/slots without wait")
            sb.wait_quiet()
            t2 = time.perf_counter()
            accept.append(t1 - t0)
            ready.append(t2 - t0)
            probe_t.append(tp)
            sb.destroy([x["id"] for x in b["slots"]])
            sb.wait_quiet(total=1)
        med = pct(secs, 50)
        out[str(n)] = {"count": n, "rounds": rounds, "seconds": [round(x, 4) for x in secs],
                       "median_s": med, "slots_per_s": n / med, "per_slot_ms": med * 1000.0 / n,
                       "nowait_202_ms": ms_summary(accept), "nowait_202_ms_per_slot": pct(accept, 50) * 1000.0 / n,
                       "nowait_all_ready_ms": ms_summary(ready), "get_other_slot_during_create_ms": ms_summary(probe_t)}
    other.close()
    sb.destroy([probe])
    sb.wait_quiet(total=0)
    return out


MEM_KEYS = ("MemFree", "MemAvailable", "AnonPages", "Shmem", "Slab", "SReclaimable", "SUnreclaim", "KernelStack",
            "PageTables", "Percpu")
# what the kernel accounts as in use by processes and by itself (not page cache)
USED_KEYS = ("AnonPages", "Shmem", "Slab", "KernelStack", "PageTables", "Percpu")


def bench_memory(sb, sandboxd_pid, n, rounds):
    """Memory of n idle ready python slots: MemAvailable delta, the delta of
    what /proc/meminfo accounts as used (anon + shmem + slab + kernel stacks
    + page tables + percpu), and the PSS of the slots' processes (uids in our
    range)."""
    rows = []
    for _ in range(rounds):
        sb.wait_quiet(total=0)
        settle_memory()
        sd_before = smaps_rollup(sandboxd_pid) or {}
        m0 = meminfo()
        before = mem_available_kb()
        ids = sb.create("python", n)
        sb.wait_quiet()
        settle_memory()
        after = mem_available_kb()
        m1 = meminfo()
        procs = wp.host_processes(UID_BASE, UID_BASE + CAPACITY)
        pss = rss = 0
        counted = 0
        for p in procs:
            r = smaps_rollup(p["pid"])
            if r:
                pss += r.get("Pss", 0)
                rss += r.get("Rss", 0)
                counted += 1
        sd_after = smaps_rollup(sandboxd_pid) or {}
        rows.append({
            "mem_available_delta_kb": before - after,
            "used_delta_kb": sum(m1.get(k, 0) - m0.get(k, 0) for k in USED_KEYS),
            "meminfo_delta_kb": {k: m1.get(k, 0) - m0.get(k, 0) for k in MEM_KEYS},
            "pss_kb": pss,
            "rss_kb": rss,
            "processes": counted,
            "sandboxd_pss_delta_kb": sd_after.get("Pss", 0) - sd_before.get("Pss", 0),
        })
        sb.destroy(ids)
        sb.wait_quiet(total=0)
    mib = 1024.0

    def med(key):
        return pct([r[key] for r in rows], 50)

    return {
        "slots": n,
        "rounds": rows,
        "mem_available_mib_per_slot": med("mem_available_delta_kb") / n / mib,
        "used_mib_per_slot": med("used_delta_kb") / n / mib,
        "pss_mib_per_slot": med("pss_kb") / n / mib,
        "rss_mib_per_slot": med("rss_kb") / n / mib,
        "processes_per_slot": med("processes") / n,
        "sandboxd_pss_delta_mib": med("sandboxd_pss_delta_kb") / mib,
    }


# --------------------------------------------------------------------------
# 2. poold (issue 3)


class PD:
    """Setup calls to poold (untimed)."""

    def __init__(self, url):
        self.ka = tcp_ka(url)

    def call(self, method, path, body=None, want=200):
        st, b, _ = self.ka.request(method, path, enc(body) if body is not None else None)
        return expect(st, b, want, "%s %s" % (method, path))

    def pool(self, name):
        return self.call("GET", "/v1/pools/%s" % name)

    def wait_pool_full(self, name, ready, timeout=60):
        def ok():
            p = self.pool(name)
            return p["ready"] == ready and p["creating"] == 0 and p["leased"] == 0

        if not wp.wait_for(ok, timeout, 0.005):
            raise BenchError("pool %s not refilled to %d within %d s: %r" % (name, ready, timeout, self.pool(name)))

    def wait_refilled(self, name, ready, timeout=60):
        """Until the pool has `ready` ready slots and creates none (leased ones may remain)."""
        def ok():
            p = self.pool(name)
            return p["ready"] >= ready and p["creating"] == 0

        if not wp.wait_for(ok, timeout, 0.005):
            raise BenchError("pool %s not refilled to %d within %d s: %r" % (name, ready, timeout, self.pool(name)))

    def release(self, ident, pool):
        self.call("DELETE", "/v1/sessions/%s?pool=%s" % (ident, pool), want=(204, 404))


_ident_seq = [0]
_ident_lock = threading.Lock()


def new_ident(tag):
    with _ident_lock:
        _ident_seq[0] += 1
        return "bench-%s-%d-%d" % (tag, os.getpid(), _ident_seq[0])


def refill_after_ms(sb, t_wall0, interpreter):
    """How long after t_wall0 (time.time() just before a lease request) the
    first slot of that kind created since reached sandboxd (its `created`,
    sandboxd's loop time): when poold's refill for the lease was sent."""
    created = [x["created"] for x in sb.call("GET", "/v1/slots")["slots"]
               if x["created"] >= t_wall0 and bool(x.get("interpreter")) == interpreter]
    return (min(created) - t_wall0) * 1000.0 if created else None


def bench_lease(sb, pd, sb_sock, pd_url, pool, warm, conc, rounds, budget_s, min_rounds, spread_s=0):
    """Lease + first execution (python print(1)) on a warm slot through poold,
    versus the same run POSTed to a fresh ready slot of sandboxd. Each round:
    `conc` new sessions at once, or with spread_s their starts spread evenly
    over spread_s seconds; between rounds (untimed) the sessions are
    released / slots destroyed and everything settles."""
    m0 = cpu_snap()
    body = enc({"source": PY_ONE, "tests": [{"stdin": "", "expected": "1\n"}]})
    direct_t, poold_t, poold_exec_ms, direct_wall, refill_after = [], [], [], [], []

    def settle():
        # the refill of the last round's released slots is over, nothing
        # is being created or destroyed
        pd.wait_pool_full(pool, warm)
        sb.wait_quiet()

    port = pd_url.rsplit(":", 1)[1]
    round_p50 = {False: [], True: []}  # direct, poold: each round's own p50 (ms)

    def burst(addr, paths, lat, walls, headers=None):
        # bench/loadgen sends them all at once (connections opened first),
        # or client i at i * spread_s / conc
        t, w = shots(addr, [raw_post(pth, body, headers) for pth in paths], ['"verdict":"accepted"'],
                     '"wall_ms":', spread_s)
        lat.extend(t)
        walls.extend(w)
        round_p50[addr.startswith("tcp")].append(pct(t, 50) * 1000.0)

    def poold_round():
        settle()
        idents = [new_ident("lease") for _ in range(conc)]
        t_wall0 = time.time()
        burst("tcp:127.0.0.1:" + port, ["/v1/sessions/%s/run?pool=%s" % (i, pool) for i in idents], poold_t,
              poold_exec_ms)
        if conc == 1:
            # the refill is over before the session ends (a release kicks
            # the pool too, and would hide when the refill was sent)
            pd.wait_refilled(pool, warm)
            refill_after.append(refill_after_ms(sb, t_wall0, False))
        for ident in idents:
            pd.release(ident, pool)

    def direct_round():
        settle()
        ids = sb.create("python", conc)
        sb.wait_quiet()
        burst("unix:" + sb_sock, ["/v1/slots/%s/run" % i for i in ids], direct_t, direct_wall)
        sb.destroy(ids)

    like_t = []

    def like_poold_round():
        # 1 session only: what poold asks of the node for a lease, sent by us
        # straight to sandboxd: the run carrying the lease's label (poold's
        # refill follows the answer, outside the clock)
        settle()
        (sid,) = sb.create("python", 1)
        sb.wait_quiet()
        burst("unix:" + sb_sock, ["/v1/slots/%s/run" % sid], like_t, [],
              headers={"X-Warmpool-Label": "%s/%s" % (pool, new_ident("like"))})
        sb.destroy([sid])

    paths = [poold_round, direct_round] + ([like_poold_round] if conc == 1 else [])
    t_end = time.monotonic() + budget_s
    done = 0
    for r in range(rounds):
        if r >= min_rounds and time.monotonic() > t_end:
            progress("  time budget of %d s spent: %d rounds of %d" % (budget_s, r, rounds))
            break
        done += 1
        k = r % len(paths)
        for f in (paths[k:] + paths[:k]) if r % 2 == 0 else list(reversed(paths[k:] + paths[:k])):
            f()
    pd.wait_pool_full(pool, warm)
    sb.wait_quiet()
    extra = {"sandboxd_wall_ms_direct": summary(direct_wall), "sandboxd_wall_ms_poold": summary(poold_exec_ms)}
    if refill_after:
        extra["refill_after_lease_ms"] = summary([x for x in refill_after if x is not None])
    if like_t:
        extra["direct_like_poold_ms"] = ms_summary(like_t)
        extra["overhead_p50_vs_like_ms"] = pct(poold_t, 50) * 1000.0 - extra["direct_like_poold_ms"]["p50"]
    extra["rounds_planned"] = rounds
    extra["spread_s"] = spread_s
    if conc > 1:
        # the noise: how far apart rounds of one path land on this machine
        extra["round_p50_ms_direct"] = round_p50[False]
        extra["round_p50_ms_poold"] = round_p50[True]
    extra["machine_cpu"] = cpu_share(m0, cpu_snap())
    return _compare(direct_t, poold_t, conc, done, extra=extra)


def setup_pairs(sb, sb_sock, pd_url, n, p_req, d_req, par=4):
    """For k < n, one untimed request through poold and one straight to
    sandboxd, each answer checked: p_req(k) and d_req(k) give (path, body,
    check, what). par threads, one keep-alive connection per path each."""
    sbc = [unix_ka(sb_sock) for _ in range(par)]
    pdc = [tcp_ka(pd_url) for _ in range(par)]

    def work(i, barrier):
        for k in range(i, n, par):
            for conn, req in ((pdc[i], p_req), (sbc[i], d_req)):
                path, body, check, what = req(k)
                st, b, _ = conn.request("POST", path, body)
                expect(st, b, 200, what)
                check(b, what)

    run_threads(par, work)
    for c in sbc + pdc:
        c.close()
    sb.wait_quiet()


def setup_c_sessions(sb, sb_sock, pd_url, pool, n):
    """n leased C sessions and n direct C slots, each with hello compiled."""
    body = enc({"source": C_HELLO, "compile": True, "tests": [{"stdin": "", "expected": "hello\n"}]})
    idents = [new_ident("exec") for _ in range(n)]
    slots = sb.create("c", n)
    setup_pairs(sb, sb_sock, pd_url, n,
                lambda k: ("/v1/sessions/%s/run?pool=%s" % (idents[k], pool), body, check_accepted,
                           "C session compile"),
                lambda k: ("/v1/slots/%s/run" % slots[k], body, check_accepted, "C slot compile"))
    return idents, slots


def setup_exec_sessions(sb, sb_sock, pd_url, pool, n):
    """n stateful sessions leased through code/execute and n interpreter
    slots created directly, each with one print(1) executed (untimed)."""
    idents = [new_ident("aca") for _ in range(n)]
    slots = sb.create("python", n, interpreter=True)
    setup_pairs(sb, sb_sock, pd_url, n,
                lambda k: (aca_path(pool, idents[k]), ACA_BODY, check_aca, "session lease + exec"),
                lambda k: ("/v1/slots/%s/exec" % slots[k], SB_EXEC_BODY, check_sb_exec, "interpreter slot exec"))
    return idents, slots


def bench_session_lease(sb, pd, sb_sock, pd_url, pool, warm, reps, budget_s, min_reps):
    """Lease + first execution on a new identifier of a stateful pool
    (code/execute print(1)), versus the same exec sent to sandboxd on a
    fresh interpreter slot, and versus what poold asks of the node for it
    (the exec carrying the lease's label) sent by us. One session; the
    three paths interleaved; before each, the pool is back to `warm` ready
    and the node quiet."""
    m0 = cpu_snap()
    port = pd_url.rsplit(":", 1)[1]
    sb_addr = "unix:" + sb_sock
    direct_t, poold_t, like_t, dwall, pwall, refill_after = [], [], [], [], [], []
    sb_expect = ['"status":"ok"', '"stdout":"1\\n"']

    def settle():
        pd.wait_pool_full(pool, warm)
        sb.wait_quiet()

    def poold_path():
        settle()
        ident = new_ident("acalease")
        t_wall0 = time.time()
        t, w = shots("tcp:127.0.0.1:" + port, [raw_post(aca_path(pool, ident), ACA_BODY)],
                     ['"status":"Success"', '"stdout":"1\\n"'], '"executionTimeInMilliseconds":')
        poold_t.extend(t)
        pwall.extend(w)
        pd.wait_refilled(pool, warm)
        refill_after.append(refill_after_ms(sb, t_wall0, True))
        pd.release(ident, pool)

    def direct_path():
        settle()
        (sid,) = sb.create("python", 1, interpreter=True)
        sb.wait_quiet()
        t, w = shots(sb_addr, [raw_post("/v1/slots/%s/exec" % sid, SB_EXEC_BODY)], sb_expect, '"wall_ms":')
        direct_t.extend(t)
        dwall.extend(w)
        sb.destroy([sid])

    def like_path():
        settle()
        (sid,) = sb.create("python", 1, interpreter=True)
        sb.wait_quiet()
        t, _ = shots(sb_addr, [raw_post("/v1/slots/%s/exec" % sid, SB_EXEC_BODY,
                                        {"X-Warmpool-Label": "%s/%s" % (pool, new_ident("like"))})], sb_expect, None)
        like_t.extend(t)
        sb.destroy([sid])

    paths = [poold_path, direct_path, like_path]
    t_end = time.monotonic() + budget_s
    done = 0
    for r in range(reps):
        if r >= min_reps and time.monotonic() > t_end:
            progress("  time budget of %d s spent: %d repetitions of %d" % (budget_s, r, reps))
            break
        done += 1
        k = r % len(paths)
        for f in (paths[k:] + paths[:k]) if r % 2 == 0 else list(reversed(paths[k:] + paths[:k])):
            f()
    settle()
    extra = {"sandboxd_wall_ms_direct": summary(dwall), "execution_time_ms_poold": summary(pwall),
             "direct_like_poold_ms": ms_summary(like_t), "reps_planned": reps,
             "refill_after_lease_ms": summary([x for x in refill_after if x is not None])}
    extra["overhead_p50_vs_like_ms"] = pct(poold_t, 50) * 1000.0 - extra["direct_like_poold_ms"]["p50"]
    extra["machine_cpu"] = cpu_share(m0, cpu_snap())
    return _compare(direct_t, poold_t, 1, done, extra=extra)


def run_spec(pool, idents, slots):
    """bench_exec on C sessions: the compiled hello, "compile": false."""
    body = enc({"compile": False, "tests": [{"stdin": "", "expected": "hello\n"}]})
    return {
        "d_path": lambda i: "/v1/slots/%s/run" % slots[i], "d_body": body,
        "p_path": lambda i: "/v1/sessions/%s/run?pool=%s" % (idents[i], pool), "p_body": body,
        "d_expect": ['"verdict":"accepted"'], "p_expect": ['"verdict":"accepted"'],
        "d_report": '"wall_ms":', "p_report": '"wall_ms":',
    }


ACA_API_VERSION = "2024-02-02-preview"
EXEC_CODE = "print(1)"
ACA_BODY = enc({"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": EXEC_CODE}})
SB_EXEC_BODY = enc({"code": EXEC_CODE})


def aca_path(pool, ident):
    return "/pools/%s/code/execute?identifier=%s&api-version=%s" % (pool, ident, ACA_API_VERSION)


def check_aca(b, what):
    pr = b.get("properties") if isinstance(b, dict) else None
    if not isinstance(pr, dict) or pr.get("status") != "Success" or pr.get("stdout") != "1\n":
        raise BenchError("%s: not Success with stdout 1: %s" % (what, json.dumps(b)[:1500] if isinstance(b, dict) else b))


def check_sb_exec(b, what):
    if not isinstance(b, dict) or b.get("status") != "ok" or b.get("stdout") != "1\n":
        raise BenchError("%s: not ok with stdout 1: %s" % (what, json.dumps(b)[:1500] if isinstance(b, dict) else b))


def exec_spec(pool, idents, slots):
    """bench_exec on stateful sessions: print(1) through code/execute versus
    POST /v1/slots/{id}/exec on an interpreter slot."""
    return {
        "d_path": lambda i: "/v1/slots/%s/exec" % slots[i], "d_body": SB_EXEC_BODY,
        "p_path": lambda i: aca_path(pool, idents[i]), "p_body": ACA_BODY,
        "d_expect": ['"status":"ok"', '"stdout":"1\\n"'], "p_expect": ['"status":"Success"', '"stdout":"1\\n"'],
        "d_report": '"wall_ms":', "p_report": '"executionTimeInMilliseconds":',
    }


def slot_procs_cpu_s():
    """{pid: CPU seconds} of the processes of the bench's uid range (the
    slots' init, stubs and interpreters)."""
    out = {}
    for p in wp.host_processes(UID_BASE, UID_BASE + CAPACITY):
        try:
            out[p["pid"]] = proc_cpu_s(p["pid"])
        except (OSError, ValueError, IndexError):
            pass
    return out


def raw_post(path, body, headers=None):
    """A keep-alive HTTP/1.1 POST as bytes on the wire (for bench/loadgen)."""
    extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    return ("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n%s"
            "Content-Length: %d\r\n\r\n" % (path, extra, len(body))) + body.decode()


def shots(addr, requests, expect, report, spread_s=0.0):
    """Each request once, from its own loadgen client and connection (opened
    before the clock), all at once or their starts spread evenly over
    spread_s. → (latencies in seconds, reported numbers), in client order
    for a single request."""
    out = loadgen({"clients": [{"targets": [{"addr": addr, "request": rq, "expect": expect, "report": report}]}
                               for rq in requests], "rounds": 1, "warmup": 0, "timeout_s": 300,
                   "period_ms": spread_s * 1000.0})
    return [us / 1e6 for us in out["latency_us"][0]], out["reported"][0]


def loadgen(spec):
    """Run bench/loadgen (built by `make bench`) on spec; its JSON result."""
    r = subprocess.run([LOADGEN], input=json.dumps(spec).encode(), capture_output=True, timeout=spec["timeout_s"] + 30)
    if r.returncode not in (0, 1) or not r.stdout:
        raise BenchError("loadgen failed (%d): %s" % (r.returncode, r.stderr.decode(errors="replace")[:2000]))
    out = json.loads(r.stdout)
    if out["errors"]:
        raise BenchError("loadgen: %d requests failed; first: %s" % (out["errors"], out["first_error"]))
    return out


def bench_exec(sb_sock, pd_url, spec, conc, reps_per_thread, pids, period_s=None):
    """Executions on leased sessions through poold versus on slots straight
    through sandboxd (spec: run_spec or exec_spec). bench/loadgen plays
    `conc` clients, each with its own session and slot and one keep-alive
    connection per path, alternating the two (which goes first alternates
    by round and by client), back to back; or, with period_s, one pair every
    period_s per client, the clients' ticks spread evenly over the period (a
    fixed offered load instead of `conc` requests always in flight)."""
    warmup = 3
    port = pd_url.rsplit(":", 1)[1]
    clients = [{"targets": [
        {"addr": "tcp:127.0.0.1:" + port, "request": raw_post(spec["p_path"](i), spec["p_body"]),
         "expect": spec["p_expect"], "report": spec["p_report"]},
        {"addr": "unix:" + sb_sock, "request": raw_post(spec["d_path"](i), spec["d_body"]),
         "expect": spec["d_expect"], "report": spec["d_report"]},
    ]} for i in range(conc)]
    lg = {"clients": clients, "rounds": reps_per_thread, "warmup": warmup,
          "period_ms": (period_s or 0) * 1000.0, "timeout_s": 600}
    cpu0 = {k: proc_cpu_s(v) for k, v in pids.items()}
    slots0, t0, m0 = slot_procs_cpu_s(), time.perf_counter(), cpu_snap()
    out = loadgen(lg)
    m1 = cpu_snap()
    cpu1 = {k: proc_cpu_s(v) for k, v in pids.items()}
    slots1, t1 = slot_procs_cpu_s(), time.perf_counter()
    poold_t = [us / 1e6 for us in out["latency_us"][0]]
    direct_t = [us / 1e6 for us in out["latency_us"][1]]
    # the warm-up requests fall inside the CPU window too
    n_all = out["sent"]
    n_poold = n_all // 2
    slots_cpu = sum(v - slots0[k] for k, v in slots1.items() if k in slots0)
    return _compare(direct_t, poold_t, conc, reps_per_thread, extra={
        "sandboxd_wall_ms_direct": summary(out["reported"][1]), "sandboxd_wall_ms_poold": summary(out["reported"][0]),
        "poold_cpu_us_per_request": (cpu1["poold"] - cpu0["poold"]) * 1e6 / n_poold,
        "sandboxd_cpu_us_per_run": (cpu1["sandboxd"] - cpu0["sandboxd"]) * 1e6 / n_all,
        "slot_processes_cpu_us_per_run": slots_cpu * 1e6 / n_all,
        "bench_client_cpu_us_per_request": out["cpu_s"] * 1e6 / n_all,
        "phase_wall_s": t1 - t0, "requests": n_all, "period_s": period_s,
        "offered_per_s": (2 * conc / period_s) if period_s else None,
        "achieved_per_s": out["sent"] / out["wall_s"],
        "ticks_late_half_period": out["late_ticks"], "machine_cpu": cpu_share(m0, m1), "stalls": stalls(out)})


def stalls(out, window_us=50000, crowd=5):
    """Of the slowest 1% of requests (both paths), the share sent within
    window_us of at least `crowd` others of that 1%, on both paths: tails
    that hit everyone at once are the machine stalling (hypervisor steal, a
    host-wide pause), not one slow request or one daemon."""
    lat = out["latency_us"][0] + out["latency_us"][1]
    at = out["sent_at_us"][0] + out["sent_at_us"][1]
    path = [0] * len(out["latency_us"][0]) + [1] * len(out["latency_us"][1])
    slow = sorted(range(len(lat)), key=lambda i: -lat[i])[:max(1, len(lat) // 100)]
    crowded = 0
    for i in slow:
        near = [j for j in slow if abs(at[j] - at[i]) <= window_us]
        if len(near) > crowd and {path[j] for j in near} == {0, 1}:
            crowded += 1
    return {"slowest_1pct": len(slow), "in_shared_stalls": crowded,
            "threshold_ms": min(lat[i] for i in slow) / 1000.0}


def half_load_period(saturated):
    """The per-client period that offers half the throughput a back-to-back
    run of the same clients achieved (both paths): the judged load at
    concurrency 50. At 50% utilisation a node is busy but not queueing; the
    back-to-back row itself is the node saturated (latency = queue)."""
    conc = saturated["concurrency"]
    return round(2.0 * conc / (saturated["achieved_per_s"] / 2.0), 3)


def _compare(direct_t, poold_t, conc, reps, extra):
    d, p = ms_summary(direct_t), ms_summary(poold_t)
    out = {
        "concurrency": conc,
        "reps": reps,
        "direct_ms": d,
        "poold_ms": p,
        "overhead_p50_ms": p["p50"] - d["p50"],
        "overhead_p99_ms": p["p99"] - d["p99"],
        "ratio_p50": p["p50"] / d["p50"],
    }
    out.update(extra)
    return out


# --------------------------------------------------------------------------
# report


def fmt_ms(v):
    return "%.2f ms" % v


# A judged figure taken while the hypervisor stole more than this share of
# the CPUs says so next to its verdict (README: "Reading the tails on a VM").
STEAL_NOISY = 0.05


def judged_result(ok, x):
    r = "PASS" if ok else "FAIL"
    steal = x.get("machine_cpu", {}).get("steal")
    if steal is not None and steal > STEAL_NOISY:
        r += " (steal %.0f%%)" % (100 * steal)
    return r


def build_table(R):
    rows = core_rows(R) if "sandboxd" in R else []
    for name, out in R.get("sections", {}).items():
        rows.append(("-- bench/%s.py" % name, "", "", "", "", ""))
        rows += [tuple(str(c) for c in r) for r in out["rows"]]
    steal = R["machine"].get("cpu_steal_whole_run")
    if steal is not None:
        rows.append(("CPU stolen by the hypervisor, whole run", "", "%.1f%%" % (100 * steal), "", "-", "info"))
    head = ("what", "baseline", "subject", "ratio / overhead", "target", "result")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(6)]
    line = "  ".join("%%-%ds" % w for w in widths)
    out = [line % head, line % tuple("-" * w for w in widths)]
    out += [line % r for r in rows]
    return "\n".join(x.rstrip() for x in out), rows


def core_rows(R):
    rows = []  # (what, baseline, subject, ratio/overhead, target, result)
    sd = R["sandboxd"]
    for lang, key, target in (("Python", "python_hello", 1.3), ("C", "c_hello", None)):
        h = sd[key]
        rows.append(("%s hello p50: bare vs warm slot" % lang, fmt_ms(h["bare_ms"]["p50"]),
                     fmt_ms(h["slot_round_trip_ms"]["p50"]), "%.2fx" % h["ratio_p50"],
                     "<= %.1fx" % target if target else "-",
                     ("PASS" if h["ratio_p50"] <= target else "FAIL") if target else "info"))
        rows.append(("%s hello p99: bare vs warm slot" % lang, fmt_ms(h["bare_ms"]["p99"]),
                     fmt_ms(h["slot_round_trip_ms"]["p99"]),
                     "%.2fx" % (h["slot_round_trip_ms"]["p99"] / h["bare_ms"]["p99"]), "-", "info"))
        rows.append(("  %s: sandboxd wall_ms / test wall_ms p50" % lang, "",
                     "%g / %g ms" % (h["sandboxd_wall_ms"]["p50"], h["test_wall_ms"]["p50"]), "", "-", "info"))
    for n, c in sd["slot_create"].items():
        rows.append(("slots created/s (count=%s, wait=true)" % n, "", "%.0f /s" % c["slots_per_s"],
                     "%.2f ms/slot" % c["per_slot_ms"], "-", "info"))
    for n, c in sd["slot_create"].items():
        rows.append(("  count=%s no wait: 202 in / a GET meanwhile waits" % n, "",
                     "%.1f / %.1f ms" % (c["nowait_202_ms"]["p50"], c["get_other_slot_during_create_ms"]["p50"]),
                     "%.2f ms/slot" % c["nowait_202_ms_per_slot"], "-", "info"))
    m = sd["memory"]
    rows.append(("memory per idle slot (%d slots): MemAvailable" % m["slots"], "", "%.2f MiB" % m["mem_available_mib_per_slot"],
                 "", "-", "info"))
    rows.append(("memory per idle slot: anon+shmem+slab+stacks+PT", "", "%.2f MiB" % m["used_mib_per_slot"],
                 "", "-", "info"))
    rows.append(("memory per idle slot: PSS of slot processes", "", "%.2f MiB" % m["pss_mib_per_slot"],
                 "%.1f procs/slot" % m["processes_per_slot"], "-", "info"))
    pdr = R["poold"]
    for key, label, judged in (
            ("lease_1", "lease+1st run (py), 1 session", True),
            ("lease_%d_paced" % CONC, "lease+1st run (py), %d sessions, half load (spread over %g s)" % (
                CONC, pdr["lease_%d_paced" % CONC]["spread_s"]), True),
            ("lease_%d" % CONC, "lease+1st run (py), %d sessions at once" % CONC, False),
            ("exec_1", "run on leased (C), 1 session", True),
            ("exec_%d_paced" % CONC, "run on leased (C), %d sessions, half load (1 pair/%g ms each)" % (
                CONC, pdr["exec_%d_paced" % CONC]["period_s"] * 1000), True),
            ("exec_%d" % CONC, "run on leased (C), %d sessions back to back" % CONC, False)):
        x = pdr[key]
        ok = x["overhead_p50_ms"] <= 1.0
        rows.append(("poold %s p50" % label, fmt_ms(x["direct_ms"]["p50"]), fmt_ms(x["poold_ms"]["p50"]),
                     "%+.2f ms (%.2fx)" % (x["overhead_p50_ms"], x["ratio_p50"]), "<= +1 ms" if judged else "-",
                     judged_result(ok, x) if judged else "info"))
        rows.append(("poold %s p99" % label, fmt_ms(x["direct_ms"]["p99"]), fmt_ms(x["poold_ms"]["p99"]),
                     "%+.2f ms" % x["overhead_p99_ms"], "-", "info"))
        if "poold_cpu_us_per_request" not in x:
            rows.append(("  CPUs busy, stolen by the hypervisor during the phase", "", "%.0f%%, %.1f%%" % (
                100 * x["machine_cpu"]["busy"], 100 * x["machine_cpu"]["steal"]), "", "-", "info"))
        if "round_p50_ms_direct" in x:
            rd, rp = x["round_p50_ms_direct"], x["round_p50_ms_poold"]
            rows.append(("  each round's own p50, min-max (the noise)", "%.0f-%.0f ms" % (min(rd), max(rd)),
                         "%.0f-%.0f ms" % (min(rp), max(rp)), "%d rounds each" % len(rd), "-", "info"))
        if "direct_like_poold_ms" in x:
            lk = x["direct_like_poold_ms"]
            rows.append(("  same, baseline = the run direct, with the lease's label", fmt_ms(lk["p50"]),
                         fmt_ms(x["poold_ms"]["p50"]), "%+.2f ms" % x["overhead_p50_vs_like_ms"], "-", "info"))
        if "refill_after_lease_ms" in x:
            rf = x["refill_after_lease_ms"]
            rows.append(("  poold's refill reached the node after: p50 (min-max)", "",
                         "%.1f ms (%.1f-%.1f)" % (rf["p50"], rf["min"], rf["max"]), "", "after the run", "info"))
        if "poold_cpu_us_per_request" in x:
            rows.append(("  CPU per request: poold / sandboxd (per run) / loadgen", "",
                         "%.0f / %.0f / %.0f us" % (x["poold_cpu_us_per_request"], x["sandboxd_cpu_us_per_run"],
                                                   x["bench_client_cpu_us_per_request"]), "", "-", "info"))
            rows.append(("  runs/s: offered / achieved (both paths); CPUs busy, stolen", "", "%s / %.0f; %.0f%%, %.1f%%" % (
                "%.0f" % x["offered_per_s"] if x.get("offered_per_s") else "all it can",
                x["achieved_per_s"], 100 * x["machine_cpu"]["busy"], 100 * x["machine_cpu"]["steal"]), "", "-", "info"))
    ses = R.get("sessions")
    if ses:
        keys = [("exec_1", "1 session", False), ("exec_%d_paced" % CONC, None, True)]
        keys += [("sweep_%g" % p, None, False) for p in sorted((x["period_s"] for k, x in ses.items()
                                                                if k.startswith("sweep_")), reverse=True)]
        keys += [("exec_%d" % CONC, "%d sessions back to back" % CONC, False)]
        for key, label, judged in keys:
            x = ses[key]
            if label is None:
                label = "%d sessions, %s1 pair/%g ms each" % (CONC, "half load, " if judged else "",
                                                              x["period_s"] * 1000)
            for q, target in (("p50", 2.0), ("p99", 10.0)):
                v = x["poold_ms"][q]
                over = v - x["direct_ms"][q]
                rows.append(("Azure exec print(1), leased, %s %s" % (label, q), fmt_ms(x["direct_ms"][q]), fmt_ms(v),
                             ("%+.2f ms (%.2fx)" % (over, v / x["direct_ms"][q])) if q == "p50" else "%+.2f ms" % over,
                             ("<= %g ms" % target) if judged else "-",
                             judged_result(v <= target, x) if judged else "info"))
            rows.append(("  CPU per exec: poold / sandboxd / interpreter / loadgen", "",
                         "%.0f / %.0f / %.0f / %.0f us" % (
                             x["poold_cpu_us_per_request"], x["sandboxd_cpu_us_per_run"],
                             x["slot_processes_cpu_us_per_run"], x["bench_client_cpu_us_per_request"]),
                         "", "-", "info"))
            st = x["stalls"]
            rows.append(("  slowest 1%% (> %.1f ms): in stalls shared by both paths" % st["threshold_ms"], "",
                         "%d of %d" % (st["in_shared_stalls"], st["slowest_1pct"]), "", "-", "info"))
            rows.append(("  execs/s: offered / achieved (both paths); ticks late; CPUs busy, stolen", "",
                         "%s / %.0f; %s; %.0f%%, %.1f%%" % (
                             "%.0f" % x["offered_per_s"] if x.get("offered_per_s") else "all it can",
                             x["achieved_per_s"],
                             ("%d of %d" % (x["ticks_late_half_period"], x["concurrency"] * x["reps"]))
                             if x.get("period_s") else "-",
                             100 * x["machine_cpu"]["busy"], 100 * x["machine_cpu"]["steal"]), "", "-", "info"))
        x = ses["lease_1"]
        for q in ("p50", "p99"):
            over = x["poold_ms"][q] - x["direct_ms"][q]
            rows.append(("Azure lease+1st exec (new identifier) %s" % q, fmt_ms(x["direct_ms"][q]),
                         fmt_ms(x["poold_ms"][q]),
                         ("%+.2f ms (%.2fx)" % (over, x["ratio_p50"])) if q == "p50" else "%+.2f ms" % over,
                         "-", "info"))
        lk = x["direct_like_poold_ms"]
        rows.append(("  same, baseline = the exec direct, with the lease's label", fmt_ms(lk["p50"]),
                     fmt_ms(x["poold_ms"]["p50"]), "%+.2f ms" % x["overhead_p50_vs_like_ms"], "-", "info"))
        rf = x["refill_after_lease_ms"]
        rows.append(("  poold's refill reached the node after: p50 (min-max)", "",
                     "%.1f ms (%.1f-%.1f)" % (rf["p50"], rf["min"], rf["max"]), "", "after the exec", "info"))
        rows.append(("  CPUs busy, stolen by the hypervisor during the phase", "", "%.0f%%, %.1f%%" % (
            100 * x["machine_cpu"]["busy"], 100 * x["machine_cpu"]["steal"]), "", "-", "info"))
    return rows


# --------------------------------------------------------------------------


def machine_facts(info):
    """What the table's heading and the JSON say about the machine; with
    sandboxd's /v1/info when a section has one at hand."""
    m = {"nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu_model(),
         "mem_total_mib": meminfo()["MemTotal"] // 1024, "python": sys.version.split()[0]}
    if info:
        m.update({"cgroup": info.get("cgroup"), "cgroup_controllers": info.get("controllers"),
                  "node": info.get("node"), "sandboxd_version": info.get("version"),
                  "languages": {l["name"]: l.get("version") for l in info.get("languages", [])}})
    return m


# Section modules: bench/<name>.py, each runnable alone, with
# section(quick) -> {"rows": [(what, baseline, subject, ratio, target, result)], "raw": {...}};
# each starts and stops its own daemons (its own uid range and cgroup name).
SECTIONS = [n for n in ("contest", "prewarm", "javawarm", "shell", "pandas", "tls", "files_recursive")
            if os.path.exists(os.path.join(REPO, "bench", n + ".py"))]


def run_section(name, quick, R, problems):
    import importlib
    sys.path.insert(0, os.path.join(REPO, "bench"))
    progress("section %s (bench/%s.py)" % (name, name))
    try:
        out = importlib.import_module(name).section(quick)
    except Exception as e:  # one section's failure must not lose the others' figures
        problems.append("section %s failed: %s: %s" % (name, type(e).__name__, e))
        return
    R.setdefault("sections", {})[name] = out


def run_core(P, R, problems):
    """Sections 1-3: sandboxd, poold and stateful sessions (fills R)."""
    work = tempfile.mkdtemp(prefix="wpbench-")
    sbd = wp.Sandboxd(wp.make_tmpdir("wpbench-sb-"), uid_base=UID_BASE, capacity=CAPACITY,
                      cgroup_name="warmpool-bench-%d" % os.getpid(), log_level="warn")
    pdd = None
    try:
        progress("starting sandboxd (uids %d+, capacity %d)" % (UID_BASE, CAPACITY))
        sbd.start()
        sb = SB(sbd.sock)
        info = sb.info()
        R["machine"].update(machine_facts(info))

        # ---- 1. sandboxd
        progress("1a python hello: %d reps, interleaved with the bare process" % P["hello_reps"])
        R["sandboxd"] = {}
        R["sandboxd"]["python_hello"] = bench_hello(sb, sbd.sock, work, "python", P["hello_reps"], P["hello_warmup"])
        progress("1b C hello: %d reps" % P["hello_reps"])
        R["sandboxd"]["c_hello"] = bench_hello(sb, sbd.sock, work, "c", P["hello_reps"], P["hello_warmup"])
        progress("1c slot creation %s x %d" % (P["create_counts"], P["create_rounds"]))
        R["sandboxd"]["slot_create"] = bench_create(sb, sbd.sock, P["create_counts"], P["create_rounds"])
        progress("1d memory of %d idle slots x %d" % (P["memory_slots"], P["memory_rounds"]))
        R["sandboxd"]["memory"] = bench_memory(sb, sbd.pid, P["memory_slots"], P["memory_rounds"])

        # ---- 2. poold
        pools = {
            # max above warm, as in production: each lease starts a refill (see README)
            "python": {"language": "python", "warm": CONC, "max": 2 * CONC, "idle_timeout": "30m"},
            "c": {"language": "c", "warm": 0, "max": CONC, "idle_timeout": "30m"},
            # stateful (Azure dynamic sessions): a few warm, room for CONC leased
            SPOOL: {"language": "python", "stateful": "yes", "warm": SPOOL_WARM, "max": 2 * CONC,
                    "idle_timeout": "30m"},
        }
        pdd = wp.Poold(wp.make_tmpdir("wpbench-pd-"), nodes={"local": "unix:" + sbd.sock}, pools=pools,
                       log_level="warn", extra_poold="session_queue = 64\nmax_queue = 1000\nnode_timeout = 60s")
        progress("starting poold on %s; filling the python pool (%d)" % (pdd.url, CONC))
        pdd.start()
        pd = PD(pdd.url)
        pd.wait_pool_full("python", CONC, timeout=120)
        pd.wait_pool_full(SPOOL, SPOOL_WARM, timeout=120)
        R["poold"] = {}
        progress("2a lease + first run, 1 session: %d reps" % P["lease1_reps"])
        R["poold"]["lease_1"] = bench_lease(sb, pd, sbd.sock, pdd.url, "python", CONC, 1, P["lease1_reps"],
                                               budget_s=75, min_rounds=min(50, P["lease1_reps"]))
        progress("2a lease + first run, %d sessions: %d rounds" % (CONC, P["lease_conc_rounds"]))
        R["poold"]["lease_%d" % CONC] = bench_lease(sb, pd, sbd.sock, pdd.url, "python", CONC, CONC,
                                                    P["lease_conc_rounds"], budget_s=40, min_rounds=1)
        # half load: the same 50 new sessions, their starts spread over twice
        # the time the slowest of a burst took (the burst drains the node)
        spread = round(2.0 * R["poold"]["lease_%d" % CONC]["direct_ms"]["p99"] / 1000.0, 3)
        progress("2a lease + first run, %d sessions at half load (starts spread over %g s): %d rounds"
                 % (CONC, spread, P["lease_conc_rounds"]))
        R["poold"]["lease_%d_paced" % CONC] = bench_lease(sb, pd, sbd.sock, pdd.url, "python", CONC, CONC,
                                                          P["lease_conc_rounds"], budget_s=50, min_rounds=1,
                                                          spread_s=spread)
        progress("2b compiling C hello in %d sessions and %d slots" % (CONC, CONC))
        idents, slots = setup_c_sessions(sb, sbd.sock, pdd.url, "c", CONC)
        progress("2b run on a leased session, 1 session: %d reps" % P["exec1_reps"])
        pids = {"poold": pdd.pid, "sandboxd": sbd.pid}
        R["poold"]["exec_1"] = bench_exec(sbd.sock, pdd.url, run_spec("c", idents, slots), 1, P["exec1_reps"], pids)
        progress("2b run on a leased session, %d sessions: %d reps each" % (CONC, P["exec_conc_reps"]))
        R["poold"]["exec_%d" % CONC] = bench_exec(sbd.sock, pdd.url, run_spec("c", idents, slots), CONC,
                                                  P["exec_conc_reps"], pids)
        period = half_load_period(R["poold"]["exec_%d" % CONC])
        progress("2b run on a leased session, %d sessions at half the node's throughput (one pair every %g ms "
                 "each): %d reps each" % (CONC, period * 1000, P["paced_reps"]))
        R["poold"]["exec_%d_paced" % CONC] = bench_exec(sbd.sock, pdd.url, run_spec("c", idents, slots), CONC,
                                                        P["paced_reps"], pids, period_s=period)
        for ident in idents:
            pd.release(ident, "c")
        sb.destroy(slots)
        sb.wait_quiet()

        # ---- 3. stateful sessions, Azure code/execute (issue 4)
        R["sessions"] = {}
        progress("3a %d stateful sessions through code/execute and %d interpreter slots" % (CONC, CONC))
        idents, slots = setup_exec_sessions(sb, sbd.sock, pdd.url, SPOOL, CONC)
        spec = exec_spec(SPOOL, idents, slots)
        progress("3a print(1) on a leased session, 1 session: %d reps" % P["aca1_reps"])
        R["sessions"]["exec_1"] = bench_exec(sbd.sock, pdd.url, spec, 1, P["aca1_reps"], pids)
        progress("3a print(1) on a leased session, %d sessions: %d reps each" % (CONC, P["aca_conc_reps"]))
        R["sessions"]["exec_%d" % CONC] = bench_exec(sbd.sock, pdd.url, spec, CONC, P["aca_conc_reps"], pids)
        period = half_load_period(R["sessions"]["exec_%d" % CONC])
        progress("3a print(1) on a leased session, %d sessions at half the node's throughput (one pair every %g ms "
                 "each): %d reps each" % (CONC, period * 1000, P["paced_reps"]))
        R["sessions"]["exec_%d_paced" % CONC] = bench_exec(sbd.sock, pdd.url, spec, CONC, P["paced_reps"], pids,
                                                           period_s=period)
        for period, reps in P["aca_sweep"]:
            progress("3a sweep: %d sessions, one pair every %g ms each: %d reps each" % (CONC, period * 1000, reps))
            R["sessions"]["sweep_%g" % period] = bench_exec(sbd.sock, pdd.url, spec, CONC, reps, pids, period_s=period)
        for ident in idents:
            pd.release(ident, SPOOL)
        sb.destroy(slots)
        sb.wait_quiet()
        progress("3b lease + first exec on a new identifier: %d reps" % P["aca_lease_reps"])
        R["sessions"]["lease_1"] = bench_session_lease(sb, pd, sbd.sock, pdd.url, SPOOL, SPOOL_WARM,
                                                       P["aca_lease_reps"], budget_s=45,
                                                       min_reps=min(50, P["aca_lease_reps"]))
        pd.ka.close()
    finally:
        progress("stopping daemons")
        if pdd is not None:
            rc = pdd.stop()
            if rc not in (0, None):
                problems.append("poold exited %s:\n%s" % (rc, pdd.log_text(limit=4000)))
            pdd.cleanup()
        rc = sbd.stop(timeout=60)
        if rc not in (0, None):
            problems.append("sandboxd exited %s:\n%s" % (rc, sbd.log_text(limit=4000)))
        problems += sbd.leftovers()
        sbd.cleanup()
        subprocess.run(["rm", "-rf", work])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not for figures)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results.json"))
    ap.add_argument("--sections", default=",".join(["core"] + SECTIONS),
                    help="comma-separated parts to run: core (sandboxd, poold, sessions: this file) and the "
                         "section modules bench/<name>.py (default: all of %(default)s)")
    args = ap.parse_args()
    chosen = [s for s in args.sections.split(",") if s]
    unknown = [s for s in chosen if s != "core" and s not in SECTIONS]
    if unknown:
        sys.exit("bench: unknown section(s) %s; known: core,%s" % (",".join(unknown), ",".join(SECTIONS)))
    if os.geteuid() != 0:
        sys.exit("bench: needs root (sandboxd creates namespaces, cgroups and mounts)")
    for b in (wp.SANDBOXD, wp.POOLD, LOADGEN):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s missing: run make first (make bench does)" % b)

    q = args.quick
    P = {
        "hello_reps": 30 if q else 200, "hello_warmup": 5 if q else 10,
        "create_counts": [1, 16, 32, 64], "create_rounds": 1 if q else 3,
        "memory_slots": 32, "memory_rounds": 1 if q else 3,
        "lease1_reps": 20 if q else 200, "lease_conc_rounds": 1 if q else 10,
        "exec1_reps": 30 if q else 400, "exec_conc_reps": 4 if q else 20,
        "aca1_reps": 30 if q else 1000, "aca_conc_reps": 4 if q else 40, "aca_lease_reps": 20 if q else 200,
        "paced_reps": 10 if q else 60,
        # (period, reps): from an agent's pace to past the node's throughput
        "aca_sweep": [(1.0, 3 if q else 10), (0.1, 10 if q else 40), (0.02, 10 if q else 150),
                      (0.01, 10 if q else 200)],
    }

    def on_term(signum, frame):
        raise SystemExit("bench: stopped by signal %d" % signum)

    signal.signal(signal.SIGTERM, on_term)

    started = time.time()
    t_mono = time.monotonic()
    load_start = loadavg()
    idle_check = cpu_busy()
    run_cpu0 = cpu_snap()
    R = {"params": P}
    problems = []
    R["machine"] = machine_facts(None)
    R["machine"].update({"loadavg_start": load_start, "cpu_busy_before_start": idle_check})
    if "core" in chosen:
        run_core(P, R, problems)
    for name in chosen:
        if name != "core":
            run_section(name, q, R, problems)

    R["date"] = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds")
    R["git"] = git_commit()
    R["runtime_s"] = round(time.monotonic() - t_mono, 1)
    R["cleanup_problems"] = problems
    R["machine"]["loadavg_end"] = loadavg()
    R["machine"]["cpu_steal_whole_run"] = cpu_share(run_cpu0, cpu_snap())["steal"]
    table, rows = build_table(R)
    R["table"] = [dict(zip(("what", "baseline", "subject", "ratio_overhead", "target", "result"), r)) for r in rows]
    with open(args.out, "w") as f:
        json.dump(R, f, indent=2, sort_keys=False)
        f.write("\n")
    m = R["machine"]
    print("warmpool bench — %s, commit %s%s, %d cores, kernel %s, cgroup %s%s" % (
        R["date"], (R["git"]["commit"] or "?")[:12], " (dirty)" if R["git"]["dirty"] else "", m["nproc"],
        m["kernel"], m.get("cgroup", "?"), ", QUICK (not for figures)" if q else ""))
    print(table)
    if idle_check["busy"] > 0.2:
        print("note: the CPUs were %.0f%% busy (%.0f%% stolen by the hypervisor) in the second before the bench "
              "started: other work shares this machine; the ratios hold better than the absolute times"
              % (100 * idle_check["busy"], 100 * idle_check["steal"]))
    sys.stdout.flush()
    print("runtime %.0f s; raw percentiles in %s" % (R["runtime_s"], os.path.relpath(args.out)))
    if problems:
        print("PROBLEMS (cleanup, failed sections):\n" + "\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
