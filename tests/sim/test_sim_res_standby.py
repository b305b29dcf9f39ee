"""Standby and takeover (spec §5.4) over the two-node sim, with control replies.

Settled state at 5 s: alpha holds VIP_A (its own), beta holds VIP_B. Requests go
in at 10 s. One-way delay 1/16 s, a start or stop 1/4 s.
"""

from __future__ import annotations

import pytest
from simnet import DELAY, Sim
from simowners import VIP_A, VIP_B, A, B, lines, rpair, sent_types

from hbmon.config.model import AutoFailback
from hbmon.core.events import (
    ControlOp,
    ControlReply,
    ProbeGroup,
    Scope,
    TakeoverComplete,
    TakeoverReason,
)
from hbmon.wire.message import Message

OP = 0.25
T0 = 10.0
OTHER = {A: B, B: A}
OWN = {A: VIP_A, B: VIP_B}


def settled(**kw: object) -> Sim:
    sim = rpair(**kw)
    sim.start(A)
    sim.start(B)
    sim.run_until(T0)
    return sim


def replies(sim: Sim, name: str) -> list[tuple[float, ControlReply]]:
    return sim.effects(name, ControlReply)


def holding(sim: Sim) -> dict[str, set[str]]:
    return {k: sim.holders(k) for k in (VIP_A, VIP_B)}


# ------------------------------------------------------------- moving groups --
@pytest.mark.parametrize("me", [A, B])
@pytest.mark.parametrize("scope", [Scope.ALL, Scope.LOCAL])
def test_standby_moves_our_groups_and_replies_when_the_peer_has_them(me: str, scope: Scope) -> None:
    sim = settled()
    peer = OTHER[me]
    rid = sim.request(me, ControlOp.STANDBY, scope)
    sim.run_until(T0 + 5)
    # me → other → (release) done → (acquire) done: 4 one-way trips, a stop and a start
    done_at = T0 + 4 * DELAY + 2 * OP
    (reply,) = replies(sim, me)
    assert reply == (done_at, ControlReply(rid, True, f"Standby [{scope}] complete."))
    assert holding(sim) == {VIP_A: {peer}, VIP_B: {peer}}
    assert sim.effects(peer, TakeoverComplete)[-1] == (
        done_at - DELAY,
        TakeoverComplete(TakeoverReason.STANDBY, (OWN[me],), OP, me),
    )
    assert not sim.effects(peer, ProbeGroup)  # a standby hands over; nothing to guard
    assert lines(sim, me)[-5:] == [
        f"Going standby [{scope}].",
        f"{me} wants to go standby [{scope}]",
        f"standby: {peer} can take our {scope} resources",
        f"Local standby process completed [{scope}].",
        f"Other node completed standby takeover of {scope} resources.",
    ]
    assert lines(sim, peer)[-4:] == [
        f"{me} wants to go standby [{scope}]",
        f"standby: acquire [{scope}] resources from {me}",
        f"Standby resource acquisition done [{scope}].",
        "remote resource transition completed.",
    ]
    assert sent_types(sim, me, since=T0) == [
        f"ask_resources/{scope}/me",
        "resource/none/standby",
        f"ask_resources/{scope}/done",
        "resource/none",
    ]
    assert sent_types(sim, peer, since=T0) == [
        f"ask_resources/{scope}/other",
        f"ask_resources/{scope}/done",
        "resource/all",
    ]


