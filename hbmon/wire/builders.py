"""Heartbeat messages in heartbeat 3.0.6's exact field order (spec §4.6).

Pure functions: the caller supplies every value (seq, generation, wall-clock
`ts`, load line), so the same arguments always give the same message, and a
captured packet can be rebuilt field for field. Number formats as heartbeat
writes them: `dt`, `seq`, `hg`, `ts`, `ackseq` lowercase hex without padding;
`firstseq`/`lastseq`, `ttl` and `protocol` decimal.

Orders seen on the wire::

    status      t st dt protocol src srcuuid seq hg ts ld [hbecho] ttl
    shutdone    t st=dead src srcuuid seq hg ts ld ttl
    starting    t src srcuuid seq hg ts ld ttl
    <other>     <head…> src srcuuid seq hg ts ld ttl      (resource, ask_resources, …)
    NS_ackmsg   t dest ackseq destuuid src srcuuid hg ts ttl
    NS_rexmit   t dest firstseq lastseq destuuid src srcuuid hg ts ttl
    NS_st ping  t st=ping info=ping src ts                 (ICMP payload; src = ping node)

The encoder appends `auth` after all of these.

hbmon extension, the RTT echo (design §3): a status may carry one string field
`hbecho` (after `ld`, before `ttl`) whose value lists, for every peer and
interface we heard, ``node/iface:seqhex:hold_us`` joined by ``;`` — the last
seq received there and the microseconds since it arrived. heartbeat ignores
unknown fields and signs them like any other.

hbmon extension, the restart notice (hbmon/core/handover.py): the last status of
a process that hands its groups over to the next one carries `hbhandover` (after
the other extension fields, before `ttl`): the window in decimal milliseconds
that its `dt` was stretched by. Its resources stay up meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hbmon.wire.message import FT_BINARY, Field, Message

PROTOCOL_VERSION = 1
ECHO_FIELD = "hbecho"
HANDOVER_FIELD = "hbhandover"
_MAX_HANDOVER_MS = 24 * 3600 * 1000

T_STATUS = "status"
T_SHUTDONE = "shutdone"
T_STARTING = "starting"
T_NS_ACKMSG = "NS_ackmsg"
T_NS_REXMIT = "NS_rexmit"
T_NS_ST = "NS_st"

_MAX_U64 = (1 << 64) - 1


def _hex(name: str, value: int) -> str:
    if not 0 <= value <= _MAX_U64:
        raise ValueError(f"{name} out of range: {value}")
    return format(value, "x")


def _dec(name: str, value: int) -> str:
    if not 0 <= value <= _MAX_U64:
        raise ValueError(f"{name} out of range: {value}")
    return str(value)


class FieldCache:
    """The fields a node's messages repeat (t, st, src, srcuuid, hg, ld, ttl…), built once.

    Fields are immutable, so they can be shared, and a frozen dataclass costs more
    to build than to look up. The node that sends owns one; bounded, it starts
    over when full.
    """

    __slots__ = ("_fields", "_size")

    def __init__(self, size: int = 512) -> None:
        self._fields: dict[tuple[str, str | bytes], Field] = {}
        self._size = size

    def string(self, name: str, value: str) -> Field:
        f = self._fields.get((name, value))
        if f is None:
            f = self._keep((name, value), Field(name, value.encode("utf-8")))
        return f

    def binary(self, name: str, value: bytes) -> Field:
        f = self._fields.get((name, value))
        if f is None:
            f = self._keep((name, value), Field(name, value, FT_BINARY))
        return f

    def __len__(self) -> int:
        return len(self._fields)

    def _keep(self, key: tuple[str, str | bytes], f: Field) -> Field:
        if len(self._fields) >= self._size:
            self._fields.clear()
        self._fields[key] = f
        return f


def _s(name: str, value: str, cache: FieldCache | None = None) -> Field:
    if cache is not None:
        return cache.string(name, value)
    return Field(name, value.encode("utf-8"))


def _uuid(name: str, value: bytes, cache: FieldCache | None = None) -> Field:
    if cache is not None:
        return cache.binary(name, value)
    return Field(name, value, FT_BINARY)


def _trailer(
    *, src: str, srcuuid: bytes, seq: int, hg: int, ts: int, ld: str, c: FieldCache | None
) -> tuple[Field, ...]:
    """The `src srcuuid seq hg ts ld` block every sequenced message carries."""
    return (
        _s("src", src, c),
        _uuid("srcuuid", srcuuid, c),
        _s("seq", _hex("seq", seq)),  # new every time: not worth remembering
        _s("hg", _hex("hg", hg), c),
        _s("ts", _hex("ts", ts), c),
        _s("ld", ld, c),
    )


def _ttl(ttl: int, c: FieldCache | None) -> Field:
    return _s("ttl", _dec("ttl", ttl), c)


def sequenced(
    head: Iterable[Field],
    *,
    src: str,
    srcuuid: bytes,
    seq: int,
    hg: int,
    ts: int,
    ld: str,
    ttl: int,
    fields: FieldCache | None = None,
) -> Message:
    """`head` (which holds `t`, and `dest` etc. where heartbeat puts them) + the common block.

    Covers resource, ask_resources, hb_takeover, reqnodes, repnodes (`dest` before
    `t`), stonith, ip-request-resp: heartbeat adds `src srcuuid seq hg ts ld ttl`
    after the type-specific fields.
    """
    return Message(
        (
            *head,
            *_trailer(src=src, srcuuid=srcuuid, seq=seq, hg=hg, ts=ts, ld=ld, c=fields),
            _ttl(ttl, fields),
        )
    )


def status(
    *,
    st: str,
    dt_ms: int,
    src: str,
    srcuuid: bytes,
    seq: int,
    hg: int,
    ts: int,
    ld: str,
    ttl: int,
    extra: tuple[Field, ...] = (),
    fields: FieldCache | None = None,
) -> Message:
    """A heartbeat (`t=status`); `extra` (e.g. the `hbecho` field) goes before `ttl`.
    `fields`: the sender's cache of repeated fields (none: every field is new)."""
    c = fields
    return Message(
        (
            _s("t", T_STATUS, c),
            _s("st", st, c),
            _s("dt", _hex("dt", dt_ms), c),
            _s("protocol", str(PROTOCOL_VERSION), c),
            *_trailer(src=src, srcuuid=srcuuid, seq=seq, hg=hg, ts=ts, ld=ld, c=c),
            *extra,
            _ttl(ttl, c),
        )
    )


