"""The standing rules of ownership: pure functions from one snapshot to wishes.

While this node runs (stage RUNNING), `Ownership` re-evaluates these rules
after every input, in this order, each on a fresh `Facts` snapshot (Patroni's
QuorumStateResolver idea: a rule reads the whole picture and says what should
change; it changes nothing itself, so it can be tested from any state):

    dual_owner  a group held here and by a peer: the node `quorum.keeper` names
                keeps it, the other releases it (both sides compute the same)
    quorum      a takeover blocked by quorum runs once a ping node answers
    failback    auto_failback on/legacy: the preferred node (re)appeared, is
                stable and up for the stickiness: hand its groups back (standby)
    ping        the peer sees strictly more ping nodes, for `ping_hold_s`
                without a break: give our groups to it (standby)
    nobody      a group nobody holds: the node `quorum.recoverer` names takes
                it after it stayed unowned for `settle_s`

A rule returns `Wish`es in the order they are to happen: state changes
(`Release`, `Acquire`, `GiveAway` …) and notices to emit as they are
(`AnnounceGroup`, `OwnershipConflict`, `ResourceLog`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hbmon.config.model import AutoFailback, QuorumPolicy
from hbmon.core.events import (
    AnnounceGroup,
    GroupState,
    OwnershipConflict,
    ResourceLog,
    Scope,
    TakeoverReason,
)
from hbmon.core.quorum import keeper, recoverer, takeover_block

DUAL = "dual"
NONE = "none"
R_DUAL = "dual owner"  # the stop reason of a group the other holder keeps


# -------------------------------------------------------------- snapshot --
@dataclass(frozen=True, slots=True)
class GroupFacts:
    """A configured group as this node holds it."""

    key: str
    preferred: str
    state: GroupState
    held: bool  # running here as far as anyone can tell (a failed stop counts)
    want: bool  # ownership wants it held here
    claimed: bool  # held, or about to start here
    backoff: bool  # a failure here is being waited out
    late: bool  # its acquisition waits for the address to stop answering


@dataclass(frozen=True, slots=True)
class PeerFacts:
    """A peer, as its messages and membership describe it."""

    name: str
    alive: bool
    healthy: bool  # alive and not leaving
    heard: bool  # its resource state is known for this incarnation
    stable: bool
    exact: bool  # an hbmon node (says exactly which groups it holds)
    held: frozenset[str]
    claimed: frozenset[str]  # held or about to start there
    failed: frozenset[str]  # backing off there
    pings: tuple[int, int] | None  # (reachable, configured) as it last said
    up_since: float | None
    failback: bool  # its groups go back to it once it is stable
    blocked: bool  # our takeover from it waits for quorum


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the standing rules read, frozen at one instant."""

    now: float
    me: str
    mode: AutoFailback
    policy: QuorumPolicy
    reachable: int  # ping nodes answering us
    configured: int  # ping nodes configured
    stable: bool  # our side: running, nothing moving, no exchange
    exchange_idle: bool
    settle_s: float
    stickiness_s: float
    ping_hold_s: float
    groups: tuple[GroupFacts, ...]  # configured groups in file order
    peers: tuple[PeerFacts, ...]  # in configuration order
    dual: frozenset[str]  # groups in a reported dual-ownership episode
    unowned: Mapping[str, float]  # group -> since when nobody holds it (as we saw)
    ping_lead_since: float | None  # since when the peer sees more ping nodes

    def __post_init__(self) -> None:
        if self.reachable < 0 or self.configured < 0:
            raise ValueError(f"Facts: {self.reachable} of {self.configured} ping nodes")
        names = [p.name for p in self.peers]
        if self.me in names or len(set(names)) != len(names):
            raise ValueError(f"Facts: peers {names} must be distinct and not {self.me}")

    def quorum_block(self) -> str | None:
        return takeover_block(self.policy, self.configured, self.reachable)

    def the_peer(self) -> PeerFacts | None:
        """The one healthy peer, None if there is none or more than one."""
        healthy = [p for p in self.peers if p.healthy]
        return healthy[0] if len(healthy) == 1 else None


