"""hb_generation and hb_uuid persistence (hbmon/io/state_files.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hbmon.errors import StartupError
from hbmon.io import state_files
from hbmon.io.state_files import load_or_create_uuid, next_generation

NOW = 1795610132.75  # the sha1 capture's first ts (0x6b06d614), plus a fraction


def test_missing_file_starts_from_the_wall_clock_like_heartbeat(tmp_path: Path) -> None:
    # heartbeat: "No Previous generation - starting at 1795610133", first ts 0x6b06d614.
    assert next_generation(tmp_path, NOW) == (0x6B06D615, True)
    assert (tmp_path / "hb_generation").read_bytes() == b"     1795610133\n"


def test_generation_increments_across_calls_and_survives(tmp_path: Path) -> None:
    first, _ = next_generation(tmp_path, NOW)
    # A later start, even with a much later clock, just increments (capture: 0x..135 -> 0x..136).
    assert next_generation(tmp_path, NOW + 60) == (first + 1, False)
    assert next_generation(tmp_path, 0) == (first + 2, False)
    assert (tmp_path / "hb_generation").read_text() == f"{first + 2:>15}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["hb_generation"]  # no temp files left


def test_reads_a_file_heartbeat_wrote(tmp_path: Path) -> None:
    (tmp_path / "hb_generation").write_bytes(b"             42\n")
    assert next_generation(tmp_path, NOW) == (43, False)
    (tmp_path / "hb_generation").write_bytes(b"7")  # tolerant of missing padding/newline
    assert next_generation(tmp_path, NOW) == (8, False)


@pytest.mark.parametrize("content", [b"", b"\n", b"abc\n", b"-5\n", b"1.5\n", b"9" * 25, b"\xff"])
def test_corrupt_generation_file_is_an_error_naming_the_path(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "hb_generation"
    path.write_bytes(content)
    with pytest.raises(StartupError, match="corrupt") as info:
        next_generation(tmp_path, NOW)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content  # left for the operator to inspect


def test_state_dir_is_created_private(tmp_path: Path) -> None:
    state = tmp_path / "a" / "b"
    next_generation(state, NOW)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_unwritable_state_dir_is_an_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StartupError, match=str(blocker)):
        next_generation(blocker / "state", NOW)
    with pytest.raises(StartupError, match=str(blocker)):
        load_or_create_uuid(blocker)


def test_unreadable_generation_path_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "hb_generation").mkdir()
    with pytest.raises(StartupError, match="hb_generation"):
        next_generation(tmp_path, NOW)


def test_failed_rename_keeps_the_old_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    next_generation(tmp_path, NOW)
    before = (tmp_path / "hb_generation").read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state_files.os, "replace", refuse)
    with pytest.raises(StartupError, match="No space left"):
        next_generation(tmp_path, NOW)
    assert (tmp_path / "hb_generation").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["hb_generation"]


def test_uuid_is_created_once_and_kept(tmp_path: Path) -> None:
    uuid = load_or_create_uuid(tmp_path)
    assert len(uuid) == 16
    assert uuid[6] >> 4 == 4  # version 4, like the captured 48d36e2a-2eed-4e49-...
    assert uuid[8] >> 6 == 0b10
    assert (tmp_path / "hb_uuid").read_bytes() == uuid
    assert load_or_create_uuid(tmp_path) == uuid
    assert load_or_create_uuid(tmp_path / "other") != uuid


def test_existing_uuid_is_used_as_is(tmp_path: Path) -> None:
    captured = bytes.fromhex("48d36e2a2eed4e499cd4cc3cd9ee8c2d")
    (tmp_path / "hb_uuid").write_bytes(captured)
    assert load_or_create_uuid(tmp_path) == captured


@pytest.mark.parametrize("content", [b"", b"short", bytes(17)])
def test_corrupt_uuid_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hb_uuid"
    path.write_bytes(content)
    with pytest.raises(StartupError, match="corrupt") as info:
        load_or_create_uuid(tmp_path)
    assert str(path) in str(info.value)


def test_files_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(state_files.os, "fsync", spy)
    next_generation(tmp_path, NOW)
    load_or_create_uuid(tmp_path)
    assert len(synced) == 4  # file and directory, for each of the two
