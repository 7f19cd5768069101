"""Contract test: revokd and openapi.yaml describe the same service.

* `revokd --routes` lists exactly the operations (method, path) of openapi.yaml.
* A table of requests, sent to real revokd processes (full configuration; one without admin keys;
  one that needs a replica it does not have; one draining after SIGTERM; and the main one while
  Redis is stopped), produces every status openapi.yaml documents for every operation. Each
  response must have a documented status, a documented Content-Type (application/json everywhere
  but the text of GET /metrics and libmicrohttpd's HTML 431, which comes without any
  Content-Type), a body that validates against the documented schema (a text body as a string),
  and every required documented header (X-Request-Id, WWW-Authenticate on 401, Allow on 405,
  Connection on 431) with a value valid under the header's schema. Every answer but the HTML 431
  echoes a sane X-Request-Id and carries Cache-Control: no-store. At the end every documented
  (operation, status) pair must have been produced at least once.
* On every operation, a request head (request line, headers, empty line) just over
  REVOKD_MAX_TOKEN_BYTES + 1 KiB gets revokd's JSON 431 request_header_fields_too_large, and one
  beyond a connection's memory (REVOKD_MAX_TOKEN_BYTES + 2 KiB) libmicrohttpd's HTML 431; neither
  changes anything in Redis, and both close the connection. A head of exactly the limit, with a
  token over REVOKD_MAX_TOKEN_BYTES, gets 401 malformed.
* An unknown path answers 404 with a body valid under components/schemas/Error, error not_found.
* The document's own examples validate against their schemas.

The JSON Schema validator below is a deliberately small subset (what this document uses). It
refuses a keyword it does not implement instead of ignoring it, so a schema change cannot make
the test pass vacuously.
"""

import atexit
import base64
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import now, std_claims, token_id  # noqa: E402

SPEC_PATH = os.path.join(harness.REPO, "openapi.yaml")
ISS = "https://issuer.openapi.test"
AUD = "api.openapi.test"
ADMIN_KEY = "admin-key-openapi-0123456789abcdef"
MAX_BODY = 16384             # REVOKD_MAX_BODY_BYTES default
LEEWAY = harness.DEFAULT_LEEWAY
REDIS_TIMEOUT_MS = 300
REPLICATION_TIMEOUT_MS = 100
SHUTDOWN_GRACE_MS = 1500
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# /v1/authz takes any method; these are the ones the document describes, on both its paths.
AUTHZ_OPS = [(m, p) for p in ("/v1/authz", "/v1/authz/orders/42") for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]
JSON_CT = {"Content-Type": "application/json"}
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
# OAuth clients (REVOKD_CLIENTS_FILE): web may revoke its own tokens; ops may revoke any and
# revoke subjects globally.
WEB = ("web", "web-secret-openapi-0123")
OPS = ("ops", "ops-secret-openapi-0123")
CLIENTS_DIR = tempfile.mkdtemp(prefix="revokd-openapi-clients-")
atexit.register(shutil.rmtree, CLIENTS_DIR, True)
CLIENTS_FILE = os.path.join(CLIENTS_DIR, "clients")
with open(CLIENTS_FILE, "w", encoding="utf-8") as _f:
    _f.write(f"{WEB[0]}:{WEB[1]}\n{OPS[0]}:{OPS[1]}:revoke_any,global_revocation\n")
# A feed key (REVOKD_FEED_KEYS_FILE): reads GET /v1/events and nothing else.
FEED_KEY = "feed-key-openapi-0123456789abcdef"
FEED_KEYS_FILE = os.path.join(CLIENTS_DIR, "feed-keys")
with open(FEED_KEYS_FILE, "w", encoding="utf-8") as _f:
    _f.write(f"edge:{FEED_KEY}\n")


def basic(client):
    """HTTP Basic for an OAuth client (id and secret form-urlencoded first, RFC 6749 2.3.1)."""
    raw = f"{urllib.parse.quote_plus(client[0])}:{urllib.parse.quote_plus(client[1])}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
MAX_TOKEN = 8192             # REVOKD_MAX_TOKEN_BYTES default
HEAD_LIMIT = MAX_TOKEN + 1024  # the longest head revokd takes; one byte more is its JSON 431
HEAD_JSON = 9400             # the head size sent for the JSON 431: over HEAD_LIMIT, yet well short
                             # of where libmicrohttpd has no room left for the answer (~9,650
                             # bytes with the six header lines these requests have at most)
HEAD_OVER = 12000            # a header value that takes the head past MAX_TOKEN + 2 KiB: HTML 431
HEAD_FITS = 9000             # over MAX_TOKEN, yet the head fits: revokd answers


# ---------------------------------------------------------------------------------------------
# A small JSON Schema (2020-12 subset) validator

class UnsupportedSchema(Exception):
    """The schema uses something this validator does not implement."""


def _canon(value):
    """A hashable form in which JSON equality is Python equality (True != 1, 1 == 1.0)."""
    if isinstance(value, bool):
        return ("bool", value)
    if value is None:
        return ("null",)
    if isinstance(value, (int, float)):
        return ("num", value)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, list):
        return ("arr", tuple(_canon(v) for v in value))
    if isinstance(value, dict):
        return ("obj", tuple(sorted((k, _canon(v)) for k, v in value.items())))
    raise UnsupportedSchema(f"not a JSON value: {value!r}")


