"""Rules on the finished model, whatever front end built it (spec §1.3, §2, §3.1).

`check_config` returns `Finding`s located by field path; the ha.d loader maps a
path to FILE:LINE of the directive, the YAML loader to the YAML node. Messages
keep heartbeat's wording where it has one (including its `keeplive` typo, which
log watchers may grep for). No message ever includes a key's secret.
"""

from __future__ import annotations

from collections import Counter

from hbmon.config.arbcheck import check_arbitrator
from hbmon.config.fencecheck import check_fencing
from hbmon.config.limits import (
    INITDEAD_WARN_BELOW_MS,
    MAX_AUTH_INDEX,
    MAX_DEBUG,
    MAX_HOPFUDGE,
    MAX_PORT,
    MCAST6_MAX_HOPS,
    MCAST_MAX_TTL,
    MIN_HANDOVER_WINDOW_MS,
    SERIAL_BAUDS,
)
from hbmon.config.model import (
    AuthConfig,
    AuthMethod,
    AutoFailback,
    BcastMedium,
    Config,
    Mcast6Medium,
    McastMedium,
    Medium,
    RespawnClient,
    SerialMedium,
    Timers,
    Ucast6Medium,
    UcastMedium,
)
from hbmon.config.problems import Finding
from hbmon.config.values import (
    SYSLOG_FACILITIES,
    is_ipv4,
    is_ipv4_multicast,
    is_ipv6,
    is_ipv6_multicast_for_heartbeat,
    is_ipv6_unicast_for_heartbeat,
)


def check_config(cfg: Config) -> list[Finding]:
    findings: list[Finding] = []
    findings += _check_membership(cfg)
    findings += _check_timers(cfg.timers)
    findings += _check_media(cfg.udpport, cfg.media)
    findings += _check_respawn(cfg.respawn)
    findings += _check_auth(cfg.auth)
    findings += _check_resources(cfg)
    findings += _check_misc(cfg)
    findings += check_fencing(cfg)
    findings += check_arbitrator(cfg)
    return findings


def _check_membership(cfg: Config) -> list[Finding]:
    out: list[Finding] = []
    if not cfg.nodes:
        out.append(Finding("nodes", "no nodes defined"))
    if cfg.node not in cfg.nodes:
        out.append(Finding("node", f"Current node [{cfg.node}] not in configuration!"))
    for name, count in Counter(cfg.nodes).items():
        if count > 1:
            out.append(Finding("nodes", f"node [{name}] listed more than once"))
    seen = set(cfg.nodes)
    for i, ping in enumerate(cfg.ping_nodes):
        if ping.name in seen:
            out.append(Finding(f"ping_nodes[{i}].name", f"Duplicate node name [{ping.name}]"))
        seen.add(ping.name)
        if not ping.addresses:
            out.append(
                Finding(f"ping_nodes[{i}].addresses", f"ping node [{ping.name}] has no hosts")
            )
        for j, address in enumerate(ping.addresses):
            # ping and ping_group take IPv4, ping6 IPv6 (one address, no group).
            if not (is_ipv4(address) or (not ping.group and is_ipv6(address))):
                out.append(
                    Finding(
                        f"ping_nodes[{i}].addresses[{j}]",
                        f"ping node [{ping.name}]: [{address}] is not an IP address",
                    )
                )
        if not ping.group and ping.addresses != (ping.name,):
            out.append(
                Finding(f"ping_nodes[{i}]", f"ping node [{ping.name}] must be named by its address")
            )
    return out


