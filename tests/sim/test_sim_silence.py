"""A silence is counted late the moment it reaches warntime (and deadtime), not on arrival.

Same setup as test_sim_membership: keepalive 1 s, warntime 5 s, deadtime 10 s,
initdead 20 s, two media, one-way delay 1/16 s; beta's status k reaches alpha at
k + 1/16 s. The `late_*` counters are what `hbmon_heartbeat_late_total` exports.
"""

from __future__ import annotations

from coretools import make_config, shutdone, status
from simnet import DELAY, Sim

from hbmon.core.events import (
    LateBeat,
    NodeDead,
    PeerSilent,
    Shutdown,
    Threshold,
)
from hbmon.core.membership import Membership
from hbmon.core.snapshot import PeerView

A, B = "alpha", "beta"
WARN, DEAD = 5.0, 10.0


def both_started() -> Sim:
    sim = Sim({A: make_config(A), B: make_config(B)})
    sim.start(A)
    sim.start(B)
    return sim


def arrival(k: float) -> float:
    return k + DELAY


def beta_seen_by_alpha(sim: Sim, at: float) -> PeerView:
    peer = sim.nodes[A].snapshot(at).peer(B)
    assert peer is not None
    return peer


def late(peer: PeerView) -> tuple[int, int]:
    return peer.late_warntime, peer.late_deadtime


def test_silence_counts_at_warntime_while_the_peer_is_still_silent() -> None:
    sim = both_started()
    sim.run_until(30.5)
    sim.kill(B)  # last status: sent at 30, heard at arrival(30)
    breach = arrival(30) + WARN
    sim.run_until(breach - 0.001)
    assert sim.effects(A, PeerSilent) == []
    assert late(beta_seen_by_alpha(sim, breach - 0.001)) == (0, 0)
    # The core asks for a timer at the breach itself: the count does not wait for a
    # scan, a beat or the death.
    assert sim.nodes[A].next_deadline() == breach
    sim.run_until(breach)
    assert sim.effects(A, PeerSilent) == [(breach, PeerSilent(B, WARN, Threshold.WARNTIME))]
    assert late(beta_seen_by_alpha(sim, breach)) == (1, 0)
    assert sim.effects(A, NodeDead) == []  # still 5 s before deadtime

    sim.run_until(60)
    death = arrival(30) + DEAD
    assert sim.effects(A, PeerSilent) == [
        (breach, PeerSilent(B, WARN, Threshold.WARNTIME)),
        (death, PeerSilent(B, DEAD, Threshold.DEADTIME)),
    ]
    assert sim.times(A, NodeDead) == [death]
    # One silence, however long: once per threshold.
    assert late(beta_seen_by_alpha(sim, 60)) == (1, 1)
    assert sim.effects(A, LateBeat) == []  # nothing arrived, nothing logged as a late beat


def test_a_short_silence_counts_once_and_the_late_beat_is_still_logged() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.cut |= {(B, A, "eth0"), (B, A, "eth1")}
    sim.run_until(16.5)
    sim.heal()  # beta's status of 17 arrives: a 7 s gap, between warntime and deadtime
    sim.run_until(30)
    assert sim.effects(A, PeerSilent) == [
        (arrival(10) + WARN, PeerSilent(B, WARN, Threshold.WARNTIME))
    ]
    # heartbeat's line on arrival, unchanged, and no second count for it.
    assert sim.effects(A, LateBeat) == [(arrival(17), LateBeat(B, 7.0, Threshold.WARNTIME))]
    assert late(beta_seen_by_alpha(sim, 30)) == (1, 0)


def test_every_silence_counts_and_normal_beats_never_do() -> None:
    sim = both_started()
    for start in (10.5, 20.5):
        sim.run_until(start)
        sim.cut |= {(B, A, "eth0"), (B, A, "eth1")}
        sim.run_until(start + 6)
        sim.heal()
    sim.run_until(40)
    assert sim.times(A, PeerSilent) == [arrival(10) + WARN, arrival(20) + WARN]
    assert late(beta_seen_by_alpha(sim, 40)) == (2, 0)
    alpha_seen_by_beta = sim.nodes[B].snapshot(40).peer(A)
    assert alpha_seen_by_beta is not None
    assert late(alpha_seen_by_beta) == (0, 0)  # alpha's beats kept reaching beta


def test_an_announced_shutdown_is_not_a_late_silence() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.event(B, Shutdown())
    sim.run_until(12.0)
    sim.kill(B)
    sim.run_until(40)
    assert sim.effects(A, PeerSilent) == []
    assert late(beta_seen_by_alpha(sim, 40)) == (0, 0)


def test_a_crash_and_restart_after_warntime_was_a_late_silence() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.kill(B)
    sim.run_until(17.0)
    sim.start(B, generation=101)
    sim.run_until(30)
    # Counted while it was silent (it had not said goodbye); the arrival of the new
    # incarnation is a restart, so heartbeat's late-beat line does not appear.
    assert sim.times(A, PeerSilent) == [arrival(10) + WARN]
    assert sim.effects(A, LateBeat) == []
    assert late(beta_seen_by_alpha(sim, 30)) == (1, 0)


# ------------------------------------------------- membership on its own --
def test_a_silence_whose_timer_did_not_run_counts_on_arrival_once() -> None:
    """A timer that fires late (loop lag) or a replayed capture: the gap is counted
    when the beat arrives, and the timer that runs afterwards adds nothing."""
    m = Membership(make_config(A), now=0.0)
    m.comm_up = True
    m.receive("eth0", status(B, 1), "10.0.0.2", now=1.0)
    assert m.next_deadline() == 1.0 + WARN
    receipt = m.receive("eth0", status(B, 2), "10.0.0.2", now=12.5)  # no expire() in between
    assert [e for e in receipt.effects if isinstance(e, LateBeat)] == [
        LateBeat(B, 11.5, Threshold.DEADTIME)
    ]
    (peer,) = m.views()[0]
    assert late(peer) == (1, 1)
    assert m.expire(12.6) == []
    (peer,) = m.views()[0]
    assert late(peer) == (1, 1)
    # The next silence starts at the new beat.
    assert m.next_deadline() == 12.5 + WARN


def test_warntime_from_a_reload_applies_to_the_silence_in_progress() -> None:
    m = Membership(make_config(A), now=0.0)
    m.comm_up = True
    m.receive("eth0", status(B, 1), "10.0.0.2", now=1.0)
    m.configure(make_config(A, warntime_ms=2000), now=2.0)
    assert m.next_deadline() == 3.0
    assert [e for e in m.expire(3.0) if isinstance(e, PeerSilent)] == [
        PeerSilent(B, 2.0, Threshold.WARNTIME)
    ]


def test_shutdone_then_silence_counts_nothing() -> None:
    m = Membership(make_config(A), now=0.0)
    m.comm_up = True
    m.receive("eth0", status(B, 1), "10.0.0.2", now=1.0)
    m.receive("eth0", shutdone(B, 2), "10.0.0.2", now=1.5)
    assert [e for e in m.expire(100.0) if isinstance(e, PeerSilent)] == []
    (peer,) = m.views()[0]
    assert late(peer) == (0, 0)
