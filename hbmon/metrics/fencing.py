"""Fencing metrics: every reset attempt and device check (from io/fencing.py), and the
resets a dead peer's takeover waits for (from the snapshot).

    hbmon_fence_attempts_total{node,device}   devices tried on a node (each try)
    hbmon_fence_failures_total{node,device}   ...that did not reset it (bad, badhost, timeout)
    hbmon_fence_duration_seconds{device}      how long each try took
    hbmon_fence_device_up{device}             the last status check (heartbeat's hourly one)
    hbmon_fence_pending{node}                 1 while a reset of the dead node is wanted
                                              and not done: its groups wait (HbmonFencingFailed)

Series of every (peer, device) this node uses are present at 0 from the start.
Not thread-safe by itself: `Metrics` calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hbmon.config.model import Config
from hbmon.core.fencing import PENDING
from hbmon.core.snapshot import Snapshot
from hbmon.metrics.buckets import HistogramFamily

if TYPE_CHECKING:
    from hbmon.io.fencing import FenceRecord

# A power switch answers in a second or two; IPMI and cloud APIs take tens of seconds.
FENCE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class FenceMetrics:
    def __init__(self, config: Config) -> None:
        self._attempts: dict[tuple[str, str], int] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._up: dict[str, int] = {}
        self._duration = HistogramFamily(
            "hbmon_fence_duration_seconds",
            "How long one fencing device took to reset a node (or to fail).",
            ("device",),
            FENCE_BUCKETS,
        )
        self.precreate(config)

    def precreate(self, config: Config) -> None:
        for peer in config.peers:
            for d in config.fence_devices(peer):
                self._attempts.setdefault((peer, d.label), 0)
                self._failures.setdefault((peer, d.label), 0)
                self._duration.ensure((d.label,))

    def observe(self, rec: FenceRecord) -> None:
        if not rec.node:  # a device check
            self._up[rec.device] = int(rec.ok)
            return
        key = (rec.node, rec.device)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._failures[key] = self._failures.get(key, 0) + (0 if rec.ok else 1)
        self._duration.ensure((rec.device,)).observe(rec.seconds)

    def render(self) -> Iterator[Metric]:
        attempts = CounterMetricFamily(
            "hbmon_fence_attempts_total",
            "Fencing devices tried on a node (each device of each reset attempt).",
            labels=["node", "device"],
        )
        failures = CounterMetricFamily(
            "hbmon_fence_failures_total",
            "Fencing tries that did not reset the node (failed, cannot reset it, timed out).",
            labels=["node", "device"],
        )
        for key in sorted(self._attempts):
            attempts.add_metric(list(key), self._attempts[key])
            failures.add_metric(list(key), self._failures.get(key, 0))
        yield attempts
        yield failures
        yield self._duration.render()
        up = GaugeMetricFamily(
            "hbmon_fence_device_up",
            "The last status check of a fencing device: 1 it answered, 0 it failed.",
            labels=["device"],
        )
        for device in sorted(self._up):
            up.add_metric([device], self._up[device])
        yield up


def pending(snap: Snapshot) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(
        "hbmon_fence_pending",
        "1 while a dead node's reset is wanted and not done; its groups wait for it.",
        labels=["node"],
    )
    for v in snap.fencing:
        fam.add_metric([v.node], 1 if v.state in PENDING else 0)
    return fam
