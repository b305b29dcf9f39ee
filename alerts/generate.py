"""Generate hbmon's Prometheus alerting rules and the example Alertmanager configuration.

    python3 alerts/generate.py           # rewrite alerts/hbmon.rules.yml, alerts/alertmanager.yml
    python3 alerts/generate.py --check   # exit 1 if the committed files are stale
    python3 alerts/generate.py --selector 'job="hbmon-db"' --cluster-label ha_cluster \\
        --runbook-url 'https://wiki.example.org/hbmon/runbook#{anchor}' --out-dir /tmp/rules

This is a monitoring mixin written in Python: one source and the mixin's usual
parameters (`_config` in a jsonnet mixin):

* `--selector`: label matchers added to every selector (default none: the rules
  find hbmon's series by their `hbmon_` names, and hbmon's scrape targets by
  `hbmon_build_info`, so no job name is assumed);
* `--cluster-label`: the target label that tells clusters apart when one job
  scrapes several (default `cluster`); aggregations keep it and `job`, so one job
  per cluster works without it;
* `--critical` / `--warning`: the severity label values (default `critical` and
  `warning`, what existing routing trees match);
* `--runbook-url`: the runbook URL pattern; `{anchor}` becomes the alert name in
  lower case (default: docs/runbook.md of this repository, relative).

Why not jsonnet: jsonnet and jsonnet-bundler are not part of the toolchain this
project is built and tested with (Python and Debian's prometheus packages), the
dashboards next door are generated the same way (grafana/generate.py), and the
output is the same plain YAML a mixin renders, so nothing downstream changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES_FILE = "hbmon.rules.yml"
ALERTMANAGER_FILE = "alertmanager.yml"
# docs/runbook.md of this repository: one section per alert, its anchor the alert
# name in lower case. Relative, because the project publishes no site of its own:
# pass --runbook-url with wherever you serve docs/ (your forge's URL of the file).
DEFAULT_RUNBOOK_URL = "docs/runbook.md#{anchor}"


@dataclass(frozen=True)
class Params:
    selector: str = ""
    cluster_label: str = "cluster"
    critical: str = "critical"
    warning: str = "warning"
    runbook_url: str = DEFAULT_RUNBOOK_URL

    def sel(self, metric: str, *matchers: str) -> str:
        """`metric{selector, matchers}`, without empty braces (invalid PromQL)."""
        inner = ", ".join(m for m in (self.selector, *matchers) if m)
        return f"{metric}{{{inner}}}" if inner else metric

    @property
    def cluster(self) -> str:
        """What identifies one cluster in an aggregation."""
        return f"job, {self.cluster_label}"

    @property
    def where(self) -> str:
        """The cluster, as a description names it."""
        lbl = self.cluster_label
        return f"{{{{ $labels.job }}}}{{{{ with $labels.{lbl} }}}}/{{{{ . }}}}{{{{ end }}}}"


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str  # "critical" or "warning": mapped onto Params' names
    expr: str
    for_: str
    summary: str
    description: str
    why: str = ""  # the comment above the rule: why the expression is what it is
    labels: tuple[tuple[str, str], ...] = ()

    def render(self, p: Params) -> dict[str, Any]:
        severity = p.critical if self.severity == "critical" else p.warning
        return {
            "alert": self.name,
            "expr": self.expr.strip() + "\n" if "\n" in self.expr.strip() else self.expr.strip(),
            "for": self.for_,
            "labels": {"severity": severity, **dict(self.labels)},
            "annotations": {
                "summary": self.summary,
                "description": " ".join(self.description.split()),
                "runbook_url": p.runbook_url.format(anchor=self.name.lower()),
            },
        }


# -------------------------------------------------------------------- rules --
def heartbeat_rules(p: Params) -> list[Rule]:
    late = p.sel("hbmon_heartbeat_late_total", 'threshold="warntime"')
    age = p.sel("hbmon_peer_heartbeat_age_seconds")
    warntime = p.sel("hbmon_config_warntime_seconds")
    alive = p.sel("hbmon_node_state", 'state=~"up|active"')
    dead = p.sel("hbmon_node_state", 'state="dead"')
    return [
        Rule(
            "HbmonHeartbeatLate",
            "critical",
            f"""
  sum without (threshold) (increase({late}[5m])) > 0
