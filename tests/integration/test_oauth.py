"""The OAuth endpoints over HTTP: POST /oauth2/revoke (RFC 7009), POST /oauth2/introspect (RFC 7662)
and POST /global-token-revocation (draft-parecki-oauth-global-token-revocation-06), with the clients
of REVOKD_CLIENTS_FILE authenticating as RFC 6749 2.3.1 says (client_secret_basic, with the id and
secret form-urlencoded before base64, or client_secret_post). Every status of every endpoint, what
the RFCs require of each, the Redis records they leave, a reload of the clients file, and an OAuth
client library (npm's openid-client, tests/integration/oidc/oauth_client.mjs) making its own calls
against revokd unchanged."""

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import idp  # noqa: E402
from harness import clean_env, key_name, now, revokd_key_name, std_claims, token_id  # noqa: E402

ISS = "https://issuer.oauth.test"
OTHER_ISS = "https://other-issuer.oauth.test"
ADMIN_KEY = "oauth-admin-key-0123456789abcdef"
LEEWAY = 30
MAX_LIFETIME = 7200

# Clients: (client_id, secret). The secrets are test values, never printed.
WEB = ("web", "web-secret-0123456789")                  # no permission: its own tokens only
MOBILE = ("mobile", "mobile-secret-0123456789")          # no permission
OPS = ("ops", "ops-secret-0123456789")                  # revoke_any, global_revocation
AUDITOR = ("auditor", "auditor-secret-0123456789")      # revoke_any only
# An id and a secret that need form-urlencoding in HTTP Basic: space, '+', '%', '/', '&', '=', '?'
# and a non-ASCII letter; the secret has ':' too (the file's plain secrets cannot, so its line
# gives the secret's SHA-256). A ':' in an id cannot be written in the file at all: the first ':'
# of a line ends the id.
SPECIAL = ("my app+1 %/é&=?", "p@ss: w%rd+&=/é~ 0123")
HASHED = ("hashed", "hashed-secret-0123456789")          # sha256: line, global_revocation
CLIENTS = [(WEB, WEB[1], ""), (MOBILE, MOBILE[1], ""), (OPS, OPS[1], "revoke_any,global_revocation"),
           (AUDITOR, AUDITOR[1], "revoke_any"),
           (SPECIAL, "sha256:" + hashlib.sha256(SPECIAL[1].encode()).hexdigest(), ""),
           (HASHED, "sha256:" + hashlib.sha256(HASHED[1].encode()).hexdigest().upper(), "global_revocation")]
SECRETS = [c[0][1] for c in CLIENTS]

FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
REVOKE = "/oauth2/revoke"
INTROSPECT = "/oauth2/introspect"
GLOBAL = "/global-token-revocation"

CLIENT_SCRIPT = os.path.join(idp.OIDC_DIR, "oauth_client.mjs")
NODE_TIMEOUT = 30.0  # seconds for one run of oauth_client.mjs (a few HTTP exchanges)


def clients_text(clients):
    lines = ["# OAuth clients of test_oauth", ""]
    lines += [f"{c[0]}:{secret}" + (f":{perms}" if perms else "") for c, secret, perms in clients]
    return "\n".join(lines) + "\n"


def write_clients(path, clients):
    """Write the clients file atomically (a reload sees the old file or the new one)."""
    with open(path + ".new", "w", encoding="utf-8") as f:
        f.write(clients_text(clients))
    os.replace(path + ".new", path)


def form(**fields):
    return urllib.parse.urlencode({k: v for k, v in fields.items() if v is not None}).encode()


