"""Property: for any pattern of lost beats, alpha's verdicts follow from the arrival times alone.

beta's status k leaves at k−1 s and, unless dropped on both media, reaches alpha
DELAY later. For consecutive arrivals a < b: a gap ≥ deadtime means beta was
declared dead at exactly a + deadtime and came back (partition heal) at b; a gap
above warntime (and not above deadtime) is a late beat; every dropped seq below
the last delivered one is counted lost once.
"""

from __future__ import annotations

import itertools

from coretools import make_config
from hypothesis import given, settings
from hypothesis import strategies as st
from simnet import DELAY, Sim

from hbmon.core.events import (
    DeathReason,
    LateBeat,
    NodeDead,
    PacketsLost,
    PartitionHealed,
    Threshold,
)
from hbmon.wire.message import Message

A, B = "alpha", "beta"
LAST_SEQ = 62  # beta runs from 0 to 61.5 s
DEAD, WARN = 10.0, 5.0


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(7, LAST_SEQ), max_size=40))
def test_verdicts_follow_arrivals(dropped: set[int]) -> None:
    sim = Sim({A: make_config(A), B: make_config(B)})

    def shaper(src: str, dst: str, iface: str, m: Message) -> float | None:
        return None if src == B and m.get_hex("seq") in dropped else 0.0

    sim.shaper = shaper
    sim.start(A)
    sim.start(B)
    sim.run_until(LAST_SEQ - 0.5)
    sim.kill(B)
    sim.run_until(LAST_SEQ - 0.5 + 0.01)

    arrivals = [k - 1 + DELAY for k in range(1, LAST_SEQ + 1) if k not in dropped]
    deaths, heals, late = [], [], []
    for a, b in itertools.pairwise(arrivals):
        gap = b - a
        if gap >= DEAD:
            deaths.append((a + DEAD, NodeDead(B, DeathReason.TIMEOUT, a)))
            heals.append(b)
        if gap > DEAD:
            late.append((b, LateBeat(B, gap, Threshold.DEADTIME)))
        elif gap > WARN:
            late.append((b, LateBeat(B, gap, Threshold.WARNTIME)))
    if arrivals[-1] + DEAD <= sim.clock.now:
        deaths.append((arrivals[-1] + DEAD, NodeDead(B, DeathReason.TIMEOUT, arrivals[-1])))

    assert sim.effects(A, NodeDead) == deaths
    assert [t for t, _ in sim.effects(A, PartitionHealed)] == heals
    assert sim.effects(A, LateBeat) == late
    last_delivered = max(k for k in range(1, LAST_SEQ + 1) if k not in dropped)
    sim.run_until(LAST_SEQ + 5)  # past every grace period
    lost = sum(e.count for _, e in sim.effects(A, PacketsLost))
    assert lost == sum(1 for k in dropped if k < last_delivered)
