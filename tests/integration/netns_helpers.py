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

from hbmon.testing.lab import Lab, arp_who_has, has_address, iface_mac

__all__ = [
    "Pair",
    "arp_who_has",
    "explain",
    "has_address",
    "iface_mac",
    "require_netns",
    "wait_until",
]


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


def explain(pair: Pair, lines: int = 25) -> str:
    """Who holds the VIP and the agents' last log lines: the message of a failed check."""
    from hbmon.testing.lab import VIP

    out = [f"ARP answers for {VIP}: {arp_who_has(pair.lab.gw_ns, 'gw0', VIP, timeout=0.15)}"]
    for name, node in pair.lab.nodes.items():
        mac = iface_mac(node.ns, "em1")
        out.append(f"{name}: has VIP {has_address(node.ns, 'em1', VIP)}, mac {mac}")
        out += [f"  {r.get('message', '')}" for r in pair.log_records(name)[-lines:]]
    return "\n".join(out)
