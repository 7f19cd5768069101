"""Helpers for the high-availability tests: one replicated pair (deploy/local-pair) per test.

Each test gets its own pair in a fresh temporary state dir on a free base port range (base..base+22
all free on each of the pair's loopback addresses, bases picked at random from 20000-39900 in steps of 100), started with
`local-pair start --detach` and always stopped with `local-pair stop`. A failing test prints the
log of every process of the pair. HTTP, tokens and Redis access come from
tests/integration/harness.py (imported, not copied). Everything is on 127.0.0.1 and every wait
is bounded.
"""

import atexit
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402  (tests/integration/harness.py)
from harness import LOOPBACK, Resp, RespError, http_request, wait_until  # noqa: E402,F401

LOCAL_PAIR = os.path.join(REPO, "deploy", "local-pair")
SPAN = 23                  # the pair uses base .. base+22
BASE_RANGE = range(20000, 40000, 100)
START_ATTEMPTS = 3         # a port range taken between the probe and the start: try another
START_TIMEOUT = 120        # seconds for the whole `local-pair start`
STOP_TIMEOUT = 60          # seconds for `local-pair stop`
RESTART_TIMEOUT = 60       # seconds for `local-pair restart NAME`
LOG_TAIL = 12000           # characters of each log printed when a test fails

REDIS_NODES = ("redis-primary", "redis-replica", "redis-replica-2")
REVOKD_NODES = ("revokd-a", "revokd-b")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
# One loopback address per host of the layout (LB host, host A, host B), for the tests that cut
# links between hosts with iptables; the other tests run everything on 127.0.0.1.
SPLIT_HOSTS = ("127.0.0.10", "127.0.0.11", "127.0.0.12")
ALL = ("redis-primary", "redis-replica", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3",
       "revokd-a", "revokd-b", "haproxy")


_live_pairs = set()   # pairs started and not yet stopped by this process


def _kill_live_pairs_now():
    """SIGKILL every process of every pair still running (after SIGCONT, for a frozen one)."""
    for pair in list(_live_pairs):
        for name in ALL:
            pid = pair.pid(name)
            if pid is not None:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass


def _on_terminate(signum, frame):
    # meson (timeout) or a user stopped the test: the pair runs detached (setsid) and would
    # outlive us, so kill it at once, then die of the same signal.
    _kill_live_pairs_now()
    for pair in list(_live_pairs):
        pair.cleanup()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@atexit.register
def _stop_live_pairs():
    for pair in list(_live_pairs):
        try:
            pair.stop()
        except Exception:  # best effort at interpreter exit; fall back to SIGKILL
            _kill_live_pairs_now()


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_terminate)


def ports_free(base, hosts):
    """True when nothing is bound to any of base..base+SPAN-1 on any of hosts."""
    for host in set(hosts):
        for port in range(base, base + SPAN):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    return False
    return True


def pick_base(hosts, exclude=()):
    """A random base port whose whole range is free right now."""
    bases = [b for b in BASE_RANGE if b not in exclude]
    random.shuffle(bases)
    for base in bases[:50]:
        if ports_free(base, hosts):
            return base
    raise RuntimeError("no free port range of %d ports found in %d-%d" %
                       (SPAN, BASE_RANGE.start, BASE_RANGE.stop))


