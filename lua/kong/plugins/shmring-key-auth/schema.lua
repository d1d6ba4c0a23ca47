-- Schema of the shmring-key-auth Kong plugin: Kong's key-auth fields, plus
-- optional consumers of its own (inline, or `credentials_file`; format in
-- docs/plugins.md, "Credentials"); without them Kong's consumers and
-- key-auth credentials are used. `fail_open` and `timeout` (ms) are the
-- gateway side's policy (auth fails closed).
local typedefs = require("kong.db.schema.typedefs")

local keyauth_credential = {
    type = "record",
    fields = {
        { id = { type = "string", required = true, len_min = 1 } },
        { key = { type = "string", required = true, len_min = 1 } },
    },
}

local consumer = {
    type = "record",
    fields = {
        { id = { type = "string", required = true, len_min = 1 } },
        { username = { type = "string", len_min = 1 } },
        { custom_id = { type = "string", len_min = 1 } },
        { keyauth_credentials = { type = "array", elements = keyauth_credential } },
    },
}

return {
    name = "shmring-key-auth",
    fields = {
        { consumer = typedefs.no_consumer },
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { key_names = { type = "array", required = true, default = { "apikey" },
                                elements = typedefs.header_name } },
                { hide_credentials = { type = "boolean", required = true, default = false } },
                { anonymous = { type = "string" } },
                { key_in_header = { type = "boolean", required = true, default = true } },
                { key_in_query = { type = "boolean", required = true, default = true } },
                -- Kept for config compatibility; true is refused (no body in the snapshot).
                { key_in_body = { type = "boolean", required = true, default = false } },
                { run_on_preflight = { type = "boolean", required = true, default = true } },
                { realm = { type = "string" } },
                { consumers = { type = "array", elements = consumer } },
                { credentials_file = { type = "string", len_min = 1 } },
                { reload_interval_ms = { type = "integer", default = 1000, between = { 0, 3600000 } } },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
