-- Native Lua baseline of plugins/request-transformer (bench/e2e), mirroring
-- Kong's bundled kong/plugins/request-transformer/access.lua for headers
-- and the query string: get_headers() / get_uri_args() into tables, the
-- rules in Kong's order (remove, rename, replace, add, append), templates
-- `$(...)` compiled once per value (Kong caches compiled templates too) and
-- rendered against the original request's headers and query, then
-- set_header / clear_header and set_uri_args (the query is rebuilt whenever
-- a querystring rule exists, as in Kong).
local _M = {}

local ngx = ngx
local req = ngx.req
local get_headers, get_uri_args = req.get_headers, req.get_uri_args
local set_header, clear_header, set_uri_args = req.set_header, req.clear_header, req.set_uri_args
local pairs, ipairs, type, setfenv, loadstring = pairs, ipairs, type, setfenv, loadstring
local lower, find, sub, gsub = string.lower, string.find, string.sub, string.gsub

-- headers.user_agent reads "user-agent", like ngx.req.get_headers()'s proxy.
local function header_proxy(h)
    return setmetatable({}, { __index = function(_, k)
        local v = h[k]
        if v == nil and type(k) == "string" then
            v = h[gsub(k, "_", "-")]
        end
        return v
    end })
end

-- "value with $(expr)" -> function(env) returning the rendered string, or
-- the plain string when there is no template.
local function compile(value)
    if not find(value, "$(", 1, true) then
        return value
    end
    local parts, pos = {}, 1
    while true do
        local s, e, expr = find(value, "%$%((.-)%)", pos)
        if not s then
            break
        end
        parts[#parts + 1] = ("%q"):format(sub(value, pos, s - 1))
        parts[#parts + 1] = "tostring((" .. expr .. ") or '')"
        pos = e + 1
    end
    parts[#parts + 1] = ("%q"):format(sub(value, pos))
    local fn = assert(loadstring("return " .. table.concat(parts, " .. ")))
    return function(env)
        setfenv(fn, env)
        return fn()
    end
end

local function pairs_of(list)
    local out = {}
    for _, item in ipairs(list or {}) do
        local name, value = item:match("^([^:]+):(.*)$")
        if name and value ~= "" then
            out[#out + 1] = { name = name, value = compile(value) }
        end
    end
    return out
end

local function section(conf, key)
    local c = conf[key] or {}
    return {
        headers = key == "remove" and (c.headers or {}) or pairs_of(c.headers),
        querystring = key == "remove" and (c.querystring or {}) or pairs_of(c.querystring),
    }
end

function _M.new(conf)
    local st = {}
    for _, k in ipairs({ "remove", "rename", "replace", "add", "append" }) do
        st[k] = section(conf, k)
    end
    st.has_qs = #st.remove.querystring + #st.rename.querystring + #st.replace.querystring
        + #st.add.querystring + #st.append.querystring > 0
    return st
end

local function render(v, env)
    if type(v) == "string" then
        return v
    end
    return v(env)
end

function _M.access(st)
    local headers = get_headers()
    local query = get_uri_args()
    local env = { headers = header_proxy(headers), query_params = query, tostring = tostring }
    -- headers: remove, rename, replace, add, append (Kong's transform_headers)
    local clear, set = {}, {}
    for _, name in ipairs(st.remove.headers) do
        name = lower(name)
        if headers[name] ~= nil then
            headers[name] = nil
            clear[name] = true
        end
    end
    for _, r in ipairs(st.rename.headers) do
        local old, new = lower(r.name), lower(render(r.value, env))
        local v = headers[old]
        if v ~= nil then
            headers[old] = nil
            clear[old] = true
            headers[new] = v
            set[new] = v
        end
    end
    for _, r in ipairs(st.replace.headers) do
        local name = lower(r.name)
        if headers[name] ~= nil then
            local v = render(r.value, env)
            headers[name] = v
            set[name] = v
        end
    end
    for _, r in ipairs(st.add.headers) do
        local name = lower(r.name)
        if headers[name] == nil then
            local v = render(r.value, env)
            headers[name] = v
            set[name] = v
        end
    end
    for _, r in ipairs(st.append.headers) do
        local name = lower(r.name)
        local v, cur = render(r.value, env), headers[name]
        if cur == nil then
            headers[name] = v
        elseif type(cur) == "table" then
            cur[#cur + 1] = v
        else
            headers[name] = { cur, v }
        end
        set[name] = headers[name]
    end
    for name in pairs(clear) do
        if set[name] == nil then
            clear_header(name)
        end
    end
    for name, v in pairs(set) do
        set_header(name, v)
    end
    -- querystring: the same order, then the whole query rebuilt
    if st.has_qs then
        local qs = {}
        for k, v in pairs(query) do
            qs[k] = v
        end
        for _, name in ipairs(st.remove.querystring) do
            qs[name] = nil
        end
        for _, r in ipairs(st.rename.querystring) do
            local new = render(r.value, env)
            qs[new] = qs[r.name]
            qs[r.name] = nil
        end
        for _, r in ipairs(st.replace.querystring) do
            if qs[r.name] ~= nil then
                qs[r.name] = render(r.value, env)
            end
        end
        for _, r in ipairs(st.add.querystring) do
            if qs[r.name] == nil then
                qs[r.name] = render(r.value, env)
            end
        end
        for _, r in ipairs(st.append.querystring) do
            local v, cur = render(r.value, env), qs[r.name]
            if cur == nil then
                qs[r.name] = v
            elseif type(cur) == "table" then
                cur[#cur + 1] = v
            else
                qs[r.name] = { cur, v }
            end
        end
        set_uri_args(qs)
    end
end

return _M
