"""Split-brain guard (issue 4 §8) and the ipfail-style ping comparison (spec §5.5).

keepalive 1 s, deadtime 10 s, delay 1/16 s; a start/stop takes 1/4 s, a probe 1/8 s.
"""

from __future__ import annotations

from simnet import DELAY, Sim
from simowners import GROUPS, VIP_A, VIP_B, A, B, feed_pings, lines, ping_addr, rpair

from hbmon.config.model import QuorumPolicy
from hbmon.core.events import (
    AnnounceGroup,
    BlockReason,
    GroupState,
    GroupTransition,
    OwnershipConflict,
    PartitionHealed,
    ProbeGroup,
    SendMessage,
    StartGroup,
    StopGroup,
    TakeoverBlocked,
    TakeoverComplete,
    TakeoverReason,
)

OP = 0.25
PROBE = 0.125
DEAD_AT = 10 + DELAY + 10  # last beat sent at 10 s + deadtime


def settled(sim: Sim, until: float = 5.0) -> Sim:
    sim.start(A)
    sim.start(B)
    sim.run_until(until)
    return sim


def blocked(sim: Sim, name: str) -> dict[str, int]:
    return dict(sim.nodes[name].snapshot(sim.clock.now).takeovers_blocked)


# ------------------------------------------------------------- (b) probes --
def test_probe_blocks_takeover_while_the_address_answers() -> None:
    sim = settled(rpair())
    sim.run_until(10.5)
    sim.kill(B)  # the agent dies, VIP_B stays up on beta's machine
    sim.run_until(25)
    why = f"address of {VIP_B} still answers on the service network (answered by beta)"
    assert sim.effects(A, TakeoverBlocked) == [
        (DEAD_AT + PROBE, TakeoverBlocked((VIP_B,), BlockReason.IN_USE, why))
    ]
    # probed early (in use), at the deadline, then again every keepalive; never started
    probes = [t for t, _ in sim.effects(A, ProbeGroup)]
    assert probes[:4] == [DEAD_AT - 0.2, DEAD_AT, DEAD_AT + PROBE + 1, DEAD_AT + 2 * (PROBE + 1)]
    assert [e for _, e in sim.effects(A, StartGroup) if e.key == VIP_B] == []
    assert blocked(sim, A) == {"quorum": 0, "in_use": 1, "fencing": 0}
    assert sim.world.on(VIP_B) == {B}


def test_restarted_agent_releases_first_and_exactly_one_node_owns_the_group() -> None:
    sim = settled(rpair())
    sim.run_until(10.5)
    sim.kill(B)
    sim.run_until(25)
    sim.start(B, generation=101)  # verifyallidle releases VIP_B, then it takes it back
    sim.run_until(40)
    assert f"Resource {VIP_B} is active, and should not be!" in lines(sim, B)
    assert sim.holders(VIP_B) == {B}
    assert sim.world.on(VIP_B) == {B}
    assert sim.holders(VIP_A) == {A}
    n = len(sim.effects(A, ProbeGroup))
    sim.run_until(60)
    assert len(sim.effects(A, ProbeGroup)) == n  # alpha stopped probing when beta came back


def test_takeover_completes_once_the_address_goes_quiet() -> None:
    sim = settled(rpair())
    sim.run_until(10.5)
    sim.kill(B)
    sim.run_until(23.5)
    sim.world.on(VIP_B).clear()  # an admin removes the stale address
    sim.run_until(30)
    # the probe after 23.5 s finds it free: a new takeover, timed from there
    clear = next(t + PROBE for t, _ in sim.effects(A, ProbeGroup) if t + PROBE > 23.5)
    assert sim.effects(A, TakeoverComplete)[-1] == (
        clear + OP,
        TakeoverComplete(TakeoverReason.PEER_DEAD, (VIP_B,), OP, B),
    )
    assert sim.world.on(VIP_B) == {A}


