"""bench-log: wrk against /log (the log C plugin through its Kong stub: the
nginx worker only sends a LOG record, shmringd formats and writes with
io_uring) and /lua/file-log (the same route with Kong's file-log done in Lua:
cjson + a blocking write(2) per request from the log phase,
bench/baselines/kong_file_log.lua), alternately, several rounds with the same
connections and duration in ONE run of one stack; writes
bench/results/log.json.

    python3 bench/log/bench_log.py <build-dir> [--rounds 5] [--duration 5]
        [--connections 50] [--threads 1] [--out bench/results/log.json]

Figures are medians over the rounds. requests_sent counts every request wrk
wrote to /log over the whole run (warm-up included): each wrk run sends for
its duration and then stays quiet for a second with nothing in flight
(bench/log/report.lua), so every request sent was answered and logged;
lines_written counts the lines of the /log file after nginx stopped
gracefully (every log phase ran) and shmringd stopped gracefully (every
batch written). The Lua file's lines are counted the same way, as a check
of the counting. Not a test: it exits 0 unless the stack cannot start or
wrk fails.
"""
import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import stack  # noqa: E402

SHMRING, LUA = "/log", "/lua/file-log"


def wrk(port, path, duration, connections, threads):
    res = stack.wrk_json(
        ["-t%d" % threads, "-c%d" % connections, "-d%ds" % (duration + 1), "--latency",
         "--timeout", "30s", "-s", os.path.join(HERE, "report.lua"),
         "http://127.0.0.1:%d%s" % (port, path), "--", str(duration)])
    res["rps"] = round(res["requests"] / duration, 1)
    return res


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nginx-workers", type=int, default=2)
    ap.add_argument("--daemon-workers", type=int, default=1)
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="extra shmringd option, e.g. --daemon-arg=--spin_us=0")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "log.json"))
    a = ap.parse_args()

    # Only the plugins the routes need (a plugin in development elsewhere in
    # the build cannot disturb the figures).
    st = stack.Stack(a.build, nginx_workers=a.nginx_workers, daemon_workers=a.daemon_workers,
                     daemon_args=["--plugins=hello,log"] + a.daemon_arg)
    files = {SHMRING: os.path.join(st.prefix, "requests.log"),
             LUA: os.path.join(st.prefix, "lua-file-log.log")}
    runs = {SHMRING: [], LUA: []}
    sent = {SHMRING: 0, LUA: 0}
    completed = {SHMRING: 0, LUA: 0}
    st.start()
    try:
        for p in (SHMRING, LUA):  # warm-up: conf registration, JIT, keepalive pools
            res = wrk(st.port, p, 1, a.connections, a.threads)
            sent[p] += res["sent"]
            completed[p] += res["requests"]
        for r in range(a.rounds):
            for p in (SHMRING, LUA) if r % 2 == 0 else (LUA, SHMRING):
                pids = {"nginx": st.nginx_worker_pids(), "shmringd": st.daemon_pids()}
                t0 = {k: stack.cpu_ticks(v) for k, v in pids.items()}
                res = wrk(st.port, p, a.duration, a.connections, a.threads)
                t1 = {k: stack.cpu_ticks(v) for k, v in pids.items()}
                sent[p] += res["sent"]
                completed[p] += res["requests"]
                for k in pids:
                    # CPU microseconds per request (ticks are 1/100 s)
                    res["cpu_us_per_req_" + k] = round(
                        (t1[k] - t0[k]) * 1e4 / max(res["requests"], 1), 2)
                runs[p].append(res)
                print("round %d %-14s rps %7.0f  p50 %6d us  p99 %6d us  cpu/req nginx %5.1f us "
                      "shmringd %5.1f us  non2xx %d errors %d"
                      % (r, p, res["rps"], res["p50_us"], res["p99_us"],
                         res["cpu_us_per_req_nginx"], res["cpu_us_per_req_shmringd"],
                         res["non2xx"], res["socket_errors"]), flush=True)
    finally:
        # Graceful: nginx QUIT finishes every request (log phases included),
        # then shmringd TERM drains the rings and writes every batch.
        st.stop()
    lines = {p: count_lines(f) for p, f in files.items()}

    def med(p, key):
        return statistics.median(r[key] for r in runs[p])

    result = {
        "rps_shmring_log": med(SHMRING, "rps"),
        "rps_lua_file_log": med(LUA, "rps"),
        "p99_us_shmring_log": med(SHMRING, "p99_us"),
        "p99_us_lua_file_log": med(LUA, "p99_us"),
        "p50_us_shmring_log": med(SHMRING, "p50_us"),
        "p50_us_lua_file_log": med(LUA, "p50_us"),
        "nginx_cpu_us_per_req_shmring_log": med(SHMRING, "cpu_us_per_req_nginx"),
        "nginx_cpu_us_per_req_lua_file_log": med(LUA, "cpu_us_per_req_nginx"),
        "shmringd_cpu_us_per_req_shmring_log": med(SHMRING, "cpu_us_per_req_shmringd"),
        "lines_written": lines[SHMRING],
        "requests_sent": sent[SHMRING],
        "requests_completed_by_wrk": completed[SHMRING],
        "lua_file_log_lines_written": lines[LUA],
        "lua_file_log_requests_sent": sent[LUA],
        "rounds": a.rounds, "duration_s": a.duration, "connections": a.connections,
        "wrk_threads": a.threads, "nginx_workers": a.nginx_workers,
        "daemon_workers": a.daemon_workers, "cpus": os.cpu_count(),
        "loadavg_1m_at_end": os.getloadavg()[0],
        "runs": runs,
    }
    result["rps_ratio"] = round(result["rps_shmring_log"] / max(result["rps_lua_file_log"], 1), 3)
    # Each round runs both routes back to back: the median of the per-round
    # ratios is steadier than the ratio of the medians on a shared machine.
    result["rps_ratio_paired_median"] = round(statistics.median(
        s["rps"] / max(l["rps"], 1) for s, l in zip(runs[SHMRING], runs[LUA])), 3)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("rps shmring-log %.0f  lua file-log %.0f  ratio %.2f, per-round ratio median %.2f "
          "(target >= 1.5)" % (result["rps_shmring_log"], result["rps_lua_file_log"],
                               result["rps_ratio"], result["rps_ratio_paired_median"]))
    print("p99 shmring-log %d us  lua file-log %d us"
          % (result["p99_us_shmring_log"], result["p99_us_lua_file_log"]))
    print("nginx cpu/req shmring-log %.1f us  lua file-log %.1f us  (shmringd %.1f us)"
          % (result["nginx_cpu_us_per_req_shmring_log"],
             result["nginx_cpu_us_per_req_lua_file_log"],
             result["shmringd_cpu_us_per_req_shmring_log"]))
    print("lines_written %d  requests_sent %d  %s   (lua file-log: %d lines, %d sent)"
          % (lines[SHMRING], sent[SHMRING], "EXACT" if lines[SHMRING] == sent[SHMRING]
             else "MISMATCH", lines[LUA], sent[LUA]))
    print("wrote " + a.out)
    import shutil
    shutil.rmtree(st.prefix, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
