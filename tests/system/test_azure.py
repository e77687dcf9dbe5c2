"""The Azure Container Apps dynamic sessions API of poold (docs/api.md,
docs/api.md "Azure dynamic sessions"), against a real sandboxd and a real
poold on loopback.

Each client test sends exactly what the real client sends — URL and query
order, body, headers, multipart form as its HTTP library builds it — and
reads exactly what it reads:

- LangChain's SessionsPythonREPLTool (langchain-azure-dynamic-sessions):
  code/execute, files/upload, files, files/content/{name}, session;
- Semantic Kernel's Python plugin (SessionsPythonTool): adds
  timeoutInSeconds, uploads name the file "/mnt/data/<name>";
- Semantic Kernel .NET (SessionsPythonPlugin, api-version
  2024-10-02-preview): POST executions, POST files, GET files/{name}/content;
- AutoGen's ACADynamicSessionsCodeExecutor: lists packages, chdirs to
  /mnt/data, reads `"Success" in status`.

Standard library only: the clients' requests are rebuilt by hand.
Run as root: /usr/bin/python3 -m pytest tests/system/test_azure.py
"""

import binascii
import datetime
import hashlib
import http.client
import json
import os
import time
import urllib.parse
import uuid

import pytest

import wpdaemons
from conftest import missing_runtime, start_pair, stop_pair

UID_BASE = 352000  # 350000–350047 is often taken by WP_TEST_UID_BASE runs of the sandboxd suite
CAPACITY = 40
MAX_UPLOAD = 8 << 20  # poold's max_upload in this suite (the default is 128M)
EXEC_TOKEN = "azure-executor-%s" % uuid.uuid4().hex
METRICS_TOKEN = "azure-metrics-%s" % uuid.uuid4().hex
API_OLD = "2024-02-02-preview"
API_NEW = "2024-10-02-preview"
SUPPORTED = ["2024-02-02-preview", "2024-08-02-preview", "2024-10-02-preview", "2025-02-02-preview",
             "2025-10-02-preview"]


# --------------------------------------------------------------------------
# The daemons


class Env:
    def __init__(self, sb, pd, js):
        self.sb = sb
        self.pd = pd
        self.js = js
        self.c = pd.client(token=EXEC_TOKEN, timeout=120)
        self.idents = []

    def ident(self, prefix="s"):
        i = "%s-%s" % (prefix, uuid.uuid4())
        self.idents.append(i)
        return i


@pytest.fixture(scope="module")
def aca():
    pools = {
        "python": {"language": "python", "stateful": "yes", "warm": 2, "max": 16, "idle_timeout": "2m"},
        "pyidle": {"language": "python", "stateful": "yes", "warm": 1, "max": 4, "idle_timeout": "2s"},
        "plain": {"language": "python", "warm": 0, "max": 2, "idle_timeout": "1m"},
        # warm 0: poold is ready whether or not this node has node.js
        # (test_javascript_is_stateful fails then, with the reason)
        "javascript": {"language": "javascript", "stateful": "yes", "warm": 0, "max": 4, "idle_timeout": "2m"},
    }
    sb, pd = start_pair("AZURE SYSTEM TESTS", "azure", UID_BASE, CAPACITY, pools,
                        tokens=[(EXEC_TOKEN, "executor", "backend"), (METRICS_TOKEN, "metrics", "prom")],
                        extra_poold="default_pool = python\nmax_upload = %d" % MAX_UPLOAD, max_body="64M")
    langs = {l["name"]: l for l in sb.client().get("/v1/languages").body["languages"]}
    yield Env(sb, pd, langs.get("javascript", {}).get("available", False))
    stop_pair(sb, pd, "azure suite")


@pytest.fixture
def env(aca):
    """The suite's daemons; the sessions a test opened are ended after it."""
    yield aca
    for i in aca.idents:
        for pool in ("python", "pyidle", "plain", "javascript"):
            aca.c.delete("/pools/%s/session?identifier=%s&api-version=%s" % (pool, urllib.parse.quote(i), API_OLD))
    aca.idents = []


# --------------------------------------------------------------------------
# What the clients send


ENDPOINT = "/pools/python/"  # what users put as their pool management endpoint


def langchain_url(path, ident, endpoint=ENDPOINT):
    """SessionsPythonREPLTool._build_url."""
    q = "identifier=%s&api-version=2024-02-02-preview" % urllib.parse.quote(ident)
    return endpoint + path + ("&" if "?" in endpoint else "?") + q


def sk_python_url(endpoint, ident):
    """SessionsPythonTool._build_url_with_version: identifier first, not encoded."""
    if endpoint.endswith("/"):
        endpoint = endpoint[:-1]
    return "%s%s?identifier=%s&api-version=2024-02-02-preview" % (ENDPOINT, endpoint, ident)


def sk_dotnet_url(path, ident):
    """SessionsPythonPlugin.SendAsync: $"{path}?identifier={id}&api-version=2024-10-02-preview"."""
    return "%s%s?identifier=%s&api-version=%s" % (ENDPOINT, path, ident, API_NEW)


def autogen_url(path, ident):
    """ACADynamicSessionsCodeExecutor._construct_url: api-version first."""
    return "%s%s?api-version=2024-02-02-preview&identifier=%s" % (ENDPOINT, path, ident)


def form_requests(name, data, ctype="application/octet-stream"):
    """requests' files=[("file", (name, data, ctype))] with data={} (urllib3)."""
    b = binascii.hexlify(os.urandom(16)).decode()
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: %s\r\n\r\n" % (b, name, ctype)).encode() + data + ("\r\n--%s--\r\n" % b).encode())
    return body, "multipart/form-data; boundary=%s" % b


