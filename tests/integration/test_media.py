"""bcast and mcast media over two paths: per-link health, duplicates are not drops.

solr1 and solr2 share em1 (the bridge, `bcast em1`) and a direct em2 link
(`mcast em2 239.255.94.1 694 1 0`). Every beat goes out on both media, so each
arrives twice: once per link.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netns_helpers import Pair, require_netns, wait_until

from hbmon.testing.lab import Lab

pytestmark = pytest.mark.netns

DEADTIME = 2.0


@pytest.fixture(scope="module")
def media_pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab(media=("bcast em1", "mcast em2 239.255.94.1 694 1 0"), second_link=True).up()
    pair = Pair(lab)
    try:
        yield pair
    finally:
        pair.stop()
        lab.down()


def links_up(pair: Pair, viewer: str, peer: str) -> bool:
    m = pair.try_metrics(viewer)
    return m is not None and all(
        m.get("hbmon_link_up", node=peer, link=f"{iface}/{peer}") == 1 for iface in ("em1", "em2")
    )


def test_every_beat_goes_out_on_every_medium(media_pair: Pair) -> None:
    wait_until(
        lambda: links_up(media_pair, "solr1", "solr2") and links_up(media_pair, "solr2", "solr1"),
        timeout=10, what="both links up in both directions",
    )  # fmt: skip

    def rtt_counts() -> tuple[float, float]:
        m = media_pair.metrics("solr1")
        return tuple(  # type: ignore[return-value]
            m.get("hbmon_heartbeat_rtt_seconds_count", node="solr2", link=f"{i}/solr2") or 0
            for i in ("em1", "em2")
        )

    wait_until(lambda: min(rtt_counts()) >= 5, timeout=5, what="RTT on both links")
    m = media_pair.metrics("solr1")
    assert m.get("hbmon_node_state", node="solr2", state="active") == 1
    # The copy over the second medium is a duplicate, never a drop.
    assert (m.get("hbmon_packets_dropped_total") or 0) == 0


def test_one_path_down_is_a_dead_link_not_a_dead_node(media_pair: Pair) -> None:
    before = media_pair.metrics("solr1")
    late0 = before.get("hbmon_heartbeat_late_total", node="solr2")
    media_pair.lab.link_set("solr2", "em2", up=False)
    try:
        wait_until(
            lambda: media_pair.metrics("solr1").get(
                "hbmon_link_up", node="solr2", link="em2/solr2") == 0,
            timeout=DEADTIME + 2, what="em2/solr2 dead",
        )  # fmt: skip
        m = media_pair.metrics("solr1")
        assert m.get("hbmon_link_up", node="solr2", link="em1/solr2") == 1
        assert m.get("hbmon_node_state", node="solr2", state="active") == 1
        assert m.get("hbmon_heartbeat_late_total", node="solr2") == late0
    finally:
        media_pair.lab.link_set("solr2", "em2", up=True)
    wait_until(lambda: links_up(media_pair, "solr1", "solr2"), timeout=5, what="em2/solr2 back up")
