"""One object per resource of a group: start, stop, status (and probe for addresses).

`ResourceIO` is the injectable I/O edge (httpx-style): netlink, frame
sending, probing, subprocesses, sleeping. `system_io()` is the real one;
unit tests pass fakes. Agents return outcomes and never raise for expected
failures; the executor still guards against the unexpected.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from loguru import logger

from hbmon.config.model import DEFAULT_INIT_DIR, DEFAULT_OCF_ROOT, Resource, ResourceSettings
from hbmon.io.resources import addresses, resolve, scripts
from hbmon.io.resources.addresses import (
    ADDRESS_AGENTS,
    IPADDR2,
    AddressError,
    AddressSpec,
    IPAddress,
)
from hbmon.io.resources.netlink import Netlink
from hbmon.io.resources.packet import format_mac
from hbmon.io.resources.rtnetlink import Rtnetlink
from hbmon.io.resources.scripts import RunResult

Announce = Callable[[str, IPAddress], Awaitable[None]]
ProbeOwner = Callable[[IPAddress, str, float, int], Awaitable[bytes | None]]
Run = Callable[[Sequence[str], float, Mapping[str, str]], Awaitable[RunResult]]
Sleep = Callable[[float], Awaitable[None]]
# (iface, ip, repeats left, interval s, loop time of the first): the executor's
# background GARP repeats, timed from the first announcement.
NOT_PROBED = "not probed: "  # a probe that could not run (and so says nothing)
ScheduleRepeats = Callable[[str, IPAddress, int, float, float], None]


@dataclass(frozen=True, slots=True)
class ResourceIO:
    netlink: Netlink
    announce: Announce
    probe_owner: ProbeOwner
    run: Run
    init_dir: Path = DEFAULT_INIT_DIR
    sleep: Sleep = field(default=asyncio.sleep)
    systemctl: Callable[[], str | None] = field(default=scripts.systemctl)
    ocf_root: Path = DEFAULT_OCF_ROOT


def system_io() -> ResourceIO:
    return ResourceIO(
        netlink=Rtnetlink(),
        announce=addresses.announce,
        probe_owner=addresses.probe_owner,
        run=scripts.run_command,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    detail: str


class Agent(Protocol):
    resource: Resource

    async def start(self) -> Outcome: ...
    async def stop(self) -> Outcome: ...
    async def status(self) -> tuple[bool, str]: ...


@dataclass(frozen=True, slots=True)
class Context:
    """What every agent of one executor shares."""

    io: ResourceIO
    settings: ResourceSettings
    config_dir: Path
    # The executor's, so a script is named in one warning however many agents ask.
    disagreements: scripts.StatusDisagreements = field(default_factory=scripts.StatusDisagreements)
    # ha.cf's `env` lines, for the scripts' environment.
    ha_env: tuple[tuple[str, str], ...] = ()


# ---------------------------------------------------------------- address --
class AddressAgent:
    """IPaddr / IPaddr2: the address via netlink, then GARP / NA."""

    def __init__(self, resource: Resource, ctx: Context, repeats: ScheduleRepeats) -> None:
        self.resource = resource
        self._ctx = ctx
        self._repeats = repeats
        self.spec: AddressSpec | None = None
        self.error = ""
        try:
            self.spec = addresses.parse_address(resource.agent, resource.args)
        except AddressError as exc:
            self.error = str(exc)

    def _garp(self) -> tuple[int, float]:
        s = self._ctx.settings
        if self.resource.agent == IPADDR2:
            return s.garp_count_ipaddr2, s.garp_interval_ms_ipaddr2 / 1000
        return s.garp_count_ipaddr, s.garp_interval_ms_ipaddr / 1000

    async def start(self) -> Outcome:
        if self.spec is None:
            return Outcome(False, self.error)
        nl = self._ctx.io.netlink
        try:
            place = await addresses.resolve(nl, self.spec)
            added = await addresses.add(nl, place)
        except AddressError as exc:
            return Outcome(False, str(exc))
        except OSError as exc:
            return Outcome(False, f"cannot add {self.spec.ip}: {exc.strerror or exc}")
        # The first announcement right after the address is up, before anything
        # else (the log line included): until it arrives, clients still send to
        # the old owner's MAC.
        count, interval = self._garp()
        failed: OSError | None = None
        if count > 0:
            first_at = asyncio.get_running_loop().time()
            try:
                await self._ctx.io.announce(place.iface, place.ip)
            except OSError as exc:
                failed = exc
            if count > 1:
                self._repeats(place.iface, place.ip, count - 1, interval, first_at)
        if added:
            brd = f" with broadcast address {place.broadcast}" if place.broadcast else ""
            logger.info(
                f"{self.resource.agent}: Adding inet address {place.ip}/{place.prefixlen}"
                f"{brd} to device {place.iface}"
                + (f" (label {place.label})" if place.label else "")
            )
        detail = f"{place}" + ("" if added else " (already there)")
        if failed is not None:
            # The address is up; a lost announcement is not a failed start.
            logger.warning(f"{self.resource}: announcing {place.ip} on {place.iface}: {failed}")
            detail += f"; announcement failed: {failed.strerror or failed}"
        return Outcome(True, detail)

    async def announce(self) -> Outcome:
        """The start's announcement series again, for an address that is already up."""
        if self.spec is None:
            return Outcome(False, self.error)
        nl = self._ctx.io.netlink
        try:
            place = await addresses.resolve(nl, self.spec)
            if not await addresses.find(nl, self.spec):
                return Outcome(False, f"{self.spec.ip} not configured")
        except (AddressError, OSError) as exc:
            return Outcome(False, f"cannot announce {self.spec.ip}: {exc}")
        count, interval = self._garp()
        if count > 0:
            first_at = asyncio.get_running_loop().time()
            try:
                await self._ctx.io.announce(place.iface, place.ip)
            except OSError as exc:
                return Outcome(False, f"announcing {place.ip} on {place.iface}: {exc}")
            if count > 1:
                self._repeats(place.iface, place.ip, count - 1, interval, first_at)
        logger.info(f"{self.resource.agent}: announcing {place.ip} on {place.iface} again")
        return Outcome(True, f"announced {place.ip} on {place.iface}")

    async def stop(self) -> Outcome:
        if self.spec is None:
            return Outcome(True, f"nothing to stop ({self.error})")
        try:
            removed = await addresses.remove(self._ctx.io.netlink, self.spec)
        except OSError as exc:
            return Outcome(False, f"cannot remove {self.spec.ip}: {exc.strerror or exc}")
        if not removed:
            return Outcome(True, f"{self.spec.ip} not configured")
        for entry in removed:
            logger.info(f"{self.resource.agent}: IP address {entry.address} released")
        return Outcome(True, f"removed {self.spec.ip}")

    async def set_lifetime(self, seconds: int | None) -> Outcome:
        """Make the address expire after `seconds`, or never again (None): a restart's
        dead man's switch (hbmon/core/handover.py). An address not configured has
        nothing to expire."""
        if self.spec is None:
            return Outcome(True, f"nothing to do ({self.error})")
        nl = self._ctx.io.netlink
        try:
            found = await addresses.find(nl, self.spec)
            for entry in found:
                await nl.set_lifetime(
                    entry.index,
                    entry.address,
                    entry.prefixlen,
                    seconds=seconds,
                    nodad=self.spec.ip.version == 6,
                )
        except OSError as exc:
            return Outcome(False, f"cannot set the lifetime of {self.spec.ip}: {exc}")
        if not found:
            return Outcome(True, f"{self.spec.ip} not configured")
        if seconds is None:
            return Outcome(True, f"{self.spec.ip} kept (no expiry)")
        return Outcome(True, f"{self.spec.ip} expires in {seconds} s")

    async def status(self) -> tuple[bool, str]:
        if self.spec is None:
            return False, self.error
        found = await addresses.find(self._ctx.io.netlink, self.spec)
        if found:
            return True, f"{self.spec.ip} configured"
        return False, f"{self.spec.ip} not configured"

    async def probe(self, window_s: float) -> tuple[bool, str]:
        """(in_use, detail): does another host answer for the address on its segment,
        within `window_s`?"""
        if self.spec is None:
            return False, f"{NOT_PROBED}{self.error}"
        try:
            place = await addresses.resolve(self._ctx.io.netlink, self.spec)
        except (AddressError, OSError) as exc:
            return False, f"{NOT_PROBED}{exc}"
        s = self._ctx.settings
        try:
            owner = await self._ctx.io.probe_owner(place.ip, place.iface, window_s, s.probe_count)
        except OSError as exc:
            if exc.errno in (errno.ENETDOWN, errno.ENODEV, errno.ENXIO):
                # The segment cannot be seen, so the address cannot be checked: a node
                # whose service link is down must not take it (it may be the one cut off).
                return True, f"cannot probe on {place.iface}: {exc.strerror or exc}"
            return False, f"{NOT_PROBED}{place.iface}: {exc.strerror or exc}"
        if owner is None:
            return False, f"{place.ip} free on {place.iface}"
        return True, f"{place.ip} answers on {place.iface} from {format_mac(owner)}"


