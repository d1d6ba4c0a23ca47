"""e2e: rate-limiting through its Kong stub (PDK double) on the real
shmringd, via the demo route /rate-limit (demo/shmring_demo.lua: 5 per
second and 100 per minute, limit_by ip; every request here comes from
127.0.0.1, so they all share one counter). Two nginx workers on two
channels served by two daemon workers: the limit holds across them.

A check needs its requests inside one UTC second: each round starts just
after a second begins and is only judged if it also ended within it (a
loaded machine may need another round; the rounds stay far below the
minute's 100). A part whose rounds never fit in a second is not judged, but
the other part and the error-log check still run; the program then exits
77 ("skipped") naming what was left out, unless a check failed."""
import json
import mmap
import os
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, skip, skip_unless_ready  # noqa: E402

ROUNDS = 4


def start_of_next_second():
    """Sleep until just after the next second boundary; returns that second."""
    now = time.time()
    nxt = int(now) + 1
    time.sleep(nxt - now + 0.005)
    return nxt


def sequential_round(st):
    sec = start_of_next_second()
    got = [st.get("/rate-limit?i=%d" % i) for i in range(6)]
    if time.time() >= sec + 1:
        return None
    return got


def sequential(st):
    """Returns None once judged, or why no round could be judged."""
    for _ in range(ROUNDS):
        got = sequential_round(st)
        if got is None:
            continue
        for i, (status, hdrs, _) in enumerate(got[:5]):
            check(status == 200, "request %d of the second passes (got %d)" % (i + 1, status))
            check(hdrs.get("x-ratelimit-limit-second") == "5"
                  and hdrs.get("x-ratelimit-limit-minute") == "100",
                  "X-RateLimit-Limit-Second/Minute: 5/100 (got %s)" % hdrs)
            check(hdrs.get("x-ratelimit-remaining-second") == str(4 - i),
                  "X-RateLimit-Remaining-Second counts down: %d (got %s)"
                  % (4 - i, hdrs.get("x-ratelimit-remaining-second")))
            check(hdrs.get("ratelimit-limit") == "5" and hdrs.get("ratelimit-remaining") == str(4 - i)
                  and hdrs.get("ratelimit-reset") == "1",
                  "RateLimit-* follow the second (got %s)" % hdrs)
            check("retry-after" not in hdrs, "no Retry-After on a pass")
        status, hdrs, body = got[5]
        check(status == 429, "the 6th request of the second is refused (got %d)" % status)
        b = json.loads(body)
        check(b.get("message") == "API rate limit exceeded" and len(b.get("request_id", "")) == 32,
              "Kong 3.5+'s kong.response.error body (got %r)" % body)
        check(hdrs.get("retry-after") == "1", "Retry-After: 1 (got %r)" % hdrs.get("retry-after"))
        check(hdrs.get("x-ratelimit-remaining-second") == "0"
              and hdrs.get("ratelimit-remaining") == "0",
              "remaining 0 on the block (got %s)" % hdrs)
        check(hdrs.get("content-type", "").startswith("application/json"), "JSON content type")
        return None
    return "no round of 6 requests fit in one second in %d tries (machine too loaded)" % ROUNDS


def concurrent(st, n=12):
    """n requests at once on n connections (both nginx workers, so both
    channels and both daemon workers): exactly 5 pass in the second.
    Returns None once judged, or why no round could be judged."""
    for _ in range(ROUNDS):
        results = [None] * n
        barrier = threading.Barrier(n)

        def one(i):
            barrier.wait()
            results[i] = st.get("/rate-limit?c=%d" % i)

        sec = start_of_next_second()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if time.time() >= sec + 1:
            continue
        statuses = sorted(r[0] for r in results)
        check(statuses.count(200) == 5 and statuses.count(429) == n - 5,
              "%d concurrent requests in one second: exactly 5 pass (got %s)" % (n, statuses))
        left = sorted(r[1].get("x-ratelimit-remaining-second") for r in results if r[0] == 200)
        check(left == ["0", "1", "2", "3", "4"],
              "each pass saw its own remaining count (got %s)" % left)
        return None
    return "no concurrent round fit in one second in %d tries" % ROUNDS


RL_EPOCH = 1577836800  # plugins/rate-limiting/rl_table.h


def fill_table(st, key, state):
    """Write {key, state} into every slot of the shared counter table
    (layout: plugins/rate-limiting/rl_table.h: a 64-byte header, then
    buckets of {lock, pad, 7 x {key, state}})."""
    path = os.path.join(st.shm_dir, "plugin-rate-limiting-v2.shm")
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 0)
        nb = (len(mm) - 64) // 128
        mm[64:] = (struct.pack("<QQ", 0, 0) + struct.pack("<QQ", key, state) * 7) * nb
        mm.close()


def exhausted_total(st):
    ctl = os.path.join(st.build, "bin", "shmringctl")
    out = subprocess.run([ctl, "--shm-dir", st.shm_dir, "stats", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return sum(p.get("exhausted", 0) for w in json.loads(out)["workers"]
               for p in w.get("plugins", []) if p["name"] == "rate-limiting")


def full_table(st):
    """Every slot live (windows that end in an hour): the request is let
    through (fault_tolerant) uncounted, and the exhaustion shows in
    shmringctl stats and the metrics. Once those windows have ended, the
    slots are reclaimed and requests are counted again."""
    before = exhausted_total(st)
    now_rel = int(time.time()) - RL_EPOCH
    fill_table(st, 4, (now_rel + 3600) << 32 | 1)
    status, hdrs, _ = st.get("/rate-limit?full=1")
    check(status == 200 and "x-ratelimit-remaining-second" not in hdrs,
          "full table: let through uncounted (fault_tolerant) (got %d %s)" % (status, hdrs))
    check(exhausted_total(st) == before + 1,
          "shmringctl stats --json counts the exhaustion (%d -> %d)" % (before, exhausted_total(st)))
    ctl = os.path.join(st.build, "bin", "shmringctl")
    text = subprocess.run([ctl, "--shm-dir", st.shm_dir, "stats"], capture_output=True,
                          text=True, check=True).stdout
    check("exhausted" in text, "shmringctl stats shows an exhausted column")
    _, _, body = st.get("/shmring/metrics")
    line = [l for l in body.decode().splitlines()
            if l.startswith('shmring_plugin_exhausted_total{plugin="rate-limiting"}')]
    check(line and int(line[0].split()[-1]) == before + 1,
          "the metrics count the exhaustion (got %s)" % line)
    fill_table(st, 4, (now_rel - 5) << 32 | 1)
    status, hdrs, _ = st.get("/rate-limit?full=2")
    check(status == 200 and hdrs.get("x-ratelimit-remaining-second") is not None,
          "expired windows reclaimed: counted again (got %d %s)" % (status, hdrs))
    check(exhausted_total(st) == before + 1, "no exhaustion once reclaimed")
    fill_table(st, 0, 0)


def main(build):
    skip_unless_ready(build)
    if "rate-limiting" not in stack.built_plugins(build):
        skip("not built: rate-limiting")
    with stack.Stack(build) as st:
        _, _, info = st.get_json("/shmring/status")
        r = info["routes"]["rate-limit"]
        check(r["plugin"] == "rate-limiting",
              "/rate-limit runs rate-limiting (%s)" % r)
        not_judged = [why for why in (sequential(st), concurrent(st)) if why]
        full_table(st)
        check_error_log(st)
    if not_judged:
        skip("; ".join(not_judged) + " (every other check passed)")
    done()


if __name__ == "__main__":
    main(sys.argv[1])
