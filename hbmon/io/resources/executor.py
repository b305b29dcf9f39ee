"""The group runner: start left→right, stop right→left, never raise (spec §3.2).

- `start_group`: each resource in order; on the first failure the resources
  already started and the failed one are stopped again, right to left, and
  the outcome names the resource (`CRIT: Giving up resources due to failure
  of …`). Deciding where the group goes next is the core's job.
- `stop_group`: right to left; a failed stop is retried with doubling
  backoff (`ResourceSettings.stop_retries`); a stop that fails but whose
  status then says stopped counts as done (heartbeat: "probably not
  LSB-compliant"). Never a reboot: a stop still failing is `ok=False`.
- Gratuitous ARP / NA: the first announcement is sent before `start_group`
  returns; the repeats run in background tasks this executor owns, cancelled
  when the group is stopped or the executor closed.
- Operations on one group are serialised; different groups run freely.
- A restart's handover (hbmon/core/handover.py): `survey` says what of a group
  still runs, `hand_over` makes its addresses expire after the window (the
  kernel removes them then), `keep` makes them permanent again.
- Which way each resource resolves (a script, heartbeat's classic agent run
  as its OCF agent, an init script, …, resolve.py) is logged once, for every
  resource at construction: a resource that cannot be found is an error in
  the log then, and a failed start at takeover, as in heartbeat. The agent
  still starts: the script may be installed later, and refusing to run would
  take away failover for every other group (`hbmon config check` refuses).

Every operation becomes an `OpRecord` (for metrics), passed to `observe` as
it completes and returned in the `GroupOutcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from hbmon.config.model import DEFAULT_CONFIG_DIR, Config, Resource, ResourceGroup
from hbmon.core.events import GroupSurvey
from hbmon.io.resources.addresses import IPAddress
from hbmon.io.resources.agents import (
    NOT_PROBED,
    AddressAgent,
    Agent,
    Context,
    Outcome,
    ResourceIO,
    make_agent,
    resolution,
    system_io,
)
from hbmon.io.resources.resolve import Kind
from hbmon.io.resources.scripts import StatusDisagreements


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One resource operation, for metrics."""

    resource: str
    op: str  # start | stop | probe
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    ok: bool
    detail: str
    records: tuple[OpRecord, ...]


def _unexpected(exc: Exception) -> str:
    return f"unexpected error: {type(exc).__name__}: {exc}"


