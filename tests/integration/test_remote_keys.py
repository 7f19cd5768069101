"""Remote key sets: REVOKD_JWKS_URL and REVOKD_OIDC_DISCOVERY, fetched by revokd from a JwksServer
(idp.py) on loopback. Start-up without keys (503 keys_unavailable until a fetch succeeds), every
fetch failure keeping the last good set in force (stale in /readyz and /metrics, a
jwks_fetch_failed line), unusable keys skipped, the refresh schedule from Cache-Control and
Expires within REVOKD_JWKS_REFRESH_MIN/MAX, the early fetch on an unknown kid and its rate limit,
key rotation including tokens already in the verified-token cache, HTTPS with REVOKD_CA_FILE,
OpenID and RFC 8414 discovery, and the settings refused at start-up."""

import math
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import std_claims, wait_until  # noqa: E402
from idp import JwksServer, TlsFiles  # noqa: E402

# Every result a fetch counts under in revokd_jwks_fetches_total.
RESULTS = ("ok", "network_error", "http_error", "too_large", "invalid", "no_usable_key",
           "discovery_error")
YEAR = 365 * 24 * 3600


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, brace, labels = series.partition("{")
        pairs = []
        if brace:
            for part in labels.rstrip("}").split('",'):
                if part:
                    k, _, v = part.partition("=")
                    pairs.append((k, v.strip('"')))
        out[(name, tuple(sorted(pairs)))] = float(value)
    return out


