"""Two-node scenarios over the real wire bytes, asserting the exact time of every event.

Common setup: keepalive 1 s, warntime 5 s, deadtime 10 s, initdead 20 s, media
eth0 + eth1, one-way delay 1/16 s. Both nodes start at 0, so beta's status k
leaves at k s and reaches alpha at k + 1/16 s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from coretools import make_config
from simnet import DELAY, Sim

from hbmon.config.model import Config, PingNode
from hbmon.core.events import (
    BeatReceived,
    CommUp,
    DeathReason,
    LateBeat,
    LinkStatus,
    LinkTransition,
    LocalStatusChanged,
    NodeDead,
    NodeStatus,
    NodeTransition,
    PacketDropped,
    PacketsLost,
    PacketsMissing,
    PacketsReordered,
    PartitionHealed,
    PeerRestarted,
    PingResult,
    PingTransition,
    RttMeasured,
    SendMessage,
    Shutdown,
    ShutdownComplete,
    ShutdownNotice,
    Threshold,
    TransitionReason,
)
from hbmon.core.snapshot import Snapshot
from hbmon.errors import DropReason
from hbmon.wire.message import Message

A, B = "alpha", "beta"


def pair(alpha: Config | None = None, beta: Config | None = None) -> Sim:
    return Sim({A: alpha or make_config(A), B: beta or make_config(B)})


def both_started(sim: Sim | None = None) -> Sim:
    sim = sim or pair()
    sim.start(A)
    sim.start(B)
    return sim


def arrival(k: float) -> float:
    """When beta's status sent at k s reaches alpha."""
    return k + DELAY


def seq_sent_at(sim: Sim, name: str, t: float) -> int:
    (d,) = [d for d in sim.sent(name) if d.at == t]
    seq = d.message.get_hex("seq")
    assert seq is not None
    return seq


def link_times(sim: Sim, name: str, new: LinkStatus) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for t, e in sim.effects(name, LinkTransition):
        if e.new is new:
            out.setdefault(e.iface, []).append(t)
    return out


# --------------------------------------------------------------- dead peer --
def test_dead_exactly_at_last_beat_plus_deadtime() -> None:
    sim = both_started()
    sim.run_until(30.5)
    sim.kill(B)
    sim.run_until(60)
    assert sim.effects(A, NodeDead) == [
        (arrival(30) + 10, NodeDead(B, DeathReason.TIMEOUT, arrival(30)))
    ]
    assert sim.effects(A, NodeTransition)[-1] == (
        arrival(30) + 10,
        NodeTransition(B, NodeStatus.ACTIVE, NodeStatus.DEAD, TransitionReason.TIMEOUT),
    )
    assert link_times(sim, A, LinkStatus.DEAD) == {
        "eth0": [arrival(30) + 10],
        "eth1": [arrival(30) + 10],
    }
    assert sim.effects(A, LateBeat) == []
    assert sim.effects(A, PacketsLost) == []


def test_peer_advertised_dt_is_honoured_both_ways() -> None:
    short = make_config(B, deadtime_ms=6000, warntime_ms=3000, initdead_ms=12000)
    sim = both_started(pair(beta=short))
    sim.run_until(30.5)
    sim.kill(B)
    sim.run_until(60)
    assert sim.times(A, NodeDead) == [arrival(30) + 6]  # beta advertises dt=6 s

    sim = both_started(pair(beta=short))
    sim.run_until(30.5)
    sim.kill(A)
    sim.run_until(60)
    assert sim.times(B, NodeDead) == [arrival(30) + 10]  # alpha advertises dt=10 s


def test_startup_dt_is_deadtime_plus_2s_for_5s() -> None:
    sim = both_started()
    sim.run_until(2.5)
    sim.kill(B)
    sim.run_until(30)
    dts = [(d.at, d.message.get_hex("dt")) for d in sim.sent(B)]
    assert dts == [(0.0, 12000), (1.0, 12000), (2.0, 12000)]
    assert sim.times(A, NodeDead) == [arrival(2) + 12]
    sim = both_started()
    sim.run_until(7)
    assert [d.message.get_hex("dt") for d in sim.sent(A)] == [12000] * 5 + [10000] * 3


