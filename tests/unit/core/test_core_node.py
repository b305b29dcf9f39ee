"""Node: receive path, drops, seq verdicts and snapshots, driven event by event."""

from __future__ import annotations

import dataclasses

import pytest
from coretools import UUIDS, WALL_EPOCH, make_config, of_type, other, shutdone, status

from hbmon.config.model import STARTUP_DT_EXTRA_MS, PingNode
from hbmon.core.events import (
    BeatReceived,
    CommUp,
    DeathReason,
    LinkStatus,
    LinkTransition,
    LoadAverage,
    LocalStatusChanged,
    NodeDead,
    NodeStatus,
    NodeTransition,
    PacketDropped,
    PacketIn,
    PacketRejected,
    PacketsLost,
    PacketsMissing,
    PacketsReordered,
    PeerRestarted,
    SendMessage,
    Shutdown,
    ShutdownComplete,
    ShutdownNotice,
    TransitionReason,
)
from hbmon.core.node import Node
from hbmon.core.snapshot import Snapshot
from hbmon.errors import DropReason
from hbmon.wire.builders import EchoEntry
from hbmon.wire.message import Message

GEN = 42


def started(now: float = 0.0, **kw: object) -> tuple[Node, list[object]]:
    node = Node(
        make_config(**kw),  # type: ignore[arg-type]
        generation=GEN,
        uuid=UUIDS["alpha"],
        now=now,
        wall_epoch=WALL_EPOCH,
    )
    return node, list(node.start(now))


def pkt(msg: Message, iface: str = "eth0") -> PacketIn:
    return PacketIn(iface, msg, source="10.0.0.2")


def sent(effects: list[object]) -> list[Message]:
    return [e.message for e in effects if isinstance(e, SendMessage)]


def without_dropped(s: Snapshot) -> Snapshot:
    return dataclasses.replace(s, dropped=())


def drops(s: Snapshot, iface: str, reason: DropReason) -> int:
    return next(n for i, r, n in s.dropped if i == iface and r == reason.value)


# ------------------------------------------------------------------ sending --
def test_start_sends_init_status_with_heartbeat_fields() -> None:
    node, effects = started(5.0)
    assert effects[0] == LocalStatusChanged(NodeStatus.UP)
    (msg,) = sent(effects)
    assert msg.names() == (
        "t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld", "hbecho",
        "hbping", "hbrsc", "ttl",
    )  # fmt: skip
    assert msg.get("hbping") == "0/0"
    assert msg.get("hbrsc") == "0"  # not stable (before comm-up), no groups
    assert msg.get("st") == "init"
    assert msg.get_hex("dt") == 10000 + STARTUP_DT_EXTRA_MS
    assert msg.get_hex("seq") == 1
    assert msg.get_hex("hg") == GEN
    assert msg.get_hex("ts") == int(5.0 + WALL_EPOCH)
    assert msg.get("ld") == "n/a"
    assert msg.get("ttl") == "3"
    assert msg.get_bytes("srcuuid") == UUIDS["alpha"]
    assert node.next_deadline() == 6.0


def test_status_schedule_is_fixed_rate_and_realigns_when_late() -> None:
    node, _ = started(0.0)
    assert sent(node.on_timer(1.3))
    assert node.next_deadline() == 2.0
    assert sent(node.on_timer(2.0))
    assert len(sent(node.on_timer(5.7))) == 1  # 2.7 periods late: one status, re-aligned
    assert node.next_deadline() == 6.0
    assert sent(node.on_timer(5.9)) == []  # early call: nothing
    seqs = [m.get_hex("seq") for m in sent(node.on_timer(6.0))]
    assert seqs == [5]


def test_status_fields_follow_load_and_startup_dt() -> None:
    node, _ = started(0.0)
    node.handle(LoadAverage("0.12 0.10 0.05 1/123 4567\n"), 0.5)
    (m1,) = sent(node.on_timer(1.0))
    assert m1.get("st") == "up"
    assert m1.get("ld") == "0.12 0.10 0.05 1/123 4567"
    assert m1.get_hex("dt") == 12000
    for t in (2.0, 3.0, 4.0):
        node.on_timer(t)
    (m5,) = sent(node.on_timer(5.0))
    assert m5.get_hex("dt") == 10000


# ---------------------------------------------------------------- receiving --
def test_first_status_from_peer_brings_it_up_and_comm_up() -> None:
    node, _ = started(0.0)
    effects = node.handle(pkt(status(st="init", seq=1)), 0.25)
    assert effects == [
        LinkTransition("beta", "eth0", LinkStatus.UP),
        NodeTransition("beta", NodeStatus.INIT, NodeStatus.UP, TransitionReason.HEARD),
        BeatReceived("beta", "eth0", None, 1),
        CommUp(),
        LocalStatusChanged(NodeStatus.ACTIVE),
    ]
    (m,) = sent(node.on_timer(1.0))
    assert m.get("st") == "active"
    snap = node.snapshot(1.0)
    assert snap.comm_up
    assert snap.local_status is NodeStatus.ACTIVE
    peer = snap.peer("beta")
    assert peer is not None
    assert peer.dead_interval_s == 10.0


