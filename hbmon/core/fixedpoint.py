"""What ownership may skip while nothing changes (most inputs of an idle pair).

After a reconcile, ownership is at a fixed point: the rules have nothing left to
do until an input changes something or a deadline passes (every time-driven
rule has one). A beat that repeats what its peer said, or a ping reply from a
ping node already up, cannot move it, nor its next deadline. Never with an
arbitrator: its lease changes outside our inputs.
"""

from __future__ import annotations

from collections.abc import Callable

from hbmon.wire import rscmsg
from hbmon.wire.message import Message


class FixedPoint:
    __slots__ = ("_deadline", "_seen", "clean")

    def __init__(self) -> None:
        self.clean = False  # nothing has changed since the last reconcile ended
        # next_deadline() until the state next changes (None: not computed since).
        self._deadline: tuple[float | None] | None = None
        # Per peer: its last status's (hbrsc, hbping) values and what they parsed to.
        self._seen: dict[str, tuple[tuple[bytes | None, bytes | None], rscmsg.Parsed | None]] = {}

    def reached(self, arbitrated: bool) -> None:
        """A reconcile ended."""
        self._deadline = None
        self.clean = not arbitrated

    def dirty(self) -> None:
        """The state changed outside a reconcile: the next input must reconcile."""
        self.clean = False
        self._deadline = None

    def deadline(
        self, now: float, compute: Callable[[], float | None], arbitrated: bool
    ) -> float | None:
        cached = self._deadline
        if arbitrated or cached is None or (cached[0] is not None and cached[0] <= now):
            cached = self._deadline = (compute(),)
        return cached[0]

    def parse(self, name: str, msg: Message) -> rscmsg.Parsed | None:
        """rscmsg.parse, remembered per peer for its statuses: most repeat the
        previous one's report and ping count."""
        if msg.type != rscmsg.T_STATUS:
            return rscmsg.parse(msg)
        key = (msg.get_bytes(rscmsg.RSC_FIELD), msg.get_bytes(rscmsg.PING_FIELD))
        memo = self._seen.get(name)
        if memo is not None and memo[0] == key:
            return memo[1]
        parsed = rscmsg.parse(msg)
        self._seen[name] = (key, parsed)
        return parsed
