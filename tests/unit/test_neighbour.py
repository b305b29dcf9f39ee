"""hbmon/io/neighbour.py: a silent ucast peer's address is asked for, and only then."""

from __future__ import annotations

from ipaddress import IPv4Address

from hbmon.config.model import BcastMedium, UcastMedium
from hbmon.io.neighbour import SILENT_SENDS, PeerSolicitor, request_frame
from hbmon.io.resources.arp import ARPOP_REQUEST, parse_arp
from hbmon.io.resources.packet import BROADCAST_MAC
from hbmon.io.transport import solicitor_for

MAC = bytes.fromhex("020000000049")
OURS = IPv4Address("198.51.100.49")
PEER = IPv4Address("198.51.100.50")


class FakeLink:
    def __init__(self, fail: bool = False) -> None:
        self.mac = MAC
        self.sent: list[bytes] = []
        self.closed = False
        self.fail = fail

    def send_now(self, frame: bytes) -> None:
        if self.fail:
            raise OSError("no buffer space")
        self.sent.append(frame)

    def close(self) -> None:
        self.closed = True


class Links:
    def __init__(self, fail: bool = False) -> None:
        self.opened: list[FakeLink] = []
        self.fail = fail

    def __call__(self, iface: str) -> FakeLink:
        assert iface == "em1"
        self.opened.append(FakeLink(self.fail))
        return self.opened[-1]


def solicitor(links: Links, source: IPv4Address | None = OURS) -> PeerSolicitor:
    return PeerSolicitor("em1", PEER, open_link=links, source=lambda iface, peer: source)


def test_the_request_asks_for_the_peer_and_names_us() -> None:
    arp = parse_arp(request_frame(MAC, OURS, PEER))
    assert arp is not None
    assert (arp.eth_dst, arp.eth_src, arp.op) == (BROADCAST_MAC, MAC, ARPOP_REQUEST)
    # The peer's kernel learns (or repairs) its entry for us from sha/spa.
    assert (arp.sha, arp.spa, arp.tpa) == (MAC, OURS, PEER)


def test_a_few_silent_sends_ask_nothing_then_every_send_asks() -> None:
    links = Links()
    s = solicitor(links)
    for _ in range(SILENT_SENDS):
        s.before_send()
    assert links.opened == [] and s.asked == 0
    for _ in range(4):
        s.before_send()
    assert len(links.opened) == 1  # one socket for the whole silence
    assert links.opened[0].sent == [request_frame(MAC, OURS, PEER)] * 4
    assert s.asked == 4


def test_hearing_the_peer_stops_the_requests_and_closes_the_socket() -> None:
    links = Links()
    s = solicitor(links)
    for _ in range(SILENT_SENDS + 2):
        s.before_send()
    s.heard()
    assert links.opened[0].closed
    for _ in range(SILENT_SENDS):
        s.before_send()
    assert s.asked == 2 and len(links.opened) == 1
    s.before_send()  # a new silence: a new socket
    assert s.asked == 3 and len(links.opened) == 2


def test_a_beat_lost_now_and_then_never_asks() -> None:
    links = Links()
    s = solicitor(links)
    for _ in range(50):
        for _ in range(SILENT_SENDS):
            s.before_send()
        s.heard()
    assert links.opened == [] and s.asked == 0


def test_no_address_of_ours_toward_the_peer_asks_nothing() -> None:
    links = Links()
    s = solicitor(links, source=None)
    for _ in range(SILENT_SENDS + 3):
        s.before_send()
    assert links.opened == [] and s.asked == 0


def test_a_failing_socket_is_dropped_and_tried_again_later() -> None:
    links = Links(fail=True)
    s = solicitor(links)
    for _ in range(SILENT_SENDS + 2):
        s.before_send()
    assert s.asked == 0
    assert [link.closed for link in links.opened] == [True, True]


def test_only_ipv4_ucast_media_have_a_solicitor() -> None:
    u = solicitor_for(UcastMedium("em1", "198.51.100.50", 694))
    assert u is not None and u.peer == "198.51.100.50"
    assert solicitor_for(BcastMedium("em1", 694)) is None
    assert solicitor_for(UcastMedium("em1", "solr2.example", 694)) is None
