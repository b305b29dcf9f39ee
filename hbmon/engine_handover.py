"""The restart handover's I/O at both ends, for hbmon/engine.py (core/handover.py decides).

The old process (`save`): the held groups' addresses are set to expire after the
window, the dead man's switch if no next process comes, then the record is
written and the core hears how it went. The new process (`take`): the record is
read and judged, the groups it names are surveyed and handed to the core; the
core's `KeepGroup`s make the adopted groups' addresses permanent again (`keep`),
and once they have (`kept`) the record is spent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from loguru import logger

from hbmon.config.model import Config, ResourceGroup
from hbmon.core.events import Event, GroupSurvey, HandedOver, HandoverReady, HandoverSaved
from hbmon.core.handover import HandoverRecord, Verdict, judge
from hbmon.io.ports import EngineIO


class HandoverDriver:
    """Runs the handover's I/O on the engine's loop; every answer goes to `handle`.

    `config` gives the engine's current configuration (a reload replaces it).
    """

    def __init__(
        self,
        io: EngineIO,
        generation: int,
        config: Callable[[], Config],
        handle: Callable[[Event], None],
    ) -> None:
        self._io = io
        self._generation = generation
        self._config = config
        self._handle = handle
        self._keeping: list[asyncio.Task[bool]] = []  # KeepGroup at start

    def _group(self, key: str) -> ResourceGroup | None:
        return next((g for g in self._config().resources if g.key == key), None)

    # ------------------------------------------------------- the new process --
    async def take(self, now: float) -> dict[str, GroupSurvey]:
        """Read our previous process's record; if it may be used, survey the groups it
        names and let the core adopt them. The surveys, by group."""
        config = self._config()
        store = self._io.handover
        record = store.load()
        if record is None:
            return {}
        verdict = judge(record, node=config.node, boot_id=store.boot_id(), now=now)
        if verdict is not Verdict.USABLE:
            logger.warning(
                "Handover record of generation {} not used: {}; starting afresh.",
                record.generation,
                verdict.value,
            )
            store.discard()
            return {}
        groups = [g for g in config.resources if g.key in record.groups]
        gone = sorted(set(record.groups) - {g.key for g in groups})
        if gone:
            logger.warning(
                "Handed-over groups no longer configured (their addresses expire): {}",
                ", ".join(gone),
            )
        surveys = {g.key: await self._io.resources.survey(g) for g in groups}
        gap = asyncio.get_running_loop().time() - record.at
        self._handle(HandedOver(record.generation, gap, record.claims, tuple(surveys.values())))
        return surveys

    def keep(self, key: str) -> None:
        """The core's `KeepGroup`: make the group's addresses permanent again."""
        self._keeping.append(asyncio.get_running_loop().create_task(self._keep(key)))

    async def kept(self) -> None:
        """The adopted groups' addresses are permanent again: the record is spent."""
        if not self._keeping:
            self._io.handover.discard()
            return
        results = await asyncio.gather(*self._keeping)
        self._keeping.clear()
        self._io.handover.discard()
        if not all(results):
            logger.critical("Some handed-over addresses still expire: see above.")

    async def _keep(self, key: str) -> bool:
        group = self._group(key)
        if group is None:
            return True
        ok, detail = await self._io.resources.keep(group)
        if not ok:
            logger.critical("Cannot keep the addresses of {}: {}", key, detail)
        return ok

    # ------------------------------------------------------- the old process --
    async def save(self, ready: HandoverReady) -> None:
        """Our restart's I/O: the addresses expire after the window unless the next
        process keeps them (the dead man's switch), then the record. The core is
        told how it went; on failure it releases the groups as for a stop."""
        store = self._io.handover
        record = HandoverRecord(
            node=self._config().node,
            generation=self._generation,
            groups=ready.keys,
            claims=ready.claims,
            at=asyncio.get_running_loop().time(),  # before the expiry starts: ends no later
            window_s=ready.window_s,
            boot_id=store.boot_id(),
            wall=self._io.wall(),
        )
        failure: str | None = None
        try:
            failure = await self._arm_expiry(ready.keys, math.ceil(ready.window_s))
            if failure is None:
                store.save(record)
        except Exception as exc:  # whatever went wrong, the core must hear of it
            failure = str(exc)
        if failure is not None:
            store.discard()
        self._handle(HandoverSaved(failure is None, failure or ""))

    async def _arm_expiry(self, keys: tuple[str, ...], lifetime_s: int) -> str | None:
        """The groups' addresses expire after `lifetime_s`: None, or what failed."""
        for key in keys:
            group = self._group(key)
            if group is None:
                continue
            ok, detail = await self._io.resources.hand_over(group, lifetime_s)
            if not ok:
                return f"{key}: {detail}"
        return None
