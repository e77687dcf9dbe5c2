"""poold over time, against real sandboxd nodes: idle timeout and
replacement, max lifetime, resize under load, drain, kill -9 and restart,
SIGTERM, two nodes on one machine and the loss of one.

Issue 3, Tests section. Run as root: /usr/bin/python3 -m pytest tests/system/test_poold_lifecycle.py
"""

import signal
import threading
import time
import uuid

import pytest

import wpdaemons
from conftest import (
    assert_error,
    execute,
    metric_value,
    metrics_text,
    node_slots,
    pool_info,
    session_info,
    session_run,
    wait_pool,
)

WRITE = "import sys\nopen('/mnt/data/mine.txt', 'w').write(sys.stdin.read())\nprint('ok')\n"
READ = "import os\np = '/mnt/data/mine.txt'\nprint(open(p).read() if os.path.exists(p) else 'NONE')\n"


def uid(prefix="s"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def ok_run(c, ident, source, tests, pool="python"):
    r = session_run(c, ident, source, tests, pool=pool)
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    return r


def slot_of(c, ident, pool="python"):
    r = session_info(c, ident, pool)
    assert r.status == 200, r
    return r.body["slot"]


def slot_gone(sb, slot):
    return sb.client().get("/v1/slots/%s" % slot).status == 404


# ---------------------------------------------------------------- timeouts


def test_idle_timeout_and_replacement(make_poold, pool_node):
    pd = make_poold(pools={"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "2s"}})
    c = pd.client()
    kept, idle = uid(), uid()
    ok_run(c, kept, WRITE, [("kept", "ok")])
    ok_run(c, idle, WRITE, [("idle", "ok")])
    kept_slot, idle_slot = slot_of(c, kept), slot_of(c, idle)
    wait_pool(c, "python", lambda p: p["ready"] == 2 and p["leased"] == 2, 10)
    # every call resets the idle timer: 4 s of calls 0.7 s apart keep `kept`
    t_end = time.monotonic() + 4
    while time.monotonic() < t_end:
        ok_run(c, kept, READ, [("", "kept")])
        time.sleep(0.7)
    assert slot_of(c, kept) == kept_slot
    # `idle` had no call for 4 s: its lease ended, its slot is destroyed on the node
    assert_error(session_info(c, idle), 404, "SessionNotFound")
    assert wpdaemons.wait_for(lambda: slot_gone(pool_node, idle_slot), 5), "idle slot still on the node"
    assert not node_slots(pool_node, label="python/" + idle)
    # and the pool is back to warm ready slots, nothing leaked
    p = wait_pool(c, "python", lambda p: p["ready"] == 2 and p["leased"] == 1 and p["creating"] == 0, 10)
    assert len(node_slots(pool_node)) == 3, (p, node_slots(pool_node))
    # the same identifier again: a fresh slot, without the old files
    ok_run(c, idle, READ, [("", "NONE")])
    assert slot_of(c, idle) != idle_slot
    # then `kept` times out too once left alone
    assert wpdaemons.wait_for(lambda: session_info(c, kept).status == 404, 5), session_info(c, kept)
    assert wpdaemons.wait_for(lambda: slot_gone(pool_node, kept_slot), 5)


def test_max_lifetime(make_poold, pool_node):
    pd = make_poold(pools={"python": {"language": "python", "warm": 1, "max": 4, "idle_timeout": "1m",
                                      "max_lifetime": "2s"}})
    c = pd.client()
    s = uid()
    ok_run(c, s, WRITE, [("x", "ok")])
    slot = slot_of(c, s)
    assert wpdaemons.wait_for(lambda: session_info(c, s).status == 404, 5), "lease outlived max_lifetime"
    assert wpdaemons.wait_for(lambda: slot_gone(pool_node, slot), 5)
    ok_run(c, s, READ, [("", "NONE")])
    assert slot_of(c, s) != slot


# ---------------------------------------------------------------- resize, drain


class Load:
    """Sessions that run code again and again in threads, recording every
    answer that is not a 200 accepted, and the slot each session ran in."""

    def __init__(self, c, idents):
        self.c, self.idents = c, idents
        self.errors, self.count = [], 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(i,), daemon=True) for i in idents]

    def loop(self, ident):
        n = 0
        while not self.stop.is_set():
            n += 1
            r = session_run(self.c, ident, "print(%d)" % n, [("", "%d" % n)], timeout=30)
            if r.status != 200 or r.body.get("verdict") != "accepted":
                self.errors.append(r)
            self.count += 1
            time.sleep(0.03)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_resize_under_load(make_poold, pool_node):
    pd = make_poold(pools={"python": {"language": "python", "warm": 2, "max": 6, "idle_timeout": "5m"}},
                    extra_poold="queue_timeout = 1s")
    c = pd.client()
    idents = [uid("load") for _ in range(4)]
    for i in idents:
        ok_run(c, i, "print(0)", [("", "0")])
    slots = {i: slot_of(c, i) for i in idents}
    wait_pool(c, "python", lambda p: p["ready"] == 2 and p["leased"] == 4, 10)
    with Load(c, idents) as load:
        # up: more warm slots at once, without restart
        r = c.patch("/v1/pools/python", {"warm": 6, "max": 12, "idle_timeout_s": 120, "max_lifetime_s": 7200})
        assert r.status == 200, r
        assert (r.body["warm"], r.body["max"], r.body["idle_timeout_s"], r.body["max_lifetime_s"]) == (6, 12, 120, 7200)
        p = wait_pool(c, "python", lambda p: p["ready"] == 6, 10, "6 ready after warm 6")
        assert p["ready"] + p["leased"] + p["creating"] <= 12, p
        assert len(node_slots(pool_node)) == 10
        # new sessions lease from the bigger pool
        extra = [uid("extra") for _ in range(2)]
        for e in extra:
            ok_run(c, e, "print(1)", [("", "1")])
        wait_pool(c, "python", lambda p: p["ready"] == 6 and p["leased"] == 6, 10)
        # down below what is leased: ready slots go, leased ones never
        r = c.patch("/v1/pools/python", {"warm": 0, "max": 3})
        assert r.status == 200 and (r.body["warm"], r.body["max"]) == (0, 3), r
        wait_pool(c, "python", lambda p: p["ready"] == 0 and p["creating"] == 0, 10, "ready slots gone")
        assert wpdaemons.wait_for(lambda: len(node_slots(pool_node)) == 6, 10), node_slots(pool_node)
        time.sleep(1.0)  # the load goes on meanwhile
        # at max (6 leased > 3): a new session waits queue_timeout, then 503
        t0 = time.monotonic()
        r = session_run(c, uid("new"), "print(1)", [("", "1")])
        assert_error(r, 503, "PoolExhausted")
        assert time.monotonic() - t0 >= 0.8
        # releasing down to max: still full; below max: served
        for e in extra:
            assert c.delete("/v1/sessions/%s?pool=python" % e).status == 204
        assert_error(session_run(c, uid("new"), "print(1)", [("", "1")]), 503, "PoolExhausted")
        r = c.patch("/v1/pools/python", {"max": 5})
        assert r.status == 200, r
        ok_run(c, uid("new"), "print(1)", [("", "1")])
        p = pool_info(c)
        assert p["leased"] == 5 and p["ready"] == 0, p
        time.sleep(0.5)
    assert load.count > 20, "the load did not run: %d executions" % load.count
    assert not load.errors, "leased sessions failed during resizing: %r" % load.errors[:5]
    assert {i: slot_of(c, i) for i in idents} == slots, "a leased session changed slot during resizing"


def test_drain(make_poold, pool_node):
    pd = make_poold(pools={"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"}})
    c = pd.client()
    s = uid()
    ok_run(c, s, WRITE, [("before drain", "ok")])
    slot = slot_of(c, s)
    wait_pool(c, "python", lambda p: p["ready"] == 2, 10)
    r = c.post("/v1/pools/python/drain")
    assert r.status == 200 and r.body["draining"] is True, r
    assert metric_value(metrics_text(c), "warmpool_pool_draining", pool="python") == 1
    # no new leases...
    r = session_run(c, uid(), "print(1)", [("", "1")])
    assert r.status == 503 and r.error_code() in ("PoolUnavailable", "PoolDraining"), r
    assert "retry-after" in r.headers, r.headers
    r = execute(c, "python", "print(1)", uid(), [("", "1")])
    assert r.status == 503, r
    # ...but the leased session goes on in its slot
    ok_run(c, s, READ, [("", "before drain")])
    assert slot_of(c, s) == slot
    assert pool_info(c)["leased"] == 1
    # it finishes: released, the pool holds no lease
    assert c.delete("/v1/sessions/%s?pool=python" % s).status == 204
    assert wpdaemons.wait_for(lambda: slot_gone(pool_node, slot), 5)
    p = wait_pool(c, "python", lambda p: p["leased"] == 0, 5)
    assert p["draining"] is True
    # undrain: leases again, warm again
    r = c.post("/v1/pools/python/undrain")
    assert r.status == 200 and r.body["draining"] is False, r
    ok_run(c, uid(), "print(1)", [("", "1")])
    wait_pool(c, "python", lambda p: p["ready"] == 2 and p["leased"] == 1, 10)


