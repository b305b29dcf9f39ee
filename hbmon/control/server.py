"""The agent's side of the control socket: JSON lines over a unix stream socket (0600).

One request per connection, one JSON object back (hbmon/control/commands.py
makes it). Only root or the agent's own user may connect (SO_PEERCRED).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hbmon.errors import StartupError

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    """The agent's control socket; `start(handler)` answers each request with `handler`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handler: Handler | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self, handler: Handler) -> None:
        self._handler = handler
        try:
            self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            if self.path.exists() or self.path.is_symlink():
                if _alive(self.path):
                    raise StartupError(
                        f"control socket {self.path} is in use: is another hbmon running?"
                    )
                self.path.unlink()
            old = os.umask(0o177)
            try:
                self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
            finally:
                os.umask(old)
            self.path.chmod(0o600)
        except OSError as exc:
            raise StartupError(f"control socket {self.path}: {exc.strerror or exc}") from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = _peer_uid(sock) if sock is not None else None
            if uid is None or uid not in (0, os.getuid()):
                await _send(writer, {"ok": False, "error": "permission denied: root only"})
                return
            try:
                line = await reader.readuntil(b"\n")
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("request is not an object")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                await _send(writer, {"ok": False, "error": f"bad request: {exc}"})
                return
            assert self._handler is not None  # set by start() before the socket exists
            await _send(writer, await self._handler(request))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _send(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
    writer.write(json.dumps(reply).encode() + b"\n")
    await writer.drain()


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True
