"""A deterministic multi-node simulation: Nodes + an in-memory network + a fake clock.

Every `SendMessage` is encoded and signed with the real wire codec, carried as
bytes over each medium (iface) to every other node after a configurable delay,
then decoded and verified as the engine does, so the sims exercise the real
bytes path. Links can be cut, packets dropped or delayed one by one.

`run_until(t)` jumps from one instant to the next (a delivery or a node's
`next_deadline()`), calling the node exactly at its deadline, so every recorded
effect carries the exact time the core produced it. Nothing ever sleeps.

Resource groups run in a `World`, the engine's stand-in: a StartGroup /
StopGroup / ProbeGroup is answered with GroupDone / ProbeDone after a delay,
and the world remembers on which nodes each group really runs. A killed agent
leaves its groups running (as kill -9 does); `crash()` takes the machine's
addresses with it. Starts and stops can be made to fail, and a probe answers
"in use" while another machine runs the group and the service network joins them.
A FenceNode is the power switch: after `fence_delay` it crashes the target
machine and answers FenceDone OK, or BAD while the target is in `fence_fail`.

A restart that hands over (core/handover.py) is modelled as the engine does it:
`HandoverReady` arms the groups' address expiry on the machine and is answered
with `HandoverSaved`; `HandoverComplete` ends the process; `resume()` starts the
next one from the record, and its `KeepGroup`s disarm the expiry. An expiry that
is reached removes the group from the machine, as the kernel removes the address.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from coretools import UUIDS, WALL_EPOCH, FakeClock

from hbmon.config.model import Config
from hbmon.core.events import (
    ActiveAtStart,
    ControlOp,
    ControlRequest,
    Effect,
    Event,
    FenceDone,
    FenceNode,
    FenceResult,
    GroupDone,
    GroupOp,
    GroupSurvey,
    HandedOver,
    HandoverComplete,
    HandoverReady,
    HandoverSaved,
    KeepGroup,
    PacketIn,
    PacketRejected,
    ProbeDone,
    ProbeGroup,
    Scope,
    SendMessage,
    StartGroup,
    StopGroup,
)
from hbmon.core.node import Node
from hbmon.errors import WireError
from hbmon.wire.auth import Signer
from hbmon.wire.codec import Decoder, Encoder
from hbmon.wire.message import Message

T = TypeVar("T")

# One way delay by default: an exact binary fraction, so expected times add up exactly.
DELAY = 0.0625


@dataclass(frozen=True)
class Datagram:
    at: float  # send time
    src: str
    iface: str
    data: bytes
    message: Message


@dataclass(order=True)
class _Pending:
    at: float
    order: int
    dst: str = field(compare=False)
    event: Event | None = field(compare=False)
    target: Node | None = field(default=None, compare=False)  # only this incarnation
    then: Callable[[], Event] | None = field(default=None, compare=False)


@dataclass
class World:
    """Where each group really runs, and how the executor answers."""

    start_delay: float = 0.25
    stop_delay: float = 0.25
    probe_delay: float = 0.125
    running: dict[str, set[str]] = field(default_factory=dict)  # key -> machines
    fail: set[tuple[str, str, GroupOp]] = field(default_factory=set)  # (node, key, op)
    service_cut: set[frozenset[str]] = field(default_factory=set)  # machines that can't probe
    slow: dict[str, float] = field(default_factory=dict)  # extra seconds per op on a machine
    fence_delay: float = 1.0
    fence_fail: set[str] = field(default_factory=set)  # machines the switch cannot reset
    fenced: list[tuple[str, str]] = field(default_factory=list)  # (by, target) resets done
    save_delay: float = 0.0625  # arming the expiry and writing the handover record
    # (machine, key) -> when the group's addresses expire (a handover's dead man's switch)
    expiry: dict[tuple[str, str], float] = field(default_factory=dict)
    refuse_save: set[str] = field(default_factory=set)  # machines whose save fails

    def expire(self, now: float) -> None:
        for (machine, key), at in list(self.expiry.items()):
            if at <= now:
                del self.expiry[(machine, key)]
                self.on(key).discard(machine)

    def on(self, key: str) -> set[str]:
        return self.running.setdefault(key, set())

    def answer(self, node: str, effect: StartGroup | StopGroup | ProbeGroup) -> Event:
        match effect:
            case StartGroup(key=key):
                if (node, key, GroupOp.START) in self.fail:
                    self.on(key).discard(node)  # a failed start stops what it started
                    return GroupDone(key, GroupOp.START, False, "exit 1")
                self.on(key).add(node)
                return GroupDone(key, GroupOp.START, True)
            case StopGroup(key=key):
                if (node, key, GroupOp.STOP) in self.fail:
                    return GroupDone(key, GroupOp.STOP, False, "exit 1")
                self.on(key).discard(node)
                return GroupDone(key, GroupOp.STOP, True)
            case ProbeGroup(key=key):
                others = [
                    n
                    for n in self.on(key)
                    if n != node and frozenset((n, node)) not in self.service_cut
                ]
                return ProbeDone(key, bool(others), f"answered by {others[0]}" if others else "")


# (src, dst, iface, message) -> extra delay in seconds, or None to drop the packet
Shaper = Callable[[str, str, str, Message], float | None]


class Sim:
    def __init__(self, configs: dict[str, Config], *, delay: float = DELAY) -> None:
        self.clock = FakeClock()
        self.configs = configs
        self.signers = {n: Signer(c.auth) for n, c in configs.items()}
        # Each node's own, as each agent's driver has them.
        self.encoders = {n: Encoder() for n in configs}
        self.decoders = {n: Decoder() for n in configs}
        self.nodes: dict[str, Node] = {}
        self.delay: dict[tuple[str, str], float] = {}  # (src, dst) one-way delay
        self.default_delay = delay
        self.cut: set[tuple[str, str, str]] = set()  # (src, dst, iface) links that drop all
        self.shaper: Shaper | None = None
        self.log: list[tuple[float, str, Effect]] = []
        self.wire: list[Datagram] = []
        self.world = World()
        self._request_ids = itertools.count(1)
        # SIGSTOPped agents: what arrived for them waits in their socket buffer.
        self.frozen: dict[str, tuple[Node, list[Event]]] = {}
        self._queue: list[_Pending] = []
        self._order = itertools.count()
        # name -> (the last HandoverReady of its process, when, that process's generation)
        self.records: dict[str, tuple[HandoverReady, float, int]] = {}

    # -------------------------------------------------------------- nodes --
    def start(self, name: str, *, generation: int = 100) -> Node:
        """Boot (or reboot, with a new generation) `name` at the current time.

        Groups still running on the machine (a killed agent's) are reported with
        ActiveAtStart before the start, as the engine does.
        """
        now = self.clock.now
        node = Node(
            self.configs[name],
            generation=generation,
            uuid=UUIDS[name],
            now=now,
            wall_epoch=WALL_EPOCH,
        )
        self.nodes[name] = node
        active = tuple(k for k, on in sorted(self.world.running.items()) if name in on)
        if active:
            self._apply(name, node.handle(ActiveAtStart(active), now))
        self._apply(name, node.start(now))
        return node

    def resume(self, name: str, *, generation: int, partly: frozenset[str] = frozenset()) -> Node:
        """Start `name`'s next process after a handover, as the engine does: the
        record's groups surveyed on the machine, then the usual start. `partly`: groups
        whose addresses are up but some other resource of which says stopped."""
        ready, at, old_generation = self.records[name]
        now = self.clock.now
        node = Node(
            self.configs[name],
            generation=generation,
            uuid=UUIDS[name],
            now=now,
            wall_epoch=WALL_EPOCH,
        )
        self.nodes[name] = node
        if now - at < ready.window_s:
            surveys = tuple(
                GroupSurvey(k, up, up and k not in partly, up)
                for k in ready.keys
                for up in (name in self.world.on(k),)
            )
            self._apply(name, node.handle(HandedOver(old_generation, now - at, ready.claims,
                                                      surveys), now))  # fmt: skip
        active = tuple(k for k, on in sorted(self.world.running.items()) if name in on)
        self._apply(name, node.handle(ActiveAtStart(active), now))
        self._apply(name, node.start(now))
        return node

    def kill(self, name: str) -> None:
        """kill -9: the node stops without a word; packets in flight still arrive;
        its groups keep running on the machine."""
        self.nodes.pop(name)

    def freeze(self, name: str) -> None:
        """SIGSTOP: the agent neither runs nor sends; its groups (and addresses) stay
        up, and what arrives for it is kept for its wake-up."""
        self.frozen[name] = (self.nodes.pop(name), [])

    def thaw(self, name: str) -> None:
        """SIGCONT: the agent runs again and reads what waited in its socket buffer."""
        node, waiting = self.frozen.pop(name)
        self.nodes[name] = node
        for event in waiting:
            if self.nodes.get(name) is node:
                self._apply(name, node.handle(event, self.clock.now))

    def crash(self, name: str) -> None:
        """The machine dies: the agent and every address it had."""
        self.nodes.pop(name, None)
        self.frozen.pop(name, None)
        for on in self.world.running.values():
            on.discard(name)
        # operations the machine had running die with it
        self._queue = [p for p in self._queue if not (p.then is not None and p.dst == name)]
        heapq.heapify(self._queue)

    def request(self, name: str, op: ControlOp, scope: Scope = Scope.ALL) -> int:
        """A control request (hbmon standby / takeover) to `name` now; returns its id."""
        rid = next(self._request_ids)
        self.event(name, ControlRequest(rid, op, scope))
        return rid

    def holders(self, key: str) -> set[str]:
        """Nodes whose agent holds `key` (as its snapshot says)."""
        out = set()
        for name, node in self.nodes.items():
            for g in node.snapshot(self.clock.now).groups:
                if g.key == key and g.holder == name:
                    out.add(name)
        return out

    def event(self, name: str, event: Event) -> list[Effect]:
        """Feed `event` to `name` now."""
        effects = self.nodes[name].handle(event, self.clock.now)
        self._apply(name, effects)
        return effects

    def inject(self, dst: str, iface: str, data: bytes, *, after: float = 0.0) -> None:
        """Deliver raw bytes (e.g. a captured datagram: a replay) to `dst`."""
        self._push(self.clock.now + after, dst, self._receive(dst, iface, data, "attacker"))

    def partition(self, a: str, b: str, *, ifaces: tuple[str, ...] | None = None) -> None:
        for iface in ifaces or self._ifaces(a):
            self.cut |= {(a, b, iface), (b, a, iface)}

    def heal(self) -> None:
        self.cut.clear()

    # ---------------------------------------------------------------- run --
    def run_until(self, t: float) -> None:
        while True:
            nxt = self._next_instant()
            if nxt is None or nxt > t:
                break
            self.clock.set(nxt)
            self.world.expire(nxt)
            while self._queue and self._queue[0].at <= nxt:
                p = heapq.heappop(self._queue)
                event = p.then() if p.then is not None else p.event
                assert event is not None
                node = self.nodes.get(p.dst)
                if p.dst in self.frozen and isinstance(event, PacketIn | PacketRejected):
                    self.frozen[p.dst][1].append(event)
                    continue
                if node is not None and (p.target is None or p.target is node):
                    self._apply(p.dst, node.handle(event, nxt))
            for name, node in list(self.nodes.items()):
                d = node.next_deadline()
                if d is not None and d <= nxt and self.nodes.get(name) is node:
                    self._apply(name, node.on_timer(nxt))
        self.clock.set(max(t, self.clock.now))

    def _next_instant(self) -> float | None:
        times = [p.at for p in self._queue[:1]]
        times += [d for n in self.nodes.values() if (d := n.next_deadline()) is not None]
        times += list(self.world.expiry.values())
        return min(times, default=None)

    # ------------------------------------------------------------ queries --
    def effects(self, name: str, kind: type[T]) -> list[tuple[float, T]]:
        return [(t, e) for t, n, e in self.log if n == name and isinstance(e, kind)]

    def times(
        self, name: str, kind: type[T], pred: Callable[[T], bool] = lambda _: True
    ) -> list[float]:
        return [t for t, e in self.effects(name, kind) if pred(e)]

    def sent(self, name: str) -> list[Datagram]:
        """Datagrams `name` put on the wire (one per message: the first medium's copy)."""
        seen: set[int] = set()
        out = []
        for d in self.wire:
            if d.src == name and id(d.message) not in seen:
                seen.add(id(d.message))
                out.append(d)
        return out

    # ------------------------------------------------------------ network --
    def _ifaces(self, name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.iface for m in self.configs[name].media))

    def _apply(self, name: str, effects: list[Effect]) -> None:
        now = self.clock.now
        for e in effects:
            self.log.append((now, name, e))
            if isinstance(e, SendMessage):
                self._transmit(name, e.message)
            elif isinstance(e, StartGroup | StopGroup | ProbeGroup):
                self._execute(name, e)
            elif isinstance(e, FenceNode):
                self._fence(name, e.node)
            elif isinstance(e, HandoverReady):
                self._save_handover(name, e)
            elif isinstance(e, KeepGroup):
                self.world.expiry.pop((name, e.key), None)
            elif isinstance(e, HandoverComplete):
                self.nodes.pop(name, None)  # the old process exits

    def _fence(self, name: str, target: str) -> None:
        """The power switch: the target machine is off when the answer comes."""
        w = self.world

        def answer() -> Event:
            if target in w.fence_fail:
                return FenceDone(target, FenceResult.BAD, "lab", "exit 1")
            w.fenced.append((name, target))
            self.crash(target)
            return FenceDone(target, FenceResult.OK, "lab")

        node = self.nodes.get(name)
        at = self.clock.now + w.fence_delay
        heapq.heappush(self._queue, _Pending(at, next(self._order), name, None, node, answer))

    def _save_handover(self, name: str, ready: HandoverReady) -> None:
        node = self.nodes[name]
        now = self.clock.now
        ok = name not in self.world.refuse_save
        if ok:
            for key in ready.keys:
                self.world.expiry[(name, key)] = now + ready.window_s
            generation = node.snapshot(now).generation
            self.records[name] = (ready, now, generation)
        answer = HandoverSaved(ok, "" if ok else "cannot write the record")
        at = now + self.world.save_delay
        heapq.heappush(self._queue, _Pending(at, next(self._order), name, answer, node))

    def _execute(self, name: str, effect: StartGroup | StopGroup | ProbeGroup) -> None:
        w = self.world
        match effect:
            case StartGroup():
                delay = w.start_delay
            case StopGroup():
                delay = w.stop_delay
            case ProbeGroup():
                delay = w.probe_delay
        delay += w.slow.get(name, 0.0)
        target = self.nodes.get(name)
        heapq.heappush(
            self._queue,
            _Pending(
                self.clock.now + delay,
                next(self._order),
                name,
                None,
                target,
                lambda: w.answer(name, effect),
            ),
        )

    def _transmit(self, src: str, message: Message) -> None:
        cfg = self.configs[src]
        data = self.encoders[src].encode(message, self.signers[src].sign, cfg.msgfmt)
        now = self.clock.now
        for iface in self._ifaces(src):
            self.wire.append(Datagram(now, src, iface, data, message))
            for dst in self.configs:
                if dst == src or (src, dst, iface) in self.cut:
                    continue
                extra = 0.0
                if self.shaper is not None:
                    shaped = self.shaper(src, dst, iface, message)
                    if shaped is None:
                        continue
                    extra = shaped
                delay = self.delay.get((src, dst), self.default_delay) + extra
                self._push(now + delay, dst, self._receive(dst, iface, data, src))

    def _receive(self, dst: str, iface: str, data: bytes, source: str) -> Event:
        try:
            decoded = self.decoders[dst].decode(data)
            self.signers[dst].verify(decoded)
        except WireError as exc:
            return PacketRejected(iface, exc.reason, source)
        return PacketIn(iface, decoded.message, source)

    def _push(self, at: float, dst: str, event: Event) -> None:
        heapq.heappush(self._queue, _Pending(at, next(self._order), dst, event))
