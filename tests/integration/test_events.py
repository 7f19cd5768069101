"""The revocation log, <prefix>log in Redis: each kind of revocation appends one entry with its
fields, in order, in the script that stores its record; a revocation that changes no record
appends nothing; old entries are trimmed and young ones kept; replaying the log gives exactly
the records in force.

GET /v1/events serves it in JSON pages: the same entries as Redis holds, paged by after and
limit, waiting up to wait seconds for a first one; feed keys (REVOKD_FEED_KEYS_FILE) read it and
nothing else, admin keys too; `revokectl events [--after ID] [--follow]` prints it."""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import jwt_parts, key_name, now  # noqa: E402

ISS = "https://issuer.events.test"
LEEWAY = harness.DEFAULT_LEEWAY
# The log keeps what any record may still need: the longest record lives max_lifetime + 2 leeway.
RETENTION_MS = (harness.DEFAULT_MAX_LIFETIME + 2 * LEEWAY) * 1000
ADMIN_NAME, ADMIN_KEY = "ops", "admin-key-events-0123456789abcdef"
FEED_NAME, FEED_KEY = "edge-1", "feed-key-events-0123456789abcdef"
CLIENT = ("web", "web-secret-events-0123")


def basic(client):
    return {"Authorization": "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()}


def form(**kw):
    return "&".join(f"{k}={v}" for k, v in kw.items()).encode()


FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}


def dechunk(body):
    """An HTTP/1.1 chunked body as its bytes, as far as it goes."""
    out, at = [], 0
    while True:
        line_end = body.find(b"\r\n", at)
        if line_end < 0:
            return b"".join(out)
        size = int(body[at:line_end], 16)
        out.append(body[line_end + 2:line_end + 2 + size])
        at = line_end + 2 + size + 2
        if size == 0:
            return b"".join(out)


def id_pair(entry_id):
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


class EventsTestCase(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS}
    admin_keys = (f"{ADMIN_NAME}:{ADMIN_KEY}",)

    @classmethod
    def setUpClass(cls):
        cls.clients_path = None
        super().setUpClass()

    @classmethod
    def base_env(cls, overrides=None):
        if cls.clients_path is None:
            cls.clients_path = os.path.join(cls.tmp, "clients")
            with open(cls.clients_path, "w", encoding="utf-8") as f:
                f.write(f"{CLIENT[0]}:{CLIENT[1]}:revoke_any,global_revocation\n")
        env = {"REVOKD_CLIENTS_FILE": cls.clients_path, "REVOKD_FEED_KEYS_FILE": cls.feed_keys_path()}
        env.update(overrides or {})
        return super().base_env(env)

    def setUp(self):
        super().setUp()
        self.tokens = {}  # jti -> the token revoked, to revoke it again

    @classmethod
    def feed_keys_path(cls):
        path = os.path.join(cls.tmp, "feed-keys")
        if not os.path.exists(path):
            harness.write_admin_keys(path, [f"{FEED_NAME}:{FEED_KEY}"])
        return path

    @property
    def admin(self):
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    def entries(self, start="-"):
        return self.redis.log_entries(start=start)

    def ok(self, resp, status=200):
        self.assertEqual(resp.status, status, resp)
        return resp.json() if status != 204 else None

    # The six ways to revoke, each returning what its entry must hold.
    def holder_revoke(self, sub, jti, token=None):
        token = token or self.mint(sub=sub, iss=ISS, jti=jti, ttl=600)
        self.tokens[jti] = token
        body = self.ok(self.revokd.revoke(token))
        return {"kind": "jti", "iss": ISS, "jti": jti, "exp": str(body["expires_at"]), "by": "holder"}

    def admin_revoke(self, jti, exp, reason=None):
        body = {"jti": jti, "exp": exp}
        if reason:
            body["reason"] = reason
        out = self.ok(self.revokd.admin_revoke(ADMIN_KEY, body))
        entry = {"kind": "jti", "iss": ISS, "jti": jti, "exp": str(out["expires_at"]),
                 "by": f"admin:{ADMIN_NAME}"}
        if reason:
            entry["reason"] = reason
        return entry

    def client_revoke(self, sub, jti, token=None):
        token = token or self.mint(sub=sub, iss=ISS, jti=jti, ttl=600)
        self.tokens[jti] = token
        self.ok(self.revokd.request("POST", "/oauth2/revoke", form(token=token), {**FORM_CT, **basic(CLIENT)}))
        return {"kind": "jti", "iss": ISS, "jti": jti, "exp": str(jwt_parts(token)[1]["exp"] + LEEWAY),
                "by": f"client:{CLIENT[0]}"}

    def holder_revoke_all(self, sub):
        out = self.ok(self.revokd.revoke_all(self.mint(sub=sub, iss=ISS)))
        return {"kind": "subject", "iss": ISS, "sub": sub, "cutoff": str(out["cutoff"]), "by": "holder"}, out

    def admin_revoke_all(self, sub, reason=None):
        out = self.ok(self.revokd.admin_revoke_all(ADMIN_KEY, sub, {"reason": reason} if reason else None))
        entry = {"kind": "subject", "iss": ISS, "sub": sub, "cutoff": str(out["cutoff"]),
                 "by": f"admin:{ADMIN_NAME}"}
        if reason:
            entry["reason"] = reason
        return entry, out

    def global_revoke(self, sub, by_client):
        body = {"sub_id": {"format": "iss_sub", "iss": ISS, "sub": sub}}
        self.ok(self.revokd.request("POST", "/global-token-revocation", body,
                                    basic(CLIENT) if by_client else self.admin), 204)
        return {"kind": "subject", "iss": ISS, "sub": sub,
                "by": f"client:{CLIENT[0]}" if by_client else f"admin:{ADMIN_NAME}"}

    def assertEntry(self, got, want, before_ms, after_ms):
        """An entry (id, fields) holds want's fields, and nothing else but exp and at, which it
        must have: at between before_ms and after_ms, and the entry id of that time."""
        entry_id, fields = got
        extra = {k: v for k, v in fields.items() if k not in want}
        self.assertEqual(set(extra) - {"exp", "at", "cutoff"}, set(), fields)
        for k, v in want.items():
            self.assertEqual(fields.get(k), v, f"{k} in {fields}")
        self.assertIn("exp", fields)
        at = int(fields["at"])
        self.assertTrue(before_ms - 5 <= at <= after_ms + 5, (before_ms, at, after_ms))
        self.assertLessEqual(abs(id_pair(entry_id)[0] - at), 5, (entry_id, at))


