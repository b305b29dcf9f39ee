"""The external arbitrator's side of ownership (etcd; docs/arbitrator.md), sans-IO.

A node may start a resource group only once it holds the group's key in etcd
under its own lease, and may keep holding the group only while that stays
true, renewed with every heartbeat it sends (`beat`). The rules:

    may_start   the key is ours and our lease still counts here
    licensed    a held group: the key is ours and the lease counts, or the
                failsafe holds: the peer, an arbitrated hbmon node that is
                alive and does not claim the group, acknowledged one of our
                beats recently (see `Confirmation.until`)
    follow      claim the key of every group wanted or held here, release the
                key of every group that is neither (once it has stopped)

"The lease counts" means: now < (send time of the last renewal etcd
answered) + `LeaseTiming.hold_s(TTL)`: etcd keeps the lease at least TTL after
it got that renewal, and we stop counting on it earlier by the clock drift
and the time a release takes (config/leasetiming.py states the rule once).

Ownership asks `may_start` before every start (the group table waits),
`unlicensed` for its snapshot (core/rules.py releases those groups), and
`follow` after every decision. The states of the lease and of each key are
tables (core/arbtables.py); every request and answer is an event
(core/arbevents.py). Without an arbitrator every question answers "yes" and
nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol, TypeVar

from hbmon.config.leasetiming import LeaseTiming
from hbmon.config.model import ARBITRATOR_HANDOVER_RETRY_MS
from hbmon.core.arbevents import (
    ArbiterAnswer,
    ArbiterFailed,
    ArbiterReachability,
    ArbiterRequest,
    ClaimKey,
    GrantLease,
    KeyChange,
    KeyClaimed,
    KeyConflict,
    LeaseChange,
    LeaseGranted,
    LeaseRenewal,
    LeaseRenewed,
    ReleaseKey,
    RenewLease,
    RevokeLease,
    UnarbitratedPeer,
)
from hbmon.core.arbtables import KEY_TABLE, LEASE_TABLE, KeyInput, KeyState, LeaseInput, LeaseState
from hbmon.core.snapshot import ArbiterView

# The status field that says its sender runs with the arbitrator.
ARB_FIELD = "hbarb"

ArbEffect = (
    ArbiterRequest
    | ArbiterReachability
    | LeaseRenewal
    | LeaseChange
    | KeyConflict
    | KeyChange
    | UnarbitratedPeer
)


class PeerSide(Protocol):
    """What arbitration reads of a peer (core/peerrsc.py PeerRsc has it)."""

    @property
    def name(self) -> str: ...
    @property
    def healthy(self) -> bool: ...
    @property
    def claimed(self) -> frozenset[str]: ...


P = TypeVar("P", bound=Mapping[str, PeerSide])


class GroupSide(Protocol):
    """What arbitration reads of a group (core/groups.py Group has it)."""

    @property
    def key(self) -> str: ...
    @property
    def want(self) -> bool: ...
    @property
    def held(self) -> bool: ...
    @property
    def busy(self) -> bool: ...


class Op(StrEnum):
    GRANT = "grant"
    RENEW = "renew"
    CLAIM = "claim"
    RELEASE = "release"
    REVOKE = "revoke"


class _Pending(NamedTuple):
    op: Op
    sent_at: float
    lease: int
    group: str = ""


@dataclass(slots=True)
class _Key:
    group: str
    state: KeyState = KeyState.FREE
    retry_at: float | None = None  # no claim (TAKEN, FREE) or release (HELD) before this
    holder: str = ""  # who holds it when TAKEN

    def fire(self, kind: KeyInput) -> None:
        self.state = KEY_TABLE.next(self.state, kind)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A peer's latest word that it still hears us: one of its statuses acknowledged
    (hbecho) our status sent at `acked_sent_at`; it arrived at `received_at`."""

    received_at: float
    acked_sent_at: float
    arbitrated: bool  # the peer says it runs with the arbitrator

    def until(self, window_s: float, failsafe_s: float) -> float:
        """Until when it covers our groups. The peer cannot declare us dead sooner than
        its deadtime after our acknowledged beat (`failsafe_s` allows for drift and the
        release); and it covers only while fresh (`window_s`), so an owner cut from
        both its peer and etcd at once lets go on its lease's time, not later."""
        return min(self.received_at + window_s, self.acked_sent_at + failsafe_s)


