"""Shell sessions (Azure's shell session pools) through poold, against a
real sandboxd and a real poold on loopback, on the shipped files: the
`shell` language of config/languages/ and the [pool:shell] block of
config/poold.conf as they are.

The requests are those of the published specification's examples
(Azure/azure-rest-api-specs, DynamicSessions, 2025-10-02-preview:
CodeExecution_Execute_ShellCommand, CodeExecution_Execute_ShellExecCommandAndArgs)
and of LangChain's SessionsBashTool (langchain-azure-dynamic-sessions:
POST executions {"shellCommand"} at 2025-02-02-preview, the exit code read
from the top-level "status" as a string, POST files?path=/mnt/data, GET
files, GET files/{name}/content, DELETE session at 2025-10-02-preview),
rebuilt by hand with the standard library.

Run as root: /usr/bin/python3 -m pytest tests/system/test_shell.py
"""

import binascii
import configparser
import os
import time
import urllib.parse
import uuid

import pytest

import wpdaemons
from conftest import processes_matching, start_pair, stop_pair

UID_BASE = 356000
CAPACITY = 24
TOKEN = "shell-executor-%s" % uuid.uuid4().hex
ENDPOINT = "/pools/shell/"  # the pool management endpoint a user configures


def shipped_pool(name):
    """[pool:NAME] of config/poold.conf as shipped."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), strict=False, interpolation=None)
    cp.read(os.path.join(wpdaemons.REPO, "config", "poold.conf"))
    return dict(cp["pool:%s" % name])


class Env:
    def __init__(self, sb, pd):
        self.sb = sb
        self.pd = pd
        self.c = pd.client(token=TOKEN, timeout=120)
        self.idents = []

    def ident(self):
        i = "sh-%s" % uuid.uuid4()
        self.idents.append(i)
        return i


def languages_with_copy(copy_name):
    """config/languages as shipped (links to each file), plus a copy of
    shell.conf named `copy_name`: sessions_only comes with the file, not the
    name."""
    d = wpdaemons.make_tmpdir("wp-shell-langs-")
    for f in os.listdir(wpdaemons.LANG_DIR):
        os.symlink(os.path.join(wpdaemons.LANG_DIR, f), os.path.join(d, f))
    with open(os.path.join(wpdaemons.LANG_DIR, "shell.conf")) as f:
        text = f.read()
    assert "\nname = shell\n" in text and "\nsessions_only = yes\n" in text
    with open(os.path.join(d, copy_name + ".conf"), "w") as f:
        f.write(text.replace("\nname = shell\n", "\nname = %s\n" % copy_name))
    return d


@pytest.fixture(scope="module")
def shell_env():
    pools = {"shell": shipped_pool("shell"),
             "python": {"language": "python", "stateful": "yes", "warm": 1, "max": 4, "idle_timeout": "2m"},
             "shcopy": {"language": "shcopy", "stateful": "yes", "warm": 0, "max": 1}}
    sb, pd = start_pair("SHELL SYSTEM TESTS", "shell", UID_BASE, CAPACITY, pools,
                        tokens=[(TOKEN, "executor", "backend")], languages=languages_with_copy("shcopy"))
    yield Env(sb, pd)
    stop_pair(sb, pd, "shell suite")


@pytest.fixture
def env(shell_env):
    yield shell_env
    for i in shell_env.idents:
        shell_env.c.delete("%ssession?identifier=%s&api-version=2025-10-02-preview" % (ENDPOINT, urllib.parse.quote(i)))
    shell_env.idents = []


def bash_url(path, ident):
    """SessionsBashTool._build_url: identifier (quoted) then api-version 2025-02-02-preview."""
    return "%s%s?identifier=%s&api-version=2025-02-02-preview" % (ENDPOINT, path, urllib.parse.quote(ident))


def spec_url(path, ident, version="2025-10-02-preview"):
    return "%s%s?api-version=%s&identifier=%s" % (ENDPOINT, path, version, urllib.parse.quote(ident))


def bash_tool_run(env, ident, command):
    """SessionsBashTool._run: POST executions {"shellCommand"}, then
    stdout/stderr from "result" and the exit code as int(status)."""
    r = env.c.post(bash_url("executions", ident), {"shellCommand": command},
                   headers={"User-Agent": "langchain-azure-dynamic-sessions/0.0.0 (Language=Python)"})
    assert r.status == 200, r
    res = r.body.get("result", {})
    return {"stdout": res.get("stdout"), "stderr": res.get("stderr"), "exitCode": int(r.body["status"])}, r


def form(name, data):
    """requests' files=[("file", (name, data, "application/octet-stream"))], data={}."""
    b = binascii.hexlify(os.urandom(16)).decode()
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n" % (b, name)).encode() + data +
            ("\r\n--%s--\r\n" % b).encode())
    return body, "multipart/form-data; boundary=%s" % b


