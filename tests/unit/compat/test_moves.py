"""hb_standby / hb_takeover: heartbeat's arguments, messages and exit codes; the
request handed to the agent without waiting for the outcome."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hbmon.compat import hb_standby, hb_takeover
from hbmon.compat.env import SOCKET_ENV, control_socket

STANDBY = "/usr/share/heartbeat/hb_standby"
TAKEOVER = "/usr/share/heartbeat/hb_takeover"
Main = Callable[[list[str]], int]


class Agent:
    """A control socket that records requests and never answers."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.requests: list[dict[str, str]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                self.requests.append(json.loads(data))

    def wait_requests(self, n: int) -> list[dict[str, str]]:
        for _ in range(200):
            if len(self.requests) >= n:
                break
            threading.Event().wait(0.01)
        return self.requests

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    path = tmp_path / "hbmon.sock"
    monkeypatch.setenv(SOCKET_ENV, str(path))
    a = Agent(path)
    yield a
    a.close()


def run(main: Main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    got = capsys.readouterr()
    return rc, got.out, got.err


def usage(prog: str) -> tuple[str, str]:
    return "usage:\n", f"{prog} [all|foreign|local|failback]\n"


@pytest.mark.parametrize(
    ("main", "prog"), [(hb_standby.main, STANDBY), (hb_takeover.main, TAKEOVER)]
)
def test_bad_arguments_are_refused_as_heartbeat_does(
    main: Main, prog: str, agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = usage(prog)
    assert run(main, [prog, "foo"], capsys) == (1, f"{prog}: wrong resources(foo).\n" + out, err)
    assert run(main, [prog, "a", "b"], capsys) == (1, f"{prog}: too many arguments\n" + out, err)
    assert run(main, [prog, "--help"], capsys) == (1, out, err)
    assert run(main, ["./hb_x", "ALL"], capsys)[1].startswith("./hb_x: wrong resources(ALL).")
    assert agent.wait_requests(0) == []


@pytest.mark.parametrize(
    ("argv", "scope", "logged"),
    [([], "all", "all"), (["local"], "local", "local"), (["failback"], "foreign", "foreign")],
)
def test_standby_sends_and_returns_at_once(
    argv: list[str], scope: str, logged: str, agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(hb_standby.main, [STANDBY, *argv], capsys)
    assert (rc, out) == (0, "")
    # heartbeat's ha_log line, with its date prefix when stdin is not a terminal
    assert re.fullmatch(rf"(\w{{3}} [ \d]\d \d\d:\d\d:\d\d )?Going standby \[{logged}\]\.\n", err)
    assert agent.wait_requests(1) == [{"cmd": "standby", "scope": scope}]


@pytest.mark.parametrize(
    ("arg", "scope"),
    [(None, "all"), ("local", "local"), ("foreign", "foreign"), ("failback", "all")],
)
def test_takeover_sends_and_returns_at_once(
    arg: str | None, scope: str, agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [TAKEOVER] if arg is None else [TAKEOVER, arg]
    assert run(hb_takeover.main, argv, capsys) == (0, "", "")
    assert agent.wait_requests(1) == [{"cmd": "takeover", "scope": scope}]


def test_an_unreachable_agent_is_said_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SOCKET_ENV, str(tmp_path / "none.sock"))
    rc, out, err = run(hb_takeover.main, [TAKEOVER, "local"], capsys)
    assert (rc, out) == (1, "")
    assert err == (
        f"{TAKEOVER}: hbmon is not running (no control socket at {tmp_path / 'none.sock'}):"
        " takeover [local] not requested\n"
    )
    rc, out, err = run(hb_standby.main, [STANDBY], capsys)
    assert rc == 1
    assert err.endswith(": standby [all] not requested\n")


def test_the_socket_defaults_to_run_hbmon() -> None:
    assert control_socket({}) == Path("/run/hbmon/hbmon.sock")
    assert control_socket({SOCKET_ENV: "/tmp/x.sock"}) == Path("/tmp/x.sock")
