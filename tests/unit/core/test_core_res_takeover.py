"""Startup and takeover decisions (core/takeover.py), each from a hand-built snapshot."""

from __future__ import annotations

from factstools import facts, free, group, peer

from hbmon.config.model import QuorumPolicy
from hbmon.core.events import FenceResult, GroupState, ResourceLog, Scope, TakeoverReason
from hbmon.core.facts import Acquire, Block, Claim, Fire, NoReset, Reset, Unblock, info
from hbmon.core.stages import Alone, PeersKnown
from hbmon.core.takeover import (
    BOTH_STARTING_WAIT_S,
    alone,
    known,
    rejoined,
    startup,
    startup_deadlines,
    takeover,
)

WAIT = BOTH_STARTING_WAIT_S
# heartbeat's words when a dead node may hold groups and no device can reset it.
UNPROTECTED = [
    NoReset("beta", FenceResult.NOT_CONFIGURED),
    ResourceLog("WARN", "No STONITH device configured."),
    ResourceLog("WARN", "Shared disks are not protected."),
]
MINE, THEIRS = free("mine", preferred="alpha"), free("theirs", preferred="beta")


# ---------------------------------------------------------------- startup --
def test_startup_waits_until_the_live_peer_is_known() -> None:
    silent = peer(exact=False, heard=False, stable=False)
    assert startup(facts((MINE,), (silent,), comm_at=100.0, now=100.0 + WAIT - 1)) == []
    assert startup(facts((MINE,), (silent,), comm_at=100.0, now=100.0 + WAIT))[0] == Fire(
        PeersKnown(("beta",))
    )
    # It sent `resource` but is not stable: WAIT after that message.
    said = peer(exact=False, heard=True, stable=False, resource_at=103.0)
    assert not known(said, facts(now=112.9, comm_at=100.0))
    assert known(said, facts(now=113.0, comm_at=100.0))
    assert known(peer(), facts(now=0.0, comm_at=None))  # an hbmon peer that reported


def test_startup_takes_our_own_groups_that_the_peer_does_not_claim() -> None:
    claimed_there = free("busy", preferred="alpha")
    f = facts((MINE, THEIRS, claimed_there), (peer(held=frozenset({"busy"})),))
    assert startup(f) == [
        Fire(PeersKnown(("beta",))),
        Claim(Scope.LOCAL),
        Acquire(TakeoverReason.STARTUP, ("mine",)),
    ]


def test_startup_does_not_claim_local_when_the_peer_claims_foreign() -> None:
    holder = peer(claims=Scope.FOREIGN, held=frozenset({"mine"}))
    assert startup(facts((MINE,), (holder,))) == [
        Fire(PeersKnown(("beta",))),
        info("Local Resource acquisition completed. (none)"),
    ]


def test_startup_deadlines_follow_the_wait_rule() -> None:
    assert startup_deadlines(100.0, [None, 105.0]) == [100.0 + WAIT, 105.0 + WAIT]


# ------------------------------------------------------------------ alone --
def test_alone_takes_everything_probing_first() -> None:
    dead = peer(alive=False, healthy=False, heard=False)
    f = facts((MINE, THEIRS, group("held")), (dead,))
    assert (
        startup(f)
        == alone(f)
        == [
            Fire(Alone(("beta",))),
            Claim(Scope.ALL),
            *UNPROTECTED,
            Acquire(TakeoverReason.STARTUP, ("mine",), probe=True),
            Acquire(TakeoverReason.PEER_DEAD, ("theirs",), probe=True, peer="beta", mach_down=True),
        ]
    )


def test_a_cluster_of_one_still_probes_and_resets_nobody() -> None:
    assert alone(facts((MINE,), ())) == [
        Fire(Alone(())),
        Claim(Scope.ALL),
        Acquire(TakeoverReason.STARTUP, ("mine",), probe=True),
    ]


def test_alone_without_quorum_blocks_and_names_the_dead() -> None:
    dead = peer(alive=False, healthy=False)
    f = facts((MINE, THEIRS), (dead,), configured=2, reachable=0)
    *_, blocked = alone(f)
    assert isinstance(blocked, Block)
    assert (blocked.peers, blocked.keys) == (("beta",), ("mine", "theirs"))
    assert "0 of 2" in blocked.why
    assert alone(f._replace(policy=QuorumPolicy.IGNORE))[-1] == Acquire(
        TakeoverReason.PEER_DEAD, ("theirs",), probe=True, peer="beta", mach_down=True
    )


def test_alone_with_nothing_to_take_only_moves_the_stage() -> None:
    backing_off = free("g", backoff=True)
    assert alone(facts((backing_off,))) == [Fire(Alone(())), Claim(Scope.ALL)]


# --------------------------------------------------------------- takeover --
def test_takeover_from_a_dead_peer_probes_what_nobody_else_claims() -> None:
    dead = peer("beta", alive=False, healthy=False, held=frozenset({"theirs"}))
    other = peer("gamma", held=frozenset({"gammas"}))
    gammas = free("gammas", preferred="gamma")
    f = facts((MINE, THEIRS, gammas, group("held")), (dead, other))
    assert takeover(f, "beta", dead=True, silent_since=90.0) == [
        *UNPROTECTED,
        Claim(Scope.ALL),
        info("Resources being acquired from beta."),
        Unblock("beta"),
        Acquire(
            TakeoverReason.PEER_DEAD,
            ("mine", "theirs"),
            probe=True,
            peer="beta",
            mach_down=True,
            silent_since=90.0,
        ),
    ]


def test_takeover_from_a_dead_peer_without_quorum_blocks() -> None:
    dead = peer(alive=False, healthy=False)
    f = facts((THEIRS,), (dead,), configured=1, reachable=0)
    wishes = takeover(f, "beta", dead=True)
    assert wishes[:2] == [Claim(Scope.ALL), info("Resources being acquired from beta.")]
    assert isinstance(wishes[2], Block)
    assert wishes[2].peers == ("beta",)


