#!/usr/bin/python3
"""bench/tls.py — what mutual TLS between poold and sandboxd costs (issue 16).

    /usr/bin/python3 bench/tls.py [--quick]     (root; make all build/bench/loadgen first)

Two sandboxd, the same config but the TCP listener: `listen_tcp =
127.0.0.1:P` (plain, `insecure = yes`) for the baseline, `listen_tcp =
tls://127.0.0.1:Q` (mutual TLS 1.3, certificates from deploy/tools/make-certs.sh)
for the subject; one poold in front of each (nodes `http://127.0.0.1:P` and
`https://localhost:Q`). The client talks plain HTTP to both poolds on
loopback: the only difference is the poold → sandboxd link.

- run on a leased session (reused connection): bench/loadgen, one client, a
  keep-alive connection to each poold, one `POST /v1/sessions/ID/run` of
  print(1) to each per round, which goes first alternating. poold keeps its
  connection to the node (curl's cache), so this is the cost of TLS records
  on a warm connection. Target: TLS adds <= 0.2 ms at p50.
- lease + first run: a new session identifier each time (a warm slot is
  leased, labelled and runs), timed with Python's http.client, baseline and
  subject interleaved (order flipped each repetition); the session is
  deleted untimed. Info: a lease may open a new connection to the node.
- GET /v1/info straight to each sandboxd on a keep-alive connection (Python
  http.client, interleaved): the TLS cost of one call, without poold's
  and the run's noise.
- handshake: a fresh TCP connect + mutual TLS 1.3 handshake to sandboxd's
  TLS port (Python's ssl, poold's client certificate), against a TCP
  connect alone to the plain port: what a new poold → node connection pays.

section(quick) returns the rows in bench.py's shape; alone, the script
prints them. Daemons: uids 387000-387063, cgroups warmpool-bench-tls-*."""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "system"))

import wpdaemons as wp  # noqa: E402

sys.path.insert(0, HERE)
from bench import cpu_busy, pct, print_section  # noqa: E402  (bench.py's helpers)

LOADGEN = os.path.join(wp.REPO, "build", "bench", "loadgen")
MAKE_CERTS = os.path.join(wp.REPO, "deploy", "tools", "make-certs.sh")
UID_PLAIN, UID_TLS = 387000, 387032
RUN_BODY = json.dumps({"source": "print(1)\n", "tests": [{"stdin": "", "expected": "1\n"}]}).encode()
TARGET_MS = 0.2


def summary_ms(xs):
    return {"n": len(xs), **{"p%d" % p: round(pct(xs, p) * 1000, 4) for p in (10, 50, 90, 99)},
            "min": round(min(xs) * 1000, 4), "max": round(max(xs) * 1000, 4)}


def start_stack(tmp, certs, tls):
    port = wp.free_port()
    if tls:
        extra = ("listen_tcp = tls://127.0.0.1:%d\ntls_cert = %s/sb.crt\ntls_key = %s/sb.key\n"
                 "tls_client_ca = %s/ca.crt\ntls_client_name = poold" % (port, certs, certs, certs))
        url = "https://localhost:%d" % port
    else:
        extra = "listen_tcp = 127.0.0.1:%d\ninsecure = yes" % port
        url = "http://127.0.0.1:%d" % port
    uid = UID_TLS if tls else UID_PLAIN
    sb = wp.Sandboxd(wp.make_tmpdir("wp-bench-tls-sb-"), uid_base=uid, capacity=32,
                     cgroup_name="warmpool-bench-tls-%d-%d" % (os.getpid(), uid), extra=extra)
    sb.start()
    node_tls = ("node_tls_ca = %s/ca.crt\nnode_tls_cert = %s/poold.crt\nnode_tls_key = %s/poold.key"
                % (certs, certs, certs)) if tls else ""
    pd = wp.Poold(wp.make_tmpdir("wp-bench-tls-pd-"), nodes={"n": url}, extra_poold=node_tls,
                  pools={"python": {"language": "python", "warm": 6, "max": 24, "idle_timeout": "5m"}})
    pd.start()
    return sb, pd, port


