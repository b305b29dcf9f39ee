"""The standing rules of ownership (core/rules.py), each from a hand-built snapshot.

No node, no clock, no messages: a `Facts` value in, the wishes out. `settle`
drives one rule over several instants by applying its own bookkeeping wishes
(Dual, Unowned, PingLead), the way Ownership does between inputs.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from factstools import facts, free, group, peer
from hypothesis import given, settings
from hypothesis import strategies as st

from hbmon.config.model import AutoFailback, QuorumPolicy
from hbmon.core import rules
from hbmon.core.events import (
    AnnounceGroup,
    GroupState,
    OwnershipConflict,
    ResourceLog,
    Scope,
    StopReason,
    TakeoverReason,
)
from hbmon.core.facts import (
    Acquire,
    Dual,
    Facts,
    FailbackDone,
    GiveAway,
    GroupFacts,
    PingLead,
    Release,
    TakeOverFrom,
    Unblock,
    Unowned,
    Wish,
)


def settle(rule: rules.Rule, f: Facts) -> tuple[Facts, list[Wish]]:
    """Run `rule` once and fold its bookkeeping wishes into the next snapshot."""
    wishes = rule(f)
    memory = rules.Memory(set(f.dual), dict(f.unowned), f.ping_lead_since)
    for w in wishes:
        if isinstance(w, Dual | Unowned | PingLead):
            memory.note(w)
    after = f._replace(
        dual=frozenset(memory.dual),
        unowned=MappingProxyType(memory.unowned),
        ping_lead_since=memory.ping_lead_since,
    )
    return after, wishes


# ------------------------------------------------------------------ facts --
def test_wishes_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="no group"):
        Acquire(TakeoverReason.RECOVERY, ())


def test_rules_run_in_the_documented_order() -> None:
    assert [r.__name__ for r in rules.RULES] == [
        "arbitrated",
        "dual_owner",
        "moot",
        "quorum",
        "failback",
        "ping",
        "nobody",
        "hung_owner",
    ]


# ------------------------------------------------------------------- moot --
def test_moot_drops_a_takeover_waiting_for_an_address_a_live_peer_holds() -> None:
    waiting = free("g1", want=True, claimed=False, late=True)
    f = facts((waiting,), (peer(held=frozenset({"g1"})),))
    assert rules.moot(f) == [
        ResourceLog("info", "Takeover of g1 cancelled: beta holds it."),
        Release("g1", StopReason.PEER_BACK),
    ]


@pytest.mark.parametrize(
    ("g", "p"),
    [
        # not waiting as late: a takeover whose probe is still out, or plain startup
        (free("g1", want=True, late=False), peer(held=frozenset({"g1"}))),
        # held here: dual_owner's business
        (group("g1", late=True), peer(held=frozenset({"g1"}))),
        # the peer does not hold it (the address answers for someone else)
        (free("g1", want=True, late=True), peer()),
        # the peer holds it but is not healthy, or we have not heard it yet
        (free("g1", want=True, late=True), peer(held=frozenset({"g1"}), healthy=False)),
        (free("g1", want=True, late=True), peer(held=frozenset({"g1"}), heard=False)),
    ],
)
def test_moot_leaves_every_other_takeover_alone(g: GroupFacts, p: Any) -> None:
    assert rules.moot(facts((g,), (p,))) == []


# ------------------------------------------------------------- dual owner --
def test_dual_owner_preferred_node_keeps_and_reports_once() -> None:
    f = facts((group("g1", preferred="alpha"),), (peer(held=frozenset({"g1"})),))
    f, wishes = settle(rules.dual_owner, f)
    assert wishes == [
        Dual("g1", True),
        AnnounceGroup("g1"),
        OwnershipConflict("g1", "dual", "kept by alpha (its preferred node); beta releases it"),
    ]
    _, again = settle(rules.dual_owner, f)
    assert again == []  # the episode is reported once


def test_dual_owner_the_other_side_releases_with_the_same_verdict() -> None:
    f = facts(
        (group("g1", preferred="alpha"),), (peer("alpha", held=frozenset({"g1"})),), me="beta"
    )
    f, wishes = settle(rules.dual_owner, f)
    assert wishes == [
        Dual("g1", True),
        OwnershipConflict("g1", "dual", "released by beta; alpha keeps it (its preferred node)"),
        Release("g1", "dual owner"),
    ]
    # Until the release has run, the wish stands; the report does not repeat.
    assert settle(rules.dual_owner, f)[1] == [Release("g1", "dual owner")]


def test_dual_owner_waits_for_our_own_start_and_ends_the_episode() -> None:
    starting = group("g1", preferred="beta", state=GroupState.STARTING)
    assert rules.dual_owner(facts((starting,), (peer(held=frozenset({"g1"})),))) == []
    # We kept it; the other copy is gone: announce once more and close the episode.
    f = facts((group("g1"),), (peer(),), dual=frozenset({"g1"}))
    assert rules.dual_owner(f) == [AnnounceGroup("g1"), Dual("g1", False)]
    # A peer whose state we have not heard, or that is leaving, does not count as a holder.
    for other in (
        peer(held=frozenset({"g1"}), heard=False),
        peer(held=frozenset({"g1"}), healthy=False),
    ):
        assert rules.dual_owner(facts((group("g1"),), (other,))) == []


@settings(max_examples=200, derandomize=True, database=None)
@given(
    preferred=st.sampled_from(["alpha", "beta", "gamma"]),
    holders=st.sets(st.sampled_from(["alpha", "beta", "gamma"]), min_size=2),
)
def test_dual_owner_exactly_one_holder_keeps(preferred: str, holders: set[str]) -> None:
    """Every holder decides alone, from its own snapshot; together they keep one copy."""
    keeps = []
    for me in sorted(holders):
        others = tuple(peer(n, held=frozenset({"g1"})) for n in sorted(holders - {me}))
        f = facts((group("g1", preferred=preferred),), others, me=me)
        if Release("g1", "dual owner") not in rules.dual_owner(f):
            keeps.append(me)
    assert len(keeps) == 1
    assert keeps[0] == (preferred if preferred in holders else min(holders))


# ----------------------------------------------------------------- quorum --
def test_quorum_unblocks_a_returned_peer_and_retries_once_a_ping_node_answers() -> None:
    blocked_alive = peer(blocked=True)
    assert rules.quorum(facts(peers=(blocked_alive,))) == [Unblock("beta")]
    dead = peer(blocked=True, alive=False, healthy=False)
    assert rules.quorum(facts(peers=(dead,), configured=2, reachable=0)) == []
    assert rules.quorum(facts(peers=(dead,), configured=2, reachable=1)) == [
        Unblock("beta"),
        TakeOverFrom("beta"),
    ]
    ignore = facts(peers=(dead,), configured=2, policy=QuorumPolicy.IGNORE)
    assert rules.quorum(ignore) == [Unblock("beta"), TakeOverFrom("beta")]
    assert rules.quorum(facts(peers=(peer(),))) == []  # nothing blocked


# --------------------------------------------------------------- failback --
def test_failback_waits_for_stickiness_then_hands_the_peers_groups_back() -> None:
    groups = (group("mine"), group("theirs", preferred="beta"), group("gone", preferred="beta"))
    back = peer(failback=True, up_since=100.0, failed=frozenset({"gone"}))
    f = facts(groups, (back,), mode=AutoFailback.ON)
    assert rules.failback(f._replace(now=104.9)) == []
    assert rules.failback(f._replace(now=105.0)) == [
        FailbackDone("beta"),
        GiveAway("beta", Scope.FOREIGN, frozenset({"theirs"}), TakeoverReason.FAILBACK),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"mode": AutoFailback.OFF},
        {"stable": False},
        {"exchange_idle": False},
    ],
)
def test_failback_holds_back_while_off_unstable_or_busy(change: dict[str, Any]) -> None:
    f = facts((group("theirs", preferred="beta"),), (peer(failback=True),), mode=AutoFailback.ON)
    assert rules.failback(f) != []
    assert rules.failback(f._replace(**change)) == []


def test_failback_with_nothing_to_give_only_spends_the_chance() -> None:
    f = facts((group("mine"),), (peer(failback=True),), mode=AutoFailback.LEGACY)
    assert rules.failback(f) == [FailbackDone("beta")]
    unsteady = facts((group("mine"),), (peer(failback=True, stable=False),), mode=AutoFailback.ON)
    assert rules.failback(unsteady) == []


# ------------------------------------------------------------------- ping --
def test_ping_gives_up_after_a_continuous_lead() -> None:
    better = peer(pings=(2, 2))
    f = facts((group("g1"), group("g2", state=GroupState.STOPPING)), (better,))
    f = f._replace(configured=2, reachable=1, now=10.0)
    f, wishes = settle(rules.ping, f)
    assert wishes == [PingLead(10.0)]
    f, wishes = settle(rules.ping, f._replace(now=11.9))
    assert wishes == []  # the lead runs from 10
    f, wishes = settle(rules.ping, f._replace(now=12.0))
    assert wishes == [
        PingLead(None),
        ResourceLog("info", "Giving up because we have less visible ping nodes."),
        GiveAway("beta", Scope.ALL, frozenset({"g1"}), TakeoverReason.PING_QUORUM),
    ]


def test_ping_lead_restarts_after_a_break() -> None:
    f = facts((group("g1"),), (peer(pings=(2, 2)),), configured=2, reachable=1, now=10.0)
    f, _ = settle(rules.ping, f)
    even = f._replace(reachable=2, now=11.0)
    f, wishes = settle(rules.ping, even)
    assert wishes == [PingLead(None)]
    f, wishes = settle(rules.ping, f._replace(reachable=1, now=13.0))
    assert wishes == [PingLead(13.0)]
    assert settle(rules.ping, f._replace(now=14.5))[1] == []


@pytest.mark.parametrize(
    "change",
    [
        {"mode": AutoFailback.LEGACY},
        {"stable": False},
        {"configured": 0, "reachable": 0},
        {"reachable": 2},
        {"peers": (peer(pings=(2, 2), exact=False),)},
        {"peers": (peer(pings=(2, 2), stable=False),)},
        {"peers": (peer(pings=(2, 2)), peer("gamma", pings=(2, 2)))},
        {"peers": (peer(pings=None),)},
        {"groups": (group("g1", state=GroupState.STARTING),)},
        {"peers": (peer(pings=(2, 2), failed=frozenset({"g1"})),)},
    ],
)
def test_ping_no_lead(change: dict[str, Any]) -> None:
    f = facts((group("g1"),), (peer(pings=(2, 2)),), configured=2, reachable=1)
    assert rules.ping(f) == [PingLead(100.0)]
    assert rules.ping(f._replace(**change)) == []


# ----------------------------------------------------------------- nobody --
def test_nobody_holds_it_the_preferred_node_takes_it_after_settle() -> None:
    f = facts((free("g1"),), (peer(),), now=10.0)
    f, wishes = settle(rules.nobody, f)
    assert wishes == [Unowned("g1", 10.0)]
    f, wishes = settle(rules.nobody, f._replace(now=11.0))
    assert wishes == []
    f, wishes = settle(rules.nobody, f._replace(now=12.0))
    assert wishes == [
        Unowned("g1", None),
        OwnershipConflict("g1", "none", "nobody held it for 2 s; acquired by alpha"),
        Acquire(TakeoverReason.RECOVERY, ("g1",), probe=False),
    ]
    assert f.unowned == {}


def test_nobody_alone_probes_first_and_respects_quorum() -> None:
    alone = facts((free("g1"),), unowned={"g1": 0.0}, configured=1, reachable=1)
    assert rules.nobody(alone)[-1] == Acquire(TakeoverReason.RECOVERY, ("g1",), probe=True)
    cut_off = alone._replace(reachable=0)
    assert rules.nobody(cut_off) == [Unowned("g1", None)]


def test_nobody_leaves_it_to_the_preferred_peer_unless_that_failed_it() -> None:
    theirs = free("g1", preferred="beta")
    assert rules.nobody(facts((theirs,), (peer(),), unowned={"g1": 0.0})) == [Unowned("g1", None)]
    failed_there = peer(failed=frozenset({"g1"}))
    wishes = rules.nobody(facts((theirs,), (failed_there,), unowned={"g1": 0.0}))
    assert wishes[-1] == Acquire(TakeoverReason.RECOVERY, ("g1",), probe=False)
    # A heartbeat peer cannot say it failed a group: it is not counted eligible.
    hb = peer(exact=False)
    wishes = rules.nobody(facts((theirs,), (hb,), unowned={"g1": 0.0}))
    assert wishes[-1] == Acquire(TakeoverReason.RECOVERY, ("g1",), probe=False)


@pytest.mark.parametrize(
    "g",
    [
        group("g1"),  # held here
        free("g1", want=True),  # about to start here
        free("g1", late=True),  # its start waits for the address to go quiet
        free("g1", backoff=True),  # we failed it; nobody else may take it either
    ],
)
def test_nobody_claimed_or_ineligible_is_forgotten(g: GroupFacts) -> None:
    assert rules.nobody(facts((g,), unowned={"g1": 0.0})) == [Unowned("g1", None)]


def test_nobody_waits_while_anyone_is_unsteady() -> None:
    f = facts((free("g1"), free("g2")), (peer(stable=False),), unowned={"g1": 1.0, "g2": 2.0})
    assert rules.nobody(f) == [Unowned("g1", None), Unowned("g2", None)]
    assert rules.nobody(f._replace(stable=False)) == []
    held_there = facts((free("g1"),), (peer(held=frozenset({"g1"})),), unowned={"g1": 1.0})
    assert rules.nobody(held_there) == [Unowned("g1", None)]