def form_httpx(name, data):
    """httpx' files={"file": (name, data, "application/octet-stream")}."""
    b = os.urandom(16).hex()
    name = name.replace('"', "%22")
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n" % (b, name)).encode() + data +
            ("\r\n--%s--\r\n" % b).encode())
    return body, "multipart/form-data; boundary=%s" % b


def form_aiohttp(name, data):
    """aiohttp.FormData().add_field("file", f, filename=..., content_type=...)."""
    b = uuid.uuid4().hex
    body = (("--%s\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; "
             "name=\"file\"; filename=\"%s\"\r\n\r\n" % (b, name)).encode() + data + ("\r\n--%s--\r\n" % b).encode())
    return body, "multipart/form-data; boundary=%s" % b


def form_dotnet(name, data):
    """MultipartFormDataContent { { ByteArrayContent, "file", name } }: quoted
    boundary, the name unquoted, FileName quoted only when it must be (MIME
    encoded-word when not ASCII), FileNameStar (RFC 5987), no part
    Content-Type."""
    b = str(uuid.uuid4())
    if not name.isascii():
        fn = '"=?utf-8?B?%s?="' % binascii.b2a_base64(name.encode(), newline=False).decode()
    elif any(c in name for c in ' ()<>@,;:\\"/[]?={}\t'):
        fn = '"%s"' % name
    else:
        fn = name
    star = urllib.parse.quote(name, safe="!#$&+-.^_`|~")
    body = (("--%s\r\nContent-Disposition: form-data; name=file; filename=%s; filename*=utf-8''%s\r\n\r\n"
             % (b, fn, star)).encode() + data + ("\r\n--%s--\r\n" % b).encode())
    return body, "multipart/form-data; boundary=\"%s\"" % b


def upload(env, url, form):
    body, ctype = form
    return env.c.request("POST", url, raw=body, headers={"Content-Type": ctype})


def lc_execute(env, ident, code, endpoint=ENDPOINT):
    """LangChain: POST code/execute, raise_for_status, response.json()["properties"]."""
    r = env.c.post(langchain_url("code/execute", ident, endpoint),
                   {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}},
                   headers={"User-Agent": "langchain-azure-dynamic-sessions/0.2.0 (Language=Python)"})
    assert r.status == 200, r
    return r.body.get("properties", {})


def sk_execute(env, ident, code, timeout=100):
    """SK Python: {"properties": {codeInputType, executionType, code, timeoutInSeconds}}."""
    r = env.c.post(sk_python_url("code/execute/", ident),
                   {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code,
                                   "timeoutInSeconds": timeout}})
    assert r.status == 200, r
    return r.body["properties"]


def assert_error(r, status, code=None):
    assert r.status == status, "expected %d %s, got %r" % (status, code or "", r)
    assert isinstance(r.body, dict) and isinstance(r.body.get("error"), dict), "not an Azure error body: %r" % (r,)
    e = r.body["error"]
    assert isinstance(e.get("code"), str) and isinstance(e.get("message"), str) and e["message"], r
    if code:
        assert e["code"] == code, r


def no_session(env, ident, pool="python"):
    r = env.c.get("/v1/sessions/%s?pool=%s" % (urllib.parse.quote(ident, safe=""), pool))
    return r.status == 404


def iso_utc(s):
    """What .NET's DateTime and Python's fromisoformat accept; UTC."""
    d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    assert d.utcoffset() == datetime.timedelta(0), s
    return d


BINARY = bytes(range(256)) * 64 + b"\r\n--boundary\r\n\r\n--\r\n\x00\xff" + os.urandom(70000)


# --------------------------------------------------------------------------
# The clients, end to end


def test_langchain_python_repl_tool(env):
    ident = env.ident("lc")
    p = lc_execute(env, ident, "x = 6 * 7")
    assert p["status"] == "Success", p
    assert (p["result"], p["stdout"], p["stderr"]) == ("", "", ""), p
    assert isinstance(p["executionTimeInMilliseconds"], int), p
    p = lc_execute(env, ident, "x")
    assert p["result"] == 42 and p["status"] == "Success", p
    p = lc_execute(env, ident, "print('hello world')")
    assert p["stdout"] == "hello world\n" and p["result"] == "", p
    # what _run() hands the model
    content = json.dumps({"result": p.get("result"), "stdout": p.get("stdout"), "stderr": p.get("stderr")})
    assert json.loads(content)["stdout"] == "hello world\n"

    # upload_file(data=..., remote_file_path="data.bin"): reads value[0].properties
    r = upload(env, langchain_url("files/upload", ident), form_requests("data.bin", BINARY))
    assert r.status == 200, r
    meta = r.body["value"][0]["properties"]
    assert meta["filename"] == "data.bin" and meta["size"] == len(BINARY), r
    iso_utc(meta["lastModifiedTime"])
    # list_files(): value[*].properties.filename/size
    r = env.c.get(langchain_url("files", ident))
    assert r.status == 200, r
    listed = {e["properties"]["filename"]: e["properties"]["size"] for e in r.body["value"]}
    assert listed.get("data.bin") == len(BINARY), r
    # download_file(remote_file_path=...): files/content/{quote(path)}, raw bytes
    r = env.c.get(langchain_url("files/content/%s" % urllib.parse.quote("data.bin"), ident))
    assert r.status == 200 and r.raw == BINARY, "binary download differs (%d bytes, want %d)" % (len(r.raw), len(BINARY))
    # the code sees the upload in /mnt/data, byte for byte
    p = lc_execute(env, ident, "import hashlib\nhashlib.sha256(open('/mnt/data/data.bin','rb').read()).hexdigest()")
    assert p["result"] == hashlib.sha256(BINARY).hexdigest(), p
    # delete_session(): DELETE session?identifier=…&api-version=2025-10-02-preview, raise_for_status
    r = env.c.delete(ENDPOINT + "session?identifier=%s&api-version=2025-10-02-preview" % urllib.parse.quote(ident))
    assert r.status == 204, r
    assert no_session(env, ident)


