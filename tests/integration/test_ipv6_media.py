"""IPv6 media beside IPv4 ones: `ucast em1 <v4>` and `ucast6 em1 <v6>` (one link, em1,
as heartbeat names links by interface) plus `mcast6 em2 ff02::694 …` on the direct
link, and the gateway as a `ping6` node beside its IPv4 `ping` node. Addresses are
the lab's own (2001:db8:94::/64, 2001:db8:95::/64).

Dropping every IPv4 heartbeat between the nodes leaves em1 up on ucast6; taking em1
down leaves the peer alive on mcast6; neither is ever a dead declaration. The ping6
node answers ICMPv6 echoes, and goes dead with the gateway.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from netns_helpers import Pair, require_netns, wait_until

from hbmon.testing.lab import GATEWAY_IP, GATEWAY_IP6, Lab

pytestmark = pytest.mark.netns

DEADTIME = 2.0
MCAST6 = "ff02::694"


@pytest.fixture(scope="module")
def v6_pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab(
        media=("ucast em1 {peer}", "ucast6 em1 {peer6}", f"mcast6 em2 {MCAST6} 694 1 0"),
        second_link=True,
        ipv6=True,
        extra_lines=(f"ping6 {GATEWAY_IP6}",),
    ).up()
    pair = Pair(lab)
    try:
        yield pair
    finally:
        pair.stop()
        lab.down()


def peer_of(pair: Pair, name: str) -> str:
    return next(n for n in pair.lab.nodes if n != name)


def link_up(pair: Pair, viewer: str, iface: str) -> float | None:
    m = pair.try_metrics(viewer)
    peer = peer_of(pair, viewer)
    return None if m is None else m.get("hbmon_link_up", node=peer, link=f"{iface}/{peer}")


def dead_declarations(pair: Pair) -> float:
    return sum(
        pair.metrics(n).get("hbmon_node_transitions_total", to="dead") or 0 for n in pair.lab.nodes
    )


def drop_ipv4_heartbeats(pair: Pair, on: bool) -> None:
    """Every IPv4 heartbeat into each node is dropped (IPv6 ones pass)."""
    for node in pair.lab.nodes.values():
        rules = "add table inet hbmv4cut\ndelete table inet hbmv4cut\n"
        if on:
            rules += (
                "table inet hbmv4cut {\n  chain input {\n"
                "    type filter hook input priority 0;\n"
                "    meta nfproto ipv4 udp dport 694 counter drop\n  }\n}\n"
            )
        subprocess.run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True)  # fmt: skip


def dropped_ipv4(pair: Pair, name: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", pair.lab.nodes[name].ns,
         "nft", "list", "table", "inet", "hbmv4cut"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    words = out.split()
    return int(words[words.index("packets") + 1])


def test_both_links_come_up_over_ipv4_and_ipv6(v6_pair: Pair) -> None:
    pair = v6_pair
    for viewer in pair.lab.nodes:
        for iface in ("em1", "em2"):
            wait_until(
                lambda v=viewer, i=iface: link_up(pair, v, i) == 1,
                timeout=20,
                what=f"{viewer}: {iface} up",
            )
    wait_until(
        lambda: pair.metrics("solr1").get("hbmon_node_state", node="solr2", state="active") == 1,
        timeout=20, what="solr2 active",
    )  # fmt: skip
    # em2 carries only mcast6: its RTT proves IPv6 multicast both ways.
    wait_until(
        lambda: (pair.metrics("solr1").get("hbmon_heartbeat_rtt_seconds_count", link="em2/solr2")
                 or 0) >= 5,
        timeout=10, what="RTT over mcast6",
    )  # fmt: skip
    m = pair.metrics("solr1")
    drops = [(lb, v) for n, lb, v in m.samples if n == "hbmon_packets_dropped_total" and v]
    assert drops == []


def test_without_ipv4_heartbeats_em1_lives_on_ucast6(v6_pair: Pair) -> None:
    pair = v6_pair
    wait_until(lambda: link_up(pair, "solr1", "em1") == 1, timeout=10, what="em1 up")
    dead0 = dead_declarations(pair)
    transitions0 = pair.metrics("solr1").get("hbmon_link_transitions_total", link="em1/solr2")
    drop_ipv4_heartbeats(pair, True)
    try:
        # For twice deadtime (an em1 carried by IPv4 alone would die), with IPv4
        # heartbeats really dropped all along, em1 never goes down.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2 * DEADTIME:
            for viewer in pair.lab.nodes:
                assert link_up(pair, viewer, "em1") == 1
            time.sleep(0.2)
        assert all(dropped_ipv4(pair, n) >= 2 * DEADTIME / 0.2 for n in pair.lab.nodes)
        assert (
            pair.metrics("solr1").get("hbmon_link_transitions_total", link="em1/solr2")
            == transitions0
        )
    finally:
        drop_ipv4_heartbeats(pair, False)
    assert dead_declarations(pair) == dead0


def test_with_em1_down_the_peer_lives_on_mcast6(v6_pair: Pair) -> None:
    pair = v6_pair
    dead0 = dead_declarations(pair)
    pair.lab.link_set("solr2", "em1", up=False)
    try:
        for viewer in pair.lab.nodes:
            wait_until(
                lambda v=viewer: link_up(pair, v, "em1") == 0,
                timeout=DEADTIME + 3,
                what=f"{viewer}: em1 dead",
            )
            assert link_up(pair, viewer, "em2") == 1
            m = pair.metrics(viewer)
            assert m.get("hbmon_node_state", node=peer_of(pair, viewer), state="active") == 1
    finally:
        pair.lab.link_set("solr2", "em1", up=True)
    wait_until(lambda: link_up(pair, "solr1", "em1") == 1, timeout=DEADTIME + 5, what="em1 back")
    assert dead_declarations(pair) == dead0


def ping_up(pair: Pair, viewer: str, node: str) -> float | None:
    m = pair.try_metrics(viewer)
    return None if m is None else m.get("hbmon_ping_node_up", node=node)


def test_the_ping6_node_answers_and_dies_with_the_gateway(v6_pair: Pair) -> None:
    pair = v6_pair
    for viewer in pair.lab.nodes:
        for node in (GATEWAY_IP, GATEWAY_IP6):
            wait_until(
                lambda v=viewer, n=node: ping_up(pair, v, n) == 1,
                timeout=15,
                what=f"{viewer}: ping node {node} up",
            )
    assert pair.metrics("solr1").get("hbmon_ping_reachable_nodes") == 2
    assert (pair.metrics("solr1").get("hbmon_ping_replies_total", node=GATEWAY_IP6) or 0) > 0
    pair.lab.gateway_down()
    try:
        wait_until(
            lambda: ping_up(pair, "solr1", GATEWAY_IP6) == 0,
            timeout=DEADTIME + 4,
            what="ping6 node dead with the gateway down",
        )
    finally:
        pair.lab.gateway_up()
    wait_until(
        lambda: ping_up(pair, "solr1", GATEWAY_IP6) == 1, timeout=DEADTIME + 6, what="ping6 back"
    )
