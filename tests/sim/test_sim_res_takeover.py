"""Ownership over the two-node sim: start-up, takeover on death and on shutdown, our shutdown.

Timers: keepalive 1 s, deadtime 10 s, initdead 20 s, one-way delay 1/16 s.
World: a start or stop takes 1/4 s, a probe 1/8 s. Groups: VIP_A (alpha's,
first in the file), VIP_B (beta's).
"""

from __future__ import annotations

import pytest
from simnet import DELAY, Sim
from simowners import VIP_A, VIP_B, A, B, line_times, lines, rconfig, rpair, sent_types

from hbmon.config.model import ADDRESS_PROBE_TIMEOUT_MS, EARLY_PROBE_MARGIN_MS, AutoFailback
from hbmon.core.events import (
    GroupState,
    GroupTransition,
    ProbeGroup,
    SendMessage,
    Shutdown,
    ShutdownComplete,
    StartGroup,
    StopGroup,
    TakeoverComplete,
    TakeoverReason,
)

OP = 0.25
PROBE = 0.125
# The early probe's head start: its window + margin (50 ms). The sim's round trip
# (1/8 s) sizes the window at its ceiling, the probe timeout (150 ms).
WINDOW = ADDRESS_PROBE_TIMEOUT_MS / 1000
EARLY_LEAD = WINDOW + EARLY_PROBE_MARGIN_MS / 1000


def settled(sim: Sim | None = None, until: float = 5.0) -> Sim:
    sim = sim or rpair()
    sim.start(A)
    sim.start(B)
    sim.run_until(until)
    return sim


# ---------------------------------------------------------------- start-up --
def test_both_start_each_takes_its_own_group() -> None:
    sim = settled()
    assert sim.holders(VIP_A) == {A}
    assert sim.holders(VIP_B) == {B}
    # comm-up at the first beat from the peer; its hbrsc says it holds nothing of ours
    assert sim.effects(A, StartGroup) == [(DELAY, StartGroup(VIP_A, TakeoverReason.STARTUP))]
    assert sim.effects(A, TakeoverComplete) == [
        (DELAY + OP, TakeoverComplete(TakeoverReason.STARTUP, (VIP_A,), OP, None))
    ]
    assert sent_types(sim, A) == [
        "starting",
        "resource/local",  # answer to beta's `starting` (isstable=0)
        "resource/local",  # stable
    ]
    (stable,) = [e.message for t, e in sim.effects(A, SendMessage) if t == DELAY + OP]
    assert stable.names()[:5] == ("t", "rsc_hold", "rtype", "isstable", "hbrsc")
    assert stable.get("isstable") == "1"
    assert "Initial resource acquisition complete (T_RESOURCES(us))" in lines(sim, A)
    snap = sim.nodes[A].snapshot(sim.clock.now)
    assert snap.rsc_hold == "local"
    assert snap.resources_stable
    assert {g.key: (g.holder, g.role, g.state) for g in snap.groups} == {
        VIP_A: (A, "local", GroupState.HELD),
        VIP_B: (B, "foreign", GroupState.RELEASED),
    }


def test_alone_at_comm_up_takes_everything_after_probing() -> None:
    sim = rpair()
    sim.start(A)
    sim.run_until(25)
    # initdead 20 s: beta never heard, comm-up at 20 → probe both, then start both
    assert [t for t, _ in sim.effects(A, ProbeGroup)] == [20.0, 20.0]
    assert sim.effects(A, TakeoverComplete) == [
        (20 + PROBE + OP, TakeoverComplete(TakeoverReason.STARTUP, (VIP_A,), PROBE + OP)),
        (20 + PROBE + OP, TakeoverComplete(TakeoverReason.PEER_DEAD, (VIP_B,), PROBE + OP, B)),
    ]
    assert "Initial resource acquisition complete (mach_down)" in lines(sim, A)
    assert sim.nodes[A].snapshot(25).rsc_hold == "all"


def test_nothing_resource_related_goes_out_before_comm_up() -> None:
    sim = rpair()
    sim.start(A)
    sim.run_until(19.9)
    assert sent_types(sim, A) == []


