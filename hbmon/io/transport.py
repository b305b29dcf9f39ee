"""UDP heartbeat media: one socket per ucast/bcast/mcast(6) line, bound to its interface.

Heartbeat sends every message on every medium and receives on `udpport` of each
medium's interface (spec §4.1). Each socket here is bound with SO_BINDTODEVICE,
so a packet is attributed to the interface it really arrived on; that is what
makes per-link (`iface/peer`) health possible. IPv6 sockets (ucast6, mcast6)
are IPv6-only, so an IPv4 and an IPv6 medium on one interface and port never
take each other's datagrams.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hbmon.config.model import (
    BcastMedium,
    Mcast6Medium,
    McastMedium,
    Ucast6Medium,
    UcastMedium,
    UdpMedium,
)
from hbmon.errors import StartupError
from hbmon.io.arrival import ANCILLARY_SPACE, Stamps
from hbmon.io.arrival import enable as enable_timestamps
from hbmon.io.neighbour import PeerSolicitor

# Large enough for heartbeat's biggest message (256 KiB) in one read.
MAX_DATAGRAM = 262144 + 1024
SIOCGIFBRDADDR = 0x8919
LIMITED_BROADCAST = "255.255.255.255"

# (iface, datagram, source address, arrival time on the loop's clock)
Receiver = Callable[[str, bytes, str, float], None]


def describe(medium: UdpMedium) -> str:
    match medium:
        case UcastMedium(iface=iface, peer=peer):
            return f"ucast {iface} {peer}"
        case BcastMedium(iface=iface):
            return f"bcast {iface}"
        case McastMedium(iface=iface, group=group, port=port, ttl=ttl, loop=loop):
            return f"mcast {iface} {group} {port} {ttl} {int(loop)}"
        case Ucast6Medium(iface=iface, peer=peer):
            return f"ucast6 {iface} {peer}"
        case Mcast6Medium(iface=iface, group=group, port=port, hops=hops, loop=loop):
            return f"mcast6 {iface} {group} {port} {hops} {int(loop)}"


def family(medium: UdpMedium) -> socket.AddressFamily:
    return socket.AF_INET6 if isinstance(medium, Ucast6Medium | Mcast6Medium) else socket.AF_INET


def ipv6_destination(address: str, port: int, ifindex: int) -> tuple[str, int, int, int]:
    """sockaddr_in6 for a ucast6 peer or mcast6 group: a link-local (or link-scope
    multicast) address gets the medium's interface as its scope, as heartbeat's
    ucast6 does; an explicit `%scope` must name that interface."""
    addr, _, scope = address.partition("%")
    ip = ipaddress.IPv6Address(addr)
    scoped = ip.is_link_local or (ip.is_multicast and ip.packed[1] & 0x0F == 0x2)
    if scope:
        given = int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
        if given != ifindex:
            raise StartupError(
                f"{address}: scope {scope} is not the medium's interface (index {ifindex})"
            )
    return (addr, port, 0, ifindex if scoped or scope else 0)


def interface_index(iface: str, medium: UdpMedium) -> int:
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
    medium: UdpMedium
    sock: socket.socket
    destination: tuple[str, int] | tuple[str, int, int, int]


def open_endpoint(medium: UdpMedium) -> Endpoint:
    """Create and bind the socket for one medium; StartupError with the reason if we can't."""
    ifindex = interface_index(medium.iface, medium)
    sock = socket.socket(family(medium), socket.SOCK_DGRAM)
    dest: tuple[str, int] | tuple[str, int, int, int]
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, medium.iface.encode())
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
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
            case Ucast6Medium(peer=peer, port=port):
                dest = ipv6_destination(peer, port, ifindex)
                sock.bind(("::", port))
            case Mcast6Medium(group=group, port=port, hops=hops, loop=loop):
                mreq6 = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(loop))
                sock.bind(("::", port))
                dest = ipv6_destination(group, port, ifindex)
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


def probe_port(medium: UdpMedium) -> None:
    """Refuse a port another program holds on this interface (heartbeat itself, say).

    The media sockets set SO_REUSEADDR so several media can share an interface;
    that would also let us bind silently next to a foreign owner, so probe first
    without it.
    """
    probe = socket.socket(family(medium), socket.SOCK_DGRAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, medium.iface.encode())
        if probe.family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(("::", medium.port))
        else:
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


class CopyFilter:
    """Drops the copy of a message that a second medium on the same interface brings.

    Links are named by interface, as heartbeat names them, so `ucast em1 <v4>` and
    `ucast6 em1 <v6>` are one link that hears every message twice. The core takes
    a second copy on one link for a replay; the expected copy from the link's
    other medium is dropped here instead, silently. A copy the same medium brings
    twice still goes on, and the core judges it.
    """

    KEEP = 256  # recent messages remembered per shared interface

    def __init__(self, media: tuple[UdpMedium, ...]) -> None:
        ifaces = [m.iface for m in media]
        self._shared = {i for i in ifaces if ifaces.count(i) > 1}
        self._recent: dict[str, dict[int, int]] = {}

    def first(self, medium: int, iface: str, data: bytes) -> bool:
        if iface not in self._shared:
            return True
        recent = self._recent.setdefault(iface, {})
        key = hash(data)
        seen_by = recent.get(key)
        if seen_by is None:
            recent[key] = medium
            if len(recent) > self.KEEP:
                del recent[next(iter(recent))]
            return True
        return seen_by == medium


