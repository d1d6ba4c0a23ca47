"""e2e (labels e2e, kong, plugins): request bodies through nginx, the real
shmringd and the C plugins, under Kong (the PDK double, routes in
tests/e2e/kong_routes_body.lua) and in plain OpenResty (/ngx/...).

- request-transformer's body rules as Kong's own tests exercise them
  (remove, rename, replace, add, append: "toremoveform",
  "originalparam:renamedparam", "p1:v1", "newformparam:newvalue",
  "p1:v1, p1:v2, p2:value:1"), for JSON, form and multipart bodies; the
  upstream gets the new body with a matching Content-Length.
- Kong's "preserves empty json array" and "does not fail if JSON body is
  malformed"; json_types; http_method GET moving a form body to the query.
- Sizes: a body nginx buffered to a file (past client_body_buffer_size) is
  read and transformed; one past the gateway's body_max is answered 413; a
  truncated multipart body 400; a route whose configs need no body passes a
  body far past body_max (the gateway never reads it).
- key-auth key_in_body under Kong and in plain OpenResty: JSON, form and
  multipart keys, hide_credentials removing the key from the body, 401s.
- Templates reading Kong's uri_captures (a regex route path) and
  kong.ctx.shared (set by a native plugin before).
"""
import json
import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, skip, skip_unless_ready  # noqa: E402

JSON, FORM = "application/json", "application/x-www-form-urlencoded"
MP = "multipart/form-data; boundary=XyZ"
BODY_MAX = 65536  # lua/shmring/client/config.lua's default body_max


def multipart(*fields):
    out = ""
    for name, value in fields:
        out += '--XyZ\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name, value)
    return out + "--XyZ--\r\n"


def post(st, path, ct, body, headers=None):
    """POST body; the status and what the echo upstream got (its JSON)."""
    h = {"Content-Type": ct}
    h.update(headers or {})
    status, _, out = st.post(path, body, h)
    try:
        return status, json.loads(out)
    except ValueError:
        return status, out


def upstream_body(st, path, ct, body, headers=None):
    status, e = post(st, path, ct, body, headers)
    check(status == 200 and isinstance(e, dict), "%s (%s): 200 (got %d %r)" % (path, ct, status, e))
    b = e.get("body") or ""
    cl = e["headers"].get("content-length")
    check(cl == str(len(b.encode())), "%s: Content-Length %s matches the body's %d bytes"
          % (path, cl, len(b.encode())))
    return b


def form(b):
    return urllib.parse.parse_qs(b, keep_blank_values=True)


def parts(b):
    """{name: value} of a multipart body with boundary XyZ."""
    out = {}
    for p in b.split("--XyZ")[1:]:
        if p.startswith("--"):
            break
        head, _, value = p[2:].partition("\r\n\r\n")
        name = head.split('name="', 1)[1].split('"', 1)[0]
        out[name] = value[:-2]
    return out


