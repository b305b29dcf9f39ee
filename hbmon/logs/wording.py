"""heartbeat's wording: a core notice as the line heartbeat would log.

`describe(effect)` gives heartbeat's exact line (`Late heartbeat: Node X:
interval N ms`, `node X: is dead`, …, spec §4.3–§5.1), so log watchers written
for heartbeat keep matching; hbmon-only notices get hbmon wording at the level
heartbeat would use. `fields_of(effect)` is what a structured (JSON) line binds.
Nothing here writes a line: that is hbmon/logs/logsink.py.
"""

from __future__ import annotations

import re
from dataclasses import fields
from enum import Enum
from typing import assert_never

from hbmon.core.arbevents import (
    ArbiterReachability,
    ClaimKey,
    GrantLease,
    KeyChange,
    KeyConflict,
    LeaseChange,
    LeaseRenewal,
    ReleaseKey,
    RenewLease,
    RevokeLease,
    UnarbitratedPeer,
)
from hbmon.core.events import (
    AnnounceGroup,
    BeatReceived,
    CommUp,
    ConflictKind,
    ControlReply,
    Effect,
    FenceNode,
    GroupState,
    GroupTransition,
    HandoverComplete,
    HandoverReady,
    KeepGroup,
    LateBeat,
    LinkStatus,
    LinkTransition,
    LocalStatusChanged,
    NodeDead,
    NodeStatus,
    NodeTransition,
    OwnershipConflict,
    PacketDropped,
    PacketsLost,
    PacketsMissing,
    PacketsReordered,
    PartitionHealed,
    PeerHandover,
    PeerRestarted,
    PeerSilent,
    PingObserved,
    PingTransition,
    ProbeGroup,
    ResourceLog,
    RttMeasured,
    SendMessage,
    ShutdownComplete,
    ShutdownNotice,
    StandbyRefused,
    StartGroup,
    StopGroup,
    TakeoverBlocked,
    TakeoverComplete,
    Threshold,
)
from hbmon.errors import AUTH_FAILURES, DropReason
from hbmon.logs.levels import HB_LEVELS, HbLevel


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# Long hex runs (digests), or long base64 runs with a digit in them (keys, digests).
_SECRET_LIKE = re.compile(r"\b[0-9A-Fa-f]{16,}\b|(?=[A-Za-z+/]*[0-9])[A-Za-z0-9+/]{24,}={0,2}")


def redact(text: str) -> str:
    """Blank anything that looks like a digest or key (long hex or base64 runs)."""
    return _SECRET_LIKE.sub("<redacted>", text)


def _drop_line(e: PacketDropped) -> str:
    who = e.node if e.node else e.source or "?"
    origin = f"from {e.source or '?'} on {e.iface or '?'}"
    detail = redact(e.detail) if e.detail else ""
    match e.reason:
        case DropReason.REPLAY:
            tail = f" [{detail}]" if detail else ""
            return f"should_drop_message: attempted replay attack [{who}]?{tail} ({origin})"
        case DropReason.UNKNOWN_NODE:
            return f"process_status_message: bad node [{who}] in message ({origin})"
        case r if r in AUTH_FAILURES:
            # heartbeat prints both digests here; hbmon never prints digests or keys.
            tail = f": {detail}" if detail else ""
            return f"authtoken does not match, message from [{who}] dropped ({origin}){tail}"
        case DropReason.MALFORMED:
            tail = f": {detail}" if detail else ""
            return f"Dropped malformed packet ({origin}){tail}"
        case _:  # a reason added later
            return f"Dropped packet from [{who}]: {e.reason} ({origin})"


# What describe() has no line for: actions and per-beat notices (debug's chatty
# lines aside). Looked up first: they are most of what an idle agent's core says.
SILENT: frozenset[type] = frozenset(
    {
        BeatReceived,
        RttMeasured,
        PingObserved,
        SendMessage,
        StartGroup,
        StopGroup,
        ProbeGroup,
        AnnounceGroup,
    }
)


