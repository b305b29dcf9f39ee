"""hbmon-heartbeat-compat: heartbeat's cl_status, hb_standby and hb_takeover at
heartbeat's paths, only where heartbeat is not installed (debian/README.Debian).

apt keeps one owner of those paths: installing the compat package removes
heartbeat (the last migration step), installing heartbeat again removes the
compat package (a rollback); hbmon itself stays installed throughout.

The launchers come from compat/ (hbmon.compat); the installed ones are run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import require_tools
from netns_helpers import wait_until
from sdcluster import node_config
from sdcontainer import Container

from hbmon.testing.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.systemd]

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = {
    "cl_status": "/usr/bin/cl_status",
    "hb_standby": "/usr/share/heartbeat/hb_standby",
    "hb_takeover": "/usr/share/heartbeat/hb_takeover",
}


@pytest.fixture(scope="module")
def debs(hbmon_deb: Path) -> dict[str, Path]:
    """hbmon and hbmon-heartbeat-compat, which build-deb.sh writes side by side."""
    compat = hbmon_deb.with_name(hbmon_deb.name.replace("hbmon_", "hbmon-heartbeat-compat_", 1))
    assert compat.is_file(), f"no {compat.name} next to {hbmon_deb}"
    return {"hbmon": hbmon_deb, "hbmon-heartbeat-compat": compat}


def owner(c: Container, path: str) -> str:
    return c.run("dpkg-query", "-S", path).stdout.split(":")[0]


def installed(c: Container, pkg: str) -> bool:
    out = c.run("dpkg-query", "-W", "-f=${Status}", pkg).stdout
    return out == "install ok installed"


def test_compat_package_takes_heartbeats_place_and_gives_it_back(
    rootfs: dict[str, Path], debs: dict[str, Path], workdir: Path
) -> None:
    with Lab() as lab:
        c = Container("solr1", rootfs["cluster"], workdir, netns=lab.nodes["solr1"].ns)
        try:
            c.prepare()
            for path, (text, mode) in node_config("solr1").items():
                c.write(path, text, mode)
            c.copy_in(debs["hbmon"], "/var/tmp/hbmon.deb")
            c.copy_in(debs["hbmon-heartbeat-compat"], "/var/tmp/compat.deb")
            c.boot()
            assert installed(c, "heartbeat")
            c.run("apt-get", "install", "-y", "-q", "/var/tmp/hbmon.deb", check=True)
            assert {owner(c, p) for p in LAUNCHERS.values()} == {"heartbeat"}

            c.run("apt-get", "install", "-y", "-q", "/var/tmp/compat.deb", check=True)
            assert not installed(c, "heartbeat")
            assert installed(c, "hbmon")
            assert {owner(c, p) for p in LAUNCHERS.values()} == {"hbmon-heartbeat-compat"}
            # heartbeat's command, at heartbeat's path, answered by the agent.
            stopped = c.run("cl_status", "hbstatus")
            assert stopped.stdout.strip() == "Heartbeat is stopped on this machine."
            assert stopped.returncode != 0
            c.run("systemctl", "start", "--no-block", "hbmon", check=True)
            wait_until(lambda: c.run("cl_status", "hbstatus").returncode == 0, 60, "cl_status")
            running = c.run("cl_status", "hbstatus").stdout.strip()
            assert running == "Heartbeat is running on this machine."
            c.run("systemctl", "stop", "hbmon", check=True)

            # Rollback: heartbeat again (from the apt cache: the container has no network;
            # without Recommends, as the container was built).
            rollback = ("apt-get", "install", "-y", "-q", "--no-install-recommends", "heartbeat")
            c.run(*rollback, check=True, timeout=300)
            assert not installed(c, "hbmon-heartbeat-compat")
            assert installed(c, "hbmon")
            assert {owner(c, p) for p in LAUNCHERS.values()} == {"heartbeat"}
        finally:
            c.shutdown()


def test_lintian_is_clean_for_the_compat_package(debs: dict[str, Path]) -> None:
    require_tools("lintian")
    res = subprocess.run(
        [
            "lintian", "--pedantic", "--display-experimental",
            "--fail-on", "error,warning,info,pedantic,experimental",
            str(debs["hbmon-heartbeat-compat"]),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    tags = [ln for ln in res.stdout.splitlines() if re.match(r"^[EWIPX]: ", ln)]
    assert tags == []
    assert res.returncode == 0, res.stdout + res.stderr
