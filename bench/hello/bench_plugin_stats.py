"""bench-plugin-stats: what the per-plugin gateway figures (shmring.plugin_stats:
two clock reads and a histogram observe per request) cost the nginx worker.
wrk against /hello with the recording on and off in every nginx worker,
alternating inside each round of one run; writes
bench/results/plugin_stats.json.

    python3 bench/hello/bench_plugin_stats.py <build-dir> [--rounds 5] [--duration 5]
        [--connections 50] [--out bench/results/plugin_stats.json]

Figures are medians over the rounds. Not a test.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
sys.path.insert(0, HERE)
import stack  # noqa: E402
from bench_hello import wrk  # noqa: E402


def switch(st, on):
    """Set shmring.plugin_stats.enabled in every nginx worker: new
    connections until each worker has answered."""
    want = set(st.nginx_worker_pids())
    seen = set()
    for _ in range(500):
        c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=5)
        c.request("GET", "/shmring/plugin-stats?on=%d" % on, headers={"Connection": "close"})
        pid = int(c.getresponse().read().split()[0])
        c.close()
        seen.add(pid)
        if want <= seen:
            return
    raise RuntimeError("could not reach every nginx worker: %s of %s" % (seen, want))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "plugin_stats.json"))
    a = ap.parse_args()
    cells = ("on", "off")
    runs = {c: [] for c in cells}
    st = stack.Stack(a.build, daemon_args=["--spin_us=0"])
    with st:
        wrk(st.port, "/hello", 2, a.connections, 1)  # warm-up: confs, JIT, keepalive
        for r in range(a.rounds):
            for cell in (cells if r % 2 == 0 else cells[::-1]):
                switch(st, 1 if cell == "on" else 0)
                pids = st.nginx_worker_pids()
                t0 = stack.cpu_ticks(pids)
                res = wrk(st.port, "/hello", a.duration, a.connections, 1)
                t1 = stack.cpu_ticks(pids)
                res["cpu_us_per_req_nginx"] = round((t1 - t0) * 1e4 / max(res["requests"], 1), 3)
                runs[cell].append(res)
                print("round %d stats %-3s rps %7.0f  p50 %5d us  p99 %6d us  nginx cpu/req %.2f us"
                      % (r + 1, cell, res["rps"], res["p50_us"], res["p99_us"],
                         res["cpu_us_per_req_nginx"]), flush=True)

    def med(c, k):
        return statistics.median(x[k] for x in runs[c])
    result = {"bench": "plugin_stats", "rounds": a.rounds, "duration_s": a.duration,
              "connections": a.connections, "cpus": os.cpu_count(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loadavg_at_end": os.getloadavg()[0]}
    for c in cells:
        for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req_nginx"):
            result["%s_%s" % (k, c)] = med(c, k)
        result["rounds_" + c] = runs[c]
    result["nginx_cpu_us_per_req_cost"] = round(
        result["cpu_us_per_req_nginx_on"] - result["cpu_us_per_req_nginx_off"], 3)
    result["nginx_cpu_cost_per_round_us"] = [
        round(x["cpu_us_per_req_nginx"] - y["cpu_us_per_req_nginx"], 3)
        for x, y in zip(runs["on"], runs["off"])]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("rounds_")},
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
