-- wrk script of bench/e2e (and of bench-hello, with no BENCH_* variable
-- set: wrk's plain GET): fixed request headers (BENCH_HEADERS, "name: value"
-- pairs separated by "|"), optionally a JWT per request from BENCH_TOKENS
-- (one token a line), the token changing every BENCH_TOKEN_EVERY requests
-- (default 10), starting at line BENCH_TOKEN_OFFSET; then one JSON line
-- with the figures bench_e2e.py records.
local headers = {}
for pair in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^|]+") do
  local k, v = pair:match("^%s*([^:]+):%s*(.*)$")
  if k then headers[k] = v end
end

local tokens, ntok = nil, 0
local every = tonumber(os.getenv("BENCH_TOKEN_EVERY") or "10")
local offset = tonumber(os.getenv("BENCH_TOKEN_OFFSET") or "0")
local path = os.getenv("BENCH_TOKENS")
if path and path ~= "" then
  tokens = {}
  for line in io.lines(path) do
    ntok = ntok + 1
    tokens[ntok] = line
  end
end

local fixed -- wrk.path is known from init() on, not at load
local n = 0

init = function(args)
  fixed = wrk.format(nil, nil, headers)
end

request = function()
  if not tokens then
    return fixed
  end
  local i = (offset + math.floor(n / every)) % ntok + 1
  n = n + 1
  headers["Authorization"] = "Bearer " .. tokens[i]
  return wrk.format(nil, nil, headers)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
