-- shmring.phase: what every host (shmring.ngx for plain OpenResty,
-- shmring.kong for Kong's PDK) does in a phase, written once:
--   snapshot of what the plugin declared -> shmring.client.call -> apply
--   the reply's actions with the host's own calls, or apply the plugin's
--   failure policy.
--
-- A host is a table of small functions (see shmring/ngx.lua for the full
-- list): readers (method, path, header, ...), appliers (set_req_header,
-- exit, ...) and error_exit(status, message). Per-request state of the
-- gateway side (response headers to set later, SET_CTX values, consumer)
-- lives in ngx.ctx under shmring_* keys, shared by every shmring plugin of
-- the request: the header_filter of whichever runs first sets them all.
local ffi = require("ffi")
local core = require("shmring.core")
local client = require("shmring.client")
local plugins = require("shmring.plugins")
local entities = require("shmring.entities")
local plugin_stats = require("shmring.plugin_stats")
local custom_fields = require("shmring.custom_fields")

local ngx = ngx
local ngx_log, ERR = ngx.log, ngx.ERR
local ngx_now = ngx.now
local ffi_string = ffi.string
local type, pairs, setmetatable = type, pairs, setmetatable
local REC, ACT = core.REC, core.ACT
local count, observe = plugin_stats.count, plugin_stats.observe

local _M = {}

_M.log_interval = 10 -- seconds between two "skipped (fail_open)" lines per plugin and cause

local C -- library, once loaded by the client

local function str(s)
    return ffi_string(s.ptr, s.len)
end

---------------------------------------------------------------------------
-- Snapshot (docs/protocol.md, "Snapshot").

-- Scratch for declared values found on this request (reused, never yields
-- between fill and use).
local names, values, nvals = {}, {}, 0

local function put_value(W, v)
    if type(v) == "table" then
        C.shmring_mpw_array(W, #v)
        for i = 1, #v do
            local x = tostring(v[i])
            C.shmring_mpw_str(W, x, #x)
        end
    elseif v == true then
        C.shmring_mpw_bool(W, 1)
    else
        v = tostring(v)
        C.shmring_mpw_str(W, v, #v)
    end
end

-- Collect the declared parts (list of names or "*") with getter/all.
local function collect(decl, one, all)
    nvals = 0
    if decl == "*" then
        for k, v in pairs(all()) do
            nvals = nvals + 1
            names[nvals], values[nvals] = k, v
        end
    else
        for i = 1, #decl do
            local v = one(decl[i])
            if v ~= nil then
                nvals = nvals + 1
                names[nvals], values[nvals] = decl[i], v
            end
        end
    end
    return nvals
end

local function put_collected(W)
    C.shmring_mpw_map(W, nvals)
    for i = 1, nvals do
        local k = names[i]
        C.shmring_mpw_str(W, k, #k)
        put_value(W, values[i])
        names[i], values[i] = nil, nil
    end
end

-- The declared headers or query args under key: "*" straight from the
-- host's pair array when it has one (no Lua table), else through
-- collect (getter one per declared name, all() for "*").
local function put_part(W, key, decl, pairs_of, one, all)
    C.shmring_mpw_str(W, key, #key)
    if decl == "*" and pairs_of then
        C.shmring_client_put_pairs(W, pairs_of())
    else
        collect(decl, one, all)
        put_collected(W)
    end
end

-- A Lua table as a map of strings, the way a template reads it: string,
-- number and true values under their keys as strings (uri_captures[1] is
-- "1"); tables and false (an unmatched capture) are left out.
local function put_flat(W, key, t)
    C.shmring_mpw_str(W, key, #key)
    nvals = 0
    for k, v in pairs(t) do
        local tv = type(v)
        if tv == "string" or tv == "number" or v == true then
            nvals = nvals + 1
            names[nvals], values[nvals] = tostring(k), tostring(v)
        end
    end
    put_collected(W)
end

local function put_kv(W, k, v)
    C.shmring_mpw_str(W, k, #k)
    v = v or ""
    C.shmring_mpw_str(W, v, #v)
end

local function put_uint(W, k, v)
    C.shmring_mpw_str(W, k, #k)
    C.shmring_mpw_uint(W, v or 0)
end

-- The connection the request came on, as nginx's own variables say (both
-- hosts run in an nginx worker; Kong's correlation-id reads the same).
local floor = math.floor
function _M.nginx_connection()
    local var = ngx.var
    return var.server_addr, tonumber(var.server_port), ngx.worker.pid(),
        tonumber(var.connection), tonumber(var.connection_requests),
        floor(ngx_now() * 1000 + 0.5)
end

-- docs/protocol.md, "connection": only for a plugin that names it.
local function put_connection(W, host)
    local addr, port, pid, serial, requests, time_ms = host.connection()
    C.shmring_mpw_str(W, "connection", 10)
    C.shmring_mpw_map(W, 6)
    put_kv(W, "server_addr", addr)
    put_uint(W, "server_port", port)
    put_uint(W, "worker_pid", pid)
    put_uint(W, "serial", serial)
    put_uint(W, "requests", requests)
    put_uint(W, "time_ms", time_ms)
end

-- encode(W, conf_id, st): st = { spec, host } for this plugin and host,
-- `answers` when the record is resent with entities (shmring.entities),
-- `body` or `body_error` when this config needs the request body, and
-- `uri_captures` / `shared` when its templates read them.
-- Only the fields and parts the plugin declared (plugins.lua).
local function encode_request(W, conf_id, st)
    local spec, host, answers = st.spec, st.host, st.answers
    local body, body_error = st.body, st.body_error
    local captures, shared = st.uri_captures, st.shared
    local want = spec.want
    local kv, consumer, credential
    if want.ctx or want.consumer then
        local ctx = ngx.ctx
        kv = want.ctx and ctx.shmring_kv
        consumer = want.consumer and ctx.shmring_consumer
        -- docs/protocol.md: `credential`, so an auth plugin with
        -- `anonymous` can tell an earlier real login (Kong's logical OR).
        credential = want.consumer and ctx.shmring_credential
    end
    local decl_h, decl_q = spec.headers, spec.query
    local has_h = decl_h == "*" or #decl_h > 0
    local has_q = decl_q == "*" or #decl_q > 0
    local n = 1 + (want.method and 1 or 0) + (want.scheme and 1 or 0) + (want.host and 1 or 0)
        + (want.path and 1 or 0) + (want.client_ip and 1 or 0) + (want.route_id and 1 or 0)
        + (want.service_id and 1 or 0) + (want.connection and 1 or 0)
        + (has_h and 1 or 0) + (has_q and 1 or 0) + (kv and 1 or 0) + (consumer and 1 or 0)
        + (credential and 1 or 0) + (answers and 1 or 0) + (body and 1 or 0)
        + (body_error and 1 or 0) + (captures and 1 or 0) + (shared and 1 or 0)
    C.shmring_mpw_map(W, n)
    C.shmring_mpw_str(W, "conf", 4)
    C.shmring_mpw_uint(W, conf_id)
    if want.method then put_kv(W, "method", host.method()) end
    if want.scheme then put_kv(W, "scheme", host.scheme()) end
    if want.host then put_kv(W, "host", host.host()) end
    if want.path then put_kv(W, "path", host.path()) end
    if want.client_ip then put_kv(W, "client_ip", host.client_ip()) end
    if want.route_id then put_kv(W, "route_id", host.route_id and host.route_id() or "") end
    if want.service_id then
        put_kv(W, "service_id", host.service_id and host.service_id() or "")
    end
    if want.connection then put_connection(W, host) end
    if has_h then
        put_part(W, "headers", decl_h, host.header_pairs, host.header, host.headers)
    end
    if has_q then
        put_part(W, "query", decl_q, host.query_pairs, host.query_arg, host.query)
    end
    if kv then
        C.shmring_mpw_str(W, "ctx", 3)
        client.enc_value(kv, 1)
    end
    if consumer then
        C.shmring_mpw_str(W, "consumer", 8)
        client.enc_value(consumer, 1)
    end
    if credential then
        put_kv(W, "credential", credential)
    end
    if answers then
        entities.encode(W, answers)
    end
    if body then
        put_kv(W, "body", body)
    elseif body_error then
        put_kv(W, "body_error", body_error)
    end
    if captures then
        put_flat(W, "uri_captures", captures)
    end
    if shared then
        put_flat(W, "shared", shared)
    end
end

-- What this request adds to the snapshot under this config (plugins.lua):
-- st wrapped with `body`, or `body_error` when the host could not give it
-- within client.config.body_max bytes (the plugin decides what that
-- means: shmring_req_body() answers -EFBIG), and the template
-- environment's `uri_captures` and `shared`. A config that needs none of
-- them gets st itself: nothing is read.
local function per_request(st, conf)
    local spec, host = st.spec, st.host
    local needs_body, env = spec.body, spec.template_env
    local want_body = needs_body and needs_body(conf, host)
    local want_caps, want_shared
    if env then
        want_caps, want_shared = env(conf)
    end
    if not (want_body or want_caps or want_shared) then
        return st
    end
    local x = {}
    if want_body then
        local body, err = host.body(client.config.body_max)
        x.body, x.body_error = body, not body and (err or "no body") or nil
    end
    x.uri_captures = want_caps and host.uri_captures and host.uri_captures() or nil
    x.shared = want_shared and host.shared and host.shared() or nil
    return setmetatable(x, { __index = st })
end

-- arg is the entry itself (not st): the client keeps it to resend the
-- record if the daemon answers "unknown conf" (shmring.client.send).
local function encode_log(W, conf_id, entry)
    C.shmring_mpw_map(W, 2)
    C.shmring_mpw_str(W, "conf", 4)
    C.shmring_mpw_uint(W, conf_id)
    C.shmring_mpw_str(W, "entry", 5)
    client.enc_value(entry, 1)
end

---------------------------------------------------------------------------
-- Actions (docs/protocol.md, "REPLY").

local key_box = ffi.new("struct shmring_client_str[1]")
local val_box = ffi.new("struct shmring_client_str[1]")

local function map_table(map)
    local t = {}
    if map == nil then
        return t
    end
    for i = 0, C.shmring_client_map_len(map) - 1 do
        if C.shmring_client_map_str(map, i, key_box, val_box) == 0 then
            t[str(key_box[0])] = str(val_box[0])
        end
    end
    return t
end

local function arg_b(a)
    return a.nstr > 1 and str(a.b) or ""
end

local function ctx_table(key)
    local ctx = ngx.ctx
    local t = ctx[key]
    if not t then
        t = {}
        ctx[key] = t
    end
    return t
end

-- The requests whose access kept response headers, by nginx request
-- (resty.core's request pointer), so that header_filter touches ngx.ctx
-- only when there is something in it: a request's first ngx.ctx makes its
-- table (resty.core's ref_in_table, which LuaJIT cannot compile: the trace
-- around it ends there). A mark left behind (a request that ends without
-- header_filter, the client gone) only costs a later request at the same
-- address one ngx.ctx look-up. Without resty.core: ngx.ctx always.
local get_request
do
    local ok, base = pcall(require, "resty.core.base")
    get_request = ok and base.get_request or nil
end
local kept_resp = {}

-- The request's address as a number (get_request may answer a new cdata
-- each call), or nil outside a request or without resty.core.
local function request_key()
    local r = get_request and get_request()
    return r and tonumber(ffi.cast("uintptr_t", r))
end

-- In access, response headers are kept in ctx and set by header_filter
-- (after the upstream answered): op, name, value triples. While a reply's
-- actions are applied they gather here (reused), and go into ngx.ctx at
-- once after the last one or before EXIT (keep_resp): one ngx.ctx look-up
-- per request, not one per header.
local resp_ops, resp_n = {}, 0

local function keep_resp()
    local r = request_key()
    if r then
        kept_resp[r] = true
    end
    local saved = ctx_table("shmring_resp")
    local n = #saved
    for i = 1, resp_n do
        saved[n + i] = resp_ops[i]
        resp_ops[i] = nil
    end
    resp_n = 0
end

local function resp_header(op, a, host, phase)
    local name, value = str(a.a), arg_b(a)
    if phase ~= "header_filter" then
        resp_ops[resp_n + 1], resp_ops[resp_n + 2], resp_ops[resp_n + 3] = op, name, value
        resp_n = resp_n + 3
    elseif op == ACT.SET_RESP_HEADER then
        host.set_resp_header(name, value)
    else
        host.add_resp_header(name, value)
    end
end

-- The request whose reply apply() is applying: its plugin and when it was
-- submitted (shmring_client_clock). Set and used without a yield between.
local timing_plugin, timing_started

-- The reply is applied (or about to end the request with EXIT): its round
-- trip into the plugin's histogram, once.
local function applied()
    if timing_started then
        observe(timing_plugin, C.shmring_client_applied(timing_started))
        timing_started = nil
    end
end

-- One function per action op (docs/protocol.md, "REPLY"):
-- fn(a, host, phase). Only EXIT returns (what the host's exit returns),
-- which ends the reply.
local APPLY = {
    [ACT.SET_REQ_HEADER] = function(a, host) host.set_req_header(str(a.a), arg_b(a)) end,
    [ACT.ADD_REQ_HEADER] = function(a, host) host.add_req_header(str(a.a), arg_b(a)) end,
    [ACT.CLEAR_REQ_HEADER] = function(a, host) host.clear_req_header(str(a.a)) end,
    [ACT.SET_PATH] = function(a, host) host.set_path(str(a.a)) end,
    [ACT.SET_QUERY] = function(a, host) host.set_query(str(a.a)) end,
    [ACT.SET_METHOD] = function(a, host) host.set_method(str(a.a)) end,
    [ACT.SET_RESP_HEADER] = function(a, host, phase)
        resp_header(ACT.SET_RESP_HEADER, a, host, phase)
    end,
    [ACT.ADD_RESP_HEADER] = function(a, host, phase)
        resp_header(ACT.ADD_RESP_HEADER, a, host, phase)
    end,
    [ACT.EXIT] = function(a, host)
        local body = a.nstr > 0 and str(a.a) or nil
        if resp_n > 0 then
            keep_resp() -- the exit's response gets them too
        end
        applied() -- the host's exit may not return
        return true, host.exit(a.num, body, map_table(a.map))
    end,
    [ACT.SET_CTX] = function(a)
        ctx_table("shmring_kv")[str(a.a)] = a.nstr > 1 and str(a.b) or nil
    end,
    [ACT.AUTHENTICATE] = function(a, host)
        local ctx = ngx.ctx
        local consumer = map_table(a.map)
        local credential = a.nstr > 0 and str(a.a) or nil
        ctx.shmring_consumer = consumer
        ctx.shmring_credential = credential
        host.authenticate(consumer, credential)
    end,
    [ACT.LOG] = function(a, host) host.log(a.num, a.nstr > 0 and str(a.a) or "") end,
    [ACT.SET_BODY] = function(a, host) host.set_body(str(a.a)) end,
}

-- More than one action: check every op, then apply them in order. Returns
-- nil and why (an unknown op), true and what the host's exit returned
-- (EXIT), or false.
local function apply_all(r, host, phase, n)
    for i = 0, n - 1 do
        local op = r.actions[i].op
        if not APPLY[op] then
            return nil, "unknown action op " .. tostring(op)
        end
    end
    for i = 0, n - 1 do
        local a = r.actions[i]
        local exited, ret = APPLY[a.op](a, host, phase)
        if exited then
            return true, ret
        end
    end
    return false
end

-- Apply every action of reply r in order. An op this side does not know is
-- an error, found before any action is applied: the reply is refused
-- whole. Returns true and, after EXIT, what the host's exit returned; or
-- nil and why. A reply of one action (most) takes no loop: LuaJIT cannot
-- start a trace at a loop left in its first pass, and blacklists one that
-- keeps being left so.
local function apply(r, host, phase)
    resp_n = 0 -- nothing left over from a reply whose host call failed
    local n = r.nactions
    if n == 1 then
        local a = r.actions[0]
        local f = APPLY[a.op]
        if not f then
            return nil, "unknown action op " .. tostring(a.op)
        end
        local exited, ret = f(a, host, phase)
        if exited then
            return true, ret
        end
    elseif n > 1 then
        local exited, ret = apply_all(r, host, phase, n)
        if exited ~= false then
            return exited, ret
        end
    end
    if resp_n > 0 then
        keep_resp()
    end
    return true
end
_M.apply = apply

---------------------------------------------------------------------------
-- Failure policy.

local last_logged = {}

local STATUS = { unavailable = 503, deadline = 504, error = 500 }
local MESSAGE = {
    unavailable = "plugin %s unavailable",
    deadline = "plugin %s timed out",
    error = "An unexpected error occurred",
}

local function fail(st, conf, err, kind)
    local fail_open = conf.fail_open
    if fail_open == nil then
        fail_open = st.spec.fail_open
    end
    local key = st.spec.name .. "/" .. kind
    local now = ngx_now()
    if now - (last_logged[key] or -1e9) >= _M.log_interval then
        last_logged[key] = now
        ngx_log(ERR, "shmring: plugin ", st.spec.name, fail_open and " skipped (fail_open): "
            or " failed closed: ", err)
    end
    if plugin_stats.enabled then
        plugin_stats.failed(st.spec.name, kind, err, fail_open)
    end
    if fail_open then
        return
    end
    local status = STATUS[kind] or 500
    return st.host.error_exit(status, MESSAGE[kind]:format(st.spec.name))
end
_M.fail = fail

---------------------------------------------------------------------------
-- Phases. st = _M.state(host, name): the per (host, plugin) constants.

-- transport: nil = the rings (shmring.client); shmring.socket for the
-- socket transport (same call/send contract).
function _M.state(host, name, spec, transport)
    return { host = host, spec = spec or plugins.get(name), entry = false, transport = transport }
end

function _M.access(st, conf, rtype)
    C = C or core.C or core.load(client.config.lib)
    local timeout = conf.timeout or st.spec.timeout
    local name, started = st.spec.name, nil
    if plugin_stats.enabled then
        count(name, "requests")
        -- no library: the call below fails as "unavailable", untimed
        started = C and C.shmring_client_clock()
    end
    local transport = st.transport or client
    st = per_request(st, conf)
    local r, payload_or_err, kind = transport.call(rtype or REC.ACCESS, name, conf,
        encode_request, st, timeout)
    if r and entities.needs(r) then
        -- The daemon lacks entities: resolve them and resend once with the
        -- answers (the deadline starts again: a look-up may wait on a DB).
        local answers, err = entities.resolve(st.host, r)
        if not answers then
            return fail(st, conf, "plugin " .. name .. ": " .. err, "error")
        end
        r, payload_or_err, kind = transport.call(rtype or REC.ACCESS, name, conf,
            encode_request, setmetatable({ answers = answers }, { __index = st }), timeout)
        if r and entities.needs(r) then
            r, payload_or_err, kind = nil, "plugin " .. name
                .. ": asked again for entities it was given", "error"
        end
    end
    if not r then
        return fail(st, conf, payload_or_err, kind)
    end
    local payload = payload_or_err -- the reply points into it: keep it alive
    timing_plugin, timing_started = name, started
    local ok, ret = apply(r, st.host, "access")
    payload = nil
    if not ok then
        timing_started = nil
        return fail(st, conf, "plugin " .. name .. ": " .. ret, "error")
    end
    applied()
    return ret
end

-- header_filter cannot yield in nginx, so it never waits for the daemon:
-- it sets the response headers the access reply asked for.
function _M.header_filter(st, conf)
    local r = request_key()
    if r then
        if not kept_resp[r] then
            return
        end
        kept_resp[r] = nil
    end
    local ctx = ngx.ctx
    local saved = ctx.shmring_resp
    if not saved then
        return
    end
    ctx.shmring_resp = nil
    local host = st.host
    for i = 1, #saved, 3 do
        if saved[i] == ACT.SET_RESP_HEADER then
            host.set_resp_header(saved[i + 1], saved[i + 2])
        else
            host.add_resp_header(saved[i + 1], saved[i + 2])
        end
    end
end

-- log: fire and forget; a failure is only logged (once per interval).
-- The entry is the host's log serializer output (Kong's field names) plus,
-- under `ctx`, what earlier shmring plugins kept with SET_CTX (the log
-- plugin writes ctx.correlation_id as `correlation_id`; docs/protocol.md),
-- and the config's custom_fields_by_lua evaluated here (shmring.custom_fields).
local function log_warn(msg)
    ngx_log(ngx.WARN, msg)
end

function _M.log(st, conf)
    C = C or core.C or core.load(client.config.lib)
    local host = st.host
    local entry = host.log_entry()
    local custom = conf.custom_fields_by_lua
    if type(custom) == "table" then
        custom_fields.apply(entry, custom, host.sandbox, log_warn)
    end
    local kv = ngx.ctx.shmring_kv
    if kv and entry.ctx == nil then
        entry.ctx = kv
    end
    local ok, err = (st.transport or client).send(REC.LOG, st.spec.name, conf, encode_log, entry)
    if plugin_stats.enabled then
        count(st.spec.name, ok and "log_records" or "log_dropped")
    end
    if not ok then
        local key = st.spec.name .. "/log"
        local now = ngx_now()
        if now - (last_logged[key] or -1e9) >= _M.log_interval then
            last_logged[key] = now
            ngx_log(ERR, "shmring: plugin ", st.spec.name, " log entry dropped: ", err)
        end
    end
end

return _M
