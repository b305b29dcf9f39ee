"""Builders rebuild every captured message field for field; the RTT echo field."""

from __future__ import annotations

from collections import Counter
from typing import Any

import hb_captures
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hbmon.config.model import WireFormat
from hbmon.wire import builders
from hbmon.wire.auth import Signer
from hbmon.wire.builders import EchoEntry, echo_entries, encode_echo, parse_echo
from hbmon.wire.codec import decode, encode
from hbmon.wire.message import Field, Message


def _req(m: Message, name: str) -> str:
    v = m.get(name)
    assert v is not None, name
    return v


def _hex(m: Message, name: str) -> int:
    v = m.get_hex(name)
    assert v is not None, name
    return v


def _uuid(m: Message, name: str) -> bytes:
    v = m.get_bytes(name)
    assert v is not None, name
    assert len(v) == 16, name
    return v


def _common(m: Message) -> dict[str, Any]:
    return {
        "src": _req(m, "src"),
        "srcuuid": _uuid(m, "srcuuid"),
        "seq": _hex(m, "seq"),
        "hg": _hex(m, "hg"),
        "ts": _hex(m, "ts"),
        "ld": _req(m, "ld"),
        "ttl": int(_req(m, "ttl")),
    }


def _rebuild(m: Message) -> Message:
    t = m.type
    if t == "status":
        return builders.status(st=_req(m, "st"), dt_ms=_hex(m, "dt"), **_common(m))
    if t == "shutdone":
        return builders.shutdone(**_common(m))
    if t == "starting":
        return builders.starting(**_common(m))
    if t == "NS_st":
        return builders.ping(src=_req(m, "src"), ts=_hex(m, "ts"))
    ns = (
        {
            "dest": _req(m, "dest"),
            "destuuid": _uuid(m, "destuuid"),
            "src": _req(m, "src"),
            "srcuuid": _uuid(m, "srcuuid"),
            "hg": _hex(m, "hg"),
            "ts": _hex(m, "ts"),
            "ttl": int(_req(m, "ttl")),
        }
        if t in ("NS_ackmsg", "NS_rexmit")
        else {}
    )
    if t == "NS_ackmsg":
        return builders.ns_ackmsg(ackseq=_hex(m, "ackseq"), **ns)
    if t == "NS_rexmit":
        return builders.ns_rexmit(
            firstseq=int(_req(m, "firstseq")),
            lastseq=int(_req(m, "lastseq")),
            **ns,
        )
    head = m.fields[: m.names().index("src")]
    return builders.sequenced(head, **_common(m))


@pytest.mark.parametrize("capture", hb_captures.CAPTURES)
def test_builders_rebuild_every_captured_message(capture: str) -> None:
    signer = Signer(hb_captures.auth_config(capture))
    types: Counter[str] = Counter()
    for p in hb_captures.payloads(capture):
        m = decode(p.data).message.without("auth")
        rebuilt = _rebuild(m)
        assert rebuilt == m, (p.index, m.type)
        assert encode(rebuilt, signer.sign, WireFormat.NETSTRING) == p.data
        types[m.type or ""] += 1
    assert {"status", "shutdone", "starting", "NS_ackmsg", "NS_st"} <= set(types)
    if capture == "sha1":
        assert types["NS_rexmit"] == 3
        assert {"resource", "ask_resources", "hb_takeover", "repnodes", "stonith"} <= set(types)


def test_status_layout_and_formats() -> None:
    echo = encode_echo([EchoEntry("solr2", "em1", 0x77, 1500)])
    m = builders.status(
        st="active",
        dt_ms=3000,
        src="solr1",
        srcuuid=bytes(16),
        seq=255,
        hg=0x6B06D615,
        ts=0x6B06D614,
        ld="0.04 0.10 0.16 1/108 1609",
        ttl=4,
        extra=(echo,),
    )
    assert m.names() == (
        *("t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld"),
        *("hbecho", "ttl"),
    )
    assert [f.text for f in m.fields if f.name in ("dt", "protocol", "seq", "hg", "ts", "ttl")] == [
        "bb8",
        "1",
        "ff",
        "6b06d615",
        "6b06d614",
        "4",
    ]
    assert m.get("hbecho") == "solr2/em1:77:1500"


def test_rexmit_is_decimal_and_ordered() -> None:
    kw = {
        "dest": "b",
        "destuuid": bytes(16),
        "src": "a",
        "srcuuid": bytes(16),
        "hg": 1,
        "ts": 2,
        "ttl": 4,
    }
    m = builders.ns_rexmit(firstseq=119, lastseq=121, **kw)
    assert (m.get("firstseq"), m.get("lastseq")) == ("119", "121")
    with pytest.raises(ValueError, match="firstseq"):
        builders.ns_rexmit(firstseq=5, lastseq=4, **kw)


