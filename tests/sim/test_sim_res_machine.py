"""Property: random kills, restarts, partitions, heals, standby/takeover requests, ping
loss and failing starts never leave a group with two holders, or with none, for long.

Timers are short (keepalive 1 s, deadtime 4 s, initdead 8 s) so a run covers
many failovers. Time advances in small steps and the invariants are checked at
every step, as durations of continuous conditions:

    dual    the link is healthy, both agents run, and both hold a group
            (state HELD) → no longer than DUAL_BOUND
    none    no machine runs a group while an agent that could take it (running,
            not backing off from it, its quorum allows) has been able to for
            longer than NONE_BOUND
    reply   a control request gets at most one reply, ever, and exactly one
            once its node has outlived the exchange (checked at teardown)
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from simnet import Sim
from simowners import VIP_A, VIP_B, A, B, ping_addr, rconfig

from hbmon.config.model import AutoFailback
from hbmon.core.events import (
    ControlOp,
    ControlReply,
    GroupOp,
    GroupState,
    GroupTransition,
    PingResult,
    Scope,
)
from hbmon.core.groups import backoff_s

KEYS = (VIP_A, VIP_B)
NODES = (A, B)
TIMERS = {"deadtime_ms": 4000, "warntime_ms": 2000, "initdead_ms": 8000}
DEADTIME, INITDEAD = 4.0, 8.0
STEP = 0.25
DUAL_BOUND = DEADTIME + 3.0  # heal noticed within a beat, then one stop
NONE_BOUND = INITDEAD + DEADTIME + 4.0  # a fresh node waits initdead; probes, starts, settle


class OwnershipMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim: Sim | None = None
        self.generation = 100
        self.reach: dict[str, bool] = {A: True, B: True}
        self.requests: dict[int, tuple[str, int]] = {}  # id -> (node, incarnation)
        self.incarnation = {A: 0, B: 0}
        self.born = {A: 0, B: 0}  # log index where each node's current agent started
        self.dual_since: dict[str, float] = {}
        self.none_since: dict[tuple[str, str, int], float] = {}
        self.link_ok = True

    # -------------------------------------------------------------- setup --
    @initialize(mode=st.sampled_from(list(AutoFailback)))
    def boot(self, mode: AutoFailback) -> None:
        self.sim = Sim({n: rconfig(n, auto_failback=mode, pings=1, **TIMERS) for n in NODES})
        for n in NODES:
            self._start(n)
        self._run(3.0)

    def _start(self, name: str) -> None:
        assert self.sim is not None
        self.generation += 1
        self.incarnation[name] += 1
        self.born[name] = len(self.sim.log)
        self.sim.start(name, generation=self.generation)
        self._feed_pings()

    # -------------------------------------------------------------- rules --
    @rule(seconds=st.sampled_from([1.0, 3.0, 6.0, 12.0]))
    @precondition(lambda self: self.sim is not None)
    def wait(self, seconds: float) -> None:
        self._run(seconds)

    @rule(name=st.sampled_from(NODES), crash=st.booleans())
    @precondition(lambda self: self.sim is not None and len(self.sim.nodes) == 2)
    def kill(self, name: str, crash: bool) -> None:
        assert self.sim is not None
        if crash:
            self.sim.crash(name)
        else:
            self.sim.kill(name)  # its addresses stay up on the machine
        self._run(1.0)

    @rule(name=st.sampled_from(NODES))
    @precondition(lambda self: self.sim is not None and len(self.sim.nodes) < 2)
    def restart(self, name: str) -> None:
        assert self.sim is not None
        if name not in self.sim.nodes:
            self._start(name)
        self._run(1.0)

    @rule(service=st.booleans())
    @precondition(lambda self: self.sim is not None and self.link_ok)
    def partition(self, service: bool) -> None:
        assert self.sim is not None
        self.sim.partition(A, B)
        if service:
            self.sim.world.service_cut.add(frozenset(NODES))
        self.link_ok = False
        self._run(1.0)

    @rule()
    @precondition(lambda self: self.sim is not None and not self.link_ok)
    def heal(self) -> None:
        assert self.sim is not None
        self.sim.heal()
        self.sim.world.service_cut.clear()
        self.link_ok = True
        self._run(1.0)

    @rule(service=st.booleans(), seconds=st.sampled_from([2.0, 6.0, 10.0]))
    @precondition(lambda self: self.sim is not None and self.link_ok)
    def split_and_heal(self, service: bool, seconds: float) -> None:
        """A cut of the heartbeat link (and maybe the service network) that heals."""
        self.partition(service)
        self._run(seconds)
        self.heal()

    @rule(name=st.sampled_from(NODES), crash=st.booleans(), seconds=st.sampled_from([2.0, 8.0]))
    @precondition(lambda self: self.sim is not None and len(self.sim.nodes) == 2)
    def kill_and_return(self, name: str, crash: bool, seconds: float) -> None:
        self.kill(name, crash)
        self._run(seconds)
        self.restart(name)

    @rule(name=st.sampled_from(NODES), key=st.sampled_from(KEYS))
    @precondition(lambda self: self.sim is not None and len(self.sim.nodes) == 2)
    def restart_failing(self, name: str, key: str) -> None:
        """The node comes back unable to start a group (a broken script)."""
        assert self.sim is not None
        self.sim.world.fail.add((name, key, GroupOp.START))
        self.kill_and_return(name, True, 2.0)

    @rule(
        name=st.sampled_from(NODES),
        op=st.sampled_from(list(ControlOp)),
        scope=st.sampled_from([Scope.ALL, Scope.LOCAL, Scope.FOREIGN]),
    )
    @precondition(lambda self: self.sim is not None)
    def control(self, name: str, op: ControlOp, scope: Scope) -> None:
        assert self.sim is not None
        if name not in self.sim.nodes:
            return
        rid = self.sim.request(name, op, scope)
        self.requests[rid] = (name, self.incarnation[name])
        self._run(0.5)

    @rule(name=st.sampled_from(NODES), up=st.booleans())
    @precondition(lambda self: self.sim is not None)
    def ping(self, name: str, up: bool) -> None:
        self.reach[name] = up
        self._run(0.5)

    @rule(name=st.sampled_from(NODES), key=st.sampled_from(KEYS), fail=st.booleans())
    @precondition(lambda self: self.sim is not None)
    def start_failure(self, name: str, key: str, fail: bool) -> None:
        assert self.sim is not None
        flag = (name, key, GroupOp.START)
        if fail:
            self.sim.world.fail.add(flag)
        else:
            self.sim.world.fail.discard(flag)
        self._run(0.5)

    # ----------------------------------------------------------- stepping --
    def _feed_pings(self) -> None:
        assert self.sim is not None
        for name in list(self.sim.nodes):
            if self.reach[name]:
                self.sim.event(name, PingResult(ping_addr(0), ping_addr(0), 0.001))

    def _run(self, seconds: float) -> None:
        assert self.sim is not None
        end = self.sim.clock.now + seconds
        while self.sim.clock.now < end:
            t = min(end, self.sim.clock.now + STEP)
            self.sim.run_until(t)
            if int(t) != int(t - STEP):  # a reply a second, like the I/O layer
                self._feed_pings()
            self._check(t)

    def _backing_off(self, name: str, key: str, now: float) -> bool:
        """Whether `name`'s agent (this incarnation) is waiting out a backoff for `key`,
        worked out from its group transitions as the table does."""
        assert self.sim is not None
        streak, until = 0, None
        for t, n, e in self.sim.log[self.born[name] :]:
            if n != name or not isinstance(e, GroupTransition) or e.key != key:
                continue
            if e.new is GroupState.FAILED:
                streak += 1
                until = t + backoff_s(streak)
            elif e.old in (GroupState.STARTING, GroupState.STOPPING):
                streak, until = 0, None
        return until is not None and now < until

    def _check(self, now: float) -> None:
        assert self.sim is not None
        sim = self.sim
        snaps = {n: node.snapshot(now) for n, node in sim.nodes.items()}
        for key in KEYS:
            held = {
                n
                for n, s in snaps.items()
                for g in s.groups
                if g.key == key and g.state is GroupState.HELD
            }
            if self.link_ok and len(snaps) == 2 and len(held) == 2:
                since = self.dual_since.setdefault(key, now)
                assert now - since <= DUAL_BOUND, f"{key} held twice since {since} (now {now})"
            else:
                self.dual_since.pop(key, None)
            candidates = [
                n
                for n in snaps
                if not self._backing_off(n, key, now)
                and (self.reach[n] or (self.link_ok and len(snaps) == 2))
            ]
            # per candidate agent: how long has it been able to take the unowned group?
            current = (
                {(key, n, self.incarnation[n]) for n in candidates}
                if not sim.world.on(key)
                else set()
            )
            for k in [k for k in self.none_since if k[0] == key and k not in current]:
                del self.none_since[k]
            for k in current:
                since = self.none_since.setdefault(k, now)
                assert now - since <= NONE_BOUND, f"{key} unowned since {since} (now {now}): {k}"

    @invariant()
    def at_most_one_reply_per_request(self) -> None:
        if self.sim is None:
            return
        seen: set[int] = set()
        for _, name, e in self.sim.log:
            if isinstance(e, ControlReply):
                assert e.request_id in self.requests, e
                assert self.requests[e.request_id][0] == name
                assert e.request_id not in seen, f"second reply to {e.request_id}"
                seen.add(e.request_id)

    def teardown(self) -> None:
        sim = self.sim
        if sim is None:
            return
        # Let every exchange end: heal, then take each survivor's peer away, which
        # aborts whatever exchange still waits on it.
        sim.heal()
        sim.world.service_cut.clear()
        self.link_ok = True
        self._run(10.0)
        for name in list(sim.nodes):
            for other in NODES:
                if other != name and other in sim.nodes:
                    sim.crash(other)
        self._run(2 * DEADTIME + 12)
        replied = {e.request_id for _, _, e in sim.log if isinstance(e, ControlReply)}
        for rid, (name, inc) in self.requests.items():
            if name in sim.nodes and self.incarnation[name] == inc:
                assert rid in replied, f"request {rid} to {name} never answered"


TestOwnership = OwnershipMachine.TestCase
TestOwnership.settings = settings(
    max_examples=60, stateful_step_count=20, deadline=None, derandomize=True
)
