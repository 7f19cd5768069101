"""Revocation through any single failure: the fault table of the deployed pair (deploy/local-pair).

One pair (3 Redis nodes, 3 Sentinels, 2 revokd nodes, HAProxy) takes one fault at a time: SIGKILL
and SIGSTOP of the Redis primary, of a Redis replica, of each Sentinel and of each revokd node.
Throughout, two client threads work through HAProxy: one revokes a fresh token and checks it at
once, the other checks tokens whose revocation was acknowledged and a token nobody revoked. A
killed process is brought back after HOLD seconds (`local-pair restart`, as a supervisor would); a
stopped one is continued after HOLD seconds, or later, once a revoke sent during the failure has
been acknowledged (bounded by HOLD_MAX: a Sentinel that found its own timer late, as on a busy
machine, enters TILT and does nothing for 30 s, failover included). Between faults the pair is made whole again (every
process up, the primary with both replicas in sync, both nodes ready) so each fault starts from
the deployed state.

For every fault the test asserts:
- no revocation acknowledged (200) is lost: at the end every one checks 401 revoked on both
  revokd nodes and is stored on every Redis node;
- no check that started after a revocation was acknowledged answered "active" for it;
- both operations come back, and revokes are acknowledged during the fault itself once the
  failover (if any) is over: a single failure never leaves the pair unable to revoke.
and prints the table: each fault, the longest time without a successful check and without an
acknowledged revoke (the outage of each operation, hangs included), the failures by code,
acknowledged revocations lost, and checks that answered active wrongly.
"""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pairlib  # noqa: E402
from pairlib import REDIS_NODES, REVOKD_NODES, SENTINELS, Load, call, longest_gap, ok, wait_until  # noqa: E402

WARMUP = 1.0          # s of load before each fault
HOLD = 4.0            # s a process stays killed or stopped, at least
HOLD_MAX = 45.0       # s it stays so, at most, waiting for a revoke acknowledged meanwhile
SETTLE = 1.5          # s of load after the process is back, once both operations answer again
WHOLE_TIMEOUT = 40.0  # s to make the pair whole again between faults (a stopped old primary is
                      # demoted by Sentinel's INFO round, every 10 s)


class SingleFailureTest(pairlib.PairTestCase):

    def whole(self):
        """Wait until every process runs, a Sentinel majority names a primary that has both
        replicas online, both nodes are ready and accept revocations."""
        pair = self.pair

        def is_whole():
            if any(pair.pid(n) is None for n in pairlib.ALL):
                return False
            primary = pair.current_primary()
            if primary is None or pair.role(primary) != "master":
                return False
            info = pair.redis(primary, "INFO", "replication")
            if sum(1 for line in info.splitlines()
                   if line.startswith("slave") and "state=online" in line) != 2:
                return False
            for node in REVOKD_NODES:
                r = call(pair.address(node), "readyz")
                if r.status != 200 or not (r.body or {}).get("store", {}).get("accepts_revocations"):
                    return False
            return call(self.haproxy, "revoke", self.mint()).status == 200

        wait_until(is_whole, WHOLE_TIMEOUT, interval=0.3, what="the pair to be whole again")
        return pair.current_primary()

    def victim(self, role):
        primary = self.pair.current_primary()
        if role == "redis primary":
            return primary
        if role == "redis replica":
            return [n for n in REDIS_NODES if n != primary][0]
        return role

    def fault(self, role, sig):
        pair = self.pair
        self.whole()
        name = self.victim(role)
        load = Load(self).start()
        try:
            time.sleep(WARMUP)
            pid = pair.signal(name, sig)
            at = time.monotonic()
            time.sleep(HOLD)
            wait_until(lambda: load.acked_since(at), HOLD_MAX - HOLD, interval=0.1,
                       what=f"a revoke acknowledged with {name} down")
            if sig == signal.SIGSTOP:
                os.kill(pid, signal.SIGCONT)
            else:
                pair.wait_gone(name, pid, 5)
                pair.restart(name)
            back = time.monotonic()
            # Both operations answer again, and keep doing so for a while.
            wait_until(lambda: all((load.last_success(k) or 0) > back for k in ("revoke", "check")),
                       pairlib.LOAD_MAX - (back - load.started), interval=0.1,
                       what=f"revokes and checks to succeed after {name} came back")
            time.sleep(SETTLE)
        finally:
            calls = load.stop()
        end = calls[-1].t1 if calls else time.monotonic()

        # No check that began after an acknowledgement let that token through.
        wrongly_active = [c for c in calls if c.kind == "check" and c.token in load.acked
                          and load.acked[c.token] < c.t0 and c.status == 200]
        # Revokes were acknowledged while the process was down or stopped: the pair can still
        # revoke through this failure.
        during = [c for c in calls if c.kind == "revoke" and c.status == 200 and at < c.t0 and c.t1 < back]
        # Every acknowledged revocation is enforced by both nodes and stored on every Redis node.
        self.whole()
        lost = []
        for token in load.acked:
            for node in REVOKD_NODES:
                c = self.check_on(node, token)
                if (c.status, c.reason) != (401, "revoked"):
                    lost.append((node, c))
        keys = [self.key_name(t) for t in load.acked]
        wait_until(lambda: all(pair.redis(n, "EXISTS", *keys) == len(keys) for n in REDIS_NODES),
                   10, interval=0.2, what="every Redis node to hold every acknowledged revocation")

        failures = {}
        for c in calls:
            if c.t0 >= at and not (c.status == 200 if c.kind == "revoke" else ok(c)):
                k = f"{c.kind} {c.status or 'no answer'} {c.code or ''}".strip()
                failures[k] = failures.get(k, 0) + 1
        row = {
            "fault": f"{'SIGKILL' if sig == signal.SIGKILL else 'SIGSTOP'} {role} ({name})",
            "check_outage_ms": round(longest_gap(calls, "check", at, end) * 1000),
            "revoke_outage_ms": round(longest_gap(calls, "revoke", at, end) * 1000),
            "requests": len(calls), "acked": len(load.acked), "acked_during": len(during),
            "lost": len(lost), "wrongly_active": len(wrongly_active), "failures": failures,
        }
        self.rows.append(row)
        print(row, flush=True)
        self.assertEqual(wrongly_active, [], f"{row['fault']}: checks answered active after the revoke was acknowledged")
        self.assertEqual(lost, [], f"{row['fault']}: acknowledged revocations not enforced")
        self.assertTrue(during, f"{row['fault']}: no revoke was acknowledged while the process was down")

    def test_fault_table(self):
        self.rows = []
        roles = ["redis primary", "redis replica", *SENTINELS, *REVOKD_NODES]
        try:
            for role in roles:
                for sig in (signal.SIGKILL, signal.SIGSTOP):
                    with self.subTest(fault=role, signal=sig.name):
                        self.fault(role, sig)
        finally:
            print("\n| fault | check outage | revoke outage | requests | acknowledged (during the fault) "
                  "| lost | wrongly active | failures |")
            print("|---|--:|--:|--:|--:|--:|--:|---|")
            for r in self.rows:
                fails = ", ".join(f"{k}: {n}" for k, n in sorted(r["failures"].items())) or "none"
                print(f"| {r['fault']} | {r['check_outage_ms']} ms | {r['revoke_outage_ms']} ms | "
                      f"{r['requests']} | {r['acked']} ({r['acked_during']}) | {r['lost']} | "
                      f"{r['wrongly_active']} | {fails} |", flush=True)


if __name__ == "__main__":
    pairlib.main()
