"""Codec: golden captures, framing errors, round trips and fuzzing."""

from __future__ import annotations

import base64

import hb_captures
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hbmon.config.model import AuthConfig, AuthKey, AuthMethod, WireFormat
from hbmon.errors import BadAuth, MalformedPacket
from hbmon.wire.auth import Signer
from hbmon.wire.codec import MAX_PACKET, decode, encode
from hbmon.wire.message import FT_BINARY, FT_STRING, Decoded, Field, Message

SHA1 = Signer(hb_captures.auth_config("sha1"))
FIRST_SHA1 = (
    b"###\n11:(0)t=status,10:(0)st=init,10:(0)dt=1388,13:(0)protocol=1,12:(0)src=solr1,"
    b"27:(1)srcuuid=H\xd3n*.\xedNI\x9c\xd4\xcc<\xd9\xee\x8c-,8:(0)seq=1,14:(0)hg=6b06d615,"
    b"14:(0)ts=6b06d614,31:(0)ld=0.04 0.10 0.16 1/108 1609,8:(0)ttl=4,"
    b"50:(0)auth=1 4a4e4dab1427f9b819783bc4c6d6dbaa46a1655f,%%%\n"
    b"42:1 427ec304395c432e909e7f110692d0d05312c64a,"
)


# ----------------------------------------------------------- golden data --


@pytest.mark.parametrize("capture", hb_captures.CAPTURES)
def test_every_captured_payload_decodes_verifies_and_reencodes(capture: str) -> None:
    signer = Signer(hb_captures.auth_config(capture))
    packets = hb_captures.payloads(capture)
    assert len(packets) == hb_captures.EXPECTED_COUNTS[capture]
    mismatched = []
    for p in packets:
        d = decode(p.data)
        assert d.fmt is WireFormat.NETSTRING
        assert d.signed == p.data[: p.data.index(b"%%%\n") + 4]
        assert d.trailer is not None
        assert p.data.endswith(b":" + d.trailer.encode() + b",")
        assert d.message.fields[-1].name == "auth"
        signer.verify(d)
        if encode(d.message.without("auth"), signer.sign, WireFormat.NETSTRING) != p.data:
            mismatched.append(p.index)
    assert mismatched == []


def test_first_sha1_packet_fields() -> None:
    assert hb_captures.payloads("sha1")[0].data == FIRST_SHA1
    d = decode(FIRST_SHA1)
    assert d.message.names() == (
        *("t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"),
    )
    assert d.message.type == "status"
    assert d.message.src == "solr1"
    assert d.message.get_hex("dt") == 5000
    assert d.message.get_hex("hg") == 0x6B06D615
    uuid = d.message.fields[5]
    assert uuid.ftype == FT_BINARY
    assert uuid.value.hex() == "48d36e2a2eed4e499cd4cc3cd9ee8c2d"
    assert d.message.get("auth") == "1 4a4e4dab1427f9b819783bc4c6d6dbaa46a1655f"
    assert d.trailer == "1 427ec304395c432e909e7f110692d0d05312c64a"
    assert len(d.signed) == 262


def test_retransmitted_packets_are_byte_identical_to_originals() -> None:
    seen: dict[tuple[str | None, str | None, int], bytes] = {}
    repeats = 0
    for p in hb_captures.payloads("sha1"):
        m = decode(p.data).message
        seq = m.get_hex("seq")
        if p.kind != "udp" or seq is None:
            continue
        key = (m.src, m.get("hg"), seq)
        if key in seen:
            repeats += 1
            assert seen[key] == p.data
        seen[key] = p.data
    assert repeats == 3  # seqs 0x77-0x79 from solr2 (README timeline, +52.06)


# ------------------------------------------------------------- framing --

