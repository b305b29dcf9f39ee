"""Generate hbmon's Grafana dashboards (classic JSON model) into grafana/dashboards/.

    python3 grafana/generate.py          # rewrite the JSON files
    python3 grafana/generate.py --check  # exit 1 if the committed JSON is stale

The JSON is what Grafana provisions; this script is the source that keeps the
panels consistent (one datasource variable, `$job`/`$node`/`$peer` filters,
`$__rate_interval` everywhere). tests/unit/deliverables checks both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
JOB = 'job=~"$job"'
SEL = 'job=~"$job", instance=~"$node"'
PEER = f'{SEL}, node=~"$peer"'
RI = "[$__rate_interval]"

Json = dict[str, Any]


# ------------------------------------------------------------------ pieces --
def target(expr: str, legend: str = "__auto", ref: str = "A", *, instant: bool = False) -> Json:
    t: Json = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend}
    if instant:
        t.update(instant=True, range=False, format="table")
    else:
        t.update(instant=False, range=True)
    return t


def grid(x: int, y: int, w: int, h: int) -> Json:
    return {"x": x, "y": y, "w": w, "h": h}


def mapping(values: dict[int, tuple[str, str]]) -> list[Json]:
    opts = {
        str(v): {"text": text, "color": color, "index": i}
        for i, (v, (text, color)) in enumerate(values.items())
    }
    return [{"type": "value", "options": opts}]


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def threshold_lines(names: dict[str, str]) -> list[Json]:
    """Series named `<name> …` drawn as dashed lines in a fixed color."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": f"^{name} .*"},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": color}},
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "custom.lineWidth", "value": 2},
            ],
        }
        for name, color in names.items()
    ]


def timer_lines(*names: str, sel: str = SEL) -> list[Json]:
    """The configured timers as series (`hbmon_config_<name>_seconds`), one per node."""
    return [
        target(f"max by (instance) (hbmon_config_{n}_seconds{{{sel}}})", f"{n} {{{{instance}}}}", r)
        for n, r in zip(names, "XYZ", strict=False)
    ]


class Dashboard:
    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid = uid
        self.title = title
        self.description = description
        self.panels: list[Json] = []
        self.annotations: list[Json] = [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            }
        ]

    def panel(
        self,
        kind: str,
        title: str,
        description: str,
        pos: Json,
        targets: list[Json],
        *,
        unit: str = "short",
        defaults: Json | None = None,
        overrides: list[Json] | None = None,
        options: Json | None = None,
        custom: Json | None = None,
        transformations: list[Json] | None = None,
    ) -> None:
        all_options: dict[str, Json] = {
            "timeseries": {
                "legend": {
                    "showLegend": True,
                    "displayMode": "table",
                    "placement": "bottom",
                    "calcs": ["max", "lastNotNull"],
                },
                "tooltip": {"mode": "multi", "sort": "desc"},
            },
            "state-timeline": {
                "showValue": "auto",
                "mergeValues": True,
                "alignValue": "left",
                "rowHeight": 0.9,
                "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
                "tooltip": {"mode": "single", "sort": "none"},
            },
            "stat": {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background",
                "graphMode": "none",
                "textMode": "value_and_name",
                "orientation": "auto",
                "justifyMode": "auto",
            },
            "table": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        }
        base_options = all_options[kind]
        all_custom: dict[str, Json] = {
            "timeseries": {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 0,
                "showPoints": "never",
                "spanNulls": False,
            },
            "state-timeline": {"lineWidth": 0, "fillOpacity": 80},
            "stat": {},
            "table": {"align": "auto", "cellOptions": {"type": "auto"}},
        }
        base_custom = all_custom[kind]
        fdefaults: Json = {
            "unit": unit,
            "color": {"mode": "palette-classic" if kind == "timeseries" else "thresholds"},
            "thresholds": thresholds((None, "green")),
            "custom": {**base_custom, **(custom or {})},
        }
        fdefaults.update(defaults or {})
        p: Json = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": pos,
            "targets": targets,
            "fieldConfig": {"defaults": fdefaults, "overrides": overrides or []},
            "options": {**base_options, **(options or {})},
        }
        if transformations:
            p["transformations"] = transformations
        self.panels.append(p)

    def annotation(self, name: str, expr: str, title: str, text: str, color: str) -> None:
        self.annotations.append(
            {
                "name": name,
                "datasource": DS,
                "enable": True,
                "hide": False,
                "iconColor": color,
                "expr": expr,
                "target": {"refId": "Anno", "expr": expr},
                "step": "10s",
                "titleFormat": title,
                "textFormat": text,
                "useValueForTime": False,
            }
        )

    def to_json(self) -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["hbmon", "heartbeat", "ha"],
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "timezone": "",
            "weekStart": "",
            "links": [
                {
                    "type": "dashboards",
                    "tags": ["hbmon"],
                    "asDropdown": False,
                    "includeVars": True,
                    "keepTime": True,
                    "title": "hbmon",
                    "icon": "external link",
                    "targetBlank": False,
                    "tooltip": "",
                    "url": "",
                }
            ],
            "annotations": {"list": self.annotations},
            "templating": {"list": variables()},
            "panels": self.panels,
        }