def test_own_loopback_is_ignored_silently() -> None:
    node, _ = started()
    before = node.snapshot(0.5)
    assert node.handle(pkt(status(src="alpha", seq=9)), 0.5) == []
    assert node.snapshot(0.5) == before


def test_unknown_node_and_malformed_are_dropped_and_counted() -> None:
    node, _ = started()
    (d,) = node.handle(pkt(status(src="gamma")), 0.5)
    assert isinstance(d, PacketDropped)
    assert (d.reason, d.node, d.iface) == (DropReason.UNKNOWN_NODE, "gamma", "eth0")
    assert "bad node [gamma]" in d.detail
    (m,) = node.handle(pkt(Message.build(("t", "status"))), 0.5)
    assert isinstance(m, PacketDropped)
    assert m.reason is DropReason.MALFORMED
    (noseq,) = node.handle(pkt(other("resource", seq=None)), 0.5)
    assert isinstance(noseq, PacketDropped)
    assert noseq.reason is DropReason.MALFORMED
    node.handle(PacketRejected("eth1", DropReason.AUTH_MISMATCH, "10.9.9.9"), 0.6)
    snap = node.snapshot(0.6)
    assert drops(snap, "eth0", DropReason.UNKNOWN_NODE) == 1
    assert drops(snap, "eth0", DropReason.MALFORMED) == 2
    assert drops(snap, "eth1", DropReason.AUTH_MISMATCH) == 1
    assert snap.peer("beta").status is NodeStatus.INIT  # type: ignore[union-attr]


def test_dropped_has_every_pair_at_zero_from_start() -> None:
    node, _ = started()
    snap = node.snapshot(0.0)
    assert {(i, r) for i, r, _ in snap.dropped} == {
        (i, r.value) for i in ("eth0", "eth1") for r in DropReason
    }
    assert all(n == 0 for _, _, n in snap.dropped)


def test_other_types_refresh_link_and_count_seq_but_not_liveness() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=1)), 0.5)
    effects = node.handle(pkt(other("resource", seq=2), iface="eth1"), 0.7)
    assert effects == [LinkTransition("beta", "eth1", LinkStatus.UP)]
    peer = node.snapshot(0.7).peer("beta")
    assert peer is not None
    assert peer.last_seq == 2
    assert peer.last_heard_at == 0.5
    # NS_ messages carry no seq: accepted, ignored, refresh nothing.
    assert node.handle(pkt(other("NS_ackmsg", seq=None), iface="eth1"), 0.8) == []


def test_gap_then_reordered_then_lost_after_grace() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=1)), 0.5)
    e = node.handle(pkt(status(seq=5)), 1.5)
    assert of_type(e, PacketsMissing) == [PacketsMissing("beta", 3, 1, 5)]
    e = node.handle(pkt(status(seq=3)), 1.6)
    assert of_type(e, PacketsReordered) == [PacketsReordered("beta", 1)]
    assert of_type(e, BeatReceived) == []  # an old status: no beat, no liveness
    grace = 2.0  # max(2 × keepalive, max_rexmit_delay)
    assert node.next_deadline() == 2.0  # the next status comes first
    node.on_timer(2.0)
    node.on_timer(3.0)
    assert node.next_deadline() == 1.5 + grace
    e = node.on_timer(1.5 + grace)
    assert of_type(e, PacketsLost) == [PacketsLost("beta", 2)]
    peer = node.snapshot(4.0).peer("beta")
    assert peer is not None
    assert (peer.lost_packets, peer.reordered_packets, peer.last_seq) == (2, 1, 5)


def test_huge_gap_resets_tracking_and_counts_loss() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=1)), 0.5)
    e = node.handle(pkt(status(seq=1 + 300)), 0.6)
    assert of_type(e, PacketsLost) == [PacketsLost("beta", 299)]
    assert of_type(e, PacketsMissing) == []
    assert of_type(e, BeatReceived) == [BeatReceived("beta", "eth0", pytest.approx(0.1), 301)]


def test_duplicate_over_second_medium_refreshes_that_link_only() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=1)), 0.5)
    node.handle(pkt(status(seq=2)), 1.5)
    e = node.handle(pkt(status(seq=2), iface="eth1"), 1.55)
    assert e == [LinkTransition("beta", "eth1", LinkStatus.UP)]
    snap = node.snapshot(1.55)
    assert snap.peer("beta").last_heard_at == 1.5  # type: ignore[union-attr]
    links = {lk.iface: lk.last_heard_at for lk in snap.links}
    assert links == {"eth0": 1.5, "eth1": 1.55}


