"""The sans-IO node: events in, effects out, one deadline for the driver.

`Node` composes the single-purpose parts:

    sender       fixed-rate status schedule, our seq counter and send log
    membership   peers and links: seq verdicts, late/dead, partition heal
    pingnodes    ping-node liveness
    echo         hbecho entries out, RTT samples in
    counters     drops by (iface, reason)

Every entry point takes `now` (monotonic seconds) and first settles everything
due at or before `now`, so a late driver still sees deadlines in order and a
snapshot never shows a peer alive past its dead interval. Wall time for the
`ts` field is `now + wall_epoch`.
"""

from __future__ import annotations

from typing import assert_never

from hbmon.config.model import Config
from hbmon.core.counters import DropCounters
from hbmon.core.echo import EchoBook
from hbmon.core.events import (
    ActiveAtStart,
    CommUp,
    ControlRequest,
    Effect,
    Event,
    GroupDone,
    LoadAverage,
    LocalStatusChanged,
    NodeStatus,
    PacketDropped,
    PacketIn,
    PacketRejected,
    PingResult,
    ProbeDone,
    RttMeasured,
    SendMessage,
    Shutdown,
    ShutdownComplete,
)
from hbmon.core.membership import Membership
from hbmon.core.pingnodes import PingNodes
from hbmon.core.sender import SeqCounter, StatusSchedule, advertised_dt_ms
from hbmon.core.snapshot import Snapshot
from hbmon.wire import builders
from hbmon.wire.builders import EchoEntry
from hbmon.wire.message import Field, Message

NO_LOAD = "n/a"
# The `st` of our very first status, as heartbeat sends it (spec §4.6.5).
FIRST_ST = "init"
# Settling is a fixed point (comm-up can make more deadlines due); it converges in 2.
_MAX_SETTLE_ROUNDS = 8
_MAX_LOAD_LEN = 256


