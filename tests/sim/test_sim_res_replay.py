"""Interrupted exchanges converge (the Patroni `test_quorum.py` idea, over the sim).

A standby (and a takeover) is run once undisturbed to learn every instant at
which either node did something. Then, for each of those instants, the same
run is cut there — the requester or the responder crashes, or the link drops
for a while and heals — and must still end with every group held by exactly
one live node, on both nodes' word and on the machines, and with exactly one
reply to the request if its node lived.
"""

from __future__ import annotations

import pytest
from simnet import Sim
from simowners import VIP_A, VIP_B, A, B, rpair

from hbmon.config.model import AutoFailback
from hbmon.core.events import ControlOp, ControlReply, Scope

T0 = 10.0
KEYS = (VIP_A, VIP_B)


def begin(op: ControlOp, mode: AutoFailback = AutoFailback.OFF) -> tuple[Sim, int]:
    sim = rpair(auto_failback=mode)
    sim.start(A)
    sim.start(B)
    sim.run_until(T0)
    return sim, sim.request(A, op, Scope.ALL)


def instants(op: ControlOp) -> list[float]:
    sim, _ = begin(op)
    sim.run_until(T0 + 3)
    return sorted({t for t, _, _ in sim.log if T0 <= t <= T0 + 3})


def converged(sim: Sim, rid: int) -> None:
    live = set(sim.nodes)
    for key in KEYS:
        holders = sim.holders(key)
        assert len(holders) == 1, (key, holders)
        assert holders <= live
        assert sim.world.on(key) & live == holders, (key, sim.world.on(key))
    replies = [e for _, n, e in sim.log if isinstance(e, ControlReply) and e.request_id == rid]
    assert len(replies) == (1 if A in live else len(replies)), replies
    assert len(replies) <= 1


CASES = [
    (mode, op, cut, at)
    for mode in (AutoFailback.OFF, AutoFailback.ON)
    for op in (ControlOp.STANDBY, ControlOp.TAKEOVER)
    for at in instants(op)
    for cut in ("crash requester", "crash responder", "cut link")
]


@pytest.mark.parametrize(("mode", "op", "cut", "at"), CASES)
def test_an_exchange_cut_anywhere_converges(
    mode: AutoFailback, op: ControlOp, cut: str, at: float
) -> None:
    sim, rid = begin(op, mode)
    sim.run_until(at)
    match cut:
        case "crash requester":
            sim.crash(A)
        case "crash responder":
            sim.crash(B)
        case _:
            sim.partition(A, B)
            sim.world.service_cut.add(frozenset((A, B)))
            sim.run_until(at + 15)  # past deadtime: both take over
            sim.heal()
            sim.world.service_cut.clear()
    sim.run_until(at + 60)
    converged(sim, rid)
