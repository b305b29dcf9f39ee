"""A restart without a failover (core/handover.py), event by event on a fake clock.

The record's judgement and the adoption plan are pure functions; the rest is
driven through `Node`: our restart (Handover → HandoverReady → HandoverSaved →
the notice and HandoverComplete), the peer's notice (`hbhandover`), and the
start of the next process (HandedOver).
"""

from __future__ import annotations

import dataclasses

import pytest
from coretools import UUIDS, WALL_EPOCH, make_config, of_type, status

from hbmon.config.model import (
    HANDOVER_WINDOW_MS,
    AutoFailback,
    HbmonSettings,
    Resource,
    ResourceGroup,
)
from hbmon.core.events import (
    ActiveAtStart,
    ControlOp,
    ControlReply,
    ControlRequest,
    GroupDone,
    GroupOp,
    GroupSurvey,
    HandedOver,
    Handover,
    HandoverComplete,
    HandoverReady,
    HandoverSaved,
    KeepGroup,
    NodeDead,
    PacketIn,
    PeerHandover,
    PeerSilent,
    ResourceLog,
    Scope,
    SendMessage,
    Shutdown,
    ShutdownComplete,
    StartGroup,
    StopGroup,
    TakeoverReason,
)
from hbmon.core.handover import (
    Adoption,
    HandoverRecord,
    Verdict,
    adopt,
    advertised_window_ms,
    judge,
)
from hbmon.core.node import HANDOVER_NOTICES, Node
from hbmon.wire import builders, rscmsg
from hbmon.wire.builders import HANDOVER_FIELD, handover_field, handover_window_ms
from hbmon.wire.message import Message

G1 = ResourceGroup("alpha", (Resource("IPaddr", ("10.0.0.10/24/eth0",)),))
G2 = ResourceGroup("beta", (Resource("IPaddr", ("10.0.0.20/24/eth0",)),))
K1, K2 = G1.key, G2.key
DEADTIME = 10.0
WINDOW = HANDOVER_WINDOW_MS / 1000


