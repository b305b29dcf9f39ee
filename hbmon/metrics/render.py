"""A `Snapshot` as metric families: one consistent view per scrape.

`render(snap, config)` yields, in this order: this node, every node's state,
the peers' counters and gauges, the links, dropped packets, the ping nodes, the
resource groups, what ownership did with them, the resets it waits for and, when
one is configured, the external arbitrator. Every labelled series that alerts
use with `increase()` is present at 0 from the first scrape: per configured
peer, link, ping node, late threshold and reason (observability.md §3), even
for a peer the core has not listed yet.

Conventions (observability.md): base units, `_total` counters,
`_timestamp_seconds` wall-clock gauges, no label whose value changes on
failover (state is one-hot).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hbmon.config.model import Config
from hbmon.core import fencing, liveness
from hbmon.core.events import (
    BlockReason,
    ConflictKind,
    GroupState,
    LinkStatus,
    NodeStatus,
    RefusalReason,
    TakeoverReason,
    Threshold,
)
from hbmon.core.snapshot import ArbiterView, GroupView, PeerView, Snapshot
from hbmon.errors import DropReason

# States of a cluster node, rendered one-hot by `hbmon_node_state`. Ping nodes have
# their own `hbmon_ping_node_up`: their states (init|ping|dead) are a different set.
NODE_STATES: tuple[NodeStatus, ...] = (
    NodeStatus.INIT,
    NodeStatus.UP,
    NodeStatus.ACTIVE,
    NodeStatus.DEAD,
)
# Node transitions pre-created at 0 per peer: every (from, to, reason) the liveness
# table allows (core/liveness.py).
PRECREATED_TRANSITIONS: tuple[tuple[str, str, str], ...] = tuple(
    (a.value, b.value, r.value) for a, b, r in liveness.changes()
)

E = TypeVar("E", bound=StrEnum)


# ------------------------------------------------------------------ helpers --
def ifaces(config: Config) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.iface for m in config.media))


def configured_links(config: Config) -> list[tuple[str, str]]:
    """(node, link) for every peer × medium interface, link named `iface/peer`.

    A ucast line names an address, not a node, so every peer gets every interface;
    in a two-node cluster (the common case) that is exact.
    """
    return [(peer, f"{iface}/{peer}") for peer in config.peers for iface in ifaces(config)]


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauges(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counters(name: str, doc: str, *labels: str) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def _by_reason(
    family: CounterMetricFamily, reasons: type[E], counts: Iterable[tuple[E, int]]
) -> CounterMetricFamily:
    """`family` with one sample per member of `reasons`, 0 unless `counts` has it."""
    by = dict.fromkeys(reasons, 0)
    by.update(counts)
    for reason, n in sorted(by.items()):
        family.add_metric([reason.value], n)
    return family


# ------------------------------------------------------------------- render --
def render(snap: Snapshot, config: Config) -> Iterator[Metric]:
    yield from _this_node(snap)
    yield _node_states(snap)
    yield from _peers(snap, config)
    yield from _links(snap, config)
    yield _drops(snap, config)
    yield from _ping_nodes(snap, config)
    yield from _groups(snap)
    yield from _ownership(snap)
    yield _fencing(snap)
    if snap.arbiter is not None:
        yield from _arbitrator(snap.arbiter)


def _this_node(snap: Snapshot) -> Iterator[Metric]:
    yield gauge("hbmon_generation", "Our generation (restart count, `hg`).", snap.generation)
    yield gauge("hbmon_comm_up", "1 once every node was heard or declared dead.", int(snap.comm_up))
    yield gauge(
        "hbmon_start_timestamp_seconds",
        "Wall-clock time the node started.",
        snap.wall(snap.started_at),
    )
    yield counter(
        "hbmon_messages_sent_total",
        "Sequenced messages sent (status and cluster messages; the last `seq`).",
        snap.seq_sent,
    )
    resumed = snap.handover
    yield gauge(
        "hbmon_handover_resumed_groups",
        "Groups this process took over from its predecessor at start, without a failover "
        "(a restart or upgrade that handed them over); 0 after a fresh start.",
        len(resumed.keys) if resumed is not None else 0,
    )
    if resumed is not None:
        yield gauge(
            "hbmon_handover_gap_seconds",
            "From the previous process handing the groups over to this one taking them "
            "(the restart's unmanaged interval; the resources stayed up).",
            resumed.gap_s,
        )


def _node_states(snap: Snapshot) -> GaugeMetricFamily:
    state = _gauges(
        "hbmon_node_state",
        "Our view of each cluster node (the local node included), one-hot over state.",
        "node",
        "state",
    )
    for name, status in ((snap.node, snap.local_status), *((p.name, p.status) for p in snap.peers)):
        for s in NODE_STATES:
            state.add_metric([name, s.value], int(status == s))
    return state


def _peers(snap: Snapshot, config: Config) -> Iterator[Metric]:
    """Per-peer counters (at 0 for a configured peer the core has not listed yet) and gauges."""
    counters = _PeerCounters()
    for p in snap.peers:
        counters.add(p)
    listed = {p.name for p in snap.peers}
    for name in config.peers:
        if name not in listed:
            counters.add_zero(name)
    last_change, *gauges = _peer_gauges(snap)
    c = counters
    yield from (c.transitions, last_change, c.late, c.lost, c.reordered, c.restarts, c.heals)
    yield c.handovers
    yield from gauges


class _PeerCounters:
    """The counter families of the peers, filled one peer at a time."""

    def __init__(self) -> None:
        self.transitions = _counters(
            "hbmon_node_transitions_total",
            "Node state changes seen, including flaps between scrapes, by reason.",
            *("node", "from", "to", "reason"),
        )
        self.late = _counters(
            "hbmon_heartbeat_late_total",
            "Silences of the peer (no new status) that reached warntime or deadtime, counted "
            "the moment they reach it, once per silence and threshold.",
            *("node", "threshold"),
        )
        self.lost = _counters(
            "hbmon_heartbeat_lost_total",
            "Sequence numbers missing and never recovered (real loss).",
            "node",
        )
        self.reordered = _counters(
            "hbmon_heartbeat_reordered_total",
            "Sequence gaps later filled by a late packet (reordering, not loss).",
            "node",
        )
        self.restarts = _counters(
            "hbmon_peer_restarts_total", "Peer restarts seen (a higher generation).", "node"
        )
        self.heals = _counters(
            "hbmon_partition_heals_total",
            "A peer we had declared dead came back with the same generation: a split brain "
            "happened.",
            "node",
        )
        self.handovers = _counters(
            "hbmon_peer_handovers_total",
            "Peer restarts announced as a handover: its resources stayed up for its next "
            "process and its dead interval was stretched meanwhile (no failover).",
            "node",
        )

    def add(self, p: PeerView) -> None:
        counts = dict.fromkeys(PRECREATED_TRANSITIONS, 0)
        for a, b, r, n in p.transitions:
            counts[(a.value, b.value, r.value)] = n
        for change, n in sorted(counts.items()):
            self.transitions.add_metric([p.name, *change], n)
        self.late.add_metric([p.name, Threshold.WARNTIME.value], p.late_warntime)
        self.late.add_metric([p.name, Threshold.DEADTIME.value], p.late_deadtime)
        self.lost.add_metric([p.name], p.lost_packets)
        self.reordered.add_metric([p.name], p.reordered_packets)
        self.restarts.add_metric([p.name], p.restarts)
        self.heals.add_metric([p.name], p.partition_heals)
        self.handovers.add_metric([p.name], p.handovers)

    def add_zero(self, name: str) -> None:
        for change in PRECREATED_TRANSITIONS:
            self.transitions.add_metric([name, *change], 0)
        for th in Threshold:
            self.late.add_metric([name, th.value], 0)
        for fam in (self.lost, self.reordered, self.restarts, self.heals, self.handovers):
            fam.add_metric([name], 0)


def _peer_gauges(snap: Snapshot) -> list[GaugeMetricFamily]:
    """The last transition's time, then the age, last beat, dead interval and generation."""
    last_change = _gauges(
        "hbmon_node_last_transition_timestamp_seconds",
        "Wall-clock time of the node's last state change (like ifLastChange).",
        "node",
    )
    age = _gauges(
        "hbmon_peer_heartbeat_age_seconds",
        "Seconds since the peer's last status, on the monotonic clock (immune to clock skew).",
        "node",
    )
    last_beat = _gauges(
        "hbmon_peer_last_heartbeat_timestamp_seconds",
        "Wall-clock time of the peer's last status.",
        "node",
    )
    dead_interval = _gauges(
        "hbmon_peer_dead_interval_seconds",
        "Silence after which the peer is declared dead (its advertised dt, or initdead).",
        "node",
    )
    generation = _gauges(
        "hbmon_peer_generation", "The peer's generation (`hg`) as last seen.", "node"
    )
    for p in snap.peers:
        if p.last_transition_at is not None:
            last_change.add_metric([p.name], snap.wall(p.last_transition_at))
        if p.last_heard_at is not None:
            age.add_metric([p.name], max(0.0, snap.now - p.last_heard_at))
            last_beat.add_metric([p.name], snap.wall(p.last_heard_at))
        dead_interval.add_metric([p.name], p.dead_interval_s)
        if p.generation is not None:
            generation.add_metric([p.name], p.generation)
    return [last_change, age, last_beat, dead_interval, generation]


