"""The hung owner over the two-node sim: its agent frozen (SIGSTOP), its address up.

Without fencing the address probe refuses the takeover (the default, which pages);
with `hung_owner: take_over` the group is taken after the wait and the owner,
when it wakes, gives it up at once; with fencing the owner is reset and nothing
is ever held twice.

Timers: keepalive 1 s, deadtime 10 s; a start or stop takes 1/4 s, a probe
1/8 s, a reset 1 s. VIP_B is beta's group (beta is its preferred node).
"""

from __future__ import annotations

import dataclasses

from simnet import Sim
from simowners import VIP_A, VIP_B, A, B, lines, rconfig
from test_sim_fencing import CUT, DEAD_AT, RESET, SWITCH, run_watching_dual

from hbmon.config.model import AutoFailback, Config, HungOwnerPolicy
from hbmon.core.events import (
    FenceNode,
    OwnershipConflict,
    SendMessage,
    StartGroup,
    StopGroup,
    TakeoverBlocked,
    TakeoverComplete,
    TakeoverReason,
)

OP = 0.25
PROBE = 0.125
WAIT = 5.0


def hung_config(
    node: str, policy: HungOwnerPolicy, failback: AutoFailback = AutoFailback.OFF, **kw: object
) -> Config:
    cfg = rconfig(node, auto_failback=failback)
    hb = dataclasses.replace(cfg.hbmon, hung_owner=policy, hung_owner_wait_ms=int(WAIT * 1000))
    return dataclasses.replace(cfg, hbmon=hb, **kw)  # type: ignore[arg-type]


def frozen_owner(
    policy: HungOwnerPolicy, failback: AutoFailback = AutoFailback.OFF, **kw: object
) -> Sim:
    sim = Sim({n: hung_config(n, policy, failback, **kw) for n in (A, B)})
    sim.start(A)
    sim.start(B)
    sim.run_until(CUT)
    assert sim.world.running == {VIP_A: {A}, VIP_B: {B}}
    sim.freeze(B)
    return sim


def test_by_default_a_hung_owner_blocks_the_takeover_for_good() -> None:
    sim = frozen_owner(HungOwnerPolicy.WAIT)
    sim.run_until(DEAD_AT + 120)
    assert [e.keys for _, e in sim.effects(A, TakeoverBlocked)] == [(VIP_B,)]
    assert [e for _, e in sim.effects(A, StartGroup) if e.key == VIP_B] == []
    assert dict(sim.nodes[A].snapshot(sim.clock.now).takeovers_blocked)["in_use"] == 1


def test_take_over_after_the_wait_and_the_woken_owner_gives_up() -> None:
    sim = frozen_owner(HungOwnerPolicy.TAKE_OVER)
    sim.run_until(DEAD_AT + WAIT + 2)
    (blocked,) = sim.effects(A, TakeoverBlocked)
    since = blocked[0]  # the probe that found the address answering
    assert since <= DEAD_AT + PROBE
    assert [(t, e) for t, e in sim.effects(A, StartGroup) if e.key == VIP_B] == [
        (since + WAIT, StartGroup(VIP_B, TakeoverReason.HUNG_OWNER))
    ]
    assert any("although its address still answers" in line for line in lines(sim, A))
    (done,) = [e for _, e in sim.effects(A, TakeoverComplete) if e.peer == B]
    assert done.reason is TakeoverReason.HUNG_OWNER
    assert done.duration_s == WAIT + OP  # from the first refusal
    # while beta sleeps both machines hold the address: the price of this policy
    assert sim.world.running[VIP_B] == {A, B}
    reports = [
        e.message.get("hbrsc") for t, e in sim.effects(A, SendMessage) if t > since + WAIT + OP
    ]
    assert any(r and f"^{VIP_B}" in r.split() for r in reports)

    woke = sim.clock.now
    sim.thaw(B)
    sim.run_until(woke + 1.0)  # one keepalive
    stops = [t for t, e in sim.effects(B, StopGroup) if e.key == VIP_B]
    assert stops == [woke]  # at once, from what waited in its socket buffer
    assert sim.world.running[VIP_B] == {A}
    assert sim.world.running[VIP_A] == {A}  # beta declared alpha dead on waking; no harm
    (conflict,) = [e for _, e in sim.effects(B, OwnershipConflict) if e.key == VIP_B]
    assert "it took the group from a hung owner" in conflict.resolution
    # alpha keeps it on its side of the same dual, and forgets the mark once beta let go
    sim.run_until(woke + 5.0)
    assert sim.holders(VIP_B) == {A}
    final = [r for _, e in sim.effects(A, SendMessage) if (r := e.message.get("hbrsc"))][-1]
    assert f"+{VIP_B}" in final.split()
    assert f"^{VIP_B}" not in final.split()


def test_take_over_then_auto_failback_brings_it_home_without_a_second_dual() -> None:
    sim = frozen_owner(HungOwnerPolicy.TAKE_OVER, AutoFailback.ON)
    sim.run_until(DEAD_AT + WAIT + 2)
    woke = sim.clock.now
    sim.thaw(B)
    sim.run_until(woke + OP)
    assert sim.world.running[VIP_B] == {A}  # the woken owner let go at once
    both = run_watching_dual(sim, woke + 20)
    assert both == 0.0
    # beta is its preferred node and came back: an orderly standby hands it home
    assert sim.world.running[VIP_B] == {B}
    assert [e.reason for _, e in sim.effects(B, TakeoverComplete)][-1] is TakeoverReason.FAILBACK


def test_with_fencing_the_hung_owner_is_reset_and_never_holds_twice() -> None:
    sim = frozen_owner(HungOwnerPolicy.WAIT, fencing=(SWITCH,))
    both = run_watching_dual(sim, DEAD_AT + 10)
    assert sim.effects(A, FenceNode) == [(DEAD_AT, FenceNode(B, 1))]
    assert [t for t, e in sim.effects(A, StartGroup) if e.key == VIP_B] == [DEAD_AT + RESET]
    assert sim.effects(A, TakeoverBlocked) == []
    assert both == 0.0
    assert B not in sim.frozen  # powered off: it will not wake to claim anything
    assert sim.world.running[VIP_B] == {A}