def record(**kw: object) -> HandoverRecord:
    base = HandoverRecord(
        node="alpha",
        generation=41,
        groups=(K1,),
        claims=Scope.LOCAL,
        at=100.0,
        window_s=30.0,
        boot_id="boot-1",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------- record --
@pytest.mark.parametrize(
    ("changes", "now", "verdict"),
    [
        ({}, 100.0, Verdict.USABLE),
        ({}, 129.999, Verdict.USABLE),
        ({}, 130.0, Verdict.EXPIRED),  # its addresses expire at the window's end
        ({}, 99.0, Verdict.FROM_THE_FUTURE),
        ({"node": "beta"}, 101.0, Verdict.OTHER_NODE),
        ({"boot_id": "boot-0"}, 101.0, Verdict.OTHER_BOOT),
    ],
)
def test_a_record_is_usable_only_from_this_node_this_boot_within_its_window(
    changes: dict[str, object], now: float, verdict: Verdict
) -> None:
    assert judge(record(**changes), node="alpha", boot_id="boot-1", now=now) is verdict


def test_adoption_needs_the_addresses_up_and_restarts_what_is_partly_stopped() -> None:
    plan = adopt(
        (
            GroupSurvey("kept", addresses_up=True, all_running=True, any_running=True),
            GroupSurvey("partly", addresses_up=True, all_running=False, any_running=True),
            GroupSurvey("gone", addresses_up=False, all_running=False, any_running=True),
            GroupSurvey("none", addresses_up=False, all_running=False, any_running=False),
        )
    )
    assert plan == Adoption(kept=("kept",), restart=("partly",), lost=("gone", "none"))


def test_the_notice_field_carries_the_window_in_ms_and_refuses_nonsense() -> None:
    assert advertised_window_ms(30.0) == 30000
    msg = builders.status(
        st="active", dt_ms=40000, src="beta", srcuuid=UUIDS["beta"], seq=1, hg=7,
        ts=1, ld="n/a", ttl=3, extra=(handover_field(30000),),
    )  # fmt: skip
    assert msg.names()[-2:] == (HANDOVER_FIELD, "ttl")
    assert handover_window_ms(msg) == 30000
    for bad in ("-5", "30s", "", "9" * 12):
        odd = Message.build(("t", "status"), (HANDOVER_FIELD, bad))
        assert handover_window_ms(odd) is None, bad
    assert handover_window_ms(Message.build(("t", "status"))) is None


# -------------------------------------------------------- our own restart --
def node(now: float = 0.0, *, window_ms: int = HANDOVER_WINDOW_MS) -> Node:
    cfg = dataclasses.replace(
        make_config(deadtime_ms=int(DEADTIME * 1000)),
        resources=(G1, G2),
        auto_failback=AutoFailback.OFF,
        hbmon=HbmonSettings(handover_window_ms=window_ms),
    )
    return Node(cfg, generation=42, uuid=UUIDS["alpha"], now=now, wall_epoch=WALL_EPOCH)


def beta(seq: int) -> PacketIn:
    """A status of beta, an hbmon peer that holds its own group, stable."""
    report = rscmsg.Report(True, frozenset({K2}))
    msg = builders.status(
        st="active", dt_ms=10000, src="beta", srcuuid=UUIDS["beta"], seq=seq, hg=7,
        ts=1, ld="n/a", ttl=3, extra=rscmsg.status_extra(report, 0, 0),
    )  # fmt: skip
    return PacketIn("eth0", msg)


def running_alpha() -> tuple[Node, float]:
    """alpha holds its group; beta is alive and holds its own."""
    n = node()
    n.start(0.0)
    starts = of_type(n.handle(beta(1), 0.1), StartGroup)
    assert [e.key for e in starts] == [K1]
    n.handle(GroupDone(K1, GroupOp.START, True), 0.5)
    for seq in range(2, 8):  # past the first 5 s, whose dt has heartbeat's +2 s
        n.handle(beta(seq), seq - 1.0)
    snap = n.snapshot(6.0)
    assert [g.key for g in snap.groups if g.holder == "alpha"] == [K1]
    assert snap.resources_stable
    return n, 6.0


def notices(effects: list[object]) -> list[Message]:
    return [
        e.message
        for e in effects
        if isinstance(e, SendMessage) and e.message.get(HANDOVER_FIELD) is not None
    ]


def test_our_restart_hands_over_what_runs_then_sends_the_notice_and_ends() -> None:
    n, t = running_alpha()
    effects = n.handle(Handover(), t)
    ready = of_type(effects, HandoverReady)
    assert ready == [HandoverReady((K1,), Scope.LOCAL, WINDOW)]
    assert notices(effects) == []  # not before the driver saved the handover
    assert of_type(effects, StopGroup) == []
    effects = n.handle(HandoverSaved(True), t + 0.01)
    sent = notices(effects)
    assert len(sent) == HANDOVER_NOTICES
    assert {m.get_hex("dt") for m in sent} == {int((DEADTIME + WINDOW) * 1000)}
    assert {m.get("st") for m in sent} == {"active"}
    assert of_type(effects, HandoverComplete) == [HandoverComplete((K1,), WINDOW)]
    assert of_type(effects, StopGroup) == []
    # The process is done: silence, and nothing more is taken in.
    assert n.next_deadline() is None or of_type(n.on_timer(t + 60), SendMessage) == []
    assert n.handle(PacketIn("eth0", status("beta", 9, st="active")), t + 61) == []


def test_a_handover_is_asked_for_once_and_ignored_while_leaving() -> None:
    n, t = running_alpha()
    assert len(of_type(n.handle(Handover(), t), HandoverReady)) == 1
    assert of_type(n.handle(Handover(), t + 0.1), HandoverReady) == []
    assert of_type(n.on_timer(t + 1.0), HandoverReady) == []
    n2, t2 = running_alpha()
    n2.handle(Shutdown(), t2)
    assert n2.handle(Handover(), t2 + 0.01) == []


def test_a_control_request_while_handing_over_is_refused() -> None:
    n, t = running_alpha()
    n.handle(Handover(), t)
    (reply,) = of_type(n.handle(ControlRequest(1, ControlOp.STANDBY, Scope.ALL), t), ControlReply)
    assert not reply.ok


def test_a_save_that_fails_releases_everything_as_a_stop_does() -> None:
    n, t = running_alpha()
    n.handle(Handover(), t)
    effects = n.handle(HandoverSaved(False, "read-only file system"), t + 0.01)
    assert (
        ResourceLog(
            "ERROR",
            "Handover failed: read-only file system; giving up all HA resources instead.",
        )
        in effects
    )
    assert [e.key for e in of_type(effects, StopGroup)] == [K1]
    effects = n.handle(GroupDone(K1, GroupOp.STOP, True), t + 0.5)
    assert of_type(effects, ShutdownComplete) == [ShutdownComplete()]
    assert notices(effects) == []


def test_a_stop_during_the_save_wins_and_a_late_save_answer_is_ignored() -> None:
    n, t = running_alpha()
    n.handle(Handover(), t)
    effects = n.handle(Shutdown(), t + 0.01)
    assert [e.key for e in of_type(effects, StopGroup)] == [K1]
    effects = n.handle(HandoverSaved(True), t + 0.02)
    assert notices(effects) == []
    assert of_type(effects, HandoverComplete) == []


# ------------------------------------------------------------ the peer side --
def test_the_peer_stretches_the_dead_interval_and_counts_no_late_silence() -> None:
    """What beta sees of alpha's restart, from alpha's notice (here: we are alpha,
    beta is the one restarting)."""
    n = node()
    n.start(0.0)
    n.handle(PacketIn("eth0", status("beta", 1, st="active", dt_ms=10000)), 0.1)
    notice = builders.status(
        st="active", dt_ms=40000, src="beta", srcuuid=UUIDS["beta"], seq=2, hg=7,
        ts=1, ld="n/a", ttl=3, extra=(handover_field(30000),),
    )  # fmt: skip
    again = dataclasses.replace(notice, fields=tuple(
        f if f.name != "seq" else dataclasses.replace(f, value=b"3") for f in notice.fields
    ))  # fmt: skip
    first = n.handle(PacketIn("eth0", notice), 1.0)
    second = n.handle(PacketIn("eth0", again), 1.0)
    assert of_type(first, PeerHandover) == [PeerHandover("beta", 30.0, 40.0)]
    assert of_type(second, PeerHandover) == []  # sent twice, counted once
    quiet: list[object] = []
    for t in (5.0, 9.9, 11.0, 20.0, 39.0, 40.9):
        quiet += n.on_timer(t)
    assert of_type(quiet, NodeDead) == []
    assert of_type(quiet, PeerSilent) == []  # an announced silence is not late
    snap = n.snapshot(40.9)
    beta = snap.peer("beta")
    assert beta is not None
    assert (beta.handovers, beta.late_warntime, beta.late_deadtime) == (1, 0, 0)
    assert beta.dead_interval_s == 40.0
    # Never back: dead at the end of the stretched interval.
    assert [e.node for e in of_type(n.on_timer(41.0), NodeDead)] == ["beta"]


# ------------------------------------------------------- the next process --
def test_the_next_process_adopts_keeps_and_restarts_without_releasing() -> None:
    n = node(200.0)
    effects = n.handle(
        HandedOver(
            41,
            1.5,
            Scope.ALL,
            (
                GroupSurvey(K1, addresses_up=True, all_running=True, any_running=True),
                GroupSurvey(K2, addresses_up=True, all_running=False, any_running=True),
            ),
        ),
        200.0,
    )
    assert of_type(effects, KeepGroup) == [KeepGroup(K1), KeepGroup(K2)]
    assert [(e.key, e.reason) for e in of_type(effects, StartGroup)] == [
        (K2, TakeoverReason.HANDOVER)
    ]
    # The start-up scan finds both running: neither is released as a leftover.
    effects = n.handle(ActiveAtStart((K1, K2)), 200.0)
    assert of_type(effects, StopGroup) == []
    assert not [e for e in of_type(effects, ResourceLog) if "should not be" in e.text]
    effects = n.start(200.0)
    (first,) = [e.message for e in of_type(effects, SendMessage)]
    assert first.get("hbrsc") == f"0 +{K1} +{K2}"  # the peer learns it at once
    view = n.snapshot(200.0).handover
    assert view is not None
    assert (view.from_generation, view.gap_s, view.kept, view.restarted) == (41, 1.5, (K1,), (K2,))


def test_a_group_whose_address_went_is_not_adopted_and_released_if_it_runs() -> None:
    n = node(200.0)
    gone = GroupSurvey(K1, addresses_up=False, all_running=False, any_running=True)
    effects = n.handle(HandedOver(41, 1.5, Scope.LOCAL, (gone,)), 200.0)
    assert of_type(effects, KeepGroup) == []
    text = f"restart: resource group {K1} lost an address meanwhile: not resumed"
    assert ResourceLog("WARN", text) in effects
    effects = n.handle(ActiveAtStart((K1,)), 200.0)
    assert [e.key for e in of_type(effects, StopGroup)] == [K1]
