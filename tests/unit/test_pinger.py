"""The Pinger's rounds, replies and timeouts, with a socketpair standing in for the raw socket."""

from __future__ import annotations

import asyncio
import socket
import struct

from hbmon.config.model import PingNode
from hbmon.core.events import PingResult
from hbmon.io.ping import ICMP_ECHO_REPLY, Pinger

_IP_HEADER = bytes([0x45]) + bytes(19)  # what an IPv4 raw socket delivers first


class _FakePinger(Pinger):
    """Echoes go to one end of a socketpair; the test answers (or not) on the other."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.theirs.setblocking(False)

    def _socket(self, family: int) -> socket.socket:
        if family not in self._sockets:
            asyncio.get_running_loop().add_reader(
                self.ours.fileno(), self._readable, self.ours, family
            )
            self._sockets[family] = _Sender(self.ours)  # type: ignore[assignment]
        return self._sockets[family]


class _Sender:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def sendto(self, data: bytes, _addr: object) -> int:
        return self._sock.send(data)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()


def _answer(theirs: socket.socket) -> int:
    """Answer every queued echo; return how many."""
    n = 0
    while True:
        try:
            echo = theirs.recv(2048)
        except BlockingIOError:
            return n
        _, _, _, ident, seq = struct.unpack_from("!BBHHH", echo)
        theirs.send(_IP_HEADER + struct.pack("!BBHHH", ICMP_ECHO_REPLY, 0, 0, ident, seq))
        n += 1


def test_rounds_at_the_interval_replies_and_timeouts() -> None:
    async def scenario() -> tuple[list[PingResult], list[float]]:
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
        assert _answer(p.theirs) == 1  # round 1: answered
        await asyncio.sleep(0.13)  # rounds 2 and 3 (t0 + 0.05, + 0.1) go unanswered
        await p.stop()
        p.theirs.close()
        return results, [a - t0 for a in at]

    results, at = asyncio.run(scenario())
    assert results[0].rtt_s is not None
    assert results[0].node == "gw"
    assert results[0].address == "10.0.0.1"
    # Every later echo went unanswered: one None per round, each a timeout after its round.
    # Later echoes went unanswered: each ends a timeout after its round's start.
    assert len(results) >= 2
    assert all(r.rtt_s is None for r in results[1:])
    assert at[1] >= 0.1
