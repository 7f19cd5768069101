"""Self-test of idp.py: the OpenID provider, the JWKS server with its faults, and TLS files.

Not a test of revokd (nothing here starts it); run by hand when idp.py or oidc/ changes:

    python3 tests/integration/test_idp_harness.py
"""

import email.utils
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error

import harness
import idp
from idp import (DEFAULT_CLIENT, DEFAULT_RESOURCE, JwksServer, OidcProvider, TlsFiles,
                 private_jwk_ec, private_jwk_ed25519, private_jwk_rsa, public_jwk, verify_jws)


def tamper(token):
    """The token with another sub in its payload and the original signature."""
    h, p, s = token.split(".")
    claims = harness.jwt_parts(token)[1]
    claims["sub"] = "mallory"
    return ".".join((h, harness.b64url(harness.compact_json(claims)), s))


class ProviderTest(unittest.TestCase):
    """One provider with one RSA key and two clients."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="idp-test-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.key = private_jwk_rsa("rsa-a")
        cls.second = {"client_id": "second", "client_secret": "second-secret",
                      "claims": {"sub": "alice", "tenant": "t1"}}
        cls.provider = OidcProvider(cls.tmp, [cls.key], clients=[DEFAULT_CLIENT, cls.second])
        cls.addClassCleanup(cls.provider.stop)

    def test_token_header_and_claims(self):
        before = int(time.time())
        token = self.provider.token(scope="read")
        header, claims, _ = harness.jwt_parts(token)
        self.assertEqual(header, {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-a"})
        self.assertEqual(claims["iss"], self.provider.issuer)
        self.assertEqual(self.provider.issuer, f"http://127.0.0.1:{self.provider.port}")
        self.assertEqual(claims["sub"], DEFAULT_CLIENT["client_id"])
        self.assertEqual(claims["client_id"], DEFAULT_CLIENT["client_id"])
        self.assertEqual(claims["aud"], DEFAULT_RESOURCE)
        self.assertEqual(claims["scope"], "read")
        self.assertIsInstance(claims["jti"], str)
        self.assertGreaterEqual(len(claims["jti"]), 20)
        self.assertTrue(before - 1 <= claims["iat"] <= time.time() + 1, claims)
        self.assertEqual(claims["exp"] - claims["iat"], 300)
        self.assertEqual(set(claims), {"iss", "sub", "client_id", "aud", "scope", "jti", "iat", "exp"})
        self.assertNotEqual(claims["jti"], harness.jwt_parts(self.provider.token())[1]["jti"])

    def test_signature_verifies_against_served_jwks(self):
        token = self.provider.token()
        jwks = self.provider.jwks()
        verify_jws(token, jwks)
        with self.assertRaises(AssertionError):
            verify_jws(tamper(token), jwks)
        with self.assertRaises(AssertionError):
            verify_jws(token, [public_jwk(private_jwk_rsa("rsa-a"))])  # same kid, other key

    def test_served_jwks_is_the_public_part_of_the_keys(self):
        self.assertEqual(self.provider.jwks(), {"keys": [public_jwk(self.key)]})
        _, headers, _ = idp._fetch(self.provider.jwks_url)
        self.assertIsNone(headers["Cache-Control"])

    def test_discovery(self):
        doc = self.provider.discovery()
        self.assertEqual(doc["issuer"], self.provider.issuer)
        self.assertEqual(doc["jwks_uri"], self.provider.jwks_url)
        self.assertEqual(doc["token_endpoint"], self.provider.token_url)
        self.assertIn("client_credentials", doc["grant_types_supported"])

    def test_resource_is_the_audience_and_scopes_are_filtered(self):
        token = self.provider.token(scope="read write unknown", resource="https://api.test/v1")
        claims = harness.jwt_parts(token)[1]
        self.assertEqual(claims["aud"], "https://api.test/v1")
        self.assertEqual(claims["scope"], "read write")

    def test_client_claims_and_client_secret_post(self):
        token = self.provider.token(client_id="second", auth="post")
        claims = verify_jws(token, self.provider.jwks())[1]
        self.assertEqual(claims["sub"], "alice")
        self.assertEqual(claims["tenant"], "t1")
        self.assertEqual(claims["client_id"], "second")

    def test_refusals(self):
        status, body = self.provider.token_response(client_secret="wrong")
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"], "invalid_client")
        status, body = self.provider.token_response(client_id="nobody")
        self.assertEqual(status, 401, body)
        status, body = self.provider.token_response(resource="not a uri")
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"], "invalid_target")


class ProviderLifecycleTest(unittest.TestCase):
    """Rotation by restart, other algorithms, an issuer with a path, a clean stop."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="idp-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_rotation_by_restart(self):
        old, new = private_jwk_rsa("old"), private_jwk_rsa("new")
        p = OidcProvider(self.tmp, [old])
        self.addCleanup(p.stop)
        port, issuer = p.port, p.issuer
        old_token = p.token()
        self.assertEqual(harness.jwt_parts(old_token)[0]["kid"], "old")

        p.restart(keys=[new, old])
        self.assertEqual((p.port, p.issuer), (port, issuer))
        jwks = p.jwks()
        self.assertEqual(jwks, {"keys": [public_jwk(new), public_jwk(old)]})
        new_token = p.token()
        self.assertEqual(harness.jwt_parts(new_token)[0]["kid"], "new")
        verify_jws(new_token, jwks)
        verify_jws(old_token, jwks)

        p.restart(keys=[new])
        jwks = p.jwks()
        self.assertEqual([k["kid"] for k in jwks["keys"]], ["new"])
        verify_jws(new_token, jwks)
        with self.assertRaises(AssertionError):
            verify_jws(old_token, jwks)

    def test_algorithms(self):
        keys = {"PS256": private_jwk_rsa("ps", alg="PS256"), "ES256": private_jwk_ec("es"),
                "EdDSA": private_jwk_ed25519("ed"), "RS384": private_jwk_rsa("rs384", alg="RS384"),
                "ES384": private_jwk_ec("es384", curve="P-384")}
        p = None
        for alg, key in keys.items():
            with self.subTest(alg=alg):
                if p is None:
                    p = OidcProvider(self.tmp, [key])
                    self.addCleanup(p.stop)
                else:
                    p.restart(keys=[key])
                token = p.token()
                header, _ = verify_jws(token, p.jwks())
                self.assertEqual((header["alg"], header["kid"]), (alg, key["kid"]))

    def test_issuer_with_a_path(self):
        p = OidcProvider(self.tmp, [private_jwk_ec("es")], path="/tenant-a/", jwks_max_age=90)
        self.addCleanup(p.stop)
        self.assertEqual(p.issuer, f"http://127.0.0.1:{p.port}/tenant-a")
        doc = p.discovery()
        self.assertEqual((doc["issuer"], doc["jwks_uri"]), (p.issuer, p.issuer + "/jwks"))
        claims = verify_jws(p.token(), p.jwks())[1]
        self.assertEqual(claims["iss"], p.issuer)
        status, _, _ = idp._fetch(f"http://127.0.0.1:{p.port}/.well-known/openid-configuration")
        self.assertEqual(status, 404)
        status, headers, _ = idp._fetch(p.jwks_url)
        self.assertEqual((status, headers["Cache-Control"]), (200, "max-age=90"))
        self.assertTrue(headers["Content-Type"].startswith("application/jwk-set+json"))
        status, headers, _ = idp._fetch(p.discovery_url)
        self.assertEqual((status, headers["Cache-Control"]), (200, None))

    def test_stop(self):
        p = OidcProvider(self.tmp, [private_jwk_rsa("a")])
        proc = p.proc
        self.assertLess(p.start_seconds, 10)
        self.assertEqual(p.stop(), 0)
        self.assertIsNotNone(proc.poll())
        self.assertNotIn(proc.pid, harness._live)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", p.port), timeout=1).close()

    def test_bad_key_file_is_reported(self):
        with self.assertRaises(RuntimeError) as cm:
            OidcProvider(self.tmp, [{"kty": "RSA", "kid": "broken", "n": "AQAB", "e": "AQAB"}])
        self.assertIn("exited", str(cm.exception))


class JwksServerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.keys = [private_jwk_ec("e1"), private_jwk_ec("e2")]

    def setUp(self):
        self.threads_before = threading.active_count()
        self.server = JwksServer(keys=self.keys)
        self.addCleanup(self.check_stopped)

    def check_stopped(self):
        self.server.stop()
        self.assertEqual(threading.active_count(), self.threads_before, threading.enumerate())

    def get(self, path=None, timeout=10):
        return idp._fetch(self.server.base_url + (path or self.server.jwks_path), timeout=timeout)

    def test_ok_and_counts(self):
        status, headers, body = self.get()
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"keys": [public_jwk(k) for k in self.keys]})
        self.assertNotIn('"d"', body.decode())
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertIsNone(headers["Cache-Control"])
        self.assertIsNone(headers["Expires"])
        self.get()
        self.get("/other")
        self.assertEqual(self.server.requests(), 3)
        self.assertEqual(self.server.requests("/jwks"), 2)
        self.assertEqual(self.server.requests("/other"), 1)
        self.assertEqual(self.server.request_log()[0][:2], ("GET", "/jwks"))
        self.server.reset_counts()
        self.assertEqual(self.server.requests(), 0)
        self.server.set_keys(self.keys[:1])
        self.assertEqual([k["kid"] for k in json.loads(self.get()[2])["keys"]], ["e1"])
        self.assertEqual(self.server.wait_for_requests(1, "/jwks"), 1)

    def test_cache_headers(self):
        self.server.set_cache(max_age=120, expires=60)
        _, headers, _ = self.get()
        self.assertEqual(headers["Cache-Control"], "max-age=120")
        expires = email.utils.parsedate_to_datetime(headers["Expires"]).timestamp()
        self.assertAlmostEqual(expires, time.time() + 60, delta=3)
        self.server.set_cache(cache_control="no-store", expires="0", headers={"ETag": '"v1"'})
        _, headers, _ = self.get()
        self.assertEqual((headers["Cache-Control"], headers["Expires"], headers["ETag"]),
                         ("no-store", "0", '"v1"'))

    def test_discovery_documents(self):
        status, _, body = self.get("/.well-known/openid-configuration")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"issuer": self.server.issuer_url, "jwks_uri": self.server.url})
        self.assertEqual(self.get("/.well-known/oauth-authorization-server")[0], 404)

        self.server.set_discovery(kinds={"oauth"}, issuer=self.server.base_url + "/t1",
                                  extra={"token_endpoint": "x"})
        self.assertEqual(self.server.issuer_url, self.server.base_url + "/t1")
        self.assertEqual(self.get("/t1/.well-known/openid-configuration")[0], 404)
        status, _, body = self.get("/.well-known/oauth-authorization-server/t1")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["issuer"], self.server.base_url + "/t1")
        self.assertEqual(json.loads(body)["token_endpoint"], "x")

        self.server.set_discovery(kinds={"openid", "oauth"}, jwks_uri="http://127.0.0.1:1/k")
        for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
            status, _, body = self.get(path)
            self.assertEqual((status, json.loads(body)["jwks_uri"]), (200, "http://127.0.0.1:1/k"))

    def test_slow(self):
        self.server.set_fault("slow", delay=0.5)
        t0 = time.monotonic()
        self.assertEqual(self.get()[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        with self.assertRaises((TimeoutError, socket.timeout, urllib.error.URLError)):
            self.get(timeout=0.2)
        self.server.set_fault("slow", delay=0, trickle_interval=0.05, trickle_chunk=100)
        t0 = time.monotonic()
        status, _, body = self.get()
        size = len(body)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.05 * (size // 100 - 1))
        self.assertEqual(json.loads(body)["keys"][0]["kid"], "e1")

    def test_stop_during_a_slow_answer_and_with_an_idle_connection(self):
        self.server.set_fault("slow", delay=60)
        waiting = socket.create_connection(("127.0.0.1", self.server.port))
        waiting.sendall(b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n")
        idle = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        idle.request("GET", "/.well-known/openid-configuration")
        idle.getresponse().read()                       # kept alive, idle
        self.server.wait_for_requests(1, "/jwks")
        t0 = time.monotonic()
        self.server.stop()
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(waiting.recv(100), b"")
        waiting.close()
        idle.close()

    def test_status(self):
        self.server.set_fault("status", status=503, headers={"Retry-After": "1"})
        status, headers, _ = self.get()
        self.assertEqual((status, headers["Retry-After"]), (503, "1"))
        self.server.set_fault("status")
        self.assertEqual(self.get()[0], 500)
        self.assertEqual(self.get("/.well-known/openid-configuration")[0], 200)
        self.server.set_fault("ok")
        self.assertEqual(self.get()[0], 200)

    def test_invalid_json(self):
        self.server.set_fault("invalid_json")
        status, _, body = self.get()
        self.assertEqual(status, 200)
        with self.assertRaises(ValueError):
            json.loads(body)

    def test_huge(self):
        self.server.set_fault("huge")
        status, headers, body = self.get()
        self.assertEqual((status, len(body), int(headers["Content-Length"])), (200, 10 << 20, 10 << 20))
        self.assertEqual(len(json.loads(body)["keys"]), 2)
        self.server.set_fault("huge", size=3 << 20, valid=False, chunked=True)
        status, headers, body = self.get()
        self.assertEqual((status, len(body), headers["Transfer-Encoding"]), (200, 3 << 20, "chunked"))
        self.assertIsNone(headers["Content-Length"])
        with self.assertRaises(ValueError):
            json.loads(body)

    def test_many_keys(self):
        self.server.set_fault("many_keys")
        keys = json.loads(self.get()[2])["keys"]
        self.assertEqual(len(keys), 10002)
        self.assertEqual(len({k["kid"] for k in keys}), 10002)
        self.assertEqual(keys[-2:], [public_jwk(k) for k in self.keys])

    def test_raw_and_document(self):
        self.server.set_fault("raw", body=b"\x00\xffnot json", content_type="text/html")
        status, headers, body = self.get()
        self.assertEqual((status, headers["Content-Type"], body), (200, "text/html", b"\x00\xffnot json"))
        self.server.set_fault("ok")
        self.server.set_document({"keys": "not a list"})
        self.assertEqual(json.loads(self.get()[2]), {"keys": "not a list"})

    def test_close(self):
        self.server.set_fault("close")
        with self.assertRaises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
            self.get()
        self.assertEqual(self.server.requests("/jwks"), 1)

    def test_fault_on_discovery_path(self):
        self.server.set_fault("status", path="/.well-known/openid-configuration", status=404)
        self.assertEqual(self.get("/.well-known/openid-configuration")[0], 404)
        self.assertEqual(self.get()[0], 200)


class TlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="idp-test-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.tls = TlsFiles(cls.tmp)
        cls.other = TlsFiles(cls.tmp)

    def test_https_verifies_with_the_ca(self):
        key = private_jwk_rsa("r1")
        threads = threading.active_count()
        with JwksServer(tls=self.tls, keys=[key]) as server:
            self.assertTrue(server.url.startswith(f"https://127.0.0.1:{server.port}/"))
            self.assertEqual(idp.fetch_json(server.url, context=self.tls.client_context()),
                             {"keys": [public_jwk(key)]})
            doc = idp.fetch_json(f"https://localhost:{server.port}/.well-known/openid-configuration",
                                 context=self.tls.client_context())
            self.assertEqual(doc["jwks_uri"], server.url)
            for context in (ssl.create_default_context(), self.other.client_context()):
                with self.assertRaises(urllib.error.URLError) as cm:
                    idp.fetch_json(server.url, context=context)
                self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
            harness.wait_until(lambda: server.handshake_failures == 2, 5, what="2 failed handshakes")
            self.assertEqual(server.requests(), 2)
        self.assertEqual(threading.active_count(), threads)

    def test_certificate(self):
        out = subprocess.run(["openssl", "verify", "-CAfile", self.tls.ca_file, self.tls.cert_file],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        text = subprocess.run(["openssl", "x509", "-in", self.tls.cert_file, "-noout", "-text"],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn("IP Address:127.0.0.1", text)
        self.assertIn("DNS:localhost", text)


if __name__ == "__main__":
    harness.main()
