"""glibc's getopt(3) as cl_status calls it: `getopt(argc-1, argv+1, optstr)`.

GNU order: options may follow operands (operands are moved to the end), `--`
ends the options, `-` alone is an operand, `-p VALUE` and `-pVALUE` both give
`p` its value. Errors are printed as glibc prints them, with the subcommand as
the program name, and reported as `?`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

BAD = "?"


@dataclass
class Getopt:
    """One getopt scan over `args` (the words after the subcommand)."""

    prog: str
    args: Sequence[str]
    optstring: str
    err: TextIO = field(default_factory=lambda: sys.stderr)
    operands: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        """(option, value) in order; `?` for a bad one. Operands collect in `operands`."""
        i = 0
        while i < len(self.args):
            word = self.args[i]
            i += 1
            if word == "--":
                self.operands.extend(self.args[i:])
                return
            if not word.startswith("-") or word == "-":
                self.operands.append(word)
                continue
            j = 1
            while j < len(word):
                c = word[j]
                j += 1
                spec = self.optstring.find(c)
                if c == ":" or spec < 0:
                    print(f"{self.prog}: invalid option -- '{c}'", file=self.err)
                    yield BAD, None
                    continue
                if self.optstring[spec + 1 : spec + 2] != ":":
                    yield c, None
                    continue
                if j < len(word):
                    yield c, word[j:]
                elif i < len(self.args):
                    yield c, self.args[i]
                    i += 1
                else:
                    print(f"{self.prog}: option requires an argument -- '{c}'", file=self.err)
                    yield BAD, None
                break
