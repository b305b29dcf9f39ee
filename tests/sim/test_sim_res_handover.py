"""A restart without a failover (core/handover.py) over the two-node sim.

Timers: keepalive 1 s, deadtime 10 s, warntime 5 s, initdead 20 s, one-way delay
1/16 s; handover window 30 s (the default, heartbeat's +30 s). World: a start
or stop takes 1/4 s, a probe 1/8 s, saving a handover 1/16 s. alpha holds VIP_A,
beta VIP_B.
"""

from __future__ import annotations

from simnet import DELAY, Sim
from simowners import VIP_A, VIP_B, A, B, lines, rpair

from hbmon.config.model import HANDOVER_WINDOW_MS, AutoFailback
from hbmon.core.events import (
    GroupTransition,
    Handover,
    HandoverComplete,
    HandoverReady,
    KeepGroup,
    NodeDead,
    PeerHandover,
    PeerSilent,
    ProbeGroup,
    Scope,
    SendMessage,
    Shutdown,
    ShutdownComplete,
    StartGroup,
    StopGroup,
    TakeoverComplete,
    TakeoverReason,
)
from hbmon.wire.builders import HANDOVER_FIELD

WINDOW = HANDOVER_WINDOW_MS / 1000
DEADTIME = 10.0
SAVE = 0.0625
OP = 0.25
PROBE = 0.125


def settled(**kw: object) -> Sim:
    sim = rpair(**kw)
    sim.start(A)
    sim.start(B)
    sim.run_until(10)
    assert sim.holders(VIP_A) == {A}
    assert sim.holders(VIP_B) == {B}
    return sim


def owners(sim: Sim, key: str, until: float, step: float = 0.0625) -> list[set[str]]:
    """Where `key` really runs at each instant up to `until` (the machines, not the agents)."""
    seen = []
    while sim.clock.now < until:
        sim.run_until(sim.clock.now + step)
        seen.append(set(sim.world.on(key)))
    return seen


def test_a_restart_keeps_the_groups_and_the_peer_takes_nothing() -> None:
    sim = settled()
    sim.event(A, Handover())
    sim.run_until(10 + SAVE)
    ready = [e for _, e in sim.effects(A, HandoverReady)]
    assert ready == [HandoverReady((VIP_A,), Scope.LOCAL, WINDOW)]
    # The restart notice: dt stretched by the window, sent twice, then the process ends.
    notices = [e.message for t, e in sim.effects(A, SendMessage) if e.message.get(HANDOVER_FIELD)]
    assert len(notices) == 2
    assert {m.get_hex("dt") for m in notices} == {int((DEADTIME + WINDOW) * 1000)}
    assert {m.get(HANDOVER_FIELD) for m in notices} == {str(HANDOVER_WINDOW_MS)}
    assert sim.effects(A, HandoverComplete) == [(10 + SAVE, HandoverComplete((VIP_A,), WINDOW))]
    assert A not in sim.nodes
    # The next process comes 15 s later: longer than deadtime, shorter than the window.
    seen = owners(sim, VIP_A, 25)
    sim.resume(A, generation=101)
    seen += owners(sim, VIP_A, 60)
    assert all(on == {A} for on in seen)  # the address never moved, never doubled
    assert sim.holders(VIP_A) == {A}
    assert sim.holders(VIP_B) == {B}
    # The peer: told, waited, took nothing, counted nothing late.
    (peer_notice,) = [e for _, e in sim.effects(B, PeerHandover)]
    assert peer_notice == PeerHandover(A, WINDOW, DEADTIME + WINDOW)
    assert sim.effects(B, NodeDead) == []
    assert sim.effects(B, PeerSilent) == []
    assert [t for t, e in sim.effects(B, ProbeGroup) if t > 10] == []
    assert [e for t, e in sim.effects(B, StartGroup) if t > 10] == []
    assert f"Node {A} restarted holding [{VIP_A}]: left with it." in lines(sim, B)
    peer = sim.nodes[B].snapshot(sim.clock.now).peer(A)
    assert peer is not None
    assert (peer.handovers, peer.restarts, peer.late_warntime) == (1, 1, 0)
    # The new process: adopted without running a start, and disarmed the expiry.
    assert [e for _, e in sim.effects(A, StopGroup)] == []
    assert [(t, e.key) for t, e in sim.effects(A, StartGroup) if t > 10] == []
    assert [(t, e.key) for t, e in sim.effects(A, KeepGroup)] == [(25.0, VIP_A)]
    assert sim.world.expiry == {}
    view = sim.nodes[A].snapshot(sim.clock.now).handover
    assert view is not None
    assert (view.from_generation, view.kept, view.restarted) == (100, (VIP_A,), ())
    assert view.gap_s == 15.0  # from the record's stamp (taken before the save) to now
    assert f"Resource {VIP_A} is active, and should not be!" not in lines(sim, A)
    assert "restart: resuming from generation 100 (handed over 15000 ms ago)" in lines(sim, A)
    assert sim.effects(A, TakeoverComplete) == [
        (DELAY + OP, TakeoverComplete(TakeoverReason.STARTUP, (VIP_A,), OP, None))
    ]  # only the first start's


