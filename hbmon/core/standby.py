"""heartbeat's 3-phase standby exchange (spec §5.4) as a transition table.

Requester R gives groups to peer P::

    R: me  ──────────►  P: (stable?) other
    R: releases, done ►  P: acquires, done
    R: "Other node completed standby takeover"

`hb_takeover X` from T makes the peer run the requester side with the mirrored
scope; T then answers as P. One exchange at a time; the table below is the
whole protocol, and an input a phase does not list is refused (the caller logs
and ignores the message), so a late or duplicated message never moves it.
The scope is always the requester's view, as on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hbmon.config.model import STANDBY_PHASE_TIMEOUT_MS, STANDBY_REPLY_TIMEOUT_MS
from hbmon.core.events import Scope, TakeoverReason


class Phase(StrEnum):
    IDLE = "idle"
    ASKED = "asked"  # requester: `me` sent, waiting for `other`
    RELEASING = "releasing"  # requester: our groups are stopping
    HANDED = "handed"  # requester: `done` sent, waiting for the peer's `done`
    TAKEOVER = "takeover"  # we sent hb_takeover, waiting for the peer's `me`
    OFFERED = "offered"  # responder: `other` sent, waiting for `done`
    ACQUIRING = "acquiring"  # responder: our groups are starting


class Input(StrEnum):
    REQUEST = "request"  # we go standby
    ASK_TAKEOVER = "ask_takeover"  # we send hb_takeover
    GOT_ME = "me"
    GOT_OTHER = "other"
    GOT_DONE = "done"
    RELEASED = "released"  # our groups in scope are stopped
    ACQUIRED = "acquired"  # our groups in scope are started
    TIMEOUT = "timeout"
    ABORT = "abort"  # peer lost, shutdown


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


class Refused(Exception):
    """The input is not valid in the current phase."""


@dataclass(slots=True)
class Standby:
    """The one exchange in progress (or IDLE) and what it is about."""

    phase: Phase = Phase.IDLE
    peer: str | None = None
    scope: Scope = Scope.NONE  # requester's view
    keys: frozenset[str] = frozenset()  # groups it moves
    why: TakeoverReason = TakeoverReason.STANDBY
    request_id: int | None = None  # control request waiting for the outcome
    deadline: float | None = None
    started_at: float | None = None

    @property
    def idle(self) -> bool:
        return self.phase is Phase.IDLE

    @property
    def requester(self) -> bool:
        return self.phase in (Phase.ASKED, Phase.RELEASING, Phase.HANDED)

    def allows(self, inp: Input) -> bool:
        return (self.phase, inp) in TRANSITIONS

    def fire(self, inp: Input, now: float) -> Phase:
        new = TRANSITIONS.get((self.phase, inp))
        if new is None:
            raise Refused(f"{inp} in phase {self.phase}")
        self.phase = new
        timeout = TIMEOUTS[new]
        self.deadline = None if timeout is None else now + timeout
        if new is Phase.IDLE:
            self.peer, self.request_id, self.started_at = None, None, None
            self.keys, self.scope = frozenset(), Scope.NONE
        elif self.started_at is None:
            self.started_at = now
        return new

    def seconds_left(self, now: float) -> int:
        return 0 if self.deadline is None else max(0, round(self.deadline - now))

    def timed_out(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline
