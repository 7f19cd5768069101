"""POST /v1/revoke: stored key name, value and expiry in Redis, idempotence, expired tokens,
tokens without jti, and what revoke refuses."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import jwt_parts, key_name, now, revokd_key_name, std_claims, token_id  # noqa: E402

ISS = "https://issuer.revoke.test"
LEEWAY = harness.DEFAULT_LEEWAY


class RevokeTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS}

    def revoke_ok(self, token, expired=False):
        resp = self.revokd.revoke(token)
        body = self.assertJsonResponse(resp, 200)
        _, claims, _ = jwt_parts(token)
        self.assertEqual(body, {"revoked": True, "jti": token_id(token), "iss": claims.get("iss"),
                                "expires_at": claims["exp"] + LEEWAY, "expired": expired})
        return body

    def assertStored(self, jti, expires_at, iss=ISS, value="1"):
        key = key_name("jti", iss, jti)
        self.assertEqual(self.redis.keys(), [key])
        self.assertEqual(self.redis.get(key), value)
        self.assertEqual(self.redis.expiretime(key), expires_at)
        self.assertGreater(self.redis.ttl(key), 0)
        return key

    def test_revoke_then_check_revoked(self):
        token = self.mint(sub="alice", iss=ISS, jti="jti-revoke-1", ttl=900)
        self.assertActive(self.revokd.check(token), token)
        body = self.revoke_ok(token)
        key = self.assertStored("jti-revoke-1", body["expires_at"])
        self.assertLessEqual(self.redis.ttl(key), 900 + LEEWAY)
        self.assertEqual(key, revokd_key_name("jti", ISS, "jti-revoke-1"))

        for resp in (self.revokd.check(token), self.revokd.check_post(token)):
            failure = self.assertTokenFailure(resp, "revoked")
            self.assertEqual(failure.get("jti"), "jti-revoke-1", failure)
            self.assertEqual(failure.get("sub"), "alice", failure)

    def test_revoke_is_idempotent(self):
        token = self.mint(sub="bob", iss=ISS, ttl=300)
        first = self.revoke_ok(token)
        key = self.assertStored(token_id(token), first["expires_at"])
        second = self.revoke_ok(token)
        self.assertEqual(first, second)
        self.assertStored(token_id(token), first["expires_at"])
        self.assertEqual(self.redis.expiretime(key), first["expires_at"])
        self.assertTokenFailure(self.revokd.check(token), "revoked")

    def test_revoke_affects_only_that_token(self):
        revoked = self.mint(sub="carol", iss=ISS)
        other = self.mint(sub="carol", iss=ISS)
        self.revoke_ok(revoked)
        self.assertTokenFailure(self.revokd.check(revoked), "revoked")
        self.assertActive(self.revokd.check(other), other)

    def test_revoke_already_expired_token_stores_nothing(self):
        t = now()
        token = self.mint(sub="dave", iss=ISS, iat=t - 1000, exp=t - 100)
        self.revoke_ok(token, expired=True)
        self.assertEqual(self.redis.keys(), [])

    def test_revoke_token_expired_but_within_leeway_is_stored(self):
        t = now()
        token = self.mint(sub="erin", iss=ISS, iat=t - 600, exp=t - 10)
        body = self.revoke_ok(token, expired=False)
        self.assertStored(token_id(token), t - 10 + LEEWAY)
        self.assertEqual(body["expires_at"], t - 10 + LEEWAY)
        self.assertTokenFailure(self.revokd.check(token), "revoked")

    def test_revoke_does_not_check_nbf(self):
        t = now()
        token = self.mint(sub="frank", iss=ISS, iat=t, nbf=t + 3600, exp=t + 7200)
        self.assertTokenFailure(self.revokd.check(token), "not_yet_valid")
        body = self.revoke_ok(token)
        self.assertStored(token_id(token), body["expires_at"])

    def test_revoke_token_without_jti(self):
        token = self.mint(sub="grace", iss=ISS, no_jti=True)
        jti = token_id(token)
        self.assertTrue(jti.startswith("sha256:"), jti)
        self.revoke_ok(token)
        key = self.assertStored(jti, jwt_parts(token)[1]["exp"] + LEEWAY)
        self.assertEqual(key, revokd_key_name("jti", ISS, jti))
        self.assertTokenFailure(self.revokd.check(token), "revoked")
        failure = self.assertJsonResponse(self.revokd.lookup(jti=jti), 401)
        self.assertEqual(failure.get("reason"), "revoked", failure)

    def test_revoke_token_without_iss_uses_empty_namespace(self):
        daemon = self.start_revokd()  # no REVOKD_ISSUER
        token = self.craft(payload=std_claims(jti="jti-no-iss"))
        resp = daemon.revoke(token)
        body = self.assertJsonResponse(resp, 200)
        self.assertEqual(body["jti"], "jti-no-iss")
        self.assertIsNone(body["iss"])  # the answer says it reached the tokens without iss
        key = key_name("jti", "", "jti-no-iss")
        self.assertEqual(key, revokd_key_name("jti", "", "jti-no-iss"))
        self.assertEqual(self.redis.keys(), [key])
        self.assertEqual(self.redis.expiretime(key), body["expires_at"])
        self.assertTokenFailure(daemon.check(token), "revoked")

    def test_revoke_refuses_invalid_tokens_and_stores_nothing(self):
        good = self.mint(sub="heidi", iss=ISS)
        h, p, s = good.split(".")
        flipped = h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:]
        t = now()
        cases = {
            "invalid_signature": flipped,
            "invalid_issuer": self.mint(sub="heidi", iss="https://other.test"),
            "lifetime_exceeded": self.mint(sub="heidi", iss=ISS, iat=t, exp=t + harness.DEFAULT_MAX_LIFETIME + 1),
            "malformed": "a.b",
            "unknown_key": self.mint(sub="heidi", iss=ISS, kid="no-such-kid"),
        }
        for reason, token in cases.items():
            with self.subTest(reason=reason):
                self.assertTokenFailure(self.revokd.revoke(token), reason)
        self.assertEqual(self.redis.keys(), [])

    def test_revoke_bad_request_bodies(self):
        for body in (b"{}", b'{"token": 1}', b"[]", b'{"token":'):
            with self.subTest(body=body):
                resp = self.revokd.request("POST", "/v1/revoke", body,
                                           {"Content-Type": "application/json"})
                self.assertError(resp, 400, "invalid_request")
        resp = self.revokd.request("POST", "/v1/revoke", b'{"token":"a.b.c"}',
                                   {"Content-Type": "text/plain"})
        self.assertError(resp, 415, "unsupported_media_type")
        self.assertEqual(self.redis.keys(), [])

    def test_key_name_cli_matches_contract(self):
        for kind, iss, value in (("jti", ISS, "abc"), ("jti", "", "abc"), ("sub", ISS, "alice"),
                                 ("sub", "", "user/1"), ("jti", "iss-\u00e9", "j\u00fcti"),
                                 ("jti", "ab", "c"), ("jti", "a", "bc")):
            with self.subTest(kind=kind, iss=iss, value=value):
                self.assertEqual(revokd_key_name(kind, iss, value), key_name(kind, iss, value))
        # The length prefix keeps ("ab","c") and ("a","bc") apart.
        self.assertNotEqual(key_name("jti", "ab", "c")[-32:], key_name("jti", "a", "bc")[-32:])


if __name__ == "__main__":
    harness.main()
