-- kong_schema_double: a TEST DOUBLE of the part of Kong 3.4-3.10's schema
-- library (kong/db/schema/init.lua, kong/db/schema/typedefs.lua) that the
-- shmring Kong stubs' schema.lua files use. It is NOT Kong. It builds a
-- plugin's config the way Kong's DAO hands it to the handler: validated
-- field by field with Kong's rules and messages, defaults filled (nested
-- records too), fields left unset removed (Kong reads plugins without
-- `nulls`), entity checks run. Plain Lua: no ngx needed, so schema tests
-- run in luajit as well as inside nginx.
--
--   local schema_double = require("kong_schema_double")
--   schema_double.install()          -- package.loaded["kong.db.schema.typedefs"]
--   local conf, err = schema_double.plugin_config(schema, { config = {...} })
--   -- err: { ["config.second"] = "expected a number", ... } (flat, dotted)
local type, pairs, ipairs, tostring, next = type, pairs, ipairs, tostring, next
local fmt, concat, floor = string.format, table.concat, math.floor

local _M = {}

-- Kong's "value was not given": absent input fields become this, then are
-- dropped from the handler's config.
local NULL = setmetatable({}, { __tostring = function() return "null" end })
_M.null = NULL

---------------------------------------------------------------------------
-- typedefs: Kong's are tables that can also be called with overrides
-- (typedefs.port { default = 6379 }); so are these.

local function define(t)
    return setmetatable(t, { __call = function(self, overrides)
        local copy = {}
        for k, v in pairs(self) do copy[k] = v end
        for k, v in pairs(overrides or {}) do copy[k] = v end
        return copy
    end })
end

local HTTP_PROTOCOLS = { "grpc", "grpcs", "http", "https" }

local function validate_header_name(name)
    if name:match("^[a-zA-Z0-9_-]+$") then
        return true
    end
    return nil, "bad header name '" .. name .. "', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
end

-- Kong's validate_path: RFC 3986 characters, properly percent-encoded.
local function validate_path(path)
    if not path:match("^/[%w%.%-%_%~%/%%%:%@%!%$%&%'%(%)%*%+%,%;%=]*$") then
        return nil, "invalid path: '" .. path
            .. "' (characters outside of the reserved list of RFC 3986 found)"
    end
    local raw = path:gsub("%%%x%x", "___")
    if raw:find("%", 1, true) then
        return nil, "invalid url-encoded value: '" .. raw:sub(raw:find("%%.?.?")) .. "'"
    end
    return true
end

-- Kong's validate_host: a name or an IP, without a port.
local function validate_host(host)
    if host:match(":%d+$") and not host:match(":.*:") then
        return nil, "must not have a port"
    end
    if host:match("^[%w%.%-_]+$") or host:match("^%[?[%x:]+%]?$") then
        return true
    end
    return nil, "invalid value: " .. host
end

-- Kong's validate_sni: a host name, never an IP literal, without a port.
local function validate_sni(host)
    if host:match("^%d+%.%d+%.%d+%.%d+$") or host:match("^%[?[%x:]*:[%x:]*%]?$") then
        return nil, "must not be an IP"
    end
    if host:match(":%d+$") then
        return nil, "must not have a port"
    end
    if host:match("^[%w%.%-_]+$") then
        return true
    end
    return nil, "invalid value: " .. host
end

-- Kong's validate_url (socket.url): a scheme and a host.
local function validate_url(url)
    local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
    if not scheme then
        return nil, "missing scheme in url"
    end
    local authority = rest:match("^[^/?#]*")
    if authority:gsub("^.*@", ""):gsub(":%d*$", "") == "" then
        return nil, "missing host in url"
    end
    return true
end

_M.typedefs = {
    header_name = define { type = "string", custom_validator = validate_header_name },
    path = define { type = "string", starts_with = "/",
                    match_none = { { pattern = "//", err = "must not have empty segments" } },
                    custom_validator = validate_path },
    host = define { type = "string", custom_validator = validate_host },
    port = define { type = "integer", between = { 0, 65535 } },
    sni = define { type = "string", custom_validator = validate_sni },
    url = define { type = "string", custom_validator = validate_url },
    http_method = define { type = "string", match = "^%u+$" },
    protocols_http = define { type = "set", required = true, default = HTTP_PROTOCOLS,
                              elements = { type = "string", one_of = HTTP_PROTOCOLS } },
    no_consumer = define { type = "foreign", reference = "consumers", eq = NULL },
    -- Kong's: the code must compile in the sandbox (not run: validate_safe)
    lua_code = define { type = "map", keys = { type = "string", len_min = 1 },
                        values = { type = "string", len_min = 1, custom_validator = function(code)
                            return require("kong.tools.sandbox").validate_safe(code)
                        end } },
}

