"""Exceptions, and whose fault each one is.

    HbmonError
    ├── ConfigError          ours: the configuration is unusable (carries every problem)
    ├── WireError            theirs: a datagram we drop; `reason` is its DropReason
    │   ├── MalformedPacket  not a heartbeat message (framing, lengths, missing fields)
    │   └── BadAuth          signature missing, unknown key index, or digest mismatch
    ├── StartupError         the host refuses what we need (interface, port, privileges)
    └── TransitionError      a state machine was given an event its table does not allow
        ├── LocalTransitionError  ours: our own code fired it (a bug here)
        └── PeerTransitionError   theirs: a peer's message asked for it

A TransitionError leaves the machine in the state it was in.

Replays and unknown senders are not exceptions: the sans-IO core returns them as
`PacketDropped` notices, because deciding them needs per-peer state.
"""

from __future__ import annotations

from enum import StrEnum


class DropReason(StrEnum):
    MALFORMED = "malformed"
    AUTH_FAILED = "auth_failed"
    UNKNOWN_NODE = "unknown_node"
    REPLAY = "replay"


class HbmonError(Exception):
    pass


class ConfigError(HbmonError):
    pass


class WireError(HbmonError):
    reason: DropReason = DropReason.MALFORMED


class MalformedPacket(WireError):
    reason = DropReason.MALFORMED


class BadAuth(WireError):
    reason = DropReason.AUTH_FAILED


class StartupError(HbmonError):
    pass


class TransitionError(HbmonError):
    """An event that the machine's table does not allow in its current state."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: no transition from {state} on {event}")
        self.machine, self.state, self.event = machine, state, event


class LocalTransitionError(TransitionError):
    pass


class PeerTransitionError(TransitionError):
    pass
