"""e2e: the log plugin through its Kong stub (PDK double) on the real
shmringd, via the demo's /log route (file sink at <prefix>/requests.log):
N requests give exactly N JSON lines, each parses and carries the
request's method, path, status and latency; the drops counter stays 0 and
shows in shmringctl; a daemon reload loses nothing (records that waited in
the ring meanwhile are answered "unknown conf" and the gateway re-registers
and resends them); nothing is lost or duplicated by a graceful stop; a SIGHUP after moving the file
away (log rotation) makes the daemon write to a new file at the path."""
import http.client
import json
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, done, skip, skip_unless_ready  # noqa: E402

N = 600      # concurrent requests before the reload
THREADS = 6
M = 200      # sequential requests after a daemon reload
K = 20       # through the OpenResty helper


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def daemon_stats(st):
    """The workers' counters from shmringctl stats --json, summed."""
    tot = st.daemon_stats()
    check("sink_dropped" in tot, "shmringctl stats --json shows sink_dropped")
    return tot


def send(st, ids, statuses, errors):
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
    try:
        for i in ids:
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


def wait_lines(logfile, want, deadline_s=15):
    """Bounded poll for the daemon's flush (every 100 ms by default)."""
    end = time.time() + deadline_s
    while count_lines(logfile) < want and time.time() < end:
        time.sleep(0.05)


