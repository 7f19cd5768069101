"""Integration-test helpers for the gateway examples in deploy/gateways/: render a config from its
placeholders, run nginx or Caddy with it on loopback, and a small upstream API that records what
reached it. Standard library only; every process is stopped by pid (harness.stop_process)."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

import harness
from harness import LOOPBACK

GATEWAYS_DIR = os.path.join(harness.REPO, "deploy", "gateways")
PLACEHOLDERS = ("LISTEN", "REVOKD", "UPSTREAM")

# The identity headers revokd's /v1/authz answers with, and the gateways pass upstream.
IDENTITY_HEADERS = ("X-Auth-Subject", "X-Auth-Token-Id", "X-Auth-Issuer", "X-Auth-Expires",
                    "X-Auth-Scope", "X-Auth-Client-Id")


def example_path(name):
    return os.path.join(GATEWAYS_DIR, name)


def render(name, directory, **ports):
    """deploy/gateways/<name> with its placeholders ({{LISTEN}}, {{REVOKD}}, {{UPSTREAM}}: the
    ones it has) replaced by `ports`, written to directory/<name>; none may be left over."""
    with open(example_path(name), encoding="utf-8") as f:
        text = f.read()
    for key, value in ports.items():
        if key not in PLACEHOLDERS:
            raise ValueError(f"no placeholder {key!r}; they are {PLACEHOLDERS}")
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise AssertionError(f"{name} has a placeholder left after rendering: "
                             f"{text[text.index('{{'):][:40]!r}")
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def wait_for_port(port, proc, timeout, name):
    """Until something accepts on LOOPBACK:port; StartFailed at once if `proc` exits."""
    def ready():
        if proc.poll() is not None:
            return "exited"
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return "listening"
    if harness.wait_until(ready, timeout, what=f"{name} to listen on {port}") == "exited":
        raise StartFailed(f"{name} exited with {proc.returncode}")


class StartFailed(RuntimeError):
    pass


def find_program(name, *fallbacks):
    """The path of `name` on PATH or among `fallbacks`; skips the test when there is none."""
    found = shutil.which(name) or next((p for p in fallbacks if os.access(p, os.X_OK)), None)
    if found is None:
        raise unittest.SkipTest(f"{name} is not installed (./dev test installs it)")
    return found


# ---------------------------------------------------------------------------------------------
# The upstream API

class Upstream:
    """An HTTP server on a free loopback port standing for the protected API: every request is
    recorded (method, path, headers as sent, body) and answered 200 with them as JSON."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = {"method": self.command, "path": self.path,
                        "headers": list(self.headers.items()), "body_length": len(body)}
                with recorder.lock:
                    recorder.requests.append(dict(seen, body=body))
                out = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(harness.STOP_GRACE)

    def count(self):
        with self.lock:
            return len(self.requests)

    def last(self):
        with self.lock:
            return self.requests[-1]


def header_values(recorded, name):
    """Every value of header `name` in a recorded request, matched as a framework would read it:
    case-insensitively and with '_' taken for '-' (X_Auth_Subject is X-Auth-Subject to CGI, WSGI
    and others)."""
    want = name.lower().replace("_", "-")
    return [v for k, v in recorded["headers"] if k.lower().replace("_", "-") == want]


# ---------------------------------------------------------------------------------------------
# Gateways

class Gateway:
    """A gateway process running a rendered example config, listening on `self.port`."""

    name = "gateway"

    def __init__(self, workdir, revokd_port, upstream_port):
        self.dir = tempfile.mkdtemp(prefix=self.name + "-", dir=workdir)
        self.port = harness.free_port()
        self.ports = {"LISTEN": self.port, "REVOKD": revokd_port, "UPSTREAM": upstream_port}
        self.proc = None
        self.log_path = os.path.join(self.dir, self.name + ".log")

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def _start(self, argv, env=None, timeout=harness.START_TIMEOUT):
        with open(self.log_path, "ab") as log:
            self.proc = harness._track(subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                                        stdout=log, stderr=log, cwd=self.dir))
        try:
            wait_for_port(self.port, self.proc, timeout, self.name)
        except (StartFailed, AssertionError) as e:
            self.stop()
            raise StartFailed(f"{e}:\n{self.log()}") from None
        return self

    def stop(self):
        harness.stop_process(self.proc)

    def request(self, method, path, body=None, headers=None):
        return harness.http_request(self.port, method, path, body, headers)


class Nginx(Gateway):
    """nginx with deploy/gateways/nginx.conf, which belongs inside http { }: a main config of
    the test's own includes it, with every path nginx writes inside the temporary directory."""

    name = "nginx"

    def __init__(self, workdir, revokd_port, upstream_port):
        super().__init__(workdir, revokd_port, upstream_port)
        self.binary = find_program("nginx", "/usr/sbin/nginx")
        site = render("nginx.conf", self.dir, **self.ports)
        temp = os.path.join(self.dir, "temp")
        os.mkdir(temp)
        self.conf = os.path.join(self.dir, "main.conf")
        with open(self.conf, "w", encoding="utf-8") as f:
            # As root, nginx's workers would run as nobody, who cannot enter the temporary
            # directory; they stay with the test's own user.
            f.write(("user root;\n" if os.geteuid() == 0 else "")
                    + "worker_processes 1;\n"
                    "events { worker_connections 256; }\n"
                    "http {\n"
                    f"    access_log {os.path.join(self.dir, 'access.log')};\n"
                    + "".join(f"    {kind}_temp_path {os.path.join(temp, kind)};\n"
                              for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                    + f"    include {site};\n"
                    "}\n")
        self.pid_path = os.path.join(self.dir, "nginx.pid")

    def argv(self, *extra):
        return [self.binary, "-e", "stderr", "-p", self.dir + "/", "-c", self.conf,
                "-g", f"pid {self.pid_path}; error_log stderr; daemon off;", *extra]

    def check(self):
        """nginx -t on the rendered configuration: (exit status, output)."""
        out = subprocess.run(self.argv("-t"), capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        return out.returncode, out.stdout + out.stderr

    def start(self):
        return self._start(self.argv())


class Caddy(Gateway):
    """caddy run with deploy/gateways/Caddyfile; HOME and the XDG directories (where Caddy keeps
    its data and an autosaved config) inside the temporary directory."""

    name = "caddy"

    def __init__(self, workdir, revokd_port, upstream_port):
        super().__init__(workdir, revokd_port, upstream_port)
        self.binary = find_program("caddy")
        self.caddyfile = render("Caddyfile", self.dir, **self.ports)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CADDY", "XDG_"))}
        for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")):
            self.env[var] = os.path.join(self.dir, sub)
            os.mkdir(self.env[var])

    def argv(self, command):
        return [self.binary, command, "--config", self.caddyfile, "--adapter", "caddyfile"]

    def check(self):
        """caddy validate on the rendered Caddyfile: (exit status, output)."""
        out = subprocess.run(self.argv("validate"), capture_output=True, text=True, timeout=30,
                             env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL)
        return out.returncode, out.stdout + out.stderr

    def adapt(self):
        """The JSON configuration Caddy makes of the rendered Caddyfile."""
        out = subprocess.run(self.argv("adapt"), capture_output=True, text=True, timeout=30,
                             env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise AssertionError(f"caddy adapt failed ({out.returncode}): {out.stderr[-2000:]}")
        return json.loads(out.stdout)

    def start(self):
        return self._start(self.argv("run"), env=self.env)

