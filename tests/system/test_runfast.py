"""A run's own cgroup around each test case, with the per-run work moved off
the run's path (docs/capacity.md, "Pre-warming"):

- a Python test case taken by the slot's fork-server (sandboxd/runtimes/
  pyfork.py) is alone in its run group: init's stub, which waited there for
  a run started the usual way, is dropped while the test case runs (before,
  it sat in the test case's group and was killed after the test case ended,
  which held the answer back by a millisecond);
- run groups are still made afresh between runs when the fresh group is
  made ahead of need: within one submission (test case after test case) as
  between requests, a test case never starts charged with the pages an
  earlier one left in a tmpfs.
"""

import os
import textwrap
import threading
import time

from conftest import FILL_TMPFS, show
from wpdaemons import cgroup_dirs_named, wait_for


def run_groups(sandboxd, sid):
    """{name: [host pids]} of the slot's run groups in the pids hierarchy."""
    slot_dirs = [d for d in cgroup_dirs_named("slot-%s" % sid, extra_pids=(sandboxd.proc.pid,))
                 if os.path.exists(os.path.join(d, "pids.max"))]
    assert slot_dirs, "no pids cgroup of slot %s found" % sid
    out = {}
    for name in sorted(os.listdir(slot_dirs[0])):
        procs = os.path.join(slot_dirs[0], name, "cgroup.procs")
        if name.startswith("run") and os.path.exists(procs):
            with open(procs) as f:
                out[name] = [int(x) for x in f.read().split()]
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "(gone)"


def test_python_test_case_is_alone_in_its_run_group(sandboxd, make_slot, run):
    sid = make_slot("python")
    result = {}
    t = threading.Thread(target=lambda: result.update(b=run(sid, "import time\ntime.sleep(1.5)\nprint('done')\n",
                                                            tests=[("", "done\n")])))
    t.start()
    try:
        time.sleep(0.8)  # the test case sleeps: look at the groups meanwhile
        groups = run_groups(sandboxd, sid)
        crowded = {g: [(p, cmdline(p)) for p in pids] for g, pids in groups.items() if len(pids) > 1}
    finally:
        t.join(30)
    assert result.get("b", {}).get("verdict") == "accepted", show(result.get("b", {}))
    # the test case's group holds the test case; the other, the next test
    # case's child forked ahead: one process each, nothing else
    assert not crowded, "a run group holds more than its test case while it runs: %r (all: %r)" % (crowded, groups)
    assert sum(len(p) for p in groups.values()) >= 1, "the running test case is in none of the run groups: %r" % groups


FILL_OR_ALLOC = "import sys\nif sys.stdin.read().strip() == \"fill\":" + textwrap.indent(FILL_TMPFS, "    ").rstrip("\n") + r'''
else:
    big = bytearray(100 << 20)  # with the 124 MB above it would pass the limit
    print(len(big) >> 20, open("/tmp/fill", "rb").read(3))
'''


def test_every_test_case_of_a_submission_starts_uncharged(make_slot, run):
    """Test cases alternate between two run groups; the third and the fourth
    run in groups renewed from a spare made while an earlier one ran."""
    sid = make_slot("python")
    tests = [("fill\n", "filled\n")] + [("", "100 b'xxx'\n")] * 4
    b = run(sid, FILL_OR_ALLOC, tests=tests, limits={"memory_kb": 200 << 10})
    assert [t["verdict"] for t in b["tests"]] == ["accepted"] * 5, show(b)
    # and again in the next request: both groups renewed once more
    b = run(sid, FILL_OR_ALLOC, tests=[("", "100 b'xxx'\n")] * 3, limits={"memory_kb": 200 << 10})
    assert [t["verdict"] for t in b["tests"]] == ["accepted"] * 3, show(b)


def waiting_children(sandboxd, sid):
    """Host pids of the fork-server's children that wait in the slot's run
    groups for a step (a child that took its step leads its own session)."""
    out = []
    for pids in run_groups(sandboxd, sid).values():
        for p in pids:
            try:
                with open("/proc/%d/stat" % p) as f:
                    session = int(f.read().rsplit(")", 1)[1].split()[3])
            except (OSError, ValueError, IndexError):
                continue
            if "pyfork.py" in cmdline(p) and session != p:
                out.append(p)
    return out


def test_python_child_forked_ahead_only_for_a_step_that_comes(sandboxd, make_slot, run):
    """A fresh slot has its first test case's child forked ahead; a slot kept
    after its request gets the next request's child a moment later. (No
    child is forked beside a request's last test case: a test case looks for
    one in test_prewarm.py's waiting-child test.)"""
    sid = make_slot("python")
    assert wait_for(lambda: len(waiting_children(sandboxd, sid)) == 1, 10), run_groups(sandboxd, sid)
    b = run(sid, "print(1)\n", tests=[("", "1\n")] * 2)
    assert [x["verdict"] for x in b["tests"]] == ["accepted"] * 2, show(b)
    assert wait_for(lambda: len(waiting_children(sandboxd, sid)) == 1, 5), (
        "the kept slot got no child forked ahead for its next request: %r" % run_groups(sandboxd, sid))
