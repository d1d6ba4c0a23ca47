-- shmring.kong: the shared body of every Kong plugin stub
-- (kong/plugins/shmring-<name>/handler.lua). A stub is one line:
--
--   return require("shmring.kong").handler("hello", { PRIORITY = 1000, VERSION = "0.1.0" })
--
-- It reads the request and applies the reply through Kong's PDK (kong.*),
-- nothing else but nginx's connection variables, which no PDK call returns
-- (Kong's correlation-id reads them so too); the daemon location comes from
-- SHMRING_DIR (kong.conf: `nginx_main_env = SHMRING_DIR`), default
-- /dev/shm/shmring/default.
-- What Kong adds and expects (injected config keys, PDK shapes, its timer
-- pool) is in docs/gateway.md, "Running under Kong". It also answers the C
-- plugins' entity look-ups from Kong's own consumers and credentials, and
-- tells the daemon what Kong's cache drops (docs/protocol.md, "Entities").
local client = require("shmring.client")
local core = require("shmring.core")
local entities = require("shmring.entities")
local phase = require("shmring.phase")
local plugins = require("shmring.plugins")

local ngx = ngx
local setmetatable, next, type, pairs, ipairs = setmetatable, next, type, pairs, ipairs
local error = error
local EMPTY = {}

local _M = { _VERSION = "0.1.0" }

local function K()
    return _G.kong
end

local LEVEL = { [0] = "err", [1] = "warn", [2] = "notice", [3] = "debug" }

-- Kong-shaped entities for kong.client.authenticate from an AUTHENTICATE
-- action ({id, username, custom_id} and a credential id), so Kong's own
-- plugins (acl, rate-limiting, the loggers) read them as their own.
local function consumer_entity(c)
    if not c or not c.id or c.id == "" then
        return nil
    end
    return {
        id = c.id,
        username = c.username ~= "" and c.username or nil,
        custom_id = c.custom_id ~= "" and c.custom_id or nil,
    }
end

-- A consumer or credential set by any auth plugin (a native Kong one or a
-- shmring one) becomes the snapshot's `consumer` / `credential`, so
-- rate-limiting (limit_by consumer|credential) and the `anonymous` logic of
-- key-auth and jwt see a login whoever made it (Kong's logical OR).
local function sync_consumer(kong)
    local ctx = ngx.ctx
    local consumer, credential = kong.client.get_consumer(), kong.client.get_credential()
    if consumer == ctx.shmring_consumer_entity and credential == ctx.shmring_credential_entity then
        return
    end
    ctx.shmring_consumer_entity, ctx.shmring_credential_entity = consumer, credential
    ctx.shmring_consumer = consumer and {
        id = consumer.id, username = consumer.username, custom_id = consumer.custom_id,
    } or nil
    ctx.shmring_credential = credential and credential.id or nil
end

---------------------------------------------------------------------------
-- Entities from Kong (shmring.entities): a C plugin's look-up is answered
-- as Kong's own plugin of that name loads the entity, through kong.cache
-- with the DAO's cache_key (so Kong's TTLs, negative caching, DB-less and
-- hybrid modes apply), and Kong's crud events and declarative reloads make
-- the daemon forget what changed.

local ENTITY = core.ENTITY

-- Kong's entities handed out by the resolver, by id, so an AUTHENTICATE
-- passes Kong's own tables to kong.client.authenticate. Bounded: past
-- KNOWN_MAX it starts again (a miss falls back to the id-shaped tables).
local KNOWN_MAX = 10000
local known = { consumers = {}, credentials = {}, n = 0 }

local function remember(kind, entity)
    if known.n >= KNOWN_MAX then
        known.consumers, known.credentials, known.n = {}, {}, 0
    end
    known.n = known.n + 1
    known[kind][entity.id] = entity
end

local function consumer_answer(c)
    return { id = c.id, username = c.username, custom_id = c.custom_id }
end

-- kong.client.load_consumer through the cache, as Kong's auth plugins call
-- it (by id; by id or else username for `anonymous`).
local function load_consumer(kong, id, by_username)
    return kong.cache:get(kong.db.consumers:cache_key(id), nil, kong.client.load_consumer, id,
        by_username)
end

-- A credential as Kong's plugin of that name loads it (kong.cache over the
-- DAO's cache_key, then its consumer), as answer(cred, consumer): the
-- answer, nil (none), or nil, err. refuse_stale: key-auth treats a stale
-- value (hit level 4) as none; jwt takes it.
local function load_credential(kong, dao, key, opts, loader, refuse_stale, answer)
    local cred, err, hit_level = kong.cache:get(kong.db[dao]:cache_key(key), opts, loader, key)
    if not cred or (refuse_stale and hit_level == 4) then
        return nil, err
    end
    local c
    c, err = load_consumer(kong, cred.consumer.id)
    if not c then
        return nil, err
    end
    remember("consumers", c)
    remember("credentials", cred)
    return answer(cred, consumer_answer(c))
end

-- kong/plugins/key-auth/handler.lua load_credential: an expired key (ttl 0)
-- is no key.
local function load_keyauth(key)
    local cred, err = K().db.keyauth_credentials:select_by_key(key)
    if not cred then
        return nil, err
    end
    if cred.ttl == 0 then
        return nil
    end
    return cred, nil, cred.ttl
end

-- kong/plugins/jwt/handler.lua load_credential.
local function load_jwt_secret(key)
    local row, err = K().db.jwt_secrets:select_by_key(key)
    if err then
        return nil, err
    end
    return row
end

local RESOLVE = {
    [ENTITY.CONSUMER] = function(kong, key)
        local c, err = load_consumer(kong, key, true)
        if not c then
            return nil, err
        end
        remember("consumers", c)
        return consumer_answer(c)
    end,
    [ENTITY.KEYAUTH_CREDENTIAL] = function(kong, key)
        return load_credential(kong, "keyauth_credentials", key, { resurrect_ttl = 0.001 },
            load_keyauth, true, function(cred, consumer)
                -- ttl: the daemon drops the answer when Kong's would expire
                return { id = cred.id, consumer = consumer, ttl = cred.ttl }
            end)
    end,
    [ENTITY.JWT_SECRET] = function(kong, key)
        return load_credential(kong, "jwt_secrets", key, nil, load_jwt_secret, false,
            function(secret, consumer)
                return { id = secret.id, key = secret.key, algorithm = secret.algorithm,
                         secret = secret.secret, rsa_public_key = secret.rsa_public_key,
                         consumer = consumer }
            end)
    end,
}

local function resolve(kind, key)
    local f = RESOLVE[kind]
    if not f then
        return nil, "unknown entity kind " .. tostring(kind)
    end
    return f(K(), key)
end

-- Which answers a kong.cache key stands for: the DAO's cache_key is
-- "<dao>:<key>:::::<ws_id>" (kong/db/dao/init.lua DAO:cache_key with one
-- key), for these DAOs by key, and for consumers by id or by username.
local CACHE_KEY_KIND = {
    keyauth_credentials = ENTITY.KEYAUTH_CREDENTIAL,
    jwt_secrets = ENTITY.JWT_SECRET,
    consumers = ENTITY.CONSUMER,
}

-- Kong dropped one entry of its entity cache, in this worker (every
-- worker of every node gets the event): drop the same answer in the daemon.
-- A consumer by id also drops the credentials answered with it.
local function forget_cache_key(key)
    if type(key) ~= "string" then
        return
    end
    local dao, k = key:match("^([%w_]+):(.+):::::[^:]*$")
    local kind = dao and CACHE_KEY_KIND[dao]
    if not kind then
        return
    end
    if kind == ENTITY.CONSUMER then
        known.consumers[k] = nil
    end
    entities.forget({ { kind, k } })
end

-- Kong emptied its entity cache (a declarative reload, hybrid mode's new
-- config): forget everything.
local function forget_all()
    known.consumers, known.credentials, known.n = {}, {}, 0
    entities.forget(true)
end

-- Kong's own cache is what the answers came from, so its invalidations are
-- what the daemon follows. A crud write reaches them through Kong's
-- dao_crud_handler (kong/runloop/events.lua: kong.cache:invalidate of the
-- entity's cache_key, and for consumers of the username), which mlcache
-- broadcasts to every worker ("mlcache:invalidations:kong_db_cache"), and
-- cluster_events to the other nodes, which invalidate the same way. The
-- "crud" events themselves are posted with post_local in the one worker
-- that made the write, so the other workers never see them. A declarative
-- reload purges the cache in every worker ("mlcache:purge:kong_db_cache",
-- after "declarative" / "reconfigure", which is followed too).
local function subscribe(kong)
    local we = kong.worker_events
    if not we then
        return
    end
    we.register(forget_cache_key, "mlcache", "mlcache:invalidations:kong_db_cache")
    we.register(forget_all, "mlcache", "mlcache:purge:kong_db_cache")
    we.register(forget_all, "declarative", "reconfigure")
end

local cjson -- cjson.safe, loaded on the first reply that needs it

-- For a stub whose Kong plugin answers with kong.response.error (key-auth,
-- rate-limiting; jwt uses kong.response.exit): an EXIT whose body is Kong's
-- error shape ({"message": ...}, status >= 400) goes through it, so Kong
-- 3.5+ adds request_id and picks JSON, HTML, XML or text from Accept.
local function error_message(status, body)
    if status < 400 or type(body) ~= "string" or body:byte(1) ~= 123 then -- '{'
        return nil
    end
    cjson = cjson or require("cjson.safe")
    local t = cjson.decode(body)
    if type(t) ~= "table" or type(t.message) ~= "string" or next(t, next(t)) ~= nil then
        return nil
    end
    return t.message
end

-- The host interface of shmring.phase over Kong's PDK.
local host = {
    name = "kong",
    ctx = function() return K().ctx.plugin end,
    method = function() return K().request.get_method() end,
    scheme = function() return K().request.get_scheme() end,
    host = function() return K().request.get_host() end,
    path = function() return K().request.get_path() end,
    -- Behind a trusted load balancer get_ip() is the balancer; Kong's own
    -- rate-limiting and loggers use the forwarded address.
    client_ip = function() return K().client.get_forwarded_ip() end,
    route_id = function()
        local r = K().router.get_route()
        return r and r.id or ""
    end,
    service_id = function()
        local s = K().router.get_service()
        return s and s.id or ""
    end,
    -- No PDK call has these: nginx's variables, as Kong's correlation-id
    -- reads them.
    connection = phase.nginx_connection,
    header = function(name) return K().request.get_header(name) end,
    headers = function() return K().request.get_headers() end,
    query_arg = function(name) return K().request.get_query_arg(name) end,
    query = function() return K().request.get_query() end,
    -- Kong's get_raw_body reads a body nginx buffered to a file when it is
    -- at most max_allowed_file_size bytes; the in-memory one is checked here.
    body = function(max)
        local b, err = K().request.get_raw_body(max)
        if b and #b > max then
            return nil, "request body larger than body_max (" .. max .. " bytes)"
        end
        return b, err
    end,

    set_req_header = function(n, v) K().service.request.set_header(n, v) end,
    add_req_header = function(n, v) K().service.request.add_header(n, v) end,
    clear_req_header = function(n) K().service.request.clear_header(n) end,
    set_path = function(p) K().service.request.set_path(p) end,
    set_query = function(q) K().service.request.set_raw_query(q) end,
    set_method = function(m) K().service.request.set_method(m:upper()) end,
    set_body = function(b) K().service.request.set_raw_body(b) end,
    -- request-transformer's template environment, as Kong builds it
    uri_captures = function() return (ngx.ctx.router_matches or EMPTY).uri_captures end,
    shared = function() return K().ctx.shared end,
    set_resp_header = function(n, v) K().response.set_header(n, v) end,
    add_resp_header = function(n, v) K().response.add_header(n, v) end,
    exit = function(status, body, headers) return K().response.exit(status, body, headers) end,
    authenticate = function(consumer, credential)
        -- Kong's own entities when the resolver loaded them.
        local entity = consumer and known.consumers[consumer.id] or consumer_entity(consumer)
        local cred = credential and credential ~= "" and (known.credentials[credential]
            or { id = credential, consumer = entity and { id = entity.id } }) or nil
        if entity or cred then
            local kong = K()
            kong.client.authenticate(entity, cred)
            -- the snapshot of later shmring plugins: this login, not a
            -- re-read of the same entities
            local ctx = ngx.ctx
            ctx.shmring_consumer_entity = kong.client.get_consumer()
            ctx.shmring_credential_entity = kong.client.get_credential()
        end
    end,
    log = function(level, msg) K().log[LEVEL[level] or "notice"]("shmring plugin: ", msg) end,
    error_exit = function(status, message) return K().response.error(status, message) end,
    resolve = resolve,
    log_entry = function() return K().log.serialize() end,
    set_serialize_value = function(key, value) K().log.set_serialize_value(key, value) end,
    -- custom_fields_by_lua's code, compiled as Kong's loggers compile it
    -- (the operator's untrusted_lua settings apply).
    sandbox = function(code, name) return require("kong.tools.sandbox").sandbox(code, name) end,
}
_M.host = host

local error_host = setmetatable({
    exit = function(status, body, headers)
        local message = error_message(status, body)
        if not message then
            return host.exit(status, body, headers)
        end
        for name in pairs(headers) do
            if name:lower() == "content-type" then
                headers[name] = nil
            end
        end
        return K().response.error(status, message, headers)
    end,
}, { __index = host })

---------------------------------------------------------------------------
-- The config the C plugin gets: exactly the fields the stub's schema
-- declares under `config` (records recursively). Kong adds its own keys to
-- every plugin config (route_id, service_id, consumer_id,
-- plugin_instance_name, __plugin_id, __ws_id, __key__, __seq__; more in
-- later releases), and the C plugins refuse fields they do not know.

local function pick(record, value)
    local out = {}
    for _, f in ipairs(record.fields) do
        local k, def = next(f)
        local v = value[k]
        if type(v) == "table" then
            if def.type == "record" then
                v = pick(def, v)
            elseif def.elements and def.elements.type == "record" then
                local list = {}
                for i, x in ipairs(v) do
                    list[i] = type(x) == "table" and pick(def.elements, x) or x
                end
                v = list
            end
        end
        out[k] = v
    end
    return out
end

local function config_record(schema, stub)
    for _, f in ipairs(schema.fields) do
        if f.config then
            return f.config
        end
    end
    error("shmring.kong: " .. stub .. " schema has no config record", 3)
end

-- conf -> its schema's fields, once per config table (Kong hands the same
-- table to every request until the config changes). sent_as: { field =
-- name the C plugin knows it by }, for a Kong field whose name the gateway
-- keeps for itself (a logger's `timeout`: Kong's socket or request
-- timeout, while every stub's `timeout` is the gateway's own wait, never
-- sent); the field is sent under that name instead.
local function schema_filter(stub, schema, sent_as)
    local record
    local picked = setmetatable({}, { __mode = "k" })
    return function(conf)
        local p = picked[conf]
        if not p then
            record = record or config_record(schema or require("kong.plugins." .. stub .. ".schema"),
                stub)
            p = pick(record, conf)
            for field, name in pairs(sent_as or EMPTY) do
                p[name], p[field] = p[field], nil
            end
            picked[conf] = p
        end
        return p
    end
end
_M.schema_filter = schema_filter

local started = false

-- A Kong handler table for C plugin `name`. opts: PRIORITY, VERSION, and
-- optionally what the plugin needs (headers, query, fields, phases,
-- fail_open, timeout), which then override shmring.plugins' entry.
--
-- opts.snapshot(conf) -> { headers = {...}, query = {...}, fields = {...} }:
-- for a plugin whose descriptor declares more than one config reads
-- (configurable header or arg names), the parts this config reads (fields:
-- nil keeps the plugin's). Each config table then
-- gets its own phase state, so its snapshots carry only those parts. conf
-- is Kong's table, with the keys Kong injects; `route_id` / `service_id`
-- in the answer replace the request's in the snapshot (rate-limiting keys
-- its counters by where the plugin is configured, as Kong's does).
--
-- opts.serialize = { "key", ... }: SET_CTX values of the access reply that
-- Kong's plugin of the same name hands to kong.log.set_serialize_value
-- (correlation-id: "correlation_id"), so Kong's own loggers carry them.
--
-- opts.error_exits = true: the plugin's refusals go through
-- kong.response.error, as Kong's plugin of the same name answers.
--
-- opts.schema: the stub's schema table (default: require of
-- kong.plugins.<opts.stub or "shmring-" .. name>.schema); only its config
-- fields are sent to the C plugin.
--
-- opts.sent_as = { timeout = "http_timeout" }: config fields sent under
-- the C plugin's name for them (schema_filter).
function _M.handler(name, opts)
    opts = opts or {}
    local spec = plugins.get(name)
    if opts.headers or opts.query or opts.fields or opts.phases then
        local fail_open = opts.fail_open
        if fail_open == nil then
            fail_open = spec.fail_open
        end
        spec = plugins.define(name, {
            headers = opts.headers or spec.headers, query = opts.query or spec.query,
            fields = opts.fields or spec.fields, phases = opts.phases or spec.phases,
            fail_open = fail_open,
            timeout = opts.timeout or spec.timeout,
            body = spec.body, template_env = spec.template_env,
        })
    end
    local plugin_conf = schema_filter(opts.stub or ("shmring-" .. name), opts.schema, opts.sent_as)
    local stub_host = opts.error_exits and error_host or host
    local state_of
    if opts.snapshot then
        local narrow = opts.snapshot
        local states = setmetatable({}, { __mode = "k" })
        state_of = function(kconf)
            local st = states[kconf]
            if not st then
                local parts = narrow(kconf)
                local conf_host = stub_host
                local rid, sid = parts.route_id, parts.service_id
                if rid or sid then
                    conf_host = setmetatable({
                        route_id = rid and function() return rid end,
                        service_id = sid and function() return sid end,
                    }, { __index = stub_host })
                end
                st = phase.state(conf_host, name, setmetatable(
                    { headers = parts.headers, query = parts.query,
                      want = parts.fields and plugins.want(parts.fields) }, { __index = spec }))
                states[kconf] = st
            end
            return st
        end
    else
        local st = phase.state(stub_host, name, spec)
        state_of = function()
            return st
        end
    end
    local serialize = opts.serialize
    local reads_login = spec.want.consumer -- the snapshot carries consumer / credential
    local h = {
        PRIORITY = opts.PRIORITY or 1000,
        VERSION = opts.VERSION or _M._VERSION,
    }
    -- Every stub calls this; the channel is claimed once per worker.
    function h:init_worker()
        if not started then
            started = true
            client.init_worker()
            subscribe(K())
        end
    end
    if spec.phases.access then
        function h:access(kconf)
            local conf = plugin_conf(kconf)
            if reads_login then
                sync_consumer(K())
            end
            entities.settle()
            local ret = phase.access(state_of(kconf), conf)
            if serialize then
                local kv = ngx.ctx.shmring_kv
                for i = 1, kv and #serialize or 0 do
                    local v = kv[serialize[i]]
                    if v ~= nil then
                        host.set_serialize_value(serialize[i], v)
                    end
                end
            end
            return ret
        end
        -- Response headers the access reply asked for (header_filter
        -- cannot wait for the daemon, see docs/gateway.md).
        function h:header_filter(kconf)
            return phase.header_filter(state_of(kconf), plugin_conf(kconf))
        end
    end
    if spec.phases.log then
        function h:log(kconf)
            return phase.log(state_of(kconf), plugin_conf(kconf))
        end
    end
    return h
end

return _M