# ---------------------------------------------------------------- takeover --
def test_peer_death_takeover_with_exact_duration() -> None:
    sim = settled()
    sim.run_until(10.5)
    sim.crash(B)  # machine gone: its address with it
    sim.run_until(30)
    dead_at = 10 + DELAY + 10  # its last beat (sent at 10) + deadtime
    assert line_times(sim, A, "Resources being acquired from beta.") == [dead_at]
    # The split-brain probe ran in the last EARLY_LEAD of beta's silence, so the
    # start follows the dead declaration at once.
    assert sim.effects(A, ProbeGroup) == [(dead_at - EARLY_LEAD, ProbeGroup(VIP_B, WINDOW))]
    assert sim.effects(A, StartGroup)[-1] == (
        dead_at,
        StartGroup(VIP_B, TakeoverReason.PEER_DEAD),
    )
    assert sim.effects(A, TakeoverComplete)[-1] == (
        dead_at + OP,
        TakeoverComplete(TakeoverReason.PEER_DEAD, (VIP_B,), OP, B),
    )
    assert sent_types(sim, A, since=dead_at) == ["resource/foreign/mach_down", "resource/all"]
    snap = sim.nodes[A].snapshot(30)
    assert snap.rsc_hold == "all"
    assert dict(snap.takeovers)[TakeoverReason.PEER_DEAD] == 1
    assert snap.last_takeover is not None
    assert snap.last_takeover.duration_s == OP
    assert sim.world.on(VIP_B) == {A}


def test_an_early_probe_still_out_at_the_deadline_is_awaited_not_repeated() -> None:
    sim = settled()
    sim.world.probe_delay = EARLY_LEAD + 0.5  # a probe slower than its head start
    sim.run_until(10.5)
    sim.crash(B)
    sim.run_until(30)
    dead_at = 10 + DELAY + 10
    early = dead_at - EARLY_LEAD
    assert sim.effects(A, ProbeGroup) == [(early, ProbeGroup(VIP_B, WINDOW))]
    assert sim.effects(A, StartGroup)[-1] == (
        early + EARLY_LEAD + 0.5,
        StartGroup(VIP_B, TakeoverReason.PEER_DEAD),
    )
    assert sim.world.on(VIP_B) == {A}


def test_a_beat_after_the_early_probe_voids_it() -> None:
    """beta is silent long enough to be probed, then heard; when it later dies, a
    probe from the earlier silence proves nothing: the new silence is probed again."""
    extra: list[float | None] = [0.0]  # what beta's packets get: extra delay, or dropped

    def shape(src: str, dst: str, iface: str, msg: object) -> float | None:
        return extra[0] if src == B else 0.0

    sim = settled()
    sim.shaper = shape
    sim.run_until(10.5)
    extra[0] = None  # beta's beats sent at 11..18 are lost
    sim.run_until(18.5)
    extra[0] = 0.9  # the one sent at 19 arrives at 19.96: after the early probe, in time
    sim.run_until(19.5)
    extra[0] = 0.0
    sim.run_until(25.5)
    first = 10 + DELAY + 10 - EARLY_LEAD
    assert [t for t, _ in sim.effects(A, ProbeGroup)] == [first]
    assert [e for _, e in sim.effects(A, StartGroup) if e.key == VIP_B] == []  # heard in time
    sim.crash(B)
    sim.run_until(40)
    dead_at = 25 + DELAY + 10
    assert [t for t, _ in sim.effects(A, ProbeGroup)] == [first, dead_at - EARLY_LEAD]
    assert sim.effects(A, StartGroup)[-1] == (dead_at, StartGroup(VIP_B, TakeoverReason.PEER_DEAD))


def test_an_address_seen_in_use_by_the_early_probe_is_probed_again_at_the_deadline() -> None:
    sim = settled()
    sim.run_until(10.5)
    sim.kill(B)  # the agent dies; VIP_B still answers on beta's machine
    sim.run_until(20.0)  # the early probe (19.86 .. 19.99) heard VIP_B answer
    sim.world.on(VIP_B).clear()  # ... then its admin removed it, before the deadline
    sim.run_until(30)
    dead_at = 10 + DELAY + 10
    assert [t for t, _ in sim.effects(A, ProbeGroup)] == [dead_at - EARLY_LEAD, dead_at]
    assert sim.effects(A, StartGroup)[-1] == (
        dead_at + PROBE,
        StartGroup(VIP_B, TakeoverReason.PEER_DEAD),
    )
    assert sim.world.on(VIP_B) == {A}


def test_peer_shutdown_takeover_at_once() -> None:
    sim = settled()
    sim.run_until(10.5)
    sim.event(B, Shutdown())
    sim.run_until(30)
    # beta releases its group, then says so, then shutdone
    assert sim.effects(B, StopGroup) == [(10.5, StopGroup(VIP_B, "shutdown"))]
    assert sent_types(sim, B, since=10.5) == ["resource/none/shutdown", "shutdone"]
    (msg,) = [e.message for _, e in sim.effects(B, SendMessage) if e.message.get("info")]
    assert msg.names()[:6] == ("t", "rsc_hold", "rtype", "isstable", "info", "hbrsc")
    assert msg.get("isstable") == "0"
    assert sim.times(B, ShutdownComplete) == [10.5 + OP]
    # alpha takes over when the notice arrives, without probing
    notice = 10.5 + OP + DELAY
    assert line_times(sim, A, "Resources being acquired from beta.") == [notice]
    assert sim.effects(A, StartGroup)[-1] == (notice, StartGroup(VIP_B, TakeoverReason.SHUTDOWN))
    assert sim.effects(A, TakeoverComplete)[-1] == (
        notice + OP,
        TakeoverComplete(TakeoverReason.SHUTDOWN, (VIP_B,), OP, B),
    )
    assert not sim.effects(A, ProbeGroup)
    assert "Dead node beta gave up resources." in lines(sim, A)


