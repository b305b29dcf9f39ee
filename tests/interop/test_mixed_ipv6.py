"""A mixed pair over IPv6 only: solr1 runs hbmon, solr2 Debian's heartbeat 3.0.6;
media `ucast6 em1 <peer>` and `mcast6 em2 ff02::694 694 1 0`, ping nodes the
gateway over IPv4 and IPv6 (addresses of the lab's own 2001:db8:94::/64 and
2001:db8:95::/64). Each side must hear the other on both links."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hblab import EXPECTED_ERRORS, Mixed, require_heartbeat, wait

from hbmon.testing.lab import GATEWAY_IP6, Lab

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def mixed() -> Iterator[Mixed]:
    require_heartbeat()
    lab = Lab(
        media=("ucast6 em1 {peer6}", "mcast6 em2 ff02::694 694 1 0"),
        second_link=True,
        ipv6=True,
        extra_lines=(f"ping6 {GATEWAY_IP6}",),
    ).up()
    m = Mixed(lab)
    try:
        m.start_agent()
        m.hb.start()
        yield m
    finally:
        m.close("mixed-ipv6")


def hbmon_links(m: Mixed) -> dict[str, str]:
    return {
        link["iface"]: link["status"]
        for link in m.status().get("links", [])
        if link.get("node") == "solr2"
    }


def test_heartbeat_and_hbmon_hear_each_other_over_ucast6_and_mcast6(mixed: Mixed) -> None:
    wait(lambda: mixed.hb.nodestatus("solr1") == "active", 20, "heartbeat sees solr1 active")
    wait(lambda: mixed.peer_status() == "active", 20, "hbmon sees solr2 active")
    for link in ("em1", "em2"):
        wait(
            lambda lk=link: mixed.hb.cl_status("hblinkstatus", "solr1", lk).stdout.strip() == "up",
            10,
            f"heartbeat's {link} to solr1 up",
        )
    wait(lambda: hbmon_links(mixed) == {"em1": "up", "em2": "up"}, 10, "hbmon's links up")
    mixed.wait_holders(["solr2"], 30, "VIP on the preferred node")
    # The ping6 node, as both see it.
    wait(lambda: mixed.hb.nodestatus(GATEWAY_IP6) == "ping", 10, "heartbeat's ping6 node")
    ping = {p["name"]: p["status"] for p in mixed.status()["ping_nodes"]}
    assert ping[GATEWAY_IP6] == "ping"


# heartbeat's mcast6 sends fail with ENETUNREACH for about its first second in the
# lab, before any message of hbmon's arrived; about sending, not about what it hears.
STARTUP_SEND_NOISE = ("mcast6_write: Unable to send", "write failure on mcast6")


def test_heartbeat_logged_no_error_about_hbmons_ipv6_messages(mixed: Mixed) -> None:
    assert mixed.hb.errors((*EXPECTED_ERRORS, *STARTUP_SEND_NOISE)) == []
    assert not [line for line in mixed.hb.log_lines() if "bad node" in line or "auth" in line]
