"""`hbmon watch` next to a pure heartbeat 3.0.6 pair (both nodes run Debian's heartbeat).

The watcher runs in solr1's heartbeat namespaces (network, mount, UTS: it reads
heartbeat's /etc/ha.d and reaches its cl_status), exports on 127.0.0.1:9694 in
solr1's network namespace. hbmon.testing.lab timers: keepalive 200 ms, warntime 1 s,
deadtime 2 s, initdead 4 s; ucast em1; ping node 198.51.100.254. A raw socket on
solr1's bridge port in the gateway namespace records every frame solr1 sends.
The tests run in order on one pair.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hblab import Heartbeat, require_heartbeat

from hbmon.config.model import AuthConfig, AuthKey, AuthMethod, WireFormat
from hbmon.testing.lab import NODE_IPS, Lab, socket_in_namespace
from hbmon.wire import builders
from hbmon.wire.auth import Signer
from hbmon.wire.codec import decode, encode

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
PORT = 9694
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
KEEPALIVE = 0.2
WARNTIME = 1.0
DEADTIME = 2.0


def metric(text: str, name: str, **labels: str) -> float | None:
    """The sum of the samples `name{labels…}` (labels: a subset), None if there is none."""
    total: float | None = None
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total = (total or 0.0) + float(m.group(4))
    return total


class BridgeTap:
    """Every frame solr1 puts on the wire, seen from its bridge port in the gateway ns."""

    def __init__(self, lab: Lab) -> None:
        self.sock = socket_in_namespace(
            lab.gw_ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
        )
        self.sock.bind(("port1", ETH_P_ALL))
        self.sock.settimeout(0.2)
        self.frames: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] != PACKET_OUTGOING:  # frames that entered the bridge from solr1
                self.frames.append((time.monotonic(), data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Pair:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.hb1 = Heartbeat(lab, "solr1")
        self.hb2 = Heartbeat(lab, "solr2")
        self.watcher: subprocess.Popen[bytes] | None = None
        self.log = lab.nodes["solr1"].log_dir / "watch.log"
        self.tap: BridgeTap | None = None

    def start_watcher(self, argv_prefix: list[str], config_dir: str, *extra: str) -> None:
        with open(self.log, "ab") as log:
            self.watcher = subprocess.Popen(
                [*argv_prefix, sys.executable, "-m", "hbmon", "watch",
                 "--config-dir", config_dir, "--metrics-address", f"127.0.0.1:{PORT}",
                 "--log-format", "json", *extra],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip

    def stop_watcher(self) -> None:
        if self.watcher is not None and self.watcher.poll() is None:
            self.watcher.terminate()
            self.watcher.wait(10)
        self.watcher = None

    def metrics(self) -> str:
        return self.lab.http_get(self.lab.nodes["solr1"].ns, PORT)

    def wait_metrics(self, pred: Any, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                text = self.metrics()
                if pred(text):
                    return text
            time.sleep(0.1)
        log = self.log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"timed out: {what}\n{text[-4000:]}\n--- watch log\n{log}")


def tx_packets(ns: str, iface: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{iface}/statistics/tx_packets"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    require_heartbeat()
    lab = Lab(outsider=True).up()
    p = Pair(lab)
    try:
        yield p
    finally:
        p.stop_watcher()
        if p.tap is not None:
            p.tap.close()
        for hb in (p.hb1, p.hb2):
            if hb.running():
                hb.kill9()
        lab.down()


def test_an_idle_watcher_sends_nothing(pair: Pair) -> None:
    """Only the watcher runs on solr1 (no heartbeat anywhere yet): em1 sends nothing."""
    node = pair.lab.nodes["solr1"]
    # The kernel's own IPv6 chatter after link-up (DAD, router and MLD solicitations)
    # would be counted too: no IPv6 on this lab interface, and a quiet link first.
    pair.lab.exec(node.ns, ["sysctl", "-qw", "net.ipv6.conf.em1.disable_ipv6=1"])
    quiet = tx_packets(node.ns, "em1")
    for _ in range(50):
        time.sleep(0.2)
        if (now := tx_packets(node.ns, "em1")) == quiet:
            break
        quiet = now
    pair.start_watcher(["ip", "netns", "exec", node.ns], str(node.config_dir), "--node", "solr1")
    text = pair.wait_metrics(lambda t: "hbmon_watch_captured_datagrams" in t, 15, "watcher up")
    assert metric(text, "hbmon_node_state", node="solr2", state="init") == 1
    before = tx_packets(node.ns, "em1")
    time.sleep(3)
    assert tx_packets(node.ns, "em1") == before
    assert pair.watcher is not None
    assert pair.watcher.poll() is None
    pair.stop_watcher()


def test_both_nodes_active_with_intervals_near_keepalive(pair: Pair) -> None:
    pair.tap = BridgeTap(pair.lab)
    pid = pair.hb1.start()
    pair.hb2.start()
    pair.start_watcher(["nsenter", "-t", str(pid), "-m", "-u", "-n"], "/etc/ha.d")
    text = pair.wait_metrics(
        lambda t: (
            metric(t, "hbmon_node_state", node="solr2", state="active") == 1
            and metric(t, "hbmon_node_state", node="solr1", state="active") == 1
        ),
        30,
        "both nodes active",
    )
    time.sleep(1)  # past the start-up statuses (heartbeat sends one on each change)
    first = pair.metrics()
    time.sleep(3)  # about 15 beats each
    text = pair.metrics()
    for node in ("solr1", "solr2"):

        def delta(name: str, node: str = node) -> float:
            a, b = metric(first, name, node=node), metric(text, name, node=node)
            assert a is not None, name
            assert b is not None, name
            return b - a

        n = delta("hbmon_heartbeat_interval_seconds_count")
        total = delta("hbmon_heartbeat_interval_seconds_sum")
        assert n >= 12, (node, n)
        assert abs(total / n - KEEPALIVE) < 0.03, (node, total / n)
        print(f"{node}: {n:.0f} beats in 3 s, mean interval {total / n * 1000:.1f} ms")
        # every gap within warntime: nothing late, nothing lost
        assert metric(text, "hbmon_heartbeat_late_total", node=node, threshold="warntime") == 0
        assert metric(text, "hbmon_heartbeat_lost_total", node=node) == 0
        assert metric(text, "hbmon_link_up", node=node, link=f"em1/{node}") == 1
        assert metric(text, "hbmon_peer_heartbeat_age_seconds", node=node) < 1
    assert metric(text, "hbmon_comm_up") == 1
    assert metric(text, "hbmon_watch_captured_datagrams_total", iface="em1", direction="in") > 0
    assert metric(text, "hbmon_watch_captured_datagrams_total", iface="em1", direction="out") > 0
    assert metric(text, "hbmon_config_warntime_seconds") == WARNTIME
    assert metric(text, "hbmon_heartbeats_sent_total") is None  # agent-only metric, absent
    # heartbeat settles (~10 s), then solr2 takes its group; cl_status on solr1: none held here.
    text = pair.wait_metrics(
        lambda t: (
            metric(t, "hbmon_watch_owner_known") == 1
            and metric(t, "hbmon_resource_group_held") == 0
            and metric(t, "hbmon_resource_group_owned") == 1
        ),
        40,
        "owner state from cl_status",
    )
    assert metric(text, "hbmon_ping_node_up", node="198.51.100.254") == 1
    assert metric(text, "hbmon_ping_reachable_nodes") == 1


def test_sigstop_of_solr2_longer_than_warntime_counts_one_late_beat(pair: Pair) -> None:
    before = pair.metrics()
    late0 = metric(before, "hbmon_heartbeat_late_total", node="solr2", threshold="warntime")
    dead0 = metric(before, "hbmon_node_transitions_total", node="solr2", to="dead")
    pair.hb2.signal_all(19)  # SIGSTOP
    time.sleep(1.5)  # warntime 1 s < 1.5 s < deadtime 2 s
    pair.hb2.signal_all(18)  # SIGCONT
    text = pair.wait_metrics(
        lambda t: (
            metric(t, "hbmon_heartbeat_late_total", node="solr2", threshold="warntime")
            == (late0 or 0) + 1
        ),
        5,
        "a late beat of solr2",
    )
    assert metric(text, "hbmon_heartbeat_late_total", node="solr2", threshold="deadtime") == 0
    assert metric(text, "hbmon_node_transitions_total", node="solr2", to="dead") == dead0
    assert metric(text, "hbmon_node_state", node="solr2", state="active") == 1
    # one gap between warntime and deadtime
    upto_dead = metric(text, "hbmon_heartbeat_interval_seconds_bucket", node="solr2", le="2.0")
    upto_warn = metric(text, "hbmon_heartbeat_interval_seconds_bucket", node="solr2", le="1.0")
    assert upto_dead is not None
    assert upto_warn is not None
    assert upto_dead - upto_warn == 1


def test_forged_packet_from_an_outsider_is_an_auth_mismatch(pair: Pair) -> None:
    before = metric(
        pair.metrics(), "hbmon_packets_dropped_total", iface="em1", reason="auth_mismatch"
    )
    wrong = Signer(AuthConfig(active=1, keys=(AuthKey(1, AuthMethod.SHA1, b"not-the-key"),)))
    msg = builders.status(
        st="active", dt_ms=2000, src="solr2", srcuuid=b"\x01" * 16, seq=0x7FFFFFF0,
        hg=0x7FFFFFF0, ts=int(time.time()), ld="n/a", ttl=4,
    )  # fmt: skip
    data = encode(msg, wrong.sign, WireFormat.NETSTRING)
    sock = socket_in_namespace(pair.lab.outsider_ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(data, (NODE_IPS["solr1"], 694))
    finally:
        sock.close()
    text = pair.wait_metrics(
        lambda t: (
            metric(t, "hbmon_packets_dropped_total", iface="em1", reason="auth_mismatch")
            == (before or 0) + 1
        ),
        5,
        "the forged packet counted",
    )
    # it changed nothing: solr2's seq/generation were not moved by the forgery
    assert metric(text, "hbmon_peer_restarts_total", node="solr2") == 0
    assert metric(text, "hbmon_node_state", node="solr2", state="active") == 1


def test_kill9_of_solr2_is_dead_after_deadtime_and_solr1_takes_over(pair: Pair) -> None:
    before = pair.metrics()
    interval = metric(before, "hbmon_peer_dead_interval_seconds", node="solr2")
    # solr2's advertised dt: deadtime, or deadtime + 2 s while heartbeat forks clients
    assert interval is not None
    assert DEADTIME <= interval <= DEADTIME + 2, interval
    pair.hb2.kill9()
    t0 = time.monotonic()
    text = pair.wait_metrics(
        lambda t: metric(t, "hbmon_node_state", node="solr2", state="dead") == 1, 10, "dead"
    )
    took = time.monotonic() - t0
    print(f"solr2 dead {took:.2f} s after kill -9 (dead interval {interval} s)")
    assert interval - 0.3 < took < interval + 1.0, (took, interval)
    assert (
        metric(text, "hbmon_node_transitions_total", node="solr2", to="dead", **{"from": "active"})
        == 1
    )
    assert metric(text, "hbmon_link_up", node="solr2", link="em1/solr2") == 0
    assert metric(text, "hbmon_node_state", node="solr1", state="active") == 1
    deadline = time.monotonic() + 10  # heartbeat agrees
    while pair.hb1.cl_status("nodestatus", "solr2").stdout.strip() != "dead":
        assert time.monotonic() < deadline, pair.hb1.tail(60)
        time.sleep(0.1)
    # heartbeat on solr1 takes the group over (mach_down) and says so on the wire
    text = pair.wait_metrics(
        lambda t: metric(t, "hbmon_failovers_total", reason="peer_dead") == 1, 30, "takeover"
    )
    text = pair.wait_metrics(lambda t: metric(t, "hbmon_resource_group_held") == 1, 15, "held")


def test_the_watcher_sent_nothing(pair: Pair) -> None:
    """Every frame solr1 put on the bridge came from heartbeat: each UDP datagram is a
    heartbeat message from solr1, and as many left as the watcher saw leave."""
    assert pair.tap is not None
    text = pair.metrics()
    seen_out = metric(text, "hbmon_watch_captured_datagrams_total", iface="em1", direction="out")
    pair.hb1.kill9()
    time.sleep(0.5)
    pair.tap.close()
    udp = other = 0
    for _, frame in pair.tap.frames:
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == 0x0800 and frame[23] == 17:
            ihl = (frame[14] & 0x0F) * 4
            dport = int.from_bytes(frame[14 + ihl + 2 : 14 + ihl + 4], "big")
            assert dport == 694, frame.hex()
            assert decode(frame[14 + ihl + 8 :]).message.src == "solr1"
            udp += 1
        elif ethertype == 0x0806 or (ethertype == 0x0800 and frame[23] == 1):
            other += 1  # ARP (address resolution, IPaddr's gratuitous ARP), ping to the gw
        else:
            raise AssertionError(f"unexpected frame from solr1: {frame[:64].hex()}")
    assert seen_out is not None
    assert udp >= seen_out > 0
    assert udp - seen_out < 20  # those sent between the scrape and the kill
    assert pair.watcher is not None
    assert pair.watcher.poll() is None
