"""Claim rules: exp/nbf/iat against the clock and the leeway, issuer, audience, lifetime, claim
types and sizes, duplicate claims. Tokens are signed correctly; only the claims are at fault."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import craft, now, std_claims  # noqa: E402

ISS = "https://issuer.claims.test"
AUD = "api://revokd"
LEEWAY = 30
MAX_LIFETIME = 3600


class ClaimsTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD, "REVOKD_LEEWAY": str(LEEWAY),
                  "REVOKD_MAX_TOKEN_LIFETIME": str(MAX_LIFETIME)}

    def claims(self, **kw):
        base = {"iss": ISS, "aud": AUD}
        base.update(kw)
        return std_claims(**base)

    def check_claims(self, claims):
        return self.revokd.check(self.craft(payload=claims))

    def assertAccepted(self, claims):
        token = self.craft(payload=claims)
        return self.assertActive(self.revokd.check(token), token)

    def assertRejected(self, claims, reason):
        return self.assertTokenFailure(self.check_claims(claims), reason)

    def test_baseline(self):
        self.assertAccepted(self.claims())
        token = self.mint(sub="alice", iss=ISS, aud=AUD)
        self.assertActive(self.revokd.check(token), token)

    # Time ------------------------------------------------------------------------------------
    def test_expired(self):
        t = now()
        self.assertRejected(self.claims(iat=t - 600, exp=t - LEEWAY - 5), "expired")
        self.assertRejected(self.claims(iat=t - 3000, exp=t - 2000), "expired")
        # now >= exp + leeway is expired, so exp == now - leeway already is.
        self.assertRejected(self.claims(iat=t - 600, exp=t - LEEWAY), "expired")
        token = self.mint(sub="bob", iss=ISS, aud=AUD, iat=t - 600, exp=t - 100)
        self.assertTokenFailure(self.revokd.check(token), "expired")

    def test_expired_within_leeway_is_active(self):
        t = now()
        self.assertAccepted(self.claims(iat=t - 600, exp=t - 5))
        self.assertAccepted(self.claims(iat=t - 600, exp=t - LEEWAY + 10))

    def test_nbf_in_future(self):
        t = now()
        self.assertRejected(self.claims(nbf=t + LEEWAY + 60, exp=t + 600), "not_yet_valid")
        self.assertRejected(self.claims(nbf=t + LEEWAY + 5, exp=t + 600), "not_yet_valid")
        token = self.mint(sub="carol", iss=ISS, aud=AUD, iat=t, nbf=t + 600, exp=t + 900)
        self.assertTokenFailure(self.revokd.check(token), "not_yet_valid")

    def test_nbf_within_leeway_is_active(self):
        t = now()
        self.assertAccepted(self.claims(nbf=t + 10))
        self.assertAccepted(self.claims(nbf=t + LEEWAY))
        self.assertAccepted(self.claims(nbf=t - 100))

    def test_iat_in_future(self):
        t = now()
        self.assertRejected(self.claims(iat=t + LEEWAY + 60, exp=t + LEEWAY + 360), "not_yet_valid")
        self.assertRejected(self.claims(iat=t + LEEWAY + 5, exp=t + 600), "not_yet_valid")

    def test_iat_within_leeway_is_active(self):
        t = now()
        self.assertAccepted(self.claims(iat=t + 10, exp=t + 300))
        self.assertAccepted(self.claims(iat=t + LEEWAY, exp=t + 300))

    def test_fractional_times_are_numbers(self):
        t = now()
        body = self.assertActive(self.revokd.check(self.craft(payload=self.claims(iat=t + 0.25, exp=t + 300.5))))
        self.assertLess(abs(body["exp"] - (t + 300.5)), 1, body)
        self.assertLess(abs(body["iat"] - (t + 0.25)), 1, body)
        self.assertRejected(self.claims(iat=t - 600.5, exp=t - LEEWAY - 0.5), "expired")

    # Issuer and audience ---------------------------------------------------------------------
    def test_wrong_issuer(self):
        for iss in ("https://evil.test", ISS + "/", ISS.upper(), "https://issuer.claims.tes", None):
            with self.subTest(iss=iss):
                claims = self.claims()
                if iss is None:
                    del claims["iss"]
                else:
                    claims["iss"] = iss
                self.assertRejected(claims, "invalid_issuer")

    def test_audience_string(self):
        self.assertAccepted(self.claims(aud=AUD))
        for aud in ("api://other", AUD + " ", AUD.upper(), None):
            with self.subTest(aud=aud):
                claims = self.claims()
                if aud is None:
                    del claims["aud"]
                else:
                    claims["aud"] = aud
                self.assertRejected(claims, "invalid_audience")

    def test_audience_array(self):
        self.assertAccepted(self.claims(aud=[AUD]))
        self.assertAccepted(self.claims(aud=["api://a", AUD, "api://b"]))
        for aud in ([], ["api://a"], ["api://a", "api://b"], [AUD + "x"]):
            with self.subTest(aud=aud):
                self.assertRejected(self.claims(aud=aud), "invalid_audience")

    def test_audience_from_revokectl(self):
        token = self.mint(sub="dave", iss=ISS, aud="api://other")
        self.assertTokenFailure(self.revokd.check(token), "invalid_audience")
        token = self.mint(sub="dave", iss=ISS, claims={"aud": ["x", AUD]})
        self.assertActive(self.revokd.check(token), token)

    # Lifetime --------------------------------------------------------------------------------
    def test_lifetime(self):
        t = now()
        self.assertAccepted(self.claims(iat=t, exp=t + MAX_LIFETIME))
        self.assertRejected(self.claims(iat=t, exp=t + MAX_LIFETIME + 1), "lifetime_exceeded")
        self.assertRejected(self.claims(iat=t - 10, exp=t + 10 * MAX_LIFETIME), "lifetime_exceeded")
        token = self.mint(sub="erin", iss=ISS, aud=AUD, ttl=MAX_LIFETIME + 60)
        self.assertTokenFailure(self.revokd.check(token), "lifetime_exceeded")
        self.assertTokenFailure(self.revokd.revoke(token), "lifetime_exceeded")

    def test_absurd_exp_is_refused(self):
        for exp in (1e300, 2 ** 63, 2 ** 64 + 5, 10 ** 30):
            with self.subTest(exp=exp):
                body = self.assertJsonResponse(self.check_claims(self.claims(exp=exp)), 401)
                self.assertIs(body.get("active"), False, body)
                self.assertIn(body.get("reason"), ("lifetime_exceeded", "invalid_claims"), body)
        self.assertTrue(self.revokd.alive())

    # Types, presence, sizes ------------------------------------------------------------------
    def test_wrong_claim_types(self):
        t = now()
        cases = {
            "exp string": {"exp": str(t + 300)},
            "exp null": {"exp": None},
            "exp bool": {"exp": True},
            "exp object": {"exp": {"t": t + 300}},
            "exp array": {"exp": [t + 300]},
            "iat string": {"iat": str(t)},
            "iat null": {"iat": None},
            "iat bool": {"iat": False},
            "nbf string": {"nbf": str(t)},
            "nbf null": {"nbf": None},
            "sub number": {"sub": 42},
            "sub null": {"sub": None},
            "sub array": {"sub": ["alice"]},
            "jti number": {"jti": 12345},
            "jti object": {"jti": {}},
            "iss number": {"iss": 1},
            "aud number": {"aud": 7},
            "aud array with number": {"aud": [AUD, 7]},
            "aud object": {"aud": {"a": AUD}},
        }
        for name, override in cases.items():
            with self.subTest(case=name):
                claims = self.claims()
                claims.update(override)  # None stays as JSON null here
                self.assertRejected(claims, "invalid_claims")

    def test_missing_exp_or_iat(self):
        self.assertRejected(self.claims(exp=None), "invalid_claims")
        self.assertRejected(self.claims(iat=None), "invalid_claims")
        token = self.mint(sub="frank", iss=ISS, aud=AUD, no_iat=True)
        self.assertTokenFailure(self.revokd.check(token), "invalid_claims")
        self.assertTokenFailure(self.revokd.revoke(token), "invalid_claims")

    def test_string_claim_lengths(self):
        self.assertAccepted(self.claims(jti="j" * 256, sub="s" * 256))
        for name in ("jti", "sub"):
            for value in ("", "x" * 257):
                with self.subTest(claim=name, length=len(value)):
                    self.assertRejected(self.claims(**{name: value}), "invalid_claims")

    def test_duplicate_claims_are_malformed(self):
        t = now()
        payloads = [
            f'{{"iss":"{ISS}","aud":"{AUD}","iat":{t},"exp":{t - 3600},"exp":{t + 300}}}',
            f'{{"iss":"{ISS}","aud":"{AUD}","iat":{t},"exp":{t + 300},"exp":{t + 300}}}',
            f'{{"iss":"https://evil.test","aud":"{AUD}","iss":"{ISS}","iat":{t},"exp":{t + 300}}}',
            f'{{"iss":"{ISS}","aud":"{AUD}","sub":"a","sub":"b","iat":{t},"exp":{t + 300}}}',
            f'{{"iss":"{ISS}","aud":"{AUD}","jti":"a","iat":{t},"exp":{t + 300},"jti":"b"}}',
        ]
        for payload in payloads:
            with self.subTest(payload=payload):
                token = craft({"alg": "RS256", "kid": "rsa-1"}, payload.encode(), self.keys["rsa"])
                self.assertTokenFailure(self.revokd.check(token), "malformed")
                self.assertTokenFailure(self.revokd.revoke(token), "malformed")
        self.assertEqual(self.redis.keys(), [])

    def test_nul_in_claims_is_malformed(self):
        t = now()
        for payload in (f'{{"iss":"{ISS}","aud":"{AUD}","sub":"a\\u0000b","iat":{t},"exp":{t + 300}}}',
                        f'{{"iss":"{ISS}\\u0000","aud":"{AUD}","iat":{t},"exp":{t + 300}}}',
                        f'{{"iss":"{ISS}","aud":"{AUD}","x\\u0000":1,"iat":{t},"exp":{t + 300}}}'):
            with self.subTest(payload=payload):
                token = craft({"alg": "RS256", "kid": "rsa-1"}, payload.encode(), self.keys["rsa"])
                self.assertTokenFailure(self.revokd.check(token), "malformed")

    def test_claims_that_are_not_utf8_text_are_refused(self):
        """Raw bytes that are not UTF-8 (\\xff, the overlong \\xc0\\xaf) were once echoed into the
        reply and the log, which strict JSON parsers then reject; control characters in an id
        could split a header or a log line. Both are invalid_claims, and nothing is stored."""
        t = now()
        raw = {"sub \\xff": b'"sub":"alice\xff"', "sub overlong": b'"sub":"a\xc0\xafb"',
               "jti \\xff": b'"jti":"\xffjti"', "jti surrogate": b'"jti":"\xed\xa0\x80"',
               "other claim": b'"name":"\xe2\x82"',
               "jti CR LF": b'"jti":"a\\r\\nSet-Cookie: x=1"', "sub tab": b'"sub":"a\\tb"'}
        for name, member in raw.items():
            with self.subTest(case=name):
                payload = (f'{{"iss":"{ISS}","aud":"{AUD}","iat":{t},"exp":{t + 300},'.encode()
                           + member + b"}")
                token = craft({"alg": "RS256", "kid": "rsa-1"}, payload, self.keys["rsa"])
                mark = self.revokd.log_mark()
                for resp in (self.revokd.check(token), self.revokd.revoke(token)):
                    failure = self.assertTokenFailure(resp, "invalid_claims")
                    self.assertNotIn(b"\xff", resp.body)
                    self.assertEqual(set(failure), {"active", "reason", "error", "error_description"})
                time.sleep(0.1)
                self.assertNotIn("\ufffd", self.revokd.log_text(mark))
        self.assertEqual(self.redis.keys(), [])
        # Text beyond ASCII is fine, raw or escaped.
        for sub in ("caf\u00e9", "\u30e6\u30fc\u30b6\u30fc", "\U0001f511"):
            with self.subTest(sub=sub):
                body = self.assertAccepted(self.claims(sub=sub))
                self.assertEqual(body["sub"], sub)

    def test_unknown_claims_are_ignored(self):
        self.assertAccepted(self.claims(scope="read write", roles=["a", "b"], nested={"x": [1, 2]}))

    # Revoke applies the same rules except nbf ---------------------------------------------------
    def test_revoke_checks_claims(self):
        t = now()
        cases = {
            "invalid_audience": self.claims(aud="api://other"),
            "invalid_issuer": self.claims(iss="https://evil.test"),
            "invalid_claims": self.claims(exp=str(t + 300)),
        }
        for reason, claims in cases.items():
            with self.subTest(reason=reason):
                self.assertTokenFailure(self.revokd.revoke(self.craft(payload=claims)), reason)
        self.assertEqual(self.redis.keys(), [])
        resp = self.revokd.revoke(self.craft(payload=self.claims(nbf=t + 600, exp=t + 900)))
        self.assertJsonResponse(resp, 200)


if __name__ == "__main__":
    harness.main()
