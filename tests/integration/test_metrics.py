"""GET /metrics: Prometheus text that promtool accepts, and counters that move by exactly what the
requests made between two scrapes did (requests by route and status, check results, revocations,
histogram counts, token cache hits and misses), plus revokd_store_up and store_unavailable
checks while Redis is stopped.

Every assertion is on a difference between scrapes of the one class daemon, so the tests do not
depend on each other's traffic. A request is counted just after its answer is queued, so a count
may trail the response a moment: `settle` scrapes until the expected differences are reached,
then asserts that they are exact (nothing counted twice, nothing extra)."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import now  # noqa: E402

ISS = "https://issuer.metrics.test"
ADMIN_KEY = "admin-key-metrics-0123456789abcdef"
REDIS_TIMEOUT_MS = 300
SETTLE = 5.0              # seconds for counts to catch up with their responses
CACHE_CAPACITY = 100000   # REVOKD_TOKEN_CACHE_SIZE default
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = ("0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
           "0.1", "0.25", "0.5", "1", "2.5", "+Inf")

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text):
    """{(name, ((label, value), ...) sorted): float} of a text exposition; raises on a line it
    cannot read, so a malformed exposition fails the test even without promtool."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.fullmatch(line)
        if m is None:
            raise AssertionError(f"unreadable sample line {line!r}")
        name, raw, value = m.groups()
        labels, pos = {}, 0
        while raw and pos < len(raw):
            lm = _LABEL.match(raw, pos)
            if lm is None:
                raise AssertionError(f"unreadable labels in {line!r}")
            labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                         lm.group(2))
            pos = lm.end()
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise AssertionError(f"duplicate series {line!r}")
        samples[key] = float(value)
    return samples


def series(name, **labels):
    return (name, tuple(sorted(labels.items())))


def requests(route, status):
    return series("revokd_http_requests_total", route=route, status=str(status))


def checks(result):
    return series("revokd_checks_total", result=result)


def revocations(kind, by):
    return series("revokd_revocations_total", kind=kind, by=by)


def duration_count(route):
    return series("revokd_http_request_duration_seconds_count", route=route)


HITS = series("revokd_token_cache_hits_total")
MISSES = series("revokd_token_cache_misses_total")
STORE_UP = series("revokd_store_up")
REDIS_COUNT = series("revokd_redis_command_duration_seconds_count")
CHECK_RESULTS = ("active", "missing_token", "malformed", "unknown_key", "algorithm_not_allowed",
                 "invalid_signature", "invalid_claims", "invalid_issuer", "invalid_audience",
                 "lifetime_exceeded", "expired", "not_yet_valid", "revoked", "store_unavailable")


class MetricsTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS)}
    admin_keys = (ADMIN_KEY,)

    # Scraping --------------------------------------------------------------------------------
    def scrape_text(self):
        resp = self.revokd.request("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.header("Content-Type"), CONTENT_TYPE)
        self.assertTrue(resp.header("X-Request-Id"), resp.headers)
        self.assertEqual(resp.header("Cache-Control"), "no-store")
        return resp.body.decode("utf-8")

    def scrape(self):
        return parse(self.scrape_text())

    def settle(self, before, want, also=()):
        """Scrapes until every series in `want` ({series: delta}) has moved by at least its
        delta (or SETTLE seconds pass), then asserts each moved by exactly that, and that every
        series in `also` did not move. Returns the last scrape.

        Scrapes count themselves (GET /metrics 200), each just after its own answer, so the
        count of the previous scrape may or may not be in the next: that series is only held
        to have moved by at least the one scrape `before` came from."""
        scraped = requests("GET /metrics", 200)
        at_least = dict(want)
        at_least[scraped] = max(want.get(scraped, 0), 1)
        deadline = time.monotonic() + SETTLE
        while True:
            after = self.scrape()
            moved = {k: after.get(k, 0) - before.get(k, 0) for k in set(at_least) | set(also)}
            if all(moved[k] >= v for k, v in at_least.items()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        wrong = [f"{k}: moved by {moved[k]:g}, not {v:g}" for k, v in want.items() if moved[k] != v]
        wrong += [f"{k}: moved by {moved[k]:g}, not 0" for k in also if moved[k] != 0]
        if moved[scraped] < 1:
            wrong.append(f"{scraped}: moved by {moved[scraped]:g}, not at least 1")
        if wrong:
            self.fail("metrics did not move as the requests did:\n  " + "\n  ".join(sorted(wrong)))
        return after

    # Requests --------------------------------------------------------------------------------
    def token(self, sub, **kw):
        return self.mint(sub=sub, iss=ISS, iat=now() - 1, ttl=600, **kw)

    def check(self, token, status):
        resp = self.revokd.check(token)
        self.assertEqual(resp.status, status, resp)
        return resp

    # Tests -----------------------------------------------------------------------------------
    def test_promtool_accepts_the_exposition(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.fail("promtool not found: install Debian's prometheus package (./dev test does)")
        # Traffic first, so that every kind of series is in the text.
        alice = self.token("alice")
        self.check(alice, 200)
        self.check(alice, 200)
        self.assertEqual(self.revokd.request("GET", "/nope").status, 404)
        self.assertEqual(self.revokd.revoke(self.token("bob")).status, 200)
        self.scrape()
        text = self.scrape_text()
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, f"promtool: {out.stdout}{out.stderr}\n{text}")
        self.assertEqual(out.stdout + out.stderr, "", f"promtool lint: {out.stdout}{out.stderr}")

    def test_families_and_gauges(self):
        text = self.scrape_text()
        for family, kind in (("revokd_http_requests_total", "counter"),
                             ("revokd_http_request_duration_seconds", "histogram"),
                             ("revokd_checks_total", "counter"),
                             ("revokd_revocations_total", "counter"),
                             ("revokd_redis_command_duration_seconds", "histogram"),
                             ("revokd_redis_errors_total", "counter"),
                             ("revokd_store_up", "gauge"),
                             ("revokd_http_connections", "gauge"),
                             ("revokd_token_cache_hits_total", "counter"),
                             ("revokd_token_cache_misses_total", "counter"),
                             ("revokd_token_cache_entries", "gauge"),
                             ("revokd_token_cache_capacity", "gauge"),
                             ("revokd_build_info", "gauge"),
                             ("process_start_time_seconds", "gauge"),
                             ("process_resident_memory_bytes", "gauge")):
            with self.subTest(family=family):
                self.assertIn(f"\n# TYPE {family} {kind}\n", "\n" + text)
                self.assertRegex(text, rf"(^|\n)# HELP {family} \S")
        samples = parse(text)
        # Every route of the table has a histogram, labelled "METHOD /path", and so has "unmatched".
        routes = harness.run_revokd(["--routes"]).stdout.split("\n")
        routes = [r.strip() for r in routes if r.strip()] + ["unmatched"]
        self.assertIn("GET /metrics", routes)
        for route in routes:
            for le in BUCKETS:
                self.assertIn(series("revokd_http_request_duration_seconds_bucket", route=route, le=le),
                              samples, f"{route} le={le}")
            self.assertIn(duration_count(route), samples, route)
        for result in CHECK_RESULTS:
            self.assertIn(checks(result), samples, result)
        for kind in ("token", "subject"):
            for by in ("holder", "admin"):
                self.assertIn(revocations(kind, by), samples)
        version = harness.run_revokd(["--version"]).stdout.split()[-1]
        self.assertEqual(samples.get(series("revokd_build_info", version=version)), 1, text)
        start = samples.get(series("process_start_time_seconds"))
        self.assertIsNotNone(start)
        self.assertLessEqual(start, time.time())
        self.assertGreater(start, time.time() - 3600)
        self.assertGreater(samples.get(series("process_resident_memory_bytes"), 0), 1 << 20)
        self.assertGreaterEqual(samples.get(series("revokd_http_connections"), 0), 1)  # this scrape
        self.assertEqual(samples.get(series("revokd_token_cache_capacity")), CACHE_CAPACITY)

    def test_counters_move_with_requests(self):
        n_active, n_revoked = 5, 3
        alice, bob, dave = self.token("alice"), self.token("bob"), self.token("dave")
        before = self.scrape()

        for _ in range(n_active):
            self.check(alice, 200)
        self.assertEqual(self.revokd.revoke(bob).status, 200)
        for _ in range(n_revoked):
            self.assertTokenFailure(self.check(bob, 401), "revoked")
        self.assertEqual(self.revokd.revoke_all(dave).status, 200)
        self.assertEqual(self.revokd.admin_revoke(ADMIN_KEY, {"jti": "m-1", "exp": now() + 60}).status, 200)
        self.assertEqual(self.revokd.admin_revoke_all(ADMIN_KEY, "carol").status, 200)
        self.assertEqual(self.revokd.request("GET", "/nope").status, 404)
        self.assertEqual(self.revokd.request("DELETE", "/v1/check").status, 405)

        after = self.settle(before, {
            requests("GET /v1/check", 200): n_active,
            requests("GET /v1/check", 401): n_revoked,
            requests("POST /v1/revoke", 200): 1,
            requests("POST /v1/revoke-all", 200): 1,
            requests("POST /v1/admin/revoke", 200): 1,
            requests("POST /v1/admin/subjects/{sub}/revoke-all", 200): 1,
            requests("unmatched", 404): 1,
            requests("unmatched", 405): 1,
            duration_count("GET /v1/check"): n_active + n_revoked,
            duration_count("POST /v1/revoke"): 1,
            duration_count("unmatched"): 2,
            checks("active"): n_active,
            checks("revoked"): n_revoked,
            revocations("token", "holder"): 1,
            revocations("subject", "holder"): 1,
            revocations("token", "admin"): 1,
            revocations("subject", "admin"): 1,
        }, also=[checks(r) for r in CHECK_RESULTS if r not in ("active", "revoked")] +
                [duration_count("GET /healthz")])
        # A histogram's +Inf bucket is its count; its sum grew.
        route = "GET /v1/check"
        inf = series("revokd_http_request_duration_seconds_bucket", route=route, le="+Inf")
        self.assertEqual(after[inf], after[duration_count(route)])
        total = series("revokd_http_request_duration_seconds_sum", route=route)
        self.assertGreater(after[total], before.get(total, 0))
        # Every check and every revocation is at least one round trip to Redis.
        self.assertGreaterEqual(after.get(REDIS_COUNT, 0) - before.get(REDIS_COUNT, 0),
                                n_active + n_revoked + 4)
        self.assertEqual(after.get(STORE_UP), 1)

    def test_token_cache_hits_and_misses(self):
        token = self.token("erin")
        before = self.scrape()
        self.check(token, 200)  # verified: a miss, then cached
        self.check(token, 200)  # the very same bytes: a hit
        after = self.settle(before, {HITS: 1, MISSES: 1, checks("active"): 2})
        self.assertGreaterEqual(after.get(series("revokd_token_cache_entries"), 0), 1)

    def test_store_down(self):
        token = self.token("frank")
        first = self.scrape()
        self.check(token, 200)
        before = self.settle(first, {checks("active"): 1})
        self.assertEqual(before.get(STORE_UP), 1)

        self.redis.kill()
        self.addCleanup(self.wait_ready)
        self.addCleanup(lambda: self.redis.start(require_empty=False) if self.redis.proc.poll() is not None
                        else None)
        self.assertError(self.revokd.check(token), 503, "store_unavailable")
        after = self.settle(before, {
            requests("GET /v1/check", 503): 1,
            checks("store_unavailable"): 1,
        }, also=[checks("active")])
        self.assertEqual(after.get(STORE_UP), 0, "revokd_store_up after a failed command")

        # Back up: the next successful command turns the gauge back to 1.
        self.redis.start(require_empty=False)
        self.wait_ready(token=token)
        self.assertEqual(self.scrape().get(STORE_UP), 1)


if __name__ == "__main__":
    harness.main()
