"""The shmring demo (scripts/demo.sh): start shmringd (2 workers) and nginx
(2 workers) on loopback with a private prefix, send sample traffic through
every route, print what each did and check it (status and headers; exit 1 on
any miss), stop everything. /http-log's entries go to a local HTTP collector
(tests/e2e/collector.py) this script starts and checks.

    python3 demo/run_demo.py <build-dir>              # make demo
    python3 demo/run_demo.py <build-dir> --serve N    # make serve PORT=N
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "e2e"))
import stack  # noqa: E402
from collector import Collector  # noqa: E402

COLLECTOR = None  # the local HTTP collector /http-log posts to (main starts it)
JWT_SECRET = b"demo-secret"  # demo/shmring_demo.lua, route jwt (key demo-issuer)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def demo_jwt():
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"iss": "demo-issuer", "sub": "alice",
                              "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(JWT_SECRET, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


class Checks:
    """Every route's expected answer; a miss is printed and counted, and the
    demo exits non-zero (a route whose plugin is missing from shmringd fails
    here rather than looking fine)."""

    def __init__(self):
        self.misses = []

    def expect(self, label, cond, what):
        if not cond:
            self.misses.append("%s: %s" % (label, what))
            print("    MISS: " + what)


def show(st, checks, label, path, headers=None, status=200, resp=None, upstream=None,
         gone=()):
    """GET path, print what happened, check the status, the response
    headers `resp` and the upstream's headers `upstream` ({name: value, or
    True for present}), and that the upstream headers in `gone` are absent."""
    got, hdrs, body = st.get(path, headers)
    try:
        echo = json.loads(body)
    except ValueError:
        echo = None
    extra = []
    for h in ("x-hello", "kong-request-id", "x-ratelimit-remaining-second", "ratelimit-remaining"):
        if h in hdrs:
            extra.append("%s: %s" % (h, hdrs[h]))
    up = {}
    if echo and isinstance(echo, dict) and "headers" in echo:
        up = echo["headers"]
        keys = [k for k in sorted(up) if k.startswith("x-")]
        if keys:
            extra.append("upstream got " + ", ".join("%s=%s" % (k, up[k]) for k in keys))
        if echo.get("query"):
            extra.append("upstream query %s" % json.dumps(echo["query"], sort_keys=True))
    elif body:
        extra.append("body " + " ".join(body.decode(errors="replace").split())[:100])
    print("  %-44s -> %d  %s" % (label, got, "; ".join(extra)))
    checks.expect(label, got == status, "status %d, want %d" % (got, status))
    for where, want in (("response", resp or {}), ("upstream", upstream or {})):
        have = hdrs if where == "response" else up
        for k, v in want.items():
            ok = k in have if v is True else have.get(k) == v
            checks.expect(label, ok, "%s header %s = %r, want %r" % (where, k, have.get(k), v))
    for k in gone:
        checks.expect(label, k not in up, "upstream header %s should be gone" % k)
    return got


def rate_limit_burst(st, checks):
    """7 requests at the start of a second against 5 per second."""
    time.sleep(1.02 - time.time() % 1)
    got = [st.get("/rate-limit") for _ in range(7)]
    codes = [g[0] for g in got]
    print("  %-44s -> %s" % ("GET /rate-limit x7 (limit 5/s)", " ".join(map(str, codes))))
    label = "/rate-limit"
    checks.expect(label, codes == [200] * 5 + [429] * 2, "want 5 x 200 then 429, 429")
    checks.expect(label, all(g[1].get("x-ratelimit-limit-second") == "5" for g in got),
                  "X-RateLimit-Limit-Second: 5 on every answer")


def http_log(st, checks):
    """GET /http-log: shmringd posts the entry to the demo's collector."""
    uri = "/http-log?run=%d" % int(time.time() * 1000)
    show(st, checks, "GET /http-log", uri)
    got = [e for e in COLLECTOR.wait_entries(1, timeout=5, match=lambda e:
                                              e["request"]["uri"] == uri)]
    with COLLECTOR.lock:
        reqs = list(COLLECTOR.accepted)
    last = reqs[-1] if reqs else None
    if last:
        print("  /http-log: collector on 127.0.0.1:%d got %d request(s); the last: %s %s, "
              "Authorization %s, %d entr%s" % (COLLECTOR.port, len(reqs), last["method"],
                                               last["path"], last["headers"].get("authorization"),
                                               len(json.loads(last["body"])),
                                               "y" if len(json.loads(last["body"])) == 1 else "ies"))
    checks.expect("/http-log", len(got) == 1 and last and last["method"] == "POST"
                  and last["headers"].get("authorization") == "Basic ZGVtbzpkZW1vLXNlY3JldA==",
                  "the collector got the entry for GET %s (POST, basic auth)" % uri)


def request_transformer_body(st, checks):
    """POST JSON and form bodies to /request-transformer-body: the upstream
    gets them transformed in Kong's order (remove, rename, replace, add,
    append)."""
    cases = (
        ("application/json",
         json.dumps({"user": "alice", "password": "s3cret", "role": "admin", "tags": "x"}),
         lambda b: json.loads(b) == {"username": "alice", "role": "guest", "source": "shmring",
                                     "client": "demo", "tags": ["x", "demo"]}),
        ("application/x-www-form-urlencoded", "user=alice&password=s3cret&role=admin",
         lambda b: b == "client=demo&role=guest&source=shmring&tags=demo&username=alice"),
    )
    for ct, body, ok in cases:
        status, _, out = st.post("/request-transformer-body", body,
                                 {"Content-Type": ct, "User-Agent": "demo"})
        try:
            got = json.loads(out).get("body")
        except ValueError:
            got = None
        print("POST /request-transformer-body (%s)\n  sent     %s\n  upstream %s"
              % (ct, body, got))
        checks.expect("POST /request-transformer-body (%s)" % ct,
                      status == 200 and got is not None and ok(got),
                      "status %d, upstream body %r" % (status, got))


