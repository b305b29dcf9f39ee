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
import contextlib
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
    def __init__(
        self, nodes: tuple[PingNode, ...], sink: PingSink, *, interval_s: float, timeout_s: float
    ) -> None:
        self._nodes = nodes
        self._sink = sink
        self._interval = interval_s
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._ident = os.getpid() & 0xFFFF
        self._seq = 0
        self._sockets: dict[int, socket.socket] = {}
        # (family, seq) -> (send time, the echo's future: its round-trip time or None)
        self._waiting: dict[tuple[int, int], tuple[float, asyncio.Future[float | None]]] = {}

    def start(self) -> None:
        if self._nodes:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        for sock in self._sockets.values():
            loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    async def _run(self) -> None:
        interval = self._interval
        loop = asyncio.get_running_loop()
        next_round = loop.time()
        while True:
            await asyncio.gather(*(self._one(n.name, a) for n in self._nodes for a in n.addresses))
            next_round += interval
            await asyncio.sleep(max(0.0, next_round - loop.time()))

    async def _one(self, node: str, address: str) -> None:
        try:
            rtt = await self._echo(address)
        except OSError:
            rtt = None
        self._sink(PingResult(node=node, address=address, rtt_s=rtt))

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
            sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK, proto)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock, family)
            self._sockets[family] = sock
        return sock

    async def _echo(self, address: str) -> float | None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self._socket(family)
        self._seq = (self._seq + 1) & 0xFFFF
        key = (family, self._seq)
        fut: asyncio.Future[float | None] = loop.create_future()
        timer = loop.call_later(self._timeout, _settle, fut, None)
        self._waiting[key] = (loop.time(), fut)
        try:
            sock.sendto(echo_request(family, self._ident, self._seq), (address, 0))
            return await fut
        finally:
            timer.cancel()
            self._waiting.pop(key, None)

    def _readable(self, sock: socket.socket, family: int) -> None:
        now = asyncio.get_running_loop().time()
        while True:
            try:
                packet = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # a queued error for some earlier echo: its timeout ends it
                return
            parsed = parse_reply(family, packet)
            if parsed is None or parsed[1] != self._ident:
                continue  # someone else's ICMP (every raw socket sees all of it)
            ok, _, seq = parsed
            waiting = self._waiting.get((family, seq))
            if waiting is not None:
                sent, fut = waiting
                _settle(fut, now - sent if ok else None)


def _settle(fut: asyncio.Future[float | None], value: float | None) -> None:
    if not fut.done():
        fut.set_result(value)
