"""Integration-test helper: real redis-server and revokd processes on free loopback ports.

Keys come from the openssl CLI, tokens from `revokectl mint` (or are hand-built and signed here
when a test needs a header or payload revokectl cannot produce), Redis is read with a tiny RESP
client. Standard library only; every process is stopped by pid, and a failing test prints the
log revokd wrote while it ran.
"""

import atexit
import base64
import hashlib
import hmac
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

LOOPBACK = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Every REVOKD_ setting the contract names; --help must list all of them.
SETTINGS = (
    "REVOKD_LISTEN", "REVOKD_REDIS_URL", "REVOKD_JWKS_FILE", "REVOKD_JWT_PUBLIC_KEY_FILE",
    "REVOKD_JWT_PUBLIC_KEY_ALG", "REVOKD_JWT_HMAC_SECRET_FILE", "REVOKD_JWT_HMAC_ALG",
    "REVOKD_ISSUER", "REVOKD_AUDIENCE", "REVOKD_LEEWAY", "REVOKD_MAX_TOKEN_LIFETIME",
    "REVOKD_ADMIN_KEYS_FILE", "REVOKD_KEY_PREFIX", "REVOKD_THREADS", "REVOKD_MAX_BODY_BYTES",
    "REVOKD_MAX_TOKEN_BYTES", "REVOKD_REDIS_TIMEOUT_MS", "REVOKD_LOG_LEVEL",
)
# revokd's data-loss marker is <prefix>epoch (store.h, store_probe).
MARKER_SUFFIX = "epoch"
# revokd's revocation log is the stream <prefix>log (store.h, STORE_READ_LOG).
LOG_SUFFIX = "log"

START_TIMEOUT = 15.0   # seconds for redis-server or revokd to become ready
STOP_GRACE = 5.0       # seconds between SIGTERM and SIGKILL
HTTP_TIMEOUT = 10.0    # seconds for one HTTP exchange


def binary(env_name, name):
    """Path of a built binary: the env variable meson sets, else build/<name> in the repository."""
    path = os.environ.get(env_name) or os.path.join(REPO, "build", name)
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest(f"{name} not built ({env_name}={path!r})")
    return path


def revokd_bin():
    return binary("REVOKD_BIN", "revokd")


def revokectl_bin():
    return binary("REVOKECTL_BIN", "revokectl")


def config_table():
    """revokd's settings table (revokd --config-json), by variable name; {} when not built."""
    try:
        out = subprocess.run([revokd_bin(), "--config-json"], capture_output=True, text=True, check=True)
    except unittest.SkipTest:
        return {}
    return {row["env"]: row for row in json.loads(out.stdout)}


# The defaults the tests rely on come from the table itself.
CONFIG = config_table()
NUMBER_TYPES = ("integer", "milliseconds", "seconds", "bytes")
DEFAULT_LEEWAY = int(CONFIG.get("REVOKD_LEEWAY", {"default": 0})["default"])
DEFAULT_MAX_LIFETIME = int(CONFIG.get("REVOKD_MAX_TOKEN_LIFETIME", {"default": 0})["default"])
DEFAULT_PREFIX = CONFIG.get("REVOKD_KEY_PREFIX", {"default": ""})["default"]


def now():
    """Unix seconds, read at least 50 ms into the second. revokd reads time(NULL), a clock that
    may lag the precise one by a kernel tick; so every reading revokd takes after this call is
    >= the value returned, and "the server's now is at least t" holds without a race."""
    frac = time.time() % 1
    if frac < 0.05:
        time.sleep(0.05 - frac)
    return int(time.time())


def clean_env(extra=None):
    """The caller's environment without any REVOKD_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOKD_")}
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------------------------------
# Processes

_live = {}  # pid -> Popen: everything started here and not yet reaped
_live_lock = threading.Lock()


def _track(proc):
    with _live_lock:
        _live[proc.pid] = proc
    return proc


def stop_process(proc, grace=STOP_GRACE):
    """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_GRACE)
        except ProcessLookupError:
            pass
    with _live_lock:
        _live.pop(proc.pid, None)
    return proc.returncode


def kill_process(proc):
    """SIGKILL (after SIGCONT, in case it was stopped) and reap."""
    if proc.poll() is None:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
        proc.wait(STOP_GRACE)
    with _live_lock:
        _live.pop(proc.pid, None)


@atexit.register
def _stop_all():
    with _live_lock:
        procs = list(_live.values())
    for proc in procs:
        try:
            kill_process(proc)
        except Exception:  # best effort at interpreter exit
            pass