def parse_env_file(path):
    """pair.env: `export NAME='value'` lines (single-quoted by local-pair's sq)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("export ") or "=" not in line:
                continue
            name, _, value = line[len("export "):].partition("=")
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1].replace("'\\''", "'")
            out[name] = value
    return out


def host_port(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


class Pair:
    """One deploy/local-pair instance in its own state dir."""

    def __init__(self, label="pair", hosts=(LOOPBACK,) * 3):
        self.hosts = hosts
        self.tmp = tempfile.mkdtemp(prefix=f"revokd-{label}-")
        self.dir = os.path.join(self.tmp, "state")
        self.base = None
        self.env = {}
        self.started = False
        self.start_output = ""

    # -- running local-pair ---------------------------------------------------------------
    def _env(self):
        env = harness.clean_env({
            "REVOKD_BIN": harness.revokd_bin(),
            "REVOKECTL_BIN": harness.revokectl_bin(),
            "REVOKD_PAIR_DIR": self.dir,
            "REVOKD_PAIR_READY_TIMEOUT": "30",
            "REVOKD_PAIR_STOP_TIMEOUT": "5",
            "REVOKD_PAIR_HOSTS": " ".join(self.hosts),
        })
        if self.base is not None:
            env["REVOKD_PAIR_BASE_PORT"] = str(self.base)
        return env

    def run(self, *args, timeout=60, check=True):
        proc = subprocess.run([LOCAL_PAIR, *args], env=self._env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"local-pair {' '.join(args)} exited with {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def start(self):
        tried = []
        for attempt in range(START_ATTEMPTS):
            self.base = pick_base(self.hosts, tried)
            tried.append(self.base)
            t0 = time.monotonic()
            _live_pairs.add(self)
            proc = self.run("start", "--detach", timeout=START_TIMEOUT, check=False)
            self.start_output = proc.stdout + proc.stderr
            if proc.returncode == 0:
                self.started = True
                self.env = parse_env_file(os.path.join(self.dir, "pair.env"))
                print(f"pair started on base port {self.base} in {time.monotonic() - t0:.1f} s "
                      f"(state {self.dir})", flush=True)
                return self
            self.stop()
            if "already in use" not in self.start_output or attempt == START_ATTEMPTS - 1:
                raise AssertionError(f"local-pair start failed ({proc.returncode}):\n"
                                     f"{self.start_output}\n{self.logs()}")
        raise AssertionError("unreachable")

    def stop(self):
        """Stop everything (a frozen process is thawed first so it can take SIGTERM)."""
        if not os.path.isdir(os.path.join(self.dir, "pids")):
            return
        for name in ALL:
            pid = self.pid(name)
            if pid is not None and proc_state(pid) == "T":
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        proc = self.run("stop", timeout=STOP_TIMEOUT, check=False)
        if proc.returncode == 0:
            _live_pairs.discard(self)
        else:
            sys.stderr.write(f"local-pair stop failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def restart(self, name):
        out = self.run("restart", name, timeout=RESTART_TIMEOUT)
        return out.stdout.strip()

    def status(self):
        return self.run("status", timeout=30, check=False).stdout

    # -- processes ------------------------------------------------------------------------
    def pid(self, name):
        """The pid local-pair recorded for NAME, if that process still runs (start time
        checked, so a recycled pid is never returned)."""
        try:
            with open(os.path.join(self.dir, "pids", name + ".pid"), encoding="ascii") as f:
                pid, start = f.read().split()
            pid = int(pid)
        except (OSError, ValueError):
            return None
        if proc_start_time(pid) != start or proc_state(pid) in (None, "Z"):
            return None
        return pid

    def signal(self, name, sig):
        pid = self.pid(name)
        if pid is None:
            raise AssertionError(f"{name} is not running")
        os.kill(pid, sig)
        return pid

    def wait_gone(self, name, pid, timeout):
        wait_until(lambda: proc_start_time(pid) is None or proc_state(pid) == "Z"
                   or self.pid(name) != pid, timeout, what=f"{name} (pid {pid}) to exit")

    # -- addresses ------------------------------------------------------------------------
    def address(self, name):
        """(host, port) of a process of the pair."""
        if name in SENTINELS:
            return host_port(self.env["REVOKD_PAIR_SENTINELS"].split(",")[SENTINELS.index(name)])
        return host_port(self.env["REVOKD_PAIR_" + name.upper().replace("-", "_")])

    def port(self, name):
        host, port = self.address(name)
        assert host == LOOPBACK, f"{name} is not on {LOOPBACK}: {host}"
        return port

    @property
    def private_key(self):
        return self.env["REVOKD_PAIR_JWT_PRIVATE_KEY"]

    # -- Redis ----------------------------------------------------------------------------
    def redis(self, name, *args, timeout=2.0):
        host, port = self.address(name)
        with Resp(port, host=host, timeout=timeout) as r:
            return r.command(*args)

    def role(self, name):
        """'master', 'slave' or None (no answer)."""
        try:
            return self.redis(name, "ROLE")[0]
        except (OSError, ConnectionError, RespError):
            return None

    def current_primary(self):
        """The Redis node a majority of Sentinels names (the name, or None)."""
        votes = {}
        for sentinel in SENTINELS:
            try:
                host, p = self.redis(sentinel, "SENTINEL", "get-master-addr-by-name",
                                     self.env["REVOKD_PAIR_SENTINEL_MASTER"], timeout=1.0)
            except (OSError, ConnectionError, RespError, TypeError, ValueError):
                continue
            votes[(host, int(p))] = votes.get((host, int(p)), 0) + 1
        for name in REDIS_NODES:
            if votes.get(self.address(name), 0) >= 2:
                return name
        return None

    def connected_replicas(self, name):
        info = self.redis(name, "INFO", "replication")
        for line in info.splitlines():
            if line.startswith("connected_slaves:"):
                return int(line.split(":", 1)[1])
        return None

    # -- configuration --------------------------------------------------------------------
    def sentinel_setting(self, setting, n=1):
        """A per-primary Sentinel setting (e.g. down-after-milliseconds) from the generated
        conf/sentinel-N.conf, as an int."""
        path = os.path.join(self.dir, "conf", f"sentinel-{n}.conf")
        with open(path, encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if len(words) == 4 and words[0] == "sentinel" and words[1] == setting \
                        and words[2] == self.env["REVOKD_PAIR_SENTINEL_MASTER"]:
                    return int(words[3])
        raise AssertionError(f"{path} has no 'sentinel {setting}' line")

    def revokd_setting(self, name, default):
        """A revokd setting as the nodes run it (the saved settings, else revokd's default)."""
        with open(os.path.join(self.dir, "revokd-settings"), "rb") as f:
            for item in f.read().split(b"\0"):
                k, _, v = item.decode().partition("=")
                if k == name:
                    return v
        return default

    # -- logs -----------------------------------------------------------------------------
    def log_path(self, name):
        return os.path.join(self.dir, "logs", name + ".log")

    def log_text(self, name):
        try:
            with open(self.log_path(name), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def logs(self):
        parts = []
        logdir = os.path.join(self.dir, "logs")
        names = sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []
        for fn in names:
            text = self.log_text(fn[:-4]) if fn.endswith(".log") else ""
            if len(text) > LOG_TAIL:
                text = f"[... {len(text) - LOG_TAIL} characters left out ...]\n" + text[-LOG_TAIL:]
            parts.append(f"----- {os.path.join(logdir, fn)} -----\n{text}")
        return "\n".join(parts) + "\n----- end of pair logs -----\n"

    def request_ids(self, name):
        """request_id of every request line node NAME logged."""
        ids = set()
        for line in self.log_text(name).splitlines():
            obj = harness._json_or_none(line)
            if isinstance(obj, dict) and obj.get("event") == "request" and obj.get("request_id"):
                ids.add(obj["request_id"])
        return ids


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat, as local-pair records it; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(") ", 1)[1].split()[19]


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# HTTP against the pair


class Call:
    """One request and its answer, with monotonic send/receive times (seconds)."""

    __slots__ = ("kind", "token", "rid", "t0", "t1", "status", "body", "error", "node")

    def __init__(self, kind, token, rid, t0, t1, status, body, error, node=None):
        self.kind, self.token, self.rid = kind, token, rid
        self.t0, self.t1, self.status, self.body, self.error = t0, t1, status, body, error
        self.node = node

    @property
    def reason(self):
        return self.body.get("reason") if isinstance(self.body, dict) else None

    @property
    def code(self):
        return self.body.get("error") if isinstance(self.body, dict) else None

    def __repr__(self):
        body = self.body if self.body is not None else self.error
        return f"<{self.kind} {self.rid} {self.status} {body!r} at {self.t0:.3f}-{self.t1:.3f}>"


_rid_lock = threading.Lock()
_rid_count = [0]


def request_id(prefix):
    with _rid_lock:
        _rid_count[0] += 1
        return f"{prefix}-{os.getpid()}-{_rid_count[0]}"


def call(target, kind, token=None, timeout=5.0, rid_prefix="pt", node=None):
    """kind 'check' (GET /v1/check with the bearer token), 'revoke' (POST /v1/revoke) or
    'readyz', to target: a port on 127.0.0.1 or a (host, port). Never raises for transport
    errors: status is None and error says why."""
    host, port = target if isinstance(target, tuple) else (LOOPBACK, target)
    rid = request_id(rid_prefix)
    headers = {"X-Request-Id": rid}
    if kind == "check":
        method, path, body = "GET", "/v1/check", None
        headers["Authorization"] = f"Bearer {token}"
    elif kind == "revoke":
        method, path, body = "POST", "/v1/revoke", {"token": token}
    elif kind == "readyz":
        method, path, body = "GET", "/readyz", None
    else:
        raise ValueError(kind)
    t0 = time.monotonic()
    try:
        r = http_request(port, method, path, body, headers, host=host, timeout=timeout)
        t1 = time.monotonic()
        try:
            parsed = r.json()
        except ValueError:
            parsed = {"raw": r.body[:200].decode("utf-8", "replace")}
        return Call(kind, token, rid, t0, t1, r.status, parsed, None, node)
    except (OSError, http.client.HTTPException) as e:
        return Call(kind, token, rid, t0, time.monotonic(), None, None, repr(e), node)


# ---------------------------------------------------------------------------------------------
# Load through HAProxy while something fails

LOAD_MAX = 80.0           # s: bound on one Load
LOAD_HTTP_TIMEOUT = 5.0


def ok(c):
    return c.status in (200, 401) and c.status is not None


class Load:
    """Two threads through HAProxy: revoke-then-check, and checks of acknowledged revocations."""

    def __init__(self, case):
        self.case = case
        self.calls = []
        self.acked = {}          # token -> time its revoke answered 200
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.started = time.monotonic()
        self.fresh = case.mint()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._revoker, self._checker)]

    def _record(self, c):
        with self.lock:
            self.calls.append(c)

    def _running(self):
        return not self.stop_flag.is_set() and time.monotonic() - self.started < LOAD_MAX

    def _revoker(self):
        while self._running():
            token = self.case.mint()
            r = call(self.case.haproxy, "revoke", token, timeout=LOAD_HTTP_TIMEOUT, rid_prefix="ld-r")
            self._record(r)
            if r.status == 200:
                with self.lock:
                    self.acked[token] = r.t1
            self._record(call(self.case.haproxy, "check", token, timeout=LOAD_HTTP_TIMEOUT, rid_prefix="ld-c"))

    def _checker(self):
        while self._running():
            with self.lock:
                tokens = list(self.acked)
            if tokens:
                self._record(call(self.case.haproxy, "check", random.choice(tokens),
                                  timeout=LOAD_HTTP_TIMEOUT, rid_prefix="ld-c"))
            self._record(call(self.case.haproxy, "check", self.fresh, timeout=LOAD_HTTP_TIMEOUT,
                              rid_prefix="ld-c"))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(LOAD_MAX + LOAD_HTTP_TIMEOUT + 5)
        return sorted(self.calls, key=lambda c: c.t0)

    def acked_since(self, t):
        """Whether a revoke sent after t has been acknowledged."""
        with self.lock:
            return any(c.kind == "revoke" and c.status == 200 and c.t0 > t for c in self.calls)

    def last_success(self, kind):
        with self.lock:
            done = [c.t1 for c in self.calls if c.kind == kind and
                    (c.status == 200 if kind == "revoke" else ok(c))]
        return max(done, default=None)


