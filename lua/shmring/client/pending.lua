-- shmring.client.pending: the request ids of this worker and the requests
-- waiting for a reply, by req_id. An entry leaves the table when its reply
-- arrives or when its request gives up, so a late reply finds nothing and
-- is dropped.
local pairs = pairs

local _M = {
    by_id = {}, -- req_id -> { reply, reply_len, err, sema } or, for a CONF, { conf_id, plugin, expires }
    n = 0,      -- entries in by_id
}
local by_id = _M.by_id
local req_base, req_seq = 0, 0

-- Request ids are unique per worker: (pid mod 2^20) << 32 | sequence.
function _M.set_base(pid)
    req_base = (pid % 1048576) * 4294967296
end

function _M.next_id()
    req_seq = req_seq + 1
    if req_seq >= 4294967296 then
        req_seq = 1
    end
    return req_base + req_seq
end

function _M.add(id, p)
    by_id[id] = p
    _M.n = _M.n + 1
end

-- Remove and return the entry of id (nil if there is none).
function _M.take(id)
    local p = by_id[id]
    if p then
        by_id[id] = nil
        _M.n = _M.n - 1
    end
    return p
end

-- Wake every waiting request with an error (the channel went away).
function _M.fail_all(why)
    for id, p in pairs(by_id) do
        by_id[id] = nil
        p.err = why
        if p.sema then
            p.sema:post(1)
        end
    end
    _M.n = 0
end

return _M