# ---------------------------------------------------------- init and comm-up --
def test_initdead_before_comm_up() -> None:
    sim = pair()
    sim.start(A)  # beta never comes
    sim.run_until(25)
    assert sim.effects(A, NodeDead) == [(20.0, NodeDead(B, DeathReason.INITDEAD, None))]
    assert sim.effects(A, NodeTransition) == [
        (20.0, NodeTransition(B, NodeStatus.INIT, NodeStatus.DEAD, TransitionReason.INITDEAD))
    ]
    assert sim.times(A, CommUp) == [20.0]
    assert sim.effects(A, LocalStatusChanged) == [
        (0.0, LocalStatusChanged(NodeStatus.UP)),
        (20.0, LocalStatusChanged(NodeStatus.ACTIVE)),
    ]
    sts = [(d.at, d.message.get("st")) for d in sim.sent(A)]
    assert sts[0] == (0.0, "init")
    assert {st for t, st in sts if 0 < t < 20} == {"up"}
    assert {st for t, st in sts if t >= 20} == {"active"}
    assert link_times(sim, A, LinkStatus.DEAD) == {}  # never up, so never a transition


def test_comm_up_when_the_peer_is_first_heard() -> None:
    sim = pair()
    sim.start(A)
    sim.run_until(3.5)
    sim.start(B)
    sim.run_until(10)
    assert sim.times(A, CommUp) == [3.5 + DELAY]
    assert sim.times(B, CommUp) == [4.0 + DELAY]  # alpha's next status
    sts = [(d.at, d.message.get("st")) for d in sim.sent(A)]
    assert sts[:5] == [(0.0, "init"), (1.0, "up"), (2.0, "up"), (3.0, "up"), (4.0, "active")]
    assert sim.effects(A, NodeTransition) == [
        (3.5 + DELAY, NodeTransition(B, NodeStatus.INIT, NodeStatus.UP, TransitionReason.HEARD)),
        (4.5 + DELAY, NodeTransition(B, NodeStatus.UP, NodeStatus.ACTIVE, TransitionReason.STATUS)),
    ]


def test_initdead_applies_to_peers_until_comm_up() -> None:
    """A ping node that never answers holds comm-up until initdead; until then a silent
    peer is judged by initdead, and at comm-up by its own dt (already expired)."""
    pn = (PingNode("10.9.9.9", ("10.9.9.9",)),)
    sim = both_started(pair(alpha=make_config(A, ping_nodes=pn)))
    sim.run_until(5.5)
    sim.kill(B)
    sim.run_until(30)
    assert sim.times(A, CommUp) == [20.0]
    assert sim.effects(A, NodeDead) == [(20.0, NodeDead(B, DeathReason.TIMEOUT, arrival(5)))]
    assert sim.effects(A, PingTransition) == [(20.0, PingTransition("10.9.9.9", NodeStatus.DEAD))]


# ------------------------------------------------------------------ late --
def test_late_beat_above_warntime_without_death() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.cut |= {(B, A, "eth0"), (B, A, "eth1")}
    sim.run_until(16.5)
    sim.heal()
    sim.run_until(30)
    assert sim.effects(A, LateBeat) == [(arrival(17), LateBeat(B, 7.0, Threshold.WARNTIME))]
    assert sim.effects(A, NodeDead) == []
    last, seq = seq_sent_at(sim, B, 10.0), seq_sent_at(sim, B, 17.0)
    assert sim.effects(A, PacketsMissing) == [(arrival(17), PacketsMissing(B, 6, last, seq))]
    assert sim.effects(A, PacketsLost) == [(arrival(17) + 2.0, PacketsLost(B, 6))]
    beats = [(t, e.interval_s) for t, e in sim.effects(A, BeatReceived) if t == arrival(17)]
    assert beats == [(arrival(17), 7.0)]
    peer = sim.nodes[A].snapshot(30).peer(B)
    assert peer is not None
    assert (peer.late_warntime, peer.late_deadtime, peer.lost_packets) == (1, 0, 6)


