"""heartbeat 3.0.6 flow control answered by the core: repnodes, acks, retransmissions.

Without a `repnodes` reply heartbeat never declares comm up (it stays `up`, its
API and resources never start); without acks its send history fills up.
Formats from the 3.0.6 captures (fixtures packets-sha1.txt).
"""

from __future__ import annotations

from coretools import UUIDS, WALL_EPOCH, make_config, status

from hbmon.core.events import PacketIn, SendMessage
from hbmon.core.flowctl import HISTORY, FlowControl
from hbmon.core.node import Node
from hbmon.wire import builders
from hbmon.wire.message import Field, Message


def _node() -> Node:
    node = Node(make_config("alpha"), generation=42, uuid=UUIDS["alpha"], now=0.0,
                wall_epoch=WALL_EPOCH)  # fmt: skip
    node.start(0.0)
    return node


def _sent(effects: list[object], t: str) -> list[Message]:
    return [e.message for e in effects if isinstance(e, SendMessage) and e.message.type == t]


def _reqnodes(seq: int, dest: str = "alpha") -> PacketIn:
    head = (
        Field("t", b"reqnodes"),
        Field("dest", dest.encode()),
        Field("destuuid", UUIDS["alpha"], 1),
    )
    m = builders.sequenced(
        head, src="beta", srcuuid=UUIDS["beta"], seq=seq, hg=7, ts=1, ld="n/a", ttl=3
    )
    return PacketIn("eth0", m)


def test_reqnodes_to_us_gets_repnodes_in_heartbeats_field_order() -> None:
    node = _node()
    node.handle(PacketIn("eth0", status(seq=1, st="up")), 0.1)
    out = _sent(node.handle(_reqnodes(2), 0.2), "repnodes")
    (rep,) = out
    assert rep.names()[:5] == ("dest", "t", "nodelist", "delnodelist", "destuuid")
    assert rep.get("dest") == "beta"
    assert rep.get("nodelist") == "alpha beta "
    assert rep.get("delnodelist") == ""
    assert rep.get_bytes("destuuid") == UUIDS["beta"]
    assert rep.get("src") == "alpha"
    assert rep.get_hex("seq") is not None


def test_reqnodes_for_another_node_is_not_answered() -> None:
    node = _node()
    node.handle(PacketIn("eth0", status(seq=1, st="up")), 0.1)
    assert _sent(node.handle(_reqnodes(2, dest="gamma"), 0.2), "repnodes") == []


def test_every_tenth_seq_is_acked_once_and_not_while_a_seq_is_missing() -> None:
    node = _node()
    acks: list[Message] = []
    t = 0.0
    for seq in range(1, 21):
        t += 0.1
        acks += _sent(node.handle(PacketIn("eth0", status(seq=seq, st="active")), t), "NS_ackmsg")
    assert [a.get_hex("ackseq") for a in acks] == [10, 20]
    ack = acks[0]
    assert ack.names() == ("t", "dest", "ackseq", "destuuid", "src", "srcuuid", "hg", "ts", "ttl")
    assert ack.get("dest") == "beta"
    assert ack.get_bytes("destuuid") == UUIDS["beta"]
    # The same seq over a second medium is not acked again.
    assert _sent(node.handle(PacketIn("eth1", status(seq=20, st="active")), t), "NS_ackmsg") == []
    # 21 lost: 30 arrives with a gap below it, so no ack (heartbeat's rule).
    out = node.handle(PacketIn("eth0", status(seq=30, st="active")), t + 0.1)
    assert _sent(out, "NS_ackmsg") == []


def test_rexmit_request_resends_the_same_message() -> None:
    cfg = make_config("alpha")
    node = Node(cfg, generation=42, uuid=UUIDS["alpha"], now=0.0, wall_epoch=WALL_EPOCH)
    sent = _sent(node.start(0.0), "status")
    step = cfg.timers.keepalive_ms / 1000
    for k in range(1, 6):
        sent += _sent(node.on_timer(k * step), "status")
    assert len(sent) == 6
    node.handle(PacketIn("eth0", status(seq=1, st="active")), 5 * step)
    target = sent[2]
    seq = target.get_hex("seq")
    assert seq is not None
    req = builders.ns_rexmit(dest="alpha", firstseq=seq, lastseq=seq, destuuid=UUIDS["alpha"],
                             src="beta", srcuuid=UUIDS["beta"], hg=7, ts=2, ttl=3)  # fmt: skip
    resent = [e.message for e in node.handle(PacketIn("eth0", req), 5 * step)
              if isinstance(e, SendMessage) and e.message.get_hex("seq") == seq]  # fmt: skip
    assert resent == [target]
    # A request for another node, or for a seq we never sent, resends nothing.
    other = builders.ns_rexmit(dest="gamma", firstseq=seq, lastseq=seq, destuuid=UUIDS["alpha"],
                               src="beta", srcuuid=UUIDS["beta"], hg=7, ts=2, ttl=3)  # fmt: skip
    assert _sent(node.handle(PacketIn("eth0", other), 5 * step), "status") == []
    far = builders.ns_rexmit(dest="alpha", firstseq=900, lastseq=900, destuuid=UUIDS["alpha"],
                             src="beta", srcuuid=UUIDS["beta"], hg=7, ts=2, ttl=3)  # fmt: skip
    assert _sent(node.handle(PacketIn("eth0", far), 5 * step), "status") == []


def test_history_is_bounded() -> None:
    flow = FlowControl()
    for seq in range(1, HISTORY + 50):
        flow.sent(seq, Message((Field("t", b"status"),)))
    assert flow.resend(1, 1) == []
    assert len(flow.resend(HISTORY + 40, HISTORY + 45)) == 6
    assert flow.resend(5, 1) == []
    assert flow.resend(100, 100 + 60) == []
