"""The classic v1 resource stack under hbmon.service (issue 11, point 5): IPaddr2, a
file system mounted by resource-agents' Filesystem (-o loop), and an LSB script
that starts a daemon writing into that file system.

The hardened default unit refuses the two scripts (no CAP_SYS_ADMIN, no loop
devices, a read-only /run) and `hbmon config check` says so; with the shipped
classic-resources drop-in the group runs, its mount is in the system's mount
namespace (seen by every process, not only hbmon's), and it moves on a stop.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import measure
from netns_helpers import wait_until
from sdcluster import Cluster, messages
from vipclient import VipClient

from hbmon.testing.lab import VIP

pytestmark = [pytest.mark.netns, pytest.mark.systemd]

IMAGE = "/var/lib/hbtest/disk.img"
MOUNTPOINT = "/srv/data"
GROUP = f"IPaddr2::{VIP}/24/em1"
HARESOURCES = f"solr2 {GROUP} Filesystem::{IMAGE}::{MOUNTPOINT}::ext4::loop hbtestd\n"
DROP_IN_SRC = "/usr/share/hbmon/systemd/classic-resources.conf"
DROP_IN = "/etc/systemd/system/hbmon.service.d/classic-resources.conf"

# An LSB script in the style of the v1 era: a pid file under /run, a daemon that
# writes into the shared file system.
LSB_SCRIPT = """\
#!/bin/sh
### BEGIN INIT INFO
# Provides:          hbtestd
# Required-Start:    $local_fs
# Required-Stop:     $local_fs
# Short-Description: test daemon of tests/systemd/test_classic_resources.py
### END INIT INFO
PIDFILE=/run/hbtestd.pid
running() { [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }
case "$1" in
  start)
    running && exit 0
    echo "started on $(hostname)" >> @MOUNTPOINT@/hbtestd.log || exit 1
    setsid sh -c "echo \\$\\$ > $PIDFILE && exec sleep 100000" </dev/null >/dev/null 2>&1 &
    for i in 1 2 3 4 5 6 7 8 9 10; do running && exit 0; sleep 0.1; done
    exit 1 ;;
  stop)
    running && kill "$(cat $PIDFILE)"
    rm -f $PIDFILE; exit 0 ;;
  status)
    if running; then echo "hbtestd is running"; exit 0; fi
    echo "hbtestd is stopped"; exit 3 ;;
  *) echo "usage: $0 start|stop|status"; exit 2 ;;