def longest_gap(calls, kind, since, until):
    """The longest time in [since, until] without a successful answer of this kind (a revoke
    succeeds with 200, a check with 200 or 401): the outage, hangs included."""
    good = sorted(c.t1 for c in calls if c.kind == kind and since <= c.t1 <= until and
                  (c.status == 200 if kind == "revoke" else ok(c)))
    edges = [since] + good + [until]
    return max(b - a for a, b in zip(edges, edges[1:]))


class PairTestCase(unittest.TestCase):
    """Starts a pair before each test, always stops it, prints its logs when the test fails."""

    hosts = (LOOPBACK,) * 3   # SPLIT_HOSTS for a test that cuts links between hosts

    def setUp(self):
        harness.revokd_bin()
        harness.revokectl_bin()
        for prog in ("redis-server", "redis-cli", "haproxy", "curl", "openssl", "setsid"):
            if shutil.which(prog) is None:
                self.skipTest(f"{prog} not on PATH")
        self.pair = Pair(self.id().rsplit(".", 1)[-1], hosts=self.hosts)
        self.addCleanup(self.pair.stop)
        self.pair.start()
        self.haproxy = self.pair.address("haproxy")
        self.key = harness.Key("RSA", "RS256", None, priv_path=self.pair.private_key)

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        pair = getattr(self, "pair", None)
        if pair is not None:
            if len(result.failures) + len(result.errors) > before:
                sys.stderr.write(f"\n----- logs of the pair of {self.id()} -----\n")
                sys.stderr.write(pair.logs())
                sys.stderr.flush()
            pair.cleanup()
        return out

    def mint(self, **kw):
        return harness.mint(self.key, **kw)

    def key_name(self, token):
        """The Redis key of a token's revocation, as `revokd --key-name jti ISS JTI` prints it."""
        _, claims, _ = harness.jwt_parts(token)
        return harness.revokd_key_name("jti", claims.get("iss", ""), harness.token_id(token))

    def check_on(self, node, token):
        return call(self.pair.address(node), "check", token, node=node)

    def revoke_on(self, node, token):
        return call(self.pair.address(node), "revoke", token, node=node)

    def assertRevokedOnBothNodes(self, token, context=""):
        for node in REVOKD_NODES:
            c = self.check_on(node, token)
            self.assertEqual((c.status, c.reason), (401, "revoked"),
                             f"{context}: {node} answered {c!r} for a revoked token")

    def assertActiveOnBothNodes(self, token, context=""):
        for node in REVOKD_NODES:
            c = self.check_on(node, token)
            self.assertEqual((c.status, (c.body or {}).get("active")), (200, True),
                             f"{context}: {node} answered {c!r} for an unrevoked token")


def main():
    unittest.main(verbosity=2)
