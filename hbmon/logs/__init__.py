"""Logging: heartbeat's wording and file format, on loguru.

    wording.py    a core notice as heartbeat's line (`describe`), and its fields
    levels.py     heartbeat's level names and how they ride on loguru's
    sinks.py      stderr (text/JSON, journald), heartbeat's log files, syslog
    ratelimit.py  at most one dropped-packet line per (reason, source) and window
    logsink.py    `setup()`, the `LogSink` it returns, `log_effect()`

Levels are heartbeat's: EMERG ALERT CRIT ERROR WARN notice info debug. They map
onto loguru's levels (notice = SUCCESS); the exact heartbeat name travels in the
record's `hb_level` extra, so EMERG/ALERT/CRIT survive the mapping.
"""

from hbmon.logs.levels import HB_LEVELS, HbLevel, hb_level
from hbmon.logs.logsink import LogSink, log_effect, setup
from hbmon.logs.ratelimit import DropLimiter
from hbmon.logs.sinks import stream_is_journal
from hbmon.logs.wording import describe, event_name, redact

__all__ = [
    "HB_LEVELS",
    "DropLimiter",
    "HbLevel",
    "LogSink",
    "describe",
    "event_name",
    "hb_level",
    "log_effect",
    "redact",
    "setup",
    "stream_is_journal",
]
