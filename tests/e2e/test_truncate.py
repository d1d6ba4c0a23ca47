"""e2e: a member of the segments' group truncates every kind of segment it can
write (the channels in use, then ctl) under traffic, the way `truncate -s0` would.
nginx and shmringd keep running (the same worker pids, no crash in either log),
each truncated channel is reported corrupt, ctl is restored, and traffic
recovers with X-Hello on the channels left. The files the group cannot write
(the stats file) it cannot truncate either. As root the truncation runs as user
nobody with the segments' group (root), never as root."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import Load, check, done, skip_unless_ready  # noqa: E402


def as_group_member(cmd):
    """cmd as a member of the segments' group that is not their owner."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=nobody", "--regid=%d" % os.getegid(), "--clear-groups"] + cmd


def truncate(path):
    return subprocess.run(as_group_member(["truncate", "-s0", path]),
                          capture_output=True, text=True)


def owned_channels(st, ctl):
    out = subprocess.run([ctl, "--shm-dir", st.shm_dir, "stats", "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return []
    return [c["index"] for c in json.loads(out.stdout)["channels"] if c["owner_pid"]]


def main(build):
    skip_unless_ready(build)
    ctl = os.path.join(os.path.dirname(stack.daemon_bin(build)), "shmringctl")
    with stack.Stack(build) as st:
        loads = [Load(st, "/hello") for _ in range(3)]
        for l in loads:
            l.start()
        time.sleep(1.0)
        nginx_pids, daemon_pids = sorted(st.nginx_worker_pids()), sorted(st.daemon_pids())
        used = owned_channels(st, ctl)
        check(len(used) >= 1, "the nginx workers hold channels: %s" % used)

        for k in used:
            r = truncate(os.path.join(st.shm_dir, "ch-%d" % k))
            check(r.returncode == 0, "the group may truncate ch-%d: %s" % (k, r.stderr))
        time.sleep(1.5)
        t_ctl = time.time()
        r = truncate(os.path.join(st.shm_dir, "ctl"))
        check(r.returncode == 0, "the group may truncate ctl: %s" % r.stderr)
        time.sleep(1.5)
        r = truncate(os.path.join(st.shm_dir, "stats"))
        check(os.geteuid() != 0 or r.returncode != 0,
              "the group may not truncate the stats file (read-only to it)")
        t_settled = time.time() + 1.0
        time.sleep(2.5)
        for l in loads:
            l.stop = True
        for l in loads:
            l.join(10)

        check(sorted(st.nginx_worker_pids()) == nginx_pids,
              "the nginx workers kept running: %s, were %s"
              % (st.nginx_worker_pids(), nginx_pids))
        check(sorted(st.daemon_pids()) == daemon_pids,
              "shmringd's master and workers kept running: %s, were %s"
              % (st.daemon_pids(), daemon_pids))
        errlog = st.tail_log(2000)
        check("signal" not in errlog, "no nginx worker died of a signal:\n" + errlog[-2000:])
        with open(os.path.join(st.prefix, "shmringd.log")) as f:
            dlog = f.read()
        for k in used:
            check("channel %d: segment truncated or overwritten: corrupt" % k in dlog,
                  "channel %d reported corrupt:\n%s" % (k, dlog))
        check("ctl was truncated or overwritten: restored" in dlog, "ctl restored:\n" + dlog)

        reqs = [r for l in loads for r in l.log]
        after = [r for r in reqs if r[0] > t_settled]
        check(len(after) > 10, "traffic after the truncations (%d requests)" % len(after))
        bad = [(r[1], r[3].get("x-hello")) for r in after
               if r[1] != 200 or r[3].get("x-hello") != "World"]
        check(not bad, "traffic recovered on the channels left: %s" % bad[:5])
        during = [r for r in reqs if t_ctl - 1.5 <= r[0] < t_settled]
        print("%d channel(s) and ctl truncated; %d requests meanwhile (%d not 200), "
              "%d after, all 200 with X-Hello"
              % (len(used), len(during), sum(1 for r in during if r[1] != 200), len(after)))
    done()


if __name__ == "__main__":
    main(sys.argv[1])