# ---------------------------------------------------------------- restarts


POOLS_2 = {"python": {"language": "python", "warm": 2, "max": 10, "idle_timeout": "5m"},
           "javascript": {"language": "javascript", "warm": 1, "max": 5, "idle_timeout": "5m"}}


def test_kill9_poold_and_recover(make_poold, pool_node):
    pd = make_poold(pools=POOLS_2)
    c = pd.client()
    py = [uid("py") for _ in range(4)]
    js = [uid("js") for _ in range(2)]
    for i in py:
        ok_run(c, i, WRITE, [("content of " + i, "ok")])
    for i in js:
        r = c.put("/v1/sessions/%s/files/mine.txt?pool=javascript" % i, ("content of " + i).encode())
        assert r.status == 201, r
    # a python session with files only (no run yet)
    files_only = uid("fo")
    assert c.put("/v1/sessions/%s/files/mine.txt?pool=python" % files_only, b"files only").status == 201
    before = {(s["pool"], s["identifier"]): (s["slot"], s["node"]) for s in c.get("/v1/sessions").body["sessions"]}
    assert len(before) == 7
    wait_pool(c, "python", lambda p: p["ready"] == 2, 10)
    wait_pool(c, "javascript", lambda p: p["ready"] == 1, 10)
    pd.kill9()
    # the sessions are still leased on the node, by label
    labels = {s["label"] for s in node_slots(pool_node) if s["label"]}
    assert labels == {"%s/%s" % k for k in before}, labels
    t0 = time.monotonic()
    pd.start()
    restart = time.monotonic() - t0
    after = {(s["pool"], s["identifier"]): (s["slot"], s["node"]) for s in c.get("/v1/sessions").body["sessions"]}
    assert after == before, "lease table not rebuilt:\nbefore %r\nafter  %r" % (before, after)
    for i in py:
        ok_run(c, i, READ, [("", "content of " + i)])
    ok_run(c, files_only, READ, [("", "files only")])
    for i in js:
        r = session_run(c, i, "console.log(require('fs').readFileSync('/mnt/data/mine.txt', 'utf8'))",
                        [("", "content of " + i)], pool="javascript")
        assert r.status == 200 and r.body["verdict"] == "accepted", r
    after = {(s["pool"], s["identifier"]): (s["slot"], s["node"]) for s in c.get("/v1/sessions").body["sessions"]}
    assert after == before
    # ready slots were adopted, not leaked: leased + warm on the node
    wait_pool(c, "python", lambda p: p["ready"] == 2 and p["leased"] == 5 and p["creating"] == 0, 10)
    wait_pool(c, "javascript", lambda p: p["ready"] == 1 and p["leased"] == 2 and p["creating"] == 0, 10)
    assert wpdaemons.wait_for(lambda: len(node_slots(pool_node)) == 10, 5), node_slots(pool_node)
    # a bad first request after recovery does not end a recovered session
    r = session_run(c, files_only, "print(1)", [("", "1")], limits={"cpu_ms": 10 ** 9})
    assert r.status == 400, r
    ok_run(c, files_only, READ, [("", "files only")])
    assert restart < 5, "poold took %.1f s to come back" % restart


