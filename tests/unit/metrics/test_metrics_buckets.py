"""Histogram bounds: fixed, the same on every node whatever its timers, fine enough that
a quantile of healthy beats reads keepalive, and summable across nodes by `le`.

Quantiles are computed from the scraped exposition the way Prometheus'
`histogram_quantile` does (linear interpolation inside the bucket)."""

from __future__ import annotations

import itertools

import pytest
from metrics_samples import config, make_metrics, scrape
from prometheus_client.samples import Sample

from hbmon.config.model import Timers
from hbmon.core.events import BeatReceived, RttMeasured, TakeoverComplete, TakeoverReason
from hbmon.metrics import INTERVAL_BUCKETS, Metrics

HISTOGRAMS = (
    "hbmon_heartbeat_interval_seconds",
    "hbmon_heartbeat_rtt_seconds",
    "hbmon_ping_rtt_seconds",
    "hbmon_loop_lag_seconds",
    "hbmon_failover_duration_seconds",
)  # and hbmon_resource_operation_duration_seconds: OPERATION_BUCKETS, a constant too
FAST = Timers(keepalive_ms=200, deadtime_ms=2000, warntime_ms=1000, initdead_ms=4000)
REFERENCE = Timers(keepalive_ms=2000, deadtime_ms=30000, warntime_ms=10000, initdead_ms=60000)
ODD = Timers(keepalive_ms=300, deadtime_ms=1100, warntime_ms=700, initdead_ms=12000)


def buckets(
    samples: dict[str, list[Sample]], name: str, **labels: str
) -> list[tuple[float, float]]:
    """(le, cumulative count) of one series, in exposition order."""
    return [
        (float(s.labels["le"]), s.value)
        for s in samples[f"{name}_bucket"]
        if {k: v for k, v in s.labels.items() if k != "le"} == labels
    ]


def bounds_by_histogram(m: Metrics) -> dict[str, set[tuple[float, ...]]]:
    """Every series' bound list, per histogram (one set element if all series agree)."""
    s = scrape(m)
    out: dict[str, set[tuple[float, ...]]] = {}
    for name in HISTOGRAMS:
        rows = s[f"{name}_bucket"]
        key = lambda r: tuple(sorted((k, v) for k, v in r.labels.items() if k != "le"))  # noqa: E731
        out[name] = {
            tuple(float(r.labels["le"]) for r in group)
            for _, group in itertools.groupby(sorted(rows, key=key), key=key)
        }
    return out


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over one classic histogram."""
    total = cumulative[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    raise AssertionError("unreachable")


def metrics_with(timers: Timers) -> Metrics:
    m = make_metrics()
    m.reconfigure(config(timers=timers))
    return m


def test_bounds_do_not_depend_on_the_timers() -> None:
    seen = [bounds_by_histogram(metrics_with(t)) for t in (FAST, REFERENCE, ODD)]
    assert seen[0] == seen[1] == seen[2]
    for name, variants in seen[0].items():
        assert len(variants) == 1, f"{name}: series disagree on their bounds"
        (bounds,) = variants
        assert list(bounds) == sorted(set(bounds)), name
        assert bounds[-1] == float("inf"), name


def test_bounds_and_counts_survive_a_reload_with_new_timers() -> None:
    m = metrics_with(FAST)
    m.observe(BeatReceived("solr2", "em1", 0.2, 1))
    m.observe(TakeoverComplete(TakeoverReason.PEER_DEAD, ("solr",), 1.5, "solr2"))
    before = bounds_by_histogram(m)
    m.reconfigure(config(timers=REFERENCE))
    assert bounds_by_histogram(m) == before
    s = scrape(m)
    assert [x.value for x in s["hbmon_heartbeat_interval_seconds_count"]] == [1.0]
    counts = {x.labels["reason"]: x.value for x in s["hbmon_failover_duration_seconds_count"]}
    assert counts["peer_dead"] == 1


def test_interval_bounds_are_eight_per_octave_from_31ms_to_512s() -> None:
    b = INTERVAL_BUCKETS
    assert (b[0], b[-1], len(b)) == (0.03125, 512.0, 113)
    assert max(hi / lo for lo, hi in itertools.pairwise(b)) < 1.0906
    # The common timer values that are powers of two are exact bounds.
    assert {0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0} <= set(b)


@pytest.mark.parametrize("keepalive", [0.05, 0.2, 0.5, 1.0, 2.0, 3.0, 10.0])
def test_healthy_beats_quantiles_read_keepalive(keepalive: float) -> None:
    """Beats within ±5 ms of keepalive: p50 and p99 within one 9 % bucket of the truth
    (the timer-derived bounds showed p99 = 2.98 s for healthy 2 s beats)."""
    m = make_metrics()
    jitter = [(i % 11 - 5) / 1000 for i in range(1000)]
    for j in jitter:
        m.observe(BeatReceived("solr2", "em1", keepalive + j, 1))
    series = buckets(scrape(m), "hbmon_heartbeat_interval_seconds", node="solr2")
    true_p99 = keepalive + 0.005
    for q in (0.5, 0.99):
        got = quantile(q, series)
        assert keepalive - 0.005 - 0.09 * keepalive <= got <= true_p99 * 1.0906, (q, got)
    if keepalive == 2.0:
        assert quantile(0.99, series) < 2.19


def test_nodes_with_different_timers_sum_by_le() -> None:
    """Two nodes, keepalive 200 ms and 2 s: their buckets add up to one valid histogram
    whose low quantiles read the fast node and p99 the slow one."""
    fast, slow = metrics_with(FAST), metrics_with(REFERENCE)
    for _ in range(100):
        fast.observe(BeatReceived("solr2", "em1", 0.2, 1))
        slow.observe(BeatReceived("solr2", "em1", 2.0, 1))
    a = buckets(scrape(fast), "hbmon_heartbeat_interval_seconds", node="solr2")
    b = buckets(scrape(slow), "hbmon_heartbeat_interval_seconds", node="solr2")
    assert [le for le, _ in a] == [le for le, _ in b]
    summed = [(le, x + y) for (le, x), (_, y) in zip(a, b, strict=True)]
    counts = [c for _, c in summed]
    assert counts == sorted(counts)
    assert counts[-1] == 200
    assert 1.83 <= quantile(0.99, summed) <= 2.0
    assert 0.19 <= quantile(0.25, summed) <= 0.2103  # in the bucket holding 200 ms


def test_rtt_and_takeover_bounds_cover_lan_to_outage() -> None:
    m = make_metrics()
    m.observe(RttMeasured("solr2", "em1", 0.00042))
    m.observe(TakeoverComplete(TakeoverReason.PEER_DEAD, ("solr",), 0.08, "solr2"))
    s = scrape(m)
    rtt = buckets(s, "hbmon_heartbeat_rtt_seconds", node="solr2", link="em1/solr2")
    assert (rtt[0][0], rtt[-2][0]) == (0.0001, 10.0)
    assert dict(rtt)[0.0005] == 1
    assert dict(rtt)[0.00025] == 0
    failover = buckets(s, "hbmon_failover_duration_seconds", reason="peer_dead")
    assert dict(failover)[0.1] == 1
    assert dict(failover)[0.05] == 0
    assert failover[-2][0] == 300.0