# ---------------------------------------------------------------- wishes --
@dataclass(frozen=True, slots=True)
class Release:
    """Stop wanting `key` here (it leaves its batch); the group table stops it."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class Acquire:
    """Start `keys` here, as one batch; `probe` the addresses first."""

    reason: TakeoverReason
    keys: tuple[str, ...]
    probe: bool = False

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("Acquire of no group")


@dataclass(frozen=True, slots=True)
class GiveAway:
    """Hand `keys` (our `scope`) to `peer` by a standby exchange."""

    peer: str
    scope: Scope
    keys: frozenset[str]
    why: TakeoverReason


@dataclass(frozen=True, slots=True)
class TakeOverFrom:
    """Take over what the dead `peer` held (probing first, as at its death)."""

    peer: str


@dataclass(frozen=True, slots=True)
class Unblock:
    """Our takeover from `peer` no longer waits for quorum."""

    peer: str


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
    Release
    | Acquire
    | GiveAway
    | TakeOverFrom
    | Unblock
    | FailbackDone
    | Dual
    | Unowned
    | PingLead
    | AnnounceGroup
    | OwnershipConflict
    | ResourceLog
)
Rule = Callable[[Facts], list[Wish]]


# ----------------------------------------------------------------- rules --
def dual_owner(f: Facts) -> list[Wish]:
    """A group held here and by a peer: one keeps it, by the same rule on both sides."""
    wishes: list[Wish] = []
    for g in f.groups:
        holders = [p.name for p in f.peers if p.healthy and p.heard and g.key in p.held]
        if not holders or not g.held:
            if g.key in f.dual:
                if g.state is GroupState.HELD:
                    # We kept it and the other copy is gone: point clients back here.
                    wishes.append(AnnounceGroup(g.key))
                wishes.append(Dual(g.key, False))
            continue
        if g.state is not GroupState.HELD:
            continue  # our own start or stop is still running: judge when it is done
        keep, rule = keeper(g.preferred, [f.me, *holders])
        if g.key not in f.dual:
            wishes.append(Dual(g.key, True))
            if keep == f.me:
                resolution = f"kept by {keep} ({rule}); {', '.join(holders)} releases it"
                # The other holder's announcements (made while it could not hear
                # us) moved clients' ARP entries to it; claim them back now and
                # again once it has let go.
                wishes.append(AnnounceGroup(g.key))
            else:
                resolution = f"released by {f.me}; {keep} keeps it ({rule})"
            wishes.append(OwnershipConflict(g.key, DUAL, resolution))
        if keep != f.me and g.want:
            wishes.append(Release(g.key, R_DUAL))
    return wishes


def quorum(f: Facts) -> list[Wish]:
    """A takeover blocked for want of quorum: moot once the peer lives, run once quorum is back."""
    wishes: list[Wish] = []
    for p in f.peers:
        if not p.blocked:
            continue
        if p.alive:
            wishes.append(Unblock(p.name))
        elif f.quorum_block() is None:
            wishes += [Unblock(p.name), TakeOverFrom(p.name)]
    return wishes


def failback(f: Facts) -> list[Wish]:
    """Hand a returned preferred node its groups, once it is stable and up long enough."""
    if not f.stable or f.mode is AutoFailback.OFF or not f.exchange_idle:
        return []
    wishes: list[Wish] = []
    for p in f.peers:
        if not (p.failback and p.healthy and p.heard and p.stable):
            continue
        if p.up_since is not None and f.now < p.up_since + f.stickiness_s:
            continue
        wishes.append(FailbackDone(p.name))
        keys = frozenset(
            g.key
            for g in f.groups
            if g.state is GroupState.HELD and g.preferred == p.name and g.key not in p.failed
        )
        if keys:
            return [*wishes, GiveAway(p.name, Scope.FOREIGN, keys, TakeoverReason.FAILBACK)]
    return wishes


def ping(f: Facts) -> list[Wish]:
    """ipfail's comparison, made continuous: give up to a peer that sees strictly more
    ping nodes than we do, once it has for `ping_hold_s` without a break."""
    p = f.the_peer()
    keys: frozenset[str] = frozenset()
    if (
        f.mode is not AutoFailback.LEGACY
        and p is not None
        and p.pings is not None
        and f.configured > 0
        and f.stable
        and p.stable
        and p.exact
    ):
        keys = frozenset(
            g.key for g in f.groups if g.state is GroupState.HELD and g.key not in p.failed
        )
        if not (keys and p.pings[0] > f.reachable):
            keys = frozenset()
    if not keys or p is None:
        return [PingLead(None)] if f.ping_lead_since is not None else []
    since = f.now if f.ping_lead_since is None else f.ping_lead_since
    if f.now < since + f.ping_hold_s:
        return [PingLead(since)] if since != f.ping_lead_since else []
    return [
        PingLead(None),
        ResourceLog("info", "Giving up because we have less visible ping nodes."),
        GiveAway(p.name, Scope.ALL, keys, TakeoverReason.PING_QUORUM),
    ]


def nobody(f: Facts) -> list[Wish]:
    """A group nobody holds (or is about to start): after `settle_s`, one node takes it."""
    if not f.stable:
        return []
    alive = [p for p in f.peers if p.healthy]
    if any(not p.stable for p in alive):
        return [Unowned(key, None) for key in f.unowned]
    wishes: list[Wish] = []
    for g in f.groups:
        forget = [Unowned(g.key, None)] if g.key in f.unowned else []
        if g.claimed or g.want or g.late or any(g.key in p.claimed for p in alive):
            wishes += forget
            continue
        eligible = [p.name for p in alive if p.exact and g.key not in p.failed]
        if not g.backoff and (alive or f.quorum_block() is None):
            eligible.append(f.me)
        if recoverer(g.preferred, eligible) != f.me:
            wishes += forget
            continue
        since = f.unowned.get(g.key, f.now)
        if f.now < since + f.settle_s:
            if g.key not in f.unowned:
                wishes.append(Unowned(g.key, since))
            continue
        held = f"nobody held it for {f.now - since:g} s; acquired by {f.me}"
        wishes += [
            *forget,
            OwnershipConflict(g.key, NONE, held),
            Acquire(TakeoverReason.RECOVERY, (g.key,), probe=not alive),
        ]
    return wishes


# The order matters: a rule sees what the ones before it changed.
RULES: tuple[Rule, ...] = (dual_owner, quorum, failback, ping, nobody)
