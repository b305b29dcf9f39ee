"""What goes into the sans-IO core, and what comes out of it.

The driver (hbmon/engine.py) turns the outside world into `Event`s and feeds
them to `Node.handle(event, now)`; the node answers with `Effect`s. Effects are
either actions (`SendMessage`) or notices: facts the log and the metrics turn
into lines and samples. `now` is always the monotonic clock in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hbmon.core.arbevents import ArbiterAnswer, ArbiterNotice, ArbiterRequest

# The restart's events and effects live apart; they are re-exported from here.
from hbmon.core.handevents import GroupSurvey as GroupSurvey
from hbmon.core.handevents import HandedOver as HandedOver
from hbmon.core.handevents import Handover as Handover
from hbmon.core.handevents import HandoverComplete as HandoverComplete
from hbmon.core.handevents import HandoverReady as HandoverReady
from hbmon.core.handevents import HandoverSaved as HandoverSaved
from hbmon.core.handevents import KeepGroup as KeepGroup
from hbmon.core.handevents import PeerHandover as PeerHandover
from hbmon.errors import DropReason
from hbmon.wire.message import Message

# heartbeat's rsc_hold / standby argument: a word of the wire protocol, and the
# scope of every standby, takeover and control request here.
from hbmon.wire.rscmsg import Scope as Scope


class NodeStatus(StrEnum):
    INIT = "init"  # never heard
    UP = "up"  # alive, its comm not complete
    ACTIVE = "active"
    DEAD = "dead"
    PING = "ping"  # a live ping node


class LinkStatus(StrEnum):
    UP = "up"
    DEAD = "dead"


class Threshold(StrEnum):
    WARNTIME = "warntime"
    DEADTIME = "deadtime"


class DeathReason(StrEnum):
    TIMEOUT = "timeout"  # no status within the dead interval
    SHUTDOWN = "shutdown"  # the peer said `shutdone`
    INITDEAD = "initdead"  # never heard before initdead expired


class TransitionReason(StrEnum):
    """Why a peer's status changed (the `reason` label of hbmon_node_transitions_total).

    The rows of core/liveness.py say which reason each change may carry.
    """

    HEARD = "heard"  # its first status, or the first after it said goodbye
    STATUS = "status"  # a new status with another `st`
    RESTARTED = "restarted"  # a new incarnation (a higher generation)
    RETURNED = "returned"  # back with the same generation after we declared it dead
    TIMEOUT = DeathReason.TIMEOUT.value
    SHUTDOWN = DeathReason.SHUTDOWN.value
    INITDEAD = DeathReason.INITDEAD.value


class GroupState(StrEnum):
    """A resource group as this node holds it."""

    RELEASED = "released"  # not running here
    STARTING = "starting"
    HELD = "held"  # every resource started
    STOPPING = "stopping"
    FAILED = "failed"  # a start or stop failed; backing off before it is tried here again


class GroupOp(StrEnum):
    START = "start"
    STOP = "stop"


class TakeoverReason(StrEnum):
    """Why groups were acquired (the `reason` label of hbmon_failovers_total)."""

    STARTUP = "startup"  # our own groups at comm-up
    PEER_DEAD = "peer_dead"
    SHUTDOWN = "shutdown"  # the peer stopped gracefully (shutdone / rsc_hold=none info=shutdown)
    STANDBY = "standby"  # the peer asked to stand by
    TAKEOVER = "takeover"  # we were asked to take over (hbmon takeover / hb_takeover)
    FAILBACK = "failback"  # auto_failback returned our groups
    PING_QUORUM = "ping_quorum"  # the peer saw fewer ping nodes and gave up
    RECOVERY = "recovery"  # a group nobody held (after a failure or a blocked takeover)
    HUNG_OWNER = "hung_owner"  # taken while the dead owner's address answered (hung_owner)
    # Handed over by our previous process (a restart) but found partly stopped: started
    # again here. Never a failover: no batch, so hbmon_failovers_total{reason="handover"}
    # stays 0; the handover itself is counted apart (core/handover.py).
    HANDOVER = "handover"


class StopReason(StrEnum):
    """Why a group is stopped here (StopGroup, GroupTransition, the log line)."""

    VERIFY = "verifyallidle"  # found running before we joined (heartbeat's verifyallidle)
    SHUTDOWN = "shutdown"  # our own shutdown
    REMOVED = "removed from configuration"
    PEER_BACK = "peer returned"  # a takeover from a peer that is alive again after all
    STANDBY = "standby"  # handed to the peer by a standby exchange
    DUAL_OWNER = "dual owner"  # the other holder keeps it (core/quorum.py keeper)
    ARBITRATOR = "arbitrator lease lapsed"  # our lease and the failsafe no longer cover it


GroupReason = TakeoverReason | StopReason


class BlockReason(StrEnum):
    """Why a takeover was not done (the `reason` label of hbmon_takeovers_blocked_total)."""

    QUORUM = "quorum"  # no ping node answers: we may be the one cut off
    IN_USE = "in_use"  # the group's address still answers: its owner may be hung, not dead
    FENCING = "fencing"  # the dead owner's reset failed: nothing it held is taken


class ConflictKind(StrEnum):
    """An ownership conflict found (the `kind` label of hbmon_ownership_conflicts_total)."""

    DUAL = "dual"  # a group held here and by a peer
    NONE = "none"  # a group nobody holds


class RefusalReason(StrEnum):
    """Why a standby or takeover was refused (hbmon_standby_refusals_total{reason}).

    Our own requests (hbmon standby|takeover) and the peer's (`me`, hb_takeover)
    alike; each refusal is one log line in heartbeat's wording where it has one.
    """

    NOT_NICE = "not_nice_failback"  # auto_failback legacy: heartbeat has no standby then
    SHUTTING_DOWN = "shutting_down"
    BUSY = "exchange_busy"  # another exchange is under way
    LOCAL_IN_FLUX = "local_in_flux"  # our groups are moving
    PEER_IN_FLUX = "peer_in_flux"  # the peer's groups are moving
    NO_PEER = "no_peer"  # no single healthy peer to hand to or take from


class FenceResult(StrEnum):
    """How a reset went, as the `result` field of heartbeat's `stonith` message says it
    (cluster-glue ha_msg.h T_STONITH_*)."""

    OK = "OK"  # the device reset the node
    BAD = "bad"  # the reset failed (or timed out)
    BADHOST = "badhost"  # the device cannot reset that node
    NOT_CONFIGURED = "n_stnth"  # a reset was needed, and no device is configured
    UNNEEDED = "unneeded"  # the dead node had given its resources up


class ControlOp(StrEnum):
    STANDBY = "standby"
    TAKEOVER = "takeover"


# ------------------------------------------------------------------ events --
@dataclass(frozen=True, slots=True)
class PacketIn:
    """An authenticated, decoded message that arrived on the medium bound to `iface`."""

    iface: str
    message: Message
    source: str = ""  # sender's address, for drop accounting
    # When it reached this host (the kernel's receive timestamp, on the driver's
    # clock); None: when it is handled.
    at: float | None = None


@dataclass(frozen=True, slots=True)
class PacketRejected:
    """A datagram the wire layer refused (malformed or bad auth)."""

    iface: str
    reason: DropReason
    source: str = ""
    detail: str = ""  # the wire layer's words (never a digest or key)


@dataclass(frozen=True, slots=True)
class PingResult:
    """One echo to one address of a ping node; rtt_s None means no reply."""

    node: str
    address: str
    rtt_s: float | None
    # When the reply reached this host (kernel timestamp, driver's clock); None:
    # when it is handled. The driver reads replies at its next wake, not at once.
    at: float | None = None


@dataclass(frozen=True, slots=True)
class LoadAverage:
    """The `/proc/loadavg` line heartbeat puts in the `ld` field."""

    text: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Graceful stop requested (SIGTERM)."""


@dataclass(frozen=True, slots=True)
class GroupDone:
    """The executor finished starting or stopping a whole group."""

    key: str
    op: GroupOp
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProbeDone:
    """Result of probing a group's addresses on the service network (ARP / DAD)."""

    key: str
    in_use: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FenceDone:
    """The driver's attempt to reset `node` ended (its devices tried in turn)."""

    node: str
    result: FenceResult  # OK, BAD or BADHOST
    device: str = ""  # the device that reset it, or the last one tried
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ActiveAtStart:
    """Groups found running before we joined (heartbeat's verifyallidle)."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ControlRequest:
    request_id: int
    op: ControlOp
    scope: Scope


Event = (
    PacketIn
    | PacketRejected
    | PingResult
    | LoadAverage
    | Shutdown
    | GroupDone
    | ProbeDone
    | FenceDone
    | ActiveAtStart
    | ControlRequest
    | ArbiterAnswer
    | Handover
    | HandoverSaved
    | HandedOver
)


# ------------------------------------------------------------------ effects --
@dataclass(frozen=True, slots=True)
class SendMessage:
    """Sign, encode and send on every medium.

    `built_at`: a status's hbecho holds count up to this time; the driver adds the
    time until it sends (wire.builders.hold_longer) and reports when our status
    left (`Node.sent`), so neither side's processing passes for network delay.
    """

    message: Message
    built_at: float | None = None


@dataclass(frozen=True, slots=True)
class NodeTransition:
    node: str
    old: NodeStatus
    new: NodeStatus
    reason: TransitionReason


@dataclass(frozen=True, slots=True)
class NodeDead:
    """`node X: is dead` — the moment of the dead declaration."""

    node: str
    reason: DeathReason
    last_heard_at: float | None  # monotonic time of its last status, None if never heard


@dataclass(frozen=True, slots=True)
class LinkTransition:
    node: str
    iface: str
    new: LinkStatus

    @property
    def link(self) -> str:
        return f"{self.iface}/{self.node}"


@dataclass(frozen=True, slots=True)
class BeatReceived:
    """A new status from a peer. interval_s: gap since its previous status (any link)."""

    node: str
    iface: str
    interval_s: float | None
    seq: int


@dataclass(frozen=True, slots=True)
class RttMeasured:
    node: str
    iface: str
    rtt_s: float


@dataclass(frozen=True, slots=True)
class LateBeat:
    node: str
    interval_s: float
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class PeerSilent:
    """The peer's current silence just reached warntime or deadtime (the late count).

    silent_s: how long since its last new status, as the timer ran (>= the threshold).
    """

    node: str
    silent_s: float
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class PacketsMissing:
    """A seq gap was seen (`N lost packet(s) for [X] [last:seq]`); may still fill."""

    node: str
    count: int
    last: int
    seq: int


@dataclass(frozen=True, slots=True)
class PacketsLost:
    """Missing seqs that did not arrive within the grace period: real loss."""

    node: str
    count: int


@dataclass(frozen=True, slots=True)
class PacketsReordered:
    """A missing seq arrived late and filled its gap (not loss; spec §4.6.10)."""

    node: str
    count: int


@dataclass(frozen=True, slots=True)
class PacketDropped:
    reason: DropReason
    iface: str
    source: str
    node: str | None  # claimed sender, if it could be read
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PeerRestarted:
    node: str
    old_generation: int
    new_generation: int


@dataclass(frozen=True, slots=True)
class PartitionHealed:
    node: str


@dataclass(frozen=True, slots=True)
class ShutdownNotice:
    node: str


@dataclass(frozen=True, slots=True)
class CommUp:
    pass


@dataclass(frozen=True, slots=True)
class LocalStatusChanged:
    status: NodeStatus


@dataclass(frozen=True, slots=True)
class PingObserved:
    node: str
    address: str
    rtt_s: float | None


@dataclass(frozen=True, slots=True)
class PingTransition:
    node: str
    new: NodeStatus  # PING or DEAD


@dataclass(frozen=True, slots=True)
class ShutdownComplete:
    """The shutdown notice is out; the driver may exit."""


@dataclass(frozen=True, slots=True)
class StartGroup:
    """Start the group's resources left to right (stopping them again if one fails)."""

    key: str
    reason: TakeoverReason