def free_port():
    """A loopback TCP port nobody listens on right now (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def rss(pid):
    """Resident memory of a process, in bytes (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll `predicate` until it returns a true value; raise AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # a poll that raises counts as "not yet"
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Redis

class RespError(Exception):
    """An error reply (-ERR ...) from Redis."""


class Resp:
    """A minimal RESP2 client: one connection, one command at a time."""

    def __init__(self, port=None, unix_path=None, password=None, db=0, timeout=5.0, host=LOOPBACK):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix_path)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        if password is not None:
            self.command("AUTH", password)
        if db:
            self.command("SELECT", db)

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _reply(self):
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)
            return data[:-2].decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError(f"unexpected RESP line {line!r}")


class RedisServer:
    """A private redis-server on a loopback port, with its data in an append-only file."""

    def __init__(self, workdir, port=None, password=None, unix_socket=False):
        self.port = port
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=workdir)
        self.unix_path = os.path.join(self.dir, "redis.sock") if unix_socket else None
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None

    def start(self, require_empty=True):
        """Start (or restart, on the same port) and wait until it answers PING."""
        if self.port is None:
            self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", LOOPBACK,
                # An append-only file synced on every write, as deploy/redis has: a test that
                # kills and restarts Redis finds every revocation, and revokd's data-loss
                # marker, still there.
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
                "--daemonize", "no", "--logfile", self.log_path]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        if self.unix_path:
            argv += ["--unixsocket", self.unix_path, "--unixsocketperm", "700"]
        self.proc = _track(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.command("PING") == "PONG":
                    break
            except (OSError, ConnectionError, RespError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT}s")
            time.sleep(0.02)
        if require_empty and self.command("DBSIZE") != 0:
            raise RuntimeError(f"redis on port {self.port} is not empty; refusing to use it")
        return self

    def stop(self):
        stop_process(self.proc)

    def kill(self):
        """SIGKILL: the server vanishes at once, as in a crash."""
        kill_process(self.proc)

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def url(self, db=0):
        auth = f":{urllib.parse.quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/{db}"

    def address(self):
        return f"{LOOPBACK}:{self.port}"

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def command(self, *args, db=0):
        """One command on a fresh connection (cheap on loopback; survives server restarts)."""
        with Resp(self.port, password=self.password, db=db) as r:
            return r.command(*args)

    # Shorthands for the assertions the tests make.
    def get(self, key, db=0):
        return self.command("GET", key, db=db)

    def exists(self, key, db=0):
        return self.command("EXISTS", key, db=db) == 1

    def ttl(self, key, db=0):
        return self.command("TTL", key, db=db)

    def expiretime(self, key, db=0):
        return self.command("EXPIRETIME", key, db=db)

    def keys(self, pattern="*", db=0):
        """The keys, but revokd's data-loss markers (MARKER_SUFFIX) and its revocation log (the
        stream LOG_SUFFIX), which are no revocation records."""
        return sorted(k for k in self.command("KEYS", pattern, db=db) if not k.endswith(MARKER_SUFFIX)
                      and not (k.endswith(LOG_SUFFIX) and self.command("TYPE", k, db=db) == "stream"))

    def log_entries(self, prefix=DEFAULT_PREFIX, start="-", db=0):
        """revokd's revocation log as (id, {field: value}) pairs, oldest first (XRANGE)."""
        return [(i, dict(zip(f[::2], f[1::2])))
                for i, f in self.command("XRANGE", prefix + LOG_SUFFIX, start, "+", db=db)]

    def flushall(self, keep_markers=True):
        """FLUSHALL between tests. revokd's data-loss markers stay unless keep_markers is False:
        a flush between tests is not the data loss a running revokd watches for."""
        markers = []
        for db in range(16) if keep_markers else ():
            markers += [(db, k, self.get(k, db=db)) for k in self.command("KEYS", "*" + MARKER_SUFFIX, db=db)]
        self.command("FLUSHALL")
        for db, key, value in markers:
            self.command("SET", key, value, db=db)


# ---------------------------------------------------------------------------------------------
# Keys and tokens

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact_json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def jwt_parts(token):
    """(header dict, payload dict, signature bytes) of a well-formed token."""
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s)


def token_id(token):
    """The id revokd uses for a token: its jti, else sha256: + b64url(SHA-256(signing input)),
    the signing input being the token's header.payload exactly as it is written."""
    _, payload, _ = jwt_parts(token)
    if "jti" in payload:
        return payload["jti"]
    return "sha256:" + b64url(hashlib.sha256(token.rsplit(".", 1)[0].encode()).digest())


