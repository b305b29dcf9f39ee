"""Node and link liveness as transition tables (spec §4.3–4.5, §5.1).

A peer is INIT until first heard, then UP or ACTIVE (the `st` of its latest
new status), DEAD once silent for its dead interval (initdead before comm-up)
or after it said `shutdone`, and alive again with its next new status. A link
(peer, interface) is DEAD until a packet arrives on it, UP until the same
dead interval passes without one.

Every move is one row of `NODE_TRANSITIONS` / `LINK_TRANSITIONS`. Events are
built by core/membership.py from its own deadlines and from the peer's
messages, validated when built; an event a state does not list raises
`LocalTransitionError` (membership asks `allows()` first where an event may
legitimately mean nothing, e.g. `shutdone` from a peer already dead) and the
state stays. A node event also carries the reason that ends up in the log line
and in the `reason` label of `hbmon_node_transitions_total`; `REASONS` lists
which reasons each row may carry, so the metrics can show every possible series
at 0 from the first scrape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from hbmon.core.events import DeathReason, LinkStatus, NodeStatus, TransitionReason
from hbmon.core.machine import Table
from hbmon.errors import LocalTransitionError


class NodeInput(StrEnum):
    """The kinds of node liveness event, the columns of the node table."""

    STATUS_UP = "status_up"  # a new status whose `st` is not active
    STATUS_ACTIVE = "status_active"  # a new status with st=active
    SILENT = "silent"  # its dead interval passed without a new status
    NEVER_HEARD = "never_heard"  # initdead passed and it was never heard
    SHUTDONE = "shutdone"  # it announced its shutdown


class LinkInput(StrEnum):
    """The kinds of link liveness event."""

    PACKET = "packet"  # any packet from the peer arrived on this interface
    SILENT = "silent"  # the peer's dead interval passed without one


# ---------------------------------------------------------------- events --
_HEARD_REASONS = frozenset(
    {
        TransitionReason.HEARD,
        TransitionReason.STATUS,
        TransitionReason.RESTARTED,
        TransitionReason.RETURNED,
    }
)


@dataclass(frozen=True, slots=True)
class Heard:
    """A new status from the peer; `active`: it says st=active."""

    active: bool
    reason: TransitionReason

    def __post_init__(self) -> None:
        if not isinstance(self.active, bool):
            raise ValueError(f"Heard: active must be a bool, not {self.active!r}")
        if self.reason not in _HEARD_REASONS:
            raise ValueError(f"Heard: {self.reason!r} is not a reason to be heard")

    @property
    def kind(self) -> NodeInput:
        return NodeInput.STATUS_ACTIVE if self.active else NodeInput.STATUS_UP


@dataclass(frozen=True, slots=True)
class Silent:
    """The peer's dead interval passed since its last new status."""

    kind: ClassVar[NodeInput] = NodeInput.SILENT
    reason: ClassVar[TransitionReason] = TransitionReason.TIMEOUT
    death: ClassVar[DeathReason] = DeathReason.TIMEOUT


@dataclass(frozen=True, slots=True)
class NeverHeard:
    """initdead passed and the peer was never heard."""

    kind: ClassVar[NodeInput] = NodeInput.NEVER_HEARD
    reason: ClassVar[TransitionReason] = TransitionReason.INITDEAD
    death: ClassVar[DeathReason] = DeathReason.INITDEAD


@dataclass(frozen=True, slots=True)
class SaidGoodbye:
    """The peer's `shutdone`: it stops, and its silence from now on is not late."""

    kind: ClassVar[NodeInput] = NodeInput.SHUTDONE
    reason: ClassVar[TransitionReason] = TransitionReason.SHUTDOWN
    death: ClassVar[DeathReason] = DeathReason.SHUTDOWN


NodeEvent = Heard | Silent | NeverHeard | SaidGoodbye
Death = Silent | NeverHeard | SaidGoodbye