def test_our_shutdown_releases_right_to_left_then_shutdone() -> None:
    sim = settled()
    sim.run_until(10.5)
    sim.crash(B)
    sim.run_until(25)  # alpha now holds both
    sim.event(A, Shutdown())
    sim.run_until(30)
    stops = [(t, e.key) for t, e in sim.effects(A, StopGroup)]
    assert stops == [(25, VIP_B), (25, VIP_A)]  # file order reversed
    assert lines(sim, A)[-2:] == ["Giving up all HA resources.", "All HA resources relinquished."]
    assert sent_types(sim, A, since=25) == ["resource/none/shutdown", "shutdone"]
    assert sim.times(A, ShutdownComplete) == [25 + OP]


def test_shutdown_with_nothing_held_is_immediate() -> None:
    sim = Sim({A: rconfig(A, groups=()), B: rconfig(B, groups=())})
    sim.start(A)
    sim.start(B)
    sim.run_until(5)
    sim.event(A, Shutdown())
    assert sim.times(A, ShutdownComplete) == [5.0]
    assert sent_types(sim, A, since=5) == ["resource/none/shutdown", "shutdone"]


def test_legacy_sends_no_nice_failback_messages() -> None:
    sim = rpair(auto_failback=AutoFailback.LEGACY)
    settled(sim)
    sim.event(A, Shutdown())
    sim.run_until(6)
    assert sent_types(sim, A) == ["shutdone"]
    # beta hears only the shutdone and takes over then; its last news (alpha's
    # status at 5 s) said alpha held VIP_A, so it probes first
    assert sim.effects(B, TakeoverComplete)[-1] == (
        5 + OP + DELAY + PROBE + OP,
        TakeoverComplete(TakeoverReason.SHUTDOWN, (VIP_A,), PROBE + OP, A),
    )
    assert sim.world.on(VIP_A) == {B}


# ------------------------------------------------------------ active at start --
def test_groups_found_running_are_released_before_we_announce() -> None:
    sim = rpair()
    sim.world.on(VIP_B).add(A)  # left behind by a killed agent
    sim.start(B)
    sim.start(A)
    sim.run_until(5)
    assert lines(sim, A)[0] == f"Resource {VIP_B} is active, and should not be!"
    assert sim.effects(A, StopGroup)[0] == (0.0, StopGroup(VIP_B, "verifyallidle"))
    # comm-up at 1/16 s, but `starting` waits for the stop (done at 1/4 s)
    starting = [t for t, e in sim.effects(A, SendMessage) if e.message.type == "starting"]
    assert starting == [OP]
    assert sim.world.on(VIP_B) == {B}
    assert sim.world.on(VIP_A) == {A}
    assert (0.0, GroupTransition(VIP_B, GroupState.HELD, GroupState.STOPPING, "verifyallidle")) in (
        sim.effects(A, GroupTransition)
    )


def test_at_fast_timers_the_early_probe_is_sized_to_the_link_and_over_by_the_deadline() -> None:
    """keepalive 20 ms / deadtime 200 ms on a 0.5 ms round trip: the probe lasts the
    30 ms floor, not the 150 ms timeout, and starts so that it is over (with the
    50 ms margin) when the silence reaches deadtime: the start follows the dead
    declaration at once."""
    timers = {"keepalive_ms": 20, "warntime_ms": 100, "deadtime_ms": 200, "initdead_ms": 1000}
    sim = Sim({A: rconfig(A, **timers), B: rconfig(B, **timers)}, delay=0.000244140625)  # type: ignore[arg-type]
    sim.world.probe_delay = 0.03  # the probe takes its whole window
    settled(sim, until=6.0)  # past the 5 s of a peer's startup dt (deadtime + 2 s)
    sim.crash(B)
    sim.run_until(7.0)
    (early,) = sim.effects(A, ProbeGroup)
    at, probe = early
    assert probe.window_s == 0.03
    (start,) = [t for t, e in sim.effects(A, StartGroup) if e.key == VIP_B]
    last_beat = start - 0.2  # the dead declaration, when the takeover starts
    assert at == pytest.approx(last_beat + 0.2 - 0.03 - 0.05)
    assert at + probe.window_s < start  # the probe was over before the deadline
    assert line_times(sim, A, "Resources being acquired from beta.") == [start]