# --------------------------------------------------------------------------
# The specification's examples, unmodified


def test_spec_shell_command_example(env):
    ident = env.ident()
    req = {"codeInputType": "Inline", "executionType": "Synchronous", "stdin": "testinputlineline",
           "shellCommand": "read LINE;first_input=\"$LINE\";echo first_input:$first_input",
           "outputStreamsMaxLength": 4096, "timeoutInSeconds": 600}
    r = env.c.post(spec_url("executions", ident), req)
    assert r.status == 200, r
    b = r.body
    assert b["identifier"] == ident and b["executionType"] == "Synchronous", b
    assert b["status"] == "0", b
    assert b["result"]["stdout"] == "first_input:testinputlineline\n", b
    assert b["result"]["stderr"] == "", b
    assert isinstance(b["result"]["executionTimeInMilliseconds"], int), b
    assert r.headers.get("operation-id") == b["id"], r.headers
    loc = r.headers.get("operation-location", "")
    assert "/pools/shell/executions/%s?" % b["id"] in loc, r.headers


def test_spec_exec_command_and_args_example(env):
    ident = env.ident()
    body, ctype = form("previouslyuploadedfile.txt", b"hello\n")
    r = env.c.post(spec_url("files", ident), raw=body, headers={"Content-Type": ctype})
    assert r.status == 200, r
    r = env.c.post(spec_url("executions", ident),
                   {"execCommandAndArgs": ["ls", "-a"], "outputStreamsMaxLength": 4096, "timeoutInSeconds": 600})
    assert r.status == 200, r
    assert r.body["status"] == "0", r
    # nothing of warmpool's own in /mnt/data: exactly the spec's answer
    assert r.body["result"]["stdout"] == ".\n..\npreviouslyuploadedfile.txt\n", r
    assert r.body["result"]["stderr"] == "", r


# --------------------------------------------------------------------------
# LangChain's SessionsBashTool, unmodified requests


def test_bash_tool_session(env):
    ident = env.ident()
    out, _ = bash_tool_run(env, ident, "echo hello")
    assert out == {"stdout": "hello\n", "stderr": "", "exitCode": 0}
    out, _ = bash_tool_run(env, ident, "pwd; echo data > notes.txt; echo oops >&2; exit 3")
    assert out == {"stdout": "/mnt/data\n", "stderr": "oops\n", "exitCode": 3}
    # files persist across executions of the session
    out, _ = bash_tool_run(env, ident, "cat notes.txt; ls")
    assert out["stdout"] == "data\nnotes.txt\n" and out["exitCode"] == 0, out
    # upload_file(data=…, remote_file_path="in.csv"): POST files?…&path=/mnt/data
    body, ctype = form("in.csv", b"a,b\n1,2\n")
    r = env.c.post(bash_url("files", ident) + "&path=/mnt/data", raw=body, headers={"Content-Type": ctype})
    assert r.status == 200, r
    assert r.body["name"] == "in.csv" and r.body["sizeInBytes"] == 8, r
    out, _ = bash_tool_run(env, ident, "wc -l < in.csv")
    assert out["stdout"].strip() == "2", out
    # list_files: value[] of {name, sizeInBytes}
    r = env.c.get(bash_url("files", ident))
    assert r.status == 200, r
    assert {(f["name"], f["sizeInBytes"]) for f in r.body["value"]} == {("notes.txt", 5), ("in.csv", 8)}, r
    # download_file: files/{name}/content
    r = env.c.get(bash_url("files/%s/content" % urllib.parse.quote("notes.txt"), ident))
    assert r.status == 200 and r.raw == b"data\n", r
    # delete_session: DELETE session at 2025-10-02-preview
    r = env.c.delete("%ssession?identifier=%s&api-version=2025-10-02-preview" % (ENDPOINT, urllib.parse.quote(ident)))
    assert r.status in (200, 204), r
    out, _ = bash_tool_run(env, ident, "ls -A | wc -l")
    assert out["stdout"].strip() == "0", "a new session after DELETE must start empty: %r" % out