def test_sigterm_finishes_running_execution(make_poold, pool_node):
    pd = make_poold()
    c = pd.client()
    s = uid()
    ok_run(c, s, WRITE, [("kept across restart", "ok")])
    slot = slot_of(c, s)
    out = {}

    def slow():
        t0 = time.monotonic()
        out["r"] = session_run(c, s, "import time\ntime.sleep(2)\nprint('done')", [("", "done")])
        out["t"] = time.monotonic() - t0

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.5)
    pd.signal(signal.SIGTERM)
    time.sleep(0.3)
    # it stops accepting
    with pytest.raises(OSError):
        c.get("/healthz", timeout=2)
    th.join(30)
    assert out["r"].status == 200 and out["r"].body["verdict"] == "accepted", out["r"]
    assert out["t"] >= 1.9
    rc = pd.wait(15)
    assert rc == 0, "poold exit status after SIGTERM: %r" % rc
    # the session stays leased on the node...
    assert [x["id"] for x in node_slots(pool_node, label="python/" + s)] == [slot]
    # ...and a new poold recovers it
    pd.start()
    assert slot_of(c, s) == slot
    ok_run(c, s, READ, [("", "kept across restart")])


def test_sigterm_waits_for_the_destroy_of_a_released_session(make_poold):
    """A session released just before SIGTERM: poold answered 204 and has
    sent the node its DELETE. poold waits for that answer before it exits
    (bounded), instead of cancelling the call and leaving the slot, still
    labelled, for the next start to recover. The node is paused so that the
    answer is surely still out when the signal comes."""
    a = make_poold.sandboxd(335000, capacity=8)
    a.start()
    pd = make_poold(nodes={"a": a.url}, pools={"python": {"language": "python", "warm": 0, "max": 4,
                                                          "idle_timeout": "5m"}},
                    extra_poold="node_timeout = 10s")
    c = pd.client()
    s = uid("bye")
    ok_run(c, s, "print(1)", [("", "1")])
    slot = slot_of(c, s)
    a.signal(signal.SIGSTOP)
    try:
        assert c.delete("/v1/sessions/%s?pool=python" % s).status == 204
        pd.signal(signal.SIGTERM)
        time.sleep(1.0)
        assert pd.alive(), "poold exited with the released session's DELETE unanswered:\n" + pd.log_text()
    finally:
        a.signal(signal.SIGCONT)
    rc = pd.wait(15)
    assert rc == 0, "poold exit status after SIGTERM: %r\n%s" % (rc, pd.log_text())
    assert "unanswered" not in pd.log_text()
    assert wpdaemons.wait_for(lambda: slot not in [x["id"] for x in node_slots(a)], 10), node_slots(a)