class LogTest(EventsTestCase):
    def test_each_kind_once_in_order_with_its_fields(self):
        t = now()
        before = int(time.time() * 1000)
        wants = [self.holder_revoke("alice", "ev-1"),
                 self.admin_revoke("ev-2", t + 300, reason="device lost"),
                 self.client_revoke("bob", "ev-3")]
        entry, holder_all = self.holder_revoke_all("carol")
        wants.append(entry)
        entry, admin_all = self.admin_revoke_all("dave", reason="left the company")
        wants.append(entry)
        wants.append(self.global_revoke("erin", by_client=True))
        wants.append(self.global_revoke("frank", by_client=False))
        after = int(time.time() * 1000)

        got = self.entries()
        self.assertEqual(len(got), len(wants), got)
        for g, w in zip(got, wants):
            self.assertEntry(g, w, before, after)
        ids = [id_pair(i) for i, _ in got]
        self.assertEqual(ids, sorted(set(ids)))
        # A subject's entry says until when its record lasts: the record's own expiry.
        for (_, fields), sub in zip(got[3:], ("carol", "dave", "erin", "frank")):
            key = key_name("sub", ISS, sub)
            self.assertEqual(int(fields["exp"]), self.redis.expiretime(key), fields)
            self.assertEqual(fields["cutoff"], self.redis.get(key))
        # The answer's expires_at is counted from revokd's clock, the record's from Redis's.
        self.assertLessEqual(abs(int(got[3][1]["exp"]) - holder_all["expires_at"]), 1)
        for (_, fields), jti in zip(got[:3], ("ev-1", "ev-2", "ev-3")):
            self.assertEqual(int(fields["exp"]), self.redis.expiretime(key_name("jti", ISS, jti)), fields)

        # The same revocations again change no record, so they log nothing; a cutoff of now +
        # leeway moves on with the clock, and then it is a change and logged once.
        self.holder_revoke("alice", "ev-1", self.tokens["ev-1"])
        self.admin_revoke("ev-2", t + 300, reason="device lost")
        self.admin_revoke("ev-2", t + 100)  # an earlier exp never shortens the record
        self.client_revoke("bob", "ev-3", self.tokens["ev-3"])
        _, again = self.admin_revoke_all("dave", reason="left the company")
        moved = again["cutoff"] != admin_all["cutoff"]
        got_again = self.entries()
        self.assertEqual(len(got_again), len(got) + moved, got_again[len(got):])
        self.assertEqual(self.redis.expiretime(key_name("jti", ISS, "ev-2")), t + 300 + LEEWAY)

    def test_a_later_expiry_is_logged(self):
        t = now()
        self.admin_revoke("ev-later", t + 100)
        self.admin_revoke("ev-later", t + 200)
        got = self.entries()
        self.assertEqual([f["exp"] for _, f in got], [str(t + 100 + LEEWAY), str(t + 200 + LEEWAY)])
        self.assertEqual(self.redis.expiretime(key_name("jti", ISS, "ev-later")), t + 200 + LEEWAY)

    def test_nothing_stored_nothing_logged(self):
        t = now()
        expired = self.mint(sub="gina", iss=ISS, iat=t - 1000, exp=t - 100)
        self.assertTrue(self.ok(self.revokd.revoke(expired))["expired"])
        self.assertTrue(self.ok(self.revokd.admin_revoke(ADMIN_KEY, {"jti": "gone", "exp": t - 1000}))["expired"])
        self.assertEqual(self.revokd.revoke(self.mint(sub="gina", iss="https://other.test")).status, 401)
        self.assertEqual(self.entries(), [])
        self.assertEqual(self.redis.keys(), [])

    def test_trimming_drops_only_what_is_older_than_the_retention(self):
        """Entries older than the retention go, younger ones stay. Trimming is approximate
        (MINID ~): Redis drops whole nodes of the stream, so the old entries fill one node
        (stream-node-max-entries) of their own here."""
        per_node = int(self.redis.command("CONFIG", "GET", "stream-node-max-entries")[1])
        log = harness.DEFAULT_PREFIX + harness.LOG_SUFFIX
        now_ms = int(time.time() * 1000)
        old_ms = now_ms - RETENTION_MS - 60_000
        for i in range(per_node):
            self.redis.command("XADD", log, f"{old_ms}-{i}", "kind", "jti", "iss", "", "jti", f"o{i}",
                               "exp", "1", "by", "holder", "at", str(old_ms))
        young_ms = now_ms - RETENTION_MS + 600_000  # ten minutes short of the retention
        self.redis.command("XADD", log, f"{young_ms}-0", "kind", "jti", "iss", "", "jti", "young",
                           "exp", "1", "by", "holder", "at", str(young_ms))
        self.assertEqual(len(self.entries()), per_node + 1)

        self.holder_revoke("hal", "ev-trim")
        got = self.entries()
        self.assertEqual([f["jti"] for _, f in got], ["young", "ev-trim"])
        self.admin_revoke("ev-trim-2", now() + 60)
        self.assertEqual([f["jti"] for _, f in self.entries()], ["young", "ev-trim", "ev-trim-2"])

    def test_replay_gives_exactly_the_records_in_force(self):
        """From the start, the latest entry per jti or subject whose exp has not passed: the very
        records Redis holds, with their expiries and cutoffs."""
        t = now()
        self.holder_revoke("ivan", "ev-r1")
        self.admin_revoke("ev-r2", t + 100, reason="r")
        self.admin_revoke("ev-r2", t + 900)
        self.admin_revoke("ev-short", t + 2 - LEEWAY)   # its record ends in about two seconds
        self.client_revoke("judy", "ev-r3")
        self.holder_revoke_all("ivan")
        self.admin_revoke_all("kim")
        self.global_revoke("lou", by_client=True)
        self.assertIn(key_name("jti", ISS, "ev-short"), self.redis.keys())
        time.sleep(max(0.0, t + 2.2 - time.time()))
        self.admin_revoke_all("kim")  # moves the cutoff on if a second has passed, else nothing

        latest = {}
        for _, f in self.entries():
            kind = "jti" if f["kind"] == "jti" else "sub"
            latest[key_name(kind, f["iss"], f["jti"] if kind == "jti" else f["sub"])] = f
        wall = time.time()
        in_force = {k: f for k, f in latest.items() if int(f["exp"]) > wall}
        self.assertNotIn(key_name("jti", ISS, "ev-short"), in_force)
        self.assertEqual(sorted(in_force), self.redis.keys())
        for key, f in in_force.items():
            self.assertEqual(self.redis.expiretime(key), int(f["exp"]), f)
            if f["kind"] == "subject":
                self.assertEqual(self.redis.get(key), f["cutoff"], f)
            else:
                self.assertEqual(self.redis.get(key), f.get("reason", "1"), f)


