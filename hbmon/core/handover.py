"""A restart without a failover: what one process of a node hands to the next (sans-IO).

heartbeat restarts itself in place (`heartbeat -R -C <held>`, spec §4.5): it keeps
its resources, tells the peer it is restarting by advertising deadtime + 30 s as
its `dt`, and the new process starts out holding what the old one held. hbmon does
the same across `systemctl restart` and a package upgrade (which restarts):

1. **Which stop is a restart.** systemd sends the unit's `RestartKillSignal=`
   (SIGQUIT) when a restart job stops it and `KillSignal=` (SIGTERM) for a plain
   stop; the driver turns SIGQUIT into `Handover`. Everything else (stop,
   shutdown, `apt remove`) still releases at once.
2. **The old process** waits until no group is starting or stopping, then asks the
   driver (`HandoverReady`) to make the held groups' addresses expire after the
   window (the kernel removes them then, unless the next process takes them: the
   dead man's switch if it never comes) and to write the record below in the
   runtime directory (kept across a restart: RuntimeDirectoryPreserve=restart).
   Then (`HandoverSaved`) it sends its last status with `dt` = deadtime + window
   and `hbhandover=<window ms>`, and exits without releasing anything. If the
   driver cannot do its part, the groups are released as for a stop.
3. **The peer** takes the stretched `dt` as the dead interval (as it does
   heartbeat's), does not count the announced silence as late, and when the new
   generation speaks, leaves it the groups it reports holding (core/takeover.py
   `rejoined`). If no new process comes, the peer's stretched dead interval ends
   after the addresses expired, and it takes over as from any dead node.
4. **The new process** reads the record (only if it is from this node and this
   boot and younger than its window: `judge`), surveys the groups it names and
   adopts those whose addresses are still up (`adopt`): held again, without
   running a start; started again only if a resource's status says stopped.

Only `now` values of one clock are compared: the record's `at` is CLOCK_MONOTONIC,
which every process of one boot shares.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from hbmon.core.events import GroupSurvey, Scope


@dataclass(frozen=True, slots=True)
class HandoverRecord:
    """What the old process leaves for the next one (written as JSON by the driver)."""

    node: str
    generation: int  # of the process that handed over
    groups: tuple[str, ...]  # held when it handed over, in file order
    claims: Scope  # its rsc_hold flags
    at: float  # CLOCK_MONOTONIC seconds when it handed over
    window_s: float  # how long its peers and its addresses wait for the next process
    boot_id: str  # the kernel's boot id: a record from another boot means nothing
    wall: float = 0.0  # wall-clock time, for people reading the file


class Verdict(StrEnum):
    """Whether a record may be acted on, and if not, why."""

    USABLE = "usable"
    OTHER_NODE = "written for another node name"
    OTHER_BOOT = "written before the last boot"
    EXPIRED = "older than its window"
    FROM_THE_FUTURE = "stamped after now"


def judge(record: HandoverRecord, *, node: str, boot_id: str, now: float) -> Verdict:
    """May this process adopt what `record` names? (`now`: CLOCK_MONOTONIC seconds)"""
    if record.node != node:
        return Verdict.OTHER_NODE
    if record.boot_id != boot_id:
        return Verdict.OTHER_BOOT
    age = now - record.at
    if age < 0:
        return Verdict.FROM_THE_FUTURE
    if age >= record.window_s:
        # Its addresses expire now, and the peers stop waiting soon after.
        return Verdict.EXPIRED
    return Verdict.USABLE


@dataclass(frozen=True, slots=True)
class Adoption:
    """What the new process does with each group its predecessor handed over."""

    kept: tuple[str, ...]  # every resource still runs: held again as it is
    restart: tuple[str, ...]  # addresses up, something stopped: started again (idempotent)
    lost: tuple[str, ...]  # an address is gone: not ours any more; released if anything runs


def adopt(groups: Iterable[GroupSurvey]) -> Adoption:
    """A group is adopted only while its addresses are really up: they are what the
    peers see, and what the old process told them it keeps. A group whose address
    went (someone removed it, or it expired) is treated as found at any start."""
    kept: list[str] = []
    restart: list[str] = []
    lost: list[str] = []
    for g in groups:
        if not g.addresses_up:
            lost.append(g.key)
        elif g.all_running:
            kept.append(g.key)
        else:
            restart.append(g.key)
    return Adoption(tuple(kept), tuple(restart), tuple(lost))


def advertised_window_ms(window_s: float) -> int:
    """The `hbhandover` value (and the `dt` extra) in whole milliseconds."""
    return max(0, round(window_s * 1000))
