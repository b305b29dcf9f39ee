"""`hbmon run` refuses clearly: bad config, missing interface, busy ports — no tracebacks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

AUTHKEYS = "auth 1\n1 sha1 testkey\n"


def write_dir(tmp_path: Path, hacf: str) -> Path:
    d = tmp_path / "ha.d"
    d.mkdir()
    (d / "ha.cf").write_text(hacf)
    (d / "authkeys").write_text(AUTHKEYS)
    (d / "authkeys").chmod(0o600)
    (d / "haresources").write_text("")
    return d


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hacf(port: int, iface: str = "lo", extra: str = "") -> str:
    return (
        f"keepalive 200ms\ndeadtime 2\nwarntime 1\ninitdead 4\nudpport {port}\n"
        f"ucast {iface} 127.0.0.1\nnode alpha beta\n{extra}"
    )


def run_agent(config_dir: Path, tmp_path: Path, metrics: str, timeout: float = 20):
    return subprocess.run(
        [sys.executable, "-m", "hbmon", "run", "--config-dir", str(config_dir),
         "--node", "alpha", "--state-dir", str(tmp_path / "state"),
         "--metrics-address", metrics],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="binding media to an interface needs root (CI is root)",
)


def test_bad_config_is_refused_with_file_and_line(tmp_path: Path) -> None:
    d = write_dir(tmp_path, "keepalive 2\ndeadtime 3\nnode alpha beta\nucast lo 127.0.0.1\n")
    res = run_agent(d, tmp_path, f"127.0.0.1:{free_tcp_port()}")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"{d / 'ha.cf'}:2:" in res.stderr
    assert "too small" in res.stderr
    # Nothing on the host changed: not even the state directory was created.
    assert not (tmp_path / "state").exists()


@needs_root
def test_missing_interface_is_named(tmp_path: Path) -> None:
    d = write_dir(tmp_path, hacf(free_udp_port(), iface="hbmnosuch0"))
    res = run_agent(d, tmp_path, f"127.0.0.1:{free_tcp_port()}")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "hbmnosuch0" in res.stderr


@needs_root
def test_udp_port_in_use_is_refused(tmp_path: Path) -> None:
    port = free_udp_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("0.0.0.0", port))
    try:
        d = write_dir(tmp_path, hacf(port))
        res = run_agent(d, tmp_path, f"127.0.0.1:{free_tcp_port()}")
    finally:
        holder.close()
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"UDP port {port} is in use" in res.stderr


def test_metrics_port_in_use_is_refused(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        d = write_dir(tmp_path, hacf(free_udp_port()))
        res = run_agent(d, tmp_path, f"127.0.0.1:{port}")
    finally:
        holder.close()
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"127.0.0.1:{port}" in res.stderr


@needs_root
def test_missing_privileges_are_named(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "util-linux's setpriv is part of every Debian install"
    d = write_dir(tmp_path, hacf(694))  # a privileged port
    res = subprocess.run(
        [setpriv, "--inh-caps=-all", "--bounding-set=-all",
         sys.executable, "-m", "hbmon", "run", "--config-dir", str(d), "--node", "alpha",
         "--state-dir", str(tmp_path / "state"), "--metrics-address", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "permission denied" in res.stderr
    assert "CAP_NET_BIND_SERVICE" in res.stderr


def test_arbitrator_tls_files_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    """The engine's arbiter port is built before anything opens; a key it cannot load is
    a one-line refusal, not a traceback (the endpoint is never contacted)."""
    d = write_dir(tmp_path, hacf(free_udp_port()))
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    (d / "hbmon-arbitrator.yaml").write_text(
        "endpoints: [https://192.0.2.31:2379]\n"
        f"ca: {tmp_path / 'ca.pem'}\n"
        f"cert: {tmp_path / 'client.pem'}\n"
        f"key: {tmp_path / 'client.key'}\n"
        "lease_ttl: 2s\n"
    )
    res = run_agent(d, tmp_path, f"127.0.0.1:{free_tcp_port()}")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "arbitrator TLS files cannot be used" in res.stderr
    assert "Not started." in res.stderr