class RemoteKeysCase(harness.RevokdTestCase):
    """Each test starts its own revokd (and JwksServer); Redis is the class's."""
    class_daemon = False

    def serve(self, keys=None, **kw):
        """A JwksServer serving `keys` (default the standard JWKS), stopped at cleanup."""
        server = JwksServer(keys=harness.standard_jwks() if keys is None else keys, **kw)
        self.addCleanup(server.stop)
        return server

    def remote_env(self, url, **extra):
        env = {"REVOKD_JWKS_FILE": None, "REVOKD_JWKS_URL": url,
               "REVOKD_JWKS_REFRESH_MIN": "1", "REVOKD_JWKS_REFRESH_MAX": "3600",
               "REVOKD_JWKS_UNKNOWN_KID_INTERVAL": "1", "REVOKD_JWKS_FETCH_TIMEOUT_MS": "500"}
        env.update(extra)
        return env

    def start_remote(self, url, **extra):
        return self.start_revokd(self.remote_env(url, **extra))

    # What revokd says ----------------------------------------------------------------------------
    def fetch_events(self, daemon, start=0, event=None, result=None):
        """The jwks_fetched / jwks_fetch_failed lines since log mark `start`."""
        names = (event,) if event else ("jwks_fetched", "jwks_fetch_failed")
        return [o for o in daemon.json_logs(start) if isinstance(o, dict) and o.get("event") in names
                and (result is None or o.get("result") == result)]

    def wait_fetch_event(self, daemon, start=0, event="jwks_fetched", result=None, count=1,
                         timeout=6.0):
        """The count-th fetch line (of that event and result) since log mark `start`."""
        lines = wait_until(lambda: (lambda got: got if len(got) >= count else None)(
            self.fetch_events(daemon, start, event, result)), timeout,
            what=f"{count} {event} line(s) with result {result}")
        return lines[count - 1]

    def issuer_status(self, daemon, status=200):
        """(/readyz body, its one issuer entry), asserting the status."""
        resp = daemon.readyz()
        body = self.assertJsonResponse(resp, status)
        self.assertEqual(len(body.get("issuers", [])), 1, body)
        return body, body["issuers"][0]

    def metrics(self, daemon):
        resp = daemon.request("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        return parse_metrics(resp.body.decode())

    def jwks_metrics(self, daemon, iss=""):
        """{"keys": n, "age": n or None, "stale": n, "fetches": {result: n}} for issuer iss."""
        m = self.metrics(daemon)
        lab = (("issuer", iss),)
        fetches = {}
        for (name, labels), value in m.items():
            if name == "revokd_jwks_fetches_total" and dict(labels).get("issuer") == iss:
                fetches[dict(labels)["result"]] = int(value)
        return {"keys": m.get(("revokd_jwks_keys", lab)), "age": m.get(("revokd_jwks_age_seconds", lab)),
                "stale": m.get(("revokd_jwks_stale", lab)), "fetches": fetches,
                "cache_hits": m.get(("revokd_token_cache_hits_total", ()))}

    def assertIssuer(self, entry, keys, iss="", source="jwks_url", last_fetch="ok", stale=False):
        self.assertEqual(entry.get("iss"), iss, entry)
        self.assertEqual(entry.get("source"), source, entry)
        self.assertEqual(entry.get("keys"), keys, entry)
        self.assertEqual(entry.get("last_fetch"), last_fetch, entry)
        self.assertIs(entry.get("stale"), stale, entry)
        if keys:
            self.assertIsInstance(entry.get("age_seconds"), int, entry)
            self.assertGreaterEqual(entry["age_seconds"], 0, entry)
        else:
            self.assertIsNone(entry.get("age_seconds", "missing"), entry)

    def assertKeysUnavailable(self, daemon, token):
        self.assertError(daemon.check(token), 503, "keys_unavailable")

    # Tokens -------------------------------------------------------------------------------------
    def fresh(self, name="rsa", kid=..., **claims):
        """A new token (own jti, so never in the cache) of standard key `name`, hand-signed."""
        key = self.keys[name]
        header = {"alg": key.alg, "typ": "JWT"}
        kid = key.kid if kid is ... else kid
        if kid is not None:
            header["kid"] = kid
        return harness.craft(header, std_claims(**claims), key)

    def assertVerifies(self, daemon, name="rsa", **claims):
        token = self.fresh(name, **claims)
        self.assertActive(daemon.check(token), token)
        return token


# ---------------------------------------------------------------------------------------------

class HappyPathTest(RemoteKeysCase):

    def test_fetched_set_verifies_every_standard_key(self):
        server = self.serve()
        d = self.start_remote(server.url)
        line = self.wait_fetch_event(d)
        self.assertEqual(line["issuer"], "", line)
        self.assertEqual(line["url"], server.url, line)
        self.assertEqual(line["result"], "ok", line)
        self.assertEqual(line["keys"], 5, line)
        self.assertNotIn("skipped", line)
        self.assertEqual(line["next_fetch_in_s"], 3600, line)  # no caching header: REFRESH_MAX
        self.assertEqual(line.get("level"), "info", line)

        for name in ("rsa", "rsa2", "ec256", "ec384", "hs"):
            with self.subTest(key=name):
                self.assertVerifies(d, name)
        # revokectl's tokens too, with iss absent (REVOKD_ISSUER unset: issuer "").
        self.assertActive(d.check(self.mint()))

        body, entry = self.issuer_status(d, 200)
        self.assertEqual(body.get("status"), "ready", body)
        self.assertIn("store", body)
        self.assertIssuer(entry, keys=5)
        self.assertLessEqual(entry["age_seconds"], 5, entry)

        m = self.jwks_metrics(d)
        self.assertEqual(m["keys"], 5, m)
        self.assertIsNotNone(m["age"], m)
        self.assertGreaterEqual(m["age"], 0, m)
        self.assertEqual(m["stale"], 0, m)
        self.assertEqual(m["fetches"], {r: (1 if r == "ok" else 0) for r in RESULTS}, m)

        # One GET of the key set, as revokd (no refetch within REFRESH_MAX, none per check).
        self.assertEqual(server.requests(), 1, server.request_log())
        method, target, headers = server.request_log()[0]
        self.assertEqual((method, target), ("GET", "/jwks"))
        self.assertTrue(headers.get("User-Agent", "").startswith("revokd/"), headers)


class StartWithoutKeysTest(RemoteKeysCase):

    def test_server_down_then_up(self):
        port = harness.free_port()
        url = f"http://127.0.0.1:{port}/jwks"
        d = self.start_remote(url)  # it listens although nothing serves the key set
        failed = self.wait_fetch_event(d, event="jwks_fetch_failed", result="network_error")
        self.assertEqual(failed["url"], url, failed)
        self.assertIs(failed["keeping_last_good_set"], False, failed)
        self.assertEqual(failed["keys"], 0, failed)
        self.assertEqual(failed.get("level"), "warn", failed)
        self.assertTrue(failed.get("error"), failed)

        body, entry = self.issuer_status(d, 503)
        self.assertEqual(body.get("error"), "keys_unavailable", body)
        self.assertEqual(body.get("status"), "not_ready", body)
        self.assertIn("store", body)
        self.assertIssuer(entry, keys=0, last_fetch="network_error", stale=False)
        token = self.fresh("rsa")
        self.assertKeysUnavailable(d, token)
        self.assertKeysUnavailable(d, self.fresh("ec256"))
        m = self.jwks_metrics(d)
        self.assertEqual(m["keys"], 0, m)
        self.assertIsNone(m["age"], m)       # no age before the first success
        self.assertEqual(m["stale"], 0, m)   # nothing old in force: not stale, just absent
        self.assertGreaterEqual(m["fetches"]["network_error"], 1, m)
        self.assertEqual(m["fetches"]["ok"], 0, m)

        # The server comes up on that port: revokd retries by itself (REFRESH_MIN=1 caps the
        # back-off at 1 s) and becomes ready without a restart.
        server = self.serve(port=port)
        wait_until(lambda: d.readyz().status == 200, 5, what="ready after the server came up")
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, keys=5)
        self.assertActive(d.check(token), token)   # the very token refused before
        self.assertGreaterEqual(server.requests(), 1)
        ok = self.wait_fetch_event(d)
        self.assertEqual(ok["keys"], 5, ok)

    def test_server_error_then_recovery_with_backoff(self):
        """HTTP 500 at start: 503 until the server recovers. The retries back off 1 s, 2 s, ...
        capped at REFRESH_MIN (here 2), as next_fetch_in_s shows."""
        server = self.serve()
        server.set_fault("status", status=500)
        d = self.start_remote(server.url, REVOKD_JWKS_REFRESH_MIN="2")
        third = self.wait_fetch_event(d, event="jwks_fetch_failed", result="http_error", count=3,
                                      timeout=8)
        lines = self.fetch_events(d, event="jwks_fetch_failed")
        self.assertEqual([l["next_fetch_in_s"] for l in lines[:3]], [1, 2, 2], lines)
        self.assertIn("500", third.get("error", ""), third)
        body, entry = self.issuer_status(d, 503)
        self.assertEqual(body.get("error"), "keys_unavailable", body)
        self.assertIssuer(entry, keys=0, last_fetch="http_error", stale=False)
        token = self.fresh("rsa2")
        self.assertKeysUnavailable(d, token)

        server.set_fault("ok")
        self.wait_fetch_event(d, timeout=4)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, keys=5)
        self.assertActive(d.check(token), token)
        m = self.jwks_metrics(d)
        self.assertEqual(m["fetches"]["http_error"], 3, m)
        self.assertEqual(m["fetches"]["ok"], 1, m)