# ---------------------------------------------------------- restart / heal --
def test_peer_restart_within_deadtime() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.kill(B)
    sim.run_until(12.0)
    sim.start(B, generation=101)
    sim.run_until(30)
    assert sim.effects(A, PeerRestarted) == [(12.0 + DELAY, PeerRestarted(B, 100, 101))]
    assert sim.effects(A, NodeDead) == []
    assert sim.effects(A, PartitionHealed) == []
    assert sim.effects(A, NodeTransition)[-2:] == [
        (
            12.0 + DELAY,
            NodeTransition(B, NodeStatus.ACTIVE, NodeStatus.UP, TransitionReason.RESTARTED),
        ),
        # beta heard alpha's status of t=12 at 12 + DELAY: comm-up, so its status of 13 is active
        (
            13.0 + DELAY,
            NodeTransition(B, NodeStatus.UP, NodeStatus.ACTIVE, TransitionReason.STATUS),
        ),
    ]
    peer = sim.nodes[A].snapshot(30).peer(B)
    assert peer is not None
    assert (peer.generation, peer.restarts, peer.partition_heals) == (101, 1, 0)


def test_peer_restart_after_death_is_not_a_partition() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.kill(B)
    sim.run_until(25.0)
    sim.start(B, generation=101)
    sim.run_until(30)
    assert sim.times(A, NodeDead) == [arrival(10) + 10]
    assert sim.effects(A, PeerRestarted) == [(25.0 + DELAY, PeerRestarted(B, 100, 101))]
    assert sim.effects(A, PartitionHealed) == []
    assert (
        25.0 + DELAY,
        NodeTransition(B, NodeStatus.DEAD, NodeStatus.UP, TransitionReason.RESTARTED),
    ) in (sim.effects(A, NodeTransition))
    # The silence between the two incarnations is a restart, not a late heartbeat.
    assert sim.effects(A, LateBeat) == []


def test_partition_then_heal() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.partition(A, B)
    sim.run_until(30.5)
    sim.heal()
    sim.run_until(40)
    for me, other in ((A, B), (B, A)):
        assert sim.effects(me, NodeDead) == [
            (arrival(10) + 10, NodeDead(other, DeathReason.TIMEOUT, arrival(10)))
        ]
        assert sim.effects(me, PartitionHealed) == [(arrival(31), PartitionHealed(other))]
        assert (
            arrival(31),
            NodeTransition(other, NodeStatus.DEAD, NodeStatus.ACTIVE, TransitionReason.RETURNED),
        ) in sim.effects(me, NodeTransition)
        assert sim.effects(me, LateBeat) == [
            (arrival(31), LateBeat(other, 21.0, Threshold.DEADTIME))
        ]
        assert sim.effects(me, PeerRestarted) == []
        assert link_times(sim, me, LinkStatus.UP) == {
            "eth0": [arrival(0), arrival(31)],
            "eth1": [arrival(0), arrival(31)],
        }
        # 20 statuses, and heartbeat's `stonith result=n_stnth` sent at the dead declaration
        assert [c for _, c in sim.effects(me, PacketsMissing)] == [
            PacketsMissing(other, 21, 11, 33)
        ]
        assert sim.effects(me, PacketsLost) == [(arrival(31) + 2, PacketsLost(other, 21))]
        peer = sim.nodes[me].snapshot(40).peer(other)
        assert peer is not None
        assert peer.partition_heals == 1
        assert {(a, b, r): n for a, b, r, n in peer.transitions} == {
            (NodeStatus.INIT, NodeStatus.UP, TransitionReason.HEARD): 1,
            (NodeStatus.UP, NodeStatus.ACTIVE, TransitionReason.STATUS): 1,
            (NodeStatus.ACTIVE, NodeStatus.DEAD, TransitionReason.TIMEOUT): 1,
            (NodeStatus.DEAD, NodeStatus.ACTIVE, TransitionReason.RETURNED): 1,
        }


# ------------------------------------------------------------------ seqs --
def _shape_seq(seq: int, extra: float | None) -> Callable[[str, str, str, Message], float | None]:
    def shaper(src: str, dst: str, iface: str, m: Message) -> float | None:
        return extra if src == B and m.get_hex("seq") == seq else 0.0

    return shaper


def test_reordered_seq_is_not_loss() -> None:
    sim = both_started()
    sim.shaper = _shape_seq(6, 1.5)  # beta's status of t=5 arrives after that of t=6
    sim.run_until(20)
    assert sim.effects(A, PacketsMissing) == [(arrival(6), PacketsMissing(B, 1, 5, 7))]
    assert sim.effects(A, PacketsReordered) == [(arrival(5) + 1.5, PacketsReordered(B, 1))]
    assert sim.effects(A, PacketsLost) == []
    assert sim.effects(A, LateBeat) == []  # interval 2 s < warntime
    peer = sim.nodes[A].snapshot(20).peer(B)
    assert peer is not None
    assert (peer.reordered_packets, peer.lost_packets) == (1, 0)


