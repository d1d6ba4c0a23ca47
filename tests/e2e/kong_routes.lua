-- The Kong tests' routes (tests/e2e/test_kong.py), served at /kong/<name>
-- through the PDK double: configs from Kong's documentation and the
-- README, built as Kong builds them (Kong's keys injected), and chains of
-- shmring stubs with Kong's own plugins (the double's native-auth,
-- native-consumer-reader, file-log).
local prefix = ngx.config.prefix()

local ALICE = { id = "a11ce000-0000-4000-8000-000000000001", username = "alice",
                credential_id = "a11ce000-0000-4000-8000-0000000000c1" }
local BOB = { id = "b0b00000-0000-4000-8000-000000000002", username = "bob",
              credential_id = "b0b00000-0000-4000-8000-0000000000c2" }
local DEMO = { id = "7f3c1d2e-0000-4000-8000-000000000001", username = "demo",
               keyauth_credentials = { { id = "7f3c1d2e-0000-4000-8000-00000000a001", key = "demo-key" } } }
local DEMO_JWT = { id = DEMO.id, username = "demo", jwt_secrets = {
    { id = "7f3c1d2e-0000-4000-8000-00000000b001", key = "demo-issuer", algorithm = "HS256",
      secret = "demo-secret" } } }
local ANON = { id = "a0000000-0000-4000-8000-0000000000aa", username = "anonymous" }

local native_auth = { name = "native-auth", config = { consumers = { ALICE, BOB } } }

local function plugin(name, config)
    return { name = name, config = config }
end

local function route(...)
    return { plugins = { ... } }
end

local routes = {
    -- README / Kong documentation examples, one route each
    ["doc-hello"] = route(plugin("shmring-hello", { name = "X-Hello", value = "World" })),
    ["doc-key-auth"] = route(plugin("shmring-key-auth", {
        key_names = { "apikey" }, hide_credentials = true, consumers = { DEMO } })),
    ["doc-jwt"] = route(plugin("shmring-jwt", {
        claims_to_verify = { "exp" }, maximum_expiration = 3600, consumers = { DEMO_JWT } })),
    ["doc-rate-limiting"] = route(plugin("shmring-rate-limiting", { minute = 5, policy = "local" })),
    ["doc-request-transformer"] = route(plugin("shmring-request-transformer", {
        remove = { headers = { "x-toremove", "x-another-one" } },
        add = { headers = { "x-new-header:value", "x-another-header:something" },
                querystring = { "new-param:some_value" } } })),
    ["doc-correlation-id"] = route(plugin("shmring-correlation-id", {
        header_name = "Kong-Request-ID", generator = "uuid#counter", echo_downstream = true })),
    ["doc-log"] = route(plugin("shmring-log", { path = prefix .. "kong-doc-log.log", reopen = true })),
    -- Kong's custom_fields_by_lua, run by the stub in the log phase
    ["custom-fields-log"] = route(plugin("shmring-log", { path = prefix .. "kong-custom-log.log",
        custom_fields_by_lua = {
            ["request.custom"] = "return kong.request.get_header('x-custom')",
            ["route"] = "return nil",
            ["a\\.b"] = "return { 1, 2 }",
            ["answer"] = "return 42",
            ["boom"] = "error('boom')",
            ["no_os"] = "return os.getenv('HOME')",
            ["response.status.x"] = "return 1",
        } })),

    -- a native auth, then shmring's rate-limiting by consumer / credential
    ["native-auth-rl"] = route(native_auth,
        plugin("shmring-rate-limiting", { minute = 3, limit_by = "consumer" })),
    ["native-auth-rl-cred"] = route(native_auth,
        plugin("shmring-rate-limiting", { minute = 3, limit_by = "credential" })),
    -- a native auth, then shmring's key-auth / jwt with anonymous (logical OR)
    ["native-then-key-auth"] = route(native_auth, plugin("shmring-key-auth", {
        anonymous = ANON.id, consumers = { DEMO, ANON } })),
    ["native-then-jwt"] = route(native_auth, plugin("shmring-jwt", {
        anonymous = ANON.id, consumers = { DEMO_JWT, ANON } })),
    -- a native login in shmring's log line
    ["native-auth-log"] = route(native_auth,
        plugin("shmring-log", { path = prefix .. "kong-native-log.log" })),
    -- shmring's key-auth, then what Kong's own plugins and loggers see
    ["key-auth-native-reader"] = route(
        plugin("shmring-key-auth", { consumers = { DEMO } }),
        plugin("native-consumer-reader", {}),
        plugin("file-log", { path = prefix .. "kong-file-log.log" })),
    -- correlation-id's id in Kong's own logger (set_serialize_value)
    ["correlation-file-log"] = route(
        plugin("shmring-correlation-id", { generator = "uuid", echo_downstream = true }),
        plugin("file-log", { path = prefix .. "kong-file-log.log" })),
    -- limit_by = ip behind a trusted balancer: the forwarded client counts
    ["rl-forwarded"] = route(plugin("shmring-rate-limiting", { minute = 2, limit_by = "ip" })),
}

-- Counters are keyed by where the plugin is configured, as Kong keys them:
-- limit_by = service on a service counts once for its two routes; a global
-- plugin counts one tenant once across services.
for name, service in pairs({ ["rl-service-a"] = "shared", ["rl-service-b"] = "shared",
                             ["rl-service-c"] = "other" }) do
    routes[name] = { service = service, plugins = { { name = "shmring-rate-limiting",
        scope = "service", config = { minute = 3, limit_by = "service" } } } }
end
for name, service in pairs({ ["rl-global-x"] = "x", ["rl-global-y"] = "y" }) do
    routes[name] = { service = service, plugins = { { name = "shmring-rate-limiting",
        scope = "global", config = { minute = 3, limit_by = "header", header_name = "X-Tenant" } } } }
end

return routes
