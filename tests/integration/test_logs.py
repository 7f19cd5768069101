"""The log: one JSON object per line on stderr, a request line per request with the contract's
fields, and never a token, a signature, an admin key or an HMAC secret."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import now, std_claims  # noqa: E402

ISS = "https://issuer.logs.test"
ADMIN_KEY = "SecretAdminKeyNeverLogged0123456789"
WRONG_ADMIN_KEY = "WrongAdminKeyAlsoNeverLogged98765"
REQUEST_FIELDS = ("time", "level", "event", "request_id", "method", "path", "status", "latency_us")


class LogTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_LOG_LEVEL": "debug"}
    admin_keys = (ADMIN_KEY,)

    def assertJsonLines(self, daemon, start=0):
        text = daemon.log_text(start)
        for line in text.splitlines():
            if not line.strip():
                continue
            obj = harness._json_or_none(line)
            self.assertIsInstance(obj, dict, f"log line is not a JSON object: {line!r}")
        return text

    def test_listening_line(self):
        listening = [o for o in self.revokd.json_logs() if isinstance(o, dict) and o.get("event") == "listening"]
        self.assertEqual(len(listening), 1, listening)
        self.assertEqual(listening[0].get("address"), "127.0.0.1")
        self.assertEqual(listening[0].get("port"), self.revokd.port)
        self.assertJsonLines(self.revokd)

    def test_request_lines(self):
        token = self.mint(sub="alice", iss=ISS)
        calls = [
            ("GET", "/v1/check", lambda h: self.revokd.check(token, headers=h)),
            ("POST", "/v1/check", lambda h: self.revokd.request("POST", "/v1/check", {"token": token}, h)),
            ("GET", "/healthz", lambda h: self.revokd.request("GET", "/healthz", headers=h)),
            ("GET", "/nope", lambda h: self.revokd.request("GET", "/nope", headers=h)),
            ("DELETE", "/v1/revoke", lambda h: self.revokd.request("DELETE", "/v1/revoke", headers=h)),
        ]
        for i, (method, path, call) in enumerate(calls):
            rid = f"log-test-{i}"
            with self.subTest(method=method, path=path):
                resp = call({"X-Request-Id": rid})
                self.assertEqual(resp.header("X-Request-Id"), rid)
                line = self.revokd.wait_for_request_log(rid)
                for field in REQUEST_FIELDS:
                    self.assertIn(field, line, line)
                self.assertEqual(line["event"], "request")
                self.assertEqual(line["method"], method, line)
                self.assertEqual(line["path"].split("?")[0], path, line)
                self.assertEqual(line["status"], resp.status, line)
                self.assertIsInstance(line["latency_us"], int, line)
                self.assertGreaterEqual(line["latency_us"], 0, line)
                self.assertIsInstance(line["level"], str, line)
        # A generated request id is logged too.
        resp = self.revokd.healthz()
        self.revokd.wait_for_request_log(resp.header("X-Request-Id"))

    def test_no_secrets_in_log(self):
        d = self.revokd
        t = now()
        good = self.mint(sub="bob", iss=ISS)
        no_jti = self.mint(sub="bob", iss=ISS, no_jti=True)
        bad_sig = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
        expired = self.mint(sub="bob", iss=ISS, iat=t - 900, exp=t - 300)
        wrong_iss = self.mint(sub="bob", iss="https://elsewhere.test")
        hs = self.craft(key=self.keys["hs"], payload=std_claims(iss=ISS))
        revoke_me = self.mint(sub="carol", iss=ISS)
        all_me = self.mint(sub="dave", iss=ISS)
        tokens = [good, no_jti, bad_sig, expired, wrong_iss, hs, revoke_me, all_me]

        rids = []

        def h(extra=None):
            rid = f"secret-test-{len(rids)}"
            rids.append(rid)
            return dict(extra or {}, **{"X-Request-Id": rid})

        for token in tokens:
            d.check(token, headers=h())
            d.request("POST", "/v1/check", {"token": token}, h())
        d.request("POST", "/v1/revoke", {"token": revoke_me}, h())
        d.check(revoke_me, headers=h())
        d.request("POST", "/v1/revoke", {"token": bad_sig}, h())
        d.request("POST", "/v1/revoke-all", None, h({"Authorization": f"Bearer {all_me}"}))
        d.request("POST", "/v1/revoke-all", None, h({"Authorization": f"Bearer {all_me}"}))
        d.request("POST", "/v1/admin/revoke", {"jti": "x", "exp": t + 60},
                  h({"Authorization": f"Bearer {ADMIN_KEY}"}))
        d.request("POST", "/v1/admin/revoke", {"jti": "x", "exp": t + 60},
                  h({"Authorization": f"Bearer {WRONG_ADMIN_KEY}"}))
        d.request("POST", "/v1/admin/subjects/erin/revoke-all", None,
                  h({"Authorization": f"Bearer {ADMIN_KEY}"}))
        d.request("POST", "/v1/admin/subjects/erin/revoke-all", None,
                  h({"Authorization": f"Bearer {WRONG_ADMIN_KEY}"}))
        d.request("POST", "/v1/check", ('{"token":"' + good + '"').encode(),
                  h({"Content-Type": "application/json"}))  # malformed JSON containing a token
        d.request("POST", "/v1/check", {"token": good}, h({"Content-Type": "text/plain"}))
        d.request("GET", "/v1/check", headers=h({"Authorization": f"Basic {good}"}))
        d.request("GET", "/nope", headers=h({"Authorization": f"Bearer {good}"}))
        for rid in rids:
            d.wait_for_request_log(rid)

        text = self.assertJsonLines(d, 0)  # the whole log, start-up included
        prefix_checked = {"admin key": ADMIN_KEY, "wrong admin key": WRONG_ADMIN_KEY,
                          "hmac secret": self.keys["hs"].secret.decode(),
                          "hmac secret as JWK k": harness.b64url(self.keys["hs"].secret)}
        whole_only = {}
        for i, token in enumerate(tokens):
            header, payload, signature = token.split(".")
            whole_only[f"token {i}"] = token
            whole_only[f"signing input {i}"] = f"{header}.{payload}"
            prefix_checked[f"signature {i}"] = signature
        for name, value in list(whole_only.items()) + list(prefix_checked.items()):
            with self.subTest(secret=name):
                self.assertNotIn(value, text)
        for name, value in prefix_checked.items():
            with self.subTest(secret=name, part="first 24 characters"):
                self.assertNotIn(value[:24], text)


if __name__ == "__main__":
    harness.main()
