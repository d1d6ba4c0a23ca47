-- shmring.custom_fields: the log plugin's `custom_fields_by_lua` (Kong's
-- file-log, tcp-log, udp-log and http-log field), run in the gateway's log
-- phase, where Kong runs it: Lua cannot run in shmringd.
--
-- Each field's code is compiled once per config (Kong compiles it on every
-- request) by the host's sandbox: Kong's own (kong.tools.sandbox, with the
-- operator's `untrusted_lua` settings) under Kong, plain `load` with reads
-- through _G under OpenResty, whose configs are the operator's own Lua.
-- The values go into the serializer's entry as Kong's serializer puts
-- kong.log.set_serialize_value's (kong/pdk/log.lua): a dotted key nests
-- ("request.x" sets entry.request.x, making tables on the way; "a\.b" is
-- the key "a.b"), nil removes the field. Fields are applied in key order
-- (Kong: pairs order). Where Kong's log phase would fail (the code raises,
-- returns a value the serializer refuses, or a key walks through a
-- non-table), that field is dropped and the error logged (once per 10 s
-- per field); the entry is still sent.
local ngx = ngx
local type, pairs, pcall, tostring = type, pairs, pcall, tostring
local sort = table.sort

local _M = {}

_M.log_interval = 10 -- seconds between two error lines for one field

-- The custom_fields_by_lua table of a config -> its compiled fields, an
-- array of { key = dotted key, path = { keys }, fn = function | nil,
-- err = compile error | nil }, sorted by key.
local compiled = setmetatable({}, { __mode = "k" })

-- "a.b\.c" -> { "a", "b.c" } (Kong: a dot not after a backslash splits).
local function split(key)
    local path, start = {}, 1
    for i = 2, #key do
        if key:byte(i) == 46 and key:byte(i - 1) ~= 92 then
            path[#path + 1] = (key:sub(start, i - 1):gsub("\\%.", "."))
            start = i + 1
        end
    end
    path[#path + 1] = (key:sub(start):gsub("\\%.", "."))
    return path
end

local function compile(code_by_key, sandbox)
    local fields = {}
    for key, code in pairs(code_by_key) do
        local f = { key = key, path = split(key) }
        if type(key) ~= "string" or type(code) ~= "string" then
            f.err = "key and code must be strings"
        else
            local ok, fn = pcall(sandbox, code, key)
            if ok and type(fn) == "function" then
                f.fn = fn
            else
                f.err = "Error parsing function: " .. tostring(fn)
            end
        end
        fields[#fields + 1] = f
    end
    sort(fields, function(a, b) return tostring(a.key) < tostring(b.key) end)
    return fields
end

-- What Kong's serializer accepts (kong/pdk/log.lua is_valid_value): nil,
-- null, numbers, strings, booleans, tables of those without cycles.
local function valid(v, seen)
    local t = type(v)
    if v == nil or v == ngx.null or t == "number" or t == "string" or t == "boolean" then
        return true
    end
    if t ~= "table" then
        return false
    end
    seen = seen or {}
    if seen[v] then
        return false
    end
    seen[v] = true
    for k, x in pairs(v) do
        local kt = type(k)
        if (kt ~= "string" and kt ~= "number" and kt ~= "boolean") or not valid(x, seen) then
            return false
        end
    end
    return true
end

-- Sets v at path in entry (Kong's set mode); nil, or an error.
local function put(entry, path, v)
    local node = entry
    for i = 1, #path - 1 do
        local k = path[i]
        local sub = node[k]
        if sub == nil then
            sub = {}
            node[k] = sub
        elseif type(sub) ~= "table" then
            return "subkey '" .. k .. "' is not a table"
        end
        node = sub
    end
    node[path[#path]] = v
end

local last_logged = setmetatable({}, { __mode = "k" })

local function log_error(f, err, log)
    local now = ngx.now()
    if now - (last_logged[f] or -1e9) >= _M.log_interval then
        last_logged[f] = now
        log("shmring: custom_fields_by_lua field '" .. tostring(f.key) .. "' dropped: "
            .. tostring(err))
    end
end

-- Adds the fields of code_by_key (a config's custom_fields_by_lua) to
-- entry. sandbox(code, name) compiles; log(msg) reports an error.
function _M.apply(entry, code_by_key, sandbox, log)
    local fields = compiled[code_by_key]
    if not fields then
        fields = compile(code_by_key, sandbox)
        compiled[code_by_key] = fields
    end
    for i = 1, #fields do
        local f = fields[i]
        local err = f.err
        if not err then
            local ok, v = pcall(f.fn)
            if not ok then
                err = v
            elseif not valid(v) then
                err = "value must be nil, a number, string, boolean or a non-self-referencial "
                      .. "table containing numbers, string and booleans"
            else
                err = put(entry, f.path, v)
            end
        end
        if err then
            log_error(f, err, log)
        end
    end
    return entry
end

return _M
