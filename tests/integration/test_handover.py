"""A restart without a failover between two real agents in namespaces (no systemd:
`kill -QUIT`, then a new `hbmon run`, as a foreground or pip install would do it).

Timers (hbmon/testing/lab.py): keepalive 200 ms, deadtime 2 s, initdead 4 s;
handover window 30 s (the default). solr2 holds the VIP.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time

import pytest
from netns_helpers import Pair, explain, has_address, wait_until

from hbmon.config.model import HANDOVER_WINDOW_MS
from hbmon.io.handover_file import RECORD_NAME
from hbmon.testing.lab import VIP

pytestmark = pytest.mark.netns

HOLDER, PEER = "solr2", "solr1"


def lifetime(pair: Pair, name: str) -> str:
    """The VIP's `valid_lft` on `name`'s em1 ("forever", "29sec"), "" if absent."""
    out = subprocess.run(
        ["ip", "-n", pair.lab.nodes[name].ns, "-o", "addr", "show", "dev", "em1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        if f" {VIP}/" in line:
            m = re.search(r"valid_lft (\S+)", line)
            return m.group(1) if m else ""
    return ""


def messages(pair: Pair, name: str) -> list[str]:
    return [str(r.get("message", "")) for r in pair.log_records(name)]


class Watch:
    """Polls who has the VIP while a handover runs: any gap or second holder shows."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.missing = 0
        self.both = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        nodes = self.pair.lab.nodes
        while not self._stop.is_set():
            holder = has_address(nodes[HOLDER].ns, "em1", VIP)
            peer = has_address(nodes[PEER].ns, "em1", VIP)
            self.polls += 1
            self.missing += not holder
            self.both += holder and peer
            time.sleep(0.01)


def test_sigquit_and_a_new_agent_keep_the_vip_where_it_is(pair: Pair) -> None:
    wait_until(lambda: has_address(pair.lab.nodes[HOLDER].ns, "em1", VIP), 15,
               "solr2 holding the VIP")  # fmt: skip
    wait_until(lambda: (pair.try_metrics(PEER) or None) is not None, 5, "solr1's metrics")
    run_dir = pair.lab.nodes[HOLDER].run_dir
    with Watch(pair) as watch:
        old = pair.procs[HOLDER]
        old.send_signal(signal.SIGQUIT)
        assert old.wait(timeout=10) == 0, explain(pair)
        # Left up for the next process, set to expire after the window.
        assert lifetime(pair, HOLDER) in {f"{HANDOVER_WINDOW_MS // 1000 - i}sec" for i in range(3)}
        assert (run_dir / RECORD_NAME).exists()
        pair.procs[HOLDER] = pair.lab.start_agent(HOLDER)
        wait_until(
            lambda: (
                (pair.try_metrics(HOLDER) or None) is not None
                and pair.metrics(HOLDER).get("hbmon_handover_resumed_groups") == 1
            ),
            15,
            "the new agent resuming the group",
        )
        wait_until(lambda: lifetime(pair, HOLDER) == "forever", 5, "the address kept")
        time.sleep(1.0)  # any late move shows
    assert watch.polls > 50
    assert (watch.missing, watch.both) == (0, 0), explain(pair)
    assert not (run_dir / RECORD_NAME).exists()
    own, peer = messages(pair, HOLDER), messages(pair, PEER)
    assert f"restart: resource group IPaddr::{VIP}/24/em1 kept running" in own
    assert not [m for m in own if "should not be" in m]
    assert f"Node {HOLDER} restarted holding [IPaddr::{VIP}/24/em1]: left with it." in peer
    assert not [m for m in peer if m.startswith("Taking over resource group")]
    assert pair.metrics(PEER).get("hbmon_peer_handovers_total", node=HOLDER) == 1
    gap = pair.metrics(HOLDER).get("hbmon_handover_gap_seconds")
    assert gap is not None
    assert 0 < gap < 10
