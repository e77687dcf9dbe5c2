"""bench/loadgen, the bench's load generator: it must count what it was
asked to send, read the numbers it reports, and refuse to time a wrong
answer (the bench trusts it not to). Against a small keep-alive HTTP server
on loopback (TCP and a unix socket), not against the daemons: what is under
test here is loadgen's HTTP and bookkeeping.
"""

import http.server
import json
import os
import socketserver
import subprocess
import tempfile
import threading

import pytest

LOADGEN = os.path.join(os.path.dirname(__file__), "..", "..", "build", "bench", "loadgen")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as sandboxd and poold

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n = json.loads(body)["n"]
        status = 500 if n < 0 else 200
        out = json.dumps({"echo": n, "wall_ms": n * 2, "path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("local", 0)


@pytest.fixture(scope="module")
def servers():
    if not os.access(LOADGEN, os.X_OK):
        pytest.fail("build/bench/loadgen missing: `make system` builds it")
    tcp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tcp.daemon_threads = True
    d = tempfile.mkdtemp(prefix="wp-loadgen-")
    unix = UnixServer(os.path.join(d, "s.sock"), Handler)
    for s in (tcp, unix):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield "tcp:127.0.0.1:%d" % tcp.server_address[1], "unix:" + os.path.join(d, "s.sock")
    tcp.shutdown()
    unix.shutdown()


def post(path, n):
    body = json.dumps({"n": n})
    return ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path, len(body), body))


def run(spec):
    r = subprocess.run([LOADGEN], input=json.dumps(spec).encode(), capture_output=True, timeout=60)
    return r.returncode, (json.loads(r.stdout) if r.stdout else None), r.stderr.decode()


def test_counts_every_request_and_reads_the_reported_numbers(servers):
    tcp, unix = servers
    clients = [{"targets": [
        {"addr": tcp, "request": post("/a", i), "expect": ['"path": "/a"'], "report": '"wall_ms": '},
        {"addr": unix, "request": post("/b", 10 + i), "expect": ['"echo": %d' % (10 + i)], "report": '"wall_ms": '},
    ]} for i in range(3)]
    rc, out, err = run({"clients": clients, "rounds": 5, "warmup": 2, "timeout_s": 30})
    assert rc == 0, err
    assert out["errors"] == 0 and out["first_error"] == ""
    assert [len(x) for x in out["latency_us"]] == [15, 15]  # 3 clients x 5 rounds per path
    assert out["sent"] == 3 * 7 * 2 and out["requests"] == 30
    assert sorted(out["reported"][0]) == sorted([0.0, 2.0, 4.0] * 5)
    assert sorted(out["reported"][1]) == sorted([20.0, 22.0, 24.0] * 5)
    assert all(us > 0 for x in out["latency_us"] for us in x)
    assert [len(x) for x in out["sent_at_us"]] == [15, 15]
    assert all(0 <= us <= out["wall_s"] * 1e6 for x in out["sent_at_us"] for us in x)


def test_paced_clients_keep_their_period(servers):
    tcp, _ = servers
    clients = [{"targets": [{"addr": tcp, "request": post("/p", 1)}]} for _ in range(4)]
    rc, out, err = run({"clients": clients, "rounds": 10, "warmup": 0, "period_ms": 50, "timeout_s": 30})
    assert rc == 0, err
    assert len(out["latency_us"][0]) == 40 and out["late_ticks"] == 0
    assert 0.45 <= out["wall_s"] < 2.0, out["wall_s"]  # 10 ticks of 50 ms, not back to back
    at = sorted(out["sent_at_us"][0])
    assert at[-1] - at[0] >= 440000, at  # the 40 requests spread over the 10 ticks
    gaps = [b - a for a, b in zip(at, at[1:])]
    assert max(gaps) < 30000, gaps  # 4 clients a tick, their ticks 12.5 ms apart


def test_a_wrong_answer_is_an_error_not_a_sample(servers):
    tcp, unix = servers
    clients = [{"targets": [{"addr": tcp, "request": post("/a", 1), "expect": ['"echo": 2']}]}]
    rc, out, _ = run({"clients": clients, "rounds": 3, "warmup": 0, "timeout_s": 30})
    assert rc == 1 and out["errors"] == 3 and out["latency_us"] == [[]]
    assert 'expected "echo": 2' in out["first_error"]
    clients = [{"targets": [{"addr": unix, "request": post("/a", -1)}]}]  # the server answers 500
    rc, out, _ = run({"clients": clients, "rounds": 2, "warmup": 0, "timeout_s": 30})
    assert rc == 1 and out["errors"] == 2 and "status 500" in out["first_error"]


@pytest.mark.parametrize("spec", [
    {},
    {"clients": [], "rounds": 1},
    {"clients": [{"targets": [{"addr": "udp:1.2.3.4:5", "request": "x"}]}], "rounds": 1},
    {"clients": [{"targets": [{"addr": "tcp:127.0.0.1:1", "request": "x"}]}], "rounds": 0},
    {"clients": [{"targets": [{"addr": "tcp:127.0.0.1:1", "request": "x"}]},
                 {"targets": [{"addr": "tcp:127.0.0.1:1", "request": "x"}] * 2}], "rounds": 1},
])
def test_a_bad_spec_is_refused(spec):
    rc, out, err = run(spec)
    assert rc == 2 and out is None and "bad spec" in err


def test_an_unreachable_target_is_refused():
    rc, out, err = run({"clients": [{"targets": [{"addr": "unix:/nonexistent/x.sock", "request": "x"}]}],
                        "rounds": 1})
    assert rc == 2 and "connect" in err
