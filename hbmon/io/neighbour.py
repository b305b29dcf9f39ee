"""Keep a `ucast` peer's link-layer address resolvable across a long silence.

Datagrams to a unicast peer go out only once the kernel's neighbour (ARP) entry
for it resolves. During a cut between the nodes that entry fails; from then on
the kernel holds each datagram until its next ARP request, and it asks once a
second (`net.ipv4.neigh.<iface>.retrans_time_ms`). So after the cut heals, a
node may stay deaf to its peer for up to a second, and both keep the address
that long: the 0.8–0.95 s tail of dual ownership after a heal (issue 14).

While a medium hears nothing from its peer, each datagram we send on it is
preceded by an ARP request of our own for the peer. The first one after the
heal reaches the peer: a request addressed to it updates its entry for us,
which sends what it was holding, and its reply completes ours. Broadcast, as
heartbeat's own `bcast` medium sends every beat; and only while the peer is
silent.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Protocol

from hbmon.io.resources.arp import ARPOP_REQUEST, ETH_P_ARP, ZERO_MAC, build_arp
from hbmon.io.resources.packet import PacketLink

# Sends without a datagram from the peer before we ask for its address: a beat or
# two lost on a healthy link must not set a broadcast going.
SILENT_SENDS = 3


class FrameLink(Protocol):
    """A send-only packet socket on one interface."""

    mac: bytes

    def send_now(self, frame: bytes) -> None: ...
    def close(self) -> None: ...


def source_address(iface: str, peer: str) -> IPv4Address | None:
    """Our address the kernel would send to `peer` from on `iface`; nothing is sent."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
            s.connect((peer, 9))
            return IPv4Address(s.getsockname()[0])
    except OSError:
        return None


def request_frame(mac: bytes, ours: IPv4Address, peer: IPv4Address) -> bytes:
    """Who has `peer`? Tell `ours` (at `mac`): a plain ARP request, broadcast."""
    return build_arp(ARPOP_REQUEST, sha=mac, spa=ours, tha=ZERO_MAC, tpa=peer)


def _open_link(iface: str) -> FrameLink:
    return PacketLink(iface, ETH_P_ARP, listen=False).open()


class PeerSolicitor:
    """Asks for one unicast peer's link address while that peer is silent."""

    __slots__ = ("_frame", "_iface", "_link", "_open", "_peer", "_silent", "_source", "asked")

    def __init__(
        self,
        iface: str,
        peer: IPv4Address,
        *,
        open_link: Callable[[str], FrameLink] = _open_link,
        source: Callable[[str, str], IPv4Address | None] = source_address,
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
                ours = self._source(self._iface, str(self._peer))
                if ours is None:
                    return
                self._link = self._open(self._iface)
                self._frame = request_frame(self._link.mac, ours, self._peer)
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
