"""Several issuers from REVOKD_ISSUERS_FILE: each verifies its own tokens with its own keys and
rules (audiences, leeway, lifetime), a key of one never verifies a token of another, revocations
are kept apart by iss, and start-up names every mistake in the file on a line of its own."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import key_name, now, revokd_key_name  # noqa: E402

A = "https://a.example"
B = "https://b.example"
C = "https://c.example"
D = "https://d.example"
ADMIN_KEY = "issuers-admin-key-0123456789abcdef"

# Settings the file's issuers fall back on (C and D give neither leeway nor lifetime).
ENV_LEEWAY = 45
ENV_MAX_LIFETIME = 7200
LEEWAY = {A: 10, B: 120, C: ENV_LEEWAY, D: ENV_LEEWAY}
MAX_LIFETIME = {A: 3600, B: 86400, C: ENV_MAX_LIFETIME, D: ENV_MAX_LIFETIME}
# The aud each issuer's tokens get by default: one its audiences accept (C and D accept any).
AUD = {A: "api-a", B: "api-b2", C: None, D: None}


def kidless(key):
    """The same key material without a kid: PEM and HMAC files hold kid-less keys."""
    return harness.Key(key.kty, key.alg, None, key.priv_path, key.pub_path, key.secret,
                       key.secret_path, key.curve)


def sign(iss, key, kid=..., alg=None, **claims):
    """A token with iss (None: no iss claim), signed by key (header kid: the key's unless given),
    with the issuer's default aud unless claims name one."""
    kid = key.kid if kid is ... else kid
    alg = alg or key.alg
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    claims.setdefault("aud", AUD.get(iss))
    return harness.craft(header, harness.std_claims(iss=iss, **claims), key, alg=alg)


def run_in(cwd, env):
    """revokd to completion in another working directory (for relative paths)."""
    return subprocess.run([harness.revokd_bin()], cwd=cwd, env=harness.clean_env(env),
                          capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)


def stderr_lines(out):
    """revokd's start-up mistakes: "revokd: " then one line per mistake."""
    text = out.stderr
    if not text.startswith("revokd: "):
        raise AssertionError(f"stderr does not start with 'revokd: ': {text!r}")
    return text[len("revokd: "):].rstrip("\n").split("\n")


class IssuersFileTest(harness.RevokdTestCase):
    """One revokd with four issuers:
    A: a JWKS file (relative path keys/a.json) with the standard RSA key (kid rsa-1), RS256 only,
       audiences ["api-a"], leeway 10, max_token_lifetime 3600;
    B: an ES256 public key PEM (absolute path), audiences ["api-b1", "api-b2"], leeway 120,
       max_token_lifetime 86400;
    C: an HMAC secret file (relative path c.secret, hmac_alg left to its default HS256), no
       audiences, leeway and lifetime from REVOKD_LEEWAY / REVOKD_MAX_TOKEN_LIFETIME;
    D: a JWKS file whose RSA key has A's kid (rsa-1) but is another key."""
    class_daemon = False
    admin_keys = (ADMIN_KEY,)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.conf = os.path.join(cls.tmp, "conf")
        os.makedirs(os.path.join(cls.conf, "keys"))
        std = cls.keys
        cls.kA = std["rsa"]
        cls.kB = kidless(std["ec256"])
        secret = harness.b64url(os.urandom(48)).encode()[:48]
        c_path = os.path.join(cls.conf, "c.secret")
        with open(c_path, "wb") as f:
            f.write(secret + b"\n")
        cls.kC = harness.Key("oct", "HS256", None, secret=secret, secret_path=c_path)
        cls.kD = cls.factory.rsa("d-rsa", kid="rsa-1")      # A's kid, another key
        cls.other_ec = kidless(cls.factory.ec("other-ec"))  # B's algorithm, another key
        cls.other_hs = cls.factory.hmac("other-hs", size=48)
        harness.write_jwks(os.path.join(cls.conf, "keys", "a.json"), [cls.kA.jwk()])
        harness.write_jwks(os.path.join(cls.conf, "keys", "d.json"), [cls.kD.jwk()])
        cls.issuers_path = harness.write_json(os.path.join(cls.conf, "issuers.json"), {"issuers": [
            {"iss": A, "jwks_file": "keys/a.json", "audiences": ["api-a"], "algorithms": ["RS256"],
             "leeway": LEEWAY[A], "max_token_lifetime": MAX_LIFETIME[A]},
            {"iss": B, "public_key_file": cls.kB.pub_path, "public_key_alg": "ES256",
             "audiences": ["api-b1", "api-b2"], "leeway": LEEWAY[B], "max_token_lifetime": MAX_LIFETIME[B]},
            {"iss": C, "hmac_secret_file": "c.secret"},
            {"iss": D, "jwks_file": "keys/d.json"},
        ]})
        cls.started = time.time()
        cls.revokd = harness.Revokd(cls.base_env({
            "REVOKD_ISSUERS_FILE": cls.issuers_path, "REVOKD_JWKS_FILE": None,
            "REVOKD_LEEWAY": str(ENV_LEEWAY), "REVOKD_MAX_TOKEN_LIFETIME": str(ENV_MAX_LIFETIME),
        }), name="IssuersFileTest revokd")
        cls.addClassCleanup(cls.revokd.stop)
        cls.revokd.start()
        cls.key_of = {A: cls.kA, B: cls.kB, C: cls.kC, D: cls.kD}

    def own(self, iss, **claims):
        return sign(iss, self.key_of[iss], **claims)

    def admin(self, method, path, body=None):
        return self.revokd.request(method, path, body, {"Authorization": f"Bearer {ADMIN_KEY}"})

    # -- verification -------------------------------------------------------------------------
    def test_each_issuer_verifies_its_own_tokens(self):
        for iss in (A, B, C, D):
            with self.subTest(iss=iss):
                token = self.own(iss, sub=f"user-of-{iss[8]}")
                body = self.assertActive(self.revokd.check(token), token)
                self.assertEqual(body["iss"], iss)
                self.assertEqual(body["sub"], f"user-of-{iss[8]}")
                self.assertActive(self.revokd.check_post(token), token)
        self.assertEqual(self.redis.keys(), [])

    def test_readyz_lists_every_issuer(self):
        body = self.assertJsonResponse(self.revokd.readyz(), 200)
        self.assertEqual(body["status"], "ready")
        issuers = body["issuers"]
        self.assertEqual([i["iss"] for i in issuers], [A, B, C, D])
        elapsed = time.time() - self.started + 1
        for entry in issuers:
            with self.subTest(iss=entry["iss"]):
                age = entry.pop("age_seconds")
                self.assertIsInstance(age, int)
                self.assertTrue(0 <= age <= elapsed, (age, elapsed))
                self.assertEqual(entry, {"iss": entry["iss"], "source": "files", "keys": 1,
                                         "last_fetch": "loaded", "stale": False})

    def test_key_of_another_issuer_is_refused(self):
        """The iss picks the issuer, and only its keys are looked at: a kid another issuer has
        is unknown here, and the same kid in two issuers names two different keys."""
        cases = [
            ("A's iss, B's ES256 key", sign(A, self.kB), "unknown_key"),
            ("A's iss, C's HMAC secret", sign(A, self.kC), "unknown_key"),
            ("A's iss, D's key under the kid both have", sign(A, self.kD), "invalid_signature"),
            ("B's iss, A's key and kid", sign(B, self.kA), "unknown_key"),
            ("B's iss, A's key without kid", sign(B, self.kA, kid=None), "unknown_key"),
            ("B's iss, another P-256 key", sign(B, self.other_ec), "invalid_signature"),
            ("C's iss, A's key and kid", sign(C, self.kA), "unknown_key"),
            ("C's iss, another HMAC secret", sign(C, self.other_hs, kid=None), "invalid_signature"),
            ("D's iss, A's key under the kid both have", sign(D, self.kA), "invalid_signature"),
            ("D's iss, B's ES256 key", sign(D, self.kB), "unknown_key"),
            ("D's iss, C's HMAC secret", sign(D, self.kC), "unknown_key"),
        ]
        for name, token, reason in cases:
            with self.subTest(case=name):
                self.assertTokenFailure(self.revokd.check(token), reason)
                self.assertTokenFailure(self.revokd.check_post(token), reason)
                # Possession of a token one cannot verify is no right to revoke it.
                self.assertTokenFailure(self.revokd.revoke(token), reason)
        # The same claims under the right key pass: the refusals were the keys'.
        for iss in (A, B, C, D):
            token = self.own(iss)
            self.assertActive(self.revokd.check(token), token)
        self.assertEqual(self.redis.keys(), [])

    def test_unknown_or_missing_iss(self):
        cases = [
            ("unknown iss", sign("https://x.example", self.kA), "invalid_issuer"),
            ("A's iss with a trailing slash", sign(A + "/", self.kA), "invalid_issuer"),
            ("A's iss in upper case", sign(A.upper(), self.kA), "invalid_issuer"),
            ("no iss, A's key", sign(None, self.kA), "invalid_issuer"),
            ("no iss, B's key", sign(None, self.kB), "invalid_issuer"),
            ("no iss, C's secret", sign(None, self.kC), "invalid_issuer"),
            ("no iss, D's key", sign(None, self.kD), "invalid_issuer"),
        ]
        for name, token, reason in cases:
            with self.subTest(case=name):
                self.assertTokenFailure(self.revokd.check(token), reason)
                self.assertTokenFailure(self.revokd.revoke(token), reason)
        self.assertEqual(self.redis.keys(), [])

    def test_audiences_per_issuer(self):
        cases = [
            (A, "api-a", True), (A, ["other", "api-a"], True), (A, "api-b2", False),
            (A, ["api-b1", "api-b2"], False), (A, None, False),
            (B, "api-b1", True), (B, ["x", "api-b2"], True), (B, "api-a", False), (B, None, False),
            (C, "anything", True), (C, ["api-a", "api-b1"], True), (C, None, True),
        ]
        for iss, aud, ok in cases:
            with self.subTest(iss=iss, aud=aud):
                token = self.own(iss, aud=aud)
                if ok:
                    self.assertActive(self.revokd.check(token), token)
                else:
                    self.assertTokenFailure(self.revokd.check(token), "invalid_audience")

    def test_max_token_lifetime_per_issuer(self):
        t = now()
        for iss in (A, B, C):
            for lifetime, ok in ((MAX_LIFETIME[iss], True), (MAX_LIFETIME[iss] + 1, False)):
                with self.subTest(iss=iss, lifetime=lifetime):
                    token = self.own(iss, iat=t, exp=t + lifetime)
                    if ok:
                        self.assertActive(self.revokd.check(token), token)
                    else:
                        self.assertTokenFailure(self.revokd.check(token), "lifetime_exceeded")
        # One lifetime, two answers: over A's limit, within B's and C's.
        for iss, ok in ((A, False), (B, True), (C, True)):
            with self.subTest(iss=iss, lifetime=3601):
                token = self.own(iss, iat=t, exp=t + 3601)
                if ok:
                    self.assertActive(self.revokd.check(token), token)
                else:
                    self.assertTokenFailure(self.revokd.check(token), "lifetime_exceeded")

    def test_leeway_per_issuer(self):
        """A token expired a little is active within its issuer's leeway only. now() is at most
        revokd's clock, and each pair brackets exp + leeway by 5 s on either side."""
        t = now()
        for iss in (A, B, C):
            for ago, ok in ((LEEWAY[iss] - 5, True), (LEEWAY[iss] + 5, False)):
                with self.subTest(iss=iss, expired_ago=ago):
                    token = self.own(iss, iat=t - ago - 60, exp=t - ago)
                    if ok:
                        self.assertActive(self.revokd.check(token), token)
                    else:
                        self.assertTokenFailure(self.revokd.check(token), "expired")

    # -- revocations are namespaced by iss ----------------------------------------------------
    def test_holder_revoke_keeps_issuers_apart(self):
        tokens = {iss: self.own(iss, sub="alice", jti="shared-jti") for iss in (A, B, C)}
        for token in tokens.values():
            self.assertActive(self.revokd.check(token), token)
        keys, revoked = [], []
        for iss in (A, B, C):
            with self.subTest(revoked=iss):
                exp = harness.jwt_parts(tokens[iss])[1]["exp"]
                body = self.assertJsonResponse(self.revokd.revoke(tokens[iss]), 200)
                # The record lives as long as the issuer's leeway lets the token pass.
                self.assertEqual(body, {"revoked": True, "jti": "shared-jti", "iss": iss,
                                        "expires_at": exp + LEEWAY[iss], "expired": False})
                key = key_name("jti", iss, "shared-jti")
                self.assertEqual(key, revokd_key_name("jti", iss, "shared-jti"))
                keys.append(key)
                revoked.append(iss)
                self.assertEqual(self.redis.keys(), sorted(keys))
                self.assertEqual(self.redis.expiretime(key), exp + LEEWAY[iss])
                for other in (A, B, C):
                    if other in revoked:
                        self.assertTokenFailure(self.revokd.check(tokens[other]), "revoked")
                    else:
                        self.assertActive(self.revokd.check(tokens[other]), tokens[other])
        self.assertEqual(len(set(keys)), 3)

    def test_admin_revoke_names_the_issuer(self):
        exp = now() + 900
        resp = self.admin("POST", "/v1/admin/revoke", {"jti": "shared-admin", "exp": exp})
        self.assertIn("iss is required", self.assertError(resp, 400, "invalid_request")["error_description"])
        self.assertEqual(self.redis.keys(), [])

        tokens = {iss: self.own(iss, sub="bob", jti="shared-admin") for iss in (A, B, C)}
        body = self.assertJsonResponse(self.admin("POST", "/v1/admin/revoke",
                                                  {"jti": "shared-admin", "exp": exp, "iss": B}), 200)
        self.assertEqual(body, {"revoked": True, "jti": "shared-admin", "iss": B,
                                "expires_at": exp + LEEWAY[B], "expired": False})
        key_b = key_name("jti", B, "shared-admin")
        self.assertEqual(self.redis.keys(), [key_b])
        self.assertEqual(self.redis.expiretime(key_b), exp + LEEWAY[B])
        self.assertTokenFailure(self.revokd.check(tokens[B]), "revoked")
        self.assertActive(self.revokd.check(tokens[A]), tokens[A])
        self.assertActive(self.revokd.check(tokens[C]), tokens[C])

        body = self.assertJsonResponse(self.admin("POST", "/v1/admin/revoke",
                                                  {"jti": "shared-admin", "exp": exp, "iss": A}), 200)
        self.assertEqual(body["expires_at"], exp + LEEWAY[A])
        key_a = key_name("jti", A, "shared-admin")
        self.assertEqual(self.redis.keys(), sorted([key_a, key_b]))
        self.assertEqual(self.redis.expiretime(key_a), exp + LEEWAY[A])
        self.assertTokenFailure(self.revokd.check(tokens[A]), "revoked")
        self.assertActive(self.revokd.check(tokens[C]), tokens[C])

        # Lookups name the issuer too.
        self.assertError(self.revokd.lookup(jti="shared-admin"), 400, "invalid_request")
        self.assertTokenFailure(self.revokd.lookup(jti="shared-admin", iss=A), "revoked")
        self.assertTokenFailure(self.revokd.lookup(jti="shared-admin", iss=B), "revoked")
        self.assertEqual(self.assertJsonResponse(self.revokd.lookup(jti="shared-admin", iss=C), 200),
                         {"active": True, "jti": "shared-admin"})

    def test_admin_revoke_exp_bound_is_the_issuers(self):
        """exp may be at most now + the issuer's max_token_lifetime + leeway."""
        t = now()
        beyond_a = t + MAX_LIFETIME[A] + LEEWAY[A] + 120
        self.assertError(self.admin("POST", "/v1/admin/revoke", {"jti": "far", "exp": beyond_a, "iss": A}),
                         400, "invalid_request")
        self.assertEqual(self.redis.keys(), [])
        body = self.assertJsonResponse(self.admin("POST", "/v1/admin/revoke",
                                                  {"jti": "far", "exp": beyond_a, "iss": B}), 200)
        self.assertEqual(body["expires_at"], beyond_a + LEEWAY[B])
        self.assertEqual(self.redis.keys(), [key_name("jti", B, "far")])

    def test_revoke_all_keeps_issuers_apart(self):
        resp = self.admin("POST", "/v1/admin/subjects/alice/revoke-all")
        self.assertIn("iss is required", self.assertError(resp, 400, "invalid_request")["error_description"])
        self.assertEqual(self.redis.keys(), [])

        alice = {iss: self.own(iss, sub="alice") for iss in (A, B, C)}
        bob_a = self.own(A, sub="bob")
        t0 = now()
        body = self.assertJsonResponse(self.admin("POST", "/v1/admin/subjects/alice/revoke-all", {"iss": A}), 200)
        t1 = int(time.time())
        self.assertEqual(body["sub"], "alice")
        self.assertEqual(body["iss"], A)
        self.assertTrue(t0 + LEEWAY[A] <= body["cutoff"] <= t1 + LEEWAY[A], (t0, body, t1))
        self.assertEqual(body["expires_at"] - body["cutoff"], MAX_LIFETIME[A] + LEEWAY[A])
        key_a = key_name("sub", A, "alice")
        self.assertEqual(key_a, revokd_key_name("sub", A, "alice"))
        self.assertEqual(self.redis.keys(), [key_a])
        self.assertEqual(self.redis.get(key_a), str(body["cutoff"]))
        # Redis's clock may be a second ahead of the one revokd read.
        self.assertLessEqual(abs(self.redis.expiretime(key_a) - body["expires_at"]), 1)

        self.assertTokenFailure(self.revokd.check(alice[A]), "revoked")
        self.assertActive(self.revokd.check(alice[B]), alice[B])
        self.assertActive(self.revokd.check(alice[C]), alice[C])
        self.assertActive(self.revokd.check(bob_a), bob_a)
        iat = harness.jwt_parts(alice[B])[1]["iat"]
        self.assertTokenFailure(self.revokd.lookup(sub="alice", iat=iat, iss=A), "revoked")
        self.assertEqual(self.assertJsonResponse(self.revokd.lookup(sub="alice", iat=iat, iss=B), 200)["active"],
                         True)

        # The holder's own revoke-all acts in its token's issuer: C's alice, with C's rules.
        t0 = now()
        body = self.assertJsonResponse(self.revokd.revoke_all(alice[C]), 200)
        t1 = int(time.time())
        self.assertEqual((body["sub"], body["iss"]), ("alice", C))
        self.assertTrue(t0 + LEEWAY[C] <= body["cutoff"] <= t1 + LEEWAY[C], (t0, body, t1))
        self.assertEqual(body["expires_at"] - body["cutoff"], MAX_LIFETIME[C] + LEEWAY[C])
        self.assertEqual(self.redis.keys(), sorted([key_a, key_name("sub", C, "alice")]))
        self.assertTokenFailure(self.revokd.check(alice[C]), "revoked")
        self.assertActive(self.revokd.check(alice[B]), alice[B])


class IssuersFileErrorTest(harness.RevokdTestCase):
    """Start-up with a REVOKD_ISSUERS_FILE that has mistakes: exit 2, nothing served, and every
    mistake on a line of its own naming the issuer and what is wrong."""
    class_daemon = False

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.tmp, self._testMethodName)
        os.makedirs(self.dir)
        self.good_jwks = harness.write_jwks(os.path.join(self.dir, "a.json"), [self.keys["rsa"].jwk()])

    def env(self, issuers_path, **extra):
        env = {"REVOKD_ISSUERS_FILE": issuers_path, "REVOKD_REDIS_URL": self.redis.url()}
        env.update(extra)
        return env

    def write(self, issuers, name="issuers.json"):
        return harness.write_json(os.path.join(self.dir, name), {"issuers": issuers})

    def assertMistakes(self, out, expected):
        """expected: one tuple of substrings per line, in order."""
        self.assertEqual(out.returncode, 2, f"exit {out.returncode}; stderr: {out.stderr!r}")
        self.assertEqual(out.stdout, "")
        lines = stderr_lines(out)
        self.assertEqual(len(lines), len(expected),
                         "want one line per mistake:\n" + "\n".join(lines))
        for i, (line, parts) in enumerate(zip(lines, expected)):
            for part in parts:
                self.assertIn(part, line, f"line {i}")
        return lines

    def test_every_mistake_on_its_own_line(self):
        os.makedirs(os.path.join(self.dir, "a-directory"))
        path = self.write([
            {"iss": "https://m0.example", "jwks_file": "a.json", "audience": ["x"]},
            {"jwks_file": "a.json"},
            {"iss": "https://m0.example", "jwks_file": "a.json"},
            {"iss": "https://m3.example", "jwks_url": "http://example.com/jwks"},
            {"iss": "https://m4.example", "jwks_url": "https://m4.example/jwks", "discovery": True},
            {"iss": "https://m5.example"},
            {"iss": "https://m6.example", "jwks_file": "a.json", "leeway": 99999},
            {"iss": "https://m7.example", "jwks_file": "missing.json"},
            {"iss": "https://m8.example", "jwks_file": "a-directory"},
            {"iss": "", "jwks_file": "a.json"},
            {"iss": "https://" + "i" * 249, "jwks_file": "a.json"},
            {"iss": "https://m11.example", "jwks_file": "a.json", "max_token_lifetime": 59},
            {"iss": "https://m12.example", "jwks_file": "a.json", "discovery": "yes"},
            "https://m13.example",
        ])
        pre = "REVOKD_ISSUERS_FILE: issuers"
        self.assertMistakes(harness.run_revokd([], self.env(path)), [
            (f"{pre}[0]: ", "unknown member", '"audience"'),
            (f"{pre}[1]: ", "iss is required"),
            (f"{pre}[2]: ", '"https://m0.example"', "issuers[0]"),
            (f"{pre}[3]: ", "jwks_url", "http://example.com/jwks", "https"),
            (f"{pre}[4]: ", "jwks_url", "discovery", "not both"),
            (f"{pre}[5]: ", "no keys"),
            (f"{pre}[6]: ", "leeway", "0..3600"),
            (f"{pre}[7]: ", "jwks_file", os.path.join(self.dir, "missing.json")),
            (f"{pre}[8]: ", "jwks_file", os.path.join(self.dir, "a-directory")),
            (f"{pre}[9]: ", "iss", "1 to 256 bytes"),
            (f"{pre}[10]: ", "iss", "1 to 256 bytes"),
            (f"{pre}[11]: ", "max_token_lifetime", "60..315360000"),
            (f"{pre}[12]: ", "discovery", "true or false"),
            (f"{pre}[13]: ", "object"),
        ])

    def test_settings_the_file_replaces(self):
        path = self.write([{"iss": "https://ok.example", "jwks_file": "a.json"}])
        k = self.keys
        replaced = {
            "REVOKD_ISSUER": "https://ok.example",
            "REVOKD_AUDIENCE": "api",
            "REVOKD_ALGORITHMS": "RS256",
            "REVOKD_JWKS_URL": "https://idp.example/jwks",
            "REVOKD_JWKS_FILE": self.good_jwks,
            "REVOKD_JWT_PUBLIC_KEY_FILE": k["ec256"].pub_path,
            "REVOKD_JWT_HMAC_SECRET_FILE": k["hs"].secret_path,
            "REVOKD_OIDC_DISCOVERY": "1",
        }
        for setting, value in replaced.items():
            with self.subTest(setting=setting):
                self.assertMistakes(harness.run_revokd([], self.env(path, **{setting: value})),
                                    [(setting, "REVOKD_ISSUERS_FILE")])
        # All at once: every one named, each on its line.
        self.assertMistakes(harness.run_revokd([], self.env(path, **replaced)),
                            [(setting, "REVOKD_ISSUERS_FILE") for setting in replaced])
        # REVOKD_OIDC_DISCOVERY=0 is its default, no conflict; the file alone starts.
        daemon = self.start_revokd({"REVOKD_ISSUERS_FILE": path, "REVOKD_JWKS_FILE": None,
                                    "REVOKD_OIDC_DISCOVERY": "0"})
        token = sign("https://ok.example", k["rsa"])
        self.assertActive(daemon.check(token), token)

    def test_the_file_itself(self):
        cases = {
            "missing": os.path.join(self.dir, "no-such-file.json"),
            "not JSON": self.write_raw("bad.json", "{not json"),
            "no issuers list": self.write_raw("nolist.json", '{"issuer": []}'),
            "empty list": self.write_raw("empty.json", '{"issuers": []}'),
        }
        for name, path in cases.items():
            with self.subTest(case=name):
                out = harness.run_revokd([], self.env(path))
                self.assertEqual(out.returncode, 2, out.stderr)
                lines = stderr_lines(out)
                self.assertEqual(len(lines), 1, lines)
                self.assertIn("REVOKD_ISSUERS_FILE", lines[0])
                self.assertIn(path, lines[0])

    def write_raw(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_relative_paths_are_the_files_directory(self):
        """Relative paths are taken from the issuers file's directory, not revokd's working
        directory: run from a directory where the names mean other files (or nothing)."""
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.makedirs(os.path.join(self.dir, "sub"))
        os.makedirs(elsewhere)
        shutil.copy(self.good_jwks, os.path.join(self.dir, "sub", "in-sub.json"))
        # Only in the working directory: must not be found.
        shutil.copy(self.good_jwks, os.path.join(elsewhere, "only-in-cwd.json"))
        path = self.write([
            {"iss": "https://rel-a.example", "jwks_file": "a.json"},
            {"iss": "https://rel-b.example", "jwks_file": "sub/in-sub.json"},
            {"iss": "https://rel-c.example", "jwks_file": "sub/../a.json"},
            {"iss": "https://rel-d.example", "jwks_file": "only-in-cwd.json"},
        ])
        out = run_in(elsewhere, self.env(path))
        self.assertMistakes(out, [("issuers[3]: ", "jwks_file", os.path.join(self.dir, "only-in-cwd.json"))])
        # Without the mistake it starts, and every relative key verifies.
        path = self.write([
            {"iss": "https://rel-a.example", "jwks_file": "a.json"},
            {"iss": "https://rel-b.example", "jwks_file": "sub/in-sub.json"},
            {"iss": "https://rel-c.example", "jwks_file": "sub/../a.json"},
        ], name="good.json")
        daemon = self.start_revokd({"REVOKD_ISSUERS_FILE": path, "REVOKD_JWKS_FILE": None})
        for iss in ("https://rel-a.example", "https://rel-b.example", "https://rel-c.example"):
            token = sign(iss, self.keys["rsa"])
            self.assertActive(daemon.check(token), token)

    def test_mistakes_in_key_files_are_all_reported(self):
        """Start-up reports every mistake: a key file with the wrong content in two issuers is
        two lines, not the first one alone."""
        self.write_raw("bad.json", '{"keys": "x"}')
        self.write_raw("short.secret", "too-short")
        path = self.write([
            {"iss": "https://k0.example", "jwks_file": "bad.json"},
            {"iss": "https://k1.example", "jwks_file": "a.json"},
            {"iss": "https://k2.example", "hmac_secret_file": "short.secret"},
        ])
        self.assertMistakes(harness.run_revokd([], self.env(path)), [
            ("REVOKD_ISSUERS_FILE: issuers[0]: ", "jwks_file", os.path.join(self.dir, "bad.json")),
            ("REVOKD_ISSUERS_FILE: issuers[2]: ", "hmac_secret_file"),
        ])

    def test_many_mistakes_none_cut(self):
        """Every mistake is reported however many there are: 40 issuers without keys are 40
        whole lines (a file may list 64)."""
        path = self.write([{"iss": f"https://n{i}.example"} for i in range(40)])
        lines = self.assertMistakes(harness.run_revokd([], self.env(path)),
                                    [(f"issuers[{i}]: ", "no keys") for i in range(40)])
        self.assertTrue(lines[-1].endswith("hmac_secret_file"), lines[-1])


if __name__ == "__main__":
    harness.main()
