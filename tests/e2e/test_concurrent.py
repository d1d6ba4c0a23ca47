"""e2e: 1000 concurrent requests, each on its own connection, all answered
correctly. Two routes with different hello configs ("World" through the
Kong stub, "OpenResty" through the helper) are interleaved on the same
channels, and every request carries its own query id: a reply matched to
the wrong request would show up as a wrong value or a wrong id."""
import asyncio
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, skip_unless_ready  # noqa: E402

N = 1000


async def one(port, i, start):
    path = "/hello" if i % 2 == 0 else "/ngx/hello"
    want = "World" if i % 2 == 0 else "OpenResty"
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await start.wait()
    w.write(("GET %s?id=%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % (path, i)).encode())
    await w.drain()
    raw = await r.read()
    w.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    if hdrs.get("transfer-encoding") == "chunked":
        out, rest = b"", body
        while True:
            size_s, _, rest = rest.partition(b"\r\n")
            size = int(size_s, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    echo = json.loads(body) if status == 200 else None
    ok = (status == 200 and hdrs.get("x-hello") == want
          and echo["headers"].get("x-hello") == want and echo["query"].get("id") == str(i))
    return ok, (i, status, hdrs.get("x-hello"), echo and echo["query"])


async def run(port):
    start = asyncio.Event()
    tasks = [asyncio.create_task(one(port, i, start)) for i in range(N)]
    await asyncio.sleep(0.5)  # every connection open before any request goes out
    t0 = time.time()
    start.set()
    res = await asyncio.gather(*tasks)
    return res, time.time() - t0


def main(build):
    skip_unless_ready(build)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < N + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    with stack.Stack(build) as st:
        st.get("/hello")
        st.get("/ngx/hello")
        res, secs = asyncio.run(run(st.port))
        bad = [info for ok, info in res if not ok]
        check(len(res) == N, "%d responses" % N)
        check(not bad, "every response correct; wrong: %d, e.g. %s" % (len(bad), bad[:3]))
        print("%d concurrent requests answered in %.2f s" % (N, secs))
        check_error_log(st, 200)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
