"""Integration-test helpers for remote key sets: a real OpenID provider and a JWKS server.

- OidcProvider: oidc-provider (tests/integration/oidc/provider.mjs, run by node) on a loopback
  port, issuing JWT access tokens with the client_credentials grant, serving its discovery
  document and JWKS. A key rotation is a restart with another key list.
- JwksServer: a threaded http.server on loopback serving a JWKS and discovery documents, with
  the faults a JWKS client must survive (slow, error statuses, bad JSON, huge bodies, ten
  thousand keys, dropped connections, any bytes) and a count of the requests it received.
- TlsFiles: a local CA and a server certificate for 127.0.0.1, made with the openssl CLI, for
  JwksServer(tls=...).
- private_jwk_rsa / private_jwk_ec / private_jwk_ed25519: private JWKs made with the openssl
  CLI; public_jwk, public_pem and verify_jws to check a token against a served key set.

Standard library and harness.py only; processes are tracked and stopped by pid as harness does.
"""

import atexit
import base64
import email.utils
import json
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from http.server import BaseHTTPRequestHandler, HTTPServer

import harness
from harness import (HTTP_TIMEOUT, LOOPBACK, START_TIMEOUT, _openssl, _track, b64url,
                     b64url_decode, stop_process)

OIDC_DIR = os.path.join(harness.HERE, "oidc")
PROVIDER_SCRIPT = os.path.join(OIDC_DIR, "provider.mjs")
DEFAULT_CLIENT = {"client_id": "revokd-test", "client_secret": "revokd-test-secret"}
DEFAULT_RESOURCE = "urn:revokd:test-api"
DEFAULT_SCOPES = "read write"

