"""ha.cf: serial/baud, ucast6/mcast6, ping6, the udp alias, env and respawn as
heartbeat 3.0.6 reads them (serial.c, ucast6.c, mcast6.c, ping6.c, config.c)."""

from __future__ import annotations

import pytest

from hbmon.config.hacf import HaCf, parse_hacf
from hbmon.config.model import (
    BcastMedium,
    Mcast6Medium,
    PingNode,
    SerialMedium,
    Ucast6Medium,
    UcastMedium,
)
from hbmon.config.problems import Problem

F = "ha.cf"


def parse(text: str) -> tuple[HaCf, list[Problem]]:
    return parse_hacf((text + "\nlogfile /x\n").encode(), F)


def errors(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems if not p.warning]


def warnings(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems if p.warning]


def test_serial_ports_take_the_baud_given_before_them() -> None:
    hacf, problems = parse("baud 115200\nserial /dev/ttyS0, /dev/ttyS1\nucast eth0 192.0.2.2")
    assert problems == []
    assert hacf.media == (
        SerialMedium("/dev/ttyS0", 115200),
        SerialMedium("/dev/ttyS1", 115200),
        UcastMedium("eth0", "192.0.2.2", 694),
    )
    assert SerialMedium("/dev/ttyS0").baud == 19200  # heartbeat's default
    assert SerialMedium("/dev/ttyS0").iface == "/dev/ttyS0"  # the link's name


def test_a_baud_after_the_serial_line_does_not_apply() -> None:
    hacf, problems = parse("serial /dev/ttyS0\nbaud 9600")
    assert hacf.media == (SerialMedium("/dev/ttyS0", 19200),)
    assert warnings(problems) == [
        "ha.cf:2: warning: baudrate setting must precede media statements: baud 9600 does not"
        " apply to the serial media above it (first on line 1); they run at 19200"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("baud 19200\nbaud 9600", "ha.cf:2: Baudrate multiply specified (first on line 1)"),
        ("baud 12345", "ha.cf:1: invalid baudrate [12345] specified; use one of 9600, 19200,"),
        ("serial ttyS0", "ha.cf:1: Serial port not full pathname [ttyS0] in config file"),
        ("serial /dev/ttyS0 /dev/ttyS0", "ha.cf:1: serial port [/dev/ttyS0] listed more than"),
    ],
)
def test_serial_errors(text: str, message: str) -> None:
    assert errors(parse(text)[1])[0].startswith(message)


def test_ucast6_and_mcast6() -> None:
    hacf, problems = parse(
        "udpport 700\nucast6 em1 fe80::50\nucast6 em2 2001:db8::50%em2\n"
        "mcast6 em1 ff02::694 695 1 1\nbcast em3"
    )
    assert problems == []
    assert hacf.media == (
        Ucast6Medium("em1", "fe80::50", 700),
        Ucast6Medium("em2", "2001:db8::50%em2", 700),
        Mcast6Medium("em1", "ff02::694", 695, 1, True),
        BcastMedium("em3", 700),
    )


def test_ucast6_reads_udpport_once_as_heartbeats_plugin_does() -> None:
    hacf, problems = parse("ucast6 em1 fe80::50\nudpport 700\nucast6 em2 fe80::51")
    assert [m.port for m in hacf.media] == [694, 694]  # type: ignore[union-attr]
    assert "heartbeat reads udpport once" in warnings(problems)[-1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ucast6", "ucast6 statement without device"),
        ("ucast6 em1", "ucast6 [em1] missing ucast6 address"),
        ("ucast6 em1 ff02::1", "ucast6 [em1] bad addr [ff02::1]"),
        ("ucast6 em1 ::1", "ucast6 [em1] bad addr [::1]"),
        ("ucast6 em1 ::", "ucast6 [em1] bad addr [::]"),
        ("ucast6 em1 192.0.2.1", "ucast6 [em1] bad addr [192.0.2.1]"),
        ("ucast6 em1 peer.example", "ucast6 [em1] bad addr [peer.example]"),
        ("mcast6 em1 ff02::694 694 1", "mcast6 [em1] missing loop"),
        ("mcast6 em1 ff0e::694 694 1 0", "mcast6 [em1] bad addr [ff0e::694]"),  # global scope
        ("mcast6 em1 ff01::694 694 1 0", "mcast6 [em1] bad addr [ff01::694]"),  # interface-local
        ("mcast6 em1 ff02:: 694 1 0", "mcast6 [em1] bad addr [ff02::]"),
        ("mcast6 em1 fe80::1 694 1 0", "mcast6 [em1] bad addr [fe80::1]"),
        ("mcast6 em1 ff02::694 694 5 0", "mcast6 [em1] bad hops [5]"),
        ("mcast6 em1 ff02::694 694 1 2", "mcast6 [em1] bad loop [2]"),
        ("ping6 192.0.2.1", "ping6: [192.0.2.1] is not an IPv6 address"),
        ("ping6 fe80::1%em1", "ping6: [fe80::1%em1] is not an IPv6 address"),
    ],
)
def test_ipv6_media_errors(line: str, message: str) -> None:
    assert errors(parse(line)[1])[0].startswith(f"ha.cf:1: {message}")


def test_ping6_nodes_are_named_by_their_address_and_mix_with_ping() -> None:
    hacf, problems = parse("ping 192.0.2.254\nping6 2001:db8::fe, fe80::fe")
    assert problems == []
    assert hacf.ping_nodes == (
        PingNode("192.0.2.254", ("192.0.2.254",)),
        PingNode("2001:db8::fe", ("2001:db8::fe",)),
        PingNode("fe80::fe", ("fe80::fe",)),
    )


def test_udp_is_heartbeats_old_name_for_bcast() -> None:
    hacf, problems = parse("udp eth0")
    assert hacf.media == (BcastMedium("eth0", 694),)
    assert warnings(problems) == ["ha.cf:1: warning: directive 'udp' replaced by 'bcast'"]


def test_env_lines_are_kept_for_the_clients_and_scripts() -> None:
    hacf, problems = parse("env ALERT=ops@example.org\nenv EMPTY=\nenv A=b=c")
    assert problems == []
    assert hacf.env == (("ALERT", "ops@example.org"), ("EMPTY", ""), ("A", "b=c"))
    assert errors(parse("env =x")[1]) == ["ha.cf:1: env: invalid nvpair [=x]; expected NAME=value"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("apiauth", "Invalid apiauth directive []: missing client name"),
        ("apiauth x", "Invalid apiauth directive [x]: give uid= or gid="),
        ("apiauth x uid=a uid=b", "Invalid apiauth directive [x uid=a uid=b]: duplicate uid"),
        ("apiauth x user=a", "Invalid apiauth directive [x user=a]: missing uid or gid"),
        ("respawn hacluster", "Invalid respawn directive [hacluster]: expected USER /PATH"),
    ],
)
def test_apiauth_and_respawn_syntax(line: str, message: str) -> None:
    assert errors(parse(line)[1])[0].startswith(f"ha.cf:1: {message}")
