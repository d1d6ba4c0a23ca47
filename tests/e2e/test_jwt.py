"""e2e: the jwt plugin through the /jwt demo route (Kong stub in the PDK
double, real shmringd): HS256 (demo-issuer / demo-secret) and RS256
(demo-rs256, signed with demo/keys/demo-rs256.pem by the openssl command
line) tokens reach the echo upstream with the consumer headers; expired,
missing, tampered and alg-confused tokens get Kong's 401s."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from common import check, check_error_log, done, skip, skip_unless_ready  # noqa: E402

REPO = stack.REPO
DEMO_KEY = os.path.join(REPO, "demo", "keys", "demo-rs256.pem")
DEMO_PUB = os.path.join(REPO, "demo", "keys", "demo-rs256.pub.pem")
CONSUMER_ID = "7f3c1d2e-0000-4000-8000-000000000001"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def signing_input(alg, claims):
    h = b64u(json.dumps({"typ": "JWT", "alg": alg}, separators=(",", ":")).encode())
    return h + "." + b64u(json.dumps(claims, separators=(",", ":")).encode())


def hs256(claims, secret=b"demo-secret"):
    si = signing_input("HS256", claims)
    return si + "." + b64u(hmac.new(secret, si.encode(), hashlib.sha256).digest())


def rs256(claims):
    si = signing_input("RS256", claims)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", DEMO_KEY], input=si.encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    return si + "." + b64u(sig)


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def main(build):
    skip_unless_ready(build)
    if "jwt" not in stack.built_plugins(build):
        skip("plugins/jwt.so is not built in " + build)
    now = int(time.time())
    with stack.Stack(build) as st:
        status, _, info = st.get_json("/shmring/status")
        check(info["routes"]["jwt"]["plugin"] == "jwt",
              "/jwt runs the jwt plugin (%s)" % info["routes"]["jwt"])

        tok = hs256({"iss": "demo-issuer", "sub": "alice", "exp": now + 300})
        for i in range(10):  # both nginx workers; the second time from the cache
            status, hdrs, echo = st.get_json("/jwt?i=%d" % i, bearer(tok))
            check(status == 200, "HS256 token: 200 (got %d %s)" % (status, echo))
            h = echo["headers"]
            check(h.get("x-consumer-id") == CONSUMER_ID, "upstream got X-Consumer-ID: %s" % h)
            check(h.get("x-consumer-username") == "demo", "upstream got X-Consumer-Username")
            check(h.get("x-credential-identifier") == "demo-issuer",
                  "upstream got X-Credential-Identifier = the credential's key")
            check("x-consumer-custom-id" not in h, "no custom id: X-Consumer-Custom-ID cleared")
            check(h.get("authorization") == "Bearer " + tok, "the token itself is passed on")

        status, _, echo = st.get_json("/jwt?jwt=" + tok)
        check(status == 200 and echo["headers"].get("x-consumer-username") == "demo",
              "token in the jwt query argument")

        rtok = rs256({"iss": "demo-rs256", "exp": now + 300})
        status, _, echo = st.get_json("/jwt", bearer(rtok))
        check(status == 200, "RS256 token: 200 (got %d %s)" % (status, echo))
        check(echo["headers"].get("x-credential-identifier") == "demo-rs256",
              "RS256: the credential demo-rs256")

        status, hdrs, body = st.get_json("/jwt")
        check(status == 401 and body == {"message": "Unauthorized"},
              "no token: 401 Unauthorized (got %d %s)" % (status, body))
        check(hdrs.get("www-authenticate") == "Bearer", "no token: WWW-Authenticate: Bearer")

        status, hdrs, body = st.get_json("/jwt", bearer(
            hs256({"iss": "demo-issuer", "exp": now - 5})))
        check(status == 401 and body == {"exp": "token expired"},
              "expired: 401 {exp: token expired} (got %d %s)" % (status, body))
        check(hdrs.get("www-authenticate") == 'Bearer error="invalid_token"',
              "expired: WWW-Authenticate with error=invalid_token")

        status, _, body = st.get_json("/jwt", bearer(
            hs256({"iss": "demo-issuer", "exp": now + 300}, b"wrong-secret")))
        check(status == 401 and body == {"message": "Invalid signature"},
              "wrong secret: Invalid signature (got %d %s)" % (status, body))

        # HS256 signed with the RS256 public key as the HMAC secret.
        with open(DEMO_PUB, "rb") as f:
            pub = f.read()
        status, _, body = st.get_json("/jwt", bearer(
            hs256({"iss": "demo-rs256", "exp": now + 300}, pub)))
        check(status == 401 and body == {"message": "Invalid algorithm"},
              "alg confusion: Invalid algorithm (got %d %s)" % (status, body))

        status, _, body = st.get_json("/jwt", bearer(
            hs256({"iss": "nobody", "exp": now + 300})))
        check(status == 401 and body == {"message": "No credentials found for given 'iss'"},
              "unknown iss (got %d %s)" % (status, body))

        none = b64u(b'{"alg":"none"}') + "." + b64u(json.dumps(
            {"iss": "demo-issuer", "exp": now + 300}).encode()) + "."
        status, _, body = st.get_json("/jwt", bearer(none))
        check(status == 401 and body == {"message": "Bad token; invalid alg"},
              "alg none refused (got %d %s)" % (status, body))

        check_error_log(st, 200)
    done()


if __name__ == "__main__":
    main(sys.argv[1])
