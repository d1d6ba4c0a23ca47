"""e2e: where the time goes. After N requests through each plugin route, the
Prometheus location has per-plugin histograms (gateway round trip, daemon
service time) whose _count is N and whose buckets are cumulative,
`promtool check metrics` finds nothing to report, `shmringctl top --json`
shows each plugin with its count, and the opt-in profile location answers
folded stacks, and the Grafana dashboard queries only what is exposed."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, skip_unless_ready  # noqa: E402

# route -> (plugin, requests, extra headers); key-auth without a key is
# answered by the plugin's EXIT (401), which must be timed too.
ROUTES = {
    "/hello": ("hello", 30, {}),
    "/request-transformer": ("request-transformer", 20, {}),
    "/key-auth": ("key-auth", 12, {}),
    "/log": ("log", 15, {}),
}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse(text):
    """name -> list of (labels dict, value)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m is not None, "exposition line parses: %r" % line)
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def value(samples, name, **want):
    for labels, v in samples.get(name, []):
        if all(labels.get(k) == w for k, w in want.items()):
            return v
    return None


def buckets(samples, name, **want):
    """[(le, count)] of one histogram series, in exposition order."""
    return [(float(l["le"]), v) for l, v in samples.get(name + "_bucket", [])
            if all(l.get(k) == w for k, w in want.items())]


def check_histogram(samples, name, n, **labels):
    what = "%s%s" % (name, labels)
    check(value(samples, name + "_count", **labels) == n,
          "%s: _count is %d (got %s)" % (what, n, value(samples, name + "_count", **labels)))
    b = buckets(samples, name, **labels)
    check(len(b) > 3 and b[-1][0] == float("inf") and b[-1][1] == n,
          "%s: ends with le=+Inf equal to the count" % what)
    check(all(b[i][0] < b[i + 1][0] for i in range(len(b) - 1)), "%s: le ascends" % what)
    check(all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)),
          "%s: buckets are cumulative: %s" % (what, b))
    s = value(samples, name + "_sum", **labels)
    check(s is not None and s > 0, "%s: _sum is positive (%s)" % (what, s))


