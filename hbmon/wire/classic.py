"""A field as classic text, the form heartbeat signs in both wire formats (spec §4.2, §4.6).

    name=value\\n                 string field
    (1)name=<base64>\\n           binary field

The inner signature of a netstring packet and the `auth` line of a classic one
are both computed over these lines, for every field but `auth`, in wire order
(`auth_input`). The codec (hbmon/wire/codec.py) builds them as it encodes or
decodes, so the signer never serialises a message again.
"""

from __future__ import annotations

import base64

from hbmon.wire.message import AUTH_FIELD, FT_STRING, Field, Message


def classic_line(f: Field) -> bytes:
    """One field as classic text: ``name=value\\n``, or ``(T)name=<base64>\\n``."""
    name = f.name.encode("utf-8")
    if f.ftype == FT_STRING:
        return b"%b=%b\n" % (name, f.value)
    return b"(%d)%b=%b\n" % (f.ftype, name, base64.b64encode(f.value))


def auth_input(message: Message) -> bytes:
    """The classic signing input: every field but `auth`, in wire order."""
    return b"".join([classic_line(f) for f in message.fields if f.name != AUTH_FIELD])
