"""Draw the core's state machines from their transition tables (as h11's make-state-diagrams).

    python -m hbmon.core.diagrams > docs/states.md

docs/states.md is generated; tests/unit/core/test_core_diagrams.py fails when
it no longer matches the tables, so the drawing cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hbmon.core import arbtables, fencing, groups, liveness, stages, standby
from hbmon.core.machine import Table

COMMAND = "python -m hbmon.core.diagrams > docs/states.md"


@dataclass(frozen=True, slots=True)
class Machine:
    """One state machine as docs/states.md shows it."""

    title: str
    home: str  # where the table lives
    about: str
    table: Table[Any, Any]  # each machine has its own state and event enums
    notes: Callable[[], list[str]] | None = None  # markdown drawn below the diagram


def node_reasons() -> list[str]:
    """Which reasons each node change may carry (liveness.REASONS), as a table."""
    rows: dict[tuple[str, str], list[str]] = {}
    for old, new, reason in liveness.changes():
        rows.setdefault((old.value, new.value), []).append(reason.value)
    out = ["| from | to | reason |", "|---|---|---|"]
    out += [f"| {a} | {b} | {', '.join(rs)} |" for (a, b), rs in rows.items()]
    return out


MACHINES = (
    Machine(
        "Node liveness",
        "hbmon/core/liveness.py",
        "A peer as this node sees it, one per configured peer. `status_up` and "
        "`status_active` are its new status messages (by their `st`); `silent` is "
        "its dead interval passing without one, `never_heard` initdead passing "
        "before the first. Each change also carries a reason (heard, status, "
        "restarted, returned, timeout, initdead, shutdown), the `reason` label of "
        "`hbmon_node_transitions_total`.",
        liveness.NODE_TABLE,
        node_reasons,
    ),
    Machine(
        "Link liveness",
        "hbmon/core/liveness.py",
        "One (peer, interface) path; `silent` is the peer's dead interval passing "
        "without a packet on it.",
        liveness.LINK_TABLE,
    ),
    Machine(
        "Ownership stages",
        "hbmon/core/stages.py",
        "Where this node's resource ownership is, from before comm-up to after "
        "its shutdown, or to the handover of a restart (hbmon/core/handover.py). "
        "One per process.",
        stages.TABLE,
    ),
    Machine(
        "Resource group",
        "hbmon/core/groups.py",
        "One resource group as this node holds it; ownership decides what it "
        "wants, the table moves the group one start or stop at a time. A failed "
        "stop counts as held; FAILED waits out a backoff before the next try.",
        groups.TABLE,
    ),
    Machine(
        "Standby exchange",
        "hbmon/core/standby.py",
        "heartbeat's 3-phase hb_standby / hb_takeover exchange, one at a time. "
        "`me`, `other` and `done` are the peer's messages; every phase also "
        "returns to idle on `abort` (peer lost, shutdown).",
        standby.TABLE,
    ),
    Machine(
        "Fencing",
        "hbmon/core/fencing.py",
        "The reset (STONITH) of one peer, judged once per death as heartbeat does: "
        "no reset if it gave its groups up, none possible without a device, else "
        "reset it (after our fencing delay) and retry with backoff until it works; "
        "its groups are taken from `unneeded`, `unprotected` or `reset`.",
        fencing.TABLE,
    ),
    Machine(
        "Arbitrator lease",
        "hbmon/core/arbtables.py",
        "Our lease in etcd (when an arbitrator is configured). A failed renewal "
        "does not move it: how long it still counts here is kept beside it "
        "(core/arbitration.py).",
        arbtables.LEASE_TABLE,
    ),
    Machine(
        "Arbitrator key",
        "hbmon/core/arbtables.py",
        "One resource group's key in etcd: claimed before the group may start, "
        "released once the group stopped; `lease_gone` when etcd forgot our lease.",
        arbtables.KEY_TABLE,
    ),
)


def mermaid(table: Table[Any, Any]) -> list[str]:
    """A Mermaid stateDiagram: one arrow per (from, to), labelled with its events."""
    labels: dict[tuple[str, str], list[str]] = {}
    for (state, kind), new in table.moves.items():
        labels.setdefault((state.value, new.value), []).append(kind.value)
    lines = ["stateDiagram-v2", f"    [*] --> {table.initial.value}"]
    order = {s.value: i for i, s in enumerate(table.states())}
    for (src, dst), kinds in sorted(labels.items(), key=lambda e: (order[e[0][0]], order[e[0][1]])):
        lines.append(f"    {src} --> {dst}: {', '.join(kinds)}")
    outgoing = {src for src, _ in labels}
    lines += [f"    {s.value} --> [*]" for s in table.states() if s.value not in outgoing]
    return lines


def render(machines: Iterable[Machine] = MACHINES) -> str:
    out = [
        "# State machines of the hbmon core",
        "",
        "Generated from the transition tables by",
        f"`{COMMAND}`; do not edit by hand.",
        "Every allowed (state, event) pair is an arrow; any other event raises a",
        "`TransitionError` (hbmon/errors.py) and leaves the state unchanged.",
    ]
    for m in machines:
        out += ["", f"## {m.title}", "", f"Table: `{m.home}`. {m.about}", "", "```mermaid"]
        out += mermaid(m.table)
        out += ["```"]
        if m.notes is not None:
            out += ["", *m.notes()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
