"""hbmon(8) is generated from the CLI (scripts/manpage.py): every subcommand and every
option is on the page, so the page cannot fall behind the program. (Its roff is
checked by lintian on the built package: tests/systemd/test_package_install.py.)"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from hbmon.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _manpage_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("manpage", ROOT / "scripts" / "manpage.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _walk(parser: argparse.ArgumentParser, prefix: str) -> Iterator[tuple[str, list[str]]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options = [
                    o
                    for a in sub._actions
                    if not isinstance(a, argparse._HelpAction)
                    for o in a.option_strings
                ]
                yield f"{prefix}{name}", options
                yield from _walk(sub, f"{prefix}{name} ")


def _roff(text: str) -> str:
    return text.replace("-", "\\-")


def test_every_subcommand_and_option_is_on_the_page() -> None:
    page = _manpage_module().render("2026-12-01")
    commands = list(_walk(build_parser(), "hbmon "))
    assert len(commands) >= 10
    for command, options in commands:
        assert f'.SS "{_roff(command)}"' in page, command
        for option in options:
            assert f"\\fB{_roff(option)}\\fR" in page, (command, option)


def test_the_page_is_roff_with_the_sections_a_man_page_has() -> None:
    page = _manpage_module().render("2026-12-01")
    assert page.startswith('.TH HBMON 8 "2026-12-01" "hbmon ')
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "FILES", "EXIT STATUS"):
        assert f"\n.SH {section}\n" in page
    # No line may start with a quote or dot that roff would take as a request.
    body = [ln for ln in page.splitlines() if not ln.startswith((".", "\\"))]
    assert not [ln for ln in body if ln.startswith("'")]
