"""Every `hbmon … --help`: exits 0, names the command's exit codes, and gives each
option's default (shown by the formatter, or said in the help of options whose
default is worked out at run time)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hbmon.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


ALL = [p for p, _ in _parsers(build_parser())]


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "hbmon")
def test_help_exits_0_with_exit_codes_and_defaults(path: tuple[str, ...]) -> None:
    res = subprocess.run([sys.executable, "-m", "hbmon", *path, "--help"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "exit codes:" in res.stdout
    assert "\n  0 " in res.stdout
    assert "\n  2 " in res.stdout or "\n  11 " in res.stdout  # usage error (cl_status: 11)


def _options() -> Iterator[tuple[str, argparse.Action]]:
    for root, prog in [(build_parser(), "hbmon")]:
        for path, parser in _parsers(root):
            for action in parser._actions:
                if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                                       argparse._SubParsersAction)):  # fmt: skip
                    continue
                yield (
                    f"{prog} {' '.join(path)} {'/'.join(action.option_strings) or action.dest}",
                    action,
                )


def test_every_option_states_its_default() -> None:
    missing = []
    for where, action in _options():
        if not action.help:
            missing.append(f"{where}: no help")
        elif isinstance(action.default, bool) or action.required:
            continue  # a flag, or required
        elif (
            action.default is None
            and "default" not in action.help
            and (action.option_strings or action.nargs == "?")
        ):
            missing.append(f"{where}: default worked out at run time, not said")
    assert not missing, "\n".join(missing)


def test_defaults_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "(default: /etc/ha.d)" in out
    assert "(default: text)" in out


def test_cl_status_help_is_hbmon_s_options_then_cl_status_s_usage() -> None:
    res = subprocess.run([sys.executable, "-m", "hbmon", "cl-status", "--help"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "--socket" in res.stdout
    assert "/run/hbmon)" in res.stdout  # the default, wrapped or not
    assert "Usage: cl_status <sub-command>" in res.stdout
    assert "\n  11  parameter error" in res.stdout


def test_cl_status_options_still_reach_it() -> None:
    """`hbmon cl-status` parses its own options: --socket to a socket nobody serves."""
    res = subprocess.run([sys.executable, "-m", "hbmon", "cl-status", "--socket",
                          "/nonexistent/hbmon.sock", "hbstatus"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 1
    assert res.stdout == "Heartbeat is stopped on this machine.\n"
    bad = subprocess.run([sys.executable, "-m", "hbmon", "cl-status", "nosuchcommand"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 11
