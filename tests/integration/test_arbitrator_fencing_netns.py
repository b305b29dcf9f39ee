"""The arbitrator and fencing together: real agents, a real etcd (3 members, TLS) and
cluster-glue's real `stonith` with the lab's power switch (hbmon/testing/fence.py).

With both, a dead node's groups are acquired at once (their keys claimed), the
node is reset once etcd gave us one of those keys, and the groups start after
the reset (docs/fencing.md, "With an arbitrator"). keepalive 0.5 s, deadtime
3 s, lease TTL 2 s; solr2 holds the VIP. Bounds are generous (a busy 2-core
machine); the fake-clock sims (tests/sim/test_sim_arbitrator_fencing.py) pin the
order exactly.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns_helpers import Pair, explain, has_address, require_netns, wait_until

from hbmon.testing import fence as labfence
from hbmon.testing.lab import VIP, Lab, LabTimers
from hbmon.testing.labetcd import ARB_TIMERS, ArbLab

pytestmark = [pytest.mark.netns, pytest.mark.slow]
GROUP = f"IPaddr::{VIP}/24/em1"
DEADTIME = 3.0


@dataclass
class Both:
    lab: Lab
    arb: ArbLab
    labdir: Path
    pair: Pair

    def holders(self) -> set[str]:
        return {n for n, node in self.lab.nodes.items() if has_address(node.ns, "em1", VIP)}

    def messages(self, name: str) -> list[str]:
        return [str(r.get("message", "")) for r in self.pair.log_records(name)]

    def pending(self) -> float | None:
        m = self.pair.try_metrics("solr1")
        return None if m is None else m.get("hbmon_fence_pending", node="solr2")

    def settle(self) -> None:
        wait_until(lambda: self.holders() == {"solr2"}, 40, "the VIP on solr2 alone")
        wait_until(lambda: self.arb.holder(GROUP) == "solr2", 10, "solr2's key in etcd")
        for name, peer in (("solr1", "solr2"), ("solr2", "solr1")):
            wait_until(lambda n=name, p=peer: self.dead_interval(n, p) == DEADTIME, 20,
                       f"{name} judging {peer} by plain deadtime")  # fmt: skip

    def dead_interval(self, name: str, peer: str) -> float | None:
        m = self.pair.try_metrics(name)
        return None if m is None else m.get("hbmon_peer_dead_interval_seconds", node=peer)


@pytest.fixture
def both() -> Iterator[Both]:
    require_netns()
    with labfence.installed_plugin() as kind:
        lab = Lab(timers=LabTimers(**ARB_TIMERS)).up()
        try:
            arb = ArbLab(lab).up()
            try:
                labdir = labfence.fence_lab(lab, kind)
                pair = Pair(lab)
                try:
                    yield Both(lab, arb, labdir, pair)
                finally:
                    pair.stop()
            finally:
                arb.down()
        finally:
            lab.down()


def watch(b: Both, seconds: float, step: float = 0.02) -> list[set[str]]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(b.holders())
        time.sleep(step)
    return out


def test_a_cut_between_nodes_that_both_reach_etcd_shoots_nobody(both: Both) -> None:
    """Fencing alone: solr1 would shoot solr2 and take the VIP. With the arbitrator
    solr1 never gets solr2's key, so it never resets solr2: nothing moves."""
    both.settle()
    both.lab.cut_between_nodes(True)
    try:
        samples = watch(both, 15)
        waiting = both.pending()
    finally:
        both.lab.cut_between_nodes(False)
    assert all(h == {"solr2"} for h in samples), explain(both.pair)
    assert labfence.calls(both.labdir) == []
    assert waiting == 1  # solr1's reset of solr2 waited for a key that never came
    said = both.messages("solr1")
    assert "Resetting node solr2 once the arbitrator gives us a group it may hold." in said
    wait_until(lambda: both.pending() == 0, 10, "the reset given up once solr2 is heard")
    assert both.arb.holder(GROUP) == "solr2"
    assert both.holders() == {"solr2"}
    assert both.pair.procs["solr2"].poll() is None  # alive: never shot


def test_a_hung_owner_loses_its_key_then_is_reset_then_its_vip_taken(both: Both) -> None:
    both.settle()
    agent = both.pair.procs["solr2"]
    t0 = time.monotonic()
    os.kill(agent.pid, signal.SIGSTOP)  # hung: its kernel keeps the VIP up
    samples: list[set[str]] = []

    def taken() -> bool:
        samples.append(both.holders())
        return samples[-1] == {"solr1"}

    wait_until(taken, DEADTIME + 10, "the VIP on solr1 alone")
    took = time.monotonic() - t0
    print(f"hung owner, arbitrator and fencing: failover {took * 1000:.0f} ms")
    assert max(len(h) for h in samples) == 1, explain(both.pair)  # never on both
    (call,) = labfence.calls(both.labdir)
    assert (call.action, call.node, call.rc, call.by) == (
        "reset",
        "solr2",
        0,
        both.lab.nodes["solr1"].ns,
    )
    text = both.messages("solr1")

    def first(prefix: str) -> int:
        return next(i for i, m in enumerate(text) if m.startswith(prefix))

    won = first(f"Resource group {GROUP}: key in etcd is ours")
    plug = first("Resetting node solr2 with [")
    reset = text.index("node solr2 now reset.")
    start = first(f"Taking over resource group {GROUP}")
    assert won < plug < reset < start  # the key, the reset, the start
    assert both.arb.holder(GROUP) == "solr1"
    assert took <= DEADTIME + 5.0, explain(both.pair)
    assert agent.wait(timeout=5) == -signal.SIGKILL  # powered off by the switch
