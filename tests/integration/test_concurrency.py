"""Many requests at once through the signature-check pool: every answer belongs to its own request.

A token the verified-token cache does not hold is verified on a pool thread while its request
waits, then the request goes on (Redis) on its worker's thread. These tests send hundreds of
distinct tokens at once from many client threads over keep-alive connections and check every
answer against the token it was for, so any mix-up of requests' state across the pool (claims,
token bytes, a POST body freed too early, a request resumed twice or never) shows as a wrong
body, a hang or a crash:

- checks (GET with a bearer token and POST with a JSON body) with the cache off, so every one goes
  through the pool: active tokens answer their own claims, revoked ones `revoked` with their own
  jti and sub, forged ones `invalid_signature`;
- the same with the cache on, twice over: the second pass answers identically from the cache,
  and revokd_token_cache_hits_total moves by exactly the second pass's genuine tokens;
- POST /v1/revoke at once for many tokens: each answer names its own token, and Redis holds
  every revocation;
- SIGTERM while uncached checks queue up behind a single pool thread: revokd exits 0 within a
  bound, every answer that arrived is well-formed, and nothing crashed;
- REVOKD_VERIFY_THREADS out of range stops revokd at start with status 2 and one line naming it.
"""

import concurrent.futures
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LOOPBACK, b64url, b64url_decode, key_name, revokd_key_name  # noqa: E402

ISS = "https://issuer.concurrency.test"
LEEWAY = harness.DEFAULT_LEEWAY
ADMIN_KEY = "admin-key-concurrency-0123456789abcdef"
HTTP_TIMEOUT = 10.0      # seconds for one exchange
RUN_TIMEOUT = 60.0       # seconds for a whole concurrent run
CLIENTS = 16             # client threads of the check and revoke runs
TOKENS = 300             # distinct genuine tokens checked at once
FORGED = 12              # forged tokens among them
UNCACHED = {"REVOKD_TOKEN_CACHE_SIZE": "0", "REVOKD_THREADS": "2", "REVOKD_VERIFY_THREADS": "3"}

REVOKED_TEXT = "the token has been revoked"
BAD_SIGNATURE_TEXT = "the signature does not verify"
# What must never appear in revokd's output.
CRASH = re.compile(r"Sanitizer|runtime error:|Segmentation fault|Aborted|core dumped|Fatal error|"
                   r"Assertion .* failed|double free|free\(\): |corrupted|Invalid (read|write)|"
                   r"definitely lost|==\d+==ERROR")


# ---------------------------------------------------------------------------------------------
# Tokens

class Tok:
    """A token and what every answer about it must say."""

    def __init__(self, token, jti, sub, exp, iat, forged=False):
        self.token, self.jti, self.sub, self.exp, self.iat = token, jti, sub, exp, iat
        self.forged = forged
        self.revoked = False

    def __repr__(self):
        return f"<Tok {self.jti}{' forged' if self.forged else ''}{' revoked' if self.revoked else ''}>"


def _mint_one(tag, i):
    jti, sub = f"{tag}-jti-{i:04d}", f"{tag}-user-{i:04d}@example.com"
    # A lifetime of its own per token, so that exp too tells tokens apart.
    token = harness.mint(harness.standard_keys()["rsa"], sub=sub, iss=ISS, jti=jti, ttl=900 + i)
    _, claims, _ = harness.jwt_parts(token)
    assert claims["jti"] == jti and claims["sub"] == sub and claims["iss"] == ISS, claims
    return Tok(token, jti, sub, claims["exp"], claims["iat"])


def mint_many(tag, n):
    """n RS256 tokens with distinct jti, sub and exp (revokectl mint, several at a time)."""
    harness.standard_keys()  # generate the keys once, before the threads
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        return list(ex.map(lambda i: _mint_one(tag, i), range(n)))


