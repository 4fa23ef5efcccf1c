"""Metrics: they move as calls are decided (read back from the exposition format), labels stay bounded and
never carry a phone number, and the deploy/ dashboard only queries metrics that exist."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.audit.record import Source
from gateway.config import Config
from gateway.metrics import EXPORTED, LATENCY_BUCKETS, SOURCES, Metrics, bounded_kind
from gateway.service import Gateway
from tests.conftest import FIXED_NOW

ROOT = Path(__file__).resolve().parent.parent
NUMBERISH = re.compile(r"^\+?[\d\s.\-()/]+$")


def looks_like_number(label_value: str) -> bool:
    """Anything written like a phone number, short numbers included (four digits or more)."""
    return bool(NUMBERISH.match(label_value)) and sum(c.isdigit() for c in label_value) >= 4


def samples(metrics: Metrics) -> list[tuple[str, dict[str, str], float]]:
    text = metrics.exposition().decode()
    return [(s.name, dict(s.labels), s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when there is none)."""
    return sum(v for n, lab, v in samples(metrics) if n == name and all(lab.get(k) == x for k, x in labels.items()))


async def gateway_for(config: Config, clock: Callable[[], datetime]) -> tuple[Gateway, Metrics]:
    gw = Gateway(config, clock=clock)
    await gw.start()
    gw.holder.load_all()
    m = Metrics(gw)
    gw.observers.append(m)
    return gw, m


async def test_decisions_are_counted_by_campaign_verdict_and_reason(sample_config: Config, clock) -> None:
    gw, m = await gateway_for(sample_config, clock)
    assert value(m, "dnc_decisions_total") == 0
    await gw.check("0612000010", "prospect")  # consent: allowed
    await gw.check("0612000001", "legacy")  # opposition list
    await gw.check("0612000001", "legacy")
    await gw.check("0612000200", "survey")  # internal DNC, monitor mode: allowed, would block
    await gw.check("0612000010", "no-such-campaign")
    await gw.check("0612000001", "legacy", source="api", record=False)

    assert value(m, "dnc_decisions_total", campaign="prospect", verdict="ALLOW", reason="none") == 1
    assert value(m, "dnc_decisions_total", campaign="legacy", verdict="BLOCK", reason="opposition_list",
                 source="agi") == 2
    assert value(m, "dnc_decisions_total", campaign="legacy", source="api") == 1
    assert value(m, "dnc_decisions_total", campaign="survey", verdict="ALLOW", reason="internal_dnc",
                 would_block="true") == 1
    assert value(m, "dnc_decisions_total", campaign="unknown", reason="unknown_campaign") == 1
    assert value(m, "dnc_decisions_total") == 6
    assert value(m, "dnc_decision_seconds_count") == 6
    assert value(m, "dnc_decision_seconds_sum") > 0
    buckets = sorted(float(lab["le"]) for n, lab, _ in samples(m) if n == "dnc_decision_seconds_bucket"
                     and lab["le"] != "+Inf")
    assert buckets[0] == 0.00001 and tuple(buckets) == LATENCY_BUCKETS
    await gw.close()


async def test_a_failed_reload_shows_per_list_until_one_succeeds(sample_config: Config) -> None:
    """Issue 15 #8: the old version serves (dnc_list_loaded stays 1), so the failure has gauges of its own."""
    gw, m = await gateway_for(sample_config, lambda: FIXED_NOW)
    assert value(m, "dnc_list_reload_failed") == 0
    assert value(m, "dnc_list_reload_failed", list="bloctel") == 0  # present at 0 for every list
    assert not [n for n, _, _ in samples(m) if n == "dnc_list_last_reload_failure_timestamp_seconds"]
    path = sample_config.lists["bloctel"].path
    assert path is not None
    path.write_text("this is not\na list of\nphone numbers\n")
    assert not (await gw.holder.reload()).ok
    assert value(m, "dnc_list_reload_failed", list="bloctel") == 1
    assert value(m, "dnc_list_reload_failed") == 1
    assert value(m, "dnc_list_loaded", list="bloctel") == 1
    assert value(m, "dnc_list_last_reload_failure_timestamp_seconds", list="bloctel") == FIXED_NOW.timestamp()
    path.write_text("0612000001\n")
    assert (await gw.holder.reload()).ok
    assert value(m, "dnc_list_reload_failed", list="bloctel") == 0
    assert value(m, "dnc_list_last_reload_failure_timestamp_seconds", list="bloctel") == FIXED_NOW.timestamp()
    await gw.close()


