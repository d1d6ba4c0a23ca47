-- The Kong stub of jwt (lua/kong/plugins/shmring-jwt/) and its catalog entry,
-- without nginx: shmring.client and shmring.phase are replaced by recorders.
--   luajit tests/jwt/test_jwt_stub.lua <repo>
-- Checks: the catalog declares what plugins/jwt's descriptor declares
-- (authorization + cookie headers, jwt query arg; test_jwt.c checks the
-- descriptor side), and the stub's snapshot spec follows each config's
-- header_names / cookie_names / uri_param_names, once per config table.
local repo = arg[1] or "."
package.path = repo .. "/lua/?.lua;" .. repo .. "/tests/lua/?.lua;" .. package.path

local failures = 0
local function check(cond, what)
    if not cond then
        failures = failures + 1
        print("FAIL: " .. what)
    end
end

local function joined(list)
    if list == "*" then return "*" end
    local t = {}
    for i, v in ipairs(list) do t[i] = v end
    table.sort(t)
    return table.concat(t, ",")
end

local rec = require("stub_recorders")
local states, accesses = rec.states, rec.accesses

local plugins = require("shmring.plugins")
local spec = plugins.get("jwt")
check(joined(spec.headers) == "authorization,cookie", "catalog headers: " .. joined(spec.headers))
check(joined(spec.query) == "jwt", "catalog query: " .. joined(spec.query))
check(spec.phases.access and not spec.phases.log, "catalog: access phase only")
check(spec.fail_open == false, "catalog: jwt fails closed")
check(spec.want.method and spec.want.consumer, "catalog: method and consumer/credential sent")

local handler = require("kong.plugins.shmring-jwt.handler")
check(handler.PRIORITY == 1450, "Kong's jwt priority 1450")

-- Defaults (as the PDK fills them from the schema).
local conf1 = { header_names = { "authorization" }, uri_param_names = { "jwt" }, cookie_names = {} }
handler:access(conf1)
local st1 = accesses[1].st
check(joined(st1.spec.headers) == "authorization", "defaults: only authorization, no cookie: "
      .. joined(st1.spec.headers))
check(joined(st1.spec.query) == "jwt", "defaults: the jwt arg")
check(st1.spec.name == "jwt" and st1.spec.want.method, "the spec inherits the catalog entry")

-- Custom names: lower-cased, de-duplicated, cookie added for cookie_names.
local conf2 = { header_names = { "X-Token", "x-token", "Authorization" },
                uri_param_names = { "access_token" }, cookie_names = { "session" } }
handler:access(conf2)
handler:access(conf2)
check(#states == 2, "one state per config table (got " .. #states .. ")")
local st2 = accesses[2].st
check(accesses[3].st == st2, "the same config reuses its state")
check(joined(st2.spec.headers) == "authorization,cookie,x-token",
      "custom names: " .. joined(st2.spec.headers))
check(joined(st2.spec.query) == "access_token", "custom query arg")
check(joined(plugins.get("jwt").headers) == "authorization,cookie",
      "the catalog entry itself is not modified")

-- Fields missing or null (ngx.null is a lightuserdata) fall back to defaults.
handler:access({ header_names = nil, uri_param_names = false, cookie_names = nil })
local st3 = accesses[4].st
check(joined(st3.spec.headers) == "authorization" and joined(st3.spec.query) == "jwt",
      "absent names: the defaults")

if failures > 0 then
    print(failures .. " failed")
    os.exit(1)
end
print("all passed")
