"""ARP and neighbour-discovery frames, byte for byte, and their parsers."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import given
from hypothesis import strategies as st

from hbmon.io.resources import arp, ndisc
from hbmon.io.resources.packet import format_mac

MAC = bytes.fromhex("020000000001")
OTHER = bytes.fromhex("020000000002")
VIP = IPv4Address("198.51.100.80")
VIP6 = IPv6Address("2001:db8:100::80")


def test_garp_pair_bytes() -> None:
    request, reply = arp.garp_frames(MAC, VIP)
    head = "ffffffffffff0200000000010806000108000604"
    assert request.hex() == (
        head + "0001" + "020000000001" + "c6336450" + "000000000000" + "c6336450" + "00" * 18
    )
    assert reply.hex() == (
        head + "0002" + "020000000001" + "c6336450" + "020000000001" + "c6336450" + "00" * 18
    )
    assert len(request) == len(reply) == 60


def test_probe_bytes() -> None:
    frame = arp.probe_frame(MAC, VIP)
    p = arp.parse_arp(frame)
    assert p is not None
    assert (p.op, p.sha, p.spa, p.tha, p.tpa) == (
        arp.ARPOP_REQUEST,
        MAC,
        IPv4Address("0.0.0.0"),
        b"\0" * 6,
        VIP,
    )
    assert p.eth_dst == b"\xff" * 6


def test_parse_round_trip_and_claims() -> None:
    for frame in arp.garp_frames(OTHER, VIP):
        p = arp.parse_arp(frame)
        assert p is not None
        assert p.spa == p.tpa == VIP
        assert arp.claims(p, VIP, MAC)  # another host announces the address
        assert not arp.claims(p, VIP, OTHER)  # our own frame
        assert not arp.claims(p, IPv4Address("198.51.100.81"), MAC)
    # Linux's answer to a probe: a reply from the owner, target IP 0.0.0.0.
    answer = arp.build_arp(
        arp.ARPOP_REPLY, sha=OTHER, spa=VIP, tha=MAC, tpa=IPv4Address(0), eth_dst=MAC
    )
    p = arp.parse_arp(answer)
    assert p is not None
    assert arp.claims(p, VIP, MAC)
    # Someone else probing for it is not an answer.
    p = arp.parse_arp(arp.probe_frame(OTHER, VIP))
    assert p is not None
    assert not arp.claims(p, VIP, MAC)


def test_parse_rejects_other_frames() -> None:
    frame = bytearray(arp.garp_frames(MAC, VIP)[0])
    assert arp.parse_arp(bytes(frame[:30])) is None
    frame[12:14] = b"\x08\x00"
    assert arp.parse_arp(bytes(frame)) is None
    frame = bytearray(arp.garp_frames(MAC, VIP)[0])
    frame[14 + 5] = 16  # protocol length: not IPv4
    assert arp.parse_arp(bytes(frame)) is None


@given(st.binary(max_size=128))
def test_parsers_never_raise(data: bytes) -> None:
    arp.parse_arp(data)
    ndisc.parse_advert(data)


def test_ipv6_helpers() -> None:
    assert ndisc.solicited_node(VIP6) == IPv6Address("ff02::1:ff00:80")
    assert ndisc.solicited_node(IPv6Address("2001:db8::abcd:1234")) == IPv6Address(
        "ff02::1:ffcd:1234"
    )
    assert ndisc.multicast_mac(ndisc.ALL_NODES).hex() == "333300000001"
    assert format_mac(MAC) == "02:00:00:00:00:01"


def test_checksum_known_value() -> None:
    # An unsolicited NA for fe80::1 from fe80::1 to ff02::1, TLLA 02:00:00:00:00:01.
    # By hand: pseudo-header fe81 + ff03 + 0020 + 003a, message 8800 + 2000 +
    # fe80 + 0001 + 0201 + 0200 + 0001; total 3a861, folded a864, complement 579b.
    icmp = bytes.fromhex("8800000020000000fe8000000000000000000000000000010201020000000001")
    src = IPv6Address("fe80::1")
    assert ndisc.checksum(src, ndisc.ALL_NODES, icmp) == 0x579B


def test_unsolicited_na() -> None:
    frame = ndisc.unsolicited_na(MAC, VIP6)
    assert frame[:14].hex() == "33330000000102000000000186dd"
    assert frame[14:22].hex() == "6000000000203aff"  # 32-byte ICMPv6, hop limit 255
    adv = ndisc.parse_advert(frame)
    assert adv is not None
    assert (adv.src, adv.dst, adv.target, adv.target_mac) == (VIP6, ndisc.ALL_NODES, VIP6, MAC)
    assert adv.flags == ndisc.NA_OVERRIDE  # not solicited, not a router
    assert ndisc.claims(adv, VIP6, OTHER)
    assert not ndisc.claims(adv, VIP6, MAC)


def test_na_with_bad_checksum_or_hop_limit_is_ignored() -> None:
    frame = bytearray(ndisc.unsolicited_na(MAC, VIP6))
    frame[-1] ^= 1
    assert ndisc.parse_advert(bytes(frame)) is None
    frame = bytearray(ndisc.unsolicited_na(MAC, VIP6))
    frame[21] = 64
    assert ndisc.parse_advert(bytes(frame)) is None


def test_dad_probe() -> None:
    frame = ndisc.dad_probe(MAC, VIP6)
    assert frame[:6].hex() == "3333ff000080"
    assert IPv6Address(frame[22:38]) == IPv6Address("::")
    assert IPv6Address(frame[38:54]) == ndisc.solicited_node(VIP6)
    icmp = frame[54:78]
    assert icmp[0] == ndisc.ICMPV6_NS
    assert IPv6Address(icmp[8:24]) == VIP6
    assert len(frame) == 78  # no source link-layer option from the unspecified address
    assert ndisc.checksum(IPv6Address("::"), ndisc.solicited_node(VIP6), icmp) == 0
    assert ndisc.parse_advert(frame) is None  # a solicitation, not an advertisement


def test_an_answer_queued_but_not_read_by_the_end_of_the_window_still_counts() -> None:
    """The loop was too busy to read the answer in time: after the window, what the
    socket holds is looked at before the probe says the address is free."""
    import asyncio

    from hbmon.io.resources.packet import PACKET_OUTGOING, solicit

    class Busy:
        def __init__(self, held: list[tuple[bytes, int]]) -> None:
            self.held = held
            self.sent = 0

        async def send(self, frame: bytes) -> None:
            self.sent += 1

        async def recv(self) -> tuple[bytes, int]:
            await asyncio.Event().wait()  # nothing is read within the window
            raise AssertionError

        def queued(self) -> list[tuple[bytes, int]]:
            return self.held

    def answer(data: bytes) -> bytes | None:
        return b"owner" if data == b"reply" else None

    ours = Busy([(b"reply", PACKET_OUTGOING)])  # our own frame, looped back
    theirs = Busy([(b"noise", 0), (b"reply", 0)])
    assert asyncio.run(solicit(ours, b"probe", 0.02, 3, answer)) is None  # type: ignore[arg-type]
    assert asyncio.run(solicit(theirs, b"probe", 0.02, 3, answer)) == b"owner"  # type: ignore[arg-type]
    assert theirs.sent == 3
