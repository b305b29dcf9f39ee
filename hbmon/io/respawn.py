"""respawn clients: heartbeat's `respawn USER COMMAND…`, supervised as heartbeat does.

heartbeat 3.0.6 (heartbeat.c start_a_child_client, ManagedChildDied):
- every client starts at comm-up, in ha.cf order, as USER (its uid, gid and
  groups), in a process group of its own, as `sh -c "exec COMMAND"`;
- a client that exits is started again, unless it exited with code 100;
- a client that dies within 30 s of its start counts a short run (any longer
  run resets the count); after a short run the next start waits 1 s; the 11th
  short run in a row is "respawning too fast" and the client stays stopped;
- at shutdown, after the resources are released, the clients are stopped in
  reverse order with SIGTERM to their process group, one after the other.

What hbmon does differently: the client's stdout and stderr go to hbmon's log
(heartbeat sends them to /dev/null); a client that ignores SIGTERM is killed
after a grace period (heartbeat waits for ever); `ipfail` is never run, since
hbmon compares ping nodes itself (quorum.PingComparison).

`RespawnPolicy` is the rule without I/O; `Supervisor` applies it through an
injected `Spawner`, clock and sleep, so the rule and the supervision are tested
with a fake clock and fake children; `ProcessSpawner` is the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from loguru import logger

from hbmon.config.directives import NATIVE_CLIENTS
from hbmon.config.model import (
    RESPAWN_MAX_SHORT_RUNS,
    RESPAWN_NO_RESTART_EXIT,
    RESPAWN_SHORT_RUN_DELAY_MS,
    RESPAWN_SHORT_RUN_MS,
    RESPAWN_STOP_GRACE_MS,
    SCRIPT_PATH,
    RespawnClient,
)
from hbmon.errors import StartupError

# A line of client output longer than this is cut in the log.
MAX_LOG_LINE = 4096
HaEnv = tuple[tuple[str, str], ...]  # ha.cf's `env` lines


@dataclass(frozen=True, slots=True)
class Exit:
    code: int | None  # exit status; None when a signal ended it
    signal: int | None = None


class Verdict(StrEnum):
    RESTART = "restart"
    NO_RESTART = "exited 100"
    TOO_FAST = "respawning too fast"
    STOPPING = "stopping"


class RespawnPolicy:
    """heartbeat's respawn rule for one client: restart or not, and after how long."""

    __slots__ = ("restarts", "short_runs", "started_at")

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.short_runs = 0
        self.restarts = 0

    def started(self, now: float) -> None:
        self.started_at = now

    def exited(self, how: Exit, now: float, *, stopping: bool) -> tuple[Verdict, float]:
        """(what to do, seconds to wait before the next start)."""
        if stopping:
            return Verdict.STOPPING, 0.0
        if how.code == RESPAWN_NO_RESTART_EXIT:
            return Verdict.NO_RESTART, 0.0
        started = self.started_at if self.started_at is not None else now
        if now - started < RESPAWN_SHORT_RUN_MS / 1000:
            self.short_runs += 1
        else:
            self.short_runs = 0
        if self.short_runs > RESPAWN_MAX_SHORT_RUNS:
            return Verdict.TOO_FAST, 0.0
        self.restarts += 1
        delay = RESPAWN_SHORT_RUN_DELAY_MS / 1000 if self.short_runs > 0 else 0.0
        return Verdict.RESTART, delay


# ------------------------------------------------------------------ spawning --
class Child(Protocol):
    pid: int

    async def wait(self) -> Exit: ...

    def signal(self, sig: int) -> None: ...


class Spawner(Protocol):
    async def spawn(self, client: RespawnClient, ha_env: HaEnv) -> Child:
        """Start `client`; OSError (or StartupError) if it cannot be."""
        ...


