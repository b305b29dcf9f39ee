"""The driver: the only place that reads the clock and awaits.

Datagrams, ping replies, resource results, control requests and signals become
core events; the core's effects become datagrams, resource operations, log
lines and metric samples. One timer is armed at the core's `next_deadline()`,
so a dead peer is declared when its deadline passes, not on a periodic scan.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from hbmon.compat.parameters import heartbeat_parameters
from hbmon.config.loader import load_any
from hbmon.config.model import (
    CONTROL_SOCKET_NAME,
    PING_INTERVAL_MS,
    PINGS_PER_DEADPING,
    Config,
    ResourceGroup,
)
from hbmon.control import ControlServer
from hbmon.core.events import (
    ActiveAtStart,
    AnnounceGroup,
    CommUp,
    ControlOp,
    ControlReply,
    ControlRequest,
    Effect,
    Event,
    GroupDone,
    GroupOp,
    GroupTransition,
    LoadAverage,
    NodeTransition,
    PacketIn,
    PacketRejected,
    ProbeDone,
    ProbeGroup,
    RttMeasured,
    Scope,
    SendMessage,
    Shutdown,
    ShutdownComplete,
    StartGroup,
    StopGroup,
)
from hbmon.core.node import Node
from hbmon.errors import StartupError, WireError
from hbmon.io.deadline import DeadlineTimer
from hbmon.io.media import Media
from hbmon.io.ping import Pinger
from hbmon.io.resources.executor import ResourceExecutor
from hbmon.io.respawn import ProcessSpawner, Supervisor
from hbmon.logs import LogSink
from hbmon.metrics import Metrics, on_loop
from hbmon.metrics_http import Endpoint, Server
from hbmon.sdnotify import SdNotifier
from hbmon.status import snapshot_to_dict
from hbmon.webconfig import for_settings
from hbmon.wire.auth import Signer
from hbmon.wire.codec import Decoder

LOADAVG_PATH = Path("/proc/loadavg")
LOADAVG_PERIOD_S = 5.0
# A standby or takeover asked over the control socket waits at most this long.
CONTROL_OP_TIMEOUT_S = 300.0
# Smoothing of the per-link RTT shown by `hbmon status` (exponential moving average).
RTT_SMOOTHING = 0.2


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
        overrides: Callable[[Config], Config] | None = None,
        metrics_server: Server | None = None,
    ) -> None:
        self._config = config
        self._identity = identity
        self._metrics = metrics
        self._log = log_sink
        self._config_path = config_path
        self._node_override = node_override
        # Command-line settings applied again to every re-read configuration.
        self._overrides = overrides or (lambda c: c)
        self._server = metrics_server
        self._signer = Signer(config.auth)
        self._decoder = Decoder()
        self._media = Media(config.media)
        Supervisor.check(config.respawn)
        self._respawn = Supervisor(config.respawn, config.env, ProcessSpawner(), time.monotonic)
        self._resources = ResourceExecutor(
            config,
            config_dir=config_path if config_path.is_dir() else None,
            observe=metrics.observe_operation,
            on_status_disagreement=metrics.observe_status_disagreement,
        )
        self._control = ControlServer(config.hbmon.run_dir / CONTROL_SOCKET_NAME, self._on_control)
        self._pinger: Pinger | None = None
        self._timer: DeadlineTimer | None = None
        self._stopped: asyncio.Future[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._node: Node | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[int, asyncio.Future[ControlReply]] = {}
        self._request_ids = itertools.count(1)
        self._rtt: dict[str, float] = {}
        self._sd = SdNotifier()

    # ------------------------------------------------------------ lifecycle --
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._timer = DeadlineTimer(loop, self._on_timer)
        self._stopped = loop.create_future()
        now = loop.time()
        node = Node(
            self._config,
            generation=self._identity.generation,
            uuid=self._identity.uuid,
            now=now,
            wall_epoch=time.time() - now,
        )
        self._node = node
        await self._media.open(self._on_datagram)
        try:
            await self._control.start()
        except StartupError:
            self._media.close()
            raise
        self._metrics.set_snapshot_source(on_loop(loop, lambda: node.snapshot(loop.time())))
        self._feed_loadavg()
        # heartbeat's verifyallidle, except that we act on it: whatever runs
        # before we have joined is released first (the core decides).
        active = await self._scan_active()
        self._handle(ActiveAtStart(active))
        self._apply(node.start(loop.time()))
        self._start_pinger()
        self._spawn(self._loadavg_loop())
        interval = self._sd.watchdog_interval()
        if interval is not None:
            # From the loop itself: a stalled loop stops petting and systemd restarts us.
            self._spawn(self._watchdog_loop(interval))
        loop.add_signal_handler(signal.SIGTERM, self._request_stop)
        loop.add_signal_handler(signal.SIGINT, self._request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        try:
            return await self._stopped
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._close()

    async def _scan_active(self) -> tuple[str, ...]:
        found = []
        for group in self._config.resources:
            if await self._resources.active(group):
                found.append(group.key)
        return tuple(found)

    async def _close(self) -> None:
        # After the groups are released, as heartbeat stops its clients.
        await self._respawn.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self._pinger is not None:
            await self._pinger.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(ControlReply(0, False, "hbmon is shutting down"))
        await self._control.close()
        await self._resources.close()
        self._media.close()

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            self._sd.watchdog()
            await asyncio.sleep(interval)

    def _sd_status(self) -> None:
        assert self._node is not None
        assert self._loop is not None
        snap = self._node.snapshot(self._loop.time())
        peers = ", ".join(f"peer {p.name} {p.status.value}" for p in snap.peers) or "no peers"
        held = [g.key for g in snap.groups if g.holder == snap.node]
        holds = f"holds {', '.join(held)}" if held else "holds nothing"
        comm = "comm up" if snap.comm_up else "waiting for comm"
        self._sd.status(f"{peers}; {holds}; {comm}")

    def _request_stop(self) -> None:
        self._sd.stopping()
        logger.info("Heartbeat shutdown in progress. ({})", "SIGTERM")
        self._handle(Shutdown())

    def _start_pinger(self) -> None:
        cfg = self._config
        if cfg.ping_nodes:
            interval = ping_interval_s(cfg)
            self._pinger = Pinger(
                cfg.ping_nodes, self._handle, interval_s=interval, timeout_s=interval
            )
            self._pinger.start()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --------------------------------------------------------------- events --
    def _on_datagram(self, iface: str, data: bytes, source: str) -> None:
        try:
            decoded = self._decoder.decode(data)
            self._signer.verify(decoded)
        except WireError as exc:
            self._handle(PacketRejected(iface, exc.reason, source, str(exc)))
            return
        self._handle(PacketIn(iface=iface, message=decoded.message, source=source))

    def _handle(self, event: Event) -> None:
        assert self._node is not None
        assert self._loop is not None
        self._apply(self._node.handle(event, self._loop.time()))

    def _on_timer(self, deadline: float) -> None:
        assert self._node is not None
        assert self._loop is not None
        now = self._loop.time()
        self._metrics.observe_loop_lag(max(0.0, now - deadline))
        self._apply(self._node.on_timer(now))

    def _apply(self, effects: Iterable[Effect]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        changed = False
        for effect in effects:
            match effect:
                case CommUp():
                    # READY after comm-up: a unit ordered after hbmon sees a joined node.
                    self._sd.ready()
                    self._respawn.start()  # heartbeat starts its clients at comm-up
                    changed = True
                case NodeTransition() | GroupTransition():
                    changed = True
                case SendMessage(message=message):
                    self._media.send(message, self._signer.sign, self._config.msgfmt)
                case StartGroup(key=key):
                    self._spawn(self._group_op(key, GroupOp.START))
                case StopGroup(key=key):
                    self._spawn(self._group_op(key, GroupOp.STOP))
                case ProbeGroup(key=key):
                    self._spawn(self._probe(key))
                case AnnounceGroup(key=key):
                    if (group := self._group(key)) is not None:
                        self._spawn(self._resources.announce_group(group))
                case ControlReply(request_id=rid):
                    fut = self._pending.pop(rid, None)
                    if fut is not None and not fut.done():
                        fut.set_result(effect)
                case RttMeasured(node=peer, iface=iface, rtt_s=rtt):
                    link = f"{iface}/{peer}"
                    old = self._rtt.get(link)
                    self._rtt[link] = rtt if old is None else old + RTT_SMOOTHING * (rtt - old)
                case ShutdownComplete():
                    if self._stopped is not None and not self._stopped.done():
                        self._stopped.set_result(0)
                case _:
                    pass
            self._metrics.observe(effect)
            self._log.log_effect(effect, now)
        if changed:
            self._sd_status()
        self._arm()

    def _arm(self) -> None:
        assert self._node is not None
        assert self._timer is not None
        self._timer.arm(self._node.next_deadline())

    # ------------------------------------------------------------ resources --
    def _group(self, key: str) -> ResourceGroup | None:
        return next((g for g in self._config.resources if g.key == key), None)

    async def _group_op(self, key: str, op: GroupOp) -> None:
        group = self._group(key)
        if group is None:
            self._handle(GroupDone(key, op, False, "group not in the configuration"))
            return
        run = self._resources.start_group if op is GroupOp.START else self._resources.stop_group
        outcome = await run(group)
        self._handle(GroupDone(key, op, outcome.ok, outcome.detail))

    async def _probe(self, key: str) -> None:
        group = self._group(key)
        if group is None:
            self._handle(ProbeDone(key, False, "group not in the configuration"))
            return
        in_use, detail = await self._resources.probe_group(group)
        self._handle(ProbeDone(key, in_use, detail))

    # -------------------------------------------------------------- control --
    async def _on_control(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._node is not None
        assert self._loop is not None
        cmd = request.get("cmd")
        if cmd == "status":
            snap = self._node.snapshot(self._loop.time())
            status = snapshot_to_dict(snap, rtt=dict(self._rtt))
            status["parameters"] = heartbeat_parameters(self._config)
            status["nodes"] = list(self._config.nodes)
            return {"ok": True, "status": status}
        if cmd in ("standby", "takeover"):
            try:
                scope = Scope(str(request.get("scope", "all")))
            except ValueError:
                return {"ok": False, "error": f"bad scope {request.get('scope')!r}"}
            if scope is Scope.NONE:
                return {"ok": False, "error": "scope must be all, local or foreign"}
            rid = next(self._request_ids)
            fut: asyncio.Future[ControlReply] = self._loop.create_future()
            self._pending[rid] = fut
            self._handle(ControlRequest(rid, ControlOp(cmd), scope))
            try:
                reply = await asyncio.wait_for(fut, CONTROL_OP_TIMEOUT_S)
            except TimeoutError:
                self._pending.pop(rid, None)
                return {"ok": False, "error": f"no outcome within {CONTROL_OP_TIMEOUT_S:g} s"}
            return {
                "ok": reply.ok,
                "message": reply.message,
                "error": None if reply.ok else reply.message,
            }
        if cmd == "reload":
            self._reload()
            return {"ok": True, "message": "reload requested"}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

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
        self._sd.reloading()
        self._spawn(self._do_reload())

    async def _do_reload(self) -> None:
        try:
            await self._reload_config()
        finally:
            self._sd.ready()

    async def _reload_config(self) -> None:
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
        new = self._overrides(new)
        old = self._config
        endpoint: Endpoint | None = None
        if self._server is not None:
            try:  # a certificate that no longer loads leaves the endpoint as it is
                endpoint = self._server.prepare(for_settings(new.hbmon))
            except StartupError as exc:
                logger.error(
                    "Configuration reload refused: {}; still running the previous configuration.",
                    exc,
                )
                self._metrics.record_reload(False)
                return
        if new.media != old.media:
            media = Media(new.media)
            try:
                await media.open(self._on_datagram, previous=self._media)
            except StartupError as exc:  # keep the old media if the new ones cannot open
                logger.error("Configuration reload refused: {}", exc)
                self._metrics.record_reload(False)
                return
            self._media.close()
            self._media = media
        if (new.respawn, new.env) != (old.respawn, old.env):
            logger.warning("respawn/env lines changed: they apply when hbmon next starts")
        self._config = new
        self._signer = Signer(new.auth)
        self._resources.reconfigure(new)
        if new.ping_nodes != old.ping_nodes:
            if self._pinger is not None:
                await self._pinger.stop()
                self._pinger = None
            self._start_pinger()
        if self._server is not None and endpoint is not None:
            self._server.use(endpoint)
            logger.info("Metrics endpoint: web config re-read; {}", self._server.url(endpoint))
        if new.hbmon.metrics_address != old.hbmon.metrics_address:
            logger.warning(
                "metrics address {} -> {}: takes effect at the next restart.",
                old.hbmon.metrics_address,
                new.hbmon.metrics_address,
            )
        self._metrics.reconfigure(new)
        self._apply(self._node.reconfigure(new, self._loop.time()))
        self._metrics.record_reload(True)
        logger.info("Configuration reloaded.")


def ping_interval_s(config: Config) -> float:
    """heartbeat pings about once a second; at a deadping near that, a live ping node
    would flap dead between replies, so ping at least three times per deadping."""
    return min(PING_INTERVAL_MS, config.timers.deadping_ms / PINGS_PER_DEADPING) / 1000