class Arbitration:
    """Our lease, our keys and the peers' confirmations; requests out, answers in."""

    def __init__(
        self, me: str, generation: int, timing: LeaseTiming | None, keepalive_s: float
    ) -> None:
        self.me = me
        self.generation = generation
        self.timing = timing
        self._keepalive = keepalive_s
        self._lease_state = LeaseState.NONE
        self._lease = 0
        self._ttl_s = 0
        self._valid_until = float("-inf")
        self._keys: dict[str, _Key] = {}
        self._out: dict[int, _Pending] = {}
        self._requests = 0
        self._reachable: bool | None = None
        self._confirmed: dict[str, Confirmation] = {}
        self._warned_unarbitrated: set[str] = set()
        self._failsafe: frozenset[str] = frozenset()
        self._conflicts = 0
        self._revoke_done = False
        self._leaving = False
        self._peers: Mapping[str, PeerSide] = {}

    def bind(self, peers: P) -> P:
        """The peers as ownership keeps them (read, never changed, here); returned."""
        self._peers = peers
        return peers

    @property
    def enabled(self) -> bool:
        return self.timing is not None

    # ------------------------------------------------------------- queries --
    def lease_counts(self, now: float) -> bool:
        return self._lease_state is LeaseState.ACTIVE and now < self._valid_until

    def may_start(self, group: str, now: float) -> bool:
        if not self.enabled:
            return True
        k = self._keys.get(group)
        return k is not None and k.state is KeyState.HELD and self.lease_counts(now)

    def unlicensed(self, held: Iterable[str], now: float) -> frozenset[str]:
        """Groups held here that neither our key and lease nor the failsafe cover."""
        if self.timing is None:
            return frozenset()
        lease_ok = self.lease_counts(now)
        out: set[str] = set()
        failsafe: set[str] = set()
        peers = tuple(self._peers.values())
        for group in held:
            k = self._keys.get(group)
            if lease_ok and k is not None and k.state is KeyState.HELD:
                continue
            if self._peer_covers(group, peers, now):
                failsafe.add(group)
            else:
                out.add(group)
        self._failsafe = frozenset(failsafe)
        return frozenset(out)

    def _peer_covers(self, group: str, peers: tuple[PeerSide, ...], now: float) -> bool:
        assert self.timing is not None
        window, failsafe = 2 * self._keepalive, self.timing.failsafe_s()
        for p in peers:
            c = self._confirmed.get(p.name)
            if c is None or not c.arbitrated or not p.healthy or group in p.claimed:
                continue
            if now < c.until(window, failsafe):
                return True
        return False

    def quiet(self) -> bool:
        """Our shutdown may finish: nothing of ours is left in etcd to end."""
        return not self.enabled or self._revoke_done or self._lease_state is not LeaseState.ACTIVE

    def next_deadline(self, now: float) -> float | None:
        if self.timing is None or self._leaving:
            return None  # after our shutdown released everything, nothing is due here
        ds = [k.retry_at for k in self._keys.values() if k.retry_at is not None]
        if self._lease_state is LeaseState.ACTIVE:
            ds.append(self._valid_until)
        window, failsafe = 2 * self._keepalive, self.timing.failsafe_s()
        ds += [c.until(window, failsafe) for c in self._confirmed.values()]
        return min((d for d in ds if d > now), default=None)

    def view(self, now: float) -> ArbiterView | None:
        if not self.enabled:
            return None
        held = sum(1 for k in self._keys.values() if k.state is KeyState.HELD)
        return ArbiterView(
            reachable=bool(self._reachable),
            lease=self._lease if self._lease_state is LeaseState.ACTIVE else None,
            ttl_s=self._ttl_s,
            lease_left_s=max(0.0, self._valid_until - now) if self.lease_counts(now) else 0.0,
            keys_held=held,
            failsafe_groups=len(self._failsafe),
            conflicts=self._conflicts,
        )

    # -------------------------------------------------------------- inputs --
    def start(self, now: float) -> list[ArbEffect]:
        return self._grant(now) if self.enabled else []

    def beat(self, now: float) -> list[ArbEffect]:
        """A status of ours leaves now: renew with it (or get a lease, if we have none)."""
        if not self.enabled or self._leaving:
            return []
        if self._lease_state is LeaseState.NONE:
            return self._grant(now)
        if self._lease_state is LeaseState.ACTIVE and not self._in_flight(Op.RENEW):
            return [RenewLease(self._send(Op.RENEW, now), self._lease)]
        return []

    def confirm(
        self, peer: str, acked_sent_at: float | None, arbitrated: bool, now: float
    ) -> list[ArbEffect]:
        """A status from `peer` arrived; `acked_sent_at`: the send time of our latest
        status it acknowledges (None: none we can place)."""
        if not self.enabled:
            return []
        out: list[ArbEffect] = []
        if not arbitrated and peer not in self._warned_unarbitrated:
            self._warned_unarbitrated.add(peer)
            out.append(UnarbitratedPeer(peer))
        if acked_sent_at is not None:
            old = self._confirmed.get(peer)
            if old is None or acked_sent_at >= old.acked_sent_at:
                self._confirmed[peer] = Confirmation(now, acked_sent_at, arbitrated)
        return out

    def peer_lost(self, peer: str) -> None:
        """The peer died or restarted: its word about us is void."""
        self._confirmed.pop(peer, None)

    def leave(self, now: float) -> list[ArbEffect]:
        """Everything is released: end the lease (its keys go with it)."""
        if not self.enabled or self._leaving:
            return []
        self._leaving = True
        if self._lease_state is not LeaseState.ACTIVE:
            return []
        return [RevokeLease(self._send(Op.REVOKE, now), self._lease)]

    def follow(self, groups: Iterable[GroupSide], now: float) -> list[ArbEffect]:
        """Claim the keys of groups wanted or held here; release the others' (once stopped)."""
        if not self.enabled:
            return []
        out: list[ArbEffect] = []
        need: set[str] = set()
        busy: set[str] = set()
        for g in groups:
            if g.want or g.held:
                need.add(g.key)
            if g.busy:
                busy.add(g.key)
        if self._lease_state is LeaseState.ACTIVE and not self._leaving:
            for group in sorted(need):
                k = self._keys.setdefault(group, _Key(group))
                if k.state in (KeyState.FREE, KeyState.TAKEN) and _due(k.retry_at, now):
                    out.append(self._claim(k, now, None))
        for k in self._keys.values():
            idle = k.group not in need and k.group not in busy
            if k.state is KeyState.HELD and idle and _due(k.retry_at, now) and not self._leaving:
                k.fire(KeyInput.RELEASE)
                k.retry_at = None
                request = self._send(Op.RELEASE, now, k.group)
                out.append(ReleaseKey(request, k.group, self._lease))
        return out

    def answer(self, ev: ArbiterAnswer, now: float) -> list[ArbEffect]:
        pending = self._out.pop(ev.request, None)
        if pending is None:
            return []  # stale: a request we stopped waiting for
        out = self._reachability(ev, now)
        match pending.op:
            case Op.GRANT:
                out += self._granted(ev, pending, now)
            case Op.RENEW:
                out += self._renewed(ev, pending, now)
            case Op.CLAIM:
                out += self._claimed(ev, pending, now)
            case Op.RELEASE:
                out += self._released(ev, pending, now)
            case Op.REVOKE:
                self._revoke_done = True
        return out

    # ------------------------------------------------------------- answers --
    def _reachability(self, ev: ArbiterAnswer, now: float) -> list[ArbEffect]:
        ok = not isinstance(ev, ArbiterFailed)
        if ok == self._reachable:
            return []
        self._reachable = ok
        detail = "answering" if ok else ev.error if isinstance(ev, ArbiterFailed) else ""
        return [ArbiterReachability(ok, detail)]

    def _granted(self, ev: ArbiterAnswer, p: _Pending, now: float) -> list[ArbEffect]:
        assert self.timing is not None
        if not isinstance(ev, LeaseGranted):
            self._lease_state = LEASE_TABLE.next(self._lease_state, LeaseInput.FAILED)
            return []
        self._lease_state = LEASE_TABLE.next(self._lease_state, LeaseInput.GRANTED)
        self._lease, self._ttl_s = ev.lease, ev.ttl_s
        self._valid_until = p.sent_at + self.timing.hold_s(ev.ttl_s)
        detail = f"granted for {ev.ttl_s} s"
        if ev.ttl_s != self.timing.ttl_s:
            detail += f" (asked {self.timing.ttl_s} s: etcd's minimum TTL differs)"
        return [LeaseChange(ev.lease, ev.ttl_s, detail)]

    def _renewed(self, ev: ArbiterAnswer, p: _Pending, now: float) -> list[ArbEffect]:
        assert self.timing is not None
        if not isinstance(ev, LeaseRenewed) or p.lease != self._lease:
            return []
        if self._lease_state is not LeaseState.ACTIVE:
            return []
        if ev.ttl_s > 0:
            self._ttl_s = ev.ttl_s
            self._valid_until = max(self._valid_until, p.sent_at + self.timing.hold_s(ev.ttl_s))
            return [LeaseRenewal(now - p.sent_at, ev.ttl_s)]
        # etcd no longer knows the lease: it expired, and every key under it with it.
        self._lease_state = LEASE_TABLE.next(self._lease_state, LeaseInput.GONE)
        out: list[ArbEffect] = [LeaseChange(None, 0, "etcd no longer knows our lease")]
        for k in self._keys.values():
            if KEY_TABLE.allows(k.state, KeyInput.LEASE_GONE):
                k.fire(KeyInput.LEASE_GONE)
                k.retry_at = None
                out.append(KeyChange(k.group, False, "its lease expired"))
        self._out = {r: q for r, q in self._out.items() if q.op is not Op.CLAIM}
        return out + self._grant(now)

    def _claimed(self, ev: ArbiterAnswer, p: _Pending, now: float) -> list[ArbEffect]:
        k = self._keys.get(p.group)
        if k is None or k.state is not KeyState.CLAIMING or p.lease != self._lease:
            return []
        if isinstance(ev, ArbiterFailed):
            k.fire(KeyInput.FAILED)
            k.retry_at = now + self._keepalive
            return []
        if not isinstance(ev, KeyClaimed):
            return []
        if ev.won:
            k.fire(KeyInput.WON)
            k.retry_at, k.holder = None, ""
            return [KeyChange(k.group, True, f"claimed under lease {self._lease:x}")]
        k.fire(KeyInput.LOST)
        if ev.holder == self.me and ev.generation is not None and ev.generation <= self.generation:
            # Our own key from before a restart (or from a lease we lost track of): ours to replace.
            return [self._claim(k, now, ev.revision)]
        holder = ev.holder or "an unknown writer"
        first = k.holder != holder
        k.holder = holder
        self._conflicts += 1
        # A peer that says it no longer claims the group is handing it over: its
        # delete is on the way, try again soon rather than a beat later.
        peer = self._peers.get(holder)
        handing = peer is not None and p.group not in peer.claimed
        wait = ARBITRATOR_HANDOVER_RETRY_MS / 1000 if handing else self._keepalive
        k.retry_at = now + wait
        return [KeyConflict(k.group, holder)] if first else []

    def _released(self, ev: ArbiterAnswer, p: _Pending, now: float) -> list[ArbEffect]:
        k = self._keys.get(p.group)
        if k is None or k.state is not KeyState.RELEASING:
            return []
        if isinstance(ev, ArbiterFailed):
            k.fire(KeyInput.FAILED)
            k.retry_at = now + self._keepalive
            return []
        k.fire(KeyInput.RELEASED)
        return [KeyChange(k.group, False, "released")]

    # ------------------------------------------------------------ requests --
    def _grant(self, now: float) -> list[ArbEffect]:
        assert self.timing is not None
        if self._lease_state is not LeaseState.NONE or self._leaving:
            return []
        self._lease_state = LEASE_TABLE.next(self._lease_state, LeaseInput.GRANT)
        return [GrantLease(self._send(Op.GRANT, now), self.timing.ttl_s)]

    def _claim(self, k: _Key, now: float, over: int | None) -> ClaimKey:
        k.fire(KeyInput.CLAIM)
        k.retry_at = None
        return ClaimKey(self._send(Op.CLAIM, now, k.group), k.group, self._lease, over)

    def _send(self, op: Op, now: float, group: str = "") -> int:
        self._requests += 1
        self._out[self._requests] = _Pending(op, now, self._lease, group)
        return self._requests

    def _in_flight(self, op: Op) -> bool:
        return any(p.op is op for p in self._out.values())


def _due(at: float | None, now: float) -> bool:
    return at is None or now >= at