def test_semantic_kernel_python_plugin(env):
    ident = str(uuid.uuid4())
    env.idents.append(ident)
    p = sk_execute(env, ident, "import math\nr = math.sqrt(16)\nr")
    assert p["status"] == "Success", p
    text = "Result:\n%sStdout:\n%sStderr:\n%s" % (p["result"], p["stdout"], p["stderr"])
    assert text == "Result:\n4.0Stdout:\nStderr:\n", text
    p = sk_execute(env, ident, "print(r * 2)")
    assert p["status"] == "Success" and p["stdout"] == "8.0\n", p

    # upload_file(local_file_path=...): the part's filename is "/mnt/data/<name>"
    data = b"col1,col2\n1,2\n"
    r = upload(env, sk_python_url("files/upload", ident), form_httpx("/mnt/data/input.csv", data))
    assert r.status == 200, r
    meta = r.body["value"][0]["properties"]
    assert (meta["filename"], meta["size"]) == ("input.csv", len(data)), r
    r = env.c.get(sk_python_url("files", ident))
    assert r.status == 200, r
    files = [(e["properties"]["filename"], e["properties"]["size"]) for e in r.body["value"]]
    assert ("input.csv", len(data)) in files, r
    r = env.c.get(sk_python_url("files/content/input.csv", ident))
    assert r.status == 200 and r.raw == data, r
    p = sk_execute(env, ident, "open('/mnt/data/input.csv').read().splitlines()[1]")
    assert p["result"] == "1,2", p


def test_semantic_kernel_dotnet_plugin(env):
    ident = str(uuid.uuid4())
    env.idents.append(ident)
    # JsonSerializer.Serialize(SessionsPythonCodeExecutionProperties): camelCase
    # keys, enum values as JsonStringEnumConverter writes them
    body = {"codeInputType": "Inline", "executionType": "Synchronous", "timeoutInSeconds": 100,
            "code": "values = [1, 2, 3]\nsum(values)"}
    r = env.c.post(sk_dotnet_url("executions", ident), body)
    assert r.status == 200, r
    b = r.body
    assert b["status"] == "Succeeded", r
    res = b["result"]
    assert res["executionResult"] == 6 and res["stdout"] == "" and res["stderr"] == "", r
    assert b["identifier"] == ident and b["executionType"] == "Synchronous" and uuid.UUID(b["id"]), r
    assert isinstance(res["executionTimeInMilliseconds"], int), r
    # the same with PascalCase keys, as older builds send them
    r = env.c.post(sk_dotnet_url("executions", ident),
                   {"CodeInputType": "inline", "ExecutionType": "synchronous", "TimeoutInSeconds": 30,
                    "Code": "print(len(values))"})
    assert r.status == 200 and r.body["status"] == "Succeeded", r
    assert r.body["result"]["stdout"] == "3\n" and r.body["result"]["executionResult"] in ("", None), r
    r = env.c.post(sk_dotnet_url("executions", ident), dict(body, code="1/0"))
    assert r.status == 200 and r.body["status"] == "Failed", r
    assert "ZeroDivisionError" in r.body["result"]["stderr"], r

    # UploadFileAsync: POST files, the answer is one SessionsRemoteFileMetadata
    data = os.urandom(3000)
    r = upload(env, sk_dotnet_url("files", ident), form_dotnet("report data.bin", data))
    assert r.status == 200, r
    assert (r.body["name"], r.body["sizeInBytes"], r.body["type"]) == ("report data.bin", len(data), "file"), r
    iso_utc(r.body["lastModifiedAt"])
    # ListFilesAsync: value deserialized as SessionsRemoteFileMetadata[]
    r = env.c.get(sk_dotnet_url("files", ident))
    assert r.status == 200, r
    entry = [e for e in r.body["value"] if e["name"] == "report data.bin"]
    assert entry and entry[0]["sizeInBytes"] == len(data) and entry[0]["type"] == "file", r
    iso_utc(entry[0]["lastModifiedAt"])
    # DownloadFileAsync: files/{Uri.EscapeDataString(name)}/content
    r = env.c.get(sk_dotnet_url("files/%s/content" % urllib.parse.quote("report data.bin", safe=""), ident))
    assert r.status == 200 and r.raw == data, r
    assert r.headers.get("content-type") == "application/octet-stream", r.headers