def basic(client, encode=True):
    """client_secret_basic: id and secret form-urlencoded (RFC 6749 2.3.1), then base64."""
    cid, secret = client
    if encode:
        cid, secret = urllib.parse.quote_plus(cid), urllib.parse.quote_plus(secret)
    return {"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def post_creds(client):
    """client_secret_post: the form members."""
    return {"client_id": client[0], "client_secret": client[1]}


def record(kind, iss, value):
    """The Redis key of a revocation ("jti") or a subject's cutoff ("sub"), as the contract and
    `revokd --key-name` both name it."""
    key = key_name(kind, iss, value)
    if key != revokd_key_name(kind, iss, value):
        raise AssertionError(f"revokd --key-name {kind} disagrees with the contract's key {key}")
    return key


def run_oauth_client(request):
    """oauth_client.mjs with `request` on stdin; its outcomes, one per step."""
    if not os.path.isdir(os.path.join(idp.OIDC_DIR, "node_modules", "openid-client")):
        raise AssertionError("openid-client is not installed: run `npm ci --prefix tests/integration/oidc` "
                             "(./dev test does it)")
    out = subprocess.run([idp.node_bin(), CLIENT_SCRIPT], input=json.dumps(request), cwd=idp.OIDC_DIR,
                         env=clean_env(), capture_output=True, text=True, timeout=NODE_TIMEOUT)
    if out.returncode != 0:
        raise AssertionError(f"oauth_client.mjs exited with {out.returncode}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)


class OAuthTest(harness.RevokdTestCase):
    """One revokd with REVOKD_ISSUER=ISS (the opaque subjects' issuer), the clients above, an
    admin key, a leeway of LEEWAY and a lifetime of at most MAX_LIFETIME."""
    admin_keys = (ADMIN_KEY,)

    @classmethod
    def setUpClass(cls):
        cls.clients_dir = tempfile.mkdtemp(prefix="revokd-oauth-clients-")
        cls.addClassCleanup(shutil.rmtree, cls.clients_dir, True)
        cls.clients_path = os.path.join(cls.clients_dir, "clients")
        write_clients(cls.clients_path, CLIENTS)
        cls.revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_CLIENTS_FILE": cls.clients_path,
                          "REVOKD_LEEWAY": str(LEEWAY), "REVOKD_MAX_TOKEN_LIFETIME": str(MAX_LIFETIME)}
        super().setUpClass()

    # Helpers -----------------------------------------------------------------------------------
    def token(self, sub=..., client_id=None, iss=ISS, **claims):
        """A token of ISS (RS256, kid rsa-1): std_claims (a random sub and jti, iat now, exp
        now+300) with sub, client_id and anything else given (None drops a claim)."""
        if sub is not ...:
            claims["sub"] = sub
        return self.craft(payload=std_claims(client_id=client_id, iss=iss, **claims))

    def call(self, path, body=b"", headers=None, daemon=None):
        h = dict(FORM_CT) if isinstance(body, bytes) else {}
        h.update(headers or {})
        return (daemon or self.revokd).request("POST", path, body, headers=h)

    def revoke(self, token, client=WEB, hint=None, daemon=None):
        return self.call(REVOKE, form(token=token, token_type_hint=hint), basic(client), daemon)

    def introspect(self, token, client=WEB, daemon=None):
        return self.call(INTROSPECT, form(token=token), basic(client), daemon)

    def global_revoke(self, sub_id, headers):
        return self.call(GLOBAL, {"sub_id": sub_id}, headers)

    def assertNoStore(self, resp):
        self.assertEqual(resp.header("Cache-Control"), "no-store", resp.headers)

    def assertInvalidClient(self, resp):
        self.assertError(resp, 401, "invalid_client")
        self.assertEqual(resp.header("WWW-Authenticate"), 'Basic realm="revokd"', resp.headers)

    def assertRevoked(self, resp, token):
        """200 for a revocation that stored the token's id until exp + leeway."""
        body = self.assertJsonResponse(resp, 200)
        _, claims, _ = harness.jwt_parts(token)
        self.assertEqual(body, {"revoked": True, "jti": token_id(token), "iss": claims["iss"],
                                "expires_at": claims["exp"] + LEEWAY, "expired": False})
        key = record("jti", claims["iss"], token_id(token))
        self.assertEqual(self.redis.get(key), "1")
        self.assertEqual(self.redis.expiretime(key), claims["exp"] + LEEWAY)
        return key

    def assertInactive(self, resp):
        """RFC 7662 2.2: {"active": false} and nothing else, not to be cached."""
        body = self.assertJsonResponse(resp, 200)
        self.assertEqual(body, {"active": False})
        self.assertNoStore(resp)

    def assertOk200WithNothingStored(self, resp):
        body = self.assertJsonResponse(resp, 200)
        self.assertNotEqual(body.get("revoked"), True, body)
        self.assertEqual(self.redis.keys(), [])

    def assertCutoffRecord(self, iss, sub, t0, t1):
        """The subject's revoke-all record, as POST /v1/admin/subjects/{sub}/revoke-all leaves it:
        cutoff now + leeway, kept until cutoff + max lifetime + leeway."""
        key = record("sub", iss, sub)
        cutoff = int(self.redis.get(key))
        self.assertGreaterEqual(cutoff, t0 + LEEWAY)
        self.assertLessEqual(cutoff, t1 + LEEWAY)
        self.assertLessEqual(abs(self.redis.expiretime(key) - (cutoff + MAX_LIFETIME + LEEWAY)), 1)
        return key, cutoff

    # RFC 7009 ----------------------------------------------------------------------------------
    def test_revoke_is_effective_at_once(self):
        """2.1: the client's own token is revoked at once: /v1/check (which had verified and cached
        it) and introspection say so on the next request; revoking it again is 200 too."""
        token = self.token(client_id="web")
        other = self.token(client_id="web")
        self.assertActive(self.revokd.check(token), token)
        self.assertIs(self.introspect(token).json()["active"], True)

        resp = self.revoke(token, hint="access_token")
        key = self.assertRevoked(resp, token)
        self.assertNoStore(resp)
        self.assertEqual(self.redis.keys(), [key])
        self.assertTokenFailure(self.revokd.check(token), "revoked")
        self.assertInactive(self.introspect(token))
        self.assertActive(self.revokd.check(other), other)

        self.assertRevoked(self.revoke(token), token)
        self.assertEqual(self.redis.keys(), [key])

    def test_token_type_hint_values_accepted(self):
        """2.1: token_type_hint is optional, and a hint the server does not know, or one that is
        wrong, must not stop the revocation (the server searches all its tokens)."""
        for hint in (None, "access_token", "refresh_token", "id_token", "urn:example:unknown"):
            with self.subTest(hint=hint):
                token = self.token(client_id="web")
                self.assertRevoked(self.revoke(token, hint=hint), token)
                self.assertTokenFailure(self.revokd.check(token), "revoked")

    def test_refresh_token_shaped_jwt_is_revoked_alike(self):
        """2.1: refresh tokens must be revocable. A refresh token in JWT form (no aud, azp instead
        of client_id, offline_access, a longer life) sent with token_type_hint=refresh_token is
        revoked by its id until it expires, like an access token."""
        t = now()
        refresh = self.token(client_id=None, azp="web", scope="offline_access", token_use="refresh",
                             iat=t, exp=t + MAX_LIFETIME - 60)
        resp = self.revoke(refresh, hint="refresh_token")
        key = self.assertRevoked(resp, refresh)
        self.assertEqual(self.redis.keys(), [key])
        self.assertInactive(self.introspect(refresh))
        self.assertTokenFailure(self.revokd.check(refresh), "revoked")
        # The hint need not be right either.
        refresh2 = self.token(client_id="web", scope="offline_access", iat=t, exp=t + 3600)
        self.assertRevoked(self.revoke(refresh2, hint="access_token"), refresh2)

    def test_invalid_token_is_200_and_nothing_stored(self):
        """2.2: an invalid token is answered 200 (the client can do nothing about it), whatever
        makes it invalid, and nothing is stored."""
        good = self.token(client_id="web")
        h, p, s = good.split(".")
        t = now()
        invalid = {
            "bad signature": f"{h}.{p}.{s[:-4]}AAAA",
            "not JSON": "a.b.c",
            "unknown kid": self.craft(header={"alg": "RS256", "kid": "nope"}, payload=std_claims(iss=ISS)),
            "alg none": harness.b64url(b'{"alg":"none"}') + f".{p}.",
            "another issuer": self.token(client_id="web", iss=OTHER_ISS),
            "lifetime over the maximum": self.token(client_id="web", iat=t, exp=t + MAX_LIFETIME + 60),
            "no iat": self.token(client_id="web", iat=None),
        }
        for what, token in invalid.items():
            with self.subTest(what):
                self.assertOk200WithNothingStored(self.revoke(token))
                self.assertInactive(self.introspect(token))
        self.assertActive(self.revokd.check(good), good)

    def test_expired_token_is_200_without_a_record(self):
        """An expired token (past exp + leeway) can no longer be accepted: 200, and no record is
        written for it. One expired within the leeway is still accepted, so it is stored until
        exp + leeway."""
        t = now()
        expired = self.token(client_id="web", iat=t - 600, exp=t - LEEWAY - 60)
        resp = self.revoke(expired)
        body = self.assertJsonResponse(resp, 200)
        self.assertIs(body.get("expired"), True, body)
        self.assertEqual(self.redis.keys(), [])
        self.assertInactive(self.introspect(expired))

        within = self.token(client_id="web", iat=t - 600, exp=t - 1)
        key = record("jti", ISS, token_id(within))
        self.assertJsonResponse(self.revoke(within), 200)
        self.assertEqual(self.redis.keys(), [key])
        self.assertEqual(self.redis.expiretime(key), t - 1 + LEEWAY)

    def test_not_a_jwt_is_unsupported_token_type(self):
        """2.2.1: a token of a type the server cannot revoke (anything but a compact JWS: an
        opaque token, a JWE, two or four segments, padding) is 400 unsupported_token_type."""
        good = self.token(client_id="web")
        for what, token in {"opaque": "2YotnFZFEjr1zCsicMWpAA", "two segments": "abc.def",
                            "four segments": good + ".x", "JWE (five segments)": "a.b.c.d.e",
                            "padding": good + "=", "a space": good.replace(".", ". ", 1)}.items():
            with self.subTest(what):
                self.assertError(self.revoke(token), 400, "unsupported_token_type")
        self.assertEqual(self.redis.keys(), [])
        self.assertActive(self.revokd.check(good), good)

    def test_revoke_request_errors(self):
        """2.1 and RFC 6749 3.2: token is required, each parameter once; the body must be
        application/x-www-form-urlencoded; POST only."""
        token = self.token(client_id="web")
        self.assertError(self.call(REVOKE, b"", basic(WEB)), 400, "invalid_request")
        self.assertError(self.call(REVOKE, form(token_type_hint="access_token"), basic(WEB)), 400, "invalid_request")
        self.assertError(self.call(REVOKE, b"token=", basic(WEB)), 400, "invalid_request")
        self.assertError(self.call(REVOKE, form(token=token) + b"&" + form(token=token), basic(WEB)),
                         400, "invalid_request")
        self.assertError(self.call(REVOKE, {"token": token}, basic(WEB)), 415, "unsupported_media_type")
        self.assertError(self.call(REVOKE, form(token=token), {**basic(WEB), "Content-Type": "text/plain"}),
                         415, "unsupported_media_type")
        resp = self.revokd.request("GET", REVOKE, headers=basic(WEB))
        self.assertError(resp, 405, "method_not_allowed")
        self.assertEqual(resp.header("Allow"), "POST")
        self.assertEqual(self.redis.keys(), [])
        self.assertActive(self.revokd.check(token), token)

    def test_revoking_another_clients_token(self):
        """2.1: the server verifies that the token was issued to the client revoking it: another
        client's token is 400 unauthorized_client and stays active. The token's client is its
        client_id, else its azp; a token naming no client belongs to none. A client with
        revoke_any may revoke any token."""
        mobile = self.token(client_id="mobile")
        azp_mobile = self.token(client_id=None, azp="mobile")
        both = self.token(client_id="mobile", azp="web")  # client_id wins
        nobody = self.token(client_id=None)
        for what, token in (("client_id", mobile), ("azp", azp_mobile), ("client_id over azp", both),
                            ("no client", nobody)):
            with self.subTest(what):
                self.assertError(self.revoke(token, client=WEB), 400, "unauthorized_client")
                self.assertEqual(self.redis.keys(), [])
                self.assertActive(self.revokd.check(token), token)

        # The client the token was issued to, by client_secret_post this time.
        self.assertRevoked(self.call(REVOKE, form(token=mobile, **post_creds(MOBILE))), mobile)
        self.assertRevoked(self.revoke(azp_mobile, client=MOBILE), azp_mobile)
        web_azp = self.token(client_id=None, azp="web")
        self.assertRevoked(self.revoke(web_azp, client=WEB), web_azp)
        # revoke_any clients.
        self.assertRevoked(self.revoke(both, client=OPS), both)
        self.assertRevoked(self.call(REVOKE, form(token=nobody, **post_creds(AUDITOR))), nobody)
        for token in (mobile, azp_mobile, web_azp, both, nobody):
            self.assertTokenFailure(self.revokd.check(token), "revoked")

    # Client authentication (RFC 6749 2.3.1) ----------------------------------------------------
    def test_client_authentication(self):
        """Both endpoints: client_secret_basic and client_secret_post work; no, unknown or wrong
        credentials are 401 invalid_client with a Basic challenge (RFC 6749 5.2); both methods at
        once are 400 invalid_request. A secret never reaches the log."""
        mark = self.revokd.log_mark()
        for path in (REVOKE, INTROSPECT):
            with self.subTest(path):
                token = lambda: self.token(client_id="web")  # noqa: E731  (a fresh one each time)
                self.assertEqual(self.call(path, form(token=token()), basic(WEB)).status, 200)
                self.assertEqual(self.call(path, form(token=token(), **post_creds(WEB))).status, 200)
                # The scheme is case-insensitive (RFC 7235 2.1).
                lower = {"Authorization": "basic " + basic(WEB)["Authorization"].split(" ", 1)[1]}
                self.assertEqual(self.call(path, form(token=token()), lower).status, 200)

                self.assertInvalidClient(self.call(path, form(token=token())))
                self.assertInvalidClient(self.call(path, form(token=token()), basic((WEB[0], MOBILE[1]))))
                self.assertInvalidClient(self.call(path, form(token=token()), basic(("nobody", WEB[1]))))
                self.assertInvalidClient(self.call(path, form(token=token()), basic((WEB[0], ""))))
                self.assertInvalidClient(self.call(path, form(token=token(), client_id=WEB[0],
                                                              client_secret=WEB[1] + "x")))
                # A public client (client_id alone) is not accepted: every client has a secret.
                self.assertInvalidClient(self.call(path, form(token=token(), client_id=WEB[0])))
                for bad in ("Basic", "Basic !!!!", "Basic " + base64.b64encode(b"web").decode(),
                            "Basic " + base64.b64encode(WEB[1].encode()).decode()):
                    self.assertInvalidClient(self.call(path, form(token=token()), {"Authorization": bad}))

                self.assertError(self.call(path, form(token=token(), **post_creds(WEB)), basic(WEB)),
                                 400, "invalid_request")
                self.assertError(self.call(path, form(token=token(), **post_creds(MOBILE)), basic(WEB)),
                                 400, "invalid_request")
                # Without a token, once the client is known.
                self.assertError(self.call(path, b"", basic(WEB)), 400, "invalid_request")

        # Admin keys may introspect, not revoke as a client.
        token = self.token(client_id="web")
        self.assertIs(self.call(INTROSPECT, form(token=token), bearer(ADMIN_KEY)).json()["active"], True)
        self.assertInvalidClient(self.call(INTROSPECT, form(token=token), bearer("x" * 32)))
        self.assertInvalidClient(self.call(REVOKE, form(token=token), bearer(ADMIN_KEY)))
        self.assertActive(self.revokd.check(token), token)

        # 16 requests a path, then 4: every request line is in before the log is read.
        harness.wait_until(lambda: len(self.revokd.request_logs(mark)) >= 36, 5, what="the request logs")
        log = self.revokd.log_text(mark)
        for secret in SECRETS + [urllib.parse.quote_plus(s) for s in SECRETS]:
            self.assertNotIn(secret, log)
        clients = {o.get("client_id") for o in self.revokd.request_logs(mark) if o.get("status") == 200}
        self.assertIn("web", clients)

    def test_credentials_form_urlencoded_before_base64(self):
        """RFC 6749 2.3.1: in HTTP Basic the id and the secret are form-urlencoded first, so an id
        with ' ', '+', '%', '/', '&', '=', '?' or non-ASCII letters and a secret with ':' work; sent
        without that encoding they do not. The client's line gives the secret's SHA-256."""
        token = self.token(client_id=SPECIAL[0])
        self.assertIs(self.introspect(token, client=SPECIAL).json()["active"], True)
        # Spaces as %20 rather than '+' decode the same.
        quoted = "Basic " + base64.b64encode(
            f"{urllib.parse.quote(SPECIAL[0], safe='')}:{urllib.parse.quote(SPECIAL[1], safe='')}".encode()).decode()
        self.assertEqual(self.call(INTROSPECT, form(token=token), {"Authorization": quoted}).status, 200)
        self.assertEqual(self.call(INTROSPECT, form(token=token, **post_creds(SPECIAL))).status, 200)
        self.assertInvalidClient(self.call(INTROSPECT, form(token=token), basic(SPECIAL, encode=False)))
        # The secret's ':' must be escaped: a raw one would not be the one separating id and secret
        # ... and an id with only '+' for spaces decodes to the spaces.
        plus_id = (SPECIAL[0].replace(" ", "+"), SPECIAL[1])
        self.assertInvalidClient(self.call(INTROSPECT, form(token=token), basic(plus_id)))
        # The token was issued to this client: it may revoke it.
        self.assertRevoked(self.revoke(token, client=SPECIAL), token)

    def test_raw_nul_byte_is_refused(self):
        """A raw NUL byte is not application/x-www-form-urlencoded (it must be sent as %00, which
        revokd refuses), nor may a Basic id or password hold one (RFC 7617 2): the form is 400 and
        the credentials 401, rather than the value being cut at the NUL and the rest ignored."""
        token = self.token(client_id="web")

        def raw_basic(raw):
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

        # The percent-encoded NUL, for comparison: refused.
        self.assertError(self.call(INTROSPECT, f"token={token}%00junk".encode(), basic(WEB)), 400, "invalid_request")
        self.assertInvalidClient(self.call(INTROSPECT, form(token=token), raw_basic(b"web%00evil:" + WEB[1].encode())))
        for what, body in (("in the token", f"token={token}".encode() + b"\0junk"),
                           ("in a name", b"token\0x=" + token.encode()),
                           ("in client_secret", form(token=token, client_id=WEB[0]) + b"&client_secret="
                            + WEB[1].encode() + b"\0junk"),
                           ("in client_id", form(token=token, client_secret=WEB[1]) + b"&client_id=web\0evil")):
            with self.subTest(form=what):
                self.assertError(self.call(INTROSPECT, body, basic(WEB) if "client" not in what else {}),
                                 400, "invalid_request")
        for what, raw in (("in the id", b"web\0evil:" + WEB[1].encode()),
                          ("in the secret", b"web:" + WEB[1].encode() + b"\0junk")):
            with self.subTest(basic=what):
                self.assertInvalidClient(self.call(INTROSPECT, form(token=token), raw_basic(raw)))

    def test_hashed_secret_line(self):
        """A `sha256:<hex>` line authenticates the secret whose digest it holds (upper-case hex
        too), not the digest itself."""
        token = self.token(client_id="hashed")
        self.assertIs(self.introspect(token, client=HASHED).json()["active"], True)
        digest = hashlib.sha256(HASHED[1].encode()).hexdigest()
        for wrong in (digest, "sha256:" + digest, digest.upper()):
            self.assertInvalidClient(self.introspect(token, client=(HASHED[0], wrong)))
        self.assertRevoked(self.call(REVOKE, form(token=token, **post_creds(HASHED))), token)

    # RFC 7662 ----------------------------------------------------------------------------------
    def test_introspection_of_an_active_token(self):
        """2.2: active true with the token's scope, client_id, token_type, exp, iat, nbf, sub, aud
        (a string or an array, as in the token), iss and jti, each when present, and nothing else;
        Cache-Control: no-store. Any client or an admin key may ask."""
        t = now()
        full = self.token(sub="ana", client_id="web", scope="orders:read orders:write", nbf=t - 10,
                          aud=["api-1", "api-2"], email="ana@example.com", iat=t - 5, exp=t + 600,
                          jti="jti-full-" + os.urandom(4).hex())
        want = {"active": True, "scope": "orders:read orders:write", "client_id": "web", "token_type": "Bearer",
                "exp": t + 600, "iat": t - 5, "nbf": t - 10, "sub": "ana", "aud": ["api-1", "api-2"],
                "iss": ISS, "jti": harness.jwt_parts(full)[1]["jti"]}
        for caller in (basic(WEB), basic(MOBILE), bearer(ADMIN_KEY)):
            resp = self.call(INTROSPECT, form(token=full), caller)
            self.assertEqual(self.assertJsonResponse(resp, 200), want)
            self.assertNoStore(resp)

        one_aud = self.token(sub="bo", client_id=None, azp="mobile", aud="api-1", iat=t, exp=t + 60)
        self.assertEqual(self.introspect(one_aud).json(),
                         {"active": True, "client_id": "mobile", "token_type": "Bearer", "exp": t + 60,
                          "iat": t, "sub": "bo", "aud": "api-1", "iss": ISS, "jti": token_id(one_aud)})
        # A token with the least: no jti (its id is derived from it), sub, scope, client or aud.
        least = self.token(sub=None, client_id=None, jti=None, iat=t, exp=t + 60)
        self.assertEqual(self.introspect(least).json(),
                         {"active": True, "token_type": "Bearer", "exp": t + 60, "iat": t, "iss": ISS,
                          "jti": token_id(least)})
        self.assertTrue(token_id(least).startswith("sha256:"))
        self.assertEqual(self.redis.keys(), [])

    def test_introspection_of_inactive_tokens(self):
        """2.2: every token that is not active (invalid, expired, not yet valid, revoked by id or by
        its subject's revoke-all) gets {"active": false} and no other member."""
        t = now()
        by_id = self.token(client_id="web")
        self.assertEqual(self.admin_revoke(by_id).status, 200)
        by_subject = self.token(sub="sam", client_id="web", iat=t - 1)
        self.assertEqual(self.revokd.admin_revoke_all(ADMIN_KEY, "sam").status, 200)
        cases = {
            "revoked by id": by_id,
            "revoked with its subject": by_subject,
            "expired": self.token(client_id="web", iat=t - 900, exp=t - LEEWAY - 30),
            "not yet valid": self.token(client_id="web", nbf=t + LEEWAY + 60, exp=t + 600),
            "bad signature": by_id[:-4] + ("AAAA" if not by_id.endswith("AAAA") else "BBBB"),
            "not a JWT": "2YotnFZFEjr1zCsicMWpAA",
        }
        for what, token in cases.items():
            with self.subTest(what):
                self.assertInactive(self.introspect(token))
                self.assertInactive(self.call(INTROSPECT, form(token=token), bearer(ADMIN_KEY)))

    def admin_revoke(self, token):
        _, claims, _ = harness.jwt_parts(token)
        return self.revokd.admin_revoke(ADMIN_KEY, {"jti": token_id(token), "exp": claims["exp"]})

    def test_introspection_request_errors(self):
        token = self.token(client_id="web")
        self.assertError(self.call(INTROSPECT, b"", basic(WEB)), 400, "invalid_request")
        self.assertError(self.call(INTROSPECT, {"token": token}, basic(WEB)), 415, "unsupported_media_type")
        self.assertError(self.revokd.request("GET", INTROSPECT, headers=basic(WEB)), 405, "method_not_allowed")
        self.assertInvalidClient(self.call(INTROSPECT, form(token=token)))

    # Global token revocation -------------------------------------------------------------------
    def test_global_revocation_iss_sub(self):
        """An iss_sub subject: 204 with no body; every token of that subject and issuer issued up
        to now + leeway is revoked, as POST /v1/admin/subjects/{sub}/revoke-all does; other
        subjects, and the same subject at another issuer, are untouched."""
        old = [self.token(sub="gina", client_id=c, iat=now() - 2) for c in ("web", "mobile")]
        bystander = self.token(sub="gus", client_id="web")
        hal = self.token(sub="hal", client_id="web")

        t0 = now()
        resp = self.global_revoke({"format": "iss_sub", "iss": ISS, "sub": "gina"}, bearer(ADMIN_KEY))
        t1 = now()
        self.assertEqual(resp.status, 204, resp)
        self.assertEqual(resp.body, b"")
        self.assertTrue(resp.header("X-Request-Id"))
        key, cutoff = self.assertCutoffRecord(ISS, "gina", t0, t1)
        self.assertEqual(self.redis.keys(), [key])
        for token in old:
            self.assertTokenFailure(self.revokd.check(token), "revoked")
            self.assertInactive(self.introspect(token, client=OPS))
        self.assertTokenFailure(self.revokd.check(self.token(sub="gina", iat=cutoff)), "revoked")
        self.assertActive(self.revokd.check(bystander), bystander)

        # As the admin endpoint does it: the same record for another subject, the same way.
        t0 = now()
        admin = self.revokd.admin_revoke_all(ADMIN_KEY, "ctl")
        t1 = now()
        self.assertEqual(admin.status, 200)
        ctl_key, ctl_cutoff = self.assertCutoffRecord(ISS, "ctl", t0, t1)
        self.assertEqual(admin.json()["cutoff"], ctl_cutoff)
        # The record's lifetime is a TTL counted from when Redis runs the command, so it may end
        # up to a second after its nominal end (never before): equal up to that second.
        kept = (self.redis.expiretime(ctl_key) - ctl_cutoff, self.redis.expiretime(key) - cutoff)
        self.assertLessEqual(abs(kept[0] - kept[1]), 1, kept)

        # Another issuer's hal, by a client with global_revocation: ISS's hal is untouched.
        t0 = now()
        resp = self.global_revoke({"format": "iss_sub", "iss": OTHER_ISS, "sub": "hal"}, basic(OPS))
        t1 = now()
        self.assertEqual(resp.status, 204, resp)
        self.assertEqual(resp.body, b"")
        other_key, _ = self.assertCutoffRecord(OTHER_ISS, "hal", t0, t1)
        self.assertEqual(self.redis.keys(), sorted([key, ctl_key, other_key]))
        self.assertActive(self.revokd.check(hal), hal)

        # A subject nobody knows is no different: 204, and its record.
        resp = self.global_revoke({"format": "iss_sub", "iss": ISS, "sub": "nobody-" + os.urandom(4).hex()},
                                  bearer(ADMIN_KEY))
        self.assertEqual(resp.status, 204, resp)

    def test_global_revocation_opaque(self):
        """An opaque subject is a subject of REVOKD_ISSUER; a client with global_revocation from a
        sha256: line may send it."""
        ivy = [self.token(sub="ivy", client_id="web", iat=now() - 1) for _ in range(2)]
        other = self.token(sub="ivo", client_id="web")
        t0 = now()
        resp = self.global_revoke({"format": "opaque", "id": "ivy"}, basic(HASHED))
        t1 = now()
        self.assertEqual(resp.status, 204, resp)
        self.assertEqual(resp.body, b"")
        key, _ = self.assertCutoffRecord(ISS, "ivy", t0, t1)
        self.assertEqual(self.redis.keys(), [key])
        for token in ivy:
            self.assertTokenFailure(self.revokd.check(token), "revoked")
        self.assertActive(self.revokd.check(other), other)

    def test_opaque_subject_needs_an_issuer(self):
        """Without REVOKD_ISSUER an opaque subject names no issuer: 400 invalid_request, nothing
        stored; iss_sub still works."""
        d = self.start_revokd({"REVOKD_CLIENTS_FILE": self.clients_path})
        resp = self.call(GLOBAL, {"sub_id": {"format": "opaque", "id": "lu"}}, bearer(ADMIN_KEY), daemon=d)
        self.assertError(resp, 400, "invalid_request")
        self.assertEqual(self.redis.keys(), [])
        t0 = now()
        resp = self.call(GLOBAL, {"sub_id": {"format": "iss_sub", "iss": ISS, "sub": "lu"}}, basic(OPS), daemon=d)
        self.assertEqual(resp.status, 204, resp)
        self.assertEqual(self.redis.keys(), [record("sub", ISS, "lu")])
        self.assertGreaterEqual(int(self.redis.get(record("sub", ISS, "lu"))), t0)

    def test_global_revocation_refusals(self):
        """401 without valid credentials (Basic challenge), 403 insufficient_permission for a client
        without global_revocation, 400 invalid_request for other subject formats or a malformed
        sub_id, 415 for a form; nothing is stored by any of them."""
        sub_id = {"format": "iss_sub", "iss": ISS, "sub": "jo"}
        token = self.token(sub="jo", client_id="web")
        for what, headers in (("none", {}), ("wrong admin key", bearer("y" * 32)),
                              ("wrong secret", basic((OPS[0], WEB[1]))), ("unknown client", basic(("x", OPS[1])))):
            with self.subTest(what):
                self.assertInvalidClient(self.global_revoke(sub_id, headers))
        for client in (WEB, AUDITOR):
            with self.subTest(client=client[0]):
                self.assertError(self.global_revoke(sub_id, basic(client)), 403, "insufficient_permission")
        bad = [{"format": "email", "email": "jo@example.com"}, {"format": "account", "uri": "acct:jo@example.com"},
               {"format": "iss_sub", "iss": ISS}, {"format": "iss_sub", "sub": "jo"}, {"format": "opaque"},
               {"format": "opaque", "id": ""}, {"format": "opaque", "id": 7}, {"id": "jo"}, "jo", None]
        for sub in bad:
            with self.subTest(sub_id=sub):
                self.assertError(self.global_revoke(sub, bearer(ADMIN_KEY)), 400, "invalid_request")
        self.assertError(self.call(GLOBAL, {"subject": "jo"}, bearer(ADMIN_KEY)), 400, "invalid_request")
        self.assertError(self.call(GLOBAL, form(sub="jo"), bearer(ADMIN_KEY)), 415, "unsupported_media_type")
        self.assertError(self.revokd.request("GET", GLOBAL, headers=bearer(ADMIN_KEY)), 405, "method_not_allowed")
        self.assertEqual(self.redis.keys(), [])
        self.assertActive(self.revokd.check(token), token)

    # The store ---------------------------------------------------------------------------------
    def test_store_down_is_503(self):
        """With Redis down, nothing is answered from guesses: revocation, introspection of a valid
        token and global revocation are 503 store_unavailable."""
        token = self.token(client_id="web")
        self.redis.stop()
        try:
            self.assertError(self.revoke(token), 503, "store_unavailable")
            self.assertError(self.introspect(token), 503, "store_unavailable")
            self.assertError(self.global_revoke({"format": "opaque", "id": "kim"}, bearer(ADMIN_KEY)),
                             503, "store_unavailable")
        finally:
            self.redis.start(require_empty=False)
        self.wait_ready(stable=3)
        self.assertRevoked(self.revoke(token), token)

    # The clients file --------------------------------------------------------------------------
    def test_clients_file_reload(self):
        """SIGHUP reads the clients file again: a removed client gets 401 from then on, an added one
        is accepted, a changed secret replaces the old one. A file with a mistake changes nothing.
        POST /v1/admin/reload does the same."""
        path = os.path.join(self.tmp, "clients-reload")
        leaving, arriving = ("leaving", "leaving-secret-0123456789"), ("arriving", "arriving-secret-0123456789")
        new_web = (WEB[0], "web-secret-rotated-0123456789")
        write_clients(path, [(WEB, WEB[1], ""), (leaving, leaving[1], "")])
        d = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_CLIENTS_FILE": path, "REVOKD_LEEWAY": str(LEEWAY),
                               "REVOKD_MAX_TOKEN_LIFETIME": str(MAX_LIFETIME)})
        token = self.token(client_id="web")

        def status(client):
            return self.introspect(token, client=client, daemon=d).status

        self.assertEqual((status(WEB), status(leaving), status(arriving)), (200, 200, 401))

        def reload(how):
            mark = d.log_mark()
            if how == "sighup":
                os.kill(d.proc.pid, signal.SIGHUP)
            else:
                self.assertEqual(d.request("POST", "/v1/admin/reload", headers=bearer(ADMIN_KEY)).status, 200)
            return harness.wait_until(
                lambda: next((o["event"] for o in d.json_logs(mark) if isinstance(o, dict)
                              and o.get("event") in ("reloaded", "reload_failed")), None),
                10, interval=0.02, what="the reload's log line")

        write_clients(path, [(new_web, new_web[1], ""), (arriving, arriving[1], "")])
        self.assertEqual(reload("sighup"), "reloaded")
        self.assertInvalidClient(self.introspect(token, client=leaving, daemon=d))
        self.assertInvalidClient(self.revoke(self.token(client_id="leaving"), client=leaving, daemon=d))
        self.assertInvalidClient(self.introspect(token, client=WEB, daemon=d))
        self.assertEqual((status(new_web), status(arriving)), (200, 200))

        # A mistake (a secret under 16 bytes) keeps the clients in force.
        write_clients(path, [(WEB, "short", "")])
        self.assertEqual(reload("sighup"), "reload_failed")
        self.assertEqual((status(new_web), status(arriving), status(WEB)), (200, 200, 401))

        write_clients(path, [(new_web, new_web[1], "")])
        self.assertEqual(reload("admin"), "reloaded")
        self.assertInvalidClient(self.introspect(token, client=arriving, daemon=d))
        self.assertEqual(status(new_web), 200)

    # An OAuth client library -------------------------------------------------------------------
    def library(self, client, auth, steps):
        base = f"http://{harness.LOOPBACK}:{self.revokd.port}"
        return run_oauth_client({
            "server": {"issuer": base, "revocation_endpoint": base + REVOKE,
                       "introspection_endpoint": base + INTROSPECT},
            "client_id": client[0], "client_secret": client[1], "auth": auth, "steps": steps})

    def test_openid_client_library(self):
        """openid-client 6 (npm), unchanged: tokenIntrospection says active, tokenRevocation
        succeeds, tokenIntrospection then says inactive; with ClientSecretBasic, ClientSecretPost
        and its default, for plain and special-character clients. Its errors are revokd's: a
        wrong secret is a 401 challenge, another client's token unauthorized_client, an opaque
        token unsupported_token_type, an invalid token a successful revocation."""
        for client, auth in ((WEB, "basic"), (WEB, "post"), (WEB, "default"), (SPECIAL, "basic"),
                             (SPECIAL, "post")):
            with self.subTest(client=client[0], auth=auth):
                token = self.token(sub="lib-user", client_id=client[0], scope="read")
                _, claims, _ = harness.jwt_parts(token)
                out = self.library(client, auth, [
                    {"op": "introspect", "token": token},
                    {"op": "revoke", "token": token, "hint": "access_token"},
                    {"op": "introspect", "token": token},
                    {"op": "revoke", "token": token},
                    {"op": "revoke", "token": "a.b.c", "hint": "refresh_token"},
                ])
                self.assertEqual(out[0], {"op": "introspect", "ok": True, "result": {
                    "active": True, "scope": "read", "client_id": client[0], "token_type": "Bearer",
                    "exp": claims["exp"], "iat": claims["iat"], "sub": "lib-user", "iss": ISS, "jti": claims["jti"]}})
                self.assertEqual(out[1], {"op": "revoke", "ok": True})
                self.assertEqual(out[2], {"op": "introspect", "ok": True, "result": {"active": False}})
                self.assertEqual(out[3:], [{"op": "revoke", "ok": True}] * 2)
                key = record("jti", ISS, claims["jti"])
                self.assertEqual(self.redis.get(key), "1")
                self.assertEqual(self.redis.expiretime(key), claims["exp"] + LEEWAY)
                self.assertTokenFailure(self.revokd.check(token), "revoked")

        others = self.token(client_id="mobile")
        for auth in ("basic", "post"):
            with self.subTest(errors=auth):
                out = self.library(WEB, auth, [
                    {"op": "revoke", "token": others},
                    {"op": "revoke", "token": "2YotnFZFEjr1zCsicMWpAA"},
                ])
                self.assertEqual(out[0], {"op": "revoke", "ok": False, "name": "ResponseBodyError",
                                          "code": "OAUTH_RESPONSE_BODY_ERROR", "status": 400,
                                          "error": "unauthorized_client"})
                self.assertEqual(out[1]["error"], "unsupported_token_type", out[1])
                out = self.library((WEB[0], MOBILE[1]), auth, [{"op": "revoke", "token": others},
                                                              {"op": "introspect", "token": others}])
                for o in out:
                    self.assertEqual((o["ok"], o["name"], o["status"], o.get("challenges")),
                                     (False, "WWWAuthenticateChallengeError", 401, ["basic"]), o)
        self.assertActive(self.revokd.check(others), others)


if __name__ == "__main__":
    harness.main()
