"""Helpers of the install tests: running commands, a release build of the source
tree configured for a prefix, running a program as an unprivileged user."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from common import check, done, skip  # noqa: E402,F401

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(cmd, ok=(0,), **kw):
    """Run cmd, return (rc, stdout+stderr); fail the test on an rc not in ok."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if ok is not None and p.returncode not in ok:
        print(p.stdout)
        check(False, "%s exited %d" % (" ".join(cmd), p.returncode))
    return p.returncode, p.stdout


def need(*tools):
    for t in tools:
        if not shutil.which(t):
            skip("%s is not installed (scripts/deps.sh test)" % t)


def release_build(build_dir, *cmake_args):
    """Configure and build the source tree without tests and benchmarks (what an
    operator builds: no sanitizer), in a fresh build_dir."""
    shutil.rmtree(build_dir, ignore_errors=True)
    env = dict(os.environ)
    env.pop("CC", None)
    run(["cmake", "-S", SRC, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
         "-DSHMRING_TESTS=OFF", "-DSHMRING_BENCH=OFF", "-DSHMRING_SANITIZE=OFF",
         "-DSHMRING_FUZZ=OFF", "-DSHMRING_WERROR=OFF"] + list(cmake_args), env=env)
    run(["cmake", "--build", build_dir, "-j2"], env=env)


def scratch_dir(name):
    """A temporary directory every user can enter (for the unprivileged runs)."""
    d = tempfile.mkdtemp(prefix="shmring-%s-" % name)
    os.chmod(d, 0o755)
    return d


def as_nobody(cmd):
    """cmd run as user nobody with no capability when we are root; as is otherwise."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"] + cmd


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    check(False, what)
