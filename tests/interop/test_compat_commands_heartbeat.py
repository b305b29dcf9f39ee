"""The control for compat/: heartbeat 3.0.6's own cl_status, hb_standby and
hb_takeover on a heartbeat pair in the same lab state as
tests/integration/test_compat_commands's hbmon pair give the answers that test
holds hbmon to (tests/data/heartbeat-3.0.6/cl_status-lab-pair.json, the usage
refusals, the placement after each move)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compat_helpers import (
    CL_STATUS_EXAMPLES,
    HEARTBEAT_PATHS,
    MOVE_USAGE_EXAMPLES,
    MOVES,
    move_usage,
    normalise,
)
from hblab import Heartbeat, keep_logs, require_heartbeat, wait

from hbmon.testing.lab import VIP, Lab, has_address

pytestmark = pytest.mark.netns

CAPTURE = (
    Path(__file__).resolve().parents[1] / "data" / "heartbeat-3.0.6" / "cl_status-lab-pair.json"
)


@pytest.fixture(scope="module")
def heartbeats() -> Iterator[dict[str, Heartbeat]]:
    require_heartbeat()
    lab = Lab().up()
    hbs = {name: Heartbeat(lab, name) for name in lab.nodes}
    try:
        for hb in hbs.values():
            hb.start()
        yield hbs
    finally:
        for hb in hbs.values():
            if hb.running():
                hb.kill9()
        keep_logs(lab, "compat-commands")
        lab.down()


def run(hb: Heartbeat, tool: str, *args: str) -> tuple[int, str, str]:
    prog = HEARTBEAT_PATHS[tool]
    res = hb.exec("cl_status" if tool == "cl_status" else prog, *args)
    return res.returncode, normalise(res.stdout, tool, prog), normalise(res.stderr, tool, prog)


def holders(lab: Lab) -> list[str]:
    return [n for n, node in lab.nodes.items() if has_address(node.ns, "em1", VIP)]


def settled(hbs: dict[str, Heartbeat]) -> bool:
    states = [run(hb, "cl_status", "rscstatus") for hb in hbs.values()]
    return all(rc == 0 and out.strip() != "transition" for rc, out, _ in states)


def test_heartbeats_cl_status_answers_are_the_recorded_ones(
    heartbeats: dict[str, Heartbeat],
) -> None:
    lab = heartbeats["solr1"].lab
    wait(lambda: holders(lab) == ["solr2"], 60, "the group on solr2")
    wait(
        lambda: all(heartbeats[a].nodestatus(b) == "active" for a in lab.nodes for b in lab.nodes),
        30,
        "both active everywhere",
    )
    wait(lambda: settled(heartbeats), 30, "settled")
    want: dict[str, dict[str, list[Any]]] = json.loads(CAPTURE.read_text())
    wrong = []
    for node, hb in heartbeats.items():
        for example in CL_STATUS_EXAMPLES:
            cmd = " ".join(("cl_status", *example))
            got = list(run(hb, "cl_status", *example))
            if got != want[node][cmd]:
                wrong.append(f"{node}: {cmd}\n  live:     {got}\n  recorded: {want[node][cmd]}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("tool", ["hb_standby", "hb_takeover"])
def test_heartbeats_scripts_refuse_bad_arguments_so(
    heartbeats: dict[str, Heartbeat], tool: str
) -> None:
    for args in MOVE_USAGE_EXAMPLES:
        assert run(heartbeats["solr1"], tool, *args) == move_usage(tool, args), args


def test_heartbeat_moves_the_group_as_hbmon_does(heartbeats: dict[str, Heartbeat]) -> None:
    lab = heartbeats["solr1"].lab
    wait(lambda: holders(lab) == ["solr2"], 60, "the group on solr2")
    for node, tool, args, where in MOVES:
        wait(lambda: settled(heartbeats), 30, "settled")
        t0 = time.monotonic()
        rc, out, err = run(heartbeats[node], tool, *args)
        assert (rc, out) == (0, ""), (node, tool, args, err)
        assert time.monotonic() - t0 < 3
        if tool == "hb_standby":
            scope = {"": "all", "failback": "foreign"}.get(" ".join(args), " ".join(args))
            assert err == f"<date> Going standby [{scope}].\n"
        wait(lambda w=where: holders(lab) == [w], 30, f"{tool} {args} on {node}: {holders(lab)}")
