"""Fixed-rate status schedule and the advertised dt."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hbmon.config.model import Timers
from hbmon.core.echo import SentLog
from hbmon.core.sender import SeqCounter, StatusSchedule, advertised_dt_ms


def test_schedule_slots_are_anchored_at_start() -> None:
    s = StatusSchedule(10.0, 0.5)
    assert s.next_at == 10.0
    assert s.due(10.0)
    s.advance(10.0)
    assert s.next_at == 10.5
    s.advance(10.7)  # late by 0.2: next slot stays on the grid
    assert s.next_at == 11.0
    s.advance(12.3)  # late by several periods: once, then re-aligned
    assert s.next_at == 12.5


def test_retime_keeps_pending_slot_unless_sooner() -> None:
    s = StatusSchedule(0.0, 2.0)
    s.advance(0.0)
    s.retime(1.0, 0.5)
    assert s.next_at == 1.5
    s = StatusSchedule(0.0, 10.0)
    s.advance(0.0)
    s.retime(1.0, 0.5)
    assert s.next_at == 1.5


@given(
    st.floats(0, 1e6),
    st.sampled_from([0.1, 0.25, 1.0, 2.0, 0.3]),
    st.lists(st.floats(0, 5), max_size=30),
)
def test_next_slot_is_always_after_now_and_on_the_grid(
    anchor: float, period: float, lags: list[float]
) -> None:
    s = StatusSchedule(anchor, period)
    now = anchor
    for lag in lags:
        now = max(now, s.next_at) + lag
        s.advance(now)
        assert s.next_at > now
        k = round((s.next_at - anchor) / period)
        assert abs(anchor + k * period - s.next_at) <= 1e-6 * max(1.0, abs(anchor))
        assert s.next_at - now <= period + 1e-6 * max(1.0, abs(anchor))


def test_seq_counter_and_sent_log() -> None:
    c = SeqCounter()
    assert [c.take(float(i)) for i in range(3)] == [1, 2, 3]
    assert c.sent.sent_at(2) == 1.0
    log = SentLog(size=4)
    for i in range(10):
        log.record(i, float(i))
    assert log.sent_at(5) is None
    assert log.sent_at(6) == 6.0


def test_advertised_dt_during_and_after_startup() -> None:
    t = Timers(keepalive_ms=1000, deadtime_ms=3000)
    assert advertised_dt_ms(t, 100.0, 100.0) == 5000
    assert advertised_dt_ms(t, 100.0, 104.999) == 5000
    assert advertised_dt_ms(t, 100.0, 105.0) == 3000
    assert advertised_dt_ms(t, 0.1, 0.1 + 50 * 0.1) == 3000
