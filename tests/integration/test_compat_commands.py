"""heartbeat's commands under heartbeat's names (compat/) against an hbmon pair.

Every usage example of cl_status (its help text and man page, plus the mistakes
scripts make) answers on both nodes exactly as heartbeat 3.0.6's cl_status
answered in the same state (tests/data/heartbeat-3.0.6/cl_status-lab-pair.json;
tests/interop/test_compat_commands_heartbeat checks that file against heartbeat
live). hb_standby and hb_takeover refuse bad arguments with heartbeat's words,
and each of their usage examples returns at once and moves the group where
heartbeat moves it.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compat_helpers import (
    CL_STATUS_EXAMPLES,
    MOVE_USAGE_EXAMPLES,
    MOVES,
    compat_socket,
    move_usage,
    run_compat,
)
from netns_helpers import Pair, explain, require_netns, wait_until

from hbmon.testing.lab import VIP, Lab, has_address

pytestmark = pytest.mark.netns

CAPTURE = (
    Path(__file__).resolve().parents[1] / "data" / "heartbeat-3.0.6" / "cl_status-lab-pair.json"
)


def heartbeat_answers() -> dict[str, dict[str, list[Any]]]:
    data: dict[str, dict[str, list[Any]]] = json.loads(CAPTURE.read_text())
    return data


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab().up()
    p = Pair(lab)
    try:
        yield p
    finally:
        p.stop()
        lab.down()


def holders(lab: Lab) -> list[str]:
    return [n for n, node in lab.nodes.items() if has_address(node.ns, "em1", VIP)]


def settled(lab: Lab) -> bool:
    """Both agents answer and neither is in a resource transition."""
    states = [run_compat(lab, n, "cl_status", "rscstatus") for n in lab.nodes]
    return all(rc == 0 and out.strip() != "transition" for rc, out, _ in states)


def test_cl_status_examples_answer_as_heartbeat(pair: Pair) -> None:
    lab = pair.lab
    wait_until(lambda: holders(lab) == ["solr2"], 30, "the group on solr2")
    wait_until(lambda: settled(lab), 30, "both agents settled")
    want = heartbeat_answers()
    wrong = []
    for node in lab.nodes:
        for example in CL_STATUS_EXAMPLES:
            cmd = " ".join(("cl_status", *example))
            got = list(run_compat(lab, node, "cl_status", *example))
            if got != want[node][cmd]:
                wrong.append(f"{node}: {cmd}\n  hbmon:     {got}\n  heartbeat: {want[node][cmd]}")
    assert wrong == [], "\n".join(wrong)
    assert sum(len(v) for v in want.values()) == 2 * len(CL_STATUS_EXAMPLES)


@pytest.mark.parametrize("tool", ["hb_standby", "hb_takeover"])
def test_bad_arguments_are_refused_with_heartbeats_words(pair: Pair, tool: str) -> None:
    for args in MOVE_USAGE_EXAMPLES:
        assert run_compat(pair.lab, "solr1", tool, *args) == move_usage(tool, args), args
    assert holders(pair.lab) == ["solr2"]  # nothing was requested


def test_standby_and_takeover_examples_move_the_group_and_return_at_once(pair: Pair) -> None:
    lab = pair.lab
    for node, tool, args, where in MOVES:
        wait_until(lambda: settled(lab), 30, "both agents settled")
        t0 = time.monotonic()
        rc, out, err = run_compat(lab, node, tool, *args)
        took = time.monotonic() - t0
        assert (rc, out) == (0, ""), (node, tool, args, err)
        if tool == "hb_standby":
            scope = {"": "all", "failback": "foreign"}.get(" ".join(args), " ".join(args))
            assert err == f"<date> Going standby [{scope}].\n"
        else:
            assert err == ""
        # heartbeat's scripts return at once; the group moves afterwards
        assert took < 3, took
        try:
            wait_until(lambda w=where: holders(lab) == [w], 20, f"{tool} {args} on {node}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{explain(pair)}") from None


def test_an_agent_that_is_not_running(pair: Pair) -> None:
    lab = pair.lab
    proc = pair.procs["solr1"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    sock = compat_socket(lab, "solr1")
    assert run_compat(lab, "solr1", "cl_status", "hbstatus") == (
        1,
        "Heartbeat is stopped on this machine.\n",
        "",
    )
    reason = f"hbmon is not running (no control socket at {sock})"
    assert run_compat(lab, "solr1", "cl_status", "nodestatus", "solr2") == (
        1,
        "",
        "<date> <host> cl_status: [<pid>]: ERROR: Cannot signon with heartbeat\n"
        f"<date> <host> cl_status: [<pid>]: ERROR: REASON: {reason}\n",
    )
    # heartbeat's hb_standby would block on its FIFO here; this one says so and exits 1.
    rc, out, err = run_compat(lab, "solr1", "hb_standby")
    assert (rc, out) == (1, "")
    assert err == (
        "<date> Going standby [all].\n"
        f"/usr/share/heartbeat/hb_standby: {reason}: standby [all] not requested\n"
    )
    rc, out, err = run_compat(lab, "solr1", "hb_takeover", "local")
    assert (rc, out) == (1, "")
    assert err == f"/usr/share/heartbeat/hb_takeover: {reason}: takeover [local] not requested\n"
    pair.procs["solr1"] = lab.start_agent("solr1")
    wait_until(lambda: run_compat(lab, "solr1", "cl_status", "hbstatus")[0] == 0, 30, "back")
