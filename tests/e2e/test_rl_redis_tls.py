"""e2e (labels e2e, kong): Kong's documented rate-limiting example with
policy = redis, through nginx, the Kong stub and the real shmringd, to a
real redis-server that speaks TLS only on the port the plugin is given
and has an ACL user (routes in tests/e2e/kong_routes_redis.lua).

The test makes its certificates with the openssl command (a CA and a
certificate for "redis.test"); shmringd trusts the CA through
SSL_CERT_FILE. Checked: exactly 5 of 8 requests pass a minute = 5 limit,
with Kong's headers; the count is in Redis database 3 (read through the
server's plain loopback port, which the plugin is not given); the same
with algorithm = token-bucket (a burst of 5, Retry-After until the next
token); a config
whose server_name is not on the certificate counts nothing and answers
500 (fault_tolerant = false).
"""
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, done, skip, skip_unless_ready  # noqa: E402
from test_kong import wait_for_fresh_minute  # noqa: E402


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=shmring-e2e-ca")
    run("openssl", "req", *ec, "-keyout", "redis.key", "-out", "redis.csr",
        "-subj", "/CN=redis.test")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:redis.test\n")
    run("openssl", "x509", "-req", "-in", "redis.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "redis.crt", "-days", "2", "-extfile", "san.ext")


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], check=True,
                          capture_output=True, text=True).stdout


def start_redis(d):
    plain, tls = stack.free_port(), stack.free_port()
    conf = os.path.join(d, "redis-tls.conf")
    with open(conf, "w") as f:
        f.write("port %d\nbind 127.0.0.1\ntls-port %d\nsave \"\"\nappendonly no\n"
                "tls-cert-file %s/redis.crt\ntls-key-file %s/redis.key\n"
                "tls-ca-cert-file %s/ca.crt\ntls-auth-clients no\n"
                "user alice on >alice-secret ~* &* +@all\n" % (plain, tls, d, d, d))
    proc = subprocess.Popen(["redis-server", conf], stdout=open(os.path.join(d, "redis.log"), "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    end = time.time() + 10
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", tls), 0.2).close()
            if redis_cli(plain, "PING").strip() == "PONG":
                return proc, plain, tls
        except (OSError, subprocess.CalledProcessError):
            pass
        check(proc.poll() is None, "redis-server started (see %s/redis.log)" % d)
        time.sleep(0.05)
    check(False, "redis-server answers on its ports")


def counts(plain, db):
    """Every host field of every shmring key in database db: their sum."""
    total = 0
    for key in redis_cli(plain, "-n", str(db), "KEYS", "shmring:rl:*").split():
        vals = redis_cli(plain, "-n", str(db), "HVALS", key).split()
        total += sum(int(v) for v in vals)
    return total


def main(build):
    skip_unless_ready(build)
    if "rate-limiting" not in stack.built_plugins(build):
        skip("not built: rate-limiting")
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        skip("redis-server is not installed (Debian packages redis-server, redis-tools)")
    # warn: the plugin's "redis unreachable (why)" is a warning
    st = stack.Stack(build, kong_routes="kong_routes_redis", log_level="warn")
    make_certs(st.prefix)
    os.environ["SSL_CERT_FILE"] = os.path.join(st.prefix, "ca.crt")  # shmringd's trust store
    redis, plain, tls = start_redis(st.prefix)
    try:
        with open(os.path.join(st.prefix, "redis-tls.port"), "w") as f:
            f.write("%d\n" % tls)
        with st:
            wait_for_fresh_minute()
            answers = [st.get("/kong/redis-tls") for _ in range(8)]
            got = [a[0] for a in answers]
            check(got == [200] * 5 + [429] * 3,
                  "Kong's example over TLS: 5 of 8 pass a minute = 5 limit (got %s)" % got)
            rem = [a[1].get("x-ratelimit-remaining-minute") for a in answers[:5]]
            check(rem == ["4", "3", "2", "1", "0"],
                  "X-RateLimit-Remaining-Minute counts down (got %s)" % rem)
            check(counts(plain, 3) == 5 and counts(plain, 0) == 0,
                  "the count is in database 3 and only there (%d, %d)"
                  % (counts(plain, 3), counts(plain, 0)))
            # token-bucket: a burst of 5, then one token every 12 s
            answers = [st.get("/kong/redis-tls-token-bucket") for _ in range(7)]
            got = [a[0] for a in answers]
            check(got == [200] * 5 + [429] * 2,
                  "token-bucket over TLS: a burst of 5 of 7 (got %s)" % got)
            retry = int(answers[5][1].get("retry-after", "0"))
            check(1 <= retry <= 12, "Retry-After: until the next token, <= 12 s (got %d)" % retry)
            check(counts(plain, 3) == 10, "both routes' takes are in database 3 (%d)"
                  % counts(plain, 3))
            status, _, body = st.get("/kong/redis-tls-wrong-name")
            check(status == 500 and b"unexpected error" in body,
                  "server_name not on the certificate: 500 (got %d %r)" % (status, body))
            check(counts(plain, 3) == 10, "and nothing counted in Redis")
            log = st.tail_log(300)
            check("certificate" in log and "hostname mismatch" in log,
                  "nginx's log says why: the certificate's name")
    finally:
        os.killpg(redis.pid, 9)
        redis.wait(10)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
