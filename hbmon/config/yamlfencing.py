"""The fencing part of hbmon's YAML form (config/yamlform.py holds the rest).

fencing:                   # ha.cf's stonith / stonith_host lines, and fence agents
  - {kind: stonith, type: external/ipmi, from: solr1,
     params: "solr2 10.1.201.50 admin secret lan"}          # stonith_host
  - {kind: stonith, type: baytech, config_file: /etc/ha.d/baytech.cfg}  # stonith
  - kind: fence_agent      # hbmon extension: a program of Debian's fence-agents
    type: fence_ipmilan    # a name in /usr/sbin, or a path
    from: solr1            # the node that uses it; "*" (default): any node
    hosts: [solr2]         # the nodes it can reset; default: any
    plugs: {solr2: "2"}    # plug= per node; default: the node name
    args: {ip: 10.1.201.150, username: admin, password: secret, lanplus: 1}
    action: reset          # reset (action=reboot) or off
    name: ipmi-solr2       # label in logs and metrics; default: the type
hbmon:
  fencing: {timeout: 60s, retry_initial: 5s, retry_max: 60s, delay: 10s,
            delays: {solr1: 0s, solr2: 10s}, status_interval: 1h, stonith_command: stonith}
  hung_owner: {policy: wait, wait: 30s}   # wait | take_over (see docs/fencing.md)
"""

from __future__ import annotations

import dataclasses

from hbmon.config.model import (
    Config,
    FenceAction,
    FenceDevice,
    FenceKind,
    FencingSettings,
    HbmonSettings,
    HungOwnerPolicy,
)
from hbmon.config.yamlread import (
    Missing,
    Path_,
    Reader,
    as_str,
    as_time,
    choice,
    node_name,
)

_DEVICE = frozenset(
    {"kind", "type", "from", "params", "config_file", "args", "plugs", "hosts", "action", "name"}
)
_SETTINGS = frozenset(
    {
        "timeout",
        "retry_initial",
        "retry_max",
        "delay",
        "delays",
        "status_interval",
        "stonith_command",
    }
)
HBMON_KEYS = frozenset({"fencing", "hung_owner"})
_HUNG = frozenset({"policy", "wait"})


