"""The control socket: one JSON request per connection, root only, mode 0600."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hbmon.control.client import ControlError, request
from hbmon.control.server import ControlServer
from hbmon.errors import StartupError


class Running:
    """A ControlServer on its own event loop thread."""

    def __init__(self, path: Path, hold: bool = False) -> None:
        self.path = path
        self.seen: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.server = ControlServer(path)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        start = self.server.start(self._handle)
        asyncio.run_coroutine_threadsafe(start, self.loop).result(5)

    async def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(req)
        await self.gate.wait()
        return {"ok": True, "echo": req}

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self.gate.set)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path / "run" / "hbmon.sock")
    try:
        yield r
    finally:
        r.close()


def test_request_and_reply(server: Running) -> None:
    reply = request(server.path, {"cmd": "status"}, timeout=5)
    assert reply == {"ok": True, "echo": {"cmd": "status"}}
    assert server.seen == [{"cmd": "status"}]


def test_socket_is_private(server: Running) -> None:
    mode = stat.S_IMODE(server.path.stat().st_mode)
    assert mode == 0o600


def test_no_agent_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="not running"):
        request(tmp_path / "missing.sock", {"cmd": "status"}, timeout=1)


def test_a_slow_answer_times_out(tmp_path: Path) -> None:
    r = Running(tmp_path / "slow.sock", hold=True)
    try:
        with pytest.raises(ControlError, match="no answer"):
            request(r.path, {"cmd": "standby"}, timeout=0.2)
    finally:
        r.release()
        r.close()


def test_second_agent_is_refused_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "hbmon.sock"
    first = Running(path)
    try:
        second = ControlServer(path)
        with pytest.raises(StartupError, match="in use"):
            asyncio.run(second.start(first._handle))
    finally:
        first.close()
    path.touch()  # a leftover from a crash
    again = Running(path)
    try:
        assert request(path, {"cmd": "x"}, timeout=5)["ok"] is True
    finally:
        again.close()


def test_bad_request_gets_an_error_not_a_crash(server: Running) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(server.path))
        s.sendall(b"not json\n")
        answer = s.recv(4096)
    assert b'"ok": false' in answer
    assert request(server.path, {"cmd": "status"}, timeout=5)["ok"] is True


@pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root to switch users"
)
def test_non_root_user_is_refused() -> None:
    setpriv = shutil.which("setpriv")
    python = "/usr/bin/python3"
    assert setpriv is not None
    assert Path(python).exists(), "Debian's python3 (scripts/setup.sh installs it)"
    # A directory the other user can traverse, and even with the socket's mode
    # opened up, the server checks the peer's uid.
    base = Path(tempfile.mkdtemp(prefix="hbmon-ctl-", dir="/tmp"))
    base.chmod(0o755)
    server = Running(base / "hbmon.sock")
    server.path.chmod(0o666)
    code = (
        # The server refuses before reading the request: read its answer only.
        "import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
        "print(s.recv(4096).decode())"
    )
    res = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code,
         str(server.path)],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    try:
        assert "permission denied" in res.stdout, res.stdout + res.stderr
        assert server.seen == []
    finally:
        server.close()
        shutil.rmtree(base, ignore_errors=True)
