-- Schema of the shmring-rate-limiting Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema rate-limiting --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-rate-limiting",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { second = { type = "number", gt = 0 } },
                { minute = { type = "number", gt = 0 } },
                { hour = { type = "number", gt = 0 } },
                { day = { type = "number", gt = 0 } },
                { month = { type = "number", gt = 0 } },
                { year = { type = "number", gt = 0 } },
                { limit_by = { type = "string", default = "consumer", one_of = { "consumer", "credential", "ip", "service", "header", "path" } } },
                { header_name = typedefs.header_name },
                { path = typedefs.path },
                { policy = { type = "string", default = "local", one_of = { "local", "redis" } } },
                { algorithm = { type = "string", default = "fixed-window", one_of = { "fixed-window", "token-bucket" } } },
                { fault_tolerant = { type = "boolean", required = true, default = true } },
                { redis = { type = "record", fields = {
                    { host = typedefs.host },
                    { port = typedefs.port { default = 6379 } },
                    { username = { type = "string" } },
                    { password = { type = "string" } },
                    { database = { type = "integer", default = 0 } },
                    { timeout = { type = "integer", default = 2000, between = { 1, 600000 } } },
                    { ssl = { type = "boolean", default = false } },
                    { ssl_verify = { type = "boolean", default = false } },
                    { server_name = typedefs.sni },
                } } },
                { hide_client_headers = { type = "boolean", required = true, default = false } },
                { error_code = { type = "number", default = 429, gt = 0 } },
                { error_message = { type = "string", default = "API rate limit exceeded" } },
                { retry_after_jitter_max = { type = "number", required = true, default = 0, between = { 0, 86400 } } },
                { sync_rate = { type = "number", default = 1 } },
                { fail_open = { type = "boolean", default = true } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
            custom_validator = function(config)
                local periods = { "second", "minute", "hour", "day", "month", "year" }
                for i, lower in ipairs(periods) do
                    local v1 = config[lower]
                    for j = i + 1, #periods do
                        local v2 = config[periods[j]]
                        if type(v1) == "number" and type(v2) == "number" and v2 < v1 then
                            return nil, string.format("The limit for %s(%.1f) cannot be lower than the limit for %s(%.1f)",
                                periods[j], v2, lower, v1)
                        end
                    end
                end
                return true
            end,
        } },
    },
    entity_checks = {
        { at_least_one_of = { "config.second", "config.minute", "config.hour", "config.day", "config.month", "config.year" } },
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
