"""SIGHUP re-reads the web config of a running `hbmon run` and `hbmon watch`: the
renewed certificate is what a TLS client reads on its next connection, and a web
config that no longer loads is refused (logged, counted) with the old one served.

Both processes run for real in a lab's network namespaces (the agent in solr1's,
the watcher in solr2's, where no agent runs); the client connects from inside the
namespace to 127.0.0.1 and reads the certificate with Python's ssl module.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_helpers import Metrics, require_netns, wait_until
from pki import der, http_get, make_pki, served_cert

from hbmon.testing.lab import METRICS_PORT, Lab, socket_in_namespace

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    lab = Lab().up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Target:
    """A running agent or watcher with a web config whose files the test replaces."""

    def __init__(self, lab: Lab, node: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.ns = lab.nodes[node].ns
        self.proc = proc
        self.log = log

    def _connect(self) -> bytes:
        sock = socket_in_namespace(self.ns)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", METRICS_PORT))
        cert, tls = served_cert(sock)
        tls.close()
        return cert

    def cert(self) -> bytes | None:
        """The certificate a new connection gets, or None while nothing answers TLS."""
        try:
            return self._connect()
        except OSError:
            return None

    def metrics(self) -> Metrics:
        sock = socket_in_namespace(self.ns)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", METRICS_PORT))
        _, tls = served_cert(sock)
        try:
            response = http_get(tls)
        finally:
            tls.close()
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
        return Metrics(body.decode())

    def reloads(self, result: str) -> float:
        return self.metrics().get("hbmon_config_reloads_total", result=result) or 0.0

    def log_messages(self) -> list[str]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(str(json.loads(line)["record"]["message"]))
            except (ValueError, KeyError, TypeError):
                out.append(line)
        return out


def _live(pki: Path, d: Path, name: str) -> None:
    """Replace the served pair in place, as a certificate renewal does."""
    for ext in ("crt", "key"):
        shutil.copy(pki / f"{name}.{ext}", d / f"live.{ext}")


def _web(pki: Path, d: Path) -> Path:
    d.mkdir()
    _live(pki, d, "server")
    web = d / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: live.crt\n  key_file: live.key\n")
    return web


def _agent(lab: Lab, web: Path) -> Target:
    node = lab.nodes["solr1"]
    proc = lab.start_agent("solr1", "--web-config", str(web))
    return Target(lab, "solr1", proc, node.log_dir / "stderr.log")


def _watcher(lab: Lab, web: Path) -> Target:
    node = lab.nodes["solr2"]
    log = web.parent / "watch.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", node.ns, sys.executable, "-m", "hbmon", "watch",
             "--config-dir", str(node.config_dir), "--node", "solr2",
             "--metrics-address", f"127.0.0.1:{METRICS_PORT}",
             "--web-config", str(web), "--log-format", "json"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    return Target(lab, "solr2", proc, log)


@pytest.mark.parametrize("start", [_agent, _watcher], ids=["hbmon-run", "hbmon-watch"])
def test_sighup_serves_the_renewed_certificate_and_refuses_a_broken_one(
    lab: Lab, pki: Path, tmp_path: Path, start: object
) -> None:
    web = _web(pki, tmp_path / "web")
    target: Target = start(lab, web)  # type: ignore[operator]
    try:
        first = wait_until(target.cert, timeout=30, what="the endpoint answering TLS")
        assert first == der(pki / "server.crt")
        ok0, fail0 = target.reloads("success"), target.reloads("failure")

        _live(pki, web.parent, "renewed")
        assert target.cert() == first, "nothing re-read before SIGHUP"
        target.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: target.cert() == der(pki / "renewed.crt"), timeout=15,
                   what="the renewed certificate")  # fmt: skip
        wait_until(lambda: target.reloads("success") == ok0 + 1, timeout=10, what="ok counted")

        # A certificate whose key was not renewed with it: refused, the pair in use stays.
        shutil.copy(pki / "renewed2.crt", web.parent / "live.crt")
        target.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: target.reloads("failure") == fail0 + 1, timeout=15,
                   what="the refused reload counted")  # fmt: skip
        assert target.cert() == der(pki / "renewed.crt")
        m = target.metrics()
        assert m.get("hbmon_config_last_reload_successful") == 0
        refused = [line for line in target.log_messages() if "refused" in line]
        assert any(f"web config {web}" in line and "cannot load certificate" in line
                   for line in refused), refused  # fmt: skip
        assert target.proc.poll() is None, "a refused reload must not stop the process"
    finally:
        target.proc.terminate()
        try:
            target.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            target.proc.kill()
            target.proc.wait()