function _M.install()
    package.loaded["kong.db.schema.typedefs"] = _M.typedefs
end

---------------------------------------------------------------------------
-- Field validation (Kong's Schema.validate_field and its validators).

local function deep_copy(v)
    if type(v) ~= "table" or v == NULL then
        return v
    end
    local t = {}
    for k, x in pairs(v) do t[k] = deep_copy(x) end
    return t
end

local function is_sequence(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    for i = 1, n do
        if t[i] == nil then return false end
    end
    return true
end

local function fields_of(rec)
    local i = 0
    return function()
        i = i + 1
        local f = rec.fields[i]
        if f then
            local name, def = next(f)
            return name, def
        end
    end
end

local function quoted_list(list)
    local out = {}
    for i, v in ipairs(list) do out[i] = tostring(v) end
    return concat(out, ", ")
end

local validate_field

-- The validators Kong runs on a present, well-typed value, in Kong's order.
local function run_validators(field, value)
    if field.eq ~= nil then
        if value ~= field.eq then
            return nil, fmt("value must be %s", tostring(field.eq))
        end
    end
    if field.one_of then
        local ok = false
        for _, v in ipairs(field.one_of) do
            if v == value then ok = true break end
        end
        if not ok then
            return nil, fmt("expected one of: %s", quoted_list(field.one_of))
        end
    end
    if field.gt ~= nil and not (value > field.gt) then
        return nil, fmt("value must be greater than %s", tostring(field.gt))
    end
    if field.between and (value < field.between[1] or value > field.between[2]) then
        return nil, fmt("value should be between %d and %d", field.between[1], field.between[2])
    end
    if field.type == "string" then
        local len_min = field.len_min or 1 -- Kong: no empty strings unless len_min = 0
        if #value < len_min then
            return nil, fmt("length must be at least %d", len_min)
        end
    elseif field.len_min and #value < field.len_min then
        return nil, fmt("length must be at least %d", field.len_min)
    end
    if field.starts_with and value:sub(1, #field.starts_with) ~= field.starts_with then
        return nil, fmt("should start with: %s", field.starts_with)
    end
    for _, m in ipairs(field.match_none or {}) do
        if value:find(m.pattern) then
            return nil, m.err or fmt("invalid value: %s", value)
        end
    end
    if field.match and not value:match(field.match) then
        return nil, fmt("invalid value: %s", value)
    end
    if field.contains ~= nil then
        local ok = false
        for _, v in ipairs(value) do
            if v == field.contains then ok = true break end
        end
        if not ok then
            return nil, fmt("expected to contain: %s", tostring(field.contains))
        end
    end
    if field.custom_validator then
        local ok, err = field.custom_validator(value)
        if not ok then
            return nil, err or "failed validating"
        end
    end
    return true
end

local process_record

-- value (input, possibly nil) of field at path -> processed value or NULL;
-- errors[path] on failure.
local function process_field(field, value, path, errors)
    if value == nil or value == NULL then
        if field.default ~= nil then
            return deep_copy(field.default)
        end
        if field.type == "foreign" then
            return NULL
        end
        if field.required ~= true then
            return NULL
        end
        if field.type == "record" then
            return process_record(field, {}, path, errors)
        end
        errors[path] = "required field missing"
        return NULL
    end
    local ok, err = validate_field(field, value, path, errors)
    if not ok then
        if err then errors[path] = err end
        return NULL
    end
    if field.type == "record" then
        return process_record(field, value, path, errors)
    end
    if field.type == "array" or field.type == "set" then
        local out, seen = {}, {}
        for i, v in ipairs(value) do
            local x = field.elements.type == "record"
                and process_record(field.elements, v, path .. "." .. i, errors) or v
            -- Kong's sets keep one of each value
            if field.type ~= "set" or not seen[x] then
                seen[x] = true
                out[#out + 1] = x
            end
        end
        return out
    end
    return value
end

-- Type and validators of a present value; arrays and sets check every
-- element against `elements`.
validate_field = function(field, value, path, errors)
    local t = field.type
    if t == "string" then
        if type(value) ~= "string" then return nil, "expected a string" end
    elseif t == "boolean" then
        if type(value) ~= "boolean" then return nil, "expected a boolean" end
    elseif t == "number" then
        if type(value) ~= "number" then return nil, "expected a number" end
    elseif t == "integer" then
        if type(value) ~= "number" or value ~= floor(value) or value == 1 / 0 or value == -1 / 0 then
            return nil, "expected an integer"
        end
    elseif t == "array" or t == "set" then
        if type(value) ~= "table" or not is_sequence(value) then
            return nil, t == "array" and "expected an array" or "expected a set"
        end
        for i, v in ipairs(value) do
            if field.elements.type ~= "record" then
                local ok, err = validate_field(field.elements, v, path .. "." .. i, errors)
                if not ok then
                    errors[path .. "." .. i] = err
                    return nil
                end
            elseif type(v) ~= "table" then
                return nil, "expected a record"
            end
        end
    elseif t == "record" then
        if type(value) ~= "table" then return nil, "expected a record" end
        return true
    elseif t == "map" then
        -- Kong's maps: every key against `keys`, every value against `values`
        if type(value) ~= "table" then return nil, "expected a map" end
        for k, v in pairs(value) do
            local ok, err = validate_field(field.keys, k, path, errors)
            if not ok then
                return nil, err
            end
            ok, err = validate_field(field.values, v, path .. "." .. tostring(k), errors)
            if not ok then
                errors[path .. "." .. tostring(k)] = err
                return nil
            end
        end
    elseif t == "foreign" then
        return run_validators(field, value)
    else
        return nil, "invalid type: " .. tostring(t)
    end
    return run_validators(field, value)
end

---------------------------------------------------------------------------
-- Entity checks (Kong's: at_least_one_of, mutually_exclusive, conditional;
-- field names dotted from the record they are declared on).

local function get(entity, dotted)
    local v = entity
    for part in dotted:gmatch("[^%.]+") do
        if type(v) ~= "table" or v == NULL then return nil end
        v = v[part]
    end
    if v == NULL then return nil end
    return v
end

local function field_def(rec, dotted)
    local def = rec
    for part in dotted:gmatch("[^%.]+") do
        local found
        for name, d in fields_of(def) do
            if name == part then found = d break end
        end
        if not found then return nil end
        def = found
    end
    return def
end

local function with_base(match, base)
    local f = {}
    for k, v in pairs(base or {}) do
        if k ~= "default" and k ~= "required" then f[k] = v end
    end
    for k, v in pairs(match) do f[k] = v end
    return f
end

local function names(list, prefix)
    local out = {}
    for i, n in ipairs(list) do out[i] = "'" .. prefix .. n .. "'" end
    return concat(out, ", ")
end

local function run_entity_checks(rec, entity, prefix, errors)
    for _, check in ipairs(rec.entity_checks or {}) do
        local name, arg = next(check)
        if name == "at_least_one_of" then
            local any = false
            for _, f in ipairs(arg) do
                if get(entity, f) ~= nil then any = true end
            end
            if not any then
                errors["@entity"] = fmt("at least one of these fields must be non-empty: %s",
                    names(arg, prefix))
            end
        elseif name == "mutually_exclusive" then
            local set = 0
            for _, f in ipairs(arg) do
                if get(entity, f) ~= nil then set = set + 1 end
            end
            if set > 1 then
                errors["@entity"] = fmt("only one or none of these fields must be set: %s",
                    names(arg, prefix))
            end
        elseif name == "conditional" then
            local if_value = get(entity, arg.if_field)
            if if_value ~= nil then
                local probe = {}
                local if_def = with_base(arg.if_match, field_def(rec, arg.if_field))
                if validate_field(if_def, if_value, "", probe) then
                    local then_value = get(entity, arg.then_field)
                    local where = prefix .. arg.then_field
                    if then_value == nil then
                        if arg.then_match.required then
                            errors[where] = "required field missing"
                        end
                    else
                        local then_def = with_base(arg.then_match, field_def(rec, arg.then_field))
                        local ok, err = validate_field(then_def, then_value, where, errors)
                        if not ok then
                            errors[where] = err
                        end
                    end
                end
            end
        else
            error("kong_schema_double: entity check " .. tostring(name) .. " is not modelled")
        end
    end
end

local function path_value(t, path)
    for _, k in ipairs(path) do
        if type(t) ~= "table" or t == NULL then return nil end
        t = t[k]
    end
    return t
end

local function same(a, b)
    if type(a) ~= "table" or type(b) ~= "table" then return a == b end
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
end

-- Deprecation messages of the shorthands used (Kong logs them through
-- kong.deprecation), for tests to read.
_M.deprecations = {}

-- Kong's shorthand_fields (Schema:process_auto_fields): each given one is
-- checked against its own definition, refused when its deprecation's new
-- field is set to another value, then replaced by what its func returns,
-- merged so that the new field's own value wins (deprecated shorthands).
local function move_shorthands(rec, input, prefix, errors)
    local data = {}
    for k, v in pairs(input) do data[k] = v end
    for _, s in ipairs(rec.shorthand_fields) do
        local name, def = next(s)
        local value = data[name]
        if value ~= nil then
            local ok, err = validate_field(def, value, prefix .. name, errors)
            local dep = def.deprecation
            for _, r in ipairs(ok and dep and dep.replaced_with or {}) do
                local now = path_value(data, r.path)
                if now ~= nil and now ~= NULL and not same(now, value) then
                    ok, err = false, fmt("both deprecated and new field are used but their values "
                        .. "mismatch: %s = %s vs %s = %s", name, tostring(value),
                        concat(r.path, "."), tostring(now))
                end
            end
            if not ok then
                errors[prefix .. name] = err
                data[name] = nil -- Kong returns these errors alone
            else
                if dep then
                    _M.deprecations[#_M.deprecations + 1] = dep.message
                end
                data[name] = nil
                for k, v in pairs(def.func(value) or {}) do
                    if type(v) == "table" then
                        local source = (data[k] ~= nil and data[k] ~= NULL) and data[k] or {}
                        local merged = {}
                        local first, second = v, source
                        if not dep then first, second = source, v end
                        for sk, sv in pairs(first) do merged[sk] = sv end
                        for sk, sv in pairs(second) do
                            if not dep or merged[sk] == nil or sv ~= NULL then merged[sk] = sv end
                        end
                        data[k] = merged
                    elseif not dep or data[k] == nil or data[k] == NULL then
                        data[k] = v
                    end
                end
            end
        end
    end
    return data
end

-- A record's input -> its processed table (unknown fields are errors, as
-- in Kong), then its custom_validator and entity checks. Its shorthands
-- are moved first and, as Kong reads an entity back (select without
-- hide_shorthands), set again from their new fields in the result.
process_record = function(rec, input, path, errors)
    local out, known = {}, {}
    local prefix = path == "" and "" or path .. "."
    if rec.shorthand_fields then
        input = move_shorthands(rec, input, prefix, errors)
    end
    for name, def in fields_of(rec) do
        known[name] = true
        out[name] = process_field(def, input[name], prefix .. name, errors)
    end
    for k in pairs(input) do
        if not known[k] then
            errors[prefix .. tostring(k)] = "unknown field"
        end
    end
    if next(errors) == nil then
        run_entity_checks(rec, out, prefix, errors)
        if rec.custom_validator and next(errors) == nil then
            local ok, err = rec.custom_validator(out)
            if not ok then
                errors[path == "" and "@entity" or path] = err or "failed validating"
            end
        end
    end
    for _, s in ipairs(rec.shorthand_fields or {}) do
        local name, def = next(s)
        local r = def.deprecation and def.deprecation.replaced_with
        if r then
            out[name] = path_value(out, r[1].path)
        end
    end
    return out
end

-- Drop the NULLs (Kong reads plugins from its DAO without `nulls`).
local function strip_nulls(v)
    if type(v) ~= "table" then return v end
    for k, x in pairs(v) do
        if x == NULL then v[k] = nil else strip_nulls(x) end
    end
    return v
end

-- The plugin entity { config = ..., protocols = ..., consumer = ... }
-- through the plugin's schema. Returns the handler's config table, or nil
-- and the errors by dotted field name.
function _M.plugin_config(schema, entity)
    local errors = {}
    local rec = { fields = schema.fields, entity_checks = schema.entity_checks }
    local input = {}
    for k, v in pairs(entity or {}) do input[k] = v end
    input.config = input.config or {}
    local known = { config = true }
    for name in fields_of(rec) do known[name] = true end
    -- the plugin entity's own fields Kong keeps outside the subschema
    for _, k in ipairs({ "name", "enabled", "id", "route", "service", "consumer",
                         "instance_name" }) do
        known[k] = true
    end
    local out = {}
    for name, def in fields_of(rec) do
        out[name] = process_field(def, input[name], name, errors)
    end
    for k in pairs(input) do
        if not known[k] then errors[k] = "unknown field" end
    end
    if next(errors) == nil then
        run_entity_checks(rec, out, "", errors)
    end
    if next(errors) ~= nil then
        return nil, errors
    end
    return strip_nulls(out.config)
end

-- Errors as one line, for logs and test messages ("config.x: why; ...").
function _M.errors_text(errors)
    local keys = {}
    for k in pairs(errors) do keys[#keys + 1] = k end
    table.sort(keys)
    for i, k in ipairs(keys) do keys[i] = k .. ": " .. tostring(errors[k]) end
    return concat(keys, "; ")
end

return _M
