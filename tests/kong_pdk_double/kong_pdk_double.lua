-- kong_pdk_double: a TEST DOUBLE of the small part of Kong's PDK that the
-- shmring Kong stubs call, mapped onto ngx.*. It is NOT Kong: Kong cannot
-- be installed on these machines, so the demo and the end-to-end tests run
-- the real stubs (lua/kong/plugins/shmring-*/) inside a plain nginx through
-- this double. It also provides `kong.db.schema.typedefs` (only what the
-- stub schemas use) and fills a plugin's config from its schema defaults,
-- as Kong's DAO would.
--
--   init_by_lua_block        { require("kong_pdk_double").install() }
--   init_worker_by_lua_block { require("kong_pdk_double").init_worker({"shmring-hello"}) }
--   access_by_lua_block      { require("kong_pdk_double").run("access", "shmring-hello", "route-1") }
--
-- Calls covered: kong.request.get_method/get_scheme/get_host/get_path/
-- get_header/get_headers/get_query_arg/get_query, kong.client.get_ip/
-- authenticate, kong.router.get_route, kong.service.request.set_header/
-- add_header/clear_header/set_path/set_raw_query/set_method,
-- kong.response.set_header/add_header/exit/error, kong.log.err/warn/notice/
-- info/debug/serialize, kong.ctx.plugin/shared.
local ngx = ngx
local req = ngx.req

local _M = {}

local function json_str(s)
    return '"' .. tostring(s):gsub('[%c"\\]', function(c)
        if c == '"' then return '\\"' end
        if c == "\\" then return "\\\\" end
        return string.format("\\u%04x", c:byte())
    end) .. '"'
end

