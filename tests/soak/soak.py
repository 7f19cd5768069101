#!/usr/bin/env python3
"""Soak test of the replicated pair: `./dev soak [SECONDS]` (tests/soak/README.md).

Starts deploy/local-pair (tests/pair/pairlib.py), then for SECONDS of load runs a few client
threads through HAProxy: checks of unrevoked tokens, revokes (each acknowledged one is checked at
once and remembered), checks of remembered revocations, admin revoke-alls, hostile requests and
connection churn (one client opens a connection per request, the others keep theirs alive). In
the middle the Redis primary is SIGKILLed, the Sentinels name another, the killed node comes back
as a replica; later both revokd nodes get SIGHUP. At the end every acknowledged revocation is
checked on both revokd nodes directly, and revokd's RSS and descriptors are compared with what
they were after the warm-up.

Exit status 0 when every bound held, 1 otherwise (the report says why), 2 for usage errors.
Everything runs on 127.0.0.1, every wait is bounded, and the pair is always stopped.
"""

import collections
import http.client
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "pair"))

import pairlib  # noqa: E402  (tests/pair/pairlib.py, which imports tests/integration/harness.py)
from pairlib import LOOPBACK, REVOKD_NODES, harness, wait_until  # noqa: E402

# --- load -----------------------------------------------------------------------------------
# Four clients at 12 operations a second each, about 60 requests a second in all (a revoke and a
# revoke-all are each followed by a check of the token). That is a small fraction of what one
# node serves, on purpose: the soak runs beside the whole pair (three Redis, three Sentinels, two
# revokd, HAProxy) on a 2-core machine that may be busy with other work, and it looks for growth
# and lost revocations over time, not for throughput (./dev bench does that).
KEEPALIVE_CLIENTS = 3      # one connection each, kept alive (reopened when closed)
CHURN_CLIENTS = 1          # a new connection for every request
OPS_PER_SECOND = 12        # per client
MIX = (                    # operation, weight
    ("check", 40),         # a never-revoked token: 200 active
    ("revoke", 20),        # a new token: 200, then its check must be 401 revoked
    ("check_revoked", 25),  # a token whose revocation was acknowledged: 401 revoked
    ("revoke_all", 3),     # admin revoke-all of a subject: 200, then its token 401 revoked
    ("hostile", 12),       # one of HOSTILE: its 4xx
)
FRESH_TOKENS = 200         # the unrevoked tokens the checks cycle through
MINT_BATCH = 100           # tokens per `revokectl mint --count`
MINT_LOW = 60              # refill a pool below this
HTTP_TIMEOUT = 5.0         # s for one exchange (HAProxy gives up on a node after 3 s)
TOKEN_WAIT = 30.0          # s a client may wait for a minted token

# --- schedule (fractions of SECONDS of load) --------------------------------------------------
MIN_SECONDS = 30
FAILOVER_AT = 0.40
SIGHUP_AT = 0.75
SETTLE = 5.0               # s without load before each RSS/descriptor sample
FAILOVER_TAIL = 10.0       # s after the pair is whole again that still count as the failover
SIGHUP_TAIL = 5.0          # s after the SIGHUP that count as its window

# --- bounds ----------------------------------------------------------------------------------
# RSS: after the warm-up revokd's heap is at its working size; what may legitimately still grow
# is the verified-token cache (about 150 bytes per distinct token checked, under 2 MiB for the
# tokens of a 10-minute run at this rate) and malloc arenas touched again after the reconnects of
# the failover. 16 MiB is several times that, and still far below what a leak of a few hundred
# bytes per request (about 35,000 requests in 10 minutes) or per connection would add.
RSS_BOUND_KB = 16 * 1024
# Descriptors: listeners, event loops, a Redis and a Sentinel link per worker, and the HAProxy
# connections of at most a handful of concurrent requests (sampled with no load running). A leak
# per failover, reload or hostile request would show as more; 16 leaves room for connections
# HAProxy keeps idle, and for a link reopened elsewhere after the failover.
FD_BOUND = 16
# Requests without a definite answer (any 5xx, no answer) outside the failover and SIGHUP
# windows: more than this share of them fails the run (a node that keeps failing is not soaked).
OUTSIDE_ERROR_SHARE = 0.01

