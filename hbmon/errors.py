"""Exceptions, and whose fault each one is.

    HbmonError
    ├── ConfigError          ours: the configuration is unusable (carries every problem)
    ├── WireError            theirs: a datagram we drop; `reason` is its DropReason
    │   ├── MalformedPacket  not a heartbeat message (framing, lengths, missing fields)
    │   └── BadAuth          signature missing, unknown key index, or digest mismatch
    └── StartupError         the host refuses what we need (interface, port, privileges)

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
