"""Generic HTTP behaviour: 404, 405 with Allow, 413, 415, 400 on malformed JSON, JSON content
type and X-Request-Id on every response."""

import http.client
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ADMIN_KEY = "admin-key-http-errors-0123456789"
MAX_BODY = 16384
JSON = {"Content-Type": "application/json"}


class HttpErrorsTest(harness.RevokdTestCase):
    admin_keys = (ADMIN_KEY,)

    def test_unknown_paths(self):
        for method, path in (("GET", "/"), ("GET", "/nope"), ("GET", "/v1/checks"), ("GET", "/v1"),
                             ("POST", "/v1/revoke/extra"), ("GET", "/v2/check"),
                             ("POST", "/v1/admin/subjects/alice/revoke"), ("GET", "/healthz/x")):
            with self.subTest(method=method, path=path):
                resp = self.revokd.request(method, path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
                self.assertError(resp, 404, "not_found")

    def test_wrong_methods(self):
        cases = [
            ("DELETE", "/v1/check", {"GET", "POST"}),
            ("PUT", "/v1/check", {"GET", "POST"}),
            ("GET", "/v1/revoke", {"POST"}),
            ("DELETE", "/v1/revoke", {"POST"}),
            ("GET", "/v1/revoke-all", {"POST"}),
            ("GET", "/v1/admin/revoke", {"POST"}),
            ("GET", "/v1/admin/subjects/alice/revoke-all", {"POST"}),
            ("POST", "/healthz", {"GET"}),
            ("DELETE", "/readyz", {"GET"}),
        ]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                resp = self.revokd.request(method, path)
                self.assertError(resp, 405, "method_not_allowed")
                allow = {m.strip().upper() for m in (resp.header("Allow") or "").split(",") if m.strip()}
                self.assertTrue(allowed <= allow, f"Allow: {resp.header('Allow')!r}, want {allowed}")
                self.assertNotIn(method, allow)

    def test_body_too_large(self):
        padding = "x" * (MAX_BODY + 1 - len('{"token":""}'))
        body = ('{"token":"' + padding + '"}').encode()
        self.assertEqual(len(body), MAX_BODY + 1)
        for path, headers in (("/v1/check", JSON), ("/v1/revoke", JSON),
                              ("/v1/admin/revoke", dict(JSON, Authorization=f"Bearer {ADMIN_KEY}"))):
            with self.subTest(path=path):
                resp = self.revokd.request("POST", path, body, headers)
                self.assertError(resp, 413, "payload_too_large")

    def test_body_at_limit_is_read(self):
        padding = "x" * (MAX_BODY - len('{"token":""}'))
        body = ('{"token":"' + padding + '"}').encode()
        self.assertEqual(len(body), MAX_BODY)
        # Read and parsed: the token inside is simply too long.
        self.assertTokenFailure(self.revokd.request("POST", "/v1/check", body, JSON), "malformed")

    def test_body_too_large_with_expect_continue(self):
        length = 300 * 1024
        head = (f"POST /v1/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").encode()
        resp, err = harness.raw_exchange(self.revokd.port, head)
        self.assertIsNotNone(resp, f"no response ({err!r})")
        if resp.status == 100:  # told to continue: send the body, then expect the 413
            resp, err = harness.raw_exchange(self.revokd.port, head.replace(b"Expect: 100-continue\r\n", b"")
                                             + b"{" + b" " * (length - 2) + b"}")
            self.assertIsNotNone(resp, f"no response ({err!r})")
        self.assertError(resp, 413, "payload_too_large")
        self.assertTrue(self.revokd.alive())

    def test_chunked_body_too_large(self):
        """A chunked body announces no length, so it is found too large while it arrives; the
        rest is read and dropped and the 413 goes out at its end, however long it is (the
        request timeout bounds the time). Far over the limit, it was once closed unanswered."""
        for size, count in ((4096, 8), (65536, 64)):
            with self.subTest(bytes=size * count):
                chunk = b"x" * size
                body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(count)) + b"0\r\n\r\n"
                req = (b"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + body)
                resp, err = harness.raw_exchange(self.revokd.port, req)
                self.assertIsNotNone(resp, f"no response ({err!r})")
                self.assertIsNone(err)
                self.assertError(resp, 413, "payload_too_large")

    def test_oversized_body_without_expect_gets_its_413(self):
        """Most clients send the whole body without waiting for 100 Continue. revokd answers 413
        from the head and closes, but lingers: it reads and drops the rest, so the client reads
        the answer instead of a connection reset."""
        for size in (MAX_BODY + 1, 300 * 1024, 10 * 1024 * 1024):
            with self.subTest(size=size):
                body = b'{"token":"' + b"x" * (size - 12) + b'"}'
                conn = http.client.HTTPConnection(harness.LOOPBACK, self.revokd.port, timeout=30)
                try:
                    conn.request("POST", "/v1/revoke", body=body, headers=JSON)
                    resp = conn.getresponse()
                    out = harness.Response(resp.status, resp.headers, resp.read())
                finally:
                    conn.close()
                self.assertError(out, 413, "payload_too_large")
                self.assertEqual(out.header("Connection"), "close")
                self.assertEqual(out.header("Cache-Control"), "no-store")
        self.assertEqual(self.redis.keys(), [])

    def assertRefusedAndClosed(self, data, why):
        """The request is answered 400 with Connection: close, and nothing after it is taken for a
        request: the connection closes without a second answer."""
        sock = socket.create_connection((harness.LOOPBACK, self.revokd.port), timeout=5)
        try:
            sock.sendall(data)
            received = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
        finally:
            sock.close()
        self.assertEqual(received.count(b"HTTP/1.1 "), 1, received)
        resp = harness._parse_response(received, final=True)
        body = self.assertError(resp, 400, "invalid_request")
        self.assertIn(why, body["error_description"])
        self.assertEqual(resp.header("Connection"), "close")

    def test_ambiguous_framing_is_refused_and_closed(self):
        """RFC 9112 6.3: a body two parsers could frame differently must not leave bytes behind
        that pass for a request of their own (request smuggling)."""
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        body = b'{"token":"a.b.c"}'
        head = b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        cases = {
            "two Content-Length": (head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
                                   % (len(body), len(body) + len(smuggled)) + body + smuggled,
                                   "Content-Length"),
            "two equal Content-Length": (head + b"Content-Length: %d\r\ncontent-length: %d\r\n\r\n"
                                         % (len(body), len(body)) + body + smuggled, "Content-Length"),
            "Content-Length and Transfer-Encoding": (
                head + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % (len(body) + 5)
                + b"0\r\n\r\n" + smuggled, "Transfer-Encoding"),
            "Transfer-Encoding not chunked": (head + b"Transfer-Encoding: gzip\r\n\r\n" + body,
                                              "Transfer-Encoding"),
            "two Transfer-Encoding": (head + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      + b"0\r\n\r\n" + smuggled, "Transfer-Encoding"),
            "two Authorization": (b"GET /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\n"
                                  b"Authorization: Bearer d.e.f\r\n\r\n" + smuggled, "Authorization"),
        }
        for name, (data, why) in cases.items():
            with self.subTest(case=name):
                self.assertRefusedAndClosed(data, why)
        self.assertEqual(self.redis.keys(), [])

    def test_answers_of_the_http_library_are_as_documented(self):
        """What libmicrohttpd answers on its own, before revokd sees the request (openapi.yaml,
        Answers from the HTTP library): the status, none of revokd's headers, a closed
        connection, and nothing in Redis."""
        head = b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
        cases = [
            ("no version", b"GET /healthz\r\n\r\n", 400),
            ("header line without colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\r\n\r\n", 400),
            ("malformed chunk", head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("Content-Length not a number", head + b"Content-Length: abc\r\n\r\n", 400),
            ("Content-Length beyond 2^64", head + b"Content-Length: 99999999999999999999999\r\n\r\n", 413),
            ("chunk size beyond 2^64", head + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n", 413),
            ("request line too long", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            ("HTTP/2.0", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("HTTP/0.9", b"GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n", 505),
        ]
        for name, data, status in cases:
            with self.subTest(case=name):
                sock = socket.create_connection((harness.LOOPBACK, self.revokd.port), timeout=5)
                received = b""
                try:
                    sock.sendall(data)
                    while True:
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                except ConnectionResetError:
                    pass
                finally:
                    sock.close()
                resp = harness._parse_response(received, final=True)
                self.assertIsNotNone(resp, received)
                self.assertEqual(resp.status, status, received[:300])
                for name in ("Content-Type", "X-Request-Id", "Cache-Control"):
                    self.assertIsNone(resp.header(name), received[:300])
                self.assertEqual(resp.header("Connection"), "close")
        # Exactly these statuses are the ones openapi.yaml lists as the library's own.
        with open(os.path.join(harness.REPO, "openapi.yaml"), encoding="utf-8") as f:
            text = f.read()
        section = text.split("## Answers from the HTTP library", 1)[1].split("\n    ## ", 1)[0]
        documented = {int(m) for m in re.findall(r"^\s*\| (\d{3}) \|", section, re.M)}
        self.assertEqual(documented - {431}, {status for _, _, status in cases})
        # Not HTTP at all: closed without an answer.
        resp, _ = harness.raw_exchange(self.revokd.port, b"GARBAGE\r\n\r\n", timeout=2)
        self.assertIsNone(resp)
        self.assertTrue(self.revokd.alive())
        self.assertJsonResponse(self.revokd.healthz(), 200)
        self.assertEqual(self.redis.keys(), [])

    def test_unsupported_media_type(self):
        token = self.craft()
        body = ('{"token":"' + token + '"}').encode()
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "application/jsonp", "application/xml"):
            for path, extra in (("/v1/check", {}), ("/v1/revoke", {}),
                                ("/v1/admin/revoke", {"Authorization": f"Bearer {ADMIN_KEY}"})):
                with self.subTest(ctype=ctype, path=path):
                    resp = self.revokd.request("POST", path, body, dict(extra, **{"Content-Type": ctype}))
                    self.assertError(resp, 415, "unsupported_media_type")
        self.assertEqual(self.redis.keys(), [])

    def test_json_content_type_with_parameters(self):
        token = self.craft()
        body = ('{"token":"' + token + '"}').encode()
        for ctype in ("application/json; charset=utf-8", "application/json;charset=UTF-8"):
            with self.subTest(ctype=ctype):
                resp = self.revokd.request("POST", "/v1/check", body, {"Content-Type": ctype})
                self.assertActive(resp, token)

    def test_malformed_json(self):
        bodies = [b'{"token":', b"{token: 1}", b"{'token': 'a.b.c'}", b'{"token":"a.b.c"} x',
                  b'{"token":"a.b.c",}', b"\xff\xfe{}", b"nul\x00l"]
        for path, extra in (("/v1/check", {}), ("/v1/revoke", {}),
                            ("/v1/admin/revoke", {"Authorization": f"Bearer {ADMIN_KEY}"})):
            for body in bodies:
                with self.subTest(path=path, body=body):
                    resp = self.revokd.request("POST", path, body, dict(JSON, **extra))
                    self.assertError(resp, 400, "invalid_request")

    def test_every_response_is_json_with_request_id(self):
        token = self.craft()
        calls = [
            lambda: self.revokd.healthz(),
            lambda: self.revokd.readyz(),
            lambda: self.revokd.check(token),
            lambda: self.revokd.check("x"),
            lambda: self.revokd.request("GET", "/nope"),
            lambda: self.revokd.request("PATCH", "/v1/check"),
            lambda: self.revokd.request("POST", "/v1/check", b"{", JSON),
            lambda: self.revokd.admin_revoke(None, {"jti": "a", "exp": 1}),
        ]
        seen = set()
        for call in calls:
            resp = call()
            self.assertJsonResponse(resp, resp.status)
            rid = resp.header("X-Request-Id")
            self.assertRegex(rid, r"^[A-Za-z0-9._-]{1,64}$")
            seen.add(rid)
        self.assertEqual(len(seen), len(calls), "generated request ids repeat")

    def test_request_id_echo(self):
        for rid in ("abc-123", "A.b_c-9", "x" * 64):
            with self.subTest(rid=rid):
                resp = self.revokd.request("GET", "/healthz", headers={"X-Request-Id": rid})
                self.assertEqual(resp.header("X-Request-Id"), rid)
        for rid in ("x" * 65, "bad id", "bad/id", "a;b", "\u00e9t\u00e9".encode().decode("latin-1"), "a\"b"):
            with self.subTest(rid=rid):
                resp = self.revokd.request("GET", "/v1/check", headers={"X-Request-Id": rid})
                got = resp.header("X-Request-Id")
                self.assertNotEqual(got, rid)
                self.assertRegex(got, r"^[A-Za-z0-9._-]{1,64}$")

    def test_server_survives_junk(self):
        for data in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                     b"GET /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \r\n\r\n"):
            harness.raw_exchange(self.revokd.port, data, timeout=1)
        self.assertTrue(self.revokd.alive())
        self.assertJsonResponse(self.revokd.healthz(), 200)


if __name__ == "__main__":
    harness.main()
