"""Prometheus metrics: one collector over the core's `Snapshot`, on a private registry.

Two kinds of data feed the exposition:

* **State and counters** come from `Snapshot` at scrape time (`set_snapshot_source`),
  so one scrape is one consistent view, and a flap between two scrapes still
  shows in the `_total` counters the core keeps.
* **Distributions** (RTT, beat interval, ping RTT, loop lag) cannot be rebuilt
  from a snapshot; `Metrics.observe()` feeds them from the core's notices.

Everything is rendered by our own `Collector`, so no series carries a `_created`
sample and nothing touches prometheus_client's global registry or its global
`disable_created_metrics()` switch. Every labelled series that alerts use with
`increase()` is present at 0 from the first scrape: per configured peer, link,
ping node, late threshold and drop reason (observability.md §3).

Conventions (observability.md): base units, `_total` counters, `_timestamp_seconds`
wall-clock gauges, no label whose value changes on failover (state is one-hot).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from hbmon.config.model import Config
from hbmon.core import liveness
from hbmon.core.events import (
    BeatReceived,
    BlockReason,
    ConflictKind,
    Effect,
    GroupState,
    LinkStatus,
    NodeStatus,
    PingObserved,
    RefusalReason,
    RttMeasured,
    SendMessage,
    TakeoverComplete,
    TakeoverReason,
    Threshold,
)
from hbmon.core.snapshot import Snapshot
from hbmon.errors import DropReason

if TYPE_CHECKING:
    from hbmon.io.resources.executor import OpRecord

__all__ = [
    "FAILOVER_BUCKETS",
    "INTERVAL_BUCKETS",
    "LATENCY_BUCKETS",
    "LOOP_LAG_BUCKETS",
    "NODE_STATES",
    "OPERATION_BUCKETS",
    "Metrics",
    "on_loop",
]

SnapshotSource = Callable[[], Snapshot]

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
_PRECREATED_TRANSITIONS: tuple[tuple[str, str, str], ...] = tuple(
    (a.value, b.value, r.value) for a, b, r in liveness.changes()
)


# ------------------------------------------------------------------ buckets --
# Every histogram has fixed bounds, the same on every node whatever its timers and
# across reloads: nodes with different timers sum by `le`, and a SIGHUP never resets
# a series. The timers are thresholds, not bounds; `hbmon_config_*_seconds` carries
# them, and `hbmon_heartbeat_late_total` counts the breaches exactly.
def _octaves(low: int, high: int, per_octave: int) -> tuple[float, ...]:
    """2^(i/per_octave) seconds from 2^low to 2^high, rounded to the microsecond."""
    return tuple(
        round(2 ** (i / per_octave), 6) for i in range(low * per_octave, high * per_octave + 1)
    )


# Beat intervals: eight bounds per octave (each 9 % above the previous; the bounds of a
# Prometheus native histogram of schema 3) from 1/32 s to 512 s. Beats sit within a few
# ms of keepalive, so any keepalive from 50 ms to minutes gets a quantile within one
# 9 % bucket of the truth: healthy 2 s beats show p99 <= 2.18 s, not the next timer
# multiple. 113 bounds, one series of them per peer.
INTERVAL_BUCKETS = _octaves(-5, 9, 8)
# Round trips (heartbeat echo, ICMP): sub-millisecond on a healthy LAN; beyond a few
# seconds the peer is as good as dead.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# How late the event loop ran a timer: a lag near warntime makes *us* send late.
LOOP_LAG_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Resource scripts take from milliseconds (an address) to minutes (a database).
OPERATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
# Takeovers: netlink work in milliseconds up to several slow scripts in a row.
FAILOVER_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


# --------------------------------------------------------------- histograms --
def _le(bound: float) -> str:
    """A bucket bound as the `le` label value, in the exposition's float syntax."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _Histogram:
    """One labelled histogram series: per-bucket counts (not cumulative) and a sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is (max bound, +Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # `le` is inclusive: a value equal to a bound belongs to that bound's bucket.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((_le(bound), running))
        return out


class _HistogramFamily:
    """A histogram metric with fixed label names; series are created on first use."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]):
        self.name = name
        self.doc = doc
        self.labels = labels
        self.bounds = bounds
        self.series: dict[tuple[str, ...], _Histogram] = {}

    def ensure(self, key: tuple[str, ...]) -> _Histogram:
        h = self.series.get(key)
        if h is None:
            h = self.series[key] = _Histogram(self.bounds)
        return h

    def render(self) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(self.name, self.doc, labels=list(self.labels))
        for key in sorted(self.series):
            h = self.series[key]
            fam.add_metric(list(key), h.cumulative(), h.total)
        return fam


