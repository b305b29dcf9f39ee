"""core/arbitration.py on its own: requests out, answers in, no clock, no etcd."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hbmon.config.leasetiming import LeaseTiming
from hbmon.config.model import (
    ARBITRATOR_HANDOVER_RETRY_MS,
    ArbitratorSettings,
    Timers,
)
from hbmon.core.arbevents import (
    ArbiterFailed,
    ArbiterReachability,
    ClaimKey,
    GrantLease,
    KeyChange,
    KeyClaimed,
    KeyConflict,
    KeyReleased,
    LeaseChange,
    LeaseGranted,
    LeaseRenewal,
    LeaseRenewed,
    ReleaseKey,
    RenewLease,
    UnarbitratedPeer,
)
from hbmon.core.arbitration import Arbitration
from hbmon.errors import TransitionError

TIMING = LeaseTiming.of(
    Timers(keepalive_ms=500, deadtime_ms=3000), ArbitratorSettings(endpoints=("http://e:2379",))
)
G = "IPaddr::10.0.0.10/24/eth0"


@dataclass
class Peer:
    name: str
    healthy: bool = True
    claimed: frozenset[str] = frozenset()


@dataclass
class Group:
    key: str
    want: bool = False
    held: bool = False
    busy: bool = False


def granted(now: float = 0.0) -> tuple[Arbitration, dict[str, Peer]]:
    a = Arbitration("alpha", 7, TIMING, 0.5)
    peers = {"beta": Peer("beta")}
    a.bind(peers)
    (grant,) = a.start(now)
    assert grant == GrantLease(1, 2)
    out = a.answer(LeaseGranted(1, 0xAB, 2), now + 0.01)
    assert out == [ArbiterReachability(True, "answering"), LeaseChange(0xAB, 2, "granted for 2 s")]
    return a, peers


def claim(a: Arbitration, now: float) -> ClaimKey:
    out = a.follow([Group(G, want=True)], now)
    assert len(out) == 1
    assert isinstance(out[0], ClaimKey)
    return out[0]


def test_without_arbitrator_everything_is_allowed_and_nothing_sent() -> None:
    a = Arbitration("alpha", 7, None, 0.5)
    assert a.may_start(G, 0)
    assert a.start(0) == []
    assert a.beat(0) == []
    assert a.follow([Group(G, want=True)], 0) == []
    assert a.unlicensed([G], 0) == frozenset()
    assert a.view(0) is None
    assert a.quiet()


def test_start_waits_for_the_key_and_the_lease() -> None:
    a, _ = granted()
    assert not a.may_start(G, 0.1)
    c = claim(a, 0.1)
    assert c.lease == 0xAB
    assert c.over is None
    assert a.follow([Group(G, want=True)], 0.105) == []  # one claim at a time
    out = a.answer(KeyClaimed(c.request, True), 0.11)
    assert out == [KeyChange(G, True, "claimed under lease ab")]
    assert a.may_start(G, 0.11)
    # the lease counts hold_s(TTL) after the grant was sent
    assert a.may_start(G, TIMING.hold_s(2) - 0.001)
    assert not a.may_start(G, TIMING.hold_s(2))


def test_renewal_extends_from_its_send_time_and_reports_latency() -> None:
    a, _ = granted()
    (renew,) = a.beat(1.0)
    assert renew == RenewLease(2, 0xAB)
    assert a.beat(1.2) == []  # not while one is out
    assert a.answer(LeaseRenewed(2, 2), 1.03) == [LeaseRenewal(pytest.approx(0.03), 2)]
    assert a.lease_counts(1.0 + TIMING.hold_s(2) - 0.001)
    assert not a.lease_counts(1.0 + TIMING.hold_s(2))


def test_a_lost_claim_names_the_holder_once_and_retries_a_beat_later() -> None:
    a, peers = granted()
    peers["beta"].claimed = frozenset({G})
    c = claim(a, 0.1)
    out = a.answer(KeyClaimed(c.request, False, "beta", 3, 55), 0.11)
    assert out == [KeyConflict(G, "beta")]
    assert a.follow([Group(G, want=True)], 0.5) == []
    again = claim(a, 0.61)
    assert a.answer(KeyClaimed(again.request, False, "beta", 3, 55), 0.62) == []  # not news
    view = a.view(0.62)
    assert view is not None
    assert view.conflicts == 2


def test_a_peer_handing_over_is_asked_again_soon() -> None:
    a, _ = granted()  # beta claims nothing: it let the group go, its delete is coming
    c = claim(a, 0.1)
    a.answer(KeyClaimed(c.request, False, "beta", 3, 55), 0.11)
    assert a.next_deadline(0.11) == pytest.approx(0.11 + ARBITRATOR_HANDOVER_RETRY_MS / 1000)


def test_our_own_older_key_is_replaced_at_its_revision() -> None:
    a, _ = granted()
    c = claim(a, 0.1)
    (replace,) = a.answer(KeyClaimed(c.request, False, "alpha", 6, 41), 0.11)
    assert replace == ClaimKey(3, G, 0xAB, over=41)


def test_a_newer_incarnation_of_our_name_is_not_ours() -> None:
    a, _ = granted()
    c = claim(a, 0.1)
    assert a.answer(KeyClaimed(c.request, False, "alpha", 9, 41), 0.11) == [KeyConflict(G, "alpha")]


def test_lease_gone_frees_every_key_and_asks_for_a_new_lease() -> None:
    a, _ = granted()
    c = claim(a, 0.1)
    a.answer(KeyClaimed(c.request, True), 0.11)
    (renew,) = a.beat(1.0)
    out = a.answer(LeaseRenewed(renew.request, 0), 1.01)
    assert out == [
        LeaseChange(None, 0, "etcd no longer knows our lease"),
        KeyChange(G, False, "its lease expired"),
        GrantLease(4, 2),
    ]
    assert not a.may_start(G, 1.01)


def test_failed_answers_mark_etcd_unreachable_once() -> None:
    a, _ = granted()
    (r1,) = a.beat(1.0)
    assert a.answer(ArbiterFailed(r1.request, "timed out"), 1.5) == [
        ArbiterReachability(False, "timed out")
    ]
    (r2,) = a.beat(1.5)
    assert a.answer(ArbiterFailed(r2.request, "timed out"), 2.0) == []


def test_stale_answers_are_ignored() -> None:
    a, _ = granted()
    assert a.answer(KeyClaimed(99, True), 1.0) == []
    assert a.answer(KeyReleased(98, True), 1.0) == []


def test_failsafe_needs_a_fresh_confirmation_from_an_arbitrated_peer() -> None:
    a, peers = granted()
    c = claim(a, 0.1)
    a.answer(KeyClaimed(c.request, True), 0.11)
    end = TIMING.hold_s(2)
    assert a.unlicensed([G], end) == frozenset({G})  # lease no longer counts, no word
    # beta acknowledges our status sent at 1.5, received at 1.6
    assert a.confirm("beta", 1.5, True, 1.6) == []
    assert a.unlicensed([G], end) == frozenset()
    view = a.view(end)
    assert view is not None
    assert view.failsafe_groups == 1
    # fresh for two keepalives after it arrived...
    assert a.unlicensed([G], 1.6 + 1.0 - 0.001) == frozenset()
    assert a.unlicensed([G], 1.6 + 1.0) == frozenset({G})
    # ...and never when beta claims the group, is not healthy, or lost us
    peers["beta"].claimed = frozenset({G})
    assert a.unlicensed([G], 1.7) == frozenset({G})
    peers["beta"].claimed = frozenset()
    peers["beta"].healthy = False
    assert a.unlicensed([G], 1.7) == frozenset({G})
    peers["beta"].healthy = True
    a.peer_lost("beta")
    assert a.unlicensed([G], 1.7) == frozenset({G})


def test_an_unarbitrated_peer_is_named_once_and_does_not_cover() -> None:
    a, _ = granted()
    assert a.confirm("beta", 1.5, False, 1.6) == [UnarbitratedPeer("beta")]
    assert a.confirm("beta", 2.0, False, 2.1) == []
    assert a.unlicensed([G], TIMING.hold_s(2) + 0.01) == frozenset({G})


def test_keys_are_released_once_the_group_stopped() -> None:
    a, _ = granted()
    c = claim(a, 0.1)
    a.answer(KeyClaimed(c.request, True), 0.11)
    assert a.follow([Group(G, held=True, busy=True)], 1.0) == []  # still stopping
    (rel,) = a.follow([Group(G)], 1.1)
    assert rel == ReleaseKey(3, G, 0xAB)
    assert a.answer(KeyReleased(rel.request, True), 1.11) == [KeyChange(G, False, "released")]


def test_a_failed_release_is_retried_a_beat_later() -> None:
    a, _ = granted()
    c = claim(a, 0.1)
    a.answer(KeyClaimed(c.request, True), 0.11)
    (rel,) = a.follow([Group(G)], 1.0)
    a.answer(ArbiterFailed(rel.request, "timed out"), 1.5)
    assert a.follow([Group(G)], 1.9) == []
    (again,) = a.follow([Group(G)], 2.0)
    assert isinstance(again, ReleaseKey)


def test_shutdown_revokes_and_is_quiet_once_answered() -> None:
    a, _ = granted()
    (revoke,) = a.leave(5.0)
    assert not a.quiet()
    assert a.beat(5.5) == []
    a.answer(KeyReleased(revoke.request, True), 5.01)
    assert a.quiet()
    assert a.next_deadline(5.01) is None


def test_key_table_refuses_what_it_does_not_list() -> None:
    from hbmon.core.arbtables import KEY_TABLE, KeyInput, KeyState

    with pytest.raises(TransitionError):
        KEY_TABLE.next(KeyState.FREE, KeyInput.WON)
    assert KEY_TABLE.next(KeyState.TAKEN, KeyInput.CLAIM) is KeyState.CLAIMING