def query_variable(name: str, label: str, query: str, *, multi: bool) -> Json:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "hide": 0,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "options": [],
    }


def variables() -> list[Json]:
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "regex": "",
            "hide": 0,
            "refresh": 1,
            "current": {},
            "options": [],
        },
        query_variable("job", "Job", "label_values(hbmon_build_info, job)", multi=False),
        query_variable(
            "node", "Node", 'label_values(hbmon_build_info{job=~"$job"}, instance)', multi=True
        ),
        query_variable(
            "peer",
            "Peer",
            'label_values(hbmon_heartbeat_late_total{job=~"$job", instance=~"$node"}, node)',
            multi=True,
        ),
    ]


UP_DOWN = mapping({0: ("down", "red"), 1: ("up", "green")})
# hbmon_node_state is one-hot; the peer-state panel folds it into one number.
NODE_STATE_EXPR = " + ".join(
    f'{k} * sum by (instance, node) (hbmon_node_state{{{PEER}, state="{s}"}})'
    for k, s in ((0, "init"), (1, "up"), (2, "active"), (3, "dead"))
)
NODE_STATE_MAP = mapping(
    {0: ("init", "blue"), 1: ("up", "yellow"), 2: ("active", "green"), 3: ("dead", "red")}
)


def annotate_events(d: Dashboard) -> None:
    d.annotation(
        "Takeovers",
        f"sum by (instance, reason) (increase(hbmon_failovers_total"
        f'{{{JOB}, reason!="startup"}}{RI})) > 0',
        "Takeover by {{instance}}",
        "reason: {{reason}}",
        "orange",
    )
    d.annotation(
        "Peer declared dead",
        f"sum by (instance, node) (increase(hbmon_node_transitions_total"
        f'{{{PEER}, to="dead"}}{RI})) > 0',
        "{{instance}} declared {{node}} dead",
        "",
        "red",
    )


