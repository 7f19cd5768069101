"""Revoke-all (self-service POST /v1/revoke-all and admin POST /v1/admin/subjects/{sub}/revoke-all):
the per-subject cutoff in Redis, which tokens it revokes, and that it never moves back."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import key_name, now, revokd_key_name, std_claims  # noqa: E402

ISS = "https://issuer.revoke-all.test"
ADMIN_KEY = "admin-key-revoke-all-0123456789"
LEEWAY = harness.DEFAULT_LEEWAY
MAX_LIFETIME = 86400


class RevokeAllTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_MAX_TOKEN_LIFETIME": str(MAX_LIFETIME)}
    admin_keys = (ADMIN_KEY,)

    def token(self, sub, iat=None, **kw):
        t = now()
        iat = t - 1 if iat is None else iat
        return self.mint(sub=sub, iss=ISS, iat=iat, exp=iat + 600, **kw)

    def assertRevokeAll(self, resp, sub, t0, t1):
        body = self.assertJsonResponse(resp, 200)
        self.assertEqual(set(body), {"revoked_all", "sub", "cutoff", "expires_at"}, body)
        self.assertIs(body["revoked_all"], True)
        self.assertEqual(body["sub"], sub)
        self.assertGreaterEqual(body["cutoff"], t0, body)
        self.assertLessEqual(body["cutoff"], t1, body)
        self.assertGreaterEqual(body["expires_at"], t0 + MAX_LIFETIME + LEEWAY, body)
        self.assertLessEqual(body["expires_at"], t1 + MAX_LIFETIME + LEEWAY, body)
        return body

    def assertCutoffStored(self, sub, cutoff, iss=ISS):
        key = key_name("sub", iss, sub)
        self.assertEqual(key, revokd_key_name("sub", iss, sub))
        self.assertEqual(self.redis.get(key), str(cutoff))
        ttl = self.redis.ttl(key)
        self.assertGreater(ttl, MAX_LIFETIME + LEEWAY - 10, ttl)
        self.assertLessEqual(ttl, MAX_LIFETIME + LEEWAY, ttl)
        return key

    def test_self_service_revoke_all(self):
        old = self.token("alice", iat=now() - 5)
        used = self.token("alice")
        bystander = self.token("bob")
        self.assertActive(self.revokd.check(old), old)

        t0 = now()
        body = self.assertRevokeAll(self.revokd.revoke_all(used), "alice", t0, now())
        cutoff = body["cutoff"]
        key = self.assertCutoffStored("alice", cutoff)
        self.assertEqual(self.redis.keys(), [key])

        for token in (old, used):
            failure = self.assertTokenFailure(self.revokd.check(token), "revoked")
            self.assertEqual(failure.get("sub"), "alice", failure)
        self.assertActive(self.revokd.check(bystander), bystander)

        at_cutoff = self.token("alice", iat=cutoff)
        self.assertTokenFailure(self.revokd.check(at_cutoff), "revoked")
        fresh = self.token("alice", iat=cutoff + 1)
        self.assertActive(self.revokd.check(fresh), fresh)

        # The token used is revoked too, so it cannot do it again.
        self.assertTokenFailure(self.revokd.revoke_all(used), "revoked")

    def test_admin_revoke_all(self):
        old = self.token("carol", iat=now() - 5)
        t0 = now()
        body = self.assertRevokeAll(self.revokd.admin_revoke_all(ADMIN_KEY, "carol"), "carol", t0, now())
        self.assertCutoffStored("carol", body["cutoff"])
        self.assertTokenFailure(self.revokd.check(old), "revoked")
        fresh = self.token("carol", iat=body["cutoff"] + 1)
        self.assertActive(self.revokd.check(fresh), fresh)

    def test_admin_revoke_all_with_body(self):
        t0 = now()
        resp = self.revokd.admin_revoke_all(ADMIN_KEY, "dave", {"reason": "account closed"})
        body = self.assertRevokeAll(resp, "dave", t0, now())
        self.assertCutoffStored("dave", body["cutoff"])

    def test_later_revoke_all_never_moves_cutoff_back(self):
        t0 = now()
        first = self.assertRevokeAll(self.revokd.admin_revoke_all(ADMIN_KEY, "erin"), "erin", t0, now())
        t0 = now()
        second = self.assertRevokeAll(self.revokd.admin_revoke_all(ADMIN_KEY, "erin"), "erin", t0, now())
        self.assertGreaterEqual(second["cutoff"], first["cutoff"])
        self.assertCutoffStored("erin", second["cutoff"])

        # Another instance with a clock ahead already set a later cutoff: a revoke-all whose own
        # "now" is earlier must keep it, and report it as the effective cutoff.
        ahead = now() + 20
        key = key_name("sub", ISS, "erin")
        self.redis.command("SET", key, str(ahead), "EX", str(MAX_LIFETIME + LEEWAY))
        resp = self.revokd.admin_revoke_all(ADMIN_KEY, "erin")
        body = self.assertJsonResponse(resp, 200)
        self.assertEqual(body["cutoff"], ahead, body)
        self.assertEqual(self.redis.get(key), str(ahead))

        used = self.token("erin", iat=now())
        # The self-service token was issued before `ahead`: it is already revoked by that cutoff.
        self.assertTokenFailure(self.revokd.revoke_all(used), "revoked")
        within = self.token("erin", iat=ahead - 5)
        self.assertTokenFailure(self.revokd.check(within), "revoked")
        self.assertEqual(self.redis.get(key), str(ahead))

    def test_self_service_keeps_later_cutoff(self):
        used = self.token("frank", iat=now() - 2)
        key = key_name("sub", ISS, "frank")
        earlier = now() - 10
        self.redis.command("SET", key, str(earlier), "EX", str(MAX_LIFETIME + LEEWAY))
        self.assertActive(self.revokd.check(used), used)
        t0 = now()
        body = self.assertRevokeAll(self.revokd.revoke_all(used), "frank", t0, now())
        self.assertGreater(body["cutoff"], earlier)
        self.assertEqual(self.redis.get(key), str(body["cutoff"]))

    def test_revoke_all_needs_sub(self):
        token = self.craft(payload=std_claims(sub=None, iss=ISS))
        self.assertActive(self.revokd.check(token), token)
        self.assertTokenFailure(self.revokd.revoke_all(token), "invalid_claims")
        self.assertEqual(self.redis.keys(), [])

    def test_revoke_all_needs_fully_valid_token(self):
        t = now()
        good = self.token("grace")
        h, p, s = good.split(".")
        cases = {
            "missing_token": None,
            "invalid_signature": h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:],
            "expired": self.mint(sub="grace", iss=ISS, iat=t - 900, exp=t - 300),
            "not_yet_valid": self.mint(sub="grace", iss=ISS, iat=t, nbf=t + 600, exp=t + 900),
            "invalid_issuer": self.mint(sub="grace", iss="https://elsewhere.test"),
        }
        for reason, token in cases.items():
            with self.subTest(reason=reason):
                if token is None:
                    resp = self.revokd.request("POST", "/v1/revoke-all")
                else:
                    resp = self.revokd.revoke_all(token)
                self.assertTokenFailure(resp, reason)
        self.assertEqual(self.redis.keys(), [])
        self.assertActive(self.revokd.check(good), good)

    def test_revoke_all_is_per_issuer_namespace(self):
        t0 = now()
        resp = self.revokd.admin_revoke_all(ADMIN_KEY, "heidi", {"iss": "https://other.test"})
        body = self.assertRevokeAll(resp, "heidi", t0, now())
        self.assertCutoffStored("heidi", body["cutoff"], iss="https://other.test")
        self.assertFalse(self.redis.exists(key_name("sub", ISS, "heidi")))
        token = self.token("heidi", iat=now() - 5)
        self.assertActive(self.revokd.check(token), token)

    def test_lookup_by_subject_after_revoke_all(self):
        t0 = now()
        body = self.assertRevokeAll(self.revokd.admin_revoke_all(ADMIN_KEY, "ivan"), "ivan", t0, now())
        cutoff = body["cutoff"]
        for iat in (cutoff, cutoff - 100, 0):
            with self.subTest(iat=iat):
                failure = self.assertJsonResponse(self.revokd.lookup(sub="ivan", iat=iat), 401)
                self.assertEqual(failure.get("reason"), "revoked", failure)
                self.assertIs(failure.get("active"), False, failure)
        ok = self.assertJsonResponse(self.revokd.lookup(sub="ivan", iat=cutoff + 1), 200)
        self.assertIs(ok.get("active"), True, ok)
        self.assertEqual(ok.get("sub"), "ivan", ok)


if __name__ == "__main__":
    harness.main()