# ---------------------------------------------------------------- two nodes


def sessions_by_node(c):
    out = {}
    for s in c.get("/v1/sessions").body["sessions"]:
        out.setdefault(s["node"], set()).add(s["identifier"])
    return out


def test_two_nodes_and_loss_of_one(make_poold):
    a = make_poold.sandboxd(331000, capacity=16)
    b = make_poold.sandboxd(332000, capacity=16)
    a.start()
    b.start()
    assert a.sock != b.sock and a.state_dir != b.state_dir and a.cgroup_name != b.cgroup_name
    pd = make_poold(nodes={"a": a.url, "b": b.url},
                    pools={"python": {"language": "python", "warm": 2, "max": 24, "idle_timeout": "5m"}},
                    extra_poold="health_interval = 500ms\nnode_timeout = 5s")
    c = pd.client()
    r = c.get("/v1/nodes")
    assert sorted((n["name"], n["up"]) for n in r.body["nodes"]) == [("a", True), ("b", True)], r
    idents = [uid("two") for _ in range(8)]
    for i in idents:
        ok_run(c, i, WRITE, [(i, "ok")])
    by_node = sessions_by_node(c)
    assert by_node.get("a") and by_node.get("b"), "sessions not spread over both nodes: %r" % by_node
    # the slots really are on the node poold says, each with its own uid range
    for s in node_slots(a):
        assert 331000 <= s["uid"] < 331016, s
    assert {s["label"].split("/", 1)[1] for s in node_slots(a) if s["label"]} == by_node["a"]
    assert {s["label"].split("/", 1)[1] for s in node_slots(b) if s["label"]} == by_node["b"]

    # loss of a: kill -9
    a.kill9()
    lost, kept = sorted(by_node["a"]), sorted(by_node["b"])
    # the first request on a lost session discovers the loss itself
    r = session_run(c, lost[0], READ, [("", None)])
    assert_error(r, 410, "SessionLost")
    assert wpdaemons.wait_for(lambda: not {n["name"]: n["up"] for n in c.get("/v1/nodes").body["nodes"]}["a"], 5)
    assert metric_value(metrics_text(c), "warmpool_node_up", node="a") == 0
    # every lost session answers 410 SessionLost once, then starts afresh (on b)
    seen = {}
    for i in lost:
        codes = []
        for _ in range(3):
            r = session_run(c, i, READ, [("", None)])
            codes.append(r.status)
            if r.status == 200:
                assert r.body["tests"][0]["stdout"].strip() == "NONE", "a lost session came back with files: %r" % (r,)
                break
            assert_error(r, 410, "SessionLost")
        seen[i] = codes
    assert all(codes == [410, 200] for i, codes in seen.items() if i != lost[0]), \
        "lost sessions should answer 410 once, then work: %r" % seen
    assert seen[lost[0]] == [200], "the session whose request found the loss answered 410 twice: %r" % seen
    for i in lost:
        assert session_info(c, i).body["node"] == "b"
    # the sessions on b never noticed
    for i in kept:
        ok_run(c, i, READ, [("", i)])
    # new leases go to b
    new = [uid("new") for _ in range(3)]
    for i in new:
        ok_run(c, i, "print(1)", [("", "1")])
        assert session_info(c, i).body["node"] == "b"
    # ready again on b alone, once the refill of those leases is in (it
    # waits for the leases to stop coming: pool.c, REFILL_GAP)
    assert wpdaemons.wait_for(lambda: c.get("/readyz").status == 200, 5), c.get("/readyz")

    # a comes back (same socket, uids, cgroup name, state dir): used again
    a.reap()
    a.start()
    assert wpdaemons.wait_for(lambda: {n["name"]: n["up"] for n in c.get("/v1/nodes").body["nodes"]}["a"], 5)
    assert metric_value(metrics_text(c), "warmpool_node_up", node="a") == 1
    later = [uid("later") for _ in range(6)]
    wpdaemons.wait_for(lambda: any(s["state"] == "ready" for s in node_slots(a)), 5)
    for i in later:
        ok_run(c, i, "print(1)", [("", "1")])
    by_node = sessions_by_node(c)
    assert by_node.get("a") and set(later) & by_node["a"], "node a is not used again: %r" % by_node
    for i in kept:
        ok_run(c, i, READ, [("", i)])


