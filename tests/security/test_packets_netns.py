"""Hostile datagrams from a third namespace (the outsider on the same bridge):
truncated, oversized, wrong-generation and forged variants of a real heartbeat.
Each is dropped, counted under its reason, and changes nothing.

tests/integration/test_pair.py already sends a replay, a wrong-key forgery, an
older generation at the same seq, an unknown sender and garbage; this file covers
what that does not.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from netns_helpers import Pair, require_netns, wait_until

from hbmon.config.model import AuthConfig, AuthKey, AuthMethod, WireFormat
from hbmon.errors import AUTH_FAILURES, BadAuth, DropReason, MalformedPacket, WireError
from hbmon.testing.lab import VIP, Lab, has_address, socket_in_namespace
from hbmon.wire.auth import Signer
from hbmon.wire.codec import decode, encode
from hbmon.wire.message import Field, Message

pytestmark = pytest.mark.netns

UDPPORT = 694
ETH_P_IP = 0x0800
RIGHT = AuthConfig(1, (AuthKey(1, AuthMethod.SHA1, b"0832bedde820a9bcf6858c0ff6e5e82a"),))
WRONG = AuthConfig(1, (AuthKey(1, AuthMethod.SHA1, b"not-the-cluster-key"),))
# The largest UDP payload IPv4 can carry: 65535 - 20 (IP) - 8 (UDP).
MAX_UDP4 = 65507
STATE_COUNTERS = ("hbmon_node_transitions_total", "hbmon_peer_restarts_total",
                  "hbmon_partition_heals_total")  # fmt: skip


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    require_netns()
    lab = Lab(outsider=True).up()
    p = Pair(lab)
    try:
        wait_until(lambda: _active(p, "solr1", "solr2"), timeout=20, what="solr2 active")
        wait_until(lambda: has_address(lab.nodes["solr2"].ns, "em1", VIP), timeout=20,
                   what="VIP on solr2")  # fmt: skip
        yield p
    finally:
        p.stop()
        lab.down()


def _active(pair: Pair, viewer: str, peer: str) -> bool:
    m = pair.try_metrics(viewer)
    return m is not None and m.get("hbmon_node_state", node=peer, state="active") == 1


def _capture_status(pair: Pair) -> bytes:
    """A genuine status from solr2 as it arrives in solr1's namespace."""
    ns = pair.lab.nodes["solr1"].ns
    sock = socket_in_namespace(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.settimeout(3)
    try:
        while True:
            ip = sock.recv(65535)[14:]
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] != socket.IPPROTO_UDP:
                continue
            if struct.unpack("!HH", ip[ihl : ihl + 4])[1] == UDPPORT:
                payload = ip[ihl + 8 :]
                if decode(payload).message.get("t") == "status":
                    return payload
    finally:
        sock.close()


def _replace(msg: Message, **values: bytes) -> Message:
    return Message(tuple(Field(f.name, values[f.name]) if f.name in values else f
                         for f in msg.fields))  # fmt: skip


def _expected_reason(payload: bytes) -> str:
    """What the agent must count this as: the codec and signer decide malformed and
    the cause of an authentication failure; whatever passes both is a genuine old packet,
    i.e. a replay."""
    try:
        Signer(RIGHT).verify(decode(payload))
    except MalformedPacket:
        return "malformed"
    except BadAuth as exc:
        return exc.reason.value
    except WireError as exc:  # pragma: no cover - every WireError is one of the two
        raise AssertionError(exc) from None
    return "replay"


def _drops(m: Any, reason: str) -> float:
    return float(m.get("hbmon_packets_dropped_total", reason=reason) or 0)


