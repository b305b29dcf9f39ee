"""ICMP echo to ping nodes (spec §5.5) through icmplib, over one long-lived socket per family.

One round every `interval_s` (the engine derives it from deadping): every
address of every ping node gets one echo, all in parallel; each result becomes
a `PingResult` for the core. The core, not this module, decides when a ping
node is dead (deadping).

icmplib opens the sockets: its `ICMPv4Socket`/`ICMPv6Socket` (raw, opened once
for the agent's life: a fresh socket per echo, as icmplib's `ping()` and
`async_ping()` make, costs a dozen system calls and most of an idle agent's
per-ping CPU). The echoes are icmplib's bytes, built from a template here
(`EchoRequests`): its `send` looks the address up, sets two socket options and
checksums in Python for every echo, which in an agent that pings every beat was
a fifth of its idle cost. What arrives can be read as icmplib's `ICMPReply`
(`parse_reply`), matched on our identifier and sequence number as icmplib
matches them; an ICMP error quoting one of our echoes (unreachable, time
exceeded) ends that echo at once with no reply.

Hand-written here, and why: **receiving** (`drain`, `parse_reply`).
icmplib's `ICMPSocket.receive()` blocks the calling thread: it sets a socket
timeout and reads until a datagram parses, so one short or foreign ICMP message
(a raw socket sees all of the host's ICMP) would stall the event loop, and the
heartbeats with it, for that timeout; with a zero timeout it drops the datagram
it has just read (its deadline check follows the read). icmplib 3's
`AsyncSocket.receive()` awaits one reply per call (a future, a timeout and a
reader registration per echo: the per-echo cost the one-timer round design
removes) and does not exist in icmplib 2.1, Debian 12's version, which also
exposes no file descriptor (3.0 added `.sock`). So `drain` reads the socket
icmplib opened, without blocking, and `parse_reply` turns each datagram into an
`ICMPReply`. It honours the IPv4 header length and treats only ICMP error types
as quotes of an echo (icmplib's parser reads any message that is not a reply,
e.g. someone's echo request to us, as one).

No reply wakes the agent: there is no reader on the socket. The engine drains
it at each of its own wakes (a round goes out in the wake that sends a status,
so the reply is read, at the latest, with the next one), each round's timer
drains it before it times an echo out, and the kernel's receive timestamp says
when each reply really came. The kernel queues only replies and ICMP errors
(`only_replies`), so the host's other ICMP neither wakes nor crowds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from icmplib import ICMPLibError, ICMPReply, ICMPv4Socket, ICMPv6Socket
from loguru import logger

from hbmon.config.model import PingNode
from hbmon.core.events import PingResult
from hbmon.io.arrival import ANCILLARY_SPACE, Stamps, kernel_stamp
from hbmon.io.arrival import enable as enable_timestamps

PingSink = Callable[[PingResult], None]

ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
ICMP_ERRORS = frozenset({3, 11, 12})  # unreachable, time exceeded, parameter problem
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
ICMP6_ERRORS = frozenset({1, 3, 4})
ECHO_REPLY: dict[int, int] = {socket.AF_INET: ICMP_ECHO_REPLY, socket.AF_INET6: ICMP6_ECHO_REPLY}
# What ping(8) and icmplib send: 56 payload bytes, a 64-byte ICMP message.
PAYLOAD = (b"hbmon ping node " * 4)[:56]
_ECHO = struct.Struct("!BBHHH")
# icmplib 3 added `family` to ICMPReply's constructor; 2.1 (Debian 12) has none.
_REPLY_TAKES_FAMILY = "family" in inspect.signature(ICMPReply).parameters


def make_reply(
    family: int,
    source: str,
    packet_type: int,
    code: int,
    ident: int,
    seq: int,
    size: int,
    at: float,
) -> ICMPReply:
    """An icmplib `ICMPReply` under icmplib 2.1 and 3.x alike."""
    fields: dict[str, Any] = {
        "source": source,
        "id": ident,
        "sequence": seq,
        "type": packet_type,
        "code": code,
        "bytes_received": size,
        "time": at,
    }
    if _REPLY_TAKES_FAMILY:
        fields["family"] = 4 if family == socket.AF_INET else 6
    return ICMPReply(**fields)


def parse_reply(family: int, packet: bytes, source: str = "", at: float = 0.0) -> ICMPReply | None:
    """The `ICMPReply` a received ICMP message is, when it is an echo reply or an error
    quoting an echo request (its id and sequence are then the quoted echo's); None
    for anything else. IPv4 raw sockets deliver the IP header, IPv6 ones do not."""
    fields = echo_fields(family, packet)
    if fields is None:
        return None
    kind, code, ident, seq = fields
    return make_reply(family, source, kind, code, ident, seq, len(packet), at)


def echo_fields(family: int, packet: bytes) -> tuple[int, int, int, int] | None:
    """(type, code, identifier, sequence) of an echo reply or of the echo an ICMP
    error quotes; None for anything else (what `parse_reply` makes an ICMPReply of)."""
    try:
        if family == socket.AF_INET:
            packet = packet[(packet[0] & 0x0F) * 4 :]
            reply, errors, request = ICMP_ECHO_REPLY, ICMP_ERRORS, ICMP_ECHO_REQUEST
        else:
            reply, errors, request = ICMP6_ECHO_REPLY, ICMP6_ERRORS, ICMP6_ECHO_REQUEST
        kind, code = packet[0], packet[1]
        if kind == reply:
            _, _, _, ident, seq = _ECHO.unpack_from(packet)
            return kind, code, ident, seq
        if kind in errors:
            # The error quotes the offending datagram: its IP header, then our echo.
            # (IPv6: the fixed 40-byte header; our echoes carry no extension headers.)
            inner = packet[8:]
            inner = inner[(inner[0] & 0x0F) * 4 :] if family == socket.AF_INET else inner[40:]
            if inner[0] == request:
                _, _, _, ident, seq = _ECHO.unpack_from(inner)
                return kind, code, ident, seq
    except (IndexError, struct.error):
        pass
    return None


class EchoRequests:
    """Our echo requests as bytes, built from one template per family.

    Only the sequence number (and so the checksum) changes from one echo to the
    next: the checksum is the template's sum plus the sequence, folded (RFC 1071
    one's-complement arithmetic). IPv6's is left at zero: the kernel computes
    ICMPv6 checksums on raw sockets (RFC 3542). This is what icmplib's
    `ICMPRequest` + `send` build, without what they cost per echo in an idle
    agent: a name lookup, two socket options and a checksum loop in Python.
    """

    __slots__ = ("_ident", "_sums")

    def __init__(self, ident: int) -> None:
        self._ident = ident
        words = struct.unpack(f"!{len(PAYLOAD) // 2}H", PAYLOAD)
        self._sums: dict[int, int | None] = {
            socket.AF_INET: (ICMP_ECHO_REQUEST << 8) + ident + sum(words),
            socket.AF_INET6: None,
        }

    def packet(self, family: int, seq: int) -> bytes:
        total = self._sums[family]
        checksum = 0
        if total is not None:
            total += seq
            while total >> 16:
                total = (total & 0xFFFF) + (total >> 16)
            checksum = ~total & 0xFFFF
        kind = ICMP_ECHO_REQUEST if family == socket.AF_INET else ICMP6_ECHO_REQUEST
        return _ECHO.pack(kind, 0, checksum, self._ident, seq) + PAYLOAD


def open_icmp(family: int) -> Any:
    """icmplib's raw ICMP socket for `family` (root or CAP_NET_RAW, as heartbeat needs)."""
    return (
        ICMPv4Socket(privileged=True) if family == socket.AF_INET else ICMPv6Socket(privileged=True)
    )


# <linux/icmp.h> ICMP_FILTER (level SOL_RAW) and <netinet/icmp6.h> ICMP6_FILTER:
# a bit set per ICMP type the raw socket is not to queue.
SOL_RAW, ICMP_FILTER = 255, 1
ICMP6_FILTER = 1


def only_replies(sock: socket.socket, family: int) -> None:
    """Have the kernel queue only echo replies and the errors that may quote our
    echoes on `sock`: a raw socket otherwise gets all of the host's ICMP, which
    would fill its buffer between two reads. Best effort: where the kernel
    refuses, `parse_reply` still sorts them out."""
    if family == socket.AF_INET:
        wanted = {ICMP_ECHO_REPLY, *ICMP_ERRORS}
        blocked = sum(1 << t for t in range(32) if t not in wanted)
        level, option, value = SOL_RAW, ICMP_FILTER, struct.pack("=I", blocked)
    else:
        wanted = {ICMP6_ECHO_REPLY, *ICMP6_ERRORS}
        words = [
            sum(1 << bit for bit in range(32) if 32 * word + bit not in wanted) for word in range(8)
        ]
        level, option, value = socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words)
    with contextlib.suppress(OSError):
        sock.setsockopt(level, option, value)


