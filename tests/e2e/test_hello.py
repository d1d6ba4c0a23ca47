"""e2e: hello through the Kong stub (PDK double) and through the OpenResty
helper, on the real shmringd: the response header, the header the upstream
received (the echo), the untouched /echo route, metrics."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, skip_unless_ready  # noqa: E402


def main(build):
    skip_unless_ready(build)
    with stack.Stack(build) as st:
        status, hdrs, echo = st.get_json("/echo?a=1")
        check(status == 200, "/echo answers 200 (got %d)" % status)
        check("x-hello" not in hdrs and "x-hello" not in echo["headers"],
              "/echo has no plugin: no X-Hello anywhere")
        check(echo["query"] == {"a": "1"} and echo["path"] == "/echo", "echo reports path and query")

        for i in range(20):  # both nginx workers, both channels
            status, hdrs, echo = st.get_json("/hello?i=%d" % i)
            check(status == 200, "/hello answers 200 (got %d)" % status)
            check(hdrs.get("x-hello") == "World", "/hello response has X-Hello: World (Kong stub)")
            check(echo["headers"].get("x-hello") == "World", "upstream received X-Hello: World")
            check(echo["query"] == {"i": str(i)}, "upstream received the request's own query")

        status, hdrs, echo = st.get_json("/ngx/hello")
        check(status == 200 and hdrs.get("x-hello") == "OpenResty",
              "/ngx/hello: the OpenResty helper sets the configured value on the response")
        check(echo["headers"].get("x-hello") == "OpenResty",
              "/ngx/hello: and on the upstream request")

        status, _, body = st.get("/shmring/metrics")
        text = body.decode()
        check(status == 200 and "shmring_daemon_up 1" in text, "metrics say the daemon is up")
        check('shmring_channel_records_total{channel="0",side="client"}' in text,
              "metrics have per-channel counters")
        check('shmring_worker_records_total{worker="1"}' in text, "metrics have per-worker counters")
        check_error_log(st, 200)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