or
  (
      {age}
    >= ignoring (node) group_left
      {warntime}
  )
  and ignoring (state) ({alive} == 1)
""",
            "0s",
            "A peer has been silent for longer than warntime; a failover is close.",
            """{{ $labels.instance }} has had no heartbeat from peer {{ $labels.node }} for
            longer than warntime (now, or at some moment of the last 5 minutes). If the
            silence reaches deadtime, {{ $labels.instance }} declares {{ $labels.node }}
            dead and takes over its resources.""",
            why="""The agent counts a silence the moment it reaches warntime (its own
exact timer): the counter moves while the peer is still silent, and a breach far
shorter than the scrape interval still moves it; every series exists at 0 from the
start, so the first breach is seen too. The age branch sees a silence in progress
in the gauge alone (after a counter reset, say) and leaves out peers already
declared dead (HbmonPeerDead says that). Either branch fires the same alert.""",
        ),
        Rule(
            "HbmonPeerDead",
            "critical",
            f"{dead} == 1",
            "0s",
            "A cluster node has declared its peer dead.",
            """{{ $labels.instance }} declares peer {{ $labels.node }} dead: no heartbeat for
            deadtime on any link, or it announced its shutdown. Resources held by
            {{ $labels.node }} are taken over; the cluster has no redundancy left.""",
            why="hbmon already waited deadtime of silence (or got a shutdown notice).",
        ),
        Rule(
            "HbmonLinkDown",
            "warning",
            f"{p.sel('hbmon_link_up')} == 0",
            "30s",
            "A heartbeat path between two nodes is down.",
            """{{ $labels.instance }} hears nothing from peer {{ $labels.node }} on link
            {{ $labels.link }}. While other links are up the peer stays alive; when the
            last one goes, the peer is declared dead.""",
        ),
        Rule(
            "HbmonPingQuorumLost",
            "critical",
            f"{p.sel('hbmon_ping_reachable_nodes')} == 0"
            f" and {p.sel('hbmon_ping_nodes_configured')} > 0",
            "30s",
            "A node reaches none of its ping nodes.",
            """{{ $labels.instance }} gets no echo reply from any of its ping nodes: it is
            cut off from the network its clients use.""",
        ),
        Rule(
            "HbmonPartitionHealed",
            "warning",
            f"increase({p.sel('hbmon_partition_heals_total')}[10m]) > 0",
            "0s",
            "A peer declared dead came back; both nodes may have run the resources.",
            """{{ $labels.instance }} saw peer {{ $labels.node }} return after having declared
            it dead (a partition, not a restart). Check that each resource group ran on one
            node only.""",
        ),
    ]


def resource_rules(p: Params) -> list[Rule]:
    held = p.sel("hbmon_resource_group_held")
    owned = p.sel("hbmon_resource_group_owned")
    c = p.cluster
    stop_failures = p.sel("hbmon_resource_group_failures_total", 'op="stop"')
    failovers = p.sel("hbmon_failovers_total", 'reason!="startup"')
    failed = p.sel("hbmon_resource_group_state", 'state="failed"')
    blocked = p.sel("hbmon_takeovers_blocked_total", 'reason="in_use"')
    dead = p.sel("hbmon_node_state", 'state="dead"')
    return [
        Rule(
            "HbmonSplitBrain",
            "critical",
            f"sum by ({c}, group) ({held}) > 1",
            "30s",
            "A resource group is held by more than one node.",
            f"""Resource group {{{{ $labels.group }}}} of {p.where} is held by
            {{{{ $value }}}} nodes at once (split brain): both run its services and claim
            its addresses.""",
            why="Each node reports only the groups it holds: the sum over nodes is the owner "
            "count.",
        ),
        Rule(
            "HbmonGroupUnowned",
            "critical",
            f"""
  min by ({c}, group) ({owned}) == 0
unless on ({c}, group)
  max by ({c}, group) ({held}) > 0
""",
            "1m",
            "A resource group is held by no node.",
            f"""Resource group {{{{ $labels.group }}}} of {p.where} has had no owner for more
            than a minute: a node that is scraped knows that nobody holds it, and no
            scraped node holds it. Its services and addresses are down.""",
            why="""Not "no scraped node holds it": the owner's scrape can fail while it