def describe(effect: Effect, *, local_node: str | None = None) -> tuple[HbLevel, str] | None:
    """(heartbeat level, line) for a notice, or None for actions and per-beat notices.

    Wording is heartbeat 3.0.6's wherever heartbeat logs the same fact.
    """
    if type(effect) in SILENT:
        return None
    match effect:
        case LateBeat(node=node, interval_s=interval, threshold=threshold):
            if threshold == Threshold.DEADTIME:
                return (
                    "CRIT",
                    f"Late heartbeat: Node {node}: interval {_ms(interval)} ms (> deadtime)",
                )
            return "WARN", f"Late heartbeat: Node {node}: interval {_ms(interval)} ms"
        case PeerSilent(node=node, silent_s=silent, threshold=threshold):
            # hbmon only: heartbeat says nothing until the late beat arrives. At
            # deadtime `node X: is dead` usually follows at once, so that one is quiet.
            line = f"No heartbeat from node {node} for {_ms(silent)} ms (> {threshold})"
            return ("WARN" if threshold == Threshold.WARNTIME else "info"), line
        case NodeDead(node=node):
            return "WARN", f"node {node}: is dead"
        case NodeTransition(node=node, old=old, new=new, reason=reason):
            if new in (NodeStatus.DEAD, NodeStatus.INIT):
                # `node X: is dead` (NodeDead) is heartbeat's line for this; keep the why.
                why = f" ({reason})" if reason else ""
                return "debug", f"node {node}: status {old} -> {new}{why}"
            return "info", f"Status update for node {node}: status {new}"
        case LinkTransition(node=node, iface=iface, new=new):
            return "info", f"Link {node}:{iface} {'up' if new == LinkStatus.UP else 'dead'}."
        case PacketsMissing(node=node, count=count, last=last, seq=seq):
            return "WARN", f"{count} lost packet(s) for [{node}] [{last}:{seq}]"
        case PacketsLost(node=node, count=count):
            return "WARN", f"{count} lost packet(s) from [{node}] not recovered"
        case PacketsReordered(node=node, count=count):
            return (
                "info",
                f"{count} late packet(s) from [{node}] filled the gap (reordered, not lost)",
            )
        case PacketDropped():
            return "ERROR", _drop_line(effect)
        case PeerRestarted(node=node):
            return "info", f"Heartbeat restart on node {node}"
        case PartitionHealed(node=node):
            return "CRIT", f"Cluster node {node} returning after partition."
        case ShutdownNotice(node=node):
            return "info", f"Received shutdown notice from '{node}'."
        case CommUp():
            return "info", "Comm_now_up(): updating status to active"
        case LocalStatusChanged(status=status):
            return "info", f"Local status now set to: '{status}'"
        case PingTransition(node=node, new=new):
            if new == NodeStatus.DEAD:
                return "WARN", f"node {node}: is dead"
            return "info", f"Status update for node {node}: status {new}"
        case ShutdownComplete():
            who = f"{local_node} " if local_node else ""
            return "info", f"{who}Heartbeat shutdown complete."
        case HandoverReady(keys=keys, window_s=window):
            # heartbeat: "Current resources: -R -C all" before its restart exec.
            held = f"[{', '.join(keys)}]" if keys else "none"
            return (
                "info",
                f"Current resources: {held}; handing them over to the next hbmon process"
                f" (they stay up; {_ms(window)} ms for it to take them)",
            )
        case HandoverComplete(keys=keys):
            who = f"{local_node} " if local_node else ""
            kept = f"{len(keys)} group(s) kept up"
            return "info", f"{who}Heartbeat restart handover complete: {kept}."
        case PeerHandover(node=node, window_s=window, dead_interval_s=dead):
            return (
                "info",
                f"Node {node} is restarting: it keeps its resources; waiting"
                f" {_ms(dead)} ms (deadtime + {_ms(window)} ms) for its next process",
            )
        case GroupTransition(key=key, new=new, reason=reason, detail=detail):
            return _group_line(key, new, detail or (reason.value if reason else ""))
        case TakeoverComplete(reason=reason, keys=keys, duration_s=duration, peer=peer):
            src = f" from {peer}" if peer else ""
            return (
                "info",
                f"Takeover ({reason}){src} complete: {len(keys)} group(s) in "
                f"{_ms(duration)} ms [{', '.join(keys)}]",
            )
        case TakeoverBlocked(keys=keys, why=why):
            return "CRIT", f"Not taking over [{', '.join(keys)}]: {why}"
        case OwnershipConflict(key=key, kind=kind, resolution=resolution):
            if kind is ConflictKind.DUAL:
                return "ERROR", f"Both machines own resource group {key}: {resolution}"
            return "ERROR", f"No one owns resource group {key}: {resolution}"
        case ResourceLog(level=level, text=text):
            return _hb_level_or_info(level), text
        case StandbyRefused(text=text):
            return "info", text
        case ControlReply(logged=True):
            return None  # the refusal, timeout or abort that ended it is logged
        case ControlReply(ok=ok, message=message):
            return ("info" if ok else "WARN"), message
        case ArbiterReachability() | LeaseChange() | KeyConflict() | KeyChange():
            return _arbiter_line(effect)
        case UnarbitratedPeer(peer=peer):
            return (
                "CRIT",
                f"Node {peer} sends no sign of the arbitrator: a pair where only one node"
                " uses it (heartbeat, or hbmon without it) is not supported; its heartbeats"
                " do not count for the failsafe",
            )
        case (
            BeatReceived()
            | RttMeasured()
            | PingObserved()
            | SendMessage()
            | StartGroup()
            | StopGroup()
            | ProbeGroup()
            | FenceNode()  # the driver logs each device it tries (io/fencing.py)
            | AnnounceGroup()
            | GrantLease()
            | RenewLease()
            | ClaimKey()
            | ReleaseKey()
            | RevokeLease()
            | LeaseRenewal()
            | KeepGroup()
        ):
            return None
        case _:
            assert_never(effect)


