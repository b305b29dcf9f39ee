"""A small typed edge over pyroute2 (untyped): links, addresses, routes.

Everything acts in the network namespace the process runs in (agents run via
`ip netns exec` in the lab). Each call opens its own netlink socket, so there
is no shared state to go stale. pyroute2's `NetlinkError` becomes `OSError`
with the kernel's errno, so callers never import pyroute2.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any, Protocol


def _deferred_package(name: str) -> None:
    """Register package `name` without running its `__init__` until someone asks
    the package itself for an attribute.

    pyroute2's `__init__` (and `pyroute2.iproute`'s) import every socket family
    it supports (ndb, ipdb, nftables, wireguard, 160 modules, ~6 MiB of an idle
    agent's RSS); the agent needs two submodules. Whoever later does
    `from pyroute2 import X` still gets the full package: the first attribute
    miss runs the real `__init__` in place.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(attr: str) -> Any:
        if not attr.startswith("__"):
            # `from pyroute2 import config`: a submodule, no need for the rest.
            try:
                return importlib.import_module(f"{name}.{attr}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{name}.{attr}":
                    raise
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, attr)

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[name] = module


def _import_pyroute2() -> ModuleType:
    _deferred_package("pyroute2")
    _deferred_package("pyroute2.iproute")
    import pyroute2.config.log  # noqa: F401 - the logging setup pyroute2's __init__ does

    return importlib.import_module("pyroute2.iproute.linux")


class _ThreadedIPRoute:
    """AsyncIPRoute's calls over the blocking IPRoute, each in a worker thread, for
    pyroute2 < 0.9 (Debian 12 ships 0.7.2), which has no asyncio API."""

    def __init__(self, sync_class: Any) -> None:
        self._ipr = sync_class()

    async def __aenter__(self) -> _ThreadedIPRoute:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ipr.close()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._ipr, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await asyncio.to_thread(method, *args, **kwargs)
            return _Replies(result) if isinstance(result, list | tuple) else result

        return call


class _Replies(list[Any]):
    """A reply list that also iterates asynchronously, as the asyncio API's dumps do
    (`link_lookup` answers are indexed, dumps are iterated with `async for`)."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        for item in self:
            yield item


def _async_iproute() -> Any:
    linux = _import_pyroute2()
    if hasattr(linux, "AsyncIPRoute"):
        return linux.AsyncIPRoute
    return partial(_ThreadedIPRoute, linux.IPRoute)


AsyncIPRoute: Any = _async_iproute()
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

RT_TABLE_MAIN = 254
RTN_UNICAST = 1
IFF_UP = 0x1
IFA_F_NODAD = 0x02
# An address lifetime of "forever" (INFINITY_LIFE_TIME): a permanent address.
FOREVER = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    name: str
    mac: bytes  # empty when the link has no hardware address
    up: bool


@dataclass(frozen=True, slots=True)
class Addr:
    index: int
    family: int
    address: str  # canonical text form
    prefixlen: int
    label: str | None


@dataclass(frozen=True, slots=True)
class Route:
    """A unicast route of the main table (what `findif` looks at)."""

    family: int
    dst: str
    dst_len: int
    oif: int | None


class Netlink(Protocol):
    """The operations the address agents need; `PyRoute2` is the real one."""

    async def link_by_name(self, name: str) -> Link | None: ...
    async def link_by_index(self, index: int) -> Link | None: ...
    async def addresses(self) -> list[Addr]: ...
    async def routes(self, family: int) -> list[Route]: ...
    async def add_address(
        self,
        index: int,
        address: str,
        prefixlen: int,
        *,
        broadcast: str | None,
        label: str | None,
        nodad: bool,
    ) -> None: ...
    async def del_address(self, index: int, address: str, prefixlen: int) -> None: ...
    async def set_lifetime(
        self, index: int, address: str, prefixlen: int, *, seconds: int | None, nodad: bool
    ) -> None:
        """Make an existing address expire after `seconds` (None: never again)."""


def _os_error(exc: NetlinkError) -> OSError:
    code = int(exc.code) if isinstance(exc.code, int) else errno.EIO
    return OSError(code, f"netlink: {exc}")


def _link(msg: Any) -> Link:
    mac_text = msg.get_attr("IFLA_ADDRESS") or ""
    try:
        mac = bytes.fromhex(mac_text.replace(":", "")) if mac_text else b""
    except ValueError:
        mac = b""
    return Link(
        index=int(msg["index"]),
        name=str(msg.get_attr("IFLA_IFNAME")),
        mac=mac,
        up=bool(int(msg["flags"]) & IFF_UP),
    )


class PyRoute2:
    """`Netlink` over pyroute2's AsyncIPRoute, in the current network namespace."""

    @asynccontextmanager
    async def _ipr(self) -> AsyncIterator[Any]:
        try:
            async with AsyncIPRoute() as ipr:
                yield ipr
        except NetlinkError as exc:
            raise _os_error(exc) from exc

    async def link_by_name(self, name: str) -> Link | None:
        async with self._ipr() as ipr:
            found = await ipr.link_lookup(ifname=name)
            if not found:
                return None
            return await self._get_link(ipr, int(found[0]))

    async def link_by_index(self, index: int) -> Link | None:
        async with self._ipr() as ipr:
            return await self._get_link(ipr, index)

    @staticmethod
    async def _get_link(ipr: Any, index: int) -> Link | None:
        try:
            async for msg in await ipr.get_links(index):
                return _link(msg)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        return None

    async def addresses(self) -> list[Addr]:
        out: list[Addr] = []
        async with self._ipr() as ipr:
            async for msg in await ipr.addr("dump"):
                address = msg.get_attr("IFA_ADDRESS")
                if msg["family"] == socket.AF_INET:
                    # IFA_LOCAL is the address itself on point-to-point links.
                    address = msg.get_attr("IFA_LOCAL") or address
                if address is None:
                    continue
                out.append(
                    Addr(
                        index=int(msg["index"]),
                        family=int(msg["family"]),
                        address=str(address),
                        prefixlen=int(msg["prefixlen"]),
                        label=msg.get_attr("IFA_LABEL"),
                    )
                )
        return out

    async def routes(self, family: int) -> list[Route]:
        out: list[Route] = []
        async with self._ipr() as ipr:
            async for msg in await ipr.route("dump", family=family):
                table = msg.get_attr("RTA_TABLE") or msg["table"]
                if table != RT_TABLE_MAIN or msg["type"] != RTN_UNICAST:
                    continue
                dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
                oif = msg.get_attr("RTA_OIF")
                out.append(
                    Route(
                        family=family,
                        dst=str(dst),
                        dst_len=int(msg["dst_len"]),
                        oif=None if oif is None else int(oif),
                    )
                )
        return out

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
        kwargs: dict[str, object] = {"index": index, "address": address, "prefixlen": prefixlen}
        if broadcast is not None:
            kwargs["broadcast"] = broadcast
        if label is not None:
            kwargs["label"] = label
        if nodad:
            kwargs["flags"] = IFA_F_NODAD
        async with self._ipr() as ipr:
            await ipr.addr("add", **kwargs)

    async def del_address(self, index: int, address: str, prefixlen: int) -> None:
        async with self._ipr() as ipr:
            await ipr.addr("del", index=index, address=address, prefixlen=prefixlen)

    async def set_lifetime(
        self, index: int, address: str, prefixlen: int, *, seconds: int | None, nodad: bool
    ) -> None:
        # RTM_NEWADDR with NLM_F_REPLACE on an existing address changes only its
        # lifetimes (label, broadcast and the address stay). The kernel removes an
        # address whose valid lifetime ends. pyroute2 0.7 reads the lifetimes from
        # `cacheinfo`, 0.9 from `valid`/`preferred` (with `cacheinfo` last): give both.
        lifetime = FOREVER if seconds is None else max(1, seconds)
        kwargs: dict[str, object] = {
            "index": index,
            "address": address,
            "prefixlen": prefixlen,
            "valid": lifetime,
            "preferred": lifetime,
            "cacheinfo": {"valid": lifetime, "preferred": lifetime},
        }
        if nodad:
            kwargs["flags"] = IFA_F_NODAD  # IPv6: a replace sets the flags anew
        async with self._ipr() as ipr:
            await ipr.addr("replace", **kwargs)
