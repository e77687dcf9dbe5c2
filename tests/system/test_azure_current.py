"""The current Azure dynamic sessions API (2025-02-02-preview and
2025-10-02-preview) through poold, against a real sandboxd and poold on
loopback: asynchronous executions, session management (GET session,
listSessions, metadata, .management/stopSession), errors in Azure's shape.

The requests replay the published specification's examples
(Azure/azure-rest-api-specs, specification/app/data-plane/DynamicSessions/
examples/2025-02-02-preview and 2025-10-02-preview), rebuilt by hand.

Run as root: /usr/bin/python3 -m pytest tests/system/test_azure_current.py
"""

import os
import re
import time
import urllib.parse
import uuid

import pytest

import wpdaemons
from conftest import start_pair, stop_pair

UID_BASE = 357000
CAPACITY = 24
EXEC_TOKEN = "cur-executor-%s" % uuid.uuid4().hex
ADMIN_TOKEN = "cur-admin-%s" % uuid.uuid4().hex
PER_SESSION = 3  # async_results_per_session in this suite
TTL_S = 3  # async_result_ttl in this suite
V2 = "2025-02-02-preview"
V10 = "2025-10-02-preview"
RESULTS_DIR = os.path.join(wpdaemons.make_tmpdir("wp-cur-results-"), "async")  # made by poold


class Env:
    def __init__(self, sb, pd):
        self.sb = sb
        self.pd = pd
        self.c = pd.client(token=EXEC_TOKEN, timeout=120)
        self.admin = pd.client(token=ADMIN_TOKEN, timeout=120)
        self.idents = []

    def ident(self):
        i = "cur-%s" % uuid.uuid4()
        self.idents.append(i)
        return i


@pytest.fixture(scope="module")
def cur():
    pools = {
        "python": {"language": "python", "stateful": "yes", "warm": 1, "max": 8, "idle_timeout": "2m",
                   "max_lifetime": "1h"},
        "shell": {"language": "shell", "warm": 1, "max": 8, "idle_timeout": "2m"},
        "javascript": {"language": "javascript", "stateful": "yes", "warm": 0, "max": 2, "idle_timeout": "2m"},
    }
    sb, pd = start_pair("AZURE CURRENT SYSTEM TESTS", "cur", UID_BASE, CAPACITY, pools,
                        tokens=[(EXEC_TOKEN, "executor", "backend"), (ADMIN_TOKEN, "admin", "ops")],
                        extra_poold="default_pool = python\nasync_results_per_session = %d\n"
                                    "async_result_ttl = %ds\nasync_results_dir = %s" % (PER_SESSION, TTL_S, RESULTS_DIR))
    yield Env(sb, pd)
    stop_pair(sb, pd, "azure-current suite")


@pytest.fixture
def env(cur):
    yield cur
    for i in cur.idents:
        for pool in ("python", "shell", "javascript"):
            cur.c.delete("/pools/%s/session?api-version=%s&identifier=%s" % (pool, V10, urllib.parse.quote(i)))
    cur.idents = []


def url(pool, path, ident=None, version=V10):
    q = "api-version=%s" % version
    if ident is not None:
        q += "&identifier=%s" % urllib.parse.quote(ident)
    return "/pools/%s/%s?%s" % (pool, path, q)


