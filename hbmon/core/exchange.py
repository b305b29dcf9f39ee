"""The standby / takeover exchange as this node conducts it (spec §5.4).

`core/standby.py` is the protocol's table (which input moves which phase);
this is the conduct around it: when an exchange may start and the refusals
when it may not (a `StandbyRefused` each, with its `RefusalReason` and
heartbeat's wording where it has one, counted here), which groups it moves,
the messages each phase sends, what our groups' releases and starts mean for
it, timeouts, aborts, and the replies to the control request that asked for it.

It serves an `Ownership` (its `Host`), whose peers, group table and batches it
shares: as requester it releases groups in the table, as responder it opens a batch.
Our rsc_hold flags and the `resource` message are core/holding.py's (its `Holds`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from hbmon.core import scopes
from hbmon.core.batches import Batch, Batches
from hbmon.core.events import (
    ControlOp,
    ControlReply,
    ControlRequest,
    Effect,
    GroupState,
    RefusalReason,
    ResourceLog,
    Scope,
    SendMessage,
    StandbyRefused,
    StopReason,
    TakeoverReason,
)
from hbmon.core.groups import GroupTable
from hbmon.core.peerrsc import PeerRsc
from hbmon.core.scopes import keys_in
from hbmon.core.stages import Stage
from hbmon.core.standby import (
    Abort,
    AskTakeover,
    GotDone,
    GotMe,
    GotOther,
    GroupsAcquired,
    GroupsReleased,
    Phase,
    Request,
    Standby,
    TimedOut,
)
from hbmon.wire import rscmsg
from hbmon.wire.message import Field

Wrap = Callable[[tuple[Field, ...], float], SendMessage]

NOT_NICE = "Standby mode only implemented when nice_failback on"
# Our shutdown or restart: no exchange starts any more.
_ENDING = frozenset({Stage.LEAVING, Stage.GONE, Stage.HANDING_OVER, Stage.HANDED_OVER})


def _reason(word: str | None) -> TakeoverReason | None:
    """The requester's `hbwhy` word as a TakeoverReason; None if absent or unknown."""
    if word is None:
        return None
    try:
        return TakeoverReason(word)
    except ValueError:
        return None


def _info(text: str) -> ResourceLog:
    return ResourceLog("info", text)


class Host(Protocol):
    """What the exchange needs from the ownership it serves."""

    @property
    def me(self) -> str: ...

    @property
    def nice(self) -> bool:
        """nice_failback protocol messages are ours to send (auto_failback is not legacy)."""

    @property
    def stable(self) -> bool: ...

    @property
    def stage(self) -> Stage: ...


class Holds(Protocol):
    """What the exchange needs of what we say we hold (core/holding.py)."""

    def claim(self, scope: Scope) -> None:
        """Add `scope` to our rsc_hold flags."""

    def unclaim(self, scope: Scope) -> None:
        """Remove `scope` from our rsc_hold flags."""

    def resource_msg(
        self,
        now: float,
        *,
        stable: bool,
        info: str | None = None,
        held: frozenset[str] | None = None,
    ) -> SendMessage: ...