def _links(snap: Snapshot, config: Config) -> Iterator[Metric]:
    link_up = _gauges("hbmon_link_up", "1 if the path `iface/peer` is up.", "node", "link")
    transitions = _counters("hbmon_link_transitions_total", "Link up/dead changes.", "node", "link")
    last = _gauges(
        "hbmon_link_last_heartbeat_timestamp_seconds",
        "Wall-clock time a packet from the peer last arrived on this link.",
        *("node", "link"),
    )
    seen: set[tuple[str, str]] = set()
    for link in snap.links:
        key = [link.node, link.name]
        seen.add((link.node, link.name))
        link_up.add_metric(key, int(link.status == LinkStatus.UP))
        transitions.add_metric(key, link.transitions)
        if link.last_heard_at is not None:
            last.add_metric(key, snap.wall(link.last_heard_at))
    listed = {p.name for p in snap.peers}
    for node, name in configured_links(config):
        if (node, name) not in seen and node not in listed:
            transitions.add_metric([node, name], 0)
    yield from (link_up, transitions, last)


def _drops(snap: Snapshot, config: Config) -> CounterMetricFamily:
    """Every (iface, reason) at 0 from the start."""
    drops = {(iface, r.value): 0 for iface in ifaces(config) for r in DropReason}
    for iface, reason, n in snap.dropped:
        drops[(iface, reason)] = n
    dropped = _counters(
        "hbmon_packets_dropped_total",
        "Datagrams dropped, by receiving interface and reason.",
        *("iface", "reason"),
    )
    for (iface, reason), n in sorted(drops.items()):
        dropped.add_metric([iface, reason], n)
    return dropped


