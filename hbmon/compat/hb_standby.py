"""`hb_standby [all|foreign|local|failback]`: heartbeat's, answered by hbmon.

As heartbeat 3.0.6's /usr/share/heartbeat/hb_standby: no argument means
`all`, `failback` means `foreign`; bad arguments print its messages and exit 1;
`Going standby [X].` goes to stderr (with heartbeat's date prefix unless stdin
is a terminal), the request goes to the agent, and the command exits 0 without
waiting for the groups to move (`hbmon standby` waits). See moves.py for an
agent that cannot be reached.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from hbmon.compat.moves import program, scope_argument, send

DEFAULT_PROG = "/usr/share/heartbeat/hb_standby"


def going_standby(scope: str) -> str:
    """heartbeat's ha_log line as it reaches stderr outside a terminal."""
    line = f"Going standby [{scope}]."
    if sys.stdin is not None and sys.stdin.isatty():
        return line
    return time.strftime("%b %d %H:%M:%S ") + line


def main(argv: Sequence[str] | None = None) -> int:
    """`argv` includes the program name, as sys.argv does."""
    prog, args = program(argv, DEFAULT_PROG)
    scope = scope_argument(prog, args, sys.stdout, sys.stderr)
    if isinstance(scope, int):
        return scope
    if scope == "failback":
        scope = "foreign"
    print(going_standby(scope), file=sys.stderr)
    return send(prog, "standby", scope, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
