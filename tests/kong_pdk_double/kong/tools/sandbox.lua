-- kong.tools.sandbox: a TEST DOUBLE of Kong 3.x's sandbox (kong/tools/
-- sandbox/init.lua) with Kong's default `untrusted_lua = sandbox`, as the
-- loggers' custom_fields_by_lua use it: sandbox(code) compiles the code
-- in an environment of Kong's allowed Lua functions (kong/tools/sandbox/
-- environment/lua.lua: no load, io.open, os.execute, setmetatable, ...)
-- plus `kong` and `ngx`, `require` refused, globals never written to _G;
-- it raises on a syntax error and returns a function that raises what the
-- code raises. validate_safe(code) is the schema's check (typedefs.lua_code).
local type, pairs, load, error, pcall = type, pairs, load, error, pcall

local ALLOWED = [[
_VERSION assert error ipairs next pairs pcall print select tonumber tostring type unpack xpcall
bit.arshift bit.band bit.bnot bit.bor bit.bswap bit.bxor bit.lshift bit.rol bit.ror bit.rshift
bit.tobit bit.tohex coroutine.create coroutine.resume coroutine.running coroutine.status
coroutine.wrap coroutine.yield io.type jit.os jit.arch jit.version jit.version_num
math.abs math.acos math.asin math.atan math.atan2 math.ceil math.cos math.cosh math.deg math.exp
math.floor math.fmod math.frexp math.huge math.ldexp math.log math.log10 math.max math.min
math.modf math.pi math.pow math.rad math.random math.sin math.sinh math.sqrt math.tan math.tanh
os.clock os.date os.difftime os.time
string.byte string.char string.find string.format string.gmatch string.gsub string.len
string.lower string.match string.rep string.reverse string.sub string.upper
table.concat table.insert table.maxn table.remove table.sort
]]

local function environment()
    local env = {}
    for id in ALLOWED:gmatch("%S+") do
        local m, f = id:match("^([^.]+)%.(.+)$")
        if m then
            local src = _G[m]
            if type(src) == "table" and src[f] ~= nil then
                env[m] = env[m] or {}
                env[m][f] = src[f]
            end
        else
            env[id] = _G[id]
        end
    end
    env.kong = rawget(_G, "kong")
    env.ngx = rawget(_G, "ngx")
    env.require = function(name)
        return error(("require '%s' not allowed within sandbox"):format(name), -1)
    end
    env._G = env
    return env
end

local _M = {}

function _M.sandbox(chunk, chunkname)
    if type(chunk) ~= "string" then
        error("expected a string", 2)
    end
    local compiled, err = load(chunk, chunkname, "t", environment())
    if not compiled then
        return error(err, -1)
    end
    return compiled
end

function _M.validate_safe(chunk, chunkname)
    local ok, err = pcall(_M.sandbox, chunk, chunkname)
    if not ok then
        return false, "Error parsing function: " .. err
    end
    return true
end

return _M
