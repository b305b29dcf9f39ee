"""`hbmon watch`: the asyncio driver around `Observer` (the only code here that
reads the clock, awaits, or runs `cl_status`)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from loguru import logger

from hbmon import __version__
from hbmon.config.loader import load_any
from hbmon.config.model import Config, HbmonSettings, LogSettings
from hbmon.core.events import NodeStatus
from hbmon.core.snapshot import PingNodeView
from hbmon.errors import StartupError
from hbmon.io.deadline import DeadlineTimer
from hbmon.logs import LogSink
from hbmon.logs import setup as setup_logs
from hbmon.metrics import on_loop
from hbmon.metrics.http import Server, serve
from hbmon.metrics.webconfig import for_settings
from hbmon.watch.capture import Capture, Frame
from hbmon.watch.exporter import WatchMetrics
from hbmon.watch.frames import Fragment, parse
from hbmon.watch.observer import Notice, Observer, TakeoverSeen

CL_STATUS = "cl_status"
POLL_INTERVAL_S = 3.0
POLL_TIMEOUT_S = 2.0


def run(
    config_path: Path,
    *,
    node: str | None,
    metrics_address: str | None,
    log_format: Literal["text", "json"],
    cl_status: str | None = CL_STATUS,
    poll_interval: float = POLL_INTERVAL_S,
    web_config: Path | None = None,
) -> int:
    cfg, problems = load_any(config_path, node, watching=True)
    for p in problems:
        print(p, file=sys.stderr)
    if cfg is None:
        print(f"hbmon watch: configuration error in {config_path}; not started.", file=sys.stderr)
        return 1
    # Logs go to stderr only: ha.cf's logfile and syslog facility are heartbeat's.
    sink = setup_logs(fmt=log_format, node=cfg.node, settings=LogSettings())
    address = metrics_address or cfg.hbmon.metrics_address
    try:
        watcher = Watcher(
            cfg,
            sink,
            address,
            cl_status=cl_status,
            poll_interval=poll_interval,
            reload=Reload(config_path, node, web_config),
        )
        return asyncio.run(watcher.run())
    except StartupError as exc:
        logger.critical("{} Not started.", exc)
        return 1
    finally:
        sink.close()


class Reload:
    """Where SIGHUP re-reads the web config from: the configuration the watcher
    was started with, and the `--web-config` that overrides it."""

    def __init__(self, config_path: Path, node: str | None, web_config: Path | None) -> None:
        self.config_path = config_path
        self.node = node
        self.web_config = web_config

    def web_settings(self, hb: HbmonSettings) -> HbmonSettings:
        return hb if self.web_config is None else replace(hb, web_config=self.web_config)


class Watcher:
    def __init__(
        self,
        config: Config,
        sink: LogSink,
        metrics_address: str,
        *,
        cl_status: str | None,
        poll_interval: float,
        reload: Reload | None = None,
    ) -> None:
        self._config = config
        self._reload_from = reload
        self._sink = sink
        self._address = metrics_address
        self._cl_status = cl_status
        self._poll_interval = poll_interval
        self._metrics = WatchMetrics(config, version=__version__)
        self._ifaces = tuple(dict.fromkeys(m.iface for m in config.media))
        self._capture = Capture(self._ifaces, config.udpport)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: Observer | None = None
        self._timer: DeadlineTimer | None = None
        self._ping_state: dict[str, tuple[NodeStatus, float, int]] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._timer = DeadlineTimer(loop, self._on_timer)
        now = loop.time()
        observer = Observer(self._config, now, time.time() - now)
        self._observer = observer
        self._metrics.set_snapshot_source(on_loop(loop, lambda: observer.snapshot(loop.time())))
        hb = self._config.hbmon
        if self._reload_from is not None:
            hb = self._reload_from.web_settings(hb)
        server = serve(self._metrics, self._address, web_config=for_settings(hb))
        stop = loop.create_future()
        poller: asyncio.Task[None] | None = None
        try:
            self._capture.open(loop, self._on_frame)
            logger.info(
                "hbmon watch {}: observing {} on {} (udp/{}); sending nothing. Metrics on {}",
                __version__,
                ", ".join(self._config.nodes),
                ", ".join(self._ifaces),
                self._config.udpport,
                server.url(),
            )

            def request_stop() -> None:
                if not stop.done():
                    stop.set_result(0)

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, request_stop)
            loop.add_signal_handler(signal.SIGHUP, self._reload, server)
            cl = self._cl_status_path()
            if cl is not None:
                poller = loop.create_task(self._poll(cl))
            else:
                logger.info("cl_status not found: owner state is not exported.")
            self._arm()
            result: int = await stop
            return result
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if self._timer is not None:
                self._timer.cancel()
            self._capture.close()
            server.close()

    def _reload(self, server: Server) -> None:
        """SIGHUP: re-read the web config (TLS, basic auth). The rest of the
        configuration is read at start only; a change to it is reported."""
        src = self._reload_from
        if src is None:
            return
        logger.info("Re-reading the web config from {} (SIGHUP)", src.config_path)
        cfg, problems = load_any(src.config_path, src.node, watching=True)
        for p in problems:
            (logger.warning if p.warning else logger.error)("{}", p)
        if cfg is None:
            logger.error("Reload refused; still serving the previous web config.")
            self._metrics.record_reload(False)
            return
        try:
            endpoint = server.prepare(for_settings(src.web_settings(cfg.hbmon)))
        except StartupError as exc:
            logger.error("Reload refused: {}; still serving the previous web config.", exc)
            self._metrics.record_reload(False)
            return
        server.use(endpoint)
        self._metrics.record_reload(True)
        logger.info("Metrics endpoint: web config re-read; {}", server.url(endpoint))
        if _without_web(cfg) != _without_web(self._config):
            logger.warning(
                "hbmon watch: {} changed; changes other than the web config "
                "take effect at the next start.",
                src.config_path,
            )

    def _cl_status_path(self) -> str | None:
        if self._cl_status is None:
            return None
        return shutil.which(self._cl_status)

    # ------------------------------------------------------------ capture --
    def _on_frame(self, frame: Frame) -> None:
        assert self._observer is not None
        assert self._loop is not None
        try:
            dgram = parse(frame.data, self._config.udpport)
        except Fragment as exc:
            self._metrics.fragment()
            logger.debug("hbmon watch: {} on {} not reassembled", exc, frame.iface)
            return
        if dgram is None:
            return
        self._metrics.frame(frame.iface, frame.outgoing)
        now = self._loop.time()
        self._apply(self._observer.datagram(frame.iface, dgram.payload, dgram.src, now), now)

    def _apply(self, notices: list[Notice], now: float) -> None:
        for n in notices:
            if isinstance(n, TakeoverSeen):
                logger.info(
                    "{} took over [{}] from {} ({})",
                    self._config.node,
                    " ".join(n.keys),
                    n.peer,
                    n.reason.value,
                )
                continue
            self._metrics.observe(n)
            self._sink.log_effect(n, now)
        self._arm()

    def _arm(self) -> None:
        assert self._observer is not None
        assert self._timer is not None
        self._timer.arm(self._observer.next_deadline())

    def _on_timer(self, deadline: float) -> None:
        assert self._observer is not None
        assert self._loop is not None
        now = self._loop.time()
        self._metrics.observe_loop_lag(max(0.0, now - deadline))
        self._apply(list(self._observer.on_timer(now)), now)

    # ---------------------------------------------------------- cl_status --
    async def _poll(self, cl: str) -> None:
        assert self._observer is not None
        assert self._loop is not None
        while True:
            rsc = await _run(cl, "rscstatus")
            now = self._loop.time()
            self._observer.set_rscstatus(rsc, now)
            pings: tuple[PingNodeView, ...] = ()
            if rsc is not None:
                pings = await self._ping_views(cl)
            self._observer.set_ping_nodes(pings)
            self._metrics.set_known(
                owner=self._observer.owner_known,
                pings=bool(pings) or (rsc is not None and not self._config.ping_nodes),
            )
            await asyncio.sleep(self._poll_interval)

    async def _ping_views(self, cl: str) -> tuple[PingNodeView, ...]:
        assert self._loop is not None
        views = []
        for pn in self._config.ping_nodes:
            out = await _run(cl, "nodestatus", pn.name)
            if out is None:
                return ()
            status = NodeStatus.PING if out == "ping" else NodeStatus.DEAD
            now = self._loop.time()
            old = self._ping_state.get(pn.name)
            if old is None:
                state = (status, now, 0)
            elif old[0] is not status:
                state = (status, now, old[2] + 1)
            else:
                state = old
            self._ping_state[pn.name] = state
            views.append(PingNodeView(pn.name, status, None, state[1], (), state[2]))
        return tuple(views)


def _without_web(cfg: Config) -> Config:
    return replace(cfg, hbmon=replace(cfg.hbmon, web_config=None, tls_cert=None, tls_key=None))


async def _run(*argv: str) -> str | None:
    """stdout of a short command, or None if it fails or takes over POLL_TIMEOUT_S."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), POLL_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0:
        return None
    return out.decode(errors="replace").strip()
