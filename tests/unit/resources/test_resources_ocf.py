"""OcfAgent: OCF exit codes -> start / stop / status outcomes, and the executor's wiring."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from loguru import logger
from restools import FakeWorld, group, make_config

from hbmon.config.model import Resource, ResourceSettings
from hbmon.io.resources.agents import Context, ResourceIO, make_agent
from hbmon.io.resources.executor import ResourceExecutor
from hbmon.io.resources.ocf import OcfAgent
from hbmon.io.resources.scripts import RunResult


@dataclass
class FakeOcf:
    """Answers per action: (rc or None for a timeout, stderr)."""

    answers: dict[str, tuple[int | None, str]] = field(default_factory=dict)
    calls: list[tuple[tuple[str, ...], dict[str, str]]] = field(default_factory=list)

    async def run(self, argv: Sequence[str], timeout_s: float, env: Mapping[str, str]) -> RunResult:
        args = tuple(argv)
        self.calls.append((args, dict(env)))
        rc, err = self.answers.get(args[-1], (0, ""))
        if rc is None:
            return RunResult(args, None, "", "", timeout_s, timed_out=True)
        return RunResult(args, rc, "", err, 0.0)

    @property
    def actions(self) -> list[str]:
        return [argv[-1] for argv, _ in self.calls]


@pytest.fixture
def ocf_root(tmp_path: Path) -> Path:
    for name in ("Filesystem", "MailTo"):
        agent = tmp_path / "ocf" / "resource.d" / "heartbeat" / name
        agent.parent.mkdir(parents=True, exist_ok=True)
        agent.write_text("#!/bin/sh\nexit 0\n")
        agent.chmod(0o755)
    (tmp_path / "ha.d").mkdir()
    return tmp_path / "ocf"


def context(fake: FakeOcf, ocf_root: Path) -> Context:
    world = FakeWorld()
    io = ResourceIO(
        netlink=world.netlink,
        announce=world.announce,
        probe_owner=world.probe_owner,
        run=fake.run,
        init_dir=ocf_root.parent / "init.d",
        ocf_root=ocf_root,
    )
    return Context(io, ResourceSettings(), ocf_root.parent / "ha.d")


def agent(fake: FakeOcf, ocf_root: Path, spec: str = "Filesystem::/dev/sdb1::/data") -> OcfAgent:
    name, *args = spec.split("::")
    made = make_agent(Resource(name, tuple(args)), context(fake, ocf_root), lambda *a: None)
    assert isinstance(made, OcfAgent)
    return made


def test_start_runs_the_agent_with_the_wrappers_environment(ocf_root: Path) -> None:
    fake = FakeOcf({"monitor": (7, "")})
    out = asyncio.run(agent(fake, ocf_root).start())
    assert (out.ok, out.detail) == (True, "started")
    assert fake.actions == ["monitor", "start"]
    argv, env = fake.calls[-1]
    assert argv == (str(ocf_root / "resource.d" / "heartbeat" / "Filesystem"), "start")
    assert env["OCF_ROOT"] == str(ocf_root)
    assert (env["OCF_RA_VERSION_MAJOR"], env["OCF_RA_VERSION_MINOR"]) == ("1", "0")
    assert env["OCF_TYPE"] == "Filesystem"
    assert env["OCF_RESOURCE_INSTANCE"] == "Filesystem_/dev/sdb1"
    assert (env["OCF_RESKEY_device"], env["OCF_RESKEY_directory"]) == ("/dev/sdb1", "/data")
    assert "OCF_RESKEY_fstype" not in env
    assert env["HA_DIR"] == str(ocf_root.parent / "ha.d")  # the clean script environment


def test_start_skipped_when_monitor_says_running(ocf_root: Path) -> None:
    fake = FakeOcf({"monitor": (0, "")})
    out = asyncio.run(agent(fake, ocf_root).start())
    assert (out.ok, out.detail) == (True, "already running")
    assert fake.actions == ["monitor"]


@pytest.mark.parametrize("monitor_rc", [1, 6, None])
def test_start_not_skipped_when_monitor_cannot_say(ocf_root: Path, monitor_rc: int | None) -> None:
    fake = FakeOcf({"monitor": (monitor_rc, "")})
    assert asyncio.run(agent(fake, ocf_root).start()).ok
    assert fake.actions == ["monitor", "start"]


@pytest.mark.parametrize(
    ("rc", "name"),
    [
        (1, "OCF_ERR_GENERIC"),
        (2, "OCF_ERR_ARGS"),
        (3, "OCF_ERR_UNIMPLEMENTED"),
        (4, "OCF_ERR_PERM"),
        (5, "OCF_ERR_INSTALLED"),
        (6, "OCF_ERR_CONFIGURED"),
        (7, "OCF_NOT_RUNNING"),
        (42, "not an OCF exit code"),
    ],
)
def test_failed_start_names_the_ocf_code(ocf_root: Path, rc: int, name: str) -> None:
    fake = FakeOcf({"monitor": (7, ""), "start": (rc, "mount: bad superblock\n")})
    out = asyncio.run(agent(fake, ocf_root).start())
    assert (out.ok, out.detail) == (False, f"exit {rc} {name}: mount: bad superblock")


def test_the_exit_reason_line_is_the_detail(ocf_root: Path) -> None:
    err = "ocf-exit-reason:Setup problem: couldn't find command: mail\nINFO: later noise\n"
    fake = FakeOcf({"monitor": (7, ""), "start": (5, err)})
    out = asyncio.run(agent(fake, ocf_root, "MailTo::root").start())
    assert out.detail == "exit 5 OCF_ERR_INSTALLED: Setup problem: couldn't find command: mail"


@pytest.mark.parametrize(
    ("rc", "ok", "detail"),
    [(0, True, "stopped"), (7, True, "not running"), (1, False, "exit 1 OCF_ERR_GENERIC")],
)
def test_stop(ocf_root: Path, rc: int, ok: bool, detail: str) -> None:
    fake = FakeOcf({"stop": (rc, "")})
    out = asyncio.run(agent(fake, ocf_root).stop())
    assert (out.ok, out.detail) == (ok, detail)
    assert fake.actions == ["stop"]


@pytest.mark.parametrize(
    ("rc", "running", "why"),
    [
        (0, True, "running (exit 0 OCF_SUCCESS)"),
        (8, True, "running (exit 8 OCF_RUNNING_MASTER)"),
        (7, False, "stopped (exit 7 OCF_NOT_RUNNING)"),
        (5, False, "stopped (exit 5 OCF_ERR_INSTALLED)"),
        (1, True, "status unknown: exit 1 OCF_ERR_GENERIC"),
        (None, True, "status unknown: timed out after 15 s"),
    ],
)
def test_status_is_monitor(ocf_root: Path, rc: int | None, running: bool, why: str) -> None:
    fake = FakeOcf({"monitor": (rc, "")})
    assert asyncio.run(agent(fake, ocf_root).status()) == (running, why)
    assert fake.actions == ["monitor"]


def test_refused_arguments_never_run_the_agent(ocf_root: Path) -> None:
    fake = FakeOcf()
    a = agent(fake, ocf_root, "Filesystem::/dev/sdb1")
    usage = (
        "Filesystem takes 2 to 4 arguments, got 1:"
        " Filesystem::device::directory[::fstype[::options]]"
    )
    assert asyncio.run(a.start()).detail == usage
    assert not asyncio.run(a.start()).ok
    stop = asyncio.run(a.stop())
    assert (stop.ok, stop.detail) == (True, f"nothing to stop ({usage})")
    assert asyncio.run(a.status()) == (False, usage)
    assert fake.calls == []


@pytest.fixture
def log() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"))
    yield lines
    logger.remove(sink)


def test_executor_logs_each_resolution_once(ocf_root: Path, log: list[str]) -> None:
    world = FakeWorld()
    io = ResourceIO(
        netlink=world.netlink,
        announce=world.announce,
        probe_owner=world.probe_owner,
        run=world.run,
        init_dir=ocf_root.parent / "init.d",
        ocf_root=ocf_root,
    )
    g = group("MailTo::root", "solrsvc")
    ex = ResourceExecutor(make_config(g), config_dir=ocf_root.parent / "ha.d", io=io)
    agent_path = ocf_root / "resource.d" / "heartbeat" / "MailTo"
    at_start = [line for line in log if "Resource " in line]
    assert at_start[0] == f"INFO Resource MailTo::root: OCF agent {agent_path}"
    assert at_start[1].startswith("ERROR Resource solrsvc: cannot find resource script solrsvc")
    asyncio.run(ex.stop_group(g))
    asyncio.run(ex.stop_group(g))
    assert [line for line in log if "Resource " in line] == at_start
