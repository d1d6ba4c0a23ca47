"""e2e: an idle stack costs (almost) nothing. With nginx (master + 2
workers) and shmringd (master + 2 workers) up, after some traffic, 10 s
without traffic use under 2% of one core in total (utime + stime from
/proc/<pid>/stat): no spinning, no busy polling, no short timers."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, done, skip_unless_ready  # noqa: E402

IDLE_S = 10.0
LIMIT = 0.02  # of one core
HZ = os.sysconf("SC_CLK_TCK")


def main(build):
    skip_unless_ready(build)
    with stack.Stack(build) as st:
        for _ in range(50):
            st.get("/hello")
            st.get("/ngx/hello")
        time.sleep(1.5)  # let the daemon's workers finish their spin and sleep
        pids = [st.nginx.pid] + st.nginx_worker_pids() + st.daemon_pids()
        check(len(pids) >= 6, "nginx master + 2 workers, shmringd master + 2 workers: %s" % pids)
        t0 = sum(stack.proc_cpu_ticks(p) for p in pids)
        time.sleep(IDLE_S)
        t1 = sum(stack.proc_cpu_ticks(p) for p in pids)
        share = (t1 - t0) / HZ / IDLE_S
        print("idle %.0f s: %d ticks over %d processes = %.2f%% of one core"
              % (IDLE_S, t1 - t0, len(pids), 100 * share))
        check(share < LIMIT, "idle CPU %.2f%% < %.0f%% of one core" % (100 * share, 100 * LIMIT))
        status, hdrs, _ = st.get("/hello")
        check(status == 200 and hdrs.get("x-hello") == "World", "and it still answers after idling")
    done()


if __name__ == "__main__":
    main(sys.argv[1])