def test_an_alert_fires_on_a_failed_reload() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) is not installed")
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    rule = by_name["DncRegistryReloadFailed"]
    assert selected_metrics(rule["expr"]) == {"dnc_list_reload_failed"}
    assert "{{ $labels.list }}" in rule["annotations"]["summary"]


async def test_every_audit_source_is_its_own_label(sample_config: Config) -> None:
    """A FastAGI dryrun (``dnc-gateway replay``'s default) is counted as source="dry_run", not "other"."""
    gw, m = await gateway_for(sample_config, lambda: FIXED_NOW)
    assert {s.value for s in Source} <= SOURCES
    await gw.check("0612000001", "legacy", source=Source.DRY_RUN, count=False)
    await gw.check("0612000001", "legacy", source="0612000001")  # free text never becomes a label
    assert value(m, "dnc_decisions_total", source="dry_run") == 1
    assert value(m, "dnc_decisions_total", source="other") == 1
    await gw.close()


async def test_no_label_value_is_ever_a_phone_number(sample_config: Config, clock) -> None:
    gw, m = await gateway_for(sample_config, clock)
    for dialled in ("0612000001", "+33612000010", "0033 6 12 00 02 00", "12", "not-a-number", "08991234567"):
        for campaign in ("prospect", "survey", "0612345678", "+33612345678"):
            await gw.check(dialled, campaign)
    m.agi_error("0612345678")
    m.agi_error("bad_env")
    m.state_error("+33 6 12 34 56 78")
    m.bypass("0612345678")
    m.bypass("prospect")
    values = [(n, k, v) for n, lab, _ in samples(m) for k, v in lab.items()]
    assert values
    offenders = [(n, k, v) for n, k, v in values if looks_like_number(v) and k not in ("le", "quantile")]
    assert offenders == []
    assert value(m, "dnc_agi_errors_total", kind="other") == 1
    assert value(m, "dnc_agi_errors_total", kind="bad_env") == 1
    assert value(m, "dnc_bypasses_total", campaign="unknown") == 1
    assert value(m, "dnc_bypasses_total", campaign="prospect") == 1
    campaigns = {lab["campaign"] for n, lab, _ in samples(m) if "campaign" in lab}
    assert campaigns <= {"prospect", "legacy", "survey", "unknown"}
    await gw.close()


def test_bounded_kind() -> None:
    assert bounded_kind("Read_Timeout") == "read_timeout"
    assert bounded_kind("0612345678") == "other"
    assert bounded_kind("x" * 80) == "other"
    assert bounded_kind("bad kind") == "other"


