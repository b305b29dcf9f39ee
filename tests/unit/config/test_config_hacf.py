"""ha.cf parsing rules (spec §1.1, §1.2): bytes, comments, separators, directives."""

from __future__ import annotations

import pytest

from hbmon.config.hacf import HaCf, parse_hacf
from hbmon.config.model import (
    AutoFailback,
    BcastMedium,
    McastMedium,
    PingNode,
    UcastMedium,
    WireFormat,
)
from hbmon.config.problems import Problem

F = "ha.cf"


def parse(text: bytes) -> tuple[HaCf, list[Problem]]:
    return parse_hacf(text, F)


def errors(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems if not p.warning]


def warnings(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems if p.warning]


def test_trailing_comment_utf8() -> None:
    hacf, problems = parse("keepalive 2 #心跳间隔\nnode a # 节点\n".encode())
    assert problems == []
    assert hacf.keepalive_ms == 2000
    assert hacf.nodes == ("a",)


def test_trailing_comment_gbk_bytes() -> None:
    data = "keepalive 2 #心跳间隔\ndeadtime 30#超时\n".encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    hacf, problems = parse(data)
    assert problems == []
    assert (hacf.keepalive_ms, hacf.deadtime_ms) == (2000, 30000)


def test_non_utf8_outside_comment_is_an_error_on_its_line() -> None:
    _, problems = parse(b"keepalive 2\nlogfile /var/log/\xd0\xc4\n")
    assert errors(problems) == ["ha.cf:2: line is not valid UTF-8 outside its comment"]


def test_crlf_and_blank_lines() -> None:
    hacf, problems = parse(b"keepalive 2\r\n\r\n   \r\nnode a\r\n")
    assert problems == []
    assert hacf.keepalive_ms == 2000
    assert hacf.nodes == ("a",)


def test_comma_and_tab_separators() -> None:
    hacf, problems = parse(b"node\tA,b , c\tD\nbcast eth0,eth1\teth2\n")
    assert problems == []
    assert hacf.nodes == ("a", "b", "c", "d")
    assert [m.iface for m in hacf.media] == ["eth0", "eth1", "eth2"]


def test_node_names_lowercased_ascii_only() -> None:
    hacf, _ = parse(b"node Solr1 SOLR2\n")
    assert hacf.nodes == ("solr1", "solr2")


def test_duplicate_node_warns() -> None:
    hacf, problems = parse(b"node a\nnode A\n")
    assert hacf.nodes == ("a",)
    assert warnings(problems) == ["ha.cf:2: warning: node [a] listed more than once"]


def test_directives_are_case_sensitive_and_unknown_is_illegal() -> None:
    _, problems = parse(b"node a\nKeepalive 2\nfoo bar\n")
    assert errors(problems) == [
        "ha.cf:2: Illegal directive [Keepalive] in ha.cf",
        "ha.cf:3: Illegal directive [foo] in ha.cf",
    ]


def test_time_with_space_splits_and_fails() -> None:
    _hacf, problems = parse(b"keepalive 2000 ms\n")
    assert len(errors(problems)) == 1
    assert "ha.cf:1: keepalive: [2000 ms] splits into two values" in errors(problems)[0]


def test_time_seconds_suffix_is_an_error() -> None:
    hacf, problems = parse(b"deadtime 30s\n")
    assert hacf.deadtime_ms is None
    assert errors(problems)[0].startswith("ha.cf:1: Invalid deadtime [30s]")


def test_times_with_units() -> None:
    hacf, problems = parse(b"keepalive 500ms\ndeadtime 1.5\nwarntime 1200000us\ninitdead 60\n")
    assert problems == []
    assert (hacf.keepalive_ms, hacf.deadtime_ms, hacf.warntime_ms, hacf.initdead_ms) == (
        500,
        1500,
        1200,
        60000,
    )


@pytest.mark.parametrize("directive", ["keepalive", "warntime"])
def test_zero_keepalive_and_warntime_refused(directive: str) -> None:
    _, problems = parse(f"{directive} 0\n".encode())
    assert errors(problems) == [f"ha.cf:1: Invalid {directive} [0]: must be greater than 0"]


