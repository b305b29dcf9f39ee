"""Fencing devices run for real: cluster-glue's `stonith` command, or a fence agent.

    stonith   `stonith -t TYPE -p PARAMS -T reset NODE` (`-F FILE` for ha.cf's
              `stonith TYPE FILE`); the command loads the plugin (stonith2/*.so, or
              external/NAME, a script) and exits with the plugin's answer: 0 reset,
              4 (S_BADHOST) it cannot reset that node, anything else failed.
    agents    fence-agents' convention: `action=reboot|off|monitor`, `plug=NODE`
              and the device's arguments as name=value lines on stdin; exit 0 = done.

Each attempt has a time limit (the whole process group is killed at its end),
its output goes to the debug log, and it is recorded (`FenceRecord`, for the
metrics). Log lines keep heartbeat's wording (hb_resource.c Initiate_Reset):
`Resetting node X with [D]`, `node X now reset.`, `Device D cannot reset host X.`,
`Host X not reset!`, `Checking status of STONITH device [D]`,
`STONITH device D not operational!`.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from hbmon.config.model import (
    FENCE_AGENT_DIR,
    FENCE_OUTPUT_LIMIT,
    SCRIPT_PATH,
    FenceAction,
    FenceDevice,
    FenceKind,
    FencingSettings,
)
from hbmon.core.events import FenceResult
from hbmon.io.resources.scripts import RunResult, run_command

S_BADHOST = 4  # cluster-glue stonith.h: the device cannot reset that host
_STONITH_ACTION = {FenceAction.RESET: "reset", FenceAction.OFF: "off"}
_AGENT_ACTION = {FenceAction.RESET: "reboot", FenceAction.OFF: "off"}
AGENT_MONITOR = "monitor"


@dataclass(frozen=True, slots=True)
class FenceRecord:
    """One device tried on one node (or checked, node ""), for the metrics."""

    node: str
    device: str
    result: FenceResult
    seconds: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.result is FenceResult.OK


@dataclass(frozen=True, slots=True)
class FenceOutcome:
    """A whole reset: OK once one device did it, else the last device's failure."""

    node: str
    result: FenceResult
    device: str
    detail: str
    seconds: float


def env() -> dict[str, str]:
    """What a fencing command gets: nothing inherited from the daemon."""
    return {"PATH": SCRIPT_PATH, "LANG": "C", "LC_ALL": "C", "HOME": "/"}


def stonith_argv(command: str, d: FenceDevice, node: str | None) -> list[str]:
    """`stonith` resetting `node`, or checking the device (`-S`) when `node` is None."""
    config = ["-F", d.config_file] if d.config_file else ["-p", d.params]
    op = ["-S"] if node is None else ["-T", _STONITH_ACTION[d.action], node]
    return [command, "-t", d.type, *config, *op]


def agent_path(d: FenceDevice) -> str:
    return d.type if "/" in d.type else str(FENCE_AGENT_DIR / d.type)


def agent_input(d: FenceDevice, node: str | None) -> bytes:
    """The agent's stdin: the action, the plug (unless the device names one), its args."""
    lines = [f"action={AGENT_MONITOR if node is None else _AGENT_ACTION[d.action]}"]
    named = {name for name, _ in d.args}
    if node is not None and not named & {"plug", "port"}:
        lines.append(f"plug={d.plug(node)}")
    lines += [f"{name}={value}" for name, value in d.args]
    return ("\n".join(lines) + "\n").encode()


def classify(d: FenceDevice, run: RunResult) -> FenceResult:
    if run.ok:
        return FenceResult.OK
    if d.kind is FenceKind.STONITH and run.rc == S_BADHOST:
        return FenceResult.BADHOST
    return FenceResult.BAD


def _output(run: RunResult) -> str:
    text = (run.stdout + run.stderr).strip()
    return text[-FENCE_OUTPUT_LIMIT:]


