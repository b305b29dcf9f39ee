"""ICMP echo to ping nodes (spec §5.5) over one long-lived raw socket per address family.

One round every `interval_s` (the engine derives it from deadping): every
address of every ping node gets one echo, all in parallel; each result becomes
a `PingResult` for the core. The core, not this module, decides when a ping
node is dead (deadping).

The socket stays open for the agent's life, read by the event loop: a fresh
socket per echo (as icmplib's `async_ping` does) costs a dozen system calls and
most of an idle agent's per-ping CPU. Replies are matched on our identifier and
sequence number (as icmplib does); an ICMP error quoting one of our echoes
(unreachable, time exceeded) ends that echo at once with no reply.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable

from hbmon.config.model import PingNode
from hbmon.core.events import PingResult

PingSink = Callable[[PingResult], None]

ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
ICMP_ERRORS = frozenset({3, 11, 12})  # unreachable, time exceeded, parameter problem
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
ICMP6_ERRORS = frozenset({1, 3, 4})
# What ping(8) and icmplib send: 56 payload bytes, a 64-byte ICMP message.
PAYLOAD = (b"hbmon ping node " * 4)[:56]
_ECHO = struct.Struct("!BBHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int) -> bytes:
    """An echo request; ICMPv6's checksum is the kernel's job (it needs the pseudo-header)."""
    if family == socket.AF_INET6:
        return _ECHO.pack(ICMP6_ECHO_REQUEST, 0, 0, ident, seq) + PAYLOAD
    head = _ECHO.pack(ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    return _ECHO.pack(ICMP_ECHO_REQUEST, 0, checksum(head + PAYLOAD), ident, seq) + PAYLOAD


def parse_reply(family: int, packet: bytes) -> tuple[bool, int, int] | None:
    """(is an echo reply, identifier, sequence) of the echo a received ICMP message is
    about, or None when it is about no echo. IPv4 raw sockets deliver the IP header."""
    try:
        if family == socket.AF_INET:
            packet = packet[(packet[0] & 0x0F) * 4 :]
            kind, reply, errors = packet[0], ICMP_ECHO_REPLY, ICMP_ERRORS
        else:
            kind, reply, errors = packet[0], ICMP6_ECHO_REPLY, ICMP6_ERRORS
        if kind == reply:
            _, _, _, ident, seq = _ECHO.unpack_from(packet)
            return True, ident, seq
        if kind in errors:
            # The error quotes the offending datagram: its IP header, then our echo.
            # (IPv6: the fixed 40-byte header; our echoes carry no extension headers.)
            inner = packet[8:]
            inner = inner[(inner[0] & 0x0F) * 4 :] if family == socket.AF_INET else inner[40:]
            want = ICMP_ECHO_REQUEST if family == socket.AF_INET else ICMP6_ECHO_REQUEST
            if inner[0] == want:
                _, _, _, ident, seq = _ECHO.unpack_from(inner)
                return False, ident, seq
    except (IndexError, struct.error):
        pass
    return None


class Pinger:
    """Rounds of echoes driven by one loop timer: no task, future or sleep per echo.

    A round starts at `start` + k·interval (or, should a round's echoes outlive
    the interval, as soon as the last of them ends); each echo ends with its
    reply or, unanswered, `timeout_s` after its round's start. At the engine's
    timeout = interval, an unanswered echo ends in the same wake-up that starts
    the next round.
    """

    def __init__(
        self, nodes: tuple[PingNode, ...], sink: PingSink, *, interval_s: float, timeout_s: float
    ) -> None:
        self._nodes = nodes
        self._sink = sink
        self._interval = interval_s
        self._timeout = timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._next_round: float | None = None
        self._ident = os.getpid() & 0xFFFF
        self._seq = 0
        self._sockets: dict[int, socket.socket] = {}
        # (family, seq) -> (send time, deadline, ping node, address) of an echo in flight
        self._waiting: dict[tuple[int, int], tuple[float, float, str, str]] = {}

    def start(self) -> None:
        if self._nodes:
            self._loop = asyncio.get_running_loop()
            self._timer = self._loop.call_soon(self._tick)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
        loop = asyncio.get_running_loop()
        for sock in self._sockets.values():
            loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        self._loop = None

    def _tick(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._timer = None
        now = loop.time()
        expired = [k for k, (_, deadline, _, _) in self._waiting.items() if deadline <= now]
        for key in expired:
            _, _, node, address = self._waiting.pop(key)
            self._sink(PingResult(node=node, address=address, rtt_s=None))
        if self._loop is None:  # the sink stopped us
            return
        if not self._waiting:
            if self._next_round is None:
                self._next_round = now
            if now >= self._next_round:
                self._round(self._next_round)
                self._next_round += self._interval
                if self._loop is None:
                    return
        self._arm()

    def _round(self, at: float) -> None:
        """One echo to every address of every ping node, ending by `at` + timeout."""
        deadline = at + self._timeout
        for n in self._nodes:
            for address in n.addresses:
                try:
                    self._send(n.name, address, deadline)
                except OSError:
                    self._sink(PingResult(node=n.name, address=address, rtt_s=None))

    def _arm(self) -> None:
        """The timer at the next round or, while echoes are in flight, the first deadline."""
        loop = self._loop
        assert loop is not None
        assert self._next_round is not None
        if self._waiting:
            at = min(deadline for _, deadline, _, _ in self._waiting.values())
        else:
            at = self._next_round
        if self._timer is not None:
            if isinstance(self._timer, asyncio.TimerHandle) and self._timer.when() == at:
                return
            self._timer.cancel()
        self._timer = loop.call_at(at, self._tick)

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
            sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK, proto)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock, family)
            self._sockets[family] = sock
        return sock

    def _send(self, node: str, address: str, deadline: float) -> None:
        assert self._loop is not None
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self._socket(family)
        self._seq = (self._seq + 1) & 0xFFFF
        key = (family, self._seq)
        self._waiting[key] = (self._loop.time(), deadline, node, address)
        try:
            sock.sendto(echo_request(family, self._ident, self._seq), (address, 0))
        except OSError:
            del self._waiting[key]
            raise

    def _readable(self, sock: socket.socket, family: int) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        while True:
            try:
                packet = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # a queued error for some earlier echo: its timeout ends it
                break
            parsed = parse_reply(family, packet)
            if parsed is None or parsed[1] != self._ident:
                continue  # someone else's ICMP (every raw socket sees all of it)
            ok, _, seq = parsed
            waiting = self._waiting.pop((family, seq), None)
            if waiting is not None:
                sent, _, node, address = waiting
                self._sink(PingResult(node=node, address=address, rtt_s=now - sent if ok else None))
                if self._loop is None:  # the sink stopped us
                    return
        # A round that waited for its last echo starts now, not at a stale timer.
        if not self._waiting and self._next_round is not None and now >= self._next_round:
            self._arm()
