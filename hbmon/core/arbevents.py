"""The arbitrator's traffic with the core: requests out, answers in, notices.

The core never talks to etcd: it emits a request (`GrantLease`, `RenewLease`,
`ClaimKey`, `ReleaseKey`, `RevokeLease`), each with a number; the driver runs
it (hbmon/io/arbiter.py) and feeds the answer back as an event carrying the
same number. An answer whose number the core no longer waits for is ignored.
Time is the core's own: it notes when a request left and measures the answer
against that, on the same clock it gets every `now` from.
"""

from __future__ import annotations

from dataclasses import dataclass


# ---------------------------------------------------------------- requests --
@dataclass(frozen=True, slots=True)
class GrantLease:
    request: int
    ttl_s: int


@dataclass(frozen=True, slots=True)
class RenewLease:
    request: int
    lease: int


@dataclass(frozen=True, slots=True)
class ClaimKey:
    """Put the group's key with our name and generation under `lease` if nobody holds
    it, or, with `over`, if it is still at that revision (our own earlier incarnation's)."""

    request: int
    group: str
    lease: int
    over: int | None = None


@dataclass(frozen=True, slots=True)
class ReleaseKey:
    """Delete the group's key if it still says it is ours (under `lease`)."""

    request: int
    group: str
    lease: int


@dataclass(frozen=True, slots=True)
class RevokeLease:
    """Our shutdown: end the lease, which deletes every key still under it."""

    request: int
    lease: int


ArbiterRequest = GrantLease | RenewLease | ClaimKey | ReleaseKey | RevokeLease


# ----------------------------------------------------------------- answers --
@dataclass(frozen=True, slots=True)
class LeaseGranted:
    request: int
    lease: int
    ttl_s: int  # what etcd granted (it raises a TTL below its minimum)


@dataclass(frozen=True, slots=True)
class LeaseRenewed:
    request: int
    ttl_s: int  # 0: etcd no longer knows the lease (it expired)


@dataclass(frozen=True, slots=True)
class KeyClaimed:
    """`won`, or who holds the key: `holder` None when its value is not hbmon's."""

    request: int
    won: bool
    holder: str | None = None
    generation: int | None = None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class KeyReleased:
    request: int
    released: bool  # False: the key no longer said it was ours (gone or someone else's)


@dataclass(frozen=True, slots=True)
class ArbiterFailed:
    """No etcd member answered the request in time (or the answer was unusable)."""

    request: int
    error: str


ArbiterAnswer = LeaseGranted | LeaseRenewed | KeyClaimed | KeyReleased | ArbiterFailed


# ----------------------------------------------------------------- notices --
@dataclass(frozen=True, slots=True)
class ArbiterReachability:
    """etcd answered again (`reachable`), or a request to it failed after answers."""

    reachable: bool
    detail: str


@dataclass(frozen=True, slots=True)
class LeaseRenewal:
    """A renewal answered: how long it took (sent to answered, on the core's clock)."""

    latency_s: float
    ttl_s: int


@dataclass(frozen=True, slots=True)
class LeaseChange:
    """Our lease: a new one (`lease`, `ttl_s`), or lost (`lease` None) and why."""

    lease: int | None
    ttl_s: int
    detail: str


@dataclass(frozen=True, slots=True)
class KeyConflict:
    """A claim lost: another node's key stands (the compare-and-set found it)."""

    group: str
    holder: str


@dataclass(frozen=True, slots=True)
class KeyChange:
    """A group's key became ours (`held`) or stopped being ours."""

    group: str
    held: bool
    detail: str


@dataclass(frozen=True, slots=True)
class UnarbitratedPeer:
    """A peer sends no sign of an arbitrator: a mixed pair, which hbmon does not support."""

    peer: str


ArbiterNotice = (
    ArbiterReachability | LeaseRenewal | LeaseChange | KeyConflict | KeyChange | UnarbitratedPeer
)
