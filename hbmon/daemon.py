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
from hbmon.metrics import Metrics, serve
from hbmon.webconfig import WebConfig, server_context
from hbmon.webconfig import load as load_web_config


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
    cfg = with_overrides(cfg, state_dir, run_dir, metrics_address, web_config)
    sink = setup_logs(fmt=log_format, node=cfg.node, settings=cfg.logging, debug=cfg.logging.debug)
    try:
        return _run_validated(cfg, config_path, node, sink)
    except StartupError as exc:
        logger.critical("{} Not started.", exc)
        return 1
    finally:
        sink.close()


def _web_config(cfg: Config) -> WebConfig | None:
    """The metrics endpoint's web config file, or the YAML form's `tls` pair, if any."""
    hb = cfg.hbmon
    if hb.web_config is not None:
        return load_web_config(hb.web_config)
    if hb.tls_cert is not None and hb.tls_key is not None:
        web = WebConfig(cert_file=hb.tls_cert, key_file=hb.tls_key)
        server_context(web)  # refuse an unusable pair now, in one line
        return web
    return None


def _run_validated(cfg: Config, config_path: Path, node: str | None, sink: LogSink) -> int:
    logger.info("Configuration validated. Starting hbmon {}.", __version__)
    generation, was_missing = next_generation(cfg.hbmon.state_dir, time.time())
    if was_missing:
        logger.warning("No Previous generation - starting at {}", generation)
    logger.info("Heartbeat generation: {}", generation)
    uuid = load_or_create_uuid(cfg.hbmon.state_dir)
    metrics = Metrics(cfg, version=__version__)
    web = _web_config(cfg)
    server = serve(metrics, cfg.hbmon.metrics_address, web_config=web)
    scheme = "https" if web is not None and web.tls else "http"
    auth = " (basic auth)" if web is not None and web.users else ""
    logger.info("Metrics on {}://{}:{}/metrics{}", scheme, server.host, server.port, auth)
    try:
        engine = Engine(
            cfg,
            Identity(generation=generation, uuid=uuid),
            metrics,
            sink,
            config_path=config_path,
            node_override=node,
        )
        # Everything allocated so far (modules, configuration) lives as long as
        # the process: freezing it keeps the collector's full passes, triggered
        # by each beat's short-lived garbage, from walking it again and again.
        gc.freeze()
        return asyncio.run(engine.run())
    finally:
        server.close()