def traffic(st):
    checks = Checks()
    _, _, info = st.get_json("/shmring/status")
    routes = info["routes"]
    print("shmring demo: nginx on 127.0.0.1:%d (2 workers), shmringd with %d workers, "
          "prefix %s" % (st.port, st.daemon_workers, st.prefix))
    checks.expect("/shmring/status", info.get("daemon") == "up", "daemon %s" % info.get("daemon"))
    print("routes and the plugins each runs (Kong stubs in the PDK double):")
    for r in sorted(routes):
        print("  /%-22s %s" % (r, ", ".join(routes[r]["plugins"])))
    print("traffic:")
    show(st, checks, "GET /echo (no plugin)", "/echo?a=1", {"X-Demo": "1"}, upstream={"x-demo": "1"})
    show(st, checks, "GET /hello", "/hello", resp={"x-hello": "World"}, upstream={"x-hello": "World"})
    show(st, checks, "GET /ngx/hello (OpenResty helper)", "/ngx/hello",
         resp={"x-hello": "OpenResty"}, upstream={"x-hello": "OpenResty"})
    show(st, checks, "GET /key-auth (no key)", "/key-auth", status=401,
         resp={"www-authenticate": "Key"})
    show(st, checks, "GET /key-auth (apikey: demo-key)", "/key-auth", {"apikey": "demo-key"},
         upstream={"x-consumer-username": "demo"})
    show(st, checks, "GET /key-auth (apikey: wrong-key)", "/key-auth", {"apikey": "wrong-key"},
         status=401)
    show(st, checks, "GET /jwt (no token)", "/jwt", status=401)
    show(st, checks, "GET /jwt (Bearer HS256 token)", "/jwt",
         {"Authorization": "Bearer " + demo_jwt()}, upstream={"x-consumer-username": "demo"})
    rate_limit_burst(st, checks)
    show(st, checks, "GET /request-transformer", "/request-transformer?q=1",
         {"X-Remove-Me": "gone?", "X-Old-Name": "renamed?"},
         upstream={"x-added-by": "shmring", "x-new-name": "renamed?"},
         gone=("x-remove-me", "x-old-name"))
    request_transformer_body(st, checks)
    show(st, checks, "GET /correlation-id", "/correlation-id", resp={"kong-request-id": True},
         upstream={"kong-request-id": True})
    show(st, checks, "GET /correlation-id-tracker (Kong's tracker format)",
         "/correlation-id-tracker", resp={"kong-request-id": True},
         upstream={"kong-request-id": True})
    # this run's line, not one left in the file by an earlier demo
    log_uri = "/log?run=%d" % int(time.time() * 1000)
    show(st, checks, "GET /log", log_uri)
    # shmringd writes the line within its flush interval (100 ms): wait, bounded.
    logfile = os.path.join(st.prefix, "requests.log")
    end = time.time() + 3
    while time.time() < end and not (os.path.exists(logfile) and log_uri in open(logfile).read()):
        time.sleep(0.05)
    logged = []
    if os.path.exists(logfile):
        with open(logfile) as f:
            logged = f.read().splitlines()
        print("  /log: %d JSON line(s) in %s (written by shmringd), the last:" % (len(logged), logfile))
        print("    " + (logged[-1][:300] if logged else "(none yet)"))
    checks.expect("/log", any(json.loads(l)["request"]["uri"] == log_uri for l in logged),
                  "a JSON line for GET %s in %s" % (log_uri, logfile))
    http_log(st, checks)
    _, _, metrics = st.get("/shmring/metrics")
    lines = [l for l in metrics.decode().splitlines() if l and not l.startswith("#")]
    print("metrics (/shmring/metrics, %d samples), e.g.:" % len(lines))
    for l in lines[:6]:
        print("  " + l)
    return checks.misses


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    build = sys.argv[1]
    serve = "--serve" in sys.argv
    port = int(sys.argv[sys.argv.index("--serve") + 1]) if serve else None
    prefix = os.environ.get("DEMO_DIR") or os.path.join(os.path.abspath(build), "demo")
    os.makedirs(prefix, exist_ok=True)
    st = stack.Stack(build, prefix=prefix, nginx_workers=2, daemon_workers=2, port=port,
                     log_level="error")
    global COLLECTOR
    COLLECTOR = Collector(port=st.collector_port).start()  # /http-log posts here
    # SIGTERM (and SIGINT) end the demo through the same cleanup as a normal exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    misses = []
    try:
        st.start()
        misses = traffic(st)
        if misses and not serve:
            print("demo: %d check(s) missed:" % len(misses))
            for m in misses:
                print("  " + m)
        elif not serve:
            print("demo: every route answered as expected")
        if serve:
            print("serving on http://127.0.0.1:%d (Ctrl-C stops)" % st.port, flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        st.stop()
        COLLECTOR.stop()
        print("stopped nginx, shmringd and the collector")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
