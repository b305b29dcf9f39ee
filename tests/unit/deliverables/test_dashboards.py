"""grafana/: dashboards follow dashboard-linter's core rules, their PromQL parses
(promtool), they show what operators need, and the provisioning files are valid."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashlint import (
    DATASOURCE_REF,
    lint,
    panels,
    queries,
    rule_counters_only_in_rate,
    rule_grid_positions,
    rule_job_filter,
    rule_one_datasource_variable,
    rule_panels_use_datasource_variable,
    rule_rate_interval,
    rule_unique_panel_ids,
    substitute,
)
from deliv_tools import (
    DASHBOARDS,
    GRAFANA,
    PENDING_METRICS,
    exported_metric_names,
    need,
    run,
    series_names,
)

UIDS = {"hbmon-overview", "hbmon-heartbeat"}
FILES = sorted(DASHBOARDS.glob("*.json"))


def load(uid: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / f"{uid}.json").read_text())


def all_dashboards() -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in FILES]


def exprs(d: dict[str, Any]) -> list[str]:
    return [e for _, e in queries(d)]


def test_the_two_dashboards_exist() -> None:
    assert {f.stem for f in FILES} == UIDS


def test_json_is_what_the_generator_writes() -> None:
    r = subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_model(uid: str) -> None:
    d = load(uid)
    assert d["uid"] == uid
    assert d["schemaVersion"] >= 39
    assert d["title"].startswith("hbmon / ")
    assert "__inputs" not in d
    assert "${DS_" not in json.dumps(d)
    assert d.get("id") is None  # provisioning assigns ids; a fixed one clashes
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == ["datasource", "job", "node", "peer"]


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_dashboard_linter_rules_pass(uid: str) -> None:
    assert lint(load(uid)) == []


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_metrics_exist(uid: str) -> None:
    exported = exported_metric_names()
    for where, expr in queries(load(uid)):
        unknown = series_names(expr) - exported - PENDING_METRICS
        assert not unknown, f"{where}: {unknown}"


def test_every_expression_parses(tmp_path: Path) -> None:
    """Each panel and annotation query, variables substituted, as a recording rule."""
    rules = []
    for d in all_dashboards():
        for i, (_, expr) in enumerate(queries(d)):
            rules.append({"record": f"dashboard:{d['uid'].replace('-', '_')}:q{i}", "expr": ""})
            rules[-1]["expr"] = substitute(expr)
    assert len(rules) > 25
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    r = run(need("promtool"), "check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules)} rules found" in r.stdout
    # ... and the check does reject a broken query.
    bad = [*rules, {"record": "dashboard:broken", "expr": "sum by (node (up)"}]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": bad}]}))
    assert run(need("promtool"), "check", "rules", str(path)).returncode != 0


def test_substitution_leaves_no_variable() -> None:
    for d in all_dashboards():
        for where, expr in queries(d):
            assert "$" not in substitute(expr), where


# ------------------------------------------------------------- content --
def panel(d: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in panels(d) if p["title"] == title)


def test_overview_content() -> None:
    d = load("hbmon-overview")
    by_type: dict[str, list[str]] = {}
    for p in panels(d):
        by_type.setdefault(p["type"], []).extend(t["expr"] for t in p["targets"])
    timelines = " ".join(by_type["state-timeline"])
    for metric in ("hbmon_node_state", "hbmon_link_up", "hbmon_ping_node_up"):
        assert metric in timelines, metric
    assert any("hbmon_resource_group_held" in e for e in by_type["stat"])
    assert any('ALERTS{alertname=~"Hbmon.*"' in e for e in by_type["table"])
    annotations = [a for a in d["annotations"]["list"] if "expr" in a]
    assert any("hbmon_failovers_total" in a["expr"] for a in annotations)
    # The resource metrics are not the only content: most panels work without them.
    without = [p for p in panels(d) if not any(m in json.dumps(p) for m in PENDING_METRICS)]
    assert len(without) >= 8


def test_heartbeat_content() -> None:
    d = load("hbmon-heartbeat")
    rtt = " ".join(exprs({"panels": [panel(d, "Heartbeat RTT per peer and link")]}))
    assert "hbmon_heartbeat_rtt_seconds_bucket" in rtt
    assert "link" in rtt
    interval = panel(d, "Heartbeat interval vs warntime and deadtime")
    iexprs = [t["expr"] for t in interval["targets"]]
    assert any(e.startswith("histogram_quantile(0.99") for e in iexprs)
    # Thresholds come from the timer gauges, not from numbers typed into the panel.
    assert any("hbmon_config_warntime_seconds" in e for e in iexprs)
    assert any("hbmon_config_deadtime_seconds" in e for e in iexprs)
    assert {o["matcher"]["options"] for o in interval["fieldConfig"]["overrides"]} == {
        "^warntime .*",
        "^deadtime .*",
    }
    text = " ".join(exprs(d))
    for metric in (
        "hbmon_heartbeat_late_total",
        "hbmon_heartbeat_lost_total",
        "hbmon_ping_rtt_seconds_bucket",
        "hbmon_ping_node_up",
        "hbmon_packets_dropped_total",
        "hbmon_loop_lag_seconds_bucket",
    ):
        assert metric in text, metric


def test_peer_state_mapping_covers_every_state() -> None:
    p = panel(load("hbmon-overview"), "Peer state, as each node sees it")
    texts = {o["text"] for o in p["fieldConfig"]["defaults"]["mappings"][0]["options"].values()}
    assert texts == {"init", "up", "active", "dead"}


# ------------------------------------------------- the linter catches --
def broken(mutate: Any) -> dict[str, Any]:
    d = copy.deepcopy(load("hbmon-heartbeat"))
    mutate(d)
    return d


def first_target(d: dict[str, Any]) -> dict[str, Any]:
    return next(iter(panels(d)))["targets"][0]


def test_linter_catches_a_hardcoded_datasource() -> None:
    d = broken(lambda d: next(iter(panels(d))).update(datasource={"uid": "abc"}))
    assert rule_panels_use_datasource_variable(d)
    d = broken(lambda d: d["templating"]["list"].append(dict(d["templating"]["list"][0])))
    assert rule_one_datasource_variable(d)
    assert DATASOURCE_REF == {"type": "prometheus", "uid": "${datasource}"}


def test_linter_catches_a_fixed_rate_window() -> None:
    def mutate(d: dict[str, Any]) -> None:
        t = first_target(d)
        t["expr"] = t["expr"].replace("[$__rate_interval]", "[5m]")

    assert rule_rate_interval(broken(mutate))


def test_linter_catches_a_raw_counter() -> None:
    def mutate(d: dict[str, Any]) -> None:
        first_target(d)["expr"] = 'hbmon_heartbeat_late_total{job=~"$job"}'

    assert rule_counters_only_in_rate(broken(mutate))
    ok = 'sum(increase(hbmon_heartbeat_late_total{reason="x_total"}[$__rate_interval]))'
    assert rule_counters_only_in_rate({"panels": [{"id": 1, "title": "t", "targets": [
        {"refId": "A", "expr": ok}]}]}) == []  # fmt: skip


def test_linter_catches_ids_and_grid() -> None:
    def dup(d: dict[str, Any]) -> None:
        d["panels"][1]["id"] = d["panels"][0]["id"]

    assert rule_unique_panel_ids(broken(dup))

    def nogrid(d: dict[str, Any]) -> None:
        del d["panels"][0]["gridPos"]

    assert rule_grid_positions(broken(nogrid))

    def overlap(d: dict[str, Any]) -> None:
        d["panels"][1]["gridPos"] = dict(d["panels"][0]["gridPos"])

    assert rule_grid_positions(broken(overlap))


def test_linter_catches_a_missing_job_filter() -> None:
    def mutate(d: dict[str, Any]) -> None:
        first_target(d)["expr"] = "hbmon_comm_up"

    assert rule_job_filter(broken(mutate))


# ---------------------------------------------------------- provisioning --
def test_datasource_provisioning() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/hbmon.yml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["type"] == "prometheus"
    assert re.fullmatch(r"[\w-]{1,40}", ds["uid"])
    assert ds["url"].startswith("http")


def test_dashboard_provisioning() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/hbmon.yml").read_text())
    assert doc["apiVersion"] == 1
    (prov,) = doc["providers"]
    assert prov["type"] == "file"
    assert prov["options"]["path"].startswith("/")
    assert prov["folder"]
