"""The engine drives the arbitrator through its port (io/ports.py ArbiterPort), over a fake etcd.

The core decides (core/arbitration.py); what is checked here is the driving:
requests reach the port, answers come back as events, the port closes at
shutdown, and a reload cannot change the arbitrator under a running node.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from enginetools import GROUP, FakeArbiter, Harness, config
from test_engine import run

from hbmon.config.model import ArbitratorSettings
from hbmon.core.arbevents import ClaimKey

KEY = GROUP.key
ARB = ArbitratorSettings(endpoints=("http://192.0.2.31:2379",))


def arbitrated(arbiter: FakeArbiter) -> Harness:
    """A one-node cluster with an arbitrator: comm-up with its first status."""
    return Harness(config(node="alpha", nodes=("alpha",), arbitrator=ARB), arbiter=arbiter)


def test_the_group_starts_only_once_its_key_is_won() -> None:
    async def main() -> None:
        arbiter = FakeArbiter()
        async with arbitrated(arbiter) as h:
            await h.start()
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
            assert arbiter.kinds()[:2] == ["GrantLease", "ClaimKey"]
            claims = [r for r in arbiter.requests if isinstance(r, ClaimKey)]
            assert [c.group for c in claims] == [KEY]
            assert claims[0].lease == 0x51  # under the lease the fake granted
            await h.until(lambda: "RenewLease" in arbiter.kinds(), "a renewal with a status")
            assert await asyncio.to_thread(h.sample, "hbmon_arbitrator_up") == 1
            assert await asyncio.to_thread(h.sample, "hbmon_arbitrator_keys_held") == 1
            assert f"Resource group {KEY}: key in etcd is ours (claimed under lease 51)" in h.lines

    run(main())


def test_an_unanswered_claim_keeps_the_group_stopped() -> None:
    async def main() -> None:
        arbiter = FakeArbiter(silent=(ClaimKey,))
        async with arbitrated(arbiter) as h:
            await h.start()
            await h.until(lambda: "ClaimKey" in arbiter.kinds(), "the claim")
            # Five more statuses (keepalive 0.2 s) without the key: nothing starts.
            sent = h.media.types().count("status")
            await h.until(lambda: h.media.types().count("status") >= sent + 5, "five beats")
            assert ("start", KEY) not in h.resources.ops
            assert await asyncio.to_thread(h.sample, "hbmon_arbitrator_keys_held") == 0

    run(main())


def test_sigterm_revokes_the_lease_after_the_release_and_closes_the_port() -> None:
    async def main() -> None:
        arbiter = FakeArbiter()
        async with arbitrated(arbiter) as h:
            await h.start()
            await h.until(lambda: ("start", KEY) in h.resources.ops, "the group started")
            h.signals.send_stop()
            assert h.task is not None
            assert await asyncio.wait_for(h.task, 10) == 0
            assert h.resources.ops[-1] == ("stop", KEY)
            assert arbiter.kinds()[-1] == "RevokeLease"
            assert h.media.types()[-1] == "shutdone"
            assert arbiter.closed

    run(main())


def test_a_reload_keeps_the_arbitrator_it_started_with() -> None:
    async def main() -> None:
        arbiter = FakeArbiter()
        async with arbitrated(arbiter) as h:
            await h.start()
            other = ArbitratorSettings(endpoints=("http://192.0.2.32:2379",))
            h.source.readings.append(replace(h.cfg, arbitrator=other))
            h.signals.send_reload()
            await h.until(lambda: "Configuration reloaded." in h.lines, "the reload")
            warning = "arbitrator settings changed: they apply when hbmon next starts"
            assert warning in h.lines
            (applied,) = h.resources.configs
            assert applied.arbitrator == ARB
            assert h.engine.config.arbitrator == ARB

    run(main())