def forge(t):
    """t with one bit of its signature flipped: well-formed, same length, does not verify."""
    head, payload, sig = t.token.split(".")
    raw = bytearray(b64url_decode(sig))
    raw[len(raw) // 2] ^= 0x01
    return Tok(f"{head}.{payload}.{b64url(bytes(raw))}", t.jti, t.sub, t.exp, t.iat, forged=True)


_SHARED = {}


def shared_tokens():
    """TOKENS genuine and FORGED forged tokens, minted once for the whole file (the daemons and
    Redis of the test classes are separate, so sharing them is harmless)."""
    if not _SHARED:
        genuine = mint_many("conc", TOKENS + FORGED)
        _SHARED["genuine"] = genuine[:TOKENS]
        _SHARED["forged"] = [forge(t) for t in genuine[TOKENS:]]
    return _SHARED["genuine"], _SHARED["forged"]


# ---------------------------------------------------------------------------------------------
# Requests from many threads

class Result:
    def __init__(self, job, status=None, headers=None, body=None, error=None, reused=False,
                 will_close=False, t_sent=None, t_done=None):
        self.job, self.status, self.headers, self.body, self.error = job, status, headers, body, error
        self.reused, self.will_close = reused, will_close
        self.t_sent, self.t_done = t_sent, t_done

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        if self.error is not None:
            return f"<{self.job}: {type(self.error).__name__}: {self.error}>"
        return f"<{self.job}: HTTP {self.status} {self.body[:400]!r}>"


def request_of(kind, tok):
    """(method, path, body bytes or None, headers) of a check or revoke of tok."""
    if kind == "GET":
        return "GET", "/v1/check", None, {"Authorization": f"Bearer {tok.token}"}
    body = json.dumps({"token": tok.token}).encode()
    path = "/v1/check" if kind == "POST" else "/v1/revoke"
    return "POST", path, body, {"Content-Type": "application/json"}


def exchange(conn, kind, tok):
    """One request on conn (kept alive); returns (status, headers, body, will_close)."""
    method, path, body, headers = request_of(kind, tok)
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, r.headers, data, r.will_close


def run_concurrently(port, jobs, clients=CLIENTS):
    """Sends every job (kind, Tok) from `clients` threads at once, each over one keep-alive
    connection (a new one only after an error). Returns the Results, in the order of jobs."""
    results = [None] * len(jobs)
    barrier = threading.Barrier(clients)

    def client(k):
        conn, used = http.client.HTTPConnection(LOOPBACK, port, timeout=HTTP_TIMEOUT), 0
        try:
            barrier.wait(HTTP_TIMEOUT)
            for i in range(k, len(jobs), clients):
                kind, tok = jobs[i]
                t0 = time.monotonic()
                try:
                    status, headers, body, will_close = exchange(conn, kind, tok)
                    results[i] = Result(jobs[i], status, headers, body, reused=used > 0,
                                        will_close=will_close, t_sent=t0, t_done=time.monotonic())
                    used += 1
                except Exception as e:  # recorded; the caller asserts on it
                    results[i] = Result(jobs[i], error=e, t_sent=t0, t_done=time.monotonic())
                    conn.close()
                    conn, used = http.client.HTTPConnection(LOOPBACK, port, timeout=HTTP_TIMEOUT), 0
        except threading.BrokenBarrierError as e:
            for i in range(k, len(jobs), clients):
                results[i] = results[i] or Result(jobs[i], error=e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + RUN_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        raise AssertionError(f"{stuck} of {clients} client threads still waiting after {RUN_TIMEOUT}s")
    return results


def metric(daemon, name):
    """The value of an unlabelled sample of GET /metrics."""
    resp = daemon.request("GET", "/metrics")
    if resp.status != 200:
        raise AssertionError(f"/metrics answered {resp}")
    m = re.search(rf"^{re.escape(name)} (\S+)$", resp.body.decode(), re.M)
    if m is None:
        raise AssertionError(f"no sample {name} in /metrics")
    return float(m.group(1))


# ---------------------------------------------------------------------------------------------
# Assertions

class ConcurrencyCase(harness.RevokdTestCase):

    def listening(self, daemon):
        return next(o for o in daemon.json_logs() if isinstance(o, dict) and o.get("event") == "listening")

    def assertMetric(self, daemon, name, want):
        """The sample reaches exactly `want` (a count may trail its answer a moment)."""
        try:
            harness.wait_until(lambda: metric(daemon, name) >= want, 5.0, what=f"{name} >= {want}")
        except AssertionError:
            pass
        self.assertEqual(metric(daemon, name), want, name)

    def expected(self, kind, tok):
        """(status, exact body) the answer to a check of tok must be."""
        if tok.forged:
            return 401, {"active": False, "reason": "invalid_signature", "error": "invalid_token",
                         "error_description": BAD_SIGNATURE_TEXT}
        if tok.revoked:
            return 401, {"active": False, "reason": "revoked", "error": "invalid_token",
                         "error_description": REVOKED_TEXT, "jti": tok.jti, "sub": tok.sub}
        return 200, {"active": True, "jti": tok.jti, "sub": tok.sub, "iss": ISS, "exp": tok.exp,
                     "iat": tok.iat}

    def assertJson(self, res):
        """res is an HTTP answer with a JSON body and a request id; returns the body."""
        self.assertIsNone(res.error, res)
        ctype = (res.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        self.assertEqual(ctype, "application/json", res)
        self.assertTrue(res.headers.get("X-Request-Id"), res)
        try:
            return res.json()
        except ValueError:
            self.fail(f"not JSON: {res}")

    def assertCheckAnswer(self, res):
        kind, tok = res.job
        status, want = self.expected(kind, tok)
        body = self.assertJson(res)
        self.assertEqual((res.status, body), (status, want), f"{kind} {tok}: {res}")
        if status == 401:
            self.assertEqual(res.headers.get("WWW-Authenticate"),
                             f'Bearer error="invalid_token", error_description="{want["error_description"]}"',
                             res)
        return body

    def assertAllChecks(self, results, keep_alive=True):
        """Every check answered exactly as its own token requires; on keep-alive connections."""
        wrong = []
        for res in results:
            try:
                self.assertCheckAnswer(res)
            except AssertionError as e:
                wrong.append(str(e).splitlines()[0][:600])
        self.assertEqual(wrong[:10], [], f"{len(wrong)} of {len(results)} answers wrong")
        if keep_alive:
            self.assertEqual([r for r in results if r.will_close], [])
            self.assertGreater(sum(r.reused for r in results), len(results) - 2 * CLIENTS)

    def check_jobs(self, toks, seed, kinds=("GET", "POST")):
        """Each token checked once by each of `kinds`, in a shuffled order."""
        jobs = [(kind, t) for t in toks for kind in kinds]
        random.Random(seed).shuffle(jobs)
        return jobs


# ---------------------------------------------------------------------------------------------
# The cache off: every check through the pool

class UncachedConcurrencyTest(ConcurrencyCase):
    revokd_env = UNCACHED

    def test_settings_reach_the_daemon(self):
        listening = self.listening(self.revokd)
        self.assertEqual((listening.get("threads"), listening.get("verify_threads")), (2, 3), listening)

    def test_distinct_tokens_checked_concurrently(self):
        genuine, forged = shared_tokens()
        toks = [Tok(t.token, t.jti, t.sub, t.exp, t.iat) for t in genuine]
        # Every third revoked beforehand, all at once, through POST /v1/revoke.
        to_revoke = toks[::3]
        for res in run_concurrently(self.revokd.port, [("REVOKE", t) for t in to_revoke]):
            body = self.assertJson(res)
            self.assertEqual((res.status, body.get("jti")), (200, res.job[1].jti), res)
            res.job[1].revoked = True
        self.assertEqual(len(self.redis.keys()), len(to_revoke))
        before_hits = metric(self.revokd, "revokd_token_cache_hits_total")

        forged = [Tok(t.token, t.jti, t.sub, t.exp, t.iat, forged=True) for t in forged]
        jobs = self.check_jobs(toks + forged, seed=1)
        results = run_concurrently(self.revokd.port, jobs)
        self.assertAllChecks(results)
        self.assertEqual(sum(r.status == 200 for r in results), 2 * (len(toks) - len(to_revoke)))
        self.assertEqual(sum(r.status == 401 for r in results), 2 * (len(to_revoke) + len(forged)))
        # The cache is off: nothing was answered from it.
        self.assertEqual(metric(self.revokd, "revokd_token_cache_hits_total"), before_hits)
        # A check writes nothing.
        self.assertEqual(len(self.redis.keys()), len(to_revoke))
        self.assertTrue(self.revokd.alive())

    def test_concurrent_revokes(self):
        toks = mint_many("rev", 100)
        results = run_concurrently(self.revokd.port, [("REVOKE", t) for t in toks])
        wrong = []
        for res in results:
            tok = res.job[1]
            try:
                body = self.assertJson(res)
                self.assertEqual((res.status, body), (200, {"revoked": True, "jti": tok.jti, "iss": ISS,
                                                            "expires_at": tok.exp + LEEWAY,
                                                            "expired": False}), res)
            except AssertionError as e:
                wrong.append(str(e).splitlines()[0][:600])
        self.assertEqual(wrong[:10], [], f"{len(wrong)} of {len(results)} answers wrong")

        # Redis holds every revocation, under the contract's key, until exp + leeway.
        self.assertEqual(key_name("jti", ISS, toks[0].jti), revokd_key_name("jti", ISS, toks[0].jti))
        want = sorted(key_name("jti", ISS, t.jti) for t in toks)
        self.assertEqual(self.redis.keys(), want)
        with harness.Resp(self.redis.port) as r:
            for t in toks:
                key = key_name("jti", ISS, t.jti)
                self.assertEqual(r.command("EXPIRETIME", key), t.exp + LEEWAY, t)

        # And every one of them now checks as revoked, with its own ids.
        for t in toks:
            t.revoked = True
        self.assertAllChecks(run_concurrently(self.revokd.port, self.check_jobs(toks, seed=2)))

    def test_sigterm_with_checks_in_flight(self):
        genuine, _ = shared_tokens()
        daemon = self.start_revokd({"REVOKD_TOKEN_CACHE_SIZE": "0", "REVOKD_THREADS": "2",
                                    "REVOKD_VERIFY_THREADS": "1"})
        clients = 32
        toks = [Tok(t.token, t.jti, t.sub, t.exp, t.iat) for t in genuine[:2 * clients]]
        for t in toks[::4]:
            res = daemon.revoke(t.token)
            self.assertEqual(res.status, 200, res)
            t.revoked = True

        results, lock = [], threading.Lock()
        stop = threading.Event()

        def hammer(k):
            """Checks its own two tokens, GET and POST in turn, until told to stop; after an
            error it reconnects (a refused connection ends it: revokd stopped listening)."""
            mine = toks[2 * k:2 * k + 2]
            conn = http.client.HTTPConnection(LOOPBACK, daemon.port, timeout=HTTP_TIMEOUT)
            n = 0
            try:
                while not stop.is_set():
                    job = (("GET", "POST")[n % 2], mine[(n // 2) % 2])
                    n += 1
                    t0 = time.monotonic()
                    try:
                        status, headers, body, will_close = exchange(conn, *job)
                        res = Result(job, status, headers, body, t_sent=t0, t_done=time.monotonic())
                    except Exception as e:
                        res = Result(job, error=e, t_sent=t0, t_done=time.monotonic())
                    with lock:
                        results.append(res)
                    if res.error is not None:
                        conn.close()
                        if isinstance(res.error, ConnectionRefusedError):
                            return
                        time.sleep(0.01)
                        conn = http.client.HTTPConnection(LOOPBACK, daemon.port, timeout=HTTP_TIMEOUT)
            finally:
                conn.close()

        threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(clients)]
        for t in threads:
            t.start()
        try:
            # Under load first: every token has been answered.
            harness.wait_until(lambda: len({id(r.job[1]) for r in list(results) if r.status}) == len(toks)
                               and len(results) >= 500, 20.0, what="answers for every token")
            self.assertFalse([r for r in list(results) if r.error is not None], "errors before SIGTERM")
            t_term = time.monotonic()
            daemon.proc.send_signal(signal.SIGTERM)
            try:
                code = daemon.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self.fail("revokd did not exit within 10 s of SIGTERM under load:\n"
                          + daemon.log_text()[-3000:])
            took = time.monotonic() - t_term
        finally:
            stop.set()
            for t in threads:
                t.join(HTTP_TIMEOUT + 5)
        self.assertFalse([t for t in threads if t.is_alive()], "client threads still waiting")
        self.assertEqual(code, 0, "revokd's exit status after SIGTERM under load:\n"
                         + daemon.log_text()[-3000:])
        self.assertLess(took, 10.0)

        answered = [r for r in results if r.error is None]
        after = [r for r in answered if r.t_done >= t_term]
        wrong = []
        for res in answered:
            try:
                body = self.assertJson(res)
                if res.status == 503:
                    # The state is unknown: the store connection went away during the stop.
                    self.assertEqual(body.get("error"), "store_unavailable", res)
                    self.assertIsInstance(body.get("error_description"), str, res)
                else:
                    self.assertCheckAnswer(res)
            except AssertionError as e:
                wrong.append(str(e).splitlines()[0][:600])
        self.assertEqual(wrong[:10], [], f"{len(wrong)} of {len(answered)} answers wrong "
                                         f"({len(after)} after SIGTERM)")
        # Errors only once the stop began.
        early = [r for r in results if r.error is not None and r.t_done < t_term]
        self.assertEqual(early, [])

        time.sleep(0.2)  # the readers take the last lines
        log = daemon.log_text()
        self.assertIsNone(CRASH.search(log), log[-3000:])
        events = [o.get("event") for o in daemon.json_logs() if isinstance(o, dict)]
        self.assertIn("shutdown", events, log[-3000:])
        self.assertIn("stopped", events, log[-3000:])

    def test_verify_threads_out_of_range(self):
        # Everything else valid, so the error is the one named (as test_config.py does).
        valid = self.base_env()
        for value in ("257", "-1", "x", "3x", "1.5", "99999999999999999999"):
            with self.subTest(value=value):
                out = harness.run_revokd([], dict(valid, REVOKD_VERIFY_THREADS=value))
                self.assertEqual(out.returncode, 2, f"exit {out.returncode}; stderr: {out.stderr!r}")
                lines = out.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, f"want one line on stderr, got: {out.stderr!r}")
                self.assertTrue(lines[0].startswith("revokd"), lines[0])
                self.assertIn("REVOKD_VERIFY_THREADS", lines[0])
        for args in (["--verify-threads", "257"], ["--verify-threads=-1"], ["--verify-threads", "x"]):
            with self.subTest(args=args):
                out = harness.run_revokd(args, valid)
                self.assertEqual(out.returncode, 2, f"exit {out.returncode}; stderr: {out.stderr!r}")
                lines = out.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, f"want one line on stderr, got: {out.stderr!r}")
                self.assertTrue(any(n in lines[0] for n in ("REVOKD_VERIFY_THREADS", "--verify-threads")),
                                lines[0])

    def test_verify_threads_bounds_start(self):
        cores = len(os.sched_getaffinity(0))
        genuine, _ = shared_tokens()
        for value, want in (("1", 1), ("256", 256), ("0", max(1, cores // 2))):
            with self.subTest(value=value):
                daemon = self.start_revokd({"REVOKD_VERIFY_THREADS": value, "REVOKD_THREADS": "1"})
                self.assertEqual(self.listening(daemon).get("verify_threads"), want)
                self.assertActive(daemon.check(genuine[0].token), genuine[0].token)
                daemon.stop()


# ---------------------------------------------------------------------------------------------
# The cache on: a second pass answers the same from it

class CachedConcurrencyTest(ConcurrencyCase):
    revokd_env = {"REVOKD_THREADS": "2", "REVOKD_VERIFY_THREADS": "3"}
    admin_keys = (ADMIN_KEY,)

    def test_second_pass_from_cache_answers_the_same(self):
        genuine, forged = shared_tokens()
        toks = [Tok(t.token, t.jti, t.sub, t.exp, t.iat) for t in genuine]
        forged = [Tok(t.token, t.jti, t.sub, t.exp, t.iat, forged=True) for t in forged]
        # Revoked through the admin API, which verifies no token: the cache stays cold.
        for t in toks[1::3]:
            resp = self.revokd.admin_revoke(ADMIN_KEY, {"jti": t.jti, "iss": ISS, "exp": t.exp})
            self.assertEqual(resp.status, 200, resp)
            t.revoked = True
        self.assertTrue(all(self.redis.exists(key_name("jti", ISS, t.jti)) for t in toks if t.revoked))

        hits0 = metric(self.revokd, "revokd_token_cache_hits_total")
        misses0 = metric(self.revokd, "revokd_token_cache_misses_total")
        everything = toks + forged
        # Each token once per pass: GET in one pass and POST in the other, or the other way round.
        first = [("GET" if i % 2 else "POST", t) for i, t in enumerate(everything)]
        second = [("POST" if kind == "GET" else "GET", t) for kind, t in first]
        random.Random(3).shuffle(first)
        random.Random(4).shuffle(second)

        pass1 = run_concurrently(self.revokd.port, first)
        self.assertAllChecks(pass1)
        # Nothing was in the cache: every check was a miss.
        self.assertMetric(self.revokd, "revokd_token_cache_misses_total", misses0 + len(everything))
        self.assertMetric(self.revokd, "revokd_token_cache_hits_total", hits0)

        pass2 = run_concurrently(self.revokd.port, second)
        self.assertAllChecks(pass2)
        answers1 = {r.job[1].token: (r.status, r.json()) for r in pass1}
        answers2 = {r.job[1].token: (r.status, r.json()) for r in pass2}
        self.assertEqual(answers2, answers1)
        # Every genuine token, revoked ones included, came from the cache; the forged ones never
        # verified, so they were not cached and missed again.
        self.assertMetric(self.revokd, "revokd_token_cache_hits_total", hits0 + len(toks))
        self.assertMetric(self.revokd, "revokd_token_cache_misses_total",
                          misses0 + len(everything) + len(forged))


if __name__ == "__main__":
    harness.main()
