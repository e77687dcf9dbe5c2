"""The newcomer's path (issue 17): one error vocabulary across the native
and Azure routes, metrics an operator can act on, and docs that match the
shipped files — each checked against the real daemons.

- Errors: /v1 file routes answer FileNotFound/InvalidFileName like the
  Azure routes; a 405 carries Allow; InvalidIdentifier quotes the bad value
  (bounded, escaped); UnknownLanguage lists the languages; unknown JSON
  fields are "unknown field" everywhere; --check-config says which pool is
  the default_pool; lowering a pool's max brings ready + leased down to it;
  every error code the daemons can answer is in docs/api.md's table.
- Metrics: `promtool check metrics` finds nothing to say; undrain has its
  own route label; file routes have distinct placeholders; refusals are
  counted by reason; a request-duration histogram per route; process_* and
  warmpool_build_info; warmpool_sessions by pool; judged verdicts and
  interpreter statuses in separate metrics.
- Docs: every curl example of README.md, docs/api.md and docs/operations.md
  runs against the shipped config (config/*.conf as shipped, only where it
  listens and its state dir rewritten), unless marked
  `<!-- example: skip (reason) -->` in the markdown; the defaults the docs
  quote match config/*.conf.

Run as root: /usr/bin/python3 -m pytest tests/system/test_newcomer.py
"""

import glob
import json
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pytest

import wpdaemons
from conftest import execute, metrics_text, session_run

REPO = wpdaemons.REPO
DOCS = os.path.join(REPO, "docs")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SHIPPED_UID_BASE = 346000  # this file's shipped-config node: 346000-347023


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError("%s: not within %g s (last: %r)" % (what, timeout, last))


def err(r):
    assert r.body and "error" in r.body, r
    return r.body["error"]["code"], r.body["error"]["message"]


def put_file(c, ident, name, data, pool="python"):
    return c.request("PUT", "/v1/sessions/%s/files/%s?pool=%s" % (ident, urllib.parse.quote(name, safe=""), pool),
                     raw=data, headers={"Content-Type": "application/octet-stream"})


# ==========================================================================
# 1. Error vocabulary


def test_v1_file_errors_speak_like_the_azure_routes(make_poold):
    """A missing file is FileNotFound on /v1 as on the Azure routes; a bad
    file name InvalidFileName on both."""
    pd = make_poold()
    c = pd.client()
    ident = "files-" + uuid.uuid4().hex[:8]
    assert put_file(c, ident, "a.txt", b"x").status in (200, 201), "upload"
    r = c.get("/v1/sessions/%s/files/missing.txt?pool=python" % ident)
    assert r.status == 404 and err(r)[0] == "FileNotFound", r
    assert "missing.txt" in err(r)[1], r
    r = c.delete("/v1/sessions/%s/files/missing.txt?pool=python" % ident)
    assert r.status == 404 and err(r)[0] == "FileNotFound", r
    az = c.get("/files/content/missing.txt?api-version=2024-02-02-preview&identifier=%s" % ident)
    assert az.status == 404 and err(az)[0] == "FileNotFound", az
    for bad in ("x" * 300, "a%2Fb"):
        r = c.get("/v1/sessions/%s/files/%s?pool=python" % (ident, bad))
        assert r.status == 400 and err(r)[0] == "InvalidFileName", r
    assert c.delete("/v1/sessions/%s?pool=python" % ident).status == 204


