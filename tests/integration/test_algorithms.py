"""The JWS algorithms beyond RS*, ES256/384 and HS*: PS256/384/512 (RSASSA-PSS), EdDSA (Ed25519 and
Ed448) and ES512 (P-521), through the real server. Every token is signed here with the openssl CLI,
independently of revokectl."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import b64url, b64url_decode, compact_json, craft, std_claims, write_jwks  # noqa: E402


def pss_token(header, payload, key, saltlen):
    """A token signed with RSASSA-PSS and a salt of `saltlen` (openssl's rsa_pss_saltlen)."""
    signing_input = (b64url(compact_json(header)) + "." + b64url(compact_json(payload))).encode()
    return signing_input.decode() + "." + b64url(key.sign(signing_input, header["alg"], saltlen))


def with_signature(token, sig):
    h, p, _ = token.split(".")
    return f"{h}.{p}.{b64url(sig)}"


class AlgorithmsTest(harness.RevokdTestCase):
    """One revokd with a JWKS of the new algorithms: one RSA key published as ps-256, ps-384 and
    ps-512 (each pinned to its PS alg), a P-521 key (es-512, alg inferred from the curve), an
    Ed25519 key (ed-25519, alg inferred) and an Ed448 key (ed-448, alg given)."""
    class_daemon = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        f = cls.factory
        rsa = f.rsa("pss", alg="PS256")
        cls.pss = {alg: harness.Key("RSA", alg, f"ps-{alg[2:]}", rsa.priv_path, rsa.pub_path)
                   for alg in ("PS256", "PS384", "PS512")}
        cls.es512 = f.ec("es-512", "P-521", kid="es-512")
        cls.ed25519 = f.okp("ed-25519", "Ed25519", kid="ed-25519")
        cls.ed448 = f.okp("ed-448", "Ed448", kid="ed-448")
        # Keys of the same types that revokd does not know.
        cls.strangers = {"RSA": f.rsa("stranger-rsa"), "P-521": f.ec("stranger-521", "P-521"),
                         "Ed25519": f.okp("stranger-25519", "Ed25519"),
                         "Ed448": f.okp("stranger-448", "Ed448")}
        jwks = [k.jwk() for k in cls.pss.values()]
        jwks += [cls.es512.jwk(alg=None), cls.ed25519.jwk(alg=None), cls.ed448.jwk()]
        path = write_jwks(os.path.join(cls.tmp, "algorithms.json"), jwks)
        cls.revokd = harness.Revokd(cls.base_env({"REVOKD_JWKS_FILE": path}),
                                    name=f"{cls.__name__} revokd")
        cls.addClassCleanup(cls.revokd.stop)
        cls.revokd.start()

    def cases(self):
        """(name, key, the stranger of its type)."""
        out = [(alg, key, self.strangers["RSA"]) for alg, key in self.pss.items()]
        out += [("ES512", self.es512, self.strangers["P-521"]),
                ("EdDSA Ed25519", self.ed25519, self.strangers["Ed25519"]),
                ("EdDSA Ed448", self.ed448, self.strangers["Ed448"])]
        return out

    def token(self, key, header=None):
        header = header or {"alg": key.alg, "typ": "JWT", "kid": key.kid}
        return craft(header, std_claims(), key)

    def test_valid_tokens_are_active(self):
        sizes = {"PS256": 256, "PS384": 256, "PS512": 256, "ES512": 132, "EdDSA Ed25519": 64,
                 "EdDSA Ed448": 114}
        for name, key, _ in self.cases():
            with self.subTest(alg=name):
                token = self.token(key)
                self.assertEqual(len(harness.jwt_parts(token)[2]), sizes[name])
                self.assertActive(self.revokd.check(token), token)
                token = self.token(key)
                self.assertActive(self.revokd.check_post(token), token)

    def test_another_key_of_the_same_type(self):
        for name, key, stranger in self.cases():
            with self.subTest(alg=name):
                header = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
                token = craft(header, std_claims(), stranger, alg=key.alg)
                self.assertTokenFailure(self.revokd.check(token), "invalid_signature")

    def test_truncated_and_extended_signatures(self):
        for name, key, _ in self.cases():
            token = self.token(key)
            sig = b64url_decode(token.split(".")[2])
            for how, altered in (("truncated", sig[:-1]), ("extended", sig + b"\0"),
                                 ("zero in front", b"\0" + sig), ("one byte", b"\0")):
                with self.subTest(alg=name, signature=how):
                    self.assertTokenFailure(self.revokd.check(with_signature(token, altered)),
                                            "invalid_signature")
            with self.subTest(alg=name, signature="a bit flipped"):
                flipped = bytearray(sig)
                flipped[len(sig) // 2] ^= 0x10
                self.assertTokenFailure(self.revokd.check(with_signature(token, bytes(flipped))),
                                        "invalid_signature")

    def test_pss_salt_must_be_the_hash_length(self):
        # RFC 7518 3.5: the salt is as long as the hash; signatures with any other salt length
        # are refused, though the key and the hash are right.
        for alg, key in self.pss.items():
            hash_len = int(alg[2:]) // 8
            for salt in ("0", "max", str(hash_len - 1), str(hash_len + 1), "20"):
                with self.subTest(alg=alg, salt=salt):
                    token = pss_token({"alg": alg, "kid": key.kid}, std_claims(), key, salt)
                    self.assertTokenFailure(self.revokd.check(token), "invalid_signature")
            with self.subTest(alg=alg, salt=str(hash_len)):
                token = pss_token({"alg": alg, "kid": key.kid}, std_claims(), key, str(hash_len))
                self.assertActive(self.revokd.check(token), token)

    def test_pss_key_refuses_pkcs1_v15(self):
        # The RS256 signature of the same RSA key, presented as PS256: the key takes PSS only.
        key = self.pss["PS256"]
        token = craft({"alg": "PS256", "kid": key.kid}, std_claims(), key, alg="RS256")
        self.assertTokenFailure(self.revokd.check(token), "invalid_signature")

    def test_alg_other_than_the_keys_is_refused(self):
        rs256 = harness.Key("RSA", "RS256", None, self.pss["PS256"].priv_path)
        cases = [
            # (header alg, kid, signed with, signed as)
            ("RS256", "ps-256", rs256, "RS256"),     # the PSS key's material, PKCS #1 v1.5
            ("PS384", "ps-256", self.pss["PS384"], "PS384"),
            ("PS256", "ps-512", self.pss["PS256"], "PS256"),
            ("ES256", "es-512", self.es512, "ES512"),
            ("ES512", "ed-25519", self.es512, "ES512"),
            ("EdDSA", "es-512", self.ed25519, "EdDSA"),
            ("PS256", "ed-448", self.pss["PS256"], "PS256"),
            ("HS256", "ed-25519", None, None),
        ]
        for alg, kid, signer, signed_as in cases:
            with self.subTest(alg=alg, kid=kid):
                header = {"alg": alg, "typ": "JWT", "kid": kid}
                if signer is None:
                    token = craft(header, std_claims(), signature=b"\1" * 32)
                else:
                    token = craft(header, std_claims(), signer, alg=signed_as)
                self.assertTokenFailure(self.revokd.check(token), "algorithm_not_allowed")

    def test_eddsa_signature_of_the_other_curve(self):
        # Both keys are EdDSA: the kid decides the curve, and a signature of the other one fails.
        token = craft({"alg": "EdDSA", "kid": "ed-448"}, std_claims(), self.ed25519)
        self.assertTokenFailure(self.revokd.check(token), "invalid_signature")
        token = craft({"alg": "EdDSA", "kid": "ed-25519"}, std_claims(), self.ed448)
        self.assertTokenFailure(self.revokd.check(token), "invalid_signature")

    def test_revokectl_mint_count(self):
        # What the load tests mint verifies, one token or many.
        for name, key, _ in self.cases():
            with self.subTest(alg=name):
                out = harness.run_revokectl(["mint", "--key", key.mint_path, "--alg", key.alg,
                                             "--kid", key.kid, "--sub", "user", "--count", "2"])
                self.assertEqual(out.returncode, 0, out.stderr)
                tokens = out.stdout.split()
                self.assertEqual(len(tokens), 2, out.stdout)
                for token in tokens:
                    self.assertEqual(harness.jwt_parts(token)[0],
                                     {"alg": key.alg, "typ": "JWT", "kid": key.kid})
                    self.assertActive(self.revokd.check(token), token)
                out = harness.run_revokectl(["mint", "--key", key.mint_path, "--alg", key.alg,
                                             "--kid", key.kid, "--sub", "user", "--jti", "one"])
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(harness.jwt_parts(out.stdout.strip())[1]["jti"], "one")
                self.assertEqual(harness.jwt_parts(out.stdout.strip())[1]["sub"], "user")
                self.assertActive(self.revokd.check(out.stdout.strip()), out.stdout.strip())
        out = harness.run_revokectl(["mint", "--key", self.es512.mint_path, "--alg", "EdDSA",
                                     "--count", "1"])
        self.assertEqual((out.returncode, out.stdout), (2, ""), out.stderr)
        self.assertIn("does not fit EdDSA", out.stderr)

    def test_without_kid_no_key_is_chosen(self):
        for name, key, _ in self.cases():
            with self.subTest(alg=name):
                token = self.token(key, header={"alg": key.alg, "typ": "JWT"})
                self.assertTokenFailure(self.revokd.check(token), "unknown_key")


class PemInferenceTest(harness.RevokdTestCase):
    """REVOKD_JWT_PUBLIC_KEY_FILE without REVOKD_JWT_PUBLIC_KEY_ALG: Ed25519 and Ed448 keys infer
    EdDSA, a P-521 key ES512; the kid-less key answers tokens without kid."""
    class_daemon = False

    def test_inferred_from_the_key(self):
        for key in (self.factory.okp("pem-25519", "Ed25519"), self.factory.okp("pem-448", "Ed448"),
                    self.factory.ec("pem-521", "P-521")):
            with self.subTest(key=key.curve):
                daemon = self.start_revokd({"REVOKD_JWKS_FILE": None,
                                            "REVOKD_JWT_PUBLIC_KEY_FILE": key.pub_path})
                token = craft({"alg": key.alg, "typ": "JWT"}, std_claims(), key)
                self.assertActive(daemon.check(token), token)
                other = "ES512" if key.alg == "EdDSA" else "EdDSA"
                forged = craft({"alg": other}, std_claims(), key, signature=b"\1" * 64)
                self.assertTokenFailure(daemon.check(forged), "unknown_key")
                daemon.stop()


if __name__ == "__main__":
    harness.main()
