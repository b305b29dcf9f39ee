"""`cl_status hbparameter`: the values heartbeat 3.0.6 answers `get_parameter` with.

heartbeat records the directives of its parameter table as written in ha.cf
(`deadtime 2` answers `2`), fills fixed defaults for those not given, and
derives a few (`warntime`, `initdead`, `deadping` as `<n>ms`, `udpport`,
`debug`, `use_logd`, `/dev/null` log files under syslog). Node, media, ping and
other whole-line directives are not parameters: asking for them fails.
"""

from __future__ import annotations

from hbmon import __version__
from hbmon.config.model import Config

HEARTBEAT_VERSION = "3.0.6"
# heartbeat's parameter table (config.c `Directives` with record_value set) and the
# fixed default of each that has one.
RECORDED: dict[str, str | None] = {
    "cluster": "linux-ha",
    "hopfudge": "1",
    "keepalive": "1000ms",
    "deadtime": "30000ms",
    "deadping": None,
    "initdead": None,
    "warntime": None,
    "watchdog": None,
    "baud": "19200",
    "udpport": None,
    "logfacility": None,
    "logfile": None,
    "debugfile": None,
    "auto_failback": "legacy",
    "rtprio": None,
    "hbgenmethod": "file",
    "realtime": "true",
    "debug": None,
    "msgfmt": "classic",
    "use_logd": None,
    "conn_logd_time": "60",
    "log_badpack": "true",
    "syslogmsgfmt": "true",
    "coredumps": "true",
    "coreroot": None,
    "crm_daemon_dir": None,
    "crmd_spawns_pengine": None,
    "pacemaker": "false",
    "autojoin": "none",
    "uuidfrom": "file",
    "compression": "zlib",
    "compression_threshold": "2",
    "traditional_compression": "no",
    "max_rexmit_delay": "250",
    "record_config_changes": "on",
    "record_pengine_inputs": "on",
    "enable_config_writes": "on",
    "memreserve": "6500",
    "quorum_server": None,
}
NO_FACILITY = ("", "none")
DEVNULL = "/dev/null"


def hbversion() -> str:
    """What `hbparameter -p hbversion` and `hbstatus -v` say: the protocol hbmon speaks."""
    return f"{HEARTBEAT_VERSION} (hbmon {__version__})"


def heartbeat_parameters(config: Config) -> dict[str, str]:
    """name -> value, as heartbeat would answer for this configuration."""
    given = {name: value for name, value in config.raw if name in RECORDED}
    out = {name: value for name, value in RECORDED.items() if value is not None}
    t = config.timers
    # What hbmon runs with, in heartbeat's spelling; equal to heartbeat's defaults
    # when ha.cf leaves them out (and the values of a YAML configuration).
    out.update(
        keepalive=f"{t.keepalive_ms}ms",
        deadtime=f"{t.deadtime_ms}ms",
        warntime=f"{t.warntime_ms}ms",
        initdead=f"{t.initdead_ms}ms",
        deadping=f"{t.deadping_ms}ms",
        udpport=str(config.udpport),
        hopfudge=str(config.hopfudge),
        auto_failback=config.auto_failback.value,
        debug="0",
    )
    out.update(given)
    facility = out.get("logfacility", "")
    if facility in NO_FACILITY:
        if not any(k in given for k in ("logfile", "debugfile", "use_logd")):
            out["use_logd"] = "yes"
    else:
        out.setdefault("logfile", DEVNULL)
        out.setdefault("debugfile", DEVNULL)
    out["hbversion"] = hbversion()
    return out
