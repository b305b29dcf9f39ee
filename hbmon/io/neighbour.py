"""Keep a `ucast`/`ucast6` peer's link-layer address resolvable across a long silence.

Datagrams to a unicast peer go out only once the kernel's neighbour (ARP) entry
for it resolves. During a cut between the nodes that entry fails; from then on
the kernel holds each datagram until its next ARP request, and it asks once a
second (`net.ipv4.neigh.<iface>.retrans_time_ms`). So after the cut heals, a
node may stay deaf to its peer for up to a second, and both keep the address
that long: the 0.8–0.95 s tail of dual ownership after a heal (issue 14).

While a medium hears nothing from its peer, each datagram we send on it is
preceded by an ARP request of our own for the peer (IPv6: a neighbour
solicitation carrying our link-layer address). The first one after the heal
reaches the peer: a request addressed to it updates its entry for us, which
sends what it was holding, and its reply completes ours. Broadcast (IPv6: to
the peer's solicited-node group), as heartbeat's own `bcast` medium sends every
beat; and only while the peer is silent.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Protocol

from hbmon.io.resources.arp import ARPOP_REQUEST, ETH_P_ARP, ZERO_MAC, build_arp
from hbmon.io.resources.ndisc import ETH_P_IPV6, solicitation
from hbmon.io.resources.packet import PacketLink

IPAddress = IPv4Address | IPv6Address

# Sends without a datagram from the peer before we ask for its address: a beat or
# two lost on a healthy link must not set a broadcast going.
SILENT_SENDS = 3


class FrameLink(Protocol):
    """A send-only packet socket on one interface."""

    mac: bytes

    def send_now(self, frame: bytes) -> None: ...
    def close(self) -> None: ...


def source_address(iface: str, peer: IPAddress) -> IPAddress | None:
    """Our address the kernel would send to `peer` from on `iface`; nothing is sent."""
    try:
        if isinstance(peer, IPv4Address):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
                s.connect((str(peer), 9))
                return ip_address(s.getsockname()[0])
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
            s.connect((str(peer), 9, 0, socket.if_nametoindex(iface)))
            return ip_address(s.getsockname()[0].partition("%")[0])
    except (OSError, ValueError):
        return None


def request_frame(mac: bytes, ours: IPv4Address, peer: IPv4Address) -> bytes:
    """Who has `peer`? Tell `ours` (at `mac`): a plain ARP request, broadcast."""
    return build_arp(ARPOP_REQUEST, sha=mac, spa=ours, tha=ZERO_MAC, tpa=peer)


def frame_for(mac: bytes, ours: IPAddress, peer: IPAddress) -> bytes | None:
    """The question for `peer`'s link address in its family; None if `ours` is not in it."""
    if isinstance(peer, IPv4Address) and isinstance(ours, IPv4Address):
        return request_frame(mac, ours, peer)
    if isinstance(peer, IPv6Address) and isinstance(ours, IPv6Address):
        return solicitation(mac, ours, peer)
    return None


def _open_link(iface: str, ethertype: int) -> FrameLink:
    return PacketLink(iface, ethertype, listen=False).open()


class PeerSolicitor:
    """Asks for one unicast peer's link address while that peer is silent."""

    __slots__ = ("_frame", "_iface", "_link", "_open", "_peer", "_silent", "_source", "asked")

    def __init__(
        self,
        iface: str,
        peer: IPAddress,
        *,
        open_link: Callable[[str, int], FrameLink] = _open_link,
        source: Callable[[str, IPAddress], IPAddress | None] = source_address,
    ) -> None:
        self._iface = iface
        self._peer = peer
        self._open = open_link
        self._source = source
        self._link: FrameLink | None = None
        self._frame = b""
        self._silent = 0
        self.asked = 0  # ARP requests sent (for tests and curious operators)

    @property
    def peer(self) -> str:
        return str(self._peer)

    def heard(self) -> None:
        """A datagram from the peer arrived: its address resolves again."""
        self._silent = 0
        if self._link is not None:
            link, self._link = self._link, None
            link.close()

    def before_send(self) -> None:
        """Called before each datagram to the peer; asks for its address when silent."""
        self._silent += 1
        if self._silent <= SILENT_SENDS:
            return
        try:
            if self._link is None:
                # Our address may have been added after we started: look it up per episode.
                ours = self._source(self._iface, self._peer)
                if ours is None:
                    return
                ethertype = ETH_P_ARP if isinstance(self._peer, IPv4Address) else ETH_P_IPV6
                self._link = self._open(self._iface, ethertype)
                frame = frame_for(self._link.mac, ours, self._peer)
                if frame is None:
                    self.close()
                    return
                self._frame = frame
            self._link.send_now(self._frame)
            self.asked += 1
        except OSError:
            # Only a shortcut past the kernel's own retries: without it the peer is
            # heard again at the kernel's next ARP request, as before.
            self.close()

    def close(self) -> None:
        if self._link is not None:
            link, self._link = self._link, None
            link.close()
