"""Resource agents for real, inside the lab's namespaces (hbmon.testing.lab).

A `ResourceExecutor` runs in each node's namespace (resources_worker.py via
`ip netns exec`); the test process watches the gateway's bridge ports with
raw packet sockets opened inside the gateway namespace. Nothing is sent
outside namespaces the lab created.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest
from netns_helpers import require_netns, wait_until

from hbmon.io.resources import arp, ndisc
from hbmon.io.resources.packet import PACKET_OUTGOING, format_mac
from hbmon.testing.lab import GATEWAY_IP, VIP, Lab, socket_in_namespace

pytestmark = pytest.mark.netns

WORKER = Path(__file__).with_name("resources_worker.py")
REPO = Path(__file__).resolve().parents[2]
VIP6 = "2001:db8:100::80"
GW6 = "2001:db8:100::254"
EXTRA = "198.51.100.81"
ETH_P_ALL = 0x0003
PORTS = {"solr1": "port1", "solr2": "port2"}  # the nodes' bridge ports in the gateway ns
# Every form a test may leave behind; each test ends by stopping them all.
LEFTOVERS = (f"IPaddr2::{VIP}/24/em1", f"IPaddr::{EXTRA}", f"IPaddr2::{VIP6}/64/em1")


class Worker:
    def __init__(self, lab: Lab, name: str) -> None:
        node = lab.nodes[name]
        self.stderr = open(node.log_dir / "resources-worker.log", "ab")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", node.ns, sys.executable, str(WORKER), str(node.config_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )

    def call(self, op: str, *group: str, timeout: float = 15, **extra: object) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, "group": list(group), **extra}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"worker: no reply to {op} within {timeout}s"
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close", timeout=5)
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


class Capture:
    """Frames of one EtherType arriving on a gateway bridge port, with arrival times.

    A bridge port hands its frames to the bridge before protocol-specific
    packet sockets see them; only an ETH_P_ALL tap does, so filter here.
    """

    def __init__(self, ns: str, iface: str, ethertype: int) -> None:
        self.sock = socket_in_namespace(
            ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
        )
        self.sock.bind((iface, ETH_P_ALL))
        self.ethertype = ethertype
        self.sock.settimeout(0.05)
        self.frames: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] != PACKET_OUTGOING and addr[1] == self.ethertype:  # from the node
                self.frames.append((time.monotonic(), data))

    def stop(self) -> list[tuple[float, bytes]]:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.frames


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Lab, dict[str, Worker]]]:
    require_netns()
    lab = Lab().up()
    workers: dict[str, Worker] = {}
    try:
        workers = {name: Worker(lab, name) for name in lab.nodes}
        yield lab, workers
    finally:
        for w in workers.values():
            w.close()
        lab.down()


@pytest.fixture
def env(lab: tuple[Lab, dict[str, Worker]]) -> Iterator[tuple[Lab, dict[str, Worker]]]:
    yield lab
    for w in lab[1].values():
        w.call("stop", *LEFTOVERS)


def addresses(lab: Lab, name: str) -> str:
    return lab.exec(lab.nodes[name].ns, ["ip", "-o", "addr", "show", "dev", "em1"]).stdout


def mac_of(lab: Lab, name: str) -> bytes:
    text = lab.exec(lab.nodes[name].ns, ["cat", "/sys/class/net/em1/address"]).stdout
    return bytes.fromhex(text.strip().replace(":", ""))


def gateway_neighbour(lab: Lab, ip: str) -> str:
    return lab.exec(lab.gw_ns, ["ip", "neigh", "show", ip]).stdout


def test_add_with_label_is_idempotent(env: tuple[Lab, dict[str, Worker]]) -> None:
    lab, w = env
    spec = f"IPaddr2::{VIP}/24/em1:vip"
    out = w["solr1"].call("start", spec)
    assert out["ok"], out
    lines = [ln for ln in addresses(lab, "solr1").splitlines() if f" {VIP}/" in ln]
    assert len(lines) == 1
    assert f"inet {VIP}/24 brd 198.51.100.255 scope global secondary em1:vip" in lines[0]
    again = w["solr1"].call("start", spec)
    assert again["ok"]
    assert again["records"][0][2].endswith("(already there)")
    assert len([ln for ln in addresses(lab, "solr1").splitlines() if f" {VIP}/" in ln]) == 1
    assert w["solr1"].call("active", spec)["ok"] is True
    assert not w["solr2"].call("active", spec)["ok"]
    assert w["solr1"].call("stop", spec)["ok"]
    assert f" {VIP}/" not in addresses(lab, "solr1")
    gone = w["solr1"].call("stop", spec)
    assert gone["ok"]
    assert gone["records"][0][2] == f"{VIP} not configured"
    assert w["solr1"].call("active", spec)["ok"] is False


def test_interface_and_prefix_from_the_routing_table(env: tuple[Lab, dict[str, Worker]]) -> None:
    lab, w = env
    out = w["solr2"].call("start", f"IPaddr::{EXTRA}")
    assert out["ok"], out
    assert out["records"][0][2] == f"{EXTRA}/24 on em1"
    assert f"inet {EXTRA}/24 brd 198.51.100.255 scope global secondary em1" in addresses(
        lab, "solr2"
    )
    assert w["solr2"].call("stop", f"IPaddr::{EXTRA}")["ok"]
    assert f" {EXTRA}/" not in addresses(lab, "solr2")


def test_missing_interface(env: tuple[Lab, dict[str, Worker]]) -> None:
    _, w = env
    out = w["solr1"].call("start", f"IPaddr::{VIP}/24/em9")
    assert not out["ok"]
    assert out["detail"] == f"IPaddr::{VIP}/24/em9: interface em9 not found"


def test_garp_reaches_the_gateway_and_moves_its_cache(env: tuple[Lab, dict[str, Worker]]) -> None:
    lab, w = env
    spec = f"IPaddr2::{VIP}/24/em1"
    mac1, mac2 = mac_of(lab, "solr1"), mac_of(lab, "solr2")
    # solr2 holds the VIP and the gateway has learnt it there.
    assert w["solr2"].call("start", spec)["ok"]
    assert lab.exec(lab.gw_ns, ["ping", "-c", "1", "-W", "1", VIP]).returncode == 0
    assert format_mac(mac2) in gateway_neighbour(lab, VIP)
    assert w["solr2"].call("stop", spec)["ok"]

    cap = Capture(lab.gw_ns, PORTS["solr1"], arp.ETH_P_ARP)
    out = w["solr1"].call("start", spec)
    assert out["ok"], out
    # The cache moved to solr1 from the announcement alone: no traffic since.
    wait_until(lambda: format_mac(mac1) in gateway_neighbour(lab, VIP), 1, "gateway cache on solr1")
    time.sleep(1.2)
    frames = cap.stop()

    garps = []
    for t, data in frames:
        p = arp.parse_arp(data)
        if p is not None and p.spa == p.tpa == IPv4Address(VIP):
            garps.append((t, p))
    assert [p.op for _, p in garps] == [arp.ARPOP_REQUEST, arp.ARPOP_REPLY] * 5
    assert all(p.sha == mac1 and p.eth_src == mac1 for _, p in garps)
    assert all(p.eth_dst == b"\xff" * 6 for _, p in garps)
    # The first pair is on the wire before start_group returned.
    assert garps[1][0] <= out["returned"] + 0.005
    pairs = [t for t, _ in garps[::2]]
    offsets = [round((t - pairs[0]) * 1000) for t in pairs]
    first_ms = 1000 * (garps[0][0] - out["called"])
    print(f"\nGARP pair offsets (ms): {offsets}; first frame {first_ms:.1f} ms after the call")
    for k, off in enumerate(offsets):
        assert abs(off - 200 * k) < 60, offsets


def test_stop_cancels_repeated_announcements(env: tuple[Lab, dict[str, Worker]]) -> None:
    lab, w = env
    spec = f"IPaddr::{VIP}/24/em1"  # IPaddr: 10 pairs, 500 ms apart
    cap = Capture(lab.gw_ns, PORTS["solr1"], arp.ETH_P_ARP)
    assert w["solr1"].call("start", spec)["ok"]
    assert w["solr1"].call("stop", spec)["ok"]
    time.sleep(1.2)
    garps = [p for _, d in cap.stop() if (p := arp.parse_arp(d)) and p.spa == IPv4Address(VIP)]
    assert len(garps) == 2


def test_arp_probe_sees_the_other_node(env: tuple[Lab, dict[str, Worker]]) -> None:
    lab, w = env
    spec = f"IPaddr2::{VIP}/24/em1"
    assert w["solr2"].call("start", spec)["ok"]
    probe = w["solr1"].call("probe", spec)
    assert probe["in_use"] is True
    assert probe["detail"] == f"{VIP} answers on em1 from {format_mac(mac_of(lab, 'solr2'))}"
    assert w["solr2"].call("stop", spec)["ok"]
    probe = w["solr1"].call("probe", spec)
    assert (probe["in_use"], probe["detail"]) == (False, f"{VIP} free on em1")
    # Holding it ourselves is not "another host".
    assert w["solr1"].call("start", spec)["ok"]
    assert w["solr1"].call("probe", spec)["in_use"] is False
    # Another host's own address (the gateway) is in use.
    assert w["solr1"].call("probe", f"IPaddr2::{GATEWAY_IP}/24/em1")["in_use"] is True
    # ...also within the shortest window the core gives a fast link (30 ms).
    assert w["solr2"].call("start", spec)["ok"]
    for _ in range(5):
        assert w["solr1"].call("probe", spec, window=0.03)["in_use"] is True


def test_ipv6_probe_and_unsolicited_na(env: tuple[Lab, dict[str, Worker]]) -> None:
    lab, w = env
    spec = f"IPaddr2::{VIP6}/64/em1"
    mac1, mac2 = mac_of(lab, "solr1"), mac_of(lab, "solr2")
    gw_add = ["ip", "addr", "replace", f"{GW6}/64", "dev", "gw0", "nodad"]
    assert lab.exec(lab.gw_ns, gw_add).returncode == 0
    assert w["solr2"].call("start", spec)["ok"]
    assert f"inet6 {VIP6}/64 scope global nodad" in addresses(lab, "solr2")
    assert lab.exec(lab.gw_ns, ["ping", "-6", "-c", "1", "-W", "2", VIP6]).returncode == 0
    assert format_mac(mac2) in gateway_neighbour(lab, VIP6)
    # solr2's kernel answers solr1's DAD probe: the solicitation is well formed.
    probe = w["solr1"].call("probe", spec)
    assert probe["in_use"] is True, probe
    assert probe["detail"].endswith(format_mac(mac2))
    assert w["solr2"].call("stop", spec)["ok"]
    assert w["solr1"].call("probe", spec)["in_use"] is False

    cap = Capture(lab.gw_ns, PORTS["solr1"], ndisc.ETH_P_IPV6)
    assert w["solr1"].call("start", spec)["ok"]
    # The gateway's kernel accepted the advertisement and moved its cache.
    wait_until(
        lambda: format_mac(mac1) in gateway_neighbour(lab, VIP6), 1, "gateway cache on solr1"
    )
    time.sleep(1.0)
    adverts = [
        a
        for _, d in cap.stop()
        if (a := ndisc.parse_advert(d)) is not None and a.target == IPv6Address(VIP6)
    ]
    assert len(adverts) == 5
    assert all(a.target_mac == mac1 and a.flags == ndisc.NA_OVERRIDE for a in adverts)


def test_failed_script_rolls_the_address_back(env: tuple[Lab, dict[str, Worker]]) -> None:
    lab, w = env
    rdir = lab.nodes["solr1"].config_dir / "resource.d"
    rdir.mkdir(exist_ok=True)
    script = rdir / "broken"
    script.write_text(
        '#!/bin/sh\ncase "$1" in start) echo "cannot start" >&2; exit 1;; status) exit 3;; esac\n'
    )
    script.chmod(0o755)
    out = w["solr1"].call("start", f"IPaddr2::{VIP}/24/em1", "broken")
    assert not out["ok"]
    assert out["detail"] == "broken: exit 1: cannot start"
    assert [r[:2] for r in out["records"]] == [
        ["start", True],
        ["start", False],
        ["stop", True],
        ["stop", True],
    ]
    assert f" {VIP}/" not in addresses(lab, "solr1")
