-- Schema of the shmring-log Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema log --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-log",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { sink = { type = "string", required = true, default = "file", one_of = { "file", "tcp", "udp" } } },
                { path = { type = "string", len_min = 1, match = "^/[^?]*$" } },
                { reopen = { type = "boolean", required = true, default = false } },
                { host = { type = "string", len_min = 1 } },
                { port = { type = "integer", between = { 1, 65535 } } },
                { tls = { type = "boolean", required = true, default = false } },
                { tls_sni = { type = "string" } },
                { max_batch_size = { type = "integer", between = { 1, 1000000 } } },
                { flush_interval = { type = "number", between = { 0.001, 3600 } } },
                { max_buffered_bytes = { type = "integer", between = { 4096, 2147483648 } } },
                { custom_fields_by_lua = typedefs.lua_code },
                { fail_open = { type = "boolean", default = true } },
                { timeout = { type = "number", default = 10000 } },
                { keepalive = { type = "number", default = 60000 } },
            },
        } },
    },
    entity_checks = {
        { conditional = {
            if_field = "config.sink", if_match = { eq = "file" },
            then_field = "config.path", then_match = { required = true },
        } },
        { conditional = {
            if_field = "config.sink", if_match = { one_of = { "tcp", "udp" } },
            then_field = "config.host", then_match = { required = true },
        } },
        { conditional = {
            if_field = "config.sink", if_match = { one_of = { "tcp", "udp" } },
            then_field = "config.port", then_match = { required = true },
        } },
    },
}
