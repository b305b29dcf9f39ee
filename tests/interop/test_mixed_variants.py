"""More mixed pairs next to Debian's real heartbeat 3.0.6 (see test_mixed_cluster).

* auto_failback on, hbmon on solr1, heartbeat on solr2 (the preferred node): as
  on a pure heartbeat pair, a manual hb_standby is not undone, and the group
  goes home when the preferred node restarts (spec §4.6 item 11, §5.3).
* The reverse layout, heartbeat on solr1 and hbmon on solr2 (the preferred
  node): both active, the VIP on hbmon's node; heartbeat's retransmit requests
  for hbmon's messages it lost are answered; kill -9 of hbmon with its link
  down makes heartbeat take over.

Each layout's tests run in order on one pair; heartbeat must log no ERROR about
hbmon's messages (its resource audit included) in either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hblab import LINK_DOWN_NOISE, Mixed, require_heartbeat, wait

from hbmon.testing.lab import Lab, set_loss

pytestmark = pytest.mark.netns


def assert_no_heartbeat_errors(m: Mixed) -> None:
    errors = [e for e in m.hb.errors() if not any(k in e for k in LINK_DOWN_NOISE)]
    assert errors == [], "\n".join(errors)


# ------------------------------------------------------ auto_failback on --
@pytest.fixture(scope="module")
def failback() -> Iterator[Mixed]:
    require_heartbeat()
    lab = Lab(directives={"auto_failback": "on"}).up()
    m = Mixed(lab)
    try:
        m.start_agent()
        m.hb.start()
        yield m
    finally:
        m.close("failback")


def test_failback_on_starts_the_vip_on_the_preferred_heartbeat_node(failback: Mixed) -> None:
    wait(lambda: failback.peer_status() == "active", 20, "hbmon sees solr2 active")
    wait(lambda: failback.hb.nodestatus("solr1") == "active", 20, "heartbeat sees solr1 active")
    failback.wait_holders(["solr2"], 30, "VIP on the preferred node")


def test_failback_on_does_not_undo_a_manual_standby(failback: Mixed) -> None:
    failback.wait_holders(["solr2"], 30, "precondition")
    res = failback.hb.hb_standby()
    assert res.returncode == 0, res.stderr
    failback.wait_holders(["solr1"], 15, "hb_standby moves the VIP to hbmon")
    time.sleep(12)  # longer than heartbeat's settle wait and any failback delay
    assert failback.holders() == ["solr1"]


def test_failback_on_returns_the_vip_when_the_preferred_node_restarts(failback: Mixed) -> None:
    failback.wait_holders(["solr1"], 5, "precondition")
    failback.hb.stop()
    wait(lambda: failback.peer_status() == "dead", 10, "hbmon marks solr2 dead")
    assert failback.holders() == ["solr1"]
    t0 = time.monotonic()
    failback.hb.start()
    failback.wait_holders(["solr2"], 40, "hbmon hands the group back to the restarted solr2")
    took = time.monotonic() - t0
    # heartbeat's own comm-up and ~10 s resource settle wait come first
    assert took < 30, took
    groups = failback.status()["groups"]
    assert [g["holder"] for g in groups] == ["solr2"]


def test_failback_on_heartbeat_logged_no_error(failback: Mixed) -> None:
    assert_no_heartbeat_errors(failback)


# ------------------------------------------------------ reverse layout --
@pytest.fixture(scope="module")
def reverse() -> Iterator[Mixed]:
    require_heartbeat()
    lab = Lab().up()
    m = Mixed(lab, agent="solr2", heartbeat="solr1")
    try:
        m.start_agent()
        m.hb.start()
        yield m
    finally:
        set_loss(lab.nodes["solr1"].ns, 0)
        m.close("reverse")


def test_reverse_both_active_and_the_vip_on_hbmons_preferred_node(reverse: Mixed) -> None:
    wait(lambda: reverse.hb.nodestatus("solr2") == "active", 15, "heartbeat sees solr2 active")
    wait(lambda: reverse.peer_status() == "active", 15, "hbmon sees solr1 active")
    assert reverse.hb.nodestatus("solr1") == "active"
    reverse.wait_holders(["solr2"], 30, "VIP on hbmon's node, the preferred one")
    assert [g["holder"] for g in reverse.status()["groups"]] == ["solr2"]


def lost_lines(m: Mixed) -> list[str]:
    return [line for line in m.hb.log_lines() if "lost packet(s) for [solr2]" in line]


def test_reverse_heartbeats_retransmit_requests_are_answered(reverse: Mixed) -> None:
    reverse.wait_holders(["solr2"], 30, "precondition")
    before = len(lost_lines(reverse))
    ns = reverse.lab.nodes["solr1"].ns
    set_loss(ns, 30)  # 30 % of hbmon's datagrams arriving at heartbeat's node
    try:
        time.sleep(4)
    finally:
        set_loss(ns, 0)
    time.sleep(3)  # heartbeat's rexmit requests (every max_rexmit_delay) get their answers
    lost = lost_lines(reverse)[before:]
    assert len(lost) >= 2, reverse.hb.tail(40)  # the gaps heartbeat saw and asked for
    log = reverse.hb.log_lines()
    assert not [line for line in log if "Irretrievably lost packet" in line]
    assert not [line for line in log if "lost a lot of packets" in line]
    assert reverse.hb.nodestatus("solr2") == "active"
    assert reverse.holders() == ["solr2"]
    assert_no_heartbeat_errors(reverse)


def test_reverse_hbmon_killed_with_its_link_down_and_heartbeat_takes_over(
    reverse: Mixed,
) -> None:
    reverse.wait_holders(["solr2"], 30, "precondition")
    reverse.kill9_agent()
    reverse.lab.link_set("solr2", "em1", False)  # a crashed machine: gone from the network
    # The killed agent's address stays configured on solr2's (downed) em1.
    took = reverse.wait_holders(["solr1", "solr2"], 15, "heartbeat takes the VIP after deadtime")
    assert took < 8, took
    # (cl_status nodestatus answers a dead node with a non-zero exit code: read the log)
    assert [line for line in reverse.hb.log_lines() if "node solr2: is dead" in line]


def test_reverse_heartbeat_logged_no_error(reverse: Mixed) -> None:
    assert_no_heartbeat_errors(reverse)
