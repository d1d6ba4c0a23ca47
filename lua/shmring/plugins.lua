-- shmring.plugins: what the gateway side knows of each C plugin: the
-- request parts its descriptor declares (`needs_headers` / `needs_query` in
-- plugins/<name>/), the phases it implements, and its failure-policy
-- defaults (auth plugins fail closed, logging fails open; docs/gateway.md).
-- Only these parts go into the snapshot. "*" means every one. `fields`
-- lists the fixed snapshot fields it reads (docs/protocol.md: method,
-- scheme, host, path, client_ip, route_id, ctx, consumer; service_id and
-- connection only when named); nil = all.
--
-- `body(conf, host)`, when present, says whether this request, under this
-- config, needs the request body in its snapshot (shmring_req_body()); a
-- plugin without it never costs a body read. `template_env(conf)`, when
-- present, answers two booleans: whether the config's templates read
-- Kong's uri_captures and kong.ctx.shared (sent as `uri_captures` and
-- `shared`).
--
-- A third-party plugin registers itself with shmring.plugins.define().
local _M = {}

local find, lower, type = string.find, string.lower, type
local EMPTY = {}

-- The body types the built-in plugins parse (Kong's request-transformer
-- and kong.request.get_body): a Content-Type naming one of them.
local BODY_TYPES = { "application/json", "application/x-www-form-urlencoded",
                     "multipart/form-data" }
local function parsed_body_type(host)
    local ct = host.header("content-type")
    if type(ct) == "table" then
        ct = ct[1]
    end
    if type(ct) ~= "string" then
        return false
    end
    ct = lower(ct)
    for i = 1, #BODY_TYPES do
        if find(ct, BODY_TYPES[i], 1, true) then
            return true
        end
    end
    return false
end
_M.parsed_body_type = parsed_body_type

-- key-auth reads the body where Kong's do_authentication does: at the
-- first key name that no header or query arg holds (a query flag, Lua's
-- true, sends it on to the next name), and always with hide_credentials
-- (the key leaves the body wherever it was found).
local DEFAULT_KEY_NAMES = { "apikey" }
local function key_auth_needs_body(conf, host)
    if conf.key_in_body ~= true or not parsed_body_type(host) then
        return false
    end
    if conf.hide_credentials then
        return true
    end
    local names = conf.key_names or DEFAULT_KEY_NAMES
    for i = 1, #names do
        local v
        if conf.key_in_header ~= false then
            v = host.header(names[i])
        end
        if v == nil and conf.key_in_query ~= false then
            v = host.query_arg(names[i])
        end
        if v == nil then
            return true
        end
        if v ~= true then
            return false -- a key (or a duplicate): the body is never looked at
        end
    end
    return false
end

local RT_SECTIONS = { "remove", "rename", "replace", "add", "append" }
local SECTION_LISTS = { "headers", "querystring", "body" }
local BODY_METHODS = { GET = true, HEAD = true, TRACE = true }

-- What a request-transformer config reads beyond headers and query, found
-- once per config table: { body, uri_captures, shared, sets_type }. The
-- body for a body rule, and for http_method GET/HEAD/TRACE (a form body
-- then moves into the query), as Kong reads it; sets_type: a header rule
-- may set Content-Type, which Kong's transform_body reads back.
local rt_reads = setmetatable({}, { __mode = "k" })
local function rt_reads_of(conf)
    local r = rt_reads[conf]
    if r then
        return r
    end
    r = { BODY_METHODS[conf.http_method] or false, false, false, false }
    local function look(s)
        if type(s) == "string" and find(s, "$(", 1, true) then
            r[2] = r[2] or find(s, "uri_captures", 1, true) ~= nil
            r[3] = r[3] or find(s, "shared", 1, true) ~= nil
        end
    end
    for i = 1, #RT_SECTIONS do
        local sec = conf[RT_SECTIONS[i]] or EMPTY
        r[1] = r[1] or type(sec.body) == "table" and #sec.body > 0
        local hs = i > 1 and type(sec.headers) == "table" and sec.headers or EMPTY
        for k = 1, #hs do
            local name, value = tostring(hs[k]):match("^([^:]+):*(.-)$")
            local set = i == 2 and value or name -- rename: the new name
            r[4] = r[4] or (set or ""):lower() == "content-type"
        end
        for j = 1, #SECTION_LISTS do
            local list = sec[SECTION_LISTS[j]]
            for k = 1, type(list) == "table" and #list or 0 do
                look(list[k])
            end
        end
        look(sec.uri)
    end
    rt_reads[conf] = r
    return r