FINAL_RETRIES = 5          # a final check that gets 503 or no answer is asked again this often
READY_TIMEOUT = 60.0       # s for the nodes and Redis to be whole again after the failover


def log(msg):
    print(msg, flush=True)


def kib(kb):
    return f"{kb / 1024:.1f} MiB"


# ---------------------------------------------------------------------------------------------
# HTTP

class Client:
    """HTTP/1.1 to 127.0.0.1:port, on one kept-alive connection or a new one per request.
    request() never raises for transport errors: it returns (status, body, error)."""

    def __init__(self, port, keepalive):
        self.port, self.keepalive = port, keepalive
        self.conn, self.used = None, 0
        self.stale_retries = 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn, self.used = None, 0

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            if self.conn is None or not self.keepalive:
                self.close()
                self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=HTTP_TIMEOUT)
            reused = self.used > 0
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                self.used += 1
                if not self.keepalive or r.will_close:
                    self.close()
                return r.status, parse_body(data), None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                # The other end closed a kept-alive connection as we reused it: the request
                # never got there, as a browser would assume; send it once more on a new one.
                if reused and attempt == 0:
                    self.stale_retries += 1
                    continue
                return None, None, e
            except (OSError, http.client.HTTPException) as e:
                self.close()
                return None, None, e
        raise AssertionError("unreachable")


def parse_body(data):
    try:
        obj = json.loads(data)
    except ValueError:
        return {"raw": data[:200].decode("utf-8", "replace")}
    return obj if isinstance(obj, dict) else {"raw": repr(obj)[:200]}


def label_of(status, body, error):
    """What an answer was, for the counts: '200 active', '401 revoked', '503 store_unavailable',
    'no answer (TimeoutError)'."""
    if status is None:
        return f"no answer ({type(error).__name__})"
    body = body or {}
    if status == 200 and body.get("active") is True:
        return "200 active"
    if status == 401 and body.get("reason"):
        return f"401 {body['reason']}"
    code = body.get("error")
    if isinstance(code, str):
        return f"{status} {code}"
    return f"{status} {'revoked_all' if body.get('revoked_all') else 'ok' if status == 200 else 'non-JSON'}"


