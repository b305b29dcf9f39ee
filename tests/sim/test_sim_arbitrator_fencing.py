"""The arbitrator and fencing together, on the fake clock: the key first, then the reset.

A node that must reset a dead peer before taking its groups, and must hold each
group's key in etcd before starting it, acquires the groups at once (so their
keys are claimed), resets the peer only once etcd gave it one of those keys,
and starts them only after the reset (docs/fencing.md, "With an arbitrator").

Sim as in test_sim_arbitrator.py (keepalive 0.5 s, deadtime 3 s, lease TTL 2 s,
etcd round trip 4 ms) with the power switch of test_sim_fencing.py (a reset takes
1 s; the target machine is off when it answers). alpha is listed first: its
fencing delay is 0, beta's FENCE_DELAY_MS.
"""

from __future__ import annotations

import dataclasses

from simetcd import ArbSim, arbconfig
from simowners import VIP_A, VIP_B, A, B
from test_sim_arbitrator import DEADTIME, settled, starts

from hbmon.config.model import Config, FenceDevice, FenceKind
from hbmon.core.arbevents import KeyChange
from hbmon.core.events import FenceNode
from hbmon.core.fencing import FenceState

RESET = 1.0
SWITCH = FenceDevice(FenceKind.STONITH, "external/lab", params="lab solr1=ns1 solr2=ns2")


def fenced_config(node: str) -> Config:
    return dataclasses.replace(arbconfig(node), fencing=(SWITCH,))


def fenced_pair() -> ArbSim:
    return ArbSim({A: fenced_config(A), B: fenced_config(B)})


def fence_state(sim: ArbSim, name: str, peer: str) -> FenceState:
    views = sim.nodes[name].snapshot(sim.clock.now).fencing
    return next(v.state for v in views if v.node == peer)


def key_won(sim: ArbSim, name: str, key: str) -> list[float]:
    return [t for t, e in sim.effects(name, KeyChange) if e.group == key and e.held]


def test_a_cut_between_nodes_that_both_reach_etcd_shoots_nobody() -> None:
    """Fence-first would have alpha shoot beta at the dead declaration (beta holds a
    group, alpha's delay is 0): a healthy node lost, its group down until its lease
    ran out. Key-first: neither wins the other's key, so neither resets."""
    sim = fenced_pair()
    w = settled(sim)
    cut = sim.clock.now
    sim.partition(A, B)
    w.run(cut + 15)
    assert fence_state(sim, A, B) is FenceState.AWAITING_KEY
    assert fence_state(sim, B, A) is FenceState.AWAITING_KEY
    sim.heal()
    w.run(cut + 15 + 10)
    assert sim.effects(A, FenceNode) == []
    assert sim.effects(B, FenceNode) == []
    assert sim.world.fenced == []
    assert all(s[1] == {VIP_A: {A}, VIP_B: {B}} for s in w.samples)
    assert starts(sim, A, VIP_B) == []
    assert starts(sim, B, VIP_A) == []
    # heard again: the resets that waited for a key are given up, the groups unwanted
    assert fence_state(sim, A, B) is FenceState.IDLE
    assert fence_state(sim, B, A) is FenceState.IDLE
    assert sim.etcd.holder(VIP_B, sim.clock.now) == B


def test_a_hung_owner_loses_its_key_then_is_reset_then_its_group_starts() -> None:
    """beta's agent freezes with its address up: its lease lapses, alpha wins the key,
    resets beta, and only then starts the group; never two owners."""
    sim = fenced_pair()
    w = settled(sim)
    frozen = sim.clock.now
    sim.freeze(B)
    w.run(frozen + 10)
    won = key_won(sim, A, VIP_B)
    resets = sim.effects(A, FenceNode)
    started = starts(sim, A, VIP_B)
    assert won
    assert resets
    assert started
    assert [e for _, e in resets] == [FenceNode(B, 1)]
    assert won[0] <= resets[0][0]  # the key first...
    assert started[0] >= resets[0][0] + RESET  # ...then the reset, then the start
    assert sim.world.fenced == [(A, B)]
    assert w.max_owners[VIP_B] == 1
    assert sim.world.on(VIP_B) == {A}
    # beta's last beat left at most a keepalive before the freeze; its key is gone
    # by its dead declaration (TTL + etcd's scan <= deadtime): the reset adds its time
    assert started[0] - frozen <= DEADTIME + RESET + 0.2


def test_etcd_down_when_the_owner_dies_nobody_is_shot_until_etcd_decides() -> None:
    sim = fenced_pair()
    w = settled(sim)
    sim.etcd.down = True
    sim.crash(B)
    crashed = sim.clock.now
    w.run(crashed + 15)
    assert fence_state(sim, A, B) is FenceState.AWAITING_KEY
    assert sim.effects(A, FenceNode) == []
    assert starts(sim, A, VIP_B) == []
    sim.etcd.down = False  # beta's lease is long over: its key is free
    back = sim.clock.now
    w.run(back + 5)
    won, resets = key_won(sim, A, VIP_B), sim.effects(A, FenceNode)
    started = starts(sim, A, VIP_B)
    assert won
    assert resets
    assert started
    assert back <= won[0] <= resets[0][0] < started[0]
    assert sim.world.on(VIP_B) == {A}
    assert w.max_owners[VIP_B] == 1


def test_a_failed_reset_keeps_the_group_stopped_though_its_key_is_ours() -> None:
    sim = fenced_pair()
    w = settled(sim)
    sim.world.fence_fail.add(B)
    sim.freeze(B)
    frozen = sim.clock.now
    w.run(frozen + 20)
    assert key_won(sim, A, VIP_B)
    assert len(sim.effects(A, FenceNode)) >= 2  # retried
    assert fence_state(sim, A, B) is FenceState.BACKOFF
    assert starts(sim, A, VIP_B) == []  # never without a reset
    assert sim.world.on(VIP_B) == {B}  # the hung machine's address, alone
    assert w.max_owners[VIP_B] == 1