async def test_list_gauges_are_computed_at_scrape_time(sample_config: Config) -> None:
    now = [FIXED_NOW]
    gw, m = await gateway_for(sample_config, lambda: now[0])
    assert value(m, "dnc_list_size", list="bloctel", kind="opposition") == 5
    assert value(m, "dnc_list_size", list="consent") == 43
    assert value(m, "dnc_list_age_days", list="bloctel") == 4  # as_of 2026-11-20, now 2026-11-24
    assert value(m, "dnc_list_max_age_days", list="bloctel") == 30
    assert value(m, "dnc_list_loaded", list="premium") == 1
    versions = {lab["list"]: lab["version"] for n, lab, _ in samples(m) if n == "dnc_list_info"}
    assert versions["bloctel"] == gw.holder.current.version("bloctel")
    assert set(versions) == set(sample_config.lists)

    now[0] = FIXED_NOW + timedelta(days=10)  # no reload: the age moves with the clock alone
    assert value(m, "dnc_list_age_days", list="bloctel") == 14

    path = gw.holder.specs["litigators"].path
    assert path is not None
    path.unlink()
    assert gw.holder.load_all(["litigators"]).failed
    assert value(m, "dnc_list_loaded", list="litigators") == 1  # the previous version keeps serving
    await gw.close()

    gw2, m2 = await gateway_for(sample_config, lambda: now[0])  # never loaded: 0, and no size
    assert value(m2, "dnc_list_loaded", list="litigators", kind="litigators") == 0
    assert not [s for s in samples(m2) if s[0] == "dnc_list_size" and s[1]["list"] == "litigators"]
    await gw2.close()


async def test_hooks(sample_config: Config, clock) -> None:
    gw, m = await gateway_for(sample_config, clock)
    m.agi_session_started()
    m.agi_session_started()
    assert value(m, "dnc_agi_sessions_in_flight") == 2
    m.agi_session_finished(0.0004, True)
    m.agi_session_finished(2.5, False)
    assert value(m, "dnc_agi_sessions_in_flight") == 0
    assert value(m, "dnc_agi_sessions_total", result="ok") == 1
    assert value(m, "dnc_agi_sessions_total", result="error") == 1
    assert value(m, "dnc_agi_session_seconds_count") == 2
    assert value(m, "dnc_agi_session_seconds_bucket", le="0.0005") == 1
    m.ami_connected(True)
    assert value(m, "dnc_ami_connected") == 1
    m.ami_connected(False)
    assert value(m, "dnc_ami_connected") == 0
    m.attempt_confirmed()
    assert value(m, "dnc_attempts_confirmed_total") == 1
    m.audit_commit(0.003, 12, 7)
    assert value(m, "dnc_audit_records_total") == 12
    assert value(m, "dnc_audit_queue_depth") == 7
    assert value(m, "dnc_audit_commit_seconds_count") == 1
    m.state_error("timeout")
    assert value(m, "dnc_state_errors_total", kind="timeout") == 1
    m.registry_poll("bloctel", "updated")
    m.registry_poll("not-configured", "failed")
    assert value(m, "dnc_registry_polls_total", list="bloctel", outcome="updated") == 1
    assert value(m, "dnc_registry_polls_total", list="unknown", outcome="failed") == 1
    assert value(m, "dnc_gateway_info") == 1
    await gw.close()


async def test_labels_follow_a_reload(sample_config: Config, clock) -> None:
    """A campaign or list added by a reload is counted under its name; a removed one is unknown from then on,
    and its series already exported stay (a counter never loses what it counted)."""
    gw, m = await gateway_for(sample_config, clock)
    await gw.check("0612000001", "legacy")
    await gw.check("0612000001", "autumn")
    m.registry_poll("extra", "updated")
    assert value(m, "dnc_decisions_total", campaign="autumn") == 0
    assert value(m, "dnc_registry_polls_total", list="unknown") == 1

    campaigns = {k: v for k, v in sample_config.campaigns.items() if k != "legacy"}
    m.reconfigure(replace(sample_config, campaigns={**campaigns, "autumn": sample_config.campaigns["legacy"]},
                          lists={**sample_config.lists, "extra": sample_config.lists["bloctel"]}))
    await gw.check("0612000001", "autumn")
    await gw.check("0612000001", "legacy")
    m.registry_poll("extra", "updated")
    assert value(m, "dnc_decisions_total", campaign="autumn") == 1
    assert value(m, "dnc_decisions_total", campaign="unknown") == 2
    assert value(m, "dnc_decisions_total", campaign="legacy") == 1  # counted before the reload, kept
    assert value(m, "dnc_registry_polls_total", list="extra") == 1
    assert {lab["campaign"] for n, lab, _ in samples(m) if "campaign" in lab} == {"legacy", "autumn", "unknown"}
    await gw.close()


