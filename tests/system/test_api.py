"""sandboxd's HTTP API as documented in docs/sandboxd-api.md: node info,
languages, the slot life cycle, labels, runs' request validation and answer
shape, the files API and the documented error answers."""

import hashlib
import json
import os
import re
import socket
import threading
import time

import pytest

from conftest import (
    ALL_LANGS,
    CAPACITY,
    LIMITS_MAX,
    MAX_BODY,
    UID_BASE,
    assert_error,
    missing_runtime,
    pct,
    qname,
    run_raw,
    show,
    source_name,
    verdicts_of,
    wait_gone,
    wait_state,
)

HELLO = 'print("hello")\n'
ECHO = "import sys\nsys.stdout.write(sys.stdin.read())\n"
SLOT_KEYS = {"id", "language", "state", "label", "created", "last_used", "runs", "uid"}
LIMIT_KEYS = set(LIMITS_MAX)


def check_slot_object(s, lang=None):
    assert isinstance(s, dict), s
    missing = SLOT_KEYS - set(s)
    assert not missing, "slot object lacks %s: %r" % (sorted(missing), s)
    assert isinstance(s["id"], str) and s["id"], s
    assert s["state"] in ("creating", "ready", "busy", "destroying"), s
    assert isinstance(s["runs"], int) and s["runs"] >= 0, s
    assert isinstance(s["created"], (int, float)) and abs(s["created"] - time.time()) < 3600, "created not a unix time: %r" % s
    assert isinstance(s["uid"], int) and UID_BASE <= s["uid"] < UID_BASE + CAPACITY, "uid outside [uid_base, uid_base+capacity): %r" % s
    if lang:
        assert s["language"] == lang, s


# ---------------------------------------------------------------- node


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status == 200 and r.body == {"status": "ok"}, r


def test_info(client):
    r = client.get("/v1/info")
    assert r.status == 200, r
    b = r.body
    for k in ("node", "version", "cgroup", "controllers", "capacity", "slots", "languages", "limits_max"):
        assert k in b, "GET /v1/info lacks %r: %r" % (k, r)
    assert b["cgroup"] in ("v1", "v2"), r
    for c in ("memory", "pids"):
        assert c in b["controllers"].split(), "controller %s not reported: %r" % (c, r)
    assert b["capacity"] == CAPACITY, "capacity is not the configured %d: %r" % (CAPACITY, r)
    for k in ("total", "creating", "ready", "busy", "destroying", "leased"):
        assert isinstance(b["slots"].get(k), int), "slots.%s missing: %r" % (k, r)
    assert b["limits_max"] == LIMITS_MAX, "limits_max is not the configured one: %r" % (r,)
    for l in b["languages"]:
        for k in ("name", "version", "compiled", "available"):
            assert k in l, "language object lacks %r: %r" % (k, l)


def test_info_slot_counts(client, make_slot):
    before = client.get("/v1/info").body["slots"]
    sid = make_slot("python")
    after = client.get("/v1/info").body["slots"]
    assert after["total"] == before["total"] + 1, (before, after)
    assert after["ready"] == before["ready"] + 1, (before, after)
    r = client.patch("/v1/slots/%s" % sid, {"label": "counted"})
    assert r.status == 200, r
    leased = client.get("/v1/info").body["slots"]
    assert leased["leased"] == after["leased"] + 1, "labelling a slot did not count it as leased: %r → %r" % (after, leased)


def test_languages(client, languages):
    r = client.get("/v1/languages")
    assert r.status == 200, r
    missing = [l for l in ALL_LANGS if l not in languages]
    assert not missing, "languages not configured: %s (have %r)" % (missing, sorted(languages))
    for name, l in languages.items():
        for k in ("name", "version", "compiled", "available", "limits", "compile_limits"):
            assert k in l, "language %s lacks %r: %r" % (name, k, l)
        assert set(l["limits"]) == LIMIT_KEYS, "language %s limits keys: %r" % (name, l["limits"])
        for k, v in l["limits"].items():
            assert isinstance(v, int) and 1 <= v <= LIMITS_MAX[k], "default %s.%s=%r outside [1, max]" % (name, k, v)
        if l["available"]:
            assert isinstance(l["version"], str) and l["version"], "available language without version: %r" % l
    expect_compiled = {"python": False, "javascript": False, "java": True, "c": True, "cpp": True}
    for name, compiled in expect_compiled.items():
        if name in languages:
            assert languages[name]["compiled"] is compiled, languages[name]


def test_language_defaults_match_design(languages):
    """The documented defaults (docs/api.md): 5 s CPU, 10 s wall, 256 MiB, 64 pids, 16 MiB output, 64 MiB files
    (python has no reason to override them)."""
    if "python" not in languages:
        missing_runtime("python", "not configured")
    lim = languages["python"]["limits"]
    assert lim == {
        "cpu_ms": 5000,
        "wall_ms": 10000,
        "memory_kb": 262144,
        "pids": 64,
        "output_bytes": 16 << 20,
        "fsize_bytes": 64 << 20,
    }, lim


def test_unknown_route_404(client):
    for path in ("/nope", "/v1/nope", "/v1/slots/x/nope", "/v2/info"):
        assert_error(client.get(path), 404, "NotFound")


