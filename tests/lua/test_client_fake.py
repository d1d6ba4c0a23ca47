"""Lua client tests inside a real nginx, against tests/lua/fake_server.lua
(a LuaJIT stand-in for shmringd that misbehaves on purpose). Covers what the
real daemon does not do on demand:
  - no daemon at all: 503 at once (fail closed), 200 on the fail-open route;
  - a daemon that answers "unknown conf" (s=2): re-register, retry once, 200;
  - a reply with an action op the gateway does not know: 500, and none of
    the reply's actions applied;
  - a daemon re-created under the client (new epoch): re-attach, re-claim;
  - replies later than the deadline: 504 within the timeout, the late reply
    is dropped (counted), later requests get their own replies;
  - a daemon that never answers: 504 after the timeout, fail-open passes;
  - a full submission ring (daemon stopped reading): 503 at once, counted."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import stack  # noqa: E402
from common import check, done, skip  # noqa: E402


def status(st):
    return st.get_json("/shmring/status")[2]


def timed(st, path):
    t0 = time.time()
    s, h, b = st.get(path)
    return s, h, b, time.time() - t0


def main(build):
    if not os.path.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so"):
        skip("libnginx-mod-http-lua is not installed")
    luajit = "/usr/bin/luajit"
    if not os.path.exists(luajit):
        skip("luajit is not installed (package luajit2)")
    lib = stack.ffi_lib(build)
    st = stack.Stack(build, nginx_workers=1)
    fake = None

    def start_fake(mode, ring=0):
        nonlocal fake
        if fake:
            fake.kill()
            fake.wait()
        fake = subprocess.Popen([luajit, os.path.join(HERE, "fake_server.lua"), lib, st.shm_dir,
                                 "4", "60", mode, str(ring)])
        ctl = os.path.join(st.shm_dir, "ctl")
        for _ in range(100):
            if os.path.exists(ctl):
                break
            time.sleep(0.05)
        time.sleep(0.3)

    try:
        st.start_nginx()
        # No daemon: fail closed at once, fail open passes. "At once" is well
        # inside the route's 250 ms deadline: this first request of a fresh
        # nginx also loads the client, which a loaded machine slows.
        s, h, b, secs = timed(st, "/hello")
        check(s == 503 and b"unavailable" in b and secs < 0.2,
              "no daemon: /hello 503 at once (%d in %.3f s)" % (s, secs))
        s, h, b, _ = timed(st, "/hello-open")
        check(s == 200 and "x-hello" not in h, "no daemon: /hello-open 200 without the plugin")

        start_fake("ok")
        time.sleep(0.2)  # attach retry interval
        s, h, b, _ = timed(st, "/hello")
        check(s == 200 and h.get("x-hello") == "World", "daemon up: /hello 200 (%d)" % s)
        gen1 = status(st)["stats"]["reattach"]

        # Re-created daemon answering "unknown conf" once per conf.
        start_fake("unknown")
        time.sleep(0.2)
        s, h, b, _ = timed(st, "/hello")
        check(s == 200 and h.get("x-hello") == "World",
              "new epoch + unknown conf: re-attached, re-registered, retried: 200 (%d %s)" % (s, b[:80]))
        stats = status(st)["stats"]
        check(stats["reattach"] > gen1, "re-attached after the epoch changed")
        check(stats["unknown_conf"] >= 1, "an unknown-conf reply was retried (%s)" % stats)

        # An action op the gateway does not know: the reply is refused whole.
        start_fake("badop")
        time.sleep(0.2)
        s, h, b, _ = timed(st, "/hello")
        check(s == 500 and "x-hello" not in h,
              "unknown action op: 500, no action applied (%d %s %s)" % (s, h.get("x-hello"), b[:80]))

        # A response header, then EXIT: the exit's response carries it.
        start_fake("exit")
        time.sleep(0.2)
        s, h, b, _ = timed(st, "/hello")
        check(s == 403 and h.get("x-hello") == "World" and b"go away" in b,
              "response header then EXIT: 403 with X-Hello (%d %s %s)" % (s, h.get("x-hello"), b[:80]))

        # Replies 50 ms late; /hello-20ms has a 20 ms deadline.
        start_fake("slow")
        time.sleep(0.2)
        timed(st, "/hello")  # attach + register on the new instance
        late0 = status(st)["stats"]["late_replies"]
        s, h, b, secs = timed(st, "/hello-20ms")
        check(s == 504 and b"timed out" in b and secs < 0.2,
              "slow daemon: 504 after the 20 ms deadline (%d in %.3f s)" % (s, secs))
        time.sleep(0.2)
        s, h, b, _ = timed(st, "/hello")
        check(s == 200 and h.get("x-hello") == "World", "and the next request gets its own reply")
        check(status(st)["stats"]["late_replies"] > late0, "the late reply was dropped, not delivered")

        # A daemon that never answers (but beats).
        start_fake("mute")
        time.sleep(0.2)
        timed(st, "/hello-open")
        s, h, b, secs = timed(st, "/hello")
        check(s == 504 and 0.2 < secs < 0.6, "mute daemon: 504 after the 250 ms timeout (%d, %.3f s)"
              % (s, secs))
        s, h, b, secs = timed(st, "/hello-open")
        check(s == 200 and "x-hello" not in h and secs < 0.6, "mute daemon: fail-open route passes")

        # A daemon that stopped reading, with 4 KiB rings (2 KiB records):
        # records pile up until a claim no longer fits.
        start_fake("stuck", 4096)
        time.sleep(0.2)
        import concurrent.futures
        full0 = status(st)["stats"]["ring_full"]
        with concurrent.futures.ThreadPoolExecutor(100) as ex:
            res = list(ex.map(lambda _: timed(st, "/hello"), range(100)))
        codes = sorted(set(r[0] for r in res))
        fast503 = [r for r in res if r[0] == 503 and r[3] < 0.2]
        check(set(codes) <= {503, 504}, "stuck daemon: only 503/504 (%s)" % codes)
        check(fast503, "a full ring answers 503 at once (%d of 100)" % len(fast503))
        check(status(st)["stats"]["ring_full"] > full0, "ring full counted")
    finally:
        st.stop_nginx()
        if fake:
            fake.kill()
            fake.wait()
        import shutil
        shutil.rmtree(st.shm_dir, ignore_errors=True)
    import shutil
    shutil.rmtree(st.prefix, ignore_errors=True)  # passed: the logs are not needed
    done()


if __name__ == "__main__":
    main(sys.argv[1])
