"""Both Redis replicas lost at once, under the replicated pair (deploy/local-pair).

A single failure of any process is the fault table of test_single_failure.py: revocations keep
being acknowledged through each. This file covers the double failure that the pair does not
survive for revokes, and checks that it fails honestly:

test_frozen_replicas: with both replicas frozen, a revoke answers 503 not_replicated after the
WAIT; the primary applied it anyway (the replicas still counted as good, within
min-replicas-max-lag), so it is enforced, and it reaches the replicas once they thaw.
test_killed_replicas: with both replicas gone the primary refuses the write (NOREPLICAS): 503
not_replicated, nothing stored, checks keep working; one replica back is enough to revoke again.
"""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pairlib  # noqa: E402
from pairlib import call, harness, wait_until  # noqa: E402

REPLICAS = ("redis-replica", "redis-replica-2")

# Full resync of the returning node plus its first REPLCONF ACK (sent every 1 s), after which
# the primary counts it as a good replica again (min-replicas-to-write).
RESYNC_MS = 2000
SLACK_MS = 3000


class FailoverTest(pairlib.PairTestCase):

    def test_frozen_replicas(self):
        pair = self.pair
        self.assertEqual(pair.role("redis-primary"), "master")
        # Start from replicas that have just acknowledged everything.
        wait_until(lambda: pair.redis("redis-primary", "INFO", "replication").count("lag=0") == 2, 5,
                   what="both replicas to be online with lag 0")
        first = self.mint()
        self.assertEqual(call(self.haproxy, "revoke", first).status, 200)

        token = self.mint()
        _, claims, _ = harness.jwt_parts(token)
        key = self.key_name(token)
        leeway = int(pair.revokd_setting("REVOKD_LEEWAY", "30"))

        pids = [pair.signal(n, signal.SIGSTOP) for n in REPLICAS]
        try:
            stopped_at = time.monotonic()
            r = call(self.haproxy, "revoke", token)
            print(f"revoke with both replicas frozen: {r.status} {r.body} after "
                  f"{(r.t1 - r.t0) * 1000:.0f} ms (sent {(r.t0 - stopped_at) * 1000:.0f} ms after SIGSTOP)")
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.code, "not_replicated", r)
            self.assertIsInstance(r.body.get("error_description"), str, r)
            # The primary applied it (the frozen replicas still counted as good): enforced.
            self.assertEqual(pair.redis("redis-primary", "EXISTS", key), 1)
            self.assertRevokedOnBothNodes(token, "replicas frozen")
            self.assertRevokedOnBothNodes(first, "replicas frozen")
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        thawed = time.monotonic()

        for n in REPLICAS:
            wait_until(lambda: pair.redis(n, "EXISTS", key) == 1, 10, interval=0.05,
                       what=f"{n} to hold {key}")
            print(f"{n} holds {key} {(time.monotonic() - thawed) * 1000:.0f} ms after SIGCONT")
            self.assertEqual(pair.redis(n, "EXPIRETIME", key), claims["exp"] + leeway)
        self.assertRevokedOnBothNodes(token, "replicas thawed")

        # And the pair takes revocations again.
        again = self.mint()
        wait_until(lambda: call(self.haproxy, "revoke", again).status == 200, 10, interval=0.2,
                   what="a revoke to answer 200 after the replicas thawed")
        self.assertRevokedOnBothNodes(again, "replicas thawed")

    def test_killed_replicas(self):
        pair = self.pair
        self.assertEqual(pair.role("redis-primary"), "master")
        self.assertEqual(pair.connected_replicas("redis-primary"), 2)

        for n in REPLICAS:
            pid = pair.signal(n, signal.SIGKILL)
            pair.wait_gone(n, pid, 5)
        killed = time.monotonic()
        wait_until(lambda: pair.connected_replicas("redis-primary") == 0, 5,
                   what="the primary to lose its replicas")

        token = self.mint()
        r = call(self.haproxy, "revoke", token)
        print(f"revoke with both replicas killed: {r.status} {r.body} after {(r.t1 - r.t0) * 1000:.0f} ms")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.code, "not_replicated", r)
        # The primary refused the write (NOREPLICAS): nothing is stored, and it says so honestly.
        self.assertEqual(pair.redis("redis-primary", "EXISTS", self.key_name(token)), 0)
        self.assertActiveOnBothNodes(token, "replicas killed, revoke refused")
        # Checks keep working.
        fresh = self.mint()
        self.assertActiveOnBothNodes(fresh, "replicas killed")
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
                           what="a revoke to answer 200 after a replica was restarted")
        took = round((time.monotonic() - restarted) * 1000)
        print(f"replicas down for {round((restarted - killed) * 1000)} ms; revokes answered 200 "
              f"again {took} ms after it was restarted (bound {bound_ms} ms; "
              f"{len(attempts) - 1} attempts answered {sorted({(x.status, x.code) for x in attempts[:-1]}, key=str)})")
        for x in attempts[:-1]:
            self.assertEqual((x.status, x.code), (503, "not_replicated"), x)
        self.assertRevokedOnBothNodes(again, "a replica restarted")
        self.assertEqual(pair.redis("redis-replica", "EXISTS", self.key_name(again)), 1)


def role_check_of(pair):
    return int(pair.revokd_setting("REVOKD_ROLE_CHECK_MS", "1000"))


if __name__ == "__main__":
    pairlib.main()