# urllib without any proxy from the environment: every server here is on loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _fetch(url, data=None, headers=None, timeout=HTTP_TIMEOUT, context=None):
    """(status, headers, body bytes) of one request; an HTTP error status is an answer too."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    opener = _opener
    if context is not None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        try:
            return e.code, e.headers, e.read()
        finally:
            e.close()


def fetch_json(url, timeout=HTTP_TIMEOUT, context=None):
    """GET url and parse its JSON body; an error status raises AssertionError."""
    status, _, body = _fetch(url, timeout=timeout, context=context)
    if status != 200:
        raise AssertionError(f"GET {url}: HTTP {status}: {body[:300]!r}")
    return json.loads(body)


# ---------------------------------------------------------------------------------------------
# Keys as JWKs (openssl CLI)

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")
_CURVES = {"P-256": ("prime256v1", 32, "ES256"), "P-384": ("secp384r1", 48, "ES384")}


def _pkey_text(pem):
    """The named hex fields of `openssl pkey -text` (modulus, priv, pub, ...) as bytes, and the
    one-line fields (publicExponent) as text."""
    text = _openssl("pkey", "-noout", "-text", input=pem).decode()
    fields, name = {}, None
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and name is not None:
            fields[name] += line.strip()
            continue
        name = None
        head, sep, rest = line.partition(":")
        if sep and not rest.strip():
            name = head.strip()
            fields[name] = ""
        elif sep:
            fields[head.strip()] = rest.strip()
    return {k: (bytes.fromhex(v.replace(":", "")) if all(c in "0123456789abcdef:" for c in v) and v
                else v) for k, v in fields.items()}


def _genpkey(*args, pem_path=None):
    pem = _openssl("genpkey", *args)
    if pem_path is not None:
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    return pem


def _unsigned(value):
    """A big-endian unsigned integer as JWK wants it: no leading zero bytes."""
    return b64url(value.lstrip(b"\0") or b"\0")


def private_jwk_rsa(kid, alg="RS256", bits=2048, pem_path=None):
    """A new RSA private JWK (kty, kid, alg, use "sig", n, e, d, p, q, dp, dq, qi). alg: RS256,
    RS384, RS512, PS256, PS384 or PS512. pem_path: also write the private key there as PEM
    (e.g. for harness.Key and `revokectl mint`)."""
    pem = _genpkey("-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-quiet",
                   pem_path=pem_path)
    f = _pkey_text(pem)
    e = int(f["publicExponent"].split()[0])
    jwk = {"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": _unsigned(f["modulus"]),
           "e": _unsigned(e.to_bytes((e.bit_length() + 7) // 8, "big"))}
    for member, field in (("d", "privateExponent"), ("p", "prime1"), ("q", "prime2"),
                          ("dp", "exponent1"), ("dq", "exponent2"), ("qi", "coefficient")):
        jwk[member] = _unsigned(f[field])
    return jwk


def private_jwk_ec(kid, curve="P-256", alg=None, pem_path=None):
    """A new EC private JWK on P-256 (ES256) or P-384 (ES384)."""
    name, size, default_alg = _CURVES[curve]
    pem = _genpkey("-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{name}",
                   "-pkeyopt", "ec_param_enc:named_curve", pem_path=pem_path)
    f = _pkey_text(pem)
    point = f["pub"]
    assert point[0] == 4 and len(point) == 1 + 2 * size, "expected an uncompressed EC point"
    return {"kty": "EC", "kid": kid, "alg": alg or default_alg, "use": "sig", "crv": curve,
            "x": b64url(point[1:1 + size]), "y": b64url(point[1 + size:]),
            "d": b64url(f["priv"].lstrip(b"\0").rjust(size, b"\0"))}


def private_jwk_ed25519(kid, alg="EdDSA", pem_path=None):
    """A new Ed25519 private JWK (kty OKP), alg EdDSA."""
    f = _pkey_text(_genpkey("-algorithm", "ED25519", pem_path=pem_path))
    return {"kty": "OKP", "kid": kid, "alg": alg, "use": "sig", "crv": "Ed25519",
            "x": b64url(f["pub"]), "d": b64url(f["priv"])}


def public_jwk(jwk):
    """The public part of a JWK: every member but the private ones."""
    return {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}


def _der(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _der_int(value):
    value = value.lstrip(b"\0") or b"\0"
    if value[0] & 0x80:
        value = b"\0" + value
    return _der(0x02, value)


_OIDS = {"rsaEncryption": bytes.fromhex("2a864886f70d010101"),
         "ecPublicKey": bytes.fromhex("2a8648ce3d0201"),
         "P-256": bytes.fromhex("2a8648ce3d030107"), "P-384": bytes.fromhex("2b81040022"),
         "Ed25519": bytes.fromhex("2b6570")}


def public_pem(jwk):
    """The SubjectPublicKeyInfo PEM of a (public or private) RSA, EC or Ed25519 JWK."""
    if jwk["kty"] == "RSA":
        algo = _der(0x30, _der(0x06, _OIDS["rsaEncryption"]) + b"\x05\x00")
        key = _der(0x30, _der_int(b64url_decode(jwk["n"])) + _der_int(b64url_decode(jwk["e"])))
    elif jwk["kty"] == "EC":
        algo = _der(0x30, _der(0x06, _OIDS["ecPublicKey"]) + _der(0x06, _OIDS[jwk["crv"]]))
        key = b"\x04" + b64url_decode(jwk["x"]) + b64url_decode(jwk["y"])
    elif jwk["kty"] == "OKP" and jwk.get("crv") == "Ed25519":
        algo = _der(0x30, _der(0x06, _OIDS["Ed25519"]))
        key = b64url_decode(jwk["x"])
    else:
        raise ValueError(f"no PEM for a {jwk.get('kty')} key")
    der = _der(0x30, algo + _der(0x03, b"\0" + key))
    lines = base64.b64encode(der).decode()
    return ("-----BEGIN PUBLIC KEY-----\n"
            + "".join(lines[i:i + 64] + "\n" for i in range(0, len(lines), 64))
            + "-----END PUBLIC KEY-----\n").encode()


def _raw_to_der_ecdsa(raw):
    half = len(raw) // 2
    return _der(0x30, _der_int(raw[:half]) + _der_int(raw[half:]))


def verify_jws(token, jwks):
    """Verify a compact JWS against a key set (a list of JWKs or {"keys": [...]}) with the
    openssl CLI: the key is the one whose kid the header names (or the only one). Returns
    (header, claims); raises AssertionError when no key fits or the signature is wrong."""
    keys = jwks["keys"] if isinstance(jwks, dict) else list(jwks)
    header, claims, sig = harness.jwt_parts(token)
    alg = header.get("alg")
    if "kid" in header:
        matches = [k for k in keys if k.get("kid") == header["kid"]]
    else:
        matches = keys if len(keys) == 1 else []
    if len(matches) != 1:
        raise AssertionError(f"no single key for kid {header.get('kid')!r} among "
                             f"{[k.get('kid') for k in keys]}")
    jwk = matches[0]
    if jwk.get("alg") not in (None, alg):
        raise AssertionError(f"token alg {alg} but key {jwk.get('kid')} is for {jwk.get('alg')}")
    signing_input = token.rsplit(".", 1)[0].encode()
    with tempfile.TemporaryDirectory(prefix="verify-") as d:
        pub, sig_path, data = (os.path.join(d, n) for n in ("pub.pem", "sig", "data"))
        with open(pub, "wb") as f:
            f.write(public_pem(jwk))
        with open(data, "wb") as f:
            f.write(signing_input)
        if alg in ("EdDSA", "Ed25519"):
            with open(sig_path, "wb") as f:
                f.write(sig)
            argv = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                    "-in", data, "-sigfile", sig_path]
        else:
            family, bits = alg[:2], alg[2:]
            with open(sig_path, "wb") as f:
                f.write(_raw_to_der_ecdsa(sig) if family == "ES" else sig)
            argv = ["openssl", "dgst", f"-sha{bits}", "-verify", pub, "-signature", sig_path]
            if family == "PS":
                argv += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
            argv.append(data)
        out = subprocess.run(argv, capture_output=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"signature of a {alg} token does not verify with key "
                             f"{jwk.get('kid')}: {out.stdout.decode().strip()} "
                             f"{out.stderr.decode(errors='replace').strip()}")
    return header, claims


# ---------------------------------------------------------------------------------------------
# The OpenID provider (node + oidc-provider)

def node_bin():
    """node, from NODE_BIN or PATH."""
    path = os.environ.get("NODE_BIN") or shutil.which("node")
    if not path:
        raise RuntimeError("node not found (install nodejs, or run ./dev test once)")
    return path


def _check_installed():
    if not os.path.isdir(os.path.join(OIDC_DIR, "node_modules", "oidc-provider")):
        raise RuntimeError("oidc-provider is not installed: run `npm ci --prefix "
                           "tests/integration/oidc` (./dev test does it)")


class OidcProvider:
    """oidc-provider on 127.0.0.1, issuer http://127.0.0.1:PORT[path], started at construction.

    keys: private JWKs (dicts, each with kid; alg defaults by key type, use to "sig"); the
    first signs every token, all are served (public parts) at /jwks.
    clients: dicts {client_id, client_secret[, claims]}, "claims" being set in (or, when None,
    removed from) every access token of that client; default one client DEFAULT_CLIENT.
    path: the issuer's path ("/tenant-a"); resource: the token's aud when token() names none;
    scopes: what a resource grants (others are dropped); token_ttl: exp - iat;
    jwks_max_age: Cache-Control: max-age on the JWKS (None: no such header).

    Tokens: header {"alg": first key's alg, "typ": "at+jwt", "kid"}; claims jti, sub (the
    client_id), iat, exp, scope (when any granted), client_id, iss, aud."""

    def __init__(self, workdir, keys, clients=None, port=None, path="", scopes=DEFAULT_SCOPES,
                 resource=DEFAULT_RESOURCE, token_ttl=300, jwks_max_age=None,
                 start_timeout=START_TIMEOUT):
        _check_installed()
        self.dir = tempfile.mkdtemp(prefix="oidc-", dir=workdir)
        self.clients = [dict(c) for c in (clients or [DEFAULT_CLIENT])]
        self.port = port
        self.path = path.rstrip("/")
        self.scopes = scopes
        self.resource = resource
        self.token_ttl = token_ttl
        self.jwks_max_age = jwks_max_age
        self.start_timeout = start_timeout
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()
        self.keys = None
        self.start(keys)

    # Process ----------------------------------------------------------------------------------
    def _write_config(self, keys):
        self.keys = [dict(k) for k in keys]
        keys_file = harness.write_json(os.path.join(self.dir, "keys.json"), self.keys)
        os.chmod(keys_file, 0o600)
        return harness.write_json(os.path.join(self.dir, "config.json"), {
            "port": self.port or 0, "path": self.path, "keys_file": keys_file,
            "clients": self.clients, "scopes": self.scopes, "resource": self.resource,
            "token_ttl": self.token_ttl, "jwks_max_age": self.jwks_max_age})

    def start(self, keys=None):
        """Start (on the same port when it ran before) and wait until discovery answers."""
        config = self._write_config(keys if keys is not None else self.keys)
        with self.cond:
            self.lines = []
        self.proc = _track(subprocess.Popen(
            [node_bin(), PROVIDER_SCRIPT, config], cwd=OIDC_DIR, env=harness.clean_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        self.readers = [threading.Thread(target=self._reader, args=(s, tag), daemon=True)
                        for s, tag in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for t in self.readers:
            t.start()
        started = time.monotonic()
        try:
            listening = self._wait_listening(self.start_timeout)
            self.port = listening["port"]
            self.issuer = listening["issuer"]
            harness.wait_until(lambda: fetch_json(self.discovery_url, timeout=2)["issuer"] == self.issuer,
                               max(1.0, self.start_timeout - (time.monotonic() - started)),
                               what="the provider's discovery document")
        except BaseException:
            self._close()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _reader(self, stream, tag):
        for raw in stream:
            with self.cond:
                self.lines.append((tag, raw.decode("utf-8", "replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for tag, line in self.lines:
                    obj = harness._json_or_none(line) if tag == "out" else None
                    if isinstance(obj, dict) and obj.get("event") == "listening":
                        return obj
                if self.proc.poll() is not None:
                    self.cond.wait(0.2)
                    raise RuntimeError(f"provider.mjs exited with {self.proc.returncode}:\n"
                                       f"{self.log_text()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"provider.mjs did not listen within {timeout}s:\n"
                                       f"{self.log_text()}")
                self.cond.wait(min(left, 0.1))

    def _close(self):
        code = stop_process(self.proc)
        for t in self.readers:
            t.join(harness.STOP_GRACE)
        for s in (self.proc.stdout, self.proc.stderr):
            s.close()
        return code

    def stop(self):
        """SIGTERM (then SIGKILL); returns the exit status, or None when it was not running."""
        if self.proc is None:
            return None
        code = self._close()
        self.proc = None
        return code

    def restart(self, keys=None):
        """Stop and start again on the same port, with `keys` when given (a key rotation)."""
        self.stop()
        return self.start(keys)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        """What the provider wrote on stdout and stderr (no tokens: it logs none)."""
        with self.cond:
            return "\n".join(line for _, line in self.lines)

    # URLs -------------------------------------------------------------------------------------
    @property
    def base_url(self):
        return f"http://{LOOPBACK}:{self.port}{self.path}"

    @property
    def discovery_url(self):
        return self.base_url + "/.well-known/openid-configuration"

    @property
    def jwks_url(self):
        return self.base_url + "/jwks"

    @property
    def token_url(self):
        return self.base_url + "/token"

    def discovery(self):
        return fetch_json(self.discovery_url)

    def jwks(self):
        """The served key set, as {"keys": [...]}."""
        return fetch_json(self.jwks_url)

    # Tokens -----------------------------------------------------------------------------------
    def _client(self, client_id):
        if client_id is None:
            return self.clients[0]
        for c in self.clients:
            if c["client_id"] == client_id:
                return c
        return {"client_id": client_id, "client_secret": "not-registered"}

    def token_response(self, client_id=None, client_secret=None, scope=None, resource=None,
                       auth="basic", extra=None):
        """POST /token with grant_type=client_credentials. auth: "basic" (client_secret_basic)
        or "post" (client_secret_post). Returns (status, JSON body)."""
        client = self._client(client_id)
        secret = client["client_secret"] if client_secret is None else client_secret
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope if isinstance(scope, str) else " ".join(scope)
        if resource is not None:
            form["resource"] = resource
        form.update(extra or {})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth == "basic":
            q = urllib.parse.quote_plus
            pair = f"{q(client['client_id'])}:{q(secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form.update(client_id=client["client_id"], client_secret=secret)
        status, _, body = _fetch(self.token_url, urllib.parse.urlencode(form).encode(), headers)
        return status, json.loads(body)

    def token(self, client_id=None, scope=None, resource=None, **kw):
        """A JWT access token (client_credentials); AssertionError when the provider refuses."""
        status, body = self.token_response(client_id=client_id, scope=scope, resource=resource, **kw)
        if status != 200 or "access_token" not in body:
            raise AssertionError(f"token request refused: HTTP {status} {body}\n{self.log_text()[-2000:]}")
        return body["access_token"]


# ---------------------------------------------------------------------------------------------
# TLS files (openssl CLI)

class TlsFiles:
    """A local CA (ca_file, ca_key) and a server certificate it signed (cert_file, key_file)
    for `san` (default IP:127.0.0.1 and DNS:localhost), valid for `days`."""

    def __init__(self, workdir, san=("IP:127.0.0.1", "DNS:localhost"), days=30,
                 cn="revokd test server"):
        self.dir = tempfile.mkdtemp(prefix="tls-", dir=workdir)
        p = lambda name: os.path.join(self.dir, name)  # noqa: E731
        self.ca_key, self.ca_file = p("ca.key"), p("ca.pem")
        self.key_file, self.cert_file = p("server.key"), p("server.pem")
        csr, ext = p("server.csr"), p("server.ext")
        _openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
                 "-out", self.ca_file, "-days", str(days), "-subj", "/CN=revokd test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key_file,
                 "-out", csr, "-subj", f"/CN={cn}")
        with open(ext, "w", encoding="ascii") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    + (f"subjectAltName={','.join(san)}\n" if san else ""))
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_file, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", self.cert_file, "-days", str(days), "-sha256",
                 "-extfile", ext)

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def client_context(self):
        """An ssl context trusting only this CA (hostname checked)."""
        return ssl.create_default_context(cafile=self.ca_file)


# ---------------------------------------------------------------------------------------------
# A JWKS server with faults

FAULTS = ("ok", "slow", "status", "invalid_json", "huge", "many_keys", "raw", "close")
_live_servers = weakref.WeakSet()


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    """One thread per connection; the threads are counted and joined by stop()."""

    daemon_threads = True       # a server nobody stopped must not hold the interpreter
    block_on_close = False      # stop() joins the threads itself
    allow_reuse_address = True

    def __init__(self, owner, tls_context):
        self.owner = owner
        self.tls_context = tls_context
        self.threads = set()
        self.conns = {}         # thread -> file descriptor of the raw connection
        self.lock = threading.Lock()
        super().__init__((LOOPBACK, owner._port_wanted), _Handler)

    def process_request(self, request, client_address):
        t = threading.Thread(target=self._thread, args=(request, client_address), daemon=True,
                             name=f"jwks-server-{self.server_address[1]}-conn")
        with self.lock:
            self.threads.add(t)
            self.conns[t] = request.fileno()
        t.start()

    def _thread(self, request, client_address):
        conn = request
        try:
            if self.tls_context is not None:
                request.settimeout(HTTP_TIMEOUT)
                try:
                    conn = self.tls_context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    with self.owner._lock:
                        self.owner.handshake_failures += 1
                    return
            self.finish_request(conn, client_address)
        except Exception:  # a client gone mid-answer is no server failure
            pass
        finally:
            with self.lock:
                self.conns.pop(threading.current_thread(), None)
            try:
                conn.close()
            except OSError:
                pass
            request.close()
            with self.lock:
                self.threads.discard(threading.current_thread())

    def drop_connections(self):
        """Shut every open connection down, so the threads reading them return."""
        with self.lock:
            for fd in self.conns.values():
                try:
                    s = socket.socket(fileno=os.dup(fd))
                except OSError:
                    continue
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as a real JWKS host offers
    server_version = "jwks-test"
    timeout = 60                    # an idle connection ends at last (stop() ends it at once)

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.server.owner._serve(self)

    def do_HEAD(self):
        self.server.owner._serve(self, head=True)

    def do_POST(self):
        self.server.owner._serve(self, method_allowed=False)


class JwksServer:
    """A JWKS (at jwks_path) and discovery documents on 127.0.0.1, over HTTP or, with tls, HTTPS.

    discovery: which metadata documents exist: "openid" (issuer path + /.well-known/
    openid-configuration) and/or "oauth" (RFC 8414: /.well-known/oauth-authorization-server +
    issuer path); any other path answers 404. Faults apply per path (default: the JWKS)."""

    def __init__(self, port=None, tls=None, keys=(), jwks_path="/jwks", issuer=None,
                 discovery=("openid",), content_type="application/json"):
        self._port_wanted = port or 0
        self.tls = tls
        self.jwks_path = jwks_path
        self.content_type = content_type
        self.handshake_failures = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counts = {}
        self._log = []
        self._faults = {}
        self._keys = []
        self._document = None
        self._cache = {"max_age": None, "expires": None, "cache_control": None, "headers": {}}
        self._huge = {}
        self.server = _Server(self, tls.server_context() if tls else None)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        self._issuer = issuer
        self._jwks_uri = None
        self._discovery_kinds = set(discovery)
        self._discovery_extra = {}
        self.set_keys(keys)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name=f"jwks-server-{self.port}")
        self.thread.start()
        _live_servers.add(self)

    # What it serves ---------------------------------------------------------------------------
    @property
    def base_url(self):
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    @property
    def url(self):
        """The JWKS URL."""
        return self.base_url + self.jwks_path

    @property
    def issuer_url(self):
        return self._issuer or self.base_url

    @property
    def openid_configuration_path(self):
        return urllib.parse.urlsplit(self.issuer_url).path.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def oauth_metadata_path(self):
        return "/.well-known/oauth-authorization-server" + urllib.parse.urlsplit(self.issuer_url).path.rstrip("/")

    def set_keys(self, keys):
        """The JWKS document becomes {"keys": [public parts of keys]}."""
        with self._lock:
            self._keys = [public_jwk(k) for k in keys]
            self._document = None

    def set_document(self, obj):
        """Serve this JSON document at the JWKS path instead (e.g. without "keys")."""
        with self._lock:
            self._document = obj

    def set_cache(self, max_age=None, expires=None, cache_control=None, headers=None):
        """Caching headers of the JWKS answer: Cache-Control: max-age=N for max_age (None: no
        Cache-Control), or cache_control verbatim; Expires: now + expires seconds when a number,
        verbatim when a string, none when None; headers: any further headers."""
        with self._lock:
            self._cache = {"max_age": max_age, "expires": expires, "cache_control": cache_control,
                           "headers": dict(headers or {})}

    def set_discovery(self, issuer=None, jwks_uri=None, kinds=None, extra=None):
        """Discovery: its issuer (default the server's base URL), its jwks_uri (default .url),
        which documents exist (kinds: a set of "openid", "oauth") and extra members."""
        with self._lock:
            self._issuer = issuer
            self._jwks_uri = jwks_uri
            if kinds is not None:
                self._discovery_kinds = set(kinds)
            self._discovery_extra = dict(extra or {})

    def set_fault(self, mode, path=None, **params):
        """How `path` (default the JWKS path) answers from now on:
        ok; slow (delay=5 s before answering; trickle_interval=s with trickle_chunk=bytes:
        headers at once, then the body that slowly); status (status=500, body=...);
        invalid_json (body=truncated JSON); huge (size=10 MiB, valid=True: a whole JSON
        document of that size with the keys in it, else an unterminated one); many_keys
        (count=10000 keys and the real ones last); raw (body=bytes, status=200,
        content_type=...); close (the connection closes, no answer).
        Any mode takes chunked=True (Transfer-Encoding: chunked, no Content-Length)."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}; one of {FAULTS}")
        with self._lock:
            self._faults[path or self.jwks_path] = (mode, params)

    # What it saw ------------------------------------------------------------------------------
    def requests(self, path=None):
        """How many requests arrived (for `path` only, without query, when given)."""
        with self._lock:
            if path is None:
                return sum(self._counts.values())
            return self._counts.get(path, 0)

    def request_log(self):
        """[(method, target, headers dict)] of every request since the last reset."""
        with self._lock:
            return list(self._log)

    def reset_counts(self):
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self.handshake_failures = 0

    def wait_for_requests(self, n, path=None, timeout=10.0):
        """Wait until at least n requests (for path) arrived; returns the count."""
        return harness.wait_until(lambda: self.requests(path) >= n and self.requests(path),
                                  timeout, interval=0.02, what=f"{n} requests for {path or 'any path'}")

    def stop(self):
        """Stop serving, end every open connection and join every thread."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.server.drop_connections()
        with self.server.lock:
            threads = list(self.server.threads)
        for t in threads + [self.thread]:
            t.join(harness.STOP_GRACE)
        alive = [t for t in threads + [self.thread] if t.is_alive()]
        _live_servers.discard(self)
        if alive:
            raise AssertionError(f"JwksServer on port {self.port}: {len(alive)} threads still running")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # Serving ----------------------------------------------------------------------------------
    def _serve(self, h, head=False, method_allowed=True):
        path = urllib.parse.urlsplit(h.path).path
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1
            self._log.append((h.command, h.path, dict(h.headers.items())))
            mode, params = self._faults.get(path, ("ok", {}))
        if not method_allowed:
            h.close_connection = True   # the request body, if any, is left unread
            return self._answer(h, 405, b'{"error":"method not allowed"}', {"Allow": "GET, HEAD"})
        if mode == "close":
            h.close_connection = True
            return None
        status, body, headers = self._content(path)
        if mode == "slow":
            if self._stopping.wait(params.get("delay", 5.0)):
                h.close_connection = True
                return None
        elif mode == "status":
            status = params.get("status", 500)
            body = params.get("body", b'{"error":"injected fault"}')
            headers = {"Content-Type": "application/json"}
        elif mode == "invalid_json":
            body = params.get("body", b'{"keys":[{"kty":"RSA","kid":')
        elif mode == "huge":
            body = self._huge_body(params.get("size", 10 * 1024 * 1024), params.get("valid", True))
        elif mode == "many_keys":
            body = self._many_keys_body(params.get("count", 10000))
        elif mode == "raw":
            status = params.get("status", 200)
            body = params.get("body", b"")
            headers = {"Content-Type": params.get("content_type", self.content_type)}
        headers.update(params.get("headers", {}))
        return self._answer(h, status, body, headers, head=head, chunked=params.get("chunked", False),
                            trickle=(params.get("trickle_interval"), params.get("trickle_chunk", 1))
                            if mode == "slow" else (None, 0))

    def _content(self, path):
        """(status, body, headers) of `path` as served without a fault."""
        with self._lock:
            if path == self.jwks_path:
                doc = self._document if self._document is not None else {"keys": self._keys}
                headers = {"Content-Type": self.content_type}
                c = self._cache
                if c["cache_control"] is not None:
                    headers["Cache-Control"] = c["cache_control"]
                elif c["max_age"] is not None:
                    headers["Cache-Control"] = f"max-age={c['max_age']}"
                if isinstance(c["expires"], str):
                    headers["Expires"] = c["expires"]
                elif c["expires"] is not None:
                    headers["Expires"] = email.utils.formatdate(time.time() + c["expires"], usegmt=True)
                headers.update(c["headers"])
                return 200, json.dumps(doc).encode(), headers
            kinds = []
            if "openid" in self._discovery_kinds:
                kinds.append(self.openid_configuration_path)
            if "oauth" in self._discovery_kinds:
                kinds.append(self.oauth_metadata_path)
            if path in kinds:
                doc = {"issuer": self.issuer_url, "jwks_uri": self._jwks_uri or self.url}
                doc.update(self._discovery_extra)
                return 200, json.dumps(doc).encode(), {"Content-Type": "application/json"}
        return 404, b'{"error":"not found"}', {"Content-Type": "application/json"}

    def _huge_body(self, size, valid):
        with self._lock:
            key = (size, valid, json.dumps(self._keys))
            if key not in self._huge:
                keys = json.dumps(self._keys).encode()
                if valid:
                    head, tail = b'{"keys":' + keys + b',"padding":"', b'"}'
                    body = head + b"A" * max(0, size - len(head) - len(tail)) + tail
                else:
                    head = b'{"keys":[{"kty":"RSA","kid":"padding","n":"'
                    body = head + b"A" * max(0, size - len(head))
                self._huge = {key: body}
            return self._huge[key]

    def _many_keys_body(self, count):
        with self._lock:
            real = list(self._keys)
        template = real[0] if real else {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
                                          "x": b64url(b"\x01" * 32), "y": b64url(b"\x02" * 32)}
        keys = [dict(template, kid=f"many-{i:05d}") for i in range(count)]
        return json.dumps({"keys": keys + real}).encode()

    def _answer(self, h, status, body, headers, head=False, chunked=False, trickle=(None, 0)):
        interval, chunk = trickle
        try:
            h.send_response(status)
            for name, value in headers.items():
                h.send_header(name, value)
            if chunked:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if head:
                return
            step = chunk if interval else 256 * 1024
            for i in range(0, len(body), step):
                piece = body[i:i + step]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                h.wfile.flush()
                if interval and i + step < len(body) and self._stopping.wait(interval):
                    h.close_connection = True
                    return
            if chunked:
                h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            h.close_connection = True


def stop_all_servers():
    """Stop every JwksServer still running (tests should stop theirs; this is the net)."""
    for s in list(_live_servers):
        try:
            s.stop()
        except Exception:
            pass


atexit.register(stop_all_servers)