def key_name(kind, iss, value, prefix=DEFAULT_PREFIX):
    """The Redis key the contract specifies for a jti revocation ("jti") or a sub cutoff ("sub"):
    prefix, kind letter, base64url of the first 15 bytes of SHA-256(be32 len(iss) || iss || value)."""
    iss_b = iss.encode()
    letter = {"jti": "j", "sub": "s"}[kind]
    digest = hashlib.sha256(struct.pack(">I", len(iss_b)) + iss_b + value.encode()).digest()[:15]
    return f"{prefix}{letter}{b64url(digest)}"


def revokd_key_name(kind, iss, value):
    """What `revokd --key-name KIND ISS VALUE` prints."""
    out = subprocess.run([revokd_bin(), "--key-name", kind, iss, value], env=clean_env(),
                         capture_output=True, timeout=10, text=True)
    if out.returncode != 0:
        raise AssertionError(f"revokd --key-name failed ({out.returncode}): {out.stderr}")
    return out.stdout.strip()


def _openssl(*args, input=None):
    out = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {out.stderr.decode(errors='replace')}")
    return out.stdout


_HASHES = {"256": ("sha256", hashlib.sha256), "384": ("sha384", hashlib.sha384),
           "512": ("sha512", hashlib.sha512)}
_CURVE_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66}
_CURVE_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
# EdDSA curves (RFC 8037): the openssl algorithm and the raw public key's length.
_OKP_CURVES = {"Ed25519": ("ED25519", 32), "Ed448": ("ED448", 57)}