def test_host_runtimes_in_shell(env):
    ident = env.ident()
    out, _ = bash_tool_run(env, ident, "python3 -c 'print(6*7)'; echo $((1+2)) | tr 3 x; sort -r <<< $'a\\nb'")
    assert out == {"stdout": "42\nx\nb\na\n", "stderr": "", "exitCode": 0}, out


def test_stdin_and_command_bytes_kept(env):
    ident = env.ident()
    cmd = "  printf '%s|' \"$(cat)\"; echo 'é ✓ \"q\" \\\\'\n\n"
    r = env.c.post(spec_url("executions", ident), {"shellCommand": cmd, "stdin": "  two\n lines  \n"})
    assert r.status == 200, r
    assert r.body["result"]["stdout"] == "  two\n lines  |é ✓ \"q\" \\\\\n", r


# --------------------------------------------------------------------------
# Limits a user controls


def test_timeout_stops_the_command(env):
    ident = env.ident()
    t0 = time.monotonic()
    r = env.c.post(spec_url("executions", ident), {"shellCommand": "echo before; sleep 30", "timeoutInSeconds": 1})
    took = time.monotonic() - t0
    assert r.status == 200, r
    assert r.body["status"] == "124", r
    assert r.body["result"]["stdout"] == "before\n", r
    assert "[warmpool]" in r.body["result"]["stderr"], r
    assert took < 8, "a 1 s timeout took %.1f s" % took
    # the session goes on
    out, _ = bash_tool_run(env, ident, "echo after")
    assert out["stdout"] == "after\n"


def test_timeout_above_the_pool_maximum_is_refused(env):
    ident = env.ident()
    r = env.c.post(spec_url("executions", ident), {"shellCommand": "true", "timeoutInSeconds": 601})
    assert r.status == 400, r
    assert "timeoutInSeconds" in r.body["error"]["message"] and "600" in r.body["error"]["message"], r


def test_output_streams_max_length(env):
    ident = env.ident()
    r = env.c.post(spec_url("executions", ident),
                   {"shellCommand": "head -c 100000 /dev/zero | tr '\\0' a", "outputStreamsMaxLength": 10})
    assert r.status == 200, r
    assert r.body["result"]["stdout"] == "a" * 10, r
    assert "truncated" in r.body["result"]["stderr"], r
    r = env.c.post(spec_url("executions", ident), {"shellCommand": "true", "outputStreamsMaxLength": 0})
    assert r.status == 400 and "outputStreamsMaxLength" in r.body["error"]["message"], r


def test_bad_requests_say_what_to_change(env):
    ident = env.ident()
    r = env.c.post(spec_url("executions", ident), {"shellCommand": "true", "execCommandAndArgs": ["true"]})
    assert r.status == 400 and "exactly one" in r.body["error"]["message"], r
    r = env.c.post(spec_url("executions", ident), {"execCommandAndArgs": []})
    assert r.status == 400 and "execCommandAndArgs" in r.body["error"]["message"], r
    r = env.c.post(spec_url("executions", ident), {"shellCommand": "a\u0000b"})
    assert r.status == 400 and "NUL" in r.body["error"]["message"], r
    # a shell command sent to a code pool: where to send it instead
    r = env.c.post("/pools/python/executions?api-version=2025-02-02-preview&identifier=%s" % ident,
                   {"shellCommand": "ls"})
    assert r.status == 400 and "shell pool" in r.body["error"]["message"], r