class Fencer:
    """Runs the devices; `observe` gets every attempt and check (metrics)."""

    def __init__(
        self,
        settings: FencingSettings,
        observe: Callable[[FenceRecord], None] | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        self._observe = observe
        self._env = dict(environment) if environment is not None else env()

    def reconfigure(self, settings: FencingSettings) -> None:
        self._settings = settings

    @property
    def timeout_s(self) -> float:
        return self._settings.timeout_ms / 1000

    async def _run(self, d: FenceDevice, node: str | None) -> RunResult:
        if d.kind is FenceKind.STONITH:
            argv = stonith_argv(self._settings.stonith_command, d, node)
            return await run_command(argv, self.timeout_s, self._env)
        return await run_command(
            [agent_path(d)], self.timeout_s, self._env, stdin=agent_input(d, node)
        )

    async def reset(self, node: str, devices: Iterable[FenceDevice]) -> FenceOutcome:
        """Try each device in turn until one resets `node`."""
        start = time.monotonic()
        last: FenceRecord | None = None
        for d in devices:
            logger.info(f"Resetting node {node} with [{d.label}]")
            run = await self._run(d, node)
            result = classify(d, run)
            detail = "" if run.ok else run.describe(self.timeout_s)
            if out := _output(run):
                logger.debug(f"{d.label} ({node}): {out}")
            last = FenceRecord(node, d.label, result, run.seconds, detail)
            self._record(last)
            if result is FenceResult.OK:
                logger.info(f"node {node} now reset.")
                return FenceOutcome(node, result, d.label, "", time.monotonic() - start)
            if result is FenceResult.BADHOST:
                logger.error(f"Device {d.label} cannot reset host {node}. ({detail})")
            else:
                logger.error(f"Host {node} not reset! ({d.label}: {detail})")
        if last is None:
            return FenceOutcome(
                node, FenceResult.NOT_CONFIGURED, "", "no device", time.monotonic() - start
            )
        return FenceOutcome(node, last.result, last.device, last.detail, time.monotonic() - start)

    async def check(self, d: FenceDevice) -> bool:
        """heartbeat's device status check (at start, then hourly)."""
        logger.info(f"Checking status of STONITH device [{d.label}]")
        run = await self._run(d, None)
        ok = run.ok
        self._record(
            FenceRecord(
                "", d.label, FenceResult.OK if ok else FenceResult.BAD, run.seconds,
                "" if ok else run.describe(self.timeout_s),
            )
        )  # fmt: skip
        if not ok:
            logger.error(f"STONITH device {d.label} not operational!")
            logger.error(f"STONITH status operation failed. ({run.describe(self.timeout_s)})")
            logger.info("This may mean that the STONITH device has failed!")
        return ok

    async def watch(self, devices: Iterable[FenceDevice]) -> None:
        """Check every device now and then every status interval (0: never)."""
        devices = tuple(devices)
        interval = self._settings.status_interval_ms / 1000
        if not devices or interval <= 0:
            return
        while True:
            for d in devices:
                await self.check(d)
            await asyncio.sleep(interval)

    def _record(self, rec: FenceRecord) -> None:
        if self._observe is None:
            return
        try:
            self._observe(rec)
        except Exception as exc:  # a metrics bug must not stop a reset
            logger.opt(exception=exc).error(f"fencing observer failed: {exc}")


def plugin_types(command: str, timeout_s: float = 10.0) -> frozenset[str] | None:
    """`stonith -L`: the device types cluster-glue offers here (None: no stonith command)."""
    try:
        out = subprocess.run(
            [command, "-L"], capture_output=True, text=True, timeout=timeout_s, env=env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return frozenset(line.strip() for line in out.stdout.splitlines() if line.strip())


def plugin_names(command: str, kind: str, timeout_s: float = 10.0) -> list[str] | None:
    """`stonith -t TYPE -n`: the plugin's parameter names, in order (None: unknown)."""
    try:
        out = subprocess.run(
            [command, "-t", kind, "-n"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env(),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.split()


def device_problems(
    devices: Iterable[FenceDevice], command: str, node: str
) -> list[tuple[FenceDevice, str]]:
    """What heartbeat would refuse at start about the devices `node` uses, checked here:
    an unknown stonith type, too few values for its parameters, a missing config
    file or fence agent. (device, message) pairs."""
    devices = [d for d in devices if d.used_by(node)]
    problems: list[tuple[FenceDevice, str]] = []
    types = None
    for d in devices:
        if d.kind is FenceKind.FENCE_AGENT:
            path = Path(agent_path(d))
            if not path.is_file():
                problems.append((d, f"fence agent [{d.type}] not found ({path})"))
            continue
        if types is None:
            types = plugin_types(command)
            if types is None:
                problems.append(
                    (d, f"cannot run [{command} -L]: install cluster-glue for the stonith lines")
                )
                return problems
        if d.type not in types:
            problems.append((d, f"Invalid Stonith type [{d.type}]"))
            continue
        if d.config_file:
            if not Path(d.config_file).is_file():
                problems.append((d, f"Invalid Stonith config file [{d.config_file}]"))
            continue
        names = plugin_names(command, d.type)
        if names is not None and len(d.params.split()) < len(names):
            # Not the values themselves: they may hold a password.
            given = len(d.params.split())
            problems.append(
                (
                    d,
                    f"Invalid Stonith configuration parameter: {d.type} takes {len(names)}"
                    f" value(s) ({' '.join(names)}), {given} given",
                )
            )
    return problems
