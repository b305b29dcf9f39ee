"""respawn in a running agent: an hbmon pair whose ha.cf has `respawn nobody SCRIPT`,
heartbeat's ipfail line and an `env` line.

The client starts after comm-up as nobody with HA_GREETING, its output is in the
agent's log, ipfail is logged as not run, and a graceful stop of the agent stops
the client (and what it started) after the resources are released.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_helpers import Pair, require_netns, wait_until

from hbmon.testing.lab import Lab

pytestmark = pytest.mark.netns

CLIENT = """\
#!/bin/sh
echo "$(id -un) $HA_GREETING" > {root}/client.out
sleep 600 &
echo $! $$ > {root}/client.pids
echo "client up as $(id -un)"
wait
"""


@pytest.fixture(scope="module")
def respawn_pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab(
        extra_lines=(
            "respawn nobody {root}/client.sh --verbose",
            "respawn hacluster /usr/lib/heartbeat/ipfail",
            "env GREETING=hello-from-ha.cf",
        )
    )
    lab.root.chmod(0o777)  # nobody writes its files there
    (lab.root / "client.sh").write_text(CLIENT.format(root=lab.root))
    (lab.root / "client.sh").chmod(0o755)
    lab.up()
    pair = Pair(lab)
    try:
        yield pair
    finally:
        pair.stop()
        lab.down()


def messages(pair: Pair, name: str) -> list[str]:
    return [str(r.get("message", "")) for r in pair.log_records(name)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def test_the_client_starts_after_comm_up_as_nobody_with_ha_env(respawn_pair: Pair) -> None:
    pair = respawn_pair
    out = pair.lab.root / "client.out"
    wait_until(out.exists, timeout=20, what="the respawn client ran")
    assert out.read_text().split() == ["nobody", "hello-from-ha.cf"]
    for name in pair.lab.nodes:
        wait_until(
            lambda n=name: any(m.endswith("client up as nobody") for m in messages(pair, n)),
            timeout=10,
            what=f"{name}: the client's output in the agent's log",
        )
        log = messages(pair, name)
        comm_up = log.index("Comm_now_up(): updating status to active")
        started = next(i for i, m in enumerate(log) if m.startswith('Starting child client "'))
        assert comm_up < started
        assert any('Not starting child client "/usr/lib/heartbeat/ipfail"' in m for m in log)


def test_a_graceful_stop_stops_the_client_and_its_children(respawn_pair: Pair) -> None:
    pair = respawn_pair
    pids_file = pair.lab.root / "client.pids"
    wait_until(pids_file.exists, timeout=20, what="client pids")
    # Both agents run the same client (one folder here): the last writer's pids.
    wait_until(lambda: len(pids_file.read_text().split()) == 2, timeout=5, what="two pids")
    pids = [int(p) for p in pids_file.read_text().split()]
    assert all(alive(p) for p in pids)
    owner = next(
        name
        for name in pair.lab.nodes
        if any(m.startswith(f'Starting "{pair.lab.root}/client.sh') and f"(pid {pids[1]})" in m
               for m in messages(pair, name))
    )  # fmt: skip
    proc = pair.procs[owner]
    proc.terminate()
    proc.wait(30)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)
    log = messages(pair, owner)
    # After the resources are released (shutdone sent, shutdown complete), as heartbeat.
    released = max(i for i, m in enumerate(log) if m.endswith("Heartbeat shutdown complete."))
    killed = next(i for i, m in enumerate(log) if m.startswith("killing "))
    assert released < killed
