"""GET/POST /v1/check on valid tokens: the 200 body, missing tokens, POST body shapes, health."""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import b64url, jwt_parts, std_claims, token_id  # noqa: E402

ISS = "https://issuer.check.test"


class CheckTest(harness.RevokdTestCase):

    def test_active_token_get(self):
        token = self.mint(sub="alice", iss=ISS, jti="jti-check-1", ttl=600)
        body = self.assertActive(self.revokd.check(token), token)
        self.assertEqual(body["jti"], "jti-check-1")
        self.assertEqual(body["sub"], "alice")
        self.assertEqual(body["iss"], ISS)
        _, claims, _ = jwt_parts(token)
        self.assertEqual(body["exp"] - body["iat"], 600)
        self.assertEqual(body["exp"], claims["exp"])
        # A check reads the store and writes nothing.
        self.assertEqual(self.redis.keys(), [])

    def test_active_token_post(self):
        token = self.mint(sub="bob", iss=ISS)
        self.assertActive(self.revokd.check_post(token), token)

    def test_sub_and_iss_omitted_when_absent(self):
        token = self.craft(payload=std_claims(sub=None))
        body = self.assertActive(self.revokd.check(token), token)
        self.assertNotIn("sub", body)
        self.assertNotIn("iss", body)

    def test_token_without_jti_gets_signing_input_hash_id(self):
        token = self.mint(sub="carol", no_jti=True)
        header, claims, _ = token.split(".")
        self.assertNotIn("jti", jwt_parts(token)[1])
        expected = "sha256:" + b64url(hashlib.sha256(f"{header}.{claims}".encode()).digest())
        self.assertEqual(token_id(token), expected)
        for resp in (self.revokd.check(token), self.revokd.check_post(token)):
            body = self.assertActive(resp, token)
            self.assertEqual(body["jti"], expected)

    def test_missing_token(self):
        self.assertTokenFailure(self.revokd.request("GET", "/v1/check"), "missing_token")

    def test_non_bearer_scheme_is_missing_token(self):
        token = self.mint(sub="dave")
        for value in (f"Basic {token}", f"Token {token}", "Basic dXNlcjpwYXNz"):
            with self.subTest(value=value[:12]):
                resp = self.revokd.request("GET", "/v1/check", headers={"Authorization": value})
                self.assertTokenFailure(resp, "missing_token")

    def test_post_body_must_be_object_with_string_token(self):
        for body in (b"{}", b'{"token": 5}', b'{"token": null}', b'{"token": ["a.b.c"]}', b"[]",
                     b'"a.b.c"', b"42", b"null", b'{"tok": "a.b.c"}'):
            with self.subTest(body=body):
                resp = self.revokd.request("POST", "/v1/check", body,
                                           {"Content-Type": "application/json"})
                self.assertError(resp, 400, "invalid_request")

    def test_post_garbage_token_is_token_failure(self):
        resp = self.revokd.request("POST", "/v1/check", {"token": "not-a-jwt"})
        self.assertTokenFailure(resp, "malformed")

    def test_each_call_is_independent(self):
        tokens = [self.mint(sub=f"user-{i}") for i in range(3)]
        for token in tokens * 2:
            self.assertActive(self.revokd.check(token), token)

    def test_healthz_and_readyz(self):
        body = self.assertJsonResponse(self.revokd.healthz(), 200)
        self.assertEqual(body, {"status": "ok"})
        body = self.assertJsonResponse(self.revokd.readyz(), 200)
        self.assertEqual(body.get("status"), "ready", body)
        store = body.get("store")
        self.assertIsInstance(store, dict, body)
        self.assertEqual(store.get("role"), "master", body)
        self.assertEqual(store.get("address"), self.redis.address(), body)


if __name__ == "__main__":
    harness.main()
