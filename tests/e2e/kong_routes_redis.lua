-- The Redis-over-TLS test's routes (tests/e2e/test_rl_redis_tls.py), served
-- at /kong/<name> through the PDK double: Kong's documented rate-limiting
-- example with policy = redis, plus the redis record's TLS, ACL and
-- database fields. The test writes the TLS port of its redis-server to
-- <prefix>/redis-tls.port before nginx starts.
local f = assert(io.open(ngx.config.prefix() .. "redis-tls.port"))
local port = assert(tonumber(f:read("*l")))
f:close()

local function redis(overrides)
    local r = { host = "localhost", port = port, ssl = true, ssl_verify = true,
                server_name = "redis.test", username = "alice", password = "alice-secret",
                database = 3 }
    for k, v in pairs(overrides or {}) do
        r[k] = v
    end
    return r
end

local function rate_limiting(config)
    return { plugins = { { name = "shmring-rate-limiting", config = config } } }
end

return {
    -- Kong's example (config.minute=5, config.policy=redis, the redis
    -- record), synchronous as Kong's default sync_rate = -1.
    ["redis-tls"] = rate_limiting({ minute = 5, policy = "redis", sync_rate = -1,
                                    fault_tolerant = false, limit_by = "ip", redis = redis() }),
    -- the same with the certificate's name wrong: nothing is counted
    ["redis-tls-wrong-name"] = rate_limiting({ minute = 5, policy = "redis", sync_rate = -1,
                                               fault_tolerant = false, limit_by = "ip",
                                               redis = redis({ server_name = "wrong.test" }) }),
    -- shmring's token-bucket, shared through Redis the same way
    ["redis-tls-token-bucket"] = rate_limiting({ minute = 5, policy = "redis", sync_rate = -1,
                                                 algorithm = "token-bucket", limit_by = "ip",
                                                 fault_tolerant = false, redis = redis() }),
}
