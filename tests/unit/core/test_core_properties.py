"""Random event sequences: the node never raises and its invariants always hold.

Invariants, checked after every call at that call's `now`:
- everything due has been handled: next_deadline() is None or later than now;
- no peer is UP/ACTIVE, no link UP, no ping node PING past its dead interval;
- counters never decrease; every (iface, reason) drop series exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from coretools import UUIDS, WALL_EPOCH, make_config, other, shutdone, status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbmon.config.model import Config, PingNode
from hbmon.core.events import (
    Event,
    LinkStatus,
    LoadAverage,
    NodeStatus,
    PacketIn,
    PacketRejected,
    PingResult,
    Shutdown,
)
from hbmon.core.node import Node
from hbmon.core.snapshot import Snapshot
from hbmon.errors import DropReason
from hbmon.wire.builders import EchoEntry
from hbmon.wire.message import Message

PINGS = (PingNode("10.0.0.254", ("10.0.0.254",)), PingNode("gw", ("10.0.0.1", "10.0.0.2"), True))
CONFIGS = (
    make_config(nodes=("alpha", "beta", "gamma"), ping_nodes=PINGS, deadping_ms=4000),
    make_config(nodes=("alpha", "beta"), ifaces=("eth0",), keepalive_ms=500, deadtime_ms=3000,
                warntime_ms=1500, initdead_ms=6000),
)  # fmt: skip


@dataclass(frozen=True)
class Advance:
    seconds: float
    exact: bool  # the driver wakes at each deadline, or once, late


@dataclass(frozen=True)
class Reconfigure:
    index: int


@dataclass(frozen=True)
class Beat:
    """A status from `src` with seq relative to the last one we accepted (a plausible peer)."""

    src: str
    step: int
    iface: str
    st: str


Op = Event | Advance | Reconfigure | Beat

ifaces = st.sampled_from(["eth0", "eth1", "eth9"])
peers = st.sampled_from(["beta", "gamma", "alpha", "delta"])
seqs = st.integers(0, 700)
gens = st.sampled_from([6, 7, 7, 7, 8])


def _echo() -> st.SearchStrategy[tuple[EchoEntry, ...]]:
    entry = st.builds(
        EchoEntry, st.just("alpha"), ifaces, st.integers(1, 60), st.integers(0, 10**7)
    )
    return st.lists(entry, max_size=2).map(tuple)


messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        lambda src, seq, hg, s, dt, echo: status(src, seq, hg=hg, st=s, dt_ms=dt, echo=echo),
        peers,
        seqs,
        gens,
        st.sampled_from(["init", "up", "active", "dead", "x"]),
        st.sampled_from([0, 1000, 3000, 10000, 12000]),
        _echo(),
    ),
    st.builds(lambda src, seq, hg: shutdone(src, seq, hg=hg), peers, seqs, gens),
    st.builds(
        lambda t, src, seq, hg: other(t, src, seq, hg),
        st.sampled_from(["resource", "NS_ackmsg", "starting", ""]),
        peers,
        st.one_of(st.none(), seqs),
        st.one_of(st.none(), gens),
    ),
)

ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Advance, st.floats(0, 8, allow_nan=False), st.booleans()),
    st.builds(lambda i, m: PacketIn(i, m, "10.0.0.2"), ifaces, messages),
    st.builds(lambda i, m: PacketIn(i, m, "10.0.0.2"), ifaces, messages),
    st.builds(lambda i, m: PacketIn(i, m, "10.0.0.2"), ifaces, messages),
    st.builds(PacketRejected, ifaces, st.sampled_from(list(DropReason)), st.just("10.0.0.9")),
    st.builds(
        PingResult,
        st.sampled_from(["10.0.0.254", "gw", "nope"]),
        st.sampled_from(["10.0.0.254", "10.0.0.1", "10.0.0.2"]),
        st.one_of(st.none(), st.floats(0, 0.5)),
    ),
    st.builds(LoadAverage, st.text(max_size=20)),
    st.builds(Reconfigure, st.integers(0, len(CONFIGS) - 1)),
    *[
        st.builds(
            Beat,
            st.sampled_from(["beta", "gamma"]),
            st.integers(-2, 4),
            st.sampled_from(["eth0", "eth1"]),
            st.sampled_from(["up", "active"]),
        )
    ]
    * 4,
    st.just(Shutdown()),
)


def _counters(s: Snapshot) -> dict[tuple[str, ...], int]:
    out: dict[tuple[str, ...], int] = {("seq_sent",): s.seq_sent}
    for p in s.peers:
        out[("late_w", p.name)] = p.late_warntime
        out[("late_d", p.name)] = p.late_deadtime
        out[("lost", p.name)] = p.lost_packets
        out[("reordered", p.name)] = p.reordered_packets
        out[("restarts", p.name)] = p.restarts
        out[("heals", p.name)] = p.partition_heals
        for a, b, r, n in p.transitions:
            out[("tr", p.name, a, b, r)] = n
    for lk in s.links:
        out[("link", lk.node, lk.iface)] = lk.transitions
    for pn in s.ping_nodes:
        out[("ping", pn.name)] = pn.transitions
        for a in pn.addresses:
            out[("replies", pn.name, a.address)] = a.replies
            out[("timeouts", pn.name, a.address)] = a.timeouts
    for iface, reason, n in s.dropped:
        out[("drop", iface, reason)] = n
    return out


def _check(
    node: Node, config: Config, now: float, prev: dict[tuple[str, ...], int]
) -> dict[tuple[str, ...], int]:
    d = node.next_deadline()
    assert d is None or d > now
    s = node.snapshot(now)
    intervals = {}
    for p in s.peers:
        intervals[p.name] = p.dead_interval_s
        if p.status in (NodeStatus.UP, NodeStatus.ACTIVE):
            assert p.last_heard_at is not None
            assert p.last_heard_at + p.dead_interval_s > now
        assert p.status is not NodeStatus.PING
    for lk in s.links:
        if lk.status is LinkStatus.UP:
            assert lk.last_heard_at is not None
            assert lk.last_heard_at + intervals[lk.node] > now
    deadping = config.timers.deadping_ms / 1000
    for pn in s.ping_nodes:
        if pn.status is NodeStatus.PING:
            assert pn.last_reply_at is not None
            assert pn.last_reply_at + deadping > now
    if s.comm_up:
        assert s.local_status in (NodeStatus.ACTIVE, NodeStatus.DEAD)
    reasons = {r.value for r in DropReason}
    for iface in {m.iface for m in config.media}:
        assert {r for i, r, _ in s.dropped if i == iface} == reasons
    cur = _counters(s)
    for key, n in prev.items():
        if key in cur:
            assert cur[key] >= n, key
    return cur


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=60))
def test_random_events_keep_invariants(script: list[Op]) -> None:
    config = CONFIGS[0]
    now = 0.0
    node = Node(config, generation=3, uuid=UUIDS["alpha"], now=now, wall_epoch=WALL_EPOCH)
    node.start(now)
    seen = _check(node, config, now, {})
    for op in script:
        if isinstance(op, Advance):
            target = now + op.seconds
            if op.exact:
                while (d := node.next_deadline()) is not None and d <= target:
                    now = d
                    node.on_timer(now)
                    seen = _check(node, config, now, seen)
            now = target
            node.on_timer(now)
        elif isinstance(op, Beat):
            peer = node.snapshot(now).peer(op.src)
            last = peer.last_seq if peer is not None and peer.last_seq is not None else 0
            seq = max(0, last + op.step)
            node.handle(PacketIn(op.iface, status(op.src, seq, hg=7, st=op.st), "x"), now)
        elif isinstance(op, Reconfigure):
            config = CONFIGS[op.index]
            node.reconfigure(config, now)
        else:
            node.handle(op, now)
        seen = _check(node, config, now, seen)
