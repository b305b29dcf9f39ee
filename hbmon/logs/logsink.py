"""`setup()`: loguru's logger for the daemon; `LogSink`, what it installed; `log_effect`.

`setup()` owns loguru's logger: stderr always (text, or one compact JSON object
per line), `logfile`/`debugfile` in heartbeat's file format, syslog via /dev/log
with `logfacility`. `LogSink.close()` removes everything it added.
`LogSink.log_effect(effect, now)` logs a notice with its fields bound (`peer`,
`link`, `iface`, `event`, …) and rate-limits dropped-packet lines per (reason,
source).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import Literal, TextIO

from loguru import logger

from hbmon.config.model import LogSettings
from hbmon.core.events import Effect, PacketDropped
from hbmon.logs.levels import CHATTY, TO_LOGURU
from hbmon.logs.ratelimit import DropLimiter
from hbmon.logs.sinks import (
    InterceptHandler,
    StreamSink,
    SyslogSink,
    add_file,
    file_format,
    stream_is_journal,
)
from hbmon.logs.wording import SILENT, chatty_line, describe, fields_of, follow_ups


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
    if not chatty and type(effect) in SILENT:
        return  # the commonest case, decided before anything is built
    described = describe(effect, local_node=local_node)
    if described is None:
        if not chatty:
            return
        line = chatty_line(effect)
        if line is not None:
            logger.bind(**fields_of(effect), hb_level="debug").log(CHATTY, line)
        return
    bound = fields_of(effect)
    level, text = described
    if isinstance(effect, PacketDropped) and limiter is not None and now is not None:
        ok, suppressed = limiter.allow((effect.reason, effect.source), now)
        if not ok:
            return
        if suppressed:
            text = f"{text} (suppressed {suppressed} similar)"
            bound["suppressed"] = suppressed
    logger.bind(**bound, hb_level=level).log(TO_LOGURU[level], text)
    for level2, text2 in follow_ups(effect):
        logger.bind(**bound, hb_level=level2).log(TO_LOGURU[level2], text2)


class LogSink:
    """The daemon's logging: `open()` installs it (setup() does), `close()` removes it,
    `set_debug()` changes verbosity, `log_effect()` logs a core notice."""

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
        self._syslog: SyslogSink | None = None
        self._intercept: InterceptHandler | None = None
        self._root_level = logging.getLogger().level

    # ------------------------------------------------------------------- API --
    def open(self) -> None:
        """Install every sink (replacing loguru's own) and take over stdlib logging;
        what could not be installed is logged once the rest is in place."""
        logger.remove()
        warnings = self._open_syslog()
        warnings += self._install()
        self._intercept_stdlib()
        for text in warnings:
            logger.bind(hb_level="WARN").warning(text)

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
                StreamSink(self.stderr, self.fmt, self.node, self.journal),
                level=CHATTY if chatty else "INFO",
                format=lambda _r: "{message}",
                colorize=False,
                catch=True,
            )
        )
        if self.settings.logfile is not None:
            self._add_file(self.settings.logfile, "INFO", self.node, warnings)
        if self.settings.debugfile is not None:
            level = CHATTY if chatty else "DEBUG"
            self._add_file(self.settings.debugfile, level, self.node, warnings)
        if self._syslog is not None:
            self._ids.append(
                logger.add(
                    self._syslog,
                    level=CHATTY if chatty else "INFO",
                    format=lambda _r: "{message}",
                    colorize=False,
                    catch=True,
                )
            )
        return warnings

    def _add_file(self, path: Path, level: str, node: str, warnings: list[str]) -> None:
        try:
            self._ids.append(add_file(path, level, file_format(node)))
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
        self._syslog = SyslogSink(self.syslog_address, facility)
        return []

    def _stdlib_level(self) -> int:
        return logging.DEBUG if self.debug >= 2 else logging.WARNING

    def _intercept_stdlib(self) -> None:
        root = logging.getLogger()
        for h in [h for h in root.handlers if isinstance(h, InterceptHandler)]:
            root.removeHandler(h)  # left by an earlier setup() that was never closed
        self._intercept = InterceptHandler()
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
    sink.open()
    return sink
