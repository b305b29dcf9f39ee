"""What this node says it holds, for core/ownership.py and core/exchange.py.

claims         our rsc_hold flags the way heartbeat keeps its own
               (i_hold_resources); they speak for a set that is empty here
               (scopes.hold_scope), so heartbeat's audit finds every set
               owned exactly once
scope          the rsc_hold a set of held groups is said as (cl_status
               rscstatus, the `resource` message)
rsc_hold       cl_status rscstatus, `transition` while in flux
status_fields  the extras every status carries (most beats repeat them)
resource_msg   the `resource` message, with our report of the groups
"""

from __future__ import annotations

from collections.abc import Callable

from hbmon.core import scopes
from hbmon.core.events import Scope, SendMessage
from hbmon.core.exchange import Wrap
from hbmon.core.groups import GroupTable
from hbmon.core.stages import Stage
from hbmon.wire import rscmsg
from hbmon.wire.message import Field
from hbmon.wire.rscmsg import Report


class Holding:
    """Our rsc_hold flags and the words that say what we hold; `report` gives ownership's
    current `Report` of the groups."""

    def __init__(
        self, me: str, table: GroupTable, wrap: Wrap, report: Callable[[], Report]
    ) -> None:
        self.me = me
        self._table = table
        self._wrap = wrap
        self._report = report
        self.claims = Scope.NONE
        # The last status_fields() and what they were built from (most beats repeat them).
        self._memo: tuple[tuple[Report, int, int], tuple[Field, ...]] | None = None

    def claim(self, scope: Scope) -> None:
        """Add `scope` to our rsc_hold flags."""
        self.claims = scopes.union(self.claims, scope)

    def unclaim(self, scope: Scope) -> None:
        """Remove `scope` from our rsc_hold flags."""
        self.claims = scopes.without(self.claims, scope)

    def scope(self, keys: frozenset[str]) -> Scope:
        return scopes.hold_scope(keys, self.me, self._table.preferred(), self.claims)

    def rsc_hold(self, stage: Stage, stable: bool) -> str:
        """cl_status rscstatus: none|local|foreign|all, `transition` while in flux."""
        if stage in (Stage.WAITING, Stage.LEAVING, Stage.HANDING_OVER) or (
            stage is Stage.RUNNING and not stable
        ):
            return "transition"
        return self.scope(self._table.held()).value

    def status_fields(self, reachable: int, configured: int) -> tuple[Field, ...]:
        key = (self._report(), reachable, configured)
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, rscmsg.status_extra(*key))
        return self._memo[1]

    def resource_msg(
        self,
        now: float,
        *,
        stable: bool,
        info: str | None = None,
        held: frozenset[str] | None = None,
    ) -> SendMessage:
        report = self._report()
        if held is not None:
            report = Report(stable, held, frozenset(), report.failed, report.phase, report.taken)
        scope = self.scope(report.held | report.pending)
        return self._wrap(rscmsg.resource_head(scope, stable=stable, info=info, report=report), now)
