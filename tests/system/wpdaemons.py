"""Start the real warmpool daemons (bin/sandboxd, bin/poold) with temporary
configs and talk to them over HTTP. Shared by the system tests
(tests/system/conftest.py, test_poold*.py) and the benchmark; it does not
import pytest.

    import wpdaemons as wp
    sb = wp.Sandboxd(wp.make_tmpdir("sb-"), uid_base=330000, capacity=64)
    sb.start()
    pd = wp.Poold(wp.make_tmpdir("pd-"), nodes={"local": "unix:" + sb.sock},
                  pools={"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"}})
    pd.start()
    r = pd.client().post("/execute", {...})
    pd.stop(); sb.stop(); sb.cleanup()

Standard library only. Daemons get SIGTERM if the Python process dies
(PR_SET_PDEATHSIG), so an interrupted run leaves none behind.
"""

import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOXD = os.path.join(REPO, "bin", "sandboxd")
POOLD = os.path.join(REPO, "bin", "poold")
LANG_DIR = os.path.join(REPO, "config", "languages")


def language_file(path):
    """{section: {key: value}} of a language file as sandboxd reads it: a
    value goes on over the indented lines after it (joined with a space),
    `;` starts a comment at a line's start or after a space. (sandboxd
    refuses a key given twice; here the first counts.)"""
    out, section, key = {}, None, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = re.split(r"(?:^|\s);", raw.rstrip("\n"), maxsplit=1)[0].strip()
            if not line:
                continue
            if raw[:1] in " \t":
                if key:
                    out[section][key] += " " + line
                continue
            if line.startswith("["):
                section, key = line.strip("[]").strip(), None
                out.setdefault(section, {})
            elif "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                vals = out.setdefault(section, {})
                key = None if k in vals else k
                vals.setdefault(k, v)
    return out


HTTP_TIMEOUT = 60.0

# Every daemon started through this module, in start order (the test
# harness attaches their logs to failure reports).
STARTED = []

# What a Sandboxd's config asks for unless told otherwise (the sandboxd suite
# checks the daemon reports these).
SLOT_CONF = {"memory": "1G", "pids": "256", "data_size": "128M", "tmp_size": "64M", "shm_size": "16M"}
LIMITS_MAX_CONF = {"cpu": "30s", "wall": "60s", "memory": "1G", "pids": "256", "output": "64M", "fsize": "128M"}


# --------------------------------------------------------------------------
# small helpers


