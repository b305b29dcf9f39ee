"""Bytes ⇄ `Message` in heartbeat's two wire formats (spec §4.1–4.2, §4.6).

Netstring (what heartbeat 3.0.6 sends)::

    ###\\n
    <len>:(<type>)name=value,        one per field; len counts "(type)name=value"
    ...
    <len>:(0)auth=N hex,             inner signature, last field (see auth.auth_input)
    %%%\\n
    <len>:N hex,                     trailer signature over "###\\n" .. "%%%\\n"

Classic::

    >>>\\n
    name=value\\n                     string field
    (1)name=<base64>\\n               binary field
    auth=N hex\\n
    <<<\\n
    NUL                              (sent; optional when received)

`decode` never trusts a length and raises only `MalformedPacket`; it does not
check signatures (that is `Signer.verify`, which needs the keys), but hands
over what the inner one covers (`Decoded.auth_input`, hbmon/wire/classic.py),
built while parsing. `encode` signs with the callable it is given.

`Decoder` and `Encoder` remember the fields they met: most of a beat repeats
the previous one's, ours and the peer's alike. The driver owns one of each;
the module's `decode` and `encode` use fresh ones (nothing remembered).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from hbmon.config.model import WireFormat
from hbmon.errors import MalformedPacket
from hbmon.wire.classic import classic_line
from hbmon.wire.message import AUTH_FIELD, FT_BINARY, FT_STRING, Decoded, Field, Message

# Signs bytes with the active key: ``"N hex"`` (hbmon.wire.auth.Signer.sign).
Sign = Callable[[bytes], str]

# Largest datagram we accept or produce (heartbeat's MAXMSG is 256 KiB).
MAX_PACKET = 256 * 1024

NETSTRING_START = b"###\n"
NETSTRING_END = b"%%%\n"
CLASSIC_START = b">>>\n"
CLASSIC_END = b"<<<\n"

# A netstring length never needs more digits than MAX_PACKET has.
_MAX_LEN_DIGITS = len(str(MAX_PACKET))
_MAX_TYPE_DIGITS = 3
_FIELD_TYPES = (FT_STRING, FT_BINARY)
_REQUIRED = ("t", "src")
_ZERO, _COMMA = ord("0"), ord(",")
# How many fields a Decoder or Encoder remembers per format before it starts over.
CACHE_SIZE = 512

_STRING_TYPE = b"(%d)" % FT_STRING
# The signature field as its netstring payload and as its classic line.
_AUTH_PAYLOAD = b"(%d)%b=" % (FT_STRING, AUTH_FIELD.encode("ascii"))
_AUTH_LINE = AUTH_FIELD.encode("ascii") + b"=%b\n"
# A parsed field and its classic line for the signing input (b"" for `auth`).
_Parsed = tuple[Field, bytes]
# ...and, before them, the field as it was framed in the packet (`<len>:<raw>,`).
_Framed = tuple[bytes, Field, bytes]
# How many packet layouts (by first field) a Decoder remembers.
_TEMPLATES = 16


def decode(data: bytes) -> Decoded:
    """`Decoder().decode(data)`: one datagram, nothing remembered."""
    return Decoder().decode(data)


def encode(message: Message, sign: Sign, fmt: WireFormat) -> bytes:
    """`Encoder().encode(message, sign, fmt)`: one message, nothing remembered."""
    return Encoder().encode(message, sign, fmt)


# ------------------------------------------------------------------ decode --
class Decoder:
    """Datagrams to `Decoded`, remembering well-formed fields by their raw bytes."""

    __slots__ = ("_classic", "_netstring", "_size", "_templates")

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._size = cache_size
        self._netstring: dict[bytes, _Parsed] = {}  # `(T)name=value` -> parsed
        self._classic: dict[bytes, _Parsed] = {}  # a line without its newline -> parsed
        self._templates: dict[bytes, list[_Framed]] = {}  # first field -> last packet

    def decode(self, data: bytes) -> Decoded:
        """Parse one datagram; the format is chosen by its first bytes.

        Raises `MalformedPacket` (and nothing else) for anything that is not a
        well-formed heartbeat message carrying `t` and `src`.
        """
        data = bytes(data)
        if len(data) > MAX_PACKET:
            raise MalformedPacket(f"oversized packet ({len(data)} bytes)")
        if data.startswith(NETSTRING_START):
            decoded = self._netstring_packet(data)
        elif data.startswith(CLASSIC_START):
            decoded = self._classic_packet(data)
        elif not data:
            raise MalformedPacket("empty packet")
        else:
            raise MalformedPacket("unknown format (no ### or >>> marker)")
        for name in _REQUIRED:
            if decoded.message.get_bytes(name) is None:
                raise MalformedPacket(f"missing field {name!r}")
        return decoded

    def _remember(self, cache: dict[bytes, _Parsed], raw: bytes, parsed: _Parsed) -> None:
        if len(cache) >= self._size:
            cache.clear()
        cache[raw] = parsed

    def _netstring_packet(self, data: bytes) -> Decoded:
        cache = self._netstring
        pos = len(NETSTRING_START)
        size = len(data)
        fields: list[Field] = []
        lines: list[bytes] = []
        # The previous packet of this type (by its first field), field by field as
        # framed bytes: a field at the same place with the same bytes is taken as
        # it was, with one comparison (most of a peer's beat repeats the last).
        seen: list[_Framed] = []
        template: list[_Framed] = []
        while True:
            i = len(seen)
            if i < len(template):
                framed = template[i]
                if data.startswith(framed[0], pos):
                    pos += len(framed[0])
                    fields.append(framed[1])
                    lines.append(framed[2])
                    seen.append(framed)
                    continue
            if data.startswith(NETSTRING_END, pos):
                break
            if pos >= size:
                raise MalformedPacket("truncated (no %%% end marker)")
            start = pos
            # Inline fast path for a well-formed `<len>:<field>,` (the same tests as
            # _read_netstring); anything else goes through it for the exact error.
            colon = data.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
            raw = None
            if colon > pos:
                digits = data[pos:colon]
                if digits.isdigit() and (len(digits) == 1 or digits[0] != _ZERO):
                    end = colon + 1 + int(digits)
                    if end < size and data[end] == _COMMA:
                        raw = data[colon + 1 : end]
                        pos = end + 1
            if raw is None:
                raw, pos = _read_netstring(data, pos, "field")
            parsed = cache.get(raw)
            if parsed is None:
                parsed = _new_netstring_field(raw)
                self._remember(cache, raw, parsed)
            fields.append(parsed[0])
            lines.append(parsed[1])
            seen.append((data[start:pos], parsed[0], parsed[1]))
            if i == 0:
                template = self._templates.get(seen[0][0], [])
        if seen:
            if len(self._templates) >= _TEMPLATES:
                self._templates.clear()
            self._templates[seen[0][0]] = seen
        body_end = pos + len(NETSTRING_END)
        signed = data[:body_end]
        trailer: str | None = None
        if body_end < len(data):
            token, after = _read_netstring(data, body_end, "trailer")
            if data[after:] not in (b"", b"\0"):
                raise MalformedPacket("junk after trailer")
            if not _printable(token):
                raise MalformedPacket("trailer is not printable ASCII")
            trailer = token.decode("ascii")
        message = Message(tuple(fields))
        return Decoded(message, WireFormat.NETSTRING, signed, trailer, b"".join(lines))

    def _classic_packet(self, data: bytes) -> Decoded:
        cache = self._classic
        pos = len(CLASSIC_START)
        end_line = CLASSIC_END.rstrip(b"\n")
        fields: list[Field] = []
        lines: list[bytes] = []
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                raise MalformedPacket("truncated (no <<< end marker)")
            line = data[pos:nl]
            pos = nl + 1
            if line == end_line:
                break
            parsed = cache.get(line)
            if parsed is None:
                parsed = _signed_line(_classic_field(line))
                self._remember(cache, line, parsed)
            fields.append(parsed[0])
            lines.append(parsed[1])
        if data[pos:] not in (b"", b"\0"):
            raise MalformedPacket("junk after <<< end marker")
        return Decoded(Message(tuple(fields)), WireFormat.CLASSIC, b"", None, b"".join(lines))


def _new_netstring_field(raw: bytes) -> _Parsed:
    """A field not met before: `(0)name=value` (what changes from beat to beat: seq,
    ts, hbecho, auth) in one step; anything else the long way, for its exact error."""
    if raw.startswith(_STRING_TYPE):
        name, eq, value = raw[len(_STRING_TYPE) :].partition(b"=")
        if eq and name and name.isascii():
            text = name.decode("ascii")
            f = Field(text, value)
            return f, (b"" if text == AUTH_FIELD else b"%b=%b\n" % (name, value))
    return _signed_line(_parse_netstring_field(raw))


def _signed_line(f: Field) -> _Parsed:
    """`f` and the line it adds to the signing input (the `auth` field adds none)."""
    return f, (b"" if f.name == AUTH_FIELD else classic_line(f))


def _read_length(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Parse `<digits>:` at pos; return (length, index after the colon)."""
    colon = data.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
    if colon < 0:
        if len(data) - pos <= _MAX_LEN_DIGITS:
            raise MalformedPacket(f"truncated {what}")
        raise MalformedPacket(f"bad {what} length")
    digits = data[pos:colon]
    # Canonical decimal only: a leading zero would let the same bytes be re-framed.
    if not digits.isdigit() or (digits.startswith(b"0") and len(digits) > 1):
        raise MalformedPacket(f"bad {what} length")
    return int(digits), colon + 1


