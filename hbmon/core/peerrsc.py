"""What we know about each peer's resource groups (from its messages), per incarnation.

An hbmon peer tells us exactly (the `hbrsc` field of every status and `resource`
message); a heartbeat peer only by category (`rsc_hold=local|foreign|all|none`),
which `preferred` turns into keys. State reports are applied only from the
newest message (a late, reordered one must not roll the picture back), while
protocol messages (`ask_resources`, `starting` …) are handled once each, in
whatever order they come (heartbeat sometimes sends a higher seq first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from hbmon.core.events import Scope
from hbmon.core.scopes import keys_in, update_claims
from hbmon.wire.rscmsg import IDLE, Report, ResourceMsg, StatusExt

_SEEN_WINDOW = 512


class News(StrEnum):
    """What membership or the peer itself tells us about a peer's life."""

    CAME_BACK = "came back"  # membership: never heard or dead, now up
    RESTARTED = "restarted"  # a new incarnation, never declared dead
    HEALED = "healed"  # back after a partition
    DIED = "died"
    LEAVING = "leaving"  # it announced its shutdown
    STARTING = "starting"  # its `starting` message: its resources are in flux


class Arrival(StrEnum):
    """Where a peer's message stands among those of its incarnation."""

    NEWEST = "newest"  # above every seq seen from this incarnation
    LATE = "late"  # a lower seq seen for the first time
    AGAIN = "again"  # already handled (a copy over another medium)


