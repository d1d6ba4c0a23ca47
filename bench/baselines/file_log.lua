-- Native Lua baseline of plugins/log as file-log (bench/e2e), mirroring
-- Kong's bundled kong/plugins/file-log/handler.lua: in the log phase,
-- kong.log.serialize() (here shmring.ngx's log_entry, the same fields),
-- cjson.encode, and one blocking write(2) per request to a file opened
-- once with O_WRONLY|O_CREAT|O_APPEND (Kong keeps the fd in a table per
-- path, through LuaJIT FFI's C.open / C.write).
local ffi = require("ffi")
local cjson = require("cjson.safe")

pcall(ffi.cdef, [[
int open(const char *pathname, int flags, int mode);
long write(int fd, const void *buf, size_t count);
]])

local C = ffi.C
local O_WRONLY, O_CREAT, O_APPEND = 0x01, 0x40, 0x400
local MODE = tonumber("644", 8)

local _M = {}

local fds = {}

function _M.new(conf, serialize)
    return { path = conf.path, serialize = serialize }
end

function _M.log(st)
    local msg = cjson.encode(st.serialize()) .. "\n"
    local fd = fds[st.path]
    if not fd then
        fd = C.open(st.path, O_WRONLY + O_CREAT + O_APPEND, MODE)
        if fd < 0 then
            ngx.log(ngx.ERR, "file-log: cannot open ", st.path)
            return
        end
        fds[st.path] = fd
    end
    C.write(fd, msg, #msg)
end

return _M
