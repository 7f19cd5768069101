"""deploy/monitoring: the Prometheus alert rules and the Grafana dashboard.

- `promtool check rules` accepts revokd-alerts.yml, and every rule has a `for:`, a severity and
  summary and description annotations.
- The dashboard is JSON with unique panel ids, and every expression in it is PromQL that promtool
  accepts (checked as recording rules, Grafana's variables replaced).
- Every metric name the rules and the dashboard use is in the live /metrics of a central revokd
  (a remote key set, so that the key-fetch series exist, and a few requests) or of an edge
  following its feed (a revocation forwarded through it), a histogram's by the
  _bucket, _sum or _count name it is used under; every label they match on,
  group by or print is one revokd's series carry (or job/instance, which Prometheus adds), and
  every label value they match, and every alternative of every regex, matches a value revokd
  exports. `up` is Prometheus's own. And every family of either /metrics has a panel.
- `promtool test rules` plays each alert against made-up series: it fires when it should and not
  on a failover blip, an idle node, a key file that is merely old, an edge still replaying, a
  revocation central refused, or another alert's cause.
  promtool compares annotations too, so those scenarios run on a copy of the rules without
  them (the first test has checked the annotations are there).

promtool comes with Debian's prometheus package, which ./dev test installs: without it the tests
fail, they do not skip."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import now  # noqa: E402
from idp import JwksServer  # noqa: E402

MONITORING = os.path.join(harness.REPO, "deploy", "monitoring")
RULES = os.path.join(MONITORING, "revokd-alerts.yml")
DASHBOARD = os.path.join(MONITORING, "revokd-dashboard.json")
ISS = "https://issuer.monitoring.test"
ADMIN_KEY = "admin-key-monitoring-0123456789abcdef"
FEED_KEY = "feed-key-monitoring-0123456789abcdef"

# Names that are not revokd's: Prometheus's own series, and the labels it adds to every target.
PROMETHEUS_METRICS = {"up"}
TARGET_LABELS = {"job", "instance"}
# The statuses revokd_http_requests_total counts one by one (HTTP_STATUS_TABLE in src/metrics.c),
# and "other": a series exists only once such an answer was given, so the live text cannot list
# them all.
STATUSES = {"200", "204", "400", "401", "403", "404", "405", "408", "413", "414", "415", "429",
            "431", "500", "501", "502", "503", "504", "505", "other"}
SEVERITIES = {"critical", "warning"}

# ---- reading PromQL ---------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<variable>\$\{?\w+\}?)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]@])
""", re.VERBOSE)
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "start", "end", "inf", "nan"}


