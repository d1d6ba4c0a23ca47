"""e2e (labels e2e, kong, plugins): Kong's http-log as the shmring-http-log
stub, through nginx, the PDK double and the real shmringd, to real local
HTTP collectors (tests/e2e/collector.py; routes in
tests/e2e/kong_routes_http_log.lua).

- Kong's documented example (basic auth in the URL, POST, timeout,
  keepalive, the deprecated flush_timeout and retry_count): one request
  per entry (max_batch_size = 1), the entry itself as the body, Kong's
  Authorization and Content-Type, the serializer's fields.
- Batches: max_batch_size = 10 sends JSON arrays, PUT, the configured
  Content-Type and header; every entry once.
- A collector that answers 500 for its first 1.5 s, then 200: every entry
  arrives, exactly once, and the failed attempts were retried.
- A collector that is down when the gateway starts and comes up 1.5 s
  later: every entry arrives.
- https to a collector with a certificate nobody trusts (Kong's http-log
  does not verify either).
- A collector that never answers 2xx: the batch is given up after
  max_retry_time (the daemon says so in its log) and later entries are
  still sent.
- tcp-log (shmring-log, sink = tcp) with tls, tls_sni and a host name, to
  a TLS line server that is down when the gateway starts: every line
  arrives, and the server saw the SNI.
- tcp-log's timeout: a server that accepts TCP and never speaks TLS holds
  the sink for ~timeout only; its lines arrive once it answers.
- tcp-log's keepalive: an idle connection is closed after keepalive ms,
  the next line opens a new one.
"""
import socket
import ssl
import threading
import base64
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from collector import Collector  # noqa: E402
from common import check, check_error_log, done, skip, skip_unless_ready  # noqa: E402


