"""HTTPS on the listeners (REVOKD_TLS_*, REVOKD_ADMIN_TLS_*) and the admin listener
(REVOKD_ADMIN_LISTEN): which versions are served, start-up errors, certificates reread on SIGHUP,
and which routes each listener answers."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest
import warnings

import harness
from harness import LOOPBACK, HTTP_TIMEOUT, jwt_parts, now, token_id
from idp import TlsFiles

ADMIN_KEY = "tls-test-admin-key-0123456789abcdef"


def fingerprint_of_file(cert_file):
    """SHA-256 of the first certificate of a PEM file."""
    with open(cert_file, encoding="ascii") as f:
        pem = f.read()
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def client_context(*ca_files, minimum=None, maximum=None):
    """Trusts only ca_files, hostname checked. With version bounds, also the old ciphers at
    security level 0, so that this side would speak TLS 1.0 and 1.1: a refusal is the server's."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for ca in ca_files:
        ctx.load_verify_locations(ca)
    if minimum is not None or maximum is not None:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = minimum or ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = maximum or ssl.TLSVersion.MAXIMUM_SUPPORTED
    return ctx


def handshake(port, ctx):
    """(TLS version, peer certificate's SHA-256) of a new connection."""
    with socket.create_connection((LOOPBACK, port), timeout=HTTP_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=LOOPBACK) as s:
            return s.version(), hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


class Client:
    """One keep-alive connection, HTTPS when ctx is given."""

    def __init__(self, port, ctx=None):
        self.conn = (http.client.HTTPSConnection(LOOPBACK, port, context=ctx, timeout=HTTP_TIMEOUT)
                     if ctx is not None else http.client.HTTPConnection(LOOPBACK, port, timeout=HTTP_TIMEOUT))

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=h)
        resp = self.conn.getresponse()
        return harness.Response(resp.status, resp.headers, resp.read())

    def peer_fingerprint(self):
        return hashlib.sha256(self.conn.sock.getpeercert(binary_form=True)).hexdigest()

    def close(self):
        self.conn.close()


class TlsTestCase(harness.RevokdTestCase):
    class_daemon = False
    admin_keys = (ADMIN_KEY,)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tls = TlsFiles(cls.tmp)
        cls.tls2 = TlsFiles(cls.tmp)  # another CA and server certificate

    def tls_env(self, files=None, **extra):
        files = files or self.tls
        env = {"REVOKD_TLS_CERT_FILE": files.cert_file, "REVOKD_TLS_KEY_FILE": files.key_file}
        env.update(extra)
        return env

    def client(self, port, ctx=None):
        c = Client(port, ctx)
        self.addCleanup(c.close)
        return c