def _is_type(value, name):
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
               (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    raise UnsupportedSchema(f"unknown type {name!r}")


class SchemaValidator:
    # Keywords that assert nothing.
    ANNOTATIONS = frozenset({"description", "title", "examples", "example", "format", "default",
                             "deprecated", "readOnly", "writeOnly", "$comment"})

    def __init__(self, document):
        self.document = document

    def resolve(self, ref):
        """The node a local reference (#/a/b/c) points at."""
        if not ref.startswith("#/"):
            raise UnsupportedSchema(f"only local references are supported: {ref!r}")
        node = self.document
        for part in ref[2:].split("/"):
            part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise UnsupportedSchema(f"unresolvable $ref {ref!r}")
            node = node[part]
        return node

    def deref(self, node):
        """Follows $ref chains of non-schema objects (responses, headers, parameters)."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise UnsupportedSchema(f"$ref cycle at {ref!r}")
            seen.add(ref)
            node = self.resolve(ref)
        return node

    def errors(self, instance, schema, where="$"):
        """Every way `instance` fails `schema`, as "location: problem" strings."""
        if schema is True:
            return []
        if schema is False:
            return [f"{where}: no value is allowed here"]
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"{where}: schema is not an object: {schema!r}")
        out = []
        for key, arg in schema.items():
            if key in self.ANNOTATIONS:
                continue
            handler = getattr(self, "_kw_" + key.lstrip("$"), None)
            if handler is None:
                raise UnsupportedSchema(f"{where}: keyword {key!r} is not implemented")
            out += handler(instance, arg, schema, where)
        return out

    def valid(self, instance, schema):
        return not self.errors(instance, schema)

    # Keywords --------------------------------------------------------------------------------
    def _kw_ref(self, inst, ref, schema, where):
        return self.errors(inst, self.resolve(ref), where)

    def _kw_type(self, inst, types, schema, where):
        names = types if isinstance(types, list) else [types]
        if any(_is_type(inst, t) for t in names):
            return []
        return [f"{where}: {json.dumps(inst)[:80]} is not of type {'/'.join(names)}"]

    def _kw_const(self, inst, value, schema, where):
        if _canon(inst) == _canon(value):
            return []
        return [f"{where}: {json.dumps(inst)[:80]} is not the constant {json.dumps(value)}"]

    def _kw_enum(self, inst, values, schema, where):
        if any(_canon(inst) == _canon(v) for v in values):
            return []
        return [f"{where}: {json.dumps(inst)[:80]} is not one of {json.dumps(values)}"]

    def _kw_required(self, inst, names, schema, where):
        if not isinstance(inst, dict):
            return []
        return [f"{where}: required member {n!r} is missing" for n in names if n not in inst]

    def _kw_properties(self, inst, props, schema, where):
        if not isinstance(inst, dict):
            return []
        out = []
        for name, sub in props.items():
            if name in inst:
                out += self.errors(inst[name], sub, f"{where}.{name}")
        return out

    def _kw_additionalProperties(self, inst, sub, schema, where):
        if not isinstance(inst, dict):
            return []
        if "patternProperties" in schema:
            raise UnsupportedSchema(f"{where}: patternProperties is not implemented")
        known = schema.get("properties", {})
        out = []
        for name, value in inst.items():
            if name in known:
                continue
            if sub is False:
                out.append(f"{where}: member {name!r} is not allowed (additionalProperties: false)")
            else:
                out += self.errors(value, sub, f"{where}.{name}")
        return out

    def _kw_minProperties(self, inst, n, schema, where):
        if isinstance(inst, dict) and len(inst) < n:
            return [f"{where}: {len(inst)} members, fewer than minProperties {n}"]
        return []

    def _kw_maxProperties(self, inst, n, schema, where):
        if isinstance(inst, dict) and len(inst) > n:
            return [f"{where}: {len(inst)} members, more than maxProperties {n}"]
        return []

    def _kw_items(self, inst, sub, schema, where):
        if not isinstance(inst, list):
            return []
        if isinstance(sub, list):
            raise UnsupportedSchema(f"{where}: array-form items is not 2020-12")
        out = []
        for i, value in enumerate(inst):
            out += self.errors(value, sub, f"{where}[{i}]")
        return out

    def _kw_minItems(self, inst, n, schema, where):
        if isinstance(inst, list) and len(inst) < n:
            return [f"{where}: {len(inst)} items, fewer than minItems {n}"]
        return []

    def _kw_maxItems(self, inst, n, schema, where):
        if isinstance(inst, list) and len(inst) > n:
            return [f"{where}: {len(inst)} items, more than maxItems {n}"]
        return []

    def _kw_allOf(self, inst, subs, schema, where):
        out = []
        for i, sub in enumerate(subs):
            out += [f"{e} (allOf[{i}])" for e in self.errors(inst, sub, where)]
        return out

    def _kw_anyOf(self, inst, subs, schema, where):
        found = [self.errors(inst, sub, where) for sub in subs]
        if any(not e for e in found):
            return []
        detail = "; ".join(f"[{i}] " + ", ".join(e) for i, e in enumerate(found))
        return [f"{where}: matches none of anyOf ({detail})"]

    def _kw_oneOf(self, inst, subs, schema, where):
        found = [self.errors(inst, sub, where) for sub in subs]
        matched = [i for i, e in enumerate(found) if not e]
        if len(matched) == 1:
            return []
        if not matched:
            detail = "; ".join(f"[{i}] " + ", ".join(e) for i, e in enumerate(found))
            return [f"{where}: matches none of oneOf ({detail})"]
        return [f"{where}: matches more than one of oneOf (branches {matched})"]

    def _kw_not(self, inst, sub, schema, where):
        return [f"{where}: matches a schema under 'not'"] if not self.errors(inst, sub, where) else []

    def _kw_minLength(self, inst, n, schema, where):
        if isinstance(inst, str) and len(inst) < n:
            return [f"{where}: length {len(inst)} is below minLength {n}"]
        return []

    def _kw_maxLength(self, inst, n, schema, where):
        if isinstance(inst, str) and len(inst) > n:
            return [f"{where}: length {len(inst)} is above maxLength {n}"]
        return []

    def _kw_pattern(self, inst, pattern, schema, where):
        if isinstance(inst, str) and re.search(pattern, inst) is None:
            return [f"{where}: {inst[:80]!r} does not match pattern {pattern!r}"]
        return []

    def _number_kw(op, text):
        def check(self, inst, bound, schema, where):
            if _is_type(inst, "number") and not op(inst, bound):
                return [f"{where}: {inst} is not {text} {bound}"]
            return []
        return check

    _kw_minimum = _number_kw(lambda v, b: v >= b, ">=")
    _kw_maximum = _number_kw(lambda v, b: v <= b, "<=")
    _kw_exclusiveMinimum = _number_kw(lambda v, b: v > b, ">")
    _kw_exclusiveMaximum = _number_kw(lambda v, b: v < b, "<")
    del _number_kw


# ---------------------------------------------------------------------------------------------
# The document

class Spec:
    def __init__(self, path=SPEC_PATH):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.v = SchemaValidator(self.doc)
        self.ops = {}        # (METHOD, template) -> operation object
        self.templates = {}  # template -> compiled regex of the path
        for template, item in self.doc["paths"].items():
            parts = re.split(r"(\{[^/{}]+\})", template)
            # {path} (the gateway's original path, /v1/authz/{path}) may hold '/'.
            rx = "".join((".*" if p == "{path}" else "[^/]+") if p.startswith("{") else re.escape(p)
                         for p in parts)
            self.templates[template] = re.compile(rx + r"\Z")
            for m in HTTP_METHODS:
                if m in item:
                    self.ops[(m.upper(), template)] = item[m]

    def template_for(self, path):
        matches = [t for t, rx in self.templates.items() if rx.match(path)]
        return matches[0] if matches else None

    def methods_of(self, template):
        return {m for (m, t) in self.ops if t == template}

    def responses(self, op):
        return {str(code): self.v.deref(r) for code, r in self.ops[op].get("responses", {}).items()}

    def documented_pairs(self):
        return {(op, code) for op in self.ops for code in self.responses(op)}

    def label(self, op):
        return f"{op[0]} {op[1]} ({self.ops[op].get('operationId', '?')})"


SPEC = Spec()


def _request_id_ok(value):
    return re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value or "") is not None


# ---------------------------------------------------------------------------------------------
# Tests

class ValidatorSelfTest(unittest.TestCase):
    """The validator catches what the contract relies on it to catch."""

    def test_subset(self):
        v = SPEC.v
        err = {"$ref": "#/components/schemas/Error"}
        self.assertTrue(v.valid({"error": "not_found", "error_description": "x"}, err))
        self.assertFalse(v.valid({"error": "not_found"}, err))                       # required
        self.assertFalse(v.valid({"error": "nope", "error_description": "x"}, err))  # enum
        self.assertFalse(v.valid({"error": "not_found", "error_description": "x", "x": 1}, err))
        self.assertFalse(v.valid({"error": "not_found", "error_description": 5}, err))
        bad_request = {"$ref": "#/components/schemas/InvalidRequestError"}
        self.assertTrue(v.valid({"error": "invalid_request", "error_description": ""}, bad_request))
        self.assertFalse(v.valid({"error": "not_found", "error_description": ""}, bad_request))
        tf = {"$ref": "#/components/schemas/TokenFailure"}
        base = {"active": False, "reason": "revoked", "error": "invalid_token", "error_description": "d"}
        self.assertTrue(v.valid(base, tf))
        self.assertFalse(v.valid(dict(base, active=0), tf))          # const false is not 0
        self.assertFalse(v.valid(dict(base, jti=""), tf))            # minLength via $ref
        self.assertFalse(v.valid(dict(base, jti="j" * 257), tf))     # maxLength
        self.assertTrue(v.valid(dict(base, jti="j" * 256), tf))
        check200 = SPEC.responses(("GET", "/v1/check"))["200"]["content"]["application/json"]["schema"]
        self.assertTrue(v.valid({"active": True, "jti": "j", "exp": 2, "iat": 1}, check200))
        self.assertTrue(v.valid({"active": True, "sub": "s"}, check200))
        self.assertFalse(v.valid({"active": True}, check200))                 # minProperties
        self.assertFalse(v.valid({"active": True, "jti": "j", "exp": 2.5, "iat": 1}, check200))
        self.assertFalse(v.valid({"active": True, "jti": "j", "exp": True, "iat": 1}, check200))
        self.assertFalse(v.valid({"active": True, "jti": "j", "sub": "s", "exp": 1}, check200))
        both = {"oneOf": [{"type": "object"}, {"required": ["a"]}]}
        self.assertFalse(v.valid({"a": 1}, both))                              # oneOf: two match
        self.assertTrue(v.valid({"a": 1}, {"anyOf": [{"type": "object"}, {"required": ["a"]}]}))
        self.assertTrue(v.valid(None, {"type": ["string", "null"]}))
        self.assertFalse(v.valid(3, {"type": ["string", "null"]}))
        self.assertFalse(v.valid(-1, {"type": "integer", "minimum": 0}))
        self.assertFalse(v.valid(11, {"maximum": 10}))
        self.assertFalse(v.valid([1, "x"], {"items": {"type": "integer"}}))
        www = v.deref(SPEC.doc["components"]["headers"]["WWW-Authenticate-Token"])["schema"]
        self.assertTrue(v.valid('Bearer error="invalid_token", error_description="x"', www))
        self.assertFalse(v.valid('Bearer realm="x"', www))
        with self.assertRaises(UnsupportedSchema):
            v.errors("x", {"if": {"type": "string"}})


class DocumentTest(unittest.TestCase):

    def test_examples_validate_against_their_schemas(self):
        """Every example in the document is valid under the schema it illustrates."""
        v, problems, count = SPEC.v, [], 0

        def check(where, value, schema):
            nonlocal count
            count += 1
            problems.extend(f"{where}: {e}" for e in v.errors(value, schema))

        def media_examples(where, media):
            schema = media.get("schema")
            if schema is None:
                return
            if "example" in media:
                check(f"{where} example", media["example"], schema)
            for name, ex in media.get("examples", {}).items():
                ex = v.deref(ex)
                if "value" in ex:
                    check(f"{where} examples.{name}", ex["value"], schema)

        for name, schema in SPEC.doc["components"]["schemas"].items():
            for i, ex in enumerate(schema.get("examples", [])):
                check(f"components/schemas/{name} examples[{i}]", ex, {"$ref": f"#/components/schemas/{name}"})
        for name, header in SPEC.doc["components"]["headers"].items():
            if "example" in header:
                check(f"components/headers/{name} example", header["example"], header["schema"])
            for ex_name, ex in header.get("examples", {}).items():
                check(f"components/headers/{name} examples.{ex_name}", ex["value"], header["schema"])
        for name, param in SPEC.doc["components"]["parameters"].items():
            if "example" in param:
                check(f"components/parameters/{name} example", param["example"], param["schema"])
        for name, resp in SPEC.doc["components"]["responses"].items():
            for ctype, media in resp.get("content", {}).items():
                media_examples(f"components/responses/{name}", media)
        for op, operation in SPEC.ops.items():
            label = SPEC.label(op)
            body = v.deref(operation.get("requestBody", {}))
            for ctype, media in body.get("content", {}).items():
                media_examples(f"{label} requestBody", media)
            for code, resp in operation.get("responses", {}).items():
                if "$ref" in resp:
                    continue  # checked once under components/responses
                for ctype, media in resp.get("content", {}).items():
                    media_examples(f"{label} {code}", media)
        self.assertGreater(count, 20)
        if problems:
            self.fail(f"{len(problems)} example(s) do not validate:\n  " + "\n  ".join(problems))


class OpenApiContractTest(harness.RevokdTestCase):
    revokd_env = {"REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD,
                  "REVOKD_REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS), "REVOKD_CLIENTS_FILE": CLIENTS_FILE,
                  "REVOKD_FEED_KEYS_FILE": FEED_KEYS_FILE}
    admin_keys = (ADMIN_KEY,)

    def setUp(self):
        super().setUp()
        self.problems = []
        self.produced = set()   # ((METHOD, template), status)
        self.counter = 0

    def assertNoProblems(self):
        if self.problems:
            self.fail(f"{len(self.problems)} contract violation(s):\n  " + "\n  ".join(self.problems))

    # The core check --------------------------------------------------------------------------
    def conform(self, what, method, url, resp):
        """Holds one response to the document; records problems and the pairs it produced."""
        v = SPEC.v
        path = urllib.parse.urlsplit(url).path
        template = SPEC.template_for(path)
        status = str(resp.status)
        where = f"{what} [{method} {url[:90]} -> {status}]"
        if template is None:
            self.problems.append(f"{where}: path is not in openapi.yaml")
            return
        if (method, template) in SPEC.ops:
            ops = [(method, template)]
        elif resp.status == 405:
            ops = sorted(op for op in SPEC.ops if op[1] == template)  # 405 is documented per operation
        else:
            self.problems.append(f"{where}: {template} has no {method} operation, yet the answer is "
                                 f"{status}, not 405")
            return
        ctype = resp.header("Content-Type")
        mtype = (ctype or "").split(";")[0].strip().lower()
        # The body as its media type says: JSON parsed, text decoded.
        body = None
        if mtype == "application/json":
            try:
                body = json.loads(resp.body)
            except ValueError:
                self.problems.append(f"{where}: body is not JSON: {resp.body[:200]!r}")
        else:
            try:
                body = resp.body.decode("utf-8")
            except UnicodeDecodeError:
                self.problems.append(f"{where}: {ctype!r} body is not UTF-8: {resp.body[:200]!r}")
        documented = False
        for op in ops:
            responses = SPEC.responses(op)
            if status not in responses:
                self.problems.append(f"{where}: status {status} is not documented for {SPEC.label(op)} "
                                     f"(documented: {', '.join(sorted(responses))}); body {resp.body[:200]!r}")
                continue
            documented = True
            self.produced.add((op, status))
            doc = responses[status]
            media = doc.get("content", {}).get(mtype)
            if media is None and status == "431" and ctype is None:
                # libmicrohttpd's own 431 is an HTML page sent without any Content-Type.
                media = doc.get("content", {}).get("text/html")
            if media is None and not doc.get("content") and ctype is None and resp.body == b"":
                pass  # documented without a body (204), and none came
            elif media is None:
                self.problems.append(f"{where}: Content-Type is {ctype!r}; {SPEC.label(op)} {status} "
                                     f"documents {', '.join(sorted(doc.get('content', {}))) or 'no body'}")
            elif body is not None and "schema" in media:
                for e in v.errors(body, media["schema"]):
                    self.problems.append(f"{where}: {SPEC.label(op)} {status} body: {e}; "
                                         f"body {str(body)[:300]}")
            for name, header in doc.get("headers", {}).items():
                header = v.deref(header)
                value = resp.header(name)
                if value is None:
                    if header.get("required"):
                        self.problems.append(f"{where}: {SPEC.label(op)} {status}: required header "
                                             f"{name} is missing")
                    continue
                for e in v.errors(value, header.get("schema", True), f"header {name}"):
                    self.problems.append(f"{where}: {SPEC.label(op)} {status}: {e}")
        if not documented and mtype != "application/json":
            # The generic answers are JSON whatever the path.
            self.problems.append(f"{where}: Content-Type is {ctype!r}, not application/json")
        if resp.status == 405:
            allow = {m.strip().upper() for m in (resp.header("Allow") or "").split(",") if m.strip()}
            if allow != SPEC.methods_of(template):
                self.problems.append(f"{where}: Allow {resp.header('Allow')!r} differs from the methods "
                                     f"openapi.yaml lists for {template}: {sorted(SPEC.methods_of(template))}")

    def call(self, what, method, url, body=None, headers=None, expect=None, code=None, want=None,
             daemon=None, request_id=True, raw=False):
        """Sends one request and holds the answer to the document.

        expect: the status this request is meant to produce; code: the `error` (or, for a token
        failure, `reason`) it is meant to carry; want: members the body must have (a mismatch is a
        problem too, but the contract checks run on whatever came back). raw: send through
        harness.raw_exchange, which reads while it sends (for an answer that comes, and a
        connection that closes, before the whole request has been read)."""
        daemon = daemon or self.revokd
        headers = dict(headers or {})
        rid = None
        if request_id is True:
            self.counter += 1
            rid = headers["X-Request-Id"] = f"oa-{self.counter}"
        elif request_id is not None:
            headers["X-Request-Id"] = request_id
            if _request_id_ok(request_id):
                rid = request_id
        try:
            if raw:
                data = self.raw_request(daemon, method, url, body, headers)
                resp, err = harness.raw_exchange(daemon.port, data)
                if resp is None:
                    raise err or ConnectionError("connection closed without an answer")
            else:
                resp = daemon.request(method, url, body, headers)
        except OSError as e:
            self.problems.append(f"{what} [{method} {url[:90]}]: no answer ({e!r})")
            return None, None
        self.conform(what, method, url, resp)
        where = f"{what} [{method} {url[:90]} -> {resp.status}]"
        got_rid = resp.header("X-Request-Id")
        if self.library_431(resp):
            # libmicrohttpd answers before revokd sees the request: no request id, no cache policy.
            for name in ("X-Request-Id", "Cache-Control"):
                if resp.header(name) is not None:
                    self.problems.append(f"{where}: libmicrohttpd's HTML 431 has {name}: {resp.header(name)!r}")
        else:
            if rid is not None and got_rid != rid:
                self.problems.append(f"{where}: sane X-Request-Id {rid!r} was not echoed (got {got_rid!r})")
            if resp.header("Cache-Control") != "no-store":
                self.problems.append(f"{where}: Cache-Control is {resp.header('Cache-Control')!r}, "
                                     "not 'no-store'")
        if request_id not in (True, None) and not _request_id_ok(request_id) and got_rid == request_id:
            self.problems.append(f"{where}: insane X-Request-Id {request_id!r} was echoed")
        if got_rid is not None and not _request_id_ok(got_rid):
            self.problems.append(f"{where}: X-Request-Id {got_rid!r} is not [A-Za-z0-9._-]{{1,64}}")
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        if expect is not None and resp.status != expect:
            self.problems.append(f"{where}: meant to produce {expect}, got {resp.status} {resp.body[:200]!r}")
        elif code is not None and isinstance(parsed, dict):
            got = parsed.get("reason", parsed.get("error"))
            if got != code:
                self.problems.append(f"{where}: meant to produce {code!r}, got {got!r}")
        for k, value in (want or {}).items():
            if not isinstance(parsed, dict) or parsed.get(k) != value:
                self.problems.append(f"{where}: body member {k!r} should be {value!r}; body {parsed}")
        return resp, parsed

    @staticmethod
    def library_431(resp):
        """libmicrohttpd's own 431: sent without any Content-Type (revokd's is JSON)."""
        return resp.status == 431 and resp.header("Content-Type") is None

    @staticmethod
    def raw_request(daemon, method, url, body, headers):
        """The bytes harness.http_request would send, as one buffer."""
        headers = dict(headers)
        if body is not None and not isinstance(body, (bytes, str)):
            body = harness.compact_json(body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        head = [f"{method} {url} HTTP/1.1", f"Host: {harness.LOOPBACK}:{daemon.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")

    # Tokens ----------------------------------------------------------------------------------
    def tok(self, key="rsa", **kw):
        kw.setdefault("iss", ISS)
        kw.setdefault("aud", AUD)
        kw.setdefault("ttl", 600)
        return self.mint(self.keys[key], **kw)

    def crafted(self, key=None, header=None, **claims):
        claims.setdefault("iss", ISS)
        claims.setdefault("aud", AUD)
        return self.craft(header=header, payload=std_claims(**claims), key=key)

    # Tests -----------------------------------------------------------------------------------
    def test_routes_match_document(self):
        out = harness.run_revokd(["--routes"])
        self.assertEqual(out.returncode, 0, out.stderr)
        routes = set()
        for line in out.stdout.splitlines():
            if line.strip():
                method, _, path = line.strip().partition(" ")
                # "*": any method; the document lists the ones it describes for that path.
                methods = SPEC.methods_of(path.strip()) if method == "*" else {method}
                routes.update((m, path.strip()) for m in methods or {method})
        documented = set(SPEC.ops)
        self.assertEqual(routes, documented,
                         f"only in revokd --routes: {sorted(routes - documented)}; "
                         f"only in openapi.yaml: {sorted(documented - routes)}")

    def test_unknown_path_is_404_error(self):
        err = {"$ref": "#/components/schemas/Error"}
        for method, path, body in (("GET", "/", None), ("GET", "/nope", None), ("GET", "/v1/checks", None),
                                   ("POST", "/v1/revoke/extra", {"token": "x"}), ("GET", "/v2/check", None),
                                   ("POST", "/v1/admin/subjects/alice/revoke", None),
                                   ("GET", "/healthz/", None)):
            with self.subTest(method=method, path=path):
                self.assertIsNone(SPEC.template_for(path))
                resp = self.revokd.request(method, path, body, {"X-Request-Id": "oa-404"})
                self.assertEqual(resp.status, 404, resp)
                ctype = resp.header("Content-Type") or ""
                self.assertEqual(ctype.split(";")[0].strip().lower(), "application/json", ctype)
                self.assertEqual(resp.header("X-Request-Id"), "oa-404")
                body = resp.json()
                self.assertEqual(SPEC.v.errors(body, err), [])
                self.assertEqual(body["error"], "not_found", body)

    def test_generic_errors_stay_within_documented_statuses(self):
        """The generic 400/413/415 answers on paths and methods whose operations do not list them."""
        call = self.call
        call("GET /v1/check with a text/plain body", "GET", "/v1/check", "hello", {"Content-Type": "text/plain"})
        call("GET /healthz with a text/plain body", "GET", "/healthz", "hello", {"Content-Type": "text/plain"})
        call("GET /readyz with an oversized body", "GET", "/readyz", b"{" + b" " * MAX_BODY + b"}", JSON_CT)
        call("GET admin revoke-all path with bad percent-encoding", "GET", "/v1/admin/subjects/%zz/revoke-all")
        self.assertNoProblems()

    def test_schema_valid_requests_are_not_refused(self):
        """Bodies valid under the documented request schemas are not answered 400."""
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        t = now()
        cases = (
            ("/v1/admin/revoke", "AdminRevokeRequest", {"jti": "j" * 256, "exp": t + 60, "iss": "i" * 256,
                                                        "reason": "r" * 256}),
            ("/v1/admin/subjects/s1/revoke-all", "AdminRevokeAllRequest", {"reason": "r" * 256, "iss": "i" * 256}),
            ("/v1/admin/subjects/s3/revoke-all", "AdminRevokeAllRequest", {}),
        )
        for path, schema, body in cases:
            errors = SPEC.v.errors(body, {"$ref": f"#/components/schemas/{schema}"})
            self.assertEqual(errors, [], f"test bug: {body} is not a valid {schema}")
            self.call(f"valid {schema} {json.dumps(body)[:60]}", "POST", path, body, admin, expect=200)
        self.assertNoProblems()

    def test_head_too_large_is_431(self):
        """Every operation answers both forms of 431: revokd's JSON one to a head just over
        REVOKD_MAX_TOKEN_BYTES + 1 KiB, libmicrohttpd's HTML one to a head beyond a connection's
        memory; and either closes the connection, even one the client keeps alive."""
        forms = self.head_too_large_requests()
        for op in sorted(SPEC.ops):
            if "431" not in SPEC.responses(op):
                continue
            for form in ("json", "html"):
                if form not in forms.get(op, ()):
                    self.problems.append(f"never produced: {SPEC.label(op)} 431 {form}")
        for form, value in (("json", "p" * (HEAD_JSON - 100)), ("html", "p" * HEAD_OVER)):
            request = (f"GET /healthz HTTP/1.1\r\nHost: {harness.LOOPBACK}\r\nX-Pad: {value}\r\n"
                       "\r\n").encode()
            if form == "json":
                self.assertTrue(HEAD_LIMIT < len(request) < HEAD_JSON + 100, len(request))
            data, closed = b"", False
            with socket.create_connection((harness.LOOPBACK, self.revokd.port), timeout=5) as sock:
                sock.sendall(request)
                try:
                    while True:
                        chunk = sock.recv(65536)
                        if not chunk:
                            closed = True
                            break
                        data += chunk
                except ConnectionResetError:
                    closed = True      # unread request bytes make the close a reset
                except socket.timeout:
                    pass
            self.assertTrue(data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
                            f"{form}: {data[:300]!r}")
            self.assertEqual(b"application/json" in data, form == "json", f"{form}: {data[:600]!r}")
            self.assertEqual(data.count(b"HTTP/1.1 "), 1, f"{form}: {data[:600]!r}")
            self.assertTrue(closed, f"{form}: the connection stayed open after {data[:300]!r}")
        self.assertNoProblems()

    def test_every_documented_status(self):
        try:
            self.main_daemon_requests()
            self.head_too_large_requests()
            self.admin_disabled_requests()
            self.auth_limited_requests()
            self.not_replicated_requests()
            self.store_down_requests()
            self.shutting_down_requests()
            self.edge_requests()
        finally:
            if self.redis.proc.poll() is not None:
                self.redis.start(require_empty=False)
                self.wait_ready()
            self.redis.command("CONFIG", "SET", "min-replicas-to-write", "0")
        missing = sorted(SPEC.documented_pairs() - self.produced)
        report = list(self.problems)
        report += [f"never produced: {SPEC.label(op)} {status}" for op, status in missing]
        if report:
            self.fail(f"{len(self.problems)} contract violation(s), {len(missing)} documented "
                      "(operation, status) pair(s) never produced:\n  " + "\n  ".join(report))

    # Phases ----------------------------------------------------------------------------------
    def main_daemon_requests(self):
        call, t = self.call, now()
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        big = b'{"token":"' + b"x" * (MAX_BODY + 1) + b'"}'
        bad_sig = self.craft(header={"alg": "RS256", "kid": "rsa-1", "typ": "JWT"},
                             payload=std_claims(iss=ISS, aud=AUD), key=self.keys["rsa2"], alg="RS256")
        expired = self.crafted(iat=t - 1000, exp=t - 100)
        unknown_kid = self.crafted(header={"alg": "RS256", "kid": "no-such-kid", "typ": "JWT"},
                                   key=self.keys["rsa"])

        # GET /v1/check, bearer mode.
        rsa = self.tok(sub="alice")
        call("bearer RSA token", "GET", "/v1/check", headers={"Authorization": f"Bearer {rsa}"},
             expect=200, want={"active": True, "jti": token_id(rsa), "sub": "alice", "iss": ISS})
        hs = self.tok("hs", sub="hs-user")
        call("bearer HS256 token", "GET", "/v1/check", headers={"Authorization": f"Bearer {hs}"},
             expect=200, want={"jti": token_id(hs)})
        nojti = self.tok(sub="nojti-user", no_jti=True)
        call("bearer token without jti", "GET", "/v1/check", headers={"Authorization": f"Bearer {nojti}"},
             expect=200, want={"jti": token_id(nojti)})
        call("no Authorization", "GET", "/v1/check", expect=401, code="missing_token")
        call("Basic scheme", "GET", "/v1/check", headers={"Authorization": "Basic dXNlcjpwYXNz"},
             expect=401, code="missing_token")
        call("wrong signature", "GET", "/v1/check", headers={"Authorization": f"Bearer {bad_sig}"},
             expect=401, code="invalid_signature")
        call("expired", "GET", "/v1/check", headers={"Authorization": f"Bearer {expired}"},
             expect=401, code="expired")
        call("wrong audience", "GET", "/v1/check",
             headers={"Authorization": f"Bearer {self.crafted(aud='other')}"}, expect=401,
             code="invalid_audience")
        call("wrong issuer", "GET", "/v1/check",
             headers={"Authorization": f"Bearer {self.crafted(iss='https://other.test')}"}, expect=401,
             code="invalid_issuer")
        call("malformed", "GET", "/v1/check", headers={"Authorization": "Bearer a.b"}, expect=401,
             code="malformed")
        # GET /v1/check, lookup mode.
        call("lookup jti", "GET", "/v1/check?jti=never-revoked", expect=200,
             want={"active": True, "jti": "never-revoked"})
        call("lookup jti+sub+iat", "GET", f"/v1/check?jti=j1&sub=nobody&iat={t}&iss=x", expect=200,
             want={"jti": "j1", "sub": "nobody"})
        call("lookup sub without iat", "GET", "/v1/check?sub=alice", expect=400, code="invalid_request")
        call("lookup negative iat", "GET", "/v1/check?sub=alice&iat=-1", expect=400, code="invalid_request")
        call("lookup non-integer iat", "GET", "/v1/check?sub=alice&iat=12x", expect=400,
             code="invalid_request")
        call("lookup empty jti", "GET", "/v1/check?jti=", expect=400, code="invalid_request")
        call("lookup 257-byte jti", "GET", "/v1/check?jti=" + "j" * 257, expect=400, code="invalid_request")
        call("lookup empty iss (the tokens without iss)", "GET", "/v1/check?jti=x&iss=", expect=200)
        # 405 on /v1/check counts for both of its operations.
        call("DELETE /v1/check", "DELETE", "/v1/check", expect=405, code="method_not_allowed")
        call("PUT /v1/check", "PUT", "/v1/check", {"token": rsa}, expect=405, code="method_not_allowed")

        # POST /v1/check.
        call("body token", "POST", "/v1/check", {"token": rsa}, expect=200, want={"jti": token_id(rsa)})
        call("body token, charset", "POST", "/v1/check", json.dumps({"token": hs}),
             {"Content-Type": "application/json; charset=utf-8"}, expect=200)
        for label, raw in (("not JSON", b"{"), ("array", b"[]"), ("token number", b'{"token":5}'),
                           ("no token", b"{}")):
            call(f"check body {label}", "POST", "/v1/check", raw, JSON_CT, expect=400, code="invalid_request")
        call("body token malformed", "POST", "/v1/check", {"token": "x.y.z"}, expect=401, code="malformed")
        call("body token unknown kid", "POST", "/v1/check", {"token": unknown_kid}, expect=401,
             code="unknown_key")
        call("check body too large", "POST", "/v1/check", big, JSON_CT, expect=413, code="payload_too_large")
        call("check text/plain", "POST", "/v1/check", json.dumps({"token": rsa}), {"Content-Type": "text/plain"},
             expect=415, code="unsupported_media_type")

        # POST /v1/revoke.
        victim = self.tok(sub="victim")
        _, claims, _ = harness.jwt_parts(victim)
        call("revoke", "POST", "/v1/revoke", {"token": victim}, expect=200,
             want={"revoked": True, "jti": token_id(victim), "expired": False,
                   "expires_at": claims["exp"] + LEEWAY})
        call("revoke again", "POST", "/v1/revoke", {"token": victim}, expect=200, want={"expired": False})
        call("revoke expired", "POST", "/v1/revoke", {"token": expired}, expect=200, want={"expired": True})
        nojti2 = self.tok(sub="nojti-2", no_jti=True)
        call("revoke token without jti", "POST", "/v1/revoke", {"token": nojti2}, expect=200,
             want={"jti": token_id(nojti2)})
        for label, raw in (("not JSON", b"{"), ("token null", b'{"token":null}')):
            call(f"revoke body {label}", "POST", "/v1/revoke", raw, JSON_CT, expect=400, code="invalid_request")
        call("revoke bad signature", "POST", "/v1/revoke", {"token": bad_sig}, expect=401,
             code="invalid_signature")
        call("revoke wrong audience", "POST", "/v1/revoke", {"token": self.crafted(aud="other")},
             expect=401, code="invalid_audience")
        call("GET /v1/revoke", "GET", "/v1/revoke", expect=405, code="method_not_allowed")
        call("revoke too large", "POST", "/v1/revoke", big, JSON_CT, expect=413, code="payload_too_large")
        call("revoke form body", "POST", "/v1/revoke", "token=x",
             {"Content-Type": "application/x-www-form-urlencoded"}, expect=415, code="unsupported_media_type")
        # The revocations are visible through both modes of GET /v1/check.
        call("bearer revoked", "GET", "/v1/check", headers={"Authorization": f"Bearer {victim}"},
             expect=401, code="revoked", want={"jti": token_id(victim), "sub": "victim"})
        call("lookup revoked jti", "GET", "/v1/check?jti=" + urllib.parse.quote(token_id(victim)),
             expect=401, code="revoked", want={"jti": token_id(victim)})
        call("body revoked", "POST", "/v1/check", {"token": nojti2}, expect=401, code="revoked",
             want={"jti": token_id(nojti2)})

        # POST /v1/revoke-all.
        bob = self.tok(sub="bob")
        _, bob_claims, _ = harness.jwt_parts(bob)
        call("revoke-all", "POST", "/v1/revoke-all", headers={"Authorization": f"Bearer {bob}"}, expect=200,
             want={"revoked_all": True, "sub": "bob"})
        call("revoke-all with revoked token", "POST", "/v1/revoke-all",
             headers={"Authorization": f"Bearer {bob}"}, expect=401, code="revoked")
        call("lookup sub cutoff", "GET", f"/v1/check?sub=bob&iat={bob_claims['iat']}", expect=401,
             code="revoked", want={"sub": "bob"})
        call("revoke-all without token", "POST", "/v1/revoke-all", expect=401, code="missing_token")
        call("revoke-all token without sub", "POST", "/v1/revoke-all",
             headers={"Authorization": f"Bearer {self.crafted(sub=None)}"}, expect=401, code="invalid_claims")
        carol = self.tok(sub="carol")
        call("revoke-all with a body that is not JSON", "POST", "/v1/revoke-all", b"{",
             {"Authorization": f"Bearer {carol}", **JSON_CT}, expect=400, code="invalid_request")
        call("GET /v1/revoke-all", "GET", "/v1/revoke-all", expect=405, code="method_not_allowed")
        call("revoke-all too large", "POST", "/v1/revoke-all", big, JSON_CT, expect=413,
             code="payload_too_large")
        call("revoke-all text/plain", "POST", "/v1/revoke-all", "x",
             {"Authorization": f"Bearer {self.tok(sub='dave')}", "Content-Type": "text/plain"},
             expect=415, code="unsupported_media_type")

        # POST /v1/admin/revoke.
        call("admin revoke", "POST", "/v1/admin/revoke", {"jti": "adm-1", "exp": t + 600}, admin, expect=200,
             want={"revoked": True, "jti": "adm-1", "expired": False, "expires_at": t + 600 + LEEWAY})
        call("admin revoke, past exp", "POST", "/v1/admin/revoke",
             {"jti": "adm-2", "exp": t - 1000, "iss": ISS, "reason": "device lost"}, admin, expect=200,
             want={"expired": True})
        call("lookup admin-revoked jti", "GET", "/v1/check?jti=adm-1", expect=401, code="revoked",
             want={"jti": "adm-1"})
        for label, body in (("not JSON", b"{"), ("array", b"[]"), ("no jti", {"exp": t + 60}),
                            ("empty jti", {"jti": "", "exp": t + 60}), ("exp string", {"jti": "x", "exp": "soon"}),
                            ("no exp", {"jti": "x"}), ("exp too far", {"jti": "x", "exp": t + 10 ** 9}),
                            ("reason number", {"jti": "x", "exp": t + 60, "reason": 5}),
                            ("iss too long", {"jti": "x", "exp": t + 60, "iss": "i" * 257})):
            raw = body if isinstance(body, bytes) else json.dumps(body)
            call(f"admin revoke {label}", "POST", "/v1/admin/revoke", raw, {**admin, **JSON_CT}, expect=400,
                 code="invalid_request")
        for label, headers in (("no key", {}), ("wrong key", {"Authorization": "Bearer " + "w" * 32}),
                               ("Basic", {"Authorization": f"Basic {ADMIN_KEY}"})):
            call(f"admin revoke {label}", "POST", "/v1/admin/revoke", {"jti": "x", "exp": t + 60}, headers,
                 expect=401, code="unauthorized")
        call("GET /v1/admin/revoke", "GET", "/v1/admin/revoke", headers=admin, expect=405,
             code="method_not_allowed")
        call("admin revoke too large", "POST", "/v1/admin/revoke", big, {**admin, **JSON_CT}, expect=413,
             code="payload_too_large")
        call("admin revoke text/plain", "POST", "/v1/admin/revoke", '{"jti":"x","exp":1}',
             {**admin, "Content-Type": "text/plain"}, expect=415, code="unsupported_media_type")

        # POST /v1/admin/subjects/{sub}/revoke-all.
        ra = "/v1/admin/subjects/{}/revoke-all"
        call("admin revoke-all, no body", "POST", ra.format("erin"), headers=admin, expect=200,
             want={"revoked_all": True, "sub": "erin"})
        call("admin revoke-all, body", "POST", ra.format("frank"), {"reason": "compromised", "iss": ISS},
             admin, expect=200, want={"sub": "frank"})
        call("admin revoke-all, encoded sub", "POST", ra.format("a%2Fb"), headers=admin, expect=200,
             want={"sub": "a/b"})
        for label, body in (("not JSON", b"{"), ("array", b"[]"), ("reason number", b'{"reason":5}'),
                            ("empty iss", b'{"iss":""}')):
            call(f"admin revoke-all {label}", "POST", ra.format("gina"), body, {**admin, **JSON_CT},
                 expect=400, code="invalid_request")
        call("admin revoke-all 257-byte sub", "POST", ra.format("s" * 257), headers=admin, expect=400,
             code="invalid_request")
        call("admin revoke-all sub %00", "POST", ra.format("%00"), headers=admin, expect=400,
             code="invalid_request")
        call("admin revoke-all no key", "POST", ra.format("gina"), expect=401, code="unauthorized")
        call("admin revoke-all wrong key", "POST", ra.format("gina"),
             headers={"Authorization": "Bearer " + "w" * 32}, expect=401, code="unauthorized")
        call("GET admin revoke-all", "GET", ra.format("gina"), headers=admin, expect=405,
             code="method_not_allowed")
        call("admin revoke-all too large", "POST", ra.format("gina"), big, {**admin, **JSON_CT},
             expect=413, code="payload_too_large")
        call("admin revoke-all text/plain", "POST", ra.format("gina"), "reason=x",
             {**admin, "Content-Type": "text/plain"}, expect=415, code="unsupported_media_type")

        # POST /v1/admin/reload; a broken admin keys file changes nothing.
        call("admin reload", "POST", "/v1/admin/reload", headers=admin, expect=200, want={"reloaded": True})
        call("admin reload, body not JSON", "POST", "/v1/admin/reload", b"{", {**admin, **JSON_CT},
             expect=400, code="invalid_request")
        call("admin reload no key", "POST", "/v1/admin/reload", expect=401, code="unauthorized")
        call("GET admin reload", "GET", "/v1/admin/reload", headers=admin, expect=405, code="method_not_allowed")
        call("admin reload too large", "POST", "/v1/admin/reload", big, {**admin, **JSON_CT}, expect=413,
             code="payload_too_large")
        call("admin reload text/plain", "POST", "/v1/admin/reload", "x", {**admin, "Content-Type": "text/plain"},
             expect=415, code="unsupported_media_type")
        with open(self.admin_keys_path, encoding="utf-8") as f:
            keys = f.read()
        harness.write_admin_keys(self.admin_keys_path, ["short"])
        try:
            call("admin reload, broken admin keys file", "POST", "/v1/admin/reload", headers=admin, expect=500,
                 code="reload_failed")
        finally:
            with open(self.admin_keys_path, "w", encoding="utf-8") as f:
                f.write(keys)
        call("admin revoke-all after a failed reload", "POST", ra.format("hal"), headers=admin, expect=200)

        # /v1/authz and below, every documented method.
        reader = self.tok(sub="ana", claims={"scope": "orders:read", "client_id": "web", "aud": [AUD, "orders"]})
        revoked = self.tok(sub="rex")
        call("revoke for authz", "POST", "/v1/revoke", {"token": revoked}, expect=200)
        for method, path in AUTHZ_OPS:
            ok, _ = call(f"authz {method} {path}", method, path + "?scope=orders:read&aud=orders",
                         headers={"Authorization": f"Bearer {reader}"}, expect=200, want={"sub": "ana"})
            if ok is not None and (ok.header("X-Auth-Subject"), ok.header("X-Auth-Scope"),
                                   ok.header("X-Auth-Client-Id")) != ("ana", "orders:read", "web"):
                self.problems.append(f"authz {method} {path}: identity headers {ok.header('X-Auth-Subject')!r}, "
                                     f"{ok.header('X-Auth-Scope')!r}, {ok.header('X-Auth-Client-Id')!r}")
            call(f"authz {method} {path}, no token", method, path, expect=401, code="missing_token")
            call(f"authz {method} {path}, revoked", method, path, headers={"Authorization": f"Bearer {revoked}"},
                 expect=401, code="revoked")
            call(f"authz {method} {path}, missing scope", method, path + "?scope=orders:write",
                 headers={"Authorization": f"Bearer {reader}"}, expect=403, code="insufficient_scope")
            call(f"authz {method} {path}, malformed query", method, path + "?scope=%zz",
                 headers={"Authorization": f"Bearer {reader}"}, expect=403, code="invalid_request")

        # OAuth: RFC 7009, RFC 7662, global token revocation.
        form = lambda **kw: urllib.parse.urlencode(kw).encode()  # noqa: E731
        own = self.tok(sub="olga", claims={"client_id": "web", "scope": "s"})
        others = self.tok(sub="otto", claims={"client_id": "mobile"})
        for what, path in (("introspect", "/oauth2/introspect"), ("oauth revoke", "/oauth2/revoke")):
            call(f"{what}, no client", "POST", path, form(token=own), FORM_CT, expect=401, code="invalid_client")
            call(f"{what}, wrong secret", "POST", path, form(token=own), {**FORM_CT, **basic((WEB[0], "w" * 20))},
                 expect=401, code="invalid_client")
            call(f"{what}, no token", "POST", path, form(client_id=WEB[0], client_secret=WEB[1]), FORM_CT,
                 expect=400, code="invalid_request")
            call(f"{what}, two methods", "POST", path, form(token=own, client_id=WEB[0], client_secret=WEB[1]),
                 {**FORM_CT, **basic(WEB)}, expect=400, code="invalid_request")
            call(f"GET {what}", "GET", path, expect=405, code="method_not_allowed")
            call(f"{what} too large", "POST", path, b"token=" + b"x" * (MAX_BODY + 1), FORM_CT, expect=413,
                 code="payload_too_large")
            call(f"{what} JSON", "POST", path, {"token": own}, {**JSON_CT, **basic(WEB)}, expect=415,
                 code="unsupported_media_type")
        call("introspect", "POST", "/oauth2/introspect", form(token=own), {**FORM_CT, **basic(WEB)}, expect=200,
             want={"active": True, "sub": "olga", "client_id": "web", "scope": "s"})
        call("introspect, admin key", "POST", "/oauth2/introspect", form(token=others), {**FORM_CT, **admin},
             expect=200, want={"active": True})
        call("introspect, invalid token", "POST", "/oauth2/introspect", form(token="a.b.c"),
             {**FORM_CT, **basic(WEB)}, expect=200, want={"active": False})
        call("oauth revoke, another client's token", "POST", "/oauth2/revoke", form(token=others),
             {**FORM_CT, **basic(WEB)}, expect=400, code="unauthorized_client")
        call("oauth revoke, not a JWT", "POST", "/oauth2/revoke", form(token="opaque"),
             {**FORM_CT, **basic(WEB)}, expect=400, code="unsupported_token_type")
        call("oauth revoke, invalid token", "POST", "/oauth2/revoke", form(token="a.b.c"),
             {**FORM_CT, **basic(WEB)}, expect=200)
        call("oauth revoke", "POST", "/oauth2/revoke", form(token=own, token_type_hint="access_token"),
             {**FORM_CT, **basic(WEB)}, expect=200, want={"revoked": True})
        call("oauth revoke, client_secret_post, revoke_any", "POST", "/oauth2/revoke",
             form(token=others, client_id=OPS[0], client_secret=OPS[1]), FORM_CT, expect=200, want={"revoked": True})
        call("introspect, revoked", "POST", "/oauth2/introspect", form(token=own), {**FORM_CT, **basic(WEB)},
             expect=200, want={"active": False})
        g = "/global-token-revocation"
        sub_id = {"sub_id": {"format": "iss_sub", "iss": ISS, "sub": "gus"}}
        call("global revocation", "POST", g, sub_id, admin, expect=204)
        call("global revocation, client", "POST", g, {"sub_id": {"format": "opaque", "id": "gil"}}, basic(OPS),
             expect=204)
        call("global revocation, client without the right", "POST", g, sub_id, basic(WEB), expect=403,
             code="insufficient_permission")
        call("global revocation, no credentials", "POST", g, sub_id, expect=401, code="invalid_client")
        call("global revocation, email format", "POST", g, {"sub_id": {"format": "email", "email": "a@b.c"}},
             admin, expect=400, code="invalid_request")
        call("GET global revocation", "GET", g, expect=405, code="method_not_allowed")
        call("global revocation too large", "POST", g, big, {**admin, **JSON_CT}, expect=413,
             code="payload_too_large")
        call("global revocation form", "POST", g, b"sub=x", {**admin, **FORM_CT}, expect=415,
             code="unsupported_media_type")

        # GET /v1/events: the log of the revocations above, by page; feed and admin keys.
        feed = {"Authorization": f"Bearer {FEED_KEY}"}
        _, page = call("events", "GET", "/v1/events", headers=feed, expect=200)
        events = page.get("events", []) if isinstance(page, dict) else []
        if len(events) < 10 or {e.get("kind") for e in events} != {"jti", "subject"}:
            self.problems.append(f"events: the revocations above are not all there: {events}")
        elif not any("reason" in e for e in events) or not any(e.get("by", "").startswith("client:") for e in events):
            self.problems.append(f"events: no reason or no client among {events}")
        _, page = call("events, admin key, limit", "GET", "/v1/events?after=0&limit=2", headers=admin, expect=200)
        if isinstance(page, dict) and len(page.get("events", [])) == 2 and page.get("next"):
            call("events, at the end, waiting a second", "GET",
                 f"/v1/events?after={events[-1]['id'] if events else 0}&wait=1", headers=feed, expect=200,
                 want={"events": []})
        for label, query in (("after not an id", "after=x"), ("limit 0", "limit=0"), ("wait 31", "wait=31"),
                             ("after twice", "after=0&after=0")):
            call(f"events, {label}", "GET", f"/v1/events?{query}", headers=feed, expect=400, code="invalid_request")
        call("events, no key", "GET", "/v1/events", expect=401, code="unauthorized")
        call("events, wrong key", "GET", "/v1/events", headers={"Authorization": "Bearer " + "w" * 32}, expect=401,
             code="unauthorized")
        call("admin revoke, feed key", "POST", "/v1/admin/revoke", {"jti": "x", "exp": t + 60}, feed, expect=401,
             code="unauthorized")
        call("POST /v1/events", "POST", "/v1/events", {"x": 1}, feed, expect=405, code="method_not_allowed")
        # The stream: its head and what it sends until its first heartbeat (all the log holds).
        stream = harness.EventStream(self.revokd.port, FEED_KEY, after="0")
        text, item = "", None
        while stream.status == 200 and item not in (("comment", "heartbeat"), ("end",), ("closed",)):
            item = stream.next()
            if item[0] == "event":
                text += f"id: {item[1]}\nevent: {item[2]}\ndata: {json.dumps(item[3])}\n\n"
        stream.close()
        self.conform("events stream", "GET", "/v1/events?after=0",
                     harness.Response(stream.status, stream.headers, text.encode()))
        if stream.status != 200 or item != ("comment", "heartbeat") or text.count("event: revocation") != len(events):
            self.problems.append(f"events stream: {stream.status}, {item}, {text.count('event: revocation')} events "
                                 f"where the page had {len(events)}")
        elif stream.headers.get("Cache-Control") != "no-store" or stream.headers.get("X-Accel-Buffering") != "no":
            self.problems.append(f"events stream: headers {dict(stream.headers)}")

        # Health.
        call("healthz", "GET", "/healthz", expect=200, want={"status": "ok"})
        call("healthz, no request id", "GET", "/healthz", expect=200, request_id=None)
        call("healthz, insane request id", "GET", "/healthz", expect=200, request_id="bad id!")
        call("healthz, 65-char request id", "GET", "/healthz", expect=200, request_id="r" * 65)
        call("POST /healthz", "POST", "/healthz", {"x": 1}, expect=405, code="method_not_allowed")
        # Metrics: Prometheus text, not JSON.
        resp, _ = call("metrics", "GET", "/metrics", expect=200)
        if resp is not None and b"\nrevokd_checks_total{" not in resp.body:
            self.problems.append(f"metrics: no revokd_checks_total in {resp.body[:300]!r}")
        call("POST /metrics", "POST", "/metrics", {"x": 1}, expect=405, code="method_not_allowed")
        # Bodies are bounded for every method, GET included.
        oversized = b"{" + b" " * MAX_BODY + b"}"
        for path in ("/healthz", "/readyz", "/v1/check", "/metrics", "/v1/events"):
            call(f"GET {path} with an oversized body", "GET", path, oversized, JSON_CT, expect=413,
                 code="payload_too_large")
        call("DELETE /readyz", "DELETE", "/readyz", expect=405, code="method_not_allowed")
        _, body = call("readyz", "GET", "/readyz", expect=200, want={"status": "ready"})
        if isinstance(body, dict) and isinstance(body.get("store"), dict):
            store = body["store"]
            if (store.get("role"), store.get("address"), store.get("accepts_revocations")) != \
                    ("master", self.redis.address(), True):
                self.problems.append(f"readyz: store should be master at {self.redis.address()} "
                                     f"accepting revocations: {store}")

    def head_too_large_requests(self):
        """A request head (request line, headers and the empty line) too long, on every
        operation, in both forms of 431: just over REVOKD_MAX_TOKEN_BYTES + 1 KiB (HEAD_JSON bytes,
        an X-Pad header sized to make it so), revokd's JSON 431 request_header_fields_too_large
        with X-Request-Id and Cache-Control, logged; beyond a connection's memory (a 12,000-byte
        header value), libmicrohttpd's HTML 431 with no Content-Type, X-Request-Id or
        Cache-Control, sent before revokd sees the request, so not logged. Neither touches Redis.
        Heads between the two may get no answer at all (libmicrohttpd 0.9.75) and are not sent.
        A head within the limit is revokd's to answer: a token over REVOKD_MAX_TOKEN_BYTES is then
        a JSON 401 malformed. Returns {operation: {"json", "html"}} of the forms produced."""
        self.assertGreater(HEAD_FITS, MAX_TOKEN, "test bug: the fitting token must be over the limit")
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        mark = self.revokd.log_mark()
        forms = {}
        refused = {"json": [], "html": []}   # request ids, by the form of 431 they got

        def head_size(method, url, body, headers):
            data = self.raw_request(self.revokd, method, url, body, headers)
            return data.index(b"\r\n\r\n") + 4

        def sized(method, url, body, headers, size, name="X-Pad", prefix=""):
            """headers plus header `name`, its value prefix + padding, so the head is `size` bytes."""
            headers = {**headers, name: prefix}
            headers[name] = prefix + "p" * (size - head_size(method, url, body, headers))
            got = head_size(method, url, body, headers)
            self.assertEqual(got, size, "test bug: the head is not the size meant")
            return headers

        def too_large(what, method, url, body=None, headers=None, form="json", name="X-Pad", prefix=""):
            keys = self.redis.keys()
            rid = f"oa-431-{form}-{len(refused[form])}"
            refused[form].append(rid)
            headers = {**(headers or {}), "X-Request-Id": rid}
            if form == "json":
                headers = sized(method, url, body, headers, HEAD_JSON, name, prefix)
            else:
                headers[name] = prefix + "p" * HEAD_OVER
            size = head_size(method, url, body, headers)
            if form == "json":
                self.assertTrue(HEAD_LIMIT < size <= HEAD_JSON, f"test bug: head of {size} bytes")
            resp, parsed = self.call(f"{what} ({form} 431, head {size} bytes)", method, url, body, headers,
                                     expect=431, request_id=rid, raw=True,
                                     code="request_header_fields_too_large" if form == "json" else None)
            where = f"{what} [{method} {url} head {size} bytes -> {resp.status if resp else None}]"
            if resp is not None and resp.status == 431:
                got = "html" if self.library_431(resp) else "json"
                forms.setdefault((method, SPEC.template_for(urllib.parse.urlsplit(url).path)), set()).add(got)
                if got != form:
                    self.problems.append(f"{where}: meant to produce the {form} 431, got the {got} one: "
                                         f"{resp.body[:200]!r}")
                elif form == "json":
                    if not isinstance(parsed, dict) or parsed.get("error") != "request_header_fields_too_large":
                        self.problems.append(f"{where}: body {resp.body[:200]!r}")
                    if resp.header("X-Request-Id") != rid:
                        self.problems.append(f"{where}: X-Request-Id {resp.header('X-Request-Id')!r}, not {rid!r}")
                    if resp.header("Cache-Control") != "no-store":
                        self.problems.append(f"{where}: Cache-Control {resp.header('Cache-Control')!r}")
                elif re.fullmatch(rb"\s*<html>.*</html>\s*", resp.body, re.S | re.I) is None:
                    self.problems.append(f"{where}: body is not an HTML page: {resp.body[:200]!r}")
            if self.redis.keys() != keys:
                self.problems.append(f"{where}: Redis changed: {keys} -> {self.redis.keys()}")
            return resp

        # GET /v1/check: the boundaries. A token over REVOKD_MAX_TOKEN_BYTES in a head of at most
        # HEAD_LIMIT bytes is refused as a token (401 malformed); one byte more and revokd refuses
        # the head (JSON 431); beyond the connection's memory the library does (HTML 431).
        bearer = {"name": "Authorization", "prefix": "Bearer "}
        for form in ("json", "html"):
            too_large("bearer token beyond the head limit", "GET", "/v1/check", form=form, **bearer)
        self.call("bearer token over the limit, head fits", "GET", "/v1/check",
                  headers={"Authorization": "Bearer " + "a" * HEAD_FITS}, expect=401, code="malformed",
                  want={"active": False})
        for size, status in ((HEAD_LIMIT, 401), (HEAD_LIMIT + 1, 431)):
            rid = f"oa-431-edge-{size}"
            headers = sized("GET", "/v1/check", None, {"X-Request-Id": rid}, size, "Authorization", "Bearer ")
            self.call(f"head of exactly {size} bytes", "GET", "/v1/check", headers=headers, request_id=rid,
                      raw=True, expect=status, code="malformed" if status == 401 else
                      "request_header_fields_too_large")
        token = self.tok(sub="head-431")
        for form in ("json", "html"):
            too_large("body check, oversized header", "POST", "/v1/check", {"token": token}, form=form)
            # POST /v1/revoke with a valid token: refused whole, nothing stored.
            too_large("revoke, oversized header", "POST", "/v1/revoke", {"token": token}, form=form)
        # Without the padding the same request stores the revocation.
        before = len(self.redis.keys())
        self.call("revoke, same request without the padding", "POST", "/v1/revoke", {"token": token},
                  expect=200, want={"jti": token_id(token), "expired": False})
        if len(self.redis.keys()) != before + 1:
            self.problems.append(f"revoke without the padding stored no key ({before} keys before)")
        for form in ("json", "html"):
            too_large("revoke-all, oversized header", "POST", "/v1/revoke-all",
                      headers={"Authorization": f"Bearer {self.tok(sub='head-431-all')}"}, form=form)
            too_large("admin revoke, oversized header", "POST", "/v1/admin/revoke",
                      {"jti": "head-431", "exp": now() + 600}, admin, form=form)
            too_large("admin revoke-all, oversized header", "POST",
                      "/v1/admin/subjects/head-431/revoke-all", headers=admin, form=form)
            too_large("admin reload, oversized header", "POST", "/v1/admin/reload", headers=admin, form=form)
            too_large("introspect, oversized header", "POST", "/oauth2/introspect", b"token=x",
                      {**FORM_CT, **basic(WEB)}, form=form)
            too_large("oauth revoke, oversized header", "POST", "/oauth2/revoke", b"token=x",
                      {**FORM_CT, **basic(WEB)}, form=form)
            too_large("global revocation, oversized header", "POST", "/global-token-revocation",
                      {"sub_id": {"format": "opaque", "id": "x"}}, admin, form=form)
            for path in ("/healthz", "/readyz", "/metrics"):
                too_large(f"GET {path}, oversized header", "GET", path, form=form)
            too_large("events, oversized header", "GET", "/v1/events", headers=admin, form=form)
        fits = "oa-431-fits"
        self.call("GET /healthz, header over the token limit that fits", "GET", "/healthz",
                  headers={"X-Pad": "p" * HEAD_FITS}, expect=200, request_id=fits, want={"status": "ok"})
        # revokd logged its own refusals, as 431s; none of the library's reached it.
        try:
            self.revokd.wait_for_request_log(fits)
        except AssertionError as e:
            self.problems.append(f"no request log line for {fits}: {e}")
        logs = {o.get("request_id"): o for o in self.revokd.request_logs(mark)}
        for rid in refused["json"]:
            if logs.get(rid, {}).get("status") != 431:
                self.problems.append(f"revokd's JSON 431 to {rid} is not logged as a 431: {logs.get(rid)}")
        logged = sorted(set(logs) & set(refused["html"]))
        if logged:
            self.problems.append(f"requests libmicrohttpd refused with 431 were logged by revokd: {logged}")
        return forms

    def admin_disabled_requests(self):
        """A second revokd without admin keys: both admin operations answer 403."""
        d = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD, "REVOKD_ADMIN_KEYS_FILE": None},
                              name="revokd without admin keys")
        for headers in ({}, {"Authorization": f"Bearer {ADMIN_KEY}"}):
            self.call("admin revoke, admin disabled", "POST", "/v1/admin/revoke", {"jti": "x", "exp": now() + 60},
                      headers, expect=403, code="admin_disabled", daemon=d)
            self.call("admin revoke-all, admin disabled", "POST", "/v1/admin/subjects/zed/revoke-all",
                      headers=headers, expect=403, code="admin_disabled", daemon=d)
            self.call("admin reload, admin disabled", "POST", "/v1/admin/reload", headers=headers, expect=403,
                      code="admin_disabled", daemon=d)
            self.call("events, no feed or admin keys", "GET", "/v1/events", headers=headers, expect=403,
                      code="feed_disabled", daemon=d)

    def auth_limited_requests(self):
        """A revokd that allows one failed authentication per address: after it, every call that
        authenticates answers 429 with Retry-After, the right credentials too."""
        d = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD, "REVOKD_CLIENTS_FILE": CLIENTS_FILE,
                               "REVOKD_AUTH_FAILURES_BURST": "1", "REVOKD_AUTH_FAILURES_PER_MINUTE": "1"},
                              name="revokd allowing one failed authentication")
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        form = urllib.parse.urlencode({"token": "a.b.c"}).encode()
        self.call("admin revoke, wrong key", "POST", "/v1/admin/revoke", {"jti": "x", "exp": now() + 60},
                  {"Authorization": "Bearer " + "w" * 32}, expect=401, code="unauthorized", daemon=d)
        limited = {"expect": 429, "code": "too_many_requests", "daemon": d}
        for what, method, path, body, headers in (
                ("admin revoke", "POST", "/v1/admin/revoke", {"jti": "x", "exp": now() + 60}, admin),
                ("admin revoke-all", "POST", "/v1/admin/subjects/zed/revoke-all", None, admin),
                ("admin reload", "POST", "/v1/admin/reload", None, admin),
                ("oauth revoke", "POST", "/oauth2/revoke", form, {**FORM_CT, **basic(WEB)}),
                ("introspect", "POST", "/oauth2/introspect", form, {**FORM_CT, **basic(WEB)}),
                ("global revocation", "POST", "/global-token-revocation",
                 {"sub_id": {"format": "opaque", "id": "zed"}}, admin),
                ("events", "GET", "/v1/events", None, admin)):
            resp, _ = self.call(f"{what}, address limited", method, path, body, headers, **limited)
            if resp is not None and not 1 <= int(resp.header("Retry-After") or 0) <= 60:
                self.problems.append(f"{what}, address limited: Retry-After {resp.header('Retry-After')!r}")

    def not_replicated_requests(self):
        """Writes that no replica confirms: WAIT times out (REVOKD_MIN_REPLICAS=1), and Redis itself
        refusing writes for lack of replicas (min-replicas-to-write, NOREPLICAS)."""
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

        def writes(d, label):
            # Fresh ids and subjects per round: a write WAIT did not confirm may still have been
            # applied, and an unchanged cutoff is no write at all.
            tag = label.split()[0].lower()
            self.call(f"revoke, {label}", "POST", "/v1/revoke", {"token": self.tok(sub=f"{tag}-1")},
                      expect=503, code="not_replicated", daemon=d)
            self.call(f"revoke-all, {label}", "POST", "/v1/revoke-all",
                      headers={"Authorization": f"Bearer {self.tok(sub=f'{tag}-2')}"}, expect=503,
                      code="not_replicated", daemon=d)
            self.call(f"admin revoke, {label}", "POST", "/v1/admin/revoke",
                      {"jti": f"{tag}-3", "exp": now() + 60}, admin, expect=503, code="not_replicated",
                      daemon=d)
            self.call(f"admin revoke-all, {label}", "POST", f"/v1/admin/subjects/{tag}-4/revoke-all",
                      headers=admin, expect=503, code="not_replicated", daemon=d)

        d = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD, "REVOKD_MIN_REPLICAS": "1",
                               "REVOKD_REPLICATION_TIMEOUT_MS": str(REPLICATION_TIMEOUT_MS)},
                              name="revokd needing a replica")
        writes(d, "WAIT without replica")
        self.call("readyz, WAIT without replica", "GET", "/readyz", expect=200, daemon=d)

        self.redis.command("CONFIG", "SET", "min-replicas-to-write", "1")
        try:
            writes(self.revokd, "NOREPLICAS")
            self.call("readyz, NOREPLICAS", "GET", "/readyz", expect=200,
                      want={"store": {"role": "master", "address": self.redis.address(),
                                      "accepts_revocations": False}})
        finally:
            self.redis.command("CONFIG", "SET", "min-replicas-to-write", "0")

    def store_down_requests(self):
        """Redis stopped: everything that needs it answers 503 store_unavailable; liveness stays 200."""
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        token = self.tok(sub="outage")
        self.redis.stop()
        try:
            su = {"expect": 503, "code": "store_unavailable"}
            self.call("bearer check, store down", "GET", "/v1/check", headers={"Authorization": f"Bearer {token}"}, **su)
            self.call("lookup, store down", "GET", "/v1/check?jti=x", **su)
            self.call("body check, store down", "POST", "/v1/check", {"token": token}, **su)
            self.call("revoke, store down", "POST", "/v1/revoke", {"token": token}, **su)
            self.call("revoke-all, store down", "POST", "/v1/revoke-all",
                      headers={"Authorization": f"Bearer {token}"}, **su)
            self.call("admin revoke, store down", "POST", "/v1/admin/revoke", {"jti": "x", "exp": now() + 60},
                      admin, **su)
            self.call("admin revoke-all, store down", "POST", "/v1/admin/subjects/outage/revoke-all",
                      headers=admin, **su)
            for method, path in AUTHZ_OPS:
                self.call(f"authz {method} {path}, store down", method, path,
                          headers={"Authorization": f"Bearer {token}"}, **su)
            body = urllib.parse.urlencode({"token": token}).encode()
            self.call("introspect, store down", "POST", "/oauth2/introspect", body, {**FORM_CT, **basic(WEB)}, **su)
            self.call("oauth revoke, store down", "POST", "/oauth2/revoke", body, {**FORM_CT, **basic(OPS)}, **su)
            self.call("global revocation, store down", "POST", "/global-token-revocation",
                      {"sub_id": {"format": "opaque", "id": "outage"}}, admin, **su)
            self.call("events, store down", "GET", "/v1/events", headers=admin, **su)
            self.call("readyz, store down", "GET", "/readyz", want={"status": "not_ready"}, **su)
            self.call("healthz, store down", "GET", "/healthz", expect=200)
            self.call("metrics, store down", "GET", "/metrics", expect=200)
        finally:
            self.redis.start(require_empty=False)
        self.wait_ready(stable=3)

    def shutting_down_requests(self):
        """SIGTERM with a grace period: /readyz answers 503 shutting_down while the node still serves."""
        d = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD,
                               "REVOKD_SHUTDOWN_GRACE_MS": str(SHUTDOWN_GRACE_MS)}, name="draining revokd")
        token = self.tok(sub="draining")
        d.proc.send_signal(signal.SIGTERM)
        d.wait_for_event("shutdown", 5.0)
        start = time.monotonic()
        self.call("readyz, shutting down", "GET", "/readyz", expect=503, code="shutting_down",
                  want={"status": "not_ready"}, daemon=d)
        self.call("healthz, shutting down", "GET", "/healthz", expect=200, daemon=d)
        self.call("check, shutting down", "GET", "/v1/check", headers={"Authorization": f"Bearer {token}"},
                  expect=200, daemon=d)
        if time.monotonic() - start > SHUTDOWN_GRACE_MS / 1000:
            self.problems.append("the draining checks outlasted the grace period; they prove nothing")
        code = d.proc.wait(SHUTDOWN_GRACE_MS / 1000 + 5)
        if code != 0:
            self.problems.append(f"the draining revokd exited with {code} after SIGTERM")

    def edge_requests(self):
        """An edge (REVOKD_MODE=edge) following a central revokd of its own: readiness, checks,
        and revocations forwarded to central; then, with central frozen, 503 feed_stale on checks
        and readiness and 503 central_unavailable on a revocation."""
        key_file = os.path.join(CLIENTS_DIR, "feed-key")
        with open(key_file, "w", encoding="utf-8") as f:
            f.write(ADMIN_KEY + "\n")  # an admin key reads the feed too
        central = self.start_revokd({"REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD, "REVOKD_CLIENTS_FILE": CLIENTS_FILE},
                                    name="central of an edge")
        d = self.start_revokd({"REVOKD_MODE": "edge", "REVOKD_ISSUER": ISS, "REVOKD_AUDIENCE": AUD,
                               "REVOKD_CLIENTS_FILE": CLIENTS_FILE, "REVOKD_FEED_KEY_FILE": key_file,
                               "REVOKD_FEED_URL": f"http://{harness.LOOPBACK}:{central.port}/v1/events",
                               "REVOKD_EDGE_MAX_STALENESS_MS": "2000", "REVOKD_EDGE_POLL_WAIT": "1",
                               "REVOKD_EDGE_TIMEOUT_MS": "1000"}, name="edge")
        harness.wait_until(lambda: d.readyz().status == 200, 30, what="the edge to be ready")
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        token, revoked = self.tok(sub="edge-1"), self.tok(sub="edge-2")
        bearer = {"Authorization": f"Bearer {token}"}
        form = urllib.parse.urlencode({"token": token}).encode()
        self.call("readyz, edge", "GET", "/readyz", expect=200, want={"status": "ready", "mode": "edge"}, daemon=d)
        self.call("check, edge", "GET", "/v1/check", headers=bearer, expect=200, daemon=d)
        self.call("authz, edge", "GET", "/v1/authz", headers=bearer, expect=200, daemon=d)
        self.call("introspect, edge", "POST", "/oauth2/introspect", form, {**FORM_CT, **basic(WEB)}, expect=200,
                  want={"active": True}, daemon=d)
        self.call("revoke through an edge", "POST", "/v1/revoke", {"token": revoked}, expect=200, daemon=d)
        self.call("check of a token revoked through an edge", "GET", "/v1/check",
                  headers={"Authorization": f"Bearer {revoked}"}, expect=401, code="revoked", daemon=d)
        self.call("admin revoke-all through an edge", "POST", "/v1/admin/subjects/edge-3/revoke-all",
                  headers=admin, expect=200, daemon=d)
        self.call("global revocation through an edge", "POST", "/global-token-revocation",
                  {"sub_id": {"format": "opaque", "id": "edge-4"}}, admin, expect=204, daemon=d)
        self.call("admin revoke through an edge, wrong key", "POST", "/v1/admin/revoke",
                  {"jti": "edge-5", "exp": now() + 60}, {"Authorization": "Bearer " + "w" * 32}, expect=401,
                  code="unauthorized", daemon=d)
        os.kill(central.proc.pid, signal.SIGSTOP)
        try:
            harness.wait_until(lambda: d.readyz().status == 503, 10, what="the edge to go stale")
            stale = {"expect": 503, "code": "feed_stale", "daemon": d}
            self.call("readyz, edge stale", "GET", "/readyz", want={"status": "not_ready", "mode": "edge"}, **stale)
            self.call("check, edge stale", "GET", "/v1/check", headers=bearer, **stale)
            self.call("lookup, edge stale", "GET", "/v1/check?jti=x", **stale)
            self.call("authz, edge stale", "GET", "/v1/authz", headers=bearer, **stale)
            self.call("introspect, edge stale", "POST", "/oauth2/introspect", form, {**FORM_CT, **basic(WEB)},
                      **stale)
            self.call("revoke through an edge, central frozen", "POST", "/v1/revoke", {"token": token},
                      expect=503, code="central_unavailable", daemon=d)
        finally:
            os.kill(central.proc.pid, signal.SIGCONT)


if __name__ == "__main__":
    harness.main()
