"""The Debian package (`cpack -G DEB` of a /usr build, as `make deb` does),
unpacked with `dpkg-deb -x` into a temporary root: the unit's binaries and config
are in the package, `systemd-analyze verify` passes with the unit rooted there and
`systemd-analyze security` rates it 4.0 or better; conffiles lists the config;
Depends names only libraries; lintian reports no error; the packaged daemon checks
its packaged config and serves as an unprivileged user without capabilities, making
only system calls the unit's SystemCallFilter allows.
Usage: test_deb.py BUILD_DIR"""
import glob
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys

from install_common import as_nobody, check, done, need, release_build, run, scratch_dir, wait_for

CONFIG = "/etc/shmring/shmringd.conf"


def unit_value(unit, key):
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(key + "=")]


def syscall_set(group):
    """The system calls of a systemd-analyze syscall-filter group, nested ones expanded."""
    _, out = run(["systemd-analyze", "syscall-filter", group])
    names = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if word.startswith("@"):
            names |= syscall_set(word)
        elif word and not word.startswith("#"):
            names.add(word)
    return names


def check_syscalls(trace, filters):
    """Every call in the strace output is allowed by the unit's filter lines:
    the first lists what is allowed, the ones starting with ~ what is denied."""
    used, started = set(), False
    for line in open(trace):
        # setpriv's calls come before it executes shmringd.
        started = started or re.match(r'^\d+\s+execve\(".*/shmringd", .* = 0$', line)
        m = re.match(r"^\d+\s+([a-z0-9_]+)\(", line)
        if started and m:
            used.add(m.group(1))
    allowed, denied = set(), set()
    for f in filters:
        target = denied if f.startswith("~") else allowed
        for word in f.lstrip("~").split():
            target |= syscall_set(word) if word.startswith("@") else {word}
    check(len(used) > 20, "strace saw the daemon's system calls (%d)" % len(used))
    bad = sorted(used - allowed | (used & denied))
    check(not bad, "system calls the unit's SystemCallFilter refuses: %s" % bad)