# ------------------------------------------------------------------- helpers --
def _ifaces(config: Config) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.iface for m in config.media))


def _configured_links(config: Config) -> list[tuple[str, str]]:
    """(node, link) for every peer × medium interface, link named `iface/peer`.

    A ucast line names an address, not a node, so every peer gets every interface;
    in a two-node cluster (the common case) that is exact.
    """
    return [(peer, f"{iface}/{peer}") for peer in config.peers for iface in _ifaces(config)]


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


# ------------------------------------------------------------------- Metrics --
class Metrics:
    """hbmon's metrics on a private `CollectorRegistry` (`self.registry`).

    Thread-safety: `observe*`/`record_reload`/`reconfigure` run on the event loop;
    scrapes run on the HTTP server's threads. A lock guards the shared state, and
    the snapshot source is called from the scraping thread (see `on_loop`).
    """

    def __init__(
        self,
        config: Config,
        *,
        version: str,
        revision: str = "unknown",
        process_metrics: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._version = version
        self._revision = revision or "unknown"
        self._source: SnapshotSource | None = None
        self._reloads = {"success": 0, "failure": 0}
        self._last_reload_ok = True
        self._last_reload_success_at = time.time()
        self._heartbeats_sent = 0
        self._snapshot_errors = 0
        self._rtt = _HistogramFamily(
            "hbmon_heartbeat_rtt_seconds",
            "Heartbeat round-trip time per peer and link (hbmon peers only).",
            ("node", "link"),
            LATENCY_BUCKETS,
        )
        self._interval = _HistogramFamily(
            "hbmon_heartbeat_interval_seconds",
            "Gap between consecutive status messages of a peer (any link).",
            ("node",),
            INTERVAL_BUCKETS,
        )
        self._ping_rtt = _HistogramFamily(
            "hbmon_ping_rtt_seconds",
            "ICMP echo round-trip time per ping node (replies only).",
            ("node",),
            LATENCY_BUCKETS,
        )
        self._loop_lag = _HistogramFamily(
            "hbmon_loop_lag_seconds",
            "How late the event loop ran a timer; tells self-caused lateness from the network's.",
            (),
            LOOP_LAG_BUCKETS,
        )
        self._failover = _HistogramFamily(
            "hbmon_failover_duration_seconds",
            "From the trigger (dead declaration, shutdown notice, request) to the last "
            "resource of the takeover started.",
            ("reason",),
            FAILOVER_BUCKETS,
        )
        self._op_duration = _HistogramFamily(
            "hbmon_resource_operation_duration_seconds",
            "Resource operations (start, stop, status) by resource and operation.",
            ("resource", "op"),
            OPERATION_BUCKETS,
        )
        self._op_failures: dict[tuple[str, str], int] = {}
        self._status_disagreements: dict[str, int] = {}
        self._precreate(config)
        self.registry = CollectorRegistry()
        self.registry.register(_HbmonCollector(self))
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # ---------------------------------------------------------------- feeding --
    def set_snapshot_source(self, fn: SnapshotSource) -> None:
        """`fn` is called once per scrape, from the HTTP server thread; it must be
        thread-safe (wrap the loop-owned node with `on_loop`)."""
        self._source = fn

    def observe(self, effect: Effect) -> None:
        """Feed every effect the core returns; distributions are taken from notices."""
        with self._lock:
            match effect:
                case RttMeasured(node=node, iface=iface, rtt_s=rtt):
                    self._rtt.ensure((node, f"{iface}/{node}")).observe(rtt)
                case BeatReceived(node=node, interval_s=interval) if interval is not None:
                    self._interval.ensure((node,)).observe(interval)
                case PingObserved(node=node, rtt_s=rtt) if rtt is not None:
                    self._ping_rtt.ensure((node,)).observe(rtt)
                case SendMessage(message=msg) if msg.type == "status":
                    self._heartbeats_sent += 1
                case TakeoverComplete(reason=reason, duration_s=duration):
                    self._failover.ensure((reason.value,)).observe(duration)
                case _:
                    pass

    def observe_operation(self, record: OpRecord) -> None:
        """One resource operation from the executor (start/stop/status of one resource)."""
        with self._lock:
            key = (record.resource, record.op)
            self._op_duration.ensure(key).observe(record.seconds)
            self._op_failures.setdefault(key, 0)
            if not record.ok:
                self._op_failures[key] += 1

    def observe_status_disagreement(self, resource: str) -> None:
        """A status call whose LSB exit code and heartbeat's reading of its words differ."""
        with self._lock:
            self._status_disagreements[resource] = self._status_disagreements.get(resource, 0) + 1

    def observe_loop_lag(self, seconds: float) -> None:
        with self._lock:
            self._loop_lag.ensure(()).observe(max(0.0, seconds))

    def record_reload(self, ok: bool) -> None:
        with self._lock:
            self._reloads["success" if ok else "failure"] += 1
            self._last_reload_ok = ok
            if ok:
                self._last_reload_success_at = time.time()

    def reconfigure(self, config: Config) -> None:
        """After a successful reload: timer gauges follow the new timers; series for new
        peers, links and ping nodes appear at 0; histograms keep their bounds and counts."""
        with self._lock:
            self._config = config
            self._precreate(config)

    def _precreate(self, config: Config) -> None:
        for key in _configured_links(config):
            self._rtt.ensure(key)
        for peer in config.peers:
            self._interval.ensure((peer,))
        for ping in config.ping_nodes:
            self._ping_rtt.ensure((ping.name,))
        self._loop_lag.ensure(())
        for reason in TakeoverReason:
            self._failover.ensure((reason.value,))
        for group in config.resources:
            for res in group.resources:
                for op in ("start", "stop"):
                    self._op_duration.ensure((str(res), op))
                    self._op_failures.setdefault((str(res), op), 0)
                self._status_disagreements.setdefault(str(res), 0)

    # -------------------------------------------------------------- rendering --
    def collect(self) -> Iterator[Metric]:
        snap: Snapshot | None = None
        source = self._source
        if source is not None:
            try:
                snap = source()
            except Exception:  # a broken source must not hide build info and timers
                with self._lock:
                    self._snapshot_errors += 1
        with self._lock:
            config = self._config
            static = list(self._render_static(config))
            hists: list[Metric] = [
                h.render()
                for h in (
                    self._rtt,
                    self._interval,
                    self._ping_rtt,
                    self._loop_lag,
                    self._failover,
                    self._op_duration,
                )
            ]
            failures = CounterMetricFamily(
                "hbmon_resource_operation_failures_total",
                "Resource operations that failed (non-zero exit, timeout, netlink error).",
                labels=["resource", "op"],
            )
            for (res, op), n in sorted(self._op_failures.items()):
                failures.add_metric([res, op], n)
            hists.append(failures)
            disagreements = CounterMetricFamily(
                "hbmon_resource_status_disagreements_total",
                "Status calls whose LSB exit code and words (as heartbeat reads them) disagree.",
                labels=["resource"],
            )
            for res, n in sorted(self._status_disagreements.items()):
                disagreements.add_metric([res], n)
            hists.append(disagreements)
        yield from static
        yield from hists
        if snap is not None:
            yield from _render_snapshot(snap, config)

    def _render_static(self, config: Config) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "hbmon_build_info", "hbmon build metadata; always 1.", labels=["version", "revision"]
        )
        info.add_metric([self._version, self._revision], 1)
        yield info
        t = config.timers
        for name, ms, doc in (
            ("keepalive", t.keepalive_ms, "Interval between our status messages."),
            ("warntime", t.warntime_ms, "Gap after which a beat counts as late."),
            ("deadtime", t.deadtime_ms, "Gap after which a peer is declared dead."),
            ("initdead", t.initdead_ms, "Dead time that applies before comm is up."),
            ("deadping", t.deadping_ms, "Dead time for ping nodes."),
        ):
            yield _gauge(f"hbmon_config_{name}_seconds", f"Configured {name}. {doc}", ms / 1000)
        reloads = CounterMetricFamily(
            "hbmon_config_reloads_total",
            "Configuration reloads (SIGHUP) by result.",
            labels=["result"],
        )
        for result in ("success", "failure"):
            reloads.add_metric([result], self._reloads[result])
        yield reloads
        yield _gauge(
            "hbmon_config_last_reload_successful",
            "1 if the last configuration reload succeeded (or none happened yet).",
            1 if self._last_reload_ok else 0,
        )
        yield _gauge(
            "hbmon_config_last_reload_success_timestamp_seconds",
            "Wall-clock time of the last successful configuration load.",
            self._last_reload_success_at,
        )
        yield _counter(
            "hbmon_heartbeats_sent_total",
            "Status messages (heartbeats) sent.",
            self._heartbeats_sent,
        )
        yield _counter(
            "hbmon_snapshot_errors_total",
            "Scrapes whose node snapshot could not be taken (state metrics then missing).",
            self._snapshot_errors,
        )


