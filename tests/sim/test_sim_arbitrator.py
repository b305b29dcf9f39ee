"""The external arbitrator (core/arbitration.py) with a simulated etcd (simetcd.py).

keepalive 0.5 s, deadtime 3 s (lease TTL 2 s by default), one-way delay 1/16 s,
etcd round trip 4 ms, request timeout 0.5 s; a start or stop takes 1/4 s.
alpha prefers VIP_A, beta VIP_B; auto_failback off.
"""

from __future__ import annotations

from simetcd import RTT, ArbSim, arbconfig, arbpair
from simnet import DELAY
from simowners import VIP_A, VIP_B, A, B

from hbmon.config.leasetiming import LeaseTiming
from hbmon.core.arbevents import (
    ArbiterReachability,
    ClaimKey,
    KeyConflict,
    LeaseChange,
    ReleaseKey,
    RevokeLease,
    UnarbitratedPeer,
)
from hbmon.core.events import (
    ControlOp,
    GroupState,
    GroupTransition,
    Handover,
    HandoverReady,
    ResourceLog,
    Scope,
    Shutdown,
    StartGroup,
    StopGroup,
)

DEADTIME = 3.0


class Watch:
    """Records, at every instant the sim stops, on which machines each group runs."""

    def __init__(self, sim: ArbSim) -> None:
        self.sim = sim
        self.max_owners = {VIP_A: 0, VIP_B: 0}
        self.samples: list[tuple[float, dict[str, frozenset[str]]]] = []

    def run(self, until: float, step: float = 0.01) -> None:
        t = self.sim.clock.now
        while t < until:
            t = min(until, t + step)
            self.sim.run_until(t)
            owners = {k: frozenset(self.sim.world.on(k)) for k in (VIP_A, VIP_B)}
            for k, on in owners.items():
                self.max_owners[k] = max(self.max_owners[k], len(on))
            self.samples.append((t, owners))


def settled(sim: ArbSim, until: float = 8.0) -> Watch:
    sim.start(A)
    sim.start(B)
    w = Watch(sim)
    w.run(until)
    assert sim.world.on(VIP_A) == {A}
    assert sim.world.on(VIP_B) == {B}
    w.samples.clear()  # from here on: what the test's faults do
    return w


def starts(sim: ArbSim, name: str, key: str) -> list[float]:
    return [t for t, e in sim.effects(name, StartGroup) if e.key == key]


def stops(sim: ArbSim, name: str, key: str) -> list[float]:
    return [t for t, e in sim.effects(name, StopGroup) if e.key == key]


def test_a_group_starts_only_after_its_key_is_won() -> None:
    sim = arbpair()
    w = settled(sim)
    for name, key in ((A, VIP_A), (B, VIP_B)):
        claims = [t for t, e in sim.effects(name, ClaimKey) if e.group == key]
        assert claims, name
        assert starts(sim, name, key)[0] >= claims[0] + RTT
    assert sim.etcd.holder(VIP_A, sim.clock.now) == A
    assert sim.etcd.holder(VIP_B, sim.clock.now) == B
    assert w.max_owners == {VIP_A: 1, VIP_B: 1}
    view = sim.nodes[A].snapshot(sim.clock.now).arbiter
    assert view is not None
    assert view.keys_held == 1
    assert view.reachable
    assert view.ttl_s == 2


def test_cut_between_the_nodes_moves_nothing() -> None:
    """Both reach etcd: each declares the other dead, neither wins the other's key."""
    sim = arbpair()
    w = settled(sim)
    sim.partition(A, B)
    w.run(8 + 15)
    sim.heal()
    w.run(8 + 15 + 10)
    assert w.max_owners == {VIP_A: 1, VIP_B: 1}
    assert all(s[1] == {VIP_A: {A}, VIP_B: {B}} for s in w.samples)
    assert starts(sim, A, VIP_B) == []
    assert starts(sim, B, VIP_A) == []
    conflicts = [e for _, e in sim.effects(A, KeyConflict)]
    assert conflicts == [KeyConflict(VIP_B, B)]  # logged once per episode...
    view = sim.nodes[A].snapshot(sim.clock.now).arbiter
    assert view is not None
    assert view.conflicts >= 15 / 0.5 - 8  # ...counted at every retry (about one a beat)


def test_owner_crash_fails_over_by_deadtime() -> None:
    sim = arbpair()
    w = settled(sim)
    sim.crash(B)
    crash = sim.clock.now
    w.run(crash + 8)
    taken = starts(sim, A, VIP_B)
    assert taken, "alpha never started beta's group"
    # beta's last status left at most a keepalive before the crash
    assert taken[0] - crash <= DEADTIME + 0.2
    assert w.max_owners[VIP_B] == 1
    assert sim.world.on(VIP_B) == {A}


