"""Fencing over the two-node sim: a dead node is reset before its groups are taken,
a failed reset is retried and nothing is taken meanwhile, heartbeat's `stonith`
notices go out, and two nodes cut off from each other never shoot each other.

Timers: keepalive 1 s, deadtime 10 s, initdead 20 s, one-way delay 1/16 s.
World: a start or stop takes 1/4 s, a probe 1/8 s, a reset 1 s (the target is
off when it answers). Groups: VIP_A (alpha's), VIP_B (beta's). alpha is listed
first, so its fencing delay is 0; beta's is FENCE_DELAY_MS.
"""

from __future__ import annotations

import dataclasses

from simnet import DELAY, Sim
from simowners import GROUPS, VIP_A, VIP_B, A, B, line_times, lines, rconfig

from hbmon.config.model import (
    FENCE_DELAY_MS,
    FENCE_RETRY_INITIAL_MS,
    Config,
    FenceDevice,
    FenceKind,
    ResourceGroup,
)
from hbmon.core.events import (
    FenceNode,
    SendMessage,
    Shutdown,
    StartGroup,
    TakeoverBlocked,
    TakeoverComplete,
    TakeoverReason,
)
from hbmon.core.fencing import FenceState

OP = 0.25
RESET = 1.0
CUT = 8.5  # past the first 5 s, when a node advertises deadtime + 2 s
DEAD_AT = 8.0 + DELAY + 10  # the last beat (sent at 8) arrives; deadtime 10 s
SWITCH = FenceDevice(FenceKind.STONITH, "external/lab", params="lab solr1=ns1 solr2=ns2")


def fconfig(node: str, *, devices: tuple[FenceDevice, ...] = (SWITCH,), **kw: object) -> Config:
    return dataclasses.replace(rconfig(node, **kw), fencing=devices)  # type: ignore[arg-type]


def fpair(**kw: object) -> Sim:
    return Sim({A: fconfig(A, **kw), B: fconfig(B, **kw)})  # type: ignore[arg-type]


def settled(sim: Sim, until: float = CUT) -> Sim:
    sim.start(A)
    sim.start(B)
    sim.run_until(until)
    assert sim.holders(VIP_A) == {A}
    assert sim.holders(VIP_B) == {B}
    return sim


def stonith_notices(sim: Sim, name: str) -> list[tuple[float, str, str]]:
    """(time, node, result) of every heartbeat `stonith` message `name` sent."""
    return [
        (t, str(e.message.get("node")), str(e.message.get("result")))
        for t, e in sim.effects(name, SendMessage)
        if e.message.type == "stonith"
    ]


def started(sim: Sim, name: str, key: str) -> list[float]:
    return [t for t, e in sim.effects(name, StartGroup) if e.key == key]


# ------------------------------------------------------------ dead owner --
def test_a_dead_owner_is_reset_before_its_group_is_taken() -> None:
    sim = settled(fpair())
    sim.kill(B)  # kill -9: its address stays up until the switch turns it off
    sim.run_until(30)
    assert sim.effects(A, FenceNode) == [(DEAD_AT, FenceNode(B, 1))]
    assert sim.world.fenced == [(A, B)]
    # no probe after the reset: the machine is off, so the start follows at once
    assert started(sim, A, VIP_B) == [DEAD_AT + RESET]
    assert [c for c in sim.effects(A, TakeoverComplete) if c[1].peer == B] == [
        (
            DEAD_AT + RESET + OP,
            TakeoverComplete(TakeoverReason.PEER_DEAD, (VIP_B,), RESET + OP, B),
        )
    ]
    assert sim.world.running[VIP_B] == {A}
    assert stonith_notices(sim, A) == [(DEAD_AT + RESET, B, "OK")]
    text = lines(sim, A)
    assert "Resources being acquired from beta." in text
    assert "No STONITH device configured." not in text
    assert sim.nodes[A].snapshot(30).fencing[0].state is FenceState.RESET


def test_a_failed_reset_is_retried_with_backoff_and_nothing_is_taken_meanwhile() -> None:
    sim = settled(fpair())
    sim.world.fence_fail.add(B)
    sim.kill(B)
    sim.run_until(DEAD_AT + 60)
    first = FENCE_RETRY_INITIAL_MS / 1000
    # attempt 1 at the dead declaration; then 5 s, 10 s, 20 s after each failure
    tries = [DEAD_AT]
    for wait in (first, 2 * first, 4 * first):
        tries.append(tries[-1] + RESET + wait)
    assert [t for t, _ in sim.effects(A, FenceNode)] == tries
    assert [e.attempt for _, e in sim.effects(A, FenceNode)] == [1, 2, 3, 4]
    assert started(sim, A, VIP_B) == []  # never taken without a reset
    assert sim.world.running[VIP_B] == {B}  # the killed agent's address still up
    assert [(n, r) for _, n, r in stonith_notices(sim, A)] == [(B, "bad")] * 4
    assert len(line_times(sim, A, "STONITH of beta failed.  Retrying... (attempt 2 in 5 s)")) == 1
    # the takeover is blocked once per death, by the fencing reason
    assert [e.keys for _, e in sim.effects(A, TakeoverBlocked)] == [(VIP_B,)]
    assert dict(sim.nodes[A].snapshot(sim.clock.now).takeovers_blocked)["fencing"] == 1
    # the switch is repaired: the next attempt resets beta, and only then is VIP_B taken
    sim.world.fence_fail.clear()
    sim.run_until(DEAD_AT + 200)
    fifth = tries[-1] + RESET + 8 * first
    assert sim.world.fenced == [(A, B)]
    assert started(sim, A, VIP_B) == [fifth + RESET]
    assert sim.world.running[VIP_B] == {A}


