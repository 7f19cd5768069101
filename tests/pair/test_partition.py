"""Network partitions of the deployed pair, cut with iptables between per-host loopback addresses.

The pair runs with one address per host (pairlib.SPLIT_HOSTS): the LB host (HAProxy, sentinel-3,
redis-replica-2), host A (revokd-a, redis-primary, sentinel-1) and host B (revokd-b,
redis-replica, sentinel-2). Every process listens on its host's address and connects from it
(Redis and Sentinel bind-source-addr, revokd REVOKD_REDIS_SOURCE_ADDRESS, HAProxy `source`), so
DROP rules between two addresses cut exactly the links between two hosts. The rules live in a
chain of their own, hooked into INPUT, and are always removed. Needs root and iptables.

Through each cut, the load of the fault table runs through HAProxy, and a client on the cut-off
host (from 127.0.0.1, which the rules leave alone) keeps checking acknowledged revocations on
that host's revokd node directly. Asserted, as for single failures: no acknowledged revocation
lost, no check answered "active" after the revocation was acknowledged (at HAProxy or on the
cut-off node), and revokes acknowledged through HAProxy while the cut lasts.

test_primary_host_cut_off: host A, with the Redis primary, loses the LB host and host B. The
primary keeps revokd-a and sentinel-1 but loses both replicas and two Sentinels, so the others
fail over while revokd-a can still read the old primary: the stale-primary window. revokd-a
fails closed once no Sentinel majority has confirmed its primary (2 x REVOKD_ROLE_CHECK_MS plus
the Redis timeout); the new primary takes its first acknowledged revocation only after Sentinel's
down-after-milliseconds and the failover. The test measures both and requires the first to come
before the second.
test_replica_host_cut_off: host B (a replica, a Sentinel, revokd-b) is cut off: HAProxy leaves
revokd-b, the primary keeps its other replica, and revokes go on being acknowledged; revokd-b,
alone with one Sentinel, fails closed.
"""

import os
import random
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pairlib  # noqa: E402
from pairlib import REDIS_NODES, REVOKD_NODES, SPLIT_HOSTS, Load, call, wait_until  # noqa: E402

WARMUP = 1.5      # s of load before the cut
CUT = 8.0         # s the cut lasts, at least
CUT_MAX = 45.0    # s at most, waiting for a revoke acknowledged through HAProxy meanwhile (a
                  # Sentinel that found its timer late enters TILT and fails nothing over for 30 s)
WHOLE_TIMEOUT = 45.0


def iptables(*args):
    subprocess.run(["iptables", "-w", "5", *args], check=True, capture_output=True, timeout=20)


class Partition:
    """DROP rules between one host and the others, in a chain of their own."""

    def __init__(self, host, others):
        self.chain = f"revokd-cut-{os.getpid()}"
        self.rules = [(host, o) for o in others] + [(o, host) for o in others]
        self.hooked = False

    def cut(self):
        iptables("-N", self.chain)
        for src, dst in self.rules:
            iptables("-A", self.chain, "-s", src, "-d", dst, "-j", "DROP")
        iptables("-I", "INPUT", "-j", self.chain)
        self.hooked = True

    def heal(self):
        if self.hooked:
            iptables("-D", "INPUT", "-j", self.chain)
            self.hooked = False
        subprocess.run(["iptables", "-w", "5", "-F", self.chain], capture_output=True, timeout=20)
        subprocess.run(["iptables", "-w", "5", "-X", self.chain], capture_output=True, timeout=20)


