"""The standing rules of ownership: pure functions from one snapshot to wishes.

While this node runs (stage RUNNING), `Ownership` re-evaluates these rules
after every input, in this order, each on a fresh `Facts` snapshot (Patroni's
QuorumStateResolver idea: a rule reads the whole picture and says what should
change; it changes nothing itself, so it can be tested from any state):

    arbitrated  a group held here that the arbitrator no longer covers (our
                lease lapsed, no peer confirms us): release it
    dual_owner  a group held here and by a peer: the node `quorum.keeper` names
                keeps it, the other releases it (both sides compute the same)
    moot        a takeover held back because the group's address still answers,
                and a live peer now says it holds the group: that was the answer
    quorum      a takeover blocked by quorum runs once a ping node answers
    failback    auto_failback on/legacy: the preferred node (re)appeared, is
                stable and up for the stickiness: hand its groups back (standby)
    ping        the peer sees strictly more ping nodes, for `ping_hold_s`
                without a break: give our groups to it (standby)
    nobody      a group nobody holds: the node `quorum.recoverer` names takes
                it after it stayed unowned for `settle_s`
    hung_owner  hung_owner take_over: a group held back because the dead owner's
                address still answers is taken after `hung_wait_s`; the mark
                that makes us keep it on the dual (`^` in hbrsc) ends with it

The snapshot and the wishes are defined in core/facts.py; startup and the
takeover from a dead or leaving peer are decided in core/takeover.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hbmon.config.model import AutoFailback
from hbmon.core.events import (
    AnnounceGroup,
    ConflictKind,
    GroupState,
    OwnershipConflict,
    ResourceLog,
    Scope,
    StopReason,
    TakeoverReason,
)
from hbmon.core.facts import (
    Acquire,
    Dual,
    Facts,
    FailbackDone,
    Force,
    GiveAway,
    PingLead,
    Release,
    Taken,
    TakeOverFrom,
    Unblock,
    Unowned,
    Wish,
    info,
)
from hbmon.core.peerrsc import News
from hbmon.core.quorum import keeper, recoverer
from hbmon.core.takeover import pending

RULE_TAKEN = "it took the group from a hung owner"


Rule = Callable[[Facts], list[Wish]]

# Which news about a peer makes it due for failback (its groups go home once it is
# stable), per auto_failback. heartbeat restarts both nodes' resources after a heal.
FAILBACK_DUE: Mapping[AutoFailback, frozenset[News]] = {
    AutoFailback.OFF: frozenset(),
    AutoFailback.ON: frozenset({News.HEALED, News.STARTING}),
    AutoFailback.LEGACY: frozenset({News.CAME_BACK, News.RESTARTED, News.HEALED}),
}


@dataclass(slots=True)
class Memory:
    """What the standing rules remember between inputs; only their wishes change it."""

    dual: set[str] = field(default_factory=set)  # groups in a reported dual episode
    unowned: dict[str, float] = field(default_factory=dict)  # group -> nobody holds it since
    ping_lead_since: float | None = None  # the peer sees more ping nodes since
    taken: dict[str, str] = field(default_factory=dict)  # group -> hung owner we took it from

    def note(self, w: Dual | Unowned | PingLead | Taken) -> None:
        match w:
            case Taken(key=key, peer=None):
                self.taken.pop(key, None)
            case Taken(key=key, peer=str(peer)):
                self.taken[key] = peer
            case Dual(key=key, on=True):
                self.dual.add(key)
            case Dual(key=key, on=False):
                self.dual.discard(key)
            case Unowned(key=key, since=since):
                if since is None:
                    self.unowned.pop(key, None)
                else:
                    self.unowned[key] = since
            case PingLead(since=since):
                self.ping_lead_since = since

    def deadlines(self, settle_s: float, ping_hold_s: float) -> list[float]:
        """When a rule may decide something new without any input."""
        ds = [since + settle_s for since in self.unowned.values()]
        if self.ping_lead_since is not None:
            ds.append(self.ping_lead_since + ping_hold_s)
        return ds


# ----------------------------------------------------------------- rules --
def arbitrated(f: Facts) -> list[Wish]:
    """A group the arbitrator no longer lets us hold: release it before our lease ends."""
    wishes: list[Wish] = []
    for g in f.groups:
        if g.key in f.unlicensed and g.want:
            why = "etcd did not renew our lease in time and no peer confirms that we hold it"
            wishes += [
                ResourceLog("WARN", f"Releasing resource group {g.key}: {why}"),
                Release(g.key, StopReason.ARBITRATOR),
            ]
    return wishes


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
        # Taken from a hung owner that woke up: the taker keeps it, the woken gives up.
        marked = [f.me] if g.key in f.taken else []
        marked += [n for n in holders if g.key in f.peer(n).taken]
        if len(marked) == 1:
            keep, rule = marked[0], RULE_TAKEN
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
            wishes.append(OwnershipConflict(g.key, ConflictKind.DUAL, resolution))
        if keep != f.me and g.want:
            wishes.append(Release(g.key, StopReason.DUAL_OWNER))
    return wishes


def moot(f: Facts) -> list[Wish]:
    """A takeover waiting for an address to stop answering, while a live peer reports
    holding the group (a peer that restarted and took its own group back, or kept
    it across a handover): the address is rightly in use, stop waiting for it."""
    wishes: list[Wish] = []
    for g in f.groups:
        if not (g.want and g.late and not g.held):
            continue
        holders = [p.name for p in f.peers if p.healthy and p.heard and g.key in p.held]
        if holders:
            text = f"Takeover of {g.key} cancelled: {holders[0]} holds it."
            wishes += [info(text), Release(g.key, StopReason.PEER_BACK)]
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
        info("Giving up because we have less visible ping nodes."),
        GiveAway(p.name, Scope.ALL, keys, TakeoverReason.PING_QUORUM),
    ]


def nobody(f: Facts) -> list[Wish]:
    """A group nobody holds (or is about to start): after `settle_s`, one node takes it."""
    if not f.stable:
        return []
    alive = [p for p in f.peers if p.healthy]
    # A dead node being reset may hold any group: none is anybody's to take until then.
    if any(not p.stable for p in alive) or pending(f):
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
            OwnershipConflict(g.key, ConflictKind.NONE, held),
            Acquire(TakeoverReason.RECOVERY, (g.key,), probe=not alive),
        ]
    return wishes


def hung_owner(f: Facts) -> list[Wish]:
    """hung_owner take_over: take a late group once it waited `hung_wait_s`; forget the
    mark of a group taken so once the owner we took it from is heard without it."""
    wishes: list[Wish] = []
    for g in f.groups:
        if f.hung_take and g.late_since is not None and f.now >= g.late_since + f.hung_wait_s:
            wishes.append(Force(g.key))
        source = f.taken.get(g.key)
        if source is None:
            continue
        p = next((q for q in f.peers if q.name == source), None)
        if not g.held or (p is not None and p.healthy and p.heard and g.key not in p.held):
            wishes.append(Taken(g.key, None))
    return wishes


# The order matters: a rule sees what the ones before it changed.
RULES: tuple[Rule, ...] = (arbitrated, dual_owner, moot, quorum, failback, ping, nobody, hung_owner)