def raw_exchange(port, data, read_answer=True):
    """Bytes on a new connection; the status of the answer (None when none came)."""
    with socket.create_connection((LOOPBACK, port), timeout=HTTP_TIMEOUT) as s:
        try:
            s.sendall(data)
        except OSError as e:
            return None, None, e
        if not read_answer:
            return None, None, None
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = s.recv(4096)
                if not chunk:
                    break
                received += chunk
        except OSError as e:
            return None, None, e
    try:
        status = int(received.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return None, None, ConnectionError(f"no status line: {received[:80]!r}")
    body = parse_body(received.partition(b"\r\n\r\n")[2])
    return status, body, None


# ---------------------------------------------------------------------------------------------
# Tokens

class Tokens:
    """Tokens minted with `revokectl mint --count` from the pair's dev key: a fixed set of
    never-revoked ones, and pools of single-use ones for revokes and revoke-alls, refilled by
    a thread of their own. Each has a subject and a jti of its own."""

    def __init__(self, key_path, ttl, stop):
        self.key_path, self.ttl, self.stop = key_path, ttl, stop
        self.batch = 0
        self.pools = {"revoke": queue.Queue(), "victim": queue.Queue()}
        self.minted = 0
        self.fresh = self.mint("fresh", FRESH_TOKENS)
        self.forged = self.fresh[0][:-6] + ("AAAAAA" if not self.fresh[0].endswith("AAAAAA") else "BBBBBB")
        t = int(time.time())
        self.expired = harness.mint(harness.Key("RSA", "RS256", None, priv_path=key_path),
                                    sub="soak-expired", iat=t - 1000, exp=t - 500)
        for kind in self.pools:
            self.refill(kind)
        self.thread = threading.Thread(target=self._run, name="minter", daemon=True)

    def mint(self, kind, n):
        self.batch += 1
        prefix = f"soak-{kind}-{self.batch}"
        argv = [harness.revokectl_bin(), "mint", "--key", self.key_path, "--sub", prefix,
                "--jti", prefix, "--ttl", str(self.ttl), "--count", str(n)]
        out = subprocess.run(argv, env=harness.clean_env(), capture_output=True, text=True, timeout=60)
        tokens = out.stdout.split()
        if out.returncode != 0 or len(tokens) != n:
            raise RuntimeError(f"revokectl mint --count {n} failed ({out.returncode}): {out.stderr.strip()}")
        self.minted += n
        return tokens

    def refill(self, kind):
        for t in self.mint(kind, MINT_BATCH):
            self.pools[kind].put(t)

    def _run(self):
        while not self.stop.is_set():
            for kind, pool in self.pools.items():
                if pool.qsize() < MINT_LOW:
                    try:
                        self.refill(kind)
                    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                        log(f"minting failed: {e}")
            self.stop.wait(0.2)

    def take(self, kind):
        return self.pools[kind].get(timeout=TOKEN_WAIT)


def subject_of(token):
    return harness.jwt_parts(token)[1]["sub"]


# ---------------------------------------------------------------------------------------------
# What the load saw

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = collections.Counter()          # operation -> requests sent
        self.answers = collections.Counter()       # (operation, label) -> count
        self.errors = collections.Counter()        # label of a 5xx or no answer -> count
        self.error_times = []                      # (sent, answered, label) of each of them
        self.hard = []                             # acknowledged revocation answered active
        self.hard_count = 0
        self.unexpected = []                       # a definite answer that is wrong
        self.unexpected_count = 0
        self.acked = {}                            # token -> (operation, ack time)
        self.acked_list = []
        self.ok_times = {"revoke": [], "check": []}  # when a revoke got 200, a check 200/401
        self.windows = []                          # (start, end) of failover and SIGHUP

    def in_window(self, t0, t1):
        return any(a <= t1 and t0 <= b for a, b in self.windows)

    def record(self, op, label, status, t0, t1, error=None):
        """One request. error: whether it got no definite answer (default: no answer or 5xx)."""
        if error is None:
            error = status is None or status >= 500
        with self.lock:
            self.sent[op] += 1
            self.answers[(op, label)] += 1
            if error:
                self.errors[label] += 1
                self.error_times.append((t0, t1, label))
            if op in ("revoke", "revoke_all") and status == 200:
                self.ok_times["revoke"].append(t1)
            if op.startswith("check") and status in (200, 401):
                self.ok_times["check"].append(t1)

    def errors_outside(self):
        """The errors of requests that overlapped no failover or SIGHUP window (known only once
        the run is over), by label."""
        with self.lock:
            return collections.Counter(label for t0, t1, label in self.error_times
                                       if not self.in_window(t0, t1))

    def acknowledge(self, token, op, t):
        with self.lock:
            if token not in self.acked:
                self.acked[token] = (op, t)
                self.acked_list.append(token)

    def some_acked(self):
        with self.lock:
            return random.choice(self.acked_list) if self.acked_list else None

    def fail_hard(self, msg):
        with self.lock:
            self.hard_count += 1
            if len(self.hard) < 20:
                self.hard.append(msg)

    def fail_unexpected(self, msg):
        with self.lock:
            self.unexpected_count += 1
            if len(self.unexpected) < 20:
                self.unexpected.append(msg)


# ---------------------------------------------------------------------------------------------
# Hostile requests: (name, expected status, expected 401 reason or None, how to send it)

def hostile_rows(tokens, port):
    big_body = b'{"token":"' + b"a" * 20000 + b'"}'
    big_token = "a" * 9500    # over REVOKD_MAX_TOKEN_BYTES + 1 KiB: revokd's JSON 431
    json_ct = {"Content-Type": "application/json"}

    def http(method, path, body=None, headers=None):
        return lambda c: c.request(method, path, body, headers)

    two_lengths = (b"POST /v1/revoke HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 2\r\nContent-Length: 12\r\n\r\n{}")
    truncated = (b"POST /v1/revoke HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"token\":\"")
    return (
        ("non-JSON body", 415, None, http("POST", "/v1/revoke", b"hello", {"Content-Type": "text/plain"})),
        ("malformed JSON", 400, None, http("POST", "/v1/revoke", b"{not json", json_ct)),
        ("oversized body", 413, None, http("POST", "/v1/revoke", big_body, json_ct)),
        ("oversized header", 431, None, http("GET", "/v1/check", None, {"Authorization": "Bearer " + big_token})),
        ("garbage token", 401, "malformed", http("GET", "/v1/check", None, {"Authorization": "Bearer garbage"})),
        ("no token", 401, "missing_token", http("GET", "/v1/check")),
        ("forged signature", 401, "invalid_signature",
         http("GET", "/v1/check", None, {"Authorization": "Bearer " + tokens.forged})),
        ("expired token", 401, "expired", http("GET", "/v1/check", None, {"Authorization": "Bearer " + tokens.expired})),
        ("bad method", 405, None, http("DELETE", "/v1/check")),
        ("unknown path", 404, None, http("GET", "/v1/nope")),
        ("two Content-Length", 400, None, lambda c: raw_exchange(port, two_lengths)),
        # Half a body, then the client is gone: no answer to wait for; what it must not leave
        # behind is a descriptor or memory.
        ("truncated body, client gone", None, None, lambda c: raw_exchange(port, truncated, read_answer=False)),
    )


# ---------------------------------------------------------------------------------------------
# The load

class Load:
    def __init__(self, pair, tokens, stats):
        self.pair, self.tokens, self.stats = pair, tokens, stats
        self.port = pair.port("haproxy")
        self.admin = {"Authorization": "Bearer " + pair.env["REVOKD_ADMIN_KEY"]}
        self.hostile = hostile_rows(tokens, self.port)
        self.stop = threading.Event()
        self.running = threading.Event()
        self.running.set()
        self.busy = 0
        self.busy_lock = threading.Condition()
        self.clients = [Client(self.port, True) for _ in range(KEEPALIVE_CLIENTS)] + \
                       [Client(self.port, False) for _ in range(CHURN_CLIENTS)]
        self.threads = [threading.Thread(target=self._worker, args=(c,), name=f"client-{i}", daemon=True)
                        for i, c in enumerate(self.clients)]
        ops, weights = zip(*MIX)
        self.ops, self.weights = ops, weights

    def start(self):
        for t in self.threads:
            t.start()

    def pause(self):
        """No request in flight and every client connection closed, within HTTP_TIMEOUT + 5 s."""
        self.running.clear()
        deadline = time.monotonic() + HTTP_TIMEOUT * 2 + 5
        with self.busy_lock:
            while self.busy and time.monotonic() < deadline:
                self.busy_lock.wait(0.1)

    def resume(self):
        self.running.set()

    def finish(self):
        self.stop.set()
        self.running.set()
        for t in self.threads:
            t.join(HTTP_TIMEOUT * 4 + TOKEN_WAIT)

    def _worker(self, client):
        period = 1.0 / OPS_PER_SECOND
        next_at = time.monotonic() + random.random() * period
        while not self.stop.is_set():
            if not self.running.is_set():
                client.close()
                self.running.wait(1.0)
                next_at = time.monotonic()
                continue
            with self.busy_lock:
                self.busy += 1
            try:
                self._one(client, random.choices(self.ops, self.weights)[0])
            except queue.Empty:
                now = time.monotonic()
                self.stats.record("mint", "no token minted in time", None, now, now)
            finally:
                with self.busy_lock:
                    self.busy -= 1
                    self.busy_lock.notify_all()
            next_at += period
            now = time.monotonic()
            if next_at < now - 1.0:      # fell behind (a slow answer): do not burst to catch up
                next_at = now
            self.stop.wait(max(0.0, next_at - now))
        client.close()

    def _call(self, client, op, method, path, body=None, headers=None):
        t0 = time.monotonic()
        status, rbody, error = client.request(method, path, body, headers)
        t1 = time.monotonic()
        label = label_of(status, rbody, error)
        self.stats.record(op, label, status, t0, t1)
        return status, rbody, label, t0, t1

    def _check(self, client, op, token):
        return self._call(client, op, "GET", "/v1/check", None, {"Authorization": "Bearer " + token})

    def _expect_revoked(self, client, op, token, since):
        status, body, label, t0, t1 = self._check(client, op, token)
        if status == 200:
            self.stats.fail_hard(f"{op}: a token whose revocation was acknowledged at {since:.3f} "
                                 f"answered {label} at {t0:.3f}-{t1:.3f}: {body}")
        elif status is not None and status < 500 and label != "401 revoked":
            self.stats.fail_unexpected(f"{op}: expected 401 revoked, got {label}: {body}")

    def _one(self, client, op):
        st = self.stats
        if op == "check_revoked":
            token = st.some_acked()
            if token is None:
                op = "check"
            else:
                self._expect_revoked(client, "check_revoked", token, st.acked[token][1])
                return
        if op == "check":
            token = random.choice(self.tokens.fresh)
            status, body, label, _, _ = self._check(client, "check", token)
            if status is not None and status < 500 and label != "200 active":
                st.fail_unexpected(f"check of a never-revoked token: expected 200 active, got {label}: {body}")
        elif op == "revoke":
            token = self.tokens.take("revoke")
            status, body, label, _, t1 = self._call(client, "revoke", "POST", "/v1/revoke", {"token": token})
            if status == 200:
                st.acknowledge(token, "revoke", t1)
                self._expect_revoked(client, "check_just_revoked", token, t1)
            elif status is not None and status < 500:
                st.fail_unexpected(f"revoke: expected 200, got {label}: {body}")
        elif op == "revoke_all":
            token = self.tokens.take("victim")
            sub = subject_of(token)
            status, body, label, _, t1 = self._call(
                client, "revoke_all", "POST", f"/v1/admin/subjects/{sub}/revoke-all",
                {"iss": None, "reason": "soak"}, self.admin)
            if status == 200:
                st.acknowledge(token, "revoke_all", t1)
                self._expect_revoked(client, "check_after_revoke_all", token, t1)
            elif status is not None and status < 500:
                st.fail_unexpected(f"revoke-all: expected 200, got {label}: {body}")
        elif op == "hostile":
            name, want, reason, send = random.choice(self.hostile)
            t0 = time.monotonic()
            status, body, error = send(client)
            t1 = time.monotonic()
            if want is None:
                label = "sent, no answer awaited" if error is None else f"not sent ({type(error).__name__})"
                st.record(f"hostile: {name}", label, None, t0, t1, error=error is not None)
                return
            label = label_of(status, body, error)
            st.record(f"hostile: {name}", label, status, t0, t1)
            if status is not None and status < 500 and (status != want or (reason and body.get("reason") != reason)):
                st.fail_unexpected(f"hostile {name}: expected {want} {reason or ''}, got {label}: {body}")


# ---------------------------------------------------------------------------------------------
# The pair's processes

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def sample(pair):
    """{node: (pid, rss KiB, fds)}"""
    out = {}
    for node in REVOKD_NODES:
        pid = pair.pid(node)
        if pid is None:
            raise RuntimeError(f"{node} is not running")
        out[node] = (pid, harness.rss(pid) // 1024, fd_count(pid))
    return out


def redis_memory(pair):
    """(primary name, used_memory bytes, keys) of the primary the Sentinels name."""
    name = pair.current_primary()
    if name is None:
        return None, None, None
    info = pair.redis(name, "INFO", "memory")
    used = next(int(line.split(":", 1)[1]) for line in info.splitlines() if line.startswith("used_memory:"))
    return name, used, pair.redis(name, "DBSIZE")


def metrics(pair, node):
    """The plain samples of a node's /metrics, by series."""
    conn = http.client.HTTPConnection(LOOPBACK, pair.port(node), timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + pair.env["REVOKD_ADMIN_KEY"]})
        r = conn.getresponse()
        status, text = r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"{node} /metrics answered {status}")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def reloads_ok(pair, node):
    return metrics(pair, node).get('revokd_reloads_total{result="ok"}', 0)