@pytest.mark.parametrize("me", [A, B])
@pytest.mark.parametrize("scope", [Scope.ALL, Scope.FOREIGN])
def test_takeover_brings_the_peers_groups_and_replies_when_started(me: str, scope: Scope) -> None:
    sim = settled()
    peer = OTHER[me]
    rid = sim.request(me, ControlOp.TAKEOVER, scope)
    sim.run_until(T0 + 5)
    # hb_takeover → me → other → (release) done → (acquire): 4 trips, a stop and a start
    done_at = T0 + 4 * DELAY + 2 * OP
    assert replies(sim, me) == [(done_at, ControlReply(rid, True, "Takeover complete."))]
    assert holding(sim) == {VIP_A: {me}, VIP_B: {me}}
    assert sim.effects(me, TakeoverComplete)[-1] == (
        done_at,
        TakeoverComplete(TakeoverReason.TAKEOVER, (OWN[peer],), OP, peer),
    )
    mirrored = {Scope.ALL: Scope.ALL, Scope.FOREIGN: Scope.LOCAL}[scope]
    assert sent_types(sim, me, since=T0)[:3] == [
        f"hb_takeover/{scope}",
        f"ask_resources/{mirrored}/other",
        f"ask_resources/{mirrored}/done",
    ]
    assert f"Going standby [{mirrored}]." in lines(sim, peer)


@pytest.mark.parametrize(
    ("me", "op", "scope", "text"),
    [
        (A, ControlOp.STANDBY, Scope.FOREIGN, "Nothing to do: no [foreign] resources held here."),
        (B, ControlOp.STANDBY, Scope.NONE, "Nothing to do: no [none] resources held here."),
        (A, ControlOp.TAKEOVER, Scope.LOCAL, "Nothing to do: beta holds no [local] resources."),
    ],
)
def test_nothing_to_move_replies_at_once(me: str, op: ControlOp, scope: Scope, text: str) -> None:
    sim = settled()
    rid = sim.request(me, op, scope)
    assert replies(sim, me) == [(T0, ControlReply(rid, True, text))]
    sim.run_until(T0 + 5)
    assert holding(sim) == {VIP_A: {A}, VIP_B: {B}}
    assert sent_types(sim, me, since=T0) == []


