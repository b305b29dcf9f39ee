"""hbmon.service run by real systemd: the reference pair in two Debian 12
containers, installed from the .deb with apt (issue 11, point 4).

One pair for the module; the tests run in order and each leaves both agents
active with one VIP holder. Timers: tests/systemd/sdcluster.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import measure
from netns_helpers import wait_until
from sdcluster import (
    DEADTIME_S,
    INITDEAD_S,
    WATCHDOG_S,
    Cluster,
    journal,
    messages,
    monotonic_us,
    now_us,
    since,
)
from vipclient import VipClient

from hbmon.testing.lab import VIP

pytestmark = [pytest.mark.netns, pytest.mark.systemd]

GROUP = f"IPaddr::{VIP}/24/em1"
# systemd-analyze security of the shipped unit, online (docs/observability.md
# records the offline value of the same unit file).
EXPOSURE_MAX = 2.6


@pytest.fixture(scope="module")
def cluster(rootfs: dict[str, Path], hbmon_deb: Path) -> Iterator[Cluster]:
    c = Cluster.create(rootfs["cluster"], hbmon_deb)
    try:
        yield c
    finally:
        c.down()


def _comm_up_us(c_journal: list[dict[str, str]]) -> int:
    stamps = [
        int(e["__MONOTONIC_TIMESTAMP"])
        for e in c_journal
        if "Comm_now_up(): updating status to active" in str(e.get("MESSAGE"))
    ]
    assert len(stamps) == 1, stamps
    return stamps[0]


def test_active_only_after_comm_up(cluster: Cluster) -> None:
    """Type=notify: `activating` until hbmon declares comm up (alone: after initdead)."""
    s1, s2 = cluster.nodes["solr1"], cluster.nodes["solr2"]
    s2.run("systemctl", "enable", "--now", "--no-block", "hbmon", check=True)
    seen: list[str] = []

    def active() -> bool:
        state = s2.run("systemctl", "is-active", "hbmon").stdout.strip()
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "active"

    wait_until(active, INITDEAD_S + 30, "solr2's hbmon active", 0.1)
    assert seen[0] == "activating"
    assert "failed" not in seen
    started = monotonic_us(s2, "hbmon", "ExecMainStartTimestampMonotonic")
    ready = monotonic_us(s2, "hbmon", "ActiveEnterTimestampMonotonic")
    comm_up = _comm_up_us(journal(s2))
    # Alone, comm comes up only after initdead; READY=1 comes with it.
    assert (ready - started) / 1e6 >= INITDEAD_S
    assert abs(ready - comm_up) < 500_000
    measure("solr2 alone: start -> active", f"{(ready - started) / 1e6:.2f} s (initdead 16 s)")

    # With its peer up, solr1 is ready as soon as it has heard solr2.
    t0 = time.monotonic()
    s1.run("systemctl", "enable", "--now", "hbmon", check=True)
    took = time.monotonic() - t0
    started = monotonic_us(s1, "hbmon", "ExecMainStartTimestampMonotonic")
    ready = monotonic_us(s1, "hbmon", "ActiveEnterTimestampMonotonic")
    comm_up = _comm_up_us(journal(s1))
    assert started < comm_up <= ready + 50_000
    assert took < INITDEAD_S / 2
    measure("solr1 with peer: systemctl enable --now", f"{took:.2f} s")
    assert cluster.wait_stable() == "solr2"  # the preferred node, up first


def test_status_text_shows_peer_groups_and_comm(cluster: Cluster) -> None:
    holder = cluster.wait_stable()
    other = cluster.other(holder)
    text = cluster.nodes[holder].show("hbmon", "StatusText")["StatusText"]
    assert re.fullmatch(rf"peer {other} (up|active); holds {re.escape(GROUP)}; comm up", text)
    text = cluster.nodes[other].show("hbmon", "StatusText")["StatusText"]
    assert re.fullmatch(rf"peer {holder} (up|active); holds nothing; comm up", text)


def test_reload_is_a_sighup_reload(cluster: Cluster) -> None:
    c = cluster.nodes["solr1"]
    pid = c.main_pid("hbmon")
    before = cluster.metrics("solr1").get("hbmon_config_reloads_total", result="success") or 0
    hacf = c.root / "etc/ha.d/ha.cf"
    original = hacf.read_text()
    hacf.write_text(re.sub(r"(?m)^warntime\s+\S+", "warntime 3", original))
    try:
        c.run("systemctl", "reload", "hbmon", check=True)
        wait_until(
            lambda: cluster.metrics("solr1").get("hbmon_config_warntime_seconds") == 3.0,
            30,
            "warntime 3 s after the reload",
        )
        after = cluster.metrics("solr1").get("hbmon_config_reloads_total", result="success")
        assert after == before + 1
        assert c.main_pid("hbmon") == pid  # re-read in place, no restart
        assert any("(SIGHUP)" in m for m in messages(c))
    finally:
        hacf.write_text(original)
        c.run("systemctl", "reload", "hbmon", check=True)
    wait_until(
        lambda: cluster.metrics("solr1").get("hbmon_config_warntime_seconds") == 4.0,
        30,
        "warntime back to 4 s",
    )


def test_journal_holds_each_line_once(cluster: Cluster) -> None:
    """The reference ha.cf says `logfacility local0`: under systemd hbmon's stderr is
    the journal, and a syslog copy to /dev/log (journald too) doubled every line."""
    for name, c in cluster.nodes.items():
        entries = journal(c)
        ours = [e for e in entries if e.get("_COMM") == "hbmon"]
        assert ours, name
        assert {e.get("_TRANSPORT") for e in ours} == {"stdout"}, name
        starts = [e for e in ours if "Configuration validated. Starting hbmon" in e["MESSAGE"]]
        assert len(starts) == 1, name
        # No line twice within a millisecond (what the syslog copy looked like).
        stamps: dict[tuple[str, int], int] = {}
        for e in ours:
            key = (str(e["MESSAGE"]), int(e["__MONOTONIC_TIMESTAMP"]) // 1000)
            stamps[key] = stamps.get(key, 0) + 1
        assert max(stamps.values()) == 1, name
        # ha.cf's logfile gets the same lines in heartbeat's format.
        ha_log = c.run("cat", "/var/log/ha-log").stdout
        assert re.search(rf"^\w{{3}} \d\d \S+ {name} hbmon: \[\d+\]: info: Configuration "
                         r"validated\. Starting hbmon", ha_log, re.M)  # fmt: skip


def test_security_exposure_as_documented_or_better(cluster: Cluster) -> None:
    out = cluster.nodes["solr1"].run("systemd-analyze", "security", "hbmon", "--no-pager").stdout
    m = re.search(r"Overall exposure level for hbmon\.service: (\d+\.\d)", out)
    assert m, out[-2000:]
    measure("systemd-analyze security hbmon (running unit)", m.group(1))
    assert float(m.group(1)) <= EXPOSURE_MAX


def test_watchdog_restarts_a_frozen_agent(cluster: Cluster) -> None:
    """A frozen agent is killed after WatchdogSec and started again after RestartSec.
    Its addresses stay up meanwhile; back before deadtime, the peer sees a restart,
    not a death, and never holds the VIP together with it (README, Troubleshooting)."""
    holder = cluster.wait_stable()
    c, peer = cluster.nodes[holder], cluster.nodes[cluster.other(holder)]
    pid = c.main_pid("hbmon")
    client = VipClient(cluster.lab.client_ns, VIP).start()
    cursor = peer.run("journalctl", "-n0", "--show-cursor", "--no-pager").stdout.split()[-1]
    time.sleep(0.5)
    t0 = time.monotonic()
    c.run("systemctl", "kill", "-s", "SIGSTOP", "--kill-whom=main", "hbmon", check=True)
    both: list[float] = []

    def restarted() -> bool:
        if len(cluster.holders()) > 1:
            both.append(time.monotonic() - t0)
        return c.show("hbmon", "NRestarts")["NRestarts"] == "1" and cluster.active(holder)

    wait_until(restarted, 60, "the watchdog restart", 0.05)
    back_after = time.monotonic() - t0
    final = cluster.wait_stable()
    client.stop()
    outage = client.outage(t0, time.monotonic())
    assert c.main_pid("hbmon") != pid
    assert "hbmon.service: Failed with result 'watchdog'." in messages(c)
    # The last WATCHDOG=1 came up to half WatchdogSec before the freeze.
    assert WATCHDOG_S / 2 <= back_after < DEADTIME_S
    assert both == []
    peer_lines = messages(peer, "hbmon", f"--after-cursor={cursor}")
    assert f"info: Heartbeat restart on node {holder}" in peer_lines
    assert f"WARN: node {holder}: is dead" not in peer_lines
    assert outage.largest_gap_s < 2.0
    measure(
        "watchdog (WatchdogSec 3 s, frozen holder)",
        f"active again {back_after:.2f} s after the freeze; VIP gap"
        f" {outage.largest_gap_s * 1000:.0f} ms, {outage.lost}/{outage.sent} lost;"
        f" holder before {holder}, after {final}",
    )


def test_stop_releases_and_the_peer_takes_over_at_once(cluster: Cluster) -> None:
    holder = cluster.wait_stable()
    other = cluster.other(holder)
    c = cluster.nodes[holder]
    client = VipClient(cluster.lab.client_ns, VIP).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    c.run("systemctl", "stop", "hbmon", check=True)
    stopped = time.monotonic() - t0
    wait_until(lambda: cluster.holders() == {other}, 5, "the peer holding the VIP", 0.01)
    moved = time.monotonic() - t0
    time.sleep(0.5)
    client.stop()
    outage = client.outage(t0, time.monotonic())
    state = c.show("hbmon", "ActiveState", "Result")
    assert state == {"ActiveState": "inactive", "Result": "success"}
    assert moved < 2.0  # not deadtime: the shutdown notice moves it
    assert outage.largest_gap_s < 1.0
    assert f"info: Received shutdown notice from '{holder}'." in messages(
        cluster.nodes[other], "hbmon", "--since=-30s"
    )
    measure(
        "systemctl stop of the holder",
        f"stop {stopped * 1000:.0f} ms, peer holds VIP after {moved * 1000:.0f} ms, "
        f"client gap {outage.largest_gap_s * 1000:.0f} ms, {outage.lost}/{outage.sent} lost",
    )
    c.run("systemctl", "start", "hbmon", check=True)
    cluster.wait_stable()


def test_kill_and_link_down_move_the_vip_within_deadtime(cluster: Cluster) -> None:
    """The bound is the dead interval the peer applies: deadtime, or deadtime + 2 s
    while the holder is in its first 5 s (heartbeat's startup `dt`, spec §4.5)."""
    holder = cluster.wait_stable()
    other = cluster.other(holder)
    client = VipClient(cluster.lab.client_ns, VIP).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    t0_us = now_us()
    dead_s = cluster.metrics(other).get("hbmon_peer_dead_interval_seconds", node=holder)
    assert dead_s in (DEADTIME_S, DEADTIME_S + 2)
    cluster.nodes[holder].run("systemctl", "kill", "-s", "KILL", "hbmon", check=True)
    cluster.lab.link_set(holder, "em1", False)
    cut = time.monotonic()  # requests sent from now on cannot reach the old holder
    try:
        wait_until(lambda: other in cluster.holders(), DEADTIME_S + 10, "the takeover", 0.01)
        back = wait_until(lambda: client.first_answer_after(cut), 5, "a VIP answer", 0.01)
        client.stop()
        moved = back - t0
        measure(
            "kill -s KILL + link down -> VIP answers from the peer",
            f"{moved:.3f} s (dead interval {dead_s:.0f} s)",
        )
        assert moved <= dead_s + 0.3, since(cluster.nodes[other], t0_us)
    finally:
        client.stop()
        cluster.lab.link_set(holder, "em1", True)
    assert cluster.wait_stable() == other
