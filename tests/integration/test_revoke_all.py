"""Revoke-all (self-service POST /v1/revoke-all and admin POST /v1/admin/subjects/{sub}/revoke-all):
the per-subject cutoff in Redis, which tokens it revokes, and that it never moves back.

The cutoff is now + REVOKD_LEEWAY: a token an issuer with a fast clock stamped a little ahead,
within the leeway, is accepted now and must be caught too; tokens issued in the next leeway
seconds are refused as well. The class runs with a short leeway so that tokens issued after the
cutoff can be shown active without a long wait."""

import time

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import key_name, now, revokd_key_name, std_claims  # noqa: E402

ISS = "https://issuer.revoke-all.test"
ADMIN_KEY = "admin-key-revoke-all-0123456789"
LEEWAY = 3
MAX_LIFETIME = 86400
# The record outlives a token issued at the cutoff: cutoff - now + max lifetime + leeway.
RECORD_TTL = MAX_LIFETIME + 2 * LEEWAY


class RevokeAllTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_MAX_TOKEN_LIFETIME": str(MAX_LIFETIME),
                  "REVOKD_LEEWAY": str(LEEWAY)}
    admin_keys = (ADMIN_KEY,)

    def token(self, sub, iat=None, **kw):
        t = now()
        iat = t - 1 if iat is None else iat
        return self.mint(sub=sub, iss=ISS, iat=iat, exp=iat + 600, **kw)

    def assertRevokeAll(self, resp, sub, t0, t1, iss=ISS):
        body = self.assertJsonResponse(resp, 200)
        self.assertEqual(set(body), {"revoked_all", "sub", "iss", "cutoff", "expires_at"}, body)
        self.assertIs(body["revoked_all"], True)
        self.assertEqual(body["sub"], sub)
        self.assertEqual(body["iss"], iss)
        self.assertGreaterEqual(body["cutoff"], t0 + LEEWAY, body)
        self.assertLessEqual(body["cutoff"], t1 + LEEWAY, body)
        self.assertGreaterEqual(body["expires_at"], t0 + RECORD_TTL, body)
        self.assertLessEqual(body["expires_at"], t1 + RECORD_TTL, body)
        return body

    def assertCutoffStored(self, sub, cutoff, iss=ISS):
        key = key_name("sub", iss, sub)
        self.assertEqual(key, revokd_key_name("sub", iss, sub))
        self.assertEqual(self.redis.get(key), str(cutoff))
        ttl = self.redis.ttl(key)
        self.assertGreater(ttl, RECORD_TTL - 10, ttl)
        self.assertLessEqual(ttl, RECORD_TTL, ttl)
        return key

    def wait_past(self, cutoff):
        """Until a token issued just after cutoff is acceptable (its iat within the leeway)."""
        while now() + LEEWAY < cutoff + 1:
            time.sleep(0.2)

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
        self.wait_past(cutoff)
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
        self.wait_past(body["cutoff"])
        fresh = self.token("carol", iat=body["cutoff"] + 1)
        self.assertActive(self.revokd.check(fresh), fresh)

    def test_token_stamped_ahead_by_a_fast_issuer_clock_is_revoked(self):
        """A token whose iat is ahead of revokd's clock, within the leeway, is accepted now; a
        revoke-all made now must catch it, or a lock-out would leave it active."""
        ahead = self.token("zoe", iat=now() + LEEWAY - 1)
        self.assertActive(self.revokd.check(ahead), ahead)
        t0 = now()
        self.assertRevokeAll(self.revokd.admin_revoke_all(ADMIN_KEY, "zoe"), "zoe", t0, now())
        self.assertTokenFailure(self.revokd.check(ahead), "revoked")
        # So is a token issued right after the revoke-all by an accurate clock: the price of the
        # rule, which the answer's cutoff tells the client.
        self.assertTokenFailure(self.revokd.check(self.token("zoe", iat=now())), "revoked")

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
        # cutoff is earlier must keep it, and report it as the effective cutoff.
        ahead = now() + LEEWAY + 20
        key = key_name("sub", ISS, "erin")
        self.redis.command("SET", key, str(ahead), "EX", str(RECORD_TTL))
        resp = self.revokd.admin_revoke_all(ADMIN_KEY, "erin")
        body = self.assertJsonResponse(resp, 200)
        self.assertEqual(body["cutoff"], ahead, body)
        self.assertEqual(self.redis.get(key), str(ahead))

        used = self.token("erin", iat=now())
        # The self-service token was issued before `ahead`: it is already revoked by that cutoff.
        self.assertTokenFailure(self.revokd.revoke_all(used), "revoked")
        within = self.token("erin", iat=now() + LEEWAY)  # as late as a token is accepted
        self.assertTokenFailure(self.revokd.check(within), "revoked")
        self.assertEqual(self.redis.get(key), str(ahead))

    def test_self_service_keeps_later_cutoff(self):
        used = self.token("frank", iat=now() - 2)
        key = key_name("sub", ISS, "frank")
        earlier = now() - 10
        self.redis.command("SET", key, str(earlier), "EX", str(RECORD_TTL))
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
        body = self.assertRevokeAll(resp, "heidi", t0, now(), iss="https://other.test")
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
