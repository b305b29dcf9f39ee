"""Exceptions, and whose fault each one is.

    HbmonError
    ├── ConfigError          ours: the configuration is unusable (carries every problem)
    ├── WireError            theirs: a datagram we drop; `reason` is its DropReason
    │   ├── MalformedPacket  not a heartbeat message (framing, lengths, missing fields)
    │   └── BadAuth          signature missing or malformed, unknown key index, or
    │                        digest mismatch (one DropReason each)
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
    """Why a datagram was dropped (the `reason` label of hbmon_packets_dropped_total)."""

    MALFORMED = "malformed"
    AUTH_MISSING = "auth_missing"  # unsigned: no auth field, or a netstring without trailer
    AUTH_MALFORMED = "auth_malformed"  # a signature that is not `N hex`
    AUTH_UNKNOWN_KEY = "auth_unknown_key"  # signed with a key index authkeys does not define
    AUTH_MISMATCH = "auth_mismatch"  # the digest does not match: another key, or altered
    UNKNOWN_NODE = "unknown_node"
    REPLAY = "replay"


# The causes of a failed authentication.
AUTH_FAILURES = frozenset(
    {
        DropReason.AUTH_MISSING,
        DropReason.AUTH_MALFORMED,
        DropReason.AUTH_UNKNOWN_KEY,
        DropReason.AUTH_MISMATCH,
    }
)


class HbmonError(Exception):
    pass


class ConfigError(HbmonError):
    pass


class WireError(HbmonError):
    reason: DropReason = DropReason.MALFORMED


class MalformedPacket(WireError):
    reason = DropReason.MALFORMED


class BadAuth(WireError):
    """A signature that does not verify; `reason` says which of AUTH_FAILURES it is."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        if reason not in AUTH_FAILURES:
            raise ValueError(f"BadAuth: {reason!r} is not an authentication failure")
        super().__init__(detail)
        self.reason = reason


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
