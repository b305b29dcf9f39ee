"""`hbmon run`: validate, prepare, then hand over to the engine.

Everything that can be refused is checked before anything on the host changes:
the configuration first, then the state directory, the metrics port and the
media sockets. Each refusal is one clear line, never a traceback.

This is the one place the engine's real I/O objects are built (`real_io`);
the engine itself builds none (hbmon/io/ports.py).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from loguru import logger

from hbmon import __version__
from hbmon.config.loader import load_any
from hbmon.config.model import CONTROL_SOCKET_NAME, Config, PingNode
from hbmon.config.problems import Problem
from hbmon.control.server import ControlServer
from hbmon.engine import Engine, Identity
from hbmon.errors import StartupError
from hbmon.io.fencing import Fencer, device_problems
from hbmon.io.handover_file import HandoverFile
from hbmon.io.media import Media
from hbmon.io.ping import Pinger
from hbmon.io.ports import ArbiterPort, EngineIO, EventSink, PingPort
from hbmon.io.resources.executor import ResourceExecutor
from hbmon.io.respawn import ProcessSpawner, Supervisor
from hbmon.io.state_files import load_or_create_uuid, next_generation
from hbmon.logs import LogSink
from hbmon.logs import setup as setup_logs
from hbmon.metrics import Metrics
from hbmon.metrics.http import serve
from hbmon.metrics.webconfig import for_settings
from hbmon.sdnotify import SdNotifier

LOADAVG_PATH = Path("/proc/loadavg")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The unit's RestartKillSignal: systemd stops a restarting hbmon with it, and hbmon
# hands its groups over to the next process instead of releasing them.
HANDOVER_SIGNAL = signal.SIGQUIT


def with_overrides(
    cfg: Config,
    state_dir: Path | None,
    run_dir: Path | None,
    metrics_address: str | None,
    web_config: Path | None = None,
) -> Config:
    hb = cfg.hbmon
    if state_dir is not None:
        hb = replace(hb, state_dir=state_dir)
    if run_dir is not None:
        hb = replace(hb, run_dir=run_dir)
    if metrics_address is not None:
        hb = replace(hb, metrics_address=metrics_address)
    if web_config is not None:
        hb = replace(hb, web_config=web_config)
    return replace(cfg, hbmon=hb)


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The configuration as `hbmon run` was given it, re-read on SIGHUP."""

    path: Path
    node: str | None  # --node
    overrides: Callable[[Config], Config]  # the command line, applied to every reading

    def load(self) -> tuple[Config | None, Sequence[Problem]]:
        cfg, problems = load_any(self.path, self.node)
        return (self.overrides(cfg) if cfg is not None else None), problems


