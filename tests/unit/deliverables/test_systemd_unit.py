"""systemd/hbmon.service: passes `systemd-analyze verify`, keeps its security exposure
under a threshold (the score docs/observability.md records), and says what it must."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from deliv_tools import DOCS, ROOT, need, run

UNIT = ROOT / "systemd" / "hbmon.service"
EXEC = "/usr/bin/hbmon"
MAX_EXPOSURE = 3.0


def settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


@pytest.fixture
def runnable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a binary that exists here (verify checks it)."""
    exe = shutil.which("true")
    assert exe is not None
    text = UNIT.read_text()
    assert f"ExecStart={EXEC} " in text
    path = tmp_path / "hbmon.service"
    path.write_text(text.replace(f"ExecStart={EXEC} ", f"ExecStart={exe} "))
    return path


def test_verify_passes(runnable_unit: Path) -> None:
    r = run(need("systemd-analyze"), "verify", "--man=no", str(runnable_unit))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.strip() == "", r.stderr


def test_verify_catches_a_broken_unit(runnable_unit: Path) -> None:
    runnable_unit.write_text(runnable_unit.read_text().replace("Type=notify", "Type=notifyy"))
    r = run(need("systemd-analyze"), "verify", "--man=no", str(runnable_unit))
    assert "notifyy" in r.stderr


def exposure(unit: Path, *extra: str) -> tuple[float, int]:
    r = run(need("systemd-analyze"), "security", "--offline=true", *extra, str(unit))
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    return float(m.group(1)), r.returncode


def test_security_exposure_under_threshold_and_documented(runnable_unit: Path) -> None:
    score, _ = exposure(runnable_unit)
    assert score < MAX_EXPOSURE
    _, rc = exposure(runnable_unit, f"--threshold={int(MAX_EXPOSURE * 10)}")
    assert rc == 0
    documented = re.search(r"exposure level (\d+\.\d)", DOCS.read_text())
    assert documented, "docs/observability.md must record the exposure score"
    assert float(documented.group(1)) == score


def test_an_unhardened_unit_scores_worse(tmp_path: Path) -> None:
    exe = shutil.which("true")
    bare = tmp_path / "bare.service"
    bare.write_text(f"[Service]\nType=notify\nExecStart={exe}\n")
    score, rc = exposure(bare, f"--threshold={int(MAX_EXPOSURE * 10)}")
    assert score > MAX_EXPOSURE
    assert rc != 0


def test_service_contract() -> None:
    s = settings()
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == [f"{EXEC} run --config-dir /etc/ha.d"]
    assert s["ExecReload"] == ["kill -HUP $MAINPID"]
    assert s["Restart"] == ["on-failure"]
    assert re.fullmatch(r"\d+s", s["WatchdogSec"][0])
    assert s["StateDirectory"] == ["hbmon"]
    assert s["RuntimeDirectory"] == ["hbmon"]


def test_a_restart_is_a_handover_and_a_stop_a_release() -> None:
    """hbmon/core/handover.py: systemd's restart job sends RestartKillSignal (SIGQUIT,
    what hbmon's daemon treats as a handover), a stop KillSignal (SIGTERM, the
    default: release); the record in the runtime directory outlives the restart."""
    from hbmon.daemon import HANDOVER_SIGNAL, STOP_SIGNALS

    s = settings()
    assert s["RestartKillSignal"] == [HANDOVER_SIGNAL.name]
    assert "KillSignal" not in s  # SIGTERM
    assert "SIGTERM" in {sig.name for sig in STOP_SIGNALS}
    assert s["RuntimeDirectoryPreserve"] == ["restart"]
    assert s["KillMode"] == ["mixed"]
    drop_in = (ROOT / "systemd" / "classic-resources.conf").read_text()
    assert re.search(r"^KillMode=process$", drop_in, re.M)  # its daemons outlive a restart


def test_hardening_keeps_what_hbmon_needs() -> None:
    s = settings()
    caps = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
    assert set(s["CapabilityBoundingSet"][0].split()) == caps
    assert set(s["AmbientCapabilities"][0].split()) == caps
    families = set(s["RestrictAddressFamilies"][0].split())
    # netlink (addresses), packet (ARP), inet (UDP, ICMP, metrics), unix (journal, notify)
    assert families == {"AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"}
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert "PrivateNetwork" not in s  # hbmon works on the host's interfaces
    # hbmon reads /proc/loadavg for heartbeat's `ld` field.
    assert "ProcSubset" not in s