def _send_all(pair: Pair, payloads: list[bytes]) -> dict[str, int]:
    """Send each payload from the outsider; wait until solr1 counted them; check no state change."""
    n1 = pair.lab.nodes["solr1"]
    expected: dict[str, int] = {}
    for p in payloads:
        reason = _expected_reason(p)
        expected[reason] = expected.get(reason, 0) + 1
    before = pair.metrics("solr1")
    sender = socket_in_namespace(pair.lab.outsider_ns, socket.AF_INET, socket.SOCK_DGRAM)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    try:
        for p in payloads:
            sender.sendto(p, (n1.ip, UDPPORT))
            time.sleep(0.002)  # no receive-buffer overflow: every one must be counted
    finally:
        sender.close()
    wait_until(
        lambda: all(_drops(pair.metrics("solr1"), r) - _drops(before, r) >= n
                    for r, n in expected.items()),
        timeout=5, what=f"drops by reason {expected}",
    )  # fmt: skip
    time.sleep(0.3)
    after = pair.metrics("solr1")
    for reason in (r.value for r in DropReason):
        assert _drops(after, reason) - _drops(before, reason) == expected.get(reason, 0), reason
    assert after.get("hbmon_node_state", node="solr2", state="active") == 1
    for name in STATE_COUNTERS:
        assert after.get(name, node="solr2") == before.get(name, node="solr2"), name
    assert (after.get("hbmon_failovers_total") or 0) == (before.get("hbmon_failovers_total") or 0)
    assert has_address(pair.lab.nodes["solr2"].ns, "em1", VIP)
    assert not has_address(n1.ns, "em1", VIP)
    return expected


def test_truncated_packets_are_dropped_as_malformed_or_bad_auth(pair: Pair) -> None:
    real = _capture_status(pair)
    classic = encode(decode(real).message.without("auth"), Signer(RIGHT).sign, WireFormat.CLASSIC)
    end = real.index(b"%%%\n")
    cuts = {1, 3, 4, 5, 10, len(real) // 3, len(real) // 2, end - 1, end, end + 2,
            end + 4, end + 6, len(real) - 5, len(real) - 1}  # fmt: skip
    payloads = [real[:n] for n in sorted(cuts)] + [classic[:n] for n in (4, 20, len(classic) - 6)]
    expected = _send_all(pair, payloads)
    # Truncation is caught by the framing, or, inside the trailer, by the signature.
    assert expected.get("malformed", 0) >= 8, expected
    assert sum(expected.get(r, 0) for r in AUTH_FAILURES) >= 1, expected


def test_largest_udp_datagrams_are_dropped_unparsed_or_unverified(pair: Pair) -> None:
    real = decode(_capture_status(pair)).message.without("auth")

    # A well-formed message padded to exactly the largest IPv4 UDP payload.
    def padded(n: int) -> bytes:
        return encode(real.with_fields([Field("pad", b"A" * n)]), Signer(WRONG).sign,
                      WireFormat.NETSTRING)  # fmt: skip

    n = MAX_UDP4 - len(padded(0))
    n -= len(padded(n)) - MAX_UDP4  # the field's length prefix grew by a few digits
    forged = padded(n)
    assert len(forged) == MAX_UDP4
    # The same size with a length that claims more than the datagram holds.
    lying = b"###\n" + b"262143:(0)t=" + b"x" * (MAX_UDP4 - 16)
    junk = b"\xff" * MAX_UDP4
    expected = _send_all(pair, [forged, lying[:MAX_UDP4], junk])
    assert expected == {"auth_mismatch": 1, "malformed": 2}
    # Anything over 256 KiB (heartbeat's MAXMSG) cannot even leave as one UDP/IPv4
    # datagram; the decoder's own limit is tested in test_decoder_fuzz.py.
    sock = socket_in_namespace(pair.lab.outsider_ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(OSError, match="too long") as info:
            sock.sendto(b"###\n" + b"x" * (256 * 1024), (pair.lab.nodes["solr1"].ip, UDPPORT))
        assert info.value.errno == errno.EMSGSIZE
    finally:
        sock.close()


def test_wrong_generations_are_refused(pair: Pair) -> None:
    real = decode(_capture_status(pair)).message.without("auth")
    hg, seq = real.get_hex("hg"), real.get_hex("seq")
    assert hg is not None
    assert seq is not None

    def gen(g: int, s: int, auth: AuthConfig) -> bytes:
        msg = _replace(real, hg=format(g, "x").encode(), seq=format(s, "x").encode())
        return encode(msg, Signer(auth).sign, WireFormat.NETSTRING)

    payloads = [
        # Signed with the cluster key (a captured-and-edited packet cannot be, but an
        # old life's traffic is): an older generation, even with a new seq, is a replay.
        gen(hg - 1, seq + 1000, RIGHT),
        gen(0, seq + 1000, RIGHT),
        # A newer generation would mean a restart: forged, it must not count as one.
        gen(hg + 1, 1, WRONG),
        gen(hg + 10**6, seq + 1, WRONG),
    ]
    expected = _send_all(pair, payloads)
    assert expected == {"replay": 2, "auth_mismatch": 2}
