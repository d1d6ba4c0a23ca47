-- kong_pdk_double: a TEST DOUBLE of Kong 3.4-3.10 where the shmring Kong
-- stubs touch it, mapped onto ngx.*. It is NOT Kong: Kong cannot be
-- installed on these machines, so the demo and the end-to-end tests run the
-- real stubs (lua/kong/plugins/shmring-*/) inside a plain nginx through
-- this double. Each part follows Kong's source, and is as strict as Kong
-- where the stubs could get it wrong:
--
-- * Plugin configs are built as Kong's DAO and plugins iterator build them
--   (kong/runloop/plugins_iterator.lua get_plugin_config): validated
--   against the stub's schema (kong_schema_double.lua), defaults filled,
--   then Kong's keys injected: route_id, service_id, consumer_id,
--   plugin_instance_name, __plugin_id (3.4+), __ws_id (3.9+), __key__,
--   __seq__. A config Kong would refuse stops nginx at init.
-- * Routes run their plugins in PRIORITY order (highest first), one config
--   table per (route, plugin) for the life of the worker, like Kong.
-- * PDK values have Kong's shapes (kong/pdk/*): lower-cased header names,
--   tables for repeated headers and query args, get_ip() (the connecting
--   peer, ngx.var.realip_remote_addr) apart from get_forwarded_ip() (what
--   the realip module took from a trusted X-Forwarded-For), response.error
--   with request_id and the body type from Accept (3.5+), authenticate()'s
--   argument checks, log.serialize() with Kong's top-level fields and
--   set_serialize_value().
-- * kong.db, kong.cache, kong.worker_events and kong.client.load_consumer as
--   the entity resolver uses them, with an Admin API stand-in to change
--   entities at run time: kong_db_double.lua.
-- * ngx.timer.at goes through a pool, as Kong's globalpatches route it
--   through lua-resty-timer-ng, with the original kept as
--   _G.native_timer_at; the pool counts its running jobs, so a test can see
--   a job that never ends sitting in it (timers()).
--
--   init_by_lua_block        { require("kong_pdk_double").install()
--                              require("kong_pdk_double").route("r1", { plugins = {
--                                  { name = "shmring-hello", config = {} } } }) }
--   init_worker_by_lua_block { require("kong_pdk_double").init_worker() }
--   access_by_lua_block      { require("kong_pdk_double").run("access", "r1") }
--   (header_filter_by_lua_block / log_by_lua_block likewise)
local ngx = ngx
local req = ngx.req
local schema_double = require("kong_schema_double")
local db_double = require("kong_db_double")

local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local fmt, floor = string.format, math.floor

local _M = {}

local cjson = require("cjson.safe")

-- A UUID made from a name (stable across workers and restarts).
local function uuid_of(name)
    local h = ngx.md5(name)
    return fmt("%s-%s-4%s-8%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), h:sub(18, 20),
        h:sub(21, 32))
end
_M.uuid_of = uuid_of

local WORKSPACE = { id = uuid_of("workspace:default"), name = "default" }

---------------------------------------------------------------------------
-- kong.* (kong/pdk/)

local function current_plugin()
    return ngx.ctx.__double_plugin or "?"
end

local function plugin_ctx()
    local all = ngx.ctx.__double_plugin_ctx
    if not all then
        all = {}
        ngx.ctx.__double_plugin_ctx = all
    end
    local name = current_plugin()
    local c = all[name]
    if not c then
        c = {}
        all[name] = c
    end
    return c
end

local function log_at(level)
    return function(...)
        ngx.log(level, "[kong] [", current_plugin(), "] ", ...)
    end
end

-- Kong's kong.tools.http.get_response_type: the Accept entry with the
-- highest q picks the type; JSON when nothing matches.
local MIME = {
    ["application/json"] = "application/json; charset=utf-8",
    ["text/html"] = "text/html; charset=utf-8",
    ["application/xml"] = "application/xml; charset=utf-8",
    ["text/plain"] = "text/plain; charset=utf-8",
    ["application/*"] = "application/json; charset=utf-8",
    ["text/*"] = "text/plain; charset=utf-8",
    ["*/*"] = "application/json; charset=utf-8",
}
local DEFAULT_MIME = MIME["*/*"]

local function response_type(accept)
    if type(accept) == "table" then
        accept = table.concat(accept, ",")
    end
    local best, chosen = 0, DEFAULT_MIME
    for entry in (accept or ""):gmatch("[^,]+") do
        local media = entry:match("^%s*([^;%s]+)")
        local q = tonumber(entry:match(";%s*q=([%d.]+)")) or 1
        if media and q > best then
            best = q
            chosen = MIME[media:lower()] or chosen
        end
    end
    return chosen
