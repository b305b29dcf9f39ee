"""ha.cf's media and ping-node lines, with heartbeat's ordering rules (spec §1.1–1.2).

heartbeat's media plugins read shared settings when a line is parsed: `udpport`
applies to the UDP media after it (ucast6 reads it once, at its first line);
`baud` to the serial lines, read once when the first one loads the serial
plugin. `MediaLines` keeps that state for one pass over ha.cf and reports
through the parser (`Report`), so its messages carry the parser's FILE:LINE.
"""

from __future__ import annotations

from typing import Protocol

from hbmon.config.lexer import ascii_lower, split_words
from hbmon.config.limits import MAX_PORT, MCAST6_MAX_HOPS, MCAST_MAX_TTL, SERIAL_BAUDS
from hbmon.config.model import (
    DEFAULT_BAUD,
    DEFAULT_UDPPORT,
    BcastMedium,
    Mcast6Medium,
    McastMedium,
    Medium,
    PingNode,
    SerialMedium,
    Ucast6Medium,
    UcastMedium,
)
from hbmon.config.values import (
    is_ipv4,
    is_ipv4_multicast,
    is_ipv6,
    is_ipv6_multicast_for_heartbeat,
    is_ipv6_unicast_for_heartbeat,
    parse_atoi,
)


class Report(Protocol):
    line: int  # the line being parsed

    def error(self, message: str) -> bool: ...

    def warn(self, message: str) -> None: ...


