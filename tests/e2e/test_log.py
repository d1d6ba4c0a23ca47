"""e2e: the log plugin through its Kong stub (PDK double) on the real
shmringd, via the demo's /log route (file sink at <prefix>/requests.log):
N requests give exactly N JSON lines, each parses and carries the
request's method, path, status and latency; nothing is lost or duplicated
by a graceful stop; the drops counter stays 0 and shows in shmringctl."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, done, skip, skip_unless_ready  # noqa: E402

N = 600
THREADS = 6


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def send(st, t, statuses, errors):
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
    try:
        for i in range(t, N, THREADS):
            method = ("GET", "POST", "PUT")[i % 3]
            body = b"x" * (i % 7) if method != "GET" else None
            c.request(method, "/log/item-%d?i=%d&q=%%22quoted%%22" % (i, i), body=body,
                      headers={"X-Note": 'say "hi" \\ %d' % i})
            r = c.getresponse()
            r.read()
            statuses[i] = r.status
    except Exception as e:  # noqa: BLE001 - reported as a check failure
        errors.append(repr(e))
    finally:
        c.close()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    skip_unless_ready(build)
    if "log" not in stack.built_plugins(build):
        skip("plugins/log.so is not built in " + build)
    # Only the plugins this test needs: another plugin's init cannot stall
    # a worker under it.
    st = stack.Stack(build, daemon_args=["--plugins=hello,log"])
    logfile = os.path.join(st.prefix, "requests.log")
    print("stack prefix (kept on failure): " + st.prefix, flush=True)
    st.start()
    try:
        status, _, body = st.get("/shmring/status")
        routes = json.loads(body)["routes"]
        check(routes["log"]["plugin"] == "log", "/log runs the log plugin (%s)" % routes["log"])

        statuses, errors = {}, []
        threads = [threading.Thread(target=send, args=(st, t, statuses, errors))
                   for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        check(not errors, "every request got an answer (%s)" % errors[:3])
        check(len(statuses) == N and all(s == 200 for s in statuses.values()),
              "all %d requests answered 200" % N)

        # The daemon flushes every flush interval (100 ms): poll, bounded.
        deadline = time.time() + 15
        while count_lines(logfile) < N and time.time() < deadline:
            time.sleep(0.05)
        check(count_lines(logfile) == N, "%d lines while running (got %d)"
              % (N, count_lines(logfile)))

        ctl = os.path.join(st.build, "bin", "shmringctl")
        if os.path.exists(ctl):
            out = subprocess.run([ctl, "--shm-dir", st.shm_dir, "stats", "--json"],
                                 capture_output=True, text=True, check=True).stdout
            check('"sink_dropped"' in out, "shmringctl stats --json shows sink_dropped")
            stats = json.loads(out)
            workers = stats.get("workers") or []
            dropped = sum(w.get("sink_dropped", 0) for w in workers)
            entries = sum(w.get("sink_entries", 0) for w in workers)
            check(dropped == 0, "no entry dropped (sink_dropped %d)" % dropped)
            check(entries >= N, "sink_entries counts them (%d)" % entries)
    finally:
        st.stop()  # graceful: nginx QUIT, then shmringd TERM drains the sinks
    check(count_lines(logfile) == N, "still exactly %d lines after the graceful stop (got %d)"
          % (N, count_lines(logfile)))

    seen = set()
    with open(logfile, "rb") as f:
        for raw in f:
            e = json.loads(raw)  # every line parses (raises otherwise)
            rq, rs = e["request"], e["response"]
            uri = rq["uri"]
            i = int(uri.split("?i=")[1].split("&")[0])
            check(i not in seen, "one line per request (%s twice)" % uri)
            seen.add(i)
            check(uri == "/log/item-%d?i=%d&q=%%22quoted%%22" % (i, i), "request.uri %s" % uri)
            check(rq["method"] == ("GET", "POST", "PUT")[i % 3], "request.method of %s" % uri)
            check(rq["url"].startswith("http://127.0.0.1:%d/log/item-%d" % (st.port, i)),
                  "request.url %s" % rq["url"])
            check(rq["querystring"] == {"i": str(i), "q": '"quoted"'},
                  "request.querystring %s" % rq["querystring"])
            check(rq["headers"].get("x-note") == 'say "hi" \\ %d' % i,
                  "request.headers keeps quotes and backslashes (%r)" % rq["headers"].get("x-note"))
            check(rs["status"] == statuses[i] == 200, "response.status")
            check(isinstance(rs["size"], int) and rs["size"] > 0, "response.size")
            check("content-type" in rs["headers"], "response.headers")
            lat = e["latencies"]
            check(all(isinstance(lat[k], int) for k in ("request", "kong", "proxy"))
                  and lat["request"] >= 0 and lat["proxy"] >= 0 and lat["kong"] >= 0,
                  "latencies request/kong/proxy in ms (%s)" % lat)
            check(e["client_ip"] == "127.0.0.1", "client_ip")
            check(isinstance(e["started_at"], int) and e["started_at"] > 1.6e12, "started_at ms")
            check(e["route"]["id"] == "log", "route")
            check("ctx" not in e, "gateway ctx not in the line")
    check(seen == set(range(N)), "every request has its line")
    shutil.rmtree(st.prefix, ignore_errors=True)  # passed: the logs are not needed
    done()


if __name__ == "__main__":
    main()
