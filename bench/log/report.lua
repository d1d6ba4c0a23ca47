-- wrk script for bench-log. Exact request counting: each thread sends for
-- `active` seconds (the first wrk argument after --), then its request()
-- returns an empty request, so every connection goes quiet with nothing in
-- flight before wrk stops: every request written got its response, and
-- `sent` (counted here) is the number of requests nginx ran a log phase for.
-- rps is completed requests over the active window (from each thread's
-- first request). Prints one JSON line.
local ffi = require("ffi")
ffi.cdef [[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct bench_timespec *ts);
]]
local ts = ffi.new("struct bench_timespec")
local function now()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
    threads[#threads + 1] = thread
    thread:set("index", #threads)
end

local req, active, stop_at

function init(args)
    sent = 0
    active = tonumber(args[1]) or 5
    req = wrk.format()
end

local verified = false

function request()
    if index == 1 and not verified then
        -- wrk calls thread 1's request() once before starting, to check
        -- the script (script_verify_request): that one is never sent.
        verified = true
        return req
    end
    local t = now()
    if not stop_at then
        stop_at = t + active
    end
    if t >= stop_at then
        return "" -- quiet: no request in flight when wrk stops
    end
    sent = sent + 1
    return req
end

function done(summary, latency, requests)
    local total = 0
    for _, t in ipairs(threads) do
        total = total + t:get("sent")
    end
    local e = summary.errors
    io.write(string.format(
        'WRKJSON {"requests":%d,"sent":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
        '"max_us":%d,"non2xx":%d,"socket_errors":%d,"timeouts":%d}\n',
        summary.requests, total, summary.duration,
        latency:percentile(50), latency:percentile(99), latency.max,
        e.status, e.connect + e.read + e.write, e.timeout))
end