class ResourceExecutor:
    def __init__(
        self,
        config: Config,
        *,
        config_dir: Path | None,
        observe: Callable[[OpRecord], None] | None = None,
        io: ResourceIO | None = None,
        on_status_disagreement: Callable[[str], None] | None = None,
    ) -> None:
        """`config_dir` holds `resource.d/` (None: heartbeat's /etc/ha.d);
        `on_status_disagreement(resource)` counts a status call whose exit code and
        words disagree (scripts.StatusDisagreements)."""
        self._config = config
        self._config_dir = config_dir if config_dir is not None else DEFAULT_CONFIG_DIR
        self._observe = observe
        self._io = io if io is not None else system_io()
        self._locks: dict[str, asyncio.Lock] = {}
        self._garp: dict[str, set[asyncio.Task[None]]] = {}
        self._disagreements = StatusDisagreements(on_status_disagreement)
        self._resolved: dict[str, str] = {}  # resource -> how it resolved, as last logged
        self._note_all()

    # ------------------------------------------------------------ public --
    def reconfigure(self, config: Config) -> None:
        self._config = config
        self._note_all()

    async def start_group(self, group: ResourceGroup) -> GroupOutcome:
        async with self._lock(group):
            records: list[OpRecord] = []
            started: list[Agent] = []
            for resource in group.resources:
                agent = self._agent(group, resource)
                rec = await self._timed(agent, "start", self._start(agent))
                records.append(rec)
                if rec.ok:
                    started.append(agent)
                    continue
                logger.critical(f"Giving up resources due to failure of {resource}")
                self._cancel_garp(group.key)
                undone = [await self._stop_retrying(a) for a in reversed([*started, agent])]
                records.extend(undone)
                detail = f"{resource}: {rec.detail}"
                stuck = [r.resource for r in undone if not r.ok]
                if stuck:
                    detail += f"; stop also failed for {', '.join(stuck)}"
                return GroupOutcome(False, detail, tuple(records))
            return GroupOutcome(True, f"{len(started)} resource(s) started", tuple(records))

    async def stop_group(self, group: ResourceGroup) -> GroupOutcome:
        async with self._lock(group):
            self._cancel_garp(group.key)
            records = [
                await self._stop_retrying(self._agent(group, r)) for r in reversed(group.resources)
            ]
            failed = [r for r in records if not r.ok]
            if failed:
                detail = "; ".join(f"{r.resource}: {r.detail}" for r in failed)
                return GroupOutcome(False, detail, tuple(records))
            return GroupOutcome(True, f"{len(records)} resource(s) stopped", tuple(records))

    async def active(self, group: ResourceGroup) -> bool:
        """Is any resource of the group running here? (the start-up scan, heartbeat's
        verifyallidle) Each status is judged as for a start (scripts.judge_status), so
        a script that says `stopped` with exit 0 is idle here, as heartbeat reads it."""
        for resource in group.resources:
            agent = self._agent(group, resource)
            try:
                running, why = await agent.status()
            except Exception as exc:
                logger.opt(exception=exc).error(f"{resource}: status: {_unexpected(exc)}")
                running, why = True, _unexpected(exc)  # unknown: treat as running
            if running:
                logger.info(f"Resource {resource} is active here: {why}")
                return True
        return False

    async def survey(self, group: ResourceGroup) -> GroupSurvey:
        """What of a group our previous process handed over still runs here: are its
        addresses up, and does every resource's status say running?"""
        addresses_up, all_running, any_running = True, True, False
        for resource in group.resources:
            agent = self._agent(group, resource)
            try:
                running, why = await agent.status()
            except Exception as exc:
                logger.opt(exception=exc).error(f"{resource}: status: {_unexpected(exc)}")
                running, why = False, _unexpected(exc)  # unknown: not adopted as running
            logger.info(f"Resource {resource} is {'running' if running else 'stopped'}: {why}")
            if isinstance(agent, AddressAgent) and not running:
                addresses_up = False
            all_running = all_running and running
            any_running = any_running or running
        return GroupSurvey(group.key, addresses_up, all_running, any_running)

    async def hand_over(self, group: ResourceGroup, lifetime_s: int) -> tuple[bool, str]:
        """Our restart: the group's addresses expire after `lifetime_s` unless the next
        process keeps them. (ok, details)"""
        return await self._set_lifetimes(group, lifetime_s)

    async def keep(self, group: ResourceGroup) -> tuple[bool, str]:
        """A group handed over by our previous process is ours: its addresses stay."""
        return await self._set_lifetimes(group, None)

    async def _set_lifetimes(self, group: ResourceGroup, seconds: int | None) -> tuple[bool, str]:
        async with self._lock(group):
            outcomes = []
            for resource in group.resources:
                agent = self._agent(group, resource)
                if isinstance(agent, AddressAgent):
                    outcomes.append(await agent.set_lifetime(seconds))
        failed = [o.detail for o in outcomes if not o.ok]
        if failed:
            return False, "; ".join(failed)
        return True, "; ".join(o.detail for o in outcomes) or "no addresses"

    async def probe_group(self, group: ResourceGroup, window_s: float) -> tuple[bool, str]:
        """(in_use, detail): does another host answer for one of the group's addresses?
        Each is probed for `window_s` (the core sizes it to the link).

        A probe that cannot run (no interface, no route) does not block: the
        takeover itself then fails or succeeds on its own terms.
        """
        agents = [
            a for r in group.resources if isinstance(a := self._agent(group, r), AddressAgent)
        ]
        if not agents:
            return False, "no addresses to probe"
        in_use: dict[int, bool] = {}

        async def one(i: int, agent: AddressAgent) -> Outcome:
            busy, detail = await agent.probe(window_s)
            in_use[i] = busy
            return Outcome(not detail.startswith(NOT_PROBED), detail)

        records = await asyncio.gather(
            *(self._timed(a, "probe", one(i, a)) for i, a in enumerate(agents))
        )
        busy = [r.detail for i, r in enumerate(records) if in_use.get(i)]
        if busy:
            return True, "; ".join(busy)
        return False, "; ".join(r.detail for r in records)

    async def announce_group(self, group: ResourceGroup) -> None:
        """Announce the group's addresses again (after dual ownership ended here)."""
        agents = [
            a for r in group.resources if isinstance(a := self._agent(group, r), AddressAgent)
        ]
        await asyncio.gather(*(self._timed(a, "announce", a.announce()) for a in agents))

    async def close(self) -> None:
        """Cancel every background announcement."""
        tasks = [t for ts in self._garp.values() for t in ts]
        self._garp.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    # ----------------------------------------------------------- helpers --
    def _lock(self, group: ResourceGroup) -> asyncio.Lock:
        return self._locks.setdefault(group.key, asyncio.Lock())

    def _context(self) -> Context:
        return Context(
            self._io,
            self._config.hbmon.resources,
            self._config_dir,
            self._disagreements,
            self._config.env,
        )

    def _note_all(self) -> None:
        for group in self._config.resources:
            for resource in group.resources:
                self._note(resource)

    def _note(self, resource: Resource) -> None:
        """Log how `resource` resolves, once, and again only when that changes."""
        found = resolution(resource, self._context())
        text = found.describe()
        if self._resolved.get(str(resource)) == text:
            return
        self._resolved[str(resource)] = text
        if found.kind is Kind.MISSING or found.error:
            logger.error(f"Resource {resource}: {text}")
        else:
            logger.info(f"Resource {resource}: {text}")

    def _agent(self, group: ResourceGroup, resource: Resource) -> Agent:
        self._note(resource)

        def repeats(iface: str, ip: IPAddress, count: int, interval: float, first: float) -> None:
            self._schedule_garp(group.key, str(resource), iface, ip, count, interval, first)

        return make_agent(resource, self._context(), repeats)

    async def _start(self, agent: Agent) -> Outcome:
        return await agent.start()

    async def _timed(self, agent: Agent, op: str, work: Awaitable[Outcome]) -> OpRecord:
        """Await `work`; never raise; record and observe."""
        t0 = time.monotonic()
        try:
            outcome = await work
        except Exception as exc:
            logger.opt(exception=exc).error(f"{agent.resource}: {op}: {_unexpected(exc)}")
            outcome = Outcome(False, _unexpected(exc))
        rec = OpRecord(str(agent.resource), op, outcome.ok, time.monotonic() - t0, outcome.detail)
        if not rec.ok:
            logger.error(f"{rec.resource}: {op} failed: {rec.detail}")
        self._emit(rec)
        return rec

    def _emit(self, rec: OpRecord) -> None:
        if self._observe is None:
            return
        try:
            self._observe(rec)
        except Exception as exc:
            logger.opt(exception=exc).error(f"resource observer failed: {exc}")

    async def _stop_retrying(self, agent: Agent) -> OpRecord:
        return await self._timed(agent, "stop", self._stop(agent))

    async def _stop(self, agent: Agent) -> Outcome:
        settings = self._config.hbmon.resources
        delay = settings.stop_retry_backoff_ms / 1000
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await agent.stop()
            except Exception as exc:
                logger.opt(exception=exc).error(f"{agent.resource}: stop: {_unexpected(exc)}")
                outcome = Outcome(False, _unexpected(exc))
            if outcome.ok:
                if attempt > 1:
                    return Outcome(True, f"{outcome.detail} (attempt {attempt})")
                return outcome
            try:
                running, why = await agent.status()
            except Exception as exc:
                running, why = True, _unexpected(exc)
            if not running:
                logger.warning(
                    f"{agent.resource}: stop failed ({outcome.detail}) but status says stopped:"
                    " probably not LSB-compliant"
                )
                return Outcome(True, f"{outcome.detail}; status says stopped ({why})")
            if attempt > settings.stop_retries:
                logger.critical(
                    f"Resource STOP failure: {agent.resource} still running after"
                    f" {attempt} attempts: {outcome.detail}"
                )
                tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
                return Outcome(False, f"{outcome.detail} (after {tries})")
            logger.warning(
                f"{agent.resource}: stop failed ({outcome.detail}); retry in {delay:g} s"
            )
            await self._io.sleep(delay)
            delay *= 2

    # -------------------------------------------------------------- GARP --
    def _schedule_garp(
        self,
        key: str,
        resource: str,
        iface: str,
        ip: IPAddress,
        count: int,
        interval: float,
        first: float,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._repeat_garp(resource, iface, ip, count, interval, first),
            name=f"garp {ip} {iface}",
        )
        tasks = self._garp.setdefault(key, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _repeat_garp(
        self, resource: str, iface: str, ip: IPAddress, count: int, interval: float, first: float
    ) -> None:
        """`count` more announcements, `interval` apart, counted from the `first` one."""
        loop = asyncio.get_running_loop()
        failures = 0
        for n in range(1, count + 1):
            await self._io.sleep(max(0.0, first + n * interval - loop.time()))
            try:
                await self._io.announce(iface, ip)
            except Exception as exc:  # a background task: nobody else would see it
                failures += 1
                if failures == 1:
                    logger.warning(f"{resource}: repeating announcement of {ip}: {exc}")
        logger.debug(f"{resource}: {count + 1 - failures} announcement(s) of {ip} on {iface}")

    def _cancel_garp(self, key: str) -> None:
        for task in self._garp.pop(key, set()):
            task.cancel()
