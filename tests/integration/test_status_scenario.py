"""Issue 17 on an hbmon pair: a hand-written script that says `stopped` with exit 0
is started wherever the address goes, and never runs on both nodes
(solrsvc_scenario; heartbeat's run of the same scenario is the interop control)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from netns_helpers import Pair, explain, require_netns
from solrsvc_scenario import OWNER, PEER, Placement, run_scenario, solrsvc_lab

pytestmark = pytest.mark.netns


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_netns()
    lab = solrsvc_lab().up()
    p = Pair(lab)
    try:
        yield p
    finally:
        p.stop()
        lab.down()


def messages(pair: Pair, name: str) -> list[str]:
    return [str(r.get("message", "")) for r in pair.log_records(name)]


def test_solrsvc_follows_the_address_and_never_runs_twice(pair: Pair) -> None:
    lab = pair.lab
    placement = Placement(
        lab, {n: node.config_dir / "solrsvc.state" for n, node in lab.nodes.items()}
    )

    def kill9(name: str) -> None:
        pair.procs[name].send_signal(signal.SIGKILL)
        pair.procs[name].wait()

    def start(name: str) -> None:
        pair.procs[name] = lab.start_agent(name)

    took = run_scenario(
        lab, placement, kill9=kill9, start=start, explain=lambda: explain(pair), timeout=60
    )
    print(f"solrsvc placed: {took}")
    for name in lab.nodes:
        logs = messages(pair, name)
        # Idle at start: the script's `stopped` (exit 0) is not taken for running.
        assert not [m for m in logs if "should not be" in m], name
        assert not [m for m in logs if "is active here" in m], name
        # Exit 0 with `stopped` disagrees: named once per agent process, counted.
        warned = [m for m in logs if "status exit code and words disagree" in m]
        assert warned, name
        assert "exit 0 reads running (LSB), [stopped] reads stopped (heartbeat)" in warned[0]
    assert len([m for m in messages(pair, PEER) if "disagree" in m]) == 1  # one process
    started = [m for m in messages(pair, PEER) if m.startswith("Running") and "solrsvc" in m]
    assert [m.split()[-1] for m in started] == ["start", "stop"], started
    m = pair.metrics(OWNER)
    assert (m.get("hbmon_resource_status_disagreements_total", resource="solrsvc") or 0) >= 1
