"""What we send and when: the fixed-rate status schedule, our seq counter and the
outbox that builds our sequenced messages.

Statuses go out at start + k·keepalive. A late timer call sends once and
re-aligns to the next slot after `now`; it never shifts the schedule, so beats
do not drift with scheduling jitter (heartbeat's own loop does drift).
"""

from __future__ import annotations

import math

from hbmon.config.model import STARTUP_DT_EXTRA_MS, STARTUP_DT_PERIOD_MS, Config, Timers
from hbmon.core.echo import SentLog
from hbmon.core.events import SendMessage
from hbmon.core.flowctl import FlowControl
from hbmon.wire import builders
from hbmon.wire.builders import EchoEntry
from hbmon.wire.message import Field, Message

NO_LOAD = "n/a"
_MAX_LOAD_LEN = 256


class StatusSchedule:
    __slots__ = ("_anchor", "_k", "_period")

    def __init__(self, anchor: float, period: float) -> None:
        self._anchor = anchor
        self._period = period
        self._k = 0

    @property
    def next_at(self) -> float:
        return self._anchor + self._k * self._period

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def advance(self, now: float) -> None:
        """The status of the current slot is out: move to the first slot after `now`."""
        k = max(self._k + 1, math.floor((now - self._anchor) / self._period) + 1)
        while self._anchor + k * self._period <= now:
            k += 1
        self._k = k

    def retime(self, period: float, now: float) -> None:
        """New keepalive: keep the pending slot unless the new period comes sooner."""
        if period == self._period:
            return
        self._anchor = min(self.next_at, now + period)
        self._k = 0
        self._period = period


class SeqCounter:
    """Our per-sender seq (starts at 1, shared by all sequenced messages)."""

    __slots__ = ("last", "sent")

    def __init__(self) -> None:
        self.last = 0
        self.sent = SentLog()

    def take(self, now: float) -> int:
        self.last += 1
        self.sent.record(self.last, now)
        return self.last


def advertised_dt_ms(timers: Timers, started_at: float, now: float) -> int:
    """Our `dt`: deadtime, plus STARTUP_DT_EXTRA_MS during the startup period (§4.5)."""
    # Compared in whole µs so float noise cannot move the boundary.
    if round((now - started_at) * 1_000_000) < STARTUP_DT_PERIOD_MS * 1000:
        return timers.deadtime_ms + STARTUP_DT_EXTRA_MS
    return timers.deadtime_ms


class Outbox:
    """Our sequenced messages: one seq for all, the common block (src, srcuuid, hg,
    ts, ld, ttl) with what it repeats built once, when each status went out, and
    heartbeat's copies for retransmission (core/flowctl.py)."""

    __slots__ = (
        "_cfg",
        "_fields",
        "_flow",
        "_generation",
        "_uuid",
        "_wall_epoch",
        "load",
        "seq",
        "status_sent",
    )

    def __init__(
        self, config: Config, generation: int, uuid: bytes, wall_epoch: float, flow: FlowControl
    ) -> None:
        self._cfg = config
        self._generation = generation
        self._uuid = uuid
        self._wall_epoch = wall_epoch
        self._flow = flow
        self._fields = builders.FieldCache()  # what our messages repeat, built once
        self.seq = SeqCounter()
        self.status_sent = SentLog()  # our statuses' seqs: what a peer's echo confirms
        self.load = NO_LOAD

    def configure(self, config: Config) -> None:
        self._cfg = config

    def set_load(self, text: str) -> None:
        """The `ld` field: one printable line (a newline would break the classic format)."""
        line = "".join(c for c in text.strip() if c.isprintable())[:_MAX_LOAD_LEN]
        self.load = line or NO_LOAD

    def ts(self, now: float) -> int:
        return max(0, int(now + self._wall_epoch))

    def status(self, st: str, dt_ms: int, extra: tuple[Field, ...], now: float) -> SendMessage:
        cfg = self._cfg
        msg = builders.status(
            st=st,
            dt_ms=dt_ms,
            src=cfg.node,
            srcuuid=self._uuid,
            seq=self.seq.take(now),
            hg=self._generation,
            ts=self.ts(now),
            ld=self.load,
            ttl=cfg.ttl,
            extra=extra,
            fields=self._fields,
        )
        self.status_sent.record(self.seq.last, now)
        return self._out(msg, built_at=now)

    def sequenced(self, head: tuple[Field, ...], now: float) -> SendMessage:
        """A resource-protocol message with our seq and the common block."""
        cfg = self._cfg
        msg = builders.sequenced(
            head,
            src=cfg.node,
            srcuuid=self._uuid,
            seq=self.seq.take(now),
            hg=self._generation,
            ts=self.ts(now),
            ld=self.load,
            ttl=cfg.ttl,
            fields=self._fields,
        )
        return self._out(msg)

    def shutdone(self, now: float) -> SendMessage:
        cfg = self._cfg
        msg = builders.shutdone(
            src=cfg.node,
            srcuuid=self._uuid,
            seq=self.seq.take(now),
            hg=self._generation,
            ts=self.ts(now),
            ld=self.load,
            ttl=cfg.ttl,
            fields=self._fields,
        )
        return self._out(msg)

    def ack(self, dest: str, ackseq: int, now: float) -> SendMessage:
        """heartbeat's flow-control ack of `dest`'s `ackseq` (not sequenced)."""
        msg = builders.ns_ackmsg(
            dest=dest,
            ackseq=ackseq,
            destuuid=self._flow.uuids.get(dest, b""),
            src=self._cfg.node,
            srcuuid=self._uuid,
            hg=self._generation,
            ts=self.ts(now),
            ttl=self._cfg.ttl,
            fields=self._fields,
        )
        return SendMessage(msg)

    def _out(self, msg: Message, built_at: float | None = None) -> SendMessage:
        """A sequenced message out; kept for heartbeat's retransmit requests."""
        self._flow.sent(self.seq.last, msg)
        return SendMessage(msg, built_at)

    def sent(self, seq: int, at: float) -> None:
        """Our message `seq` went out at `at` (the driver says so right after writing
        it, later than when it was built): the round trip its echo gives counts from
        then."""
        self.seq.sent.record(seq, at)
        if self.status_sent.sent_at(seq) is not None:
            self.status_sent.record(seq, at)


def echo_field(entries: tuple[EchoEntry, ...]) -> Field:
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
