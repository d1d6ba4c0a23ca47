"""The USDT probes of libshmring's client calls (submit, reply_seen,
applied) are in the built library and `perf list` shows them, so perf can
time the gateway side without LuaJIT symbols (docs/observability.md)."""
import os
import shutil
import subprocess
import sys
import tempfile

PROBES = ("submit", "reply_seen", "applied")


def fail(what):
    print("FAIL: " + what, flush=True)
    sys.exit(1)


def main(lib):
    lib = os.path.realpath(lib)
    perf = shutil.which("perf")
    if not perf:
        fail("perf is not installed (linux-perf, scripts/deps.sh test)")
    with tempfile.TemporaryDirectory(prefix="shmring-usdt-") as cache:
        # A private build-id cache: perf reads SDT notes from it, not from $HOME.
        r = subprocess.run([perf, "--buildid-dir", cache, "buildid-cache", "--add", lib],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            fail("perf buildid-cache --add %s: %s" % (lib, r.stderr.decode()))
        r = subprocess.run([perf, "--buildid-dir", cache, "list", "sdt_shmring:*"],
                           capture_output=True, timeout=60)
        listed = r.stdout.decode()
    for p in PROBES:
        if "sdt_shmring:%s " % p not in listed:
            fail("perf list shows sdt_shmring:%s; it printed:\n%s" % (p, listed))
    print("%d passed, 0 failed" % len(PROBES), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