def test_execute_refuses_the_shell_language(env):
    """/execute judges programs; a shell pool's run reads a framed command,
    so a judged "shell" submission is refused with where to go instead."""
    r = env.c.post("/execute", {"language": "shell", "user_id": "u1", "code": "echo 1",
                                "test_cases": [{"input": "", "expected_output": "1"}]})
    assert r.status == 400 and r.body["error"]["code"] == "NotSupported", r
    assert "sessions only" in r.body["error"]["message"] and "/pools/shell/executions" in r.body["error"]["message"], r


def test_sessions_only_comes_from_the_language_file(env):
    """The refusal follows the language file's `sessions_only`, which
    sandboxd reports in GET /v1/info: a copy of shell.conf under another
    name is refused the same way; a judged language is not marked."""
    langs = {l["name"]: l for l in env.sb.client().get("/v1/info").body["languages"]}
    assert langs["shell"]["sessions_only"] is True and langs["shcopy"]["sessions_only"] is True, langs
    assert langs["python"]["sessions_only"] is False, langs
    r = env.c.post("/execute", {"language": "shcopy", "user_id": "u1", "code": "echo 1",
                                "test_cases": [{"input": "", "expected_output": "1"}]})
    assert r.status == 400 and r.body["error"]["code"] == "NotSupported", r
    assert "sessions only" in r.body["error"]["message"] and "/pools/shcopy/executions" in r.body["error"]["message"], r


def test_exec_command_and_args_are_not_reparsed(env):
    ident = env.ident()
    r = env.c.post(spec_url("executions", ident),
                   {"execCommandAndArgs": ["printf", "%s\\n", "a b", "$(id)", "it's", ";rm -rf /"]})
    assert r.status == 200, r
    assert r.body["result"]["stdout"] == "a b\n$(id)\nit's\n;rm -rf /\n", r


# --------------------------------------------------------------------------
# Attack suite cases for shell sessions


def test_shell_cannot_escape(env):
    ident = env.ident()
    out, _ = bash_tool_run(env, ident, "id -u; cat /etc/shadow 2>&1 | head -1; ls /root 2>&1 | head -1; "
                                       "ls / | tr '\\n' ' '; echo; touch /usr/x 2>&1 | head -1")
    lines = out["stdout"].split("\n")
    assert lines[0] != "0" and int(lines[0]) >= UID_BASE, out
    assert "No such file" in lines[1] or "denied" in lines[1], out
    assert "No such file" in lines[2] or "denied" in lines[2], out
    assert "home" not in lines[3].split() and "root" not in lines[3].split(), out
    assert "Read-only" in lines[4] or "denied" in lines[4], out


def test_shell_has_no_network(env):
    ident = env.ident()
    port = env.pd.port
    out, _ = bash_tool_run(env, ident, "exec 3<>/dev/tcp/127.0.0.1/%d && echo CONNECTED; "
                                       "ls /sys/class/net 2>/dev/null | tr '\\n' ' '" % port)
    assert "CONNECTED" not in out["stdout"], out
    assert out["exitCode"] != 0 or out["stdout"].strip() in ("", "lo"), out


def test_no_process_outlives_its_execution_or_the_session(env):
    ident = env.ident()
    marker = "wpshell%s" % uuid.uuid4().hex[:8]
    # a background process and a double fork: both die when the execution returns
    out, _ = bash_tool_run(env, ident, "(exec -a %s sleep 300 &) ; exec -a %s-b sleep 300 & echo started" %
                           (marker, marker))
    assert out["stdout"] == "started\n", out
    assert wpdaemons.wait_for(lambda: not processes_matching(marker), 5, 0.05), processes_matching(marker)
    out, _ = bash_tool_run(env, ident, "echo kept > f; echo ok")
    r = env.c.delete("%ssession?identifier=%s&api-version=2025-10-02-preview" % (ENDPOINT, urllib.parse.quote(ident)))
    assert r.status in (200, 204), r
    # the slot is gone: none of its files is seen by the next session of the name
    out, _ = bash_tool_run(env, ident, "cat f 2>&1; ls -A | wc -l")
    assert "No such file" in out["stdout"], out