end

-- ... and only for the three body types it transforms (or one a header
-- rule may set).
local function rt_needs_body(conf, host)
    local r = rt_reads_of(conf)
    return r[1] and (r[4] or parsed_body_type(host))
end

local function rt_template_env(conf)
    local r = rt_reads_of(conf)
    return r[2], r[3]
end

_M.ALL_FIELDS = { "method", "scheme", "host", "path", "client_ip", "route_id", "ctx", "consumer" }

local catalog = {
    hello = {
        headers = {}, query = {}, fields = {},
        phases = { access = true },
        fail_open = false, timeout = 250,
    },
    -- key_names are configurable and hide_credentials rebuilds the query:
    -- plugins/key-auth declares every header and arg.
    ["key-auth"] = {
        headers = "*", query = "*", fields = { "method", "consumer" },
        phases = { access = true },
        fail_open = false, timeout = 250,
        body = key_auth_needs_body,
    },
    -- The defaults of header_names / cookie_names / uri_param_names (as
    -- plugins/jwt declares); the Kong stub shmring-jwt sends each config's
    -- own names instead.
    jwt = {
        headers = { "authorization", "cookie" }, query = { "jwt" }, fields = { "method", "consumer" },
        phases = { access = true },
        fail_open = false, timeout = 250,
    },
    -- limit_by = "header" reads a configurable header: plugins/rate-limiting
    -- declares every header, as here for the OpenResty helper; the Kong stub
    -- shmring-rate-limiting sends only config.header_name (or none).
    -- Fields: what limit_by and the counter keys read.
    ["rate-limiting"] = {
        headers = "*", query = {},
        fields = { "path", "client_ip", "route_id", "service_id", "consumer" },
        phases = { access = true },
        fail_open = true, timeout = 250,
    },
    ["request-transformer"] = {
        headers = "*", query = "*", fields = {},
        phases = { access = true },
        fail_open = false, timeout = 250,
        body = rt_needs_body,
        template_env = rt_template_env,
    },
    -- header_name is configurable: plugins/correlation-id declares every
    -- header. Its HEADER_FILTER hook is not called: the echo is set from
    -- the access reply (header_filter never waits for the daemon).
    -- connection: what the `tracker` generator joins (the Kong stub sends
    -- it only to configs with that generator).
    ["correlation-id"] = {
        headers = "*", query = {}, fields = { "connection" },
        phases = { access = true },
        fail_open = true, timeout = 250,
    },
    -- plugins/log (Kong's file-log / tcp-log / udp-log): LOG records carry
    -- the serializer's entry, not a snapshot, so it declares nothing.
    log = {
        headers = {}, query = {}, fields = {},
        phases = { log = true },
        fail_open = true, timeout = 250,
    },
}

-- The names the catalog knows, sorted (tests/plugins/test_catalog.c checks
-- them against the built plugins).
function _M.names()
    local t = {}
    for name in pairs(catalog) do
        t[#t + 1] = name
    end
    table.sort(t)
    return t
end

-- The spec of a plugin; unknown names get the hello-like default (access
-- only, nothing declared, fail closed).
function _M.get(name)
    local s = catalog[name]
    if not s then
        s = { headers = {}, query = {}, phases = { access = true }, fail_open = false,
              timeout = 250 }
        catalog[name] = s
    end
    s.name = name
    s.want = s.want or _M.want(s.fields)
    return s
end

-- The set of fixed fields a `fields` list names (nil: ALL_FIELDS).
function _M.want(fields)
    local want = {}
    for _, f in ipairs(fields or _M.ALL_FIELDS) do
        want[f] = true
    end
    return want
end

-- Declare (or override) a plugin: define("my-auth", { headers = {"x-token"},
-- query = {}, phases = { access = true }, fail_open = false, timeout = 100 }).
function _M.define(name, spec)
    if type(name) ~= "string" or type(spec) ~= "table" then
        error("shmring.plugins.define(name, spec)", 2)
    end
    catalog[name] = spec
    spec.want = nil
    return _M.get(name)
end

return _M
