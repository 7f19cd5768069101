"""Gateways in front of an API with revokd's /v1/authz judging every request: the examples in
deploy/gateways/.

nginx and Caddy run for real with the example files rendered (the very files, placeholders
replaced by free loopback ports) between the client and a small upstream that records what
reached it. Traefik and Envoy are not packaged for Debian 12 and no checker of their configs is
either: their files are parsed with python3-yaml and checked for the keys their documentation
requires, and revokd is called exactly the way each of them calls it, its answer read the way
each of them reads it."""

import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateways  # noqa: E402
import harness  # noqa: E402
from gateways import IDENTITY_HEADERS, header_values  # noqa: E402
from harness import LOOPBACK, jwt_parts, std_claims  # noqa: E402

try:
    import yaml
except ImportError:  # python3-yaml is in ./dev's test packages
    yaml = None

ISS = "https://issuer.gateways.test"
ORDERS_SCOPE = "orders:read"  # what every example asks for under /orders
MISSING_CHALLENGE = "Bearer"  # RFC 6750 3.1: no error code without credentials
SCOPE_CHALLENGE = f'Bearer error="insufficient_scope", scope="{ORDERS_SCOPE}"'
# A client's own versions of revokd's headers, and an underscore spelling that CGI, WSGI and
# others read as X-Auth-Subject.
FORGED = {"X-Auth-Subject": "admin", "X-Auth-Token-Id": "forged", "X-Auth-Issuer": "https://evil.test",
          "X-Auth-Expires": "9999999999", "X-Auth-Scope": "orders:read orders:write admin",
          "X-Auth-Client-Id": "evil", "X_Auth_Subject": "admin"}
# Over revokd's body limit and under nginx's (client_max_body_size 1m): a gateway that sent the
# body on to revokd would get a 413 instead of a check.
MAX_BODY = int(harness.CONFIG.get("REVOKD_MAX_BODY_BYTES", {"default": 16384})["default"])
BODY = b"{" + b" " * (4 * MAX_BODY) + b"}"


def bearer(token):
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


class TokensMixin:
    """Tokens with the claims the identity headers come from, and what revokd must say of them."""

    def token(self, sub="alice", scope=f"{ORDERS_SCOPE} profile", client_id="web", **kw):
        claims = dict(kw.pop("claims", {}))
        if scope is not None:
            claims["scope"] = scope
        if client_id is not None:
            claims["client_id"] = client_id
        return self.mint(sub=sub, iss=ISS, claims=claims or None, **kw)

    def expired_token(self):
        exp = harness.now() - harness.DEFAULT_LEEWAY - 600
        return self.token(iat=exp - 300, exp=exp)

    def identity(self, token):
        """The X-Auth-* headers revokd derives from `token` (None: absent)."""
        _, c, _ = jwt_parts(token)
        return {"X-Auth-Subject": c.get("sub"), "X-Auth-Token-Id": harness.token_id(token),
                "X-Auth-Issuer": c.get("iss"), "X-Auth-Expires": str(c["exp"]),
                "X-Auth-Scope": c.get("scope"), "X-Auth-Client-Id": c.get("client_id", c.get("azp"))}

    def assertChallenge(self, resp, status, challenge=None):
        """`status` with one WWW-Authenticate: exactly `challenge`, or else revokd's
        invalid_token challenge with a description."""
        self.assertEqual(resp.status, status, resp)
        values = resp.headers.get_all("WWW-Authenticate") or []
        self.assertEqual(len(values), 1, f"WWW-Authenticate: {values}")
        if challenge is not None:
            self.assertEqual(values[0], challenge)
        else:
            self.assertTrue(values[0].startswith('Bearer error="invalid_token", error_description="'),
                            values[0])


# ---------------------------------------------------------------------------------------------
# nginx and Caddy, running

