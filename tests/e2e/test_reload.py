"""e2e: nginx reload (SIGHUP) twice under traffic. Every request is answered
200 with X-Hello (old workers finish theirs on their channels while the new
ones claim free channels: never two producers on one channel), no error in
the log, and the old workers give their channels back when they exit."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, done, skip_unless_ready  # noqa: E402


class Load(threading.Thread):
    def __init__(self, st, path):
        super().__init__(daemon=True)
        self.st, self.path, self.log, self.stop = st, path, [], False

    def run(self):
        while not self.stop:
            try:
                status, hdrs, body = self.st.get(self.path, timeout=5)
            except OSError as e:
                status, hdrs, body = -1, {}, str(e).encode()
            self.log.append((status, hdrs.get("x-hello"), body[:80]))


def owners(st):
    _, _, body = st.get("/shmring/metrics")
    return {int(m.group(1)): int(m.group(2)) for m in
            re.finditer(r'shmring_channel_owner_pid\{channel="(\d+)"\} (\d+)', body.decode())}


def main(build):
    skip_unless_ready(build)
    with stack.Stack(build) as st:
        loads = [Load(st, p) for p in ("/hello", "/ngx/hello", "/hello", "/hello-open")]
        for l in loads:
            l.start()
        time.sleep(1.0)
        first = set(st.nginx_worker_pids())
        for _ in range(2):
            st.reload_nginx()
            time.sleep(1.5)
        time.sleep(1.5)  # old workers: quiet for 1 s, release, exit
        for l in loads:
            l.stop = True
        for l in loads:
            l.join(10)
        rows = [r for l in loads for r in l.log]
        bad = [r for r in rows if r[0] != 200 or r[1] not in ("World", "OpenResty")]
        check(len(rows) > 100, "traffic during the reloads (%d requests)" % len(rows))
        check(not bad, "every request answered 200 with X-Hello across two reloads: %d bad, "
              "e.g. %s" % (len(bad), bad[:3]))
        now = set(st.nginx_worker_pids())
        check(now and not (now & first), "the workers were replaced (%s -> %s)" % (first, now))
        time.sleep(0.5)
        own = owners(st)
        held = {pid for pid in own.values() if pid}
        check(held <= now, "channels are held only by live workers after the reload: %s (workers %s)"
              % (own, now))
        log = st.tail_log(400).splitlines()
        # The echo upstream lives in the same nginx and is reloaded with it:
        # its old workers close idle keepalive upstream connections, which
        # the proxy logs and retries ("upstream prematurely closed", "reset
        # by peer"). That is nginx's own keepalive race, not shmring's.
        errors = [l for l in log if ("[error]" in l or "[alert]" in l or "[crit]" in l)
                  and ("lua" in l or "shmring" in l)]
        check(not errors, "no shmring/lua error in nginx's error.log: %s" % errors[:3])
        print("%d requests across 2 reloads, all 200; channel owners now %s" % (len(rows), own))
    done()


if __name__ == "__main__":
    main(sys.argv[1])
