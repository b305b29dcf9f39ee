"""heartbeat's 3-phase standby exchange (spec §5.4) as a transition table.

Requester R gives groups to peer P::

    R: me  ──────────►  P: (stable?) other
    R: releases, done ►  P: acquires, done
    R: "Other node completed standby takeover"

`hb_takeover X` from T makes the peer run the requester side with the mirrored
scope; T then answers as P. One exchange at a time; the table below is the
whole protocol, and an input a phase does not list raises a TransitionError
(blame in the type: `PeerTransitionError` for the peer's `me`/`other`/`done`,
`LocalTransitionError` for our own inputs) and leaves the phase as it was. The
callers check the phase before they fire a peer's message, so a late or
duplicated message is logged and ignored, never moves it.

Each input is a frozen event, validated when built, that carries what the
exchange is about; `Standby.fire` is the only place its fields change.
The scope is always the requester's view, as on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from hbmon.config.model import STANDBY_PHASE_TIMEOUT_MS, STANDBY_REPLY_TIMEOUT_MS
from hbmon.core.events import Scope, TakeoverReason
from hbmon.core.machine import Table
from hbmon.errors import LocalTransitionError, PeerTransitionError, TransitionError


class Phase(StrEnum):
    """Where the exchange is; sent to hbmon peers in our reports."""

    IDLE = "idle"
    ASKED = "asked"  # requester: `me` sent, waiting for `other`
    RELEASING = "releasing"  # requester: our groups are stopping
    HANDED = "handed"  # requester: `done` sent, waiting for the peer's `done`
    TAKEOVER = "takeover"  # we sent hb_takeover, waiting for the peer's `me`
    OFFERED = "offered"  # responder: `other` sent, waiting for `done`
    ACQUIRING = "acquiring"  # responder: our groups are starting


class Input(StrEnum):
    """The kinds of standby event, the columns of the table."""

    REQUEST = "request"  # we go standby
    ASK_TAKEOVER = "ask_takeover"  # we send hb_takeover
    GOT_ME = "me"
    GOT_OTHER = "other"
    GOT_DONE = "done"
    RELEASED = "released"  # our groups in scope are stopped
    ACQUIRED = "acquired"  # our groups in scope are started
    TIMEOUT = "timeout"
    ABORT = "abort"  # peer lost, shutdown


# ---------------------------------------------------------------- events --
# The reasons our own side starts an exchange for (a peer's `me` may carry any).
OUR_REASONS = frozenset(
    {
        TakeoverReason.STANDBY,
        TakeoverReason.TAKEOVER,
        TakeoverReason.FAILBACK,
        TakeoverReason.PING_QUORUM,
    }
)


def _check_peer(what: str, peer: str) -> None:
    if not isinstance(peer, str) or not peer:
        raise ValueError(f"{what}: the peer must be a non-empty node name, not {peer!r}")


def _check_keys(what: str, keys: object) -> None:
    if not isinstance(keys, frozenset) or not all(isinstance(k, str) and k for k in keys):
        raise ValueError(f"{what}: keys must be a frozenset of group keys, not {keys!r}")


def _check_count(what: str, name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 0):
        raise ValueError(f"{what}: {name} must be a count >= 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class Request:
    """We go standby: ask `peer` to take `keys` (the requester's `scope`)."""

    peer: str
    scope: Scope
    keys: frozenset[str]
    why: TakeoverReason
    request_id: int | None = None  # the control request waiting for the outcome
    kind: ClassVar[Input] = Input.REQUEST

    def __post_init__(self) -> None:
        _check_peer("Request", self.peer)
        _check_keys("Request", self.keys)
        _check_count("Request", "request_id", self.request_id)
        if self.why not in OUR_REASONS:
            raise ValueError(f"Request: {self.why} does not start a standby exchange")


@dataclass(frozen=True, slots=True)
class AskTakeover:
    """We send hb_takeover: `peer` is to stand by `scope` (its view) and give us `keys`."""

    peer: str
    scope: Scope
    keys: frozenset[str]
    request_id: int | None = None
    kind: ClassVar[Input] = Input.ASK_TAKEOVER

    def __post_init__(self) -> None:
        _check_peer("AskTakeover", self.peer)
        _check_keys("AskTakeover", self.keys)
        _check_count("AskTakeover", "request_id", self.request_id)


@dataclass(frozen=True, slots=True)
class GotMe:
    """The peer's `me`: it goes standby and offers us `keys`.

    `mark`: how many reports we had applied from it then; only a later report is
    news about how the exchange goes on there.
    """

    peer: str
    scope: Scope
    keys: frozenset[str]
    why: TakeoverReason
    mark: int
    request_id: int | None = None
    kind: ClassVar[Input] = Input.GOT_ME

    def __post_init__(self) -> None:
        _check_peer("GotMe", self.peer)
        _check_keys("GotMe", self.keys)
        _check_count("GotMe", "mark", self.mark)
        _check_count("GotMe", "request_id", self.request_id)


@dataclass(frozen=True, slots=True)
class GotOther:
    """The peer's `other`: it can take what we offered (`mark` as in GotMe)."""

    mark: int
    kind: ClassVar[Input] = Input.GOT_OTHER

    def __post_init__(self) -> None:
        _check_count("GotOther", "mark", self.mark)


@dataclass(frozen=True, slots=True)
class GotDone:
    """The peer's `done`; as responder, `keys` are the groups we now acquire."""

    keys: frozenset[str] | None = None
    kind: ClassVar[Input] = Input.GOT_DONE

    def __post_init__(self) -> None:
        if self.keys is not None:
            _check_keys("GotDone", self.keys)


@dataclass(frozen=True, slots=True)
class GroupsReleased:
    """Our groups in scope are stopped; `failed` are those whose stop failed."""

    failed: frozenset[str] = frozenset()
    kind: ClassVar[Input] = Input.RELEASED

    def __post_init__(self) -> None:
        _check_keys("GroupsReleased", self.failed)


@dataclass(frozen=True, slots=True)
class GroupsAcquired:
    """Our groups in scope are started (or failed to)."""

    kind: ClassVar[Input] = Input.ACQUIRED


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The phase waited for the peer too long."""

    kind: ClassVar[Input] = Input.TIMEOUT


@dataclass(frozen=True, slots=True)
class Abort:
    """The peer is lost or we shut down."""

    kind: ClassVar[Input] = Input.ABORT


StandbyEvent = (
    Request
    | AskTakeover
    | GotMe
    | GotOther
    | GotDone
    | GroupsReleased
    | GroupsAcquired
    | TimedOut
    | Abort
)
FROM_PEER = frozenset({Input.GOT_ME, Input.GOT_OTHER, Input.GOT_DONE})


# ----------------------------------------------------------------- table --
P, In = Phase, Input
TRANSITIONS: dict[tuple[Phase, Input], Phase] = {
    (P.IDLE, In.REQUEST): P.ASKED,
    (P.IDLE, In.ASK_TAKEOVER): P.TAKEOVER,
    (P.IDLE, In.GOT_ME): P.OFFERED,
    (P.TAKEOVER, In.GOT_ME): P.OFFERED,
    (P.ASKED, In.GOT_OTHER): P.RELEASING,
    (P.RELEASING, In.RELEASED): P.HANDED,
    (P.HANDED, In.GOT_DONE): P.IDLE,
    (P.OFFERED, In.GOT_DONE): P.ACQUIRING,
    (P.ACQUIRING, In.ACQUIRED): P.IDLE,
    (P.ASKED, In.TIMEOUT): P.IDLE,
    (P.TAKEOVER, In.TIMEOUT): P.IDLE,
    (P.HANDED, In.TIMEOUT): P.IDLE,
    (P.OFFERED, In.TIMEOUT): P.IDLE,
    **{(p, In.ABORT): P.IDLE for p in Phase},
}
TABLE = Table("standby exchange", Phase.IDLE, TRANSITIONS)

# How long a phase waits for the peer (None: it waits for our own groups).
TIMEOUTS: dict[Phase, float | None] = {
    P.IDLE: None,
    P.ASKED: STANDBY_REPLY_TIMEOUT_MS / 1000,
    P.TAKEOVER: STANDBY_REPLY_TIMEOUT_MS / 1000,
    P.RELEASING: None,
    P.HANDED: STANDBY_PHASE_TIMEOUT_MS / 1000,
    P.OFFERED: STANDBY_PHASE_TIMEOUT_MS / 1000,
    P.ACQUIRING: None,
}


def blame(kind: Input) -> type[TransitionError]:
    return PeerTransitionError if kind in FROM_PEER else LocalTransitionError


@dataclass(slots=True)
class Standby:
    """The one exchange in progress (or IDLE) and what it is about; moved only by `fire`."""

    phase: Phase = Phase.IDLE
    peer: str | None = None
    scope: Scope = Scope.NONE  # requester's view
    keys: frozenset[str] = frozenset()  # groups it moves
    why: TakeoverReason = TakeoverReason.STANDBY
    request_id: int | None = None  # control request waiting for the outcome
    deadline: float | None = None
    started_at: float | None = None
    failed: frozenset[str] = frozenset()  # requester: groups whose stop failed
    mark: int = 0  # the peer's report count when our wait on it began

    @property
    def idle(self) -> bool:
        return self.phase is Phase.IDLE

    @property
    def requester(self) -> bool:
        return self.phase in (Phase.ASKED, Phase.RELEASING, Phase.HANDED)

    def allows(self, kind: Input) -> bool:
        return TABLE.allows(self.phase, kind)

    def fire(self, event: StandbyEvent, now: float) -> Phase:
        new = TABLE.next(self.phase, event.kind, blame(event.kind))
        self.phase = new
        timeout = TIMEOUTS[new]
        self.deadline = None if timeout is None else now + timeout
        if new is Phase.IDLE:
            self.peer, self.request_id, self.started_at = None, None, None
            self.keys, self.scope, self.failed = frozenset(), Scope.NONE, frozenset()
            self.why = TakeoverReason.STANDBY
            return new
        if self.started_at is None:
            self.started_at = now
        match event:
            case Request(peer, scope, keys, why, request_id):
                self._about(peer, scope, keys, why, request_id)
            case AskTakeover(peer, scope, keys, request_id):
                self._about(peer, scope, keys, TakeoverReason.TAKEOVER, request_id)
            case GotMe(peer, scope, keys, why, mark, request_id):
                self._about(peer, scope, keys, why, request_id)
                self.mark = mark
            case GotOther(mark):
                self.mark = mark
            case GotDone(keys) if keys is not None:
                self.keys = keys
            case GroupsReleased(failed):
                self.failed = failed
            case _:
                pass
        return new

    def _about(
        self,
        peer: str,
        scope: Scope,
        keys: frozenset[str],
        why: TakeoverReason,
        request_id: int | None,
    ) -> None:
        self.peer = peer
        self.scope = scope
        self.keys = keys
        self.why = why
        self.request_id = request_id

    def seconds_left(self, now: float) -> int:
        return 0 if self.deadline is None else max(0, round(self.deadline - now))

    def timed_out(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline
