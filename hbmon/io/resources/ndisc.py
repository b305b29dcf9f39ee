"""IPv6 neighbour discovery for floating addresses: unsolicited NA and a DAD-style probe.

Frames are built whole (Ethernet + IPv6 + ICMPv6, hop limit 255, checksum
over the pseudo-header) and sent on a raw packet socket, like the ARP side:

- unsolicited neighbour advertisement (RFC 4861 §7.2.6): from the address to
  all-nodes (ff02::1), Override set, Solicited clear, with our MAC as the
  target link-layer address option;
- duplicate address probe (RFC 4862 §5.4.2): a neighbour solicitation from
  the unspecified address to the target's solicited-node group. A host that
  holds the address answers with an advertisement to all-nodes; an
  advertisement for the target from a MAC that is not ours means in use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

from hbmon.io.resources.packet import (
    ETH_HEADER_LEN,
    MAC_LEN,
    PacketLink,
    ethernet,
    solicit,
)

ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
ND_HOP_LIMIT = 255
ICMPV6_NS = 135
ICMPV6_NA = 136
NA_ROUTER = 0x80
NA_SOLICITED = 0x40
NA_OVERRIDE = 0x20
OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
ALL_NODES = IPv6Address("ff02::1")
UNSPECIFIED = IPv6Address("::")
IPV6_HEADER_LEN = 40
_IPV6 = struct.Struct("!IHBB16s16s")


@dataclass(frozen=True, slots=True)
class Advert:
    """A neighbour advertisement as seen on the wire."""

    eth_src: bytes
    src: IPv6Address
    dst: IPv6Address
    flags: int
    target: IPv6Address
    target_mac: bytes | None  # the target link-layer address option, if any


def multicast_mac(group: IPv6Address) -> bytes:
    """RFC 2464 §7: 33:33 + the low 32 bits of the group."""
    return b"\x33\x33" + group.packed[12:]


def solicited_node(ip: IPv6Address) -> IPv6Address:
    """ff02::1:ffXX:XXXX for the low 24 bits of `ip`."""
    return IPv6Address(IPv6Address("ff02::1:ff00:0").packed[:13] + ip.packed[13:])


def checksum(src: IPv6Address, dst: IPv6Address, icmp: bytes) -> int:
    """The ICMPv6 checksum over the IPv6 pseudo-header (RFC 8200 §8.1)."""
    data = src.packed + dst.packed + struct.pack("!I3xB", len(icmp), IPPROTO_ICMPV6) + icmp
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(eth_src: bytes, src: IPv6Address, dst: IPv6Address, icmp: bytearray) -> bytes:
    icmp[2:4] = checksum(src, dst, bytes(icmp)).to_bytes(2, "big")
    header = _IPV6.pack(6 << 28, len(icmp), IPPROTO_ICMPV6, ND_HOP_LIMIT, src.packed, dst.packed)
    return ethernet(multicast_mac(dst), eth_src, ETH_P_IPV6, header + bytes(icmp))


def unsolicited_na(mac: bytes, ip: IPv6Address) -> bytes:
    """An unsolicited advertisement: `ip` is at `mac`, replace what you cached."""
    icmp = bytearray(struct.pack("!BBHB3x16s", ICMPV6_NA, 0, 0, NA_OVERRIDE, ip.packed))
    icmp += struct.pack("!BB6s", OPT_TARGET_LLADDR, 1, mac)
    return _frame(mac, ip, ALL_NODES, icmp)


def dad_probe(mac: bytes, ip: IPv6Address) -> bytes:
    """A duplicate address detection solicitation for `ip` (no source link-layer option)."""
    icmp = bytearray(struct.pack("!BBH4x16s", ICMPV6_NS, 0, 0, ip.packed))
    return _frame(mac, UNSPECIFIED, solicited_node(ip), icmp)


def solicitation(mac: bytes, ours: IPv6Address, peer: IPv6Address) -> bytes:
    """Where is `peer`? A neighbour solicitation from `ours` with our link-layer
    address, so the peer's cache learns (or repairs) its entry for us from it."""
    icmp = bytearray(struct.pack("!BBH4x16s", ICMPV6_NS, 0, 0, peer.packed))
    icmp += struct.pack("!BB6s", OPT_SOURCE_LLADDR, 1, mac)
    return _frame(mac, ours, solicited_node(peer), icmp)


def parse_advert(frame: bytes) -> Advert | None:
    """A neighbour advertisement with a valid checksum and hop limit, or None."""
    if len(frame) < ETH_HEADER_LEN + IPV6_HEADER_LEN + 24:
        return None
    if int.from_bytes(frame[12:14], "big") != ETH_P_IPV6:
        return None
    ip_start = ETH_HEADER_LEN
    vtf, plen, nxt, hops, src, dst = _IPV6.unpack(frame[ip_start : ip_start + IPV6_HEADER_LEN])
    if vtf >> 28 != 6 or nxt != IPPROTO_ICMPV6 or hops != ND_HOP_LIMIT:
        return None
    icmp = frame[ip_start + IPV6_HEADER_LEN : ip_start + IPV6_HEADER_LEN + plen]
    if len(icmp) != plen or plen < 24 or icmp[0] != ICMPV6_NA or icmp[1] != 0:
        return None
    src_ip, dst_ip = IPv6Address(src), IPv6Address(dst)
    if checksum(src_ip, dst_ip, icmp) != 0:
        return None
    target_mac = None
    options = icmp[24:]
    while len(options) >= 8:
        kind, units = options[0], options[1]
        if units == 0:
            break
        if kind == OPT_TARGET_LLADDR:
            target_mac = bytes(options[2 : 2 + MAC_LEN])
        options = options[units * 8 :]
    return Advert(
        eth_src=frame[6:12],
        src=src_ip,
        dst=dst_ip,
        flags=icmp[4],
        target=IPv6Address(icmp[8:24]),
        target_mac=target_mac,
    )


def claims(advert: Advert, ip: IPv6Address, own_mac: bytes) -> bool:
    """Does this advertisement show another host holding `ip`?"""
    return advert.target == ip and advert.eth_src != own_mac


async def send_na(iface: str, ip: IPv6Address) -> None:
    """One unsolicited neighbour advertisement for `ip` on `iface`."""
    async with PacketLink(iface, ETH_P_IPV6, listen=False) as link:
        await link.send(unsolicited_na(link.mac, ip))


async def probe_owner(ip: IPv6Address, iface: str, window: float, count: int = 3) -> bytes | None:
    """DAD probes over `window` seconds; the MAC of another host holding `ip`, or None."""
    async with PacketLink(iface, ETH_P_IPV6) as link:
        own = link.mac

        def answer(frame: bytes) -> bytes | None:
            advert = parse_advert(frame)
            if advert is not None and claims(advert, ip, own):
                return advert.target_mac or advert.eth_src
            return None

        return await solicit(link, dad_probe(own, ip), window, count, answer)


async def probe(ip: IPv6Address, iface: str, timeout: float) -> bool:  # noqa: ASYNC109
    """True when another host on `iface`'s segment answers for `ip` within `timeout`.

    `timeout` is the listening window (probes are spread over it), not a limit
    on a blocking call, hence a plain parameter.
    """
    return await probe_owner(ip, iface, timeout) is not None
