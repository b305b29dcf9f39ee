"""Fencing in the configuration: ha.cf's stonith lines as heartbeat reads them, the YAML
form's devices and settings, the checks, and config show keeping passwords out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cfgtools import HACF, SECRET, make_dir, messages, solr_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbmon.config.hacfstonith import parse_stonith, parse_stonith_host
from hbmon.config.loader import load_config
from hbmon.config.model import (
    Config,
    FenceAction,
    FenceDevice,
    FenceKind,
    FencingSettings,
    HbmonSettings,
    HungOwnerPolicy,
)
from hbmon.config.yamlform import from_yaml, to_yaml

F = "hbmon.yaml"


def load(tmp_path: Path, extra: bytes, node: str = "alpha") -> tuple[Config | None, list[str]]:
    cfg, problems = load_config(make_dir(tmp_path, HACF + extra), node)
    return cfg, messages(problems)


# ------------------------------------------------------------------ ha.cf --
def test_stonith_host_fields_as_heartbeat_splits_them() -> None:
    d = parse_stonith_host("SOLR1\texternal/ipmi  solr2 10.0.0.2 admin s3cr3t lan  ", 7)
    assert isinstance(d, FenceDevice)
    assert (d.kind, d.from_node, d.type, d.line) == (FenceKind.STONITH, "solr1", "external/ipmi", 7)
    # the values as one string: the plugin maps them onto its parameter names
    assert d.params == "solr2 10.0.0.2 admin s3cr3t lan"
    star = parse_stonith_host("* external/x a,b c=d", 1)
    assert isinstance(star, FenceDevice)
    assert (star.from_node, star.params) == ("*", "a,b c=d")


def test_stonith_directive_takes_a_config_file() -> None:
    d = parse_stonith("baytech /etc/ha.d/baytech.cfg", 3)
    assert isinstance(d, FenceDevice)
    assert (d.type, d.config_file, d.from_node, d.params) == (
        "baytech",
        "/etc/ha.d/baytech.cfg",
        "*",
        "",
    )


@pytest.mark.parametrize(
    ("line", "parse", "error"),
    [
        ("", parse_stonith_host, "No Stonith hostname argument given"),
        ("solr1", parse_stonith_host, "No Stonith type given"),
        ("", parse_stonith, "No Stonith type given"),
        ("baytech", parse_stonith, "no configuration file given"),
    ],
)
def test_incomplete_lines_give_heartbeats_errors(line: str, parse: object, error: str) -> None:
    assert callable(parse)
    result = parse(line, 1)
    assert isinstance(result, str)
    assert error in result


def test_stonith_lines_are_devices_not_warnings(tmp_path: Path) -> None:
    cfg, problems = load(
        tmp_path,
        b"stonith_host alpha external/ssh beta\nstonith_host beta external/ssh alpha\n",
    )
    assert problems == []
    assert cfg is not None
    devices = cfg.fencing
    assert [d.from_node for d in devices] == ["alpha", "beta"]
    assert [d.line for d in devices] == [10, 11]
    # alpha uses only its own line; beta's line is beta's
    assert [d.from_node for d in cfg.fence_devices("beta")] == ["alpha"]


def test_bad_stonith_host_line_is_an_error_at_its_line(tmp_path: Path) -> None:
    cfg, problems = load(tmp_path, b"stonith_host\n")
    assert cfg is None
    assert problems == [f"{tmp_path}/ha.d/ha.cf:10: No Stonith hostname argument given"]


def test_unknown_from_node_and_overlap_are_warnings(tmp_path: Path) -> None:
    cfg, problems = load(
        tmp_path,
        b"stonith_host gamma null beta\nstonith_host * null beta\nstonith_host alpha null beta\n",
    )
    assert cfg is not None
    hacf = f"{tmp_path}/ha.d/ha.cf"
    assert f"{hacf}:10: warning: null: [gamma] is not a node of this cluster;" in "\n".join(
        problems
    )
    overlap = [p for p in problems if "apply to node alpha" in p]
    assert overlap == [
        f"{hacf}:12: warning: 2 stonith lines apply to node alpha (11, 12): heartbeat uses"
        " only the last; hbmon tries them in order until one resets the node"
    ]


def test_raw_keeps_the_line_for_hbparameter(tmp_path: Path) -> None:
    cfg, _ = load(tmp_path, b"stonith_host * null alpha beta\n")
    assert cfg is not None
    assert ("stonith_host", "* null alpha beta") in cfg.raw


# ------------------------------------------------------------------- YAML --
YAML = f"""
node: solr1
nodes: [solr1, solr2]
media: [{{type: ucast, iface: em1, peer: 10.1.201.50}}]
auth: {{active: 1, keys: [{{index: 1, method: sha1, secret: "{SECRET}"}}]}}
fencing:
  - {{kind: stonith, type: external/ipmi, from: solr1, params: "solr2 10.0.0.2 u p lan"}}
  - kind: fence_agent
    type: fence_ipmilan
    hosts: [SOLR2]
    plugs: {{solr2: "7"}}
    args: {{ip: 10.0.0.2, username: admin, password: pw, lanplus: 1}}
    action: "off"
    name: ipmi-solr2
