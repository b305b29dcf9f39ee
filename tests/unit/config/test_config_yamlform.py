"""The YAML form: round trips to an equal Config, same rules, FILE:LINE: field problems."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cfgtools import SECRET, solr_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbmon.config.limits import SERIAL_BAUDS
from hbmon.config.loader import load_any, load_config
from hbmon.config.model import (
    ArbitratorSettings,
    AuthConfig,
    AuthKey,
    AuthMethod,
    AutoFailback,
    BcastMedium,
    Config,
    HbmonSettings,
    LogSettings,
    Mcast6Medium,
    McastMedium,
    Medium,
    PingNode,
    QuorumPolicy,
    Resource,
    ResourceGroup,
    RespawnClient,
    SerialMedium,
    Timers,
    Ucast6Medium,
    UcastMedium,
    WireFormat,
)
from hbmon.config.values import SYSLOG_FACILITIES
from hbmon.config.yamlform import from_yaml, to_yaml

F = "hbmon.yaml"


def reference(tmp_path: Path, node: str = "solr1") -> Config:
    cfg, problems = load_config(solr_dir(tmp_path, node), node)
    assert cfg is not None, problems
    return cfg


@pytest.mark.parametrize("node", ["solr1", "solr2"])
def test_reference_pair_round_trip(tmp_path: Path, node: str) -> None:
    cfg = reference(tmp_path, node)
    text = to_yaml(cfg)
    back, problems = from_yaml(text, F, None)
    assert back == cfg
    assert [p for p in problems if not p.warning] == []


def test_yaml_is_readable_and_embeds_secret_as_written(tmp_path: Path) -> None:
    doc = yaml.safe_load(to_yaml(reference(tmp_path)))
    assert doc["timers"] == {
        "keepalive": "2s",
        "deadtime": "30s",
        "warntime": "10s",
        "initdead": "60s",
        "deadping": "30s",
    }
    assert doc["auth"] == {"active": 1, "keys": [{"index": 1, "method": "sha1", "secret": SECRET}]}
    assert doc["auto_failback"] == "off"  # a string, not YAML's boolean false
    assert doc["ping_nodes"] == ["10.1.201.254"]
    assert doc["resources"] == [{"node": "solr2", "resources": ["IPaddr::10.1.201.80/24/em1"]}]


def test_node_argument_wins_over_file(tmp_path: Path) -> None:
    back, _ = from_yaml(to_yaml(reference(tmp_path)), F, "SOLR2")
    assert back is not None
    assert back.node == "solr2"


def minimal(**extra: object) -> str:
    doc: dict[str, object] = {
        "node": "a",
        "nodes": ["a", "b"],
        "media": [{"type": "ucast", "iface": "eth0", "peer": "10.0.0.2"}],
        "auth": {"active": 1, "keys": [{"index": 1, "method": "sha1", "secret": "k"}]},
        "auto_failback": "on",
        "timers": {"initdead": "60s"},
    }
    doc.update(extra)
    return yaml.safe_dump(doc)


def test_minimal_takes_model_defaults() -> None:
    cfg, problems = from_yaml(minimal(), F, None)
    assert cfg is not None, problems
    assert cfg.timers == Timers(initdead_ms=60000)
    assert cfg.udpport == 694
    assert cfg.media == (UcastMedium("eth0", "10.0.0.2", 694),)
    assert cfg.msgfmt is WireFormat.NETSTRING
    assert cfg.hbmon == HbmonSettings()


def test_times_as_strings_or_integer_ms() -> None:
    cfg, _ = from_yaml(
        minimal(timers={"keepalive": 500, "deadtime": "1.5s", "initdead": "60s"}), F, None
    )
    assert cfg is not None
    assert (cfg.timers.keepalive_ms, cfg.timers.deadtime_ms) == (500, 1500)


def test_the_handover_window_is_a_time_of_at_least_a_second() -> None:
    cfg, _ = from_yaml(minimal(hbmon={"handover_window": "45s"}), F, None)
    assert cfg is not None
    assert cfg.hbmon.handover_window_ms == 45000
    assert HbmonSettings().handover_window_ms == 30000  # heartbeat's restart: deadtime + 30 s
    cfg, problems = from_yaml(minimal(hbmon={"handover_window": "500ms"}), F, None)
    assert cfg is None
    (p,) = [p for p in problems if not p.warning]
    assert p.message == ("hbmon.handover_window: handover window [500 ms] must be at least 1 s")


def test_unquoted_off_means_off() -> None:
    cfg, _ = from_yaml(minimal().replace("auto_failback: 'on'", "auto_failback: off"), F, None)
    assert cfg is not None
    assert cfg.auto_failback is AutoFailback.OFF


def test_validation_names_file_line_and_field() -> None:
    text = minimal(timers={"keepalive": "2s", "deadtime": "3s", "initdead": "60s"})
    cfg, problems = from_yaml(text, F, None)
    assert cfg is None
    line = text.splitlines().index("  deadtime: 3s") + 1
    assert [str(p) for p in problems if not p.warning] == [
        f"hbmon.yaml:{line}: timers.deadtime: Dead time [3000] is too small compared to"
        " keeplive [2000]"
    ]


def test_mcast_ttl_5_refused_in_yaml() -> None:
    media = [{"type": "mcast", "iface": "eth0", "group": "239.0.0.1", "ttl": 5, "loop": False}]
    cfg, problems = from_yaml(minimal(media=media), F, None)
    assert cfg is None
    (p,) = [p for p in problems if not p.warning]
    assert p.message.startswith("media[0].ttl: mcast [eth0] bad ttl [5]")
    assert p.line > 0


def test_serial_ipv6_respawn_and_env_in_yaml() -> None:
    media = [
        {"type": "serial", "device": "/dev/ttyS0"},
        {"type": "ucast6", "iface": "em1", "peer": "2001:db8::50"},
        {"type": "mcast6", "iface": "em2", "group": "ff02::694", "hops": 1, "loop": False},
    ]
    text = minimal(
        media=media,
        respawn=[{"user": "nobody", "command": "/usr/bin/x --y"}],
        env={"ALERT": "ops@example.org"},
    )
    cfg, problems = from_yaml(text, F, None)
    assert cfg is not None, problems
    assert cfg.media == (
        SerialMedium("/dev/ttyS0", 19200),
        Ucast6Medium("em1", "2001:db8::50", 694),
        Mcast6Medium("em2", "ff02::694", 694, 1, False),
    )
    assert cfg.respawn == (RespawnClient("nobody", "/usr/bin/x --y"),)
    assert cfg.env == (("ALERT", "ops@example.org"),)
    bad = minimal(
        media=[{"type": "mcast6", "iface": "em2", "group": "ff0e::1", "hops": 1,
                "loop": False}, {"type": "serial"}],
        env={"A=B": "x"},
    )  # fmt: skip
    cfg, problems = from_yaml(bad, F, None)
    assert cfg is None
    assert sorted(p.message for p in problems if not p.warning) == [
        "env['A=B']: a variable name, without '='",
        "media[0].group: mcast6 [em2] bad addr [ff0e::1]",
        "media[1].device: required",
    ]


def test_structural_errors_collected() -> None:
    text = minimal(
        colour="blue",
        timers={"keepalive": "2 sec"},
        media=[{"type": "token-ring", "iface": "tr0"}],
        udpport="x",
    )
    cfg, problems = from_yaml(text, F, None)
    assert cfg is None
    fields = sorted(p.message.split(":")[0] for p in problems if not p.warning)
    assert fields == ["colour", "media", "media[0].type", "timers.keepalive", "udpport"]


def test_missing_auth_and_syntax_error() -> None:
    cfg, problems = from_yaml("nodes: [a]\nnode: a\nmedia: []\n", F, None)
    assert cfg is None
    assert "auth: required: the authentication keys" in [p.message for p in problems]
    cfg, problems = from_yaml("nodes: [a\n", F, None)
    assert cfg is None
    assert problems[0].message.startswith("YAML syntax error")


def test_secret_not_in_yaml_problems() -> None:
    auth = {"active": 1, "keys": [{"index": 1, "method": "crc", "secret": SECRET}]}
    cfg, problems = from_yaml(minimal(auth=auth), F, None)
    assert cfg is None
    assert problems
    assert all(SECRET not in str(p) for p in problems)


def test_unquoted_numeric_secret_refused() -> None:
    text = minimal()
    assert "secret: k\n" in text
    cfg, problems = from_yaml(text.replace("secret: k\n", "secret: 0777\n"), F, None)
    assert cfg is None
    assert any(
        p.message.startswith("auth.keys[0].secret: must be a quoted string") for p in problems
    )


def test_binary_secret_round_trips_as_base64() -> None:
    cfg, _ = from_yaml(minimal(), F, None)
    assert cfg is not None
    odd = AuthConfig(active=2, keys=(AuthKey(2, AuthMethod.SHA256, b"\x00\xff key\n"),))
    cfg = Config(**{**_fields(cfg), "auth": odd})
    text = to_yaml(cfg)
    assert "secret_base64" in text
    assert from_yaml(text, F, None)[0] == cfg


def _fields(cfg: Config) -> dict[str, object]:
    return {name: getattr(cfg, name) for name in Config.__dataclass_fields__}


def test_yaml_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "hbmon.yaml"
    path.write_text(to_yaml(reference(tmp_path)))
    path.chmod(0o600)
    cfg, problems = load_any(path)
    assert cfg is not None, problems
    path.chmod(0o644)
    cfg, problems = load_any(path)
    assert cfg is None
    assert str(problems[0]).startswith(f"{path}:0: Bad permissions on config file")


# ------------------------------------------------------------- hypothesis --
_name = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
_ip = st.ip_addresses(v=4).map(str)
_mcast_ip = st.ip_addresses(network="224.0.0.0/4").map(str)
_ip6 = st.ip_addresses(network="2001:db8::/32").map(str)
_port = st.integers(1, 65535)
_path = _name.map(lambda n: Path("/var/lib") / n)
_word = st.from_regex(r"[A-Za-z0-9_./=-]{1,12}", fullmatch=True)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    nodes = draw(st.lists(_name, min_size=1, max_size=4, unique=True))
    keepalive = draw(st.integers(1, 5000))
    deadtime = 2 * keepalive + draw(st.integers(1, 100000))
    timers = Timers(
        keepalive_ms=keepalive,
        deadtime_ms=deadtime,
        warntime_ms=draw(st.integers(1, 2 * deadtime)),
        initdead_ms=deadtime + draw(st.integers(0, 100000)),
        deadping_ms=2 * keepalive + draw(st.integers(1, 100000)),
    )
    medium: st.SearchStrategy[Medium] = st.one_of(
        st.builds(UcastMedium, iface=_name, peer=_ip, port=_port),
        st.builds(BcastMedium, iface=_name, port=_port),
        st.builds(
            McastMedium,
            iface=_name,
            group=_mcast_ip,
            port=_port,
            ttl=st.integers(0, 4),
            loop=st.booleans(),
        ),
        st.builds(Ucast6Medium, iface=_name, peer=_ip6, port=_port),
        st.builds(
            Mcast6Medium,
            iface=_name,
            group=st.integers(1, 0xFFFF).map(lambda n: f"ff02::{n:x}"),
            port=_port,
            hops=st.integers(0, 4),
            loop=st.booleans(),
        ),
        st.builds(
            SerialMedium,
            device=_name.map(lambda n: f"/dev/{n}"),
            baud=st.sampled_from(SERIAL_BAUDS),
        ),
    )
    ping_ips = draw(st.lists(_ip, max_size=3, unique=True))
    groups = draw(st.lists(st.lists(_ip, min_size=1, max_size=3), max_size=2))
    ping_ips += draw(st.lists(_ip6, max_size=2, unique=True))
    ping_nodes = tuple(PingNode(ip, (ip,)) for ip in ping_ips) + tuple(
        PingNode(f"pg-{i}", tuple(g), group=True) for i, g in enumerate(groups)
    )
    indexes = draw(st.lists(st.integers(0, 15), min_size=1, max_size=4, unique=True))
    keys = []
    for index in indexes:
        method = draw(st.sampled_from(AuthMethod))
        secret = b"" if method is AuthMethod.CRC else draw(st.binary(min_size=1, max_size=40))
        keys.append(AuthKey(index, method, secret))
    resource = st.builds(
        Resource,
        agent=st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True),
        args=st.lists(_word, max_size=3).map(tuple),
    )
    res_groups = draw(
        st.lists(
            st.builds(
                ResourceGroup,
                node=st.sampled_from(nodes),
                resources=st.lists(resource, min_size=1, max_size=3).map(tuple),
            ),
            max_size=3,
            unique_by=lambda g: g.key,
        )
    )
    tls = draw(st.none() | st.tuples(_path, _path))
    # A TTL the timing rule accepts whatever the keepalive (config/leasetiming.py LeaseTiming).
    ttl_s = (keepalive + 500 + 300) // 990 + 1 + draw(st.integers(0, 30))
    arbitrator = draw(
        st.none()
        | st.builds(
            ArbitratorSettings,
            endpoints=st.lists(
                _ip.map(lambda ip: f"https://{ip}:2379"), min_size=1, max_size=3
            ).map(tuple),
            cluster=st.just("") | _name,
            prefix=_name.map(lambda n: f"/{n}"),
            lease_ttl_ms=st.just(ttl_s * 1000),
            ca=st.none() | _path,
            cert=st.just(Path("/etc/hbmon/n.pem")),
            key=st.just(Path("/etc/hbmon/n.key")),
        )
    )
    return Config(
        node=draw(st.sampled_from(nodes)),
        nodes=tuple(nodes),
        timers=timers,
        udpport=draw(_port),
        media=tuple(draw(st.lists(medium, min_size=1, max_size=3))),
        ping_nodes=ping_nodes,
        auth=AuthConfig(active=draw(st.sampled_from(indexes)), keys=tuple(keys)),
        resources=tuple(res_groups),
        auto_failback=draw(st.sampled_from(AutoFailback)),
        msgfmt=draw(st.sampled_from(WireFormat)),
        hopfudge=draw(st.integers(0, 255)),
        max_rexmit_delay_ms=draw(st.integers(1, 10000)),
        logging=LogSettings(
            logfacility=draw(st.none() | st.sampled_from(sorted(SYSLOG_FACILITIES))),
            logfile=draw(st.none() | _path),
            debugfile=draw(st.none() | _path),
            use_logd=draw(st.booleans()),
            debug=draw(st.integers(0, 255)),
        ),
        hbmon=HbmonSettings(
            metrics_address=f"{draw(_ip)}:{draw(_port)}",
            state_dir=draw(_path),
            quorum_policy=draw(st.sampled_from(QuorumPolicy)),
            failback_stickiness_ms=draw(st.integers(0, 10**7)),
            handover_window_ms=draw(st.integers(1000, 10**7)),
            tls_cert=tls[0] if tls else None,
            tls_key=tls[1] if tls else None,
        ),
        raw=tuple(draw(st.lists(st.tuples(_name, st.text(max_size=20)), max_size=4))),
        respawn=tuple(
            draw(
                st.lists(
                    st.builds(
                        RespawnClient, user=_name, command=_word.map(lambda w: f"/usr/bin/{w} -x")
                    ),
                    max_size=2,
                )
            )
        ),
        env=tuple(
            draw(
                st.lists(
                    st.tuples(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), _word),
                    max_size=3,
                    unique_by=lambda kv: kv[0],
                )
            )
        ),
        arbitrator=arbitrator,
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_round_trip_property(cfg: Config) -> None:
    back, problems = from_yaml(to_yaml(cfg), F, None)
    assert [p for p in problems if not p.warning] == []
    assert back == cfg
    for key in cfg.auth.keys:
        if len(key.secret) >= 8:
            assert all(key.secret.decode("latin-1") not in str(p) for p in problems)