def test_node_pause_is_not_a_loss(make_poold):
    """A node that answers slowly for a moment (paused 3 s, well within
    node_timeout = 10s) is not lost: its sessions keep their slots and files.
    (A busy sandboxd under a burst looks like this to poold.)"""
    a = make_poold.sandboxd(334000, capacity=8)
    a.start()
    pd = make_poold(nodes={"a": a.url}, pools={"python": {"language": "python", "warm": 1, "max": 8,
                                                          "idle_timeout": "5m"}},
                    extra_poold="health_interval = 500ms\nnode_timeout = 10s")
    c = pd.client()
    idents = [uid("pause") for _ in range(3)]
    for i in idents:
        ok_run(c, i, WRITE, [(i, "ok")])
    slots = {i: slot_of(c, i) for i in idents}
    a.signal(signal.SIGSTOP)
    try:
        time.sleep(3)
    finally:
        a.signal(signal.SIGCONT)
    for i in idents:
        r = session_run(c, i, READ, [("", i)])
        assert r.status == 200 and r.body["verdict"] == "accepted", \
            "a 3 s pause of the node (node_timeout 10 s) lost session %s: %r" % (i, r)
    assert {i: slot_of(c, i) for i in idents} == slots


# ---------------------------------------------------------------- SIGHUP


def test_sighup_reloads_sizes_and_tokens_keeping_sessions(make_poold, pool_node):
    """systemctl reload: pool sizes and tokens change at once; a leased
    session keeps its slot and files; a config that does not parse changes
    nothing."""
    pd = make_poold(pools={"python": {"language": "python", "warm": 1, "max": 6, "idle_timeout": "5m"}})
    c = pd.client()
    ident = uid()
    ok_run(c, ident, WRITE, [("before", "ok")])
    slot = slot_of(c, ident)

    pd.pools["python"]["warm"] = 3
    pd.tokens = [("reload-admin-token", "admin", "ops")]
    pd.write_config()
    pd.proc.send_signal(signal.SIGHUP)
    assert wpdaemons.wait_for(lambda: c.get("/v1/pools/python").status == 401, 5), \
        "after reload with a token, an anonymous request must be refused"
    a = pd.client(token="reload-admin-token")
    assert wpdaemons.wait_for(lambda: a.get("/v1/pools/python").body["ready"] >= 3, 20), a.get("/v1/pools/python")
    assert a.get("/v1/pools/python").body["warm"] == 3
    r = a.post("/v1/sessions/%s/run?pool=python" % ident, {"source": READ, "tests": [{"stdin": ""}]})
    assert r.status == 200 and r.body["tests"][0]["stdout"] == "before\n", r
    assert slot_of(a, ident) == slot, "the session moved to another slot across a reload"

    # a broken file: logged, nothing changes
    with open(pd.config, "a") as f:
        f.write("\n[pool:python]\nwarm = many\n")
    pd.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert pd.proc.poll() is None, "poold died on a bad reload"
    assert a.get("/v1/pools/python").body["warm"] == 3
    assert "keeping the running configuration" in open(pd.log_path).read()