def test_replays_are_dropped_without_any_state_change() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=1)), 0.5)
    node.handle(pkt(status(seq=2)), 1.5)
    node.handle(pkt(status(seq=2), iface="eth1"), 1.5)
    before = node.snapshot(1.6)
    replays = [
        pkt(status(seq=2)),  # same seq, same iface
        pkt(status(seq=2), iface="eth1"),
        pkt(status(seq=1)),  # older seq
        pkt(status(seq=3, hg=6)),  # older generation
        pkt(shutdone(seq=2)),
    ]
    for ev in replays:
        (d,) = node.handle(ev, 1.6)
        assert isinstance(d, PacketDropped)
        assert d.reason is DropReason.REPLAY
    after = node.snapshot(1.6)
    assert without_dropped(after) == without_dropped(before)
    assert drops(after, "eth0", DropReason.REPLAY) == 4
    assert drops(after, "eth1", DropReason.REPLAY) == 1
    (old_gen,) = node.handle(pkt(status(seq=9, hg=1)), 1.7)
    assert isinstance(old_gen, PacketDropped)
    assert old_gen.detail == "attempted replay attack [beta]? [gen = 1, curgen = 7]"


def test_ns_message_from_old_generation_is_a_replay() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=1, hg=7)), 0.5)
    (d,) = node.handle(pkt(other("NS_ackmsg", seq=None, hg=6)), 0.6)
    assert isinstance(d, PacketDropped)
    assert d.reason is DropReason.REPLAY


def test_restart_resets_seq_tracking() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=40, st="active")), 0.5)
    e = node.handle(pkt(status(seq=1, hg=8, st="init")), 1.0)
    assert of_type(e, PeerRestarted) == [PeerRestarted("beta", 7, 8)]
    assert of_type(e, NodeTransition) == [
        NodeTransition("beta", NodeStatus.ACTIVE, NodeStatus.UP, TransitionReason.RESTARTED)
    ]
    peer = node.snapshot(1.0).peer("beta")
    assert peer is not None
    assert (peer.generation, peer.last_seq, peer.restarts) == (8, 1, 1)


def test_shutdone_marks_peer_dead_at_once() -> None:
    node, _ = started()
    node.handle(pkt(status(seq=1, st="active")), 0.5)
    e = node.handle(pkt(shutdone(seq=2)), 0.75)
    *notices, said = e
    assert notices == [
        ShutdownNotice("beta"),
        NodeDead("beta", DeathReason.SHUTDOWN, 0.5),
        NodeTransition("beta", NodeStatus.ACTIVE, NodeStatus.DEAD, TransitionReason.SHUTDOWN),
    ]
    # heartbeat tells its peers a node that shut down needs no reset (spec §4.6)
    assert isinstance(said, SendMessage)
    assert [(f.name, f.text) for f in said.message.fields[:3]] == [
        ("t", "stonith"),
        ("node", "beta"),
        ("result", "unneeded"),
    ]
    # its copy over the second medium is a duplicate: link only, no second notice
    assert node.handle(pkt(shutdone(seq=2), iface="eth1"), 0.8) == [
        LinkTransition("beta", "eth1", LinkStatus.UP)
    ]


def test_shutdown_sends_shutdone_then_stops() -> None:
    node, _ = started()
    e = node.handle(Shutdown(), 0.5)
    assert isinstance(e[0], SendMessage)
    assert e[0].message.type == "shutdone"
    assert e[0].message.get_hex("seq") == 2
    assert e[-1] == ShutdownComplete()
    assert node.handle(Shutdown(), 0.6) == []  # once only
    # no more statuses, no input; time still runs so the snapshot stays true
    assert node.next_deadline() == 20.0  # beta's initdead
    assert node.on_timer(10.0) == []
    assert node.handle(pkt(status(seq=1)), 11.0) == []
    assert node.on_timer(20.0) == [
        NodeDead("beta", DeathReason.INITDEAD, None),
        NodeTransition("beta", NodeStatus.INIT, NodeStatus.DEAD, TransitionReason.INITDEAD),
    ]
    assert node.next_deadline() is None
    snap = node.snapshot(21.0)
    assert snap.seq_sent == 2
    assert snap.local_status is NodeStatus.DEAD


