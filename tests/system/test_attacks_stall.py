"""Red team round 2, issue 14 items 2 and 6, against a real sandboxd and a
real poold on loopback:

- a session fills /mnt/data with hundreds of thousands of hard links and
  lists it over and over: no other session's execution stalls past 1 s, none
  is lost, poold's memory comes back (docs/api.md "Files", paged lists);
- a listing is answered in bounded pages and the cursor walks every entry
  exactly once;
- one client holding more sockets than poold serves in all does not keep
  another client (another source address) from /healthz
  (docs/operations.md, max_connections_per_client).

Run as root: /usr/bin/python3 -m pytest tests/system/test_attacks_stall.py
"""

import resource
import socket
import threading
import time
import urllib.parse
import uuid

import pytest

import wpdaemons
from conftest import start_pair, stop_pair

UID_BASE = 372000
CAPACITY = 32
TOKEN = "stall-%s" % uuid.uuid4().hex
METRICS_TOKEN = "stall-metrics-%s" % uuid.uuid4().hex
API_OLD = "2024-02-02-preview"
API_NEW = "2024-10-02-preview"
LINKS = 600000  # hard links in the attacker's /mnt/data (made in a few seconds)
OTHERS = 20  # sessions running print(1) meanwhile
PAGE_MAX = 5000  # docs/api.md: the largest page a listing answers
PER_CLIENT = 768  # docs/operations.md: max_connections_per_client, 3/4 of max_connections by default


class Env:
    def __init__(self, sb, pd):
        self.sb = sb
        self.pd = pd
        self.c = pd.client(token=TOKEN, timeout=120)


@pytest.fixture(scope="module")
def env():
    pools = {"python": {"language": "python", "stateful": "yes", "warm": OTHERS + 2, "max": OTHERS + 6,
                        "idle_timeout": "5m"}}
    sb, pd = start_pair("STALL TESTS", "stall", UID_BASE, CAPACITY, pools,
                        tokens=[(TOKEN, "executor", "backend"), (METRICS_TOKEN, "metrics", "prom")],
                        extra_poold="default_pool = python\nmax_connections = 1024")
    yield Env(sb, pd)
    stop_pair(sb, pd, "stall suite")


def aca_url(path, ident, api=API_OLD):
    return "/pools/python/%s?identifier=%s&api-version=%s" % (path, urllib.parse.quote(ident), api)


def aca_exec(c, ident, code):
    return c.post(aca_url("code/execute", ident),
                  {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}})


def end_session(c, ident):
    c.delete(aca_url("session", ident))


def rss_kib(pid):
    st = wpdaemons.proc_status(pid)
    assert st, "process %s is gone" % pid
    return int(st["VmRSS"].split()[0])


def error_code(r):
    return r.body.get("error", {}).get("code") if isinstance(r.body, dict) else None


# --------------------------------------------------------------------------
# Item 2: a huge /mnt/data stalls nothing


def test_huge_listing_stalls_no_one(env):
    c = env.c
    attacker = "stall-%s" % uuid.uuid4()
    others = ["calm-%d-%s" % (i, uuid.uuid4()) for i in range(OTHERS)]
    try:
        for ident in others:  # every session has its slot before the attack
            r = aca_exec(c, ident, "print(1)")
            assert r.status == 200 and "1" in r.body["properties"]["stdout"], r
        t0 = time.monotonic()
        r = aca_exec(c, attacker, "import os\nos.chdir('/mnt/data')\nopen('seed', 'w').close()\n"
                                  "for i in range(%d):\n    os.link('seed', 'l%%07d' %% i)\n"
                                  "print(len(os.listdir('.')))" % LINKS)
        made = time.monotonic() - t0
        assert r.status == 200 and r.body["properties"]["stdout"].strip() == str(LINKS + 1), r
        rss0 = rss_kib(env.pd.pid)

        stop = threading.Event()
        slow, failed, lat = [], [], []

        def calm(ident):
            cc = env.pd.client(token=TOKEN, timeout=60)
            while not stop.is_set():
                t = time.monotonic()
                rr = aca_exec(cc, ident, "print(1)")
                took = time.monotonic() - t
                lat.append(took)
                if rr.status != 200 or "1" not in rr.body.get("properties", {}).get("stdout", ""):
                    failed.append((ident, rr))
                elif took > 1.0:
                    slow.append((ident, round(took, 2)))
                time.sleep(0.05)

        threads = [threading.Thread(target=calm, args=(i,)) for i in others]
        for t in threads:
            t.start()
        pages = sizes = 0
        seen = set()
        list_slow, list_lat = [], []
        try:
            # one full walk of the Azure list (nextLink), then the first page over and over
            url = aca_url("files", attacker, API_NEW)
            deadline = time.monotonic() + 40
            while url and time.monotonic() < deadline:
                t = time.monotonic()
                r = c.get(url, timeout=60)
                took = time.monotonic() - t
                list_lat.append(took)
                assert r.status == 200, r
                if took > 1.0:
                    list_slow.append(round(took, 2))
                pages += 1
                sizes = max(sizes, len(r.body["value"]))
                names = [e["name"] for e in r.body["value"]]
                assert not seen.intersection(names), "entries listed twice: %r" % sorted(seen.intersection(names))[:5]
                seen.update(names)
                url = r.body.get("nextLink")
            assert not url, "the walk of %d entries did not end in 40 s (%d pages)" % (LINKS + 1, pages)
            for _ in range(20):
                t = time.monotonic()
                r = c.get(aca_url("files", attacker), timeout=60)
                assert r.status == 200 and 0 < len(r.body["value"]) <= PAGE_MAX, r
                assert "$skipToken=" in r.body.get("nextLink", ""), "the older shape says nothing of more: %r" % r
                if time.monotonic() - t > 1.0:
                    list_slow.append(round(time.monotonic() - t, 2))
        finally:
            stop.set()
            for t in threads:
                t.join(90)
        assert not failed, "executions failed during the listing: %r" % failed[:5]
        assert not slow, "executions took more than 1 s during the listing: %r" % slow[:10]
        assert not list_slow, "list pages took more than 1 s: %r" % list_slow[:10]
        assert len(seen) == LINKS + 1, "the listing walked %d entries of %d" % (len(seen), LINKS + 1)
        assert sizes <= PAGE_MAX, "a page held %d entries" % sizes
        # one name, wherever it lies in the directory, without a walk
        t = time.monotonic()
        r = c.get(aca_url("files/l%07d" % (LINKS - 1), attacker, API_NEW))
        assert r.status == 200 and r.body["name"] == "l%07d" % (LINKS - 1), r
        assert time.monotonic() - t < 1.0
        info = c.get("/v1/pools/python")
        assert info.status == 200, info
        # poold's memory comes back: a listing holds at most a page
        ok = wpdaemons.wait_for(lambda: rss_kib(env.pd.pid) < rss0 + 32 * 1024, 5, 0.2)
        assert ok, "poold RSS %d KiB before the listing, %d KiB after" % (rss0, rss_kib(env.pd.pid))
        print("\nmade %d links in %.1f s; walked %d pages (slowest %.3f s); %d executions meanwhile "
              "(slowest %.3f s); poold RSS %d KiB before, %d KiB after"
              % (LINKS, made, pages, max(list_lat), len(lat), max(lat or [0]), rss0, rss_kib(env.pd.pid)))
    finally:
        for ident in others + [attacker]:
            end_session(c, ident)


