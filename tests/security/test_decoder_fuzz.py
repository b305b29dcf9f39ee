"""The packet decoder under a coverage-guided fuzzer (atheris, libFuzzer) seeded with
real heartbeat 3.0.6 packets, plus the size limit at its boundary.

Hypothesis fuzzing of decode/verify lives in tests/unit/wire (test_wire_codec.py,
test_wire_auth.py); this adds coverage guidance and the real corpus.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hb_captures import CAPTURES, auth_config, payloads

from hbmon.config.model import WireFormat
from hbmon.errors import MalformedPacket
from hbmon.wire.auth import Signer
from hbmon.wire.codec import MAX_PACKET, decode, encode
from hbmon.wire.message import Field

HARNESS = Path(__file__).with_name("fuzz_decoder.py")
RUNS = 60_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    for capture in CAPTURES:
        seen: set[bytes] = set()
        for p in payloads(capture):
            # One of each message type and size per capture keeps the corpus small.
            key = decode(p.data).message.get_bytes("t") or b""
            if (key, len(p.data) // 64) in seen:
                continue
            seen.add((key, len(p.data) // 64))  # type: ignore[arg-type]
            (d / f"{capture}-{p.index}").write_bytes(p.data)
    return d


def test_atheris_finds_nothing_in_a_bounded_run(corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is in the test extras (pyproject.toml)")
    work = tmp_path / "new"
    work.mkdir()
    res = subprocess.run(
        [sys.executable, str(HARNESS), str(work), str(corpus), f"-runs={RUNS}",
         "-max_len=8192", "-max_total_time=60", "-timeout=5", "-rss_limit_mb=1024",
         f"-artifact_prefix={tmp_path}/", "-seed=694"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert re.search(r"Done \d+ runs", out), out[-2000:]
    covs = [int(c) for c in re.findall(r"cov: (\d+)", out)]
    print(f"atheris: {len(list(corpus.iterdir()))} seeds, coverage {covs[0]} -> {covs[-1]} edges")
    # The corpus drives the decoder deep (netstring and classic, every field type),
    # and mutation finds more: the fuzzer is guided, not blind.
    assert covs[0] > 50, out[-2000:]
    assert covs[-1] > covs[0], out[-2000:]
    assert not list(tmp_path.glob("crash-*"))


def _padded_to(size: int, fmt: WireFormat = WireFormat.NETSTRING) -> bytes:
    capture = "sha1"
    msg = decode(payloads(capture)[0].data).message.without("auth")
    signer = Signer(auth_config(capture))

    def build(n: int) -> bytes:
        return encode(msg.with_fields([Field("pad", b"A" * n)]), signer.sign, fmt)

    n = size - len(build(0))
    # The pad field's length prefix takes a few more digits than for an empty pad.
    for k in range(8):
        try:
            out = build(n - k)
        except ValueError:  # over MAX_PACKET: encode refuses it
            continue
        if len(out) == size:
            return out
    raise AssertionError(f"cannot pad to {size}")


def test_just_under_the_size_limit_decodes_and_verifies() -> None:
    data = _padded_to(MAX_PACKET)
    decoded = decode(data)
    Signer(auth_config("sha1")).verify(decoded)
    assert len(decoded.message.get_bytes("pad") or b"") > MAX_PACKET - 1024


@pytest.mark.parametrize("extra", [1, 4096, 1024 * 1024])
def test_over_the_size_limit_is_malformed_before_parsing(extra: int) -> None:
    data = _padded_to(MAX_PACKET - 64)
    data = data + b"," * (MAX_PACKET - len(data) + extra)
    assert len(data) > MAX_PACKET
    with pytest.raises(MalformedPacket, match="oversized"):
        decode(data)


def test_a_length_beyond_the_datagram_is_truncated_not_read() -> None:
    for claim in (MAX_PACKET - 1, MAX_PACKET, 10**6):
        with pytest.raises(MalformedPacket):
            decode(b"###\n" + f"{claim}:(0)t=status,".encode() + b"%%%\n")
