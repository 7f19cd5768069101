"""Admin endpoints: key authentication (401 / 403 admin_disabled), POST /v1/admin/revoke and
POST /v1/admin/subjects/{sub}/revoke-all with what they leave in Redis."""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import key_name, now, revokd_key_name  # noqa: E402

ISS = "https://issuer.admin.test"
KEY1 = "admin-key-one-0123456789abcdef"
KEY2 = "second-admin-key-ABCDEFGHIJKL"
LEEWAY = harness.DEFAULT_LEEWAY
MAX_LIFETIME = harness.DEFAULT_MAX_LIFETIME


class AdminAuthTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS}
    admin_keys = (KEY1, KEY2)

    def assertUnauthorized(self, resp):
        self.assertError(resp, 401, "unauthorized")
        self.assertEqual(resp.header("WWW-Authenticate"), 'Bearer realm="revokd-admin"')

    def calls(self, headers):
        body = {"jti": "auth-jti", "exp": now() + 600}
        return {
            "revoke": lambda: self.revokd.request("POST", "/v1/admin/revoke", body, headers),
            "revoke-all": lambda: self.revokd.request("POST", "/v1/admin/subjects/alice/revoke-all",
                                                      None, headers),
        }

    def test_no_key(self):
        for name, call in self.calls({}).items():
            with self.subTest(endpoint=name):
                self.assertUnauthorized(call())
        self.assertEqual(self.redis.keys(), [])

    def test_wrong_keys(self):
        token = self.mint(sub="alice", iss=ISS)
        wrong = [f"Bearer {KEY1[:-1]}", f"Bearer {KEY1}x", f"Bearer x{KEY1}", f"Bearer {KEY1.upper()}",
                 f"Basic {KEY1}", KEY1, f"Bearer {token}", "Bearer", "Bearer ",
                 "Bearer # admin keys for the integration tests", f"Bearer {KEY1} {KEY2}"]
        for value in wrong:
            for name, call in self.calls({"Authorization": value}).items():
                with self.subTest(endpoint=name, authorization=value[:30]):
                    self.assertUnauthorized(call())
        self.assertEqual(self.redis.keys(), [])

    def test_each_configured_key_works(self):
        for key in (KEY1, KEY2):
            with self.subTest(key=key[:6]):
                resp = self.revokd.admin_revoke(key, {"jti": f"by-{key[:6]}", "exp": now() + 600})
                self.assertJsonResponse(resp, 200)
                self.assertTrue(self.redis.exists(key_name("jti", ISS, f"by-{key[:6]}")))

    def test_key_lines_are_trimmed(self):
        """Whitespace around a key line is the file's, not the key's: a key indented by an editor
        once loaded without error and never matched."""
        path = os.path.join(self.tmp, "indented-keys")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"  {KEY1}\n\t{KEY2} \n")
        daemon = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_ADMIN_KEYS_FILE": path})
        for key in (KEY1, KEY2):
            for authorization in (f"Bearer {key}", f"Bearer  {key}", f"Bearer \t{key}\t"):
                with self.subTest(key=key[:6], authorization=repr(authorization[:9])):
                    resp = daemon.admin_revoke(None, {"jti": f"trim-{key[:6]}", "exp": now() + 600})
                    self.assertUnauthorized(resp)
                    resp = daemon.request("POST", "/v1/admin/revoke", {"jti": f"trim-{key[:6]}", "exp": now() + 600},
                                          {"Authorization": authorization})
                    self.assertJsonResponse(resp, 200)

    def test_keys_are_named_in_the_log_never_shown(self):
        """A `name:key` line is logged by its name, a bare key by a prefix of its hash; the key
        itself never appears."""
        path = os.path.join(self.tmp, "named-keys")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"ops-alice:{KEY1}\n{KEY2}\n")
        daemon = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_ADMIN_KEYS_FILE": path})
        mark = daemon.log_mark()
        for key, rid in ((KEY1, "named-1"), (KEY2, "named-2")):
            resp = daemon.request("POST", "/v1/admin/subjects/nina/revoke-all", None,
                                  {"Authorization": f"Bearer {key}", "X-Request-Id": rid})
            self.assertJsonResponse(resp, 200)
        for rid in ("named-1", "named-2"):  # request lines are written after the reply
            daemon.wait_for_request_log(rid)
        logs = {o.get("request_id"): o for o in daemon.request_logs(mark)}
        digest = hashlib.sha256(KEY2.encode()).hexdigest()[:8]
        self.assertEqual((logs["named-1"]["admin_key"], logs["named-1"]["sub"], logs["named-1"]["path"]),
                         ("ops-alice", "nina", "/v1/admin/subjects/nina/revoke-all"))
        self.assertEqual(logs["named-2"]["admin_key"], f"key-{digest}")
        text = daemon.log_text(mark)
        self.assertNotIn(KEY1, text)
        self.assertNotIn(KEY2, text)
        # The name is not part of the key: the name alone, or name:key, is refused.
        for wrong in ("ops-alice", f"ops-alice:{KEY1}"):
            self.assertUnauthorized(daemon.request("POST", "/v1/admin/revoke", {"jti": "n", "exp": now() + 60},
                                                   {"Authorization": f"Bearer {wrong}"}))

    def test_failed_authentication_is_limited_per_address(self):
        """After REVOKD_AUTH_FAILURES_BURST wrong keys an address gets 429 with Retry-After, the
        right key too; another address is served; the limit counts in the metrics."""
        daemon = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_AUTH_FAILURES_BURST": "3",
                                    "REVOKD_AUTH_FAILURES_PER_MINUTE": "2"})
        body = {"jti": "limited", "exp": now() + 600}
        for _ in range(3):
            self.assertUnauthorized(daemon.request("POST", "/v1/admin/revoke", body,
                                                   {"Authorization": "Bearer " + "w" * 32}))
        for key in ("w" * 32, KEY1):
            resp = daemon.request("POST", "/v1/admin/revoke", body, {"Authorization": f"Bearer {key}"})
            self.assertError(resp, 429, "too_many_requests")
            self.assertTrue(1 <= int(resp.header("Retry-After")) <= 30, resp.header("Retry-After"))
        self.assertFalse(self.redis.exists(key_name("jti", ISS, "limited")))
        # From 127.0.0.2 the right key works at once.
        other = harness.http_request(daemon.port, "POST", "/v1/admin/revoke", body,
                                     {"Authorization": f"Bearer {KEY1}"}, source="127.0.0.2")
        self.assertJsonResponse(other, 200)
        self.assertTrue(self.redis.exists(key_name("jti", ISS, "limited")))
        metrics = daemon.request("GET", "/metrics").body.decode()
        self.assertIn('revokd_http_limit_hits_total{limit="auth_failures"} 2\n', metrics)

    def test_admin_disabled_without_keys(self):
        daemon = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_ADMIN_KEYS_FILE": None})
        for headers in ({}, {"Authorization": f"Bearer {KEY1}"}, {"Authorization": "Bearer whatever"}):
            with self.subTest(headers=headers):
                resp = daemon.request("POST", "/v1/admin/revoke", {"jti": "x", "exp": now() + 60}, headers)
                self.assertError(resp, 403, "admin_disabled")
                resp = daemon.request("POST", "/v1/admin/subjects/alice/revoke-all", None, headers)
                self.assertError(resp, 403, "admin_disabled")
        self.assertEqual(self.redis.keys(), [])


class AdminRevokeTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS}
    admin_keys = (KEY1,)

    def revoke(self, body):
        return self.revokd.request("POST", "/v1/admin/revoke", harness.compact_json(body),
                                   {"Content-Type": "application/json", "Authorization": f"Bearer {KEY1}"})

    def test_revoke_jti(self):
        exp = now() + 900
        body = self.assertJsonResponse(self.revoke({"jti": "admin-jti-1", "exp": exp}), 200)
        self.assertEqual(body, {"revoked": True, "jti": "admin-jti-1", "iss": ISS, "expires_at": exp + LEEWAY,
                                "expired": False})
        key = key_name("jti", ISS, "admin-jti-1")
        self.assertEqual(key, revokd_key_name("jti", ISS, "admin-jti-1"))
        self.assertEqual(self.redis.keys(), [key])
        self.assertEqual(self.redis.get(key), "1")
        self.assertEqual(self.redis.expiretime(key), exp + LEEWAY)

        token = self.mint(sub="alice", iss=ISS, jti="admin-jti-1")
        failure = self.assertTokenFailure(self.revokd.check(token), "revoked")
        self.assertEqual(failure.get("jti"), "admin-jti-1")
        self.assertEqual(failure.get("sub"), "alice")
        other = self.mint(sub="alice", iss=ISS, jti="admin-jti-2")
        self.assertActive(self.revokd.check(other), other)

    def test_revoke_with_reason_stores_reason(self):
        exp = now() + 600
        resp = self.revoke({"jti": "admin-jti-reason", "exp": exp, "reason": "key compromised"})
        self.assertJsonResponse(resp, 200)
        key = key_name("jti", ISS, "admin-jti-reason")
        self.assertEqual(self.redis.get(key), "key compromised")
        self.assertEqual(self.redis.expiretime(key), exp + LEEWAY)

    def test_revoke_in_other_issuer_namespace(self):
        exp = now() + 600
        body = self.assertJsonResponse(self.revoke({"jti": "ns-jti", "exp": exp, "iss": "https://other.test"}), 200)
        self.assertEqual(body["iss"], "https://other.test")
        key = key_name("jti", "https://other.test", "ns-jti")
        self.assertEqual(self.redis.keys(), [key])
        token = self.mint(sub="bob", iss=ISS, jti="ns-jti")
        self.assertActive(self.revokd.check(token), token)

    def test_revoke_is_idempotent(self):
        exp = now() + 600
        first = self.assertJsonResponse(self.revoke({"jti": "twice", "exp": exp}), 200)
        second = self.assertJsonResponse(self.revoke({"jti": "twice", "exp": exp}), 200)
        self.assertEqual(first, second)
        self.assertEqual(self.redis.expiretime(key_name("jti", ISS, "twice")), exp + LEEWAY)

    def test_revoke_past_exp_stores_nothing(self):
        exp = now() - 100
        body = self.assertJsonResponse(self.revoke({"jti": "old-jti", "exp": exp}), 200)
        self.assertEqual(body, {"revoked": True, "jti": "old-jti", "iss": ISS, "expires_at": exp + LEEWAY,
                                "expired": True})
        self.assertEqual(self.redis.keys(), [])

    def test_exp_bound(self):
        t = now()
        ok = self.assertJsonResponse(self.revoke({"jti": "far", "exp": t + MAX_LIFETIME + LEEWAY}), 200)
        self.assertIs(ok["expired"], False)
        resp = self.revoke({"jti": "too-far", "exp": now() + MAX_LIFETIME + LEEWAY + 120})
        self.assertError(resp, 400, "invalid_request")
        self.assertFalse(self.redis.exists(key_name("jti", ISS, "too-far")))

    def test_bad_bodies(self):
        t = now()
        bodies = [
            {}, {"exp": t + 60}, {"jti": "a"}, {"jti": 5, "exp": t + 60}, {"jti": None, "exp": t + 60},
            {"jti": "a", "exp": str(t + 60)}, {"jti": "a", "exp": None}, {"jti": "a", "exp": True},
            {"jti": "a", "exp": t + 60.5}, {"jti": "a", "exp": t + 60, "reason": "r" * 257},
            {"jti": "a", "exp": t + 60, "reason": 5}, {"jti": "a", "exp": t + 60, "iss": 5},
            [], "jti", 5,
        ]
        for body in bodies:
            with self.subTest(body=str(body)[:60]):
                self.assertError(self.revoke(body), 400, "invalid_request")
        self.assertError(self.revokd.request("POST", "/v1/admin/revoke", b"{",
                                             {"Content-Type": "application/json",
                                              "Authorization": f"Bearer {KEY1}"}), 400, "invalid_request")
        self.assertError(self.revokd.request("POST", "/v1/admin/revoke", b'{"jti":"a","exp":1}',
                                             {"Content-Type": "text/plain",
                                              "Authorization": f"Bearer {KEY1}"}), 415, "unsupported_media_type")
        self.assertEqual(self.redis.keys(), [])

    def test_ids_that_are_not_utf8_text_are_refused(self):
        """A jti or iss that is not UTF-8 text would be echoed into the reply and the log."""
        t = now()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY1}"}
        for raw in (b'{"jti":"a\xff","exp":%d}', b'{"jti":"a\xc0\xafb","exp":%d}',
                    b'{"jti":"a","exp":%d,"reason":"\xed\xa0\x80"}', b'{"jti":"a","exp":%d,"iss":"\xff"}'):
            with self.subTest(body=raw):
                resp = self.revokd.request("POST", "/v1/admin/revoke", raw % (t + 60), headers)
                self.assertError(resp, 400, "invalid_request")
                self.assertNotIn(b"\xff", resp.body)
        for body in ({"jti": "a\r\nb", "exp": t + 60}, {"jti": "a\tb", "exp": t + 60},
                     {"jti": "a", "exp": t + 60, "iss": "x\ny"}):
            with self.subTest(body=body):
                self.assertError(self.revoke(body), 400, "invalid_request")
        self.assertEqual(self.redis.keys(), [])

    def test_reason_at_limit(self):
        exp = now() + 600
        self.assertJsonResponse(self.revoke({"jti": "long-reason", "exp": exp, "reason": "r" * 256}), 200)
        self.assertEqual(self.redis.get(key_name("jti", ISS, "long-reason")), "r" * 256)


