"""Drop counters by (iface, reason), every pair present from the start.

Metrics need a series at 0 before the first breach, so every configured iface
gets every `DropReason` at construction (and on reconfigure).
"""

from __future__ import annotations

from collections.abc import Iterable

from hbmon.errors import DropReason


class DropCounters:
    __slots__ = ("_counts",)

    def __init__(self, ifaces: Iterable[str]) -> None:
        self._counts: dict[tuple[str, DropReason], int] = {}
        self.add_ifaces(ifaces)

    def add_ifaces(self, ifaces: Iterable[str]) -> None:
        """Counters only ever grow: an iface that leaves the config keeps its series."""
        for iface in ifaces:
            for reason in DropReason:
                self._counts.setdefault((iface, reason), 0)

    def count(self, iface: str, reason: DropReason) -> None:
        if (iface, reason) not in self._counts:
            self.add_ifaces((iface,))
        self._counts[(iface, reason)] += 1

    def view(self) -> tuple[tuple[str, str, int], ...]:
        return tuple((iface, reason.value, n) for (iface, reason), n in self._counts.items())
