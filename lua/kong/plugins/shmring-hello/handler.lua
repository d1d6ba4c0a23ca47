-- Kong stub of the `hello` C plugin (plugins/hello/): adds X-Hello: World
-- (or config.name: config.value) to the upstream request and the response.
-- The work happens in shmringd; see shmring/kong.lua.
return require("shmring.kong").handler("hello", { PRIORITY = 1000, VERSION = "0.1.0" })
