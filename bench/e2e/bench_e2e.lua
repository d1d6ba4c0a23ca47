-- bench/e2e: one nginx, three transports per plugin (bench/README.md, "e2e").
--   shmring  the OpenResty helper's host (shmring.ngx) through shmring.phase
--            and the rings, with the snapshot narrowed to each config exactly
--            where the Kong stubs narrow theirs (jwt, rate-limiting,
--            correlation-id); key-auth and request-transformer send all
--   socket   the same phase state (same snapshot encoder, same reply
--            applier), carried by shmring.socket to shmringd --socket
--   lua      the native Lua baselines of bench/baselines/
--   lua-keycache  jwt only: the Lua baseline with its parsed RSA key kept
-- key-auth-kong is key-auth with no consumers of its own: its credential
-- comes from Kong (shmring.kong's resolver over kong.cache and the DAO of the
-- PDK double's database, tests/kong_pdk_double/kong_db_double.lua) and, warm,
-- from the daemon's entity cache; shmring transport only.
-- Every route ends in the same content handler (no upstream).
local phase = require("shmring.phase")
local plugins = require("shmring.plugins")
local ngx_host = require("shmring.ngx").host

local M = {}

-- Kong's consumers and credentials for key-auth-kong: the demo consumer in
-- the double's database, and shmring.kong's resolver over it.
local function kong_resolver()
    _G.kong = _G.kong or { client = {} }
    local db = require("kong_db_double")
    db.install(_G.kong, "bench-workspace")
    db.declarative({ consumers = { {
        id = "7f3c1d2e-0000-4000-8000-000000000001", username = "demo",
        keyauth_credentials = { { id = "7f3c1d2e-0000-4000-8000-00000000a001",
                                  key = "demo-key" } } } } })
    return require("shmring.kong").host.resolve
end

local function read(path)
    local f = assert(io.open(path, "r"))
    local s = f:read("*a")
    f:close()
    return s
end

local CONSUMER = { id = "7f3c1d2e-0000-4000-8000-000000000001", username = "demo" }

-- plugin cell -> C plugin name, config, the snapshot narrowing, baseline.
local cells = {}

function M.init(opts)
    local pub = read(opts.keys .. "/demo-rs256.pub.pem")
    local jwt_consumers = { {
        id = CONSUMER.id, username = CONSUMER.username,
        jwt_secrets = { { id = "7f3c1d2e-0000-4000-8000-00000000b002", key = "demo-rs256",
                          algorithm = "RS256", rsa_public_key = pub } },
    } }
    local function jwt_conf(cache)
        return { key_claim_name = "iss", claims_to_verify = { "exp" }, cache = cache,
                 consumers = jwt_consumers }
    end
    cells = {
        hello = { plugin = "hello", conf = { name = "X-Hello", value = "World" },
                  base = "hello" },
        ["key-auth-kong"] = { plugin = "key-auth", conf = { key_names = { "apikey" } },
                              base = "key_auth", kong = true },
        ["key-auth"] = { plugin = "key-auth", conf = {
                key_names = { "apikey" },
                consumers = { { id = CONSUMER.id, username = CONSUMER.username,
                    keyauth_credentials = { { id = "7f3c1d2e-0000-4000-8000-00000000a001",
                                              key = "demo-key" } } } },
            -- every header and arg, as the Kong stub and the helper send: the
            -- plugin detects a repeated key header, which one value per
            -- name (ngx.var) would hide
            }, base = "key_auth" },
        jwt = { plugin = "jwt", conf = jwt_conf(true), headers = { "authorization" },
                query = { "jwt" }, base = "jwt" },
        ["jwt-nocache"] = { plugin = "jwt", conf = jwt_conf(false),
                            headers = { "authorization" }, query = { "jwt" }, base = "jwt" },
        -- never limited: the cost of counting, not of refusing
        ["rate-limiting"] = { plugin = "rate-limiting",
                              conf = { second = 1000000000, minute = 1000000000,
                                       policy = "local", limit_by = "ip" },
                              headers = {}, query = {}, base = "rate_limiting" },
        ["request-transformer"] = { plugin = "request-transformer", conf = {
                add = { headers = { "x-added-by:shmring", 'x-client:$(headers.user_agent or "unknown")' },
                        querystring = { "added:1" } },
                remove = { headers = { "x-remove-me" } },
                rename = { headers = { "x-old-name:x-new-name" }, querystring = { "q:search" } },
            }, base = "request_transformer" },
        ["correlation-id"] = { plugin = "correlation-id", conf = {
                header_name = "Kong-Request-ID", generator = "uuid", echo_downstream = true },
                -- as the Kong stub: connection fields only for the tracker generator
                headers = { "kong-request-id" }, query = {}, fields = {}, base = "correlation_id" },
        log = { plugin = "log", conf = { path = opts.prefix .. "/shmring-requests.log" },
                lua_conf = { path = opts.prefix .. "/lua-requests.log" }, base = "file_log" },
    }
    -- The socket transport's log cell writes its own file.
    local socket = require("shmring.socket")
    for name, c in pairs(cells) do
        local base_spec = plugins.get(c.plugin)
        local spec = base_spec
        if c.headers then
            spec = setmetatable({ headers = c.headers, query = c.query or base_spec.query,
                                  want = c.fields and plugins.want(c.fields) },
                { __index = base_spec })
        end
        local host = ngx_host
        if c.kong then -- the same host functions, plus the resolver (no metatable)
            host = { resolve = kong_resolver() }
            for k, v in pairs(ngx_host) do
                host[k] = v
            end
        end
        c.shmring = phase.state(host, c.plugin, spec)
        c.socket = phase.state(ngx_host, c.plugin, spec, socket)
        c.socket_conf = c.plugin == "log"
            and { path = opts.prefix .. "/socket-requests.log" } or c.conf
        local b = require(c.base)
        c.lua_mod = b
        if b.new then
            c.lua = b.new(c.lua_conf or c.conf, c.plugin == "log" and ngx_host.log_entry
                or "bench_ratelimit")
        else
            c.lua = c.conf
        end
        if c.plugin == "jwt" then
            c.lua_keycache = b.new(c.conf, "keycache")
        end
        cells[name] = c
    end
end

-- PROFILE=1: /_jit?start=FILE runs LuaJIT's profiler (functions and lines
-- with the VM state: Interpreted, C, GC, JIT compiler) and the trace log
-- (aborts, NYI) into FILE until /_jit?stop=1; /_jit?stats=1 prints the
-- ring client's counters.
function M.jit_ctl()
    local args = ngx.req.get_uri_args()
    local jp, jv = require("jit.p"), require("jit.v")
    if args.stats then -- the ring client's counters (spin hits and misses...)
        ngx.print(require("cjson").encode(require("shmring.client").stats), "\n")
        return
    end
    if args.start then
        M.jit_file = args.start
        jv.on(args.start .. ".jitv")
        jp.start("vFli1m1", args.start)
    else
        jp.stop()
        jv.off()
    end
    ngx.print("ok\n")
end

function M.access(transport, name)
    local c = cells[name]
    if c.plugin == "log" then
        return -- a log-phase plugin
    end
    if transport == "shmring" then
        return phase.access(c.shmring, c.conf)
    elseif transport == "socket" then
        return phase.access(c.socket, c.socket_conf)
    end
    local f = c.lua_mod.access
    if f then
        return f(transport == "lua-keycache" and c.lua_keycache or c.lua)
    end
end

function M.header_filter(transport, name)
    local c = cells[name]
    if transport == "lua" or transport == "lua-keycache" then
        local f = c.lua_mod.header_filter
        if f then
            return f(c.lua)
        end
        return
    end
    return phase.header_filter(c[transport], c.conf)
end

function M.log(transport, name)
    local c = cells[name]
    if transport == "shmring" then
        return phase.log(c.shmring, c.conf)
    elseif transport == "socket" then
        return phase.log(c.socket, c.socket_conf)
    end
    return c.lua_mod.log(c.lua)
end

return M
