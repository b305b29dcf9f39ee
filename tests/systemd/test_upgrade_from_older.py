"""An upgrade from an hbmon that cannot hand over (issue 11, point 3, the way across).

The new package's unit stops a restarting hbmon with SIGQUIT; an older hbmon does
not catch it and would die without releasing anything. debian/hbmon.postinst
sees that (the running process's caught signals) and stops it gracefully first:
that one upgrade is a failover, as upgrades were before, never a crash. The
"older" hbmon is this package with SIGQUIT no longer caught.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import measure, repack_with_version
from sdcluster import Cluster, messages
from vipclient import VipClient

from hbmon.testing.lab import VIP

pytestmark = [pytest.mark.netns, pytest.mark.systemd]

NEW_IN_CONTAINER = "/var/tmp/hbmon-new.deb"
DAEMON = "usr/lib/python3/dist-packages/hbmon/daemon.py"


def without_handover(tree: Path) -> None:
    """hbmon as it was before the handover: SIGQUIT not caught at all."""
    daemon = tree / DAEMON
    text = daemon.read_text()
    for old, new in (
        ("HANDOVER_SIGNAL = signal.SIGQUIT", "HANDOVER_SIGNAL = signal.SIGUSR2"),
        ("    signal.signal(HANDOVER_SIGNAL, _quit_before_start)\n", ""),
    ):
        assert old in text, old
        text = text.replace(old, new)
    daemon.write_text(text)


@pytest.fixture(scope="module")
def older_deb(hbmon_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repack_with_version(
        hbmon_deb, "0.0.9", tmp_path_factory.mktemp("older"), edit=without_handover
    )


@pytest.fixture(scope="module")
def cluster(rootfs: dict[str, Path], older_deb: Path, hbmon_deb: Path) -> Iterator[Cluster]:
    c = Cluster.create(rootfs["cluster"], older_deb)
    try:
        for node in c.nodes.values():
            node.copy_in(hbmon_deb, NEW_IN_CONTAINER)
        c.nodes["solr2"].run("systemctl", "enable", "--now", "hbmon", check=True)
        c.nodes["solr1"].run("systemctl", "enable", "--now", "hbmon", check=True)
        c.wait_stable()
        yield c
    finally:
        c.down()


def test_upgrading_an_hbmon_that_cannot_hand_over_stops_it_gracefully_first(
    cluster: Cluster, hbmon_deb: Path
) -> None:
    holder = cluster.wait_stable()
    other = cluster.other(holder)
    c = cluster.nodes[holder]
    cursor = c.run("journalctl", "-n0", "--show-cursor", "--no-pager").stdout.split()[-1]
    client = VipClient(cluster.lab.client_ns, VIP).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    c.run("apt-get", "install", "-y", "-q", NEW_IN_CONTAINER, check=True, timeout=300)
    took = time.monotonic() - t0
    after = cluster.wait_stable()
    time.sleep(0.5)
    client.stop()
    outage = client.outage(t0 - 0.4, time.monotonic())
    version = hbmon_deb.name.split("_")[1]
    assert c.run("dpkg-query", "-W", "-f=${Version}", "hbmon").stdout == version
    own = messages(c, "hbmon", f"--after-cursor={cursor}")
    assert "info: Heartbeat shutdown in progress. (SIGTERM)" in own  # the graceful stop
    assert not [line for line in own if "core-dump" in line or "dumped core" in line]
    system = c.run("journalctl", f"--after-cursor={cursor}", "--no-pager").stdout
    assert "dumped core" not in system
    assert "status=3/QUIT" not in system
    peer = messages(cluster.nodes[other], "hbmon", "--since=-300s")
    assert f"info: Received shutdown notice from '{holder}'." in peer
    assert after == other  # a failover, as every upgrade was before the handover
    assert outage.largest_gap_s < 1.0
    measure(
        "apt-get install over an hbmon that cannot hand over",
        f"graceful stop first: {holder} -> {after}, client gap"
        f" {outage.largest_gap_s * 1000:.0f} ms, {outage.lost}/{outage.sent} lost;"
        f" command {took:.2f} s",
    )
