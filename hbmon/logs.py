"""Logging: heartbeat's wording and file format, on loguru.

* `describe(effect)` turns a core notice into heartbeat's exact line
  (`Late heartbeat: Node X: interval N ms`, `node X: is dead`, …, spec §4.3–§5.1),
  so log watchers written for heartbeat keep matching. hbmon-only notices get
  hbmon wording at the level heartbeat would use.
* `setup()` owns loguru's logger: stderr always (text, or one compact JSON object
  per line), `logfile`/`debugfile` in heartbeat's file format, syslog via /dev/log
  with `logfacility`. `LogSink.close()` removes everything `setup()` added.
* `LogSink.log_effect(effect, now)` logs a notice with its fields bound
  (`peer`, `link`, `iface`, `event`, …) and rate-limits dropped-packet lines per
  (reason, source), so a flood of bad packets cannot flood the log.

Levels are heartbeat's: EMERG ALERT CRIT ERROR WARN notice info debug. They map
onto loguru's levels (notice = SUCCESS); the exact heartbeat name travels in the
record's `hb_level` extra, so EMERG/ALERT/CRIT survive the mapping.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import sys
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from logging.handlers import SysLogHandler
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TextIO, assert_never

from loguru import logger

from hbmon.config.model import LogSettings
from hbmon.core.events import (
    AnnounceGroup,
    BeatReceived,
    CommUp,
    ConflictKind,
    ControlReply,
    Effect,
    GroupState,
    GroupTransition,
    LateBeat,
    LinkStatus,
    LinkTransition,
    LocalStatusChanged,
    NodeDead,
    NodeStatus,
    NodeTransition,
    OwnershipConflict,
    PacketDropped,
    PacketsLost,
    PacketsMissing,
    PacketsReordered,
    PartitionHealed,
    PeerRestarted,
    PeerSilent,
    PingObserved,
    PingTransition,
    ProbeGroup,
    ResourceLog,
    RttMeasured,
    SendMessage,
    ShutdownComplete,
    ShutdownNotice,
    StandbyRefused,
    StartGroup,
    StopGroup,
    TakeoverBlocked,
    TakeoverComplete,
    Threshold,
)
from hbmon.errors import AUTH_FAILURES, DropReason

if TYPE_CHECKING:
    from loguru import Message, Record

__all__ = [
    "HB_LEVELS",
    "DropLimiter",
    "HbLevel",
    "LogSink",
    "describe",
    "event_name",
    "log_effect",
    "setup",
]

HbLevel = Literal["EMERG", "ALERT", "CRIT", "ERROR", "WARN", "notice", "info", "debug"]

# heartbeat's level names in syslog priority order (cl_log.c log_prio[]): index = priority.
HB_LEVELS: tuple[HbLevel, ...] = (
    "EMERG",
    "ALERT",
    "CRIT",
    "ERROR",
    "WARN",
    "notice",
    "info",
    "debug",
)
_PRIORITY: dict[str, int] = {name: n for n, name in enumerate(HB_LEVELS)}
_TO_LOGURU: dict[str, str] = {
    "EMERG": "CRITICAL",
    "ALERT": "CRITICAL",
    "CRIT": "CRITICAL",
    "ERROR": "ERROR",
    "WARN": "WARNING",
    "notice": "SUCCESS",
    "info": "INFO",
    "debug": "DEBUG",
}
_FROM_LOGURU: dict[str, HbLevel] = {
    "CRITICAL": "CRIT",
    "ERROR": "ERROR",
    "WARNING": "WARN",
    "SUCCESS": "notice",
    "INFO": "info",
    "DEBUG": "debug",
    "TRACE": "debug",
}
# Per-beat lines (BeatReceived, RttMeasured, PingObserved) go out at TRACE, which only
# the sinks of a `debug >= 1` setup accept; they still print as `debug`.
_CHATTY = "TRACE"
_HB_EXTRA = "hb_level"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
IDENT = "hbmon"
DROP_WINDOW_S = 10.0


def _loguru_version() -> tuple[int, ...]:
    import loguru

    text = str(getattr(loguru, "__version__", "0"))  # not in loguru's type stubs
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


# loguru >= 0.7 reopens a file that logrotate moved away (`watch`); 0.6 (Debian 12)
# cannot, so the shipped logrotate file truncates in place (copytruncate) instead.
_REOPEN_IF_MOVED: dict[str, Any] = {"watch": True} if _loguru_version() >= (0, 7) else {}


# ------------------------------------------------------------------ wording --
def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# Long hex runs (digests), or long base64 runs with a digit in them (keys, digests).
_SECRET_LIKE = re.compile(r"\b[0-9A-Fa-f]{16,}\b|(?=[A-Za-z+/]*[0-9])[A-Za-z0-9+/]{24,}={0,2}")


def redact(text: str) -> str:
    """Blank anything that looks like a digest or key (long hex or base64 runs)."""
    return _SECRET_LIKE.sub("<redacted>", text)


def _drop_line(e: PacketDropped) -> str:
    who = e.node if e.node else e.source or "?"
    origin = f"from {e.source or '?'} on {e.iface or '?'}"
    detail = redact(e.detail) if e.detail else ""
    match e.reason:
        case DropReason.REPLAY:
            tail = f" [{detail}]" if detail else ""
            return f"should_drop_message: attempted replay attack [{who}]?{tail} ({origin})"
        case DropReason.UNKNOWN_NODE:
            return f"process_status_message: bad node [{who}] in message ({origin})"
        case r if r in AUTH_FAILURES:
            # heartbeat prints both digests here; hbmon never prints digests or keys.
            tail = f": {detail}" if detail else ""
            return f"authtoken does not match, message from [{who}] dropped ({origin}){tail}"
        case DropReason.MALFORMED:
            tail = f": {detail}" if detail else ""
            return f"Dropped malformed packet ({origin}){tail}"
        case _:  # a reason added later
            return f"Dropped packet from [{who}]: {e.reason} ({origin})"


def describe(effect: Effect, *, local_node: str | None = None) -> tuple[HbLevel, str] | None:
    """(heartbeat level, line) for a notice, or None for actions and per-beat notices.

    Wording is heartbeat 3.0.6's wherever heartbeat logs the same fact.
    """
    match effect:
        case LateBeat(node=node, interval_s=interval, threshold=threshold):
            if threshold == Threshold.DEADTIME:
                return (
                    "CRIT",
                    f"Late heartbeat: Node {node}: interval {_ms(interval)} ms (> deadtime)",
                )
            return "WARN", f"Late heartbeat: Node {node}: interval {_ms(interval)} ms"
        case PeerSilent(node=node, silent_s=silent, threshold=threshold):
            # hbmon only: heartbeat says nothing until the late beat arrives. At
            # deadtime `node X: is dead` usually follows at once, so that one is quiet.
            line = f"No heartbeat from node {node} for {_ms(silent)} ms (> {threshold})"
            return ("WARN" if threshold == Threshold.WARNTIME else "info"), line
        case NodeDead(node=node):
            return "WARN", f"node {node}: is dead"
        case NodeTransition(node=node, old=old, new=new, reason=reason):
            if new in (NodeStatus.DEAD, NodeStatus.INIT):
                # `node X: is dead` (NodeDead) is heartbeat's line for this; keep the why.
                why = f" ({reason})" if reason else ""
                return "debug", f"node {node}: status {old} -> {new}{why}"
            return "info", f"Status update for node {node}: status {new}"
        case LinkTransition(node=node, iface=iface, new=new):
            return "info", f"Link {node}:{iface} {'up' if new == LinkStatus.UP else 'dead'}."
        case PacketsMissing(node=node, count=count, last=last, seq=seq):
            return "WARN", f"{count} lost packet(s) for [{node}] [{last}:{seq}]"
        case PacketsLost(node=node, count=count):
            return "WARN", f"{count} lost packet(s) from [{node}] not recovered"
        case PacketsReordered(node=node, count=count):
            return (
                "info",
                f"{count} late packet(s) from [{node}] filled the gap (reordered, not lost)",
            )
        case PacketDropped():
            return "ERROR", _drop_line(effect)
        case PeerRestarted(node=node):
            return "info", f"Heartbeat restart on node {node}"
        case PartitionHealed(node=node):
            return "CRIT", f"Cluster node {node} returning after partition."
        case ShutdownNotice(node=node):
            return "info", f"Received shutdown notice from '{node}'."
        case CommUp():
            return "info", "Comm_now_up(): updating status to active"
        case LocalStatusChanged(status=status):
            return "info", f"Local status now set to: '{status}'"
        case PingTransition(node=node, new=new):
            if new == NodeStatus.DEAD:
                return "WARN", f"node {node}: is dead"
            return "info", f"Status update for node {node}: status {new}"
        case ShutdownComplete():
            who = f"{local_node} " if local_node else ""
            return "info", f"{who}Heartbeat shutdown complete."
        case GroupTransition(key=key, new=new, reason=reason, detail=detail):
            return _group_line(key, new, detail or (reason.value if reason else ""))
        case TakeoverComplete(reason=reason, keys=keys, duration_s=duration, peer=peer):
            src = f" from {peer}" if peer else ""
            return (
                "info",
                f"Takeover ({reason}){src} complete: {len(keys)} group(s) in "
                f"{_ms(duration)} ms [{', '.join(keys)}]",
            )
        case TakeoverBlocked(keys=keys, why=why):
            return "CRIT", f"Not taking over [{', '.join(keys)}]: {why}"
        case OwnershipConflict(key=key, kind=kind, resolution=resolution):
            if kind is ConflictKind.DUAL:
                return "ERROR", f"Both machines own resource group {key}: {resolution}"
            return "ERROR", f"No one owns resource group {key}: {resolution}"
        case ResourceLog(level=level, text=text):
            return _hb_level_or_info(level), text
        case StandbyRefused(text=text):
            return "info", text
        case ControlReply(logged=True):
            return None  # the refusal, timeout or abort that ended it is logged
        case ControlReply(ok=ok, message=message):
            return ("info" if ok else "WARN"), message
        case (
            BeatReceived()
            | RttMeasured()
            | PingObserved()
            | SendMessage()
            | StartGroup()
            | StopGroup()
            | ProbeGroup()
            | AnnounceGroup()
        ):
            return None
        case _:
            assert_never(effect)


def _group_line(key: str, new: GroupState, reason: str) -> tuple[HbLevel, str]:
    why = f" ({reason})" if reason else ""
    match new:
        case GroupState.STARTING:
            return "info", f"Taking over resource group {key}{why}"
        case GroupState.HELD:
            return "info", f"Acquired resource group {key}"
        case GroupState.STOPPING:
            return "info", f"Releasing resource group {key}{why}"
        case GroupState.RELEASED:
            return "info", f"Released resource group {key}"
        case GroupState.FAILED:
            return "CRIT", f"Resource group {key} failed{why}"
        case _:
            assert_never(new)


def _hb_level_or_info(level: str) -> HbLevel:
    for known in HB_LEVELS:
        if known == level:
            return known
    return "info"


def _follow_ups(effect: Effect) -> tuple[tuple[HbLevel, str], ...]:
    """Lines heartbeat logs right after the main one."""
    if isinstance(effect, PartitionHealed):
        return (("WARN", "Deadtime value may be too small."),)
    return ()


def _chatty_line(effect: Effect) -> str | None:
    """Per-beat detail, logged only at debug >= 1."""
    match effect:
        case BeatReceived(node=node, iface=iface, interval_s=interval, seq=seq):
            gap = f", interval {_ms(interval)} ms" if interval is not None else ""
            return f"Heartbeat from {node} on {iface}: seq {seq:x}{gap}"
        case RttMeasured(node=node, iface=iface, rtt_s=rtt):
            return f"RTT to {node} via {iface}: {rtt * 1000:.3f} ms"
        case PingObserved(node=node, address=address, rtt_s=rtt):
            result = f"{rtt * 1000:.3f} ms" if rtt is not None else "no reply"
            return f"Ping {node} ({address}): {result}"
        case _:
            return None


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def event_name(effect: Effect) -> str:
    """`LateBeat` -> `late_beat`."""
    return _CAMEL.sub("_", type(effect).__name__).lower()


def _fields(effect: Effect) -> dict[str, object]:
    """The effect's scalar fields for structured logs; its `node` is bound as `peer`
    (in JSON, `node` is the local node)."""
    out: dict[str, object] = {"event": event_name(effect)}
    for f in fields(effect):
        v = getattr(effect, f.name)
        if v is None:
            continue
        if isinstance(v, Enum):
            v = v.value
        elif not isinstance(v, str | int | float | bool):
            continue  # e.g. SendMessage.message
        if f.name == "detail" and isinstance(v, str):
            v = redact(v)
        out["peer" if f.name == "node" else f.name] = v
    iface, peer = out.get("iface"), out.get("peer")
    if isinstance(effect, LinkTransition | BeatReceived | RttMeasured) and iface and peer:
        out["link"] = f"{iface}/{peer}"
    return out


# --------------------------------------------------------------- rate limit --
@dataclass(slots=True)
class _Window:
    start: float
    suppressed: int = 0


class DropLimiter:
    """At most one line per key per `window` seconds; the next line carries the
    number suppressed meanwhile. Time comes from the caller (`now`, monotonic).

    Memory is bounded: beyond `max_keys` (spoofed sources), expired windows are
    forgotten first, then the oldest ones.
    """

    def __init__(self, window: float = DROP_WINDOW_S, max_keys: int = 4096) -> None:
        self.window = window
        self.max_keys = max_keys
        self._windows: dict[Hashable, _Window] = {}

    def allow(self, key: Hashable, now: float) -> tuple[bool, int]:
        """(log this one?, how many were suppressed since the last logged one)."""
        w = self._windows.get(key)
        if w is not None and now - w.start < self.window:
            w.suppressed += 1
            return False, 0
        suppressed = w.suppressed if w is not None else 0
        self._windows.pop(key, None)
        self._windows[key] = _Window(now)  # insertion order = window start order
        if len(self._windows) > self.max_keys:
            self._prune(now)
        return True, suppressed

    def _prune(self, now: float) -> None:
        for k in [k for k, w in self._windows.items() if now - w.start >= self.window]:
            del self._windows[k]
        while len(self._windows) > self.max_keys:
            del self._windows[next(iter(self._windows))]

    def __len__(self) -> int:
        return len(self._windows)


# ----------------------------------------------------------------- logging --
def log_effect(
    effect: Effect,
    *,
    now: float | None = None,
    limiter: DropLimiter | None = None,
    local_node: str | None = None,
    chatty: bool = True,
) -> None:
    """Log one notice with its fields bound. Dropped-packet lines go through
    `limiter` when both it and `now` are given (`LogSink.log_effect` does that).
    `chatty=False` skips the per-beat lines without building them: no sink takes
    them below debug 1, and building them for every beat is most of an idle
    agent's logging cost."""
    described = describe(effect, local_node=local_node)
    if described is None:
        if not chatty:
            return
        line = _chatty_line(effect)
        if line is not None:
            logger.bind(**_fields(effect), hb_level="debug").log(_CHATTY, line)
        return
    bound = _fields(effect)
    level, text = described
    if isinstance(effect, PacketDropped) and limiter is not None and now is not None:
        ok, suppressed = limiter.allow((effect.reason, effect.source), now)
        if not ok:
            return
        if suppressed:
            text = f"{text} (suppressed {suppressed} similar)"
            bound["suppressed"] = suppressed
    logger.bind(**bound, hb_level=level).log(_TO_LOGURU[level], text)
    for level2, text2 in _follow_ups(effect):
        logger.bind(**bound, hb_level=level2).log(_TO_LOGURU[level2], text2)