@dataclass(frozen=True, slots=True)
class StopGroup:
    """Stop the group's resources right to left."""

    key: str
    reason: StopReason


@dataclass(frozen=True, slots=True)
class ProbeGroup:
    """Probe the group's addresses before taking them (split-brain guard), for
    `window_s` (the probes are spread over it; core/linkrtt.py sizes it)."""

    key: str
    window_s: float


@dataclass(frozen=True, slots=True)
class FenceNode:
    """Reset (fence) `node` with the devices configured for it; `attempt` counts from 1
    within one death."""

    node: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AnnounceGroup:
    """Announce the group's addresses again (gratuitous ARP / NA), held here already.

    After dual ownership, clients may still send to the node that released the
    address until their ARP entries expire (tens of seconds).
    """

    key: str


@dataclass(frozen=True, slots=True)
class ControlReply:
    request_id: int
    ok: bool
    message: str
    # Its words are in the log already (the refusal, timeout or abort that ended the
    # request), so the reply is not logged a second time.
    logged: bool = False


@dataclass(frozen=True, slots=True)
class GroupTransition:
    key: str
    old: GroupState
    new: GroupState
    reason: GroupReason | None  # why it is started or stopped; None: found running
    detail: str = ""  # the executor's words about a failure


@dataclass(frozen=True, slots=True)
class TakeoverComplete:
    """Groups acquired for one reason; duration from the trigger (e.g. the dead
    declaration) to the last resource started."""

    reason: TakeoverReason
    keys: tuple[str, ...]
    duration_s: float
    peer: str | None = None


