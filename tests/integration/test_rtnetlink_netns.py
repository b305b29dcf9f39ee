"""hbmon's own rtnetlink against the kernel, in a namespace of its own: what it reads
agrees with `ip`, what it adds and removes `ip` sees, and the kernel's refusals
come back as OSError with the kernel's errno. Nothing leaves the namespace."""

from __future__ import annotations

import asyncio
import errno
import json
import secrets
import socket
import subprocess
from collections.abc import Iterator

import pytest
from netns_helpers import require_netns
from test_ping_icmplib_netns import in_namespace

from hbmon.io.resources.netlink import Addr
from hbmon.io.resources.rtnetlink import Rtnetlink

pytestmark = pytest.mark.netns


def ip(ns: str, *args: str) -> str:
    return subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


@pytest.fixture
def netns() -> Iterator[str]:
    require_netns()
    name = "hbmrtnl" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip(name, "link", "add", "em1", "type", "veth", "peer", "name", "em1p")
        ip(name, "link", "set", "em1p", "up")
        ip(name, "link", "set", "em1", "up")
        ip(name, "addr", "add", "198.51.100.49/24", "dev", "em1")
        ip(name, "-6", "addr", "add", "2001:db8:94::49/64", "dev", "em1", "nodad")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_reads_agree_with_ip_and_changes_show_in_ip(netns: str) -> None:
    async def scenario() -> dict[str, object]:
        nl = Rtnetlink()
        out: dict[str, object] = {}
        link = await nl.link_by_name("em1")
        assert link is not None
        out["link"] = link
        out["missing"] = await nl.link_by_name("nosuch0")
        out["by_index"] = await nl.link_by_index(link.index)
        out["no_index"] = await nl.link_by_index(99999)
        out["before"] = await nl.addresses()
        out["routes4"] = await nl.routes(socket.AF_INET)
        out["routes6"] = await nl.routes(socket.AF_INET6)
        await nl.add_address(link.index, "198.51.100.80", 24, broadcast="198.51.100.255",
                             label="em1:0", nodad=False)  # fmt: skip
        await nl.add_address(link.index, "2001:db8:94::80", 64, broadcast=None, label=None,
                             nodad=True)  # fmt: skip
        out["added"] = await nl.addresses()
        try:
            await nl.add_address(link.index, "198.51.100.80", 24, broadcast=None, label=None,
                                 nodad=False)  # fmt: skip
        except OSError as exc:
            out["again"] = exc.errno
        out["shown"] = ip(netns, "-j", "addr", "show", "dev", "em1")
        await nl.set_lifetime(link.index, "198.51.100.80", 24, seconds=300, nodad=False)
        out["limited"] = ip(netns, "-j", "addr", "show", "dev", "em1")
        await nl.set_lifetime(link.index, "198.51.100.80", 24, seconds=None, nodad=False)
        out["forever"] = ip(netns, "-j", "addr", "show", "dev", "em1")
        await nl.del_address(link.index, "198.51.100.80", 24)
        await nl.del_address(link.index, "2001:db8:94::80", 64)
        try:
            await nl.del_address(link.index, "198.51.100.80", 24)
        except OSError as exc:
            out["gone"] = exc.errno
        out["after"] = await nl.addresses()
        return out

    out = in_namespace(netns, lambda: asyncio.run(scenario()))
    link = out["link"]
    shown = json.loads(ip(netns, "-j", "link", "show", "dev", "em1"))[0]
    assert (link.name, link.up) == ("em1", True)  # type: ignore[attr-defined]
    assert link.mac == bytes.fromhex(shown["address"].replace(":", ""))  # type: ignore[attr-defined]
    assert out["by_index"] == link
    assert out["missing"] is None
    assert out["no_index"] is None
    index = link.index  # type: ignore[attr-defined]
    before = set(out["before"])  # type: ignore[call-overload]
    assert Addr(index, socket.AF_INET, "198.51.100.49", 24, "em1") in before
    assert Addr(index, socket.AF_INET6, "2001:db8:94::49", 64, None) in before
    assert any(r.dst == "198.51.100.0" and r.dst_len == 24 and r.oif == index
               for r in out["routes4"])  # type: ignore[attr-defined]  # fmt: skip
    assert any(r.dst == "2001:db8:94::" and r.dst_len == 64 for r in out["routes6"])  # type: ignore[attr-defined]
    added = set(out["added"]) - before  # type: ignore[call-overload]
    assert added == {
        Addr(index, socket.AF_INET, "198.51.100.80", 24, "em1:0"),
        Addr(index, socket.AF_INET6, "2001:db8:94::80", 64, None),
    }
    assert out["again"] == errno.EEXIST
    infos = json.loads(out["shown"])[0]["addr_info"]  # type: ignore[arg-type]
    v4 = next(a for a in infos if a["local"] == "198.51.100.80")
    assert (v4["prefixlen"], v4["broadcast"], v4["label"]) == (24, "198.51.100.255", "em1:0")
    limited = next(a for a in json.loads(out["limited"])[0]["addr_info"]  # type: ignore[arg-type]
                   if a["local"] == "198.51.100.80")  # fmt: skip
    assert 290 <= limited["valid_life_time"] <= 300
    assert (limited["broadcast"], limited["label"]) == ("198.51.100.255", "em1:0")  # kept
    forever = next(a for a in json.loads(out["forever"])[0]["addr_info"]  # type: ignore[arg-type]
                   if a["local"] == "198.51.100.80")  # fmt: skip
    assert forever["valid_life_time"] == 0xFFFFFFFF
    assert out["gone"] == errno.EADDRNOTAVAIL
    assert set(out["after"]) == before  # type: ignore[call-overload]
