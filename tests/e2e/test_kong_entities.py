"""e2e (label kong): key-auth and jwt with consumers and credentials from Kong.

shmring's key-auth and jwt stubs have no consumers of their own; Kong's (the PDK
double's database, a declarative config at start, changed through the
double's Admin API stand-in at /kong-admin/) answer its look-ups, through
kong.cache as Kong's key-auth loads them. Real nginx (2 workers), real
shmringd (2 workers).

- A key of the declarative config authenticates; Kong's own plugins see
  Kong's entities (consumer and credential).
- A credential created after start authenticates on the next request; a key
  refused before it was created is accepted within 1 s; a deleted one is
  refused within 1 s; a consumer's new username shows within 1 s; a
  declarative reload replaces the keys within 1 s (every worker: the checks
  use a new connection per request, so both nginx workers answer).
- jwt: a token signed with the secret of Kong's config authenticates; after
  the secret is rotated in Kong, tokens signed with the old one are refused
  within 1 s (the verified-token cache too) and new ones accepted.
- 10 000 requests with random unknown keys leave the daemon's entity caches
  at their bound (shmringctl's entity_entries), evicting the rest.
- 40 concurrent first requests for one key: one look-up in Kong's database.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, json_lines, skip, skip_unless_ready  # noqa: E402

CAROL = "c0ffee00-0000-4000-8000-000000000001"
CAROL_CRED = "c0ffee00-0000-4000-8000-0000000000c1"
ANON = "a0000000-0000-4000-8000-0000000000aa"
CACHE_ENTRIES = 64  # shmringd --entity-cache-entries, per channel
WITHIN = 1.0        # seconds: the invalidation bound


def admin(st, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=5)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, "/kong-admin" + path, body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        out = r.read()
        return r.status, json.loads(out) if out else None
    finally:
        c.close()


def key_auth(st, key, route="ent-key-auth"):
    """One request on a new connection (either nginx worker)."""
    status, _, body = st.get("/kong/%s/x" % route, {"apikey": key} if key else {})
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def warm(st, key, n=20):
    """Both nginx workers (and so both channels) learn the key's answer."""
    return [key_auth(st, key)[0] for _ in range(n)]


def until(pred, limit=WITHIN, settle=10):
    """Seconds until pred() held for `settle` requests in a row, or None if
    not within limit."""
    start = time.time()
    ok = 0
    while time.time() - start < limit + 0.5:
        ok = ok + 1 if pred() else 0
        if ok >= settle:
            return time.time() - start
    return None


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(claims, secret):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def jwt_auth(st, tok):
    status, _, body = st.get("/kong/ent-jwt/x", {"Authorization": "Bearer " + tok})
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def jwt_rotation(st):
    old = hs256({"iss": "carol-issuer", "exp": int(time.time()) + 600}, b"carol-secret")
    status, e = jwt_auth(st, old)
    h = e.get("headers", {}) if isinstance(e, dict) else {}
    check(status == 200 and h.get("x-consumer-id") == CAROL
          and h.get("x-credential-identifier") == "carol-issuer"
          and h.get("x-native-credential-id") == "c0ffee00-0000-4000-8000-0000000000d1",
          "a jwt signed with the secret of Kong's config authenticates (%s %s)" % (status, h))
    check(set(jwt_auth(st, old)[0] for _ in range(20)) == {200},
          "the token is verified (and cached) by both workers")
    status, _ = admin(st, "PATCH", "/consumers/" + CAROL + "/jwt/carol-issuer", {"secret": "rotated"})
    check(status == 200, "PATCH /consumers/carol/jwt/{key} (a rotated secret)")
    took = until(lambda: jwt_auth(st, old)[0] == 401)
    check(took is not None and took < WITHIN,
          "a token signed with the old secret is refused within 1 s (%s s)" % took)
    new = hs256({"iss": "carol-issuer", "exp": int(time.time()) + 600}, b"rotated")
    status, e = jwt_auth(st, new)
    check(status == 200, "a token signed with the new secret authenticates (%s %s)" % (status, e))


def kong_shaped(st):
    status, e = key_auth(st, "carol-key")
    h = e.get("headers", {}) if isinstance(e, dict) else {}
    check(status == 200 and h.get("x-consumer-id") == CAROL
          and h.get("x-consumer-username") == "carol"
          and h.get("x-consumer-custom-id") == "cust-carol"
          and h.get("x-credential-identifier") == CAROL_CRED
          and "apikey" not in h and "x-anonymous-consumer" not in h,
          "a key from Kong's config authenticates, with Kong's headers (%s %s)" % (status, h))
    check(h.get("x-native-consumer-id") == CAROL
          and h.get("x-native-consumer-username") == "carol"
          and h.get("x-native-credential-id") == CAROL_CRED
          and h.get("x-native-credential-consumer-id") == CAROL,
          "Kong's own plugins see Kong's consumer and credential (%s)" % h)
    status, _ = key_auth(st, "carol-key", "ent-key-auth-log")
    line = {}
    path = os.path.join(st.prefix, "kong-entities-file-log.log")
    for _ in range(100):
        lines = json_lines(path)
        if lines:
            line = lines[-1]
            break
        time.sleep(0.05)
    c = line.get("consumer") or {}
    check(status == 200 and c.get("id") == CAROL and c.get("custom_id") == "cust-carol"
          and "created_at" in c
          and (line.get("authenticated_entity") or {}).get("id") == CAROL_CRED,
          "Kong's logger gets Kong's own consumer entity, created_at and all (%s)" % line)
    status, e = key_auth(st, "no-such-key")
    check(status == 401 and isinstance(e, dict) and e.get("message") == "Unauthorized",
          "an unknown key is refused as Kong refuses it (%s %s)" % (status, e))
    status, e = key_auth(st, "no-such-key", "ent-key-auth-anon")
    h = e.get("headers", {}) if isinstance(e, dict) else {}
    check(status == 200 and h.get("x-consumer-id") == ANON
          and h.get("x-anonymous-consumer") == "true",
          "anonymous names a Kong consumer by username (%s %s)" % (status, h))


