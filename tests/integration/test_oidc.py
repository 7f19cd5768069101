"""revokd against a real OpenID provider (oidc-provider, see idp.py), configured with
REVOKD_ISSUER and REVOKD_OIDC_DISCOVERY=1 only: it finds the key set through the discovery
document, verifies and revokes the provider's access tokens, follows a key rotation, and
becomes ready by itself when the provider comes up after it."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import idp  # noqa: E402
from harness import revokd_key_name  # noqa: E402

# Bounds of the rotation windows (see test_key_rotation). With REVOKD_JWKS_UNKNOWN_KID_INTERVAL=1
# and REVOKD_JWKS_REFRESH_MIN=1 each closes within about a second plus one fetch; the rest is
# room for a loaded machine.
WINDOW_MAX = 5.0
ROUND_LIMIT = 15.0       # longest a phase of checks may run
AFTER_FETCH_ROUNDS = 3   # rounds of checks made once the fetch that closes a window was logged


def discovery_env(issuer, **extra):
    env = {"REVOKD_ISSUER": issuer, "REVOKD_OIDC_DISCOVERY": "1", "REVOKD_JWKS_FILE": None,
           "REVOKD_JWKS_REFRESH_MIN": "1", "REVOKD_JWKS_UNKNOWN_KID_INTERVAL": "1"}
    env.update(extra)
    return env


def fetched_event(daemon, mark, keys):
    """The first successful fetch logged after mark that left `keys` keys in force, or None."""
    for o in daemon.json_logs(mark):
        if isinstance(o, dict) and o.get("event") == "jwks_fetched" and o.get("result") == "ok" \
                and o.get("keys") == keys:
            return o
    return None


class Check:
    """One check made during a rotation: what was sent, when, whether the fetch that closes the
    phase's window had been logged before it was sent, and the answer."""

    def __init__(self, label, sent, after_fetch, resp):
        self.label, self.sent, self.after_fetch = label, sent, after_fetch
        self.status = resp.status
        body = resp.json()
        self.reason = body.get("reason") if resp.status == 401 else None

    @property
    def accepted(self):
        return self.status == 200

    def __repr__(self):
        return (f"{self.label:>6} t={self.sent:8.3f} {'after ' if self.after_fetch else 'before'} fetch "
                f"-> {self.status} {self.reason or ''}")