def _ping_nodes(snap: Snapshot, config: Config) -> Iterator[Metric]:
    up = _gauges("hbmon_ping_node_up", "1 if the ping node answers (status `ping`).", "node")
    transitions = _counters(
        "hbmon_ping_node_transitions_total", "Ping node up/dead changes.", "node"
    )
    last_change = _gauges(
        "hbmon_ping_node_last_transition_timestamp_seconds",
        "Wall-clock time of the ping node's last state change.",
        "node",
    )
    last_rtt = _gauges(
        "hbmon_ping_last_rtt_seconds",
        "Round-trip time of the last echo reply from each address.",
        *("node", "address"),
    )
    replies = _counters(
        "hbmon_ping_replies_total", "Echo replies per ping address.", "node", "address"
    )
    timeouts = _counters(
        "hbmon_ping_timeouts_total", "Echoes without reply per ping address.", "node", "address"
    )
    for pn in snap.ping_nodes:
        up.add_metric([pn.name], int(pn.status == NodeStatus.PING))
        transitions.add_metric([pn.name], pn.transitions)
        if pn.last_transition_at is not None:
            last_change.add_metric([pn.name], snap.wall(pn.last_transition_at))
        for addr in pn.addresses:
            labels = [pn.name, addr.address]
            if addr.last_rtt_s is not None:
                last_rtt.add_metric(labels, addr.last_rtt_s)
            replies.add_metric(labels, addr.replies)
            timeouts.add_metric(labels, addr.timeouts)
    yield from (up, transitions, last_change, last_rtt, replies, timeouts)
    yield gauge(
        "hbmon_ping_reachable_nodes", "Ping nodes answering now.", snap.reachable_ping_nodes
    )
    yield gauge("hbmon_ping_nodes_configured", "Ping nodes configured.", len(config.ping_nodes))


def _holds(g: GroupView, me: str) -> bool:
    """This node holds it: started, or its stop failed (it still runs here)."""
    return g.state in (GroupState.HELD, GroupState.STOPPING) or (
        g.state is GroupState.FAILED and g.holder == me
    )


