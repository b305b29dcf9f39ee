"""The pure tables: group state machine, standby exchange, quorum decisions.

The standing rules are in test_core_res_rules.py, the ownership stages in
test_core_res_stages.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hbmon.config.model import (
    GROUP_BACKOFF_MAX_MS,
    QuorumPolicy,
    Resource,
    ResourceGroup,
)
from hbmon.core import standby
from hbmon.core.events import (
    GroupDone,
    GroupOp,
    GroupState,
    GroupTransition,
    ProbeDone,
    ProbeGroup,
    ResourceLog,
    Scope,
    StartGroup,
    StopGroup,
    TakeoverReason,
)
from hbmon.core.groups import TRANSITIONS, GroupTable, Outcome, Trigger, backoff_s
from hbmon.core.quorum import keeper, recoverer, takeover_block
from hbmon.core.standby import Input, Phase, Standby
from hbmon.errors import LocalTransitionError, PeerTransitionError

GROUPS = tuple(ResourceGroup("alpha", (Resource(f"IPaddr::10.0.0.{i}"),)) for i in (1, 2, 3))
K1, K2, K3 = (g.key for g in GROUPS)

W = 0.15  # the probe window the core gives (its size is linkrtt.py's business)


def table() -> GroupTable:
    return GroupTable(GROUPS)


# ------------------------------------------------------------ group table --
def test_every_state_is_reachable_and_illegal_moves_raise() -> None:
    assert {new for new in TRANSITIONS.values()} == set(GroupState)
    t = table()
    g = t.get(K1)
    assert g is not None
    with pytest.raises(LocalTransitionError, match="no transition from released on stop_ok"):
        t._move(g, Trigger.STOP_OK, "", 0.0)
    assert g.state is GroupState.RELEASED  # unchanged


def test_starts_in_file_order_stops_right_to_left() -> None:
    t = table()
    for k in (K3, K1, K2):
        t.want(k, TakeoverReason.STARTUP)
    effects = t.step(0.0, W)
    assert [e.key for e in effects if isinstance(e, StartGroup)] == [K1, K2, K3]
    for k in (K1, K2, K3):
        t.done(GroupDone(k, GroupOp.START, True), 1.0)
        t.unwant(k, "shutdown")
    effects = t.step(2.0, W)
    assert [e for e in effects if isinstance(e, StopGroup)] == [
        StopGroup(K3, "shutdown"),
        StopGroup(K2, "shutdown"),
        StopGroup(K1, "shutdown"),
    ]
    assert t.step(2.0, W) == []  # one operation at a time per group


def test_failed_start_backs_off_and_is_handed_on() -> None:
    t = table()
    t.want(K1, TakeoverReason.PEER_DEAD)
    t.step(0.0, W)
    effects, outcome = t.done(GroupDone(K1, GroupOp.START, False, "exit 1"), 1.0)
    assert outcome is Outcome.START_FAILED
    assert effects == [
        GroupTransition(
            K1, GroupState.STARTING, GroupState.FAILED, TakeoverReason.PEER_DEAD, "exit 1"
        ),
        ResourceLog(
            "CRIT",
            f"Giving up resource group {K1}: start failed (exit 1); not tried here again for 10 s",
        ),
    ]
    g = t.get(K1)
    assert g is not None
    assert (g.want, g.start_failures, g.held) == (False, 1, False)
    assert t.failed(5.0) == {K1}
    assert t.failed(11.0) == set()
    t.want(K1, TakeoverReason.RECOVERY)
    assert t.step(10.5, W) == []  # still backing off
    assert [type(e) for e in t.step(11.0, W)] == [GroupTransition, StartGroup]


def test_failed_stop_counts_as_held_and_retries_after_backoff() -> None:
    t = table()
    t.adopt(K2, 0.0)
    t.unwant(K2, "verifyallidle")
    assert t.step(0.0, W)[-1] == StopGroup(K2, "verifyallidle")
    _, outcome = t.done(GroupDone(K2, GroupOp.STOP, False), 1.0)
    assert outcome is Outcome.STOP_FAILED
    assert t.held() == {K2}
    assert t.step(5.0, W) == []
    assert t.step(11.0, W)[-1] == StopGroup(K2, "verifyallidle")
    _, outcome = t.done(GroupDone(K2, GroupOp.STOP, False), 12.0)
    assert t.next_deadline() == 12.0 + 20  # doubled


def test_backoff_doubles_to_its_cap() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff_s(9) == GROUP_BACKOFF_MAX_MS / 1000
    assert backoff_s(500) == GROUP_BACKOFF_MAX_MS / 1000


def test_probe_blocks_then_clears() -> None:
    t = table()
    t.want(K1, TakeoverReason.PEER_DEAD, probe=True)
    assert t.step(0.0, W) == [ProbeGroup(K1, W)]
    assert t.claimed() == {K1}
    assert t.pending() == {K1}
    assert t.probed(ProbeDone(K1, True), 0.1, retry_s=1.0) is Outcome.BLOCKED
    assert t.claimed() == set()  # blocked: not claimed while someone answers for it
    assert t.step(0.5, W) == []
    assert t.step(1.1, W) == [ProbeGroup(K1, W)]
    assert t.probed(ProbeDone(K1, False), 1.2, retry_s=1.0) is Outcome.CLEAR
    assert [type(e) for e in t.step(1.2, W)] == [GroupTransition, StartGroup]
    assert t.done(GroupDone(K1, GroupOp.STOP, True), 2.0) == ([], None)  # stray answer


def test_reconfigure_keeps_held_removed_groups_until_released() -> None:
    t = table()
    t.want(K3, TakeoverReason.STARTUP)
    t.step(0.0, W)
    t.done(GroupDone(K3, GroupOp.START, True), 1.0)
    assert t.configure(GROUPS[:2]) == [K3]
    assert [g.key for g in t.configured()] == [K1, K2]
    assert [g.key for g in t] == [K1, K2, K3]
    t.unwant(K3, "removed")
    t.step(2.0, W)
    t.done(GroupDone(K3, GroupOp.STOP, True), 3.0)
    assert [g.key for g in t] == [K1, K2]


# ---------------------------------------------------------------- standby --
SB_EVENTS: dict[Input, standby.StandbyEvent] = {
    Input.REQUEST: standby.Request("beta", Scope.ALL, frozenset({K1}), TakeoverReason.STANDBY, 7),
    Input.ASK_TAKEOVER: standby.AskTakeover("beta", Scope.FOREIGN, frozenset({K2}), 8),
    Input.GOT_ME: standby.GotMe("beta", Scope.LOCAL, frozenset({K3}), TakeoverReason.FAILBACK, 4),
    Input.GOT_OTHER: standby.GotOther(5),
    Input.GOT_DONE: standby.GotDone(),
    Input.RELEASED: standby.GroupsReleased(),
    Input.ACQUIRED: standby.GroupsAcquired(),
    Input.TIMEOUT: standby.TimedOut(),
    Input.ABORT: standby.Abort(),
}


def test_every_standby_input_has_an_event() -> None:
    assert set(SB_EVENTS) == set(Input)
    assert all(ev.kind is kind for kind, ev in SB_EVENTS.items())


def test_standby_table_walks_both_roles() -> None:
    sb = Standby()
    assert sb.fire(SB_EVENTS[Input.REQUEST], 0.0) is Phase.ASKED
    assert (sb.peer, sb.scope, sb.keys, sb.why, sb.request_id) == (
        "beta",
        Scope.ALL,
        {K1},
        TakeoverReason.STANDBY,
        7,
    )
    assert sb.deadline == 10.0
    assert sb.fire(standby.GotOther(5), 1.0) is Phase.RELEASING
    assert (sb.mark, sb.deadline) == (5, None)
    assert sb.fire(standby.GroupsReleased(frozenset({K1})), 2.0) is Phase.HANDED
    assert (sb.failed, sb.deadline, sb.started_at) == ({K1}, 3602.0, 0.0)
    assert sb.fire(standby.GotDone(), 3.0) is Phase.IDLE
    assert (sb.peer, sb.keys, sb.failed, sb.request_id, sb.started_at) == (
        None,
        set(),
        set(),
        None,
        None,
    )
    assert sb.fire(SB_EVENTS[Input.ASK_TAKEOVER], 4.0) is Phase.TAKEOVER
    assert (sb.why, sb.request_id, sb.scope) == (TakeoverReason.TAKEOVER, 8, Scope.FOREIGN)
    me = standby.GotMe("beta", Scope.LOCAL, frozenset({K2}), TakeoverReason.TAKEOVER, 3, 8)
    assert sb.fire(me, 5.0) is Phase.OFFERED
    assert (sb.mark, sb.scope, sb.started_at) == (3, Scope.LOCAL, 4.0)
    assert sb.fire(standby.GotDone(frozenset({K2, K3})), 6.0) is Phase.ACQUIRING
    assert sb.keys == {K2, K3}
    assert sb.fire(standby.GroupsAcquired(), 7.0) is Phase.IDLE
    assert sb.peer is None


@pytest.mark.parametrize("phase", list(Phase))
def test_only_listed_inputs_move_a_phase(phase: Phase) -> None:
    for inp, event in SB_EVENTS.items():
        sb = Standby(phase=phase, peer="beta", keys=frozenset({K1}))
        if (phase, inp) in standby.TRANSITIONS:
            sb.fire(event, 0.0)
        else:
            blame = PeerTransitionError if inp in standby.FROM_PEER else LocalTransitionError
            with pytest.raises(blame, match=f"no transition from {phase} on {inp}"):
                sb.fire(event, 0.0)
            assert (sb.phase, sb.peer, sb.keys) == (phase, "beta", {K1})  # unchanged
    assert Standby(phase=phase).allows(Input.ABORT)


@pytest.mark.parametrize(
    "build",
    [
        lambda: standby.Request("", Scope.ALL, frozenset(), TakeoverReason.STANDBY),
        lambda: standby.Request("beta", Scope.ALL, frozenset(), TakeoverReason.PEER_DEAD),
        lambda: standby.Request("beta", Scope.ALL, frozenset({""}), TakeoverReason.STANDBY),
        lambda: standby.AskTakeover("beta", Scope.ALL, frozenset(), request_id=-1),
        lambda: standby.GotMe("beta", Scope.ALL, frozenset(), TakeoverReason.STANDBY, -1),
        lambda: standby.GotOther(-2),
        lambda: standby.GroupsReleased(frozenset({""})),
    ],
)
def test_standby_events_are_checked_when_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"\w+: "):
        build()


def test_waiting_phases_time_out_and_busy_ones_do_not() -> None:
    waits = {p for p, t in standby.TIMEOUTS.items() if t is not None}
    assert waits == {Phase.ASKED, Phase.TAKEOVER, Phase.HANDED, Phase.OFFERED}
    assert all((p, Input.TIMEOUT) in standby.TRANSITIONS for p in waits)


# ----------------------------------------------------------------- quorum --
def test_takeover_block() -> None:
    assert takeover_block(QuorumPolicy.FREEZE, 0, 0) is None  # no ping nodes configured
    assert takeover_block(QuorumPolicy.FREEZE, 2, 1) is None
    assert takeover_block(QuorumPolicy.IGNORE, 2, 0) is None
    why = takeover_block(QuorumPolicy.FREEZE, 2, 0)
    assert why is not None
    assert "0 of 2" in why


def test_keeper_and_recoverer_agree_from_both_sides() -> None:
    assert keeper("alpha", ["beta", "alpha"]) == ("alpha", "its preferred node")
    assert keeper("gamma", ["beta", "alpha"]) == ("alpha", "the node whose name sorts first")
    assert keeper("gamma", ["beta", "alpha"]) == keeper("gamma", ["alpha", "beta"])
    with pytest.raises(ValueError, match="nobody"):
        keeper("alpha", [])
    assert recoverer("alpha", ["beta", "alpha"]) == "alpha"
    assert recoverer("alpha", ["gamma", "beta"]) == "beta"
    assert recoverer("alpha", []) is None