BODY = b"###\n11:(0)t=status,12:(0)src=solr1,%%%\n"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello", "unknown format"),
        (b"###\n", "truncated"),
        (b"###\n11:(0)t=status,", "truncated"),
        (b"###\n11:(0)t=stat", "truncated"),
        (b"###\n11:(0)t=status;12:(0)src=solr1,%%%\n", "comma"),
        (b"###\n1x:(0)t=status,%%%\n", "length"),
        (b"###\n-1:(0)t=status,%%%\n", "length"),
        (b"###\n011:(0)t=status,12:(0)src=solr1,%%%\n", "length"),
        (b"###\n:(0)t=status,%%%\n", "length"),
        (b"###\n99999999999:x,%%%\n", "length"),
        (b"###\n10:(0)tstatus,12:(0)src=solr1,%%%\n", "'='"),
        (b"###\n8:t=status,12:(0)src=solr1,%%%\n", "type"),
        (b"###\n11:(7)t=status,12:(0)src=solr1,%%%\n", "type 7"),
        (b"###\n10:(0)=status,12:(0)src=solr1,%%%\n", "name"),
        (b"###\n11:(0)\xff=status,12:(0)src=solr1,%%%\n", "UTF-8"),
        (b"###\n12:(0)src=solr1,%%%\n", "'t'"),
        (b"###\n11:(0)t=status,%%%\n", "'src'"),
        (BODY + b"5:1 abc,junk", "junk"),
        (BODY + b"5:1 abc", "truncated"),
        (BODY + b"9:1 abc,", "truncated"),
        (BODY + b"5:1\tabc,", "printable"),
        (b">>>\nt=status\nsrc=solr1\n", "truncated"),
        (b">>>\nt=status\nsrc=solr1\n<<<\nmore", "junk"),
        (b">>>\nt=status\nsrcsolr1\n<<<\n", "'='"),
        (b">>>\nt=status\n\nsrc=solr1\n<<<\n", "'='"),
        (b">>>\nt=status\nsrc=so\0lr1\n<<<\n", "NUL"),
        (b">>>\nt=status\nsrc=solr1\n(1)u=!!!!\n<<<\n", "base64"),
        (b">>>\nt=status\nsrc=solr1\n(1)u=QUJ\n<<<\n", "base64"),
        (b">>>\nt=status\nsrc=solr1\n(x)u=QUJD\n<<<\n", "type"),
        (b">>>\nt=status\n<<<\n", "'src'"),
        (b"###\n" + b"x" * MAX_PACKET, "oversized"),
    ],
)
def test_malformed_packets_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        decode(data)


def test_netstring_without_trailer_decodes_but_does_not_verify() -> None:
    d = decode(BODY)
    assert d.trailer is None
    assert d.signed == BODY
    with pytest.raises(BadAuth, match="trailer"):
        SHA1.verify(d)


def test_trailing_nul_is_tolerated() -> None:
    d = decode(FIRST_SHA1 + b"\0")
    SHA1.verify(d)
    assert d == decode(FIRST_SHA1)


# ------------------------------------------------------------- classic --


def test_classic_format_as_heartbeat_writes_it() -> None:
    uuid = bytes(range(16))
    m = Message.build(("t", "status"), ("src", "solr1"), ("srcuuid", uuid), ("ld", "0.1 0.2"))
    data = encode(m, SHA1.sign, WireFormat.CLASSIC)
    lines = b"t=status\nsrc=solr1\n(1)srcuuid=" + base64.b64encode(uuid) + b"\nld=0.1 0.2\n"
    assert data.startswith(b">>>\n" + lines + b"auth=1 ")
    assert data.endswith(b"\n<<<\n\0")
    d = decode(data)
    assert d == Decoded(m.with_fields([d.message.fields[-1]]), WireFormat.CLASSIC, b"", None)
    SHA1.verify(d)
    # The NUL is optional on receipt.
    assert decode(data[:-1]) == d


def test_classic_string_field_with_explicit_type_zero() -> None:
    d = decode(b">>>\n(0)t=status\nsrc=a\n<<<\n")
    assert d.message == Message.build(("t", "status"), ("src", "a"))


def test_classic_auth_is_checked() -> None:
    data = encode(Message.build(("t", "x"), ("src", "a")), SHA1.sign, WireFormat.CLASSIC)
    with pytest.raises(BadAuth):
        SHA1.verify(decode(data.replace(b"t=x", b"t=y")))
    with pytest.raises(BadAuth, match="no auth"):
        SHA1.verify(decode(b">>>\nt=x\nsrc=a\n<<<\n"))


# ---------------------------------------------------------- encode errors --


@pytest.mark.parametrize(
    ("field", "fmt"),
    [
        (Field("auth", b"1 00"), WireFormat.NETSTRING),
        (Field("a=b", b"x"), WireFormat.NETSTRING),
        (Field("", b"x"), WireFormat.NETSTRING),
        (Field("(1)x", b"x"), WireFormat.CLASSIC),
        (Field("a\nb", b"x"), WireFormat.CLASSIC),
        (Field("a", b"x\ny"), WireFormat.CLASSIC),
        (Field("a", b"x\0y"), WireFormat.NETSTRING),
        (Field("a", b"x", 4), WireFormat.NETSTRING),
        (Field("big", b"x" * MAX_PACKET), WireFormat.NETSTRING),
    ],
)
def test_encode_refuses_what_the_format_cannot_carry(field: Field, fmt: WireFormat) -> None:
    m = Message.build(("t", "x"), ("src", "a")).with_fields([field])
    with pytest.raises(ValueError):  # noqa: PT011 - the text varies by case
        encode(m, SHA1.sign, fmt)