class MainListenerTls(TlsTestCase):
    def test_curl_and_python_verify_and_check(self):
        d = self.start_revokd(self.tls_env())
        self.assertIs(d.wait_for_event("listening", 1)["tls"], True)
        url = f"https://{LOOPBACK}:{d.port}"
        token = self.mint()
        out = subprocess.run(["curl", "-sS", "--cacert", self.tls.ca_file, "-o", "/dev/null", "-w", "%{http_code}",
                              f"{url}/healthz"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout, "200", out.stderr)
        out = subprocess.run(["curl", "-sS", "--cacert", self.tls.ca_file, "-H", f"Authorization: Bearer {token}",
                              f"{url}/v1/check"], capture_output=True, text=True, timeout=30)
        self.assertEqual(json.loads(out.stdout).get("active"), True, out.stderr)
        # A client trusting another CA refuses the server.
        out = subprocess.run(["curl", "-sS", "--cacert", self.tls2.ca_file, f"{url}/healthz"],
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)

        c = self.client(d.port, self.tls.client_context())
        self.assertEqual(c.request("GET", "/healthz").status, 200)
        self.assertActive(c.request("GET", "/v1/check", headers={"Authorization": f"Bearer {token}"}), token)
        self.assertEqual(c.peer_fingerprint(), fingerprint_of_file(self.tls.cert_file))

    def test_an_edge_follows_the_feed_over_tls(self):
        """The event stream over TLS: an edge following https://central/v1/events with
        REVOKD_CA_FILE replays, goes on hearing heartbeats, and enforces a revocation made at
        central within a second; an edge trusting another CA never becomes ready."""
        feed_keys, feed_key = os.path.join(self.tmp, "feed-keys"), os.path.join(self.tmp, "feed-key")
        with open(feed_keys, "w", encoding="utf-8") as f:
            f.write("edges:tls-feed-key-0123456789abcdef\n")
        with open(feed_key, "w", encoding="utf-8") as f:
            f.write("tls-feed-key-0123456789abcdef\n")
        central = self.start_revokd(self.tls_env(REVOKD_FEED_KEYS_FILE=feed_keys, REVOKD_FEED_HEARTBEAT_MS="250"))
        edge_env = {"REVOKD_MODE": "edge", "REVOKD_FEED_URL": f"https://{LOOPBACK}:{central.port}/v1/events",
                    "REVOKD_FEED_KEY_FILE": feed_key, "REVOKD_CA_FILE": self.tls.ca_file,
                    "REVOKD_EDGE_MAX_STALENESS_MS": "2000", "REVOKD_EDGE_POLL_WAIT": "1"}
        edge = self.start_revokd(edge_env, name="edge over TLS")
        harness.wait_until(lambda: edge.readyz().status == 200, 30, interval=0.05, what="the edge to be ready")
        token = self.mint()
        time.sleep(2.5)  # longer than the edge's bound: only heartbeats over TLS keep it current
        self.assertActive(edge.check(token), token)
        c = self.client(central.port, self.tls.client_context())
        self.assertEqual(c.request("POST", "/v1/revoke", {"token": token}).status, 200)
        harness.wait_until(lambda: edge.check(token).status == 401, 1, interval=0.01, what="the revocation at the edge")
        self.assertTokenFailure(edge.check(token), "revoked")
        wrong = self.start_revokd({**edge_env, "REVOKD_CA_FILE": self.tls2.ca_file}, name="edge, other CA")
        time.sleep(1)
        self.assertError(wrong.readyz(), 503, "feed_stale")

    def test_only_tls_1_2_and_1_3(self):
        d = self.start_revokd(self.tls_env())
        V = ssl.TLSVersion
        self.assertEqual(handshake(d.port, client_context(self.tls.ca_file))[0], "TLSv1.3")
        # The same lenient client is served with TLS 1.2, so the refusals below are the server's.
        self.assertEqual(handshake(d.port, client_context(self.tls.ca_file, minimum=V.TLSv1, maximum=V.TLSv1_2))[0], "TLSv1.2")
        for old in (V.TLSv1, V.TLSv1_1):
            with self.subTest(version=old.name):
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    handshake(d.port, client_context(self.tls.ca_file, minimum=V.TLSv1, maximum=old))
        out = subprocess.run(["openssl", "s_client", "-connect", f"{LOOPBACK}:{d.port}", "-tls1_1",
                              "-cipher", "DEFAULT:@SECLEVEL=0"], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertTrue(d.alive())

    def test_plain_http_to_the_tls_port_fails(self):
        d = self.start_revokd(self.tls_env())
        with socket.create_connection((LOOPBACK, d.port), timeout=HTTP_TIMEOUT) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionError:
                pass
        self.assertFalse(data.startswith(b"HTTP/"), data[:64])
        self.assertNotIn(b'"status"', data)
        with self.assertRaises((OSError, http.client.HTTPException)):
            harness.http_request(d.port, "GET", "/healthz")
        self.assertEqual(handshake(d.port, client_context(self.tls.ca_file))[0], "TLSv1.3")

    def start_error(self, env):
        out = harness.run_revokd([], self.base_env(env))
        self.assertEqual(out.returncode, 2, out.stderr)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        return lines[0]

    def test_start_up_errors_name_the_setting(self):
        garbage = os.path.join(self.tmp, "garbage.pem")
        with open(garbage, "w", encoding="ascii") as f:
            f.write("not a PEM file\n")
        cases = [
            ({"REVOKD_TLS_CERT_FILE": self.tls.cert_file}, "REVOKD_TLS_KEY_FILE", "both or neither"),
            ({"REVOKD_TLS_KEY_FILE": self.tls.key_file}, "REVOKD_TLS_CERT_FILE", "both or neither"),
            (self.tls_env(REVOKD_TLS_KEY_FILE=os.path.join(self.tmp, "missing.key")), "REVOKD_TLS_KEY_FILE",
             "cannot read"),
            (self.tls_env(REVOKD_TLS_KEY_FILE=self.tls2.key_file), "REVOKD_TLS_KEY_FILE", "does not fit"),
            (self.tls_env(REVOKD_TLS_KEY_FILE=garbage), "REVOKD_TLS_KEY_FILE", "private key"),
            (self.tls_env(REVOKD_TLS_CERT_FILE=garbage), "REVOKD_TLS_CERT_FILE", "certificate"),
            ({"REVOKD_ADMIN_TLS_CERT_FILE": self.tls.cert_file, "REVOKD_ADMIN_TLS_KEY_FILE": self.tls.key_file},
             "REVOKD_ADMIN_LISTEN", "need"),
            ({"REVOKD_ADMIN_LISTEN": f"{LOOPBACK}:0", "REVOKD_ADMIN_TLS_CERT_FILE": self.tls.cert_file,
              "REVOKD_ADMIN_TLS_KEY_FILE": self.tls2.key_file}, "REVOKD_ADMIN_TLS_KEY_FILE", "does not fit"),
        ]
        for env, setting, words in cases:
            with self.subTest(setting=setting, words=words):
                line = self.start_error(env)
                self.assertIn(setting, line)
                self.assertIn(words, line)
        port = harness.free_port()
        line = self.start_error({"REVOKD_LISTEN": f"{LOOPBACK}:{port}", "REVOKD_ADMIN_LISTEN": f"0.0.0.0:{port}"})
        self.assertIn("REVOKD_ADMIN_LISTEN", line)
        self.assertIn("shares its port", line)

    def test_sighup_rereads_the_certificate(self):
        live = os.path.join(self.tmp, "live")
        os.makedirs(live, exist_ok=True)
        cert, key = os.path.join(live, "cert.pem"), os.path.join(live, "key.pem")

        def install(files):
            for src, dst in ((files.cert_file, cert), (files.key_file, key)):
                shutil.copyfile(src, dst + ".new")
                os.replace(dst + ".new", dst)

        install(self.tls)
        d = self.start_revokd({"REVOKD_TLS_CERT_FILE": cert, "REVOKD_TLS_KEY_FILE": key})
        both = client_context(self.tls.ca_file, self.tls2.ca_file)
        old_fp, new_fp = fingerprint_of_file(self.tls.cert_file), fingerprint_of_file(self.tls2.cert_file)
        kept = self.client(d.port, both)
        self.assertEqual(kept.request("GET", "/healthz").status, 200)
        self.assertEqual(kept.peer_fingerprint(), old_fp)
        sock = kept.conn.sock

        install(self.tls2)
        mark = d.log_mark()
        d.proc.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: any(o and o.get("event") == "tls_reloaded" for o in d.json_logs(mark)), 10,
                           what="tls_reloaded")
        self.assertEqual(handshake(d.port, both)[1], new_fp)
        fresh = self.client(d.port, both)
        self.assertEqual(fresh.request("GET", "/readyz").status, 200)
        self.assertEqual(fresh.peer_fingerprint(), new_fp)
        # The connection opened before goes on, on its session with the old certificate.
        self.assertEqual(kept.request("GET", "/healthz").status, 200)
        self.assertIs(kept.conn.sock, sock)
        self.assertEqual(kept.peer_fingerprint(), old_fp)

        # A reload that fails changes nothing, and says why.
        with open(key + ".new", "w", encoding="ascii") as f:
            f.write("broken\n")
        os.replace(key + ".new", key)
        mark = d.log_mark()
        d.proc.send_signal(signal.SIGHUP)
        failed = harness.wait_until(
            lambda: next((o for o in d.json_logs(mark) if o and o.get("event") == "tls_reload_failed"), None), 10,
            what="tls_reload_failed")
        self.assertIn("REVOKD_TLS_KEY_FILE", failed["message"])
        self.assertEqual(handshake(d.port, both)[1], new_fp)
        self.assertEqual(kept.request("GET", "/healthz").status, 200)
        self.assertTrue(d.alive())


class AdminListener(TlsTestCase):
    """With REVOKD_ADMIN_LISTEN, each route answers on one listener (health on both); the other
    answers 404 not_found as for an unknown path, whatever the method."""

    ADMIN_ONLY = [("POST", "/v1/admin/revoke"), ("GET", "/v1/admin/revoke"), ("POST", "/v1/admin/reload"),
                  ("POST", "/v1/admin/subjects/bob/revoke-all"), ("GET", "/metrics")]
    MAIN_ONLY = [("GET", "/v1/check"), ("POST", "/v1/check"), ("POST", "/v1/revoke"), ("POST", "/v1/revoke-all"),
                 ("POST", "/oauth2/revoke"), ("POST", "/oauth2/introspect"), ("POST", "/global-token-revocation"),
                 ("GET", "/v1/authz"), ("GET", "/v1/authz/any/path")]

    def assertNotFound(self, resp, what):
        self.assertEqual(resp.status, 404, f"{what}: {resp}")
        self.assertEqual(resp.json().get("error"), "not_found", f"{what}: {resp}")
        self.assertIsNone(resp.header("Allow"), what)

    def run_split(self, main_tls, admin_tls):
        env = {"REVOKD_ADMIN_LISTEN": f"{LOOPBACK}:0"}
        if main_tls:
            env.update(self.tls_env())
        if admin_tls:
            env.update({"REVOKD_ADMIN_TLS_CERT_FILE": self.tls2.cert_file,
                        "REVOKD_ADMIN_TLS_KEY_FILE": self.tls2.key_file})
        d = self.start_revokd(env)
        listening = d.wait_for_event("listening", 1)
        self.assertEqual((listening["tls"], listening["admin_tls"]), (main_tls, admin_tls))
        admin_port = listening["admin_port"]
        self.assertNotIn(admin_port, (0, d.port))
        main = self.client(d.port, self.tls.client_context() if main_tls else None)
        admin = self.client(admin_port, self.tls2.client_context() if admin_tls else None)
        if admin_tls:
            self.assertEqual(handshake(admin_port, self.tls2.client_context())[1],
                             fingerprint_of_file(self.tls2.cert_file))
        key = {"Authorization": f"Bearer {ADMIN_KEY}"}

        for method, path in self.ADMIN_ONLY:
            self.assertNotFound(main.request(method, path, {} if method == "POST" else None, key),
                                f"main {method} {path}")
        for method, path in self.MAIN_ONLY:
            self.assertNotFound(admin.request(method, path, {} if method == "POST" else None),
                                f"admin {method} {path}")
        for path in ("/healthz", "/readyz"):
            self.assertEqual(main.request("GET", path).status, 200, path)
            self.assertEqual(admin.request("GET", path).status, 200, path)

        # The admin routes work on the admin listener, and what they do is seen on the main one.
        token = self.mint()
        self.assertActive(main.request("GET", "/v1/check", headers={"Authorization": f"Bearer {token}"}), token)
        _, claims, _ = jwt_parts(token)
        resp = admin.request("POST", "/v1/admin/revoke",
                             {"jti": token_id(token), "exp": now() + 600, "iss": claims.get("iss")}, key)
        self.assertJsonResponse(resp, 200)
        self.assertTokenFailure(main.request("GET", "/v1/check", headers={"Authorization": f"Bearer {token}"}),
                                "revoked")
        self.assertJsonResponse(admin.request("POST", "/v1/admin/reload", None, key), 200)
        self.assertEqual(admin.request("POST", "/v1/admin/revoke", {}, {}).status, 401)
        metrics = admin.request("GET", "/metrics")
        self.assertEqual(metrics.status, 200)
        text = metrics.body.decode()
        # The labels are the same as with one listener; refused routes count as unmatched.
        self.assertIn('revokd_http_requests_total{route="GET /v1/check",status="200"} 1', text)
        self.assertIn('revokd_http_requests_total{route="POST /v1/admin/revoke",status="200"} 1', text)
        self.assertIn(f'revokd_http_requests_total{{route="unmatched",status="404"}} '
                      f'{len(self.ADMIN_ONLY) + len(self.MAIN_ONLY)}', text)

    def test_plain_listeners(self):
        self.run_split(False, False)

    def test_tls_on_both(self):
        self.run_split(True, True)

    def test_tls_on_admin_only(self):
        self.run_split(False, True)

    def test_without_admin_listener_every_route_is_on_the_one(self):
        d = self.start_revokd(self.tls_env())
        self.assertNotIn("admin_port", d.wait_for_event("listening", 1))
        c = self.client(d.port, self.tls.client_context())
        self.assertEqual(c.request("GET", "/metrics").status, 200)
        self.assertEqual(c.request("POST", "/v1/admin/revoke", {}, {}).status, 401)
        self.assertEqual(c.request("GET", "/v1/admin/revoke").status, 405)


if __name__ == "__main__":
    sys.exit(unittest.main())