def test_a_node_not_heard_within_initdead_is_reset_first() -> None:
    sim = fpair()
    sim.start(A)
    sim.run_until(30)
    # comm-up at initdead (20 s): beta was never heard, so it may hold anything
    assert sim.effects(A, FenceNode) == [(20.0, FenceNode(B, 1))]
    assert sorted(e.key for _, e in sim.effects(A, StartGroup)) == [VIP_A, VIP_B]
    assert min(t for t, _ in sim.effects(A, StartGroup)) == 20.0 + RESET
    assert "Initial resource acquisition complete (mach_down)" in lines(sim, A)


def test_a_node_that_shut_down_needs_no_reset() -> None:
    sim = settled(fpair())
    sim.event(B, Shutdown())
    sim.run_until(30)
    assert sim.effects(A, FenceNode) == []
    assert [(n, r) for _, n, r in stonith_notices(sim, A)] == [(B, "unneeded")]
    assert "Dead node beta gave up resources." in lines(sim, A)
    assert sim.world.running[VIP_B] == {A}


def test_without_a_device_heartbeats_warnings_and_the_probe_guard() -> None:
    sim = Sim({A: rconfig(A), B: rconfig(B)})
    settled(sim)
    sim.crash(B)
    sim.run_until(30)
    assert [(n, r) for _, n, r in stonith_notices(sim, A)] == [(B, "n_stnth")]
    assert "No STONITH device configured." in lines(sim, A)
    assert "Shared disks are not protected." in lines(sim, A)
    assert sim.world.running[VIP_B] == {A}


def test_a_peer_heard_again_during_the_delay_is_not_reset() -> None:
    # only beta has a device; beta holds VIP_B, so it waits its delay before shooting
    only_beta = (dataclasses.replace(SWITCH, from_node=B),)
    sim = Sim({A: fconfig(A, devices=only_beta), B: fconfig(B, devices=only_beta)})
    settled(sim)
    sim.partition(A, B)
    sim.run_until(DEAD_AT + FENCE_DELAY_MS / 1000 / 2)
    assert "Resetting node alpha in 10 s (fencing delay), unless it is heard again." in lines(
        sim, B
    )
    sim.heal()
    sim.run_until(DEAD_AT + 30)
    assert sim.effects(B, FenceNode) == []
    assert sim.world.fenced == []
    assert "Reset of alpha cancelled: it is heard again." in lines(sim, B)


# --------------------------------------------------------------- partitions --
def dual(sim: Sim) -> bool:
    return any(len(on) > 1 for on in sim.world.running.values())


def run_watching_dual(sim: Sim, until: float, step: float = 0.0625) -> float:
    """Run to `until`; the seconds during which some group ran on two machines."""
    total = 0.0
    while sim.clock.now < until:
        before = dual(sim)
        sim.run_until(sim.clock.now + step)
        total += step if before else 0.0
    return total


def test_both_holding_in_a_cut_exactly_one_shoots() -> None:
    sim = settled(fpair())
    sim.partition(A, B)  # every path between them; both still alive
    both = run_watching_dual(sim, CUT + 15)
    sim.heal()
    sim.run_until(60)
    # alpha (delay 0) resets beta at its dead declaration; beta, waiting its 10 s, is
    # off by then and never shoots
    assert sim.world.fenced == [(A, B)]
    assert sim.effects(B, FenceNode) == []
    assert B not in sim.nodes  # the loser stays down, as a fenced node does
    assert sim.world.running == {VIP_A: {A}, VIP_B: {A}}
    assert both == 0.0


def test_the_node_holding_nothing_shoots_at_once_and_is_not_shot() -> None:
    everything = (
        GROUPS[0],
        ResourceGroup(A, GROUPS[1].resources),
    )
    sim = Sim({n: fconfig(n, groups=everything) for n in (A, B)})
    sim.start(A)
    sim.start(B)
    sim.run_until(CUT)
    assert sim.world.running == {VIP_A: {A}, VIP_B: {A}}
    sim.partition(A, B)
    both = run_watching_dual(sim, CUT + 15)
    sim.run_until(60)
    # beta holds nothing: alpha does not reset it (heartbeat: it gave up resources) ...
    assert sim.effects(A, FenceNode) == []
    assert (B, "unneeded") in [(n, r) for _, n, r in stonith_notices(sim, A)]
    # ... and beta, with no duel to fear, resets alpha at once and takes over
    assert [t for t, _ in sim.effects(B, FenceNode)] == [DEAD_AT]
    assert sim.world.fenced == [(B, A)]
    assert sim.world.running == {VIP_A: {B}, VIP_B: {B}}
    assert both == 0.0
