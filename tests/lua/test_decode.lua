-- Unit test of the C helpers the Lua client uses (shmring/client.h), from
-- plain LuaJIT through the same FFI declarations (lua/shmring/core.lua):
-- a REPLY written with the msgpack writers decodes into the flat action
-- array; hostile payloads are refused, not crashed on.
--   luajit tests/lua/test_decode.lua <libshmring.so>
package.path = arg[0]:gsub("tests/lua/test_decode.lua$", "lua/?.lua;") .. package.path
local ffi = require("ffi")
local core = require("shmring.core")
local C = assert(core.load(arg[1]))
ffi.cdef [[
void shmring_mpw_init(struct shmring_mpw *w, void *buf, uint32_t cap);
int shmring_mpw_finish(const struct shmring_mpw *w);
]]

local passed = 0
local function check(cond, what)
    if not cond then
        io.write("FAIL: ", what, "\n")
        os.exit(1)
    end
    passed = passed + 1
end

local buf = ffi.new("uint8_t[4096]")
local w = ffi.new("struct shmring_mpw")
local function s(x) C.shmring_mpw_str(w, x, #x) end
local function u(x) C.shmring_mpw_uint(w, x) end

local dbox = ffi.new("struct shmring_client_decoder *[1]")
check(C.shmring_client_decoder_new(dbox) == 0, "decoder")
local dec = ffi.gc(dbox[0], C.shmring_client_decoder_free)
local rbox = ffi.new("struct shmring_client_reply *[1]")
local function str(x) return x.ptr ~= nil and ffi.string(x.ptr, x.len) or nil end

-- {s=0, a=[[1,"X-A","1"], [9, 403, "no", {"X-Why":"test"}], [12, 2, "msg"], [11, {}, nil]]}
C.shmring_mpw_init(w, buf, 4096)
C.shmring_mpw_map(w, 2); s("s"); u(0); s("a")
C.shmring_mpw_array(w, 4)
C.shmring_mpw_array(w, 3); u(1); s("X-A"); s("1")
C.shmring_mpw_array(w, 4); u(9); u(403); s("no"); C.shmring_mpw_map(w, 1); s("X-Why"); s("test")
C.shmring_mpw_array(w, 3); u(12); u(2); s("msg")
C.shmring_mpw_array(w, 3); u(11); C.shmring_mpw_map(w, 0); C.shmring_mpw_nil(w)
local n = C.shmring_mpw_finish(w)
check(n > 0, "encoded")
check(C.shmring_client_decode_reply(dec, buf, n, rbox) == 0, "decodes")
local r = rbox[0]
check(r.status == 0 and r.nactions == 4, "status 0, four actions")
local a = r.actions[0]
check(a.op == 1 and str(a.a) == "X-A" and str(a.b) == "1" and a.nstr == 2, "SET_REQ_HEADER name, value")
a = r.actions[1]
check(a.op == 9 and a.num == 403 and str(a.a) == "no", "EXIT status, body")
check(C.shmring_client_map_len(a.map) == 1, "EXIT headers map")
local k, v = ffi.new("struct shmring_client_str[1]"), ffi.new("struct shmring_client_str[1]")
check(C.shmring_client_map_str(a.map, 0, k, v) == 0 and str(k[0]) == "X-Why" and str(v[0]) == "test",
    "EXIT header entry")
check(C.shmring_client_map_str(a.map, 1, k, v) == core.ENOENT, "past the end: -ENOENT")
a = r.actions[2]
check(a.op == 12 and a.num == 2 and str(a.a) == "msg", "LOG level, message")
a = r.actions[3]
check(a.op == 11 and a.map ~= nil and a.nstr == 0, "AUTHENTICATE consumer map, nil credential")

-- A reply is taken whole or refused: {s=0, a=[[3,"X-Keep"], <bad>]} with
-- each kind of malformed action after a good one.
local EBADMSG = -74
local function refused(what, write_bad)
    C.shmring_mpw_init(w, buf, 4096)
    C.shmring_mpw_map(w, 2); s("s"); u(0); s("a")
    C.shmring_mpw_array(w, 2)
    C.shmring_mpw_array(w, 2); u(3); s("X-Keep")
    write_bad()
    local len = C.shmring_mpw_finish(w)
    check(len > 0, what .. ": encoded")
    check(C.shmring_client_decode_reply(dec, buf, len, rbox) == EBADMSG and rbox[0] == nil,
        what .. ": the whole reply refused")
end
refused("not an array", function() u(5) end)
refused("empty action", function() C.shmring_mpw_array(w, 0) end)
refused("unknown op", function() C.shmring_mpw_array(w, 1); u(99) end)
refused("op 0", function() C.shmring_mpw_array(w, 2); u(0); s("x") end)
refused("op as a string", function() C.shmring_mpw_array(w, 2); s("1"); s("x") end)
refused("SET_REQ_HEADER without a value", function() C.shmring_mpw_array(w, 2); u(1); s("X-A") end)
refused("SET_QUERY without a query", function() C.shmring_mpw_array(w, 1); u(5) end)
refused("EXIT without a status", function() C.shmring_mpw_array(w, 2); u(9); s("body") end)
refused("AUTHENTICATE without a consumer", function() C.shmring_mpw_array(w, 2); u(11); s("cred") end)
refused("LOG without a message", function() C.shmring_mpw_array(w, 2); u(12); u(1) end)
refused("an argument no op takes", function()
    C.shmring_mpw_array(w, 3); u(3); s("X-A"); C.shmring_mpw_array(w, 0)
end)
refused("a third string", function() C.shmring_mpw_array(w, 4); u(1); s("a"); s("b"); s("c") end)
C.shmring_mpw_init(w, buf, 4096)
C.shmring_mpw_map(w, 2); s("s"); u(0); s("a"); u(1)
n = C.shmring_mpw_finish(w)
check(C.shmring_client_decode_reply(dec, buf, n, rbox) == EBADMSG, "\"a\" not an array: refused")

-- {s=1, e="bad"} and {s=2}
C.shmring_mpw_init(w, buf, 4096)
C.shmring_mpw_map(w, 2); s("s"); u(1); s("e"); s("bad")
n = C.shmring_mpw_finish(w)
check(C.shmring_client_decode_reply(dec, buf, n, rbox) == 0 and rbox[0].status == 1
    and str(rbox[0].error) == "bad", "error reply")
C.shmring_mpw_init(w, buf, 4096)
C.shmring_mpw_map(w, 1); s("s"); u(2)
n = C.shmring_mpw_finish(w)
check(C.shmring_client_decode_reply(dec, buf, n, rbox) == 0 and rbox[0].status == 2
    and rbox[0].nactions == 0, "unknown-conf reply")

-- No fixed action limit: 1000 actions (more than any fixed array would
-- hold) all decode, the last one included, then a short reply again.
local big = ffi.new("uint8_t[65536]")
C.shmring_mpw_init(w, big, 65536)
C.shmring_mpw_map(w, 2); s("s"); u(0); s("a"); C.shmring_mpw_array(w, 1001)
for i = 1, 1000 do C.shmring_mpw_array(w, 2); u(3); s("x" .. i) end
C.shmring_mpw_array(w, 2); u(5); s("last=1")
n = C.shmring_mpw_finish(w)
check(n > 0 and C.shmring_client_decode_reply(dec, big, n, rbox) == 0
    and rbox[0].nactions == 1001, "1001 actions: every one kept")
check(str(rbox[0].actions[999].a) == "x1000" and rbox[0].actions[1000].op == 5
    and str(rbox[0].actions[1000].a) == "last=1", "the last actions intact")
C.shmring_mpw_init(w, buf, 4096)
C.shmring_mpw_map(w, 2); s("s"); u(0); s("a"); C.shmring_mpw_array(w, 1)
C.shmring_mpw_array(w, 2); u(4); s("/p")
n = C.shmring_mpw_finish(w)
check(C.shmring_client_decode_reply(dec, buf, n, rbox) == 0 and rbox[0].nactions == 1
    and str(rbox[0].actions[0].a) == "/p", "a short reply after a long one")

-- Read in one walk, answered as a lookup by key would: the first "s", "e"
-- and "a" count, whatever their order, and every other key and value is
-- stepped over (a nested one too). A map's entries read in any order.
C.shmring_mpw_init(w, buf, 4096)
C.shmring_mpw_map(w, 6)
s("x"); C.shmring_mpw_array(w, 2); C.shmring_mpw_map(w, 1); s("k"); u(1); C.shmring_mpw_nil(w)
s("a"); C.shmring_mpw_array(w, 1)
C.shmring_mpw_array(w, 3); u(9); u(429); C.shmring_mpw_map(w, 3)
s("A"); s("1"); s("B"); u(2); s("C"); s("3")
s("s"); u(0); s("a"); u(7); s("s"); u(5); s("e"); s("first")
n = C.shmring_mpw_finish(w)
check(C.shmring_client_decode_reply(dec, buf, n, rbox) == 0 and rbox[0].status == 0
    and rbox[0].nactions == 1 and str(rbox[0].error) == "first", "first \"s\", \"a\", \"e\" in any order")
a = rbox[0].actions[0]
check(a.op == 9 and a.num == 429 and C.shmring_client_map_len(a.map) == 3, "EXIT with three headers")
check(C.shmring_client_map_str(a.map, 2, k, v) == 0 and str(k[0]) == "C" and str(v[0]) == "3", "entry 2 first")
check(C.shmring_client_map_str(a.map, 0, k, v) == 0 and str(k[0]) == "A" and str(v[0]) == "1", "then entry 0")
check(C.shmring_client_map_str(a.map, 1, k, v) == EBADMSG and k[0].ptr == nil, "entry 1: not a string")
check(C.shmring_client_map_str(a.map, 2, k, v) == 0 and str(v[0]) == "3", "entry 2 again")
check(C.shmring_client_decode_reply(dec, buf, n + 1, rbox) == EBADMSG, "a byte after the reply: refused")
-- Nesting: 31 arrays inside the root map's value are taken, 32 are not
-- (msgpack-c's unpacker refuses to open a container past 32).
for depth, want in pairs({[31] = 0, [32] = EBADMSG}) do
    C.shmring_mpw_init(w, buf, 4096)
    C.shmring_mpw_map(w, 2); s("s"); u(0); s("x")
    for _ = 1, depth - 1 do C.shmring_mpw_array(w, 1) end
    C.shmring_mpw_array(w, 0)
    n = C.shmring_mpw_finish(w)
    check(C.shmring_client_decode_reply(dec, buf, n, rbox) == want, depth .. " arrays deep")
end

-- Hostile input: truncated, not a map, garbage.
check(C.shmring_client_decode_reply(dec, buf, n - 1, rbox) < 0 and rbox[0] == nil, "truncated: refused")
check(C.shmring_client_decode_reply(dec, "\x93\x01\x02\x03", 4, rbox) < 0, "array root: refused")
check(C.shmring_client_decode_reply(dec, "\xdd\xff\xff\xff\xff", 5, rbox) < 0, "huge array count: refused")
math.randomseed(7)
for _ = 1, 2000 do
    local len = math.random(1, 64)
    for i = 0, len - 1 do buf[i] = math.random(0, 255) end
    C.shmring_client_decode_reply(dec, buf, len, rbox) -- must not crash
end
check(true, "2000 random payloads survived")

io.write(passed, " passed, 0 failed\n")
