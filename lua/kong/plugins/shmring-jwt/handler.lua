-- Kong stub of the `jwt` C plugin (plugins/jwt/): Kong's jwt with
-- credentials from the config or a credentials file (docs/plugins.md).
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
--
-- header_names, cookie_names and uri_param_names are configurable, so the
-- snapshot of a request carries the names *this* config reads (plus
-- `cookie` only when cookie_names is set), not a fixed list.
local ipairs, lower, type = ipairs, string.lower, type

local function list(v, default)
    if type(v) ~= "table" then
        return default
    end
    return v
end

local function snapshot(conf)
    local headers, seen = {}, {}
    for _, n in ipairs(list(conf.header_names, { "authorization" })) do
        n = lower(n)
        if not seen[n] then
            seen[n] = true
            headers[#headers + 1] = n
        end
    end
    if #list(conf.cookie_names, {}) > 0 and not seen.cookie then
        headers[#headers + 1] = "cookie"
    end
    local query = {}
    for _, n in ipairs(list(conf.uri_param_names, { "jwt" })) do
        query[#query + 1] = n
    end
    return { headers = headers, query = query }
end

return require("shmring.kong").handler("jwt",
    { PRIORITY = 1450, VERSION = "0.1.0", snapshot = snapshot })