# --------------------------------------------------------------------------
# Pages and cursors


def test_native_listing_pages_walk_every_entry_once(env):
    c = env.c
    ident = "pages-%s" % uuid.uuid4()
    base = "/v1/sessions/%s/files" % urllib.parse.quote(ident)
    want = {"f%02d.txt" % i for i in range(25)}
    try:
        for n in sorted(want):
            r = c.put("%s/%s?pool=python" % (base, n), n.encode())
            assert r.status == 201, r
        got, pages, after = [], 0, None
        while True:
            q = "?pool=python&limit=7" + ("&after=%s" % urllib.parse.quote(after) if after else "")
            r = c.get(base + q)
            assert r.status == 200, r
            assert len(r.body["files"]) <= 7, r
            assert "next" in r.body, "the answer does not say whether it is complete: %r" % (r,)
            got += [f["name"] for f in r.body["files"]]
            pages += 1
            after = r.body["next"]
            if after is None:
                break
            assert pages < 20, "the cursor does not advance: %r" % (r,)
        assert sorted(got) == sorted(want), got
        assert pages >= 4, pages
        one = c.get(base + "?pool=python")
        assert one.status == 200 and one.body["next"] is None and len(one.body["files"]) == 25, one
        for bad in ("limit=0", "limit=1000000", "limit=x", "after=nope", "after=-3"):
            r = c.get(base + "?pool=python&" + bad)
            assert r.status == 400 and error_code(r) == "BadRequest", (bad, r)
            assert "limit" in r.body["error"]["message"] or "after" in r.body["error"]["message"], (bad, r)
        # Azure: one entry by name is found whatever the list's size
        r = c.get(aca_url("files/f24.txt", ident, API_NEW))
        assert r.status == 200 and r.body["name"] == "f24.txt" and r.body["sizeInBytes"] == 7, r
        r = c.get(aca_url("files/nothere.txt", ident, API_NEW))
        assert r.status == 404 and error_code(r) == "FileNotFound", r
        r = c.get(aca_url("files", ident, API_NEW))
        assert r.status == 200 and len(r.body["value"]) == 25 and r.body.get("nextLink") is None, r
    finally:
        c.delete("/v1/sessions/%s?pool=python" % urllib.parse.quote(ident))


# --------------------------------------------------------------------------
# Item 6: one client cannot take every connection


def _idle_sockets(port, n, source="127.0.0.1"):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def _get_from(port, source, path="/healthz", token=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=3, source_address=(source, 0))
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (path, auth)).encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def test_one_client_cannot_take_every_connection(env):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    port = env.pd.port
    log0 = env.pd.log_size()
    socks = _idle_sockets(port, 1100)
    try:
        time.sleep(0.5)  # poold has accepted (and refused) them all
        for attempt in range(5):
            try:
                data = _get_from(port, "127.0.0.2")
            except OSError as e:
                data = repr(e).encode()
            assert data.startswith(b"HTTP/1.1 200"), \
                "attempt %d: /healthz from 127.0.0.2 while 127.0.0.1 holds 1100 sockets: %r" % (attempt, data[:200])
            time.sleep(0.2)
        # the same client's sockets past its cap were closed by poold
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        assert closed >= 1100 - PER_CLIENT, "only %d of 1100 sockets of one client were refused" % closed
        m = _get_from(port, "127.0.0.3", "/metrics", METRICS_TOKEN)
        assert m.startswith(b"HTTP/1.1 200"), m[:300]
        text = m.decode()
        refused = [l for l in text.splitlines() if l.startswith("warmpool_http_connections_refused_total{")]
        assert sum(float(l.split()[-1]) for l in refused) >= 1100 - PER_CLIENT, refused or text[:2000]
        log = env.pd.log_text(start=log0)
        assert "connections" in log and "127.0.0.1" in log, log[-3000:]
    finally:
        for s in socks:
            s.close()
