"""ICMP echo bytes of hbmon/io/ping.py (the socket side runs in the integration tests)."""

from __future__ import annotations

import socket
import struct

from hbmon.io.ping import PAYLOAD, checksum, echo_request, parse_reply


def _ipv4(payload: bytes) -> bytes:
    return bytes([0x45]) + b"\0" * 19 + payload


def test_echo_request_v4_checksums_to_zero() -> None:
    req = echo_request(socket.AF_INET, 0x1234, 7)
    assert req[:2] == b"\x08\x00"
    assert req[4:8] == b"\x12\x34\x00\x07"
    assert req[8:] == PAYLOAD
    assert len(req) == 64
    assert checksum(req) == 0


def test_echo_request_v6_leaves_checksum_to_the_kernel() -> None:
    req = echo_request(socket.AF_INET6, 1, 2)
    assert req[:4] == b"\x80\x00\x00\x00"
    assert req[4:8] == b"\x00\x01\x00\x02"


def test_reply_and_quoted_error_are_matched() -> None:
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x1234, 7) + PAYLOAD
    assert parse_reply(socket.AF_INET, _ipv4(reply)) == (True, 0x1234, 7)
    ours = echo_request(socket.AF_INET, 0x1234, 8)
    unreachable = struct.pack("!BBHI", 3, 1, 0, 0) + _ipv4(ours[:8])
    assert parse_reply(socket.AF_INET, _ipv4(unreachable)) == (False, 0x1234, 8)
    v6 = struct.pack("!BBHHH", 129, 0, 0, 5, 6)
    assert parse_reply(socket.AF_INET6, v6) == (True, 5, 6)


def test_other_icmp_and_garbage_are_ignored() -> None:
    request = echo_request(socket.AF_INET, 1, 1)  # someone pinging us
    assert parse_reply(socket.AF_INET, _ipv4(request)) is None
    assert parse_reply(socket.AF_INET, _ipv4(b"\x00\x00")) is None
    assert parse_reply(socket.AF_INET, b"") is None
    assert parse_reply(socket.AF_INET6, b"\x01\x00\x00\x00") is None
