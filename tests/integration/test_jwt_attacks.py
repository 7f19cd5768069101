"""Hostile tokens: forged and altered signatures, alg none and algorithm confusion, lenient
base64, broken structure and headers, oversized tokens. Each must fail with the contract's reason."""

import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import b64url, b64url_decode, compact_json, craft, std_claims  # noqa: E402

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def replace_signature(token, sig_text):
    h, p, _ = token.split(".")
    return f"{h}.{p}.{sig_text}"


def flip_signature_byte(token, index=10):
    h, p, s = token.split(".")
    sig = bytearray(b64url_decode(s))
    sig[index] ^= 0x01
    return f"{h}.{p}.{b64url(bytes(sig))}"


def flip_padding_bit(token):
    """Set an unused low bit of the signature's last base64url character: a lenient decoder
    yields the same bytes, a strict one refuses the segment."""
    h, p, s = token.split(".")
    assert len(b64url_decode(s)) % 3 != 0, "signature length leaves no padding bits"
    last = B64URL.index(s[-1])
    assert last & 1 == 0
    altered = s[:-1] + B64URL[last | 1]
    assert b64url_decode(altered) == b64url_decode(s)  # what a lenient decoder would accept
    return f"{h}.{p}.{altered}"


def unsigned(header, payload, sig=""):
    h = header if isinstance(header, bytes) else compact_json(header)
    p = payload if isinstance(payload, bytes) else compact_json(payload)
    return f"{b64url(h)}.{b64url(p)}.{sig}"


def hmac_forge(header, claims, secret):
    """An HS256 token whose MAC uses `secret` (e.g. a public key's PEM text)."""
    signing_input = unsigned(header, claims)[:-1].encode()
    return craft(header, claims, signature=hmac.new(secret, signing_input, hashlib.sha256).digest())


# The orders of the P-256 and P-384 groups.
EC_ORDERS = {
    "ec256": (32, 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    "ec384": (48, int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB2"
                      "48B0A77AECEC196ACCC52973", 16)),
}


def ecdsa_twin(token, half, order):
    """The token with its signature (r, s) replaced by (r, n - s): another valid signature over
    the same header and payload, which anyone holding the token can compute."""
    h, p, s = token.split(".")
    sig = b64url_decode(s)
    twin_s = order - int.from_bytes(sig[half:], "big")
    return f"{h}.{p}.{b64url(sig[:half] + twin_s.to_bytes(half, 'big'))}"


def b64len(n):
    return (4 * n + 2) // 3


def sized_token(key, length):
    """A valid RS256 token of exactly `length` characters (padded with extra members)."""
    sig_len = b64len(256)  # RSA 2048
    claims = std_claims()
    for hpad in range(4):
        header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
        if hpad:
            header["x"] = "h" * hpad
        left = length - 2 - sig_len - b64len(len(compact_json(header)))
        base = len(compact_json(dict(claims, pad="")))
        for k in range(0, length):
            if b64len(base + k) == left:
                return craft(header, dict(claims, pad="p" * k), key)
            if b64len(base + k) > left:
                break
    raise AssertionError(f"cannot build a token of {length} characters")


