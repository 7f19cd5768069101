"""The revocation log, <prefix>log in Redis: each kind of revocation appends one entry with its
fields, in order, in the script that stores its record; a revocation that changes no record
appends nothing; old entries are trimmed and young ones kept; replaying the log gives exactly
the records in force."""

import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import jwt_parts, key_name, now  # noqa: E402

ISS = "https://issuer.events.test"
LEEWAY = harness.DEFAULT_LEEWAY
# The log keeps what any record may still need: the longest record lives max_lifetime + 2 leeway.
RETENTION_MS = (harness.DEFAULT_MAX_LIFETIME + 2 * LEEWAY) * 1000
ADMIN_NAME, ADMIN_KEY = "ops", "admin-key-events-0123456789abcdef"
CLIENT = ("web", "web-secret-events-0123")


def basic(client):
    return {"Authorization": "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()}


def form(**kw):
    return "&".join(f"{k}={v}" for k, v in kw.items()).encode()


FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}


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
        env = {"REVOKD_CLIENTS_FILE": cls.clients_path}
        env.update(overrides or {})
        return super().base_env(env)

    def setUp(self):
        super().setUp()
        self.tokens = {}  # jti -> the token revoked, to revoke it again

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


if __name__ == "__main__":
    harness.main()
