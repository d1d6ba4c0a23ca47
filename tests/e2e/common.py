"""Small helpers shared by the e2e test programs: checks that count, skips
(exit 77) when the stack cannot run here, one closing line, a load thread,
a log file's JSON lines."""
import json
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402

_passed = 0


def check(cond, what):
    global _passed
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)
    _passed += 1


def check_error_log(st, lines=300):
    """No [error] or [alert] line in the last lines of nginx's error.log."""
    errors = [l for l in st.tail_log(lines).splitlines() if "[error]" in l or "[alert]" in l]
    check(not errors, "no error in nginx's error.log: %s" % errors[:3])


def json_lines(path):
    """The complete JSON lines of a log file written so far ([] before it
    exists): the daemon may be mid-write, and a line without its newline yet
    is not an entry to parse."""
    try:
        with open(path, "rb") as f:
            return [json.loads(l) for l in f.read().split(b"\n")[:-1] if l.strip()]
    except FileNotFoundError:
        return []


def done():
    print("%d passed, 0 failed" % _passed, flush=True)
    sys.exit(0)


def skip(why):
    print("SKIP: " + why, flush=True)
    sys.exit(77)


def skip_unless_ready(build):
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        skip("nginx is not installed (scripts/deps.sh demo)")
    if not os.path.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so"):
        skip("libnginx-mod-http-lua is not installed")
    if not os.path.exists(stack.daemon_bin(build)):
        skip("shmringd is not built in " + build)
    if "hello" not in stack.built_plugins(build):
        skip("plugins/hello.so is not built in " + build)


class Load(threading.Thread):
    """Sends requests to one path of st in a loop until stop, recording
    (t, status, secs, hdrs, body) per request (status -1: no answer)."""

    def __init__(self, st, path):
        super().__init__(daemon=True)
        self.st, self.path, self.log, self.stop = st, path, [], False

    def run(self):
        while not self.stop:
            t0 = time.time()
            try:
                status, hdrs, body = self.st.get(self.path, timeout=5)
            except OSError as e:
                status, hdrs, body = -1, {}, str(e).encode()
            self.log.append((t0, status, time.time() - t0, hdrs, body))