# ------------------------------------------------------------- (a) quorum --
def test_isolated_node_does_not_take_over_and_does_once_a_ping_node_answers() -> None:
    sim = rpair(pings=1)
    reach = {A: {ping_addr(0)}, B: {ping_addr(0)}}
    feed_pings(sim, 0, reach)
    settled(sim, 0.5)
    feed_pings(sim, 9.5, reach)  # alpha's last reply at 9.5 s: its ping node is dead at 19.5
    reach[A] = set()
    feed_pings(sim, 10.5, reach)
    sim.crash(B)
    feed_pings(sim, 30, reach)
    why = (
        "no ping node reachable (0 of 1) and the peer is unreachable: "
        "we may be the one cut off (quorum_policy freeze)"
    )
    assert sim.effects(A, TakeoverBlocked) == [
        (DEAD_AT, TakeoverBlocked((VIP_B,), BlockReason.QUORUM, why))
    ]
    assert blocked(sim, A) == {"quorum": 1, "in_use": 0, "fencing": 0}
    assert [e for _, e in sim.effects(A, StartGroup) if e.key == VIP_B] == []
    assert sim.holders(VIP_A) == {A}  # it keeps what it holds
    reach[A] = {ping_addr(0)}
    feed_pings(sim, 40, reach)  # a reply at 30 s: the ping node is back
    assert sim.effects(A, TakeoverComplete)[-1] == (
        30 + PROBE + OP,
        TakeoverComplete(TakeoverReason.PEER_DEAD, (VIP_B,), PROBE + OP, B),
    )


def test_a_ping_node_not_yet_dead_but_silent_since_the_peer_is_no_quorum() -> None:
    """The cable is cut: the peer and the ping node fall silent together, but the ping
    node is only declared dead deadping after its last reply — possibly after the peer.
    Quorum needs a ping reply newer than the peer's last beat."""
    sim = rpair(pings=1, deadping_ms=15000)  # the ping node outlives the peer by 5 s
    reach = {A: {ping_addr(0)}, B: {ping_addr(0)}}
    feed_pings(sim, 0, reach)
    settled(sim, 0.5)
    feed_pings(sim, 9.6, reach)  # alpha's last reply at 9.5 s
    reach[A] = set()
    feed_pings(sim, 10.5, reach)
    sim.crash(B)  # beta's last beat reaches alpha after alpha's last ping reply
    feed_pings(sim, 21.0, reach)  # beta is dead; the ping node still counts as up (deadping)
    peer = sim.nodes[A].snapshot(sim.clock.now).ping_nodes[0]
    assert peer.status.value == "ping", "the ping node is not yet declared dead"
    assert [e for _, e in sim.effects(A, StartGroup) if e.key == VIP_B] == []
    assert len(sim.effects(A, TakeoverBlocked)) == 1
    reach[A] = {ping_addr(0)}
    feed_pings(sim, 30, reach)  # a fresh reply: connected after all
    assert sim.holders(VIP_B) == {A}


def test_quorum_policy_ignore_takes_over_like_heartbeat() -> None:
    sim = rpair(pings=1, quorum=QuorumPolicy.IGNORE)
    reach = {A: {ping_addr(0)}, B: {ping_addr(0)}}
    feed_pings(sim, 0, reach)
    settled(sim, 0.5)
    feed_pings(sim, 10.5, reach)
    sim.crash(B)
    reach[A] = set()
    feed_pings(sim, 25, reach)
    assert sim.effects(A, TakeoverBlocked) == []
    assert sim.holders(VIP_B) == {A}


# ------------------------------------------------------------ (c) heal --
def test_partition_heal_leaves_exactly_one_holder_on_both_sides() -> None:
    sim = settled(rpair())
    sim.run_until(10.5)
    sim.partition(A, B)
    sim.world.service_cut.add(frozenset((A, B)))  # the service network too: probes see nothing
    sim.run_until(25)
    assert sim.holders(VIP_A) == {A, B}  # split brain: each took the other's group
    assert sim.holders(VIP_B) == {A, B}
    sim.heal()
    sim.world.service_cut.clear()
    sim.run_until(35)
    assert sim.holders(VIP_A) == {A}
    assert sim.holders(VIP_B) == {B}
    assert sim.world.on(VIP_A) == {A}
    assert sim.world.on(VIP_B) == {B}
    assert [e.key for _, e in sim.effects(A, StopGroup)] == [VIP_B]
    assert [(e.key, e.reason) for _, e in sim.effects(B, StopGroup)] == [(VIP_A, "dual owner")]
    assert [e for _, e in sim.effects(A, OwnershipConflict)] == [
        OwnershipConflict(VIP_A, "dual", "kept by alpha (its preferred node); beta releases it"),
        OwnershipConflict(VIP_B, "dual", "released by alpha; beta keeps it (its preferred node)"),
    ]
    for name in (A, B):
        assert dict(sim.nodes[name].snapshot(35).conflicts) == {"dual": 2, "none": 0}
    # no restart of everything: the groups each node keeps were never stopped
    assert [e.key for _, e in sim.effects(A, StopGroup)] == [VIP_B]
    # Each keeper re-announces its address at the heal, when the conflict is seen and
    # once the other copy is gone: clients whose ARP entries followed the releasing
    # side's announcements during the split come back at once, not when they expire.
    healed = next(t for t, _ in sim.effects(A, PartitionHealed))
    dual_seen = next(t for t, e in sim.effects(A, OwnershipConflict) if e.key == VIP_A)
    released = next(t for t, e in sim.effects(B, GroupTransition)
                    if e.key == VIP_A and e.new is GroupState.RELEASED and t > 25)  # fmt: skip
    announced = [t for t, e in sim.effects(A, AnnounceGroup) if e.key == VIP_A]
    assert announced[:2] == [healed, dual_seen]
    assert released < announced[2] <= released + 1 + 2 * DELAY  # B's next report
    assert len(announced) == 3
    assert len([e for _, e in sim.effects(B, AnnounceGroup) if e.key == VIP_B]) == 3