def test_wrong_method_405(client, make_slot):
    sid = make_slot("python")
    wrong = [
        ("DELETE", "/v1/info"),
        ("POST", "/v1/languages"),
        ("POST", "/healthz"),
        ("PUT", "/v1/slots"),
        ("DELETE", "/v1/slots"),
        ("PUT", "/v1/slots/%s" % sid),
        ("GET", "/v1/slots/%s/run" % sid),
        ("POST", "/v1/slots/%s/files" % sid),
        ("PATCH", "/v1/slots/%s/files/x" % sid),
    ]
    bad = []
    for method, path in wrong:
        r = client.request(method, path, raw=b"{}" if method in ("PUT", "POST", "PATCH") else None)
        err = r.body.get("error", {}) if isinstance(r.body, dict) else {}
        if r.status != 405 or err.get("code") != "MethodNotAllowed":
            bad.append(r)
    assert not bad, "wrong method on an existing route must answer 405 MethodNotAllowed:\n  %s" % "\n  ".join(map(repr, bad))


# ---------------------------------------------------------------- slots


def test_create_wait(client, slots):
    r = client.post("/v1/slots", {"language": "python", "wait": True}, timeout=60)
    assert r.status == 201, r
    assert len(r.body["slots"]) == 1, r
    s = r.body["slots"][0]
    slots.adopt(s["id"])
    check_slot_object(s, "python")
    assert s["state"] == "ready" and s["runs"] == 0 and s["label"] is None, r
    g = client.get("/v1/slots/%s" % s["id"])
    assert g.status == 200 and g.body["id"] == s["id"] and g.body["state"] == "ready", g


def test_create_nowait_then_poll(client, slots):
    r = client.post("/v1/slots", {"language": "python", "count": 2}, timeout=30)
    assert r.status == 202, r
    assert len(r.body["slots"]) == 2, r
    for s in r.body["slots"]:
        slots.adopt(s["id"])
        check_slot_object(s, "python")
        assert s["state"] == "creating", "without wait the slots must answer in `creating`: %r" % (r,)
    for s in r.body["slots"]:
        got = wait_state(client, s["id"], "ready", timeout=30)
        check_slot_object(got, "python")


def test_create_count_distinct(client, slots):
    created = slots.create("python", count=3)
    ids = [s["id"] for s in created]
    uids = [s["uid"] for s in created]
    assert len(set(ids)) == 3, created
    assert len(set(uids)) == 3, "slots share a uid: %r" % created
    for s in created:
        check_slot_object(s, "python")


def test_list_and_label_filter(client, slots):
    a = slots("python", label="student_A")
    b = slots("python", label="student_B")
    c = slots("python")
    r = client.get("/v1/slots")
    assert r.status == 200, r
    listed = {s["id"]: s for s in r.body["slots"]}
    for sid in (a, b, c):
        assert sid in listed, "slot %s not listed: %r" % (sid, r)
        check_slot_object(listed[sid])
    assert listed[a]["label"] == "student_A" and listed[c]["label"] is None, r
    r = client.get("/v1/slots?label=student_A")
    assert r.status == 200, r
    assert [s["id"] for s in r.body["slots"]] == [a], "label filter: %r" % (r,)
    r = client.get("/v1/slots?label=nobody")
    assert r.status == 200 and r.body["slots"] == [], r


def test_label_set_and_clear(client, make_slot):
    sid = make_slot("python")
    r = client.patch("/v1/slots/%s" % sid, {"label": "student_123"})
    assert r.status == 200 and r.body["label"] == "student_123" and r.body["id"] == sid, r
    assert client.get("/v1/slots/%s" % sid).body["label"] == "student_123"
    # a labelled slot is used: its label is neither changed nor cleared
    # (test_attacks_tenancy.py); it can only be destroyed
    label255 = "".join(chr(0x21 + i % 94) for i in range(255))
    assert_error(client.patch("/v1/slots/%s" % sid, {"label": label255}), 409, "SlotUsed")
    assert_error(client.patch("/v1/slots/%s" % sid, {"label": None}), 409, "SlotUsed")
    assert client.get("/v1/slots/%s" % sid).body["label"] == "student_123"
    sid = make_slot("python")
    r = client.patch("/v1/slots/%s" % sid, {"label": label255})
    assert r.status == 200 and r.body["label"] == label255, "a 255-char visible ASCII label must be accepted: %r" % (r,)
    r = client.get("/v1/slots?label=%s" % pct(label255))
    assert [s["id"] for s in r.body["slots"]] == [sid], r


