"""Signing and verification as heartbeat does it (spec §2, §4.6).

* sha1 / md5: HMAC with the authkeys token as ASCII bytes; sha256 (HMAC-SHA256)
  is an hbmon extension. Lowercase hex.
* crc: unkeyed CRC-32, polynomial 0x04C11DB7, MSB first, init 0, final
  inversion, no length appended; printed like C's ``%lx`` (not zero-padded).
  This is not zlib's (reflected) CRC-32.

A signature on the wire is the text ``"N hex"``: key index, space, digest.
Netstring packets carry two (the inner `auth` field over `auth_input`, and the
trailer over the raw body); both must verify. Classic packets carry the field.
Every configured key verifies; only the active one (``auth N``) signs.
The bytes each signature covers come from the codec (hbmon/wire/codec.py):
`sign` is the callable its encoder takes, `verify` reads a `Decoded`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import assert_never

from hbmon.config.model import AuthConfig, AuthKey, AuthMethod, WireFormat
from hbmon.errors import BadAuth, ConfigError, DropReason
from hbmon.wire.classic import auth_input
from hbmon.wire.message import AUTH_FIELD, Decoded

_CRC_POLY = 0x04C11DB7
_MASK32 = 0xFFFFFFFF
# Key indexes run 0..15 in authkeys; anything longer than this is not an index.
_MAX_INDEX_DIGITS = 2


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY) if crc & 0x80000000 else (crc << 1)
        table.append(crc & _MASK32)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32_msb(data: bytes) -> int:
    """heartbeat's CRC-32: poly 0x04C11DB7, MSB first, init 0, final inversion."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & _MASK32) ^ table[(crc >> 24) ^ byte]
    return crc ^ _MASK32


_HASHES = {AuthMethod.SHA1: "sha1", AuthMethod.MD5: "md5", AuthMethod.SHA256: "sha256"}


def digest(method: AuthMethod, secret: bytes, data: bytes) -> str:
    """The hex digest heartbeat writes for `data` (crc ignores `secret`)."""
    match method:
        case AuthMethod.SHA1 | AuthMethod.MD5 | AuthMethod.SHA256:
            return hmac.new(secret, data, _HASHES[method]).hexdigest()
        case AuthMethod.CRC:
            return format(crc32_msb(data), "x")
        case _:
            assert_never(method)


class _KeyedDigest:
    """One key's digest, with HMAC's two padded-key blocks hashed once, not per message.

    An idle agent signs and checks four digests per beat, each on cold caches:
    copying a hash state that has the pad in it is half of what setting up an
    HMAC from the key again costs (RFC 2104's precomputation, as the hmac
    module itself does internally).
    """

    __slots__ = ("_crc", "_inner", "_outer")

    def __init__(self, key: AuthKey) -> None:
        self._crc = key.method is AuthMethod.CRC
        name = _HASHES.get(key.method, "sha1")
        secret = key.secret
        block = hashlib.new(name).block_size
        if len(secret) > block:
            secret = hashlib.new(name, secret).digest()
        secret = secret.ljust(block, b"\0")
        self._inner = hashlib.new(name, bytes(b ^ 0x36 for b in secret))
        self._outer = hashlib.new(name, bytes(b ^ 0x5C for b in secret))

    def hex(self, data: bytes) -> str:
        if self._crc:
            return format(crc32_msb(data), "x")
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


class Signer:
    """Signs with the active key and verifies with any configured key.

    Holds secrets: neither its repr nor any exception it raises shows them.
    """

    __slots__ = ("_auth", "_digests", "_key")

    def __init__(self, auth: AuthConfig) -> None:
        key = auth.key(auth.active)
        if key is None:
            raise ConfigError(f"auth key {auth.active} (the signing key) is not defined")
        self._auth = auth
        self._key: AuthKey = key
        # Per index, the key auth.key() finds (the first with that index).
        self._digests = {k.index: _KeyedDigest(k) for k in reversed(auth.keys)}

    def __repr__(self) -> str:
        keys = ", ".join(f"{k.index}:{k.method}" for k in self._auth.keys)
        return f"Signer(active={self._key.index}, keys=[{keys}])"

    @property
    def active_index(self) -> int:
        return self._key.index

    def sign(self, data: bytes) -> str:
        """``"N hex"`` over `data` with the active key."""
        return f"{self._key.index} {self._digests[self._key.index].hex(data)}"

    def verify(self, decoded: Decoded) -> None:
        """Raise `BadAuth` unless every signature of `decoded` verifies."""
        token = decoded.message.get_bytes(AUTH_FIELD)
        if decoded.fmt is WireFormat.NETSTRING:
            if decoded.trailer is None:
                raise BadAuth(DropReason.AUTH_MISSING, "netstring packet without trailer signature")
            self._check(decoded.trailer.encode("ascii", "replace"), decoded.signed, "trailer")
        if token is None:
            raise BadAuth(DropReason.AUTH_MISSING, "no auth field")
        covered = decoded.auth_input
        if covered is None:  # built by hand, not by the decoder
            covered = auth_input(decoded.message)
        self._check(token, covered, "auth field")

    def _check(self, token: bytes, data: bytes, what: str) -> None:
        index_text, space, got = token.partition(b" ")
        if (
            not space
            or not index_text.isdigit()
            or len(index_text) > _MAX_INDEX_DIGITS
            or not got.isascii()
        ):
            raise BadAuth(DropReason.AUTH_MALFORMED, f"{what}: malformed signature")
        index = int(index_text)
        key = self._auth.key(index)
        if key is None:
            raise BadAuth(DropReason.AUTH_UNKNOWN_KEY, f"{what}: unknown key index {index}")
        want = self._digests[index].hex(data).encode("ascii")
        if not hmac.compare_digest(want, got):
            raise BadAuth(
                DropReason.AUTH_MISMATCH, f"{what}: {key.method} digest mismatch (key {index})"
            )
