-- Schema of the shmring-jwt Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema jwt --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-jwt",
    fields = {
        { consumer = typedefs.no_consumer },
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { uri_param_names = { type = "set", default = { "jwt" }, elements = { type = "string" } } },
                { cookie_names = { type = "set", default = {}, elements = { type = "string" } } },
                { header_names = { type = "set", default = { "authorization" }, elements = { type = "string" } } },
                { key_claim_name = { type = "string", default = "iss" } },
                { secret_is_base64 = { type = "boolean", default = false } },
                { claims_to_verify = { type = "set", elements = { type = "string", one_of = { "exp", "nbf" } } } },
                { anonymous = { type = "string" } },
                { run_on_preflight = { type = "boolean", default = true } },
                { maximum_expiration = { type = "number", default = 0, between = { 0, 31536000 } } },
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
                { credentials = { type = "array", elements = { type = "record", fields = {
                    { consumer = { type = "record", required = true, fields = {
                        { id = { type = "string", len_min = 1 } },
                        { username = { type = "string", len_min = 1 } },
                        { custom_id = { type = "string", len_min = 1 } },
                    } } },
                    { id = { type = "string", len_min = 1 } },
                    { key = { type = "string", required = true, len_min = 1 } },
                    { algorithm = { type = "string", default = "HS256", one_of = { "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA" } } },
                    { secret = { type = "string", len_min = 1 } },
                    { rsa_public_key = { type = "string", len_min = 1 } },
                } } } },
                { credentials_file = { type = "string", len_min = 1 } },
                { reload_interval_ms = { type = "integer", default = 1000, between = { 0, 3600000 } } },
                { cache = { type = "boolean", default = true } },
                { cache_size = { type = "integer", default = 4096, between = { 1, 4194304 } } },
                { cache_ttl = { type = "integer", default = 300, between = { 1, 86400 } } },
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