def descriptor(icmp: Any) -> socket.socket:
    """The socket under an icmplib socket: `.sock` since icmplib 3.0; 2.1 has only `_sock`."""
    sock = getattr(icmp, "sock", None)
    return sock if sock is not None else icmp._sock  # type: ignore[no-any-return]


class Pinger:
    """Rounds of echoes driven by one loop timer: no task, future or sleep per echo.

    A round starts at `start` + k·interval (or, should a round's echoes outlive
    the interval, as soon as the last of them ends); each echo ends with its
    reply or, unanswered, `timeout_s` after its round's start. At the engine's
    timeout = interval, an unanswered echo ends in the same wake-up that starts
    the next round.

    `beat_s`: the driver wakes that often anyway (to send a status) and calls
    `beat()` then; a round due within half of it goes out in that wake instead
    of in one of its own (the engine makes the interval a whole number of beats).

    The round trip is the kernel's receive stamp (SO_TIMESTAMPNS) minus the
    time icmplib took right after sending: neither includes the event loop's
    delay in getting to the socket.
    """

    def __init__(
        self,
        nodes: tuple[PingNode, ...],
        sink: PingSink,
        *,
        interval_s: float,
        timeout_s: float,
        beat_s: float | None = None,
    ) -> None:
        self._nodes = nodes
        self._sink = sink
        self._interval = interval_s
        self._timeout = timeout_s
        self._beat = beat_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._next_round: float | None = None
        self._ident = os.getpid() & 0xFFFF
        self._requests = EchoRequests(self._ident)
        self._destinations: dict[str, Any] = {}
        self._seq = 0
        # family -> (icmplib socket, the socket under it)
        self._sockets: dict[int, tuple[Any, socket.socket]] = {}
        self._unusable: set[int] = set()  # families whose socket could not be opened
        # (family, seq) -> (wall-clock send time, deadline, ping node, address) of an
        # echo in flight
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
        for icmp, _ in self._sockets.values():
            icmp.close()
        self._sockets.clear()
        self._loop = None

    def drain(self) -> None:
        """Read every reply that has arrived. No reply wakes the agent: the driver
        calls this at each of its own wakes (and each round's timer does), and each
        reply carries the kernel's time of arrival, so reading it later changes
        neither its round trip nor when it counts."""
        loop = self._loop
        if loop is None or not self._waiting:
            # Nothing of ours can be queued (the kernel filters the rest): no
            # system call, so the engine may ask at every wake for free.
            return
        stamps = Stamps(loop.time)
        results: list[PingResult] = []
        for family, (_, sock) in self._sockets.items():
            results += self._read(sock, family, stamps)
        # Handed over once the reading is done: the sink may send a status, whose
        # beat can start a round (and drain) again.
        for result in results:
            self._sink(result)
            if self._loop is None:  # the sink stopped us
                return
        # A round that waited for its last echo starts now, not at a stale timer.
        if not self._waiting and self._next_round is not None and stamps.now >= self._next_round:
            self._arm()

    def beat(self, now: float) -> None:
        """The driver is awake at `now` (it sent a status): echoes that end and the
        round that is due before the middle of the next beat are done now."""
        if self._loop is None or self._beat is None or self._next_round is None:
            return
        due = min([self._next_round, *(deadline for _, deadline, _, _ in self._waiting.values())])
        if due - now <= self._beat / 2:
            self._tick(now + self._beat / 2)

    def _tick(self, horizon: float | None = None) -> None:
        """Echoes that ended, then the next round if it is due (by `horizon`: a beat
        runs what is due before the next one)."""
        loop = self._loop
        if loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self.drain()  # replies that came in time end their echoes first
        if self._loop is None:
            return
        now = loop.time() if horizon is None else horizon
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
                except (OSError, ICMPLibError):
                    self._sink(PingResult(node=n.name, address=address, rtt_s=None))

    def _arm(self) -> None:
        """The timer at the next round or, while echoes are in flight, the first deadline.
        With beats, half a beat later: the beat before it does the work, and the
        timer only stands in should the beats stop."""
        loop = self._loop
        assert loop is not None
        assert self._next_round is not None
        if self._waiting:
            at = min(deadline for _, deadline, _, _ in self._waiting.values())
        else:
            at = self._next_round
        if self._beat is not None:
            at += self._beat / 2
        if self._timer is not None:
            if isinstance(self._timer, asyncio.TimerHandle) and self._timer.when() == at:
                return
            self._timer.cancel()
        self._timer = loop.call_at(at, self._tick)

    def _open(self, family: int) -> Any:
        """A new icmplib socket for `family` (tests replace it)."""
        return open_icmp(family)

    def _socket(self, family: int) -> Any:
        entry = self._sockets.get(family)
        if entry is None:
            try:
                icmp = self._open(family)
            except ICMPLibError as exc:
                if family not in self._unusable:  # said once, not every round
                    self._unusable.add(family)
                    logger.error(
                        "Cannot open an ICMP socket for ping nodes ({}): {}. "
                        "hbmon needs root or CAP_NET_RAW.",
                        "IPv6" if family == socket.AF_INET6 else "IPv4",
                        exc.__class__.__name__,
                    )
                raise
            sock = descriptor(icmp)
            sock.setblocking(False)
            enable_timestamps(sock)
            only_replies(sock, family)
            entry = self._sockets[family] = (icmp, sock)
        return entry[1]

    def _destination(self, family: int, address: str) -> Any:
        """The socket address of a ping node's address, looked up once (an address
        that does not resolve is tried again next round)."""
        dest = self._destinations.get(address)
        if dest is None:
            dest = socket.getaddrinfo(address, None, family, socket.SOCK_RAW)[0][4]
            self._destinations[address] = dest
        return dest

    def _send(self, node: str, address: str, deadline: float) -> None:
        assert self._loop is not None
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self._socket(family)
        dest = self._destination(family, address)
        self._seq = (self._seq + 1) & 0xFFFF
        packet = self._requests.packet(family, self._seq)
        sent = time.time()  # wall clock: the kernel's receive stamp is too
        sock.sendto(packet, dest)
        self._waiting[(family, self._seq)] = (sent, deadline, node, address)

    def _read(self, sock: socket.socket, family: int, stamps: Stamps) -> list[PingResult]:
        """Our echoes' replies (and ICMP errors quoting them) queued on `sock`."""
        results: list[PingResult] = []
        while self._waiting:  # the last reply of ours ends the reading, no EAGAIN needed
            try:
                packet, ancdata, _, _ = sock.recvmsg(2048, ANCILLARY_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # a queued error for some earlier echo: its timeout ends it
                break
            fields = echo_fields(family, packet)
            if fields is None or fields[2] != self._ident:
                continue  # someone else's ICMP (every raw socket sees all of it)
            waiting = self._waiting.pop((family, fields[3]), None)
            if waiting is not None:
                sent, _, node, address = waiting
                ok = fields[0] == ECHO_REPLY[family]
                stamp = kernel_stamp(ancdata)
                rtt = max(0.0, (time.time() if stamp is None else stamp) - sent)
                results.append(
                    PingResult(node, address, rtt if ok else None, stamps.arrival(ancdata))
                )
        return results
