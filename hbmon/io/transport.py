"""UDP heartbeat media: one socket per ucast/bcast/mcast line, bound to its interface.

Heartbeat sends every message on every medium and receives on `udpport` of each
medium's interface (spec §4.1). Each socket here is bound with SO_BINDTODEVICE,
so a packet is attributed to the interface it really arrived on; that is what
makes per-link (`iface/peer`) health possible.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hbmon.config.model import BcastMedium, McastMedium, Medium, UcastMedium
from hbmon.errors import StartupError

# Large enough for heartbeat's biggest message (256 KiB) in one read.
MAX_DATAGRAM = 262144 + 1024
SIOCGIFBRDADDR = 0x8919
LIMITED_BROADCAST = "255.255.255.255"

Receiver = Callable[[str, bytes, str], None]  # (iface, datagram, source address)


def describe(medium: Medium) -> str:
    match medium:
        case UcastMedium(iface=iface, peer=peer):
            return f"ucast {iface} {peer}"
        case BcastMedium(iface=iface):
            return f"bcast {iface}"
        case McastMedium(iface=iface, group=group, port=port, ttl=ttl, loop=loop):
            return f"mcast {iface} {group} {port} {ttl} {int(loop)}"


def interface_index(iface: str, medium: Medium) -> int:
    try:
        return socket.if_nametoindex(iface)
    except OSError:
        raise StartupError(f"interface {iface} not found (medium `{describe(medium)}`)") from None


def broadcast_address(sock: socket.socket, iface: str) -> str:
    req = struct.pack("256s", iface.encode()[:15])
    try:
        res = fcntl.ioctl(sock.fileno(), SIOCGIFBRDADDR, req)
    except OSError as exc:
        raise StartupError(f"interface {iface} has no IPv4 broadcast address: {exc}") from None
    addr = socket.inet_ntoa(res[20:24])
    # An address added without `brd` has none; the limited broadcast, sent on
    # a socket bound to the interface, reaches the same segment.
    return LIMITED_BROADCAST if addr == "0.0.0.0" else addr


@dataclass(frozen=True, slots=True)
class Endpoint:
    medium: Medium
    sock: socket.socket
    destination: tuple[str, int]


def open_endpoint(medium: Medium) -> Endpoint:
    """Create and bind the socket for one medium; StartupError with the reason if we can't."""
    interface_index(medium.iface, medium)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, medium.iface.encode())
        match medium:
            case UcastMedium(peer=peer, port=port):
                sock.bind(("0.0.0.0", port))
                dest = (peer, port)
            case BcastMedium(iface=iface, port=port):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.bind(("0.0.0.0", port))
                dest = (broadcast_address(sock, iface), port)
            case McastMedium(iface=iface, group=group, port=port, ttl=ttl, loop=loop):
                ifindex = socket.if_nametoindex(iface)
                mreqn = socket.inet_aton(group) + struct.pack("=4si", b"\0\0\0\0", ifindex)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(loop))
                sock.bind(("0.0.0.0", port))
                dest = (group, port)
        sock.setblocking(False)
    except PermissionError:
        sock.close()
        raise StartupError(
            f"medium `{describe(medium)}`: permission denied; "
            "hbmon needs root or CAP_NET_RAW + CAP_NET_BIND_SERVICE"
        ) from None
    except StartupError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"medium `{describe(medium)}`: UDP port {medium.port} is in use "
                "on this host (is heartbeat still running?)"
            ) from None
        raise StartupError(f"medium `{describe(medium)}`: {exc}") from None
    return Endpoint(medium, sock, dest)


def probe_port(medium: Medium) -> None:
    """Refuse a port another program holds on this interface (heartbeat itself, say).

    The media sockets set SO_REUSEADDR so several media can share an interface;
    that would also let us bind silently next to a foreign owner, so probe first
    without it.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, medium.iface.encode())
        probe.bind(("0.0.0.0", medium.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"medium `{describe(medium)}`: UDP port {medium.port} is in use "
                "on this host (is heartbeat still running?)"
            ) from None
        if isinstance(exc, PermissionError):
            raise StartupError(
                f"medium `{describe(medium)}`: permission denied; "
                "hbmon needs root or CAP_NET_RAW + CAP_NET_BIND_SERVICE"
            ) from None
        raise StartupError(f"medium `{describe(medium)}`: {exc}") from None
    finally:
        probe.close()


class _MediumProtocol(asyncio.DatagramProtocol):
    def __init__(self, iface: str, receiver: Receiver) -> None:
        self._iface = iface
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._receiver(self._iface, data, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that is not listening yet: normal at start.
        pass


def _factory(protocol: _MediumProtocol) -> Callable[[], _MediumProtocol]:
    return lambda: protocol


class Transport:
    """All media of one node. `send` puts a datagram on every medium."""

    def __init__(self, media: tuple[Medium, ...]) -> None:
        self._media = media
        self._endpoints: list[tuple[Endpoint, asyncio.DatagramTransport]] = []
        self.send_errors = 0

    async def open(self, receiver: Receiver) -> None:
        loop = asyncio.get_running_loop()
        endpoints = []
        for iface, port in sorted({(m.iface, m.port) for m in self._media}):
            medium = next(m for m in self._media if (m.iface, m.port) == (iface, port))
            interface_index(iface, medium)
            probe_port(medium)
        try:
            for medium in self._media:
                endpoints.append(open_endpoint(medium))
        except StartupError:
            for ep in endpoints:
                ep.sock.close()
            raise
        for ep in endpoints:
            protocol = _MediumProtocol(ep.medium.iface, receiver)
            transport, _ = await loop.create_datagram_endpoint(_factory(protocol), sock=ep.sock)
            self._endpoints.append((ep, transport))

    def send(self, datagram: bytes) -> None:
        for ep, transport in self._endpoints:
            try:
                transport.sendto(datagram, ep.destination)
            except OSError:
                self.send_errors += 1

    def close(self) -> None:
        for _, transport in self._endpoints:
            transport.close()
        self._endpoints.clear()
