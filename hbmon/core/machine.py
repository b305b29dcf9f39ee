"""One shape for every state machine of the core: a table you can read (h11's `_state.py`).

A `Table` lists every allowed (state, event kind) pair and the state it leads
to. Anything else raises a `TransitionError` whose type says whose fault it
is, and the machine keeps the state it was in. The tables live beside the code
that fires them:

    core/stages.py      ownership stages (joining … gone)
    core/groups.py      one resource group (released, starting, held …)
    core/standby.py     the 3-phase standby / takeover exchange
    core/liveness.py    a peer (init, up, active, dead) and a link (up, dead)

`python -m hbmon.core.diagrams` draws docs/states.md from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from hbmon.errors import LocalTransitionError, TransitionError

S = TypeVar("S", bound=StrEnum)
K = TypeVar("K", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Table(Generic[S, K]):
    """A state machine's whole rule book: (state, event kind) -> next state."""

    name: str
    initial: S
    moves: Mapping[tuple[S, K], S]
    # The states this machine uses, when it shares its enum with others (node
    # liveness uses NodeStatus, whose PING is the ping nodes'); default: all.
    used: tuple[S, ...] = ()

    def allows(self, state: S, kind: K) -> bool:
        return (state, kind) in self.moves

    def next(self, state: S, kind: K, blame: type[TransitionError] = LocalTransitionError) -> S:
        """The state `kind` leads to from `state`; `blame` is raised if none."""
        new = self.moves.get((state, kind))
        if new is None:
            raise blame(self.name, state.value, kind.value)
        return new

    def states(self) -> list[S]:
        return list(self.used) if self.used else list(type(self.initial))
