"""Where lines go: stderr (text or JSON, journald-aware), heartbeat's log files, syslog.

Each sink renders a loguru record in heartbeat's format; hbmon/logs/logsink.py
installs them. `InterceptHandler` brings stdlib `logging` (asyncio,
icmplib) into loguru.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from loguru import logger

from hbmon.logs.levels import HB_EXTRA, PRIORITY, hb_level

if TYPE_CHECKING:
    from loguru import Message, Record

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
IDENT = "hbmon"


def _loguru_version() -> tuple[int, ...]:
    import loguru

    text = str(getattr(loguru, "__version__", "0"))  # not in loguru's type stubs
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


# loguru >= 0.7 reopens a file that logrotate moved away (`watch`); 0.6 (Debian 12)
# cannot, so the shipped logrotate file truncates in place (copytruncate) instead.
REOPEN_IF_MOVED: dict[str, Any] = {"watch": True} if _loguru_version() >= (0, 7) else {}


def _timestamp(t: datetime) -> str:
    """cl_log.c syslog_timestamp(): `Nov 25 12:35:32`, English month, zero-padded day."""
    return f"{_MONTHS[t.month - 1]} {t.day:02d} {t:%H:%M:%S}"


def _exception_text(record: Record) -> str:
    exc = record["exception"]
    if exc is None or exc.type is None:
        return ""
    return "".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip("\n")


def escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def file_format(node: str) -> Callable[[Record], str]:
    """loguru format function for logfile/debugfile (heartbeat's line format)."""
    prefix = escape(f"{node} {IDENT}: ")

    def fmt(record: Record) -> str:
        head = f"{_timestamp(record['time'])} {prefix}[{{process}}]: {hb_level(record)}: "
        return head + "{message}\n{exception}"

    return fmt


def stream_is_journal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """True if `stream` is connected to journald (sd-daemon: `$JOURNAL_STREAM` is
    `DEV:INODE` of that stream). A stream without a file descriptor trusts the variable."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    try:
        dev_s, ino_s = value.split(":", 1)
        st = os.fstat(fd)
        return st.st_dev == int(dev_s) and st.st_ino == int(ino_s)
    except (OSError, ValueError):
        return False


class StreamSink:
    """stderr: `LEVEL: message` lines, or compact JSON; `<N>` prefixed for journald."""

    def __init__(self, stream: TextIO, fmt: Literal["text", "json"], node: str, journal: bool):
        self.stream = stream
        self.fmt = fmt
        self.node = node
        self.journal = journal

    def __call__(self, message: Message) -> None:
        record = message.record
        level = hb_level(record)
        exc = _exception_text(record)
        if self.fmt == "json":
            lines = [self._json(record, level, exc)]
        else:
            lines = f"{level}: {record['message']}".splitlines() or [""]
            if exc:
                lines += exc.splitlines()
        if self.journal:
            prio = PRIORITY[level]
            lines = [f"<{prio}>{line}" for line in lines]
        self.stream.write("".join(f"{line}\n" for line in lines))
        self.stream.flush()

    def _json(self, record: Record, level: str, exc: str) -> str:
        obj: dict[str, object] = {
            "time": record["time"].isoformat(timespec="microseconds"),
            "level": level,
            "message": record["message"],
            "node": self.node,
        }
        for k, v in record["extra"].items():
            if k != HB_EXTRA:
                obj.setdefault(k, v)
        if record["name"] and not str(record["name"]).startswith("hbmon.logs"):
            obj.setdefault("logger", record["name"])
        if exc:
            obj["exception"] = exc
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


class SyslogSink:
    """Datagrams to /dev/log as glibc syslog() would send them, with heartbeat's body
    (`[pid]: LEVEL: message`) and the configured facility."""

    def __init__(self, address: str, facility: int) -> None:
        self.address = address
        self.facility = facility
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.pid = os.getpid()

    def __call__(self, message: Message) -> None:
        record = message.record
        level = hb_level(record)
        pri = self.facility * 8 + PRIORITY[level]
        stamp = f"{_MONTHS[record['time'].month - 1]} {record['time']:%e %H:%M:%S}"
        body = f"<{pri}>{stamp} {IDENT}: [{self.pid}]: {level}: {record['message']}"
        # syslog down or full: never block or crash the daemon over a log line
        with contextlib.suppress(OSError):
            self.sock.sendto(body.encode("utf-8", "replace")[:8192], self.address)

    def close(self) -> None:
        self.sock.close()


class InterceptHandler(logging.Handler):
    """stdlib `logging` (asyncio, icmplib) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 0
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def add_file(path: Path, level: str, fmt: Callable[[Record], str]) -> int:
    """A log file in heartbeat's format; its loguru handler id. OSError if it cannot open."""
    return logger.add(
        escape(str(path)),
        level=level,
        format=fmt,
        colorize=False,
        backtrace=False,
        diagnose=False,  # never print local variables (keys) in tracebacks
        encoding="utf-8",
        catch=True,
        **REOPEN_IF_MOVED,
    )