def test_autogen_executor(env):
    ident = str(uuid.uuid4())
    env.idents.append(ident)

    def run(code):
        r = env.c.post(autogen_url("code/execute", ident),
                       {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}},
                       headers={"Content-Type": "application/json"})
        assert r.status == 200, r
        data = r.body["properties"]
        logs = data.get("stderr", "") + data.get("stdout", "")
        exitcode = 0
        if "Success" in data["status"]:
            logs += str(data["result"])
        elif "Failure" in data["status"]:
            exitcode = 1
        return exitcode, logs

    # get_available_packages(), then _setup_cwd()
    rc, out = run("\nimport pkg_resources\n[d.project_name for d in pkg_resources.working_set]\n")
    assert rc == 0 and "[" in out, out
    rc, out = run("import os; os.chdir('/mnt/data')")
    assert rc == 0 and out == "", out
    # a code block that writes a file next to it, then download_files()
    rc, out = run("with open('result.txt', 'w') as f:\n    f.write('done')\nprint(os.getcwd())")
    assert (rc, out) == (0, "/mnt/data\n"), out
    r = env.c.get(autogen_url("files", ident))
    names = [v["properties"]["filename"] for v in r.body["value"]]
    assert "result.txt" in names, r
    r = env.c.get(autogen_url("files/content/result.txt", ident))
    assert r.status == 200 and r.raw == b"done", r
    rc, out = run("raise RuntimeError('boom')")
    assert rc == 1 and "RuntimeError: boom" in out, out
    # upload_files(): aiohttp's form, sent chunked
    body, ctype = form_aiohttp("in.txt", b"from autogen\n")
    conn = http.client.HTTPConnection("127.0.0.1", env.pd.port, timeout=30)
    conn.request("POST", autogen_url("files/upload", ident), body=iter([body[:100], body[100:]]),
                 headers={"Content-Type": ctype, "Authorization": "Bearer %s" % EXEC_TOKEN}, encode_chunked=True)
    resp = conn.getresponse()
    answer = resp.read()
    conn.close()
    assert resp.status == 200, answer
    rc, out = run("print(open('in.txt').read(), end='')")
    assert (rc, out) == (0, "from autogen\n"), out


# --------------------------------------------------------------------------
# Sessions: state, isolation, end


def test_state_persists_and_identifiers_are_isolated(env):
    a, b = env.ident("iso-a"), env.ident("iso-b")
    assert lc_execute(env, a, "import json\nsecret = 'alpha'\ndef f(n):\n    return n + 1")["status"] == "Success"
    assert lc_execute(env, a, "os_cwd = __import__('os').getcwd()")["status"] == "Success"
    assert upload(env, langchain_url("files/upload", a), form_requests("mine.txt", b"A only")).status == 200
    p = lc_execute(env, a, "json.dumps([secret, f(41)])")
    assert p["result"] == '["alpha", 42]', p
    # b: nothing of a
    p = lc_execute(env, b, "secret")
    assert p["status"] == "Failure" and "NameError" in p["stderr"], p
    p = lc_execute(env, b, "import os\nsorted(os.listdir('/mnt/data'))")
    assert "mine.txt" not in p["result"], p
    r = env.c.get(langchain_url("files", b))
    assert [e["properties"]["filename"] for e in r.body["value"]].count("mine.txt") == 0, r
    assert env.c.get(langchain_url("files/content/mine.txt", b)).status == 404
    # and a still has all of it
    assert lc_execute(env, a, "secret")["result"] == "alpha"


def test_exception_is_failure_and_session_lives(env):
    ident = env.ident("exc")
    assert lc_execute(env, ident, "kept = [1, 2]")["status"] == "Success"
    p = lc_execute(env, ident, "print('before')\nraise ValueError('bad value')")
    assert p["status"] == "Failure", p
    assert p["stdout"] == "before\n", p
    assert "Traceback" in p["stderr"] and "ValueError: bad value" in p["stderr"], p
    assert "state" not in p["stderr"].lower() or "lost" not in p["stderr"].lower(), p
    assert lc_execute(env, ident, "kept")["result"] == "[1, 2]"


def test_timeout_loses_state_keeps_files(env):
    ident = env.ident("tmo")
    assert lc_execute(env, ident, "x = 1")["status"] == "Success"
    assert upload(env, langchain_url("files/upload", ident), form_requests("keep.txt", b"kept")).status == 200
    t0 = time.monotonic()
    p = sk_execute(env, ident, "import time\nwhile True:\n    time.sleep(0.01)", timeout=2)
    took = time.monotonic() - t0
    assert p["status"] == "Failure", p
    assert "lost" in p["stderr"] and "state" in p["stderr"], p
    assert took < 20, "a 2 s timeout took %.1f s" % took
    p = lc_execute(env, ident, "x")
    assert p["status"] == "Failure" and "NameError" in p["stderr"], "state survived a timeout: %r" % p
    p = lc_execute(env, ident, "open('/mnt/data/keep.txt').read()")
    assert p["result"] == "kept", p
    assert lc_execute(env, ident, "y = 2\ny")["result"] == 2


def test_crash_loses_state(env):
    ident = env.ident("crash")
    assert lc_execute(env, ident, "x = 1")["status"] == "Success"
    p = lc_execute(env, ident, "import os\nos._exit(3)")
    assert p["status"] == "Failure" and "lost" in p["stderr"], p
    p = lc_execute(env, ident, "x")
    assert p["status"] == "Failure" and "NameError" in p["stderr"], p
    assert lc_execute(env, ident, "1 + 1")["result"] == 2


def test_delete_session_ends_it(env):
    ident = env.ident("del")
    assert lc_execute(env, ident, "x = 'here'")["status"] == "Success"
    assert upload(env, langchain_url("files/upload", ident), form_requests("f.txt", b"f")).status == 200
    r = env.c.delete(ENDPOINT + "session?identifier=%s&api-version=%s" % (ident, API_OLD))
    assert r.status == 204 and r.raw == b"", r
    assert no_session(env, ident)
    r = env.c.get(langchain_url("files", ident))
    assert r.status == 200 and r.body == {"value": []}, r
    p = lc_execute(env, ident, "x")
    assert p["status"] == "Failure" and "NameError" in p["stderr"], p
    # an identifier without a session: 204 as well (DELETE is idempotent)
    other = env.ident("never")
    r = env.c.delete(ENDPOINT + "session?identifier=%s&api-version=2025-10-02-preview" % other)
    assert r.status == 204, r


