"""atheris harness: hbmon.wire.codec.decode + Signer.verify on mutated real packets.

    python tests/security/fuzz_decoder.py CORPUS_DIR -runs=N [libFuzzer options]

Only `MalformedPacket` and `BadAuth` may come out of a datagram; anything else
(an IndexError, a ValueError, a hang, a crash) is a finding and libFuzzer stops
with the input that caused it. A packet that passes both is re-encoded and must
decode to the same message.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["hbmon"]):
    from hbmon.config.model import AuthConfig, AuthKey, AuthMethod
    from hbmon.errors import BadAuth, MalformedPacket
    from hbmon.wire.auth import Signer
    from hbmon.wire.codec import decode, encode

# The keys the golden captures were signed with (tests/unit/wire/hb_captures.py).
SIGNERS = (
    Signer(AuthConfig(1, (AuthKey(1, AuthMethod.SHA1, b"0832bedde820a9bcf6858c0ff6e5e82a"),))),
    Signer(AuthConfig(1, (AuthKey(1, AuthMethod.MD5, b"hbmon-md5-key"),))),
    Signer(AuthConfig(1, (AuthKey(1, AuthMethod.CRC, b""),))),
)


def one_input(data: bytes) -> None:
    try:
        decoded = decode(data)
    except MalformedPacket:
        return
    assert decoded.message.get_bytes("t") is not None
    assert decoded.message.get_bytes("src") is not None
    for signer in SIGNERS:
        try:
            signer.verify(decoded)
        except BadAuth:
            continue
        again = decode(encode(decoded.message.without("auth"), signer.sign, decoded.fmt))
        assert again.message.without("auth") == decoded.message.without("auth")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
