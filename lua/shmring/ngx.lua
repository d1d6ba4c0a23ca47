-- shmring.ngx: run a shmring C plugin from plain OpenResty / nginx-lua,
-- without Kong. In nginx.conf:
--
--   init_worker_by_lua_block { require("shmring.ngx").init_worker({ dir = "/dev/shm/shmring/default" }) }
--   exit_worker_by_lua_block { require("shmring.ngx").exit_worker() }
--   location / {
--       access_by_lua_block        { require("shmring.ngx").access("hello", HELLO_CONF) }
--       header_filter_by_lua_block { require("shmring.ngx").header_filter("hello", HELLO_CONF) }
--       log_by_lua_block           { require("shmring.ngx").log("log", LOG_CONF) }
--       proxy_pass http://backend;
--   }
--
-- conf is the plugin's config table plus `fail_open` and `timeout` (ms);
-- build it once (init_by_lua, a module) rather than per request: it is
-- registered with the daemon by identity (and by content as a fallback).
local ffi = require("ffi")
local client = require("shmring.client")
local phase = require("shmring.phase")
local plugins = require("shmring.plugins")

local ngx = ngx
local ngx_var = ngx.var
local req = ngx.req
local type, tostring = type, tostring

local _M = { _VERSION = "0.1.0" }

local EMPTY = {}

