"""The Pinger's rounds, replies and timeouts over icmplib's socket, with one end of a
socketpair standing in for the raw socket under it (so icmplib builds the real echo
bytes, and the test answers them, or not, on the other end)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import icmplib

from hbmon.config.model import PingNode
from hbmon.core.events import PingResult
from hbmon.io.ping import ICMP_ECHO_REPLY, PAYLOAD, Pinger

_IP_HEADER = bytes([0x45]) + bytes(19)  # what an IPv4 raw socket delivers first


class _Wire:
    """The raw socket's stand-in: what icmplib sends goes to `theirs`."""

    family = socket.AF_INET
    type = socket.SOCK_RAW

    def __init__(self, ours: socket.socket) -> None:
        self._ours = ours
        self.sent_to: list[Any] = []

    def sendto(self, data: bytes, addr: Any) -> int:
        self.sent_to.append(addr)
        return self._ours.send(data)

    def setsockopt(self, *_: Any) -> None:  # icmplib sets TTL and TOS before each send
        pass

    def recvmsg(self, size: int, ancsize: int) -> tuple[bytes, list[Any], int, tuple[str, int]]:
        return self._ours.recv(size), [], 0, ("10.0.0.1", 0)  # no kernel stamp: read time

    def setblocking(self, flag: bool) -> None:
        self._ours.setblocking(flag)

    def fileno(self) -> int:
        return self._ours.fileno()

    def close(self) -> None:
        self._ours.close()


class _FakeICMPv4Socket(icmplib.ICMPv4Socket):
    wire: _Wire

    def _create_socket(self, type: Any) -> _Wire:
        return self.wire


class _FakePinger(Pinger):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.theirs.setblocking(False)
        self.wire = _Wire(ours)
        self.opened = 0

    def _open(self, family: int) -> Any:
        assert family == socket.AF_INET
        self.opened += 1
        _FakeICMPv4Socket.wire = self.wire
        return _FakeICMPv4Socket(privileged=True)


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total >> 16) + (total & 0xFFFF)
    return ~total & 0xFFFF


def _answer(theirs: socket.socket, echoes: list[bytes]) -> int:
    """Answer every queued echo; return how many."""
    n = 0
    while True:
        try:
            echo = theirs.recv(2048)
        except BlockingIOError:
            return n
        echoes.append(echo)
        _, _, _, ident, seq = struct.unpack_from("!BBHHH", echo)
        theirs.send(_IP_HEADER + struct.pack("!BBHHH", ICMP_ECHO_REPLY, 0, 0, ident, seq))
        n += 1


def test_rounds_at_the_interval_replies_and_timeouts() -> None:
    echoes: list[bytes] = []

    async def scenario() -> tuple[list[PingResult], list[float], _FakePinger]:
        results: list[PingResult] = []
        loop = asyncio.get_running_loop()
        at: list[float] = []

        def sink(r: PingResult) -> None:
            results.append(r)
            at.append(loop.time())

        nodes = (PingNode("gw", ("10.0.0.1",)),)
        p = _FakePinger(nodes, sink, interval_s=0.05, timeout_s=0.05)
        t0 = loop.time()
        p.start()
        await asyncio.sleep(0.01)
        assert _answer(p.theirs, echoes) == 1  # round 1: answered
        await asyncio.sleep(0.13)  # rounds 2 and 3 (t0 + 0.05, + 0.1) go unanswered
        await p.stop()
        p.theirs.close()
        return results, [a - t0 for a in at], p

    results, at, pinger = asyncio.run(scenario())
    assert results[0].rtt_s is not None
    assert results[0].node == "gw"
    assert results[0].address == "10.0.0.1"
    # Later echoes went unanswered: each ends a timeout after its round's start.
    assert len(results) >= 2
    assert all(r.rtt_s is None for r in results[1:])
    assert at[1] >= 0.1
    # One socket for the agent's life, and icmplib's echo is a valid 64-byte request.
    assert pinger.opened == 1
    echo = echoes[0]
    assert len(echo) == 64
    assert echo[:2] == b"\x08\x00"
    assert _checksum(echo) == 0
    assert echo[8:] == PAYLOAD
    assert pinger.wire.sent_to[0][0] == "10.0.0.1"