hbmon:
  fencing: {{timeout: 20s, retry_initial: 1s, retry_max: 8s, delay: 3s,
            delays: {{solr2: 500ms}}, status_interval: 0s}}
  hung_owner: {{policy: take_over, wait: 5s}}
"""


def test_yaml_devices_and_settings() -> None:
    cfg, problems = from_yaml(YAML, F)
    assert cfg is not None, problems
    ipmi, agent = cfg.fencing
    assert (ipmi.kind, ipmi.from_node, ipmi.params) == (
        FenceKind.STONITH,
        "solr1",
        "solr2 10.0.0.2 u p lan",
    )
    assert agent.kind is FenceKind.FENCE_AGENT
    assert agent.hosts == ("solr2",)
    assert (agent.plug("solr2"), agent.plug("solr1")) == ("7", "solr1")
    assert dict(agent.args)["lanplus"] == "1"
    assert (agent.action, agent.label, agent.from_node) == (FenceAction.OFF, "ipmi-solr2", "*")
    s = cfg.hbmon.fencing
    assert (s.timeout_ms, s.retry_initial_ms, s.retry_max_ms, s.delay_ms) == (
        20000,
        1000,
        8000,
        3000,
    )
    assert s.delays == (("solr2", 500),)
    assert s.status_interval_ms == 0
    assert (cfg.hbmon.hung_owner, cfg.hbmon.hung_owner_wait_ms) == (HungOwnerPolicy.TAKE_OVER, 5000)
    # a take_over policy beside a device that resets the owner has no effect: said so
    assert any("take_over has no effect" in p.message for p in problems)


def test_yaml_defaults_are_the_models() -> None:
    cfg, problems = from_yaml(YAML.split("fencing:")[0], F)
    assert cfg is not None, problems
    assert cfg.fencing == ()
    assert cfg.hbmon.fencing == FencingSettings()
    assert cfg.hbmon.hung_owner is HbmonSettings().hung_owner is HungOwnerPolicy.WAIT


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("{kind: stonith}", "fencing[0].type: required"),
        ("{kind: fence_agent, type: fence_x, params: a}", "params and config_file are for stonith"),
        ("{kind: stonith, type: 'null', args: {a: b}}", "args and plugs are for fence agents"),
        ("{kind: ipmi, type: x}", "fencing[0].kind: [ipmi] is not one of stonith, fence_agent"),
        ("{kind: fence_agent, type: x, args: {'a=b': c}}", "a name holds no '='"),
        ("{kind: fence_agent, type: x, hosts: [nobody]}", "[nobody] is not a cluster node"),
        ("{kind: fence_agent, type: x, plugs: {nobody: p}}", "[nobody] is not a cluster node"),
        ("{kind: stonith, type: 'null', colour: red}", "fencing[0].colour: unknown key"),
    ],
)
def test_yaml_device_errors_name_the_field(device: str, message: str) -> None:
    text = YAML.split("fencing:")[0] + f"fencing:\n  - {device}\n"
    cfg, problems = from_yaml(text, F)
    assert cfg is None
    assert any(message in str(p) for p in problems), problems
    assert all(str(p).startswith(f"{F}:") for p in problems)


def test_yaml_setting_errors() -> None:
    base = YAML.split("fencing:")[0]
    cfg, problems = from_yaml(
        base + "hbmon:\n  fencing: {retry_initial: 0s, retry_max: 1s, delays: {nobody: 1s}}\n", F
    )
    assert cfg is None
    text = "\n".join(str(p) for p in problems)
    assert "hbmon.fencing.retry_initial: must be greater than 0" in text
    assert "hbmon.fencing.delays: [nobody] is not a cluster node" in text
    cfg, problems = from_yaml(base + "hbmon:\n  hung_owner: {policy: maybe}\n", F)
    assert cfg is None
    assert "hbmon.hung_owner.policy: [maybe] is not one of wait, take_over" in str(problems[0])


def test_convert_round_trips_the_stonith_lines(tmp_path: Path) -> None:
    d = solr_dir(tmp_path, "solr1")
    with open(d / "ha.cf", "ab") as f:
        f.write(b"stonith_host * external/ipmi solr2 10.0.0.2 admin pw lan\n")
        f.write(b"stonith baytech /etc/ha.d/baytech.cfg\n")
    cfg, problems = load_config(d, "solr1")
    assert cfg is not None, problems
    again, problems = from_yaml(to_yaml(cfg), F)
    assert again is not None, problems
    assert again.fencing == cfg.fencing
    assert again.hbmon == cfg.hbmon


names = st.sampled_from(["solr1", "solr2"])
text = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="="),
    min_size=1,
    max_size=8,
)
devices = st.builds(
    FenceDevice,
    kind=st.just(FenceKind.FENCE_AGENT),
    type=text,
    from_node=st.sampled_from(["*", "solr1", "solr2"]),
    args=st.lists(st.tuples(text, text), max_size=3, unique_by=lambda t: t[0]).map(tuple),
    plugs=st.lists(st.tuples(names, text), max_size=2, unique_by=lambda t: t[0]).map(tuple),
    hosts=st.lists(names, max_size=2, unique=True).map(tuple),
    action=st.sampled_from(FenceAction),
    name=st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=6),
)
ms = st.integers(1, 10**7)


@given(
    devs=st.lists(devices, max_size=3),
    fencing=st.builds(
        FencingSettings,
        timeout_ms=ms,
        retry_initial_ms=ms,
        retry_max_ms=st.just(10**7),
        delay_ms=st.integers(0, 10**6),
        delays=st.lists(
            st.tuples(names, st.integers(0, 10**6)), max_size=2, unique_by=lambda t: t[0]
        ).map(tuple),
        status_interval_ms=st.integers(0, 10**7),
    ),
    policy=st.sampled_from(HungOwnerPolicy),
    wait=st.integers(0, 10**6),
)
@settings(max_examples=40, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_fencing_round_trip_property(
    devs: list[FenceDevice], fencing: FencingSettings, policy: HungOwnerPolicy, wait: int
) -> None:
    cfg, problems = from_yaml(YAML.split("fencing:")[0], F)
    assert cfg is not None, problems
    import dataclasses

    cfg = dataclasses.replace(
        cfg,
        fencing=tuple(devs),
        hbmon=dataclasses.replace(
            cfg.hbmon, fencing=fencing, hung_owner=policy, hung_owner_wait_ms=wait
        ),
    )
    again, problems = from_yaml(to_yaml(cfg), F)
    assert again is not None, problems
    assert again.fencing == cfg.fencing
    assert again.hbmon == cfg.hbmon


# ------------------------------------------------------------------- show --
def test_config_show_names_devices_but_not_their_parameters(tmp_path: Path) -> None:
    d = solr_dir(tmp_path, "solr1")
    with open(d / "ha.cf", "ab") as f:
        f.write(b"stonith_host solr2 external/ipmi solr1 10.0.0.1 admin hunter2 lan\n")
    out = subprocess.run(
        [sys.executable, "-m", "hbmon", "config", "show", "--config-dir", str(d), "--node",
         "solr1", "--format", "json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "hunter2" not in out
    shown = json.loads(out)["fencing"]
    assert shown == [
        {
            "kind": "stonith",
            "type": "external/ipmi",
            "from": "solr2",
            "hosts": [],
            "action": "reset",
            "label": "external/ipmi",
            "used_here": False,
        }
    ]


def test_config_check_refuses_a_stonith_type_cluster_glue_lacks(tmp_path: Path) -> None:
    d = solr_dir(tmp_path, "solr1")
    with open(d / "ha.cf", "ab") as f:
        f.write(b"stonith_host solr1 nosuch/device solr2\n")  # solr1 uses it: checked
        f.write(b"stonith_host solr2 other/device solr1\n")  # solr2's: not this node's
        f.write(b"stonith_host * external/ssh\n")  # hostlist missing
    lines = (d / "ha.cf").read_text().count("\n")
    out = subprocess.run(
        [sys.executable, "-m", "hbmon", "config", "check", "--config-dir", str(d),
         "--node", "solr1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1
    assert f"{d}/ha.cf:{lines - 2}: Invalid Stonith type [nosuch/device]" in out.stderr
    assert "other/device" not in out.stderr
    assert (
        f"{d}/ha.cf:{lines}: Invalid Stonith configuration parameter: external/ssh takes 1"
        " value(s) (hostlist), 0 given"
    ) in out.stderr
