"""Script agents (spec §3.2) and `systemd:UNIT`, run as subprocesses with a timeout.

Lookup: the first executable `<config_dir>/resource.d/NAME`, then
`/etc/init.d/NAME`. Call: `NAME args… start|stop|status`, operation last.
Each call gets a clean environment (fixed PATH, C locale), its own session
(so a timeout kills the whole process group), and stdout/stderr in temporary
files rather than pipes: an init script whose daemon keeps the inherited
descriptors open does not hold the call up.

Status, as heartbeat 3.0.6 judges it (ResourceManager's `we_own_resource`):
only stdout counts, the exit code is ignored, and the first match wins:
`not` + one space + anything (newlines included) + `running` (either case
for each letter of `not`, `R`/`r` for running) means stopped; else `running`
/ `Running` or `OK` anywhere means running; else (nothing printed, `stopped`,
`ok`) stopped. hbmon keeps that reading and lets the LSB exit code only make
a status *stopped*, never running: exit 1-3 means stopped whatever the words
say. So a status is running when heartbeat's words say running and the exit
code is not 1-3; a script heartbeat would start is started. Where an LSB code
(0, 1-3) and the words disagree, the call is counted and the script named in
one warning (`StatusDisagreements`). docs/resource-status.md has the table.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loguru import logger

from hbmon.config.model import SCRIPT_KILL_GRACE_MS, SCRIPT_OUTPUT_LIMIT, SCRIPT_PATH

RESOURCE_DIR = "resource.d"
SYSTEMD_PREFIX = "systemd:"
LSB_RUNNING = 0
LSB_STOPPED = (1, 2, 3)  # dead+pidfile, dead+lockfile, not running
# heartbeat's case patterns `*[Nn][Oo][Tt]\ *[Rr]unning*` and `*[Rr]unning*|*OK*`:
# a shell `*` also spans newlines, hence DOTALL.
_WORDS_STOPPED = re.compile(r"[Nn][Oo][Tt] .*[Rr]unning", re.DOTALL)
_WORDS_RUNNING = re.compile(r"[Rr]unning|OK")
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


def clean_env(config_dir: Path, ha_env: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """The environment every script gets: nothing inherited from the daemon, except
    ha.cf's `env NAME=value` lines as HA_NAME=value (heartbeat sets them in its own
    environment, which its scripts inherit)."""
    env = {f"HA_{name}": value for name, value in ha_env}
    env.update(
        {
            "PATH": SCRIPT_PATH,
            "LANG": "C",
            "LC_ALL": "C",
            "HOME": "/",
            "HA_DIR": str(config_dir),
            "HA_RESOURCEDIR": str(config_dir / RESOURCE_DIR),
        }
    )
    return env


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
    """heartbeat's reading of a status call's stdout (its exit code plays no part)."""
    if _WORDS_STOPPED.search(stdout):
        return False
    return bool(_WORDS_RUNNING.search(stdout))


@dataclass(frozen=True, slots=True)
class StatusVerdict:
    """One status call, judged."""

    running: bool
    words_running: bool  # heartbeat's reading of stdout
    exit_running: bool | None  # the LSB reading of the exit code; None: not an LSB status
    rc: int | None
    said: str  # the last line of stdout

    @property
    def disagrees(self) -> bool:
        return self.exit_running is not None and self.exit_running != self.words_running

    @property
    def why(self) -> str:
        state = _state(self.running)
        reading = f"says [{self.said}]" if self.said else "prints nothing"
        code = "no exit code" if self.rc is None else f"exit {self.rc}"
        if self.exit_running is None:
            return f"{state}: {reading} ({code}, not an LSB status)"
        if not self.disagrees:
            return f"{state} ({code}, {reading})"
        if self.exit_running is False:
            return f"stopped ({code}), although it {reading}"
        return f"stopped: {reading}, which heartbeat reads as stopped, although {code}"

    def readings(self) -> str:
        """Both readings side by side, for the disagreement warning."""
        words = f"[{self.said}]" if self.said else "no output"
        return (
            f"exit {self.rc} reads {_state(self.exit_running)} (LSB),"
            f" {words} reads {_state(self.words_running)} (heartbeat);"
            f" judged {_state(self.running)}"
        )


def _state(running: bool | None) -> str:
    return "running" if running else "stopped"


def lsb_reading(rc: int | None) -> bool | None:
    """0 running, 1-3 stopped; anything else (4 unknown, OCF codes, signals) says nothing."""
    if rc == LSB_RUNNING:
        return True
    if rc in LSB_STOPPED:
        return False
    return None


def judge_status(rc: int | None, stdout: str) -> StatusVerdict:
    """heartbeat's words decide, except that exit 1-3 always means stopped."""
    words = text_says_running(stdout)
    by_exit = lsb_reading(rc)
    return StatusVerdict(words and by_exit is not False, words, by_exit, rc, last_line(stdout))


class StatusDisagreements:
    """Status calls whose LSB exit code and words disagree: each one counted
    (`count(resource)`), each script named in one warning per process."""

    def __init__(self, count: Callable[[str], None] | None = None) -> None:
        self._count = count
        self._warned: set[Path] = set()

    def note(self, resource: str, script: Path, verdict: StatusVerdict) -> None:
        """Called for a disagreeing status call of `resource`, run as `script`."""
        if script not in self._warned:
            self._warned.add(script)
            logger.warning(
                f"Resource script {script} ({resource}): status exit code and words disagree:"
                f" {verdict.readings()}. Warned once per script; every case is counted in"
                " hbmon_resource_status_disagreements_total."
            )
        if self._count is not None:
            try:
                self._count(resource)
            except Exception as exc:  # a metrics bug must not fail a status call
                logger.opt(exception=exc).error(f"status disagreement counter failed: {exc}")


def _read(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read(SCRIPT_OUTPUT_LIMIT).decode("utf-8", errors="replace")


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_command(
    argv: Sequence[str], timeout_s: float, env: Mapping[str, str], stdin: bytes = b""
) -> RunResult:
    """Run `argv` in its own session; on timeout SIGTERM its group, then SIGKILL.

    `stdin`: what the command reads (from a file, so it never blocks on a pipe)."""
    start = time.monotonic()
    args = tuple(argv)
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() as given,
    ):
        given.write(stdin)
        given.seek(0)
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=given if stdin else asyncio.subprocess.DEVNULL,
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
