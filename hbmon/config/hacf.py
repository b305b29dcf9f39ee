"""ha.cf -> `HaCf`: what the file says, with the line each value came from.

Only syntax and per-directive rules live here (spec §1.1–1.2). Defaults and
cross-field rules (deadtime vs keepalive, current node…) are applied later, on the
model, so the YAML form obeys them too. An invalid value is reported and
dropped, never half-applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hbmon.config.accept import Accepted, respawn_label
from hbmon.config.directives import API_CLIENTS, DIRECTIVES, Support, unsupported_note
from hbmon.config.hacfmedia import MediaLines
from hbmon.config.hacfstonith import parse_stonith, parse_stonith_host
from hbmon.config.lexer import (
    Line,
    ascii_lower,
    content_lines,
    split_directive,
    split_values,
    split_words,
)
from hbmon.config.limits import (
    MAX_DEBUG,
    MAX_HOPFUDGE,
)
from hbmon.config.model import (
    AutoFailback,
    FenceDevice,
    Medium,
    PingNode,
    RespawnClient,
    WireFormat,
)
from hbmon.config.problems import Problem
from hbmon.config.values import (
    SYSLOG_FACILITIES,
    parse_atoi,
    parse_bool,
    parse_time_ms,
)


@dataclass(frozen=True, slots=True)
class HaCf:
    """Values as ha.cf gives them; None = not written (the model's default applies)."""

    nodes: tuple[str, ...] = ()
    keepalive_ms: int | None = None
    deadtime_ms: int | None = None
    warntime_ms: int | None = None
    initdead_ms: int | None = None
    deadping_ms: int | None = None
    udpport: int | None = None
    media: tuple[Medium, ...] = ()
    media_lines: tuple[int, ...] = ()
    ping_nodes: tuple[PingNode, ...] = ()
    ping_lines: tuple[int, ...] = ()
    auto_failback: AutoFailback | None = None
    msgfmt: WireFormat | None = None
    hopfudge: int | None = None
    max_rexmit_delay_ms: int | None = None
    logfacility: str | None = None  # "none" is stored as None
    logfile: str | None = None
    debugfile: str | None = None
    use_logd: bool | None = None
    debug: int | None = None
    raw: tuple[tuple[str, str], ...] = ()
    respawn: tuple[RespawnClient, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    # Unsupported directives run without because hbmon-accept lists them.
    accepted: frozenset[str] = frozenset()
    fencing: tuple[FenceDevice, ...] = ()
    # Last line on which each directive appeared, to place cross-field problems.
    lines: Mapping[str, int] = field(default_factory=dict)


# Directives hbmon accepts without acting on them (directives.py says why),
# except those with a handler of their own below.
_IGNORED = frozenset(d.name for d in DIRECTIVES if d.support is Support.TUNING) - {
    "apiauth",
    "uuidfrom",
    "hbgenmethod",
    "conn_logd_time",
}
_IGNORED_BOOLEANS = frozenset(
    {
        "realtime",
        "coredumps",
        "log_badpack",
        "syslogmsgfmt",
        "traditional_compression",
        "normalpoll",
        "crmd_spawns_pengine",
        "record_config_changes",
        "record_pengine_inputs",
        "enable_config_writes",
    }
)
# Directives whose value is the rest of the line (spec §1.1).
_WHOLE_LINE = frozenset(
    {
        "ucast",
        "mcast",
        "ucast6",
        "mcast6",
        "ping_group",
        "apiauth",
        "respawn",
        "stonith",
        "stonith_host",
        "failfast",
    }
)
# Single-valued directives: a repeat silently overrides in heartbeat; we say so.
_SCALAR = frozenset(
    {
        "keepalive",
        "deadtime",
        "warntime",
        "initdead",
        "deadping",
        "hopfudge",
        "auto_failback",
        "nice_failback",
        "logfacility",
        "logfile",
        "debugfile",
        "use_logd",
        "debug",
        "msgfmt",
        "max_rexmit_delay",
        "conn_logd_time",
        "autojoin",
        "uuidfrom",
        "hbgenmethod",
    }
)


class _Parser:
    """One pass over one file (media and ping lines: `MediaLines`)."""

    def __init__(self, filename: str, accepted: Accepted) -> None:
        self.filename = filename
        self.accepted = accepted
        self.accepted_used: set[str] = set()
        self.problems: list[Problem] = []
        self.values: dict[str, object] = {}
        self.lines: dict[str, int] = {}
        self.nodes: list[str] = []
        self.m = MediaLines(self)
        self.raw: list[tuple[str, str]] = []
        self.respawn: list[RespawnClient] = []
        self.env: list[tuple[str, str]] = []
        self.fencing: list[FenceDevice] = []
        self.crm_line = 0
        self.line = 0
        self.option_handlers: dict[str, Callable[[str], bool]] = {
            "node": self._node,
            "keepalive": self._time("keepalive", positive=True),
            "deadtime": self._time("deadtime"),
            "initdead": self._time("initdead"),
            "deadping": self._time("deadping"),
            "warntime": self._time("warntime", positive=True),
            "conn_logd_time": self._time("conn_logd_time"),
            "udpport": self.m.udpport,
            "bcast": self.m.bcast,
            "udp": self.m.udp,
            "ping": self.m.ping,
            "ping6": self.m.ping6,
            "baud": self.m.baud,
            "hopfudge": self._int("hopfudge", 0, MAX_HOPFUDGE),
            "debug": self._int("debug", 0, MAX_DEBUG),
            "max_rexmit_delay": self._int("max_rexmit_delay", 1, 2**31 - 1),
            "auto_failback": self._auto_failback,
            "nice_failback": self._nice_failback,
            "logfacility": self._logfacility,
            "logfile": self._path("logfile"),
            "debugfile": self._path("debugfile"),
            "use_logd": self._use_logd,
            "msgfmt": self._msgfmt,
            "autojoin": self._autojoin,
            "crm": self._crm,
            "pacemaker": self._crm,
            "uuidfrom": self._choice("uuidfrom", ("file", "nodename")),
            "hbgenmethod": self._choice("hbgenmethod", ("file", "time")),
            "serial": self.m.serial,
            "env": self._env,
            "watchdog": self._unsupported_value("watchdog"),
            "use_apphbd": self._use_apphbd,
        }
        self.line_handlers: dict[str, Callable[[str], bool]] = {
            "ucast": self.m.ucast,
            "mcast": self.m.mcast,
            "ucast6": self.m.ucast6,
            "mcast6": self.m.mcast6,
            "ping_group": self.m.ping_group,
            "apiauth": self._apiauth,
            "respawn": self._respawn,
            "stonith": self._fence(parse_stonith),
            "stonith_host": self._fence(parse_stonith_host),
            "failfast": self._unsupported_line("failfast"),
            # Media plugins hbmon does not have (nor does Debian's heartbeat).
            **{
                name: self._unsupported_line(name) for name in ("hbaping", "rds", "tipc", "openais")
            },
        }

    # ------------------------------------------------------------ reporting --
    def error(self, message: str) -> bool:
        self.problems.append(Problem(self.filename, self.line, message))
        return False

    def warn(self, message: str) -> None:
        self.problems.append(Problem(self.filename, self.line, message, warning=True))

    def unsupported(self, label: str, lost: str) -> bool:
        """A directive hbmon does not implement: an error unless hbmon-accept lists it.

        Returns True when accepted (the caller goes on without it)."""
        where = self.accepted.where(label)
        if where is None:
            return self.error(
                f"{label} is not supported by hbmon: {lost}"
                f" (to run without it anyway, list [{label}] in {self.accepted.filename})"
            )
        self.accepted_used.add(label)
        self.warn(f"{label} is not supported by hbmon: {lost} ({where})")
        return True

    # --------------------------------------------------------------- driver --
    def parse(self, data: bytes) -> HaCf:
        lines, undecodable = content_lines(data)
        for number in undecodable:
            self.line = number
            self.error("line is not valid UTF-8 outside its comment")
        for line in lines:
            self._directive(line)
        return self._result()

    def _directive(self, line: Line) -> None:
        self.line = line.number
        directive, rest = split_directive(line.text)
        if directive in _SCALAR and directive in self.lines:
            self.warn(
                f"{directive} given again (first on line {self.lines[directive]});"
                " the last value wins"
            )
        if directive in self.line_handlers:
            self.lines[directive] = line.number
            if self.line_handlers[directive](rest):
                self.raw.append((directive, rest))
            return
        handler = self.option_handlers.get(directive)
        if handler is None and directive in _IGNORED:
            handler = self._ignored(directive)
        if handler is None:
            self.error(f"Illegal directive [{directive}] in {self.filename}")
            return
        self.lines[directive] = line.number
        values = split_values(rest)
        if not values:
            self.error(f"{directive}: missing value")
        previous: str | None = None
        for value in values:
            if previous is not None and value.lower() in {"ms", "msec", "us", "usec"}:
                self.error(
                    f"{directive}: [{previous} {value}] splits into two values at the space;"
                    f" write [{previous}{value}]"
                )
            elif handler(value):
                self.raw.append((directive, value))
            previous = value

    def _result(self) -> HaCf:
        v = self.values

        def get_int(key: str) -> int | None:
            x = v.get(key)
            return x if isinstance(x, int) and not isinstance(x, bool) else None

        def get_str(key: str) -> str | None:
            x = v.get(key)
            return x if isinstance(x, str) else None

        self._check_logd(get_str("logfile"), get_str("debugfile"), get_str("logfacility"))
        use_logd = v.get("use_logd")
        auto_failback = v.get("auto_failback")
        msgfmt = v.get("msgfmt")
        return HaCf(
            nodes=tuple(self.nodes),
            keepalive_ms=get_int("keepalive"),
            deadtime_ms=get_int("deadtime"),
            warntime_ms=get_int("warntime"),
            initdead_ms=get_int("initdead"),
            deadping_ms=get_int("deadping"),
            udpport=self.m.udpport_given,
            media=tuple(self.m.media),
            media_lines=tuple(self.m.media_lines),
            ping_nodes=tuple(self.m.ping_nodes),
            ping_lines=tuple(self.m.ping_lines),
            auto_failback=auto_failback if isinstance(auto_failback, AutoFailback) else None,
            msgfmt=msgfmt if isinstance(msgfmt, WireFormat) else None,
            hopfudge=get_int("hopfudge"),
            max_rexmit_delay_ms=get_int("max_rexmit_delay"),
            logfacility=get_str("logfacility"),
            logfile=get_str("logfile"),
            debugfile=get_str("debugfile"),
            use_logd=use_logd if isinstance(use_logd, bool) else None,
            debug=get_int("debug"),
            raw=tuple(self.raw),
            respawn=tuple(self.respawn),
            env=tuple(self.env),
            accepted=frozenset(self.accepted_used),
            fencing=tuple(self.fencing),
            lines=dict(self.lines),
        )

    def _check_logd(self, logfile: str | None, debugfile: str | None, facility: str | None) -> None:
        # heartbeat check_logd_usage: with no log target at all it uses logd, and
        # refuses an explicit `use_logd off` because nothing would be logged.
        if logfile or debugfile or facility:
            return
        if self.values.get("use_logd") is None:
            self.values["use_logd"] = True
        elif self.values["use_logd"] is False:
            self.line = self.lines.get("use_logd", 0)
            self.error("No log entry found in ha.cf and use_logd is set to off")

    # ------------------------------------------------------ option handlers --
    def _node(self, value: str) -> bool:
        name = ascii_lower(value)
        if name in self.nodes:
            self.warn(f"node [{name}] listed more than once")
            return True
        self.nodes.append(name)
        return True

    def _time(self, key: str, positive: bool = False) -> Callable[[str], bool]:
        def handle(value: str) -> bool:
            try:
                ms = parse_time_ms(value)
            except ValueError as exc:
                return self.error(f"Invalid {key} {exc}")
            if positive and ms <= 0:
                return self.error(f"Invalid {key} [{value}]: must be greater than 0")
            self.values[key] = ms
            return True

        return handle

    def _int(self, key: str, low: int, high: int) -> Callable[[str], bool]:
        def handle(value: str) -> bool:
            try:
                number, exact = parse_atoi(value, low, high)
            except ValueError as exc:
                return self.error(f"Invalid {key} {exc}")
            if not exact:
                self.warn(f"{key} [{value}] read as {number}; the text after the number is ignored")
            self.values[key] = number
            return True

        return handle

    def _path(self, key: str) -> Callable[[str], bool]:
        def handle(value: str) -> bool:
            self.values[key] = value
            return True

        return handle

    def _choice(self, key: str, allowed: tuple[str, ...]) -> Callable[[str], bool]:
        def handle(value: str) -> bool:
            if value not in allowed:
                return self.error(f"Invalid {key} directive [{value}]; use {' or '.join(allowed)}")
            return True

        return handle

    def _ignored(self, key: str) -> Callable[[str], bool]:
        def handle(value: str) -> bool:
            if key in _IGNORED_BOOLEANS:
                try:
                    parse_bool(value)
                except ValueError as exc:
                    return self.error(f"Invalid {key} {exc}")
            return True

        return handle

    def _auto_failback(self, value: str) -> bool:
        if value.lower() == "legacy":
            self.values["auto_failback"] = AutoFailback.LEGACY
            return True
        try:
            on = parse_bool(value)
        except ValueError:
            return self.error(f"Invalid auto_failback [{value}]; use on, off or legacy")
        self.values["auto_failback"] = AutoFailback.ON if on else AutoFailback.OFF
        return True

    def _nice_failback(self, value: str) -> bool:
        try:
            nice = parse_bool(value)
        except ValueError as exc:
            return self.error(f"Invalid nice_failback {exc}")
        # heartbeat logs these at ERROR level yet starts: the value is translated.
        if nice:
            self.values["auto_failback"] = AutoFailback.OFF
            self.warn(
                f"nice_failback flag is obsolete: 'nice_failback {value}' has been changed"
                " to 'auto_failback off'"
            )
        else:
            self.values["auto_failback"] = AutoFailback.LEGACY
            self.warn(
                f"nice_failback flag is obsolete: 'nice_failback {value}' has been strictly"
                " interpreted as 'auto_failback legacy'"
            )
        return True

    def _logfacility(self, value: str) -> bool:
        if value == "none":
            self.values.pop("logfacility", None)
            return True
        if value not in SYSLOG_FACILITIES:
            return self.error(f"Log facility({value}) not valid")
        self.values["logfacility"] = value
        return True

    def _use_logd(self, value: str) -> bool:
        try:
            self.values["use_logd"] = parse_bool(value)
        except ValueError as exc:
            return self.error(f"Invalid use_logd {exc}")
        return True

    def _msgfmt(self, value: str) -> bool:
        if value == "classic":
            self.values["msgfmt"] = WireFormat.CLASSIC
        elif value == "netstring":
            self.values["msgfmt"] = WireFormat.NETSTRING
        else:
            return self.error(f"Invalid msgfmt [{value}]; use classic or netstring")
        return True

    def _autojoin(self, value: str) -> bool:
        lowered = value.lower()
        if lowered == "none":
            return True
        if lowered in {"other", "any"}:
            return self.error(
                f"R1 style resource management conflicts with autojoin set [{value}]:"
                " hbmon manages haresources, so autojoin must be none"
            )
        return self.error(f"Invalid autojoin directive [{value}]")

    def _crm(self, value: str) -> bool:
        if self.crm_line:
            return self.error(
                f"pacemaker/crm directive used multiple times! (first on line {self.crm_line})"
            )
        self.crm_line = self.line
        try:
            if not parse_bool(value):
                return True
        except ValueError:
            if value.lower() not in {"respawn", "minimal", "manual", "ccm-only", "valgrind"}:
                return self.error(f"Invalid crm/pacemaker value [{value}]")
        return self.error(
            f"crm/pacemaker [{value}] is not supported: hbmon runs haresources clusters"
            " only; set it off"
        )

    def _env(self, value: str) -> bool:
        name, eq, text = value.partition("=")
        if not eq or not name:
            return self.error(f"env: invalid nvpair [{value}]; expected NAME=value")
        self.env.append((name, text))
        return True

    def _unsupported_value(self, key: str) -> Callable[[str], bool]:
        def handle(value: str) -> bool:
            return self.unsupported(key, unsupported_note(key))

        return handle

    def _use_apphbd(self, value: str) -> bool:
        try:
            on = parse_bool(value)
        except ValueError as exc:
            return self.error(f"Invalid use_apphbd {exc}")
        return self.unsupported("use_apphbd", unsupported_note("use_apphbd")) if on else True

    # -------------------------------------------------- whole-line handlers --
    def _apiauth(self, rest: str) -> bool:
        # heartbeat's set_api_authorization: a client name, then uid= and/or gid= lists.
        words = split_words(rest)
        if not words:
            return self.error("Invalid apiauth directive []: missing client name")
        seen: set[str] = set()
        for word in words[1:]:
            key = word[:4]
            if key not in ("uid=", "gid="):
                return self.error(f"Invalid apiauth directive [{rest}]: missing uid or gid")
            if key in seen:
                return self.error(f"Invalid apiauth directive [{rest}]: duplicate {key[:3]} list")
            seen.add(key)
        if not seen:
            return self.error(f"Invalid apiauth directive [{rest}]: give uid= or gid=")
        return True

    def _respawn(self, rest: str) -> bool:
        # heartbeat keeps the command as written (it goes to `sh -c`).
        user, command = split_directive(rest)
        if not user or not command:
            return self.error(f"Invalid respawn directive [{rest}]: expected USER /PATH [ARGS]")
        client = RespawnClient(user=user, command=command)
        if not client.path.startswith("/"):
            return self.error(f"Client child command [{client.path}] is not full path")
        lost = API_CLIENTS.get(client.program)
        if lost is not None:
            label = respawn_label(client.program)
            self.unsupported(
                label,
                f"{client.program} signs on to heartbeat's client API, which hbmon does not"
                f" have, so it is not run: {lost}",
            )
            return True
        self.respawn.append(client)
        return True

    def _fence(self, parse: Callable[[str, int], FenceDevice | str]) -> Callable[[str], bool]:
        def handle(rest: str) -> bool:
            device = parse(rest, self.line)
            if isinstance(device, str):
                return self.error(device)
            self.fencing.append(device)
            return True

        return handle

    def _unsupported_line(self, key: str) -> Callable[[str], bool]:
        def handle(rest: str) -> bool:
            return self.unsupported(key, unsupported_note(key))

        return handle


def parse_hacf(
    data: bytes, filename: str, accepted: Accepted | None = None
) -> tuple[HaCf, list[Problem]]:
    """`accepted`: what hbmon-accept lists (nothing when absent)."""
    parser = _Parser(filename, accepted if accepted is not None else Accepted())
    result = parser.parse(data)
    return result, parser.problems