def test_label_header_labels_with_the_first_request(client, make_slot):
    """poold labels a new lease's slot with its first request
    (X-Warmpool-Label on run/exec/files) instead of a PATCH: applied before
    the request, refused when the slot carries another label or the label
    is malformed — and then the request does not run."""
    sid = make_slot("python")
    hdr = {"X-Warmpool-Label": "python/student_9"}
    r = client.post("/v1/slots/%s/run" % sid, {"source": "print(1)", "tests": [{"stdin": ""}]}, headers=hdr)
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    assert client.get("/v1/slots/%s" % sid).body["label"] == "python/student_9"
    # the same label again: fine (any request of the session may carry it)
    r = client.get("/v1/slots/%s/files" % sid, headers=hdr)
    assert r.status == 200, r
    # another label: 409, and the request did not run (no file written)
    r = client.post("/v1/slots/%s/run" % sid, {"source": "open('/mnt/data/x', 'w').write('1')",
                                                "tests": [{"stdin": ""}]},
                    headers={"X-Warmpool-Label": "python/intruder"})
    assert r.status == 409 and r.error_code() == "SlotLabelled", r
    assert client.get("/v1/slots/%s" % sid).body["label"] == "python/student_9"
    names = [f["name"] for f in client.get("/v1/slots/%s/files" % sid).body["files"]]
    assert "x" not in names, names
    # malformed on an unlabelled slot: 400, still unlabelled
    other = make_slot("python")
    for bad in ("a b", "x" * 256):
        r = client.get("/v1/slots/%s/files" % other, headers={"X-Warmpool-Label": bad})
        assert r.status == 400 and r.error_code() == "BadRequest", r
    assert client.get("/v1/slots/%s" % other).body["label"] is None


BAD_LABELS = [
    ("empty", ""),
    ("256 chars", "x" * 256),
    ("control char", "a\x01b"),
    ("newline", "a\nb"),
    ("tab", "a\tb"),
    ("DEL", "a\x7fb"),
    ("space", "a b"),
    ("non-ASCII", "étudiant"),
    ("number", 5),
    ("list", ["x"]),
]


@pytest.mark.parametrize("why,label", BAD_LABELS, ids=[b[0] for b in BAD_LABELS])
def test_label_invalid(client, make_slot, why, label):
    sid = make_slot("python", label="keep")
    r = client.patch("/v1/slots/%s" % sid, {"label": label})
    assert_error(r, 400, "BadRequest")
    assert client.get("/v1/slots/%s" % sid).body["label"] == "keep", "a refused PATCH changed the label"
    before = client.get("/v1/info").body["slots"]["total"]
    r = client.post("/v1/slots", {"language": "python", "label": label, "wait": True})
    if r.status in (201, 202):
        for s in r.body["slots"]:
            client.delete("/v1/slots/%s" % s["id"])
    assert_error(r, 400, "BadRequest")
    assert client.get("/v1/info").body["slots"]["total"] == before, "a refused create left a slot"


def test_patch_unknown_field(client, make_slot):
    sid = make_slot("python")
    assert_error(client.patch("/v1/slots/%s" % sid, {"label": "x", "state": "ready"}), 400, "BadRequest")
    assert_error(client.patch("/v1/slots/%s" % sid, {"lable": "x"}), 400, "BadRequest")


def test_delete_then_404(client, slots):
    sid = slots("python")
    r = client.delete("/v1/slots/%s" % sid)
    assert r.status == 202, r
    assert r.body.get("id") == sid and r.body.get("state") == "destroying", r
    wait_gone(client, [sid])
    assert_error(client.get("/v1/slots/%s" % sid), 404, "NotFound")
    assert_error(client.delete("/v1/slots/%s" % sid), 404, "NotFound")
    assert_error(client.patch("/v1/slots/%s" % sid, {"label": "x"}), 404, "NotFound")
    assert_error(run_raw(client, sid, HELLO), 404, "NotFound")
    assert_error(client.get("/v1/slots/%s/files" % sid), 404, "NotFound")
    assert_error(client.put("/v1/slots/%s/files/a.txt" % sid, b"x"), 404, "NotFound")
    assert sid not in [s["id"] for s in client.get("/v1/slots").body["slots"]]


def test_unknown_slot_404(client):
    for sid in ("0000000000000000", "nosuchslot", pct("../..")):
        assert_error(client.get("/v1/slots/%s" % sid), 404, "NotFound")
        assert_error(run_raw(client, sid, HELLO), 404, "NotFound")