class _HbmonCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.collect()


def _render_snapshot(snap: Snapshot, config: Config) -> Iterator[Metric]:
    yield _gauge("hbmon_generation", "Our generation (restart count, `hg`).", snap.generation)
    yield _gauge(
        "hbmon_comm_up", "1 once every node was heard or declared dead.", int(snap.comm_up)
    )
    yield _gauge(
        "hbmon_start_timestamp_seconds",
        "Wall-clock time the node started.",
        snap.wall(snap.started_at),
    )
    yield _counter(
        "hbmon_messages_sent_total",
        "Sequenced messages sent (status and cluster messages; the last `seq`).",
        snap.seq_sent,
    )

    # -- nodes: one-hot state, transitions, last transition
    state = GaugeMetricFamily(
        "hbmon_node_state",
        "Our view of each cluster node (the local node included), one-hot over state.",
        labels=["node", "state"],
    )
    for name, status in ((snap.node, snap.local_status), *((p.name, p.status) for p in snap.peers)):
        for s in NODE_STATES:
            state.add_metric([name, s.value], int(status == s))
    yield state

    peers_seen = {p.name for p in snap.peers}
    extra_peers = [p for p in config.peers if p not in peers_seen]  # configured, not yet in core

    transitions = CounterMetricFamily(
        "hbmon_node_transitions_total",
        "Node state changes seen, including flaps between scrapes, by reason.",
        labels=["node", "from", "to", "reason"],
    )
    last_change = GaugeMetricFamily(
        "hbmon_node_last_transition_timestamp_seconds",
        "Wall-clock time of the node's last state change (like ifLastChange).",
        labels=["node"],
    )
    late = CounterMetricFamily(
        "hbmon_heartbeat_late_total",
        "Silences of the peer (no new status) that reached warntime or deadtime, counted "
        "the moment they reach it, once per silence and threshold.",
        labels=["node", "threshold"],
    )
    lost = CounterMetricFamily(
        "hbmon_heartbeat_lost_total",
        "Sequence numbers missing and never recovered (real loss).",
        labels=["node"],
    )
    reordered = CounterMetricFamily(
        "hbmon_heartbeat_reordered_total",
        "Sequence gaps later filled by a late packet (reordering, not loss).",
        labels=["node"],
    )
    restarts = CounterMetricFamily(
        "hbmon_peer_restarts_total", "Peer restarts seen (a higher generation).", labels=["node"]
    )
    heals = CounterMetricFamily(
        "hbmon_partition_heals_total",
        "A peer we had declared dead came back with the same generation: a split brain happened.",
        labels=["node"],
    )
    age = GaugeMetricFamily(
        "hbmon_peer_heartbeat_age_seconds",
        "Seconds since the peer's last status, on the monotonic clock (immune to clock skew).",
        labels=["node"],
    )
    last_beat = GaugeMetricFamily(
        "hbmon_peer_last_heartbeat_timestamp_seconds",
        "Wall-clock time of the peer's last status.",
        labels=["node"],
    )
    dead_interval = GaugeMetricFamily(
        "hbmon_peer_dead_interval_seconds",
        "Silence after which the peer is declared dead (its advertised dt, or initdead).",
        labels=["node"],
    )
    generation = GaugeMetricFamily(
        "hbmon_peer_generation", "The peer's generation (`hg`) as last seen.", labels=["node"]
    )
    for p in snap.peers:
        counts = dict.fromkeys(_PRECREATED_TRANSITIONS, 0)
        for a, b, r, n in p.transitions:
            counts[(a.value, b.value, r.value)] = n
        for change, n in sorted(counts.items()):
            transitions.add_metric([p.name, *change], n)
        if p.last_transition_at is not None:
            last_change.add_metric([p.name], snap.wall(p.last_transition_at))
        late.add_metric([p.name, Threshold.WARNTIME.value], p.late_warntime)
        late.add_metric([p.name, Threshold.DEADTIME.value], p.late_deadtime)
        lost.add_metric([p.name], p.lost_packets)
        reordered.add_metric([p.name], p.reordered_packets)
        restarts.add_metric([p.name], p.restarts)
        heals.add_metric([p.name], p.partition_heals)
        if p.last_heard_at is not None:
            age.add_metric([p.name], max(0.0, snap.now - p.last_heard_at))
            last_beat.add_metric([p.name], snap.wall(p.last_heard_at))
        dead_interval.add_metric([p.name], p.dead_interval_s)
        if p.generation is not None:
            generation.add_metric([p.name], p.generation)
    for name in extra_peers:
        for change in _PRECREATED_TRANSITIONS:
            transitions.add_metric([name, *change], 0)
        for th in Threshold:
            late.add_metric([name, th.value], 0)
        for fam in (lost, reordered, restarts, heals):
            fam.add_metric([name], 0)
    yield from (transitions, last_change, late, lost, reordered, restarts, heals)
    yield from (age, last_beat, dead_interval, generation)

    # -- links
    link_up = GaugeMetricFamily(
        "hbmon_link_up", "1 if the path `iface/peer` is up.", labels=["node", "link"]
    )
    link_transitions = CounterMetricFamily(
        "hbmon_link_transitions_total", "Link up/dead changes.", labels=["node", "link"]
    )
    link_last = GaugeMetricFamily(
        "hbmon_link_last_heartbeat_timestamp_seconds",
        "Wall-clock time a packet from the peer last arrived on this link.",
        labels=["node", "link"],
    )
    seen_links: set[tuple[str, str]] = set()
    for link in snap.links:
        key = (link.node, link.name)
        seen_links.add(key)
        link_up.add_metric(list(key), int(link.status == LinkStatus.UP))
        link_transitions.add_metric(list(key), link.transitions)
        if link.last_heard_at is not None:
            link_last.add_metric(list(key), snap.wall(link.last_heard_at))
    for key in _configured_links(config):
        if key not in seen_links and key[0] not in peers_seen:
            link_transitions.add_metric(list(key), 0)
    yield from (link_up, link_transitions, link_last)

    # -- drops: every (iface, reason) at 0 from the start
    drops: dict[tuple[str, str], int] = {
        (iface, r.value): 0 for iface in _ifaces(config) for r in DropReason
    }
    for iface, reason, n in snap.dropped:
        drops[(iface, reason)] = n
    dropped = CounterMetricFamily(
        "hbmon_packets_dropped_total",
        "Datagrams dropped, by receiving interface and reason.",
        labels=["iface", "reason"],
    )
    for (iface, reason), n in sorted(drops.items()):
        dropped.add_metric([iface, reason], n)
    yield dropped

    # -- ping nodes
    ping_up = GaugeMetricFamily(
        "hbmon_ping_node_up", "1 if the ping node answers (status `ping`).", labels=["node"]
    )
    ping_transitions = CounterMetricFamily(
        "hbmon_ping_node_transitions_total", "Ping node up/dead changes.", labels=["node"]
    )
    ping_last_change = GaugeMetricFamily(
        "hbmon_ping_node_last_transition_timestamp_seconds",
        "Wall-clock time of the ping node's last state change.",
        labels=["node"],
    )
    last_rtt = GaugeMetricFamily(
        "hbmon_ping_last_rtt_seconds",
        "Round-trip time of the last echo reply from each address.",
        labels=["node", "address"],
    )
    replies = CounterMetricFamily(
        "hbmon_ping_replies_total", "Echo replies per ping address.", labels=["node", "address"]
    )
    timeouts = CounterMetricFamily(
        "hbmon_ping_timeouts_total",
        "Echoes without reply per ping address.",
        labels=["node", "address"],
    )
    for pn in snap.ping_nodes:
        ping_up.add_metric([pn.name], int(pn.status == NodeStatus.PING))
        ping_transitions.add_metric([pn.name], pn.transitions)
        if pn.last_transition_at is not None:
            ping_last_change.add_metric([pn.name], snap.wall(pn.last_transition_at))
        for addr in pn.addresses:
            labels = [pn.name, addr.address]
            if addr.last_rtt_s is not None:
                last_rtt.add_metric(labels, addr.last_rtt_s)
            replies.add_metric(labels, addr.replies)
            timeouts.add_metric(labels, addr.timeouts)
    yield from (ping_up, ping_transitions, ping_last_change, last_rtt, replies, timeouts)
    yield _gauge(
        "hbmon_ping_reachable_nodes", "Ping nodes answering now.", snap.reachable_ping_nodes
    )
    yield _gauge("hbmon_ping_nodes_configured", "Ping nodes configured.", len(config.ping_nodes))
    yield from _render_groups(snap)


