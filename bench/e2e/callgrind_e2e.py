"""Instructions per request in the nginx worker, per bench-e2e cell, with
valgrind --tool=callgrind: a figure that does not move with the load on a
shared machine (only user-space instructions of the nginx worker count:
not the kernel, not shmringd), to weigh one change against another.

    python3 bench/e2e/callgrind_e2e.py [build-dir] [--plugins hello,key-auth]
        [--transports shmring,lua] [--duration 8] [--connections 8]
        [--client-opt NAME=VALUE] [--out bench/results/callgrind-e2e.json] [--top 25]

The stack is bench_e2e's (same nginx.conf, routes and plugin configs) with
nginx started under callgrind. Per cell: a warm-up (confs, JIT traces),
counters zeroed, wrk for --duration seconds, a dump; Ir / requests wrk
completed. The dumps (<prefix>/callgrind.out.*) stay in the stack prefix,
printed at the end; `callgrind_annotate` on one gives the top functions,
written next to --out as callgrind-e2e-<plugin>-<transport>.txt.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_e2e as be  # noqa: E402
import stack  # noqa: E402


class GrindStack(be.BenchStack):
    def start(self):
        wrapper = os.path.join(self.prefix, "nginx-callgrind.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec valgrind --tool=callgrind --trace-children=yes "
                    "--callgrind-out-file=%s/callgrind.out.%%p %s \"$@\"\n"
                    % (self.prefix, stack.NGINX))
        os.chmod(wrapper, 0o755)
        self.start_daemon()
        real, stack.NGINX = stack.NGINX, wrapper
        try:
            self.start_nginx(timeout=180)
        finally:
            stack.NGINX = real
        return self


def total_ir(path):
    """The summed Ir of a callgrind dump (its `summary:` or `totals:` line)."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def annotate(dump):
    """Self cost by object and by function, largest first. The worker was
    forked from the master, so its first frames (main ... ngx_spawn_process)
    carry every instruction as "self": those 100% lines are left out. JIT
    code has no object: it counts as "[???]"."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", dump],
                         capture_output=True, text=True).stdout
    by_obj, by_fn = {}, []
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)$", line)
        if not m or m.group(2) == "100.0":
            continue
        ir, what = int(m.group(1).replace(",", "")), m.group(3)
        obj = what.rsplit("[", 1)[1].rstrip("]") if "[" in what else "???"
        by_obj[obj] = by_obj.get(obj, 0) + ir
        by_fn.append((ir, what.split(" [")[0] + "  [" + os.path.basename(obj) + "]"))
    return (sorted(by_obj.items(), key=lambda kv: -kv[1]),
            [(fn, ir) for ir, fn in sorted(by_fn, reverse=True)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(REPO, "build", "release"))
    ap.add_argument("--plugins", default="hello,key-auth,rate-limiting,correlation-id")
    ap.add_argument("--transports", default="shmring,lua")
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--client-opt", action="append", default=[],
                    help="shmring.client option NAME=LUA_VALUE (repeatable), as bench_e2e.py")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "callgrind-e2e.json"))
    a = ap.parse_args()
    plugins, transports = a.plugins.split(","), a.transports.split(",")
    st = GrindStack(a.build, plugins, transports, nginx_workers=1, daemon_workers=1,
                    daemon_args=["--spin_us=0"])
    st.client_opts = [tuple(o.split("=", 1)) for o in a.client_opt]
    res = {}
    load0 = os.getloadavg()
    wa = argparse.Namespace(threads=1, connections=a.connections, duration=a.duration)
    with st:
        worker = st.nginx_worker_pids()[0]
        for p in plugins:
            for t in transports:
                path = "/%s/%s" % (t, p)
                be.wrk(st.port, path, p, argparse.Namespace(**dict(vars(wa), duration=3)),
                       None, 0)
                subprocess.run(["callgrind_control", "-z", str(worker)], check=True,
                               capture_output=True)
                r = be.wrk(st.port, path, p, wa, None, 0)
                before = set(glob.glob(os.path.join(st.prefix, "callgrind.out.%d*" % worker)))
                subprocess.run(["callgrind_control", "-d", "%s-%s" % (p, t), str(worker)],
                               check=True, capture_output=True)
                time.sleep(0.5)
                new = sorted(set(glob.glob(os.path.join(st.prefix, "callgrind.out.%d*"
                                                        % worker))) - before)
                dump = new[-1]
                ir = total_ir(dump)
                n = r["requests"]
                res["%s/%s" % (p, t)] = {"requests": n, "ir": ir, "ir_per_req": round(ir / n),
                                         "non2xx": r["non2xx"], "dump": dump}
                print("%-28s requests %7d  Ir/request %8d  non2xx %d"
                      % (path, n, ir / n, r["non2xx"]), flush=True)
                by_obj, top = annotate(dump)
                res["%s/%s" % (p, t)]["by_object"] = {k: round(v / n) for k, v in by_obj}
                txt = os.path.splitext(a.out)[0] + "-%s-%s.txt" % (p, t)
                with open(txt, "w") as f:
                    f.write("# callgrind, nginx worker, %s, %d requests: instructions per request\n"
                            "\n## by object (self)\n" % (path, n))
                    f.writelines("%9d  %s\n" % (v / n, k) for k, v in by_obj)
                    f.write("\n## by function (self), top %d\n" % a.top)
                    f.writelines("%9d  %s\n" % (v / n, k) for k, v in top[:a.top])
        print("dumps in " + st.prefix)
    meta = {"meta": "commit %s, %s UTC, load %.2f -> %.2f, wrk -c%d -d%ds per cell%s" % (
        subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                       text=True).stdout.strip(), time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        load0[0], os.getloadavg()[0], a.connections, a.duration,
        "".join(", " + o for o in a.client_opt)), "cells": res}
    for p in plugins:
        s, l = res.get(p + "/shmring"), res.get(p + "/lua")
        if s and l:
            print("%-22s shmring - lua: %+d instructions per request (%.2fx)"
                  % (p, s["ir_per_req"] - l["ir_per_req"], s["ir_per_req"] / l["ir_per_req"]))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
