"""Verification keys: JWKS with RSA, EC and oct keys, kid selection, "use" filtering, and the
convenience PEM and HMAC secret files (kid-less keys chosen by alg)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import craft, std_claims, write_jwks  # noqa: E402


class JwksTest(harness.RevokdTestCase):
    """The class daemon serves the standard JWKS: rsa-1 RS256, rsa-2 RS384, ec-256 (alg inferred),
    ec-384 ES384, hs-1 HS256."""

    def test_every_standard_key_with_revokectl(self):
        for name in ("rsa", "rsa2", "ec256", "ec384", "hs"):
            with self.subTest(key=name):
                token = self.mint(key=self.keys[name], sub=f"sub-{name}")
                header, _, _ = harness.jwt_parts(token)
                self.assertEqual(header.get("kid"), self.keys[name].kid)
                self.assertEqual(header.get("alg"), self.keys[name].alg)
                self.assertActive(self.revokd.check(token), token)

    def test_every_standard_key_hand_signed(self):
        for name in ("rsa", "rsa2", "ec256", "ec384", "hs"):
            with self.subTest(key=name):
                token = self.craft(key=self.keys[name])
                self.assertActive(self.revokd.check_post(token), token)

    def test_more_algorithms(self):
        rsa = self.keys["rsa"]
        hs384 = self.factory.hmac("hs384", size=48, alg="HS384", kid="hs-384")
        hs512 = self.factory.hmac("hs512", size=64, alg="HS512", kid="hs-512")
        jwks = [rsa.jwk(kid="rsa-512", alg="RS512"), hs384.jwk(), hs512.jwk(),
                self.keys["ec256"].jwk(alg="ES256"), self.keys["ec384"].jwk(alg=None)]
        daemon = self.start_revokd({"REVOKD_JWKS_FILE": write_jwks(os.path.join(self.tmp, "more.json"), jwks)})
        cases = [(rsa, "RS512", "rsa-512"), (hs384, "HS384", "hs-384"), (hs512, "HS512", "hs-512"),
                 (self.keys["ec256"], "ES256", "ec-256"), (self.keys["ec384"], "ES384", "ec-384")]
        for key, alg, kid in cases:
            with self.subTest(alg=alg):
                token = self.mint(key=key, alg=alg, kid=kid)
                self.assertActive(daemon.check(token), token)
        # The same RSA material under kid rsa-512 is pinned to RS512 only.
        token = self.mint(key=rsa, alg="RS256", kid="rsa-512")
        self.assertTokenFailure(daemon.check(token), "algorithm_not_allowed")

    def test_use_other_than_sig_is_skipped(self):
        rsa, rsa2 = self.keys["rsa"], self.keys["rsa2"]
        jwks = [rsa.jwk(kid="enc-key", use="enc"), rsa.jwk(kid="sig-key", use="sig"), rsa2.jwk()]
        daemon = self.start_revokd({"REVOKD_JWKS_FILE": write_jwks(os.path.join(self.tmp, "use.json"), jwks)})
        self.assertTokenFailure(daemon.check(self.mint(kid="enc-key")), "unknown_key")
        token = self.mint(kid="sig-key")
        self.assertActive(daemon.check(token), token)
        token = self.mint(key=rsa2)
        self.assertActive(daemon.check(token), token)

    def test_kid_selects_the_key(self):
        a = self.factory.rsa("sel-a", kid="a")
        b = self.factory.rsa("sel-b", kid="b")
        jwks = [a.jwk(), b.jwk()]
        daemon = self.start_revokd({"REVOKD_JWKS_FILE": write_jwks(os.path.join(self.tmp, "sel.json"), jwks)})
        for key in (a, b):
            token = self.mint(key=key)
            self.assertActive(daemon.check(token), token)
        # a's signature presented as b's: the kid picks b, and b does not verify it.
        swapped = craft({"alg": "RS256", "kid": "b"}, std_claims(), a)
        self.assertTokenFailure(daemon.check(swapped), "invalid_signature")
        # Without a kid nothing is chosen: JWKS keys are never kid-less.
        self.assertTokenFailure(daemon.check(self.mint(key=a, kid=None)), "unknown_key")

    def test_unknown_kid_from_revokectl(self):
        self.assertTokenFailure(self.revokd.check(self.mint(kid="nobody")), "unknown_key")


class ConvenienceKeyTest(harness.RevokdTestCase):
    """REVOKD_JWT_PUBLIC_KEY_FILE and REVOKD_JWT_HMAC_SECRET_FILE: keys without a kid."""
    class_daemon = False

    def pem_daemon(self, key, alg=None, **extra):
        env = {"REVOKD_JWKS_FILE": None, "REVOKD_JWT_PUBLIC_KEY_FILE": key.pub_path}
        if alg:
            env["REVOKD_JWT_PUBLIC_KEY_ALG"] = alg
        env.update(extra)
        return self.start_revokd(env)

    def test_rsa_pem_defaults_to_rs256(self):
        rsa = self.keys["rsa"]
        daemon = self.pem_daemon(rsa)
        token = self.mint(key=rsa, kid=None)
        self.assertActive(daemon.check(token), token)
        self.assertTokenFailure(daemon.check(self.mint(key=rsa, alg="RS384", kid=None)), "unknown_key")
        # Convenience keys have no kid: a token naming one finds nothing.
        self.assertTokenFailure(daemon.check(self.mint(key=rsa)), "unknown_key")
        # Another RSA key's signature.
        other = craft({"alg": "RS256"}, std_claims(), self.keys["rsa2"])
        self.assertTokenFailure(daemon.check(other), "invalid_signature")

    def test_rsa_pem_with_pinned_alg(self):
        rsa = self.keys["rsa"]
        daemon = self.pem_daemon(rsa, alg="RS512")
        token = self.mint(key=rsa, alg="RS512", kid=None)
        self.assertActive(daemon.check(token), token)
        self.assertTokenFailure(daemon.check(self.mint(key=rsa, alg="RS256", kid=None)), "unknown_key")

    def test_ec_pem_alg_inferred_from_curve(self):
        for name, alg, wrong in (("ec256", "ES256", "ES384"), ("ec384", "ES384", "ES256")):
            with self.subTest(curve=name):
                key = self.keys[name]
                daemon = self.pem_daemon(key)
                token = self.mint(key=key, kid=None)
                self.assertEqual(harness.jwt_parts(token)[0]["alg"], alg)
                self.assertActive(daemon.check(token), token)
                forged = craft({"alg": wrong}, std_claims(), key, alg=wrong)
                self.assertTokenFailure(daemon.check(forged), "unknown_key")

    def test_hmac_secret_file_trailing_newline_stripped(self):
        key = self.factory.hmac("conv-hs", size=40, trailing_newline=True)
        daemon = self.start_revokd({"REVOKD_JWKS_FILE": None, "REVOKD_JWT_HMAC_SECRET_FILE": key.secret_path})
        token = self.mint(key=key, kid=None)
        self.assertActive(daemon.check(token), token)
        hand = craft({"alg": "HS256", "typ": "JWT"}, std_claims(), key)  # HMAC over the stripped secret
        self.assertActive(daemon.check(hand), hand)
        with_newline = harness.Key("oct", "HS256", secret=key.secret + b"\n")
        bad = craft({"alg": "HS256"}, std_claims(), with_newline)
        self.assertTokenFailure(daemon.check(bad), "invalid_signature")
        self.assertTokenFailure(daemon.check(self.mint(key=key, alg="HS512", kid=None)), "unknown_key")

    def test_hmac_alg_setting(self):
        for alg, size in (("HS384", 48), ("HS512", 64)):
            with self.subTest(alg=alg):
                key = self.factory.hmac(f"conv-{alg}", size=size, alg=alg)
                daemon = self.start_revokd({"REVOKD_JWKS_FILE": None,
                                            "REVOKD_JWT_HMAC_SECRET_FILE": key.secret_path,
                                            "REVOKD_JWT_HMAC_ALG": alg})
                token = self.mint(key=key, kid=None)
                self.assertActive(daemon.check(token), token)
                self.assertTokenFailure(daemon.check(self.mint(key=key, alg="HS256", kid=None)), "unknown_key")

    def test_all_key_sources_together(self):
        hs = self.factory.hmac("together-hs", size=32)
        daemon = self.start_revokd({"REVOKD_JWT_PUBLIC_KEY_FILE": self.keys["rsa"].pub_path,
                                    "REVOKD_JWT_HMAC_SECRET_FILE": hs.secret_path})
        tokens = [
            self.mint(key=self.keys["rsa"]),           # kid rsa-1 -> JWKS
            self.mint(key=self.keys["ec384"]),         # kid ec-384 -> JWKS
            self.mint(key=self.keys["hs"]),            # kid hs-1 -> JWKS oct key
            self.mint(key=self.keys["rsa"], kid=None),  # kid-less RS256 -> the PEM
            self.mint(key=hs, kid=None),               # kid-less HS256 -> the secret file
        ]
        for token in tokens:
            with self.subTest(header=harness.jwt_parts(token)[0]):
                self.assertActive(daemon.check(token), token)
        # A kid-less HS256 token made with the JWKS oct secret goes to the secret file and fails.
        self.assertTokenFailure(daemon.check(self.mint(key=self.keys["hs"], kid=None)), "invalid_signature")
        self.assertTokenFailure(daemon.check(self.mint(key=self.keys["rsa2"], kid=None)), "unknown_key")


if __name__ == "__main__":
    harness.main()