def test_rtt_from_echo_of_our_seq() -> None:
    node, _ = started(0.0)  # seq 1 sent at 0.0
    echo = (EchoEntry("alpha", "eth0", 1, 300_000),)
    e = node.handle(pkt(status(seq=1, echo=echo)), 0.5)
    (rtt,) = [x for x in e if type(x).__name__ == "RttMeasured"]
    assert rtt.rtt_s == pytest.approx(0.2)  # type: ignore[attr-defined]
    # unknown seq and negative results are skipped
    bad = (EchoEntry("alpha", "eth0", 99, 0), EchoEntry("alpha", "eth1", 1, 9_000_000))
    e = node.handle(pkt(status(seq=2, echo=bad)), 0.6)
    assert [x for x in e if type(x).__name__ == "RttMeasured"] == []


def test_rtt_counts_from_when_the_driver_says_our_status_left() -> None:
    node, _ = started(0.0)  # seq 1 built at 0.0
    node.sent(1, 0.05)  # written 50 ms later (a busy loop): the network's time starts then
    echo = (EchoEntry("alpha", "eth0", 1, 300_000),)
    e = node.handle(pkt(status(seq=1, echo=echo)), 0.5)
    (rtt,) = [x for x in e if type(x).__name__ == "RttMeasured"]
    assert rtt.rtt_s == pytest.approx(0.15)  # type: ignore[attr-defined]


def test_we_echo_what_we_heard() -> None:
    node, _ = started(0.0)
    node.handle(pkt(status(seq=1)), 0.25)
    node.handle(pkt(status(seq=1), iface="eth1"), 0.5)
    (m,) = sent(node.on_timer(1.0))
    assert m.get("hbecho") == "beta/eth0:1:750000;beta/eth1:1:500000"


def test_ping_nodes_gate_comm_up() -> None:
    pn = (PingNode("10.0.0.254", ("10.0.0.254",)),)
    node, _ = started(ping_nodes=pn)
    e = node.handle(pkt(status(seq=1)), 0.5)
    assert CommUp() not in e
    from hbmon.core.events import PingResult

    e = node.handle(PingResult("10.0.0.254", "10.0.0.254", 0.001), 0.7)
    assert CommUp() in e


def test_never_heard_peer_is_declared_dead_at_initdead() -> None:
    node, _ = started(3.0)
    assert node.next_deadline() == 4.0
    for t in range(4, 23):
        node.on_timer(float(t))
    e = node.on_timer(23.0)
    assert NodeDead("beta", DeathReason.INITDEAD, None) in e
    assert e.index(CommUp()) > e.index(NodeDead("beta", DeathReason.INITDEAD, None))
    assert sent(e)[0].get("st") == "active"


def test_reconfigure_keeps_state_of_remaining_peers() -> None:
    node, _ = started(nodes=("alpha", "beta", "gamma"))
    node.handle(pkt(status(seq=1)), 0.5)
    node.handle(pkt(status(src="gamma", seq=1)), 0.5)
    node.handle(pkt(status(seq=5)), 1.5)
    node.on_timer(2.0)
    new = make_config(nodes=("alpha", "beta", "delta"), ifaces=("eth0", "eth2"))
    e = node.reconfigure(new, 2.0)
    assert e == []
    snap = node.snapshot(2.0)
    assert [p.name for p in snap.peers] == ["beta", "delta"]
    beta = snap.peer("beta")
    assert beta is not None
    assert beta.last_seq == 5
    assert beta.status is NodeStatus.UP
    assert {(lk.node, lk.iface) for lk in snap.links} == {
        ("beta", "eth0"), ("beta", "eth2"), ("delta", "eth0"), ("delta", "eth2"),
    }  # fmt: skip
    assert {i for i, _, _ in snap.dropped} == {"eth0", "eth1", "eth2"}
    delta = snap.peer("delta")
    assert delta is not None
    assert delta.status is NodeStatus.INIT
    # delta was added at 2.0: initdead counts from there
    e = node.on_timer(2.0 + 20.0)
    assert NodeDead("delta", DeathReason.INITDEAD, None) in e
    assert NodeDead("beta", DeathReason.TIMEOUT, 1.5) in e  # 1.5 + 10 s passed long ago


def test_never_raises_on_odd_peer_input() -> None:
    node, _ = started()
    weird = [
        Message.build(("t", "status"), ("src", "beta"), ("seq", "zz"), ("hg", "1")),
        Message.build(("t", ""), ("src", "beta")),
        Message.build(("t", "status"), ("src", "BETA"), ("seq", "1"), ("hg", "7"), ("dt", "0")),
        Message.build(("t", "status"), ("src", "beta"), ("seq", "2"), ("hg", "7"),
                      ("hbecho", "alpha/eth0:zz:1;;//:")),
        Message.build(("t", "status"), ("src", "beta"), ("seq", "f" * 16), ("hg", "f" * 16)),
    ]  # fmt: skip
    for i, m in enumerate(weird):
        node.handle(pkt(m), 0.1 * (i + 1))
    beta = node.snapshot(1.0).peer("beta")
    assert beta is not None
    assert beta.dead_interval_s == 10.0
