"""`cmake --install --prefix DIR` of an operator's build (default prefix
/usr/local) writes only below DIR (install_manifest.txt), installs every doc, and a
small C program built with `pkg-config --cflags --libs shmring` from DIR alone
attaches to a shmringd started from DIR.
Usage: test_prefix.py BUILD_DIR"""
import os
import signal
import subprocess
import sys

from install_common import check, done, release_build, run, scratch_dir, wait_for

PROGRAM = r"""#include <shmring/shmring.h>
#include <stdio.h>
int main(int argc, char **argv) {
	struct shmring_instance *inst;
	int rc = argc > 1 ? shmring_instance_attach(argv[1], &inst) : -1;
	if (rc < 0) return 1;
	printf("channels %u workers %u alive %d\n", shmring_instance_nchannels(inst),
	       shmring_instance_nworkers(inst), shmring_instance_heartbeat_age_ns(inst) >= 0);
	shmring_instance_close(inst, 0);
	return 0;
}
"""


def main():
    work = os.path.join(sys.argv[1], "tests", "install", "prefix")
    build = os.path.join(work, "build")
    release_build(build)
    tmp = scratch_dir("prefix")
    prefix = os.path.join(tmp, "prefix")
    run(["cmake", "--install", build, "--prefix", prefix])

    manifest = open(os.path.join(build, "install_manifest.txt")).read().split()
    check(len(manifest) > 30, "install_manifest.txt lists %d files" % len(manifest))
    outside = [f for f in manifest if not f.startswith(prefix + "/")]
    check(not outside, "installed outside the prefix: %s" % outside)
    for f in ["bin/shmringd", "bin/shmringctl", "lib/libshmring.so.1", "lib/pkgconfig/shmring.pc",
              "include/shmring/shmring.h", "include/shmring/shmring_plugin.h",
              "lib/shmring/plugins/hello.so", "etc/shmring/shmringd.conf",
              "lib/systemd/system/shmringd.service", "share/lua/5.1/shmring/client.lua"] + \
            ["share/doc/shmring/" + d for d in ("README.md", "daemon.md", "gateway.md",
                                                 "plugins.md", "protocol.md")]:
        check(os.path.join(prefix, f) in manifest, "%s installed" % f)

    # The .pc is relative to its prefix, so pkg-config can move it to DIR.
    pc = open(os.path.join(prefix, "lib/pkgconfig/shmring.pc")).read()
    check(pc.count("/usr/local") == 1 and pc.startswith("prefix=/usr/local\n"),
          "shmring.pc names /usr/local only as prefix:\n" + pc)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib/pkgconfig"))
    _, flags = run(["pkg-config", "--define-prefix", "--cflags", "--libs", "shmring"], env=env)
    check("-I%s/include" % prefix in flags and "-L%s/lib" % prefix in flags,
          "pkg-config flags point into the prefix: " + flags)
    _, libdir = run(["pkg-config", "--define-prefix", "--variable=libdir", "shmring"], env=env)
    src = os.path.join(tmp, "attach.c")
    open(src, "w").write(PROGRAM)
    prog = os.path.join(tmp, "attach")
    run(["cc", "-o", prog, src] + flags.split())

    # The daemon from the prefix (its compiled-in plugin_dir is the configured
    # prefix's, so the moved install names its own), the config it installed.
    shm = os.path.join(tmp, "shm")
    daemon = subprocess.Popen(
        [os.path.join(prefix, "bin/shmringd"), "--foreground",
         "--config", os.path.join(prefix, "etc/shmring/shmringd.conf"),
         "--plugin-dir", os.path.join(prefix, "lib/shmring/plugins"),
         "--shm-dir", shm, "--workers", "1", "--channels", "3"]
        # shmringd refuses root unless told which user to be: say root, deliberately.
        + (["--user", "root"] if os.geteuid() == 0 else []),
        stderr=subprocess.PIPE, text=True)
    out = {}

    def attached():
        p = subprocess.run([prog, shm], capture_output=True, text=True,
                           env=dict(os.environ, LD_LIBRARY_PATH=libdir.strip()))
        out["text"] = p.stdout
        return p.returncode == 0 and "alive 1" in p.stdout

    try:
        wait_for(attached, 15, "the program never attached to the daemon")
        check(out["text"].strip() == "channels 3 workers 1 alive 1", "program saw " + out["text"])
    finally:
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(15)
    check(rc == 0, "shmringd from the prefix stopped with %d: %s" % (rc, daemon.stderr.read()))
    run(["rm", "-rf", tmp])
    done()


main()
