"""What ownership's pure decisions read (`Facts`) and what they ask for (`Wish`).

`Ownership` freezes its groups and peers into one `Facts` value; a decision
(core/rules.py, core/takeover.py) reads only that and returns wishes, in the
order they are to happen. `Ownership._apply` is the one place wishes change
anything. So every decision can be tested from a hand-built snapshot, and both
nodes, given the same facts, decide the same.

Wishes are either changes (`Acquire`, `Release`, `GiveAway`, `Claim`, `Fire`…)
or notices emitted as they are (`AnnounceGroup`, `OwnershipConflict`,
`ResourceLog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from hbmon.config.model import AutoFailback, QuorumPolicy
from hbmon.core.events import (
    AnnounceGroup,
    FenceResult,
    GroupState,
    OwnershipConflict,
    ResourceLog,
    Scope,
    StopReason,
    TakeoverReason,
)
from hbmon.core.fencing import FenceState
from hbmon.core.groups import Group
from hbmon.core.peerrsc import PeerRsc
from hbmon.core.quorum import takeover_block
from hbmon.core.stages import StageEvent


# -------------------------------------------------------------- snapshot --
# NamedTuples, as Patroni's Cluster/Member: immutable, and cheap enough to build
# on every input (a frozen dataclass costs several times more per field).
class GroupFacts(NamedTuple):
    """A configured group as this node holds it."""

    key: str
    preferred: str
    state: GroupState
    held: bool  # running here as far as anyone can tell (a failed stop counts)
    want: bool  # ownership wants it held here
    claimed: bool  # held, or about to start here
    backoff: bool  # a failure here is being waited out
    late: bool  # its acquisition waits for the address to stop answering
    late_since: float | None = None  # since when (the first probe that found it in use)

    @classmethod
    def of(cls, g: Group, now: float, late_since: float | None) -> GroupFacts:
        return cls(
            g.key,
            g.preferred,
            g.state,
            g.held,
            g.want,
            g.claimed,
            g.in_backoff(now),
            late_since is not None,
            late_since,
        )


class PeerFacts(NamedTuple):
    """A peer, as its messages and membership describe it."""

    name: str
    alive: bool
    healthy: bool  # alive and not leaving
    leaving: bool  # it announced its shutdown
    heard: bool  # its resource state is known for this incarnation
    stable: bool
    exact: bool  # an hbmon node (says exactly which groups it holds)
    held: frozenset[str]
    claimed: frozenset[str]  # held or about to start there
    failed: frozenset[str]  # backing off there
    claims: Scope  # its rsc_hold flags, as heartbeat keeps them
    resource_at: float | None  # its last `resource` message
    pings: tuple[int, int] | None  # (reachable, configured) as it last said
    up_since: float | None
    failback: bool  # its groups go back to it once it is stable
    blocked: bool  # our takeover from it waits for quorum
    gave_up: bool = False  # it died heard, holding nothing (heartbeat: no reset needed)
    fenceable: bool = False  # a fencing device of ours can reset it
    fence: FenceState = FenceState.IDLE  # where its reset is (core/fencing.py)
    died_at: float | None = None  # its last dead declaration
    taken: frozenset[str] = frozenset()  # it holds these, taken from a hung owner

    @classmethod
    def of(cls, p: PeerRsc, fence: FenceState, fenceable: bool) -> PeerFacts:
        return cls(
            p.name,
            p.alive,
            p.healthy,
            p.leaving,
            p.heard,
            p.stable,
            p.exact,
            p.held,
            p.claimed,
            p.failed,
            p.claims,
            p.resource_at,
            p.pings,
            p.up_since,
            p.failback,
            p.blocked,
            p.gave_up,
            fenceable,
            fence,
            p.died_at,
            p.taken,
        )


class Facts(NamedTuple):
    """Everything ownership's decisions read, frozen at one instant.

    `peers` are distinct and never include `me` (Ownership keys them by name).
    """

    now: float
    me: str
    mode: AutoFailback
    policy: QuorumPolicy
    reachable: int  # ping nodes answering us
    configured: int  # ping nodes configured
    stable: bool  # our side: running, nothing moving, no exchange
    exchange_idle: bool
    comm_at: float | None  # our comm-up
    settle_s: float
    stickiness_s: float
    ping_hold_s: float
    groups: tuple[GroupFacts, ...]  # configured groups in file order
    peers: tuple[PeerFacts, ...]  # in configuration order
    dual: frozenset[str]  # groups in a reported dual-ownership episode
    unowned: Mapping[str, float]  # group -> since when nobody holds it (as we saw)
    ping_lead_since: float | None  # since when the peer sees more ping nodes
    fence_delay_s: float = 0.0  # our fencing delay, when the peer may reset us too
    hung_take: bool = False  # hung_owner take_over: a late group is taken after hung_wait_s
    hung_wait_s: float = 0.0
    taken: Mapping[str, str] = MappingProxyType({})  # group -> hung owner we took it from
    # Held groups the arbitrator no longer covers (core/arbitration.py): to release.
    unlicensed: frozenset[str] = frozenset()
    arbitrated: bool = False  # an arbitrator is configured: a reset waits for a key

    def quorum_block(self) -> str | None:
        return takeover_block(self.policy, self.configured, self.reachable)

    def peer(self, name: str) -> PeerFacts:
        return next(p for p in self.peers if p.name == name)

    def the_peer(self) -> PeerFacts | None:
        """The one healthy peer, None if there is none or more than one."""
        healthy = [p for p in self.peers if p.healthy]
        return healthy[0] if len(healthy) == 1 else None


# ---------------------------------------------------------------- wishes --
@dataclass(frozen=True, slots=True)
class Fire:
    """Move the ownership stage (core/stages.py)."""

    event: StageEvent


@dataclass(frozen=True, slots=True)
class Claim:
    """Add `scope` to our rsc_hold flags (heartbeat's req_our_resources)."""

    scope: Scope


@dataclass(frozen=True, slots=True)
class Release:
    """Stop wanting `key` here (it leaves its batch, or its wait as late); the group
    table stops it if it runs."""

    key: str
    reason: StopReason


@dataclass(frozen=True, slots=True)
class Acquire:
    """Start `keys` here as one batch; `probe` the addresses first.

    `peer`: the node they come from; `mach_down`: a takeover from a dead or
    leaving node (announced as heartbeat's mach_down); `silent_since`: the dead
    peer's last beat, so an early probe in that silence can stand for the probe;
    `trigger_at`: when the takeover began, if before now (a reset came first);
    `after_reset`: they start only after a reset still to come (`Reset.after_key`).
    """

    reason: TakeoverReason
    keys: tuple[str, ...]
    probe: bool = False
    peer: str | None = None
    mach_down: bool = False
    silent_since: float | None = None
    trigger_at: float | None = None
    after_reset: bool = False

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("Acquire of no group")


@dataclass(frozen=True, slots=True)
class Block:
    """Quorum forbids taking `keys` from `peers`: they wait (see rules.quorum)."""

    peers: tuple[str, ...]
    keys: tuple[str, ...]
    why: str


@dataclass(frozen=True, slots=True)
class Unblock:
    """Our takeover from `peer` no longer waits for quorum."""

    peer: str


@dataclass(frozen=True, slots=True)
class TakeOverFrom:
    """Take over what the dead `peer` held (probing first, as at its death)."""

    peer: str


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset (fence) the dead `peer` after `delay_s`; its groups wait for that.
    `after_key` (with an arbitrator): not before etcd gave us one of their keys."""

    peer: str
    delay_s: float
    after_key: bool = False


@dataclass(frozen=True, slots=True)
class NoReset:
    """The dead `peer` is not reset (`result`: it gave up, or no device); say so."""

    peer: str
    result: FenceResult


@dataclass(frozen=True, slots=True)
class Force:
    """Start the late `key` without the address probe (hung_owner take_over)."""

    key: str


@dataclass(frozen=True, slots=True)
class Taken:
    """We hold `key`, taken from the hung owner `peer`; None: that episode is over."""

    key: str
    peer: str | None


@dataclass(frozen=True, slots=True)
class GiveAway:
    """Hand `keys` (our `scope`) to `peer` by a standby exchange."""

    peer: str
    scope: Scope
    keys: frozenset[str]
    why: TakeoverReason


@dataclass(frozen=True, slots=True)
class FailbackDone:
    """`peer` had its failback chance; it is not due again until it comes back."""

    peer: str


@dataclass(frozen=True, slots=True)
class Dual:
    """A dual-ownership episode of `key` begins (True) or ends (False)."""

    key: str
    on: bool


@dataclass(frozen=True, slots=True)
class Unowned:
    """Nobody holds `key` since `since`; None: forget it."""

    key: str
    since: float | None


@dataclass(frozen=True, slots=True)
class PingLead:
    """The peer sees more ping nodes since `since`; None: it does not (or it was acted on)."""

    since: float | None


Wish = (
    Fire
    | Claim
    | Release
    | Acquire
    | Block
    | Unblock
    | TakeOverFrom
    | Reset
    | NoReset
    | Force
    | Taken
    | GiveAway
    | FailbackDone
    | Dual
    | Unowned
    | PingLead
    | AnnounceGroup
    | OwnershipConflict
    | ResourceLog
)


def info(text: str) -> ResourceLog:
    return ResourceLog("info", text)
