"""The driver: the only place that reads the clock and awaits.

Datagrams, ping replies, resource results, control requests and signals become
core events; the core's effects become datagrams, resource operations, log
lines and metric samples. One timer is armed at the core's `next_deadline()`,
so a dead peer is declared when its deadline passes, not on a periodic scan.

The engine builds no I/O object: it is given them (hbmon/io/ports.py,
`EngineIO`), as aioquic's asyncio protocol is given its transport. The real
ones are built in hbmon/daemon.py; tests/unit/engine drives it with fakes.

A restart (SIGQUIT: the unit's RestartKillSignal) hands the groups over to the
next process instead of releasing them (hbmon/core/handover.py): the engine's
`HandoverDriver` (hbmon/engine_handover.py) carries out the I/O of both ends, the
old one's (addresses set to expire, record written) and the new one's (record
read, groups surveyed, addresses kept).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, replace
from typing import Any

from loguru import logger

from hbmon.config.model import PING_INTERVAL_MS, PINGS_PER_DEADPING, Config, ResourceGroup
from hbmon.control.commands import dispatch
from hbmon.core.arbevents import ClaimKey, GrantLease, ReleaseKey, RenewLease, RevokeLease
from hbmon.core.events import (
    ActiveAtStart,
    AnnounceGroup,
    CommUp,
    ControlOp,
    ControlReply,
    ControlRequest,
    Effect,
    Event,
    FenceDone,
    FenceNode,
    FenceResult,
    GroupDone,
    GroupOp,
    GroupSurvey,
    GroupTransition,
    Handover,
    HandoverComplete,
    HandoverReady,
    KeepGroup,
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
from hbmon.core.snapshot import Snapshot
from hbmon.engine_handover import HandoverDriver
from hbmon.errors import StartupError, WireError
from hbmon.io.deadline import DeadlineTimer
from hbmon.io.ports import ArbiterPort, EngineIO, MediaPort, PingPort
from hbmon.logs import LogSink
from hbmon.metrics import Metrics, on_loop
from hbmon.metrics.http import Endpoint, Server
from hbmon.metrics.webconfig import for_settings
from hbmon.wire.auth import Signer
from hbmon.wire.builders import hold_longer
from hbmon.wire.codec import Decoder
from hbmon.wire.message import Message

LOADAVG_PERIOD_S = 5.0
# Smoothing of the per-link RTT shown by `hbmon status` (exponential moving average).
RTT_SMOOTHING = 0.2
# ...and of how long a status takes from encoding to sent (added to its echo holds).
SEND_DELAY_SMOOTHING = 0.2


@dataclass(frozen=True, slots=True)
class Identity:
    generation: int
    uuid: bytes


class Engine:
    """One node's asyncio driver: the sans-IO `Node` plus the I/O objects it is given.

    `run()` opens the media and the control socket, releases what runs before
    we join, starts the node and serves until the node's shutdown is complete
    (SIGTERM), then closes everything. In between, every input becomes one
    `Node.handle` call and its effects are carried out at once. It also answers
    the control socket (`hbmon.control.commands.Agent`) and re-reads the configuration on
    SIGHUP. All of it runs on one event loop: nothing here is thread-safe but
    the metrics' snapshot source (`metrics.on_loop`).
    """

    def __init__(
        self,
        config: Config,
        identity: Identity,
        io: EngineIO,
        metrics: Metrics,
        log_sink: LogSink,
        *,
        metrics_server: Server | None = None,
    ) -> None:
        self._config = config
        self._identity = identity
        self._io = io
        self._metrics = metrics
        self._log = log_sink
        self._server = metrics_server
        self._signer = Signer(config.auth)
        self._decoder = Decoder()
        self._media: MediaPort = io.media(config.media)
        self._arbiter: ArbiterPort | None = io.arbiter  # None: no arbitrator configured
        self._pinger: PingPort | None = None
        self._fence_watch: asyncio.Task[None] | None = None
        self._timer: DeadlineTimer | None = None
        self._stopped: asyncio.Future[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._node: Node | None = None
        self._serving = False  # started, and not yet closing
        self._early: set[str] = set()  # signals that came while starting: "stop", "reload"
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[int, asyncio.Future[ControlReply]] = {}
        self._request_ids = itertools.count(1)
        self._rtt: dict[str, float] = {}
        self._handover = HandoverDriver(io, identity.generation, lambda: self._config, self._handle)
        self._next_loadavg = 0.0  # when the status wake next reads the load average
        self._send_delay = 0.0  # how long encoding + signing + sending a status takes (EWMA)

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
            wall_epoch=self._io.wall() - now,
        )
        self._node = node
        # First: from here on a signal is ours to handle, even while we start.
        self._io.signals.install(self._request_stop, self._reload, self._request_handover)
        opened = False
        try:
            await self._media.open(self._on_datagram)
            try:
                await self._io.control.start(lambda request: dispatch(self, request))
            except StartupError:
                self._media.close()
                raise
            opened = True
            self._metrics.set_snapshot_source(on_loop(loop, lambda: node.snapshot(loop.time())))
            await self._start(node, loop)
            return await self._stopped
        finally:
            self._serving = False
            self._io.signals.remove()
            if opened:
                await self._close()

    async def _start(self, node: Node, loop: asyncio.AbstractEventLoop) -> None:
        self._feed_loadavg()
        if self._arbiter is not None:
            self._arbiter.start(self._handle)  # etcd's answers come back as events
        # What our previous process handed over (a restart), if it did: surveyed,
        # and adopted by the core; then heartbeat's verifyallidle, except that we
        # act on it: whatever else runs before we have joined is released first.
        surveyed = await self._handover.take(loop.time())
        active = await self._scan_active(surveyed)
        self._handle(ActiveAtStart(active))
        await self._handover.kept()
        self._next_loadavg = loop.time() + LOADAVG_PERIOD_S
        self._apply(node.start(loop.time()))
        self._start_pinger()
        self._watch_fences()
        interval = self._io.notifier.watchdog_interval()
        if interval is not None:
            # From the loop itself: a stalled loop stops petting and systemd restarts us.
            self._spawn(self._watchdog_loop(interval))
        self._serving = True
        if "stop" in self._early:
            self._request_stop()
        elif "handover" in self._early:
            self._request_handover()
        elif "reload" in self._early:
            self._reload()

    async def _scan_active(self, surveyed: dict[str, GroupSurvey]) -> tuple[str, ...]:
        found = []
        for group in self._config.resources:
            if group.key in surveyed:
                running = surveyed[group.key].any_running
            else:
                running = await self._io.resources.active(group)
            if running:
                found.append(group.key)
        return tuple(found)

    async def _close(self) -> None:
        # After the groups are released, as heartbeat stops its clients.
        await self._io.clients.stop()
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
        await self._io.control.close()
        if self._arbiter is not None:
            await self._arbiter.close()
        await self._io.resources.close()
        self._media.close()

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            self._io.notifier.watchdog()
            await asyncio.sleep(interval)

    def _sd_status(self) -> None:
        snap = self.snapshot()
        peers = ", ".join(f"peer {p.name} {p.status.value}" for p in snap.peers) or "no peers"
        held = [g.key for g in snap.groups if g.holder == snap.node]
        holds = f"holds {', '.join(held)}" if held else "holds nothing"
        comm = "comm up" if snap.comm_up else "waiting for comm"
        self._io.notifier.status(f"{peers}; {holds}; {comm}")

    def _request_stop(self) -> None:
        if not self._serving:
            self._early.add("stop")  # acted on once started
            return
        self._io.notifier.stopping()
        logger.info("Heartbeat shutdown in progress. ({})", "SIGTERM")
        self._handle(Shutdown())

    def _request_handover(self) -> None:
        if not self._serving:
            self._early.add("handover")  # acted on once started
            return
        self._io.notifier.stopping()
        logger.info(
            "Heartbeat restart triggered ({}): handing over to the next hbmon process;"
            " resources stay up.",
            "SIGQUIT",
        )
        self._handle(Handover())

    def _start_pinger(self) -> None:
        cfg = self._config
        if cfg.ping_nodes:
            keepalive = cfg.timers.keepalive_ms / 1000
            self._pinger = self._io.pinger(
                cfg.ping_nodes, self._handle, ping_interval_s(cfg), keepalive
            )
            self._pinger.start()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A task's failure is logged, never lost with the task."""
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        what = getattr(task.get_coro(), "__qualname__", task.get_name())
        logger.opt(exception=exc).error("Internal error in {}: {!r}", what, exc)

    # --------------------------------------------------------------- events --
    def _on_datagram(self, iface: str, data: bytes, source: str, at: float) -> None:
        try:
            decoded = self._decoder.decode(data)
            self._signer.verify(decoded)
        except WireError as exc:
            self._handle(PacketRejected(iface, exc.reason, source, str(exc)))
        else:
            self._handle(PacketIn(iface=iface, message=decoded.message, source=source, at=at))
        # Ping replies after the packet, not before: the core never goes back in time,
        # so a reply handled first would make the packet count from now instead of
        # from its arrival (and its echo's round trip with it).
        self._drain_pings()

    def _handle(self, event: Event) -> None:
        assert self._node is not None
        assert self._loop is not None
        self._apply(self._node.handle(event, self._loop.time()))

    def _drain_pings(self) -> None:
        """Ping replies are read when we wake anyway, never wake us (hbmon/io/ping.py)."""
        if self._pinger is not None:
            self._pinger.drain()

    def _on_timer(self, deadline: float) -> None:
        assert self._node is not None
        assert self._loop is not None
        self._drain_pings()
        now = self._loop.time()
        self._metrics.observe_loop_lag(max(0.0, now - deadline))
        self._apply(self._node.on_timer(now))

    def _apply(self, effects: Iterable[Effect]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        changed = beat = False
        for effect in effects:
            match effect:
                case CommUp():
                    # READY after comm-up: a unit ordered after hbmon sees a joined node.
                    self._io.notifier.ready()
                    self._io.clients.start()  # heartbeat starts its clients at comm-up
                    changed = True
                case NodeTransition() | GroupTransition():
                    changed = True
                case SendMessage(message=message, built_at=built):
                    if built is None:
                        self._media.send(message, self._signer.sign, self._config.msgfmt)
                    else:
                        self._send_status(message, built)
                    beat = beat or message.type == "status"
                case StartGroup(key=key):
                    self._spawn(self._group_op(key, GroupOp.START))
                case StopGroup(key=key):
                    self._spawn(self._group_op(key, GroupOp.STOP))
                case ProbeGroup(key=key, window_s=window):
                    self._spawn(self._probe(key, window))
                case FenceNode(node=peer):
                    self._spawn(self._fence(peer))
                case AnnounceGroup(key=key):
                    if (group := self._group(key)) is not None:
                        self._spawn(self._io.resources.announce_group(group))
                case ControlReply(request_id=rid):
                    fut = self._pending.get(rid)
                    if fut is not None and not fut.done():
                        fut.set_result(effect)
                case RttMeasured(node=peer, iface=iface, rtt_s=rtt):
                    link = f"{iface}/{peer}"
                    old = self._rtt.get(link)
                    self._rtt[link] = rtt if old is None else old + RTT_SMOOTHING * (rtt - old)
                case GrantLease() | RenewLease() | ClaimKey() | ReleaseKey() | RevokeLease():
                    if self._arbiter is not None:
                        self._arbiter.submit(effect)
                case ShutdownComplete():
                    self._io.handover.discard()  # a stop: nothing to hand over
                    if self._stopped is not None and not self._stopped.done():
                        self._stopped.set_result(0)
                case HandoverReady():
                    self._spawn(self._handover.save(effect))
                case HandoverComplete():
                    if self._stopped is not None and not self._stopped.done():
                        self._stopped.set_result(0)
                case KeepGroup(key=key):
                    self._handover.keep(key)
                case _:
                    pass
            self._metrics.observe(effect)
            self._log.log_effect(effect, now)
        if changed:
            self._sd_status()
        if beat:
            self._on_beat(now)
        self._arm()

    def _send_status(self, message: Message, built: float) -> None:
        """A status whose echo holds run until it leaves: from when it was built to
        now, plus what encoding and signing have taken lately (they come after the
        holds are fixed: the signature covers them). Its peer subtracts the holds
        from the round trip, so our own delay is not taken for the network's; and
        the core learns when it really left (just before it was written)."""
        assert self._loop is not None
        assert self._node is not None
        start = self._loop.time()
        held_us = round((start - built + self._send_delay) * 1_000_000)
        fmt = self._config.msgfmt
        sent = self._media.send(hold_longer(message, held_us), self._signer.sign, fmt)
        self._send_delay += SEND_DELAY_SMOOTHING * (sent - start - self._send_delay)
        seq = message.get_hex("seq")
        if seq is not None:
            self._node.sent(seq, sent)

    def _on_beat(self, now: float) -> None:
        """We are awake to send a status: what else is due soon is done in this wake,
        not in one of its own (an idle agent's cost is mostly its wake-ups)."""
        if self._pinger is not None:
            self._pinger.beat(now)
        if now >= self._next_loadavg:
            self._next_loadavg = now + LOADAVG_PERIOD_S
            self._feed_loadavg()

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
        res = self._io.resources
        outcome = await (res.start_group(group) if op is GroupOp.START else res.stop_group(group))
        self._handle(GroupDone(key, op, outcome.ok, outcome.detail))

    async def _probe(self, key: str, window_s: float) -> None:
        group = self._group(key)
        if group is None:
            self._handle(ProbeDone(key, False, "group not in the configuration"))
            return
        in_use, detail = await self._io.resources.probe_group(group, window_s)
        self._handle(ProbeDone(key, in_use, detail))

    # -------------------------------------------------------------- fencing --
    async def _fence(self, peer: str) -> None:
        outcome = await self._io.fencer.reset(peer, self._config.fence_devices(peer))
        result = outcome.result
        if result is FenceResult.NOT_CONFIGURED:  # the devices went away in a reload
            result = FenceResult.BAD
        self._handle(FenceDone(peer, result, outcome.device, outcome.detail))

    def _watch_fences(self) -> None:
        """heartbeat's device check: each device this node uses, now and hourly."""
        if self._fence_watch is not None:
            self._fence_watch.cancel()
            self._fence_watch = None
        cfg = self._config
        used = {d.label: d for d in cfg.fencing if d.used_by(cfg.node)}
        if used:
            self._fence_watch = self._spawn(self._io.fencer.watch(tuple(used.values())))

    # ------------------------------------------- the control socket's agent --
    @property
    def config(self) -> Config:
        return self._config

    def snapshot(self) -> Snapshot:
        assert self._node is not None
        assert self._loop is not None
        return self._node.snapshot(self._loop.time())

    def rtt(self) -> dict[str, float]:
        return dict(self._rtt)

    async def exchange(self, op: ControlOp, scope: Scope) -> ControlReply:
        assert self._loop is not None
        rid = next(self._request_ids)
        fut: asyncio.Future[ControlReply] = self._loop.create_future()
        self._pending[rid] = fut
        try:
            self._handle(ControlRequest(rid, op, scope))
            return await fut
        finally:
            self._pending.pop(rid, None)

    def reload(self) -> None:
        self._reload()

    # ------------------------------------------------------------- loadavg --
    def _feed_loadavg(self) -> None:
        text = self._io.loadavg()
        if text is not None:
            self._handle(LoadAverage(text))

    # -------------------------------------------------------------- reload --
    def _reload(self) -> None:
        if not self._serving:
            self._early.add("reload")  # acted on once started
            return
        self._io.notifier.reloading()
        self._spawn(self._do_reload())

    async def _do_reload(self) -> None:
        try:
            await self._reload_config()
        except Exception as exc:  # a bug here must not leave the reload unanswered
            logger.opt(exception=exc).error(
                "Configuration reload failed: {!r}; still running the previous configuration.",
                exc,
            )
            self._metrics.record_reload(False)
        finally:
            self._io.notifier.ready()

    def _refuse_reload(self, why: str) -> None:
        logger.error("Configuration reload refused{}", why)
        self._metrics.record_reload(False)

    async def _reload_config(self) -> None:
        assert self._node is not None
        assert self._loop is not None
        source = self._io.source
        logger.info("Re-reading configuration from {} (SIGHUP)", source.path)
        new, problems = source.load()
        for p in problems:
            (logger.warning if p.warning else logger.error)("{}", p)
        if new is None:
            self._refuse_reload("; still running the previous configuration.")
            return
        if new.node != self._config.node:
            self._refuse_reload(": the local node name cannot change.")
            return
        old = self._config
        endpoint: Endpoint | None = None
        if self._server is not None:
            try:  # a certificate that no longer loads leaves the endpoint as it is
                endpoint = self._server.prepare(for_settings(new.hbmon))
            except StartupError as exc:
                self._refuse_reload(f": {exc}; still running the previous configuration.")
                return
        if new.media != old.media:
            media = self._io.media(new.media)
            try:
                await media.open(self._on_datagram, previous=self._media)
            except StartupError as exc:  # keep the old media if the new ones cannot open
                self._refuse_reload(f": {exc}")
                return
            self._media.close()
            self._media = media
        if new.arbitrator != old.arbitrator:
            logger.warning("arbitrator settings changed: they apply when hbmon next starts")
            new = replace(new, arbitrator=old.arbitrator)
        if (new.respawn, new.env) != (old.respawn, old.env):
            logger.warning("respawn/env lines changed: they apply when hbmon next starts")
        self._config = new
        self._signer = Signer(new.auth)
        self._io.resources.reconfigure(new)
        self._io.fencer.reconfigure(new.hbmon.fencing)
        if new.fencing != old.fencing or new.hbmon.fencing != old.hbmon.fencing:
            self._watch_fences()
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
    would flap dead between replies, so ping at least three times per deadping.

    Where keepalive is shorter, the interval is a whole number of keepalives (never
    longer than the above): each round then goes out in a wake that sends a status.
    """
    interval = min(PING_INTERVAL_MS, config.timers.deadping_ms / PINGS_PER_DEADPING) / 1000
    keepalive = config.timers.keepalive_ms / 1000
    beats = math.floor(interval / keepalive + 1e-9)
    return beats * keepalive if beats >= 1 else interval
