"""At most one log line per key and window, so a flood of bad packets cannot flood the log."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

DROP_WINDOW_S = 10.0


@dataclass(slots=True)
class _Window:
    start: float
    suppressed: int = 0


class DropLimiter:
    """At most one line per key per `window` seconds; the next line carries the
    number suppressed meanwhile. Time comes from the caller (`now`, monotonic).

    Memory is bounded: beyond `max_keys` (spoofed sources), expired windows are
    forgotten first, then the oldest ones.
    """

    def __init__(self, window: float = DROP_WINDOW_S, max_keys: int = 4096) -> None:
        self.window = window
        self.max_keys = max_keys
        self._windows: dict[Hashable, _Window] = {}

    def allow(self, key: Hashable, now: float) -> tuple[bool, int]:
        """(log this one?, how many were suppressed since the last logged one)."""
        w = self._windows.get(key)
        if w is not None and now - w.start < self.window:
            w.suppressed += 1
            return False, 0
        suppressed = w.suppressed if w is not None else 0
        self._windows.pop(key, None)
        self._windows[key] = _Window(now)  # insertion order = window start order
        if len(self._windows) > self.max_keys:
            self._prune(now)
        return True, suppressed

    def _prune(self, now: float) -> None:
        for k in [k for k, w in self._windows.items() if now - w.start >= self.window]:
            del self._windows[k]
        while len(self._windows) > self.max_keys:
            del self._windows[next(iter(self._windows))]

    def __len__(self) -> int:
        return len(self._windows)
