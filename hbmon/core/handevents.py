"""A restart's traffic with the core (core/handover.py): events in, effects out.

The old process hears `Handover` (SIGQUIT), answers `HandoverReady` once nothing
moves, and ends with `HandoverComplete` after the driver's `HandoverSaved`; the
new one hears `HandedOver` with the groups it surveyed and answers `KeepGroup`
for each it adopts. A peer's restart is `PeerHandover`. core/events.py puts them
into its `Event` and `Effect` unions.
"""

from __future__ import annotations

from dataclasses import dataclass

from hbmon.wire.rscmsg import Scope


# ------------------------------------------------------------------ events --
@dataclass(frozen=True, slots=True)
class Handover:
    """Restart requested (systemd's RestartKillSignal, `systemctl restart`, a package
    upgrade): hand the groups over to this node's next process instead of releasing
    them (core/handover.py)."""


@dataclass(frozen=True, slots=True)
class HandoverSaved:
    """The driver's answer to `HandoverReady`: the addresses expire after the window
    and the record is written (ok), or not (then the groups are released as for a stop)."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GroupSurvey:
    """What the start-up scan found of one group the previous process handed over."""

    key: str
    addresses_up: bool  # every address of the group is on its interface (True if it has none)
    all_running: bool  # every resource's status says running
    any_running: bool


@dataclass(frozen=True, slots=True)
class HandedOver:
    """At start, before `ActiveAtStart`: our previous process handed these groups over
    (its record was fresh, from this boot and this node)."""

    generation: int  # the previous process's
    gap_s: float  # since it handed over
    claims: Scope  # its rsc_hold flags
    groups: tuple[GroupSurvey, ...]  # the groups it held that are still configured


# ------------------------------------------------------------------ effects --
@dataclass(frozen=True, slots=True)
class HandoverReady:
    """Our restart: nothing is starting or stopping any more. The driver makes the
    addresses of `keys` expire after `window_s` (unless the next process keeps them),
    writes the handover record, and answers `HandoverSaved`."""

    keys: tuple[str, ...]  # the groups held here, in file order
    claims: Scope  # our rsc_hold flags, for the next process
    window_s: float


@dataclass(frozen=True, slots=True)
class HandoverComplete:
    """The restart notice is out (dt stretched by the window); the driver exits
    without releasing anything."""

    keys: tuple[str, ...]
    window_s: float


@dataclass(frozen=True, slots=True)
class PeerHandover:
    """The peer announced a restart that keeps its resources up (`hbhandover`): its
    dead interval is stretched by `window_s` meanwhile."""

    node: str
    window_s: float
    dead_interval_s: float


@dataclass(frozen=True, slots=True)
class KeepGroup:
    """A group our previous process handed over is ours: its addresses no longer expire."""

    key: str