esac
""".replace("@MOUNTPOINT@", MOUNTPOINT)


@pytest.fixture(scope="module")
def cluster(
    rootfs: dict[str, Path], hbmon_deb: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    image = tmp_path_factory.mktemp("fs") / "disk.img"
    subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    c = Cluster.create(
        rootfs["cluster"],
        hbmon_deb,
        extra_files={"/etc/init.d/hbtestd": LSB_SCRIPT, "/etc/ha.d/haresources": HARESOURCES},
        files={IMAGE: image},
        dirs=(MOUNTPOINT,),
    )
    try:
        yield c
    finally:
        for node in c.nodes.values():
            node.run("umount", MOUNTPOINT)  # frees the loop device (autoclear)
        c.down()


def mounted(cluster: Cluster, name: str) -> bool:
    """Mounted in the system's mount namespace (that of the container's PID 1)."""
    return cluster.nodes[name].run("findmnt", "-n", MOUNTPOINT).returncode == 0


def daemon_running(cluster: Cluster, name: str) -> bool:
    return cluster.nodes[name].run("/etc/init.d/hbtestd", "status").returncode == 0


def test_config_check_asks_for_the_drop_in(cluster: Cluster) -> None:
    out = cluster.nodes["solr2"].run("hbmon", "config", "check", check=True).stdout
    assert (
        f"Filesystem::{IMAGE}::{MOUNTPOINT}::ext4::loop (line 1), hbtestd (line 1) run as scripts"
        in out
    )
    assert DROP_IN_SRC in out


def test_the_hardened_unit_refuses_the_scripts(cluster: Cluster) -> None:
    s2 = cluster.nodes["solr2"]
    s2.run("systemctl", "start", "hbmon", check=True)
    wait_until(
        lambda: any(f"Resource group {GROUP} failed" in m for m in messages(s2)),
        60,
        "the group's start to fail",
    )
    assert not mounted(cluster, "solr2")
    assert not daemon_running(cluster, "solr2")
    assert any(f"failed (Filesystem::{IMAGE}" in m for m in messages(s2))
    s2.run("systemctl", "stop", "hbmon", check=True)
    assert cluster.holders() == set()
    # The same script with the same arguments works outside the sandbox.
    agent = ("/etc/ha.d/resource.d/Filesystem", IMAGE, MOUNTPOINT, "ext4", "loop")
    s2.run(*agent, "start", check=True)
    assert mounted(cluster, "solr2")
    s2.run(*agent, "stop", check=True)
    assert not mounted(cluster, "solr2")


def test_with_the_drop_in_the_group_runs_in_the_host_mount_namespace(cluster: Cluster) -> None:
    for c in cluster.nodes.values():
        c.run("mkdir", "-p", str(Path(DROP_IN).parent), check=True)
        c.run("cp", DROP_IN_SRC, DROP_IN, check=True)
        c.run("systemctl", "daemon-reload", check=True)
    s2 = cluster.nodes["solr2"]
    s2.run("systemctl", "start", "hbmon", check=True)
    cluster.nodes["solr1"].run("systemctl", "start", "hbmon", check=True)
    wait_until(lambda: mounted(cluster, "solr2") and daemon_running(cluster, "solr2"), 60,
               "the file system and the daemon on solr2")  # fmt: skip
    assert cluster.wait_stable() == "solr2"
    # hbmon shares the system's mount namespace: what it mounts, everyone sees.
    pid = s2.main_pid("hbmon")
    ns = s2.run("readlink", "/proc/1/ns/mnt", f"/proc/{pid}/ns/mnt").stdout.split()
    assert ns[0] == ns[1]
    assert "started on solr2" in s2.run("cat", f"{MOUNTPOINT}/hbtestd.log").stdout
    out = s2.run("systemd-analyze", "security", "hbmon", "--no-pager").stdout
    measure(
        "systemd-analyze security hbmon with classic-resources.conf", out.strip().splitlines()[-1]
    )


def test_a_restart_keeps_the_mount_and_the_daemon_running(cluster: Cluster) -> None:
    """A restart hands the group over (KillMode=process in the drop-in: the daemon the
    LSB script started outlives hbmon's old process); the new process finds every
    resource running and starts nothing again."""
    s2 = cluster.nodes["solr2"]
    assert cluster.wait_stable() == "solr2"
    daemon = s2.run("cat", "/run/hbtestd.pid", check=True).stdout.strip()
    cursor = s2.run("journalctl", "-n0", "--show-cursor", "--no-pager").stdout.split()[-1]
    client = VipClient(cluster.lab.client_ns, VIP).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    s2.run("systemctl", "restart", "hbmon", check=True, timeout=120)
    took = time.monotonic() - t0
    assert cluster.wait_stable() == "solr2"
    time.sleep(0.5)
    client.stop()
    outage = client.outage(t0 - 0.4, time.monotonic())
    assert s2.run("cat", "/run/hbtestd.pid", check=True).stdout.strip() == daemon
    assert daemon_running(cluster, "solr2")
    assert mounted(cluster, "solr2")
    log = s2.run("cat", f"{MOUNTPOINT}/hbtestd.log").stdout
    assert log.count("started on solr2") == 1  # its start was not run again
    lines = messages(s2, "hbmon", f"--after-cursor={cursor}")
    assert f"info: restart: resource group {GROUP} kept running" in lines
    assert not [line for line in lines if line.startswith("info: Running ")]  # no script op
    assert outage.lost == 0
    measure(
        "classic group (IPaddr2 + Filesystem + LSB) across systemctl restart",
        f"daemon pid kept, mount kept; command {took:.2f} s, client gap"
        f" {outage.largest_gap_s * 1000:.0f} ms, {outage.lost}/{outage.sent} lost",
    )


def test_the_whole_group_moves_on_stop(cluster: Cluster) -> None:
    s1, s2 = cluster.nodes["solr1"], cluster.nodes["solr2"]
    t0 = time.monotonic()
    s2.run("systemctl", "stop", "hbmon", check=True)
    wait_until(lambda: mounted(cluster, "solr1") and daemon_running(cluster, "solr1"), 60,
               "the group on solr1")  # fmt: skip
    moved = time.monotonic() - t0
    assert cluster.holders() == {"solr1"}
    assert not mounted(cluster, "solr2")
    assert not daemon_running(cluster, "solr2")
    assert "started on solr1" in s1.run("cat", f"{MOUNTPOINT}/hbtestd.log").stdout
    measure("classic group (IPaddr2 + Filesystem + LSB) moved on stop", f"{moved:.2f} s")
