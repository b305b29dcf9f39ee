"""What to take, and when: startup and takeovers, as pure decisions (spec §5.3, §5.5).

    startup    stage WAITING: once every live peer's resource state is known,
               take our own groups that nobody claims (nice_failback); with no
               live peer at all, take every group (guarded by quorum)
    takeover   a peer died (probe first, guarded by quorum) or is leaving
               (what it released starts at once): take every group nobody
               else claims
    rejoined   a peer restarted and its new process said what it holds: that
               stays with it (a handover, core/handover.py); the rest is taken
               as from a dead node
    reset_gate before taking from a dead peer: reset it first, or say why not
               (heartbeat's STONITH decision; the machine is core/fencing.py);
               with an arbitrator, the groups are acquired at once, the reset
               waits for one of their keys and they start after it

Each reads a `Facts` snapshot and returns wishes (core/facts.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from hbmon.config.model import BOTH_STARTING_WAIT_MS
from hbmon.core import scopes
from hbmon.core.events import FenceResult, ResourceLog, Scope, TakeoverReason
from hbmon.core.facts import (
    Acquire,
    Block,
    Claim,
    Facts,
    Fire,
    NoReset,
    PeerFacts,
    Reset,
    Unblock,
    Wish,
    info,
)
from hbmon.core.fencing import CLEARED, PENDING, FenceState
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
    """Comm-up with no live peer: every group is ours to take (probed, guarded by quorum).

    A node not heard within initdead may hold any of them: as heartbeat does, it is
    reset first (core/fencing.py); the takeover then follows its reset (`takeover`).
    With an arbitrator they are acquired now and start after the reset, which waits
    for etcd to give us one of their keys (`reset_gate`).
    """
    dead = [p for p in f.peers if not p.healthy]
    fire = Fire(Alone(tuple(p.name for p in dead)))
    wishes: list[Wish] = [fire, Claim(Scope.ALL)]
    groups = [g for g in f.groups if not g.claimed and not g.backoff]
    if not groups:
        return wishes
    why = f.quorum_block()
    if why is not None:
        return [*wishes, Block(tuple(p.name for p in dead), tuple(g.key for g in groups), why)]
    gates = [reset_gate(f, p) for p in dead if not p.alive]
    notices = [w for gate, _ in gates for w in gate]
    if not all(go for _, go in gates):
        return [fire, *notices]
    held = after_key(notices)
    probe = not held and not (dead and all(p.fence is FenceState.RESET for p in dead))
    ours = tuple(g.key for g in groups if g.preferred == f.me)
    theirs = tuple(g.key for g in groups if g.preferred != f.me)
    peer = dead[0].name if len(dead) == 1 else None
    wishes += notices
    if ours:
        wishes.append(Acquire(TakeoverReason.STARTUP, ours, probe=probe, after_reset=held))
    if theirs:
        wishes.append(
            Acquire(
                TakeoverReason.PEER_DEAD,
                theirs,
                probe=probe,
                peer=peer,
                mach_down=True,
                after_reset=held,
            )
        )
    return wishes


def rejoined(f: Facts, name: str) -> list[Wish]:
    """Peer `name` restarted (a new generation, never declared dead) and its new
    process has spoken: what it claims is its own, kept up across the restart by a
    handover (core/handover.py). What its previous life may have left running
    beyond that is unmanaged now: taken as from a dead node, addresses probed first
    (it is alive: no reset).
    """
    p = f.peer(name)
    kept = p.claimed
    others = frozenset().union(*(q.claimed for q in f.peers if q.healthy and q.name != name))
    free = [g for g in f.groups if not g.claimed and not g.backoff and g.key not in others]
    wishes: list[Wish] = []
    if kept:
        text = f"Node {name} restarted holding [{', '.join(sorted(kept))}]: left with it."
        wishes.append(info(text))
    if not [g for g in free if g.key not in kept]:
        return wishes
    return [*wishes, *takeover(f, name, dead=True, spare=kept)]


def takeover(
    f: Facts,
    name: str,
    *,
    dead: bool,
    silent_since: float | None = None,
    spare: frozenset[str] = frozenset(),
) -> list[Wish]:
    """Peer `name` is dead (`dead`, probe first) or leaving: take what nobody else claims
    (`spare`: groups a restarted peer keeps).

    A dead peer (not one that restarted, which is alive) is first judged as heartbeat
    does: reset it, or say why not (core/fencing.py `reset_gate`); nothing is taken
    while a reset of it, or of another dead node, is under way. After a reset its
    groups start without a probe: the node is off. With an arbitrator, they are
    acquired at once and start after the reset, which waits for one of their keys.
    A leaving peer released its groups, so they start at once; one it still said it
    held (a failed stop, or news older than its shutdone) is probed first.
    """
    p = f.peer(name)
    others = frozenset().union(*(q.claimed for q in f.peers if q.healthy and q.name != name))
    keys = tuple(
        g.key
        for g in f.groups
        if not g.claimed and not g.backoff and g.key not in others and g.key not in spare
    )
    died = dead and not p.alive
    why = f.quorum_block() if dead and keys else None
    gate: list[Wish] = []
    if died and why is None:  # not when we may be the one cut off: never shoot then
        gate, go = reset_gate(f, p, bool(keys))
        if not go or pending(f, besides=name):
            return gate
    wishes: list[Wish] = [*gate, Claim(Scope.ALL)]  # heartbeat's takeover_from_node
    if not keys:
        gave_up = dead and not died and (not p.held or p.leaving) and bool(f.groups)
        return [*wishes, info(f"Dead node {name} gave up resources.")] if gave_up else wishes
    wishes.append(info(f"Resources being acquired from {name}."))
    if dead:
        if why is not None:
            return [*wishes, Block((name,), keys, why)]
        reset = died and p.fence is FenceState.RESET
        held = after_key(gate)
        return [
            *wishes,
            Unblock(name),
            Acquire(
                TakeoverReason.PEER_DEAD,
                keys,
                probe=not (reset or held),
                peer=name,
                mach_down=True,
                silent_since=silent_since,
                trigger_at=p.died_at if reset else None,  # the reset is part of the takeover
                after_reset=held,
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


# ---------------------------------------------------------------- fencing --
def reset_delay(f: Facts) -> float:
    """How long we wait before we shoot: our delay only if the peer may shoot us too,
    that is, if we hold a group (a node known to hold nothing is not reset)."""
    holding = any(g.held or g.claimed for g in f.groups)
    return f.fence_delay_s if holding else 0.0


def pending(f: Facts, besides: str | None = None) -> bool:
    """A reset of some dead peer (other than `besides`) is still under way."""
    return any(p.fence in PENDING for p in f.peers if p.name != besides)


def after_key(wishes: list[Wish]) -> bool:
    """A reset among `wishes` waits for a key: the groups are acquired now, to start
    after it."""
    return any(isinstance(w, Reset) and w.after_key for w in wishes)


def reset_gate(f: Facts, p: PeerFacts, to_take: bool = True) -> tuple[list[Wish], bool]:
    """Before taking anything from the dead peer `p`, heartbeat's judgement of its death,
    once: (wishes, whether its groups may be acquired now).

    With an arbitrator and groups `to_take`, the reset comes after etcd gave us one
    of their keys (`Reset.after_key`): they are acquired now (so their keys are
    claimed) and start only after the reset. The other order would shoot an owner
    that etcd still lets hold its groups, in a cut between the nodes: a healthy
    node lost, and its groups down until its lease ran out (docs/fencing.md).
    """
    if p.fence is FenceState.IDLE:
        if p.gave_up:
            gave = [info(f"Dead node {p.name} gave up resources.")] if f.groups else []
            return [*gave, NoReset(p.name, FenceResult.UNNEEDED)], True
        if not p.fenceable:
            return [
                NoReset(p.name, FenceResult.NOT_CONFIGURED),
                ResourceLog("WARN", "No STONITH device configured."),
                ResourceLog("WARN", "Shared disks are not protected."),
            ], True
        keyed = f.arbitrated and to_take
        return [Reset(p.name, reset_delay(f), after_key=keyed)], keyed
    return [], p.fence in CLEARED