# --------------------------------------------------------------------------
# Files with `path`: subdirectories of /mnt/data, no link followed


def test_files_in_subdirectories(env):
    ident = env.ident()
    body, ctype = form("q1.csv", b"x,y\n")
    r = env.c.post(spec_url("files", ident) + "&path=/mnt/data/reports/2025", raw=body,
                   headers={"Content-Type": ctype})
    assert r.status == 200 and r.body["name"] == "q1.csv", r
    out, _ = bash_tool_run(env, ident, "cat reports/2025/q1.csv; ls -ld reports | cut -c1; echo hi > reports/b.txt")
    assert out["stdout"] == "x,y\nd\n", out
    r = env.c.get(spec_url("files", ident) + "&path=/mnt/data/reports")
    assert r.status == 200, r
    assert {(f["name"], f["type"]) for f in r.body["value"]} == {("2025", "directory"), ("b.txt", "file")}, r
    r = env.c.get(spec_url("files", ident) + "&path=reports/2025")  # relative to /mnt/data
    assert [f["name"] for f in r.body["value"]] == ["q1.csv"], r
    r = env.c.get(spec_url("files/q1.csv/content", ident) + "&path=/mnt/data/reports/2025")
    assert r.status == 200 and r.raw == b"x,y\n", r
    r = env.c.get(spec_url("files/b.txt", ident) + "&path=/mnt/data/reports")
    assert r.status == 200 and r.body["sizeInBytes"] == 3, r
    r = env.c.delete(spec_url("files/b.txt", ident) + "&path=/mnt/data/reports")
    assert r.status == 204, r
    out, _ = bash_tool_run(env, ident, "ls reports")
    assert out["stdout"] == "2025\n", out
    r = env.c.get(spec_url("files", ident) + "&path=/mnt/data/nosuch")
    assert r.status == 404, r


def test_file_paths_stay_in_mnt_data(env):
    ident = env.ident()
    out, _ = bash_tool_run(env, ident, "ln -s / root; ln -s /tmp tmp; mkdir d; ln -s /etc d/up; echo secret > /tmp/s")
    assert out["exitCode"] == 0, out
    body, ctype = form("x.txt", b"planted")
    for bad in ("/etc", "/mnt/data/../etc", "/mnt/datax", "a/../../etc", "..", "a/./b"):
        r = env.c.get(spec_url("files", ident) + "&path=" + urllib.parse.quote(bad))
        assert r.status == 400 and r.body["error"]["code"] == "InvalidPath", (bad, r)
    # links made by the session are never followed, on any route
    for link in ("/mnt/data/root", "/mnt/data/tmp", "/mnt/data/d/up"):
        q = "&path=" + urllib.parse.quote(link)
        r = env.c.get(spec_url("files", ident) + q)
        assert r.status == 404, (link, r)
        r = env.c.get(spec_url("files/s/content", ident) + q)
        assert r.status == 404, (link, r)
        r = env.c.post(spec_url("files", ident) + q, raw=body, headers={"Content-Type": ctype})
        assert r.status == 404, (link, r)
    out, _ = bash_tool_run(env, ident, "ls /tmp; ls /etc | grep -c x.txt; ls -A /mnt/data | tr '\\n' ' '")
    assert out["stdout"] == "s\n0\nd root tmp ", out


def recursive_list(env, ident, path=None, version="2025-10-02-preview"):
    q = "&recursive=true" + ("&path=" + urllib.parse.quote(path) if path else "")
    return env.c.get(spec_url("files", ident, version) + q)


