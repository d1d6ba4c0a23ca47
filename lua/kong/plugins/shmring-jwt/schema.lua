-- Schema of the shmring-jwt Kong plugin: Kong's jwt fields, plus optional
-- credentials of its own (`consumers` / `credentials` inline or a
-- `credentials_file`, docs/plugins.md; without them Kong's jwt secrets are
-- used) and the verified-token cache. `fail_open` and `timeout` (ms) are the
-- gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

local strings = { type = "string" }

local ALGORITHMS = { "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                     "ES512", "PS256", "PS384", "PS512", "EdDSA" }

local jwt_secret = {
    type = "record",
    fields = {
        { id = { type = "string", len_min = 1 } },
        { key = { type = "string", required = true, len_min = 1 } },
        { algorithm = { type = "string", default = "HS256", one_of = ALGORITHMS } },
        { secret = { type = "string", len_min = 1 } },
        { rsa_public_key = { type = "string", len_min = 1 } },
    },
}

-- The shared credentials format (docs/plugins.md, "Credentials").
local consumer = {
    type = "record",
    fields = {
        { id = { type = "string", required = true, len_min = 1 } },
        { username = { type = "string", len_min = 1 } },
        { custom_id = { type = "string", len_min = 1 } },
        { keyauth_credentials = { type = "array", elements = { type = "record", fields = {
            { id = { type = "string", required = true, len_min = 1 } },
            { key = { type = "string", required = true, len_min = 1 } },
        } } } },
        { jwt_secrets = { type = "array", elements = jwt_secret } },
    },
}

-- jwt's own inline form: one credential with its consumer.
local credential = {
    type = "record",
    fields = {
        { consumer = { type = "record", required = true, fields = {
            { id = { type = "string", len_min = 1 } },
            { username = { type = "string", len_min = 1 } },
            { custom_id = { type = "string", len_min = 1 } },
        } } },
        { id = { type = "string", len_min = 1 } },
        { key = { type = "string", required = true, len_min = 1 } },
        { algorithm = { type = "string", default = "HS256", one_of = ALGORITHMS } },
        { secret = { type = "string", len_min = 1 } },
        { rsa_public_key = { type = "string", len_min = 1 } },
    },
}

return {
    name = "shmring-jwt",
    fields = {
        { consumer = typedefs.no_consumer },
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
                { consumers = { type = "array", elements = consumer } },
                { credentials = { type = "array", elements = credential } },
                { credentials_file = { type = "string", len_min = 1 } },
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
