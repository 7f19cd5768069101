"""Overload is shed, not queued. With Redis frozen (SIGSTOP), a flood of concurrent checks is
answered in bounded time, every answer a JSON 503 with Retry-After: the few requests a worker's
Redis link may hold (REVOKD_STORE_MAX_PENDING) get store_unavailable when REVOKD_REDIS_TIMEOUT_MS
runs out (the link's command deadline, store_redis_conn.c, answers a request that waited that
long: no other deadline is needed), and so do, at once, the ones that come while the closed link
waits to reconnect; every other one gets overloaded at once, each counted in
revokd_http_limit_hits_total{limit="store_max_pending"} and logged at most once a second.
revokd's memory stays put meanwhile, and once Redis resumes the service recovers by itself."""

import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ISS = "https://issuer.overload.test"
REDIS_TIMEOUT_MS = 1000
MAX_PENDING = 8
CLIENTS = 32           # concurrent clients, each on its own connections
PER_CLIENT = 100       # requests each sends at most...
FLOOD = 3.0            # ...and for at most this many seconds
BOUND = 5.0            # seconds any single answer may take while Redis is frozen
SLACK = 2.0            # seconds past the Redis timeout a store_unavailable may take (ASan, valgrind)
RSS_GROWTH = 24 << 20  # bytes revokd may grow by during the flood; 48 MB more under a wrapper
if os.environ.get("REVOKD_WRAPPER"):  # (valgrind holds 20 MB of freed blocks back, and more)
    RSS_GROWTH += 48 << 20
RECOVERY = 20.0        # seconds to wait for recovery after Redis resumes
LIMIT = 'revokd_http_limit_hits_total{limit="store_max_pending"}'


