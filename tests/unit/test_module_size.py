"""No module of the runtime package grows past 600 lines (issue 12's architecture rule).

A module that passes the limit has more than one job: split it into small modules
with one job each (as core/guard.py, core/lifecycle.py and engine_handover.py were),
rather than raising the limit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hbmon

ROOT = Path(hbmon.__file__).parent
MAX_LINES = 600


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_the_runtime_package_has_modules_to_measure() -> None:
    # Guards the check below against measuring an empty or wrong tree.
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert {"engine.py", "core/ownership.py", "core/events.py"} <= names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_is_at_most_600_lines(path: Path) -> None:
    lines = _line_count(path)
    assert lines <= MAX_LINES, (
        f"hbmon/{path.relative_to(ROOT).as_posix()} has {lines} lines (limit {MAX_LINES}):"
        " split a coherent part into its own module"
    )


def test_the_count_is_of_lines(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("a = 1\n" * (MAX_LINES + 1), encoding="utf-8")
    assert _line_count(sample) == MAX_LINES + 1
