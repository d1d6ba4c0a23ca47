"""bench-e2e: the project's headline benchmark. One nginx, every plugin
through three transports -- shmring (rings), socket (the same C plugins
over shmringd --socket, one msgpack frame per phase through a cosocket
keepalive pool) and lua (native Lua baselines, bench/baselines/) -- plus
/echo (no plugin), with wrk; prints one table and writes
bench/results/e2e.json (bench/README.md, "e2e").

    python3 bench/e2e/bench_e2e.py [build-dir] [--rounds 3] [--duration 5]
        [--connections 50] [--nginx-workers 1] [--daemon-workers 1]
        [--plugins hello,key-auth,...] [--transports shmring,socket,lua]
        [--client-opt NAME=VALUE] [--profile] [--out bench/results/e2e.json]

Environment overrides: BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNECTIONS,
NGINX_WORKERS, SHMRINGD_WORKERS, BENCH_PLUGINS, PROFILE=1.
Cells alternate inside each round (plugin by plugin, transport by
transport), so every ratio compares runs made minutes apart at most.
Figures are medians over the rounds. Not a test: exits 0 unless the stack
cannot start or wrk fails.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import stack  # noqa: E402

PLUGINS = ["hello", "key-auth", "key-auth-kong", "jwt", "jwt-nocache", "rate-limiting", "request-transformer",
           "correlation-id", "log"]
TRANSPORTS = ["shmring", "socket", "lua"]

# What each plugin's requests carry (the same for every transport).
HEADERS = {
    "key-auth": "apikey: demo-key",
    "key-auth-kong": "apikey: demo-key",
    "request-transformer": "x-remove-me: 1|x-old-name: v|User-Agent: wrk",
}
QUERY = {"request-transformer": "?q=x&keep=1"}
N_TOKENS = 16384  # > 4x the jwt cache's 4096 entries: a rotated-in token is never cached


def tokens_file(build):
    """RS256 tokens for the demo key, distinct jti, valid for a week; made
    once per build dir (signing 16k tokens takes ~15 s)."""
    path = os.path.join(build, "bench-e2e-tokens.txt")
    if os.path.exists(path) and time.time() - os.path.getmtime(path) < 3 * 86400:
        return path
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    with open(os.path.join(REPO, "demo", "keys", "demo-rs256.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    exp = int(time.time()) + 7 * 86400
    print("signing %d RS256 tokens into %s ..." % (N_TOKENS, path), flush=True)
    with open(path + ".tmp", "w") as out:
        for i in range(N_TOKENS):
            claims = {"iss": "demo-rs256", "sub": "bench", "exp": exp, "jti": "t%06d" % i}
            body = b64(json.dumps(claims, separators=(",", ":")).encode())
            sig = key.sign((head + "." + body).encode(), padding.PKCS1v15(), hashes.SHA256())
            out.write(head + "." + body + "." + b64(sig) + "\n")
    os.rename(path + ".tmp", path)
    return path


def transports_of(p, transports):
    """jwt cells also run lua-keycache: Kong's jwt parses the PEM key on
    every verification (jwt_parser.lua alg_verify.RS256 -> openssl_pkey.new),
    ~280 us with OpenSSL 3; the variant keeps the parsed key, the strongest
    Lua anchor."""
    if p.startswith("jwt") and "lua" in transports:
        return transports + ["lua-keycache"]
    if p == "key-auth-kong":  # set against key-auth's shmring row
        return [t for t in transports if t == "shmring"]
    return transports


def locations(plugins, transports):
    out = []
    for p in plugins:
        for t in transports_of(p, transports):
            args = '"%s", "%s"' % (t, p)
            b = 'require("bench_e2e")'
            body = ['access_by_lua_block { %s.access(%s) }' % (b, args),
                    'header_filter_by_lua_block { %s.header_filter(%s) }' % (b, args)]
            if p == "log":
                body.append('log_by_lua_block { %s.log(%s) }' % (b, args))
            body.append('content_by_lua_block { ngx.print("ok\\n") }')
            out.append("        location = /%s/%s {\n            %s\n        }"
                       % (t, p, "\n            ".join(body)))
    return "\n".join(out)


class BenchStack(stack.Stack):
    def __init__(self, build, plugins, transports, **kw):
        super().__init__(build, **kw)
        self.socket_path = os.path.join(self.prefix, "shmringd.sock")
        self.daemon_args += ["--socket", self.socket_path]
        self.cells_plugins, self.cells_transports = plugins, transports
        self.client_opts = []

    def render(self):
        return self.write_conf(os.path.join(HERE, "nginx.conf.in"), {
            "NGINX_WORKERS": str(self.nginx_workers), "PREFIX": self.prefix,
            "LOG_LEVEL": self.log_level, "REPO": REPO, "SHM_DIR": self.shm_dir,
            "SHMRING_LIB": stack.ffi_lib(self.build), "SOCKET": self.socket_path,
            "PORT": str(self.port),
            "USER_LINE": "user root root;" if os.getuid() == 0 else "",
            "LOCATIONS": locations(self.cells_plugins, self.cells_transports),
            "CLIENT_OPTS": "".join(", %s = %s" % kv for kv in self.client_opts),
        })

    def worker_pids(self, comm_prefix):
        out = []
        for pid in self.daemon_pids():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().startswith(comm_prefix):
                        out.append(pid)
            except OSError:
                pass
        return out


def wrk(port, path, plugin, a, tokens, offset):
    env = dict(os.environ, BENCH_HEADERS=HEADERS.get(plugin, ""))
    if plugin.startswith("jwt"):
        env["BENCH_TOKENS"] = tokens
        env["BENCH_TOKEN_OFFSET"] = str(offset)
    url = "http://127.0.0.1:%d%s%s" % (port, path, QUERY.get(plugin, ""))
    return stack.wrk_json(
        ["-t%d" % a.threads, "-c%d" % a.connections, "-d%ds" % a.duration, "--latency",
         "-s", os.path.join(HERE, "wrk.lua"), url], env=env)


def jit_ctl(port, query):
    """Start or stop jit.p + jit.v in the (one) nginx worker, or read its
    ring client's counters (stats=1)."""
    import urllib.request
    return urllib.request.urlopen("http://127.0.0.1:%d/_jit?%s" % (port, query), timeout=5).read()