class PartitionTest(pairlib.PairTestCase):
    hosts = SPLIT_HOSTS

    def setUp(self):
        if shutil.which("iptables") is None or os.geteuid() != 0:
            self.fail("the partition tests need iptables and root (./dev test installs iptables)")
        super().setUp()

    def direct_checks(self, node, load, calls, stop):
        """A client on the cut-off host: checks of acknowledged revocations on its node."""
        while not stop.is_set() and time.monotonic() - load.started < pairlib.LOAD_MAX:
            with load.lock:
                tokens = list(load.acked)
            if tokens:
                calls.append(call(self.pair.address(node), "check", random.choice(tokens),
                                  timeout=pairlib.LOAD_HTTP_TIMEOUT, rid_prefix="cut", node=node))
            time.sleep(0.005)

    def partition(self, host_index, node):
        pair = self.pair
        host = SPLIT_HOSTS[host_index]
        part = Partition(host, [h for h in SPLIT_HOSTS if h != host])
        self.addCleanup(part.heal)
        load = Load(self).start()
        direct, stop = [], threading.Event()
        prober = threading.Thread(target=self.direct_checks, args=(node, load, direct, stop), daemon=True)
        prober.start()
        try:
            time.sleep(WARMUP)
            part.cut()
            cut_at = time.monotonic()
            time.sleep(CUT)
            wait_until(lambda: load.acked_since(cut_at), CUT_MAX - CUT, interval=0.1,
                       what="a revoke acknowledged through HAProxy during the cut")
            part.heal()
            healed = time.monotonic()
            time.sleep(1.0)
        finally:
            stop.set()
            calls = load.stop()
            prober.join(pairlib.LOAD_MAX)
        calls += direct
        acked_through_lb = sorted(t for t in load.acked.values() if cut_at < t < healed)

        def late(c):
            return c.kind == "check" and c.token in load.acked and load.acked[c.token] < c.t0

        wrongly_active = [c for c in calls if late(c) and c.status == 200]
        on_node = sorted((c for c in direct if cut_at < c.t0 < healed), key=lambda c: c.t0)
        answered = [c for c in on_node if c.status in (200, 401)]
        refused = [c for c in on_node if c.status == 503]
        last_answer = max((c.t1 for c in answered), default=cut_at)
        first_refusal = min((c.t1 for c in refused), default=None)

        # Heal, then every acknowledged revocation is enforced everywhere and stored on every node.
        def whole():
            primary = pair.current_primary()
            return (primary is not None and
                    pair.redis(primary, "INFO", "replication").count("state=online") == 2 and
                    all(call(pair.address(n), "readyz").status == 200 for n in REVOKD_NODES))
        wait_until(whole, WHOLE_TIMEOUT, interval=0.3, what="the pair to be whole after the cut healed")
        lost = [(n, t) for t in load.acked for n in REVOKD_NODES
                if (self.check_on(n, t).status, self.check_on(n, t).reason) != (401, "revoked")]
        keys = [self.key_name(t) for t in load.acked]
        wait_until(lambda: all(pair.redis(n, "EXISTS", *keys) == len(keys) for n in REDIS_NODES),
                   15, interval=0.2, what="every Redis node to hold every acknowledged revocation")

        ms = lambda t: None if t is None else round((t - cut_at) * 1000)  # noqa: E731
        row = {
            "cut": f"host {'LB A B'.split()[host_index]} ({host}) from the others",
            "check_outage_ms": round(pairlib.longest_gap(calls, "check", cut_at, healed) * 1000),
            "revoke_outage_ms": round(pairlib.longest_gap(calls, "revoke", cut_at, healed) * 1000),
            "acked": len(load.acked), "acked_during_cut": len(acked_through_lb),
            "first_ack_after_cut_ms": ms(acked_through_lb[0]) if acked_through_lb else None,
            f"{node}_last_answer_ms": ms(last_answer), f"{node}_first_503_ms": ms(first_refusal),
            f"{node}_checks_during_cut": len(on_node),
            "lost": len(lost), "wrongly_active": len(wrongly_active),
        }
        print(row, flush=True)
        self.assertEqual(wrongly_active, [], "a check answered active after the revoke was acknowledged")
        self.assertEqual(lost, [], "acknowledged revocations not enforced after the cut healed")
        self.assertTrue(acked_through_lb, "no revoke acknowledged through HAProxy during the cut")
        self.assertIsNotNone(first_refusal, f"{node}, cut off from the Sentinel majority, never failed closed")
        self.assertTrue(all(c.status == 503 for c in on_node if c.t0 > first_refusal),
                        f"{node} answered from its view again while still cut off")
        return row, acked_through_lb, last_answer

    def test_primary_host_cut_off(self):
        self.assertEqual(self.pair.current_primary(), "redis-primary")
        row, acked, last_answer = self.partition(1, "revokd-a")
        # The stale-primary window closed before the new primary acknowledged anything.
        self.assertLess(last_answer, acked[0],
                        "revokd-a still answered from the old primary after the new one acknowledged a revocation")
        self.assertNotEqual(self.pair.current_primary(), "redis-primary", "no failover happened")

    def test_replica_host_cut_off(self):
        row, acked, _ = self.partition(2, "revokd-b")
        self.assertEqual(self.pair.current_primary(), "redis-primary", "a replica's cut caused a failover")
        self.assertLess(row["revoke_outage_ms"], 5000, "revokes stopped while only a replica host was cut off")


if __name__ == "__main__":
    pairlib.main()