# ---------------------------------------------------------------- overview --
def overview() -> Dashboard:
    d = Dashboard(
        "hbmon-overview",
        "hbmon / Overview",
        "Who holds each resource group, peer, link and ping-node state, takeovers, alerts.",
    )
    annotate_events(d)
    d.panel(
        "stat",
        "Agents scraped",
        "Prometheus `up` for each hbmon agent.",
        grid(0, 0, 6, 4),
        [target(f"up{{{SEL}}}", "{{instance}}")],
        defaults={"mappings": UP_DOWN, "thresholds": thresholds((None, "red"), (1, "green"))},
    )
    d.panel(
        "stat",
        "Communication up",
        "1 once the node heard every peer or declared it dead (hbmon_comm_up).",
        grid(6, 0, 6, 4),
        [target(f"hbmon_comm_up{{{SEL}}}", "{{instance}}")],
        defaults={
            "mappings": mapping({0: ("starting", "yellow"), 1: ("up", "green")}),
            "thresholds": thresholds((None, "yellow"), (1, "green")),
        },
    )
    d.panel(
        "stat",
        "Owners per resource group",
        "Nodes holding each group, summed over the cluster: 1 is healthy, "
        "0 is an outage, more than 1 is split brain.",
        grid(12, 0, 6, 4),
        [target(f"sum by (group) (hbmon_resource_group_held{{{JOB}}})", "{{group}}")],
        defaults={"thresholds": thresholds((None, "red"), (1, "green"), (2, "red"))},
    )
    d.panel(
        "stat",
        "Resource group holder",
        "Which node holds each group (hbmon_resource_group_held = 1).",
        grid(18, 0, 6, 4),
        [target(f"hbmon_resource_group_held{{{SEL}}} == 1", "{{group}} @ {{instance}}")],
        defaults={"mappings": mapping({1: ("held", "green")})},
        options={"textMode": "name"},
    )
    d.panel(
        "state-timeline",
        "Peer state, as each node sees it",
        "hbmon_node_state: init (never heard), up, active, dead.",
        grid(0, 4, 12, 8),
        [target(NODE_STATE_EXPR, "{{instance}} → {{node}}")],
        defaults={"mappings": NODE_STATE_MAP, "min": 0, "max": 3},
    )
    d.panel(
        "state-timeline",
        "Links",
        "hbmon_link_up per path `iface/peer`.",
        grid(12, 4, 12, 8),
        [target(f"hbmon_link_up{{{PEER}}}", "{{instance}}: {{link}}")],
        defaults={"mappings": UP_DOWN, "thresholds": thresholds((None, "red"), (1, "green"))},
    )
    d.panel(
        "state-timeline",
        "Ping nodes",
        "hbmon_ping_node_up: does each node reach its ping nodes.",
        grid(0, 12, 12, 6),
        [target(f"hbmon_ping_node_up{{{SEL}}}", "{{instance}} → {{node}}")],
        defaults={"mappings": UP_DOWN, "thresholds": thresholds((None, "red"), (1, "green"))},
    )
    d.panel(
        "state-timeline",
        "Resource groups held",
        "hbmon_resource_group_held per node and group.",
        grid(12, 12, 12, 6),
        [target(f"hbmon_resource_group_held{{{SEL}}}", "{{instance}}: {{group}}")],
        defaults={
            "mappings": mapping({0: ("released", "transparent"), 1: ("held", "green")}),
            "thresholds": thresholds((None, "transparent"), (1, "green")),
        },
    )
    d.panel(
        "table",
        "Firing hbmon alerts",
        "Alerts from alerts/hbmon.rules.yml firing now (Prometheus ALERTS series).",
        grid(0, 18, 16, 8),
        [target(f'ALERTS{{alertname=~"Hbmon.*", alertstate="firing", {JOB}}}', instant=True)],
        transformations=[
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
            }
        ],
    )
    d.panel(
        "timeseries",
        "Takeovers",
        "Resource groups acquired, by node and reason (hbmon_failovers_total).",
        grid(16, 18, 8, 8),
        [
            target(
                f"sum by (instance, reason) (increase(hbmon_failovers_total{{{SEL}}}{RI}))",
                "{{instance}} {{reason}}",
            )
        ],
        custom={"drawStyle": "bars", "fillOpacity": 80},
    )
    d.panel(
        "timeseries",
        "Reachable ping nodes",
        "hbmon_ping_reachable_nodes against hbmon_ping_nodes_configured.",
        grid(0, 26, 12, 6),
        [
            target(f"hbmon_ping_reachable_nodes{{{SEL}}}", "reachable {{instance}}"),
            target(f"hbmon_ping_nodes_configured{{{SEL}}}", "configured {{instance}}", "B"),
        ],
        overrides=threshold_lines({"configured": "blue"}),
        defaults={"min": 0, "decimals": 0},
    )
    d.panel(
        "timeseries",
        "Time since each peer's last heartbeat",
        "hbmon_peer_heartbeat_age_seconds against warntime and deadtime.",
        grid(12, 26, 12, 6),
        [
            target(f"hbmon_peer_heartbeat_age_seconds{{{PEER}}}", "{{instance}} → {{node}}"),
            *timer_lines("warntime", "deadtime"),
        ],
        unit="s",
        overrides=threshold_lines({"warntime": "orange", "deadtime": "red"}),
    )
    return d


