"""`hbmon-accept`: the one way to run without an ha.cf directive hbmon does not implement.

A directive that changes what heartbeat does (a medium, fencing, a client to
run…) and that hbmon lacks is an error, so a migrated cluster never loses a
path or its fencing silently. An operator who knows and agrees lists it in the
file `hbmon-accept` beside ha.cf, exactly as the error names it::

    # We fence with the PDU's own watchdog; hbmon may run without these.
    stonith_host
    respawn dopd

Each listed directive then loads with a warning naming this file and line, at
every check and every start. ha.cf itself stays as heartbeat reads it: no new
directive is needed, and heartbeat never reads this file.

An entry is a directive name from directives.py's UNSUPPORTED class, or
`respawn PROGRAM` / `failfast` for the clients hbmon refuses to run. An entry
that names nothing refusable is an error (a typo must not look like consent);
one that ha.cf does not use is a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hbmon.config.directives import API_CLIENTS, BY_NAME, Support
from hbmon.config.lexer import content_lines, split_words
from hbmon.config.problems import Problem

ACCEPT_FILE = "hbmon-accept"


def respawn_label(program: str) -> str:
    """How an unsupported respawn client is named in errors and in hbmon-accept."""
    return f"respawn {program}"


def acceptable(label: str) -> bool:
    """Whether `label` names something hbmon refuses by default."""
    words = label.split()
    if len(words) == 2 and words[0] == "respawn":
        return words[1] in API_CLIENTS
    d = BY_NAME.get(label)
    return d is not None and d.support is Support.UNSUPPORTED


@dataclass(frozen=True, slots=True)
class Accepted:
    """The labels an operator accepted, each with the line that says so."""

    filename: str = ACCEPT_FILE
    lines: dict[str, int] = field(default_factory=dict)
    # `hbmon watch`: heartbeat itself runs the cluster and does what it says;
    # hbmon only observes, so nothing is lost and every such directive is accepted.
    watching: bool = False

    def where(self, label: str) -> str | None:
        """Why `label` is accepted (`FILE:LINE` of its entry), None if it is not."""
        line = self.lines.get(label)
        if line is not None:
            return f"accepted in {self.filename}:{line}"
        return "heartbeat does it; hbmon watch only observes" if self.watching else None

    def unused(self, used: Iterable[str]) -> list[Problem]:
        seen = set(used)
        return [
            Problem(
                self.filename,
                line,
                f"[{label}] is accepted here but ha.cf does not use it",
                warning=True,
            )
            for label, line in self.lines.items()
            if label not in seen
        ]


def parse_accept(data: bytes, filename: str) -> tuple[Accepted, list[Problem]]:
    problems: list[Problem] = []
    lines: dict[str, int] = {}
    found, undecodable = content_lines(data)
    for number in undecodable:
        problems.append(Problem(filename, number, "line is not valid UTF-8 outside its comment"))
    for line in found:
        label = " ".join(split_words(line.text))
        if not acceptable(label):
            problems.append(
                Problem(
                    filename,
                    line.number,
                    f"[{label}] is not something hbmon refuses; nothing to accept"
                    " (write the directive as the error names it)",
                )
            )
        elif label in lines:
            problems.append(
                Problem(
                    filename,
                    line.number,
                    f"[{label}] listed again (first on line {lines[label]})",
                    warning=True,
                )
            )
        else:
            lines[label] = line.number
    return Accepted(filename, lines), problems
