-- For tests of the Kong stubs without nginx: shmring.client and shmring.phase
-- (the FFI-backed modules) replaced by recorders, so the real shmring.kong and
-- the stub run in plain LuaJIT. require() it before the stub; it returns
-- { states = {...}, accesses = {...} }: every phase state made (with its
-- spec) and every access call (with its state and conf), in order. The
-- stubs' access reads the login of earlier plugins through kong.client
-- (here there is none) and loads the stub's schema, so Kong's typedefs come
-- from the schema double.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "../kong_pdk_double/?.lua;" .. package.path
require("kong_schema_double").install()
_G.ngx = _G.ngx or { ctx = {} }
_G.kong = _G.kong or { client = { get_consumer = function() end,
                                  get_credential = function() end } }

local rec = { states = {}, accesses = {} }

package.loaded["shmring.client"] = { init_worker = function() end }
package.loaded["shmring.phase"] = {
    state = function(host, name, spec)
        local st = { host = host, name = name, spec = spec }
        rec.states[#rec.states + 1] = st
        return st
    end,
    access = function(st, conf)
        rec.accesses[#rec.accesses + 1] = { st = st, conf = conf }
    end,
}

return rec
