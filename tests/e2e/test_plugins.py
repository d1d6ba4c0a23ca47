"""e2e: key-auth, request-transformer and correlation-id through their Kong
stubs (PDK double) on the real shmringd, via the demo routes and configs
(demo/shmring_demo.lua): what the client gets and what the echo upstream
received. correlation-id's tracker through the Kong stub and the OpenResty
helper, against nginx's own variables."""
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, skip, skip_unless_ready  # noqa: E402

PLUGINS = ("key-auth", "request-transformer", "correlation-id")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def kong_error(body, message):
    """kong.response.error's JSON body (Kong 3.5+): the message and the
    request id."""
    b = json.loads(body)
    return b.get("message") == message and re.match(r"^[0-9a-f]{32}$", b.get("request_id", "")) \
        and len(b) == 2


def key_auth(st):
    for i in range(10):  # both nginx workers, both channels
        status, hdrs, echo = st.get_json("/key-auth?i=%d" % i, {"apikey": "demo-key"})
        check(status == 200, "key-auth with demo-key answers 200 (got %d)" % status)
        h = echo["headers"]
        check(h.get("x-consumer-username") == "demo", "upstream sees X-Consumer-Username: demo (%s)" % h)
        check(h.get("x-consumer-id") == "7f3c1d2e-0000-4000-8000-000000000001",
              "upstream sees X-Consumer-ID")
        check(h.get("x-credential-identifier") == "7f3c1d2e-0000-4000-8000-00000000a001",
              "upstream sees X-Credential-Identifier")
        check("x-anonymous-consumer" not in h, "no X-Anonymous-Consumer for a real credential")
        check(h.get("apikey") == "demo-key", "the key stays upstream (hide_credentials is off)")

    status, _, echo = st.get_json("/key-auth?apikey=demo-key")
    check(status == 200 and echo["headers"].get("x-consumer-username") == "demo",
          "the key in the query string works too")

    status, _, echo = st.get_json("/key-auth", {"apikey": "demo-key", "X-Consumer-Username": "admin",
                                                "X-Anonymous-Consumer": "true"})
    check(status == 200 and echo["headers"].get("x-consumer-username") == "demo"
          and "x-anonymous-consumer" not in echo["headers"],
          "client-forged consumer headers are replaced/cleared")

    status, hdrs, body = st.get("/key-auth")
    check(status == 401, "no key: 401 (got %d)" % status)
    check(kong_error(body, "No API key found in request"),
          "no key: Kong 3.5+'s error body (got %r)" % body)
    check(hdrs.get("www-authenticate") == "Key", "no key: WWW-Authenticate: Key (got %r)"
          % hdrs.get("www-authenticate"))
    check(hdrs.get("content-type", "").startswith("application/json"), "no key: JSON content type")

    for bad in ("wrong-key", "demo-key2", "DEMO-KEY", "demo-ke"):  # (HTTP trims OWS)
        status, hdrs, body = st.get("/key-auth", {"apikey": bad})
        check(status == 401, "wrong key %r: 401 (got %d)" % (bad, status))
        check(kong_error(body, "Unauthorized"), "wrong key: Kong's current body (got %r)" % body)
        check(hdrs.get("www-authenticate") == "Key", "wrong key: WWW-Authenticate: Key")


def raw_get(st, path, header_lines):
    """GET with the given header lines as sent, repeats included."""
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=5)
    try:
        c.putrequest("GET", path)
        for k, v in header_lines:
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def ngx_key_auth(st):
    """key-auth through the OpenResty helper (shmring.ngx), whose "*"
    snapshot is written from nginx's own header and arg arrays: names in
    lower case, args unescaped, a repeated header sent as all its values."""
    for i in range(4):  # both nginx workers
        status, _, echo = st.get_json("/ngx/key-auth?i=%d" % i, {"ApiKey": "demo-key"})
        check(status == 200 and echo["headers"].get("x-consumer-username") == "demo",
              "ngx key-auth: the key header (any case) authenticates (got %d)" % status)
    status, _, echo = st.get_json("/ngx/key-auth?x=1&apikey=demo%2Dkey&flag")
    check(status == 200 and echo["headers"].get("x-consumer-username") == "demo",
          "ngx key-auth: an escaped key in the query, next to a valueless arg (got %d)" % status)
    status, body = raw_get(st, "/ngx/key-auth", [("apikey", "demo-key"), ("X-Other", "1"),
                                                  ("apikey", "demo-key")])
    check(status == 401 and json.loads(body).get("message") == "Duplicate API key found",
          "ngx key-auth: a repeated key header reaches the plugin as both values (got %d %r)"
          % (status, body))
    status, body = raw_get(st, "/ngx/key-auth", [("apikey", "wrong")])
    check(status == 401, "ngx key-auth: a wrong key is refused (got %d)" % status)