def self_signed(d):
    cert, key = os.path.join(d, "collector.crt"), os.path.join(d, "collector.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return cert, key


def send(st, route, n, tag):
    for i in range(n):
        status, _, _ = st.get("/kong/%s?%s=%d" % (route, tag, i))
        check(status == 200, "/kong/%s answers 200 (got %d)" % (route, status))


def indexes(entries, tag):
    return sorted(int(e["request"]["querystring"][tag]) for e in entries
                  if tag in (e.get("request", {}).get("querystring") or {}))


def doc_example(st, doc):
    send(st, "doc-http-log", 3, "doc")
    got = doc.wait_entries(3)
    check(indexes(got, "doc") == [0, 1, 2], "the doc example: 3 entries (got %s)"
          % indexes(got, "doc"))
    reqs = [r for r in doc.accepted if r["path"] == "/bin/doc"]
    check(len(reqs) == 3, "one request per entry (max_batch_size = 1): %d" % len(reqs))
    r = reqs[0]
    body = json.loads(r["body"])
    check(isinstance(body, dict), "max_batch_size = 1: the body is the entry, not an array")
    check(r["method"] == "POST", "method POST (%s)" % r["method"])
    check(r["headers"].get("authorization") == "Basic " + base64.b64encode(b"bob:s3cret").decode(),
          "Authorization: Basic of the URL's user info (%s)" % r["headers"].get("authorization"))
    check(r["headers"].get("content-type") == "application/json",
          "Content-Type application/json (%s)" % r["headers"].get("content-type"))
    check(body["request"]["method"] == "GET" and body["response"]["status"] == 200
          and "latencies" in body and "client_ip" in body and "started_at" in body,
          "Kong's serializer fields (%s)" % sorted(body))


def batches(st, doc):
    send(st, "http-log-batch", 25, "b")
    end = time.time() + 10
    while time.time() < end and len(indexes(doc.entries(), "b")) < 25:
        time.sleep(0.05)
    got = indexes(doc.entries(), "b")
    check(got == list(range(25)), "batches: every entry once (got %s)" % got)
    reqs = [r for r in doc.accepted if r["path"] == "/batch"]
    check(all(r["method"] == "PUT" for r in reqs), "method PUT")
    check(all(r["headers"].get("x-collector-token") == "t0ken" for r in reqs),
          "the config's header on every request")
    check(all(r["headers"].get("content-type") == "application/json; charset=utf-8"
              for r in reqs), "the configured Content-Type")
    sizes = [len(json.loads(r["body"])) for r in reqs]
    check(all(isinstance(json.loads(r["body"]), list) for r in reqs) and max(sizes) <= 10
          and len(reqs) < 25, "JSON arrays of at most 10 entries, fewer requests than entries "
          "(sizes %s)" % sizes)


def flaky(st, coll):
    send(st, "http-log-flaky", 20, "f")
    got = coll.wait_entries(20)
    check(indexes(got, "f") == list(range(20)),
          "500 for 1.5 s, then 200: every entry arrives exactly once (got %s)" % indexes(got, "f"))
    failed = len(coll.seen) - len(coll.accepted)
    check(failed >= 2, "the 500s were retried (%d failed attempts)" % failed)


def late(st, coll):
    send(st, "http-log-late", 20, "l")
    time.sleep(1.5)
    coll.start()
    got = coll.wait_entries(20)
    check(indexes(got, "l") == list(range(20)),
          "collector down at start: every entry arrives (got %s)" % indexes(got, "l"))


def tls(st, coll):
    send(st, "http-log-tls", 2, "t")
    got = coll.wait_entries(2)
    check(indexes(got, "t") == [0, 1], "https: entries arrive (got %s)" % indexes(got, "t"))


def give_up(st, coll):
    send(st, "http-log-give-up", 1, "g")
    time.sleep(1.2)  # max_retry_time 0.3 s: long given up
    tried = len(coll.seen)
    check(tried >= 2, "the failing batch was retried (%d attempts)" % tried)
    time.sleep(0.5)
    check(len(coll.seen) == tried, "and then given up (%d -> %d attempts)"
          % (tried, len(coll.seen)))
    send(st, "http-log-give-up", 1, "g2")
    end = time.time() + 5
    while time.time() < end and len(coll.seen) == tried:
        time.sleep(0.05)
    check(len(coll.seen) > tried, "a later entry is still sent")
    with open(os.path.join(st.prefix, "shmringd.log")) as f:
        check("batch dropped (max_retry_time)" in f.read(), "the daemon logs the dropped batch")


class TlsLines:
    """A line server on port (TLS when tls is a (cert, key)) that collects
    newline-separated lines, the SNI each connection sent, and when each
    connection was accepted and seen closed by the sink; its first `stall`
    connections are accepted and then never spoken to (no TLS handshake,
    nothing read). start() may come later than the gateway."""

    def __init__(self, tls, stall=0):
        self.port = stack.free_port()
        self.tls = tls
        self.stall = stall
        self.lines, self.snis = [], []
        self.conns = []  # [accepted, closed or None] per connection
        self.sock = None

    def start(self):
        ctx = None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            ctx.sni_callback = lambda s, name, c: self.snis.append(name) and None
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self.serve, args=(ctx,), daemon=True).start()
        return self

    def serve(self, ctx):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            conn = [time.time(), None]
            self.conns.append(conn)
            stalled = len(self.conns) <= self.stall
            threading.Thread(target=self.hold if stalled else self.read, args=(ctx, c, conn),
                             daemon=True).start()

    def hold(self, ctx, c, conn):
        """Never answer (the ClientHello is read and ignored); note when
        the sink gives up (EOF or reset)."""
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        conn[1] = time.time()
        c.close()

    def read(self, ctx, c, conn):
        try:
            with (ctx.wrap_socket(c, server_side=True) if ctx else c) as t:
                buf = b""
                while True:
                    data = t.recv(65536)
                    if not data:
                        conn[1] = time.time()
                        return
                    buf += data
                    *done_lines, buf = buf.split(b"\n")
                    self.lines.extend(json.loads(x) for x in done_lines if x)
        except (OSError, ssl.SSLError):
            pass

    def stop(self):
        if self.sock:
            self.sock.close()