class FaultTest(RemoteKeysCase):
    """After a good first fetch, every kind of failed fetch keeps the set in force."""

    def test_each_fault_keeps_the_last_good_set(self):
        k = self.keys
        other = self.serve(keys=[k["ec256"].jwk()])  # where a redirect would lead
        good = harness.standard_jwks()

        def fault(mode, **params):      # the new fault first, so no fetch meets a good answer
            return lambda s: (s.set_fault(mode, **params), s.set_document(None))

        def document(obj):
            return lambda s: (s.set_document(obj), s.set_fault("ok"))

        # (name, how the server answers, result); neighbours differ in result, so a retry of
        # one fault is never taken for the next.
        faults = [
            ("slow", fault("slow", delay=3.5), "network_error"),
            ("status 500", fault("status", status=500), "http_error"),
            ("connection closed", fault("close"), "network_error"),
            ("redirect", fault("raw", status=302, body=b"", headers={"Location": other.url}), "http_error"),
            ("invalid JSON", fault("invalid_json"), "invalid"),
            ("10 MB", fault("huge", size=10 * 1024 * 1024), "too_large"),
            ("10,000 keys", fault("many_keys", count=10000), "invalid"),
            ("10 MB chunked", fault("huge", size=10 * 1024 * 1024, chunked=True), "too_large"),
            ("duplicate kid", document({"keys": good + [k["rsa2"].jwk(kid="rsa-1", alg="RS256")]}),
             "invalid"),
            ("only unusable keys", document({"keys": [k["rsa"].jwk(kid="rsa-as-es", alg="ES256"),
                                                      {"kty": "XYZ", "kid": "odd"}]}), "no_usable_key"),
        ]
        recover = document(None)
        server = self.serve(keys=good)
        # 8 MiB lets the 10,000 keys (about 4 MB) arrive, so their number is what is refused; 2.5 s
        # lets 8 MiB arrive even under ASan on a loaded machine (500 ms did not: a timeout came
        # first), and the slow fault waits longer than that.
        d = self.start_remote(server.url, REVOKD_JWKS_MAX_BYTES=str(8 * 1024 * 1024),
                              REVOKD_JWKS_FETCH_TIMEOUT_MS="2500")
        self.wait_fetch_event(d)
        cached = self.assertVerifies(d, "rsa")      # in the verified-token cache from now on

        # The first failure comes from an early fetch (unknown kid); each failed fetch is
        # retried 1 s later (REFRESH_MIN=1) and meets the next fault.
        faults[0][1](server)
        mark = d.log_mark()
        self.assertTokenFailure(d.check(self.fresh("hs", kid="nope")), "unknown_key")
        for i, (name, _, result) in enumerate(faults):
            # Bounded generously: 10 MB bodies under ASan on a loaded machine take seconds.
            line = self.wait_fetch_event(d, mark, "jwks_fetch_failed", result=result, timeout=20)
            # What revokd reports now, before the retry a second later.
            ready, m = d.readyz(), self.jwks_metrics(d)
            mark = d.log_mark()
            (faults[i + 1][1] if i + 1 < len(faults) else recover)(server)
            with self.subTest(fault=name):
                self.assertEqual(line["url"], server.url, line)
                self.assertIs(line["keeping_last_good_set"], True, line)
                self.assertEqual(line["keys"], 5, line)
                self.assertEqual(line["next_fetch_in_s"], 1, line)
                self.assertTrue(line.get("error"), line)
                self.assertEqual(line.get("level"), "warn", line)
                body = self.assertJsonResponse(ready, 200)     # ready: the old set is in force
                self.assertIssuer(body["issuers"][0], keys=5, last_fetch=result, stale=True)
                self.assertEqual(m["stale"], 1, m)
                self.assertEqual(m["keys"], 5, m)
                self.assertGreaterEqual(m["fetches"][result], 1, m)
                self.assertVerifies(d, "ec384")
                self.assertActive(d.check(cached), cached)
        self.assertEqual(other.requests(), 0, "a redirect was followed")

        ok = self.wait_fetch_event(d, mark, timeout=5)
        self.assertEqual(ok["keys"], 5, ok)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, keys=5, last_fetch="ok", stale=False)
        m = self.jwks_metrics(d)
        self.assertEqual(m["stale"], 0, m)
        # Every fetch counted once, under the result its log line names.
        lines = self.fetch_events(d)
        self.assertEqual(m["fetches"], {r: sum(1 for l in lines if l["result"] == r) for r in RESULTS},
                         lines)
        # One request per fetch, but libcurl retries once when a kept-alive connection is
        # closed without an answer (the "connection closed" fault).
        fetches = sum(m["fetches"].values())
        self.assertIn(server.requests(), (fetches, fetches + 1), server.request_log())
        self.assertVerifies(d, "hs")
        self.assertActive(d.check(cached), cached)

    def test_size_limit_is_exact(self):
        """REVOKD_JWKS_MAX_BYTES=8192: a document of exactly 8192 bytes is taken, one of 8193 is
        too_large, whether its length is announced (Content-Length) or not (chunked)."""
        runs = []
        for size in (8192, 8193):
            for chunked in (False, True):
                server = self.serve()
                server.set_fault("huge", size=size, chunked=chunked)
                d = self.start_remote(server.url, REVOKD_JWKS_MAX_BYTES="8192")
                runs.append((size, chunked, d))
        for size, chunked, d in runs:
            with self.subTest(size=size, chunked=chunked):
                line = wait_until(lambda: self.fetch_events(d), 5, what="a fetch line")[0]
                if size <= 8192:
                    self.assertEqual((line["event"], line["result"], line["keys"]),
                                     ("jwks_fetched", "ok", 5), line)
                    self.assertEqual(d.readyz().status, 200)
                else:
                    self.assertEqual((line["event"], line["result"]), ("jwks_fetch_failed", "too_large"),
                                     line)
                    self.assertIn("8192", line.get("error", ""), line)
                    self.assertEqual(d.readyz().status, 503)


