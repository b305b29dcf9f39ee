"""core/fencing.py: the fence machine's table, the book that drives it, and the pure
decisions (reset or not, how long to wait first), from hand-built snapshots."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from coretools import make_config
from factstools import facts, free, group, peer

from hbmon.config.model import (
    Config,
    FenceDevice,
    FenceKind,
    FencingSettings,
    HbmonSettings,
)
from hbmon.core.events import FenceDone, FenceNode, FenceResult, ResourceLog
from hbmon.core.facts import NoReset, Reset, info
from hbmon.core.fencing import (
    CLEARED,
    PENDING,
    TABLE,
    TRANSITIONS,
    FenceBook,
    FenceInput,
    FenceState,
    fence_delay_s,
    stonith_head,
)
from hbmon.core.takeover import pending, reset_delay, reset_gate
from hbmon.errors import LocalTransitionError

SWITCH = FenceDevice(FenceKind.STONITH, "external/lab", params="x")


def config(node: str = "alpha", nodes: tuple[str, ...] = ("alpha", "beta"), **kw: object) -> Config:
    cfg = make_config(node, nodes)
    settings = FencingSettings(retry_initial_ms=5000, retry_max_ms=20000, **kw)  # type: ignore[arg-type]
    return dataclasses.replace(cfg, fencing=(SWITCH,), hbmon=HbmonSettings(fencing=settings))


# ------------------------------------------------------------------ table --
def test_every_state_is_reachable_and_anything_else_raises() -> None:
    assert set(TRANSITIONS.values()) | {TABLE.initial} == set(FenceState)
    for state, kind in itertools.product(FenceState, FenceInput):
        if (state, kind) in TRANSITIONS:
            continue
        with pytest.raises(LocalTransitionError):
            TABLE.next(state, kind)
    # heard again: from every state the peer returns to idle, except a running attempt
    assert {s for s in FenceState if TABLE.allows(s, FenceInput.BACK)} == set(FenceState) - {
        FenceState.ABANDONED
    }
    assert TABLE.next(FenceState.RESETTING, FenceInput.BACK) is FenceState.ABANDONED
    assert not PENDING & CLEARED


def test_stonith_message_is_heartbeats() -> None:
    head = stonith_head("solr2", FenceResult.NOT_CONFIGURED)
    assert [(f.name, f.text) for f in head] == [
        ("t", "stonith"),
        ("node", "solr2"),
        ("result", "n_stnth"),
    ]


# ------------------------------------------------------------------- book --
def test_a_reset_without_delay_starts_at_once_and_ok_clears_it() -> None:
    book = FenceBook(config())
    assert book.fenceable == frozenset({"beta"})
    assert book.plan("beta", 0.0, 10.0) == [FenceNode("beta", 1)]
    assert book.state("beta") is FenceState.RESETTING
    assert book.next_deadline() is None
    state, lines = book.done(FenceDone("beta", FenceResult.OK, "external/lab"), 11.0)
    assert (state, lines) == (FenceState.RESET, [])
    (view,) = book.views()
    assert (view.node, view.state, view.attempts, view.failures, view.since) == (
        "beta",
        FenceState.RESET,
        1,
        0,
        10.0,
    )


def test_a_delayed_reset_waits_then_fails_and_backs_off_doubling_to_the_cap() -> None:
    book = FenceBook(config())
    said = book.plan("beta", 10.0, 0.0)
    assert said == [
        ResourceLog(
            "info", "Resetting node beta in 10 s (fencing delay), unless it is heard again."
        )
    ]
    assert book.next_deadline() == 10.0
    assert book.expire(9.9) == []
    now = 10.0
    waits = []
    for attempt in range(1, 6):
        assert book.expire(now) == [FenceNode("beta", attempt)]
        now += 1.0
        state, lines = book.done(FenceDone("beta", FenceResult.BAD, "external/lab"), now)
        assert state is FenceState.BACKOFF
        assert book.first_failure("beta") is (attempt == 1)
        due = book.next_deadline()
        assert due is not None
        waits.append(due - now)
        assert lines == [
            ResourceLog(
                "ERROR",
                f"STONITH of beta failed.  Retrying... (attempt {attempt + 1} in {waits[-1]:g} s)",
            )
        ]
        now = due
    assert waits == [5.0, 10.0, 20.0, 20.0, 20.0]


def test_heard_again_cancels_a_waiting_reset_and_abandons_a_running_one() -> None:
    book = FenceBook(config())
    book.plan("beta", 10.0, 0.0)
    assert book.back("beta") == [ResourceLog("info", "Reset of beta cancelled: it is heard again.")]
    assert book.state("beta") is FenceState.IDLE
    assert book.next_deadline() is None
    book.plan("beta", 0.0, 20.0)
    assert book.back("beta") == []
    assert book.state("beta") is FenceState.ABANDONED
    state, lines = book.done(FenceDone("beta", FenceResult.OK), 21.0)
    assert state is FenceState.IDLE
    assert lines == [ResourceLog("info", "Reset of beta succeeded after it was heard again.")]
    # a stray answer changes nothing
    assert book.done(FenceDone("beta", FenceResult.OK), 22.0) == (None, [])


def test_dead_again_while_the_abandoned_attempt_runs_adopts_it() -> None:
    book = FenceBook(config())
    book.plan("beta", 0.0, 0.0)
    book.back("beta")
    assert book.plan("beta", 0.0, 1.0) == [
        ResourceLog("info", "A reset of beta is already running; waiting for it.")
    ]
    assert book.state("beta") is FenceState.RESETTING
    assert book.done(FenceDone("beta", FenceResult.OK), 2.0)[0] is FenceState.RESET


def test_our_shutdown_cancels_resets_that_wait() -> None:
    book = FenceBook(config(nodes=("alpha", "beta", "gamma")))
    book.plan("beta", 10.0, 0.0)
    book.plan("gamma", 0.0, 0.0)
    assert book.stand_down() == [ResourceLog("info", "Reset of beta cancelled: shutting down.")]
    assert (book.state("beta"), book.state("gamma")) == (FenceState.IDLE, FenceState.RESETTING)
    assert book.next_deadline() is None


def test_with_an_arbitrator_a_reset_waits_for_a_key_then_its_delay() -> None:
    book = FenceBook(config(nodes=("alpha", "beta", "gamma")))
    assert book.plan("beta", 10.0, 0.0, after_key=True) == [
        ResourceLog("info", "Resetting node beta once the arbitrator gives us a group it may hold.")
    ]
    book.plan("gamma", 0.0, 0.0, after_key=True)
    assert book.state("beta") is FenceState.AWAITING_KEY in PENDING
    assert book.awaiting_key()
    assert book.next_deadline() is None  # nothing happens before the key, however long
    assert book.expire(1000.0) == []
    # the key: gamma (delay 0) at once, beta after its delay, counted from the key
    waits = "Resetting node beta in 10 s (fencing delay), unless it is heard again."
    assert book.key_won(30.0) == [ResourceLog("info", waits), FenceNode("gamma", 1)]
    assert not book.awaiting_key()
    assert book.next_deadline() == 40.0
    assert book.expire(40.0) == [FenceNode("beta", 1)]


def test_heard_again_or_our_shutdown_gives_up_a_reset_that_waits_for_a_key() -> None:
    book = FenceBook(config())
    book.plan("beta", 0.0, 0.0, after_key=True)
    assert book.back("beta") == [ResourceLog("info", "Reset of beta cancelled: it is heard again.")]
    assert book.state("beta") is FenceState.IDLE
    book.plan("beta", 0.0, 5.0, after_key=True)
    assert book.stand_down() == [ResourceLog("info", "Reset of beta cancelled: shutting down.")]
    assert book.key_won(6.0) == []


def test_spare_records_why_no_reset() -> None:
    book = FenceBook(config())
    book.spare("beta", FenceResult.UNNEEDED)
    assert book.state("beta") is FenceState.UNNEEDED
    book.back("beta")
    book.spare("beta", FenceResult.NOT_CONFIGURED)
    assert book.state("beta") is FenceState.UNPROTECTED


def test_reconfigure_keeps_known_peers_and_learns_devices() -> None:
    book = FenceBook(config())
    book.plan("beta", 5.0, 0.0)
    book.configure(dataclasses.replace(config(nodes=("alpha", "beta", "gamma")), fencing=()))
    assert book.state("beta") is FenceState.DELAYED
    assert book.state("gamma") is FenceState.IDLE
    assert book.fenceable == frozenset()


# -------------------------------------------------------------- decisions --
def test_delay_by_rank_or_as_given() -> None:
    assert fence_delay_s(config("alpha", delay_ms=7000)) == 0.0
    assert fence_delay_s(config("beta", delay_ms=7000)) == 7.0
    three = ("alpha", "beta", "gamma")
    assert fence_delay_s(config("gamma", three, delay_ms=7000)) == 14.0
    assert fence_delay_s(config("alpha", delays=(("alpha", 2500),))) == 2.5


def test_only_a_node_that_holds_something_waits_its_delay() -> None:
    holding = facts((group("mine"),), fence_delay_s=10.0)
    assert reset_delay(holding) == 10.0
    assert reset_delay(holding._replace(groups=(free("mine"),))) == 0.0


def test_gate_judges_a_death_once_as_heartbeat_does() -> None:
    f = facts((group("mine"),), fence_delay_s=10.0)
    dead = peer(alive=False, healthy=False, held=frozenset({"theirs"}))
    assert reset_gate(f, dead._replace(gave_up=True)) == (
        [info("Dead node beta gave up resources."), NoReset("beta", FenceResult.UNNEEDED)],
        True,
    )
    assert reset_gate(f, dead) == (
        [
            NoReset("beta", FenceResult.NOT_CONFIGURED),
            ResourceLog("WARN", "No STONITH device configured."),
            ResourceLog("WARN", "Shared disks are not protected."),
        ],
        True,
    )
    assert reset_gate(f, dead._replace(fenceable=True)) == ([Reset("beta", 10.0)], False)
    # with an arbitrator the groups are acquired now, and the reset waits for a key...
    arbitrated = f._replace(arbitrated=True)
    keyed = [Reset("beta", 10.0, after_key=True)]
    assert reset_gate(arbitrated, dead._replace(fenceable=True)) == (keyed, True)
    # ...unless there is nothing to take (no key to wait for): reset as heartbeat does
    alone = reset_gate(arbitrated, dead._replace(fenceable=True), to_take=False)
    assert alone == ([Reset("beta", 10.0)], False)
    for state in FenceState:
        if state is FenceState.IDLE:
            continue
        judged = dead._replace(fenceable=True, fence=state)
        assert reset_gate(f, judged) == ([], state in CLEARED)


def test_pending_looks_at_every_peer_but_the_one_named() -> None:
    resetting = peer("gamma", alive=False, healthy=False, fence=FenceState.BACKOFF)
    f = facts((), (peer(), resetting))
    assert pending(f)
    assert not pending(f, besides="gamma")
    assert not pending(facts((), (peer(),)))
