"""Resource groups as this node holds them: one small state machine per group.

The ownership layer says which groups it wants held, and why; the table moves
each group toward that, one operation at a time, and reports what happened:

    RELEASED --start--> STARTING --ok--> HELD --stop--> STOPPING --ok--> RELEASED
                          |                               |
                          +--failed--> FAILED <--failed---+

A wanted group may first be probed (ProbeGroup, split-brain guard): an address
that still answers blocks the start, and it is probed again `retry_s` later.
FAILED waits out a backoff (doubling per consecutive failure) before this node
tries the group again; a group whose STOP failed still counts as held here.
Starts go in file order, stops right to left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from hbmon.config.model import GROUP_BACKOFF_INITIAL_MS, GROUP_BACKOFF_MAX_MS, ResourceGroup
from hbmon.core.events import (
    Effect,
    GroupDone,
    GroupOp,
    GroupReason,
    GroupState,
    GroupTransition,
    ProbeDone,
    ProbeGroup,
    ResourceLog,
    StartGroup,
    StopGroup,
    StopReason,
    TakeoverReason,
)
from hbmon.core.machine import Table
from hbmon.core.snapshot import GroupView


class Trigger(StrEnum):
    """What moves a group: an operation begun, or the executor's answer to it."""

    START = "start"
    START_OK = "start_ok"
    START_FAILED = "start_failed"
    STOP = "stop"
    STOP_OK = "stop_ok"
    STOP_FAILED = "stop_failed"


S = GroupState
T = Trigger
TRANSITIONS: dict[tuple[GroupState, Trigger], GroupState] = {
    (S.RELEASED, T.START): S.STARTING,
    (S.FAILED, T.START): S.STARTING,
    (S.STARTING, T.START_OK): S.HELD,
    (S.STARTING, T.START_FAILED): S.FAILED,
    (S.HELD, T.STOP): S.STOPPING,
    (S.FAILED, T.STOP): S.STOPPING,
    (S.STOPPING, T.STOP_OK): S.RELEASED,
    (S.STOPPING, T.STOP_FAILED): S.FAILED,
}
TABLE = Table("resource group", GroupState.RELEASED, TRANSITIONS)


class Outcome(StrEnum):
    """What an executor's answer meant, for ownership to act on."""

    STARTED = "started"
    START_FAILED = "start_failed"
    STOPPED = "stopped"
    STOP_FAILED = "stop_failed"
    BLOCKED = "blocked"  # the probe found the address in use
    CLEAR = "clear"  # the probe found it free


class EarlyProbe(StrEnum):
    """An early probe's state: sent, or what it found."""

    OUT = "out"
    CLEAR = "clear"
    IN_USE = "in use"


def backoff_s(streak: int) -> float:
    """Backoff after `streak` consecutive failures: 10 s, 20 s, … capped at 5 min."""
    ms: int = GROUP_BACKOFF_INITIAL_MS << max(0, min(streak - 1, 30))
    return min(ms, GROUP_BACKOFF_MAX_MS) / 1000


@dataclass(slots=True)
class Group:
    """One group as this node holds it, and what ownership wants of it."""

    key: str
    preferred: str
    index: int
    state: GroupState = GroupState.RELEASED
    # Why ownership wants it held here (None: it does not), and why it last let it go.
    start_reason: TakeoverReason | None = None
    stop_reason: StopReason | None = None
    probe: bool = False  # probe before the next start
    after_reset: bool = False  # its start waits for a reset still to come (`reset_done`)
    probing: bool = False  # a ProbeGroup is out
    blocked: bool = False  # the last probe found the address in use
    retry_at: float | None = None  # end of backoff (FAILED) or next probe (blocked)
    failed_op: GroupOp | None = None
    streak: int = 0  # consecutive failures
    start_failures: int = 0
    stop_failures: int = 0
    last_change_at: float | None = None
    removed: bool = False  # gone from the config; dropped once released
    # An early probe, run while a peer was overdue but not yet dead: `early_since`
    # is that peer's last beat (the silence it probed in), `early` its result.
    early_since: float | None = None
    early: EarlyProbe | None = None

    @property
    def want(self) -> bool:
        """Ownership wants it held here."""
        return self.start_reason is not None

    @property
    def busy(self) -> bool:
        return self.state in (GroupState.STARTING, GroupState.STOPPING) or self.probing

    @property
    def held(self) -> bool:
        """Running here as far as anyone can tell (a failed stop counts as running)."""
        if self.state is GroupState.FAILED:
            return self.failed_op is GroupOp.STOP
        return self.state is not GroupState.RELEASED

    @property
    def claimed(self) -> bool:
        """Held, or about to be started here (what we tell the peer we hold)."""
        return self.held or (self.want and not self.blocked)

    def in_backoff(self, now: float) -> bool:
        return self.state is GroupState.FAILED and self.retry_at is not None and self.retry_at > now


