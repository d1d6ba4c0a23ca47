-- The body tests' routes (tests/e2e/test_body.py), served at /kong/<name>
-- through the PDK double: request-transformer's body rules as Kong's own
-- tests configure them (spec/03-plugins/36-request-transformer), key-auth
-- with key_in_body, and routes whose configs need no body.
local DEMO = { id = "7f3c1d2e-0000-4000-8000-000000000001", username = "demo",
               keyauth_credentials = { { id = "7f3c1d2e-0000-4000-8000-00000000a001", key = "demo-key" } } }

local function rt(config)
    return { plugins = { { name = "shmring-request-transformer", config = config } } }
end

return {
    ["rt-remove"] = rt({ remove = { body = { "toremoveform" } } }),
    ["rt-rename"] = rt({ rename = { body = { "originalparam:renamedparam" } } }),
    ["rt-replace"] = rt({ replace = { body = { "p1:v1" } } }),
    ["rt-add"] = rt({ add = { body = { "newformparam:newvalue" } } }),
    ["rt-append"] = rt({ append = { body = { "p1:v1", "p1:v2", "p2:value:1" } } }),
    ["rt-typed"] = rt({ add = { body = { "n:42", "ok:true" }, json_types = { "number", "boolean" } } }),
    ["rt-get"] = rt({ http_method = "GET" }),
    -- Kong's spec "changes the HTTP method from GET to POST and adds JSON body"
    ["rt-post-json"] = rt({ http_method = "POST", add = {
        headers = { "Content-Type:application/json" }, body = { "body:somecontent" } } }),
    -- header rules only: the gateway never reads the body
    ["rt-headers"] = rt({ add = { headers = { "x-added:1" } } }),
    -- Kong's template environment: uri_captures of a regex path (named and
    -- numbered) and kong.ctx.shared set by an earlier plugin.
    ["rt-env"] = { paths = { "~/kong/rt-env/(?<user>[^/]+)/(\\d+)$" }, plugins = {
        { name = "native-shared", config = { values = { tenant = "acme" } } },
        { name = "shmring-request-transformer", config = {
            add = { headers = { "x-user:$(uri_captures.user)", "x-num:$(uri_captures[2])",
                                "x-tenant:$(shared.tenant)", "x-none:$(shared.nope or \"-\")" },
                    body = { "user:$(uri_captures[\"user\"])" } },
            replace = { uri = "/users/$(uri_captures.user)" } } } } },
    ["ka-body"] = { plugins = { { name = "shmring-key-auth", config = {
        key_in_body = true, hide_credentials = true, consumers = { DEMO } } } } },
    ["ka-body-keep"] = { plugins = { { name = "shmring-key-auth", config = {
        key_in_body = true, consumers = { DEMO } } } } },
    ["ka-header"] = { plugins = { { name = "shmring-key-auth", config = { consumers = { DEMO } } } } },
}
