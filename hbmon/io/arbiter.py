"""Runs the core's arbitrator requests against etcd and feeds the answers back.

Each request (core/arbevents.py) becomes one task: one etcd call under the
request timeout (io/etcd.py), then exactly one answer event — the result, or
`ArbiterFailed` with the reason. It is the engine's `ArbiterPort`
(io/ports.py); hbmon/daemon.py imports this module only when an arbitrator is
configured, so an agent without one never loads the etcd client.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from hbmon.config.model import ArbitratorSettings
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
from hbmon.errors import StartupError
from hbmon.io.etcd import EtcdClient, EtcdError, Owner, group_key, tls_context


class ArbiterDriver:
    """One etcd client for this node's lease and keys; StartupError if its TLS files
    cannot be used."""

    def __init__(
        self,
        settings: ArbitratorSettings,
        nodes: tuple[str, ...],
        me: str,
        generation: int,
    ) -> None:
        tls: ssl.SSLContext | None = None
        if any(u.startswith("https://") for u in settings.endpoints):
            try:
                tls = tls_context(settings.ca, settings.cert, settings.key)
            except (OSError, ssl.SSLError) as exc:
                raise StartupError(f"arbitrator TLS files cannot be used: {exc}") from exc
        self._client = EtcdClient(settings.endpoints, settings.request_timeout_ms / 1000, tls)
        self._prefix = settings.prefix
        self._cluster = settings.cluster_name(nodes)
        self._me = Owner(me, generation)
        self._deliver: Callable[[ArbiterAnswer], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, deliver: Callable[[ArbiterAnswer], None]) -> None:
        self._deliver = deliver

    def submit(self, request: ArbiterRequest) -> None:
        assert self._deliver is not None, "submit before start"
        task = asyncio.get_running_loop().create_task(self._run(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.close()

    async def _run(self, request: ArbiterRequest) -> None:
        try:
            answer = await self._call(request)
        except EtcdError as exc:
            answer = ArbiterFailed(request.request, str(exc))
        assert self._deliver is not None
        self._deliver(answer)

    def _key(self, group: str) -> bytes:
        return group_key(self._prefix, self._cluster, group)

    async def _call(self, request: ArbiterRequest) -> ArbiterAnswer:
        c = self._client
        match request:
            case GrantLease(request=r, ttl_s=ttl):
                lease, granted = await c.grant(ttl)
                return LeaseGranted(r, lease, granted)
            case RenewLease(request=r, lease=lease):
                return LeaseRenewed(r, await c.keepalive(lease))
            case ClaimKey(request=r, group=group, lease=lease, over=over):
                value = self._me.encode(lease)
                if over is None:
                    got = await c.claim(self._key(group), value, lease)
                else:
                    got = await c.replace(self._key(group), value, lease, over)
                if got.won:
                    return KeyClaimed(r, True)
                holder = Owner.decode(got.holder.value) if got.holder else None
                return KeyClaimed(
                    r,
                    False,
                    holder.node if holder else None,
                    holder.generation if holder else None,
                    got.holder.mod_revision if got.holder else 0,
                )
            case ReleaseKey(request=r, group=group, lease=lease):
                released = await c.release(self._key(group), self._me.encode(lease))
                return KeyReleased(r, released)
            case RevokeLease(request=r, lease=lease):
                await c.revoke(lease)
                return KeyReleased(r, True)
