"""Failed starts and stops: backoff, hand-over to the peer, no ping-pong (issue 4 §6)."""

from __future__ import annotations

import dataclasses
import itertools

from simnet import DELAY, Sim
from simowners import VIP_A, VIP_B, A, B, lines, rconfig, rpair

from hbmon.config.model import AutoFailback, Resource, ResourceGroup
from hbmon.core.events import (
    ControlOp,
    ControlReply,
    GroupOp,
    GroupState,
    OwnershipConflict,
    Scope,
    StartGroup,
    StopGroup,
    TakeoverComplete,
    TakeoverReason,
)

OP = 0.25


def starts(sim: Sim, name: str, key: str) -> list[float]:
    return [t for t, e in sim.effects(name, StartGroup) if e.key == key]


def group(sim: Sim, name: str, key: str):  # type: ignore[no-untyped-def]
    (g,) = [g for g in sim.nodes[name].snapshot(sim.clock.now).groups if g.key == key]
    return g


def test_failed_start_moves_the_group_once_and_never_back() -> None:
    sim = rpair()
    sim.world.fail.add((A, VIP_A, GroupOp.START))
    sim.start(A)
    sim.start(B)
    sim.run_until(120)
    failed_at = DELAY + OP
    assert starts(sim, A, VIP_A) == [DELAY]  # tried once; never again while beta has it
    assert (
        f"Giving up resource group {VIP_A}: start failed (exit 1); not tried here again for 10 s"
        in lines(sim, A)
    )
    # beta hears alpha's update one trip later, waits `settle` (2×keepalive), takes it
    seen = failed_at + DELAY
    assert sim.effects(B, OwnershipConflict) == [
        (seen + 2, OwnershipConflict(VIP_A, "none", f"nobody held it for 2 s; acquired by {B}"))
    ]
    assert sim.effects(B, TakeoverComplete)[-1] == (
        seen + 2 + OP,
        TakeoverComplete(TakeoverReason.RECOVERY, (VIP_A,), OP),
    )
    assert sim.holders(VIP_A) == {B}
    g = group(sim, A, VIP_A)
    assert (g.state, g.start_failures, g.holder) == (GroupState.FAILED, 1, B)
    snap = sim.nodes[B].snapshot(sim.clock.now)
    assert dict(snap.conflicts) == {"dual": 0, "none": 1}
    assert dict(snap.takeovers)[TakeoverReason.RECOVERY] == 1


def test_failback_skips_a_group_the_preferred_node_failed() -> None:
    timers = {"deadtime_ms": 4000, "warntime_ms": 2000, "initdead_ms": 8000}
    sim = Sim({n: rconfig(n, auto_failback=AutoFailback.ON, **timers) for n in (A, B)})
    sim.world.fail.add((A, VIP_A, GroupOp.START))
    sim.start(A)
    sim.start(B)
    sim.run_until(2.5)
    sim.partition(A, B)  # a 4.5 s cut: both declare the other dead, then it heals
    sim.run_until(7)
    sim.heal()
    sim.run_until(60)
    # the heal asks beta to fail back, but alpha is still backing off from VIP_A (to ~10.3 s)
    assert sim.holders(VIP_A) == {B}
    assert starts(sim, A, VIP_A) == [DELAY]
    assert sim.holders(VIP_B) == {B}


def test_both_failing_alternate_with_growing_backoff() -> None:
    sim = rpair()
    sim.world.fail |= {(A, VIP_A, GroupOp.START), (B, VIP_A, GroupOp.START)}
    sim.start(A)
    sim.start(B)
    sim.run_until(200)
    tries = sorted(
        [(t, A) for t in starts(sim, A, VIP_A)] + [(t, B) for t in starts(sim, B, VIP_A)]
    )
    assert [n for _, n in tries] == [A, B] * 5  # each waits out its backoff: they alternate
    # alpha again after its backoff (10, 20, 40, 80 s) + the failed start + `settle` (2 s)
    a = starts(sim, A, VIP_A)
    assert [y - x for x, y in itertools.pairwise(a)] == [OP + b + 2 for b in (10, 20, 40, 80)]


def test_failed_stop_counts_as_held_and_is_retried_with_backoff() -> None:
    sim = rpair()
    sim.world.fail.add((B, VIP_B, GroupOp.STOP))
    sim.start(A)
    sim.start(B)
    sim.run_until(10)
    rid = sim.request(B, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(12)
    ((_, reply),) = sim.effects(B, ControlReply)
    assert reply == ControlReply(
        rid, False, f"Standby [all] done, but these groups failed to stop here: {VIP_B}"
    )
    g = group(sim, B, VIP_B)
    assert (g.state, g.holder, g.stop_failures) == (GroupState.FAILED, B, 1)
    assert sim.nodes[B].snapshot(12).rsc_hold == "local"  # still counts as ours
    assert starts(sim, A, VIP_B) == []  # alpha never starts it while beta may still run it
    first_stop = sim.effects(B, StopGroup)[0][0]
    sim.run_until(first_stop + 31)
    stop_times = [t - first_stop for t, _ in sim.effects(B, StopGroup)]
    assert stop_times == [0, OP + 10, OP + 10 + OP + 20]  # 10 s, then 20 s after each failure
    assert [x.rsplit(" ", 3)[-2] for x in lines(sim, B) if "stop retried" in x] == [
        "10",
        "20",
        "40",
    ]
    sim.world.fail.clear()
    sim.run_until(120)
    g = group(sim, B, VIP_B)
    assert g.stop_failures == 3
    # released at last; nobody held it, so its preferred node took it again (recovery)
    assert sim.holders(VIP_B) == {B}
    assert sim.world.on(VIP_B) == {B}


def test_reconfigure_releases_a_removed_group_and_places_a_new_one() -> None:
    sim = rpair()
    sim.start(A)
    sim.start(B)
    sim.run_until(5)
    vip_c = ResourceGroup(A, (Resource("IPaddr", ("10.0.0.30",)),))
    for name in (A, B):
        new = dataclasses.replace(
            sim.configs[name], resources=(sim.configs[name].resources[1], vip_c)
        )
        sim.configs[name] = new
        sim._apply(name, sim.nodes[name].reconfigure(new, 5.0))
    sim.run_until(15)
    assert sim.effects(A, StopGroup) == [(5.0, StopGroup(VIP_A, "removed from configuration"))]
    assert sim.world.on(VIP_A) == set()
    keys = [g.key for g in sim.nodes[A].snapshot(15).groups]
    assert keys == [VIP_B, vip_c.key]
    assert sim.holders(vip_c.key) == {A}
    assert sim.holders(VIP_B) == {B}