def wait_ready(pd, n=4, timeout=60):
    def ok():
        r = pd.client().get("/v1/pools/python")
        return r.status == 200 and r.body.get("ready", 0) >= n
    if not wp.wait_for(ok, timeout):
        raise RuntimeError("pool not ready: %r" % pd.client().get("/v1/pools/python").body)


def raw_post(path, body):
    return ("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (path, len(body))) + body.decode()


def leased_runs(pds, rounds):
    """bench/loadgen: one client, one keep-alive connection per poold."""
    for name, pd in pds.items():  # lease the sessions first (untimed)
        r = pd.client().post("/v1/sessions/bench-tls-%s/run?pool=python" % name, json.loads(RUN_BODY))
        if r.status != 200 or r.body.get("verdict") != "accepted":
            raise RuntimeError("lease on %s: %r" % (name, r))
    spec = {"clients": [{"targets": [
        {"addr": "tcp:127.0.0.1:%d" % pd.port, "request": raw_post("/v1/sessions/bench-tls-%s/run?pool=python" % name,
                                                                     RUN_BODY),
         "expect": ['"verdict":"accepted"']} for name, pd in pds.items()]}],
        "rounds": rounds, "warmup": 5, "period_ms": 0, "timeout_s": 600}
    r = subprocess.run([LOADGEN], input=json.dumps(spec).encode(), capture_output=True, timeout=900)
    out = json.loads(r.stdout or b"{}")
    if r.returncode != 0 or out.get("errors"):
        raise RuntimeError("loadgen: %s %s" % (out.get("first_error"), r.stderr.decode(errors="replace")[:500]))
    return {name: [us / 1e6 for us in out["latency_us"][i]] for i, name in enumerate(pds)}


def lease_first_runs(pds, reps):
    """A new identifier each time: lease + first run, interleaved, deleted untimed."""
    conns = {name: http.client.HTTPConnection("127.0.0.1", pd.port, timeout=60) for name, pd in pds.items()}
    out = {name: [] for name in pds}
    names = list(pds)
    for i in range(reps):
        for name in (names if i % 2 == 0 else names[::-1]):
            wait_ready(pds[name], 2)
            c = conns[name]
            sid = "lease-%s-%d-%d" % (name, os.getpid(), i)
            t0 = time.perf_counter()
            c.request("POST", "/v1/sessions/%s/run?pool=python" % sid, body=RUN_BODY,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
            out[name].append(time.perf_counter() - t0)
            if r.status != 200 or b'"accepted"' not in body:
                raise RuntimeError("lease+run on %s: %d %s" % (name, r.status, body[:300]))
            c.request("DELETE", "/v1/sessions/%s?pool=python" % sid)
            c.getresponse().read()
    for c in conns.values():
        c.close()
    return out


def handshakes(certs, plain_port, tls_port, reps):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(certs, "ca.crt"))
    ctx.load_cert_chain(os.path.join(certs, "poold.crt"), os.path.join(certs, "poold.key"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    tcp, tls = [], []
    for i in range(reps):
        for kind in (("tcp", "tls") if i % 2 == 0 else ("tls", "tcp")):
            t0 = time.perf_counter()
            if kind == "tcp":
                s = socket.create_connection(("127.0.0.1", plain_port))
                tcp.append(time.perf_counter() - t0)
                s.close()
            else:
                raw = socket.create_connection(("127.0.0.1", tls_port))
                s = ctx.wrap_socket(raw, server_hostname="localhost")  # full handshake, client certificate
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the server checks the certificate
                s.recv(4096)
                tls.append(time.perf_counter() - t0)
                s.close()
    return tcp, tls


def direct_calls(certs, plain_port, tls_port, reps):
    """GET /v1/info on a keep-alive connection straight to each sandboxd
    (Python http.client; plain TCP vs mutual TLS), interleaved: the TLS cost
    of one call on a warm connection, without poold and without a run."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(certs, "ca.crt"))
    ctx.load_cert_chain(os.path.join(certs, "poold.crt"), os.path.join(certs, "poold.key"))
    conns = {"plain": http.client.HTTPConnection("127.0.0.1", plain_port, timeout=30),
             "tls": http.client.HTTPSConnection("localhost", tls_port, timeout=30, context=ctx)}
    out = {"plain": [], "tls": []}
    for i in range(reps + 20):
        for name in (("plain", "tls") if i % 2 == 0 else ("tls", "plain")):
            c = conns[name]
            t0 = time.perf_counter()
            c.request("GET", "/v1/info")
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("GET /v1/info on %s: %d" % (name, r.status))
            if i >= 20:
                out[name].append(time.perf_counter() - t0)
    for c in conns.values():
        c.close()
    return out


def section(quick):
    certs = tempfile.mkdtemp(prefix="wp-bench-tls-certs-")
    subprocess.run(["sh", MAKE_CERTS, "-d", certs, "sb,localhost,127.0.0.1"], check=True, stdout=subprocess.DEVNULL)
    busy = cpu_busy()["busy"]
    stacks = {}
    problems = []
    try:
        for name, tls in (("plain", False), ("tls", True)):
            stacks[name] = start_stack(None, certs, tls)
        pds = {name: s[1] for name, s in stacks.items()}
        for pd in pds.values():
            wait_ready(pd, 4)
        lat = leased_runs(pds, 40 if quick else 400)
        lease = lease_first_runs(pds, 10 if quick else 60)
        hs_tcp, hs_tls = handshakes(certs, stacks["plain"][2], stacks["tls"][2], 20 if quick else 200)
        direct = direct_calls(certs, stacks["plain"][2], stacks["tls"][2], 50 if quick else 500)
    finally:
        for sb, pd, _ in stacks.values():
            pd.cleanup()
            problems += sb.cleanup()
        shutil.rmtree(certs, ignore_errors=True)
    raw = {"cpu_busy_before": round(busy, 3), "leased_run": {k: summary_ms(v) for k, v in lat.items()},
           "lease_first_run": {k: summary_ms(v) for k, v in lease.items()},
           "direct_info": {k: summary_ms(v) for k, v in direct.items()},
           "tcp_connect": summary_ms(hs_tcp), "tls_connect_handshake": summary_ms(hs_tls),
           "cleanup_problems": problems}
    rows = []
    for p in (50, 99):
        b, s = pct(lat["plain"], p) * 1000, pct(lat["tls"], p) * 1000
        rows.append(("run on a leased session p%d: plain TCP vs mTLS to the node" % p, "%.3f ms" % b, "%.3f ms" % s,
                     "%+.3f ms" % (s - b), "<= +%.1f ms" % TARGET_MS if p == 50 else "",
                     ("PASS" if s - b <= TARGET_MS else "FAIL") if p == 50 else "info"))
    b, s = pct(direct["plain"], 50) * 1000, pct(direct["tls"], 50) * 1000
    rows.append(("  GET /v1/info straight to sandboxd p50, keep-alive: TCP vs mTLS", "%.3f ms" % b, "%.3f ms" % s,
                 "%+.3f ms" % (s - b), "", "info"))
    for p in (50, 99):
        b, s = pct(lease["plain"], p) * 1000, pct(lease["tls"], p) * 1000
        rows.append(("lease + first run p%d: plain TCP vs mTLS" % p, "%.2f ms" % b, "%.2f ms" % s,
                     "%+.2f ms" % (s - b), "", "info"))
    b, s = pct(hs_tcp, 50) * 1000, pct(hs_tls, 50) * 1000
    rows.append(("new connection to sandboxd p50: TCP connect vs + mTLS 1.3 handshake", "%.3f ms" % b, "%.3f ms" % s,
                 "%+.3f ms" % (s - b), "", "info"))
    return {"rows": rows, "raw": raw}


def main():
    quick = "--quick" in sys.argv[1:]
    if os.geteuid() != 0:
        sys.exit("bench/tls.py: run as root (sandboxd needs it)")
    if not os.path.exists(LOADGEN):
        sys.exit("bench/tls.py: %s missing: make build/bench/loadgen" % LOADGEN)
    print_section(section(quick), ratio_head="overhead")


if __name__ == "__main__":
    main()
