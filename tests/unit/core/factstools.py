"""Hand-built ownership snapshots (core/facts.py) for the decision tests."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hbmon.config.model import AutoFailback, QuorumPolicy
from hbmon.core.events import GroupState, Scope
from hbmon.core.facts import Facts, GroupFacts, PeerFacts

SETTLE = 2.0
HOLD = 2.0
STICKY = 5.0


def group(key: str, preferred: str = "alpha", **kw: Any) -> GroupFacts:
    """Held here, steadily (override to taste)."""
    base = GroupFacts(
        key=key,
        preferred=preferred,
        state=GroupState.HELD,
        held=True,
        want=True,
        claimed=True,
        backoff=False,
        late=False,
    )
    return base._replace(**kw)


def free(key: str, preferred: str = "alpha", **kw: Any) -> GroupFacts:
    """Not held, not wanted here."""
    base = {"state": GroupState.RELEASED, "held": False, "want": False, "claimed": False}
    return group(key, preferred, **(base | kw))


def peer(name: str = "beta", held: frozenset[str] = frozenset(), **kw: Any) -> PeerFacts:
    """A live, stable hbmon peer whose state we have heard."""
    base = PeerFacts(
        name=name,
        alive=True,
        healthy=True,
        leaving=False,
        heard=True,
        stable=True,
        exact=True,
        held=held,
        claimed=held,
        failed=frozenset(),
        claims=Scope.NONE,
        resource_at=None,
        pings=None,
        up_since=0.0,
        failback=False,
        blocked=False,
    )
    return base._replace(**kw)


def facts(
    groups: tuple[GroupFacts, ...] = (),
    peers: tuple[PeerFacts, ...] = (),
    *,
    me: str = "alpha",
    now: float = 100.0,
    unowned: dict[str, float] | None = None,
    **kw: Any,
) -> Facts:
    base = Facts(
        now=now,
        me=me,
        mode=AutoFailback.OFF,
        policy=QuorumPolicy.FREEZE,
        reachable=0,
        configured=0,
        stable=True,
        exchange_idle=True,
        comm_at=0.0,
        settle_s=SETTLE,
        stickiness_s=STICKY,
        ping_hold_s=HOLD,
        groups=groups,
        peers=peers,
        dual=frozenset(),
        unowned=MappingProxyType(unowned or {}),
        ping_lead_since=None,
    )
    return base._replace(**kw)