def test_idle_timeout_ends_session(env):
    ident = env.ident("idle")
    url = langchain_url("code/execute", ident, "/pools/pyidle/")
    body = {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "x = 5"}}
    r = env.c.post(url, body)
    assert r.status == 200 and r.body["properties"]["status"] == "Success", r
    assert upload(env, langchain_url("files/upload", ident, "/pools/pyidle/"),
                  form_requests("f.txt", b"f")).status == 200
    assert wpdaemons.wait_for(lambda: no_session(env, ident, "pyidle"), 10, 0.2), \
        "session not ended 10 s after a 2 s idle timeout"
    r = env.c.post(url, dict(body, properties=dict(body["properties"], code="x")))
    assert r.status == 200 and "NameError" in r.body["properties"]["stderr"], r
    r = env.c.get(langchain_url("files", ident, "/pools/pyidle/"))
    assert "f.txt" not in [e["properties"]["filename"] for e in r.body["value"]], r


def test_calls_keep_session_alive(env):
    ident = env.ident("alive")
    url = langchain_url("code/execute", ident, "/pools/pyidle/")
    body = {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "n = 0"}}
    assert env.c.post(url, body).status == 200
    for _ in range(4):
        time.sleep(1)
        r = env.c.post(url, {"properties": {"code": "n += 1\nn"}})
        assert r.status == 200 and r.body["properties"]["status"] == "Success", r
    assert r.body["properties"]["result"] == 4, r


def test_default_pool_and_prefixed_are_one_session(env):
    ident = env.ident("dflt")
    assert lc_execute(env, ident, "z = 'shared'", endpoint="/")["status"] == "Success"
    assert lc_execute(env, ident, "z", endpoint="/pools/python/")["result"] == "shared"
    assert upload(env, langchain_url("files/upload", ident, "/"), form_requests("d.txt", b"d")).status == 200
    r = env.c.get(langchain_url("files", ident, "/pools/python/"))
    assert "d.txt" in [e["properties"]["filename"] for e in r.body["value"]], r


def test_javascript_is_stateful(env):
    if not env.js:
        missing_runtime("javascript", "sandboxd says javascript is not available on this node")
    ident = env.ident("js")
    ep = "/pools/javascript/"
    p = lc_execute(env, ident, "let a = 20; function twice(n) { return 2 * n }", endpoint=ep)
    assert p["status"] == "Success", p
    p = lc_execute(env, ident, "console.log('hi'); twice(a) + 2", endpoint=ep)
    assert (p["status"], p["stdout"], p["result"]) == ("Success", "hi\n", 42), p
    p = lc_execute(env, ident, "throw new Error('nope')", endpoint=ep)
    assert p["status"] == "Failure" and "nope" in p["stderr"], p
    assert lc_execute(env, ident, "a", endpoint=ep)["result"] == 20


def test_executions_shape_on_error_and_timeout(env):
    ident = env.ident("exs")
    r = env.c.post("/pools/python/executions?identifier=%s&api-version=2025-02-02-preview" % ident,
                   {"codeInputType": "inline", "executionType": "synchronous", "code": "while True: pass",
                    "timeoutInSeconds": 1})
    assert r.status == 200, r
    assert r.body["status"] == "Failed" and "lost" in r.body["result"]["stderr"], r
    assert set(r.body) == {"id", "identifier", "executionType", "status", "result"}, r
    assert set(r.body["result"]) == {"stdout", "stderr", "executionResult", "executionTimeInMilliseconds"}, r


def test_long_output_is_cut_and_said(env):
    ident = env.ident("long")
    p = lc_execute(env, ident, "print('x' * 3_000_000)\n'still here'")
    assert p["status"] == "Success" and p["result"] == "still here", {k: str(v)[:200] for k, v in p.items()}
    assert 0 < len(p["stdout"]) < 3_000_000, len(p["stdout"])
    assert "stdout was too long" in p["stderr"], p["stderr"][:500]


def test_restart_adopts_slots_by_interpreter(env):
    """A restarted poold takes the ready slots back into the pool that made
    them: a slot without an interpreter never serves a stateful pool. (Its
    own sandboxd: a second poold on the suite's would adopt that one's slots.)"""
    sb = wpdaemons.Sandboxd(wpdaemons.make_tmpdir("wp-azure-node2-"), uid_base=UID_BASE + 100, capacity=8,
                            cgroup_name="wp-azure2-%d" % os.getpid())
    pd = None
    try:
        sb.start()
        pools = {"stateful1": {"language": "python", "stateful": "yes", "warm": 2, "max": 2},
                 "plain1": {"language": "python", "warm": 2, "max": 2}}
        pd = wpdaemons.Poold(wpdaemons.make_tmpdir("wp-azure-poold2-"), nodes={"local": sb.url}, pools=pools)
        pd.start()
        c = pd.client()

        def ready():
            ps = {p["name"]: p for p in c.get("/v1/pools").body["pools"]}
            return ps["stateful1"]["ready"] == 2 and ps["plain1"]["ready"] == 2

        assert wpdaemons.wait_for(ready, 60, 0.1), c.get("/v1/pools")
        before = {s["id"]: s["interpreter"] for s in sb.client().get("/v1/slots").body["slots"]}
        assert sorted(before.values()) == [False, False, True, True], before
        assert pd.stop() == 0
        pd.start()
        assert wpdaemons.wait_for(ready, 30, 0.1), c.get("/v1/pools")
        time.sleep(1.5)  # a pool tick: a wrongly adopted slot would be destroyed and replaced
        after = {s["id"]: s["interpreter"] for s in sb.client().get("/v1/slots").body["slots"]}
        assert after == before, "slots changed across the restart: %r → %r" % (before, after)
        for i in range(2):
            r = c.post("/pools/stateful1/code/execute?identifier=r%d&api-version=%s" % (i, API_OLD),
                       {"properties": {"code": "6 * 7"}})
            assert r.status == 200 and r.body["properties"]["result"] == 42, r
    finally:
        if pd:
            pd.cleanup()
        sb.stop()
        problems = sb.cleanup()
    assert not problems, problems


