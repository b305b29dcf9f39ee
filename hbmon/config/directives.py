"""Every ha.cf directive heartbeat 3.0.6 knows, and what hbmon does with it.

heartbeat's legal directives are its `Directives[]` and `WLdirectives[]` tables
(config.c) plus one per HBcomm plugin (a medium or a ping node). Each falls in
one of three classes:

    IMPLEMENTED   hbmon does what heartbeat does with it.
    TUNING        accepted, no effect on what the cluster does (the note says why):
                  process tuning, log formatting, Pacemaker-only settings.
    UNSUPPORTED   it changes what heartbeat does (a path, a ping node, fencing, a
                  client to run) and hbmon does not do it: an error, unless the
                  operator accepts it knowingly in `hbmon-accept` (see accept.py),
                  and then a warning at every load.

The parser (hacf.py) consults this table; docs/hacf-directives.md is its
rendering, and a test keeps the two and heartbeat's list in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Support(StrEnum):
    IMPLEMENTED = "implemented"
    TUNING = "tuning"
    UNSUPPORTED = "unsupported"


class Origin(StrEnum):
    """Where heartbeat declares the directive."""

    DIRECTIVES = "Directives[]"
    WHOLE_LINE = "WLdirectives[]"
    PLUGIN = "HBcomm plugin"
    ALIAS = "alias"


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    origin: Origin
    support: Support
    note: str  # IMPLEMENTED: how; TUNING: why it is safe to ignore; UNSUPPORTED: what is lost


_I, _T, _U = Support.IMPLEMENTED, Support.TUNING, Support.UNSUPPORTED
_D, _W, _P = Origin.DIRECTIVES, Origin.WHOLE_LINE, Origin.PLUGIN

_PACEMAKER_ONLY = "read by Pacemaker only; hbmon requires crm off"

DIRECTIVES: tuple[Directive, ...] = (
    # ---------------------------------------------------------- Directives[] --
    Directive("cluster", _D, _T, "the cluster's name, which only Pacemaker reads"),
    Directive("node", _D, _I, "cluster nodes, lowercased"),
    Directive("hopfudge", _D, _I, "message ttl = hopfudge + node count"),
    Directive("keepalive", _D, _I, "status interval"),
    Directive("deadtime", _D, _I, "advertised as `dt`; a peer is dead at its last beat + dt"),
    Directive("deadping", _D, _I, "dead time of ping nodes"),
    Directive("initdead", _D, _I, "dead time of every node before comm-up"),
    Directive("warntime", _D, _I, "late-heartbeat threshold (log line and metric)"),
    Directive(
        "watchdog",
        _D,
        _U,
        "heartbeat pets this watchdog device every keepalive, so the kernel reboots the"
        " machine when heartbeat hangs; hbmon does not (its systemd unit's WatchdogSec"
        " restarts a hung agent instead, without a reboot)",
    ),
    Directive("baud", _D, _I, "line speed of the serial media after it"),
    Directive("udpport", _D, _I, "port of the UDP media after it"),
    Directive("logfacility", _D, _I, "syslog facility"),
    Directive("logfile", _D, _I, "log file in heartbeat's format"),
    Directive("debugfile", _D, _I, "debug log file"),
    Directive("nice_failback", _D, _I, "obsolete; translated to auto_failback as heartbeat does"),
    Directive("auto_failback", _D, _I, "on, off or legacy"),
    Directive("rtprio", _D, _T, "scheduling priority of heartbeat's own processes"),
    Directive(
        "hbgenmethod",
        _D,
        _T,
        "hbmon always keeps the generation in its state file, which only grows; `time`"
        " would take it from the clock",
    ),
    Directive("realtime", _D, _T, "mlockall and SCHED_FIFO for heartbeat's own processes"),
    Directive("debug", _D, _I, "debug level (debugfile)"),
    Directive(
        "normalpoll",
        _D,
        _T,
        "heartbeat's poll(2) choice; not compiled into Debian's heartbeat, which refuses it",
    ),
    Directive("msgfmt", _D, _I, "classic or netstring"),
    Directive(
        "use_logd",
        _D,
        _T,
        "hbmon has no ha_logd client: its lines go to stderr (the journal under"
        " systemd), logfile, debugfile and syslog as configured",
    ),
    Directive("conn_logd_time", _D, _T, "reconnection interval to ha_logd"),
    Directive(
        "use_apphbd",
        _D,
        _U,
        "heartbeat registers with apphbd, which watches it for hangs; hbmon does not"
        " (only `use_apphbd on` is refused; off changes nothing)",
    ),
    Directive("log_badpack", _D, _T, "hbmon logs bad packets rate-limited and counts them"),
    Directive("syslogmsgfmt", _D, _T, "line format of the log files"),
    Directive("coredumps", _D, _T, "core dump handling of heartbeat's processes"),
    Directive("coreroot", _D, _T, "where heartbeat's core dumps go"),
    Directive("crm_daemon_dir", _D, _T, _PACEMAKER_ONLY),
    Directive("crmd_spawns_pengine", _D, _T, _PACEMAKER_ONLY),
    Directive("crm", _D, _I, "must be off (hbmon runs haresources clusters); on is an error"),
    Directive("pacemaker", _D, _I, "must be off (hbmon runs haresources clusters); on is an error"),
    Directive("autojoin", _D, _I, "must be none with haresources, as heartbeat requires"),
    Directive(
        "uuidfrom",
        _D,
        _T,
        "hbmon identifies nodes by name (`src`); its uuid is kept in its state file and"
        " only carried",
    ),
    Directive(
        "compression",
        _D,
        _T,
        "heartbeat compresses only messages over compression_threshold KiB, which an"
        " haresources cluster does not send",
    ),
    Directive("compression_threshold", _D, _T, "see compression"),
    Directive("traditional_compression", _D, _T, "see compression"),
    Directive("env", _D, _I, "HA_NAME=value for respawn clients and resource scripts"),
    Directive("max_rexmit_delay", _D, _I, "retransmission request delay"),
    Directive("record_config_changes", _D, _T, _PACEMAKER_ONLY),
    Directive("record_pengine_inputs", _D, _T, _PACEMAKER_ONLY),
    Directive("enable_config_writes", _D, _T, _PACEMAKER_ONLY),
    Directive("memreserve", _D, _T, "memory heartbeat preallocates"),
    Directive("quorum_server", _D, _T, _PACEMAKER_ONLY),
    # -------------------------------------------------------- WLdirectives[] --
    Directive(
        "stonith",
        _W,
        _I,
        "a device every node uses, values in a file: a dead node is reset through"
        " cluster-glue's `stonith -F` before its resources are taken (docs/fencing.md)",
    ),
    Directive(
        "stonith_host",
        _W,
        _I,
        "a device the named node (or `*`: any) uses: a dead node is reset through"
        " cluster-glue's `stonith -p` before its resources are taken (docs/fencing.md)",
    ),
    Directive(
        "apiauth",
        _W,
        _T,
        "permissions of heartbeat API clients; hbmon has no client API (a respawn line"
        " running a known API client is refused on its own)",
    ),
    Directive(
        "respawn",
        _W,
        _I,
        "started at comm-up as USER, restarted, rate-limited, stopped at shutdown;"
        " ipfail is not run (hbmon compares ping nodes itself)",
    ),
    Directive(
        "failfast",
        _W,
        _U,
        "a client whose abnormal exit reboots the machine: hbmon neither runs it nor reboots",
    ),
    # --------------------------------------------------------- HBcomm plugins --
    Directive("bcast", _P, _I, "UDP broadcast medium"),
    Directive("mcast", _P, _I, "UDP/IPv4 multicast medium"),
    Directive("ucast", _P, _I, "UDP/IPv4 unicast medium; ARPs for a silent peer (io/neighbour.py)"),
    Directive("mcast6", _P, _I, "UDP/IPv6 multicast medium"),
    Directive("ucast6", _P, _I, "UDP/IPv6 unicast medium; NS for a silent peer (io/neighbour.py)"),
    Directive("serial", _P, _I, "serial line medium (heartbeat's framing)"),
    Directive("ping", _P, _I, "IPv4 ping node"),
    Directive("ping6", _P, _I, "IPv6 ping node"),
    Directive("ping_group", _P, _I, "a ping node up when any member answers"),
    Directive(
        "hbaping",
        _P,
        _U,
        "the heartbeat path over a Fibre Channel HBA is lost (not in Debian's heartbeat)",
    ),
    Directive(
        "rds",
        _P,
        _U,
        "the heartbeat path over RDS is lost (not in Debian's heartbeat)",
    ),
    Directive(
        "tipc",
        _P,
        _U,
        "the heartbeat path over TIPC is lost (not in Debian's heartbeat)",
    ),
    Directive(
        "openais",
        _P,
        _U,
        "the heartbeat path over openais is lost (not in heartbeat 3.0.6)",
    ),
    # ------------------------------------------------------------------ alias --
    Directive("udp", Origin.ALIAS, _I, "heartbeat's old name for bcast, read as bcast"),
)

BY_NAME: dict[str, Directive] = {d.name: d for d in DIRECTIVES}

# Programs that talk to heartbeat's client API (libhbclient). hbmon has no such
# API, so a `respawn` of one of them could only fail at sign-on: refused, with
# what is lost. (ipfail is an API client too, but hbmon does its job itself.)
API_CLIENTS: dict[str, str] = {
    "dopd": "DRBD's outdate-peer daemon: drbd-peer-outdater can no longer fence the peer's disk",
    "hbagent": "the SNMP subagent: the cluster is no longer visible over SNMP",
    "ccm": "the consensus membership layer that Pacemaker and OCFS2 rely on",
    "pingd": "Pacemaker's ping attribute daemon",
    "mgmtd": "the heartbeat GUI's management daemon",
}
NATIVE_CLIENTS = frozenset({"ipfail"})


def unsupported_note(name: str) -> str:
    d = BY_NAME[name]
    if d.support is not Support.UNSUPPORTED:
        raise ValueError(f"{name} is not an unsupported directive")
    return d.note


def markdown_table() -> str:
    """The classification as the Markdown table in docs/hacf-directives.md."""
    rows = ["| directive | heartbeat declares it in | hbmon | note |", "|---|---|---|---|"]
    for d in sorted(DIRECTIVES, key=lambda d: (list(Support).index(d.support), d.name)):
        rows.append(f"| `{d.name}` | {d.origin.value} | {d.support.value} | {d.note} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
