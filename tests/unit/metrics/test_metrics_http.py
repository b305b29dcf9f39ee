"""serve(): loopback only, port 0, and a clear StartupError for a taken port."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from metrics_samples import make_metrics, snapshot
from prometheus_client.parser import text_string_to_metric_families

from hbmon.errors import StartupError
from hbmon.metrics.http import Server, parse_address, serve


@pytest.fixture
def server() -> Iterator[Server]:
    srv = serve(make_metrics(snap=snapshot()), "127.0.0.1:0")
    try:
        yield srv
    finally:
        srv.close()


def test_serve_on_port_zero_reports_the_real_port_and_answers(server: Server) -> None:
    assert server.port > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        body = resp.read().decode()
    names = {f.name for f in text_string_to_metric_families(body)}
    assert {"hbmon_build_info", "hbmon_node_state", "hbmon_heartbeat_late"} <= names


def test_port_in_use_raises_startup_error_naming_the_address(server: Server) -> None:
    address = f"127.0.0.1:{server.port}"
    with pytest.raises(StartupError, match=rf"{address}.*already in use"):
        serve(make_metrics(), address)


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = serve(make_metrics(), "[::1]:0")
    except StartupError as exc:  # a host without ::1 (IPv6 disabled)
        pytest.skip(str(exc))
    try:
        with urllib.request.urlopen(f"http://[::1]:{srv.port}/metrics", timeout=5) as resp:
            assert b"hbmon_build_info" in resp.read()
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9694", ("127.0.0.1", 9694)),
        ("[::1]:9694", ("::1", 9694)),
        (":9694", ("0.0.0.0", 9694)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9694", "host:", "::1:9694", "h:70000", "h:x"])
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(StartupError, match="metrics address"):
        parse_address(address)
