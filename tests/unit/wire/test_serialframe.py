"""Serial framing: heartbeat's classic frames out of a byte stream that may be cut,
noisy or endless; never an exception, memory bounded."""

from __future__ import annotations

import contextlib

import hb_captures
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbmon.config.model import WireFormat
from hbmon.errors import MalformedPacket, WireError
from hbmon.wire import builders
from hbmon.wire.auth import Signer
from hbmon.wire.codec import decode, encode
from hbmon.wire.serialframe import SerialDeframer, to_serial

SIGNER = Signer(hb_captures.auth_config("sha1"))
UUID = bytes(range(16))


def frame(seq: int, src: str = "solr2") -> bytes:
    msg = builders.status(
        src=src,
        srcuuid=UUID,
        st="active",
        dt_ms=2000,
        seq=seq,
        hg=0x6B06D615,
        ts=0x6B06D614,
        ld="0.04 0.10 0.16 1/108 1609",
        ttl=3,
    )
    return to_serial(encode(msg, SIGNER.sign, WireFormat.CLASSIC))


def feed_all(deframer: SerialDeframer, *chunks: bytes) -> list[bytes]:
    out: list[bytes] = []
    for c in chunks:
        out += deframer.feed(c)
    return out


def seqs(frames: list[bytes]) -> list[int | None]:
    out = []
    for f in frames:
        d = decode(f)
        SIGNER.verify(d)
        out.append(d.message.get_hex("seq"))
    return out


def test_a_frame_is_heartbeats_classic_text_without_a_nul() -> None:
    f = frame(1)
    assert f.startswith(b">>>\nt=status\n")
    assert f.endswith(b"<<<\n")
    assert b"\0" not in f
    assert b"\nauth=1 " in f
    assert b"\n(1)srcuuid=" in f  # binary fields as base64 lines, 7-bit clean
    assert all(b < 0x80 for b in f)


def test_whole_frames_and_byte_by_byte_give_the_same_messages() -> None:
    stream = frame(1) + frame(2) + frame(3)
    assert seqs(SerialDeframer().feed(stream)) == [1, 2, 3]
    d = SerialDeframer()
    one_by_one = feed_all(d, *(stream[i : i + 1] for i in range(len(stream))))
    assert one_by_one == [frame(1), frame(2), frame(3)]
    assert d.skipped_bytes == 0
    assert not d.in_frame


def test_crs_are_dropped_as_heartbeats_tty_setup_drops_them() -> None:
    crlf = frame(7).replace(b"\n", b"\r\n")
    assert SerialDeframer().feed(crlf) == [frame(7)]


def test_noise_and_a_half_frame_before_the_first_start_are_skipped() -> None:
    f = frame(5)
    stale_tail = f[len(f) // 2 :]  # we opened the line in the middle of a frame
    d = SerialDeframer()
    frames = d.feed(b"\xff\x00garbage\n" + stale_tail + f)
    assert seqs(frames) == [5]
    assert d.skipped_bytes == len(b"\xff\x00garbage\n") + len(stale_tail)


def test_a_frame_cut_short_is_passed_on_broken_and_the_next_one_survives() -> None:
    f1, f2 = frame(1), frame(2)
    cut = f1[: len(f1) - 30]
    cut = cut[: cut.rindex(b"\n") + 1]  # lost bytes up to a line end
    frames = SerialDeframer().feed(cut + f2)
    assert len(frames) == 2
    with pytest.raises(MalformedPacket):
        decode(frames[0])
    assert seqs(frames[1:]) == [2]


def test_a_cut_inside_a_line_spoils_only_that_frame() -> None:
    f1, f2 = frame(1), frame(2)
    frames = SerialDeframer().feed(f1[:40] + f2 + frame(3))
    # f1's partial line runs into f2's start line, which then no longer starts
    # with >>>: the two make one frame that fails its signature; frame 3 is intact.
    assert len(frames) == 2
    with pytest.raises(WireError):
        SIGNER.verify(decode(frames[0]))
    assert seqs(frames[1:]) == [3]


def test_a_nul_after_a_datagram_style_frame_does_not_hide_the_next() -> None:
    datagram_style = frame(1) + b"\0"
    assert seqs(SerialDeframer().feed(datagram_style + frame(2))) == [1, 2]


def test_an_endless_line_is_dropped_without_growing() -> None:
    d = SerialDeframer(max_frame=4096)
    assert d.feed(b"x" * 1_000_000) == []
    assert d.feed(b"y" * 1_000_000 + b"\n") == []
    assert d.skipped_bytes == 2_000_001
    assert seqs(d.feed(frame(9))) == [9]


def test_an_oversized_frame_is_passed_on_as_oversized_and_resynchronised() -> None:
    d = SerialDeframer(max_frame=1024)
    huge = b">>>\n" + b"".join(b"f%d=%s\n" % (i, b"v" * 50) for i in range(100)) + b"<<<\n"
    frames = d.feed(huge + frame(4))
    assert len(frames[0]) <= 1025
    with pytest.raises(MalformedPacket):
        decode(frames[0])
    assert seqs(frames[1:]) == [4]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), max_size=50))
def test_any_bytes_in_any_chunks_never_raise(data: bytes, cuts: list[int]) -> None:
    d = SerialDeframer(max_frame=512)
    pos = 0
    for n in [*cuts, len(data)]:
        for f in d.feed(data[pos : pos + n]):
            assert len(f) <= 513
            with contextlib.suppress(MalformedPacket):
                decode(f)
        pos += n


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 2**16), min_size=1, max_size=6),
    st.lists(st.integers(1, 97), max_size=40),
    st.lists(st.binary(max_size=30).filter(lambda b: b">" not in b), max_size=6),
)
def test_frames_survive_any_chunking_and_noise_between_lines(
    numbers: list[int], cuts: list[int], noise: list[bytes]
) -> None:
    # Noise between frames, ended by a newline, never costs a frame.
    stream = b"".join(
        n + b"\n" + frame(s) for n, s in zip(noise + [b""] * 6, numbers, strict=False)
    )
    d = SerialDeframer()
    out: list[bytes] = []
    pos = 0
    for n in [*cuts, len(stream)]:
        out += d.feed(stream[pos : pos + n])
        pos += n
    assert seqs(out) == numbers
