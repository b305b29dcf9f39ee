"""This process's own start, stop and restart, for core/ownership.py (sans-IO).

    start     what our previous process handed over is adopted (core/handover.py
              `adopt`); any other group found running is stopped before we
              join (heartbeat's verifyallidle, made to act); the initial
              acquisition is said once complete (`settled`)
    stop      every group is released (`leave`); once none is busy, the last
              words are said (`farewell`) and the stage moves on to GONE
    restart   nothing new starts, what runs is kept for the next process
              (`hand_over`); once no group is starting or stopping the driver
              is asked to save the handover (`handover_ready`)

Ownership checks the stage table first, stands the guard and the exchange down,
and settles after each of these; this changes the group table, the batches and
the stage (core/stages.py) the way each of them needs.
"""

from __future__ import annotations

from hbmon.core.batches import Batches
from hbmon.core.events import (
    Effect,
    HandedOver,
    HandoverReady,
    KeepGroup,
    ResourceLog,
    Scope,
    StopReason,
    TakeoverReason,
)
from hbmon.core.facts import info
from hbmon.core.groups import GroupTable
from hbmon.core.handover import adopt
from hbmon.core.snapshot import HandoverView
from hbmon.core.stages import Handed, HandOver, Leave, Stage, StageEvent, StageInput, Stages

# The initial acquisition, logged once it is complete (heartbeat's names).
INITIAL_LABEL = {StageInput.PEERS_KNOWN: "T_RESOURCES(us)", StageInput.ALONE: "mach_down"}


class Lifecycle:
    """The groups across this process's start, stop and restart; `resumed` is what it
    adopted from its predecessor, `verifying` the groups found running being stopped."""

    def __init__(self, table: GroupTable, stages: Stages, batches: Batches) -> None:
        self._table = table
        self._stages = stages
        self._batches = batches
        self.verifying: set[str] = set()  # found running before we joined, being stopped
        self.resumed: HandoverView | None = None  # what our previous process handed over
        self._handover_asked = False  # HandoverReady is out (our own restart)
        self._gave_up = False  # our stop had groups to release
        self._initial_label: str | None = None  # the start's acquisition, until stable

    # -------------------------------------------------------------- start --
    def leftovers(self, keys: tuple[str, ...], now: float) -> list[Effect]:
        """Groups found running at start: stopped, unless our previous process handed
        them over (then they are ours, not leftovers)."""
        effects: list[Effect] = []
        resumed = self.resumed.keys if self.resumed is not None else ()
        for key in keys:
            if key in resumed:
                continue
            effects.append(ResourceLog("CRIT", f"Resource {key} is active, and should not be!"))
            if self._stages.state is Stage.JOINING and self._table.adopt(key, now):
                self.verifying.add(key)
                self._table.unwant(key, StopReason.VERIFY)
        return effects

    def fire(self, event: StageEvent) -> None:
        """A decision moves the stage; the start's acquisition is named by its event."""
        self._stages.fire(event)
        self._initial_label = INITIAL_LABEL.get(event.kind, self._initial_label)

    def settled(self) -> list[Effect]:
        """We became stable: the first time after the start's acquisition, it is said."""
        if self._initial_label is None:
            return []
        label, self._initial_label = self._initial_label, None
        return [
            info("local resource transition completed."),
            info(f"Initial resource acquisition complete ({label})"),
        ]

    def stopped(self, key: str) -> None:
        """A group's stop ended (well or not): it is no longer being verified."""
        self.verifying.discard(key)

    def adopt(self, ev: HandedOver, now: float) -> list[Effect]:
        """Adopt what our previous process handed over: kept as it runs, or started again
        if partly stopped; a group that lost an address is not resumed."""
        plan = adopt(ev.groups)
        kept = [k for k in plan.kept if self._table.resume(k, now)]
        restart = [k for k in plan.restart if self._table.get(k) is not None]
        for key in restart:
            self._table.want(key, TakeoverReason.HANDOVER)
        self.resumed = HandoverView(ev.generation, ev.gap_s, tuple(kept), tuple(restart))
        gap = f"{ev.gap_s * 1000:.0f} ms"
        effects: list[Effect] = [
            info(f"restart: resuming from generation {ev.generation} (handed over {gap} ago)")
        ]
        for key in kept:
            effects += [KeepGroup(key), info(f"restart: resource group {key} kept running")]
        for key in restart:
            text = f"restart: resource group {key} is partly stopped: starting it again"
            effects += [KeepGroup(key), ResourceLog("WARN", text)]
        for key in plan.lost:
            text = f"restart: resource group {key} lost an address meanwhile: not resumed"
            effects.append(ResourceLog("WARN", text))
        return effects

    # --------------------------------------------------------------- stop --
    def leave(self) -> list[Effect]:
        """Our graceful shutdown: every group is let go (LEAVING)."""
        effects: list[Effect] = []
        if self._table.busy():
            text = "Shutdown delayed until current resource activity finishes."
            effects.append(ResourceLog("WARN", text))
        if self._table.held() or self._table.busy():
            self._gave_up = True
            effects.append(info("Giving up all HA resources."))
        self._stages.fire(Leave())
        for g in self._table:
            self._table.unwant(g.key, StopReason.SHUTDOWN)
        self._batches.clear()
        return effects

    def farewell(self) -> list[Effect]:
        """Our shutdown released what it could: what is said of it."""
        if held := ", ".join(sorted(self._table.held())):
            text = f"Shutting down with resource groups whose stop failed: {held}"
            return [ResourceLog("CRIT", text)]
        if self._gave_up:
            return [info("All HA resources relinquished.")]
        return []

    # ------------------------------------------------------------ restart --
    def hand_over(self) -> list[Effect]:
        """Our restart: keep what runs for the next process (core/handover.py).

        Nothing new starts; groups wanted but not started are let go (the next
        process places them as at any start). What is starting or stopping
        finishes first: `handover_ready` says when.
        """
        effects: list[Effect] = []
        if self._table.busy():
            text = "Handover delayed until current resource activity finishes."
            effects.append(ResourceLog("WARN", text))
        self._stages.fire(HandOver())
        for g in self._table:
            if g.want and not g.held:
                self._table.unwant(g.key, StopReason.SHUTDOWN)
        self._batches.clear()
        return effects

    def handover_ready(self, claims: Scope, window_s: float) -> HandoverReady | None:
        """Once, when our restart may hand over: nothing is starting or stopping."""
        if self._stages.state is not Stage.HANDING_OVER or self._handover_asked:
            return None
        if self._table.busy():
            return None
        self._handover_asked = True
        keys = tuple(g.key for g in self._table if g.held)
        return HandoverReady(keys, claims, window_s)

    def handed(self) -> None:
        """The handover is saved: the groups are the next process's from here."""
        if self._stages.allows(StageInput.HANDED):
            self._stages.fire(Handed())
