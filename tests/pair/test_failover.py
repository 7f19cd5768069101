"""Redis failover under the replicated pair (deploy/local-pair), through HAProxy.

test_primary_killed: a client mints, revokes and checks tokens in a loop while the Redis primary
is killed (SIGKILL). Every acknowledged revocation must survive, no check may let an
acknowledged-revoked token through, and service must come back within a bound derived from the
Sentinel settings.

With min-replicas-to-write 1 (deploy/redis/*.conf) and REVOKD_MIN_REPLICAS=1 a revocation needs
two live Redis nodes: after the failover the promoted replica is alone and refuses writes
(NOREPLICAS), so revokes answer 503 until the killed node is back and re-synced. The test does
what an operator or supervisor would: once a Sentinel majority names the new primary it brings
the killed node back (`local-pair restart redis-primary`); Sentinel turns it into a replica.
Checks come back with the failover, revokes once the pair is whole again; both outages are
measured and bounded.

test_frozen_replica / test_killed_replica: a revoke the replica did not confirm answers 503
not_replicated; when the primary applied it anyway (frozen replica, within min-replicas-max-lag)
it is enforced and reaches the replica once it thaws; when the primary refused it (replica gone)
nothing is stored, checks keep working, and revokes work again once the replica is back.
"""

import os
import random
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pairlib  # noqa: E402
from pairlib import REVOKD_NODES, call, harness, wait_until  # noqa: E402

# Client loop bounds.
LOOP_MAX_SECONDS = 60.0
LOOP_MAX_ITERATIONS = 5000
WARMUP_SECONDS = 1.5
WARMUP_MIN_ACKED = 10
AFTER_RESUME_SECONDS = 1.5

# Sentinel's own timing, fixed in sentinel.c (not settings): after down-after-milliseconds a
# Sentinel asks the others (every 1 s) to reach ODOWN, starts the election after a random delay
# of up to 1 s, and polls the promoted replica with INFO every 1 s until it reports the new role.
SENTINEL_FAILOVER_MS = 3000
# Full resync of the returning node plus its first REPLCONF ACK (sent every 1 s), after which
# the primary counts it as a good replica again (min-replicas-to-write).
RESYNC_MS = 2000
SLACK_MS = 3000


