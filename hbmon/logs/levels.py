"""heartbeat's log levels, and how they ride on loguru's.

heartbeat's names, in syslog priority order (cl_log.c log_prio[]): EMERG ALERT
CRIT ERROR WARN notice info debug. loguru has fewer levels, so each record also
carries heartbeat's exact name in its `hb_level` extra (notice = SUCCESS; EMERG,
ALERT and CRIT are all CRITICAL to loguru and keep their name that way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from loguru import Record

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
PRIORITY: dict[str, int] = {name: n for n, name in enumerate(HB_LEVELS)}
TO_LOGURU: dict[str, str] = {
    "EMERG": "CRITICAL",
    "ALERT": "CRITICAL",
    "CRIT": "CRITICAL",
    "ERROR": "ERROR",
    "WARN": "WARNING",
    "notice": "SUCCESS",
    "info": "INFO",
    "debug": "DEBUG",
}
FROM_LOGURU: dict[str, HbLevel] = {
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
CHATTY = "TRACE"
HB_EXTRA = "hb_level"


def hb_level(record: Record) -> HbLevel:
    """The heartbeat level name of a loguru record."""
    name = record["extra"].get(HB_EXTRA)
    if isinstance(name, str) and name in PRIORITY:
        return HB_LEVELS[PRIORITY[name]]
    lvl = record["level"]
    if lvl.name in FROM_LOGURU:
        return FROM_LOGURU[lvl.name]
    for no, hb in ((50, "CRIT"), (40, "ERROR"), (30, "WARN"), (25, "notice"), (20, "info")):
        if lvl.no >= no:
            return hb  # type: ignore[return-value]
    return "debug"
