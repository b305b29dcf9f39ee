"""Peer and link liveness: late and dead beats, initdead, partition heal (§4.3–4.5, §5.1).

Peers move INIT → UP/ACTIVE (the `st` they advertise) → DEAD and back; links
are (peer, iface) pairs, DEAD until first heard. Which move each event makes
is the tables' business (core/liveness.py); this class turns packets and
deadlines into those events. Liveness is deadline-driven, not scanned: a peer
is dead exactly at its last new status + its dead interval (its advertised
`dt`; initdead for everyone before comm-up), a link at its last packet + the
same interval.

A silence is counted late the moment it reaches warntime (and again when it
reaches deadtime), not when the late beat finally arrives: the count is what
pages before the failover (hbmon; heartbeat only logs `Late heartbeat` on
arrival, which hbmon still does). Each silence counts at most once per
threshold; one that ends before its timer ran (a late timer, a replayed
capture) is counted on arrival instead. A silence the peer announced
(`shutdone`) is not late.

Only new seqs refresh a peer; a duplicate over a second medium refreshes that
link only; a replay refreshes nothing (hbmon: heartbeat lets duplicates keep a
node alive, so a replayed packet could).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from hbmon.config.model import Config
from hbmon.core.events import (
    BeatReceived,
    DeathReason,
    Effect,
    LateBeat,
    LinkStatus,
    LinkTransition,
    NodeDead,
    NodeStatus,
    NodeTransition,
    PacketDropped,
    PacketsLost,
    PacketsMissing,
    PacketsReordered,
    PartitionHealed,
    PeerHandover,
    PeerRestarted,
    PeerSilent,
    ShutdownNotice,
    Threshold,
    TransitionReason,
)
from hbmon.core.liveness import (
    LINK_TABLE,
    NODE_TABLE,
    Death,
    Heard,
    LinkInput,
    NeverHeard,
    NodeEvent,
    SaidGoodbye,
    Silent,
    next_status,
)
from hbmon.core.seqtrack import Duplicate, Filled, Fresh, Replay, SeqTracker
from hbmon.core.snapshot import LinkView, PeerView
from hbmon.errors import DropReason
from hbmon.wire.builders import handover_window_ms
from hbmon.wire.message import Message

STATUS_TYPE = "status"
SHUTDONE_TYPE = "shutdone"
NOSEQ_PREFIX = "NS_"
# Iterating an enum class runs Python code each time; beats ask on every arrival.
_THRESHOLDS = tuple(Threshold)


def _us(seconds: float) -> int:
    """Whole µs, so threshold comparisons do not depend on float noise."""
    return round(seconds * 1_000_000)


@dataclass(slots=True)
class Link:
    node: str
    iface: str
    status: LinkStatus = LinkStatus.DEAD
    last_heard_at: float | None = None
    transitions: int = 0


@dataclass(slots=True)
class Peer:
    name: str
    added_at: float
    seq: SeqTracker
    status: NodeStatus = NodeStatus.INIT
    advertised_dt: float | None = None  # seconds, from its last status
    last_status_at: float | None = None  # its last new status
    last_transition_at: float | None = None
    death_reason: DeathReason | None = None
    dead_generation: int | None = None
    # (from, to, reason) -> how often
    transitions: dict[tuple[NodeStatus, NodeStatus, TransitionReason], int] = field(
        default_factory=dict
    )
    late_warntime: int = 0  # silences that reached warntime
    late_deadtime: int = 0  # ...that reached deadtime
    # Thresholds the current silence (since last_status_at) was already counted for.
    silence_counted: set[Threshold] = field(default_factory=set)
    lost: int = 0
    reordered: int = 0
    restarts: int = 0
    partition_heals: int = 0
    handovers: int = 0  # restarts it announced as a handover
    handover_generation: int | None = None  # the incarnation whose handover was counted


@dataclass(slots=True)
class Receipt:
    """What `Membership.receive` made of one packet, for the echo/RTT bookkeeping."""

    effects: list[Effect]
    node: str | None = None
    seq: int | None = None
    delivered: bool = False  # first copy of this seq on this iface
    status_copy: bool = False  # ...and it is a status (new or a copy over another medium)
    restarted: bool = False


@dataclass(slots=True)
class _Timing:
    keepalive: float
    deadtime: float
    warntime: float
    initdead: float
    grace: float  # how long a missing seq may take before it counts as lost

    @classmethod
    def of(cls, config: Config) -> _Timing:
        t = config.timers
        return cls(
            keepalive=t.keepalive_ms / 1000,
            deadtime=t.deadtime_ms / 1000,
            warntime=t.warntime_ms / 1000,
            initdead=t.initdead_ms / 1000,
            grace=max(2 * t.keepalive_ms, config.max_rexmit_delay_ms) / 1000,
        )


class Membership:
    """Every peer and link of this node: who is alive, by the liveness tables.

    `receive` judges one message (its seq verdict, the status it carries) and
    `expire` everything whose deadline has passed; both return notices
    (transitions, deaths, late and lost beats, drops). `next_deadline` is the
    earliest of those deadlines. Counters survive a reconfigure for the peers
    and links that remain.
    """

    def __init__(self, config: Config, now: float) -> None:
        self.own = config.node
        self._comm_up = False
        # next_deadline() and overdue_at() until the next change (None: not computed).
        self._deadline: tuple[float | None] | None = None
        self._overdue: tuple[float, list[tuple[str, float, float]]] | None = None
        self.timing = _Timing.of(config)
        self.peers: dict[str, Peer] = {}
        self.links: dict[tuple[str, str], Link] = {}
        self.ifaces: tuple[str, ...] = ()
        self.configure(config, now)

    # ------------------------------------------------------------- config --
    def configure(self, config: Config, now: float) -> None:
        """(Re)configure; peers and links that remain keep their state and counters."""
        self._changed()
        self.own = config.node
        self.timing = _Timing.of(config)
        old = self.peers
        self.peers = {
            name: old.get(name) or Peer(name, now, SeqTracker(name)) for name in config.peers
        }
        self.ifaces = tuple(dict.fromkeys(m.iface for m in config.media))
        old_links = self.links
        self.links = {}
        for name in self.peers:
            for iface in self.ifaces:
                key = (name, iface)
                self.links[key] = old_links.get(key) or Link(name, iface)

    @property
    def comm_up(self) -> bool:
        return self._comm_up

    @comm_up.setter
    def comm_up(self, value: bool) -> None:
        self._changed()  # dead intervals change with it
        self._comm_up = value

    def _changed(self) -> None:
        self._deadline = None
        self._overdue = None

    # ------------------------------------------------------------ queries --
    def dead_interval(self, peer: Peer) -> float:
        if not self.comm_up:
            return self.timing.initdead
        if peer.advertised_dt is not None:
            return peer.advertised_dt
        return self.timing.deadtime

    def settled(self) -> bool:
        """Every peer heard or declared dead (the peer part of comm-up)."""
        return all(p.status is not NodeStatus.INIT for p in self.peers.values())

    def live_links(self) -> set[tuple[str, str]]:
        return {k for k, link in self.links.items() if link.status is LinkStatus.UP}

    def _peer_deadline(self, peer: Peer) -> float | None:
        if peer.status is NodeStatus.INIT:
            return peer.added_at + self.timing.initdead
        if peer.status is NodeStatus.DEAD or peer.last_status_at is None:
            return None
        return peer.last_status_at + self.dead_interval(peer)

    def overdue_at(self, lead: float) -> list[tuple[str, float, float]]:
        """(peer, its last beat, when it is `lead` short of dead) for every live peer.

        Never earlier than half its dead interval: a probe is evidence only
        after a silence that is already unusual.
        """
        memo = self._overdue
        if memo is not None and memo[0] == lead:
            return memo[1]
        out: list[tuple[str, float, float]] = []
        for peer in self.peers.values():
            if peer.status in (NodeStatus.INIT, NodeStatus.DEAD) or peer.last_status_at is None:
                continue
            dt = self.dead_interval(peer)
            out.append(
                (peer.name, peer.last_status_at, peer.last_status_at + max(dt - lead, dt / 2))
            )
        self._overdue = (lead, out)
        return out

    def _threshold_s(self, threshold: Threshold) -> float:
        return self.timing.warntime if threshold is Threshold.WARNTIME else self.timing.deadtime

    def _silence_deadlines(self, peer: Peer) -> list[tuple[float, Threshold]]:
        """(when, threshold) for each threshold the current silence has yet to reach."""
        if peer.status is NodeStatus.INIT or peer.last_status_at is None:
            return []
        return [
            (peer.last_status_at + self._threshold_s(th), th)
            for th in _THRESHOLDS
            if th not in peer.silence_counted
        ]

    def _count_silence(self, peer: Peer, threshold: Threshold) -> None:
        peer.silence_counted.add(threshold)
        if threshold is Threshold.WARNTIME:
            peer.late_warntime += 1
        else:
            peer.late_deadtime += 1

    def _link_deadline(self, link: Link) -> float | None:
        peer = self.peers.get(link.node)
        if link.status is LinkStatus.DEAD or link.last_heard_at is None or peer is None:
            return None
        return link.last_heard_at + self.dead_interval(peer)

    def next_deadline(self) -> float | None:
        if self._deadline is None:
            self._deadline = (self._next_deadline(),)
        return self._deadline[0]

    def _next_deadline(self) -> float | None:
        ds: list[float] = []
        for peer in self.peers.values():
            d = self._peer_deadline(peer)
            if d is not None:
                ds.append(d)
            ds += [at for at, _ in self._silence_deadlines(peer)]
            d = peer.seq.next_deadline(self.timing.grace)
            if d is not None:
                ds.append(d)
        for link in self.links.values():
            d = self._link_deadline(link)
            if d is not None:
                ds.append(d)
        return min(ds, default=None)

    # ------------------------------------------------------------ timers --
    def expire(self, now: float) -> list[Effect]:
        """Everything due at or before `now`: silences reaching warntime or deadtime,
        dead peers, dead links, then loss."""
        due = self.next_deadline()
        if due is None or now < due:
            return []
        self._changed()
        effects: list[Effect] = []
        for peer in self.peers.values():
            # Before the death check: a silence that reaches deadtime as the peer dies
            # counts for both.
            for at, th in sorted(self._silence_deadlines(peer)):
                if at <= now and peer.last_status_at is not None:
                    self._count_silence(peer, th)
                    effects.append(PeerSilent(peer.name, now - peer.last_status_at, th))
        for peer in self.peers.values():
            d = self._peer_deadline(peer)
            if d is not None and d <= now:
                death = NeverHeard() if peer.status is NodeStatus.INIT else Silent()
                effects += self._declare_dead(peer, death, now)
        for link in self.links.values():
            d = self._link_deadline(link)
            if d is not None and d <= now:
                effects += self._move_link(link, LinkInput.SILENT)
        for peer in self.peers.values():
            lost = peer.seq.expire(now, self.timing.grace)
            if lost:
                peer.lost += lost
                effects.append(PacketsLost(peer.name, lost))
        return effects

    # ----------------------------------------------------------- receive --
    def receive(self, iface: str, msg: Message, source: str, now: float) -> Receipt:
        self._changed()
        t, src = msg.type, msg.src
        if not t or not src:
            return self._drop(DropReason.MALFORMED, iface, source, src, "missing t or src")
        name = src.lower()
        if name == self.own:
            return Receipt([])  # our own broadcast, looped back
        peer = self.peers.get(name)
        if peer is None:
            return self._drop(
                DropReason.UNKNOWN_NODE, iface, source, src, f"bad node [{src}] in message"
            )
        hg = msg.get_hex("hg")
        if t.startswith(NOSEQ_PREFIX):
            # No seq: nothing to replay-check but the generation, so it refreshes nothing.
            old = peer.seq.generation_verdict(hg) if hg is not None else None
            if old is not None:
                return self._drop(DropReason.REPLAY, iface, source, name, old.detail)
            return Receipt([], node=name)
        seq = msg.get_hex("seq")
        if seq is None or hg is None:
            what = "seq" if seq is None else "hg"
            return self._drop(DropReason.MALFORMED, iface, source, name, f"bad or missing {what}")

        verdict = peer.seq.observe(hg, seq, iface, now)
        is_status = t == STATUS_TYPE
        match verdict:
            case Replay(detail=detail):
                return self._drop(DropReason.REPLAY, iface, source, name, detail)
            case Duplicate():
                return Receipt(
                    self._refresh_link(name, iface, now),
                    node=name,
                    seq=seq,
                    delivered=True,
                    status_copy=is_status,
                )
            case Filled():
                effects = self._refresh_link(name, iface, now)
                peer.reordered += 1
                effects.append(PacketsReordered(name, 1))
                return Receipt(effects, node=name, seq=seq, delivered=True)
            case Fresh():
                effects = self._refresh_link(name, iface, now)
                effects += self._fresh(peer, verdict, hg)
                if is_status:
                    restarted = verdict.restarted_from is not None
                    effects += self._status(peer, iface, msg, seq, hg, restarted, now)
                elif t == SHUTDONE_TYPE:
                    effects += self._shutdone(peer, now)
                return Receipt(
                    effects,
                    node=name,
                    seq=seq,
                    delivered=True,
                    status_copy=is_status,
                    restarted=verdict.restarted_from is not None,
                )
            case _:
                assert_never(verdict)

    def _fresh(self, peer: Peer, v: Fresh, hg: int) -> list[Effect]:
        effects: list[Effect] = []
        if v.restarted_from is not None:
            peer.restarts += 1
            effects.append(PeerRestarted(peer.name, v.restarted_from, hg))
        if v.lost:
            peer.lost += v.lost
            effects.append(PacketsLost(peer.name, v.lost))
        if v.missing and v.previous is not None:
            effects.append(PacketsMissing(peer.name, v.missing, v.previous, v.seq))
        return effects

    def _status(
        self,
        peer: Peer,
        iface: str,
        msg: Message,
        seq: int,
        hg: int,
        restarted: bool,
        now: float,
    ) -> list[Effect]:
        effects: list[Effect] = []
        dt_ms = msg.get_hex("dt")
        peer.advertised_dt = dt_ms / 1000 if dt_ms else None
        prev = peer.last_status_at
        interval = now - prev if prev is not None else None
        if interval is not None and peer.status is not NodeStatus.INIT:
            # The silence ends here; one whose timer has not run yet counts now.
            for th in _THRESHOLDS:
                if th not in peer.silence_counted and _us(interval) >= _us(self._threshold_s(th)):
                    self._count_silence(peer, th)
        peer.silence_counted.clear()
        peer.last_status_at = now

        old = peer.status
        reason = TransitionReason.RESTARTED if restarted else TransitionReason.STATUS
        if old is NodeStatus.INIT:
            reason = TransitionReason.HEARD
        elif old is NodeStatus.DEAD:
            reason = TransitionReason.HEARD
            if peer.death_reason is DeathReason.SHUTDOWN:
                # It said goodbye: the silence since was not a late beat.
                interval = None
            if peer.dead_generation is not None and hg > peer.dead_generation:
                reason = TransitionReason.RESTARTED
            elif peer.dead_generation == hg and peer.death_reason is DeathReason.TIMEOUT:
                reason = TransitionReason.RETURNED
                peer.partition_heals += 1
                effects.append(PartitionHealed(peer.name))
            peer.death_reason = None
            peer.dead_generation = None
        heard = Heard(msg.get("st") == NodeStatus.ACTIVE, reason)
        if (change := self._fire(peer, heard, now)) is not None:
            effects.append(change)
        if reason is TransitionReason.RESTARTED:
            # A new incarnation: the gap since the previous one's last beat is a
            # restart, not a late heartbeat.
            interval = None

        if interval is not None:
            # heartbeat's `Late heartbeat` line; the silence was counted already.
            if _us(interval) > _us(self.timing.deadtime):
                effects.append(LateBeat(peer.name, interval, Threshold.DEADTIME))
            elif _us(interval) > _us(self.timing.warntime):
                effects.append(LateBeat(peer.name, interval, Threshold.WARNTIME))
        effects += self._handover(peer, msg, hg)
        effects.append(BeatReceived(peer.name, iface, interval, seq))
        return effects

    def _handover(self, peer: Peer, msg: Message, hg: int) -> list[Effect]:
        """Its restart notice (core/handover.py): the silence until its next process
        speaks was announced, so it is not late; its `dt` already says how long."""
        window_ms = handover_window_ms(msg)
        if window_ms is None:
            return []
        peer.silence_counted.update(Threshold)
        if peer.handover_generation == hg:
            return []  # the notice is sent more than once
        peer.handover_generation = hg
        peer.handovers += 1
        return [PeerHandover(peer.name, window_ms / 1000, self.dead_interval(peer))]

    def _shutdone(self, peer: Peer, now: float) -> list[Effect]:
        effects: list[Effect] = [ShutdownNotice(peer.name)]
        peer.silence_counted.update(Threshold)  # an announced silence is not late
        goodbye = SaidGoodbye()
        if NODE_TABLE.allows(peer.status, goodbye.kind):  # not if it is dead already
            effects += self._declare_dead(peer, goodbye, now)
        return effects

    # ----------------------------------------------------------- helpers --
    def reset_init_clock(self, now: float) -> None:
        """Start: initdead of peers never heard counts from `now`."""
        self._changed()
        for peer in self.peers.values():
            if peer.status is NodeStatus.INIT:
                peer.added_at = now

    def _declare_dead(self, peer: Peer, death: Death, now: float) -> list[Effect]:
        last_heard = peer.last_status_at
        change = self._fire(peer, death, now)
        peer.death_reason = death.death
        peer.dead_generation = peer.seq.generation
        return [NodeDead(peer.name, death.death, last_heard), *([change] if change else [])]

    @staticmethod
    def _fire(peer: Peer, event: NodeEvent, now: float) -> NodeTransition | None:
        """Move `peer` by the table; the transition, or None if its status stays."""
        old = peer.status
        new = next_status(old, event)
        if new is old:
            return None
        peer.status = new
        peer.last_transition_at = now
        key = (old, new, event.reason)
        peer.transitions[key] = peer.transitions.get(key, 0) + 1
        return NodeTransition(peer.name, old, new, event.reason)

    def _refresh_link(self, node: str, iface: str, now: float) -> list[Effect]:
        link = self.links.get((node, iface))
        if link is None:  # a medium the config did not name; track it anyway
            link = self.links[(node, iface)] = Link(node, iface)
        link.last_heard_at = now
        return self._move_link(link, LinkInput.PACKET)

    @staticmethod
    def _move_link(link: Link, kind: LinkInput) -> list[Effect]:
        new = LINK_TABLE.next(link.status, kind)
        if new is link.status:
            return []
        link.status = new
        link.transitions += 1
        return [LinkTransition(link.node, link.iface, new)]

    @staticmethod
    def _drop(
        reason: DropReason, iface: str, source: str, node: str | None, detail: str
    ) -> Receipt:
        return Receipt([PacketDropped(reason, iface, source, node, detail)])

    # ----------------------------------------------------------- views --
    def views(self) -> tuple[tuple[PeerView, ...], tuple[LinkView, ...]]:
        peers = tuple(
            PeerView(
                name=p.name,
                status=p.status,
                generation=p.seq.generation,
                last_seq=p.seq.last,
                last_heard_at=p.last_status_at,
                dead_interval_s=self.dead_interval(p),
                last_transition_at=p.last_transition_at,
                transitions=tuple((a, b, r, n) for (a, b, r), n in p.transitions.items()),
                late_warntime=p.late_warntime,
                late_deadtime=p.late_deadtime,
                lost_packets=p.lost,
                reordered_packets=p.reordered,
                restarts=p.restarts,
                partition_heals=p.partition_heals,
                handovers=p.handovers,
            )
            for p in self.peers.values()
        )
        links = tuple(
            LinkView(link.node, link.iface, link.status, link.last_heard_at, link.transitions)
            for link in self.links.values()
        )
        return peers, links
