"""hbmon next to a heartbeat 3.0.6 peer: messages without hbmon's extension fields.

alpha is a real Node; beta is driven by hand with the messages heartbeat sends
(spec §4.6, fixtures timeline), so only categories (`rsc_hold`) tell alpha what
beta holds.
"""

from __future__ import annotations

import dataclasses

from coretools import UUIDS, WALL_EPOCH, make_config, status

from hbmon.config.model import AutoFailback, Resource, ResourceGroup
from hbmon.core.events import (
    BlockReason,
    ConflictKind,
    ControlOp,
    ControlReply,
    ControlRequest,
    Effect,
    GroupDone,
    GroupOp,
    PacketIn,
    RefusalReason,
    ResourceLog,
    Scope,
    SendMessage,
    Shutdown,
    StandbyRefused,
    StartGroup,
    TakeoverReason,
)
from hbmon.core.node import Node
from hbmon.wire import builders, rscmsg
from hbmon.wire.message import Field, Message

VIP_A = "IPaddr::10.0.0.10"
VIP_B = "IPaddr::10.0.0.20"


class Beta:
    """heartbeat's side: every message with its own seq."""

    def __init__(self) -> None:
        self.seq = 0

    def msg(self, head: tuple[Field, ...]) -> PacketIn:
        self.seq += 1
        m = builders.sequenced(
            head, src="beta", srcuuid=UUIDS["beta"], seq=self.seq, hg=7, ts=1, ld="n/a", ttl=3
        )
        return PacketIn("eth0", m)

    def status(self) -> PacketIn:
        self.seq += 1
        return PacketIn("eth0", status(seq=self.seq, st="active"))

    def resource(self, scope: Scope, stable: bool, info: str | None = None) -> PacketIn:
        return self.msg(rscmsg.resource_head(scope, stable=stable, info=info))

    def ask(self, scope: Scope, info: str) -> PacketIn:
        return self.msg(rscmsg.ask_head(scope, info))


def alpha(mode: AutoFailback = AutoFailback.ON) -> Node:
    cfg = dataclasses.replace(
        make_config("alpha"),
        resources=(
            ResourceGroup("alpha", (Resource("IPaddr::10.0.0.10"),)),
            ResourceGroup("beta", (Resource("IPaddr::10.0.0.20"),)),
        ),
        auto_failback=mode,
    )
    node = Node(cfg, generation=42, uuid=UUIDS["alpha"], now=0.0, wall_epoch=WALL_EPOCH)
    node.start(0.0)
    return node


def sent(effects: list[Effect]) -> list[Message]:
    return [e.message for e in effects if isinstance(e, SendMessage) and e.message.type != "status"]


def kinds(effects: list[Effect]) -> list[str]:
    return [
        "/".join(x for x in (m.type, m.get("rsc_hold"), m.get("info")) if x) for m in sent(effects)
    ]


def starts(effects: list[Effect]) -> list[StartGroup]:
    return [x for x in effects if isinstance(x, StartGroup)]


def texts(effects: list[Effect]) -> list[str]:
    return [e.text for e in effects if isinstance(e, ResourceLog)]


def test_both_starting_takes_own_group_10_s_after_the_peers_resource_message() -> None:
    node, beta = alpha(), Beta()
    e = node.handle(beta.status(), 0.5)  # comm-up
    assert kinds(e) == ["starting"]
    e = node.handle(beta.msg(rscmsg.starting_head()), 0.6)
    assert kinds(e) == ["resource/none"]  # the answer, isstable=0
    assert sent(e)[0].get("isstable") == "0"
    node.handle(beta.resource(Scope.NONE, stable=False), 1.0)
    for t in range(2, 11):  # beta keeps beating, never says it is stable
        assert starts(node.handle(beta.status(), float(t))) == []
    assert starts(node.on_timer(10.9)) == []
    e = node.on_timer(11.0)
    assert starts(e) == [StartGroup(VIP_A, TakeoverReason.STARTUP)]