def test_405_carries_allow(make_poold):
    """Every native 405 says which methods the route takes, in Allow."""
    pd = make_poold()
    c = pd.client()
    cases = [("GET", "/execute", "POST"), ("DELETE", "/v1/sessions", "GET"),
             ("PUT", "/v1/sessions/x?pool=python", "GET, DELETE"), ("GET", "/v1/sessions/x/run?pool=python", "POST"),
             ("POST", "/v1/sessions/x/files?pool=python", "GET"),
             ("POST", "/v1/sessions/x/files/a.txt?pool=python", "GET, PUT, DELETE"),
             ("POST", "/v1/pools", "GET"), ("DELETE", "/v1/pools/python", "GET, PATCH"),
             ("GET", "/v1/pools/python/drain", "POST"), ("GET", "/v1/pools/python/undrain", "POST"),
             ("DELETE", "/v1/nodes", "GET"), ("POST", "/v1/languages", "GET")]
    for method, path, allow in cases:
        r = c.request(method, path, raw=b"{}" if method in ("POST", "PUT", "PATCH") else None)
        assert r.status == 405 and err(r)[0] == "MethodNotAllowed", (method, path, r)
        assert r.headers.get("allow") == allow, (method, path, r.headers)
        assert method in err(r)[1] and allow in err(r)[1], r
    # the Azure routes too
    q = "?api-version=2025-10-02-preview&identifier=x"
    for method, path, allow in [("GET", "/pools/python/executions", "POST"),
                                ("PUT", "/pools/python/session", "GET, DELETE"),
                                ("DELETE", "/pools/python/files", "GET, POST"),
                                ("POST", "/pools/python/files/a.txt", "GET, DELETE"),
                                ("DELETE", "/pools/python/executions/abc", "GET")]:
        r = c.request(method, path + q, raw=b"{}" if method in ("POST", "PUT") else None)
        assert r.status == 405 and err(r)[0] == "MethodNotAllowed", (method, path, r)
        assert r.headers.get("allow") == allow, (method, path, r.headers)


def test_invalid_identifier_quotes_the_value(make_poold):
    """InvalidIdentifier says which value, escaped and bounded."""
    pd = make_poold()
    c = pd.client()
    r = execute(c, "python", "print(1)", "bad user\x01", [("", "1")])
    assert r.status == 400 and err(r)[0] == "InvalidIdentifier", r
    assert "`bad user\\x01`" in err(r)[1], r
    r = execute(c, "python", "print(1)", "y" * 5000, [("", "1")])
    assert r.status == 400 and err(r)[0] == "InvalidIdentifier", r
    assert "y" * 64 + "..." in err(r)[1] and len(err(r)[1]) < 400, r
    r = c.get("/v1/sessions/a%20b?pool=python")
    assert r.status == 400 and err(r)[0] == "InvalidIdentifier" and "`a b`" in err(r)[1], r
    # the Azure routes too, and the pool name
    r = c.get("/pools/python/files?api-version=2025-10-02-preview&identifier=a%01b")
    assert r.status == 400 and err(r)[0] == "InvalidIdentifier" and "`a\\x01b`" in err(r)[1], r
    r = c.get("/pools/no%01pe/files?api-version=2025-10-02-preview&identifier=ab")
    assert r.status == 404 and err(r)[0] == "PoolNotFound" and "`no\\x01pe`" in err(r)[1], r


def test_unknown_language_lists_the_languages(make_poold):
    pd = make_poold(pools={"python": {"language": "python", "warm": 1, "max": 4},
                           "python-2": {"language": "python", "warm": 0, "max": 4}})
    r = execute(pd.client(), "cobol", "x", "u1", [("", "1")])
    assert r.status == 400 and err(r)[0] == "UnknownLanguage", r
    msg = err(r)[1]
    assert "`cobol`" in msg and "languages: python" in msg and msg.count("python") == 1, msg


def test_unknown_field_one_wording(make_poold):
    """poold's own check and sandboxd's (limits, compare) say the same."""
    pd = make_poold()
    c = pd.client()
    r = execute(c, "python", "print(1)", "u1", [("", "1")], colour="red")
    assert r.status == 400 and err(r)[1] == "unknown field `colour`", r
    r = session_run(c, "uf-" + uuid.uuid4().hex[:6], "print(1)", limits={"gpu": 1})
    assert r.status == 400 and "unknown field `gpu`" in err(r)[1], r
    for r in (r,):
        assert "unknown key" not in err(r)[1]


def test_check_config_names_the_default_pool(make_poold):
    pd = make_poold(start=False, pools={"a": {"language": "python", "warm": 0, "max": 2},
                                        "b": {"language": "python", "warm": 0, "max": 2}})
    rc, out = pd.check_config()
    assert rc == 0, out
    pools = [l for l in out.splitlines() if l.strip().startswith("pool")]
    assert len(pools) == 2 and "(default_pool)" in pools[0] and "default" not in pools[1], out
    assert "(default)" not in out, out