def _arbiter_line(
    effect: ArbiterReachability | LeaseChange | KeyConflict | KeyChange,
) -> tuple[HbLevel, str]:
    """The external arbitrator's notices: heartbeat has none, so these are hbmon's words."""
    match effect:
        case ArbiterReachability(reachable=True):
            return "info", "Arbitrator (etcd) answers again"
        case ArbiterReachability(detail=detail):
            return "WARN", f"Arbitrator (etcd) unreachable: {detail}"
        case LeaseChange(lease=None, detail=detail):
            return "WARN", f"Arbitrator lease lost: {detail}"
        case LeaseChange(lease=lease, detail=detail):
            return "info", f"Arbitrator lease {lease:x} {detail}"
        case KeyConflict(group=group, holder=holder):
            return "WARN", f"Resource group {group}: its key in etcd is held by {holder}; not taken"
        case KeyChange(group=group, held=True, detail=detail):
            return "info", f"Resource group {group}: key in etcd is ours ({detail})"
        case KeyChange(group=group, detail=detail):
            return "info", f"Resource group {group}: key in etcd no longer ours ({detail})"
        case _:
            assert_never(effect)


def _group_line(key: str, new: GroupState, reason: str) -> tuple[HbLevel, str]:
    why = f" ({reason})" if reason else ""
    match new:
        case GroupState.STARTING:
            return "info", f"Taking over resource group {key}{why}"
        case GroupState.HELD:
            return "info", f"Acquired resource group {key}"
        case GroupState.STOPPING:
            return "info", f"Releasing resource group {key}{why}"
        case GroupState.RELEASED:
            return "info", f"Released resource group {key}"
        case GroupState.FAILED:
            return "CRIT", f"Resource group {key} failed{why}"
        case _:
            assert_never(new)


def _hb_level_or_info(level: str) -> HbLevel:
    for known in HB_LEVELS:
        if known == level:
            return known
    return "info"


def follow_ups(effect: Effect) -> tuple[tuple[HbLevel, str], ...]:
    """Lines heartbeat logs right after the main one."""
    if isinstance(effect, PartitionHealed):
        return (("WARN", "Deadtime value may be too small."),)
    return ()


def chatty_line(effect: Effect) -> str | None:
    """Per-beat detail, logged only at debug >= 1."""
    match effect:
        case BeatReceived(node=node, iface=iface, interval_s=interval, seq=seq):
            gap = f", interval {_ms(interval)} ms" if interval is not None else ""
            return f"Heartbeat from {node} on {iface}: seq {seq:x}{gap}"
        case RttMeasured(node=node, iface=iface, rtt_s=rtt):
            return f"RTT to {node} via {iface}: {rtt * 1000:.3f} ms"
        case PingObserved(node=node, address=address, rtt_s=rtt):
            result = f"{rtt * 1000:.3f} ms" if rtt is not None else "no reply"
            return f"Ping {node} ({address}): {result}"
        case _:
            return None


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def event_name(effect: Effect) -> str:
    """`LateBeat` -> `late_beat`."""
    return _CAMEL.sub("_", type(effect).__name__).lower()


def fields_of(effect: Effect) -> dict[str, object]:
    """The effect's scalar fields for structured logs; its `node` is bound as `peer`
    (in JSON, `node` is the local node)."""
    out: dict[str, object] = {"event": event_name(effect)}
    for f in fields(effect):
        v = getattr(effect, f.name)
        if v is None:
            continue
        if isinstance(v, Enum):
            v = v.value
        elif not isinstance(v, str | int | float | bool):
            continue  # e.g. SendMessage.message
        if f.name == "detail" and isinstance(v, str):
            v = redact(v)
        out["peer" if f.name == "node" else f.name] = v
    iface, peer = out.get("iface"), out.get("peer")
    if isinstance(effect, LinkTransition | BeatReceived | RttMeasured) and iface and peer:
        out["link"] = f"{iface}/{peer}"
    return out
