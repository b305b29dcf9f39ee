"""hbmon.sdnotify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hbmon.sdnotify import SdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    try:
        yield sock, path
    finally:
        sock.close()


def recv(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_every_notice_reaches_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = SdNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready()
    assert recv(sock) == "READY=1"
    assert n.status("peer solr2 active\nowner solr1")
    assert recv(sock) == "STATUS=peer solr2 active owner solr1"  # one line, never a new key
    assert n.watchdog()
    assert recv(sock) == "WATCHDOG=1"
    assert n.stopping()
    assert recv(sock) == "STOPPING=1"
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading()
    lines = recv(sock).split("\n")
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_abstract_socket_address() -> None:
    name = "hbmon-test-" + secrets.token_hex(6)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert SdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert recv(sock) == "READY=1"
    finally:
        sock.close()


def test_unset_socket_is_a_silent_no_op() -> None:
    n = SdNotifier({})
    assert not n.enabled
    assert n.ready() is False
    assert n.watchdog() is False
    assert n.watchdog_interval() is None


def test_default_environment_is_read(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert SdNotifier().status("up")
    assert recv(sock) == "STATUS=up"


@pytest.mark.parametrize(
    "address",
    ["/nonexistent/hbmon/notify", "@hbmon-nobody-listens-" + secrets.token_hex(6)],
    ids=["missing-path", "abstract-nobody-listens"],  # stable ids: the name is random
)
def test_failures_never_raise(address: str) -> None:
    assert SdNotifier({"NOTIFY_SOCKET": address}).ready() is False


def test_socket_that_is_not_a_datagram_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "stream")
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.bind(path)
    try:
        assert SdNotifier({"NOTIFY_SOCKET": path}).watchdog() is False
    finally:
        stream.close()


def test_embedded_nul_in_path_does_not_raise() -> None:
    assert SdNotifier({"NOTIFY_SOCKET": "/tmp/a\0b"}).ready() is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "3000000"}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "x"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert SdNotifier(env).watchdog_interval() == expected