def _run_in_thread(client, sid, source, **kw):
    result = {}

    def go():
        try:
            result["resp"] = run_raw(client, sid, source, **kw)
        except Exception as e:  # reported by the test
            result["exc"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, result


def test_concurrent_run_409(client, make_slot):
    sid = make_slot("python")
    t, res = _run_in_thread(client, sid, "import time\ntime.sleep(3)\nprint('done')\n", tests=[("", "done\n")])
    wait_state(client, sid, "busy", timeout=10)
    r = run_raw(client, sid, HELLO)
    assert_error(r, 409, "SlotBusy")
    t.join(30)
    assert not t.is_alive(), "first run did not return"
    assert "exc" not in res, res
    first = res["resp"]
    assert first.status == 200 and first.body["verdict"] == "accepted", "the first run was disturbed by the refused one: %r" % (first,)
    # the slot is usable again
    r = run_raw(client, sid, HELLO, tests=[("", "hello\n")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r


def test_delete_during_run_410(client, slots):
    sid = slots("python")
    t, res = _run_in_thread(client, sid, "import time\ntime.sleep(30)\n", limits={"wall_ms": 40000, "cpu_ms": 5000})
    wait_state(client, sid, "busy", timeout=10)
    r = client.delete("/v1/slots/%s" % sid)
    assert r.status == 202, r
    t.join(20)
    assert not t.is_alive(), "a run on a destroyed slot did not answer within 20 s"
    assert "exc" not in res, res
    assert_error(res["resp"], 410, "SlotDestroyed")
    wait_gone(client, [sid])


def test_run_on_creating_slot(client, slots):
    r = client.post("/v1/slots", {"language": "python"})
    assert r.status == 202, r
    sid = r.body["slots"][0]["id"]
    slots.adopt(sid)
    r = run_raw(client, sid, HELLO)
    if r.status == 200:  # it became ready in between: legal, nothing to check
        assert r.body["verdict"] == "accepted", r
    else:
        assert_error(r, 409, "SlotNotReady")
    wait_state(client, sid, "ready")


# ---------------------------------------------------------------- validation


BAD_JSON = [b"{", b"not json", b"[]", b'"str"', b"42", b'{"language": "python",}', b'{"language": "python"} x', b""]


@pytest.mark.parametrize("body", BAD_JSON, ids=[repr(b)[:20] for b in BAD_JSON])
def test_bad_json_400(client, body):
    before = client.get("/v1/info").body["slots"]["total"]
    r = client.request("POST", "/v1/slots", raw=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "BadRequest")
    assert client.get("/v1/info").body["slots"]["total"] == before


def test_bad_json_run_and_patch(client, make_slot):
    sid = make_slot("python")
    for body in (b"{", b'{"tests": [}', b"[1]"):
        assert_error(client.request("POST", "/v1/slots/%s/run" % sid, raw=body), 400, "BadRequest")
        assert_error(client.request("PATCH", "/v1/slots/%s" % sid, raw=body), 400, "BadRequest")


def test_deep_json_refused(client, make_slot):
    sid = make_slot("python")
    deep = b'{"source": "print(1)", "tests": [{"stdin": ""}], "compare": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    r = client.request("POST", "/v1/slots/%s/run" % sid, raw=deep)
    assert_error(r, 400, "BadRequest")


WRONG_TYPES = [
    ("count string", {"language": "python", "count": "1"}),
    ("count float", {"language": "python", "count": 1.5}),
    ("language number", {"language": 5}),
    ("wait string", {"language": "python", "wait": "yes"}),
    ("no language", {"count": 1}),
]


@pytest.mark.parametrize("why,body", WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_create_wrong_type_400(client, why, body):
    assert_error(client.post("/v1/slots", body), 400, "BadRequest")


def test_unknown_field_400(client, make_slot):
    assert_error(client.post("/v1/slots", {"language": "python", "bogus": 1}), 400, "BadRequest")
    sid = make_slot("python")
    base = {"source": HELLO, "tests": [{"stdin": ""}]}
    cases = [
        dict(base, bogus=1),
        dict(base, tests=[{"stdin": "", "expectd": "x"}]),
        dict(base, limits={"cpu": 1000}),
        dict(base, compare={"mode": "exact", "tolerance": 1}),
        dict(base, compile_limits={"bogus_ms": 1}),
    ]
    for body in cases:
        r = client.post("/v1/slots/%s/run" % sid, body)
        assert r.status == 400, "unknown field in %r not refused: %r" % (body, r)
        assert_error(r, 400, "BadRequest")
    assert client.get("/v1/slots/%s" % sid).body["runs"] == 0, "a refused request counted as a run"


def _over(field):
    return {field: LIMITS_MAX[field] + 1}


OVER_LIMIT_RUNS = [("%s over max" % f, {"limits": _over(f)}) for f in LIMITS_MAX] + [
    ("compile cpu over max", {"compile_limits": _over("cpu_ms")}),
    ("cpu_ms zero", {"limits": {"cpu_ms": 0}}),
    ("memory negative", {"limits": {"memory_kb": -1}}),
    ("cpu string", {"limits": {"cpu_ms": "1000"}}),
    ("tests empty", {"tests": []}),
    ("tests 1001", {"tests": [{"stdin": ""}] * 1001}),
    ("tests not list", {"tests": "x"}),
    ("stdin number", {"tests": [{"stdin": 5}]}),
    ("compare bogus mode", {"compare": {"mode": "fuzzy"}}),
    ("compare negative tolerance", {"compare": {"mode": "float", "abs_tol": -1}}),
    ("max_output negative", {"max_output": -1}),
    ("source number", {"source": 12}),
    ("compile string", {"compile": "yes"}),
]


@pytest.mark.parametrize("why,extra", OVER_LIMIT_RUNS, ids=[o[0] for o in OVER_LIMIT_RUNS])
def test_run_bad_values_400(client, make_slot, why, extra):
    sid = make_slot("python")
    body = {"source": HELLO, "tests": [{"stdin": ""}]}
    body.update(extra)
    r = client.post("/v1/slots/%s/run" % sid, body)
    assert_error(r, 400, "BadRequest")


@pytest.mark.parametrize("count", [0, 65, -1])
def test_create_count_out_of_range_400(client, count):
    before = client.get("/v1/info").body["slots"]["total"]
    r = client.post("/v1/slots", {"language": "python", "count": count})
    if r.status in (201, 202):
        for s in r.body["slots"]:
            client.delete("/v1/slots/%s" % s["id"])
    assert_error(r, 400, "BadRequest")
    assert client.get("/v1/info").body["slots"]["total"] == before


def test_limits_at_max_accepted(client, make_slot, run):
    sid = make_slot("python")
    b = run(sid, HELLO, [("", "hello\n")], limits=dict(LIMITS_MAX), compile_limits={"cpu_ms": LIMITS_MAX["cpu_ms"]})
    assert b["verdict"] == "accepted", show(b)


def test_unknown_language_422(client):
    before = client.get("/v1/info").body["slots"]["total"]
    for lang in ("cobol", "", "../python", "Python"):
        r = client.post("/v1/slots", {"language": lang, "wait": True})
        if r.status in (201, 202):
            for s in r.body["slots"]:
                client.delete("/v1/slots/%s" % s["id"])
        if lang == "":
            assert r.status in (400, 422), r
            assert_error(r, r.status)
        else:
            assert_error(r, 422, "UnknownLanguage")
    assert client.get("/v1/info").body["slots"]["total"] == before


def test_capacity_503(client, slots):
    info = client.get("/v1/info").body
    free = CAPACITY - info["slots"]["total"]
    assert free > 1, "test needs free capacity: %r" % info
    # asking for more than is left refuses the whole request
    if free + 1 <= 64:
        r = client.post("/v1/slots", {"language": "python", "count": free + 1})
        if r.status in (201, 202):
            for s in r.body["slots"]:
                slots.adopt(s["id"])
        assert_error(r, 503, "AtCapacity")
        assert client.get("/v1/info").body["slots"]["total"] == info["slots"]["total"], "a refused create left slots"
    # fill up to capacity exactly, then one more is refused
    while free > 0:
        n = min(free, 64)
        r = client.post("/v1/slots", {"language": "python", "count": n, "wait": True}, timeout=180)
        if r.status in (201, 202):
            for s in r.body["slots"]:
                slots.adopt(s["id"])
        assert r.status == 201, "filling to capacity (%d more): %r" % (n, r)
        free -= n
    assert client.get("/v1/info").body["slots"]["total"] == CAPACITY
    assert_error(client.post("/v1/slots", {"language": "python", "wait": True}), 503, "AtCapacity")
    # capacity is given back when slots are destroyed
    victim = slots.ids.pop()
    slots.destroy(victim, wait=True)
    r = client.post("/v1/slots", {"language": "python", "wait": True})
    if r.status in (201, 202):
        for s in r.body["slots"]:
            slots.adopt(s["id"])
    assert r.status == 201, "capacity not given back after a destroy: %r" % (r,)
    errors = slots.cleanup()
    assert not errors, errors
    # wait until the destroyed ones are really gone
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client.get("/v1/info").body["slots"]["total"] > info["slots"]["total"]:
        time.sleep(0.1)


def test_payload_too_large_413(client, make_slot):
    sid = make_slot("python")
    r = client.put("/v1/slots/%s/files/big.bin" % sid, b"x" * (MAX_BODY + 1), timeout=60)
    assert_error(r, 413, "PayloadTooLarge")
    assert "big.bin" not in [f["name"] for f in client.get("/v1/slots/%s/files" % sid).body["files"]]
    body = json.dumps({"source": "#" * (MAX_BODY + 10), "tests": [{"stdin": ""}]}).encode()
    r = client.request("POST", "/v1/slots/%s/run" % sid, raw=body)
    assert_error(r, 413, "PayloadTooLarge")


# ---------------------------------------------------------------- runs


def test_run_answer_shape(client, make_slot, run):
    sid = make_slot("python")
    src = "import sys\nx = sys.stdin.read()\nsys.stderr.write('err:' + x)\nprint(x.upper(), end='')\n"
    b = run(sid, src, [("hi\n", "HI\n"), ("x\n", None)])
    assert b["verdict"] == "accepted", show(b)
    assert b["compile"] is None, "interpreted language must answer compile: null: %s" % show(b)
    assert b["passed"] == 2 and b["total"] == 2, show(b)
    assert isinstance(b["wall_ms"], int) and b["wall_ms"] > 0, show(b)
    assert len(b["tests"]) == 2, show(b)
    for i, t in enumerate(b["tests"], 1):
        for k in ("test", "verdict", "stdout", "stderr", "exit_code", "signal", "time_ms", "wall_ms", "memory_kb",
                  "stdout_truncated", "stderr_truncated"):
            assert k in t, "test result lacks %r: %s" % (k, show(b))
        assert t["test"] == i and t["exit_code"] == 0 and t["signal"] is None, show(b)
        assert t["stdout_truncated"] is False and t["stderr_truncated"] is False, show(b)
        assert t["memory_kb"] > 0 and t["wall_ms"] > 0 and t["time_ms"] >= 0, show(b)
    assert b["tests"][0]["stdout"] == "HI\n" and b["tests"][0]["stderr"] == "err:hi\n", show(b)
    assert b["tests"][1]["stdout"] == "X\n" and b["tests"][1]["stderr"] == "err:x\n", show(b)
    info = client.get("/v1/slots/%s" % sid).body
    assert info["runs"] == 1 and info["state"] == "ready", info
    assert info["last_used"] >= info["created"], info


def test_runs_counter_and_state(client, make_slot, run):
    sid = make_slot("python")
    for _ in range(3):
        run(sid, HELLO)
    s = client.get("/v1/slots/%s" % sid).body
    assert s["runs"] == 3 and s["state"] == "ready", s


def test_top_verdict_is_first_failure(make_slot, run):
    sid = make_slot("python")
    src = "import sys\nn = int(input())\nif n == 2: sys.exit(3)\nprint(n)\n"
    b = run(sid, src, [("1\n", "1\n"), ("5\n", "6\n"), ("2\n", "2\n"), ("4\n", "4\n")])
    assert verdicts_of(b) == ["accepted", "wrong_answer", "runtime_error", "accepted"], show(b)
    assert b["verdict"] == "wrong_answer" and b["passed"] == 2 and b["total"] == 4, show(b)


def test_stop_on_failure(make_slot, run):
    sid = make_slot("python")
    b = run(sid, "print(input())\n", [("1\n", "1\n"), ("2\n", "3\n"), ("4\n", "4\n")], stop_on_failure=True)
    assert b["verdict"] == "wrong_answer", show(b)
    v = verdicts_of(b)
    assert v[:2] == ["accepted", "wrong_answer"], show(b)
    assert len(v) == 2 or v[2] != "accepted", "stop_on_failure ran the test after the failure: %s" % show(b)
    assert b["passed"] == 1, show(b)


def test_max_output_truncation(make_slot, run):
    sid = make_slot("python")
    b = run(sid, "import sys\nsys.stdout.write('x' * 100000)\nsys.stderr.write('e' * 5000)\n", max_output=1000)
    t = b["tests"][0]
    assert b["verdict"] == "accepted", show(b)
    assert t["stdout"] == "x" * 1000 and t["stdout_truncated"] is True, show(b)
    assert t["stderr"] == "e" * 1000 and t["stderr_truncated"] is True, show(b)


def test_default_max_output_is_64k(make_slot, run):
    sid = make_slot("python")
    b = run(sid, "import sys\nsys.stdout.write('y' * 200000)\n")
    t = b["tests"][0]
    assert len(t["stdout"]) == 65536 and t["stdout_truncated"] is True, (len(t["stdout"]), t["stdout_truncated"])


def test_many_tests(make_slot, run):
    sid = make_slot("python")
    tests = [("%d %d\n" % (i, i * 2), "%d\n" % (i * 3)) for i in range(60)]
    b = run(sid, "a, b = map(int, input().split())\nprint(a + b)\n", tests, timeout=120)
    assert b["verdict"] == "accepted" and b["passed"] == 60 and b["total"] == 60, show(b)


def test_unicode_and_nul_output(make_slot, run):
    sid = make_slot("python")
    b = run(sid, "import sys\nsys.stdout.write(sys.stdin.read())\n", [("héllo → ✓\n", "héllo → ✓\n")])
    assert b["verdict"] == "accepted", show(b)
    assert b["tests"][0]["stdout"] == "héllo → ✓\n", show(b)


# ---------------------------------------------------------------- files


def _names(client, sid):
    r = client.get("/v1/slots/%s/files" % sid)
    assert r.status == 200, r
    return {f["name"]: f for f in r.body["files"]}


def test_files_put_get_list_delete(client, make_slot, run):
    sid = make_slot("python")
    base = "/v1/slots/%s/files" % sid
    r = client.put(base + "/data.txt", b"hello\n")
    assert r.status == 201 and r.body == {"name": "data.txt", "size": 6}, r
    files = _names(client, sid)
    assert "data.txt" in files, files
    f = files["data.txt"]
    assert f["size"] == 6 and f["type"] == "file" and isinstance(f["mtime"], (int, float)), f
    assert abs(f["mtime"] - time.time()) < 600, "mtime not a unix time: %r" % f
    r = client.get(base + "/data.txt")
    assert r.status == 200 and r.body == b"hello\n", r
    assert r.headers.get("content-type", "").startswith("application/octet-stream"), r.headers
    # the program sees it, owns it, and can change it
    src = (
        "import os\n"
        "st = os.stat('data.txt')\n"
        "print(open('data.txt').read().strip(), st.st_uid == os.getuid())\n"
        "open('data.txt', 'a').write('more\\n')\n"
        "open('out.txt', 'w').write('from the run')\n"
    )
    b = run(sid, src, [("", "hello True\n")])
    assert b["verdict"] == "accepted", show(b)
    assert client.get(base + "/data.txt").body == b"hello\nmore\n"
    assert client.get(base + "/out.txt").body == b"from the run"
    # overwrite
    r = client.put(base + "/data.txt", b"v2")
    assert r.status == 201 and r.body["size"] == 2, r
    assert client.get(base + "/data.txt").body == b"v2"
    # delete
    r = client.delete(base + "/data.txt")
    assert r.status == 204 and r.raw == b"", r
    assert_error(client.get(base + "/data.txt"), 404, "NotFound")
    assert "data.txt" not in _names(client, sid)
    assert_error(client.delete(base + "/data.txt"), 404, "NotFound")
    assert_error(client.get(base + "/never-was"), 404, "NotFound")
    b = run(sid, "import os\nprint(os.path.exists('data.txt'))\n", [("", "False\n")])
    assert b["verdict"] == "accepted", show(b)


def test_files_empty_file_and_dir(client, make_slot, run):
    sid = make_slot("python")
    base = "/v1/slots/%s/files" % sid
    r = client.put(base + "/empty", b"")
    assert r.status == 201 and r.body["size"] == 0, r
    assert client.get(base + "/empty").body == b""
    run(sid, "import os\nos.mkdir('sub')\nopen('sub/x', 'w').write('x')\n")
    files = _names(client, sid)
    assert files.get("sub", {}).get("type") == "dir", files
    assert_error(client.get(base + "/sub"), 404, "NotFound")


def test_run_uploaded_source(client, make_slot, run):
    sid = make_slot("python")
    r = client.put("/v1/slots/%s/files/%s" % (sid, qname(source_name("python"))), b"print(int(input()) * 2)\n")
    assert r.status == 201, r
    b = run(sid, None, [("21\n", "42\n")])
    assert b["verdict"] == "accepted", "run without `source` must run the uploaded %s: %s" % (source_name("python"), show(b))


def test_source_written_to_data_dir(client, make_slot, run):
    sid = make_slot("python")
    src = "print('from source')\n"
    b = run(sid, src, [("", "from source\n")])
    assert b["verdict"] == "accepted", show(b)
    r = client.get("/v1/slots/%s/files/%s" % (sid, qname(source_name("python"))))
    assert r.status == 200 and r.body == src.encode(), r


BAD_NAMES = [
    ("dotdot", ".."),
    ("dot", "."),
    ("slash", "a/b"),
    ("leading slash", "/etc"),
    ("dotdot slash", "../x"),
    ("control char", "a\x01b"),
    ("newline", "a\nb"),
    ("NUL", "a\x00b"),
    ("256 bytes", "n" * 256),
]


@pytest.mark.parametrize("why,name", BAD_NAMES, ids=[b[0] for b in BAD_NAMES])
def test_files_bad_names(client, make_slot, run, why, name):
    sid = make_slot("python")
    run(sid, "import os\nos.mkdir('a')\n")  # so that a/b would be writable if allowed
    base = "/v1/slots/%s/files/" % sid
    r = client.put(base + pct(name), b"should not be written")
    assert_error(r, 400, "BadRequest")
    for method in ("GET", "DELETE"):
        r = client.request(method, base + pct(name))
        assert r.status in (400, 404), "%s of a bad name %r: %r" % (method, name, r)
        assert_error(r, r.status)
    b = run(sid, "import os\nprint(sorted(os.listdir('.')), sorted(os.listdir('a')))\n")
    out = b["tests"][0]["stdout"]
    assert "should" not in out and "'b'" not in out and "'x'" not in out, "a refused name was written: %s" % out


def test_file_name_255_ok(client, make_slot):
    sid = make_slot("python")
    name = "n" * 255
    r = client.put("/v1/slots/%s/files/%s" % (sid, name), b"long")
    assert r.status == 201 and r.body["name"] == name, r
    assert client.get("/v1/slots/%s/files/%s" % (sid, name)).body == b"long"


def test_file_name_percent_encoded_ok(client, make_slot, run):
    sid = make_slot("python")
    name = "my file (1).txt"
    r = client.put("/v1/slots/%s/files/%s" % (sid, qname(name)), b"spaced")
    assert r.status == 201 and r.body["name"] == name, r
    assert name in _names(client, sid)
    b = run(sid, "print(open('my file (1).txt').read())\n", [("", "spaced\n")])
    assert b["verdict"] == "accepted", show(b)


def test_binary_file_round_trip(client, make_slot, run):
    sid = make_slot("python")
    data = bytes(range(256)) * 4096 + os.urandom(1 << 20) + b"\0\r\n\r\n\xff"
    r = client.put("/v1/slots/%s/files/blob.bin" % sid, data, timeout=60)
    assert r.status == 201 and r.body["size"] == len(data), r
    r = client.get("/v1/slots/%s/files/blob.bin" % sid, timeout=60)
    assert r.status == 200, r
    assert len(r.body) == len(data), "length differs: %d vs %d" % (len(r.body), len(data))
    assert r.body == data, "binary content differs at byte %d" % next(i for i, (a, b) in enumerate(zip(r.body, data)) if a != b)
    want = hashlib.sha256(data).hexdigest()
    b = run(sid, "import hashlib\nprint(hashlib.sha256(open('blob.bin', 'rb').read()).hexdigest())\n", [("", want + "\n")])
    assert b["verdict"] == "accepted", "the program sees other bytes than uploaded: %s" % show(b)
    # and the way back: bytes written by the program
    run(sid, "open('made.bin', 'wb').write(bytes(range(256)) * 3)\n")
    assert client.get("/v1/slots/%s/files/made.bin" % sid).body == bytes(range(256)) * 3


def test_files_of_slots_are_separate(client, make_slot):
    a = make_slot("python")
    b = make_slot("python")
    assert client.put("/v1/slots/%s/files/only-a.txt" % a, b"A").status == 201
    assert "only-a.txt" not in _names(client, b)
    assert_error(client.get("/v1/slots/%s/files/only-a.txt" % b), 404, "NotFound")


# ---------------------------------------------------------------- HTTP bounds


def raw_http(sock_path, data, timeout=10):
    """Send raw bytes; return (status, body bytes) of the answer, or (None, why)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed early: read what it said
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None, buf or b"(closed without an answer)"
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for l in lines[1:]:
            k, _, v = l.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body
    except (socket.timeout, ConnectionResetError) as e:
        return None, repr(e).encode()
    finally:
        s.close()


def _healthy(client):
    r = client.get("/healthz", timeout=5)
    assert r.status == 200, "sandboxd unhealthy after a bad request: %r" % (r,)


def test_garbage_request_400(client, sandboxd):
    for data in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                 b"POST /v1/slots HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        status, body = raw_http(sandboxd.sock, data)
        assert status is None or 400 <= status < 500, "garbage %r answered %s %r" % (data, status, body[:200])
        _healthy(client)


def test_header_bounds(client, sandboxd):
    """DESIGN: header count and length are bounded."""
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"
    long_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (1 << 20) + b"\r\n\r\n"
    long_url = b"GET /v1/slots/" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    bad_codes = []
    for what, data in (("5000 headers", many), ("a 1 MiB header", long_header), ("a 1 MiB URL", long_url)):
        t0 = time.monotonic()
        status, body = raw_http(sandboxd.sock, data)
        assert status is None or 400 <= status < 500, "%s answered %s %r" % (what, status, body[:200])
        assert time.monotonic() - t0 < 10
        _healthy(client)
        if status is not None and body:
            err = json.loads(body).get("error", {})
            if not re.match(r"^[A-Z][A-Za-z]+$", str(err.get("code"))):
                bad_codes.append("%s → %d %r" % (what, status, err))
    assert not bad_codes, "error codes must be PascalCase (docs/sandboxd-api.md):\n  %s" % "\n  ".join(bad_codes)


def test_loop_not_blocked_by_runs(client, make_slot):
    """A long run does not stall other requests (one event loop, nothing blocks it)."""
    sid = make_slot("python")
    other = make_slot("python")
    t, res = _run_in_thread(client, sid, "import time\ntime.sleep(3)\n")
    wait_state(client, sid, "busy", timeout=10)
    for path in ("/healthz", "/v1/info", "/v1/slots", "/v1/slots/%s" % sid):
        t0 = time.monotonic()
        r = client.get(path, timeout=10)
        took = time.monotonic() - t0
        assert r.status == 200 and took < 0.5, "GET %s took %.2f s during a run: %r" % (path, took, r)
    t0 = time.monotonic()
    r = run_raw(client, other, HELLO, [("", "hello\n")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    assert time.monotonic() - t0 < 2.5, "a run in another slot waited for the first one"
    t.join(30)
    assert res.get("resp") is not None and res["resp"].status == 200, res


# A busy loop of ~0.6 s of CPU, and a program that only sleeps.
SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6:\n    pass\nprint('done')\n"
HOG = ("import multiprocessing, time\n"
       "def spin():\n"
       "    t = time.time()\n"
       "    while time.time() - t < 4:\n"
       "        pass\n"
       "ps = [multiprocessing.Process(target=spin) for _ in range(4)]\n"
       "[p.start() for p in ps]\n[p.join() for p in ps]\nprint('hogged')\n")


def test_wall_limit_does_not_count_waiting_for_a_cpu(client, make_slot):
    """The wall limit is for programs that sleep or block: when other slots
    keep the CPUs busy, the time a run waits for a CPU is added to its wall
    limit (the CPU limit is unchanged), so a busy host does not turn a
    correct program into time_limit_exceeded. A program that sleeps is
    still stopped at its wall limit on a quiet host. (On cgroup v1 the wait
    is the host's pressure stall time, so a sleeping program on a busy v1
    host may get up to 4 limits more: docs/sandboxd-api.md.)"""
    hogs = [make_slot("python") for _ in range(5)]
    spin, sleeper = make_slot("python"), make_slot("python")
    done = []

    def hog(sid):
        done.append(run_raw(client, sid, HOG, limits={"cpu_ms": 30000, "wall_ms": 20000}, timeout=60))

    ts = [threading.Thread(target=hog, args=(h,), daemon=True) for h in hogs]
    for t in ts:
        t.start()
    time.sleep(0.5)  # the 20 spinning processes are up
    r = run_raw(client, spin, SPIN, limits={"cpu_ms": 5000, "wall_ms": 1000}, timeout=60)
    for t in ts:
        t.join()
    assert all(x.status == 200 and x.body["verdict"] == "accepted" for x in done), done
    t = r.body["tests"][0]
    # starved: it took longer than its wall limit, for 0.6 s of CPU, and is right
    assert t["wall_ms"] > 1000, "the host was not busy enough to test anything: %r" % (r,)
    assert r.body["verdict"] == "accepted" and t["stdout"] == "done\n", r
    # quiet again: a sleeping program stops at its wall limit
    r = run_raw(client, sleeper, "import time\ntime.sleep(3)\n", limits={"cpu_ms": 5000, "wall_ms": 1000}, timeout=60)
    t = r.body["tests"][0]
    assert r.body["verdict"] == "time_limit_exceeded", r
    assert t["wall_ms"] < 2000, "a sleeping program got more than its wall limit: %r" % (r,)