class GroupTable:
    """Every configured group (and removed ones still held), moved one operation at a time."""

    def __init__(
        self, groups: tuple[ResourceGroup, ...], gate: Callable[[str, float], bool] | None = None
    ) -> None:
        self._groups: dict[str, Group] = {}
        # The arbitrator's word before any start (core/arbitration.py may_start).
        self._gate = gate
        self.configure(groups)

    # ------------------------------------------------------------- config --
    def configure(self, groups: tuple[ResourceGroup, ...]) -> list[str]:
        """(Re)configure; returns keys that left the config while still held here."""
        old = self._groups
        new: dict[str, Group] = {}
        for i, rg in enumerate(groups):
            g = old.get(rg.key) or Group(rg.key, rg.node, i)
            g.preferred, g.index, g.removed = rg.node, i, False
            new[rg.key] = g
        leftover = []
        for key, g in old.items():
            if key not in new and (g.held or g.busy):
                g.removed = True
                g.index = len(groups) + g.index
                new[key] = g
                leftover.append(key)
        self._groups = new
        # Only a configuration changes it; every beat asks.
        self._preferred = MappingProxyType({g.key: g.preferred for g in self.configured()})
        return leftover

    # ------------------------------------------------------------ queries --
    def __iter__(self) -> Iterator[Group]:
        return iter(sorted(self._groups.values(), key=lambda g: g.index))

    def get(self, key: str) -> Group | None:
        return self._groups.get(key)

    def configured(self) -> list[Group]:
        return [g for g in self if not g.removed]

    def preferred(self) -> Mapping[str, str]:
        return self._preferred

    def busy(self) -> bool:
        return any(g.busy for g in self._groups.values())

    def claimed(self) -> frozenset[str]:
        return frozenset(k for k, g in self._groups.items() if g.claimed)

    def held(self) -> frozenset[str]:
        return frozenset(k for k, g in self._groups.items() if g.held)

    def steady(self) -> frozenset[str]:
        """Held and not being released: what we report as held. A group whose stop is
        under way is on its way out; counting it as held would make the peer yield a
        group to a node that is giving it up (verifyallidle after a crash)."""
        return frozenset(
            k for k, g in self._groups.items() if g.held and g.state is not GroupState.STOPPING
        )

    def pending(self) -> frozenset[str]:
        return frozenset(k for k, g in self._groups.items() if g.claimed and not g.held)

    def failed(self, now: float) -> frozenset[str]:
        return frozenset(k for k, g in self._groups.items() if g.in_backoff(now))

    def next_deadline(self) -> float | None:
        ds = [g.retry_at for g in self._groups.values() if g.retry_at is not None]
        return min(ds, default=None)

    # ------------------------------------------------------------- wishes --
    def adopt(self, key: str, now: float) -> bool:
        """A group found running before we joined: held here, and not wanted."""
        g = self._groups.get(key)
        if g is None or g.state is not GroupState.RELEASED:
            return False
        g.state, g.last_change_at = GroupState.HELD, now
        g.start_reason, g.stop_reason = None, StopReason.VERIFY
        return True

    def resume(self, key: str, now: float) -> bool:
        """A group our previous process handed over, found running: held and wanted
        here, as if we had started it (nothing is run)."""
        g = self._groups.get(key)
        if g is None or g.removed or g.state is not GroupState.RELEASED:
            return False
        g.state, g.last_change_at = GroupState.HELD, now
        g.start_reason, g.stop_reason = TakeoverReason.HANDOVER, None
        return True

    def want(
        self,
        key: str,
        reason: TakeoverReason,
        *,
        probe: bool = False,
        silent_since: float | None = None,
        after_reset: bool = False,
    ) -> None:
        """Start `key` here; `probe` first unless an early probe already covers it.

        An early probe covers the start when it ran in the same silence of the
        same peer (`silent_since` is that peer's last beat): it then saw what a
        probe after the dead declaration would see, only sooner. One still out is
        adopted instead of sending a second. `after_reset`: not before `reset_done`.
        """
        g = self._groups[key]
        g.start_reason, g.stop_reason = reason, None
        if g.held:
            return
        g.probe, g.after_reset = probe, after_reset
        if not probe or silent_since is None or g.early_since != silent_since:
            return
        if g.early is EarlyProbe.CLEAR and not g.probing:
            g.probe = False
        elif g.early is EarlyProbe.OUT:
            g.probing = True

    def probe_early(self, silent_since: float, window_s: float) -> list[Effect]:
        """Probe every group that a takeover from a silent peer would start here."""
        effects: list[Effect] = []
        for g in self:
            if g.held or g.busy or g.removed or g.early_since == silent_since:
                continue
            g.early_since, g.early = silent_since, EarlyProbe.OUT
            effects.append(ProbeGroup(g.key, window_s))
        return effects

    def force(self, key: str, reason: TakeoverReason) -> None:
        """Start `key` without the probe (a probe still out is ignored when it answers)."""
        g = self._groups[key]
        g.start_reason = reason
        g.probe = g.blocked = g.probing = False
        g.retry_at = None

    def unwant(self, key: str, reason: StopReason) -> None:
        g = self._groups[key]
        if g.want or g.held:
            g.stop_reason = reason
        g.start_reason, g.probe, g.blocked, g.after_reset = None, False, False, False
        if g.state is not GroupState.FAILED:
            g.retry_at = None

    def reset_done(self) -> None:
        """The resets the groups waited for are done: they may start."""
        for g in self._groups.values():
            g.after_reset = False

    def awaiting_reset(self) -> list[str]:
        """Groups wanted here whose start waits for a reset."""
        return [g.key for g in self if g.after_reset and g.want]

    # ---------------------------------------------------------------- run --
    def step(self, now: float, probe_window_s: float) -> list[Effect]:
        """Start or stop whatever differs from the wish and is free to move (a start
        that must be probed first gets a probe of `probe_window_s`)."""
        effects: list[Effect] = []
        for g in self:
            start = g.start_reason
            if start is None or g.busy or g.state not in (GroupState.RELEASED, GroupState.FAILED):
                continue
            if g.retry_at is not None and g.retry_at > now:
                continue  # backing off, or waiting to probe again
            if g.after_reset:
                continue  # a dead node that may hold it is reset first (core/guard.py)
            if g.probe:
                g.probing = True
                effects.append(ProbeGroup(g.key, probe_window_s))
                continue
            if self._gate is not None and not self._gate(g.key, now):
                continue  # its key in etcd is not ours yet
            effects.append(self._move(g, T.START, start, now))
            effects.append(StartGroup(g.key, start))
        for g in reversed(list(self)):
            # Held and not wanted: `unwant` (or `adopt`) said why.
            stop = g.stop_reason
            if g.want or g.busy or not g.held or stop is None:
                continue
            if g.in_backoff(now):
                continue
            effects.append(self._move(g, T.STOP, stop, now))
            effects.append(StopGroup(g.key, stop))
        return effects

    def done(self, ev: GroupDone, now: float) -> tuple[list[Effect], Outcome | None]:
        """The executor's answer: the transition (and, for a failure, a CRIT log line)."""
        g = self._groups.get(ev.key)
        expected = GroupState.STARTING if ev.op is GroupOp.START else GroupState.STOPPING
        if g is None or g.state is not expected:
            return [], None  # stray or duplicate answer
        why: GroupReason | None = g.start_reason if ev.op is GroupOp.START else g.stop_reason
        if ev.ok:
            g.streak, g.failed_op, g.retry_at = 0, None, None
            if ev.op is GroupOp.START:
                return [self._move(g, T.START_OK, why, now)], Outcome.STARTED
            effect = self._move(g, T.STOP_OK, why, now)
            if g.removed:
                del self._groups[g.key]
            return [effect], Outcome.STOPPED
        g.streak += 1
        g.failed_op = ev.op
        wait = backoff_s(g.streak)
        g.retry_at = now + wait
        detail = f" ({ev.detail})" if ev.detail else ""
        if ev.op is GroupOp.START:
            g.start_failures += 1
            g.start_reason, g.probe = None, False  # handed on; tried here only after backoff
            text = (
                f"Giving up resource group {g.key}: start failed{detail}; "
                f"not tried here again for {wait:g} s"
            )
            moved = self._move(g, T.START_FAILED, why, now, ev.detail)
            return [moved, ResourceLog("CRIT", text)], Outcome.START_FAILED
        g.stop_failures += 1
        text = (
            f"Resource group {g.key}: stop failed{detail}; "
            f"it counts as held here, stop retried in {wait:g} s"
        )
        return [
            self._move(g, T.STOP_FAILED, why, now, ev.detail),
            ResourceLog("CRIT", text),
        ], Outcome.STOP_FAILED

    def probed(self, ev: ProbeDone, now: float, retry_s: float) -> Outcome | None:
        g = self._groups.get(ev.key)
        if g is None:
            return None
        if g.early is EarlyProbe.OUT:
            g.early = EarlyProbe.IN_USE if ev.in_use else EarlyProbe.CLEAR
        if not g.probing:
            return None
        g.probing = False
        if not g.want:
            return None
        if ev.in_use:
            g.blocked, g.retry_at = True, now + retry_s
            return Outcome.BLOCKED
        g.probe, g.blocked, g.retry_at = False, False, None
        return Outcome.CLEAR

    @staticmethod
    def _move(
        g: Group, trigger: Trigger, reason: GroupReason | None, now: float, detail: str = ""
    ) -> GroupTransition:
        new = TABLE.next(g.state, trigger)
        old, g.state, g.last_change_at = g.state, new, now
        return GroupTransition(g.key, old, new, reason, detail)

    # -------------------------------------------------------------- views --
    def views(self, me: str, elsewhere: Mapping[str, list[str]]) -> tuple[GroupView, ...]:
        """`elsewhere`: group -> the live peers that say they hold it, in peer order."""
        return tuple(
            GroupView(
                key=g.key,
                preferred=g.preferred,
                role="local" if g.preferred == me else "foreign",
                state=g.state,
                holder=me if g.held else next(iter(elsewhere.get(g.key, ())), None),
                last_change_at=g.last_change_at,
                start_failures=g.start_failures,
                stop_failures=g.stop_failures,
                held_elsewhere=tuple(sorted(elsewhere.get(g.key, ()))),
            )
            for g in self
        )
