"""Per-peer generation and sequence verdicts (spec §4.3, §4.6.10).

One `SeqTracker` per peer answers, for each sequenced message, what it is:

    Fresh      seq above everything seen (or the first, or a new generation)
    Filled     a seq that was missing arrived late: reordering, not loss
    Duplicate  a seq already delivered, arriving for the first time on this iface
               (the same message over a second medium)
    Replay     anything else: an older generation, or a seq this iface already
               delivered, or an old seq that was never missing

Missing seqs are remembered with the time they went missing; `expire()` turns
those still absent after the grace period into lost packets. Nothing here reads
a clock: every call takes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Largest gap that is tracked seq by seq; a larger one resets tracking (heartbeat's 250).
MAX_GAP = 250
# How far below the highest seq per-iface delivery is remembered.
WINDOW = MAX_GAP
# Upper bound on remembered missing seqs; beyond it the oldest count as lost at once.
MAX_MISSING = 4 * MAX_GAP


@dataclass(frozen=True, slots=True)
class Fresh:
    """A seq above the highest seen. `missing`: seqs newly found missing below it.

    `lost`: seqs written off at once (a gap over MAX_GAP, a generation change, or
    overflow of the missing list). `restarted_from`: the previous generation when
    this message starts a new one. `previous`: the highest seq before this one.
    """

    seq: int
    previous: int | None
    missing: int = 0
    lost: int = 0
    restarted_from: int | None = None
    reset: bool = False  # tracking restarted because the gap was too large


@dataclass(frozen=True, slots=True)
class Filled:
    seq: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    seq: int


@dataclass(frozen=True, slots=True)
class Replay:
    seq: int
    detail: str


Verdict = Fresh | Filled | Duplicate | Replay


class SeqTracker:
    """Generation + seq state of one sender."""

    __slots__ = ("_missing", "_seen", "generation", "last", "node")

    def __init__(self, node: str) -> None:
        self.node = node
        self.generation: int | None = None
        self.last: int | None = None
        # seq -> time it went missing; insertion order is time order.
        self._missing: dict[int, float] = {}
        # seq -> ifaces that delivered it, for seqs within WINDOW of `last`.
        self._seen: dict[int, set[str]] = {}

    # ------------------------------------------------------------- queries --
    @property
    def missing_count(self) -> int:
        return len(self._missing)

    def next_deadline(self, grace: float) -> float | None:
        for went_missing in self._missing.values():
            return went_missing + grace
        return None

    def generation_verdict(self, hg: int) -> Replay | None:
        """For messages without seq (NS_*): only an older generation is refused."""
        if self.generation is not None and hg < self.generation:
            return Replay(-1, self._replay_text(hg))
        return None

    # ------------------------------------------------------------- updates --
    def observe(self, hg: int, seq: int, iface: str, now: float) -> Verdict:
        gen = self.generation
        if gen is not None and hg < gen:
            return Replay(seq, self._replay_text(hg))
        if gen is None or hg > gen or self.last is None:
            lost = len(self._missing)
            self._reset(hg, seq, iface)
            restarted = gen if gen is not None and hg > gen else None
            return Fresh(seq, None, lost=lost, restarted_from=restarted)
        last = self.last
        if seq > last:
            return self._advance(seq, last, iface, now)
        if seq in self._missing:
            del self._missing[seq]
            self._seen.setdefault(seq, set()).add(iface)
            return Filled(seq)
        ifaces = self._seen.get(seq)
        if ifaces is not None and iface not in ifaces:
            ifaces.add(iface)
            return Duplicate(seq)
        if ifaces is not None:
            return Replay(seq, f"seq {seq:x} already received on {iface}")
        return Replay(seq, f"old seq {seq:x} (last {last:x})")

    def expire(self, now: float, grace: float) -> int:
        """Write off missing seqs older than `grace`; return how many."""
        lost = 0
        while self._missing:
            seq, went_missing = next(iter(self._missing.items()))
            if went_missing + grace > now:
                break
            del self._missing[seq]
            lost += 1
        return lost

    # ------------------------------------------------------------ internal --
    def _replay_text(self, hg: int) -> str:
        return f"attempted replay attack [{self.node}]? [gen = {hg}, curgen = {self.generation}]"

    def _reset(self, hg: int, seq: int, iface: str) -> None:
        self.generation = hg
        self.last = seq
        self._missing.clear()
        self._seen = {seq: {iface}}

    def _advance(self, seq: int, last: int, iface: str, now: float) -> Fresh:
        gap = seq - last - 1
        if gap > MAX_GAP:
            lost = gap + len(self._missing)
            self._missing.clear()
            self._seen = {seq: {iface}}
            self.last = seq
            return Fresh(seq, last, lost=lost, reset=True)
        lost = 0
        for s in range(last + 1, seq):
            self._missing[s] = now
        while len(self._missing) > MAX_MISSING:
            del self._missing[next(iter(self._missing))]
            lost += 1
        self.last = seq
        self._seen[seq] = {iface}
        if len(self._seen) > 2 * WINDOW:
            floor = seq - WINDOW
            self._seen = {s: i for s, i in self._seen.items() if s >= floor}
        return Fresh(seq, last, missing=gap, lost=lost)