serves. A node that is scraped must know the group is unowned (it hears its peer,
so it knows what the peer holds; or it declared the peer dead and holds the group
neither), and no scraped node may hold it. An owner that only Prometheus cannot
reach keeps the other node's `owned` at 1: no page.""",
        ),
        Rule(
            "HbmonGroupFailed",
            "warning",
            f"max_over_time({failed}[5m]) == 1",
            "0s",
            "A resource group failed to start or stop on a node.",
            """Resource group {{ $labels.group }} is in state failed on {{ $labels.instance }}:
            a start or stop failed there. After a failed start the node backs off and
            leaves the group to its peer; after a failed stop it still holds it and
            retries.""",
            why="""Over 5 minutes: a stop retried with backoff passes through `stopping`
between failures, which must not resolve and re-raise the alert each time.""",
        ),
        Rule(
            "HbmonGroupStopFailing",
            "critical",
            f"""
  increase({stop_failures}[30m]) >= 2
and ignoring (op, role)
  {held} == 1
""",
            "0s",
            "A node cannot release a resource group; it keeps retrying the stop.",
            """Resource group {{ $labels.group }} failed to stop on {{ $labels.instance }}
            at least twice in 30 minutes and is still held there: hbmon retries the stop
            with backoff, forever, and the group cannot move to the other node
            meanwhile.""",
            why="""A failed stop counts as held (the services may still run), so the
peer may not take the group; hbmon retries with a doubling backoff up to 5 minutes.
Two failures in 30 minutes: the retry failed too, it will not fix itself.""",
        ),
        Rule(
            "HbmonResourceOperationFailed",
            "warning",
            f"increase({p.sel('hbmon_resource_operation_failures_total')}[15m]) > 0",
            "0s",
            "A resource script or address operation failed.",
            """{{ $labels.op }} of resource {{ $labels.resource }} failed
            {{ $value | humanize }} time(s) on {{ $labels.instance }} in the last 15
            minutes (non-zero exit, timeout or netlink error).""",
        ),
        Rule(
            "HbmonOwnerHung",
            "critical",
            f"""
  max without (state) ({dead}) == 1
and ignoring (node, reason)
  increase({blocked}[1h]) > 0
and ignoring (node)
  min without (group) ({owned}) == 0
""",
            "0s",
            "A peer was declared dead but its address still answers; nobody took over.",
            """{{ $labels.instance }} declared peer {{ $labels.node }} dead, but an address of
            a group {{ $labels.node }} held still answers on the service network, so
            {{ $labels.instance }} did not take that group over (it would have been a split
            brain). {{ $labels.node }} is hung rather than dead, or the heartbeat path is cut
            while it serves: nothing fails over by itself.""",
            why="""The split-brain guard probes a dead peer's addresses before taking its
groups over and counts a refusal in hbmon_takeovers_blocked_total{reason="in_use"}.
Page while the peer is still dead and a group is still unowned here.""",
        ),
        Rule(
            "HbmonFailoverOccurred",
            "warning",
            f"increase({failovers}[10m]) > 0",
            "0s",
            "A node took over resources from its peer.",
            """{{ $labels.instance }} acquired resource group(s) {{ $value | humanize }}
            time(s) in the last 10 minutes (reason {{ $labels.reason }}).""",
            why="`startup` is a node acquiring its own groups at comm-up, not a takeover.",
        ),
        Rule(
            "HbmonFailoverFlapping",
            "critical",
            f"sum by ({c}) (increase({failovers}[1h])) > 2",
            "0s",
            "Resources keep moving between the nodes.",
            f"""The nodes of {p.where} took over resources {{{{ $value | humanize }}}} times in
            the last hour; each takeover interrupts the clients.""",
            why="Takeovers on every node of the cluster, whatever the reason (startup excluded).",
        ),
    ]