def test_repeated_scalar_warns_last_wins() -> None:
    hacf, problems = parse(b"keepalive 1\nkeepalive 2\n")
    assert hacf.keepalive_ms == 2000
    assert warnings(problems) == [
        "ha.cf:2: warning: keepalive given again (first on line 1); the last value wins"
    ]


def test_raw_keeps_values_as_written() -> None:
    hacf, _ = parse(b"keepalive 2\ndeadtime 30000ms\nucast eth0 10.0.0.2\nnode a,b\n")
    assert hacf.raw == (
        ("keepalive", "2"),
        ("deadtime", "30000ms"),
        ("ucast", "eth0 10.0.0.2"),
        ("node", "a"),
        ("node", "b"),
    )


# ------------------------------------------------------------------ media --
def test_udpport_applies_only_to_later_media() -> None:
    hacf, problems = parse(b"bcast eth0\nudpport 700\nbcast eth1\nucast eth2 10.0.0.9\n")
    assert hacf.media == (
        BcastMedium("eth0", 694),
        BcastMedium("eth1", 700),
        UcastMedium("eth2", "10.0.0.9", 700),
    )
    assert hacf.udpport == 700
    (w,) = warnings(problems)
    assert w.startswith("ha.cf:2: warning: udpport setting must precede media statements")


def test_udpport_before_media_is_silent() -> None:
    hacf, problems = parse(b"udpport 700\nbcast eth0\n")
    assert problems == []
    assert hacf.media == (BcastMedium("eth0", 700),)


@pytest.mark.parametrize("port", ["0", "65536", "x"])
def test_bad_udpport(port: str) -> None:
    _, problems = parse(f"udpport {port}\n".encode())
    assert errors(problems)[0].startswith(f"ha.cf:1: invalid port [{port}]")


def test_ucast_takes_rest_of_line() -> None:
    hacf, problems = parse(b"ucast em1 10.1.201.50\n")
    assert problems == []
    assert hacf.media == (UcastMedium("em1", "10.1.201.50", 694),)
    assert hacf.media_lines == (1,)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"ucast em1\n", "ucast: [em1] missing target IP address/hostname"),
        (b"ucast em1 peer.example\n", "ucast: [em1] target [peer.example] is not an IPv4"),
        (b"ucast\n", "ucast: missing device"),
    ],
)
def test_ucast_errors(line: bytes, message: str) -> None:
    hacf, problems = parse(line)
    assert hacf.media == ()
    assert errors(problems)[0].startswith(f"ha.cf:1: {message}")


def test_mcast_all_five_args() -> None:
    hacf, problems = parse(b"mcast eth0 239.0.0.1 694 1 0\nmcast eth1 225.0.0.1 700 4 1\n")
    assert problems == []
    assert hacf.media == (
        McastMedium("eth0", "239.0.0.1", 694, 1, False),
        McastMedium("eth1", "225.0.0.1", 700, 4, True),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"mcast eth0 239.0.0.1 694 5 0", "mcast [eth0] bad ttl [5]"),
        (b"mcast eth0 239.0.0.1 694 255 0", "mcast [eth0] bad ttl [255]"),
        (b"mcast eth0 239.0.0.1 694 1 2", "mcast [eth0] bad loop [2]"),
        (b"mcast eth0 10.0.0.1 694 1 0", "mcast [eth0] bad addr [10.0.0.1]"),
        (b"mcast eth0 239.0.0.1 0 1 0", "mcast [eth0] bad port [0]"),
        (b"mcast eth0 239.0.0.1 694 1", "mcast [eth0] missing loop"),
        (b"mcast eth0 239.0.0.1 694", "mcast [eth0] missing ttl"),
        (b"mcast eth0 239.0.0.1", "mcast [eth0] missing port"),
        (b"mcast eth0", "mcast [eth0] missing mcast address"),
    ],
)
def test_mcast_errors(line: bytes, message: str) -> None:
    hacf, problems = parse(line + b"\n")
    assert hacf.media == ()
    assert errors(problems)[0].startswith(f"ha.cf:1: {message}")


