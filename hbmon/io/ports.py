"""What the engine drives: one Protocol per I/O object, and `EngineIO`, the bundle of them.

The engine (hbmon/engine.py) is an adapter between the sans-IO core and these
objects, as aioquic's asyncio protocol is between its connection and a
transport: it is given them, it never builds them. hbmon/daemon.py builds the
real ones in one place; tests/unit/engine builds fakes.

    media      the heartbeat links (UDP sockets, serial lines): a factory, since a
               reload that changes them opens new ones beside the old
    resources  starts, stops, probes and announces resource groups; surveys them
               and arms or disarms their addresses' expiry for a restart's handover
    handover   the handover record a restarting process leaves for the next one
    control    the control socket
    notifier   sd_notify(3): ready, status, watchdog, stopping, reloading
    pinger     ping-node echoes (a factory: a reload restarts it)
    clients    heartbeat's respawn clients, started at comm-up
    fencer     resets a dead node with its fencing devices; checks the devices
    signals    SIGTERM/SIGINT (stop), SIGHUP (reload) and SIGQUIT (restart: hand over)
    source     where the configuration is re-read from on reload
    arbiter    the external arbitrator (etcd), None when none is configured
    loadavg    the `ld` line; wall: the wall clock for `ts` fields
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from hbmon.config.model import (
    Config,
    FenceDevice,
    FencingSettings,
    Medium,
    PingNode,
    ResourceGroup,
    WireFormat,
)
from hbmon.config.problems import Problem
from hbmon.core.arbevents import ArbiterAnswer, ArbiterRequest
from hbmon.core.events import Event, GroupSurvey
from hbmon.core.handover import HandoverRecord
from hbmon.wire.codec import Sign
from hbmon.wire.message import Message

if TYPE_CHECKING:
    from hbmon.io.fencing import FenceOutcome

# (link, datagram, source address, arrival time on the loop's clock)
Receiver = Callable[[str, bytes, str, float], None]
EventSink = Callable[[Event], None]
ControlHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class GroupResult(Protocol):
    """How a group operation ended."""

    @property
    def ok(self) -> bool: ...

    @property
    def detail(self) -> str: ...


class MediaPort(Protocol):
    async def open(self, receiver: Receiver, previous: Self | None = None) -> None:
        """Open every medium (`previous`: the ones a reload replaces); StartupError if one
        cannot be, with nothing left open."""

    def send(self, message: Message, sign: Sign, fmt: WireFormat) -> float:
        """Send on every medium; the loop time the datagram was ready to go out."""

    def close(self) -> None: ...


class ResourcePort(Protocol):
    async def active(self, group: ResourceGroup) -> bool: ...

    async def start_group(self, group: ResourceGroup) -> GroupResult: ...

    async def stop_group(self, group: ResourceGroup) -> GroupResult: ...

    async def probe_group(self, group: ResourceGroup, window_s: float) -> tuple[bool, str]:
        """(an address of the group answers on the service network, details)."""

    async def announce_group(self, group: ResourceGroup) -> None: ...

    async def survey(self, group: ResourceGroup) -> GroupSurvey:
        """What of a group handed over by our previous process still runs here."""

    async def hand_over(self, group: ResourceGroup, lifetime_s: int) -> tuple[bool, str]:
        """Make the group's addresses expire after `lifetime_s`: (ok, details)."""

    async def keep(self, group: ResourceGroup) -> tuple[bool, str]:
        """The group's addresses no longer expire: (ok, details)."""

    def reconfigure(self, config: Config) -> None: ...

    async def close(self) -> None: ...


class ControlPort(Protocol):
    async def start(self, handler: ControlHandler) -> None:
        """Listen; StartupError if the socket cannot be had."""

    async def close(self) -> None: ...


class Notifier(Protocol):
    def ready(self) -> bool: ...

    def status(self, text: str) -> bool: ...

    def watchdog(self) -> bool: ...

    def stopping(self) -> bool: ...

    def reloading(self) -> bool: ...

    def watchdog_interval(self) -> float | None: ...


class PingPort(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def beat(self, now: float) -> None:
        """The engine is awake to send a status at `now` (a round due soon goes now)."""

    def drain(self) -> None:
        """The engine is awake: hand over the replies that have come (none wakes it)."""


class ClientsPort(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...


class FencePort(Protocol):
    async def reset(self, node: str, devices: Sequence[FenceDevice]) -> FenceOutcome:
        """Try each device until one resets `node`; never raises."""

    async def watch(self, devices: Sequence[FenceDevice]) -> None:
        """Check the devices now and then periodically (heartbeat's status check)."""

    def reconfigure(self, settings: FencingSettings) -> None: ...


class Signals(Protocol):
    def install(
        self,
        stop: Callable[[], None],
        reload: Callable[[], None],
        handover: Callable[[], None],
    ) -> None: ...

    def remove(self) -> None: ...


class ArbiterPort(Protocol):
    """Runs the core's etcd requests; each one's answer comes back through `deliver`."""

    def start(self, deliver: Callable[[ArbiterAnswer], None]) -> None: ...

    def submit(self, request: ArbiterRequest) -> None: ...

    async def close(self) -> None: ...


class ConfigSource(Protocol):
    @property
    def path(self) -> Path: ...

    def load(self) -> tuple[Config | None, Sequence[Problem]]:
        """The configuration as it reads now (command-line settings applied), and its
        problems; None if it is unusable."""


class HandoverPort(Protocol):
    def boot_id(self) -> str: ...

    def load(self) -> HandoverRecord | None:
        """The record our previous process left, None if none (or unreadable)."""

    def save(self, record: HandoverRecord) -> None:
        """Write it durably; StartupError if that fails."""

    def discard(self) -> None: ...


# (ping nodes, where their results go, echo interval and timeout in seconds, the
# status interval: the engine calls `beat` that often)
PingerFactory = Callable[[tuple[PingNode, ...], EventSink, float, float], PingPort]


@dataclass(frozen=True, slots=True)
class EngineIO:
    """Everything the engine does I/O through (see the module docstring)."""

    media: Callable[[tuple[Medium, ...]], MediaPort]
    resources: ResourcePort
    handover: HandoverPort
    control: ControlPort
    notifier: Notifier
    pinger: PingerFactory
    clients: ClientsPort
    fencer: FencePort
    signals: Signals
    source: ConfigSource
    loadavg: Callable[[], str | None]
    wall: Callable[[], float]
    arbiter: ArbiterPort | None = None
