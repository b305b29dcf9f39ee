"""ICMP echo to ping nodes (spec §5.5), with icmplib's asyncio API.

One round every `interval_s` (the engine derives it from deadping): every
address of every ping node gets one echo, all in parallel; each result becomes
a `PingResult` for the core. The
core, not this module, decides when a ping node is dead (deadping).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import icmplib

from hbmon.config.model import PingNode
from hbmon.core.events import PingResult

PingSink = Callable[[PingResult], None]


class Pinger:
    def __init__(
        self, nodes: tuple[PingNode, ...], sink: PingSink, *, interval_s: float, timeout_s: float
    ) -> None:
        self._nodes = nodes
        self._sink = sink
        self._interval = interval_s
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._nodes:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

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
            host = await icmplib.async_ping(
                address, count=1, timeout=self._timeout, privileged=True
            )
            rtt = host.avg_rtt / 1000 if host.is_alive else None
        except icmplib.ICMPLibError:
            rtt = None
        except OSError:
            rtt = None
        self._sink(PingResult(node=node, address=address, rtt_s=rtt))
