"""Start and stop the shmring stack for end-to-end tests and the benchmark:
shmringd (real daemon) + Debian's nginx with the lua module, rendered from
demo/nginx.conf.in into a private prefix, on free loopback ports.

    python3 tests/e2e/stack.py <build-dir> [--serve]   # manual use
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def find_lib(build):
    for name in ("libshmring.so.1", "libshmring.so"):
        for sub in ("shmring", "tests/e2e"):
            p = os.path.join(build, sub, name)
            if os.path.exists(p):
                return p
    raise FileNotFoundError("libshmring.so not found under " + build)


def ffi_lib(build):
    """The library nginx loads: a sanitizer-free copy if the build has one
    (tests/e2e/CMakeLists.txt builds it when SHMRING_SANITIZE is on)."""
    p = os.path.join(build, "tests", "e2e", "libshmring_ffi.so")
    return p if os.path.exists(p) else find_lib(build)


def daemon_bin(build):
    for sub in ("bin", "worker"):
        p = os.path.join(build, sub, "shmringd")
        if os.path.exists(p):
            return p
    return os.path.join(build, "bin", "shmringd")


def built_plugins(build):
    d = os.path.join(build, "plugins")
    names = []
    if os.path.isdir(d):
        for f in sorted(os.listdir(d)):
            if f.endswith(".so"):
                names.append(f[:-3])
    return names


class Stack:
    def __init__(self, build, prefix=None, nginx_workers=2, daemon_workers=2, wait="doorbell",
                 log_level="error", port=None, daemon_args=None, kong_routes=""):
        self.build = os.path.abspath(build)
        self.tmp_prefix = prefix is None  # ours to remove after a passing test
        self.prefix = prefix or tempfile.mkdtemp(prefix="shmring-e2e-")
        self.nginx_workers = nginx_workers
        self.daemon_workers = daemon_workers
        self.wait = wait
        self.log_level = log_level
        self.port = port or free_port()
        self.echo_port = free_port()
        # where the demo's /http-log route posts (demo/run_demo.py listens there)
        self.collector_port = free_port()
        self.shm_dir = "/dev/shm/shmring/e2e-%d-%d" % (os.getpid(), self.port)
        self.daemon = None
        self.nginx = None
        self.daemon_args = list(daemon_args or [])
        # a Lua module (tests/e2e/) of extra Kong routes, served at /kong/<name>
        self.kong_routes = kong_routes
        self.daemon_bin = daemon_bin(self.build)
        self.plugin_dir = os.path.join(self.build, "plugins")

    # ---- shmringd ---------------------------------------------------------
    def start_daemon(self, timeout=10):
        if not os.path.exists(self.daemon_bin):
            raise FileNotFoundError(self.daemon_bin + " is not built")
        log = open(os.path.join(self.prefix, "shmringd.log"), "ab")
        self.daemon = subprocess.Popen(
            [self.daemon_bin, "--foreground", "--shm-dir", self.shm_dir,
             "--channels", str(self.nginx_workers * 4), "--workers", str(self.daemon_workers),
             "--plugin-dir", self.plugin_dir,
             # the log files the demo config names live in the prefix
             "--plugin-file-dirs", self.prefix] + self.daemon_args
            # shmringd refuses root unless told which user to be: as root,
            # the tests say root deliberately (nginx runs as root too).
            + (["--user", "root"] if os.getuid() == 0 else []),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        ctl = os.path.join(self.shm_dir, "ctl")
        end = time.time() + timeout
        while time.time() < end:
            if self.daemon.poll() is not None:
                raise RuntimeError("shmringd exited with %s; see %s/shmringd.log"
                                   % (self.daemon.returncode, self.prefix))
            if os.path.exists(ctl) and os.path.exists(os.path.join(self.shm_dir, "ch-0.bell")):
                time.sleep(0.2)
                return
            time.sleep(0.05)
        raise RuntimeError("shmringd did not create " + ctl)

    def kill_daemon(self, sig=signal.SIGKILL):
        """Kill the whole daemon (master and workers: its process group)."""
        if self.daemon and self.daemon.poll() is None:
            try:
                os.killpg(self.daemon.pid, sig)
            except ProcessLookupError:
                pass
            self.daemon.wait(10)
        self.daemon = None

    def stop_daemon(self):
        if self.daemon and self.daemon.poll() is None:
            os.killpg(self.daemon.pid, signal.SIGTERM)
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait(5)
        self.daemon = None

    # ---- nginx ------------------------------------------------------------
    def render(self):
        return self.write_conf(os.path.join(REPO, "demo", "nginx.conf.in"), {
            "NGINX_WORKERS": str(self.nginx_workers), "DAEMON": "off", "PREFIX": self.prefix,
            "LOG_LEVEL": self.log_level, "REPO": REPO, "SHM_DIR": self.shm_dir,
            "SHMRING_LIB": ffi_lib(self.build), "WAIT": self.wait,
            "PORT": str(self.port), "ECHO_PORT": str(self.echo_port),
            "COLLECTOR_PORT": str(self.collector_port),
            # Workers must open the daemon's 0660 segments: same user as us.
            "USER_LINE": "user root root;" if os.getuid() == 0 else "",
        })

    def write_conf(self, template, subst):
        """Fill a template's @NAME@ places and write it as the prefix's
        nginx.conf (with the tmp/ and logs/ folders nginx needs)."""
        with open(template) as f:
            conf = f.read()
        for k, v in subst.items():
            conf = conf.replace("@%s@" % k, v)
        for d in ("tmp", "logs"):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        path = os.path.join(self.prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        return path

    def start_nginx(self, timeout=10):
        conf = self.render()
        env = dict(os.environ, SHMRING_KONG_ROUTES=self.kong_routes)
        out = open(os.path.join(self.prefix, "nginx.out"), "ab")
        self.nginx = subprocess.Popen([NGINX, "-p", self.prefix, "-c", conf, "-e",
                                       os.path.join(self.prefix, "error.log")],
                                      stdout=out, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        end = time.time() + timeout
        while time.time() < end:
            if self.nginx.poll() is not None:
                raise RuntimeError("nginx exited: " + self.tail_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                if len(self.nginx_worker_pids()) >= self.nginx_workers:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("nginx did not listen on %d: %s" % (self.port, self.tail_log()))

    def reload_nginx(self):
        os.kill(self.nginx.pid, signal.SIGHUP)

    def stop_nginx(self):
        if self.nginx and self.nginx.poll() is None:
            os.kill(self.nginx.pid, signal.SIGQUIT)
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.nginx.pid, signal.SIGKILL)
                self.nginx.wait(5)
        self.nginx = None

    def nginx_worker_pids(self):
        if not self.nginx:
            return []
        try:
            with open("/proc/%d/task/%d/children" % (self.nginx.pid, self.nginx.pid)) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def daemon_pids(self):
        if not self.daemon:
            return []
        pids = [self.daemon.pid]
        try:
            with open("/proc/%d/task/%d/children" % (self.daemon.pid, self.daemon.pid)) as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return pids

    def tail_log(self, n=30):
        try:
            with open(os.path.join(self.prefix, "error.log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no error.log)"

    # ---- both -------------------------------------------------------------
    def start(self):
        self.start_daemon()
        self.start_nginx()
        return self

    def stop(self):
        self.stop_nginx()
        self.stop_daemon()
        shutil.rmtree(self.shm_dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, etype, exc, tb):
        self.stop()
        ok = etype is None or (etype is SystemExit and exc.code in (0, None))
        if ok and self.tmp_prefix and not os.environ.get("SHMRING_E2E_KEEP"):
            shutil.rmtree(self.prefix, ignore_errors=True)
        elif not ok:
            print("stack logs kept in " + self.prefix, file=sys.stderr)

    # ---- HTTP -------------------------------------------------------------
    def get(self, path, headers=None, timeout=5):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    def post(self, path, body, headers=None, timeout=5):
        """POST body (bytes or str) with headers; status, headers, body."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("POST", path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def daemon_stats(self):
        """The workers' counters from shmringctl stats --json, summed."""
        ctl = os.path.join(self.build, "bin", "shmringctl")
        out = subprocess.run([ctl, "--shm-dir", self.shm_dir, "stats", "--json"],
                             capture_output=True, text=True, check=True).stdout
        tot = {}
        for w in json.loads(out).get("workers") or []:
            for k, v in w.items():
                if isinstance(v, int):
                    tot[k] = tot.get(k, 0) + v
        return tot

    def get_json(self, path, headers=None):
        status, hdrs, body = self.get(path, headers)
        return status, hdrs, json.loads(body) if body else None


def proc_cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (from /proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_ticks(pids):
    """proc_cpu_ticks summed over pids; a process that is gone counts 0."""
    total = 0
    for p in pids:
        try:
            total += proc_cpu_ticks(p)
        except OSError:
            pass
    return total


def wrk_json(args, env=None):
    """Run wrk with args (its script prints one 'WRKJSON {...}' line, as the
    benchmarks' report.lua / wrk.lua do) and return that object."""
    out = subprocess.run(["wrk"] + args, check=True, capture_output=True, text=True,
                         env=env).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise RuntimeError("no WRKJSON line in wrk output:\n" + out)


if __name__ == "__main__":
    st = Stack(sys.argv[1], log_level="notice")
    with st:
        print("port", st.port, "prefix", st.prefix, "shm", st.shm_dir)
        if "--serve" in sys.argv:
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        else:
            print(st.get("/hello"))
