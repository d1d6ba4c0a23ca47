-- Schema of the shmring-jwt Kong plugin: Kong's jwt fields, plus where the
-- credentials come from (no Kong database here: `consumers` / `credentials`
-- inline or a `credentials_file`, docs/plugins.md) and the verified-token
-- cache. `fail_open` and `timeout` (ms) are the gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

local strings = { type = "string" }

return {
    name = "shmring-jwt",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { uri_param_names = { type = "set", elements = strings, default = { "jwt" } } },
                { cookie_names = { type = "set", elements = strings, default = {} } },
                { header_names = { type = "set", elements = strings, default = { "authorization" } } },
                { key_claim_name = { type = "string", default = "iss" } },
                { secret_is_base64 = { type = "boolean", default = false } },
                { claims_to_verify = { type = "set",
                    elements = { type = "string", one_of = { "exp", "nbf" } } } },
                { anonymous = { type = "string" } },
                { run_on_preflight = { type = "boolean", default = true } },
                { maximum_expiration = { type = "number", default = 0, between = { 0, 31536000 } } },
                { realm = { type = "string" } },
                -- credentials
                { consumers = { type = "array", elements = { type = "map",
                    keys = { type = "string" }, values = { type = "json" } } } },
                { credentials = { type = "array", elements = { type = "map",
                    keys = { type = "string" }, values = { type = "json" } } } },
                { credentials_file = { type = "string" } },
                { reload_interval_ms = { type = "integer", default = 1000, between = { 0, 3600000 } } },
                -- verified-token cache
                { cache = { type = "boolean", default = true } },
                { cache_size = { type = "integer", default = 4096, between = { 1, 4194304 } } },
                { cache_ttl = { type = "integer", default = 300, between = { 1, 86400 } } },
                -- gateway side
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
    entity_checks = {
        { conditional = {
            if_field = "config.maximum_expiration", if_match = { gt = 0 },
            then_field = "config.claims_to_verify", then_match = { contains = "exp" },
        } },
    },
}
