-- shmring.options: set a module's options from a table, refusing names the
-- module does not have (shmring.client and shmring.socket configure()).
local pairs, tostring, error = pairs, tostring, error

local _M = {}

-- cfg: the module's option table (its defaults); nil_ok: names whose
-- default is nil but which may be set; who: the module, for the message.
function _M.apply(cfg, opts, nil_ok, who)
    for k, v in pairs(opts or {}) do
        if cfg[k] == nil and not nil_ok[k] then
            error(who .. ": unknown option " .. tostring(k), 3)
        end
        cfg[k] = v
    end
end

return _M
