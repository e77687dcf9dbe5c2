"""One user's session must never reach another user (issue 14, items 1
and 8), against a real sandboxd and a real poold on loopback.

The red team's attack: `/v1/sessions/X/files/..` was forwarded to the node
as `/v1/slots/<X's slot>/files/..`, which libcurl shortened to
`/v1/slots/<X's slot>`: GET read the slot, PATCH {"label": null}
unlabelled it, DELETE destroyed it behind poold's back. poold's next sync
(its restart, or the node down and up) adopted the unlabelled, used slot
as a fresh warm slot, and the next new users ran in the attacker's
interpreter. And after a node was down, the labelled slots of the sessions
lost with it stayed on the node.

What must hold: dot segments (every spelling) are refused with 400 by both
daemons; poold builds node paths from the slot id it owns and a validated,
percent-encoded file name only; sandboxd reports a used slot
(`"fresh": false`) and refuses to unlabel or relabel it (409); poold never
adopts a used slot; slots of lost sessions are destroyed once their node
is back.

Run as root: /usr/bin/python3 -m pytest tests/system/test_attacks_tenancy.py
"""

import signal
import time
import uuid

import pytest

import wpdaemons
from conftest import assert_error, node_slots, pct, session_info, session_run, wait_pool

UID_BASE = 357000
API = "2024-10-02-preview"
SECRET = "attacker-secret-%s" % uuid.uuid4().hex[:8]
# what a new user's interpreter and /mnt/data show of the one before it
PROBE = "import os\nprint(repr(globals().get('planted')), os.path.exists('/mnt/data/planted.txt'))"
CLEAN = "None False"

# Every spelling of a dot segment, and names that are not one file name.
DOT_NAMES = [
    "..", "%2e%2e", "%2E%2E", "%2E%2e", ".%2e", ".%2E", "%2e.", ".", "%2e", "%2E",
    "../..", "..%2f..", "..%2F", "%2e%2e%2f", "a%2fb", "%2fetc%2fpasswd", "../files",
]


def uid(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def node_up(c, name="a"):
    return {n["name"]: n["up"] for n in c.get("/v1/nodes").body["nodes"]}.get(name)


@pytest.fixture
def env(make_poold):
    """A sandboxd of this test and a poold in front of it: one stateful
    python pool (interpreter slots, for the Azure routes and the globals),
    fast health checks so that a paused node is down within seconds."""
    sb = make_poold.sandboxd(UID_BASE, capacity=16)
    sb.start()
    pd = make_poold(nodes={"a": sb.url},
                    pools={"python": {"language": "python", "stateful": "yes", "warm": 2, "max": 10,
                                      "idle_timeout": "5m"}},
                    extra_poold="health_interval = 300ms\nnode_timeout = 2s")
    c = pd.client()
    wait_pool(c, "python", lambda p: p["ready"] == 2, 30, "2 ready slots")
    return sb, pd, c


def aca_exec(c, ident, code, pool=None):
    prefix = "/pools/%s" % pool if pool else ""
    r = c.post("%s/code/execute?api-version=%s&identifier=%s" % (prefix, API, pct(ident)),
               {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}},
               timeout=60)
    assert r.status == 200 and r.body["properties"]["status"] == "Success", r
    return r.body["properties"]["stdout"].strip()


def plant(c, ident):
    """The attacker's session: a global in its interpreter, a file in /mnt/data."""
    aca_exec(c, ident, "planted = %r\nopen('/mnt/data/planted.txt', 'w').write(planted)\nprint('ok')" % SECRET)
    r = session_info(c, ident)
    assert r.status == 200, r
    return r.body["slot"]


def slot_on_node(sb, slot):
    return {s["id"]: s for s in node_slots(sb)}.get(slot)