class GatewayTests(TokensMixin):
    """The same assertions through each gateway that runs here. Subclasses set gateway_class,
    check_ok (what its config checker prints) and the 5xx its config answers with."""

    gateway_class = None
    check_ok = None
    revokd_down_status = None
    store_down_status = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upstream = gateways.Upstream().start()
        cls.addClassCleanup(cls.upstream.stop)
        cls.gateway = cls.gateway_class(cls.tmp, cls.revokd.port, cls.upstream.port)
        cls.gateway.start()
        cls.addClassCleanup(cls.gateway.stop)

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before and getattr(self, "gateway", None):
            sys.stderr.write(f"\n----- log of {self.gateway.name} -----\n{self.gateway.log()}\n"
                             "----- end of log -----\n")
        return out

    def call(self, path, token=None, method="GET", headers=None, body=None):
        h = bearer(token)
        h.update(headers or {})
        return self.gateway.request(method, path, body, h)

    def assertReached(self, resp, before, path, method="GET"):
        """The gateway answered 200 with what the upstream answered to its one new request."""
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.upstream.count(), before + 1, "the upstream should get one request")
        seen = self.upstream.last()
        self.assertEqual((seen["method"], seen["path"]), (method, path))
        self.assertEqual(resp.json()["path"], path)
        return seen

    def assertNotReached(self, before):
        self.assertEqual(self.upstream.count(), before, "a refused request reached the upstream")

    def assertIdentity(self, seen, expected):
        """The upstream saw each identity header once with the expected value, or not at all
        (also not spelt with underscores) where `expected` has None."""
        for name in IDENTITY_HEADERS:
            want = expected.get(name)
            self.assertEqual(header_values(seen, name), [want] if want is not None else [],
                             f"{name} as the upstream saw it")

    # Tests -------------------------------------------------------------------------------------
    def test_config_check_passes(self):
        status, output = self.gateway.check()
        self.assertEqual(status, 0, output)
        self.assertIn(self.check_ok, output)
        self.assertNotIn("not formatted", output)  # caddy fmt's layout

    def test_valid_token_reaches_upstream_with_its_identity(self):
        token = self.token(jti="jti-gw-valid")
        for path in ("/orders/42?x=1", "/orders", "/profile"):
            with self.subTest(path=path):
                before = self.upstream.count()
                seen = self.assertReached(self.call(path, token), before, path)
                self.assertIdentity(seen, self.identity(token))
                self.assertEqual(header_values(seen, "X-Auth-Token-Id"), ["jti-gw-valid"])
                self.assertEqual(header_values(seen, "X-Auth-Subject"), ["alice"])
                self.assertEqual(header_values(seen, "X-Auth-Issuer"), [ISS])
                self.assertEqual(header_values(seen, "X-Auth-Scope"), [f"{ORDERS_SCOPE} profile"])
                self.assertEqual(header_values(seen, "X-Auth-Client-Id"), ["web"])
                # The API still gets the token itself.
                self.assertEqual(header_values(seen, "Authorization"), [f"Bearer {token}"])

    def test_client_id_falls_back_to_azp(self):
        token = self.token(client_id=None, claims={"azp": "mobile-app"})
        before = self.upstream.count()
        seen = self.assertReached(self.call("/profile", token), before, "/profile")
        self.assertEqual(header_values(seen, "X-Auth-Client-Id"), ["mobile-app"])

    def test_client_sent_identity_is_overwritten(self):
        # A valid token of alice's, and the client claims to be admin.
        token = self.token(scope=ORDERS_SCOPE, client_id="web")
        before = self.upstream.count()
        seen = self.assertReached(self.call("/orders/7", token, headers=FORGED), before, "/orders/7")
        self.assertIdentity(seen, self.identity(token))
        self.assertEqual(header_values(seen, "X-Auth-Subject"), ["alice"])

    def test_client_sent_identity_is_dropped_where_the_token_has_none(self):
        # No sub, iss, scope or client_id: revokd sends only X-Auth-Token-Id and X-Auth-Expires,
        # and nothing the client sent under the other four names may reach the API.
        token = self.craft(payload=std_claims(sub=None))
        before = self.upstream.count()
        seen = self.assertReached(self.call("/profile", token, headers=FORGED), before, "/profile")
        expected = self.identity(token)
        self.assertEqual([k for k, v in expected.items() if v is not None],
                         ["X-Auth-Token-Id", "X-Auth-Expires"])
        self.assertIdentity(seen, expected)

    def test_missing_token_is_refused_with_a_bare_challenge(self):
        before = self.upstream.count()
        for path in ("/profile", "/orders/1"):
            for headers in ({}, FORGED, {"Authorization": "Basic dXNlcjpwYXNz"}):
                with self.subTest(path=path, headers=sorted(headers)):
                    self.assertChallenge(self.call(path, headers=headers), 401, MISSING_CHALLENGE)
        self.assertNotReached(before)

    def test_invalid_token_is_refused(self):
        before = self.upstream.count()
        good = self.token()
        for token in ("not-a-jwt", good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")):
            resp = self.call("/profile", token, headers=FORGED)
            self.assertChallenge(resp, 401)
        self.assertNotReached(before)

    def test_expired_token_is_refused(self):
        before = self.upstream.count()
        self.assertChallenge(self.call("/profile", self.expired_token()), 401)
        self.assertNotReached(before)

    def test_revoked_token_is_refused_from_the_next_request_on(self):
        token = self.token()
        before = self.upstream.count()
        self.assertReached(self.call("/orders/1", token), before, "/orders/1")
        resp = self.revokd.revoke(token)
        self.assertEqual(resp.status, 200, resp)
        before = self.upstream.count()
        for path in ("/orders/1", "/profile"):
            resp = self.call(path, token)
            self.assertChallenge(resp, 401)
            self.assertIn("revoked", resp.header("WWW-Authenticate"))
        self.assertNotReached(before)

    def test_wrong_scope_is_refused_where_the_scope_is_needed(self):
        token = self.token(scope="profile")
        no_scope = self.token(scope=None)
        before = self.upstream.count()
        for t in (token, no_scope):
            # The client's own query asks revokd nothing: the gateway's URL is fixed.
            for path in ("/orders/42", "/orders", "/orders/42?scope=profile", "/orders/42?scope=&aud="):
                with self.subTest(path=path, scope=jwt_parts(t)[1].get("scope")):
                    self.assertChallenge(self.call(path, t), 403, SCOPE_CHALLENGE)
        self.assertNotReached(before)
        # Where no scope is needed, the same token passes.
        seen = self.assertReached(self.call("/profile", token), before, "/profile")
        self.assertEqual(header_values(seen, "X-Auth-Scope"), ["profile"])

    def test_request_body_goes_to_the_upstream_only(self):
        token = self.token()
        for method in ("POST", "PUT", "DELETE"):
            with self.subTest(method=method):
                before = self.upstream.count()
                resp = self.call("/orders/9", token, method=method, body=BODY,
                                 headers={"Content-Type": "application/json"})
                seen = self.assertReached(resp, before, "/orders/9", method)
                self.assertEqual(seen["body"], BODY)

    def test_revokd_down_nothing_reaches_the_upstream(self):
        token = self.token()
        port = self.revokd.port
        self.revokd.stop()
        try:
            before = self.upstream.count()
            for path in ("/profile", "/orders/1"):
                for t in (token, None):
                    resp = self.call(path, t)
                    self.assertEqual(resp.status, self.revokd_down_status, resp)
            self.assertNotReached(before)
        finally:
            d = harness.Revokd(self.base_env({"REVOKD_LISTEN": f"{LOOPBACK}:{port}"}),
                               name=f"{type(self).__name__} revokd (restarted)")
            type(self).revokd = d
            self.addClassCleanup(d.stop)
            d.start()
        before = self.upstream.count()
        self.assertReached(self.call("/profile", token), before, "/profile")

    def test_store_down_nothing_reaches_the_upstream(self):
        token = self.token()
        self.redis.kill()  # setUp restarts it for the next test
        before = self.upstream.count()
        for path in ("/profile", "/orders/1"):
            resp = self.call(path, token)
            self.assertEqual(resp.status, self.store_down_status, resp)
        self.assertNotReached(before)


class NginxGatewayTest(GatewayTests, harness.RevokdTestCase):
    gateway_class = gateways.Nginx
    check_ok = "test is successful"
    # nginx makes a 503 from revokd, or no answer at all, a 500; the example answers it as 503.
    revokd_down_status = 503
    store_down_status = 503

    def test_refusals_are_json_and_keep_the_challenge(self):
        # nginx drops revokd's body; the example's error_page answers in JSON, and the 401's
        # WWW-Authenticate (copied by nginx) and the 403's (added by the example) survive it.
        resp = self.call("/profile")
        self.assertChallenge(resp, 401, MISSING_CHALLENGE)
        self.assertEqual(resp.json(), {"error": "unauthorized"})
        resp = self.call("/orders/1", self.token(scope="profile"))
        self.assertChallenge(resp, 403, SCOPE_CHALLENGE)
        self.assertEqual(resp.json(), {"error": "forbidden"})

    def test_revokd_logs_the_request_id_the_upstream_gets(self):
        token = self.token()
        before = self.upstream.count()
        seen = self.assertReached(self.call("/orders/5", token), before, "/orders/5")
        (request_id,) = header_values(seen, "X-Request-Id")
        line = self.revokd.wait_for_request_log(request_id)
        self.assertEqual((line["method"], line["status"]), ("GET", 200), line)
        self.assertTrue(line["path"].startswith("/v1/authz"), line)


class CaddyGatewayTest(GatewayTests, harness.RevokdTestCase):
    gateway_class = gateways.Caddy
    check_ok = "Valid configuration"
    revokd_down_status = 502  # reverse_proxy's answer when revokd does not answer
    store_down_status = 503   # revokd's own answer, passed on

    def test_any_client_x_auth_header_is_deleted(self):
        # The example deletes every X-Auth-* and X_Auth_* a client sends, not only revokd's six.
        token = self.token()
        before = self.upstream.count()
        forged = dict(FORGED, **{"X-Auth-Roles": "admin", "x_auth_tenant": "other"})
        seen = self.assertReached(self.call("/profile", token, headers=forged), before, "/profile")
        names = sorted(k.lower().replace("_", "-") for k, _ in seen["headers"]
                       if k.lower().replace("_", "-").startswith("x-auth-"))
        self.assertEqual(names, sorted(h.lower() for h in IDENTITY_HEADERS))

    def test_refusals_are_revokds_own_answers(self):
        resp = self.call("/profile", "not-a-jwt")
        self.assertChallenge(resp, 401)
        self.assertEqual(resp.json().get("error"), "invalid_token")
        resp = self.call("/orders/1", self.token(scope="profile"))
        self.assertChallenge(resp, 403, SCOPE_CHALLENGE)
        self.assertEqual(resp.json().get("error"), "insufficient_scope")


# ---------------------------------------------------------------------------------------------
# Traefik and Envoy: their configs, and their calls replayed

def matches(pattern, name):
    """An Envoy StringMatcher (exact, prefix, suffix, contains; ignore_case) applied to `name`."""
    fold = (lambda s: s.lower()) if pattern.get("ignore_case") else (lambda s: s)
    kinds = {"exact": lambda p: fold(name) == fold(p), "prefix": lambda p: fold(name).startswith(fold(p)),
             "suffix": lambda p: fold(name).endswith(fold(p)), "contains": lambda p: fold(p) in fold(name)}
    return any(kinds[k](v) for k, v in pattern.items() if k in kinds)


def allowed(matcher, name):
    return any(matches(p, name) for p in matcher["patterns"])


class ForwardAuthCallsTest(TokensMixin, harness.RevokdTestCase):
    """traefik.yml, traefik-dynamic.yml and envoy.yaml rendered and parsed; revokd called as
    Traefik's ForwardAuth and Envoy's ext_authz call it."""

    @classmethod
    def setUpClass(cls):
        if yaml is None:
            raise unittest.SkipTest("python3-yaml is not installed (./dev test installs it)")
        super().setUpClass()
        cls.ports = {"LISTEN": harness.free_port(), "REVOKD": cls.revokd.port,
                     "UPSTREAM": harness.free_port()}
        docs = {}
        for name in ("traefik.yml", "traefik-dynamic.yml", "envoy.yaml"):
            with open(gateways.render(name, cls.tmp, **cls.ports), encoding="utf-8") as f:
                docs[name] = yaml.safe_load(f)
        cls.traefik, cls.traefik_dynamic, cls.envoy = (
            docs["traefik.yml"], docs["traefik-dynamic.yml"], docs["envoy.yaml"])

    # Traefik ---------------------------------------------------------------------------------
    def forward_auth(self, router):
        http = self.traefik_dynamic["http"]
        (middleware,) = http["routers"][router]["middlewares"]
        return http["middlewares"][middleware]["forwardAuth"]

    def traefik_call(self, router, token, method="GET", uri="/orders/42?x=1"):
        """What Traefik sends revokd (pkg/middlewares/auth/forward.go): GET to the address, no
        body, the request's headers named in authRequestHeaders, and X-Forwarded-* it sets
        itself from the request (trustForwardHeader false). Returns (revokd's answer, the
        headers Traefik would pass upstream on a 2xx)."""
        fa = self.forward_auth(router)
        url = urllib.parse.urlsplit(fa["address"])
        client = dict(bearer(token), **FORGED)
        headers = {k: v for k, v in client.items()
                   if k.lower() in {h.lower() for h in fa["authRequestHeaders"]}}
        headers.update({"X-Forwarded-Method": method, "X-Forwarded-Proto": "http",
                        "X-Forwarded-Host": f"{LOOPBACK}:{self.ports['LISTEN']}",
                        "X-Forwarded-Uri": uri, "X-Forwarded-For": LOOPBACK})
        resp = harness.http_request(url.port, "GET", url.path + ("?" + url.query if url.query else ""),
                                    headers=headers)
        upstream = None
        if 200 <= resp.status < 300:
            upstream = {h: resp.header(h) for h in fa["authResponseHeaders"]}
        return resp, upstream

    def test_traefik_config(self):
        self.assertEqual(self.traefik["entryPoints"]["web"]["address"], f"{LOOPBACK}:{self.ports['LISTEN']}")
        self.assertTrue(self.traefik["providers"]["file"]["filename"].endswith("/traefik-dynamic.yml"))
        http = self.traefik_dynamic["http"]
        self.assertEqual(http["services"]["api"]["loadBalancer"]["servers"],
                         [{"url": f"http://{LOOPBACK}:{self.ports['UPSTREAM']}"}])
        self.assertEqual(set(http["routers"]), {"orders", "api"})
        self.assertIn("PathPrefix(`/orders`)", http["routers"]["orders"]["rule"])
        for name, router in http["routers"].items():
            with self.subTest(router=name):
                self.assertEqual(router["entryPoints"], ["web"])
                self.assertEqual(router["service"], "api")
                fa = self.forward_auth(name)
                url = urllib.parse.urlsplit(fa["address"])
                self.assertEqual((url.scheme, url.hostname, url.port, url.path),
                                 ("http", LOOPBACK, self.revokd.port, "/v1/authz"))
                want = {"orders": {"scope": [ORDERS_SCOPE]}, "api": {}}[name]
                self.assertEqual(urllib.parse.parse_qs(url.query), want)
                self.assertIs(fa["trustForwardHeader"], False)
                self.assertEqual(fa["authRequestHeaders"], ["Authorization"])
                self.assertEqual(fa["authResponseHeaders"], list(IDENTITY_HEADERS))

    def test_traefik_valid_token(self):
        token = self.token()
        for router in ("orders", "api"):
            with self.subTest(router=router):
                resp, upstream = self.traefik_call(router, token)
                self.assertEqual(resp.status, 200, resp)
                self.assertIsNone(resp.header("Location"))
                self.assertEqual(upstream, self.identity(token))

    def test_traefik_refusals_go_back_as_they_are(self):
        revoked = self.token()
        self.assertEqual(self.revokd.revoke(revoked).status, 200)
        for router in ("orders", "api"):
            with self.subTest(router=router):
                resp, upstream = self.traefik_call(router, None)
                self.assertChallenge(resp, 401, MISSING_CHALLENGE)
                for token in (revoked, self.expired_token(), "not-a-jwt"):
                    resp, upstream = self.traefik_call(router, token)
                    self.assertChallenge(resp, 401)
                    self.assertIsNone(upstream)
                    self.assertIsNone(resp.header("Location"))
        resp, upstream = self.traefik_call("orders", self.token(scope="profile"))
        self.assertChallenge(resp, 403, SCOPE_CHALLENGE)
        resp, upstream = self.traefik_call("api", self.token(scope="profile"))
        self.assertEqual(resp.status, 200, resp)

    # Envoy -----------------------------------------------------------------------------------
    def hcm(self):
        (listener,) = self.envoy["static_resources"]["listeners"]
        (chain,) = listener["filter_chains"]
        (hcm,) = chain["filters"]
        self.assertEqual(hcm["name"], "envoy.filters.network.http_connection_manager")
        return listener, hcm["typed_config"]

    def ext_authz(self):
        _, hcm = self.hcm()
        return next(f["typed_config"] for f in hcm["http_filters"]
                    if f["name"] == "envoy.filters.http.ext_authz")

    def cluster_port(self, name):
        (cluster,) = [c for c in self.envoy["static_resources"]["clusters"] if c["name"] == name]
        (endpoints,) = cluster["load_assignment"]["endpoints"]
        (lb,) = endpoints["lb_endpoints"]
        address = lb["endpoint"]["address"]["socket_address"]
        self.assertEqual(address["address"], LOOPBACK)
        return address["port_value"]

    def envoy_call(self, method, path, token):
        """What Envoy's ext_authz (HTTP service) sends revokd: the request's method, path_prefix
        + its path and query, no body, and of its headers only Authorization (Host and
        Content-Length: 0 besides). Returns (revokd's answer, the headers Envoy would pass
        upstream on a 200 or to the client otherwise)."""
        service = self.ext_authz()["http_service"]
        headers = dict(bearer(token), **{"Content-Length": "0"})
        resp = harness.http_request(self.revokd.port, method, service["path_prefix"] + path, headers=headers)
        rules = service["authorization_response"]
        which = rules["allowed_upstream_headers"] if resp.status == 200 else rules["allowed_client_headers"]
        passed = {k: v for k, v in resp.headers.items() if allowed(which, k)}
        return resp, passed

    def test_envoy_config(self):
        listener, hcm = self.hcm()
        self.assertEqual(listener["address"]["socket_address"],
                         {"address": LOOPBACK, "port_value": self.ports["LISTEN"]})
        names = [f["name"] for f in hcm["http_filters"]]
        self.assertEqual(names, ["envoy.filters.http.header_mutation", "envoy.filters.http.ext_authz",
                                 "envoy.filters.http.router"])
        for f in hcm["http_filters"]:
            self.assertIn("@type", f["typed_config"])
        # Before ext_authz, every identity header a client sent is removed.
        mutations = hcm["http_filters"][0]["typed_config"]["mutations"]["request_mutations"]
        removed = [m["remove"] for m in mutations]
        self.assertEqual(removed, [h.lower() for h in IDENTITY_HEADERS])
        self.assertEqual(hcm["common_http_protocol_options"]["headers_with_underscores_action"],
                         "DROP_HEADER")
        self.assertIs(hcm["normalize_path"], True)
        (host,) = hcm["route_config"]["virtual_hosts"]
        self.assertEqual([r["route"]["cluster"] for r in host["routes"]], ["api"])
        authz = self.ext_authz()
        self.assertIs(authz["failure_mode_allow"], False)
        self.assertEqual(authz["status_on_error"], {"code": "ServiceUnavailable"})
        self.assertNotIn("with_request_body", authz)  # revokd refuses large bodies (413)
        service = authz["http_service"]
        self.assertEqual(service["path_prefix"], "/v1/authz")
        self.assertEqual(service["server_uri"]["cluster"], "revokd")
        self.assertEqual(service["server_uri"]["uri"], f"http://{LOOPBACK}:{self.revokd.port}")
        self.assertEqual(self.cluster_port("revokd"), self.revokd.port)
        self.assertEqual(self.cluster_port("api"), self.ports["UPSTREAM"])
        rules = service["authorization_response"]
        for name in IDENTITY_HEADERS:
            self.assertTrue(allowed(rules["allowed_upstream_headers"], name), name)
        self.assertTrue(allowed(rules["allowed_client_headers"], "WWW-Authenticate"))

    def test_envoy_valid_token_any_method_any_path(self):
        token = self.token()
        for method, path in (("GET", "/orders/42?x=1"), ("POST", "/orders"), ("DELETE", "/a/b/c/"),
                             ("PUT", "/a//b"), ("PATCH", "/profile?scope=profile"), ("OPTIONS", "/x")):
            with self.subTest(method=method, path=path):
                resp, upstream = self.envoy_call(method, path, token)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(upstream, {k: v for k, v in self.identity(token).items() if v is not None})

    def test_envoy_root_path_is_checked_too(self):
        # A request for the API's root, GET / or GET /?page=2, is checked as GET /v1/authz/...
        token = self.token()
        for path in ("/", "/?page=2"):
            with self.subTest(path=path):
                resp, upstream = self.envoy_call("GET", path, token)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(upstream.get("X-Auth-Token-Id"), harness.token_id(token))
                resp, _ = self.envoy_call("GET", path, None)
                self.assertChallenge(resp, 401, MISSING_CHALLENGE)

    def test_envoy_refusals(self):
        revoked = self.token()
        self.assertEqual(self.revokd.revoke(revoked).status, 200)
        resp, client = self.envoy_call("GET", "/orders/1", None)
        self.assertChallenge(resp, 401, MISSING_CHALLENGE)
        self.assertEqual(client, {"WWW-Authenticate": MISSING_CHALLENGE})
        for token in (revoked, self.expired_token(), "not-a-jwt"):
            resp, client = self.envoy_call("POST", "/orders/1?x=1", token)
            self.assertChallenge(resp, 401)
            self.assertEqual(list(client), ["WWW-Authenticate"])

    def test_envoy_client_query_can_only_add_requirements(self):
        # The client's query follows path_prefix to revokd: asking for a scope the token lacks
        # denies the client itself, and nothing it adds can lift a requirement.
        token = self.token(scope=ORDERS_SCOPE)
        resp, _ = self.envoy_call("GET", "/orders/1?scope=admin", token)
        self.assertChallenge(resp, 403, 'Bearer error="insufficient_scope", scope="admin"')
        resp, _ = self.envoy_call("GET", f"/orders/1?scope={ORDERS_SCOPE}", token)
        self.assertEqual(resp.status, 200, resp)
        resp, _ = self.envoy_call("GET", "/orders/1?scope=a&scope=b", token)
        self.assertEqual(resp.status, 403, resp)

    def test_envoy_dot_segments_stay_under_authz(self):
        # Envoy normalizes the path first (normalize_path), but should a /../ get through,
        # revokd must still answer as /v1/authz, and never act as another endpoint.
        token = self.token()
        for method, path in (("POST", "/../revoke-all"), ("GET", "/../check"), ("POST", "/%2e%2e/revoke")):
            with self.subTest(path=path):
                resp, upstream = self.envoy_call(method, path, token)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(upstream.get("X-Auth-Token-Id"), harness.token_id(token))
        resp, _ = self.envoy_call("GET", "/orders", token)
        self.assertEqual(resp.status, 200, "the token must not have been revoked")

    def test_envoy_store_down_is_503(self):
        token = self.token()
        self.redis.kill()  # setUp restarts it for the next test
        resp, _ = self.envoy_call("GET", "/orders/1", token)
        self.assertEqual(resp.status, 503, resp)


if __name__ == "__main__":
    harness.main()