async def test_every_instance_has_its_own_registry(sample_config: Config, clock) -> None:
    gw1, m1 = await gateway_for(sample_config, clock)
    gw2, m2 = await gateway_for(sample_config, clock)
    await gw1.check("0612000001", "legacy")
    assert value(m1, "dnc_decisions_total") == 1
    assert value(m2, "dnc_decisions_total") == 0
    await gw1.close()
    await gw2.close()


async def test_audit_log_reports_its_commits(sample_config: Config, clock, tmp_path: Path) -> None:
    audit_mod = pytest.importorskip("gateway.audit", reason="gateway.audit (the audit log) is not there yet")
    audit = audit_mod.AuditLog(tmp_path / "audit.db", sample_config.audit)
    await audit.start()
    gw = Gateway(sample_config, clock=clock, audit=audit)
    await gw.start()
    gw.holder.load_all()
    m = Metrics(gw)
    gw.observers.append(m)
    audit.metrics = m  # as gateway.app.start wires it
    assert value(m, "dnc_audit_up") == 1
    for _ in range(3):
        await gw.check("0612000010", "prospect")  # ALLOW: durable before the answer
    assert value(m, "dnc_audit_records_total") >= 1
    assert value(m, "dnc_audit_commit_seconds_count") >= 1
    assert value(m, "dnc_audit_queue_depth") == 0
    await gw.close()
    await audit.close()
    assert value(m, "dnc_audit_up") == 0


# -- deploy/: the Prometheus scrape config and the Grafana dashboard --------------------------------------

METRIC_NAME = re.compile(r"\b(dnc_[a-z0-9_]+)")


def exported_series() -> set[str]:
    """Every series name a scrape can show: counters' _total, histograms' _bucket/_sum/_count."""
    names = set(EXPORTED)
    for n in EXPORTED:
        names |= {n + "_bucket", n + "_sum", n + "_count", n + "_created"}
    return names


def dashboard_exprs() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "deploy" / "grafana").rglob("*.json")):
        dash = json.loads(path.read_text())

        def walk(node: object, where: str) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("expr"), str):
                    found.append((where, node["expr"]))
                if isinstance(node.get("query"), str) and "dnc_" in node["query"]:
                    found.append((where, node["query"]))
                for k, v in node.items():
                    walk(v, f"{where}/{node.get('title', k)}")
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, f"{where}[{i}]")

        walk(dash, path.name)
    return found


# Grafana's variables, replaced by something PromQL accepts before parsing.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s", "$instance": ".*",
                "$campaign": ".*"}


def selected_metrics(expr: str) -> set[str]:
    """Metric names an expression selects, read from its syntax tree (the parse fails on invalid PromQL)."""
    promql = pytest.importorskip("promql_parser", reason="promql-parser (test extra) is not installed")
    for var, repl in GRAFANA_VARS.items():
        expr = expr.replace(var, repl)
    if expr.startswith("label_values("):  # a Grafana template query, not PromQL
        return set(METRIC_NAME.findall(expr))
    names: set[str] = set()

    def walk(node: object) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            names.add(node.name)  # type: ignore[attr-defined]
        elif kind == "MatrixSelector":
            walk(node.vector_selector)  # type: ignore[attr-defined]
        elif kind == "BinaryExpr":
            walk(node.lhs)  # type: ignore[attr-defined]
            walk(node.rhs)  # type: ignore[attr-defined]
        elif kind == "Call":
            for arg in node.args:  # type: ignore[attr-defined]
                walk(arg)
        elif kind in ("AggregateExpr", "ParenExpr", "UnaryExpr", "SubqueryExpr"):
            walk(node.expr)  # type: ignore[attr-defined]

    walk(promql.parse(expr))
    return names


