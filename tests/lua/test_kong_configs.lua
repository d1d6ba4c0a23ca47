-- The Kong stubs' configs, without nginx:
--     luajit tests/lua/test_kong_configs.lua <repo> [<build dir>]
--
-- 1. Configs from Kong's documentation and the README validate through each
--    stub's schema with Kong's rules (tests/kong_pdk_double/kong_schema_double.lua),
--    and configs Kong refuses are refused with the field named.
-- 2. What the stub sends the C plugin is exactly its schema's config fields:
--    with every key Kong 3.4-3.10 injects present (route_id, __plugin_id,
--    __ws_id, ...), none of them reaches the plugin, at any depth, and every
--    schema field present does. The snapshot carries the connection fields
--    only for correlation-id's tracker generator.
-- 3. With a build dir: shmringd agrees. Each of those configs, for a stub
--    whose C plugin declares its schema, goes through the daemon's schema
--    pass (`shmringctl schema NAME.so --config JSON`): the accepted ones
--    pass, the refused ones are refused naming the same field (Kong's
--    "@entity" and record errors: with Kong's message).
local repo, build = arg[1] or ".", arg[2]
package.path = table.concat({ repo .. "/lua/?.lua", repo .. "/tests/lua/?.lua",
                              repo .. "/tests/kong_pdk_double/?.lua", package.path }, ";")

local failures, passed = 0, 0
local function check(cond, what)
    if cond then
        passed = passed + 1
    else
        failures = failures + 1
        print("FAIL: " .. what)
    end
end

local rec = require("stub_recorders")
local schema_double = require("kong_schema_double")

local function schema_of(stub)
    return require("kong.plugins." .. stub .. ".schema")
end

-- Accepted: Kong's documentation examples for the plugin of the same name
-- (docs.konghq.com/hub/kong-inc/<name>/how-to/basic-example/ and the
-- configuration reference) and the README's table.
local ACCEPTED = {
    ["shmring-hello"] = {
        {},
        { name = "X-Hello", value = "World" },
        { value = "World", fail_open = false, timeout = 250 },
    },
    ["shmring-key-auth"] = {
        {},
        { key_names = { "apikey" } },
        { key_names = { "apikey", "x-api-key" }, hide_credentials = true, key_in_body = false,
          key_in_header = true, key_in_query = true, run_on_preflight = true },
        { key_names = { "apikey" }, hide_credentials = true,
          credentials_file = "/etc/shmring/credentials.json" },
        { anonymous = "7f3c1d2e-0000-4000-8000-0000000000aa", realm = "example" },
    },
    ["shmring-jwt"] = {
        {},
        { secret_is_base64 = false, run_on_preflight = true },
        { claims_to_verify = { "exp" }, maximum_expiration = 3600,
          credentials_file = "/etc/shmring/credentials.json" },
        { uri_param_names = { "jwt" }, cookie_names = { "jwt_cookie" },
          header_names = { "authorization" }, key_claim_name = "kid",
          claims_to_verify = { "exp", "nbf" } },
    },
    ["shmring-rate-limiting"] = {
        { minute = 5, policy = "local" },
        { second = 5, hour = 10000, policy = "local" },
        { second = 5, minute = 100, limit_by = "ip" },
        { minute = 5, limit_by = "header", header_name = "x-custom-header" },
        { minute = 5, limit_by = "path", path = "/api/v1" },
        { minute = 5, limit_by = "service" },
        { minute = 5, limit_by = "credential", hide_client_headers = true, error_code = 429,
          error_message = "API rate limit exceeded" },
        { minute = 5, policy = "redis", redis = { host = "127.0.0.1", port = 6379, timeout = 2000 } },
        { second = 10, algorithm = "token-bucket" },
        -- Kong's pre-3.6 documented form: the flat redis_* fields
        -- (shorthands, moved into the redis record), and one given under
        -- both names with the same value
        { minute = 5, policy = "redis", redis_host = "127.0.0.1", redis_port = 6380,
          redis_password = "secret", redis_timeout = 1000, redis_database = 2, redis_ssl = true,
          redis_server_name = "redis.example.com" },
        { minute = 5, policy = "redis", redis_host = "h", redis = { host = "h" } },
        -- Kong's redis.password (and redis_password) take "" (len_min = 0)
        { minute = 5, policy = "redis", redis = { host = "h", password = "" } },
        { minute = 5, policy = "redis", redis_host = "h", redis_password = "" },
    },
    ["shmring-request-transformer"] = {
        {},
        { add = { headers = { "x-added-by:shmring" } }, rename = { querystring = { "q:search" } } },
        { remove = { headers = { "x-toremove", "x-another-one" } },
          add = { headers = { "x-new-header:value", "x-another-header:something" },
                  querystring = { "new-param:some_value", "another-param:some_value" } } },
        { replace = { uri = "/new/path" } },
        { http_method = "POST", append = { headers = { "x-existing-header:some_value" } } },
    },
    ["shmring-correlation-id"] = {
        {},
        { header_name = "Kong-Request-ID", generator = "uuid#counter", echo_downstream = true },
        { header_name = "X-Request-ID", generator = "tracker", echo_downstream = false },
    },
    ["shmring-http-log"] = {
        -- docs.konghq.com http-log "Enable the plugin": the deprecated
        -- flush_timeout and retry_count as the example has them
        { http_endpoint = "http://mockbin.org/bin/:id", method = "POST", timeout = 1000,
          keepalive = 1000, flush_timeout = 2, retry_count = 15 },
        { http_endpoint = "https://user:pass@logs.example.com:8443/kong", method = "PUT",
          content_type = "application/json; charset=utf-8", headers = { ["X-Token"] = "t" },
          queue = { max_batch_size = 100, max_coalescing_delay = 5, max_retry_time = 120 } },
        { http_endpoint = "http://collector:8080/", custom_fields_by_lua = {
            service = "return nil", ["latencies.kong"] = "return 0" } },
    },
    ["shmring-log"] = {
        { path = "/tmp/file.log", reopen = true },
        { sink = "file", path = "/var/log/kong/requests.log" },
        { sink = "tcp", host = "127.0.0.1", port = 9999 },
        -- tcp-log's socket timeout and keepalive (Kong's defaults)
        { sink = "tcp", host = "127.0.0.1", port = 9999, timeout = 10000, keepalive = 60000 },
        -- tcp-log's TLS fields, a host name
        { sink = "tcp", host = "logs.example.com", port = 6514, tls = true,
          tls_sni = "logs.example.com" },
        { sink = "udp", host = "logs.example.com", port = 514, max_batch_size = 100,
          flush_interval = 0.5 },
        -- docs.konghq.com file-log "custom_fields_by_lua" (dotted keys nest)
        { path = "/tmp/file.log", custom_fields_by_lua = {
            ["my_field"] = "return kong.request.get_header('x-my-header')",
            ["request.headers.host"] = "return nil" } },
    },
}

