"""The Pinger on icmplib's real raw sockets, in a namespace of its own: echoes to the
namespace's loopback (IPv4 and IPv6) are answered by its kernel, an address with no
route ends at once with no reply. Nothing leaves the namespace."""

from __future__ import annotations

import asyncio
import ctypes
import secrets
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from netns_helpers import require_netns

from hbmon.config.model import PingNode
from hbmon.core.events import PingResult
from hbmon.io.arrival import SO_TIMESTAMPNS, Stamps
from hbmon.io.ping import Pinger
from hbmon.testing.lab import CLONE_NEWNET

pytestmark = pytest.mark.netns
T = TypeVar("T")


@pytest.fixture
def netns() -> Iterator[str]:
    require_netns()
    name = "hbmping" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def in_namespace(ns: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a thread that has entered `ns` (setns is per thread)."""
    out: list[T | BaseException] = []

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{ns}", "rb") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def test_loopback_echoes_are_answered_and_an_unroutable_one_fails_at_once(netns: str) -> None:
    nodes = (
        PingNode("lo4", ("127.0.0.1",)),
        PingNode("lo6", ("::1",)),
        PingNode("nowhere", ("192.0.2.1",)),  # no route: the namespace has only lo
    )

    async def scenario() -> list[tuple[float, PingResult]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[float, PingResult]] = []
        three_rounds = asyncio.Event()

        def sink(r: PingResult) -> None:
            seen.append((loop.time(), r))
            if sum(1 for _, x in seen if x.node == "lo6") >= 3:
                three_rounds.set()

        pinger = Pinger(nodes, sink, interval_s=0.2, timeout_s=0.2)
        t0 = loop.time()
        pinger.start()
        try:
            await asyncio.wait_for(three_rounds.wait(), 20)
        finally:
            await pinger.stop()
        return [(at - t0, r) for at, r in seen]

    seen = in_namespace(netns, lambda: asyncio.run(scenario()))
    by_node: dict[str, list[PingResult]] = {}
    for _, r in seen:
        by_node.setdefault(r.node, []).append(r)
    for name in ("lo4", "lo6"):
        assert len(by_node[name]) >= 3, seen
        assert all(r.rtt_s is not None and 0 <= r.rtt_s < 0.2 for r in by_node[name]), seen
    nowhere = [(at, r) for at, r in seen if r.node == "nowhere"]
    assert nowhere, seen
    assert all(r.rtt_s is None for _, r in nowhere)
    assert nowhere[0][0] < 0.1, "a send that cannot be routed fails at once, not at the timeout"


def test_the_ping_socket_queues_replies_and_errors_only_with_kernel_arrival_times(
    netns: str,
) -> None:
    """Someone else pinging: its echo request never reaches our raw socket (only the
    kernel's reply to it does, which parse_reply then skips for its identifier); our
    own replies carry the kernel's receive time, no later than their reading."""

    async def scenario() -> tuple[list[int], list[PingResult], float]:
        loop = asyncio.get_running_loop()
        results: list[PingResult] = []
        # Receive stamping is switched on host-wide in deferred work when the first
        # socket asks for it; until then a reply is stamped when read. One socket of
        # ours asks first, so the pinger's first reply is stamped on arrival.
        stamped = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stamped.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        await asyncio.sleep(0.05)
        pinger = Pinger((PingNode("lo4", ("127.0.0.1",)),), results.append,
                        interval_s=30, timeout_s=30)  # fmt: skip
        pinger.start()
        await asyncio.sleep(0.05)  # the first round (and the socket) is out
        sock = pinger._sockets[socket.AF_INET][1]
        foreign = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            echo = struct.pack("!BBHHH", 8, 0, 0, 0x1234 ^ pinger._ident, 7) + b"x" * 8
            total = sum(struct.unpack("!8H", echo))
            while total >> 16:
                total = (total & 0xFFFF) + (total >> 16)
            checksum = ~total & 0xFFFF
            foreign.sendto(echo[:2] + struct.pack("!H", checksum) + echo[4:], ("127.0.0.1", 0))
            await asyncio.sleep(0.05)
        finally:
            foreign.close()
        types = []
        queued = []
        while True:
            try:
                queued.append(sock.recvmsg(2048, 64))
            except BlockingIOError:
                break
        for packet, _, _, _ in queued:
            types.append(packet[(packet[0] & 0x0F) * 4])
        read_at = loop.time()
        # What we read by hand goes back through the pinger's own parsing.
        for packet, anc, _flags, addr in queued:
            results += pinger._read(_Replay(packet, anc, addr), socket.AF_INET, _stamps(loop))
        await pinger.stop()
        stamped.close()
        return types, results, read_at

    types, results, read_at = in_namespace(netns, lambda: asyncio.run(scenario()))
    # Our reply and the kernel's to the foreign echo came; the foreign echo request,
    # which a raw socket would see on loopback, was filtered by the kernel.
    assert types.count(0) == 2
    assert 8 not in types
    (ours,) = results  # the foreign reply is not ours
    assert ours.rtt_s is not None
    assert 0 <= ours.rtt_s < 0.05
    assert ours.at is not None
    assert ours.at <= read_at


class _Replay:
    """A socket that hands back datagrams already read, once."""

    def __init__(self, packet: bytes, anc: list[tuple[int, int, bytes]], addr: object) -> None:
        self._items = [(packet, anc, 0, addr)]

    def recvmsg(
        self, size: int, ancsize: int
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, object]:
        if not self._items:
            raise BlockingIOError
        return self._items.pop()


def _stamps(loop: asyncio.AbstractEventLoop) -> Stamps:
    return Stamps(loop.time)
