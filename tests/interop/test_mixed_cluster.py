"""A mixed pair: solr1 runs hbmon, solr2 runs Debian's real heartbeat 3.0.6.

Same ha.cf/authkeys/haresources on both (hbmon.testing.lab: keepalive 200 ms, warntime
1 s, deadtime 2 s, initdead 4 s, `solr2 IPaddr::198.51.100.80/24/em1`,
auto_failback off). The tests run in order on one pair.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from hblab import LINK_DOWN_NOISE, Mixed, require_heartbeat, wait

from hbmon.testing.lab import Lab

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def mixed() -> Iterator[Mixed]:
    require_heartbeat()
    lab = Lab().up()
    m = Mixed(lab)
    try:
        m.start_agent()
        m.hb.start()
        yield m
    finally:
        m.close("mixed")


def test_each_side_sees_the_other_active_and_the_vip_starts_on_solr2(mixed: Mixed) -> None:
    wait(lambda: mixed.hb.nodestatus("solr1") == "active", 15, "heartbeat sees solr1 active")
    wait(lambda: mixed.peer_status() == "active", 15, "hbmon sees solr2 active")
    assert mixed.hb.nodestatus("solr2") == "active"
    # heartbeat waits for the peer's resources to settle (about 10 s), then takes its group.
    mixed.wait_holders(["solr2"], 30, "VIP on the preferred node")
    groups = mixed.status()["groups"]
    assert [g["holder"] for g in groups] == ["solr2"]
    assert mixed.hb.cl_status("rscstatus").stdout.strip() in ("all", "local")


def test_standby_moves_the_vip_both_ways_from_either_side(mixed: Mixed) -> None:
    mixed.wait_holders(["solr2"], 30, "start")
    res = mixed.hb.hb_standby()
    assert res.returncode == 0, res.stderr
    took = mixed.wait_holders(["solr1"], 15, "hb_standby on heartbeat moves the VIP to hbmon")
    assert took < 5
    time.sleep(1)
    res = mixed.hbmon("standby", timeout=60)
    assert res.returncode == 0, res.stderr + mixed.explain()
    mixed.wait_holders(["solr2"], 15, "hbmon standby moves the VIP back to heartbeat")
    time.sleep(1)
    res = mixed.hbmon("takeover", timeout=60)
    assert res.returncode == 0, res.stderr + mixed.explain()
    mixed.wait_holders(["solr1"], 15, "hbmon takeover takes it from heartbeat")
    time.sleep(1)
    res = mixed.hb.hb_takeover()
    assert res.returncode == 0, res.stderr
    mixed.wait_holders(["solr2"], 15, "hb_takeover on heartbeat takes it back")


def test_graceful_stop_of_heartbeat_moves_the_vip_at_once_and_failback_off_keeps_it(
    mixed: Mixed,
) -> None:
    mixed.wait_holders(["solr2"], 30, "start")
    t0 = time.monotonic()
    mixed.hb.stop()
    mixed.wait_holders(["solr1"], 10, "hbmon takes over on heartbeat's shutdone")
    assert time.monotonic() - t0 < 8
    wait(lambda: mixed.peer_status() == "dead", 5, "hbmon marks solr2 dead")
    mixed.hb.start()
    wait(lambda: mixed.hb.nodestatus("solr1") == "active", 20, "heartbeat rejoins")
    time.sleep(12)  # heartbeat's settle wait: auto_failback off must not move it back
    assert mixed.holders() == ["solr1"]


def test_a_restart_of_hbmon_keeps_the_vip_and_heartbeat_takes_nothing(mixed: Mixed) -> None:
    """hbmon/core/handover.py against the real heartbeat: it honours the stretched
    `dt` of hbmon's restart notice and, as for its own `heartbeat -R`, takes nothing
    from a node that restarted (it ignores `hbhandover` itself)."""
    mixed.wait_holders(["solr1"], 5, "precondition")
    seen = len(mixed.hb.log_lines())
    assert mixed.agent is not None
    gaps: list[list[str]] = []
    mixed.agent.send_signal(signal.SIGQUIT)
    assert mixed.agent.wait(10) == 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.5:  # gone longer than deadtime (2 s): heartbeat waits
        if mixed.holders() != ["solr1"]:
            gaps.append(mixed.holders())
        time.sleep(0.02)
    assert mixed.hb.nodestatus("solr1") == "active"  # the stretched dt: not dead
    mixed.start_agent()
    wait(lambda: mixed.peer_status() == "active", 20, "hbmon's new agent hears heartbeat")
    deadline = time.monotonic() + 5  # past heartbeat's deadtime: any late move shows
    while time.monotonic() < deadline:
        if mixed.holders() != ["solr1"]:
            gaps.append(mixed.holders())
        time.sleep(0.02)
    assert gaps == [], mixed.explain()
    assert [g["holder"] for g in mixed.status()["groups"]] == ["solr1"]
    assert mixed.hb.nodestatus("solr1") == "active"
    new = mixed.hb.log_lines()[seen:]
    assert any("Heartbeat restart on node solr1" in line for line in new), mixed.explain()
    assert not [line for line in new if "is dead" in line or "Taking over" in line]


def test_graceful_stop_of_hbmon_hands_the_vip_to_heartbeat(mixed: Mixed) -> None:
    mixed.wait_holders(["solr1"], 5, "precondition")
    mixed.stop_agent()
    mixed.wait_holders(["solr2"], 15, "heartbeat takes over on hbmon's shutdone")
    wait(lambda: mixed.hb.nodestatus("solr1") != "active", 10, "heartbeat sees solr1 leave")
    mixed.start_agent()
    wait(lambda: mixed.peer_status() == "active", 20, "hbmon rejoins")
    wait(lambda: mixed.hb.nodestatus("solr1") == "active", 20, "heartbeat sees hbmon again")


def test_heartbeat_is_killed_with_its_link_down_and_hbmon_takes_over(mixed: Mixed) -> None:
    mixed.wait_holders(["solr2"], 30, "precondition")
    mixed.hb.kill9()
    mixed.lab.link_set("solr2", "em1", False)  # a crashed machine: gone from the network
    took = mixed.wait_holders(["solr1", "solr2"], 15, "hbmon takes the VIP after deadtime")
    assert took < 8
    assert mixed.peer_status() == "dead"


def test_heartbeat_logged_no_error_about_hbmons_messages(mixed: Mixed) -> None:
    # Its resource audit included: no `Both machines own …` / `No one owns …`
    # (hbmon flags an empty set the way heartbeat does, see scopes.hold_scope).
    errors = [e for e in mixed.hb.errors() if not any(k in e for k in LINK_DOWN_NOISE)]
    assert errors == [], "\n".join(errors)
    assert not [line for line in mixed.hb.log_lines() if "bad node" in line or "auth" in line]
