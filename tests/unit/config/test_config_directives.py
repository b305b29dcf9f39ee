"""Every heartbeat 3.0.6 directive is classified, the parser obeys the class, and
hbmon-accept is the one way past an unsupported directive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbmon.config.accept import ACCEPT_FILE, acceptable, parse_accept
from hbmon.config.directives import API_CLIENTS, BY_NAME, DIRECTIVES, Support, markdown_table
from hbmon.config.hacf import parse_hacf
from hbmon.config.hadir import load_ha_dir

# heartbeat 3.0.6's legal directives: config.c Directives[] (normalpoll under
# ALLOWPOLLCHOICE), WLdirectives[], the HBcomm plugins in lib/plugins/HBcomm
# (and openais, an older one), and the `udp` alias (DIRTYALIASKLUDGE).
HEARTBEAT_DIRECTIVES = {
    # Directives[]
    "cluster", "node", "hopfudge", "keepalive", "deadtime", "deadping", "initdead",
    "warntime", "watchdog", "baud", "udpport", "logfacility", "logfile", "debugfile",
    "nice_failback", "auto_failback", "rtprio", "hbgenmethod", "realtime", "debug",
    "normalpoll", "msgfmt", "use_logd", "conn_logd_time", "use_apphbd", "log_badpack",
    "syslogmsgfmt", "coredumps", "coreroot", "crm_daemon_dir", "crmd_spawns_pengine", "crm",
    "pacemaker", "autojoin", "uuidfrom", "compression", "compression_threshold",
    "traditional_compression", "env", "max_rexmit_delay", "record_config_changes",
    "record_pengine_inputs", "enable_config_writes", "memreserve", "quorum_server",
    # WLdirectives[]
    "stonith", "stonith_host", "apiauth", "respawn", "failfast",
    # HBcomm plugins
    "bcast", "mcast", "mcast6", "ucast", "ucast6", "serial", "ping", "ping6", "ping_group",
    "hbaping", "rds", "tipc", "openais",
    # alias
    "udp",
}  # fmt: skip

# One line heartbeat accepts for each directive (values valid for it).
SAMPLE = {
    "cluster": "cluster linux-ha",
    "node": "node other",
    "hopfudge": "hopfudge 1",
    "keepalive": "keepalive 1",
    "deadtime": "deadtime 10",
    "deadping": "deadping 10",
    "initdead": "initdead 20",
    "warntime": "warntime 5",
    "watchdog": "watchdog /dev/watchdog",
    "baud": "baud 38400",
    "udpport": "udpport 694",
    "logfacility": "logfacility local0",
    "logfile": "logfile /var/log/ha-log",
    "debugfile": "debugfile /var/log/ha-debug",
    "nice_failback": "nice_failback on",
    "auto_failback": "auto_failback on",
    "rtprio": "rtprio 5",
    "hbgenmethod": "hbgenmethod time",
    "realtime": "realtime on",
    "debug": "debug 1",
    "normalpoll": "normalpoll true",
    "msgfmt": "msgfmt netstring",
    "use_logd": "use_logd yes",
    "conn_logd_time": "conn_logd_time 60",
    "use_apphbd": "use_apphbd on",
    "log_badpack": "log_badpack off",
    "syslogmsgfmt": "syslogmsgfmt true",
    "coredumps": "coredumps true",
    "coreroot": "coreroot /var/lib/heartbeat/cores",
    "crm_daemon_dir": "crm_daemon_dir /usr/lib/pacemaker",
    "crmd_spawns_pengine": "crmd_spawns_pengine true",
    "crm": "crm off",
    "pacemaker": "pacemaker off",
    "autojoin": "autojoin none",
    "uuidfrom": "uuidfrom nodename",
    "compression": "compression bz2",
    "compression_threshold": "compression_threshold 2",
    "traditional_compression": "traditional_compression no",
    "env": "env ALERT=ops@example.org",
    "max_rexmit_delay": "max_rexmit_delay 250",
    "record_config_changes": "record_config_changes on",
    "record_pengine_inputs": "record_pengine_inputs on",
    "enable_config_writes": "enable_config_writes on",
    "memreserve": "memreserve 6500",
    "quorum_server": "quorum_server 192.0.2.1",
    "stonith": "stonith baytech /etc/ha.d/conf/stonith.baytech",
    "stonith_host": "stonith_host * external/ipmi node1 192.0.2.9 admin secret lan",
    "apiauth": "apiauth ipfail gid=haclient uid=hacluster",
    "respawn": "respawn hacluster /usr/lib/heartbeat/ipfail",
    "failfast": "failfast hacluster /usr/lib/heartbeat/cleanup",
    "bcast": "bcast eth0",
    "mcast": "mcast eth0 239.0.0.1 694 1 0",
    "mcast6": "mcast6 eth0 ff02::694 694 1 0",
    "ucast": "ucast eth0 192.0.2.2",
    "ucast6": "ucast6 eth0 fe80::2",
    "serial": "serial /dev/ttyS0",
    "ping": "ping 192.0.2.254",
    "ping6": "ping6 2001:db8::fe",
    "ping_group": "ping_group gw 192.0.2.253 192.0.2.254",
    "hbaping": "hbaping fc-card-name",
    "rds": "rds eth0",
    "tipc": "tipc eth0",
    "openais": "openais eth0",
    "udp": "udp eth0",
}
F = "ha.cf"


def errors(problems: list[object]) -> list[str]:
    return [str(p) for p in problems if not getattr(p, "warning", False)]


def test_every_heartbeat_directive_is_classified_and_nothing_else() -> None:
    assert set(BY_NAME) == HEARTBEAT_DIRECTIVES
    assert len(DIRECTIVES) == len(BY_NAME)
    assert set(SAMPLE) == HEARTBEAT_DIRECTIVES
    for d in DIRECTIVES:
        assert d.note, d.name


@pytest.mark.parametrize("name", sorted(HEARTBEAT_DIRECTIVES))
def test_the_parser_obeys_the_class(name: str) -> None:
    line = SAMPLE[name].encode()
    _, problems = parse_hacf(line + b"\nlogfile /x\n", F)
    if BY_NAME[name].support is Support.UNSUPPORTED:
        assert errors(problems) == [
            f"ha.cf:1: {name} is not supported by hbmon: {BY_NAME[name].note}"
            f" (to run without it anyway, list [{name}] in {ACCEPT_FILE})"
        ]
    else:
        assert errors(problems) == [], problems


@pytest.mark.parametrize("name", [d.name for d in DIRECTIVES if d.support is Support.UNSUPPORTED])
def test_an_accepted_unsupported_directive_is_a_warning_naming_the_accept_line(name: str) -> None:
    accepted, found = parse_accept(f"# knowingly\n{name}\n".encode(), "hbmon-accept")
    assert found == []
    hacf, problems = parse_hacf(SAMPLE[name].encode() + b"\nlogfile /x\n", F, accepted)
    assert errors(problems) == []
    assert [str(p) for p in problems] == [
        f"ha.cf:1: warning: {name} is not supported by hbmon: {BY_NAME[name].note}"
        " (accepted in hbmon-accept:2)"
    ]
    assert hacf.accepted == {name}


def test_an_api_client_respawn_is_refused_by_name_and_acceptable() -> None:
    line = b"respawn hacluster /usr/lib/heartbeat/dopd\nlogfile /x\n"
    hacf, problems = parse_hacf(line, F)
    assert errors(problems)[0].startswith(
        "ha.cf:1: respawn dopd is not supported by hbmon: dopd signs on to heartbeat's"
        " client API, which hbmon does not have, so it is not run: DRBD's outdate-peer"
    )
    accepted, _ = parse_accept(b"respawn dopd\n", "hbmon-accept")
    hacf, problems = parse_hacf(line, F, accepted)
    assert errors(problems) == []
    assert hacf.respawn == ()  # accepted, and not run
    assert set(API_CLIENTS) >= {"dopd", "hbagent"}


def test_use_apphbd_off_changes_nothing_and_is_accepted() -> None:
    assert parse_hacf(b"use_apphbd off\nlogfile /x\n", F)[1] == []


def test_an_accept_entry_that_names_nothing_refusable_is_an_error() -> None:
    _, problems = parse_accept(b"failfast\nstonith-host\nkeepalive\nrespawn myapp\n", "acc")
    assert [str(p) for p in problems] == [
        f"acc:{n}: [{w}] is not something hbmon refuses; nothing to accept"
        " (write the directive as the error names it)"
        for n, w in ((2, "stonith-host"), (3, "keepalive"), (4, "respawn myapp"))
    ]


def _ha_dir(tmp_path: Path, hacf: str, accept: str | None) -> Path:
    (tmp_path / "ha.cf").write_text(hacf)
    keys = tmp_path / "authkeys"
    keys.write_text("auth 1\n1 sha1 secret\n")
    keys.chmod(0o600)
    (tmp_path / "haresources").write_text("")
    if accept is not None:
        (tmp_path / ACCEPT_FILE).write_text(accept)
    return tmp_path


BASE = "node a b\nbcast eth0\nlogfile /x\ndeadtime 10\ninitdead 20\nauto_failback off\n"


def test_the_ha_dir_loader_reads_hbmon_accept_beside_ha_cf(tmp_path: Path) -> None:
    d = _ha_dir(tmp_path, BASE + "failfast hacluster /usr/lib/heartbeat/cleanup\n", None)
    cfg, problems = load_ha_dir(d, "a")
    assert cfg is None
    assert any("failfast is not supported by hbmon" in str(p) for p in problems)

    (d / ACCEPT_FILE).write_text("failfast\nwatchdog\n")
    cfg, problems = load_ha_dir(d, "a")
    assert cfg is not None
    assert [str(p) for p in problems] == [
        f"{d / 'ha.cf'}:7: warning: failfast is not supported by hbmon:"
        f" {BY_NAME['failfast'].note} (accepted in {d / ACCEPT_FILE}:1)",
        f"{d / ACCEPT_FILE}:2: warning: [watchdog] is accepted here but ha.cf does not use it",
    ]


def test_a_bad_accept_file_stops_the_load(tmp_path: Path) -> None:
    d = _ha_dir(tmp_path, BASE, "stonith_hots\n")
    cfg, problems = load_ha_dir(d, "a")
    assert cfg is None
    assert errors(problems) == [
        f"{d / ACCEPT_FILE}:1: [stonith_hots] is not something hbmon refuses; nothing to"
        " accept (write the directive as the error names it)"
    ]


def test_the_docs_table_is_the_generated_one() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "hacf-directives.md").read_text()
    m = re.search(r"<!-- generated: [^>]*-->\n(.*)<!-- end generated -->", doc, re.S)
    assert m is not None
    assert m.group(1) == markdown_table(), "run: python -m hbmon.config.directives"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_accept_file_gives_problems_never_a_traceback(data: bytes) -> None:
    accepted, problems = parse_accept(data, "acc")
    for p in problems:
        assert p.file == "acc"
        assert 1 <= p.line <= data.count(b"\n") + 1
    assert all(acceptable(label) for label in accepted.lines)


def test_hbmon_watch_beside_heartbeat_takes_them_as_warnings(tmp_path: Path) -> None:
    # heartbeat runs the cluster and does what they say: watching loses nothing.
    d = _ha_dir(
        tmp_path,
        BASE + "failfast hacluster /usr/lib/heartbeat/cleanup\nwatchdog /dev/watchdog\n",
        None,
    )
    assert load_ha_dir(d, "a")[0] is None
    cfg, problems = load_ha_dir(d, "a", watching=True)
    assert cfg is not None
    assert [str(p) for p in problems] == [
        f"{d / 'ha.cf'}:{n}: warning: {name} is not supported by hbmon: {BY_NAME[name].note}"
        " (heartbeat does it; hbmon watch only observes)"
        for n, name in ((7, "failfast"), (8, "watchdog"))
    ]
