-- shmring.entities: the gateway side of entity look-ups (docs/protocol.md,
-- "Entities"). A C plugin that lacks a consumer or credential asks for it;
-- the daemon answers NEED_ENTITIES with [LOOKUP, kind, key] entries, this
-- module resolves each through the host's `resolve(kind, key)` and the
-- caller resends the record with the answers under "entities". When the
-- host learns that entities changed, forget() sends a FORGET record so the
-- daemon drops what it kept.
--
-- Under Kong the resolver is Kong's own look-up (shmring.kong: kong.cache
-- over the DAO's cache_key, as Kong's key-auth and jwt load them). Plain
-- OpenResty has no entity store: its plugins hold their consumers
-- (credentials_file, inline consumers), and a host without `resolve`
-- refuses a look-up as an error.
local core = require("shmring.core")
local client = require("shmring.client")

local ngx = ngx
local ngx_log, ERR = ngx.log, ngx.ERR
local ffi_string = require("ffi").string
local REC, ACT, REPLY = core.REC, core.ACT, core.REPLY

local _M = {}

-- Counts FORGETs decided in this worker: an answer resolved while one was
-- decided may be stale, so the daemon uses it for that request only.
local forget_seq = 0
-- A FORGET that could not be written (ring full): the next record of
-- this worker sends {all = true} first.
local forget_owed = false

local C -- the library, once loaded by the client

local function str(s)
    return ffi_string(s.ptr, s.len)
end

function _M.needs(r)
    return r.status == REPLY.NEED_ENTITIES
end

-- Resolve every LOOKUP of reply r with host.resolve. Returns the answers
-- ({kind, key, entity or nil, keep}, ...) or nil and why.
function _M.resolve(host, r)
    local resolve = host.resolve
    if not resolve then
        return nil, "the plugin asked for an entity and this host has no resolver "
            .. "(set consumers or credentials_file in its config)"
    end
    local n = r.nactions
    local lookups = {}
    for i = 0, n - 1 do
        local a = r.actions[i]
        if a.op ~= ACT.LOOKUP or a.nstr < 1 then
            return nil, "NEED_ENTITIES reply with a non-LOOKUP entry"
        end
        lookups[i + 1] = { a.num, str(a.a) }
    end
    local seq = forget_seq
    local answers = {}
    for i = 1, n do
        local kind, key = lookups[i][1], lookups[i][2]
        local entity, err = resolve(kind, key)
        if err then
            return nil, "entity look-up failed: " .. tostring(err)
        end
        answers[i] = { kind, key, entity }
    end
    local keep = seq == forget_seq
    for i = 1, n do
        answers[i][4] = keep
    end
    return answers
end

-- Write the "entities" key and array of a resent record.
function _M.encode(W, answers)
    C = C or core.C
    C.shmring_mpw_str(W, "entities", 8)
    C.shmring_mpw_array(W, #answers)
    for i = 1, #answers do
        local a = answers[i]
        C.shmring_mpw_array(W, 4)
        C.shmring_mpw_uint(W, a[1])
        C.shmring_mpw_str(W, a[2], #a[2])
        if a[3] == nil then
            C.shmring_mpw_nil(W)
        else
            client.enc_value(a[3], 1)
        end
        C.shmring_mpw_bool(W, a[4] and 1 or 0)
    end
end

local function encode_forget(W, _, list)
    C = C or core.C
    if list == true then
        C.shmring_mpw_map(W, 1)
        C.shmring_mpw_str(W, "all", 3)
        C.shmring_mpw_bool(W, 1)
        return
    end
    C.shmring_mpw_map(W, 1)
    C.shmring_mpw_str(W, "entities", 8)
    C.shmring_mpw_array(W, #list)
    for i = 1, #list do
        C.shmring_mpw_array(W, 2)
        C.shmring_mpw_uint(W, list[i][1])
        C.shmring_mpw_str(W, list[i][2], #list[i][2])
    end
end

-- Tell the daemon to drop entities: list = { {kind, key}, ... }, or true for
-- all of them (a declarative reload). A FORGET that cannot be written now
-- is owed as a FORGET of everything before this worker's next record.
function _M.forget(list)
    forget_seq = forget_seq + 1
    if list ~= true and #list == 0 then
        return
    end
    if forget_owed then
        list = true
    end
    local ok, err = client.send_plain(REC.FORGET, encode_forget, list)
    if ok then
        forget_owed = false
        return
    end
    -- Daemon down: a new one starts empty, but it may come back with
    -- this channel's cache (only the nginx side was cut off).
    if not forget_owed then
        ngx_log(ERR, "shmring: could not send FORGET (", err, "); sending a full one later")
    end
    forget_owed = true
end

-- Before a record of a plugin that uses entities: pay what is owed.
function _M.settle()
    if forget_owed then
        _M.forget(true)
    end
end

return _M