# ----------------------------------------------------------------- script --
class ScriptAgent:
    """A heartbeat resource script or init script: `NAME args… start|stop|status`."""

    def __init__(self, resource: Resource, ctx: Context) -> None:
        self.resource = resource
        self._ctx = ctx

    def _path(self) -> Path | None:
        return scripts.locate(self.resource.agent, self._ctx.config_dir, self._ctx.io.init_dir)

    async def _call(self, path: Path, op: str, timeout_ms: int) -> RunResult:
        argv = [str(path), *self.resource.args, op]
        if op != "status":
            logger.info(f"Running {' '.join(argv)}")
        env = scripts.clean_env(self._ctx.config_dir, self._ctx.ha_env)
        return await self._ctx.io.run(argv, timeout_ms / 1000, env)

    async def start(self) -> Outcome:
        path = self._path()
        if path is None:
            return Outcome(False, f"Cannot locate resource script {self.resource.agent}")
        running, _ = await self._status(path)
        if running is True:  # heartbeat skips resources whose status says running
            return Outcome(True, "already running")
        timeout_ms = self._ctx.settings.script_timeout_ms
        result = await self._call(path, "start", timeout_ms)
        return Outcome(
            result.ok, result.describe(timeout_ms / 1000) if not result.ok else "started"
        )

    async def stop(self) -> Outcome:
        path = self._path()
        if path is None:  # nothing here could have started it
            return Outcome(True, f"Cannot locate resource script {self.resource.agent}")
        timeout_ms = self._ctx.settings.script_timeout_ms
        result = await self._call(path, "stop", timeout_ms)
        return Outcome(
            result.ok, result.describe(timeout_ms / 1000) if not result.ok else "stopped"
        )

    async def _status(self, path: Path) -> tuple[bool | None, str]:
        """(running, why); running is None when the status call itself failed."""
        timeout_ms = self._ctx.settings.status_timeout_ms
        result = await self._call(path, "status", timeout_ms)
        if result.error or result.timed_out:
            return None, f"status unknown: {result.describe(timeout_ms / 1000)}"
        verdict = scripts.judge_status(result.rc, result.stdout)
        if verdict.disagrees:
            self._ctx.disagreements.note(str(self.resource), path, verdict)
        return verdict.running, verdict.why

    async def status(self) -> tuple[bool, str]:
        path = self._path()
        if path is None:
            return False, f"Cannot locate resource script {self.resource.agent}"
        running, why = await self._status(path)
        # Unknown counts as running: it is then stopped, never assumed gone.
        return running is not False, why


