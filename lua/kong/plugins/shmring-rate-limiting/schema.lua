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
                    { password = { type = "string", len_min = 0 } },
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
            shorthand_fields = {
                { redis_host = {
                    type = "string",
                    deprecation = {
                        replaced_with = { { path = { "redis", "host" } } },
                        message = "shmring-rate-limiting: config.redis_host is deprecated, please use config.redis.host instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { host = value } }
                    end,
                } },
                { redis_port = {
                    type = "integer",
                    deprecation = {
                        replaced_with = { { path = { "redis", "port" } } },
                        message = "shmring-rate-limiting: config.redis_port is deprecated, please use config.redis.port instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { port = value } }
                    end,
                } },
                { redis_username = {
                    type = "string",
                    deprecation = {
                        replaced_with = { { path = { "redis", "username" } } },
                        message = "shmring-rate-limiting: config.redis_username is deprecated, please use config.redis.username instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { username = value } }
                    end,
                } },
                { redis_password = {
                    type = "string", len_min = 0,
                    deprecation = {
                        replaced_with = { { path = { "redis", "password" } } },
                        message = "shmring-rate-limiting: config.redis_password is deprecated, please use config.redis.password instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { password = value } }
                    end,
                } },
                { redis_database = {
                    type = "integer",
                    deprecation = {
                        replaced_with = { { path = { "redis", "database" } } },
                        message = "shmring-rate-limiting: config.redis_database is deprecated, please use config.redis.database instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { database = value } }
                    end,
                } },
                { redis_timeout = {
                    type = "integer",
                    deprecation = {
                        replaced_with = { { path = { "redis", "timeout" } } },
                        message = "shmring-rate-limiting: config.redis_timeout is deprecated, please use config.redis.timeout instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { timeout = value } }
                    end,
                } },
                { redis_ssl = {
                    type = "boolean",
                    deprecation = {
                        replaced_with = { { path = { "redis", "ssl" } } },
                        message = "shmring-rate-limiting: config.redis_ssl is deprecated, please use config.redis.ssl instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { ssl = value } }
                    end,
                } },
                { redis_ssl_verify = {
                    type = "boolean",
                    deprecation = {
                        replaced_with = { { path = { "redis", "ssl_verify" } } },
                        message = "shmring-rate-limiting: config.redis_ssl_verify is deprecated, please use config.redis.ssl_verify instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { ssl_verify = value } }
                    end,
                } },
                { redis_server_name = {
                    type = "string",
                    deprecation = {
                        replaced_with = { { path = { "redis", "server_name" } } },
                        message = "shmring-rate-limiting: config.redis_server_name is deprecated, please use config.redis.server_name instead",
                        removal_in_version = "4.0",
                    },
                    func = function(value)
                        return { redis = { server_name = value } }
                    end,
                } },
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