def assert_untouched(sb, c, ident, slot):
    """The attacker's slot is still there, still labelled as its session,
    and the session still reaches it."""
    s = slot_on_node(sb, slot)
    assert s is not None, "the attacker's slot %s was destroyed behind poold's back" % slot
    assert s["label"] == "python/" + ident, "the attacker's slot lost its label: %r" % (s,)
    assert s["state"] in ("ready", "busy"), s
    r = session_info(c, ident)
    assert r.status == 200 and r.body["slot"] == slot, r
    assert aca_exec(c, ident, "print(planted)") == SECRET


def new_users_are_clean(c, n):
    """n new sessions, each in a slot no one used: no global, no file of another."""
    seen = {}
    for _ in range(n):
        ident = uid("new")
        seen[ident] = aca_exec(c, ident, PROBE)
    dirty = {k: v for k, v in seen.items() if v != CLEAN}
    assert not dirty, "new users landed in a used slot (the attacker's?): %r" % dirty


# ------------------------------------------------ the red team's attack


@pytest.mark.parametrize("name", DOT_NAMES)
def test_session_files_dot_segments_are_refused(env, name):
    """GET/PATCH/DELETE /v1/sessions/X/files/<dot segment> → 400; the slot
    of X is untouched (before the fix GET answered X's slot object, PATCH
    unlabelled it, DELETE destroyed it)."""
    sb, pd, c = env
    x = uid("atk")
    slot = plant(c, x)
    base = "/v1/sessions/%s/files/%s?pool=python" % (pct(x), name)
    r = c.get(base)
    assert_error(r, 400)
    assert "id" not in r.body, "the node's slot object leaked: %r" % (r,)
    assert_error(c.patch(base, {"label": None}), 400)
    assert_error(c.request("PATCH", base, raw=b'{"label": "python/victim"}'), 400)
    assert_error(c.delete(base), 400)
    assert_error(c.post(base, {"label": None}), 400)
    assert_untouched(sb, c, x, slot)


def test_session_files_trailing_and_nested_dot_segments(env):
    sb, pd, c = env
    x = uid("atk")
    slot = plant(c, x)
    for path in ["/v1/sessions/%s/files/./", "/v1/sessions/%s/files/../..", "/v1/sessions/%s/files/../../..",
                 "/v1/sessions/%s/files/%%2e%%2e/%%2e%%2e", "/v1/sessions/%s/files/x/..",
                 "/v1/sessions/%s/./files", "/v1/sessions/%s/../%s/files"]:
        path = path.replace("%s", pct(x)) + "?pool=python"
        for m in ("GET", "DELETE", "PATCH"):
            r = c.request(m, path, raw=b'{"label": null}')
            assert_error(r, 400)
    assert_untouched(sb, c, x, slot)


def test_attack_then_poold_restart_gives_new_users_clean_slots(env):
    """The whole attack: plant state, unlabel the slot through files/..,
    restart poold; the new users after it never get the attacker's slot,
    and the attacker's session is still its own."""
    sb, pd, c = env
    x = uid("atk")
    slot = plant(c, x)
    r = c.patch("/v1/sessions/%s/files/..?pool=python" % pct(x), {"label": None})
    assert_error(r, 400)
    pd.stop()
    pd.start()
    wait_pool(c, "python", lambda p: p["ready"] >= 2, 30, "2 ready slots")
    new_users_are_clean(c, 4)
    assert_untouched(sb, c, x, slot)


def test_attack_then_node_down_and_up_gives_new_users_clean_slots(env):
    sb, pd, c = env
    x = uid("atk")
    slot = plant(c, x)
    assert_error(c.patch("/v1/sessions/%s/files/..?pool=python" % pct(x), {"label": None}), 400)
    sb.signal(signal.SIGSTOP)
    try:
        assert wpdaemons.wait_for(lambda: node_up(c) is False, 15), c.get("/v1/nodes")
    finally:
        sb.signal(signal.SIGCONT)
    assert wpdaemons.wait_for(lambda: node_up(c) is True, 15), c.get("/v1/nodes")
    wait_pool(c, "python", lambda p: p["ready"] >= 2, 30, "2 ready slots")
    new_users_are_clean(c, 4)


