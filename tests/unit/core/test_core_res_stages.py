"""The ownership stage table (core/stages.py), driven by events only (h11's test_state style)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pytest

from hbmon.core import stages
from hbmon.core.stages import (
    Alone,
    Announce,
    Handed,
    HandOver,
    Leave,
    PeerLeaving,
    PeersKnown,
    Released,
    Stage,
    StageEvent,
    StageInput,
    Stages,
)
from hbmon.errors import LocalTransitionError, TransitionError

EVENTS: dict[StageInput, StageEvent] = {
    StageInput.ANNOUNCE: Announce(),
    StageInput.PEERS_KNOWN: PeersKnown(("beta",)),
    StageInput.ALONE: Alone(("beta",)),
    StageInput.PEER_LEAVING: PeerLeaving("beta"),
    StageInput.LEAVE: Leave(),
    StageInput.RELEASED: Released(),
    StageInput.HAND_OVER: HandOver(),
    StageInput.HANDED: Handed(),
}


def path_to(target: Stage) -> list[StageInput]:
    """The shortest list of inputs that leads from the initial stage to `target`."""
    paths = {stages.TABLE.initial: list[StageInput]()}
    todo = deque([stages.TABLE.initial])
    while todo:
        here = todo.popleft()
        for (src, kind), dst in stages.TRANSITIONS.items():
            if src is here and dst not in paths:
                paths[dst] = [*paths[here], kind]
                todo.append(dst)
    return paths[target]


def at(stage: Stage) -> Stages:
    s = Stages()
    for kind in path_to(stage):
        s.fire(EVENTS[kind])
    assert s.state is stage
    return s


def test_every_input_has_an_event_of_its_kind() -> None:
    assert set(EVENTS) == set(StageInput)
    assert all(ev.kind is kind for kind, ev in EVENTS.items())


def test_a_node_that_joins_runs_and_leaves() -> None:
    s = Stages()
    assert s.state is Stage.JOINING
    assert s.fire(Announce()) is Stage.WAITING
    assert s.fire(PeersKnown(("beta", "gamma"))) is Stage.RUNNING
    assert s.fire(PeerLeaving("beta")) is Stage.RUNNING  # a takeover, the stage stays
    assert s.fire(Leave()) is Stage.LEAVING
    assert s.fire(Released()) is Stage.GONE


def test_alone_or_a_leaving_peer_ends_the_wait() -> None:
    assert at(Stage.WAITING).fire(Alone(("beta",))) is Stage.RUNNING
    assert at(Stage.WAITING).fire(PeerLeaving("beta")) is Stage.RUNNING
    assert at(Stage.JOINING).fire(Leave()) is Stage.LEAVING  # shut down before comm-up


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("kind", list(StageInput))
def test_only_listed_events_move_a_stage(stage: Stage, kind: StageInput) -> None:
    s = at(stage)
    assert s.allows(kind) == ((stage, kind) in stages.TRANSITIONS)
    if s.allows(kind):
        assert s.fire(EVENTS[kind]) is stages.TRANSITIONS[stage, kind]
        return
    with pytest.raises(LocalTransitionError) as caught:
        s.fire(EVENTS[kind])
    assert str(caught.value) == f"ownership stage: no transition from {stage} on {kind}"
    assert (caught.value.state, caught.value.event) == (stage.value, kind.value)
    assert s.state is stage  # unchanged


def test_the_error_blames_us() -> None:
    """Stage events come from our own decisions: a refused one is our bug, not a peer's."""
    assert issubclass(LocalTransitionError, TransitionError)
    with pytest.raises(LocalTransitionError):
        Stages().fire(Released())


def test_a_restart_hands_over_from_any_stage_before_leaving() -> None:
    """core/handover.py: a restart keeps the groups for the next process; a stop (or a
    handover that could not be saved) while handing over releases them after all."""
    for stage in (Stage.JOINING, Stage.WAITING, Stage.RUNNING):
        s = at(stage)
        assert s.fire(HandOver()) is Stage.HANDING_OVER
        assert s.fire(Handed()) is Stage.HANDED_OVER
    s = at(Stage.HANDING_OVER)
    assert s.fire(Leave()) is Stage.LEAVING
    for stage in (Stage.LEAVING, Stage.GONE, Stage.HANDED_OVER):
        assert not at(stage).allows(StageInput.HAND_OVER)


def test_every_stage_is_reachable_and_every_road_ends_gone_or_handed_over() -> None:
    assert {s for s in Stage if path_to(s) or s is stages.TABLE.initial} == set(Stage)
    outgoing = {src for src, _ in stages.TRANSITIONS}
    # The process ends in one of these: it released everything, or handed it over.
    assert set(Stage) - outgoing == {Stage.GONE, Stage.HANDED_OVER}
    for stage in set(Stage) - {Stage.GONE, Stage.HANDED_OVER}:
        s = at(stage)
        if s.allows(StageInput.LEAVE):
            s.fire(Leave())
        assert s.fire(Released()) is Stage.GONE


@pytest.mark.parametrize(
    "build",
    [
        lambda: PeersKnown(()),
        lambda: PeersKnown(("beta", "beta")),
        lambda: PeersKnown(("",)),
        lambda: Alone(("beta", "")),
        lambda: PeerLeaving(""),
    ],
)
def test_events_are_checked_when_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"^(PeersKnown|Alone|PeerLeaving)"):
        build()


def test_events_are_frozen() -> None:
    ev = PeerLeaving("beta")
    with pytest.raises(AttributeError):
        ev.peer = "gamma"  # type: ignore[misc]
