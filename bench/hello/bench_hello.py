"""bench-hello: wrk against /echo (no plugin) and /hello (hello C plugin via
its Kong stub) alternately, several rounds with the same connections and
duration; writes bench/results/hello.json.

    python3 bench/hello/bench_hello.py <build-dir> [--rounds 3] [--duration 5]
        [--connections 50] [--threads 1] [--wait doorbell] [--out bench/results/hello.json]
        [--daemon-arg=--spin_us=0 (the default; repeatable)] [--paths /echo,/hello]

Figures are medians over the rounds. Not a test: it always exits 0 unless
the stack cannot start or wrk fails.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import stack  # noqa: E402


def wrk(port, path, duration, connections, threads):
    # bench-e2e's script: without BENCH_HEADERS and BENCH_TOKENS, wrk's plain GET
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_HEADERS", "BENCH_TOKENS")}
    return stack.wrk_json(
        ["-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency",
         "-s", os.path.join(REPO, "bench", "e2e", "wrk.lua"),
         "http://127.0.0.1:%d%s" % (port, path)], env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wait", default="doorbell")
    ap.add_argument("--nginx-workers", type=int, default=2)
    ap.add_argument("--daemon-workers", type=int, default=2)
    ap.add_argument("--paths", default="/echo,/hello")
    ap.add_argument("--daemon-arg", action="append", default=None,
                    help="extra shmringd option (repeatable); default --spin_us=0, see below")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "hello.json"))
    a = ap.parse_args()
    if a.daemon_arg is None:
        # nginx, shmringd and wrk share this VM's 2 cores: a daemon worker
        # that busy-polls after each record (spin_us, default 50) takes CPU
        # the nginx workers need. Measured (docs/gateway.md): shmringd CPU per
        # request 6-7 us with spin_us=50, 2-3 us with 0, nginx unchanged.
        # Pass --daemon-arg=--spin_us=50 to measure the daemon's default.
        a.daemon_arg = ["--spin_us=0"]

    paths = a.paths.split(",")
    runs = {p: [] for p in paths}
    st = stack.Stack(a.build, nginx_workers=a.nginx_workers, daemon_workers=a.daemon_workers,
                     wait=a.wait, daemon_args=a.daemon_arg)
    with st:
        for p in paths:  # warm-up: conf registration, JIT, keepalive pools
            wrk(st.port, p, 1, a.connections, a.threads)
        for r in range(a.rounds):
            for p in paths:
                pids = {"nginx": st.nginx_worker_pids(), "shmringd": st.daemon_pids()}
                t0 = {k: stack.cpu_ticks(v) for k, v in pids.items()}
                res = wrk(st.port, p, a.duration, a.connections, a.threads)
                t1 = {k: stack.cpu_ticks(v) for k, v in pids.items()}
                for k in pids:
                    # CPU microseconds per request (ticks are 1/100 s)
                    res["cpu_us_per_req_" + k] = round((t1[k] - t0[k]) * 1e4 / max(res["requests"], 1), 2)
                runs[p].append(res)
                print("round %d %-10s rps %7.0f  p50 %6d us  p99 %6d us  cpu/req nginx %5.1f us "
                      "shmringd %5.1f us  non2xx %d errors %d"
                      % (r + 1, p, res["rps"], res["p50_us"], res["p99_us"],
                         res["cpu_us_per_req_nginx"], res["cpu_us_per_req_shmringd"],
                         res["non2xx"], res["socket_errors"]), flush=True)
        _, _, status = st.get_json("/shmring/status")

    def med(p, k):
        return statistics.median(x[k] for x in runs[p])

    result = {
        "bench": "hello",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nginx_workers": a.nginx_workers, "shmringd_workers": a.daemon_workers,
        "wait": a.wait, "daemon_args": a.daemon_arg, "connections": a.connections, "wrk_threads": a.threads,
        "duration_s": a.duration, "rounds": a.rounds, "cpus": os.cpu_count(),
    }
    for p in paths:
        key = p.strip("/").replace("/", "_")
        result["rps_" + key] = round(med(p, "rps"), 1)
        result["p50_us_" + key] = med(p, "p50_us")
        result["p99_us_" + key] = med(p, "p99_us")
        result["non2xx_" + key] = sum(x["non2xx"] for x in runs[p])
        result["cpu_us_per_req_nginx_" + key] = med(p, "cpu_us_per_req_nginx")
        result["cpu_us_per_req_shmringd_" + key] = med(p, "cpu_us_per_req_shmringd")
        result["rounds_" + key] = runs[p]
    if "rps_echo" in result and "rps_hello" in result:
        result["ratio_hello_echo"] = round(result["rps_hello"] / result["rps_echo"], 3)
        # The same ratio from CPU per request (nginx workers + shmringd): what
        # the rps ratio would be if the box were CPU-bound and ours alone. On
        # a shared VM it moves far less than rps does.
        cpu_echo = result["cpu_us_per_req_nginx_echo"] + result["cpu_us_per_req_shmringd_echo"]
        cpu_hello = result["cpu_us_per_req_nginx_hello"] + result["cpu_us_per_req_shmringd_hello"]
        if cpu_hello > 0:
            result["cpu_ratio_hello_echo"] = round(cpu_echo / cpu_hello, 3)
        result["ratio_per_round"] = [round(h["rps"] / e["rps"], 3) for e, h in
                                     zip(runs["/echo"], runs["/hello"])]
    result["loadavg_at_end"] = os.getloadavg()[0]
    result["gateway_stats_one_worker"] = status.get("stats")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("rounds_")
                      and k != "gateway_stats_one_worker"}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
