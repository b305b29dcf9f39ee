"""The sans-IO node: events in, effects out, one deadline for the driver.

`Node` composes the single-purpose parts:

    sender       fixed-rate status schedule; the outbox: our seq, our messages
                 built, when each went out
    linkrtt      the links' measured round trips: how long an address probe lasts
    membership   peers and links: seq verdicts, late/dead, partition heal
    pingnodes    ping-node liveness
    echo         hbecho entries out, RTT samples in
    counters     drops by (iface, reason)
    ownership    resource groups: takeover, standby, failback, split-brain guard,
                 and the handover of a restart (core/handover.py)
    arbitration  the external arbitrator (etcd), when configured: our lease and
                 keys renewed with every status, the peer's word for the failsafe

Membership's and the ping nodes' verdicts (comm-up, a peer alive, dead,
restarted, leaving, back after a partition; a ping node up or down) are routed
to ownership as they happen; so are the peers' resource messages.

Every entry point takes `now` (monotonic seconds) and first settles everything
due at or before `now`, so a late driver still sees deadlines in order and a
snapshot never shows a peer alive past its dead interval. Wall time for the
`ts` field is `now + wall_epoch`.
"""

from __future__ import annotations

from typing import assert_never

from hbmon.config.leasetiming import lease_timing
from hbmon.config.model import EARLY_PROBE_MARGIN_MS, Config
from hbmon.core.arbevents import (
    ArbiterFailed,
    KeyClaimed,
    KeyReleased,
    LeaseGranted,
    LeaseRenewed,
)
from hbmon.core.arbitration import ARB_FIELD, Arbitration
from hbmon.core.counters import DropCounters
from hbmon.core.echo import EchoBook
from hbmon.core.events import (
    ActiveAtStart,
    CommUp,
    ControlReply,
    ControlRequest,
    Effect,
    Event,
    FenceDone,
    GroupDone,
    HandedOver,
    Handover,
    HandoverComplete,
    HandoverReady,
    HandoverSaved,
    LoadAverage,
    LocalStatusChanged,
    NodeDead,
    NodeStatus,
    NodeTransition,
    PacketDropped,
    PacketIn,
    PacketRejected,
    PartitionHealed,
    PeerRestarted,
    PingObserved,
    PingResult,
    PingTransition,
    ProbeDone,
    ResourceLog,
    RttMeasured,
    SendMessage,
    Shutdown,
    ShutdownComplete,
    ShutdownNotice,
)
from hbmon.core.flowctl import T_NS_REXMIT, T_REQNODES, FlowControl, repnodes_head
from hbmon.core.handover import advertised_window_ms
from hbmon.core.linkrtt import LinkRtt
from hbmon.core.membership import Membership
from hbmon.core.ownership import Ownership
from hbmon.core.pingnodes import PingNodes
from hbmon.core.sender import Outbox, StatusSchedule, advertised_dt_ms, echo_field
from hbmon.core.snapshot import Snapshot
from hbmon.wire import builders
from hbmon.wire.builders import EchoEntry
from hbmon.wire.message import Field, Message

_BACK = (NodeStatus.INIT, NodeStatus.DEAD)
_ALIVE = (NodeStatus.UP, NodeStatus.ACTIVE)

# The `st` of our very first status, as heartbeat sends it (spec §4.6.5).
FIRST_ST = "init"
# The restart notice goes out this many times (the old process exits right after:
# nobody would answer a retransmission request).
HANDOVER_NOTICES = 2
# Settling is a fixed point (comm-up can make more deadlines due); it converges in 2.
_MAX_SETTLE_ROUNDS = 8