# --------------------------------------------------------------- heartbeat --
def heartbeat() -> Dashboard:
    d = Dashboard(
        "hbmon-heartbeat",
        "hbmon / Heartbeat health",
        "RTT, beat intervals against warntime/deadtime, late and lost beats, ping nodes, "
        "dropped packets, event-loop lag.",
    )
    annotate_events(d)

    def quantile(q: float, metric: str, by: str, sel: str) -> str:
        return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{sel}}}{RI})))"

    d.panel(
        "timeseries",
        "Heartbeat RTT per peer and link",
        "Round-trip time from the hbecho field (hbmon peers only), p50 and p99.",
        grid(0, 0, 12, 8),
        [
            target(
                quantile(0.99, "hbmon_heartbeat_rtt_seconds", "instance, node, link", PEER),
                "p99 {{instance}}: {{link}}",
            ),
            target(
                quantile(0.5, "hbmon_heartbeat_rtt_seconds", "instance, node, link", PEER),
                "p50 {{instance}}: {{link}}",
                "B",
            ),
        ],
        unit="s",
    )
    d.panel(
        "timeseries",
        "Heartbeat interval vs warntime and deadtime",
        "p99 and p50 gap between a peer's beats (hbmon_heartbeat_interval_seconds); the "
        "dashed lines are the configured warntime and deadtime.",
        grid(12, 0, 12, 8),
        [
            target(
                quantile(0.99, "hbmon_heartbeat_interval_seconds", "instance, node", PEER),
                "p99 {{instance}} → {{node}}",
            ),
            target(
                quantile(0.5, "hbmon_heartbeat_interval_seconds", "instance, node", PEER),
                "p50 {{instance}} → {{node}}",
                "B",
            ),
            *timer_lines("warntime", "deadtime"),
        ],
        unit="s",
        overrides=threshold_lines({"warntime": "orange", "deadtime": "red"}),
    )
    d.panel(
        "timeseries",
        "Late heartbeats",
        "Beats later than warntime (the page) and deadtime (hbmon_heartbeat_late_total).",
        grid(0, 8, 12, 8),
        [
            target(
                f"sum by (instance, node, threshold) "
                f"(increase(hbmon_heartbeat_late_total{{{PEER}}}{RI}))",
                "{{instance}} → {{node}} > {{threshold}}",
            )
        ],
        custom={"drawStyle": "bars", "fillOpacity": 80},
        defaults={"decimals": 0},
    )
    d.panel(
        "timeseries",
        "Lost and reordered heartbeats",
        "Sequence gaps that never filled (lost) and that filled late (reordered).",
        grid(12, 8, 12, 8),
        [
            target(
                f"sum by (instance, node) (increase(hbmon_heartbeat_lost_total{{{PEER}}}{RI}))",
                "lost {{instance}} → {{node}}",
            ),
            target(
                f"sum by (instance, node) "
                f"(increase(hbmon_heartbeat_reordered_total{{{PEER}}}{RI}))",
                "reordered {{instance}} → {{node}}",
                "B",
            ),
        ],
        custom={"drawStyle": "bars", "fillOpacity": 80},
    )
    d.panel(
        "timeseries",
        "Ping RTT",
        "ICMP round trip to each ping node: p99 from the histogram, and the last reply.",
        grid(0, 16, 12, 8),
        [
            target(
                quantile(0.99, "hbmon_ping_rtt_seconds", "instance, node", SEL),
                "p99 {{instance}} → {{node}}",
            ),
            target(
                f"hbmon_ping_last_rtt_seconds{{{SEL}}}",
                "last {{instance}} → {{address}}",
                "B",
            ),
        ],
        unit="s",
    )
    d.panel(
        "state-timeline",
        "Ping reachability",
        "hbmon_ping_node_up per node and ping node.",
        grid(12, 16, 12, 8),
        [target(f"hbmon_ping_node_up{{{SEL}}}", "{{instance}} → {{node}}")],
        defaults={"mappings": UP_DOWN, "thresholds": thresholds((None, "red"), (1, "green"))},
    )
    d.panel(
        "timeseries",
        "Dropped packets (authentication, replay, malformed)",
        "hbmon_packets_dropped_total per interface and reason; auth_failed and replay "
        "are forged, replayed or misconfigured traffic.",
        grid(0, 24, 12, 8),
        [
            target(
                f"sum by (instance, iface, reason) "
                f"(rate(hbmon_packets_dropped_total{{{SEL}}}{RI}))",
                "{{instance}} {{iface}} {{reason}}",
            )
        ],
        unit="pps",
    )
    d.panel(
        "timeseries",
        "Event-loop lag",
        "How late the agent ran its own timers (p99, hbmon_loop_lag_seconds): lag here "
        "makes this node's beats late at the peer, whatever the network does.",
        grid(12, 24, 12, 8),
        [
            target(quantile(0.99, "hbmon_loop_lag_seconds", "instance", SEL), "p99 {{instance}}"),
            *timer_lines("keepalive"),
        ],
        unit="s",
        overrides=threshold_lines({"keepalive": "orange"}),
    )
    d.panel(
        "timeseries",
        "Heartbeats sent",
        "Status messages sent per second (one per keepalive).",
        grid(0, 32, 12, 6),
        [target(f"rate(hbmon_heartbeats_sent_total{{{SEL}}}{RI})", "{{instance}}")],
        unit="reqps",
    )
    d.panel(
        "timeseries",
        "Time since each peer's last heartbeat",
        "hbmon_peer_heartbeat_age_seconds against warntime and deadtime.",
        grid(12, 32, 12, 6),
        [
            target(f"hbmon_peer_heartbeat_age_seconds{{{PEER}}}", "{{instance}} → {{node}}"),
            *timer_lines("warntime", "deadtime"),
        ],
        unit="s",
        overrides=threshold_lines({"warntime": "orange", "deadtime": "red"}),
    )
    return d


DASHBOARDS = (overview, heartbeat)


def render() -> dict[Path, str]:
    out = {}
    for build in DASHBOARDS:
        d = build().to_json()
        out[OUT / f"{d['uid']}.json"] = json.dumps(d, indent=2, ensure_ascii=False) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the JSON files are stale")
    args = ap.parse_args(argv)
    stale = []
    for path, text in render().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{path} is stale: run python3 grafana/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
