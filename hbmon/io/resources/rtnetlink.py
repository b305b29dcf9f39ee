"""`Netlink` over a NETLINK_ROUTE socket of our own: the seven requests the address
agents make (rtnetlink(7)), in the network namespace the process runs in.

Why not pyroute2: importing its route socket brings ~150 modules (every
message class, traffic control included, and `unittest.mock`), about 7 MiB of
an agent's resident memory, for a link lookup, two dumps and two address
requests. The messages are the kernel's stable ABI (<linux/netlink.h>,
<linux/rtnetlink.h>, <linux/if_addr.h>) and are built and read here with
`struct`; `build_*` and `parse_*` are pure, the class only moves bytes.

Each call opens its own socket (nothing shared to go stale) and talks to the
kernel without blocking the loop (`sock_sendto` / `sock_recv`). A request the
kernel refuses raises OSError with the kernel's errno, as pyroute2's
NetlinkError did once translated.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from hbmon.io.resources.netlink import FOREVER, Addr, Link, Route

NETLINK_ROUTE = 0
# <linux/netlink.h>
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
# <linux/rtnetlink.h>
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFLA_ADDRESS, IFLA_IFNAME = 1, 3
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO = 1, 2, 3, 4, 6
RTA_DST, RTA_OIF, RTA_TABLE = 1, 4, 15
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
IFF_UP = 0x1
IFA_F_NODAD = 0x02

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type
_RTATTR = struct.Struct("=HH")  # len, type
_ERROR = struct.Struct("=i")
_CACHEINFO = struct.Struct("=IIII")  # preferred, valid, cstamp, tstamp
_U32 = struct.Struct("=I")
RECV_SIZE = 65536


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, data: bytes) -> bytes:
    size = _RTATTR.size + len(data)
    return _RTATTR.pack(size, kind) + data + b"\0" * (_align(size) - size)


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    """The route attributes from `offset` on (the first of a kind wins)."""
    out: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        size, kind = _RTATTR.unpack_from(data, offset)
        if size < _RTATTR.size or offset + size > len(data):
            break
        out.setdefault(kind & 0x3FFF, data[offset + _RTATTR.size : offset + size])
        offset += _align(size)
    return out


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.split(b"\0", 1)[0].decode("utf-8", "replace")


# ------------------------------------------------------------ requests --
def build_get_link(seq: int, index: int) -> bytes:
    return _message(
        RTM_GETLINK, NLM_F_REQUEST, seq, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    )


def build_dump_addresses(seq: int) -> bytes:
    body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return _message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, body)


def build_dump_routes(seq: int, family: int) -> bytes:
    body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    return _message(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, body)


def build_address(
    seq: int,
    *,
    add: bool,
    index: int,
    address: str,
    prefixlen: int,
    broadcast: str | None = None,
    label: str | None = None,
    nodad: bool = False,
) -> bytes:
    """RTM_NEWADDR (refused if present: EEXIST) or RTM_DELADDR, as `ip addr` sends
    them: the address as both IFA_LOCAL and IFA_ADDRESS (no peer)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    packed = socket.inet_pton(family, address)
    flags = IFA_F_NODAD if nodad else 0
    body = _IFADDRMSG.pack(family, prefixlen, flags, 0, index)
    body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
    if broadcast is not None:
        body += _attr(IFA_BROADCAST, socket.inet_pton(socket.AF_INET, broadcast))
    if label is not None:
        body += _attr(IFA_LABEL, label.encode() + b"\0")
    if add:
        kind, extra = RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL
    else:
        kind, extra = RTM_DELADDR, 0
    return _message(kind, NLM_F_REQUEST | NLM_F_ACK | extra, seq, body)


def build_lifetime(
    seq: int, *, index: int, address: str, prefixlen: int, seconds: int | None, nodad: bool
) -> bytes:
    """RTM_NEWADDR replacing an address's lifetimes, as `ip addr replace … valid_lft N
    preferred_lft N`: the kernel keeps its label and broadcast and removes it when
    the valid lifetime ends (None: forever again). IPv6 takes the flags anew."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    packed = socket.inet_pton(family, address)
    lifetime = FOREVER if seconds is None else max(1, seconds)
    body = _IFADDRMSG.pack(family, prefixlen, IFA_F_NODAD if nodad else 0, 0, index)
    body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
    body += _attr(IFA_CACHEINFO, _CACHEINFO.pack(lifetime, lifetime, 0, 0))
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE
    return _message(RTM_NEWADDR, flags, seq, body)


# ------------------------------------------------------------- replies --
@dataclass(frozen=True, slots=True)
class Reply:
    """One netlink message of a reply: its type and its payload."""

    kind: int
    payload: bytes


def split(data: bytes) -> Iterator[Reply]:
    """The messages in one datagram from the kernel."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        size, kind, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if size < _NLMSGHDR.size or offset + size > len(data):
            return
        yield Reply(kind, data[offset + _NLMSGHDR.size : offset + size])
        offset += _align(size)