# --------------------------------------------------------------------------
# Files (no interpreter needed)


def test_binary_round_trip_every_client_form(env):
    ident = env.ident("bin")
    forms = [("requests.bin", form_requests), ("httpx.bin", form_httpx), ("aiohttp.bin", form_aiohttp),
             ("dotnet.bin", form_dotnet)]
    for name, form in forms:
        r = upload(env, langchain_url("files/upload", ident, "/pools/plain/"), form(name, BINARY))
        assert r.status == 200, (name, r)
        assert r.body["value"][0]["properties"]["size"] == len(BINARY), (name, r)
    for name, _ in forms:
        r = env.c.get(langchain_url("files/content/%s" % name, ident, "/pools/plain/"))
        assert r.status == 200 and r.raw == BINARY, "%s: %d bytes back, %d sent" % (name, len(r.raw), len(BINARY))
        r = env.c.get("/pools/plain/files/%s/content?identifier=%s&api-version=%s" % (name, ident, API_NEW))
        assert r.status == 200 and r.raw == BINARY, name
    # an empty file, and a name with spaces and UTF-8
    name = "résumé final.txt"
    r = upload(env, langchain_url("files/upload", ident, "/pools/plain/"), form_dotnet(name, b""))
    assert r.status == 200 and r.body["value"][0]["properties"] == dict(
        r.body["value"][0]["properties"], filename=name, size=0), r
    r = env.c.get(langchain_url("files/content/%s" % urllib.parse.quote(name), ident, "/pools/plain/"))
    assert r.status == 200 and r.raw == b"", r


def test_client_file_flows(env):
    """Each client's upload, list and download as it sends and reads them,
    on a pool without an interpreter (files need none)."""
    ident = str(uuid.uuid4())
    env.idents.append(ident)
    ep = "/pools/plain/"
    # LangChain
    url = lambda path: langchain_url(path, ident, ep)  # noqa: E731
    r = upload(env, url("files/upload"), form_requests("lc.bin", BINARY))
    assert r.status == 200 and r.body["value"][0]["properties"]["filename"] == "lc.bin", r
    assert r.body["value"][0]["properties"]["size"] == len(BINARY), r
    r = env.c.get(url("files"))
    assert {e["properties"]["filename"]: e["properties"]["size"] for e in r.body["value"]} == {"lc.bin": len(BINARY)}
    assert env.c.get(url("files/content/lc.bin")).raw == BINARY
    # Semantic Kernel Python: the part is named "/mnt/data/<name>"
    q = "?identifier=%s&api-version=2024-02-02-preview" % ident
    r = upload(env, ep + "files/upload" + q, form_httpx("/mnt/data/sk.csv", b"a,b\n"))
    assert r.status == 200, r
    assert (r.body["value"][0]["properties"]["filename"], r.body["value"][0]["properties"]["size"]) == ("sk.csv", 4)
    r = env.c.get(ep + "files" + q)
    assert "sk.csv" in [e["properties"]["filename"] for e in r.body["value"]], r
    assert env.c.get(ep + "files/content/sk.csv" + q).raw == b"a,b\n"
    # Semantic Kernel .NET (2024-10-02-preview): POST files answers one file
    qn = "?identifier=%s&api-version=%s" % (ident, API_NEW)
    r = upload(env, ep + "files" + qn, form_dotnet("net file.txt", b"dotnet"))
    assert r.status == 200 and (r.body["name"], r.body["sizeInBytes"], r.body["type"]) == ("net file.txt", 6, "file")
    iso_utc(r.body["lastModifiedAt"])
    r = env.c.get(ep + "files" + qn)
    names = {e["name"]: e for e in r.body["value"]}
    assert set(names) == {"lc.bin", "sk.csv", "net file.txt"}, r
    for e in names.values():
        assert e["type"] == "file" and isinstance(e["sizeInBytes"], int), e
        iso_utc(e["lastModifiedAt"])
    r = env.c.get(ep + "files/%s/content" % urllib.parse.quote("net file.txt", safe="") + qn)
    assert r.status == 200 and r.raw == b"dotnet" and r.headers["content-type"] == "application/octet-stream", r
    # AutoGen: aiohttp's form, sent chunked; lists value[*].properties.filename
    qa = "?api-version=2024-02-02-preview&identifier=%s" % ident
    body, ctype = form_aiohttp("ag.txt", BINARY)
    conn = http.client.HTTPConnection("127.0.0.1", env.pd.port, timeout=30)
    conn.request("POST", ep + "files/upload" + qa, body=iter([body[:1000], body[1000:50000], body[50000:]]),
                 headers={"Content-Type": ctype, "Authorization": "Bearer %s" % EXEC_TOKEN})
    resp = conn.getresponse()
    answer = resp.read()
    conn.close()
    assert resp.status == 200, answer
    r = env.c.get(ep + "files" + qa)
    assert "ag.txt" in [v["properties"]["filename"] for v in r.body["value"]], r
    assert env.c.get(ep + "files/content/ag.txt" + qa).raw == BINARY