class StandbyExchange:
    """The one standby or takeover exchange of this node, from request to reply."""

    def __init__(
        self,
        host: Host,
        holds: Holds,
        peers: Mapping[str, PeerRsc],
        table: GroupTable,
        batches: Batches,
        wrap: Wrap,
    ) -> None:
        self._host = host
        self._holds = holds
        self._peers = peers  # the host's own, kept up to date by it
        self._table = table
        self._batches = batches
        self._wrap = wrap
        self._sb = Standby()
        self._controls: set[int] = set()  # control requests not answered yet
        self.refusals = dict.fromkeys(RefusalReason, 0)

    @property
    def idle(self) -> bool:
        return self._sb.idle

    @property
    def phase(self) -> Phase:
        return self._sb.phase

    @property
    def deadline(self) -> float | None:
        return self._sb.deadline

    def control(self, req: ControlRequest, now: float) -> list[Effect]:
        """`hbmon standby|takeover SCOPE`: start an exchange or refuse; the reply comes later."""
        self._controls.add(req.request_id)
        if req.op is ControlOp.STANDBY:
            return self._standby(req, now)
        return self._takeover(req, now)

    def expire(self, now: float) -> list[Effect]:
        return self._timeout(now) if self._sb.timed_out(now) else []

    def _the_peer(self) -> PeerRsc | None:
        """The one healthy peer, None if there is none or more than one."""
        healthy = [p for p in self._peers.values() if p.healthy]
        return healthy[0] if len(healthy) == 1 else None

    def _standby(self, req: ControlRequest, now: float) -> list[Effect]:
        scope = req.scope
        if not self._host.nice:
            return self._refuse(self._not_nice(), req.request_id)
        p = self._the_peer()
        wanted = keys_in(scope, self._host.me, self._table.preferred())
        keys = frozenset(
            g.key
            for g in self._table.configured()
            if g.state is GroupState.HELD and g.key in wanted
        )
        if p is not None and p.exact:
            keys -= p.failed
        refusal = self._local_refusal(self._host.me, now)
        if refusal is None and not keys:
            return self._reply(
                req.request_id, True, f"Nothing to do: no [{scope}] resources held here."
            )
        refusal = refusal or self._peer_refusal(p, self._host.me)
        if refusal is not None or p is None:
            return self._refuse(refusal or self._no_peer(), req.request_id)
        effects: list[Effect] = [_info(f"Going standby [{scope}].")]
        return effects + self.go_standby(
            p, scope, keys, TakeoverReason.STANDBY, req.request_id, now
        )

    def _takeover(self, req: ControlRequest, now: float) -> list[Effect]:
        scope = req.scope
        if not self._host.nice:
            return self._refuse(self._not_nice(), req.request_id)
        p = self._the_peer()
        wanted = keys_in(scope, self._host.me, self._table.preferred())
        keys = frozenset(
            g.key
            for g in self._table.configured()
            if p is not None and g.key in wanted and g.key in p.held and not g.in_backoff(now)
        )
        refusal = self._local_refusal(self._host.me, now)
        if refusal is None and p is not None and not keys:
            return self._reply(
                req.request_id, True, f"Nothing to do: {p.name} holds no [{scope}] resources."
            )
        refusal = refusal or self._peer_refusal(p, self._host.me)
        if refusal is not None or p is None:
            return self._refuse(refusal or self._no_peer(), req.request_id)
        self._sb.fire(AskTakeover(p.name, scopes.mirror(scope), keys, req.request_id), now)
        return [self._wrap(rscmsg.takeover_head(scope), now)]

    # ------------------------------------------------------------- refusals --
    def _refusal(self, p: PeerRsc | None, who: str, now: float) -> StandbyRefused | None:
        """Why an exchange cannot start now, None if it can."""
        return self._local_refusal(who, now) or self._peer_refusal(p, who)

    def _local_refusal(self, who: str, now: float) -> StandbyRefused | None:
        if self._host.stage in _ENDING:
            text = "Shutdown in progress: standby refused."
            return StandbyRefused(RefusalReason.SHUTTING_DOWN, text)
        if not self._sb.idle:
            return self._busy(who, now)
        if not self._host.stable:
            return self._local_flux(who)
        return None

    def _peer_refusal(self, p: PeerRsc | None, who: str) -> StandbyRefused | None:
        if p is None:
            return self._no_peer()
        if not p.stable:
            text = f"standby message [me] from {who} ignored.  Other side is in flux."
            return StandbyRefused(RefusalReason.PEER_IN_FLUX, text)
        return None

    def _busy(self, who: str, now: float) -> StandbyRefused:
        text = (
            f"Standby in progress- new request from {who} ignored "
            f"[{self._sb.seconds_left(now)} seconds left]"
        )
        return StandbyRefused(RefusalReason.BUSY, text)

    @staticmethod
    def _local_flux(who: str) -> StandbyRefused:
        text = f"standby message [me] from {who} ignored.  local resources in flux."
        return StandbyRefused(RefusalReason.LOCAL_IN_FLUX, text)

    @staticmethod
    def _no_peer() -> StandbyRefused:
        return StandbyRefused(RefusalReason.NO_PEER, "No other node is active: standby refused.")

    @staticmethod
    def _not_nice() -> StandbyRefused:
        return StandbyRefused(RefusalReason.NOT_NICE, NOT_NICE)

    def _refuse(self, refusal: StandbyRefused, request_id: int | None = None) -> list[Effect]:
        """One log line (the refusal), one count, and the reply that waits for it."""
        self.refusals[refusal.reason] += 1
        return [refusal, *self._reply(request_id, False, refusal.text, logged=True)]

    def go_standby(
        self,
        p: PeerRsc,
        scope: Scope,
        keys: frozenset[str],
        why: TakeoverReason,
        request_id: int | None,
        now: float,
    ) -> list[Effect]:
        """We give `keys` (our `scope`) to `p`: send `me` and wait for its `other`."""
        self._sb.fire(Request(p.name, scope, keys, why, request_id), now)
        return [
            _info(f"{self._host.me} wants to go standby [{scope}]"),
            self._wrap(rscmsg.ask_head(scope, rscmsg.INFO_ME, keys=keys, why=why), now),
        ]

    def on_takeover(self, p: PeerRsc, scope: Scope, now: float) -> list[Effect]:
        """The peer asks for groups: we stand by with the mirrored scope (§5.4)."""
        mine = scopes.mirror(scope)
        if not self._host.nice:
            return self._refuse(self._not_nice())
        refusal = self._refusal(p, self._host.me, now)
        if refusal is not None:
            return self._refuse(refusal)
        wanted = keys_in(mine, self._host.me, self._table.preferred())
        keys = frozenset(
            g.key
            for g in self._table.configured()
            if g.state is GroupState.HELD and g.key in wanted and g.key not in p.failed
        )
        return [
            _info(f"Going standby [{mine}]."),
            *self.go_standby(p, mine, keys, TakeoverReason.TAKEOVER, None, now),
        ]

    def on_ask(self, p: PeerRsc, m: rscmsg.AskMsg, now: float) -> list[Effect]:
        """The peer's `ask_resources`: `me` offers, `other` accepts, `done` ends a phase."""
        sb = self._sb
        match m.info:
            case rscmsg.INFO_ME:
                effects: list[Effect] = [_info(f"{p.name} wants to go standby [{m.scope}]")]
                asked = _reason(m.why)
                if not self._host.nice and asked is not TakeoverReason.FAILBACK:
                    return [*effects, *self._refuse(self._not_nice())]  # legacy: only failback
                ours = sb.phase is Phase.TAKEOVER and sb.peer == p.name
                refusal = self._offer_refusal(p, ours, now)
                if refusal is not None:
                    return [*effects, *self._refuse(refusal)]
                request_id = sb.request_id if ours else None
                why = TakeoverReason.TAKEOVER if ours else (asked or TakeoverReason.STANDBY)
                keys = m.keys if m.keys is not None else frozenset()
                sb.fire(GotMe(p.name, m.scope, keys, why, p.reports, request_id), now)
                head = rscmsg.ask_head(m.scope, rscmsg.INFO_OTHER)
                return [*effects, self._wrap(head, now)]
            case rscmsg.INFO_OTHER if sb.phase is Phase.ASKED and sb.peer == p.name:
                sb.fire(GotOther(p.reports), now)
                self._holds.unclaim(sb.scope)  # heartbeat's go_standby(ME)
                for key in sb.keys:
                    self._table.unwant(key, StopReason.STANDBY)
                remaining = self._table.held() - sb.keys
                return [
                    _info(f"standby: {p.name} can take our {sb.scope} resources"),
                    self._holds.resource_msg(
                        now, stable=False, info=rscmsg.INFO_STANDBY, held=remaining
                    ),
                ]
            case rscmsg.INFO_DONE if sb.phase is Phase.HANDED and sb.peer == p.name:
                scope, failed, rid = sb.scope, sb.failed, sb.request_id
                sb.fire(GotDone(), now)
                effects = [_info(f"Other node completed standby takeover of {scope} resources.")]
                if failed:
                    text = f"Standby [{scope}] done, but these groups failed to stop here: "
                    return effects + self._reply(rid, False, text + ", ".join(sorted(failed)))
                return effects + self._reply(rid, True, f"Standby [{scope}] complete.")
            case rscmsg.INFO_DONE if sb.phase is Phase.OFFERED and sb.peer == p.name:
                keys = (
                    m.keys
                    if m.keys is not None
                    else keys_in(m.scope, p.name, self._table.preferred())
                )
                take = [
                    g.key
                    for g in self._table.configured()
                    if g.key in keys and not g.claimed and not g.in_backoff(now)
                ]
                sb.fire(GotDone(frozenset(take)), now)
                for key in take:
                    self._table.want(key, sb.why)
                # Even with nothing to start, the batch ends the exchange when it finishes.
                self._batches.open(Batch(sb.why, now, p.name, set(take), standby=True))
                return [_info(f"standby: acquire [{m.scope}] resources from {p.name}")]
            case _:
                return []

    def _offer_refusal(self, p: PeerRsc, ours: bool, now: float) -> StandbyRefused | None:
        who = p.name
        if self._host.stage is not Stage.RUNNING or self._table.busy() or self._batches:
            return self._local_flux(who)
        if not self._sb.idle and not ours:
            return self._busy(who, now)
        return self._peer_refusal(p, who)

    def progress(self, now: float) -> list[Effect]:
        """After every input: our release finished (send `done`), or the peer moved on."""
        sb = self._sb
        if sb.phase in (Phase.HANDED, Phase.OFFERED):
            return self._peer_left(now)
        if sb.phase is not Phase.RELEASING:
            return []
        groups = [g for k in sb.keys if (g := self._table.get(k)) is not None]
        if any(g.busy or g.state is GroupState.HELD for g in groups):
            return []
        released = frozenset(g.key for g in groups if not g.held)
        sb.fire(GroupsReleased(frozenset(g.key for g in groups if g.held)), now)
        head = rscmsg.ask_head(sb.scope, rscmsg.INFO_DONE, keys=released, why=sb.why)
        return [_info(f"Local standby process completed [{sb.scope}]."), self._wrap(head, now)]

    def _peer_left(self, now: float) -> list[Effect]:
        """We wait on the peer's next message, but its news shows it has moved on:
        the message was lost (hbmon peers only; heartbeat peers: the 1 h timeout).

        HANDED: the responder is idle again and holds the groups → its `done` was
        lost; idle without them → it gave up. OFFERED: the requester released the
        groups and waits (handed) or gave up (idle) → act on its lost `done`; it is
        idle still holding them → it gave up.
        """
        sb = self._sb
        p = self._peers.get(sb.peer or "")
        if p is None or not (p.exact and p.heard) or p.reports <= sb.mark:
            return []  # what it said before the phase began is no news about it
        left = f"{p.name} left the exchange"
        if sb.phase is Phase.HANDED:
            if p.phase != rscmsg.IDLE:
                return []
            if sb.keys <= p.held:
                return self.on_ask(p, rscmsg.AskMsg(sb.scope, rscmsg.INFO_DONE, None, None), now)
            return self.abort(p.name, left, now)
        if p.phase not in (rscmsg.IDLE, Phase.HANDED.value):
            return []
        if sb.keys & p.claimed:
            return self.abort(p.name, left, now) if p.phase == rscmsg.IDLE else []
        done = rscmsg.AskMsg(sb.scope, rscmsg.INFO_DONE, sb.keys, None)
        return self.on_ask(p, done, now)

    def acquired(self, b: Batch, now: float) -> list[Effect]:
        """A standby batch finished: as responder, the exchange is done; say so."""
        sb = self._sb
        if sb.phase is not Phase.ACQUIRING or sb.peer != b.peer:
            return []
        scope, rid = sb.scope, sb.request_id
        failed = sb.keys - set(b.started)
        sb.fire(GroupsAcquired(), now)
        self._holds.claim(scopes.mirror(scope))  # the requester's set
        effects: list[Effect] = [
            _info(f"Standby resource acquisition done [{scope}]."),
            self._wrap(rscmsg.ask_head(scope, rscmsg.INFO_DONE), now),
        ]
        if failed:
            text = "Takeover done, but these groups failed to start here: "
            return effects + self._reply(rid, False, text + ", ".join(sorted(failed)))
        return effects + self._reply(rid, True, "Takeover complete.")

    def _timeout(self, now: float) -> list[Effect]:
        sb = self._sb
        match sb.phase:
            case Phase.ASKED:
                text = "No reply to standby request.  Standby request cancelled."
            case Phase.TAKEOVER:
                text = "No reply to takeover request.  Takeover request cancelled."
            case _:
                text = f"Standby [{sb.scope}] with {sb.peer} timed out in phase {sb.phase}."
        rid = sb.request_id
        sb.fire(TimedOut(), now)
        return [ResourceLog("WARN", text), *self._reply(rid, False, text, logged=True)]

    def abort(self, peer: str | None, why: str, now: float) -> list[Effect]:
        """Cancel the exchange with `peer` (any exchange if None): it died, left, restarted."""
        sb = self._sb
        if sb.idle or (peer is not None and sb.peer != peer):
            return []
        rid, phase = sb.request_id, sb.phase
        sb.fire(Abort(), now)
        text = f"Standby exchange cancelled in phase {phase}: {why}."
        return [ResourceLog("WARN", text), *self._reply(rid, False, text, logged=True)]

    def _reply(
        self, request_id: int | None, ok: bool, text: str, *, logged: bool = False
    ) -> list[Effect]:
        if request_id is None or request_id not in self._controls:
            return []
        self._controls.discard(request_id)
        return [ControlReply(request_id, ok, text, logged)]
