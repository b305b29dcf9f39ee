"""The address probe sized to the link (hbmon/core/linkrtt.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbmon.core.linkrtt import LinkRtt


def rtt() -> LinkRtt:
    return LinkRtt(floor_s=0.03, ceiling_s=0.15, multiple=30)


def test_nothing_measured_probes_for_the_configured_timeout() -> None:
    assert rtt().probe_window() == 0.15
    assert rtt().timeout_s() is None


def test_a_fast_lan_probes_for_the_floor() -> None:
    r = rtt()
    for _ in range(20):
        r.sample("em1/beta", 0.0003)
    assert r.probe_window() == 0.03


def test_the_slowest_source_sizes_it_with_its_variation() -> None:
    r = rtt()
    for i in range(50):
        r.sample("em1/beta", 0.0003)
        r.sample("ping/10.0.0.254", 0.002 if i % 2 else 0.001)  # 1-2 ms, jittery
    rto = r.timeout_s()
    assert rto is not None
    assert 0.002 < rto < 0.004  # SRTT 1.5 ms + 4 x RTTVAR ~0.5 ms
    assert r.probe_window() == pytest.approx(round(30 * rto + 0.0005, 3), abs=0.001)
    assert 0.03 < r.probe_window() < 0.15


def test_a_slow_link_is_capped_at_the_configured_timeout() -> None:
    r = rtt()
    r.sample("em1/beta", 0.02)
    assert r.probe_window() == 0.15
    r.reconfigure(floor_s=0.03, ceiling_s=0.5, multiple=30)
    assert r.probe_window() == 0.5


@given(st.lists(st.floats(0, 0.01), min_size=1, max_size=40))
def test_the_window_is_whole_ms_within_its_bounds(samples: list[float]) -> None:
    r = rtt()
    for s in samples:
        r.sample("x", s)
    w = r.probe_window()
    assert 0.03 <= w <= 0.15
    assert abs(w * 1000 - round(w * 1000)) < 1e-6
