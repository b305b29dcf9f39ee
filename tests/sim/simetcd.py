"""A simulated etcd for the ownership sims: leases, compare-and-set keys, reachability.

`FakeEtcd` keeps leases and keys the way etcd 3.4 does where it matters to the
arbitrator: a lease lives TTL after the last renewal etcd processed, and is
found expired only on etcd's 500 ms scan (ETCD_EXPIRY_LAG_MS); its keys go
with it. `ArbSim` is `Sim` whose nodes' arbitrator requests are answered by it
after a round trip, or fail after the request timeout when the node cannot
reach etcd (`cut_etcd`) or etcd is down (`etcd.down`).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass, field

from simnet import Sim, _Pending
from simowners import A, B, rconfig

from hbmon.config.model import ETCD_EXPIRY_LAG_MS, ArbitratorSettings, AutoFailback, Config
from hbmon.core.arbevents import (
    ArbiterAnswer,
    ArbiterFailed,
    ArbiterRequest,
    ClaimKey,
    GrantLease,
    KeyClaimed,
    KeyReleased,
    LeaseGranted,
    LeaseRenewed,
    ReleaseKey,
    RenewLease,
    RevokeLease,
)
from hbmon.core.events import Effect

RTT = 0.004  # a request's round trip to etcd
SCAN = ETCD_EXPIRY_LAG_MS / 1000


@dataclass
class Lease:
    ttl: int
    renewed_at: float

    def expired(self, now: float) -> bool:
        """etcd finds it expired at its first scan after TTL ran out."""
        return now >= math.ceil((self.renewed_at + self.ttl) / SCAN) * SCAN


@dataclass
class FakeEtcd:
    down: bool = False
    min_ttl: int = 1
    leases: dict[int, Lease] = field(default_factory=dict)
    # group -> (node, generation, lease, revision)
    keys: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    revision: int = 1
    _ids: int = 0x100

    def _expire(self, now: float) -> None:
        for lid in [lid for lid, lease in self.leases.items() if lease.expired(now)]:
            del self.leases[lid]
        self.keys = {k: v for k, v in self.keys.items() if v[2] in self.leases}

    def holder(self, group: str, now: float) -> str | None:
        self._expire(now)
        v = self.keys.get(group)
        return v[0] if v else None

    def answer(self, node: str, generation: int, req: ArbiterRequest, now: float) -> ArbiterAnswer:
        self._expire(now)
        match req:
            case GrantLease(request=r, ttl_s=ttl):
                self._ids += 1
                granted = max(ttl, self.min_ttl)
                self.leases[self._ids] = Lease(granted, now)
                return LeaseGranted(r, self._ids, granted)
            case RenewLease(request=r, lease=lid):
                lease = self.leases.get(lid)
                if lease is None:
                    return LeaseRenewed(r, 0)
                lease.renewed_at = now
                return LeaseRenewed(r, lease.ttl)
            case ClaimKey(request=r, group=group, lease=lid, over=over):
                cur = self.keys.get(group)
                fits = cur is None if over is None else cur is not None and cur[3] == over
                if fits and lid in self.leases:
                    self.revision += 1
                    self.keys[group] = (node, generation, lid, self.revision)
                    return KeyClaimed(r, True)
                if cur is None:
                    return KeyClaimed(r, False, None, None, 0)
                return KeyClaimed(r, False, cur[0], cur[1], cur[3])
            case ReleaseKey(request=r, group=group, lease=lid):
                cur = self.keys.get(group)
                if cur is not None and cur[0] == node and cur[2] == lid:
                    del self.keys[group]
                    return KeyReleased(r, True)
                return KeyReleased(r, False)
            case RevokeLease(request=r, lease=lid):
                self.leases.pop(lid, None)
                self._expire(now)
                return KeyReleased(r, True)


class ArbSim(Sim):
    def __init__(self, configs: dict[str, Config], **kw: float) -> None:
        super().__init__(configs, **kw)
        self.etcd = FakeEtcd()
        self.cut_etcd: set[str] = set()  # nodes that cannot reach etcd
        self.generations: dict[str, int] = {}

    def start(self, name: str, *, generation: int = 100):  # type: ignore[no-untyped-def]
        self.generations[name] = generation
        return super().start(name, generation=generation)

    def _apply(self, name: str, effects: list[Effect]) -> None:
        super()._apply(name, effects)
        for e in effects:
            if isinstance(e, GrantLease | RenewLease | ClaimKey | ReleaseKey | RevokeLease):
                self._ask(name, e)

    def _ask(self, name: str, req: ArbiterRequest) -> None:
        target = self.nodes.get(name)
        cfg = self.configs[name].arbitrator
        assert cfg is not None
        timeout = cfg.request_timeout_ms / 1000
        gen = self.generations[name]
        now = self.clock.now

        def answer() -> ArbiterAnswer:
            if self.etcd.down or name in self.cut_etcd:
                return ArbiterFailed(req.request, "timed out")
            return self.etcd.answer(name, gen, req, now + RTT / 2)

        unreachable = self.etcd.down or name in self.cut_etcd
        at = now + (timeout if unreachable else RTT)
        heapq.heappush(self._queue, _Pending(at, next(self._order), name, None, target, answer))

    def vip_owners(self, key: str) -> set[str]:
        """Machines where the group really runs."""
        return set(self.world.on(key))


def arbconfig(node: str, *, lease_ttl_ms: int | None = None, **kw: object) -> Config:
    timers = {"keepalive_ms": 500, "deadtime_ms": 3000, "warntime_ms": 2000, "initdead_ms": 6000}
    timers.update({k: v for k, v in kw.items() if k.endswith("_ms")})  # type: ignore[misc]
    rest = {k: v for k, v in kw.items() if not k.endswith("_ms")}
    rest.setdefault("auto_failback", AutoFailback.OFF)
    cfg = rconfig(node, **timers, **rest)  # type: ignore[arg-type]
    arb = ArbitratorSettings(endpoints=("http://etcd.sim:2379",), lease_ttl_ms=lease_ttl_ms)
    return dataclasses.replace(cfg, arbitrator=arb)


def arbpair(**kw: object) -> ArbSim:
    return ArbSim({A: arbconfig(A, **kw), B: arbconfig(B, **kw)})