def check_dashboard(promtool, samples):
    """The Grafana dashboard's queries parse (promtool check rules) and name
    only series the location exposes."""
    with open(os.path.join(stack.REPO, "docs", "grafana", "shmring.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    check(len(exprs) > 10, "the dashboard has its queries (%d)" % len(exprs))
    for e in exprs:
        for name in re.findall(r"\bshmring_[a-z_]+", e):
            check(name in samples, "dashboard query names an exposed series: %s" % name)
    rules = "groups:\n- name: dashboard\n  rules:\n" + "".join(
        "  - record: shmring:dashboard_%d\n    expr: %s\n" % (i, json.dumps(
            e.replace("$__rate_interval", "1m").replace("$plugin", ".*")))
        for i, e in enumerate(exprs))
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        f.write(rules)
        f.flush()
        r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, timeout=30)
    check(r.returncode == 0, "promtool parses every dashboard query: %s"
          % (r.stdout + r.stderr).decode()[-800:])


def main(build):
    skip_unless_ready(build)
    promtool = shutil.which("promtool")
    check(promtool is not None, "promtool is installed (Debian's prometheus, scripts/deps.sh test)")
    ctl = os.path.join(os.path.dirname(stack.daemon_bin(build)), "shmringctl")
    with stack.Stack(build) as st:
        for path, (plugin, n, hdrs) in ROUTES.items():
            for i in range(n):
                status, _, _ = st.get("%s?i=%d" % (path, i), hdrs)
                want = 401 if plugin == "key-auth" else 200
                check(status == want, "%s answers %d (got %d)" % (path, want, status))

        # Each nginx worker moves its figures into the shared dict once a
        # second (and the scraped one at the scrape): poll for the total.
        deadline = 10
        for _ in range(deadline * 4):
            status, _, body = st.get("/shmring/metrics")
            text = body.decode()
            samples = parse(text)
            counts = [value(samples, "shmring_gateway_plugin_round_trip_seconds_count", plugin=p)
                      for p, n, _ in ROUTES.values() if p != "log"]
            if counts == [n for p, n, _ in ROUTES.values() if p != "log"]:
                break
            threading.Event().wait(0.25)
        check(status == 200, "metrics answer 200")
        for plugin, n, _ in ROUTES.values():
            if plugin == "log":
                check(value(samples, "shmring_gateway_plugin_log_records_total", plugin=plugin) == n,
                      "log: %d LOG records sent" % n)
                check_histogram(samples, "shmring_plugin_service_seconds", n, plugin=plugin,
                                hook="log")
                continue
            check(value(samples, "shmring_gateway_plugin_requests_total", plugin=plugin) == n,
                  "%s: %d gateway requests" % (plugin, n))
            check_histogram(samples, "shmring_gateway_plugin_round_trip_seconds", n,
                            plugin=plugin)
            check_histogram(samples, "shmring_plugin_service_seconds", n, plugin=plugin,
                            hook="request")
            check(value(samples, "shmring_gateway_plugin_errors_total", plugin=plugin) == 0,
                  "%s: no gateway errors" % plugin)
        check(not any("nginx_worker" in l for l, _ in
                      samples["shmring_gateway_plugin_round_trip_seconds_count"]),
              "the per-plugin figures are pooled over the nginx workers (no worker label)")

        r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        report = (r.stdout + r.stderr).decode().strip()
        check(r.returncode == 0 and report == "",
              "promtool check metrics reports nothing (rc %d): %s" % (r.returncode, report[:800]))

        check_dashboard(promtool, samples)

        r = subprocess.run([ctl, "--shm-dir", st.shm_dir, "top", "--json"],
                           capture_output=True, timeout=10)
        check(r.returncode == 0, "shmringctl top --json exits 0: %s" % r.stderr.decode())
        top = {p["name"]: p for p in json.loads(r.stdout)["plugins"]}
        for plugin, n, _ in ROUTES.values():
            hook = "log" if plugin == "log" else "request"
            check(plugin in top and top[plugin][hook]["count"] == n,
                  "top --json: %s has %d %s hooks (got %s)" % (plugin, n, hook, top.get(plugin)))
            check(top[plugin][hook]["p99_ns"] >= top[plugin][hook]["p50_ns"] > 0,
                  "top --json: %s p99 >= p50 > 0" % plugin)
        r = subprocess.run([ctl, "--shm-dir", st.shm_dir, "top", "--interval", "0.2",
                            "--count", "2"], capture_output=True, timeout=10)
        lines = r.stdout.decode().splitlines()
        check(r.returncode == 0 and sum(l.startswith("hello ") for l in lines) == 2,
              "top prints a hello row per refresh: %s" % lines[:6])

        # The profile samples the worker that serves it while others keep it
        # busy: one connection's requests all go to one worker, so profile on
        # a kept-alive connection and load through more.
        # The profiler samples CPU time: on a loaded machine the profiled worker
        # may get too little of it in one window, so up to 3 windows.
        def profile():
            stop = threading.Event()

            def load():
                while not stop.is_set():
                    st.get("/hello")
            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            try:
                status, _, body = st.get("/shmring/profile?seconds=2", timeout=10)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            return status, body.decode().splitlines()
        for _ in range(3):
            status, folded = profile()
            if status != 200 or any("phase.lua" in l for l in folded):
                break
        check(status == 200, "the profile location answers 200 (got %d)" % status)
        check(all(re.match(r"^\S.* \d+$", l) for l in folded),
              "the profile is folded stacks: %s" % folded[:3])
        check(any("phase.lua" in l for l in folded),
              "the profile shows shmring's Lua (phase.lua): %d stacks" % len(folded))
        status, _, _ = st.get("/shmring/profile?seconds=0")
        check(status == 400, "a bad duration is refused")

        check_error_log(st, 200)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
