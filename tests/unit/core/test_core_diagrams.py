"""docs/states.md is drawn from the transition tables, and must not go stale."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import hbmon
from hbmon.core import diagrams, stages
from hbmon.core.machine import Table
from hbmon.core.stages import Stage, StageInput

DOC = Path(hbmon.__file__).parent.parent / "docs" / "states.md"
ARROW = re.compile(r"^    (\w+) --> (\w+): (.+)$")


def test_docs_states_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == diagrams.render(), (
        f"docs/states.md is stale: run `{diagrams.COMMAND}`"
    )


def test_every_table_row_is_an_arrow_and_nothing_else() -> None:
    for m in diagrams.MACHINES:
        drawn = set()
        for line in diagrams.mermaid(m.table):
            if found := ARROW.match(line):
                src, dst, kinds = found.groups()
                drawn |= {(src, kind, dst) for kind in kinds.split(", ")}
        rows = {(s.value, k.value, d.value) for (s, k), d in m.table.moves.items()}
        assert drawn == rows, m.title


def test_a_changed_table_changes_the_drawing() -> None:
    moves = {**stages.TRANSITIONS, (Stage.GONE, StageInput.ANNOUNCE): Stage.JOINING}
    changed = Table("ownership stage", Stage.JOINING, moves)
    machines = [
        dataclasses.replace(m, table=changed) if m.table is stages.TABLE else m
        for m in diagrams.MACHINES
    ]
    text = diagrams.render(machines)
    assert text != diagrams.render()
    assert "    gone --> joining: announce" in text
    assert "    gone --> [*]" not in text  # no longer terminal


def test_one_diagram_per_machine() -> None:
    text = diagrams.render()
    assert text.count("```mermaid") == len(diagrams.MACHINES) == 8
    titles = ("Node liveness", "Link liveness", "Ownership stages", "Resource group")
    for title in (*titles, "Standby exchange", "Fencing", "Arbitrator lease", "Arbitrator key"):
        assert f"\n## {title}\n" in text


def test_a_machine_draws_only_the_states_it_uses() -> None:
    """Node liveness shares NodeStatus with the ping nodes; `ping` is not one of its states."""
    lines = diagrams.mermaid(diagrams.MACHINES[0].table)
    assert diagrams.MACHINES[0].title == "Node liveness"
    assert not any("ping" in line for line in lines)
    assert "    [*] --> init" in lines
    assert "    dead --> active: status_active" in lines
