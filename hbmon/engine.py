"""The driver: the only place that reads the clock and awaits.

Datagrams, ping replies and signals become core events; the core's effects
become datagrams, log lines and metric samples. One timer is armed at the
core's `next_deadline()`, so a dead peer is declared when its deadline passes,
not on a periodic scan.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from hbmon.config.loader import load_any
from hbmon.config.model import Config
from hbmon.core.events import (
    Effect,
    Event,
    LoadAverage,
    PacketIn,
    PacketRejected,
    SendMessage,
    Shutdown,
    ShutdownComplete,
)
from hbmon.core.node import Node
from hbmon.errors import StartupError, WireError
from hbmon.io.ping import Pinger
from hbmon.io.transport import Transport
from hbmon.logs import LogSink
from hbmon.metrics import Metrics, on_loop
from hbmon.wire.auth import Signer
from hbmon.wire.codec import decode, encode

LOADAVG_PATH = Path("/proc/loadavg")
LOADAVG_PERIOD_S = 5.0


@dataclass(frozen=True, slots=True)
class Identity:
    generation: int
    uuid: bytes


class Engine:
    def __init__(
        self,
        config: Config,
        identity: Identity,
        metrics: Metrics,
        log_sink: LogSink,
        *,
        config_path: Path,
        node_override: str | None,
    ) -> None:
        self._config = config
        self._identity = identity
        self._metrics = metrics
        self._log = log_sink
        self._config_path = config_path
        self._node_override = node_override
        self._signer = Signer(config.auth)
        self._transport = Transport(config.media)
        self._pinger: Pinger | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped: asyncio.Future[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._node: Node | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ lifecycle --
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopped = loop.create_future()
        now = loop.time()
        self._node = Node(
            self._config,
            generation=self._identity.generation,
            uuid=self._identity.uuid,
            now=now,
            wall_epoch=time.time() - now,
        )
        await self._transport.open(self._on_datagram)
        node = self._node
        self._metrics.set_snapshot_source(on_loop(loop, lambda: node.snapshot(loop.time())))
        self._feed_loadavg()
        self._apply(self._node.start(now))
        self._start_pinger()
        self._tasks.append(loop.create_task(self._loadavg_loop()))
        loop.add_signal_handler(signal.SIGTERM, self._request_stop)
        loop.add_signal_handler(signal.SIGINT, self._request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        try:
            return await self._stopped
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._close()

    async def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._pinger is not None:
            await self._pinger.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._transport.close()

    def _request_stop(self) -> None:
        logger.info("Heartbeat shutdown in progress. ({})", "SIGTERM")
        self._handle(Shutdown())

    def _start_pinger(self) -> None:
        cfg = self._config
        if cfg.ping_nodes:
            timeout = min(cfg.timers.deadping_ms, 1000) / 1000
            self._pinger = Pinger(cfg.ping_nodes, self._handle, timeout_s=timeout)
            self._pinger.start()

    # --------------------------------------------------------------- events --
    def _on_datagram(self, iface: str, data: bytes, source: str) -> None:
        try:
            decoded = decode(data)
            self._signer.verify(decoded)
        except WireError as exc:
            self._handle(PacketRejected(iface=iface, reason=exc.reason, source=source))
            return
        self._handle(PacketIn(iface=iface, message=decoded.message, source=source))

    def _handle(self, event: Event) -> None:
        assert self._node is not None
        assert self._loop is not None
        self._apply(self._node.handle(event, self._loop.time()))

    def _on_timer(self, deadline: float) -> None:
        assert self._node is not None
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        self._metrics.observe_loop_lag(max(0.0, now - deadline))
        self._apply(self._node.on_timer(now))

    def _apply(self, effects: Iterable[Effect]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for effect in effects:
            match effect:
                case SendMessage(message=message):
                    self._transport.send(encode(message, self._signer, self._config.msgfmt))
                case ShutdownComplete():
                    logger.info("{} Heartbeat shutdown complete.", self._config.node)
                    if self._stopped is not None and not self._stopped.done():
                        self._stopped.set_result(0)
                case _:
                    pass
            self._metrics.observe(effect)
            self._log.log_effect(effect, now)
        self._arm()

    def _arm(self) -> None:
        assert self._node is not None
        assert self._loop is not None
        deadline = self._node.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer, deadline)

    # ------------------------------------------------------------- loadavg --
    def _feed_loadavg(self) -> None:
        try:
            text = LOADAVG_PATH.read_text().strip()
        except OSError:
            return
        self._handle(LoadAverage(text))

    async def _loadavg_loop(self) -> None:
        while True:
            await asyncio.sleep(LOADAVG_PERIOD_S)
            self._feed_loadavg()

    # -------------------------------------------------------------- reload --
    def _reload(self) -> None:
        assert self._loop is not None
        self._loop.create_task(self._do_reload())

    async def _do_reload(self) -> None:
        assert self._node is not None
        assert self._loop is not None
        logger.info("Re-reading configuration from {} (SIGHUP)", self._config_path)
        new, problems = load_any(self._config_path, self._node_override)
        for p in problems:
            (logger.warning if p.warning else logger.error)("{}", p)
        if new is None:
            logger.error("Configuration reload refused; still running the previous configuration.")
            self._metrics.record_reload(False)
            return
        if new.node != self._config.node:
            logger.error("Configuration reload refused: the local node name cannot change.")
            self._metrics.record_reload(False)
            return
        old = self._config
        if new.media != old.media:
            transport = Transport(new.media)
            try:
                await transport.open(self._on_datagram)
            except StartupError as exc:  # keep the old media if the new ones cannot open
                logger.error("Configuration reload refused: {}", exc)
                self._metrics.record_reload(False)
                return
            self._transport.close()
            self._transport = transport
        self._config = new
        self._signer = Signer(new.auth)
        if new.ping_nodes != old.ping_nodes:
            if self._pinger is not None:
                await self._pinger.stop()
                self._pinger = None
            self._start_pinger()
        self._metrics.reconfigure(new)
        self._apply(self._node.reconfigure(new, self._loop.time()))
        self._metrics.record_reload(True)
        logger.info("Configuration reloaded.")


def run_engine(factory: Callable[[], Engine]) -> int:
    return asyncio.run(factory().run())
