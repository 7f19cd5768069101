"""Redis going away: checks fail closed with 503 store_unavailable in bounded time, /readyz says
not_ready, and both recover once redis-server is back on the same port. Clients that give up
while their request waits for Redis or a signature thread leave revokd whole."""

import os
import random
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LOOPBACK, now, token_id  # noqa: E402

ISS = "https://issuer.outage.test"
ADMIN_KEY = "admin-key-outage-0123456789abcdef"
REDIS_TIMEOUT_MS = 300
BOUND = 5.0        # seconds any single request may take while Redis is down or hung
RECOVERY = 20.0    # seconds to wait for recovery after Redis returns
STABLE = 10        # consecutive successes that count as recovered


class StoreOutageTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS)}
    admin_keys = (ADMIN_KEY,)

    def timed(self, call):
        start = time.monotonic()
        resp = call()
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, BOUND, f"request took {elapsed:.2f}s with the store down")
        return resp

    def assertStoreUnavailable(self, call):
        return self.assertError(self.timed(call), 503, "store_unavailable")

    def assertNotReady(self):
        body = self.assertError(self.timed(self.revokd.readyz), 503, "store_unavailable")
        self.assertEqual(body.get("status"), "not_ready", body)

    def assertEverythingUnavailable(self, token):
        d = self.revokd
        self.assertStoreUnavailable(lambda: d.check(token))
        self.assertStoreUnavailable(lambda: d.check_post(token))
        self.assertStoreUnavailable(lambda: d.lookup(jti="some-jti"))
        self.assertStoreUnavailable(lambda: d.lookup(sub="alice", iat=1))
        self.assertStoreUnavailable(lambda: d.revoke(token))
        self.assertStoreUnavailable(lambda: d.revoke_all(token))
        self.assertStoreUnavailable(lambda: d.admin_revoke(ADMIN_KEY, {"jti": "x", "exp": now() + 60}))
        self.assertStoreUnavailable(lambda: d.admin_revoke_all(ADMIN_KEY, "alice"))
        self.assertNotReady()
        # Liveness does not depend on the store.
        self.assertEqual(self.assertJsonResponse(self.timed(d.healthz), 200), {"status": "ok"})
        self.assertTrue(d.alive())

    def assertReady(self, resp):
        body = self.assertJsonResponse(resp, 200)
        self.assertEqual(body.get("status"), "ready", body)
        store = body.get("store")
        self.assertIsInstance(store, dict, body)
        self.assertEqual(store.get("role"), "master", body)
        self.assertEqual(store.get("address"), self.redis.address(), body)

    def wait_recovered(self, token=None):
        self.wait_ready(token=token, stable=STABLE, timeout=RECOVERY)
        self.assertReady(self.revokd.readyz())
        if token is not None:
            self.assertActive(self.revokd.check(token), token)

    def setUp(self):
        super().setUp()
        self.wait_recovered()

    def test_ready_when_store_up(self):
        self.assertReady(self.revokd.readyz())

    def test_redis_killed_then_restarted(self):
        token = self.mint(sub="alice", iss=ISS, ttl=600)
        self.assertActive(self.revokd.check(token), token)

        self.redis.kill()
        self.assertEverythingUnavailable(token)
        # Still failing closed on a second round (no cached "ok").
        self.assertStoreUnavailable(lambda: self.revokd.check(token))

        self.redis.start(require_empty=False)
        self.wait_recovered(token)
        body = self.assertJsonResponse(self.revokd.revoke(token), 200)
        self.assertTrue(self.redis.exists(harness.key_name("jti", ISS, token_id(token))))
        self.assertEqual(body["jti"], token_id(token))
        self.assertTokenFailure(self.revokd.check(token), "revoked")

    def test_revoked_token_fails_closed_while_store_down(self):
        token = self.mint(sub="bob", iss=ISS)
        self.assertJsonResponse(self.revokd.revoke(token), 200)
        self.redis.kill()
        self.assertStoreUnavailable(lambda: self.revokd.check(token))
        self.redis.start(require_empty=False)
        self.wait_recovered()

    def test_redis_hung_then_resumed(self):
        token = self.mint(sub="carol", iss=ISS)
        # A write that timed out may still be applied once Redis resumes, so the revoke attempt
        # uses a token of its own.
        other = self.mint(sub="carol", iss=ISS)
        self.assertActive(self.revokd.check(token), token)
        self.redis.pause()
        try:
            self.assertStoreUnavailable(lambda: self.revokd.check(token))
            self.assertStoreUnavailable(lambda: self.revokd.revoke(other))
            self.assertNotReady()
            self.assertTrue(self.revokd.alive())
        finally:
            self.redis.resume()
        self.wait_recovered(token)

    def test_answer_after_a_redis_timeout_comes_at_the_timeout(self):
        """A command without a reply fails its requests when REVOKD_REDIS_TIMEOUT_MS runs out, and
        their 503 goes out then. A request that had waited long enough to be suspended was once
        resumed without waking the loop, which then slept its default second: the 503 came at
        the timeout plus one second."""
        token = self.mint(sub="erin", iss=ISS)
        self.assertActive(self.revokd.check(token), token)  # verified and cached: no crypto below
        slack = 0.6  # far under the second the lost wake-up cost
        self.redis.pause()
        try:
            for call in (lambda: self.revokd.check(token), lambda: self.revokd.lookup(jti="a-jti")):
                start = time.monotonic()
                self.assertError(call(), 503, "store_unavailable")
                elapsed = time.monotonic() - start
                self.assertLess(elapsed, REDIS_TIMEOUT_MS / 1000 + slack,
                                f"503 after {elapsed:.2f}s for a {REDIS_TIMEOUT_MS} ms timeout")
        finally:
            self.redis.resume()
        self.wait_recovered(token)

    def metric(self, name):
        for line in self.revokd.request("GET", "/metrics").body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no {name} in /metrics")

    def test_redis_losing_its_data_is_reported(self):
        """Redis losing its data (FLUSHALL here; a restart without persistence, or a replica
        resynchronised from an empty primary, is the same) brings back every revoked token.
        revokd cannot undo that, but it notices: /readyz answers 503 store_data_lost, so load
        balancers drain the node, revokd_store_data_lost is 1 and an error line is logged."""
        token = self.mint(sub="frank", iss=ISS)
        self.assertJsonResponse(self.revokd.revoke(token), 200)
        self.assertTokenFailure(self.revokd.check(token), "revoked")
        self.assertReady(self.revokd.readyz())
        self.assertEqual(self.metric("revokd_store_data_lost"), 0)
        marker = self.redis.get(harness.DEFAULT_PREFIX + harness.MARKER_SUFFIX)
        self.assertRegex(marker, r"^[0-9a-f]{32}$")

        mark = self.revokd.log_mark()
        self.redis.flushall(keep_markers=False)
        for _ in range(2):  # the probe of every worker, and again
            body = self.assertError(self.revokd.readyz(), 503, "store_data_lost")
            self.assertEqual(body["status"], "not_ready")
        self.assertEqual(self.metric("revokd_store_data_lost"), 1)
        logged = [o for o in self.revokd.json_logs(mark) if isinstance(o, dict) and o.get("event") == "store_data_lost"]
        self.assertEqual(len(logged), 1, logged)
        self.assertEqual(logged[0]["level"], "error")
        # What is lost is lost: the store now says the token was never revoked.
        self.assertActive(self.revokd.check(token), token)
        # A node started now adopts the store as it finds it.
        fresh = self.start_revokd(self.base_env(self.revokd_env))
        self.assertReady(fresh.readyz())
        self.assertError(self.revokd.readyz(), 503, "store_data_lost")

        # The data restored, marker included, the node is ready again.
        self.redis.command("SET", harness.DEFAULT_PREFIX + harness.MARKER_SUFFIX, marker)
        self.assertJsonResponse(self.revokd.revoke(token), 200)
        self.wait_recovered()
        self.assertEqual(self.metric("revokd_store_data_lost"), 0)
        self.assertError(fresh.readyz(), 503, "store_data_lost")  # it knew the other marker

    def test_repeated_outages(self):
        token = self.mint(sub="dave", iss=ISS)
        for _ in range(2):
            self.redis.kill()
            self.assertStoreUnavailable(lambda: self.revokd.check(token))
            self.redis.start(require_empty=False)
            self.wait_recovered(token)

    def test_clients_gone_while_waiting(self):
        """Connections reset while their check waits for Redis (hung, then answering) or for a
        signature thread: a request then waits either parked, where revokd learns of the reset
        and must keep the request's state until what it waits for is done, or suspended, where
        its reply finds the connection gone. Either way revokd must not crash, leak (valgrind
        and ASan runs stop it and check) or keep a connection open, and must answer as before."""
        token = self.mint(sub="erin", iss=ISS)
        check = f"GET /v1/check HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n"
        lookup = "GET /v1/check?jti=gone&sub=erin&iat=1 HTTP/1.1\r\nHost: t\r\n\r\n"

        cached = self.start_revokd(self.revokd_env)
        self.assertActive(cached.check(token), token)  # now cached: a check waits for Redis only
        self.redis.pause()
        try:
            self.reset_while_waiting(cached, [check, lookup], 40, 0.002)
        finally:
            self.redis.resume()
        self.reset_while_waiting(cached, [check, lookup], 200, 0.0003)
        self.assertServesAfterResets(cached, token)

        # Every check through the one signature thread, from 8 clients at once.
        uncached = self.start_revokd({**self.revokd_env, "REVOKD_TOKEN_CACHE_SIZE": "0",
                                      "REVOKD_VERIFY_THREADS": "1"})
        threads = [threading.Thread(target=self.reset_while_waiting, args=(uncached, [check], 50, 0.0001, k))
                   for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(RECOVERY)
        self.assertFalse([t for t in threads if t.is_alive()])
        self.assertServesAfterResets(uncached, token)

    def reset_while_waiting(self, daemon, requests, n, max_delay, seed=0):
        """n connections, each sending one of requests and resetting (RST) within max_delay s."""
        rng = random.Random(seed)
        for i in range(n):
            with socket.create_connection((LOOPBACK, daemon.port), timeout=BOUND) as s:
                s.sendall(requests[i % len(requests)].encode())
                time.sleep(rng.uniform(0, max_delay))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def assertServesAfterResets(self, daemon, token):
        def open_connections():
            body = daemon.request("GET", "/metrics").body.decode()
            return float(re.search(r"^revokd_http_connections (\S+)$", body, re.M).group(1))
        harness.wait_until(lambda: open_connections() == 1, RECOVERY, what="reset connections closed")
        self.wait_ready(daemon, token=token)
        self.assertActive(daemon.check(token), token)
        body = self.assertJsonResponse(daemon.lookup(jti="gone", sub="erin", iat=1), 200)
        self.assertEqual(body, {"active": True, "jti": "gone", "sub": "erin"})
        daemon.stop()

if __name__ == "__main__":
    harness.main()
