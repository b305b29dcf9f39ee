"""The wire layer's objects: a Decoder and an Encoder that remember fields, and no cycle.

What they remember must never change an answer: each one gives, packet for
packet, what a fresh one gives, whatever came before (a malformed packet, a
different format, a cache that filled up and started over).
"""

from __future__ import annotations

import ast
from pathlib import Path

import hb_captures
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hbmon
from hbmon.config.model import WireFormat
from hbmon.errors import WireError
from hbmon.wire.auth import Signer
from hbmon.wire.classic import auth_input
from hbmon.wire.codec import Decoder, Encoder, decode, encode
from hbmon.wire.message import Field, Message

WIRE = Path(hbmon.__file__).parent / "wire"
SHA1 = Signer(hb_captures.auth_config("sha1"))


def _outcome(decoder: Decoder, data: bytes) -> object:
    try:
        d = decoder.decode(data)
    except WireError as exc:
        return (type(exc), str(exc))
    return (d, d.auth_input)


@pytest.mark.parametrize("capture", hb_captures.CAPTURES)
def test_the_decoder_hands_over_what_the_inner_signature_covers(capture: str) -> None:
    decoder = Decoder()
    for p in hb_captures.payloads(capture)[:200]:
        d = decoder.decode(p.data)
        assert d.auth_input == auth_input(d.message)
        Signer(hb_captures.auth_config(capture)).verify(d)


def test_classic_packets_too() -> None:
    decoder, encoder = Decoder(), Encoder()
    for p in hb_captures.payloads("sha1")[:100]:
        message = decode(p.data).message.without("auth")
        d = decoder.decode(encoder.encode(message, SHA1.sign, WireFormat.CLASSIC))
        assert d.auth_input == auth_input(d.message) == auth_input(message)
        SHA1.verify(d)


def test_a_tampered_repeat_of_a_remembered_field_is_not_trusted() -> None:
    """The decoder remembers the field, not the verdict: an altered copy fails."""
    decoder = Decoder()
    data = hb_captures.payloads("sha1")[0].data
    SHA1.verify(decoder.decode(data))
    forged = data.replace(b"(0)st=init", b"(0)st=dead")
    with pytest.raises(WireError):
        SHA1.verify(decoder.decode(forged))


packets = st.lists(
    st.one_of(
        st.sampled_from([p.data for p in hb_captures.payloads("sha1")[:40]]),
        st.binary(max_size=64).map(lambda b: b"###\n" + b),
        st.binary(max_size=64).map(lambda b: b">>>\n" + b),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(packets=packets, size=st.integers(min_value=0, max_value=6))
def test_remembering_never_changes_an_answer(packets: list[bytes], size: int) -> None:
    remembering = Decoder(cache_size=size)
    for data in packets:
        assert _outcome(remembering, data) == _outcome(Decoder(), data)


values = st.binary(max_size=12).filter(lambda b: b"\0" not in b and b"\n" not in b)


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(st.lists(values, min_size=1, max_size=4), max_size=12),
    size=st.integers(min_value=0, max_value=5),
    fmt=st.sampled_from(list(WireFormat)),
)
def test_an_encoder_that_remembers_encodes_as_a_fresh_one(
    messages: list[list[bytes]], size: int, fmt: WireFormat
) -> None:
    encoder = Encoder(cache_size=size)
    for vals in messages:
        m = Message((Field("t", b"x"), Field("src", b"a"), *(Field("v", v) for v in vals)))
        assert encoder.encode(m, SHA1.sign, fmt) == encode(m, SHA1.sign, fmt)


def test_a_field_refused_once_is_refused_again() -> None:
    encoder = Encoder()
    bad = Message((Field("t", b"x"), Field("src", b"a"), Field("v", b"a\nb")))
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot be encoded"):
            encoder.encode(bad, SHA1.sign, WireFormat.CLASSIC)
    # ...in classic; netstring carries a newline
    encoder.encode(bad, SHA1.sign, WireFormat.NETSTRING)


def _wire_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hbmon."):
            out.add(node.module)
    return {m.removeprefix("hbmon.wire.") for m in out if m.startswith("hbmon.wire.")}


def test_the_wire_modules_import_each_other_without_a_cycle() -> None:
    graph = {p.stem: _wire_imports(p) for p in WIRE.glob("*.py") if p.stem != "__init__"}
    assert "codec" not in graph["auth"]
    assert "auth" not in graph["codec"]
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())