def kong_rules(st):
    k = "/kong/"
    # remove
    check(form(upstream_body(st, k + "rt-remove", FORM, "toremoveform=yes&nottoremove=yes"))
          == {"nottoremove": ["yes"]}, "remove: form")
    check(json.loads(upstream_body(st, k + "rt-remove", JSON,
                                   '{"toremoveform": "yes", "nottoremove": "yes"}'))
          == {"nottoremove": "yes"}, "remove: JSON")
    check(parts(upstream_body(st, k + "rt-remove", MP,
                              multipart(("toremoveform", "yes"), ("nottoremove", "yes"))))
          == {"nottoremove": "yes"}, "remove: multipart")
    check(upstream_body(st, k + "rt-remove", JSON, '{"emptyarray":[]}') == '{"emptyarray":[]}',
          "Kong's 'preserves empty json array'")
    # rename
    check(form(upstream_body(st, k + "rt-rename", FORM, "originalparam=yes&b=1"))
          == {"renamedparam": ["yes"], "b": ["1"]}, "rename: form")
    check(json.loads(upstream_body(st, k + "rt-rename", JSON, '{"originalparam": "yes"}'))
          == {"renamedparam": "yes"}, "rename: JSON")
    check(parts(upstream_body(st, k + "rt-rename", MP, multipart(("originalparam", "yes"))))
          == {"renamedparam": "yes"}, "rename: multipart")
    # replace: only what is there
    check(form(upstream_body(st, k + "rt-replace", FORM, "p1=v0&p2=x"))
          == {"p1": ["v1"], "p2": ["x"]}, "replace: form")
    check(json.loads(upstream_body(st, k + "rt-replace", JSON, '{"p2": "x"}')) == {"p2": "x"},
          "replace: JSON, absent parameter not added")
    check(parts(upstream_body(st, k + "rt-replace", MP, multipart(("p1", "v0"))))
          == {"p1": "v1"}, "replace: multipart")
    # add: only what is not there
    check(form(upstream_body(st, k + "rt-add", FORM, "newformparam=old&a=1"))
          == {"newformparam": ["old"], "a": ["1"]}, "add: form, existing kept")
    check(json.loads(upstream_body(st, k + "rt-add", JSON, '{"a": 1}'))
          == {"a": 1, "newformparam": "newvalue"}, "add: JSON")
    check(parts(upstream_body(st, k + "rt-add", MP, multipart(("a", "1"))))
          == {"a": "1", "newformparam": "newvalue"}, "add: multipart")
    check(json.loads(upstream_body(st, k + "rt-add", JSON, "")) == {"newformparam": "newvalue"},
          "add: an empty JSON body becomes an object")
    # append
    check(form(upstream_body(st, k + "rt-append", FORM, "p1=v0"))
          == {"p1": ["v0", "v1", "v2"], "p2": ["value:1"]}, "append: form (Kong's spec)")
    check(json.loads(upstream_body(st, k + "rt-append", JSON, '{"p1": "v0"}'))
          == {"p1": ["v0", "v1", "v2"], "p2": ["value:1"]}, "append: JSON")
    check(json.loads(upstream_body(st, k + "rt-typed", JSON, "{}")) == {"n": 42, "ok": True},
          "json_types: number and boolean")
    # malformed JSON goes on untouched (Kong's "does not fail if malformed")
    check(upstream_body(st, k + "rt-add", JSON, '{"a": ') == '{"a": ',
          "malformed JSON passes untouched")
    check(upstream_body(st, k + "rt-add", "text/plain", "p=1") == "p=1",
          "another content type passes untouched")
    # Kong's spec: GET without a body becomes a POST with a JSON body (the
    # Content-Type a header rule adds is the body's)
    status, _, out = st.get(k + "rt-post-json")
    e = json.loads(out)
    check(status == 200 and e["method"] == "POST"
          and e["headers"].get("content-type") == "application/json"
          and json.loads(e.get("body") or "null") == {"body": "somecontent"},
          "GET -> POST with a JSON body from the rules (%d %r)" % (status, e))
    # http_method GET: the form body joins the query
    status, e = post(st, k + "rt-get?q=1", FORM, "b=2")
    check(status == 200 and e["method"] == "GET" and e["query"] == {"q": "1", "b": "2"},
          "http_method GET moves a form body into the query (%s)" % e)


