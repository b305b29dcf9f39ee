"""A snapshot as plain data (for `hbmon status --json` and the control socket), and as a table.

The agent serialises its snapshot; the CLI renders what it receives. Both sides
use only this module, so the JSON shape is defined in one place.
"""

from __future__ import annotations

from typing import Any

from hbmon.core.snapshot import Snapshot


def _ago(snap: Snapshot, t: float | None) -> float | None:
    return None if t is None else round(snap.now - t, 6)


def _wall(snap: Snapshot, t: float | None) -> float | None:
    return None if t is None else round(snap.wall(t), 6)


def snapshot_to_dict(snap: Snapshot, *, rtt: dict[str, float] | None = None) -> dict[str, Any]:
    """Everything `hbmon status` and `hbmon cl-status` need. `rtt`: link → mean seconds."""
    rtt = rtt or {}
    return {
        "node": snap.node,
        "generation": snap.generation,
        "status": snap.local_status.value,
        "comm_up": snap.comm_up,
        "uptime_s": round(snap.now - snap.started_at, 3),
        "peers": [
            {
                "name": p.name,
                "status": p.status.value,
                "generation": p.generation,
                "last_beat_ago_s": _ago(snap, p.last_heard_at),
                "last_beat_at": _wall(snap, p.last_heard_at),
                "dead_interval_s": p.dead_interval_s,
                "late_warntime": p.late_warntime,
                "late_deadtime": p.late_deadtime,
                "lost_packets": p.lost_packets,
                "restarts": p.restarts,
            }
            for p in snap.peers
        ],
        "links": [
            {
                "name": link.name,
                "node": link.node,
                "iface": link.iface,
                "status": link.status.value,
                "last_heard_ago_s": _ago(snap, link.last_heard_at),
                "rtt_s": rtt.get(link.name),
            }
            for link in snap.links
        ],
        "ping_nodes": [
            {
                "name": pn.name,
                "status": pn.status.value,
                "addresses": [
                    {"address": a.address, "last_rtt_s": a.last_rtt_s} for a in pn.addresses
                ],
            }
            for pn in snap.ping_nodes
        ],
        "groups": [
            {
                "key": g.key,
                "preferred": g.preferred,
                "role": g.role,
                "state": g.state.value,
                "holder": g.holder,
                "last_change_at": _wall(snap, g.last_change_at),
                "start_failures": g.start_failures,
                "stop_failures": g.stop_failures,
            }
            for g in snap.groups
        ],
        "rsc_hold": snap.rsc_hold,
        "resources_stable": snap.resources_stable,
        # Each peer's reset (docs/fencing.md): idle until its death is judged.
        "fencing": [
            {
                "node": f.node,
                "state": f.state.value,
                "attempts": f.attempts,
                "failures": f.failures,
                "since": _wall(snap, f.since),
            }
            for f in snap.fencing
        ],
        "last_takeover": None
        if snap.last_takeover is None
        else {
            "reason": snap.last_takeover.reason.value,
            "groups": list(snap.last_takeover.keys),
            "at": _wall(snap, snap.last_takeover.at),
            "duration_s": round(snap.last_takeover.duration_s, 6),
            "from": snap.last_takeover.peer,
        },
        "arbitrator": None
        if snap.arbiter is None
        else {
            "reachable": snap.arbiter.reachable,
            "lease": None if snap.arbiter.lease is None else f"{snap.arbiter.lease:x}",
            "ttl_s": snap.arbiter.ttl_s,
            "lease_left_s": round(snap.arbiter.lease_left_s, 3),
            "keys_held": snap.arbiter.keys_held,
            "failsafe_groups": snap.arbiter.failsafe_groups,
            "conflicts": snap.arbiter.conflicts,
        },
    }


def _fmt_s(v: object) -> str:
    return "-" if v is None else f"{float(v):.2f}s"  # type: ignore[arg-type]


def _fmt_ms(v: object) -> str:
    return "-" if v is None else f"{float(v) * 1000:.2f}ms"  # type: ignore[arg-type]


def render_table(d: dict[str, Any]) -> str:
    """The human form of `hbmon status`."""
    lines = [
        f"node {d['node']}: {d['status']} (generation {d['generation']}, "
        f"up {d['uptime_s']:.0f}s, comm {'up' if d['comm_up'] else 'not up yet'})",
        "",
        f"{'PEER':<16} {'STATUS':<8} {'LAST BEAT':>10} {'DEAD AFTER':>10} "
        f"{'LATE W/D':>9} {'LOST':>5}",
    ]
    for p in d["peers"]:
        lines.append(
            f"{p['name']:<16} {p['status']:<8} {_fmt_s(p['last_beat_ago_s']):>10} "
            f"{_fmt_s(p['dead_interval_s']):>10} "
            f"{p['late_warntime']:>4}/{p['late_deadtime']:<4} {p['lost_packets']:>5}"
        )
    lines += ["", f"{'LINK':<24} {'STATUS':<8} {'LAST HEARD':>10} {'RTT':>10}"]
    for link in d["links"]:
        lines.append(
            f"{link['name']:<24} {link['status']:<8} {_fmt_s(link['last_heard_ago_s']):>10} "
            f"{_fmt_ms(link['rtt_s']):>10}"
        )
    if d["ping_nodes"]:
        lines += ["", f"{'PING NODE':<24} {'STATUS':<8} {'RTT':>10}"]
        for pn in d["ping_nodes"]:
            rtts = [a["last_rtt_s"] for a in pn["addresses"] if a["last_rtt_s"] is not None]
            lines.append(
                f"{pn['name']:<24} {pn['status']:<8} {_fmt_ms(min(rtts) if rtts else None):>10}"
            )
    if d["groups"]:
        lines += ["", f"{'GROUP':<40} {'PREFERRED':<10} {'HERE':<9} {'OWNER':<10}"]
        for g in d["groups"]:
            lines.append(
                f"{g['key']:<40} {g['preferred']:<10} {g['state']:<9} {g['holder'] or '-':<10}"
            )
        lines.append(f"resources held here: {d['rsc_hold']}")
    lt = d.get("last_takeover")
    if lt:
        src = f" from {lt['from']}" if lt["from"] else ""
        lines.append(
            f"last takeover: {lt['reason']}{src}, {len(lt['groups'])} group(s) "
            f"in {lt['duration_s'] * 1000:.0f} ms"
        )
    arb = d.get("arbitrator")
    if arb:
        state = "answering" if arb["reachable"] else "UNREACHABLE"
        lease = (
            f"lease {arb['lease']} ({arb['lease_left_s']:.1f}s left)"
            if arb["lease"]
            else "no lease"
        )
        lines.append(
            f"arbitrator: etcd {state}, {lease}, {arb['keys_held']} key(s) held, "
            f"{arb['failsafe_groups']} group(s) on the failsafe, {arb['conflicts']} conflict(s)"
        )
    return "\n".join(lines)
