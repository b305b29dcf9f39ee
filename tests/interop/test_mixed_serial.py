"""A mixed pair beating over a serial line: solr1 runs hbmon, solr2 Debian's heartbeat
3.0.6; media `ucast em1` plus `serial` over a socat pty pair (the null-modem cable).

Each side must accept the other's serial frames (heartbeat converts its netstring
messages to signed classic text for the line, hbmon writes the same), name the
link as heartbeat does (the device path), and keep the pair together on the serial
path while every frame between the nodes' em1 is dropped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from hblab import LINK_DOWN_NOISE, Mixed, require_heartbeat, wait

from hbmon.testing.lab import Lab

pytestmark = pytest.mark.netns

DEADTIME = 2.0
CUT_S = DEADTIME + 1.5
# Three cuts in the suite; the measurement behind the closing note ran ten
# (HBMON_SERIAL_CUTS=10 pytest this file).
CUT_RUNS = int(os.environ.get("HBMON_SERIAL_CUTS", "3"))


@pytest.fixture(scope="module")
def mixed() -> Iterator[Mixed]:
    require_heartbeat()
    lab = Lab(media=("ucast em1 {peer}", "serial {tty}"), serial=True).up()
    m = Mixed(lab)
    try:
        m.start_agent()
        m.hb.start()
        yield m
    finally:
        m.close("mixed-serial")


def hb_link(m: Mixed, link: str) -> str:
    return m.hb.cl_status("hblinkstatus", "solr1", link).stdout.strip()


def hbmon_links(m: Mixed) -> dict[str, str]:
    return {
        link["iface"]: link["status"]
        for link in m.status().get("links", [])
        if link.get("node") == "solr2"
    }


def test_both_sides_hear_each_other_over_the_serial_line(mixed: Mixed) -> None:
    tty1, tty2 = str(mixed.lab.tty("solr1")), str(mixed.lab.tty("solr2"))
    wait(lambda: mixed.hb.nodestatus("solr1") == "active", 20, "heartbeat sees solr1 active")
    wait(lambda: mixed.peer_status() == "active", 20, "hbmon sees solr2 active")
    # heartbeat names a serial link by its device path, as written in its ha.cf.
    wait(lambda: hb_link(mixed, tty2) == "up", 10, f"heartbeat's link {tty2} to solr1 up")
    links = mixed.hb.cl_status("listhblinks", "solr1").stdout.split()
    assert tty2 in links, links
    wait(lambda: hbmon_links(mixed).get(tty1) == "up", 10, "hbmon's serial link to solr2 up")
    mixed.wait_holders(["solr2"], 30, "VIP on the preferred node")


def test_an_ethernet_cut_is_survived_on_the_serial_line_both_ways(mixed: Mixed) -> None:
    tty1, tty2 = str(mixed.lab.tty("solr1")), str(mixed.lab.tty("solr2"))
    mixed.wait_holders(["solr2"], 30, "precondition: VIP on solr2")
    dead_before = sum("is dead" in line for line in mixed.hb.log_lines())
    takeover_before = mixed.status()["last_takeover"]
    for run in range(CUT_RUNS):
        mixed.lab.cut_between_nodes(True)
        t0 = time.monotonic()
        try:
            wait(lambda: hb_link(mixed, "em1") == "dead", DEADTIME + 3, f"run {run}: hb em1 dead")
            wait(
                lambda: hbmon_links(mixed) == {"em1": "dead", tty1: "up"},
                DEADTIME + 3,
                f"run {run}: hbmon sees em1 dead and serial up",
            )
            while time.monotonic() - t0 < CUT_S:
                assert mixed.hb.nodestatus("solr1") == "active", f"run {run}"
                assert mixed.peer_status() == "active", f"run {run}"
                assert hb_link(mixed, tty2) == "up", f"run {run}"
                assert mixed.holders() == ["solr2"], f"run {run}"
                time.sleep(0.2)
        finally:
            mixed.lab.cut_between_nodes(False)
        wait(lambda: hb_link(mixed, "em1") == "up", DEADTIME + 5, f"run {run}: hb em1 back")
        wait(lambda: hbmon_links(mixed).get("em1") == "up", DEADTIME + 5, f"run {run}: em1 back")
    status = mixed.status()
    dead_after = sum("is dead" in line for line in mixed.hb.log_lines())
    print(
        f"\n{CUT_RUNS} Ethernet cuts of {CUT_S:g} s, mixed pair on the serial line:"
        f" heartbeat 'is dead' lines {dead_after - dead_before},"
        f" hbmon peer {status['peers'][0]['status']},"
        f" hbmon takeover since {status['last_takeover'] != takeover_before}"
    )
    assert dead_after == dead_before
    assert status["last_takeover"] == takeover_before
    assert mixed.holders() == ["solr2"]


def test_heartbeat_logged_no_error_about_hbmons_serial_frames(mixed: Mixed) -> None:
    errors = [e for e in mixed.hb.errors() if not any(k in e for k in LINK_DOWN_NOISE)]
    assert errors == [], "\n".join(errors)
    assert not [line for line in mixed.hb.log_lines() if "authentic" in line or "bad " in line]
