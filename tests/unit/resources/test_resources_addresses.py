"""IPaddr / IPaddr2 argument parsing (spec §3.3) and placement from routes."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address

import pytest
from restools import FakeNetlink

from hbmon.io.resources.addresses import (
    AddressError,
    AddressSpec,
    add,
    default_broadcast,
    find,
    parse_address,
    remove,
    resolve,
)


@pytest.mark.parametrize(
    ("agent", "args", "want"),
    [
        ("IPaddr", ("10.1.201.80",), AddressSpec("IPaddr", IPv4Address("10.1.201.80"))),
        (
            "IPaddr",
            ("10.1.201.80/24/em1",),
            AddressSpec("IPaddr", IPv4Address("10.1.201.80"), 24, "em1"),
        ),
        (
            "IPaddr2",
            ("10.1.201.80/24/em1/10.1.201.255",),
            AddressSpec(
                "IPaddr2", IPv4Address("10.1.201.80"), 24, "em1", None, IPv4Address("10.1.201.255")
            ),
        ),
        (
            "IPaddr2",
            ("10.1.201.80/24/em1:vip",),
            AddressSpec("IPaddr2", IPv4Address("10.1.201.80"), 24, "em1", "em1:vip"),
        ),
        # A third field starting with a digit is the broadcast address.
        (
            "IPaddr",
            ("10.1.201.80/24/10.1.201.255",),
            AddressSpec(
                "IPaddr", IPv4Address("10.1.201.80"), 24, None, None, IPv4Address("10.1.201.255")
            ),
        ),
        # Dotted netmask, empty cidr field.
        (
            "IPaddr",
            ("10.1.201.80/255.255.255.0",),
            AddressSpec("IPaddr", IPv4Address("10.1.201.80"), 24),
        ),
        (
            "IPaddr",
            ("10.1.201.80//em1",),
            AddressSpec("IPaddr", IPv4Address("10.1.201.80"), None, "em1"),
        ),
        # haresources splits `IPaddr2::2001:db8::80/64/em1` on `::`; joined back.
        (
            "IPaddr2",
            ("2001:db8", "80/64/em1"),
            AddressSpec("IPaddr2", IPv6Address("2001:db8::80"), 64, "em1"),
        ),
        ("IPaddr2", ("2001:db8::80",), AddressSpec("IPaddr2", IPv6Address("2001:db8::80"))),
    ],
)
def test_parse(agent: str, args: tuple[str, ...], want: AddressSpec) -> None:
    assert parse_address(agent, args) == want


@pytest.mark.parametrize(
    ("agent", "args", "message"),
    [
        ("IPaddr", (), "missing address"),
        ("IPaddr", ("10.1.201.300/24",), "bad address [10.1.201.300]"),
        ("IPaddr", ("10.1.201.80/33",), "bad prefix length /33"),
        ("IPaddr", ("10.1.201.80/255.0.255.0",), "bad netmask"),
        ("IPaddr", ("10.1.201.80/24/em1:vip",), "IPaddr takes no label"),
        ("IPaddr2", ("10.1.201.80/24/em1:",), "bad label"),
        ("IPaddr2", ("10.1.201.80/24/em1:waytoolonglabel",), "bad label"),
        ("IPaddr2", ("10.1.201.80/24/an-interface-name-too-long",), "bad interface name"),
        ("IPaddr2", ("10.1.201.80/24/em1/x.y",), "bad broadcast address"),
        ("IPaddr2", ("2001:db8::80/64/em1/10.0.0.255",), "IPv6 has no broadcast"),
        ("IPaddr2", ("224.0.0.5",), "cannot be a floating address"),
        ("IPaddr2", ("0.0.0.0",), "cannot be a floating address"),
        ("IPaddr2", ("10.1.201.80/24/em1/10.1.201.255/x",), "too many fields"),
        ("IPaddr2", ("10.1.201.80", "x"), "takes one argument"),
        ("httpd", ("x",), "not an address agent"),
    ],
)
def test_parse_errors(agent: str, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(AddressError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_address(agent, args)


def test_default_broadcast() -> None:
    assert default_broadcast(IPv4Address("10.1.201.80"), 24) == IPv4Address("10.1.201.255")
    assert default_broadcast(IPv4Address("10.1.201.80"), 31) is None
    assert default_broadcast(IPv4Address("10.1.201.80"), 32) is None


def lab_netlink() -> FakeNetlink:
    nl = FakeNetlink()
    nl.add_link(2, "em1", b"\x02\0\0\0\0\x01")
    nl.add_link(3, "em2", b"\x02\0\0\0\0\x02")
    nl.add_route(socket.AF_INET, "0.0.0.0", 0, 2)  # default route: never findif's choice
    nl.add_route(socket.AF_INET, "10.1.0.0", 16, 2)
    nl.add_route(socket.AF_INET, "10.1.201.0", 24, 3)
    nl.add_route(socket.AF_INET6, "2001:db8::", 64, 3)
    return nl


def test_interface_and_prefix_from_longest_route() -> None:
    nl = lab_netlink()
    spec = parse_address("IPaddr", ("10.1.201.80",))
    place = asyncio.run(resolve(nl, spec))
    assert (place.iface, place.prefixlen, place.broadcast) == (
        "em2",
        24,
        IPv4Address("10.1.201.255"),
    )
    place = asyncio.run(resolve(nl, parse_address("IPaddr", ("10.1.5.5",))))
    assert (place.iface, place.prefixlen) == ("em1", 16)
    place = asyncio.run(resolve(nl, parse_address("IPaddr2", ("2001:db8::80",))))
    assert (place.iface, place.prefixlen, place.broadcast) == ("em2", 64, None)


def test_resolve_errors() -> None:
    nl = lab_netlink()
    with pytest.raises(AddressError, match="interface em9 not found"):
        asyncio.run(resolve(nl, parse_address("IPaddr2", ("10.1.201.80/24/em9",))))
    # Only the default route would reach it: findif refuses.
    with pytest.raises(AddressError, match=r"no route covers 192\.0\.2\.7: give the interface"):
        asyncio.run(resolve(nl, parse_address("IPaddr2", ("192.0.2.7",))))
    # An interface but no prefix, and no route of that interface covers it.
    with pytest.raises(AddressError, match=r"no route on em1 covers 10\.9\.0\.1: give the prefix"):
        asyncio.run(resolve(nl, parse_address("IPaddr2", ("10.9.0.1//em1",))))


def test_prefix_from_the_given_interface_route() -> None:
    nl = lab_netlink()
    place = asyncio.run(resolve(nl, parse_address("IPaddr2", ("10.1.201.80//em1",))))
    assert (place.iface, place.prefixlen) == ("em1", 16)


def test_add_and_remove_are_idempotent() -> None:
    nl = lab_netlink()
    spec = parse_address("IPaddr2", ("10.1.201.80/24/em1:vip",))
    place = asyncio.run(resolve(nl, spec))
    assert asyncio.run(add(nl, place)) is True
    assert asyncio.run(add(nl, place)) is False
    (entry,) = asyncio.run(find(nl, spec))
    assert (entry.index, entry.address, entry.prefixlen, entry.label) == (
        2,
        "10.1.201.80",
        24,
        "em1:vip",
    )
    assert nl.added[-1]["broadcast"] == "10.1.201.255"
    assert [a.address for a in asyncio.run(remove(nl, spec))] == ["10.1.201.80"]
    assert asyncio.run(remove(nl, spec)) == []


def test_ipv6_is_added_without_kernel_dad() -> None:
    nl = lab_netlink()
    place = asyncio.run(resolve(nl, parse_address("IPaddr2", ("2001:db8::80/64/em2",))))
    asyncio.run(add(nl, place))
    assert nl.added[-1]["nodad"] is True


def test_without_interface_find_looks_everywhere() -> None:
    nl = lab_netlink()
    asyncio.run(
        add(nl, asyncio.run(resolve(nl, parse_address("IPaddr2", ("10.1.201.80/24/em1",)))))
    )
    assert [a.index for a in asyncio.run(find(nl, parse_address("IPaddr2", ("10.1.201.80",))))] == [
        2
    ]
    assert asyncio.run(find(nl, parse_address("IPaddr2", ("10.1.201.80/24/em2",)))) == []
    assert asyncio.run(find(nl, parse_address("IPaddr2", ("10.1.201.80/24/em9",)))) == []
