-- shmring.plugins: what the gateway side knows of each C plugin: the
-- request parts its descriptor declares (`needs_headers` / `needs_query` in
-- plugins/<name>/), the phases it implements, and its failure-policy
-- defaults (auth plugins fail closed, logging fails open; docs/gateway.md).
-- Only these parts go into the snapshot. "*" means every one. `fields`
-- lists the fixed snapshot fields it reads (docs/protocol.md: method,
-- scheme, host, path, client_ip, route_id, ctx, consumer; service_id and
-- connection only when named); nil = all.
--
-- A third-party plugin registers itself with shmring.plugins.define().
local _M = {}

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