def created_and_deleted(st):
    status, cred = admin(st, "POST", "/consumers/carol/key-auth", {"key": "fresh-key"})
    check(status == 201 and cred.get("key") == "fresh-key", "POST /consumers/carol/key-auth")
    status, e = key_auth(st, "fresh-key")
    check(status == 200 and e["headers"].get("x-credential-identifier") == cred["id"],
          "a credential created after start authenticates on the next request (%s)" % status)

    # A key refused (and so cached as unknown) before it exists.
    check(set(warm(st, "late-key")) == {401}, "late-key is refused before it exists")
    admin(st, "POST", "/consumers/carol/key-auth", {"key": "late-key"})
    took = until(lambda: key_auth(st, "late-key")[0] == 200)
    check(took is not None and took < WITHIN,
          "a key refused earlier is accepted within 1 s of its creation (%s s)" % took)

    check(set(warm(st, "fresh-key")) == {200}, "fresh-key known to both workers")
    status, _ = admin(st, "DELETE", "/consumers/carol/key-auth/" + cred["id"])
    check(status == 204, "DELETE /consumers/carol/key-auth/{id}")
    took = until(lambda: key_auth(st, "fresh-key")[0] == 401)
    check(took is not None and took < WITHIN,
          "a deleted credential is refused within 1 s (%s s)" % took)

    # A consumer's change reaches the credentials answered with it.
    check(set(warm(st, "carol-key")) == {200}, "carol-key known to both workers")
    status, _ = admin(st, "PATCH", "/consumers/carol", {"username": "caroline"})
    check(status == 200, "PATCH /consumers/carol")
    took = until(lambda: key_auth(st, "carol-key")[1].get("headers", {})
                 .get("x-consumer-username") == "caroline")
    check(took is not None and took < WITHIN,
          "a consumer's new username shows within 1 s (%s s)" % took)


def declarative_reload(st):
    check(set(warm(st, "carol-key")) == {200}, "carol-key known to both workers")
    status, _ = admin(st, "POST", "/config", {"_format_version": "3.0", "consumers": [
        {"id": CAROL, "username": "carol",
         "keyauth_credentials": [{"id": CAROL_CRED, "key": "carol-key-2"}]},
        {"id": ANON, "username": "anonymous"}]})
    check(status == 201, "POST /config (a declarative reload)")
    took = until(lambda: key_auth(st, "carol-key")[0] == 401
                 and key_auth(st, "carol-key-2")[0] == 200)
    check(took is not None and took < WITHIN,
          "after a declarative reload the old key is refused and the new one accepted "
          "within 1 s (%s s)" % took)


def bounded(st):
    before = st.daemon_stats()
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
    statuses = {}
    for i in range(10000):
        c.request("GET", "/kong/ent-key-auth/x", headers={"apikey": secrets.token_hex(16)})
        r = c.getresponse()
        r.read()
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if r.getheader("connection", "").lower() == "close":
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
    c.close()
    after = st.daemon_stats()
    bound = CACHE_ENTRIES * st.nginx_workers
    check(statuses == {401: 10000}, "10 000 random keys refused (%s)" % statuses)
    check(after.get("entity_entries", -1) <= bound,
          "the daemon's entity caches stay within %d entries (%s)"
          % (bound, after.get("entity_entries")))
    check(after.get("entity_evictions", 0) - before.get("entity_evictions", 0) >= 10000 - bound,
          "the rest was evicted (%s)" % after.get("entity_evictions"))


def concurrent_first(st):
    admin(st, "POST", "/consumers/carol/key-auth", {"key": "burst-key"})
    time.sleep(0.2)  # the create's own invalidations are through
    _, before = admin(st, "GET", "/_double/lookups")
    n = 40
    gate = threading.Barrier(n)
    results = []

    def one():
        gate.wait()
        results.append(key_auth(st, "burst-key")[0])

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, after = admin(st, "GET", "/_double/lookups")
    check(results.count(200) == n, "%d concurrent first requests authenticate (%s)"
          % (n, results))
    d = after["keyauth_credentials"] - before["keyauth_credentials"]
    check(d == 1, "they cause one look-up of the credential in Kong's database (%d)" % d)
    d = after["consumers"] - before["consumers"]
    check(d <= 1, "and at most one of its consumer (%d)" % d)


def main(build):
    skip_unless_ready(build)
    missing = [p for p in ("key-auth", "jwt") if p not in stack.built_plugins(build)]
    if missing:
        skip("not built: " + ", ".join(missing))
    with stack.Stack(build, kong_routes="kong_entity_routes",
                     daemon_args=["--entity-cache-entries", str(CACHE_ENTRIES)]) as st:
        kong_shaped(st)
        created_and_deleted(st)
        jwt_rotation(st)
        declarative_reload(st)
        concurrent_first(st)
        bounded(st)
        check_error_log(st)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
