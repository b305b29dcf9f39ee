"""The arbitrator's settings: YAML section, the side file beside ha.cf, the timing rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfgtools import make_dir, messages

from hbmon.config.leasetiming import LeaseTiming
from hbmon.config.loader import load_config
from hbmon.config.model import (
    ARBITRATOR_CLOCK_DRIFT,
    ARBITRATOR_RELEASE_LEAD_MS,
    ArbitratorSettings,
    Timers,
    default_lease_ttl_ms,
)
from hbmon.config.show import config_to_dict
from hbmon.config.yamlarbiter import ARBITRATOR_FILE
from hbmon.config.yamlform import from_yaml, to_yaml

BASE = """\
nodes: [alpha, beta]
node: alpha
timers: {keepalive: 1s, deadtime: 3s, warntime: 2s, initdead: 12s}
media: [{type: ucast, iface: eth0, peer: 10.0.0.2}]
auth: {active: 1, keys: [{index: 1, method: sha1, secret: "k3y-s3cr3t"}]}
auto_failback: "off"
"""


def yaml_cfg(section: str) -> tuple[object, list[str]]:
    cfg, problems = from_yaml(BASE + section, "hbmon.yaml")
    return cfg, messages(problems)


def test_default_ttl_follows_deadtime_in_whole_seconds() -> None:
    assert default_lease_ttl_ms(3000) == 2000
    assert default_lease_ttl_ms(30000) == 29000
    assert default_lease_ttl_ms(2600) == 2000
    assert default_lease_ttl_ms(1200) == 1000  # never below etcd's unit


def test_timing_rule_numbers() -> None:
    t = LeaseTiming.of(
        Timers(keepalive_ms=1000, deadtime_ms=3000), ArbitratorSettings(endpoints=("x",))
    )
    assert t.ttl_s == 2
    hold = 2 * (1 - ARBITRATOR_CLOCK_DRIFT) - ARBITRATOR_RELEASE_LEAD_MS / 1000
    assert t.hold_s(2) == pytest.approx(hold)
    assert t.renewal_fits()  # 1 s + 0.5 s <= 1.68 s
    assert t.key_gone_by_deadtime()  # 2 s + 0.5 s <= 3 s
    short = LeaseTiming.of(
        Timers(keepalive_ms=1000, deadtime_ms=3000),
        ArbitratorSettings(endpoints=("x",), lease_ttl_ms=1000),
    )
    assert not short.renewal_fits()


def test_yaml_section_reads_and_round_trips() -> None:
    cfg, problems = yaml_cfg(
        "arbitrator:\n"
        "  endpoints: [https://10.0.0.31:2379, https://10.0.0.32:2379]\n"
        "  ca: /etc/hbmon/ca.pem\n  cert: /etc/hbmon/n.pem\n  key: /etc/hbmon/n.key\n"
        "  cluster: solr\n  lease_ttl: 2s\n"
    )
    # Files this machine does not have are named, as warnings (the node may have them).
    assert problems == [
        f"hbmon.yaml:{line}: warning: arbitrator.{name}: cannot read [/etc/hbmon/{f}] here;"
        " the agent needs it"
        for line, name, f in ((9, "ca", "ca.pem"), (10, "cert", "n.pem"), (11, "key", "n.key"))
    ]
    assert cfg is not None
    arb = cfg.arbitrator  # type: ignore[attr-defined]
    assert arb.endpoints == ("https://10.0.0.31:2379", "https://10.0.0.32:2379")
    assert arb.ca == Path("/etc/hbmon/ca.pem")
    assert arb.lease_ttl_ms == 2000
    assert arb.cluster_name(("alpha", "beta")) == "solr"
    back, problems2 = from_yaml(to_yaml(cfg), "again.yaml")  # type: ignore[arg-type]
    assert back == cfg
    assert all(p.warning for p in problems2)


def test_yaml_without_section_has_no_arbitrator() -> None:
    cfg, problems = yaml_cfg("")
    assert problems == []
    assert cfg is not None
    assert cfg.arbitrator is None


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("arbitrator: {cluster: x}\n", "hbmon.yaml:7: arbitrator.endpoints: required"),
        (
            "arbitrator:\n  endpoints: [ftp://a:1]\n",
            "hbmon.yaml:8: arbitrator.endpoints[0]: [ftp://a:1] must be http://HOST:PORT",
        ),
        (
            "arbitrator:\n  endpoints: [http://a]\n",
            "hbmon.yaml:8: arbitrator.endpoints[0]: [http://a] needs a port",
        ),
        (
            "arbitrator:\n  endpoints: [https://a:2379]\n  cert: /c.pem\n",
            "hbmon.yaml:8: arbitrator: a client certificate needs both cert and key",
        ),
        (
            "arbitrator:\n  endpoints: [http://a:2379, https://b:2379]\n",
            "hbmon.yaml:8: arbitrator.endpoints: mixes http:// and https://",
        ),
        (
            "arbitrator:\n  endpoints: [http://a:2379]\n  lease_ttl: 1500ms\n",
            "hbmon.yaml:9: arbitrator.lease_ttl: [1500 ms] must be whole seconds",
        ),
        (
            "arbitrator:\n  endpoints: [http://a:2379]\n  lease_ttl: 1s\n",
            "hbmon.yaml:9: arbitrator.lease_ttl: lease TTL 1 s is too short",
        ),
        (
            "arbitrator:\n  endpoints: [http://a:2379]\n  prefix: hbmon/\n",
            "hbmon.yaml:9: arbitrator.prefix: [hbmon/] must start with /",
        ),
        (
            "arbitrator:\n  endpoints: [http://a:2379]\n  bogus: 1\n",
            "hbmon.yaml:9: arbitrator.bogus: unknown key",
        ),
        (  # found by the config fuzz: a traceback from the readability check before
            'arbitrator:\n  endpoints: [https://a:2379]\n  ca: "/etc/ca\\0.pem"\n',
            "hbmon.yaml:9: arbitrator.ca: a file name cannot contain a NUL character",
        ),
    ],
)
def test_bad_settings_name_file_line_field(section: str, expected: str) -> None:
    cfg, problems = yaml_cfg(section)
    assert cfg is None
    assert any(p.startswith(expected) for p in problems), problems


def test_long_ttl_is_only_a_warning() -> None:
    cfg, problems = yaml_cfg("arbitrator:\n  endpoints: [http://a:2379]\n  lease_ttl: 5s\n")
    assert cfg is not None
    assert len(problems) == 1
    assert problems[0].startswith("hbmon.yaml:9: warning: arbitrator.lease_ttl: lease TTL 5 s")


def test_side_file_beside_hacf(tmp_path: Path) -> None:
    d = make_dir(tmp_path)
    cfg, problems = load_config(d, "alpha")
    assert cfg is not None
    assert cfg.arbitrator is None
    (d / ARBITRATOR_FILE).write_text(
        "# etcd decides who holds each group\n"
        "endpoints:\n  - http://192.0.2.31:2379\n  - http://192.0.2.32:2379\n"
        "prefix: /ha\n"
    )
    cfg, problems = load_config(d, "alpha")
    assert cfg is not None, messages(problems)
    assert cfg.arbitrator == ArbitratorSettings(
        endpoints=("http://192.0.2.31:2379", "http://192.0.2.32:2379"), prefix="/ha"
    )
    shown = config_to_dict(cfg)["arbitrator"]
    assert isinstance(shown, dict)
    assert shown["cluster"] == "alpha+beta"
    assert shown["lease_ttl_ms"] == 29000  # deadtime 30 s


def test_side_file_problems_point_into_it(tmp_path: Path) -> None:
    d = make_dir(tmp_path)
    side = d / ARBITRATOR_FILE
    side.write_text("endpoints:\n  - http://192.0.2.31\nlease_ttl: 1s\n")
    cfg, problems = load_config(d, "alpha")
    assert cfg is None
    text = messages(problems)
    assert f"{side}:2: [http://192.0.2.31] needs a port (etcd's client port" in " ".join(text)
    assert any(p.startswith(f"{side}:3: lease TTL 1 s is too short") for p in text), text


@pytest.mark.parametrize("content", ["endpoints: [a\n", "", "- a\n"])
def test_side_file_broken_is_a_problem_not_a_traceback(tmp_path: Path, content: str) -> None:
    d = make_dir(tmp_path)
    (d / ARBITRATOR_FILE).write_text(content)
    cfg, problems = load_config(d, "alpha")
    assert cfg is None
    assert any(str(d / ARBITRATOR_FILE) in p for p in messages(problems))
