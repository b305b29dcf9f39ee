"""IPaddr / IPaddr2 natively: argument parsing, and address add/remove over netlink.

Arguments (spec §3.3): `ip[/cidr[/iface[/broadcast]]]`. A third field that
starts with a digit is the broadcast address (no interface). IPaddr2 also
takes `iface:label`. The cidr may be a prefix length or a dotted netmask.
With no interface, the one whose main-table route covers the address is used
(the longest prefix, default routes excluded: `findif`); with no cidr, that
route's prefix length. IPv6 addresses are accepted too; since haresources
splits arguments on `::`, `IPaddr2::2001:db8::80/64` arrives as two
arguments and is joined back.

Adding an address that is already on the interface and removing one that is
not are both fine (idempotent). IPv6 addresses are added without kernel DAD
(`nodad`): the takeover probe does that job before the address is added.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address, ip_network

from hbmon.io.resources import arp, ndisc
from hbmon.io.resources.netlink import Addr, Netlink

IPADDR = "IPaddr"
IPADDR2 = "IPaddr2"
ADDRESS_AGENTS = (IPADDR, IPADDR2)
IFNAMSIZ = 16  # interface names and labels: at most 15 bytes
LIMITED_BROADCAST = IPv4Address("255.255.255.255")

IPAddress = IPv4Address | IPv6Address


class AddressError(Exception):
    """An address resource that cannot be parsed or placed; the message says why."""


@dataclass(frozen=True, slots=True)
class AddressSpec:
    """A parsed IPaddr/IPaddr2 argument."""

    agent: str
    ip: IPAddress
    prefixlen: int | None = None
    iface: str | None = None
    label: str | None = None  # the whole label, `iface:name`
    broadcast: IPv4Address | None = None

    @property
    def family(self) -> int:
        return socket.AF_INET if self.ip.version == 4 else socket.AF_INET6


@dataclass(frozen=True, slots=True)
class Placement:
    """An address resolved onto a real interface: what netlink adds."""

    ip: IPAddress
    prefixlen: int
    index: int
    iface: str
    broadcast: IPv4Address | None
    label: str | None

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen} on {self.iface}"


# ---------------------------------------------------------------- parsing --
def _valid_ifname(name: str) -> bool:
    return 0 < len(name.encode()) < IFNAMSIZ and not any(c in name for c in "/: \t\n")


def _prefixlen(text: str, ip: IPAddress) -> int:
    bits = ip.max_prefixlen
    if text.isdigit():
        value = int(text)
        if value > bits:
            raise AddressError(f"bad prefix length /{text} for {ip}")
        return value
    if ip.version == 4:
        try:
            return IPv4Network(f"0.0.0.0/{text}").prefixlen
        except ValueError:
            pass
    raise AddressError(f"bad netmask [{text}]")


def parse_address(agent: str, args: tuple[str, ...]) -> AddressSpec:
    """`IPaddr2::ip/cidr/iface:label/broadcast` (as a Resource's agent and args) -> spec."""
    if agent not in ADDRESS_AGENTS:
        raise AddressError(f"{agent} is not an address agent")
    if not args or not args[0]:
        raise AddressError("missing address")
    # haresources splits on `::`, which also cuts IPv6 addresses apart.
    text = "::".join(args)
    fields = text.split("/")
    if len(fields) > 4:
        raise AddressError(f"too many fields in [{text}]: expected ip/cidr/iface/broadcast")
    try:
        ip = ip_address(fields[0])
    except ValueError:
        if len(args) > 1:
            raise AddressError(f"{agent} takes one argument, got {len(args)}") from None
        raise AddressError(f"bad address [{fields[0]}]") from None
    if ip.is_unspecified or ip.is_multicast or ip == LIMITED_BROADCAST:
        raise AddressError(f"{ip} cannot be a floating address")
    prefixlen = _prefixlen(fields[1], ip) if len(fields) > 1 and fields[1] else None
    iface = label = None
    broadcast_text = ""
    if len(fields) > 2 and fields[2]:
        if fields[2][0].isdigit():
            if len(fields) > 3:
                raise AddressError(f"[{fields[2]}] is a broadcast address; expected an interface")
            broadcast_text = fields[2]
        else:
            iface = fields[2]
    if len(fields) > 3 and fields[3]:
        broadcast_text = fields[3]
    if iface is not None and ":" in iface:
        if agent != IPADDR2:
            raise AddressError(f"{agent} takes no label [{iface}]; use IPaddr2 for iface:label")
        label = iface
        iface, _, name = iface.partition(":")
        if not name or len(label.encode()) >= IFNAMSIZ:
            raise AddressError(f"bad label [{label}]: iface:name, at most 15 characters")
    if iface is not None and not _valid_ifname(iface):
        raise AddressError(f"bad interface name [{iface}]")
    broadcast = None
    if broadcast_text:
        if ip.version != 4:
            raise AddressError(f"IPv6 has no broadcast address [{broadcast_text}]")
        try:
            broadcast = IPv4Address(broadcast_text)
        except ValueError:
            raise AddressError(f"bad broadcast address [{broadcast_text}]") from None
    return AddressSpec(agent, ip, prefixlen, iface, label, broadcast)


def default_broadcast(ip: IPv4Address, prefixlen: int) -> IPv4Address | None:
    """The subnet's broadcast address (none for /31 and /32)."""
    if prefixlen >= 31:
        return None
    return IPv4Network(f"{ip}/{prefixlen}", strict=False).broadcast_address


# -------------------------------------------------------------- placement --
async def resolve(nl: Netlink, spec: AddressSpec) -> Placement:
    """Where `spec` goes: the interface (given, or from the routes) and the prefix."""
    route_prefix: int | None = None
    if spec.iface is not None:
        link = await nl.link_by_name(spec.iface)
        if link is None:
            raise AddressError(f"interface {spec.iface} not found")
        index, iface = link.index, link.name
        if spec.prefixlen is None:
            route_prefix = await _route_prefix(nl, spec, index)
            if route_prefix is None:
                raise AddressError(f"no route on {iface} covers {spec.ip}: give the prefix length")
    else:
        found = await _route_for(nl, spec)
        if found is None:
            raise AddressError(f"no route covers {spec.ip}: give the interface")
        index, route_prefix = found
        link = await nl.link_by_index(index)
        if link is None:
            raise AddressError(f"interface #{index} (route to {spec.ip}) not found")
        iface = link.name
    prefixlen = spec.prefixlen if spec.prefixlen is not None else route_prefix
    assert prefixlen is not None
    broadcast = spec.broadcast
    if broadcast is None and isinstance(spec.ip, IPv4Address):
        broadcast = default_broadcast(spec.ip, prefixlen)
    return Placement(spec.ip, prefixlen, index, iface, broadcast, spec.label)


async def _covering(nl: Netlink, spec: AddressSpec) -> list[tuple[int, int]]:
    """(prefix length, interface index) of main-table routes covering the address."""
    out: list[tuple[int, int]] = []
    for route in await nl.routes(spec.family):
        if route.oif is None or route.dst_len == 0:
            continue
        if spec.ip in ip_network(f"{route.dst}/{route.dst_len}", strict=False):
            out.append((route.dst_len, route.oif))
    return sorted(out, reverse=True)


async def _route_for(nl: Netlink, spec: AddressSpec) -> tuple[int, int] | None:
    """(interface index, prefix length) of the longest covering route, as findif picks."""
    covering = await _covering(nl, spec)
    if not covering:
        return None
    dst_len, oif = covering[0]
    return oif, dst_len


async def _route_prefix(nl: Netlink, spec: AddressSpec, index: int) -> int | None:
    return next((n for n, oif in await _covering(nl, spec) if oif == index), None)


async def find(nl: Netlink, spec: AddressSpec) -> list[Addr]:
    """Where the address is configured now: on its interface, or anywhere if none given."""
    index: int | None = None
    if spec.iface is not None:
        link = await nl.link_by_name(spec.iface)
        if link is None:
            return []
        index = link.index
    return [
        a
        for a in await nl.addresses()
        if a.family == spec.family
        and ip_address(a.address) == spec.ip
        and (index is None or a.index == index)
    ]


async def add(nl: Netlink, place: Placement) -> bool:
    """Add the address; False if it was already there."""
    present = [
        a
        for a in await nl.addresses()
        if a.index == place.index and ip_address(a.address) == place.ip
    ]
    if present:
        return False
    try:
        await nl.add_address(
            place.index,
            str(place.ip),
            place.prefixlen,
            broadcast=None if place.broadcast is None else str(place.broadcast),
            label=place.label,
            nodad=place.ip.version == 6,
        )
    except OSError as exc:
        if exc.errno == errno.EEXIST:  # added meanwhile by someone else: it is there
            return False
        raise
    return True


async def remove(nl: Netlink, spec: AddressSpec) -> list[Addr]:
    """Remove the address wherever `find` sees it; the entries removed (maybe none)."""
    removed = []
    for entry in await find(nl, spec):
        try:
            await nl.del_address(entry.index, entry.address, entry.prefixlen)
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
                continue
            raise
        removed.append(entry)
    return removed


# ----------------------------------------------------- announce and probe --
async def announce(iface: str, ip: IPAddress) -> None:
    """One gratuitous ARP pair (IPv4) or unsolicited NA (IPv6) on `iface`."""
    if isinstance(ip, IPv4Address):
        await arp.send_garp(iface, ip)
    else:
        await ndisc.send_na(iface, ip)


async def probe_owner(ip: IPAddress, iface: str, window: float, count: int) -> bytes | None:
    """The MAC of another host answering for `ip` on `iface`'s segment, or None."""
    if isinstance(ip, IPv4Address):
        return await arp.probe_owner(ip, iface, window, count)
    return await ndisc.probe_owner(ip, iface, window, count)
