"""Split-brain guard and who keeps or takes a group: pure decisions (spec §5.5, §5.6; design §4).

Every function here answers one question from values it is given, so both
nodes, given the same facts, reach the same answer:

    takeover_block   may a node that lost its peer take groups over? (quorum policy)
    keeper           two nodes hold a group: which one keeps it?
    recoverer        nobody holds a group: which node should take it?

core/rules.py builds the standing rules of ownership from them.
"""

from __future__ import annotations

from collections.abc import Iterable

from hbmon.config.model import QuorumPolicy

RULE_PREFERRED = "its preferred node"
RULE_NAME = "the node whose name sorts first"


def takeover_block(policy: QuorumPolicy, configured: int, reachable: int) -> str | None:
    """Why a node that declared its peer dead must not take over, None if it may.

    A node that reaches none of its ping nodes is more likely the one cut off
    than the peer is dead (hbmon; heartbeat takes over regardless).
    """
    if policy is QuorumPolicy.IGNORE or configured == 0 or reachable > 0:
        return None
    return (
        f"no ping node reachable (0 of {configured}) and the peer is unreachable: "
        "we may be the one cut off (quorum_policy freeze)"
    )


def keeper(preferred: str, holders: Iterable[str]) -> tuple[str, str]:
    """(node that keeps a group held by several, the rule that chose it)."""
    names = sorted(set(holders))
    if not names:
        raise ValueError("keeper() of a group nobody holds")
    if preferred in names:
        return preferred, RULE_PREFERRED
    return names[0], RULE_NAME


def recoverer(preferred: str, eligible: Iterable[str]) -> str | None:
    """The node that takes a group nobody holds: its preferred node if eligible,
    else the eligible node whose name sorts first; None if no node may."""
    names = sorted(set(eligible))
    if not names:
        return None
    return preferred if preferred in names else names[0]
