"""e2e: a full submission ring neither loses log entries nor refuses a
request. The daemon's ring worker is stopped (SIGSTOP; the master keeps
beating, so the gateway sees a live but slow daemon) with 8 KiB rings, and
more /log requests are sent than their LOG records fit in the SQ:

- every request is answered 200 at once (the log phase never waits);
- once the worker runs again, every entry is in the file exactly once and
  in the order the requests were made (one nginx worker: one producer);
- a /hello request made while the LOG records wait is answered 200 once
  the worker runs, not refused 503 "ring full": LOG records leave room in
  the SQ for the requests that wait for a reply;
- the client counted the entries that waited (log_backlogged) and dropped
  none (log_dropped)."""
import http.client
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, done, json_lines, skip, skip_unless_ready  # noqa: E402

N = 60  # LOG records of ~1 KiB: several times what an 8 KiB SQ holds


def ring_workers(st):
    return st.daemon_pids()[1:]


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    skip_unless_ready(build)
    if "log" not in stack.built_plugins(build):
        skip("plugins/log.so is not built in " + build)
    st = stack.Stack(build, nginx_workers=1, daemon_workers=1,
                     daemon_args=["--plugins=hello,log", "--ring_size=8192"])
    logfile = os.path.join(st.prefix, "requests.log")
    with st:
        status, _, _ = st.get("/log/warm")
        check(status == 200, "/log answers")
        status, hdrs, _ = st.get("/hello")
        check(status == 200 and hdrs.get("x-hello"), "/hello answers")
        end = time.time() + 10
        while len(json_lines(logfile)) < 1 and time.time() < end:
            time.sleep(0.05)
        check(len(json_lines(logfile)) == 1, "the warm-up entry is written")

        workers = ring_workers(st)
        check(len(workers) == 1, "one ring worker (%s)" % workers)
        os.kill(workers[0], signal.SIGSTOP)
        try:
            c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=5)
            t0 = time.time()
            for i in range(N):
                c.request("GET", "/log/item-%d?i=%d" % (i, i),
                          headers={"X-Pad": "p" * 400})
                r = c.getresponse()
                r.read()
                check(r.status == 200, "log request %d answered 200 (%d)" % (i, r.status))
            secs = time.time() - t0
            c.close()
            check(secs < 2, "the log phase did not wait for the stopped worker (%.2f s)" % secs)

            # A request that waits for a reply, while LOG records wait.
            got = {}

            def hello():
                got["r"] = st.get("/hello")
            th = threading.Thread(target=hello)
            th.start()
            time.sleep(0.05)
        finally:
            os.kill(workers[0], signal.SIGCONT)
        th.join(10)
        status, hdrs, body = got.get("r", (None, {}, b""))
        check(status == 200 and hdrs.get("x-hello"),
              "/hello made while LOG records waited is answered 200 (%s %s)" % (status, body[:80]))

        end = time.time() + 15
        while len(json_lines(logfile)) < N + 1 and time.time() < end:
            time.sleep(0.05)
        got_lines = json_lines(logfile)
        items = [int(e["request"]["uri"].split("?i=")[1]) for e in got_lines[1:]]
        check(len(got_lines) == N + 1, "every entry written (%d of %d)" % (len(got_lines), N + 1))
        check(items == list(range(N)), "each once, in request order (%s)" % items)
        _, _, body = st.get("/shmring/status")
        stats = json.loads(body)["stats"]
        check(stats.get("log_backlogged", 0) > 0,
              "the client counted entries that waited (%s)" % stats.get("log_backlogged"))
        check(stats.get("log_dropped") == 0, "none dropped (%s)" % stats.get("log_dropped"))
    done()


if __name__ == "__main__":
    main()