local function json(v)
    local ok, cjson = pcall(require, "cjson.safe")
    if ok then
        return cjson.encode(v)
    end
    if type(v) ~= "table" then
        return json_str(v)
    end
    local out = {}
    for k, x in pairs(v) do
        out[#out + 1] = json_str(k) .. ":" .. (type(x) == "number" and tostring(x) or json_str(x))
    end
    return "{" .. table.concat(out, ",") .. "}"
end

local current_plugin = "?"

local function plugin_ctx()
    local all = ngx.ctx.__kong_double_plugin_ctx
    if not all then
        all = {}
        ngx.ctx.__kong_double_plugin_ctx = all
    end
    local name = ngx.ctx.__kong_double_current or current_plugin
    local c = all[name]
    if not c then
        c = {}
        all[name] = c
    end
    return c
end

local function log_at(level)
    return function(...)
        ngx.log(level, "[kong double] [", current_plugin, "] ", ...)
    end
end

local kong = {
    version = "double",
    request = {
        get_method = function() return req.get_method() end,
        get_scheme = function() return ngx.var.scheme end,
        get_host = function() return ngx.var.host end,
        get_path = function() return ngx.var.uri end,
        get_header = function(name)
            local v = ngx.var["http_" .. name:lower():gsub("-", "_")]
            return v
        end,
        get_headers = function() return req.get_headers() end,
        get_query_arg = function(name)
            local v = req.get_uri_args()[name]
            if type(v) == "table" then v = v[1] end
            return v
        end,
        get_query = function() return req.get_uri_args() end,
    },
    client = {
        get_ip = function() return ngx.var.remote_addr end,
        authenticate = function(consumer, credential)
            ngx.ctx.authenticated_consumer = consumer
            ngx.ctx.authenticated_credential = credential
        end,
    },
    router = {
        get_route = function() return ngx.ctx.__kong_double_route end,
    },
    service = {
        request = {
            set_header = function(n, v) req.set_header(n, v) end,
            add_header = function(n, v)
                local cur = req.get_headers()[n]
                if cur == nil then req.set_header(n, v)
                elseif type(cur) == "table" then cur[#cur + 1] = v; req.set_header(n, cur)
                else req.set_header(n, { cur, v }) end
            end,
            clear_header = function(n) req.clear_header(n) end,
            set_path = function(p) req.set_uri(p) end,
            set_raw_query = function(q) req.set_uri_args(q) end,
            set_method = function(m) req.set_method(ngx["HTTP_" .. m]) end,
        },
    },
    response = {
        set_header = function(n, v) ngx.header[n] = v end,
        add_header = function(n, v)
            local cur = ngx.header[n]
            if cur == nil then ngx.header[n] = v
            elseif type(cur) == "table" then cur[#cur + 1] = v; ngx.header[n] = cur
            else ngx.header[n] = { cur, v } end
        end,
        exit = function(status, body, headers)
            ngx.status = status
            for k, v in pairs(headers or {}) do ngx.header[k] = v end
            if type(body) == "table" then
                ngx.header["Content-Type"] = "application/json; charset=utf-8"
                body = json(body)
            end
            if body and #body > 0 then
                ngx.print(body)
                return ngx.exit(ngx.HTTP_OK)
            end
            return ngx.exit(status)
        end,
        -- Kong's kong.response.error: {"message": ...} in JSON.
        error = function(status, message)
            ngx.status = status
            ngx.header["Content-Type"] = "application/json; charset=utf-8"
            ngx.print(json({ message = message or "An unexpected error occurred" }), "\n")
            return ngx.exit(ngx.HTTP_OK)
        end,
    },
    log = {
        err = log_at(ngx.ERR), warn = log_at(ngx.WARN), notice = log_at(ngx.NOTICE),
        info = log_at(ngx.INFO), debug = log_at(ngx.DEBUG),
        -- Kong's log serializer fields (shmring.ngx builds them from ngx.*)
        -- plus the route this double runs the plugin for.
        serialize = function()
            local e = require("shmring.ngx").host.log_entry()
            e.route = ngx.ctx.__kong_double_route
            e.service = ngx.ctx.__kong_double_service
            return e
        end,
    },
    ctx = setmetatable({}, { __index = function(_, k)
        if k == "plugin" then return plugin_ctx() end
        if k == "shared" then
            local s = ngx.ctx.__kong_double_shared
            if not s then s = {}; ngx.ctx.__kong_double_shared = s end
            return s
        end
    end }),
}

-- The part of kong.db.schema.typedefs the stub schemas use.
local typedefs = {
    protocols_http = { type = "set", elements = { type = "string" },
        default = { "grpc", "grpcs", "http", "https" } },
}

function _M.install()
    _G.kong = kong
    package.loaded["kong.db.schema.typedefs"] = typedefs
end

local handlers, confs = {}, {}

local function load_plugin(name)
    local h = handlers[name]
    if not h then
        h = require("kong.plugins." .. name .. ".handler")
        handlers[name] = h
    end
    return h
end

-- The config Kong would hand the plugin: schema defaults + overrides, one
-- table per (plugin, route) for the life of the worker.
function _M.conf(name, route, overrides)
    local by_route = confs[name]
    if not by_route then
        by_route = {}
        confs[name] = by_route
    end
    local c = by_route[route or ""]
    if c then return c end
    c = {}
    local schema = require("kong.plugins." .. name .. ".schema")
    for _, f in ipairs(schema.fields) do
        if f.config then
            for _, cf in ipairs(f.config.fields) do
                local k, def = next(cf)
                if def.default ~= nil then c[k] = def.default end
            end
        end
    end
    for k, v in pairs(overrides or {}) do c[k] = v end
    by_route[route or ""] = c
    return c
end

function _M.init_worker(names)
    for _, name in ipairs(names) do
        local h = load_plugin(name)
        if h.init_worker then
            current_plugin = name
            h:init_worker()
        end
    end
end

-- Run plugin `name`'s handler for phase with the config of `route`.
function _M.run(phase, name, route, overrides)
    local h = load_plugin(name)
    local f = h[phase]
    if not f then return end
    local ctx = ngx.ctx
    if not ctx.__kong_double_route then
        ctx.__kong_double_route = { id = route or "", name = route or "" }
    end
    current_plugin = name
    ctx.__kong_double_current = name
    return f(h, _M.conf(name, route, overrides))
end

return _M
