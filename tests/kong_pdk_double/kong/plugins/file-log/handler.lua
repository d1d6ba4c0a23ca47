-- file-log: Kong's own file-log in the PDK double, so a test reads what
-- Kong's loggers get from kong.log.serialize() (the consumer of a shmring
-- auth, the correlation id set with set_serialize_value). The writing is
-- the benchmark's Lua file-log (bench/baselines/kong_file_log.lua).
local FileLog = { PRIORITY = 9, VERSION = "test" }

function FileLog:log(conf)
    require("kong_file_log").log(conf)
end

return FileLog
