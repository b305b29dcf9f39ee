"""alerts/: the rule file checks and its promtool unit tests pass, every alert is shown
firing and not firing, conventions hold, and the Alertmanager example routes pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from deliv_tools import (
    ALERTS,
    PENDING_METRICS,
    RULES,
    doc_anchors,
    exported_metric_names,
    need,
    run,
    series_names,
)

REQUIRED = {
    "HbmonHeartbeatLate",
    "HbmonPeerDead",
    "HbmonLinkDown",
    "HbmonPingQuorumLost",
    "HbmonSplitBrain",
    "HbmonGroupUnowned",
    "HbmonFailoverOccurred",
    "HbmonFailoverFlapping",
    "HbmonAuthFailures",
    "HbmonAgentDown",
    "HbmonAgentNotScraped",
    "HbmonTimersMisconfigured",
}
AM_CONFIG = ALERTS / "alertmanager.yml"
TESTS = sorted((ALERTS / "tests").glob("*.yml"))


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def alert(name: str) -> dict[str, Any]:
    return next(a for a in alerts() if a["alert"] == name)


def test_promtool_check_rules_is_clean() -> None:
    r = run(need("promtool"), "check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in r.stdout
    assert "WARNING" not in (r.stdout + r.stderr).upper()


def test_promtool_unit_tests_pass() -> None:
    assert TESTS, "alerts/tests/*.yml missing"
    r = run(need("promtool"), "test", "rules", *map(str, TESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAILED" not in r.stdout


def test_unit_tests_fail_when_an_alert_misbehaves(tmp_path: Any) -> None:
    """The promtool tests really check the rules: break one expression, they fail."""
    broken = RULES.read_text().replace(
        'increase(hbmon_heartbeat_late_total{threshold="warntime"}[5m]) > 0',
        'increase(hbmon_heartbeat_late_total{threshold="deadtime"}[5m]) > 0',
    )
    assert broken != RULES.read_text()
    (tmp_path / "hbmon.rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    for t in TESTS:
        (tmp_path / "tests" / t.name).write_text(t.read_text())
    r = run(need("promtool"), "test", "rules", *(str(tmp_path / "tests" / t.name) for t in TESTS))
    assert r.returncode != 0
    assert "alertname: HbmonHeartbeatLate" in r.stdout + r.stderr


def test_every_alert_is_shown_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (firing if t.get("exp_alerts") else quiet).add(t["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "never shown firing"
    assert names - quiet == set(), "never shown quiet"


def test_required_alerts_exist() -> None:
    assert {a["alert"] for a in alerts()} >= REQUIRED


def test_conventions() -> None:
    anchors = doc_anchors()
    for a in alerts():
        name = a["alert"]
        assert re.fullmatch(r"Hbmon(?:[A-Z][a-z]+)+", name), name
        assert "for" in a, name
        assert a["labels"]["severity"] in {"page", "ticket"}, name
        ann = a["annotations"]
        assert ann["summary"].endswith("."), name
        assert "{{" not in ann["summary"], f"{name}: summary must be static"
        if not a["expr"].startswith("absent("):  # absent() has no labels to show
            assert "{{" in ann["description"], f"{name}: description must be templated"
        anchor = ann["runbook_url"].rpartition("#")[2]
        assert anchor == name.lower(), name
        assert anchor in anchors, f"{name}: no runbook section in docs/observability.md"
        # Per-peer alerts name both the observing node and the peer.
        if re.search(r"hbmon_(node_state|link_up|heartbeat_late_total|partition)", a["expr"]):
            assert "$labels.instance" in ann["description"], name
            assert "$labels.node" in ann["description"], name


def test_rules_read_only_metrics_hbmon_exports() -> None:
    exported = exported_metric_names()
    for a in alerts():
        unknown = series_names(a["expr"]) - exported - PENDING_METRICS
        assert not unknown, f"{a['alert']}: {unknown}"


def test_heartbeat_late_pages_from_the_counter() -> None:
    """A breach shorter than the scrape interval is caught only by the agent's counter."""
    a = alert("HbmonHeartbeatLate")
    assert a["labels"]["severity"] == "page"
    assert re.search(
        r'increase\(hbmon_heartbeat_late_total\{threshold="warntime"\}\[\w+\]\)\s*>\s*0', a["expr"]
    )


def test_security_alert_covers_auth_and_replay() -> None:
    a = alert("HbmonAuthFailures")
    assert 'reason=~"auth_failed|replay"' in a["expr"]
    assert a["labels"].get("category") == "security"


def test_alertmanager_config_checks() -> None:
    r = run(need("amtool"), "check-config", str(AM_CONFIG))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=HbmonHeartbeatLate", "severity=page"], "hbmon-page"),
        (["alertname=HbmonPeerDead", "severity=page"], "hbmon-page"),
        (["alertname=HbmonLinkDown", "severity=ticket"], "hbmon-ticket"),
        (["alertname=HbmonAuthFailures", "severity=ticket", "category=security"], "hbmon-ticket"),
        (["alertname=SomethingElse"], "hbmon-ticket"),
    ],
)
def test_alertmanager_routes(labels: list[str], receiver: str) -> None:
    r = run(need("amtool"), "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == [receiver]


def test_peer_dead_inhibits_heartbeat_late_for_the_same_pair() -> None:
    cfg = yaml.safe_load(AM_CONFIG.read_text())
    rules = [
        r
        for r in cfg["inhibit_rules"]
        if r["source_matchers"] == ['alertname="HbmonPeerDead"']
        and r["target_matchers"] == ['alertname="HbmonHeartbeatLate"']
    ]
    assert len(rules) == 1
    assert {"instance", "node"} <= set(rules[0]["equal"])
    # Names in the config are alert names the rules really define.
    names = {a["alert"] for a in alerts()}
    for r in cfg["inhibit_rules"]:
        for m in r["source_matchers"] + r["target_matchers"]:
            for n in re.findall(r"Hbmon\w+", m):
                assert n in names, n
