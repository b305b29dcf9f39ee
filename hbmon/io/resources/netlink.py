"""The netlink operations the address agents need, as a typed interface.

`Netlink` is what hbmon/io/resources/addresses.py and agents.py call; the real
one is hbmon/io/resources/rtnetlink.py (`Rtnetlink`), the tests give fakes.
Everything acts in the network namespace the process runs in (agents run via
`ip netns exec` in the lab). A request the kernel refuses raises OSError with
the kernel's errno.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
    """The operations the address agents need; `Rtnetlink` is the real one."""

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
