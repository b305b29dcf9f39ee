"""Histograms with fixed bounds, and the bounds of each of hbmon's.

Every histogram has fixed bounds, the same on every node whatever its timers and
across reloads: nodes with different timers sum by `le`, and a SIGHUP never
resets a series. The timers are thresholds, not bounds; `hbmon_config_*_seconds`
carries them, and `hbmon_heartbeat_late_total` counts the breaches exactly.

Series are kept here, not in prometheus_client's `Histogram`: the collector
renders them with the rest of a scrape (no `_created` sample, no global registry).
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client.core import HistogramMetricFamily


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
# Fencing: a power switch answers in a second or two; IPMI and cloud APIs take tens of
# seconds.
FENCE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _le(bound: float) -> str:
    """A bucket bound as the `le` label value, in the exposition's float syntax."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class Histogram:
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


class HistogramFamily:
    """A histogram metric with fixed label names; series are created on first use."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]):
        self.name = name
        self.doc = doc
        self.labels = labels
        self.bounds = bounds
        self.series: dict[tuple[str, ...], Histogram] = {}

    def ensure(self, key: tuple[str, ...]) -> Histogram:
        h = self.series.get(key)
        if h is None:
            h = self.series[key] = Histogram(self.bounds)
        return h

    def render(self) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(self.name, self.doc, labels=list(self.labels))
        for key in sorted(self.series):
            h = self.series[key]
            fam.add_metric(list(key), h.cumulative(), h.total)
        return fam