class FailoverTest(pairlib.PairTestCase):

    def test_primary_killed(self):
        pair = self.pair
        self.assertEqual(pair.current_primary(), "redis-primary")
        self.assertEqual(pair.role("redis-primary"), "master")

        down_after = pair.sentinel_setting("down-after-milliseconds")
        failover_timeout = pair.sentinel_setting("failover-timeout")
        role_check = int(pair.revokd_setting("REVOKD_ROLE_CHECK_MS", "1000"))
        check_bound = down_after + SENTINEL_FAILOVER_MS + role_check + SLACK_MS
        print(f"sentinel down-after-milliseconds {down_after}, failover-timeout {failover_timeout}; "
              f"revokd role-check {role_check} ms")
        print(f"check outage bound: {check_bound} ms = down-after {down_after} + failover "
              f"{SENTINEL_FAILOVER_MS} + role-check {role_check} + slack {SLACK_MS}")

        calls = []           # every request, in order
        acked = {}           # token -> monotonic time its revoke answered 200
        acked_order = []
        kill_at = restart_at = restart_done_at = None
        check_resumed = revoke_resumed = None
        restart_result = {}
        restarter = None
        last_sentinel_poll = 0.0
        started = time.monotonic()

        def restart_old_primary():
            try:
                restart_result["out"] = pair.restart("redis-primary")
            except BaseException as e:  # reported by the main thread
                restart_result["error"] = e
            restart_result["done"] = time.monotonic()

        for i in range(LOOP_MAX_ITERATIONS):
            now = time.monotonic()
            if now - started > LOOP_MAX_SECONDS:
                break
            if revoke_resumed is not None and now - revoke_resumed > AFTER_RESUME_SECONDS:
                break

            token = self.mint()
            r = call(self.haproxy, "revoke", token)
            c = call(self.haproxy, "check", token)
            calls += [r, c]
            if r.status == 200:
                self.assertIs(r.body.get("revoked"), True, r)
                self.assertIs(r.body.get("expired"), False, r)
                acked[token] = r.t1
                acked_order.append(token)
            # Also re-check an earlier acknowledged revocation: it must never come back.
            if len(acked_order) > 1:
                calls.append(call(self.haproxy, "check", random.choice(acked_order[:-1])))

            if kill_at is not None:
                if check_resumed is None and c.status in (200, 401):
                    check_resumed = c.t1
                if revoke_resumed is None and r.status == 200 and (c.status, c.reason) == (401, "revoked"):
                    revoke_resumed = c.t1
                # Once a Sentinel majority names the new primary, bring the killed node back.
                if restarter is None and time.monotonic() - last_sentinel_poll > 0.2:
                    last_sentinel_poll = time.monotonic()
                    if pair.current_primary() == "redis-replica":
                        restart_at = time.monotonic()
                        restarter = threading.Thread(target=restart_old_primary, daemon=True)
                        restarter.start()
                if restart_done_at is None and "done" in restart_result:
                    restart_done_at = restart_result["done"]
                    if "error" in restart_result:
                        raise restart_result["error"]
                    print(restart_result["out"])
            elif time.monotonic() - started >= WARMUP_SECONDS and len(acked) >= WARMUP_MIN_ACKED:
                pid = pair.pid("redis-primary")
                self.assertIsNotNone(pid, "redis-primary is not running")
                acked_before_kill = len(acked)
                kill_at = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                print(f"killed redis-primary (pid {pid}) after {i + 1} iterations, "
                      f"{acked_before_kill} acknowledged revocations", flush=True)

        if restarter is not None:
            restarter.join(30)
            if "error" in restart_result:
                raise restart_result["error"]
            restart_done_at = restart_done_at or restart_result.get("done")

        iterations = sum(1 for x in calls if x.kind == "revoke")
        elapsed = time.monotonic() - started
        statuses = {}
        for x in calls:
            k = (x.kind, x.status, x.reason if x.status == 401 else x.code if x.status != 200 else None)
            statuses[k] = statuses.get(k, 0) + 1
        print(f"client loop: {iterations} iterations, {len(calls)} requests in {elapsed:.1f} s; "
              f"{len(acked)} revocations acknowledged")
        print("answers: " + ", ".join(f"{k[0]} {k[1]}{' ' + k[2] if k[2] else ''}: {n}"
                                      for k, n in sorted(statuses.items(), key=str)))

        self.assertIsNotNone(kill_at, "the warm-up never completed (no revocations acknowledged)")
        ms = lambda t: None if t is None else round((t - kill_at) * 1000)  # noqa: E731
        self.assertIsNotNone(restart_at, f"no Sentinel majority named the replica as primary "
                                         f"within {LOOP_MAX_SECONDS} s")
        self.assertIsNotNone(restart_done_at, "local-pair restart redis-primary did not finish")
        print(f"new primary named by the Sentinels at +{ms(restart_at)} ms; "
              f"killed node restarted at +{ms(restart_done_at)} ms")

        # c. Service came back within the bounds.
        self.assertIsNotNone(check_resumed, "checks never answered again after the kill")
        print(f"failover outage (checks): {ms(check_resumed)} ms (bound {check_bound} ms)")
        self.assertIsNotNone(revoke_resumed, "revokes never answered 200 again after the kill")
        # local-pair restart brings the killed node back as a replica of the new primary (as a
        # supervisor should), so the only wait after it is the resync.
        revoke_bound = ms(restart_done_at) + RESYNC_MS + role_check + SLACK_MS
        print(f"failover outage: {ms(revoke_resumed)} ms (bound {revoke_bound} ms = killed node back "
              f"at +{ms(restart_done_at)} + resync {RESYNC_MS} + role-check {role_check} "
              f"+ slack {SLACK_MS}) "
              f"[kill -> first revoke 200 and check 401 revoked]")
        self.assertLessEqual(ms(check_resumed), check_bound, "checks came back too late")
        self.assertLessEqual(ms(revoke_resumed), revoke_bound, "revokes came back too late")
        self.assertGreater(len(acked), acked_before_kill, "no revocation acknowledged after the failover")

        # While only one Redis node was alive no revoke may have been acknowledged. That window
        # ends when the restart of the killed node begins: it rejoins as a replica within
        # milliseconds, well before `local-pair restart` returns.
        lone = [x for x in calls if x.kind == "revoke" and kill_at < x.t0 and x.t1 < restart_at]
        self.assertTrue(lone)
        for x in lone:
            self.assertEqual(x.status, 503, f"revoke acknowledged with a single Redis node: {x!r}")
            self.assertIn(x.code, ("store_unavailable", "not_replicated"), x)

        # b. No check let an already acknowledged revocation through.
        for x in calls:
            if x.kind == "check" and x.token in acked and acked[x.token] < x.t0:
                self.assertFalse(x.status == 200 or (x.body or {}).get("active") is True,
                                 f"check after the revoke was acknowledged answered active: {x!r}")
                if x.status == 401:
                    self.assertEqual(x.reason, "revoked", x)

        # a. Every acknowledged revocation is enforced by both nodes, asked directly.
        for token in acked_order:
            self.assertRevokedOnBothNodes(token, "after the failover")
        print(f"all {len(acked)} acknowledged revocations check 401 revoked on "
              f"{' and '.join(REVOKD_NODES)}")

        # ... and stored on both Redis nodes once the old primary has re-synced as a replica.
        sample = acked_order[0]
        self.assertEqual(harness.key_name("jti", "", harness.token_id(sample)), self.key_name(sample))
        keys = [harness.key_name("jti", "", harness.token_id(t)) for t in acked_order]
        self.assertEqual(pair.current_primary(), "redis-replica")
        wait_until(lambda: pair.role("redis-primary") == "slave"
                   and pair.redis("redis-primary", "EXISTS", *keys) == len(keys),
                   15, interval=0.2, what="the old primary to hold every acknowledged revocation")
        self.assertEqual(pair.redis("redis-replica", "EXISTS", *keys), len(keys))

    def test_frozen_replica(self):
        pair = self.pair
        self.assertEqual(pair.role("redis-primary"), "master")
        # Start from a replica that has just acknowledged everything.
        wait_until(lambda: "lag=0" in pair.redis("redis-primary", "INFO", "replication"), 5,
                   what="the replica to be online with lag 0")
        first = self.mint()
        self.assertEqual(call(self.haproxy, "revoke", first).status, 200)

        token = self.mint()
        _, claims, _ = harness.jwt_parts(token)
        key = self.key_name(token)
        leeway = int(pair.revokd_setting("REVOKD_LEEWAY", "30"))

        pid = pair.signal("redis-replica", signal.SIGSTOP)
        try:
            stopped_at = time.monotonic()
            r = call(self.haproxy, "revoke", token)
            print(f"revoke with the replica frozen: {r.status} {r.body} after "
                  f"{(r.t1 - r.t0) * 1000:.0f} ms (sent {(r.t0 - stopped_at) * 1000:.0f} ms after SIGSTOP)")
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.code, "not_replicated", r)
            self.assertIsInstance(r.body.get("error_description"), str, r)
            # The primary applied it (the frozen replica still counted as good): enforced.
            self.assertEqual(pair.redis("redis-primary", "EXISTS", key), 1)
            self.assertRevokedOnBothNodes(token, "replica frozen")
            self.assertRevokedOnBothNodes(first, "replica frozen")
        finally:
            os.kill(pid, signal.SIGCONT)
        thawed = time.monotonic()

        wait_until(lambda: pair.redis("redis-replica", "EXISTS", key) == 1, 10, interval=0.05,
                   what=f"the replica to hold {key}")
        print(f"replica holds {key} {(time.monotonic() - thawed) * 1000:.0f} ms after SIGCONT")
        self.assertEqual(pair.redis("redis-replica", "EXPIRETIME", key), claims["exp"] + leeway)
        self.assertRevokedOnBothNodes(token, "replica thawed")

        # And the pair takes revocations again.
        again = self.mint()
        wait_until(lambda: call(self.haproxy, "revoke", again).status == 200, 10, interval=0.2,
                   what="a revoke to answer 200 after the replica thawed")
        self.assertRevokedOnBothNodes(again, "replica thawed")

    def test_killed_replica(self):
        pair = self.pair
        self.assertEqual(pair.role("redis-primary"), "master")
        self.assertEqual(pair.connected_replicas("redis-primary"), 1)

        pid = pair.signal("redis-replica", signal.SIGKILL)
        killed = time.monotonic()
        pair.wait_gone("redis-replica", pid, 5)
        wait_until(lambda: pair.connected_replicas("redis-primary") == 0, 5,
                   what="the primary to lose its replica")

        token = self.mint()
        r = call(self.haproxy, "revoke", token)
        print(f"revoke with the replica killed: {r.status} {r.body} after {(r.t1 - r.t0) * 1000:.0f} ms")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.code, "not_replicated", r)
        # The primary refused the write (NOREPLICAS): nothing is stored, and it says so honestly.
        self.assertEqual(pair.redis("redis-primary", "EXISTS", self.key_name(token)), 0)
        self.assertActiveOnBothNodes(token, "replica killed, revoke refused")
        # Checks keep working.
        fresh = self.mint()
        self.assertActiveOnBothNodes(fresh, "replica killed")
        c = call(self.haproxy, "check", fresh)
        self.assertEqual((c.status, c.body.get("active")), (200, True), c)

        print(pair.restart("redis-replica"))
        restarted = time.monotonic()
        bound_ms = RESYNC_MS + role_check_of(pair) + SLACK_MS + 5000
        attempts = []

        def revoke_works():
            t = self.mint()
            x = call(self.haproxy, "revoke", t)
            attempts.append(x)
            return t if x.status == 200 else None

        again = wait_until(revoke_works, bound_ms / 1000, interval=0.1,
                           what="a revoke to answer 200 after the replica was restarted")
        took = round((time.monotonic() - restarted) * 1000)
        print(f"replica down for {round((restarted - killed) * 1000)} ms; revokes answered 200 "
              f"again {took} ms after it was restarted (bound {bound_ms} ms; "
              f"{len(attempts) - 1} attempts answered {sorted({(x.status, x.code) for x in attempts[:-1]}, key=str)})")
        for x in attempts[:-1]:
            self.assertEqual((x.status, x.code), (503, "not_replicated"), x)
        self.assertRevokedOnBothNodes(again, "replica restarted")
        self.assertEqual(pair.redis("redis-replica", "EXISTS", self.key_name(again)), 1)


def role_check_of(pair):
    return int(pair.revokd_setting("REVOKD_ROLE_CHECK_MS", "1000"))


if __name__ == "__main__":
    pairlib.main()