def test_a_restart_that_never_comes_back_fails_over_after_the_window() -> None:
    """The addresses expire after the window (the kernel removes them), the peer's
    stretched dead interval ends after that, and it takes over as from a dead node."""
    sim = settled()
    sim.event(A, Handover())
    seen = owners(sim, VIP_A, 60)
    notice_at = 10 + SAVE + DELAY  # the last status the peer heard
    (dead_at,) = sim.times(B, NodeDead)
    assert dead_at == notice_at + DEADTIME + WINDOW
    taken = [e for t, e in sim.effects(B, TakeoverComplete) if t > 10]
    assert [e.keys for e in taken] == [(VIP_A,)]
    assert taken[0].reason is TakeoverReason.PEER_DEAD
    # Nobody held VIP_A between its expiry and the takeover; never two holders.
    assert all(len(on) <= 1 for on in seen)
    first_b = min(i for i, on in enumerate(seen) if on == {B})
    assert 10 + (first_b + 1) * 0.0625 <= dead_at + PROBE + OP + 0.0625
    assert sim.holders(VIP_A) == {B}


def test_a_handover_waits_for_a_group_being_started() -> None:
    sim = rpair()
    sim.start(A)
    sim.start(B)
    sim.run_until(DELAY)  # comm-up: alpha starts VIP_A now, for OP seconds
    assert [e.key for _, e in sim.effects(A, StartGroup)] == [VIP_A]
    sim.event(A, Handover())
    assert "Handover delayed until current resource activity finishes." in lines(sim, A)
    sim.run_until(5)
    (ready_at,) = sim.times(A, HandoverReady)
    assert ready_at == DELAY + OP  # the moment the start finished
    assert [e.keys for _, e in sim.effects(A, HandoverReady)] == [(VIP_A,)]


def test_a_stop_while_handing_over_releases_after_all() -> None:
    sim = settled()
    sim.event(A, Handover())
    sim.event(A, Shutdown())  # before the driver saved the handover
    sim.run_until(12)
    assert sim.effects(A, HandoverComplete) == []
    assert [t for t, _ in sim.effects(A, ShutdownComplete)] != []
    assert sim.world.on(VIP_A) == {B}  # the peer took it at the shutdown notice


def test_a_handover_that_cannot_be_saved_releases_the_groups() -> None:
    sim = settled()
    sim.world.refuse_save.add(A)
    sim.event(A, Handover())
    sim.run_until(12)
    assert "Handover failed: cannot write the record; giving up all HA resources instead." in (
        lines(sim, A)
    )
    assert [e.key for _, e in sim.effects(A, StopGroup)] == [VIP_A]
    assert sim.effects(A, HandoverComplete) == []
    assert len(sim.effects(A, ShutdownComplete)) == 1
    assert sim.world.on(VIP_A) == {B}
    assert sim.world.expiry == {}


def test_a_group_partly_stopped_meanwhile_is_started_again_not_released() -> None:
    """The new process finds the address up but another resource stopped (say,
    KillMode=mixed killed its daemon): it starts the group again (starts are
    idempotent) and keeps it; the address stays up throughout."""
    sim = settled()
    sim.event(A, Handover())
    sim.run_until(12)
    sim.resume(A, generation=101, partly=frozenset({VIP_A}))
    seen = owners(sim, VIP_A, 20)
    assert all(on == {A} for on in seen)
    starts = [(t, e.key, e.reason) for t, e in sim.effects(A, StartGroup) if t >= 12]
    assert starts == [(12.0, VIP_A, TakeoverReason.HANDOVER)]
    assert [e for _, e in sim.effects(A, StopGroup)] == []
    assert sim.holders(VIP_A) == {A}
    moved = [(e.old.value, e.new.value) for t, e in sim.effects(A, GroupTransition) if t >= 12]
    assert moved == [("released", "starting"), ("starting", "held")]
    text = f"restart: resource group {VIP_A} is partly stopped: starting it again"
    assert text in lines(sim, A)
    view = sim.nodes[A].snapshot(sim.clock.now).handover
    assert view is not None
    assert (view.kept, view.restarted) == ((), (VIP_A,))
    assert [e for t, e in sim.effects(B, StartGroup) if t > 10] == []
    assert [e for t, e in sim.effects(B, ProbeGroup) if t > 10] == []


def test_an_expired_record_is_not_resumed() -> None:
    """A next process later than the window finds the record stale and the address
    gone: an ordinary start (the peer has taken the group meanwhile)."""
    sim = settled(auto_failback=AutoFailback.OFF)
    sim.event(A, Handover())
    sim.run_until(10 + WINDOW + DEADTIME + 5)
    assert sim.holders(VIP_A) == {B}
    sim.resume(A, generation=101)
    sim.run_until(sim.clock.now + 20)
    assert sim.effects(A, KeepGroup) == []
    assert sim.nodes[A].snapshot(sim.clock.now).handover is None
    assert sim.world.on(VIP_A) == {B}
    assert sim.world.on(VIP_B) == {B}


def test_a_restart_without_a_handover_releases_first_as_before() -> None:
    """kill -9 (or the watchdog) and a start within deadtime: no record, so the new
    process releases what it finds (verifyallidle) and the groups are placed as at
    any start. The peer's takeover, held back while the address answered, is
    dropped once the restarted node reports holding the group again."""
    sim = settled(auto_failback=AutoFailback.OFF)
    sim.run_until(10.5)
    sim.kill(A)
    sim.run_until(12)
    sim.start(A, generation=101)
    seen = owners(sim, VIP_A, 30)
    assert f"Resource {VIP_A} is active, and should not be!" in lines(sim, A)
    assert [e.key for _, e in sim.effects(A, StopGroup)] == [VIP_A]
    assert not [t for t in lines(sim, B) if "restarted holding" in t]
    assert sim.effects(B, PeerHandover) == []
    assert f"Takeover of {VIP_A} cancelled: {A} holds it." in lines(sim, B)
    assert all(len(on) <= 1 for on in seen)
    assert sim.world.on(VIP_A) == {A}
    probes = sim.times(B, ProbeGroup)
    sim.run_until(60)
    assert sim.times(B, ProbeGroup) == probes  # no more probing for a held group
