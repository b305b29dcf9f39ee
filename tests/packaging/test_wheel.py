"""A wheel built from the tree carries its package data, and `pip install` of it into
a fresh virtualenv gives an `hbmon` whose demo runs (issue 11, point 6).

The demo and the installed program run from a directory outside the checkout, so
nothing can come from the source tree. This is the suite's one run of the demo
(`hbmon demo`, what the README's first command runs): its scenario plays out and it
leaves no namespace behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from netns_helpers import require_netns

ROOT = Path(__file__).resolve().parents[2]

SHIPPED = (
    "hbmon/py.typed",
    "hbmon/examples/ha.d-solr/solr1/ha.cf",
    "hbmon/examples/ha.d-solr/solr2/haresources",
    "hbmon/share/grafana/dashboards/hbmon-overview.json",
    "hbmon/share/grafana/dashboards/hbmon-heartbeat.json",
    "hbmon/share/grafana/provisioning/dashboards/hbmon.yml",
    "hbmon/share/alerts/hbmon.rules.yml",
    "hbmon/share/alerts/alertmanager.yml",
    "hbmon/share/systemd/hbmon.service",
    "hbmon/share/systemd/classic-resources.conf",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=out,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    (found,) = out.glob("hbmon-*.whl")
    return found


def test_wheel_carries_examples_dashboards_rules_and_unit(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in SHIPPED if n not in names]
    assert missing == []
    assert any(re.fullmatch(r"hbmon-[^/]+\.dist-info/(licenses/)?LICENSE", n) for n in names)
    # Only data beside the code: no generator scripts, no caches.
    assert not [n for n in names if n.startswith("hbmon/share/") and n.endswith((".py", ".pyc"))]
    # The unit in the wheel is the tree's unit.
    with zipfile.ZipFile(wheel) as z:
        assert (
            z.read("hbmon/share/systemd/hbmon.service")
            == (ROOT / "systemd" / "hbmon.service").read_bytes()
        )


@pytest.mark.netns
def test_demo_runs_from_a_fresh_virtualenv(wheel: Path, tmp_path: Path) -> None:
    require_netns()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    res = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import hbmon; print(hbmon.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert probe.stdout.startswith(str(venv))  # not the checkout
    res = subprocess.run(
        [str(venv / "bin" / "hbmon"), "demo", "--duration", "44"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    out = res.stdout
    tail = out[-3000:]
    assert "SIGSTOP solr1" in out, tail
    assert "Late heartbeat: Node solr1" in out, tail  # the late beat shows in the agents' logs
    assert "crash the VIP owner" in out, tail
    assert "the VIP answers from " in out, tail  # the takeover, timed from the crash
    assert "last takeover: peer_dead from " in out, tail
    assert "/metrics" in out
    assert out.rstrip().endswith("hbmon demo: namespaces and agents removed.")
    made = set(re.findall(r"ip netns exec (\S+) curl", out))
    assert len(made) == 2, made
    assert made & namespaces() == set(), "the demo left namespaces behind"


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}