-- Refused, with the field Kong names.
local REFUSED = {
    { "shmring-hello", { timeout = 0 }, "config.timeout", "between 1 and 60000" },
    { "shmring-hello", { value = "" }, "config.value", "length must be at least 1" },
    { "shmring-hello", { colour = "red" }, "config.colour", "unknown field" },
    { "shmring-key-auth", { key_names = { "bad header" } }, "config.key_names.1", "bad header name" },
    { "shmring-key-auth", { key_names = "apikey" }, "config.key_names", "expected an array" },
    { "shmring-key-auth", { hide_credentials = "yes" }, "config.hide_credentials", "expected a boolean" },
    { "shmring-key-auth", { consumers = { { username = "no-id" } } }, "config.consumers.1.id",
      "required field missing" },
    { "shmring-jwt", { maximum_expiration = 60, claims_to_verify = { "nbf" } },
      "config.claims_to_verify", "expected to contain: exp" },
    { "shmring-jwt", { claims_to_verify = { "iat" } }, "config.claims_to_verify.1", "expected one of" },
    { "shmring-jwt", { credentials = { { consumer = { id = "c" } } } }, "config.credentials.1.key",
      "required field missing" },
    { "shmring-rate-limiting", {}, "@entity", "at least one of these fields must be non-empty" },
    { "shmring-rate-limiting", { second = "5" }, "config.second", "expected a number" },
    { "shmring-rate-limiting", { second = 0 }, "config.second", "greater than 0" },
    { "shmring-rate-limiting", { second = 10, minute = 5 }, "config", "cannot be lower" },
    { "shmring-rate-limiting", { minute = 5, limit_by = "header" }, "config.header_name",
      "required field missing" },
    { "shmring-rate-limiting", { minute = 5, limit_by = "path", path = "no-slash" }, "config.path",
      "should start with: /" },
    { "shmring-rate-limiting", { minute = 5, policy = "redis" }, "config.redis.host",
      "required field missing" },
    { "shmring-rate-limiting", { minute = 5, limit_by = "tenant" }, "config.limit_by", "expected one of" },
    { "shmring-rate-limiting", { minute = 5, redis = { host = "h", port = 70000 } },
      "config.redis.port", "between 0 and 65535" },
    { "shmring-rate-limiting", { minute = 5, redis = { host = "h", server_name = "10.0.0.1" } },
      "config.redis.server_name", "must not be an IP" },
    { "shmring-rate-limiting", { minute = 5, redis = { host = "h", ssl = "yes" } },
      "config.redis.ssl", "expected a boolean" },
    { "shmring-request-transformer", { http_method = "post" }, "config.http_method", "invalid value" },
    { "shmring-request-transformer", { add = { headers = { "no-colon" } } }, "config.add.headers.1",
      "invalid value" },
    { "shmring-correlation-id", { generator = "random" }, "config.generator", "expected one of" },
    -- Kong 3.6+'s shorthands: refused when the new field says otherwise
    { "shmring-rate-limiting", { minute = 5, policy = "redis", redis_host = "a", redis = { host = "b" } },
      "config.redis_host", "both deprecated and new field are used but their values mismatch: "
      .. "redis_host = a vs redis.host = b" },
    { "shmring-rate-limiting", { minute = 5, policy = "redis", redis_host = "r", redis_port = 6380,
      redis = { port = 6379 } },
      "config.redis_port", "redis_port = 6380 vs redis.port = 6379" },
    { "shmring-http-log", {}, "config.http_endpoint", "required field missing" },
    { "shmring-http-log", { http_endpoint = "mockbin.org/bin" }, "config.http_endpoint",
      "missing scheme in url" },
    { "shmring-http-log", { http_endpoint = "http://x/", method = "GET" }, "config.method",
      "expected one of" },
    { "shmring-http-log", { http_endpoint = "http://x/", headers = { Host = "a" } },
      "config.headers", "cannot contain 'Host' header" },
    { "shmring-http-log", { http_endpoint = "http://u:p@x/", headers = { Authorization = "a" } },
      "config", "specifying both an 'Authorization' header and user info" },
    { "shmring-http-log", { http_endpoint = "http://x/", queue = { max_batch_size = 0 } },
      "config.queue.max_batch_size", "between 1 and 1000000" },
    -- typedefs.lua_code: the gateway's schema compiles the code (shmringd
    -- cannot: gateway_only), and neither takes empty code
    { "shmring-http-log", { http_endpoint = "http://x/", custom_fields_by_lua = { a = "return (" } },
      "config.custom_fields_by_lua.a", "Error parsing function", gateway_only = true },
    { "shmring-log", { path = "/tmp/x.log", custom_fields_by_lua = { a = "" } },
      "config.custom_fields_by_lua.a", "length must be at least 1" },
    { "shmring-correlation-id", { header_name = "" }, "config.header_name", "length must be at least 1" },
    -- Kong refuses "" for every string field unless it says len_min = 0
    { "shmring-rate-limiting", { minute = 5, error_message = "" }, "config.error_message",
      "length must be at least 1" },
    { "shmring-key-auth", { anonymous = "" }, "config.anonymous", "length must be at least 1" },
    { "shmring-log", { sink = "tcp", host = "h", port = 9, tls = true, tls_sni = "" },
      "config.tls_sni", "length must be at least 1" },
    { "shmring-http-log", { http_endpoint = "http://x/", headers = { Token = "" } },
      "config.headers.Token", "length must be at least 1" },
    { "shmring-rate-limiting", { minute = 5, policy = "" }, "config.policy", "expected one of" },
    { "shmring-log", {}, "config.path", "required field missing" },
    { "shmring-log", { sink = "tcp", port = 9 }, "config.host", "required field missing" },
    { "shmring-log", { path = "relative.log" }, "config.path", "invalid value" },
}

