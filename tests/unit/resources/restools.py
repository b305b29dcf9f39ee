"""Fakes for the resource agents' I/O edge (httpx-style: no mock.patch)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from hbmon.config.model import (
    AuthConfig,
    Config,
    HbmonSettings,
    Resource,
    ResourceGroup,
    ResourceSettings,
    Timers,
)
from hbmon.io.resources.addresses import IPAddress
from hbmon.io.resources.agents import ResourceIO
from hbmon.io.resources.netlink import Addr, Link, Route
from hbmon.io.resources.scripts import RunResult


class FakeNetlink:
    def __init__(self) -> None:
        self.links: dict[int, Link] = {}
        self.addrs: list[Addr] = []
        self.route_table: list[Route] = []
        self.added: list[dict[str, object]] = []
        self.fail_add: OSError | None = None
        self.fail_del: OSError | None = None
        self.fail_lifetime: OSError | None = None
        self.lifetimes: dict[str, int | None] = {}  # address -> expiry set (None: forever)

    def add_link(self, index: int, name: str, mac: bytes) -> None:
        self.links[index] = Link(index, name, mac, True)

    def add_route(self, family: int, dst: str, dst_len: int, oif: int) -> None:
        self.route_table.append(Route(family, dst, dst_len, oif))

    async def link_by_name(self, name: str) -> Link | None:
        return next((lk for lk in self.links.values() if lk.name == name), None)

    async def link_by_index(self, index: int) -> Link | None:
        return self.links.get(index)

    async def addresses(self) -> list[Addr]:
        return list(self.addrs)

    async def routes(self, family: int) -> list[Route]:
        return [r for r in self.route_table if r.family == family]

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
        if self.fail_add is not None:
            raise self.fail_add
        if any(a.index == index and a.address == address for a in self.addrs):
            raise OSError(errno.EEXIST, "File exists")
        family = socket.AF_INET if ip_address(address).version == 4 else socket.AF_INET6
        self.addrs.append(Addr(index, family, address, prefixlen, label or self.links[index].name))
        self.added.append(
            {"index": index, "address": address, "broadcast": broadcast, "nodad": nodad}
        )

    async def del_address(self, index: int, address: str, prefixlen: int) -> None:
        if self.fail_del is not None:
            raise self.fail_del
        for a in self.addrs:
            if a.index == index and a.address == address:
                self.addrs.remove(a)
                return
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    async def set_lifetime(
        self, index: int, address: str, prefixlen: int, *, seconds: int | None, nodad: bool
    ) -> None:
        if self.fail_lifetime is not None:
            raise self.fail_lifetime
        if not any(a.index == index and a.address == address for a in self.addrs):
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        self.lifetimes[address] = seconds

    def has(self, address: str) -> bool:
        return any(a.address == address for a in self.addrs)


@dataclass
class FakeWorld:
    """Everything a ResourceExecutor touches, in memory."""

    netlink: FakeNetlink = field(default_factory=FakeNetlink)
    announced: list[tuple[str, IPAddress]] = field(default_factory=list)
    owners: dict[IPAddress, bytes] = field(default_factory=dict)  # other hosts' addresses
    probe_windows: list[float] = field(default_factory=list)  # what each probe was given
    # Script behaviour: (name, op) -> (rc, stdout); a missing entry exits 0.
    script_results: dict[tuple[str, str], tuple[int | None, str]] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    announce_error: OSError | None = None
    probe_error: OSError | None = None

    async def announce(self, iface: str, ip: IPAddress) -> None:
        if self.announce_error is not None:
            raise self.announce_error
        self.announced.append((iface, ip))

    async def probe_owner(
        self, ip: IPAddress, iface: str, window: float, count: int
    ) -> bytes | None:
        self.probe_windows.append(window)
        if self.probe_error is not None:
            raise self.probe_error
        return self.owners.get(ip)

    async def run(self, argv: Sequence[str], timeout_s: float, env: Mapping[str, str]) -> RunResult:
        args = tuple(argv)
        self.calls.append(args)
        name, op = Path(args[0]).name, args[-1]
        if name == "systemctl":
            name = args[-1]
            op = args[2]
        rc, out = self.script_results.get((name, op), (0, ""))
        if rc is None:
            return RunResult(args, None, "", "", timeout_s, timed_out=True)
        return RunResult(args, rc, out, "", 0.0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def io(self, init_dir: Path) -> ResourceIO:
        return ResourceIO(
            netlink=self.netlink,
            announce=self.announce,
            probe_owner=self.probe_owner,
            run=self.run,
            init_dir=init_dir,
            sleep=self.sleep,
            systemctl=lambda: "/usr/bin/systemctl",
        )


def make_config(*groups: ResourceGroup, settings: ResourceSettings | None = None) -> Config:
    return Config(
        node="solr1",
        nodes=("solr1", "solr2"),
        timers=Timers(),
        udpport=694,
        media=(),
        ping_nodes=(),
        auth=AuthConfig(1, ()),
        resources=groups,
        hbmon=HbmonSettings(resources=settings or ResourceSettings()),
    )


def group(*specs: str) -> ResourceGroup:
    """`group("IPaddr2::10.0.0.1/24/em1", "httpd")` as haresources would give it."""
    out = []
    for spec in specs:
        agent, *args = spec.split("::")
        out.append(Resource(agent, tuple(args)))
    return ResourceGroup("solr1", tuple(out))