class SkippedKeysTest(RemoteKeysCase):

    def test_unusable_keys_are_skipped_the_rest_used(self):
        k = self.keys
        weak = self.factory.rsa("rsa-1024", bits=1024, kid="rsa-1024")
        off_curve = k["ec256"].jwk(kid="off-curve")
        y = bytearray(harness.b64url_decode(off_curve["y"]))
        y[-1] ^= 1
        off_curve["y"] = harness.b64url(bytes(y))
        bad = [k["rsa"].jwk(kid="rsa-as-es256", alg="ES256"),    # wrong type for its alg
               weak.jwk(),                                        # RSA 1024-bit
               {"kty": "XYZ", "kid": "unknown-kty", "alg": "RS256"},
               off_curve]                                         # EC point not on P-256
        good = harness.standard_jwks()
        server = self.serve(keys=good[:2] + bad + good[2:])
        d = self.start_remote(server.url)
        line = self.wait_fetch_event(d)
        self.assertEqual(line["result"], "ok", line)
        self.assertEqual(line["keys"], 5, line)
        self.assertEqual(line["skipped"], 4, line)
        self.assertIn("key 2", line.get("skipped_key", ""), line)   # the first skip, by index
        self.assertEqual(line.get("level"), "warn", line)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, keys=5)
        for name in ("rsa", "rsa2", "ec256", "ec384", "hs"):
            with self.subTest(key=name):
                self.assertVerifies(d, name)
        # A token naming a skipped key is refused like one naming no key at all.
        self.assertTokenFailure(d.check(self.mint(weak)), "unknown_key")
        forged = harness.craft({"alg": "ES256", "typ": "JWT", "kid": "off-curve"}, std_claims(), k["ec256"])
        self.assertTokenFailure(d.check(forged), "unknown_key")

    def test_algorithms_setting_pins_and_skips(self):
        """REVOKD_ALGORITHMS=PS256,ES256: the RSA key without alg is pinned to PS256 (the one
        RSA algorithm allowed); keys for other algorithms are skipped."""
        k = self.keys
        server = self.serve(keys=[k["rsa"].jwk(alg=None), k["rsa2"].jwk(), k["ec256"].jwk(alg=None),
                                  k["ec384"].jwk(), k["hs"].jwk()])
        d = self.start_remote(server.url, REVOKD_ALGORITHMS="PS256,ES256")
        line = self.wait_fetch_event(d)
        self.assertEqual((line["keys"], line["skipped"]), (2, 3), line)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, keys=2)
        ps = harness.craft({"alg": "PS256", "typ": "JWT", "kid": "rsa-1"}, std_claims(), k["rsa"])
        self.assertActive(d.check(ps), ps)
        self.assertVerifies(d, "ec256")
        rs = self.fresh("rsa")      # RS256 under the key pinned to PS256
        self.assertTokenFailure(d.check(rs), "algorithm_not_allowed")
        for name in ("rsa2", "ec384", "hs"):
            with self.subTest(skipped=name):
                self.assertTokenFailure(d.check(self.fresh(name)), "unknown_key")