def ready(pair, node):
    try:
        return harness.http_request(pair.port(node), "GET", "/readyz", timeout=2).status == 200
    except (OSError, http.client.HTTPException):
        return False


def failover(pair, stats):
    """SIGKILL the primary, wait for the Sentinels to name another, bring the killed node back
    (as a replica of the new one) and wait until it has synced and both nodes are ready."""
    ev = {}
    old = pair.current_primary()
    if old is None:
        raise RuntimeError("the Sentinels name no primary before the failover")
    pid = pair.pid(old)
    ev["old"] = old
    ev["kill"] = time.monotonic()
    pair.signal(old, signal.SIGKILL)
    stats.windows.append((ev["kill"], float("inf")))
    pair.wait_gone(old, pid, 10)
    log(f"  SIGKILL {old} (pid {pid})")

    def named():
        p = pair.current_primary()
        return p if p not in (None, old) else None

    ev["new"] = wait_until(named, READY_TIMEOUT, interval=0.1, what="the Sentinels to name a new primary")
    ev["named"] = time.monotonic()
    log(f"  the Sentinels name {ev['new']} after {ev['named'] - ev['kill']:.1f} s")
    log("  " + pair.restart(old))
    ev["restarted"] = time.monotonic()

    def synced():
        info = pair.redis(old, "INFO", "replication")
        return "role:slave" in info and "master_link_status:up" in info

    wait_until(synced, READY_TIMEOUT, interval=0.2, what=f"{old} to sync with {ev['new']}")
    ev["synced"] = time.monotonic()
    wait_until(lambda: all(ready(pair, n) for n in REVOKD_NODES), READY_TIMEOUT, interval=0.2,
               what="both revokd nodes to be ready")
    ev["whole"] = time.monotonic()
    log(f"  {old} is a synced replica {ev['synced'] - ev['kill']:.1f} s after the kill; "
        f"both nodes ready after {ev['whole'] - ev['kill']:.1f} s")
    stats.windows[-1] = (ev["kill"], ev["whole"] + FAILOVER_TAIL)
    return ev


