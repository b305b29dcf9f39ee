"""Ping-node liveness (spec §5.5).

A ping node (`ping ip`, or a `ping_group` of addresses) is INIT until its first
reply, PING while some address replied within deadping, DEAD otherwise. A node
never heard is declared DEAD at start + initdead. The echoes themselves are
sent by the I/O layer; this module only judges `PingResult`s and deadlines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hbmon.config.model import PingNode
from hbmon.core.events import (
    Effect,
    NodeStatus,
    PingObserved,
    PingResult,
    PingTransition,
)
from hbmon.core.snapshot import PingAddressView, PingNodeView


@dataclass(slots=True)
class _Address:
    address: str
    last_rtt_s: float | None = None
    replies: int = 0
    timeouts: int = 0


@dataclass(slots=True)
class _PingNode:
    name: str
    added_at: float
    addresses: dict[str, _Address]
    status: NodeStatus = NodeStatus.INIT
    last_reply_at: float | None = None
    last_transition_at: float | None = None
    transitions: int = 0

    def deadline(self, initdead: float, deadping: float) -> float | None:
        if self.status is NodeStatus.INIT:
            return self.added_at + initdead
        if self.status is NodeStatus.PING and self.last_reply_at is not None:
            return self.last_reply_at + deadping
        return None


@dataclass(slots=True)
class PingNodes:
    initdead: float
    deadping: float
    nodes: dict[str, _PingNode] = field(default_factory=dict)

    @classmethod
    def create(
        cls, config: tuple[PingNode, ...], *, initdead: float, deadping: float, now: float
    ) -> PingNodes:
        pings = cls(initdead, deadping)
        pings.configure(config, initdead=initdead, deadping=deadping, now=now)
        return pings

    def configure(
        self, config: tuple[PingNode, ...], *, initdead: float, deadping: float, now: float
    ) -> None:
        """(Re)configure: nodes that remain keep their state and counters."""
        self.initdead = initdead
        self.deadping = deadping
        old = self.nodes
        self.nodes = {}
        for pn in config:
            node = old.get(pn.name) or _PingNode(pn.name, now, {})
            node.addresses = {
                a: node.addresses.get(a) or _Address(a) for a in dict.fromkeys(pn.addresses)
            }
            self.nodes[pn.name] = node

    def reset_init_clock(self, now: float) -> None:
        """Start: initdead of ping nodes never heard counts from `now`."""
        for node in self.nodes.values():
            if node.status is NodeStatus.INIT:
                node.added_at = now

    def reachable(self) -> int:
        """How many ping nodes answer (PING)."""
        return sum(1 for n in self.nodes.values() if n.status is NodeStatus.PING)

    def settled(self) -> bool:
        """Every ping node heard or declared dead (the ping part of comm-up)."""
        return all(n.status is not NodeStatus.INIT for n in self.nodes.values())

    def observe(self, result: PingResult, now: float) -> list[Effect]:
        node = self.nodes.get(result.node)
        if node is None:
            return []
        addr = node.addresses.get(result.address)
        if addr is None:
            return []
        effects: list[Effect] = [PingObserved(result.node, result.address, result.rtt_s)]
        if result.rtt_s is None:
            addr.timeouts += 1
            return effects
        addr.replies += 1
        addr.last_rtt_s = result.rtt_s
        node.last_reply_at = now
        if node.status is not NodeStatus.PING:
            effects.append(self._transition(node, NodeStatus.PING, now))
        return effects

    def next_deadline(self) -> float | None:
        ds = [
            d
            for n in self.nodes.values()
            if (d := n.deadline(self.initdead, self.deadping)) is not None
        ]
        return min(ds, default=None)

    def expire(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for node in self.nodes.values():
            d = node.deadline(self.initdead, self.deadping)
            if d is not None and d <= now:
                effects.append(self._transition(node, NodeStatus.DEAD, now))
        return effects

    def views(self) -> tuple[PingNodeView, ...]:
        return tuple(
            PingNodeView(
                name=n.name,
                status=n.status,
                last_reply_at=n.last_reply_at,
                last_transition_at=n.last_transition_at,
                addresses=tuple(
                    PingAddressView(a.address, a.last_rtt_s, a.replies, a.timeouts)
                    for a in n.addresses.values()
                ),
                transitions=n.transitions,
            )
            for n in self.nodes.values()
        )

    @staticmethod
    def _transition(node: _PingNode, new: NodeStatus, now: float) -> PingTransition:
        node.status = new
        node.last_transition_at = now
        node.transitions += 1
        return PingTransition(node.name, new)
