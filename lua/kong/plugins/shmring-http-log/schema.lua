-- Schema of the shmring-http-log Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema log --variant http-log --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-http-log",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { http_endpoint = typedefs.url { required = true } },
                { method = { type = "string", default = "POST", one_of = { "POST", "PUT", "PATCH" } } },
                { content_type = { type = "string", default = "application/json", one_of = { "application/json", "application/json; charset=utf-8" } } },
                { timeout = { type = "number", default = 10000 } },
                { keepalive = { type = "number", default = 60000 } },
                { retry_count = { type = "integer" } },
                { queue_size = { type = "integer" } },
                { flush_timeout = { type = "number" } },
                { headers = { type = "map", keys = typedefs.header_name { match_none = { { pattern = "^[Hh][Oo][Ss][Tt]$", err = "cannot contain 'Host' header" }, { pattern = "^[Cc][Oo][Nn][Tt][Ee][Nn][Tt]%-[Ll][Ee][Nn][Gg][Tt][Hh]$", err = "cannot contain 'Content-Length' header" }, { pattern = "^[Cc][Oo][Nn][Tt][Ee][Nn][Tt]%-[Tt][Yy][Pp][Ee]$", err = "cannot contain 'Content-Type' header" } } }, values = { type = "string" } } },
                { custom_fields_by_lua = typedefs.lua_code },
                { queue = { type = "record", required = true, fields = {
                    { max_batch_size = { type = "integer", default = 1, between = { 1, 1000000 } } },
                    { max_coalescing_delay = { type = "number", default = 1, between = { 0, 3600 } } },
                    { max_entries = { type = "integer", default = 10000, between = { 1, 1000000 } } },
                    { max_bytes = { type = "integer" } },
                    { max_retry_time = { type = "number", default = 60 } },
                    { initial_retry_delay = { type = "number", default = 0.01, between = { 0.001, 1000000 } } },
                    { max_retry_delay = { type = "number", default = 60, between = { 0.001, 1000000 } } },
                    { concurrency_limit = { type = "integer", default = 1, one_of = { -1, 1 } } },
                } } },
            },
            custom_validator = function(config)
                local authority = config.http_endpoint:match("^%a[%w+.-]*://([^/?#]*)")
                if authority and authority:find("@", 1, true) and type(config.headers) == "table" then
                    for name in pairs(config.headers) do
                        if name:lower() == "authorization" then
                            return nil, "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"
                        end
                    end
                end
                return true
            end,
        } },
    },
}