def test_lowering_max_brings_ready_and_leased_down(make_poold):
    """warm 3, max 6, 3 sessions leased: 3 ready + 3 leased. max → 4: the
    ready ones above it go (leased ones never), ready + leased ≤ 4."""
    pd = make_poold(pools={"python": {"language": "python", "warm": 3, "max": 6, "idle_timeout": "5m"}})
    c = pd.client()

    def pool():
        return c.get("/v1/pools/python").body

    wait_for(lambda: pool()["ready"] >= 3, 60, "3 ready")
    idents = ["max-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(3)]
    for i in idents:
        assert session_run(c, i, "print(1)").status == 200
    wait_for(lambda: pool()["ready"] == 3 and pool()["leased"] == 3, 60, "3 ready + 3 leased")
    r = c.patch("/v1/pools/python", {"max": 4})
    assert r.status == 200, r
    p = wait_for(lambda: (lambda p: p if p["ready"] + p["leased"] <= 4 else None)(pool()), 20, "ready + leased <= 4")
    assert p["leased"] == 3, p
    for i in idents:
        c.delete("/v1/sessions/%s?pool=python" % i)


# --- every error code in docs/api.md's table

def emitted_codes():
    """{code: file} of the error codes the daemons' sources can answer: every
    "PascalCase" string literal of poold, sandboxd and the HTTP server (in
    these sources such literals are error codes and nothing else)."""
    out = {}
    files = sorted(glob.glob(os.path.join(REPO, "poold", "*.c")) + glob.glob(os.path.join(REPO, "sandboxd", "*.c"))
                   + [os.path.join(REPO, "lib", "http_server.c")])
    for f in files:
        text = read(f)
        # one-word codes too: given to an answering function, or in a prebuilt body
        for m in itertools.chain(re.finditer(r'"([A-Z][a-z]+(?:[A-Z][a-z]*)+)"', text),
                                 re.finditer(r'http_respond_error\(\s*req,\s*\d+,\s*"([A-Z][a-z]+)"', text),
                                 re.finditer(r'\\"code\\":\\"([A-Z][A-Za-z]+)\\"', text)):
            out.setdefault(m.group(1), os.path.relpath(f, REPO))
    return out


def documented_codes():
    """{code: (status, when, what to do)} of docs/api.md's error table."""
    text = read(os.path.join(DOCS, "api.md"))
    sec = text.split("\n## Errors", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in sec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            for code in re.findall(r"`([A-Z][A-Za-z]+)`", cells[0]):
                rows[code] = tuple(cells[1:])
    return rows


def test_every_error_code_is_in_the_table():
    emitted = emitted_codes()
    assert len(emitted) >= 25, sorted(emitted)
    for must in ("FileNotFound", "InvalidFileName", "MethodNotAllowed", "PoolExhausted", "QueueFull", "NodeBusy",
                 "InvalidIdentifier", "UnknownLanguage", "HeadersTooLarge", "SessionEnded", "Unauthorized",
                 "Forbidden"):
        assert must in emitted, must
    table = documented_codes()
    missing = {c: f for c, f in emitted.items() if c not in table}
    assert not missing, "codes the daemons answer that docs/api.md's error table lacks: %s" % missing
    stale = set(table) - set(emitted)
    assert not stale, "docs/api.md lists codes nothing answers: %s" % stale
    for code, (status, when, todo) in table.items():
        assert re.fullmatch(r"\d{3}(, \d{3})*", status), (code, status)
        assert when and todo, code


# ==========================================================================
# 2. Metrics


def test_metrics_pass_promtool_and_carry_what_an_operator_needs(make_poold):
    pd = make_poold(pools={"python": {"language": "python", "warm": 1, "max": 4, "idle_timeout": "5m"},
                           "python-s": {"language": "python", "stateful": "yes", "warm": 1, "max": 4}})
    c = pd.client()
    ident = "met-" + uuid.uuid4().hex[:6]
    assert execute(c, "python", "print(1)", "u1", [("", "1\n")]).body["verdict"] == "accepted"
    assert session_run(c, ident, "print(1)").status == 200
    assert put_file(c, ident, "a.txt", b"x").status in (200, 201)
    az = c.post("/pools/python-s/code/execute?api-version=2024-02-02-preview&identifier=%s" % ident,
                {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "1+1"}})
    assert az.status == 200, az
    assert c.get("/pools/python-s/files/a%%2Fb?api-version=2024-02-02-preview&identifier=%s" % ident).status >= 400
    assert c.get("/pools/python-s/files/nope.txt?api-version=2024-02-02-preview&identifier=%s" % ident).status == 404
    assert c.post("/v1/pools/python/drain").status == 200
    r = execute(c, "python", "print(1)", "u2", [("", "1\n")])
    assert r.status == 503 and err(r)[0] == "PoolUnavailable", r
    assert c.post("/v1/pools/python/undrain").status == 200
    text = metrics_text(c)

    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout.decode()

    def series(name):
        return [l for l in text.splitlines() if l.startswith(name + "{") or l.startswith(name + " ")]

    routes = set(re.findall(r'^warmpool_http_requests_total\{route="([^"]*)"', text, re.M))
    assert "/v1/pools/{name}/undrain" in routes and "/v1/pools/{name}/drain" in routes, routes
    assert "/pools/{name}/files/{file}" in routes, routes
    assert not any(r.count("{name}") > 1 for r in routes), routes
    assert any('reason="PoolUnavailable"' in l and 'pool="python"' in l for l in series(
        "warmpool_requests_refused_total")), series("warmpool_requests_refused_total")
    dur = series("warmpool_http_request_duration_seconds_count")
    assert any('route="/execute"' in l for l in dur) and any('route="/v1/sessions/{id}/run"' in l for l in dur), dur
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds", "process_max_fds"):
        (line,) = series(name)
        assert float(line.split()[-1]) > (-1 if name == "process_cpu_seconds_total" else 0), line
    rss = float(series("process_resident_memory_bytes")[0].split()[-1])
    status = read("/proc/%d/status" % pd.pid)
    vmrss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
    assert 0.5 < rss / vmrss < 2, (rss, vmrss)
    start = float(series("process_start_time_seconds")[0].split()[-1])
    assert abs(start - time.time()) < 600, start
    (bi,) = series("warmpool_build_info")
    assert re.match(r'warmpool_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$', bi), bi
    sess = series("warmpool_sessions")
    assert any('pool="python-s"' in l and l.endswith(" 1") for l in sess), sess
    verdicts = set(re.findall(r'^warmpool_execution_duration_seconds_count\{[^}]*verdict="([^"]*)"', text, re.M))
    assert "accepted" in verdicts and not verdicts & {"ok", "error", "timeout"}, verdicts
    statuses = set(re.findall(r'^warmpool_interpreter_execution_duration_seconds_count\{[^}]*status="([^"]*)"',
                              text, re.M))
    assert statuses == {"ok"}, statuses
    c.delete("/v1/sessions/%s?pool=python" % ident)
    c.delete("/v1/sessions/%s?pool=python-s" % ident)


def test_cpu_usage_percent_counts_the_compile_and_is_rounded(make_poold, pool_node):
    """A C submission: cpu_usage_percent is the CPU time of compile and
    tests over execution_time_ms (so the compile, most of the run, shows),
    printed with at most one decimal; memory_usage_mb too."""
    langs = {l["name"]: l for l in pool_node.client().get("/v1/languages").body["languages"]}
    if not langs.get("c", {}).get("available"):
        from conftest import missing_runtime
        missing_runtime("c", "not available to sandboxd")
    pd = make_poold(pools={"c": {"language": "c", "warm": 1, "max": 2}})
    c = pd.client()
    r = execute(c, "c", '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n', "cpu-user", [("", "hi\n")])
    assert r.status == 200 and r.body["verdict"] == "accepted", r
    raw = r.raw.decode()
    m = re.search(r'"cpu_usage_percent":\s*(-?[0-9.e+-]+)', raw)
    assert m and re.fullmatch(r"\d+(\.\d)?", m.group(1)), raw[-300:]
    mm = re.search(r'"memory_usage_mb":\s*([0-9.e+-]+)', raw)
    assert mm and re.fullmatch(r"\d+(\.\d)?", mm.group(1)), raw[-300:]
    meta = r.body["metadata"]
    comp = r.body.get("compile") or {}
    cpu_ms = comp.get("time_ms", 0) + sum(t["time_ms"] for t in r.body["test_results"])
    want = round(100.0 * cpu_ms / meta["execution_time_ms"], 1) if meta["execution_time_ms"] else 0
    # execution_time_ms is whole ms: the tenths may differ by the rounding
    assert comp.get("time_ms", 0) > 0 and abs(meta["cpu_usage_percent"] - want) <= max(1.0, want * 0.05), (meta, comp)
    assert meta["cpu_usage_percent"] >= 20, meta


# ==========================================================================
# 4. Docs vs the shipped files


def fenced_blocks(path):
    """[(line, lang, code, marker)] of a markdown file's fenced code blocks;
    marker: the text of a `<!-- example: ... -->` or `<!-- runbook: ... -->`
    comment on the line before the fence, else None."""
    lines = read(path).splitlines()
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        prev = lines[start - 1].strip() if start else ""
        mk = re.match(r"<!-- (example|runbook): (.*) -->$", prev)
        out.append((start + 1, lang, "\n".join(lines[start + 1:j]) + "\n", mk.groups() if mk else None))
        i = j + 1
    return out


DOC_FILES = ("README.md", "docs/api.md", "docs/operations.md")


def curl_examples():
    """[(where, code, substitutions)] of every fenced block with a curl
    command, in document order, less those marked skip (with a reason) or
    run by the runbook test."""
    out = []
    for f in DOC_FILES:
        for line, lang, code, marker in fenced_blocks(os.path.join(REPO, f)):
            if not re.search(r"^\s*(until |for .*\$\()?curl |\|\s*curl ", code, re.M):
                continue
            where = "%s:%d" % (f, line)
            subs = {}
            if marker:
                kind, text = marker
                if kind == "runbook":
                    continue  # tests/system/test_deploy.py runs the runbook blocks as written
                m = re.match(r"(skip|with ([^()]*?)) \((.+)\)$", text)
                assert m, "%s: marker needs `skip (reason)` or `with A=B, ... (reason)`: %r" % (where, text)
                if m.group(1) == "skip":
                    continue
                for kv in m.group(2).split(","):
                    k, v = kv.strip().split("=", 1)
                    assert k in code, "%s: `%s` is not in the block" % (where, k)
                    subs[k] = v
            out.append((where, code, subs))
    return out


CURL_WRAPPER = """#!/bin/sh
# the doc's curl, with each answer's HTTP status written on stderr
exec /usr/bin/curl "$@" -w '%{stderr}WPSTATUS %{http_code}\\n'
"""


@pytest.fixture(scope="module")
def shipped_stack():
    """sandboxd and poold from config/*.conf as shipped (only where they
    listen, state dir, cgroup name and uid_base rewritten), as in
    test_contest.py."""
    if os.geteuid() != 0:
        pytest.skip("DOC EXAMPLE TESTS SKIPPED: sandboxd must run as root (euid %d)" % os.geteuid())
    sb, pd = wpdaemons.start_shipped(SHIPPED_UID_BASE, "newcomer")
    yield sb, pd
    problems, log = wpdaemons.stop_both(sb, pd)
    assert not problems, (problems, log)


def test_every_curl_example_runs_on_the_shipped_config(shipped_stack):
    """Each curl block of the README, api.md and operations.md, run by sh -e
    as written (the address rewritten to this poold's), in document order:
    every curl exits 0 and every answer is 2xx."""
    sb, pd = shipped_stack
    examples = curl_examples()
    assert len(examples) >= 10, [w for w, _, _ in examples]
    host = pd.url.split("//", 1)[1]
    with tempfile.TemporaryDirectory() as d:
        bindir = os.path.join(d, "bin")
        os.makedirs(bindir)
        with open(os.path.join(bindir, "curl"), "w") as f:
            f.write(CURL_WRAPPER)
        os.chmod(os.path.join(bindir, "curl"), 0o755)
        work = os.path.join(d, "work")
        os.makedirs(work)
        os.symlink(os.path.join(REPO, "bin"), os.path.join(work, "bin"))  # the docs run from the repository
        for name, data in (("token", "not-needed-on-loopback\n"), ("sales.csv", "region,amount\nnorth,10\n"),
                           ("input.txt", "1 2\n")):
            with open(os.path.join(work, name), "w") as f:
                f.write(data)
        env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"], TOKEN="not-needed-on-loopback")
        for where, code, subs in examples:
            code = code.replace("http://127.0.0.1:8080", "http://" + host).replace("localhost:8080", host)
            for k, v in subs.items():
                code = code.replace(k, v)
            r = subprocess.run(["sh", "-e", "-c", code], cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=180)
            statuses = re.findall(r"^WPSTATUS (\d+)$", r.stderr, re.M)
            calls = len(re.findall(r"(?:^|[|(]\s*|\$\()curl ", code, re.M))
            assert r.returncode == 0 and len(statuses) == calls and all(s.startswith("2") for s in statuses), (
                "%s: rc %d, statuses %s (%d curl calls)\n--- code ---\n%s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                % (where, r.returncode, statuses, calls, code, r.stdout[-2000:], r.stderr[-2000:]))


def test_doc_answers_match_the_real_ones(shipped_stack):
    """The pool object of api.md has the fields GET /v1/pools/{name} really
    answers; the upload answer's contentType is the one poold gives for the
    doc's own curl -F upload."""
    sb, pd = shipped_stack
    c = pd.client()
    api = read(os.path.join(DOCS, "api.md"))
    pools = api.split("### Pools", 1)[1]
    doc_pool = json.loads(re.search(r"```json\n(.*?)```", pools, re.S).group(1))
    real = c.get("/v1/pools/python").body
    assert set(doc_pool) == set(real) - {"warning"}, (sorted(doc_pool), sorted(real))
    assert real["stateful"] is True and c.get("/v1/pools/python-judge").body["stateful"] is False

    doc_ct = re.search(r'"contentType": "([^"]+)"\}`', api).group(1)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "sales.csv"), "w") as f:
            f.write("a,b\n1,2\n")
        r = subprocess.run(["curl", "-sS", "-F", "file=@sales.csv",
                            pd.url + "/pools/python/files/upload?identifier=ct-%s&api-version=2024-10-02-preview"
                            % uuid.uuid4().hex[:6]], cwd=d, stdout=subprocess.PIPE, text=True, timeout=60)
    ans = json.loads(r.stdout)
    assert ans["contentType"] == doc_ct, (ans, doc_ct)