def fencing_rules(p: Params) -> list[Rule]:
    failures = p.sel("hbmon_fence_failures_total")
    pending = p.sel("hbmon_fence_pending")
    device_up = p.sel("hbmon_fence_device_up")
    return [
        Rule(
            "HbmonFencingFailed",
            "critical",
            f"""
  max without (device) (increase({failures}[10m])) > 0
and
  {pending} == 1
""",
            "0s",
            "A dead node cannot be reset (fenced), so its groups are not taken over.",
            """{{ $labels.instance }} declared {{ $labels.node }} dead and must reset it before
            taking its groups, but the fencing device failed {{ $value | humanize }} time(s)
            in the last 10 minutes. hbmon retries with backoff, forever; until a reset
            succeeds, nothing {{ $labels.node }} held fails over.""",
            why="""hbmon_fence_pending is 1 while a reset of a dead node is wanted and not
done (its groups wait for it); hbmon_fence_failures_total counts the failed tries.
Both: the takeover is stuck on the device, not merely slow.""",
        ),
        Rule(
            "HbmonFenceDeviceDown",
            "warning",
            f"{device_up} == 0",
            "0s",
            "A fencing device failed its status check; the next reset may fail too.",
            """The fencing device {{ $labels.device }} of {{ $labels.instance }} failed its
            status check (heartbeat's, at start and hourly): a dead peer could not be
            reset, and its groups would not be taken over.""",
        ),
    ]


def security_rules(p: Params) -> list[Rule]:
    # Every cause of a failed authentication is `auth_…` (auth_missing, auth_malformed,
    # auth_unknown_key, auth_mismatch: hbmon/errors.py DropReason).
    dropped = p.sel("hbmon_packets_dropped_total", 'reason=~"auth_.+|replay"')
    return [
        Rule(
            "HbmonAuthFailures",
            "warning",
            f"increase({dropped}[5m]) > 0",
            "0s",
            "Heartbeat packets with a bad signature or a replayed sequence were dropped.",
            """{{ $labels.instance }} dropped {{ $value | humanize }} packet(s) on
            {{ $labels.iface }} in the last 5 minutes for {{ $labels.reason }}: a node with
            the wrong authkeys, or someone forging or replaying heartbeat traffic.""",
            labels=(("category", "security"),),
        ),
    ]


def agent_rules(p: Params) -> list[Rule]:
    c = p.cluster
    seen = f"max_over_time({p.sel('hbmon_build_info')}[1d])"
    return [
        Rule(
            "HbmonAgentDown",
            "warning",
            f"{p.sel('up')} == 0 and on (job, instance) {seen}",
            "1m",
            "Prometheus cannot scrape an hbmon agent.",
            """The hbmon agent on {{ $labels.instance }} has not answered scrapes for a
            minute: it is stopped, crashed, or its metrics port is unreachable.""",
            why="""A target is hbmon's if it served hbmon_build_info within a day: no job
name to configure, and any other job's targets are left alone.""",
        ),
        Rule(
            "HbmonAgentNotScraped",
            "critical",
            f"""
  group by ({c}) ({seen})
unless on ({c})
  group by ({c}) ({p.sel("hbmon_build_info")})
""",
            "2m",
            "No hbmon agent of a cluster is being scraped.",
            f"""Prometheus scraped hbmon agents of {p.where} within the last day but reaches
            none of them now: every agent is down, or the scrape configuration lost them.
            Nothing about this cluster is monitored.""",
            why="""Per cluster, whatever the job is called: agents seen within a day, none
seen now. It resolves a day after the last scrape if nobody acts.""",
        ),
        Rule(
            "HbmonTimersMisconfigured",
            "warning",
            f"{p.sel('hbmon_config_warntime_seconds')} >= {p.sel('hbmon_config_deadtime_seconds')}",
            "1m",
            "warntime is not shorter than deadtime, so late beats never warn.",
            """{{ $labels.instance }} runs with warntime {{ $value | humanizeDuration }} at or
            above its deadtime: a peer is declared dead before any late heartbeat is
            reported, and HbmonHeartbeatLate cannot warn.""",
        ),
        Rule(
            "HbmonConfigReloadFailed",
            "warning",
            f"{p.sel('hbmon_config_last_reload_successful')} == 0",
            "0s",
            "A configuration reload was refused; the agent runs the previous one.",
            """{{ $labels.instance }} refused the configuration it was asked to reload
            (SIGHUP); it keeps running the previous one. Its log names each error as
            FILE:LINE.""",
        ),
    ]


def arbitrator_rules(p: Params) -> list[Rule]:
    up = p.sel("hbmon_arbitrator_up")
    return [
        Rule(
            "HbmonArbitratorLost",
            "warning",
            f"{up} == 0",
            "30s",
            "A node cannot reach its arbitrator (etcd).",
            """{{ $labels.instance }} has had no answer from etcd for 30 s. Nothing moves
            while its peer still confirms it by heartbeat (the failsafe), but no takeover
            can happen until etcd answers again, and if the peer link fails too the node
            releases what it holds.""",
            why="""Only agents with an arbitrator export hbmon_arbitrator_up. 30 s rides
out an etcd leader election; the lease itself is far shorter, so this is about the
protection being gone, not about the groups (HbmonGroupUnowned covers those).""",
        ),
    ]


