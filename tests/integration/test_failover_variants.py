"""Failover variants, each on its own lab: auto_failback on, a failing resource
script, and sustained packet loss."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from netns_helpers import (
    Pair,
    arp_who_has,
    explain,
    has_address,
    iface_mac,
    require_netns,
    wait_until,
)

from hbmon.testing.lab import NODE_IPS, NODE_IPS6, VIP, Lab, set_loss

pytestmark = pytest.mark.netns

DEADTIME = 2.0
INITDEAD = 4.0


def holder(pair: Pair) -> str | None:
    """The one node the network reaches the VIP at (ARP from the gateway), if exactly one."""
    macs = arp_who_has(pair.lab.gw_ns, "gw0", VIP, timeout=0.15)
    names = [n for n in pair.lab.nodes if iface_mac(pair.lab.nodes[n].ns, "em1") in macs]
    return names[0] if len(macs) == 1 and len(names) == 1 else None


def started(lab: Lab) -> Iterator[Pair]:
    pair = Pair(lab)
    try:
        yield pair
    finally:
        pair.stop()
        lab.down()


def crash(pair: Pair, name: str) -> None:
    pair.procs[name].send_signal(signal.SIGKILL)
    pair.lab.link_set(name, "em1", up=False)
    pair.procs[name].wait()


def revive(pair: Pair, name: str) -> None:
    pair.lab.link_set(name, "em1", up=True)
    pair.procs[name] = pair.lab.start_agent(name)


@pytest.fixture
def failback_on() -> Iterator[Pair]:
    require_netns()
    yield from started(Lab(directives={"auto_failback": "on"}).up())


def test_auto_failback_on_returns_the_vip_to_its_preferred_node(failback_on: Pair) -> None:
    pair = failback_on
    wait_until(lambda: holder(pair) == "solr2", timeout=INITDEAD + 15, what="VIP on solr2")
    time.sleep(5.5)  # past solr2's start-up grace, so deadtime applies
    crash(pair, "solr2")
    try:
        wait_until(lambda: holder(pair) == "solr1", timeout=DEADTIME + 3, what="VIP on solr1")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{explain(pair)}") from None
    revive(pair, "solr2")
    wait_until(lambda: holder(pair) == "solr2", timeout=INITDEAD + 15, what="VIP back on solr2")
    m = pair.metrics("solr2")
    assert (m.get("hbmon_failovers_total", reason="failback") or 0) >= 1


FLAKY = """#!/bin/sh
# Fails to start on the node whose resource.d holds a file named `broken`.
here=$(dirname "$0")
case "$1" in
  start) [ -e "$here/broken" ] && exit 1; touch "$here/running"; exit 0 ;;
  stop) rm -f "$here/running"; exit 0 ;;
  status) [ -e "$here/running" ] && { echo running; exit 0; }; echo stopped; exit 3 ;;