def test_etcd_down_while_the_nodes_hear_each_other_moves_nothing() -> None:
    sim = arbpair()
    w = settled(sim)
    sim.etcd.down = True
    w.run(8 + 20)
    assert all(s[1] == {VIP_A: {A}, VIP_B: {B}} for s in w.samples)
    assert stops(sim, A, VIP_A) == []
    assert stops(sim, B, VIP_B) == []
    view = sim.nodes[A].snapshot(sim.clock.now).arbiter
    assert view is not None
    assert not view.reachable
    assert view.failsafe_groups == 1  # held on beta's word alone
    assert [e.reachable for _, e in sim.effects(A, ArbiterReachability)] == [True, False]
    # etcd back: the lease it forgot is replaced, the keys claimed again, nothing moved
    sim.etcd.down = False
    w.run(8 + 20 + 5)
    assert [e.lease is None for _, e in sim.effects(A, LeaseChange)] == [False, True, False]
    assert sim.etcd.holder(VIP_A, sim.clock.now) == A
    assert sim.etcd.holder(VIP_B, sim.clock.now) == B
    assert all(s[1] == {VIP_A: {A}, VIP_B: {B}} for s in w.samples)
    view = sim.nodes[A].snapshot(sim.clock.now).arbiter
    assert view is not None
    assert view.failsafe_groups == 0


def test_owner_cut_from_peer_and_etcd_releases_before_its_lease_ends() -> None:
    sim = arbpair()
    w = settled(sim)
    cut = sim.clock.now
    sim.partition(A, B)
    sim.cut_etcd.add(B)
    lease = next(lid for lid, _ in sim.etcd.leases.items() if sim.etcd.keys[VIP_B][2] == lid)
    renewed = sim.etcd.leases[lease].renewed_at
    expires = renewed + sim.etcd.leases[lease].ttl
    w.run(cut + 10)
    released = [t for t, e in sim.effects(B, GroupTransition)
                if e.key == VIP_B and e.new is GroupState.RELEASED]  # fmt: skip
    assert released, "beta kept its group"
    assert released[0] < expires  # down before etcd could end the lease
    taken = starts(sim, A, VIP_B)
    assert taken
    assert taken[0] > released[0]
    assert w.max_owners[VIP_B] == 1  # never two owners
    assert sim.world.on(VIP_B) == {A}


def test_etcd_lost_first_then_the_peer_still_releases_before_the_peer_takes_over() -> None:
    """The failsafe held beta's group; when alpha's word stops too, beta lets go before
    alpha can declare it dead (its lease is long gone by then)."""
    sim = arbpair()
    w = settled(sim)
    sim.cut_etcd.add(B)
    w.run(8 + 6)
    assert sim.world.on(VIP_B) == {B}  # on alpha's word
    sim.partition(A, B)
    w.run(8 + 6 + 10)
    assert w.max_owners[VIP_B] == 1
    assert sim.world.on(VIP_B) == {A}


def test_graceful_shutdown_hands_over_without_waiting_for_the_lease() -> None:
    sim = arbpair()
    w = settled(sim)
    sim.event(B, Shutdown())
    t0 = sim.clock.now
    w.run(t0 + 5)
    assert sim.effects(B, RevokeLease)
    assert [e.group for _, e in sim.effects(B, ReleaseKey)] == [VIP_B]
    taken = starts(sim, A, VIP_B)
    assert taken
    assert taken[0] - t0 < 1.5  # stop, release, a claim retried 0.1 s later at most
    assert w.max_owners[VIP_B] == 1


def test_a_restart_with_an_arbitrator_is_a_stop_not_a_handover() -> None:
    """The lease and its keys die with the process that holds them, so its successor
    could not show it holds the group: a restart (SIGQUIT) releases as a stop does."""
    sim = arbpair()
    w = settled(sim)
    sim.event(B, Handover())
    t0 = sim.clock.now
    w.run(t0 + 5)
    assert sim.effects(B, HandoverReady) == []
    warned = [e.text for _, e in sim.effects(B, ResourceLog) if "arbitrator" in e.text]
    assert warned == ["Restart with an arbitrator: giving up all HA resources (no handover)."]
    assert sim.effects(B, RevokeLease)
    taken = starts(sim, A, VIP_B)
    assert taken
    assert taken[0] - t0 < 1.5
    assert w.max_owners[VIP_B] == 1


def test_standby_moves_the_key_with_the_group() -> None:
    sim = arbpair()
    w = settled(sim)
    sim.request(B, ControlOp.STANDBY, Scope.ALL)
    w.run(8 + 6)
    assert sim.world.on(VIP_B) == {A}
    assert sim.etcd.holder(VIP_B, sim.clock.now) == A
    assert w.max_owners[VIP_B] == 1


def test_a_peer_without_the_arbitrator_is_named_and_never_covers_us() -> None:
    from simowners import rconfig

    sim = ArbSim({A: arbconfig(A), B: rconfig(B, keepalive_ms=500, deadtime_ms=3000,
                                              warntime_ms=2000, initdead_ms=6000)})  # fmt: skip
    w = settled(sim)
    assert [e for _, e in sim.effects(A, UnarbitratedPeer)] == [UnarbitratedPeer(B)]
    sim.cut_etcd.add(A)
    w.run(8 + 4)
    # no failsafe from a peer that does not arbitrate: alpha let its group go
    assert A not in sim.world.on(VIP_A)


def test_release_deadline_follows_the_timing_rule() -> None:
    t = LeaseTiming.of(arbconfig(A).timers, arbconfig(A).arbitrator)  # type: ignore[arg-type]
    assert t.ttl_s == 2
    assert t.hold_s(2) >= 3 * 0.5  # a cut from both: released on the lease's time
    assert t.failsafe_s() > DELAY
