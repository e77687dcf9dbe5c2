"""pyfork.py — the pre-started helper of Python slots (sandboxd/prestart.c):
a fork-server. It starts with the slot, finishes the interpreter's start-up
(site and all), then forks one fresh child per test case. The server never
runs submitted code; each child runs the submission once and exits, so
nothing a test case does reaches the next one.

fds: 0 an empty memfd, 1 and 2 pipes (the kinds a test case gets, so the
sys.std* objects made at start-up behave as in `python3 main.py`), 3 the
SOCK_SEQPACKET to sandboxd, 4 /dev/null. Per step sandboxd sends init's
PROTO_RUN message with fds: stdin, stdout, stderr, then the join fds of
the step's run group (v1: tasks, v2: cgroup.procs; docs/cgroups.md). The
child joins that group, takes the step's
rlimits, reports {"started": pid}, puts the fds in place and runs the script
as __main__; the server reports {"exited": …} when it reaps it.

Moving a process into a cgroup can wait for an RCU grace period (~10 ms on
a quiet host), and a fresh fork faults in the pages it touches: so the next
test case's child is forked ahead of need. sandboxd sends a PREFORK datagram
(magic, a tag) with the join fds of the run group the next step
will use; the server forks a child that joins that group and waits on a
private socket. A step whose trailing tag names the waiting child is
handed to it (it needs no cgroup move); any other step kills the waiting
child and forks fresh as above. A waiting child never ran submitted code:
it is a copy of the server, as a fresh fork would be.

A fresh fork shares every page with the server copy-on-write: the first
write to each (a refcount, an allocation in a pool, the eval loop's
caches) is a page fault and a 4 KiB copy: 377 traced after an a+b test
case's step, which took 3.4-3.6 ms from step to exit (1.9-2.1 ms with the
pages copied ahead). So the waiting child, once in its group, runs a
fixed stand-in program of its own (_STANDIN: input parsing, a function,
loops, comprehensions, a dict, sorting, formatting; input() and print()
replaced, no I/O) and drops what it made: the pages a typical test case
writes first are its own before the step arrives. Nothing of it is the
submission's: it is this file's code, run before any step, and it leaves
no module, global or open file behind (only the allocator's and caches'
state, as an interpreter's own start-up does).

The server is not dumpable: a test case can neither ptrace it nor read its
fds through /proc. It can kill or stop it (same uid): sandboxd then runs the
test case again the usual way and restarts the server."""

import _signal
import _socket
import array
import atexit
import builtins  # noqa: F401 — the child's imports, done before READY
import ctypes
import gc
import importlib.machinery  # noqa: F401
import io
import os
import resource
import select
import struct
import sys
import types  # noqa: F401

_HDR = struct.Struct("<IIIIQQQQI")  # struct proto_run (proto.h), up to strings[]
_RLIM_INF = (1 << 64) - 1
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_DUMPABLE = 4
_PR_SET_PDEATHSIG = 1
_PREFORK = struct.Struct("<8sQ")  # b"WPPREFRK", tag (prestart.c)
_PREFORK_MAGIC = b"WPPREFRK"
_TAG = struct.Struct("<Q")  # after a step's strings: the waiting child's tag, 0: none


def _json(obj):
    """The reports' JSON: flat objects of ints, booleans and plain strings
    (importing json, with re and enum, was a fifth of the server's start-up)."""
    out = []
    for k, v in obj.items():
        if v is True or v is False:
            v = "true" if v else "false"
        elif isinstance(v, int):
            v = str(v)
        else:
            v = '"%s"' % "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in str(v))
        out.append('"%s":%s' % (k, v))
    return "{" + ",".join(out) + "}"


def _send(sock, obj):
    try:
        sock.send(_json(obj).encode())
    except OSError:
        os._exit(0)


def _recv_fds(sock, bufsize, maxfds):
    """socket.recv_fds on a bare _socket.socket: (message, fds). The socket
    module (and the enum and selectors modules it imports) is not loaded:
    the server starts with every slot, its imports are the slot's cost."""
    fds = array.array("i")
    msg, anc, _, _ = sock.recvmsg(bufsize, _socket.CMSG_LEN(maxfds * fds.itemsize))
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def _send_fds(sock, msg, fds):
    sock.sendmsg([msg], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds))])


