"""What is wrong with a configuration, and where.

Every front end (ha.cf/authkeys/haresources, YAML) reports through `Problem`, so
the CLI prints one uniform `FILE:LINE: message` list. Line 0 means the problem
belongs to the whole file (permissions, a missing required directive).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{printable(self.file)}:{self.line}: {kind}{printable(self.message)}"


def printable(text: str) -> str:
    """`text` on one line: a control or line-break character from the input (a YAML key
    "\\r", a U+2028 in a value) is shown escaped, never printed raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, slots=True)
class Finding:
    """A model-level problem, located by field path (`timers.deadtime`, `media[0].ttl`).

    The model checks do not know which file a value came from; each front end
    turns the field path into a `Problem` with its own FILE:LINE.
    """

    field: str
    message: str
    warning: bool = False


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(not p.warning for p in problems)
