"""Failover variants, each on its own lab: auto_failback on, a failing resource
script, and sustained packet loss."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from netns_helpers import (
    Pair,
    arp_who_has,
    explain,
    iface_mac,
    require_netns,
    wait_until,
)

from hbmon.lab import VIP, Lab, set_loss

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
