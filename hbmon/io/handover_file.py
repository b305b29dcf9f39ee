"""The handover record on disk: what a restarting process leaves for the next one.

`<run_dir>/handover.json` (the unit's RuntimeDirectory, /run/hbmon, which systemd
keeps across a restart with RuntimeDirectoryPreserve=restart and removes at a
stop). Written atomically (temp file, fsync, rename); read once at start and
removed once its groups are adopted. What it means and when it may be used is
hbmon/core/handover.py's business; this module only stores it.

The kernel's boot id goes in, so a record can never outlive the boot it was
written in even where the run directory is not a tmpfs (`hbmon run --run-dir`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from loguru import logger

from hbmon.core.events import Scope
from hbmon.core.handover import HandoverRecord
from hbmon.io.state_files import write_atomic

RECORD_NAME = "handover.json"
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
_VERSION = 1


def encode(record: HandoverRecord) -> bytes:
    doc = {
        "version": _VERSION,
        "node": record.node,
        "generation": record.generation,
        "groups": list(record.groups),
        "claims": record.claims.value,
        "monotonic": record.at,
        "window_s": record.window_s,
        "boot_id": record.boot_id,
        "wall": record.wall,
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def decode(data: bytes) -> HandoverRecord:
    """The record in `data`; ValueError saying what is wrong with it."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise ValueError("not a version 1 handover record")
    try:
        node, generation, groups = doc["node"], doc["generation"], doc["groups"]
        at, window, boot_id = doc["monotonic"], doc["window_s"], doc["boot_id"]
        claims = Scope(doc["claims"])
        wall = doc.get("wall", 0.0)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"bad or missing field {exc}") from None
    if not (isinstance(node, str) and isinstance(boot_id, str)):
        raise ValueError("node and boot_id must be strings")
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise ValueError("generation must be a whole number")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError("groups must be a list of group keys")
    numbers = (at, window, wall)
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
        raise ValueError("monotonic, window_s and wall must be numbers")
    if not all(math.isfinite(x) for x in numbers):
        raise ValueError("monotonic, window_s and wall must be finite")
    return HandoverRecord(
        node=node,
        generation=generation,
        groups=tuple(groups),
        claims=claims,
        at=float(at),
        window_s=float(window),
        boot_id=boot_id,
        wall=float(wall),
    )


class HandoverFile:
    """The record in `run_dir` (see the module docstring)."""

    def __init__(self, run_dir: Path, *, boot_id_path: Path = BOOT_ID_PATH) -> None:
        self.path = run_dir / RECORD_NAME
        self._boot_id_path = boot_id_path

    def boot_id(self) -> str:
        """This boot's id ("" if the kernel does not say: no record then matches a
        record written with one)."""
        try:
            return self._boot_id_path.read_text().strip()
        except OSError:
            return ""

    def load(self) -> HandoverRecord | None:
        """The record, None if there is none; one that cannot be read is logged and
        removed (a start without it is an ordinary start)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("Handover record {} unreadable ({}): ignored", self.path, exc.strerror)
            return None
        try:
            return decode(data)
        except ValueError as exc:
            logger.warning("Handover record {} ignored: {}", self.path, exc)
            self.discard()
            return None

    def save(self, record: HandoverRecord) -> None:
        """Write it durably; StartupError naming the path if that fails."""
        write_atomic(self.path, encode(record))

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("Cannot remove handover record {}: {}", self.path, exc.strerror)
