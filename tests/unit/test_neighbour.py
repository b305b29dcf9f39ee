"""hbmon/io/neighbour.py: a silent ucast peer's address is asked for, and only then."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from hbmon.config.model import BcastMedium, Mcast6Medium, Ucast6Medium, UcastMedium
from hbmon.io.neighbour import SILENT_SENDS, IPAddress, PeerSolicitor, request_frame
from hbmon.io.resources.arp import ARPOP_REQUEST, ETH_P_ARP, parse_arp
from hbmon.io.resources.ndisc import (
    ETH_P_IPV6,
    ICMPV6_NS,
    OPT_SOURCE_LLADDR,
    checksum,
    multicast_mac,
    solicitation,
    solicited_node,
)
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
        self.ethertypes: list[int] = []
        self.fail = fail

    def __call__(self, iface: str, ethertype: int) -> FakeLink:
        assert iface == "em1"
        self.ethertypes.append(ethertype)
        self.opened.append(FakeLink(self.fail))
        return self.opened[-1]


def solicitor(
    links: Links, source: IPAddress | None = OURS, peer: IPAddress = PEER
) -> PeerSolicitor:
    return PeerSolicitor("em1", peer, open_link=links, source=lambda iface, peer: source)


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
    assert links.opened == []
    assert s.asked == 0
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
    assert s.asked == 2
    assert len(links.opened) == 1
    s.before_send()  # a new silence: a new socket
    assert s.asked == 3
    assert len(links.opened) == 2


def test_a_beat_lost_now_and_then_never_asks() -> None:
    links = Links()
    s = solicitor(links)
    for _ in range(50):
        for _ in range(SILENT_SENDS):
            s.before_send()
        s.heard()
    assert links.opened == []
    assert s.asked == 0


def test_no_address_of_ours_toward_the_peer_asks_nothing() -> None:
    links = Links()
    s = solicitor(links, source=None)
    for _ in range(SILENT_SENDS + 3):
        s.before_send()
    assert links.opened == []
    assert s.asked == 0


def test_a_failing_socket_is_dropped_and_tried_again_later() -> None:
    links = Links(fail=True)
    s = solicitor(links)
    for _ in range(SILENT_SENDS + 2):
        s.before_send()
    assert s.asked == 0
    assert [link.closed for link in links.opened] == [True, True]


def test_only_unicast_media_have_a_solicitor() -> None:
    u = solicitor_for(UcastMedium("em1", "198.51.100.50", 694))
    assert u is not None
    assert u.peer == "198.51.100.50"
    u6 = solicitor_for(Ucast6Medium("em1", "fe80::50%em1", 694))
    assert u6 is not None
    assert u6.peer == "fe80::50"
    assert solicitor_for(BcastMedium("em1", 694)) is None
    assert solicitor_for(Mcast6Medium("em2", "ff05::694", 694, 1, False)) is None
    assert solicitor_for(UcastMedium("em1", "solr2.example", 694)) is None


OURS6 = IPv6Address("2001:db8:0:1::49")
PEER6 = IPv6Address("2001:db8:0:1::50")


def test_the_ipv6_question_is_a_solicitation_carrying_our_link_address() -> None:
    frame = solicitation(MAC, OURS6, PEER6)
    group = solicited_node(PEER6)
    assert frame[0:6] == multicast_mac(group)
    assert frame[6:12] == MAC
    assert int.from_bytes(frame[12:14], "big") == ETH_P_IPV6
    ip = frame[14:54]
    length, hops = struct.unpack("!HxB", ip[4:8])
    assert (hops, ip[8:24], ip[24:40]) == (255, OURS6.packed, group.packed)
    icmp = frame[54 : 54 + length]
    assert icmp[0] == ICMPV6_NS
    assert icmp[8:24] == PEER6.packed
    assert icmp[24:32] == bytes([OPT_SOURCE_LLADDR, 1]) + MAC
    zeroed = icmp[:2] + b"\0\0" + icmp[4:]
    assert checksum(OURS6, group, zeroed) == int.from_bytes(icmp[2:4], "big")


def test_each_family_asks_on_its_own_ethertype() -> None:
    links = Links()
    s4 = solicitor(links)
    s6 = solicitor(links, source=OURS6, peer=PEER6)
    for _ in range(SILENT_SENDS + 1):
        s4.before_send()
        s6.before_send()
    assert links.ethertypes == [ETH_P_ARP, ETH_P_IPV6]
    assert links.opened[1].sent == [solicitation(MAC, OURS6, PEER6)]


def test_a_source_of_the_other_family_asks_nothing() -> None:
    links = Links()
    s = solicitor(links, source=OURS, peer=PEER6)
    for _ in range(SILENT_SENDS + 2):
        s.before_send()
    assert s.asked == 0
    assert all(link.closed for link in links.opened)
