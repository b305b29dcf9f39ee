"""io/arbiter.py: the core's requests run against a real etcd on loopback, answers back."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator

import pytest

from hbmon.config.leasetiming import LeaseTiming
from hbmon.config.model import ArbitratorSettings, Timers
from hbmon.core.arbevents import (
    ArbiterAnswer,
    ArbiterFailed,
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
from hbmon.core.arbitration import Arbitration
from hbmon.io.arbiter import ArbiterDriver
from hbmon.io.etcd import EtcdClient, Owner, group_key
from hbmon.testing.labetcd import EtcdCluster, free_port, loopback_members

G = "IPaddr::10.0.0.10/24/eth0"
NODES = ("alpha", "beta")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    if shutil.which("etcd") is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is not installed (scripts/setup.sh installs etcd-server)")
        pytest.skip("etcd is not installed")
    with EtcdCluster(loopback_members(1), tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


async def ask(driver_args: tuple[ArbitratorSettings, str, int], *requests: object) -> list[object]:
    """Run `requests` through a driver, one after the other; their answers in order."""
    settings, me, generation = driver_args
    answers: asyncio.Queue[ArbiterAnswer] = asyncio.Queue()
    d = ArbiterDriver(settings, NODES, me, generation)
    d.start(answers.put_nowait)
    out: list[object] = []
    try:
        for r in requests:
            d.submit(r)  # type: ignore[arg-type]
            out.append(await asyncio.wait_for(answers.get(), 5))
    finally:
        await d.close()
    return out


def settings(etcd: EtcdCluster, cluster: str) -> ArbitratorSettings:
    return ArbitratorSettings(endpoints=etcd.endpoints, cluster=cluster)


def test_grant_claim_renew_release_revoke(etcd: EtcdCluster) -> None:
    s = settings(etcd, "t1")

    async def go() -> None:
        (granted,) = await ask((s, "alpha", 7), GrantLease(1, 3))
        assert isinstance(granted, LeaseGranted)
        lease = granted.lease
        answers = await ask(
            (s, "alpha", 7),
            ClaimKey(2, G, lease),
            RenewLease(3, lease),
            ReleaseKey(4, G, lease),
            ReleaseKey(5, G, lease),
            RevokeLease(6, lease),
            RenewLease(7, lease),
        )
        assert answers == [
            KeyClaimed(2, True),
            LeaseRenewed(3, 3),
            KeyReleased(4, True),
            KeyReleased(5, False),  # gone already
            KeyReleased(6, True),
            LeaseRenewed(7, 0),  # revoked: etcd no longer knows it
        ]

    asyncio.run(go())


def test_a_conflict_names_the_holder_and_a_restart_replaces_its_own_key(
    etcd: EtcdCluster,
) -> None:
    s = settings(etcd, "t2")

    async def go() -> None:
        (a,) = await ask((s, "alpha", 7), GrantLease(1, 10))
        (b,) = await ask((s, "beta", 3), GrantLease(1, 10))
        assert isinstance(a, LeaseGranted)
        assert isinstance(b, LeaseGranted)
        (won,) = await ask((s, "alpha", 7), ClaimKey(2, G, a.lease))
        assert won == KeyClaimed(2, True)
        (lost,) = await ask((s, "beta", 3), ClaimKey(2, G, b.lease))
        assert isinstance(lost, KeyClaimed)
        assert (lost.won, lost.holder, lost.generation) == (False, "alpha", 7)
        # alpha restarts (generation 8, a new lease): the core decides to replace
        # its own older key at the revision etcd reported.
        (a2,) = await ask((s, "alpha", 8), GrantLease(1, 10))
        assert isinstance(a2, LeaseGranted)
        core = Arbitration(
            "alpha",
            8,
            LeaseTiming.of(Timers(keepalive_ms=500, deadtime_ms=3000), s),
            0.5,
        )
        core.bind({})
        (grant,) = core.start(0.0)
        assert isinstance(grant, GrantLease)
        core.answer(LeaseGranted(grant.request, a2.lease, 10), 0.01)
        (claim,) = core.follow([_Group(G)], 0.02)
        assert isinstance(claim, ClaimKey)
        (first,) = await ask((s, "alpha", 8), claim)
        (replace,) = core.answer(first, 0.03)  # type: ignore[arg-type]
        assert isinstance(replace, ClaimKey)
        assert replace.over is not None
        (second,) = await ask((s, "alpha", 8), replace)
        assert second == KeyClaimed(replace.request, True)
        assert core.may_start(G, 0.04) is False  # the answer is not fed yet
        core.answer(second, 0.04)  # type: ignore[arg-type]
        assert core.may_start(G, 0.05)
        c = EtcdClient(s.endpoints, 2.0, None)
        try:
            held = await c.get(group_key(s.prefix, "t2", G))
        finally:
            await c.close()
        assert held is not None
        assert Owner.decode(held.value) == Owner("alpha", 8)
        assert held.lease == a2.lease

    asyncio.run(go())


def test_unreachable_etcd_answers_failed_in_time() -> None:
    s = ArbitratorSettings(endpoints=(f"http://127.0.0.1:{free_port()}",), request_timeout_ms=300)

    async def go() -> None:
        (answer,) = await ask((s, "alpha", 7), RenewLease(9, 0x1))
        assert isinstance(answer, ArbiterFailed)
        assert answer.request == 9

    asyncio.run(go())


class _Group:
    def __init__(self, key: str) -> None:
        self.key, self.want, self.held, self.busy = key, True, False, False
