"""monitoring/ (issue 11): the Prometheus configuration and alert rules pass
promtool, a real Prometheus scrapes the test nginx, and every metric that an
alert or a dashboard names is exported (nginx, checked live) or listed in
docs/metrics.md (workers)."""

import glob
import json
import os
import re
import subprocess

import pytest
import yaml

from feira import ROOT, wait_for
from prometheus_server import Prometheus
from promtext import Metrics

MON = os.path.join(ROOT, "monitoring")
PROM = os.path.join(MON, "prometheus")
DASHBOARDS = sorted(glob.glob(os.path.join(MON, "grafana", "dashboards",
                                           "*.json")))
RULE_FILES = sorted(glob.glob(os.path.join(PROM, "rules", "*.yml")))


def promtool(*args):
    r = subprocess.run(["promtool", *args], capture_output=True, text=True,
                       cwd=PROM)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def documented():
    """docs/metrics.md: {section: {name: type}} for nginx and workers."""
    sections, current = {}, None
    with open(os.path.join(ROOT, "docs", "metrics.md")) as f:
        for line in f:
            if line.startswith("## "):
                head = line[3:].strip().lower()
                current = ("nginx" if head.startswith("nginx") else
                           "workers" if head.startswith("workers") else None)
                if current:
                    sections[current] = {}
                continue
            m = re.match(r"\|\s*`([a-z_:]+)`\s*\|\s*(\w+)\s*\|", line)
            if m and current:
                assert m.group(1) not in sections[current], m.group(1)
                sections[current][m.group(1)] = m.group(2)
    assert set(sections) == {"nginx", "workers"}
    return sections


def dashboard_exprs():
    out = []
    for path in DASHBOARDS:
        with open(path) as f:
            d = json.load(f)
        for p in d["panels"]:
            for t in p.get("targets", []):
                out.append((os.path.basename(path), t["expr"]))
    return out


def rule_exprs():
    out = []
    for path in RULE_FILES:
        with open(path) as f:
            for g in yaml.safe_load(f)["groups"]:
                for rule in g["rules"]:
                    out.append((rule.get("alert") or rule.get("record"),
                                rule["expr"]))
    return out


def names_in(expr, histograms):
    """The metric names of a PromQL expression: feira_* and up."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # no label values
    names = set()
    for n in re.findall(r"\b(feira_[a-z0-9_]+|up)\b", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        names.add(base if base in histograms else n)
    return names


@pytest.fixture(scope="module")
def exported(request):
    """The metric families of a live nginx's /metrics."""
    from feira import Nginx
    n = Nginx().start()
    try:
        n.get("/healthz")
        return Metrics(n.get("/metrics").body.decode())
    finally:
        n.stop()
        n.check_log()
        n.cleanup()


def test_prometheus_configs_pass_promtool():
    for conf in ("prometheus.yml", "prometheus-k8s.yml"):
        out = promtool("check", "config", conf)
        assert "SUCCESS" in out


def test_alert_rules_pass_promtool_and_their_unit_tests():
    assert RULE_FILES
    promtool("check", "rules", *RULE_FILES)
    tests = sorted(glob.glob(os.path.join(PROM, "tests", "*.yml")))
    assert tests
    promtool("test", "rules", *tests)


def test_the_issue_alerts_exist():
    alerts = {name for name, _ in rule_exprs()}
    for wanted in ("FeiraApiErrorRate", "FeiraApiLatencyP99",
                   "FeiraNginxDown", "FeiraWorkerNotReady",
                   "FeiraConsumerLag", "FeiraDeadLetters",
                   "FeiraWebSocketDrops"):
        assert wanted in alerts


def test_dashboards_are_grafana_json():
    titles = set()
    assert {os.path.basename(p) for p in DASHBOARDS} == {
        "api-overview.json", "realtime.json", "workers.json",
        "business.json"}
    uids = set()
    for path in DASHBOARDS:
        with open(path) as f:
            d = json.load(f)
        assert d["uid"] not in uids
        uids.add(d["uid"])
        titles.add(d["title"])
        assert d["panels"], path
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), path
        for p in d["panels"]:
            assert p["targets"] and p["datasource"]["type"] == "prometheus"
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24


def test_docs_list_exactly_what_nginx_exports(exported):
    docs = documented()
    assert set(docs["nginx"]) == exported.families()
    for name, typ in docs["nginx"].items():
        assert exported.types[name] == typ, name


def test_every_metric_named_by_an_alert_or_a_dashboard_is_exported(
        exported):
    docs = documented()
    histograms = {n for s in docs.values() for n, t in s.items()
                  if t == "histogram"}
    used = {}
    for where, expr in rule_exprs() + dashboard_exprs():
        for n in names_in(expr, histograms):
            used.setdefault(n, where)
    assert used

    missing = []
    for name, where in sorted(used.items()):
        if name == "up":
            continue  # Prometheus's own, per target
        if name in docs["workers"]:
            continue  # exported by the workers (their own tests)
        if name not in exported.families():
            missing.append(f"{name} (in {where})")
    assert missing == [], "named but not exported"

    # every worker metric is watched somewhere
    assert set(docs["workers"]) <= set(used)


def test_a_real_prometheus_scrapes_nginx_and_reads_a_counter_back(
        nginx_factory):
    n = nginx_factory(server_conf="""
        location = /t/ping {
            feira_metrics_module test; feira_metrics_route ping;
            return 200 "pong";
        }""")
    for _ in range(7):
        assert n.get("/t/ping").status == 200

    prom = Prometheus({"feira-nginx": [f"127.0.0.1:{n.port}"]}).start()
    try:
        wait_for(lambda: prom.query('up{job="feira-nginx"}') and
                 prom.query('up{job="feira-nginx"}')[0][1] == 1,
                 timeout=60, what="a successful scrape")

        def pings():
            r = prom.query('feira_http_requests_total{module="test",'
                           'route="ping",status="2xx"}')
            return r and r[0][1] == 7 and r

        labels, value = wait_for(pings, timeout=30,
                                 what="the counter in Prometheus")[0]
        assert value == 7
        assert labels["job"] == "feira-nginx"
        assert labels["instance"] == f"127.0.0.1:{n.port}"

        # Prometheus loaded every alert rule, and evaluates them cleanly
        def groups():
            g = prom.api("rules")["data"]["groups"]
            rules = [r for grp in g for r in grp["rules"]]
            return (rules and all(r.get("lastEvaluation", "").startswith("2")
                                  and r["health"] == "ok" for r in rules)
                    and g)
        g = wait_for(groups, timeout=30, what="rules evaluated")
        assert {grp["name"] for grp in g} == {"feira-api", "feira-realtime",
                                              "feira-workers"}

        # every dashboard query is valid PromQL for this Prometheus
        for where, expr in dashboard_exprs():
            body = prom.api("query",
                            query=expr.replace("$__rate_interval", "1m"))
            assert body["status"] == "success", (where, expr, body)
    finally:
        prom.stop()