end

-- Kong's error templates (kong/tools/http.lua; the message is not escaped).
local ERROR_TEMPLATE = {
    [MIME["application/json"]] = '{\n  "message":"%s",\n  "request_id":"%s"\n}',
    [MIME["text/html"]] = '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n'
        .. '    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n'
        .. '    <p>%s.</p>\n    <p>request_id: %s</p>\n  </body>\n</html>\n',
    [MIME["application/xml"]] = '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n'
        .. '  <message>%s</message>\n  <requestid>%s</requestid>\n</error>\n',
    [MIME["text/plain"]] = "%s\nrequest_id: %s\n",
}

local HTTP_MESSAGE = {
    [400] = "Bad request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not found",
    [429] = "API rate limit exceeded", [500] = "An unexpected error occurred",
    [502] = "An invalid response was received from the upstream server",
    [503] = "Service unavailable", [504] = "The upstream server is timing out",
}

local METHODS = { GET = true, HEAD = true, PUT = true, POST = true, DELETE = true,
                  OPTIONS = true, MKCOL = true, COPY = true, MOVE = true, PROPFIND = true,
                  PROPPATCH = true, LOCK = true, UNLOCK = true, PATCH = true, TRACE = true }

local function check_header(name, value)
    if type(name) ~= "string" then
        error("header name must be a string", 3)
    end
    local t = type(value)
    if t ~= "string" and t ~= "number" and t ~= "boolean" and t ~= "table" then
        error(fmt("invalid header value for %q: got %s, expected string, number, boolean or "
            .. "array of strings", name, t), 3)
    end
end

