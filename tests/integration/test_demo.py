"""`hbmon demo`, as the README runs it: the scenario plays out and nothing is left behind."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from netns_helpers import require_netns

pytestmark = pytest.mark.netns


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_demo_runs_its_scenario_and_cleans_up() -> None:
    require_netns()
    res = subprocess.run(
        [sys.executable, "-m", "hbmon", "demo", "--duration", "44"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "Traceback" not in res.stderr
    assert "SIGSTOP solr1" in out
    assert "Late heartbeat: Node solr1" in out  # the late beat shows in the agents' logs
    assert "crash the VIP owner" in out
    tail = out[-3000:]
    assert "the VIP answers from " in out, tail  # the takeover, timed from the crash
    assert "last takeover: peer_dead from " in out, tail
    assert "ip netns exec" in out
    assert "/metrics" in out
    assert out.rstrip().endswith("hbmon demo: namespaces and agents removed.")
    made = set(re.findall(r"ip netns exec (\S+) curl", out))
    assert len(made) == 2, made
    assert made & namespaces() == set(), "the demo left namespaces behind"
