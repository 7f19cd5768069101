"""The revocation feed across a Redis failover (deploy/local-pair).

A consumer follows GET /v1/events as Server-Sent Events through HAProxy while revocations are
made through it too; the Redis primary is killed (SIGKILL) and Sentinel promotes a replica. The
consumer keeps the last id it got and, whenever its stream ends or stalls, resumes with
Last-Event-ID, in turn on revokd-b, revokd-a and through HAProxy again. Every acknowledged revocation must reach
it exactly once, in the log's order, and what it got must be the new primary's log with
nothing missing in between.
"""

import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pairlib  # noqa: E402
from pairlib import harness, wait_until  # noqa: E402

BEFORE = 20              # revocations acknowledged before the failure
FAILOVER_MAX = 45.0      # s: a Sentinel in TILT may hold the failover back 30 s (pairlib)
AFTER = 20               # revocations acknowledged after it
STALL_S = 3.0            # s: a stream without a heartbeat this long is given up and resumed


class Consumer:
    """Follows the feed from the start, resuming by Last-Event-ID on the nodes in turn."""

    def __init__(self, pair, key):
        self.pair, self.key = pair, key
        self.items = []          # (id, event) in the order received
        self.resumed = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        nodes = ("haproxy", "revokd-b", "revokd-a")
        deadline = time.monotonic() + 120
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            node = nodes[self.resumed % len(nodes)]
            last = self.items[-1][0] if self.items else "0"
            try:
                stream = harness.EventStream(self.pair.port(node), self.key, last_event_id=last,
                                             timeout=STALL_S)
            except OSError:
                self.resumed += 1
                time.sleep(0.2)
                continue
            try:
                while not self.stop_flag.is_set() and stream.status == 200:
                    item = stream.next()
                    if item[0] == "event":
                        self.items.append((item[1], item[3]))
                    elif item[0] != "comment":
                        break
            except OSError:
                pass  # stalled: no heartbeat within STALL_S
            finally:
                stream.close()
            self.resumed += 1
            time.sleep(0.1)


class FeedFailoverTest(pairlib.PairTestCase):
    def admin_key(self):
        with open(os.path.join(self.pair.dir, "keys", "admin-keys"), encoding="utf-8") as f:
            return next(line.strip() for line in f if line.strip() and not line.startswith("#"))

    def revoke_acknowledged(self, n, deadline):
        """n revocations through HAProxy, each retried until acknowledged; their jtis."""
        done = []
        while len(done) < n:
            self.assertLess(time.monotonic(), deadline, f"only {len(done)} of {n} revocations acknowledged")
            token = self.mint()
            c = pairlib.call(self.haproxy, "revoke", token)
            while c.status != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
                c = pairlib.call(self.haproxy, "revoke", token)
            if c.status == 200:
                done.append(harness.jwt_parts(token)[1]["jti"])
        return done

    def test_feed_resumes_across_a_redis_failover(self):
        consumer = Consumer(self.pair, self.admin_key())
        consumer.thread.start()
        self.addCleanup(consumer.stop_flag.set)
        before = self.revoke_acknowledged(BEFORE, time.monotonic() + 30)
        wait_until(lambda: len(consumer.items) >= BEFORE, 10, what="the events before the failure")

        old = self.pair.current_primary()
        self.pair.signal(old, signal.SIGKILL)
        after = self.revoke_acknowledged(AFTER, time.monotonic() + FAILOVER_MAX + 30)
        new = self.pair.current_primary()
        self.assertNotEqual(new, old)
        wait_until(lambda: len(consumer.items) >= BEFORE + AFTER, 20, what="the events after the failover")
        consumer.stop_flag.set()
        consumer.thread.join(10)

        ids = [i for i, _ in consumer.items]
        self.assertEqual(len(ids), len(set(ids)), "an event came twice")
        self.assertEqual(ids, sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-"))),
                         "events out of order")
        got = [e["jti"] for _, e in consumer.items if e["kind"] == "jti"]
        missing = [j for j in before + after if j not in got]
        self.assertEqual(missing, [], "acknowledged revocations the consumer never got")
        # Nothing missing in between: from its first event on, the new primary's log is what the
        # consumer got (an entry the old primary held but never replicated may come first).
        log = [entry[0] for entry in
               self.pair.redis(new, "XRANGE", harness.DEFAULT_PREFIX + harness.LOG_SUFFIX, "-", "+")]
        tail = ids[ids.index(log[0]):] if log[0] in ids else ids
        self.assertEqual(tail, log, "the consumer's events differ from the new primary's log")
        self.assertGreaterEqual(consumer.resumed, 1, "the consumer never had to resume")


if __name__ == "__main__":
    pairlib.main()
