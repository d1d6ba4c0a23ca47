-- kong_db_double: the TEST DOUBLE of Kong's entity store where shmring's
-- entity resolver (lua/shmring/kong.lua) touches it: kong.db's DAOs for
-- consumers, keyauth_credentials and jwt_secrets, kong.cache (an mlcache),
-- kong.worker_events, kong.client.load_consumer, and a stand-in for the
-- Admin API routes an operator uses to change them. It is NOT Kong; each
-- part follows Kong 3.x's source:
--
-- * DAO (kong/db/dao/init.lua): select({id}), select_by_<endpoint_key>
--   (key; username), cache_key(key | entity) as
--   "<dao>:<key>:::::<ws_id>" (the cache_key fields, else the primary key).
--   Entities have no nulls (unset fields absent). Rows live in a shared
--   dict, so every worker sees one database; each select counts a look-up
--   (lookups(), for tests).
-- * kong.cache (kong/cache/init.lua over lua-resty-mlcache): get(key,
--   opts, cb, ...) -> value, err, hit_level with L1 per worker (1), L2 in
--   the kong_db_cache shared dict (2), the callback under a lock in the
--   same dict so concurrent misses run it once across workers (3);
--   negative caching (nil kept under neg_ttl); cb's third value is the ttl;
--   a throwing callback is an error. invalidate(key) deletes L1 and L2 and
--   broadcasts ("mlcache", "mlcache:invalidations:kong_db_cache", key) to
--   every worker, whose mlcache drops its L1 first; purge() likewise with
--   "mlcache:purge:kong_db_cache".
-- * kong.worker_events (lua-resty-events): register(handler, source,
--   event...), post_local (this worker, now), post (every worker: a log in
--   a shared dict that each worker polls every POLL_S). Handlers run in
--   registration order, so mlcache's own run before any plugin's.
-- * A DAO write posts "dao:crud" locally (DAO:post_crud_event); its handler
--   (kong/runloop/events.lua dao_crud_handler, crud_consumers_handler)
--   invalidates the entity's cache_key (and the old one, and a consumer's
--   usernames), then posts "crud" locally. A declarative config posts
--   ("declarative", "reconfigure") to every worker, whose handler purges
--   kong.cache (kong/runloop/handler.lua reconfigure_handler).
--
-- Needs `lua_shared_dict kong_db_cache` and `lua_shared_dict kong_double`.
local cjson = require("cjson.safe")

local ngx = ngx
local type, pairs, ipairs, error, pcall, tostring = type, pairs, ipairs, error, pcall, tostring
local fmt = string.format

local _M = {}

local POLL_S = 0.05     -- worker_events poll interval (lua-resty-events pushes; < 1 s)
local LOCK_TIMEOUT = 5  -- resty.lock's default, as mlcache's
local NEG_TTL = 300     -- kong.conf db_cache_neg_ttl's effect when unset (kong/cache)

local function shm(name)
    local d = ngx.shared[name]
    if not d then
        error("kong double: lua_shared_dict " .. name .. " is needed", 3)
    end
    return d
end

local ws_id -- the default workspace's id (kong_pdk_double)

---------------------------------------------------------------------------
-- kong.worker_events

local handlers = {} -- source -> { {event or false, fn}, ... }
local polling = false
local last_seen = 0

local worker_events = {}

