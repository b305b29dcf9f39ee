"""rtnetlink's requests and replies as bytes (hbmon/io/resources/rtnetlink.py): each
request laid out as <linux/rtnetlink.h> says, each reply read back, with the
kernel's answers built here by hand. The socket side runs in the namespace
tests (tests/integration/test_resources_netns.py, tests/integration/test_rtnetlink_netns.py)."""

from __future__ import annotations

import socket
import struct

import pytest

from hbmon.io.resources import rtnetlink as rt
from hbmon.io.resources.netlink import Addr, Link, Route

HDR = struct.Struct("=IHHII")


def attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * ((-size) % 4)


def message(kind: int, body: bytes, flags: int = 0, seq: int = 1) -> bytes:
    return HDR.pack(16 + len(body), kind, flags, seq, 0) + body


def attrs_of(data: bytes, offset: int) -> dict[int, bytes]:
    out = {}
    while offset < len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        out[kind] = data[offset + 4 : offset + size]
        offset += (size + 3) & ~3
    return out


def test_an_address_request_is_what_ip_addr_sends() -> None:
    data = rt.build_address(
        9, add=True, index=3, address="198.51.100.80", prefixlen=24,
        broadcast="198.51.100.255", label="em1:0", nodad=False,
    )  # fmt: skip
    size, kind, flags, seq, pid = HDR.unpack_from(data)
    assert (size, kind, seq, pid) == (len(data), rt.RTM_NEWADDR, 9, 0)
    # A request, acknowledged, that creates and refuses an existing address (EEXIST).
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_ACK | rt.NLM_F_CREATE | rt.NLM_F_EXCL
    assert struct.unpack_from("=BBBBI", data, 16) == (socket.AF_INET, 24, 0, 0, 3)
    attrs = attrs_of(data, 24)
    packed = socket.inet_aton("198.51.100.80")
    assert attrs[rt.IFA_LOCAL] == attrs[rt.IFA_ADDRESS] == packed
    assert attrs[rt.IFA_BROADCAST] == socket.inet_aton("198.51.100.255")
    assert attrs[rt.IFA_LABEL] == b"em1:0\0"

    v6 = rt.build_address(10, add=False, index=4, address="2001:db8::80", prefixlen=64)
    _, kind, flags, _, _ = HDR.unpack_from(v6)
    assert (kind, flags) == (rt.RTM_DELADDR, rt.NLM_F_REQUEST | rt.NLM_F_ACK)
    assert struct.unpack_from("=BBBBI", v6, 16) == (socket.AF_INET6, 64, 0, 0, 4)
    assert attrs_of(v6, 24)[rt.IFA_ADDRESS] == socket.inet_pton(socket.AF_INET6, "2001:db8::80")
    nodad = rt.build_address(11, add=True, index=4, address="2001:db8::80", prefixlen=64,
                             nodad=True)  # fmt: skip
    assert struct.unpack_from("=BBBBI", nodad, 16)[2] == rt.IFA_F_NODAD


def test_dumps_and_a_link_request() -> None:
    _, kind, flags, seq, _ = HDR.unpack_from(rt.build_dump_addresses(5))
    assert (kind, flags, seq) == (rt.RTM_GETADDR, rt.NLM_F_REQUEST | rt.NLM_F_DUMP, 5)
    routes = rt.build_dump_routes(6, socket.AF_INET6)
    assert HDR.unpack_from(routes)[1] == rt.RTM_GETROUTE
    assert routes[16] == socket.AF_INET6
    link = rt.build_get_link(7, 12)
    assert HDR.unpack_from(link)[1:3] == (rt.RTM_GETLINK, rt.NLM_F_REQUEST)
    assert struct.unpack_from("=BxHiII", link, 16)[2] == 12


