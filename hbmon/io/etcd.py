"""A small etcd v3 client: the JSON gateway over HTTP/1.1, on asyncio, stdlib only.

Why not a client library: etcd3gw is synchronous (`requests`), so every lease
renewal would sit in a thread pool where a stuck request cannot be abandoned on
time; aetcd speaks gRPC and brings grpcio (tens of MiB resident, a thread of
its own). hbmon needs six calls — grant, keep alive and revoke a lease, a
compare-and-set transaction, a range and a guarded delete — each with a hard
deadline, which the gateway every etcd 3.4+ serves (`/v3/...`) gives over one
plain HTTP/1.1 connection. Python's `ssl` does the TLS, client certificates
included. Nothing here is imported by an agent without an arbitrator.

Every call runs under one deadline. A member that refuses or breaks the
connection is left for the next endpoint at once, within the same deadline; one
that does not answer gets at most FIRST_TRY_SHARE of it. The endpoint that
answered last is tried first next time, and after a failure the next one is.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit


class EtcdError(Exception):
    """etcd could not be reached or answered something this client cannot use."""


# Responses of this API are a few hundred bytes; anything far larger is not etcd.
MAX_RESPONSE = 1 << 20
_HEADER_LIMIT = 64 * 1024
# Of a call's deadline, the part the first member tried may use when others exist.
FIRST_TRY_SHARE = 0.6
# What one attempt at one member may end in, besides an answer (ssl.SSLError and
# asyncio.IncompleteReadError are among them).
_FAILURES = (OSError, EOFError, EtcdError, asyncio.LimitOverrunError, TimeoutError, ValueError)


@dataclass(frozen=True, slots=True)
class Holder:
    """A key as etcd holds it: its value, the lease it lives under, its revision."""

    value: bytes
    lease: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A compare-and-set's outcome: `won`, or who holds the key instead (None: nobody,
    the key vanished between the compare and the read)."""

    won: bool
    holder: Holder | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ValueError(f"etcd endpoint [{url}] must be http(s)://HOST:PORT")
        return cls(parts.scheme, parts.hostname, parts.port)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def tls_context(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A client context: the members' certificates checked against `ca` (the system's
    CAs when None), this node's certificate presented when given."""
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Conn:
    """One HTTP/1.1 connection to one member, reused while it stays healthy."""

    def __init__(
        self, endpoint: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.endpoint = endpoint
        self._reader = reader
        self._writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes, bool]:
        """(status, body, keep the connection)."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.endpoint.authority}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        self._writer.write(head + body)
        await self._writer.drain()
        raw = await self._reader.readuntil(b"\r\n\r\n")
        if len(raw) > _HEADER_LIMIT:
            raise EtcdError("response headers too long")
        lines = raw.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise EtcdError(f"not an HTTP response: {lines[0][:80]!r}") from None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        keep = headers.get("connection") != "close"
        if headers.get("transfer-encoding") == "chunked":
            return status, await self._chunked(), keep
        length = int(headers.get("content-length", "-1"))
        if length < 0:
            data = await self._reader.read(MAX_RESPONSE)
            return status, data, False
        if length > MAX_RESPONSE:
            raise EtcdError("response too large")
        return status, await self._reader.readexactly(length), keep

    async def _chunked(self) -> bytes:
        out = bytearray()
        while True:
            size_line = await self._reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise EtcdError("bad chunk size") from None
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # no trailers from the gateway
                return bytes(out)
            if len(out) + size > MAX_RESPONSE:
                raise EtcdError("response too large")
            out += await self._reader.readexactly(size)
            await self._reader.readexactly(2)


class EtcdClient:
    """The calls hbmon makes; each raises EtcdError when no member answers in time."""

    def __init__(
        self, endpoints: list[str] | tuple[str, ...], timeout_s: float, tls: ssl.SSLContext | None
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self._endpoints = [Endpoint.parse(u) for u in endpoints]
        self._timeout = timeout_s
        self._tls = tls
        self._first = 0  # index of the endpoint that answered last
        self._idle: list[_Conn] = []
        self.last_endpoint: str = ""

    async def close(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()

    # ------------------------------------------------------------ calls --
    async def grant(self, ttl_s: int) -> tuple[int, int]:
        """A new lease: (id, the TTL etcd granted; it may raise a short one to its minimum)."""
        r = await self._call("/v3/lease/grant", {"TTL": ttl_s})
        if r.get("error"):
            raise EtcdError(f"lease grant refused: {r['error']}")
        return int(r["ID"]), int(r.get("TTL", 0))

    async def keepalive(self, lease: int) -> int:
        """Renew `lease`: the TTL it has again, 0 when etcd no longer knows it."""
        r = await self._call("/v3/lease/keepalive", {"ID": str(lease)})
        result = r.get("result")
        if not isinstance(result, dict):
            raise EtcdError(f"lease keepalive: unexpected answer {str(r)[:120]}")
        return int(result.get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        await self._call("/v3/lease/revoke", {"ID": str(lease)})

    async def claim(self, key: bytes, value: bytes, lease: int) -> Claim:
        """Put `key` under `lease` if nobody has it (create revision 0)."""
        cmp = {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        return await self._cas(key, value, lease, cmp)

    async def replace(self, key: bytes, value: bytes, lease: int, mod_revision: int) -> Claim:
        """Put `key` under `lease` if it is still as read at `mod_revision`."""
        cmp = {
            "key": b64(key),
            "target": "MOD",
            "result": "EQUAL",
            "mod_revision": str(mod_revision),
        }
        return await self._cas(key, value, lease, cmp)

    async def release(self, key: bytes, value: bytes) -> bool:
        """Delete `key` if it still holds `value` (ours); False if it holds something else."""
        body = {
            "compare": [
                {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)}
            ],
            "success": [{"request_delete_range": {"key": b64(key)}}],
        }
        r = await self._call("/v3/kv/txn", body)
        return bool(r.get("succeeded"))

    async def get(self, key: bytes) -> Holder | None:
        r = await self._call("/v3/kv/range", {"key": b64(key)})
        return _holder(r)

    async def _cas(self, key: bytes, value: bytes, lease: int, cmp: dict[str, str]) -> Claim:
        body = {
            "compare": [cmp],
            "success": [
                {"request_put": {"key": b64(key), "value": b64(value), "lease": str(lease)}}
            ],
            "failure": [{"request_range": {"key": b64(key)}}],
        }
        r = await self._call("/v3/kv/txn", body)
        if r.get("succeeded"):
            return Claim(True, None)
        responses = r.get("responses") or [{}]
        return Claim(False, _holder(responses[0].get("response_range") or {}))

    # -------------------------------------------------------- transport --
    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":")).encode()
        deadline = time.monotonic() + self._timeout
        errors: list[str] = []
        n = len(self._endpoints)
        start = self._first
        for i in range(n):
            index = (start + i) % n
            endpoint = self._endpoints[index]
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # A member that swallows requests (cut off, not refusing) must not use up the
            # whole deadline while others could answer: the first try gets a share.
            budget = left * FIRST_TRY_SHARE if i == 0 and n > 1 else left
            try:
                answer = await asyncio.wait_for(self._attempt(endpoint, path, data), budget)
            except _FAILURES as exc:
                errors.append(f"{endpoint.authority}: {_why(exc)}")
                # The next call starts elsewhere, whatever this one still manages.
                self._first = (index + 1) % n
                continue
            self._first = index
            self.last_endpoint = endpoint.authority
            return answer
        raise EtcdError("; ".join(errors) or f"no answer within {self._timeout:g} s")

    async def _attempt(self, endpoint: Endpoint, path: str, data: bytes) -> dict[str, Any]:
        conn = self._take(endpoint) or await self._open(endpoint)
        try:
            status, payload, keep = await conn.post(path, data)
        except BaseException:
            conn.close()
            raise
        if keep:
            self._idle.append(conn)
        else:
            conn.close()
        try:
            # A stream (lease keepalive) sends one JSON object per message: the first is ours.
            first = payload.split(b"\n", 1)[0] if payload.lstrip().startswith(b"{") else payload
            answer = json.loads(first or b"{}")
        except ValueError:
            raise EtcdError(f"HTTP {status}: not JSON") from None
        if not isinstance(answer, dict):
            raise EtcdError(f"HTTP {status}: not a JSON object")
        if status != 200:
            raise EtcdError(f"HTTP {status}: {answer.get('message') or answer.get('error')}")
        error = answer.get("error")
        if isinstance(error, dict):  # an error inside a stream
            raise EtcdError(str(error.get("message") or error))
        return answer

    def _take(self, endpoint: Endpoint) -> _Conn | None:
        for i, c in enumerate(self._idle):
            if c.endpoint == endpoint:
                return self._idle.pop(i)
        return None

    async def _open(self, endpoint: Endpoint) -> _Conn:
        tls = self._tls if endpoint.scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            endpoint.host,
            endpoint.port,
            ssl=tls,
            server_hostname=endpoint.host if tls else None,
            limit=_HEADER_LIMIT,
        )
        return _Conn(endpoint, reader, writer)


def _holder(r: dict[str, Any]) -> Holder | None:
    kvs = r.get("kvs")
    if not isinstance(kvs, list) or not kvs:
        return None
    kv = kvs[0]
    return Holder(
        value=base64.b64decode(kv.get("value", "")),
        lease=int(kv.get("lease", 0)),
        mod_revision=int(kv.get("mod_revision", 0)),
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


# ------------------------------------------------------------- our keys --
def group_key(prefix: str, cluster: str, group: str) -> bytes:
    """The etcd key of resource group `group` (its haresources key, which holds `/`)."""
    return f"{prefix}/{cluster}/groups/{quote(group, safe='')}".encode()


@dataclass(frozen=True, slots=True)
class Owner:
    """What a group key says: which node holds it, in which incarnation (generation)."""

    node: str
    generation: int

    def encode(self, lease: int) -> bytes:
        doc = {"node": self.node, "generation": self.generation, "lease": f"{lease:x}"}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, value: bytes) -> Owner | None:
        """None for a value hbmon did not write (then nobody can tell who holds it)."""
        try:
            doc = json.loads(value)
            return cls(str(doc["node"]), int(doc["generation"]))
        except (ValueError, KeyError, TypeError):
            return None