# ---------------------------------------------------------------- systemd --
class SystemdAgent:
    """`systemd:UNIT`: systemctl start / stop / is-active."""

    def __init__(self, resource: Resource, ctx: Context) -> None:
        self.resource = resource
        self._ctx = ctx
        self.unit = scripts.systemd_unit(resource.agent) or ""
        self.error = ""
        if not scripts.valid_unit(self.unit):
            self.error = f"bad unit name [{self.unit}]"
        elif resource.args:
            self.error = "systemd units take no arguments"

    async def _call(self, op: str, timeout_ms: int) -> RunResult | str:
        path = self._ctx.io.systemctl()
        if path is None:
            return "systemctl not found"
        argv = scripts.systemctl_argv(path, op, self.unit)
        if op != "status":
            logger.info(f"Running {' '.join(argv)}")
        env = scripts.clean_env(self._ctx.config_dir, self._ctx.ha_env)
        return await self._ctx.io.run(argv, timeout_ms / 1000, env)

    async def start(self) -> Outcome:
        if self.error:
            return Outcome(False, self.error)
        timeout_ms = self._ctx.settings.script_timeout_ms
        result = await self._call("start", timeout_ms)
        if isinstance(result, str):
            return Outcome(False, result)
        return Outcome(
            result.ok, result.describe(timeout_ms / 1000) if not result.ok else "started"
        )

    async def stop(self) -> Outcome:
        if self.error:
            return Outcome(True, f"nothing to stop ({self.error})")
        timeout_ms = self._ctx.settings.script_timeout_ms
        result = await self._call("stop", timeout_ms)
        if isinstance(result, str):
            return Outcome(True, f"{result}; nothing to stop")
        return Outcome(
            result.ok, result.describe(timeout_ms / 1000) if not result.ok else "stopped"
        )

    async def status(self) -> tuple[bool, str]:
        if self.error:
            return False, self.error
        timeout_ms = self._ctx.settings.status_timeout_ms
        result = await self._call("status", timeout_ms)
        if isinstance(result, str):
            return False, result
        if result.error or result.timed_out:
            return True, f"status unknown: {result.describe(timeout_ms / 1000)}"
        if result.rc == 0:
            return True, f"{self.unit} active"
        return False, f"{self.unit} {last_word(result.stdout) or 'inactive'}"


def _outcome(result: RunResult, timeout_ms: int, done: str) -> Outcome:
    return Outcome(True, done) if result.ok else Outcome(False, result.describe(timeout_ms / 1000))


def last_word(text: str) -> str:
    words = text.split()
    return words[-1] if words else ""


def resolution(resource: Resource, ctx: Context) -> resolve.Resolution:
    return resolve.resolve(resource, ctx.config_dir, ctx.io.init_dir, ctx.io.ocf_root)


def make_agent(resource: Resource, ctx: Context, repeats: ScheduleRepeats) -> Agent:
    if resource.agent in ADDRESS_AGENTS:
        return AddressAgent(resource, ctx, repeats)
    if scripts.systemd_unit(resource.agent) is not None:
        return SystemdAgent(resource, ctx)
    found = resolution(resource, ctx)
    if found.kind is resolve.Kind.OCF:
        from hbmon.io.resources.ocf import OcfAgent  # ocf imports Context and Outcome from here

        return OcfAgent(resource, ctx, found.ocf, found.error)
    # A script of resource.d or init.d (ScriptAgent looks it up the same way), or none.
    return ScriptAgent(resource, ctx)