def test_takeover_with_nothing_left_says_the_dead_peer_gave_up() -> None:
    dead = peer(alive=False, healthy=False)
    f = facts((group("theirs", preferred="beta"),), (dead,))
    gave_up = dead._replace(gave_up=True)
    assert takeover(f._replace(peers=(gave_up,)), "beta", dead=True) == [
        info("Dead node beta gave up resources."),
        NoReset("beta", FenceResult.UNNEEDED),
        Claim(Scope.ALL),
    ]
    # Not when it still said it held something, nor for a leaving peer's takeover.
    holding = peer(alive=False, healthy=False, held=frozenset({"x"}))
    assert takeover(f._replace(peers=(holding,)), "beta", dead=True) == [
        *UNPROTECTED,
        Claim(Scope.ALL),
    ]
    assert takeover(f, "beta", dead=False) == [Claim(Scope.ALL)]


def test_takeover_from_a_leaving_peer_starts_released_groups_at_once() -> None:
    stale = free("stale", preferred="beta")
    leaving = peer(healthy=False, leaving=True, held=frozenset({"stale"}))
    f = facts((THEIRS, stale), (leaving,))
    assert takeover(f, "beta", dead=False) == [
        Claim(Scope.ALL),
        info("Resources being acquired from beta."),
        Acquire(TakeoverReason.SHUTDOWN, ("theirs",), probe=False, peer="beta", mach_down=True),
        Acquire(TakeoverReason.SHUTDOWN, ("stale",), probe=True, peer="beta", mach_down=True),
    ]


def test_takeover_never_touches_a_group_starting_or_held_here() -> None:
    starting = group("s", preferred="beta", state=GroupState.STARTING)
    dead = peer(alive=False, healthy=False, gave_up=True)
    assert takeover(facts((starting,), (dead,)), "beta", dead=True) == [
        info("Dead node beta gave up resources."),
        NoReset("beta", FenceResult.UNNEEDED),
        Claim(Scope.ALL),
    ]


def test_with_an_arbitrator_the_groups_are_acquired_before_the_reset_and_wait_for_it() -> None:
    """The key first (docs/fencing.md): the groups are wanted at once, so their keys are
    claimed; unprobed, since they start only after the reset that follows the key."""
    holding = peer(alive=False, healthy=False, held=frozenset({"theirs"}), fenceable=True)
    f = facts((THEIRS,), (holding,), arbitrated=True, fence_delay_s=10.0)
    assert takeover(f, "beta", dead=True, silent_since=90.0) == [
        Reset("beta", 0.0, after_key=True),  # we hold nothing: no delay
        Claim(Scope.ALL),
        info("Resources being acquired from beta."),
        Unblock("beta"),
        Acquire(
            TakeoverReason.PEER_DEAD,
            ("theirs",),
            probe=False,
            peer="beta",
            mach_down=True,
            silent_since=90.0,
            after_reset=True,
        ),
    ]
    # without the arbitrator, heartbeat's order: the reset alone, the takeover after it
    assert takeover(f._replace(arbitrated=False), "beta", dead=True) == [Reset("beta", 0.0)]
    # at startup, with a node not heard within initdead: ours too wait for its reset
    unheard = peer(alive=False, healthy=False, heard=False, fenceable=True)
    wishes = alone(facts((MINE, THEIRS), (unheard,), arbitrated=True))
    assert wishes[2] == Reset("beta", 0.0, after_key=True)
    acquired = [w for w in wishes if isinstance(w, Acquire)]
    assert [(a.keys, a.probe, a.after_reset) for a in acquired] == [
        (("mine",), False, True),
        (("theirs",), False, True),
    ]


# -------------------------------------------------------------- rejoined --
def test_a_restarted_peer_keeps_what_its_new_process_reports() -> None:
    """A handover: its new process reports the group it kept; nothing is taken."""
    back = peer(held=frozenset({"theirs"}), stable=False)
    f = facts((THEIRS, group("mine")), (back,))
    assert rejoined(f, "beta") == [info("Node beta restarted holding [theirs]: left with it.")]


def test_a_restarted_peer_that_holds_nothing_is_taken_over_probing_first() -> None:
    """A crash or watchdog restart: its new process holds nothing (it releases what
    it found running); what nobody claims is taken as from a dead node, probed."""
    back = peer(stable=False)
    f = facts((THEIRS, group("mine")), (back,))
    assert rejoined(f, "beta") == [
        Claim(Scope.ALL),
        info("Resources being acquired from beta."),
        Unblock("beta"),
        Acquire(TakeoverReason.PEER_DEAD, ("theirs",), probe=True, peer="beta", mach_down=True),
    ]


def test_a_restarted_peer_keeps_its_groups_and_leaves_the_rest_to_takeover() -> None:
    back = peer(held=frozenset({"theirs"}), stable=False)
    orphan = free("orphan", preferred="beta")
    f = facts((THEIRS, orphan), (back,))
    assert rejoined(f, "beta") == [
        info("Node beta restarted holding [theirs]: left with it."),
        Claim(Scope.ALL),
        info("Resources being acquired from beta."),
        Unblock("beta"),
        Acquire(TakeoverReason.PEER_DEAD, ("orphan",), probe=True, peer="beta", mach_down=True),
    ]


def test_a_restarted_peer_with_nothing_anywhere_to_take_says_nothing() -> None:
    """Unlike a death, a restart that leaves nothing unowned is not news: no "gave up"."""
    f = facts((group("mine"),), (peer(stable=False),))
    assert rejoined(f, "beta") == []
