"""pyfork.py — the pre-started helper of Python slots (sandboxd/prestart.c):
a fork-server. It starts with the slot, finishes the interpreter's start-up
(site and all), then forks one fresh child per test case. The server never
runs submitted code; each child runs the submission once and exits, so
nothing a test case does reaches the next one.

fds: 0 an empty memfd, 1 and 2 pipes (the kinds a test case gets, so the
sys.std* objects made at start-up behave as in `python3 main.py`), 3 the
SOCK_SEQPACKET to sandboxd, 4 /dev/null. Per step sandboxd sends init's
PROTO_RUN message with fds: stdin, stdout, stderr, then the cgroup.procs fds
of the step's run group. The child joins that group, takes the step's
rlimits, reports {"started": pid}, puts the fds in place and runs the script
as __main__; the server reports {"exited": …} when it reaps it.

The server is not dumpable: a test case can neither ptrace it nor read its
fds through /proc. It can kill or stop it (same uid): sandboxd then runs the
test case again the usual way and restarts the server."""

import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys

_HDR = struct.Struct("<IIIIQQQQI")  # struct proto_run (proto.h), up to strings[]
_RLIM_INF = (1 << 64) - 1
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_DUMPABLE = 4


def _send(sock, obj):
    try:
        sock.send(json.dumps(obj).encode())
    except OSError:
        os._exit(0)


def _serve():
    """Serve until a step arrives in a child: returns (message, fds) there."""
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    sock = socket.socket(fileno=3)
    os.close(4)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    signal.set_wakeup_fd(wake_w)
    children = set()
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
                while children:
                    try:
                        pid, status, ru = os.wait4(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    children.discard(pid)
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
                msg, fds, _, _ = socket.recv_fds(sock, 65536, 16)
            except InterruptedError:
                continue
            if not msg:
                os._exit(0)  # sandboxd is gone
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(wake_r)
                os.close(wake_w)
                return sock, msg, fds
            children.add(pid)
            for f in fds:
                os.close(f)


def _child(sock, msg, fds):
    """In the child: the run group, the limits, the fds; then the script's
    argv, path and environment. Returns the script's path."""
    import resource

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


_sock, _msg, _fds = _serve()
_rc = _main(_child(_sock, _msg, _fds))
del _sock, _msg, _fds
if _rc:
    raise SystemExit(_rc)