def _read_netstring(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    """Parse `<len>:<bytes>,` at pos; return (bytes, index after the comma)."""
    length, start = _read_length(data, pos, what)
    end = start + length
    if end >= len(data):
        raise MalformedPacket(f"truncated {what}")
    if data[end] != ord(","):
        raise MalformedPacket(f"{what} not terminated by a comma")
    return data[start:end], end + 1


def _field_name(raw: bytes) -> str:
    if not raw:
        raise MalformedPacket("empty field name")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("field name is not UTF-8") from None


def _parse_type(raw: bytes) -> tuple[int, bytes]:
    """Split `(<type>)rest` into (type, rest)."""
    close = raw.find(b")", 1, 1 + _MAX_TYPE_DIGITS + 1)
    digits = raw[1:close] if raw.startswith(b"(") and close > 0 else b""
    if not digits or not digits.isdigit():
        raise MalformedPacket("bad field type")
    ftype = int(digits)
    if ftype not in _FIELD_TYPES:
        raise MalformedPacket(f"unsupported field type {ftype}")
    return ftype, raw[close + 1 :]


def _parse_netstring_field(raw: bytes) -> Field:
    ftype, rest = _parse_type(raw)
    name, eq, value = rest.partition(b"=")
    if not eq:
        raise MalformedPacket("field without '='")
    return Field(_field_name(name), value, ftype)


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _printable(raw: bytes) -> bool:
    # Deleting every printable byte leaves nothing: done in C, where a generator
    # over the trailer's bytes cost a tenth of a beat's decoding.
    return not raw.translate(None, _PRINTABLE_ASCII)


def _classic_field(line: bytes) -> Field:
    if b"\0" in line:
        raise MalformedPacket("NUL inside classic message")
    head, eq, value = line.partition(b"=")
    if not eq:
        raise MalformedPacket("line without '='")
    if not head.startswith(b"("):
        return Field(_field_name(head), value, FT_STRING)
    ftype, name = _parse_type(head)
    if ftype == FT_STRING:
        return Field(_field_name(name), value, FT_STRING)
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedPacket("bad base64 in binary field") from None
    return Field(_field_name(name), decoded, ftype)


# ------------------------------------------------------------------ encode --


# Per format: each checked field's classic line and, for netstring, its netstring.
_Encoded = tuple[bytes, bytes]
# Keyed by the field's values as a plain tuple: hashed and compared in C, where a
# Field key would run the dataclass's __hash__ and __eq__ in Python.
_Key = tuple[str, bytes, int]


class Encoder:
    """Messages to signed datagrams, remembering the fields it checked and framed."""

    __slots__ = ("_classic", "_netstring", "_size")

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._size = cache_size
        self._netstring: dict[_Key, _Encoded] = {}
        self._classic: dict[_Key, _Encoded] = {}

    def encode(self, message: Message, sign: Sign, fmt: WireFormat) -> bytes:
        """Sign and serialise `message`, which must not carry an `auth` field.

        Netstring: the inner `(0)auth=N hex` field (over the classic lines of the
        fields) is appended as the last field, then the trailer is signed over the
        body. Classic: `auth=N hex` is the last line, and a NUL ends the datagram.
        Raises ValueError for a message this format cannot carry (our own bug).
        """
        if message.get_bytes(AUTH_FIELD) is not None:
            raise ValueError("message already carries an auth field")
        netstring = fmt is WireFormat.NETSTRING
        cache = self._netstring if netstring else self._classic
        lines: list[bytes] = []  # the classic lines: the signing input
        framed: list[bytes] = [NETSTRING_START]  # the netstrings of the body
        for f in message.fields:  # the hit inline: a call per field was most of encoding
            hit = cache.get((f.name, f.value, f.ftype))
            if hit is None:
                hit = self._encoded(f, fmt, cache)
            lines.append(hit[0])
            framed.append(hit[1])
        auth = sign(b"".join(lines)).encode("ascii")
        if netstring:
            payload = _AUTH_PAYLOAD + auth
            framed += (b"%d:%b," % (len(payload), payload), NETSTRING_END)
            body = b"".join(framed)
            out = body + _netstring(sign(body).encode("ascii"))
        else:
            out = b"".join((CLASSIC_START, *lines, _AUTH_LINE % auth, CLASSIC_END, b"\0"))
        if len(out) > MAX_PACKET:
            raise ValueError(f"encoded message too large ({len(out)} bytes)")
        return out

    def _encoded(self, f: Field, fmt: WireFormat, cache: dict[_Key, _Encoded]) -> _Encoded:
        """`f` checked for `fmt` (ValueError if it cannot be sent), as a classic line
        and, for netstring, as its netstring."""
        key = (f.name, f.value, f.ftype)
        hit = cache.get(key)
        if hit is None:
            _check_encodable(f, fmt)
            framed = _netstring(_netstring_payload(f)) if fmt is WireFormat.NETSTRING else b""
            hit = (classic_line(f), framed)
            if len(cache) >= self._size:
                cache.clear()
            cache[key] = hit
        return hit


def _check_encodable(f: Field, fmt: WireFormat) -> None:
    name = f.name.encode("utf-8")
    if not name or b"=" in name or b"\n" in name or b"\0" in name or name.startswith(b"("):
        raise ValueError(f"field name {f.name!r} cannot be encoded")
    if f.ftype not in _FIELD_TYPES:
        raise ValueError(f"field {f.name!r}: unsupported type {f.ftype}")
    if f.ftype == FT_STRING and (
        b"\0" in f.value or (fmt is WireFormat.CLASSIC and b"\n" in f.value)
    ):
        raise ValueError(f"field {f.name!r}: value cannot be encoded in {fmt} format")


def _netstring(payload: bytes) -> bytes:
    return b"%d:%b," % (len(payload), payload)


def _netstring_payload(f: Field) -> bytes:
    return b"(%d)%b=%b" % (f.ftype, f.name.encode("utf-8"), f.value)
