-- The LuaJIT mirror of the C headers (the ffi.cdef in lua/shmring/core.lua)
-- against the values compiled from them: every struct size and field
-- offset, every enum constant (ffi_layout.c prints them), and the protocol
-- tables built from the constants.
--   luajit tests/lua/test_ffi_layout.lua <ffi_layout program>
package.path = arg[0]:gsub("tests/lua/test_ffi_layout.lua$", "lua/?.lua;") .. package.path
local ffi = require("ffi")
local core = require("shmring.core")

local failed, checked = 0, 0
local function check(what, lua_value, c_value)
    checked = checked + 1
    if lua_value ~= c_value then
        failed = failed + 1
        io.write("FAIL: ", what, ": Lua ", tostring(lua_value), ", C ", tostring(c_value), "\n")
    end
end

local path = assert(arg[1], "usage: test_ffi_layout.lua <ffi_layout>")
local prog = assert(io.popen(path))
local C_const = {}
for line in prog:lines() do
    local kind, rest = line:match("^(%S+) (.*)$")
    if kind == "sizeof" then
        local s, v = rest:match("^(%S+) (%d+)$")
        check("sizeof struct " .. s, ffi.sizeof("struct " .. s), tonumber(v))
    elseif kind == "offsetof" then
        local s, f, v = rest:match("^(%S+) (%S+) (%d+)$")
        check("offsetof struct " .. s .. " " .. f, ffi.offsetof("struct " .. s, f), tonumber(v))
    elseif kind == "const" then
        local name, v = rest:match("^(%S+) (%-?%d+)$")
        local ok, lua_v = pcall(function() return ffi.C[name] end)
        check(name, ok and lua_v or "missing", tonumber(v))
        C_const[name] = tonumber(v)
    else
        error("unexpected line from " .. arg[1] .. ": " .. line)
    end
end
assert(prog:close(), arg[1] .. " failed")

-- core.REC / REPLY / ACT name every constant of their enum, and only those.
local function same_set(tbl, prefix)
    local seen = 0
    for name, v in pairs(tbl) do
        check("core " .. prefix .. name, v, C_const[prefix .. name])
        seen = seen + 1
    end
    local want = 0
    for name in pairs(C_const) do
        if name:sub(1, #prefix) == prefix and name ~= "SHMRING_REC_PAD" then
            want = want + 1
        end
    end
    check("names in core table for " .. prefix, seen, want)
end
same_set(core.REC, "SHMRING_REC_")
same_set(core.REPLY, "SHMRING_REPLY_")
same_set(core.ACT, "SHMRING_ACT_")
same_set(core.ENTITY, "SHMRING_ENTITY_")

if failed > 0 or checked < 60 then
    io.write(failed, " of ", checked, " checks failed\n")
    os.exit(1)
end
io.write("ok: ", checked, " checks\n")
