"""haresources syntax (spec §3.1)."""

from __future__ import annotations

from hbmon.config.haresources import parse_haresources, parse_resource
from hbmon.config.model import Resource, ResourceGroup


def test_reference_line() -> None:
    groups, problems = parse_haresources(b"solr2 IPaddr::10.1.201.80/24/em1\n", "haresources")
    assert problems == []
    assert groups == (
        ResourceGroup("solr2", (Resource("IPaddr", ("10.1.201.80/24/em1",)),), line=1),
    )
    assert groups[0].key == "IPaddr::10.1.201.80/24/em1"


def test_script_args_split_on_double_colon() -> None:
    assert parse_resource("Filesystem::/dev/sdb1::/data::ext4") == Resource(
        "Filesystem", ("/dev/sdb1", "/data", "ext4")
    )
    assert parse_resource("httpd") == Resource("httpd")


def test_bare_ip_means_ipaddr() -> None:
    assert parse_resource("10.0.0.5") == Resource("IPaddr", ("10.0.0.5",))
    assert parse_resource("10.0.0.5/24/eth0") == Resource("IPaddr", ("10.0.0.5/24/eth0",))


def test_continuation_comments_crlf_and_case() -> None:
    text = (
        b"# groups\r\n"
        b"Alpha 10.0.0.5 \\\r\n"
        b"   Filesystem::/dev/sdb1::/data \\\n"
        b"   httpd   # web\n"
        b"\n"
        b"beta\tIPaddr2::10.0.0.6/24/eth0 mysql # \xd0\xc4 gbk comment\n"
    )
    groups, problems = parse_haresources(text, "haresources")
    assert problems == []
    assert [(g.node, g.line, [str(r) for r in g.resources]) for g in groups] == [
        ("alpha", 2, ["IPaddr::10.0.0.5", "Filesystem::/dev/sdb1::/data", "httpd"]),
        ("beta", 6, ["IPaddr2::10.0.0.6/24/eth0", "mysql"]),
    ]


def test_group_without_resources_and_empty_arg() -> None:
    _, problems = parse_haresources(b"alpha\nbeta httpd::\n", "haresources")
    assert [str(p) for p in problems] == [
        "haresources:1: resource group of [alpha] has no resources",
        "haresources:2: bad resource [httpd::]: expected script[::arg…]",
    ]