# ------------------------------------------------------------ ping compare --
def test_fewer_ping_nodes_gives_the_groups_to_the_better_connected_peer() -> None:
    sim = rpair(pings=2)
    both = {ping_addr(0), ping_addr(1)}
    reach = {A: set(both), B: set(both)}
    feed_pings(sim, 0, reach)
    settled(sim, 0.5)
    feed_pings(sim, 10.5, reach)
    reach[A] = {ping_addr(0)}  # alpha's last reply from 10.9.9.2 at 10.5 s: dead at 20.5 s
    feed_pings(sim, 40, reach)
    # alpha has seen fewer for 2×keepalive at 22.5 s: standby [all] (me, other, done, done)
    assert "Giving up because we have less visible ping nodes." in lines(sim, A)
    assert sim.effects(B, TakeoverComplete)[-1] == (
        22.5 + 3 * DELAY + 2 * OP,
        TakeoverComplete(TakeoverReason.PING_QUORUM, (VIP_A,), OP, A),
    )
    assert sim.holders(VIP_A) == {B}
    assert sim.holders(VIP_B) == {B}


def test_equal_ping_counts_move_nothing() -> None:
    sim = rpair(pings=2)
    both = {ping_addr(0), ping_addr(1)}
    reach = {A: set(both), B: set(both)}
    feed_pings(sim, 0, reach)
    settled(sim, 0.5)
    feed_pings(sim, 10.5, reach)
    reach = {A: {ping_addr(0)}, B: {ping_addr(1)}}  # one each
    feed_pings(sim, 40, reach)
    assert sim.holders(VIP_A) == {A}
    assert sim.holders(VIP_B) == {B}
    assert not [
        e for _, e in sim.effects(B, TakeoverComplete) if e.reason is TakeoverReason.PING_QUORUM
    ]


def test_the_keeper_that_hears_the_heal_first_says_so_at_once() -> None:
    """One group (beta's). After the split both hold it; at the heal beta, the keeper,
    hears alpha's beat first and sends its holdings at once (a status outside its
    grid), so alpha releases one network delay later, not at beta's next slot."""
    sim = rpair(groups=(GROUPS[1],))
    sim.start(A)
    sim.run_until(0.25)
    sim.start(B)  # beta's beats come 1/4 s after alpha's
    sim.run_until(10.5)
    sim.partition(A, B)
    sim.world.service_cut.add(frozenset((A, B)))
    sim.run_until(40.3)  # just after beta's beat at 40.25 s: alpha's at 41 s comes first
    assert sim.holders(VIP_B) == {A, B}
    sim.heal()
    sim.world.service_cut.clear()
    sim.run_until(45)
    heard = next(t for t, _ in sim.effects(B, PartitionHealed))
    assert heard == 41 + DELAY  # alpha's beat at 41 s, before beta's at 41.25 s
    beta_sent = [t for t, e in sim.effects(B, SendMessage) if e.message.type == "status"]
    assert heard in beta_sent  # the extra status, at once
    (stop,) = [t for t, e in sim.effects(A, StopGroup) if e.key == VIP_B]
    assert stop == heard + DELAY  # not at 41.25 + DELAY, beta's next slot
    assert sim.holders(VIP_B) == {B}
