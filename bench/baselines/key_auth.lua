-- Native Lua baseline of plugins/key-auth (bench/e2e), mirroring Kong's
-- bundled kong/plugins/key-auth/handler.lua (3.x) for the header/query
-- path: the key from the first of key_names present in the headers, else
-- the query; a table lookup of the credential (Kong: kong.cache of the
-- credential by key, i.e. an in-worker LRU hit after the first request);
-- then set_consumer: X-Consumer-* / X-Credential-Identifier headers set or
-- cleared, the consumer kept in ngx.ctx. 401 JSON bodies like Kong's.
local _M = {}

local ngx = ngx
local req = ngx.req
local get_headers, get_uri_args = req.get_headers, req.get_uri_args
local set_consumer = require("set_consumer")
local type = type

-- The credentials table Kong's cache would hold: key -> {consumer, credential}.
function _M.new(conf)
    local keys = {}
    for _, c in ipairs(conf.consumers or {}) do
        for _, cred in ipairs(c.keyauth_credentials or {}) do
            keys[cred.key] = { consumer = c, credential = cred }
        end
    end
    local names = {}
    for i, n in ipairs(conf.key_names) do
        names[i] = n:lower()
    end
    return { keys = keys, key_names = conf.key_names, lower_names = names,
             hide_credentials = conf.hide_credentials }
end

local function unauthorized(message)
    ngx.status = 401
    ngx.header["WWW-Authenticate"] = "Key"
    ngx.header["Content-Type"] = "application/json; charset=utf-8"
    ngx.print('{"message":"', message, '"}')
    return ngx.exit(401)
end

function _M.access(st)
    -- Kong: local headers = kong.request.get_headers(); local query = kong.request.get_query()
    local headers = get_headers()
    local key
    for i = 1, #st.key_names do
        local v = headers[st.lower_names[i]]
        if v == nil then
            local query = get_uri_args()
            v = query[st.key_names[i]]
        end
        if type(v) == "table" then
            return unauthorized("Duplicate API key found")
        end
        if v and v ~= "" then
            key = v
            break
        end
    end
    if not key then
        return unauthorized("No API key found in request")
    end
    local hit = st.keys[key]
    if not hit then
        return unauthorized("Unauthorized")
    end
    -- kong.client.authenticate + set_consumer
    set_consumer(hit.consumer, hit.credential, hit.credential.id)
end

return _M
