"""The Makefile as a packager or developer uses it: a user's CFLAGS adds to
the project's flags, the version is defined once, `make install` and
`make install-systemd` put everything under DESTDIR, `make uninstall` takes
it all back. No root needed; nothing is installed outside a temp dir.

Run: /usr/bin/python3 -m pytest tests/system/test_build.py
"""

import os
import re
import shutil
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make(*args, timeout=600):
    # the suite's own flags (make SANITIZE=… test), so nothing is rebuilt differently
    san = os.environ.get("WARMPOOL_SANITIZE")
    cmd = ["make", "--no-print-directory"] + (["SANITIZE=" + san] if san else []) + list(args)
    return subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def compile_line(out, src):
    lines = [l for l in out.splitlines() if " -c " in l and l.rstrip().endswith(src)]
    assert lines, "no compile line for %s in:\n%s" % (src, out)
    return lines[0].split()


def test_user_cflags_add_to_the_project_flags():
    """make CFLAGS=-O0 once dropped -Ilib, -D_GNU_SOURCE, the warnings and the
    hardening (a command-line CFLAGS overrides `CFLAGS +=`). Dry run (-n -B):
    nothing is built."""
    r = make("-n", "-B", "V=1", "CFLAGS=-O0 -DUSER_FLAG", "LDFLAGS=-Wl,--as-needed", "build/lib/json.o",
             "bin/sandboxd")
    assert r.returncode == 0, r.stdout
    words = compile_line(r.stdout, "lib/json.c")
    for flag in ("-Ilib", "-D_GNU_SOURCE", "-std=gnu11", "-Wall", "-Wextra", "-fstack-protector-strong", "-fPIE",
                 "-MMD", "-O0", "-DUSER_FLAG"):
        assert flag in words, "%s missing from the compile line: %s" % (flag, " ".join(words))
    # the user's flags come last, so -O0 wins over any -O of the project
    assert words.index("-O0") > max([i for i, w in enumerate(words) if w.startswith("-W")]), words
    link = [l for l in r.stdout.splitlines() if "-o bin/sandboxd" in l]
    assert link and "-pie" in link[0] and "-Wl,-z,relro,-z,now" in link[0] and "--as-needed" in link[0], r.stdout
    # each daemon links what it uses: sandboxd no curl, poold no seccomp
    assert "-lseccomp" in link[0] and "-lcurl" not in link[0], link[0]
    r = make("-n", "-B", "V=1", "bin/poold")
    link = [l for l in r.stdout.splitlines() if "-o bin/poold" in l]
    assert link and "-lcurl" in link[0] and "-lseccomp" not in link[0], r.stdout


def test_version_is_defined_once():
    with open(os.path.join(REPO, "Makefile")) as f:
        m = re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M)
    assert m, "no VERSION in the Makefile"
    version = m.group(1)
    found = []
    for d in ("lib", "sandboxd", "poold", "client"):
        for name in os.listdir(os.path.join(REPO, d)):
            p = os.path.join(d, name)
            if os.path.isfile(os.path.join(REPO, p)) and open(os.path.join(REPO, p), errors="replace").read().count(
                    '"%s"' % version):
                found.append(p)
    assert not found, "the version %s is written in %s too (pass it with -D from the Makefile)" % (version, found)
    r = make("bin/sandboxd", "bin/poold", "bin/poolctl")
    assert r.returncode == 0, r.stdout
    for b, want in (("sandboxd", "sandboxd " + version), ("poold", "poold " + version),
                    ("poolctl", "poolctl %s (libwarmpool %s)" % (version, version))):
        out = subprocess.run([os.path.join(REPO, "bin", b), "--version"], stdout=subprocess.PIPE, text=True).stdout
        assert out.strip() == want, (b, out)


def files_under(root):
    out = set()
    for d, _, fs in os.walk(root):
        for f in fs:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def test_install_under_destdir_and_uninstall(tmp_path):
    dest = str(tmp_path / "root")
    r = make("DESTDIR=" + dest, "PREFIX=/opt/wp", "install-systemd")
    assert r.returncode == 0, r.stdout
    got = files_under(dest)
    for f in ("opt/wp/bin/sandboxd", "opt/wp/bin/poold", "opt/wp/bin/poolctl",
              "opt/wp/share/warmpool/languages/python.conf", "opt/wp/share/warmpool/runtimes/pykernel.py",
              "opt/wp/share/doc/warmpool/operations.md", "etc/warmpool/sandboxd.conf", "etc/warmpool/poold.conf",
              "opt/wp/lib/systemd/system/sandboxd.service", "opt/wp/lib/systemd/system/poold.service",
              "opt/wp/lib/sysusers.d/warmpool.conf", "opt/wp/include/warmpool.h", "opt/wp/lib/libwarmpool.so.0"):
        assert f in got, "%s not installed; installed:\n%s" % (f, "\n".join(sorted(got)))
    outside = [f for f in got if not (f.startswith("opt/wp/") or f.startswith("etc/warmpool/"))]
    assert not outside, "installed outside PREFIX and SYSCONFDIR: %s" % outside
    unit = open(os.path.join(dest, "opt/wp/lib/systemd/system/poold.service")).read()
    assert "ExecStart=/opt/wp/bin/poold --config /etc/warmpool/poold.conf" in unit, unit
    assert "/usr/local" not in unit, unit
    conf = open(os.path.join(dest, "etc/warmpool/sandboxd.conf")).read()
    assert "languages = /opt/wp/share/warmpool/languages" in conf, conf
    assert os.stat(os.path.join(dest, "etc/warmpool/poold.conf")).st_mode & 0o777 == 0o640
    hdr = open(os.path.join(dest, "opt/wp/include/warmpool.h")).read()
    assert "@VERSION@" not in hdr, "the installed header has no version written in"

    # a changed config survives uninstall; everything else goes
    with open(os.path.join(dest, "etc/warmpool/poold.conf"), "a") as f:
        f.write("; mine\n")
    r = make("DESTDIR=" + dest, "PREFIX=/opt/wp", "uninstall")
    assert r.returncode == 0, r.stdout
    assert files_under(dest) == {"etc/warmpool/poold.conf"}, sorted(files_under(dest))


def test_install_writes_nothing_outside_destdir():
    """`make DESTDIR=… install install-systemd` with the default PREFIX
    (/usr/local) and SYSCONFDIR (/etc), run as a user who may write only
    DESTDIR: any write outside it (or a rebuild in the tree) would fail."""
    assert os.geteuid() == 0, "run as root: the install runs as nobody through runuser"
    r = make("all")  # as root: the install itself builds nothing
    assert r.returncode == 0, r.stdout
    dest = tempfile.mkdtemp(prefix="wp-destdir-")  # pytest's tmp_path is root's alone
    try:
        os.chown(dest, 65534, 65534)
        san = os.environ.get("WARMPOOL_SANITIZE")
        r = subprocess.run(["runuser", "-u", "nobody", "--", "make", "--no-print-directory", "DESTDIR=" + dest] +
                           (["SANITIZE=" + san] if san else []) + ["install", "install-systemd"],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        assert r.returncode == 0, r.stdout
        got = files_under(dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    assert "usr/local/bin/poold" in got and "etc/warmpool/poold.conf" in got, sorted(got)
    outside = [f for f in got if not (f.startswith("usr/local/") or f.startswith("etc/warmpool/"))]
    assert not outside, "installed outside PREFIX and SYSCONFDIR: %s" % outside
