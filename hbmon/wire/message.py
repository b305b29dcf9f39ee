"""A heartbeat message: an ordered list of typed fields (spec §4.2), and a received one.

Order matters on the wire (heartbeat signs fields in wire order), so a message
is a tuple of fields, not a dict. Values are bytes because binary fields
(`srcuuid`, `destuuid`) hold raw UUID bytes; string fields are ASCII/UTF-8.
`Decoded` is a datagram as the codec parsed it, with what its signatures cover.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hbmon.config.model import WireFormat

# Field types as heartbeat's netstring format numbers them: `(0)` string, `(1)` binary.
FT_STRING = 0
FT_BINARY = 1

# Fields that are never signed as part of the inner digest.
AUTH_FIELD = "auth"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: bytes
    ftype: int = FT_STRING

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Message:
    fields: tuple[Field, ...]
    # name -> its first field, built at the first lookup: a received beat is asked
    # for a dozen fields, each a scan of the whole tuple otherwise.
    _index: dict[str, Field] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, *pairs: tuple[str, str | bytes]) -> Message:
        """Message from (name, value) pairs; str values are strings, bytes values binary."""
        out = []
        for name, value in pairs:
            if isinstance(value, bytes):
                out.append(Field(name, value, FT_BINARY))
            else:
                out.append(Field(name, value.encode("utf-8"), FT_STRING))
        return cls(tuple(out))

    def _field(self, name: str) -> Field | None:
        index = self._index
        if index is None:
            index = {f.name: f for f in reversed(self.fields)}  # the first one wins
            object.__setattr__(self, "_index", index)
        return index.get(name)

    def get(self, name: str) -> str | None:
        f = self._field(name)
        return None if f is None else f.value.decode("utf-8", "replace")

    def get_bytes(self, name: str) -> bytes | None:
        f = self._field(name)
        return None if f is None else f.value

    def get_hex(self, name: str) -> int | None:
        """A hex integer field (`seq`, `hg`, `ts`, `dt`, `ackseq`); None if absent or bad."""
        v = self.get(name)
        if v is None or not v or len(v) > 16:
            return None
        try:
            return int(v, 16)
        except ValueError:
            return None

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def without(self, *names: str) -> Message:
        return Message(tuple(f for f in self.fields if f.name not in names))

    def with_fields(self, extra: Iterable[Field]) -> Message:
        return Message(self.fields + tuple(extra))

    @property
    def type(self) -> str | None:
        return self.get("t")

    @property
    def src(self) -> str | None:
        return self.get("src")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A parsed datagram, signatures not yet checked (hbmon.wire.auth.Signer.verify).

    `message` holds every field as received, the `auth` field included.
    `signed` is the netstring body from ``###\\n`` through ``%%%\\n`` inclusive
    (b"" for classic); `trailer` is the netstring trailer text ``"N hex"``
    (None for classic, or for a netstring packet sent without one).
    `auth_input` is what the inner signature covers (hbmon.wire.classic), as the
    decoder built it while parsing; None for a hand-built value (the signer then
    derives it from `message`). It follows from `message`, so it is not compared.
    """

    message: Message
    fmt: WireFormat
    signed: bytes
    trailer: str | None
    auth_input: bytes | None = field(default=None, compare=False, repr=False)