local function keys(t)
    local out = {}
    for k in pairs(t) do out[#out + 1] = tostring(k) end
    table.sort(out)
    return table.concat(out, ",")
end

-- 1. Validation.
local built = {}
local stubs = {}
for stub in pairs(ACCEPTED) do stubs[#stubs + 1] = stub end
table.sort(stubs)
for _, stub in ipairs(stubs) do
    for i, input in ipairs(ACCEPTED[stub]) do
        local conf, errors = schema_double.plugin_config(schema_of(stub), { config = input })
        check(conf ~= nil, stub .. " example " .. i .. " validates: "
            .. (errors and schema_double.errors_text(errors) or ""))
        if conf then
            built[#built + 1] = { stub = stub, conf = conf }
        end
    end
end
for _, r in ipairs(REFUSED) do
    local stub, input, field, msg = r[1], r[2], r[3], r[4]
    local conf, errors = schema_double.plugin_config(schema_of(stub), { config = input })
    local got = errors and errors[field]
    check(conf == nil and got ~= nil and got:find(msg, 1, true),
        stub .. " refuses " .. field .. " (" .. msg .. "); got "
        .. (errors and schema_double.errors_text(errors) or "accepted"))
end

-- Kong's defaults, nested records included (request-transformer's
-- sections are required records: their lists default to {}).
local rt = schema_double.plugin_config(schema_of("shmring-request-transformer"), { config = {} })
check(rt and type(rt.add) == "table" and type(rt.add.headers) == "table" and #rt.add.headers == 0,
      "request-transformer: required records get their defaults")
local rl = schema_double.plugin_config(schema_of("shmring-rate-limiting"),
    { config = { minute = 1, redis = { host = "r" } } })
check(rl and rl.redis.port == 6379 and rl.redis.database == 0 and rl.limit_by == "consumer"
      and rl.redis.ssl == false and rl.redis.ssl_verify == false,
      "rate-limiting: defaults of the redis record and of limit_by")
check(rl and rl.header_name == nil, "a field without default and not set is absent, as Kong hands it")

-- Kong's shorthand_fields: the flat redis_* fields land in the record,
-- defaults fill the rest, and Kong logs a deprecation for each
local n_dep = #schema_double.deprecations
local flat = schema_double.plugin_config(schema_of("shmring-rate-limiting"),
    { config = { minute = 1, policy = "redis", redis_host = "r1", redis_database = 3 } })
check(flat and flat.redis.host == "r1" and flat.redis.database == 3 and flat.redis.port == 6379,
      "rate-limiting: redis_host / redis_database moved into the redis record")
check(flat and flat.redis_host == "r1" and flat.redis_port == 6379,
      "rate-limiting: the shorthands read back from the record, as Kong's DAO hands them")
check(#schema_double.deprecations == n_dep + 2 and schema_double.deprecations[n_dep + 1]:find(
      "config.redis_host is deprecated, please use config.redis.host instead", 1, true),
      "rate-limiting: a deprecation per shorthand used")

-- no_consumer: key-auth and jwt cannot be scoped to a consumer (Kong's too).
for _, stub in ipairs({ "shmring-key-auth", "shmring-jwt" }) do
    local conf, errors = schema_double.plugin_config(schema_of(stub),
        { config = {}, consumer = { id = "c1" } })
    check(conf == nil and errors.consumer == "value must be null",
          stub .. ": consumer-scoped config refused (" .. (errors and keys(errors) or "accepted") .. ")")
end
check(schema_double.plugin_config(schema_of("shmring-rate-limiting"),
    { config = { second = 1 }, consumer = { id = "c1" } }) ~= nil,
    "rate-limiting can be scoped to a consumer, as Kong's")

-- 2. What reaches the C plugin.
local INJECTED = {
    route_id = "5b1a0000-0000-4000-8000-000000000001",
    service_id = "5b1a0000-0000-4000-8000-000000000002",
    consumer_id = "5b1a0000-0000-4000-8000-000000000003",
    plugin_instance_name = "my-instance",
    __plugin_id = "5b1a0000-0000-4000-8000-000000000004",
    __ws_id = "5b1a0000-0000-4000-8000-000000000005",
    __key__ = "plugins:x:route:service:consumer::ws",
    __seq__ = 7,
}

-- Every key of `sent` is declared in `record` (recursively), and every
-- declared key of `conf` is in `sent`.
local function same_fields(record, conf, sent, where, problems)
    local declared = {}
    for _, f in ipairs(record.fields) do
        local k, def = next(f)
        declared[k] = def
    end
    for k, v in pairs(sent) do
        local def = declared[k]
        if not def then
            problems[#problems + 1] = where .. tostring(k) .. " is not a schema field"
        elseif def.type == "record" and type(v) == "table" then
            same_fields(def, conf[k], v, where .. k .. ".", problems)
        elseif def.elements and def.elements.type == "record" then
            for i, x in ipairs(v) do
                same_fields(def.elements, conf[k][i], x, where .. k .. "." .. i .. ".", problems)
            end
        end
    end
    for k in pairs(declared) do
        if conf[k] ~= nil and sent[k] == nil then
            problems[#problems + 1] = where .. k .. " was dropped"
        end
    end
end

local function config_record(stub)
    for _, f in ipairs(schema_of(stub).fields) do
        if f.config then return f.config end
    end
end

for _, b in ipairs(built) do
    local conf = b.conf
    for k, v in pairs(INJECTED) do conf[k] = v end
    -- a nested record or credential carrying an unknown key as well
    if conf.redis then conf.redis.sentinel_role = "master" end
    local handler = require("kong.plugins." .. b.stub .. ".handler")
    if handler.access then
        local n = #rec.accesses
        handler:access(conf)
        local sent = rec.accesses[n + 1] and rec.accesses[n + 1].conf
        local problems = {}
        same_fields(config_record(b.stub), conf, sent or {}, "config.", problems)
        check(sent ~= nil and #problems == 0,
              b.stub .. ": the C plugin gets exactly the schema's fields (" .. keys(sent or {})
              .. "): " .. table.concat(problems, "; "))
        handler:access(conf)
        check(rec.accesses[n + 2].conf == sent, b.stub .. ": filtered once per config table")
        -- The connection fields go only where they are read: correlation-id
        -- with the tracker generator; every other snapshot stays as it was.
        local st = rec.accesses[n + 1].st
        local tracker = b.stub == "shmring-correlation-id" and conf.generator == "tracker"
        check(st ~= nil and (st.spec.want.connection == true) == tracker,
              b.stub .. " (generator " .. tostring(conf.generator) .. "): connection fields "
              .. (tracker and "sent" or "not sent"))
    end
end

-- The log stubs (log phase): through the same filter, with the loggers'
-- `timeout` (Kong's socket / request timeout) sent under the C plugin's
-- name for it (the client keeps `timeout` for itself on every stub).
local log_sent
package.loaded["shmring.phase"].log = function(_, conf) log_sent = conf end
for _, t in ipairs({
    { stub = "shmring-log", as = "tcp_timeout",
      config = { sink = "tcp", host = "h", port = 9, timeout = 1234, keepalive = 0,
                 custom_fields_by_lua = { a = "return 1" } } },
    { stub = "shmring-http-log", as = "http_timeout",
      config = { http_endpoint = "http://x/", timeout = 1234, headers = { ["X-A"] = "b" } } },
}) do
    log_sent = nil
    package.loaded["kong.plugins." .. t.stub .. ".handler"] = nil
    local handler = require("kong.plugins." .. t.stub .. ".handler")
    local conf = schema_double.plugin_config(schema_of(t.stub), { config = t.config })
    for k, v in pairs(INJECTED) do conf[k] = v end
    handler:log(conf)
    local expect = {}
    for k, v in pairs(conf) do expect[k] = v end
    expect[t.as], expect.timeout = conf.timeout, nil
    local record = { fields = {} }
    for _, f in ipairs(config_record(t.stub).fields) do
        local k = next(f)
        record.fields[#record.fields + 1] = k == "timeout" and { [t.as] = f[k] } or f
    end
    local problems = {}
    same_fields(record, expect, log_sent or {}, "config.", problems)
    check(log_sent ~= nil and #problems == 0 and log_sent[t.as] == 1234 and log_sent.timeout == nil,
          t.stub .. ": the schema's fields, timeout as " .. t.as .. ": "
          .. table.concat(problems, "; "))
    handler:log(conf)
    local first = log_sent
    handler:log(conf)
    check(log_sent == first, t.stub .. ": filtered once per config table")
end

-- 3. The daemon's schema pass agrees.
if build then
    local cjson = require("cjson")
    local function sh_quote(s)
        return "'" .. s:gsub("'", "'\\''") .. "'"
    end
    -- NAME.so, and for a stub served by a plugin of another name the
    -- config variant it uses.
    local function plugin_so(stub)
        local name = stub:sub(#"shmring-" + 1)
        if name == "http-log" then
            return build .. "/plugins/log.so --variant http-log"
        end
        return build .. "/plugins/" .. name .. ".so"
    end
    local function run(cmd)
        local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
        local out = p:read("*a")
        p:close()
        local text, rc = out:match("^(.-)\n?rc=(%d+)%s*$")
        return tonumber(rc), text
    end
    local ctl = build .. "/bin/shmringctl schema "
    local declared = {}
    local function declares(stub)
        if declared[stub] == nil then
            declared[stub] = run(ctl .. plugin_so(stub)) == 0
        end
        return declared[stub]
    end
    -- Not the schema pass's: the gateway's own fields (the stub keeps them),
    -- and a config record's custom_validator (Lua; conf_new refuses the
    -- same in C, which the plugin's unit test checks).
    local NOT_SCHEMA = { ["config.fail_open"] = true, ["config.timeout"] = true, config = true }
    local compared = 0
    for _, stub in ipairs(stubs) do
        for i, input in ipairs(declares(stub) and ACCEPTED[stub] or {}) do
            local rc, out = run(ctl .. plugin_so(stub) .. " --config " .. sh_quote(cjson.encode(input)))
            check(rc == 0, stub .. " example " .. i .. " passes shmringd's schema: " .. out)
            compared = compared + 1
        end
    end
    for _, r in ipairs(REFUSED) do
        local stub, input, field, msg = r[1], r[2], r[3], r[4]
        if declares(stub) and not NOT_SCHEMA[field] and not r.gateway_only then
            local rc, out = run(ctl .. plugin_so(stub) .. " --config " .. sh_quote(cjson.encode(input)))
            -- shmringd's names: config.a[1].b, unknown config field 'a.b'
            local named = out:gsub("%[(%d+)%]", ".%1"):gsub("unknown config field '", "config.")
            local names = field == "@entity" and out:find(msg, 1, true)
                or named:find(field .. "[ :']") or named:find(field .. "$")
            check(rc == 1 and names, stub .. " " .. cjson.encode(input) .. ": shmringd refuses "
                .. field .. " too; got " .. (rc == 0 and "accepted" or out))
            compared = compared + 1
        end
    end
    check(compared > 0, "configs compared with shmringd")
end

print(string.format("%d passed, %d failed", passed, failures))
os.exit(failures > 0 and 1 or 0)
