-- Schema of the shmring-key-auth Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema key-auth --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-key-auth",
    fields = {
        { consumer = typedefs.no_consumer },
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { key_names = { type = "array", required = true, default = { "apikey" }, elements = typedefs.header_name } },
                { hide_credentials = { type = "boolean", required = true, default = false } },
                { anonymous = { type = "string" } },
                { key_in_header = { type = "boolean", required = true, default = true } },
                { key_in_query = { type = "boolean", required = true, default = true } },
                { key_in_body = { type = "boolean", required = true, default = false } },
                { run_on_preflight = { type = "boolean", required = true, default = true } },
                { realm = { type = "string" } },
                { consumers = { type = "array", elements = { type = "record", fields = {
                    { id = { type = "string", required = true, len_min = 1 } },
                    { username = { type = "string", len_min = 1 } },
                    { custom_id = { type = "string", len_min = 1 } },
                    { keyauth_credentials = { type = "array", elements = { type = "record", fields = {
                        { id = { type = "string", required = true, len_min = 1 } },
                        { key = { type = "string", required = true, len_min = 1 } },
                    } } } },
                    { jwt_secrets = { type = "array", elements = { type = "record", fields = {
                        { id = { type = "string", len_min = 1 } },
                        { key = { type = "string", required = true, len_min = 1 } },
                        { algorithm = { type = "string", default = "HS256", one_of = { "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA" } } },
                        { secret = { type = "string", len_min = 1 } },
                        { rsa_public_key = { type = "string", len_min = 1 } },
                    } } } },
                } } } },
                { credentials_file = { type = "string", len_min = 1 } },
                { reload_interval_ms = { type = "integer", default = 1000, between = { 0, 3600000 } } },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
