"""How every `hbmon … --help` reads: each option's default after its help, and the
command's exit codes in its epilog, as written."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "exit_codes"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """`(default: X)` after an option's help, except for flags and for options whose
    default is worked out at run time (None: their help says what it is)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def exit_codes(*codes: tuple[int, str]) -> str:
    """An epilog listing exit codes, one per line."""
    return "exit codes:\n" + "\n".join(f"  {code:<3} {meaning}" for code, meaning in codes)
