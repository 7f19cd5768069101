"""revokectl against a running revokd: what mint puts in a token, and each command's output and
exit status (0 for 2xx, 1 for 4xx, 3 for 503 or a transport error)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import jwt_parts, key_name, now, run_revokectl, token_id  # noqa: E402

ISS = "https://issuer.revokectl.test"
ADMIN_KEY = "admin-key-revokectl-0123456789"


class MintTest(harness.RevokdTestCase):
    class_daemon = False

    def test_defaults(self):
        before = now()
        token = self.mint(sub="alice")
        header, claims, sig = jwt_parts(token)
        self.assertEqual(header.get("alg"), "RS256")
        self.assertEqual(header.get("kid"), "rsa-1")
        self.assertEqual(claims.get("sub"), "alice")
        self.assertIsInstance(claims.get("jti"), str)
        self.assertTrue(before <= claims["iat"] <= now(), claims)
        self.assertEqual(claims["exp"] - claims["iat"], 300)
        self.assertEqual(len(sig), 256)
        self.assertNotEqual(jwt_parts(self.mint(sub="alice"))[1]["jti"], claims["jti"])

    def test_options(self):
        token = self.mint(alg="RS384", kid="k", sub="s", iss="i", aud="a", jti="j", iat=1000, nbf=1100,
                          exp=2000, claims={"scope": "x", "sub": "override"})
        header, claims, _ = jwt_parts(token)
        self.assertEqual((header["alg"], header["kid"]), ("RS384", "k"))
        self.assertEqual(claims, {"sub": "override", "iss": "i", "aud": "a", "jti": "j", "iat": 1000,
                                  "nbf": 1100, "exp": 2000, "scope": "x"})
        _, claims, _ = jwt_parts(self.mint(no_jti=True, no_iat=True, ttl=60))
        self.assertNotIn("jti", claims)
        self.assertNotIn("iat", claims)
        self.assertIn("exp", claims)

    def test_algorithms(self):
        for name in ("ec256", "ec384", "hs"):
            with self.subTest(key=name):
                header, _, sig = jwt_parts(self.mint(key=self.keys[name]))
                self.assertEqual(header["alg"], self.keys[name].alg)
                self.assertEqual(len(sig), {"ec256": 64, "ec384": 96, "hs": 32}[name])


class CommandsTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS}
    admin_keys = (ADMIN_KEY,)

    def ctl(self, *args, env=None, url=True):
        argv = (["--url", f"http://127.0.0.1:{self.revokd.port}"] if url else []) + list(args)
        return run_revokectl(argv, env)

    def assertExit(self, out, code):
        self.assertEqual(out.returncode, code, f"stdout={out.stdout!r} stderr={out.stderr!r}")

    def test_check_and_revoke(self):
        token = self.mint(sub="alice", iss=ISS)
        out = self.ctl("check", token)
        self.assertExit(out, 0)
        self.assertIs(json.loads(out.stdout)["active"], True)
        out = self.ctl("revoke", token)
        self.assertExit(out, 0)
        self.assertEqual(json.loads(out.stdout)["jti"], token_id(token))
        self.assertTrue(self.redis.exists(key_name("jti", ISS, token_id(token))))
        out = self.ctl("check", token)
        self.assertExit(out, 1)
        self.assertEqual(json.loads(out.stdout)["reason"], "revoked")

    def test_mint_count(self):
        """`mint --count N` (the load tests' minter): N tokens that revokd accepts, each with its
        own numbered jti and sub, in every algorithm family."""
        for name in ("rsa", "ec256", "ec384", "hs"):
            key = self.keys[name]
            with self.subTest(key=name):
                argv = ["mint", "--key", key.mint_path, "--alg", key.alg, "--kid", key.kid,
                        "--sub", "user", "--iss", ISS, "--aud", "api", "--iat", str(now()),
                        "--ttl", "600", "--count", "3", "--claims", '{"scope":"x"}']
                out = run_revokectl(argv)
                self.assertExit(out, 0)
                tokens = out.stdout.split()
                self.assertEqual(len(tokens), 3, out.stdout)
                claims = [jwt_parts(t)[1] for t in tokens]
                prefix = claims[0]["jti"].rsplit("-", 1)[0]
                for i, (token, c) in enumerate(zip(tokens, claims)):
                    self.assertEqual(jwt_parts(token)[0], {"alg": key.alg, "typ": "JWT", "kid": key.kid})
                    self.assertEqual(c["jti"], f"{prefix}-{i}")
                    self.assertEqual((c["sub"], c["iss"], c["aud"], c["scope"]), (f"user-{i}", ISS, "api", "x"))
                    self.assertEqual(c["exp"] - c["iat"], 600)
                    self.assertExit(self.ctl("check", token), 0)
                again = run_revokectl(argv)
                self.assertNotEqual(jwt_parts(again.stdout.split()[0])[1]["jti"], claims[0]["jti"])
        out = run_revokectl(["mint", "--key", self.keys["ec256"].mint_path, "--alg", "RS256", "--count", "2"])
        self.assertExit(out, 2)
        self.assertEqual(out.stdout, "")
        self.assertExit(run_revokectl(["mint", "--key", self.keys["hs"].mint_path, "--alg", "HS256",
                                       "--count", "0"]), 2)

    def test_url_from_environment(self):
        out = self.ctl("health", url=False, env={"REVOKD_URL": f"http://127.0.0.1:{self.revokd.port}"})
        self.assertExit(out, 0)
        self.assertIn(json.loads(out.stdout).get("status"), ("ok", "ready"))

    def test_admin_commands(self):
        key_file = os.path.join(self.tmp, "ctl-admin-key")
        with open(key_file, "w") as f:
            f.write(ADMIN_KEY + "\n")
        exp = now() + 600
        out = self.ctl("--admin-key-file", key_file, "revoke-jti", "ctl-jti", "--exp", str(exp))
        self.assertExit(out, 0)
        self.assertEqual(self.redis.expiretime(key_name("jti", ISS, "ctl-jti")), exp + harness.DEFAULT_LEEWAY)
        out = self.ctl("revoke-jti", "ctl-jti-2", "--exp", str(exp), "--reason", "lost laptop",
                       env={"REVOKD_ADMIN_KEY": ADMIN_KEY})
        self.assertExit(out, 0)
        self.assertEqual(self.redis.get(key_name("jti", ISS, "ctl-jti-2")), "lost laptop")
        out = self.ctl("revoke-all", "bob", env={"REVOKD_ADMIN_KEY": ADMIN_KEY})
        self.assertExit(out, 0)
        cutoff = json.loads(out.stdout)["cutoff"]
        self.assertEqual(self.redis.get(key_name("sub", ISS, "bob")), str(cutoff))
        # --iss names another issuer's tokens, --iss '' the tokens without iss.
        out = self.ctl("revoke-all", "carol", "--iss", "https://other.test", env={"REVOKD_ADMIN_KEY": ADMIN_KEY})
        self.assertExit(out, 0)
        self.assertEqual(json.loads(out.stdout)["iss"], "https://other.test")
        self.assertTrue(self.redis.exists(key_name("sub", "https://other.test", "carol")))
        out = self.ctl("revoke-jti", "ctl-jti-4", "--exp", str(exp), "--iss", "", env={"REVOKD_ADMIN_KEY": ADMIN_KEY})
        self.assertExit(out, 0)
        self.assertIsNone(json.loads(out.stdout)["iss"])
        self.assertTrue(self.redis.exists(key_name("jti", "", "ctl-jti-4")))
        out = self.ctl("revoke-jti", "ctl-jti-3", "--exp", str(exp), env={"REVOKD_ADMIN_KEY": "wrong-key-0123456789"})
        self.assertExit(out, 1)
        self.assertFalse(self.redis.exists(key_name("jti", ISS, "ctl-jti-3")))

    def test_reload(self):
        """reload asks the server to read its files again: 0 when it did, 3 (a 500) when a file
        is broken, and then the keys in force are the ones before."""
        out = self.ctl("reload", env={"REVOKD_ADMIN_KEY": ADMIN_KEY})
        self.assertExit(out, 0)
        self.assertEqual(json.loads(out.stdout), {"reloaded": True})
        with open(self.admin_keys_path, encoding="utf-8") as f:
            keys = f.read()
        self.addCleanup(lambda: open(self.admin_keys_path, "w", encoding="utf-8").write(keys))
        harness.write_admin_keys(self.admin_keys_path, ["too-short"])
        out = self.ctl("reload", env={"REVOKD_ADMIN_KEY": ADMIN_KEY})
        self.assertExit(out, 3)
        body = json.loads(out.stdout)
        self.assertEqual(body["error"], "reload_failed")
        self.assertIn("REVOKD_ADMIN_KEYS_FILE", body["error_description"])
        self.assertExit(self.ctl("revoke-all", "dave", env={"REVOKD_ADMIN_KEY": ADMIN_KEY}), 0)
        self.assertExit(self.ctl("reload", env={"REVOKD_ADMIN_KEY": "wrong-key-0123456789"}), 1)
        self.assertExit(self.ctl("reload"), 2)

    def test_transport_error_and_store_down(self):
        out = run_revokectl(["--url", f"http://127.0.0.1:{harness.free_port()}", "health"])
        self.assertExit(out, 3)
        token = self.mint(sub="carol", iss=ISS)
        self.redis.kill()
        self.assertExit(self.ctl("check", token), 3)


if __name__ == "__main__":
    harness.main()