def test_replies_are_read_as_the_kernel_writes_them() -> None:
    mac = bytes.fromhex("020000000001")
    link = struct.pack("=BxHiII", 0, 1, 7, rt.IFF_UP | 0x1000, 0)
    link += attr(rt.IFLA_IFNAME, b"em1\0") + attr(rt.IFLA_ADDRESS, mac)
    v4 = struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 7)
    # A point-to-point address: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
    v4 += attr(rt.IFA_ADDRESS, socket.inet_aton("10.0.0.2"))
    v4 += attr(rt.IFA_LOCAL, socket.inet_aton("10.0.0.1")) + attr(rt.IFA_LABEL, b"em1\0")
    v6 = struct.pack("=BBBBI", socket.AF_INET6, 64, 0, 0, 7)
    v6 += attr(rt.IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, "2001:db8::1"))
    route = struct.pack("=BBBBBBBBI", socket.AF_INET, 24, 0, 0, 254, 2, 0, rt.RTN_UNICAST, 0)
    route += attr(rt.RTA_DST, socket.inet_aton("10.0.0.0")) + attr(rt.RTA_OIF, b"\7\0\0\0")
    default = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 254, 2, 0, rt.RTN_UNICAST, 0)
    local = struct.pack("=BBBBBBBBI", socket.AF_INET, 32, 0, 0, 255, 2, 0, 2, 0)  # table local
    datagram = b"".join(
        [
            message(rt.RTM_NEWLINK, link),
            message(rt.RTM_NEWADDR, v4, rt.NLM_F_MULTI),
            message(rt.RTM_NEWADDR, v6, rt.NLM_F_MULTI),
            message(rt.RTM_NEWROUTE, route, rt.NLM_F_MULTI),
            message(rt.RTM_NEWROUTE, default, rt.NLM_F_MULTI),
            message(rt.RTM_NEWROUTE, local, rt.NLM_F_MULTI),
            message(rt.NLMSG_DONE, b"\0\0\0\0"),
        ]
    )
    replies = list(rt.split(datagram))
    assert [r.kind for r in replies][-1] == rt.NLMSG_DONE
    assert rt.parse_link(replies[0].payload) == Link(index=7, name="em1", mac=mac, up=True)
    assert rt.parse_address(replies[1].payload) == Addr(7, socket.AF_INET, "10.0.0.1", 24, "em1")
    assert rt.parse_address(replies[2].payload) == Addr(7, socket.AF_INET6, "2001:db8::1", 64, None)
    assert rt.parse_route(replies[3].payload) == Route(socket.AF_INET, "10.0.0.0", 24, 7)
    assert rt.parse_route(replies[4].payload) == Route(socket.AF_INET, "0.0.0.0", 0, None)
    assert rt.parse_route(replies[5].payload) is None  # not the main table


@pytest.mark.parametrize("code", [0, 17, 19])
def test_an_error_message_carries_the_errno(code: int) -> None:
    reply = next(rt.split(message(rt.NLMSG_ERROR, struct.pack("=i", -code) + b"\0" * 16)))
    assert rt.error_of(reply) == code


def test_a_truncated_or_bad_datagram_ends_the_reading_quietly() -> None:
    good = message(rt.RTM_NEWLINK, b"\0" * 16)
    assert len(list(rt.split(good + good[:10]))) == 1
    assert list(rt.split(HDR.pack(8, 0, 0, 0, 0))) == []  # a length below the header
    broken = struct.pack("=BBBBI", socket.AF_INET, 8, 0, 0, 1) + struct.pack("=HH", 40, 1)
    assert rt.parse_address(broken) is None  # an attribute longer than the message


def test_a_lifetime_request_replaces_only_the_lifetimes() -> None:
    data = rt.build_lifetime(12, index=3, address="198.51.100.80", prefixlen=24, seconds=30,
                             nodad=False)  # fmt: skip
    _, kind, flags, seq, _ = HDR.unpack_from(data)
    assert (kind, seq) == (rt.RTM_NEWADDR, 12)
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_ACK | rt.NLM_F_REPLACE | rt.NLM_F_CREATE
    attrs = attrs_of(data, 24)
    assert struct.unpack("=IIII", attrs[rt.IFA_CACHEINFO]) == (30, 30, 0, 0)
    assert rt.IFA_LABEL not in attrs  # the kernel keeps the label and broadcast
    forever = rt.build_lifetime(13, index=3, address="2001:db8::80", prefixlen=64, seconds=None,
                                nodad=True)  # fmt: skip
    assert struct.unpack("=IIII", attrs_of(forever, 24)[rt.IFA_CACHEINFO])[:2] == (
        0xFFFFFFFF,
        0xFFFFFFFF,
    )
    assert struct.unpack_from("=BBBBI", forever, 16)[2] == rt.IFA_F_NODAD
