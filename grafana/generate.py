"""Generate hbmon's Grafana dashboards (classic JSON model) into grafana/dashboards/.

    .venv/bin/python grafana/generate.py          # rewrite the JSON files
    .venv/bin/python grafana/generate.py --check  # exit 1 if the committed JSON is stale

Built with Grafana Labs' grafana-foundation-sdk (typed builders generated from
Grafana's own schema; pinned in pyproject's `test` extra). Only this script needs
it: the JSON is committed, and the agent and the Debian package never import it.
tests/unit/deliverables checks the JSON against the generator, dashboard-linter's
rules, promtool and Grafana's published schema (@grafana/schema).

Every selector filters on `$cluster` and `$job` (and `$node`/`$peer` where a
series has them); `cluster` is a target label set in Prometheus
(docs/observability.md), "All" matches series without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

import yaml

try:
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as dm
    from grafana_foundation_sdk.models import prometheus as pm
    from grafana_foundation_sdk.models import units
except ImportError:
    sys.exit(
        "grafana/generate.py needs grafana-foundation-sdk: run it with the project's "
        "virtualenv (pip install -e '.[test]'), e.g. .venv/bin/python grafana/generate.py"
    )

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
RULES = sorted((HERE.parent / "alerts").glob("*.rules.yml"))

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
CLUSTER = 'cluster=~"$cluster"'
JOB = f'{CLUSTER}, job=~"$job"'
SEL = f'{JOB}, instance=~"$node"'
PEER = f'{SEL}, node=~"$peer"'
RI = "[$__rate_interval]"
# Beats per second, as Grafana's custom-unit syntax writes it.
BEATS_PER_SECOND = "suffix: beats/s"


# ------------------------------------------------------------------ queries --
def q(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery().datasource(DS).ref_id(ref).expr(expr).legend_format(legend).range()
    )


def q_table(expr: str) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .datasource(DS)
        .ref_id("A")
        .expr(expr)
        .instant()
        .format(pm.PromQueryFormat.TABLE)
    )


def quantile(phi: float, metric: str, by: str, sel: str) -> str:
    return f"histogram_quantile({phi}, sum by ({by}, le) (rate({metric}_bucket{{{sel}}}{RI})))"


def timers(*names: str) -> list[prometheus.Dataquery]:
    """The configured timers as series (`hbmon_config_<name>_seconds`), one per node."""
    return [
        q(f"max by (instance) (hbmon_config_{n}_seconds{{{SEL}}})", f"{n} {{{{instance}}}}", ref)
        for n, ref in zip(names, "XYZ", strict=False)
    ]


def one_hot(metric: str, states: Iterable[str], by: str, sel: str) -> str:
    """A one-hot state gauge folded into one number per series: the state's index."""
    return " + ".join(
        f'{k} * sum by ({by}) ({metric}{{{sel}, state="{s}"}})' for k, s in enumerate(states)
    )


# ------------------------------------------------------------- field config --
def mapping(*values: tuple[str, str]) -> list[dm.ValueMapping]:
    """Value i shows as values[i] = (text, color)."""
    return [
        dm.ValueMap(
            {
                str(i): dm.ValueMappingResult(text=t, color=c, index=i)
                for i, (t, c) in enumerate(values)
            }
        )
    ]


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in pairs])
    )


def fixed_color(color: str) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})


def dashed(color: str) -> list[dm.DynamicConfigValue]:
    return [
        fixed_color(color),
        dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
        dm.DynamicConfigValue(id_val="custom.lineWidth", value=2),
    ]


UP_DOWN = (("down", "red"), ("up", "green"))
NODE_STATES = (("init", "blue"), ("up", "yellow"), ("active", "green"), ("dead", "red"))
GROUP_STATES = (
    ("released", "text"),
    ("starting", "blue"),
    ("held", "green"),
    ("stopping", "yellow"),
    ("failed", "red"),
)


