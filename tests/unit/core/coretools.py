"""Helpers for core tests: a fake clock, configs, and peer messages built by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from hbmon.config.model import (
    AuthConfig,
    AuthKey,
    AuthMethod,
    BcastMedium,
    Config,
    PingNode,
    Timers,
)
from hbmon.core.events import Effect
from hbmon.wire import builders
from hbmon.wire.builders import EchoEntry
from hbmon.wire.message import Message

UUIDS = {name: bytes([i + 1]) * 16 for i, name in enumerate(("alpha", "beta", "gamma"))}
WALL_EPOCH = 1_700_000_000.0

T = TypeVar("T")


@dataclass
class FakeClock:
    """Monotonic time for tests; it only moves when told to."""

    now: float = 0.0

    def advance(self, seconds: float) -> float:
        assert seconds >= 0
        self.now += seconds
        return self.now

    def set(self, at: float) -> float:
        assert at >= self.now, (at, self.now)
        self.now = at
        return self.now


def make_config(
    node: str = "alpha",
    nodes: tuple[str, ...] = ("alpha", "beta"),
    *,
    keepalive_ms: int = 1000,
    deadtime_ms: int = 10000,
    warntime_ms: int = 5000,
    initdead_ms: int = 20000,
    deadping_ms: int | None = None,
    ifaces: tuple[str, ...] = ("eth0", "eth1"),
    ping_nodes: tuple[PingNode, ...] = (),
    max_rexmit_delay_ms: int = 250,
) -> Config:
    return Config(
        node=node,
        nodes=nodes,
        timers=Timers(
            keepalive_ms=keepalive_ms,
            deadtime_ms=deadtime_ms,
            warntime_ms=warntime_ms,
            initdead_ms=initdead_ms,
            deadping_ms=deadtime_ms if deadping_ms is None else deadping_ms,
        ),
        udpport=694,
        media=tuple(BcastMedium(i, 694) for i in ifaces),
        ping_nodes=ping_nodes,
        auth=AuthConfig(active=1, keys=(AuthKey(1, AuthMethod.SHA1, b"testkey"),)),
        resources=(),
        max_rexmit_delay_ms=max_rexmit_delay_ms,
    )


def status(
    src: str = "beta",
    seq: int = 1,
    *,
    hg: int = 7,
    st: str = "up",
    dt_ms: int = 10000,
    echo: tuple[EchoEntry, ...] = (),
) -> Message:
    return builders.status(
        st=st,
        dt_ms=dt_ms,
        src=src,
        srcuuid=UUIDS.get(src, bytes(16)),
        seq=seq,
        hg=hg,
        ts=0x6553F100,
        ld="n/a",
        ttl=3,
        extra=(builders.encode_echo(echo),) if echo else (),
    )


def shutdone(src: str = "beta", seq: int = 1, *, hg: int = 7) -> Message:
    return builders.shutdone(
        src=src, srcuuid=UUIDS.get(src, bytes(16)), seq=seq, hg=hg, ts=0x6553F100, ld="n/a", ttl=3
    )


def other(t: str, src: str = "beta", seq: int | None = 1, hg: int | None = 7) -> Message:
    pairs: list[tuple[str, str]] = [("t", t), ("src", src)]
    if seq is not None:
        pairs.append(("seq", format(seq, "x")))
    if hg is not None:
        pairs.append(("hg", format(hg, "x")))
    return Message.build(*pairs)


def of_type(effects: list[Effect], kind: type[T]) -> list[T]:
    return [e for e in effects if isinstance(e, kind)]