# ---------------------------------------------------------------- tables --
N, In = NodeStatus, NodeInput
NODE_TRANSITIONS: dict[tuple[NodeStatus, NodeInput], NodeStatus] = {
    (N.INIT, In.STATUS_UP): N.UP,
    (N.INIT, In.STATUS_ACTIVE): N.ACTIVE,
    (N.INIT, In.NEVER_HEARD): N.DEAD,
    (N.INIT, In.SHUTDONE): N.DEAD,
    (N.UP, In.STATUS_UP): N.UP,
    (N.UP, In.STATUS_ACTIVE): N.ACTIVE,
    (N.UP, In.SILENT): N.DEAD,
    (N.UP, In.SHUTDONE): N.DEAD,
    (N.ACTIVE, In.STATUS_ACTIVE): N.ACTIVE,
    (N.ACTIVE, In.STATUS_UP): N.UP,
    (N.ACTIVE, In.SILENT): N.DEAD,
    (N.ACTIVE, In.SHUTDONE): N.DEAD,
    (N.DEAD, In.STATUS_UP): N.UP,
    (N.DEAD, In.STATUS_ACTIVE): N.ACTIVE,
}
NODE_TABLE = Table(
    "node liveness", NodeStatus.INIT, NODE_TRANSITIONS, used=(N.INIT, N.UP, N.ACTIVE, N.DEAD)
)

R = TransitionReason
_ALIVE_AGAIN = frozenset({R.HEARD, R.RESTARTED, R.RETURNED})
_STATUS = frozenset({R.STATUS, R.RESTARTED})
# The reasons each row may carry. From INIT a peer is only ever heard for the first
# time; back from DEAD it was heard after a clean shutdown, restarted (a higher
# generation) or returned (the same generation: a partition healed).
REASONS: Mapping[tuple[NodeStatus, NodeInput], frozenset[TransitionReason]] = {
    **{(state, kind): _STATUS for (state, kind) in NODE_TRANSITIONS if state in (N.UP, N.ACTIVE)},
    (N.INIT, In.STATUS_UP): frozenset({R.HEARD}),
    (N.INIT, In.STATUS_ACTIVE): frozenset({R.HEARD}),
    (N.DEAD, In.STATUS_UP): _ALIVE_AGAIN,
    (N.DEAD, In.STATUS_ACTIVE): _ALIVE_AGAIN,
    (N.INIT, In.NEVER_HEARD): frozenset({R.INITDEAD}),
    (N.INIT, In.SHUTDONE): frozenset({R.SHUTDOWN}),
    (N.UP, In.SILENT): frozenset({R.TIMEOUT}),
    (N.UP, In.SHUTDONE): frozenset({R.SHUTDOWN}),
    (N.ACTIVE, In.SILENT): frozenset({R.TIMEOUT}),
    (N.ACTIVE, In.SHUTDONE): frozenset({R.SHUTDOWN}),
}

L = LinkStatus
LINK_TRANSITIONS: dict[tuple[LinkStatus, LinkInput], LinkStatus] = {
    (L.DEAD, LinkInput.PACKET): L.UP,
    (L.UP, LinkInput.PACKET): L.UP,
    (L.UP, LinkInput.SILENT): L.DEAD,
}
LINK_TABLE = Table("link liveness", LinkStatus.DEAD, LINK_TRANSITIONS)


def changes() -> Iterator[tuple[NodeStatus, NodeStatus, TransitionReason]]:
    """Every (from, to, reason) a node transition can show, in table order."""
    for (state, kind), new in NODE_TRANSITIONS.items():
        if new is not state:
            for reason in sorted(REASONS[(state, kind)]):
                yield state, new, reason


def next_status(state: NodeStatus, event: NodeEvent) -> NodeStatus:
    """The status `event` leads to from `state`; `LocalTransitionError` if the table
    has no such row or the row does not carry the event's reason."""
    new = NODE_TABLE.next(state, event.kind)
    if event.reason not in REASONS[(state, event.kind)]:
        raise LocalTransitionError(NODE_TABLE.name, state.value, f"{event.kind} ({event.reason})")
    return new
