-- The http-log tests' routes (tests/e2e/test_http_log.py), served at
-- /kong/<name> through the PDK double. The test writes its collectors'
-- ports to <prefix>/collectors.json before nginx starts.
local cjson = require("cjson.safe")

local f = assert(io.open(ngx.config.prefix() .. "collectors.json"))
local port = assert(cjson.decode(f:read("*a")))
f:close()

local function http_log(config)
    return { plugins = { { name = "shmring-http-log", config = config } } }
end

return {
    -- Kong's documented example (docs.konghq.com, http-log, "Enable the
    -- plugin on a service"), with basic auth in the URL: the deprecated
    -- flush_timeout and retry_count as the example has them.
    ["doc-http-log"] = http_log({
        http_endpoint = ("http://bob:s3cret@127.0.0.1:%d/bin/doc"):format(port.doc),
        method = "POST", timeout = 1000, keepalive = 1000, flush_timeout = 2, retry_count = 15 }),
    -- batches of up to 10 as a JSON array, PUT, a header of the config's
    ["http-log-batch"] = http_log({
        http_endpoint = ("http://127.0.0.1:%d/batch"):format(port.doc),
        method = "PUT", content_type = "application/json; charset=utf-8",
        headers = { ["X-Collector-Token"] = "t0ken" },
        queue = { max_batch_size = 10, max_coalescing_delay = 0.2 } }),
    -- a collector that answers 500 for a while, then 200
    ["http-log-flaky"] = http_log({
        http_endpoint = ("http://127.0.0.1:%d/flaky"):format(port.flaky),
        queue = { initial_retry_delay = 0.05, max_retry_delay = 0.5 } }),
    -- a collector that is down when the gateway starts
    ["http-log-late"] = http_log({
        http_endpoint = ("http://127.0.0.1:%d/late"):format(port.late),
        queue = { max_batch_size = 5, max_coalescing_delay = 0.05,
                  initial_retry_delay = 0.05, max_retry_delay = 0.5 } }),
    -- https (Kong's http-log does not verify the certificate either)
    ["http-log-tls"] = http_log({
        http_endpoint = ("https://localhost:%d/tls"):format(port.tls) }),
    -- tcp-log with TLS and a host name, to a line collector that is down
    -- when the gateway starts (shmring-log, sink = tcp)
    ["tcp-log-tls"] = { plugins = { { name = "shmring-log", config = {
        sink = "tcp", host = "localhost", port = port.tcp_tls, tls = true,
        tls_sni = "collector.test", flush_interval = 0.05 } } } },
    -- tcp-log's timeout: the server never speaks TLS on its first two
    -- connections
    ["tcp-log-stall"] = { plugins = { { name = "shmring-log", config = {
        sink = "tcp", host = "127.0.0.1", port = port.tcp_stall, tls = true, timeout = 300,
        flush_interval = 0.05 } } } },
    -- tcp-log's keepalive
    ["tcp-log-keepalive"] = { plugins = { { name = "shmring-log", config = {
        sink = "tcp", host = "127.0.0.1", port = port.tcp_plain, keepalive = 300,
        flush_interval = 0.05 } } } },
    -- a collector that never answers 2xx: the batch is dropped after
    -- max_retry_time, and the next one still goes out
    ["http-log-give-up"] = http_log({
        http_endpoint = ("http://127.0.0.1:%d/never"):format(port.never),
        queue = { max_retry_time = 0.3, initial_retry_delay = 0.05, max_retry_delay = 0.1 } }),
}
