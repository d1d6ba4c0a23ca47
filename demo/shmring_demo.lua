-- The demo's configuration (keys, limits, per-route plugin configs) and the
-- glue its nginx.conf calls. Each route runs its plugins through their Kong
-- stubs (lua/kong/plugins/shmring-<plugin>/) inside the Kong PDK test
-- double (tests/kong_pdk_double/), which builds every config as Kong does:
-- validated against the stub's schema, defaults filled, Kong's own keys
-- (route_id, __plugin_id, __ws_id, ...) injected. A config Kong would refuse
-- stops nginx at start; a plugin missing from shmringd fails its route
-- (demo/run_demo.py checks every answer).
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

-- route -> its plugins (Kong stub and config, as an operator writes them).
local function one(plugin, config)
    return { plugins = { { name = "shmring-" .. plugin, config = config } } }
end

M.routes = {
    hello = one("hello", {}),
    ["hello-open"] = one("hello", { fail_open = true }),
    -- for the client tests: a deadline shorter than a slow daemon's answer
    ["hello-20ms"] = one("hello", { timeout = 20 }),
    -- Consumers inline, in the credentials format of docs/plugins.md (a
    -- `credentials_file` holding {"consumers": [...]} works the same way).
    ["key-auth"] = one("key-auth", {
        key_names = { "apikey" },
        consumers = {
            { id = "7f3c1d2e-0000-4000-8000-000000000001", username = "demo",
              keyauth_credentials = { { id = "7f3c1d2e-0000-4000-8000-00000000a001", key = "demo-key" } } },
        },
    }),
    -- HS256 secret `demo-secret` for iss `demo-issuer`, and RS256 for iss
    -- `demo-rs256` (key pair in demo/keys/, private key for signing tokens).
    jwt = one("jwt", {
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
    }),
    ["rate-limit"] = one("rate-limiting", { second = 5, minute = 100, policy = "local", limit_by = "ip" }),
    ["request-transformer"] = one("request-transformer", {
        add = { headers = { "x-added-by:shmring", 'x-client:$(headers.user_agent or "unknown")' },
                querystring = { "added:1" } },
        remove = { headers = { "x-remove-me" }, querystring = { "secret" } },
        rename = { headers = { "x-old-name:x-new-name" }, querystring = { "q:search" } },
    }),
    -- Body rules for JSON, form and multipart bodies (Kong's order:
    -- remove, rename, replace, add, append), with a template.
    ["request-transformer-body"] = one("request-transformer", {
        remove = { body = { "password" } },
        rename = { body = { "user:username" } },
        replace = { body = { "role:guest" } },
        add = { body = { "source:shmring", "client:$(headers.user_agent or \"unknown\")" } },
        append = { body = { "tags:demo" } },
    }),
    ["correlation-id"] = one("correlation-id", {
        header_name = "Kong-Request-ID", generator = "uuid", echo_downstream = true,
    }),
    -- Kong's tracker generator: "<server_addr>-<server_port>-<nginx worker
    -- pid>-<connection>-<connection_requests>-<time>".
    ["correlation-id-tracker"] = one("correlation-id", {
        header_name = "Kong-Request-ID", generator = "tracker", echo_downstream = true,
    }),
    -- One JSON line per request in the demo's run directory (the nginx
    -- prefix: DEMO_DIR, else build/demo), written by shmringd.
    log = one("log", { path = ngx.config.prefix() .. "requests.log" }),
    -- correlation-id in access, then the log plugin: the line carries the
    -- id correlation-id kept (tests/e2e/test_log.py).
    ["log-with-id"] = { plugins = {
        { name = "shmring-correlation-id",
          config = { header_name = "Kong-Request-ID", generator = "uuid", echo_downstream = true } },
        { name = "shmring-log", config = { path = ngx.config.prefix() .. "requests.log" } },
    } },
}

-- /lua/file-log: Kong's file-log in Lua (bench/baselines/kong_file_log.lua),
-- the baseline of `make bench-log`, next to /log's file.
M.lua_file_log_conf = { path = ngx.config.prefix() .. "lua-file-log.log", reopen = false }

