"""Lookup-only mode: GET /v1/check?jti=..&sub=..&iat=..&iss=.. asks the store without a token."""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import key_name, now, token_id  # noqa: E402

ISS = "https://issuer.lookup.test"
ADMIN_KEY = "admin-key-lookup-0123456789abcdef"


class LookupTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS}
    admin_keys = (ADMIN_KEY,)

    def assertLookupActive(self, resp, **expected):
        body = self.assertJsonResponse(resp, 200)
        self.assertIs(body.get("active"), True, body)
        for name in ("jti", "sub"):
            if name in expected:
                self.assertEqual(body.get(name), expected[name], body)
            else:
                self.assertNotIn(name, body)
        return body

    def assertLookupRevoked(self, resp):
        body = self.assertJsonResponse(resp, 401)
        self.assertIs(body.get("active"), False, body)
        self.assertEqual(body.get("reason"), "revoked", body)
        self.assertEqual(body.get("error"), "invalid_token", body)
        self.assertIsInstance(body.get("error_description"), str, body)
        return body

    def admin_revoke(self, jti, **extra):
        body = dict({"jti": jti, "exp": now() + 600}, **extra)
        return self.assertJsonResponse(self.revokd.admin_revoke(ADMIN_KEY, body), 200)

    def test_jti_not_revoked(self):
        self.assertLookupActive(self.revokd.lookup(jti="never-revoked"), jti="never-revoked")
        self.assertEqual(self.redis.keys(), [])

    def test_jti_revoked_by_token(self):
        token = self.mint(sub="alice", iss=ISS, jti="lookup-jti-1")
        self.assertLookupActive(self.revokd.lookup(jti="lookup-jti-1"), jti="lookup-jti-1")
        self.assertJsonResponse(self.revokd.revoke(token), 200)
        self.assertLookupRevoked(self.revokd.lookup(jti="lookup-jti-1"))
        self.assertLookupRevoked(self.revokd.lookup(jti="lookup-jti-1", iss=ISS))
        self.assertLookupActive(self.revokd.lookup(jti="lookup-jti-1", iss="https://other.test"),
                                jti="lookup-jti-1")

    def test_jti_revoked_by_admin_in_other_namespace(self):
        self.admin_revoke("lookup-jti-2", iss="https://other.test")
        self.assertTrue(self.redis.exists(key_name("jti", "https://other.test", "lookup-jti-2")))
        self.assertLookupActive(self.revokd.lookup(jti="lookup-jti-2"), jti="lookup-jti-2")
        self.assertLookupRevoked(self.revokd.lookup(jti="lookup-jti-2", iss="https://other.test"))

    def test_signature_hash_id(self):
        token = self.mint(sub="bob", iss=ISS, no_jti=True)
        jti = token_id(token)
        self.assertLookupActive(self.revokd.lookup(jti=jti), jti=jti)
        self.assertEqual(self.assertJsonResponse(self.revokd.revoke(token), 200)["jti"], jti)
        self.assertLookupRevoked(self.revokd.lookup(jti=jti))
        # ':' unescaped in the query works the same.
        self.assertLookupRevoked(self.revokd.request("GET", f"/v1/check?jti={jti}"))

    def test_subject_cutoff(self):
        t0 = now()
        resp = self.revokd.admin_revoke_all(ADMIN_KEY, "carol")
        cutoff = self.assertJsonResponse(resp, 200)["cutoff"]
        self.assertGreaterEqual(cutoff, t0)
        self.assertLookupRevoked(self.revokd.lookup(sub="carol", iat=cutoff))
        self.assertLookupRevoked(self.revokd.lookup(sub="carol", iat=0))
        self.assertLookupActive(self.revokd.lookup(sub="carol", iat=cutoff + 1), sub="carol")
        self.assertLookupActive(self.revokd.lookup(sub="dave", iat=0), sub="dave")
        self.assertLookupActive(self.revokd.lookup(sub="carol", iat=0, iss="https://other.test"), sub="carol")

    def test_jti_and_subject_together(self):
        t0 = now()
        cutoff = self.assertJsonResponse(self.revokd.admin_revoke_all(ADMIN_KEY, "erin"), 200)["cutoff"]
        self.assertGreaterEqual(cutoff, t0)
        self.assertLookupRevoked(self.revokd.lookup(jti="fresh-jti", sub="erin", iat=cutoff))
        self.assertLookupActive(self.revokd.lookup(jti="fresh-jti", sub="erin", iat=cutoff + 1),
                                jti="fresh-jti", sub="erin")
        self.admin_revoke("fresh-jti")
        self.assertLookupRevoked(self.revokd.lookup(jti="fresh-jti", sub="erin", iat=cutoff + 1))

    def test_issuer_required_without_revokd_issuer(self):
        """With no REVOKD_ISSUER a lookup must name its issuer: defaulting to the tokens without
        iss would answer "active" for every token that has one, revoked or not. iss= (empty)
        names the tokens without iss."""
        daemon = self.start_revokd()  # no REVOKD_ISSUER
        token = self.craft(payload=harness.std_claims(jti="empty-ns-jti"))
        with_iss = self.craft(payload=harness.std_claims(jti="iss-ns-jti", iss=ISS))
        for t in (token, with_iss):
            self.assertJsonResponse(daemon.revoke(t), 200)
        self.assertTrue(self.redis.exists(key_name("jti", "", "empty-ns-jti")))
        for query in ("jti=iss-ns-jti", "jti=empty-ns-jti", f"sub=x&iat={now()}"):
            with self.subTest(query=query):
                body = self.assertError(daemon.request("GET", "/v1/check?" + query), 400, "invalid_request")
                self.assertIn("REVOKD_ISSUER", body["error_description"])
        self.assertLookupRevoked(daemon.lookup(jti="iss-ns-jti", iss=ISS))
        self.assertLookupRevoked(daemon.request("GET", "/v1/check?jti=empty-ns-jti&iss="))
        self.assertLookupActive(daemon.request("GET", "/v1/check?jti=iss-ns-jti&iss="), jti="iss-ns-jti")
        # With REVOKD_ISSUER set, iss= still names the tokens without iss.
        self.assertLookupRevoked(self.revokd.request("GET", "/v1/check?jti=empty-ns-jti&iss="))
        self.assertLookupActive(self.revokd.lookup(jti="empty-ns-jti"), jti="empty-ns-jti")

    def test_plus_is_a_plus_sign_in_path_query_and_body(self):
        """One decoding for every way an id arrives: '+' is a plus sign in a path segment, a
        query value and a JSON body alike, so a revocation made one way is found by a lookup
        made another. A space is written %20."""
        t = now()
        # Revoked through the path, '+' as sent and as %2B.
        self.assertJsonResponse(self.revokd.admin_revoke_all(ADMIN_KEY, "alice+x@example.com",
                                                             quoted=True), 200)
        self.assertJsonResponse(self.revokd.admin_revoke_all(ADMIN_KEY, "bob+y@example.com"), 200)
        for sub in ("alice", "bob"):
            tail = "x" if sub == "alice" else "y"
            for query in (f"sub={sub}+{tail}@example.com", f"sub={sub}%2B{tail}%40example.com",
                          f"sub={sub}%2b{tail}@example.com"):
                with self.subTest(query=query):
                    self.assertLookupRevoked(self.revokd.request("GET", f"/v1/check?{query}&iat={t}"))
        # A space is another subject, which nobody revoked.
        self.assertLookupActive(self.revokd.request("GET", f"/v1/check?sub=alice%20x@example.com&iat={t}"),
                                sub="alice x@example.com")
        # Revoked through a JSON body, looked up with '+' as sent and escaped.
        self.admin_revoke("jti+with+plus")
        for query in ("jti=jti+with+plus", "jti=jti%2Bwith%2Bplus", "jti=jti+with%2bplus"):
            with self.subTest(query=query):
                self.assertLookupRevoked(self.revokd.request("GET", f"/v1/check?{query}"))
        self.assertLookupActive(self.revokd.request("GET", "/v1/check?jti=jti%20with%20plus"),
                                jti="jti with plus")

    def test_repeated_parameter_is_refused(self):
        self.admin_revoke("first")
        for query in ("jti=other&jti=first", "jti=first&jti=other", f"jti=a&sub=b&iat={now()}&iat=1",
                      "sub=a&sub=b&iat=1", "jti=a&iss=x&iss=y"):
            with self.subTest(query=query):
                self.assertError(self.revokd.request("GET", "/v1/check?" + query), 400, "invalid_request")

    def test_string_lengths(self):
        self.assertLookupActive(self.revokd.lookup(jti="j" * 256), jti="j" * 256)
        self.assertLookupActive(self.revokd.lookup(sub="s" * 256, iat=1), sub="s" * 256)

    def test_bad_parameters(self):
        long = "x" * 257
        cases = [
            "jti=",
            "sub=",
            "jti=&sub=",
            "sub=alice",
            "sub=alice&iat=",
            "sub=alice&iat=abc",
            "sub=alice&iat=-1",
            "sub=alice&iat=1.5",
            "sub=alice&iat=1e3",
            "sub=alice&iat=12abc",
            "sub=alice&iat=99999999999999999999999",
            f"jti={long}",
            f"sub={long}&iat=1",
            f"jti=abc&iss={long}",
            "jti=%FF", "jti=a%C0%AF", "sub=%ED%A0%80&iat=1", "jti=a%0D%0Ab", "jti=a&iss=%FF",
            "jti=a%09b",
        ]
        for query in cases:
            with self.subTest(query=query[:60]):
                resp = self.revokd.request("GET", "/v1/check?" + query)
                self.assertError(resp, 400, "invalid_request")

    def test_query_without_jti_or_sub_is_token_mode(self):
        self.assertTokenFailure(self.revokd.request("GET", "/v1/check?iat=5"), "missing_token")
        self.assertTokenFailure(self.revokd.request("GET", "/v1/check?iss=" + urllib.parse.quote(ISS)),
                                "missing_token")


if __name__ == "__main__":
    harness.main()