@dataclass(frozen=True, slots=True)
class RunAs:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def run_as(user: str) -> RunAs:
    """USER's uid, gid, supplementary groups (heartbeat's initgroups) and home."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise StartupError(f"Invalid uid [{user}] specified for client child") from None
    return RunAs(pw.pw_uid, pw.pw_gid, tuple(os.getgrouplist(user, pw.pw_gid)), pw.pw_dir)


def client_problems(clients: tuple[RespawnClient, ...]) -> list[str]:
    """What heartbeat would refuse at start: an unknown user, a command that is not
    executable (ipfail is not run, so it needs neither)."""
    out: list[str] = []
    for c in clients:
        if c.program in NATIVE_CLIENTS:
            continue
        try:
            run_as(c.user)
        except StartupError as exc:
            out.append(f"respawn {c.command}: {exc}")
        if not os.access(c.path, os.X_OK):
            out.append(f"Client child command [{c.path}] is not executable")
    return out


def client_env(
    client: RespawnClient, home: str, ha_env: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    """A clean environment plus ha.cf's `env` lines as HA_NAME (heartbeat's set_env)."""
    env = {f"HA_{name}": value for name, value in ha_env}
    env.update({"PATH": SCRIPT_PATH, "HOME": home, "USER": client.user, "LOGNAME": client.user})
    return env


class _Process:
    """A real client: its process, and the tasks copying its output into the log."""

    def __init__(self, proc: asyncio.subprocess.Process, client: RespawnClient) -> None:
        self._proc = proc
        self.pid = proc.pid
        self._pumps = [
            asyncio.ensure_future(_pump(stream, client.program, self.pid, name))
            for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
            if stream is not None
        ]

    async def wait(self) -> Exit:
        rc = await self._proc.wait()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        return Exit(None, -rc) if rc < 0 else Exit(rc)

    def signal(self, sig: int) -> None:
        # Its process group: a shell script's children go with it, as in heartbeat.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


async def _pump(stream: asyncio.StreamReader, program: str, pid: int, name: str) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over the stream's limit: take what is there
            line = await stream.read(MAX_LOG_LINE)
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip("\n")[:MAX_LOG_LINE]
        logger.bind(client=program, stream=name).info("{}[{}]: {}", program, pid, text)


class ProcessSpawner:
    """Starts a client as heartbeat does: `sh -c "exec COMMAND"` as USER, own process group."""

    async def spawn(self, client: RespawnClient, ha_env: HaEnv) -> Child:
        # heartbeat checks before it forks: what cannot be executed is not respawned.
        if not os.access(client.path, os.X_OK):
            raise OSError(f"{client.path} is not executable")
        who = run_as(client.user)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            f"exec {client.command}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=client_env(client, who.home, ha_env),
            cwd="/",
            user=who.uid,
            group=who.gid,
            extra_groups=list(who.groups),
            process_group=0,
        )
        return _Process(proc, client)


# --------------------------------------------------------------- supervisor --
Sleep = Callable[[float], Awaitable[None]]


class Supervisor:
    """Runs every respawn client from comm-up to shutdown."""

    def __init__(
        self,
        clients: tuple[RespawnClient, ...],
        ha_env: tuple[tuple[str, str], ...],
        spawner: Spawner,
        clock: Callable[[], float],
        sleep: Sleep = asyncio.sleep,
        stop_grace_s: float = RESPAWN_STOP_GRACE_MS / 1000,
    ) -> None:
        self._clients = clients
        self._ha_env = ha_env
        self._spawner = spawner
        self._clock = clock
        self._sleep = sleep
        self._grace = stop_grace_s
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._children: dict[int, Child] = {}
        self._stopping = False
        self.policies = [RespawnPolicy() for _ in clients]
        self.verdicts: list[Verdict | None] = [None for _ in clients]

    @staticmethod
    def check(clients: tuple[RespawnClient, ...]) -> None:
        """Refuse to start as heartbeat would (unknown user, command not executable)."""
        problems = client_problems(clients)
        if problems:
            raise StartupError("; ".join(problems))

    def running(self) -> dict[str, int]:
        """command -> pid of every client running now."""
        return {self._clients[i].command: c.pid for i, c in self._children.items()}

    def start(self) -> None:
        """Comm-up: start every client (once; a second call does nothing)."""
        if self._tasks or self._stopping:
            return
        for i, client in enumerate(self._clients):
            if client.program in NATIVE_CLIENTS:
                logger.info(
                    'Not starting child client "{}": hbmon compares ping nodes itself'
                    " (ipfail's job)",
                    client.command,
                )
                continue
            self._tasks[i] = asyncio.ensure_future(self._supervise(i, client))

    async def _supervise(self, i: int, client: RespawnClient) -> None:
        policy = self.policies[i]
        delay = 0.0
        while True:
            if delay:
                await self._sleep(delay)
            if self._stopping:
                return
            logger.info('Starting child client "{}" as user {}', client.command, client.user)
            try:
                child = await self._spawner.spawn(client, self._ha_env)
            except (OSError, StartupError, ValueError) as exc:
                logger.error("Cannot exec {}: {}", client.command, exc)
                return
            self._children[i] = child
            policy.started(self._clock())
            logger.info('Starting "{}" as user {} (pid {})', client.command, client.user, child.pid)
            how = await child.wait()
            del self._children[i]
            _log_exit(client, child.pid, how, self._stopping)
            verdict, delay = policy.exited(how, self._clock(), stopping=self._stopping)
            self.verdicts[i] = verdict
            if verdict is Verdict.RESTART:
                logger.error('Respawning client "{}":', client.command)
                continue
            if verdict is Verdict.TOO_FAST:
                logger.error('Client {} "respawning too fast"', client.command)
            return

    async def stop(self) -> None:
        """Shutdown: no more restarts; SIGTERM to each running client, last first, then
        SIGKILL to one still there after the grace period."""
        self._stopping = True
        for i in sorted(self._children, reverse=True):
            child = self._children.get(i)
            if child is None:
                continue
            logger.info(
                "killing {} process group {} with signal {}",
                self._clients[i].command,
                child.pid,
                int(signal.SIGTERM),
            )
            child.signal(signal.SIGTERM)
            task = self._tasks.get(i)
            if task is None:
                continue
            done, _ = await asyncio.wait({task}, timeout=self._grace)
            if not done:
                logger.warning(
                    "Client {} (pid {}) ignored SIGTERM for {:g} s; killing it",
                    self._clients[i].command,
                    child.pid,
                    self._grace,
                )
                child.signal(signal.SIGKILL)
                await asyncio.wait({task}, timeout=self._grace)
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


def _log_exit(client: RespawnClient, pid: int, how: Exit, stopping: bool) -> None:
    # heartbeat's wording; at shutdown the same lines are debug only.
    log = logger.debug if stopping else logger.error
    if how.code:
        log("Client {} exited with return code {}.", client.command, how.code)
    if how.signal:
        log("Client {} (pid={}) killed by signal {}.", client.command, pid, how.signal)
