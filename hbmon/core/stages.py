"""The stages of resource ownership on this node, as a transition table (spec §5.2–5.3).

    JOINING  before comm-up: groups found running are stopped (verifyallidle);
             nothing is announced
    WAITING  comm-up: `starting` is out; our own groups wait until every live
             peer's resource state is known (nice_failback, §5.3)
    RUNNING  takeovers, standby exchanges, failback and the standing rules
    LEAVING  our shutdown: every group is being released
    GONE     everything released; the node may send `shutdone`
    HANDING_OVER  our restart (core/handover.py): nothing new starts; once no
             group is starting or stopping, the held ones are handed over
    HANDED_OVER   the record is saved; the next process takes the groups as
             they run (a failed save leaves for LEAVING instead)

Every move is one row of `TRANSITIONS`; an event a stage does not list raises
`LocalTransitionError` (stage events come from our own decisions, so a refused
one is a bug here) and the stage stays. Callers that may legitimately see an
event in a stage where it means nothing ask `allows()` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from hbmon.core.machine import Table


class Stage(StrEnum):
    """Where this node's resource ownership is (see the module docstring)."""

    JOINING = "joining"
    WAITING = "waiting"
    RUNNING = "running"
    LEAVING = "leaving"
    GONE = "gone"
    HANDING_OVER = "handing_over"
    HANDED_OVER = "handed_over"


class StageInput(StrEnum):
    """The kinds of stage event, the columns of the table."""

    ANNOUNCE = "announce"  # comm-up, nothing left to verify: `starting` goes out
    PEERS_KNOWN = "peers_known"  # every live peer's groups are known: take our own
    ALONE = "alone"  # no live peer at comm-up: every group is ours to take
    PEER_LEAVING = "peer_leaving"  # a peer shuts down: take over now, waiting or not
    LEAVE = "leave"  # our own shutdown begins
    RELEASED = "released"  # our shutdown released what it could
    HAND_OVER = "hand_over"  # our restart begins: keep the groups for the next process
    HANDED = "handed"  # the handover record is saved


# ---------------------------------------------------------------- events --
def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what}: a node name must be a non-empty string, not {name!r}")


@dataclass(frozen=True, slots=True)
class Announce:
    """Comm-up, and no group found running is still being stopped."""

    kind: ClassVar[StageInput] = StageInput.ANNOUNCE


@dataclass(frozen=True, slots=True)
class PeersKnown:
    """`peers`: the live peers whose resource state is now known."""

    peers: tuple[str, ...]
    kind: ClassVar[StageInput] = StageInput.PEERS_KNOWN

    def __post_init__(self) -> None:
        if not self.peers:
            raise ValueError("PeersKnown without a live peer (that is Alone)")
        if len(set(self.peers)) != len(self.peers):
            raise ValueError(f"PeersKnown: a peer named twice in {self.peers}")
        for name in self.peers:
            _check_name("PeersKnown", name)


@dataclass(frozen=True, slots=True)
class Alone:
    """`dead`: the configured peers, none of them alive at comm-up."""

    dead: tuple[str, ...]
    kind: ClassVar[StageInput] = StageInput.ALONE

    def __post_init__(self) -> None:
        for name in self.dead:
            _check_name("Alone", name)


@dataclass(frozen=True, slots=True)
class PeerLeaving:
    """`peer` announced its shutdown."""

    peer: str
    kind: ClassVar[StageInput] = StageInput.PEER_LEAVING

    def __post_init__(self) -> None:
        _check_name("PeerLeaving", self.peer)


@dataclass(frozen=True, slots=True)
class Leave:
    """Our own shutdown begins."""

    kind: ClassVar[StageInput] = StageInput.LEAVE


@dataclass(frozen=True, slots=True)
class Released:
    """Our shutdown has released what it could (nothing is starting or stopping)."""

    kind: ClassVar[StageInput] = StageInput.RELEASED


@dataclass(frozen=True, slots=True)
class HandOver:
    """Our restart begins: what runs here is kept for the next process."""

    kind: ClassVar[StageInput] = StageInput.HAND_OVER


@dataclass(frozen=True, slots=True)
class Handed:
    """The next process has what it needs (addresses set to expire, record saved)."""

    kind: ClassVar[StageInput] = StageInput.HANDED


StageEvent = Announce | PeersKnown | Alone | PeerLeaving | Leave | Released | HandOver | Handed


# ----------------------------------------------------------------- table --
St, In = Stage, StageInput
TRANSITIONS: dict[tuple[Stage, StageInput], Stage] = {
    (St.JOINING, In.ANNOUNCE): St.WAITING,
    (St.WAITING, In.PEERS_KNOWN): St.RUNNING,
    (St.WAITING, In.ALONE): St.RUNNING,
    (St.WAITING, In.PEER_LEAVING): St.RUNNING,
    (St.RUNNING, In.PEER_LEAVING): St.RUNNING,
    (St.JOINING, In.LEAVE): St.LEAVING,
    (St.WAITING, In.LEAVE): St.LEAVING,
    (St.RUNNING, In.LEAVE): St.LEAVING,
    (St.LEAVING, In.RELEASED): St.GONE,
    (St.JOINING, In.HAND_OVER): St.HANDING_OVER,
    (St.WAITING, In.HAND_OVER): St.HANDING_OVER,
    (St.RUNNING, In.HAND_OVER): St.HANDING_OVER,
    (St.HANDING_OVER, In.HANDED): St.HANDED_OVER,
    # A stop while handing over, or a handover the driver could not save: release.
    (St.HANDING_OVER, In.LEAVE): St.LEAVING,
}
TABLE = Table("ownership stage", Stage.JOINING, TRANSITIONS)


class Stages:
    """Where this node's ownership is: one `Stage`, moved only by `fire`."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = TABLE.initial

    @property
    def state(self) -> Stage:
        return self._state

    def allows(self, kind: StageInput) -> bool:
        return TABLE.allows(self.state, kind)

    def fire(self, event: StageEvent) -> Stage:
        self._state = TABLE.next(self._state, event.kind)
        return self._state
