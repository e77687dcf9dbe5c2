"""TLS (issue 16): mutual TLS between poold and sandboxd, TLS on poold's
public listener, for real on loopback.

The certificates are made by deploy/tools/make-certs.sh (the documented way)
in a temp dir: a CA, poold's client certificate, one server certificate per
node; a second CA, an expired client certificate and one with another name
for the refusals. Two sandboxd serve `listen_tcp = tls://127.0.0.1:PORT`
(their unix socket stays, for the fixtures' health checks); poold reaches
them over https:// with its client certificate.

What a user checks: a session and an /execute run through poold over mTLS;
a client without a certificate, with one from another CA, an expired one,
one not named as pinned, and a sandboxd whose certificate does not carry the
name poold dials are refused, and the refusal is in the log; plain HTTP to a
TLS port gets a 400 TlsRequired; a certificate rotated by SIGHUP while a
session runs (the session keeps going, new connections see the new one);
poolctl over HTTPS; the protocol and ciphers as `openssl s_client` sees them
(TLS 1.3 only on the mTLS port); the expiry gauge in /metrics; the configs
that must be refused.

Run as root: /usr/bin/python3 -m pytest tests/system/test_tls.py
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wpdaemons as wp  # noqa: E402

MAKE_CERTS = os.path.join(wp.REPO, "deploy", "tools", "make-certs.sh")
POOLCTL = os.path.join(wp.REPO, "bin", "poolctl")
UID_SB1, UID_SB2, UID_WRONG = 386000, 386100, 386200
TOKEN = "tls-test-token-%s" % os.urandom(6).hex()
CODE = "print(sum(map(int, input().split())))"


def need_root():
    if os.geteuid() != 0:
        pytest.skip("NOT ROOT — sandboxd needs root; TLS system tests skipped")


def make_certs(d, *args):
    r = subprocess.run(["sh", MAKE_CERTS, "-d", d, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    return r.stdout


def openssl(*args, stdin=""):
    r = subprocess.run(["openssl", *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=30)
    return r.returncode, r.stdout


def fingerprint(pem_text_or_file):
    if os.path.exists(pem_text_or_file):
        rc, out = openssl("x509", "-in", pem_text_or_file, "-noout", "-fingerprint", "-sha256")
    else:
        rc, out = openssl("x509", "-noout", "-fingerprint", "-sha256", stdin=pem_text_or_file)
    assert rc == 0, out
    return out.strip().split("=", 1)[1]


def not_after(pem_file):
    rc, out = openssl("x509", "-in", pem_file, "-noout", "-enddate")
    assert rc == 0, out
    return ssl.cert_time_to_seconds(out.strip().split("=", 1)[1])


class TLSClient(wp._Client):
    """HTTPS with a CA file and, optionally, a client certificate."""

    def __init__(self, host, port, ca, cert=None, key=None, server_name="localhost", timeout=30):
        self.host, self.port, self.timeout = host, port, timeout
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(ca)
        if cert:
            self.ctx.load_cert_chain(cert, key)
        self.server_name = server_name
        self.token = None

    def _connection(self, timeout):
        c = http.client.HTTPSConnection(self.server_name, self.port, timeout=timeout, context=self.ctx)
        # dial the address, verify the name
        c._create_connection = lambda addr, *a, **kw: socket.create_connection((self.host, self.port), *a, **kw)
        return c

    def _default_headers(self):
        return {"Authorization": "Bearer %s" % self.token} if self.token else {}


@pytest.fixture(scope="module")
def certs():
    d = wp.make_tmpdir("wp-tls-certs-")
    other = wp.make_tmpdir("wp-tls-other-")
    make_certs(d, "sb1,localhost,127.0.0.1", "sb2,localhost,127.0.0.1", "wrong,other.example",
               "poold-public,localhost,127.0.0.1")
    expired = wp.make_tmpdir("wp-tls-expired-")
    for f in ("ca.crt", "ca.key"):  # the same CA, the pinned name, already expired
        shutil.copy(os.path.join(d, f), expired)
    make_certs(expired, "--no-ca", "--days", "-1", "--client", "poold")
    make_certs(d, "--client", "stranger")  # the same CA, not the name sandboxd pins
    make_certs(other, "--client", "poold")  # the name sandboxd pins, another CA
    c = {"dir": d, "ca": os.path.join(d, "ca.crt"), "other": other}
    for n in ("sb1", "sb2", "wrong", "poold-public", "poold", "stranger"):
        c[n] = (os.path.join(d, n + ".crt"), os.path.join(d, n + ".key"))
    c["expired"] = (os.path.join(expired, "poold.crt"), os.path.join(expired, "poold.key"))
    c["other_poold"] = (os.path.join(other, "poold.crt"), os.path.join(other, "poold.key"))
    yield c
    shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(other, ignore_errors=True)
    shutil.rmtree(expired, ignore_errors=True)


def tls_sandboxd(certs, name, uid, port, capacity=8):
    cert, key = certs[name]
    extra = "\n".join([
        "listen_tcp = tls://127.0.0.1:%d" % port,
        "tls_cert = %s" % cert,
        "tls_key = %s" % key,
        "tls_client_ca = %s" % certs["ca"],
        "tls_client_name = poold",
    ])
    sb = wp.Sandboxd(wp.make_tmpdir("wp-tls-%s-" % name), uid_base=uid, capacity=capacity,
                     cgroup_name="warmpool-tls-%d-%d" % (os.getpid(), uid), extra=extra)
    sb.tls_port = port
    return sb


@pytest.fixture(scope="module")
def nodes(certs):
    need_root()
    sbs = [tls_sandboxd(certs, "sb1", UID_SB1, wp.free_port()), tls_sandboxd(certs, "sb2", UID_SB2, wp.free_port())]
    try:
        for sb in sbs:
            sb.start()
        yield sbs
    finally:
        problems = []
        for sb in sbs:
            problems += sb.cleanup()
        assert not problems, problems


def node_conf(certs):
    return "\n".join(["node_tls_ca = %s" % certs["ca"], "node_tls_cert = %s" % certs["poold"][0],
                      "node_tls_key = %s" % certs["poold"][1]])


@pytest.fixture
def make_poold(certs):
    made = []

    def make(nodes, extra="", tokens=None, **kw):
        pd = wp.Poold(wp.make_tmpdir("wp-tls-poold-"), nodes=nodes, extra_poold=node_conf(certs) + "\n" + extra,
                      tokens=tokens, pools={"python": {"language": "python", "warm": 2, "max": 8,
                                                       "idle_timeout": "5m"}}, **kw)
        made.append(pd)
        return pd

    yield make
    for pd in made:
        pd.cleanup()


def wait_nodes_up(pd, names, timeout=20):
    def up():
        r = pd.client(token=TOKEN if pd.tokens else None).get("/v1/nodes")
        return r.status == 200 and {n["name"] for n in r.body["nodes"] if n["up"]} >= set(names) and r.body
    assert wp.wait_for(up, timeout), pd.client(token=TOKEN if pd.tokens else None).get("/v1/nodes").body


def sb_client(sb, certs, who="poold"):
    cert, key = certs[who] if who else (None, None)
    return TLSClient("127.0.0.1", sb.tls_port, certs["ca"], cert, key)


def run_session(c, sid, stdin="1 2\n", expected="3\n"):
    r = c.post("/v1/sessions/%s/run?pool=python" % sid, {"source": CODE, "tests": [{"stdin": stdin, "expected": expected}]})
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    return r


# ---------------------------------------------------------------- the happy path


def test_poold_to_two_sandboxd_over_mutual_tls(nodes, certs, make_poold):
    """poold reaches both nodes over https:// with its client certificate:
    both come up, sessions run on both, /execute runs, and the nodes' and
    poold's certificates show in /metrics with their not-after times."""
    sb1, sb2 = nodes
    pd = make_poold({"sb1": "https://localhost:%d" % sb1.tls_port, "sb2": "https://127.0.0.1:%d" % sb2.tls_port})
    pd.start()
    wait_nodes_up(pd, ["sb1", "sb2"])
    c = pd.client()
    where = set()
    for i in range(8):
        run_session(c, "tls-user-%d" % i)
        where.add(c.get("/v1/sessions/tls-user-%d?pool=python" % i).body["node"])
        if where == {"sb1", "sb2"}:
            break
    assert where == {"sb1", "sb2"}, where
    r = c.post("/execute", {"language": "python", "code": CODE, "user_id": "u1", "question_id": "q1",
                            "test_cases": [{"input": "2 3\n", "expected_output": "5\n"}]})
    assert r.status == 200 and r.body["summary"]["all_passed"], r
    # the mTLS port itself answers poold's certificate
    info = sb_client(sb1, certs).get("/v1/info")
    assert info.status == 200 and info.body["tls_not_after"] == int(not_after(certs["sb1"][0])), info
    # the expiry gauge: every certificate, with its not-after time
    m = c.get("/metrics").body.decode() if isinstance(c.get("/metrics").body, bytes) else c.get("/metrics").body
    series = dict(re.findall(r'^(warmpool_tls_cert_expiry_timestamp_seconds\{[^}]*\}) (\S+)$', m, re.M))
    want = {("sandboxd", "node_server", "sb1"): not_after(certs["sb1"][0]),
            ("sandboxd", "node_server", "sb2"): not_after(certs["sb2"][0]),
            ("poold", "node_client", "sb1"): not_after(certs["poold"][0]),
            ("poold", "node_ca", "sb2"): not_after(certs["ca"])}
    for (daemon, role, node), t in want.items():
        hits = [float(v) for k, v in series.items()
                if 'daemon="%s"' % daemon in k and 'role="%s"' % role in k and 'node="%s"' % node in k]
        assert hits and abs(hits[0] - t) < 2, (daemon, role, node, t, series)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("who,reason", [
    (None, "did not return a certificate"),
    ("other_poold", "unable to get local issuer certificate"),
    ("expired", "certificate has expired"),
    ("stranger", "hostname mismatch"),
])
def test_sandboxd_refuses_bad_clients(nodes, certs, who, reason):
    """No client certificate, one from another CA, an expired one, and one
    signed by the right CA but not named `poold` (tls_client_name): each
    gets no answer, and sandboxd logs the refusal with the reason. The right
    certificate on the same port is answered."""
    sb = nodes[0]
    start = len(sb.log_text(limit=10 ** 8))
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
        r = sb_client(sb, certs, who).get("/v1/info")
        pytest.fail("answered without a valid client certificate: %r" % (r,))
    assert wp.wait_for(lambda: "TLS connection refused" in sb.log_text(start) and reason in sb.log_text(start), 5), \
        sb.log_text(start)
    assert sb_client(sb, certs).get("/v1/info").status == 200


