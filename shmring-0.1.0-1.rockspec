-- The gateway side of shmring as a LuaRocks rock: the shmring.* client modules and
-- the Kong plugin stubs kong.plugins.shmring-*. Kong loads custom plugins from its
-- LuaRocks tree: `luarocks make` in a checkout (or `luarocks install` of the packed
-- rock), then `plugins = bundled,shmring-hello,...` in kong.conf (README.md, "Kong").
-- libshmring.so.1 and shmringd come from the Debian package or `cmake --install`.
--
-- `modules` lists every file under lua/; tests/install/test_rock.py fails when one is
-- missing, and prints the line to add.
package = "shmring"
version = "0.1.0-1"
source = {
   url = "git+https://github.com/shmring/shmring.git",
   tag = "v0.1.0",
}
description = {
   summary = "Kong/OpenResty side of shmring: C plugins served by shmringd over shared-memory rings",
   detailed = [[
The shmring.* modules hand each request phase to shmringd through shared-memory
rings (LuaJIT FFI over libshmring.so.1), and the kong.plugins.shmring-* stubs
expose the C plugins (hello, key-auth, jwt, rate-limiting, request-transformer,
correlation-id, log, http-log) as Kong plugins.
]],
   homepage = "https://github.com/shmring/shmring",
   license = "MIT",
}
dependencies = {
   "lua >= 5.1",
}
build = {
   type = "builtin",
   modules = {
      ["kong.plugins.shmring-correlation-id.handler"] = "lua/kong/plugins/shmring-correlation-id/handler.lua",
      ["kong.plugins.shmring-correlation-id.schema"] = "lua/kong/plugins/shmring-correlation-id/schema.lua",
      ["kong.plugins.shmring-hello.handler"] = "lua/kong/plugins/shmring-hello/handler.lua",
      ["kong.plugins.shmring-hello.schema"] = "lua/kong/plugins/shmring-hello/schema.lua",
      ["kong.plugins.shmring-http-log.handler"] = "lua/kong/plugins/shmring-http-log/handler.lua",
      ["kong.plugins.shmring-http-log.schema"] = "lua/kong/plugins/shmring-http-log/schema.lua",
      ["kong.plugins.shmring-jwt.handler"] = "lua/kong/plugins/shmring-jwt/handler.lua",
      ["kong.plugins.shmring-jwt.schema"] = "lua/kong/plugins/shmring-jwt/schema.lua",
      ["kong.plugins.shmring-key-auth.handler"] = "lua/kong/plugins/shmring-key-auth/handler.lua",
      ["kong.plugins.shmring-key-auth.schema"] = "lua/kong/plugins/shmring-key-auth/schema.lua",
      ["kong.plugins.shmring-log.handler"] = "lua/kong/plugins/shmring-log/handler.lua",
      ["kong.plugins.shmring-log.schema"] = "lua/kong/plugins/shmring-log/schema.lua",
      ["kong.plugins.shmring-rate-limiting.handler"] = "lua/kong/plugins/shmring-rate-limiting/handler.lua",
      ["kong.plugins.shmring-rate-limiting.schema"] = "lua/kong/plugins/shmring-rate-limiting/schema.lua",
      ["kong.plugins.shmring-request-transformer.handler"] = "lua/kong/plugins/shmring-request-transformer/handler.lua",
      ["kong.plugins.shmring-request-transformer.schema"] = "lua/kong/plugins/shmring-request-transformer/schema.lua",
      ["shmring.client"] = "lua/shmring/client.lua",
      ["shmring.client.backlog"] = "lua/shmring/client/backlog.lua",
      ["shmring.client.channel"] = "lua/shmring/client/channel.lua",
      ["shmring.client.config"] = "lua/shmring/client/config.lua",
      ["shmring.client.confs"] = "lua/shmring/client/confs.lua",
      ["shmring.client.encode"] = "lua/shmring/client/encode.lua",
      ["shmring.client.flusher"] = "lua/shmring/client/flusher.lua",
      ["shmring.client.pending"] = "lua/shmring/client/pending.lua",
      ["shmring.client.reaper"] = "lua/shmring/client/reaper.lua",
      ["shmring.client.resend"] = "lua/shmring/client/resend.lua",
      ["shmring.client.submit"] = "lua/shmring/client/submit.lua",
      ["shmring.client.thread"] = "lua/shmring/client/thread.lua",
      ["shmring.custom_fields"] = "lua/shmring/custom_fields.lua",
      ["shmring.core"] = "lua/shmring/core.lua",
      ["shmring.entities"] = "lua/shmring/entities.lua",
      ["shmring.kong"] = "lua/shmring/kong.lua",
      ["shmring.metrics"] = "lua/shmring/metrics.lua",
      ["shmring.ngx"] = "lua/shmring/ngx.lua",
      ["shmring.options"] = "lua/shmring/options.lua",
      ["shmring.phase"] = "lua/shmring/phase.lua",
      ["shmring.plugin_stats"] = "lua/shmring/plugin_stats.lua",
      ["shmring.plugins"] = "lua/shmring/plugins.lua",
      ["shmring.profile"] = "lua/shmring/profile.lua",
      ["shmring.socket"] = "lua/shmring/socket.lua",
   },
}
