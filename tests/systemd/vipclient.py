"""A client of the floating address: ICMP echo every few milliseconds, from the lab's
client namespace, recording which requests were answered and when.

The largest gap between two answered requests is what a client of the service
would see as an outage; unanswered requests are lost replies.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from hbmon.testing.lab import socket_in_namespace

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo(ident: int, seq: int) -> bytes:
    payload = b"hbmon-vip-probe"
    head = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, _checksum(head + payload), ident, seq) + (
        payload
    )


@dataclass(frozen=True, slots=True)
class Outage:
    sent: int
    lost: int
    largest_gap_s: float  # between two consecutive answered requests
    gap_start: float  # monotonic time of the answer before the largest gap


@dataclass
class VipClient:
    ns: str
    vip: str
    interval_s: float = 0.005
    sent: dict[int, float] = field(default_factory=dict)  # seq -> monotonic send time
    answered: dict[int, float] = field(default_factory=dict)  # seq -> monotonic reply time
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> VipClient:
        sock = socket_in_namespace(self.ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self, sock: socket.socket) -> None:
        ident = os.getpid() & 0xFFFF
        target = socket.inet_aton(self.vip)
        seq = 0
        next_send = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_send:
                    seq = (seq + 1) & 0xFFFF
                    with contextlib.suppress(OSError):  # no ARP yet: counted as lost
                        sock.sendto(_echo(ident, seq), (self.vip, 0))
                    self.sent[seq] = now
                    next_send += self.interval_s
                    if next_send < now:
                        next_send = now + self.interval_s
                ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
                if not ready:
                    continue
                data = sock.recv(2048)
                at = time.monotonic()
                ihl = (data[0] & 0x0F) * 4
                if data[12:16] != target or len(data) < ihl + 8:
                    continue
                kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
                if kind == ICMP_ECHO_REPLY and rid == ident and rseq in self.sent:
                    self.answered.setdefault(rseq, at)
        finally:
            sock.close()

    def outage(self, since: float, until: float) -> Outage:
        """Requests sent in [since, until - 0.2 s] (the tail may still be in flight)."""
        window = {s: t for s, t in self.sent.items() if since <= t <= until - 0.2}
        lost = sum(1 for s in window if s not in self.answered)
        replies = sorted(t for s, t in self.answered.items() if since <= t <= until)
        gap, start = 0.0, since
        for a, b in itertools.pairwise(replies):
            if b - a > gap:
                gap, start = b - a, a
        if not replies:
            gap, start = until - since, since
        return Outage(sent=len(window), lost=lost, largest_gap_s=gap, gap_start=start)

    def first_answer_after(self, t: float) -> float | None:
        later = [at for s, at in self.answered.items() if self.sent[s] >= t]
        return min(later) if later else None
