"""Fakes for every I/O object the engine drives (hbmon/io/ports.py), and a harness.

Each fake records what the engine asked of it; none touches a socket, a
process or a signal. `Harness` runs one engine on the test's event loop.
Waiting is on conditions (`until`), never on a bare sleep.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from coretools import UUIDS, make_config, status
from loguru import logger

from hbmon.config.model import (
    Config,
    FenceDevice,
    FencingSettings,
    LogSettings,
    Medium,
    PingNode,
    Resource,
    ResourceGroup,
    WireFormat,
)
from hbmon.config.problems import Problem
from hbmon.core.arbevents import (
    ArbiterAnswer,
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
from hbmon.core.events import FenceResult, GroupSurvey
from hbmon.core.handover import HandoverRecord
from hbmon.engine import Engine, Identity
from hbmon.errors import StartupError
from hbmon.io.fencing import FenceOutcome
from hbmon.io.ports import ControlHandler, EngineIO, EventSink, Receiver
from hbmon.logs import LogSink
from hbmon.metrics import Metrics
from hbmon.wire.auth import Signer
from hbmon.wire.codec import Sign, encode
from hbmon.wire.message import Message

GROUP = ResourceGroup("alpha", (Resource("IPaddr", ("10.0.0.10/24/eth0",)),))


def config(**kw: Any) -> Config:
    """Two nodes, one group preferring alpha (us), one medium; short timers."""
    cfg = make_config(keepalive_ms=200, deadtime_ms=2000, warntime_ms=1000, initdead_ms=4000)
    return replace(cfg, resources=(GROUP,), **kw)


class FakeMedia:
    def __init__(self, media: tuple[Medium, ...], refuse: str | None = None) -> None:
        self.media = media
        self.refuse = refuse
        self.receiver: Receiver | None = None
        self.previous: FakeMedia | None = None
        self.sent: list[Message] = []
        self.formats: list[WireFormat] = []
        self.closed = False
        self.sign: Sign | None = None

    async def open(self, receiver: Receiver, previous: FakeMedia | None = None) -> None:
        if self.refuse is not None:
            raise StartupError(self.refuse)
        self.receiver, self.previous = receiver, previous

    def send(self, message: Message, sign: Sign, fmt: WireFormat) -> float:
        self.sent.append(message)
        self.formats.append(fmt)
        self.sign = sign
        return asyncio.get_running_loop().time()

    def close(self) -> None:
        self.closed = True

    def types(self) -> list[str | None]:
        return [m.type for m in self.sent]


@dataclass
class Outcome:
    ok: bool
    detail: str = ""


@dataclass
class FakeFencer:
    """Resets answered from `results` in turn, then with `result` (OK by default);
    every call recorded, with what `witness` (if set) said at that moment."""

    result: FenceResult = FenceResult.OK
    results: list[FenceResult] = field(default_factory=list)
    witness: Callable[[], object] | None = None
    witnessed: list[object] = field(default_factory=list)
    resets: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # node, devices
    watched: list[tuple[str, ...]] = field(default_factory=list)
    settings: list[FencingSettings] = field(default_factory=list)

    async def reset(self, node: str, devices: Sequence[FenceDevice]) -> FenceOutcome:
        labels = tuple(d.label for d in devices)
        self.resets.append((node, labels))
        if self.witness is not None:
            self.witnessed.append(self.witness())
        result = self.results.pop(0) if self.results else self.result
        return FenceOutcome(node, result, labels[0] if labels else "", "", 0.0)

    async def watch(self, devices: Sequence[FenceDevice]) -> None:
        self.watched.append(tuple(d.label for d in devices))

    def reconfigure(self, settings: FencingSettings) -> None:
        self.settings.append(settings)


@dataclass
class FakeResources:
    running: set[str] = field(default_factory=set)  # found active at start
    ops: list[tuple[str, str]] = field(default_factory=list)
    configs: list[Config] = field(default_factory=list)
    closed: bool = False
    gate: asyncio.Event | None = None  # the scan at start waits for it
    start_error: Exception | None = None  # start_group raises it
    partly: set[str] = field(default_factory=set)  # running, but a resource says stopped
    no_address: set[str] = field(default_factory=set)  # running, but its address is gone
    lifetimes: dict[str, int | None] = field(default_factory=dict)  # key -> expiry set
    refuse_lifetime: str | None = None  # hand_over fails with these words
    probe_windows: list[float] = field(default_factory=list)

    async def active(self, group: ResourceGroup) -> bool:
        self.ops.append(("status", group.key))
        if self.gate is not None:
            await self.gate.wait()
        return group.key in self.running

    async def start_group(self, group: ResourceGroup) -> Outcome:
        self.ops.append(("start", group.key))
        if self.start_error is not None:
            raise self.start_error
        return Outcome(True)

    async def stop_group(self, group: ResourceGroup) -> Outcome:
        self.ops.append(("stop", group.key))
        return Outcome(True)

    async def probe_group(self, group: ResourceGroup, window_s: float) -> tuple[bool, str]:
        self.ops.append(("probe", group.key))
        self.probe_windows.append(window_s)
        return False, ""

    async def announce_group(self, group: ResourceGroup) -> None:
        self.ops.append(("announce", group.key))

    async def survey(self, group: ResourceGroup) -> GroupSurvey:
        self.ops.append(("survey", group.key))
        running = group.key in self.running
        return GroupSurvey(
            group.key,
            addresses_up=running and group.key not in self.no_address,
            all_running=running and group.key not in self.partly,
            any_running=running,
        )

    async def hand_over(self, group: ResourceGroup, lifetime_s: int) -> tuple[bool, str]:
        self.ops.append(("hand_over", group.key))
        if self.refuse_lifetime is not None:
            return False, self.refuse_lifetime
        self.lifetimes[group.key] = lifetime_s
        return True, f"expires in {lifetime_s} s"

    async def keep(self, group: ResourceGroup) -> tuple[bool, str]:
        self.ops.append(("keep", group.key))
        self.lifetimes[group.key] = None
        return True, "kept"

    def reconfigure(self, config: Config) -> None:
        self.configs.append(config)

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeControl:
    handler: ControlHandler | None = None
    refuse: str | None = None
    closed: bool = False

    async def start(self, handler: ControlHandler) -> None:
        if self.refuse is not None:
            raise StartupError(self.refuse)
        self.handler = handler

    async def close(self) -> None:
        self.closed = True

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.handler is not None, "control socket not started"
        return await self.handler(request)


@dataclass
class FakeNotifier:
    calls: list[str] = field(default_factory=list)
    watchdog_s: float | None = None

    def _note(self, what: str) -> bool:
        self.calls.append(what)
        return True

    def ready(self) -> bool:
        return self._note("ready")

    def status(self, text: str) -> bool:
        return self._note(f"status: {text}")

    def watchdog(self) -> bool:
        return self._note("watchdog")

    def stopping(self) -> bool:
        return self._note("stopping")

    def reloading(self) -> bool:
        return self._note("reloading")

    def watchdog_interval(self) -> float | None:
        return self.watchdog_s

    def plain(self) -> list[str]:
        """The calls without the status texts."""
        return [c for c in self.calls if not c.startswith("status: ")]


@dataclass
class FakePinger:
    nodes: tuple[PingNode, ...]
    sink: EventSink
    interval_s: float
    beat_s: float
    started: bool = False
    stopped: bool = False
    beats: list[float] = field(default_factory=list)
    drains: int = 0

    def start(self) -> None:
        self.started = True

    def beat(self, now: float) -> None:
        self.beats.append(now)

    def drain(self) -> None:
        self.drains += 1

    async def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeClients:
    starts: int = 0
    stopped: bool = False

    def start(self) -> None:
        self.starts += 1

    async def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeHandover:
    """The record store: what a restarting engine saved, what the next one reads."""

    record: HandoverRecord | None = None
    boot: str = "boot-1"
    refuse: str | None = None  # save raises StartupError with these words
    saved: list[HandoverRecord] = field(default_factory=list)
    discarded: int = 0

    def boot_id(self) -> str:
        return self.boot

    def load(self) -> HandoverRecord | None:
        return self.record

    def save(self, record: HandoverRecord) -> None:
        if self.refuse is not None:
            raise StartupError(self.refuse)
        self.saved.append(record)
        self.record = record

    def discard(self) -> None:
        self.discarded += 1
        self.record = None


@dataclass
class FakeSignals:
    stop: Callable[[], None] | None = None
    reload: Callable[[], None] | None = None
    handover: Callable[[], None] | None = None
    removed: bool = False

    def install(
        self,
        stop: Callable[[], None],
        reload: Callable[[], None],
        handover: Callable[[], None],
    ) -> None:
        self.stop, self.reload, self.handover = stop, reload, handover

    def send_handover(self) -> None:
        assert self.handover is not None
        self.handover()

    def remove(self) -> None:
        self.removed = True

    def send_stop(self) -> None:
        assert self.stop is not None
        self.stop()

    def send_reload(self) -> None:
        assert self.reload is not None
        self.reload()


@dataclass
class FakeArbiter:
    """An etcd that grants a lease and lets every claim win, answering each request on
    the loop's next turn (as the real driver's task would), unless `silent` names the
    request types it never answers."""

    deliver: Callable[[ArbiterAnswer], None] | None = None
    requests: list[ArbiterRequest] = field(default_factory=list)
    silent: tuple[type, ...] = ()
    closed: bool = False

    def start(self, deliver: Callable[[ArbiterAnswer], None]) -> None:
        self.deliver = deliver

    def submit(self, request: ArbiterRequest) -> None:
        assert self.deliver is not None, "submit before start"
        self.requests.append(request)
        if not isinstance(request, self.silent):
            asyncio.get_running_loop().call_soon(self.deliver, _answer(request))

    async def close(self) -> None:
        self.closed = True

    def kinds(self) -> list[str]:
        return [type(r).__name__ for r in self.requests]


def _answer(request: ArbiterRequest) -> ArbiterAnswer:
    match request:
        case GrantLease(request=r, ttl_s=ttl):
            return LeaseGranted(r, 0x51, ttl)
        case RenewLease(request=r):
            return LeaseRenewed(r, 1)
        case ClaimKey(request=r):
            return KeyClaimed(r, True)
        case ReleaseKey(request=r) | RevokeLease(request=r):
            return KeyReleased(r, True)


@dataclass
class FakeSource:
    """What each reload reads: a Config, None with problems, or an exception to raise."""

    path: Path = Path("/etc/ha.d")
    readings: list[Config | tuple[None, list[Problem]] | Exception] = field(default_factory=list)

    def load(self) -> tuple[Config | None, Sequence[Problem]]:
        reading = self.readings.pop(0)
        if isinstance(reading, Exception):
            raise reading
        if isinstance(reading, tuple):
            return reading
        return reading, []


class Harness:
    """One engine over fakes, on the running loop; `lines` holds every log line."""

    def __init__(self, cfg: Config | None = None, **io_kw: Any) -> None:
        self.cfg = cfg or config()
        self.media_made: list[FakeMedia] = []
        self.pingers: list[FakePinger] = []
        self.refuse_media: list[str | None] = []  # for the next media built, in order
        self.resources = FakeResources()
        self.handover = FakeHandover()
        self.control = FakeControl()
        self.notifier = FakeNotifier()
        self.clients = FakeClients()
        self.fencer = FakeFencer()
        self.signals = FakeSignals()
        self.source = FakeSource()

        def media(m: tuple[Medium, ...]) -> FakeMedia:
            refuse = self.refuse_media.pop(0) if self.refuse_media else None
            made = FakeMedia(m, refuse)
            self.media_made.append(made)
            return made

        def pinger(
            nodes: tuple[PingNode, ...], sink: EventSink, interval_s: float, beat_s: float
        ) -> FakePinger:
            made = FakePinger(nodes, sink, interval_s, beat_s)
            self.pingers.append(made)
            return made

        fields: dict[str, Any] = {
            "media": media,
            "resources": self.resources,
            "handover": self.handover,
            "control": self.control,
            "notifier": self.notifier,
            "pinger": pinger,
            "clients": self.clients,
            "fencer": self.fencer,
            "signals": self.signals,
            "source": self.source,
            "loadavg": lambda: "0.01 0.02 0.03 1/99 1234",
            "wall": lambda: 1_700_000_000.0,
        }
        fields.update(io_kw)
        self.io = EngineIO(**fields)
        self.metrics = Metrics(self.cfg, version="test", process_metrics=False)
        self.sink = LogSink(
            fmt="text",
            node=self.cfg.node,
            settings=LogSettings(),
            debug=0,
            stderr=io.StringIO(),
            journal=False,
            syslog_address="/nonexistent",
        )
        self._engine: Engine | None = None
        self.lines: list[str] = []
        self.task: asyncio.Task[int] | None = None

    @property
    def engine(self) -> Engine:
        """Built on first use, so a test can set up the fakes first."""
        if self._engine is None:
            identity = Identity(7, UUIDS["alpha"])
            self._engine = Engine(self.cfg, identity, self.io, self.metrics, self.sink)
        return self._engine

    @property
    def media(self) -> FakeMedia:
        """The media in use (the latest built)."""
        return self.media_made[-1]

    async def __aenter__(self) -> Harness:
        self._log_id = logger.add(lambda m: self.lines.append(m.record["message"]), level="DEBUG")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        logger.remove(self._log_id)

    async def start(self) -> None:
        """Run the engine until it has sent its first status."""
        self.task = asyncio.get_running_loop().create_task(self.engine.run())
        await self.until(lambda: "status" in self.media.types(), "the first status")

    async def until(self, check: Callable[[], object], what: str, wait_s: float = 10.0) -> None:
        """Wait (yielding to the engine) until `check()` holds."""
        async with asyncio.timeout(wait_s):
            while not check():
                if self.task is not None and self.task.done():
                    self.task.result()  # the engine's own exception, if any
                    raise AssertionError(f"the engine stopped before {what}")
                await asyncio.sleep(0.005)

    def receive(self, message: Message, link: str = "eth0", source: str = "10.0.0.2") -> None:
        """A peer's datagram on `link`, signed with the cluster key."""
        receiver = self.media.receiver
        assert receiver is not None, "media not open"
        data = encode(message, Signer(self.cfg.auth).sign, WireFormat.NETSTRING)
        receiver(link, data, source, asyncio.get_running_loop().time())

    def beta_alive(self, seq: int = 1, st: str = "active") -> None:
        self.receive(status("beta", seq, st=st, dt_ms=2000))

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)
