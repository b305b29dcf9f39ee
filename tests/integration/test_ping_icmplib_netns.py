"""The Pinger on icmplib's real raw sockets, in a namespace of its own: echoes to the
namespace's loopback (IPv4 and IPv6) are answered by its kernel, an address with no
route ends at once with no reply. Nothing leaves the namespace."""

from __future__ import annotations

import asyncio
import ctypes
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from netns_helpers import require_netns

from hbmon.config.model import PingNode
from hbmon.core.events import PingResult
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
