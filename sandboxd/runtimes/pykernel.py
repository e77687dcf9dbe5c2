"""pykernel.py -- the stateful Python interpreter of a warmpool slot.

sandboxd (sandboxd/kernel.c) starts it once per slot, at warm-up, inside the
slot (its uid, seccomp filter, cgroup), as
    /usr/bin/python3 -I -u -B /opt/warmpool/pykernel.py
with LD_PRELOAD=/opt/warmpool/nodump.so (the process is not dumpable: no
other process of the slot can write its memory through /proc), fd 0 /dev/null, fds 1 and 2 the output files sandboxd reads back, fd 3
the requests and fd 4 the replies (see README.md next to this file). One
request per line: {"code": "...", "max_output": N}; one reply per request:
{"status": "ok"|"error", "result": "<repr of the last expression>"|null,
 "value": <the value as JSON>}. `value` is what Azure's code interpreter
answers as the result: a bool, an int of 64 bits, a finite float or a str as
itself; NaN and infinities as null; no value (a statement, None) as "";
anything else as its repr. A matplotlib figure the cell showed (plt.show(),
or left open at its end, or a Figure as the last expression) makes `value`
{"type": "image", "format": "png", "base64_data": "..."}, as a notebook
displays it; several figures come back as one PNG, stacked top to bottom.

`--preload a,b,c` imports these modules before the interpreter says it is
ready (the data-science pool: numpy, pandas, matplotlib.pyplot), and renders
a first figure, so that a session's first import and plot cost nothing.

Globals, imports and the working directory live on between executions, as
in a notebook. Program output never goes through fds 3 and 4: print(),
sys.stderr and child processes write to fds 1 and 2.
"""

import ast
import builtins
import json
import linecache
import math
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
_isinstance = isinstance
MAX_FIGURES = 16  # figures rendered per execution; more are closed unseen
PIP_NOTE = (
    "pip: there is no network in this sandbox, so no package can be installed from a session. "
    "The packages available are the host's (see docs/packages.md); an operator adds one by installing "
    "it on the host (a Debian package) or by binding a directory of packages read-only into the "
    "slots (`paths` of the language file).\n"
)


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


def _pyplot():
    """matplotlib.pyplot when the code (or --preload) imported it, else None."""
    return sys.modules.get("matplotlib.pyplot")


class _Shown:
    """The figures an execution showed, in order (plt.show() takes them at
    once, as a notebook does; the rest are taken at the end)."""

    def __init__(self):
        self.figures = []
        self.dropped = 0

    def take(self, fig):
        if any(f is fig for f in self.figures):
            return
        if len(self.figures) >= MAX_FIGURES:
            self.dropped += 1
            return
        self.figures.append(fig)

    def take_open(self):
        plt = _pyplot()
        if plt is None:
            return
        try:
            for num in plt.get_fignums():
                self.take(plt.figure(num))
        except Exception:
            pass


_shown = _Shown()


def _show(*args, **kwargs):
    """pyplot.show in a slot: the open figures become the execution's image."""
    _shown.take_open()


def _hook_pyplot():
    plt = _pyplot()
    if plt is not None and getattr(plt, "show", None) is not _show:
        plt.show = _show


def _png(figures):
    """One PNG of the figures (stacked top to bottom when several)."""
    import io

    pngs = []
    for fig in figures:
        buf = io.BytesIO()
        if getattr(fig, "canvas", None) is None or type(fig.canvas).__name__ == "FigureCanvasBase":
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            FigureCanvasAgg(fig)
        fig.savefig(buf, format="png", bbox_inches="tight")
        pngs.append(buf.getvalue())
    if len(pngs) == 1:
        return pngs[0]
    import matplotlib.image
    import numpy

    images = [matplotlib.image.imread(io.BytesIO(p), format="png") for p in pngs]
    width = max(im.shape[1] for im in images)
    rows = []
    for im in images:
        if im.shape[2] == 3:
            im = numpy.dstack([im, numpy.ones(im.shape[:2], dtype=im.dtype)])
        pad = numpy.ones((im.shape[0], width - im.shape[1], 4), dtype=im.dtype)
        rows.append(numpy.hstack([im, pad]))
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, numpy.vstack(rows), format="png")
    return buf.getvalue()