def test_foreign_and_stale_icmp_do_not_end_an_echo() -> None:
    async def scenario() -> list[PingResult]:
        results: list[PingResult] = []
        p = _FakePinger((PingNode("gw", ("10.0.0.1",)),), results.append,
                        interval_s=10, timeout_s=10)  # fmt: skip
        p.start()
        await asyncio.sleep(0.01)
        echo = p.theirs.recv(2048)
        _, _, _, ident, seq = struct.unpack_from("!BBHHH", echo)
        for junk in (
            b"\x45",  # truncated
            _IP_HEADER + struct.pack("!BBHHH", ICMP_ECHO_REPLY, 0, 0, ident ^ 1, seq),  # not ours
            _IP_HEADER + struct.pack("!BBHHH", ICMP_ECHO_REPLY, 0, 0, ident, seq + 1),  # no echo
            _IP_HEADER + echo,  # an echo request (someone pinging us)
        ):
            p.theirs.send(junk)
        await asyncio.sleep(0.02)
        p.drain()
        assert results == []
        p.theirs.send(_IP_HEADER + struct.pack("!BBHHH", ICMP_ECHO_REPLY, 0, 0, ident, seq))
        await asyncio.sleep(0.02)
        assert results == []  # no reply wakes the pinger: it is read at the next drain
        p.drain()
        await p.stop()
        p.theirs.close()
        return results

    results = asyncio.run(scenario())
    assert len(results) == 1
    assert results[0].rtt_s is not None


def test_an_icmp_error_quoting_our_echo_ends_it_at_once_without_a_reply() -> None:
    async def scenario() -> list[PingResult]:
        results: list[PingResult] = []
        p = _FakePinger((PingNode("gw", ("10.0.0.1",)),), results.append,
                        interval_s=10, timeout_s=10)  # fmt: skip
        p.start()
        await asyncio.sleep(0.01)
        echo = p.theirs.recv(2048)
        unreachable = struct.pack("!BBHI", 3, 1, 0, 0) + _IP_HEADER + echo[:8]
        p.theirs.send(_IP_HEADER + unreachable)
        await asyncio.sleep(0.02)
        p.drain()
        await p.stop()
        p.theirs.close()
        return results

    (result,) = asyncio.run(scenario())
    assert (result.node, result.address, result.rtt_s) == ("gw", "10.0.0.1", None)
    assert result.at is not None  # when it was read (the fake socket has no kernel stamp)


def test_no_privilege_for_a_raw_socket_is_said_once_and_every_echo_fails() -> None:
    from loguru import logger

    lines: list[str] = []
    sink_id = logger.add(lambda m: lines.append(str(m)), level="ERROR")

    class _Unprivileged(Pinger):
        def _open(self, family: int) -> Any:
            try:
                error = icmplib.SocketPermissionError(True)  # icmplib 3: (privileged)
            except TypeError:
                error = icmplib.SocketPermissionError()  # icmplib 2.1
            raise error

    async def scenario() -> list[PingResult]:
        results: list[PingResult] = []
        p = _Unprivileged((PingNode("gw", ("10.0.0.1",)),), results.append,
                          interval_s=0.02, timeout_s=0.02)  # fmt: skip
        p.start()
        await asyncio.sleep(0.07)
        await p.stop()
        return results

    try:
        results = asyncio.run(scenario())
    finally:
        logger.remove(sink_id)
    assert len(results) >= 2
    assert all(r.rtt_s is None for r in results)
    assert len(lines) == 1
    assert "CAP_NET_RAW" in lines[0]


def test_a_beat_sends_the_round_due_before_the_next_beat_in_its_own_wake() -> None:
    async def scenario() -> tuple[list[int], list[PingResult]]:
        results: list[PingResult] = []
        p = _FakePinger((PingNode("gw", ("10.0.0.1",)),), results.append,
                        interval_s=10, timeout_s=10, beat_s=4)  # fmt: skip
        loop = asyncio.get_running_loop()
        p.start()
        await asyncio.sleep(0.01)
        sent = [_answer(p.theirs, [])]  # round 1 at start, answered
        await asyncio.sleep(0.01)
        t0 = loop.time()
        p.beat(t0 + 1)  # round 2 due at start + 10: 9 s away, more than half a beat
        sent.append(_answer(p.theirs, []))
        p.beat(t0 + 8.5)  # 1.5 s away, within half a beat (2 s): it goes now
        sent.append(_answer(p.theirs, []))
        p.beat(t0 + 9)  # round 3 is due at start + 20: nothing more now
        sent.append(_answer(p.theirs, []))
        await asyncio.sleep(0.01)
        p.drain()
        await p.stop()
        p.theirs.close()
        return sent, results

    sent, results = asyncio.run(scenario())
    assert sent == [1, 0, 1, 0]
    assert [r.rtt_s is not None for r in results] == [True, True]
