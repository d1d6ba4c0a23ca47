-- The demo's configuration (keys, limits, per-route plugin configs) and the
-- glue its nginx.conf calls. Each route runs its C plugin through its Kong
-- stub (lua/kong/plugins/shmring-<plugin>/) inside the Kong PDK test double
-- (tests/kong_pdk_double/). A route whose plugin is not built yet (no
-- <plugin>.so in the build, named by SHMRING_DEMO_PLUGINS) or has no stub
-- yet runs `hello` instead; /shmring/status says which.
local double = require("kong_pdk_double")

local M = {}

-- The demo's RS256 public key (demo/keys/, next to this file).
local DEMO_RS256_PUB = (function()
    local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
    local f = io.open(dir .. "keys/demo-rs256.pub.pem", "r")
    if not f then
        return nil
    end
    local pem = f:read("*a")
    f:close()
    return pem
end)()

-- route -> the C plugin it demonstrates and that plugin's demo config.
M.routes = {
    hello = { plugin = "hello", conf = {} },
    ["hello-open"] = { plugin = "hello", conf = { fail_open = true } },
    -- for the client tests: a deadline shorter than a slow daemon's answer
    ["hello-20ms"] = { plugin = "hello", conf = { timeout = 20 } },
    -- Consumers inline, in the credentials format of docs/plugins.md (a
    -- `credentials_file` holding {"consumers": [...]} works the same way).
    ["key-auth"] = { plugin = "key-auth", conf = {
        key_names = { "apikey" },
        consumers = {
            { id = "7f3c1d2e-0000-4000-8000-000000000001", username = "demo",
              keyauth_credentials = { { id = "7f3c1d2e-0000-4000-8000-00000000a001", key = "demo-key" } } },
        },
    } },
    -- HS256 secret `demo-secret` for iss `demo-issuer`, and RS256 for iss
    -- `demo-rs256` (key pair in demo/keys/, private key for signing tokens).
    jwt = { plugin = "jwt", conf = {
        key_claim_name = "iss", claims_to_verify = { "exp" },
        consumers = {
            { id = "7f3c1d2e-0000-4000-8000-000000000001", username = "demo",
              jwt_secrets = {
                  { id = "7f3c1d2e-0000-4000-8000-00000000b001", key = "demo-issuer",
                    algorithm = "HS256", secret = "demo-secret" },
                  { id = "7f3c1d2e-0000-4000-8000-00000000b002", key = "demo-rs256",
                    algorithm = "RS256", rsa_public_key = DEMO_RS256_PUB },
              } },
        },
    } },
    ["rate-limit"] = { plugin = "rate-limiting", conf = { second = 5, minute = 100, policy = "local", limit_by = "ip" } },
    ["request-transformer"] = { plugin = "request-transformer", conf = {
        add = { headers = { "x-added-by:shmring", 'x-client:$(headers.user_agent or "unknown")' },
                querystring = { "added:1" } },
        remove = { headers = { "x-remove-me" }, querystring = { "secret" } },
        rename = { headers = { "x-old-name:x-new-name" }, querystring = { "q:search" } },
    } },
    ["correlation-id"] = { plugin = "correlation-id", conf = {
        header_name = "Kong-Request-ID", generator = "uuid", echo_downstream = true,
    } },
    -- One JSON line per request in the demo's run directory (the nginx
    -- prefix: DEMO_DIR, else build/demo), written by shmringd.
    log = { plugin = "log", conf = { path = ngx.config.prefix() .. "requests.log" } },
}

-- /lua/file-log: Kong's file-log in Lua (bench/baselines/kong_file_log.lua),
-- the baseline of `make bench-log`, next to /log's file.
M.lua_file_log_conf = { path = ngx.config.prefix() .. "lua-file-log.log", reopen = false }

-- The OpenResty helper's config for /ngx/hello (built once, reused).
M.ngx_conf = { value = "OpenResty", timeout = 250, fail_open = false }
-- ... and for /ngx/log: the log plugin without Kong (no schema: the C
-- plugin applies the defaults).
M.ngx_log_conf = { path = ngx.config.prefix() .. "requests-ngx.log" }

local resolved = {}

local function available()
    local set = {}
    for name in (os.getenv("SHMRING_DEMO_PLUGINS") or "hello"):gmatch("[^,%s]+") do
        set[name] = true
    end
    return set
end

-- Decide, per route, which stub runs (done once, in init_by_lua).
function M.init()
    local built = available()
    for route, r in pairs(M.routes) do
        local stub = "shmring-" .. r.plugin
        local has_stub = pcall(require, "kong.plugins." .. stub .. ".handler")
        if built[r.plugin] and has_stub then
            resolved[route] = { stub = stub, conf = r.conf, plugin = r.plugin, note = "" }
        else
            local why = not built[r.plugin] and (r.plugin .. ".so not built yet")
                or ("no Kong stub shmring-" .. r.plugin .. " yet")
            resolved[route] = { stub = "shmring-hello", conf = { fail_open = r.conf.fail_open },
                                plugin = "hello", note = why, wanted = r.plugin }
        end
    end
end

function M.init_worker()
    local stubs, seen = {}, {}
    for _, r in pairs(resolved) do
        if not seen[r.stub] then
            seen[r.stub] = true
            stubs[#stubs + 1] = r.stub
        end
    end
    table.sort(stubs)
    double.init_worker(stubs)
end

function M.access(route)
    local r = resolved[route]
    return double.run("access", r.stub, route, r.conf)
end

function M.header_filter(route)
    local r = resolved[route]
    return double.run("header_filter", r.stub, route, r.conf)
end

function M.log(route)
    local r = resolved[route]
    return double.run("log", r.stub, route, r.conf)
end

-- JSON: lua-cjson when installed, else a small encoder (enough for the
-- echo's and the status page's tables), so the demo runs without it.
local function encode_json(v)
    local t = type(v)
    if t == "table" then
        local n = #v
        local out = {}
        if n > 0 or next(v) == nil and getmetatable(v) == "array" then
            for i = 1, n do out[i] = encode_json(v[i]) end
            return "[" .. table.concat(out, ",") .. "]"
        end
        for k, x in pairs(v) do
            out[#out + 1] = encode_json(tostring(k)) .. ":" .. encode_json(x)
        end
        return "{" .. table.concat(out, ",") .. "}"
    elseif t == "string" then
        return '"' .. v:gsub('[%c"\\]', function(c)
            if c == '"' then return '\\"' end
            if c == "\\" then return "\\\\" end
            return string.format("\\u%04x", c:byte())
        end) .. '"'
    elseif t == "number" or t == "boolean" then
        return tostring(v)
    end
    return "null"
end
local ok_cjson, cjson_mod = pcall(require, "cjson.safe")
local json = { encode = ok_cjson and cjson_mod.encode or encode_json }
M.encode_json = encode_json

-- The echo upstream's answer.
function M.echo()
    local cjson = json
    ngx.req.read_body()
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode({
        method = ngx.req.get_method(),
        path = ngx.var.uri,
        query = ngx.req.get_uri_args(),
        headers = ngx.req.get_headers(),
    }))
end

-- Which plugin each route runs, and this worker's channel.
function M.status()
    local cjson = json
    local client = require("shmring.client")
    local routes = {}
    for route, r in pairs(resolved) do
        routes[route] = { plugin = r.plugin, wanted = r.wanted or r.plugin, note = r.note }
    end
    local ok, err = client.health()
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode({
        routes = routes, worker_pid = ngx.worker.pid(), channel = client.channel_index(),
        daemon = ok and "up" or err, stats = client.stats,
    }))
end

return M