def test_missing_seq_is_lost_after_grace() -> None:
    sim = both_started()
    sim.shaper = _shape_seq(6, None)  # dropped on both media
    sim.run_until(20)
    assert sim.effects(A, PacketsMissing) == [(arrival(6), PacketsMissing(B, 1, 5, 7))]
    assert sim.effects(A, PacketsLost) == [(arrival(6) + 2.0, PacketsLost(B, 1))]
    assert sim.effects(A, PacketsReordered) == []


def test_duplicates_over_two_media_refresh_the_second_link_only() -> None:
    sim = both_started()

    def slow_eth1(src: str, dst: str, iface: str, m: Message) -> float | None:
        return 0.25 if (src, iface) == (B, "eth1") else 0.0

    sim.shaper = slow_eth1
    sim.run_until(10.5)
    sim.kill(B)
    sim.run_until(40)
    assert {e.iface for _, e in sim.effects(A, BeatReceived)} == {"eth0"}
    assert sim.times(A, NodeDead) == [arrival(10) + 10]
    assert link_times(sim, A, LinkStatus.DEAD) == {
        "eth0": [arrival(10) + 10],
        "eth1": [arrival(10) + 0.25 + 10],
    }


def test_second_medium_carries_the_peer_when_the_first_fails() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.cut.add((B, A, "eth0"))
    sim.run_until(40)
    assert sim.effects(A, NodeDead) == []
    assert link_times(sim, A, LinkStatus.DEAD) == {"eth0": [arrival(10) + 10]}
    assert {e.iface for t, e in sim.effects(A, BeatReceived) if t > 11} == {"eth1"}


# --------------------------------------------------------------- replays --
def _snap_without_drops(sim: Sim, name: str) -> Snapshot:
    return dataclasses.replace(sim.nodes[name].snapshot(sim.clock.now), dropped=())


def _replays(sim: Sim) -> list[PacketDropped]:
    return [e for _, e in sim.effects(A, PacketDropped) if e.reason is DropReason.REPLAY]


def test_replayed_packets_are_dropped_without_state_change() -> None:
    sim = both_started()
    sim.run_until(10.3)
    captured = {d.message.get_hex("seq"): d.data for d in sim.sent(B)}
    before = _snap_without_drops(sim, A)
    sim.inject(A, "eth0", captured[11])  # the newest: same seq, same iface
    sim.inject(A, "eth1", captured[11])
    sim.inject(A, "eth0", captured[3])  # an old seq
    sim.run_until(10.3)
    assert len(_replays(sim)) == 3
    assert _snap_without_drops(sim, A) == before
    snap = sim.nodes[A].snapshot(10.3)
    assert ("eth0", "replay", 2) in snap.dropped
    assert ("eth1", "replay", 1) in snap.dropped


def test_replay_cannot_keep_a_dead_peer_alive() -> None:
    sim = both_started()
    sim.run_until(10.5)
    last = sim.sent(B)[-1].data
    sim.kill(B)
    for t in range(11, 40):
        sim.run_until(t)
        sim.inject(A, "eth0", last)
    sim.run_until(40)
    assert sim.times(A, NodeDead) == [arrival(10) + 10]
    assert sim.effects(A, PartitionHealed) == []
    assert len(_replays(sim)) == 29
    assert sim.nodes[A].snapshot(40).peer(B).status is NodeStatus.DEAD  # type: ignore[union-attr]


def test_old_generation_is_a_replay_attack() -> None:
    sim = both_started()
    sim.run_until(5.5)
    old = sim.sent(B)[-1].data
    sim.kill(B)
    sim.start(B, generation=101)
    sim.run_until(8.5)
    sim.inject(A, "eth0", old)
    sim.run_until(8.5)
    (drop,) = _replays(sim)
    assert drop.detail == "attempted replay attack [beta]? [gen = 100, curgen = 101]"
    assert drop.node == B


