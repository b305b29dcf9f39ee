"""RTT bookkeeping for the `hbecho` extension (design §3, RTCP LSR/DLSR idea).

Sender side: `SentLog` remembers when each recent seq left. Receiver side:
`EchoBook` remembers, per (peer, iface), the highest seq that iface delivered
and when it arrived; every status we send echoes those with the time we held
them. When a peer echoes one of our seqs back:

    rtt = now - sent_at(seq) - hold

on our own monotonic clock, so no clock synchronisation is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hbmon.wire.builders import EchoEntry

# How many of our own recent seqs keep their send time.
SENT_LOG_SIZE = 128


class SentLog:
    __slots__ = ("_sent", "_size")

    def __init__(self, size: int = SENT_LOG_SIZE) -> None:
        self._size = size
        self._sent: dict[int, float] = {}

    def record(self, seq: int, at: float) -> None:
        self._sent[seq] = at
        while len(self._sent) > self._size:
            del self._sent[next(iter(self._sent))]

    def sent_at(self, seq: int) -> float | None:
        return self._sent.get(seq)


@dataclass(frozen=True, slots=True)
class Heard:
    seq: int
    arrived_at: float


class EchoBook:
    """Per (peer, iface): the highest seq first delivered there, and when."""

    __slots__ = ("_heard", "_rtt_seq")

    def __init__(self) -> None:
        self._heard: dict[tuple[str, str], Heard] = {}
        # Our seq last used for an RTT sample per (peer, iface): one sample per echo.
        self._rtt_seq: dict[tuple[str, str], int] = {}

    def record(self, node: str, iface: str, seq: int, now: float) -> None:
        key = (node, iface)
        old = self._heard.get(key)
        if old is None or seq > old.seq:
            self._heard[key] = Heard(seq, now)

    def forget(self, node: str) -> None:
        """The peer restarted: its old seqs mean nothing to its new incarnation."""
        for key in [k for k in self._heard if k[0] == node]:
            del self._heard[key]
        for key in [k for k in self._rtt_seq if k[0] == node]:
            del self._rtt_seq[key]

    def keep_only(self, nodes: set[str]) -> None:
        for key in [k for k in self._heard if k[0] not in nodes]:
            del self._heard[key]
        for key in [k for k in self._rtt_seq if k[0] not in nodes]:
            del self._rtt_seq[key]

    def entries(self, now: float, live: set[tuple[str, str]]) -> tuple[EchoEntry, ...]:
        """Echo entries for the links in `live`, in a stable order."""
        out = []
        for (node, iface), heard in sorted(self._heard.items()):
            if (node, iface) in live:
                hold = max(0, round((now - heard.arrived_at) * 1_000_000))
                out.append(EchoEntry(node, iface, heard.seq, hold))
        return tuple(out)

    def rtt(
        self,
        peer: str,
        iface: str,
        echoes: tuple[EchoEntry, ...],
        own: str,
        sent: SentLog,
        now: float,
    ) -> float | None:
        """RTT from `peer`'s echo of our seqs, for the copy that arrived on `iface`.

        Uses the entry for our node on the same iface name; if the peer names its
        interfaces differently, the most recent entry for our node. None if no
        usable entry, the seq is unknown or already used, or the result is negative.
        """
        mine = [e for e in echoes if e.node == own]
        if not mine:
            return None
        same = [e for e in mine if e.iface == iface]
        entry = same[0] if same else max(mine, key=lambda e: e.seq)
        key = (peer, iface)
        if self._rtt_seq.get(key) == entry.seq:
            return None
        sent_at = sent.sent_at(entry.seq)
        if sent_at is None:
            return None
        rtt = now - sent_at - entry.hold_us / 1_000_000
        if rtt < 0:
            return None
        self._rtt_seq[key] = entry.seq
        return rtt
