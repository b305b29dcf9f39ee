"""systemd notification from a real agent: READY after comm-up, WATCHDOG from the loop,
STATUS with peer state, STOPPING on SIGTERM."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import pytest
from netns_helpers import require_netns

from hbmon.testing.lab import Lab

pytestmark = pytest.mark.netns


def test_agent_notifies_systemd() -> None:
    require_netns()
    path = Path(tempfile.mkdtemp(prefix="hbmon-notify-")) / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(0.2)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
    messages: list[tuple[float, str]] = []
    with Lab() as lab:
        procs = [lab.start_agent("solr1", env=env), lab.start_agent("solr2")]
        try:
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:
                try:
                    data = listener.recv(4096).decode()
                except TimeoutError:
                    continue
                messages.append((time.monotonic(), data))
                if (
                    any("READY=1" in m for _, m in messages)
                    and sum("WATCHDOG=1" in m for _, m in messages) >= 3
                ):
                    break
            procs[0].terminate()
            procs[0].wait(timeout=5)
            end = time.monotonic() + 2
            while time.monotonic() < end:
                try:
                    messages.append((time.monotonic(), listener.recv(4096).decode()))
                except TimeoutError:
                    break
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            listener.close()
    text = [m for _, m in messages]
    assert any("READY=1" in m for m in text), text
    assert sum("WATCHDOG=1" in m for m in text) >= 3, text
    assert any(m.startswith("STATUS=") and "peer solr2" in m for m in text), text
    assert any("STOPPING=1" in m for m in text), text
    ready_at = next(t for t, m in messages if "READY=1" in m)
    status_before = [m for t, m in messages if t <= ready_at and m.startswith("STATUS=")]
    assert all("comm up" in m or "waiting" in m for m in status_before)