def test_documented_defaults_are_poolds(tmp_path):
    """The defaults operations.md's poold.conf table quotes are what poold
    uses when a key is left out (poold --check-config of a config with none
    of them), and every key config/poold.conf sets is in that table."""
    conf = tmp_path / "poold.conf"
    conf.write_text("[node:local]\nurl = unix:/run/warmpool/none.sock\n[pool:p]\nlanguage = python\n")
    rc, out = wpdaemons.check_config(str(conf))
    assert rc == 0, out
    ops = read(os.path.join(DOCS, "operations.md"))
    table = ops.split("\n## poold.conf", 1)[1].split("\n### Queueing", 1)[0]
    doc = {}
    for line in table.splitlines():
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(cells) == 4:
            for k in re.findall(r"`([a-z_]+)`", cells[1]):
                doc[k] = cells[2]

    def secs(v):
        n, unit = re.fullmatch(r"(\d+)(ms|s|m|h)", v).groups()
        return int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]

    m = re.search(r"queue\s+(\d+) waiting per pool for up to (\d+)s; (\d+) per session", out)
    assert m, out
    assert (int(doc["max_queue"]), secs(doc["queue_timeout"]), int(doc["session_queue"])) == tuple(
        map(int, m.groups())), (doc, out)
    m = re.search(r"fair queue of (\d+) \((\d+) per user_id\), each waits up to (\d+)s", out)
    assert m, out
    assert (int(doc["execute_max_queue"]), int(doc["execute_user_queue"]),
            secs(doc["execute_queue_timeout"])) == tuple(map(int, m.groups())), (doc, out)
    m = re.search(r"rate limit\s+([\d.]+)/s \(burst ([\d.]+)\) per session", out)
    rate, burst = doc["session_rate"].split(",")
    assert m and (float(rate.strip().rstrip("/s")), float(burst)) == tuple(map(float, m.groups())), (doc, out)
    m = re.search(r"pool\s+p\s+python, warm (\d+), max (\d+), idle (\d+)s, lifetime (\d+)s", out)
    assert m, out
    assert (int(doc["warm"]), int(doc["max"]), secs(doc["idle_timeout"]), secs(doc["max_lifetime"])) == tuple(
        map(int, m.groups())), (doc, out)
    assert re.search(r"listen\s+%s " % re.escape(doc["listen"].strip("`")), out), (doc["listen"], out)

    shipped = read(os.path.join(REPO, "config", "poold.conf"))
    keys = set(re.findall(r"(?m)^([a-z_]+)\s*=", shipped)) | set(re.findall(r"(?m)^;\s*([a-z_]+)\s*=\s*\d", shipped))
    missing = keys - set(doc) - {"token"}
    assert not missing, "config/poold.conf keys operations.md does not document: %s" % missing


