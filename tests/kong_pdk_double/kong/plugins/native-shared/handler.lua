-- native-shared: stands for a Kong plugin that leaves values for later
-- plugins in kong.ctx.shared (request-transformer's $(shared.NAME)
-- templates read them): config.values, copied in access.
local Shared = { PRIORITY = 900, VERSION = "test" }

function Shared:access(conf)
    local shared = kong.ctx.shared
    for k, v in pairs(conf.values) do
        shared[k] = v
    end
end

return Shared