def request_transformer(st):
    for i in range(6):
        status, _, echo = st.get_json("/request-transformer?q=hello&keep=%d" % i, {
            "X-Remove-Me": "bye", "X-Old-Name": "renamed", "User-Agent": "e2e-agent"})
        check(status == 200, "request-transformer answers 200 (got %d)" % status)
        h, q = echo["headers"], echo["query"]
        check(h.get("x-added-by") == "shmring", "add.headers reached the upstream (%s)" % h)
        check(h.get("x-client") == "e2e-agent", "template $(headers.user_agent) rendered")
        check("x-remove-me" not in h, "remove.headers removed X-Remove-Me")
        check(h.get("x-new-name") == "renamed" and "x-old-name" not in h,
              "rename.headers renamed X-Old-Name")
        check(q == {"search": "hello", "keep": str(i), "added": "1"},
              "query renamed q->search, added added=1, kept the rest (got %s)" % q)
    status, _, echo = st.get_json("/request-transformer")
    check(echo["query"] == {"added": "1"}, "add.querystring alone (got %s)" % echo["query"])
    many_renamed_copies(st)


def many_renamed_copies(st):
    """70 copies of a renamed header make a reply of more than 64 actions;
    the query removal after them must still apply (a reply is applied whole
    or not at all), so secret=1 never reaches the upstream."""
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=5)
    try:
        c.putrequest("GET", "/request-transformer?secret=1&keep=x")
        for i in range(70):
            c.putheader("X-Old-Name", "copy-%d" % i)
        c.endheaders()
        r = c.getresponse()
        status, body = r.status, r.read()
    finally:
        c.close()
    check(status == 200, "70 renamed copies: the whole reply applied, 200 (got %d: %r)"
          % (status, body[:200]))
    echo = json.loads(body)
    check("secret" not in echo["query"], "remove.querystring held with 70 renamed copies (got %s)"
          % echo["query"])
    check("x-old-name" not in echo["headers"], "every copy renamed (got %s)"
          % echo["headers"].get("x-old-name"))


def correlation_id(st):
    seen = set()
    for _ in range(10):
        status, hdrs, echo = st.get_json("/correlation-id")
        check(status == 200, "correlation-id answers 200 (got %d)" % status)
        rid = hdrs.get("kong-request-id")
        check(rid is not None and UUID.match(rid), "echoed downstream: a UUID (got %r)" % rid)
        check(echo["headers"].get("kong-request-id") == rid,
              "the upstream got the same id (%r vs %r)" % (echo["headers"].get("kong-request-id"), rid))
        check(rid not in seen, "ids are unique")
        seen.add(rid)
    status, hdrs, echo = st.get_json("/correlation-id", {"Kong-Request-ID": "client-chosen-1"})
    check(echo["headers"].get("kong-request-id") == "client-chosen-1"
          and hdrs.get("kong-request-id") == "client-chosen-1",
          "an incoming id is kept and echoed")


def tracker(st, path):
    """Kong's tracker, field by field against nginx's own variables for the
    same request (the route sends "$server_addr-$server_port-$pid-
    $connection-$connection_requests-$msec" upstream), over two requests
    on one keep-alive connection: same serial, requests 1 then 2."""
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=5)
    try:
        serials = []
        for n in (1, 2):
            t0 = time.time()
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            check(r.status == 200, "%s: 200 (got %d %r)" % (path, r.status, body[:200]))
            if r.status != 200:
                return
            rid = r.getheader("kong-request-id") or ""
            up = json.loads(body)["headers"]
            check(up.get("kong-request-id") == rid, "%s: the upstream got the id echoed (%r, %r)"
                  % (path, up.get("kong-request-id"), rid))
            ours, theirs = rid.split("-"), up.get("x-nginx-tracker", "").split("-")
            check(len(ours) == 6 and len(theirs) == 6, "%s: six fields (%r; nginx %r)"
                  % (path, rid, up.get("x-nginx-tracker")))
            if len(ours) != 6 or len(theirs) != 6:
                return
            for i, name in enumerate(("server_addr", "server_port", "worker pid", "connection",
                                      "connection_requests")):
                check(ours[i] == theirs[i], "%s: %s is nginx's (%r, nginx %r)"
                      % (path, name, ours[i], theirs[i]))
            check(ours[0] == "127.0.0.1" and ours[1] == str(st.port) and ours[4] == str(n),
                  "%s: request %d on 127.0.0.1:%d (%r)" % (path, n, st.port, rid))
            # "%0.3f" of ngx.now(): taken in access, before $msec (at proxy time)
            check(re.match(r"^\d+\.\d{3}$", ours[5]) is not None
                  and t0 - 0.01 <= float(ours[5]) <= float(theirs[5]),
                  "%s: the time, %s, is ngx.now() in access (sent %.3f, nginx %s)"
                  % (path, ours[5], t0, theirs[5]))
            serials.append(ours[3])
        check(serials[0] == serials[1], "%s: one connection, one serial (%s)" % (path, serials))
    finally:
        c.close()


def main(build):
    skip_unless_ready(build)
    missing = [p for p in PLUGINS if p not in stack.built_plugins(build)]
    if missing:
        skip("not built: " + ", ".join(missing))
    with stack.Stack(build) as st:
        status, _, info = st.get_json("/shmring/status")
        for p in PLUGINS:
            r = info["routes"][p]
            check(r["plugin"] == p, "/%s runs its own plugin (%s)" % (p, r))
        key_auth(st)
        request_transformer(st)
        correlation_id(st)
        tracker(st, "/correlation-id-tracker")
        tracker(st, "/ngx/correlation-id-tracker")
        ngx_key_auth(st)
        check_error_log(st)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