class _MediumReader:
    """Reads one medium's socket when the loop says it is readable, with the kernel's
    arrival time of each datagram (hbmon/io/arrival.py).

    Not asyncio's datagram transport: that reads one datagram per loop pass and
    has no ancillary data, so no receive timestamp.
    """

    __slots__ = (
        "_buffer",
        "_copies",
        "_iface",
        "_index",
        "_loop",
        "_receiver",
        "_sock",
        "_solicitor",
        "_view",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ep: Endpoint,
        index: int,
        receiver: Receiver,
        copies: CopyFilter,
        solicitor: PeerSolicitor | None,
    ) -> None:
        self._loop = loop
        self._solicitor = solicitor
        self._sock = ep.sock
        self._index = index
        self._iface = ep.medium.iface
        self._receiver = receiver
        self._copies = copies
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)

    def readable(self) -> None:
        """One datagram per call: the loop calls again at once while more are queued,
        and a single read never ends in the exception that says the queue is empty."""
        try:
            size, ancdata, _, addr = self._sock.recvmsg_into((self._buffer,), ANCILLARY_SPACE)
        except OSError:
            # Nothing after all, or an ICMP error queued on the socket (a peer not
            # listening yet: normal at start); the call that reported it consumed it.
            return
        data = bytes(self._view[:size])
        if self._solicitor is not None and addr[0].partition("%")[0] == self._solicitor.peer:
            self._solicitor.heard()
        if self._copies.first(self._index, self._iface, data):
            stamps = Stamps(self._loop.time)
            self._receiver(self._iface, data, str(addr[0]), stamps.arrival(ancdata))


class Transport:
    """All media of one node. `send` puts a datagram on every medium."""

    def __init__(self, media: tuple[UdpMedium, ...]) -> None:
        self._media = media
        self._endpoints: list[Endpoint] = []
        # Per endpoint: who asks for a silent ucast peer's address (hbmon/io/neighbour.py).
        self._solicitors: list[PeerSolicitor | None] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.send_errors = 0

    def bound(self) -> set[tuple[int, str, int]]:
        """(family, iface, port) of every socket this transport holds open."""
        return {(family(ep.medium), ep.medium.iface, ep.medium.port) for ep in self._endpoints}

    async def open(self, receiver: Receiver, ours: set[tuple[int, str, int]] | None = None) -> None:
        """Open every medium. `ours`: ports our previous transport holds (a reload),
        which the probe for a foreign owner must not mistake for one."""
        loop = asyncio.get_running_loop()
        endpoints = []
        for key in sorted({(family(m), m.iface, m.port) for m in self._media} - (ours or set())):
            medium = next(m for m in self._media if (family(m), m.iface, m.port) == key)
            interface_index(medium.iface, medium)
            probe_port(medium)
        try:
            for medium in self._media:
                endpoints.append(open_endpoint(medium))
        except StartupError:
            for ep in endpoints:
                ep.sock.close()
            raise
        copies = CopyFilter(self._media)
        self._loop = loop
        for index, ep in enumerate(endpoints):
            enable_timestamps(ep.sock)
            solicitor = solicitor_for(ep.medium)
            reader = _MediumReader(loop, ep, index, receiver, copies, solicitor)
            loop.add_reader(ep.sock.fileno(), reader.readable)
            self._endpoints.append(ep)
            self._solicitors.append(solicitor)

    def send(self, datagram: bytes) -> None:
        """One datagram on every medium, now. A full socket buffer drops it (counted):
        a beat queued behind others would only arrive late."""
        for ep, solicitor in zip(self._endpoints, self._solicitors, strict=True):
            if solicitor is not None:
                solicitor.before_send()
            try:
                ep.sock.sendto(datagram, ep.destination)
            except OSError:
                self.send_errors += 1

    @property
    def peer_solicitations(self) -> int:
        """ARP requests sent for silent ucast peers so far."""
        return sum(s.asked for s in self._solicitors if s is not None)

    def close(self) -> None:
        for ep in self._endpoints:
            if self._loop is not None:
                self._loop.remove_reader(ep.sock.fileno())
            ep.sock.close()
        for solicitor in self._solicitors:
            if solicitor is not None:
                solicitor.close()
        self._endpoints.clear()
        self._solicitors.clear()


def solicitor_for(medium: UdpMedium) -> PeerSolicitor | None:
    """A ucast/ucast6 medium's peer, asked for while silent; None for other media
    (broadcast and multicast need no neighbour entry)."""
    if not isinstance(medium, UcastMedium | Ucast6Medium):
        return None
    try:
        peer = ipaddress.ip_address(medium.peer.partition("%")[0])
    except ValueError:
        return None
    return PeerSolicitor(medium.iface, peer)
