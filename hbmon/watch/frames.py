"""Captured link-layer frames → heartbeat UDP datagrams (pure; no sockets).

A frame from an AF_PACKET socket on an Ethernet device: Ethernet header,
optional 802.1Q/802.1ad tags, IPv4 or IPv6, UDP. Only unfragmented datagrams
to heartbeat's `udpport` are returned (heartbeat always sends *to* udpport);
a fragmented datagram cannot be verified piecewise and is reported as such.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_HLEN = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_ETHERTYPES = (0x8100, 0x88A8)
IPPROTO_UDP = 17
UDP_HLEN = 8
IPV6_HLEN = 40
IPV6_FRAGMENT = 44
_IPV4_MF = 0x2000
_IPV4_OFFSET = 0x1FFF
# Socket packet types (linux/if_packet.h).
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4


@dataclass(frozen=True, slots=True)
class Datagram:
    src: str  # "ip:port"
    dst: str
    payload: bytes


class Fragment(Exception):
    """An IP fragment of a heartbeat datagram (not reassembled)."""


def parse(frame: bytes, port: int) -> Datagram | None:
    """The UDP datagram to `port` in `frame`, or None if the frame is anything else.

    Raises `Fragment` for a fragment of a datagram that may be heartbeat's (the
    first fragment names the port; later ones cannot, so any non-first IPv4
    fragment is reported).
    """
    if len(frame) < ETH_HLEN:
        return None
    off = 12
    (ethertype,) = struct.unpack_from("!H", frame, off)
    while ethertype in VLAN_ETHERTYPES and len(frame) >= off + 6:
        off += 4
        (ethertype,) = struct.unpack_from("!H", frame, off)
    off += 2
    if ethertype == ETHERTYPE_IPV4:
        return _ipv4(frame, off, port)
    if ethertype == ETHERTYPE_IPV6:
        return _ipv6(frame, off, port)
    return None


def _ipv4(frame: bytes, off: int, port: int) -> Datagram | None:
    if len(frame) < off + 20:
        return None
    vihl, total, flags, proto = frame[off], 0, 0, frame[off + 9]
    if vihl >> 4 != 4:
        return None
    ihl = (vihl & 0x0F) * 4
    (total,) = struct.unpack_from("!H", frame, off + 2)
    (flags,) = struct.unpack_from("!H", frame, off + 6)
    if proto != IPPROTO_UDP or ihl < 20 or total < ihl + UDP_HLEN:
        return None
    src = str(ipaddress.IPv4Address(frame[off + 12 : off + 16]))
    dst = str(ipaddress.IPv4Address(frame[off + 16 : off + 20]))
    if flags & _IPV4_OFFSET:
        raise Fragment(f"IPv4 fragment from {src}")
    end = off + total
    if len(frame) < end:
        return None  # truncated capture
    udp = frame[off + ihl : end]
    dgram = _udp(udp, src, dst, port, ipv6=False)
    if dgram is not None and flags & _IPV4_MF:
        raise Fragment(f"fragmented datagram from {dgram.src}")
    return dgram


def _ipv6(frame: bytes, off: int, port: int) -> Datagram | None:
    if len(frame) < off + IPV6_HLEN or frame[off] >> 4 != 6:
        return None
    (plen,) = struct.unpack_from("!H", frame, off + 4)
    nxt = frame[off + 6]
    src = str(ipaddress.IPv6Address(frame[off + 8 : off + 24]))
    dst = str(ipaddress.IPv6Address(frame[off + 24 : off + 40]))
    if nxt == IPV6_FRAGMENT:
        raise Fragment(f"IPv6 fragment from {src}")
    if nxt != IPPROTO_UDP:
        return None
    start = off + IPV6_HLEN
    if len(frame) < start + plen:
        return None
    return _udp(frame[start : start + plen], src, dst, port, ipv6=True)


def _udp(udp: bytes, src: str, dst: str, port: int, *, ipv6: bool) -> Datagram | None:
    if len(udp) < UDP_HLEN:
        return None
    sport, dport, length = struct.unpack_from("!HHH", udp, 0)
    if dport != port or length < UDP_HLEN or length > len(udp):
        return None
    fmt = "[{}]:{}" if ipv6 else "{}:{}"
    return Datagram(fmt.format(src, sport), fmt.format(dst, dport), bytes(udp[UDP_HLEN:length]))


# `tcpdump -dd "udp dst port 694"` (Ethernet): IPv6 with UDP as the next header,
# or IPv4 UDP that is not a non-first fragment; the port is patched in.
_FILTER_IPV6_PORT = 5
_FILTER_IPV4_PORT = 13
_FILTER: tuple[tuple[int, int, int, int], ...] = (
    (0x28, 0, 0, 0x0000000C),
    (0x15, 0, 4, 0x000086DD),
    (0x30, 0, 0, 0x00000014),
    (0x15, 0, 11, 0x00000011),
    (0x28, 0, 0, 0x00000038),
    (0x15, 8, 9, 0),
    (0x15, 0, 8, 0x00000800),
    (0x30, 0, 0, 0x00000017),
    (0x15, 0, 6, 0x00000011),
    (0x28, 0, 0, 0x00000014),
    (0x45, 4, 0, 0x00001FFF),
    (0xB1, 0, 0, 0x0000000E),
    (0x48, 0, 0, 0x00000010),
    (0x15, 0, 1, 0),
    (0x06, 0, 0, 0x00040000),
    (0x06, 0, 0, 0x00000000),
)


def bpf_program(port: int) -> bytes:
    """The classic BPF program (struct sock_filter[]) keeping UDP to `port`.

    Only an optimisation in the kernel: `parse()` checks every frame again (the
    socket may see frames between its creation and the filter's attachment).
    """
    out = bytearray()
    for i, (code, jt, jf, k) in enumerate(_FILTER):
        if i in (_FILTER_IPV6_PORT, _FILTER_IPV4_PORT):
            k = port
        out += struct.pack("HBBI", code, jt, jf, k)
    return bytes(out)


FILTER_LEN = len(_FILTER)
