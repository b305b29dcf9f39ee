"""hbmon/io/etcd.py against a real etcd (Debian's etcd-server) on the host's loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from hbmon.io.etcd import EtcdClient, EtcdError, Owner, group_key, tls_context
from hbmon.testing.labetcd import EtcdCluster, free_port, loopback_members, make_pki

T = TypeVar("T")


def _require_etcd() -> None:
    if shutil.which("etcd") is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is not installed (scripts/setup.sh installs etcd-server)")
        pytest.skip("etcd is not installed (scripts/setup.sh installs etcd-server)")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    _require_etcd()
    cluster = EtcdCluster(loopback_members(3), tmp_path_factory.mktemp("etcd"))
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    _require_etcd()
    root = tmp_path_factory.mktemp("etcd-tls")
    members = loopback_members(1)
    cluster = EtcdCluster(members, root / "data", pki=make_pki(root / "pki", members, ["alpha"]))
    with cluster:
        yield cluster


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro()

    return asyncio.run(main())


def wait_until(probe: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_lease_grant_keepalive_revoke(plain: EtcdCluster) -> None:
    async def go() -> tuple[int, int, int]:
        c = EtcdClient(plain.endpoints, 2.0, None)
        try:
            lease, ttl = await c.grant(3)
            again = await c.keepalive(lease)
            await c.revoke(lease)
            gone = await c.keepalive(lease)
            return ttl, again, gone
        finally:
            await c.close()

    ttl, again, gone = run(go)
    assert ttl == 3
    assert again == 3
    assert gone == 0  # etcd no longer knows the lease


def test_claim_is_compare_and_set(plain: EtcdCluster) -> None:
    key = group_key("/t", "c1", "IPaddr::198.51.100.80/24/em1")
    mine, theirs = Owner("alpha", 7), Owner("beta", 3)

    async def go() -> None:
        c = EtcdClient(plain.endpoints, 2.0, None)
        try:
            la, _ = await c.grant(10)
            lb, _ = await c.grant(10)
            first = await c.claim(key, mine.encode(la), la)
            assert first.won
            second = await c.claim(key, theirs.encode(lb), lb)
            assert not second.won
            assert second.holder is not None
            assert Owner.decode(second.holder.value) == mine
            assert second.holder.lease == la
            stale = await c.replace(key, theirs.encode(lb), lb, second.holder.mod_revision - 1)
            assert not stale.won
            # Only the holder's own value releases the key.
            assert not await c.release(key, theirs.encode(lb))
            took = await c.replace(key, theirs.encode(lb), lb, second.holder.mod_revision)
            assert took.won
            now = await c.get(key)
            assert now is not None
            assert Owner.decode(now.value) == theirs
            assert now.lease == lb
            assert await c.release(key, theirs.encode(lb))
            assert await c.get(key) is None
            await c.revoke(la)
            await c.revoke(lb)
        finally:
            await c.close()

    run(go)


def test_expired_lease_frees_the_key(plain: EtcdCluster) -> None:
    key = group_key("/t", "c2", "g")

    async def claim_short() -> None:
        c = EtcdClient(plain.endpoints, 2.0, None)
        try:
            lease, _ = await c.grant(2)
            assert (await c.claim(key, b"x", lease)).won
        finally:
            await c.close()

    async def present() -> bool:
        c = EtcdClient(plain.endpoints, 2.0, None)
        try:
            return await c.get(key) is not None
        finally:
            await c.close()

    run(claim_short)
    assert run(present)
    wait_until(lambda: not run(present))


def test_a_dead_endpoint_is_skipped_within_the_deadline(plain: EtcdCluster) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once

    async def go() -> str:
        c = EtcdClient((dead, *plain.endpoints), 2.0, None)
        try:
            lease, _ = await c.grant(5)
            await c.revoke(lease)
            return c.last_endpoint
        finally:
            await c.close()

    assert run(go) == plain.endpoints[0].removeprefix("http://")


def test_killed_member_moves_calls_to_the_next(plain: EtcdCluster) -> None:
    first = plain.members[0]

    async def go() -> tuple[str, str]:
        c = EtcdClient(plain.endpoints, 3.0, None)
        try:
            lease, _ = await c.grant(10)
            before = c.last_endpoint  # an open connection to member 1 now
            plain.kill_member(first.name)
            await c.keepalive(lease)
            after = c.last_endpoint
            await c.revoke(lease)
            return before, after
        finally:
            await c.close()

    try:
        before, after = run(go)
    finally:
        plain.start_member(first.name)
    assert before == f"127.0.0.1:{first.client_port}"
    assert after != before


def test_no_member_reachable_raises_in_time() -> None:
    ends = tuple(f"http://127.0.0.1:{free_port()}" for _ in range(3))

    async def go() -> None:
        c = EtcdClient(ends, 0.5, None)
        try:
            await c.grant(5)
        finally:
            await c.close()

    started = time.monotonic()
    with pytest.raises(EtcdError, match=r"127\.0\.0\.1"):
        run(go)
    assert time.monotonic() - started < 5


def test_tls_with_client_certificate(secure: EtcdCluster) -> None:
    assert secure.pki is not None
    cert, key = secure.pki.client("alpha")

    async def go(ctx_cert: Path | None, ctx_key: Path | None, ca: Path | None) -> int:
        c = EtcdClient(secure.endpoints, 2.0, tls_context(ca, ctx_cert, ctx_key))
        try:
            lease, ttl = await c.grant(4)
            await c.revoke(lease)
            return ttl
        finally:
            await c.close()

    assert run(lambda: go(cert, key, secure.pki.ca)) == 4  # type: ignore[union-attr]
    with pytest.raises(EtcdError):  # etcd demands a client certificate
        run(lambda: go(None, None, secure.pki.ca))  # type: ignore[union-attr]
    with pytest.raises(EtcdError):  # the member's certificate is not from the system's CAs
        run(lambda: go(cert, key, None))


def test_owner_value_and_key_names() -> None:
    o = Owner("solr1", 42)
    assert Owner.decode(o.encode(0x1F)) == o
    assert Owner.decode(b"not json") is None
    assert Owner.decode(b'{"node": "x"}') is None
    assert group_key("/hbmon", "solr", "IPaddr::10.0.0.5/24/eth0") == (
        b"/hbmon/solr/groups/IPaddr%3A%3A10.0.0.5%2F24%2Feth0"
    )


def test_a_member_that_swallows_requests_is_skipped(plain: EtcdCluster) -> None:
    """Accepts the connection, never answers (a cut-off member behind a live socket)."""
    import socket

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    dead = f"http://127.0.0.1:{hole.getsockname()[1]}"

    async def go() -> tuple[str, str]:
        c = EtcdClient((dead, *plain.endpoints), 1.0, None)
        try:
            lease, _ = await c.grant(5)  # the hole gets 60 % of the deadline, then member 1
            first = c.last_endpoint
            started = time.monotonic()
            await c.keepalive(lease)  # straight to the member that answered
            assert time.monotonic() - started < 0.5
            await c.revoke(lease)
            return first, c.last_endpoint
        finally:
            await c.close()

    try:
        first, last = run(go)
    finally:
        hole.close()
    member = plain.endpoints[0].removeprefix("http://")
    assert first == member
    assert last == member
