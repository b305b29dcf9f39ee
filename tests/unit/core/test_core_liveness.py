"""The node and link liveness tables (core/liveness.py), driven by events only."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hbmon.core import liveness
from hbmon.core.events import LinkStatus, NodeStatus, TransitionReason
from hbmon.core.liveness import (
    LINK_TABLE,
    NODE_TABLE,
    NODE_TRANSITIONS,
    REASONS,
    Heard,
    LinkInput,
    NeverHeard,
    NodeEvent,
    NodeInput,
    SaidGoodbye,
    Silent,
    next_status,
)
from hbmon.errors import LocalTransitionError

LIVENESS = (NodeStatus.INIT, NodeStatus.UP, NodeStatus.ACTIVE, NodeStatus.DEAD)
R = TransitionReason


HEARD_REASONS = (R.HEARD, R.STATUS, R.RESTARTED, R.RETURNED)


def events(kind: NodeInput) -> list[NodeEvent]:
    """Every event of `kind` (a status may come for any of the hearing reasons)."""
    match kind:
        case NodeInput.STATUS_UP:
            return [Heard(False, r) for r in HEARD_REASONS]
        case NodeInput.STATUS_ACTIVE:
            return [Heard(True, r) for r in HEARD_REASONS]
        case NodeInput.SILENT:
            return [Silent()]
        case NodeInput.NEVER_HEARD:
            return [NeverHeard()]
        case NodeInput.SHUTDONE:
            return [SaidGoodbye()]


def test_a_peer_heard_then_lost_then_back() -> None:
    s = NodeStatus.INIT
    s = next_status(s, Heard(False, R.HEARD))
    assert s is NodeStatus.UP
    s = next_status(s, Heard(True, R.STATUS))
    assert s is NodeStatus.ACTIVE
    s = next_status(s, Silent())
    assert s is NodeStatus.DEAD
    assert next_status(s, Heard(True, R.RETURNED)) is NodeStatus.ACTIVE
    assert next_status(s, Heard(False, R.RESTARTED)) is NodeStatus.UP


@pytest.mark.parametrize("state", LIVENESS)
@pytest.mark.parametrize("kind", list(NodeInput))
def test_only_listed_events_move_a_peer(state: NodeStatus, kind: NodeInput) -> None:
    listed = (state, kind) in NODE_TRANSITIONS
    assert NODE_TABLE.allows(state, kind) == listed
    for ev in events(kind):
        assert ev.kind is kind
        if listed and ev.reason in REASONS[(state, kind)]:
            assert next_status(state, ev) is NODE_TRANSITIONS[(state, kind)]
            continue
        with pytest.raises(LocalTransitionError) as caught:
            next_status(state, ev)
        assert caught.value.machine == "node liveness"
        assert caught.value.state == state.value


def test_a_peer_said_goodbye_is_not_dead_twice() -> None:
    """A `shutdone` from a peer already dead has no row: membership asks first."""
    assert not NODE_TABLE.allows(NodeStatus.DEAD, NodeInput.SHUTDONE)
    with pytest.raises(LocalTransitionError):
        next_status(NodeStatus.DEAD, SaidGoodbye())


def test_a_peer_is_heard_first_and_only_then_can_be_back() -> None:
    for reason in (R.STATUS, R.RESTARTED, R.RETURNED):
        with pytest.raises(LocalTransitionError):
            next_status(NodeStatus.INIT, Heard(True, reason))
    with pytest.raises(LocalTransitionError):
        next_status(NodeStatus.ACTIVE, Heard(True, R.RETURNED))  # it was never gone


def test_deaths_carry_their_reason() -> None:
    assert (Silent().reason, Silent().death.value) == (R.TIMEOUT, "timeout")
    assert (NeverHeard().reason, NeverHeard().death.value) == (R.INITDEAD, "initdead")
    assert (SaidGoodbye().reason, SaidGoodbye().death.value) == (R.SHUTDOWN, "shutdown")
    with pytest.raises(LocalTransitionError):
        next_status(NodeStatus.UP, NeverHeard())  # initdead is only for the never heard


@pytest.mark.parametrize(
    "build",
    [
        lambda: Heard(True, R.TIMEOUT),
        lambda: Heard(False, R.SHUTDOWN),
        lambda: Heard(1, R.HEARD),  # type: ignore[arg-type]
    ],
)
def test_events_are_checked_when_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"^Heard"):
        build()


def test_every_row_has_reasons_and_every_reason_a_row() -> None:
    assert set(REASONS) == set(NODE_TRANSITIONS)
    used = {r for rs in REASONS.values() for r in rs}
    assert used == set(TransitionReason)


def test_changes_list_each_possible_series_once() -> None:
    changes = list(liveness.changes())
    assert len(changes) == len(set(changes)) == 18
    assert all(a is not b for a, b, _ in changes)  # staying is not a change
    assert (NodeStatus.ACTIVE, NodeStatus.DEAD, R.TIMEOUT) in changes
    assert (NodeStatus.DEAD, NodeStatus.ACTIVE, R.RETURNED) in changes
    assert (NodeStatus.INIT, NodeStatus.UP, R.RESTARTED) not in changes


def test_every_state_is_reachable_and_none_is_terminal() -> None:
    reached = {NODE_TABLE.initial} | set(NODE_TRANSITIONS.values())
    assert reached == set(LIVENESS) == set(NODE_TABLE.states())
    assert {s for s, _ in NODE_TRANSITIONS} == set(LIVENESS)  # a dead peer can return


@pytest.mark.parametrize("state", list(LinkStatus))
@pytest.mark.parametrize("kind", list(LinkInput))
def test_link_table(state: LinkStatus, kind: LinkInput) -> None:
    want = {
        (LinkStatus.DEAD, LinkInput.PACKET): LinkStatus.UP,
        (LinkStatus.UP, LinkInput.PACKET): LinkStatus.UP,
        (LinkStatus.UP, LinkInput.SILENT): LinkStatus.DEAD,
    }
    if (state, kind) in want:
        assert LINK_TABLE.next(state, kind) is want[(state, kind)]
    else:
        with pytest.raises(LocalTransitionError):
            LINK_TABLE.next(state, kind)
