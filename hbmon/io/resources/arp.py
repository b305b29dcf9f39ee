"""Gratuitous ARP and RFC 5227 ARP probes (IPv4), over a raw packet socket.

Frames (pure, tested byte for byte):

- announcement pair: a broadcast request and a broadcast reply, both with
  sender = target = the address and sender MAC = ours (what heartbeat's
  libnet `send_arp` sends; some devices only heed one of the two);
- probe (RFC 5227 §2.1.1): a broadcast request with sender IP 0.0.0.0, so no
  one's cache learns anything from it. A host that holds the address replies
  to it (Linux does); that reply, or any ARP packet with the address as
  sender from a MAC that is not ours, means the address is in use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from hbmon.io.resources.packet import (
    BROADCAST_MAC,
    ETH_HEADER_LEN,
    MAC_LEN,
    PacketLink,
    ethernet,
    solicit,
)

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
ZERO_MAC = b"\0" * MAC_LEN
ZERO_IP = IPv4Address(0)
_ARP = struct.Struct("!HHBBH6s4s6s4s")


@dataclass(frozen=True, slots=True)
class ArpPacket:
    eth_dst: bytes
    eth_src: bytes
    op: int
    sha: bytes
    spa: IPv4Address
    tha: bytes
    tpa: IPv4Address


def build_arp(
    op: int,
    *,
    sha: bytes,
    spa: IPv4Address,
    tha: bytes,
    tpa: IPv4Address,
    eth_dst: bytes = BROADCAST_MAC,
) -> bytes:
    """A whole Ethernet frame carrying one ARP packet (Ethernet/IPv4)."""
    body = _ARP.pack(ARPHRD_ETHER, ETH_P_IP, MAC_LEN, 4, op, sha, spa.packed, tha, tpa.packed)
    return ethernet(eth_dst, sha, ETH_P_ARP, body)


def garp_frames(mac: bytes, ip: IPv4Address) -> tuple[bytes, bytes]:
    """The gratuitous request and reply announcing that `ip` is at `mac`."""
    request = build_arp(ARPOP_REQUEST, sha=mac, spa=ip, tha=ZERO_MAC, tpa=ip)
    # RFC 2002 §4.6: a gratuitous reply names the new mapping as the target too.
    reply = build_arp(ARPOP_REPLY, sha=mac, spa=ip, tha=mac, tpa=ip)
    return request, reply


def probe_frame(mac: bytes, ip: IPv4Address) -> bytes:
    """RFC 5227 ARP probe: who has `ip`? (sender IP 0.0.0.0)."""
    return build_arp(ARPOP_REQUEST, sha=mac, spa=ZERO_IP, tha=ZERO_MAC, tpa=ip)


def parse_arp(frame: bytes) -> ArpPacket | None:
    """An Ethernet/IPv4 ARP packet, or None for anything else."""
    end = ETH_HEADER_LEN + _ARP.size
    if len(frame) < end or int.from_bytes(frame[12:14], "big") != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack(frame[ETH_HEADER_LEN:end])
    if (htype, ptype, hlen, plen) != (ARPHRD_ETHER, ETH_P_IP, MAC_LEN, 4):
        return None
    return ArpPacket(
        eth_dst=frame[0:6],
        eth_src=frame[6:12],
        op=op,
        sha=sha,
        spa=IPv4Address(spa),
        tha=tha,
        tpa=IPv4Address(tpa),
    )


def claims(packet: ArpPacket, ip: IPv4Address, own_mac: bytes) -> bool:
    """Does this packet show another host using `ip`? (RFC 5227 §2.1.1 conflict rule)."""
    return packet.spa == ip and packet.sha != own_mac


async def send_garp(iface: str, ip: IPv4Address) -> None:
    """One announcement pair (request, then reply) on `iface`."""
    async with PacketLink(iface, ETH_P_ARP, listen=False) as link:
        for frame in garp_frames(link.mac, ip):
            await link.send(frame)


async def probe_owner(ip: IPv4Address, iface: str, window: float, count: int = 3) -> bytes | None:
    """`count` probes over `window` seconds; the MAC of another host using `ip`, or None."""
    async with PacketLink(iface, ETH_P_ARP) as link:
        own = link.mac

        def answer(frame: bytes) -> bytes | None:
            packet = parse_arp(frame)
            if packet is not None and claims(packet, ip, own):
                return packet.sha
            return None

        return await solicit(link, probe_frame(own, ip), window, count, answer)


async def probe(ip: IPv4Address, iface: str, timeout: float) -> bool:  # noqa: ASYNC109
    """True when another host on `iface`'s segment answers for `ip` within `timeout`.

    `timeout` is the listening window (probes are spread over it), not a limit
    on a blocking call, hence a plain parameter.
    """
    return await probe_owner(ip, iface, timeout) is not None