def test_dashboard_queries_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 8, exprs
    known = exported_series()
    for where, expr in exprs:
        names = selected_metrics(expr)
        assert names, f"{where}: {expr!r} queries no dnc_ metric"
        assert names <= known, f"{where}: {expr!r} uses {sorted(names - known)}, not exported by gateway.metrics"
    used = {n for _, e in exprs for n in METRIC_NAME.findall(e)}
    for needed in ("dnc_decisions_total", "dnc_decision_seconds_bucket", "dnc_agi_session_seconds_bucket",
                   "dnc_list_age_days", "dnc_ami_connected", "dnc_bypasses_total", "dnc_audit_queue_depth"):
        assert needed in used, f"the dashboard has no panel on {needed}"


def test_dashboard_and_provisioning_are_well_formed() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) is not installed")
    dash = json.loads((ROOT / "deploy/grafana/dashboards/dnc-gateway.json").read_text())
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        if p.get("type") != "row":
            assert p["datasource"]["uid"] == "${datasource}" or p["datasource"]["type"] == "prometheus", p["title"]
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/dnc-gateway.yml").read_text())
    assert prov["providers"][0]["options"]["path"]


def test_prometheus_scrapes_both_gateways() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) is not installed")
    conf = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    gw = jobs["dnc-gateway"]
    assert gw.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in gw["static_configs"] for t in sc["targets"]]
    assert targets == ["gw1:8080", "gw2:8080"]
    for rule_file in conf.get("rule_files", []):
        rules = yaml.safe_load((ROOT / "deploy/prometheus" / rule_file).read_text())
        known = exported_series()
        for group in rules["groups"]:
            for rule in group["rules"]:
                names = selected_metrics(rule["expr"])
                assert names, (rule.get("alert"), rule["expr"])
                assert names <= known | {"up"}, (rule.get("alert"), rule["expr"])


def alert_rules() -> dict[str, dict[str, object]]:
    yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) is not installed")
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}


def test_every_shipped_alert_is_valid_promql_on_exported_metrics() -> None:
    known = exported_series()
    for name, rule in alert_rules().items():
        names = selected_metrics(str(rule["expr"]))
        assert names, f"{name} selects no dnc_ metric"
        assert names - {"up"} <= known, f"{name} uses {sorted(names - known)}, not exported by gateway.metrics"
        assert rule["labels"]["severity"] in ("warning", "critical"), name  # type: ignore[index]


def test_alerts_on_the_state_store_fastagi_errors_and_the_audit() -> None:
    """The three faults an operator must hear about before the supervisor does."""
    rules = alert_rules()
    assert selected_metrics(str(rules["DncStateStoreDown"]["expr"])) == {"dnc_state_up"}
    assert selected_metrics(str(rules["DncAgiErrorsRising"]["expr"])) == {"dnc_agi_errors_total",
                                                                         "dnc_agi_sessions_total"}
    assert selected_metrics(str(rules["DncAuditFailing"]["expr"])) == {"dnc_audit_failures_total"}
    assert rules["DncStateStoreDown"]["labels"]["severity"] == "critical"  # type: ignore[index]


async def test_fastagi_errors_for_the_page_since_start_and_in_the_last_minutes(sample_config: Config) -> None:
    now = [FIXED_NOW]
    gw, m = await gateway_for(sample_config, lambda: now[0])
    m.agi_error("timeout")
    m.agi_error("timeout")
    m.agi_error("protocol")
    report = m.agi_report(10)
    assert (report["errors"], report["total"], report["recent"]) == ({"timeout": 2, "protocol": 1}, 3, 3)
    now[0] = FIXED_NOW + timedelta(minutes=11)
    m.agi_error("overload")
    report = m.agi_report(10)
    assert (report["total"], report["recent"]) == (4, 1)  # the first three are older than ten minutes
    m.state_error("timeout")
    assert m.state_error_counts() == {"timeout": 1}
    await gw.close()