class ScheduleTest(RemoteKeysCase):

    def test_cache_headers_within_refresh_bounds(self):
        """Five servers and five revokd at once (REFRESH_MIN=1, REFRESH_MAX=3), watched for the
        same window: the next fetch follows Cache-Control max-age (no-cache/no-store: 0), else
        Expires, clamped to [1, 3]; a set that says nothing is fetched again after REFRESH_MAX."""
        window = 3.5
        cases = [
            # (name, set_cache kwargs, next_fetch_in_s, fetches in the window: (least, most))
            ("max-age=0", {"max_age": 0}, (1,), (3, math.ceil(window / 1) + 1)),
            ("no-store", {"cache_control": "no-store"}, (1,), (3, math.ceil(window / 1) + 1)),
            ("max-age=2", {"cache_control": "public, max-age=2"}, (2,), (2, math.ceil(window / 2) + 1)),
            ("max-age=a year", {"max_age": YEAR}, (3,), (1, math.ceil(window / 3) + 1)),
            # Expires in 10 s (whole seconds: 9 or 10 from revokd's clock), clamped to 3.
            ("Expires", {"expires": 10}, (3,), (1, math.ceil(window / 3) + 1)),
        ]
        runs = []
        for name, cache, _, _ in cases:
            server = self.serve()
            server.set_cache(**cache)
            d = self.start_remote(server.url, REVOKD_JWKS_REFRESH_MAX="3")
            runs.append((server, d))
        # Each server's count `window` seconds after its own first request.
        firsts = [wait_until(lambda s=s: s.requests() >= 1 and time.monotonic(), 5, interval=0.01,
                             what="the first fetch") for s, _ in runs]
        counts = [None] * len(runs)
        for i in sorted(range(len(runs)), key=lambda i: firsts[i]):
            time.sleep(max(0.0, firsts[i] + window - time.monotonic()))
            counts[i] = runs[i][0].requests()
        for (name, _, nexts, (least, most)), (server, d), count in zip(cases, runs, counts):
            with self.subTest(cache=name):
                self.assertGreaterEqual(count, least, f"{name}: {count} fetches in {window} s")
                self.assertLessEqual(count, most, f"{name}: {count} fetches in {window} s")
                lines = self.fetch_events(d)
                self.assertTrue(lines, name)
                self.assertEqual([l["result"] for l in lines], ["ok"] * len(lines), lines)
                self.assertEqual({l["next_fetch_in_s"] for l in lines}, set(nexts), lines)
        # The year-long max-age still ends at REFRESH_MAX: a second fetch comes, at about 3 s.
        year_server = runs[3][0]
        year_server.wait_for_requests(2, timeout=3)
        self.assertEqual(year_server.requests(), 2)

    def test_max_age_too_large_for_milliseconds_is_refresh_max(self):
        """A max-age beyond what fits in 64-bit milliseconds (strtoll saturates, or the value
        times 1000 overflows) is a very long time: clamped to REFRESH_MAX like a year is, not
        wrapped round to a negative wait and so to REFRESH_MIN."""
        runs = []
        for value in ("99999999999999999999", "9300000000000000"):
            server = self.serve()
            server.set_cache(cache_control=f"max-age={value}")
            runs.append((value, server, self.start_remote(server.url, REVOKD_JWKS_REFRESH_MAX="3")))
        firsts = [wait_until(lambda s=s: s.requests() >= 1 and time.monotonic(), 5, interval=0.01,
                             what="the first fetch") for _, s, _ in runs]
        time.sleep(max(0.0, max(firsts) + 1.6 - time.monotonic()))
        for value, server, d in runs:
            with self.subTest(max_age=value):
                line = self.wait_fetch_event(d)
                self.assertEqual(line["next_fetch_in_s"], 3, line)
                self.assertEqual(server.requests(), 1, "fetched again within 1.6 s")