def check_line(st, e, statuses):
    rq, rs = e["request"], e["response"]
    uri = rq["uri"]
    i = int(uri.split("?i=")[1].split("&")[0])
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
    check(e["route"]["name"] == "log" and e["service"]["name"] == "log", "route and service")
    check("ctx" not in e, "gateway ctx not in the line")
    return i


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    skip_unless_ready(build)
    if "log" not in stack.built_plugins(build):
        skip("plugins/log.so is not built in " + build)
    # Only the plugins this test needs: another plugin's init cannot stall
    # a worker under it.
    st = stack.Stack(build, daemon_args=["--plugins=hello,log,correlation-id"])
    logfile = os.path.join(st.prefix, "requests.log")
    rotated = logfile + ".1"
    ngx_file = os.path.join(st.prefix, "requests-ngx.log")
    print("stack prefix (kept on failure): " + st.prefix, flush=True)
    statuses, errors = {}, []
    st.start()
    try:
        _, _, body = st.get("/shmring/status")
        routes = json.loads(body)["routes"]
        check(routes["log"]["plugin"] == "log", "/log runs the log plugin (%s)" % routes["log"])

        threads = [threading.Thread(target=send, args=(st, range(t, N, THREADS), statuses, errors))
                   for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        check(not errors, "every request got an answer (%s)" % errors[:3])
        check(len(statuses) == N and all(s == 200 for s in statuses.values()),
              "all %d requests answered 200" % N)
        # correlation-id, then log: the id it kept in ctx is in the line
        status, hdrs, body = st.get("/log-with-id?cid=1")
        cid = hdrs.get("kong-request-id")
        check(status == 200 and cid, "/log-with-id echoes a Kong-Request-ID (%s)" % hdrs)
        wait_lines(logfile, N + 1)
        check(count_lines(logfile) == N + 1, "%d lines while running (got %d)"
              % (N + 1, count_lines(logfile)))
        stats = daemon_stats(st)
        check(stats.get("sink_dropped") == 0, "no entry dropped (%s)" % stats.get("sink_dropped"))
        check(stats.get("sink_entries", 0) >= N, "sink_entries counts them (%s)"
              % stats.get("sink_entries"))
        unknown_before = stats.get("unknown_conf", 0)
        _, _, body = st.get("/shmring/metrics")
        text = body.decode()
        check('shmring_worker_sink_dropped_total{worker="0"} 0' in text,
              "the Prometheus metrics show the sink drops")
        entries = sum(int(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                      if l.startswith("shmring_worker_sink_entries_total{"))
        check(entries == stats.get("sink_entries"), "metrics and shmringctl agree on sink_entries "
              "(%d, %s)" % (entries, stats.get("sink_entries")))

        # The OpenResty helper (no Kong, no PDK double): /ngx/log.
        for i in range(K):
            status, _, _ = st.get("/ngx/log/x?k=%d" % i, {"Authorization": "Bearer secret"})
            check(status == 200, "/ngx/log answers 200")
        wait_lines(ngx_file, K)
        check(count_lines(ngx_file) == K, "/ngx/log: %d lines (got %d)" % (K, count_lines(ngx_file)))
        ks = set()
        with open(ngx_file, "rb") as f:  # two nginx workers: any order
            for raw in f:
                e = json.loads(raw)
                ks.add(e["request"]["querystring"]["k"])
                check(e["request"]["method"] == "GET"
                      and e["request"]["uri"] == "/ngx/log/x?k=" + e["request"]["querystring"]["k"]
                      and e["response"]["status"] == 200 and e["latencies"]["request"] >= 0,
                      "/ngx/log line has the request (%s)" % e["request"])
                check(e["request"]["headers"].get("authorization") == "REDACTED",
                      "authorization is REDACTED, as Kong's serializer does")
                check(e["request"].get("k_twice") == 2 * int(e["request"]["querystring"]["k"])
                      and "client_ip" not in e,
                      "custom_fields_by_lua: request.k_twice nested, client_ip removed (%s)"
                      % {k: e.get(k) for k in ("request", "client_ip")})
        check(ks == {str(i) for i in range(K)}, "/ngx/log: one line per request")

        # Log rotation: move the file away, then SIGHUP: new workers (empty
        # conf tables) open the path afresh, so new lines go to a new file.
        os.rename(logfile, rotated)
        old = set(st.daemon_pids()[1:])
        os.kill(st.daemon.pid, signal.SIGHUP)
        end = time.time() + 15
        while set(st.daemon_pids()[1:]) & old and time.time() < end:
            time.sleep(0.05)
        now = set(st.daemon_pids()[1:])
        check(now and not now & old, "SIGHUP replaced the daemon's workers")
        send(st, range(N, N + M), statuses, errors)
        check(not errors and all(statuses.get(i) == 200 for i in range(N, N + M)),
              "all %d requests after the reload answered 200 (%s)" % (M, errors[:3]))

        # Records that waited in the SQ during the reload were answered
        # "unknown conf"; the gateway re-registered and resent them.
        wait_lines(logfile, M)
        resent = daemon_stats(st).get("unknown_conf", 0) - unknown_before
        # the new workers know no conf: at least the first LOG went that way
        check(resent >= 1, "the reload made the daemon answer unknown conf (%d)" % resent)
        check(count_lines(rotated) == N + 1 and count_lines(logfile) == M,
              "after the reload every entry is written, to the new file (%d + %d lines for %d + %d "
              "requests; %d answered unknown_conf and resent)"
              % (count_lines(rotated), count_lines(logfile), N + 1, M, resent))
    finally:
        st.stop()  # graceful: nginx QUIT, then shmringd TERM drains the sinks
    check(count_lines(rotated) == N + 1 and count_lines(logfile) == M,
          "still exactly %d + %d lines after the graceful stop (got %d + %d)"
          % (N + 1, M, count_lines(rotated), count_lines(logfile)))

    seen = set()
    for path in (rotated, logfile):
        for raw in open(path, "rb"):
            e = json.loads(raw)  # every line parses
            if e["request"]["uri"] == "/log-with-id?cid=1":
                check(e.get("correlation_id") == cid and e["route"]["name"] == "log-with-id",
                      "the correlation id kept in ctx is in the line (%s, want %s)"
                      % (e.get("correlation_id"), cid))
                cid = None  # once
                continue
            i = check_line(st, e, statuses)
            check(i not in seen, "one line per request (%d twice)" % i)
            seen.add(i)
    check(seen == set(range(N + M)) and cid is None, "every request has its line")
    shutil.rmtree(st.prefix, ignore_errors=True)  # passed: the logs are not needed
    done()


if __name__ == "__main__":
    main()
