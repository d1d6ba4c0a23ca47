#!/usr/bin/env python3
"""Generate the jwt plugin's test fixtures with implementations other than
the plugin: Python's standard library (hmac, hashlib) for HS*, the `openssl`
command line for RS*, PS*, ES* and EdDSA. Writes tests/jwt/keys/*.pem and
tests/jwt/fixtures.h (committed; re-run to regenerate:
`python3 tests/jwt/gen_fixtures.py`). Claims use fixed times around FX_NOW;
the unit tests pin the plugin's clock there.

With --demo it also (re)creates the demo RS256 key pair in demo/keys/.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KEYS = os.path.join(HERE, "keys")
NOW = 1700000000


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def ossl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def genkey(name, *opts):
    path = os.path.join(KEYS, name + ".pem")
    if not os.path.exists(path):
        ossl("genpkey", *opts, "-out", path)
    pub = os.path.join(KEYS, name + ".pub.pem")
    if not os.path.exists(pub):
        ossl("pkey", "-in", path, "-pubout", "-out", pub)
    return path, open(pub).read()


def der_to_jose(der, n):
    """ECDSA-Sig-Value (DER) -> r||s, each n bytes (RFC 7518 3.4)."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        ln = der[i + 1]
        v = der[i + 2:i + 2 + ln].lstrip(b"\0")
        out += v.rjust(n, b"\0")
        i += 2 + ln
    return out


HS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
DIG = {"256": "-sha256", "384": "-sha384", "512": "-sha512"}
EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}


def sign(alg, signing_input, key):
    """key: HS secret (bytes) or a private key PEM path."""
    data = signing_input.encode()
    if alg in HS:
        return hmac.new(key, data, HS[alg]).digest()
    if alg.startswith("RS"):
        return ossl("dgst", DIG[alg[2:]], "-sign", key, data=data)
    if alg.startswith("PS"):
        md = "sha" + alg[2:]
        return ossl("dgst", DIG[alg[2:]], "-sign", key, "-sigopt", "rsa_padding_mode:pss",
                    "-sigopt", "rsa_pss_saltlen:digest", "-sigopt", "rsa_mgf1_md:" + md, data=data)
    if alg.startswith("ES"):
        return der_to_jose(ossl("dgst", DIG[alg[2:]], "-sign", key, data=data), EC_SIZE[alg])
    if alg == "EdDSA":
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            return ossl("pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", f.name)
    raise ValueError(alg)


