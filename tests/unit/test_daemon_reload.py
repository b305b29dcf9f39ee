"""A SIGHUP reload of a config that once crashed the loader: refused, logged, old config kept.

A real agent on loopback only (ucast lo 127.0.0.1), as in test_daemon.py.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="binding media to an interface needs root (CI is root)",
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp_path: Path, port: int, *, warntime: str = "1s", extra: str = "") -> str:
    return (
        "nodes: [alpha, beta]\n"
        f"timers: {{keepalive: 200ms, deadtime: 2s, warntime: {warntime}, initdead: 4s}}\n"
        f"udpport: {port}\n"
        "media: [{type: ucast, iface: lo, peer: 127.0.0.1}]\n"
        'auth: {active: 1, keys: [{index: 1, method: sha1, secret: "testkey"}]}\n'
        f"hbmon: {{state_dir: {tmp_path / 'state'}, run_dir: {tmp_path / 'run'}}}\n"
        f"{extra}"
    )


def write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sample(address: str, name: str, labels: str = "") -> float | None:
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    found = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


@needs_root
def test_sighup_with_a_list_for_a_ping_address_keeps_the_old_config(tmp_path: Path) -> None:
    port, address = free_udp_port(), f"127.0.0.1:{free_tcp_port()}"
    cfg, log = tmp_path / "hbmon.yaml", tmp_path / "agent.log"
    write(cfg, config(tmp_path, port))
    with log.open("w") as out:
        agent = subprocess.Popen(
            [sys.executable, "-m", "hbmon", "run", "--config", str(cfg), "--node", "alpha",
             "--metrics-address", address],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: sample(address, "hbmon_config_warntime_seconds") == 1.0, "the agent")

        bad = "ping_nodes: [{name: gw, addresses: [[1]]}]\n"
        write(cfg, config(tmp_path, port, warntime="1500ms", extra=bad))
        agent.send_signal(signal.SIGHUP)
        wait_for(
            lambda: sample(address, "hbmon_config_reloads_total", '{result="failure"}') == 1,
            "the refusal",
        )
        assert agent.poll() is None, "the agent must keep running"
        assert sample(address, "hbmon_config_warntime_seconds") == 1.0  # the old config
        text = log.read_text()
        assert f"{cfg}:7: ping_nodes[0].addresses[0]: expected a string, got list" in text
        assert "Configuration reload refused; still running the previous configuration." in text
        assert "Traceback" not in text

        # The reload machinery is intact: a good file is applied.
        write(cfg, config(tmp_path, port, warntime="1500ms"))
        agent.send_signal(signal.SIGHUP)
        wait_for(lambda: sample(address, "hbmon_config_warntime_seconds") == 1.5, "the reload")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    assert "Traceback" not in log.read_text()
