"""The shmring demo (scripts/demo.sh): start shmringd (2 workers) and nginx
(2 workers) on loopback with a private prefix, send sample traffic through
every route, print what each did, stop everything.

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

JWT_SECRET = b"demo-secret"  # demo/shmring_demo.lua, route jwt (key demo-issuer)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def demo_jwt():
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"iss": "demo-issuer", "sub": "alice",
                              "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(JWT_SECRET, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def show(st, label, path, headers=None, expect_upstream=None):
    status, hdrs, body = st.get(path, headers)
    try:
        echo = json.loads(body)
    except ValueError:
        echo = None
    extra = []
    for h in ("x-hello", "kong-request-id", "x-ratelimit-remaining-second", "ratelimit-remaining"):
        if h in hdrs:
            extra.append("%s: %s" % (h, hdrs[h]))
    if echo and isinstance(echo, dict) and "headers" in echo:
        up = echo["headers"]
        keys = [k for k in sorted(up) if k.startswith("x-") or k in (expect_upstream or [])]
        if keys:
            extra.append("upstream got " + ", ".join("%s=%s" % (k, up[k]) for k in keys))
        if echo.get("query"):
            extra.append("upstream query %s" % json.dumps(echo["query"], sort_keys=True))
    elif body:
        extra.append("body " + body.decode(errors="replace").strip()[:100])
    print("  %-44s -> %d  %s" % (label, status, "; ".join(extra)))
    return status


def traffic(st):
    _, _, info = st.get_json("/shmring/status")
    routes = info["routes"]
    print("shmring demo: nginx on 127.0.0.1:%d (2 workers), shmringd with %d workers, "
          "prefix %s" % (st.port, st.daemon_workers, st.prefix))
    print("routes and the C plugin each runs (through its Kong stub):")
    for r in sorted(routes):
        x = routes[r]
        note = ("   <- %s; runs hello instead" % x["note"]) if x.get("note") else ""
        print("  /%-22s %s%s" % (r, x["plugin"], note))
    print("traffic:")
    show(st, "GET /echo (no plugin)", "/echo?a=1", {"X-Demo": "1"})
    show(st, "GET /hello", "/hello")
    show(st, "GET /ngx/hello (OpenResty helper)", "/ngx/hello")
    show(st, "GET /key-auth (no key)", "/key-auth")
    show(st, "GET /key-auth (apikey: demo-key)", "/key-auth", {"apikey": "demo-key"})
    show(st, "GET /key-auth (apikey: wrong-key)", "/key-auth", {"apikey": "wrong-key"})
    show(st, "GET /jwt (no token)", "/jwt")
    show(st, "GET /jwt (Bearer HS256 token)", "/jwt", {"Authorization": "Bearer " + demo_jwt()})
    codes = [st.get("/rate-limit")[0] for _ in range(7)]
    print("  %-44s -> %s" % ("GET /rate-limit x7 (limit 5/s)", " ".join(map(str, codes))))
    show(st, "GET /request-transformer", "/request-transformer?q=1",
         {"X-Remove-Me": "gone?", "X-Old-Name": "renamed?"})
    show(st, "GET /correlation-id", "/correlation-id")
    show(st, "GET /log", "/log")
    # shmringd writes the line within its flush interval (100 ms): wait, bounded.
    logfile = os.path.join(st.prefix, "requests.log")
    end = time.time() + 3
    while time.time() < end and not (os.path.exists(logfile) and os.path.getsize(logfile)):
        time.sleep(0.05)
    if os.path.exists(logfile):
        with open(logfile) as f:
            logged = f.read().splitlines()
        print("  /log: %d JSON line(s) in %s (written by shmringd), the last:" % (len(logged), logfile))
        print("    " + (logged[-1][:300] if logged else "(none yet)"))
    else:
        print("  /log: no %s yet" % logfile)
    _, _, metrics = st.get("/shmring/metrics")
    lines = [l for l in metrics.decode().splitlines() if l and not l.startswith("#")]
    print("metrics (/shmring/metrics, %d samples), e.g.:" % len(lines))
    for l in lines[:6]:
        print("  " + l)


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
    # SIGTERM (and SIGINT) end the demo through the same cleanup as a normal exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        st.start()
        traffic(st)
        if serve:
            print("serving on http://127.0.0.1:%d (Ctrl-C stops)" % st.port, flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        st.stop()
        print("stopped nginx and shmringd")
    return 0


if __name__ == "__main__":
    sys.exit(main())