def _image(max_output):
    """The execution's figures as Azure's image result, or None; closes them."""
    plt = _pyplot()
    figures, dropped = _shown.figures, _shown.dropped
    _shown.figures, _shown.dropped = [], 0
    if plt is not None:
        try:
            plt.close("all")
        except Exception:
            pass
    if not figures:
        return None
    import base64

    try:
        data = base64.b64encode(_png(figures)).decode("ascii")
    except Exception as e:
        _print_exception(e)
        return None
    if dropped:
        _flush()
        _write(2, ("(%d more figures were not shown: at most %d per execution)\n" % (dropped, MAX_FIGURES)).encode())
    if len(data) > max_output:
        return "(the figure's PNG is %d bytes in base64, more than the %d bytes of output allowed)" % (
            len(data), max_output)
    return {"type": "image", "format": "png", "base64_data": data}


def _json_value(value, text):
    """The value as Azure answers it (see the top of this file)."""
    if value is None:
        return ""
    if _isinstance(value, bool):
        return bool(value)
    if _isinstance(value, int) and type(value).__module__ == "builtins":
        return int(value) if -(1 << 63) <= value < (1 << 63) else text
    np = sys.modules.get("numpy")
    if np is not None and _isinstance(value, (np.integer, np.bool_)):
        return _json_value(value.item(), text)
    if _isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if _isinstance(value, str) and type(value).__module__ == "builtins":
        return str(value)
    return text


def _is_figure(value):
    mpl_figure = sys.modules.get("matplotlib.figure")
    return mpl_figure is not None and _isinstance(value, mpl_figure.Figure)


def _run_async(coro):
    global _loop
    import asyncio

    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop.run_until_complete(coro)


def _pip_line(code):
    """True when the cell is a notebook pip command (`!pip install x`,
    `%pip install x`): they are no Python, and there is no network anyway."""
    for line in code.splitlines():
        t = line.strip()
        if t.startswith(("!pip", "%pip", "!python -m pip", "!python3 -m pip", "%conda", "!conda")):
            return True
    return False


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
    status, result, value = "ok", None, None
    try:
        code = req["code"]
        max_output = int(req.get("max_output", 1 << 20))
    except Exception:
        return {"status": "error", "result": None}
    _hook_pyplot()
    try:
        if _pip_line(code):
            _flush()
            _write(2, PIP_NOTE.encode())
            return {"status": "error", "result": None, "value": ""}
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
    try:
        out = _json_value(value, result) if status == "ok" else ""
        if status == "ok" and _is_figure(value):
            _shown.take(value)
        _hook_pyplot()
        _shown.take_open()
        image = _image(max_output)
        if image is not None:
            out = image
    except BaseException as e:  # a hostile __eq__, say: the value is its repr
        _print_exception(e)
        out = result if result is not None else ""
    if _isinstance(out, str):
        b = out.encode("utf-8", "replace")
        if len(b) > max_output:
            out = b[:max_output].decode("utf-8", "ignore")
    return {"status": status, "result": result, "value": out}


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


def _preload(names):
    """Import the modules of --preload (and draw a first figure when pyplot
    is one), so that the session's first import and plot are instant."""
    for name in names:
        __import__(name)
    plt = _pyplot()
    if plt is not None:
        _hook_pyplot()
        fig = plt.figure(figsize=(1, 1))
        fig.gca().plot([0, 1])
        _png([fig])
        plt.close("all")


def main():
    _check_isolated()
    argv = sys.argv[1:]
    if len(argv) == 2 and argv[0] == "--preload":
        _preload([m for m in argv[1].split(",") if m])
    elif argv:
        _write(2, b"pykernel: usage: pykernel.py [--preload module,module...]\n")
        _exit(64)
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
