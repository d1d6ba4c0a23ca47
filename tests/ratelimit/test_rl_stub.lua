-- The Kong stub of rate-limiting (lua/kong/plugins/shmring-rate-limiting/)
-- and its catalog entry, without nginx: shmring.client and shmring.phase are
-- replaced by recorders.   luajit tests/ratelimit/test_rl_stub.lua <repo>
-- Checks: the catalog declares every header (plugins/rate-limiting's
-- descriptor does: header_name is configurable) and the fields the keys
-- read; the stub's snapshot carries config.header_name (lower-cased) for
-- limit_by = header and no header otherwise, one state per config table;
-- the schema's custom validator orders the limits like Kong.
local repo = arg[1] or "."
package.path = repo .. "/lua/?.lua;" .. repo .. "/tests/lua/?.lua;" .. package.path

local failures = 0
local function check(cond, what)
    if not cond then
        failures = failures + 1
        print("FAIL: " .. what)
    end
end

local rec = require("stub_recorders")
local states, accesses = rec.states, rec.accesses

local plugins = require("shmring.plugins")
local spec = plugins.get("rate-limiting")
check(spec.headers == "*", "catalog: every header (the OpenResty helper)")
check(spec.want.client_ip and spec.want.route_id and spec.want.path and spec.want.consumer
      and spec.want.service_id,
      "catalog: client_ip, route_id, service_id, path, consumer/credential are sent")
check(spec.phases.access and spec.fail_open == true, "catalog: access, fails open")

local handler = require("kong.plugins.shmring-rate-limiting.handler")
check(handler.PRIORITY == 910, "Kong's rate-limiting priority 910")

local by_ip = { second = 5, limit_by = "ip" }
handler:access(by_ip)
handler:access(by_ip)
check(#states == 1 and accesses[2].st == accesses[1].st, "one state per config table")
check(type(accesses[1].st.spec.headers) == "table" and #accesses[1].st.spec.headers == 0,
      "limit_by = ip: no header in the snapshot")
check(accesses[1].st.spec.want.client_ip, "the spec inherits the catalog's fields")

local by_header = { minute = 5, limit_by = "header", header_name = "X-Tenant-ID" }
handler:access(by_header)
local h = accesses[3].st.spec.headers
check(#h == 1 and h[1] == "x-tenant-id", "limit_by = header: only that header, lower-cased")
check(plugins.get("rate-limiting").headers == "*", "the catalog entry itself is not modified")

local schema = require("kong.plugins.shmring-rate-limiting.schema")
local validator
for _, f in ipairs(schema.fields) do
    if f.config then validator = f.config.custom_validator end
end
check(validator ~= nil, "schema has the periods validator")
check(validator({ second = 5, minute = 100 }) == true, "ordered limits pass")
local ok, err = validator({ second = 10, minute = 5 })
check(not ok and err:find("minute") and err:find("second"), "unordered limits refused: " .. tostring(err))
-- "at least one limit" is Kong's entity check, not the validator's.
check(validator({ limit_by = "ip" }) == true, "no limit: left to the entity check")
local at_least_one
for _, c in ipairs(schema.entity_checks) do
    at_least_one = at_least_one or c.at_least_one_of
end
check(at_least_one and #at_least_one == 6 and at_least_one[1] == "config.second",
      "entity check: at least one of the six limits")

if failures > 0 then
    os.exit(1)
end
print("ok")
