"""The lab's own observation tools, in namespaces the test makes (no agent runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netns_helpers import require_netns

from hbmon.testing.lab import NET, NODE_IPS, Lab, arp_who_has, iface_mac

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    lab = Lab().up()
    try:
        yield lab
    finally:
        lab.down()


def test_arp_who_has_names_the_one_host_that_holds_an_address(lab: Lab) -> None:
    for name, ip in NODE_IPS.items():
        assert arp_who_has(lab.gw_ns, "gw0", ip) == {iface_mac(lab.nodes[name].ns, "em1")}


def test_arp_who_has_of_an_address_nobody_holds_is_empty(lab: Lab) -> None:
    assert arp_who_has(lab.gw_ns, "gw0", f"{NET}.123", timeout=0.2) == set()
