"""The ha.d front end end to end: reference pair, fatal checks with FILE:LINE, collection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cfgtools import AUTHKEYS, HACF, SECRET, make_dir, solr_dir

from hbmon.config.loader import load_any, load_config
from hbmon.config.model import (
    DEFAULT_KEEPALIVE_MS,
    AutoFailback,
    PingNode,
    UcastMedium,
    WireFormat,
    default_initdead_ms,
    default_warntime_ms,
)
from hbmon.config.problems import Problem


def errors(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems if not p.warning]


@pytest.mark.parametrize(("node", "peer_ip"), [("solr1", "10.1.201.50"), ("solr2", "10.1.201.49")])
def test_reference_pair_is_clean(tmp_path: Path, node: str, peer_ip: str) -> None:
    d = solr_dir(tmp_path, node)
    cfg, problems = load_config(d, node)
    assert errors(problems) == []
    assert cfg is not None
    assert cfg.node == node
    assert cfg.nodes == ("solr1", "solr2")
    assert cfg.peers == tuple(n for n in ("solr1", "solr2") if n != node)
    assert cfg.ping_nodes == (PingNode("10.1.201.254", ("10.1.201.254",)),)
    t = cfg.timers
    assert (t.keepalive_ms, t.deadtime_ms, t.warntime_ms, t.initdead_ms, t.deadping_ms) == (
        2000,
        30000,
        10000,
        60000,
        30000,
    )
    assert cfg.media == (UcastMedium("em1", peer_ip, 694),)
    assert cfg.auto_failback is AutoFailback.OFF
    assert cfg.msgfmt is WireFormat.NETSTRING
    assert cfg.auth.signing_key.secret == SECRET.encode()
    assert [(g.node, g.key) for g in cfg.resources] == [("solr2", "IPaddr::10.1.201.80/24/em1")]
    assert ("keepalive", "2") in cfg.raw


def test_reference_pair_secret_absent_from_repr(tmp_path: Path) -> None:
    cfg, problems = load_config(solr_dir(tmp_path, "solr1"), "solr1")
    assert SECRET not in repr(cfg)
    assert all(SECRET not in str(p) for p in problems)


def test_defaults_derive_from_model_helpers(tmp_path: Path) -> None:
    d = make_dir(tmp_path, hacf=b"ucast eth0 10.0.0.2\nnode alpha beta\nlogfile /x\n")
    cfg, problems = load_config(d, "alpha")
    assert cfg is not None, problems
    t = cfg.timers
    assert t.keepalive_ms == DEFAULT_KEEPALIVE_MS
    assert t.warntime_ms == default_warntime_ms(t.deadtime_ms)
    assert t.initdead_ms == default_initdead_ms(t.deadtime_ms)
    assert t.deadping_ms == t.deadtime_ms
    assert cfg.auto_failback is AutoFailback.LEGACY
    assert cfg.msgfmt is WireFormat.NETSTRING
    assert cfg.logging.use_logd is False


@pytest.mark.parametrize(
    ("deadtime", "expected_initdead"), [("30", 30000), ("5", 12000), ("8", 16000)]
)
def test_initdead_default(tmp_path: Path, deadtime: str, expected_initdead: int) -> None:
    d = make_dir(
        tmp_path, hacf=f"deadtime {deadtime}\nucast e 10.0.0.2\nnode alpha\nlogfile /x\n".encode()
    )
    cfg, problems = load_config(d, "alpha")
    assert cfg is not None, problems
    assert cfg.timers.initdead_ms == expected_initdead


def test_msgfmt_classic_when_written(tmp_path: Path) -> None:
    cfg, _ = load_config(make_dir(tmp_path, hacf=HACF + b"msgfmt classic\n"), "alpha")
    assert cfg is not None
    assert cfg.msgfmt is WireFormat.CLASSIC


# ------------------------------------------------------------ fatal checks --
def check(tmp_path: Path, hacf: bytes, node: str = "alpha", **kw: bytes) -> list[str]:
    d = make_dir(tmp_path, hacf=hacf, **kw)  # type: ignore[arg-type]
    cfg, problems = load_config(d, node)
    assert cfg is None
    prefix = str(d) + "/"
    return [s.replace(prefix, "") for s in errors(problems)]


def test_dead_time_too_small(tmp_path: Path) -> None:
    hacf = b"keepalive 2\ndeadtime 4\nucast e 10.0.0.2\nnode alpha\nlogfile /x\n"
    assert check(tmp_path, hacf) == [
        "ha.cf:2: Dead time [4000] is too small compared to keeplive [2000]"
    ]


def test_dead_time_too_small_placed_on_keepalive_when_deadtime_defaulted(tmp_path: Path) -> None:
    hacf = b"node alpha\nkeepalive 15\nucast e 10.0.0.2\nlogfile /x\n"
    assert check(tmp_path, hacf) == [
        "ha.cf:2: Dead time [30000] is too small compared to keeplive [15000]"
    ]


def test_ping_dead_time_too_small(tmp_path: Path) -> None:
    hacf = b"keepalive 2\ndeadping 3\nucast e 10.0.0.2\nnode alpha\nlogfile /x\n"
    assert check(tmp_path, hacf) == [
        "ha.cf:2: Ping dead time [3000] is too small compared to keeplive [2000]"
    ]


def test_initdead_smaller_than_deadtime(tmp_path: Path) -> None:
    hacf = b"deadtime 30\ninitdead 20\nucast e 10.0.0.2\nnode alpha\nlogfile /x\n"
    assert check(tmp_path, hacf) == [
        "ha.cf:2: Initial dead time [20000] is smaller than deadtime [30000]"
    ]


def test_current_node_not_in_configuration(tmp_path: Path) -> None:
    assert check(tmp_path, HACF, node="gamma") == [
        "ha.cf:0: Current node [gamma] not in configuration!"
    ]


def test_no_media_and_no_nodes(tmp_path: Path) -> None:
    assert check(tmp_path, b"keepalive 1\nlogfile /x\n") == [
        "ha.cf:0: no nodes defined",
        "ha.cf:0: Current node [alpha] not in configuration!",
        "ha.cf:0: No heartbeat media defined",
        "haresources:1: Bad nodename in haresources [alpha]",
    ]


def test_bad_nodename_in_haresources(tmp_path: Path) -> None:
    res = b"alpha 10.0.0.5\n\nGamma httpd\n"
    assert check(tmp_path, HACF, haresources=res) == [
        "haresources:3: Bad nodename in haresources [gamma]"
    ]


def test_duplicate_group_key(tmp_path: Path) -> None:
    res = b"alpha httpd\nbeta httpd\n"
    (msg,) = check(tmp_path, HACF, haresources=res)
    assert msg.startswith("haresources:2: resource group key [httpd] is already used")


def test_missing_files(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    cfg, problems = load_config(d, "alpha")
    assert cfg is None
    assert [(Path(p.file).name, p.line) for p in problems] == [
        ("ha.cf", 0),
        ("authkeys", 0),
        ("haresources", 0),
    ]
    assert problems[0].message.startswith(f"Cannot open config file [{d}/ha.cf]")


def test_authkeys_0644_refused(tmp_path: Path) -> None:
    d = make_dir(tmp_path, mode=0o644)
    cfg, problems = load_config(d, "alpha")
    assert cfg is None
    assert errors(problems) == [
        f"{d}/authkeys:0: Bad permissions on keyfile [{d}/authkeys], 600 recommended."
    ]


def test_mcast_ttl_5_refused(tmp_path: Path) -> None:
    hacf = HACF + b"mcast eth1 239.0.0.1 694 5 0\n"
    (msg,) = check(tmp_path, hacf)
    assert msg.startswith("ha.cf:10: mcast [eth1] bad ttl [5]")


def test_many_errors_collected_across_files(tmp_path: Path) -> None:
    hacf = b"keepalive 2s\nnode alpha\nbogus\nucast eth0\nlogfile /x\n"
    authkeys = b"auth 1\n1 crc key\n"
    res = b"omega httpd\n"
    got = check(tmp_path, hacf, authkeys=authkeys, haresources=res)
    assert [m.split(":")[0] + ":" + m.split(":")[1] for m in got] == [
        "ha.cf:1",
        "ha.cf:3",
        "ha.cf:4",
        "authkeys:2",
        "authkeys:1",
        "ha.cf:0",
        "haresources:1",
    ]


def test_authkeys_problems_located_on_their_lines(tmp_path: Path) -> None:
    assert check(tmp_path, HACF, authkeys=b"# keys\nauth 2\n1 sha1 abc\n") == [
        "authkeys:2: Auth Key [2] not found in keyfile [authkeys]"
    ]


# --------------------------------------------------------------- warnings --
def warnings_of(tmp_path: Path, hacf: bytes, authkeys: bytes = AUTHKEYS) -> list[str]:
    d = make_dir(tmp_path, hacf=hacf, authkeys=authkeys)
    cfg, problems = load_config(d, "alpha")
    assert cfg is not None, problems
    return [str(p).replace(str(d) + "/", "") for p in problems if p.warning]


def test_warntime_not_below_deadtime_warns(tmp_path: Path) -> None:
    hacf = HACF.replace(b"warntime 10", b"warntime 30")
    (w,) = warnings_of(tmp_path, hacf)
    assert w.startswith("ha.cf:3: warning: warntime [30000 ms] is not below deadtime")


def test_initdead_below_twice_deadtime_warns(tmp_path: Path) -> None:
    hacf = HACF.replace(b"initdead 60", b"initdead 40")
    (w,) = warnings_of(tmp_path, hacf)
    assert w.startswith("ha.cf:4: warning: initdead [40000 ms] is less than twice deadtime")


def test_initdead_below_10s_warns_heartbeat_wording(tmp_path: Path) -> None:
    hacf = b"keepalive 1\ndeadtime 4\nwarntime 2\ninitdead 8\nucast e 10.0.0.2\n"
    hacf += b"node alpha\nauto_failback off\nlogfile /x\n"
    assert warnings_of(tmp_path, hacf) == [
        "ha.cf:4: warning: Initial dead time [8000 ms] may be too small!"
    ]


def test_crc_warns_loudly(tmp_path: Path) -> None:
    (w,) = warnings_of(tmp_path, HACF, authkeys=b"auth 1\n1 crc\n")
    assert w.startswith("authkeys:2: warning: auth key [1] uses crc, an unkeyed checksum")


def test_legacy_auto_failback_warns(tmp_path: Path) -> None:
    (w,) = warnings_of(tmp_path, HACF.replace(b"auto_failback on", b"auto_failback legacy"))
    assert "Deprecated 'legacy' auto_failback option selected." in w
    assert w.startswith("ha.cf:6: warning:")


# -------------------------------------------------------------- node name --
def test_nodeinfo_overrides_uname_and_node_overrides_nodeinfo(tmp_path: Path) -> None:
    d = make_dir(tmp_path)
    (d / "nodeinfo").write_text("Beta\nignored\n")
    cfg, _ = load_config(d)
    assert cfg is not None
    assert cfg.node == "beta"
    cfg, _ = load_config(d, "ALPHA")
    assert cfg is not None
    assert cfg.node == "alpha"


def test_uname_when_no_nodeinfo(tmp_path: Path) -> None:
    name = os.uname().nodename.lower()
    hacf = HACF + f"node {name}\n".encode()
    cfg, problems = load_config(make_dir(tmp_path, hacf=hacf))
    assert cfg is not None, problems
    assert cfg.node == name


def test_load_any_directory(tmp_path: Path) -> None:
    cfg, _ = load_any(make_dir(tmp_path), "alpha")
    assert cfg is not None
