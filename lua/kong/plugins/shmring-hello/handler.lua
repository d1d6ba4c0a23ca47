-- Kong stub of the `hello` C plugin (plugins/hello/): adds X-Hello: World
-- (or config.name: config.value) to the upstream request and the response.
-- The work happens in shmringd; see shmring/kong.lua. What it needs from the
-- request is what its C descriptor declares: nothing (no header, no query
-- arg, no fixed field), so its ACCESS record is just its conf id.
return require("shmring.kong").handler("hello", {
    PRIORITY = 1000,
    VERSION = "0.1.0",
    headers = {}, query = {}, fields = {},
    phases = { access = true },
})