def _check_timers(t: Timers) -> list[Finding]:
    out: list[Finding] = []
    if t.keepalive_ms <= 0:
        out.append(Finding("timers.keepalive", f"Invalid keepalive [{t.keepalive_ms}ms]"))
    if t.deadtime_ms <= 2 * t.keepalive_ms:
        out.append(
            Finding(
                "timers.deadtime",
                f"Dead time [{t.deadtime_ms}] is too small compared to keeplive [{t.keepalive_ms}]",
            )
        )
    # With deadping left at deadtime the deadtime rule above already said it.
    if t.deadping_ms != t.deadtime_ms and t.deadping_ms <= 2 * t.keepalive_ms:
        out.append(
            Finding(
                "timers.deadping",
                f"Ping dead time [{t.deadping_ms}] is too small compared to keeplive"
                f" [{t.keepalive_ms}]",
            )
        )
    if t.warntime_ms <= 0:
        out.append(Finding("timers.warntime", f"Warn time [{t.warntime_ms}ms] is invalid."))
    elif t.warntime_ms >= t.deadtime_ms:
        out.append(
            Finding(
                "timers.warntime",
                f"warntime [{t.warntime_ms} ms] is not below deadtime [{t.deadtime_ms} ms]:"
                " late-heartbeat warnings can never fire before a node is declared dead",
                warning=True,
            )
        )
    if t.initdead_ms < t.deadtime_ms:
        out.append(
            Finding(
                "timers.initdead",
                f"Initial dead time [{t.initdead_ms}] is smaller than deadtime [{t.deadtime_ms}]",
            )
        )
    else:
        if t.initdead_ms < INITDEAD_WARN_BELOW_MS:
            out.append(
                Finding(
                    "timers.initdead",
                    f"Initial dead time [{t.initdead_ms} ms] may be too small!",
                    warning=True,
                )
            )
        if t.initdead_ms < 2 * t.deadtime_ms:
            out.append(
                Finding(
                    "timers.initdead",
                    f"initdead [{t.initdead_ms} ms] is less than twice deadtime"
                    f" [{t.deadtime_ms} ms]; heartbeat's documentation advises at least"
                    " 2×deadtime to allow for slow network start-up",
                    warning=True,
                )
            )
    return out


def _check_media(udpport: int, media: tuple[Medium, ...]) -> list[Finding]:
    out: list[Finding] = []
    if not 1 <= udpport <= MAX_PORT:
        out.append(Finding("udpport", f"invalid port [{udpport}] specified"))
    if not media:
        out.append(Finding("media", "No heartbeat media defined"))
    for i, m in enumerate(media):
        where = f"media[{i}]"
        if not m.iface:
            out.append(Finding(f"{where}.iface", f"{m.kind}: missing device"))
        if not isinstance(m, SerialMedium) and not 1 <= m.port <= MAX_PORT:
            out.append(Finding(f"{where}.port", f"{m.kind} [{m.iface}] bad port [{m.port}]"))
        match m:
            case UcastMedium():
                if not is_ipv4(m.peer):
                    out.append(
                        Finding(
                            f"{where}.peer",
                            f"ucast: [{m.iface}] target [{m.peer}] is not an IPv4 address",
                        )
                    )
            case McastMedium():
                if not is_ipv4_multicast(m.group):
                    out.append(Finding(f"{where}.group", f"mcast [{m.iface}] bad addr [{m.group}]"))
                if not 0 <= m.ttl <= MCAST_MAX_TTL:
                    out.append(
                        Finding(
                            f"{where}.ttl",
                            f"mcast [{m.iface}] bad ttl [{m.ttl}]: heartbeat accepts 0 to"
                            f" {MCAST_MAX_TTL}",
                        )
                    )
            case Ucast6Medium():
                if not is_ipv6_unicast_for_heartbeat(m.peer, allow_scope=True):
                    out.append(Finding(f"{where}.peer", f"ucast6 [{m.iface}] bad addr [{m.peer}]"))
            case Mcast6Medium():
                if not is_ipv6_multicast_for_heartbeat(m.group):
                    out.append(
                        Finding(f"{where}.group", f"mcast6 [{m.iface}] bad addr [{m.group}]")
                    )
                if not 0 <= m.hops <= MCAST6_MAX_HOPS:
                    out.append(
                        Finding(
                            f"{where}.hops",
                            f"mcast6 [{m.iface}] bad hops [{m.hops}]: heartbeat accepts 0 to"
                            f" {MCAST6_MAX_HOPS}",
                        )
                    )
            case SerialMedium():
                if not m.device.startswith("/"):
                    out.append(
                        Finding(
                            f"{where}.device",
                            f"Serial port not full pathname [{m.device}] in config file",
                        )
                    )
                if m.baud not in SERIAL_BAUDS:
                    out.append(Finding(f"{where}.baud", f"invalid baudrate [{m.baud}] specified"))
            case BcastMedium():
                pass
    return out


def _check_respawn(clients: tuple[RespawnClient, ...]) -> list[Finding]:
    out: list[Finding] = []
    for i, c in enumerate(clients):
        if not c.user or any(ch.isspace() for ch in c.user):
            out.append(Finding(f"respawn[{i}].user", f"Invalid uid [{c.user}] for client child"))
        if not c.command.startswith("/"):
            out.append(
                Finding(
                    f"respawn[{i}].command",
                    f"Client child command [{c.command}] is not full path",
                )
            )
    return out


