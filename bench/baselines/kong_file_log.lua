-- kong_file_log: the baseline of `make bench-log`. It mirrors what Kong's
-- bundled file-log plugin does (kong/plugins/file-log/handler.lua, Kong
-- 3.x): in the log phase, take kong.log.serialize()'s entry, cjson-encode
-- it, and write it with a blocking ffi write(2) on a descriptor opened once
-- per path with O_WRONLY|O_CREAT|O_APPEND (closed and reopened per entry
-- when conf.reopen is set). Kong 0.x-2.x did the same write from a 0-delay
-- ngx.timer; 3.x writes directly from the log phase, as here. The nginx
-- worker does the JSON encoding and the write(2) system call itself, per
-- request. Written for the benchmark, not copied from Kong.
--
--   log_by_lua_block { require("kong_file_log").log({ path = "/tmp/x.log" }) }
local ffi = require("ffi")
local cjson = require("cjson")
local bit = require("bit")

ffi.cdef [[
int open(const char *pathname, int flags, int mode);
int close(int fd);
long write(int fd, const void *buf, size_t count);
char *strerror(int errnum);
]]

local C = ffi.C
local O_WRONLY, O_CREAT, O_APPEND = 0x1, 0x40, 0x400 -- Linux values
local FLAGS = bit.bor(O_WRONLY, O_CREAT, O_APPEND)
local MODE = tonumber("644", 8)

local _M = {}

local fds = {} -- path -> descriptor, per nginx worker

function _M.log(conf)
    local msg = cjson.encode(kong.log.serialize()) .. "\n"
    local fd = fds[conf.path]
    if fd and conf.reopen then
        C.close(fd)
        fds[conf.path], fd = nil, nil
    end
    if not fd then
        fd = C.open(conf.path, FLAGS, MODE)
        if fd < 0 then
            ngx.log(ngx.ERR, "[file-log] failed to open the file: ",
                ffi.string(C.strerror(ffi.errno())))
            return
        end
        fds[conf.path] = fd
    end
    C.write(fd, msg, #msg)
end

return _M
