"""SerialPort on a real pseudo-terminal: frames in and out, a vanished other side, a
line that does not drain, and the checks made before a line is opened."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tty
from pathlib import Path

import pytest

from hbmon.config.model import SerialMedium
from hbmon.errors import StartupError
from hbmon.io import serial as serial_io
from hbmon.io.serial import SerialPort, check_device, uucp_lock_owner

FRAME = b">>>\nt=status\nsrc=solr2\nauth=1 00\n<<<\n"


def pty_pair() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(master)
    name = os.ttyname(slave)
    os.close(slave)
    return master, name


def test_frames_in_and_out_of_a_pty() -> None:
    async def scenario() -> tuple[list[tuple[str, bytes, str, float]], bytes]:
        master, name = pty_pair()
        got: list[tuple[str, bytes, str, float]] = []
        port = SerialPort(SerialMedium(name, 19200))
        port.open(lambda *a: got.append(a))
        try:
            os.write(master, b"noise\n" + FRAME[:10])
            await asyncio.sleep(0.05)
            os.write(master, FRAME[10:] + FRAME)
            for _ in range(100):
                if len(got) == 2:
                    break
                await asyncio.sleep(0.01)
            port.send(b">>>\nt=x\n<<<\n")
            await asyncio.sleep(0.05)
            written = os.read(master, 4096)
        finally:
            port.close()
            os.close(master)
        return got, written

    got, written = asyncio.run(scenario())
    assert [g[:3] for g in got] == [(got[0][0], FRAME, got[0][0])] * 2
    assert all(isinstance(g[3], float) for g in got)  # when the frame was read
    assert got[0][0].startswith("/dev/pts/")
    assert written == b">>>\nt=x\n<<<\n"


def test_a_vanished_other_side_is_retried_not_spun_on() -> None:
    async def scenario() -> int:
        master, name = pty_pair()
        port = SerialPort(SerialMedium(name))
        port.open(lambda *a: None)
        os.close(master)  # the cable is gone: every read now fails at once
        await asyncio.sleep(0.5)
        errors = port.read_errors
        port.close()
        return errors

    # A retry a second later, not a read per loop iteration (which would be thousands).
    assert 1 <= asyncio.run(scenario()) <= 5


def test_a_line_that_does_not_drain_keeps_a_bounded_backlog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serial_io, "WRITE_TIMEOUT_S", 0.0)

    async def scenario() -> tuple[int, int]:
        master, name = pty_pair()
        port = SerialPort(SerialMedium(name))
        port.open(lambda *a: None)
        try:
            # Nobody reads the master: the pty buffer fills, then writes are dropped.
            for _ in range(2000):
                port.send(b">>>\n" + b"x=" + b"y" * 500 + b"\n<<<\n")
                await asyncio.sleep(0)
            return port.writes_dropped, len(port._pending)
        finally:
            port.close()
            os.close(master)

    dropped, pending = asyncio.run(scenario())
    assert dropped > 0
    assert pending <= serial_io.MAX_PENDING


def test_devices_that_heartbeat_refuses_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="Nonexistent serial port"):
        check_device(SerialMedium(str(tmp_path / "nothing")))
    (tmp_path / "file").write_text("")
    with pytest.raises(StartupError, match="not a char device"):
        check_device(SerialMedium(str(tmp_path / "file")))


def test_uucp_locks_of_live_processes_only(tmp_path: Path) -> None:
    device = "/dev/ttyS7"
    lock = tmp_path / "LCK..ttyS7"
    assert uucp_lock_owner(device, tmp_path) is None
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        lock.write_text(f"{sleeper.pid:10d}\n")  # heartbeat's (and UUCP's) format
        assert uucp_lock_owner(device, tmp_path) == sleeper.pid
        lock.write_bytes(sleeper.pid.to_bytes(4, "little"))  # the old binary format
        assert uucp_lock_owner(device, tmp_path) == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
    lock.write_text(f"{sleeper.pid:10d}\n")
    assert uucp_lock_owner(device, tmp_path) is None  # stale
    lock.write_text(f"{os.getpid():10d}\n")
    assert uucp_lock_owner(device, tmp_path) is None  # our own