def hb_level(record: Record) -> HbLevel:
    """The heartbeat level name of a loguru record."""
    name = record["extra"].get(_HB_EXTRA)
    if isinstance(name, str) and name in _PRIORITY:
        return HB_LEVELS[_PRIORITY[name]]
    lvl = record["level"]
    if lvl.name in _FROM_LOGURU:
        return _FROM_LOGURU[lvl.name]
    for no, hb in ((50, "CRIT"), (40, "ERROR"), (30, "WARN"), (25, "notice"), (20, "info")):
        if lvl.no >= no:
            return hb  # type: ignore[return-value]
    return "debug"


def _timestamp(t: datetime) -> str:
    """cl_log.c syslog_timestamp(): `Nov 25 12:35:32`, English month, zero-padded day."""
    return f"{_MONTHS[t.month - 1]} {t.day:02d} {t:%H:%M:%S}"


def _exception_text(record: Record) -> str:
    exc = record["exception"]
    if exc is None or exc.type is None:
        return ""
    return "".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip("\n")


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _file_format(node: str) -> Callable[[Record], str]:
    """loguru format function for logfile/debugfile (heartbeat's line format)."""
    prefix = _escape(f"{node} {IDENT}: ")

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


class _StreamSink:
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
            prio = _PRIORITY[level]
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
            if k != _HB_EXTRA:
                obj.setdefault(k, v)
        if record["name"] and not str(record["name"]).startswith("hbmon.logs"):
            obj.setdefault("logger", record["name"])
        if exc:
            obj["exception"] = exc
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


