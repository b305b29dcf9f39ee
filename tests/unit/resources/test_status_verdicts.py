"""The status verdict table (status_cases): heartbeat's column from heartbeat's own
code, hbmon's column from hbmon's, and the documented table from the same data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from status_cases import CASES, DISAGREE, EXIT_CODES, RUNNING, Case, render_markdown

from hbmon.io.resources.scripts import judge_status

RESOURCE_MANAGER = Path("/usr/share/heartbeat/ResourceManager")
DOC = Path(__file__).resolve().parents[3] / "docs" / "resource-status.md"
# Prints the case's output (nothing when it is empty) and exits with its code.
CASE_SCRIPT = (
    '#!/bin/sh\n[ -n "$HBMON_CASE_OUT" ] && printf "%s\\n" "$HBMON_CASE_OUT"\nexit $HBMON_CASE_RC\n'
)
SCRIPT_NAME = "hbmoncase"


def printed(case: Case) -> str:
    """What CASE_SCRIPT writes to stdout for `case`."""
    return case.stdout + "\n" if case.stdout else ""


def case_id(case: Case) -> str:
    return f"{case.source}: {case.stdout[:40]!r}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_hbmon_verdict_is_the_tables(case: Case) -> None:
    for rc, want in case.hbmon_verdicts().items():
        verdict = judge_status(rc, printed(case))
        got = RUNNING if verdict.running else "S"
        if verdict.disagrees:
            got = DISAGREE
        assert got == want, f"exit {rc}: {verdict.why}"
        assert verdict.words_running is (case.heartbeat == RUNNING)


def require_resource_manager() -> None:
    if RESOURCE_MANAGER.exists() and Path("/etc/ha.d/shellfuncs").exists():
        return
    problem = "Debian's heartbeat package is not installed (scripts/setup.sh test installs it)"
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


def heartbeat_says_running(resource_dir: Path, stdout: str, rc: int) -> bool:
    """`ResourceManager status hbmoncase`, with resource.d pointed at `resource_dir`
    (HA_RESOURCEDIR is searched before /etc/init.d; /etc/ha.d is only read)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HA_RESOURCEDIR": str(resource_dir),
        "HBMON_CASE_OUT": stdout,
        "HBMON_CASE_RC": str(rc),
    }
    res = subprocess.run(
        [str(RESOURCE_MANAGER), "status", SCRIPT_NAME],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode in (0, 3), res
    return res.returncode == 0


def test_heartbeat_verdict_is_the_tables(tmp_path: Path) -> None:
    """Every row and every exit code through heartbeat 3.0.6's own ResourceManager:
    its verdict is the table's heartbeat column, whatever the exit code."""
    require_resource_manager()
    script = tmp_path / SCRIPT_NAME
    script.write_text(CASE_SCRIPT)
    script.chmod(0o755)
    wrong = []
    for case in CASES:
        for rc in EXIT_CODES:
            got = RUNNING if heartbeat_says_running(tmp_path, case.stdout, rc) else "S"
            if got != case.heartbeat:
                wrong.append(f"{case_id(case)} exit {rc}: heartbeat says {got}")
    assert wrong == []


def test_the_case_script_prints_what_hbmon_is_given(tmp_path: Path) -> None:
    script = tmp_path / SCRIPT_NAME
    script.write_text(CASE_SCRIPT)
    script.chmod(0o755)
    for case in (CASES[0], next(c for c in CASES if not c.stdout), CASES[-2]):
        env = {"HBMON_CASE_OUT": case.stdout, "HBMON_CASE_RC": "4"}
        res = subprocess.run([str(script), "status"], env=env, capture_output=True, text=True)
        assert (res.returncode, res.stdout) == (4, printed(case))


def test_the_documented_table_is_this_table() -> None:
    assert render_markdown() in DOC.read_text(), (
        "docs/resource-status.md is out of date: "
        "python tests/unit/resources/status_cases.py prints the table"
    )