def test_netstring_string_values_may_hold_newlines() -> None:
    m = Message.build(("t", "x"), ("src", "a"), ("info", "two\nlines"))
    d = decode(encode(m, SHA1.sign, WireFormat.NETSTRING))
    assert d.message.without("auth") == m
    SHA1.verify(d)


# ------------------------------------------------------------ properties --

NAMES = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", min_size=1
).filter(lambda n: n not in ("auth", "t", "src"))
CLASSIC_VALUE = st.binary(max_size=40).filter(lambda v: b"\n" not in v and b"\0" not in v)
NETSTRING_VALUE = st.binary(max_size=40).filter(lambda v: b"\0" not in v)


def _fields(value: st.SearchStrategy[bytes]) -> st.SearchStrategy[Field]:
    return st.one_of(
        st.builds(Field, NAMES, value, st.just(FT_STRING)),
        st.builds(Field, NAMES, st.binary(max_size=40), st.just(FT_BINARY)),
    )


def _messages(value: st.SearchStrategy[bytes]) -> st.SearchStrategy[Message]:
    return st.builds(
        lambda t, src, rest: Message((Field("t", t), Field("src", src), *rest)),
        value,
        value,
        st.lists(_fields(value), max_size=12),
    )


KEYS = st.sampled_from(
    [
        AuthKey(1, AuthMethod.SHA1, b"k1"),
        AuthKey(2, AuthMethod.MD5, b"k2"),
        AuthKey(3, AuthMethod.CRC, b""),
        AuthKey(15, AuthMethod.SHA256, b"k15"),
    ]
)


@given(m=_messages(NETSTRING_VALUE), key=KEYS)
def test_netstring_round_trip(m: Message, key: AuthKey) -> None:
    signer = Signer(AuthConfig(key.index, (key,)))
    data = encode(m, signer.sign, WireFormat.NETSTRING)
    d = decode(data)
    assert d.fmt is WireFormat.NETSTRING
    assert d.message.without("auth") == m
    assert d.message.fields[-1].name == "auth"
    assert d.message.names().count("auth") == 1
    signer.verify(d)
    assert encode(d.message.without("auth"), signer.sign, WireFormat.NETSTRING) == data


@given(m=_messages(CLASSIC_VALUE), key=KEYS)
def test_classic_round_trip(m: Message, key: AuthKey) -> None:
    signer = Signer(AuthConfig(key.index, (key,)))
    data = encode(m, signer.sign, WireFormat.CLASSIC)
    d = decode(data)
    assert d.fmt is WireFormat.CLASSIC
    assert d.message.without("auth") == m
    assert d.message.fields[-1].name == "auth"
    signer.verify(d)
    assert encode(d.message.without("auth"), signer.sign, WireFormat.CLASSIC) == data


# --------------------------------------------------------------- fuzzing --

CRC = Signer(hb_captures.auth_config("crc"))


def _decode_and_verify(data: bytes, signer: Signer) -> bool:
    """True if `data` decodes and verifies; only the two drop errors may escape."""
    try:
        d = decode(data)
    except MalformedPacket:
        return False
    try:
        signer.verify(d)
    except BadAuth:
        return False
    return True


@settings(max_examples=500)
@given(data=st.binary(max_size=600))
@example(data=b"###\n")
@example(data=b">>>\n<<<\n")
@example(data=b"###\n%%%\n1:1,")
@example(data=b"###\n5:(1)a=,11:(0)t=status,12:(0)src=solr1,%%%\n3:1 x,")
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    _decode_and_verify(data, SHA1)
    _decode_and_verify(b"###\n" + data, SHA1)
    _decode_and_verify(b">>>\n" + data, CRC)


@st.composite
def mutated_packets(draw: st.DrawFn) -> tuple[str, bytes, bytes]:
    capture, p = draw(st.sampled_from(hb_captures.all_payloads()))
    data = bytearray(p.data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "replace"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "truncate":
            del data[pos:]
        elif op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "replace" and data:
            data[pos] = draw(st.sampled_from(b"0123456789:,()=%#\n\0 "))
    return capture, p.data, bytes(data)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated_packets())
def test_mutated_real_packets_are_dropped_cleanly(case: tuple[str, bytes, bytes]) -> None:
    capture, original, data = case
    signer = Signer(hb_captures.auth_config(capture))
    if _decode_and_verify(data, signer):
        # The only change a receiver may accept is a trailing NUL.
        assert data in (original, original + b"\0")
