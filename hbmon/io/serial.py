"""Serial heartbeat media: one open tty per `serial DEVICE` line.

The line is set up as heartbeat's serial plugin sets it (8N1, raw, the
configured `baud`, RTS/CTS flow control) through pyserial; reads and writes
then go straight to the file descriptor from the event loop, never blocking it.
Framing is hbmon.wire.serialframe's (heartbeat's classic frames).

What the line does when it misbehaves, and what hbmon does:
- A device that is missing, not a tty, or locked by another program (a live
  UUCP lock such as heartbeat's `/var/lock/LCK..ttyS0`, or hbmon's own flock):
  startup refused with the reason, as a busy UDP port is.
- Read error or end of file (a pty whose other side went away, an unplugged
  USB adapter): logged (at most once a minute), the line is read again a
  second later; the link's silence shows as `Link …: dead` meanwhile.
- Writes the line does not take (no cable, CTS never raised): what is pending
  is dropped after 500 ms, heartbeat's write timeout, with its
  `TTY write timeout` warning (at most once an hour, as heartbeat), so a dead
  line never holds more than a few messages and never stalls the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import termios
import time
from collections.abc import Callable
from pathlib import Path

import serial
from loguru import logger

from hbmon.config.model import UUCP_LOCK_DIR, SerialMedium
from hbmon.errors import StartupError
from hbmon.wire.serialframe import SerialDeframer

# (link name, frame, source, arrival time on the loop's clock)
Receiver = Callable[[str, bytes, str, float], None]

READ_SIZE = 4096
# heartbeat's serial_write: a write the line has not taken within 500 ms fails.
WRITE_TIMEOUT_S = 0.5
# More pending than this is a line that is not draining: dropped at once.
MAX_PENDING = 64 * 1024
READ_RETRY_S = 1.0
READ_ERROR_LOG_EVERY_S = 60.0
# heartbeat repeats its TTY write timeout warning at most once an hour (RTS_WARNTIME).
WRITE_WARN_EVERY_S = 3600.0


def describe(medium: SerialMedium) -> str:
    return f"serial {medium.device} ({medium.baud} baud)"


def uucp_lock_owner(device: str, lock_dir: Path = UUCP_LOCK_DIR) -> int | None:
    """The live process holding a UUCP lock on `device` (heartbeat's devlock), if any."""
    path = lock_dir / f"LCK..{os.path.basename(device)}"
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.strip()
    if text.isdigit():
        pid = int(text)
    elif len(raw) == 4:  # the old binary format: a native int
        pid = int.from_bytes(raw, "little")
    else:
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # stale lock
    except PermissionError:
        pass  # alive, owned by someone else
    return pid


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def check_device(medium: SerialMedium) -> None:
    """Refuse a device that is missing, not a character device, or locked by another program."""
    what = f"medium `{describe(medium)}`"
    try:
        st = os.stat(medium.device)
    except OSError as exc:
        raise StartupError(f"{what}: Nonexistent serial port: {exc.strerror}") from None
    if not stat.S_ISCHR(st.st_mode):
        raise StartupError(f"{what}: Serial port [{medium.device}] not a char device")
    owner = uucp_lock_owner(medium.device)
    if owner is not None:
        raise StartupError(
            f"{what}: the line is locked by process {owner} ({_process_name(owner)});"
            " is heartbeat still running?"
        )


def open_line(medium: SerialMedium) -> serial.Serial:
    """The tty, configured as heartbeat configures it; StartupError with the reason if not."""
    check_device(medium)
    try:
        return serial.Serial(
            port=medium.device,
            baudrate=medium.baud,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            rtscts=True,  # heartbeat sets CRTSCTS
            timeout=0,
            # flock: a second hbmon (or anything else that asks) cannot share the line.
            exclusive=True,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise StartupError(f"medium `{describe(medium)}`: {exc}") from None


class SerialPort:
    """One serial medium: its open line, a reader feeding frames to `receiver`, a bounded writer."""

    def __init__(self, medium: SerialMedium) -> None:
        self.medium = medium
        self._line: serial.Serial | None = None
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receiver: Receiver | None = None
        self._deframer = SerialDeframer()
        self._pending = bytearray()
        self._pending_since: float | None = None
        self._writer_armed = False
        self._retry: asyncio.TimerHandle | None = None
        self._last_read_error_log = -READ_ERROR_LOG_EVERY_S
        self._last_write_warning = -WRITE_WARN_EVERY_S
        self.frames_received = 0
        self.writes_dropped = 0
        self.read_errors = 0

    @property
    def is_open(self) -> bool:
        return self._line is not None

    def open(self, receiver: Receiver) -> None:
        self._loop = asyncio.get_running_loop()
        self._receiver = receiver
        self._line = open_line(self.medium)
        self._fd = self._line.fileno()
        self._loop.add_reader(self._fd, self._readable)
        logger.info(
            "Starting serial heartbeat on tty {} ({} baud)", self.medium.device, self.medium.baud
        )

    def close(self) -> None:
        if self._line is None:
            return
        assert self._loop is not None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._loop.remove_reader(self._fd)
        if self._writer_armed:
            self._loop.remove_writer(self._fd)
            self._writer_armed = False
        self._line.close()
        self._line = None
        self._fd = -1

    # ---------------------------------------------------------------- read --
    def _readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._read_failed(exc.strerror or str(exc))
            return
        if not data:
            self._read_failed("end of file")
            return
        assert self._receiver is not None
        assert self._loop is not None
        at = self._loop.time()  # a tty has no kernel timestamp; its frames take ms anyway
        for frame in self._deframer.feed(data):
            self.frames_received += 1
            self._receiver(self.medium.iface, frame, self.medium.device, at)

    def _read_failed(self, why: str) -> None:
        """Stop reading for a second: a pty without its other side reports EIO at once,
        for ever, and must not spin the loop."""
        assert self._loop is not None
        self.read_errors += 1
        now = time.monotonic()
        if now - self._last_read_error_log >= READ_ERROR_LOG_EVERY_S:
            self._last_read_error_log = now
            logger.warning(
                "EOF in ttygets [{}]: {}; reading again in {:g} s",
                self.medium.device,
                why,
                READ_RETRY_S,
            )
        self._loop.remove_reader(self._fd)
        self._retry = self._loop.call_later(READ_RETRY_S, self._resume_reading)

    def _resume_reading(self) -> None:
        self._retry = None
        if self._line is not None and self._loop is not None:
            self._loop.add_reader(self._fd, self._readable)

    # --------------------------------------------------------------- write --
    def send(self, frame: bytes) -> None:
        if self._line is None:
            return
        now = time.monotonic()
        stuck = self._pending_since is not None and now - self._pending_since > WRITE_TIMEOUT_S
        if self._pending and (stuck or len(self._pending) + len(frame) > MAX_PENDING):
            self._drop_pending(now)
        self._pending += frame
        if self._pending_since is None:
            self._pending_since = now
        self._flush()

    def _flush(self) -> None:
        assert self._loop is not None
        try:
            while self._pending:
                n = os.write(self._fd, self._pending)
                del self._pending[:n]
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno != errno.EINTR:
                self._write_failed(exc)
        if self._pending:
            if not self._writer_armed:
                self._loop.add_writer(self._fd, self._flush)
                self._writer_armed = True
            return
        self._pending_since = None
        if self._writer_armed:
            self._loop.remove_writer(self._fd)
            self._writer_armed = False

    def _drop_pending(self, now: float) -> None:
        """heartbeat flushes the line when a write times out; so do we."""
        self.writes_dropped += 1
        self._pending.clear()
        self._pending_since = None
        with contextlib.suppress(termios.error):
            termios.tcflush(self._fd, termios.TCOFLUSH)
        if now - self._last_write_warning >= WRITE_WARN_EVERY_S:
            self._last_write_warning = now
            logger.warning(
                "TTY write timeout on [{}] (no connection or bad cable? [see documentation])",
                self.medium.device,
            )

    def _write_failed(self, exc: OSError) -> None:
        self.writes_dropped += 1
        self._pending.clear()
        self._pending_since = None
        now = time.monotonic()
        if now - self._last_write_warning >= READ_ERROR_LOG_EVERY_S:
            self._last_write_warning = now
            logger.error("TTY write failure on [{}]: {}", self.medium.device, exc.strerror)