-- The OpenResty helper's config for /ngx/hello (built once, reused).
M.ngx_conf = { value = "OpenResty", timeout = 250, fail_open = false }
-- ... for /ngx/key-auth (every header and arg written from nginx's own
-- arrays; the C plugin fills the defaults) ...
M.ngx_key_auth_conf = {
    key_names = { "apikey" }, timeout = 250, fail_open = false,
    consumers = M.routes["key-auth"].plugins[1].config.consumers,
}
-- ... for /ngx/key-auth-body (the key in the body, hidden upstream) ...
M.ngx_key_auth_body_conf = {
    key_names = { "apikey" }, key_in_body = true, hide_credentials = true, timeout = 250,
    fail_open = false, consumers = M.ngx_key_auth_conf.consumers,
}
-- ... for /ngx/request-transformer-body (the same rules as the route) ...
M.ngx_rt_body_conf = {
    remove = { body = { "password" } }, rename = { body = { "user:username" } },
    replace = { body = { "role:guest" } }, add = { body = { "source:shmring" } },
    append = { body = { "tags:demo" } }, timeout = 250, fail_open = false,
}
-- ... for /ngx/correlation-id-tracker ...
M.ngx_tracker_conf = { generator = "tracker", echo_downstream = true, timeout = 250,
                       fail_open = false }
-- ... and for /ngx/log: the log plugin without Kong (no schema: the C
-- plugin applies the defaults), with Kong's custom_fields_by_lua (run by
-- the gateway: a dotted key nests, nil removes a field).
M.ngx_log_conf = { path = ngx.config.prefix() .. "requests-ngx.log", custom_fields_by_lua = {
    ["request.k_twice"] = "return (tonumber(ngx.var.arg_k) or 0) * 2",
    ["client_ip"] = "return nil",
} }

-- /http-log: Kong's http-log to the local HTTP collector the demo starts
-- (demo/run_demo.py) on collector_port: basic auth in the URL, batches of
-- up to 10 entries (a JSON array) sent within 0.1 s.
local function http_log_route(port)
    return one("http-log", {
        http_endpoint = ("http://demo:demo-secret@127.0.0.1:%d/logs"):format(port),
        queue = { max_batch_size = 10, max_coalescing_delay = 0.1 },
    })
end

-- Register every route with the double (init_by_lua), and the routes of
-- the module named by SHMRING_KONG_ROUTES (the Kong tests' own, in
-- tests/e2e/) when set. opts.collector_port: the /http-log collector's.
function M.init(opts)
    M.routes["http-log"] = http_log_route(opts.collector_port)
    local extra = os.getenv("SHMRING_KONG_ROUTES")
    if extra and extra ~= "" then
        for name, def in pairs(require(extra)) do
            M.routes[name] = def
        end
    end
    for name, def in pairs(M.routes) do
        double.route(name, def)
    end
end

function M.init_worker()
    double.init_worker()
end

function M.access(route)
    return double.run("access", route)
end

function M.header_filter(route)
    return double.run("header_filter", route)
end

function M.log(route)
    return double.run("log", route)
end

-- lua-cjson (scripts/deps.sh installs it; the PDK double needs it too).
local json = require("cjson.safe")

-- The echo upstream's answer.
function M.echo()
    ngx.req.read_body()
    ngx.header["Content-Type"] = "application/json"
    local body = ngx.req.get_body_data()
    local file = not body and ngx.req.get_body_file()
    if file then
        local f = io.open(file, "rb")
        body = f and f:read("*a")
        if f then f:close() end
    end
    ngx.say(json.encode({
        method = ngx.req.get_method(),
        path = ngx.var.uri,
        query = ngx.req.get_uri_args(),
        headers = ngx.req.get_headers(),
        body = body, -- the request body, when there was one
    }))
end

-- Which plugins each route runs (its first C plugin as `plugin`), this
-- worker's channel and its timer-ng pool (the double's).
function M.status()
    local client = require("shmring.client")
    local routes = {}
    for name in pairs(M.routes) do
        local r = double.get_route(name)
        local list = {}
        for i, p in ipairs(r.plugins) do
            list[i] = p.name
        end
        local first = M.routes[name].plugins[1].name
        routes[name] = { plugin = (first:gsub("^shmring%-", "")), plugins = list,
                         route_id = r.route.id, service_id = r.service.id }
    end
    local ok, err = client.health()
    ngx.header["Content-Type"] = "application/json"
    ngx.say(json.encode({
        routes = routes, worker_pid = ngx.worker.pid(), channel = client.channel_index(),
        daemon = ok and "up" or err, stats = client.stats, timers = double.timers(),
    }))
end

-- ?on=0|1: this worker records the per-plugin gateway figures or not
-- (shmring.plugin_stats.enabled); answers this worker's pid, so a caller
-- can tell when every worker has been switched (the stats-cost benchmark).
function M.plugin_stats_switch()
    local plugin_stats = require("shmring.plugin_stats")
    local on = ngx.var.arg_on
    if on == "0" or on == "1" then
        plugin_stats.enabled = on == "1"
    end
    ngx.say(ngx.worker.pid(), " ", plugin_stats.enabled and "on" or "off")
end

return M
