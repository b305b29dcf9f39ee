"""The sans-IO observer: captured datagrams in, the agent's `Snapshot` out.

Every cluster node, the local heartbeat included, is a "peer" of an imaginary
watcher node, so one `hbmon.core.membership.Membership` judges all of them
with the agent's own rules: late beats against warntime/deadtime, dead at the
last new status + the advertised `dt` (initdead until every node was heard or
declared dead), seq loss and reordering, restarts, partition heals, links.
Nothing here reads a clock or touches a socket; every call takes `now`.

Takeovers are read off the resource protocol, for the local node only (the
node this watcher stands for, as `hbmon_failovers_total` counts an agent's own
takeovers):

* the local node sends `resource … info=mach_down`: it took the groups of a
  node that died (`peer_dead`) or left (`shutdown`, after its `shutdone`);
* the local node receives `ask_resources … info=done`: the peer finished
  standing by and the local node takes the groups (`takeover` if the local
  node had asked with `hb_takeover`, `standby` otherwise).

Owner state (which groups the local node holds) comes from `cl_status
rscstatus` via `set_rscstatus`; without it the snapshot has no groups.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hbmon.config.model import Config
from hbmon.core.counters import DropCounters
from hbmon.core.events import (
    DeathReason,
    Effect,
    GroupState,
    NodeStatus,
    PacketDropped,
    Scope,
    TakeoverReason,
)
from hbmon.core.flowctl import T_NS_REXMIT
from hbmon.core.membership import Membership
from hbmon.core.scopes import keys_in
from hbmon.core.snapshot import GroupView, PingNodeView, Snapshot, TakeoverView
from hbmon.errors import DropReason, WireError
from hbmon.wire.auth import Signer
from hbmon.wire.codec import Decoder
from hbmon.wire.message import Message
from hbmon.wire.rscmsg import INFO_DONE, INFO_MACH_DOWN, AskMsg, ResourceMsg, TakeoverMsg, parse

# The imaginary node whose peers are all cluster nodes. Not a valid node name
# (parentheses), so no packet can claim to be from it.
WATCHER = "(watch)"
# How long an `hb_takeover` from the local node marks the next standby as its request.
TAKEOVER_REQUEST_WINDOW_S = 120.0
# How long an NS_rexmit request explains a second copy of a seq, and how many are kept.
REXMIT_WINDOW_S = 30.0
MAX_REXMIT_ASKS = 64
RSCSTATUS_VALUES = ("none", "local", "foreign", "all", "transition")


@dataclass(frozen=True, slots=True)
class TakeoverSeen:
    """A takeover by the local node, read off the resource protocol (for the log)."""

    reason: TakeoverReason
    keys: tuple[str, ...]
    peer: str


Notice = Effect | TakeoverSeen  # what the driver logs and meters


class Observer:
    def __init__(self, config: Config, now: float, wall_epoch: float) -> None:
        self.local = config.node
        self.config = config
        self._view = replace(config, node=WATCHER)
        self._membership = Membership(self._view, now)
        self._drops = DropCounters(self._membership.ifaces)
        self._signer = Signer(config.auth)
        self._decoder = Decoder()
        self._wall_epoch = wall_epoch
        self._started_at = now
        self._comm_up = False
        self._takeovers = dict.fromkeys(TakeoverReason, 0)
        self._last_takeover: TakeoverView | None = None
        self._takeover_asked_at: float | None = None
        self._rscstatus: str | None = None
        self._held: frozenset[str] = frozenset()
        self._group_changed_at: dict[str, float] = {}
        self._pings: tuple[PingNodeView, ...] = ()
        self.retransmissions = 0
        # node -> (firstseq, lastseq, asked at): NS_rexmit requests seen on the wire
        self._rexmit: dict[str, list[tuple[int, int, float]]] = {}

    # ------------------------------------------------------------- input --
    def datagram(self, iface: str, payload: bytes, source: str, now: float) -> list[Notice]:
        """One captured heartbeat datagram (either direction) on `iface`."""
        effects: list[Notice] = list(self.on_timer(now))
        try:
            decoded = self._decoder.decode(payload)
            self._signer.verify(decoded)
        except WireError as exc:
            drop = PacketDropped(exc.reason, iface, source, None, str(exc))
            self._drops.count(iface, exc.reason)
            return [*effects, drop]
        msg = decoded.message
        self._note_rexmit_request(msg, now)
        receipt = self._membership.receive(iface, msg, source, now)
        for e in receipt.effects:
            if isinstance(e, PacketDropped):
                if e.reason is DropReason.REPLAY and self._requested(e.node, msg, now):
                    self.retransmissions += 1  # asked for again: not a replay
                    continue
                self._drops.count(e.iface, e.reason)
                effects.append(e)
            else:
                effects.append(e)
        if receipt.delivered and receipt.node is not None:
            seen = self._resource(receipt.node, msg.get("dest"), parse(msg), now)
            if seen is not None:
                effects.append(seen)
        self._comm_check()
        return effects

    def _note_rexmit_request(self, msg: Message, now: float) -> None:
        """The watcher sees the original *and* the copy a node asked for again
        (`NS_rexmit`, to `dest`): that copy is a retransmission, not a replay."""
        if msg.type != T_NS_REXMIT:
            return
        dest = (msg.get("dest") or "").lower()
        first, last = _dec(msg.get("firstseq")), _dec(msg.get("lastseq"))
        if not dest or first is None or last is None:
            return
        asks = [a for a in self._rexmit.get(dest, []) if now - a[2] <= REXMIT_WINDOW_S]
        self._rexmit[dest] = [*asks[-(MAX_REXMIT_ASKS - 1) :], (first, last, now)]

    def _requested(self, node: str | None, msg: Message, now: float) -> bool:
        seq = msg.get_hex("seq")
        if node is None or seq is None:
            return False
        return any(
            first <= seq <= last and now - at <= REXMIT_WINDOW_S
            for first, last, at in self._rexmit.get(node, ())
        )

    def rejected(self, iface: str, reason: DropReason) -> None:
        """A datagram refused before decoding (e.g. an unreassembled fragment)."""
        self._drops.count(iface, reason)

    def on_timer(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for _ in range(4):  # comm-up changes dead intervals: settle to a fixed point
            step = self._membership.expire(now)
            was_up = self._comm_up
            self._comm_check()
            if not step and was_up == self._comm_up:
                break
            effects += step
        return effects

    def next_deadline(self) -> float | None:
        return self._membership.next_deadline()

    def set_rscstatus(self, value: str | None, now: float) -> None:
        """`cl_status rscstatus` of the local heartbeat (None: not available)."""
        if value is not None and value not in RSCSTATUS_VALUES:
            value = None
        self._rscstatus = value
        if value is None:
            self._held = frozenset()
            return
        if value == "transition":
            return  # keep the last known holdings while heartbeat is in flux
        held = keys_in(Scope(value), self.local, self._preferred())
        for key in held ^ self._held:
            self._group_changed_at[key] = now
        self._held = held

    def set_ping_nodes(self, views: tuple[PingNodeView, ...]) -> None:
        """Ping-node state as the local heartbeat reports it (`cl_status nodestatus`)."""
        self._pings = views

    # ------------------------------------------------------------ output --
    def snapshot(self, now: float) -> Snapshot:
        self.on_timer(now)
        peers, links = self._membership.views()
        local = next((p for p in peers if p.name == self.local), None)
        return Snapshot(
            now=now,
            wall_epoch=self._wall_epoch,
            node=WATCHER,
            generation=local.generation or 0 if local is not None else 0,
            local_status=NodeStatus.ACTIVE,
            comm_up=self._comm_up,
            started_at=self._started_at,
            peers=peers,
            links=links,
            ping_nodes=self._pings,
            dropped=self._drops.view(),
            seq_sent=0,
            groups=self._groups(),
            rsc_hold=self._rscstatus or "none",
            resources_stable=self._rscstatus != "transition",
            takeovers=tuple(self._takeovers.items()),
            last_takeover=self._last_takeover,
        )

    @property
    def owner_known(self) -> bool:
        return self._rscstatus is not None

    # ---------------------------------------------------------- internal --
    def _comm_check(self) -> None:
        """Comm is up once every node was heard or declared dead (the agent's rule
        without the ping nodes, which the watcher does not ping)."""
        if not self._comm_up and self._membership.settled():
            self._comm_up = True
            self._membership.comm_up = True

    def _preferred(self) -> dict[str, str]:
        return {g.key: g.node for g in self.config.resources}

    def _resource(
        self,
        node: str,
        dest: str | None,
        parsed: object,
        now: float,
    ) -> TakeoverSeen | None:
        local = self.local
        peer = next((p for p in self.config.nodes if p != local), None)
        if node == local:
            match parsed:
                case TakeoverMsg():
                    self._takeover_asked_at = now
                case ResourceMsg(info=info) if info == INFO_MACH_DOWN and peer is not None:
                    left = self._membership.peers.get(peer)
                    gone = left is not None and left.death_reason is DeathReason.SHUTDOWN
                    reason = TakeoverReason.SHUTDOWN if gone else TakeoverReason.PEER_DEAD
                    keys = keys_in(Scope.FOREIGN, local, self._preferred())
                    return self._took(reason, keys, peer, now)
            return None
        if dest is not None and dest.lower() not in ("", local):
            return None
        match parsed:
            case AskMsg(info=info, scope=scope, keys=named) if info == INFO_DONE:
                asked = self._takeover_asked_at
                mine = asked is not None and now - asked <= TAKEOVER_REQUEST_WINDOW_S
                self._takeover_asked_at = None
                reason = TakeoverReason.TAKEOVER if mine else TakeoverReason.STANDBY
                moved = named if named is not None else keys_in(scope, node, self._preferred())
                return self._took(reason, moved, node, now)
        return None

    def _took(
        self, reason: TakeoverReason, keys: frozenset[str], peer: str, now: float
    ) -> TakeoverSeen:
        self._takeovers[reason] += 1
        ordered = tuple(sorted(keys))
        self._last_takeover = TakeoverView(reason, ordered, now, 0.0, peer)
        return TakeoverSeen(reason, ordered, peer)

    def _groups(self) -> tuple[GroupView, ...]:
        if self._rscstatus is None:
            return ()
        alive = {
            p.name
            for p in self._membership.peers.values()
            if p.name != self.local and p.status in (NodeStatus.UP, NodeStatus.ACTIVE)
        }
        other = min(alive, default=None)
        out = []
        for g in self.config.resources:
            held = g.key in self._held
            out.append(
                GroupView(
                    key=g.key,
                    preferred=g.node,
                    role="local" if g.node == self.local else "foreign",
                    state=GroupState.HELD if held else GroupState.RELEASED,
                    holder=self.local if held else other,
                    last_change_at=self._group_changed_at.get(g.key),
                    start_failures=0,
                    stop_failures=0,
                )
            )
        return tuple(out)


def _dec(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    return int(value)
