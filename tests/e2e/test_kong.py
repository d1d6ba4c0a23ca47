"""e2e (label kong): the Kong stubs as Kong 3.4-3.10 runs them, on the real
shmringd through the PDK double (tests/kong_pdk_double/): every config
built as Kong builds it, with the keys Kong injects (route_id, __plugin_id,
__ws_id, __key__, __seq__, ...), routes in tests/e2e/kong_routes.lua.

- Kong documentation / README configs of every stub work.
- A native Kong auth, then shmring rate-limiting by consumer and by
  credential, shmring's log; a native auth before shmring key-auth and jwt
  with `anonymous`.
- shmring key-auth, then what a native plugin and Kong's file-log see.
- correlation-id's id in Kong's own logger (set_serialize_value).
- limit_by = ip counts the forwarded client; counters keyed by the plugin's
  scope (service, global) as Kong keys them; limit_by = service.
- Refusals shaped by kong.response.error (request_id, Accept).
- The per-worker jobs never sit in Kong's timer pool.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, json_lines, skip, skip_unless_ready  # noqa: E402

PLUGINS = ("hello", "key-auth", "jwt", "rate-limiting", "request-transformer", "correlation-id",
           "log")
ALICE = "a11ce000-0000-4000-8000-000000000001"
BOB = "b0b00000-0000-4000-8000-000000000002"
DEMO = "7f3c1d2e-0000-4000-8000-000000000001"
DEMO_CRED = "7f3c1d2e-0000-4000-8000-00000000a001"
ANON = "a0000000-0000-4000-8000-0000000000aa"
RID = re.compile(r"^[0-9a-f]{32}$")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(claims, secret=b"demo-secret"):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def echo(st, path, headers=None):
    status, hdrs, body = st.get(path, headers)
    try:
        return status, hdrs, json.loads(body)
    except ValueError:
        return status, hdrs, body


def read_lines(path, want, timeout=5):
    end = time.time() + timeout
    lines = []
    while time.time() < end:
        lines = json_lines(path)
        if len(lines) >= want:
            break
        time.sleep(0.05)
    return lines


def docs_configs(st):
    status, hdrs, e = echo(st, "/kong/doc-hello")
    check(status == 200 and hdrs.get("x-hello") == "World" and e["headers"].get("x-hello") == "World",
          "hello: X-Hello both ways (%d %s)" % (status, hdrs))

    status, hdrs, body = st.get("/kong/doc-key-auth")
    b = json.loads(body)
    check(status == 401 and b.get("message") == "No API key found in request"
          and RID.match(b.get("request_id", "")), "key-auth: kong.response.error's body (%r)" % body)
    check(hdrs.get("www-authenticate") == "Key", "key-auth: WWW-Authenticate kept")
    status, hdrs, body = st.get("/kong/doc-key-auth", {"Accept": "text/html"})
    check(status == 401 and hdrs.get("content-type", "").startswith("text/html")
          and b"<p>No API key found in request.</p>" in body and b"request_id: " in body,
          "key-auth: Accept: text/html gives Kong's HTML error (%r)" % body[:80])
    status, hdrs, body = st.get("/kong/doc-key-auth", {"Accept": "text/plain;q=0.5, application/xml"})
    check(status == 401 and hdrs.get("content-type", "").startswith("application/xml")
          and b"<message>No API key found in request</message>" in body,
          "key-auth: the highest q of Accept picks XML (%r)" % body[:80])
    status, _, e = echo(st, "/kong/doc-key-auth", {"apikey": "demo-key"})
    check(status == 200 and e["headers"].get("x-consumer-id") == DEMO
          and "apikey" not in e["headers"], "key-auth: key accepted, hidden upstream (%s)" % e)

    status, hdrs, body = st.get("/kong/doc-jwt")
    check(status == 401 and json.loads(body) == {"message": "Unauthorized"},
          "jwt: Kong's jwt answers with kong.response.exit, no request_id (%r)" % body)
    tok = hs256({"iss": "demo-issuer", "exp": int(time.time()) + 600})
    status, _, e = echo(st, "/kong/doc-jwt", {"Authorization": "Bearer " + tok})
    check(status == 200 and e["headers"].get("x-consumer-id") == DEMO, "jwt: token accepted (%d)" % status)

    status, hdrs, _ = st.get("/kong/doc-rate-limiting")
    check(status == 200 and hdrs.get("x-ratelimit-limit-minute") == "5",
          "rate-limiting: minute = 5 (%d %s)" % (status, hdrs))

    status, _, e = echo(st, "/kong/doc-request-transformer?a=1",
                        {"X-ToRemove": "x", "X-Another-One": "y"})
    h = e["headers"]
    check(status == 200 and h.get("x-new-header") == "value" and h.get("x-another-header") == "something"
          and "x-toremove" not in h and "x-another-one" not in h
          and e["query"] == {"a": "1", "new-param": "some_value"},
          "request-transformer: Kong's example (%s)" % e)

    status, hdrs, e = echo(st, "/kong/doc-correlation-id")
    rid = hdrs.get("kong-request-id", "")
    check(status == 200 and re.match(r"^[0-9a-f-]{36}#\d+$", rid)
          and e["headers"].get("kong-request-id") == rid, "correlation-id: uuid#counter (%r)" % rid)

    for i in range(3):
        st.get("/kong/doc-log?n=%d" % i)
    lines = read_lines(os.path.join(st.prefix, "kong-doc-log.log"), 3)
    check(len(lines) == 3 and all(x["route"]["name"] == "doc-log" for x in lines)
          and all(x["request"]["id"] and x["workspace_name"] == "default" for x in lines),
          "log: the lines carry Kong's serializer fields (%s)" % lines[:1])

    for i in range(2):
        st.get("/kong/custom-fields-log?n=%d" % i, {"X-Custom": "c%d" % i})
    lines = read_lines(os.path.join(st.prefix, "kong-custom-log.log"), 2)
    check(len(lines) == 2 and sorted(x["request"].get("custom") for x in lines) == ["c0", "c1"],
          "custom_fields_by_lua: a dotted key nests into the serializer's table (%s)"
          % [x.get("request", {}).get("custom") for x in lines])
    x = lines[0] if lines else {}
    check(x.get("answer") == 42 and x.get("a.b") == [1, 2] and "route" not in x
          and x.get("request", {}).get("method") == "GET",
          "custom_fields_by_lua: values, an escaped dot, nil removes a field (%s)"
          % {k: x.get(k) for k in ("answer", "a.b", "route")})
    check("boom" not in x and "no_os" not in x and x.get("response", {}).get("status") == 200,
          "custom_fields_by_lua: a field whose code fails is dropped, the entry is written (%s)"
          % {k: x.get(k) for k in ("boom", "no_os", "response")})
    errlog = st.tail_log(300)
    check("custom_fields_by_lua field 'boom' dropped" in errlog
          and "custom_fields_by_lua field 'no_os' dropped" in errlog
          and "custom_fields_by_lua field 'response.status.x' dropped" in errlog,
          "custom_fields_by_lua: each failing field is logged")


def wait_for_fresh_minute():
    """The rate-limit checks below take a few seconds: start them where the
    minute window cannot roll over under them."""
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 0.2)


def statuses(st, path, n, headers=None):
    return [st.get(path, headers)[0] for _ in range(n)]


def native_auth_then_rate_limiting(st):
    for route in ("native-auth-rl", "native-auth-rl-cred"):
        alice = statuses(st, "/kong/%s" % route, 4, {"X-Native-User": "alice"})
        bob = statuses(st, "/kong/%s" % route, 1, {"X-Native-User": "bob"})
        check(alice == [200, 200, 200, 429] and bob == [200],
              "%s: the native login is counted per %s (alice %s, bob %s)"
              % (route, route.endswith("cred") and "credential" or "consumer", alice, bob))


def forwarded_ip(st):
    one = statuses(st, "/kong/rl-forwarded", 3, {"X-Forwarded-For": "10.0.0.1"})
    two = statuses(st, "/kong/rl-forwarded", 1, {"X-Forwarded-For": "10.0.0.2"})
    check(one == [200, 200, 429] and two == [200],
          "limit_by = ip counts the forwarded client, not the balancer (%s, %s)" % (one, two))


def by_scope(st):
    a = statuses(st, "/kong/rl-service-a", 2)
    b = statuses(st, "/kong/rl-service-b", 2)
    c = statuses(st, "/kong/rl-service-c", 1)
    check(a == [200, 200] and b == [200, 429] and c == [200],
          "limit_by = service on a service: one count for its routes (a %s, b %s, c %s)" % (a, b, c))
    x = statuses(st, "/kong/rl-global-x", 2, {"X-Tenant": "t1"})
    y = statuses(st, "/kong/rl-global-y", 2, {"X-Tenant": "t1"})
    z = statuses(st, "/kong/rl-global-y", 1, {"X-Tenant": "t2"})
    check(x == [200, 200] and y == [200, 429] and z == [200],
          "a global plugin counts a tenant once across services (x %s, y %s, t2 %s)" % (x, y, z))


def anonymous_after_native(st):
    status, _, e = echo(st, "/kong/native-then-key-auth", {"X-Native-User": "alice"})
    h = e["headers"]
    check(status == 200 and h.get("x-consumer-id") == ALICE and "x-anonymous-consumer" not in h,
          "key-auth with anonymous leaves a native login alone (%s)" % h)
    status, _, e = echo(st, "/kong/native-then-key-auth")
    h = e["headers"]
    check(status == 200 and h.get("x-consumer-id") == ANON and h.get("x-anonymous-consumer") == "true",
          "no login at all: the anonymous consumer (%s)" % h)
    status, _, e = echo(st, "/kong/native-then-key-auth", {"apikey": "demo-key"})
    check(status == 200 and e["headers"].get("x-consumer-id") == DEMO, "a key still logs in")
    status, _, e = echo(st, "/kong/native-then-jwt", {"X-Native-User": "bob"})
    h = e["headers"]
    check(status == 200 and h.get("x-consumer-id") == BOB and "x-anonymous-consumer" not in h,
          "jwt with anonymous leaves a native login alone (%s)" % h)
    status, _, e = echo(st, "/kong/native-then-jwt")
    check(status == 200 and e["headers"].get("x-anonymous-consumer") == "true"
          and e["headers"].get("x-consumer-id") == ANON, "jwt: no login, the anonymous consumer")
    status, _, _ = st.get("/kong/native-auth-log?who=alice", {"X-Native-User": "alice"})
    lines = read_lines(os.path.join(st.prefix, "kong-native-log.log"), 1)
    x = lines[-1] if lines else {}
    check(status == 200 and x.get("consumer", {}).get("id") == ALICE
          and x.get("authenticated_entity", {}).get("id") == "a11ce000-0000-4000-8000-0000000000c1",
          "shmring's log line carries the native login (%s)" % x.get("consumer"))


def shmring_auth_seen_natively(st):
    logfile = os.path.join(st.prefix, "kong-file-log.log")
    status, _, e = echo(st, "/kong/key-auth-native-reader", {"apikey": "demo-key"})
    h = e["headers"]
    check(status == 200 and h.get("x-native-consumer-id") == DEMO
          and h.get("x-native-consumer-username") == "demo"
          and h.get("x-native-credential-id") == DEMO_CRED
          and h.get("x-native-credential-consumer-id") == DEMO,
          "a native plugin reads shmring key-auth's consumer and credential (%s)" % h)
    lines = read_lines(logfile, 1)
    x = lines[-1] if lines else {}
    check(x.get("consumer", {}).get("id") == DEMO
          and x.get("authenticated_entity", {}).get("id") == DEMO_CRED,
          "Kong's file-log carries the consumer and credential (%s)" % x)

    status, hdrs, _ = st.get("/kong/correlation-file-log")
    cid = hdrs.get("kong-request-id")
    lines = read_lines(logfile, 2)
    check(status == 200 and cid and lines and lines[-1].get("correlation_id") == cid,
          "Kong's file-log carries correlation_id (%r vs %s)" % (cid, lines[-1:]))


def timers(st):
    seen = {}
    for _ in range(20):
        _, _, info = st.get_json("/shmring/status")
        seen[info["worker_pid"]] = info["timers"]
        if len(seen) == st.nginx_workers:
            break
    check(len(seen) == st.nginx_workers, "status from every worker (%s)" % seen)
    check(all(t["running"] == 0 for t in seen.values()),
          "no never-ending job sits in Kong's timer pool (%s)" % seen)


def main(build):
    skip_unless_ready(build)
    missing = [p for p in PLUGINS if p not in stack.built_plugins(build)]
    if missing:
        skip("not built: " + ", ".join(missing))
    # warn: the custom_fields_by_lua checks read the dropped fields' lines
    with stack.Stack(build, kong_routes="kong_routes", log_level="warn") as st:
        docs_configs(st)
        anonymous_after_native(st)
        shmring_auth_seen_natively(st)
        wait_for_fresh_minute()
        native_auth_then_rate_limiting(st)
        forwarded_ip(st)
        by_scope(st)
        timers(st)
        check_error_log(st)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