def shutdone(
    *,
    src: str,
    srcuuid: bytes,
    seq: int,
    hg: int,
    ts: int,
    ld: str,
    ttl: int,
    fields: FieldCache | None = None,
) -> Message:
    """Sent last on a graceful stop: `t=shutdone st=dead`."""
    return sequenced(
        (_s("t", T_SHUTDONE), _s("st", "dead")),
        src=src,
        srcuuid=srcuuid,
        seq=seq,
        hg=hg,
        ts=ts,
        ld=ld,
        ttl=ttl,
        fields=fields,
    )


def starting(*, src: str, srcuuid: bytes, seq: int, hg: int, ts: int, ld: str, ttl: int) -> Message:
    """Sent at comm up with auto_failback on/off (spec §5.3)."""
    return sequenced(
        (_s("t", T_STARTING),),
        src=src,
        srcuuid=srcuuid,
        seq=seq,
        hg=hg,
        ts=ts,
        ld=ld,
        ttl=ttl,
    )


def ns_ackmsg(
    *,
    dest: str,
    ackseq: int,
    destuuid: bytes,
    src: str,
    srcuuid: bytes,
    hg: int,
    ts: int,
    ttl: int,
    fields: FieldCache | None = None,
) -> Message:
    """Flow-control ack (no `seq`, no `ld`); heartbeat sends one to the peer and one to itself."""
    c = fields
    return Message(
        (
            _s("t", T_NS_ACKMSG, c),
            _s("dest", dest, c),
            _s("ackseq", _hex("ackseq", ackseq)),
            _uuid("destuuid", destuuid, c),
            _s("src", src, c),
            _uuid("srcuuid", srcuuid, c),
            _s("hg", _hex("hg", hg), c),
            _s("ts", _hex("ts", ts), c),
            _ttl(ttl, c),
        )
    )


