"""What to take, and when: startup and takeovers, as pure decisions (spec §5.3, §5.5).

    startup    stage WAITING: once every live peer's resource state is known,
               take our own groups that nobody claims (nice_failback); with no
               live peer at all, take every group (guarded by quorum)
    takeover   a peer died (probe first, guarded by quorum) or is leaving
               (what it released starts at once): take every group nobody
               else claims

Each reads a `Facts` snapshot and returns wishes (core/facts.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from hbmon.config.model import BOTH_STARTING_WAIT_MS
from hbmon.core import scopes
from hbmon.core.events import Scope, TakeoverReason
from hbmon.core.facts import (
    Acquire,
    Block,
    Claim,
    Facts,
    Fire,
    PeerFacts,
    Unblock,
    Wish,
    info,
)
from hbmon.core.stages import Alone, PeersKnown

BOTH_STARTING_WAIT_S = BOTH_STARTING_WAIT_MS / 1000


def known(p: PeerFacts, f: Facts) -> bool:
    """We know what the live peer `p` holds, or waited long enough to stop asking."""
    if p.exact and p.heard:
        return True
    if p.heard and p.stable:
        return True
    if p.resource_at is not None:  # both starting: 10 s after its `resource`
        return f.now >= p.resource_at + BOTH_STARTING_WAIT_S
    return f.comm_at is not None and f.now >= f.comm_at + BOTH_STARTING_WAIT_S  # it never said


def startup_deadlines(comm_at: float, resource_ats: Iterable[float | None]) -> list[float]:
    """When WAITING stops waiting for each peer's word (`known`), given its last `resource`."""
    return [(comm_at if at is None else at) + BOTH_STARTING_WAIT_S for at in resource_ats]


def startup(f: Facts) -> list[Wish]:
    """WAITING: take our own groups once every live peer's state is known (§5.3)."""
    alive = [p for p in f.peers if p.healthy]
    if not alive:
        return alone(f)
    if not all(known(p, f) for p in alive):
        return []
    wishes: list[Wish] = [Fire(PeersKnown(tuple(p.name for p in alive)))]
    # heartbeat's req_our_resources: our local set is ours unless the peer has it.
    if not any(scopes.covers(p.claims, Scope.FOREIGN) for p in alive):
        wishes.append(Claim(Scope.LOCAL))
    claimed = frozenset().union(*(p.claimed for p in alive))
    keys = tuple(
        g.key
        for g in f.groups
        if g.preferred == f.me and not g.claimed and g.key not in claimed and not g.backoff
    )
    if not keys:
        return [*wishes, info("Local Resource acquisition completed. (none)")]
    return [*wishes, Acquire(TakeoverReason.STARTUP, keys)]


def alone(f: Facts) -> list[Wish]:
    """Comm-up with no live peer: every group is ours to take (probed, guarded by quorum)."""
    dead = [p for p in f.peers if not p.healthy]
    wishes: list[Wish] = [Fire(Alone(tuple(p.name for p in dead))), Claim(Scope.ALL)]
    groups = [g for g in f.groups if not g.claimed and not g.backoff]
    if not groups:
        return wishes
    why = f.quorum_block()
    if why is not None:
        return [*wishes, Block(tuple(p.name for p in dead), tuple(g.key for g in groups), why)]
    ours = tuple(g.key for g in groups if g.preferred == f.me)
    theirs = tuple(g.key for g in groups if g.preferred != f.me)
    peer = dead[0].name if len(dead) == 1 else None
    if ours:
        wishes.append(Acquire(TakeoverReason.STARTUP, ours, probe=True))
    if theirs:
        wishes.append(
            Acquire(TakeoverReason.PEER_DEAD, theirs, probe=True, peer=peer, mach_down=True)
        )
    return wishes


def takeover(f: Facts, name: str, *, dead: bool, silent_since: float | None = None) -> list[Wish]:
    """Peer `name` is dead (`dead`, probe first) or leaving: take what nobody else claims.

    A leaving peer released its groups, so they start at once; one it still
    said it held (a failed stop, or news older than its shutdone) is probed first.
    """
    p = f.peer(name)
    wishes: list[Wish] = [Claim(Scope.ALL)]  # heartbeat's takeover_from_node
    others = frozenset().union(*(q.claimed for q in f.peers if q.healthy and q.name != name))
    keys = tuple(g.key for g in f.groups if not g.claimed and not g.backoff and g.key not in others)
    if not keys:
        gave_up = dead and (not p.held or p.leaving) and bool(f.groups)
        return [*wishes, info(f"Dead node {name} gave up resources.")] if gave_up else wishes
    wishes.append(info(f"Resources being acquired from {name}."))
    if dead:
        why = f.quorum_block()
        if why is not None:
            return [*wishes, Block((name,), keys, why)]
        return [
            *wishes,
            Unblock(name),
            Acquire(
                TakeoverReason.PEER_DEAD,
                keys,
                probe=True,
                peer=name,
                mach_down=True,
                silent_since=silent_since,
            ),
        ]
    free = tuple(k for k in keys if k not in p.claimed)
    stale = tuple(k for k in keys if k in p.claimed)
    for batch, guard in ((free, False), (stale, True)):
        if batch:
            wishes.append(
                Acquire(TakeoverReason.SHUTDOWN, batch, probe=guard, peer=name, mach_down=True)
            )
    return wishes