def test_poold_refuses_a_sandboxd_with_the_wrong_name(nodes, certs, make_poold):
    """A sandboxd whose certificate (same CA) does not carry the name poold
    dials is never used: the node stays down, the log says why."""
    need_root()
    sb = tls_sandboxd(certs, "wrong", UID_WRONG, wp.free_port(), capacity=4)
    try:
        sb.start()
        pd = make_poold({"sb1": "https://localhost:%d" % nodes[0].tls_port,
                         "bad": "https://localhost:%d" % sb.tls_port})
        pd.start()
        wait_nodes_up(pd, ["sb1"])
        assert wp.wait_for(lambda: "node bad" in pd.log_text() and "is down" in pd.log_text(), 10), pd.log_text()
        line = [x for x in pd.log_text().splitlines() if "node bad" in x and "is down" in x][0]
        assert "localhost" in line and ("certificate" in line or "host name" in line), line
        nodes_ = {n["name"]: n for n in pd.client().get("/v1/nodes").body["nodes"]}
        assert nodes_["bad"]["up"] is False and nodes_["sb1"]["up"] is True, nodes_
        # and the wrong node saw poold's good certificate: the refusal was poold's
        assert "TLS connection refused" not in sb.log_text() or "did not return" not in sb.log_text()
    finally:
        assert not sb.cleanup()


