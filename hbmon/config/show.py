"""The effective configuration as plain data, for `hbmon config show`.

Never includes key material: `auth` names the signing key's method and index only.
"""

from __future__ import annotations

from hbmon.config.leasetiming import lease_timing
from hbmon.config.model import (
    BcastMedium,
    Config,
    Mcast6Medium,
    McastMedium,
    Medium,
    ResourceGroup,
    SerialMedium,
    Ucast6Medium,
    UcastMedium,
)


def medium_to_dict(m: Medium) -> dict[str, object]:
    """A medium as `config show` and the YAML form write it."""
    match m:
        case UcastMedium():
            return {"type": "ucast", "iface": m.iface, "peer": m.peer, "port": m.port}
        case BcastMedium():
            return {"type": "bcast", "iface": m.iface, "port": m.port}
        case McastMedium():
            return {
                "type": "mcast",
                "iface": m.iface,
                "group": m.group,
                "port": m.port,
                "ttl": m.ttl,
                "loop": m.loop,
            }
        case Ucast6Medium():
            return {"type": "ucast6", "iface": m.iface, "peer": m.peer, "port": m.port}
        case Mcast6Medium():
            return {
                "type": "mcast6",
                "iface": m.iface,
                "group": m.group,
                "port": m.port,
                "hops": m.hops,
                "loop": m.loop,
            }
        case SerialMedium():
            return {"type": "serial", "device": m.device, "baud": m.baud}


def _group(g: ResourceGroup) -> dict[str, object]:
    return {
        "node": g.node,
        "key": g.key,
        "resources": [{"agent": r.agent, "args": list(r.args)} for r in g.resources],
    }


def config_to_dict(cfg: Config) -> dict[str, object]:
    t = cfg.timers
    signing = cfg.auth.key(cfg.auth.active)
    log = cfg.logging
    hb = cfg.hbmon
    return {
        "node": cfg.node,
        "keepalive_ms": t.keepalive_ms,
        "deadtime_ms": t.deadtime_ms,
        "warntime_ms": t.warntime_ms,
        "initdead_ms": t.initdead_ms,
        "deadping_ms": t.deadping_ms,
        "udpport": cfg.udpport,
        "auto_failback": cfg.auto_failback.value,
        "msgfmt": cfg.msgfmt.value,
        "hopfudge": cfg.hopfudge,
        "max_rexmit_delay_ms": cfg.max_rexmit_delay_ms,
        "nodes": list(cfg.nodes),
        "ping_nodes": [
            {"name": p.name, "addresses": list(p.addresses), "group": p.group}
            for p in cfg.ping_nodes
        ],
        "links": [medium_to_dict(m) for m in cfg.media],
        "auth": {
            "method": signing.method.value if signing else None,
            "index": cfg.auth.active,
            "verify_indexes": [k.index for k in cfg.auth.keys],
        },
        "resources": [_group(g) for g in cfg.resources],
        # Device parameters often hold a password: only what says which device it is.
        "fencing": [
            {
                "kind": d.kind.value,
                "type": d.type,
                "from": d.from_node,
                "hosts": list(d.hosts),
                "action": d.action.value,
                "label": d.label,
                "used_here": d.used_by(cfg.node),
            }
            for d in cfg.fencing
        ],
        "respawn": [{"user": c.user, "command": c.command} for c in cfg.respawn],
        # Names only: a value may be a secret meant for a script.
        "env": [f"HA_{name}" for name, _ in cfg.env],
        "logging": {
            "logfacility": log.logfacility,
            "logfile": str(log.logfile) if log.logfile else None,
            "debugfile": str(log.debugfile) if log.debugfile else None,
            "use_logd": log.use_logd,
            "debug": log.debug,
        },
        "hbmon": {
            "metrics_address": hb.metrics_address,
            "state_dir": str(hb.state_dir),
            "quorum_policy": hb.quorum_policy.value,
            "failback_stickiness_ms": hb.failback_stickiness_ms,
            "handover_window_ms": hb.handover_window_ms,
            "tls_cert": str(hb.tls_cert) if hb.tls_cert else None,
            "tls_key": str(hb.tls_key) if hb.tls_key else None,
        },
        "arbitrator": _arbitrator(cfg),
    }


def _arbitrator(cfg: Config) -> dict[str, object] | None:
    """The effective arbitrator settings (paths only: the key file stays where it is)."""
    arb, timing = cfg.arbitrator, lease_timing(cfg)
    if arb is None or timing is None:
        return None
    return {
        "endpoints": list(arb.endpoints),
        "prefix": arb.prefix,
        "cluster": arb.cluster_name(cfg.nodes),
        "lease_ttl_ms": timing.ttl_ms,
        "request_timeout_ms": arb.request_timeout_ms,
        "release_after_renewal_ms": round(timing.hold_s(timing.ttl_s) * 1000),
        "ca": str(arb.ca) if arb.ca else None,
        "cert": str(arb.cert) if arb.cert else None,
        "key": str(arb.key) if arb.key else None,
    }


def config_to_text(cfg: Config) -> str:
    """A compact human summary, one fact per line."""
    t = cfg.timers
    signing = cfg.auth.key(cfg.auth.active)
    method = signing.method.value if signing else "?"
    lines = [
        f"node:          {cfg.node}",
        f"nodes:         {' '.join(cfg.nodes)}",
        f"ping nodes:    {' '.join(p.name for p in cfg.ping_nodes) or '-'}",
        f"timers:        keepalive {t.keepalive_ms}ms, warntime {t.warntime_ms}ms,"
        f" deadtime {t.deadtime_ms}ms, initdead {t.initdead_ms}ms, deadping {t.deadping_ms}ms",
        f"udpport:       {cfg.udpport}",
        f"auto_failback: {cfg.auto_failback.value}",
        f"msgfmt:        {cfg.msgfmt.value}",
        f"auth:          key {cfg.auth.active} ({method})",
    ]
    for m in cfg.media:
        lines.append("link:          " + " ".join(f"{k}={v}" for k, v in medium_to_dict(m).items()))
    for g in cfg.resources:
        lines.append(f"resources:     {g.node}: {' '.join(str(r) for r in g.resources)}")
    for d in cfg.fencing:
        where = "used here" if d.used_by(cfg.node) else f"used by {d.from_node}"
        lines.append(f"fencing:       {d.kind.value} {d.type} ({where})")
    for c in cfg.respawn:
        lines.append(f"respawn:       {c.user}: {c.command}")
    arb, timing = cfg.arbitrator, lease_timing(cfg)
    if arb is not None and timing is not None:
        lines.append(
            f"arbitrator:    etcd {' '.join(arb.endpoints)}, keys under"
            f" {arb.prefix}/{arb.cluster_name(cfg.nodes)}/, lease {timing.ttl_s} s"
        )
    return "\n".join(lines) + "\n"
