"""The arbitrator with real agents and a real etcd (3 members, TLS) in the lab.

keepalive 0.5 s, deadtime 3 s, lease TTL 2 s (the default from deadtime). solr2
prefers the VIP. Each scenario asserts generous bounds on one or two runs; the
ten-run numbers come from bench/arbitrator.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from netns_helpers import Pair, explain, has_address, require_netns, wait_until

from hbmon.testing.lab import VIP, Lab, LabTimers, iface_mac
from hbmon.testing.labetcd import ARB_TIMERS, ArbLab, drop_from

pytestmark = [pytest.mark.netns, pytest.mark.slow]
GROUP = f"IPaddr::{VIP}/24/em1"
DEADTIME = 3.0


class Arb:
    def __init__(self) -> None:
        self.lab = Lab(timers=LabTimers(**ARB_TIMERS)).up()
        try:
            self.arb = ArbLab(self.lab).up()
        except BaseException:
            self.lab.down()
            raise
        self.pair = Pair(self.lab)

    def holders(self) -> set[str]:
        return {n for n, node in self.lab.nodes.items() if has_address(node.ns, "em1", VIP)}

    def settle(self) -> None:
        wait_until(lambda: self.holders() == {"solr2"}, 40, "the VIP on solr2 alone")
        wait_until(lambda: self.arb.holder(GROUP) == "solr2", 10, "solr2's key in etcd")
        # Past heartbeat's startup period, when each advertises deadtime + 2 s.
        for name, peer in (("solr1", "solr2"), ("solr2", "solr1")):
            wait_until(
                lambda n=name, p=peer: self.peer_dt(n, p) == DEADTIME, 20, f"{name} judging {peer}"
            )

    def peer_dt(self, name: str, peer: str) -> float | None:
        m = self.pair.try_metrics(name)
        return None if m is None else m.get("hbmon_peer_dead_interval_seconds", node=peer)

    def metric(self, name: str, metric: str) -> float | None:
        m = self.pair.try_metrics(name)
        return None if m is None else m.get(metric)

    def down(self) -> None:
        self.pair.stop()
        self.arb.down()
        self.lab.down()


@pytest.fixture
def arb() -> Iterator[Arb]:
    require_netns()
    a = Arb()
    try:
        yield a
    finally:
        a.down()


def watch(a: Arb, seconds: float, step: float = 0.02) -> list[tuple[float, set[str]]]:
    """Who holds the VIP, sampled every `step` for `seconds`."""
    out = []
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        out.append((now, a.holders()))
        time.sleep(step)
    return out


def test_cut_between_the_nodes_moves_nothing(arb: Arb) -> None:
    arb.settle()
    arb.lab.cut_between_nodes(True)
    try:
        samples = watch(arb, 15)
    finally:
        arb.lab.cut_between_nodes(False)
    assert all(h == {"solr2"} for _, h in samples), explain(arb.pair)
    assert arb.arb.holder(GROUP) == "solr2"
    conflicts = arb.metric("solr1", "hbmon_arbitrator_cas_conflicts_total")
    assert conflicts is not None
    assert conflicts >= 1  # solr1 tried and found solr2's key


def test_owner_crash_fails_over_within_deadtime(arb: Arb) -> None:
    arb.settle()
    owner = arb.pair.procs["solr2"]
    crash = time.monotonic()
    owner.kill()
    arb.lab.link_set("solr2", "em1", False)
    wait_until(lambda: "solr1" in arb.holders(), DEADTIME + 5, "solr1 takes the VIP")
    took = time.monotonic() - crash
    assert took <= DEADTIME + 1.0, explain(arb.pair)  # generous here; the bench reports it
    wait_until(lambda: arb.arb.holder(GROUP) == "solr1", 5, "solr1's key in etcd")


def test_one_member_down_moves_nothing_and_renewals_go_on(arb: Arb) -> None:
    arb.settle()
    assert arb.arb.etcd is not None
    arb.arb.etcd.kill_member("etcd1")
    samples = watch(arb, 8)
    assert all(h == {"solr2"} for _, h in samples), explain(arb.pair)
    before = arb.metric("solr2", "hbmon_arbitrator_lease_renewal_seconds_count") or 0
    wait_until(
        lambda: (
            (arb.metric("solr2", "hbmon_arbitrator_lease_renewal_seconds_count") or 0) > before + 2
        ),
        10,
        "renewals through the other members",
    )
    assert arb.metric("solr2", "hbmon_arbitrator_up") == 1


def test_all_members_down_while_the_nodes_hear_each_other_moves_nothing(arb: Arb) -> None:
    arb.settle()
    assert arb.arb.etcd is not None
    arb.arb.etcd.stop()
    samples = watch(arb, 10)
    assert all(h == {"solr2"} for _, h in samples), explain(arb.pair)
    assert arb.metric("solr2", "hbmon_arbitrator_up") == 0
    assert arb.metric("solr2", "hbmon_arbitrator_failsafe_groups") == 1


def test_owner_cut_from_peer_and_etcd_releases_before_the_peer_takes_it(arb: Arb) -> None:
    arb.settle()
    s1, s2 = arb.lab.nodes["solr1"].ns, arb.lab.nodes["solr2"].ns
    cut_from = [iface_mac(s1, "em1"), *arb.arb.member_macs()]
    drop_from(s2, cut_from)  # solr2 hears neither solr1 nor etcd
    drop_from(s1, [iface_mac(s2, "em1")])  # and solr1 no longer hears solr2
    try:
        samples = watch(arb, 8, step=0.01)
    finally:
        drop_from(s1, [])
        drop_from(s2, [])
    assert max(len(h) for _, h in samples) <= 1, explain(arb.pair)
    assert samples[-1][1] == {"solr1"}, explain(arb.pair)


def test_a_member_cut_off_silently_moves_nothing(arb: Arb) -> None:
    """The nodes stop hearing one member (its frames dropped, no refusal): the client
    gives up on it within a request and renews through the others."""
    arb.settle()
    assert arb.arb.etcd is not None
    member = arb.arb.etcd.members[0]
    assert member.ns is not None
    mac = iface_mac(member.ns, "em1")
    for node in arb.lab.nodes.values():
        drop_from(node.ns, [mac])
    try:
        before = arb.metric("solr2", "hbmon_arbitrator_lease_renewal_seconds_count") or 0
        samples = watch(arb, 8)
        after = arb.metric("solr2", "hbmon_arbitrator_lease_renewal_seconds_count") or 0
    finally:
        for node in arb.lab.nodes.values():
            drop_from(node.ns, [])
    assert all(h == {"solr2"} for _, h in samples), explain(arb.pair)
    assert after - before >= 8 / 0.5 - 4  # about one renewal a keepalive went on
    assert arb.metric("solr2", "hbmon_arbitrator_failsafe_groups") == 0