def raw_exchange(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out


def test_plain_http_to_a_tls_port_is_refused(nodes):
    """Plain HTTP on the mTLS port: a 400 in clear saying the port speaks
    HTTPS (what to change), nothing of the API, and a log line."""
    sb = nodes[0]
    start = len(sb.log_text(limit=10 ** 8))
    out = raw_exchange(sb.tls_port, b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), out
    err = json.loads(body)["error"]
    assert err["code"] == "TlsRequired" and "https://" in err["message"], err
    assert b"capacity" not in out
    assert wp.wait_for(lambda: "plain HTTP on a TLS port" in sb.log_text(start), 5), sb.log_text(start)


def test_handshakes_do_not_block_the_loop(nodes, certs):
    """A client that opens the TLS port and stays silent, and one that sends
    half a ClientHello, hold nobody up: a good client is served meanwhile;
    the silent ones are closed after the handshake timeout (10 s)."""
    sb = nodes[0]
    start = len(sb.log_text(limit=10 ** 8))
    silent = socket.create_connection(("127.0.0.1", sb.tls_port))
    half = socket.create_connection(("127.0.0.1", sb.tls_port))
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    try:
        t0 = time.monotonic()
        assert sb_client(sb, certs).get("/v1/info").status == 200
        assert time.monotonic() - t0 < 2
        silent.settimeout(15)
        t0 = time.monotonic()
        assert silent.recv(100) == b""  # closed by sandboxd
        assert 5 < time.monotonic() - t0 < 14
        assert wp.wait_for(lambda: "handshake not finished in time" in sb.log_text(start), 5), sb.log_text(start)
    finally:
        silent.close()
        half.close()


# ---------------------------------------------------------------- protocol and ciphers


def s_client(port, *args):
    return openssl("s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost", *args, stdin="")


def test_mtls_port_speaks_tls13_only(nodes, certs):
    """openssl s_client: TLS 1.3 with the client certificate works and
    names an AEAD suite; TLS 1.2 (and below) is refused whatever the client
    offers; the server asks for a certificate of our CA."""
    sb = nodes[0]
    cert, key = certs["poold"]
    rc, out = s_client(sb.tls_port, "-tls1_3", "-cert", cert, "-key", key, "-CAfile", certs["ca"], "-verify_return_error")
    assert rc == 0 and re.search(r"Protocol\s*:\s*TLSv1\.3", out) or "New, TLSv1.3" in out, out
    m = re.search(r"Cipher is (\S+)", out)
    assert m and m.group(1) in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"), out
    assert "Verify return code: 0 (ok)" in out, out
    assert "warmpool CA" in out.split("Acceptable client certificate CA names", 1)[1][:300], out
    for old in ("-tls1_2", "-tls1_1"):
        rc, out = s_client(sb.tls_port, old, "-cert", cert, "-key", key, "-CAfile", certs["ca"])
        assert rc != 0 and "Cipher is (NONE)" in out or "alert" in out.lower(), (old, out)


def test_poold_public_listener_tls(nodes, certs, make_poold):
    """listen_tls: TLS 1.2 and 1.3 with forward-secret AEAD suites only (no
    TLS 1.1, no RSA key exchange, no CBC-SHA1); /healthz over it; plain HTTP
    on it refused; poolctl over HTTPS with --cacert (and WARMPOOL_CACERT),
    refused without the CA."""
    port = wp.free_port()
    cert, key = certs["poold-public"]
    pd = make_poold({"sb1": "https://localhost:%d" % nodes[0].tls_port},
                    extra="listen_tls = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s" % (port, cert, key),
                    tokens=[(TOKEN, "admin", "ops")])
    pd.start()
    wait_nodes_up(pd, ["sb1"])
    c = TLSClient("127.0.0.1", port, certs["ca"])
    assert c.get("/healthz").status == 200
    rc, out = s_client(port, "-tls1_2", "-CAfile", certs["ca"], "-verify_return_error")
    assert rc == 0 and re.search(r"Cipher is ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)", out), out
    rc, out = s_client(port, "-tls1_3", "-CAfile", certs["ca"], "-verify_return_error")
    assert rc == 0 and "TLSv1.3" in out, out
    rc, out = s_client(port, "-tls1_1", "-CAfile", certs["ca"])
    assert rc != 0, out
    rc, out = s_client(port, "-tls1_2", "-cipher", "AES128-SHA:AES256-SHA:ECDHE-ECDSA-AES128-SHA", "-CAfile", certs["ca"])
    assert rc != 0, out
    out = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") and b"TlsRequired" in out, out

    env = dict(os.environ, WARMPOOL_URL="https://localhost:%d" % port, WARMPOOL_TOKEN=TOKEN)
    for k in ("WARMPOOL_CACERT", "WARMPOOL_CERT", "WARMPOOL_KEY"):
        env.pop(k, None)
    r = subprocess.run([POOLCTL, "pools", "--cacert", certs["ca"]], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0 and "python" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([POOLCTL, "run", "--session", "ctl-1", "--pool", "python", "-"], input="print(6*7)\n",
                       env=dict(env, WARMPOOL_CACERT=certs["ca"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode == 0 and "42" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([POOLCTL, "pools"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    assert r.returncode == 3 and "certificate" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


# ---------------------------------------------------------------- rotation


def test_sighup_rotates_the_certificate_while_a_session_runs(nodes, certs, make_poold):
    """A new certificate and key for sb1 (same CA, 30 days), then SIGHUP to
    sandboxd: the session leased before keeps running, a new connection is
    served the new certificate, and poold's gauge shows the new end date.
    A broken file on a later SIGHUP keeps the working certificate."""
    sb1 = nodes[0]
    pd = make_poold({"sb1": "https://localhost:%d" % sb1.tls_port})
    pd.start()
    wait_nodes_up(pd, ["sb1"])
    c = pd.client()
    run_session(c, "rotating")
    old_fp = fingerprint(certs["sb1"][0])
    for f in certs["sb1"]:
        os.unlink(f)
    make_certs(certs["dir"], "--days", "30", "sb1,localhost,127.0.0.1")
    new_fp = fingerprint(certs["sb1"][0])
    assert new_fp != old_fp
    start = len(sb1.log_text(limit=10 ** 8))
    sb1.signal(signal.SIGHUP)
    assert wp.wait_for(lambda: "TLS certificates reloaded" in sb1.log_text(start), 5), sb1.log_text(start)
    run_session(c, "rotating", "20 22\n", "42\n")  # the same session, on the node, after the reload
    assert c.get("/v1/sessions/rotating?pool=python").body["node"] == "sb1"
    rc, out = s_client(sb1.tls_port, "-cert", certs["poold"][0], "-key", certs["poold"][1], "-CAfile", certs["ca"],
                       "-verify_return_error")
    assert rc == 0, out
    served = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S).group(0)
    assert fingerprint(served) == new_fp
    want = not_after(certs["sb1"][0])

    def gauge():
        m = c.get("/metrics").body
        m = m.decode() if isinstance(m, bytes) else m
        v = re.search(r'^warmpool_tls_cert_expiry_timestamp_seconds\{[^}]*role="node_server"[^}]*node="sb1"[^}]*\} (\S+)',
                      m, re.M)
        return v and abs(float(v.group(1)) - want) < 2
    assert wp.wait_for(gauge, 10)
    # a key that does not load: the log says so, the port keeps serving
    with open(certs["sb1"][1], "w") as f:
        f.write("not a key\n")
    start = len(sb1.log_text(limit=10 ** 8))
    sb1.signal(signal.SIGHUP)
    assert wp.wait_for(lambda: "not reloaded, the old ones stay" in sb1.log_text(start), 5), sb1.log_text(start)
    assert sb_client(sb1, certs).get("/v1/info").status == 200
    run_session(c, "rotating", "1 1\n", "2\n")


# ---------------------------------------------------------------- configuration


def sandboxd_check(tmp_path, extra):
    sb = wp.Sandboxd(str(tmp_path), uid_base=UID_SB1, capacity=4, extra=extra)
    r = subprocess.run([wp.SANDBOXD, "--check-config", "--config", sb.config], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30)
    return r.returncode, r.stdout


def test_sandboxd_refuses_tcp_without_tls(tmp_path, certs):
    """TCP without TLS: refused on any address but loopback, and there only
    with `insecure = yes`; each error says what to write instead. tls://
    wants the certificate, key and client CA."""
    rc, out = sandboxd_check(tmp_path, "listen_tcp = 0.0.0.0:9091")
    assert rc != 0 and "tls://0.0.0.0:9091" in out and "tls_client_ca" in out, out
    rc, out = sandboxd_check(tmp_path, "listen_tcp = 0.0.0.0:9091\ninsecure = yes")
    assert rc != 0 and "non-loopback" in out, out
    rc, out = sandboxd_check(tmp_path, "listen_tcp = 127.0.0.1:9091")
    assert rc != 0 and "insecure = yes" in out and "tls://127.0.0.1:9091" in out, out
    rc, out = sandboxd_check(tmp_path, "listen_tcp = 127.0.0.1:9091\ninsecure = yes")
    assert rc == 0, out
    rc, out = sandboxd_check(tmp_path, "listen_tcp = tls://0.0.0.0:9091\ntls_cert = %s\ntls_key = %s" % certs["sb1"])
    assert rc != 0 and "tls_client_ca" in out, out
    rc, out = sandboxd_check(tmp_path, "listen_tcp = tls://0.0.0.0:9091\ntls_cert = %s\ntls_key = %s\n"
                                       "tls_client_ca = %s" % (certs["sb1"] + (certs["ca"],)))
    assert rc == 0, out


def test_poold_tls_config_rules(tmp_path, certs):
    """poold: a non-loopback plain listener with tokens is refused unless a
    proxy terminates TLS (said with tls_terminated_by_proxy); listen_tls
    wants tls_cert and tls_key; an https:// node wants its CA, certificate
    and key; tls_* keys on an http:// node are a mistake."""
    def check(poold_part, node_url="https://sb1.example:9091", node_part=""):
        p = tmp_path / "poold.conf"
        p.write_text("[poold]\n%s\n[auth]\ntoken = %s admin ops\n[node:a]\nurl = %s\n%s\n[pool:p]\nlanguage = python\n"
                     % (poold_part, wp.hash_token(TOKEN), node_url, node_part))
        return wp.check_config(str(p))

    nc = node_conf(certs)
    rc, out = check("listen = 0.0.0.0:8080\n" + nc)
    assert rc != 0 and "listen_tls" in out and "tls_terminated_by_proxy" in out, out
    rc, out = check("listen = 0.0.0.0:8080\ntls_terminated_by_proxy = yes\n" + nc)
    assert rc == 0, out
    rc, out = check("listen = 127.0.0.1:8080\nlisten_tls = 0.0.0.0:8443\n" + nc)
    assert rc != 0 and "tls_cert" in out, out
    rc, out = check("listen_tls = 0.0.0.0:8443\ntls_cert = %s\ntls_key = %s\n%s" % (certs["poold-public"] + (nc,)))
    assert rc == 0 and "listen_tls" in out and "mutual TLS" in out, out
    rc, out = check("listen = 127.0.0.1:8080")
    assert rc != 0 and "tls_ca" in out and "node_tls_ca" in out, out
    rc, out = check("listen = 127.0.0.1:8080", "https://sb1.example:9091",
                    "tls_ca = %s\ntls_cert = %s\ntls_key = %s" % ((certs["ca"],) + certs["poold"]))
    assert rc == 0, out
    rc, out = check("listen = 127.0.0.1:8080", "http://sb1.example:9091", "tls_ca = %s" % certs["ca"])
    assert rc != 0 and "not https://" in out, out


def test_dns_discovered_nodes_over_mutual_tls(nodes, certs, make_poold):
    """`dns = https://NAME:PORT` (what Kubernetes' headless Service uses):
    each address becomes a node reached over mutual TLS, its certificate
    verified as NAME, not as the address."""
    sb1 = nodes[0]
    pd = make_poold({"grp": "x"}, extra="")
    pd.nodes = {}
    pd.extra_poold += "\n[node:grp]\ndns = https://localhost:%d\n" % sb1.tls_port
    pd.write_config()
    pd.start()
    wait_nodes_up(pd, ["grp-127.0.0.1"])
    node = {n["name"]: n for n in pd.client().get("/v1/nodes").body["nodes"]}["grp-127.0.0.1"]
    assert node["url"] == "https://localhost:%d" % sb1.tls_port, node
    run_session(pd.client(), "dns-tls")
