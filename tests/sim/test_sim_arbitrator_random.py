"""Random faults against the arbitrated pair: no group ever runs on two machines.

Hypothesis draws a sequence of faults (cuts between the nodes, a node cut from
etcd, etcd down, crashes and restarts) at random instants over 40 s; then
everything heals. Safety is checked at every start the simulated executor
carries out (not by sampling): the group then runs on one machine only.
Liveness after the heal: every group runs on exactly one machine.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simetcd import ArbSim, arbpair
from simnet import World
from simowners import VIP_A, VIP_B, A, B

from hbmon.core.events import Event, GroupDone, GroupOp, ProbeGroup, StartGroup, StopGroup

ACTIONS = (
    "partition",
    "heal",
    "cut_etcd_a",
    "cut_etcd_b",
    "uncut_etcd_a",
    "uncut_etcd_b",
    "etcd_down",
    "etcd_up",
    "crash_a",
    "crash_b",
    "restart_a",
    "restart_b",
)


class CheckedWorld(World):
    """The executor, recording every moment a group ran on two machines."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[tuple[str, set[str]]] = []

    def answer(self, node: str, effect: StartGroup | StopGroup | ProbeGroup) -> Event:
        ev = super().answer(node, effect)
        if isinstance(ev, GroupDone) and ev.op is GroupOp.START and len(self.on(ev.key)) > 1:
            self.violations.append((ev.key, set(self.on(ev.key))))
        return ev


def apply(sim: ArbSim, action: str, generations: dict[str, int]) -> None:
    name = A if action.endswith("_a") else B
    match action:
        case "partition":  # every frame between them, the address probes' too (as the lab's cut)
            sim.partition(A, B)
            sim.world.service_cut.add(frozenset((A, B)))
        case "heal":
            sim.heal()
            sim.world.service_cut.clear()
        case "cut_etcd_a" | "cut_etcd_b":
            sim.cut_etcd.add(name)
        case "uncut_etcd_a" | "uncut_etcd_b":
            sim.cut_etcd.discard(name)
        case "etcd_down":
            sim.etcd.down = True
        case "etcd_up":
            sim.etcd.down = False
        case "crash_a" | "crash_b":
            if name in sim.nodes:
                sim.crash(name)
        case "restart_a" | "restart_b":
            if name not in sim.nodes:
                generations[name] += 1
                sim.start(name, generation=generations[name])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.floats(0.0, 40.0, allow_nan=False), st.sampled_from(ACTIONS)),
        min_size=1,
        max_size=8,
    )
)
def test_never_two_owners_and_one_owner_after_the_heal(faults: list[tuple[float, str]]) -> None:
    sim = arbpair()
    world = CheckedWorld()
    sim.world = world
    generations = {A: 100, B: 100}
    sim.start(A)
    sim.start(B)
    sim.run_until(8.0)
    for at, action in sorted(faults):
        sim.run_until(8.0 + at)
        apply(sim, action, generations)
    sim.run_until(50.0)
    assert world.violations == []
    # heal everything, bring crashed nodes back
    sim.heal()
    sim.world.service_cut.clear()
    sim.cut_etcd.clear()
    sim.etcd.down = False
    for name in (A, B):
        if name not in sim.nodes:
            generations[name] += 1
            sim.start(name, generation=generations[name])
    sim.run_until(90.0)
    assert world.violations == []
    for key in (VIP_A, VIP_B):
        assert len(sim.world.on(key)) == 1, (key, sim.world.on(key), faults)
