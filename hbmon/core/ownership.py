"""Who holds which resource group: the ownership protocol (spec §5.2–5.6), sans-IO.

`Node` feeds this the facts membership establishes (comm-up, a peer alive,
dead, restarted, leaving, back after a partition), the peers' resource
messages, ping counts, the executor's answers and control requests. After each
input it settles what every group should be, then lets the group table act.
The parts, each in its own file:

    core/stages.py     the stage table: JOINING → WAITING → RUNNING → LEAVING → GONE
    core/takeover.py   startup, takeovers from a dead, leaving or restarted peer (pure)
    core/handover.py   a restart without a failover: what the old process hands
                       the new one, and what the new one adopts (pure)
    core/lifecycle.py  our own start, stop and restart: the handover adopted,
                       leftovers stopped, everything released or handed over
    core/rules.py      the standing rules while RUNNING: dual owner, quorum
                       retry, failback, ping comparison, nobody owns (pure)
    core/facts.py      the snapshot those decisions read, the wishes they return
    core/exchange.py   the standby / takeover exchange (table in core/standby.py)
    core/batches.py    acquisitions in flight, `TakeoverComplete` when one ends
    core/guard.py      the address probe, the reset of a dead node, hung_owner
    core/groups.py     the per-group state machine that starts and stops groups
    core/peerrsc.py    what each peer said about its groups (PeerRsc)
    core/holding.py    our rsc_hold flags, status extras and `resource` message
    core/arbitration.py  the external arbitrator (etcd): keys, lease, failsafe
    core/fixedpoint.py what an input that changes nothing may skip

This class holds the state, takes the inputs, builds the snapshot and applies
the wishes (`_apply`, the only place a decision changes anything).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import assert_never

from hbmon.config.model import AutoFailback, Config
from hbmon.core.arbitration import Arbitration
from hbmon.core.batches import Batches
from hbmon.core.events import (
    AnnounceGroup,
    ConflictKind,
    ControlRequest,
    DeathReason,
    Effect,
    FenceDone,
    GroupDone,
    GroupState,
    HandedOver,
    HandoverReady,
    OwnershipConflict,
    ProbeDone,
    ResourceLog,
    Scope,
    StopReason,
    TakeoverReason,
)
from hbmon.core.exchange import StandbyExchange, Wrap
from hbmon.core.facts import (
    Acquire,
    Block,
    Claim,
    Dual,
    Facts,
    FailbackDone,
    Fire,
    Force,
    GiveAway,
    GroupFacts,
    NoReset,
    PingLead,
    Release,
    Reset,
    Taken,
    TakeOverFrom,
    Unblock,
    Unowned,
    Wish,
    info,
)
from hbmon.core.fixedpoint import FixedPoint
from hbmon.core.groups import GroupTable, Outcome
from hbmon.core.guard import Guard
from hbmon.core.holding import Holding
from hbmon.core.lifecycle import Lifecycle
from hbmon.core.linkrtt import LinkRtt
from hbmon.core.peerrsc import Arrival, News, PeerRsc, hb_peer_leaving, held_elsewhere
from hbmon.core.rules import FAILBACK_DUE, RULES, Memory
from hbmon.core.snapshot import OwnershipView
from hbmon.core.stages import (
    Announce,
    PeerLeaving,
    Released,
    Stage,
    StageInput,
    Stages,
)
from hbmon.core.takeover import rejoined, startup, startup_deadlines, takeover
from hbmon.wire import rscmsg
from hbmon.wire.message import Field, Message
from hbmon.wire.rscmsg import Report


class Ownership:
    """This node's side of the resource protocol: inputs in, effects out, one deadline.

    It owns the group table, what each peer said (PeerRsc), the stage, the
    standby exchange and the batches; the decisions it takes are pure functions
    of a `Facts` snapshot (core/takeover.py, core/rules.py).
    """

    def __init__(
        self, config: Config, now: float, wrap: Wrap, gate: Arbitration, link: LinkRtt
    ) -> None:
        self._wrap, self._gate, self._link = wrap, gate, link
        self._table = GroupTable(config.resources, gate.may_start if gate.enabled else None)
        self._peers: dict[str, PeerRsc] = gate.bind({})
        self._stages = Stages()
        self._comm_at: float | None = None
        self._now = now
        self._batches = Batches()
        self._life = Lifecycle(self._table, self._stages, self._batches)
        self._holding = Holding(config.node, self._table, wrap, self.report)
        self._exchange = StandbyExchange(
            self, self._holding, self._peers, self._table, self._batches, wrap
        )
        self._memory = Memory()  # what the standing rules remember between inputs
        self._guard = Guard(
            config, self._table, self._batches, self._memory, wrap, self._peers, gate.may_start
        )
        self._pings = (0, 0)  # (reachable, configured)
        self._reported_stable = False
        self._fixed = FixedPoint()  # what an input that changes nothing skips
        self._conflicts = dict.fromkeys(ConflictKind, 0)
        self._configure(config)

    # ------------------------------------------------------------- config --
    def _configure(self, config: Config) -> list[str]:
        self._cfg = config
        self._me = self._holding.me = config.node
        self._mode = config.auto_failback
        keepalive = config.timers.keepalive_ms / 1000
        self._settle = 2 * keepalive
        self._stickiness = config.hbmon.failback_stickiness_ms / 1000
        self._ping_hold = 2 * keepalive
        peers = {n: self._peers.get(n) or PeerRsc(n) for n in config.peers}
        self._peers.clear()  # in place: the exchange reads the same dict
        self._peers.update(peers)
        self._pings = (self._pings[0], len(config.ping_nodes))
        self._guard.configure(config)
        return self._table.configure(config.resources)

    def reconfigure(self, config: Config, now: float) -> list[Effect]:
        self._now = now
        for key in self._configure(config):
            self._batches.drop(key)
            self._table.unwant(key, StopReason.REMOVED)
        return self._reconcile(now)

    # ------------------------------------------------------------ queries --
    @property
    def gone(self) -> bool:
        """Our shutdown released everything it could; `shutdone` may go."""
        return self._stages.state is Stage.GONE

    @property
    def stable(self) -> bool:
        return (
            self._stages.state is Stage.RUNNING
            and not self._table.busy()
            and self._exchange.idle
            and not self._batches.pending()
        )

    def report(self) -> Report:
        t = self._table
        phase = self._exchange.phase.value
        taken = frozenset(self._memory.taken)
        return Report(self.stable, t.steady(), t.pending(), t.failed(self._now), phase, taken)

    def status_fields(self) -> tuple[Field, ...]:
        return self._holding.status_fields(*self._pings)

    def rsc_hold(self) -> str:
        return self._holding.rsc_hold(self._stages.state, self.stable)

    def next_deadline(self) -> float | None:
        return self._fixed.deadline(self._now, self._next_deadline, self._gate.enabled)

    def _next_deadline(self) -> float | None:
        ds: list[float | None] = [
            self._table.next_deadline(),
            self._exchange.deadline,
            *self._guard.deadlines(),
            *self._memory.deadlines(self._settle, self._ping_hold),
            self._gate.next_deadline(self._now),
        ]
        if self._stages.state is Stage.WAITING and self._comm_at is not None:
            ds += startup_deadlines(self._comm_at, (p.resource_at for p in self._peers.values()))
        ds += [
            p.up_since + self._stickiness
            for p in self._peers.values()
            if p.failback and p.up_since is not None
        ]
        # Anything at or before the last settle has been handled there.
        return min((d for d in ds if d is not None and d > self._now), default=None)

    def view(self) -> OwnershipView:
        """What the snapshot shows of ownership (core/snapshot.py)."""
        return OwnershipView(
            groups=self._table.views(self._me, held_elsewhere(self._peers.values())),
            rsc_hold=self.rsc_hold(),
            stable=self.stable,
            takeovers=tuple(self._batches.completed.items()),
            last_takeover=self._batches.last,
            conflicts=tuple(self._conflicts.items()),
            blocked=tuple(self._guard.blocked.items()),
            refusals=tuple(self._exchange.refusals.items()),
            fencing=self._guard.fences.views(),
            handover=self._life.resumed,
        )

    # ------------------------------------------------------ for the exchange --
    @property
    def me(self) -> str:
        return self._me

    @property
    def stage(self) -> Stage:
        return self._stages.state

    # ------------------------------------------------------------- inputs --
    def _news(self, name: str, news: News, now: float) -> PeerRsc | None:
        """Record what we learnt about peer `name` (None: not a peer of ours)."""
        p = self._peers.get(name)
        if p is not None:
            self._now = now
            p.hear(news, now)
            p.failback = p.failback or news in FAILBACK_DUE[self._mode]
        return p

    def active_at_start(self, keys: tuple[str, ...], now: float) -> list[Effect]:
        """heartbeat's verifyallidle, made to act: release what runs before we join."""
        self._now = now
        return self._life.leftovers(keys, now) + self._reconcile(now)

    def comm_up(self, now: float) -> list[Effect]:
        self._now = now
        if self._comm_at is None:
            self._comm_at = now
        return self._reconcile(now)

    def pings(self, reachable: int, configured: int, now: float) -> list[Effect]:
        self._now = now
        if self._fixed.clean and self._pings == (reachable, configured):
            return []  # a reply from a ping node that was up already: nothing new
        self._pings = (reachable, configured)
        return self._reconcile(now)

    def peer_alive(self, name: str, now: float) -> list[Effect]:
        if self._news(name, News.CAME_BACK, now) is None:
            return []
        effects = self._guard.back(name)
        # Takeovers from it that have not started yet: it is back, they are moot.
        for g in self._table:
            if not g.held and g.start_reason is TakeoverReason.PEER_DEAD:
                self._batches.forget(g.key)
                self._table.unwant(g.key, StopReason.PEER_BACK)
        return effects + self._reconcile(now)

    def peer_restarted(self, name: str, now: float) -> list[Effect]:
        if self._news(name, News.RESTARTED, now) is None:
            return []
        # What it keeps is judged on its new process's first word about its groups
        # (`message`, then core/takeover.py `rejoined`): after a handover it still
        # holds them, after a crash it holds nothing and the rest is taken over.
        effects = self._guard.back(name) + self._exchange.abort(name, f"{name} restarted", now)
        return effects + self._reconcile(now)

    def partition_healed(self, name: str, now: float) -> list[Effect]:
        if self._news(name, News.HEALED, now) is None:
            return []
        # While cut off, the peer may have taken our groups and announced them, moving
        # clients' ARP entries to it. Whoever keeps a group after the heal must point
        # them back, or they stay on the releasing side until the entries expire
        # (about 30 s). The releasing side's announcements stop with its release.
        held = [AnnounceGroup(g.key) for g in self._table if g.state is GroupState.HELD]
        return held + self._reconcile(now)

    def peer_dead(
        self, name: str, reason: DeathReason, now: float, silent_since: float | None = None
    ) -> list[Effect]:
        """`silent_since`: its last beat; an early probe in that silence spares a second one."""
        if self._news(name, News.DIED, now) is None:
            return []
        effects = self._exchange.abort(name, f"{name} is dead", now)
        if self._stages.state is Stage.RUNNING:
            wishes = takeover(self._facts(now), name, dead=True, silent_since=silent_since)
            effects += self._apply(wishes, now)
        return effects + self._reconcile(now)

    def peer_overdue(self, name: str, silent_since: float, now: float) -> list[Effect]:
        """The peer is close to its deadtime: probe early (Guard.probe_early)."""
        p = self._peers.get(name)
        if p is None or not p.alive or self._stages.state is not Stage.RUNNING:
            return []
        self._now = now
        self._fixed.dirty()
        return self._guard.probe_early(silent_since, self._link.probe_window())

    def peer_leaving(self, name: str, now: float) -> list[Effect]:
        """The peer stops gracefully (`resource … info=shutdown` or `shutdone`): take over now."""
        p = self._peers.get(name)
        if p is None or p.leaving:
            return []
        self._news(name, News.LEAVING, now)
        effects = self._exchange.abort(name, f"{name} is shutting down", now)
        if self._stages.allows(StageInput.PEER_LEAVING):
            self._stages.fire(PeerLeaving(name))
            effects += self._apply(takeover(self._facts(now), name, dead=False), now)
        return effects + self._reconcile(now)

    def message(
        self, name: str, msg: Message, hg: int | None, seq: int, now: float
    ) -> list[Effect]:
        p = self._peers.get(name)
        if p is None:
            return []
        parsed = self._fixed.parse(name, msg)
        if parsed is None:
            return []
        self._now = now
        arrival = p.arrival(hg, seq)
        if arrival is Arrival.AGAIN:
            return []
        effects: list[Effect] = []
        if isinstance(parsed, rscmsg.StatusExt | rscmsg.ResourceMsg) and (
            arrival is Arrival.NEWEST
        ):
            quiet = self._fixed.clean and self._exchange.idle and not p.rejoining
            before = p.said()
            settled = p.apply(parsed, self._table.preferred(), now)
            if quiet and isinstance(parsed, rscmsg.StatusExt) and p.said() == before:
                return []  # a beat that repeats what the peer said: the fixed point holds
            if settled and self._stages.state is not Stage.JOINING:
                effects.append(info("remote resource transition completed."))
            if p.rejoining:
                p.rejoining = False
                if self._stages.state is Stage.RUNNING:
                    effects += self._apply(rejoined(self._facts(now), name), now)
        match parsed:
            case rscmsg.Starting():
                effects += self._on_starting(p, now)
            case rscmsg.ResourceMsg(info=rscmsg.INFO_SHUTDOWN):
                effects += self.peer_leaving(name, now)
            case rscmsg.AskMsg():
                effects += self._exchange.on_ask(p, parsed, now)
            case rscmsg.TakeoverMsg(scope=scope):
                effects += self._exchange.on_takeover(p, scope, now)
            case _:
                pass
        return effects + self._reconcile(now)

    def group_done(self, ev: GroupDone, now: float) -> list[Effect]:
        self._now = now
        effects, outcome = self._table.done(ev, now)
        match outcome:
            case Outcome.STARTED:
                self._batches.started([ev.key])
            case Outcome.START_FAILED:
                self._batches.drop(ev.key)
                effects += self._announce_state(now)  # so the peer can take it
            case Outcome.STOP_FAILED | Outcome.STOPPED:
                self._life.stopped(ev.key)
            case _:
                pass
        return effects + self._reconcile(now)

    def probe_done(self, ev: ProbeDone, now: float) -> list[Effect]:
        self._now = now
        return self._guard.probed(ev, now) + self._reconcile(now)

    def fence_done(self, ev: FenceDone, now: float) -> list[Effect]:
        """A reset attempt ended; after a good one the peer's groups are taken, unprobed."""
        self._now = now
        take, effects = self._guard.fenced(ev, now)
        if take and self._stages.state is Stage.RUNNING:
            effects += self._apply(takeover(self._facts(now), ev.node, dead=True), now)
        return effects + self._reconcile(now)

    def control(self, req: ControlRequest, now: float) -> list[Effect]:
        self._now = now
        return self._exchange.control(req, now) + self._reconcile(now)

    def leave(self, now: float) -> list[Effect]:
        """Our graceful shutdown: release everything (the node sends `shutdone` once gone)."""
        if not self._stages.allows(StageInput.LEAVE):
            return []
        self._now = now
        effects = self._guard.stand_down() + self._exchange.abort(None, "shutting down", now)
        effects += self._life.leave()
        self._holding.claims = Scope.NONE
        return effects + self._reconcile(now)

    # ----------------------------------------------------- restart (handover) --
    def hand_over(self, now: float) -> list[Effect]:
        """Our restart: keep what runs for the next process (core/lifecycle.py)."""
        if not self._stages.allows(StageInput.HAND_OVER):
            return []
        self._now = now
        effects = self._guard.stand_down() + self._exchange.abort(None, "restarting", now)
        return effects + self._life.hand_over() + self._reconcile(now)

    def handover_ready(self, window_s: float) -> HandoverReady | None:
        """Once, when our restart may hand over: nothing is starting or stopping."""
        self._fixed.dirty()  # asked only while we hand over
        return self._life.handover_ready(self._holding.claims, window_s)

    def handed(self, now: float) -> list[Effect]:
        """The handover is saved: the groups are the next process's from here."""
        self._now = now
        self._life.handed()
        self._fixed.dirty()
        return []

    def handed_over(self, ev: HandedOver, now: float) -> list[Effect]:
        """At start: adopt what our previous process handed over (core/lifecycle.py)."""
        if self._stages.state is not Stage.JOINING or self._life.resumed is not None:
            return []
        self._now = now
        self._holding.claims = ev.claims
        return self._life.adopt(ev, now) + self._reconcile(now)

    def expire(self, now: float) -> list[Effect]:
        self._now = now
        return self._guard.expire(now) + self._exchange.expire(now) + self._reconcile(now)

    # ------------------------------------------------------------ resolve --
    def _reconcile(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        window = self._link.probe_window()  # an address probe's length
        for _ in range(8):  # a decision can enable the next; converges in a few rounds
            step = self._decide(now) + self._table.step(now, window) + self._finish_batches(now)
            if not step:
                break
            effects += step
        effects += self._after(now)
        effects += self._gate.follow(self._table, now)
        effects += self._guard.key_won(now)  # a key won may let a reset go ahead
        self._fixed.reached(self._gate.enabled)
        return effects

    def _decide(self, now: float) -> list[Effect]:
        match self._stages.state:
            case Stage.JOINING:
                if self._comm_at is not None and not self._life.verifying:
                    return self._announce(now)
                return []
            case Stage.WAITING:
                return self._apply(startup(self._facts(now)), now)
            case Stage.RUNNING:
                return self._exchange.progress(now) + self._standing_rules(now)
            case _:
                return []

    def _after(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        if self._stages.state is Stage.RUNNING:
            stable = self.stable
            if stable and not self._reported_stable:
                effects += self._life.settled()
                if self.nice and not self._hb_peer_leaving():
                    effects.append(self._holding.resource_msg(now, stable=True))
            self._reported_stable = stable
        elif self._stages.state is Stage.LEAVING and not self._table.busy():
            effects += self._life.farewell()
            if self.nice and self._comm_at is not None:
                effects.append(
                    self._holding.resource_msg(now, stable=False, info=rscmsg.INFO_SHUTDOWN)
                )
            self._stages.fire(Released())
        return effects

    @property
    def nice(self) -> bool:
        """nice_failback protocol messages (`starting`, `resource`) are ours to send."""
        return self._mode is not AutoFailback.LEGACY

    # ------------------------------------------------------------ startup --
    def _announce(self, now: float) -> list[Effect]:
        self._stages.fire(Announce())
        starting = [self._wrap(rscmsg.starting_head(), now)] if self.nice else []
        return starting + self._apply(startup(self._facts(now)), now)

    def _on_starting(self, p: PeerRsc, now: float) -> list[Effect]:
        self._news(p.name, News.STARTING, now)
        if self._stages.state is Stage.JOINING or not self.nice:
            return []
        return [self._holding.resource_msg(now, stable=self.stable)]

    # ------------------------------------------------------------- wishes --
    def _standing_rules(self, now: float) -> list[Effect]:
        """Each rule of core/rules.py on a snapshot taken after the previous one's wishes."""
        effects: list[Effect] = []
        facts: Facts | None = None
        for rule in RULES:
            facts = facts or self._facts(now)
            wishes = rule(facts)
            if wishes:
                effects += self._apply(wishes, now)
                facts = None
        return effects

    def _facts(self, now: float) -> Facts:
        late = self._batches.late_since
        return Facts(
            now=now,
            me=self._me,
            mode=self._mode,
            policy=self._cfg.hbmon.quorum_policy,
            reachable=self._pings[0],
            configured=self._pings[1],
            stable=self.stable,
            exchange_idle=self._exchange.idle,
            comm_at=self._comm_at,
            settle_s=self._settle,
            stickiness_s=self._stickiness,
            ping_hold_s=self._ping_hold,
            groups=tuple(GroupFacts.of(g, now, late(g.key)) for g in self._table.configured()),
            peers=tuple(self._guard.peer_facts(p) for p in self._peers.values()),
            dual=frozenset(self._memory.dual),
            unowned=MappingProxyType(dict(self._memory.unowned)),
            ping_lead_since=self._memory.ping_lead_since,
            fence_delay_s=self._guard.fences.delay_s,
            hung_take=self._guard.hung_wait is not None,
            hung_wait_s=self._guard.hung_wait or 0.0,
            taken=MappingProxyType(dict(self._memory.taken)),
            unlicensed=self._gate.unlicensed(self._table.held(), now),
            arbitrated=self._gate.enabled,
        )

    def _apply(self, wishes: list[Wish], now: float) -> list[Effect]:
        """Carry out a decision's wishes in order; notices come out as effects."""
        effects: list[Effect] = []
        for w in wishes:
            match w:
                case Fire(event=event):
                    self._life.fire(event)
                case Claim(scope=scope):
                    self._holding.claim(scope)
                case Release(key=key, reason=reason):
                    self._batches.forget(key)  # neither pending nor waiting as late
                    self._table.unwant(key, reason)
                case Acquire():
                    self._batches.acquire(w, self._table, now)
                case Block() | Unblock() | Reset() | NoReset() | Force():
                    effects += self._guard.apply(w, now)
                case TakeOverFrom(peer=peer):
                    effects += self._apply(takeover(self._facts(now), peer, dead=True), now)
                case GiveAway(peer=peer, scope=scope, keys=keys, why=why):
                    p = self._peers[peer]
                    effects += self._exchange.go_standby(p, scope, keys, why, None, now)
                case FailbackDone(peer=peer):
                    self._peers[peer].failback = False
                case Dual() | Unowned() | PingLead() | Taken():
                    self._memory.note(w)
                case OwnershipConflict(kind=kind):
                    self._conflicts[kind] += 1
                    effects.append(w)
                case AnnounceGroup() | ResourceLog():
                    effects.append(w)
                case _:
                    assert_never(w)
        return effects

    # ------------------------------------------------------------ batches --
    def _finish_batches(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for b in self._batches.finish():
            if b.started:
                effects.append(self._batches.complete(b, now))
                if b.mach_down and self.nice and not self._hb_peer_leaving():
                    head = rscmsg.resource_head(
                        Scope.FOREIGN, stable=None, info=rscmsg.INFO_MACH_DOWN
                    )
                    effects += [self._wrap(head, now), info("mach_down takeover complete.")]
            if b.standby:
                effects += self._exchange.acquired(b, now)
        return effects

    # ----------------------------------------------------------- messages --
    def _hb_peer_leaving(self) -> bool:
        return hb_peer_leaving(self._peers.values())

    def _announce_state(self, now: float) -> list[Effect]:
        if self._stages.state is not Stage.RUNNING or not self.nice or self._hb_peer_leaving():
            return []
        return [self._holding.resource_msg(now, stable=self.stable)]