class SignatureAttackTest(harness.RevokdTestCase):
    """Against the standard JWKS: every key has a kid and a pinned alg; no kid-less key."""

    def test_valid_baseline(self):
        for name in ("rsa", "rsa2", "ec256", "ec384", "hs"):
            with self.subTest(key=name):
                token = self.craft(key=self.keys[name])
                self.assertActive(self.revokd.check(token), token)

    def test_flipped_signature_byte(self):
        for name in ("rsa", "ec256", "hs"):
            with self.subTest(key=name):
                token = flip_signature_byte(self.craft(key=self.keys[name]))
                self.assertTokenFailure(self.revokd.check(token), "invalid_signature")

    def test_changed_payload_keeps_old_signature(self):
        good = self.craft(payload=std_claims(sub="alice"))
        other = self.craft(payload=std_claims(sub="mallory"))
        forged = other.split(".")[0] + "." + other.split(".")[1] + "." + good.split(".")[2]
        self.assertTokenFailure(self.revokd.check(forged), "invalid_signature")

    def test_signature_from_another_key_with_same_alg_and_kid(self):
        impostor = self.factory.rsa("impostor", kid="rsa-1", alg="RS256")
        token = craft({"alg": "RS256", "kid": "rsa-1"}, std_claims(), impostor)
        self.assertTokenFailure(self.revokd.check(token), "invalid_signature")

    def test_kid_of_another_key(self):
        # Signed by rsa-1's private key, claiming to be rsa-2 (RS384).
        token = craft({"alg": "RS384", "kid": "rsa-2"}, std_claims(), self.keys["rsa"])
        self.assertTokenFailure(self.revokd.check(token), "invalid_signature")

    def test_empty_signature(self):
        # An empty segment is strict base64url of zero bytes; either reading of it fails the token.
        token = replace_signature(self.craft(), "")
        body = self.assertJsonResponse(self.revokd.check(token), 401)
        self.assertIs(body.get("active"), False, body)
        self.assertIn(body.get("reason"), ("invalid_signature", "malformed"), body)

    def assertAlgNoneRefused(self, header, reason):
        claims = std_claims()
        # With a junk signature the reason is exact ...
        token = unsigned(header, claims, sig=b64url(b"junk-signature"))
        self.assertTokenFailure(self.revokd.check(token), reason)
        # ... and with none at all the token is refused either for that reason or as malformed.
        token = unsigned(header, claims)
        body = self.assertJsonResponse(self.revokd.check(token), 401)
        self.assertIn(body.get("reason"), (reason, "malformed"), body)
        self.assertIs(body.get("active"), False)

    def test_alg_none_with_kid(self):
        for header in ({"alg": "none", "kid": "rsa-1"}, {"alg": "None", "kid": "rsa-1", "typ": "JWT"},
                       {"alg": "NONE", "kid": "hs-1"}, {"alg": "PS256", "kid": "rsa-1"}):
            with self.subTest(header=header):
                self.assertAlgNoneRefused(header, "algorithm_not_allowed")

    def test_alg_none_or_unsupported_without_kid(self):
        # An alg revokd does not implement ("none", "ES256K") is refused before any key is
        # looked up, with or without kid: algorithm_not_allowed.
        for header in ({"alg": "none"}, {"alg": "none", "typ": "JWT"}, {"alg": "ES256K"}):
            with self.subTest(header=header):
                self.assertAlgNoneRefused(header, "algorithm_not_allowed")

    def test_hs256_signed_with_rsa_public_pem(self):
        pem = self.keys["rsa"].public_pem()
        claims = std_claims()
        for secret in (pem, pem.rstrip(b"\n")):
            for header in ({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"},
                           {"alg": "HS256", "kid": "ec-256"}):
                with self.subTest(header=header, newline=secret.endswith(b"\n")):
                    token = hmac_forge(header, claims, secret)
                    self.assertTokenFailure(self.revokd.check(token), "algorithm_not_allowed")
            with self.subTest(header="no kid"):
                token = hmac_forge({"alg": "HS256", "typ": "JWT"}, claims, secret)
                self.assertTokenFailure(self.revokd.check(token), "unknown_key")

    def test_header_alg_differs_from_pinned_alg(self):
        k = self.keys
        cases = [
            ({"alg": "RS384", "kid": "rsa-1"}, k["rsa"]),     # rsa-1 is pinned to RS256
            ({"alg": "RS512", "kid": "rsa-1"}, k["rsa"]),
            ({"alg": "RS256", "kid": "rsa-2"}, k["rsa2"]),    # rsa-2 is pinned to RS384
            ({"alg": "ES384", "kid": "ec-256"}, k["ec384"]),  # P-256 key: ES256 only
            ({"alg": "ES256", "kid": "ec-384"}, k["ec256"]),
            ({"alg": "HS512", "kid": "hs-1"}, k["hs"]),       # hs-1 is pinned to HS256
            ({"alg": "RS256", "kid": "hs-1"}, k["rsa"]),
            ({"alg": "HS256", "kid": "rsa-1"}, k["hs"]),
        ]
        for header, key in cases:
            with self.subTest(header=header):
                token = craft(header, std_claims(), key)
                self.assertTokenFailure(self.revokd.check(token), "algorithm_not_allowed")

    def test_unknown_kid(self):
        for header in ({"alg": "RS256", "kid": "rsa-9"}, {"alg": "RS256", "kid": "RSA-1"},
                       {"alg": "RS256", "kid": "rsa-1 "}, {"alg": "RS256"}, {"alg": "HS256"}):
            with self.subTest(header=header):
                key = self.keys["hs"] if header["alg"] == "HS256" else self.keys["rsa"]
                token = craft(header, std_claims(), key)
                self.assertTokenFailure(self.revokd.check(token), "unknown_key")

    def test_empty_kid_is_malformed(self):
        # kid, when present, must be a string of 1 to 256 bytes; "" names nothing.
        token = craft({"alg": "RS256", "kid": ""}, std_claims(), self.keys["rsa"])
        self.assertTokenFailure(self.revokd.check(token), "malformed")

    def test_lenient_base64_in_signature_is_malformed(self):
        for name in ("rsa", "ec256", "hs"):
            good = self.craft(key=self.keys[name])
            sig = good.split(".")[2]
            for variant in (sig + "==", sig + "!!", sig + "=", sig + " ", sig + "\t"):
                with self.subTest(key=name, suffix=variant[len(sig):]):
                    resp = self.revokd.check_post(replace_signature(good, variant))
                    self.assertTokenFailure(resp, "malformed")
            with self.subTest(key=name, case="padding bits"):
                resp = self.revokd.check(flip_padding_bit(good))
                self.assertTokenFailure(resp, "malformed")

    def test_non_base64url_characters_are_malformed(self):
        # Header and payload segments are altered and then signed properly, so the signature
        # verifies and only the segment's encoding is at fault.
        key = self.keys["rsa"]
        header = {"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}
        while len(compact_json(header)) % 3 == 0:  # leave padding bits in the last character
            header["x"] = header.get("x", "") + "x"
        claims = std_claims()
        while len(compact_json(claims)) % 3 == 0:
            claims["x"] = claims.get("x", "") + "x"
        good = craft(header, claims, key)
        h, p, s = good.split(".")

        def resign(h2, p2):
            return f"{h2}.{p2}.{b64url(key.sign(f'{h2}.{p2}'.encode()))}"

        self.assertActive(self.revokd.check(resign(h, p)))
        std_b64 = s.replace("-", "+").replace("_", "/")
        variants = {
            "plus/slash in signature": f"{h}.{p}.{std_b64 if std_b64 != s else '+' + s[1:]}",
            "star in payload": resign(h, f"{p[:5]}*{p[6:]}"),
            "space in payload": resign(h, f"{p[:5]} {p[6:]}"),
            "padded header": resign(h + "=" * (-len(h) % 4 or 4), p),
            "padded payload": resign(h, p + "=" * (-len(p) % 4 or 4)),
            "impossible payload length": resign(h, p + "A" * ((1 - len(p)) % 4)),
            "non-zero padding bits in payload": resign(h, flip_padding_bit(f"x.x.{p}").split(".")[2]),
            "non-zero padding bits in header": resign(flip_padding_bit(f"x.x.{h}").split(".")[2], p),
        }
        for name, token in variants.items():
            with self.subTest(case=name):
                self.assertTokenFailure(self.revokd.check_post(token), "malformed")

    def test_not_three_segments(self):
        good = self.craft()
        h, p, s = good.split(".")
        for token in ("abc", f"{h}.{p}", f"{h}.{p}.{s}.{s}", f"{h}.{p}.{s}.", f".{h}.{p}.{s}",
                      "..", ".", f"{h}{p}{s}"):
            with self.subTest(token=token[:40]):
                self.assertTokenFailure(self.revokd.check_post(token), "malformed")

    def test_header_structure(self):
        key = self.keys["rsa"]
        claims = std_claims()
        bad_headers = [
            b'[]', b'"RS256"', b'null', b'{"alg":"RS256","kid":"rsa-1"', b'not json',
            b'{"kid":"rsa-1"}',                                    # no alg
            b'{"alg":256,"kid":"rsa-1"}',                          # alg not a string
            b'{"alg":"RS256","kid":1}',                            # kid not a string
            b'{"alg":"RS256","kid":"rsa-1","crit":["exp"]}',       # crit present
            b'{"alg":"RS256","kid":"rsa-1","crit":[]}',
            b'{"alg":"RS256","kid":"rsa-1","typ":"JOSE"}',         # typ other than JWT / at+jwt
            b'{"alg":"RS256","kid":"rsa-1","typ":5}',
            b'{"alg":"RS256","alg":"RS256","kid":"rsa-1"}',        # duplicate member
            b'{"alg":"HS256","kid":"rsa-1","alg":"RS256"}',
            b'{"alg":"RS256","kid":"rsa-1","kid":"rsa-2"}',
            b'{"alg":"RS256","kid":"rsa-1\\u0000x"}',              # NUL escape
            b'{"alg":"RS256","kid":"rsa-1","x":"\\u0000"}',
        ]
        for header in bad_headers:
            with self.subTest(header=header):
                token = craft(header, claims, key, alg="RS256")
                self.assertTokenFailure(self.revokd.check(token), "malformed")

    def test_typ_values_accepted(self):
        for typ in ("JWT", "jwt", "Jwt", "at+jwt", "AT+JWT", "At+Jwt"):
            with self.subTest(typ=typ):
                token = craft({"alg": "RS256", "kid": "rsa-1", "typ": typ}, std_claims(), self.keys["rsa"])
                self.assertActive(self.revokd.check(token), token)
        token = craft({"alg": "RS256", "kid": "rsa-1"}, std_claims(), self.keys["rsa"])
        self.assertActive(self.revokd.check(token), token)

    def test_typ_other_spellings_are_malformed(self):
        # typ, if present, must be JWT or at+jwt, with or without the "application/" prefix
        # RFC 7515 4.1.9 allows (case-insensitive); nothing else.
        for typ in ("JWS", "JWT ", "application/json", "at+JWT+x"):
            with self.subTest(typ=typ):
                token = craft({"alg": "RS256", "kid": "rsa-1", "typ": typ}, std_claims(), self.keys["rsa"])
                self.assertTokenFailure(self.revokd.check(token), "malformed")
        for typ in ("application/jwt", "application/AT+JWT", "jwt", "at+jwt"):
            with self.subTest(typ=typ):
                token = craft({"alg": "RS256", "kid": "rsa-1", "typ": typ}, std_claims(), self.keys["rsa"])
                self.assertEqual(self.revokd.check(token).status, 200)

    def test_payload_not_an_object(self):
        for payload in (b"[]", b'[{"exp":1}]', b'"x"', b"7", b"null", b"not json", b'{"exp":'):
            with self.subTest(payload=payload):
                token = craft({"alg": "RS256", "kid": "rsa-1"}, payload, self.keys["rsa"])
                body = self.assertJsonResponse(self.revokd.check(token), 401)
                self.assertIs(body.get("active"), False, body)
                self.assertIn(body.get("reason"), ("malformed", "invalid_claims"), body)


class MalleabilityTest(harness.RevokdTestCase):
    """A token without jti is named by its signed bytes, so a re-encoded signature cannot bring a
    revoked token back."""

    def test_ecdsa_twin_of_revoked_token_without_jti_stays_revoked(self):
        for name, (half, order) in EC_ORDERS.items():
            with self.subTest(key=name):
                token = self.craft(key=self.keys[name], payload=std_claims(jti=None))
                twin = ecdsa_twin(token, half, order)
                self.assertNotEqual(twin, token)
                # Both signatures verify: one of them is high-S.
                self.assertActive(self.revokd.check(token))
                twin_id = self.assertActive(self.revokd.check(twin))["jti"]
                revoked = self.assertJsonResponse(self.revokd.revoke(token), 200)
                for t in (token, twin):
                    self.assertTokenFailure(self.revokd.check(t), "revoked")
                    self.assertTokenFailure(self.revokd.check_post(t), "revoked")
                # One id for both, made of what was signed.
                self.assertEqual(revoked["jti"], harness.token_id(token))
                self.assertEqual(twin_id, revoked["jti"])
                # Revoking the twin is revoking the same token again.
                self.assertEqual(self.assertJsonResponse(self.revokd.revoke(twin), 200)["jti"],
                                 revoked["jti"])
                self.assertEqual(len(self.redis.keys()), 1)
                self.redis.flushall()


class TokenSizeTest(harness.RevokdTestCase):
    """REVOKD_MAX_TOKEN_BYTES (default 8192) and REVOKD_MAX_BODY_BYTES (default 16384)."""

    def test_token_at_limit_is_checked_and_one_byte_more_is_malformed(self):
        at_limit = sized_token(self.keys["rsa"], 8192)
        over = sized_token(self.keys["rsa"], 8193)
        self.assertEqual((len(at_limit), len(over)), (8192, 8193))
        self.assertActive(self.revokd.check(at_limit), at_limit)
        self.assertActive(self.revokd.check_post(at_limit), at_limit)
        self.assertTokenFailure(self.revokd.check(over), "malformed")
        self.assertTokenFailure(self.revokd.check_post(over), "malformed")
        self.assertTokenFailure(self.revokd.revoke(over), "malformed")

    def test_long_garbage_in_header(self):
        # Past the token limit but within the head limit (limit + 1 KiB): a JSON 401.
        token = "a" * 4500 + "." + "b" * 4498 + ".c"
        self.assertTokenFailure(self.revokd.check(token), "malformed")
        # A request head beyond it: libmicrohttpd's 431, and the node carries on.
        token = "a" * 10000 + "." + "b" * 9998 + ".c"
        resp = self.revokd.check(token)
        self.assertEqual(resp.status, 431, resp)
        good = self.craft()
        self.assertActive(self.revokd.check(good), good)

    def test_300kb_token_in_body_is_413(self):
        token = "A" * 150000 + "." + "B" * 150000 + ".C"
        body = b'{"token":"' + token.encode() + b'"}'
        for path in ("/v1/check", "/v1/revoke"):
            with self.subTest(path=path):
                request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
                resp, err = harness.raw_exchange(self.revokd.port, request)
                self.assertIsNotNone(resp, f"no response ({err!r})")
                self.assertError(resp, 413, "payload_too_large")
        self.assertTrue(self.revokd.alive())
        self.assertJsonResponse(self.revokd.healthz(), 200)

    def test_300kb_token_in_authorization_header(self):
        token = "A" * 150000 + "." + "B" * 150000 + ".C"
        request = (f"GET /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                   f"Connection: close\r\n\r\n").encode()
        resp, err = harness.raw_exchange(self.revokd.port, request)
        self.assertIsNotNone(resp, f"no response ({err!r})")
        if resp.status == 401:
            self.assertTokenFailure(resp, "malformed")
        else:
            self.assertEqual(resp.status, 431, resp)
        self.assertTrue(self.revokd.alive())
        good = self.craft()
        self.assertActive(self.revokd.check(good), good)


class PemConfusionTest(harness.RevokdTestCase):
    """Only kid-less convenience keys: an RS256 public PEM (and, in one test, an HMAC secret)."""
    class_daemon = False

    def forge(self, secret):
        return hmac_forge({"alg": "HS256", "typ": "JWT"}, std_claims(), secret)

    def test_hs256_with_public_pem_as_secret_and_no_hmac_key(self):
        rsa = self.keys["rsa"]
        daemon = self.start_revokd({"REVOKD_JWKS_FILE": None, "REVOKD_JWT_PUBLIC_KEY_FILE": rsa.pub_path})
        good = self.mint(kid=None)
        self.assertActive(daemon.check(good), good)
        pem = rsa.public_pem()
        for secret in (pem, pem.rstrip(b"\n")):
            with self.subTest(newline=secret.endswith(b"\n")):
                self.assertTokenFailure(daemon.check(self.forge(secret)), "unknown_key")

    def test_hs256_with_public_pem_as_secret_and_an_hmac_key(self):
        rsa = self.keys["rsa"]
        secret = self.factory.hmac("hs-conv", size=32)
        daemon = self.start_revokd({"REVOKD_JWKS_FILE": None, "REVOKD_JWT_PUBLIC_KEY_FILE": rsa.pub_path,
                                    "REVOKD_JWT_HMAC_SECRET_FILE": secret.secret_path})
        good = self.mint(key=secret, kid=None)
        self.assertActive(daemon.check(good), good)
        self.assertTokenFailure(daemon.check(self.forge(rsa.public_pem())), "invalid_signature")

    def test_ec_public_pem_as_secret(self):
        ec = self.keys["ec256"]
        daemon = self.start_revokd({"REVOKD_JWKS_FILE": None, "REVOKD_JWT_PUBLIC_KEY_FILE": ec.pub_path})
        self.assertTokenFailure(daemon.check(self.forge(ec.public_pem())), "unknown_key")
        token = craft({"alg": "RS256"}, std_claims(), self.keys["rsa"])
        self.assertTokenFailure(daemon.check(token), "unknown_key")


if __name__ == "__main__":
    harness.main()