function worker_events.register(fn, source, ...)
    if type(fn) ~= "function" then
        error("handler must be a function", 2)
    end
    local list = handlers[source]
    if not list then
        list = {}
        handlers[source] = list
    end
    local n = select("#", ...)
    if n == 0 then
        list[#list + 1] = { false, fn }
    end
    for i = 1, n do
        list[#list + 1] = { (select(i, ...)), fn }
    end
end

local function dispatch(source, event, data)
    for _, h in ipairs(handlers[source] or {}) do
        if h[1] == false or h[1] == event then
            local ok, err = pcall(h[2], data, event, source)
            if not ok then
                ngx.log(ngx.ERR, "[kong double] worker_events handler failed: ", err)
            end
        end
    end
end

function worker_events.post_local(source, event, data)
    dispatch(source, event, data)
    return true
end

local function poll()
    local db = shm("kong_double")
    local last = db:get("ev:seq") or 0
    while last_seen < last do
        last_seen = last_seen + 1
        local ev = cjson.decode(db:get("ev:" .. last_seen) or "null")
        if ev then
            dispatch(ev[1], ev[2], ev[3])
        end
    end
end

function worker_events.post(source, event, data)
    local db = shm("kong_double")
    local seq = db:incr("ev:seq", 1, 0)
    db:set("ev:" .. seq, cjson.encode({ source, event, data == nil and cjson.null or data }), 60)
    -- This worker handles it on its next poll, as every other worker.
    return true
end

local function poller(premature)
    if premature then
        return
    end
    poll()
    _G.native_timer_at(POLL_S, poller)
end

---------------------------------------------------------------------------
-- kong.cache

local L1 = {} -- key -> { value or NEG, expires (ngx.now) or false }
local NEG = {}
local MARK_VALUE, MARK_NEG = "v", "n"

local cache = {}

local function l2_get(key)
    local s = shm("kong_db_cache"):get(key)
    if not s then
        return nil
    end
    if s:sub(1, 1) == MARK_NEG then
        return NEG
    end
    return cjson.decode(s:sub(2))
end

local function l1_put(key, v, ttl)
    L1[key] = { v, ttl and ttl > 0 and ngx.now() + ttl or false }
end

local function result(v, level)
    if v == NEG then
        return nil, nil, level
    end
    return v, nil, level
end

function cache:get(key, opts, cb, ...)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("opts must be a table", 2)
    end
    local e = L1[key]
    if e and (not e[2] or e[2] > ngx.now()) then
        return result(e[1], 1)
    end
    local dict = shm("kong_db_cache")
    local v = l2_get(key)
    if v ~= nil then
        l1_put(key, v, dict:ttl(key))
        return result(v, 2)
    end
    -- The callback once per key, across workers (mlcache's resty.lock).
    local lock = "lock:" .. key
    local give_up = ngx.now() + LOCK_TIMEOUT
    while not dict:add(lock, true, LOCK_TIMEOUT) do
        ngx.sleep(0.001)
        v = l2_get(key)
        if v ~= nil then
            l1_put(key, v, dict:ttl(key))
            return result(v, 2)
        end
        if ngx.now() > give_up then
            return nil, "failed to get from node cache: could not acquire callback lock: timeout"
        end
    end
    v = l2_get(key) -- a holder that just finished
    if v ~= nil then
        dict:delete(lock)
        l1_put(key, v, dict:ttl(key))
        return result(v, 2)
    end
    local ok, value, err, ttl = pcall(cb, ...)
    if not ok then
        dict:delete(lock)
        return nil, "failed to get from node cache: callback threw an error: " .. tostring(value)
    end
    if err then
        dict:delete(lock)
        return nil, "failed to get from node cache: " .. tostring(err)
    end
    if value == nil then
        ttl = opts and opts.neg_ttl or NEG_TTL
        dict:set(key, MARK_NEG, ttl)
        l1_put(key, NEG, ttl)
    else
        ttl = ttl or opts and opts.ttl or 0
        dict:set(key, MARK_VALUE .. cjson.encode(value), ttl)
        l1_put(key, value, ttl)
    end
    dict:delete(lock)
    return value, nil, 3
end

function cache:invalidate_local(key)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end
    L1[key] = nil
    shm("kong_db_cache"):delete(key)
    worker_events.post("mlcache", "mlcache:invalidations:kong_db_cache", key)
end

cache.invalidate = cache.invalidate_local -- one node: no cluster events

function cache:purge()
    L1 = {}
    shm("kong_db_cache"):flush_all()
    worker_events.post("mlcache", "mlcache:purge:kong_db_cache", "")
end

---------------------------------------------------------------------------
-- kong.db: rows in the kong_double dict, "row:<dao>:<id>" -> JSON, and
-- "idx:<dao>:<field>:<value>" -> id for the unique fields.

local SCHEMA = {
    consumers = { unique = { "username", "custom_id" }, endpoint_key = "username" },
    keyauth_credentials = { unique = { "key" }, cache_key = "key", endpoint_key = "key" },
    jwt_secrets = { unique = { "key" }, cache_key = "key", endpoint_key = "key" },
}

local function count_lookup(dao)
    local db = shm("kong_double")
    db:incr("lookups:" .. dao, 1, 0)
end

local function row(dao, id)
    return cjson.decode(shm("kong_double"):get("row:" .. dao .. ":" .. id) or "null")
end

local function by_unique(dao, field, value)
    local id = shm("kong_double"):get("idx:" .. dao .. ":" .. field .. ":" .. value)
    return id and row(dao, id) or nil
end

local function new_dao(name)
    local s = SCHEMA[name]
    local dao = { schema = { name = name, cache_key = s.cache_key and { s.cache_key } } }
    function dao:cache_key(key)
        if type(key) == "table" then
            key = key[s.cache_key or "id"]
        end
        if type(key) ~= "string" then
            error("key must be a string or an entity table", 2)
        end
        return fmt("%s:%s:%s:%s:%s:%s:%s", name, key, "", "", "", "", ws_id)
    end
    function dao:select(pk)
        if type(pk) ~= "table" or type(pk.id) ~= "string" then
            error("primary_key must be a table with an id", 2)
        end
        count_lookup(name)
        return row(name, pk.id)
    end
    dao["select_by_" .. s.endpoint_key] = function(_, value)
        if type(value) ~= "string" then
            error(s.endpoint_key .. " must be a string", 2)
        end
        count_lookup(name)
        return by_unique(name, s.endpoint_key, value)
    end
    return dao
end

local db = {
    strategy = "off",
    consumers = new_dao("consumers"),
    keyauth_credentials = new_dao("keyauth_credentials"),
    jwt_secrets = new_dao("jwt_secrets"),
}

local function is_uuid(s)
    return type(s) == "string"
        and s:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$")
        ~= nil
end

-- kong/pdk/client.lua load_consumer.
local function load_consumer(consumer_id, search_by_username)
    if type(consumer_id) ~= "string" then
        error("consumer_id must be a string", 2)
    end
    if not is_uuid(consumer_id) and not search_by_username then
        error("cannot load a consumer with an id that is not a uuid", 2)
    end
    if is_uuid(consumer_id) then
        local c = db.consumers:select({ id = consumer_id })
        if c then
            return c
        end
    end
    if search_by_username then
        return db.consumers:select_by_username(consumer_id)
    end
end

---------------------------------------------------------------------------
-- Writes, and the events Kong posts for them.

local function put_row(dao, e)
    local d = shm("kong_double")
    d:set("row:" .. dao .. ":" .. e.id, cjson.encode(e))
    for _, f in ipairs(SCHEMA[dao].unique) do
        if e[f] ~= nil then
            d:set("idx:" .. dao .. ":" .. f .. ":" .. e[f], e.id)
        end
    end
end

local function delete_row(dao, e)
    local d = shm("kong_double")
    d:delete("row:" .. dao .. ":" .. e.id)
    for _, f in ipairs(SCHEMA[dao].unique) do
        if e[f] ~= nil then
            d:delete("idx:" .. dao .. ":" .. f .. ":" .. e[f])
        end
    end
end

-- kong/runloop/events.lua dao_crud_handler (+ crud_consumers_handler).
local function dao_crud_handler(data)
    local name = data.schema.name
    local key = db[name]:cache_key(data.entity)
    kong.cache:invalidate(key)
    if data.old_entity then
        local old = db[name]:cache_key(data.old_entity)
        if old ~= key then
            kong.cache:invalidate(old)
        end
    end
    if name == "consumers" then
        for _, c in ipairs({ data.old_entity or false, data.entity }) do
            if c and type(c.username) == "string" and c.username ~= "" then
                kong.cache:invalidate(db.consumers:cache_key(c.username))
            end
        end
    end
    worker_events.post_local("crud", name, data)
    worker_events.post_local("crud", name .. ":" .. data.operation, data)
end

local function post_crud(dao, operation, entity, old_entity)
    worker_events.post_local("dao:crud", operation, {
        operation = operation, schema = { name = dao }, entity = entity, old_entity = old_entity,
    })
end

local function write(dao, operation, entity, old)
    if old then
        delete_row(dao, old)
    end
    if operation ~= "delete" then
        entity.created_at = entity.created_at or ngx.time()
        entity.ws_id = ws_id
        put_row(dao, entity)
    end
    post_crud(dao, operation, entity, old)
    return entity
end

local uuid_n = 0
local function new_id()
    uuid_n = uuid_n + 1
    local h = ngx.md5(ngx.now() .. ":" .. ngx.worker.pid() .. ":" .. uuid_n)
    return fmt("%s-%s-4%s-8%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), h:sub(18, 20),
        h:sub(21, 32))
end

-- Load a declarative config (kong.yml's shape: consumers with nested
-- keyauth_credentials and jwt_secrets) as the whole database.
local function load_declarative(config)
    local d = shm("kong_double")
    for _, k in ipairs(d:get_keys(0)) do
        if k:sub(1, 4) == "row:" or k:sub(1, 4) == "idx:" then
            d:delete(k)
        end
    end
    for _, c in ipairs(config.consumers or {}) do
        local consumer = { id = c.id or new_id(), username = c.username, custom_id = c.custom_id,
                           created_at = ngx.time(), ws_id = ws_id }
        put_row("consumers", consumer)
        for _, k in ipairs(c.keyauth_credentials or {}) do
            put_row("keyauth_credentials", { id = k.id or new_id(), key = k.key, ttl = k.ttl,
                consumer = { id = consumer.id }, created_at = ngx.time(), ws_id = ws_id })
        end
        for _, j in ipairs(c.jwt_secrets or {}) do
            put_row("jwt_secrets", { id = j.id or new_id(), key = j.key or new_id(),
                secret = j.secret or new_id(), algorithm = j.algorithm or "HS256",
                rsa_public_key = j.rsa_public_key, consumer = { id = consumer.id },
                created_at = ngx.time(), ws_id = ws_id })
        end
    end
    d:set("db:loaded", true)
end

---------------------------------------------------------------------------
-- The Admin API stand-in: the routes of Kong's Admin API the docs show.
--   POST   /kong-admin/consumers                      {username, custom_id, id}
--   PATCH  /kong-admin/consumers/{id|username}        {username, custom_id}
--   DELETE /kong-admin/consumers/{id|username}        (and its credentials)
--   POST   /kong-admin/consumers/{c}/key-auth         {key, id, ttl}
--   DELETE /kong-admin/consumers/{c}/key-auth/{id|key}
--   POST   /kong-admin/consumers/{c}/jwt              {key, secret, algorithm, rsa_public_key}
--   PATCH  /kong-admin/consumers/{c}/jwt/{id|key}     {secret, ...}
--   DELETE /kong-admin/consumers/{c}/jwt/{id|key}
--   POST   /kong-admin/config                         a declarative config (DB-less)
--   GET    /kong-admin/_double/lookups                DAO selects so far, per DAO

local NESTED = { ["key-auth"] = "keyauth_credentials", jwt = "jwt_secrets" }

local function reply(status, body)
    ngx.status = status
    if body ~= nil then
        ngx.header["Content-Type"] = "application/json; charset=utf-8"
        ngx.say(cjson.encode(body))
    end
    return ngx.exit(status)
end

local function find_consumer(ref)
    return is_uuid(ref) and row("consumers", ref) or by_unique("consumers", "username", ref)
end

local function find_nested(dao, consumer, ref)
    local e = is_uuid(ref) and row(dao, ref) or by_unique(dao, "key", ref)
    if e and e.consumer.id == consumer.id then
        return e
    end
end

local function conflict(dao, e, self_id)
    for _, f in ipairs(SCHEMA[dao].unique) do
        local other = e[f] ~= nil and by_unique(dao, f, e[f])
        if other and other.id ~= self_id then
            return reply(409, { message = fmt("UNIQUE violation detected on '{%s=\"%s\"}'", f,
                e[f]) })
        end
    end
end

local function merged(old, body)
    local e = {}
    for k, v in pairs(old) do
        e[k] = v
    end
    for k, v in pairs(body) do
        e[k] = v
    end
    e.id = old.id
    return e
end

function _M.admin()
    local method = ngx.req.get_method()
    local path = ngx.var.uri:gsub("^/kong%-admin", "")
    ngx.req.read_body()
    local body = cjson.decode(ngx.req.get_body_data() or "{}") or {}
    if method == "GET" and path == "/_double/lookups" then
        local d = shm("kong_double")
        local out = {}
        for name in pairs(SCHEMA) do
            out[name] = d:get("lookups:" .. name) or 0
        end
        return reply(200, out)
    end
    if method == "POST" and path == "/config" then
        load_declarative(body)
        worker_events.post("declarative", "reconfigure", {})
        return reply(201, {})
    end
    if method == "POST" and path == "/consumers" then
        local e = { id = body.id or new_id(), username = body.username, custom_id = body.custom_id }
        conflict("consumers", e)
        return reply(201, write("consumers", "create", e))
    end
    local cref, rest = path:match("^/consumers/([^/]+)(.*)$")
    local consumer = cref and find_consumer(ngx.unescape_uri(cref))
    if not consumer then
        return reply(404, { message = "Not found" })
    end
    if rest == "" then
        if method == "PATCH" then
            local e = merged(consumer, body)
            conflict("consumers", e, consumer.id)
            return reply(200, write("consumers", "update", e, consumer))
        elseif method == "DELETE" then
            for dao in pairs(NESTED) do
                dao = NESTED[dao]
                for _, k in ipairs(shm("kong_double"):get_keys(0)) do
                    if k:sub(1, #dao + 5) == "row:" .. dao .. ":" then
                        local e = cjson.decode(shm("kong_double"):get(k) or "null")
                        if e and e.consumer.id == consumer.id then
                            write(dao, "delete", e, e)
                        end
                    end
                end
            end
            write("consumers", "delete", consumer, consumer)
            return reply(204)
        end
        return reply(405, { message = "Method not allowed" })
    end
    local plugin, ref = rest:match("^/([^/]+)/?([^/]*)$")
    local dao = plugin and NESTED[plugin]
    if not dao then
        return reply(404, { message = "Not found" })
    end
    if ref == "" and method == "POST" then
        local e = { id = body.id or new_id(), key = body.key or new_id(), ttl = body.ttl,
                    consumer = { id = consumer.id } }
        if dao == "jwt_secrets" then
            e.secret = body.secret or new_id()
            e.algorithm = body.algorithm or "HS256"
            e.rsa_public_key = body.rsa_public_key
        end
        conflict(dao, e)
        return reply(201, write(dao, "create", e))
    end
    local old = ref ~= "" and find_nested(dao, consumer, ngx.unescape_uri(ref))
    if not old then
        return reply(404, { message = "Not found" })
    end
    if method == "PATCH" then
        local e = merged(old, body)
        conflict(dao, e, old.id)
        return reply(200, write(dao, "update", e, old))
    elseif method == "DELETE" then
        write(dao, "delete", old, old)
        return reply(204)
    end
    return reply(405, { message = "Method not allowed" })
end

---------------------------------------------------------------------------

-- Fill kong.* (kong_pdk_double.install): workspace id of the double.
function _M.install(kong, workspace_id)
    ws_id = workspace_id
    kong.db = db
    kong.cache = cache
    kong.worker_events = worker_events
    kong.client.load_consumer = load_consumer
end

-- Load a declarative config as the database (init_by_lua or the Admin
-- API's /config).
_M.declarative = load_declarative

-- Per worker: mlcache's own listeners first (registered at kong.cache's
-- creation, before any plugin's init_worker), Kong's runloop handlers, and
-- the event poller, when a database was loaded (a conf without entities
-- keeps its workers idle).
function _M.init_worker()
    worker_events.register(function(key) L1[key] = nil end, "mlcache",
        "mlcache:invalidations:kong_db_cache")
    worker_events.register(function() L1 = {} end, "mlcache", "mlcache:purge:kong_db_cache")
    worker_events.register(dao_crud_handler, "dao:crud")
    worker_events.register(function() kong.cache:purge() end, "declarative", "reconfigure")
    local d = ngx.shared.kong_double
    if d and d:get("db:loaded") and not polling then
        polling = true
        last_seen = d:get("ev:seq") or 0
        _G.native_timer_at(POLL_S, poller)
    end
end

-- DAO selects so far (all workers), per DAO.
function _M.lookups(dao)
    return shm("kong_double"):get("lookups:" .. dao) or 0
end

return _M