def _groups(snap: Snapshot) -> Iterator[Metric]:
    """Resource groups as this node holds them. Each node reports only what it holds,
    so `sum by (group) (hbmon_resource_group_held)` across nodes shows split brain (> 1)
    and unowned groups (0)."""
    held = _gauges(
        "hbmon_resource_group_held",
        "1 if this node holds the group (all its resources started, or stopping failed).",
        *("group", "role"),
    )
    state = _gauges(
        "hbmon_resource_group_state",
        "The group as held here, one-hot over released|starting|held|stopping|failed.",
        *("group", "state"),
    )
    owned = _gauges(
        "hbmon_resource_group_owned",
        "1 if some node (this one or the peer) holds the group, as far as this node knows.",
        "group",
    )
    dual = _gauges(
        "hbmon_resource_group_dual_owner",
        "1 while this node holds the group and a live peer reports holding it too "
        "(split brain seen from here; resolved by the dual-owner rule).",
        "group",
    )
    last_change = _gauges(
        "hbmon_resource_group_last_transition_timestamp_seconds",
        "Wall-clock time of the group's last state change here.",
        "group",
    )
    failures = _counters(
        "hbmon_resource_group_failures_total",
        "Group start/stop failures on this node.",
        *("group", "op"),
    )
    for g in snap.groups:
        holds = _holds(g, snap.node)
        held.add_metric([g.key, g.role], int(holds))
        for st in GroupState:
            state.add_metric([g.key, st.value], int(g.state == st))
        owned.add_metric([g.key], int(g.holder is not None))
        dual.add_metric([g.key], int(holds and bool(g.held_elsewhere)))
        if g.last_change_at is not None:
            last_change.add_metric([g.key], snap.wall(g.last_change_at))
        failures.add_metric([g.key, "start"], g.start_failures)
        failures.add_metric([g.key, "stop"], g.stop_failures)
    yield from (held, state, owned, dual, last_change, failures)


def _ownership(snap: Snapshot) -> Iterator[Metric]:
    """What ownership did: takeovers, conflicts, blocked takeovers and refusals by reason."""
    takeovers = _counters(
        "hbmon_failovers_total", "Takeovers (groups acquired) by reason.", "reason"
    )
    yield _by_reason(takeovers, TakeoverReason, snap.takeovers)
    if snap.last_takeover is not None:
        yield gauge(
            "hbmon_last_failover_timestamp_seconds",
            "Wall-clock time the last takeover completed.",
            snap.wall(snap.last_takeover.at),
        )
    conflicts = _counters(
        "hbmon_ownership_conflicts_total",
        "Groups found held by both nodes (dual) or by none (none), each resolved.",
        "kind",
    )
    yield _by_reason(conflicts, ConflictKind, snap.conflicts)
    blocked = _counters(
        "hbmon_takeovers_blocked_total",
        "Takeovers not done: `quorum` (no ping node answers), `in_use` (the group's "
        "address still answers, so its owner may be hung rather than dead) or `fencing` "
        "(the dead owner's reset failed).",
        "reason",
    )
    yield _by_reason(blocked, BlockReason, snap.takeovers_blocked)
    refusals = _counters(
        "hbmon_standby_refusals_total",
        "Standby and takeover requests refused (ours or the peer's), by reason.",
        "reason",
    )
    yield _by_reason(refusals, RefusalReason, snap.refusals)
    yield gauge(
        "hbmon_resources_stable",
        "1 when no resource transition is in progress here (heartbeat's isstable).",
        int(snap.resources_stable),
    )


def _fencing(snap: Snapshot) -> GaugeMetricFamily:
    """Per peer, whether a reset of it is wanted and not done (core/fencing.py PENDING):
    its groups wait for it (HbmonFencingFailed). The attempts themselves are counted
    from the driver's records (metrics/fencing.py)."""
    pending = _gauges(
        "hbmon_fence_pending",
        "1 while a dead node's reset is wanted and not done; its groups wait for it.",
        "node",
    )
    for v in snap.fencing:
        pending.add_metric([v.node], int(v.state in fencing.PENDING))
    return pending


def _arbitrator(view: ArbiterView) -> Iterator[Metric]:
    """The external arbitrator (etcd; docs/arbitrator.md): present only when configured.
    Its renewal latency is a histogram the collector keeps."""
    yield gauge(
        "hbmon_arbitrator_up",
        "1 while the arbitrator (etcd) answers our requests.",
        int(view.reachable),
    )
    yield gauge(
        "hbmon_arbitrator_lease_remaining_seconds",
        "How much longer our lease counts here (0: it does not; then only the failsafe"
        " keeps groups).",
        view.lease_left_s,
    )
    yield gauge(
        "hbmon_arbitrator_lease_ttl_seconds",
        "Our lease's TTL as etcd granted it (0 before the first grant).",
        view.ttl_s,
    )
    yield gauge(
        "hbmon_arbitrator_keys_held",
        "Resource-group keys this node holds in etcd.",
        view.keys_held,
    )
    yield gauge(
        "hbmon_arbitrator_failsafe_groups",
        "Groups held on the peer's word alone while our lease does not count.",
        view.failsafe_groups,
    )
    yield counter(
        "hbmon_arbitrator_cas_conflicts_total",
        "Key claims (compare-and-set) that found another node's key.",
        view.conflicts,
    )