def error_of(reply: Reply) -> int:
    """The errno an NLMSG_ERROR carries (0: an acknowledgement)."""
    (code,) = _ERROR.unpack_from(reply.payload)
    return -int(code)


def parse_link(payload: bytes) -> Link:
    _, _, index, flags, _ = _IFINFOMSG.unpack_from(payload)
    attrs = _attrs(payload, _IFINFOMSG.size)
    return Link(
        index=index,
        name=_text(attrs.get(IFLA_IFNAME)) or "",
        mac=attrs.get(IFLA_ADDRESS, b""),
        up=bool(flags & IFF_UP),
    )


def parse_address(payload: bytes) -> Addr | None:
    family, prefixlen, _, _, index = _IFADDRMSG.unpack_from(payload)
    attrs = _attrs(payload, _IFADDRMSG.size)
    raw = attrs.get(IFA_ADDRESS)
    if family == socket.AF_INET:
        raw = attrs.get(IFA_LOCAL) or raw  # the address itself on point-to-point links
    if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return Addr(
        index=index,
        family=family,
        address=socket.inet_ntop(family, raw),
        prefixlen=prefixlen,
        label=_text(attrs.get(IFA_LABEL)),
    )


def parse_route(payload: bytes) -> Route | None:
    """A unicast route of the main table; None for anything else."""
    family, dst_len, _, _, table, _, _, kind, _ = _RTMSG.unpack_from(payload)
    attrs = _attrs(payload, _RTMSG.size)
    if RTA_TABLE in attrs:
        (table,) = _U32.unpack_from(attrs[RTA_TABLE])
    if table != RT_TABLE_MAIN or kind != RTN_UNICAST:
        return None
    dst = attrs.get(RTA_DST)
    oif = attrs.get(RTA_OIF)
    return Route(
        family=family,
        dst=socket.inet_ntop(family, dst)
        if dst
        else ("0.0.0.0" if family == socket.AF_INET else "::"),
        dst_len=dst_len,
        oif=None if oif is None else _U32.unpack_from(oif)[0],
    )


class Rtnetlink:
    """`Netlink` over NETLINK_ROUTE, in the current network namespace."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)

    async def _ask(self, request: bytes, *, dump: bool) -> list[Reply]:
        """Send `request`; the replies up to NLMSG_DONE (a dump) or the one answer.
        An NLMSG_ERROR with an errno raises OSError."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
        )
        try:
            sock.setblocking(False)
            sock.bind((0, 0))
            await loop.sock_sendto(sock, request, (0, 0))
            out: list[Reply] = []
            while True:
                for reply in split(await loop.sock_recv(sock, RECV_SIZE)):
                    if reply.kind == NLMSG_DONE:
                        return out
                    if reply.kind == NLMSG_ERROR:
                        code = error_of(reply)
                        if code:
                            raise OSError(code, f"netlink: {errno.errorcode.get(code, code)}")
                        return out  # the acknowledgement ends a request
                    out.append(reply)
                    if not dump:
                        return out
        finally:
            sock.close()

    async def link_by_name(self, name: str) -> Link | None:
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            return None
        return await self.link_by_index(index)

    async def link_by_index(self, index: int) -> Link | None:
        try:
            replies = await self._ask(build_get_link(next(self._seq), index), dump=False)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        links = [parse_link(r.payload) for r in replies if r.kind == RTM_NEWLINK]
        return links[0] if links else None

    async def addresses(self) -> list[Addr]:
        replies = await self._ask(build_dump_addresses(next(self._seq)), dump=True)
        found = (parse_address(r.payload) for r in replies if r.kind == RTM_NEWADDR)
        return [a for a in found if a is not None]

    async def routes(self, family: int) -> list[Route]:
        replies = await self._ask(build_dump_routes(next(self._seq), family), dump=True)
        found = (parse_route(r.payload) for r in replies if r.kind == RTM_NEWROUTE)
        return [r for r in found if r is not None and r.family == family]

    async def add_address(
        self,
        index: int,
        address: str,
        prefixlen: int,
        *,
        broadcast: str | None,
        label: str | None,
        nodad: bool,
    ) -> None:
        request = build_address(
            next(self._seq),
            add=True,
            index=index,
            address=address,
            prefixlen=prefixlen,
            broadcast=broadcast,
            label=label,
            nodad=nodad,
        )
        await self._ask(request, dump=False)

    async def del_address(self, index: int, address: str, prefixlen: int) -> None:
        request = build_address(
            next(self._seq), add=False, index=index, address=address, prefixlen=prefixlen
        )
        await self._ask(request, dump=False)

    async def set_lifetime(
        self, index: int, address: str, prefixlen: int, *, seconds: int | None, nodad: bool
    ) -> None:
        request = build_lifetime(
            next(self._seq),
            index=index,
            address=address,
            prefixlen=prefixlen,
            seconds=seconds,
            nodad=nodad,
        )
        await self._ask(request, dump=False)