def test_mcast_ttl_above_4_refused_even_if_docs_allow_255() -> None:
    _, problems = parse(b"mcast eth0 239.0.0.1 694 5 0\n")
    assert "heartbeat accepts 0 to 4" in errors(problems)[0]


# ------------------------------------------------------------ ping nodes --
def test_ping_nodes_are_not_cluster_nodes() -> None:
    hacf, problems = parse(b"node a\nping 10.0.0.254 10.0.0.253\nping_group gw 10.0.1.1 10.0.1.2\n")
    assert problems == []
    assert hacf.nodes == ("a",)
    assert hacf.ping_nodes == (
        PingNode("10.0.0.254", ("10.0.0.254",)),
        PingNode("10.0.0.253", ("10.0.0.253",)),
        PingNode("gw", ("10.0.1.1", "10.0.1.2"), group=True),
    )
    assert hacf.ping_lines == (2, 2, 3)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"ping gw.example", "ping: [gw.example] is not an IPv4 address"),
        (b"ping_group gw", "ping_group [gw] has no hosts"),
        (b"ping_group gw 10.0.0.1 bad", "ping_group [gw]: [bad] is not an IPv4 address"),
    ],
)
def test_ping_errors(line: bytes, message: str) -> None:
    _, problems = parse(line + b"\n")
    assert errors(problems) == [f"ha.cf:1: {message}"]


# ------------------------------------------------------ other directives --
@pytest.mark.parametrize(
    ("value", "expected"),
    [("on", AutoFailback.ON), ("off", AutoFailback.OFF), ("legacy", AutoFailback.LEGACY)],
)
def test_auto_failback(value: str, expected: AutoFailback) -> None:
    hacf, problems = parse(f"auto_failback {value}\n".encode())
    assert problems == []
    assert hacf.auto_failback is expected


def test_auto_failback_bad_value() -> None:
    _, problems = parse(b"auto_failback sometimes\n")
    assert errors(problems) == ["ha.cf:1: Invalid auto_failback [sometimes]; use on, off or legacy"]


@pytest.mark.parametrize(
    ("value", "expected", "text"),
    [
        ("on", AutoFailback.OFF, "has been changed to 'auto_failback off'"),
        ("off", AutoFailback.LEGACY, "strictly interpreted as 'auto_failback legacy'"),
    ],
)
def test_nice_failback_maps_with_warning(value: str, expected: AutoFailback, text: str) -> None:
    hacf, problems = parse(f"nice_failback {value}\n".encode())
    assert hacf.auto_failback is expected
    (w,) = warnings(problems)
    assert "nice_failback flag is obsolete" in w
    assert text in w


def test_msgfmt() -> None:
    assert parse(b"msgfmt classic\n")[0].msgfmt is WireFormat.CLASSIC
    assert parse(b"msgfmt netstring\n")[0].msgfmt is WireFormat.NETSTRING
    assert parse(b"node a\n")[0].msgfmt is None
    assert errors(parse(b"msgfmt xml\n")[1]) == [
        "ha.cf:1: Invalid msgfmt [xml]; use classic or netstring"
    ]


def test_integers() -> None:
    hacf, problems = parse(b"hopfudge 3\ndebug 1\nmax_rexmit_delay 300\nlogfile /x\n")
    assert problems == []
    assert (hacf.hopfudge, hacf.debug, hacf.max_rexmit_delay_ms) == (3, 1, 300)
    assert errors(parse(b"hopfudge 256\nlogfile /x\n")[1])[0].startswith(
        "ha.cf:1: Invalid hopfudge [256]"
    )
    assert errors(parse(b"max_rexmit_delay 0\nlogfile /x\n")[1])[0].startswith(
        "ha.cf:1: Invalid max_rexmit_delay [0]"
    )