class _SyslogSink:
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
        pri = self.facility * 8 + _PRIORITY[level]
        stamp = f"{_MONTHS[record['time'].month - 1]} {record['time']:%e %H:%M:%S}"
        body = f"<{pri}>{stamp} {IDENT}: [{self.pid}]: {level}: {record['message']}"
        # syslog down or full: never block or crash the daemon over a log line
        with contextlib.suppress(OSError):
            self.sock.sendto(body.encode("utf-8", "replace")[:8192], self.address)

    def close(self) -> None:
        self.sock.close()


class _InterceptHandler(logging.Handler):
    """stdlib `logging` (asyncio, pyroute2, icmplib) into loguru."""

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


class LogSink:
    """What `setup()` installed; `close()` removes it, `set_debug()` changes verbosity."""

    def __init__(
        self,
        *,
        fmt: Literal["text", "json"],
        node: str,
        settings: LogSettings,
        debug: int,
        stderr: TextIO,
        journal: bool,
        syslog_address: str,
    ) -> None:
        self.fmt = fmt
        self.node = node
        self.settings = settings
        self.debug = debug
        self.stderr = stderr
        self.journal = journal
        self.syslog_address = syslog_address
        self.limiter = DropLimiter()
        self._ids: list[int] = []
        self._syslog: _SyslogSink | None = None
        self._intercept: _InterceptHandler | None = None
        self._root_level = logging.getLogger().level

    # ------------------------------------------------------------------- API --
    def log_effect(self, effect: Effect, now: float | None = None) -> None:
        """`log_effect` with this sink's drop limiter and local node name."""
        log_effect(
            effect, now=now, limiter=self.limiter, local_node=self.node, chatty=self.debug >= 1
        )

    def set_debug(self, level: int) -> None:
        """Change verbosity at runtime (SIGUSR1/SIGUSR2), reinstalling the sinks."""
        self.debug = max(0, level)
        self._remove_sinks()
        self._install()
        if self._intercept is not None:
            logging.getLogger().setLevel(self._stdlib_level())

    def close(self) -> None:
        self._remove_sinks()
        if self._syslog is not None:
            self._syslog.close()
            self._syslog = None
        if self._intercept is not None:
            root = logging.getLogger()
            root.removeHandler(self._intercept)
            root.setLevel(self._root_level)
            self._intercept = None

    # -------------------------------------------------------------- install --
    def _remove_sinks(self) -> None:
        for handler_id in self._ids:
            with contextlib.suppress(ValueError):  # already removed by someone else
                logger.remove(handler_id)
        self._ids = []

    def _install(self) -> list[str]:
        """Add the sinks; returns warnings to log once they are all in place."""
        warnings: list[str] = []
        chatty = self.debug >= 1
        self._ids.append(
            logger.add(
                _StreamSink(self.stderr, self.fmt, self.node, self.journal),
                level=_CHATTY if chatty else "INFO",
                format=lambda _r: "{message}",
                colorize=False,
                catch=True,
            )
        )
        file_fmt = _file_format(self.node)
        if self.settings.logfile is not None:
            self._add_file(self.settings.logfile, "INFO", file_fmt, warnings)
        if self.settings.debugfile is not None:
            level = _CHATTY if chatty else "DEBUG"
            self._add_file(self.settings.debugfile, level, file_fmt, warnings)
        if self._syslog is not None:
            self._ids.append(
                logger.add(
                    self._syslog,
                    level=_CHATTY if chatty else "INFO",
                    format=lambda _r: "{message}",
                    colorize=False,
                    catch=True,
                )
            )
        return warnings

    def _add_file(
        self, path: Path, level: str, fmt: Callable[[Record], str], warnings: list[str]
    ) -> None:
        try:
            self._ids.append(
                logger.add(
                    _escape(str(path)),
                    level=level,
                    format=fmt,
                    colorize=False,
                    backtrace=False,
                    diagnose=False,  # never print local variables (keys) in tracebacks
                    encoding="utf-8",
                    catch=True,
                    **_REOPEN_IF_MOVED,
                )
            )
        except OSError as exc:
            warnings.append(f"Cannot open {path}: {exc.strerror or exc}")

    def _open_syslog(self) -> list[str]:
        facility_name = self.settings.logfacility
        if not facility_name or facility_name == "none":
            return []
        if self.journal:
            # /dev/log is journald's socket too: each line would be stored twice.
            # The journal forwards stderr lines to syslog with the unit's SyslogFacility=.
            return []
        facility = SysLogHandler.facility_names.get(facility_name.lower())
        if facility is None:
            return [f"Log facility({facility_name}) not valid; not logging to syslog"]
        if not os.path.exists(self.syslog_address):
            return [
                f"logfacility {facility_name}: {self.syslog_address} does not exist;"
                " not logging to syslog"
            ]
        self._syslog = _SyslogSink(self.syslog_address, facility)
        return []

    def _stdlib_level(self) -> int:
        return logging.DEBUG if self.debug >= 2 else logging.WARNING

    def _intercept_stdlib(self) -> None:
        root = logging.getLogger()
        for h in [h for h in root.handlers if isinstance(h, _InterceptHandler)]:
            root.removeHandler(h)  # left by an earlier setup() that was never closed
        self._intercept = _InterceptHandler()
        root.addHandler(self._intercept)
        root.setLevel(self._stdlib_level())


def setup(
    *,
    fmt: Literal["text", "json"],
    node: str,
    settings: LogSettings,
    debug: int = 0,
    stderr: TextIO | None = None,
    journal: bool | None = None,
    syslog_address: str = "/dev/log",
) -> LogSink:
    """Configure loguru's logger for the daemon (call once, from the CLI).

    Removes every existing handler (loguru's default one included). `debug`
    (`-d`) and `settings.debug` (ha.cf `debug`): the higher wins; >= 1 adds per-beat
    lines to stderr and the debugfile. `journal` None = detect from $JOURNAL_STREAM.
    """
    stream = stderr if stderr is not None else sys.stderr
    if journal is None:
        journal = stream_is_journal(stream)
    sink = LogSink(
        fmt=fmt,
        node=node,
        settings=settings,
        debug=max(debug, settings.debug),
        stderr=stream,
        journal=journal,
        syslog_address=syslog_address,
    )
    logger.remove()
    warnings = sink._open_syslog()
    warnings += sink._install()
    sink._intercept_stdlib()
    for text in warnings:
        logger.bind(hb_level="WARN").warning(text)
    return sink