class UnknownKidTest(RemoteKeysCase):

    def test_flood_of_unknown_kids_costs_one_fetch_per_interval(self):
        """Tokens under made-up kids, from 8 threads as fast as they go, at least 500 of them
        and for at least 2.5 s (so the flood spans several intervals): each is answered 401
        unknown_key at once, and the provider sees at most one fetch per interval."""
        interval, least, duration, threads = 1, 500, 2.5, 8
        server = self.serve()
        d = self.start_remote(server.url, REVOKD_JWKS_UNKNOWN_KID_INTERVAL=str(interval))
        self.wait_fetch_event(d)
        self.assertEqual(server.requests(), 1)
        results = []
        lock = threading.Lock()
        counter = iter(range(10 ** 9))

        def worker():
            while True:
                with lock:
                    i = next(counter)
                    if len(results) >= least and time.monotonic() - start >= duration:
                        return
                # Signed with a real key (HMAC: quick to make), under a kid the set lacks.
                token = self.fresh("hs", kid=f"nope-{i}")
                t = time.monotonic()
                try:
                    r = d.check(token)
                    got = (r.status, r.json().get("reason"), time.monotonic() - t)
                except Exception as e:  # recorded, asserted below
                    got = (None, repr(e), time.monotonic() - t)
                with lock:
                    results.append(got)

        base = server.requests()
        pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        start = time.monotonic()
        for t in pool:
            t.start()
        for t in pool:
            t.join(30)
        elapsed = time.monotonic() - start
        self.assertFalse(any(t.is_alive() for t in pool), "the flood did not end")
        # A fetch kicked at the flood's end may land just after it: count a moment later.
        settle = 0.3
        time.sleep(settle)
        fetches = server.requests() - base
        bound = math.ceil((elapsed + settle) / interval) + 1
        sys.stderr.write(f"\n  unknown-kid flood: {len(results)} tokens over {elapsed:.2f} s "
                         f"-> {fetches} fetches (bound {bound})\n")
        wrong = [r for r in results if r[:2] != (401, "unknown_key")]
        self.assertEqual(wrong[:5], [], f"{len(wrong)} of {len(results)} not 401 unknown_key")
        slowest = max(r[2] for r in results)
        self.assertLess(slowest, 2.0, "an unknown kid waited for something")
        self.assertGreaterEqual(fetches, 2, "a flood over several intervals fetched early once at most")
        self.assertLessEqual(fetches, bound, f"{fetches} fetches in {elapsed:.2f} s")
        self.wait_fetch_event(d, count=1 + fetches)
        lines = self.fetch_events(d)
        self.assertEqual(len(lines), 1 + fetches, lines)
        self.assertEqual({l["result"] for l in lines}, {"ok"}, lines)
        self.assertEqual(self.jwks_metrics(d)["fetches"]["ok"], 1 + fetches)
        self.assertVerifies(d, "rsa")   # the set is as good as before


class RotationTest(RemoteKeysCase):

    def test_added_key_verifies_at_once_removed_key_stops(self):
        k = self.keys
        new = self.factory.ec("ec-new", kid="ec-new")
        server = self.serve(keys=[k["rsa"].jwk()])
        d = self.start_remote(server.url, REVOKD_JWKS_UNKNOWN_KID_INTERVAL="1")
        self.wait_fetch_event(d)
        old_token = self.mint(k["rsa"], sub="alice")
        self.assertActive(d.check(old_token), old_token)
        hits = self.jwks_metrics(d)["cache_hits"]
        self.assertActive(d.check(old_token), old_token)
        self.assertEqual(self.jwks_metrics(d)["cache_hits"], hits + 1, "the token is not cached")

        # A new key at the provider: the first token naming it is refused at once and kicks a
        # fetch; the same token verifies right after, well within the interval.
        server.set_keys([k["rsa"].jwk(), new.jwk()])
        new_token = self.mint(new, sub="bob")
        mark = d.log_mark()
        self.assertTokenFailure(d.check(new_token), "unknown_key")
        kicked = time.monotonic()       # the kick was at or before this moment
        wait_until(lambda: d.check(new_token).status == 200, 1.0, what="the new key in force")
        self.assertActive(d.check(new_token), new_token)
        line = self.wait_fetch_event(d, mark)
        self.assertEqual(line["keys"], 2, line)
        self.assertEqual(server.requests(), 2)
        # Adding a key withdraws none: the old token is still served from the cache.
        hits = self.jwks_metrics(d)["cache_hits"]
        self.assertActive(d.check(old_token), old_token)
        self.assertEqual(self.jwks_metrics(d)["cache_hits"], hits + 1)

        # The old key goes: until revokd fetches, the cached token stands; from the next fetch
        # on (kicked here by another unknown kid, a second after the last) it is refused, cache
        # or not.
        server.set_keys([new.jwk()])
        self.assertActive(d.check(old_token), old_token)
        time.sleep(max(0.0, kicked + 1.05 - time.monotonic()))
        mark = d.log_mark()
        self.assertTokenFailure(d.check(self.fresh("hs", kid="kick")), "unknown_key")
        line = self.wait_fetch_event(d, mark, timeout=3)
        self.assertEqual(line["keys"], 1, line)
        self.assertTokenFailure(d.check(old_token), "unknown_key")
        self.assertTokenFailure(d.check(self.mint(k["rsa"])), "unknown_key")
        self.assertActive(d.check(new_token), new_token)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, keys=1)

    def test_same_kid_new_material(self):
        """A kid kept with other key material withdraws the old key too: a cached token signed
        by the old material is refused (bad signature) after the fetch."""
        k = self.keys
        successor = self.factory.rsa("rsa-1-successor", kid="rsa-1")
        server = self.serve(keys=[k["rsa"].jwk()])
        server.set_cache(max_age=0)         # fetched every REFRESH_MIN (1 s)
        d = self.start_remote(server.url)
        self.wait_fetch_event(d)
        old_token = self.mint(k["rsa"])
        self.assertActive(d.check(old_token), old_token)
        self.assertActive(d.check(old_token), old_token)   # cached
        mark = d.log_mark()
        server.set_keys([successor.jwk()])
        wait_until(lambda: d.check(old_token).status == 401, 3, what="the old material withdrawn")
        self.assertTokenFailure(d.check(old_token), "invalid_signature")
        self.assertTrue(self.fetch_events(d, mark))
        new_token = self.mint(successor)
        self.assertActive(d.check(new_token), new_token)


