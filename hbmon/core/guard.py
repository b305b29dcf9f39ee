"""What stands between a dead peer and its groups, for core/ownership.py.

    the address probe   a group whose address still answers waits (late) and is
                        probed again every keepalive (split-brain guard)
    the reset           a dead node that may hold groups is reset first, as
                        heartbeat does (core/fencing.py's machine, its book here);
                        with an arbitrator, once etcd gave us one of their keys
                        (`key_won`), and the groups start after it
    quorum              a takeover that waits for a ping node (rules.quorum)
    hung_owner          take_over: a late group is taken after a further wait,
                        marked so that the taker keeps it on the dual

and the count of takeovers each of them held back. The decisions stay pure
(core/takeover.py, core/rules.py); this applies their wishes about these (`apply`)
and their outcome to the group table, the batches and the peers' block marks,
which ownership shares with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import assert_never

from hbmon.config.model import Config, HungOwnerPolicy
from hbmon.core.batches import Batches
from hbmon.core.events import (
    BlockReason,
    Effect,
    FenceDone,
    FenceResult,
    ProbeDone,
    ResourceLog,
    StopReason,
    TakeoverBlocked,
    TakeoverReason,
)
from hbmon.core.exchange import Wrap
from hbmon.core.facts import Block, Force, NoReset, PeerFacts, Reset, Taken, Unblock
from hbmon.core.fencing import PENDING, FenceBook, FenceState, stonith_head
from hbmon.core.groups import GroupTable, Outcome
from hbmon.core.peerrsc import PeerRsc
from hbmon.core.rules import Memory

GuardWish = Block | Unblock | Reset | NoReset | Force
HasKey = Callable[[str, float], bool]  # the arbitrator lets a group start here now


class Guard:
    """The probe's verdicts, the resets, the hung-owner policy, quorum blocks; `blocked`
    counts."""

    def __init__(
        self,
        config: Config,
        table: GroupTable,
        batches: Batches,
        memory: Memory,
        wrap: Wrap,
        peers: Mapping[str, PeerRsc],
        has_key: HasKey,
    ) -> None:
        self._table = table
        self._batches = batches
        self._memory = memory
        self._wrap = wrap
        self._peers = peers  # ownership's, read and marked (blocked) here
        self._has_key = has_key
        self.fences = FenceBook(config)
        self.blocked = dict.fromkeys(BlockReason, 0)
        self.hung_wait: float | None = None  # hung_owner take_over: the further wait
        self._probe_retry = 0.0
        self.configure(config)

    def configure(self, config: Config) -> None:
        self.fences.configure(config)
        hung = config.hbmon.hung_owner is HungOwnerPolicy.TAKE_OVER
        self.hung_wait = config.hbmon.hung_owner_wait_ms / 1000 if hung else None
        self._probe_retry = config.timers.keepalive_ms / 1000

    def peer_facts(self, p: PeerRsc) -> PeerFacts:
        """`p` as the decisions see it, its reset included."""
        return PeerFacts.of(p, self.fences.state(p.name), p.name in self.fences.fenceable)

    def deadlines(self) -> list[float | None]:
        return [self.fences.next_deadline(), *self._batches.late_deadlines(self.hung_wait)]

    def expire(self, now: float) -> list[Effect]:
        return self.fences.expire(now)

    def back(self, peer: str) -> list[Effect]:
        """`peer` is heard again: a reset planned for its death is moot, and so are the
        takeovers that waited for it (the protocol with the peer decides again)."""
        effects = self.fences.back(peer)
        if not any(v.state in PENDING for v in self.fences.views()):
            for key in self._table.awaiting_reset():
                self._batches.forget(key)
                self._table.unwant(key, StopReason.PEER_BACK)
        return effects

    def apply(self, w: GuardWish, now: float) -> list[Effect]:
        """Carry out a decision's wish about quorum, a reset or a hung owner."""
        match w:
            case Block(peers=peers, keys=keys, why=why):
                for name in peers:
                    self._peers[name].blocked = True
                return [self.count(keys, BlockReason.QUORUM, why)]
            case Unblock(peer=peer):
                self._peers[peer].blocked = False
                return []
            case Reset(peer=peer, delay_s=delay, after_key=after_key):
                return self.fences.plan(peer, delay, now, after_key)
            case NoReset(peer=peer, result=result):
                return self.spare(peer, result, now)
            case Force(key=key):
                return self.force(key, now)
            case _:
                assert_never(w)

    def key_won(self, now: float) -> list[Effect]:
        """With an arbitrator: once etcd gave us the key of a group that waits for a
        reset, the resets waiting for a key go ahead."""
        if not self.fences.awaiting_key():
            return []
        if not any(self._has_key(key, now) for key in self._table.awaiting_reset()):
            return []
        return self.fences.key_won(now)

    def stand_down(self) -> list[Effect]:
        """Our shutdown: no reset waits for its turn any more."""
        return self.fences.stand_down()

    # ------------------------------------------------------------- probe --
    def probe_early(self, silent_since: float, window_s: float) -> list[Effect]:
        """A peer is close to its deadtime: probe now what its death would make us take.

        The address probe otherwise sits between the dead declaration and the
        takeover. Probing in the last stretch of the same silence sees the same
        network, so the takeover can start at the deadline.
        """
        return self._table.probe_early(silent_since, window_s)

    def probed(self, ev: ProbeDone, now: float) -> list[Effect]:
        """An address probe's answer: the group waits while its address answers."""
        outcome = self._table.probed(ev, now, self._probe_retry)
        if outcome is Outcome.CLEAR:
            self._batches.resume(ev.key, now)
        if outcome is not Outcome.BLOCKED or not self._batches.block(ev.key, now):
            return []
        why = f"address of {ev.key} still answers on the service network"
        why += f" ({ev.detail})" if ev.detail else ""
        return [self.count((ev.key,), BlockReason.IN_USE, why)]

    def count(self, keys: tuple[str, ...], reason: BlockReason, why: str) -> TakeoverBlocked:
        """A takeover held back (by one of the above, or quorum): counted, and said."""
        self.blocked[reason] += 1
        return TakeoverBlocked(keys, reason, why)

    # ------------------------------------------------------------- reset --
    def spare(self, peer: str, result: FenceResult, now: float) -> list[Effect]:
        """No reset for this death (it gave up, or no device): heartbeat says which."""
        self.fences.spare(peer, result)
        return [self._wrap(stonith_head(peer, result), now)]

    def fenced(self, ev: FenceDone, now: float) -> tuple[bool, list[Effect]]:
        """A reset attempt ended: (take over from the node now, effects). heartbeat tells
        its peers how each attempt went; a first failure counts as a blocked takeover."""
        state, effects = self.fences.done(ev, now)
        if state is None:
            return False, []
        effects.insert(0, self._wrap(stonith_head(ev.node, ev.result), now))
        if state is FenceState.BACKOFF and self.fences.first_failure(ev.node):
            why = f"{ev.node} is not reset ({ev.result.value}: {ev.detail or ev.device})"
            configured = self._table.configured()
            waiting = tuple(g.key for g in configured if not g.claimed or g.after_reset)
            effects.append(self.count(waiting, BlockReason.FENCING, why))
        if state is FenceState.RESET and not any(v.state in PENDING for v in self.fences.views()):
            self._table.reset_done()
        return state is FenceState.RESET, effects

    # --------------------------------------------------------- hung owner --
    def force(self, key: str, now: float) -> list[Effect]:
        """hung_owner take_over: the late `key` starts without the probe; on a dual with
        the owner it came from (woken up), we keep it (rules.dual_owner)."""
        peer = self._batches.late_from(key)
        self._table.force(key, TakeoverReason.HUNG_OWNER)
        self._batches.resume(key, now, TakeoverReason.HUNG_OWNER)
        if peer is not None:
            self._memory.note(Taken(key, peer))
        text = (
            f"Taking over {key} although its address still answers: {peer} was declared"
            f" dead and may be hung, not dead (hung_owner take_over)"
        )
        return [ResourceLog("WARN", text)]
