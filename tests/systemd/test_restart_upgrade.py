"""`systemctl restart hbmon` and a package upgrade on the VIP holder, measured by a
client pinging the VIP every 5 ms (issue 11, point 3).

A restart hands the groups over to the new process (hbmon/core/handover.py): the
unit's RestartKillSignal=SIGQUIT tells the old process, which leaves the
addresses up (set to expire after the handover window), writes its record in
/run/hbmon and tells the peer (dt stretched); the new process adopts them. The
client must lose no reply and the peer must take nothing. If no new process
comes, the addresses expire and the peer takes over after its stretched dead
interval: measured with a start that fails (a broken configuration).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import measure
from sdcluster import Cluster, messages
from vipclient import Outage, VipClient

from hbmon.testing.lab import VIP

pytestmark = [pytest.mark.netns, pytest.mark.systemd]

NEWER_IN_CONTAINER = "/var/tmp/hbmon-newer.deb"


@dataclass(frozen=True)
class Handover:
    holder_before: str
    holder_after: str
    pid_before: int
    pid_after: int
    outage: Outage
    peer_took_over: bool
    took_s: float  # the command's own duration


@pytest.fixture(scope="module")
def cluster(rootfs: dict[str, Path], hbmon_deb: Path, newer_deb: Path) -> Iterator[Cluster]:
    c = Cluster.create(rootfs["cluster"], hbmon_deb)
    try:
        for node in c.nodes.values():
            node.copy_in(newer_deb, NEWER_IN_CONTAINER)
        c.nodes["solr2"].run("systemctl", "enable", "--now", "hbmon", check=True)
        c.nodes["solr1"].run("systemctl", "enable", "--now", "hbmon", check=True)
        c.wait_stable()
        yield c
    finally:
        c.down()


def _handover(cluster: Cluster, *argv: str) -> Handover:
    holder = cluster.wait_stable()
    peer = cluster.nodes[cluster.other(holder)]
    cursor = peer.run("journalctl", "-n0", "--show-cursor", "--no-pager").stdout.split()[-1]
    c = cluster.nodes[holder]
    pid = c.main_pid("hbmon")
    client = VipClient(cluster.lab.client_ns, VIP).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    c.run(*argv, check=True, timeout=300)
    took = time.monotonic() - t0
    after = cluster.wait_stable()
    time.sleep(1.0)  # any late move shows up in the client's record
    client.stop()
    peer_lines = messages(peer, "hbmon", f"--after-cursor={cursor}")
    return Handover(
        holder_before=holder,
        holder_after=after,
        pid_before=pid,
        pid_after=c.main_pid("hbmon"),
        outage=client.outage(t0 - 0.4, time.monotonic()),
        peer_took_over=any(
            line.startswith("info: Taking over resource group") for line in peer_lines
        ),
        took_s=took,
    )


def _report(what: str, h: Handover) -> None:
    measure(
        what,
        f"largest client gap {h.outage.largest_gap_s * 1000:.0f} ms, {h.outage.lost}/"
        f"{h.outage.sent} replies lost, peer took over: {h.peer_took_over} "
        f"(holder {h.holder_before} -> {h.holder_after}); command {h.took_s:.2f} s",
    )


@pytest.fixture(scope="module")
def restarted(cluster: Cluster) -> Handover:
    h = _handover(cluster, "systemctl", "restart", "hbmon")
    _report("systemctl restart of the holder", h)
    return h


@pytest.fixture(scope="module")
def upgraded(cluster: Cluster, restarted: Handover, newer_deb: Path) -> Handover:
    h = _handover(cluster, "apt-get", "install", "-y", "-q", NEWER_IN_CONTAINER)
    _report(f"apt-get install {newer_deb.name} on the holder", h)
    return h


def test_restart_gives_a_new_process_and_one_holder(restarted: Handover) -> None:
    assert restarted.pid_after != restarted.pid_before
    assert restarted.outage.largest_gap_s < 1.0


def test_restart_keeps_the_vip_without_a_failover(restarted: Handover) -> None:
    assert restarted.outage.lost == 0
    assert not restarted.peer_took_over
    assert restarted.holder_after == restarted.holder_before


def test_upgrade_restarts_into_the_new_version(
    cluster: Cluster, upgraded: Handover, newer_deb: Path
) -> None:
    version = newer_deb.name.split("_")[1]
    c = cluster.nodes[upgraded.holder_before]
    assert c.run("dpkg-query", "-W", "-f=${Version}", "hbmon").stdout == version
    assert upgraded.pid_after != upgraded.pid_before
    info = cluster.metrics(upgraded.holder_before).get("hbmon_build_info", version=version)
    assert info == 1.0
    assert upgraded.outage.largest_gap_s < 1.0


def test_upgrade_keeps_the_vip_without_a_failover(upgraded: Handover) -> None:
    assert upgraded.outage.lost == 0
    assert not upgraded.peer_took_over
    assert upgraded.holder_after == upgraded.holder_before
