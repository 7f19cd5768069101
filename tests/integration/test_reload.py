"""Reload: SIGHUP and POST /v1/admin/reload read the issuers file, the key files and the admin keys
file again. A good reload takes effect between requests, drops no connection and clears the
verified-token cache; a broken file changes nothing and is logged and counted; a remote key set
configured as before stays in force until it is fetched anew."""

import http.client
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import idp  # noqa: E402
from harness import key_name, now  # noqa: E402

A = "https://a.reload.test"
B = "https://b.reload.test"
N = "https://new.reload.test"
R = "https://remote.reload.test"
ADMIN_OLD = "reload-admin-old-0123456789abcdef"
ADMIN_NEW = "reload-admin-new-0123456789abcdef"
ADMIN_NEWER = "reload-admin-newer-0123456789abcdef"

LOAD_THREADS = 4
LOAD_MAX_REQUESTS = 50000   # per thread: the load is bounded by count as well as by time
LOAD_SPAN = 25              # requests each thread completes before, and again after, the reload
EVENT_TIMEOUT = 10.0


def sign(iss, key, kid=..., **claims):
    kid = key.kid if kid is ... else kid
    header = {"alg": key.alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return harness.craft(header, harness.std_claims(iss=iss, **claims), key)


def replace_json(path, obj):
    """Write obj to path atomically (a reader sees the old file or the new, never half)."""
    harness.write_json(path + ".new", obj)
    os.replace(path + ".new", path)


def replace_text(path, text):
    with open(path + ".new", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".new", path)


def wait_event(daemon, event, mark, timeout=EVENT_TIMEOUT):
    """The first log line with this event written after log position mark."""
    return harness.wait_until(
        lambda: next((o for o in daemon.json_logs(mark) if isinstance(o, dict) and o.get("event") == event), None),
        timeout, interval=0.02, what=f"log event {event!r}")


def events(daemon, names, mark=0):
    return [o["event"] for o in daemon.json_logs(mark) if isinstance(o, dict) and o.get("event") in names]


def metric(daemon, line_re):
    text = daemon.request("GET", "/metrics").body.decode()
    m = re.search(r"^" + line_re + r" (\d+(?:\.\d+)?)$", text, re.M)
    if m is None:
        raise AssertionError(f"no metric {line_re!r} in /metrics")
    return int(float(m.group(1)))


def reloads(daemon):
    return {r: metric(daemon, r'revokd_reloads_total\{result="%s"\}' % r) for r in ("ok", "failed")}


class Load:
    """LOAD_THREADS threads, each on one keep-alive connection, sending GET /v1/check with the
    given tokens in turn until stopped (or LOAD_MAX_REQUESTS each). Every answer is recorded as
    (monotonic time sent, status); anything but a 200 on the same connection is a failure."""

    def __init__(self, port, tokens):
        self.port = port
        self.tokens = list(tokens)
        self.stop_event = threading.Event()
        self.sent = [[] for _ in range(LOAD_THREADS)]
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(LOAD_THREADS)]
        for t in self.threads:
            t.start()

    def _fail(self, i, what):
        with self.lock:
            self.failures.append(f"thread {i}: {what}")

    def _run(self, i):
        conn = http.client.HTTPConnection(harness.LOOPBACK, self.port, timeout=harness.HTTP_TIMEOUT)
        try:
            conn.connect()
            local = conn.sock.getsockname()
            for n in range(LOAD_MAX_REQUESTS):
                if self.stop_event.is_set():
                    return
                token = self.tokens[(n + i) % len(self.tokens)]
                t = time.monotonic()
                conn.request("GET", "/v1/check", headers={"Authorization": f"Bearer {token}"})
                resp = conn.getresponse()
                body = resp.read()
                self.sent[i].append((t, resp.status))
                if resp.status != 200:
                    self._fail(i, f"HTTP {resp.status} {body[:200]!r}")
                if resp.will_close or conn.sock is None or conn.sock.getsockname() != local:
                    self._fail(i, "the connection was closed")
                    return
        except Exception as e:  # a dropped connection, a timeout: a failure, recorded
            self._fail(i, f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def answered_since(self, t):
        """Answers each thread has recorded for requests sent at or after t."""
        return [sum(1 for sent, _ in s if sent >= t) for s in self.sent]

    def wait_each(self, since, count, timeout=20.0):
        harness.wait_until(lambda: self.failures or min(self.answered_since(since)) >= count, timeout,
                           interval=0.01, what=f"{count} answers per load thread")

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(harness.HTTP_TIMEOUT + 5)
        return sum(len(s) for s in self.sent)


class ReloadTest(harness.RevokdTestCase):
    """Each test starts its own revokd on its own files:
    issuers.json v1: A (keys/a.json: "stay" and "gone", two RSA keys) and B (an HMAC secret);
    v2 adds N (an ES256 PEM) and keys/a.json then holds "stay" only."""
    class_daemon = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.k_stay = cls.factory.rsa("stay", kid="stay")
        cls.k_gone = cls.factory.rsa("gone", kid="gone")
        cls.k_b = cls.factory.hmac("b", size=40)
        cls.k_n = cls.factory.ec("n")      # kid-less, as a PEM file's key is

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.tmp, self._testMethodName)
        os.makedirs(os.path.join(self.dir, "keys"))
        self.issuers_path = os.path.join(self.dir, "issuers.json")
        self.a_keys_path = os.path.join(self.dir, "keys", "a.json")
        self.admin_path = os.path.join(self.dir, "admin-keys")
        harness.write_admin_keys(self.admin_path, [ADMIN_OLD])
        replace_json(self.a_keys_path, {"keys": [self.k_stay.jwk(), self.k_gone.jwk()]})
        replace_json(self.issuers_path, self.v1())

    def v1(self):
        return {"issuers": [{"iss": A, "jwks_file": "keys/a.json"},
                            {"iss": B, "hmac_secret_file": self.k_b.secret_path}]}

    def v2(self):
        doc = self.v1()
        doc["issuers"].append({"iss": N, "public_key_file": self.k_n.pub_path, "public_key_alg": "ES256"})
        return doc

    def write_v2(self):
        replace_json(self.a_keys_path, {"keys": [self.k_stay.jwk()]})
        replace_json(self.issuers_path, self.v2())

    def start(self, **env):
        full = {"REVOKD_ISSUERS_FILE": self.issuers_path, "REVOKD_JWKS_FILE": None,
                "REVOKD_ADMIN_KEYS_FILE": self.admin_path}
        full.update(env)
        return self.start_revokd(full)

    def sighup(self, daemon):
        os.kill(daemon.proc.pid, signal.SIGHUP)

    def admin_reload(self, daemon, key=ADMIN_OLD):
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return daemon.request("POST", "/v1/admin/reload", headers=headers)

    def issuers_status(self, daemon):
        body = daemon.readyz().json()
        return {i["iss"]: (i["source"], i["keys"], i["last_fetch"], i["stale"]) for i in body["issuers"]}

    def assertLoadClean(self, load, total):
        self.assertEqual(load.failures, [], "requests failed during the reload")
        statuses = {status for s in load.sent for _, status in s}
        self.assertEqual(statuses, {200})
        self.assertGreaterEqual(total, 2 * LOAD_SPAN * LOAD_THREADS)

    # -- (a) ----------------------------------------------------------------------------------
    def test_sighup_good_file_under_load(self):
        daemon = self.start()
        stay = [sign(A, self.k_stay, sub=f"stay-{i}") for i in range(3)]
        gone = sign(A, self.k_gone, sub="gone")
        new = sign(N, self.k_n)
        b = sign(B, self.k_b, kid=None)
        self.assertTokenFailure(daemon.check(new), "invalid_issuer")
        # The token of the key about to go is verified, then answered from the cache.
        hits = metric(daemon, "revokd_token_cache_hits_total")
        self.assertActive(daemon.check(gone), gone)
        self.assertActive(daemon.check(gone), gone)
        harness.wait_until(lambda: metric(daemon, "revokd_token_cache_hits_total") >= hits + 1, 5,
                           what="the second check of the token to be a cache hit")

        load = Load(daemon.port, stay)
        self.addCleanup(load.stop)
        load.wait_each(0, LOAD_SPAN)
        self.write_v2()
        mark = daemon.log_mark()
        signalled = time.monotonic()
        self.sighup(daemon)
        event = wait_event(daemon, "reloaded", mark)
        seen = time.monotonic()
        load.wait_each(seen, LOAD_SPAN)
        total = load.stop()
        self.assertLoadClean(load, total)
        # Requests were on their way while the reload ran, not only before and after it.
        during = sum(1 for s in load.sent for sent, _ in s if signalled <= sent <= seen)
        self.assertGreater(during, 0)

        self.assertEqual(event["level"], "info")
        self.assertEqual(events(daemon, ("reloaded", "reload_failed"), mark), ["reloaded"])
        # At once, with no second chance: the cleared cache no longer vouches for it.
        self.assertTokenFailure(daemon.check(gone), "unknown_key")
        self.assertTokenFailure(daemon.check(sign(A, self.k_gone, sub="gone-2")), "unknown_key")
        self.assertActive(daemon.check(new), new)
        self.assertActive(daemon.check(b), b)
        for token in stay:
            self.assertActive(daemon.check(token), token)
        self.assertEqual(self.issuers_status(daemon), {A: ("files", 1, "loaded", False),
                                                       B: ("files", 1, "loaded", False),
                                                       N: ("files", 1, "loaded", False)})
        self.assertEqual(reloads(daemon), {"ok": 1, "failed": 0})

    # -- (b) ----------------------------------------------------------------------------------
    def test_sighup_broken_files_under_load(self):
        daemon = self.start()
        stay = [sign(A, self.k_stay, sub=f"stay-{i}") for i in range(3)]
        gone = sign(A, self.k_gone, sub="gone")
        new = sign(N, self.k_n)
        self.assertActive(daemon.check(gone), gone)
        before = self.issuers_status(daemon)

        load = Load(daemon.port, stay)
        self.addCleanup(load.stop)
        load.wait_each(0, LOAD_SPAN)
        mark = daemon.log_mark()
        # 1. The issuers file has mistakes (and the key file changed beside it).
        broken = self.v2()
        broken["issuers"][0]["audience"] = ["x"]
        broken["issuers"][2]["public_key_file"] = os.path.join(self.dir, "missing.pem")
        replace_json(self.a_keys_path, {"keys": [self.k_stay.jwk()]})
        replace_json(self.issuers_path, broken)
        self.sighup(daemon)
        first = wait_event(daemon, "reload_failed", mark)
        load.wait_each(time.monotonic(), LOAD_SPAN)
        # 2. The issuers file is right but a key file is not JSON.
        mark2 = daemon.log_mark()
        replace_json(self.issuers_path, self.v2())
        replace_text(self.a_keys_path, '{"keys": [')
        self.sighup(daemon)
        second = wait_event(daemon, "reload_failed", mark2)
        load.wait_each(time.monotonic(), LOAD_SPAN)
        total = load.stop()
        self.assertLoadClean(load, total)

        for event in (first, second):
            self.assertEqual(event["level"], "error")
        self.assertIn('issuers[0]: unknown member "audience"', first["message"])
        self.assertIn("issuers[2]: public_key_file", first["message"])
        self.assertIn("issuers[0]: jwks_file", second["message"])
        self.assertEqual(events(daemon, ("reloaded", "reload_failed"), mark), ["reload_failed", "reload_failed"])
        # Everything as it was: the key gone from the file is still in force, N still unknown.
        self.assertActive(daemon.check(gone), gone)
        self.assertActive(daemon.check(sign(A, self.k_gone, sub="gone-2")))
        self.assertTokenFailure(daemon.check(new), "invalid_issuer")
        self.assertEqual(self.issuers_status(daemon), before)
        self.assertEqual(reloads(daemon), {"ok": 0, "failed": 2})
        # And the next good reload is taken: a failed one holds nothing back.
        self.write_v2()
        mark = daemon.log_mark()
        self.sighup(daemon)
        wait_event(daemon, "reloaded", mark)
        self.assertActive(daemon.check(new), new)
        self.assertTokenFailure(daemon.check(gone), "unknown_key")
        self.assertEqual(reloads(daemon), {"ok": 1, "failed": 2})

    # -- (c) ----------------------------------------------------------------------------------
    def test_admin_reload(self):
        daemon = self.start()
        new = sign(N, self.k_n)
        for key in (None, "not-an-admin-key-0123456789", ADMIN_OLD + "x"):
            with self.subTest(key=key):
                resp = self.admin_reload(daemon, key)
                self.assertError(resp, 401, "unauthorized")
        self.assertEqual(reloads(daemon), {"ok": 0, "failed": 0})

        self.write_v2()
        mark = daemon.log_mark()
        resp = self.admin_reload(daemon)
        self.assertEqual(self.assertJsonResponse(resp, 200), {"reloaded": True})
        # The line is written before the answer, but read from revokd's output on its own.
        self.assertEqual(wait_event(daemon, "reloaded", mark)["level"], "info")
        self.assertEqual(events(daemon, ("reloaded", "reload_failed"), mark), ["reloaded"])
        self.assertActive(daemon.check(new), new)
        self.assertEqual(reloads(daemon), {"ok": 1, "failed": 0})

        broken = self.v2()
        broken["issuers"][1]["audience"] = ["x"]
        broken["issuers"].append({"iss": "https://m.reload.test", "jwks_file": "keys/missing.json"})
        replace_json(self.issuers_path, broken)
        mark = daemon.log_mark()
        body = self.assertError(self.admin_reload(daemon), 500, "reload_failed")
        self.assertEqual(set(body), {"error", "error_description"})
        lines = body["error_description"].split("\n")
        self.assertEqual(len(lines), 2, lines)
        self.assertIn('REVOKD_ISSUERS_FILE: issuers[1]: unknown member "audience"', lines[0])
        self.assertIn("REVOKD_ISSUERS_FILE: issuers[3]: jwks_file", lines[1])
        self.assertIn(os.path.join(self.dir, "keys", "missing.json"), lines[1])
        failed = wait_event(daemon, "reload_failed", mark)
        self.assertEqual(failed["level"], "error")
        self.assertEqual(events(daemon, ("reloaded", "reload_failed"), mark), ["reload_failed"])
        self.assertEqual(reloads(daemon), {"ok": 1, "failed": 1})
        self.assertActive(daemon.check(new), new)   # v2 is still in force
        self.assertTokenFailure(daemon.check(sign("https://m.reload.test", self.k_stay)), "invalid_issuer")

        # SIGHUP counts in the same series.
        mark = daemon.log_mark()
        self.sighup(daemon)
        wait_event(daemon, "reload_failed", mark)
        self.assertEqual(reloads(daemon), {"ok": 1, "failed": 2})
        replace_json(self.issuers_path, self.v1())
        mark = daemon.log_mark()
        self.sighup(daemon)
        wait_event(daemon, "reloaded", mark)
        self.assertEqual(reloads(daemon), {"ok": 2, "failed": 2})
        self.assertTokenFailure(daemon.check(new), "invalid_issuer")
        # Every reload logged once, and none for the refused calls.
        self.assertEqual(events(daemon, ("reloaded", "reload_failed")),
                         ["reloaded", "reload_failed", "reload_failed", "reloaded"])

    # -- (d) ----------------------------------------------------------------------------------
    def test_admin_keys_file_reloaded(self):
        daemon = self.start()

        def revoke(key, jti):
            return daemon.admin_revoke(key, {"jti": jti, "exp": now() + 600, "iss": A})

        self.assertJsonResponse(revoke(ADMIN_OLD, "by-old"), 200)
        harness.write_admin_keys(self.admin_path, [ADMIN_NEW])
        # Authorized by the key in force when the call came; the new file is in force after.
        self.assertEqual(self.assertJsonResponse(self.admin_reload(daemon, ADMIN_OLD), 200), {"reloaded": True})
        self.assertError(revoke(ADMIN_OLD, "old-after"), 401, "unauthorized")
        self.assertError(self.admin_reload(daemon, ADMIN_OLD), 401, "unauthorized")
        self.assertJsonResponse(revoke(ADMIN_NEW, "by-new"), 200)
        self.assertEqual(self.redis.keys(), sorted([key_name("jti", A, "by-old"), key_name("jti", A, "by-new")]))

        # A broken admin keys file (a key too short) changes nothing, its good key included.
        replace_text(self.admin_path, f"{ADMIN_NEWER}\nshort\n")
        body = self.assertError(self.admin_reload(daemon, ADMIN_NEW), 500, "reload_failed")
        self.assertIn("REVOKD_ADMIN_KEYS_FILE", body["error_description"])
        self.assertJsonResponse(revoke(ADMIN_NEW, "new-still"), 200)
        self.assertError(revoke(ADMIN_NEWER, "newer-not-yet"), 401, "unauthorized")

        # By SIGHUP.
        harness.write_admin_keys(self.admin_path, [ADMIN_NEWER])
        mark = daemon.log_mark()
        self.sighup(daemon)
        wait_event(daemon, "reloaded", mark)
        self.assertError(revoke(ADMIN_NEW, "new-after"), 401, "unauthorized")
        self.assertJsonResponse(revoke(ADMIN_NEWER, "by-newer"), 200)
        self.assertEqual(reloads(daemon), {"ok": 2, "failed": 1})
        self.assertFalse(self.redis.exists(key_name("jti", A, "old-after")))
        self.assertFalse(self.redis.exists(key_name("jti", A, "new-after")))
        self.assertFalse(self.redis.exists(key_name("jti", A, "newer-not-yet")))

    # -- remote key sets across a reload --------------------------------------------------------
    def test_remote_set_configured_alike_stays_until_fetched(self):
        pem = os.path.join(self.dir, "r.key.pem")
        jwk = idp.private_jwk_rsa("r-1", pem_path=pem)
        k_r = harness.Key("RSA", "RS256", "r-1", priv_path=pem)
        server = idp.JwksServer(keys=[jwk])
        self.addCleanup(server.stop)
        doc = self.v1()
        doc["issuers"].append({"iss": R, "jwks_url": server.url})
        replace_json(self.issuers_path, doc)
        daemon = self.start(REVOKD_JWKS_REFRESH_MIN="1")
        self.wait_ready(daemon, stable=1)
        token = sign(R, k_r)
        self.assertActive(daemon.check(token), token)

        # The set's server fails from now on; the reload keeps the set it fetched before.
        server.set_fault("status", status=503)
        fetches = server.requests(server.jwks_path)
        self.assertEqual(self.assertJsonResponse(self.admin_reload(daemon), 200), {"reloaded": True})
        fresh = sign(R, k_r, sub="after-reload")
        self.assertActive(daemon.check(fresh), fresh)
        self.assertEqual(daemon.readyz().status, 200)
        # The new fetch is made, fails, and the set stays in force, marked stale.
        server.wait_for_requests(fetches + 1, server.jwks_path)
        harness.wait_until(lambda: self.issuers_status(daemon)[R] == ("jwks_url", 1, "http_error", True),
                           EVENT_TIMEOUT, what="the failed fetch after the reload")
        self.assertActive(daemon.check(token), token)
        self.assertEqual(daemon.readyz().status, 200)

        # Configured otherwise (another URL), the set is not carried over: no keys until fetched.
        doc["issuers"][2]["jwks_url"] = server.url + "?v=2"
        replace_json(self.issuers_path, doc)
        self.assertEqual(self.assertJsonResponse(self.admin_reload(daemon), 200), {"reloaded": True})
        self.assertError(daemon.check(sign(R, k_r, sub="no-keys")), 503, "keys_unavailable")
        self.assertError(daemon.readyz(), 503, "keys_unavailable")
        server.set_fault("ok")
        self.wait_ready(daemon, stable=1)
        self.assertActive(daemon.check(token), token)
        self.assertEqual(self.issuers_status(daemon)[R], ("jwks_url", 1, "ok", False))


if __name__ == "__main__":
    harness.main()
