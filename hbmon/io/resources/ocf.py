"""An OCF agent of resource-agents, run for a classic heartbeat agent or `OCF::agent::instance`.

heartbeat ran these through its wrappers (hto-mapfuncs' `ra_execocf`): the
agent gets `start`, `stop`, or `monitor` for a status, and the OCF variables
the wrapper exports (classic.OcfCall). The exit code is the answer:

- start / stop: 0 done; a stop that answers 7 (not running) is done too;
  anything else fails, named (`exit 5 OCF_ERR_INSTALLED: …`).
- monitor (Delay: status, see classic.py): 0 (or 8, running as master)
  running, 7 stopped. 5, not installed,
  is stopped too: an agent whose programs are missing here cannot have its
  resource running here (OCF's reading of a probe). Other answers are unknown,
  which counts as running for the start-up audit and a failed stop (so it is
  stopped, never assumed gone) but does not skip a start.

The reason shown is the agent's `ocf-exit-reason:` line when it printed one.
"""

from __future__ import annotations

import re
from enum import IntEnum

from loguru import logger

from hbmon.config.model import Resource
from hbmon.io.resources import scripts
from hbmon.io.resources.agents import Context, Outcome
from hbmon.io.resources.resolve import OcfTarget
from hbmon.io.resources.scripts import RunResult, last_line

SHELL = "/bin/sh"  # sources `OCF::agent::instance` instance files, as heartbeat's wrapper
EXIT_REASON = "ocf-exit-reason:"
# A variable the instance file sets (heartbeat's wrapper: the text before `=`
# of every line with one, comments and leading blanks removed).
_ASSIGNMENT = re.compile(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=")


class OcfExit(IntEnum):
    OCF_SUCCESS = 0
    OCF_ERR_GENERIC = 1
    OCF_ERR_ARGS = 2
    OCF_ERR_UNIMPLEMENTED = 3
    OCF_ERR_PERM = 4
    OCF_ERR_INSTALLED = 5
    OCF_ERR_CONFIGURED = 6
    OCF_NOT_RUNNING = 7
    OCF_RUNNING_MASTER = 8
    OCF_FAILED_MASTER = 9


RUNNING = (OcfExit.OCF_SUCCESS, OcfExit.OCF_RUNNING_MASTER)
STOPPED = (OcfExit.OCF_NOT_RUNNING, OcfExit.OCF_ERR_INSTALLED)


def exit_name(rc: int) -> str:
    try:
        return OcfExit(rc).name
    except ValueError:
        return "not an OCF exit code"


def instance_variables(text: str) -> list[str]:
    """The names an instance file assigns, in file order, each once."""
    names: list[str] = []
    for line in text.splitlines():
        m = _ASSIGNMENT.match(line.split("#", 1)[0])
        if m and m.group(1) not in names:
            names.append(m.group(1))
    return names


def explain(result: RunResult, timeout_s: float) -> str:
    """`exit 5 OCF_ERR_INSTALLED: <reason>`, or why there was no exit code."""
    if result.rc is None:
        return result.describe(timeout_s)
    reasons = [
        ln.split(EXIT_REASON, 1)[1].strip()
        for ln in result.stderr.splitlines()
        if EXIT_REASON in ln
    ]
    said = reasons[-1] if reasons else last_line(result.stderr) or last_line(result.stdout)
    return f"exit {result.rc} {exit_name(result.rc)}" + (f": {said}" if said else "")


class OcfAgent:
    """A classic heartbeat agent (or `OCF::agent::instance`) run as its OCF agent."""

    def __init__(
        self, resource: Resource, ctx: Context, target: OcfTarget | None, error: str = ""
    ) -> None:
        self.resource = resource
        self._ctx = ctx
        self.target = target
        self.error = error if target is None else ""

    def argv(self, target: OcfTarget, action: str) -> list[str]:
        if target.instance_file is None:
            return [str(target.path), action]
        # Source the instance file and export what it sets, then run the agent.
        try:
            text = target.instance_file.read_text(errors="replace")
        except OSError:
            text = ""
        names = instance_variables(text)
        export = f"export {' '.join(names)}; " if names else ""
        body = f'. "$1" || exit {int(OcfExit.OCF_ERR_CONFIGURED)}; {export}shift; exec "$@"'
        return [SHELL, "-c", body, "ocf", str(target.instance_file), str(target.path), action]

    async def _run(self, target: OcfTarget, action: str, timeout_ms: int) -> RunResult:
        if action != target.call.status_action:
            logger.info(f"Running OCF {target.path} {action} for {self.resource}")
        env = scripts.clean_env(self._ctx.config_dir, self._ctx.ha_env)
        env.update(target.call.environment(self._ctx.io.ocf_root))
        return await self._ctx.io.run(self.argv(target, action), timeout_ms / 1000, env)

    async def _monitor(self, target: OcfTarget) -> tuple[bool | None, str]:
        """(running, why); None: the agent could not say."""
        timeout_ms = self._ctx.settings.status_timeout_ms
        result = await self._run(target, target.call.status_action, timeout_ms)
        why = explain(result, timeout_ms / 1000)
        if result.rc in RUNNING:
            return True, f"running ({why})"
        if result.rc in STOPPED:
            return False, f"stopped ({why})"
        return None, f"status unknown: {why}"

    async def start(self) -> Outcome:
        if self.target is None:
            return Outcome(False, self.error)
        running, _ = await self._monitor(self.target)
        if running is True:  # heartbeat skips a resource whose status says running
            return Outcome(True, "already running")
        timeout_ms = self._ctx.settings.script_timeout_ms
        result = await self._run(self.target, "start", timeout_ms)
        if result.rc == OcfExit.OCF_SUCCESS:
            return Outcome(True, "started")
        return Outcome(False, explain(result, timeout_ms / 1000))

    async def stop(self) -> Outcome:
        if self.target is None:  # nothing here could have started it
            return Outcome(True, f"nothing to stop ({self.error})")
        timeout_ms = self._ctx.settings.script_timeout_ms
        result = await self._run(self.target, "stop", timeout_ms)
        if result.rc == OcfExit.OCF_SUCCESS:
            return Outcome(True, "stopped")
        if result.rc == OcfExit.OCF_NOT_RUNNING:
            return Outcome(True, "not running")
        return Outcome(False, explain(result, timeout_ms / 1000))

    async def status(self) -> tuple[bool, str]:
        if self.target is None:
            return False, self.error
        running, why = await self._monitor(self.target)
        # Unknown counts as running: it is then stopped, never assumed gone.
        return running is not False, why