def _check_auth(auth: AuthConfig) -> list[Finding]:
    out: list[Finding] = []
    if auth.key(auth.active) is None:
        out.append(Finding("auth.active", f"Auth Key [{auth.active}] not found in keyfile"))
    counts = Counter(k.index for k in auth.keys)
    for i, key in enumerate(auth.keys):
        where = f"auth.keys[{i}]"
        if not 0 <= key.index <= MAX_AUTH_INDEX:
            out.append(
                Finding(
                    f"{where}.index",
                    f"Invalid authnum [{key.index}]: must be 0 to {MAX_AUTH_INDEX}",
                )
            )
        if counts[key.index] > 1:
            out.append(Finding(f"{where}.index", f"auth key [{key.index}] defined more than once"))
        if key.method is AuthMethod.CRC:
            if key.secret:
                out.append(Finding(f"{where}.secret", "Auth method [crc] doesn't use a key"))
            else:
                out.append(
                    Finding(
                        where,
                        f"auth key [{key.index}] uses crc, an unkeyed checksum: anyone who"
                        " can reach the heartbeat port can forge messages and trigger"
                        " failovers; use sha1 (heartbeat-compatible) or sha256",
                        warning=True,
                    )
                )
        elif not key.secret:
            out.append(
                Finding(f"{where}.secret", f"Auth method [{key.method.value}] requires a key")
            )
    return out


def _check_resources(cfg: Config) -> list[Finding]:
    out: list[Finding] = []
    first_index: dict[str, int] = {}
    for i, group in enumerate(cfg.resources):
        where = f"resources[{i}]"
        if group.node not in cfg.nodes:
            out.append(Finding(f"{where}.node", f"Bad nodename in haresources [{group.node}]"))
        if not group.resources:
            out.append(
                Finding(f"{where}.resources", f"resource group of [{group.node}] has no resources")
            )
            continue
        for j, res in enumerate(group.resources):
            if not res.agent:
                out.append(
                    Finding(f"{where}.resources[{j}]", f"resource [{res}] has no script name")
                )
            if any(not a or any(c.isspace() for c in a) for a in res.args):
                out.append(
                    Finding(
                        f"{where}.resources[{j}]",
                        f"resource [{res}]: arguments must be non-empty and without blanks",
                    )
                )
        key = group.key
        if key in first_index:
            out.append(
                Finding(
                    f"{where}.resources[0]",
                    f"resource group key [{key}] is already used by group"
                    f" {first_index[key] + 1}; the first resource must be unique",
                )
            )
        else:
            first_index[key] = i
    return out


def _check_misc(cfg: Config) -> list[Finding]:
    out: list[Finding] = []
    if not 0 <= cfg.hopfudge <= MAX_HOPFUDGE:
        out.append(Finding("hopfudge", f"Invalid hopfudge [{cfg.hopfudge}]: 0 to {MAX_HOPFUDGE}"))
    if cfg.max_rexmit_delay_ms <= 0:
        out.append(
            Finding(
                "max_rexmit_delay",
                f"Invalid max_rexmit_delay time({cfg.max_rexmit_delay_ms})",
            )
        )
    log = cfg.logging
    if log.logfacility is not None and log.logfacility not in SYSLOG_FACILITIES:
        out.append(Finding("logging.logfacility", f"Log facility({log.logfacility}) not valid"))
    if not 0 <= log.debug <= MAX_DEBUG:
        out.append(Finding("logging.debug", f"Invalid debug [{log.debug}]: 0 to {MAX_DEBUG}"))
    if cfg.auto_failback is AutoFailback.LEGACY:
        out.append(
            Finding(
                "auto_failback",
                "Deprecated 'legacy' auto_failback option selected. Please convert to"
                " 'auto_failback on'. (hb_standby is refused in legacy mode)",
                warning=True,
            )
        )
    hb = cfg.hbmon
    if hb.failback_stickiness_ms < 0:
        out.append(Finding("hbmon.failback_stickiness", "failback stickiness must not be negative"))
    if hb.handover_window_ms < MIN_HANDOVER_WINDOW_MS:
        # The addresses a restart leaves up expire after it, in whole seconds.
        out.append(
            Finding(
                "hbmon.handover_window",
                f"handover window [{hb.handover_window_ms} ms] must be at least"
                f" {MIN_HANDOVER_WINDOW_MS // 1000} s",
            )
        )
    if (hb.tls_cert is None) != (hb.tls_key is None):
        out.append(Finding("hbmon.tls", "tls needs both cert and key"))
    host, sep, port = hb.metrics_address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= MAX_PORT:
        out.append(
            Finding(
                "hbmon.metrics_address",
                f"metrics_address [{hb.metrics_address}] must be HOST:PORT",
            )
        )
    return out
