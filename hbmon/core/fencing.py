"""Fencing (STONITH) before a takeover, as heartbeat 3.0.6 does it (spec §5.2), sans-IO.

heartbeat (hb_resource.c hb_rsc_recover_dead_resources) decides, for each dead
node, once:

    it was heard, and held nothing     `Dead node X gave up resources.`, no reset,
                                       `stonith result=unneeded`
    else, no device configured         `No STONITH device configured.` /
                                       `Shared disks are not protected.`,
                                       `stonith result=n_stnth`, takeover anyway
    else                               reset it; its groups are taken only once a
                                       reset succeeded (`result=OK`); a failed one
                                       (`result=bad|badhost`) is retried, forever

With an external arbitrator (docs/arbitrator.md), a reset waits for etcd: the
dead node's groups are acquired at once but start only after the reset, and the
reset starts only once etcd gave us the key of one of them (AWAITING_KEY). A
node that etcd still lets hold its groups is not hung and not dead: it renews
its lease, so the key never comes and it is never shot (docs/fencing.md, "With
an arbitrator").

hbmon adds a deterministic delay, so that two nodes cut off from each other
never reset each other at once: a node that holds groups (so the other may want
to reset it too) waits its own delay (FENCE_DELAY_MS × its rank in the node
list, or hbmon.fencing.delays) before it shoots; a node that holds nothing is
not reset by its peer (the rule above), so it shoots at once. Retries back off.

Per peer, one machine (`TABLE`): IDLE until its death is judged, then UNNEEDED,
UNPROTECTED (no device: taken anyway), or (AWAITING_KEY →) DELAYED → RESETTING →
RESET (taken, no address probe: the node is off) with BACKOFF between failed
attempts. A peer
heard again goes back to IDLE; a reset already running then is ABANDONED (its
outcome only logged). The decisions (reset or not, how long to wait first) are
pure functions in core/takeover.py; `FenceBook` holds the machines and their
timers for core/ownership.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hbmon.core.events import Effect, FenceDone, FenceNode, FenceResult, ResourceLog
from hbmon.core.machine import Table
from hbmon.wire.message import Field

if TYPE_CHECKING:
    from hbmon.config.model import Config

T_STONITH = "stonith"


class FenceState(StrEnum):
    """Where the reset of one peer is (see the module docstring)."""

    IDLE = "idle"  # alive, or its death not judged yet
    UNNEEDED = "unneeded"  # it died holding nothing: no reset
    UNPROTECTED = "unprotected"  # a reset was needed, no device can do it: taken anyway
    AWAITING_KEY = "awaiting_key"  # (arbitrator) no reset before etcd gives us a key it held
    DELAYED = "delayed"  # waiting out our fencing delay
    RESETTING = "resetting"  # an attempt is running
    BACKOFF = "backoff"  # the last attempt failed; the next after a backoff
    ABANDONED = "abandoned"  # it came back while an attempt ran; the outcome is only logged
    RESET = "reset"  # a device reset it: its groups may be taken


class FenceInput(StrEnum):
    """The kinds of input of the fence machine, the columns of the table."""

    SPARE = "spare"  # it died holding nothing
    NO_DEVICE = "no_device"  # it died, may hold groups, and no device can reset it
    NEED = "need"  # it died and may hold groups: reset it
    NEED_KEY = "need_key"  # the same, with an arbitrator: once one of their keys is ours
    KEY_WON = "key_won"  # etcd gave us the key of a group waiting for this reset
    DUE = "due"  # the delay or the backoff is over: an attempt starts
    OK = "ok"
    FAILED = "failed"
    BACK = "back"  # heard again (came back, restarted)


S, In = FenceState, FenceInput
TRANSITIONS: dict[tuple[FenceState, FenceInput], FenceState] = {
    (S.IDLE, In.SPARE): S.UNNEEDED,
    (S.IDLE, In.NO_DEVICE): S.UNPROTECTED,
    (S.IDLE, In.NEED): S.DELAYED,
    (S.IDLE, In.NEED_KEY): S.AWAITING_KEY,
    (S.AWAITING_KEY, In.KEY_WON): S.DELAYED,
    (S.AWAITING_KEY, In.BACK): S.IDLE,
    (S.DELAYED, In.DUE): S.RESETTING,
    (S.RESETTING, In.OK): S.RESET,
    (S.RESETTING, In.FAILED): S.BACKOFF,
    (S.BACKOFF, In.DUE): S.RESETTING,
    (S.RESETTING, In.BACK): S.ABANDONED,
    (S.ABANDONED, In.OK): S.IDLE,
    (S.ABANDONED, In.FAILED): S.IDLE,
    # Dead again while the old attempt still runs: that attempt stands for this death.
    (S.ABANDONED, In.NEED): S.RESETTING,
    (S.ABANDONED, In.NEED_KEY): S.RESETTING,
    (S.IDLE, In.BACK): S.IDLE,
    (S.UNNEEDED, In.BACK): S.IDLE,
    (S.UNPROTECTED, In.BACK): S.IDLE,
    (S.DELAYED, In.BACK): S.IDLE,
    (S.BACKOFF, In.BACK): S.IDLE,
    (S.RESET, In.BACK): S.IDLE,
}
TABLE = Table("fencing", FenceState.IDLE, TRANSITIONS)
# A takeover from any dead node waits while one of these is under way.
PENDING = frozenset(
    {FenceState.AWAITING_KEY, FenceState.DELAYED, FenceState.RESETTING, FenceState.BACKOFF}
)
# Not yet begun: given up on when the node is heard again, or at our shutdown.
WAITING = frozenset({FenceState.AWAITING_KEY, FenceState.DELAYED, FenceState.BACKOFF})
# A takeover from the peer may go ahead (heartbeat's takeover_from_node).
CLEARED = frozenset({FenceState.UNNEEDED, FenceState.UNPROTECTED, FenceState.RESET})


def stonith_head(node: str, result: FenceResult) -> tuple[Field, ...]:
    """heartbeat's `stonith` message (send_stonith_msg): `t node result`."""
    return (
        Field("t", T_STONITH.encode()),
        Field("node", node.encode()),
        Field("result", result.value.encode()),
    )