class LoopSignals:
    """SIGTERM/SIGINT, SIGHUP and SIGQUIT handled on the running event loop."""

    def install(
        self,
        stop: Callable[[], None],
        reload: Callable[[], None],
        handover: Callable[[], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop)
        loop.add_signal_handler(signal.SIGHUP, reload)
        loop.add_signal_handler(HANDOVER_SIGNAL, handover)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (*STOP_SIGNALS, signal.SIGHUP, HANDOVER_SIGNAL):
            loop.remove_signal_handler(sig)


def _quit_before_start(signum: int, frame: object) -> None:
    """A restart before the engine runs: nothing is held yet, so leave as a stop would
    (SIGQUIT's default would dump core)."""
    raise SystemExit(0)


def read_loadavg() -> str | None:
    try:
        return LOADAVG_PATH.read_text().strip()
    except OSError:
        return None


def real_io(cfg: Config, source: ConfigFile, metrics: Metrics, generation: int) -> EngineIO:
    """The engine's real I/O objects (nothing opened yet); StartupError if a respawn
    client would be refused, as heartbeat refuses it at start, or if the arbitrator's
    TLS files cannot be used."""
    Supervisor.check(cfg.respawn)

    def pinger(
        nodes: tuple[PingNode, ...], sink: EventSink, interval_s: float, beat_s: float
    ) -> PingPort:
        return Pinger(nodes, sink, interval_s=interval_s, timeout_s=interval_s, beat_s=beat_s)

    return EngineIO(
        media=Media,
        resources=ResourceExecutor(
            cfg,
            config_dir=source.path if source.path.is_dir() else None,
            observe=metrics.observe_operation,
            on_status_disagreement=metrics.observe_status_disagreement,
        ),
        handover=HandoverFile(cfg.hbmon.run_dir),
        control=ControlServer(cfg.hbmon.run_dir / CONTROL_SOCKET_NAME),
        notifier=SdNotifier(),
        pinger=pinger,
        clients=Supervisor(cfg.respawn, cfg.env, ProcessSpawner(), time.monotonic),
        fencer=Fencer(cfg.hbmon.fencing, observe=metrics.observe_fence),
        signals=LoopSignals(),
        source=source,
        loadavg=read_loadavg,
        wall=time.time,
        arbiter=arbiter_port(cfg, generation),
    )


def arbiter_port(cfg: Config, generation: int) -> ArbiterPort | None:
    if cfg.arbitrator is None:
        return None  # the etcd client is never imported then
    from hbmon.io.arbiter import ArbiterDriver

    return ArbiterDriver(cfg.arbitrator, cfg.nodes, cfg.node, generation)


def run(
    config_path: Path,
    *,
    node: str | None,
    state_dir: Path | None,
    run_dir: Path | None,
    metrics_address: str | None,
    log_format: Literal["text", "json"],
    web_config: Path | None = None,
) -> int:
    signal.signal(HANDOVER_SIGNAL, _quit_before_start)
    cfg, problems = load_any(config_path, node)
    for p in problems:
        print(p, file=sys.stderr)
    if cfg is None:
        print(
            f"hbmon: configuration error in {config_path}; not started.",
            file=sys.stderr,
        )
        return 1
    unusable = device_problems(cfg.fencing, cfg.hbmon.fencing.stonith_command, cfg.node)
    for device, text in unusable:  # heartbeat refuses these at start too
        print(f"{config_path}: {device.label} (line {device.line}): {text}", file=sys.stderr)
    if unusable:
        print(f"hbmon: fencing device error in {config_path}; not started.", file=sys.stderr)
        return 1

    def overrides(c: Config) -> Config:  # the command line wins, at start and on SIGHUP
        return with_overrides(c, state_dir, run_dir, metrics_address, web_config)

    cfg = overrides(cfg)
    sink = setup_logs(fmt=log_format, node=cfg.node, settings=cfg.logging, debug=cfg.logging.debug)
    try:
        return _run_validated(cfg, ConfigFile(config_path, node, overrides), sink)
    except StartupError as exc:
        logger.critical("{} Not started.", exc)
        return 1
    finally:
        sink.close()


def _run_validated(cfg: Config, source: ConfigFile, sink: LogSink) -> int:
    logger.info("Configuration validated. Starting hbmon {}.", __version__)
    generation, was_missing = next_generation(cfg.hbmon.state_dir, time.time())
    if was_missing:
        logger.warning("No Previous generation - starting at {}", generation)
    logger.info("Heartbeat generation: {}", generation)
    uuid = load_or_create_uuid(cfg.hbmon.state_dir)
    metrics = Metrics(cfg, version=__version__)
    server = serve(metrics, cfg.hbmon.metrics_address, web_config=for_settings(cfg.hbmon))
    logger.info("Metrics on {}", server.url())
    try:
        io = real_io(cfg, source, metrics, generation)
        engine = Engine(cfg, Identity(generation, uuid), io, metrics, sink, metrics_server=server)
        # Until the engine takes SIGHUP over, a reload asked now would find the
        # configuration just read; without this it would kill the process.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        # Everything allocated so far (modules, configuration) lives as long as
        # the process: freezing it keeps the collector's full passes, triggered
        # by each beat's short-lived garbage, from walking it again and again.
        gc.freeze()
        return asyncio.run(engine.run())
    finally:
        server.close()