def test_upload_replaces_and_delete_file(env):
    ident = env.ident("repl")
    ep = "/pools/plain/"
    assert upload(env, langchain_url("files/upload", ident, ep), form_requests("a.txt", b"one")).status == 200
    assert upload(env, langchain_url("files/upload", ident, ep), form_requests("a.txt", b"second")).status == 200
    r = env.c.get(langchain_url("files/content/a.txt", ident, ep))
    assert r.raw == b"second", r
    # newer metadata route
    r = env.c.get("%sfiles/a.txt?identifier=%s&api-version=%s" % (ep, ident, API_NEW))
    assert r.status == 200 and r.body["name"] == "a.txt" and r.body["sizeInBytes"] == 6, r
    r = env.c.delete("%sfiles/a.txt?identifier=%s&api-version=%s" % (ep, ident, API_OLD))
    assert r.status == 204, r
    r = env.c.get(langchain_url("files", ident, ep))
    assert r.body == {"value": []}, r
    assert_error(env.c.delete("%sfiles/a.txt?identifier=%s&api-version=%s" % (ep, ident, API_OLD)), 404,
                 "FileNotFound")
    assert_error(env.c.get(langchain_url("files/content/a.txt", ident, ep)), 404, "FileNotFound")


def test_file_list_without_session_leases_nothing(env):
    ident = env.ident("nolease")
    r = env.c.get(langchain_url("files", ident))
    assert r.status == 200 and r.body == {"value": []}, r
    r = env.c.get("/pools/python/files?identifier=%s&api-version=%s" % (ident, API_NEW))
    assert r.status == 200 and r.body == {"value": []}, r
    assert_error(env.c.get(langchain_url("files/content/x.txt", ident)), 404)
    assert no_session(env, ident)


@pytest.mark.parametrize("name", ["../escape.txt", "a/b.txt", "..", ".", "bad\x01name", "/mnt/data/../x",
                                  "/etc/passwd", "x" * 256, "tab\tname"])
def test_upload_bad_names_refused(env, name):
    ident = env.ident("badname")
    r = upload(env, langchain_url("files/upload", ident, "/pools/plain/"), form_requests(name, b"x"))
    # a raw control byte in the part's header is a malformed form already
    assert_error(r, 400, "BadRequest" if "\x01" in name else "InvalidFileName")
    assert no_session(env, ident, "plain"), "a refused upload leased a slot"


def test_path_bad_names_refused(env):
    ident = env.ident("badpath")
    ep = "/pools/plain/"
    assert upload(env, langchain_url("files/upload", ident, ep), form_requests("ok.txt", b"x")).status == 200
    for path in ("files/content/a%2Fb", "files/content/a/b", "files/a%01b", "files/content/%2Fetc%2Fpasswd"):
        r = env.c.get(langchain_url(path, ident, ep))
        assert_error(r, 400, "InvalidFileName")
    # a dot segment is refused as a path before any route (test_attacks_tenancy.py)
    for path in ("files/content/..", "files/%2E%2E/content"):
        assert_error(env.c.get(langchain_url(path, ident, ep)), 400, "InvalidPath")
    assert_error(env.c.request("GET", langchain_url("files/content/a%00b", ident, ep)), 400)