# ------------------------------------------------------------------ write --
def _ms(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _device(d: FenceDevice) -> dict[str, object]:
    out: dict[str, object] = {"kind": d.kind.value, "type": d.type, "from": d.from_node}
    if d.params:
        out["params"] = d.params
    if d.config_file:
        out["config_file"] = d.config_file
    if d.args:
        out["args"] = dict(d.args)
    if d.plugs:
        out["plugs"] = dict(d.plugs)
    if d.hosts:
        out["hosts"] = list(d.hosts)
    if d.action is not FenceAction.RESET:
        out["action"] = d.action.value
    if d.name:
        out["name"] = d.name
    return out


def fencing_to_yaml(cfg: Config) -> list[dict[str, object]]:
    return [_device(d) for d in cfg.fencing]


def hbmon_to_yaml(cfg: Config) -> dict[str, object]:
    s = cfg.hbmon.fencing
    return {
        "fencing": {
            "timeout": _ms(s.timeout_ms),
            "retry_initial": _ms(s.retry_initial_ms),
            "retry_max": _ms(s.retry_max_ms),
            "delay": _ms(s.delay_ms),
            "delays": {name: _ms(ms) for name, ms in s.delays},
            "status_interval": _ms(s.status_interval_ms),
            "stonith_command": s.stonith_command,
        },
        "hung_owner": {
            "policy": cfg.hbmon.hung_owner.value,
            "wait": _ms(cfg.hbmon.hung_owner_wait_ms),
        },
    }


# ------------------------------------------------------------------- read --
def _free(r: Reader, value: object, path: Path_) -> dict[str, object]:
    """A mapping whose keys are the user's own (agent arguments, node names)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.error(path, "expected a mapping")
        return {}
    return {str(k): v for k, v in value.items()}


def _pairs(r: Reader, value: object, path: Path_) -> tuple[tuple[str, str], ...]:
    """name=value lines for a fence agent's stdin: neither may break a line."""
    out: list[tuple[str, str]] = []
    for key, v in _free(r, value, path).items():
        text = r.get({key: v}, key, path, as_str, None)
        if text is None:
            continue
        if not key or "=" in key or any(c in key + text for c in "\r\n"):
            r.error((*path, key), "a name holds no '=', and neither holds a line break")
            continue
        out.append((key, text))
    return tuple(out)


def _from_node(v: object) -> str:
    return "*" if v == "*" else node_name(v)


def read_fencing(r: Reader, doc: dict[str, object]) -> tuple[FenceDevice, ...]:
    out: list[FenceDevice] = []
    for i, item in enumerate(r.sequence(doc.get("fencing"), ("fencing",))):
        p: Path_ = ("fencing", i)
        m = r.mapping(item, p, _DEVICE)
        kind = r.required(m, "kind", p, choice(FenceKind))
        kind_type = r.required(m, "type", p, as_str)
        hosts = tuple(r.each(m.get("hosts"), (*p, "hosts"), node_name))
        plugs: list[tuple[str, str]] = []
        for name, plug in _pairs(r, m.get("plugs"), (*p, "plugs")):
            node = r.get({name: name}, name, (*p, "plugs"), node_name, None)
            if node is not None:
                plugs.append((node, plug))
        args = _pairs(r, m.get("args"), (*p, "args"))
        device = FenceDevice(
            FenceKind.STONITH,
            "",
            from_node=r.get(m, "from", p, _from_node, "*"),
            params=r.get(m, "params", p, as_str, ""),
            config_file=r.get(m, "config_file", p, as_str, ""),
            args=args,
            plugs=tuple(plugs),
            hosts=hosts,
            action=r.get(m, "action", p, choice(FenceAction), FenceAction.RESET),
            name=r.get(m, "name", p, as_str, ""),
            line=r.line_of(p),
        )
        if isinstance(kind, Missing) or isinstance(kind_type, Missing):
            continue
        if kind is FenceKind.STONITH and (args or plugs):
            r.error(p, "args and plugs are for fence agents; a stonith plugin takes params")
        if kind is FenceKind.FENCE_AGENT and (device.params or device.config_file):
            r.error(p, "params and config_file are for stonith plugins; a fence agent takes args")
        out.append(dataclasses.replace(device, kind=kind, type=kind_type))
    return tuple(out)


def read_settings(r: Reader, hb: dict[str, object]) -> tuple[FencingSettings, HungOwnerPolicy, int]:
    """The `hbmon` keys of HBMON_KEYS: (fencing, hung_owner, hung_owner_wait_ms)."""
    base, dflt = FencingSettings(), HbmonSettings()
    p: Path_ = ("hbmon", "fencing")
    m = r.mapping(hb.get("fencing"), p, _SETTINGS)
    delays: list[tuple[str, int]] = []
    for key, value in _free(r, m.get("delays"), (*p, "delays")).items():
        name = r.get({key: key}, key, (*p, "delays"), node_name, None)
        ms = r.get({key: value}, key, (*p, "delays"), as_time, None)
        if name is not None and ms is not None:
            delays.append((name, ms))
    settings = FencingSettings(
        timeout_ms=r.get(m, "timeout", p, as_time, base.timeout_ms),
        retry_initial_ms=r.get(m, "retry_initial", p, as_time, base.retry_initial_ms),
        retry_max_ms=r.get(m, "retry_max", p, as_time, base.retry_max_ms),
        delay_ms=r.get(m, "delay", p, as_time, base.delay_ms),
        delays=tuple(delays),
        status_interval_ms=r.get(m, "status_interval", p, as_time, base.status_interval_ms),
        stonith_command=r.get(m, "stonith_command", p, as_str, base.stonith_command),
    )
    hp: Path_ = ("hbmon", "hung_owner")
    h = r.mapping(hb.get("hung_owner"), hp, _HUNG)
    return (
        settings,
        r.get(h, "policy", hp, choice(HungOwnerPolicy), dflt.hung_owner),
        r.get(h, "wait", hp, as_time, dflt.hung_owner_wait_ms),
    )
