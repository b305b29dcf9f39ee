"""Script agents (spec §3.2) and `systemd:UNIT`, run as subprocesses with a timeout.

Lookup: the first executable `<config_dir>/resource.d/NAME`, then
`/etc/init.d/NAME`. Call: `NAME args… start|stop|status`, operation last.
Each call gets a clean environment (fixed PATH, C locale), its own session
(so a timeout kills the whole process group), and stdout/stderr in temporary
files rather than pipes: an init script whose daemon keeps the inherited
descriptors open does not hold the call up.

Status (hbmon improvement over spec §3.2, which reads only the text): the
LSB exit code decides, 0 running, 1-3 stopped. Other codes (non-LSB scripts)
fall back to heartbeat's reading of stdout: `not running` means stopped,
else `running` or `OK` means running, else stopped. An exit 0 whose stdout
says `not running` is a non-LSB script that always exits 0: stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hbmon.config.model import SCRIPT_KILL_GRACE_MS, SCRIPT_OUTPUT_LIMIT, SCRIPT_PATH

RESOURCE_DIR = "resource.d"
SYSTEMD_PREFIX = "systemd:"
LSB_RUNNING = 0
LSB_STOPPED = (1, 2, 3)  # dead+pidfile, dead+lockfile, not running
_NOT_RUNNING = re.compile(r"[Nn][Oo][Tt] *[Rr]unning")
_RUNNING = re.compile(r"[Rr]unning|OK")
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]+")


@dataclass(frozen=True, slots=True)
class RunResult:
    """One finished (or abandoned) command."""

    argv: tuple[str, ...]
    rc: int | None  # None: timed out or could not be started
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    error: str = ""  # why it could not be started

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def describe(self, timeout: float) -> str:
        """A short reason for a log line or an OpRecord detail."""
        if self.error:
            return self.error
        if self.timed_out:
            return f"timed out after {timeout:g} s"
        said = last_line(self.stderr) or last_line(self.stdout)
        return f"exit {self.rc}" + (f": {said}" if said else "")


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def clean_env(config_dir: Path) -> dict[str, str]:
    """The environment every script gets: nothing inherited from the daemon."""
    return {
        "PATH": SCRIPT_PATH,
        "LANG": "C",
        "LC_ALL": "C",
        "HOME": "/",
        "HA_DIR": str(config_dir),
        "HA_RESOURCEDIR": str(config_dir / RESOURCE_DIR),
    }


def locate(name: str, config_dir: Path, init_dir: Path) -> Path | None:
    """`<config_dir>/resource.d/NAME`, then `<init_dir>/NAME`: the first executable file."""
    if not name or "/" in name or name in (".", ".."):
        return None
    for folder in (config_dir / RESOURCE_DIR, init_dir):
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def text_says_running(stdout: str) -> bool:
    """heartbeat's rule (ResourceManager): judged from the words alone."""
    if _NOT_RUNNING.search(stdout):
        return False
    return bool(_RUNNING.search(stdout))


def judge_status(rc: int | None, stdout: str) -> tuple[bool, str]:
    """(running, why) from a status call's exit code, the text as a fallback."""
    said = last_line(stdout)
    if rc == LSB_RUNNING:
        if _NOT_RUNNING.search(stdout):
            return False, f"exit 0 but says [{said}] (not LSB): stopped"
        return True, "running (exit 0)"
    if rc in LSB_STOPPED:
        return False, f"stopped (exit {rc})"
    running = text_says_running(stdout)
    state = "running" if running else "stopped"
    code = "no exit code" if rc is None else f"exit {rc}"
    return running, f"{state} by its words [{said}] ({code}, not LSB)"


def _read(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read(SCRIPT_OUTPUT_LIMIT).decode("utf-8", errors="replace")


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_command(argv: Sequence[str], timeout_s: float, env: Mapping[str, str]) -> RunResult:
    """Run `argv` in its own session; on timeout SIGTERM its group, then SIGKILL."""
    start = time.monotonic()
    args = tuple(argv)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return RunResult(
                args, None, "", "", time.monotonic() - start, error=f"cannot run: {exc}"
            )
        timed_out = False
        try:
            rc: int | None = await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
            rc = None
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), SCRIPT_KILL_GRACE_MS / 1000)
            except TimeoutError:
                _kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        except asyncio.CancelledError:
            _kill_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        return RunResult(
            args, rc, _read(out), _read(err), time.monotonic() - start, timed_out=timed_out
        )


def systemd_unit(agent: str) -> str | None:
    """`systemd:nginx` -> `nginx`; None for any other agent."""
    if not agent.startswith(SYSTEMD_PREFIX):
        return None
    return agent[len(SYSTEMD_PREFIX) :]


def valid_unit(unit: str) -> bool:
    return bool(_UNIT.fullmatch(unit)) and not unit.startswith("-")


def systemctl() -> str | None:
    return shutil.which("systemctl", path=SCRIPT_PATH)


def systemctl_argv(path: str, op: str, unit: str) -> list[str]:
    """systemctl for start/stop/status (status = `is-active`: exit 0 = active)."""
    verb = {"start": "start", "stop": "stop", "status": "is-active"}[op]
    return [path, "--no-ask-password", verb, "--", unit]
