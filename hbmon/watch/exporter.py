"""The agent's metrics, restricted to what a watcher knows.

`WatchMetrics` is the agent's `hbmon.metrics.Metrics` (same collector, same
names, labels, buckets and pre-created series), configured as if the watcher
were a node whose peers are all cluster nodes, so every node, the local
heartbeat included, gets its `node`-labelled series. Rendering then drops:

* the watcher's imaginary node (`hbmon_node_state{node="(watch)"}`);
* what only an agent has: messages sent, heartbeat RTT (heartbeat sends no
  `hbecho`), ICMP ping RTTs, failover durations, resource operations,
  ownership-conflict resolution, standby refusals (the config reload series stay: SIGHUP
  re-reads the watcher's web config);
* owner and ping-node state while `cl_status` is not available (rendered
  values would be guesses, and `hbmon_ping_reachable_nodes 0` would page).

and adds the capture's own counters (`hbmon_watch_*`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hbmon.config.model import Config
from hbmon.metrics import Metrics
from hbmon.watch.observer import WATCHER

AGENT_ONLY = frozenset(
    {
        "hbmon_heartbeats_sent",
        "hbmon_messages_sent",
        "hbmon_heartbeat_rtt_seconds",
        "hbmon_failover_duration_seconds",
        "hbmon_resource_operation_duration_seconds",
        "hbmon_resource_operation_failures",
        "hbmon_ownership_conflicts",
        "hbmon_standby_refusals",
        "hbmon_ping_rtt_seconds",
        "hbmon_ping_last_rtt_seconds",
        "hbmon_ping_replies",
        "hbmon_ping_timeouts",
    }
)
OWNER_FAMILIES = frozenset(
    {
        "hbmon_resource_group_held",
        "hbmon_resource_group_state",
        "hbmon_resource_group_owned",
        "hbmon_resource_group_dual_owner",
        "hbmon_resource_group_last_transition_timestamp_seconds",
        "hbmon_resource_group_failures",
        "hbmon_resources_stable",
    }
)
PING_FAMILIES = frozenset(
    {
        "hbmon_ping_node_up",
        "hbmon_ping_node_transitions",
        "hbmon_ping_node_last_transition_timestamp_seconds",
        "hbmon_ping_reachable_nodes",
        "hbmon_ping_nodes_configured",
    }
)


class WatchMetrics(Metrics):
    def __init__(self, config: Config, *, version: str, process_metrics: bool = True) -> None:
        super().__init__(
            replace(config, node=WATCHER), version=version, process_metrics=process_metrics
        )
        self._watch_lock = threading.Lock()
        self._frames: dict[tuple[str, str], int] = {}
        for m in dict.fromkeys(m.iface for m in config.media):
            for direction in ("in", "out"):
                self._frames[(m, direction)] = 0
        self._fragments = 0
        self._owner_known = False
        self._pings_known = False

    # ------------------------------------------------------------ feeding --
    def frame(self, iface: str, outgoing: bool) -> None:
        with self._watch_lock:
            key = (iface, "out" if outgoing else "in")
            self._frames[key] = self._frames.get(key, 0) + 1

    def fragment(self) -> None:
        with self._watch_lock:
            self._fragments += 1

    def set_known(self, *, owner: bool, pings: bool) -> None:
        with self._watch_lock:
            self._owner_known, self._pings_known = owner, pings

    # ---------------------------------------------------------- rendering --
    def collect(self) -> Iterator[Metric]:
        with self._watch_lock:
            owner, pings = self._owner_known, self._pings_known
            frames = sorted(self._frames.items())
            fragments = self._fragments
        for metric in super().collect():
            name = metric.name
            if name in AGENT_ONLY:
                continue
            if name in OWNER_FAMILIES and not owner:
                continue
            if name in PING_FAMILIES and not pings:
                continue
            metric.samples = [s for s in metric.samples if s.labels.get("node") != WATCHER]
            yield metric
        captured = CounterMetricFamily(
            "hbmon_watch_captured_datagrams",
            "Heartbeat datagrams captured, by interface and direction (out: sent by the "
            "local heartbeat).",
            labels=["iface", "direction"],
        )
        for (iface, direction), n in frames:
            captured.add_metric([iface, direction], n)
        yield captured
        yield CounterMetricFamily(
            "hbmon_watch_fragments",
            "IP fragments on udpport (not reassembled, so not verified).",
            value=fragments,
        )
        yield GaugeMetricFamily(
            "hbmon_watch_owner_known",
            "1 while `cl_status rscstatus` answers (owner state is exported).",
            value=int(owner),
        )