@dataclass(slots=True)
class PeerRsc:
    """One peer's groups and resource state, as its messages and membership tell us."""

    name: str
    alive: bool = False
    up_since: float | None = None  # when it (re)appeared, for failback stickiness
    held: frozenset[str] = frozenset()
    pending: frozenset[str] = frozenset()  # about to start there
    failed: frozenset[str] = frozenset()  # backing off there
    stable: bool = False
    phase: str = IDLE  # its standby exchange phase, as it last said (hbmon peers)
    exact: bool = False  # it sends hbrsc: an hbmon node
    claims: Scope = Scope.NONE  # its rsc_hold flags (empty sets included), as heartbeat keeps them
    reports: int = 0  # exact reports applied so far (to tell news from old news)
    heard: bool = False  # resource state received from this incarnation
    resource_at: float | None = None  # its last `resource` message
    pings: tuple[int, int] | None = None  # (reachable, configured)
    leaving: bool = False  # it announced its shutdown
    failback: bool = False  # hand its groups back once it is stable
    blocked: bool = False  # our takeover from it waits for quorum
    gave_up: bool = False  # its last death: heard, and holding nothing (no reset needed)
    died_at: float | None = None  # when it was last declared dead
    taken: frozenset[str] = frozenset()  # held, taken from a hung owner (keeps them on a dual)
    # It restarted and its new process has not said yet what it holds (ownership
    # judges the restart on that first word: core/takeover.py `rejoined`).
    rejoining: bool = False
    generation: int | None = None
    top: int | None = None
    seen: set[int] = field(default_factory=set)

    @property
    def claimed(self) -> frozenset[str]:
        return self.held | self.pending

    @property
    def healthy(self) -> bool:
        return self.alive and not self.leaving

    def said(self) -> tuple[object, ...]:
        """Everything a state report can change that a decision reads (all but the
        `reports` count, which only the standby exchange reads)."""
        return (
            self.held,
            self.pending,
            self.failed,
            self.taken,
            self.stable,
            self.phase,
            self.exact,
            self.heard,
            self.pings,
            self.claims,
        )

    def arrival(self, hg: int | None, seq: int) -> Arrival:
        if hg is not None and hg != self.generation:
            if self.generation is not None and hg < self.generation:
                return Arrival.AGAIN  # membership drops replays; never roll back
            self.generation, self.top, self.seen = hg, None, set()
        if seq in self.seen:
            return Arrival.AGAIN
        self.seen.add(seq)
        if len(self.seen) > 2 * _SEEN_WINDOW:
            # Pruned in bulk, not by one each message: a rebuild per beat cost more
            # than the rest of a beat's ownership bookkeeping.
            floor = max(self.seen) - _SEEN_WINDOW
            self.seen = {s for s in self.seen if s > floor}
        if self.top is None or seq > self.top:
            self.top = seq
            return Arrival.NEWEST
        return Arrival.LATE

    def hear(self, news: News, now: float) -> None:
        """Update what we know of it; the caller decides what the news means for us."""
        match news:
            case News.CAME_BACK:
                # Any takeover from it that waits for quorum is moot now.
                self.alive, self.up_since, self.blocked = True, now, False
            case News.RESTARTED:
                # Judged on its first word only if it restarted while alive: one we
                # declared dead had its groups taken over then (or blocked, and moot
                # now that it is back: Ownership.peer_alive).
                self.rejoining = self.alive
                self.forget(now)
            case News.DIED:
                # heartbeat's need_stonith, from what it said before it died: it holds
                # nothing, as it told us, or as its shutdown (shutdone) implies.
                self.gave_up = (self.heard or self.leaving) and not self.claimed
                self.died_at = now
                self.alive, self.stable, self.failback, self.up_since = False, False, False, None
                self.heard = False  # what it said before is no longer news when it is back
                self.claims = Scope.NONE
                self.rejoining = False
            case News.LEAVING:
                self.leaving, self.failback, self.stable = True, False, False
                self.claims = Scope.NONE
                self.rejoining = False
            case News.STARTING:
                self.stable = False
            case News.HEALED:
                pass

    def forget(self, now: float) -> None:
        """A new incarnation: nothing it held survives the restart."""
        self.held = self.pending = self.failed = self.taken = frozenset()
        self.stable = self.heard = self.leaving = self.blocked = False
        self.phase = IDLE
        self.claims = Scope.NONE
        self.resource_at = None
        self.up_since = now

    def apply(
        self, state: StatusExt | ResourceMsg, preferred: Mapping[str, str], now: float
    ) -> bool:
        """A state report from its newest message; True if a `resource` one says it
        became stable (heartbeat logs the end of the remote transition)."""
        was_stable = self.stable
        self._apply(state, preferred)
        if not isinstance(state, ResourceMsg):
            return False
        self.resource_at = now
        return self.stable and not was_stable

    def _apply(self, state: StatusExt | ResourceMsg, preferred: Mapping[str, str]) -> None:
        if isinstance(state, StatusExt) and state.pings is not None:
            self.pings = state.pings
        if isinstance(state, ResourceMsg) and state.scope is not None:
            self.claims = update_claims(self.claims, state.scope, full=state.stable is not None)
        if state.report is not None:
            self._exact(state.report)
        elif isinstance(state, ResourceMsg) and not self.exact:
            if state.scope is not None:
                self.held, self.pending = keys_in(state.scope, self.name, preferred), frozenset()
                self.heard = True
            if state.stable is not None:
                self.stable = state.stable

    def _exact(self, r: Report) -> None:
        self.held, self.pending, self.failed, self.taken = r.held, r.pending, r.failed, r.taken
        self.stable, self.phase, self.exact, self.heard = r.stable, r.phase, True, True
        self.reports += 1


def hb_peer_leaving(peers: Iterable[PeerRsc]) -> bool:
    """The only peer is a heartbeat node between its `info=shutdown` and its end.

    We took its groups at its first word; heartbeat's peer would wait for
    `shutdone`, and until that is processed heartbeat's audit can still read
    its own flags as set (a `resource` message of its own, looped back late),
    so our report would log `Both machines own …`. It has nothing to learn
    from us any more: stay quiet until it is gone or back (`starting`).
    """
    peers = list(peers)
    if any(p.healthy for p in peers):
        return False
    return any(p.leaving and p.alive and not p.exact for p in peers)


def held_elsewhere(peers: Iterable[PeerRsc]) -> dict[str, list[str]]:
    """Group -> the live peers that say they hold it, in peer order."""
    elsewhere: dict[str, list[str]] = {}
    for p in peers:
        for key in p.held if p.healthy else ():
            elsewhere.setdefault(key, []).append(p.name)
    return elsewhere
