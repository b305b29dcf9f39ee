"""Rules on the fencing part of the model: devices, their settings, the hung-owner policy.

Located by field path like every `Finding` (config/validate.py): `fencing[i]…`
maps to the device's ha.cf line or YAML node, `hbmon.fencing…` to the YAML.
"""

from __future__ import annotations

from hbmon.config.model import Config, FenceKind, HungOwnerPolicy
from hbmon.config.problems import Finding


def check_fencing(cfg: Config) -> list[Finding]:
    out: list[Finding] = []
    nodes = set(cfg.nodes)
    for i, d in enumerate(cfg.fencing):
        where = f"fencing[{i}]"
        if not d.type:
            out.append(Finding(f"{where}.type", "No Stonith type given"))
        if d.from_node != "*" and d.from_node not in nodes:
            out.append(
                Finding(
                    where,
                    f"{d.label}: [{d.from_node}] is not a node of this cluster;"
                    " no node uses this device",
                    warning=True,
                )
            )
        for name in d.hosts:
            if name not in nodes:
                out.append(Finding(f"{where}.hosts", f"{d.label}: [{name}] is not a cluster node"))
        for name, _plug in d.plugs:
            if name not in nodes:
                out.append(Finding(f"{where}.plugs", f"{d.label}: [{name}] is not a cluster node"))
        if d.kind is FenceKind.STONITH and not d.params and not d.config_file:
            out.append(Finding(where, f"{d.label}: no parameters given", warning=True))
    out += _overlaps(cfg)
    out += _settings(cfg)
    return out


def _overlaps(cfg: Config) -> list[Finding]:
    """heartbeat uses only the last line that applies to a node; hbmon tries each."""
    out: list[Finding] = []
    for node in cfg.nodes:
        used = [
            i for i, d in enumerate(cfg.fencing) if d.kind is FenceKind.STONITH and d.used_by(node)
        ]
        if len(used) > 1:
            lines = ", ".join(str(cfg.fencing[i].line or i) for i in used)
            out.append(
                Finding(
                    f"fencing[{used[-1]}]",
                    f"{len(used)} stonith lines apply to node {node} ({lines}): heartbeat"
                    " uses only the last; hbmon tries them in order until one resets the node",
                    warning=True,
                )
            )
    return out


def _settings(cfg: Config) -> list[Finding]:
    s = cfg.hbmon.fencing
    p = "hbmon.fencing"
    out: list[Finding] = []
    if s.timeout_ms <= 0:
        out.append(Finding(f"{p}.timeout", "must be greater than 0"))
    if s.retry_initial_ms <= 0:
        out.append(Finding(f"{p}.retry_initial", "must be greater than 0"))
    if s.retry_max_ms < s.retry_initial_ms:
        out.append(Finding(f"{p}.retry_max", "must not be less than retry_initial"))
    for name, _ms in s.delays:
        if name not in cfg.nodes:
            out.append(Finding(f"{p}.delays", f"[{name}] is not a cluster node"))
    if not s.stonith_command:
        out.append(Finding(f"{p}.stonith_command", "must not be empty"))
    if cfg.hbmon.hung_owner is HungOwnerPolicy.TAKE_OVER and any(
        d.used_by(cfg.node) for d in cfg.fencing
    ):
        out.append(
            Finding(
                "hbmon.hung_owner.policy",
                "take_over has no effect where a fencing device resets the hung owner",
                warning=True,
            )
        )
    return out