def _der_ecdsa_to_raw(der, size):
    """DER SEQUENCE{INTEGER r, INTEGER s} -> r || s, each left-padded to `size` bytes."""
    def read_len(buf, i):
        n = buf[i]
        i += 1
        if n & 0x80:
            count = n & 0x7F
            n = int.from_bytes(buf[i:i + count], "big")
            i += count
        return n, i

    assert der[0] == 0x30, "not a DER sequence"
    _, i = read_len(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02, "not a DER integer"
        n, i = read_len(der, i + 1)
        out += der[i:i + n].lstrip(b"\0").rjust(size, b"\0")
        i += n
    return out


class Key:
    """A signing key: RSA, EC or OKP (Ed25519/Ed448; PEM files made by openssl) or an HMAC secret
    (raw file). An RSA key signs PKCS #1 v1.5 for RS* and PSS for PS*, by the alg it signs for."""

    def __init__(self, kty, alg, kid=None, priv_path=None, pub_path=None, secret=None,
                 secret_path=None, curve=None):
        self.kty, self.alg, self.kid = kty, alg, kid
        self.priv_path, self.pub_path = priv_path, pub_path
        self.secret, self.secret_path, self.curve = secret, secret_path, curve

    @property
    def mint_path(self):
        """The file `revokectl mint --key` takes: private PEM, or the raw secret."""
        return self.secret_path if self.kty == "oct" else self.priv_path

    def public_pem(self):
        with open(self.pub_path, "rb") as f:
            return f.read()

    def jwk(self, kid=..., alg=..., use=None, **extra):
        """The public JWK. kid/alg default to the key's own; pass None to leave them out."""
        kid = self.kid if kid is ... else kid
        alg = self.alg if alg is ... else alg
        if self.kty == "RSA":
            modulus = _openssl("rsa", "-pubin", "-in", self.pub_path, "-noout", "-modulus").decode()
            n = bytes.fromhex(modulus.strip().split("=", 1)[1])
            text = _openssl("rsa", "-pubin", "-in", self.pub_path, "-noout", "-text").decode()
            exp_line = next(l for l in text.splitlines() if l.startswith("Exponent:"))
            e = int(exp_line.split()[1])
            jwk = {"kty": "RSA", "n": b64url(n), "e": b64url(e.to_bytes((e.bit_length() + 7) // 8, "big"))}
        elif self.kty == "EC":
            text = _openssl("ec", "-pubin", "-in", self.pub_path, "-noout", "-text").decode()
            hexpart = text.split("pub:", 1)[1].split("ASN1 OID", 1)[0]
            point = bytes.fromhex("".join(hexpart.split()).replace(":", ""))
            size = _CURVE_SIZES[self.curve]
            assert point[0] == 4 and len(point) == 1 + 2 * size, "expected an uncompressed EC point"
            jwk = {"kty": "EC", "crv": self.curve, "x": b64url(point[1:1 + size]),
                   "y": b64url(point[1 + size:])}
        elif self.kty == "OKP":
            # SubjectPublicKeyInfo DER ends with the raw public key.
            der = _openssl("pkey", "-pubin", "-in", self.pub_path, "-outform", "DER")
            jwk = {"kty": "OKP", "crv": self.curve, "x": b64url(der[-_OKP_CURVES[self.curve][1]:])}
        else:
            jwk = {"kty": "oct", "k": b64url(self.secret)}
        if kid is not None:
            jwk["kid"] = kid
        if alg is not None:
            jwk["alg"] = alg
        if use is not None:
            jwk["use"] = use
        jwk.update(extra)
        return jwk

    def sign(self, signing_input, alg=None, pss_saltlen="digest"):
        """Signature bytes over `signing_input` with this key's algorithm family and `alg`'s hash:
        for an RSA key PKCS #1 v1.5 (RS*) or PSS (PS*, MGF1 with the same hash, a salt of
        `pss_saltlen`: "digest" as RFC 7518 asks, or what openssl's rsa_pss_saltlen takes, such as
        "max" or a number of bytes); PureEdDSA for an OKP key, whatever `alg` says."""
        alg = alg or self.alg
        if self.kty == "OKP":
            with tempfile.NamedTemporaryFile(prefix="signing-input-") as f:
                f.write(signing_input)
                f.flush()
                return _openssl("pkeyutl", "-sign", "-rawin", "-inkey", self.priv_path, "-in", f.name)
        name, fn = _HASHES[alg[2:]]
        if self.kty == "oct":
            return hmac.new(self.secret, signing_input, fn).digest()
        opts = []
        if alg.startswith("PS"):
            opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", f"rsa_pss_saltlen:{pss_saltlen}",
                    "-sigopt", f"rsa_mgf1_md:{name}"]
        sig = _openssl("dgst", f"-{name}", "-sign", self.priv_path, *opts, "-binary", input=signing_input)
        if self.kty == "EC":
            return _der_ecdsa_to_raw(sig, _CURVE_SIZES[self.curve])
        return sig


class KeyFactory:
    """Makes keys with the openssl CLI inside `directory`."""

    def __init__(self, directory):
        self.dir = directory
        self.count = 0

    def _paths(self, name):
        self.count += 1
        base = os.path.join(self.dir, f"{self.count:02d}-{name}")
        return base + ".key.pem", base + ".pub.pem"

    def rsa(self, name, bits=2048, kid=None, alg="RS256"):
        priv, pub = self._paths(name)
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                 "-quiet", "-out", priv)
        _openssl("pkey", "-in", priv, "-pubout", "-out", pub)
        return Key("RSA", alg, kid, priv, pub)

    def ec(self, name, curve="P-256", kid=None, alg=None):
        priv, pub = self._paths(name)
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}",
                 "-pkeyopt", "ec_param_enc:named_curve", "-out", priv)
        _openssl("pkey", "-in", priv, "-pubout", "-out", pub)
        return Key("EC", alg or _CURVE_ALGS[curve], kid, priv, pub, curve=curve)

    def okp(self, name, curve="Ed25519", kid=None):
        """An EdDSA key: curve Ed25519 or Ed448."""
        priv, pub = self._paths(name)
        _openssl("genpkey", "-algorithm", _OKP_CURVES[curve][0], "-out", priv)
        _openssl("pkey", "-in", priv, "-pubout", "-out", pub)
        return Key("OKP", "EdDSA", kid, priv, pub, curve=curve)

    def hmac(self, name, size=32, alg="HS256", kid=None, trailing_newline=False, secret=None):
        """A random printable secret of `size` bytes, written to a file (optionally + newline)."""
        self.count += 1
        path = os.path.join(self.dir, f"{self.count:02d}-{name}.secret")
        if secret is None:
            secret = b64url(os.urandom(size))[:size].encode()
        with open(path, "wb") as f:
            f.write(secret + (b"\n" if trailing_newline else b""))
        return Key("oct", alg, kid, secret=secret, secret_path=path)


_STANDARD = {}
_STANDARD_DIR = []


def standard_keys():
    """One process-wide key set (generated once): rsa (kid rsa-1, RS256), rsa2 (kid rsa-2,
    RS384), ec256 (kid ec-256), ec384 (kid ec-384), hs (kid hs-1, HS256, 40-byte secret)."""
    if not _STANDARD:
        d = tempfile.mkdtemp(prefix="revokd-keys-")
        _STANDARD_DIR.append(d)
        atexit.register(shutil.rmtree, d, True)
        f = KeyFactory(d)
        _STANDARD.update(
            rsa=f.rsa("rsa-1", kid="rsa-1", alg="RS256"),
            rsa2=f.rsa("rsa-2", kid="rsa-2", alg="RS384"),
            ec256=f.ec("ec-256", "P-256", kid="ec-256"),
            ec384=f.ec("ec-384", "P-384", kid="ec-384"),
            hs=f.hmac("hs-1", size=40, kid="hs-1"),
        )
    return _STANDARD


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    return path