def tokens(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise AssertionError(f"cannot read {expr[pos:pos + 30]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group()))
    return out


def unquote(literal):
    if literal[0] == "`":
        return literal[1:-1]
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


class Uses:
    """What PromQL expressions name: metric names, selectors' matchers (metric, label, op, value)
    and the labels of grouping clauses."""

    def __init__(self):
        self.metrics = {}       # metric name -> where
        self.matchers = []      # (metric, label, op, value, where)
        self.labels = {}        # label in by/on/... -> where

    def add(self, expr, where):
        toks = tokens(expr)
        i = 0
        while i < len(toks):
            kind, text = toks[i]
            nxt = toks[i + 1][1] if i + 1 < len(toks) else None
            if text == "[":                      # a range or subquery: durations, variables
                depth = 0
                while True:
                    depth += {"[": 1, "]": -1}.get(toks[i][1], 0)
                    if depth == 0:
                        break
                    i += 1
            elif kind == "ident" and text in GROUPING and nxt == "(":
                i += 2
                while toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        self.labels.setdefault(toks[i][1], where)
                    i += 1
            elif kind == "ident" and (nxt == "(" or nxt in ("by", "without")):
                pass                             # a function or an aggregation
            elif kind == "ident" and text.lower() in KEYWORDS:
                pass
            elif kind == "ident":
                self.metrics.setdefault(text, where)
                if nxt == "{":
                    i = self._selector(toks, i + 1, text, where)
            elif text == "{":
                i = self._selector(toks, i, None, where)
            i += 1

    def _selector(self, toks, i, metric, where):
        """Reads the matchers of the selector whose '{' is toks[i]; returns the index of '}'."""
        i += 1
        while toks[i][1] != "}":
            if toks[i][1] == ",":
                i += 1
                continue
            (lk, label), (_, op), (vk, value) = toks[i], toks[i + 1], toks[i + 2]
            if lk != "ident" or op not in ("=", "!=", "=~", "!~") or vk != "string":
                raise AssertionError(f"cannot read the selector of {metric} in {where}")
            self.matchers.append((metric, label, op, unquote(value), where))
            i += 3
        return i


def alternatives(rx):
    """Every way through the alternations of a regex, each a regex without `|`: for
    "(GET|POST) /a|PUT /b", "(?:(?:GET) /a)", "(?:(?:POST) /a)" and "(?:PUT /b)". Each must match something,
    or an alternative could be misspelt unseen behind another that matches."""
    out, todo = [], ["(" + rx + ")"]
    while todo:
        r = todo.pop()
        split = _split_group(r)
        if split is None:
            out.append(r)
        else:
            start, end, alts = split
            todo += [r[:start] + "(?:" + alt + ")" + r[end:] for alt in alts]
    return sorted(set(out))


def _split_group(rx):
    """(start, end, alternatives) of the first group of rx with a `|` of its own, or None."""
    opens, i = [], 0
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 1
        elif c == "[":
            i = rx.index("]", i + 2 if rx[i + 1:i + 2] == "]" else i + 1)
        elif c == "(":
            opens.append((i, []))
        elif c == "|" and opens:
            opens[-1][1].append(i)
        elif c == ")":
            start, bars = opens.pop()
            if bars:
                body = 3 if rx.startswith("(?:", start) else 1
                cuts = [start + body - 1] + bars + [i]
                return start, i + 1, [rx[a + 1:b] for a, b in zip(cuts, cuts[1:])]
        i += 1
    return None


def grafana_to_promql(expr):
    """A dashboard expression with Grafana's variables replaced by what they may stand for."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    expr = expr.replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def rules():
    with open(RULES) as f:
        return yaml.safe_load(f)


def alert_rules():
    return [r for g in rules()["groups"] for r in g["rules"]]


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def dashboard_exprs(dash):
    """(expr, legendFormat, where) of every panel target, and of every query variable (its
    label_values(selector, label) split into the selector and the label)."""
    out = []
    for p in all_panels(dash["panels"]):
        for t in p.get("targets", []):
            out.append((t["expr"], t.get("legendFormat", ""), f"panel {p['id']} {p['title']!r}"))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*", q)
        if m is None:
            raise AssertionError(f"variable {v['name']}: unexpected query {q!r}")
        out.append((m.group(1), "{{" + m.group(2) + "}}", f"variable {v['name']}"))
    return out


def promtool():
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool not found: install Debian's prometheus package "
                             "(./dev test installs it, see PKGS_TEST in dev)")
    return path


def run_promtool(*args, cwd=None):
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


# ---- the files themselves ----------------------------------------------------------------------

class FilesTest(unittest.TestCase):
    def test_promtool_checks_the_rules(self):
        out = run_promtool("check", "rules", RULES)
        self.assertEqual(out.returncode, 0, f"promtool check rules:\n{out.stdout}{out.stderr}")
        self.assertIn(f"SUCCESS: {len(alert_rules())} rules found", out.stdout)

    def test_every_rule_is_an_alert_an_operator_can_act_on(self):
        names = [r.get("alert") for r in alert_rules()]
        self.assertTrue(names)
        self.assertEqual(len(names), len(set(names)), names)
        for r in alert_rules():
            with self.subTest(alert=r.get("alert")):
                self.assertIsNotNone(r.get("alert"), f"not an alerting rule: {r}")
                self.assertRegex(str(r.get("for", "")), r"^\d+[smh]$")
                self.assertIn(r.get("labels", {}).get("severity"), SEVERITIES)
                notes = r.get("annotations", {})
                self.assertGreater(len(notes.get("summary", "")), 10)
                self.assertGreater(len(notes.get("description", "")), 100)

    def test_dashboard_is_json_with_unique_panel_ids(self):
        dash = dashboard()
        self.assertGreaterEqual(dash.get("schemaVersion", 0), 36)
        panels = list(all_panels(dash["panels"]))
        ids = [p.get("id") for p in panels]
        self.assertNotIn(None, ids)
        self.assertEqual(len(ids), len(set(ids)), sorted(ids))
        self.assertTrue(dash.get("uid") and dash.get("title"))
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        for p in panels:
            with self.subTest(panel=p["id"]):
                self.assertTrue(p.get("title"))
                g = p["gridPos"]
                self.assertLessEqual(g["x"] + g["w"], 24)
                if p["type"] != "row":
                    self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"})
                    self.assertTrue(p.get("targets"))
                    for t in p["targets"]:
                        self.assertEqual(t["datasource"], p["datasource"])
                        self.assertTrue(t.get("expr"))
                    refs = [t["refId"] for t in p["targets"]]
                    self.assertEqual(len(refs), len(set(refs)))

    def test_promtool_accepts_every_dashboard_expression(self):
        exprs = dashboard_exprs(dashboard())
        doc = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:expr_{i}", "expr": grafana_to_promql(e)}
            for i, (e, _, _) in enumerate(exprs)]}]}
        with tempfile.TemporaryDirectory(prefix="revokd-monitoring-") as tmp:
            path = os.path.join(tmp, "dashboard-exprs.yml")
            with open(path, "w") as f:
                yaml.safe_dump(doc, f)
            out = run_promtool("check", "rules", path)
        self.assertEqual(out.returncode, 0, f"promtool on the dashboard's expressions:\n"
                         f"{out.stdout}{out.stderr}\n" + "\n".join(e for e, _, _ in exprs))

    def test_the_reader_reads_promql(self):
        u = Uses()
        u.add('histogram_quantile(0.99, sum by (job, le) '
              '(rate(a_bucket{route=~"x|y",s!="5"}[$__rate_interval])))'
              ' / on (instance) group_left() b > 0.5 and c offset 5m unless {__name__="d"}', "t")
        self.assertEqual(set(u.metrics), {"a_bucket", "b", "c"})
        self.assertEqual(u.matchers, [("a_bucket", "route", "=~", "x|y", "t"),
                                      ("a_bucket", "s", "!=", "5", "t"),
                                      (None, "__name__", "=", "d", "t")])
        self.assertEqual(set(u.labels), {"job", "le", "instance"})
        self.assertEqual(alternatives("(GET|POST) /a|[*] /b(/.*)?"),
                         ["(?:(?:GET) /a)", "(?:(?:POST) /a)", "(?:[*] /b(/.*)?)"])
        self.assertEqual(alternatives("x"), ["(x)"])


# ---- against a live revokd --------------------------------------------------------------------

class LiveMetricsTest(harness.RevokdTestCase):
    """A central revokd with a remote key set (so that revokd_jwks_fetches_total and the age
    exist), an admin key and a feed key, and an edge following it (REVOKD_MODE=edge, so that the
    revokd_edge_* families exist), after a check, a revocation and a few other requests on the
    central node and a revocation forwarded through the edge and a check there."""

    class_daemon = False
    admin_keys = (ADMIN_KEY,)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.jwks = JwksServer(keys=harness.standard_jwks())
        cls.addClassCleanup(cls.jwks.stop)
        cls.feed_keys_path = os.path.join(cls.tmp, "feed-keys")
        cls.feed_key_path = os.path.join(cls.tmp, "feed-key")
        with open(cls.feed_keys_path, "w", encoding="utf-8") as f:
            f.write(f"edges:{FEED_KEY}\n")
        with open(cls.feed_key_path, "w", encoding="utf-8") as f:
            f.write(f"{FEED_KEY}\n")

    def start_nodes(self):
        """(central, edge), both ready, the edge following the central node's feed."""
        keys = {"REVOKD_JWKS_FILE": None, "REVOKD_JWKS_URL": self.jwks.url, "REVOKD_ISSUER": ISS}
        central = self.start_revokd({**keys, "REVOKD_FEED_KEYS_FILE": self.feed_keys_path}, name="central")
        self.wait_ready(central, stable=1)
        # An edge keeps no Redis: REVOKD_REDIS_URL is dropped.
        edge = self.start_revokd({**keys, "REVOKD_MODE": "edge", "REVOKD_REDIS_URL": None,
                                  "REVOKD_FEED_URL": f"http://{harness.LOOPBACK}:{central.port}/v1/events",
                                  "REVOKD_FEED_KEY_FILE": self.feed_key_path}, name="edge")
        self.wait_ready(edge, stable=1)
        return central, edge

    def parse(self, daemon):
        """{metric name: [labels dict, ...]} of a live revokd's /metrics."""
        daemon.request("GET", "/metrics")
        resp = daemon.request("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        live = {}
        for line in resp.body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+", line)
            self.assertIsNotNone(m, line)
            labels = dict((k, re.sub(r"\\(.)", r"\1", v)) for k, v in
                          re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            live.setdefault(m.group(1), []).append(labels)
        return live

    def scrape(self):
        """{metric name: [labels dict, ...]} of a live central node and a live edge together."""
        central, edge = self.start_nodes()
        token = self.mint(sub="mona", iss=ISS, iat=now() - 1, ttl=600)
        self.assertEqual(central.check(token).status, 200)
        self.assertEqual(central.revoke(token).status, 200)
        self.assertEqual(central.check(token).status, 401)
        self.assertEqual(central.request("GET", "/nope").status, 404)
        other = self.mint(sub="nina", iss=ISS, iat=now() - 1, ttl=600)
        self.assertEqual(edge.check(other).status, 200)
        self.assertEqual(edge.revoke(other).status, 200)   # forwarded to central, read back
        self.assertEqual(edge.check(other).status, 401)
        self.assertEqual(edge.check(token).status, 401)    # from the feed
        on_central, on_edge = self.parse(central), self.parse(edge)
        edge_families = {n for n in on_edge if n.startswith("revokd_edge_")}
        self.assertGreaterEqual(len(edge_families), 8, sorted(on_edge))
        self.assertEqual({n for n in on_central if n.startswith("revokd_edge_")}, set(),
                         "a central node exports edge metrics")
        live = {}
        for node in (on_central, on_edge):
            for name, series in node.items():
                live.setdefault(name, []).extend(series)
        return live

    def uses(self):
        u = Uses()
        legends, notes = [], []
        for r in alert_rules():
            where = f"alert {r['alert']}"
            u.add(r["expr"], where)
            for text in r.get("annotations", {}).values():
                notes += [(label, where) for label in re.findall(r"\$labels\.(\w+)", text)]
        for expr, legend, where in dashboard_exprs(dashboard()):
            u.add(expr, where)
            legends += [(label, where) for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)]
        return u, legends, notes

    def test_everything_named_is_exported(self):
        live = self.scrape()
        u, legends, notes = self.uses()
        self.assertGreater(len(u.metrics), 15)
        all_labels = {k for series in live.values() for labels in series for k in labels}
        values = {}
        for series in live.values():
            for labels in series:
                for k, v in labels.items():
                    values.setdefault(k, set()).add(v)
        values["status"] = STATUSES
        route_list = harness.run_revokd(["--routes"]).stdout.split("\n")
        self.assertEqual(values["route"], {r.strip() for r in route_list if r.strip()} | {"unmatched"})

        wrong = []
        for name, where in sorted(u.metrics.items()):
            if name not in live and name not in PROMETHEUS_METRICS:
                wrong.append(f"{where}: metric {name} is not in /metrics")
        for metric, label, op, value, where in u.matchers:
            if label in TARGET_LABELS or metric in PROMETHEUS_METRICS:
                continue
            if metric is None or metric not in live:
                wrong.append(f"{where}: selector {label}{op}{value!r} on {metric}")
                continue
            if label not in {k for labels in live[metric] for k in labels}:
                wrong.append(f"{where}: {metric} has no label {label}")
                continue
            candidates = values.get(label, set()) if label in ("status", "route") else \
                {labels[label] for labels in live[metric] if label in labels}
            for rx in alternatives(value) if op in ("=~", "!~") else [re.escape(value)]:
                if not any(re.fullmatch(rx, v) for v in candidates):
                    wrong.append(f"{where}: {metric}{{{label}{op}{value!r}}}: {rx!r} matches no value "
                                 f"revokd exports ({sorted(candidates)})")
        for label, where in sorted(u.labels.items()) + legends + notes:
            if label not in all_labels | TARGET_LABELS:
                wrong.append(f"{where}: label {label} is on no series revokd exports")
        if wrong:
            self.fail("deploy/monitoring names what revokd does not export:\n  " + "\n  ".join(wrong))

    def test_every_revokd_family_is_on_the_dashboard(self):
        """Each family of /metrics has a panel (histograms by their _bucket or _count)."""
        live = self.scrape()
        used = set()
        for expr, _, _ in dashboard_exprs(dashboard()):
            u = Uses()
            u.add(expr, "")
            used |= set(u.metrics)
        base = lambda n: re.sub(r"_(bucket|sum|count)$", "", n)  # noqa: E731
        missing = {base(n) for n in live} - {base(n) for n in used}
        self.assertEqual(missing, set(), "families of /metrics without a panel")


# ---- the alerts' behaviour ---------------------------------------------------------------------

A = 'job="revokd",instance="a:9090"'
B = 'job="revokd",instance="b:9090"'
C = 'job="revokd",instance="c:9090"'


def labels(sel, **extra):
    out = dict(re.findall(r'(\w+)="([^"]*)"', sel))
    out.update(extra)
    return out


def alert(name, sel, severity, **extra):
    return {"exp_labels": {"alertname": name, **labels(sel), "severity": severity, **extra}}


def counter(sel, name, per_minute, minutes=40, **extra):
    lab = ",".join([sel] + [f'{k}="{v}"' for k, v in extra.items()])
    return {"series": f"{name}{{{lab}}}", "values": f"0+{per_minute}x{minutes}"}


def gauge(sel, name, values, **extra):
    lab = ",".join([sel] + [f'{k}="{v}"' for k, v in extra.items()])
    return {"series": f"{name}{{{lab}}}", "values": values}


def requests(sel, route, status, per_minute):
    return counter(sel, "revokd_http_requests_total", per_minute, route=route, status=status)


def case(name, series, *evals):
    """A promtool test: series, then (minute, [expected alerts]) for the alert `name`."""
    return {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": f"{t}m", "alertname": name, "exp_alerts": exp} for t, exp in evals]}


def latency(sel, route, upto, per_minute):
    """Buckets of requests that all took more than the bound before `upto` and at most `upto`."""
    out = []
    for le in ("0.001", "0.005", "0.01", "0.05", "0.1", "+Inf"):
        n = per_minute if le == "+Inf" or float(le) >= upto else 0
        out.append(counter(sel, "revokd_http_request_duration_seconds_bucket", n, route=route, le=le))
    return out


SCENARIOS = [
    case("RevokdTargetDown",
         [gauge(A, "up", "1 1 0x10"), gauge('job="node",instance="n:9100"', "up", "0x12")],
         (3, []), (5, [alert("RevokdTargetDown", A, "critical")])),
    case("RevokdStoreDown",
         [gauge(A, "revokd_store_up", "1 1 0x10"),
          counter(A, "revokd_redis_command_duration_seconds_count", 100, 12),
          counter(A, "revokd_redis_errors_total", 0, 12),
          # b has never sent a Redis command: 0, and nothing to alert on
          gauge(B, "revokd_store_up", "0x12"),
          counter(B, "revokd_redis_command_duration_seconds_count", 0, 12),
          counter(B, "revokd_redis_errors_total", 0, 12),
          # c was down from its start and has failed every command since
          gauge(C, "revokd_store_up", "0x12"),
          counter(C, "revokd_redis_command_duration_seconds_count", 0, 12),
          counter(C, "revokd_redis_errors_total", 10, 12)],
         (1, []), (5, [alert("RevokdStoreDown", A, "critical"), alert("RevokdStoreDown", C, "critical")])),
    case("RevokdRedisErrors",
         [counter(A, "revokd_redis_command_duration_seconds_count", 100, 20),
          counter(A, "revokd_redis_errors_total", 5, 20),
          counter(B, "revokd_redis_command_duration_seconds_count", 1000, 20),
          counter(B, "revokd_redis_errors_total", 1, 20)],
         (3, []), (12, [alert("RevokdRedisErrors", A, "warning")])),
    case("RevokdChecksFailingClosed",
         [requests(A, "GET /v1/check", "200", 900), requests(A, "GET /v1/check", "503", 100),
          # b: a failover's blip, 100 answers 503 in one minute among 1000 a minute
          requests(B, "GET /v1/check", "200", 1000),
          {"series": f'revokd_http_requests_total{{{B},route="GET /v1/check",status="503"}}',
           "values": "0x5 100x30"},
          # c: the gateways' route; its revocations failing do not count here
          requests(C, "* /v1/authz/{path}", "200", 90), requests(C, "* /v1/authz/{path}", "503", 10),
          requests(B, "POST /v1/revoke", "503", 100)],
         (1, []), (12, [alert("RevokdChecksFailingClosed", A, "critical"),
                        alert("RevokdChecksFailingClosed", C, "critical")])),
    case("RevokdCheckLatencyHigh",
         latency(A, "GET /v1/check", 0.1, 100) + latency(B, "GET /v1/check", 0.001, 100)
         + latency(C, "POST /v1/revoke", 0.1, 100),
         (5, []), (15, [alert("RevokdCheckLatencyHigh", A, "warning")])),
    case("RevokdRevocationsRefused",
         [requests(A, "POST /v1/revoke", "200", 90), requests(A, "POST /v1/revoke", "503", 10),
          requests(C, "POST /v1/admin/subjects/{sub}/revoke-all", "200", 10),
          requests(C, "POST /v1/admin/subjects/{sub}/revoke-all", "503", 10),
          requests(B, "GET /v1/check", "503", 100), requests(B, "POST /v1/revoke", "200", 100)],
         (3, []), (12, [alert("RevokdRevocationsRefused", A, "critical"),
                        alert("RevokdRevocationsRefused", C, "critical")])),
    case("RevokdStoreDataLost",
         [gauge(A, "revokd_store_data_lost", "0 0 1x10"), gauge(B, "revokd_store_data_lost", "0x12")],
         (2, []), (5, [alert("RevokdStoreDataLost", A, "critical")])),
    case("RevokdKeysStale",
         [gauge(A, "revokd_jwks_stale", "0 0 1x30", issuer="https://idp.test"),
          gauge(A, "revokd_jwks_stale", "0x30", issuer="https://other.test")],
         (10, []), (20, [alert("RevokdKeysStale", A, "warning", issuer="https://idp.test")])),
    case("RevokdKeysOld",
         [counter(A, "revokd_jwks_age_seconds", 60, 160, issuer="https://idp.test"),
          counter(A, "revokd_jwks_fetches_total", 0, 160, issuer="https://idp.test", result="ok"),
          counter(A, "revokd_jwks_fetches_total", 0, 160, issuer="https://idp.test", result="http_error"),
          # keys from a file: as old as the process, never fetched
          counter(A, "revokd_jwks_age_seconds", 60, 160, issuer="https://files.test")],
         (125, []), (150, [alert("RevokdKeysOld", A, "warning", issuer="https://idp.test")])),
    case("RevokdNoKeys",
         [gauge(A, "revokd_jwks_keys", "0x10", issuer="https://idp.test"),
          gauge(A, "revokd_jwks_keys", "2x10", issuer="https://other.test")],
         (3, []), (8, [alert("RevokdNoKeys", A, "critical", issuer="https://idp.test")])),
    case("RevokdReloadFailed",
         [gauge(A, "revokd_reloads_total", "0 0 0 1x40", result="failed"),
          counter(A, "revokd_reloads_total", 1, 40, result="ok"),
          gauge(B, "revokd_reloads_total", "0x40", result="failed")],
         (2, []), (6, [alert("RevokdReloadFailed", A, "warning", result="failed")]), (30, [])),
    case("RevokdOverloaded",
         [counter(A, "revokd_http_limit_hits_total", 60, 20, limit="store_max_pending"),
          counter(B, "revokd_http_limit_hits_total", 60, 20, limit="auth_failures"),
          counter(C, "revokd_http_limit_hits_total", 1, 20, limit="store_max_pending")],
         (3, []), (12, [alert("RevokdOverloaded", A, "warning")])),
    case("RevokdLimitHits",
         [counter(A, "revokd_http_limit_hits_total", 60, 30, limit="max_connections"),
          counter(A, "revokd_http_limit_hits_total", 60, 30, limit="store_max_pending"),
          counter(A, "revokd_http_limit_hits_total", 6, 30, limit="request_timeout")],
         (10, []), (25, [alert("RevokdLimitHits", A, "warning", limit="max_connections")])),
    # Edges: a, b and c are edge nodes here.
    case("RevokdEdgeStale",
         [gauge(A, "revokd_edge_stale", "0 0 1x10"), gauge(A, "revokd_edge_replayed", "1x12"),
          # b: central silent past the bound for a minute (a restart), then heard from again
          gauge(B, "revokd_edge_stale", "0 0 1 0x9"), gauge(B, "revokd_edge_replayed", "1x12"),
          # c: still replaying after its start, which is RevokdEdgeNotReplayed's
          gauge(C, "revokd_edge_stale", "1x12"), gauge(C, "revokd_edge_replayed", "0x12")],
         (3, []), (5, [alert("RevokdEdgeStale", A, "critical")])),
    case("RevokdEdgeLagging",
         # a: its bound raised far above a minute, central silent: answers from an old copy
         [counter(A, "revokd_edge_lag_seconds", 60, 20), gauge(A, "revokd_edge_stale", "0x20"),
          # b: an idle feed with the longest heartbeat central allows: heard from every 30 s
          gauge(B, "revokd_edge_lag_seconds", "30 2 29 15 30x16"), gauge(B, "revokd_edge_stale", "0x20"),
          # c: as silent, but failed closed at its bound: RevokdEdgeStale's
          counter(C, "revokd_edge_lag_seconds", 60, 20), gauge(C, "revokd_edge_stale", "0 1x19")],
         (3, []), (10, [alert("RevokdEdgeLagging", A, "warning")])),
    case("RevokdEdgeNotReplayed",
         [gauge(A, "revokd_edge_replayed", "0x20"),
          # b: a replay of millions of revocations, done in three minutes
          gauge(B, "revokd_edge_replayed", "0 0 0 1x17")],
         (8, []), (12, [alert("RevokdEdgeNotReplayed", A, "warning")])),
    case("RevokdEdgeFeedFailing",
         [counter(A, "revokd_edge_feed_polls_total", 60, 20, result="empty"),
          counter(A, "revokd_edge_feed_polls_total", 20, 20, result="network_error"),
          # b: ten failed reads while central restarted, among a heartbeat a second
          counter(B, "revokd_edge_feed_polls_total", 60, 20, result="empty"),
          gauge(B, "revokd_edge_feed_polls_total", "0x5 10x15", result="network_error"),
          # c: central answers, the edge is full: not the feed's failure
          counter(C, "revokd_edge_feed_polls_total", 60, 20, result="full"),
          counter(C, "revokd_edge_feed_polls_total", 0, 20, result="http_error")],
         (3, []), (12, [alert("RevokdEdgeFeedFailing", A, "warning")])),
    case("RevokdFeedConsumersCutOff",
         [gauge(A, "revokd_feed_consumers_ended_total", "0x5 1x30", why="cut_off"),
          # b: consumers come and go, and the node restarts: none is cut off
          counter(B, "revokd_feed_consumers_ended_total", 5, 35, why="closed"),
          counter(B, "revokd_feed_consumers_ended_total", 1, 35, why="stopped"),
          gauge(B, "revokd_feed_consumers_ended_total", "0x35", why="cut_off")],
         (4, []), (10, [alert("RevokdFeedConsumersCutOff", A, "warning")]), (30, [])),
    case("RevokdEdgeForwardsFailing",
         [counter(A, "revokd_edge_forwards_total", 10, 20, result="ok"),
          counter(A, "revokd_edge_forwards_total", 5, 20, result="unavailable"),
          # b: central refuses wrong credentials, relayed: the link works
          counter(B, "revokd_edge_forwards_total", 10, 20, result="ok"),
          counter(B, "revokd_edge_forwards_total", 10, 20, result="refused"),
          # c: accepted, read back late: RevokdEdgeStale's concern, not a failed revocation
          counter(C, "revokd_edge_forwards_total", 10, 20, result="ok"),
          counter(C, "revokd_edge_forwards_total", 5, 20, result="unsynced")],
         (3, []), (12, [alert("RevokdEdgeForwardsFailing", A, "warning")])),
]


class AlertBehaviourTest(unittest.TestCase):
    def test_every_alert_has_a_scenario(self):
        self.assertEqual({c["alert_rule_test"][0]["alertname"] for c in SCENARIOS},
                         {r["alert"] for r in alert_rules()})

    def test_promtool_plays_the_scenarios(self):
        doc = rules()
        for g in doc["groups"]:
            for r in g["rules"]:
                r.pop("annotations", None)
        with tempfile.TemporaryDirectory(prefix="revokd-monitoring-") as tmp:
            with open(os.path.join(tmp, "rules.yml"), "w") as f:
                yaml.safe_dump(doc, f, sort_keys=False)
            with open(os.path.join(tmp, "tests.yml"), "w") as f:
                yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                "tests": SCENARIOS}, f, sort_keys=False)
            out = run_promtool("test", "rules", "tests.yml", cwd=tmp)
        self.assertEqual(out.returncode, 0, f"promtool test rules:\n{out.stdout}{out.stderr}")


if __name__ == "__main__":
    harness.main()
