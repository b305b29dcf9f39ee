"""Fencing metrics fed by the driver: every reset attempt and device check
(io/fencing.py's records). The resets a dead peer's takeover waits for come from
the snapshot (`hbmon_fence_pending`, metrics/render.py).

    hbmon_fence_attempts_total{node,device}   devices tried on a node (each try)
    hbmon_fence_failures_total{node,device}   ...that did not reset it (bad, badhost, timeout)
    hbmon_fence_duration_seconds{device}      how long each try took
    hbmon_fence_device_up{device}             the last status check (heartbeat's hourly one)

Series of every (peer, device) this node uses are present at 0 from the start.
Not thread-safe by itself: `Metrics` calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hbmon.config.model import Config
from hbmon.metrics.buckets import FENCE_BUCKETS, HistogramFamily

if TYPE_CHECKING:
    from hbmon.io.fencing import FenceRecord


class FenceMetrics:
    """The counters, histogram and device gauge of fencing, kept between scrapes."""

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