class HttpsTest(RemoteKeysCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tls = TlsFiles(cls.tmp)
        cls.other_ca = TlsFiles(cls.tmp)

    def test_ca_file_vouches_for_the_server(self):
        server = self.serve(tls=self.tls)
        self.assertTrue(server.url.startswith("https://127.0.0.1:"), server.url)
        d = self.start_remote(server.url, REVOKD_CA_FILE=self.tls.ca_file)
        line = self.wait_fetch_event(d)
        self.assertEqual((line["url"], line["keys"]), (server.url, 5), line)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, keys=5)
        self.assertVerifies(d, "ec256")
        self.assertEqual(server.handshake_failures, 0)

    def test_unvouched_certificate_is_a_network_error(self):
        server = self.serve(tls=self.tls)
        for name, extra in (("system CAs", {}),
                            ("another CA", {"REVOKD_CA_FILE": self.other_ca.ca_file})):
            with self.subTest(ca=name):
                server.reset_counts()
                d = self.start_remote(server.url, **extra)
                line = self.wait_fetch_event(d, event="jwks_fetch_failed")
                self.assertEqual(line["result"], "network_error", line)
                self.assertIs(line["keeping_last_good_set"], False, line)
                body, entry = self.issuer_status(d, 503)
                self.assertEqual(body.get("error"), "keys_unavailable", body)
                self.assertIssuer(entry, keys=0, last_fetch="network_error")
                self.assertKeysUnavailable(d, self.fresh("rsa"))
                # The handshake failed: no request was ever made over it.
                self.assertEqual(server.requests(), 0)
                self.assertGreaterEqual(server.handshake_failures, 1)
                # Still not ready after a retry.
                self.wait_fetch_event(d, event="jwks_fetch_failed", count=2, timeout=4)
                self.assertEqual(d.readyz().status, 503)
                self.assertEqual(server.requests(), 0)
                d.stop()


class ConfigErrorTest(RemoteKeysCase):
    """Settings refused at start-up: exit 2 and one line on stderr naming the setting."""

    def assertConfigError(self, name, why, **overrides):
        """revokd refuses to start: exit 2, one line on stderr naming `name` and saying `why`."""
        env = self.base_env({"REVOKD_JWKS_FILE": None, **overrides})
        out = harness.run_revokd((), env)
        self.assertEqual(out.returncode, 2, f"exit {out.returncode}; stderr: {out.stderr!r}")
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"want one line on stderr, got: {out.stderr!r}")
        self.assertTrue(lines[0].startswith("revokd: "), lines[0])
        self.assertIn(name, lines[0])
        self.assertIn(why, lines[0])
        return lines[0]

    def test_key_set_urls_refused(self):
        https = "must be https (http only to a loopback address)"
        for url, why in (("http://example.com/jwks", https), ("http://10.1.2.3/jwks", https),
                         ("http://127.0.0.1.example.com/jwks", https), ("ftp://127.0.0.1/jwks", https),
                         ("file:///etc/passwd", "not an absolute URL"), ("jwks.json", "not an absolute URL"),
                         ("https://user:secret@127.0.0.1/jwks", "no credentials"),
                         ("https://127.0.0.1/jwks#frag", "no fragment")):
            with self.subTest(url=url):
                line = self.assertConfigError("REVOKD_JWKS_URL", why, REVOKD_JWKS_URL=url)
                self.assertNotIn("secret", line)

    def test_remote_and_file_keys_not_combined(self):
        for extra in ({"REVOKD_JWKS_FILE": self.jwks_path},
                      {"REVOKD_JWT_PUBLIC_KEY_FILE": self.keys["rsa"].pub_path},
                      {"REVOKD_JWT_HMAC_SECRET_FILE": self.keys["hs"].secret_path}):
            with self.subTest(extra=list(extra)):
                self.assertConfigError("REVOKD_JWKS_URL", "cannot be combined with key files",
                                       REVOKD_JWKS_URL="http://127.0.0.1:9/jwks", **extra)

    def test_discovery_settings_refused(self):
        self.assertConfigError("REVOKD_OIDC_DISCOVERY", "needs REVOKD_ISSUER", REVOKD_OIDC_DISCOVERY="1")
        self.assertConfigError("REVOKD_OIDC_DISCOVERY", "must be https", REVOKD_OIDC_DISCOVERY="1",
                               REVOKD_ISSUER="http://issuer.example.com")
        self.assertConfigError("REVOKD_OIDC_DISCOVERY", "not both", REVOKD_OIDC_DISCOVERY="1",
                               REVOKD_ISSUER="https://issuer.example.com",
                               REVOKD_JWKS_URL="https://issuer.example.com/jwks")
        self.assertConfigError("REVOKD_OIDC_DISCOVERY", "0|1", REVOKD_OIDC_DISCOVERY="2",
                               REVOKD_ISSUER="https://issuer.example.com")

    def test_fetch_limits_bounded(self):
        for setting, value in (("REVOKD_JWKS_REFRESH_MIN", "0"), ("REVOKD_JWKS_UNKNOWN_KID_INTERVAL", "0"),
                               ("REVOKD_JWKS_FETCH_TIMEOUT_MS", "99"), ("REVOKD_JWKS_MAX_BYTES", "1023"),
                               ("REVOKD_JWKS_MAX_KEYS", "0"), ("REVOKD_JWKS_REFRESH_MAX", "soon")):
            with self.subTest(setting=setting, value=value):
                self.assertConfigError(setting, f'"{value}"', REVOKD_JWKS_URL="http://127.0.0.1:9/jwks",
                                       **{setting: value})


