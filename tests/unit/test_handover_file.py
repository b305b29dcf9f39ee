"""The handover record on disk (hbmon/io/handover_file.py): round trip, refusals, boot id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hbmon.core.events import Scope
from hbmon.core.handover import HandoverRecord
from hbmon.io.handover_file import RECORD_NAME, HandoverFile, decode, encode

RECORD = HandoverRecord(
    node="solr2",
    generation=1795610160,
    groups=("IPaddr::10.1.201.80/24/em1", "IPaddr::10.1.201.81/24/em1"),
    claims=Scope.LOCAL,
    at=12345.678,
    window_s=30.0,
    boot_id="0b5e2f7c-8f6c-4d1e-9d0a-3f0b8e1c2d3e",
    wall=1_764_650_000.5,
)


def test_a_record_survives_the_round_trip(tmp_path: Path) -> None:
    store = HandoverFile(tmp_path)
    assert store.load() is None
    store.save(RECORD)
    assert (tmp_path / RECORD_NAME).stat().st_mode & 0o777 == 0o600
    assert store.load() == RECORD
    store.discard()
    assert store.load() is None
    store.discard()  # twice is fine


def test_the_file_is_readable_json_for_people() -> None:
    doc = json.loads(encode(RECORD))
    assert doc["node"] == "solr2"
    assert doc["groups"] == list(RECORD.groups)
    assert doc["claims"] == "local"
    assert doc["monotonic"] == RECORD.at


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.pop("node"), "bad or missing field"),
        (lambda d: d.update(version=2), "not a version 1 handover record"),
        (lambda d: d.update(claims="some"), "bad or missing field"),
        (lambda d: d.update(generation=-1), "generation must be a whole number"),
        (lambda d: d.update(generation=True), "generation must be a whole number"),
        (lambda d: d.update(groups="IPaddr::x"), "groups must be a list"),
        (lambda d: d.update(window_s="30"), "must be numbers"),
        (lambda d: d.update(monotonic=float("inf")), "must be finite"),
        (lambda d: d.update(boot_id=7), "must be strings"),
    ],
)
def test_a_bad_record_is_refused_saying_why(mutate: object, why: str) -> None:
    doc = json.loads(encode(RECORD))
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(ValueError, match=why):
        decode(json.dumps(doc).encode())


def test_an_unreadable_record_is_ignored_and_removed(tmp_path: Path) -> None:
    (tmp_path / RECORD_NAME).write_bytes(b"\xff{not json")
    store = HandoverFile(tmp_path)
    assert store.load() is None
    assert not (tmp_path / RECORD_NAME).exists()


def test_the_boot_id_is_the_kernels_or_empty(tmp_path: Path) -> None:
    boot = tmp_path / "boot_id"
    boot.write_text("1f2e3d4c-aaaa-bbbb-cccc-000000000000\n")
    assert HandoverFile(tmp_path, boot_id_path=boot).boot_id() == (
        "1f2e3d4c-aaaa-bbbb-cccc-000000000000"
    )
    assert HandoverFile(tmp_path, boot_id_path=tmp_path / "none").boot_id() == ""
    assert len(HandoverFile(tmp_path).boot_id()) == 36  # this machine's
