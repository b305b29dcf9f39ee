"""Digests, signing input, key selection and rejection."""

from __future__ import annotations

import zlib

import hb_captures
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbmon.config.model import AuthConfig, AuthKey, AuthMethod, WireFormat
from hbmon.errors import AUTH_FAILURES, BadAuth, ConfigError, DropReason
from hbmon.wire.auth import Signer, crc32_msb, digest
from hbmon.wire.classic import auth_input
from hbmon.wire.codec import decode, encode
from hbmon.wire.message import Decoded, Field, Message

SHA1_KEY = hb_captures.KEYS["sha1"]


def _first(capture: str) -> Decoded:
    return decode(hb_captures.payloads(capture)[0].data)


# ----------------------------------------------------------------- digests --


def test_crc_check_value_is_crc32_posix_without_length() -> None:
    # CRC-32 with poly 04C11DB7, init 0, not reflected, xorout ffffffff.
    assert crc32_msb(b"123456789") == 0x765E7680
    assert crc32_msb(b"") == 0xFFFFFFFF
    assert crc32_msb(b"123456789") != zlib.crc32(b"123456789")


def test_crc_digests_from_the_capture_include_unpadded_ones() -> None:
    short = []
    for p in hb_captures.payloads("crc"):
        d = decode(p.data)
        assert d.trailer is not None
        hex_trailer = d.trailer.split(" ", 1)[1]
        assert digest(AuthMethod.CRC, b"", d.signed) == hex_trailer
        inner = d.message.get("auth")
        assert inner is not None
        hex_inner = inner.split(" ", 1)[1]
        assert digest(AuthMethod.CRC, b"ignored", auth_input(d.message)) == hex_inner
        short += [h for h in (hex_trailer, hex_inner) if len(h) < 8]
    # README: 7-character digests such as 1bf4e74 occur; the capture even has 6 and 5.
    assert {"1bf4e74", "f548422", "547db"} <= set(short)
    assert {len(h) for h in short} == {5, 6, 7}


def test_known_crc_example_from_the_readme() -> None:
    # README finding 2: ...,18:(0)auth=1 dc4b38f1,%%%\n10:1 8852e0c1,
    hits = [p for p in hb_captures.payloads("crc") if b"auth=1 dc4b38f1,%%%\n" in p.data]
    assert hits
    assert hits[0].data.endswith(b"%%%\n10:1 8852e0c1,")