class OidcTest(harness.RevokdTestCase):
    class_daemon = False

    def provider(self, keys, **kw):
        p = idp.OidcProvider(self.tmp, keys, **kw)
        self.addCleanup(p.stop)
        return p

    def run_phase(self, daemon, tokens, mark, keys):
        """Checks every token in turn, round after round, until AFTER_FETCH_ROUNDS rounds were
        sent after the fetch leaving `keys` keys was logged (at most ROUND_LIMIT seconds).
        Returns (checks, the fetch's log line)."""
        checks, rounds_after, start = [], 0, time.monotonic()
        while rounds_after < AFTER_FETCH_ROUNDS:
            if time.monotonic() - start > ROUND_LIMIT:
                self.fail(f"no fetch leaving {keys} keys within {ROUND_LIMIT}s; checks:\n"
                          + "\n".join(map(repr, checks)))
            after = fetched_event(daemon, mark, keys) is not None
            for label, token in tokens:
                sent = time.monotonic()
                checks.append(Check(label, sent - start, after, daemon.check(token)))
            rounds_after += after
            time.sleep(0.05)
        return checks, fetched_event(daemon, mark, keys)

    def assertSwitch(self, checks, label, before_ok, at_least_one_before):
        """The checks of `label` answer one way, then (from one check on) the other, and never
        back: before_ok True means accepted then refused (unknown_key), False the reverse. No
        check sent after the fetch was logged gets the old answer; with at_least_one_before, the
        first check must get the old answer. Returns (first, last) checks with the old answer."""
        mine = [c for c in checks if c.label == label]
        listing = "\n".join(map(repr, checks))
        old = [c for c in mine if c.accepted == before_ok]
        new = [c for c in mine if c.accepted != before_ok]
        self.assertTrue(new, f"{label}: never switched:\n{listing}")
        self.assertEqual(mine, old + new, f"{label}: switched back and forth:\n{listing}")
        for c in mine:
            if not c.accepted:
                self.assertEqual((c.status, c.reason), (401, "unknown_key"), f"{label}: {c}\n{listing}")
            if c.after_fetch:
                self.assertNotEqual(c.accepted, before_ok, f"{label}: old answer after the fetch:\n{listing}")
        if at_least_one_before:
            self.assertTrue(old, f"{label}: the first check did not get the old answer:\n{listing}")
        return (old[0], old[-1]) if old else (None, None)

    def assertAllAccepted(self, checks, label):
        listing = "\n".join(map(repr, checks))
        mine = [c for c in checks if c.label == label]
        self.assertTrue(mine)
        self.assertTrue(all(c.accepted for c in mine), f"{label} refused:\n{listing}")

    def test_discovery_verifies_and_revokes(self):
        provider = self.provider([idp.private_jwk_rsa("k-1")])
        mark = 0
        daemon = self.start_revokd(discovery_env(provider.issuer))
        self.wait_ready(daemon, stable=1)
        fetched = harness.wait_until(lambda: fetched_event(daemon, mark, 1), 5, what="the fetch log line")
        self.assertEqual((fetched["issuer"], fetched["url"]), (provider.issuer, provider.jwks_url))
        ready = self.assertJsonResponse(daemon.readyz(), 200)
        entry = ready["issuers"]
        self.assertEqual(len(entry), 1)
        self.assertIsInstance(entry[0].pop("age_seconds"), int)
        self.assertEqual(entry[0], {"iss": provider.issuer, "source": "discovery", "keys": 1,
                                    "last_fetch": "ok", "stale": False})

        token = provider.token()
        header, claims, _ = harness.jwt_parts(token)
        self.assertEqual((header["typ"], header["kid"]), ("at+jwt", "k-1"))
        body = self.assertActive(daemon.check(token), token)
        self.assertEqual(body["iss"], provider.issuer)
        self.assertEqual(body["sub"], idp.DEFAULT_CLIENT["client_id"])
        self.assertEqual(body["jti"], claims["jti"])

        body = self.assertJsonResponse(daemon.revoke(token), 200)
        self.assertEqual(body, {"revoked": True, "jti": claims["jti"], "iss": provider.issuer,
                                "expires_at": claims["exp"] + harness.DEFAULT_LEEWAY, "expired": False})
        key = revokd_key_name("jti", provider.issuer, claims["jti"])
        # Besides the readiness probe's own short-lived key, only the revocation.
        self.assertEqual([k for k in self.redis.keys() if not k.endswith("readyz")], [key])
        self.assertEqual(self.redis.expiretime(key), claims["exp"] + harness.DEFAULT_LEEWAY)
        self.assertTokenFailure(daemon.check(token), "revoked")
        self.assertTokenFailure(daemon.check_post(token), "revoked")
        self.assertTokenFailure(daemon.lookup(jti=claims["jti"]), "revoked")
        other = provider.token()
        self.assertActive(daemon.check(other), other)

    def test_key_rotation(self):
        """A rotation in two restarts of the provider, each check listed and judged.

        Phase 1, [new, old] with new signing: revokd holds [old] and, the provider's first answer
        having said max-age=60, would not fetch again for a minute. The first check of a new-key
        token finds no such kid: it is refused unknown_key at once and fetches the set early.
        Allowed window: new-key tokens refused (unknown_key only) until that fetch is done; no
        refusal once its log line was seen, never accepted-then-refused. Old-key tokens: no
        window, always accepted (the old key is in both sets).

        Phase 2, [new] only: the provider now says max-age=1, so revokd fetches every second
        (REVOKD_JWKS_REFRESH_MIN=1). Allowed window: old-key tokens, cached or not, accepted until
        that fetch is done, refused unknown_key from then on (the cache is cleared when a key
        goes) and never accepted again. New-key tokens: no window, always accepted."""
        old, new = idp.private_jwk_rsa("old"), idp.private_jwk_rsa("new")
        provider = self.provider([old], jwks_max_age=60)
        daemon = self.start_revokd(discovery_env(provider.issuer))
        self.wait_ready(daemon, stable=1)
        old_tokens = [provider.token() for _ in range(4)]
        self.assertEqual({harness.jwt_parts(t)[0]["kid"] for t in old_tokens}, {"old"})
        self.assertActive(daemon.check(old_tokens[0]), old_tokens[0])   # cached from now on

        # Phase 1.
        provider.jwks_max_age = 1
        mark = daemon.log_mark()
        provider.restart([new, old])
        new_token = provider.token()
        self.assertEqual(harness.jwt_parts(new_token)[0]["kid"], "new")
        checks, fetched = self.run_phase(daemon, [("new", new_token), ("old", old_tokens[0]),
                                                  ("old-2", old_tokens[1])], mark, 2)
        self.assertAllAccepted(checks, "old")
        self.assertAllAccepted(checks, "old-2")
        first, last = self.assertSwitch(checks, "new", before_ok=False, at_least_one_before=True)
        self.assertLess(last.sent - first.sent, WINDOW_MAX, "\n".join(map(repr, checks)))
        self.assertEqual(fetched["url"], provider.jwks_url)
        fresh = provider.token()
        self.assertActive(daemon.check(fresh), fresh)

        # Phase 2.
        mark = daemon.log_mark()
        provider.restart([new])
        checks, fetched = self.run_phase(daemon, [("new", new_token), ("cached", old_tokens[0]),
                                                  ("old-3", old_tokens[2])], mark, 1)
        self.assertAllAccepted(checks, "new")
        for label in ("cached", "old-3"):
            self.assertSwitch(checks, label, before_ok=True, at_least_one_before=False)
            # Times count from the phase's start, when the provider serves [new] already.
            first_refused = next(c for c in checks if c.label == label and not c.accepted)
            self.assertLess(first_refused.sent, WINDOW_MAX, "\n".join(map(repr, checks)))
        # A token of the withdrawn key never seen before is refused too.
        self.assertTokenFailure(daemon.check(old_tokens[3]), "unknown_key")
        fresh = provider.token()
        self.assertActive(daemon.check(fresh), fresh)
        entry = daemon.readyz().json()["issuers"][0]
        self.assertEqual((entry["keys"], entry["last_fetch"]), (1, "ok"))

    def test_provider_down_at_start(self):
        port = harness.free_port()
        issuer = f"http://{harness.LOOPBACK}:{port}"
        daemon = self.start_revokd(discovery_env(issuer))
        failed = harness.wait_until(
            lambda: next((o for o in daemon.json_logs() if isinstance(o, dict)
                          and o.get("event") == "jwks_fetch_failed"), None), 10, what="a failed fetch")
        self.assertEqual((failed["issuer"], failed["result"], failed["keeping_last_good_set"]),
                         (issuer, "network_error", False))
        body = self.assertError(daemon.readyz(), 503, "keys_unavailable")
        self.assertEqual(body["status"], "not_ready")
        self.assertEqual(body["issuers"], [{"iss": issuer, "source": "discovery", "keys": 0, "age_seconds": None,
                                            "last_fetch": "network_error", "stale": False}])
        # A token of that issuer is neither active nor invalid: its keys are unknown yet.
        key = idp.private_jwk_rsa("k-1", pem_path=os.path.join(self.tmp, "down.key.pem"))
        signer = harness.Key("RSA", "RS256", "k-1", priv_path=os.path.join(self.tmp, "down.key.pem"))
        early = harness.craft({"alg": "RS256", "typ": "at+jwt", "kid": "k-1"},
                              harness.std_claims(iss=issuer), signer)
        self.assertError(daemon.check(early), 503, "keys_unavailable")

        provider = self.provider([key], port=port)
        self.assertEqual(provider.issuer, issuer)
        started = time.monotonic()
        # Failed fetches are retried after at most REVOKD_JWKS_REFRESH_MIN (1 s).
        self.wait_ready(daemon, stable=1, timeout=WINDOW_MAX)
        self.assertLess(time.monotonic() - started, WINDOW_MAX)
        self.assertActive(daemon.check(early), early)
        token = provider.token()
        self.assertActive(daemon.check(token), token)
        entry = daemon.readyz().json()["issuers"][0]
        self.assertEqual((entry["keys"], entry["last_fetch"], entry["stale"]), (1, "ok", False))


if __name__ == "__main__":
    harness.main()
