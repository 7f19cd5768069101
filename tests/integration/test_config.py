"""Configuration: --help, bad settings (exit 2, one line naming the setting), env and flag forms,
and settings whose effect is visible from outside (leeway, limits, key prefix, Redis URL forms,
listen address), plus shutdown on SIGTERM."""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import key_name, now, token_id  # noqa: E402


class ConfigErrorTest(harness.RevokdTestCase):
    """Start-up failures. Each case has everything else valid, so the error is the one named."""
    class_daemon = False

    def valid_env(self, **overrides):
        env = self.base_env()
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def assertConfigError(self, names, args=(), env=None):
        out = harness.run_revokd(args, env if env is not None else self.valid_env())
        self.assertEqual(out.returncode, 2, f"exit {out.returncode}; stderr: {out.stderr!r}")
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"want one line on stderr, got: {out.stderr!r}")
        names = (names,) if isinstance(names, str) else names
        self.assertTrue(any(n in lines[0] for n in names), f"{lines[0]!r} names none of {names}")
        return lines[0]

    def path(self, name, content):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
        return p

    def test_help_lists_every_setting(self):
        out = harness.run_revokd(["--help"])
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout + out.stderr
        missing = [s for s in harness.SETTINGS if s not in text]
        self.assertEqual(missing, [], f"--help does not mention {missing}")

    def test_unknown_flag(self):
        line = self.assertConfigError("--no-such-flag", ["--no-such-flag"])
        self.assertIn("revokd", line)
        self.assertConfigError("--bogus", ["--bogus=1"])

    def test_unparsable_numbers(self):
        for setting, value in (("REVOKD_LEEWAY", "abc"), ("REVOKD_LEEWAY", "3601"), ("REVOKD_LEEWAY", "-1"),
                               ("REVOKD_LEEWAY", "5s"), ("REVOKD_LEEWAY", "1e2"),
                               ("REVOKD_MAX_TOKEN_LIFETIME", "abc"),
                               ("REVOKD_THREADS", "many"), ("REVOKD_MAX_BODY_BYTES", "lots"),
                               ("REVOKD_MAX_TOKEN_BYTES", "-5"), ("REVOKD_REDIS_TIMEOUT_MS", "fast"),
                               ("REVOKD_LEEWAY", "99999999999999999999999")):
            with self.subTest(setting=setting, value=value):
                line = self.assertConfigError(setting, env=self.valid_env(**{setting: value}))
                self.assertTrue(line.startswith("revokd"), line)

    def test_unparsable_value_given_as_flag(self):
        for args in (["--leeway", "abc"], ["--leeway=abc"], ["--max-token-lifetime", "x"]):
            with self.subTest(args=args):
                setting = args[0].split("=")[0][2:]
                env_name = "REVOKD_" + setting.upper().replace("-", "_")
                self.assertConfigError((env_name, "--" + setting), args)

    def test_flag_missing_value(self):
        self.assertConfigError(("REVOKD_LEEWAY", "--leeway"), ["--leeway"])

    def test_bad_strings(self):
        for setting, value in (("REVOKD_LISTEN", "nonsense"), ("REVOKD_LISTEN", "127.0.0.1:99999"),
                               ("REVOKD_LISTEN", "127.0.0.1:"), ("REVOKD_REDIS_URL", "http://127.0.0.1:6379/0"),
                               ("REVOKD_REDIS_URL", "redis://127.0.0.1:6379/notadb"),
                               ("REVOKD_LOG_LEVEL", "loud"), ("REVOKD_REDIS_SOURCE_ADDRESS", "localhost"),
                               ("REVOKD_REDIS_SOURCE_ADDRESS", "127.0.0.1:6379"),
                               ("REVOKD_REDIS_SOURCE_ADDRESS", "127.0.0.256")):
            with self.subTest(setting=setting, value=value):
                self.assertConfigError(setting, env=self.valid_env(**{setting: value}))

    def test_long_issuer_stops_start_up(self):
        """An issuer longer than the 256 bytes a token's iss may have could never match one: it
        once started, answered every token invalid_claims, cut lookups to 256 bytes, and aborted
        on the first admin revoke."""
        for length in (257, 300, 512, 513, 600):
            with self.subTest(length=length):
                line = self.assertConfigError("REVOKD_ISSUER",
                                              env=self.valid_env(REVOKD_ISSUER="i" * length))
                self.assertIn(f"{length} bytes", line)
        self.assertConfigError(("REVOKD_ISSUER", "--issuer"), ["--issuer", "i" * 600], env=self.valid_env())

    def test_every_text_setting_is_bounded(self):
        """Every text setting has a length bound, checked before anything uses it."""
        limits = {"REVOKD_LISTEN": 80, "REVOKD_ADMIN_LISTEN": 80, "REVOKD_TLS_CERT_FILE": 4095,
                  "REVOKD_TLS_KEY_FILE": 4095, "REVOKD_ADMIN_TLS_CERT_FILE": 4095,
                  "REVOKD_ADMIN_TLS_KEY_FILE": 4095, "REVOKD_REDIS_URL": 1024, "REVOKD_SENTINELS": 2048,
                  "REVOKD_SENTINEL_MASTER": 127, "REVOKD_REDIS_SOURCE_ADDRESS": 45, "REVOKD_JWKS_FILE": 4095,
                  "REVOKD_JWT_PUBLIC_KEY_FILE": 4095, "REVOKD_JWT_PUBLIC_KEY_ALG": 16,
                  "REVOKD_JWT_HMAC_SECRET_FILE": 4095, "REVOKD_JWT_HMAC_ALG": 16, "REVOKD_ISSUER": 256,
                  "REVOKD_AUDIENCE": 256, "REVOKD_ADMIN_KEYS_FILE": 4095, "REVOKD_KEY_PREFIX": 64,
                  "REVOKD_LOG_LEVEL": 16, "REVOKD_ISSUERS_FILE": 4095, "REVOKD_JWKS_URL": 2048,
                  "REVOKD_OIDC_DISCOVERY": 1, "REVOKD_ALGORITHMS": 256, "REVOKD_CA_FILE": 4095,
                  "REVOKD_CLIENTS_FILE": 4095, "REVOKD_MODE": 16, "REVOKD_FEED_URL": 2048, "REVOKD_CENTRAL_ADMIN_URL": 2048,
                  "REVOKD_FEED_KEY_FILE": 4095, "REVOKD_FEED_KEYS_FILE": 4095}
        texts = {row["env"]: row for row in harness.CONFIG.values() if row["type"] not in harness.NUMBER_TYPES}
        self.assertEqual(set(texts), set(limits), "a text setting without a pinned bound here")
        markdown = harness.run_revokd(["--config-markdown"]).stdout
        for setting, limit in limits.items():
            with self.subTest(setting=setting):
                self.assertEqual(texts[setting]["max"], limit)
                shown = f"one of {texts[setting]['choices'].lstrip('|')}" if "choices" in texts[setting] \
                    else f"at most {limit} bytes"
                self.assertIn(f"({shown})", next(line for line in markdown.splitlines() if f"`{setting}`" in line))
                line = self.assertConfigError(setting, env=self.valid_env(**{setting: "x" * (limit + 1)}))
                self.assertIn(f"{limit + 1} bytes", line)
        for setting in ("REVOKD_LISTEN", "REVOKD_REDIS_URL", "REVOKD_KEY_PREFIX", "REVOKD_LOG_LEVEL"):
            with self.subTest(empty=setting):
                self.assertIn("must not be empty",
                              self.assertConfigError(setting, env=self.valid_env(**{setting: ""})))

    def test_issuer_at_its_limit_works_everywhere(self):
        """256 bytes, the longest iss a token may carry, is usable by every path that names the
        issuer: checks, lookups and admin revocations."""
        iss = "https://" + "i" * 248
        self.assertEqual(len(iss), 256)
        admin_keys = harness.write_admin_keys(os.path.join(self.tmp, "keys-issuer"), ["k" * 32])
        daemon = self.start_revokd({"REVOKD_ISSUER": iss, "REVOKD_ADMIN_KEYS_FILE": admin_keys})
        token = self.mint(sub="ivy", iss=iss, jti="jti-long-iss")
        self.assertActive(daemon.check(token), token)
        self.assertJsonResponse(daemon.admin_revoke("k" * 32, {"jti": "jti-long-iss", "exp": now() + 600}), 200)
        self.assertTrue(self.redis.exists(key_name("jti", iss, "jti-long-iss")))
        self.assertTokenFailure(daemon.check(token), "revoked")
        self.assertEqual(self.assertJsonResponse(daemon.lookup(jti="jti-long-iss"), 401)["reason"], "revoked")
        self.assertJsonResponse(daemon.admin_revoke_all("k" * 32, "ivy"), 200)
        self.assertTrue(self.redis.exists(key_name("sub", iss, "ivy")))
        self.assertTrue(daemon.alive())

    def test_bad_algorithm_settings(self):
        secret = self.path("hs.secret", "s" * 64)
        for env in ({"REVOKD_JWT_HMAC_SECRET_FILE": secret, "REVOKD_JWT_HMAC_ALG": "RS256"},
                    {"REVOKD_JWT_HMAC_SECRET_FILE": secret, "REVOKD_JWT_HMAC_ALG": "hs999"},
                    {"REVOKD_JWT_PUBLIC_KEY_FILE": self.keys["rsa"].pub_path, "REVOKD_JWT_PUBLIC_KEY_ALG": "HS256"},
                    {"REVOKD_JWT_PUBLIC_KEY_FILE": self.keys["rsa"].pub_path, "REVOKD_JWT_PUBLIC_KEY_ALG": "XX1"}):
            setting = next(k for k in env if k.endswith("_ALG"))
            with self.subTest(setting=setting, value=env[setting]):
                self.assertConfigError(setting, env=self.valid_env(**env))

    def test_missing_key_files(self):
        missing = os.path.join(self.tmp, "does-not-exist")
        for setting in ("REVOKD_JWKS_FILE", "REVOKD_JWT_PUBLIC_KEY_FILE", "REVOKD_JWT_HMAC_SECRET_FILE",
                        "REVOKD_ADMIN_KEYS_FILE", "REVOKD_FEED_KEYS_FILE"):
            with self.subTest(setting=setting):
                self.assertConfigError(setting, env=self.valid_env(**{setting: missing}))
        flag_line = self.assertConfigError(("REVOKD_JWKS_FILE", "--jwks-file"), ["--jwks-file", missing],
                                           env=self.valid_env(REVOKD_JWKS_FILE=None))
        self.assertIn("revokd", flag_line)

    def test_no_key_at_all(self):
        out = harness.run_revokd([], self.valid_env(REVOKD_JWKS_FILE=None))
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)

    def test_bad_key_material(self):
        small = self.factory.rsa("rsa-1024", bits=1024, kid="small")
        cases = [
            ("REVOKD_JWKS_FILE", self.path("bad.json", "{not json")),
            ("REVOKD_JWKS_FILE", self.path("nokeys.json", '{"keys": "x"}')),
            ("REVOKD_JWKS_FILE", harness.write_jwks(os.path.join(self.tmp, "small.json"), [small.jwk()])),
            ("REVOKD_JWKS_FILE", harness.write_jwks(os.path.join(self.tmp, "noalg.json"),
                                                    [self.keys["rsa"].jwk(alg=None)])),
            ("REVOKD_JWKS_FILE", harness.write_jwks(os.path.join(self.tmp, "octnoalg.json"),
                                                    [self.keys["hs"].jwk(alg=None)])),
            ("REVOKD_JWT_PUBLIC_KEY_FILE", small.pub_path),
            ("REVOKD_JWT_PUBLIC_KEY_FILE", self.path("garbage.pem", "-----BEGIN PUBLIC KEY-----\nxx\n")),
        ]
        for setting, path in cases:
            with self.subTest(setting=setting, file=os.path.basename(path)):
                env = self.valid_env(REVOKD_JWKS_FILE=None)
                env[setting] = path
                self.assertConfigError(setting, env=env)

    def test_hmac_secret_minimum_length(self):
        for alg, size in (("HS256", 32), ("HS384", 48), ("HS512", 64)):
            with self.subTest(alg=alg):
                short = self.path(f"short-{alg}", "s" * (size - 1))
                self.assertConfigError("REVOKD_JWT_HMAC_SECRET_FILE", env=self.valid_env(
                    REVOKD_JWKS_FILE=None, REVOKD_JWT_HMAC_SECRET_FILE=short, REVOKD_JWT_HMAC_ALG=alg))
                # The trailing newline is not part of the secret.
                short_nl = self.path(f"short-nl-{alg}", "s" * (size - 1) + "\n")
                self.assertConfigError("REVOKD_JWT_HMAC_SECRET_FILE", env=self.valid_env(
                    REVOKD_JWKS_FILE=None, REVOKD_JWT_HMAC_SECRET_FILE=short_nl, REVOKD_JWT_HMAC_ALG=alg))

    def test_short_admin_key(self):
        path = self.path("admin-short", "# comment\nthis-key-is-long-enough-1234\nshort-key-15chr\n")
        self.assertConfigError("REVOKD_ADMIN_KEYS_FILE", env=self.valid_env(REVOKD_ADMIN_KEYS_FILE=path))
        self.assertConfigError("REVOKD_FEED_KEYS_FILE", env=self.valid_env(REVOKD_FEED_KEYS_FILE=path))

    def test_key_name_command(self):
        for kind, iss, value in (("jti", "https://i.test", "abc"), ("sub", "", "alice")):
            with self.subTest(kind=kind):
                self.assertEqual(harness.revokd_key_name(kind, iss, value), key_name(kind, iss, value))


