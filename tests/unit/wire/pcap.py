"""A minimal reader for the golden captures (tests only).

Classic libpcap files (either byte order, µs or ns timestamps), Ethernet link
type, IPv4. Yields the heartbeat payloads: UDP datagrams to or from port 694 and
the data of ICMP echo requests/replies (heartbeat's ping medium puts a signed
message there). Everything else in the capture (ARP, port-unreachables) is
skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEARTBEAT_PORT = 694

_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_VLAN = 0x8100
_IPPROTO_ICMP = 1
_IPPROTO_UDP = 17
_ICMP_ECHO_REPLY = 0
_ICMP_ECHO_REQUEST = 8

# magic number as read little-endian -> (struct byte order, timestamp divisor)
_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e6),
    b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9),
    b"\xa1\xb2\x3c\x4d": (">", 1e9),
}


@dataclass(frozen=True, slots=True)
class Payload:
    index: int  # position among the payloads of this file (0-based)
    time: float  # capture timestamp, seconds since the epoch
    kind: str  # "udp", "icmp-echo-request" or "icmp-echo-reply"
    src: str  # "ip:port" for udp, "ip" for icmp
    dst: str
    data: bytes


def frames(path: Path) -> Iterator[tuple[float, int, bytes]]:
    """(timestamp, link type, frame) for every record of a classic pcap file."""
    raw = path.read_bytes()
    if len(raw) < 24 or raw[:4] not in _MAGIC:
        raise ValueError(f"{path}: not a classic pcap file")
    order, divisor = _MAGIC[raw[:4]]
    (linktype,) = struct.unpack_from(order + "I", raw, 20)
    off = 24
    while off + 16 <= len(raw):
        sec, frac, caplen, _origlen = struct.unpack_from(order + "IIII", raw, off)
        off += 16
        yield sec + frac / divisor, linktype, raw[off : off + caplen]
        off += caplen


def _ipv4_of(frame: bytes) -> bytes | None:
    if len(frame) < 14:
        return None
    off = 12
    (ethertype,) = struct.unpack_from(">H", frame, off)
    while ethertype == _ETHERTYPE_VLAN and len(frame) >= off + 6:
        off += 4
        (ethertype,) = struct.unpack_from(">H", frame, off)
    if ethertype != _ETHERTYPE_IPV4:
        return None
    return frame[off + 2 :]


def _addr(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def payloads(path: Path) -> Iterator[Payload]:
    """Heartbeat payloads (UDP port 694 and ICMP echo data) in capture order."""
    index = 0
    for ts, linktype, frame in frames(path):
        if linktype != _LINKTYPE_ETHERNET:
            continue
        ip = _ipv4_of(frame)
        if ip is None or len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 0x0F) * 4
        (total,) = struct.unpack_from(">H", ip, 2)
        (frag,) = struct.unpack_from(">H", ip, 6)
        if frag & 0x3FFF:  # a fragment (offset or more-fragments): not in these captures
            continue
        proto = ip[9]
        src, dst = _addr(ip[12:16]), _addr(ip[16:20])
        l4 = ip[ihl:total]
        if proto == _IPPROTO_UDP and len(l4) >= 8:
            sport, dport, ulen = struct.unpack_from(">HHH", l4, 0)
            if HEARTBEAT_PORT not in (sport, dport):
                continue
            kind, data = "udp", l4[8:ulen]
            src, dst = f"{src}:{sport}", f"{dst}:{dport}"
        elif (
            proto == _IPPROTO_ICMP
            and len(l4) >= 8
            and l4[0]
            in (
                _ICMP_ECHO_REQUEST,
                _ICMP_ECHO_REPLY,
            )
        ):
            kind = "icmp-echo-request" if l4[0] == _ICMP_ECHO_REQUEST else "icmp-echo-reply"
            data = l4[8:]
        else:
            continue
        yield Payload(index, ts, kind, src, dst, data)
        index += 1