class MediaLines:
    """Media and ping nodes, in file order, with the line of each."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.media: list[Medium] = []
        self.media_lines: list[int] = []
        self.ping_nodes: list[PingNode] = []
        self.ping_lines: list[int] = []
        self.port = DEFAULT_UDPPORT
        self.udpport_given: int | None = None
        self.first_media_line = 0
        # heartbeat's ucast6 plugin reads udpport once, at its first line.
        self.ucast6_port: int | None = None
        # heartbeat's serial plugin reads baud once, when the first serial line loads it.
        self.serial_baud = DEFAULT_BAUD
        self.baud_line = 0
        self.first_serial_line = 0

    def udpport(self, value: str) -> bool:
        try:
            port, exact = parse_atoi(value, 1, MAX_PORT)
        except ValueError as exc:
            return self.report.error(f"invalid port {exc}")
        if not exact:
            self.report.warn(
                f"udpport [{value}] read as {port}; the text after the number is ignored"
            )
        if self.media:
            self.report.warn(
                f"udpport setting must precede media statements: port {port} does not apply"
                f" to the media above it (first on line {self.first_media_line})"
            )
        self.port = port
        self.udpport_given = port
        return True

    def add_medium(self, medium: Medium) -> None:
        if not self.media:
            self.first_media_line = self.report.line
        self.media.append(medium)
        self.media_lines.append(self.report.line)

    def bcast(self, value: str) -> bool:
        self.add_medium(BcastMedium(iface=value, port=self.port))
        return True

    def ping(self, value: str) -> bool:
        if not is_ipv4(value):
            return self.report.error(f"ping: [{value}] is not an IPv4 address")
        self.ping_nodes.append(PingNode(name=value, addresses=(value,)))
        self.ping_lines.append(self.report.line)
        return True

    def serial(self, value: str) -> bool:
        if not value.startswith("/"):
            return self.report.error(f"Serial port not full pathname [{value}] in config file")
        if any(isinstance(m, SerialMedium) and m.device == value for m in self.media):
            return self.report.error(f"serial port [{value}] listed more than once")
        if not self.first_serial_line:
            self.first_serial_line = self.report.line
        self.add_medium(SerialMedium(device=value, baud=self.serial_baud))
        return True

    def baud(self, value: str) -> bool:
        if self.baud_line:
            return self.report.error(
                f"Baudrate multiply specified (first on line {self.baud_line})"
            )
        self.baud_line = self.report.line
        try:
            baud, _ = parse_atoi(value, 0, 2**31 - 1)
        except ValueError:
            baud = 0
        if baud not in SERIAL_BAUDS:
            return self.report.error(
                f"invalid baudrate [{value}] specified; use one of"
                f" {', '.join(str(b) for b in SERIAL_BAUDS)}"
            )
        if self.first_serial_line:
            # heartbeat's serial plugin read the speed when its first line loaded it.
            self.report.warn(
                f"baudrate setting must precede media statements: baud {baud} does not apply"
                f" to the serial media above it (first on line {self.first_serial_line});"
                f" they run at {self.serial_baud}"
            )
            return True
        self.serial_baud = baud
        return True

    def udp(self, value: str) -> bool:
        self.report.warn("directive 'udp' replaced by 'bcast'")
        return self.bcast(value)

    def ping6(self, value: str) -> bool:
        if not is_ipv6(value):
            return self.report.error(f"ping6: [{value}] is not an IPv6 address")
        self.ping_nodes.append(PingNode(name=value, addresses=(value,)))
        self.ping_lines.append(self.report.line)
        return True

    def ucast(self, rest: str) -> bool:
        words = split_words(rest)
        if not words:
            return self.report.error("ucast: missing device and target IP address")
        dev = words[0]
        if len(words) < 2:
            return self.report.error(f"ucast: [{dev}] missing target IP address/hostname")
        peer = words[1]
        if not is_ipv4(peer):
            return self.report.error(
                f"ucast: [{dev}] target [{peer}] is not an IPv4 address"
                " (hbmon does not resolve host names)"
            )
        if len(words) > 2:
            self.report.warn(f"ucast: [{dev}] text after the target address is ignored")
        self.add_medium(UcastMedium(iface=dev, peer=peer, port=self.port))
        return True

    def mcast(self, rest: str) -> bool:
        words = split_words(rest)
        if not words:
            return self.report.error("mcast: missing device")
        dev = words[0]
        names = ("mcast address", "port", "ttl", "loop")
        if len(words) < 5:
            return self.report.error(f"mcast [{dev}] missing {names[len(words) - 1]}")
        group, port_text, ttl_text, loop_text = words[1:5]
        ok = True
        port = ttl = loop = 0
        if not is_ipv4_multicast(group):
            ok = self.report.error(
                f"mcast [{dev}] bad addr [{group}]: not an IPv4 multicast address"
            )
        try:
            port, _ = parse_atoi(port_text, 1, MAX_PORT)
        except ValueError:
            ok = self.report.error(f"mcast [{dev}] bad port [{port_text}]")
        try:
            ttl, _ = parse_atoi(ttl_text, 0, MCAST_MAX_TTL)
        except ValueError:
            ok = self.report.error(
                f"mcast [{dev}] bad ttl [{ttl_text}]: heartbeat accepts 0 to {MCAST_MAX_TTL}"
            )
        try:
            loop, _ = parse_atoi(loop_text, 0, 1)
        except ValueError:
            ok = self.report.error(f"mcast [{dev}] bad loop [{loop_text}]: use 0 or 1")
        if not ok:
            return False
        if len(words) > 5:
            self.report.warn(f"mcast [{dev}] text after the loop value is ignored")
        self.add_medium(McastMedium(iface=dev, group=group, port=port, ttl=ttl, loop=loop == 1))
        return True

    def ucast6(self, rest: str) -> bool:
        words = split_words(rest)
        if not words:
            return self.report.error("ucast6 statement without device")
        dev = words[0]
        if len(words) < 2:
            return self.report.error(f"ucast6 [{dev}] missing ucast6 address")
        peer = words[1]
        if not is_ipv6_unicast_for_heartbeat(peer, allow_scope=True):
            return self.report.error(
                f"ucast6 [{dev}] bad addr [{peer}]: not an IPv6 unicast address"
                " (hbmon does not resolve host names)"
            )
        if len(words) > 2:
            self.report.warn(f"ucast6: [{dev}] text after the target address is ignored")
        if self.ucast6_port is None:
            self.ucast6_port = self.port
        elif self.ucast6_port != self.port:
            self.report.warn(
                f"ucast6 [{dev}]: heartbeat reads udpport once, at the first ucast6 line:"
                f" this medium uses port {self.ucast6_port}, not {self.port}"
            )
        self.add_medium(Ucast6Medium(iface=dev, peer=peer, port=self.ucast6_port))
        return True

    def mcast6(self, rest: str) -> bool:
        words = split_words(rest)
        if not words:
            return self.report.error("mcast6 statement without device")
        dev = words[0]
        names = ("mcast6 address", "port", "hops", "loop")
        if len(words) < 5:
            return self.report.error(f"mcast6 [{dev}] missing {names[len(words) - 1]}")
        group, port_text, hops_text, loop_text = words[1:5]
        ok = True
        port = hops = loop = 0
        if not is_ipv6_multicast_for_heartbeat(group):
            ok = self.report.error(
                f"mcast6 [{dev}] bad addr [{group}]: heartbeat takes an IPv6 multicast group"
                " of link, admin, site or organization scope"
            )
        try:
            port, _ = parse_atoi(port_text, 1, MAX_PORT)
        except ValueError:
            ok = self.report.error(f"mcast6 [{dev}] bad port [{port_text}]")
        try:
            hops, _ = parse_atoi(hops_text, 0, MCAST6_MAX_HOPS)
        except ValueError:
            ok = self.report.error(
                f"mcast6 [{dev}] bad hops [{hops_text}]: heartbeat accepts 0 to {MCAST6_MAX_HOPS}"
            )
        try:
            loop, _ = parse_atoi(loop_text, 0, 1)
        except ValueError:
            ok = self.report.error(f"mcast6 [{dev}] bad loop [{loop_text}]: use 0 or 1")
        if not ok:
            return False
        if len(words) > 5:
            self.report.warn(f"mcast6 [{dev}] text after the loop value is ignored")
        self.add_medium(Mcast6Medium(iface=dev, group=group, port=port, hops=hops, loop=loop == 1))
        return True

    def ping_group(self, rest: str) -> bool:
        words = split_words(rest)
        if not words:
            return self.report.error("ping_group: missing group name")
        name, hosts = ascii_lower(words[0]), words[1:]
        if not hosts:
            return self.report.error(f"ping_group [{name}] has no hosts")
        bad = [h for h in hosts if not is_ipv4(h)]
        if bad:
            return self.report.error(f"ping_group [{name}]: [{bad[0]}] is not an IPv4 address")
        self.ping_nodes.append(PingNode(name=name, addresses=tuple(hosts), group=True))
        self.ping_lines.append(self.report.line)
        return True
