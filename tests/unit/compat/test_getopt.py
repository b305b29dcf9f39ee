"""glibc getopt as cl_status's subcommands see it."""

from __future__ import annotations

import io

from hbmon.compat.getopt import BAD, Getopt


def scan(args: list[str], optstring: str) -> tuple[list[tuple[str, str | None]], list[str], str]:
    err = io.StringIO()
    g = Getopt("sub", args, optstring, err)
    opts = list(g)
    return opts, g.operands, err.getvalue()


def test_options_after_operands_and_clusters() -> None:
    assert scan(["solr2", "-m"], "m") == ([("m", None)], ["solr2"], "")
    assert scan(["-vm", "solr2"], "mv") == ([("v", None), ("m", None)], ["solr2"], "")
    assert scan(["-", "x"], "m") == ([], ["-", "x"], "")
    assert scan(["--", "-m"], "m") == ([], ["-m"], "")


def test_option_values() -> None:
    assert scan(["-p", "deadtime"], "mp:")[0] == [("p", "deadtime")]
    assert scan(["-pdeadtime"], "mp:")[0] == [("p", "deadtime")]
    assert scan(["-p", "-m"], "mp:")[0] == [("p", "-m")]  # the next word, whatever it is
    assert scan(["-mp", "x"], "mp:")[0] == [("m", None), ("p", "x")]


def test_errors_are_glibcs() -> None:
    assert scan(["-x"], "m") == ([(BAD, None)], [], "sub: invalid option -- 'x'\n")
    assert scan(["-p"], "mp:") == ([(BAD, None)], [], "sub: option requires an argument -- 'p'\n")
    assert scan(["-:"], "mp:")[0] == [(BAD, None)]