class Node:
    def __init__(
        self, config: Config, *, generation: int, uuid: bytes, now: float, wall_epoch: float
    ) -> None:
        self._config = config
        self._generation = generation
        self._uuid = uuid
        self._wall_epoch = wall_epoch
        self._started_at = now
        self._local = NodeStatus.INIT
        self._comm_up = False
        self._stopped = False
        self._load = NO_LOAD
        self._sent_first = False
        self._schedule: StatusSchedule | None = None
        self._seq = SeqCounter()
        self._echo = EchoBook()
        self._membership = Membership(config, now)
        self._pings = PingNodes.create(
            config.ping_nodes,
            initdead=config.timers.initdead_ms / 1000,
            deadping=config.timers.deadping_ms / 1000,
            now=now,
        )
        self._drops = DropCounters(self._membership.ifaces)

    # -------------------------------------------------------------- entry --
    def start(self, now: float) -> list[Effect]:
        """Local status 'up' and the first status out; the keepalive schedule starts here."""
        if self._schedule is not None or self._stopped:
            return []
        self._started_at = now
        self._membership.reset_init_clock(now)
        self._pings.reset_init_clock(now)
        self._schedule = StatusSchedule(now, self._config.timers.keepalive_ms / 1000)
        self._local = NodeStatus.UP
        return [LocalStatusChanged(NodeStatus.UP), *self._settle(now)]

    def handle(self, event: Event, now: float) -> list[Effect]:
        effects = self._settle(now)
        if self._stopped:  # shut down: we send nothing and take no input, but time still runs
            return effects
        match event:
            case PacketIn(iface=iface, message=message, source=source):
                effects += self._packet(iface, message, source, now)
            case PacketRejected(iface=iface, reason=reason, source=source):
                effects.append(PacketDropped(reason, iface, source, None))
            case PingResult():
                effects += self._pings.observe(event, now)
            case LoadAverage(text=text):
                self._load = _clean_load(text)
            case Shutdown():
                return effects + self._shutdown(now)
            case GroupDone() | ProbeDone() | ActiveAtStart() | ControlRequest():
                pass  # resource ownership: being built (issue 4)
            case _:
                assert_never(event)
        for e in effects:
            if isinstance(e, PacketDropped):
                self._drops.count(e.iface, e.reason)
        return effects + self._settle(now)

    def on_timer(self, now: float) -> list[Effect]:
        return self._settle(now)

    def next_deadline(self) -> float | None:
        ds = [self._membership.next_deadline(), self._pings.next_deadline()]
        if self._schedule is not None and not self._stopped:
            ds.append(self._schedule.next_at)
        return min((d for d in ds if d is not None), default=None)

    def reconfigure(self, config: Config, now: float) -> list[Effect]:
        """A valid new config (SIGHUP): nodes that remain keep their state and counters."""
        self._config = config
        self._membership.configure(config, now)
        self._pings.configure(
            config.ping_nodes,
            initdead=config.timers.initdead_ms / 1000,
            deadping=config.timers.deadping_ms / 1000,
            now=now,
        )
        self._drops.add_ifaces(self._membership.ifaces)
        self._echo.keep_only(set(config.peers))
        if self._schedule is not None:
            self._schedule.retime(config.timers.keepalive_ms / 1000, now)
        return self._settle(now)

    def snapshot(self, now: float) -> Snapshot:
        peers, links = self._membership.views()
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
            seq_sent=self._seq.last,
        )

    # ------------------------------------------------------------ internal --
    def _settle(self, now: float) -> list[Effect]:
        """Everything due at or before `now`: deaths, comm-up, then our status."""
        effects: list[Effect] = []
        for _ in range(_MAX_SETTLE_ROUNDS):
            step = self._pings.expire(now) + self._membership.expire(now) + self._comm_check()
            if not step:
                break
            effects += step
        if self._schedule is not None and not self._stopped and self._schedule.due(now):
            effects.append(self._status(now))
            self._schedule.advance(now)
        return effects

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
        effects = receipt.effects
        node, seq = receipt.node, receipt.seq
        if node is None or seq is None:
            return effects
        if receipt.restarted:
            self._echo.forget(node)
        if receipt.status_copy:
            echoes = builders.echo_entries(message)
            rtt = self._echo.rtt(node, iface, echoes, self._config.node, self._seq.sent, now)
            if rtt is not None:
                effects.append(RttMeasured(node, iface, rtt))
        if receipt.delivered:
            self._echo.record(node, iface, seq, now)
        return effects

    def _ts(self, now: float) -> int:
        return max(0, int(now + self._wall_epoch))

    def _status(self, now: float) -> SendMessage:
        cfg = self._config
        st = self._local.value if self._sent_first else FIRST_ST
        self._sent_first = True
        entries = self._echo.entries(now, self._membership.live_links())
        msg = builders.status(
            st=st,
            dt_ms=advertised_dt_ms(cfg.timers, self._started_at, now),
            src=cfg.node,
            srcuuid=self._uuid,
            seq=self._seq.take(now),
            hg=self._generation,
            ts=self._ts(now),
            ld=self._load,
            ttl=cfg.ttl,
            extra=(_echo_field(entries),),
        )
        return SendMessage(msg)

    def _shutdown(self, now: float) -> list[Effect]:
        cfg = self._config
        msg = builders.shutdone(
            src=cfg.node,
            srcuuid=self._uuid,
            seq=self._seq.take(now),
            hg=self._generation,
            ts=self._ts(now),
            ld=self._load,
            ttl=cfg.ttl,
        )
        self._stopped = True
        self._local = NodeStatus.DEAD
        return [SendMessage(msg), LocalStatusChanged(NodeStatus.DEAD), ShutdownComplete()]


def _echo_field(entries: tuple[EchoEntry, ...]) -> Field:
    """The hbecho field; an entry the format cannot carry is left out, never an error."""
    try:
        return builders.encode_echo(entries)
    except ValueError:
        ok = []
        for e in entries:
            try:
                builders.encode_echo((e,))
            except ValueError:
                continue
            ok.append(e)
        return builders.encode_echo(ok)


def _clean_load(text: str) -> str:
    """The `ld` field: one printable line (a newline would break the classic format)."""
    line = "".join(c for c in text.strip() if c.isprintable())[:_MAX_LOAD_LEN]
    return line or NO_LOAD