def sizes(st):
    k = "/kong/"
    big = json.dumps({"toremoveform": 1, "pad": "x" * 40000})
    check(json.loads(upstream_body(st, k + "rt-remove", JSON, big)) == {"pad": "x" * 40000},
          "a 40 kB body (in nginx's temporary file) is transformed")
    huge = json.dumps({"pad": "x" * (BODY_MAX + 10)})
    status, e = post(st, k + "rt-remove", JSON, huge)
    check(status == 413 and e == {"message": "Request body too large"},
          "past body_max: 413 (%d %r)" % (status, e))
    status, e = post(st, k + "rt-remove", MP, "--XyZ\r\nContent-Disposition: form-data; "
                     'name="a"\r\n\r\nno end')
    check(status == 400 and e == {"message": "Invalid multipart/form-data body"},
          "a truncated multipart body: 400 (%d %r)" % (status, e))
    # Configs that need no body: the snapshot does not grow with the body
    # (what the gateway wrote into the rings, shmringctl's client_bytes)...
    body = json.dumps({"toremoveform": 1, "pad": "x" * 60000})
    # key_in_body without hide_credentials: the body only when no header
    # has the key, as Kong looks.
    for path, ct, carried, hdrs in ((k + "rt-headers", JSON, False, {}),
                                    (k + "rt-remove", "text/plain", False, {}),
                                    (k + "rt-remove", JSON, True, {}),
                                    (k + "ka-body-keep", JSON, False, {"apikey": "demo-key"}),
                                    (k + "ka-body-keep?apikey=demo-key", JSON, False, {}),
                                    (k + "ka-body", JSON, True, {"apikey": "demo-key"})):
        before = sq_bytes(st)
        status, _ = post(st, path, ct, body, hdrs)
        grew = sq_bytes(st) - before
        check(status == 200 and (grew > 60000) == carried,
              "%s (%s): the snapshot %s the body (%d bytes written)"
              % (path, ct, "carries" if carried else "does not carry", grew))
    # ... and no limit applies to it.
    for path, ct, hdrs in ((k + "rt-headers", JSON, {}), (k + "rt-remove", "text/plain", {}),
                           (k + "ka-header", FORM, {"apikey": "demo-key"}),
                           (k + "ka-body", "text/plain", {"apikey": "demo-key"})):
        status, e = post(st, path, ct, "y" * (4 * BODY_MAX), hdrs)
        check(status == 200 and e.get("body") == "y" * (4 * BODY_MAX),
              "%s (%s): a body past body_max goes through unread (%d)" % (path, ct, status))


def sq_bytes(st):
    """Bytes the gateway has written into the rings (every channel)."""
    ctl = os.path.join(st.build, "bin", "shmringctl")
    out = subprocess.run([ctl, "--shm-dir", st.shm_dir, "stats", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return sum(c["client_bytes"] for c in json.loads(out)["channels"])


def key_in_body(st, base, label):
    for ct, body in ((JSON, '{"apikey": "demo-key", "a": 1}'), (FORM, "a=1&apikey=demo-key"),
                     (MP, multipart(("apikey", "demo-key"), ("a", "1")))):
        status, e = post(st, base, ct, body)
        check(status == 200 and e["headers"].get("x-consumer-username") == "demo",
              "%s key_in_body (%s): authenticated (%d %r)" % (label, ct, status, e))
        b = e.get("body") or ""
        check("demo-key" not in b and ("a" in b), "%s (%s): hide_credentials took the key "
              "out of the body (%r)" % (label, ct, b))
    status, e = post(st, base, JSON, '{"apikey": "wrong"}')
    check(status == 401, "%s: a wrong key in the body: 401 (%d)" % (label, status))
    status, e = post(st, base, JSON, '{"a": 1}')
    check(status == 401 and "No API key found" in json.dumps(e),
          "%s: no key: 401 No API key found (%d %r)" % (label, status, e))
    status, e = post(st, base, JSON, '{"apikey": ')
    check(status == 401, "%s: malformed JSON holds no key: 401 (%d)" % (label, status))


def template_env(st):
    status, e = post(st, "/kong/rt-env/alice/7", JSON, "{}")
    h = e.get("headers", {}) if isinstance(e, dict) else {}
    check(status == 200 and h.get("x-user") == "alice" and h.get("x-num") == "7"
          and h.get("x-tenant") == "acme" and h.get("x-none") == "-"
          and e["path"] == "/users/alice" and json.loads(e["body"]) == {"user": "alice"},
          "templates read uri_captures (named, numbered) and kong.ctx.shared (%d %r)" % (status, e))


def openresty(st):
    b = upstream_body(st, "/ngx/request-transformer-body", JSON,
                      '{"user": "alice", "password": "x", "role": "admin"}')
    check(json.loads(b) == {"username": "alice", "role": "guest", "source": "shmring",
                            "tags": ["demo"]},
          "plain OpenResty: request-transformer body rules (%s)" % b)


def main(build):
    skip_unless_ready(build)
    for p in ("key-auth", "request-transformer"):
        if p not in stack.built_plugins(build):
            skip("not built: " + p)
    with stack.Stack(build, kong_routes="kong_routes_body") as st:
        kong_rules(st)
        sizes(st)
        key_in_body(st, "/kong/ka-body", "Kong")
        key_in_body(st, "/ngx/key-auth-body", "OpenResty")
        template_env(st)
        openresty(st)
        check_error_log(st)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
