"""e2e: shmringd killed with SIGKILL (master and workers) under traffic.
The fail-open route (/hello-open) keeps answering 200 without the plugin;
the fail-closed route (/hello) answers 503 with Kong's JSON error body,
each answer within the plugin's timeout (250 ms) plus slack; after the
daemon restarts (new epoch), traffic recovers with X-Hello again."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import Load, check, done, skip_unless_ready  # noqa: E402

TIMEOUT_S = 0.250  # schema default of shmring-hello
SLACK_S = 0.300    # scheduling on a shared 2-core VM


def main(build):
    skip_unless_ready(build)
    with stack.Stack(build) as st:
        loads = [Load(st, "/hello"), Load(st, "/hello-open"), Load(st, "/hello"),
                 Load(st, "/hello-open")]
        for l in loads:
            l.start()
        time.sleep(1.0)
        t_kill = time.time()
        st.kill_daemon()
        time.sleep(2.0)
        t_restart = time.time()
        st.start_daemon()
        time.sleep(2.0)
        for l in loads:
            l.stop = True
        for l in loads:
            l.join(10)

        closed = [r for l in loads if l.path == "/hello" for r in l.log]
        opened = [r for l in loads if l.path == "/hello-open" for r in l.log]
        before = [r for r in closed + opened if r[0] + r[2] < t_kill]
        check(before and all(r[1] == 200 and r[3].get("x-hello") == "World" for r in before),
              "before the kill every request has X-Hello")

        down_closed = [r for r in closed if r[0] > t_kill + 0.05 and r[0] + r[2] < t_restart]
        down_open = [r for r in opened if r[0] > t_kill + 0.05 and r[0] + r[2] < t_restart]
        check(len(down_closed) > 10 and len(down_open) > 10,
              "traffic went on while the daemon was down (%d closed, %d open)"
              % (len(down_closed), len(down_open)))
        check(all(r[1] == 200 and "x-hello" not in r[3] for r in down_open),
              "fail-open route: 200 without the plugin while the daemon is down: %s"
              % [(r[1], r[3].get("x-hello")) for r in down_open if r[1] != 200][:3])
        bad = [r for r in down_closed if r[1] not in (503, 504)]
        check(not bad, "fail-closed route: 503/504 while the daemon is down: %s"
              % [(r[1], r[4][:80]) for r in bad[:3]])
        slow = [r for r in down_closed if r[2] > TIMEOUT_S + SLACK_S]
        check(not slow, "fail-closed answers within the timeout: slowest %.3f s"
              % max(r[2] for r in down_closed))
        settled = [r for r in down_closed if r[0] > t_kill + 0.6]
        check(settled and all(r[1] == 503 for r in settled),
              "once the heartbeat is stale: 503 (unavailable) without waiting")
        fast = sorted(r[2] for r in settled)
        check(fast[len(fast) // 2] < 0.05, "and the 503 comes at once (median %.1f ms)"
              % (1000 * fast[len(fast) // 2]))
        body = json.loads(settled[-1][4])
        check(settled[-1][3].get("content-type", "").startswith("application/json")
              and "message" in body, "503 body is Kong-style JSON {\"message\": ...}: %s" % body)

        after = [r for r in closed + opened if r[0] > t_restart + 1.0]
        check(len(after) > 10, "traffic after the restart")
        check(all(r[1] == 200 and r[3].get("x-hello") == "World" for r in after),
              "traffic recovered after the restart (X-Hello again): %s"
              % [(r[1], r[3].get("x-hello")) for r in after if r[1] != 200][:3])
        print("daemon down %.1f s: %d fail-closed answers (503/504), %d fail-open 200s; "
              "recovered" % (t_restart - t_kill, len(down_closed), len(down_open)))
    done()


if __name__ == "__main__":
    main(sys.argv[1])