def longest_gap(times, since, until):
    good = sorted(t for t in times if since <= t <= until)
    edges = [since] + good + [until]
    return max(b - a for a, b in zip(edges, edges[1:]))


def final_check(pair, stats, tokens):
    """Every acknowledged revocation on both nodes directly: 401 revoked. The never-revoked
    tokens: 200 active. Returns a list of failures."""
    failures = []
    counts = collections.Counter()
    for node in REVOKD_NODES:
        client = Client(pair.port(node), True)
        items = [(t, True) for t in stats.acked_list] + [(t, False) for t in tokens.fresh]
        for token, revoked in items:
            for attempt in range(FINAL_RETRIES + 1):
                status, body, error = client.request("GET", "/v1/check", None, {"Authorization": "Bearer " + token})
                label = label_of(status, body, error)
                if status is not None and status < 500:
                    break
                time.sleep(0.2)
            counts[(node, "revoked" if revoked else "never revoked", label)] += 1
            want = "401 revoked" if revoked else "200 active"
            if label != want:
                what = stats.acked[token] if revoked else ("never revoked",)
                failures.append(f"{node}: {what[0]} token {harness.token_id(token)}: expected {want}, got {label}")
        client.close()
    return failures, counts


# ---------------------------------------------------------------------------------------------

def main(argv):
    if len(argv) != 2 or not argv[1].isdigit() or int(argv[1]) < MIN_SECONDS:
        sys.stderr.write(f"usage: soak.py SECONDS (at least {MIN_SECONDS})\n")
        return 2
    seconds = int(argv[1])
    warmup = min(30, max(5, seconds // 10))
    for prog in ("redis-server", "redis-cli", "haproxy", "curl", "openssl", "setsid"):
        if shutil.which(prog) is None:
            sys.stderr.write(f"soak: {prog} is not on PATH\n")
            return 1

    pair = pairlib.Pair("soak")
    stats = Stats()
    failures = []
    passed = False
    load = None
    minter_stop = threading.Event()
    try:
        pair.start()
        tokens = Tokens(pair.private_key, seconds + 3600, minter_stop)
        tokens.thread.start()
        load = Load(pair, tokens, stats)
        log(f"load: {KEEPALIVE_CLIENTS} kept-alive clients and {CHURN_CLIENTS} with a new connection per "
            f"request, {OPS_PER_SECOND} operations/s each, for {seconds} s (warm-up {warmup} s, "
            f"failover at {FAILOVER_AT * seconds:.0f} s, SIGHUP at {SIGHUP_AT * seconds:.0f} s)")
        t_start = time.monotonic()
        load.start()

        # Warm-up, then the baseline with no load running.
        time.sleep(warmup)
        load.pause()
        time.sleep(SETTLE)
        base = sample(pair)
        base_redis = redis_memory(pair)
        base_reloads = {n: reloads_ok(pair, n) for n in REVOKD_NODES}
        paused = time.monotonic() - t_start - warmup
        load.resume()
        log("baseline after the warm-up: " + ", ".join(
            f"{n} RSS {kib(r)} fds {f}" for n, (_, r, f) in base.items()))
        series = [(f"{warmup} s, idle (baseline)", {n: (r, f) for n, (_, r, f) in base.items()})]

        def at(fraction):   # load time -> monotonic time, the pause left out
            return t_start + paused + fraction * seconds

        def wait_till(t):
            """Sleep until t, sampling RSS and descriptors every 60 s meanwhile."""
            while True:
                now = time.monotonic()
                if now >= t:
                    return
                next_sample = t_start + paused + (int((now - t_start - paused) / 60) + 1) * 60
                if next_sample <= t:
                    time.sleep(max(0.0, next_sample - time.monotonic()))
                    s = sample(pair)
                    el = time.monotonic() - t_start - paused
                    series.append((f"{el:.0f} s, under load", {n: (r, f) for n, (_, r, f) in s.items()}))
                    with stats.lock:
                        sent, errs = sum(stats.sent.values()), sum(stats.errors.values())
                    log(f"{el:5.0f} s: {sent} requests, {errs} without a definite answer, " + ", ".join(
                        f"{n} RSS {kib(r)} fds {f}" for n, (_, r, f) in s.items()))
                else:
                    time.sleep(t - now)

        wait_till(at(FAILOVER_AT))
        log(f"{time.monotonic() - t_start - paused:5.0f} s: failover of the Redis primary")
        ev = failover(pair, stats)

        wait_till(at(SIGHUP_AT))
        t_hup = time.monotonic()
        log(f"{t_hup - t_start - paused:5.0f} s: SIGHUP to both revokd nodes")
        stats.windows.append((t_hup, t_hup + SIGHUP_TAIL))
        for n in REVOKD_NODES:
            pair.signal(n, signal.SIGHUP)
        hup_reloads = {}
        for n in REVOKD_NODES:
            try:
                hup_reloads[n] = wait_until(
                    lambda n=n: (lambda v: v if v > base_reloads[n] else None)(reloads_ok(pair, n)),
                    10, interval=0.2, what=f"{n} to count the reload")
            except AssertionError as e:
                failures.append(f"SIGHUP: {e}")
                hup_reloads[n] = reloads_ok(pair, n)

        wait_till(at(1.0))
        t_stop = time.monotonic()
        load.finish()
        minter_stop.set()
        log(f"{t_stop - t_start - paused:5.0f} s: load stopped")

        # The end: the pair whole, no load, then the same sample as the baseline.
        wait_until(lambda: all(ready(pair, n) for n in REVOKD_NODES), READY_TIMEOUT, interval=0.2,
                   what="both revokd nodes to be ready at the end")
        time.sleep(SETTLE)
        end = sample(pair)
        end_redis = redis_memory(pair)
        cache = {n: metrics(pair, n).get("revokd_token_cache_entries") for n in REVOKD_NODES}
        series.append(("end, idle", {n: (r, f) for n, (_, r, f) in end.items()}))
        final_failures, final_counts = final_check(pair, stats, tokens)

        # ---- judge ----
        for n in REVOKD_NODES:
            if end[n][0] != base[n][0]:
                failures.append(f"{n} is another process at the end (pid {base[n][0]} -> {end[n][0]})")
            if end[n][1] - base[n][1] > RSS_BOUND_KB:
                failures.append(f"{n}: RSS grew by {kib(end[n][1] - base[n][1])} (bound {kib(RSS_BOUND_KB)})")
            if end[n][2] - base[n][2] > FD_BOUND:
                failures.append(f"{n}: descriptors grew by {end[n][2] - base[n][2]} (bound {FD_BOUND})")
        if stats.hard_count:
            failures.append(f"{stats.hard_count} checks answered active for an acknowledged revocation")
        if stats.unexpected_count:
            failures.append(f"{stats.unexpected_count} definite answers were wrong (see below)")
        if final_failures:
            failures.append(f"{len(final_failures)} final checks did not answer as expected (see below)")
        total = sum(stats.sent.values())
        errors_outside = stats.errors_outside()
        outside = sum(errors_outside.values())
        if total and outside > OUTSIDE_ERROR_SHARE * total:
            failures.append(f"{outside} requests outside the failover and SIGHUP windows got no definite "
                            f"answer ({100.0 * outside / total:.2f} %, bound {100 * OUTSIDE_ERROR_SHARE:.0f} %)")

        # ---- report ----
        fo_end = ev["whole"] + FAILOVER_TAIL
        rv_gap = longest_gap(stats.ok_times["revoke"], ev["kill"], fo_end)
        ck_gap = longest_gap(stats.ok_times["check"], ev["kill"], fo_end)
        load_s = t_stop - t_start - paused
        acked_by = collections.Counter(op for op, _ in stats.acked.values())
        stale = sum(c.stale_retries for c in load.clients)
        log("")
        log(f"==== soak report: {load_s:.0f} s of load through HAProxy, {KEEPALIVE_CLIENTS} kept-alive "
            f"client(s) + {CHURN_CLIENTS} with a new connection per request ====")
        log(f"requests sent: {total} ({total / load_s:.1f}/s); tokens minted: {tokens.minted}")
        log("requests by kind:")
        for op, n in sorted(stats.sent.items(), key=lambda kv: (-kv[1], kv[0])):
            log(f"  {op:40} {n:8}")
        log("answers by kind and status/code:")
        for (op, label), n in sorted(stats.answers.items()):
            log(f"  {op:40} {label:36} {n:8}")
        log("errors by kind (a 5xx or no answer), whole run / outside the failover and SIGHUP windows:")
        if not stats.errors:
            log("  none")
        for label, n in sorted(stats.errors.items(), key=lambda kv: -kv[1]):
            log(f"  {label:40} {n:8} / {errors_outside.get(label, 0)}")
        log(f"kept-alive connections found closed and the request sent again: {stale}")
        log(f"acknowledged revocations: {acked_by['revoke']} revokes, {acked_by['revoke_all']} revoke-alls; "
            f"checks answering active for one of them: {stats.hard_count}")
        log("final checks on each node directly:")
        for (node, what, label), n in sorted(final_counts.items()):
            log(f"  {node:10} {what:14} {label:24} {n:8}")
        log(f"failover: SIGKILL {ev['old']} at {ev['kill'] - t_start - paused:.1f} s; Sentinels named "
            f"{ev['new']} after {ev['named'] - ev['kill']:.1f} s; {ev['old']} restarted after "
            f"{ev['restarted'] - ev['kill']:.1f} s, a synced replica after {ev['synced'] - ev['kill']:.1f} s; "
            f"both nodes ready after {ev['whole'] - ev['kill']:.1f} s")
        log(f"  outage through HAProxy: longest stretch without a revoke answered 200 {rv_gap:.1f} s, "
            f"without a check answered 200/401 {ck_gap:.1f} s")
        log(f"SIGHUP at {t_hup - t_start - paused:.0f} s: reloads ok " + ", ".join(
            f"{n} {base_reloads[n]:.0f} -> {hup_reloads[n]:.0f}" for n in REVOKD_NODES))
        for n in REVOKD_NODES:
            (_, r0, f0), (_, r1, f1) = base[n], end[n]
            log(f"{n} (pid {end[n][0]}): RSS {kib(r0)} -> {kib(r1)} ({(r1 - r0) / 1024:+.1f} MiB, bound "
                f"{kib(RSS_BOUND_KB)}); descriptors {f0} -> {f1} ({f1 - f0:+d}, bound {FD_BOUND}); "
                f"token cache {cache[n]:.0f} entries")
        log("RSS MiB / descriptors over the run (" + ", ".join(REVOKD_NODES) + "):")
        for when, s in series:
            log(f"  {when:26} " + "   ".join(f"{s[n][0] / 1024:6.1f} / {s[n][1]:3}" for n in REVOKD_NODES))
        (p0, m0, k0), (p1, m1, k1) = base_redis, end_redis
        log(f"Redis primary used_memory: {p0} {m0 / 1048576:.2f} MiB ({k0} keys) after the warm-up -> "
            f"{p1} {m1 / 1048576:.2f} MiB ({k1} keys) at the end")
        shown = stats.hard + stats.unexpected + final_failures[:20]
        if shown:
            log("wrong answers (first of each kind):")
            for m in shown:
                log("  " + m)
        passed = not failures
        log("result: " + ("PASS" if passed else "FAIL\n  " + "\n  ".join(failures)))
        return 0 if passed else 1
    except Exception as e:  # report, stop the pair, fail
        log(f"soak: {type(e).__name__}: {e}")
        return 1
    finally:
        minter_stop.set()
        if load is not None:
            load.finish()
        if not passed and pair.started:
            sys.stderr.write(pair.logs())
        pair.stop()
        if passed:
            pair.cleanup()
        else:
            log(f"the pair's state and logs are kept in {pair.tmp}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
