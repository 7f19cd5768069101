"""Connections a client cannot exhaust: a per-address limit counted across every worker, and a
deadline for a request's head and body from its first byte (REVOKD_REQUEST_TIMEOUT), so that
neither idle sockets nor a head trickled a byte a second lock other clients out. Other clients
connect from another loopback address, 127.0.0.2, as a second host would."""

import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LOOPBACK  # noqa: E402

OTHER = "127.0.0.2"
MONITOR = "127.0.0.3"  # reads /metrics, so that its own connection counts with neither
MAX_CONNECTIONS = 24
PER_ADDRESS = 12
REQUEST_TIMEOUT = 2


def open_from(port, source, timeout=5):
    """A connection to revokd from the loopback address `source`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect((LOOPBACK, port))
    return sock


def closed_by_peer(sock, within):
    """True when the server closes sock (end of file or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def get_from(port, source, path="/healthz"):
    """GET path on a fresh connection from `source`: the response, or None when refused."""
    try:
        sock = open_from(port, source)
    except OSError:
        return None
    try:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return harness._parse_response(data, final=True)
    except OSError:
        return None
    finally:
        sock.close()


def read_answer(test, sock):
    """The response on sock, read until it is whole; fails test if sock closes first."""
    data = b""
    while harness._parse_response(data) is None:
        chunk = sock.recv(4096)
        test.assertTrue(chunk, "closed before the answer")
        data += chunk
    return harness._parse_response(data)


def healthz_from(port, source):
    resp = get_from(port, source)
    return resp.status if resp is not None else None


class ConnectionLimitsTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
                  "REVOKD_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
                  "REVOKD_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
                  "REVOKD_CONNECTION_TIMEOUT": "30"}

    def setUp(self):
        super().setUp()
        self.socks = []
        self.addCleanup(self.close_all)
        # The connections of the test before (closed by the client) must be gone.
        harness.wait_until(lambda: self.connections() == 0, 10, what="no open connections")

    def close_all(self):
        for s in self.socks:
            s.close()

    def metric(self, name, daemon=None):
        resp = get_from((daemon or self.revokd).port, MONITOR, "/metrics")
        self.assertIsNotNone(resp, "/metrics refused")
        for line in resp.body.decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
        raise AssertionError(f"no {name} in /metrics")

    def connections(self, daemon=None):
        """Open connections, not counting the one that asks."""
        return self.metric("revokd_http_connections", daemon) - 1

    def limit_hits(self, limit, daemon=None):
        return self.metric(f'revokd_http_limit_hits_total{{limit="{limit}"}}', daemon)

    def test_idle_sockets_of_one_address_do_not_lock_out_others(self):
        # A deadline far longer than the test, which counts what it holds open.
        daemon = self.start_revokd(dict(self.revokd_env, REVOKD_REQUEST_TIMEOUT="30"))
        before = self.limit_hits("max_connections_per_address", daemon)
        for _ in range(MAX_CONNECTIONS):
            self.socks.append(open_from(daemon.port, LOOPBACK))
        # The address got its share; the connections beyond it were closed at once.
        harness.wait_until(lambda: self.connections(daemon) == PER_ADDRESS, 10, what="the per-address share")
        # Refused ones are closed as they are accepted, one by one: wait for all of them (a
        # single select saw only those closed so far), then make sure no other one follows.
        closed = set()

        def refused(wait):
            readable, _, _ = select.select([s for s in self.socks if s not in closed], [], [], wait)
            closed.update(s for s in readable if closed_by_peer(s, 0.1))
            return len(closed) >= MAX_CONNECTIONS - PER_ADDRESS
        harness.wait_until(lambda: refused(0.2), 10, what="the connections beyond the share to be closed")
        refused(0.5)
        self.assertEqual(len(closed), MAX_CONNECTIONS - PER_ADDRESS)
        self.assertEqual(self.limit_hits("max_connections_per_address", daemon) - before,
                         MAX_CONNECTIONS - PER_ADDRESS)
        # Another address is served while the idle sockets stay open.
        for _ in range(5):
            self.assertEqual(healthz_from(daemon.port, OTHER), 200)
        self.assertEqual(self.connections(daemon), PER_ADDRESS)

    def test_connection_that_sends_nothing_is_cut_at_the_request_deadline(self):
        """A new connection's first request is due from its opening: idle sockets from many
        addresses cannot hold the connections until the idle timeout (30 s here)."""
        sock = open_from(self.revokd.port, LOOPBACK)
        self.socks.append(sock)
        start = time.monotonic()
        self.assertTrue(closed_by_peer(sock, REQUEST_TIMEOUT + 5))
        self.assertGreaterEqual(time.monotonic() - start, REQUEST_TIMEOUT - 0.5)

    def test_trickled_head_is_cut_at_the_request_deadline(self):
        """A client sending one byte a second resets libmicrohttpd's idle timer with every byte;
        the request deadline still closes it, REQUEST_TIMEOUT after its first byte."""
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        sock = open_from(self.revokd.port, LOOPBACK)
        self.socks.append(sock)
        before = self.limit_hits("request_timeout")
        start = time.monotonic()
        closed_at = None
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_at = time.monotonic()
                break
            if closed_by_peer(sock, 0.5):
                closed_at = time.monotonic()
                break
            time.sleep(0.5)
        self.assertIsNotNone(closed_at, "the trickling connection was never closed")
        elapsed = closed_at - start
        self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT - 0.5)
        self.assertLess(elapsed, REQUEST_TIMEOUT + 3)
        self.assertEqual(self.limit_hits("request_timeout") - before, 1)

    def test_trickling_clients_do_not_lock_out_others(self):
        """MAX_CONNECTIONS clients, each sending one byte a second, once held every connection:
        now one address gets its share, each is cut at the deadline, and another address is
        served all along."""
        stop = threading.Event()
        cut = []

        def trickle():
            while not stop.is_set():
                try:
                    sock = open_from(self.revokd.port, LOOPBACK)
                except OSError:
                    time.sleep(0.1)
                    continue
                try:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
                    while not stop.is_set():
                        sock.sendall(b"a")
                        if closed_by_peer(sock, 1.0):
                            cut.append(1)
                            break
                except OSError:
                    cut.append(1)
                finally:
                    sock.close()

        threads = [threading.Thread(target=trickle, daemon=True) for _ in range(MAX_CONNECTIONS)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 3 * REQUEST_TIMEOUT
            served = 0
            while time.monotonic() < deadline:
                self.assertEqual(healthz_from(self.revokd.port, OTHER), 200)
                served += 1
                time.sleep(0.2)
            self.assertGreater(served, 10)
        finally:
            stop.set()
            for t in threads:
                t.join(5)
        self.assertGreater(len(cut), 0)

    def test_idle_keep_alive_connection_is_not_a_slow_request(self):
        """The deadline runs from a request's first byte: a kept-alive connection that waits
        longer than REQUEST_TIMEOUT between requests is governed by the idle timeout only."""
        sock = open_from(self.revokd.port, LOOPBACK)
        self.socks.append(sock)
        for attempt in range(2):
            if attempt:
                time.sleep(REQUEST_TIMEOUT + 1.5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_answer(self, sock).status, 200)

    def test_request_sent_in_pieces_within_the_deadline_is_served(self):
        sock = open_from(self.revokd.port, LOOPBACK)
        self.socks.append(sock)
        for piece in (b"GET /heal", b"thz HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(REQUEST_TIMEOUT / 5)
        self.assertEqual(read_answer(self, sock).status, 200)


if __name__ == "__main__":
    harness.main()
