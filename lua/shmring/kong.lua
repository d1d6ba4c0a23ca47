-- shmring.kong: the shared body of every Kong plugin stub
-- (kong/plugins/shmring-<name>/handler.lua). A stub is one line:
--
--   return require("shmring.kong").handler("hello", { PRIORITY = 1000, VERSION = "0.1.0" })
--
-- It reads the request and applies the reply through Kong's PDK (kong.*),
-- nothing else; the daemon location comes from SHMRING_DIR (kong.conf:
-- `nginx_main_env = SHMRING_DIR`), default /dev/shm/shmring/default.
local client = require("shmring.client")
local phase = require("shmring.phase")
local plugins = require("shmring.plugins")

local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }

local function K()
    return _G.kong
end

local LEVEL = { [0] = "err", [1] = "warn", [2] = "notice", [3] = "debug" }

-- The host interface of shmring.phase over Kong's PDK.
local host = {
    name = "kong",
    ctx = function() return K().ctx.plugin end,
    method = function() return K().request.get_method() end,
    scheme = function() return K().request.get_scheme() end,
    host = function() return K().request.get_host() end,
    path = function() return K().request.get_path() end,
    client_ip = function() return K().client.get_ip() end,
    route_id = function()
        local r = K().router.get_route()
        return r and r.id or ""
    end,
    -- rate-limiting's limit_by = service (a PDK without get_service: "")
    service_id = function()
        local get = K().router.get_service
        local s = get and get()
        return s and s.id or ""
    end,
    header = function(name) return K().request.get_header(name) end,
    headers = function() return K().request.get_headers() end,
    query_arg = function(name) return K().request.get_query_arg(name) end,
    query = function() return K().request.get_query() end,

    set_req_header = function(n, v) K().service.request.set_header(n, v) end,
    add_req_header = function(n, v) K().service.request.add_header(n, v) end,
    clear_req_header = function(n) K().service.request.clear_header(n) end,
    set_path = function(p) K().service.request.set_path(p) end,
    set_query = function(q) K().service.request.set_raw_query(q) end,
    set_method = function(m) K().service.request.set_method(m:upper()) end,
    set_resp_header = function(n, v) K().response.set_header(n, v) end,
    add_resp_header = function(n, v) K().response.add_header(n, v) end,
    exit = function(status, body, headers) return K().response.exit(status, body, headers) end,
    authenticate = function(consumer, credential)
        K().client.authenticate(consumer, credential and { id = credential } or nil)
    end,
    log = function(level, msg) K().log[LEVEL[level] or "notice"]("shmring plugin: ", msg) end,
    error_exit = function(status, message) return K().response.error(status, message) end,
    log_entry = function() return K().log.serialize() end,
}
_M.host = host

local started = false

-- A Kong handler table for C plugin `name`. opts: PRIORITY, VERSION, and
-- optionally what the plugin needs (headers, query, fields, phases,
-- fail_open, timeout), which then override shmring.plugins' entry.
--
-- opts.snapshot(conf) -> { headers = {...}, query = {...} }: for a plugin
-- whose descriptor declares more than one config reads (configurable
-- header or arg names), the parts this config reads. Each config table then
-- gets its own phase state, so its snapshots carry only those parts.
function _M.handler(name, opts)
    local spec = plugins.get(name)
    if opts and (opts.headers or opts.query or opts.fields or opts.phases) then
        local fail_open = opts.fail_open
        if fail_open == nil then
            fail_open = spec.fail_open
        end
        spec = plugins.define(name, {
            headers = opts.headers or spec.headers, query = opts.query or spec.query,
            fields = opts.fields or spec.fields, phases = opts.phases or spec.phases,
            fail_open = fail_open,
            timeout = opts.timeout or spec.timeout,
        })
    end
    local state_of
    if opts and opts.snapshot then
        local narrow = opts.snapshot
        local states = setmetatable({}, { __mode = "k" })
        state_of = function(conf)
            local st = states[conf]
            if not st then
                local parts = narrow(conf)
                st = phase.state(host, name, setmetatable(
                    { headers = parts.headers, query = parts.query }, { __index = spec }))
                states[conf] = st
            end
            return st
        end
    else
        local st = phase.state(host, name, spec)
        state_of = function()
            return st
        end
    end
    local h = {
        PRIORITY = opts and opts.PRIORITY or 1000,
        VERSION = opts and opts.VERSION or _M._VERSION,
    }
    -- Every stub calls this; the channel is claimed once per worker.
    function h:init_worker()
        if not started then
            started = true
            client.init_worker()
        end
    end
    if spec.phases.access then
        function h:access(conf)
            return phase.access(state_of(conf), conf)
        end
        -- Response headers the access reply asked for (header_filter
        -- cannot wait for the daemon, see docs/gateway.md).
        function h:header_filter(conf)
            return phase.header_filter(state_of(conf), conf)
        end
    end
    if spec.phases.log then
        function h:log(conf)
            return phase.log(state_of(conf), conf)
        end
    end
    return h
end

return _M