class AdminWithoutIssuerTest(harness.RevokdTestCase):
    """With no REVOKD_ISSUER, an admin revocation that names no issuer would reach only the
    tokens without iss, which most providers never issue, and still answer revoked: it is
    refused. "iss": null names the tokens without iss; every answer says which it reached."""
    admin_keys = (KEY1,)

    def test_issuer_required(self):
        headers = {"Authorization": f"Bearer {KEY1}"}
        exp = now() + 600
        calls = (("POST", "/v1/admin/revoke", {"jti": "no-iss", "exp": exp}),
                 ("POST", "/v1/admin/subjects/alice/revoke-all", None),
                 ("POST", "/v1/admin/subjects/alice/revoke-all", {"reason": "left"}))
        for method, path, body in calls:
            with self.subTest(path=path, body=body):
                resp = self.revokd.request(method, path, body, headers)
                err = self.assertError(resp, 400, "invalid_request")
                self.assertIn("REVOKD_ISSUER", err["error_description"])
        self.assertEqual(self.redis.keys(), [])

    def test_named_issuer_and_null(self):
        exp = now() + 600
        body = self.assertJsonResponse(self.revokd.admin_revoke(KEY1, {"jti": "j1", "exp": exp, "iss": ISS}), 200)
        self.assertEqual(body["iss"], ISS)
        body = self.assertJsonResponse(self.revokd.admin_revoke(KEY1, {"jti": "j2", "exp": exp, "iss": None}), 200)
        self.assertIsNone(body["iss"])
        body = self.assertJsonResponse(self.revokd.admin_revoke_all(KEY1, "bob", {"iss": None}), 200)
        self.assertIsNone(body["iss"])
        self.assertEqual(self.redis.keys(), sorted([key_name("jti", ISS, "j1"), key_name("jti", "", "j2"),
                                                    key_name("sub", "", "bob")]))
        # What each reached: a token with iss ISS and j1, a token without iss and j2.
        with_iss = self.craft(payload=harness.std_claims(jti="j1", iss=ISS))
        without = self.craft(payload=harness.std_claims(jti="j2"))
        other = self.craft(payload=harness.std_claims(jti="j2", iss=ISS))
        self.assertTokenFailure(self.revokd.check(with_iss), "revoked")
        self.assertTokenFailure(self.revokd.check(without), "revoked")
        self.assertActive(self.revokd.check(other), other)


class AdminRevokeAllTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS}
    admin_keys = (KEY1,)

    def revoke_all(self, segment, body=None):
        return self.revokd.admin_revoke_all(KEY1, segment, body, quoted=True)

    def test_percent_decoded_subject(self):
        for segment, sub in (("user%2F1", "user/1"), ("%C3%A9t%C3%A9", "\u00e9t\u00e9"),
                             ("a%20b", "a b"), ("plain", "plain"), ("a%25b", "a%b")):
            with self.subTest(segment=segment):
                t0 = now()
                body = self.assertJsonResponse(self.revoke_all(segment), 200)
                self.assertEqual(body["sub"], sub)
                self.assertGreaterEqual(body["cutoff"], t0)
                key = key_name("sub", ISS, sub)
                self.assertEqual(key, revokd_key_name("sub", ISS, sub))
                self.assertEqual(self.redis.get(key), str(body["cutoff"]))
                self.assertEqual(body["expires_at"] - body["cutoff"], MAX_LIFETIME + LEEWAY)
                self.assertEqual(body["iss"], ISS)
                ttl = self.redis.ttl(key)
                self.assertTrue(MAX_LIFETIME + 2 * LEEWAY - 10 < ttl <= MAX_LIFETIME + 2 * LEEWAY, ttl)

        token = self.mint(sub="user/1", iss=ISS, iat=now() - 5)
        self.assertTokenFailure(self.revokd.check(token), "revoked")

    def test_body_with_iss_and_reason(self):
        body = self.assertJsonResponse(self.revoke_all("alice", {"iss": "https://other.test",
                                                                 "reason": "left company"}), 200)
        key = key_name("sub", "https://other.test", "alice")
        self.assertEqual(self.redis.keys(), [key])
        self.assertEqual(self.redis.get(key), str(body["cutoff"]))

    def test_bad_bodies(self):
        for body in ({"iss": 5}, {"reason": "r" * 257}, {"reason": 5}, [], b"{"):
            with self.subTest(body=str(body)[:40]):
                if isinstance(body, bytes):
                    resp = self.revokd.request("POST", "/v1/admin/subjects/alice/revoke-all", body,
                                               {"Content-Type": "application/json",
                                                "Authorization": f"Bearer {KEY1}"})
                else:
                    resp = self.revoke_all("alice", body)
                self.assertError(resp, 400, "invalid_request")
        self.assertEqual(self.redis.keys(), [])

    def test_subject_that_is_not_utf8_text_is_refused(self):
        for segment in ("%FF", "a%C0%AFb", "%ED%A0%80", "a%0D%0Ab", "a%09b", "%7F"):
            with self.subTest(segment=segment):
                resp = self.revoke_all(segment)
                self.assertError(resp, 400, "invalid_request")
                self.assertNotIn(b"\xff", resp.body)
        self.assertEqual(self.redis.keys(), [])

    def test_long_subject(self):
        body = self.assertJsonResponse(self.revoke_all("s" * 256), 200)
        self.assertEqual(self.redis.get(key_name("sub", ISS, "s" * 256)), str(body["cutoff"]))

if __name__ == "__main__":
    harness.main()
