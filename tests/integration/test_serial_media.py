"""A serial link beside Ethernet: two hbmon agents, `ucast em1` plus `serial` over a
socat pty pair (the lab's null-modem cable).

The serial link is a link like any other (`/path/tty-solr2/solr2`: up, RTT,
transitions). Cutting every frame between the nodes' em1 (nftables, both ways)
for longer than deadtime leaves the serial path alive: the peer is never
declared dead, nothing is taken over, and only em1's link goes down (the
condition of the HbmonLinkDown alert, `hbmon_link_up == 0`).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from netns_helpers import Metrics, Pair, has_address, require_netns, wait_until

from hbmon.testing.lab import VIP, Lab

pytestmark = pytest.mark.netns

DEADTIME = 2.0
CUT_S = DEADTIME + 1.5
# Three cuts in the suite; the measurement behind the closing note ran ten
# (HBMON_SERIAL_CUTS=10 pytest this file).
CUT_RUNS = int(os.environ.get("HBMON_SERIAL_CUTS", "3"))


@pytest.fixture(scope="module")
def serial_pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab(media=("ucast em1 {peer}", "serial {tty}"), serial=True).up()
    pair = Pair(lab)
    try:
        yield pair
    finally:
        pair.stop()
        lab.down()


def serial_link(pair: Pair, peer: str) -> str:
    return f"{pair.lab.tty(peer_of(pair, peer))}/{peer}"


def peer_of(pair: Pair, name: str) -> str:
    return next(n for n in pair.lab.nodes if n != name)


def links(m: Metrics | None, pair: Pair, peer: str) -> tuple[float | None, float | None]:
    if m is None:
        return (None, None)
    return (
        m.get("hbmon_link_up", node=peer, link=f"em1/{peer}"),
        m.get("hbmon_link_up", node=peer, link=serial_link(pair, peer)),
    )


def both_links_up(pair: Pair) -> bool:
    return all(
        links(pair.try_metrics(viewer), pair, peer_of(pair, viewer)) == (1, 1)
        for viewer in pair.lab.nodes
    )


def holder(pair: Pair) -> list[str]:
    return [n for n, node in pair.lab.nodes.items() if has_address(node.ns, "em1", VIP)]


def counters(pair: Pair) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in pair.lab.nodes:
        m = pair.metrics(name)
        out[f"{name} dead"] = m.get("hbmon_node_transitions_total", to="dead") or 0
        out[f"{name} takeovers"] = m.get("hbmon_failovers_total") or 0
    return out


def test_the_serial_link_is_a_link_like_any_other(serial_pair: Pair) -> None:
    pair = serial_pair
    wait_until(lambda: both_links_up(pair), timeout=20, what="em1 and serial links up both ways")
    wait_until(lambda: holder(pair) == ["solr2"], timeout=20, what="VIP on solr2")
    link = serial_link(pair, "solr2")
    wait_until(
        lambda: (
            (pair.metrics("solr1").get("hbmon_heartbeat_rtt_seconds_count", link=link) or 0) >= 5
        ),
        timeout=10,
        what="RTT measured over the serial link",
    )
    m = pair.metrics("solr1")
    assert m.get("hbmon_node_state", node="solr2", state="active") == 1
    # heartbeat's name for the link is the device path; both copies of every beat
    # arrive, the second as a duplicate, never a drop.
    assert (m.get("hbmon_packets_dropped_total") or 0) == 0


def test_an_ethernet_cut_is_survived_on_the_serial_link(serial_pair: Pair) -> None:
    pair = serial_pair
    wait_until(lambda: both_links_up(pair), timeout=20, what="both links up")
    wait_until(lambda: holder(pair) == ["solr2"], timeout=20, what="VIP on solr2")
    before = counters(pair)
    results = []
    for run in range(CUT_RUNS):
        pair.lab.cut_between_nodes(True)
        t0 = time.monotonic()
        try:
            # em1 goes dead on both sides (deadtime), the serial link stays up.
            for viewer in pair.lab.nodes:
                peer = peer_of(pair, viewer)
                wait_until(
                    lambda v=viewer, p=peer: links(pair.try_metrics(v), pair, p) == (0, 1),
                    timeout=DEADTIME + 3,
                    what=f"run {run}: {viewer} sees em1 dead and serial up",
                )
            while time.monotonic() - t0 < CUT_S:
                for viewer in pair.lab.nodes:
                    m = pair.metrics(viewer)
                    assert m.get("hbmon_node_state", node=peer_of(pair, viewer), state="dead") == 0
                assert holder(pair) == ["solr2"]
                time.sleep(0.2)
        finally:
            pair.lab.cut_between_nodes(False)
        wait_until(lambda: both_links_up(pair), timeout=DEADTIME + 5, what=f"run {run}: em1 back")
        results.append(counters(pair))
    after = results[-1]
    assert after == before, f"dead declarations or takeovers during the cuts: {before} -> {after}"
    assert holder(pair) == ["solr2"]
    delta = {k: after[k] - before[k] for k in before}
    print(f"\n{CUT_RUNS} Ethernet cuts of {CUT_S:g} s with the serial link alive: {delta}")


def test_a_reload_that_changes_other_media_keeps_the_serial_line_open(serial_pair: Pair) -> None:
    """The tty is locked by whoever holds it open: a reload must hand the open line
    over, not open it a second time."""
    pair = serial_pair
    wait_until(lambda: both_links_up(pair), timeout=20, what="both links up")
    node = pair.lab.nodes["solr1"]
    hacf = node.config_dir / "ha.cf"
    hacf.write_text(hacf.read_text().replace("serial ", "bcast em1\nserial ", 1))
    pair.procs["solr1"].send_signal(signal.SIGHUP)
    wait_until(
        lambda: "Configuration reloaded." in [r.get("message") for r in pair.log_records("solr1")],
        timeout=10, what="solr1 reloaded",
    )  # fmt: skip
    messages = [str(r.get("message")) for r in pair.log_records("solr1")]
    assert not any("reload refused" in m for m in messages)
    assert sum(m.startswith("Starting serial heartbeat on tty") for m in messages) == 1
    # The line still carries beats: em1 cut, the peer stays alive on it.
    pair.lab.cut_between_nodes(True)
    try:
        wait_until(
            lambda: links(pair.try_metrics("solr1"), pair, "solr2") == (0, 1),
            timeout=DEADTIME + 3, what="em1 dead, serial up after the reload",
        )  # fmt: skip
        assert pair.metrics("solr1").get("hbmon_node_state", node="solr2", state="active") == 1
    finally:
        pair.lab.cut_between_nodes(False)