def perf_profile(st, a, tokens, outdir, plugin):
    """perf record -g of the nginx worker and the shmringd ring worker during
    the plugin's shmring cell, with LuaJIT's own profiler (jit.p, "Fl":
    functions and lines, the VM state) and trace-abort log (jit.v) in the
    worker at the same time; folded stacks + the top of perf report."""
    os.makedirs(outdir, exist_ok=True)
    targets = {"nginx": st.nginx_worker_pids()[0], "shmringd": st.worker_pids("shmringd-w0")[0]}
    tag = "%s/%s" % (outdir, "e2e-profile-%s-" + plugin)
    jit_out = os.path.abspath(tag % "luajit") + ".txt"
    procs = {}
    for name, pid in targets.items():
        data = os.path.join(st.prefix, "perf-%s.data" % name)
        procs[name] = (data, subprocess.Popen(
            ["perf", "record", "-g", "-e", "cpu-clock", "-F", "2000", "-o", data, "-p", str(pid),
             "--", "sleep", str(a.duration)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    jit_ctl(st.port, "start=" + jit_out)
    time.sleep(0.2)
    res = wrk(st.port, "/shmring/" + plugin, plugin, a, tokens, 3 * N_TOKENS // 4)
    jit_ctl(st.port, "stop=1")
    for name, (data, p) in procs.items():
        p.wait()
        report = ""
        for title, args in (("by shared object", ["--no-children", "--sort", "dso"]),
                            ("by symbol, self", ["--no-children", "--sort", "dso,sym",
                                                 "--percent-limit", "0.7"]),
                            ("by symbol, with children", ["--children", "--sort", "sym",
                                                          "--percent-limit", "3"])):
            out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none"] + args,
                                 capture_output=True, text=True).stdout
            lines = [x for x in out.splitlines() if x.strip() and not x.startswith("#")]
            report += "\n## %s\n" % title + "\n".join(lines[:45]) + "\n"

        with open((tag % name) + ".txt", "w") as f:
            f.write("# perf record -g -e cpu-clock, %s worker, shmring/%s cell, %.0f rps\n"
                    % (name, plugin, res["rps"]))
            f.write(report)
        script = subprocess.run(["perf", "script", "-i", data], capture_output=True,
                                text=True).stdout
        with open((tag % name) + ".folded", "w") as f:
            f.write(fold(script))
    print("profile: %s.{txt,folded}, %s" % (tag % "{nginx,shmringd}", jit_out))


def fold(script):
    """perf script output -> folded stacks (root;...;leaf count), like
    stackcollapse-perf.pl."""
    counts, stk = {}, []
    for line in script.splitlines() + [""]:
        if not line.strip():
            if stk:
                key = ";".join(reversed(stk))
                counts[key] = counts.get(key, 0) + 1
            stk = []
            continue
        if line[0] in " \t":
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sym = parts[1].rsplit(" (", 1)[0]
                stk.append(sym.split("+0x")[0])
    return "".join("%s %d\n" % (k, v) for k, v in sorted(counts.items(), key=lambda x: -x[1]))


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(REPO, "build", "e2e-rel"))
    ap.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "3")))
    ap.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "5")))
    ap.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "50")))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nginx-workers", type=int, default=int(env("NGINX_WORKERS", "1")))
    ap.add_argument("--daemon-workers", type=int, default=int(env("SHMRINGD_WORKERS", "1")))
    ap.add_argument("--plugins", default=env("BENCH_PLUGINS", ",".join(PLUGINS)))
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--daemon-arg", action="append", default=None,
                    help="extra shmringd option (repeatable); default --spin_us=0")
    ap.add_argument("--client-opt", action="append", default=[],
                    help="shmring.client option NAME=LUA_VALUE (repeatable), e.g. spin_max_us=0")
    ap.add_argument("--profile", action="store_true", default=env("PROFILE", "") not in ("", "0"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "e2e.json"))
    a = ap.parse_args()
    if a.daemon_arg is None:
        # nginx, shmringd and wrk share 2 cores: a daemon that busy-polls
        # after each record takes CPU nginx needs (docs/gateway.md).
        a.daemon_arg = ["--spin_us=0"]
    built = set(stack.built_plugins(a.build))
    plugins = []
    for p in a.plugins.split(","):
        so = "jwt" if p.startswith("jwt") else "key-auth" if p.startswith("key-auth") else p
        if so in built:
            plugins.append(p)
        else:
            print("skipping %s: %s.so is not built" % (p, so))
    transports = a.transports.split(",")
    tokens = tokens_file(a.build) if any(p.startswith("jwt") for p in plugins) else None

    cells = [("echo", "none", "/echo")] + [(p, t, "/%s/%s" % (t, p)) for p in plugins
                                           for t in transports_of(p, transports)]
    runs = {(p, t): [] for p, t, _ in cells}
    st = BenchStack(a.build, plugins, transports, nginx_workers=a.nginx_workers,
                    daemon_workers=a.daemon_workers, daemon_args=a.daemon_arg)
    st.client_opts = [tuple(o.split("=", 1)) for o in a.client_opt]
    offset = 0
    load0 = os.getloadavg()
    with st:
        for p, t, path in cells:  # warm-up: confs, JIT, keepalive pools, jwt keys
            res = wrk(st.port, path, p, argparse.Namespace(**dict(vars(a), duration=1)),
                      tokens, offset)
            offset += 2000
            if res["non2xx"] or res["socket_errors"]:
                print("WARNING: warm-up of %s: %d non-2xx, %d socket errors; see %s/error.log"
                      % (path, res["non2xx"], res["socket_errors"], st.prefix))
        for r in range(a.rounds):
            for p, t, path in cells:
                pids = {"nginx": st.nginx_worker_pids(),
                        "shmringd": st.worker_pids("shmringd-w" if t != "socket"
                                                   else "shmringd-sock")}
                t0 = {k: stack.cpu_ticks(v) for k, v in pids.items()}
                res = wrk(st.port, path, p, a, tokens, offset)
                # the next run starts where no worker has seen a token
                offset += int(res["requests"] / 10) + 1000
                t1 = {k: stack.cpu_ticks(v) for k, v in pids.items()}
                n = max(res["requests"], 1)
                res["cpu_us_per_req"] = round((t1["nginx"] - t0["nginx"]) * 1e4 / n, 2)
                res["daemon_cpu_us_per_req"] = round((t1["shmringd"] - t0["shmringd"]) * 1e4 / n, 2)
                runs[(p, t)].append(res)
                print("round %d %-28s rps %8.0f p50 %6d us p99 %6d us cpu/req nginx %5.1f "
                      "daemon %5.1f us non2xx %d errors %d"
                      % (r + 1, path, res["rps"], res["p50_us"], res["p99_us"],
                         res["cpu_us_per_req"], res["daemon_cpu_us_per_req"], res["non2xx"],
                         res["socket_errors"]), flush=True)
        client_stats = json.loads(jit_ctl(st.port, "stats=1"))
        print("ring client counters (nginx worker): %s" % json.dumps(client_stats, sort_keys=True))
        if a.profile and "shmring" in transports:
            for p in plugins:
                perf_profile(st, a, tokens, os.path.dirname(a.out), p)
    load1 = os.getloadavg()

    def med(p, t, k):
        return statistics.median(x[k] for x in runs[(p, t)])

    rows = []
    for p, t, _ in cells:
        rows.append({
            "plugin": p, "transport": t, "rps": round(med(p, t, "rps"), 1),
            "p50_us": med(p, t, "p50_us"), "p99_us": med(p, t, "p99_us"),
            "cpu_us_per_req": med(p, t, "cpu_us_per_req"),
            "daemon_cpu_us_per_req": med(p, t, "daemon_cpu_us_per_req"),
            "non2xx": sum(x["non2xx"] for x in runs[(p, t)]),
            "socket_errors": sum(x["socket_errors"] for x in runs[(p, t)]),
            "rounds_rps": [x["rps"] for x in runs[(p, t)]],
        })
    by = {(x["plugin"], x["transport"]): x for x in rows}
    kong, file_row = by.get(("key-auth-kong", "shmring")), by.get(("key-auth", "shmring"))
    if kong and file_row and file_row["rps"]:
        # credentials from Kong (warm) against the file-sourced row
        kong["ratio_file_sourced"] = round(kong["rps"] / file_row["rps"], 3)
    for x in rows:
        if x["transport"] == "shmring":
            for other in ("lua", "lua-keycache", "socket"):
                o = by.get((x["plugin"], other))
                if o and o["rps"]:
                    x["ratio_" + other] = round(x["rps"] / o["rps"], 2)
                    x["p99_ratio_" + other] = round(x["p99_us"] / max(o["p99_us"], 1), 2)

    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no",
                            "--", ".", ":!bench/results"],
                           capture_output=True, text=True).stdout.strip() != ""
    meta = "commit %s%s, %s, %d CPUs, nginx workers %d, shmringd workers %d (+1 socket worker), " \
           "wrk -t%d -c%d, %d rounds x %d s, daemon %s, client %s, load %.2f -> %.2f" % (
               commit, "+dirty" if dirty else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               os.cpu_count(), a.nginx_workers, a.daemon_workers, a.threads, a.connections,
               a.rounds, a.duration, " ".join(a.daemon_arg), " ".join(a.client_opt) or "defaults",
               load0[0], load1[0])
    print()
    print(meta)
    hdr = "| plugin | transport | req/s | p50 us | p99 us | nginx CPU us/req | daemon CPU us/req " \
          "| shmring/lua | shmring/socket (p99) |"
    print(hdr)
    print("|" + "---|" * 9)
    for x in rows:
        rl = "%.2f" % x["ratio_lua"] if "ratio_lua" in x else ""
        if "ratio_file_sourced" in x:
            rl = "%.3f of key-auth's shmring row" % x["ratio_file_sourced"]
        if "ratio_lua-keycache" in x:
            rl += " (keycache %.2f)" % x["ratio_lua-keycache"]
        rs = "%.2f (%.2f)" % (x["ratio_socket"], x["p99_ratio_socket"]) if "ratio_socket" in x else ""
        print("| %s | %s | %.0f | %d | %d | %.1f | %.1f | %s | %s |" % (
            x["plugin"], x["transport"], x["rps"], x["p50_us"], x["p99_us"],
            x["cpu_us_per_req"], x["daemon_cpu_us_per_req"], rl, rs))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    with open(os.path.splitext(a.out)[0] + ".meta.json", "w") as f:
        json.dump({"meta": meta, "load_start": load0, "load_end": load1,
                   "client_stats": client_stats,
                   "rounds": {"%s/%s" % k: v for k, v in runs.items()}}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
