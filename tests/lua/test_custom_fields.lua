-- Unit test of shmring.custom_fields (the loggers' custom_fields_by_lua,
-- run by the gateway), from plain LuaJIT with the Kong sandbox's test
-- double (tests/kong_pdk_double/kong/tools/sandbox.lua) as the compiler:
-- Kong's set_serialize_value rules (dotted keys nest, "\." escapes a dot,
-- nil removes), code compiled once per config, a failing field dropped
-- and logged once per interval while the others are set.
--   luajit tests/lua/test_custom_fields.lua <source dir>
local src = arg[1]
package.path = src .. "/lua/?.lua;" .. src .. "/tests/kong_pdk_double/?.lua;" .. package.path
local clock = 100
_G.ngx = { null = setmetatable({}, { __tostring = function() return "null" end }),
           now = function() return clock end }
local custom_fields = require("shmring.custom_fields")
local kong_sandbox = require("kong.tools.sandbox").sandbox

local passed = 0
local function check(cond, what)
    if not cond then
        io.write("FAIL: ", what, "\n")
        os.exit(1)
    end
    passed = passed + 1
end

local compiles = 0
local function sandbox(code, name)
    compiles = compiles + 1
    return kong_sandbox(code, name)
end
local logged = {}
local function log(msg) logged[#logged + 1] = msg end

local conf = {
    ["request.tenant"] = "return 't1'",
    ["a\\.b"] = "return { 1, 2 }",
    ["client_ip"] = "return nil",
    ["new.deep.key"] = "return true",
    ["boom"] = "error('boom')",
    ["no_io"] = "return io.open('/etc/passwd')",
    ["fn"] = "return function() end",
    ["client_ip.x"] = "return 1",          -- client_ip is removed first (key order)
    ["response.status.x"] = "return 1",    -- walks through a number
    ["syntax"] = "return (",
}
local function entry()
    return { request = { method = "GET" }, response = { status = 200 }, client_ip = "10.0.0.1" }
end

local e = custom_fields.apply(entry(), conf, sandbox, log)
check(e.request.tenant == "t1" and e.request.method == "GET", "a dotted key nests, keeps siblings")
check(type(e["a.b"]) == "table" and e["a.b"][2] == 2 and e.a == nil, "an escaped dot is part of the key")
check(e.new and e.new.deep and e.new.deep.key == true, "tables are made on the way")
check(e.client_ip and e.client_ip.x == 1, "nil removes a field; a later key makes it a table again")
check(e.boom == nil and e.no_io == nil and e.fn == nil and e.syntax == nil,
      "failing fields are dropped")
check(e.response.status == 200, "a key through a non-table leaves the entry alone")
local text = table.concat(logged, "\n")
for _, k in ipairs({ "boom", "no_io", "fn", "response.status.x", "syntax" }) do
    check(text:find("field '" .. k .. "' dropped", 1, true), "field " .. k .. " logged: " .. text)
end
check(text:find("Error parsing function", 1, true), "a syntax error says so")
check(#logged == 5, "one line per failing field (" .. #logged .. ")")

local n = compiles
logged = {}
custom_fields.apply(entry(), conf, sandbox, log)
check(compiles == n, "compiled once per config, not per request")
check(#logged == 0, "a failing field is logged once per interval")
clock = clock + custom_fields.log_interval
custom_fields.apply(entry(), conf, sandbox, log)
check(#logged == 5, "and again after the interval")

-- Kong's sandbox: no require, no globals written to _G
local e2 = custom_fields.apply(entry(), { x = "leak = 1; return require('os')" }, sandbox, log)
check(e2.x == nil and rawget(_G, "leak") == nil, "the sandbox refuses require and keeps _G")

print(string.format("%d passed, 0 failed", passed))