@dataclass(frozen=True, slots=True)
class TakeoverBlocked:
    """We did not take groups we otherwise would have (quorum lost, address in use)."""

    keys: tuple[str, ...]
    reason: BlockReason
    why: str  # the details, for the log line


@dataclass(frozen=True, slots=True)
class OwnershipConflict:
    """Both nodes held a group (DUAL) or nobody did (NONE), and what was done."""

    key: str
    kind: ConflictKind
    resolution: str


@dataclass(frozen=True, slots=True)
class StandbyRefused:
    """A standby or takeover refused, ours or the peer's (logged once, counted by reason)."""

    reason: RefusalReason
    text: str  # heartbeat's wording where it has one


@dataclass(frozen=True, slots=True)
class ResourceLog:
    """A heartbeat-worded line of the resource protocol (standby phases, refusals…)."""

    level: str  # heartbeat level name: CRIT, ERROR, WARN, info, debug
    text: str


Effect = (
    SendMessage
    | NodeTransition
    | NodeDead
    | LinkTransition
    | BeatReceived
    | RttMeasured
    | LateBeat
    | PeerSilent
    | PacketsMissing
    | PacketsLost
    | PacketsReordered
    | PacketDropped
    | PeerRestarted
    | PartitionHealed
    | ShutdownNotice
    | CommUp
    | LocalStatusChanged
    | PingObserved
    | PingTransition
    | ShutdownComplete
    | HandoverReady
    | HandoverComplete
    | PeerHandover
    | KeepGroup
    | StartGroup
    | StopGroup
    | ProbeGroup
    | FenceNode
    | AnnounceGroup
    | ControlReply
    | GroupTransition
    | TakeoverComplete
    | TakeoverBlocked
    | OwnershipConflict
    | StandbyRefused
    | ResourceLog
    | ArbiterRequest
    | ArbiterNotice
)