# ------------------------------------------------------------------- panels --
class AnyPanel(Protocol):
    """What every SDK panel builder has (each plugin's builder is its own class)."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: dm.DataSourceRef) -> Self: ...
    def targets(self, targets: list[cogbuilder.Builder[Any]]) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def build(self) -> dm.Panel: ...


P = TypeVar("P", bound=AnyPanel)
T = TypeVar("T")


def fill(p: P, title: str, text: str, size: tuple[int, int], targets: list[Any], unit: str) -> P:
    w, h = size
    return (
        p.title(title)
        .description(text)
        .datasource(DS)
        .targets(targets)
        .span(w)
        .height(h)
        .unit(unit)
    )


def graph(
    title: str,
    text: str,
    size: tuple[int, int],
    *targets: prometheus.Dataquery,
    unit: str = units.Short,
    bars: bool = False,
    lines: dict[str, str] | None = None,
) -> timeseries.Panel:
    """A time series; `lines` draws the series named `<name> …` dashed in a color."""
    p = fill(timeseries.Panel(), title, text, size, list(targets), unit)
    p = (
        p.legend(
            cb.VizLegendOptions()
            .show_legend(True)
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .calcs(["max", "lastNotNull"])
        )
        .tooltip(
            cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
        )
        .line_width(1)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
    )
    if bars:
        p = p.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80)
    else:
        p = p.draw_style(cm.GraphDrawStyle.LINE).fill_opacity(0)
    for name, color in (lines or {}).items():
        p = p.override_by_regexp(f"^{name} .*", dashed(color))
    return p


def timeline(
    title: str,
    text: str,
    size: tuple[int, int],
    target: prometheus.Dataquery,
    states: tuple[tuple[str, str], ...],
) -> statetimeline.Panel:
    """A state timeline whose value i is the state states[i] = (name, color)."""
    return (
        fill(statetimeline.Panel(), title, text, size, [target], units.NoUnit)
        .show_value(cm.VisibilityMode.AUTO)
        .merge_values(True)
        .align_value(cm.TimelineValueAlignment.LEFT)
        .row_height(0.9)
        .line_width(0)
        .fill_opacity(80)
        .legend(
            cb.VizLegendOptions()
            .show_legend(False)
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .calcs([])
        )
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.SINGLE).sort(cm.SortOrder.NONE))
        .mappings(mapping(*states))
        .thresholds(steps((None, states[0][1]), *((i, c) for i, (_, c) in enumerate(states) if i)))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .min(0)
        .max(len(states) - 1)
    )


def single(
    title: str,
    text: str,
    size: tuple[int, int],
    target: prometheus.Dataquery,
    *,
    unit: str = units.NoUnit,
    show: cm.BigValueTextMode = cm.BigValueTextMode.VALUE_AND_NAME,
) -> stat.Panel:
    return (
        fill(stat.Panel(), title, text, size, [target], unit)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields(""))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(show)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    )


def runbooks() -> dict[str, str]:
    """alertname -> runbook_url of every alerting rule in alerts/*.rules.yml."""
    out = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[rule["alert"]] = rule.get("annotations", {}).get("runbook_url", "")
    return out


def alerts_table(size: tuple[int, int]) -> table.Panel:
    """Firing hbmon alerts with a link to each one's runbook. Prometheus' ALERTS
    series carry labels only, so the runbook URL (an annotation) is added per alert
    name by label_replace, from the rules themselves."""
    sel = f'alertstate="firing", {CLUSTER}, job=~"$job|"'
    expr = "\n  or ".join(
        f'label_replace(ALERTS{{alertname="{name}", {sel}}}, "runbook_url", "{url}", "", "")'
        for name, url in sorted(runbooks().items())
    )
    hidden = {"Time": True, "Value": True, "__name__": True, "alertstate": True}
    # A data link (Grafana's DataLink: title, url, targetBlank); the SDK has no type
    # for it and types a panel's links as dashboard links, a different thing.
    link: dict[str, object] = {
        "title": "Runbook for ${__data.fields.alertname}",
        "url": "${__value.raw}",
        "targetBlank": True,
    }
    return (
        fill(
            table.Panel(),
            "Firing hbmon alerts",
            "Alerts from alerts/*.rules.yml firing now (Prometheus' ALERTS series); "
            "the runbook column links to each alert's runbook.",
            size,
            [q_table(expr)],
            units.String,
        )
        .show_header(True)
        .cell_height(cm.TableCellHeight.SM)
        .footer(cb.TableFooterOptions().show(False).reducer([]))
        .align(cm.FieldTextAlignment.AUTO)
        .cell_options(cm.TableAutoCellOptions())
        .inspect(False)
        .with_transformation(
            dm.DataTransformerConfig(id_val="organize", options={"excludeByName": hidden})
        )
        .override_by_name(
            "runbook_url",
            [
                dm.DynamicConfigValue(id_val="displayName", value="runbook"),
                dm.DynamicConfigValue(id_val="links", value=[link]),
            ],
        )
    )


# --------------------------------------------------------------- dashboards --
class PromAnnotation(dm.AnnotationQuery):
    """A Prometheus annotation. The SDK types an annotation's target as the
    built-in Grafana one; Grafana's Prometheus data source reads a query there and
    its title and text templates beside it."""

    def __init__(self, name: str, expr: str, title: str, text: str, color: str) -> None:
        super().__init__(name=name, datasource=DS, enable=True, hide=False, icon_color=color)
        self.query = prometheus.Dataquery().ref_id("Anno").expr(expr)
        self.title_format = title
        self.text_format = text

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out["target"] = self.query.build()
        out.update(titleFormat=self.title_format, textFormat=self.text_format)
        return out


class Built(cogbuilder.Builder[T], Generic[T]):
    """A model the SDK has no builder for, handed to the builders that want one."""

    def __init__(self, model: T) -> None:
        self.model = model

    def build(self) -> T:
        return self.model


def plain(v: cogbuilder.Builder[dm.VariableModel]) -> Built[dm.VariableModel]:
    """The variable without the interval variables' `auto*` fields, which the SDK
    writes into every variable and Grafana's schema does not list for the others."""
    model = v.build()
    model.auto = model.auto_min = model.auto_count = None
    return Built(model)


def variable(name: str, label: str, query: str, *, multi: bool) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query({"query": query, "refId": f"{name}-variable"})
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )


def dashboard(uid: str, title: str, text: str) -> db.Dashboard:
    builtin = (
        db.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )
    takeovers = PromAnnotation(
        "Takeovers",
        "sum by (cluster, instance, reason) "
        f'(increase(hbmon_failovers_total{{{JOB}, reason!="startup"}}{RI})) > 0',
        "Takeover by {{instance}}",
        "reason: {{reason}}",
        "orange",
    )
    dead = PromAnnotation(
        "Peer declared dead",
        "sum by (cluster, instance, node) "
        f'(increase(hbmon_node_transitions_total{{{PEER}, to="dead"}}{RI})) > 0',
        "{{instance}} declared {{node}} dead",
        "",
        "red",
    )
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(text)
        .tags(["hbmon", "heartbeat", "ha"])
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .timezone("")
        .refresh("30s")
        .version(1)
        .link(
            db.DashboardLink("hbmon")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["hbmon"])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
            .icon("external link")
        )
        .annotations([builtin, Built(takeovers), Built(dead)])
        .variables(
            [
                plain(db.DatasourceVariable("datasource").label("Data source").type("prometheus")),
                plain(
                    variable(
                        "cluster", "Cluster", "label_values(hbmon_build_info, cluster)", multi=False
                    )
                    .include_all(True)
                    .all_value(".*")
                ),
                plain(
                    variable(
                        "job",
                        "Job",
                        f"label_values(hbmon_build_info{{{CLUSTER}}}, job)",
                        multi=False,
                    )
                ),
                plain(
                    variable(
                        "node",
                        "Node",
                        f"label_values(hbmon_build_info{{{JOB}}}, instance)",
                        multi=True,
                    )
                ),
                plain(
                    variable(
                        "peer",
                        "Peer",
                        f"label_values(hbmon_heartbeat_late_total{{{SEL}}}, node)",
                        multi=True,
                    )
                ),
            ]
        )
    )


def with_panels(d: db.Dashboard, panels: Iterable[cogbuilder.Builder[dm.Panel]]) -> db.Dashboard:
    """Panels flow left to right, rows of 24 columns; ids in order."""
    for i, p in enumerate(panels, start=1):
        panel = p.build()
        panel.id_val = i
        d = d.with_panel(Built(panel))
    return d


# ---------------------------------------------------------------- overview --
def overview() -> db.Dashboard:
    held_by = "cluster, group"
    return with_panels(
        dashboard(
            "hbmon-overview",
            "hbmon / Overview",
            "Who holds each resource group, peer, link and ping-node state, takeovers and "
            "their duration, resource operations, reloads, versions, firing alerts.",
        ),
        [
            single(
                "Agents scraped",
                "Prometheus `up` for each hbmon agent.",
                (4, 4),
                q(f"up{{{SEL}}}", "{{instance}}"),
            )
            .mappings(mapping(*UP_DOWN))
            .thresholds(steps((None, "red"), (1, "green"))),
            single(
                "Communication up",
                "1 once the node heard every peer or declared it dead (hbmon_comm_up).",
                (4, 4),
                q(f"hbmon_comm_up{{{SEL}}}", "{{instance}}"),
            )
            .mappings(mapping(("starting", "yellow"), ("up", "green")))
            .thresholds(steps((None, "yellow"), (1, "green"))),
            single(
                "Owners per resource group",
                "Nodes holding each group, summed over the cluster: 1 is healthy, "
                "0 is an outage, more than 1 is split brain.",
                (4, 4),
                q(f"sum by ({held_by}) (hbmon_resource_group_held{{{JOB}}})", "{{group}}"),
            ).thresholds(steps((None, "red"), (1, "green"), (2, "red"))),
            single(
                "Resource group holder",
                "Which node holds each group (hbmon_resource_group_held = 1).",
                (4, 4),
                q(f"hbmon_resource_group_held{{{SEL}}} == 1", "{{group}} @ {{instance}}"),
                show=cm.BigValueTextMode.NAME,
            ).mappings(mapping(("released", "text"), ("held", "green"))),
            single(
                "Version",
                "hbmon version and revision of each agent (hbmon_build_info).",
                (4, 4),
                q(f"hbmon_build_info{{{SEL}}}", "{{instance}}: {{version}} ({{revision}})"),
                show=cm.BigValueTextMode.NAME,
            ).thresholds(steps((None, "blue"))),
            single(
                "Last configuration reload",
                "Whether each agent's last SIGHUP reload succeeded "
                "(hbmon_config_last_reload_successful; 'ok' also before any reload).",
                (4, 4),
                q(f"hbmon_config_last_reload_successful{{{SEL}}}", "{{instance}}"),
            )
            .mappings(mapping(("failed", "red"), ("ok", "green")))
            .thresholds(steps((None, "red"), (1, "green"))),
            timeline(
                "Peer state, as each node sees it",
                "hbmon_node_state: init (never heard), up, active, dead.",
                (12, 8),
                q(
                    one_hot(
                        "hbmon_node_state", (s for s, _ in NODE_STATES), "instance, node", PEER
                    ),
                    "{{instance}} → {{node}}",
                ),
                NODE_STATES,
            ),
            timeline(
                "Links",
                "hbmon_link_up per path `iface/peer`.",
                (12, 8),
                q(f"hbmon_link_up{{{PEER}}}", "{{instance}}: {{link}}"),
                UP_DOWN,
            ),
            timeline(
                "Ping nodes",
                "hbmon_ping_node_up: does each node reach its ping nodes.",
                (12, 6),
                q(f"hbmon_ping_node_up{{{SEL}}}", "{{instance}} → {{node}}"),
                UP_DOWN,
            ),
            timeline(
                "Resource groups held",
                "hbmon_resource_group_held per node and group.",
                (12, 6),
                q(f"hbmon_resource_group_held{{{SEL}}}", "{{instance}}: {{group}}"),
                (("released", "transparent"), ("held", "green")),
            ),
            timeline(
                "Resource group state",
                "hbmon_resource_group_state on each node: released, starting, held, stopping, "
                "failed (a start or stop failed; backing off).",
                (12, 8),
                q(
                    one_hot(
                        "hbmon_resource_group_state",
                        (s for s, _ in GROUP_STATES),
                        "instance, group",
                        SEL,
                    ),
                    "{{instance}}: {{group}}",
                ),
                GROUP_STATES,
            ),
            graph(
                "Takeover duration",
                "From the trigger (peer declared dead, shutdown notice, request) to the last "
                "resource started (hbmon_failover_duration_seconds), p50 and p99 by node and "
                "reason; the failover after a crash adds deadtime (dashed) before it.",
                (12, 8),
                q(
                    quantile(0.99, "hbmon_failover_duration_seconds", "instance, reason", SEL),
                    "p99 {{instance}} {{reason}}",
                ),
                q(
                    quantile(0.5, "hbmon_failover_duration_seconds", "instance, reason", SEL),
                    "p50 {{instance}} {{reason}}",
                    "B",
                ),
                *timers("deadtime"),
                unit=units.Seconds,
                lines={"deadtime": "red"},
            ),
            alerts_table((16, 8)),
            graph(
                "Takeovers",
                "Resource groups acquired, by node and reason (hbmon_failovers_total).",
                (8, 8),
                q(
                    f"sum by (instance, reason) (increase(hbmon_failovers_total{{{SEL}}}{RI}))",
                    "{{instance}} {{reason}}",
                ),
                bars=True,
            ).decimals(0),
            graph(
                "Resource operations",
                "Start, stop and status runs of resource scripts and addresses "
                "(hbmon_resource_operation_duration_seconds_count).",
                (8, 8),
                q(
                    "sum by (instance, op) "
                    f"(increase(hbmon_resource_operation_duration_seconds_count{{{SEL}}}{RI}))",
                    "{{instance}} {{op}}",
                ),
                bars=True,
            ).decimals(0),
            graph(
                "Resource operation duration",
                "p99 time a resource operation took, by resource and operation.",
                (8, 8),
                q(
                    quantile(
                        0.99,
                        "hbmon_resource_operation_duration_seconds",
                        "instance, resource, op",
                        SEL,
                    ),
                    "{{instance}} {{resource}} {{op}}",
                ),
                unit=units.Seconds,
            ),
            graph(
                "Resource failures",
                "Failed resource operations (non-zero exit, timeout, netlink error) and the "
                "group starts and stops they failed.",
                (8, 8),
                q(
                    "sum by (instance, resource, op) "
                    f"(increase(hbmon_resource_operation_failures_total{{{SEL}}}{RI}))",
                    "{{instance}} {{resource}} {{op}}",
                ),
                q(
                    "sum by (instance, group, op) "
                    f"(increase(hbmon_resource_group_failures_total{{{SEL}}}{RI}))",
                    "group {{instance}} {{group}} {{op}}",
                    "B",
                ),
                bars=True,
            ).decimals(0),
            graph(
                "Reachable ping nodes",
                "hbmon_ping_reachable_nodes against hbmon_ping_nodes_configured.",
                (8, 6),
                q(f"hbmon_ping_reachable_nodes{{{SEL}}}", "reachable {{instance}}"),
                q(f"hbmon_ping_nodes_configured{{{SEL}}}", "configured {{instance}}", "B"),
                lines={"configured": "blue"},
            )
            .min(0)
            .decimals(0),
            graph(
                "Time since each peer's last heartbeat",
                "hbmon_peer_heartbeat_age_seconds against warntime and deadtime.",
                (8, 6),
                q(f"hbmon_peer_heartbeat_age_seconds{{{PEER}}}", "{{instance}} → {{node}}"),
                *timers("warntime", "deadtime"),
                unit=units.Seconds,
                lines={"warntime": "orange", "deadtime": "red"},
            ),
            graph(
                "Configuration reloads",
                "SIGHUP reloads by result (hbmon_config_reloads_total); a failed reload "
                "keeps the previous configuration running.",
                (8, 6),
                q(
                    "sum by (instance, result) "
                    f"(increase(hbmon_config_reloads_total{{{SEL}}}{RI}))",
                    "{{instance}} {{result}}",
                ),
                bars=True,
            )
            .decimals(0)
            .override_by_regexp(".* failure$", [fixed_color("red")]),
            # -- the external arbitrator (etcd); only agents that use one export these
            graph(
                "Arbitrator (etcd)",
                "hbmon_arbitrator_up: 1 while etcd answers; keys held in etcd; groups held "
                "on the peer's word alone (the failsafe, while the lease does not count).",
                (8, 6),
                q(f"hbmon_arbitrator_up{{{SEL}}}", "up {{instance}}"),
                q(f"hbmon_arbitrator_keys_held{{{SEL}}}", "keys {{instance}}", "B"),
                q(f"hbmon_arbitrator_failsafe_groups{{{SEL}}}", "failsafe {{instance}}", "C"),
                lines={"failsafe": "orange"},
            )
            .min(0)
            .decimals(0),
            graph(
                "Lease renewal latency",
                "p50 and p99 time from a lease renewal to etcd's answer "
                "(hbmon_arbitrator_lease_renewal_seconds), and how long the lease still "
                "counts (hbmon_arbitrator_lease_remaining_seconds).",
                (8, 6),
                q(
                    quantile(0.99, "hbmon_arbitrator_lease_renewal_seconds", "instance", SEL),
                    "p99 {{instance}}",
                ),
                q(
                    quantile(0.5, "hbmon_arbitrator_lease_renewal_seconds", "instance", SEL),
                    "p50 {{instance}}",
                    "B",
                ),
                q(
                    f"hbmon_arbitrator_lease_remaining_seconds{{{SEL}}}",
                    "remaining {{instance}}",
                    "C",
                ),
                unit=units.Seconds,
                lines={"remaining": "blue"},
            ),
            graph(
                "Arbitrator key conflicts",
                "Claims that found another node's key in etcd "
                "(hbmon_arbitrator_cas_conflicts_total): a takeover the arbitrator refused, "
                "e.g. during a cut between the nodes.",
                (8, 6),
                q(
                    "sum by (instance) "
                    f"(increase(hbmon_arbitrator_cas_conflicts_total{{{SEL}}}{RI}))",
                    "{{instance}}",
                ),
                bars=True,
            ).decimals(0),
        ],
    )


# --------------------------------------------------------------- heartbeat --
def heartbeat() -> db.Dashboard:
    return with_panels(
        dashboard(
            "hbmon-heartbeat",
            "hbmon / Heartbeat health",
            "RTT, beat intervals against warntime/deadtime, late and lost beats, ping nodes, "
            "dropped packets, event-loop lag, the agents' CPU and memory.",
        ),
        [
            graph(
                "Heartbeat RTT per peer and link",
                "Round-trip time from the hbecho field (hbmon peers only), p50 and p99.",
                (12, 8),
                q(
                    quantile(0.99, "hbmon_heartbeat_rtt_seconds", "instance, node, link", PEER),
                    "p99 {{instance}}: {{link}}",
                ),
                q(
                    quantile(0.5, "hbmon_heartbeat_rtt_seconds", "instance, node, link", PEER),
                    "p50 {{instance}}: {{link}}",
                    "B",
                ),
                unit=units.Seconds,
            ),
            graph(
                "Heartbeat interval vs warntime and deadtime",
                "p99 and p50 gap between a peer's beats (hbmon_heartbeat_interval_seconds); "
                "the dashed lines are the configured warntime and deadtime.",
                (12, 8),
                q(
                    quantile(0.99, "hbmon_heartbeat_interval_seconds", "instance, node", PEER),
                    "p99 {{instance}} → {{node}}",
                ),
                q(
                    quantile(0.5, "hbmon_heartbeat_interval_seconds", "instance, node", PEER),
                    "p50 {{instance}} → {{node}}",
                    "B",
                ),
                *timers("warntime", "deadtime"),
                unit=units.Seconds,
                lines={"warntime": "orange", "deadtime": "red"},
            ),
            graph(
                "Late heartbeats",
                "Beats later than warntime (the page) and deadtime (hbmon_heartbeat_late_total).",
                (12, 8),
                q(
                    "sum by (instance, node, threshold) "
                    f"(increase(hbmon_heartbeat_late_total{{{PEER}}}{RI}))",
                    "{{instance}} → {{node}} > {{threshold}}",
                ),
                bars=True,
            ).decimals(0),
            graph(
                "Lost and reordered heartbeats",
                "Sequence gaps that never filled (lost) and that filled late (reordered).",
                (12, 8),
                q(
                    f"sum by (instance, node) (increase(hbmon_heartbeat_lost_total{{{PEER}}}{RI}))",
                    "lost {{instance}} → {{node}}",
                ),
                q(
                    "sum by (instance, node) "
                    f"(increase(hbmon_heartbeat_reordered_total{{{PEER}}}{RI}))",
                    "reordered {{instance}} → {{node}}",
                    "B",
                ),
                bars=True,
            ).decimals(0),
            graph(
                "Ping RTT",
                "ICMP round trip to each ping node: p99 from the histogram, and the last reply.",
                (12, 8),
                q(
                    quantile(0.99, "hbmon_ping_rtt_seconds", "instance, node", SEL),
                    "p99 {{instance}} → {{node}}",
                ),
                q(
                    f"hbmon_ping_last_rtt_seconds{{{SEL}}}",
                    "last {{instance}} → {{address}}",
                    "B",
                ),
                unit=units.Seconds,
            ),
            timeline(
                "Ping reachability",
                "hbmon_ping_node_up per node and ping node.",
                (12, 8),
                q(f"hbmon_ping_node_up{{{SEL}}}", "{{instance}} → {{node}}"),
                UP_DOWN,
            ),
            graph(
                "Dropped packets (authentication, replay, malformed)",
                "hbmon_packets_dropped_total per interface and reason; auth_* (missing, "
                "malformed, unknown_key, mismatch) and replay are forged, replayed or "
                "misconfigured traffic.",
                (12, 8),
                q(
                    "sum by (instance, iface, reason) "
                    f"(rate(hbmon_packets_dropped_total{{{SEL}}}{RI}))",
                    "{{instance}} {{iface}} {{reason}}",
                ),
                unit=units.PacketsPerSecond,
            ),
            graph(
                "Event-loop lag",
                "How late the agent ran its own timers (p99, hbmon_loop_lag_seconds): lag here "
                "makes this node's beats late at the peer, whatever the network does.",
                (12, 8),
                q(quantile(0.99, "hbmon_loop_lag_seconds", "instance", SEL), "p99 {{instance}}"),
                *timers("keepalive"),
                unit=units.Seconds,
                lines={"keepalive": "orange"},
            ),
            graph(
                "Heartbeats sent",
                "Status messages sent per second, against one per keepalive (dashed).",
                (12, 6),
                q(f"rate(hbmon_heartbeats_sent_total{{{SEL}}}{RI})", "{{instance}}"),
                q(
                    f"1 / max by (instance) (hbmon_config_keepalive_seconds{{{SEL}}})",
                    "keepalive {{instance}}",
                    "X",
                ),
                unit=BEATS_PER_SECOND,
                lines={"keepalive": "orange"},
            ),
            graph(
                "Time since each peer's last heartbeat",
                "hbmon_peer_heartbeat_age_seconds against warntime and deadtime.",
                (12, 6),
                q(f"hbmon_peer_heartbeat_age_seconds{{{PEER}}}", "{{instance}} → {{node}}"),
                *timers("warntime", "deadtime"),
                unit=units.Seconds,
                lines={"warntime": "orange", "deadtime": "red"},
            ),
            graph(
                "Agent CPU",
                "CPU time the agent process uses, as a share of one core "
                "(process_cpu_seconds_total).",
                (12, 6),
                q(f"rate(process_cpu_seconds_total{{{SEL}}}{RI})", "{{instance}}"),
                unit=units.PercentUnit,
            ),
            graph(
                "Agent memory",
                "Resident set size of the agent process (process_resident_memory_bytes).",
                (12, 6),
                q(f"process_resident_memory_bytes{{{SEL}}}", "{{instance}}"),
                unit=units.BytesIEC,
            ),
        ],
    )


DASHBOARDS: tuple[Callable[[], db.Dashboard], ...] = (overview, heartbeat)


def render() -> dict[Path, str]:
    out = {}
    for build in DASHBOARDS:
        model = build().build()
        text = json.dumps(model, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
        out[OUT / f"{model.uid}.json"] = text
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
        print(f"{path} is stale: run .venv/bin/python grafana/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