def tcp_tls(st, srv):
    send(st, "tcp-log-tls", 10, "k")
    time.sleep(1.0)  # the sink retries its connection meanwhile
    srv.start()
    end = time.time() + 10
    while time.time() < end and len(indexes(srv.lines, "k")) < 10:
        time.sleep(0.05)
    check(indexes(srv.lines, "k") == list(range(10)),
          "tcp-log over TLS to 'localhost', down at start: every line (got %s)"
          % indexes(srv.lines, "k"))
    check(srv.snis and all(n == "collector.test" for n in srv.snis),
          "tls_sni sent (%s)" % srv.snis)


def wait_lines(srv, tag, n, secs):
    end = time.time() + secs
    while time.time() < end and len(indexes(srv.lines, tag)) < n:
        time.sleep(0.05)
    return indexes(srv.lines, tag)


def tcp_stall(st, srv):
    """tcp-log's timeout bounds the TLS handshake: a collector that accepts
    TCP and never speaks TLS (its first two connections) is let go after
    timeout = 300 ms, and the entries reach it once it answers."""
    send(st, "tcp-log-stall", 5, "s")
    got = wait_lines(srv, "s", 5, 10)
    check(got == list(range(5)), "tcp-log: a handshake that never ends is given up, every "
          "line arrives on a later connection (got %s, connections %s)" % (got, srv.conns))
    held = srv.conns[:2]
    check(len(srv.conns) >= 3 and all(c[1] and 0.2 <= c[1] - c[0] < 3 for c in held),
          "tcp-log: each stalled connection closed by the sink ~timeout after it opened (%s)"
          % [(round(c[1] - c[0], 2) if c[1] else None) for c in held])


def tcp_keepalive(st, srv):
    """tcp-log's keepalive: a connection unused for keepalive = 300 ms is
    closed, and the next entry opens a new one."""
    send(st, "tcp-log-keepalive", 1, "a")
    check(wait_lines(srv, "a", 1, 10) == [0], "tcp-log keepalive: the first line arrives")
    sent = time.time()
    end = sent + 5
    while time.time() < end and not (srv.conns and srv.conns[0][1]):
        time.sleep(0.02)
    first = srv.conns[0] if srv.conns else [0, None]
    check(first[1] and 0.2 <= first[1] - sent < 2,
          "tcp-log keepalive: the idle connection closed ~300 ms after its line (%s)"
          % (round(first[1] - sent, 2) if first[1] else None))
    send(st, "tcp-log-keepalive", 1, "b")
    check(wait_lines(srv, "b", 1, 10) == [0] and len(srv.conns) == 2,
          "tcp-log keepalive: the next line opens a new connection (%d)" % len(srv.conns))


def main(build):
    skip_unless_ready(build)
    if "log" not in stack.built_plugins(build):
        skip("not built: log")
    st = stack.Stack(build, kong_routes="kong_routes_http_log")
    doc = Collector().start()
    flaky_c = Collector(fail_for=1.5)
    late_c = Collector()
    tls_c = Collector(tls=self_signed(st.prefix)).start()
    never = Collector(fail_for=1e9).start()
    tls_lines = TlsLines(tls_c.tls)
    stall = TlsLines(tls_c.tls, stall=2).start()
    plain = TlsLines(None).start()
    with open(os.path.join(st.prefix, "collectors.json"), "w") as f:
        json.dump({"doc": doc.port, "flaky": flaky_c.port, "late": late_c.port,
                   "tls": tls_c.port, "never": never.port, "tcp_tls": tls_lines.port,
                   "tcp_stall": stall.port, "tcp_plain": plain.port}, f)
    try:
        with st:
            doc_example(st, doc)
            batches(st, doc)
            flaky_c.start()
            flaky(st, flaky_c)
            late(st, late_c)
            tls(st, tls_c)
            give_up(st, never)
            tcp_tls(st, tls_lines)
            tcp_stall(st, stall)
            tcp_keepalive(st, plain)
            check_error_log(st)
    finally:
        for c in (doc, flaky_c, late_c, tls_c, never, tls_lines, stall, plain):
            c.stop()
    done()


if __name__ == "__main__":
    main(sys.argv[1])
