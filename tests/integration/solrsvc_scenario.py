"""Issue 17's scenario, shared by the hbmon pair (test_status_scenario) and the
heartbeat 3.0.6 control (tests/interop/test_status_scenario_heartbeat).

The reference pair with `auto_failback on` and the group
`solr2 IPaddr::<VIP>/24/em1 solrsvc`, where solrsvc is the hand-written script
of the issue: it always exits 0 and says `running` or `stopped`. Lab nodes
share one filesystem, so each node's state file sits next to the script it
runs (`resource.d/../solrsvc.state`, i.e. in that node's ha.d).

The scenario: solrsvc starts with the address on the owner (solr2) at
comm-up; solr2 dies (kill -9 of the cluster daemon, link down, and what dies
with the machine: its service and its address) and solr1 takes both over;
solr2 comes back and, auto_failback on, both go home and solr1 stops its
copy. A thread polls both state files all along: solrsvc must never run on
both nodes.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hbmon.testing.lab import PREFIX_LEN, VIP, Lab, has_address

SOLRSVC = """#!/bin/sh
# issue 17's script; the state file is this node's (lab nodes share a filesystem)
state="${0%/*}/../solrsvc.state"
case "$1" in
start)  touch "$state" ;;
stop)   rm -f "$state" ;;
status) [ -e "$state" ] && echo running || echo stopped ;;
esac
exit 0
"""
OWNER, PEER = "solr2", "solr1"


def solrsvc_lab() -> Lab:
    return Lab(
        directives={"auto_failback": "on"},
        haresources=f"{OWNER} IPaddr::{VIP}/{PREFIX_LEN}/em1 solrsvc\n",
        scripts={"solrsvc": SOLRSVC},
    )


@dataclass
class Placement:
    """Where solrsvc runs (state files) and where the address is, watched from a thread."""

    lab: Lab
    state_files: dict[str, Path]
    both: list[float] = field(default_factory=list)  # monotonic times both ran
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def service(self) -> list[str]:
        return sorted(n for n, f in self.state_files.items() if f.exists())

    def address(self) -> list[str]:
        return sorted(n for n, node in self.lab.nodes.items() if has_address(node.ns, "em1", VIP))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            if len(self.service()) > 1:
                self.both.append(time.monotonic())
            self.polls += 1
            self._stop.wait(0.02)

    def wait(self, where: str, timeout: float, what: str, explain: Callable[[], str]) -> float:
        """Until solrsvc and the address are both on `where` and nowhere else."""
        t0 = time.monotonic()
        while (self.service(), self.address()) != ([where], [where]):
            if time.monotonic() - t0 > timeout:
                raise AssertionError(
                    f"{what}: solrsvc on {self.service()}, address on {self.address()}\n"
                    + explain()
                )
            time.sleep(0.05)
        return time.monotonic() - t0


def machine_died(lab: Lab, placement: Placement, name: str) -> None:
    """What dies with a machine besides its cluster daemon: its service and address.
    (The daemon was killed with -9 and the link is down.)"""
    placement.state_files[name].unlink(missing_ok=True)
    subprocess.run(
        ["ip", "-n", lab.nodes[name].ns, "addr", "del", f"{VIP}/{PREFIX_LEN}", "dev", "em1"],
        capture_output=True,
    )  # fmt: skip


@dataclass(frozen=True)
class Timeline:
    """Seconds from each trigger to solrsvc and the address in place."""

    comm_up: float
    takeover: float
    failback: float


def run_scenario(
    lab: Lab,
    placement: Placement,
    *,
    kill9: Callable[[str], None],
    start: Callable[[str], None],
    explain: Callable[[], str],
    timeout: float,
) -> Timeline:
    """Run the scenario on a started pair; returns how long each step took."""
    placement.start()
    try:
        up = placement.wait(OWNER, timeout, "solrsvc on the owner at comm-up", explain)
        kill9(OWNER)
        lab.link_set(OWNER, "em1", up=False)
        machine_died(lab, placement, OWNER)
        t0 = time.monotonic()
        placement.wait(PEER, timeout, "solrsvc on the peer at takeover", explain)
        takeover = time.monotonic() - t0
        lab.link_set(OWNER, "em1", up=True)
        t0 = time.monotonic()
        start(OWNER)
        placement.wait(OWNER, timeout, "solrsvc back on the owner at failback", explain)
        failback = time.monotonic() - t0
    finally:
        placement.stop()
    assert placement.polls > 100, placement.polls  # the watcher really watched
    assert placement.both == [], f"solrsvc ran on both nodes {len(placement.both)} times"
    return Timeline(up, takeover, failback)