def test_logfacility_validated() -> None:
    hacf, problems = parse(b"logfacility local0\n")
    assert problems == []
    assert hacf.logfacility == "local0"
    assert errors(parse(b"logfacility local9\n")[1])[0] == "ha.cf:1: Log facility(local9) not valid"
    assert parse(b"logfacility none\nlogfile /x\n")[0].logfacility is None


def test_no_log_target_means_logd() -> None:
    assert parse(b"node a\n")[0].use_logd is True
    assert parse(b"node a\nlogfile /x\n")[0].use_logd is None


def test_no_log_target_and_use_logd_off_is_an_error() -> None:
    _, problems = parse(b"node a\nuse_logd off\n")
    assert errors(problems) == ["ha.cf:2: No log entry found in ha.cf and use_logd is set to off"]


@pytest.mark.parametrize("value", ["other", "any"])
def test_autojoin_other_than_none_is_fatal(value: str) -> None:
    _, problems = parse(f"autojoin {value}\nlogfile /x\n".encode())
    assert errors(problems)[0].startswith(
        "ha.cf:1: R1 style resource management conflicts with autojoin"
    )
    assert parse(b"autojoin none\nlogfile /x\n")[1] == []


@pytest.mark.parametrize("directive", ["crm", "pacemaker"])
@pytest.mark.parametrize("value", ["on", "yes", "respawn", "minimal"])
def test_crm_on_refused(directive: str, value: str) -> None:
    _, problems = parse(f"{directive} {value}\nlogfile /x\n".encode())
    assert errors(problems)[0].startswith(f"ha.cf:1: crm/pacemaker [{value}] is not supported")


def test_crm_off_accepted() -> None:
    assert parse(b"crm off\npacemaker no\nlogfile /x\n")[1] == [
        Problem(F, 2, "pacemaker/crm directive used multiple times! (first on line 1)")
    ]
    assert parse(b"crm off\nlogfile /x\n")[1] == []


def test_accepted_directives() -> None:
    text = b"""\
logfile /x
uuidfrom nodename
hbgenmethod time
conn_logd_time 60
respawn hacluster /usr/lib/heartbeat/ipfail
apiauth ipfail gid=haclient uid=hacluster
realtime on
rtprio 5
compression bz2
coredumps true
coreroot /var/lib/heartbeat/cores
log_badpack false
syslogmsgfmt off
memreserve 6500
env HA_X=1
cluster linux-ha
baud 19200
"""
    _hacf, problems = parse(text)
    assert problems == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"uuidfrom mac", "Invalid uuidfrom directive [mac]; use file or nodename"),
        (b"hbgenmethod clock", "Invalid hbgenmethod directive [clock]; use file or time"),
        (b"respawn hacluster ipfail", "Client child command [ipfail] is not full path"),
        (b"realtime sometimes", "Invalid realtime [sometimes]"),
        (b"ucast6 eth0 ff02::1", "ucast6 [eth0] bad addr [ff02::1]"),
        (b"watchdog /dev/watchdog", "watchdog is not supported by hbmon: heartbeat pets"),
    ],
)
def test_bad_accepted_directives(line: bytes, message: str) -> None:
    _, problems = parse(line + b"\nlogfile /x\n")
    assert errors(problems)[0].startswith(f"ha.cf:1: {message}")


def test_respawn_keeps_the_command_as_written() -> None:
    hacf, problems = parse(b"respawn root  /usr/bin/thing -a  'x  y'\nlogfile /x\n")
    assert problems == []
    assert [(c.user, c.command, c.program) for c in hacf.respawn] == [
        ("root", "/usr/bin/thing -a  'x  y'", "thing")
    ]


def test_errors_are_collected_not_first_fail() -> None:
    _, problems = parse(b"keepalive 2s\nbogus 1\nmcast eth0 239.0.0.1 694 9 0\nudpport 0\n")
    assert [p.line for p in problems if not p.warning] == [1, 2, 3, 4]


def test_missing_value() -> None:
    _, problems = parse(b"keepalive\nlogfile /x\n")
    assert errors(problems) == ["ha.cf:1: keepalive: missing value"]
