"""pykernel.py -- the stateful Python interpreter of a warmpool slot.

sandboxd (sandboxd/kernel.c) starts it once per slot, at warm-up, inside the
slot (its uid, seccomp filter, cgroup), as
    /usr/bin/python3 -I -u -B /opt/warmpool/pykernel.py
with LD_PRELOAD=/opt/warmpool/nodump.so (the process is not dumpable: no
other process of the slot can write its memory through /proc), fd 0 /dev/null, fds 1 and 2 the output files sandboxd reads back, fd 3
the requests and fd 4 the replies (see README.md next to this file). One
request per line: {"code": "...", "max_output": N}; one reply per request:
{"status": "ok"|"error", "result": "<repr of the last expression>"|null}.

Globals, imports and the working directory live on between executions, as
in a notebook. Program output never goes through fds 3 and 4: print(),
sys.stderr and child processes write to fds 1 and 2.
"""

import ast
import builtins
import json
import linecache
import os
import sys
import traceback
import types

REQ_FD, REP_FD = 3, 4
CO_COROUTINE = 0x80

_write = os.write
_getpid = os.getpid
_exit = os._exit
_dumps = json.dumps
_loads = json.loads
_here = os.path.abspath(__file__)
_main_pid = _getpid()
_loop = None  # asyncio loop for top-level await, made on first use


def _send(obj):
    data = (_dumps(obj, ensure_ascii=False) + "\n").encode("utf-8", "replace")
    view = memoryview(data)
    while view:
        n = _write(REP_FD, view)
        view = view[n:]


def _flush():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass


def _print_exception(e):
    """The traceback, without this file's frames, on fd 2."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _here:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(e), e, tb))
    except Exception as e2:  # a broken __str__, say
        text = "%s (and formatting it failed: %r)\n" % (type(e).__name__, e2)
    _flush()
    data = text.encode("utf-8", "backslashreplace")
    while data:
        try:
            n = _write(2, data)
        except OSError:
            break
        data = data[n:]


def _run_async(coro):
    global _loop
    import asyncio

    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop.run_until_complete(coro)


def _execute(code, filename, ns):
    """Run `code` in ns; the value of a last expression statement, or None."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    # the cell's source, for the lines shown in its tracebacks
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | flags, dont_inherit=True)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, "exec", flags, dont_inherit=True)
    r = eval(body, ns)
    if body.co_flags & CO_COROUTINE:
        _run_async(r)
    if last is None:
        return None
    expr = compile(last, filename, "eval", flags, dont_inherit=True)
    value = eval(expr, ns)
    if expr.co_flags & CO_COROUTINE:
        value = _run_async(value)
    return value


def _cell(req, n, ns):
    """One execution: its reply."""
    status, result = "ok", None
    try:
        code = req["code"]
        max_output = int(req.get("max_output", 1 << 20))
    except Exception:
        return {"status": "error", "result": None}
    try:
        value = _execute(code, "<cell-%d>" % n, ns)
        if value is not None:
            result = repr(value)
    except SystemExit as e:
        if e.code not in (None, 0):
            status = "error"
            _print_exception(e)
    except BaseException as e:
        status = "error"
        _print_exception(e)
    if _getpid() != _main_pid:
        # a child the code forked came back here: it ends, as a script would
        _flush()
        _exit(0 if status == "ok" else 1)
    _flush()
    if result is not None:
        b = result.encode("utf-8", "replace")
        if len(b) > max_output:
            result = b[:max_output].decode("utf-8", "ignore")
    return {"status": status, "result": result}


def _check_isolated():
    """Refuse to serve unless started the way sandboxd starts it: isolated
    (-I: no user site, no PYTHON* variables, no cwd on sys.path, so nothing
    a run planted in HOME or /mnt/data runs here) and not dumpable (a
    non-dumpable process's /proc files belong to root)."""
    why = None
    if not sys.flags.isolated:
        why = "not started with python3 -I"
    elif os.stat("/proc/self/mem").st_uid != 0 and os.getuid() != 0:
        why = "still dumpable: /opt/warmpool/nodump.so was not preloaded (build it: make)"
    if why:
        _write(2, ("pykernel: %s\n" % why).encode())
        _exit(78)


def main():
    _check_isolated()
    for fd in (REQ_FD, REP_FD):
        os.set_inheritable(fd, False)  # not for the code's child processes
    requests = open(REQ_FD, "rb", closefd=False)

    # the code's world: a fresh __main__, the cwd on sys.path as in `python3 -i`
    main_mod = types.ModuleType("__main__")
    main_mod.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main_mod
    sys.argv = [""]
    # (only now: with -I nothing of the work dir was importable at start-up)
    sys.path.insert(0, "")
    ns = main_mod.__dict__

    # warm every path an execution takes (compile, eval, repr, a traceback),
    # so that the first execution is as fast as the next
    scratch = {"__builtins__": builtins}
    _cell({"code": "x = [1, 'x']\nx", "max_output": 64}, 0, scratch)
    try:
        _execute("1 / 0", "<warm-up>", scratch)
    except ZeroDivisionError as e:
        traceback.format_exception(type(e), e, e.__traceback__)
    linecache.cache.pop("<cell-0>", None)
    linecache.cache.pop("<warm-up>", None)

    _send({"ready": True})
    n = 0
    while True:
        line = requests.readline()
        if not line:
            _exit(0)  # sandboxd closed the pipe: the slot is going
        try:
            req = _loads(line)
        except ValueError:
            _exit(70)
        n += 1
        _send(_cell(req, n, ns))


main()
