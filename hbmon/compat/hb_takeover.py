"""`hb_takeover [all|foreign|local|failback]`: heartbeat's, answered by hbmon.

As heartbeat 3.0.6's /usr/share/heartbeat/hb_takeover: no argument means
`all`; bad arguments print its messages and exit 1; the request goes to the
agent and the command exits 0 without waiting (`hbmon takeover` waits).
heartbeat's peer maps the scope all→all, local→foreign, foreign→local and has
no case for `failback`, so it stands by with no argument, i.e. `all`: here
`failback` is a takeover of `all` too. See moves.py for an agent that cannot
be reached.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hbmon.compat.moves import program, scope_argument, send

DEFAULT_PROG = "/usr/share/heartbeat/hb_takeover"


def main(argv: Sequence[str] | None = None) -> int:
    """`argv` includes the program name, as sys.argv does."""
    prog, args = program(argv, DEFAULT_PROG)
    scope = scope_argument(prog, args, sys.stdout, sys.stderr)
    if isinstance(scope, int):
        return scope
    return send(prog, "takeover", "all" if scope == "failback" else scope, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
