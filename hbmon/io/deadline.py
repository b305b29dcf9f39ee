"""One event-loop timer kept at a sans-IO core's next deadline.

The core says when it next needs to run (`next_deadline()`); the driver keeps
exactly one `call_at` armed there, re-armed after every batch of effects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class DeadlineTimer:
    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[float], None]) -> None:
        self._loop = loop
        self._fire = fire
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, deadline: float | None) -> None:
        """Fire `fire(deadline)` at `deadline` (None: nothing pending)."""
        if self._handle is not None:
            if deadline is not None and self._handle.when() == deadline:
                return
            self._handle.cancel()
            self._handle = None
        if deadline is not None:
            self._handle = self._loop.call_at(deadline, self._run, deadline)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self, deadline: float) -> None:
        self._handle = None
        self._fire(deadline)