class DiscoveryTest(RemoteKeysCase):

    def start_discovery(self, server, issuer=None):
        return self.start_revokd(self.remote_env(None, REVOKD_JWKS_URL=None, REVOKD_OIDC_DISCOVERY="1",
                                                 REVOKD_ISSUER=issuer or server.issuer_url))

    def test_openid_configuration(self):
        server = self.serve()
        d = self.start_discovery(server)
        iss = server.issuer_url
        line = self.wait_fetch_event(d)
        self.assertEqual((line["issuer"], line["url"], line["keys"]), (iss, server.url, 5), line)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, iss=iss, source="discovery", keys=5)
        token = self.mint(self.keys["ec384"], iss=iss)
        self.assertActive(d.check(token), token)
        self.assertTokenFailure(d.check(self.mint(self.keys["ec384"], iss=iss + "/other")), "invalid_issuer")
        self.assertEqual(server.requests(server.openid_configuration_path), 1)
        self.assertEqual(server.requests(server.oauth_metadata_path), 0)
        self.assertEqual(server.requests(server.jwks_path), 1)
        m = self.jwks_metrics(d, iss)
        self.assertEqual((m["keys"], m["stale"], m["fetches"]["ok"]), (5, 0, 1), m)

    def test_rfc8414_metadata_with_issuer_path(self):
        server = self.serve(discovery=("oauth",))
        iss = server.base_url + "/tenant-a"
        server.set_discovery(issuer=iss, kinds=("oauth",))
        self.assertEqual(server.oauth_metadata_path, "/.well-known/oauth-authorization-server/tenant-a")
        d = self.start_discovery(server, iss)
        line = self.wait_fetch_event(d)
        self.assertEqual((line["issuer"], line["url"], line["keys"]), (iss, server.url, 5), line)
        _, entry = self.issuer_status(d, 200)
        self.assertIssuer(entry, iss=iss, source="discovery", keys=5)
        token = self.mint(self.keys["rsa2"], iss=iss)
        self.assertActive(d.check(token), token)
        # OpenID's location first (404 here), then RFC 8414's.
        self.assertEqual(server.requests("/tenant-a/.well-known/openid-configuration"), 1)
        self.assertEqual(server.requests(server.oauth_metadata_path), 1)
        self.assertEqual(server.requests(server.jwks_path), 1)

    def test_document_naming_another_issuer(self):
        server = self.serve()
        # Served where revokd looks for the server's own issuer, but naming another.
        server.set_discovery(extra={"issuer": "http://127.0.0.1:1/someone-else"})
        d = self.start_discovery(server, server.base_url)
        line = self.wait_fetch_event(d, event="jwks_fetch_failed")
        self.assertEqual(line["result"], "discovery_error", line)
        self.assertIn("someone-else", line.get("error", ""), line)
        body, entry = self.issuer_status(d, 503)
        self.assertEqual(body.get("error"), "keys_unavailable", body)
        self.assertIssuer(entry, iss=server.base_url, source="discovery", keys=0,
                          last_fetch="discovery_error")
        self.assertKeysUnavailable(d, self.mint(iss=server.base_url))
        # The key set the untrusted document names is never fetched.
        self.assertEqual(server.requests(server.jwks_path), 0)
        m = self.jwks_metrics(d, server.base_url)
        self.assertGreaterEqual(m["fetches"]["discovery_error"], 1, m)
        self.assertEqual(m["fetches"]["ok"], 0, m)

    def test_unusable_discovery(self):
        """No document at either place, or a jwks_uri revokd may not fetch: discovery_error."""
        cases = (("no document", dict(kinds=()), "404"),
                 ("jwks_uri not loopback http", dict(jwks_uri="http://example.com/jwks"), "jwks_uri"),
                 ("issuer with a trailing slash", dict(extra={"issuer": "{base}/"}), "names issuer"))
        for name, kw, error in cases:
            with self.subTest(case=name):
                server = self.serve()
                if "extra" in kw:
                    kw = {"extra": {"issuer": kw["extra"]["issuer"].format(base=server.base_url)}}
                server.set_discovery(**kw)
                d = self.start_discovery(server, server.base_url)
                line = self.wait_fetch_event(d, event="jwks_fetch_failed")
                self.assertEqual(line["result"], "discovery_error", line)
                self.assertIn(error, line.get("error", ""), line)
                _, entry = self.issuer_status(d, 503)
                self.assertEqual(entry["last_fetch"], "discovery_error", entry)
                self.assertEqual(server.requests(server.jwks_path), 0)
                d.stop()


if __name__ == "__main__":
    harness.main()