def test_recursive_list_walks_subdirectories(env):
    """SessionResourceFiles_List_Recursive (2025-10-02-preview): every entry
    below `path`, each with its `directory` relative to `path`; links and
    other non-files never entered nor listed, odd names as they are."""
    ident = env.ident()
    out, _ = bash_tool_run(env, ident, "mkdir -p a/b/c && echo hi > a/b/c/f.txt && echo y > top.txt && "
                           "touch a/$'new\\nline' 'a/sp ace' && ln -s / a/root && ln -s .. a/b/loop && "
                           "ln -s a a/b/c/self && mkfifo a/fifo && echo ok")
    assert out["stdout"] == "ok\n", out
    r = recursive_list(env, ident)
    assert r.status == 200, r
    got = {(f["directory"], f["name"], f["type"]) for f in r.body["value"]}
    assert got == {("", "a", "directory"), ("", "top.txt", "file"), ("a", "b", "directory"),
                   ("a", "new\nline", "file"), ("a", "sp ace", "file"), ("a/b", "c", "directory"),
                   ("a/b/c", "f.txt", "file")}, r.body
    assert r.body["nextLink"] is None, r.body
    f = [e for e in r.body["value"] if e["name"] == "f.txt"][0]
    assert f["sizeInBytes"] == 3 and f["lastModifiedAt"].endswith("Z"), f
    # below a `path`: directories relative to it, as in the spec's example
    r = recursive_list(env, ident, "/mnt/data/a/b")
    assert r.status == 200, r
    assert {(f["directory"], f["name"]) for f in r.body["value"]} == {("", "c"), ("c", "f.txt")}, r.body
    # each listed entry is where the list says: its content by directory + name
    r = env.c.get(spec_url("files/f.txt/content", ident) + "&path=/mnt/data/a/b/c")
    assert r.status == 200 and r.raw == b"hi\n", r
    # a link as the `path` is not entered either
    r = recursive_list(env, ident, "a/root")
    assert r.status == 404 and r.body["error"]["code"] == "DirectoryNotFound", r
    # recursive=false is the plain list
    r = env.c.get(spec_url("files", ident) + "&recursive=false")
    assert r.status == 200 and {f["name"] for f in r.body["value"]} == {"a", "top.txt"}, r


def test_recursive_list_is_bounded(env):
    """A tree too large or too deep for one answer is refused with what to
    do instead, in bounded time, whatever the session made."""
    ident = env.ident()
    out, _ = bash_tool_run(env, ident, "mkdir -p big small && cd big && seq 100000 | xargs touch && "
                           "ls -f | wc -l")
    assert out["stdout"] == "100002\n", out
    t0 = time.monotonic()
    r = recursive_list(env, ident)
    took = time.monotonic() - t0
    assert r.status == 400 and r.body["error"]["code"] == "RecursiveListTooLarge", r
    assert "5000" in r.body["error"]["message"] and "path" in r.body["error"]["message"], r
    assert took < 5, took
    # a smaller subtree of the same session lists
    bash_tool_run(env, ident, "touch small/x")
    r = recursive_list(env, ident, "small")
    assert r.status == 200 and [f["name"] for f in r.body["value"]] == ["x"], r
    # deeper than 32 levels below `path`
    out, _ = bash_tool_run(env, ident, "mkdir -p deep/$(seq -s/ 40) && echo ok")
    assert out["stdout"] == "ok\n", out
    r = recursive_list(env, ident, "deep")
    assert r.status == 400 and r.body["error"]["code"] == "RecursiveListTooLarge", r
    assert "32" in r.body["error"]["message"], r
    # the plain list still pages through the 100 000 names
    r = env.c.get(spec_url("files", ident) + "&path=big")
    assert r.status == 200 and len(r.body["value"]) == 1000 and r.body["nextLink"], r


def test_recursive_list_needs_the_2025_10_02_version(env):
    ident = env.ident()
    bash_tool_run(env, ident, "mkdir -p a/b")
    r = recursive_list(env, ident, version="2025-02-02-preview")
    assert r.status == 400 and r.body["error"]["code"] == "InvalidApiVersion", r
    assert "2025-10-02-preview" in r.body["error"]["message"], r
    r = env.c.get(spec_url("files", ident) + "&recursive=maybe")
    assert r.status == 400 and "recursive" in r.body["error"]["message"], r