AZURE_PATHS = [
    ("GET", "/files/.."), ("DELETE", "/files/.."), ("GET", "/files/%2e%2e"),
    ("GET", "/pools/python/files/.."), ("DELETE", "/pools/python/files/%2E%2e"),
    ("GET", "/pools/python/files/.%2e"), ("GET", "/pools/python/files/content/.."),
    ("GET", "/pools/python/files/content/%2e%2e"), ("GET", "/pools/python/files/../content"),
    ("GET", "/pools/python/files/%2e%2e/content"), ("GET", "/pools/python/files/./x"),
    ("GET", "/pools/python/files/..%2f.."), ("GET", "/pools/python/files/a%2fb"),
    ("GET", "/pools/python/files/a%2Fb/content"), ("POST", "/pools/python/files/upload/.."),
    ("GET", "/pools/python/.."), ("GET", "/pools/python/../python/files"),
    ("POST", "/pools/python/code/../code/execute"), ("DELETE", "/pools/python/files/../session"),
]


def test_azure_routes_refuse_dot_segments(env):
    sb, pd, c = env
    x = uid("atk")
    slot = plant(c, x)
    for m, path in AZURE_PATHS:
        r = c.request(m, "%s?api-version=%s&identifier=%s" % (path, API, pct(x)), raw=b'{"label": null}')
        assert_error(r, 400)
        assert "slots" not in str(r.body), r
    assert_untouched(sb, c, x, slot)


@pytest.mark.parametrize("filename", ["..", ".", "/mnt/data/..", "../x", "/mnt/data/../x", "a/b", ""])
def test_azure_upload_names_are_validated(env, filename):
    sb, pd, c = env
    x = uid("atk")
    slot = plant(c, x)
    boundary = "tenancy%s" % uuid.uuid4().hex
    body = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n{\"label\": null}\r\n--%s--\r\n"
            % (boundary, filename, boundary)).encode()
    r = c.request("POST", "/pools/python/files/upload?api-version=%s&identifier=%s" % (API, pct(x)), raw=body,
                  headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary})
    assert_error(r, 400)
    assert_untouched(sb, c, x, slot)


def test_other_poold_routes_refuse_dot_segments(env):
    sb, pd, c = env
    for path in ["/v1/./nodes", "/v1/pools/../nodes", "/v1/%2e%2e/v1/nodes", "/./healthz", "/v1/sessions/..",
                 "/v1/sessions/x/%2E%2E/y/run?pool=python", "/v1/pools/python/%2e"]:
        r = c.get(path)
        assert_error(r, 400, "InvalidPath")
        assert "segment" in r.body["error"]["message"], r


# ------------------------------------------------ sandboxd itself


def test_sandboxd_refuses_dot_segments(env):
    sb, pd, c = env
    x = uid("atk")
    slot = plant(c, x)
    n = sb.client()
    for m, path in [("GET", "/v1/slots/%s/files/.."), ("PATCH", "/v1/slots/%s/files/.."),
                    ("DELETE", "/v1/slots/%s/files/%%2e%%2e"), ("GET", "/v1/slots/%s/.."),
                    ("PATCH", "/v1/slots/%s/run/.."), ("DELETE", "/v1/slots/%s/exec/%%2E%%2E"),
                    ("GET", "/v1/slots/%s/files/a%%2fb"), ("GET", "/v1/slots/./%s"),
                    ("DELETE", "/v1/slots/%%2e/../%s"), ("GET", "/v1/./info"), ("GET", "/./healthz")]:
        r = n.request(m, path.replace("%s", slot) if "%s" in path else path, raw=b'{"label": null}')
        assert_error(r, 400)
    assert_untouched(sb, c, x, slot)