def write_admin_keys(path, keys):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# admin keys for the integration tests\n\n")
        f.write("".join(k + "\n" for k in keys))
    return path


def write_jwks(path, jwks):
    return write_json(path, {"keys": list(jwks)})


def standard_jwks():
    """The JWKS of standard_keys(): ec-256 without "alg" (inferred from the curve), the rest with."""
    k = standard_keys()
    return [k["rsa"].jwk(), k["rsa2"].jwk(), k["ec256"].jwk(alg=None), k["ec384"].jwk(), k["hs"].jwk()]


def craft(header, payload, key=None, alg=None, signature=None):
    """A token built by hand. header/payload: dict (compact JSON) or bytes (used verbatim, so
    duplicate members etc. are possible). Signed with `key` under `alg` (default header["alg"]),
    or given `signature` bytes."""
    h = header if isinstance(header, bytes) else compact_json(header)
    p = payload if isinstance(payload, bytes) else compact_json(payload)
    signing_input = (b64url(h) + "." + b64url(p)).encode()
    if signature is None:
        if alg is None:
            alg = json.loads(h)["alg"]
        signature = key.sign(signing_input, alg)
    return signing_input.decode() + "." + b64url(signature)


def std_claims(**overrides):
    """Claims of a valid token for `craft`: iat now, exp now+300, a fresh jti."""
    t = now()
    claims = {"sub": "user-" + os.urandom(4).hex(), "jti": "jti-" + os.urandom(8).hex(),
              "iat": t, "exp": t + 300}
    for k, v in overrides.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    return claims


def mint(key, alg=None, kid=..., sub=None, iss=None, aud=None, jti=None, no_jti=False, ttl=None,
         iat=None, no_iat=False, nbf=None, exp=None, claims=None):
    """A token from `revokectl mint`. kid defaults to the key's kid; kid=None omits it."""
    kid = key.kid if kid is ... else kid
    argv = [revokectl_bin(), "mint", "--key", key.mint_path, "--alg", alg or key.alg]
    for flag, value in (("--kid", kid), ("--sub", sub), ("--iss", iss), ("--aud", aud),
                        ("--jti", jti), ("--ttl", ttl), ("--iat", iat), ("--nbf", nbf),
                        ("--exp", exp)):
        if value is not None:
            argv += [flag, str(value)]
    if no_jti:
        argv.append("--no-jti")
    if no_iat:
        argv.append("--no-iat")
    if claims is not None:
        argv += ["--claims", json.dumps(claims)]
    out = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"revokectl mint failed ({out.returncode}): {out.stderr.strip()}")
    token = out.stdout.strip()
    if token.count(".") != 2:
        raise AssertionError(f"revokectl mint printed no token: {out.stdout!r}")
    return token


# ---------------------------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers      # http.client.HTTPMessage (case-insensitive get)
        self.body = body            # bytes

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:600]!r}>"


