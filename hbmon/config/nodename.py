"""Which node are we? (spec §1.1: `uname -n`, unless nodeinfo says otherwise)."""

from __future__ import annotations

import os
from pathlib import Path

from hbmon.config.lexer import ascii_lower

NODEINFO = "nodeinfo"


def local_node_name(config_dir: Path | None, node: str | None = None) -> str:
    """`--node` wins, then the first line of DIR/nodeinfo, then uname -n; lowercased."""
    if node:
        return ascii_lower(node.strip())
    if config_dir is not None:
        try:
            data = (config_dir / NODEINFO).read_bytes()
        except OSError:
            data = b""
        first = data.split(b"\n", 1)[0].strip()
        if first:
            return ascii_lower(first.decode("utf-8", errors="replace"))
    return ascii_lower(os.uname().nodename)