def ns_rexmit(
    *,
    dest: str,
    firstseq: int,
    lastseq: int,
    destuuid: bytes,
    src: str,
    srcuuid: bytes,
    hg: int,
    ts: int,
    ttl: int,
) -> Message:
    """Retransmit request; `firstseq`/`lastseq` are decimal (heartbeat asks one seq at a time)."""
    if firstseq > lastseq:
        raise ValueError(f"firstseq {firstseq} > lastseq {lastseq}")
    return Message(
        (
            _s("t", T_NS_REXMIT),
            _s("dest", dest),
            _s("firstseq", _dec("firstseq", firstseq)),
            _s("lastseq", _dec("lastseq", lastseq)),
            _uuid("destuuid", destuuid),
            _s("src", src),
            _uuid("srcuuid", srcuuid),
            _s("hg", _hex("hg", hg)),
            _s("ts", _hex("ts", ts)),
            _ttl(ttl, None),
        )
    )


def ping(*, src: str, ts: int) -> Message:
    """The ICMP echo payload for a ping node; `src` is the ping node's own address."""
    return Message(
        (
            _s("t", T_NS_ST),
            _s("st", "ping"),
            _s("info", "ping"),
            _s("src", src),
            _s("ts", _hex("ts", ts)),
        )
    )


# ------------------------------------------------------------- RTT echo --


@dataclass(frozen=True, slots=True)
class EchoEntry:
    """We last received `seq` from `node` on `iface`, `hold_us` µs before sending this."""

    node: str
    iface: str
    seq: int
    hold_us: int


_ECHO_ENTRY = re.compile(
    r"(?P<node>[^/;]+)/(?P<iface>[^;]+):(?P<seq>[0-9a-fA-F]{1,16}):(?P<hold>[0-9]{1,19})"
)
_FORBIDDEN = frozenset(";\n\r\0")


def encode_echo(entries: Iterable[EchoEntry]) -> Field:
    """The `hbecho` field for `entries` (ValueError for one the format cannot carry)."""
    parts = []
    for e in entries:
        if not e.node or "/" in e.node or _FORBIDDEN & set(e.node):
            raise ValueError(f"echo node name {e.node!r} cannot be encoded")
        if not e.iface or _FORBIDDEN & set(e.iface):
            raise ValueError(f"echo interface {e.iface!r} cannot be encoded")
        if not 0 <= e.hold_us < 10**19:
            raise ValueError(f"echo hold_us out of range: {e.hold_us}")
        parts.append(f"{e.node}/{e.iface}:{_hex('seq', e.seq)}:{e.hold_us}")
    return _s(ECHO_FIELD, ";".join(parts))


def parse_echo(value: str) -> tuple[EchoEntry, ...]:
    """Entries of an `hbecho` value; malformed entries are skipped, never an error.

    `iface` may itself hold `/` or `:` (e.g. `eth0/fe80::1`): seq and hold are the
    last two `:`-separated parts, the node ends at the first `/`.
    """
    out = []
    for part in value.split(";"):
        m = _ECHO_ENTRY.fullmatch(part)
        if m is None:
            continue
        out.append(EchoEntry(m["node"], m["iface"], int(m["seq"], 16), int(m["hold"])))
    return tuple(out)


def hold_longer(message: Message, extra_us: int) -> Message:
    """`message` with every hbecho hold `extra_us` longer: the time between building
    a status and its going out counts as held (its receiver subtracts the hold from
    the round trip, so leaving that time out would count it as network delay).
    A message without (parseable) echo entries comes back as it is."""
    value = message.get(ECHO_FIELD)
    if value is None or extra_us <= 0:
        return message
    entries = parse_echo(value)
    if not entries:
        return message
    later = encode_echo(
        EchoEntry(e.node, e.iface, e.seq, min(e.hold_us + extra_us, 10**19 - 1)) for e in entries
    )
    return Message(tuple(later if f.name == ECHO_FIELD else f for f in message.fields))


def echo_entries(message: Message) -> tuple[EchoEntry, ...]:
    """The echo entries a message carries (none if it has no `hbecho` field)."""
    value = message.get(ECHO_FIELD)
    return parse_echo(value) if value is not None else ()


def handover_field(window_ms: int) -> Field:
    """The restart notice `hbhandover=<window ms>`."""
    return _s(HANDOVER_FIELD, _dec(HANDOVER_FIELD, window_ms))


def handover_window_ms(message: Message) -> int | None:
    """A status's restart notice (window in ms), None if it has none or a bad one."""
    value = message.get(HANDOVER_FIELD)
    if value is None or not value.isdigit() or len(value) > 9:
        return None
    ms = int(value)
    return ms if ms <= _MAX_HANDOVER_MS else None
