"""pyroute2 0.7 (Debian 12) has no asyncio API: its blocking IPRoute runs in worker
threads behind AsyncIPRoute's interface (hbmon.io.resources.netlink)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

import pytest

from hbmon.io.resources.netlink import _ThreadedIPRoute


class FakeSyncIPRoute:
    instances: ClassVar[list[FakeSyncIPRoute]] = []

    def __init__(self) -> None:
        self.closed = False
        self.threads: list[int] = []
        FakeSyncIPRoute.instances.append(self)

    def link_lookup(self, ifname: str) -> list[int]:
        self.threads.append(threading.get_ident())
        return [7] if ifname == "em1" else []

    def get_links(self, index: int) -> tuple[dict[str, int], ...]:
        return ({"index": index},)

    def addr(self, command: str, **kwargs: Any) -> list[str]:
        if command == "del":
            raise OSError(99, "netlink: no such address")
        return [f"{command}:{kwargs.get('index')}"]

    def close(self) -> None:
        self.closed = True


def test_replies_are_indexed_and_async_iterated_and_the_socket_closed() -> None:
    async def main() -> tuple[list[int], list[dict[str, int]], list[str]]:
        async with _ThreadedIPRoute(FakeSyncIPRoute) as ipr:
            found = await ipr.link_lookup(ifname="em1")
            links = [msg async for msg in await ipr.get_links(found[0])]
            added = [msg async for msg in await ipr.addr("add", index=7)]
        return found, links, added

    FakeSyncIPRoute.instances.clear()
    found, links, added = asyncio.run(main())
    assert found == [7]
    assert links == [{"index": 7}]
    assert added == ["add:7"]
    (ipr,) = FakeSyncIPRoute.instances
    assert ipr.closed
    # the blocking call ran off the event loop's thread
    assert len(ipr.threads) == 1
    assert ipr.threads[0] != threading.get_ident()


def test_errors_reach_the_caller_and_the_socket_is_still_closed() -> None:
    async def main() -> None:
        async with _ThreadedIPRoute(FakeSyncIPRoute) as ipr:
            await ipr.addr("del", index=7)

    FakeSyncIPRoute.instances.clear()
    with pytest.raises(OSError, match="no such address"):
        asyncio.run(main())
    assert FakeSyncIPRoute.instances[0].closed
