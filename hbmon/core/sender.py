"""What we send and when: the fixed-rate status schedule and our seq counter.

Statuses go out at start + k·keepalive. A late timer call sends once and
re-aligns to the next slot after `now`; it never shifts the schedule, so beats
do not drift with scheduling jitter (heartbeat's own loop does drift).
"""

from __future__ import annotations

import math

from hbmon.config.model import STARTUP_DT_EXTRA_MS, STARTUP_DT_PERIOD_MS, Timers
from hbmon.core.echo import SentLog


class StatusSchedule:
    __slots__ = ("_anchor", "_k", "_period")

    def __init__(self, anchor: float, period: float) -> None:
        self._anchor = anchor
        self._period = period
        self._k = 0

    @property
    def next_at(self) -> float:
        return self._anchor + self._k * self._period

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def advance(self, now: float) -> None:
        """The status of the current slot is out: move to the first slot after `now`."""
        k = max(self._k + 1, math.floor((now - self._anchor) / self._period) + 1)
        while self._anchor + k * self._period <= now:
            k += 1
        self._k = k

    def retime(self, period: float, now: float) -> None:
        """New keepalive: keep the pending slot unless the new period comes sooner."""
        if period == self._period:
            return
        self._anchor = min(self.next_at, now + period)
        self._k = 0
        self._period = period


class SeqCounter:
    """Our per-sender seq (starts at 1, shared by all sequenced messages)."""

    __slots__ = ("last", "sent")

    def __init__(self) -> None:
        self.last = 0
        self.sent = SentLog()

    def take(self, now: float) -> int:
        self.last += 1
        self.sent.record(self.last, now)
        return self.last


def advertised_dt_ms(timers: Timers, started_at: float, now: float) -> int:
    """Our `dt`: deadtime, plus STARTUP_DT_EXTRA_MS during the startup period (§4.5)."""
    # Compared in whole µs so float noise cannot move the boundary.
    if round((now - started_at) * 1_000_000) < STARTUP_DT_PERIOD_MS * 1000:
        return timers.deadtime_ms + STARTUP_DT_EXTRA_MS
    return timers.deadtime_ms