def test_sandboxd_used_slot_is_never_unlabelled(env):
    """A slot that was labelled, ran code, executed in its interpreter or
    had a file written is `"fresh": false`; unlabelling or relabelling it
    is refused (409) — it can only be destroyed."""
    sb, pd, c = env
    n = sb.client()
    made = []

    def new_slot(**kw):
        body = dict({"language": "python", "count": 1, "wait": True}, **kw)
        r = n.post("/v1/slots", body, timeout=60)
        assert r.status == 201, r
        made.append(r.body["slots"][0]["id"])
        return r.body["slots"][0]

    try:
        s = new_slot()
        assert s["fresh"] is True and s["label"] is None, s
        r = n.patch("/v1/slots/%s" % s["id"], {"label": None})  # a fresh slot: nothing to refuse
        assert r.status == 200 and r.body["fresh"] is True, r

        labelled = new_slot(label="python/someone")
        assert labelled["fresh"] is False, labelled
        r = n.patch("/v1/slots/%s" % labelled["id"], {"label": None})
        assert_error(r, 409, "SlotUsed")
        assert "destroy" in r.body["error"]["message"], r
        assert_error(n.patch("/v1/slots/%s" % labelled["id"], {"label": "python/other"}), 409, "SlotUsed")
        assert n.patch("/v1/slots/%s" % labelled["id"], {"label": "python/someone"}).status == 200
        assert n.get("/v1/slots/%s" % labelled["id"]).body["label"] == "python/someone"

        ran = new_slot()
        r = n.post("/v1/slots/%s/run" % ran["id"], {"source": "print(1)", "tests": [{"stdin": ""}]}, timeout=60)
        assert r.status == 200, r
        assert n.get("/v1/slots/%s" % ran["id"]).body["fresh"] is False

        wrote = new_slot()
        assert n.put("/v1/slots/%s/files/x.txt" % wrote["id"], b"x").status == 201
        assert n.get("/v1/slots/%s" % wrote["id"]).body["fresh"] is False

        executed = new_slot(interpreter=True)
        r = n.post("/v1/slots/%s/exec" % executed["id"], {"code": "planted = 1", "timeout_ms": 10000}, timeout=60)
        assert r.status == 200, r
        assert n.get("/v1/slots/%s" % executed["id"]).body["fresh"] is False

        # by header, then cleared: refused too
        hdr = new_slot()
        r = n.post("/v1/slots/%s/run" % hdr["id"], {"source": "print(1)", "tests": [{"stdin": ""}]},
                   headers={"X-Warmpool-Label": "python/h"}, timeout=60)
        assert r.status == 200, r
        assert_error(n.patch("/v1/slots/%s" % hdr["id"], {"label": None}), 409, "SlotUsed")
        assert n.get("/v1/slots/%s" % hdr["id"]).body["label"] == "python/h"
    finally:
        for i in made:
            n.delete("/v1/slots/%s" % i)


def test_poold_never_adopts_a_used_slot(env):
    """An unlabelled slot that ran code (made so directly on the node):
    poold's sync destroys it (and says so) instead of handing it out."""
    sb, pd, c = env
    n = sb.client()
    r = n.post("/v1/slots", {"language": "python", "count": 1, "wait": True, "interpreter": True}, timeout=60)
    assert r.status == 201, r
    used = r.body["slots"][0]["id"]
    r = n.post("/v1/slots/%s/exec" % used, {"code": "planted = %r\nopen('/mnt/data/planted.txt', 'w').write('x')"
                                            % SECRET, "timeout_ms": 10000}, timeout=60)
    assert r.status == 200 and r.body["status"] == "ok", r
    pd.stop()
    pd.start()
    assert wpdaemons.wait_for(lambda: slot_on_node(sb, used) is None
                              or slot_on_node(sb, used)["state"] == "destroying", 10), slot_on_node(sb, used)
    assert "used" in pd.log_text() and used in pd.log_text()
    wait_pool(c, "python", lambda p: p["ready"] >= 2, 30, "2 ready slots")
    new_users_are_clean(c, 4)


# ------------------------------------------------ node down and up