@pytest.mark.parametrize(
    ("method", "want"),
    [
        # RFC 2202 / RFC 4231 test case 2: key "Jefe"
        (AuthMethod.MD5, "750c783e6ab0b503eaa86e310a5db738"),
        (AuthMethod.SHA1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (AuthMethod.SHA256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ],
)
def test_hmac_known_answers(method: AuthMethod, want: str) -> None:
    assert digest(method, b"Jefe", b"what do ya want for nothing?") == want


def test_auth_input_matches_the_decoded_example() -> None:
    assert auth_input(_first("sha1").message) == (
        b"t=status\nst=init\ndt=1388\nprotocol=1\nsrc=solr1\n"
        b"(1)srcuuid=SNNuKi7tTkmc1Mw82e6MLQ==\nseq=1\nhg=6b06d615\nts=6b06d614\n"
        b"ld=0.04 0.10 0.16 1/108 1609\nttl=4\n"
    )


def test_auth_input_skips_auth_wherever_it_is() -> None:
    m = Message((Field("auth", b"1 x"), Field("t", b"a"), Field("auth", b"2 y")))
    assert auth_input(m) == b"t=a\n"


# ---------------------------------------------------------------- verify --


@pytest.mark.parametrize("capture", hb_captures.CAPTURES)
def test_wrong_key_fails_both_signatures(capture: str) -> None:
    d = _first(capture)
    wrong = {
        "sha1": AuthKey(1, AuthMethod.SHA1, b"0832bedde820a9bcf6858c0ff6e5e82b"),
        "md5": AuthKey(1, AuthMethod.MD5, b"hbmon-md5-kez"),
        "crc": AuthKey(1, AuthMethod.SHA1, b"crc"),
    }[capture]
    with pytest.raises(BadAuth, match="trailer") as info:
        Signer(AuthConfig(1, (wrong,))).verify(d)
    assert info.value.reason is DropReason.AUTH_MISMATCH


def test_hex_decoded_sha1_key_is_wrong() -> None:
    hexkey = AuthKey(1, AuthMethod.SHA1, bytes.fromhex(SHA1_KEY.secret.decode()))
    with pytest.raises(BadAuth):
        Signer(AuthConfig(1, (hexkey,))).verify(_first("sha1"))


def test_unknown_key_index() -> None:
    other = AuthKey(2, AuthMethod.SHA1, SHA1_KEY.secret)
    with pytest.raises(BadAuth, match="unknown key index 1") as info:
        Signer(AuthConfig(2, (other,))).verify(_first("sha1"))
    assert info.value.reason is DropReason.AUTH_UNKNOWN_KEY


def _resign_trailer(d: Decoded, inner: bytes, signer: Signer) -> Decoded:
    """d with its inner auth replaced and a valid trailer over the new body."""
    fields = tuple(Field("auth", inner) if f.name == "auth" else f for f in d.message.fields)
    body = d.signed.replace(d.message.get_bytes("auth") or b"?", inner)
    assert body != d.signed
    return Decoded(Message(fields), d.fmt, body, signer.sign(body))


def test_inner_auth_must_verify_even_when_the_trailer_does() -> None:
    signer = Signer(hb_captures.auth_config("sha1"))
    d = _first("sha1")
    inner = d.message.get_bytes("auth")
    assert inner is not None
    tampered = _resign_trailer(d, inner[:-1] + (b"0" if inner[-1:] != b"0" else b"1"), signer)
    with pytest.raises(BadAuth, match="auth field"):
        signer.verify(tampered)


def test_trailer_must_verify_even_when_the_inner_auth_does() -> None:
    d = _first("sha1")
    assert d.trailer is not None
    bad = Decoded(d.message, d.fmt, d.signed, d.trailer[:-1] + "0")
    with pytest.raises(BadAuth, match="trailer"):
        Signer(hb_captures.auth_config("sha1")).verify(bad)


def test_missing_inner_auth_field() -> None:
    signer = Signer(hb_captures.auth_config("sha1"))
    body = b"###\n11:(0)t=status,12:(0)src=solr1,%%%\n"
    d = decode(body + b"%d:%b," % (42, signer.sign(body).encode()))
    with pytest.raises(BadAuth, match="no auth field") as info:
        signer.verify(d)
    assert info.value.reason is DropReason.AUTH_MISSING


@pytest.mark.parametrize(
    "token", ["", "1", "1abc", "x 00", "123 00", " 1 00", "1 \u00e9\u00e9", "1  00"]
)
def test_malformed_tokens(token: str) -> None:
    m = Message.build(("t", "x"), ("src", "a"), ("auth", token))
    with pytest.raises(BadAuth) as info:
        Signer(hb_captures.auth_config("sha1")).verify(Decoded(m, WireFormat.CLASSIC, b"", None))
    # `1  00` is key 1 and the digest " 00": well-formed, and wrong.
    want = DropReason.AUTH_MISMATCH if token == "1  00" else DropReason.AUTH_MALFORMED
    assert info.value.reason is want


def test_a_netstring_packet_without_trailer_is_unsigned() -> None:
    d = _first("sha1")
    with pytest.raises(BadAuth, match="without trailer") as info:
        Signer(hb_captures.auth_config("sha1")).verify(Decoded(d.message, d.fmt, d.signed, None))
    assert info.value.reason is DropReason.AUTH_MISSING


def test_bad_auth_is_only_for_authentication_failures() -> None:
    assert {r.value for r in AUTH_FAILURES} == {
        "auth_missing",
        "auth_malformed",
        "auth_unknown_key",
        "auth_mismatch",
    }
    with pytest.raises(ValueError, match="not an authentication failure"):
        BadAuth(DropReason.REPLAY, "a replay is no bad signature")


# ------------------------------------------------------------------ keys --


def test_every_key_verifies_and_only_the_active_one_signs() -> None:
    rotated = AuthConfig(active=2, keys=(SHA1_KEY, AuthKey(2, AuthMethod.SHA256, b"new-key")))
    signer = Signer(rotated)
    assert signer.active_index == 2
    for p in hb_captures.payloads("sha1")[:50]:
        signer.verify(decode(p.data))  # old key 1 still accepted
    m = Message.build(("t", "status"), ("src", "solr1"))
    data = encode(m, signer.sign, WireFormat.NETSTRING)
    d = decode(data)
    assert d.trailer is not None
    assert d.trailer.startswith("2 ")
    assert (d.message.get("auth") or "").startswith("2 ")
    assert len(d.trailer) == 2 + 64
    signer.verify(d)
    with pytest.raises(BadAuth, match="unknown key index 2"):
        Signer(hb_captures.auth_config("sha1")).verify(d)


def test_sign_uses_the_active_key() -> None:
    cfg = AuthConfig(active=3, keys=(SHA1_KEY, AuthKey(3, AuthMethod.CRC, b"")))
    assert Signer(cfg).sign(b"123456789") == "3 765e7680"


def test_missing_signing_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="auth key 4"):
        Signer(AuthConfig(active=4, keys=(SHA1_KEY,)))


def test_long_keys_work() -> None:
    key = AuthKey(1, AuthMethod.SHA1, b"k" * 200)  # HMAC pre-hashes keys over 64 bytes
    signer = Signer(AuthConfig(1, (key,)))
    signer.verify(
        decode(encode(Message.build(("t", "x"), ("src", "a")), signer.sign, WireFormat.NETSTRING))
    )


def test_secrets_never_show() -> None:
    secret = b"s3cr3t-token"
    signer = Signer(AuthConfig(1, (AuthKey(1, AuthMethod.SHA1, secret),)))
    assert "s3cr3t" not in repr(signer)
    assert repr(signer) == "Signer(active=1, keys=[1:sha1])"
    d = _first("sha1")
    with pytest.raises(BadAuth) as info:
        signer.verify(d)
    assert "s3cr3t" not in str(info.value)
    # The expected digest is an oracle for forgeries: never in the text either.
    assert digest(AuthMethod.SHA1, secret, d.signed) not in str(info.value)


@pytest.mark.parametrize("fmt", list(WireFormat))
@given(value=st.text(alphabet="abc xyz0123456789", max_size=30))
def test_sha256_round_trip(fmt: WireFormat, value: str) -> None:
    signer = Signer(AuthConfig(7, (AuthKey(7, AuthMethod.SHA256, b"hbmon"),)))
    m = Message.build(("t", "status"), ("src", "n1"), ("x", value), ("u", b"\x00\xff" * 8))
    d = decode(encode(m, signer.sign, fmt))
    signer.verify(d)
    token = d.message.get("auth")
    assert token is not None
    assert token.startswith("7 ")
    assert len(token) == 2 + 64


@given(
    st.sampled_from(list(AuthMethod)),
    st.binary(min_size=1, max_size=200),  # keys shorter and longer than a hash block
    st.binary(max_size=600),
)
def test_the_signers_precomputed_keys_sign_as_hmac_does(
    method: AuthMethod, secret: bytes, data: bytes
) -> None:
    signer = Signer(AuthConfig(active=3, keys=(AuthKey(3, method, secret),)))
    assert signer.sign(data) == f"3 {digest(method, secret, data)}"
    assert signer.sign(data) == signer.sign(data)  # the pads are copied, never consumed


def test_a_duplicate_index_verifies_with_the_key_auth_key_finds() -> None:
    first, second = AuthKey(2, AuthMethod.SHA1, b"first"), AuthKey(2, AuthMethod.MD5, b"second")
    signer = Signer(AuthConfig(active=2, keys=(first, second)))
    assert signer.sign(b"x") == f"2 {digest(AuthMethod.SHA1, b'first', b'x')}"
