"""Helpers for the ownership sims: configs with resource groups, log queries."""

from __future__ import annotations

import dataclasses

from coretools import make_config
from simnet import Sim

from hbmon.config.model import (
    AutoFailback,
    Config,
    HbmonSettings,
    PingNode,
    QuorumPolicy,
    Resource,
    ResourceGroup,
)
from hbmon.core.events import ResourceLog, SendMessage, StandbyRefused

A, B = "alpha", "beta"
VIP_A = "IPaddr::10.0.0.10/24/eth0"  # alpha's group
VIP_B = "IPaddr::10.0.0.20/24/eth0"  # beta's group
GROUPS = (
    ResourceGroup(A, (Resource("IPaddr", ("10.0.0.10/24/eth0",)), Resource("httpd"))),
    ResourceGroup(B, (Resource("IPaddr", ("10.0.0.20/24/eth0",)),)),
)


def rconfig(
    node: str,
    *,
    auto_failback: AutoFailback = AutoFailback.ON,
    groups: tuple[ResourceGroup, ...] = GROUPS,
    pings: int = 0,
    stickiness_ms: int = 0,
    quorum: QuorumPolicy = QuorumPolicy.FREEZE,
    **timers: int,
) -> Config:
    ping_nodes = tuple(PingNode(f"10.9.9.{i + 1}", (f"10.9.9.{i + 1}",)) for i in range(pings))
    cfg = make_config(node, ping_nodes=ping_nodes, **timers)
    return dataclasses.replace(
        cfg,
        resources=groups,
        auto_failback=auto_failback,
        hbmon=HbmonSettings(quorum_policy=quorum, failback_stickiness_ms=stickiness_ms),
    )


def rpair(**kw: object) -> Sim:
    return Sim({A: rconfig(A, **kw), B: rconfig(B, **kw)})  # type: ignore[arg-type]


def lines(sim: Sim, name: str) -> list[str]:
    """The resource protocol's log lines (ResourceLog and refusals), in order."""
    return [e.text for _, e in sim.effects(name, ResourceLog | StandbyRefused)]


def line_times(sim: Sim, name: str, text: str) -> list[float]:
    return [t for t, e in sim.effects(name, ResourceLog) if e.text == text]


_OWNERSHIP_TYPES = frozenset({"starting", "resource", "ask_resources", "hb_takeover", "shutdone"})


def sent_types(sim: Sim, name: str, since: float = 0.0) -> list[str]:
    """Resource-protocol messages `name` sent (statuses left out), as `t[/rsc_hold/info]`."""
    out = []
    for t, e in sim.effects(name, SendMessage):
        m = e.message
        if t < since or m.type not in _OWNERSHIP_TYPES:
            continue  # statuses, flow control (NS_ackmsg, reqnodes …)
        parts = [m.type or "", m.get("rsc_hold") or "", m.get("info") or ""]
        out.append("/".join(p for p in parts if p))
    return out


def dump(sim: Sim) -> None:  # pragma: no cover - debugging aid
    for t, n, e in sim.log:
        if type(e).__name__ in ("BeatReceived", "RttMeasured", "LinkTransition"):
            continue
        if isinstance(e, SendMessage) and e.message.type == "status":
            continue
        if isinstance(e, SendMessage):
            print(f"{t:9.4f} {n:6} send {[(f.name, f.text) for f in e.message.fields][:5]}")
        else:
            print(f"{t:9.4f} {n:6} {e}")


def ping_addr(i: int) -> str:
    return f"10.9.9.{i + 1}"


def feed_pings(sim: Sim, until: float, reach: dict[str, set[str]], step: float = 1.0) -> None:
    """Run to `until`, each live node getting a reply every `step` from the ping
    nodes `reach[node]` holds (a callable world would be overkill)."""
    from hbmon.core.events import PingResult

    t = sim.clock.now
    while t <= until:
        sim.run_until(t)
        for name in list(sim.nodes):
            for addr in sorted(reach.get(name, ())):
                sim.event(name, PingResult(addr, addr, 0.001))
        t += step
    sim.run_until(until)