def main():
    need("cpack", "dpkg-deb", "dpkg-shlibdeps", "lintian", "systemd-analyze", "strace")
    work = os.path.join(sys.argv[1], "tests", "install", "deb")
    build = os.path.join(work, "build")
    release_build(build, "-DCMAKE_INSTALL_PREFIX=/usr")
    run(["cpack", "-G", "DEB"], cwd=build)
    debs = glob.glob(os.path.join(build, "shmring_*.deb"))
    check(len(debs) == 1, "one .deb built: %s" % debs)
    deb = debs[0]

    # Control: only libraries, the config a conffile, the system user in postinst.
    _, depends = run(["dpkg-deb", "-f", deb, "Depends"])
    names = [d.strip().split(" ")[0] for d in depends.replace("|", ",").split(",") if d.strip()]
    check(names and all(n.startswith("lib") for n in names), "Depends only libraries: " + depends)
    ctrl = os.path.join(work, "control")
    shutil.rmtree(ctrl, ignore_errors=True)
    run(["dpkg-deb", "-e", deb, ctrl])
    check(open(os.path.join(ctrl, "conffiles")).read().split() == [CONFIG],
          "conffiles lists " + CONFIG)
    for script in ("postinst", "prerm", "postrm"):
        run(["sh", "-n", os.path.join(ctrl, script)])
    postinst = open(os.path.join(ctrl, "postinst")).read()
    check("useradd --system" in postinst and "deb-systemd-helper" in postinst,
          "postinst creates the shmring user and enables the unit")

    root = scratch_dir("deb")
    run(["dpkg-deb", "-x", deb, root])
    unit_path = os.path.join(root, "lib/systemd/system/shmringd.service")
    unit = open(unit_path).read()
    for cmd in unit_value(unit, "ExecStart") + unit_value(unit, "ExecStartPre"):
        argv = cmd.split()
        check(os.access(root + argv[0], os.X_OK), "%s is in the package" % argv[0])
        conf = argv[argv.index("--config") + 1]
        check(conf == CONFIG and os.path.isfile(root + conf), "%s is in the package" % conf)
    check(unit_value(unit, "User") == ["shmring"], "the unit runs as user shmring")
    triplet_dirs = glob.glob(os.path.join(root, "usr/lib/*/shmring/plugins"))
    check(len(triplet_dirs) == 1 and os.path.exists(os.path.join(triplet_dirs[0], "hello.so")),
          "plugins in /usr/lib/<triplet>/shmring/plugins")
    plugin_dir = triplet_dirs[0]

    # systemd-analyze with the unit rooted in the package: the root also gets the
    # host's targets and slices and kill(1), which a real system has.
    unit_dir = os.path.join(root, "lib/systemd/system")
    for f in glob.glob("/lib/systemd/system/*.target") + glob.glob("/lib/systemd/system/*.slice"):
        dst = os.path.join(unit_dir, os.path.basename(f))
        if not os.path.exists(dst):
            shutil.copy(f, dst, follow_symlinks=True)
    os.makedirs(os.path.join(root, "usr/bin"), exist_ok=True)
    shutil.copy("/usr/bin/kill", os.path.join(root, "usr/bin/kill"))
    if not os.path.exists(os.path.join(root, "bin")):
        os.symlink("usr/bin", os.path.join(root, "bin"))
    rc, out = run(["systemd-analyze", "verify", "--root=" + root, "shmringd.service"], ok=None)
    check(rc == 0 and "shmringd" not in out, "systemd-analyze verify: rc %d\n%s" % (rc, out))
    rc, out = run(["systemd-analyze", "security", "--offline=true", "--root=" + root,
                   "shmringd.service"], ok=None)
    m = re.search(r"Overall exposure level for shmringd.service: ([0-9.]+)", out)
    check(m, "systemd-analyze security rated the unit:\n" + out[-2000:])
    exposure = float(m.group(1))
    print("systemd-analyze security: %.1f" % exposure)
    check(exposure <= 4.0, "exposure %.1f <= 4.0" % exposure)

    rc, out = run(["lintian", "--no-tag-display-limit", deb], ok=None)
    errors = [line for line in out.splitlines() if line.startswith("E: ")]
    check(not errors, "lintian errors:\n" + "\n".join(errors))

    # The packaged daemon: checks the packaged config, then serves as nobody with no
    # capability (what the unit gives it). plugin_dir is named since the package
    # is not installed at /usr here.
    shmringd = [root + "/usr/bin/shmringd", "--config", root + CONFIG, "--plugin-dir", plugin_dir]
    rc, out = run(as_nobody(shmringd + ["--check"]), ok=None)
    check(rc == 0 and "plugin hello" in out, "packaged shmringd --check: rc %d\n%s" % (rc, out))
    # Traced: every system call it makes must pass the unit's SystemCallFilter.
    shm = os.path.join(root, "shm")
    os.mkdir(shm)
    os.chmod(shm, 0o1777)  # like /dev/shm: sticky, or shmringd refuses the parent
    inst = os.path.join(shm, "default")
    trace = os.path.join(work, "syscalls")
    daemon = subprocess.Popen(["strace", "-f", "-qq", "-o", trace] + as_nobody(
        shmringd + ["--foreground", "--shm-dir", inst, "--workers", "1", "--channels", "2"]),
        stderr=subprocess.PIPE, text=True)
    stats = {}

    def serving():
        p = subprocess.run(as_nobody([root + "/usr/bin/shmringctl", "--shm-dir", inst, "stats",
                                      "--json"]), capture_output=True, text=True)
        if p.returncode == 0:
            stats.update(json.loads(p.stdout))
        return stats.get("workers") and stats["workers"][0]["pid"] != 0

    try:
        wait_for(serving, 15, "the packaged daemon never served")
        check(stats["nchannels"] == 2, "packaged shmringctl reads the instance")
        st = os.stat(os.path.join(inst, "ch-0"))
        check(st.st_mode & 0o777 == 0o660, "segments are created mode 0660")
        check(os.geteuid() != 0 or st.st_uid == pwd.getpwnam("nobody").pw_uid,
              "the daemon ran unprivileged (segments owned by nobody)")
    finally:
        # The master's pid is in its lock file (the Popen is strace's).
        with open(os.path.join(inst, "shmringd.lock")) as f:
            os.kill(int(f.read()), signal.SIGTERM)
        rc = daemon.wait(15)
    check(rc == 0, "packaged shmringd stopped with %d: %s" % (rc, daemon.stderr.read()))
    check_syscalls(trace, unit_value(unit, "SystemCallFilter"))
    shutil.rmtree(root)
    done()


main()