def test_node_down_and_up_destroys_slots_of_lost_sessions(env):
    """Sessions lost with their node (told, not yet told, released while
    the node was away): once the node answers again, their slots are
    destroyed, not recovered or left holding capacity. A session on the
    node after it came back is not touched."""
    sb, pd, c = env
    told, tomb, released = uid("told"), uid("tomb"), uid("rel")
    slots = {i: plant(c, i) for i in (told, tomb, released)}
    sb.signal(signal.SIGSTOP)
    try:
        assert wpdaemons.wait_for(lambda: node_up(c) is False, 15), c.get("/v1/nodes")
        r = session_run(c, told, "print(1)", timeout=30)
        assert_error(r, 410, "SessionLost")
        assert c.delete("/v1/sessions/%s?pool=python" % pct(released)).status == 204
    finally:
        sb.signal(signal.SIGCONT)
    assert wpdaemons.wait_for(lambda: node_up(c) is True, 15), c.get("/v1/nodes")

    def lost_slots_left():
        return [s for s in node_slots(sb) if s["id"] in slots.values() and s["state"] != "destroying"]

    assert wpdaemons.wait_for(lambda: not lost_slots_left(), 10), \
        "slots of lost sessions still on the node after it came back: %r" % lost_slots_left()
    # the session told it was lost starts afresh, with nothing of before
    assert aca_exec(c, told, PROBE) == CLEAN
    # the one not told yet hears it once, then starts afresh
    r = c.post("/code/execute?api-version=%s&identifier=%s" % (API, pct(tomb)),
               {"properties": {"code": "print(1)"}}, timeout=60)
    assert_error(r, 410, "SessionLost")
    assert aca_exec(c, tomb, PROBE) == CLEAN
    assert aca_exec(c, released, PROBE) == CLEAN
    # the node holds what poold knows of, nothing more
    sessions = c.get("/v1/sessions").body["sessions"]
    wait_pool(c, "python", lambda p: p["ready"] == 2 and p["creating"] == 0, 30, "refilled")

    def counts():
        live = [s for s in node_slots(sb) if s["state"] != "destroying"]
        return len(live), len(sessions) + c.get("/v1/pools/python").body["ready"]

    assert wpdaemons.wait_for(lambda: counts()[0] == counts()[1], 10), \
        "slots on the node vs sessions + ready slots: %r\n%r" % (counts(), node_slots(sb))


def test_periodic_read_back_destroys_slots_no_session_holds(env):
    """While the node is up, poold reads it back every 30 s: a labelled slot
    of one of its pools that no session holds (here: made by hand, as a
    DELETE that went astray would leave it) and an unlabelled used slot are
    destroyed; the sessions poold holds and its warm slots are not touched."""
    sb, pd, c = env
    keep = uid("keep")
    kept_slot = plant(c, keep)
    n = sb.client()
    r = n.post("/v1/slots", {"language": "python", "count": 1, "wait": True, "interpreter": True,
                             "label": "python/" + uid("ghost")}, timeout=60)
    assert r.status == 201, r
    ghost = r.body["slots"][0]["id"]
    r = n.post("/v1/slots", {"language": "python", "count": 1, "wait": True, "interpreter": True}, timeout=60)
    assert r.status == 201, r
    used = r.body["slots"][0]["id"]
    assert n.put("/v1/slots/%s/files/x.txt" % used, b"x").status == 201
    ready_before = {s["id"] for s in node_slots(sb) if s["label"] is None and s["fresh"]}

    def left():
        return [i for i in (ghost, used) if slot_on_node(sb, i) and slot_on_node(sb, i)["state"] != "destroying"]

    assert wpdaemons.wait_for(lambda: not left(), 45, 0.5), "still on the node after 45 s: %r" % left()
    assert "belongs to no session" in pd.log_text() and "unlabelled but used" in pd.log_text()
    assert_untouched(sb, c, keep, kept_slot)
    assert ready_before <= {s["id"] for s in node_slots(sb)}, "a warm slot was destroyed"
