"""The arbitrator's timing rule (docs/arbitrator.md), derived from the configuration.

The settings and their defaults are in config/model.py (`ArbitratorSettings`,
`default_lease_ttl_ms`, the ARBITRATOR_* and ETCD_* constants); this is what
they mean together: how long a lease counts here, how long a peer's
confirmation does, and the rules config check applies (config/arbcheck.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from hbmon.config.model import (
    ARBITRATOR_CLOCK_DRIFT,
    ARBITRATOR_RELEASE_LEAD_MS,
    ETCD_EXPIRY_LAG_MS,
    ETCD_TTL_UNIT_MS,
    ArbitratorSettings,
    Config,
    Timers,
    default_lease_ttl_ms,
)


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """The arbitrator's timing rule, in one place (Patroni's `loop_wait + 2 *
    retry_timeout <= ttl`, made exact for renewals sent with every heartbeat).

    After a renewal sent at `t` succeeds, etcd keeps the lease at least until
    `t + granted TTL` on its clock, so at least `t + TTL x (1 - drift)` on ours.
    The owner must have its addresses down by then; it starts releasing
    `release_lead` earlier:

        release at  t + hold_s(TTL),  hold_s(TTL) = TTL x (1 - drift) - release_lead

    The next renewal leaves `renew` (= keepalive) after `t` and is answered (or
    given up) `request_timeout` later. One failed renewal must not be enough to
    release, so the configuration is refused unless

        renew + request_timeout <= hold_s(TTL)

    And for a dead owner's key to be gone when its peer declares it dead (the
    failover then waits for nothing but deadtime), a warning unless

        TTL + ETCD_EXPIRY_LAG <= deadtime
    """

    ttl_ms: int
    renew_ms: int
    request_timeout_ms: int
    deadtime_ms: int
    release_lead_ms: int = ARBITRATOR_RELEASE_LEAD_MS
    drift: float = ARBITRATOR_CLOCK_DRIFT

    @classmethod
    def of(cls, timers: Timers, arb: ArbitratorSettings) -> LeaseTiming:
        ttl = arb.lease_ttl_ms
        return cls(
            ttl_ms=default_lease_ttl_ms(timers.deadtime_ms) if ttl is None else ttl,
            renew_ms=timers.keepalive_ms,
            request_timeout_ms=arb.request_timeout_ms,
            deadtime_ms=timers.deadtime_ms,
        )

    @property
    def ttl_s(self) -> int:
        """What is asked of etcd (whole seconds)."""
        return max(1, self.ttl_ms // ETCD_TTL_UNIT_MS)

    def hold_s(self, granted_ttl_s: float) -> float:
        """How long after a successful renewal was sent the owner may keep its groups."""
        return granted_ttl_s * (1 - self.drift) - self.release_lead_ms / 1000

    def failsafe_s(self) -> float:
        """How long after our beat that the peer acknowledged we may keep a group on
        the peer's word alone: the peer cannot declare us dead sooner than deadtime
        after that beat (the same drift and lead as for the lease)."""
        return self.deadtime_ms / 1000 * (1 - self.drift) - self.release_lead_ms / 1000

    def renewal_fits(self) -> bool:
        return (self.renew_ms + self.request_timeout_ms) / 1000 <= self.hold_s(self.ttl_s)

    def key_gone_by_deadtime(self) -> bool:
        return self.ttl_s * ETCD_TTL_UNIT_MS + ETCD_EXPIRY_LAG_MS <= self.deadtime_ms


def lease_timing(config: Config) -> LeaseTiming | None:
    """The arbitrator's timing (None without one)."""
    if config.arbitrator is None:
        return None
    return LeaseTiming.of(config.timers, config.arbitrator)
