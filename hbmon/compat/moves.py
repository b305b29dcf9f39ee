"""What heartbeat's hb_standby and hb_takeover share: their argument checks and
usage text, and a request handed to the agent without waiting for its outcome.

heartbeat's scripts write the request into heartbeat's FIFO and exit 0 at once;
what happens next is only in the log. These do the same through the agent's
control socket. Where heartbeat's write would hang (the FIFO left behind by a
stopped heartbeat has no reader) or silently go nowhere (no FIFO), these say
on stderr that the agent cannot be reached and exit 1: nothing was requested.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from hbmon.compat.env import control_socket
from hbmon.control.client import ControlError, notify

SCOPES = ("all", "foreign", "local", "failback")
HELP = "--help"
EXIT_OK = 0
EXIT_USAGE = 1
EXIT_UNREACHABLE = 1
# Enough for the agent to accept a connection; the outcome is not awaited.
SEND_TIMEOUT_S = 5.0


def usage(prog: str, out: TextIO, err: TextIO) -> int:
    print("usage:", file=out)
    print(f"{prog} [all|foreign|local|failback]", file=err)
    return EXIT_USAGE


def scope_argument(prog: str, args: Sequence[str], out: TextIO, err: TextIO) -> str | int:
    """The scope heartbeat's script would act on, or the exit code of its refusal
    (both scripts print the usage for `--help`, each by its own path)."""
    if len(args) >= 2:
        print(f"{prog}: too many arguments", file=out)
        return usage(prog, out, err)
    scope = args[0] if args else "all"
    if scope == HELP:
        return usage(prog, out, err)
    if scope not in SCOPES:
        print(f"{prog}: wrong resources({scope}).", file=out)
        return usage(prog, out, err)
    return scope


def send(prog: str, cmd: str, scope: str, err: TextIO) -> int:
    try:
        notify(control_socket(), {"cmd": cmd, "scope": scope}, SEND_TIMEOUT_S)
    except ControlError as exc:
        print(f"{prog}: {exc}: {cmd} [{scope}] not requested", file=err)
        return EXIT_UNREACHABLE
    return EXIT_OK


def program(argv: Sequence[str] | None, default: str) -> tuple[str, list[str]]:
    """($0, arguments): heartbeat's messages name the script as it was called."""
    words = list(sys.argv if argv is None else argv)
    if not words:
        return default, []
    return words[0], words[1:]