-- The request body, at most max bytes: from nginx's buffer, or from the
-- temporary file nginx wrote it to when it outgrew client_body_buffer_size
-- (as Kong's get_raw_body reads it with a max_allowed_file_size). nil and
-- why past max.
local function read_body(max)
    req.read_body()
    local data = req.get_body_data()
    if data then
        if #data > max then
            return nil, "request body larger than body_max (" .. max .. " bytes)"
        end
        return data
    end
    local path = req.get_body_file()
    if not path then
        return ""
    end
    local f, err = io.open(path, "rb")
    if not f then
        return nil, "failed to open cached request body: " .. tostring(err)
    end
    local size = f:seek("end") or 0
    if size > max then
        f:close()
        return nil, "request body larger than body_max (" .. max .. " bytes)"
    end
    f:seek("set")
    data = f:read("*a")
    f:close()
    return data
end

-- Header names as nginx variables ("x-api-key" -> "http_x_api_key").
local hvar = setmetatable({}, { __index = function(t, name)
    local v = "http_" .. name:lower():gsub("-", "_")
    t[name] = v
    return v
end })
local avar = setmetatable({}, { __index = function(t, name)
    local v = "arg_" .. name
    t[name] = v
    return v
end })

local LEVEL = { [0] = ngx.ERR, [1] = ngx.WARN, [2] = ngx.NOTICE, [3] = ngx.DEBUG }

local function json_escape(s)
    return (s:gsub('[%c"\\]', function(c)
        if c == '"' then return '\\"' end
        if c == "\\" then return "\\\\" end
        return string.format("\\u%04x", c:byte())
    end))
end

local floor, tonumber = math.floor, tonumber
local REDACTED = { "authorization", "proxy-authorization" }

local function log_entry()
    local v = ngx_var
    local request_uri = v.request_uri or ""
    local headers = req.get_headers()
    for i = 1, #REDACTED do
        if headers[REDACTED[i]] then
            headers[REDACTED[i]] = "REDACTED"
        end
    end
    local request_ms = floor((tonumber(v.request_time) or 0) * 1000 + 0.5)
    -- "0.002, 0.001" after retries: the first try's
    local upstream = tonumber((v.upstream_response_time or ""):match("^[%d.]+"))
    local proxy_ms = upstream and floor(upstream * 1000 + 0.5) or -1
    -- Both clocks tick in ms (nginx's cached time): keep kong >= 0.
    if proxy_ms > request_ms then
        request_ms = proxy_ms
    end
    local started = req.start_time()
    local ctx = ngx.ctx
    return {
        request = {
            method = req.get_method(), uri = request_uri,
            url = v.scheme .. "://" .. (v.host or "") .. ":" .. (v.server_port or "") .. request_uri,
            size = tonumber(v.request_length), querystring = req.get_uri_args(),
            headers = headers,
        },
        upstream_uri = v.uri .. (v.is_args or "") .. (v.args or ""),
        response = { status = ngx.status, size = tonumber(v.bytes_sent),
                     headers = ngx.resp.get_headers() },
        latencies = { request = request_ms, proxy = proxy_ms,
                      kong = proxy_ms >= 0 and request_ms - proxy_ms or request_ms },
        client_ip = v.remote_addr,
        started_at = floor(started * 1000),
        consumer = ctx.authenticated_consumer,
    }
end

-- Every request header / query arg as OpenResty's FFI hands them out (an
-- array of name/value pairs pointing into nginx's request, nginx's own
-- limit of 100 each): pointer and count, for shmring_client_put_pairs to
-- write into the snapshot with no Lua table or string in between. Only
-- inside nginx with resty.core (always there since lua-nginx-module
-- 0.10.16); elsewhere the host has no header_pairs and phase reads the
-- tables of req.get_headers() / get_uri_args().
local header_pairs, query_pairs
do
    local ok, base = pcall(require, "resty.core.base")
    if ok and ngx.config and ngx.config.subsystem == "http"
        and pcall(require, "resty.core.request") then
        local C = ffi.C
        local get_request = base.get_request
        local elts_t = ffi.typeof("ngx_http_lua_ffi_table_elt_t[?]")
        local pair_p = ffi.typeof("const struct shmring_client_ngx_pair *")
        assert(ffi.sizeof("ngx_http_lua_ffi_table_elt_t")
            == ffi.sizeof("struct shmring_client_ngx_pair")
            and ffi.offsetof("ngx_http_lua_ffi_table_elt_t", "value")
            == ffi.offsetof("struct shmring_client_ngx_pair", "value"))
        local truncated = ffi.new("int[1]")
        -- Scratch arrays, grown to the largest request seen.
        local hpairs, qpairs = { n = 0 }, { n = 0 }
        local function room(a, n)
            if n > a.n then
                a.n, a.buf = n, elts_t(n)
            end
            return a.buf
        end
        local bcap = 256
        local bbuf = ffi.new("unsigned char[?]", bcap)

        header_pairs = function()
            local r = get_request()
            local n = C.ngx_http_lua_ffi_req_get_headers_count(r, -1, truncated)
            if n <= 0 then
                return nil, 0
            end
            local buf = room(hpairs, n)
            if C.ngx_http_lua_ffi_req_get_headers(r, buf, n, 0) ~= 0 then
                return nil, 0
            end
            return ffi.cast(pair_p, buf), n
        end

        query_pairs = function()
            local r = get_request()
            local n = C.ngx_http_lua_ffi_req_get_uri_args_count(r, -1, truncated)
            if n <= 0 then
                return nil, 0
            end
            local buf = room(qpairs, n)
            -- the args are unescaped into bbuf: it must hold the query string
            local len = tonumber(C.ngx_http_lua_ffi_req_get_querystring_len(r))
            if len > bcap then
                bcap, bbuf = len, ffi.new("unsigned char[?]", len)
            end
            n = C.ngx_http_lua_ffi_req_get_uri_args(r, bbuf, buf, n)
            return ffi.cast(pair_p, buf), n > 0 and n or 0
        end
    end
end

-- The host interface of shmring.phase over ngx.*.
local host = {
    name = "ngx",
    ctx = function() return ngx.ctx end,
    method = function() return req.get_method() end,
    scheme = function() return ngx_var.scheme end,
    host = function() return ngx_var.host end,
    path = function() return ngx_var.uri end,
    client_ip = function() return ngx_var.remote_addr end,
    connection = phase.nginx_connection,
    header = function(name) return ngx_var[hvar[name]] end,
    headers = function() return req.get_headers() end,
    query_arg = function(name)
        local v = ngx_var[avar[name]]
        return v and ngx.unescape_uri(v)
    end,
    query = function() return req.get_uri_args() end,
    body = read_body,
    header_pairs = header_pairs, -- optional: every header, no Lua table
    query_pairs = query_pairs,   -- optional: every query arg, no Lua table

    set_req_header = function(n, v) req.set_header(n, v) end,
    add_req_header = function(n, v)
        local cur = req.get_headers()[n]
        if cur == nil then
            req.set_header(n, v)
        elseif type(cur) == "table" then
            cur[#cur + 1] = v
            req.set_header(n, cur)
        else
            req.set_header(n, { cur, v })
        end
    end,
    clear_req_header = function(n) req.clear_header(n) end,
    set_path = function(p) req.set_uri(p) end,
    set_query = function(q) req.set_uri_args(q) end,
    set_method = function(m)
        local id = ngx["HTTP_" .. m:upper()]
        if id then req.set_method(id) end
    end,
    -- nginx sets Content-Length to the new length
    set_body = function(b) req.set_body_data(b) end,
    set_resp_header = function(n, v) ngx.header[n] = v end,
    add_resp_header = function(n, v)
        local cur = ngx.header[n]
        if cur == nil then
            ngx.header[n] = v
        elseif type(cur) == "table" then
            cur[#cur + 1] = v
            ngx.header[n] = cur
        else
            ngx.header[n] = { cur, v }
        end
    end,
    exit = function(status, body, headers)
        ngx.status = status
        for k, v in pairs(headers or EMPTY) do
            ngx.header[k] = v
        end
        if body and #body > 0 then
            ngx.print(body)
            return ngx.exit(ngx.HTTP_OK)
        end
        return ngx.exit(status)
    end,
    authenticate = function(consumer, credential)
        ngx.ctx.authenticated_consumer = consumer
        ngx.ctx.authenticated_credential = credential
    end,
    log = function(level, msg) ngx.log(LEVEL[level] or ngx.NOTICE, "shmring plugin: ", msg) end,
    -- Like kong.response.error: a JSON {"message": ...} body.
    error_exit = function(status, message)
        ngx.status = status
        ngx.header["Content-Type"] = "application/json; charset=utf-8"
        ngx.print('{"message":"', json_escape(message), '"}\n')
        return ngx.exit(ngx.HTTP_OK)
    end,
    -- The entry of Kong's log serializer (kong/pdk/log.lua serialize), from
    -- ngx.*: same field names and units (latencies in ms; proxy -1 when
    -- nothing was proxied; authorization headers REDACTED like Kong).
    log_entry = log_entry,
    -- custom_fields_by_lua's code: the config is the operator's own Lua, so
    -- no sandbox; globals are read through _G, never written to it.
    sandbox = function(code, name)
        return assert(load(code, name, "t", setmetatable({}, { __index = _G })))
    end,
}
_M.host = host

local states = setmetatable({}, { __index = function(t, name)
    local st = phase.state(host, name, plugins.get(name))
    t[name] = st
    return st
end })

function _M.init_worker(opts)
    client.init_worker(opts)
end

function _M.exit_worker()
    client.exit_worker()
end

function _M.access(name, conf)
    return phase.access(states[name], conf or EMPTY)
end

function _M.rewrite(name, conf)
    return phase.access(states[name], conf or EMPTY, require("shmring.core").REC.REWRITE)
end

function _M.header_filter(name, conf)
    return phase.header_filter(states[name], conf or EMPTY)
end

function _M.log(name, conf)
    return phase.log(states[name], conf or EMPTY)
end

return _M