def test_peer_holding_our_group_as_foreign_keeps_it_then_hands_it_back() -> None:
    node, beta = alpha(), Beta()
    node.handle(beta.status(), 0.5)
    e = node.handle(beta.resource(Scope.ALL, stable=True), 0.6)  # beta holds both
    assert "remote resource transition completed." in texts(e)
    assert "Local Resource acquisition completed. (none)" in texts(e)
    assert starts(e) == []
    assert kinds(e) == ["resource/none"]  # we are stable, holding nothing
    # heartbeat's auto_failback: beta stands by [foreign]
    e = node.handle(beta.ask(Scope.FOREIGN, "me"), 1.0)
    assert texts(e)[0] == "beta wants to go standby [foreign]"
    assert kinds(e) == ["ask_resources/foreign/other"]
    node.handle(beta.resource(Scope.LOCAL, stable=False, info="standby"), 1.1)
    e = node.handle(beta.ask(Scope.FOREIGN, "done"), 1.2)
    assert starts(e) == [StartGroup(VIP_A, TakeoverReason.STANDBY)]
    e = node.handle(GroupDone(VIP_A, GroupOp.START, True), 1.5)
    assert kinds(e) == ["ask_resources/foreign/done", "resource/local"]
    assert "Standby resource acquisition done [foreign]." in texts(e)
    assert node.snapshot(1.5).rsc_hold == "local"


def test_peer_in_flux_refuses_our_standby_locally() -> None:
    node, beta = alpha(), Beta()
    node.handle(beta.status(), 0.5)
    node.handle(beta.resource(Scope.LOCAL, stable=True), 0.6)
    node.handle(GroupDone(VIP_A, GroupOp.START, True), 0.9)
    node.handle(beta.resource(Scope.LOCAL, stable=False), 1.0)  # beta busy
    e = node.handle(ControlRequest(7, ControlOp.STANDBY, Scope.ALL), 1.1)
    text = "standby message [me] from alpha ignored.  Other side is in flux."
    assert [x for x in e if isinstance(x, StandbyRefused)] == [
        StandbyRefused(RefusalReason.PEER_IN_FLUX, text)
    ]
    # The reply carries the same words: logged once, by the refusal.
    assert [x for x in e if isinstance(x, ControlReply)] == [
        ControlReply(7, False, text, logged=True)
    ]
    assert [x for x in e if isinstance(x, ResourceLog) and x.text == text] == []
    refusals = dict(node.snapshot(1.1).refusals)
    assert refusals[RefusalReason.PEER_IN_FLUX] == 1
    assert sum(refusals.values()) == 1


def test_requests_after_shutdown_still_get_their_one_reply() -> None:
    node, beta = alpha(), Beta()
    node.handle(beta.status(), 0.5)
    node.handle(beta.resource(Scope.LOCAL, stable=True), 0.6)
    node.handle(GroupDone(VIP_A, GroupOp.START, True), 0.9)
    node.handle(Shutdown(), 2.0)  # releasing VIP_A
    e = node.handle(ControlRequest(1, ControlOp.TAKEOVER, Scope.ALL), 2.1)
    assert [x for x in e if isinstance(x, ControlReply)] == [
        ControlReply(1, False, "Shutdown in progress: standby refused.", logged=True)
    ]
    e = node.handle(GroupDone(VIP_A, GroupOp.STOP, True), 2.5)
    assert kinds(e) == ["resource/none/shutdown", "shutdone"]
    e = node.handle(ControlRequest(2, ControlOp.STANDBY, Scope.ALL), 3.0)
    assert [x for x in e if isinstance(x, ControlReply)] == [
        ControlReply(2, False, "hbmon is shut down.")
    ]


def test_snapshot_lists_every_reason_and_conflict_kind_from_the_start() -> None:
    snap = alpha().snapshot(0.0)
    assert [r for r, n in snap.takeovers] == list(TakeoverReason)
    assert all(n == 0 for _, n in snap.takeovers)
    assert dict(snap.conflicts) == {"dual": 0, "none": 0}
    assert dict(snap.takeovers_blocked) == {"quorum": 0, "in_use": 0, "fencing": 0}
    assert dict(snap.refusals) == dict.fromkeys(RefusalReason, 0)
    assert [type(k) for k, _ in (*snap.conflicts, *snap.takeovers_blocked, *snap.refusals)] == [
        ConflictKind,
        ConflictKind,
        BlockReason,
        BlockReason,
        BlockReason,
        *[RefusalReason] * len(RefusalReason),
    ]
    assert snap.last_takeover is None
    assert [g.key for g in snap.groups] == [VIP_A, VIP_B]
    assert snap.rsc_hold == "none"
    assert not snap.resources_stable