def token(alg, claims, key, header=None):
    h = header if header is not None else {"typ": "JWT", "alg": alg}
    si = b64u(json.dumps(h, separators=(",", ":")).encode()) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")).encode())
    return si + "." + b64u(sign(alg, si, key))


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def main():
    os.makedirs(KEYS, exist_ok=True)
    if "--demo" in sys.argv:
        d = os.path.join(REPO, "demo", "keys")
        os.makedirs(d, exist_ok=True)
        priv = os.path.join(d, "demo-rs256.pem")
        if not os.path.exists(priv):
            ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", priv)
        ossl("pkey", "-in", priv, "-pubout", "-out", os.path.join(d, "demo-rs256.pub.pem"))

    rsa, rsa_pub = genkey("rsa2048", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    rsa_b, _ = genkey("rsa2048-other", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    _, rsa1024_pub = genkey("rsa1024", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")
    ec = {}
    for alg, curve in (("ES256", "P-256"), ("ES384", "P-384"), ("ES512", "P-521")):
        ec[alg] = genkey("ec-" + curve, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve)
        ec[alg + "-other"] = genkey("ec-" + curve + "-other", "-algorithm", "EC", "-pkeyopt",
                                    "ec_paramgen_curve:" + curve)
    ed, ed_pub = genkey("ed25519", "-algorithm", "ED25519")
    ed_b, _ = genkey("ed25519-other", "-algorithm", "ED25519")

    # One credential per algorithm, key "k-<alg>".
    creds, priv, other = [], {}, {}
    for alg in HS:
        secret = ("secret-for-" + alg + "-0123456789abcdef").encode()
        creds.append({"consumer": {"id": "c-" + alg, "username": "user-" + alg,
                                   "custom_id": "custom-" + alg},
                      "key": "k-" + alg, "algorithm": alg, "secret": secret.decode(),
                      "id": "cred-" + alg})
        priv[alg], other[alg] = secret, b"not-the-secret"
    for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        creds.append({"consumer": {"id": "c-" + alg, "username": "user-" + alg},
                      "key": "k-" + alg, "algorithm": alg, "rsa_public_key": rsa_pub})
        priv[alg], other[alg] = rsa, rsa_b
    for alg in EC_SIZE:
        creds.append({"consumer": {"id": "c-" + alg}, "key": "k-" + alg, "algorithm": alg,
                      "rsa_public_key": ec[alg][1]})
        priv[alg], other[alg] = ec[alg][0], ec[alg + "-other"][0]
    creds.append({"consumer": {"username": "user-EdDSA"}, "key": "k-EdDSA", "algorithm": "EdDSA",
                  "rsa_public_key": ed_pub})
    priv["EdDSA"], other["EdDSA"] = ed, ed_b
    config = {"claims_to_verify": ["exp", "nbf"], "maximum_expiration": 3600,
              "credentials": creds}

    def claims(alg, **kw):
        c = {"iss": "k-" + alg, "sub": "alice", "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 600}
        c.update(kw)
        return c

    cases = []  # (name, token, expected body or None for success, alg)
    for alg in priv:
        good = token(alg, claims(alg), priv[alg])
        cases.append(("valid " + alg, good, None, alg))
        cases.append(("wrong key " + alg, token(alg, claims(alg), other[alg]),
                      '{"message":"Invalid signature"}', alg))
        h, c, s = good.split(".")
        tampered = b64u(json.dumps(claims(alg, sub="mallory"), separators=(",", ":")).encode())
        cases.append(("tampered payload " + alg, h + "." + tampered + "." + s,
                      '{"message":"Invalid signature"}', alg))
        cases.append(("expired " + alg, token(alg, claims(alg, exp=NOW - 10), priv[alg]),
                      '{"exp":"token expired"}', alg))
    A = "HS256"
    cases += [
        ("not yet valid", token(A, claims(A, nbf=NOW + 600), priv[A]),
         '{"nbf":"token not valid yet"}', A),
        ("expired and not yet valid", token(A, claims(A, nbf=NOW + 600, exp=NOW - 1), priv[A]),
         '{"exp":"token expired","nbf":"token not valid yet"}', A),
        ("too long expiration", token(A, claims(A, exp=NOW + 86400), priv[A]),
         '{"exp":"exceeds maximum allowed expiration"}', A),
        ("exp not a number", token(A, claims(A, exp="tomorrow"), priv[A]),
         '{"exp":"must be a number"}', A),
        ("alg none", b64u(b'{"alg":"none"}') + "." +
         b64u(json.dumps(claims(A)).encode()) + ".", '{"message":"Bad token; invalid alg"}', A),
        ("alg none with signature", token(A, claims(A), priv[A], {"alg": "none"}),
         '{"message":"Bad token; invalid alg"}', A),
        ("alg confusion: HS256 signed with the RS256 public key",
         token("HS256", claims("RS256"), rsa_pub.encode()), '{"message":"Invalid algorithm"}', A),
        ("alg confusion: RS256 token for an HS256 credential", token("RS256", claims("HS256"), rsa),
         '{"message":"Invalid algorithm"}', A),
        ("duplicate alg in header", b64u(b'{"alg":"HS256","alg":"none"}') + "." +
         b64u(json.dumps(claims(A)).encode()) + ".c2ln", '{"message":"Bad token; invalid JSON"}', A),
        ("unknown iss", token(A, claims(A, iss="nobody"), priv[A]),
         '{"message":"No credentials found for given \'iss\'"}', A),
        ("no iss", token(A, {"exp": NOW + 60}, priv[A]),
         '{"message":"No mandatory \'iss\' in claims"}', A),
        ("empty iss", token(A, claims(A, iss=""), priv[A]),
         '{"message":"Invalid \'iss\' in claims"}', A),
        ("iss in the JOSE header", token(A, {"exp": NOW + 60, "nbf": NOW - 60},
                                         priv[A], {"alg": A, "iss": "k-" + A}), None, A),
        ("ES256 signature in DER, not JOSE", token("ES256", claims("ES256"), ec["ES256"][0])
         .rsplit(".", 1)[0] + "." + b64u(ossl("dgst", "-sha256", "-sign", ec["ES256"][0],
                                             data=(token("ES256", claims("ES256"), ec["ES256"][0])
                                                   .rsplit(".", 1)[0]).encode())),
         '{"message":"Invalid signature"}', "ES256"),
    ]
    # RFC 7515 A.1 / RFC 7519 3.1 (HS256, key in the JWK "k" as base64url).
    rfc_token = ("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                 "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
                 "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    rfc_k = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    # Cross-check with the standard library before committing to it.
    h, c, s = rfc_token.split(".")
    assert b64u(hmac.new(base64.urlsafe_b64decode(rfc_k + "=="), (h + "." + c).encode(),
                         hashlib.sha256).digest()) == s
    rfc7519_unsecured = ("eyJhbGciOiJub25lIn0."
                         "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.")

    out = ["/* Generated by tests/jwt/gen_fixtures.py: do not edit. Tokens were",
           " * signed by Python's hmac (HS*) and the openssl command line (others). */",
           "#define FX_NOW %d" % NOW,
           "static const char FX_CONFIG[] = %s;" % c_str(json.dumps(config)),
           "static const char FX_RSA_PUB[] = %s;" % c_str(rsa_pub),
           "static const char FX_RSA1024_PUB[] = %s;" % c_str(rsa1024_pub),
           "static const char FX_EC256_PUB[] = %s;" % c_str(ec["ES256"][1]),
           "static const char FX_ED25519_PUB[] = %s;" % c_str(ed_pub),
           "static const char FX_RSA_PRIV_PATH[] = %s;" % c_str(os.path.relpath(rsa, REPO)),
           "static const char FX_RFC7515_A1_TOKEN[] = %s;" % c_str(rfc_token),
           "static const char FX_RFC7515_A1_K[] = %s;" % c_str(rfc_k),
           "static const char FX_RFC7519_UNSECURED[] = %s;" % c_str(rfc7519_unsecured),
           "struct fx_case { const char *name, *token, *body, *alg; };",
           "static const struct fx_case FX_CASES[] = {"]
    for name, tok, body, alg in cases:
        out.append("\t{%s, %s, %s, %s}," % (c_str(name), c_str(tok),
                                              c_str(body) if body else "NULL", c_str(alg)))
    out.append("};")
    with open(os.path.join(HERE, "fixtures.h"), "w") as f:
        f.write("\n".join(out) + "\n")
    # Seeds for the fuzz target: one token per algorithm plus a few broken ones.
    corpus = os.path.join(HERE, "corpus")
    os.makedirs(corpus, exist_ok=True)
    for i, (name, tok, body, alg) in enumerate(cases):
        if body is None or i % 7 == 0:
            with open(os.path.join(corpus, "seed-%02d" % i), "w") as f:
                f.write(tok)
    print("wrote %d cases" % len(cases))


if __name__ == "__main__":
    main()
