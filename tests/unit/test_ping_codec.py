"""ICMP bytes of hbmon/io/ping.py: icmplib's echo requests, and the hand-written parse
of what a raw socket receives into icmplib's ICMPReply (the socket side runs in the
pinger and integration tests)."""

from __future__ import annotations

import socket
import struct

import icmplib

from hbmon.io.ping import PAYLOAD, EchoRequests, make_reply, parse_reply


def _ipv4(payload: bytes, options: bytes = b"") -> bytes:
    ihl = (20 + len(options)) // 4
    return bytes([0x40 | ihl]) + b"\0" * 19 + options + payload


def _echo(kind: int, ident: int, seq: int) -> bytes:
    return struct.pack("!BBHHH", kind, 0, 0, ident, seq) + PAYLOAD


def test_reply_is_an_icmplib_reply_with_its_source_and_time() -> None:
    reply = parse_reply(socket.AF_INET, _ipv4(_echo(0, 0x1234, 7)), "10.0.0.1", 12.5)
    assert isinstance(reply, icmplib.ICMPReply)
    assert (reply.id, reply.sequence, reply.type, reply.code) == (0x1234, 7, 0, 0)
    assert reply.source == "10.0.0.1"
    assert reply.time == 12.5
    assert reply.bytes_received == 84
    reply.raise_for_status()  # icmplib agrees it is a successful echo reply


def test_ipv4_options_are_skipped() -> None:
    reply = parse_reply(socket.AF_INET, _ipv4(_echo(0, 9, 10), options=b"\x01" * 8))
    assert reply is not None
    assert (reply.id, reply.sequence) == (9, 10)


def test_a_quoted_echo_in_an_error_is_matched_as_that_echo() -> None:
    ours = _echo(8, 0x1234, 8)
    unreachable = struct.pack("!BBHI", 3, 1, 0, 0) + _ipv4(ours[:8])
    reply = parse_reply(socket.AF_INET, _ipv4(unreachable), "10.0.0.254")
    assert reply is not None
    assert (reply.id, reply.sequence, reply.type, reply.code) == (0x1234, 8, 3, 1)
    v6_unreachable = struct.pack("!BBHI", 1, 3, 0, 0) + bytes(40) + _echo(128, 5, 6)[:8]
    reply = parse_reply(socket.AF_INET6, v6_unreachable, "fe80::1")
    assert reply is not None
    assert (reply.id, reply.sequence, reply.type) == (5, 6, 1)


def test_ipv6_reply() -> None:
    reply = parse_reply(socket.AF_INET6, struct.pack("!BBHHH", 129, 0, 0, 5, 6))
    assert reply is not None
    assert (reply.id, reply.sequence, reply.type) == (5, 6, 129)


def test_other_icmp_and_garbage_are_ignored() -> None:
    assert parse_reply(socket.AF_INET, _ipv4(_echo(8, 1, 1))) is None  # someone pinging us
    assert parse_reply(socket.AF_INET, _ipv4(b"\x0d\x00" + bytes(18))) is None  # timestamp
    assert parse_reply(socket.AF_INET, _ipv4(b"\x00\x00")) is None  # a truncated reply
    assert parse_reply(socket.AF_INET, _ipv4(struct.pack("!BBHI", 3, 1, 0, 0))) is None
    assert parse_reply(socket.AF_INET, b"") is None
    assert parse_reply(socket.AF_INET6, b"\x01\x00\x00\x00") is None
    assert parse_reply(socket.AF_INET6, _echo(128, 1, 1)) is None


def test_make_reply_fits_the_installed_icmplib() -> None:
    """icmplib 3 takes a `family`, 2.1 does not; both give the same reply."""
    reply = make_reply(socket.AF_INET6, "::1", 129, 0, 1, 2, 64, 1.0)
    assert (reply.source, reply.id, reply.sequence, reply.type) == ("::1", 1, 2, 129)
    reply.raise_for_status()


def _ones_complement_sum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_echo_requests_are_valid_icmp_echoes_for_every_sequence() -> None:
    requests = EchoRequests(0xBEEF)
    for seq in [*range(0, 70), *range(0, 0x10000, 977), 0xFFFE, 0xFFFF]:
        v4 = requests.packet(socket.AF_INET, seq)
        assert len(v4) == 64
        kind, code, _, ident, got_seq = struct.unpack_from("!BBHHH", v4)
        assert (kind, code, ident, got_seq) == (8, 0, 0xBEEF, seq)
        assert v4[8:] == PAYLOAD
        assert _ones_complement_sum(v4) == 0xFFFF  # a correct checksum
        v6 = requests.packet(socket.AF_INET6, seq)
        # ICMPv6: type 128, checksum left to the kernel (RFC 3542 raw sockets).
        assert struct.unpack_from("!BBHHH", v6) == (128, 0, 0, 0xBEEF, seq)
        assert v6[8:] == PAYLOAD