def as_json(entry):
    """What GET /v1/events says of a log entry (id, fields) read from Redis."""
    entry_id, f = entry
    out = {"id": entry_id, "kind": f["kind"], "iss": f["iss"] or None}
    if f["kind"] == "jti":
        out["jti"] = f["jti"]
    else:
        out["sub"] = f["sub"]
        out["cutoff"] = int(f["cutoff"])
    out["exp"] = int(f["exp"])
    if "reason" in f:
        out["reason"] = f["reason"]
    out["by"] = f["by"]
    out["at"] = int(f["at"])
    return out


class FeedTest(EventsTestCase):
    def events(self, daemon=None, key=FEED_KEY, **params):
        query = urllib.parse.urlencode(params)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return (daemon or self.revokd).request("GET", "/v1/events" + ("?" + query if query else ""),
                                               headers=headers, timeout=45)

    def page(self, **params):
        body = self.assertJsonResponse(self.events(**params), 200)
        self.assertEqual(set(body), {"events", "next"}, body)
        return body["events"], body["next"]

    def revoke_some(self):
        t = now()
        self.holder_revoke("alice", "fe-1")
        self.admin_revoke("fe-2", t + 300, reason="device lost")
        self.client_revoke("bob", "fe-3")
        self.holder_revoke_all("carol")
        self.admin_revoke_all("dave", reason="left")
        self.global_revoke("erin", by_client=True)
        self.revokd.admin_revoke(ADMIN_KEY, {"jti": "fe-4", "exp": t + 60, "iss": None})

    def test_a_page_is_the_log_as_redis_holds_it(self):
        self.assertEqual(self.page(), ([], "0-0"))
        self.revoke_some()
        events, nxt = self.page()
        self.assertEqual(events, [as_json(e) for e in self.entries()])
        self.assertEqual(nxt, events[-1]["id"])
        self.assertIsNone(events[-1]["iss"])  # the tokens without iss
        self.assertEqual(self.page(after=nxt), ([], nxt))
        # Admin keys read it too.
        body = self.assertJsonResponse(self.events(key=ADMIN_KEY, after=events[2]["id"]), 200)
        self.assertEqual(body["events"], events[3:])

    def test_pages_by_after_and_limit(self):
        self.revoke_some()
        everything, _ = self.page(limit=1000)
        got, after = [], "0"
        while True:
            events, after = self.page(after=after, limit=2)
            self.assertLessEqual(len(events), 2)
            got += events
            if not events:
                break
        self.assertEqual(got, everything)
        self.assertEqual(after, everything[-1]["id"])
        # An id that is not in the log works as well as one that is: what follows it.
        ms, seq = id_pair(everything[2]["id"])
        self.assertEqual(self.page(after=f"{ms}-{seq}")[0], everything[3:])
        before = (ms - 1, 2 ** 64 - 1)
        self.assertEqual(self.page(after=f"{before[0]}-{before[1]}")[0],
                         [e for e in everything if id_pair(e["id"]) > before])

    def test_bad_parameters(self):
        for params in ({"after": "x"}, {"after": "1"}, {"after": "1-2-3"}, {"after": ""},
                       {"limit": 0}, {"limit": 1001}, {"wait": 31}, {"wait": "1s"}):
            with self.subTest(params=params):
                self.assertError(self.events(**params), 400, "invalid_request")
        resp = self.revokd.request("GET", "/v1/events?limit=1&limit=2", headers={"Authorization": f"Bearer {FEED_KEY}"})
        self.assertError(resp, 400, "invalid_request")

    def test_keys(self):
        mark = self.revokd.log_mark()
        for key in (None, "wrong-key-0123456789abcdef", f"{FEED_NAME}:{FEED_KEY}"):
            with self.subTest(key=key):
                resp = self.events(key=key)
                self.assertError(resp, 401, "unauthorized")
                self.assertEqual(resp.header("WWW-Authenticate"), 'Bearer realm="revokd-events"')
        # A feed key reads the feed and nothing else.
        self.assertError(self.revokd.admin_revoke(FEED_KEY, {"jti": "x", "exp": now() + 60}), 401, "unauthorized")
        self.assertError(self.revokd.admin_revoke_all(FEED_KEY, "x"), 401, "unauthorized")
        self.assertError(self.revokd.request("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {FEED_KEY}"}),
                         401, "unauthorized")
        self.assertError(self.revokd.request("POST", "/oauth2/introspect", form(token="a.b.c"),
                                             {**FORM_CT, "Authorization": f"Bearer {FEED_KEY}"}), 401, "invalid_client")
        self.assertError(self.revokd.request("POST", "/global-token-revocation",
                                             {"sub_id": {"format": "opaque", "id": "x"}},
                                             {"Authorization": f"Bearer {FEED_KEY}"}), 401, "invalid_client")
        self.assertEqual(self.redis.keys(), [])
        # The request lines name the key that read, never the key.
        self.assertJsonResponse(self.events(key=FEED_KEY, **{"x": "1"}), 200)
        self.assertJsonResponse(self.events(key=ADMIN_KEY), 200)
        time.sleep(0.3)
        lines = [o for o in self.revokd.request_logs(mark) if o.get("path") == "/v1/events"]
        self.assertIn(FEED_NAME, [o.get("feed_key") for o in lines])
        self.assertIn(ADMIN_NAME, [o.get("admin_key") for o in lines])
        self.assertNotIn(FEED_KEY, self.revokd.log_text(mark))

    def test_feed_keys_without_admin_keys_and_neither(self):
        d = self.start_revokd({"REVOKD_ADMIN_KEYS_FILE": None})
        self.assertJsonResponse(self.events(daemon=d), 200)
        self.assertError(d.admin_revoke(FEED_KEY, {"jti": "x", "exp": now() + 60}), 403, "admin_disabled")
        d = self.start_revokd({"REVOKD_ADMIN_KEYS_FILE": None, "REVOKD_FEED_KEYS_FILE": None})
        self.assertError(self.events(daemon=d), 403, "feed_disabled")

    def test_feed_keys_are_reloaded(self):
        path = os.path.join(self.tmp, "feed-keys-reload")
        harness.write_admin_keys(path, ["old-feed-key-0123456789abc"])
        d = self.start_revokd({"REVOKD_FEED_KEYS_FILE": path})
        self.assertJsonResponse(self.events(daemon=d, key="old-feed-key-0123456789abc"), 200)
        harness.write_admin_keys(path, ["next:new-feed-key-0123456789abc"])
        self.assertJsonResponse(d.request("POST", "/v1/admin/reload", headers=self.admin), 200)
        self.assertError(self.events(daemon=d, key="old-feed-key-0123456789abc"), 401, "unauthorized")
        self.assertJsonResponse(self.events(daemon=d, key="new-feed-key-0123456789abc"), 200)
        harness.write_admin_keys(path, ["short"])
        self.assertError(d.request("POST", "/v1/admin/reload", headers=self.admin), 500, "reload_failed")
        self.assertJsonResponse(self.events(daemon=d, key="new-feed-key-0123456789abc"), 200)

    def test_failed_keys_are_limited_per_address(self):
        d = self.start_revokd({"REVOKD_AUTH_FAILURES_BURST": "1", "REVOKD_AUTH_FAILURES_PER_MINUTE": "1"})
        self.assertError(self.events(daemon=d, key="wrong-key-0123456789abcdef"), 401, "unauthorized")
        resp = self.events(daemon=d)
        self.assertError(resp, 429, "too_many_requests")
        self.assertTrue(resp.header("Retry-After"))

    def test_wait_is_answered_by_the_next_revocation(self):
        self.holder_revoke("fay", "fe-w0")
        _, nxt = self.page()
        result = {}

        def poll():
            start = time.monotonic()
            result["resp"] = self.events(after=nxt, wait=10)
            result["took"] = time.monotonic() - start

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(1.0)
        self.assertTrue(t.is_alive(), "the poll did not wait")
        revoked_at = time.monotonic()
        want = self.holder_revoke("fay", "fe-w1")
        t.join(15)
        body = self.assertJsonResponse(result["resp"], 200)
        self.assertEqual([e["jti"] for e in body["events"]], ["fe-w1"])
        self.assertEqual(body["events"][0]["by"], want["by"])
        self.assertLess(result["took"], 5, "answered by the revocation, not by the end of the wait")
        self.assertLess(time.monotonic() - revoked_at, 2)

    def test_wait_ends_empty_even_beyond_the_idle_timeout(self):
        """A poll that waits is no idle connection: REVOKD_CONNECTION_TIMEOUT does not end it."""
        d = self.start_revokd({"REVOKD_CONNECTION_TIMEOUT": "1"})
        start = time.monotonic()
        body = self.assertJsonResponse(self.events(daemon=d, wait=3), 200)
        took = time.monotonic() - start
        self.assertEqual(body, {"events": [], "next": "0-0"})
        self.assertTrue(2.9 <= took < 6, took)

    def test_store_down_is_503(self):
        d = self.start_revokd({"REVOKD_REDIS_URL": f"redis://127.0.0.1:{harness.free_port()}/0"})
        resp = self.events(daemon=d)
        self.assertError(resp, 503, "store_unavailable")
        self.assertEqual(resp.header("Retry-After"), "1")

    def test_main_listener_only(self):
        d = self.start_revokd({"REVOKD_ADMIN_LISTEN": f"{harness.LOOPBACK}:0"})
        admin_port = d.wait_for_event("listening", 1)["admin_port"]
        self.assertJsonResponse(self.events(daemon=d), 200)
        resp = harness.http_request(admin_port, "GET", "/v1/events", headers={"Authorization": f"Bearer {FEED_KEY}"})
        self.assertError(resp, 404, "not_found")

    # Server-Sent Events -------------------------------------------------------------------------
    def stream(self, daemon=None, key=FEED_KEY, **kw):
        es = harness.EventStream((daemon or self.revokd).port, key, **kw)
        self.addCleanup(es.close)
        return es

    def assertStreamed(self, items, page):
        """SSE events carry exactly the JSON page's events, each with its id as the SSE id."""
        self.assertEqual([(i[1], i[2]) for i in items], [(e["id"], "revocation") for e in page])
        self.assertEqual([i[3] for i in items], page)

    def test_stream_pushes_each_kind_in_order(self):
        self.holder_revoke("zed", "fe-s0")
        _, nxt = self.page()
        es = self.stream(after=nxt)
        self.assertEqual(es.status, 200)
        self.assertEqual(es.headers["Content-Type"], "text/event-stream")
        self.assertEqual(es.headers["Cache-Control"], "no-store")
        self.assertEqual(es.headers["X-Accel-Buffering"], "no")
        self.assertEqual(es.next(), ("comment", "heartbeat"), "caught up at once: nothing after nxt")
        self.revoke_some()
        items = es.events(7)
        events, _ = self.page(after=nxt)
        self.assertEqual(len(events), 7)
        self.assertStreamed(items, events)
        self.assertEqual({e["kind"] for e in events}, {"jti", "subject"})

    def test_stream_from_0_replays_then_follows(self):
        """More than a page (1,000) of log first, then what comes, with no gap or repeat where
        the replay meets the live reads."""
        t = now()
        self.redis.command("EVAL", "for i = 1, 2500 do redis.call('XADD', KEYS[1], '*', 'kind', 'jti', 'iss', "
                           "ARGV[1], 'jti', 'bulk-' .. i, 'exp', ARGV[2], 'by', 'holder', 'at', ARGV[3]) end",
                           "1", harness.DEFAULT_PREFIX + harness.LOG_SUFFIX, ISS, str(t + 60), str(t * 1000))
        es = self.stream(after="0")
        items = es.events(2500)
        self.assertEqual([i[3]["jti"] for i in items], [f"bulk-{i}" for i in range(1, 2501)])
        self.assertEqual(es.next(), ("comment", "heartbeat"))
        started = time.monotonic()
        want = self.holder_revoke("zoe", "fe-s1")
        (item,) = es.events(1)
        self.assertLess(time.monotonic() - started, 2)
        self.assertEqual((item[3]["jti"], item[3]["by"]), ("fe-s1", want["by"]))
        self.assertEqual([i[1] for i in items + [item]], [i for i, _ in self.entries()])

    def test_last_event_id_resumes_exactly_and_wins_over_after(self):
        self.revoke_some()
        events, _ = self.page()
        es = self.stream(after="0")
        first = es.events(3)
        es.close()
        again = self.stream(after="0", last_event_id=first[1][1])
        self.assertStreamed(again.events(len(events) - 2), events[2:])
        self.assertEqual(again.next(), ("comment", "heartbeat"))
        # Bad ids are refused as ?after's are.
        for bad in ("nope", "1-", "-1", "1-2-3"):
            resp = self.stream(last_event_id=bad).body()
            self.assertError(resp, 400, "invalid_request")

    def test_resume_across_a_restart_loses_and_repeats_nothing(self):
        d = self.start_revokd()
        self.holder_revoke("ann", "fe-r1")
        self.holder_revoke("ann", "fe-r2")
        es = self.stream(daemon=d, after="0")
        got = es.events(2)
        d.stop()
        # The node stopped: the stream ended in order, after what it held.
        self.assertEqual([i for i in iter(es.next, ("end",)) if i != ("comment", "heartbeat")], [])
        self.holder_revoke("ann", "fe-r3")
        self.admin_revoke_all("ann")
        d2 = self.start_revokd()
        rest = self.stream(daemon=d2, last_event_id=got[-1][1]).events(2)
        events, _ = self.page()
        self.assertStreamed(got + rest, events)

    def test_heartbeats_while_quiet(self):
        d = self.start_revokd({"REVOKD_FEED_HEARTBEAT_MS": "200"})
        es = self.stream(daemon=d, after="0")
        started = time.monotonic()
        beats = [es.next() for _ in range(6)]
        took = time.monotonic() - started
        self.assertEqual(set(beats), {("comment", "heartbeat")})
        # The first at once (caught up), then one per 200 ms of quiet.
        self.assertTrue(0.8 <= took < 3, took)

    def raw_stream(self, daemon, after, rcvbuf=None):
        """A consumer on a plain socket, its request sent; rcvbuf: its receive buffer."""
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect((harness.LOOPBACK, daemon.port))
        self.addCleanup(sock.close)
        sock.sendall(f"GET /v1/events?after={after} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                     f"Authorization: Bearer {FEED_KEY}\r\n\r\n".encode())
        return sock

    def test_slow_consumer_is_cut_off_and_others_are_not(self):
        """10,000 entries, about 2 MB, in bursts of 1,000: more than a consumer that never reads
        can take in its socket buffers (revokd's, 256 KiB; its own, 4 KiB) and
        REVOKD_FEED_BUFFER_BYTES (1 MiB, the least) together. One that reads gets every entry,
        in order."""
        # Heartbeats rarely: the one that reads knows it has all once the stream goes quiet.
        # A cut-off connection that cannot be written to closes at the idle timeout.
        d = self.start_revokd({"REVOKD_FEED_BUFFER_BYTES": "1048576", "REVOKD_FEED_HEARTBEAT_MS": "30000",
                               "REVOKD_CONNECTION_TIMEOUT": "3"})
        _, nxt = self.page(daemon=d)
        slow = self.raw_stream(d, nxt, rcvbuf=4096)
        fast = self.raw_stream(d, nxt)
        harness.wait_until(lambda: harness.metrics(d)["revokd_feed_consumers"] == 2, 5, what="two consumers")
        mark = d.log_mark()
        received = []

        def read_fast():
            fast.settimeout(5)
            try:
                while chunk := fast.recv(1 << 20):
                    received.append(chunk)
            except TimeoutError:
                pass

        reader = threading.Thread(target=read_fast)
        reader.start()
        t = now()
        for _ in range(10):
            self.redis.command("EVAL", "for i = 1, 1000 do redis.call('XADD', KEYS[1], '*', 'kind', 'jti', "
                               "'iss', ARGV[1], 'jti', 'slow-' .. i, 'exp', ARGV[2], 'by', 'holder', 'at', ARGV[3]) "
                               "end", "1", harness.DEFAULT_PREFIX + harness.LOG_SUFFIX, ISS, str(t + 60),
                               str(t * 1000))
            time.sleep(0.03)
        reader.join(60)
        ids = re.findall(rb"\nid: ([0-9-]+)\n", dechunk(b"".join(received).partition(b"\r\n\r\n")[2]))
        self.assertEqual([i.decode() for i in ids], [i for i, _ in self.entries(start="(" + nxt)],
                         "the consumer that reads got every event, in order")
        ended = harness.wait_until(lambda: next((o for o in d.json_logs(mark) if isinstance(o, dict) and
                                                 o.get("event") == "feed_consumer_ended"), None), 10,
                                   what="feed_consumer_ended")
        self.assertEqual((ended["level"], ended["why"], ended["consumer"]), ("warn", "cut_off", f"feed:{FEED_NAME}"))
        m = harness.metrics(d)
        self.assertEqual(m['revokd_feed_consumers_ended_total{why="cut_off"}'], 1)
        self.assertEqual(m["revokd_feed_consumers"], 1)
        # The slow one finds its connection closed without the stream's last chunk.
        slow.settimeout(15)
        data = b""
        try:
            while chunk := slow.recv(1 << 20):
                data += chunk
        except ConnectionResetError:
            pass
        body = data.partition(b"\r\n\r\n")[2]
        self.assertLess(dechunk(body).count(b"\nevent: revocation\n"), 10000)
        self.assertFalse(body.endswith(b"\r\n0\r\n\r\n"), "cut off, not ended in order")

    def test_a_reload_ends_the_streams_and_judges_their_keys_anew(self):
        """Withdrawing a feed key must stop its consumer, not only its next request: a reload
        (SIGHUP or POST /v1/admin/reload) ends every stream in order, and each consumer comes back
        with its key, which is judged again. A failed reload changes nothing and ends nothing."""
        path = os.path.join(self.tmp, "feed-keys-streams")
        harness.write_admin_keys(path, ["gone:gone-feed-key-0123456789abc", "kept:kept-feed-key-0123456789abc"])
        d = self.start_revokd({"REVOKD_FEED_KEYS_FILE": path})
        gone = self.stream(daemon=d, key="gone-feed-key-0123456789abc")
        kept = self.stream(daemon=d, key="kept-feed-key-0123456789abc")
        self.assertEqual((gone.next(), kept.next()), (("comment", "heartbeat"),) * 2)
        harness.write_admin_keys(path, ["short"])
        self.assertError(d.request("POST", "/v1/admin/reload", headers=self.admin), 500, "reload_failed")
        self.assertEqual(kept.next(), ("comment", "heartbeat"), "a failed reload ended a stream")
        harness.write_admin_keys(path, ["kept:kept-feed-key-0123456789abc"])
        mark = d.log_mark()
        os.kill(d.proc.pid, signal.SIGHUP)
        for es in (gone, kept):
            self.assertEqual([i for i in iter(es.next, ("end",)) if i != ("comment", "heartbeat")], [])
        self.assertError(self.stream(daemon=d, key="gone-feed-key-0123456789abc").body(), 401, "unauthorized")
        self.assertEqual(self.stream(daemon=d, key="kept-feed-key-0123456789abc").next(), ("comment", "heartbeat"))
        ended = [o for o in d.json_logs(mark) if isinstance(o, dict) and o.get("event") == "feed_consumer_ended"]
        self.assertEqual(sorted((o["why"], o["consumer"], o["level"]) for o in ended),
                         [("reloaded", "feed:gone", "info"), ("reloaded", "feed:kept", "info")])
        self.assertEqual(harness.metrics(d)['revokd_feed_consumers_ended_total{why="reloaded"}'], 2)

    def test_consumers_are_bounded(self):
        d = self.start_revokd({"REVOKD_FEED_MAX_CONSUMERS": "1"})
        first = self.stream(daemon=d)
        self.assertEqual(first.status, 200)
        resp = self.stream(daemon=d).body()
        self.assertError(resp, 503, "too_many_consumers")
        self.assertEqual(resp.header("Retry-After"), "1")
        first.close()
        # A consumer that went away is noticed at its next heartbeat write.
        harness.wait_until(lambda: self.stream(daemon=d).status == 200, 10, what="the place given back")

    def test_stream_needs_a_key(self):
        resp = self.stream(key=None).body()
        self.assertError(resp, 401, "unauthorized")
        resp = self.stream(key=ADMIN_KEY)
        self.assertEqual(resp.status, 200)

    # revokectl events ---------------------------------------------------------------------------
    def ctl(self, *args, key=FEED_KEY):
        return harness.run_revokectl(["--url", f"http://127.0.0.1:{self.revokd.port}", "events", *args],
                                     {"REVOKD_FEED_KEY": key} if key else None)

    def test_revokectl_prints_one_object_a_line(self):
        self.revoke_some()
        events, _ = self.page()
        out = self.ctl()
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([json.loads(line) for line in out.stdout.splitlines()], events)
        out = self.ctl("--after", events[4]["id"])
        self.assertEqual([json.loads(line) for line in out.stdout.splitlines()], events[5:])
        out = self.ctl("--after", events[-1]["id"])
        self.assertEqual((out.returncode, out.stdout), (0, ""))
        # More than a page (1,000): read to the end.
        t = now()
        for i in range(1100):
            self.redis.command("XADD", harness.DEFAULT_PREFIX + harness.LOG_SUFFIX, "*", "kind", "jti", "iss", ISS,
                               "jti", f"bulk-{i}", "exp", str(t + 60), "by", "holder", "at", str(t * 1000))
        out = self.ctl()
        self.assertEqual(len(out.stdout.splitlines()), len(events) + 1100)
        self.assertEqual(self.ctl(key="wrong-key-0123456789abcdef").returncode, 1)
        self.assertEqual(self.ctl(key=None).returncode, 2)
        self.assertEqual(self.ctl("--after", "nope").returncode, 1)

    def test_revokectl_follow(self):
        self.holder_revoke("gus", "fe-f1")
        argv = [harness.revokectl_bin(), "--url", f"http://127.0.0.1:{self.revokd.port}", "events", "--follow"]
        proc = subprocess.Popen(argv, env=harness.clean_env({"REVOKD_ADMIN_KEY": ADMIN_KEY}),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = json.loads(proc.stdout.readline())
            self.assertEqual(first["jti"], "fe-f1")
            time.sleep(0.5)
            self.holder_revoke("gus", "fe-f2")
            self.admin_revoke_all("gus")
            second, third = json.loads(proc.stdout.readline()), json.loads(proc.stdout.readline())
            self.assertEqual((second["jti"], third["sub"]), ("fe-f2", "gus"))
            self.assertEqual([e["id"] for e in (first, second, third)], [i for i, _ in self.entries()])
            self.assertIsNone(proc.poll())
        finally:
            proc.kill()
            proc.communicate(timeout=5)


if __name__ == "__main__":
    harness.main()