def test_tampered_and_unknown_are_dropped_by_reason() -> None:
    sim = both_started()
    sim.run_until(3.5)
    good = sim.sent(B)[-1].data
    sim.inject(A, "eth1", good.replace(b"st=active", b"st=dead!!"))
    gamma = Sim({"gamma": make_config("gamma", ("alpha", "beta", "gamma"))})
    gamma.start("gamma")
    sim.inject(A, "eth0", gamma.sent("gamma")[0].data)
    sim.run_until(3.5)
    drops = [(e.reason, e.iface, e.node) for _, e in sim.effects(A, PacketDropped)]
    assert drops == [
        (DropReason.AUTH_MISMATCH, "eth1", None),
        (DropReason.UNKNOWN_NODE, "eth0", "gamma"),
    ]


# -------------------------------------------------------------- shutdone --
def test_shutdone_peer_dead_at_once() -> None:
    sim = both_started()
    sim.run_until(10.5)
    sim.event(B, Shutdown())
    sim.run_until(40)
    assert sim.effects(A, ShutdownNotice) == [(10.5 + DELAY, ShutdownNotice(B))]
    assert sim.effects(A, NodeDead) == [
        (10.5 + DELAY, NodeDead(B, DeathReason.SHUTDOWN, arrival(10)))
    ]
    assert link_times(sim, A, LinkStatus.DEAD) == {"eth0": [20.5 + DELAY], "eth1": [20.5 + DELAY]}
    b_after = [type(e) for t, n, e in sim.log if n == B and t >= 10.5]
    assert b_after[:3] == [SendMessage, LocalStatusChanged, ShutdownComplete]
    assert SendMessage not in b_after[3:]  # nothing is sent after the shutdone
    assert sim.sent(B)[-1].message.type == "shutdone"


# ----------------------------------------------------------- ping nodes --
def test_ping_nodes_up_dead_and_group() -> None:
    pn = (
        PingNode("10.0.0.254", ("10.0.0.254",)),
        PingNode("gw", ("10.0.0.1", "10.0.0.2"), group=True),
        PingNode("10.0.0.99", ("10.0.0.99",)),
    )
    sim = both_started(pair(alpha=make_config(A, ping_nodes=pn, deadping_ms=5000)))
    for t in (1.0, 2.0, 3.0):
        sim.run_until(t)
        sim.event(A, PingResult("10.0.0.254", "10.0.0.254", 0.002))
        sim.event(A, PingResult("gw", "10.0.0.1", None))
        sim.event(A, PingResult("gw", "10.0.0.2", 0.003))
        sim.event(A, PingResult("10.0.0.99", "10.0.0.99", None))
    sim.run_until(4.0)
    snap = sim.nodes[A].snapshot(4.0)
    assert [p.status for p in snap.ping_nodes] == [
        NodeStatus.PING,
        NodeStatus.PING,
        NodeStatus.INIT,
    ]
    assert snap.reachable_ping_nodes == 2
    gw = snap.ping_nodes[1]
    assert [(a.address, a.replies, a.timeouts) for a in gw.addresses] == [
        ("10.0.0.1", 0, 3),
        ("10.0.0.2", 3, 0),
    ]
    sim.run_until(30)
    assert sim.effects(A, PingTransition) == [
        (1.0, PingTransition("10.0.0.254", NodeStatus.PING)),
        (1.0, PingTransition("gw", NodeStatus.PING)),
        (8.0, PingTransition("10.0.0.254", NodeStatus.DEAD)),
        (8.0, PingTransition("gw", NodeStatus.DEAD)),
        (20.0, PingTransition("10.0.0.99", NodeStatus.DEAD)),
    ]
    assert sim.times(A, CommUp) == [20.0]  # waited for the silent ping node


# ------------------------------------------------------------------ RTT --
@pytest.mark.parametrize(("there", "back"), [(DELAY, DELAY), (0.03125, 0.125)])
def test_rtt_from_echo_is_the_round_trip(there: float, back: float) -> None:
    sim = pair()
    sim.delay[(A, B)] = there
    sim.delay[(B, A)] = back
    sim.start(A)
    sim.start(B)
    sim.run_until(10)
    samples = sim.effects(A, RttMeasured)
    assert {e.iface for _, e in samples} == {"eth0", "eth1"}
    assert len(samples) >= 2 * 8
    for _, e in samples:
        assert e.node == B
        assert e.rtt_s == pytest.approx(there + back, abs=2e-6)
    first = samples[0][0]
    assert first == 1.0 + back  # beta's status of t=1 echoes alpha's seq 1
