-- A stand-in for shmringd, used ONLY to test the Lua client without the
-- daemon (tests/lua/). It creates an instance, beats, answers CONF with
-- {s=0} and ACCESS/REWRITE with hello's actions (X-Hello: World on the
-- upstream request and the response), and rings armed doorbells.
--
--   luajit tests/lua/fake_server.lua <libshmring.so> <dir> [channels] [seconds] [mode] [ring]
--   mode: "ok" (default), "slow" (answer after 50 ms), "mute" (never answer),
--         "stuck" (never even read the SQ, so it fills up),
--         "unknown" (answer s=2 to every first ACCESS of a conf id),
--         "badop" (hello's response header, then an action op no gateway knows),
--         "exit" (hello's response header, then EXIT 403 with a body)
local ffi = require("ffi")
package.path = arg[0]:gsub("tests/lua/fake_server.lua$", "lua/?.lua;") .. package.path
local core = require("shmring.core")
local C = assert(core.load(arg[1]))
local REPLY, ACT = core.REPLY, core.ACT
local dir = arg[2]
local nch = tonumber(arg[3] or 4)
local seconds = tonumber(arg[4] or 30)
local mode = arg[5] or "ok"
local ring = tonumber(arg[6] or 0) -- SQ/CQ bytes; 0 = the library default

ffi.cdef [[
struct shmring_create_opts {
	const char *dir; uint32_t nchannels, nworkers, sq_size, cq_size;
	uint32_t mode; uint32_t uid; uint32_t gid;
};
int shmring_instance_create(const struct shmring_create_opts *o, struct shmring_instance **out);
void shmring_instance_beat(struct shmring_instance *inst);
int shmring_instance_set_workers(struct shmring_instance *inst, uint32_t n);
int shmring_claim(struct shmring_chan *c, uint32_t len, struct shmring_claim *claim);
int shmring_commit(struct shmring_chan *c, struct shmring_claim *claim, uint32_t len,
                   uint16_t type, uint16_t flags, uint64_t req_id);
void shmring_mpw_init(struct shmring_mpw *w, void *buf, uint32_t cap);
int shmring_mpw_finish(const struct shmring_mpw *w);
void shmring_instance_set_closed(struct shmring_instance *inst);
int usleep(unsigned int us);
struct sockaddr_un { unsigned short sun_family; char sun_path[108]; };
int socket(int, int, int);
int bind(int, const struct sockaddr_un *, unsigned int);
int listen(int, int);
int accept4(int, void *, void *, int);
long write(int, const void *, size_t);
int close(int);
int unlink(const char *);
]]

local o = ffi.new("struct shmring_create_opts", { dir = dir, nchannels = nch, nworkers = 1,
    sq_size = ring, cq_size = ring,
    mode = 432, uid = 0xffffffff, gid = 0xffffffff })
local ibox = ffi.new("struct shmring_instance *[1]")
assert(C.shmring_instance_create(o, ibox) == 0, "create")
local inst = ibox[0]
C.shmring_instance_set_workers(inst, 1)
C.shmring_instance_beat(inst)

local chans, lfds, conns = {}, {}, {}
local buf = ffi.new("char[256]")
for k = 0, nch - 1 do
    local cbox = ffi.new("struct shmring_chan *[1]")
    assert(C.shmring_chan_open(inst, k, core.ROLE_SERVER, cbox) == 0)
    chans[k] = cbox[0]
    local n = C.shmring_doorbell_path(inst, k, buf, 256)
    local path = ffi.string(buf, n)
    C.unlink(path)
    local fd = ffi.C.socket(1, 1 + 2048, 0) -- AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK
    local sa = ffi.new("struct sockaddr_un")
    sa.sun_family = 1
    ffi.copy(sa.sun_path, path)
    assert(ffi.C.bind(fd, sa, ffi.sizeof(sa)) == 0, "bind " .. path)
    ffi.C.listen(fd, 16)
    lfds[k] = fd
    conns[k] = {}
end

local rec = ffi.new("struct shmring_rec")
local claim = ffi.new("struct shmring_claim")
local w = ffi.new("struct shmring_mpw")
local seen = {}

local function reply(c, req_id, fill)
    while C.shmring_claim(c, 256, claim) ~= 0 do C.usleep(100) end
    C.shmring_mpw_init(w, claim.payload, claim.cap)
    fill()
    C.shmring_commit(c, claim, C.shmring_mpw_finish(w), core.REC.REPLY, 0, req_id)
end
local function s(x) C.shmring_mpw_str(w, x, #x) end

local delayed = {}
local deadline = os.time() + seconds
local last_beat = 0
while os.time() < deadline do
    local busy = false
    for k = 0, nch - 1 do
        local c = chans[k]
        local fd = ffi.C.accept4(lfds[k], nil, nil, 2048)
        if fd >= 0 then conns[k][#conns[k] + 1] = fd end
        local n = 0
        while mode ~= "stuck" and C.shmring_peek(c, rec) == 0 do
            n = n + 1
            local id, t = rec.req_id, rec.type
            if t == core.REC.CONF then
                reply(c, id, function() C.shmring_mpw_map(w, 1); s("s"); C.shmring_mpw_uint(w, REPLY.OK) end)
            elseif t == core.REC.ACCESS or t == core.REC.REWRITE then
                if mode == "mute" then
                elseif mode == "unknown" and not seen[tonumber(id) % 2] then
                    seen[tonumber(id) % 2] = true
                    reply(c, id, function() C.shmring_mpw_map(w, 1); s("s"); C.shmring_mpw_uint(w, REPLY.UNKNOWN_CONF) end)
                elseif mode == "badop" then
                    reply(c, id, function()
                        C.shmring_mpw_map(w, 2); s("s"); C.shmring_mpw_uint(w, REPLY.OK); s("a")
                        C.shmring_mpw_array(w, 2)
                        C.shmring_mpw_array(w, 3); C.shmring_mpw_uint(w, ACT.SET_RESP_HEADER); s("X-Hello"); s("World")
                        C.shmring_mpw_array(w, 1); C.shmring_mpw_uint(w, 99) -- no such op
                    end)
                elseif mode == "exit" then
                    reply(c, id, function()
                        C.shmring_mpw_map(w, 2); s("s"); C.shmring_mpw_uint(w, REPLY.OK); s("a")
                        C.shmring_mpw_array(w, 2)
                        C.shmring_mpw_array(w, 3); C.shmring_mpw_uint(w, ACT.SET_RESP_HEADER); s("X-Hello"); s("World")
                        C.shmring_mpw_array(w, 3); C.shmring_mpw_uint(w, ACT.EXIT); C.shmring_mpw_uint(w, 403); s("go away")
                    end)
                else
                    reply(c, id, function()
                        C.shmring_mpw_map(w, 2); s("s"); C.shmring_mpw_uint(w, REPLY.OK); s("a")
                        C.shmring_mpw_array(w, 2)
                        C.shmring_mpw_array(w, 3); C.shmring_mpw_uint(w, ACT.SET_REQ_HEADER); s("X-Hello"); s("World")
                        C.shmring_mpw_array(w, 3); C.shmring_mpw_uint(w, ACT.SET_RESP_HEADER); s("X-Hello"); s("World")
                    end)
                end
            end
        end
        if n > 0 then
            busy = true
            C.shmring_release(c)
            if mode == "slow" then C.usleep(50000) end
            if C.shmring_publish(c) == 1 then
                for _, cfd in ipairs(conns[k]) do ffi.C.write(cfd, "x", 1) end
            end
        end
    end
    local now = os.clock()
    if os.time() ~= last_beat then last_beat = os.time() end
    C.shmring_instance_beat(inst)
    if not busy then C.usleep(200) end
end
C.shmring_instance_set_closed(inst)
