"""debian/hbmon.postinst: an upgrade stops, gracefully, an older running hbmon that
cannot hand over (it does not catch SIGQUIT, the unit's RestartKillSignal), and
leaves a current one to the restart, which hands over (hbmon/core/handover.py).

The script runs under /bin/sh with fake `systemctl` and `deb-systemd-invoke` on
PATH and a real process whose caught signals (/proc/PID/status SigCgt) decide.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deliv_tools import ROOT

POSTINST = ROOT / "debian" / "hbmon.postinst"
FAKE_SYSTEMCTL = """#!/bin/sh
case "$*" in
  *ActiveState*) echo "${FAKE_STATE:-active}" ;;
  *MainPID*) echo "${FAKE_PID:-0}" ;;
  *) exit 1 ;;
esac
"""
FAKE_INVOKE = """#!/bin/sh
echo "$*" >> "$INVOKED"
"""
AGENT = """
import signal, sys, time
if sys.argv[1] == "catches":
    signal.signal(signal.SIGQUIT, lambda *a: None)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def agent(request: pytest.FixtureRequest) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT, request.param], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run_postinst(tmp_path: Path, *args: str, pid: int, state: str = "active") -> list[str]:
    """The postinst's guard with fakes; what it asked deb-systemd-invoke to do."""
    bin_dir, systemd_dir = tmp_path / "bin", tmp_path / "run-systemd-system"
    bin_dir.mkdir(exist_ok=True)
    systemd_dir.mkdir(exist_ok=True)
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("deb-systemd-invoke", FAKE_INVOKE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    script = POSTINST.read_text()
    assert "/run/systemd/system" in script
    script = script.replace("/run/systemd/system", str(systemd_dir))
    invoked = tmp_path / "invoked"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_PID": str(pid),
        "FAKE_STATE": state,
        "INVOKED": str(invoked),
    }
    subprocess.run(["/bin/sh", "-c", script, "postinst", *args], env=env, check=True)
    return invoked.read_text().splitlines() if invoked.exists() else []


@pytest.mark.parametrize("agent", ["ignores"], indirect=True)
def test_an_upgrade_stops_an_hbmon_that_cannot_hand_over(tmp_path: Path, agent: int) -> None:
    assert run_postinst(tmp_path, "configure", "0.0.9", pid=agent) == ["stop hbmon.service"]


@pytest.mark.parametrize("agent", ["catches"], indirect=True)
def test_an_upgrade_leaves_a_current_hbmon_to_the_restart(tmp_path: Path, agent: int) -> None:
    assert run_postinst(tmp_path, "configure", "0.0.9", pid=agent) == []


@pytest.mark.parametrize("agent", ["ignores"], indirect=True)
def test_only_an_upgrade_of_a_running_hbmon_is_concerned(tmp_path: Path, agent: int) -> None:
    assert run_postinst(tmp_path, "configure", "", pid=agent) == []  # a first install
    assert run_postinst(tmp_path, "configure", "0.0.9", pid=agent, state="inactive") == []
    assert run_postinst(tmp_path, "abort-upgrade", "0.0.9", pid=agent) == []
