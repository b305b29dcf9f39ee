"""Generation and node UUID persistence, as heartbeat keeps them (spec §4.4).

* ``hb_generation``: the generation (`hg`) as a 15-character right-aligned
  decimal and a newline. Read, incremented and written at every start, so a
  restarted node is never mistaken for a replay. If the file is missing the
  count starts from the wall clock: heartbeat 3.0.6 logged
  ``No Previous generation - starting at N`` with N = time() + 1 and sent
  ``hg`` = ``ts`` + 1 in its first packets (captures, all three runs), i.e. it
  takes time() and then increments like any other start.
* ``hb_uuid``: the node's 16 raw bytes, created once (random, RFC 4122
  version 4 as heartbeat's uuid_generate makes them).

Every write is atomic and durable: temp file in the same directory, fsync,
rename, fsync of the directory. Failures raise `StartupError` naming the path.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hbmon.errors import StartupError

GENERATION_FILE = "hb_generation"
UUID_FILE = "hb_uuid"
UUID_LEN = 16
_GENERATION_WIDTH = 15
_MAX_GENERATION = (1 << 64) - 1
_DIR_MODE = 0o700


def _ensure_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    except OSError as e:
        raise StartupError(f"cannot create state directory {state_dir}: {_why(e)}") from e
    if not state_dir.is_dir():
        raise StartupError(f"state directory {state_dir} is not a directory")


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _read(path: Path) -> bytes | None:
    """The file's bytes, or None if it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StartupError(f"cannot read {path}: {_why(e)}") from e


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` durably: temp file, fsync, rename, fsync dir."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StartupError(f"cannot write {path}: {_why(e)}") from e


def next_generation(state_dir: Path, wall_now: float) -> tuple[int, bool]:
    """Read, increment and persist the generation; return (generation, file_was_missing).

    A missing file counts from `int(wall_now)` (so the first generation is that
    plus one, as heartbeat does). A file that is not a decimal number is an
    error, not a reason to restart the count: that could reuse an old generation.
    """
    _ensure_dir(state_dir)
    path = state_dir / GENERATION_FILE
    raw = _read(path)
    missing = raw is None
    if raw is None:
        current = int(wall_now)
        if current < 0:
            raise StartupError(f"wall clock before 1970, cannot seed {path}")
    else:
        text = raw.strip()
        if not text.isdigit() or len(text) > 20 or int(text) >= _MAX_GENERATION:
            raise StartupError(f"corrupt generation file {path}: expected a decimal number")
        current = int(text)
    generation = current + 1
    write_atomic(path, b"%*d\n" % (_GENERATION_WIDTH, generation))
    return generation, missing


def load_or_create_uuid(state_dir: Path) -> bytes:
    """This node's 16-byte UUID from `hb_uuid`, created (and fsynced) on first use."""
    _ensure_dir(state_dir)
    path = state_dir / UUID_FILE
    raw = _read(path)
    if raw is not None:
        if len(raw) != UUID_LEN:
            raise StartupError(f"corrupt uuid file {path}: {len(raw)} bytes, expected {UUID_LEN}")
        return raw
    uuid = bytearray(os.urandom(UUID_LEN))
    uuid[6] = (uuid[6] & 0x0F) | 0x40  # version 4
    uuid[8] = (uuid[8] & 0x3F) | 0x80  # RFC 4122 variant
    write_atomic(path, bytes(uuid))
    return bytes(uuid)