class OverloadTest(harness.RevokdTestCase):
    # One event loop, so one Redis link takes every check and the limit is exact. Under ASan,
    # freed memory is held back (256 MB by default) to catch its use after free: RSS would
    # measure that, not revokd, so the hold is made small (other builds ignore the variable).
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS),
                  "REVOKD_STORE_MAX_PENDING": str(MAX_PENDING), "REVOKD_THREADS": "1",
                  "ASAN_OPTIONS": ":".join(filter(None, (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=4")))}

    def metric(self, name):
        for line in self.revokd.request("GET", "/metrics").body.decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
        raise AssertionError(f"no {name} in /metrics")

    def flood(self, token):
        """CLIENTS threads checking token until PER_CLIENT requests or FLOOD seconds, while
        another samples revokd's RSS. Returns ([(status, error code, Retry-After, Content-Type,
        seconds)], peak RSS)."""
        answers, lock, stop = [], threading.Lock(), threading.Event()
        peak = [harness.rss(self.revokd.proc.pid)]
        deadline = time.monotonic() + FLOOD

        def client():
            for _ in range(PER_CLIENT):
                if time.monotonic() >= deadline:
                    return
                start = time.monotonic()
                try:
                    resp = self.revokd.check(token)
                    body = resp.json()
                    got = (resp.status, body.get("error"), resp.header("Retry-After"),
                           resp.header("Content-Type"), time.monotonic() - start)
                except (OSError, ValueError) as e:
                    got = (None, repr(e), None, None, time.monotonic() - start)
                with lock:
                    answers.append(got)

        def sampler():
            while not stop.wait(0.05):
                peak[0] = max(peak[0], harness.rss(self.revokd.proc.pid))

        watch = threading.Thread(target=sampler, daemon=True)
        watch.start()
        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(FLOOD + BOUND + harness.HTTP_TIMEOUT)
        stop.set()
        watch.join()
        self.assertFalse([t for t in threads if t.is_alive()], "clients still waiting for answers")
        return answers, peak[0]

    def test_frozen_redis_sheds_load_and_recovers(self):
        token = self.mint(sub="olive", iss=ISS)
        revoked = self.mint(sub="olive", iss=ISS)
        self.assertJsonResponse(self.revokd.revoke(revoked), 200)
        # Both verified and cached: below, a check waits for Redis only.
        self.assertActive(self.revokd.check(token), token)
        self.assertTokenFailure(self.revokd.check(revoked), "revoked")
        hits = self.metric(LIMIT)
        mark = self.revokd.log_mark()
        base = harness.rss(self.revokd.proc.pid)

        self.redis.pause()
        try:
            start = time.monotonic()
            answers, peak = self.flood(token)
            took = time.monotonic() - start
            hits = self.metric(LIMIT) - hits  # /metrics needs no store
        finally:
            self.redis.resume()

        self.assertTrue(answers)
        wrong = [a for a in answers if a[0] != 503 or a[1] not in ("overloaded", "store_unavailable")
                 or a[2] != "1" or (a[3] or "").split(";")[0] != "application/json" or a[4] >= BOUND]
        self.assertEqual(wrong, [], f"answers other than a JSON 503 with Retry-After within {BOUND}s")
        timeout = REDIS_TIMEOUT_MS / 1000
        shed = [a[4] for a in answers if a[1] == "overloaded"]
        unavailable = [a[4] for a in answers if a[1] == "store_unavailable"]
        waited = [t for t in unavailable if t >= timeout / 2]
        # The link held at most MAX_PENDING checks at a time, each answered at the timeout; the
        # other store_unavailable came at once, while the link waited to reconnect.
        self.assertTrue(waited)
        self.assertLessEqual(len(waited), MAX_PENDING * (took // timeout + 1))
        self.assertLess(max(waited), timeout + SLACK)
        # Everything else was shed: refused at once, not after the timeout.
        self.assertGreater(len(shed), len(waited))
        self.assertLess(statistics.median(shed), timeout / 2)
        self.assertEqual(hits, len(shed))
        self.assertLess(peak - base, RSS_GROWTH, f"RSS grew from {base >> 10} to {peak >> 10} KiB")
        sys.stderr.write(f"\n{len(answers)} answers in {took:.1f}s: {len(shed)} overloaded (median "
                         f"{statistics.median(shed) * 1000:.1f} ms, slowest {max(shed) * 1000:.0f} ms), "
                         f"{len(waited)} store_unavailable at {min(waited):.2f}-{max(waited):.2f}s, "
                         f"{len(unavailable) - len(waited)} at once; RSS {base >> 10} KiB, peak "
                         f"{peak >> 10} KiB\n")

        # Logged, at most once a second, naming the limit; never a token.
        lines = [o for o in self.revokd.json_logs(mark)
                 if isinstance(o, dict) and o.get("event") == "store_overloaded"]
        self.assertTrue(lines)
        self.assertLessEqual(len(lines), took + 1)
        for line in lines:
            self.assertEqual((line["level"], line["limit"], line["link"]), ("warn", "REVOKD_STORE_MAX_PENDING", "reads"))
            self.assertLessEqual(line["waiting"], MAX_PENDING)
        self.assertLessEqual(sum(line["refused"] for line in lines), len(shed))
        self.assertNotIn(token, self.revokd.log_text(mark))

        # Redis is back: the service recovers by itself, with the right answers.
        harness.wait_until(lambda: self.revokd.check(token).status == 200, RECOVERY,
                           interval=0.2, what="checks to succeed again")
        self.assertActive(self.revokd.check(token), token)
        self.assertTokenFailure(self.revokd.check(revoked), "revoked")
        self.assertEqual(self.assertJsonResponse(self.revokd.readyz(), 200)["status"], "ready")
        hits = self.metric(LIMIT)
        for _ in range(20):
            self.assertActive(self.revokd.check(token), token)
        self.assertEqual(self.metric(LIMIT), hits)

    def test_every_503_says_when_to_retry(self):
        """Retry-After comes with every 503, whatever its cause: here store_unavailable on a
        check, a lookup, a revoke and /readyz with Redis gone; the overloaded ones above."""
        token = self.mint(sub="otto", iss=ISS)
        self.redis.kill()
        d = self.revokd
        for call in (lambda: d.check(token), lambda: d.lookup(jti="some-jti"), lambda: d.revoke(token),
                     d.readyz):
            resp = call()
            self.assertError(resp, 503, "store_unavailable")
            self.assertEqual(resp.header("Retry-After"), "1", resp.headers)
        self.assertIsNone(d.healthz().header("Retry-After"))
        self.redis.start(require_empty=False)
        self.wait_ready(token=token)


if __name__ == "__main__":
    harness.main()