class Node:
    """One cluster node's whole protocol state, sans-IO: events in, effects out.

    `start`, `handle`, `on_timer` and `reconfigure` take `now` (monotonic seconds)
    and return the effects to carry out, in order; `next_deadline` says when
    `on_timer` is next needed; `snapshot` is one consistent view for the metrics
    and `hbmon status`. It owns the parts listed in the module docstring and
    routes their verdicts to one another; it never reads a clock or does I/O.
    """

    def __init__(
        self, config: Config, *, generation: int, uuid: bytes, now: float, wall_epoch: float
    ) -> None:
        self._config = config
        self._generation = generation
        self._uuid = uuid
        self._wall_epoch = wall_epoch
        self._started_at = now
        self._last_now = now  # the latest time an entry settled (packets never go before it)
        self._local = NodeStatus.INIT
        self._comm_up = False
        self._stopped = False
        self._leaving = False
        # Our restart (core/handover.py): requested, and what the driver was asked to save.
        self._handing = False
        self._handover: HandoverReady | None = None
        self._sent_first = False
        self._schedule: StatusSchedule | None = None
        self._echo = EchoBook()
        self._membership = Membership(config, now)
        self._pings = PingNodes.create(
            config.ping_nodes,
            initdead=config.timers.initdead_ms / 1000,
            deadping=config.timers.deadping_ms / 1000,
            now=now,
        )
        self._drops = DropCounters(self._membership.ifaces)
        self._gate = Arbitration(
            config.node, generation, lease_timing(config), config.timers.keepalive_ms / 1000
        )
        self._flow = FlowControl()
        self._outbox = Outbox(config, generation, uuid, wall_epoch, self._flow)
        self._link_rtt = LinkRtt.sized_for(config)
        self._own = Ownership(config, now, self._outbox.sequenced, self._gate, self._link_rtt)
        self._probed_silence: dict[str, float] = {}  # peer -> last beat an early probe covered
        # In every status: we run with the arbitrator (a peer without it is a mixed pair).
        self._arb_field = (Field(ARB_FIELD, b"1"),) if self._gate.enabled else ()
        # next_deadline() as of the last entry (start, handle, on_timer, reconfigure);
        # None when an entry has run since, or before the first call.
        self._deadline: tuple[float | None] | None = None

    # -------------------------------------------------------------- entry --
    def start(self, now: float) -> list[Effect]:
        """Local status 'up' and the first status out; the keepalive schedule starts here."""
        if self._schedule is not None or self._stopped:
            return []
        self._started_at = now
        self._last_now = max(self._last_now, now)
        self._membership.reset_init_clock(now)
        self._pings.reset_init_clock(now)
        self._schedule = StatusSchedule(now, self._config.timers.keepalive_ms / 1000)
        self._local = NodeStatus.UP
        self._deadline = None
        return [LocalStatusChanged(NodeStatus.UP), *self._gate.start(now), *self._settle(now)]

    def handle(self, event: Event, now: float) -> list[Effect]:
        # A packet (or ping reply) counts from when it reached us, not from when the
        # driver got to it: a beat that arrived before its peer's deadline is in
        # time, and its echo's round trip excludes our own delay. Never before a
        # time already settled, so the core's clock still only moves forward.
        when = now
        if isinstance(event, PacketIn | PingResult) and event.at is not None:
            when = min(max(event.at, self._last_now), now)
        self._last_now = max(self._last_now, now)
        # Nothing can be due before the deadline computed since the last entry
        # (state changes only inside entries): the settle before the event is then
        # a no-op, and the one after it still runs.
        cached = self._deadline
        self._deadline = None
        if cached is not None and (cached[0] is None or when < cached[0]):
            effects: list[Effect] = []
        else:
            effects = self._settle(when)
        if self._stopped:  # shut down: we send nothing and take no input, but time still runs
            if isinstance(event, ControlRequest):  # every request gets its one reply
                effects.append(ControlReply(event.request_id, False, "hbmon is shut down."))
            return effects
        match event:
            case PacketIn(iface=iface, message=message, source=source):
                effects += self._packet(iface, message, source, when)
            case PacketRejected(iface=iface, reason=reason, source=source, detail=detail):
                effects.append(PacketDropped(reason, iface, source, None, detail))
            case PingResult(rtt_s=rtt):
                observed = self._pings.observe(event, when)
                effects += observed + self._route(observed, when)
                if rtt is not None and observed:
                    self._sample_rtt(f"ping/{event.address}", rtt)
            case LoadAverage(text=text):
                self._outbox.set_load(text)
            case Shutdown():
                if self._leaving:
                    return effects
                self._leaving = True
                self._handing = False  # a stop while handing over releases after all
                effects += self._own.leave(now)
            case Handover():
                if self._leaving or self._handing:
                    return effects
                if self._gate.enabled:
                    # The etcd lease and the keys on it belong to this process: its
                    # successor could not prove it holds them, so a restart is a stop.
                    text = "Restart with an arbitrator: giving up all HA resources (no handover)."
                    effects.append(ResourceLog("WARN", text))
                    self._leaving = True
                    return effects + self._own.leave(now)
                self._handing = True
                effects += self._own.hand_over(now)
            case HandoverSaved(ok=ok, detail=detail):
                if not self._handing or self._handover is None:
                    return effects  # a stop came first: its release goes on
                if ok:
                    return effects + self._handed_over(self._handover, now)
                text = f"Handover failed: {detail}; giving up all HA resources instead."
                effects.append(ResourceLog("ERROR", text))
                self._handing, self._leaving = False, True
                effects += self._own.leave(now)
            case HandedOver():
                effects += self._own.handed_over(event, now)
            case GroupDone():
                effects += self._own.group_done(event, now)
            case ProbeDone():
                effects += self._own.probe_done(event, now)
            case FenceDone():
                effects += self._own.fence_done(event, now)
            case ActiveAtStart(keys=keys):
                effects += self._own.active_at_start(keys, now)
            case ControlRequest():
                effects += self._own.control(event, now)
            case LeaseGranted() | LeaseRenewed() | KeyClaimed() | KeyReleased() | ArbiterFailed():
                effects += self._gate.answer(event, now) + self._own.expire(now)
            case _:
                assert_never(event)
        for e in effects:
            if isinstance(e, PacketDropped):
                self._drops.count(e.iface, e.reason)
        return effects + self._settle(now)

    def on_timer(self, now: float) -> list[Effect]:
        # The cached deadline stays: nothing changed since the last entry computed it.
        self._last_now = max(self._last_now, now)
        return self._settle(now)

    def next_deadline(self) -> float | None:
        """When the core next needs `on_timer` (None: only an event can change anything)."""
        if self._deadline is None:
            self._deadline = (self._next_deadline(),)
        return self._deadline[0]

    def _next_deadline(self) -> float | None:
        ds = [
            self._membership.next_deadline(),
            self._pings.next_deadline(),
            self._own.next_deadline(),
        ]
        if self._schedule is not None and not self._stopped:
            ds.append(self._schedule.next_at)
        ds += [at for _, _, at in self._overdue_pending()]
        return min((d for d in ds if d is not None), default=None)

    def reconfigure(self, config: Config, now: float) -> list[Effect]:
        """A valid new config (SIGHUP): nodes that remain keep their state and counters."""
        self._deadline = None
        self._last_now = max(self._last_now, now)
        self._config = config
        self._outbox.configure(config)
        self._membership.configure(config, now)
        self._pings.configure(
            config.ping_nodes,
            initdead=config.timers.initdead_ms / 1000,
            deadping=config.timers.deadping_ms / 1000,
            now=now,
        )
        self._drops.add_ifaces(self._membership.ifaces)
        self._link_rtt.resize(config)
        self._echo.keep_only(set(config.peers))
        if self._schedule is not None:
            self._schedule.retime(config.timers.keepalive_ms / 1000, now)
        effects = self._own.reconfigure(config, now)
        effects += self._own.pings(self._reachable(), len(config.ping_nodes), now)
        return effects + self._settle(now)

    def snapshot(self, now: float) -> Snapshot:
        peers, links = self._membership.views()
        own = self._own.view()
        return Snapshot(
            now=now,
            wall_epoch=self._wall_epoch,
            node=self._config.node,
            generation=self._generation,
            local_status=self._local,
            comm_up=self._comm_up,
            started_at=self._started_at,
            peers=peers,
            links=links,
            ping_nodes=self._pings.views(),
            dropped=self._drops.view(),
            seq_sent=self._outbox.seq.last,
            groups=own.groups,
            rsc_hold=own.rsc_hold,
            resources_stable=own.stable,
            takeovers=own.takeovers,
            last_takeover=own.last_takeover,
            conflicts=own.conflicts,
            takeovers_blocked=own.blocked,
            refusals=own.refusals,
            fencing=own.fencing,
            arbiter=self._gate.view(now),
            handover=own.handover,
        )

    # ------------------------------------------------------------ internal --
    def _settle(self, now: float) -> list[Effect]:
        """Everything due at or before `now`: deaths, comm-up, then our status."""
        if self._comm_up and not self._leaving and not self._handing:
            # Neither comm-up, our goodbye nor a handover can be pending: only
            # deadlines can be due, and most wakes (a beat in, a ping reply) come
            # before the first.
            due = self.next_deadline()
            if due is None or now < due:
                return []
        self._deadline = None
        effects: list[Effect] = []
        for _ in range(_MAX_SETTLE_ROUNDS):
            step = self._pings.expire(now) + self._membership.expire(now) + self._comm_check()
            if not step:
                break
            effects += step + self._route(step, now)
        due = self._own.next_deadline()
        if not self._stopped and due is not None and due <= now:
            effects += self._own.expire(now)
        for peer, last, at in self._overdue_pending():
            if at <= now:
                self._probed_silence[peer] = last
                effects += self._own.peer_overdue(peer, last, now)
        if self._schedule is not None and not self._stopped and self._schedule.due(now):
            effects.append(self._status(now))
            effects += self._gate.beat(now)  # the lease is renewed with every status
            self._schedule.advance(now)
        if self._leaving and not self._stopped and self._own.gone:
            effects += self._gate.leave(now)  # our keys go with the lease
            if self._gate.quiet():
                effects += self._shutdone(now)
        if self._handing and not self._stopped and self._handover is None:
            window_s = self._config.hbmon.handover_window_ms / 1000
            self._handover = self._own.handover_ready(window_s)
            if self._handover is not None:
                effects.append(self._handover)
        return effects

    def _route(self, effects: list[Effect], now: float) -> list[Effect]:
        """Membership and ping verdicts that matter to resource ownership."""
        out: list[Effect] = []
        if self._stopped:
            return out
        own = self._own
        for e in effects:
            match e:
                case CommUp():
                    out += own.comm_up(now)
                case NodeDead(node=node, reason=reason, last_heard_at=last):
                    if self._config.ping_nodes and last is not None:
                        # Quorum needs fresh evidence: a ping node that answered while
                        # the peer was already overdue. A ping node still marked up from
                        # before (deadping not yet expired), or a reply that raced the
                        # peer's last beat, proves nothing about a cut cable.
                        t = self._config.timers
                        overdue = min(t.warntime_ms, t.deadtime_ms / 2) / 1000
                        fresh = self._replied_since(last + overdue)
                        out += own.pings(fresh, len(self._config.ping_nodes), now)
                    self._gate.peer_lost(node)
                    out += own.peer_dead(node, reason, now, silent_since=last)
                case NodeTransition(node=node, old=old, new=new) if old in _BACK and new in _ALIVE:
                    out += own.peer_alive(node, now)
                case PeerRestarted(node=node):
                    self._gate.peer_lost(node)
                    out += own.peer_restarted(node, now)
                case PartitionHealed(node=node):
                    out += own.partition_healed(node, now)
                case ShutdownNotice(node=node):
                    out += own.peer_leaving(node, now)
                case PingTransition() | PingObserved(rtt_s=float()):
                    out += own.pings(self._reachable(), len(self._config.ping_nodes), now)
                case _:
                    pass
        return out

    def _overdue_pending(self) -> list[tuple[str, float, float]]:
        """Peers whose current silence will soon reach deadtime and is not probed yet."""
        if self._stopped or not self._comm_up:
            return []
        lead = self._link_rtt.probe_window() + EARLY_PROBE_MARGIN_MS / 1000
        return [
            (peer, last, at)
            for peer, last, at in self._membership.overdue_at(lead)
            if self._probed_silence.get(peer) != last
        ]

    def _replied_since(self, t: float) -> int:
        return sum(
            1 for p in self._pings.views() if p.last_reply_at is not None and p.last_reply_at > t
        )

    def _sample_rtt(self, source: str, rtt_s: float) -> None:
        """A measured round trip: the address probe is sized by the slowest link."""
        before = self._link_rtt.probe_window()
        self._link_rtt.sample(source, rtt_s)
        if self._link_rtt.probe_window() != before:
            self._deadline = None  # the early probe's lead follows the window

    def _reachable(self) -> int:
        return self._pings.reachable()

    def _comm_check(self) -> list[Effect]:
        if self._comm_up or self._schedule is None or self._stopped:
            return []
        if not (self._membership.settled() and self._pings.settled()):
            return []
        self._comm_up = True
        self._membership.comm_up = True
        self._local = NodeStatus.ACTIVE
        return [CommUp(), LocalStatusChanged(NodeStatus.ACTIVE)]

    def _packet(self, iface: str, message: Message, source: str, now: float) -> list[Effect]:
        receipt = self._membership.receive(iface, message, source, now)
        effects = receipt.effects + self._route(receipt.effects, now)
        node, seq = receipt.node, receipt.seq
        if node is not None:
            effects += self._flow_control(node, message, receipt.delivered, seq, now)
        if node is None or seq is None:
            return effects
        if receipt.delivered:
            effects += self._own.message(node, message, message.get_hex("hg"), seq, now)
        if receipt.restarted:
            self._echo.forget(node)
            self._flow.forget(node)
        if receipt.status_copy:
            echoes = builders.echo_entries(message)
            rtt = self._echo.rtt(node, iface, echoes, self._config.node, self._outbox.seq.sent, now)
            if rtt is not None:
                effects.append(RttMeasured(node, iface, rtt))
                self._sample_rtt(f"{iface}/{node}", rtt)
            if self._gate.enabled:
                effects += self._confirm(node, message, echoes, now)
        if receipt.delivered:
            self._echo.record(node, iface, seq, now)
        if (
            any(isinstance(e, PartitionHealed) for e in receipt.effects)
            and not self._stopped
            and self._own.stable
        ):
            # The peer is back after a partition, and it may hold what we keep: our
            # holdings go out now, not at our next slot (an extra status, the grid
            # unchanged), so the side that must release learns it at the first beat
            # either of us sends after the heal. Not while we release something
            # ourselves: our report would say it is gone before it is.
            effects.append(self._status(now))
        return effects

    def _confirm(
        self, node: str, message: Message, echoes: tuple[EchoEntry, ...], now: float
    ) -> list[Effect]:
        """A peer's status acknowledges our latest status it got (hbecho): its word that
        it still hears us, which the arbitrator's failsafe rests on. Only a status
        counts: the peer's dead timer runs from the statuses it receives."""
        mine = [e.seq for e in echoes if e.node == self._config.node]
        acked = self._outbox.status_sent.sent_at(max(mine)) if mine else None
        arbitrated = message.get(ARB_FIELD) is not None
        return list(self._gate.confirm(node, acked, arbitrated, now))

    def _status(self, now: float, handover_ms: int | None = None) -> SendMessage:
        """Our status; `handover_ms`: the restart notice (dt stretched by that window)."""
        st = self._local.value if self._sent_first else FIRST_ST
        self._sent_first = True
        entries = self._echo.entries(now, self._membership.live_links())
        dt_ms = advertised_dt_ms(self._config.timers, self._started_at, now)
        notice: tuple[Field, ...] = ()
        if handover_ms is not None:
            dt_ms += handover_ms
            notice = (builders.handover_field(handover_ms),)
        own = self._own.status_fields()
        return self._outbox.status(
            st, dt_ms, (echo_field(entries), *own, *notice, *self._arb_field), now
        )

    def sent(self, seq: int, at: float) -> None:
        """Our message `seq` went out at `at` (the driver says so right after sending):
        the round trip its echo gives counts from then. Nothing to settle."""
        self._outbox.sent(seq, at)

    def _flow_control(
        self, node: str, message: Message, delivered: bool, seq: int | None, now: float
    ) -> list[Effect]:
        """heartbeat's flow control (core/flowctl.py): repnodes, acks, retransmissions."""
        uuid = message.get_bytes("srcuuid")
        if uuid:
            self._flow.uuids[node] = uuid
        own = self._config.node
        to_us = (message.get("dest") or "").lower() == own
        t = message.type
        if t == T_NS_REXMIT and to_us:
            first, last = _dec(message.get("firstseq")), _dec(message.get("lastseq"))
            if first is None or last is None:
                return []
            return [SendMessage(m) for m in self._flow.resend(first, last)]
        if not delivered or seq is None:
            return []
        out: list[Effect] = []
        if t == T_REQNODES and to_us:
            head = repnodes_head(node, self._flow.uuids.get(node), self._config.nodes)
            out.append(self._outbox.sequenced(head, now))
        missing = self._membership.peers[node].seq.missing_count
        if self._flow.should_ack(node, seq, missing):
            out.append(self._outbox.ack(node, seq, now))
        return out

    def _handed_over(self, ready: HandoverReady, now: float) -> list[Effect]:
        """The handover is saved: the restart notice, then silence until our next process
        (heartbeat's restart: deadtime + 30 s advertised, resources kept)."""
        effects = self._own.handed(now)
        window_ms = advertised_window_ms(ready.window_s)
        effects += [self._status(now, window_ms) for _ in range(HANDOVER_NOTICES)]
        self._stopped = True
        return [*effects, HandoverComplete(ready.keys, ready.window_s)]

    def _shutdone(self, now: float) -> list[Effect]:
        """Our groups are released (ownership is gone): the last word, then silence."""
        out = self._outbox.shutdone(now)
        self._stopped = True
        self._local = NodeStatus.DEAD
        return [out, LocalStatusChanged(NodeStatus.DEAD), ShutdownComplete()]


def _dec(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    return int(value)
