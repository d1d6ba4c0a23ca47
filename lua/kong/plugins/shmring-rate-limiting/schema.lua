-- Schema of the shmring-rate-limiting Kong plugin: Kong's rate-limiting
-- fields and defaults (3.x, with the `redis` record), plus shmring's
-- `algorithm`. The C plugin checks the same rules again (at least one
-- limit, ordered limits, header_name / path when limit_by needs them).
-- `fail_open` (default true: a limiter is not worth failing a request when
-- the daemon is away) and `timeout` (ms) are the gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

local ORDERED = { "second", "minute", "hour", "day", "month", "year" }

local function validate_periods_order(config)
    local set = false
    for i, lower in ipairs(ORDERED) do
        local v = config[lower]
        if type(v) == "number" then
            set = true
            for j = i + 1, #ORDERED do
                local higher = config[ORDERED[j]]
                if type(higher) == "number" and v > higher then
                    return nil, string.format(
                        "The limit for %s(%.1f) cannot be lower than the limit for %s(%.1f)",
                        ORDERED[j], higher, lower, v)
                end
            end
        end
    end
    if not set then
        return nil, "at least one of these fields must be non-empty: 'config.second', "
            .. "'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'"
    end
    return true
end

local redis = {
    type = "record",
    fields = {
        { host = typedefs.host },
        { port = typedefs.port { default = 6379 } },
        { username = { type = "string" } },
        { password = { type = "string" } },
        { database = { type = "integer", default = 0 } },
        { timeout = { type = "integer", default = 2000, between = { 1, 600000 } } },
        { ssl = { type = "boolean", required = false, default = false } },
        { ssl_verify = { type = "boolean", required = false, default = false } },
        { server_name = typedefs.sni { required = false } },
    },
}

local function limit()
    return { type = "number", gt = 0 }
end

return {
    name = "shmring-rate-limiting",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { second = limit() }, { minute = limit() }, { hour = limit() },
                { day = limit() }, { month = limit() }, { year = limit() },
                { limit_by = { type = "string", default = "consumer",
                               one_of = { "consumer", "credential", "ip", "service", "header", "path" } } },
                { header_name = typedefs.header_name },
                { path = typedefs.path },
                { policy = { type = "string", default = "local", len_min = 0,
                             one_of = { "local", "redis" } } },
                { algorithm = { type = "string", default = "fixed-window",
                                one_of = { "fixed-window", "token-bucket" } } },
                { fault_tolerant = { type = "boolean", required = true, default = true } },
                { redis = redis },
                { hide_client_headers = { type = "boolean", required = true, default = false } },
                { error_code = { type = "number", default = 429, gt = 0 } },
                { error_message = { type = "string", default = "API rate limit exceeded" } },
                { retry_after_jitter_max = { type = "number", required = true, default = 0, between = { 0, 86400 } } },
                { sync_rate = { type = "number", default = 1 } },
                { fail_open = { type = "boolean", default = true } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
            custom_validator = validate_periods_order,
        } },
    },
    entity_checks = {
        { conditional = {
            if_field = "config.limit_by", if_match = { eq = "header" },
            then_field = "config.header_name", then_match = { required = true },
        } },
        { conditional = {
            if_field = "config.limit_by", if_match = { eq = "path" },
            then_field = "config.path", then_match = { required = true },
        } },
        { conditional = {
            if_field = "config.policy", if_match = { eq = "redis" },
            then_field = "config.redis.host", then_match = { required = true },
        } },
    },
}
