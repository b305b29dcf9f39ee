"""respawn with real processes (root: clients run as `nobody`): restart, exit 100,
respawning too fast, stop at shutdown, output in the log, the user and HA_ env."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger
from netns_helpers import require_netns

from hbmon.config.model import RespawnClient
from hbmon.io.respawn import ProcessSpawner, Supervisor, Verdict

pytestmark = pytest.mark.netns  # needs root to run a client as another user


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="DEBUG")
    try:
        yield lines
    finally:
        logger.remove(sink)


@pytest.fixture
def workdir() -> Iterator[Path]:
    require_netns()
    # The clients run as nobody: a folder it can reach and write (pytest's are root's, 0700).
    path = Path(tempfile.mkdtemp(prefix="hbmon-respawn-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def supervisor(*clients: RespawnClient, env: tuple[tuple[str, str], ...] = ()) -> Supervisor:
    return Supervisor(clients, env, ProcessSpawner(), time.monotonic, stop_grace_s=2.0)


async def until(pred: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.02)


def test_runs_as_the_user_with_ha_env_output_logged_and_restarted(
    workdir: Path, log_lines: list[str]
) -> None:
    runs = workdir / "runs"
    cmd = script(
        workdir / "client.sh",
        f'echo "$(id -un) $HA_GREETING" >> {runs}\necho "said hello"\necho "oops" >&2\n'
        f'[ "$(wc -l < {runs})" -ge 3 ] && exit 100\nexit 1\n',
    )
    client = RespawnClient("nobody", f"{cmd} --ignored-arg")

    async def scenario() -> Supervisor:
        sup = supervisor(client, env=(("GREETING", "hi there"),))
        sup.start()
        await until(lambda: sup.verdicts[0] is Verdict.NO_RESTART, 15, "exit 100")
        return sup

    sup = asyncio.run(scenario())
    assert runs.read_text().splitlines() == ["nobody hi there"] * 3
    assert sup.verdicts == [Verdict.NO_RESTART]
    assert sup.policies[0].restarts == 2
    assert sum("client.sh[" in m and m.endswith("said hello") for m in log_lines) == 3
    assert sum(m.endswith("oops") for m in log_lines) == 3
    assert any(f"Client {client.command} exited with return code 100." in m for m in log_lines)
    assert sum(m == f'Respawning client "{client.command}":' for m in log_lines) == 2


def test_a_client_dying_at_once_is_respawning_too_fast(workdir: Path, log_lines: list[str]) -> None:
    runs = workdir / "runs"
    cmd = script(workdir / "crash.sh", f"echo x >> {runs}\nkill -SEGV $$\n")

    async def scenario() -> Supervisor:
        sup = supervisor(RespawnClient("nobody", cmd))
        sup.start()
        await until(lambda: sup.verdicts[0] is Verdict.TOO_FAST, 30, "too fast")
        return sup

    t0 = time.monotonic()
    asyncio.run(scenario())
    # 11 starts, ten of them after heartbeat's 1 s wait.
    assert len(runs.read_text().splitlines()) == 11
    assert time.monotonic() - t0 >= 10
    assert any(f"killed by signal {int(signal.SIGSEGV)}" in m for m in log_lines)
    assert f'Client {cmd} "respawning too fast"' in log_lines


def test_shutdown_stops_the_client_and_its_children(workdir: Path) -> None:
    pids = workdir / "pids"
    cmd = script(
        workdir / "daemon.sh",
        f"sleep 300 &\necho $! >> {pids}\necho $$ >> {pids}\nwait\n",
    )

    async def scenario() -> list[int]:
        sup = supervisor(RespawnClient("nobody", cmd))
        sup.start()
        await until(lambda: pids.exists() and len(pids.read_text().split()) == 2, 10, "started")
        alive = [int(p) for p in pids.read_text().split()]
        assert all(_alive(p) for p in alive)
        await sup.stop()
        return alive

    procs = asyncio.run(scenario())
    for pid in procs:
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(pid), f"pid {pid} survived the shutdown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split(")")[-1].split()[0] != "Z"
