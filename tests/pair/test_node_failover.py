"""Losing one revokd node behind HAProxy (deploy/local-pair).

A few client threads send a bounded stream of checks through HAProxy, each request with its own
X-Request-Id, while one node is killed (SIGKILL) or stopped gracefully (SIGTERM). Which node
served a request is read from the nodes' own request logs in the state dir (HAProxy adds
nothing to tell them apart), by that request id.
"""

import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pairlib  # noqa: E402
from pairlib import call, wait_until  # noqa: E402

CLIENTS = 4                  # concurrent client threads
MAX_REQUESTS_PER_CLIENT = 5000
WARMUP_SECONDS = 1.5
AFTER_SECONDS = 2.5          # keep streaming this long after the node is gone
STREAM_MAX_SECONDS = 20.0
KILL_WINDOW = 0.02           # s: requests in flight at the kill, or sent between the signal and
                             # this long after the process is gone, may fail
LOG_SETTLE = 0.5             # s: request lines are written just after the reply


class Stream:
    """CLIENTS threads checking `token` through `port` until stopped (bounded)."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.calls = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                        for n in range(CLIENTS)]

    def _client(self, n):
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop_flag.is_set() or time.monotonic() - self.started > STREAM_MAX_SECONDS:
                return
            c = call(self.port, "check", self.token, rid_prefix=f"nf{n}")
            with self.lock:
                self.calls.append(c)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(STREAM_MAX_SECONDS + 10)
        return sorted(self.calls, key=lambda c: c.t0)


def ok(c):
    return c.status == 200 and (c.body or {}).get("active") is True


class NodeFailoverTest(pairlib.PairTestCase):

    def stream_around(self, victim, sig, exit_bound):
        """Stream, send `sig` to `victim` after the warm-up, wait until it is gone (bounded by
        exit_bound seconds), stream a little longer. Returns (calls, signalled_at, gone_at)."""
        token = self.mint()
        c = call(self.haproxy, "check", token)
        self.assertTrue(ok(c), c)
        stream = Stream(self.haproxy, token).start()
        try:
            time.sleep(WARMUP_SECONDS)
            pid = self.pair.pid(victim)
            self.assertIsNotNone(pid, f"{victim} is not running")
            signalled = time.monotonic()
            os.kill(pid, sig)
            self.pair.wait_gone(victim, pid, exit_bound)
            gone = time.monotonic()
            time.sleep(AFTER_SECONDS)
        finally:
            calls = stream.stop()
        time.sleep(LOG_SETTLE)
        return calls, signalled, gone

    def served_by(self, calls):
        logged = {n: self.pair.request_ids(n) for n in pairlib.REVOKD_NODES}
        return {c.rid: [n for n in pairlib.REVOKD_NODES if c.rid in logged[n]] for c in calls}

    def assertOnlyOtherNode(self, calls, victim, since, what):
        other = [n for n in pairlib.REVOKD_NODES if n != victim][0]
        served = self.served_by(calls)
        before = [c for c in calls if c.t1 < since - 0.1]
        after = [c for c in calls if c.t0 > since]
        self.assertTrue(after, f"no request sent after {what}")
        per_node = {n: sum(1 for c in before if n in served[c.rid]) for n in pairlib.REVOKD_NODES}
        self.assertTrue(all(per_node.values()),
                        f"before {what} both nodes should have served requests: {per_node}")
        wrong = [c for c in after if served[c.rid] != [other]]
        self.assertFalse(wrong, f"requests sent after {what} not served by {other} alone: "
                                f"{[(c, served[c.rid]) for c in wrong[:5]]}")
        return per_node, len(after)

    def test_sigkill_node(self):
        victim = "revokd-a"
        calls, killed, gone = self.stream_around(victim, signal.SIGKILL, 5)
        failed = [c for c in calls if not ok(c)]
        in_flight = [c for c in calls if c.t0 < killed < c.t1]
        window = in_flight + [c for c in calls if killed <= c.t0 <= gone + KILL_WINDOW]
        print(f"SIGKILL {victim}: {len(calls)} checks through HAProxy by {CLIENTS} clients, "
              f"{len(failed)} failed; may fail: {len(window)} ({len(in_flight)} in flight at the "
              f"kill, {len(window) - len(in_flight)} sent between the signal and "
              f"{KILL_WINDOW * 1000:.0f} ms after the process was gone, "
              f"{(gone - killed) * 1000:.1f} ms after the signal)")
        for c in failed:
            print(f"  failed at {(c.t0 - killed) * 1000:+.0f} ms: {c!r}")
        outside = [c for c in failed if c not in window]
        self.assertFalse(outside, f"requests failed away from the kill: {outside[:5]}")
        self.assertLessEqual(len(failed), len(window))
        per_node, after = self.assertOnlyOtherNode(calls, victim, gone, "the kill")
        print(f"before the kill served per node: {per_node}; all {after} requests sent after it "
              f"were served by the other node")

    def test_sigterm_node(self):
        victim = "revokd-a"
        grace_ms = int(self.pair.revokd_setting("REVOKD_SHUTDOWN_GRACE_MS", "0"))
        exit_bound = grace_ms / 1000 + 5
        calls, termed, gone = self.stream_around(victim, signal.SIGTERM, exit_bound)
        failed = [c for c in calls if not ok(c)]
        served = self.served_by(calls)
        drained = sum(1 for c in calls if c.t0 > termed and victim in served[c.rid])
        print(f"SIGTERM {victim}: {len(calls)} checks through HAProxy by {CLIENTS} clients, "
              f"{len(failed)} failed; it served {drained} more during its {grace_ms} ms grace and "
              f"exited {(gone - termed) * 1000:.0f} ms after the signal")
        for c in failed[:10]:
            print(f"  failed at {(c.t0 - termed) * 1000:+.0f} ms: {c!r}")
        self.assertEqual(failed, [], "a graceful stop must not fail any request")
        self.assertGreaterEqual((gone - termed) * 1000, grace_ms * 0.9,
                                "the node left before its shutdown grace")
        per_node, after = self.assertOnlyOtherNode(calls, victim, gone, "the node exited")
        print(f"before SIGTERM served per node: {per_node}; all {after} requests sent after the "
              f"exit were served by the other node")
        wait_until(lambda: "1/2 nodes up" in self.pair.status(), 5, interval=0.2,
                   what="HAProxy to report one node up")


if __name__ == "__main__":
    pairlib.main()