def http_request(port, method, path, body=None, headers=None, host=LOOPBACK, timeout=HTTP_TIMEOUT,
                 source=None):
    """One request on a fresh connection (from loopback address `source` when given). `body`:
    bytes, str, or a JSON-able object (then sent with Content-Type: application/json unless
    headers say otherwise)."""
    headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = compact_json(body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


def metrics(daemon):
    """/metrics as {"name{labels}": value}."""
    out = {}
    for line in daemon.request("GET", "/metrics").body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


class EventStream:
    """GET /v1/events with Accept: text/event-stream: the status and headers at once, then the
    stream read as it comes, an item at a time: ("event", id, name, data parsed as JSON) for an
    event, ("comment", text) for a comment line (the heartbeats), ("end",) when the server ended
    the stream in order, ("closed",) when it closed the connection without ending it."""

    def __init__(self, port, key, after=None, last_event_id=None, timeout=HTTP_TIMEOUT):
        headers = {"Accept": "text/event-stream"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        self.conn.request("GET", "/v1/events" + (f"?after={after}" if after is not None else ""),
                          headers=headers)
        self.resp = self.conn.getresponse()
        self.status, self.headers = self.resp.status, self.resp.headers

    def body(self):
        """A reply that is no stream (an error), whole."""
        return Response(self.status, self.headers, self.resp.read())

    def next(self):
        fields = []
        while True:
            try:
                line = self.resp.readline()
            except (ConnectionError, http.client.HTTPException):  # IncompleteRead among them
                return ("closed",)
            if not line:  # the last chunk came: an orderly end
                return ("end",)
            line = line.decode().rstrip("\n")
            if line.startswith(":") and not fields:
                self.resp.readline()  # the empty line after the comment
                return ("comment", line[1:].strip())
            if line:
                fields.append(line.partition(": ")[::2])
                continue
            got = dict(fields)
            return ("event", got.get("id"), got.get("event"), json.loads(got.get("data", "null")))

    def events(self, n):
        """The next n events, skipping comments; fails on anything else."""
        out = []
        while len(out) < n:
            item = self.next()
            if item[0] == "comment":
                continue
            if item[0] != "event":
                raise AssertionError(f"the stream ended after {len(out)} of {n} events: {item}")
            out.append(item)
        return out

    def close(self):
        self.conn.close()


def raw_exchange(port, data, timeout=HTTP_TIMEOUT):
    """Send `data` while reading the reply at the same time, tolerating a server that answers
    and closes before reading everything. Returns (Response or None, error or None)."""
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    errors = []

    def sender():
        try:
            sock.sendall(data)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    received = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            resp = _parse_response(received)
            if resp is not None:
                break
    except OSError as e:
        errors.append(e)
    t.join(timeout)
    sock.close()
    return _parse_response(received, final=True), (errors[0] if errors else None)


def _parse_response(data, final=False):
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    msg = http.client.HTTPMessage()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        msg[name.strip()] = value.strip()
    length = msg.get("Content-Length")
    if length is not None and len(rest) < int(length) and not final:
        return None
    return Response(status, msg, rest[:int(length)] if length is not None else rest)


# ---------------------------------------------------------------------------------------------
# revokd

class StartError(RuntimeError):
    pass


class Revokd:
    """A revokd process. Configured through REVOKD_* env and/or flags; listens on an ephemeral
    loopback port unless the caller sets REVOKD_LISTEN or --listen."""

    def __init__(self, env=None, args=(), name="revokd"):
        self.env = dict(env or {})
        self.args = list(args)
        self.name = name
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()
        self.port = None
        self.address = None

    def start(self, timeout=START_TIMEOUT, wait_for_log=True):
        """Start and wait until it serves: by its listening log line (which gives the port), or
        with wait_for_log=False by polling /healthz on the port REVOKD_LISTEN names."""
        # REVOKD_WRAPPER runs revokd under a tool, e.g. valgrind (see ./dev test).
        argv = shlex.split(os.environ.get("REVOKD_WRAPPER", "")) + [revokd_bin()]
        if "REVOKD_LISTEN" not in self.env and not any(a.startswith("--listen") for a in self.args):
            argv += ["--listen", f"{LOOPBACK}:0"]
        argv += self.args
        self.proc = _track(subprocess.Popen(argv, env=clean_env(self.env), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        self.readers = [threading.Thread(target=self._reader, args=(stream,), daemon=True)
                        for stream in (self.proc.stdout, self.proc.stderr)]
        for t in self.readers:
            t.start()
        if wait_for_log:
            listening = self.wait_for_event("listening", timeout)
            self.port = listening["port"]
            self.address = listening.get("address")
            return self
        self.port = int(self.env["REVOKD_LISTEN"].rsplit(":", 1)[1])

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise StartError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.healthz().status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StartError(f"{self.name} did not answer /healthz within {timeout}s:\n{self.log_text()}")
            time.sleep(0.05)

    def _reader(self, stream):
        for raw in stream:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for_event(self, event, timeout):
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    obj = _json_or_none(line)
                    if isinstance(obj, dict) and obj.get("event") == event:
                        return obj
                seen = len(self.lines)
                if self.proc.poll() is not None:
                    self.cond.wait(0.2)  # let the readers drain
                    raise StartError(f"{self.name} exited with {self.proc.returncode} before "
                                     f"logging {event!r}:\n{self.log_text()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StartError(f"{self.name} did not log {event!r} within {timeout}s:\n"
                                     f"{self.log_text()}")
                self.cond.wait(min(left, 0.1))

    def stop(self, grace=STOP_GRACE):
        if self.proc is None:
            return None
        was_running = self.proc.poll() is None
        code = stop_process(self.proc, grace)
        for t in getattr(self, "readers", ()):
            t.join(STOP_GRACE)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        # A running revokd must stop cleanly on SIGTERM: exit 0, no hang, and under
        # ASan no leak or error report (those change the exit status).
        if was_running and code != 0:
            raise AssertionError(f"{self.name} exited with {code} on SIGTERM:\n{self.log_text()}")
        return code

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, start=0):
        with self.cond:
            return "\n".join(self.lines[start:])

    def log_mark(self):
        with self.cond:
            return len(self.lines)

    def json_logs(self, start=0):
        with self.cond:
            return [_json_or_none(l) for l in self.lines[start:]]

    def request_logs(self, start=0):
        return [o for o in self.json_logs(start) if isinstance(o, dict) and o.get("event") == "request"]

    def wait_for_request_log(self, request_id, timeout=5.0):
        """The request log line with this request_id (it may be written just after the reply)."""
        return wait_until(lambda: next((o for o in self.request_logs()
                                        if o.get("request_id") == request_id), None),
                          timeout, what=f"request log {request_id}")

    # HTTP shorthands -----------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        return http_request(self.port, method, path, body, headers, timeout=timeout)

    def check(self, token, headers=None):
        h = {"Authorization": f"Bearer {token}"}
        h.update(headers or {})
        return self.request("GET", "/v1/check", headers=h)

    def check_post(self, token):
        return self.request("POST", "/v1/check", {"token": token})

    def lookup(self, **params):
        # RFC 3986 escapes: revokd reads '+' in a query as a plus sign, never as a space.
        return self.request("GET", "/v1/check?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote))

    def revoke(self, token):
        return self.request("POST", "/v1/revoke", {"token": token})

    def revoke_all(self, token):
        return self.request("POST", "/v1/revoke-all", headers={"Authorization": f"Bearer {token}"})

    def admin_revoke(self, admin_key, body):
        h = {"Authorization": f"Bearer {admin_key}"} if admin_key is not None else {}
        return self.request("POST", "/v1/admin/revoke", body, headers=h)

    def admin_revoke_all(self, admin_key, sub, body=None, quoted=False):
        h = {"Authorization": f"Bearer {admin_key}"} if admin_key is not None else {}
        seg = sub if quoted else urllib.parse.quote(sub, safe="")
        return self.request("POST", f"/v1/admin/subjects/{seg}/revoke-all", body, headers=h)

    def readyz(self):
        return self.request("GET", "/readyz")

    def healthz(self):
        return self.request("GET", "/healthz")


def _json_or_none(line):
    try:
        return json.loads(line)
    except ValueError:
        return None


def run_revokd(args=(), env=None, timeout=10):
    """Run revokd to completion (for --help, --key-name and config errors)."""
    return subprocess.run([revokd_bin(), *args], env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_revokectl(args, env=None, timeout=30):
    return subprocess.run([revokectl_bin(), *args], env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# Test base class

class RevokdTestCase(unittest.TestCase):
    """Per class: one redis-server, the standard keys in a JWKS file and (unless `class_daemon`
    is False) one revokd configured with `revokd_env`. Redis is flushed before each test.
    A failing test prints the log lines every revokd it used wrote during the test."""

    revokd_env = {}
    admin_keys = ()      # written to a keys file (with a comment and a blank line) when non-empty
    class_daemon = True

    @classmethod
    def setUpClass(cls):
        revokd_bin()
        revokectl_bin()
        cls.tmp = tempfile.mkdtemp(prefix="revokd-it-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.keys = standard_keys()
        cls.factory = KeyFactory(cls.tmp)
        cls.jwks_path = write_jwks(os.path.join(cls.tmp, "jwks.json"), standard_jwks())
        cls.admin_keys_path = None
        if cls.admin_keys:
            cls.admin_keys_path = write_admin_keys(os.path.join(cls.tmp, "admin-keys"), cls.admin_keys)
        cls.redis = RedisServer(cls.tmp).start()
        cls.addClassCleanup(cls.redis.stop)
        cls.revokd = None
        if cls.class_daemon:
            cls.revokd = Revokd(cls.base_env(cls.revokd_env), name=f"{cls.__name__} revokd")
            cls.addClassCleanup(cls.revokd.stop)
            cls.revokd.start()

    @classmethod
    def base_env(cls, overrides=None):
        # Tests send many wrong keys on purpose, all from 127.0.0.1: the limit on failed
        # authentication is lifted here and tested with its own settings (test_admin.py).
        env = {"REVOKD_REDIS_URL": cls.redis.url(), "REVOKD_JWKS_FILE": cls.jwks_path,
               "REVOKD_THREADS": "2", "REVOKD_LOG_LEVEL": "info", "REVOKD_AUTH_FAILURES_BURST": "100000"}
        if cls.admin_keys_path:
            env["REVOKD_ADMIN_KEYS_FILE"] = cls.admin_keys_path
        env.update(overrides or {})
        return {k: v for k, v in env.items() if v is not None}

    def start_revokd(self, env=None, args=(), defaults=True, name=None, wait_for_log=True):
        """A revokd for this test only (stopped at cleanup). env None-values drop a default."""
        full = self.base_env(env) if defaults else {k: v for k, v in (env or {}).items() if v is not None}
        d = Revokd(full, args, name=name or f"{self.id()} revokd")
        self._daemons.append((d, 0))
        self.addCleanup(d.stop)
        d.start(wait_for_log=wait_for_log)
        return d

    def setUp(self):
        if self.redis.proc.poll() is not None:  # a test that killed redis must not break the next
            self.redis.start(require_empty=False)
            if self.revokd is not None:
                self.wait_ready()
                # /readyz probes one worker's link for writes; a worker whose link for reads
                # still holds the killed server's connection finds it closed at its next check
                # (503, fail closed). Lookups on fresh connections reach every worker's.
                wait_until(lambda: all(self.revokd.lookup(jti="settle", iss="").status == 200 for _ in range(10)),
                           20, interval=0.2, what="every worker's reads to reach the new Redis")
        self.redis.flushall()

    def wait_ready(self, daemon=None, token=None, stable=10, timeout=20.0):
        """Poll (bounded) until /readyz, and /v1/check with `token` if given, succeed `stable`
        times in a row: after a store outage a worker may back off briefly before reconnecting,
        but the service must settle."""
        daemon = daemon or self.revokd

        def settled():
            for _ in range(stable):
                if daemon.readyz().status != 200:
                    return False
                if token is not None and daemon.check(token).status != 200:
                    return False
            return True
        wait_until(settled, timeout, interval=0.2, what=f"{daemon.name} to be ready")

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        self._daemons = []
        if getattr(self, "revokd", None) is not None:
            self._daemons.append((self.revokd, self.revokd.log_mark()))
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            time.sleep(0.3)  # request lines are written after the reply: let them arrive
            for d, mark in self._daemons:
                sys.stderr.write(f"\n----- log of {d.name} during {self.id()} -----\n")
                sys.stderr.write(d.log_text(mark) + "\n")
                sys.stderr.write("----- end of log -----\n")
            sys.stderr.flush()
        return out

    # Tokens ----------------------------------------------------------------------------------
    def mint(self, key=None, **kw):
        return mint(key or self.keys["rsa"], **kw)

    def craft(self, header=None, payload=None, key=None, **kw):
        key = key or self.keys["rsa"]
        if header is None:
            header = {"alg": key.alg, "typ": "JWT"}
            if key.kid:
                header["kid"] = key.kid
        return craft(header, payload if payload is not None else std_claims(), key, **kw)

    # Assertions ------------------------------------------------------------------------------
    def assertJsonResponse(self, resp, status):
        self.assertEqual(resp.status, status, resp)
        ctype = resp.header("Content-Type") or ""
        self.assertEqual(ctype.split(";")[0].strip().lower(), "application/json", resp.headers)
        self.assertTrue(resp.header("X-Request-Id"), f"no X-Request-Id: {resp.headers}")
        return resp.json()

    def assertError(self, resp, status, code):
        body = self.assertJsonResponse(resp, status)
        self.assertEqual(body.get("error"), code, body)
        self.assertIsInstance(body.get("error_description"), str, body)
        return body

    def assertTokenFailure(self, resp, reason):
        body = self.assertJsonResponse(resp, 401)
        self.assertIs(body.get("active"), False, body)
        self.assertEqual(body.get("reason"), reason, body)
        self.assertEqual(body.get("error"), "invalid_token", body)
        self.assertIsInstance(body.get("error_description"), str, body)
        www = resp.header("WWW-Authenticate") or ""
        self.assertTrue(www.startswith("Bearer "), f"WWW-Authenticate: {www!r}")
        self.assertIn('error="invalid_token"', www)
        self.assertIn("error_description=", www)
        return body

    def assertActive(self, resp, token=None):
        body = self.assertJsonResponse(resp, 200)
        self.assertIs(body.get("active"), True, body)
        if token is not None:
            _, claims, _ = jwt_parts(token)
            self.assertEqual(body.get("jti"), token_id(token), body)
            for name in ("sub", "iss"):
                if name in claims:
                    self.assertEqual(body.get(name), claims[name], body)
                else:
                    self.assertNotIn(name, body)
            for name in ("exp", "iat"):
                self.assertEqual(body.get(name), claims[name], body)
        return body


def main():
    unittest.main(verbosity=2)
