"""The CLI's side of the control socket: one request, its reply (or none, for notify).

`hbmon status|standby|takeover|reload`, `cl_status`, `hb_standby`/`hb_takeover`
use these; a failure is a `ControlError` whose text says what to do.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

MAX_REPLY = 65536


class ControlError(Exception):
    """The agent could not be asked (not running, refused the connection, timed out)."""


class ControlTimeout(ControlError):
    """The agent took the request but did not answer in time."""


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
                chunk = s.recv(MAX_REPLY)
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
