"""The control socket's commands: a JSON request to the running agent, and its JSON reply.

    {"cmd": "status"}                       the agent's snapshot, as hbmon status shows it
    {"cmd": "standby", "scope": "all"}      give groups to the peer (all|local|foreign)
    {"cmd": "takeover", "scope": "local"}   take groups from the peer
    {"cmd": "reload"}                       re-read the configuration (as SIGHUP)

The reply has `ok` and either the result or `error`. Standby and takeover replies
come only when the groups have moved (or the request was refused), so the CLI
can wait for the outcome. The agent is anything with the `Agent` methods (the
engine).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from hbmon.compat.parameters import heartbeat_parameters
from hbmon.config.model import Config
from hbmon.control.report import snapshot_to_dict
from hbmon.core.events import ControlOp, ControlReply, Scope
from hbmon.core.snapshot import Snapshot

# A standby or takeover asked over the control socket waits at most this long.
CONTROL_OP_TIMEOUT_S = 300.0


class Agent(Protocol):
    """What the control socket asks of the running agent (hbmon/engine.py)."""

    @property
    def config(self) -> Config: ...

    def snapshot(self) -> Snapshot: ...

    def rtt(self) -> dict[str, float]:
        """Smoothed round-trip time per link (`iface/peer`), seconds."""

    async def exchange(self, op: ControlOp, scope: Scope) -> ControlReply:
        """Run a standby or takeover; the reply when the groups have moved or it was refused."""

    def reload(self) -> None:
        """Re-read the configuration (as SIGHUP)."""


async def dispatch(
    agent: Agent, request: dict[str, Any], *, wait_s: float = CONTROL_OP_TIMEOUT_S
) -> dict[str, Any]:
    """One request's reply: `ok` and the result, or `ok: false` and `error`.
    A standby or takeover is given up after `wait_s` seconds."""
    cmd = request.get("cmd")
    if cmd == "status":
        status = snapshot_to_dict(agent.snapshot(), rtt=agent.rtt())
        status["parameters"] = heartbeat_parameters(agent.config)
        status["nodes"] = list(agent.config.nodes)
        return {"ok": True, "status": status}
    if cmd in (ControlOp.STANDBY, ControlOp.TAKEOVER):
        try:
            scope = Scope(str(request.get("scope", "all")))
        except ValueError:
            return {"ok": False, "error": f"bad scope {request.get('scope')!r}"}
        if scope is Scope.NONE:
            return {"ok": False, "error": "scope must be all, local or foreign"}
        try:
            reply = await asyncio.wait_for(agent.exchange(ControlOp(cmd), scope), wait_s)
        except TimeoutError:
            return {"ok": False, "error": f"no outcome within {wait_s:g} s"}
        return {
            "ok": reply.ok,
            "message": reply.message,
            "error": None if reply.ok else reply.message,
        }
    if cmd == "reload":
        agent.reload()
        return {"ok": True, "message": "reload requested"}
    return {"ok": False, "error": f"unknown command {cmd!r}"}