esac
exit 2
"""


@pytest.fixture
def flaky() -> Iterator[Pair]:
    require_netns()
    lab = Lab(haresources=f"solr2 IPaddr::{VIP}/24/em1 flaky\n", scripts={"flaky": FLAKY}).up()
    (lab.nodes["solr2"].config_dir / "resource.d" / "broken").touch()
    yield from started(lab)


def test_a_failing_start_moves_the_group_once_without_ping_pong(flaky: Pair) -> None:
    pair = flaky
    wait_until(lambda: holder(pair) == "solr1", timeout=INITDEAD + 20, what="group on solr1")
    flaky_running = pair.lab.nodes["solr1"].config_dir / "resource.d" / "running"
    # The address is the group's first resource: the script starts just after it.
    wait_until(flaky_running.exists, timeout=5, what="flaky started on solr1")

    def moves() -> float:
        return sum(
            (pair.metrics(n).get("hbmon_failovers_total") or 0)
            - (pair.metrics(n).get("hbmon_failovers_total", reason="startup") or 0)
            for n in pair.lab.nodes
        )

    before = moves()
    end = time.monotonic() + 12
    while time.monotonic() < end:
        assert holder(pair) == "solr1", "the group must stay where it started successfully"
        time.sleep(0.3)
    assert moves() == before, "no ping-pong"
    m = pair.metrics("solr2")
    assert (m.get("hbmon_resource_group_failures_total", op="start") or 0) >= 1
    assert (m.get("hbmon_resource_operation_failures_total", resource="flaky", op="start")
            or 0) >= 1  # fmt: skip


@pytest.fixture
def plain() -> Iterator[Pair]:
    require_netns()
    yield from started(Lab().up())


def test_twenty_percent_loss_for_a_minute_causes_no_takeover(plain: Pair) -> None:
    pair = plain
    wait_until(lambda: holder(pair) == "solr2", timeout=INITDEAD + 15, what="VIP on solr2")
    time.sleep(5.5)

    def count(name: str, metric: str, **labels: str) -> float:
        return sum(pair.metrics(n).get(metric, **labels) or 0 for n in pair.lab.nodes)

    takeovers0 = count("x", "hbmon_failovers_total")
    deaths0 = count("x", "hbmon_node_transitions_total", to="dead")
    for node in pair.lab.nodes.values():
        set_loss(node.ns, 20)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            assert holder(pair) == "solr2"
            time.sleep(1)
    finally:
        for node in pair.lab.nodes.values():
            set_loss(node.ns, 0)
    assert count("x", "hbmon_failovers_total") == takeovers0
    assert count("x", "hbmon_node_transitions_total", to="dead") == deaths0
    lost = count("x", "hbmon_heartbeat_lost_total")
    assert lost > 0, "the loss was real"


def mac(pair: Pair, name: str) -> str:
    return iface_mac(pair.lab.nodes[name].ns, "em1")


def owns(pair: Pair, name: str) -> bool:
    other = next(n for n in pair.lab.nodes if n != name)
    return (
        has_address(pair.lab.nodes[name].ns, "em1", VIP)
        and not has_address(pair.lab.nodes[other].ns, "em1", VIP)
        and arp_who_has(pair.lab.gw_ns, "gw0", VIP, timeout=0.15) == {mac(pair, name)}
    )


def _cut_between_nodes(pair: Pair, on: bool) -> None:
    """Drop every frame a node receives from the other (nftables inside each node's
    namespace): both still reach the gateway, so each sees the other dead and a
    quorum of ping nodes."""
    macs = {n: mac(pair, n) for n in pair.lab.nodes}
    for name, node in pair.lab.nodes.items():
        peer = next(m for n, m in macs.items() if n != name)
        rules = "add table netdev hbmtest\ndelete table netdev hbmtest\n"
        if on:
            rules += (
                "table netdev hbmtest {\n  chain peer {\n"
                '    type filter hook ingress device "em1" priority 0;\n'
                f"    ether saddr {peer} drop\n  }}\n}}\n"
            )
        subprocess.run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True)  # fmt: skip


def gateway_entry(pair: Pair) -> str | None:
    """The MAC the gateway's neighbour table has for the VIP (what its traffic goes to)."""
    out = subprocess.run(["ip", "-n", pair.lab.gw_ns, "neigh", "show", VIP, "dev", "gw0"],
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


def test_after_a_partition_heals_the_keeper_reclaims_the_clients(plain: Pair) -> None:
    pair = plain
    """During a cut between the nodes both take the VIP and the taker's gratuitous ARP
    moves the gateway to it; on heal the taker releases, and the keeper must announce
    again, or the gateway keeps sending to the wrong node until its entry expires."""
    wait_until(lambda: owns(pair, "solr2"), timeout=INITDEAD + 10, what="VIP on solr2")
    time.sleep(5.5)  # past the start-up grace: deadtime applies
    # Give the gateway an entry for the VIP (GARP updates an entry; it creates none).
    code = f"import icmplib;print(icmplib.ping('{VIP}',count=1,timeout=1).is_alive)"
    assert pair.lab.exec(pair.lab.gw_ns, [sys.executable, "-c", code]).stdout.strip() == "True"
    assert gateway_entry(pair) == mac(pair, "solr2")
    _cut_between_nodes(pair, True)
    try:
        try:
            wait_until(lambda: has_address(pair.lab.nodes["solr1"].ns, "em1", VIP),
                       timeout=DEADTIME + 5, what="solr1 takes the VIP during the cut")  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{explain(pair, 40)}") from None
        wait_until(lambda: gateway_entry(pair) == mac(pair, "solr1"), timeout=3,
                   what="the gateway follows solr1's announcements")  # fmt: skip
        time.sleep(1.5)  # the neighbour entry's locktime (1 s) must pass before an update
    finally:
        _cut_between_nodes(pair, False)
    healed = time.monotonic()
    try:
        # Addresses only: an ARP request from the gateway would repair its entry itself.
        wait_until(lambda: not has_address(pair.lab.nodes["solr1"].ns, "em1", VIP), timeout=5,
                   what="solr1 releases the VIP after the heal")  # fmt: skip
        assert has_address(pair.lab.nodes["solr2"].ns, "em1", VIP)
        wait_until(lambda: gateway_entry(pair) == mac(pair, "solr2"), timeout=3,
                   what="the gateway back on solr2")  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{explain(pair)}") from None
    assert time.monotonic() - healed < 5


@pytest.fixture(params=["ipv4", "ipv6"])
def unicast_pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """The reference pair, its one medium `ucast em1` or (ipv6) `ucast6 em1`."""
    require_netns()
    if request.param == "ipv6":
        yield from started(Lab(media=("ucast6 em1 {peer6}",), ipv6=True).up())
    else:
        yield from started(Lab().up())


def test_a_heal_is_heard_at_once_when_the_peers_neighbour_entry_has_failed(
    unicast_pair: Pair,
) -> None:
    """A long cut leaves the kernel without the peer's MAC; it then holds every
    datagram to the peer until its next ARP request or neighbour solicitation
    (here 5 s apart, by default 1 s), so neither node heard the other that long
    after the heal. Each node asks for its silent peer's address itself: the heal
    is heard within a keepalive."""
    pair = unicast_pair
    v6 = pair.lab.ipv6  # the ipv6 pair's only medium is ucast6
    family, peers = ("-6", NODE_IPS6) if v6 else ("-4", NODE_IPS)
    peer_ip = {"solr1": peers["solr2"], "solr2": peers["solr1"]}

    def neigh(name: str, *args: str) -> str:
        ns = pair.lab.nodes[name].ns
        return subprocess.run(["ip", family, "-n", ns, "neigh", *args], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip

    wait_until(lambda: owns(pair, "solr2"), timeout=INITDEAD + 10, what="VIP on solr2")
    time.sleep(5.5)  # past the start-up grace: deadtime applies
    knob = f"net.ipv{6 if v6 else 4}.neigh.em1.retrans_time_ms=5000"
    for node in pair.lab.nodes.values():
        subprocess.run(["ip", "netns", "exec", node.ns, "sysctl", "-qw", knob], check=True)
    _cut_between_nodes(pair, True)
    try:
        wait_until(lambda: has_address(pair.lab.nodes["solr1"].ns, "em1", VIP),
                   timeout=DEADTIME + 5, what="solr1 takes the VIP during the cut")  # fmt: skip
        # The state a long cut ends in: the entry gone, the kernel's first question
        # for it already lost, its next one 5 s away.
        for name in pair.lab.nodes:
            neigh(name, "flush", "to", peer_ip[name], "dev", "em1")
        wait_until(lambda: all("INCOMPLETE" in neigh(n, "show", peer_ip[n], "dev", "em1")
                               for n in pair.lab.nodes),
                   timeout=2, what="both entries INCOMPLETE")  # fmt: skip
    finally:
        _cut_between_nodes(pair, False)
    healed = time.monotonic()
    try:
        wait_until(lambda: not has_address(pair.lab.nodes["solr1"].ns, "em1", VIP), timeout=6,
                   what="solr1 releases the VIP after the heal")  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{explain(pair)}") from None
    took = time.monotonic() - healed
    assert has_address(pair.lab.nodes["solr2"].ns, "em1", VIP)
    # keepalive 200 ms: one status each way, the release itself and polling; the
    # kernel alone would have taken until its next question, 5 s after the last.
    assert took < 1.5, f"solr1 released {took:.2f} s after the heal"