# ------------------------------------------------------------------- book --
@dataclass(slots=True)
class PeerFence:
    """One peer's fence machine and its timer."""

    state: FenceState = FenceState.IDLE
    due: float | None = None  # DELAYED / BACKOFF: when the next attempt starts
    delay: float = 0.0  # AWAITING_KEY: the fencing delay to wait once the key is ours
    attempts: int = 0  # in this episode
    failures: int = 0  # consecutive, in this episode
    since: float | None = None  # when this episode began


@dataclass(frozen=True, slots=True)
class FenceView:
    """A peer's reset, for the snapshot (`hbmon status`, metrics)."""

    node: str
    state: FenceState
    attempts: int
    failures: int
    since: float | None


def fence_delay_s(config: Config) -> float:
    """Our delay before shooting when a duel is possible: hbmon.fencing.delays, else
    FENCE_DELAY_MS times our rank in the node list (the first node shoots at once)."""
    s = config.hbmon.fencing
    given = dict(s.delays)
    if config.node in given:
        return given[config.node] / 1000
    rank = config.nodes.index(config.node) if config.node in config.nodes else 0
    return rank * s.delay_ms / 1000


class FenceBook:
    """The fence machine of every peer, and what the configuration says about
    fencing here (which peers a device can reset, our delay); effects out, one deadline."""

    __slots__ = ("_peers", "_retry_initial", "_retry_max", "delay_s", "fenceable")

    def __init__(self, config: Config) -> None:
        self._peers: dict[str, PeerFence] = {}
        self.configure(config)

    def configure(self, config: Config) -> None:
        self._peers = {name: self._peers.get(name) or PeerFence() for name in config.peers}
        s = config.hbmon.fencing
        self._retry_initial, self._retry_max = s.retry_initial_ms / 1000, s.retry_max_ms / 1000
        self.fenceable = frozenset(p for p in config.peers if config.fence_devices(p))
        self.delay_s = fence_delay_s(config)

    def state(self, peer: str) -> FenceState:
        pf = self._peers.get(peer)
        return pf.state if pf is not None else FenceState.IDLE

    def _fire(self, pf: PeerFence, kind: FenceInput) -> FenceState:
        pf.state = TABLE.next(pf.state, kind)
        return pf.state

    def spare(self, peer: str, result: FenceResult) -> None:
        """No reset for this death (it gave up, or no device): `result` says which."""
        pf = self._peers[peer]
        kind = FenceInput.SPARE if result is FenceResult.UNNEEDED else FenceInput.NO_DEVICE
        if TABLE.allows(pf.state, kind):
            self._fire(pf, kind)

    def plan(self, peer: str, delay_s: float, now: float, after_key: bool = False) -> list[Effect]:
        """Reset `peer` after `delay_s` (at once if 0); `after_key`: only once etcd gave
        us the key of a group it may hold (`key_won`), then after `delay_s`."""
        pf = self._peers[peer]
        kind = FenceInput.NEED_KEY if after_key else FenceInput.NEED
        if not TABLE.allows(pf.state, kind):
            return []
        running = pf.state is FenceState.ABANDONED
        self._fire(pf, kind)
        pf.attempts, pf.failures, pf.since = (1 if running else 0), 0, now
        if running:
            return [ResourceLog("info", f"A reset of {peer} is already running; waiting for it.")]
        if after_key:
            pf.delay = delay_s
            text = f"Resetting node {peer} once the arbitrator gives us a group it may hold."
            return [ResourceLog("info", text)]
        return self._delay(peer, pf, delay_s, now)

    def awaiting_key(self) -> bool:
        return any(pf.state is FenceState.AWAITING_KEY for pf in self._peers.values())

    def key_won(self, now: float) -> list[Effect]:
        """etcd gave us the key of a group waiting for a reset: every reset that waited
        for it goes ahead (after its fencing delay)."""
        effects: list[Effect] = []
        for peer, pf in self._peers.items():
            if pf.state is FenceState.AWAITING_KEY:
                self._fire(pf, FenceInput.KEY_WON)
                effects += self._delay(peer, pf, pf.delay, now)
        return effects

    def _delay(self, peer: str, pf: PeerFence, delay_s: float, now: float) -> list[Effect]:
        pf.due = now + delay_s
        if delay_s <= 0:
            return self._attempt(peer, pf)
        text = f"Resetting node {peer} in {delay_s:g} s (fencing delay), unless it is heard again."
        return [ResourceLog("info", text)]

    def _attempt(self, peer: str, pf: PeerFence) -> list[Effect]:
        self._fire(pf, FenceInput.DUE)
        pf.due = None
        pf.attempts += 1
        return [FenceNode(peer, pf.attempts)]

    def expire(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for peer, pf in self._peers.items():
            if pf.due is not None and pf.due <= now and TABLE.allows(pf.state, FenceInput.DUE):
                effects += self._attempt(peer, pf)
        return effects

    def done(self, ev: FenceDone, now: float) -> tuple[FenceState | None, list[Effect]]:
        """An attempt's outcome: (the new state, log lines); None for a stray answer."""
        pf = self._peers.get(ev.node)
        if pf is None or pf.state not in (FenceState.RESETTING, FenceState.ABANDONED):
            return None, []
        was = pf.state
        ok = ev.result is FenceResult.OK
        new = self._fire(pf, FenceInput.OK if ok else FenceInput.FAILED)
        if was is FenceState.ABANDONED:
            how = "succeeded" if ok else "failed"
            return new, [ResourceLog("info", f"Reset of {ev.node} {how} after it was heard again.")]
        if ok:
            return new, []
        pf.failures += 1
        wait = min(self._retry_initial * 2 ** (pf.failures - 1), self._retry_max)
        pf.due = now + wait
        text = (
            f"STONITH of {ev.node} failed.  Retrying... (attempt {pf.attempts + 1} in {wait:g} s)"
        )
        return new, [ResourceLog("ERROR", text)]

    def first_failure(self, peer: str) -> bool:
        """The attempt that just failed was the first of this death's resets."""
        pf = self._peers.get(peer)
        return pf is not None and pf.failures == 1

    def back(self, peer: str) -> list[Effect]:
        """`peer` is heard again: whatever was planned for its death is moot."""
        pf = self._peers.get(peer)
        if pf is None or pf.state is FenceState.IDLE:
            return []
        was = pf.state
        self._fire(pf, FenceInput.BACK)
        pf.due = None
        if was in WAITING:
            return [ResourceLog("info", f"Reset of {peer} cancelled: it is heard again.")]
        return []

    def stand_down(self) -> list[Effect]:
        """Our shutdown: we take nothing over, so no reset waits for its turn any more
        (one already running is left to finish)."""
        effects: list[Effect] = []
        for peer, pf in self._peers.items():
            if pf.state in WAITING:
                self._fire(pf, FenceInput.BACK)
                pf.due = None
                effects.append(ResourceLog("info", f"Reset of {peer} cancelled: shutting down."))
        return effects

    def next_deadline(self) -> float | None:
        return min((pf.due for pf in self._peers.values() if pf.due is not None), default=None)

    def views(self) -> tuple[FenceView, ...]:
        return tuple(
            FenceView(name, pf.state, pf.attempts, pf.failures, pf.since)
            for name, pf in self._peers.items()
        )