def _render_groups(snap: Snapshot) -> Iterator[Metric]:
    """Resource groups as this node holds them. Each node reports only what it holds,
    so `sum by (group) (hbmon_resource_group_held)` across nodes shows split brain (> 1)
    and unowned groups (0)."""
    held = GaugeMetricFamily(
        "hbmon_resource_group_held",
        "1 if this node holds the group (all its resources started, or stopping failed).",
        labels=["group", "role"],
    )
    state = GaugeMetricFamily(
        "hbmon_resource_group_state",
        "The group as held here, one-hot over released|starting|held|stopping|failed.",
        labels=["group", "state"],
    )
    owner_known = GaugeMetricFamily(
        "hbmon_resource_group_owned",
        "1 if some node (this one or the peer) holds the group, as far as this node knows.",
        labels=["group"],
    )
    last_change = GaugeMetricFamily(
        "hbmon_resource_group_last_transition_timestamp_seconds",
        "Wall-clock time of the group's last state change here.",
        labels=["group"],
    )
    dual = GaugeMetricFamily(
        "hbmon_resource_group_dual_owner",
        "1 while this node holds the group and a live peer reports holding it too "
        "(split brain seen from here; resolved by the dual-owner rule).",
        labels=["group"],
    )
    failures = CounterMetricFamily(
        "hbmon_resource_group_failures_total",
        "Group start/stop failures on this node.",
        labels=["group", "op"],
    )
    for g in snap.groups:
        holds = g.state in (GroupState.HELD, GroupState.STOPPING) or (
            g.state is GroupState.FAILED and g.holder == snap.node
        )
        held.add_metric([g.key, g.role], int(holds))
        for st in GroupState:
            state.add_metric([g.key, st.value], int(g.state == st))
        owner_known.add_metric([g.key], int(g.holder is not None))
        dual.add_metric([g.key], int(holds and bool(g.held_elsewhere)))
        if g.last_change_at is not None:
            last_change.add_metric([g.key], snap.wall(g.last_change_at))
        failures.add_metric([g.key, "start"], g.start_failures)
        failures.add_metric([g.key, "stop"], g.stop_failures)
    yield from (held, state, owner_known, dual, last_change, failures)
    takeovers = CounterMetricFamily(
        "hbmon_failovers_total",
        "Takeovers (groups acquired) by reason.",
        labels=["reason"],
    )
    counts = {r.value: 0 for r in TakeoverReason}
    for reason, n in snap.takeovers:
        counts[reason.value] = n
    for reason_s, n in sorted(counts.items()):
        takeovers.add_metric([reason_s], n)
    yield takeovers
    if snap.last_takeover is not None:
        yield _gauge(
            "hbmon_last_failover_timestamp_seconds",
            "Wall-clock time the last takeover completed.",
            snap.wall(snap.last_takeover.at),
        )
    conflicts = CounterMetricFamily(
        "hbmon_ownership_conflicts_total",
        "Groups found held by both nodes (dual) or by none (none), each resolved.",
        labels=["kind"],
    )
    yield _by_reason(conflicts, ConflictKind, snap.conflicts)
    blocked = CounterMetricFamily(
        "hbmon_takeovers_blocked_total",
        "Takeovers not done: `quorum` (no ping node answers) or `in_use` (the group's "
        "address still answers, so its owner may be hung rather than dead).",
        labels=["reason"],
    )
    yield _by_reason(blocked, BlockReason, snap.takeovers_blocked)
    refusals = CounterMetricFamily(
        "hbmon_standby_refusals_total",
        "Standby and takeover requests refused (ours or the peer's), by reason.",
        labels=["reason"],
    )
    yield _by_reason(refusals, RefusalReason, snap.refusals)
    yield _gauge(
        "hbmon_resources_stable",
        "1 when no resource transition is in progress here (heartbeat's isstable).",
        int(snap.resources_stable),
    )


E = TypeVar("E", bound=StrEnum)


def _by_reason(
    family: CounterMetricFamily, reasons: type[E], counts: Iterable[tuple[E, int]]
) -> CounterMetricFamily:
    """`family` with one sample per member of `reasons`, 0 unless `counts` has it."""
    by = dict.fromkeys(reasons, 0)
    by.update(counts)
    for reason, n in sorted(by.items()):
        family.add_metric([reason.value], n)
    return family


# ---------------------------------------------------------- snapshot source --
def on_loop(
    loop: asyncio.AbstractEventLoop, fn: SnapshotSource, timeout: float = 2.0
) -> SnapshotSource:
    """Wrap a loop-owned `node.snapshot` so scrapes take it on the loop thread.

    The node is not thread-safe; the scrape runs on an HTTP thread. The wrapper
    schedules `fn` on `loop` and waits at most `timeout` seconds (a stuck loop then
    shows as `hbmon_snapshot_errors_total`, not as a hung scrape).
    """

    def source() -> Snapshot:
        fut: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiting thread
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    return source
