"""Where heartbeat's commands find the hbmon agent."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from hbmon.config.model import CONTROL_SOCKET_NAME, DEFAULT_RUN_DIR

# Overrides the control socket path (tests point the commands at a lab node's agent;
# an agent run with --run-dir DIR listens on DIR/hbmon.sock).
SOCKET_ENV = "HBMON_CONTROL_SOCKET"


def control_socket(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    override = env.get(SOCKET_ENV)
    if override:
        return Path(override)
    return DEFAULT_RUN_DIR / CONTROL_SOCKET_NAME