def poll(env, pool, ident, exec_id, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        r = env.c.get(url(pool, "executions/%s" % exec_id, ident))
        assert r.status == 200, r
        if r.body["status"] != "Running" or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


# --------------------------------------------------------------------------
# Synchronous, as in the examples


def test_spec_sync_example_2025_02(env):
    ident = env.ident()
    r = env.c.post(url("python", "executions", ident, V2),
                   {"codeInputType": "Inline", "executionType": "Synchronous", "code": "print(7*9)",
                    "timeoutInSeconds": 60})
    assert r.status == 200, r
    b = r.body
    assert (b["identifier"], b["executionType"], b["status"]) == (ident, "Synchronous", "Succeeded"), b
    assert b["result"]["stdout"] == "63\n" and b["result"]["stderr"] == "", b
    assert r.headers.get("operation-id") == b["id"], r.headers
    assert "/pools/python/executions/%s" % b["id"] in r.headers.get("operation-location", ""), r.headers


def test_unknown_fields_are_ignored(env):
    ident = env.ident()
    r = env.c.post(url("python", "executions", ident),
                   {"code": "1+1", "useEmptyKernel": False, "someFutureField": {"x": [1]}})
    assert r.status == 200 and r.body["result"]["executionResult"] == 2, r  # a value, as JSON


# --------------------------------------------------------------------------
# Asynchronous executions


@pytest.mark.parametrize("pool,body,stdout", [
    ("python", {"codeInputType": "Inline", "executionType": "Asynchronous",
                "code": "import time; time.sleep(0.5); print(7*9)", "timeoutInSeconds": 60}, "63\n"),
    ("shell", {"executionType": "Asynchronous", "shellCommand": "sleep 0.5; echo done"}, "done\n"),
])
def test_async_execution_runs_and_is_polled(env, pool, body, stdout):
    ident = env.ident()
    r = env.c.post(url(pool, "executions", ident), body, headers={"operation-id": "my-op.1"})
    assert r.status == 202, r
    assert r.body == {"id": "my-op.1", "identifier": ident, "executionType": "Asynchronous", "status": "Running"}, r
    assert r.headers.get("operation-id") == "my-op.1", r.headers
    loc = r.headers["operation-location"]
    assert "/pools/%s/executions/my-op.1?" % pool in loc, loc
    # the Operation-Location is where the result is: poll it as given
    path = urllib.parse.urlsplit(loc)
    r = env.c.get(path.path + "?" + path.query)
    assert r.status == 200 and r.body["id"] == "my-op.1", r
    r = poll(env, pool, ident, "my-op.1")
    assert r.body["status"] == "Succeeded", r
    assert r.body["executionType"] == "Asynchronous", r
    assert r.body["result"]["stdout"] == stdout, r
    # the same id again in the session: refused while it is kept
    r = env.c.post(url(pool, "executions", ident), body, headers={"operation-id": "my-op.1"})
    assert r.status == 409 and r.body["error"]["code"] == "ExecutionIdInUse", r


def test_async_failure_is_failed(env):
    ident = env.ident()
    r = env.c.post(url("shell", "executions", ident), {"executionType": "Asynchronous", "shellCommand": "exit 5"})
    assert r.status == 202, r
    r = poll(env, "shell", ident, r.body["id"])
    assert r.body["status"] == "Failed" and r.body["result"]["exitCode"] == 5, r


def test_async_results_bounded_per_session_and_in_time(env):
    ident = env.ident()
    ids = []
    for _ in range(PER_SESSION):
        r = env.c.post(url("python", "executions", ident), {"executionType": "Asynchronous", "code": "1"})
        assert r.status == 202, r
        ids.append(r.body["id"])
    r = env.c.post(url("python", "executions", ident), {"executionType": "Asynchronous", "code": "1"})
    assert r.status == 429 and r.body["error"]["code"] == "TooManyExecutions", r
    assert str(PER_SESSION) in r.body["error"]["message"], r
    # another session is not held back by this one
    other = env.ident()
    r = env.c.post(url("python", "executions", other), {"executionType": "Asynchronous", "code": "2"})
    assert r.status == 202, r
    for i in ids:
        assert poll(env, "python", ident, i).body["status"] == "Succeeded"
    time.sleep(TTL_S + 0.5)
    r = env.c.get(url("python", "executions/%s" % ids[0], ident))
    assert r.status == 404 and r.body["error"]["code"] == "ExecutionNotFound", r
    r = env.c.post(url("python", "executions", ident), {"executionType": "Asynchronous", "code": "1"})
    assert r.status == 202, r


def test_unknown_execution_is_404(env):
    ident = env.ident()
    r = env.c.get(url("python", "executions/nope", ident))
    assert r.status == 404 and r.body["error"]["code"] == "ExecutionNotFound", r
    assert "kept" in r.body["error"]["message"], r


def test_bad_operation_id_refused(env):
    r = env.c.post(url("python", "executions", env.ident()), {"executionType": "Asynchronous", "code": "1"},
                   headers={"operation-id": "../x"})
    assert r.status == 400 and r.body["error"]["code"] == "InvalidOperationId", r


# --------------------------------------------------------------------------
# Session management


def iso(s):
    assert s.endswith("Z"), s
    return time.mktime(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone


def test_get_session_shape(env):
    ident = env.ident()
    r = env.c.get(url("python", "session", ident, V2))
    assert r.status == 404 and r.body["error"]["code"] == "SessionNotFound", r
    t0 = time.time()
    assert env.c.post(url("python", "executions", ident), {"code": "x = 1"}).status == 200
    r = env.c.get(url("python", "session", ident, V2))
    assert r.status == 200, r
    b = r.body
    assert set(b) == {"identifier", "createdAt", "lastAccessedAt", "expireAt", "etag"}, b
    assert b["identifier"] == ident
    assert abs(iso(b["createdAt"]) - t0) < 5, b
    # idle_timeout 2m after the last use; max_lifetime 1h is later
    assert 100 < iso(b["expireAt"]) - iso(b["lastAccessedAt"]) <= 121, b


def test_list_sessions_needs_admin_and_pages(env):
    ident = env.ident()
    assert env.c.post(url("python", "executions", ident), {"code": "1"}).status == 200
    r = env.c.get(url("python", "listSessions"))
    assert r.status == 403, r
    r = env.admin.get(url("python", "listSessions"))
    assert r.status == 200, r
    assert ident in [s["identifier"] for s in r.body["sessions"]], r
    assert "nextLink" not in r.body, r
    r = env.admin.get(url("python", "listSessions") + "&skip=100000")
    assert r.status == 200 and r.body["sessions"] == [], r
    r = env.admin.get(url("python", "listSessions") + "&skip=-1")
    assert r.status == 400, r


def test_stop_session_ends_it(env):
    ident = env.ident()
    assert env.c.post(url("python", "executions", ident), {"code": "x = 41"}).status == 200
    r = env.c.post(url("python", ".management/stopSession", ident), {})
    assert r.status == 200 and r.body == {}, r
    r = env.c.get(url("python", "session", ident))
    assert r.status == 404, r
    r = env.c.post(url("python", "executions", ident), {"code": "print(x)"})
    assert r.status == 200 and "NameError" in r.body["result"]["stderr"], r
    # idempotent
    r = env.c.post(url("python", ".management/stopSession", ident), {})
    assert r.status == 200, r


def test_delete_session_drops_async_results(env):
    ident = env.ident()
    r = env.c.post(url("python", "executions", ident), {"executionType": "Asynchronous", "code": "1"})
    assert r.status == 202
    poll(env, "python", ident, r.body["id"])
    assert env.c.delete(url("python", "session", ident)).status == 204
    r = env.c.get(url("python", "executions/%s" % r.body["id"], ident))
    assert r.status == 404, r


def test_metadata_reads_the_host(env):
    r = env.c.get(url("python", "metadata"))
    assert r.status == 200, r
    b = r.body
    assert set(b) >= {"runtimes", "preInstalledPackages", "createdAt", "lastUpdatedAt"}, b
    import platform
    assert {"name": "python", "version": platform.python_version()} in b["runtimes"], b
    # the Python packages importable in a slot: what the host's python3 sees under /usr
    import subprocess
    host = subprocess.run(["/usr/bin/python3", "-I", "-c",
                           "import importlib.metadata as m, json; print(json.dumps(sorted("
                           "{(d.metadata['Name'], d.version) for d in m.distributions() if d.metadata['Name']})))"],
                          capture_output=True, text=True, check=True)
    want = [{"name": n, "version": v} for n, v in __import__("json").loads(host.stdout)]
    assert b["preInstalledPackages"] == want, (b["preInstalledPackages"][:5], want[:5])
    assert want, "the host's python3 has no distribution at all: nothing to compare"
    # kept: the second answer is the same, and no session of poold's own is left
    r2 = env.c.get(url("python", "metadata"))
    assert r2.body["preInstalledPackages"] == want, r2
    assert all(not s["identifier"].startswith("warmpool-metadata")
               for s in env.admin.get(url("python", "listSessions")).body["sessions"])
    r = env.c.get(url("shell", "metadata"))
    names = [x["name"] for x in r.body["runtimes"]]
    assert "shell" in names and "python" in names, r


def test_metadata_lists_what_javascript_can_require(env):
    """A JavaScript pool lists node's own modules (the version is node's)
    and any package node resolves from the slot, read in one of its slots;
    each one listed is one a session can require."""
    import json
    import subprocess
    r = env.c.get(url("javascript", "metadata"))
    assert r.status == 200, r
    pkgs = r.body["preInstalledPackages"]
    node_version = subprocess.run(["/usr/bin/node", "-p", "process.versions.node"], capture_output=True,
                                  text=True, check=True).stdout.strip()
    builtins = json.loads(subprocess.run(["/usr/bin/node", "-p", "JSON.stringify(require('module').builtinModules)"],
                                         capture_output=True, text=True, check=True).stdout)
    want = {b for b in builtins if not b.startswith("_") and "/" not in b}
    assert {"name": "fs", "version": node_version} in pkgs and {"name": "crypto", "version": node_version} in pkgs, pkgs
    assert {p["name"] for p in pkgs if p["version"] == node_version} >= want, pkgs
    assert pkgs == sorted(pkgs, key=lambda p: p["name"]) and len({p["name"] for p in pkgs}) == len(pkgs), pkgs
    ident = env.ident()
    names = [p["name"] for p in pkgs]
    r = env.c.post(url("javascript", "executions", ident),
                   {"code": "%s.filter(n => { try { require(n); return false } catch (e) { return true } })"
                            ".join(',') || 'all'" % json.dumps(names)})
    assert r.status == 200 and r.body["result"]["executionResult"] == "all", r
    assert env.c.get(url("javascript", "metadata")).body["preInstalledPackages"] == pkgs


def test_metadata_lists_the_commands_of_a_shell_session(env):
    """A shell pool lists the commands on its slots' PATH (what a
    SessionsBashTool user can run), read in one of its slots, bounded and
    kept; each is found by the session's bash."""
    r = env.c.get(url("shell", "metadata"))
    assert r.status == 200, r
    pkgs = r.body["preInstalledPackages"]
    names = [p["name"] for p in pkgs]
    assert {"bash", "ls", "sort", "python3", "node"} <= set(names), names[:50]
    assert names == sorted(names) and len(set(names)) == len(names) and 0 < len(names) <= 5000, names[:50]
    assert all(p["version"] == "" for p in pkgs), pkgs[:5]
    ident = env.ident()
    r = env.c.post(url("shell", "executions", ident),
                   {"shellCommand": "n=0; while read -r c; do command -v \"$c\" >/dev/null || n=$((n+1)); done; "
                                    "echo missing=$n", "stdin": "\n".join(names) + "\n"})
    assert r.status == 200 and r.body["result"]["stdout"] == "missing=0\n", r
    assert env.c.get(url("shell", "metadata")).body["preInstalledPackages"] == pkgs


def test_new_routes_need_their_api_version(env):
    r = env.c.get(url("python", "session", env.ident(), "2024-10-02-preview"))
    assert r.status == 400 and r.body["error"]["code"] == "InvalidApiVersion", r
    assert "2025-02-02-preview" in r.body["error"]["message"], r
    r = env.c.get(url("python", "metadata", None, "2024-02-02-preview"))
    assert r.status == 400 and r.body["error"]["code"] == "InvalidApiVersion", r


# --------------------------------------------------------------------------
# Last: restarts poold


def test_async_results_survive_a_poold_restart(env):
    """Kept results are answered the same by a restarted poold, within
    async_result_ttl; one still running at the restart answers Failed,
    saying why; none outlives its time or its session."""
    a, b, gone = env.ident(), env.ident(), env.ident()
    r = env.c.post(url("python", "executions", a), {"executionType": "Asynchronous", "code": "6*7"})
    assert r.status == 202, r
    done = poll(env, "python", a, r.body["id"])
    assert done.body["status"] == "Succeeded" and done.body["result"]["executionResult"] == 42, done
    r = env.c.post(url("python", "executions", b), {"executionType": "Asynchronous",
                                                    "code": "import time\ntime.sleep(20)"})
    assert r.status == 202 and r.body["status"] == "Running", r
    running_id = r.body["id"]
    r = env.c.post(url("python", "executions", gone), {"executionType": "Asynchronous", "code": "1"})
    poll(env, "python", gone, r.body["id"])
    gone_id = r.body["id"]
    assert env.c.delete(url("python", "session", gone)).status == 204
    assert all(os.stat(os.path.join(RESULTS_DIR, f)).st_mode & 0o077 == 0 for f in os.listdir(RESULTS_DIR))

    # a crash (SIGTERM would let the running one finish first); the
    # restarted poold keeps results 60 s, so that a slow restart does not
    # outlast them
    restart_poold(env, 60)
    r = env.c.get(url("python", "executions/%s" % done.body["id"], a))
    assert r.status == 200 and r.body == done.body, (r, done.body)
    r = env.c.get(url("python", "executions/%s" % running_id, b))
    assert r.status == 200 and r.body["status"] == "Failed", r
    assert r.body["error"]["code"] == "PooldRestarted" and "restarted" in r.body["error"]["message"], r
    assert r.body["id"] == running_id and r.body["identifier"] == b, r
    r = env.c.get(url("python", "executions/%s" % gone_id, gone))  # its session was deleted before
    assert r.status == 404, r
    assert len(os.listdir(RESULTS_DIR)) == 2, os.listdir(RESULTS_DIR)
    # a poold restarted with async_result_ttl = 3 s, 3 s after they
    # finished, finds both past their time: gone, files and all
    time.sleep(TTL_S + 0.5)
    restart_poold(env, TTL_S)
    assert os.listdir(RESULTS_DIR) == [], os.listdir(RESULTS_DIR)
    r = env.c.get(url("python", "executions/%s" % done.body["id"], a))
    assert r.status == 404, r


def restart_poold(env, ttl_s):
    env.pd.kill9()
    env.pd.extra_poold = re.sub(r"async_result_ttl = \d+s", "async_result_ttl = %ds" % ttl_s, env.pd.extra_poold)
    env.pd.write_config()
    env.pd.start()
    assert wpdaemons.wait_for(lambda: env.c.get("/readyz").status == 200, 60, 0.1), env.pd.log_text()[-2000:]
