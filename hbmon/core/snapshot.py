"""One consistent, immutable view of a node, taken at a moment.

The metrics collector renders a snapshot at scrape time and `hbmon status`
prints one, so both always agree. Times are monotonic seconds (`now` of the
snapshot); the renderers convert them with the node's wall-clock epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from hbmon.core.events import (
    BlockReason,
    ConflictKind,
    GroupState,
    LinkStatus,
    NodeStatus,
    RefusalReason,
    TakeoverReason,
    TransitionReason,
)
from hbmon.core.fencing import FenceView


@dataclass(frozen=True, slots=True)
class LinkView:
    node: str
    iface: str
    status: LinkStatus
    last_heard_at: float | None
    transitions: int

    @property
    def name(self) -> str:
        return f"{self.iface}/{self.node}"


@dataclass(frozen=True, slots=True)
class PeerView:
    name: str
    status: NodeStatus
    generation: int | None
    last_seq: int | None
    last_heard_at: float | None  # monotonic time of its last new status
    dead_interval_s: float  # advertised `dt`, or initdead before comm up
    last_transition_at: float | None
    # (from, to, reason, count) for every change seen
    transitions: tuple[tuple[NodeStatus, NodeStatus, TransitionReason, int], ...]
    late_warntime: int  # silences that reached warntime, counted as they reached it
    late_deadtime: int  # ...deadtime
    lost_packets: int
    reordered_packets: int
    restarts: int
    partition_heals: int
    handovers: int = 0  # restarts it announced as a handover (resources kept up)


@dataclass(frozen=True, slots=True)
class PingAddressView:
    address: str
    last_rtt_s: float | None
    replies: int
    timeouts: int


@dataclass(frozen=True, slots=True)
class PingNodeView:
    name: str
    status: NodeStatus  # PING, DEAD or INIT
    last_reply_at: float | None
    last_transition_at: float | None
    addresses: tuple[PingAddressView, ...]
    transitions: int


@dataclass(frozen=True, slots=True)
class GroupView:
    key: str
    preferred: str  # the haresources node
    role: str  # "local" (preferred node is us) or "foreign"
    state: GroupState  # as held here
    holder: str | None  # who holds it as far as we know: our name, the peer's, or None
    last_change_at: float | None
    start_failures: int
    stop_failures: int
    # Live peers that report holding it too (a dual owner while we hold it as well).
    held_elsewhere: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TakeoverView:
    reason: TakeoverReason
    keys: tuple[str, ...]
    at: float  # monotonic time it completed
    duration_s: float
    peer: str | None


@dataclass(frozen=True, slots=True)
class HandoverView:
    """What this process took over from its predecessor at start (core/handover.py)."""

    from_generation: int
    gap_s: float  # from the predecessor's handover to our adoption
    kept: tuple[str, ...]  # still running: held again as they were
    restarted: tuple[str, ...]  # partly stopped: started again

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.kept, *self.restarted)


class OwnershipView(NamedTuple):
    """What `Ownership.view()` gives the snapshot."""

    groups: tuple[GroupView, ...]
    rsc_hold: str
    stable: bool
    takeovers: tuple[tuple[TakeoverReason, int], ...]
    last_takeover: TakeoverView | None
    conflicts: tuple[tuple[ConflictKind, int], ...]
    blocked: tuple[tuple[BlockReason, int], ...]
    refusals: tuple[tuple[RefusalReason, int], ...]
    fencing: tuple[FenceView, ...]
    handover: HandoverView | None  # what this process adopted from its predecessor


@dataclass(frozen=True, slots=True)
class ArbiterView:
    """The external arbitrator as this node sees it (core/arbitration.py)."""

    reachable: bool  # the last request to etcd was answered
    lease: int | None  # our lease, None while we have none
    ttl_s: int  # its TTL as etcd granted it
    lease_left_s: float  # how much longer it counts here (0: it does not)
    keys_held: int
    failsafe_groups: int  # groups held on the peer's word alone (etcd unreachable)
    conflicts: int  # claims that found another node's key


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    wall_epoch: float  # wall = monotonic + wall_epoch
    node: str
    generation: int
    local_status: NodeStatus
    comm_up: bool
    started_at: float
    peers: tuple[PeerView, ...]
    links: tuple[LinkView, ...]
    ping_nodes: tuple[PingNodeView, ...]
    # (iface, reason, count), every pair present from start
    dropped: tuple[tuple[str, str, int], ...]
    seq_sent: int
    groups: tuple[GroupView, ...] = ()
    rsc_hold: str = "none"  # heartbeat's cl_status rscstatus: none|local|foreign|all|transition
    resources_stable: bool = True
    takeovers: tuple[tuple[TakeoverReason, int], ...] = ()  # every reason present from start
    last_takeover: TakeoverView | None = None
    conflicts: tuple[tuple[ConflictKind, int], ...] = ()
    takeovers_blocked: tuple[tuple[BlockReason, int], ...] = ()  # takeovers not done, by why
    refusals: tuple[tuple[RefusalReason, int], ...] = ()  # standby / takeover refused, by why
    fencing: tuple[FenceView, ...] = ()  # each peer's reset (core/fencing.py)
    arbiter: ArbiterView | None = None  # None: no arbitrator configured
    handover: HandoverView | None = None  # this process began by adopting its predecessor's

    def peer(self, name: str) -> PeerView | None:
        for p in self.peers:
            if p.name == name:
                return p
        return None

    @property
    def reachable_ping_nodes(self) -> int:
        return sum(1 for p in self.ping_nodes if p.status == NodeStatus.PING)

    def wall(self, mono: float) -> float:
        return mono + self.wall_epoch