class ConfigStartTest(harness.RevokdTestCase):
    """Settings that start fine, and their visible effect."""
    class_daemon = False

    def test_leeway_flag_forms(self):
        t = now()
        just_expired = self.craft(payload=harness.std_claims(iat=t - 100, exp=t))
        for args in (["--leeway=0"], ["--leeway", "0"]):
            with self.subTest(args=args):
                daemon = self.start_revokd(args=args)
                self.assertTokenFailure(daemon.check(just_expired), "expired")
        daemon = self.start_revokd({"REVOKD_LEEWAY": "0"})
        self.assertTokenFailure(daemon.check(just_expired), "expired")
        daemon = self.start_revokd()  # default leeway 30
        self.assertActive(daemon.check(just_expired), just_expired)

    def test_leeway_changes_revocation_expiry(self):
        daemon = self.start_revokd({"REVOKD_LEEWAY": "120"})
        token = self.mint(sub="alice", ttl=600)
        body = self.assertJsonResponse(daemon.revoke(token), 200)
        exp = harness.jwt_parts(token)[1]["exp"]
        self.assertEqual(body["expires_at"], exp + 120)
        self.assertEqual(self.redis.expiretime(key_name("jti", "", token_id(token))), exp + 120)

    def test_issuer_and_audience_flags(self):
        daemon = self.start_revokd(args=["--issuer", "https://flag.test", "--audience=flag-aud"])
        good = self.mint(iss="https://flag.test", aud="flag-aud")
        self.assertActive(daemon.check(good), good)
        self.assertTokenFailure(daemon.check(self.mint(iss="https://x.test", aud="flag-aud")), "invalid_issuer")
        self.assertTokenFailure(daemon.check(self.mint(iss="https://flag.test", aud="x")), "invalid_audience")

    def test_key_prefix(self):
        daemon = self.start_revokd({"REVOKD_KEY_PREFIX": "custom-prefix/"})
        token = self.mint(sub="bob")
        self.assertJsonResponse(daemon.revoke(token), 200)
        expected = key_name("jti", "", token_id(token), prefix="custom-prefix/")
        self.assertEqual(self.redis.keys(), [expected])
        self.assertTokenFailure(daemon.check(token), "revoked")
        # Another prefix is another keyspace.
        other = self.start_revokd()
        self.assertActive(other.check(token), token)

    def test_redis_database_number(self):
        daemon = self.start_revokd({"REVOKD_REDIS_URL": self.redis.url(db=3)})
        token = self.mint(sub="carol")
        self.assertJsonResponse(daemon.revoke(token), 200)
        key = key_name("jti", "", token_id(token))
        self.assertEqual(self.redis.keys(db=0), [])
        self.assertEqual(self.redis.keys(db=3), [key])

    def test_redis_password(self):
        secured = harness.RedisServer(self.tmp, password="s3cretPassw0rd").start()
        self.addCleanup(secured.stop)
        daemon = self.start_revokd({"REVOKD_REDIS_URL": secured.url(db=1)})
        self.assertEqual(self.assertJsonResponse(daemon.readyz(), 200)["store"]["address"], secured.address())
        token = self.mint(sub="dave")
        self.assertJsonResponse(daemon.revoke(token), 200)
        self.assertTrue(secured.exists(key_name("jti", "", token_id(token)), db=1))
        self.assertEqual(secured.keys("*:j:*", db=0), [])
        self.assertTokenFailure(daemon.check(token), "revoked")

    def test_redis_password_is_percent_decoded(self):
        # A password with URL-reserved characters travels percent-encoded in the URL.
        secured = harness.RedisServer(self.tmp, password="p@ss:w/rd!#1").start()
        self.addCleanup(secured.stop)
        self.assertIn("%40", secured.url())
        daemon = self.start_revokd({"REVOKD_REDIS_URL": secured.url(db=0)})
        self.assertJsonResponse(daemon.readyz(), 200)
        token = self.mint(sub="dora")
        self.assertJsonResponse(daemon.revoke(token), 200)
        self.assertTrue(secured.exists(key_name("jti", "", token_id(token))))
        # The same password sent undecoded is refused by Redis: not ready.
        raw = self.start_revokd({"REVOKD_REDIS_URL": f"redis://:p%2540ss@{secured.address()}/0"})
        self.assertEqual(raw.readyz().status, 503)

    def test_redis_unix_socket(self):
        unix = harness.RedisServer(self.tmp, unix_socket=True).start()
        self.addCleanup(unix.stop)
        daemon = self.start_revokd({"REVOKD_REDIS_URL": f"unix://{unix.unix_path}?db=2"})
        self.assertJsonResponse(daemon.readyz(), 200)
        token = self.mint(sub="erin")
        self.assertJsonResponse(daemon.revoke(token), 200)
        self.assertTrue(unix.exists(key_name("jti", "", token_id(token)), db=2))
        self.assertEqual(unix.keys("*:j:*", db=0), [])

    def test_limits(self):
        daemon = self.start_revokd({"REVOKD_MAX_TOKEN_BYTES": "1024", "REVOKD_MAX_BODY_BYTES": "2048"})
        token = self.mint(sub="frank")
        self.assertLess(len(token), 1024)
        self.assertActive(daemon.check(token), token)
        big = self.mint(sub="frank", claims={"pad": "p" * 700})
        self.assertTrue(1024 < len(big) < 1900, len(big))
        self.assertTokenFailure(daemon.check(big), "malformed")
        self.assertTokenFailure(daemon.check_post(big), "malformed")
        resp = daemon.request("POST", "/v1/check", {"token": "x" * 2100})
        self.assertError(resp, 413, "payload_too_large")

    def test_max_token_lifetime(self):
        daemon = self.start_revokd({"REVOKD_MAX_TOKEN_LIFETIME": "60"})
        t = now()
        self.assertActive(daemon.check(self.mint(iat=t, exp=t + 60)))
        self.assertTokenFailure(daemon.check(self.mint(iat=t, exp=t + 61)), "lifetime_exceeded")

    def test_listen_fixed_port(self):
        port = harness.free_port()
        daemon = self.start_revokd({"REVOKD_LISTEN": f"127.0.0.1:{port}"})
        self.assertEqual(daemon.port, port)
        self.assertJsonResponse(daemon.healthz(), 200)

    def test_listen_ipv6_loopback(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        daemon = self.start_revokd(args=["--listen", "[::1]:0"])
        resp = harness.http_request(daemon.port, "GET", "/healthz", host="::1")
        self.assertEqual(resp.status, 200)
        with self.assertRaises(OSError):
            harness.http_request(daemon.port, "GET", "/healthz", timeout=2)  # not on 127.0.0.1

    def test_log_levels(self):
        for level in ("debug", "info", "warn", "error"):
            with self.subTest(level=level):
                # Above info the listening line may be filtered: use a known port.
                port = harness.free_port()
                daemon = self.start_revokd({"REVOKD_LOG_LEVEL": level, "REVOKD_LISTEN": f"127.0.0.1:{port}"},
                                           wait_for_log=False)
                self.assertJsonResponse(daemon.healthz(), 200)

    def test_sigterm_stops_promptly(self):
        daemon = self.start_revokd()
        self.assertJsonResponse(daemon.healthz(), 200)
        start = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(10)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(code, 0, daemon.log_text())


if __name__ == "__main__":
    harness.main()
