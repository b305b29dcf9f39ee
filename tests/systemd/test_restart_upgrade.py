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

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import measure
from netns_helpers import wait_until
from sdcluster import DEADTIME_S, Cluster, messages
from vipclient import Outage, VipClient

from hbmon.config.model import HANDOVER_WINDOW_MS
from hbmon.testing.lab import VIP

pytestmark = [pytest.mark.netns, pytest.mark.systemd]

NEWER_IN_CONTAINER = "/var/tmp/hbmon-newer.deb"
GROUP = f"IPaddr::{VIP}/24/em1"
WINDOW_S = HANDOVER_WINDOW_MS / 1000


@dataclass(frozen=True)
class Handover:
    holder_before: str
    holder_after: str
    pid_before: int
    pid_after: int
    outage: Outage
    peer_took_over: bool
    took_s: float  # the command's own duration
    holder_lines: list[str]  # the holder's hbmon journal from just before the command
    peer_lines: list[str]
    peer_handovers: float  # hbmon_peer_handovers_total{node=holder} on the peer, after
    resumed_groups: float | None  # hbmon_handover_resumed_groups of the new process


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
    own_cursor = c.run("journalctl", "-n0", "--show-cursor", "--no-pager").stdout.split()[-1]
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
    peer_metrics = cluster.metrics(cluster.other(holder))
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
        holder_lines=messages(c, "hbmon", f"--after-cursor={own_cursor}"),
        peer_lines=peer_lines,
        peer_handovers=peer_metrics.get("hbmon_peer_handovers_total", node=holder) or 0.0,
        resumed_groups=cluster.metrics(after).get("hbmon_handover_resumed_groups"),
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


def test_restart_is_a_handover_in_the_logs_and_the_metrics(restarted: Handover) -> None:
    holder, own, peer = restarted.holder_before, restarted.holder_lines, restarted.peer_lines
    assert (
        "info: Heartbeat restart triggered (SIGQUIT): handing over to the next hbmon"
        " process; resources stay up." in own
    )
    assert f"info: {holder} Heartbeat restart handover complete: 1 group(s) kept up." in own
    assert any(re.fullmatch(r"info: restart: resuming from generation \d+ \(handed over \d+ ms"
                            r" ago\)", line) for line in own)  # fmt: skip
    assert f"info: restart: resource group {GROUP} kept running" in own
    assert not [line for line in own if "should not be" in line or "Releasing" in line]
    assert not [line for line in own if "shutdown" in line.lower()]
    assert f"info: Heartbeat restart on node {holder}" in peer
    assert any(line.startswith(f"info: Node {holder} is restarting: it keeps its resources")
               for line in peer)  # fmt: skip
    assert f"info: Node {holder} restarted holding [{GROUP}]: left with it." in peer
    assert not [line for line in peer if "is dead" in line or "Late heartbeat" in line]
    assert restarted.resumed_groups == 1
    assert restarted.peer_handovers >= 1


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
    assert f"info: restart: resource group {GROUP} kept running" in upgraded.holder_lines
    assert upgraded.resumed_groups == 1


def test_a_restart_that_never_comes_back_fails_over_after_the_window(
    cluster: Cluster, upgraded: Handover
) -> None:
    """The new process cannot start (a configuration it refuses): the addresses left
    up expire after the handover window (the kernel removes them) and the peer,
    whose dead interval was stretched by the same window, takes over after it."""
    holder = cluster.wait_stable()
    other = cluster.other(holder)
    c = cluster.nodes[holder]
    hacf = c.root / "etc/ha.d/ha.cf"
    original = hacf.read_text()
    hacf.write_text(re.sub(r"(?m)^deadtime\s+\S+", "deadtime soon", original))
    client = VipClient(cluster.lab.client_ns, VIP).start()
    time.sleep(0.5)
    try:
        t0 = time.monotonic()
        c.run("systemctl", "restart", "hbmon", timeout=120)  # its start fails
        # What the peer waits: the window on top of its dead interval (deadtime, + 2 s
        # while the restarting process was in its first 5 s, as heartbeat advertises).
        dead_s = cluster.metrics(other).get("hbmon_peer_dead_interval_seconds", node=holder)
        assert dead_s in (DEADTIME_S + WINDOW_S, DEADTIME_S + 2 + WINDOW_S)
        both: list[float] = []

        def gone() -> bool:
            if len(cluster.holders()) > 1:
                both.append(time.monotonic() - t0)
            return not cluster.holds(holder)

        wait_until(gone, WINDOW_S + 10, "the address to expire on the old holder", 0.05)
        expired = time.monotonic() - t0
        wait_until(lambda: cluster.holders() == {other}, DEADTIME_S + 10, "the takeover", 0.05)
        moved = time.monotonic() - t0
        time.sleep(0.5)
        client.stop()
        outage = client.outage(t0, time.monotonic())
        assert both == []
        assert c.show("hbmon", "ActiveState")["ActiveState"] != "active"
        # The expiry comes at the window (the kernel checks lifetimes about once a
        # second), the takeover after the peer's stretched dead interval.
        assert WINDOW_S - 1 <= expired <= WINDOW_S + 3
        assert expired < moved <= dead_s + 1.5  # + the notice's way, the probe, the start
        peer_lines = messages(cluster.nodes[other], "hbmon", "--since=-120s")
        assert f"WARN: node {holder}: is dead" in peer_lines
        measure(
            "restart that never comes back (window 30 s, deadtime 8 s)",
            f"addresses gone {expired:.2f} s after the restart, peer holds the VIP after"
            f" {moved:.2f} s (its dead interval {dead_s:.0f} s); client gap"
            f" {outage.largest_gap_s:.2f} s",
        )
    finally:
        client.stop()
        hacf.write_text(original)
        c.run("systemctl", "reset-failed", "hbmon")
        c.run("systemctl", "start", "hbmon", check=True, timeout=120)
    assert cluster.wait_stable() in (holder, other)