GROUPS = (
    ("hbmon.heartbeat", heartbeat_rules),
    ("hbmon.resources", resource_rules),
    ("hbmon.fencing", fencing_rules),
    ("hbmon.security", security_rules),
    ("hbmon.agent", agent_rules),
    ("hbmon.arbitrator", arbitrator_rules),
)


def rules(p: Params) -> list[tuple[str, list[Rule]]]:
    return [(name, build(p)) for name, build in GROUPS]


# -------------------------------------------------------------------- YAML --
# Written by hand, not yaml.dump: comments above the rules, folded descriptions that
# never break inside a `{{ template }}`. The tests load the result back with PyYAML.
WIDTH = 96


def _scalar(value: str) -> str:
    """`value` as a one-line YAML scalar, quoted only if it must be."""
    text = yaml.safe_dump(value, width=10**6, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


def _tokens(text: str) -> list[str]:
    """Words, with each `{{ ... }}` kept whole."""
    out: list[str] = []
    for word in text.split():
        if out and out[-1].count("{{") > out[-1].count("}}"):
            out[-1] += " " + word
        else:
            out.append(word)
    return out


def _wrap(text: str, indent: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        if line and indent + len(line) + 1 + len(token) > WIDTH:
            lines.append(line)
            line = token
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return [" " * indent + x for x in lines]


def _comment(text: str, indent: int) -> list[str]:
    return [line.replace(" " * indent, " " * indent + "# ", 1) for line in _wrap(text, indent)]


def _rule_yaml(rule: Rule, p: Params) -> list[str]:
    r = rule.render(p)
    out = [f"      - alert: {rule.name}"]
    if rule.why:
        out += _comment(" ".join(rule.why.split()), 8)
    expr = r["expr"]
    if "\n" in expr:
        out.append("        expr: |")
        out += [f"          {line}" if line else "" for line in expr.rstrip("\n").split("\n")]
    else:
        out.append(f"        expr: {_scalar(expr)}")
    out.append(f"        for: {r['for']}")
    out.append("        labels:")
    out += [f"          {k}: {_scalar(v)}" for k, v in r["labels"].items()]
    ann = r["annotations"]
    out.append("        annotations:")
    out.append(f"          summary: {_scalar(ann['summary'])}")
    out.append("          description: >-")
    out += _wrap(ann["description"], 12)
    out.append(f"          runbook_url: {_scalar(ann['runbook_url'])}")
    return out


def _header(p: Params, command: str) -> str:
    return (
        f"# Generated by alerts/generate.py{command}; edit that, then run it.\n"
        f"# selector: {p.selector or '(none)'}   cluster label: {p.cluster_label}\n"
        f"# severities: {p.critical} (pages), {p.warning} (working hours)\n"
        f"# runbook: {p.runbook_url}\n"
    )


def _command(p: Params) -> str:
    """The generator's arguments that differ from the defaults, for the header."""
    d = Params()
    args = []
    for flag, attr in (
        ("--selector", "selector"),
        ("--cluster-label", "cluster_label"),
        ("--critical", "critical"),
        ("--warning", "warning"),
        ("--runbook-url", "runbook_url"),
    ):
        if getattr(p, attr) != getattr(d, attr):
            args.append(f"{flag} '{getattr(p, attr)}'")
    return "".join(f" {a}" for a in args)


def render_rules(p: Params) -> str:
    out = [
        _header(p, _command(p)).rstrip("\n"),
        "#",
        "# `instance` is the node that reports, `node` the peer or ping node it observes",
        '# (docs/observability.md, "Wiring hbmon into Prometheus"). Aggregations keep',
        f"# `job` and `{p.cluster_label}`: one job per cluster, or a `{p.cluster_label}` "
        "target label.",
        "groups:",
    ]
    for g, (name, group) in enumerate(rules(p)):
        if g:
            out.append("")
        out += [f"  - name: {name}", "    rules:"]
        for i, rule in enumerate(group):
            if i:
                out.append("")
            out += _rule_yaml(rule, p)
    return "\n".join(out) + "\n"


def render_alertmanager(p: Params) -> str:
    c = p.cluster_label
    return f"""{_header(p, _command(p))}#
# Example Alertmanager configuration for alerts/{RULES_FILE}.
# Check it with: amtool check-config alerts/{ALERTMANAGER_FILE}
#
# severity={p.critical} goes to the paging receiver, everything else to the ticket
# receiver. Replace the two webhook URLs with your pager and ticket system
# (pagerduty_configs, opsgenie_configs, email_configs, ... work the same way).
global:
  resolve_timeout: 5m

route:
  receiver: hbmon-ticket
  # One notification per alert kind and cluster; the second node's view of the
  # same event joins it instead of paging again.
  group_by: [alertname, job, {c}]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 12h
  routes:
    - matchers: ['severity="{p.critical}"']
      receiver: hbmon-page
      # A page must leave before deadtime turns the silence into a failover: it
      # reaches the receiver at most warntime + scrape interval + rule evaluation
      # interval + group_wait after the peer's last beat (docs/observability.md).
      group_wait: 5s
      group_interval: 1m
      repeat_interval: 1h
    - matchers: ['category="security"']
      receiver: hbmon-ticket
      group_by: [alertname, job, {c}, instance, iface]

inhibit_rules:
  # A dead peer explains its silence and its dead links: page once, for the death.
  - source_matchers: ['alertname="HbmonPeerDead"']
    target_matchers: ['alertname=~"HbmonHeartbeatLate|HbmonLinkDown"']
    equal: [job, {c}, instance, node]
  # A hung owner (takeover refused, its address still answers) explains why its
  # groups are unowned.
  - source_matchers: ['alertname="HbmonOwnerHung"']
    target_matchers: ['alertname="HbmonGroupUnowned"']
    equal: [job, {c}]
  # So does a dead owner that cannot be reset (its takeover waits for the reset).
  - source_matchers: ['alertname="HbmonFencingFailed"']
    target_matchers: ['alertname="HbmonGroupUnowned"']
    equal: [job, {c}]
  # With no agent of a cluster scraped, the per-agent alerts add nothing.
  - source_matchers: ['alertname="HbmonAgentNotScraped"']
    target_matchers: ['alertname="HbmonAgentDown"']
    equal: [job, {c}]

receivers:
  - name: hbmon-page
    webhook_configs:
      - url: http://pager.example.net:9095/hbmon
        send_resolved: true
  - name: hbmon-ticket
    webhook_configs:
      - url: http://tickets.example.net:9096/hbmon
        send_resolved: true
"""


def render(p: Params, out_dir: Path = HERE) -> dict[Path, str]:
    return {
        out_dir / RULES_FILE: render_rules(p),
        out_dir / ALERTMANAGER_FILE: render_alertmanager(p),
    }


def iter_alerts(p: Params) -> Iterator[dict[str, Any]]:
    """Every rendered alert rule (for tests and tools)."""
    for _, group in rules(p):
        for rule in group:
            yield rule.render(p)


# ---------------------------------------------------------------------- CLI --
def main(argv: list[str] | None = None) -> int:
    d = Params()
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where to write the files")
    ap.add_argument(
        "--selector", default=d.selector, help='matchers for every selector, e.g. job="hbmon"'
    )
    ap.add_argument(
        "--cluster-label", default=d.cluster_label, help="target label naming the cluster"
    )
    ap.add_argument("--critical", default=d.critical, help="severity of the alerts that page")
    ap.add_argument("--warning", default=d.warning, help="severity of the other alerts")
    ap.add_argument(
        "--runbook-url",
        default=d.runbook_url,
        help="runbook URL; {anchor} = alert name, lower case",
    )
    args = ap.parse_args(argv)
    if "{anchor}" not in args.runbook_url:
        ap.error("--runbook-url must contain {anchor}")
    if args.selector.strip().startswith("{") or args.selector.strip().endswith("}"):
        ap.error('--selector takes matchers without braces, e.g. job="hbmon"')
    p = replace(
        d,
        selector=args.selector.strip(),
        cluster_label=args.cluster_label,
        critical=args.critical,
        warning=args.warning,
        runbook_url=args.runbook_url,
    )
    stale = []
    for path, text in render(p, args.out_dir).items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{path} is stale: run python3 alerts/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
