"""Helpers for namespace tests: a real pair of agents on a veth bridge.

These tests need root (network namespaces). In CI (CI=true, run as root) they
must run: a missing privilege there is a failure, never a silent skip.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hbmon.lab import Lab


def require_netns() -> None:
    problem = None
    if os.geteuid() != 0:
        problem = "needs root for network namespaces"
    elif shutil.which("ip") is None:
        problem = "needs iproute2"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"namespace test cannot run in CI: {problem}")
    pytest.skip(problem)


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = pred()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class Metrics:
    """One scrape of an agent, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                self.samples.append((s.name, dict(s.labels), s.value))

    def get(self, name: str, **labels: str) -> float | None:
        found = [v for n, lb, v in self.samples if n == name and labels.items() <= lb.items()]
        return sum(found) if found else None


class Pair:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.procs = {name: lab.start_agent(name) for name in lab.nodes}

    def metrics(self, name: str) -> Metrics:
        return Metrics(self.lab.http_get(self.lab.nodes[name].ns))

    def try_metrics(self, name: str) -> Metrics | None:
        try:
            return self.metrics(name)
        except OSError:
            return None

    def log_records(self, name: str) -> list[dict[str, Any]]:
        path: Path = self.lab.nodes[name].log_dir / "stderr.log"
        out = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except Exception:
                p.kill()


ETH_P_ARP = 0x0806


def arp_who_has(ns: str, iface: str, ip: str, timeout: float = 0.3) -> set[str]:
    """MAC addresses that answer an ARP request for `ip`, sent from `iface` in `ns`."""
    import socket
    import struct

    from hbmon.lab import socket_in_namespace

    sock = socket_in_namespace(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((iface, ETH_P_ARP))
        mac = sock.getsockname()[4]
        src_ip = _iface_ipv4(ns, iface)
        target = socket.inet_aton(ip)
        frame = (
            b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
            + mac + socket.inet_aton(src_ip) + b"\x00" * 6 + target
        )  # fmt: skip
        sock.send(frame)
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(2048)
            except TimeoutError:
                break
            arp = data[14:42]
            if len(arp) < 28 or struct.unpack("!H", arp[6:8])[0] != 2:
                continue
            if arp[14:18] == target:
                seen.add(arp[8:14].hex(":"))
        return seen
    finally:
        sock.close()


def _iface_ipv4(ns: str, iface: str) -> str:
    import subprocess

    out = subprocess.run(
        ["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", iface],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return out[out.index("inet") + 1].split("/")[0]


def iface_mac(ns: str, iface: str) -> str:
    import subprocess

    out = subprocess.run(
        ["ip", "-n", ns, "-o", "link", "show", "dev", iface], capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    return out[out.index("link/ether") + 1]


def has_address(ns: str, iface: str, ip: str) -> bool:
    import subprocess

    out = subprocess.run(
        ["ip", "-n", ns, "-o", "addr", "show", "dev", iface], capture_output=True, text=True
    ).stdout
    return f" {ip}/" in out