def test_standby_foreign_hands_back_what_we_hold_for_the_peer() -> None:
    sim = settled(auto_failback=AutoFailback.OFF)
    rid = sim.request(B, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(T0 + 5)
    assert holding(sim) == {VIP_A: {A}, VIP_B: {A}}
    rid2 = sim.request(A, ControlOp.STANDBY, Scope.FOREIGN)
    sim.run_until(T0 + 10)
    assert holding(sim) == {VIP_A: {A}, VIP_B: {B}}
    assert [r.request_id for _, r in replies(sim, B)] == [rid]
    assert [(r.request_id, r.ok) for _, r in replies(sim, A)] == [(rid2, True)]


def test_takeover_local_asks_the_peer_to_stand_by_foreign() -> None:
    sim = settled(auto_failback=AutoFailback.OFF)
    sim.request(A, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(T0 + 5)
    assert holding(sim) == {VIP_A: {B}, VIP_B: {B}}
    rid = sim.request(A, ControlOp.TAKEOVER, Scope.LOCAL)
    sim.run_until(T0 + 10)
    assert holding(sim) == {VIP_A: {A}, VIP_B: {B}}
    assert replies(sim, A)[-1][1] == ControlReply(rid, True, "Takeover complete.")
    assert sent_types(sim, B, since=T0 + 5)[:1] == ["ask_resources/foreign/me"]


# ----------------------------------------------------------------- refusals --
def test_legacy_refuses_standby_with_heartbeats_words() -> None:
    sim = settled(auto_failback=AutoFailback.LEGACY)
    for op in ControlOp:
        rid = sim.request(A, op, Scope.ALL)
        assert replies(sim, A)[-1] == (
            T0,
            ControlReply(rid, False, "Standby mode only implemented when nice_failback on", True),
        )
    assert sent_types(sim, A, since=T0) == []


def test_refused_while_our_resources_are_in_flux() -> None:
    sim = rpair()
    sim.world.slow[A] = 2.0
    sim.start(A)
    sim.start(B)
    sim.run_until(1.0)  # alpha still starting its group
    rid = sim.request(A, ControlOp.STANDBY, Scope.ALL)
    text = "standby message [me] from alpha ignored.  local resources in flux."
    assert replies(sim, A) == [(1.0, ControlReply(rid, False, text, logged=True))]


def test_refused_while_the_other_side_is_in_flux() -> None:
    sim = settled()
    sim.kill(B)  # the agent only: VIP_B stays up on beta
    sim.world.slow[B] = 3.0
    sim.start(B, generation=101)  # releases VIP_B first (verifyallidle), slowly
    sim.run_until(T0 + 1.5)
    rid = sim.request(A, ControlOp.STANDBY, Scope.ALL)
    text = "standby message [me] from alpha ignored.  Other side is in flux."
    assert replies(sim, A) == [(T0 + 1.5, ControlReply(rid, False, text, logged=True))]
    assert text in lines(sim, A)


def test_second_request_during_an_exchange_is_refused() -> None:
    sim = settled()
    first = sim.request(A, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(T0 + 0.1)
    second = sim.request(A, ControlOp.TAKEOVER, Scope.ALL)
    text = "Standby in progress- new request from alpha ignored [10 seconds left]"
    assert replies(sim, A) == [(T0 + 0.1, ControlReply(second, False, text, logged=True))]
    sim.run_until(T0 + 5)
    assert [(r.request_id, r.ok) for _, r in replies(sim, A)] == [(second, False), (first, True)]


def test_no_reply_cancels_after_10_s() -> None:
    sim = settled()

    def drop_asks(src: str, dst: str, iface: str, m: Message) -> float | None:
        return None if m.type == "ask_resources" else 0.0

    sim.shaper = drop_asks
    rid = sim.request(A, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(T0 + 30)
    text = "No reply to standby request.  Standby request cancelled."
    assert replies(sim, A) == [(T0 + 10, ControlReply(rid, False, text, logged=True))]
    assert holding(sim) == {VIP_A: {A}, VIP_B: {B}}  # nothing moved
    # and the next request works again once messages flow
    sim.shaper = None
    rid2 = sim.request(A, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(T0 + 35)
    assert replies(sim, A)[-1][1] == ControlReply(rid2, True, "Standby [all] complete.")


def test_takeover_without_reply_cancels_after_10_s() -> None:
    sim = settled()

    def drop_takeover(src: str, dst: str, iface: str, m: Message) -> float | None:
        return None if m.type == "hb_takeover" else 0.0

    sim.shaper = drop_takeover
    rid = sim.request(B, ControlOp.TAKEOVER, Scope.ALL)
    sim.run_until(T0 + 30)
    text = "No reply to takeover request.  Takeover request cancelled."
    assert replies(sim, B) == [(T0 + 10, ControlReply(rid, False, text, logged=True))]


def test_peer_death_during_standby_replies_once_with_the_reason() -> None:
    sim = settled()
    rid = sim.request(A, ControlOp.STANDBY, Scope.ALL)
    sim.crash(B)  # before it could answer
    sim.run_until(T0 + 30)
    (reply,) = replies(sim, A)
    assert reply[1].request_id == rid
    assert not reply[1].ok
    # the 10 s reply timeout comes first (beta is declared dead later)
    assert reply[0] == T0 + 10


# ------------------------------------------------------------ lost messages --
@pytest.mark.parametrize("lost_from", [A, B])
def test_a_lost_done_is_made_good_by_the_peers_next_status(lost_from: str) -> None:
    sim = settled()

    def drop_done(src: str, dst: str, iface: str, m: Message) -> float | None:
        lost = m.type == "ask_resources" and m.get("info") == "done" and src == lost_from
        return None if lost else 0.0

    sim.shaper = drop_done
    rid = sim.request(A, ControlOp.STANDBY, Scope.ALL)
    sim.run_until(T0 + 5)
    assert holding(sim) == {VIP_A: {B}, VIP_B: {B}}
    ((t, reply),) = replies(sim, A)
    assert reply == ControlReply(rid, True, "Standby [all] complete.")
    # not heartbeat's hour: the next status (each second) carries the news
    assert t <= T0 + 2 + DELAY
    for name in (A, B):
        assert sim.nodes[name].snapshot(T0 + 5).resources_stable
