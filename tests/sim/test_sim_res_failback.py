"""auto_failback on / off / legacy and failback stickiness (spec §5.3, §4.6.11).

beta (VIP_B's preferred node) crashes at 10.5 s; alpha takes VIP_B over at
20.4375 s; beta's machine comes back at 30 s. Its comm-up is at 30 1/16 s (the
first beat from alpha), when it sends `starting` and — alpha holding its group
— takes nothing and is stable at once.
"""

from __future__ import annotations

import pytest
from simnet import DELAY, Sim
from simowners import VIP_A, VIP_B, A, B, lines, rpair, sent_types

from hbmon.config.model import AutoFailback
from hbmon.core.events import ControlOp, Scope, StartGroup, TakeoverComplete, TakeoverReason

OP = 0.25
BACK = 30.0
COMM_UP = BACK + DELAY  # beta hears alpha's beat sent at 30 s


def crash_and_return(mode: AutoFailback, *, stickiness_ms: int = 0, until: float = 60) -> Sim:
    sim = rpair(auto_failback=mode, stickiness_ms=stickiness_ms)
    sim.start(A)
    sim.start(B)
    sim.run_until(10.5)
    sim.crash(B)
    sim.run_until(BACK)
    assert sim.holders(VIP_B) == {A}
    sim.start(B, generation=101)
    sim.run_until(until)
    return sim


def failback_done(sim: Sim) -> list[tuple[float, TakeoverComplete]]:
    return [
        (t, e) for t, e in sim.effects(B, TakeoverComplete) if e.reason is TakeoverReason.FAILBACK
    ]


def test_on_hands_the_group_back_when_the_preferred_node_returns() -> None:
    sim = crash_and_return(AutoFailback.ON)
    assert sim.holders(VIP_B) == {B}
    assert sim.holders(VIP_A) == {A}
    assert "Local Resource acquisition completed. (none)" in lines(sim, B)
    # alpha hears `starting` and beta's stable `resource` at COMM_UP + DELAY, stands by
    # [foreign]: me, other, (stop) done, (start) — beta has it back after 3 trips + 2 ops
    asked = COMM_UP + DELAY
    assert sent_types(sim, A, since=BACK)[1] == "ask_resources/foreign/me"
    assert failback_done(sim) == [
        (
            asked + 3 * DELAY + 2 * OP,
            TakeoverComplete(TakeoverReason.FAILBACK, (VIP_B,), OP, A),
        )
    ]
    assert f"{A} wants to go standby [foreign]" in lines(sim, A)


def test_off_leaves_the_group_where_it_is() -> None:
    sim = crash_and_return(AutoFailback.OFF)
    assert sim.holders(VIP_B) == {A}
    assert failback_done(sim) == []
    assert "ask_resources/foreign/me" not in sent_types(sim, A, since=BACK)


def test_legacy_brings_the_group_home_without_nice_failback_messages() -> None:
    sim = crash_and_return(AutoFailback.LEGACY)
    assert sim.holders(VIP_B) == {B}
    assert len(failback_done(sim)) == 1
    # no starting/resource from either side; the hand-back is hbmon's exchange
    assert not [m for m in sent_types(sim, B) if m.startswith(("starting", "resource"))]


@pytest.mark.parametrize("stickiness_s", [5, 20])
def test_stickiness_delays_failback_until_the_node_stayed_up(stickiness_s: int) -> None:
    sim = crash_and_return(AutoFailback.ON, stickiness_ms=stickiness_s * 1000)
    # alpha counts beta's uptime from its first beat (sent at 30 s)
    asked = BACK + DELAY + stickiness_s
    ((t, _),) = failback_done(sim)
    assert t == asked + 3 * DELAY + 2 * OP
    assert sim.holders(VIP_B) == {B}


def test_stickiness_restarts_when_the_node_crashes_again() -> None:
    sim = rpair(auto_failback=AutoFailback.ON, stickiness_ms=20_000)
    sim.start(A)
    sim.start(B)
    sim.run_until(10.5)
    sim.crash(B)
    sim.run_until(BACK)
    sim.start(B, generation=101)
    sim.run_until(BACK + 10)
    sim.crash(B)  # flapping: crashes again before the stickiness ran out
    sim.run_until(BACK + 25)
    sim.start(B, generation=102)
    sim.run_until(BACK + 44)
    assert failback_done(sim) == []  # not 20 s since the second return (at 55 s) yet
    sim.run_until(BACK + 80)
    assert len(failback_done(sim)) == 1
    assert sim.holders(VIP_B) == {B}


def test_on_does_not_undo_a_manual_standby() -> None:
    sim = rpair(auto_failback=AutoFailback.ON)
    sim.start(A)
    sim.start(B)
    sim.run_until(10)
    sim.request(B, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(60)
    assert sim.holders(VIP_B) == {A}
    assert sim.holders(VIP_A) == {A}
    starts = [e for _, e in sim.effects(B, StartGroup) if e.key == VIP_B]
    assert len(starts) == 1  # only the initial one
