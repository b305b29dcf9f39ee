"""`hbmon run`: validate, prepare, then hand over to the engine.

Everything that can be refused is checked before anything on the host changes:
the configuration first, then the state directory, the metrics port and the
media sockets. Each refusal is one clear line, never a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from loguru import logger

from hbmon import __version__
from hbmon.config.loader import load_any
from hbmon.config.model import Config
from hbmon.engine import Engine, Identity
from hbmon.errors import StartupError
from hbmon.io.state_files import load_or_create_uuid, next_generation
from hbmon.logs import LogSink
from hbmon.logs import setup as setup_logs
from hbmon.metrics import Metrics
from hbmon.metrics_http import serve
from hbmon.webconfig import for_settings


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
    cfg, problems = load_any(config_path, node)
    for p in problems:
        print(p, file=sys.stderr)
    if cfg is None:
        print(
            f"hbmon: configuration error in {config_path}; not started.",
            file=sys.stderr,
        )
        return 1

    def overrides(c: Config) -> Config:  # the command line wins, at start and on SIGHUP
        return with_overrides(c, state_dir, run_dir, metrics_address, web_config)

    cfg = overrides(cfg)
    sink = setup_logs(fmt=log_format, node=cfg.node, settings=cfg.logging, debug=cfg.logging.debug)
    try:
        return _run_validated(cfg, config_path, node, sink, overrides)
    except StartupError as exc:
        logger.critical("{} Not started.", exc)
        return 1
    finally:
        sink.close()


def _run_validated(
    cfg: Config,
    config_path: Path,
    node: str | None,
    sink: LogSink,
    overrides: Callable[[Config], Config],
) -> int:
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
        engine = Engine(
            cfg,
            Identity(generation=generation, uuid=uuid),
            metrics,
            sink,
            config_path=config_path,
            node_override=node,
            overrides=overrides,
            metrics_server=server,
        )
        # Everything allocated so far (modules, configuration) lives as long as
        # the process: freezing it keeps the collector's full passes, triggered
        # by each beat's short-lived garbage, from walking it again and again.
        gc.freeze()
        return asyncio.run(engine.run())
    finally:
        server.close()