-- add_header: the header's values so far, then this one.
local function with_value(current, v)
    if current == nil then
        return v
    end
    if type(current) ~= "table" then
        current = { current }
    end
    current[#current + 1] = v
    return current
end

local function send(status, body, headers)
    local ctx = ngx.ctx
    ctx.KONG_EXITED = true
    ngx.status = status
    for k, v in pairs(headers or {}) do
        ngx.header[k] = v
    end
    if body and #body > 0 then
        ngx.header["Content-Length"] = #body
        ngx.print(body)
        return ngx.exit(ngx.HTTP_OK)
    end
    return ngx.exit(status)
end

local kong = {
    version = "3.10.0",
    version_num = 3010000,
    request = {
        get_method = function() return req.get_method() end,
        get_scheme = function() return ngx.var.scheme end,
        get_host = function() return ngx.var.host end,
        get_path = function() return ngx.var.uri end,
        get_start_time = function() return req.start_time() * 1000 end,
        -- Kong: the first value; names are case-insensitive, '-' and '_' alike
        get_header = function(name)
            if type(name) ~= "string" then
                error("header name must be a string", 2)
            end
            local v = req.get_headers()[name]
            if type(v) == "table" then
                v = v[1]
            end
            return v
        end,
        -- lower-cased names, a table for a repeated header
        get_headers = function(max) return req.get_headers(max) end,
        get_query_arg = function(name)
            local v = req.get_uri_args()[name]
            if type(v) == "table" then
                v = v[1]
            end
            return v
        end,
        get_query = function(max) return req.get_uri_args(max) end,
        -- kong/pdk/request.lua: "" without a body; a body nginx buffered to
        -- a file only with max_allowed_file_size (0: any size), else nil
        -- and Kong's message.
        get_raw_body = function(max_allowed_file_size)
            req.read_body()
            local body = req.get_body_data()
            if body then
                return body
            end
            local path = req.get_body_file()
            if not path then
                return ""
            end
            if not max_allowed_file_size or max_allowed_file_size < 0 then
                return nil, "request body did not fit into client body buffer, consider raising "
                    .. "'client_body_buffer_size'"
            end
            local f, err = io.open(path, "r")
            if not f then
                return nil, "failed to open cached request body '" .. path .. "': " .. err
            end
            local size = f:seek("end") or 0
            if max_allowed_file_size > 0 and size > max_allowed_file_size then
                f:close()
                return nil, fmt("request body file too big: %d > %d", size, max_allowed_file_size)
            end
            f:seek("set")
            body = f:read("*a")
            f:close()
            return body
        end,
    },
    client = {
        get_ip = function() return ngx.var.realip_remote_addr or ngx.var.remote_addr end,
        get_forwarded_ip = function() return ngx.var.remote_addr end,
        -- kong/pdk/client.lua: tables or nil, not both nil.
        authenticate = function(consumer, credential)
            if consumer ~= nil and type(consumer) ~= "table" then
                error("consumer must be a table or nil", 2)
            end
            if credential ~= nil and type(credential) ~= "table" then
                error("credential must be a table or nil", 2)
            end
            if consumer == nil and credential == nil then
                error("either credential or consumer must be provided", 2)
            end
            local ctx = ngx.ctx
            ctx.authenticated_consumer = consumer
            ctx.authenticated_credential = credential
        end,
        get_consumer = function() return ngx.ctx.authenticated_consumer end,
        get_credential = function() return ngx.ctx.authenticated_credential end,
    },
    router = {
        get_route = function() return ngx.ctx.route end,
        get_service = function() return ngx.ctx.service end,
    },
    service = {
        request = {
            set_header = function(n, v)
                check_header(n, v)
                req.set_header(n, v)
            end,
            add_header = function(n, v)
                check_header(n, v)
                req.set_header(n, with_value(req.get_headers()[n], v))
            end,
            clear_header = function(n) req.clear_header(n) end,
            set_path = function(p)
                if type(p) ~= "string" or p:sub(1, 1) ~= "/" then
                    error("path must start with /", 2)
                end
                req.set_uri(p)
            end,
            -- kong/pdk/service/request.lua: a string; nginx sets
            -- Content-Length.
            set_raw_body = function(b)
                if type(b) ~= "string" then
                    error("body must be a string", 2)
                end
                req.read_body()
                req.set_body_data(b)
            end,
            set_raw_query = function(q)
                if type(q) ~= "string" then
                    error("query must be a string", 2)
                end
                req.set_uri_args(q)
            end,
            set_method = function(m)
                if not METHODS[m] then
                    error("invalid method: " .. tostring(m), 2)
                end
                req.set_method(ngx["HTTP_" .. m])
            end,
        },
    },
    response = {
        set_header = function(n, v)
            check_header(n, v)
            ngx.header[n] = v
        end,
        add_header = function(n, v)
            check_header(n, v)
            ngx.header[n] = with_value(ngx.header[n], v)
        end,
        exit = function(status, body, headers)
            if type(status) ~= "number" or status < 100 or status > 599 then
                error("code must be a number between 100 and 599", 2)
            end
            if body ~= nil and type(body) ~= "string" and type(body) ~= "table" then
                error("body must be a nil, string or table", 2)
            end
            headers = headers or {}
            if type(body) == "table" then
                body = cjson.encode(body)
                headers["Content-Type"] = "application/json; charset=utf-8"
            end
            return send(status, body, headers)
        end,
        -- Kong 3.5+: the body type from Accept, the request id in the body.
        error = function(status, message, headers)
            if type(status) ~= "number" or status < 400 or status > 599 then
                error("code must be a number between 400 and 599", 2)
            end
            if type(message) == "table" then
                message = cjson.encode(message)
            end
            if message ~= nil and type(message) ~= "string" then
                error("message must be a nil, a string or a table", 2)
            end
            headers = headers or {}
            local ct = headers["Content-Type"]
            if ct == nil then
                ct = response_type(req.get_headers()["accept"])
                headers["Content-Type"] = ct
            end
            local template = ERROR_TEMPLATE[ct] or ERROR_TEMPLATE[DEFAULT_MIME]
            local body = fmt(template, message or HTTP_MESSAGE[status] or "An unexpected error occurred",
                ngx.var.request_id or "")
            return send(status, body, headers)
        end,
    },
    log = {
        err = log_at(ngx.ERR), warn = log_at(ngx.WARN), notice = log_at(ngx.NOTICE),
        info = log_at(ngx.INFO), debug = log_at(ngx.DEBUG),
        set_serialize_value = function(key, value)
            if type(key) ~= "string" then
                error("key must be a string", 2)
            end
            local ctx = ngx.ctx
            local values = ctx.serialize_values or {}
            values[#values + 1] = { key = key, value = value }
            ctx.serialize_values = values
        end,
    },
    ctx = setmetatable({}, { __index = function(_, k)
        if k == "plugin" then
            return plugin_ctx()
        end
        if k == "shared" then
            local s = ngx.ctx.__double_shared
            if not s then
                s = {}
                ngx.ctx.__double_shared = s
            end
            return s
        end
    end }),
}

-- kong.log.serialize: Kong's top-level fields (kong/pdk/log.lua, http).
local REDACTED = { "authorization", "proxy-authorization" }

function kong.log.serialize()
    local v, ctx = ngx.var, ngx.ctx
    local headers = req.get_headers()
    for _, h in ipairs(REDACTED) do
        if headers[h] ~= nil then
            headers[h] = "REDACTED"
        end
    end
    local request_uri = v.request_uri or ""
    local upstream_ms = tonumber((v.upstream_response_time or ""):match("^[%d.]+"))
    local request_ms = floor((tonumber(v.request_time) or 0) * 1000 + 0.5)
    local consumer = ctx.authenticated_consumer
    local credential = ctx.authenticated_credential
    local root = {
        request = {
            id = v.request_id or "",
            uri = request_uri,
            url = v.scheme .. "://" .. v.host .. ":" .. v.server_port .. request_uri,
            querystring = req.get_uri_args(),
            method = req.get_method(),
            headers = headers,
            size = tonumber(v.request_length),
        },
        upstream_uri = v.uri .. (v.is_args or "") .. (v.args or ""),
        upstream_status = v.upstream_status or "",
        response = { status = ngx.status, headers = ngx.resp.get_headers(),
                     size = tonumber(v.bytes_sent) },
        latencies = {
            kong = floor(upstream_ms and math.max(0, request_ms - upstream_ms * 1000) or request_ms),
            proxy = upstream_ms and floor(upstream_ms * 1000 + 0.5) or -1,
            request = request_ms,
            receive = 0,
        },
        tries = upstream_ms and { { ip = "127.0.0.1", balancer_latency = 0 } } or nil,
        authenticated_entity = credential and { id = credential.id,
                                                consumer_id = credential.consumer
                                                    and credential.consumer.id } or nil,
        route = ctx.route,
        service = ctx.service,
        consumer = consumer,
        client_ip = v.remote_addr,
        started_at = req.start_time() * 1000,
        source = ctx.KONG_EXITED and "exit" or (upstream_ms and "upstream" or "kong"),
        workspace = WORKSPACE.id,
        workspace_name = WORKSPACE.name,
    }
    for _, item in ipairs(ctx.serialize_values or {}) do
        local t, key = root, item.key
        for part, rest in key:gmatch("([^%.]+)(%.?)") do
            if rest == "" then
                t[part] = item.value
            else
                t[part] = type(t[part]) == "table" and t[part] or {}
                t = t[part]
            end
        end
    end
    return root
end

---------------------------------------------------------------------------
-- ngx.timer.at through a pool (kong/globalpatches.lua, lua-resty-timer-ng).

local timer_stats = { running = 0, started = 0 }

local function install_timers()
    if rawget(_G, "native_timer_at") then
        return
    end
    local native = ngx.timer.at
    _G.native_timer_at = native
    ngx.timer.at = function(delay, callback, ...)
        if type(callback) ~= "function" then
            error("callback must be a function", 2)
        end
        return native(delay, function(premature, ...)
            timer_stats.started = timer_stats.started + 1
            timer_stats.running = timer_stats.running + 1
            local ok, err = pcall(callback, premature, ...)
            timer_stats.running = timer_stats.running - 1
            if not ok then
                ngx.log(ngx.ERR, "[timer-ng] job failed: ", err)
            end
        end, ...)
    end
end

-- This worker's pool: jobs started through ngx.timer.at, and how many of
-- them are running now.
function _M.timers()
    return { running = timer_stats.running, started = timer_stats.started }
end

---------------------------------------------------------------------------
-- Routes, services and plugin configs.

local routes = {}   -- name -> { route, service, plugins = { {name, handler, conf}... } }
local handlers = {} -- plugin name -> handler table
local shared_confs = {} -- service / global plugins: one config for all their routes
local seq = 0       -- __seq__ (Kong's is a shared-dict counter; one per config here)

local function load_handler(name)
    local h = handlers[name]
    if not h then
        h = require("kong.plugins." .. name .. ".handler")
        handlers[name] = h
    end
    return h
end

-- The config table Kong's plugins iterator hands the handler: the
-- schema-processed config plus the keys Kong injects. Returns nil and a
-- message naming the fields when Kong would refuse the config.
function _M.plugin_config(name, input, scope)
    scope = scope or {}
    local schema = require("kong.plugins." .. name .. ".schema")
    local conf, errors = schema_double.plugin_config(schema, {
        config = input, consumer = scope.consumer,
    })
    if not conf then
        return nil, name .. ": " .. schema_double.errors_text(errors)
    end
    local route_id = scope.route and scope.route.id
    local service_id = scope.service and scope.service.id
    local consumer_id = scope.consumer and scope.consumer.id
    conf.route_id = route_id
    conf.service_id = service_id
    conf.consumer_id = consumer_id
    conf.plugin_instance_name = scope.instance_name or (name .. "-" .. (route_id or "global"))
    conf.__plugin_id = uuid_of("plugin:" .. name .. ":" .. tostring(route_id))
    conf.__ws_id = WORKSPACE.id
    conf.__key__ = fmt("plugins:%s:%s:%s:%s::%s", name, route_id or "", service_id or "",
        consumer_id or "", WORKSPACE.id)
    seq = seq + 1
    conf.__seq__ = seq
    return conf
end

-- Declare route `name`: def = { service = "svc" (default: the route's
-- own), plugins = { { name = "shmring-x", config = {...},
-- scope = nil (on the route) | "service" | "global" }, ... } }. Raises
-- when a config does not validate, as Kong's Admin API would refuse it.
function _M.route(name, def)
    local service_name = def.service or name
    local route = { id = uuid_of("route:" .. name), name = name, protocols = { "http", "https" },
                    paths = def.paths or { "/" .. name }, ws_id = WORKSPACE.id }
    local service = { id = uuid_of("service:" .. service_name), name = service_name,
                      protocol = "http", host = "127.0.0.1", port = 80, ws_id = WORKSPACE.id }
    route.service = { id = service.id }
    local list = {}
    for _, p in ipairs(def.plugins) do
        -- A plugin on the service or global: one config table for every
        -- route it applies to, without route_id (and service_id), as Kong.
        local shared = p.scope == "service" and ("service:" .. service_name .. ":" .. p.name)
            or p.scope == "global" and ("global:" .. p.name)
        local conf, err = shared and shared_confs[shared]
        if not conf then
            conf, err = _M.plugin_config(p.name, p.config or {}, {
                route = not p.scope and route or nil,
                service = p.scope ~= "global" and service or nil,
            })
            if not conf then
                error("kong double: route " .. name .. ": " .. err, 2)
            end
            if shared then
                shared_confs[shared] = conf
            end
        end
        list[#list + 1] = { name = p.name, handler = load_handler(p.name), conf = conf }
    end
    -- Kong runs plugins by PRIORITY, highest first.
    table.sort(list, function(a, b)
        return (a.handler.PRIORITY or 0) > (b.handler.PRIORITY or 0)
    end)
    routes[name] = { route = route, service = service, plugins = list }
    return routes[name]
end

function _M.get_route(name)
    return routes[name]
end

function _M.install()
    _G.kong = kong
    schema_double.install()
    install_timers()
    db_double.install(kong, WORKSPACE.id)
end

-- Load a declarative config (kong.yml's consumers with their
-- keyauth_credentials and jwt_secrets) as the double's database.
_M.declarative = function(config) return db_double.declarative(config) end

-- init_worker of every plugin used by a route, once each.
function _M.init_worker()
    db_double.init_worker()
    local done = {}
    for _, r in pairs(routes) do
        for _, p in ipairs(r.plugins) do
            if not done[p.name] and p.handler.init_worker then
                done[p.name] = true
                ngx.ctx.__double_plugin = p.name
                p.handler:init_worker()
            end
        end
    end
end

-- Run `phase` of every plugin of route `name`, in order, as Kong's runloop
-- does (an exit ends the phase: ngx.exit does not return).
function _M.run(phase, name)
    local r = routes[name]
    if not r then
        error("kong double: no route " .. tostring(name), 2)
    end
    local ctx = ngx.ctx
    ctx.route, ctx.service = r.route, r.service
    -- Kong's traditional router: a regex path ("~...") that matched with a
    -- capture leaves ngx.re.match's table (whole match at [0], numbered and
    -- named groups) in router_matches.uri_captures.
    local path = r.route.paths[1]
    if phase == "access" and not ctx.router_matches and path:sub(1, 1) == "~" then
        local m = ngx.re.match(ngx.var.uri, path:sub(2), "jo")
        ctx.router_matches = { uri_captures = m and m[1] ~= nil and m or nil }
    end
    for _, p in ipairs(r.plugins) do
        local f = p.handler[phase]
        if f then
            ctx.__double_plugin = p.name
            f(p.handler, p.conf)
            if ctx.KONG_EXITED and phase == "access" then
                return
            end
        end
    end
end

return _M