def test_bad_forms_refused(env):
    ident = env.ident("form")
    url = langchain_url("files/upload", ident, "/pools/plain/")
    r = env.c.request("POST", url, raw=b"just bytes", headers={"Content-Type": "application/octet-stream"})
    assert_error(r, 400, "BadRequest")
    assert "multipart/form-data" in r.body["error"]["message"], r
    b = "xyz"
    body = ("--%s\r\nContent-Disposition: form-data; name=\"other\"; filename=\"a\"\r\n\r\nq\r\n--%s--\r\n"
            % (b, b)).encode()
    r = env.c.request("POST", url, raw=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_error(r, 400, "BadRequest")
    assert "`file`" in r.body["error"]["message"], r
    body = ("--%s\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nq\r\n--%s--\r\n" % (b, b)).encode()
    r = env.c.request("POST", url, raw=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_error(r, 400, "InvalidFileName")
    body = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t\"\r\n\r\ntruncated" % b).encode()
    r = env.c.request("POST", url, raw=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_error(r, 400, "BadRequest")
    assert no_session(env, ident, "plain")


def test_upload_size_limit(env):
    ident = env.ident("big")
    ep = "/pools/plain/"
    data = os.urandom(MAX_UPLOAD - 4096)
    r = upload(env, langchain_url("files/upload", ident, ep), form_requests("big.bin", data))
    assert r.status == 200 and r.body["value"][0]["properties"]["size"] == len(data), r
    r = env.c.get(langchain_url("files/content/big.bin", ident, ep), timeout=60)
    assert r.raw == data
    r = upload(env, langchain_url("files/upload", ident, ep), form_requests("toobig.bin", os.urandom(MAX_UPLOAD + 1)))
    assert_error(r, 413, "PayloadTooLarge")
    r = env.c.get(langchain_url("files", ident, ep))
    assert "toobig.bin" not in [e["properties"]["filename"] for e in r.body["value"]], r


# --------------------------------------------------------------------------
# Requests refused before anything is leased


def test_api_version_required_and_checked(env):
    ident = env.ident("ver")
    body = {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "1"}}
    r = env.c.post("/pools/python/code/execute?identifier=%s" % ident, body)
    assert_error(r, 400, "InvalidApiVersion")
    for bad in ("2023-01-01", "2024-02-02", "latest", ""):
        r = env.c.post("/pools/python/code/execute?identifier=%s&api-version=%s" % (ident, bad), body)
        assert_error(r, 400, "InvalidApiVersion")
        for v in SUPPORTED:
            assert v in r.body["error"]["message"], r
    r = env.c.get("/files?identifier=%s&api-version=1999-01-01" % ident)
    assert_error(r, 400, "InvalidApiVersion")
    # executions exists from 2024-10-02-preview
    r = env.c.post("/pools/python/executions?identifier=%s&api-version=%s" % (ident, API_OLD), {"code": "1"})
    assert_error(r, 400, "InvalidApiVersion")
    for v in SUPPORTED:
        r = env.c.get("/pools/python/files?identifier=%s&api-version=%s" % (ident, v))
        assert r.status == 200, (v, r)
    assert no_session(env, ident)


def test_identifier_rules(env):
    for q in ("", "identifier=", "identifier=" + "a" * 129, "identifier=has%20space", "identifier=tab%09",
              "identifier=%C3%A9", "identifier=a%00b"):
        r = env.c.get("/pools/python/files?%s%sapi-version=%s" % (q, "&" if q else "", API_OLD))
        assert_error(r, 400, "InvalidIdentifier")
    r = env.c.get("/pools/python/files?identifier=%s&api-version=%s" % ("a" * 128, API_OLD))
    assert r.status == 200, r
    r = env.c.get("/pools/python/files?identifier=%s&api-version=%s" % (urllib.parse.quote("!~{}[]|/?"), API_OLD))
    assert r.status == 200, r


def test_body_validation(env):
    ident = env.ident("val")
    url = "/pools/python/code/execute?identifier=%s&api-version=%s" % (ident, API_OLD)
    good = {"codeInputType": "inline", "executionType": "synchronous", "code": "1"}

    def bad(body, what):
        r = env.c.post(url, body)
        assert_error(r, 400, "BadRequest")
        assert what in r.body["error"]["message"], r

    bad({"code": "1"}, "properties")
    bad({"properties": "x"}, "properties")
    bad({"properties": dict(good, codeInputType="file")}, "codeInputType")
    bad({"properties": dict(good, executionType="asynchronous")}, "executionType")
    bad({"properties": {"codeInputType": "inline"}}, "code")
    bad({"properties": dict(good, code=5)}, "code")
    for t in (0, -1, 221, "10", 1.5, True):
        bad({"properties": dict(good, timeoutInSeconds=t)}, "timeoutInSeconds")
    bad({"properties": dict(good, Code="2")}, "twice")
    r = env.c.request("POST", url, raw=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "BadRequest")
    r = env.c.post("/pools/python/executions?identifier=%s&api-version=%s" % (ident, API_NEW),
                   {"properties": good})
    assert_error(r, 400, "BadRequest")  # executions is flat: no code at the top
    # a pool without an interpreter
    r = env.c.post("/pools/plain/code/execute?identifier=%s&api-version=%s" % (ident, API_OLD), {"properties": good})
    assert_error(r, 400, "BadRequest")
    assert "stateful" in r.body["error"]["message"], r
    assert no_session(env, ident) and no_session(env, ident, "plain")


def test_routes_methods_pools(env):
    ident = env.ident("rt")
    q = "?identifier=%s&api-version=%s" % (ident, API_OLD)
    assert_error(env.c.get("/pools/python/code/execute" + q), 405, "MethodNotAllowed")
    assert_error(env.c.request("PUT", "/pools/python/files" + q, raw=b""), 405, "MethodNotAllowed")
    # GET session exists from 2025-02-02-preview on (test_azure_current.py)
    assert_error(env.c.request("PUT", "/pools/python/session" + q, raw=b""), 405, "MethodNotAllowed")
    assert_error(env.c.post("/pools/nosuch/code/execute" + q, {"properties": {"code": "1"}}), 404, "PoolNotFound")
    assert_error(env.c.get("/pools/python/whatever" + q), 404, "NotFound")
    assert_error(env.c.get("/pools/python/files/a/b/c" + q), 400, "InvalidFileName")


def test_auth_executor_role(aca):
    ident = str(uuid.uuid4())
    url = langchain_url("files", ident)
    r = aca.pd.client().get(url)
    assert_error(r, 401, "Unauthorized")
    assert r.headers.get("www-authenticate") == "Bearer", r.headers
    assert_error(aca.pd.client(token="wrong").get(url), 401)
    assert_error(aca.pd.client(token=METRICS_TOKEN).get(url), 403, "Forbidden")
    body, ctype = form_requests("x.txt", b"x")
    r = aca.pd.client(token=METRICS_TOKEN).request("POST", langchain_url("files/upload", ident), raw=body,
                                                    headers={"Content-Type": ctype})
    assert_error(r, 403, "Forbidden")
    assert aca.pd.client(token=EXEC_TOKEN).get(url).status == 200


def test_metrics_count_azure_routes(aca):
    ident = str(uuid.uuid4())
    aca.c.get(langchain_url("files", ident))
    text = aca.pd.client(token=METRICS_TOKEN).get("/metrics").raw.decode()
    assert 'route="/pools/{name}/files"' in text, text[:3000]
