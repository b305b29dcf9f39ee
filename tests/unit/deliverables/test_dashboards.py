"""grafana/: the committed dashboards are what the generator writes, they match
Grafana's published schema (@grafana/schema, through tsc), follow
dashboard-linter's core rules, their PromQL parses (promtool), they show what
operators need, and the provisioning files are valid and harmless."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import dashschema
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


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hbmon_grafana_generate", GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_fails_when_the_json_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = generator()
    monkeypatch.setattr(gen, "OUT", tmp_path)
    assert gen.main([]) == 0  # writes both files into tmp_path
    assert {p.name for p in tmp_path.iterdir()} == {f"{uid}.json" for uid in UIDS}
    assert gen.main(["--check"]) == 0
    edited = tmp_path / "hbmon-heartbeat.json"
    edited.write_text(edited.read_text().replace('"s"', '"ms"', 1))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert gen.main(["--check"]) == 1
    assert "hbmon-heartbeat.json is stale" in err.getvalue()
    assert "hbmon-overview" not in err.getvalue()
    (tmp_path / "hbmon-overview.json").unlink()
    with contextlib.redirect_stderr(io.StringIO()):
        assert gen.main(["--check"]) == 1


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_model(uid: str) -> None:
    d = load(uid)
    assert d["uid"] == uid
    assert d["schemaVersion"] >= 39
    assert d["title"].startswith("hbmon / ")
    # Imported through the UI or provisioned, the same file works: every panel takes
    # its data source from the `datasource` variable, so there is nothing for
    # `__inputs` to ask, and no `${DS_…}` placeholder that provisioning would leave.
    assert "__inputs" not in d
    assert "${DS_" not in json.dumps(d)
    assert d.get("id") is None  # provisioning assigns ids; a fixed one clashes
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == ["datasource", "cluster", "job", "node", "peer"]


# ------------------------------------------------------ Grafana's schema --
def need_schema() -> None:
    need("node")
    if not dashschema.TSC.exists():
        why = f"{dashschema.TSC} is missing: run `npm ci` in grafana/schema (setup.sh test does)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def test_dashboards_match_grafana_schema(tmp_path: Path) -> None:
    need_schema()
    assert dashschema.check(all_dashboards(), tmp_path) == []


def test_schema_check_catches_what_grafana_would_not_read(tmp_path: Path) -> None:
    """Each broken copy gets its own uid, so each problem is traced to its cause."""
    need_schema()
    good = load("hbmon-heartbeat")

    def broken(uid: str, mutate: Any) -> dict[str, Any]:
        d = copy.deepcopy(good)
        d["uid"] = uid
        mutate(d)
        return d

    def first(d: dict[str, Any], kind: str) -> dict[str, Any]:
        return next(p for p in d["panels"] if p["type"] == kind)

    # the heartbeat dashboard has no stat panel: that case gets one from the overview
    stat = copy.deepcopy(next(p for p in load("hbmon-overview")["panels"] if p["type"] == "stat"))
    stat["options"]["colourMode"] = stat["options"].pop("colorMode")
    cases = [
        broken("misspelt-panel-key", lambda d: first(d, "timeseries").update(titel="x")),
        broken(
            "bad-legend-mode",
            lambda d: first(d, "timeseries")["options"]["legend"].update(displayMode="tabel"),
        ),
        broken(
            "bad-draw-style",
            lambda d: first(d, "timeseries")["fieldConfig"]["defaults"]["custom"].update(
                drawStyle="curve"
            ),
        ),
        broken("stat-option-misspelt", lambda d: d["panels"].append(stat)),
        broken(
            "variable-refresh-text", lambda d: d["templating"]["list"][2].update(refresh="load")
        ),
        broken("no-grid-height", lambda d: first(d, "timeseries")["gridPos"].pop("h")),
        broken("annotation-without-name", lambda d: d["annotations"]["list"][1].pop("name")),
        broken("dashboard-key-misspelt", lambda d: d.update(refrech="30s")),
    ]
    problems = dashschema.check(cases, tmp_path)
    found = {p.where.split()[0] for p in problems}
    assert found == {d["uid"] for d in cases}, problems
    text = " ".join(p.message for p in problems)
    for word in ("titel", "tabel", "curve", "colourMode", "refrech", "'h'", "name"):
        assert word in text, (word, problems)
    # ... and an unknown panel type is refused rather than passed unchecked.
    with pytest.raises(ValueError, match="no schema known for panel type 'heatmap'"):
        dashschema.typescript(
            [broken("heatmap", lambda d: first(d, "timeseries").update(type="heatmap"))]
        )


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
    assert all(e.count("label_replace(ALERTS{") >= 10 for e in by_type["table"])
    annotations = [expr for where, expr in queries(d) if where.startswith("annotation")]
    assert any("hbmon_failovers_total" in e for e in annotations)
    # The resource metrics are not the only content: most panels work without them.
    without = [p for p in panels(d) if not any(m in json.dumps(p) for m in PENDING_METRICS)]
    assert len(without) >= 8


# What issue 18 asks the dashboards to show: panel title -> series its queries read.
SHOWN = {
    "hbmon-overview": {
        "Takeover duration": {"hbmon_failover_duration_seconds_bucket"},
        "Resource operations": {"hbmon_resource_operation_duration_seconds_count"},
        "Resource operation duration": {"hbmon_resource_operation_duration_seconds_bucket"},
        "Resource failures": {
            "hbmon_resource_operation_failures_total",
            "hbmon_resource_group_failures_total",
        },
        "Resource group state": {"hbmon_resource_group_state"},
        "Last configuration reload": {"hbmon_config_last_reload_successful"},
        "Configuration reloads": {"hbmon_config_reloads_total"},
        "Version": {"hbmon_build_info"},
        "Firing hbmon alerts": {"ALERTS"},
    },
    "hbmon-heartbeat": {
        "Agent CPU": {"process_cpu_seconds_total"},
        "Agent memory": {"process_resident_memory_bytes"},
    },
}


@pytest.mark.parametrize("uid", sorted(SHOWN))
def test_dashboards_show_resources_reloads_versions_and_the_process(uid: str) -> None:
    d = load(uid)
    for title, series in SHOWN[uid].items():
        text = " ".join(t["expr"] for t in panel(d, title)["targets"])
        read = set(re.findall(r"\b[a-zA-Z_:][\w:]*(?=\{)", text))
        assert series <= read, (title, read)


def test_group_state_timeline_names_every_state() -> None:
    p = panel(load("hbmon-overview"), "Resource group state")
    expr = p["targets"][0]["expr"]
    states = re.findall(r'state="(\w+)"', expr)
    assert states == ["released", "starting", "held", "stopping", "failed"]
    # the fold gives state i the value i, and the mapping names value i after state i
    assert [int(k) for k in re.findall(r"(\d+) \* sum", expr)] == list(range(5))
    options = p["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {int(v): o["text"] for v, o in options.items()} == dict(enumerate(states))
    assert options["4"]["color"] == "red"


def test_version_panel_names_version_and_revision() -> None:
    p = panel(load("hbmon-overview"), "Version")
    assert "{{version}}" in p["targets"][0]["legendFormat"]
    assert "{{revision}}" in p["targets"][0]["legendFormat"]
    assert p["options"]["textMode"] == "name"


def rule_runbooks() -> dict[str, str]:
    out = {}
    for path in sorted((GRAFANA.parent / "alerts").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[rule["alert"]] = rule["annotations"]["runbook_url"]
    return out


def test_alert_table_links_every_alert_to_its_runbook() -> None:
    p = panel(load("hbmon-overview"), "Firing hbmon alerts")
    (target,) = p["targets"]
    assert target["instant"] is True
    assert target["format"] == "table"
    pattern = r'label_replace\(ALERTS\{alertname="(\w+)", [^}]*\}, "runbook_url", "([^"]+)"'
    found = dict(re.findall(pattern, target["expr"]))
    assert found == rule_runbooks()
    assert all('alertstate="firing"' in m for m in re.findall(r"ALERTS\{[^}]*\}", target["expr"]))
    (override,) = [
        o for o in p["fieldConfig"]["overrides"] if o["matcher"]["options"] == "runbook_url"
    ]
    links = next(x["value"] for x in override["properties"] if x["id"] == "links")
    assert links[0]["url"] == "${__value.raw}"


def test_cluster_variable() -> None:
    for d in all_dashboards():
        v = {x["name"]: x for x in d["templating"]["list"]}
        cluster = v["cluster"]
        assert cluster["query"]["query"] == "label_values(hbmon_build_info, cluster)"
        # "All" is `.*`, which also matches series without a cluster label: the
        # dashboards work before Prometheus sets one.
        assert cluster["includeAll"] is True
        assert cluster["allValue"] == ".*"
        for name in ("job", "node", "peer"):
            assert 'cluster=~"$cluster"' in v[name]["query"]["query"], name


# Units a reader would expect: panel title -> unit.
UNITS = {
    "Heartbeats sent": "suffix: beats/s",
    "Dropped packets (authentication, replay, malformed)": "pps",
    "Agent CPU": "percentunit",
    "Agent memory": "bytes",
    "Takeover duration": "s",
    "Resource operation duration": "s",
    "Heartbeat RTT per peer and link": "s",
    "Event-loop lag": "s",
}


def test_units() -> None:
    by_title = {p["title"]: p for d in all_dashboards() for p in panels(d)}
    for title, unit in UNITS.items():
        assert by_title[title]["fieldConfig"]["defaults"]["unit"] == unit, title
    for p in by_title.values():
        exprs_ = [t["expr"] for t in p["targets"]]
        unit = p["fieldConfig"]["defaults"]["unit"]
        # a quantile or a gauge of seconds (not a timer line, not a timestamp) is in seconds
        seconds = r"\bhbmon_(?!config_)\w+(?<!_timestamp)_seconds(_bucket)?\{"
        if any(re.search(seconds, e) for e in exprs_):
            assert unit == "s", p["title"]
        # counts per refresh interval are whole numbers
        if exprs_ and all(e.lstrip().startswith("sum by") and "increase(" in e for e in exprs_):
            assert p["fieldConfig"]["defaults"]["decimals"] == 0, p["title"]
        assert unit != "reqps", p["title"]


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
    # Grafana matches provisioned data sources by name and keeps one default per
    # organisation: ours must neither take over a user's `Prometheus` nor the default.
    assert ds["name"] != "Prometheus"
    assert "hbmon" in ds["name"]
    assert ds["isDefault"] is False


def test_dashboard_provisioning() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/hbmon.yml").read_text())
    assert doc["apiVersion"] == 1
    (prov,) = doc["providers"]
    assert prov["type"] == "file"
    assert prov["options"]["path"].startswith("/")
    assert prov["folder"]
