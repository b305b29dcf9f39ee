"""The control socket: JSON lines over a unix stream socket (mode 0600).

One request per connection: `{"cmd": "status"}`, `{"cmd": "standby", "scope": "all"}`,
`{"cmd": "takeover", "scope": "local"}`, `{"cmd": "reload"}`. The reply is one
JSON object with `ok` and either the result or `error`. Standby and takeover
replies come only when the groups have moved (or the request was refused), so
the CLI can wait for the outcome. Only root or the agent's own user may connect
(SO_PEERCRED).

    ControlServer   the socket (the agent's side)
    dispatch        a request to the `Agent` (the engine) and its JSON reply
    request/notify  the CLI's side
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
from typing import Any, Protocol

from hbmon.compat.parameters import heartbeat_parameters
from hbmon.config.model import Config
from hbmon.core.events import ControlOp, ControlReply, Scope
from hbmon.core.snapshot import Snapshot
from hbmon.errors import StartupError
from hbmon.status import snapshot_to_dict

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_REQUEST = 65536
# A standby or takeover asked over the control socket waits at most this long.
CONTROL_OP_TIMEOUT_S = 300.0


class ControlError(Exception):
    """The agent could not be asked (not running, refused the connection, timed out)."""


class ControlTimeout(ControlError):
    """The agent took the request but did not answer in time."""


def _peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


# ----------------------------------------------------------------- dispatch --
class Agent(Protocol):
    """What the control socket asks of the running agent (hbmon/engine.py)."""

    @property
    def config(self) -> Config: ...

    def snapshot(self) -> Snapshot: ...

    def rtt(self) -> dict[str, float]:
        """Smoothed round-trip time per link (`iface/peer`), seconds."""

    async def exchange(self, op: ControlOp, scope: Scope) -> ControlReply:
        """Run a standby or takeover; the reply when the groups have moved or it was refused."""

    def reload(self) -> None:
        """Re-read the configuration (as SIGHUP)."""


async def dispatch(
    agent: Agent, request: dict[str, Any], *, wait_s: float = CONTROL_OP_TIMEOUT_S
) -> dict[str, Any]:
    """One request's reply: `ok` and the result, or `ok: false` and `error`.
    A standby or takeover is given up after `wait_s` seconds."""
    cmd = request.get("cmd")
    if cmd == "status":
        status = snapshot_to_dict(agent.snapshot(), rtt=agent.rtt())
        status["parameters"] = heartbeat_parameters(agent.config)
        status["nodes"] = list(agent.config.nodes)
        return {"ok": True, "status": status}
    if cmd in (ControlOp.STANDBY, ControlOp.TAKEOVER):
        try:
            scope = Scope(str(request.get("scope", "all")))
        except ValueError:
            return {"ok": False, "error": f"bad scope {request.get('scope')!r}"}
        if scope is Scope.NONE:
            return {"ok": False, "error": "scope must be all, local or foreign"}
        try:
            reply = await asyncio.wait_for(agent.exchange(ControlOp(cmd), scope), wait_s)
        except TimeoutError:
            return {"ok": False, "error": f"no outcome within {wait_s:g} s"}
        return {
            "ok": reply.ok,
            "message": reply.message,
            "error": None if reply.ok else reply.message,
        }
    if cmd == "reload":
        agent.reload()
        return {"ok": True, "message": "reload requested"}
    return {"ok": False, "error": f"unknown command {cmd!r}"}


# ------------------------------------------------------------------- server --
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


def _connect(s: socket.socket, path: Path) -> None:
    try:
        s.connect(str(path))
    except FileNotFoundError:
        raise ControlError(f"hbmon is not running (no control socket at {path})") from None
    except PermissionError:
        raise ControlError(f"permission denied on {path}: run as root") from None
    except OSError as exc:
        raise ControlError(f"cannot reach hbmon at {path}: {exc.strerror}") from None


def notify(path: Path, payload: dict[str, Any], timeout: float) -> None:
    """Send one request and do not wait for its outcome (heartbeat's hb_standby
    writes into a FIFO and returns); the agent carries it out all the same."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        _connect(s, path)
        try:
            s.sendall(json.dumps(payload).encode() + b"\n")
        except TimeoutError:
            raise ControlTimeout(f"hbmon did not take the request within {timeout:g} s") from None
        except OSError as exc:
            raise ControlError(f"control socket {path}: {exc.strerror}") from None


def request(path: Path, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one request and wait for the reply (blocking; for the CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        _connect(s, path)
        try:
            s.sendall(json.dumps(payload).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(MAX_REQUEST)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            raise ControlTimeout(f"no answer from hbmon within {timeout:g} s") from None
        except OSError as exc:
            raise ControlError(f"control socket {path}: {exc.strerror}") from None
    try:
        reply = json.loads(buf)
    except ValueError:
        raise ControlError("hbmon closed the connection without an answer") from None
    if not isinstance(reply, dict):
        raise ControlError("malformed answer from hbmon")
    return reply