def wait_for(pred, timeout, interval=0.05):
    """Call pred() until it returns something truthy (returned) or `timeout`
    seconds pass (returns the last falsy value). Exceptions propagate."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tmpdir(prefix="warmpool-"):
    """A fresh directory under /tmp, mode 0755 (short paths: unix sockets
    are limited to 107 bytes)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def hash_token(token):
    """The [auth] hash of a token, as `bin/poold --hash-token` prints it."""
    if isinstance(token, str):
        token = token.encode()
    r = subprocess.run([POOLD, "--hash-token"], input=token, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        raise RuntimeError("poold --hash-token failed (%d): %s" % (r.returncode, r.stderr.decode("utf-8", "replace")))
    return r.stdout.decode().strip()


def _die_with_parent():
    """In the child before exec: SIGTERM when our process goes away."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


# --------------------------------------------------------------------------
# HTTP


class Resp(tuple):
    """An answer: .status, .body (parsed JSON when the answer is JSON, else
    bytes), .headers (lower-case names), .raw (bytes). Unpacks as
    (status, body)."""

    def __new__(cls, status, body, headers, raw=b"", method="", path=""):
        self = super().__new__(cls, (status, body))
        self.headers = headers
        self.raw = raw
        self.method = method
        self.path = path
        return self

    @property
    def status(self):
        return self[0]

    @property
    def body(self):
        return self[1]

    def error_code(self):
        b = self.body
        if isinstance(b, dict) and isinstance(b.get("error"), dict):
            return b["error"].get("code")
        return None

    def __repr__(self):
        raw = self.raw if isinstance(self.raw, bytes) else b""
        text = raw[:2000].decode("utf-8", "replace") + ("…(%d bytes)" % len(raw) if len(raw) > 2000 else "")
        return "<%s %s → %s %s>" % (self.method, self.path, self.status, text)

    def describe(self):
        return repr(self)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=HTTP_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except BaseException:
            s.close()
            raise
        self.sock = s


class _Client:
    """request(method, path, body=None, raw=None, headers=None, timeout=None):
    body: a dict/list (sent as JSON) or bytes/str (sent as is); raw: bytes
    sent as is. One connection per call."""

    timeout = HTTP_TIMEOUT

    def _connection(self, timeout):
        raise NotImplementedError

    def _default_headers(self):
        return {}

    def request(self, method, path, body=None, raw=None, headers=None, timeout=None):
        hdrs = self._default_headers()
        hdrs.update(headers or {})
        data = None
        if isinstance(body, str):
            body = body.encode()
        if raw is None and isinstance(body, (bytes, bytearray)):
            raw, body = bytes(body), None
        if raw is not None:
            data = raw
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/octet-stream"
        elif body is not None:
            data = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/json"
        conn = self._connection(self.timeout if timeout is None else timeout)
        try:
            send_error = None
            try:
                conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError) as e:
                # the server may answer (413) and close before reading the
                # whole body; its answer is still there to read
                send_error = e
            try:
                r = conn.getresponse()
            except (ConnectionError, http.client.HTTPException) as e:
                if send_error is not None:
                    raise ConnectionError(
                        "%s %s: sending the request failed (%s) and no answer came (%s)" % (method, path, send_error, e)
                    ) from e
                raise
            payload = r.read()
            rh = {k.lower(): v for k, v in r.getheaders()}
            status = r.status
        finally:
            conn.close()
        ctype = rh.get("content-type", "")
        parsed = payload
        if "json" in ctype or (not ctype and payload[:1] in (b"{", b"[")):
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = payload
        return Resp(status, parsed, rh, payload, method, path)

    def get(self, path, headers=None, **kw):
        return self.request("GET", path, headers=headers, **kw)

    def post(self, path, body=None, headers=None, **kw):
        return self.request("POST", path, body=body, headers=headers, **kw)

    def put(self, path, body=None, headers=None, **kw):
        if body is None and kw.get("raw") is None:
            kw["raw"] = b""
        return self.request("PUT", path, body=body, headers=headers, **kw)

    def patch(self, path, body=None, headers=None, **kw):
        return self.request("PATCH", path, body=body, headers=headers, **kw)

    def delete(self, path, headers=None, **kw):
        return self.request("DELETE", path, headers=headers, **kw)


class UnixClient(_Client):
    def __init__(self, sock_path, timeout=HTTP_TIMEOUT):
        self.sock_path = sock_path
        self.timeout = timeout

    def _connection(self, timeout):
        return _UnixHTTPConnection(self.sock_path, timeout=timeout)


class TCPClient(_Client):
    """base_url like http://127.0.0.1:8080; token → Authorization: Bearer."""

    def __init__(self, base_url, token=None, timeout=HTTP_TIMEOUT):
        u = urllib.parse.urlsplit(base_url)
        self.base_url = base_url
        self.host = u.hostname
        self.port = u.port or 80
        self.token = token
        self.timeout = timeout

    def _connection(self, timeout):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _default_headers(self):
        return {"Authorization": "Bearer %s" % self.token} if self.token is not None else {}


# --------------------------------------------------------------------------
# Host inspection (what a sandboxd leaves behind)


def proc_status(pid):
    """Parsed /proc/pid/status, or None if gone."""
    try:
        with open("/proc/%s/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    st = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            st[k] = v.strip()
    return st


def proc_cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def proc_exe(pid):
    try:
        return os.readlink("/proc/%s/exe" % pid)
    except OSError:
        return None


def host_processes(uid_lo, uid_hi):
    """Processes on the host whose real, effective, saved or fs uid is in
    [uid_lo, uid_hi): list of dicts (pid, uids, nspid, state, cmdline, exe)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_status(d)
        if not st or "Uid" not in st:
            continue
        uids = [int(x) for x in st["Uid"].split()]
        if any(uid_lo <= u < uid_hi for u in uids):
            out.append(
                {
                    "pid": int(d),
                    "uids": uids,
                    "nspid": [int(x) for x in st.get("NSpid", d).split()],
                    "state": st.get("State", "?"),
                    "cmdline": proc_cmdline(d),
                    "exe": proc_exe(d),
                }
            )
    return out


def descendants(pid):
    """Every live descendant pid of `pid` (from /proc/*/stat)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, ()):
            out.append(c)
            todo.append(c)
    return out


def host_mounts_under(prefix):
    out = []
    prefix = os.path.realpath(prefix)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


def cgroup_dirs_named(name, extra_pids=()):
    """Every directory named `name` in the cgroup hierarchies: directly under
    each hierarchy root, under our (and the given pids') cgroup paths, and a
    shallow walk for good measure."""
    found = set()
    base = "/sys/fs/cgroup"
    roots = []
    for pid in ("self",) + tuple(str(p) for p in extra_pids):
        try:
            with open("/proc/%s/cgroup" % pid) as f:
                for line in f:
                    _, ctrls, path = line.rstrip("\n").split(":", 2)
                    for c in ctrls.split(",") if ctrls else [""]:
                        c = c.replace("name=", "")
                        hier = os.path.join(base, c) if c else os.path.join(base, "unified")
                        roots.append(os.path.join(hier, path.lstrip("/")))
                        if not c:
                            roots.append(os.path.join(base, path.lstrip("/")))
        except OSError:
            pass
    try:
        for h in os.listdir(base):
            roots.append(os.path.join(base, h))
    except OSError:
        pass
    for r in set(roots):
        cand = os.path.join(r, name)
        if os.path.isdir(cand):
            found.add(os.path.normpath(cand))
    try:
        hiers = [os.path.join(base, h) for h in os.listdir(base)]
    except OSError:
        hiers = []
    for h in hiers:
        start_depth = h.rstrip("/").count("/")
        for dirpath, dirnames, _ in os.walk(h):
            if name in dirnames:
                found.add(os.path.normpath(os.path.join(dirpath, name)))
            if dirpath.count("/") - start_depth >= 4:
                dirnames[:] = []
    return sorted(found)


def _cgroup_pids(path):
    pids = set()
    for dirpath, _, files in os.walk(path):
        for fn in ("cgroup.procs", "tasks"):
            if fn in files:
                try:
                    with open(os.path.join(dirpath, fn)) as f:
                        pids.update(int(x) for x in f.read().split())
                except (OSError, ValueError):
                    pass
    return pids


def rmdir_cgroup_tree(path):
    for dirpath, _, _ in os.walk(path, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


# --------------------------------------------------------------------------
# Daemons


class _Daemon:
    binary = None
    name = "daemon"

    def __init__(self, tmpdir):
        self.tmp = os.path.abspath(tmpdir)
        os.makedirs(self.tmp, exist_ok=True)
        os.chmod(self.tmp, 0o755)
        self.proc = None
        self._log = None
        self.config = os.path.join(self.tmp, "%s.conf" % self.name)
        self.log_path = os.path.join(self.tmp, "%s.log" % self.name)
        self.starts = 0

    # process

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    def _spawn(self, args):
        if self.alive():
            raise RuntimeError("%s is already running (pid %d)" % (self.name, self.proc.pid))
        self._log = open(self.log_path, "ab")
        self.starts += 1
        self._log.write(b"==== start %d: %s\n" % (self.starts, " ".join(args).encode()))
        self._log.flush()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, cwd=self.tmp, preexec_fn=_die_with_parent
        )
        if self not in STARTED:
            STARTED.append(self)

    def _wait_healthy(self, limit):
        deadline = time.monotonic() + limit
        last = None
        c = type(self).client(self)  # (a subclass may shadow .client with an attribute)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_log()
                raise RuntimeError(
                    "%s exited with %s during start-up\n--- log ---\n%s" % (self.name, self.proc.returncode, self.log_text())
                )
            try:
                r = c.get("/healthz", timeout=2)
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError(
            "%s did not answer GET /healthz within %g s (last: %r)\n--- log ---\n%s"
            % (self.name, limit, last, self.log_text())
        )

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit; returns the exit code or None when still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code (SIGKILL after `timeout`
        s: then -9)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()
        return self.proc.returncode

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()
        return self.proc.returncode

    def _close_log(self):
        if self._log is not None:
            try:
                self._log.close()
            except OSError:
                pass
            self._log = None

    # log

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, start=0, limit=30000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                data = f.read()
        except OSError as e:
            return "(no log: %s)" % e
        if len(data) > limit:
            data = b"...(cut)...\n" + data[-limit:]
        return data.decode("utf-8", "replace")


class Sandboxd(_Daemon):
    """One bin/sandboxd with its own socket, state dir, uid range and cgroup.

    extra: config text inserted right after the [sandboxd] keys (more keys
    of [sandboxd], or whole sections). slot / limits_max: dicts overriding
    SLOT_CONF / LIMITS_MAX_CONF."""

    binary = SANDBOXD
    name = "sandboxd"

    def __init__(self, tmpdir, uid_base, capacity=48, cgroup_name=None, log_level="info", extra="", max_body="16M",
                 slot=None, limits_max=None, languages=LANG_DIR):
        super().__init__(tmpdir)
        self.uid_base = uid_base
        self.capacity = capacity
        self.cgroup_name = cgroup_name or "warmpool-test-%d-%d" % (os.getpid(), uid_base)
        self.state_dir = os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "sandboxd.sock")
        if len(self.sock) > 100:
            self.sock = os.path.join(make_tmpdir("wpsock-"), "sandboxd.sock")
        self.url = "unix:" + self.sock
        self.secret = "config-secret-%s" % os.urandom(8).hex()
        slot_conf = dict(SLOT_CONF, **(slot or {}))
        lim_conf = dict(LIMITS_MAX_CONF, **(limits_max or {}))
        lines = [
            "; written by tests/system/wpdaemons.py — %s" % self.secret,
            "[sandboxd]",
            "listen = unix:%s" % self.sock,
            "state_dir = %s" % self.state_dir,
            "languages = %s" % languages,
            "capacity = %d" % capacity,
            "uid_base = %d" % uid_base,
            "cgroup = auto",
            "cgroup_name = %s" % self.cgroup_name,
            "max_body = %s" % max_body,
            "log_level = %s" % log_level,
            extra,
            "",
            "[slot]",
        ]
        lines += ["%s = %s" % kv for kv in slot_conf.items()]
        lines += ["", "[limits_max]"]
        lines += ["%s = %s" % kv for kv in lim_conf.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def client(self, timeout=HTTP_TIMEOUT):
        return UnixClient(self.sock, timeout=timeout)

    def slot_processes(self):
        return host_processes(self.uid_base, self.uid_base + self.capacity)

    def start(self, check_stale=True):
        if check_stale:
            stale = self.slot_processes()
            if stale:
                raise RuntimeError(
                    "processes already run with uids in [%d, %d) — left by an earlier run? The slots would share "
                    "their uids. Stop them first: %r" % (self.uid_base, self.uid_base + self.capacity, stale)
                )
        self._spawn([SANDBOXD, "--config", self.config])
        self._wait_healthy(10)
        return self

    def kill9(self):
        """SIGKILL sandboxd (its slots may live on: see reap())."""
        self._pre_kill_children = descendants(self.proc.pid) if self.alive() else []
        return super().kill9()

    def reap(self):
        """After a kill9: kill what sandboxd left (its former children, the
        processes of its uid range and of its cgroup), so that the uids,
        cgroup and state dir can be used again."""
        victims = set(getattr(self, "_pre_kill_children", []))
        victims.update(p["pid"] for p in self.slot_processes())
        for cg in cgroup_dirs_named(self.cgroup_name):
            victims.update(_cgroup_pids(cg))
        victims.discard(os.getpid())
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        wait_for(lambda: not self.slot_processes(), 5)
        for cg in cgroup_dirs_named(self.cgroup_name):
            wait_for(lambda: not _cgroup_pids(cg), 3)
            rmdir_cgroup_tree(cg)
        for m in sorted(host_mounts_under(self.tmp), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)

    def leftovers(self):
        """What a stopped sandboxd left behind: list of problems (strings)."""
        problems = []
        wait_for(lambda: not self.slot_processes(), 3)
        procs = self.slot_processes()
        if procs:
            problems.append("processes with slot uids left behind: %r" % procs)
        cgs = cgroup_dirs_named(self.cgroup_name)
        if cgs:
            problems.append("cgroups left behind: %r" % cgs)
        mounts = host_mounts_under(self.tmp)
        if mounts:
            problems.append("mounts left under %s: %r" % (self.tmp, mounts))
        return problems

    def cleanup(self, remove=True):
        """Stop if running (SIGKILL fallback), remove whatever is left, and
        the temp dir. Returns the problems found before cleaning."""
        if self.alive():
            self.stop()
        problems = self.leftovers()
        self.reap()
        if remove and not host_mounts_under(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
            if not self.sock.startswith(self.tmp + "/"):
                shutil.rmtree(os.path.dirname(self.sock), ignore_errors=True)
        return problems


class Poold(_Daemon):
    """One bin/poold on 127.0.0.1:<port>.

    nodes: {name: url}; pools: {name: {key: value}} (written as is);
    tokens: [(token, role, name)] hashed into [auth]; extra_poold: config
    text inserted after the [poold] keys (more keys, or whole sections);
    rate_limit: None → rate limits off (session_rate = client_rate = 0),
    "default" → poold's defaults, or a dict written as [rate_limit]."""

    binary = POOLD
    name = "poold"

    def __init__(self, tmpdir, nodes=None, pools=None, port=None, tokens=None, extra_poold="", rate_limit=None,
                 log_level="info", listen=None):
        super().__init__(tmpdir)
        if nodes is None:
            nodes = {"local": "unix:/run/warmpool/sandboxd.sock"}
        if pools is None:
            pools = {"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"}}
        self.nodes = dict(nodes)
        self.pools = {k: dict(v) for k, v in pools.items()}
        self.port = port or free_port()
        self.listen = listen or "127.0.0.1:%d" % self.port
        self.url = "http://127.0.0.1:%d" % self.port
        self.tokens = list(tokens or [])
        self.extra_poold = extra_poold
        self.rate_limit = rate_limit
        self.log_level = log_level
        self.write_config()

    def config_text(self):
        lines = [
            "; written by tests/system/wpdaemons.py",
            "[poold]",
            "listen = %s" % self.listen,
            "log_level = %s" % self.log_level,
            self.extra_poold,
            "",
        ]
        if self.rate_limit != "default":
            rl = self.rate_limit if self.rate_limit is not None else {"session_rate": 0, "client_rate": 0}
            lines.append("[rate_limit]")
            lines += ["%s = %s" % kv for kv in rl.items()]
            lines.append("")
        lines.append("[auth]")
        for t in self.tokens:
            token, role = t[0], t[1]
            name = t[2] if len(t) > 2 and t[2] else ""
            lines.append(("token = %s %s %s" % (hash_token(token), role, name)).rstrip())
        lines.append("")
        for name, url in self.nodes.items():
            lines += ["[node:%s]" % name, "url = %s" % url, ""]
        for name, keys in self.pools.items():
            lines.append("[pool:%s]" % name)
            lines += ["%s = %s" % kv for kv in keys.items()]
            lines.append("")
        return "\n".join(lines) + "\n"

    def write_config(self):
        with open(self.config, "w") as f:
            f.write(self.config_text())

    def client(self, token=None, timeout=HTTP_TIMEOUT):
        return TCPClient(self.url, token=token, timeout=timeout)

    def start(self, timeout=15):
        self._spawn([POOLD, "--config", self.config])
        self._wait_healthy(timeout)
        return self

    def check_config(self):
        """(exit code, stdout + stderr) of poold --check-config on this config."""
        r = subprocess.run([POOLD, "--check-config", "--config", self.config], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def cleanup(self, remove=True):
        if self.alive():
            self.stop()
        if remove:
            shutil.rmtree(self.tmp, ignore_errors=True)


def check_config(path):
    """(exit code, output) of `poold --check-config --config path`."""
    r = subprocess.run([POOLD, "--check-config", "--config", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    return r.returncode, r.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# The shipped configuration: config/sandboxd.conf and config/poold.conf as
# they are, with only where the daemons listen, sandboxd's state dir,
# cgroup name and uid_base rewritten (the tests and benches that check "the
# shipped config is the product").


def rewrite_keys(text, keys):
    """Replace the value of `key = value` lines of the given keys."""
    for key, value in keys.items():
        text, n = re.subn(r"(?m)^%s\s*=.*$" % re.escape(key), "%s = %s" % (key, value), text)
        if n < 1:
            raise RuntimeError("key %s not in the shipped config" % key)
    return text


class ShippedSandboxd(Sandboxd):
    """config/sandboxd.conf as shipped. config/languages is the repo's (the
    file sits in <tmp>/config/ beside a link to it, so its relative
    `languages = config/languages` means what it means in the repo), or the
    directory `languages` names (a changed copy, for a comparison)."""

    def __init__(self, tmpdir, uid_base, tag, languages=None):
        super().__init__(tmpdir, uid_base=uid_base, capacity=1024, cgroup_name="wp-%s-%d" % (tag, os.getpid()))
        confdir = os.path.join(self.tmp, "config")
        os.makedirs(confdir, exist_ok=True)
        os.symlink(languages or os.path.join(REPO, "config", "languages"), os.path.join(confdir, "languages"))
        with open(os.path.join(REPO, "config", "sandboxd.conf")) as f:
            text = f.read()
        text = rewrite_keys(text, {"listen": "unix:%s" % self.sock, "state_dir": self.state_dir,
                                   "cgroup_name": self.cgroup_name, "uid_base": str(uid_base)})
        self.config = os.path.join(confdir, "sandboxd.conf")
        with open(self.config, "w") as f:
            f.write(text)


class ShippedPoold(Poold):
    """config/poold.conf as shipped; only its listen address and its node's
    socket differ."""

    def __init__(self, tmpdir, node_url):
        self.node_url = node_url
        super().__init__(tmpdir, nodes={"local": node_url})

    def config_text(self):
        with open(os.path.join(REPO, "config", "poold.conf")) as f:
            text = f.read()
        return rewrite_keys(text, {"listen": self.listen, "url": self.node_url,
                                   "async_results_dir": os.path.join(self.tmp, "async")})


def start_shipped(uid_base, tag, ready_timeout=90, languages=None):
    """Both daemons on the shipped config (the language files of the
    directory `languages` if given), started, poold ready (its warm pools
    filled). Returns (sandboxd, poold); stop them with stop_both."""
    sb = ShippedSandboxd(make_tmpdir("wp-%s-node-" % tag), uid_base, tag, languages=languages)
    pd = ShippedPoold(make_tmpdir("wp-%s-poold-" % tag), sb.url)
    try:
        sb.start()
        pd.start(timeout=30)
        c = pd.client(timeout=60)
        if not wait_for(lambda: c.get("/readyz").status == 200, ready_timeout):
            raise RuntimeError("poold on the shipped config not ready in %d s: %r" % (ready_timeout, c.get("/readyz")))
    except Exception:
        pd.cleanup()
        sb.cleanup(remove=False)
        raise
    return sb, pd


def stop_both(sb, pd):
    """SIGTERM to poold, then to sandboxd → (problems, poold's log tail):
    bad exit statuses and sandboxd's leftovers, [] if none (the temp dirs
    are removed then, kept for inspection otherwise)."""
    rc = pd.stop(timeout=30)
    src = sb.stop()
    problems = sb.cleanup(remove=False)
    if rc != 0:
        problems.append("poold exit status after SIGTERM: %s" % rc)
    if src != 0:
        problems.append("sandboxd exit status after SIGTERM: %s" % src)
    log = pd.log_text(limit=6000)
    pd.cleanup()
    if not problems:
        shutil.rmtree(sb.tmp, ignore_errors=True)
    return problems, log
