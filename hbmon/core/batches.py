"""Acquisitions in flight: which groups were taken together, why, and since when.

Every group ownership starts belongs to a batch (reason, trigger time, the
peer it comes from). When a batch's last group has started or dropped out,
the batch is finished and `TakeoverComplete` measures trigger → last start.

`Batches` also counts the completed ones per reason and keeps the last.

A group whose split-brain probe found its address still in use leaves its
batch and waits here as *late*, keeping the batch's reason and peer; once a
later probe finds the address free it starts as a batch of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hbmon.core.events import TakeoverComplete, TakeoverReason
from hbmon.core.facts import Acquire
from hbmon.core.groups import GroupTable
from hbmon.core.snapshot import TakeoverView


@dataclass(slots=True)
class Batch:
    """Groups acquired for one reason at one instant."""

    reason: TakeoverReason
    trigger_at: float
    peer: str | None
    pending: set[str]
    started: list[str] = field(default_factory=list)
    mach_down: bool = False  # a takeover from a dead/leaving peer (heartbeat's mach_down)
    standby: bool = False  # our side of a standby exchange


class Batches:
    """The open batches, and the groups a probe held back from theirs."""

    __slots__ = ("_late", "_open", "_reported", "completed", "last")

    def __init__(self) -> None:
        self._open: list[Batch] = []
        self._late: dict[str, tuple[TakeoverReason, str | None, float]] = {}
        self._reported: set[str] = set()  # late groups whose block was reported
        self.completed = dict.fromkeys(TakeoverReason, 0)
        self.last: TakeoverView | None = None

    def __bool__(self) -> bool:
        return bool(self._open)

    def pending(self) -> bool:
        """Some batch still waits for a group to start."""
        return any(b.pending for b in self._open)

    def acquire(self, a: Acquire, table: GroupTable, now: float) -> None:
        """Want `a.keys` held here, as one batch (counted from `a.trigger_at` if given)."""
        for key in a.keys:
            table.want(
                key, a.reason, probe=a.probe, silent_since=a.silent_since, after_reset=a.after_reset
            )
        at = now if a.trigger_at is None else a.trigger_at
        self.open(Batch(a.reason, at, a.peer, set(a.keys), mach_down=a.mach_down))

    def open(self, batch: Batch) -> None:
        for key in batch.pending:
            self.drop(key)
        self._open.append(batch)

    def drop(self, key: str) -> None:
        """`key` no longer belongs to any batch (moot, failed, or released)."""
        for b in self._open:
            b.pending.discard(key)

    def started(self, keys: Iterable[str]) -> None:
        for key in keys:
            for b in self._open:
                if key in b.pending:
                    b.pending.discard(key)
                    b.started.append(key)

    def finish(self) -> list[Batch]:
        """Remove and return the batches with nothing left pending."""
        done = [b for b in self._open if not b.pending]
        self._open = [b for b in self._open if b.pending]
        return done

    def complete(self, b: Batch, now: float) -> TakeoverComplete:
        """A finished batch that started something: count it, keep it as the last."""
        keys = tuple(b.started)
        done = TakeoverComplete(b.reason, keys, now - b.trigger_at, b.peer)
        self.completed[b.reason] += 1
        self.last = TakeoverView(b.reason, keys, now, done.duration_s, b.peer)
        return done

    # ----------------------------------------------------------------- late --
    def block(self, key: str, now: float) -> bool:
        """A probe blocked `key`: it waits as late. True if this block is news to report."""
        for b in self._open:
            if key in b.pending:
                b.pending.discard(key)
                self._late[key] = (b.reason, b.peer, now)
        if key not in self._late or key in self._reported:
            return False
        self._reported.add(key)
        return True

    def is_late(self, key: str) -> bool:
        return key in self._late

    def late_since(self, key: str) -> float | None:
        """When a probe first held `key` back (None: it is not late)."""
        late = self._late.get(key)
        return None if late is None else late[2]

    def late_deadlines(self, wait: float | None) -> list[float]:
        """When each late group has waited `wait` (None: it never stops waiting)."""
        if wait is None:
            return []
        return [since + wait for _, _, since in self._late.values()]

    def late_from(self, key: str) -> str | None:
        late = self._late.get(key)
        return None if late is None else late[1]

    def resume(self, key: str, now: float, reason: TakeoverReason | None = None) -> Batch | None:
        """A later probe found `key` free (or `reason` overrides the guard): it starts
        as a batch of its own, counted from when it was first held back."""
        late = self._late.pop(key, None)
        self._reported.discard(key)
        if late is None:
            return None
        was, peer, since = late
        at = now if reason is None else since
        batch = Batch(reason or was, at, peer, {key}, mach_down=peer is not None)
        self._open.append(batch)
        return batch

    def forget(self, key: str) -> None:
        """`key` is no longer wanted: neither pending nor late."""
        self.drop(key)
        self._late.pop(key, None)
        self._reported.discard(key)

    def clear(self) -> None:
        self._open.clear()
        self._late.clear()
        self._reported.clear()