def test_negative_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="seq"):
        builders.starting(src="a", srcuuid=bytes(16), seq=-1, hg=1, ts=1, ld="", ttl=4)


def test_echo_field_survives_the_wire_and_is_signed() -> None:
    signer = Signer(hb_captures.auth_config("sha1"))
    entries = (EchoEntry("solr2", "em1", 0x1F, 250), EchoEntry("solr3", "eth0/10.0.0.3", 7, 0))
    m = builders.status(
        st="active",
        dt_ms=3000,
        src="solr1",
        srcuuid=bytes(16),
        seq=3,
        hg=1,
        ts=2,
        ld="x",
        ttl=4,
        extra=(encode_echo(entries),),
    )
    for fmt in WireFormat:
        d = decode(encode(m, signer.sign, fmt))
        signer.verify(d)
        assert echo_entries(d.message) == entries


# ----------------------------------------------------------------- echo --

NODE = st.text(
    st.characters(blacklist_characters="/;\n\r\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
IFACE = st.text(
    st.characters(blacklist_characters=";\n\r\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=20,
)
ENTRY = st.builds(EchoEntry, NODE, IFACE, st.integers(0, (1 << 64) - 1), st.integers(0, 10**19 - 1))


@given(entries=st.lists(ENTRY, max_size=6))
@example(entries=[EchoEntry("n1", "eth0/fe80::1", 0xABC, 12), EchoEntry("n:2", "a:b", 0, 0)])
def test_echo_round_trip(entries: list[EchoEntry]) -> None:
    field = encode_echo(entries)
    assert field.name == "hbecho"
    assert parse_echo(field.text) == tuple(entries)


def test_echo_format() -> None:
    field = encode_echo([EchoEntry("solr2", "em1", 0x77, 1500), EchoEntry("solr3", "em2", 10, 0)])
    assert field.value == b"solr2/em1:77:1500;solr3/em2:a:0"
    assert encode_echo([]).value == b""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        (";;", ()),
        ("garbage", ()),
        ("n/e:zz:5", ()),
        ("n/e:1f:-5", ()),
        ("n/e:1f", ()),
        ("/e:1f:5", ()),
        ("n/:1f:5", ()),
        ("n/e:1f:5x", ()),
        ("n/e:11111111111111111:5", ()),  # seq wider than 64 bits
        ("n/e:1:12345678901234567890", ()),
        ("n/e:1F:5", (EchoEntry("n", "e", 0x1F, 5),)),
        (
            "bad;n/e:1f:5;;x/y:2:3;junk:1:2",
            (EchoEntry("n", "e", 0x1F, 5), EchoEntry("x", "y", 2, 3)),
        ),
    ],
)
def test_echo_parse_is_tolerant(value: str, expected: tuple[EchoEntry, ...]) -> None:
    assert parse_echo(value) == expected


@given(value=st.text(max_size=200))
def test_echo_parse_never_raises(value: str) -> None:
    for e in parse_echo(value):
        assert e.seq >= 0
        assert e.hold_us >= 0


@pytest.mark.parametrize(
    "entry",
    [
        EchoEntry("", "e", 1, 1),
        EchoEntry("a/b", "e", 1, 1),
        EchoEntry("a;b", "e", 1, 1),
        EchoEntry("a", "", 1, 1),
        EchoEntry("a", "e;f", 1, 1),
        EchoEntry("a", "e", -1, 1),
        EchoEntry("a", "e", 1, -1),
        EchoEntry("a", "e", 1 << 64, 1),
    ],
)
def test_echo_encode_refuses_what_it_cannot_carry(entry: EchoEntry) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the text varies by case
        encode_echo([entry])


def test_message_without_echo() -> None:
    assert echo_entries(Message((Field("t", b"status"),))) == ()


def test_a_field_cache_shares_fields_and_changes_no_message() -> None:
    cache = builders.FieldCache(size=8)
    kw = {"src": "solr1", "srcuuid": b"\x01" * 16, "hg": 5, "ts": 9, "ld": "n/a", "ttl": 4}
    for seq in range(1, 30):
        cached = builders.status(st="active", dt_ms=2000, seq=seq, fields=cache, **kw)  # type: ignore[arg-type]
        assert cached == builders.status(st="active", dt_ms=2000, seq=seq, **kw)  # type: ignore[arg-type]
    a = builders.shutdone(seq=40, fields=cache, **kw)  # type: ignore[arg-type]
    b = builders.shutdone(seq=41, fields=cache, **kw)  # type: ignore[arg-type]
    assert a.fields[2] is b.fields[2]  # src, built once
    assert a.fields[4] is not b.fields[4]  # seq, new each time
    assert 0 < len(cache) <= 8  # bounded: starts over when full