def _serve():
    """Serve until a step arrives in a child: returns (message, fds) there."""
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    # the server's objects move to the permanent generation: a child's
    # collections do not walk (and so copy) the pages they sit on (no
    # collection first: it would cost the slot's creation ~5-10 ms of CPU)
    gc.freeze()
    sock = _socket.socket(fileno=3)
    os.close(4)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _signal.signal(_signal.SIGCHLD, lambda *a: None)
    _signal.set_wakeup_fd(wake_w)
    children = set()
    quiet = set()  # waiting children killed unused: their ends are not reported
    pre = None  # the waiting child: [pid, tag, its socket]
    handed = {}  # pid: socket of a child forked ahead, until it is reaped
    # sandboxd's first datagram is a PREFORK: the first step's child is in
    # its run group before the slot is ready
    msg, fds = _recv_fds(sock, 65536, 16)
    if not msg:
        os._exit(0)
    if len(msg) == _PREFORK.size and msg.startswith(_PREFORK_MAGIC):
        pre = _prefork(sock, fds, _PREFORK.unpack(msg)[1], wake_r, wake_w) if fds else None
        if isinstance(pre, tuple):
            return pre  # in the waiting child: its step
        if pre is not None and not select.select([pre[2]], [], [], 10)[0]:
            _drop(pre, quiet)  # it did not say it joined: steps fork afresh
            pre = None
    else:
        for f in fds:
            os.close(f)
    _send(sock, {"ready": True})
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    poll.register(wake_r, select.POLLIN)
    while True:
        try:
            events = poll.poll()
        except InterruptedError:
            continue
        for fd, ev in events:
            if fd == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                while True:
                    try:
                        pid, status, ru = os.wait4(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    if pid in quiet or (pre is not None and pid == pre[0]):
                        quiet.discard(pid)  # a waiting child: no step of it
                        if pre is not None and pid == pre[0]:
                            pre[2].close()
                            pre = None
                        continue
                    children.discard(pid)
                    if pid in handed:
                        handed.pop(pid).close()
                    _send(
                        sock,
                        {
                            "exited": pid,
                            "status": status,
                            "maxrss_kb": ru.ru_maxrss,
                            "utime_us": int(ru.ru_utime * 1e6),
                            "stime_us": int(ru.ru_stime * 1e6),
                        },
                    )
                continue
            try:
                msg, fds = _recv_fds(sock, 65536, 16)
            except InterruptedError:
                continue
            if not msg:
                os._exit(0)  # sandboxd is gone
            if len(msg) == _PREFORK.size and msg.startswith(_PREFORK_MAGIC):
                _drop(pre, quiet)
                pre = None
                r = _prefork(sock, fds, _PREFORK.unpack(msg)[1], wake_r, wake_w) if fds else None
                if isinstance(r, tuple):
                    return r  # in the waiting child: its step
                pre = r
                continue
            tag = _step_tag(msg)
            alive = pre is not None and _waiting(pre[0])
            if pre is not None and alive is None:
                pre[2].close()  # it is gone (reaped): nothing to kill
                pre = None
            if alive and tag and tag == pre[1]:
                try:
                    _send_fds(pre[2], msg, fds[:3])
                    children.add(pre[0])
                    # closed when it is reaped: closing a socket with data
                    # unread (its "j") resets the peer's, step unread or not
                    handed[pre[0]] = pre[2]
                    pre = None
                    for f in fds:
                        os.close(f)
                    continue
                except OSError:
                    pass
            _drop(pre, quiet)
            pre = None
            pid = os.fork()
            if pid == 0:
                _forked(wake_r, wake_w)
                return sock, msg, fds
            children.add(pid)
            for f in fds:
                os.close(f)


def _forked(wake_r, wake_w):
    _signal.set_wakeup_fd(-1)
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
    os.close(wake_r)
    os.close(wake_w)


def _step_tag(msg):
    """The tag sandboxd put after the step's message (0: none). The C
    struct is _HDR.size plus padding to 8 bytes, then the strings: a
    message 8 or more bytes longer than header and strings ends in a tag."""
    try:
        end = _HDR.size + _HDR.unpack_from(msg)[8]
        return _TAG.unpack_from(msg, len(msg) - _TAG.size)[0] if len(msg) >= end + _TAG.size else 0
    except struct.error:
        return 0


def _waiting(pid):
    """True: it waits. None: it is gone (reaped here). False: stopped (a
    test case has the same uid: it can stop or kill it); the step forks
    afresh and _drop kills it."""
    try:
        wpid, status = os.waitpid(pid, os.WNOHANG | os.WUNTRACED)
    except ChildProcessError:
        return None
    if wpid == 0:
        return True
    if os.WIFSTOPPED(status):
        return False  # not reaped: _drop kills it, the SIGCHLD loop reaps it
    return None


def _drop(pre, quiet):
    """Kill a waiting child that will not get a step."""
    if pre is None:
        return
    quiet.add(pre[0])
    pre[2].close()
    try:
        os.kill(pre[0], _signal.SIGKILL)
    except OSError:
        pass


def _prefork(sock, fds, tag, wake_r, wake_w):
    """Fork the child of the next step into its run group (fds: the
    group's join fds). In the server: [pid, tag, socket] or None. In the
    child, once a step came: the tuple (sock, msg, fds) for _child."""
    try:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    except OSError:
        for f in fds:
            os.close(f)
        return None
    pid = os.fork()
    if pid:
        b.close()
        for f in fds:
            os.close(f)
        return [pid, tag, a]
    _forked(wake_r, wake_w)
    a.close()
    _libc.prctl(_PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        os._exit(0)
    try:
        for f in fds:
            os.write(f, b"0")
            os.close(f)
        _standin()  # in the group: the pages it copies are charged there
        b.send(b"j")  # in its group (the server waits for it only at start)
        msg, step_fds = _recv_fds(b, 65536, 8)
    except OSError:
        os._exit(0)
    if not msg or len(step_fds) != 3:
        os._exit(0)  # the server dropped it
    b.close()
    return sock, msg, step_fds + [None]


_STANDIN = """
def solve(line):
    a, b = map(int, line.split())
    xs = [x * 2 for x in range(a, b + 3) if x % 2 == 0]
    d = {"k": len(xs), "s": sum(xs)}
    return "%d %s" % (a + b, sorted(d.items()))
n = int(input())
out = []
for i in range(n):
    out.append(solve(input()))
print("\\n".join(out), max(len(o) for o in out), f"{n:>3}")
"""


def _standin():
    """Run _STANDIN as a test case would, in a throwaway module, with
    input() and print() that do no I/O (module doc: the pages it copies)."""
    import builtins

    feed = iter(("2", "1 2", "3 4"))
    mod = types.ModuleType("__standin__")
    mod.__builtins__ = builtins
    mod.input = lambda *a: next(feed)
    mod.print = lambda *a, **k: None
    os.path.abspath("main.py")  # as _main does for sys.path[0]
    try:
        exec(compile(_STANDIN, "/nonexistent/main.py", "exec", dont_inherit=True), mod.__dict__)
    except Exception:  # noqa: BLE001 — a stand-in: a limit it met (memory) only makes it useless
        pass
    mod.__dict__.clear()
    del mod, feed
    _flush()
    gc.collect()


def _child(sock, msg, fds):
    """In the child: the run group, the limits, the fds; then the script's
    argv, path and environment. Returns the script's path. fds[3] is None
    in a child forked ahead: it is in its run group already."""
    where = "malformed step"
    try:
        _, _, argc, envc, cpu, fsize, stack, nofile, slen = _HDR.unpack_from(msg)
        strs = msg[_HDR.size : _HDR.size + slen].split(b"\0")
        argv = [s.decode() for s in strs[:argc]]
        env = [s.decode() for s in strs[argc : argc + envc]]
        cwd = strs[argc + envc].decode()
        if len(fds) < 4:
            raise ValueError("fds")
        where = "join the run cgroup"
        for f in fds[3:]:
            if f is not None:
                os.write(f, b"0")
                os.close(f)
        where = "rlimits"

        def lim(v):
            return resource.RLIM_INFINITY if v == _RLIM_INF else v

        resource.setrlimit(resource.RLIMIT_CPU, (lim(cpu), lim(cpu) if cpu == _RLIM_INF else cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim(fsize), lim(fsize)))
        resource.setrlimit(resource.RLIMIT_STACK, (lim(stack), lim(stack)))
        resource.setrlimit(resource.RLIMIT_NOFILE, (lim(nofile), lim(nofile)))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()
        _libc.prctl(_PR_SET_PDEATHSIG, 0, 0, 0, 0)  # a child forked ahead: its step outlives the server
        where = "chdir"
        os.chdir(cwd)
        _send(sock, {"started": os.getpid()})
    except Exception as e:  # noqa: BLE001 — reported, then the step is re-run
        _send(sock, {"failed": getattr(e, "errno", None) or 22, "where": where})
        os._exit(127)
    sock.close()
    for i in range(3):
        os.dup2(fds[i], i)
        os.close(fds[i])
    os.environ.clear()
    for kv in env:
        k, _, v = kv.partition("=")
        os.environ[k] = v
    # `python3 [options] main.py args…`: sys.argv starts at the script
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    sys.argv = argv[i:] if i < len(argv) else [""]
    _libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)  # as an exec'd program is
    return sys.argv[0]


def _hide_depth():
    """The script's frames sit below this file's (the module, _main, exec):
    the recursion limit counts them, so it is raised by as many, and
    sys.getrecursionlimit / setrecursionlimit show and take the script's
    view. RecursionError comes at the same depth as under python3 main.py."""
    f, depth = sys._getframe(1), 1  # _main and its callers, plus exec
    while f is not None:
        depth += 1
        f = f.f_back
    off = depth
    real_set, real_get = sys.setrecursionlimit, sys.getrecursionlimit

    def setrecursionlimit(limit, /):
        real_set(limit)  # its checks and messages
        real_set(limit + off)

    def getrecursionlimit():
        return real_get() - off

    setrecursionlimit.__doc__ = real_set.__doc__
    getrecursionlimit.__doc__ = real_get.__doc__
    sys.setrecursionlimit, sys.getrecursionlimit = setrecursionlimit, getrecursionlimit
    real_set(real_get() + off)


def _main(script):
    """Run the script as `python3 script` would: __main__, its dir first on
    sys.path, its traceback (without this file's frame) and exit code."""
    import builtins
    import importlib.machinery
    import types

    path = os.path.abspath(script)
    sys.path[0:0] = [os.path.dirname(path)]
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n" % (sys.executable, path, e.errno, e.strerror))
        sys.stderr.flush()
        os._exit(2)
    mod = types.ModuleType("__main__")
    mod.__file__ = path
    mod.__cached__ = None
    mod.__builtins__ = builtins
    mod.__annotations__ = {}
    mod.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    sys.modules["__main__"] = mod
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        sys.excepthook(type(e), e.with_traceback(None), None)
        return 1
    _hide_depth()
    try:
        exec(code, mod.__dict__)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 — printed as the interpreter would
        tb = e.__traceback__.tb_next if e.__traceback__ else None
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        return 1
    return 0


def _exit_code(e):
    """The status of an uncaught SystemExit, as the interpreter has it (its
    message printed to stderr when it is not a number)."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code if -(1 << 31) <= code < (1 << 31) else -1
    try:
        sys.stderr.write("%s\n" % (code,))
    except Exception:  # noqa: BLE001 — as the interpreter: nothing to do
        pass
    return 1


def _flush():
    """sys.stdout and sys.stderr, as the interpreter's exit does; and the
    original streams if the script replaced them (the interpreter's teardown
    flushes those when they go)."""
    ok = True
    for f in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if f is not None and not f.closed:
                f.flush()
        except Exception:  # noqa: BLE001 — the interpreter's status 120
            ok = False
    return ok


def _finish(rc):
    """End the test case as the interpreter's finalization would, without
    tearing down the server's modules and objects: that writes to every page
    the child shares copy-on-write with the server, and was half of an a+b
    test case's CPU. In the interpreter's order: wait for the non-daemon
    threads, the atexit functions, flush sys.stdout and sys.stderr; then
    the script's own objects go (its module dropped, its objects collected:
    __del__ methods run, files it left open are flushed and closed) and the
    std streams are flushed again. A flush that fails makes the status 120."""
    t = sys.modules.get("threading")
    if t is not None:
        try:
            t._shutdown()
        except BaseException:  # noqa: BLE001 — interrupted: go on as the interpreter does
            pass
    atexit._run_exitfuncs()
    ok = _flush()
    try:
        # as the interpreter's teardown: the script's module is dropped and
        # its objects collected, finalizers first (PEP 442), so __del__
        # methods see their globals and files left open are flushed
        sys.last_type = sys.last_value = sys.last_traceback = None
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        main, v = sys.modules.pop("__main__", None), None
        # streams in its globals (`out = os.fdopen(1, "w")`) first: a
        # collection finalizes a cycle's objects in no set order, a buffer
        # could be closed before the text layer above it flushes into it
        for v in list(getattr(main, "__dict__", {}).values()):
            if isinstance(v, io.IOBase):
                try:
                    v.flush()
                except Exception:  # noqa: BLE001 — closed, or its own error: as at exit
                    pass
        del main, v
        gc.collect()
    except BaseException:  # noqa: BLE001 — a __del__ that raises is ignored, as at exit
        pass
    ok = _flush() and ok
    os._exit(rc if ok else 120)


_sock, _msg, _fds = _serve()
try:
    _rc = _main(_child(_sock, _msg, _fds))
except SystemExit as _e:
    _rc = _exit_code(_e)
    del _e
del _sock, _msg, _fds
_finish(_rc)
