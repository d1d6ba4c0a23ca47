"""A local HTTP log collector for the http-log tests and the demo: a real
HTTP/1.1 server (http.server, one thread per connection, keep-alive) that
records every request it answers.

Collector(fail_for=s) answers 500 to every request in its first s seconds,
then 200; Collector(port=p) may be started later (a collector that is down
when the gateway starts); Collector(tls=(cert, key)) speaks https.
`accepted` holds the requests answered 2xx, `seen` every request.
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402


class Collector:
    def __init__(self, port=None, fail_for=0.0, tls=None):
        self.port = port or stack.free_port()
        self.fail_for = fail_for
        self.tls = tls
        self.lock = threading.Lock()
        self.seen = []
        self.accepted = []
        self.server = None
        self.started_at = None

    def start(self):
        coll = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a log server would
            # the answer in one write (headers and body): two small writes
            # meet the client's delayed ACK and wait 40 ms each time
            wbufsize = 65536

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                ok = time.time() - coll.started_at >= coll.fail_for
                req = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": body}
                with coll.lock:
                    coll.seen.append(req)
                    if ok:
                        coll.accepted.append(req)
                answer = b'{"ok":true}' if ok else b'{"error":"not yet"}'
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_PATCH = handle_one

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.started_at = time.time()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def entries(self):
        """Every log entry accepted: a body is one entry (max_batch_size
        = 1) or a JSON array of entries."""
        out = []
        with self.lock:
            bodies = [r["body"] for r in self.accepted]
        for b in bodies:
            v = json.loads(b)
            out.extend(v if isinstance(v, list) else [v])
        return out

    def wait_entries(self, n, timeout=20, match=lambda e: True):
        """The accepted entries for which match() holds, once there are n
        (or what there is at the timeout)."""
        end = time.time() + timeout
        while True:
            got = [e for e in self.entries() if match(e)]
            if len(got) >= n or time.time() >= end:
                return got
            time.sleep(0.05)
