-- Routes of tests/e2e/test_kong_entities.py: shmring's key-auth and jwt
-- with no consumers of their own, so its credentials come from Kong (the PDK double's
-- database, loaded here as a declarative config and changed by the test
-- through the double's Admin API stand-in, /kong-admin/).
local double = require("kong_pdk_double")
local prefix = ngx.config.prefix()

double.declarative({
    consumers = {
        { id = "c0ffee00-0000-4000-8000-000000000001", username = "carol", custom_id = "cust-carol",
          keyauth_credentials = { { id = "c0ffee00-0000-4000-8000-0000000000c1",
                                    key = "carol-key" } },
          jwt_secrets = { { id = "c0ffee00-0000-4000-8000-0000000000d1", key = "carol-issuer",
                            algorithm = "HS256", secret = "carol-secret" } } },
        { id = "a0000000-0000-4000-8000-0000000000aa", username = "anonymous" },
    },
})

local function plugin(name, config)
    return { name = name, config = config }
end

return {
    -- Kong-sourced key-auth, then what Kong's own plugins see.
    ["ent-key-auth"] = { plugins = {
        plugin("shmring-key-auth", { hide_credentials = true }),
        plugin("native-consumer-reader", {}),
    } },
    -- ... and what Kong's own logger writes of the login
    ["ent-key-auth-log"] = { plugins = {
        plugin("shmring-key-auth", {}),
        plugin("file-log", { path = prefix .. "kong-entities-file-log.log" }),
    } },
    ["ent-key-auth-anon"] = { plugins = {
        plugin("shmring-key-auth", { anonymous = "anonymous" }),
    } },
    ["ent-jwt"] = { plugins = {
        plugin("shmring-jwt", {}),
        plugin("native-consumer-reader", {}),
    } },
}