def test_make_install_prefix_needs_no_ld_library_path(make_poold, tmp_path):
    """make install-client PREFIX=<a directory the loader does not search>,
    no DESTDIR: ldconfig runs, warmpool.pc carries an rpath, and a program
    built with pkg-config alone runs without LD_LIBRARY_PATH."""
    prefix = str(tmp_path / "prefix")
    r = subprocess.run(["make", "--no-print-directory", "install-client", "PREFIX=" + prefix], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    try:
        assert r.returncode == 0, r.stdout
        assert "LDCONFIG" in r.stdout, r.stdout
        pc = read(os.path.join(prefix, "lib", "pkgconfig", "warmpool.pc"))
        assert "-Wl,-rpath,${libdir}" in pc, pc
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        env.pop("LD_LIBRARY_PATH", None)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "warmpool"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        assert flags.returncode == 0, flags.stdout
        exe = str(tmp_path / "example")
        cc = subprocess.run(["cc", "-o", exe, os.path.join(REPO, "client/examples/run_submission.c")]
                            + flags.stdout.split(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert cc.returncode == 0, cc.stdout
        pd = make_poold()
        src = tmp_path / "sum.py"
        src.write_text("print(sum(map(int, input().split())))\n")
        run = subprocess.run([exe, "python", "inst-" + uuid.uuid4().hex[:6], str(src), "1 2\n", "3\n"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                             env=dict(env, WARMPOOL_URL=pd.url))
        assert run.returncode == 0 and "accepted: 1/1 passed" in run.stdout, run.stdout
    finally:
        subprocess.run(["make", "--no-print-directory", "uninstall-client", "PREFIX=" + prefix], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)


def test_session_runs_count_executions_not_file_operations(make_poold):
    """One run and three file operations on a session: `executions` (the
    RUNS of poolctl sessions ls) is 1; an Azure execution counts too."""
    pd = make_poold(pools={"python": {"language": "python", "warm": 1, "max": 4},
                           "python-s": {"language": "python", "stateful": "yes", "warm": 1, "max": 4}})
    c = pd.client()
    ident = "runs-" + uuid.uuid4().hex[:6]
    assert put_file(c, ident, "a.txt", b"x").status in (200, 201)
    assert session_run(c, ident, "print(open('/mnt/data/a.txt').read())").status == 200
    assert c.get("/v1/sessions/%s/files?pool=python" % ident).status == 200
    assert c.get("/v1/sessions/%s/files/a.txt?pool=python" % ident).status == 200
    assert c.get("/v1/sessions/%s?pool=python" % ident).body["executions"] == 1
    q = "api-version=2024-02-02-preview&identifier=%s" % ident
    assert c.post("/pools/python-s/code/execute?" + q, {"properties": {"code": "1+1"}}).status == 200
    up = c.get("/pools/python-s/files?" + q)
    assert up.status == 200, up
    assert c.get("/v1/sessions/%s?pool=python-s" % ident).body["executions"] == 1
    r = subprocess.run([os.path.join(REPO, "bin", "poolctl"), "sessions", "ls", "--pool", "python"],
                       env=dict(os.environ, WARMPOOL_URL=pd.url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    head, row = r.stdout.splitlines()[0].split(), [l for l in r.stdout.splitlines() if ident in l][0].split()
    assert "RUNS" in head and row[head.index("RUNS")] == "1", r.stdout
    for p in ("python", "python-s"):
        c.delete("/v1/sessions/%s?pool=%s" % (ident, p))
